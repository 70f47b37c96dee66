"""numpy transcription of GAP's `sparse_method=cur_points` (gap_fit's
cur_decomposition with one iteration), the `leverage` sparse method of
acdc's SparseGPR (crates/acdc-core/src/models/leverage.rs), and the fixture
the Rust test compares with (test/fixtures/models/leverage_cur.json).

X = U S Vᵀ (rows = environments, normalised); k = max(1, ⌊#(s > 1e-13)/2⌋);
leverage ℓ_j = Σ_{r<k} U_jr²; p_j = min(1, m ℓ_j / k); keep the m rows with
the smallest u_j − p_j, u = RandomState(seed).random_sample(rows), ties in
row order.

Versions: numpy==2.4.6.
    python scripts/reference/leverage_cur_numpy.py > test/fixtures/models/leverage_cur.json
"""
import json
import sys

import numpy as np


def leverage_cur(x, count, seed):
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    k = max(1, int(np.sum(s > 1e-13)) // 2)
    order = np.argsort(-s, kind="stable")[:k]
    leverage = np.sum(u[:, order] ** 2, axis=1)
    p = np.minimum(1.0, count * leverage / k)
    r = np.random.RandomState(seed).random_sample(x.shape[0])
    return np.argsort(r - p, kind="stable")[:count]


def case(rng, rows, cols, rank, count, seed):
    x = rng.normal(size=(rows, rank)) @ rng.normal(size=(rank, cols)) if rank < cols else rng.normal(size=(rows, cols))
    x[: rows // 4] *= 5.0  # some rows with large leverage
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return {"rows": rows, "cols": cols, "count": count, "seed": seed, "x": x.ravel().tolist(), "expected": leverage_cur(x, count, seed).tolist()}


def main():
    rng = np.random.default_rng(26)
    cases = [case(rng, 60, 12, 12, 8, 0), case(rng, 80, 20, 6, 10, 3), case(rng, 30, 40, 30, 12, 7), case(rng, 50, 10, 10, 50, 1)]
    json.dump({"generator": "scripts/reference/leverage_cur_numpy.py", "numpy": np.__version__, "cases": cases}, sys.stdout)


if __name__ == "__main__":
    main()
