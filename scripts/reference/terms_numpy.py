"""A plain numpy transcription of acdc's sum-of-kernels SparseGPR
(distance_2b + SOAP, docs/MODELS.md "Sums of kernels"; dev-only).

Reads the dump of scripts/reference/terms_dump.js (frames, targets, acdc's
per-atom SOAP power spectrum with gradients joined in JS, the SOAP sparse
environments) and the settings in test/fixtures/models/terms_case.json. The
2-body part is computed here from the positions alone: pairs by brute force
over periodic images, GAP's cosine cutoff, the sparse distances chosen from
the training distances (nearest to the centres of `count` equal bins over
[min, max] per species pair, repeats dropped), the kernel
f_c(r) f_c(r') δ² exp(−(r − r')²/(2θ²)), every unordered pair counted twice
(GAP's ordered pairs). One full (not streamed) stacked least-squares
system [Σ^{-1/2}Φ ; Lᵀ] with Φ = [Φ_soap | Φ_2b] and L the block-diagonal
Cholesky factor, solved by one QR; predictions and variances of the test
frames go to test/fixtures/models/terms_expected.json.

Run:
  node scripts/reference/terms_dump.js /tmp/terms_dump.json
  /tmp/venv-terms/bin/python scripts/reference/terms_numpy.py /tmp/terms_dump.json
"""
import itertools
import json
import os
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
FIXTURES = os.path.join(ROOT, "test", "fixtures", "models")
VOIGT = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]

dump = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "/tmp/terms_dump.json"))
setup = json.load(open(os.path.join(FIXTURES, "terms_case.json")))
terms = {t["type"]: t for t in setup["gpr"]["terms"]}
species = dump["species"]
P = len(dump["pairs"]) * dump["blockSize"]
SPAIRS = [(a, b) for k, a in enumerate(species) for b in species[k:]]


def arrays(s):
    n = len(s["types"])
    x = np.array(s["features"], dtype=float).reshape(n, P)
    grads = [(g["i"], g["j"], np.array(g["values"]).reshape(3, P)) for g in s["positions"]]
    strain = np.array(s["strain"], dtype=float).reshape(n, 9, P) if s["strain"] else None
    return x, grads, strain


def pair_list(s, rc):
    """(i, j, species pair index, vector) of every unordered pair closer than rc, images included."""
    pos = np.array(s["xyz"]).reshape(-1, 3)
    cell = np.array(s["cell"]).reshape(3, 3)
    n = len(pos)
    # enough images: the distance between lattice planes bounds each shift
    if all(s["pbc"]):
        inv = np.linalg.inv(cell)
        reach = [int(np.ceil(rc * np.linalg.norm(inv[:, a]))) + 1 for a in range(3)]
    elif not any(s["pbc"]):
        reach = [0, 0, 0]
    else:
        raise ValueError("partly periodic frames are not handled here")
    out = []
    for S in itertools.product(*[range(-r, r + 1) for r in reach]):
        shift = np.array(S) @ cell
        for i in range(n):
            for j in range(n):
                if S == (0, 0, 0) and j <= i:
                    continue
                # each unordered pair once: (i, j, S) and (j, i, −S) are the same pair
                if j < i or (j == i and next((v for v in S if v != 0), 0) < 0):
                    continue
                v = pos[j] + shift - pos[i]
                r = np.linalg.norm(v)
                if r < rc:
                    a, b = sorted((s["types"][i], s["types"][j]))
                    out.append((i, j, SPAIRS.index((a, b)), v))
    return out


