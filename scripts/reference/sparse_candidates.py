"""Candidate sparse-environment selections on acdc's own features, written
as index files for `sparse: {method: 'indices'}` (gap_fit's 1-based
print_sparse_index format, read by bench/gap_same_sparse.mjs --indices), for
the comparison of sampling methods in docs/MODELS.md ("Which sparse
environments"). Evidence only, never run by acdc.

Input: the per-atom power spectrum of the training set written by
`acdc featurize TRAIN -o F.npy --hypers H.json` (rows in system, atom order,
with F.npy.labels.json) and the training extxyz (for the centre species).
Each species' rows are normalised, then per species:

  lev      GAP's `cur_points` (gap_fit's cur_decomposition, one iteration), as
           acdc's 'leverage' (scripts/reference/leverage_cur_numpy.py):
           X = U S Vᵀ, k = max(1, ⌊#(s > 1e-13)/2⌋), ℓ_j = Σ_{r<k} U_jr²,
           p_j = min(1, m ℓ_j / k), keep the m smallest u_j − p_j with
           u = RandomState(seed).random_sample(n).
  levmix   the same with p_j = min(1, ½ m ℓ_j / k + ½ m / n).
  levmix3  the same with a uniform share ¼ instead of ½.
  levs1    directions weighted by s: ℓ_j = Σ_r U_jr² s_r / Σ_r s_r, p_j = min(1, m ℓ_j).
  levK     GAP's rule on the eigenvectors of the ζ-kernel K = (X Xᵀ)^ζ (element-wise).
  rlevK    ridge leverage of K, ℓ_j = [K (K + λ)⁻¹]_jj with λ such that Σ ℓ = m, p = min(1, ℓ).
  rlevL    ridge leverage of the linear features (λ such that Σ ℓ = min(m, rank/2)).
  kmpp     k-means++ (D² sampling) in the kernel distance 2(1 − (x̂·ŷ)^ζ), RandomState(seed).
  random   RandomState(seed).permutation(n)[:m] (acdc's 'random').
  kmk      kernel k-means in the ζ-kernel's feature space (‖φ(x̂)‖ = 1, distance²
           to a cluster mean 1 − 2·mean_c K_ic + mean_c,c K), k = m clusters,
           seeded by kmpp, Lloyd iterations until no point moves (at most 100;
           an emptied cluster takes the point farthest from its own mean);
           then per cluster the member nearest its mean (a medoid-like
           representative), so the set follows the density of the data.
  kmx      the same with the linear kernel x̂·ŷ (k-means of the unit vectors x̂).
  kmkr     kmk's clusters, then one uniformly random member per cluster
           (stratified random draw).
  levstrat 'lev''s inclusion probabilities (p_j = min(1, m ℓ_j / k), rescaled to
           sum to m with the ones capped at 1), drawn by systematic sampling
           along the environments ordered by kmk's clusters: one uniform
           offset u, picks where the running sum of p crosses u, u + 1, …:
           every environment keeps its leverage probability, and the picks
           are spread over the clusters in proportion to their leverage mass.
  levclu   levstrat's clusters, order and systematic draw, with every
           environment's probability replaced by its cluster's mean
           probability: each cluster gets as many picks as in levstrat (its
           leverage mass), but inside it the picks are uniform (the leverage
           decides how many, not which).
  levbest  the best of 8 'lev' draws (RandomState(1000·seed + r), r < 8) by the
           training-side Nyström residual Σ_j [K − K_jM K_MM⁻¹ K_Mj]_jj of the
           ζ-kernel (no test data involved).
  rndbest  the same over 8 uniform draws.
  levG     'lev' on another feature file (F-gapb.npy: GAP's radial basis,
           scripts/reference/gap_radial_table.py), the picks then fitted with acdc's GTO kernel.

Versions: numpy==2.4.6, ase==3.29.0.

    python scripts/reference/sparse_candidates.py --train T.xyz --features F.npy \
        [--alt-features G.npy] METHOD SEEDS OUT_PREFIX [--count 300] [--zeta 4]

prints one `file:Z,file:Z` line per seed (the --indices argument of
bench/gap_same_sparse.mjs); bench/gap_alloys.mjs --candidates runs it.
"""
import argparse
import json
import os

import numpy as np
from ase.io import read


