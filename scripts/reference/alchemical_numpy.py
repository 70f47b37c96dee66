"""A plain numpy transcription of acdc's SparseGPR and LinearModel with
pseudo-elements (density.alchemical; docs/MODELS.md "Pseudo-elements";
dev-only).

Input: the dump of scripts/reference/alchemical_dump.js: the ordinary
species-resolved spherical expansion c_(a l m n)(i) of every atom with its
position and strain gradients (acdc's, checked against featomic elsewhere),
acdc's ordinary power spectrum (values only), the targets, and for each
coupling the sparse environments acdc's SparseGPR chose. Everything from the
expansion on is done here:

  pseudo-element density   c_(b l m n) = Σ_a U_ba c_(a l m n)
  power spectrum           p^(b1 b2)_(l n1 n2) = w (−1)^l / √(2l+1) Σ_m c_(b1 l m n1) c_(b2 l m n2),
                           b1 ≤ b2, w = √2 if b1 ≠ b2 else 1; per centre the
                           pairs in order, each (l, n1, n2) with n2 fastest
  gradients                by the product rule from the expansion's gradients
                           (positions: ∂/∂r_j; strain: ∂/∂ε, 9 components)

With U = I this must be acdc's ordinary power spectrum (checked first, to
1e-12 relative: it pins the convention without reading acdc's pseudo-element
code). Then, per coupling of test/fixtures/models/alchemical_case.json and
with the settings of test/fixtures/models/small_case.json:

  SparseGPR   the sparse environments are acdc's choice, but every one is
              matched to this file's own feature row of a training atom
              (≤ 1e-10) and that row is used;
  both        the model algebra of model_algebra.py (kernel, weighted rows,
              prior, QR, variance), on these features.

Writes test/fixtures/models/alchemical_expected.json (weights, energies,
forces, stress and variances of the test frames).

Run:
  node scripts/reference/alchemical_dump.js /tmp/alchemical_dump.json
  /tmp/venv-models/bin/python scripts/reference/alchemical_numpy.py /tmp/alchemical_dump.json
"""
import json
import os
import sys

import numpy as np

import model_algebra

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
FIXTURES = os.path.join(ROOT, "test", "fixtures", "models")

dump = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "/tmp/alchemical_dump.json"))
setup = json.load(open(os.path.join(FIXTURES, "small_case.json")))
cases = json.load(open(os.path.join(FIXTURES, "alchemical_case.json")))
species = dump["species"]
S, L, NR = len(species), dump["maxAngular"], dump["nRadial"]
LM = (L + 1) ** 2


def expansion(s):
    """c (n, S, LM, NR); position gradients [(i, j, (3, S, LM, NR))]; strain (n, 9, S, LM, NR) or None."""
    n = len(s["types"])
    c = np.array(s["expansion"], dtype=float).reshape(n, S, LM, NR)
    g = [(d["i"], d["j"], np.array(d["values"], dtype=float).reshape(3, S, LM, NR)) for d in s["positions"]]
    e = np.array(s["strain"], dtype=float).reshape(n, 9, S, LM, NR) if s["strain"] is not None else None
    return c, g, e


class Features:
    """The power spectrum of the pseudo-element density U c, with its gradients."""

    def __init__(self, U):
        self.U = np.asarray(U, dtype=float)
        self.B = self.U.shape[0]
        self.pairs = [(b1, b2) for b1 in range(self.B) for b2 in range(b1, self.B)]
        self.P = len(self.pairs) * (L + 1) * NR * NR

    def _pseudo(self, c):
        # c: (..., S, LM, NR) → (..., B, LM, NR)
        return np.einsum("ba,...alm->...blm", self.U, c)

    def _product(self, x, y):
        """Σ_m x_(b1 l m n1) y_(b2 l m n2) with the factors, joined; x, y: (B, LM, NR)."""
        out = []
        for b1, b2 in self.pairs:
            w = np.sqrt(2.0) if b1 != b2 else 1.0
            for l in range(L + 1):
                m = slice(l * l, (l + 1) ** 2)
                f = w * (-1.0) ** l / np.sqrt(2 * l + 1)
                out.append(f * (x[b1, m].T @ y[b2, m]).ravel())
        return np.concatenate(out)

    def frame(self, s):
        """x (n, P), position gradients [(i, j, (3, P))], strain gradients (n, 9, P) or None."""
        c, grads, strain = expansion(s)
        cb = self._pseudo(c)
        x = np.array([self._product(ci, ci) for ci in cb])
        dx = []
        for i, j, g in grads:
            gb = self._pseudo(g)
            dx.append((i, j, np.array([self._product(gb[k], cb[i]) + self._product(cb[i], gb[k]) for k in range(3)])))
        ds = None
        if strain is not None:
            sb = self._pseudo(strain)
            ds = np.array([[self._product(sb[i, k], cb[i]) + self._product(cb[i], sb[i, k]) for k in range(9)] for i in range(len(cb))])
        return x, dx, ds


