"""numpy transcription of symmetry-adapted sparse GPR (SparseTensorGPR) and
linear λ-SOAP regression (TensorLinearModel), written from the equations in
docs/MODELS.md (A. Grisafi, D. M. Wilkins, G. Csányi, M. Ceriotti, PRL 120,
036002 (2018)), independently of the Rust code (dev-only).

Dipoles are fitted twice: with the per-species charge term
Σ_i q_{Z_i} (r_i − r̄) fitted jointly with the weights (no prior on the
charges; acdc's default) and without it. acdc fixes the charges' common shift
(which no dipole sees) by a weighted gauge row Σ_Z N_Z q_Z = 0 in its QR
system; here the charges are instead parametrised in the null space of that
constraint (q = B c, B an orthonormal basis from an SVD), a different route
to the same minimiser.

Input: the λ-SOAP blocks dumped by scripts/reference/tensor_dump.js. Output:
test/fixtures/tensors/small_case_expected.json, the predicted Cartesian
tensors of the test frames for both models and both targets, which
test/tensor_models.test.ts compares with acdc (≤ 1e-8 relative).

Run:
    node scripts/reference/tensor_dump.js /tmp/tensor_dump.json
    /tmp/venv-tensor/bin/python scripts/reference/tensor_gpr_numpy.py /tmp/tensor_dump.json
"""
import json
import os
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")

# featomic's real spherical harmonics (l = 2) as quadratic forms r^T E_mu r,
# up to one common factor: xy, yz, (3z^2 - r^2)/(2 sqrt 3), xz, (x^2 - y^2)/2
E2 = np.zeros((5, 3, 3))
E2[0][0, 1] = E2[0][1, 0] = 1
E2[1][1, 2] = E2[1][2, 1] = 1
E2[2] = np.diag([-1.0, -1.0, 2.0])
E2[3][0, 2] = E2[3][2, 0] = 1
E2[4] = np.diag([1.0, -1.0, 0.0])
E2 /= np.sqrt((E2**2).sum(axis=(1, 2)))[:, None, None]   # orthonormal (Frobenius)
E0 = np.eye(3) / np.sqrt(3)


def to_spherical(target, t):
    if target == "dipole":
        return {1: np.array([t[1], t[2], t[0]])}
    T = np.array(t).reshape(3, 3)
    return {0: np.array([(E0 * T).sum()]), 2: np.array([(E * T).sum() for E in E2])}


def from_spherical(target, s):
    if target == "dipole":
        return np.array([s[1][2], s[1][0], s[1][1]])
    return (s[0][0] * E0 + np.einsum("m,mab->ab", s[2], E2)).reshape(9)


def normalise(x):
    n = np.linalg.norm(x)
    return x / n if n > 0 else np.zeros_like(x)


def features(frames, lam):
    """per frame: list of (species, raw λ block (2λ+1, q), P̂, ŝ)."""
    out = []
    for f in frames:
        atoms = []
        for a in f["atoms"]:
            q = a["q"][str(lam)]
            raw = np.array(a["blocks"][str(lam)]).reshape(2 * lam + 1, q)
            s = normalise(np.array(a["blocks"]["0"]))
            atoms.append((a["type"], raw, normalise(raw), s))
        out.append(atoms)
    return out


def charge_design(frame, species):
    """(3, S): column Z = Σ_{i: Z_i = Z} (r_i − r̄), in the λ = 1 order (y, z, x)."""
    r = np.array(frame["positions"]).reshape(-1, 3)
    d = r - r.mean(axis=0)
    out = np.zeros((3, len(species)))
    for t, v in zip(frame["types"], d):
        out[:, species.index(t)] += v[[1, 2, 0]]
    return out


