"""The picks of acdc's 'pivoted-cholesky' sparse method on the small EMT case
of test/gpr.test.ts (test/fixtures/models/small_case.json: its training
frames, hypers and kernel ζ), redone outside acdc's selection code: the
features come from `acdc featurize` (the power spectrum, same dot products as
the SparseGPR's), each species' rows are normalised, and the numpy
transcription (scripts/reference/pivoted_cholesky_numpy.py, dense solves per
step) picks `count` per species (`indices`; `trace_indices` for
'greedy-trace'). gpr.test.ts fits with each method and with these indices
and expects the same model.

Versions: numpy==2.4.6. Needs the built CLI (dist/).
    python scripts/reference/pivoted_cholesky_small_case.py > test/fixtures/models/pivoted_cholesky_small_case.json
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pivoted_cholesky_numpy import greedy_trace, pivoted_cholesky  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "test", "fixtures", "models")
COUNTS = {29: 6, 79: 3}


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
    zeta = int(case["gpr"]["kernel"]["zeta"])
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
    picks, trace = {}, {}
    for z, count in COUNTS.items():
        x = x_all[z_all == z]
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        picks[str(z)] = [int(i) for i in pivoted_cholesky(x, count, zeta)]
        trace[str(z)] = [int(i) for i in greedy_trace(x, count, zeta)]
    json.dump({"generator": "scripts/reference/pivoted_cholesky_small_case.py", "numpy": np.__version__, "zeta": zeta, "counts": {str(k): v for k, v in COUNTS.items()}, "indices": picks, "trace_indices": trace}, sys.stdout)


if __name__ == "__main__":
    main()
