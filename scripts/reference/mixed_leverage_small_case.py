"""The picks of acdc's 'leverage-mix' sparse method on the small EMT case of
test/gpr.test.ts (test/fixtures/models/small_case.json: its training frames
and hypers), redone outside acdc's selection code: the features come from
`acdc featurize` (the power spectrum, same dot products as the SparseGPR's),
each species' rows are normalised, and the numpy transcription
(scripts/reference/mixed_leverage_numpy.py) picks `count` per species with
`seed` and uniform share ½. gpr.test.ts fits with method 'leverage-mix' and
with these indices and expects the same model.

Versions: numpy==2.4.6.
    python scripts/reference/mixed_leverage_small_case.py > test/fixtures/models/mixed_leverage_small_case.json
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mixed_leverage_numpy import mixed_leverage_cur  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "test", "fixtures", "models")
COUNTS = {29: 6, 79: 3}
SEED = 3


def frames(text):
    lines = text.split("\n")
    out, k = [], 0
    while k < len(lines) and lines[k].strip():
        n = int(lines[k])
        out.append(lines[k : k + n + 2])
        k += n + 2
    return out


def main():
    case = json.load(open(os.path.join(FIXTURES, "small_case.json")))
    everything = frames(open(os.path.join(FIXTURES, "train.xyz")).read())
    chosen = [everything[k] for k in case["train"]]
    with tempfile.TemporaryDirectory() as tmp:
        xyz = os.path.join(tmp, "train.xyz")
        with open(xyz, "w") as fh:
            fh.write("\n".join(line for f in chosen for line in f) + "\n")
        hypers = os.path.join(tmp, "hypers.json")
        json.dump(case["gpr"]["hypers"], open(hypers, "w"))
        out = os.path.join(tmp, "x.npy")
        subprocess.run(["node", os.path.join(ROOT, "dist", "cli", "main.js"), "featurize", xyz, "-o", out, "--hypers", hypers, "--threads", "1", "--no-progress"], check=True, capture_output=True)
        x_all = np.load(out)
        rows = json.load(open(out + ".labels.json"))["rows"]["values"]
    species = [int(f[2 + a].split()[0] == "Au") * 50 + 29 for f in chosen for a in range(int(f[0]))]
    z_all = np.array([species[i] for i in range(len(rows))])
    picks = {}
    for z, count in COUNTS.items():
        x = x_all[z_all == z]
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        picks[str(z)] = mixed_leverage_cur(x, count, SEED, 0.5).tolist()
    json.dump({"generator": "scripts/reference/mixed_leverage_small_case.py", "numpy": np.__version__, "seed": SEED, "counts": {str(k): v for k, v in COUNTS.items()}, "uniform": 0.5, "indices": picks}, sys.stdout)


if __name__ == "__main__":
    main()
