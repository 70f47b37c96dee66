"""One benchmark measurement of a Python library, in its own process.

    python bench/worker.py LIB CASE FILE [--gradients] [--threads N]
                           [--warmup N] [--reps N] [--chunk N]

LIB: featomic | dscribe | vesin. CASE: soap | nl. bench/run.mjs starts one
of these per (library, case, input, threads) so that thread settings and
peak memory belong to that measurement alone; it sets RAYON_NUM_THREADS
(featomic) and OMP/MKL/OPENBLAS threads in the environment, and the thread
count also goes to DScribe's n_jobs.

What is timed (time.perf_counter around the call only; input already in
memory as ase.Atoms / numpy arrays, output dropped after each call):
  featomic  SoapPowerSpectrum.compute(frames, gradients=[...]): copy into
            featomic's native systems, its neighbour list, the expansion
            and the power spectrum, returned as a metatensor TensorMap.
  dscribe   SOAP.create(frames, n_jobs) or, with --gradients,
            SOAP.derivatives(frames, method="analytical", n_jobs)
            (which also returns the descriptor). DScribe has no analytical
            derivatives for periodic systems: that case reports "n/a".
            --chunk N feeds the frames N at a time (the dense derivative
            arrays of 1000 molecules with 14 species do not fit in memory);
            the time is the sum over chunks.
  vesin     NeighborList(cutoff=5, full_list=True).compute(positions, cell,
            periodic, quantities="ijSdD").

Prints one JSON line: {"times": [s...], "rss_before_kib", "maxrss_kib",
"children_maxrss_kib", "info": {...}} or {"skip": "reason"}.
"""

import argparse
import json
import resource
import sys
import time

import numpy as np
from ase.io import read

HYPERS = {
    "cutoff": {"radius": 5.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
    "density": {"type": "Gaussian", "width": 0.3},
    "basis": {"type": "TensorProduct", "max_angular": 6, "radial": {"type": "Gto", "max_radial": 7}},
}


def maxrss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def children_maxrss():
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def timed(fn, warmup, reps, warmup_seconds=0.0):
    # warm-up: `warmup` calls, continued (when there is any warm-up) until
    # `warmup_seconds` of compute have passed, as in worker.mjs and bench_core
    warmed, warm_time = 0, 0.0
    while warmed < warmup or (warmup > 0 and warm_time < warmup_seconds):
        start = time.perf_counter()
        out = fn()
        warm_time += time.perf_counter() - start
        del out
        warmed += 1
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
        del out
    return times


def featomic_soap(frames, args):
    import featomic

    calc = featomic.SoapPowerSpectrum(**HYPERS)
    gradients = ["positions"] if args.gradients else []
    info = {"version": featomic.__version__}
    return (lambda: calc.compute(frames, gradients=gradients)), info


def dscribe_soap(frames, args):
    from importlib.metadata import version

    from dscribe.descriptors import SOAP

    species = sorted({int(z) for a in frames for z in a.numbers})
    periodic = bool(frames[0].pbc.any())
    if args.gradients and periodic:
        return None, {"skip": "DScribe has no analytical derivatives for periodic systems"}
    soap = SOAP(
        species=species,
        periodic=periodic,
        r_cut=5.0,
        n_max=8,
        l_max=6,
        sigma=0.3,
        rbf="gto",
        average="off",
        sparse=False,
    )
    info = {"version": version("dscribe"), "features": soap.get_number_of_features(), "n_jobs": args.threads}
    system = frames if len(frames) > 1 else frames[0]
    chunk = args.chunk if args.chunk and len(frames) > args.chunk else None
    if chunk:
        info["chunk"] = chunk

    def run():
        parts = [system] if chunk is None else [frames[k : k + chunk] for k in range(0, len(frames), chunk)]
        for part in parts:
            if args.gradients:
                out = soap.derivatives(part, method="analytical", n_jobs=args.threads)
            else:
                out = soap.create(part, n_jobs=args.threads)
            del out
        return None

    return run, info


def vesin_nl(frames, args):
    import vesin

    atoms = frames[0]
    points = np.ascontiguousarray(atoms.positions, dtype=np.float64)
    box = np.ascontiguousarray(atoms.cell.array, dtype=np.float64)
    periodic = bool(atoms.pbc.all())
    nl = vesin.NeighborList(cutoff=5.0, full_list=True)
    info = {"version": vesin.__version__}

    def run():
        i, j, S, d, D = nl.compute(points, box, periodic, quantities="ijSdD")
        info["pairs"] = len(i)
        return i

    return run, info


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("lib", choices=["featomic", "dscribe", "vesin"])
    parser.add_argument("case", choices=["soap", "nl"])
    parser.add_argument("file")
    parser.add_argument("--gradients", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup-seconds", type=float, default=0.0)
    parser.add_argument("--chunk", type=int, default=0)
    args = parser.parse_args()

    frames = read(args.file, ":")
    makers = {
        ("featomic", "soap"): featomic_soap,
        ("dscribe", "soap"): dscribe_soap,
        ("vesin", "nl"): vesin_nl,
    }
    maker = makers.get((args.lib, args.case))
    if maker is None:
        print(json.dumps({"skip": f"{args.lib} has no {args.case} case"}))
        return
    run, info = maker(frames, args)
    if run is None:
        print(json.dumps(info))
        return
    rss_before = maxrss()
    times = timed(run, args.warmup, args.reps, args.warmup_seconds)
    print(
        json.dumps(
            {
                "times": times,
                "rss_before_kib": rss_before,
                "maxrss_kib": maxrss(),
                "children_maxrss_kib": children_maxrss(),
                "info": info,
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
