#!/usr/bin/env bash
# GAP's cur_points sparse draws, one gap_fit per random seed (rnd_seed), on one
# of the alloy sets of bench/gap_alloys.mjs, each predicted on a test file:
# the GAP column of docs/MODELS.md "Sparse selection against GAP's draws".
# Settings as bench/gap_alloys.mjs (one soap template, add_species; SOAP 5 Å,
# cosine 1 Å, n_max 6, l_max 4, atom_sigma 0.5, ζ 4, δ 0.2, 300 cur_points per
# centre species, σ 0.002 eV/atom, 0.05 eV/Å, virials from `stress` with
# 0.05 eV/atom, e0 average, sparse_jitter 1e-8). gap_fit runs under
# `flock /tmp/gap.lock`, one thread. One JSON line per seed on stdout (and
# appended to OUT/draws.jsonl): seed, fit CPU s, wall s, peak RSS, load average
# and the per-frame predictions file.
#
#   bench/gap_draws.sh PYTHON TRAIN TEST OUTDIR SEED...   (seeds ≥ 1: gap_fit aborts on rnd_seed=0)
#   (PYTHON: a venv's python with quippy-ase 0.10.3, ase; gap_fit next to it)
set -euo pipefail
PY=$1; TRAIN=$2; TEST=$3; OUT=$4; shift 4
mkdir -p "$OUT"
HERE=$(cd "$(dirname "$0")" && pwd)
SOAP="soap cutoff=5.0 cutoff_transition_width=1.0 n_max=6 l_max=4 atom_sigma=0.5 zeta=4 delta=0.2 n_sparse=300 sparse_method=cur_points covariance_type=dot_product"
for S in "$@"; do
  XML="$OUT/gap-seed$S.xml"
  LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
  OMP_NUM_THREADS=1 flock /tmp/gap.lock /usr/bin/time -v -o "$OUT/time-seed$S.txt" "$(dirname "$PY")/gap_fit" \
    at_file="$TRAIN" "gap={$SOAP}" "default_sigma={0.002 0.05 0.05 0.0}" e0_method=average \
    energy_parameter_name=energy force_parameter_name=forces virial_parameter_name=NONE sparse_jitter=1e-8 \
    rnd_seed=$S gp_file="$XML" > "$OUT/gap_fit-seed$S.log" 2>&1
  LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
  OMP_NUM_THREADS=1 flock /tmp/gap.lock "$PY" "$HERE/../scripts/reference/gap_predictions.py" "$XML" "$TEST" "$OUT/pred-seed$S.json"
  CPU=$(awk -F': ' '/User time|System time/ {s+=$2} END {print s}' "$OUT/time-seed$S.txt")
  WALL=$(awk -F': ' '/Elapsed/ {print $2}' "$OUT/time-seed$S.txt")
  RSS=$(awk -F': ' '/Maximum resident/ {print $2}' "$OUT/time-seed$S.txt")
  LINE="{\"seed\":$S,\"cpu_s\":$CPU,\"wall\":\"$WALL\",\"peak_kib\":$RSS,\"load_before\":\"$LOAD0\",\"load_after\":\"$LOAD1\",\"test\":\"$TEST\",\"pred\":\"$OUT/pred-seed$S.json\"}"
  echo "$LINE" | tee -a "$OUT/draws.jsonl"
  rm -f "$XML"* # hundreds of MB per draw; the predictions are what is compared
done
