"""Reference SOAP fixtures computed with featomic 0.6.7 (dev-only).

acdc never runs Python. This script computes SphericalExpansion,
SoapPowerSpectrum and SoapRadialSpectrum with featomic for a handful of small
structures and hyper-parameter sets, and writes one gzip-compressed JSON file
per case to test/fixtures/featomic/<case>.json.gz. See
test/fixtures/featomic/README.md for the cases and for what featomic does.

Run (from the repository root):

    python -m venv .venv
    .venv/bin/pip install -r scripts/reference/requirements.txt
    .venv/bin/python scripts/reference/featomic_fixtures.py

Options: --no-check skips the self-consistency checks (finite differences of
the gradients, power / radial spectrum rebuilt from the spherical expansion);
--only CASE[,CASE...] writes only some cases.

File layout (one JSON object per file):
  versions: {featomic, metatensor-core, ase, numpy, python}
  case: the case name; description: one line
  systems: [{types: [Z...], positions: [flat 3N], cell: [flat 9, rows =
            lattice vectors], pbc: [3 bools]}]
  calculations: [{calculator: "spherical_expansion" | "soap_power_spectrum"
                  | "soap_radial_spectrum",
                  variant: "exact" (spline_accuracy null) | "splined",
                  hypers: the exact JSON object given to featomic,
                  gradients: ["positions", "strain"],
                  keys: {names, values},
                  blocks: [{samples: {names, values}, components: [{names,
                            values}...], properties: {names, values},
                            values: [flat row-major floats], shape: [...],
                            gradients: {positions: {samples, components,
                                        values, shape}, strain: {...}}}],
                  splined_vs_exact (splined variant only): largest
                  |splined - exact| for values and gradients, absolute and
                  relative (to the block's / calculation's largest value)}]
Floats are written with repr(), which round-trips exactly (<= 17 significant
digits). Labels values are lists of integer rows.
"""

import argparse
import copy
import gzip
import io
import json
import math
import platform
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np

import ase
from ase import Atoms
from ase.build import molecule
from ase.neighborlist import neighbor_list

import featomic

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test" / "fixtures" / "featomic"
SEED = 20260524

CALCULATORS = {
    "spherical_expansion": featomic.SphericalExpansion,
    "soap_power_spectrum": featomic.SoapPowerSpectrum,
    "soap_radial_spectrum": featomic.SoapRadialSpectrum,
}
GRADIENTS = ["positions", "strain"]


# ----------------------------------------------------------------------------
# hyper-parameters

def soap_hypers(*, radius, max_radial, max_angular, smoothing=None,
                width=0.3, center_atom_weight=None, scaling=None,
                spline_accuracy="omit"):
    """Hypers for SphericalExpansion / SoapPowerSpectrum (featomic 0.6 JSON).

    spline_accuracy: "omit" leaves the key out (featomic default 1e-8),
    None writes null (exact radial integrals), a float writes that float.
    """
    if smoothing is None:
        smoothing = {"type": "ShiftedCosine", "width": 0.5}
    density = {"type": "Gaussian", "width": width}
    if center_atom_weight is not None:
        density["center_atom_weight"] = center_atom_weight
    if scaling is not None:
        density["scaling"] = scaling
    basis = {
        "type": "TensorProduct",
        "max_angular": max_angular,
        "radial": {"type": "Gto", "max_radial": max_radial},
    }
    if spline_accuracy != "omit":
        basis["spline_accuracy"] = spline_accuracy
    return {
        "cutoff": {"radius": radius, "smoothing": smoothing},
        "density": density,
        "basis": basis,
    }


def radial_spectrum_hypers(hypers):
    """SoapRadialSpectrum takes a basis without `type` and `max_angular`."""
    h = copy.deepcopy(hypers)
    basis = {"radial": h["basis"]["radial"]}
    if "spline_accuracy" in h["basis"]:
        basis["spline_accuracy"] = h["basis"]["spline_accuracy"]
    h["basis"] = basis
    return h


# ----------------------------------------------------------------------------
# structures

