"""Reference fixtures computed with DScribe 2.1.2 (dev-only).

acdc never runs Python. This script computes DScribe's ACSF, CoulombMatrix,
SineMatrix and EwaldSumMatrix for a few small structures (a molecule with four
species, a small triclinic crystal whose cell is thinner than the cutoff, a
slab periodic along two axes) and writes one gzip-compressed JSON file per
descriptor to test/fixtures/dscribe/. See test/fixtures/dscribe/README.md.

Run (from the repository root), in a virtual environment outside the
repository:

    python3.11 -m venv /tmp/venv-dscribe
    /tmp/venv-dscribe/bin/pip install dscribe==2.1.2 ase==3.29.0 numpy==2.4.6 scipy==1.17.1
    /tmp/venv-dscribe/bin/python scripts/reference/dscribe_fixtures.py

Floats are written with repr(), which round-trips exactly.
"""

import gzip
import json
import platform
from importlib.metadata import version
from pathlib import Path

import numpy as np
import ase
from ase import Atoms

import dscribe.core.system as dscribe_system
from dscribe.descriptors import ACSF, CoulombMatrix, SineMatrix, EwaldSumMatrix

PINNED = {"dscribe": "2.1.2", "ase": "3.29.0", "numpy": "2.4.6", "scipy": "1.17.1"}
OUT = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "dscribe"


def patch_dscribe_system():
    """dscribe 2.1.2's System passes ase.Atoms arguments positionally, which
    ase >= 3.29 rejects ("Use only one of momenta and velocities"): Sine and
    Ewald matrices crash without this keyword-only constructor."""

    def init(self, symbols=None, positions=None, numbers=None, tags=None, momenta=None, masses=None,
             magmoms=None, charges=None, scaled_positions=None, cell=None, pbc=None, celldisp=None,
             constraint=None, calculator=None, info=None, wyckoff_positions=None, equivalent_atoms=None):
        ase.Atoms.__init__(self, symbols=symbols, positions=positions, numbers=numbers, tags=tags,
                           momenta=momenta, masses=masses, magmoms=magmoms, charges=charges,
                           scaled_positions=scaled_positions, cell=cell, pbc=pbc, celldisp=celldisp,
                           constraint=constraint, calculator=calculator, info=info)
        self.wyckoff_positions, self.equivalent_atoms = wyckoff_positions, equivalent_atoms
        self._cell_inverse = self._displacement_tensor = None
        self._distance_matrix = self._inverse_distance_matrix = None

    dscribe_system.System.__init__ = init


def systems():
    rng = np.random.default_rng(20261130)
    # a molecule with four species (H, C, N, O), slightly distorted
    mol = Atoms(
        numbers=[6, 6, 8, 7, 1, 1, 1, 1],
        positions=np.array([
            [0.0, 0.0, 0.0], [1.52, 0.0, 0.0], [2.2, 1.1, 0.0], [-0.7, 1.2, 0.1],
            [-0.4, -0.9, 0.5], [1.9, -0.9, -0.5], [3.1, 1.0, 0.3], [-1.6, 1.1, -0.4],
        ]) + rng.normal(0, 0.05, (8, 3)),
    )
    # a small triclinic crystal, three species, cell thinner than the cutoff
    cell = np.array([[3.1, 0.0, 0.0], [0.9, 2.8, 0.0], [0.6, 0.7, 3.3]])
    crystal = Atoms(
        numbers=[8, 1, 6, 1],
        scaled_positions=np.array([[0.05, 0.1, 0.0], [0.4, 0.3, 0.25], [0.7, 0.6, 0.55], [0.2, 0.85, 0.7]])
        + rng.normal(0, 0.01, (4, 3)),
        cell=cell, pbc=True,
    )
    # a slab periodic along a and b only, three species
    slab = Atoms(
        numbers=[14, 8, 8, 1, 14],
        positions=np.array([[0.1, 0.2, 0.0], [1.6, 0.3, 0.9], [0.5, 1.7, 1.1], [1.2, 1.4, 2.4], [2.4, 2.0, 0.2]])
        + rng.normal(0, 0.02, (5, 3)),
        cell=[[3.4, 0.0, 0.0], [0.5, 3.2, 0.0], [0.0, 0.0, 12.0]], pbc=[True, True, False],
    )
    return {"molecule": mol, "crystal": crystal, "slab": slab}


