"""numpy transcription of acdc's 'leverage-mix' sparse method
(crates/acdc-core/src/models/leverage.rs, `mixed_leverage_cur`) and the
fixture the Rust test compares with (test/fixtures/models/mixed_leverage_cur.json).

GAP's `cur_points` rule (scripts/reference/leverage_cur_numpy.py) with the
inclusion probabilities mixed with uniform ones: X = U S Vᵀ (rows =
environments, normalised), k = max(1, ⌊#(s > 1e-13)/2⌋), ℓ_j = Σ_{r<k} U_jr²,
p_j = min(1, (1 − a)·m ℓ_j / k + a·m / n), keep the m rows with the smallest
u_j − p_j, u = RandomState(seed).random_sample(n), ties in row order.

Versions: numpy==2.4.6.
    python scripts/reference/mixed_leverage_numpy.py > test/fixtures/models/mixed_leverage_cur.json
"""
import json
import sys

import numpy as np


def mixed_leverage_cur(x, count, seed, uniform):
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    k = max(1, int(np.sum(s > 1e-13)) // 2)
    order = np.argsort(-s, kind="stable")[:k]
    leverage = np.sum(u[:, order] ** 2, axis=1)
    p = np.minimum(1.0, (1.0 - uniform) * (count * leverage / k) + uniform * (count / x.shape[0]))
    r = np.random.RandomState(seed).random_sample(x.shape[0])
    return np.argsort(r - p, kind="stable")[:count]


def case(rng, rows, cols, rank, count, seed, uniform, blocks=False):
    x = rng.normal(size=(rows, rank)) @ rng.normal(size=(rank, cols)) if rank < cols else rng.normal(size=(rows, cols))
    x[: rows // 4] *= 5.0
    if blocks:
        # the multi-species shape: the first half of the rows has nothing in
        # the last half of the columns (a pure-element environment's empty
        # species-pair blocks)
        x[: rows // 2, cols // 2 :] = 0.0
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return {"rows": rows, "cols": cols, "count": count, "seed": seed, "uniform": uniform, "x": x.ravel().tolist(), "expected": mixed_leverage_cur(x, count, seed, uniform).tolist()}


def main():
    rng = np.random.default_rng(2626)
    cases = [
        case(rng, 60, 12, 12, 8, 0, 0.5),
        case(rng, 80, 20, 6, 10, 3, 0.5),
        case(rng, 30, 40, 30, 12, 7, 0.25),
        case(rng, 50, 10, 10, 50, 1, 0.5),
        case(rng, 120, 16, 16, 30, 4, 0.5, blocks=True),
        case(rng, 120, 16, 16, 30, 4, 0.0, blocks=True),
        case(rng, 40, 8, 8, 10, 2, 1.0),
    ]
    json.dump({"generator": "scripts/reference/mixed_leverage_numpy.py", "numpy": np.__version__, "cases": cases}, sys.stdout)


if __name__ == "__main__":
    main()
