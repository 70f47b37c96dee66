"""Reference fixtures for selection and analysis, made with skmatter 0.4.1 (dev-only).

acdc never runs Python. This script draws small random matrices (fixed seed),
runs skmatter's farthest point sampling, CUR, GFRE / GFRD / LFRE and local
prediction rigidity on them, plus numpy's SVD (PCA) and a direct numpy
evaluation of the normalised polynomial kernel, and writes one JSON file per
topic to test/fixtures/skmatter/. See test/fixtures/skmatter/README.md.

Run (from the repository root), in a virtual environment outside the
repository:

    python3.11 -m venv /tmp/venv-skmatter
    /tmp/venv-skmatter/bin/pip install -r scripts/reference/requirements-skmatter.txt
    /tmp/venv-skmatter/bin/python scripts/reference/skmatter_fixtures.py

Every array is written as {"shape": [...], "data": [flat row-major]} and every
float with repr() (exact round trip). Each file carries the package versions.
"""

import json
import math
import platform
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import scipy.linalg
from sklearn.model_selection import KFold

from skmatter.feature_selection import CUR as FeatureCUR
from skmatter.feature_selection import FPS as FeatureFPS
from skmatter.metrics import global_reconstruction_distortion as GFRD
from skmatter.metrics import global_reconstruction_error as GFRE
from skmatter.metrics import local_prediction_rigidity as LPR
from skmatter.metrics import local_reconstruction_error as LFRE
from skmatter.metrics._reconstruction_measures import (
    _prepare_data,
    check_global_reconstruction_measures_input,
)
from skmatter.sample_selection import CUR as SampleCUR
from skmatter.sample_selection import FPS as SampleFPS

PINNED = {"skmatter": "0.4.1", "numpy": "2.4.6", "scipy": "1.17.1", "scikit-learn": "1.8.0"}
ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test" / "fixtures" / "skmatter"
SEED = 20261130


def versions():
    got = {name: version(name) for name in PINNED}
    for name, want in PINNED.items():
        if got[name] != want:
            raise SystemExit(f"{name} {got[name]} is installed, the fixtures need {want}")
    got["python"] = platform.python_version()
    return got


def arr(a):
    a = np.asarray(a)
    if a.dtype.kind in "iu":
        return {"shape": list(a.shape), "data": [int(v) for v in a.ravel()]}
    return {"shape": list(a.shape), "data": [float(v) for v in a.ravel()]}