def fit_predict(dump, target, kind, charges=False):
    setup = dump["setup"]
    if kind == "linear":
        dump = {**dump, "train": dump["train_linear"], "test": dump["test_linear"]}
    species = dump["species"]
    lambdas = [1] if target == "dipole" else [0, 2]
    ytrain = [to_spherical(target, f[target]) for f in dump["train"]]
    preds = [dict() for _ in dump["test"]]
    for lam in lambdas:
        nmu = 2 * lam + 1
        ftrain = features(dump["train"], lam)
        ftest = features(dump["test"], lam)
        y = np.array([t[lam] for t in ytrain])                       # (N, nmu)
        natoms = np.array([len(f) for f in ftrain])
        offset = np.mean(y[:, 0] / natoms) if lam == 0 else 0.0
        y = y.copy()
        y[:, 0] -= natoms * offset
        if kind == "gpr":
            o = setup["gpr"]
            zeta, sigma, jitter = o["kernel"]["zeta"], o["sigma"], o["jitter"]
            sparse = []                                               # (species, P̂, ŝ)
            for z in species:
                cand = [(p, s) for f in ftrain for (t, _, p, s) in f if t == z and np.any(p != 0)]
                idx = np.random.RandomState(o["sparse"]["seed"]).permutation(len(cand))[: o["sparse"]["count"][str(z)]]
                sparse += [(z, cand[k][0], cand[k][1]) for k in idx]
            M = len(sparse)

            def design(atoms):
                row = np.zeros((nmu, M * nmu))
                for (t, _, p, s) in atoms:
                    for m, (zm, pm, sm) in enumerate(sparse):
                        if zm == t:
                            row[:, m * nmu:(m + 1) * nmu] += (p @ pm.T) * (s @ sm) ** (zeta - 1)
                return row

            kmm = np.zeros((M * nmu, M * nmu))
            for a, (za, pa, sa) in enumerate(sparse):
                for b, (zb, pb, sb) in enumerate(sparse):
                    if za == zb:
                        kmm[a * nmu:(a + 1) * nmu, b * nmu:(b + 1) * nmu] = (pa @ pb.T) * (sa @ sb) ** (zeta - 1)
            prior = np.linalg.cholesky(kmm + jitter * np.eye(M * nmu)).T
        else:
            o = setup["linear"]
            sigma = o["sigma"]
            q = ftrain[0][0][1].shape[1]
            S = len(species)

            def design(atoms):
                row = np.zeros((nmu, S * q))
                for (t, raw, _, _) in atoms:
                    c = species.index(t)
                    row[:, c * q:(c + 1) * q] += raw
                return row

            prior = np.sqrt(o["regularizer"]) * np.eye(S * q)
        phi = np.concatenate([design(f) for f in ftrain]) / sigma
        A = np.concatenate([phi, prior])
        b = np.concatenate([y.reshape(-1) / sigma, np.zeros(prior.shape[0])])
        qz = None                                                     # charges per species
        if charges and lam == 1:
            counts = np.array([sum(t == z for f in dump["train"] for t in f["types"]) for z in species], dtype=float)
            B = np.linalg.svd(counts[None, :])[2][1:].T                # (S, S-1), orthonormal, counts @ B = 0
            D = np.concatenate([charge_design(f, species) for f in dump["train"]]) @ B / sigma
            A = np.concatenate([A, np.concatenate([D, np.zeros((prior.shape[0], B.shape[1]))])], axis=1)
        w, *_ = np.linalg.lstsq(A, b, rcond=None)
        if charges and lam == 1:
            w, qz = w[: phi.shape[1]], B @ w[phi.shape[1]:]
            charge_values = qz.tolist()
        for k, f in enumerate(ftest):
            s = design(f) @ w
            s[0] += len(f) * offset
            if qz is not None:
                s += charge_design(dump["test"][k], species) @ qz
            preds[k][lam] = s
    out = [from_spherical(target, p).tolist() for p in preds]
    return (out, charge_values) if charges else out


def main():
    dump = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tensor_dump.json"))
    expected = {"numpy": np.__version__, "python": sys.version.split()[0], "script": "scripts/reference/tensor_gpr_numpy.py"}
    for kind in ["gpr", "linear"]:
        for target in ["dipole", "polarizability"]:
            if target == "dipole":
                # the default of acdc's dipole models: with the charge term
                expected[f"{kind}_dipole"], expected[f"{kind}_dipole_charges"] = fit_predict(dump, target, kind, charges=True)
                expected[f"{kind}_dipole_no_charges"] = fit_predict(dump, target, kind)
            else:
                expected[f"{kind}_{target}"] = fit_predict(dump, target, kind)
    path = os.path.join(ROOT, "test", "fixtures", "tensors", "small_case_expected.json")
    with open(path, "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
