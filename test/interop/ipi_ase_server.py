"""ASE's SocketIOCalculator as an i-PI server for test/ipi.test.ts.

    python ipi_ase_server.py unix NAME STEPS OUT.json
    python ipi_ase_server.py inet PORT STEPS OUT.json

Builds 32-atom fcc copper (a = 3.61 Å, cubic 2x2x2, rattled 0.05 Å, a sheared
cell), waits for a client on the socket, runs STEPS of BFGS geometry
optimisation with the energies/forces/stress the client returns, and writes
every evaluated structure with ASE's energy (eV), forces (eV/Å) and stress
(eV/Å³, 3x3) to OUT.json. The client is sent EXIT at the end.
"""
import json
import sys

import numpy as np
from ase.build import bulk
from ase.calculators.socketio import SocketIOCalculator
from ase.optimize import BFGS

mode, address, steps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
atoms.rattle(0.05, seed=7)
cell = np.array(atoms.cell)
cell[1, 0] += 0.2
cell[2, 0] -= 0.1
cell[2, 1] += 0.15
atoms.set_cell(cell, scale_atoms=True)

records = []
kwargs = {"unixsocket": address} if mode == "unix" else {"port": int(address)}
with SocketIOCalculator(timeout=60, **kwargs) as calc:
    atoms.calc = calc

    def record():
        records.append(
            {
                "positions": atoms.get_positions().tolist(),
                "cell": np.array(atoms.cell).tolist(),
                "energy": float(atoms.get_potential_energy()),
                "forces": atoms.get_forces().tolist(),
                "stress": atoms.get_stress(voigt=False).tolist(),
            }
        )

    opt = BFGS(atoms, logfile=None)
    opt.attach(record, interval=1)
    opt.run(fmax=1e-6, steps=steps)

with open(out, "w") as f:
    json.dump(records, f)
print("ase server: done,", len(records), "structures")
