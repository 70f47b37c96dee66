"""Training and test data for SparseGPR / LinearModel: ASE's EMT potential
(a many-body potential acdc did not write) on Cu and Cu–Au (dev-only).

Writes test/fixtures/models/{train,test}.xyz and examples/emt-cu.xyz, with
energy (eV) and stress (eV/Å³, ASE sign) in the comment line and forces
(eV/Å) as a column. Stress is written as 9 numbers (3×3; test/gpr.test.ts
converts it to Voigt 6 to check that form).

Frames: fcc Cu cells of 8, 16 and 32 atoms, randomly strained (±2 %), after
a short velocity-Verlet MD at 300–1200 K; fcc Cu–Au with random Au
substitution; a non-periodic Cu cluster (energy and forces, no stress).

Run (pinned versions in scripts/reference/requirements.txt):
    python -m venv /tmp/venv-models && /tmp/venv-models/bin/pip install ase==3.29.0 numpy==2.4.6
    /tmp/venv-models/bin/python scripts/reference/emt_models.py
"""
import json
import os

import ase
import numpy as np
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.cluster import Icosahedron
from ase.io import write
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
OUT = os.path.join(ROOT, "test", "fixtures", "models")
rng = np.random.default_rng(20261130)


def md(atoms, temperature, steps):
    atoms.calc = EMT()
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    VelocityVerlet(atoms, timestep=2.0 * units.fs).run(steps)
    return atoms


def strained(atoms):
    eps = rng.uniform(-0.02, 0.02, size=(3, 3))
    eps = 0.5 * (eps + eps.T)
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
    return atoms


def labelled(atoms, k, config):
    """A copy without calculator: targets in info / arrays, ASE names and units."""
    out = ase.Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    out.info["config_type"] = config
    out.info["energy"] = float(atoms.get_potential_energy())
    out.new_array("forces", atoms.get_forces())
    if atoms.pbc.all():
        out.info["stress"] = atoms.get_stress(voigt=False)
    return out


def cu_frame(k, repeat):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(repeat)
    strained(atoms)
    atoms.rattle(stdev=0.02, seed=int(rng.integers(1 << 30)))
    return labelled(md(atoms, [300, 600, 900, 1200][k % 4], 15), k, "cu_md")


def cuau_frame(k):
    atoms = bulk("Cu", "fcc", a=3.70, cubic=True).repeat((2, 2, 1))
    au = rng.choice(len(atoms), size=int(rng.integers(3, 8)), replace=False)
    atoms.numbers[au] = 79
    strained(atoms)
    atoms.rattle(stdev=0.02, seed=int(rng.integers(1 << 30)))
    return labelled(md(atoms, 600, 15), k, "cuau_md")


def cluster_frame(k):
    atoms = Icosahedron("Cu", noshells=2, latticeconstant=3.61)
    atoms.rattle(stdev=0.05, seed=int(rng.integers(1 << 30)))
    atoms.pbc = False
    return labelled(md(atoms, 300, 10), k, "cluster")


repeats = [(2, 1, 1), (2, 2, 1), (2, 2, 2), (2, 2, 1)]
cu = [cu_frame(k, repeats[k % len(repeats)]) for k in range(24)]
cuau = [cuau_frame(k) for k in range(6)]
clusters = [cluster_frame(k) for k in range(2)]
train = cu[:18] + cuau[:4] + clusters[:1]
test = cu[18:] + cuau[4:] + clusters[1:]
os.makedirs(OUT, exist_ok=True)
write(os.path.join(OUT, "train.xyz"), train, format="extxyz")
write(os.path.join(OUT, "test.xyz"), test, format="extxyz")
with open(os.path.join(OUT, "versions.json"), "w") as f:
    json.dump({"ase": ase.__version__, "numpy": np.__version__, "script": "scripts/reference/emt_models.py"}, f, indent=2)
    f.write("\n")

# the README's example: a few small Cu frames
example = [cu_frame(k, (2, 1, 1)) for k in range(6)]
write(os.path.join(ROOT, "examples", "emt-cu.xyz"), example, format="extxyz")
print(f"train {len(train)} frames, test {len(test)} frames, example {len(example)} frames")