def system_json(atoms):
    return {
        "types": [int(z) for z in atoms.numbers],
        "positions": [float(x) for x in atoms.positions.ravel()],
        "cell": [float(x) for x in np.array(atoms.cell).ravel()],
        "pbc": [bool(p) for p in atoms.pbc],
    }


def flat(a):
    return [float(x) for x in np.asarray(a, dtype=np.float64).ravel()]


def acsf_cases(structures):
    hypers = {
        "cutoff": 4.0,
        "g2": [[0.5, 0.0], [1.0, 1.5]],
        "g3": [1.0, 2.0],
        "g4": [[0.1, 1.0, 1.0], [0.2, 2.0, -1.0]],
        "g5": [[0.1, 1.0, 1.0], [0.3, 4.0, -1.0]],
    }
    cases = []
    for name, atoms in structures.items():
        species = sorted(set(int(z) for z in atoms.numbers))
        periodic = bool(atoms.pbc.any())
        for types in [species, sorted(set(species) | {1, 6, 7, 8, 14})]:
            acsf = ACSF(r_cut=hypers["cutoff"], g2_params=hypers["g2"], g3_params=hypers["g3"],
                        g4_params=hypers["g4"], g5_params=hypers["g5"], species=types, periodic=periodic)
            x = acsf.create(atoms)
            case = {"system": name, "hypers": {**hypers, "types": types}, "shape": list(x.shape), "values": flat(x)}
            if types == species and name != "slab":
                dx, _ = acsf.derivatives(atoms, method="numerical", attach=True)
                case["derivatives"] = {"shape": list(dx.shape), "values": flat(dx), "method": "central, h = 1e-4 Å"}
            cases.append(case)
    # a larger cutoff and no G2/G3 at all: non-integer ζ on the molecule; on
    # the crystal, where an atom sees collinear images of itself (cos θ = ±1),
    # DScribe's (1 + λ cos θ)^ζ is NaN for non-integer ζ once round-off makes
    # the base negative, so integer ζ there
    for name, g4, g5 in [
        ("molecule", [[0.05, 1.5, 1.0]], [[0.02, 2.5, -1.0], [0.04, 0.5, 1.0]]),
        ("crystal", [[0.05, 2.0, 1.0]], [[0.02, 3.0, -1.0], [0.04, 1.0, 1.0]]),
    ]:
        hypers2 = {"cutoff": 5.5, "g2": [], "g3": [], "g4": g4, "g5": g5}
        atoms = structures[name]
        types = sorted(set(int(z) for z in atoms.numbers))
        acsf = ACSF(r_cut=hypers2["cutoff"], g4_params=g4, g5_params=g5, species=types, periodic=bool(atoms.pbc.any()))
        x = acsf.create(atoms)
        assert np.isfinite(x).all()
        cases.append({"system": name, "hypers": {**hypers2, "types": types}, "shape": list(x.shape), "values": flat(x)})
    return cases


