"""Training data for the copper model the i-PI tests and example drive.

    python scripts/reference/ipi_emt_data.py   # writes test/fixtures/ipi/cu_emt.xyz

ASE's EMT potential for copper (Jacobsen, Stoltze, Norskov, Surf. Sci. 366,
394 (1996)) labels snapshots of 32-atom fcc copper: Langevin MD at 300-900 K
from cells strained by up to +-3 % (including shear), so that the fitted model
sees the displacements, volumes and shears of a 300 K NVE run and of a
strained cell. Each frame stores energy (eV), forces (eV/A) and the full
stress (eV/A^3, ASE's sign) as extended XYZ. Deterministic (fixed seeds).
Versions: ase 3.29.0, numpy 2.4.6, Python 3.11.
"""
import os

import numpy as np
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
out = os.path.join(root, "test", "fixtures", "ipi", "cu_emt.xyz")
rng = np.random.default_rng(20261130)

frames = []
for k in range(24):
    atoms = bulk("Cu", "fcc", a=3.59, cubic=True).repeat((2, 2, 2))
    strain = rng.uniform(-0.03, 0.03, size=(3, 3))
    strain = 0.5 * (strain + strain.T)
    atoms.set_cell(np.array(atoms.cell) @ (np.eye(3) + strain), scale_atoms=True)
    atoms.calc = EMT()
    temperature = [300, 600, 900][k % 3]
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    md = Langevin(atoms, 2 * units.fs, temperature_K=temperature, friction=0.02, rng=rng)
    md.run(20 + 5 * (k % 4))
    frame = atoms.copy()
    frame.info["energy"] = float(atoms.get_potential_energy())
    frame.info["stress"] = atoms.get_stress(voigt=False)
    frame.arrays["forces"] = atoms.get_forces().copy()
    frame.info["temperature_K"] = temperature
    frames.append(frame)

os.makedirs(os.path.dirname(out), exist_ok=True)
write(out, frames, format="extxyz", write_info=True, columns=["symbols", "positions", "forces"])
print("wrote", out, len(frames), "frames")

# The starting structure of examples/ipi (and of the EMT-model MD test): 108-atom
# fcc copper at EMT's lattice constant, rattled 0.02 A, in i-PI's xyz format.
start = bulk("Cu", "fcc", a=3.59, cubic=True).repeat((3, 3, 3))
start.rattle(0.02, seed=11)
a, b, c, alpha, beta, gamma = start.cell.cellpar()
lines = [str(len(start)), f"# CELL(abcABC): {a:.10f} {b:.10f} {c:.10f} {alpha:.6f} {beta:.6f} {gamma:.6f} positions{{angstrom}} cell{{angstrom}}"]
lines += [f"Cu {x:.10f} {y:.10f} {z:.10f}" for x, y, z in start.positions]
example = os.path.join(root, "examples", "ipi", "init.xyz")
os.makedirs(os.path.dirname(example), exist_ok=True)
with open(example, "w") as f:
    f.write("\n".join(lines) + "\n")
print("wrote", example)
