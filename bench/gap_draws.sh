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
#   bench/gap_draws.sh [--sparse-only | --terms 2b] PYTHON TRAIN TEST OUTDIR SEED...   (seeds ≥ 1: gap_fit aborts on rnd_seed=0)
#   (PYTHON: a venv's python with quippy-ase 0.10.3, ase; gap_fit next to it)
#
# --sparse-only: GAP's draws without GAP's fit. gap_fit with
# sparsify_only_no_fit=T writes each draw's sparse indices
# (print_sparse_index, 1-based, one line per descriptor in gap_fit's order
# of the centre species, read from its log: Z=29 then Z=79 for Cu–Au,
# Z=78 then Z=28 for Pt–Ni, whose first frame starts with Pt) in a few seconds of CPU, and acdc fits and scores that draw on the
# test file (bench/gap_same_sparse.mjs --indices). On the same sparse
# environments the two fits agree to 1e-9 eV/atom (docs/MODELS.md "The energy
# gap, found"), so this gives GAP's draw-to-draw distribution at acdc's cost
# (docs/MODELS.md "Thirty draws of each sampler"). One JSON line per seed
# appended to OUTDIR/fits.jsonl: {"seed", "r": gap_same_sparse's line}.
#
# --terms 2b: a distance_2b template next to the soap one (full fits only),
# as `acdc fit --terms 2b,soap`'s defaults: cutoff 5 Å, cutoff_transition_width
# 0.5 Å, ard_se with theta_uniform 1 Å, δ 1 eV, 20 uniform sparse distances;
# add_species expands it into one descriptor per species pair.
set -euo pipefail
SPARSE_ONLY=0
PAIR=""
if [ "${1:-}" = "--sparse-only" ]; then SPARSE_ONLY=1; shift; fi
if [ "${1:-}" = "--terms" ]; then
  [ "${2:-}" = "2b" ] || { echo "gap_draws.sh: --terms ${2:-}: expected 2b" >&2; exit 2; }
  PAIR="distance_2b cutoff=5.0 cutoff_transition_width=0.5 covariance_type=ard_se delta=1.0 theta_uniform=1.0 n_sparse=20 sparse_method=uniform : "
  shift 2
fi
PY=$1; TRAIN=$2; TEST=$3; OUT=$4; shift 4
mkdir -p "$OUT"
HERE=$(cd "$(dirname "$0")" && pwd)
SOAP="soap cutoff=5.0 cutoff_transition_width=1.0 n_max=6 l_max=4 atom_sigma=0.5 zeta=4 delta=0.2 n_sparse=300 sparse_method=cur_points covariance_type=dot_product"
FIT=("default_sigma={0.002 0.05 0.05 0.0}" e0_method=average energy_parameter_name=energy force_parameter_name=forces virial_parameter_name=NONE sparse_jitter=1e-8)
for S in "$@"; do
  if [ $SPARSE_ONLY = 1 ]; then
    IDX="$OUT/idx-seed$S.dat"
    OMP_NUM_THREADS=1 flock /tmp/gap.lock "$(dirname "$PY")/gap_fit" at_file="$TRAIN" "gap={$SOAP print_sparse_index=$IDX}" "${FIT[@]}" \
      rnd_seed=$S sparsify_only_no_fit=T gp_file="$OUT/sparsify-seed$S.xml" > "$OUT/sparsify-seed$S.log" 2>&1
    rm -f "$OUT/sparsify-seed$S.xml"*
    # the descriptors gap_fit made, one per centre species, in its order ("New GAP: … Z=78 species_Z={78 28 }")
    read -r -a SPECIES <<< "$(sed -n 's/^New GAP: .* Z=\([0-9]*\) species_Z=.*/\1/p' "$OUT/sparsify-seed$S.log" | tr '\n' ' ')"
    [ "${#SPECIES[@]}" -gt 0 ] && [ "$(wc -l < "$IDX")" = "${#SPECIES[@]}" ] || { echo "gap_draws.sh: $IDX has $(wc -l < "$IDX") lines for ${#SPECIES[@]} species (${SPECIES[*]})" >&2; exit 1; }
    INDICES=()
    for k in "${!SPECIES[@]}"; do
      Z=${SPECIES[$k]}
      sed -n "$((k + 1))p" "$IDX" > "$OUT/idx-seed$S-$Z.dat"
      INDICES+=("$OUT/idx-seed$S-$Z.dat:$Z")
    done
    LINE=$(ACDC_NUM_THREADS=1 RAYON_NUM_THREADS=1 node "$HERE/gap_same_sparse.mjs" --train "$TRAIN" --test "$TEST" \
      --indices "$(IFS=,; echo "${INDICES[*]}")" --virial 0.05 --hypers "$HERE/hypers/gap-5-4.json" | tail -1)
    echo "{\"seed\":$S,\"r\":$LINE}" | tee -a "$OUT/fits.jsonl"
    continue
  fi
  XML="$OUT/gap-seed$S.xml"
  LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
  OMP_NUM_THREADS=1 flock /tmp/gap.lock /usr/bin/time -v -o "$OUT/time-seed$S.txt" "$(dirname "$PY")/gap_fit" \
    at_file="$TRAIN" "gap={$PAIR$SOAP}" "${FIT[@]}" rnd_seed=$S gp_file="$XML" > "$OUT/gap_fit-seed$S.log" 2>&1
  LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
  OMP_NUM_THREADS=1 flock /tmp/gap.lock "$PY" "$HERE/../scripts/reference/gap_predictions.py" "$XML" "$TEST" "$OUT/pred-seed$S.json"
  CPU=$(awk -F': ' '/User time|System time/ {s+=$2} END {print s}' "$OUT/time-seed$S.txt")
  WALL=$(awk -F': ' '/Elapsed/ {print $2}' "$OUT/time-seed$S.txt")
  RSS=$(awk -F': ' '/Maximum resident/ {print $2}' "$OUT/time-seed$S.txt")
  LINE="{\"seed\":$S,\"cpu_s\":$CPU,\"wall\":\"$WALL\",\"peak_kib\":$RSS,\"load_before\":\"$LOAD0\",\"load_after\":\"$LOAD1\",\"test\":\"$TEST\",\"pred\":\"$OUT/pred-seed$S.json\"}"
  echo "$LINE" | tee -a "$OUT/draws.jsonl"
  rm -f "$XML"* # hundreds of MB per draw; the predictions are what is compared
done
