"""Training and test data from ASE's EMT potential (effective medium theory,
Jacobsen, Stoltze & Nørskov, Surf. Sci. 366, 394 (1996)): molecular dynamics
of fcc Cu, and optionally of a random Cu-Au alloy, at several temperatures and
small random strains. Each frame carries EMT's energy (eV), forces (eV/Å) and
stress (eV/Å³, ASE's sign: positive under tension), written by ASE's extxyz
writer as `energy=`, `stress="…"` (3×3) and the `forces` column.

Train and test frames come from independent trajectories (different seeds,
strains and starting velocities), so the test set is a genuine hold-out.

Versions: ase==3.29.0, numpy==2.4.6 (scripts/reference/requirements.txt).

The bundled example (examples/emt-cu-train.xyz, examples/emt-cu-test.xyz):
    python scripts/reference/emt_data.py --train examples/emt-cu-train.xyz \
        --test examples/emt-cu-test.xyz --repeat 2 --train-frames 40 --test-frames 10 --seed 2026
The larger Cu-Au hold-out of docs/MODELS.md ("Sparse selection against GAP's
draws"): the training set of the earlier comparisons, 100 Cu and 200 Cu-Au
test frames (the test stream is seeded apart from the training one, so the
training file is byte for byte the same):
    python scripts/reference/emt_data.py --train cuau-train.xyz --test cuau-test-big.xyz \
        --repeat 2 --train-frames 40 --alloy-frames 40 --test-frames 100 --test-alloy-frames 200 --seed 2026
The benchmark (bench/gap.mjs) calls it with larger sizes into bench/.data/.
"""
import argparse
import sys

import numpy as np
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

TEMPERATURES = [300.0, 600.0, 900.0, 1200.0]  # K
A_CU, A_AU = 3.61, 4.08  # Å, fcc lattice constants (Vegard's law in between)


def cell(rng, repeat, au_fraction, max_strain):
    """A cubic fcc supercell (4·repeat³ atoms), Au on a random fraction of the
    sites, under a random symmetric strain with entries in ±max_strain."""
    a = (1 - au_fraction) * A_CU + au_fraction * A_AU
    atoms = bulk("Cu", "fcc", a=a, cubic=True).repeat((repeat, repeat, repeat))
    n_au = int(round(au_fraction * len(atoms)))
    if n_au:
        symbols = np.array(atoms.get_chemical_symbols())
        symbols[rng.choice(len(atoms), n_au, replace=False)] = "Au"
        atoms.set_chemical_symbols(list(symbols))
    e = rng.uniform(-max_strain, max_strain, (3, 3))
    e = 0.5 * (e + e.T)
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + e), scale_atoms=True)
    return atoms


def trajectory(rng, n_frames, repeat, au_fraction, temperature, interval, max_strain, equilibrate):
    """n_frames snapshots, `interval` MD steps apart, of a Langevin run at
    `temperature` (K), 2 fs steps, after `equilibrate` steps."""
    atoms = cell(rng, repeat, au_fraction, max_strain)
    atoms.calc = EMT()
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    Stationary(atoms)
    dyn = Langevin(atoms, 2 * units.fs, temperature_K=temperature, friction=0.02, fixcm=False, rng=rng)
    dyn.run(equilibrate)
    frames = []
    for _ in range(n_frames):
        dyn.run(interval)
        snap = atoms.copy()
        del snap.arrays["momenta"]  # not a target: keeps the files small
        snap.calc = SinglePointCalculator(
            snap,
            energy=atoms.get_potential_energy(),
            forces=atoms.get_forces(),
            stress=atoms.get_stress(voigt=False),
        )
        snap.info["config_type"] = "CuAu" if au_fraction else "Cu"
        snap.info["temperature"] = temperature
        frames.append(snap)
    return frames


def dataset(rng, n_frames, args):
    """n_frames frames spread over the temperatures (one trajectory per
    temperature and composition), alloy frames when --alloy-frames > 0."""
    out = []
    groups = [(0.0, n_frames)]
    if args.alloy_frames:
        groups.append((args.au_fraction, args.alloy_frames))
    for au, total in groups:
        per_t = [total // len(TEMPERATURES) + (1 if k < total % len(TEMPERATURES) else 0) for k in range(len(TEMPERATURES))]
        for t, count in zip(TEMPERATURES, per_t):
            if count:
                out += trajectory(rng, count, args.repeat, au, t, args.interval, args.strain, args.equilibrate)
    return out


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True, help="output extxyz of the training frames")
    p.add_argument("--test", required=True, help="output extxyz of the test frames")
    p.add_argument("--repeat", type=int, default=2, help="cubic cells per side: 4·repeat³ atoms per frame (2: 32, 3: 108)")
    p.add_argument("--train-frames", type=int, default=40, help="Cu training frames")
    p.add_argument("--test-frames", type=int, default=10, help="Cu test frames")
    p.add_argument("--alloy-frames", type=int, default=0, help="Cu-Au frames added to train (and a quarter as many to test)")
    p.add_argument(
        "--test-alloy-frames",
        type=int,
        default=None,
        help="Cu-Au test frames (default: a quarter of --alloy-frames); the training frames do not depend on it",
    )
    p.add_argument("--au-fraction", type=float, default=0.25, help="fraction of Au sites in the alloy frames")
    p.add_argument("--strain", type=float, default=0.02, help="largest strain component")
    p.add_argument("--interval", type=int, default=20, help="MD steps (2 fs) between frames")
    p.add_argument("--equilibrate", type=int, default=100, help="MD steps before the first frame")
    p.add_argument("--seed", type=int, default=2026)
    args = p.parse_args(argv)

    train = dataset(np.random.default_rng(args.seed), args.train_frames, args)
    test_args = argparse.Namespace(**vars(args))
    test_args.alloy_frames = (args.alloy_frames + 3) // 4 if args.test_alloy_frames is None else args.test_alloy_frames
    test = dataset(np.random.default_rng(args.seed + 1_000_003), args.test_frames, test_args)
    write(args.train, train, format="extxyz")
    write(args.test, test, format="extxyz")
    n = lambda fs: sum(len(f) for f in fs)
    print(f"{args.train}: {len(train)} frames, {n(train)} atoms; {args.test}: {len(test)} frames, {n(test)} atoms")


if __name__ == "__main__":
    main(sys.argv[1:])
