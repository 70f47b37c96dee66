"""Hard selection fixtures: skmatter 0.4.1 CUR and FPS, step by step (dev-only).

acdc never runs Python. This script draws random, low-rank, rank-deficient,
badly scaled (columns spanning 1e-8 .. 1e8), duplicate-row and small matrices
of many shapes (fixed seed), runs skmatter's CUR and FPS on both axes and
records how well every step is determined:

- CUR: `pi` (the importance of every candidate, selected ones as "-inf"),
  `residual` = ‖X_current‖_F / ‖X‖_F before the pick, and `sk` = σ_k/σ_1 of
  X_current (numpy's LAPACK SVD). When the residual has rank < k (σ_k/σ_1 at
  rounding level) or has vanished, skmatter's π comes from singular vectors
  of rounding noise: its pick is arbitrary.
- FPS: the Hausdorff distance of every candidate.

Only the scores of the first undetermined step are written (`next`), to keep
the file small.

`determined` is the number of leading steps whose pick does not depend on
rounding: the winner beats the runner-up by more than `gap` (CUR: 1e-6 in π,
which lies in [0, k]; FPS: 1e-9 × the largest squared norm, the resolution
of d = |a|² + |b|² − 2 a·b), and (CUR) σ_k/σ_1 > 1e-8 and the residual >
1e-10. acdc must give the same indices on that prefix; after it, its pick
must be a tie in skmatter's own scores (or the residual must have vanished).

Run (from the repository root), in a virtual environment outside the
repository:

    python3.11 -m venv /tmp/venv-skmatter
    /tmp/venv-skmatter/bin/pip install -r scripts/reference/requirements-skmatter.txt
    /tmp/venv-skmatter/bin/python scripts/reference/skmatter_selection_hard.py

Writes test/fixtures/skmatter/selection_hard.json: `matrices` (by name,
{shape, data} row-major), and the `cur` and `fps` cases that name their X;
floats as repr() (exact round trip); the package versions are recorded in
the file.
"""

import json
import math
import platform
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np

from skmatter.feature_selection import CUR as FeatureCUR
from skmatter.feature_selection import FPS as FeatureFPS
from skmatter.sample_selection import CUR as SampleCUR
from skmatter.sample_selection import FPS as SampleFPS

PINNED = {"skmatter": "0.4.1", "numpy": "2.4.6", "scipy": "1.17.1", "scikit-learn": "1.8.0"}
ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test" / "fixtures" / "skmatter" / "selection_hard.json"
SEED = 20261206
CUR_GAP = 1e-6
FPS_GAP = 1e-9
MIN_SK = 1e-8
MIN_RESIDUAL = 1e-10


def versions():
    got = {name: version(name) for name in PINNED}
    for name, want in PINNED.items():
        if got[name] != want:
            raise SystemExit(f"{name} {got[name]} is installed, the fixtures need {want}")
    got["python"] = platform.python_version()
    return got