# ------------------------------------------------------------- check with U = I
ident = Features(np.eye(S))
worst = 0.0
for s in dump["train"] + dump["test"]:
    x, _, _ = ident.frame(s)
    ref = np.array(s["power"], dtype=float).reshape(x.shape)
    worst = max(worst, np.abs(x - ref).max() / np.abs(ref).max())
print(f"U = I: numpy's power spectrum vs acdc's ordinary one: {worst:.2e} relative")
assert worst < 1e-12, worst


class Gpr(model_algebra.SparseKernel):
    """The SparseGPR with acdc's sparse environments, each matched to this file's own feature row of a training atom."""

    def __init__(self, opts, feats, train_x, sparse):
        counts = sparse["counts"]
        flat = np.array(sparse["features"]).reshape(sum(counts), feats.P)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        hat = []
        self.match = 0.0
        for c in range(S):
            mine = np.vstack([x[np.array(t) == species[c]] for x, t in train_x])
            mine_hat = mine / np.linalg.norm(mine, axis=1)[:, None]
            rows = []
            for h in flat[offsets[c]:offsets[c + 1]]:
                h = h / np.linalg.norm(h)
                k = np.argmin(np.linalg.norm(mine_hat - h, axis=1))
                self.match = max(self.match, np.linalg.norm(mine_hat[k] - h))
                rows.append(mine_hat[k])
            hat.append(np.array(rows))
        assert self.match < 1e-10, self.match
        super().__init__(opts["kernel"]["zeta"], opts["kernel"]["delta"], opts.get("jitter", 1e-8), hat, offsets)


def fit_predict(model, case, opts, e0, train_f, test_f, gpr):
    """model_algebra's fit and predict on this file's pseudo-element features."""
    w, R, L_ = model_algebra.fit(case, model, opts, e0, features=train_f)
    out = {"weights": w.tolist(), **model_algebra.predict(case, model, w, R, L_, e0, gpr, features=test_f)}
    print(f"  parameters {model.n}, cond(R) {np.linalg.cond(R):.3g}")
    return out


e0 = float(np.mean([s["energy"] / len(s["types"]) for s in dump["train"]]))
result = {
    "versions": {"numpy": np.__version__, "python": sys.version.split()[0], "acdc_expansion_from": dump["acdcVersion"]},
    "identity_check": worst,
    "e0": e0,
    "cases": {},
}
for name, U in cases["couplings"].items():
    feats = Features(U)
    train_f = [feats.frame(s) for s in dump["train"]]
    test_f = [feats.frame(s) for s in dump["test"]]
    print(f"{name}: B = {feats.B}, {feats.P} features per centre species")
    case = model_algebra.Case(dump, feats.P)
    gpr = Gpr(setup["gpr"], feats, [(f[0], s["types"]) for s, f in zip(dump["train"], train_f)], dump["sparse"][name])
    print(f"  sparse environments matched to numpy's own rows within {gpr.match:.1e}")
    result["cases"][name] = {
        "coupling": U,
        "gpr": fit_predict(gpr, case, setup["gpr"], e0, train_f, test_f, True),
        "linear": fit_predict(model_algebra.Linear(case, setup["linear"]), case, setup["linear"], e0, train_f, test_f, False),
    }
with open(os.path.join(FIXTURES, "alchemical_expected.json"), "w") as fh:
    json.dump(result, fh)
    fh.write("\n")
print("wrote", os.path.join(FIXTURES, "alchemical_expected.json"))
