"""Reference fixture for kernel PCA, made with scikit-learn 1.8.0 (dev-only).

acdc never runs Python. This script draws random feature matrices (fixed
seed), builds the normalised polynomial kernel k(x, x') = (x̂·x̂')^ζ with numpy,
and runs `sklearn.decomposition.KernelPCA(n_components, kernel="precomputed",
eigen_solver="dense")` on it: `fit_transform` (the scores), `eigenvalues_`
(eigenvalues of the centred kernel) and `eigenvectors_`. Writes
test/fixtures/sklearn/kernel_pca.json. Run (from the repository root) in the
environment of scripts/reference/requirements-skmatter.txt:

    /tmp/venv-skmatter/bin/python scripts/reference/sklearn_kernel_pca.py

Arrays are {"shape": [...], "data": [flat row-major]}, floats exact (repr).
"""

import json
import platform
from importlib.metadata import version
from pathlib import Path

import numpy as np
from sklearn.decomposition import KernelPCA

PINNED = {"numpy": "2.4.6", "scikit-learn": "1.8.0"}
OUT = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "sklearn"
SEED = 20261130


def versions():
    got = {name: version(name) for name in PINNED}
    for name, want in PINNED.items():
        if got[name] != want:
            raise SystemExit(f"{name} {got[name]} is installed, the fixture needs {want}")
    got["python"] = platform.python_version()
    return got


def arr(a):
    a = np.asarray(a, dtype=float)
    return {"shape": list(a.shape), "data": [float(v) for v in a.ravel()]}


def kernel(X, zeta):
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    return (Xn @ Xn.T) ** zeta


def case(name, X, zeta, n):
    K = kernel(X, zeta)
    kpca = KernelPCA(n_components=n, kernel="precomputed", eigen_solver="dense")
    scores = kpca.fit_transform(K)
    return {
        "name": name,
        "X": arr(X),
        "zeta": zeta,
        "n": n,
        "kernel": arr(K),
        "scores": arr(scores),
        "eigenvalues": arr(kpca.eigenvalues_),
        "eigenvectors": arr(kpca.eigenvectors_),
    }


def main():
    rng = np.random.default_rng(SEED)
    cases = [
        case("zeta2", rng.normal(size=(40, 7)) + 0.5, 2, 4),
        case("zeta1", rng.uniform(size=(25, 5)), 1, 3),
        case("zeta3_positive", np.abs(rng.normal(size=(30, 12))), 3, 5),
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"versions": versions(), "seed": SEED, "cases": cases}, separators=(",", ":"))
    (OUT / "kernel_pca.json").write_text(text + "\n")
    print(f"kernel_pca.json: {len(text) / 1024:.1f} kB")


if __name__ == "__main__":
    main()
