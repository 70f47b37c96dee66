"""Pt–Ni alloy frames across compositions from ASE's EMT potential (Jacobsen,
Stoltze & Nørskov, Surf. Sci. 366, 394 (1996)), for the sums-of-kernels
comparison in docs/MODELS.md ("Sums of kernels").

Every frame is a 32-site fcc cell (2×2×2 cubic cells) with `k` Pt atoms on
random sites and Ni on the rest, the Vegard's-law lattice constant of its
composition (Ni 3.52 Å, Pt 3.92 Å), a random cell deformation 1 + e with
every entry of e (not symmetrised, so the cell is triclinic) uniform in
±--strain, and Gaussian rattles of --rattle Å. Training frames have
k ∈ --train-pt, test frames k ∈ --test-pt (equal numbers per composition),
from independent random streams. Each frame carries EMT's energy (eV),
forces (eV/Å) and stress (eV/Å³, ASE's sign) and info `pt` = k.

Versions: ase==3.29.0, numpy==2.4.6.

    python scripts/reference/emt_ptni_data.py --train ptni-train.xyz --test ptni-test.xyz
"""
import argparse
import sys

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

A = {"Ni": 3.52, "Pt": 3.92}


def frame(rng, k, args):
    atoms = bulk("Ni", "fcc", a=1.0, cubic=True).repeat((2, 2, 2))
    symbols = ["Ni"] * len(atoms)
    for i in rng.choice(len(atoms), k, replace=False):
        symbols[i] = "Pt"
    a = (k * A["Pt"] + (len(atoms) - k) * A["Ni"]) / len(atoms)
    atoms.set_cell(atoms.cell[:] * a, scale_atoms=True)
    atoms.set_chemical_symbols(symbols)
    e = rng.uniform(-args.strain, args.strain, (3, 3))
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + e), scale_atoms=True)
    atoms.positions += rng.normal(0.0, args.rattle, atoms.positions.shape)
    atoms.calc = EMT()
    snap = atoms.copy()
    snap.calc = SinglePointCalculator(
        snap, energy=atoms.get_potential_energy(), forces=atoms.get_forces(), stress=atoms.get_stress(voigt=False)
    )
    snap.info["pt"] = int(k)
    snap.info["config_type"] = f"Pt{k}"
    return snap


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--train-pt", default="8,16,24", help="Pt atoms per 32 in the training frames")
    p.add_argument("--test-pt", default="12,16,20", help="Pt atoms per 32 in the test frames")
    p.add_argument("--train-per", type=int, default=30, help="training frames per composition")
    p.add_argument("--test-per", type=int, default=20, help="test frames per composition")
    p.add_argument("--strain", type=float, default=0.03)
    p.add_argument("--rattle", type=float, default=0.1, help="Å")
    p.add_argument("--seed", type=int, default=2026)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    train = [frame(rng, int(k), args) for k in args.train_pt.split(",") for _ in range(args.train_per)]
    rng = np.random.default_rng(args.seed + 1_000_003)
    test = [frame(rng, int(k), args) for k in args.test_pt.split(",") for _ in range(args.test_per)]
    write(args.train, train, format="extxyz")
    write(args.test, test, format="extxyz")
    print(f"{args.train}: {len(train)} frames; {args.test}: {len(test)} frames")


if __name__ == "__main__":
    main(sys.argv[1:])
