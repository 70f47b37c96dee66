# ASE SocketIOCalculator driving acdc drive over a unix socket or TCP: ms per step.
# Usage: python bench/ipi_ase_transport.py unix|inet (needs ase; run from the repo after npm run build).
import sys, time, subprocess, os
from ase.build import bulk
from ase.io import write
from ase.calculators.socketio import SocketIOCalculator
mode = sys.argv[1]
atoms = bulk('Cu', 'fcc', a=3.61, cubic=True) * (2, 2, 2)  # 32 atoms
write('/tmp/acdc_ase_init.xyz', atoms, format='extxyz')
cli = ['node', './dist/cli/main.js', 'drive', './examples/ipi/cu.acdc', '--init', '/tmp/acdc_ase_init.xyz', '--exit-on-close']
if mode == 'unix':
    kw = dict(unixsocket='acdc_ase_bench'); cli += ['--unix', '/tmp/ipi_acdc_ase_bench']
else:
    kw = dict(port=31977); cli += ['--inet', '127.0.0.1:31977']
with SocketIOCalculator(**kw) as calc:
    atoms.calc = calc
    proc = subprocess.Popen(cli)
    atoms.get_potential_energy()  # first step: connection
    n = 40
    t = time.perf_counter()
    for k in range(n):
        atoms.positions[0, 0] += 0.001
        atoms.get_forces()
    dt = (time.perf_counter() - t) / n
print(f'{mode}: {dt*1000:.1f} ms/step (32 Cu atoms, cu.acdc)')
proc.wait(timeout=30)