def floats(values):
    return [float(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf") for v in values]


def arr(a):
    return {"shape": list(a.shape), "data": [float(v) for v in np.asarray(a).ravel()]}


def gap(scores, chosen):
    """How far the chosen score is ahead of the best other candidate."""
    others = np.delete(scores, chosen)
    others = others[np.isfinite(others)]
    return math.inf if len(others) == 0 else float(scores[chosen] - others.max())


def recording(cls):
    """A subclass of a skmatter selector that keeps every step's scores."""

    class Recording(cls):
        def _get_best_new_selection(self, scorer, X, y):
            scores = np.array(scorer(X, y), dtype=float, copy=True)
            scores[self.selected_idx_[: self.n_selected_]] = -np.inf
            step = {"scores": scores}
            if hasattr(self, "X_current_"):
                current = self.X_current_
                step["residual"] = float(np.linalg.norm(current) / np.linalg.norm(X)) if np.linalg.norm(X) > 0 else 0.0
                s = np.linalg.svd(current, compute_uv=False)
                step["sk"] = float(s[self.k - 1] / s[0]) if s[0] > 0 else 0.0
            self.steps_.append(step)
            return super()._get_best_new_selection(scorer, X, y)

    return Recording


def step_json(step):
    """The first undetermined step: every candidate's score (selected: -inf)."""
    out = {"scores": floats(step["scores"])}
    for key in ("residual", "sk"):
        if key in step:
            out[key] = step[key]
    return out


def cur_case(name, X, n, axis, k, recompute_every=1):  # noqa: PLR0913
    cls = recording(SampleCUR if axis == "samples" else FeatureCUR)
    sel = cls(n_to_select=n, k=k, recompute_every=recompute_every)
    sel.steps_ = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sel.fit(X)
    indices = [int(i) for i in sel.selected_idx_]
    determined = 0
    for t, step in enumerate(sel.steps_):
        ok = gap(step["scores"], indices[t]) > CUR_GAP
        if recompute_every != 0:
            ok = ok and step["sk"] > MIN_SK and step["residual"] > MIN_RESIDUAL
        if not ok:
            break
        determined += 1
    return {
        "name": name,
        "n": n,
        "axis": axis,
        "k": k,
        "recomputeEvery": recompute_every,
        "indices": indices,
        "determined": determined,
        "next": None if determined >= len(sel.steps_) else step_json(sel.steps_[determined]),
    }


def fps_case(name, X, n, axis, initialize=0):
    cls = recording(SampleFPS if axis == "samples" else FeatureFPS)
    sel = cls(n_to_select=n, initialize=initialize)
    sel.steps_ = []
    sel.fit(X)
    indices = [int(i) for i in sel.selected_idx_]
    scale = float((X**2).sum(axis=1 if axis == "samples" else 0).max())
    first = len(indices) - len(sel.steps_)  # the initial points are given, not chosen
    determined = first
    for t, step in enumerate(sel.steps_):
        if gap(step["scores"], indices[first + t]) <= FPS_GAP * scale:
            break
        determined += 1
    return {
        "name": name,
        "n": n,
        "axis": axis,
        "initialize": initialize,
        "indices": indices,
        "distances": floats(sel.get_select_distance()),
        "determined": determined,
        "next": None if determined - first >= len(sel.steps_) else step_json(sel.steps_[determined - first]),
    }


def matrices(rng):
    """(name, X, n_samples, n_features, k_samples, k_features) cases."""
    out = []

    def add(name, X, ns, nf, ks=1, kf=1):
        out.append((name, X, min(ns, X.shape[0]), min(nf, X.shape[1]), ks, kf))

    for seed in range(3):
        add(f"uniform_60x12_s{seed}", rng.uniform(size=(60, 12)), 12, 12, 8, 8)
    add("uniform_60x12_k1", rng.uniform(size=(60, 12)), 20, 12)
    # rounded to 6 decimals to keep the file small (still full rank)
    add("uniform_500x100_k20", np.round(rng.uniform(size=(500, 100)), 6), 30, 30, 20, 20)
    add("normal_12x60", rng.normal(size=(12, 60)), 12, 20, 3, 3)
    add("normal_12x60_k1", rng.normal(size=(12, 60)), 12, 20)
    add("rank3_50x50", rng.normal(size=(50, 3)) @ rng.normal(size=(3, 50)), 8, 8, 2, 2)
    add("rank3_50x50_k1", rng.normal(size=(50, 3)) @ rng.normal(size=(3, 50)), 6, 6)
    add("rank1_30x8", np.outer(rng.normal(size=30), rng.normal(size=8)), 4, 4)
    add("lowrank5_80x20", rng.normal(size=(80, 5)) @ rng.normal(size=(5, 20)), 10, 10, 3, 3)
    scales = 10.0 ** np.linspace(-8, 8, 12)
    add("scaled_40x12", rng.normal(size=(40, 12)) * scales, 12, 12)
    add("scaled_40x12_k3", rng.normal(size=(40, 12)) * scales, 12, 12, 3, 3)
    dup = rng.normal(size=(25, 6))
    dup[7] = dup[2]
    dup[19] = dup[2]
    dup[11] = 3.0 * dup[4]
    add("duplicates_25x6", dup, 8, 6)
    add("tiny_3x2", rng.normal(size=(3, 2)), 3, 2)
    add("tiny_2x3", rng.normal(size=(2, 3)), 2, 3)
    add("tiny_2x2", rng.normal(size=(2, 2)), 2, 2)
    add("integers_10x4", rng.integers(-3, 4, size=(10, 4)).astype(float), 6, 4)
    return out


def main():
    rng = np.random.default_rng(SEED)
    cur = []
    fps = []
    stored = {}
    for name, X, ns, nf, ks, kf in matrices(rng):
        stored[name] = arr(X)
        for axis, n, k in (("samples", ns, ks), ("features", nf, kf)):
            # skmatter's ARPACK SVD needs k < min(shape)
            if k < min(X.shape):
                for every in (1, 0) if k == 1 else (1,):
                    try:
                        case = cur_case(f"{name}_{axis}_every{every}", X, n, axis, k, every)
                    except Exception as e:  # noqa: BLE001
                        print(f"cur {name} {axis}: skmatter raised {e!r}: case left out")
                        continue
                    case["X"] = name
                    cur.append(case)
                    print(f"cur {case['name']}: {case['determined']}/{n} determined")
            case = fps_case(f"{name}_{axis}", X, n, axis)
            case["X"] = name
            fps.append(case)
            print(f"fps {case['name']}: {case['determined']}/{n} determined")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "versions": versions(),
        "seed": SEED,
        "thresholds": {"curGap": CUR_GAP, "fpsGap": FPS_GAP, "minSk": MIN_SK, "minResidual": MIN_RESIDUAL},
        "matrices": stored,
        "cur": cur,
        "fps": fps,
    }
    text = json.dumps(payload, separators=(",", ":"))
    OUT.write_text(text + "\n")
    print(f"{OUT.name}: {len(text) / 1024:.1f} kB")


if __name__ == "__main__":
    main()