def rng_for(name):
    return np.random.default_rng([SEED, sum(map(ord, name))])


def nonperiodic(atoms):
    """Zero cell, pbc False (featomic zeroes the cell of such systems anyway)."""
    atoms = atoms.copy()
    atoms.set_cell(np.zeros((3, 3)))
    atoms.set_pbc(False)
    return atoms


def rattled(atoms, stdev, rng):
    atoms = atoms.copy()
    atoms.positions = atoms.positions + rng.normal(0.0, stdev, (len(atoms), 3))
    return atoms


def distort_cell(cell, amount, rng):
    strain = np.eye(3) + amount * rng.uniform(-1, 1, (3, 3))
    return np.asarray(cell) @ strain


def si_primitive(rng):
    a = 5.43
    cell = 0.5 * a * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=float)
    cell = distort_cell(cell, 0.06, rng)
    frac = np.array([[0.0, 0.0, 0.0], [0.25, 0.25, 0.25]])
    atoms = Atoms("Si2", scaled_positions=frac, cell=cell, pbc=True)
    return rattled(atoms, 0.05, rng)


def sic_primitive(rng):
    a = 4.36
    cell = 0.5 * a * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=float)
    cell = distort_cell(cell, 0.05, rng)
    frac = np.array([[0.0, 0.0, 0.0], [0.25, 0.25, 0.25]])
    atoms = Atoms("SiC", scaled_positions=frac, cell=cell, pbc=True)
    return rattled(atoms, 0.04, rng)


def three_molecules_box(rng):
    """H2CO, H2 and CO in a periodic triclinic box, > cutoff apart.

    The H2 atoms only see hydrogen, the CO atoms only see C and O: many
    power-spectrum (centre, neighbour pair) samples are absent.
    """
    cell = np.array([[10.0, 0.0, 0.0], [0.8, 10.5, 0.0], [-0.6, 0.9, 11.0]])
    h2co = molecule("H2CO")
    h2co.rotate(30, "y")
    h2co.translate([1.5, 1.5, 1.5])
    h2 = molecule("H2")
    h2.rotate(60, "x")
    h2.translate([6.8, 2.0, 2.0])
    co = molecule("CO")
    co.rotate(50, "z")
    co.translate([3.5, 7.0, 6.5])
    atoms = h2co + h2 + co
    atoms.set_cell(cell)
    atoms.set_pbc(True)
    return rattled(atoms, 0.02, rng)


def al_conventional(rng):
    a = 4.05
    frac = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    cell = distort_cell(a * np.eye(3), 0.02, rng)
    atoms = Atoms("Al4", scaled_positions=frac, cell=cell, pbc=True)
    return rattled(atoms, 0.05, rng)


def water_small_box(rng):
    """One water molecule in a 3.6 A triclinic box: it sees its own images."""
    w = molecule("H2O")
    w.translate([1.0, 1.2, 0.9])
    cell = np.array([[3.7, 0.0, 0.0], [0.45, 3.35, 0.0], [0.25, -0.55, 3.85]])
    w.set_cell(cell)
    w.set_pbc(True)
    return rattled(w, 0.03, rng)


