#!/usr/bin/env bash
# Does a validation split pick better sparse draws? The training file is split
# into a validation part (4 frames of each config_type, numpy seed 7) and the
# rest; for each seed acdc fits leverage:COUNT:seed on the rest (one thread),
# scores the validation part and the test file, and the table compares the
# draws with the lowest validation loss ((E/2 meV)² + (F/0.05 eV/Å)², the
# sigmas of the fit) in blocks of K against all draws: docs/MODELS.md "Thirty
# draws of each sampler".
#
#   bench/sparse_best_of.sh PYTHON TRAIN TEST OUTDIR COUNT SEED...
#   (PYTHON: numpy and ase; COUNT: sparse points per species, at most the
#    smallest species' environments in the rest)
set -euo pipefail
PY=$1; TRAIN=$2; TEST=$3; OUT=$4; COUNT=$5; shift 5
mkdir -p "$OUT"
HERE=$(cd "$(dirname "$0")" && pwd)
"$PY" - "$TRAIN" "$OUT" <<'PYEOF'
import sys
import numpy as np
from ase.io import read, write
frames = read(sys.argv[1], ":")
rs = np.random.RandomState(7)
valid = []
for t in sorted({f.info.get("config_type", "all") for f in frames}):
    members = [i for i, f in enumerate(frames) if f.info.get("config_type", "all") == t]
    valid += list(rs.choice(members, 4, replace=False))
write(f"{sys.argv[2]}/valid.xyz", [frames[i] for i in sorted(valid)])
write(f"{sys.argv[2]}/rest.xyz", [f for i, f in enumerate(frames) if i not in valid])
PYEOF
for S in "$@"; do
  [ -s "$OUT/test$S.json" ] && continue
  ACDC_NUM_THREADS=1 RAYON_NUM_THREADS=1 node "$HERE/gap_same_sparse.mjs" --train "$OUT/rest.xyz" --test "$OUT/valid.xyz" --sparse "leverage:$COUNT:$S" \
    --virial 0.05 --hypers "$HERE/hypers/gap-5-4.json" --save "$OUT/m$S.acdc" | tail -1 > "$OUT/valid$S.json"
  ACDC_NUM_THREADS=1 RAYON_NUM_THREADS=1 node "$HERE/gap_same_sparse.mjs" --train "$OUT/rest.xyz" --test "$TEST" --model "$OUT/m$S.acdc" \
    --virial 0.05 --hypers "$HERE/hypers/gap-5-4.json" | tail -1 > "$OUT/test$S.json"
  rm -f "$OUT/m$S.acdc"
done
"$PY" - "$OUT" "$@" <<'PYEOF'
import json, sys
import numpy as np
out, seeds = sys.argv[1], sys.argv[2:]
rows = []
for s in seeds:
    v = json.load(open(f"{out}/valid{s}.json"))["test"]["all"]
    t = json.load(open(f"{out}/test{s}.json"))["test"]["all"]
    rows.append(((v["energyRmseMeV"] / 2.0) ** 2 + (v["forcesRmse"] / 0.05) ** 2, v["energyRmseMeV"], v["forcesRmse"], t["energyRmseMeV"], t["forcesRmse"]))
a = np.array(rows)
c = np.corrcoef(a.T)
print(f"{len(a)} draws; correlation with the test error: validation energy {c[1, 3]:.2f}, validation force {c[2, 4]:.2f}, validation loss and test energy {c[0, 3]:.2f}")
print("| draws | picks | test E (meV/atom) mean ± sd | test F (eV/Å) mean ± sd |")
print("|---|---|---|---|")
print(f"| all | {len(a)} | {a[:, 3].mean():.2f} ± {a[:, 3].std(ddof=1):.2f} | {a[:, 4].mean():.4f} ± {a[:, 4].std(ddof=1):.4f} |")
for k in (2, 3, 4):
    p = np.array([a[b:b + k][np.argmin(a[b:b + k, 0])] for b in range(0, len(a) - k + 1, k)])
    print(f"| best of {k} by validation loss | {len(p)} | {p[:, 3].mean():.2f} ± {p[:, 3].std(ddof=1):.2f} | {p[:, 4].mean():.4f} ± {p[:, 4].std(ddof=1):.4f} |")
PYEOF