def matrix_cases(structures):
    mol, crystal, slab = structures["molecule"], structures["crystal"], structures["slab"]
    out = {"coulomb_matrix": [], "sine_matrix": [], "ewald_sum_matrix": []}
    for permutation in ["none", "sorted_l2", "eigenspectrum"]:
        for name in ["molecule", "crystal"]:
            cm = CoulombMatrix(n_atoms_max=9, permutation=permutation)
            out["coulomb_matrix"].append({"systems": [name], "hypers": {"n_atoms_max": 9, "permutation": permutation},
                                          "values": flat(cm.create(structures[name]))})
        sm = SineMatrix(n_atoms_max=6, permutation=permutation)
        out["sine_matrix"].append({"systems": ["crystal"], "hypers": {"n_atoms_max": 6, "permutation": permutation},
                                   "values": flat(sm.create(crystal))})
        em = EwaldSumMatrix(n_atoms_max=5, permutation=permutation)
        out["ewald_sum_matrix"].append({"systems": ["crystal"], "hypers": {"n_atoms_max": 5, "permutation": permutation},
                                        "values": flat(em.create(crystal))})
    # random permutations: one object, three consecutive calls (the generator
    # state persists), then a list of systems in one call
    for seed in [None, 42]:
        hypers = {"n_atoms_max": 9, "permutation": "random", "sigma": 2.0}
        if seed is not None:
            hypers["seed"] = seed
        cm = CoulombMatrix(n_atoms_max=9, permutation="random", sigma=2.0, seed=seed)
        calls = [flat(cm.create(mol)) for _ in range(3)]
        calls.append(flat(cm.create([mol, crystal, mol])))
        out["coulomb_matrix"].append({"systems": ["molecule"] * 3 + [["molecule", "crystal", "molecule"]],
                                      "hypers": hypers, "calls": calls})
    for cls, key, nmax in [(SineMatrix, "sine_matrix", 6), (EwaldSumMatrix, "ewald_sum_matrix", 5)]:
        d = cls(n_atoms_max=nmax, permutation="random", sigma=30.0, seed=7)
        calls = [flat(d.create(crystal)) for _ in range(3)]
        calls.append(flat(d.create([crystal, crystal])))
        out[key].append({"systems": ["crystal"] * 3 + [["crystal", "crystal"]],
                         "hypers": {"n_atoms_max": nmax, "permutation": "random", "sigma": 30.0, "seed": 7}, "calls": calls})
    # Ewald parameters: accuracy, w, explicit a and cutoffs
    for extra in [{"accuracy": 1e-7}, {"w": 2.5}, {"a": 0.9, "r_cut": 6.0, "g_cut": 5.0}]:
        em = EwaldSumMatrix(n_atoms_max=5, permutation="none")
        out["ewald_sum_matrix"].append({"systems": ["crystal"], "hypers": {"n_atoms_max": 5, "permutation": "none", **extra},
                                        "values": flat(em.create(crystal, **extra))})
    # the slab: DScribe's Sine/Ewald force full periodicity, which needs three
    # lattice vectors; the Coulomb matrix ignores the cell
    cm = CoulombMatrix(n_atoms_max=5, permutation="none")
    out["coulomb_matrix"].append({"systems": ["slab"], "hypers": {"n_atoms_max": 5, "permutation": "none"},
                                  "values": flat(cm.create(slab))})
    return out


def main():
    for pkg, pinned in PINNED.items():
        if version(pkg) != pinned:
            raise SystemExit(f"{pkg} {version(pkg)} is installed, these fixtures need {pinned}")
    patch_dscribe_system()
    structures = systems()
    versions = {**{p: version(p) for p in PINNED}, "python": platform.python_version()}
    OUT.mkdir(parents=True, exist_ok=True)
    sys_json = {k: system_json(v) for k, v in structures.items()}
    docs = {"acsf": {"cases": acsf_cases(structures)}}
    docs.update({k: {"cases": v} for k, v in matrix_cases(structures).items()})
    for name, doc in docs.items():
        doc = {"versions": versions, "descriptor": name, "systems": sys_json, **doc}
        # mtime 0: re-running the script gives byte-identical files
        with open(OUT / f"{name}.json.gz", "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as f:
            f.write(json.dumps(doc).encode("utf-8"))
        print(name, (OUT / f"{name}.json.gz").stat().st_size, "bytes")


if __name__ == "__main__":
    main()
