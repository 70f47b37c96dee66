"""50 frames of 32-atom fcc Cu (random ±2 % strain, 0.1 Å rattle) labelled with
ASE's EMT, for bench/potentials_timing.cjs (dev-only; ase==3.29.0, numpy==2.4.6).

    /tmp/venv-models/bin/python scripts/reference/emt_bench_data.py /tmp/cu50x32.xyz
"""
import sys

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write

rng = np.random.default_rng(1)
frames = []
for k in range(50):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    eps = rng.uniform(-0.02, 0.02, (3, 3))
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + 0.5 * (eps + eps.T)), scale_atoms=True)
    atoms.rattle(0.1, seed=k)
    atoms.calc = EMT()
    energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)
    atoms.calc = None
    atoms.info["energy"] = energy
    atoms.info["stress"] = stress
    atoms.new_array("forces", forces)
    frames.append(atoms)
write(sys.argv[1] if len(sys.argv) > 1 else "cu50x32.xyz", frames, format="extxyz")
