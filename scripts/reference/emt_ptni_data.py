"""Pt–Ni alloy frames across compositions from ASE's EMT potential, for the
held-out checks of `acdc fit` (validation split, baselines, variance
calibration; bench/calibration.cjs). Not committed as data: regenerate.

Each frame is a 2×2×2 cubic fcc cell (32 sites) with `n_Pt` Pt atoms on random
sites (training: n_Pt in {8, 16, 24}; test: {12, 16, 20}), the Vegard's-law
lattice constant, a random symmetric strain (entries in ±0.02, so triclinic
cells) and Gaussian rattles of 0.1 Å. EMT's energy (eV), forces (eV/Å) and
stress (eV/Å³, ASE's sign), written by ASE's extxyz writer. Train and test
use independent random streams.

Versions: ase==3.29.0, numpy==2.4.6.

    python scripts/reference/emt_ptni_data.py /tmp/ptni-train.xyz /tmp/ptni-test.xyz 120 90
"""
import sys

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

A = {"Pt": 3.92, "Ni": 3.52}


def frames(seed, count, compositions):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        n_pt = compositions[k % len(compositions)]
        x = n_pt / 32
        atoms = bulk("Ni", "fcc", a=x * A["Pt"] + (1 - x) * A["Ni"], cubic=True).repeat((2, 2, 2))
        symbols = np.array(["Ni"] * 32)
        symbols[rng.permutation(32)[:n_pt]] = "Pt"
        atoms.set_chemical_symbols(list(symbols))
        e = rng.uniform(-0.02, 0.02, (3, 3))
        atoms.set_cell(atoms.cell @ (np.eye(3) + 0.5 * (e + e.T)), scale_atoms=True)
        atoms.positions += rng.normal(0, 0.1, atoms.positions.shape)
        atoms.calc = EMT()
        energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
        out.append(atoms)
    return out


train_path, test_path, n_train, n_test = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
write(train_path, frames(1, n_train, [8, 16, 24]), format="extxyz")
write(test_path, frames(2, n_test, [12, 16, 20]), format="extxyz")
print("wrote", train_path, test_path)