def floats(values):
    return [float(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf") for v in values]


def write(name, payload):
    OUT.mkdir(parents=True, exist_ok=True)
    payload = {"versions": versions(), **payload}
    text = json.dumps(payload, separators=(",", ":"))
    (OUT / f"{name}.json").write_text(text + "\n")
    print(f"{name}.json: {len(text) / 1024:.1f} kB")


# ----------------------------------------------------------------------------
# selection


def fps_case(name, X, n, axis, initialize=0):
    cls = SampleFPS if axis == "samples" else FeatureFPS
    sel = cls(n_to_select=n, initialize=initialize).fit(X)
    return {
        "name": name,
        "X": arr(X),
        "n": n,
        "axis": axis,
        "initialize": initialize,
        "indices": [int(i) for i in sel.selected_idx_],
        "distances": floats(sel.get_select_distance()),
    }


def cur_case(name, X, n, axis, k=1, recompute_every=1):  # noqa: PLR0913
    cls = SampleCUR if axis == "samples" else FeatureCUR
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sel = cls(n_to_select=n, k=k, recompute_every=recompute_every).fit(X)
    return {
        "name": name,
        "X": arr(X),
        "n": n,
        "axis": axis,
        "k": k,
        "recomputeEvery": recompute_every,
        "indices": [int(i) for i in sel.selected_idx_],
    }


def selection(rng):
    X = rng.normal(size=(20, 5))
    Xf = rng.normal(size=(6, 12))
    # integer points with duplicates and equidistant candidates: ties must go
    # to the lowest index, and all arithmetic is exact
    grid = np.array(
        [[0, 0], [2, 0], [0, 2], [2, 2], [1, 1], [0, 2], [4, 0], [0, 4], [4, 4], [2, 0], [-4, 0], [0, -4]],
        dtype=float,
    )
    # feature ties: columns 1 and 4 are equal, 0 and 3 mirror each other
    gridf = np.array([[1, 2, 0, -1, 2, 3], [0, 1, 1, 0, 1, -3], [2, 0, 1, -2, 0, 1], [1, 1, 1, -1, 1, 0]], dtype=float)
    fps = [
        fps_case("samples_init0", X, 8, "samples"),
        fps_case("samples_init3", X, 6, "samples", initialize=3),
        fps_case("samples_init_list", X, 7, "samples", initialize=[2, 7, 11]),
        fps_case("features", Xf, 5, "features"),
        fps_case("features_init_list", Xf, 6, "features", initialize=[4, 1]),
        fps_case("ties_samples", grid, 10, "samples"),
        fps_case("ties_samples_init4", grid, 12, "samples", initialize=4),
        fps_case("ties_features", gridf, 5, "features", initialize=2),
    ]
    Xc = rng.normal(size=(15, 7))
    # rows 2 and 9 identical and dominant: the first pick is a tie
    Xt = rng.normal(size=(10, 4))
    Xt[2] = Xt[9] = 5 * rng.normal(size=4)
    cur = [
        cur_case("samples_k1", Xc, 6, "samples"),
        cur_case("samples_k2", Xc, 6, "samples", k=2),
        cur_case("samples_static", Xc, 5, "samples", recompute_every=0),
        cur_case("samples_every2", Xc, 6, "samples", recompute_every=2),
        cur_case("features_k1", Xc, 5, "features"),
        cur_case("features_k2", Xc, 4, "features", k=2),
        cur_case("features_wide", Xf, 5, "features", k=1),
        cur_case("ties_samples", Xt, 3, "samples"),
    ]
    write("selection", {"fps": fps, "cur": cur})


# ----------------------------------------------------------------------------
# reconstruction measures


def split_reference(n):
    """The default split and 2-fold split of skmatter, from numpy's generator."""
    train, test = check_global_reconstruction_measures_input(np.zeros((n, 2)), np.zeros((n, 2)), None, None, None, None)[:2]
    fold1, fold2 = next(KFold(n_splits=2, shuffle=True, random_state=0x5F3759DF).split(np.zeros((n, 1))))
    return {
        "n": n,
        "train": [int(i) for i in train],
        "test": [int(i) for i in test],
        "fold1": [int(i) for i in fold1],
        "fold2": [int(i) for i in fold2],
    }


def gfrd_general(X, Y, train, test):
    """GFRD for any d_Y and any rank: (value, unique).

    Q is the polar factor U_r V_rᵀ of M = X_trainᵀ X_train W on its r non-zero
    singular values (numpy's matrix_rank tolerance). When r = min(d_X, d_Y)
    (`unique`), it is the only orthogonal solution, and it is checked here
    against the zero-padded scipy Procrustes that skmatter uses (its first d_Y
    columns, which is all of it when d_Y >= d_X). With d_Y < d_X skmatter
    fails (it subtracts an (n, d_X) prediction from an (n, d_Y) one). With r
    smaller, no rotation is unique, and the partial isometry is the
    reproducible choice (it acts on the span of the training data only, like
    the ridge map).
    """
    _, _, scaler, est = check_global_reconstruction_measures_input(X, Y, train, test, None, None)
    Xtr, Xte, Ytr, _ = _prepare_data(X, Y, train, test, scaler)
    est.fit(Xtr, Ytr)
    P = est.predict(Xte)
    M = Xtr.T @ est.predict(Xtr)
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    r = int(np.sum(s > s.max() * max(M.shape) * np.finfo(float).eps))
    Q = U[:, :r] @ Vt[:r]
    value = float(np.linalg.norm(Xte @ Q - P) / np.sqrt(len(test)))
    unique = r == min(M.shape)
    if unique:
        d = max(X.shape[1], Y.shape[1])
        A = np.pad(Xtr, [(0, 0), (0, d - X.shape[1])])
        B = np.pad(est.predict(Xtr), [(0, 0), (0, d - Y.shape[1])])
        Qpad = scipy.linalg.orthogonal_procrustes(A, B)[0][: X.shape[1], : Y.shape[1]]
        padded = float(np.linalg.norm(Xte @ Qpad - P) / np.sqrt(len(test)))
        assert abs(padded - value) <= 1e-12 * value, (padded, value)
    return value, unique


def reconstruction(rng):
    n = 30
    X = rng.normal(size=(n, 6))
    X[:, 2] *= 3.0
    X[:, 4] += 2.0
    # Y: a non-linear function of X plus noise; Ywide has more columns than X
    Y = np.column_stack([X[:, 0] * X[:, 1], np.tanh(X[:, 2]), X[:, 3] + 0.1 * rng.normal(size=n), X[:, 4] ** 2])
    Ywide = np.column_stack([Y, np.sin(X[:, :4]), X[:, 5:6] ** 3])
    perm = rng.permutation(n)
    train, test = perm[:18], perm[18:]
    cases = []
    for label, (tr, te) in {"explicit": (train, test), "default": (None, None), "test_only": (None, test)}.items():
        case = {"split": label, "train": None if tr is None else [int(i) for i in tr], "test": None if te is None else [int(i) for i in te]}
        case["gfre"] = float(GFRE(X, Y, train_idx=tr, test_idx=te))
        case["gfre_wide"] = float(GFRE(X, Ywide, train_idx=tr, test_idx=te))
        case["gfrd_wide"] = float(GFRD(X, Ywide, train_idx=tr, test_idx=te))
        case["lfre"] = float(LFRE(X, Y, n_local_points=8, train_idx=tr, test_idx=te))
        case["lfre_reverse"] = float(LFRE(Y, X, n_local_points=10, train_idx=tr, test_idx=te))
        cases.append(case)
    # d_Y < d_X: skmatter 0.4.1 raises, and the reference is the general
    # formula; with d_Y >= d_X and a unique rotation it must equal skmatter's
    for case in cases:
        tr = None if case["train"] is None else np.array(case["train"])
        te = None if case["test"] is None else np.array(case["test"])
        if tr is None and te is None:
            tr, te = check_global_reconstruction_measures_input(X, Y, None, None, None, None)[:2]
        elif tr is None:
            tr = np.setdiff1d(np.arange(n), te)
        general, unique = gfrd_general(X, Ywide, tr, te)
        if unique:
            assert abs(general - case["gfrd_wide"]) <= 1e-12 * case["gfrd_wide"]
        else:
            case["gfrd_wide_skmatter"] = case["gfrd_wide"]
            case["gfrd_wide"] = general
        case["gfrd_narrow"], case["gfrd_narrow_unique"] = gfrd_general(X, Y, tr, te)
        case["gfrd_reverse"], case["gfrd_reverse_unique"] = gfrd_general(Ywide, X, tr, te)
        try:
            GFRD(X, Y, train_idx=tr, test_idx=te)
            raise SystemExit("skmatter's GFRD worked with d_Y < d_X: revisit the narrow case")
        except ValueError:
            pass
    write(
        "reconstruction",
        {
            "X": arr(X),
            "Y": arr(Y),
            "Ywide": arr(Ywide),
            "cases": cases,
            "splits": [split_reference(m) for m in (2, 7, 30, 31, 100)],
        },
    )


# ----------------------------------------------------------------------------
# local prediction rigidity


def structures(rng, count, n_features, lo=2, hi=6, scale=1.0):
    return [scale * rng.normal(size=(int(rng.integers(lo, hi)), n_features)) + 0.3 for _ in range(count)]


def rigidity(rng):
    cases = []
    for name, train, test, alpha in [
        ("regularised", structures(rng, 12, 5), structures(rng, 4, 5), 1e-3),
        ("strong_alpha", structures(rng, 6, 4, scale=2.0), structures(rng, 3, 4), 0.5),
        # fewer structures than features and no regulariser: rank deficient
        ("rank_deficient", structures(rng, 4, 9), structures(rng, 2, 9), 0.0),
    ]:
        lpr, rank_diff = LPR(train, test, alpha)
        cases.append(
            {
                "name": name,
                "alpha": alpha,
                "train": [arr(x) for x in train],
                "test": [arr(x) for x in test],
                "lpr": [floats(v) for v in lpr],
                "rankDiff": int(rank_diff),
            }
        )
    write("rigidity", {"cases": cases})


# ----------------------------------------------------------------------------
# PCA and kernels (numpy only)


def pca(rng):
    cases = []
    for name, X, n in [
        ("tall", rng.normal(size=(15, 6)) @ rng.normal(size=(6, 6)) + 4.0, 3),
        ("wide", rng.normal(size=(5, 9)), 4),
    ]:
        Xc = X - X.mean(axis=0)
        U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
        cases.append(
            {
                "name": name,
                "X": arr(X),
                "n": n,
                "scores": arr((U * s)[:, :n]),
                "components": arr(Vt[:n]),
                "explainedVariance": floats(s[:n] ** 2 / (X.shape[0] - 1)),
            }
        )
    write("pca", {"cases": cases})


def kernels(rng):
    A = rng.normal(size=(7, 5))
    B = rng.normal(size=(4, 5))
    structA = np.array([0, 0, 0, 1, 1, 2, 2])
    structB = np.array([0, 1, 1, 1])
    cases = []
    for zeta, delta in [(1, 1.0), (2, 1.5), (3, 0.7)]:
        An = A / np.linalg.norm(A, axis=1, keepdims=True)
        Bn = B / np.linalg.norm(B, axis=1, keepdims=True)
        K = delta**2 * (An @ Bn.T) ** zeta
        KS = np.zeros((3, 2))
        for i, si in enumerate(structA):
            for j, sj in enumerate(structB):
                KS[si, sj] += K[i, j]
        cases.append({"zeta": zeta, "delta": delta, "atoms": arr(K), "structures": arr(KS)})
    write("kernels", {"A": arr(A), "B": arr(B), "structuresA": [int(v) for v in structA], "structuresB": [int(v) for v in structB], "cases": cases})


# ----------------------------------------------------------------------------
# SOAP features of examples/molecules.xyz (written by skmatter_soap_features.js)


def soap():
    ps = np.load(OUT / "soap_ps.npy").astype(np.float64)
    rs = np.load(OUT / "soap_rs.npy").astype(np.float64)
    systems = np.load(OUT / "soap_systems.npy").astype(np.int64).ravel()
    ref = {"soap_ps.npy": ps, "soap_rs.npy": rs}

    def fps(name, X, n, axis, initialize=0):
        case = fps_case(name, ref[X], n, axis, initialize)
        case["X"] = {"npy": X}
        return case

    def cur(name, X, n, axis, k=1):
        case = cur_case(name, ref[X], n, axis, k)
        case["X"] = {"npy": X}
        return case

    rng = np.random.default_rng(SEED + 1)
    perm = rng.permutation(len(ps))
    train, test = perm[:80], perm[80:]
    measures = {
        "train": [int(i) for i in train],
        "test": [int(i) for i in test],
        "gfre_ps_rs": float(GFRE(ps, rs, train_idx=train, test_idx=test)),
        "gfre_rs_ps": float(GFRE(rs, ps, train_idx=train, test_idx=test)),
        "gfrd_rs_ps": gfrd_general(rs, ps, train, test)[0],
        "gfrd_ps_rs": gfrd_general(ps, rs, train, test)[0],
        "lfre_rs_ps": float(LFRE(rs, ps, n_local_points=30, train_idx=train, test_idx=test)),
    }
    # 80 training rows for 270 power-spectrum features: the rotation is not
    # unique; skmatter's number is kept for information only
    measures["gfrd_rs_ps_skmatter"] = float(GFRD(rs, ps, train_idx=train, test_idx=test))

    # per-structure lists of atomic radial-spectrum features; first 25 structures train
    structures = sorted(set(systems.tolist()))
    per = [rs[systems == s] for s in structures]
    lpr, rank_diff = LPR(per[:25], per[25:], 1e-4)

    Xc = ps - ps.mean(axis=0)
    U, sv, Vt = np.linalg.svd(Xc, full_matrices=False)
    write(
        "soap",
        {
            "description": "carbon environments of examples/molecules.xyz: soap_ps.npy (power spectrum), soap_rs.npy (radial spectrum)",
            "fps": [
                fps("soap_samples", "soap_ps.npy", 15, "samples"),
                fps("soap_features", "soap_ps.npy", 25, "features", initialize=5),
            ],
            "cur": [
                cur("soap_samples", "soap_ps.npy", 12, "samples"),
                cur("soap_features", "soap_ps.npy", 15, "features"),
                cur("soap_rs_samples_k2", "soap_rs.npy", 10, "samples", k=2),
            ],
            "measures": measures,
            "rigidity": {
                "alpha": 1e-4,
                "structureCounts": [int(len(x)) for x in per],
                "trainStructures": 25,
                "lpr": [floats(v) for v in lpr],
                "rankDiff": int(rank_diff),
            },
            "pca": {
                "n": 5,
                "scores": arr((U * sv)[:, :5]),
                "components": arr(Vt[:5]),
                "explainedVariance": floats(sv[:5] ** 2 / (len(ps) - 1)),
            },
        },
    )


if __name__ == "__main__":
    versions()
    rng = np.random.default_rng(SEED)
    selection(rng)
    reconstruction(rng)
    rigidity(rng)
    pca(rng)
    kernels(rng)
    soap()
