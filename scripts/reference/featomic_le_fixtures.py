"""Reference fixtures for ragged radial bases, computed with featomic 0.6.7 (dev-only).

acdc never runs Python. For each case this script builds featomic's
Laplacian-eigenstate basis (`featomic.basis.LaplacianEigenstate`) through
`featomic.splines.SoapSpliner` -- or featomic's native `Explicit` basis with
a `Gto` set per angular channel -- computes SphericalExpansion and
SoapPowerSpectrum (with gradients), and writes one gzip-compressed JSON file
per case to test/fixtures/featomic_le/<case>.json.gz.

Run (from the repository root):

    python -m venv .venv
    .venv/bin/pip install -r scripts/reference/requirements.txt
    .venv/bin/python scripts/reference/featomic_le_fixtures.py

File layout: as scripts/reference/featomic_fixtures.py (versions, case,
description, systems, calculations[{calculator, hypers, gradients, keys,
blocks}]), plus per calculation `acdc_hypers`, the hyper-parameters in
acdc's form ({"type": "LaplacianEigenstate", ...}), `sizes` (radial functions
per l) and, for cases marked so, `featomic_hypers`: the exact JSON that
SoapSpliner.get_hypers() gives to the native calculator (Explicit basis of
Tabulated channels, DiracDelta density), to be run by acdc unchanged.
"""

import gzip
import json
import platform
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
from ase.build import molecule

import featomic
from featomic.basis import Explicit, Gto, LaplacianEigenstate
from featomic.cutoff import Cutoff, ShiftedCosine
from featomic.density import Gaussian
from featomic.splines import SoapSpliner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from featomic_fixtures import (  # noqa: E402
    nonperiodic, rattled, rng_for, si_primitive, system_json, tensor_json, three_molecules_box,
)

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test" / "fixtures" / "featomic_le"


def le_case(*, cutoff, width, sigma, max_radial, max_angular=None, radius=None,
            center_atom_weight=1.0, spline_accuracy=1e-8):
    basis = LaplacianEigenstate(radius=cutoff if radius is None else radius, max_radial=max_radial,
                                max_angular=max_angular, spline_accuracy=spline_accuracy)
    spliner = SoapSpliner(cutoff=Cutoff(radius=cutoff, smoothing=ShiftedCosine(width=width)),
                          density=Gaussian(width=sigma, center_atom_weight=center_atom_weight),
                          basis=basis)
    featomic_hypers = json.loads(featomic.SphericalExpansion(**spliner.get_hypers()).parameters)
    acdc_basis = {"type": "LaplacianEigenstate", "max_radial": max_radial}
    if max_angular is not None:
        acdc_basis["max_angular"] = max_angular
    if radius is not None:
        acdc_basis["radius"] = radius
    if spline_accuracy != 1e-8:
        acdc_basis["spline_accuracy"] = spline_accuracy
    acdc = {
        "cutoff": {"radius": cutoff, "smoothing": {"type": "ShiftedCosine", "width": width}},
        "density": {"type": "Gaussian", "width": sigma, "center_atom_weight": center_atom_weight},
        "basis": acdc_basis,
    }
    sizes = [basis.radial_basis(l).size for l in basis.angular_channels()]
    return spliner.get_hypers(), featomic_hypers, acdc, sizes


def build_cases():
    cases = {}
    rng = rng_for("le_molecules")
    cases["le_molecules"] = {
        "description": "formaldehyde and water (non-periodic), LE max_radial=4 (ragged to l=10), "
                       "radius = cutoff = 3.5, Gaussian 0.4, ShiftedCosine 0.5; exported hypers included",
        "systems": [nonperiodic(rattled(molecule("H2CO"), 0.02, rng)),
                    nonperiodic(rattled(molecule("H2O"), 0.02, rng))],
        "le": dict(cutoff=3.5, width=0.5, sigma=0.4, max_radial=4),
        "export": True,
        "gradients": ["positions"],
    }
    rng = rng_for("le_si")
    cases["le_si"] = {
        "description": "Si primitive cell (periodic, distorted), LE max_radial=3 (l=7), cutoff 4.0, "
                       "Gaussian 0.3, positions and strain gradients",
        "systems": [si_primitive(rng)],
        "le": dict(cutoff=4.0, width=0.5, sigma=0.3, max_radial=3),
        "export": False,
        "gradients": ["positions", "strain"],
    }
    rng = rng_for("le_box")
    cases["le_box"] = {
        "description": "H2CO, H2 and CO in a periodic triclinic box, LE max_radial=6 with max_angular=3, "
                       "basis radius 4.0 < cutoff 4.5, Gaussian 0.35, center_atom_weight 0.7",
        "systems": [three_molecules_box(rng)],
        "le": dict(cutoff=4.5, width=0.6, sigma=0.35, max_radial=6, max_angular=3, radius=4.0,
                   center_atom_weight=0.7),
        "export": False,
        "gradients": ["positions"],
    }
    rng = rng_for("explicit_gto")
    cases["explicit_gto"] = {
        "description": "featomic's native Explicit basis with its own Gto set per channel "
                       "(l=0: 4 functions, l=2: 2 functions, l=3: 3), Gaussian 0.3, water and NH3",
        "systems": [nonperiodic(rattled(molecule("H2O"), 0.02, rng)),
                    nonperiodic(rattled(molecule("NH3"), 0.02, rng))],
        "explicit": {
            "cutoff": {"radius": 4.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
            "density": {"type": "Gaussian", "width": 0.3},
            "basis": {"type": "Explicit", "by_angular": {
                "0": {"type": "Gto", "max_radial": 3},
                "2": {"type": "Gto", "max_radial": 1},
                "3": {"type": "Gto", "max_radial": 2}}},
        },
        "gradients": ["positions"],
    }
    return cases


def main():
    if featomic.__version__ != "0.6.7":
        print(f"warning: fixtures are meant for featomic 0.6.7, found {featomic.__version__}", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    versions = {name: version(name) for name in ["featomic", "metatensor-core", "ase", "numpy", "scipy"]}
    versions["python"] = platform.python_version()
    for name, case in build_cases().items():
        systems = case["systems"]
        calculations = []
        if "le" in case:
            native, featomic_hypers, acdc, sizes = le_case(**case["le"])
        else:
            native, featomic_hypers, acdc = case["explicit"], case["explicit"], case["explicit"]
            sizes = None
        for calculator, cls in [("spherical_expansion", featomic.SphericalExpansion),
                                ("soap_power_spectrum", featomic.SoapPowerSpectrum)]:
            calc = cls(**native)
            tensor = calc.compute(systems, gradients=case["gradients"])
            # the exported tables are large: keep them once per file
            export = case.get("export") and calculator == "spherical_expansion"
            entry = {"calculator": calculator, "hypers": featomic_hypers if export else None,
                     "acdc_hypers": acdc, "sizes": sizes, "gradients": case["gradients"]}
            entry.update(tensor_json(tensor))
            calculations.append(entry)
        if "le" not in case:
            for c in calculations:
                c["hypers"] = case["explicit"]
        data = {"versions": versions, "case": name, "description": case["description"],
                "systems": [system_json(s) for s in systems], "calculations": calculations}
        raw = json.dumps(data).encode()
        path = OUT / f"{name}.json.gz"
        with gzip.GzipFile(path, "wb", mtime=0) as f:
            f.write(raw)
        print(f"{name}: sizes {sizes}, {path.stat().st_size} bytes ({len(raw)} uncompressed)")


if __name__ == "__main__":
    main()
