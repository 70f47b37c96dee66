#!/bin/bash
# Syscall counts of the i-PI driver process (strace -f -c), N steps against
# bench/ipi_fake_server.py, 64-atom linear model (bench/.data/md-step, made by
# bench/md_step.mjs): the JavaScript loop, the native loop on its own pool and
# on the process-wide pool (ACDC_IPI_POOL=global). Needs strace.
#   ACDC_INTEROP_PYTHON=/path/bin/python bash bench/ipi_syscalls.sh [N]
cd "$(dirname "$0")/.."
N=${1:-1000}
PY=${ACDC_INTEROP_PYTHON:?set ACDC_INTEROP_PYTHON to a python with numpy}
for kind in model native; do
  for pool in own global; do
    [ $kind = model ] && [ $pool = global ] && continue
    d=$(mktemp -d); s=$d/socket
    $PY bench/ipi_fake_server.py $s bench/.data/md-step/cell-2.xyz $N > $d/server.out &
    sp=$!
    for k in $(seq 50); do [ -e $s ] && break; sleep 0.1; done
    if [ $pool = global ]; then export ACDC_IPI_POOL=global; else unset ACDC_IPI_POOL; fi
    ACDC_NUM_THREADS=1 strace -f -c -o $d/strace.txt node bench/ipi_floor.mjs --driver $s bench/.data/md-step/linear.acdc bench/.data/md-step/cell-2.xyz $kind > /dev/null
    wait $sp
    echo "== $kind pool=$pool ($N steps)"
    awk 'NR<=2 || /read|write|futex|epoll|sched_yield|recv|send|total/' $d/strace.txt | grep -v "^-" 
    rm -rf $d
  done
done