class Pair:
    def __init__(self, t):
        self.rc, self.w, self.theta, self.delta = t["cutoff"], t["transition"], t["theta"], t["delta"]
        count = t["sparse"]["count"]
        dist = [[] for _ in SPAIRS]
        for s in dump["train"]:
            for (_, _, k, v) in pair_list(s, self.rc):
                dist[k].append(np.linalg.norm(v))
        self.sparse = []
        for d in dist:
            d = np.sort(d)
            pick = []
            if len(d):
                width = (d[-1] - d[0]) / count
                for b in range(count):
                    c = d[0] + (b + 0.5) * width
                    best = d[np.argmin(np.abs(d - c))]  # first of equal distances: the lower one
                    if not pick or pick[-1] != best:
                        pick.append(best)
            self.sparse.append(np.array(pick))
        self.offsets = np.concatenate([[0], np.cumsum([len(x) for x in self.sparse])]).astype(int)
        self.n = int(self.offsets[-1])

    def fc(self, r):
        if r >= self.rc:
            return 0.0, 0.0
        if r <= self.rc - self.w:
            return 1.0, 0.0
        t = np.pi * (r - self.rc + self.w) / self.w
        return 0.5 * (1 + np.cos(t)), -0.5 * np.pi / self.w * np.sin(t)

    def k(self, r, s):
        return self.fc(r)[0] * self.fc(s)[0] * self.delta ** 2 * np.exp(-((r - s) ** 2) / (2 * self.theta ** 2))

    def row(self, k, r):
        """2 k(r, r_m) and its r-derivative over the sparse distances of species pair k."""
        f, df = self.fc(r)
        rm = self.sparse[k]
        fm = np.array([self.fc(x)[0] for x in rm])
        e = self.delta ** 2 * fm * np.exp(-((r - rm) ** 2) / (2 * self.theta ** 2))
        return 2 * f * e, 2 * (df - f * (r - rm) / self.theta ** 2) * e

    def prior(self, jitter):
        L = np.zeros((self.n, self.n))
        for k, rm in enumerate(self.sparse):
            if len(rm) == 0:
                continue
            K = np.array([[self.k(a, b) for b in rm] for a in rm]) + jitter * self.delta ** 2 * np.eye(len(rm))
            o = self.offsets[k]
            L[o:o + len(rm), o:o + len(rm)] = np.linalg.cholesky(K)
        return L


class Soap:
    def __init__(self, t):
        self.zeta = t["kernel"]["zeta"]
        self.delta = t["kernel"]["delta"]
        counts = dump["sparseCounts"]
        flat = np.array(dump["sparseFeatures"]).reshape(sum(counts), P)
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        self.hat = [flat[self.offsets[c]:self.offsets[c + 1]] for c in range(len(species))]
        self.hat = [h / np.linalg.norm(h, axis=1)[:, None] for h in self.hat]
        self.n = int(self.offsets[-1])

    def prior(self, jitter):
        L = np.zeros((self.n, self.n))
        d2 = self.delta ** 2
        for c, h in enumerate(self.hat):
            kmm = d2 * (h @ h.T) ** self.zeta + jitter * d2 * np.eye(len(h))
            o = self.offsets[c]
            L[o:o + len(h), o:o + len(h)] = np.linalg.cholesky(kmm)
        return L


soap = Soap(terms["soap"])
pair = Pair(terms["distance_2b"])
N = soap.n + pair.n
JITTER = setup["gpr"].get("jitter", 1e-8)


def design(s):
    """Unweighted rows: energy (N), forces (3n × N), virial ∂/∂ε (9 × N)."""
    x, grads, strain = arrays(s)
    n_atoms = len(s["types"])
    E = np.zeros(N)
    F = np.zeros((3 * n_atoms, N))
    W = np.zeros((9, N))
    d2 = soap.delta ** 2
    for i in range(n_atoms):
        c = species.index(s["types"][i])
        nx = np.linalg.norm(x[i])
        xh = x[i] / nx
        sm = soap.hat[c] @ xh
        sl = slice(soap.offsets[c], soap.offsets[c + 1])
        E[sl] += d2 * sm ** soap.zeta
        dk = (d2 * soap.zeta * sm ** (soap.zeta - 1) / nx)[:, None] * (soap.hat[c] - sm[:, None] * xh[None, :])
        for (ii, j, g) in grads:
            if ii == i:
                F[3 * j:3 * j + 3, sl] -= g @ dk.T
        if strain is not None:
            W[:, sl] += strain[i] @ dk.T
    for (i, j, k, v) in pair_list(s, pair.rc):
        r = np.linalg.norm(v)
        kr, dkr = pair.row(k, r)
        sl = slice(soap.n + pair.offsets[k], soap.n + pair.offsets[k + 1])
        E[sl] += kr
        u = v / r
        for a in range(3):
            F[3 * j + a, sl] -= dkr * u[a]
            F[3 * i + a, sl] += dkr * u[a]
            for b in range(3):
                W[3 * a + b, sl] += dkr * u[a] * v[b]
    return E, F, W


