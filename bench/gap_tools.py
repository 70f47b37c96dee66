"""GAP side of the acdc-vs-GAP benchmark (bench/gap.mjs); run with the bench
venv's python (quippy-ase, ase).

  gap_tools.py prepare SRC DST --sigma-energy E --sigma-forces F --sigma-stress S
      SRC's frames (ASE extxyz with energy, forces, stress) written for gap_fit:
      virial = -V·stress (eV, 3×3), per-frame energy_sigma = E·√N (GAP's
      energy sigma is on the total energy) and virial_sigma = S·V, so that
      both sides weigh the same residuals the same way.
  gap_tools.py predict GAP_XML TEST --reps R
      quippy's Potential on every TEST frame: energy, forces and stress,
      one untimed warm-up pass, then R timed passes; the errors against the
      file's references. One JSON line on stdout.
"""
import argparse
import json
import sys
import time

import numpy as np
from ase.io import read, write


def prepare(args):
    frames = read(args.src, ":")
    out = []
    for atoms in frames:
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
        stress = atoms.get_stress(voigt=False)
        v = atoms.get_volume()
        a = atoms.copy()
        a.calc = None
        a.info = {k: val for k, val in atoms.info.items() if k not in ("energy", "stress")}
        a.info["energy"] = energy
        a.info["virial"] = -v * stress
        a.info["energy_sigma"] = args.sigma_energy * np.sqrt(len(a))
        a.info["virial_sigma"] = args.sigma_stress * v
        a.arrays["forces"] = forces
        out.append(a)
    write(args.dst, out, format="extxyz")


def errors(frames, energies, forces, stresses):
    de = [(e - a.get_potential_energy()) / len(a) for a, e in zip(frames, energies)]
    df = np.concatenate([(f - a.get_forces()).ravel() for a, f in zip(frames, forces)])
    ds = np.concatenate([(s - a.get_stress(voigt=False)).ravel() for a, s in zip(frames, stresses)])
    stats = lambda d: {"mae": float(np.mean(np.abs(d))), "rmse": float(np.sqrt(np.mean(np.square(d)))), "count": int(len(d))}
    return {"energy": stats(np.array(de)), "forces": stats(df), "stress": stats(ds)}


def predict(args):
    from quippy.potential import Potential

    frames = read(args.test, ":")
    pot = Potential(param_filename=args.gap_xml)
    work = [a.copy() for a in frames]

    def one_pass():
        e, f, s = [], [], []
        for a in work:
            a.calc = pot
            e.append(a.get_potential_energy())
            f.append(a.get_forces())
            s.append(a.get_stress(voigt=False))
            a.calc = None
        return e, f, s

    e, f, s = one_pass()  # warm-up (also what the errors use)
    times, cpu = [], []
    for _ in range(args.reps):
        # a fresh copy per pass: the calculator must not return cached results
        work = [a.copy() for a in frames]
        t, c = time.perf_counter(), time.process_time()
        one_pass()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    atoms = sum(len(a) for a in frames)
    print(json.dumps({"frames": len(frames), "atoms": atoms, "seconds": float(np.median(times)), "cpuSeconds": float(np.median(cpu)), "errors": errors(frames, e, f, s)}))


def main(argv):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("prepare")
    a.add_argument("src")
    a.add_argument("dst")
    a.add_argument("--sigma-energy", type=float, required=True)
    a.add_argument("--sigma-forces", type=float, required=True)
    a.add_argument("--sigma-stress", type=float, required=True)
    b = sub.add_parser("predict")
    b.add_argument("gap_xml")
    b.add_argument("test")
    b.add_argument("--reps", type=int, default=3)
    args = p.parse_args(argv)
    prepare(args) if args.cmd == "prepare" else predict(args)


if __name__ == "__main__":
    main(sys.argv[1:])
