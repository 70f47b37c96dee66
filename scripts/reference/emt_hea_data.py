"""Five-element fcc alloys from ASE's EMT potential (Jacobsen, Stoltze &
Nørskov, Surf. Sci. 366, 394 (1996)) for the pseudo-element model study
(bench/alchemical_models.mjs, docs/MODELS.md "Pseudo-elements").

Each frame is a 2×2×2 cubic fcc cell (32 sites) holding all five of --elements
(default Ni, Cu, Pd, Ag, Au) with a random composition (a Dirichlet(1, …, 1)
draw, at least one atom of each element), the Vegard's-law lattice constant
of its composition scaled by a random factor in [1 − --volume, 1 + --volume],
a random symmetric strain (entries in ±--strain) and Gaussian rattles of
--rattle Å on every atom. It carries EMT's energy (eV), forces (eV/Å) and
stress (eV/Å³, ASE's sign), written by ASE's extxyz writer. Train and test
come from independent random streams of the same distribution.

Versions: ase==3.29.0, numpy==2.4.6 (scripts/reference/requirements.txt).

    python scripts/reference/emt_hea_data.py --train bench/.data/emt-hea-train.xyz \
        --test bench/.data/emt-hea-test.xyz --train-frames 160 --test-frames 60 --seed 2026
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


def frame(rng, args, elements):
    atoms = bulk("Cu", "fcc", a=1.0, cubic=True).repeat((2, 2, 2))
    n = len(atoms)
    x = rng.dirichlet(np.ones(len(elements)))
    counts = np.ones(len(elements), dtype=int)
    # the remaining sites by the largest-remainder rule on the drawn fractions
    rest = x * (n - len(elements))
    counts += np.floor(rest).astype(int)
    order = np.argsort(-(rest - np.floor(rest)))
    counts[order[: n - counts.sum()]] += 1
    symbols = [el for el, c in zip(elements, counts) for _ in range(c)]
    symbols = list(rng.permutation(symbols))
    a = float(np.mean([LATTICE[s] for s in symbols])) * rng.uniform(1 - args.volume, 1 + args.volume)
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
    snap.info["config_type"] = "hea"
    return snap


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True, help="output extxyz of the training frames")
    p.add_argument("--test", required=True, help="output extxyz of the test frames")
    p.add_argument("--train-frames", type=int, default=160)
    p.add_argument("--test-frames", type=int, default=60)
    p.add_argument("--elements", default="Ni,Cu,Pd,Ag,Au", help="comma-separated, from " + ", ".join(LATTICE))
    p.add_argument("--strain", type=float, default=0.03, help="largest strain component")
    p.add_argument("--volume", type=float, default=0.02, help="largest relative change of the lattice constant")
    p.add_argument("--rattle", type=float, default=0.1, help="standard deviation of the rattles (Å)")
    p.add_argument("--seed", type=int, default=2026)
    args = p.parse_args(argv)
    elements = args.elements.split(",")
    for el in elements:
        if el not in LATTICE:
            raise SystemExit(f"emt_hea_data.py: --elements: EMT has no parameters for {el!r}")
    rng = np.random.default_rng(args.seed)
    train = [frame(rng, args, elements) for _ in range(args.train_frames)]
    rng = np.random.default_rng(args.seed + 1_000_003)
    test = [frame(rng, args, elements) for _ in range(args.test_frames)]
    write(args.train, train, format="extxyz")
    write(args.test, test, format="extxyz")
    n = lambda fs: sum(len(f) for f in fs)
    print(f"{args.train}: {len(train)} frames, {n(train)} atoms; {args.test}: {len(test)} frames, {n(test)} atoms")


if __name__ == "__main__":
    main(sys.argv[1:])
