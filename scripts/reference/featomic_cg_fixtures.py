"""Reference fixtures for the Clebsch-Gordan calculators, from featomic 0.6.7.

acdc never runs Python. This script computes, with featomic.clebsch_gordan:
  - the raw real Clebsch-Gordan arrays (without the coupling sign
    (-1)^(l1+l2+L) that featomic applies when it couples two blocks);
  - EquivariantPowerSpectrum (lambda-SOAP) in both property layouts;
  - DensityCorrelations with n_correlations 1 and 2 on a spherical expansion
    whose neighbour types were moved to properties;
for one non-periodic and one periodic system with three species, exact
(spline_accuracy null) and splined radial integrals, and writes
test/fixtures/featomic_cg/<case>.json.gz (gzip-compressed JSON).

Run (from the repository root, in a virtual environment outside it):

    python -m venv /tmp/venv-cg
    /tmp/venv-cg/bin/pip install featomic==0.6.7 metatensor-core==0.2.6 \
        metatensor-operations==0.5.0 ase==3.29.0 numpy==2.4.6 wigners==0.3.0
    /tmp/venv-cg/bin/python scripts/reference/featomic_cg_fixtures.py

File layout (one JSON object per file):
  versions: {featomic, metatensor-core, metatensor-operations, ase, numpy, python}
  case, description
  systems: [{types, positions (flat 3N), cell (flat 9, rows = lattice
            vectors), pbc}]
  calculations: [{kind: "equivariant_power_spectrum" | "density_correlations",
                  variant: "exact" | "splined", hypers (the spherical
                  expansion's), options ({neighbors_to_properties,
                  neighbor_types} or {n_correlations, max_angular,
                  angular_cutoff}),
                  keys: {names, values}, blocks: [{samples, components,
                  properties, values (flat row-major), shape}]}]
  clebsch_gordan (cg.json.gz only): [{l1, l2, L, values (flat
                  (2l1+1, 2l2+1, 2L+1)), without the coupling sign}]
Floats are written with repr() (round-trips exactly).
"""

import gzip
import json
import platform
from importlib.metadata import version
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import molecule

import featomic
from featomic.clebsch_gordan import DensityCorrelations, EquivariantPowerSpectrum
from featomic.clebsch_gordan._coefficients import _build_dense_cg_coeff_dict

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test" / "fixtures" / "featomic_cg"
SEED = 20261130
PINNED = {"featomic": "0.6.7", "metatensor-core": "0.2.6",
          "metatensor-operations": "0.5.0", "ase": "3.29.0", "numpy": "2.4.6"}


