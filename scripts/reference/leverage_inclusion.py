"""Is gap_fit's cur_points the sampler acdc's `leverage` is?  Compares how
often gap_fit's draws (print_sparse_index files) keep each environment of
one centre species with the inclusion probabilities of acdc's rule on acdc's
features (docs/MODELS.md "Thirty draws of each sampler").

acdc's rule (models/leverage.rs): X the environments × features matrix of
normalised features, X = U S Vᵀ, k = ⌊#(s > 1e-13)/2⌋, ℓ_j = Σ_{r<k} U_jr²,
p_j = min(1, m·ℓ_j/k), keep the m smallest u_j − p_j (u_j uniform). The
inclusion probability of environment j under that rule is estimated here by
simulating it (numpy's RandomState, 1000 draws). Printed: the rank and k,
the expected number of picks among the environments at index ≥ --split (the
alloy frames' environments when those frames come last), gap_fit's mean
count there, and gap_fit's inclusion frequency against the rule's
probability in five bins of that probability, for k and nearby values.

    python leverage_inclusion.py --train T.xyz --features F.npy --z 29 \
        --split 1280 --count 300 IDX_FILE...

F.npy is `acdc featurize T.xyz -o F.npy --hypers bench/hypers/gap-5-4.json`
(its labels file next to it); each IDX_FILE is a print_sparse_index file
whose first line lists this species' picks (1-based). Made with numpy 2.4.6
and ase 3.29.0.
"""
import argparse
import json

import numpy as np
from ase.io import read


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--train", required=True)
    a.add_argument("--features", required=True)
    a.add_argument("--z", type=int, default=29)
    a.add_argument("--line", type=int, default=0, help="which line of the index files is this species")
    a.add_argument("--split", type=int, required=True)
    a.add_argument("--count", type=int, default=300)
    a.add_argument("files", nargs="+")
    o = a.parse_args()
    x_all = np.load(o.features)
    rows = json.load(open(f"{o.features}.labels.json"))["rows"]["values"]
    frames = read(o.train, ":")
    z = np.array([frames[s].numbers[i] for s, i in rows])
    x = x_all[z == o.z]
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    n = len(x)
    rank = int(np.sum(s > 1e-13))
    late = np.arange(n) >= o.split
    picks = []
    for f in o.files:
        line = open(f).read().split("\n")[o.line].split()
        picks.append(np.array([int(v) - 1 for v in line]))
    freq = np.zeros(n)
    for p in picks:
        freq[p] += 1
    freq /= len(picks)
    print(f"{n} environments, rank {rank}, k {rank // 2}; {len(picks)} gap_fit draws, "
          f"mean picks at index >= {o.split}: {np.mean([late[p].sum() for p in picks]):.1f}")
    for k in sorted({max(1, rank // 2 - 10), rank // 2, rank // 2 + 10}):
        lev = np.sum(u[:, :k] ** 2, axis=1)
        p = np.minimum(1, o.count * lev / k)
        pi = np.zeros(n)
        for seed in range(1000):
            r = np.random.RandomState(10_000 + seed).random_sample(n)
            pi[np.argsort(r - p, kind="stable")[: o.count]] += 1
        pi /= 1000
        edges = np.quantile(pi, [0, 0.5, 0.8, 0.9, 0.95, 1.0])
        bins = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            m = (pi >= lo) & (pi <= hi)
            bins.append(f"{pi[m].mean():.3f}/{freq[m].mean():.3f}")
        print(f"k {k}: expected picks at index >= {o.split}: {pi[late].sum():.1f}; "
              f"rule/gap_fit inclusion by bin: {' '.join(bins)}")


if __name__ == "__main__":
    main()
