"""Training-side statistics of `leverage` draws against their test errors,
for docs/MODELS.md ("Density-following and stratified selections"): per
draw, the Nyström residual Σ_j [K − K_jM K_MM⁻¹ K_Mj]_jj of the ζ-kernel
K = (x̂·x̂')^ζ over the species' training environments (all, alloy-frame and
pure-frame ones), the number of sparse points on frames of a given
config_type, and the correlation of each with the test errors given on the
command line (the draws' RMSEs from bench/sparse_draws.mjs). Evidence only,
never run by acdc. Versions: numpy==2.4.6, ase==3.29.0.

    python scripts/reference/sparse_draw_stats.py --train T.xyz --features F.npy \
        --species 29 --config-type CuAu --energy 3.67,2.94,... --forces 0.0914,0.0900,...
"""
import argparse
import os
import sys

import numpy as np
from ase.io import read

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sparse_candidates as sc  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--train", required=True)
    p.add_argument("--features", required=True)
    p.add_argument("--species", type=int, required=True)
    p.add_argument("--config-type", required=True)
    p.add_argument("--energy", required=True, help="test energy RMSE per seed 0, 1, …")
    p.add_argument("--forces", required=True, help="test force RMSE per seed 0, 1, …")
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--zeta", type=int, default=4)
    a = p.parse_args()
    e = np.array([float(v) for v in a.energy.split(",")])
    f = np.array([float(v) for v in a.forces.split(",")])
    x = sc.load(a.train, a.features)[a.species]
    frames = read(a.train, ":")
    tagged = np.array([fr.info.get("config_type") == a.config_type for fr in frames for z in fr.numbers if z == a.species])
    kmat = (x @ x.T) ** a.zeta
    lev, k = sc.gap_leverage(x)
    rows = []
    for seed in range(len(e)):
        idx = sc.sample(np.minimum(1, a.count * lev / k), a.count, seed)
        l = np.linalg.cholesky(kmat[np.ix_(idx, idx)] + 1e-10 * np.eye(len(idx)))
        r = 1 - np.sum(np.linalg.solve(l, kmat[idx]) ** 2, axis=0)
        rows.append([r.sum(), r[tagged].sum(), r[~tagged].sum(), tagged[idx].sum()])
    rows = np.array(rows)
    names = ["residual, all", f"residual, {a.config_type}", "residual, others", f"points on {a.config_type}"]
    print("seed  E  F  " + "  ".join(names))
    for s, row in enumerate(rows):
        print(s, e[s], f[s], " ".join(f"{v:.4g}" for v in row))
    for j, n in enumerate(names):
        print(f"{n}: correlation with E {np.corrcoef(rows[:, j], e)[0, 1]:.2f}, with F {np.corrcoef(rows[:, j], f)[0, 1]:.2f}")


if __name__ == "__main__":
    main()