def build_cases():
    cases = {}

    rng = rng_for("molecule")
    base = dict(radius=4.5, max_radial=4, max_angular=4)
    cases["molecule"] = {
        "description": "formaldehyde and water, two non-periodic systems "
                       "(zero cell); ShiftedCosine 0.5, Gaussian 0.3, Gto; "
                       "the splined variant leaves spline_accuracy out "
                       "(default 1e-8)",
        "systems": [nonperiodic(rattled(molecule("H2CO"), 0.02, rng)),
                    nonperiodic(rattled(molecule("H2O"), 0.02, rng))],
        "hypers": [(soap_hypers(**base, spline_accuracy=None), "exact"),
                   (soap_hypers(**base), "splined")],
    }

    rng = rng_for("small_cell")
    base = dict(radius=4.5, max_radial=5, max_angular=5)
    cases["small_cell"] = {
        "description": "distorted triclinic Si2 and SiC primitive cells, "
                       "cell much smaller than twice the 4.5 A cutoff",
        "systems": [si_primitive(rng), sic_primitive(rng)],
        "hypers": [(soap_hypers(**base, spline_accuracy=None), "exact"),
                   (soap_hypers(**base, spline_accuracy=1e-8), "splined")],
    }

    rng = rng_for("three_species")
    base = dict(radius=4.0, max_radial=4, max_angular=3)
    cases["three_species"] = {
        "description": "H2CO + H2 + CO (8 atoms, H/C/O) in a periodic "
                       "triclinic box; H2 and CO centres lack some neighbour "
                       "species",
        "systems": [three_molecules_box(rng)],
        "hypers": [(soap_hypers(**base, spline_accuracy=None), "exact"),
                   (soap_hypers(**base, spline_accuracy=1e-8), "splined")],
    }

    rng = rng_for("step_smoothing")
    base = dict(radius=4.5, max_radial=6, max_angular=4,
                smoothing={"type": "Step"})
    cases["step_smoothing"] = {
        "description": "Step cutoff smoothing; rattled, sheared fcc Al "
                       "conventional cell (4 atoms), no distance within "
                       "0.05 A of the cutoff",
        "systems": [al_conventional(rng)],
        "hypers": [(soap_hypers(**base, spline_accuracy=None), "exact"),
                   (soap_hypers(**base, spline_accuracy=1e-8), "splined")],
    }

    rng = rng_for("willatt_scaling")
    willatt = {"type": "Willatt2018", "scale": 2.0, "rate": 1.0, "exponent": 4}
    base = dict(radius=5.0, max_radial=4, max_angular=4,
                scaling=willatt, center_atom_weight=0.5)
    cases["willatt_scaling"] = {
        "description": "Willatt2018 scaling {scale 2, rate 1, exponent 4} "
                       "with center_atom_weight 0.5; water in a small "
                       "periodic box and a non-periodic CO molecule",
        "systems": [water_small_box(rng),
                    nonperiodic(rattled(molecule("CO"), 0.02, rng))],
        "hypers": [(soap_hypers(**base, spline_accuracy=None), "exact"),
                   (soap_hypers(**base, spline_accuracy=1e-8), "splined")],
    }

    rng = rng_for("center_weight")
    hypers = []
    for weight in (0.0, 2.0):
        base = dict(radius=4.0, max_radial=4, max_angular=3,
                    center_atom_weight=weight)
        hypers.append((soap_hypers(**base, spline_accuracy=None), "exact"))
        hypers.append((soap_hypers(**base, spline_accuracy=1e-8), "splined"))
    cases["center_weight"] = {
        "description": "center_atom_weight 0.0 and 2.0, no scaling; "
                       "non-periodic NH3 and a periodic Si2 cell (the Si "
                       "keys exist next to H/N ones)",
        "systems": [nonperiodic(rattled(molecule("NH3"), 0.02, rng)),
                    si_primitive(rng)],
        "hypers": hypers,
    }

    rng = rng_for("high_l")
    base = dict(radius=5.0, max_radial=4, max_angular=8)
    cases["high_l"] = {
        "description": "max_angular 8, max_radial 4; a non-periodic water "
                       "molecule",
        "systems": [nonperiodic(rattled(molecule("H2O"), 0.02, rng))],
        "hypers": [(soap_hypers(**base, spline_accuracy=None), "exact"),
                   (soap_hypers(**base, spline_accuracy=1e-8), "splined")],
    }
    return cases


# ----------------------------------------------------------------------------
# serialisation

def labels_json(labels):
    return {"names": list(labels.names),
            "values": np.asarray(labels.values).astype(int).tolist()}


def floats(array):
    flat = np.ascontiguousarray(array, dtype=np.float64).reshape(-1)
    return [float(x) for x in flat]


def block_json(block):
    out = {
        "samples": labels_json(block.samples),
        "components": [labels_json(c) for c in block.components],
        "properties": labels_json(block.properties),
        "values": floats(block.values),
        "shape": list(block.values.shape),
        "gradients": {},
    }
    for parameter in block.gradients_list():
        g = block.gradient(parameter)
        out["gradients"][parameter] = {
            "samples": labels_json(g.samples),
            "components": [labels_json(c) for c in g.components],
            "values": floats(g.values),
            "shape": list(g.values.shape),
        }
    return out