def hypers(max_angular, max_radial, spline_accuracy):
    return {
        "cutoff": {"radius": 3.5, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        "density": {"type": "Gaussian", "width": 0.3},
        "basis": {"type": "TensorProduct", "max_angular": max_angular,
                  "radial": {"type": "Gto", "max_radial": max_radial},
                  "spline_accuracy": spline_accuracy},
    }


def systems():
    rng = np.random.default_rng(SEED)
    mol = molecule("H2CO")
    mol.positions += rng.normal(0.0, 0.05, mol.positions.shape)
    # a far hydrogen: zero rows in blocks whose neighbour pair it lacks
    mol = mol + Atoms("H", positions=[[2.9, 0.4, -0.3]])
    mol.set_cell(np.zeros((3, 3)))
    mol.set_pbc(False)

    cell = np.array([[3.4, 0.0, 0.0], [0.3, 3.2, 0.0], [-0.2, 0.4, 3.6]])
    frac = np.array([[0.1, 0.1, 0.1], [0.45, 0.2, 0.15], [0.2, 0.55, 0.6], [0.7, 0.7, 0.3]])
    per = Atoms("COHH", scaled_positions=frac, cell=cell, pbc=True)
    per.positions += rng.normal(0.0, 0.03, per.positions.shape)
    return {"molecule": mol, "periodic": per}


def labels_json(labels):
    return {"names": list(labels.names), "values": np.asarray(labels.values).astype(int).tolist()}


def floats(array):
    return [float(x) for x in np.ascontiguousarray(array, dtype=np.float64).reshape(-1)]


def tensor_json(tensor):
    blocks = []
    for i in range(len(tensor.keys)):
        b = tensor.block(i)
        blocks.append({"samples": labels_json(b.samples),
                       "components": [labels_json(c) for c in b.components],
                       "properties": labels_json(b.properties),
                       "values": floats(b.values), "shape": list(b.values.shape)})
    return {"keys": labels_json(tensor.keys), "blocks": blocks}


def system_json(atoms):
    return {"types": [int(z) for z in atoms.numbers],
            "positions": floats(atoms.positions),
            "cell": floats(np.asarray(atoms.cell)),
            "pbc": [bool(p) for p in atoms.pbc]}


def write(name, payload):
    OUT.mkdir(parents=True, exist_ok=True)
    payload = {"versions": versions(), "case": name, **payload}
    text = json.dumps(payload, separators=(",", ":")).encode("utf8")
    # mtime=0: the same numbers give the same bytes
    (OUT / f"{name}.json.gz").write_bytes(gzip.compress(text, compresslevel=9, mtime=0))
    print(name, (OUT / f"{name}.json.gz").stat().st_size, "bytes")


def versions():
    v = {name: version(name) for name in PINNED}
    for name, pinned in PINNED.items():
        assert v[name] == pinned, f"{name} {v[name]} installed, {pinned} pinned"
    v["python"] = platform.python_version()
    return v


def main():
    cg = _build_dense_cg_coeff_dict(4, np.empty(0, np.complex128), "numpy", np.float64, "cpu")
    entries = []
    for (l1, l2, L), array in sorted(cg.items()):
        if l1 <= 3 and l2 <= 3:
            entries.append({"l1": int(l1), "l2": int(l2), "L": int(L), "values": floats(np.asarray(array))})
    write("cg", {"description": "raw real CG arrays for l1, l2 <= 3, L <= 4 (no coupling sign)",
                 "clebsch_gordan": entries})

    for name, atoms in systems().items():
        calculations = []
        # sizes are kept small (the files are committed): splined radial
        # integrals only for the periodic lambda-SOAP
        for variant, accuracy in (("exact", None), ("splined", 1e-8)):
            if variant == "splined" and name != "periodic":
                continue
            h = hypers(2, 1, accuracy)
            se = featomic.SphericalExpansion(**h)
            layouts = [{"neighbors_to_properties": False, "neighbor_types": None}]
            if variant == "exact":
                layouts.append({"neighbors_to_properties": True, "neighbor_types": [1, 6, 8]})
            for opts in layouts:
                calc = EquivariantPowerSpectrum(se, neighbor_types=opts["neighbor_types"])
                tm = calc.compute(atoms, neighbors_to_properties=opts["neighbors_to_properties"])
                calculations.append({"kind": "equivariant_power_spectrum", "variant": variant,
                                     "hypers": h, "options": opts, **tensor_json(tm)})
            if variant == "splined":
                continue
            dens = se.compute(atoms).keys_to_properties("neighbor_type")
            dc = DensityCorrelations(n_correlations=1, max_angular=4)
            calculations.append({"kind": "density_correlations", "variant": variant, "hypers": h,
                                 "options": {"n_correlations": 1, "max_angular": 4, "angular_cutoff": None},
                                 **tensor_json(dc.compute(dens))})
            # nu = 3 on a smaller expansion
            h1 = hypers(1, 1 if name == "molecule" else 0, accuracy)
            dens = featomic.SphericalExpansion(**h1).compute(atoms).keys_to_properties("neighbor_type")
            dc = DensityCorrelations(n_correlations=2, max_angular=3)
            calculations.append({"kind": "density_correlations", "variant": variant, "hypers": h1,
                                 "options": {"n_correlations": 2, "max_angular": 3, "angular_cutoff": 1},
                                 **tensor_json(dc.compute(dens, angular_cutoff=1))})
        write(name, {"description": f"{name} system, H/C/O",
                     "systems": [system_json(atoms)], "calculations": calculations})


if __name__ == "__main__":
    main()
