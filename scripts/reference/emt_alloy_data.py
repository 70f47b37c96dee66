"""Multi-element training and test data from ASE's EMT potential (effective
medium theory, Jacobsen, Stoltze & Nørskov, Surf. Sci. 366, 394 (1996)) for
the pseudo-element benchmark (bench/basis_evidence.mjs): random fcc alloys of
the seven metals EMT parametrises (Al, Cu, Ag, Au, Ni, Pd, Pt).

Each frame is a small cubic fcc cell (8 or 16 sites: 1×1×2 or 1×2×2 cubic
cells) holding 2 to 4 randomly chosen elements on random sites, with the
Vegard's-law lattice constant of its composition, a random symmetric strain
(entries in ±--strain) and Gaussian rattles of --rattle Å on every atom.
It carries EMT's energy (eV), forces (eV/Å) and stress (eV/Å³, ASE's sign),
written by ASE's extxyz writer. Train and test come from independent random
streams.

Versions: ase==3.29.0, numpy==2.4.6 (scripts/reference/requirements.txt).

    python scripts/reference/emt_alloy_data.py --train bench/.data/emt-alloy-train.xyz \
        --test bench/.data/emt-alloy-test.xyz --train-frames 48 --test-frames 16 --seed 2026
"""
import argparse
import sys

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

# fcc lattice constants (Å) near EMT's own equilibrium
LATTICE = {"Al": 4.05, "Cu": 3.61, "Ag": 4.09, "Au": 4.08, "Ni": 3.52, "Pd": 3.89, "Pt": 3.92}
ELEMENTS = list(LATTICE)
REPEATS = [(1, 1, 2), (1, 2, 2)]


def frame(rng, args):
    repeat = REPEATS[rng.integers(len(REPEATS))]
    n_elements = int(rng.integers(2, 5))
    elements = list(rng.choice(ELEMENTS, n_elements, replace=False))
    atoms = bulk("Cu", "fcc", a=1.0, cubic=True).repeat(repeat)
    symbols = [elements[k] for k in rng.integers(n_elements, size=len(atoms))]
    # every chosen element present at least once
    for k, el in enumerate(elements):
        if el not in symbols:
            symbols[k] = el
    a = float(np.mean([LATTICE[s] for s in symbols]))
    atoms.set_cell(atoms.cell[:] * a, scale_atoms=True)
    atoms.set_chemical_symbols(symbols)
    e = rng.uniform(-args.strain, args.strain, (3, 3))
    e = 0.5 * (e + e.T)
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + e), scale_atoms=True)
    atoms.positions += rng.normal(0.0, args.rattle, atoms.positions.shape)
    atoms.calc = EMT()
    snap = atoms.copy()
    snap.calc = SinglePointCalculator(
        snap,
        energy=atoms.get_potential_energy(),
        forces=atoms.get_forces(),
        stress=atoms.get_stress(voigt=False),
    )
    snap.info["config_type"] = "-".join(sorted(set(symbols)))
    return snap


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True, help="output extxyz of the training frames")
    p.add_argument("--test", required=True, help="output extxyz of the test frames")
    p.add_argument("--train-frames", type=int, default=48)
    p.add_argument("--test-frames", type=int, default=16)
    p.add_argument("--strain", type=float, default=0.02, help="largest strain component")
    p.add_argument("--rattle", type=float, default=0.08, help="standard deviation of the rattles (Å)")
    p.add_argument("--seed", type=int, default=2026)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    train = [frame(rng, args) for _ in range(args.train_frames)]
    rng = np.random.default_rng(args.seed + 1_000_003)
    test = [frame(rng, args) for _ in range(args.test_frames)]
    write(args.train, train, format="extxyz")
    write(args.test, test, format="extxyz")
    n = lambda fs: sum(len(f) for f in fs)
    print(f"{args.train}: {len(train)} frames, {n(train)} atoms; {args.test}: {len(test)} frames, {n(test)} atoms")


if __name__ == "__main__":
    main(sys.argv[1:])