def tensor_json(tensor):
    return {
        "keys": labels_json(tensor.keys),
        "blocks": [block_json(tensor.block(i)) for i in range(len(tensor.keys))],
    }


def system_json(atoms):
    return {
        "types": [int(z) for z in atoms.numbers],
        "positions": floats(atoms.positions),
        "cell": floats(atoms.cell.array),
        "pbc": [bool(p) for p in atoms.pbc],
    }


# ----------------------------------------------------------------------------
# checks (featomic against itself and against the formulas of docs/CONVENTIONS.md)

def check_distances(name, atoms, radius, margin):
    """No pair distance within `margin` of the cutoff (Step smoothing is
    discontinuous there; finite differences need some room too)."""
    if not np.any(atoms.pbc):
        d = atoms.get_all_distances().reshape(-1)
    else:
        d = neighbor_list("d", atoms, radius + 0.5)
    close = d[np.abs(d - radius) < margin]
    if close.size:
        raise SystemExit(f"{name}: distances {close} too close to cutoff {radius}")
    return float(np.min(d[d > 0])) if np.any(d > 0) else None


def block_by_key(tensor):
    out = {}
    for i, key in enumerate(tensor.keys.values):
        out[tuple(int(k) for k in key)] = tensor.block(i)
    return out


def rows(labels):
    return {tuple(int(x) for x in row): i
            for i, row in enumerate(np.asarray(labels.values))}


def check_power_spectrum(se, ps):
    """p^{a1 a2}_{n1 n2 l} = (-1)^l / sqrt(2l+1) sum_m c1 c2, sqrt 2 if a1 != a2."""
    se_blocks = block_by_key(se)
    worst = 0.0
    for key, block in block_by_key(ps).items():
        center, a1, a2 = key
        assert list(block.properties.names) == ["l", "n_1", "n_2"]
        for s, sample in enumerate(np.asarray(block.samples.values)):
            sample = tuple(int(x) for x in sample)
            for p, (l, n1, n2) in enumerate(np.asarray(block.properties.values)):
                c = []
                for a, n in ((a1, n1), (a2, n2)):
                    b = se_blocks.get((int(l), 1, center, a))
                    r = rows(b.samples).get(sample) if b is not None else None
                    if r is None:
                        c.append(None)
                    else:
                        pr = rows(b.properties)[(int(n),)]
                        c.append(b.values[r, :, pr])
                if c[0] is None or c[1] is None:
                    expected = 0.0
                else:
                    expected = (-1) ** int(l) / math.sqrt(2 * l + 1) * float(np.dot(c[0], c[1]))
                    if a1 != a2:
                        expected *= math.sqrt(2)
                scale = max(1.0, abs(expected))
                worst = max(worst, abs(block.values[s, p] - expected) / scale)
    return worst


def check_radial_spectrum(se, rs):
    se_blocks = block_by_key(se)
    worst = 0.0
    for (center, neighbor), block in block_by_key(rs).items():
        b = se_blocks[(0, 1, center, neighbor)]
        assert np.array_equal(b.samples.values, block.samples.values)
        assert np.array_equal(b.properties.values, block.properties.values)
        worst = max(worst, float(np.max(np.abs(b.values[:, 0, :] - block.values), initial=0)))
    return worst


