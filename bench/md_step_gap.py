"""GAP's side of bench/md_step_memory.mjs: peak memory and time of one MD
step (energy, forces, stress) of quippy's GAP on rattled diamond silicon,
with the same settings as the md_step example's sparse GPR.

    python bench/md_step_gap.py fit WORKDIR          # gap_fit on 10 rattled 64-atom cells
    python bench/md_step_gap.py step WORKDIR N_CELLS [--reps R] [--warmup W]
    python bench/md_step_gap.py cell WORKDIR N_CELLS  # the timed cell as WORKDIR/cell-N_CELLS.xyz

`fit` writes WORKDIR/train.xyz (made-up smooth targets: a harmonic pull of
each atom to its lattice site, as the md_step example) and WORKDIR/gap.xml
(n_max 8, l_max 6, cutoff 5 Å, transition 1 Å, atom_sigma 0.5 Å, ζ 4,
δ 0.2 eV, 400 cur_points). `step` predicts one N_CELLS³ × 8-atom cell R
times in this process (after W untimed evaluations, default 0) and prints
one JSON line: median wall seconds per step, median CPU seconds of the
process per step (time.process_time: all threads, less sensitive to the
machine's load than wall time) and the peak RSS of the process (ru_maxrss). `cell` writes that cell (extxyz) so that bench/md_step.mjs
times acdc on the same positions. Run it in a fresh process per size
with OMP_NUM_THREADS set. Made with quippy-ase 0.10.3, ase 3.29.0, numpy 2.4.
"""
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from ase.build import bulk


def diamond(n, rattle, seed):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat((n, n, n))
    lattice = atoms.get_positions().copy()
    rng = np.random.default_rng(seed)
    atoms.positions += rattle * rng.standard_normal(atoms.positions.shape)
    return atoms, lattice


def fit(work):
    from ase.io import write

    os.makedirs(work, exist_ok=True)
    frames = []
    for k in range(10):
        atoms, lattice = diamond(2, 0.1 + 0.01 * k, k + 1)
        d = atoms.positions - lattice
        energy = -4.6 * len(atoms) + 0.5 * float((d * d).sum())
        atoms.info["energy"] = energy
        atoms.info["virial"] = np.zeros((3, 3))
        atoms.arrays["forces"] = -d
        frames.append(atoms)
    train = os.path.join(work, "train.xyz")
    write(train, frames, format="extxyz")
    xml = os.path.join(work, "gap.xml")
    gap_fit = os.path.join(os.path.dirname(sys.executable), "gap_fit")
    args = [
        gap_fit,
        f"at_file={train}",
        "gap={soap cutoff=5.0 cutoff_transition_width=1.0 n_max=8 l_max=6 atom_sigma=0.5 zeta=4 delta=0.2 "
        "n_sparse=400 sparse_method=cur_points covariance_type=dot_product add_species=T}",
        "default_sigma={0.002 0.05 0.001 0.0}",
        "e0_method=average",
        "energy_parameter_name=energy",
        "force_parameter_name=forces",
        "virial_parameter_name=virial",
        "sparse_jitter=1e-8",
        f"gp_file={xml}",
    ]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def cell(work, cells):
    from ase.io import write

    atoms, _ = diamond(cells, 0.05, 7)
    write(os.path.join(work, f"cell-{cells}.xyz"), atoms, format="extxyz")


def step(work, cells, reps, warmup=0):
    from quippy.potential import Potential

    pot = Potential(param_filename=os.path.join(work, "gap.xml"))
    atoms, _ = diamond(cells, 0.05, 7)
    atoms.calc = pot
    for _ in range(warmup):
        atoms.positions[0, 0] += 1e-6
        atoms.get_potential_energy()
        atoms.get_forces()
        atoms.get_stress()
    times = []
    cpu = []
    for _ in range(reps):
        atoms.positions[0, 0] += 1e-6  # a new step: no cached results
        start = time.perf_counter()
        cpu0 = time.process_time()
        atoms.get_potential_energy()
        atoms.get_forces()
        atoms.get_stress()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu0)
    times.sort()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"mode": "gap", "atoms": len(atoms), "threads": int(os.environ.get("OMP_NUM_THREADS", "0")), "reps": reps,
                      "seconds": times[len(times) // 2], "all_seconds": times, "cpu_seconds": sorted(cpu)[len(cpu) // 2], "peak_rss": peak,
                      "energy": float(atoms.get_potential_energy())}))


def main(argv):
    if argv[0] == "fit":
        fit(argv[1])
    elif argv[0] == "step":
        reps = int(argv[argv.index("--reps") + 1]) if "--reps" in argv else 3
        warmup = int(argv[argv.index("--warmup") + 1]) if "--warmup" in argv else 0
        step(argv[1], int(argv[2]), reps, warmup)
    elif argv[0] == "cell":
        cell(argv[1], int(argv[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
