"""One benchmark measurement of a Python library, in its own process.

    python bench/worker.py LIB CASE FILE [--gradients] [--threads N]
                           [--warmup N] [--reps N] [--chunk N] [--distinct]

LIB: featomic | dscribe | vesin | quippy | sphericart. CASE: soap | nl | sph. bench/run.mjs starts one
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
  quippy    QUIP/GAP's SOAP: Descriptor("soap cutoff=5
            cutoff_transition_width=0.5 n_max=8 l_max=6 atom_sigma=0.3
            n_species=.. species_Z={..} n_Z=.. Z={..} normalise=F")
            .calc(atoms, grad=...) on each frame in turn (values, and with
            --gradients grad_data too). --distinct (the molecules, one call
            of ~70 s values / ~15 min gradients): each distinct frame is
            computed once and its time counted once per occurrence (g2x1000
            cycles the 162 molecules of ase.collections.g2), so the reported
            time is that of the full set, estimated from one pass over the
            distinct frames.

The `cg` group (CASE lsoap | nu3, LIB featomic, numpy backend):
  lsoap     clebsch_gordan.EquivariantPowerSpectrum(SphericalExpansion(
            **LSOAP_HYPERS)).compute(frames, neighbors_to_properties=False):
            the expansion and every o3_lambda (acdc's default layout).
  nu3       SphericalExpansion(**NU3_HYPERS).compute(frames)
            .keys_to_properties("neighbor_type"), then
            DensityCorrelations(n_correlations=2, max_angular=3).compute(
            density, selected_keys=(o3_lambda=0, o3_sigma=1)): the ν = 3
            invariants (the expansion is inside the timing).
The `classic` group (LIB dscribe):
  acsf      ACSF(species, r_cut=6, g2_params, g4_params).create(atoms) or,
            with --gradients, .derivatives(atoms, method="numerical")
            (DScribe has no analytical ACSF derivatives; returns the
            descriptor too). One frame (si512, water64) at a time.
  cm        CoulombMatrix(n_atoms_max=largest molecule,
            permutation="sorted_l2").create(frames, n_jobs).

The `sph` group (LIB sphericart; FILE: raw little-endian f64 x, y, z per
point, written by bench/run.mjs):
  sph       sphericart.SphericalHarmonics(6).compute(points) on all the
            points at once (its own normalisation of each point included,
            output array allocated by the call). --dump OUT writes the
            values (N × 49 f64) for bench/run.mjs to compare with acdc's.

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


def cg_hypers(max_angular, max_radial):
    return {
        "cutoff": {"radius": 5.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        "density": {"type": "Gaussian", "width": 0.3},
        "basis": {"type": "TensorProduct", "max_angular": max_angular, "radial": {"type": "Gto", "max_radial": max_radial}},
    }


LSOAP_HYPERS = cg_hypers(4, 4)
NU3_HYPERS = cg_hypers(3, 3)
ACSF_HYPERS = {
    "r_cut": 6.0,
    "g2_params": [[1, 1], [1, 2], [1, 3]],
    "g4_params": [[1, 1, 1], [1, 2, 1], [1, 1, -1], [1, 2, -1]],
}


def n_values(tensor):
    return int(sum(np.asarray(tensor.block(i).values).size for i in range(len(tensor.keys))))


def maxrss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def children_maxrss():
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


class WeightedTime(float):
    """Returned by a run() that measures its own (weighted) time."""


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
        elapsed = time.perf_counter() - start
        times.append(float(out) if isinstance(out, WeightedTime) else elapsed)
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


def featomic_lsoap(frames, args):
    import featomic
    from featomic.clebsch_gordan import EquivariantPowerSpectrum

    calc = EquivariantPowerSpectrum(featomic.SphericalExpansion(**LSOAP_HYPERS))
    info = {"version": featomic.__version__}

    def run():
        tm = calc.compute(frames, neighbors_to_properties=False)
        info["values"] = n_values(tm)
        info["blocks"] = len(tm.keys)
        return tm

    return run, info


def featomic_nu3(frames, args):
    import featomic
    from featomic.clebsch_gordan import DensityCorrelations
    from metatensor import Labels

    expansion = featomic.SphericalExpansion(**NU3_HYPERS)
    calc = DensityCorrelations(n_correlations=2, max_angular=3)
    selected = Labels(["o3_lambda", "o3_sigma"], np.array([[0, 1]], dtype=np.int32))
    info = {"version": featomic.__version__}

    def run():
        density = expansion.compute(frames).keys_to_properties("neighbor_type")
        tm = calc.compute(density, angular_cutoff=3, selected_keys=selected)
        info["values"] = n_values(tm)
        info["blocks"] = len(tm.keys)
        return tm

    return run, info


def dscribe_acsf(frames, args):
    from importlib.metadata import version

    from dscribe.descriptors import ACSF

    species = sorted({int(z) for a in frames for z in a.numbers})
    periodic = bool(frames[0].pbc.any())
    acsf = ACSF(species=species, periodic=periodic, **ACSF_HYPERS)
    info = {"version": version("dscribe"), "features": acsf.get_number_of_features(), "n_jobs": args.threads}
    system = frames if len(frames) > 1 else frames[0]
    if args.gradients and sum(len(a) for a in frames) > 300:
        return None, {"skip": "DScribe numerical ACSF derivatives: over 400 s a call on 512 atoms (a standalone try timed out at 400 s); not timed"}

    def run():
        if args.gradients:
            d, x = acsf.derivatives(system, method="numerical", attach=True, n_jobs=args.threads)
            info["values"] = int(x.size)
            return d
        x = acsf.create(system, n_jobs=args.threads)
        info["values"] = int(x.size)
        return x

    return run, info


def dscribe_cm(frames, args):
    from importlib.metadata import version

    from dscribe.descriptors import CoulombMatrix

    n_atoms_max = max(len(a) for a in frames)
    cm = CoulombMatrix(n_atoms_max=n_atoms_max, permutation="sorted_l2")
    info = {"version": version("dscribe"), "n_atoms_max": n_atoms_max, "n_jobs": args.threads}

    def run():
        x = cm.create(frames, n_jobs=args.threads)
        info["values"] = int(np.asarray(x).size)
        return x

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


def quippy_soap(frames, args):
    from importlib.metadata import version

    from quippy.descriptors import Descriptor

    species = sorted({int(z) for a in frames for z in a.numbers})
    zs = "{" + " ".join(map(str, species)) + "}"
    # every species is a centre (n_Z/Z) and a neighbour channel (n_species/
    # species_Z); no normalisation, as featomic/acdc/DScribe above; the
    # central atom's Gaussian has weight 1 (central_weight, QUIP's default),
    # as center_atom_weight in featomic/acdc
    desc = Descriptor(
        f"soap cutoff=5.0 cutoff_transition_width=0.5 n_max=8 l_max=6 atom_sigma=0.3 "
        f"n_species={len(species)} species_Z={zs} n_Z={len(species)} Z={zs} normalise=F"
    )
    info = {"version": version("quippy-ase"), "features": int(desc.dimensions())}
    if args.distinct:
        counts = {}
        for a in frames:
            key = (a.numbers.tobytes(), a.positions.tobytes())
            if key in counts:
                counts[key][1] += 1
            else:
                counts[key] = [a, 1]
        work = list(counts.values())
        info["distinct"] = len(work)
    else:
        work = [[a, 1] for a in frames]

    def run():
        total = 0.0
        values = 0
        for atoms, weight in work:
            start = time.perf_counter()
            out = desc.calc(atoms, grad=args.gradients)
            total += weight * (time.perf_counter() - start)
            values += weight * int(np.asarray(out["data"]).size)
            del out
        info["values"] = values
        return WeightedTime(total) if args.distinct else None

    return run, info


def sphericart_sph(points, args):
    import sphericart
    from importlib.metadata import version

    calc = sphericart.SphericalHarmonics(6)
    info = {"version": version("sphericart"), "points": len(points)}
    if args.dump:
        np.ascontiguousarray(calc.compute(points), dtype="<f8").tofile(args.dump)
    return (lambda: calc.compute(points)), info


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("lib", choices=["featomic", "dscribe", "vesin", "quippy", "sphericart"])
    parser.add_argument("case", choices=["soap", "nl", "lsoap", "nu3", "acsf", "cm", "sph"])
    parser.add_argument("file")
    parser.add_argument("--gradients", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup-seconds", type=float, default=0.0)
    parser.add_argument("--chunk", type=int, default=0)
    parser.add_argument("--distinct", action="store_true")
    parser.add_argument("--dump", default=None)
    args = parser.parse_args()

    if args.case == "sph":
        frames = np.fromfile(args.file, dtype="<f8").reshape(-1, 3)
    else:
        frames = read(args.file, ":")
    makers = {
        ("featomic", "soap"): featomic_soap,
        ("dscribe", "soap"): dscribe_soap,
        ("vesin", "nl"): vesin_nl,
        ("quippy", "soap"): quippy_soap,
        ("featomic", "lsoap"): featomic_lsoap,
        ("featomic", "nu3"): featomic_nu3,
        ("dscribe", "acsf"): dscribe_acsf,
        ("dscribe", "cm"): dscribe_cm,
        ("sphericart", "sph"): sphericart_sph,
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
