"""numpy transcription of acdc's 'pivoted-cholesky' and 'greedy-trace' sparse
methods (crates/acdc-core/src/models/pivoted_cholesky.rs) and the fixture the
Rust tests compare with (test/fixtures/models/pivoted_cholesky.json: `cases`
for 'pivoted-cholesky', `trace_cases` for 'greedy-trace').

Independent of the Rust code's incremental Cholesky: every step forms the
kernel k(x, x') = (x̂·x̂')^ζ of the rows picked so far and solves with it
(numpy.linalg.solve), residual d(x) = 1 − k_xM K_MM⁻¹ k_Mx (k(x, x) = 1 for
normalised rows), and picks the unpicked row of largest d. Ties in d (all
rows at the first step) go to the larger cosine to the centroid of the rows
(each column summed over its sorted values), then to the lexicographically
larger row. Once the largest residual is ≤ 1e-12 (the rows picked span the
rest), the remaining picks follow the tie order alone.

'greedy-trace': the residual kernel R = K − K_NM K_MM⁻¹ K_MN (dense solve,
diagonal of K exactly 1) and the pick is the unpicked row x with R_xx > 1e-12
of largest Σ_j R_jx² / R_xx (the drop of the total residual variance), ties
as above; with no such row left, the tie order alone.

Versions: numpy==2.4.6.
    python scripts/reference/pivoted_cholesky_numpy.py > test/fixtures/models/pivoted_cholesky.json
"""
import json
import sys

import numpy as np

FLOOR = 1e-12


def pivoted_cholesky(x, count, zeta):
    n = x.shape[0]
    centroid = np.sort(x, axis=0).sum(axis=0) / n
    typical = x @ centroid
    # tie order: larger cosine to the centroid first, then the larger row
    tie_rank = np.empty(n, dtype=int)
    order = sorted(range(n), key=lambda i: (typical[i], tuple(x[i])), reverse=True)
    tie_rank[order] = np.arange(n)
    picked = []
    exhausted = False
    for _ in range(count):
        free = [i for i in range(n) if i not in picked]
        if not exhausted:
            if picked:
                kmm = (x[picked] @ x[picked].T) ** zeta
                kxm = (x @ x[picked].T) ** zeta
                d = 1.0 - np.einsum("im,im->i", kxm, np.linalg.solve(kmm, kxm.T).T)
            else:
                d = np.ones(n)
            best = max(d[i] for i in free)
            if best <= FLOOR:
                exhausted = True
            else:
                ties = [i for i in free if d[i] == best]
                picked.append(min(ties, key=lambda i: tie_rank[i]))
                continue
        picked.append(min(free, key=lambda i: tie_rank[i]))
    return picked


def tie_ranks(x):
    n = x.shape[0]
    centroid = np.sort(x, axis=0).sum(axis=0) / n
    typical = x @ centroid
    rank = np.empty(n, dtype=int)
    order = sorted(range(n), key=lambda i: (typical[i], tuple(x[i])), reverse=True)
    rank[order] = np.arange(n)
    return rank


def greedy_trace(x, count, zeta):
    n = x.shape[0]
    tie_rank = tie_ranks(x)
    k = (x @ x.T) ** zeta
    np.fill_diagonal(k, 1.0)
    picked = []
    exhausted = False
    for _ in range(count):
        free = [i for i in range(n) if i not in picked]
        if not exhausted:
            r = k - k[:, picked] @ np.linalg.solve(k[np.ix_(picked, picked)], k[picked, :]) if picked else k
            d = np.diag(r)
            candidates = [i for i in free if d[i] > FLOOR]
            if not candidates:
                exhausted = True
            else:
                gain = {i: np.sum(r[:, i] ** 2) / d[i] for i in candidates}
                best = max(gain.values())
                picked.append(min((i for i in candidates if gain[i] == best), key=lambda i: tie_rank[i]))
                continue
        picked.append(min(free, key=lambda i: tie_rank[i]))
    return picked


def case(rng, rows, cols, rank, count, zeta, blocks=False, method=None):
    x = rng.normal(size=(rows, rank)) @ rng.normal(size=(rank, cols)) if rank < cols else rng.normal(size=(rows, cols))
    x[: rows // 4] *= 5.0
    if blocks:
        # a pure-element environment's empty species-pair blocks
        x[: rows // 2, cols // 2 :] = 0.0
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return {"rows": rows, "cols": cols, "count": count, "zeta": zeta, "x": x.ravel().tolist(), "expected": (method or pivoted_cholesky)(x, count, zeta)}


def main():
    rng = np.random.default_rng(2727)
    cases = [
        case(rng, 60, 12, 12, 8, 1),
        case(rng, 60, 12, 12, 20, 2),
        case(rng, 80, 20, 20, 25, 4),
        case(rng, 30, 40, 30, 12, 3),
        case(rng, 120, 16, 16, 30, 4, blocks=True),
        # rank 5, linear kernel: exhausted after 5 picks, the rest by the tie order
        case(rng, 40, 12, 5, 9, 1),
        case(rng, 25, 6, 6, 25, 2),
    ]
    rng = np.random.default_rng(2828)
    trace_cases = [
        case(rng, 60, 12, 12, 8, 1, method=greedy_trace),
        case(rng, 60, 12, 12, 20, 2, method=greedy_trace),
        case(rng, 80, 20, 20, 25, 4, method=greedy_trace),
        case(rng, 30, 40, 30, 12, 3, method=greedy_trace),
        case(rng, 120, 16, 16, 30, 4, blocks=True, method=greedy_trace),
        case(rng, 40, 12, 5, 9, 1, method=greedy_trace),
        case(rng, 25, 6, 6, 25, 2, method=greedy_trace),
    ]
    json.dump({"generator": "scripts/reference/pivoted_cholesky_numpy.py", "numpy": np.__version__, "cases": cases, "trace_cases": trace_cases}, sys.stdout)


if __name__ == "__main__":
    main()
