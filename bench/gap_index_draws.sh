#!/usr/bin/env bash
# GAP's cur_points sparse draws without GAP's fit: gap_fit with
# sparsify_only_no_fit=T writes each draw's sparse indices (print_sparse_index,
# 1-based, one line per descriptor: Z=29 then Z=79 here) in a few seconds of
# CPU, and acdc fits and scores that draw on the test file
# (bench/gap_same_sparse.mjs --indices). On the same sparse environments the
# two fits agree to 1e-9 eV/atom (docs/MODELS.md "The energy gap, found";
# draws 1–10 below reproduce gap_fit's own test errors to the digits shown),
# so this gives GAP's draw-to-draw distribution at acdc's cost: docs/MODELS.md
# "Thirty draws of each sampler". Settings as bench/gap_draws.sh.
#
#   bench/gap_index_draws.sh PYTHON TRAIN TEST OUTDIR SEED...   (seeds ≥ 1)
#   (PYTHON: a venv's python with quippy-ase 0.10.3; gap_fit next to it)
# One JSON line per seed appended to OUTDIR/fits.jsonl: {"seed", "r": gap_same_sparse's line}.
set -euo pipefail
PY=$1; TRAIN=$2; TEST=$3; OUT=$4; shift 4
mkdir -p "$OUT"
HERE=$(cd "$(dirname "$0")" && pwd)
SOAP="soap cutoff=5.0 cutoff_transition_width=1.0 n_max=6 l_max=4 atom_sigma=0.5 zeta=4 delta=0.2 n_sparse=300 sparse_method=cur_points covariance_type=dot_product"
for S in "$@"; do
  IDX="$OUT/idx-seed$S.dat"
  OMP_NUM_THREADS=1 flock /tmp/gap.lock "$(dirname "$PY")/gap_fit" \
    at_file="$TRAIN" "gap={$SOAP print_sparse_index=$IDX}" "default_sigma={0.002 0.05 0.05 0.0}" e0_method=average \
    energy_parameter_name=energy force_parameter_name=forces virial_parameter_name=NONE sparse_jitter=1e-8 \
    rnd_seed=$S sparsify_only_no_fit=T gp_file="$OUT/sparsify-seed$S.xml" > "$OUT/sparsify-seed$S.log" 2>&1
  rm -f "$OUT/sparsify-seed$S.xml"*
  sed -n 1p "$IDX" > "$OUT/idx-seed$S-29.dat"
  sed -n 2p "$IDX" > "$OUT/idx-seed$S-79.dat"
  LINE=$(ACDC_NUM_THREADS=1 RAYON_NUM_THREADS=1 node "$HERE/gap_same_sparse.mjs" --train "$TRAIN" --test "$TEST" \
    --indices "$OUT/idx-seed$S-29.dat:29,$OUT/idx-seed$S-79.dat:79" --virial 0.05 --hypers "$HERE/hypers/gap-5-4.json" | tail -1)
  echo "{\"seed\":$S,\"r\":$LINE}" | tee -a "$OUT/fits.jsonl"
done