e0 = float(np.mean([s["energy"] / len(s["types"]) for s in dump["train"]]))
sig = setup["gpr"]["sigmas"]
A, y = [], []
for s in dump["train"]:
    E, F, W = design(s)
    n_atoms = len(s["types"])
    rows = [E[None, :], F]
    scale = [1 / (sig["energy"] * np.sqrt(n_atoms))] + [1 / sig["forces"]] * (3 * n_atoms)
    t = [s["energy"] - e0 * n_atoms] + list(s["forces"])
    if s["stress"] is not None:
        rows.append(np.array([0.5 * (W[3 * a + b] + W[3 * b + a]) / s["volume"] for a, b in VOIGT]))
        scale += [1 / sig["stress"]] * 6
        t += [0.5 * (s["stress"][3 * a + b] + s["stress"][3 * b + a]) for a, b in VOIGT]
    scale = np.array(scale)
    A.append(np.vstack(rows) * scale[:, None])
    y.append(np.array(t) * scale)
L = np.zeros((N, N))
L[:soap.n, :soap.n] = soap.prior(JITTER)
L[soap.n:, soap.n:] = pair.prior(JITTER)
Q, R = np.linalg.qr(np.vstack(A + [L.T]))
w = np.linalg.solve(R, Q.T @ np.concatenate(y + [np.zeros(N)]))

out = {"energy": [], "forces": [], "stress": [], "variance": []}
for s in dump["test"]:
    E, F, W = design(s)
    n_atoms = len(s["types"])
    out["energy"].append(float(E @ w + e0 * n_atoms))
    out["forces"].append((F @ w).tolist())
    out["stress"].append((W @ w / s["volume"]).tolist() if s["stress"] is not None else None)
    v = np.sum(np.linalg.solve(R.T, E) ** 2) - np.sum(np.linalg.solve(L, E) ** 2)
    x, _, _ = arrays(s)
    xh = x / np.linalg.norm(x, axis=1)[:, None]
    same = np.equal.outer(s["types"], s["types"])
    v += soap.delta ** 2 * np.sum(((xh @ xh.T) ** soap.zeta)[same])
    pl = pair_list(s, pair.rc)
    for (_, _, k, v1) in pl:
        for (_, _, q, v2) in pl:
            if k == q:
                v += 4 * pair.k(np.linalg.norm(v1), np.linalg.norm(v2))
    out["variance"].append(float(v))

acdc_sparse = np.array(dump["acdcPairSparse"])
mine = np.concatenate(pair.sparse)
print("sparse distances: numpy", len(mine), "acdc", len(acdc_sparse), "max difference", np.abs(mine - acdc_sparse).max() if len(mine) == len(acdc_sparse) else "count differs")
print("parameters", N, "(soap", soap.n, "+ 2b", pair.n, ") cond(R)", np.linalg.cond(R))
result = {
    "versions": {"numpy": np.__version__, "python": sys.version.split()[0], "acdc_features_from": dump["acdcVersion"]},
    "e0": e0,
    "pair_sparse": [x.tolist() for x in pair.sparse],
    "weights": w.tolist(),
    **out,
}
with open(os.path.join(FIXTURES, "terms_expected.json"), "w") as f:
    json.dump(result, f)
    f.write("\n")
print("wrote", os.path.join(FIXTURES, "terms_expected.json"))