def splined_vs_exact(splined, exact):
    """Largest |splined - exact|: absolute, and relative to the largest
    |exact| of the same block (values) or of the whole calculation
    (gradients)."""
    ref = block_by_key(exact)
    stats = {"values_max_abs": 0.0, "values_max_rel": 0.0,
             "gradients_max_abs": 0.0, "gradients_max_rel": 0.0}
    grad_scale = max(float(np.max(np.abs(b.gradient(p).values), initial=0))
                     for b in ref.values() for p in b.gradients_list())
    for key, block in block_by_key(splined).items():
        diff = float(np.max(np.abs(block.values - ref[key].values), initial=0))
        scale = float(np.max(np.abs(ref[key].values), initial=0))
        stats["values_max_abs"] = max(stats["values_max_abs"], diff)
        if scale > 0:
            stats["values_max_rel"] = max(stats["values_max_rel"], diff / scale)
        for p in block.gradients_list():
            gd = float(np.max(np.abs(block.gradient(p).values - ref[key].gradient(p).values), initial=0))
            stats["gradients_max_abs"] = max(stats["gradients_max_abs"], gd)
            stats["gradients_max_rel"] = max(stats["gradients_max_rel"], gd / grad_scale)
    return {k: float(f"{v:.3g}") for k, v in stats.items()}


def dense_values(tensor):
    return {key: (rows(b.samples), np.array(b.values)) for key, b in block_by_key(tensor).items()}


def fd_check(calculator, systems, tensor, h=1e-5):
    """Central finite differences for positions and strain gradients.

    Strain: positions and cell become x (1 + eps) (row vectors), and
    gradient values[sample, a, b, ...] = d value / d eps_ab.
    Returns the largest |analytic - fd| / max(1, |block values|).
    """
    worst = 0.0
    blocks = block_by_key(tensor)

    def compare(displaced_plus, displaced_minus, analytic_for):
        nonlocal worst
        vp = dense_values(calculator.compute(displaced_plus))
        vm = dense_values(calculator.compute(displaced_minus))
        for key, block in blocks.items():
            scale = max(1.0, float(np.max(np.abs(block.values), initial=0)))
            rp, valp = vp.get(key, ({}, None))
            rm, valm = vm.get(key, ({}, None))
            analytic = analytic_for(key, block)
            for sample, r in rows(block.samples).items():
                fp = valp[rp[sample]] if sample in rp else 0.0
                fm = valm[rm[sample]] if sample in rm else 0.0
                fd = (fp - fm) / (2 * h)
                err = float(np.max(np.abs(fd - analytic[r]))) / scale
                worst = max(worst, err)

    for s, atoms in enumerate(systems):
        for atom in range(len(atoms)):
            for xyz in range(3):
                plus = [a.copy() for a in systems]
                minus = [a.copy() for a in systems]
                plus[s].positions[atom, xyz] += h
                minus[s].positions[atom, xyz] -= h

                def analytic_for(key, block, s=s, atom=atom, xyz=xyz):
                    g = block.gradient("positions")
                    out = np.zeros_like(block.values)
                    for gr, (sample, system, a) in enumerate(np.asarray(g.samples.values)):
                        if system == s and a == atom:
                            out[sample] += g.values[gr, xyz]
                    return out

                compare(plus, minus, analytic_for)

        for a in range(3):
            for b in range(3):
                eps = np.zeros((3, 3))
                eps[a, b] = h
                plus = [x.copy() for x in systems]
                minus = [x.copy() for x in systems]
                plus[s].positions = systems[s].positions @ (np.eye(3) + eps)
                minus[s].positions = systems[s].positions @ (np.eye(3) - eps)
                if np.any(systems[s].pbc):
                    plus[s].set_cell(systems[s].cell.array @ (np.eye(3) + eps))
                    minus[s].set_cell(systems[s].cell.array @ (np.eye(3) - eps))

                def analytic_for(key, block, s=s, a=a, b=b):
                    g = block.gradient("strain")
                    out = np.zeros_like(block.values)
                    sample_system = np.asarray(block.samples.column("system"))
                    for gr, (sample,) in enumerate(np.asarray(g.samples.values)):
                        if sample_system[sample] == s:
                            out[sample] += g.values[gr, a, b]
                    return out

                compare(plus, minus, analytic_for)
    return worst


# ----------------------------------------------------------------------------

