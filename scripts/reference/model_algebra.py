"""The model algebra of acdc's SparseGPR and LinearModel, written out in plain
numpy (dev-only), shared by the transcriptions that differ only in the
per-atom feature vector: gpr_numpy.py (power spectrum), nu3_numpy.py
(bispectrum) and alchemical_numpy.py (power spectrum of pseudo-elements).

Equations (docs/MODELS.md):
  k(x, x') = δ² (x̂·x̂')^ζ, same centre species only
  E = Σ_i e0 + Σ_i Σ_m α_m k(x_i, x_m);  F_j = −∂E/∂r_j;  σ_ab = (1/V) ∂E/∂ε_ab
  rows: energies (σ_E √N), forces (σ_F), Voigt stress xx yy zz yz xz xy of the
  symmetrised (1/V)∂E/∂ε (σ_S); prior rows Lᵀ with L Lᵀ = K_MM + jitter δ² I
  variance = k** − |L⁻¹k*|² + |R⁻ᵀk*|²
  linear: E = Σ_i e0 + w_Z·x_i, prior rows √λ I, variance |R⁻ᵀφ|²

A case is a dump (written by a *_dump.js script: per-atom features with
position and strain gradients, targets, the SparseGPR's sparse environments)
and P, the length of one atom's feature vector.
"""
import numpy as np

VOIGT = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]


class Case:
    def __init__(self, dump, P):
        self.dump = dump
        self.species = dump["species"]
        self.P = P


def mean_e0(case):
    """e0: the mean energy per atom of the training frames, eV."""
    return float(np.mean([s["energy"] / len(s["types"]) for s in case.dump["train"]]))


def fit_and_predict(case, setup, frame_sigmas=None):
    """Both models with the settings setup["gpr"] and setup["linear"]: weights and test predictions."""
    e0 = mean_e0(case)
    result = {}
    for name, cls in [("gpr", Gpr), ("linear", Linear)]:
        opts = setup[name]
        model = cls(case, opts)
        w, R, L = fit(case, model, opts, e0, frame_sigmas)
        result[name] = {"weights": w.tolist(), **predict(case, model, w, R, L, e0, name == "gpr")}
        print(name, "parameters", model.n, "cond(R)", np.linalg.cond(R))
    return e0, result


def arrays(case, s):
    """Features (n × P), position gradients [(i, j, 3 × P)] and strain gradients (n × 9 × P) of one structure."""
    P = case.P
    n = len(s["types"])
    x = np.array(s["features"], dtype=float).reshape(n, P)
    grads = [(g["i"], g["j"], np.array(g["values"]).reshape(3, P)) for g in s["positions"]]
    strain = np.array(s["strain"], dtype=float).reshape(n, 9, P) if s["strain"] else None
    return x, grads, strain


class SparseKernel:
    """k(x, x') = δ² (x̂·x̂')^ζ against the normalised sparse environments `hat[c]` of each centre species c."""

    def __init__(self, zeta, delta, jitter, hat, offsets):
        self.zeta, self.delta, self.jitter = zeta, delta, jitter
        self.hat = hat
        self.offsets = offsets
        self.n = int(self.offsets[-1])

    def prior(self):
        L = np.zeros((self.n, self.n))
        d2 = self.delta ** 2
        for c, h in enumerate(self.hat):
            kmm = d2 * (h @ h.T) ** self.zeta + self.jitter * d2 * np.eye(len(h))
            o = self.offsets[c]
            L[o:o + len(h), o:o + len(h)] = np.linalg.cholesky(kmm)
        return L

    def atom(self, c, x):
        """k (M_c) and ∂k/∂x (M_c × P) of one atom, and the parameter slice."""
        nx = np.linalg.norm(x)
        xh = x / nx
        s = self.hat[c] @ xh
        d2 = self.delta ** 2
        k = d2 * s ** self.zeta
        dk = (d2 * self.zeta * s ** (self.zeta - 1) / nx)[:, None] * (self.hat[c] - s[:, None] * xh[None, :])
        return k, dk, slice(self.offsets[c], self.offsets[c + 1])

    def self_kernel(self, x, types):
        """Σ_ij k(x_i, x_j) over the atom pairs of one structure with the same centre species."""
        xh = x / np.linalg.norm(x, axis=1)[:, None]
        same = np.equal.outer(types, types)
        return self.delta ** 2 * np.sum(((xh @ xh.T) ** self.zeta)[same])


