"""Fixtures for acdc's native GAP radial basis (`radial: {type: "Gap"}`):

1. `radial`: GAP's radial functions and their derivatives as tabulated by
   the independent numpy transcription `gap_radial_table.py` (the
   `Explicit`/`Tabulated` basis of docs/MODELS.md), at a few nodes, for two
   settings; acdc's exact `GapRadialIntegral` must equal them.
2. `kernels`: GAP's own normalised SOAP kernel (quippy's
   `Descriptor("soap …")`, ζ = 1: the dot products of the normalised
   descriptors) between every pair of centres of one species over a few
   Cu–Au cells, for the same two settings; acdc's normalised power spectrum
   with the Gap basis must give the same dot products.

Writes test/fixtures/gap/gap_basis.json.gz. Run with a venv holding
quippy-ase 0.10.3, ase, numpy and scipy (versions recorded in the file):

    python scripts/reference/gap_basis_fixtures.py test/fixtures/gap/gap_basis.json.gz
"""
import gzip
import json
import os
import sys
from importlib.metadata import version
from types import SimpleNamespace

import numpy as np
from ase.build import bulk

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gap_radial_table  # noqa: E402

SETTINGS = [
    # the matched Cu–Au / Pt–Ni settings of docs/MODELS.md
    {"cutoff": 5.0, "width": 1.0, "n_max": 6, "l_max": 4, "atom_sigma": 0.5, "points": 26},
    # another shape: more, narrower Gaussians, a shorter cutoff and switch
    {"cutoff": 4.0, "width": 0.5, "n_max": 9, "l_max": 6, "atom_sigma": 0.35, "points": 21},
]


def frames():
    """Three 32-atom Cu–Au fcc cells: 8, 4 and 12 Au, rattled, strained."""
    rng = np.random.default_rng(26)
    out = []
    for n_au in (8, 4, 12):
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 2, 2))
        numbers = atoms.numbers.copy()
        numbers[rng.choice(len(atoms), n_au, replace=False)] = 79
        atoms.numbers = numbers
        strain = np.eye(3) + rng.uniform(-0.03, 0.03, (3, 3))
        atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
        atoms.positions += rng.normal(0.0, 0.12, atoms.positions.shape)
        out.append(atoms)
    return out


def kernels(setting, systems):
    from quippy.descriptors import Descriptor

    out = {}
    for z in (29, 79):
        desc = Descriptor(
            f"soap cutoff={setting['cutoff']} cutoff_transition_width={setting['width']} n_max={setting['n_max']} "
            f"l_max={setting['l_max']} atom_sigma={setting['atom_sigma']} n_species=2 species_Z={{29 79}} Z={z}"
        )
        rows, centres = [], []
        for f, atoms in enumerate(systems):
            calc = desc.calc(atoms)
            data = np.asarray(calc["data"])
            ci = np.asarray(calc["ci"]).reshape(-1) - 1  # QUIP's 1-based centre indices
            for row, atom in zip(data, ci):
                rows.append(row)
                centres.append([f, int(atom)])
        x = np.array(rows)
        x /= np.linalg.norm(x, axis=1)[:, None]
        out[str(z)] = {"centres": centres, "kernel": (x @ x.T).ravel().tolist(), "features": int(x.shape[1])}
    return out


def main(path):
    systems = frames()
    cases = []
    for s in SETTINGS:
        hypers = gap_radial_table.table(SimpleNamespace(
            cutoff=s["cutoff"], width=s["width"], n_max=s["n_max"], l_max=s["l_max"], atom_sigma=s["atom_sigma"], points=s["points"]))
        radial = {l: [[p["position"], p["values"], p["derivatives"]] for p in channel["points"]]
                  for l, channel in hypers["basis"]["by_angular"].items()}
        cases.append({"settings": s, "radial": radial, "kernels": kernels(s, systems)})
    fixture = {
        "versions": {p: version(p) for p in ("quippy-ase", "ase", "numpy", "scipy")},
        "systems": [
            {"types": a.numbers.tolist(), "positions": a.positions.ravel().tolist(), "cell": a.cell.array.ravel().tolist(), "pbc": [True, True, True]}
            for a in systems
        ],
        "cases": cases,
    }
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with gzip.open(path, "wt") as f:
        json.dump(fixture, f)


if __name__ == "__main__":
    main(sys.argv[1])