def load(train, features):
    x_all = np.load(features)
    rows = json.load(open(f"{features}.labels.json"))["rows"]["values"]
    frames = read(train, ":")
    z_all = np.array([frames[s].numbers[a] for s, a in rows])
    out = {}
    for z in sorted(set(z_all.tolist())):
        x = x_all[z_all == z]
        out[z] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def sample(p, m, seed):
    r = np.random.RandomState(seed).random_sample(len(p))
    return np.argsort(r - p, kind="stable")[:m]


def gap_leverage(x):
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    k = max(1, int(np.sum(s > 1e-13)) // 2)
    order = np.argsort(-s, kind="stable")[:k]
    return np.sum(u[:, order] ** 2, axis=1), k


def ridge(w, u, d):
    lo, hi = 1e-16 * w.max(), 10 * w.max()
    for _ in range(200):
        lam = np.sqrt(lo * hi)
        if np.sum(w / (w + lam)) > d:
            lo = lam
        else:
            hi = lam
    return (u**2) @ (w / (w + lam))


def kmpp_seeds(kmat, m, rs):
    n = kmat.shape[0]
    chosen = [rs.randint(n)]
    d2 = 2 * (1 - kmat[:, chosen[0]])
    d2[chosen] = 0
    while len(chosen) < m:
        d2 = np.maximum(d2, 0)
        c = rs.choice(n, p=d2 / d2.sum())
        chosen.append(c)
        d2 = np.minimum(d2, 2 * (1 - kmat[:, c]))
        d2[chosen] = 0
    return np.array(chosen)


def kernel_kmeans(kmat, m, seed, iters=100):
    """Lloyd iterations in the feature space of kmat (unit diagonal); returns
    (assignment, distance² of every point to every cluster mean)."""
    n = kmat.shape[0]
    rs = np.random.RandomState(seed)
    seeds = kmpp_seeds(kmat, m, rs)
    assign = np.argmax(kmat[:, seeds], axis=1)
    assign[seeds] = np.arange(m)
    for _ in range(iters):
        onehot = np.zeros((n, m))
        onehot[np.arange(n), assign] = 1
        counts = onehot.sum(0)
        for c in np.flatnonzero(counts == 0):
            # an empty cluster takes the point farthest from its own mean
            kc = kmat @ onehot / np.maximum(counts, 1)
            cc = (onehot * kc).sum(0) / np.maximum(counts, 1)
            own = 1 - 2 * kc[np.arange(n), assign] + cc[assign]
            own[counts[assign] <= 1] = -np.inf
            far = int(np.argmax(own))
            counts[assign[far]] -= 1
            onehot[far, assign[far]] = 0
            assign[far] = c
            onehot[far, c] = 1
            counts[c] = 1
        kc = kmat @ onehot / counts
        cc = (onehot * kc).sum(0) / counts
        d = 1 - 2 * kc + cc
        new = np.argmin(d, axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
    onehot = np.zeros((n, m))
    onehot[np.arange(n), assign] = 1
    counts = np.maximum(onehot.sum(0), 1)
    kc = kmat @ onehot / counts
    cc = (onehot * kc).sum(0) / counts
    return assign, 1 - 2 * kc + cc


def nystrom_residual(kmat, idx):
    kmm = kmat[np.ix_(idx, idx)] + 1e-10 * np.eye(len(idx))
    l = np.linalg.cholesky(kmm)
    a = np.linalg.solve(l, kmat[idx, :])
    return float(np.sum(1 - np.sum(a * a, axis=0)))


def select(name, x, m, seed, zeta, cache):
    n = x.shape[0]
    if name in ("kmk", "kmx", "kmkr", "levstrat", "levclu", "levbest", "rndbest") and "Kz" not in cache:
        cache["Kz"] = (x @ x.T) ** zeta
    if name in ("levstrat", "levclu"):
        if "lev" not in cache:
            cache["lev"] = gap_leverage(x)
        l, k = cache["lev"]
        assign, d = kernel_kmeans(cache["Kz"], m, seed)
        rs = np.random.RandomState(20_000 + seed)
        p = np.minimum(1, m * l / k)
        for _ in range(100):
            sure = p >= 1
            q = np.where(sure, 1, p * (m - sure.sum()) / p[~sure].sum())
            if np.array_equal(q >= 1, sure) and np.allclose(q.sum(), m):
                p = np.minimum(q, 1)
                break
            p = np.minimum(q, 1)
        if name == "levclu":
            mass = np.bincount(assign, weights=p, minlength=m)
            size = np.bincount(assign, minlength=m)
            p = (mass / np.maximum(size, 1))[assign]
        order = np.lexsort((np.arange(n), assign))
        cum = np.cumsum(p[order])
        targets = rs.uniform() + np.arange(m)
        pos = np.searchsorted(cum, targets, side="right")
        return order[np.unique(np.minimum(pos, n - 1))]
    if name in ("kmk", "kmkr", "kmx"):
        kmat = cache["Kz"] if name != "kmx" else x @ x.T
        assign, d = kernel_kmeans(kmat, m, seed)
        out = []
        rs = np.random.RandomState(10_000 + seed)
        for c in range(m):
            members = np.flatnonzero(assign == c)
            if len(members) == 0:  # only if 100 iterations left a cluster empty
                continue
            if name == "kmkr":
                out.append(members[rs.randint(len(members))])
            else:
                out.append(members[np.argmin(d[members, c])])
        rest = [i for i in np.argsort(d.min(axis=1), kind="stable") if i not in set(out)]
        return np.array(out + rest[: m - len(out)])
    if name in ("levbest", "rndbest"):
        best, best_r = None, np.inf
        for r in range(8):
            s = 1000 * seed + r
            if name == "levbest":
                if "lev" not in cache:
                    cache["lev"] = gap_leverage(x)
                l, k = cache["lev"]
                idx = sample(np.minimum(1, m * l / k), m, s)
            else:
                idx = np.random.RandomState(s).permutation(n)[:m]
            res = nystrom_residual(cache["Kz"], idx)
            if res < best_r:
                best, best_r = idx, res
        return best
    if name in ("lev", "levG"):
        l, k = gap_leverage(x)
        return sample(np.minimum(1, m * l / k), m, seed)
    if name in ("levmix", "levmix3"):
        l, k = gap_leverage(x)
        a = 0.5 if name == "levmix" else 0.25
        return sample(np.minimum(1, (1 - a) * m * l / k + a * m / n), m, seed)
    if name == "levs1":
        u, s, _ = np.linalg.svd(x, full_matrices=False)
        return sample(np.minimum(1, m * ((u**2) @ s / s.sum())), m, seed)
    if name in ("levK", "rlevK"):
        if "K" not in cache:
            w, u = np.linalg.eigh((x @ x.T) ** zeta)
            cache["K"] = (np.maximum(w, 0), u)
        w, u = cache["K"]
        if name == "levK":
            k = max(1, int(np.sum(np.sqrt(w) > 1e-13)) // 2)
            order = np.argsort(-w, kind="stable")[:k]
            return sample(np.minimum(1, m * np.sum(u[:, order] ** 2, axis=1) / k), m, seed)
        return sample(np.minimum(1, ridge(w, u, m)), m, seed)
    if name == "rlevL":
        u, s, _ = np.linalg.svd(x, full_matrices=False)
        d = min(m, np.sum(s > 1e-13) / 2)
        return sample(np.minimum(1, m * ridge(s**2, u, d) / d), m, seed)
    if name == "kmpp":
        rs = np.random.RandomState(seed)
        chosen = [rs.randint(n)]
        d2 = 2 * (1 - (x @ x[chosen[0]]) ** zeta)
        d2[chosen] = 0
        while len(chosen) < m:
            d2 = np.maximum(d2, 0)
            c = rs.choice(n, p=d2 / d2.sum())
            chosen.append(c)
            d2 = np.minimum(d2, 2 * (1 - (x @ x[c]) ** zeta))
            d2[chosen] = 0
        return np.array(chosen)
    if name == "random":
        return np.random.RandomState(seed).permutation(n)[:m]
    raise ValueError(f"unknown method {name}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--train", required=True)
    p.add_argument("--features", required=True)
    p.add_argument("--alt-features")
    p.add_argument("method")
    p.add_argument("seeds")
    p.add_argument("out")
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--zeta", type=int, default=4)
    a = p.parse_args()
    d = load(a.train, a.alt_features if a.method == "levG" else a.features)
    caches = {z: {} for z in d}
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    for seed in (int(s) for s in a.seeds.split(",")):
        files = []
        for z, x in d.items():
            idx = select(a.method, x, a.count, seed, a.zeta, caches[z])
            assert len(set(idx.tolist())) == a.count
            f = f"{a.out}-{a.method}-{seed}-{z}.dat"
            with open(f, "w") as fh:
                fh.write(" ".join(str(i + 1) for i in idx) + "\n")
            files.append(f"{f}:{z}")
        print(",".join(files))


if __name__ == "__main__":
    main()