class Gpr(SparseKernel):
    """The SparseGPR on the dump's features, with the sparse environments acdc chose (read from the dump)."""

    def __init__(self, case, opts):
        counts = case.dump["sparseCounts"]
        flat = np.array(case.dump["sparseFeatures"]).reshape(sum(counts), case.P)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        hat = [flat[offsets[c]:offsets[c + 1]] for c in range(len(case.species))]
        hat = [h / np.linalg.norm(h, axis=1)[:, None] for h in hat]
        super().__init__(opts["kernel"]["zeta"], opts["kernel"]["delta"], opts.get("jitter", 1e-8), hat, offsets)


class Linear:
    def __init__(self, case, opts):
        self.lam = opts["regularizer"]
        self.P = case.P
        self.n = len(case.species) * case.P

    def prior(self):
        return np.sqrt(self.lam) * np.eye(self.n)

    def atom(self, c, x):
        P = self.P
        return x.copy(), np.eye(P), slice(c * P, (c + 1) * P)


def design(case, model, s, forces, stress, features=None):
    """Unweighted rows: energy, 3N forces, 6 Voigt stress (in that order), and the 3×3 virial rows.

    `features`: the structure's (x, position gradients, strain gradients) as
    `arrays` returns them, when they are not the dump's own (default).
    """
    x, grads, strain = features if features is not None else arrays(case, s)
    n_atoms = len(s["types"])
    E = np.zeros(model.n)
    F = np.zeros((3 * n_atoms, model.n))
    W = np.zeros((9, model.n))
    for i in range(n_atoms):
        c = case.species.index(s["types"][i])
        k, dk, sl = model.atom(c, x[i])
        E[sl] += k
        if forces:
            for (ii, j, g) in grads:
                if ii == i:
                    F[3 * j:3 * j + 3, sl] -= g @ dk.T
        if stress and strain is not None:
            W[:, sl] += strain[i] @ dk.T
    rows = [E[None, :]]
    if forces:
        rows.append(F)
    if stress and s["stress"] is not None:
        V = s["volume"]
        rows.append(np.array([0.5 * (W[3 * a + b] + W[3 * b + a]) / V for a, b in VOIGT]))
    return np.vstack(rows), W


def fit(case, model, opts, e0, frame_sigmas=None, features=None):
    """Weights, R of the QR of the weighted rows and the prior factor L; `features`: per training frame, as in `design`."""
    sig = opts["sigmas"]
    A, y = [], []
    for k, s in enumerate(case.dump["train"]):
        rows, _ = design(case, model, s, True, True, features[k] if features else None)
        n_atoms = len(s["types"])
        # a structure's own sigmas (absolute; virial σ_v in eV gives σ_v/V on stress) replace the defaults
        own = (frame_sigmas[k] if frame_sigmas else None) or {}
        s_e = own.get("energy", sig["energy"] * np.sqrt(n_atoms))
        s_f = own.get("forces", sig["forces"])
        s_s = own["stress"] if "stress" in own else own["virial"] / s["volume"] if "virial" in own else sig["stress"]
        scale = [1 / s_e] + [1 / s_f] * (3 * n_atoms)
        t = [s["energy"] - e0 * n_atoms] + list(s["forces"])
        if s["stress"] is not None:
            scale += [1 / s_s] * 6
            t += [0.5 * (s["stress"][3 * a + b] + s["stress"][3 * b + a]) for a, b in VOIGT]
        scale = np.array(scale)
        A.append(rows * scale[:, None])
        y.append(np.array(t) * scale)
    L = model.prior()
    A = np.vstack(A + [L.T])
    b = np.concatenate(y + [np.zeros(model.n)])
    Q, R = np.linalg.qr(A)
    w = np.linalg.solve(R, Q.T @ b)
    return w, R, L


def predict(case, model, w, R, L, e0, gpr, features=None):
    """Energies, forces, stress and variances of the test frames; `features`: per test frame, as in `design`."""
    out = {"energy": [], "forces": [], "stress": [], "variance": []}
    for k, s in enumerate(case.dump["test"]):
        own = features[k] if features else None
        rows, W = design(case, model, s, True, True, own)
        n_atoms = len(s["types"])
        out["energy"].append(float(rows[0] @ w + e0 * n_atoms))
        out["forces"].append((rows[1:1 + 3 * n_atoms] @ w).tolist())
        if s["stress"] is not None:
            out["stress"].append((W @ w / s["volume"]).tolist())
        else:
            out["stress"].append(None)
        phi = rows[0]
        v = np.sum(np.linalg.solve(R.T, phi) ** 2)
        if gpr:
            x = own[0] if own is not None else arrays(case, s)[0]
            v += model.self_kernel(x, s["types"]) - np.sum(np.linalg.solve(L, phi) ** 2)
        out["variance"].append(float(v))
    return out
