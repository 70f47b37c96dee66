#!/bin/bash
# Where the native i-PI loop's protocol time goes (issue 27): `perf record`
# (cpu-clock, call graphs, kernel included: run as root or with
# perf_event_paranoid ≤ 1) of the driver thread (acdc-ipi-0) while real i-PI
# runs N NVE steps of the 64-atom cell (bench/md_step.mjs --ipi-child, native
# loop, 1 thread), then the thread's samples split by what they are in: the
# socket reads (blocking: sleep and wake-up), the socket writes (waking the
# server), the CPU-clock readings, page faults, interrupts, and user space
# (the model and the protocol code: release builds have no frame pointers,
# so user stacks cannot be told apart). perf's sampling inflates every
# syscall: read the split, not the absolute times (the run's own
# protocolSeconds without perf is printed by bench/md_step.mjs --ipi-only).
#   ACDC_INTEROP_PYTHON=/path/bin/python bash bench/ipi_perf.sh [N] [linear|gpr]
set -e
cd "$(dirname "$0")/.."
N=${1:-1500}
MODEL=${2:-linear}
PY=${ACDC_INTEROP_PYTHON:?set ACDC_INTEROP_PYTHON to a python with ipi==3.3.1}
d=$(mktemp -d)
trap 'rm -rf $d' EXIT
ACDC_NUM_THREADS=1 node bench/md_step.mjs --ipi-child bench/.data/md-step/$MODEL.acdc bench/.data/md-step/cell-2.xyz $N $PY native > $d/run.json &
sleep 1.5
P=$(pgrep -f "md_step.mjs --ipi-child bench/.data/md-step/$MODEL.acdc" | head -1)
timeout 8 perf record -q -e cpu-clock -F 25000 -g -p $P -o $d/perf.data > /dev/null 2>&1 || true
wait
perf script -i $d/perf.data --comm acdc-ipi-0 -F comm,tid,ip,sym 2> /dev/null > $d/perf.txt
python3 - $d/perf.txt $d/run.json <<'PY'
import collections, json, sys
samples, cur = [], None
for line in open(sys.argv[1]):
    if line.startswith('acdc-ipi-0'):
        cur = []
        samples.append(cur)
    elif line.strip() and cur is not None:
        parts = line.strip().split(' ', 1)
        cur.append(parts[1] if len(parts) > 1 else parts[0])
kinds = collections.Counter()
for frames in samples:
    t = ' '.join(frames)
    if '__sys_recvfrom' in t: kinds['socket read (sleep, wake-up, copy)'] += 1
    elif '__sys_sendto' in t: kinds['socket write (wakes the server)'] += 1
    elif 'clock_gettime' in t: kinds['thread CPU clock readings'] += 1
    elif 'asm_exc_page_fault' in t: kinds['page faults'] += 1
    elif 'irqentry_exit_to_user_mode' in t or 'sysvec' in t: kinds['interrupts, preemption'] += 1
    else: kinds['user space (model and protocol code)'] += 1
run = json.load(open(sys.argv[2]))
steps = run['steps']
total = len(samples)
print(f"{run['atoms']} atoms, {steps} steps; that run's own numbers (perf attached for 8 s of it): protocol {1e6 * (run['protocolSeconds'] - run['firstProtocolSeconds']) / (steps - 1):.1f} µs/step, model {1e3 * run['modelSeconds'] / steps:.2f} ms/step")
# steps inside perf's 8 s window, from the run's wall time per step
window = 8 / (run['seconds'] / steps)
print(f"driver thread samples (40 µs each at 25 kHz): {total}, ~{window:.0f} steps in the 8 s window")
for k, v in kinds.most_common():
    print(f"  {k}: {v} ({100 * v / total:.1f} %), ~{v * 40 / window:.1f} µs/step")
PY