def versions():
    return {
        "featomic": featomic.__version__,
        "metatensor-core": version("metatensor-core"),
        "ase": ase.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def run_case(name, case, check):
    systems = case["systems"]
    report = {"case": name, "checks": []}
    for hypers, _ in case["hypers"]:
        for i, atoms in enumerate(systems):
            step = hypers["cutoff"]["smoothing"]["type"] == "Step"
            report.setdefault("min_distance", {})[i] = check_distances(
                name, atoms, hypers["cutoff"]["radius"], 0.05 if step else 1e-3)

    calculations = []
    exact = {}
    for hypers, variant in case["hypers"]:
        tensors = {}
        for calc_name, cls in CALCULATORS.items():
            h = radial_spectrum_hypers(hypers) if calc_name == "soap_radial_spectrum" else copy.deepcopy(hypers)
            calculator = cls(**h)
            # featomic echoes the JSON it was given
            assert json.loads(calculator.parameters) == h, calculator.parameters
            tensor = calculator.compute(systems, gradients=GRADIENTS)
            tensors[calc_name] = tensor
            entry = {"calculator": calc_name, "variant": variant, "hypers": h,
                     "gradients": list(GRADIENTS)}
            entry.update(tensor_json(tensor))
            calculations.append(entry)
            report.setdefault("floats", []).append((calc_name, variant, sum(
                len(b["values"]) + sum(len(g["values"]) for g in b["gradients"].values())
                for b in entry["blocks"])))

            weight = hypers["density"].get("center_atom_weight", 1.0)
            tag = (calc_name, weight)
            if variant == "exact":
                exact[tag] = tensor
                if check:
                    err = fd_check(calculator, systems, tensor)
                    report["checks"].append((calc_name, variant, weight, "finite differences", err))
                    if err > 1e-5:
                        raise SystemExit(f"{name}/{calc_name}: finite differences {err}")
            else:
                stats = splined_vs_exact(tensor, exact[tag])
                entry["splined_vs_exact"] = stats
                report["checks"].append((calc_name, variant, weight, "splined - exact", stats))

        if check:
            w = hypers["density"].get("center_atom_weight", 1.0)
            err = check_power_spectrum(tensors["spherical_expansion"], tensors["soap_power_spectrum"])
            report["checks"].append(("soap_power_spectrum", variant, w, "rebuilt from SE (rel)", err))
            if err > 1e-12:
                raise SystemExit(f"{name}: power spectrum does not match SE formula: {err}")
            err = check_radial_spectrum(tensors["spherical_expansion"], tensors["soap_radial_spectrum"])
            report["checks"].append(("soap_radial_spectrum", variant, w, "== SE l=0 (abs)", err))
            if err > 1e-14:
                raise SystemExit(f"{name}: radial spectrum is not SE l=0: {err}")

    document = {
        "versions": versions(),
        "case": name,
        "description": case["description"],
        "systems": [system_json(a) for a in systems],
        "calculations": calculations,
    }
    text = json.dumps(document, separators=(",", ":"), allow_nan=False)
    path = OUT / f"{name}.json.gz"
    buffer = io.BytesIO()
    # fixed mtime and no file name: the output is byte-for-byte reproducible
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as f:
        f.write(text.encode("utf8"))
    path.write_bytes(buffer.getvalue())
    report["bytes"] = path.stat().st_size
    report["raw_bytes"] = len(text)
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-check", action="store_true")
    parser.add_argument("--only", default="")
    args = parser.parse_args()

    if featomic.__version__ != "0.6.7":
        print(f"warning: fixtures are meant for featomic 0.6.7, found {featomic.__version__}",
              file=sys.stderr)

    OUT.mkdir(parents=True, exist_ok=True)
    cases = build_cases()
    only = [c for c in args.only.split(",") if c]
    for name, case in cases.items():
        if only and name not in only:
            continue
        report = run_case(name, case, check=not args.no_check)
        print(f"{name}: {report['bytes']} bytes ({report['raw_bytes']} uncompressed), "
              f"min distance per system {report['min_distance']}")
        print("    floats:", report["floats"])
        for calc_name, variant, weight, what, value in report["checks"]:
            print(f"    {calc_name:22s} {variant:8s} w={weight:<4} {what}: {value}")


if __name__ == "__main__":
    main()
