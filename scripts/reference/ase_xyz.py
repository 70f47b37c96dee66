"""Extended XYZ reference fixtures, written and read back by ASE.

Dev-only: acdc never runs Python. This script writes test/fixtures/xyz/*.extxyz
(most with ase.io.write, a few by hand to cover syntax that ASE reads but does
not write) and test/fixtures/xyz/expected.json, which records what ASE itself
reads back from each file. crates/acdc-core/tests/xyz_ase.rs parses every file
with acdc's reader and compares with expected.json.

expected.json layout:
  versions: {ase, numpy, python}
  files: {file name: [frame, ...]}
  frame: {types: [Z...], positions: [x0, y0, z0, x1, ...], cell: [9 numbers,
          rows = lattice vectors], pbc: [3 bools],
          info: {key: {type, value}}, arrays: {name: {type, ncols, data}}}
  info types: int, float, bool, str, int_array, float_array, bool_array, json
  array types: float, int, bool, str (data flat, row-major [atom][column])

ASE moves some values into a SinglePointCalculator when reading; they are put
back where the file has them: per-atom results (forces, ...) into arrays,
per-structure results (energy, stress, ...) into info. ASE turns a 3x3 stress
into 6 Voigt components; it is written back as the 9 numbers of the file (the
stress is symmetric, so the order of the 9 numbers is the file's). Columns and
keys keep the names they have in the file (ASE's `charges` is `charge`, ...).

Run: python scripts/reference/ase_xyz.py   (from the repository root)
"""

import json
import platform
import sys
from pathlib import Path

import numpy as np

import ase
import ase.io
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io.extxyz import (PROPERTY_NAME_MAP, SPECIAL_3_3_KEYS,
                           per_atom_properties)
from ase.stress import voigt_6_to_full_3x3_stress

SEED = 20240611
ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test" / "fixtures" / "xyz"


def molecule_with_info():
    """A molecule without a cell whose info holds a value of every kind."""
    atoms = molecule("CH3CH2OH")
    atoms.info.update({
        "name": "ethanol molecule",           # string with spaces (quoted)
        "quote": 'say "hi" to {x} [y]',       # quotes and brackets (escaped)
        "word": "plain",                       # bare word
        "count": 7,                            # int
        "negative": -42,
        "big": 2 ** 40,
        "temperature": 300.5,                  # float
        "tiny": 1e-300,
        "huge": 6.02214076e23,
        "whole_float": 2.0,                    # a float that is an integer
        "converged": True,                     # bool
        "failed": False,
        "ints": np.array([1, 2, 3]),           # written "1 2 3"
        "floats": np.array([0.1, 2.5, -3e-5]),
        "bools": np.array([True, False, True]),  # written "T F T"
        "bool_list": [True, False],            # written as _JSON [true, false]
        "matrix": np.array([[1, 2], [3, 4]]),  # 2-D: _JSON, read as a 2-D array
        "meta": {"a": 1, "b": "x"},           # dict: _JSON
        "words": ["alpha", "beta"],            # list of strings: _JSON
        "numeric_text": "42",                  # ASE reads it back as an int
        "virial": np.array([[1.0, 0.5, 0.0], [0.5, 2.0, 0.25], [0.0, 0.25, 3.0]]),
    })
    return [atoms]


def crystals_with_results(rng):
    """Periodic, rattled, sheared crystals with energy, forces and stress."""
    frames = []
    for k, (symbol, size) in enumerate([("Si", (2, 1, 1)), ("Cu", (2, 2, 1)), ("Si", (1, 1, 1))]):
        if symbol == "Si":
            atoms = bulk("Si", "diamond", a=5.43).repeat(size)
        else:
            atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(size)
        shear = np.eye(3) + 0.05 * rng.standard_normal((3, 3))
        atoms.set_cell(atoms.cell @ shear, scale_atoms=True)
        atoms.rattle(0.05, seed=SEED + k)
        n = len(atoms)
        stress = rng.standard_normal(6) * 0.01
        atoms.calc = SinglePointCalculator(
            atoms,
            energy=float(rng.standard_normal() * 10 - 100),
            free_energy=float(rng.standard_normal() * 10 - 100),
            forces=rng.standard_normal((n, 3)),
            stress=stress,
        )
        atoms.info["config_type"] = f"bulk {symbol}"
        atoms.info["step"] = k
        frames.append(atoms)
    return frames


def mixed_periodicity(rng):
    """Slab (T T F), wire (T F F), molecule in a box (F F F), bare molecule."""
    slab = fcc111("Al", size=(2, 2, 3), vacuum=6.0)
    # a dict of arrays that ASE itself cannot write (it warns and skips it)
    del slab.info["adsorbate_info"]
    slab.rattle(0.02, seed=SEED)
    assert list(slab.pbc) == [True, True, False]

    wire = Atoms("C4", positions=rng.uniform(0, 3, (4, 3)),
                 cell=[[2.5, 0, 0], [0, 10, 0], [0, 0, 10]], pbc=[True, False, False])
    wire.positions[0] += [-4.0, 0.5, -1.0]  # outside the cell: not wrapped on write

    boxed = molecule("H2O")
    boxed.set_cell([8.0, 9.0, 10.0])
    boxed.pbc = False

    bare = molecule("NH3")
    bare.info["charge_state"] = 0
    return [slab, wire, boxed, bare]


def per_atom_columns(rng):
    """Columns of every type: strings, integers, logicals, reals, 1-3 columns."""
    atoms = bulk("NaCl", "rocksalt", a=5.64).repeat((2, 1, 1))
    n = len(atoms)
    atoms.set_tags(np.arange(n) - 1)
    atoms.set_initial_charges(rng.uniform(-1, 1, n))
    atoms.set_masses(rng.uniform(10, 40, n))
    atoms.set_momenta(rng.standard_normal((n, 3)))
    atoms.new_array("label", np.array([f"site_{i}" for i in range(n)]))
    atoms.new_array("ids3", rng.integers(-1000, 1000, (n, 3)))
    atoms.new_array("flag", np.array([i % 3 == 0 for i in range(n)]))
    atoms.new_array("pair", rng.standard_normal((n, 2)))
    return [atoms]


# Hand-written text: syntax that ASE reads but never writes.
QUIRKS = """\
3
Lattice={5.0 0.0 0.0 0.5 6.0 0.0 0.25 0.5 7.0} pbc=[T,F,T] Properties=species:S:1:pos:R:3:Z:I:1:vel:R:3 flag ids=1,2,3 spaced = 4 esc="a \\"quoted\\" word" single='x y' uid=007 yes=True no=false upper=TRUE under=1_000 exp=1E-3 curly={1.5 2}
si 0.0 0.0 0.0 14 0.1 0.2 0.3
C  1.0 1.5 2.0 6 -0.1 0.0 1e-3
o -1.0 8.5 -3.25 8 0 0 0
2
plain title words
H 0.0 0.0 0.0
h 0.0 0.0 0.74
1

He    1.25    -2.5     3.75
2
Properties=species:S:1:pos:R:3:forces:R:3 energy=-3.0 Lattice="3.0 0.0 0.0 0.0 3.0 0.0 0.0 0.0 3.0" pbc="T T T"
Fe 0.0 0.0 0.0 0.5 0.5 0.5
FE 1.5 1.5 1.5 -0.5 -0.5 -0.5
"""

CRLF = "2\r\nLattice=\"4.0 0.0 0.0 0.0 4.0 0.0 0.0 0.0 4.0\" energy=1.5\r\nAr 0.0 0.0 0.0\r\nAr 2.0 2.0 2.0\r\n"


def encode_info(key, value):
    """A typed JSON description of one info value, as ASE holds it."""
    if key in SPECIAL_3_3_KEYS and isinstance(value, np.ndarray) and value.shape == (3, 3):
        # back to the 9 numbers of the file (Fortran order, as ASE writes)
        value = value.reshape(9, order="F")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        return {"type": "bool", "value": bool(value)}
    if isinstance(value, (int, np.integer)):
        return {"type": "int", "value": int(value)}
    if isinstance(value, (float, np.floating)):
        return {"type": "float", "value": float(value)}
    if isinstance(value, str):
        return {"type": "str", "value": value}
    if isinstance(value, list) and all(isinstance(v, (bool, np.bool_)) for v in value):
        return {"type": "bool_array", "value": [bool(v) for v in value]}
    if isinstance(value, np.ndarray) and value.ndim == 1:
        kind = {"b": "bool_array", "i": "int_array", "f": "float_array"}[value.dtype.kind]
        return {"type": kind, "value": value.tolist()}
    if isinstance(value, np.ndarray):
        return {"type": "json", "value": value.tolist()}
    return {"type": "json", "value": value}


def encode_array(value):
    """A typed JSON description of one per-atom column."""
    value = np.asarray(value)
    kind = {"f": "float", "i": "int", "b": "bool", "U": "str", "O": "str"}[value.dtype.kind]
    ncols = 1 if value.ndim == 1 else value.shape[1]
    data = value.reshape(-1).tolist()
    if kind == "str":
        data = [str(s) for s in data]
    return {"type": kind, "ncols": ncols, "data": data}


def expected_frame(atoms):
    """What ASE read, with calculator results put back where the file has them."""
    info = {key: encode_info(key, value) for key, value in atoms.info.items()}
    arrays = {}
    for name, value in atoms.arrays.items():
        if name in ("numbers", "positions"):
            continue
        arrays[PROPERTY_NAME_MAP.get(name, name)] = encode_array(value)
    if atoms.calc is not None:
        for name, value in atoms.calc.results.items():
            if name in per_atom_properties:
                arrays[PROPERTY_NAME_MAP.get(name, name)] = encode_array(value)
            else:
                if name == "stress" and np.shape(value) == (6,):
                    value = voigt_6_to_full_3x3_stress(value)
                info[name] = encode_info(name, value)
    return {
        "types": atoms.numbers.tolist(),
        "positions": atoms.positions.reshape(-1).tolist(),
        "cell": np.asarray(atoms.cell).reshape(-1).tolist(),
        "pbc": [bool(p) for p in atoms.pbc],
        "info": info,
        "arrays": arrays,
    }


def main():
    rng = np.random.default_rng(SEED)
    OUT.mkdir(parents=True, exist_ok=True)

    written = {
        "molecule_info.extxyz": molecule_with_info(),
        "crystal_calc.extxyz": crystals_with_results(rng),
        "mixed_pbc.extxyz": mixed_periodicity(rng),
        "per_atom_columns.extxyz": per_atom_columns(rng),
    }
    for name, frames in written.items():
        ase.io.write(OUT / name, frames, format="extxyz")

    # ASE's vec_cell layout: cell vectors as VECn lines after the atoms.
    slab = fcc111("Pt", size=(1, 2, 2), vacuum=5.0)
    del slab.info["adsorbate_info"]
    ase.io.write(OUT / "vec_cell.extxyz", [slab], format="extxyz", vec_cell=True)

    (OUT / "quirks.extxyz").write_text(QUIRKS)
    with open(OUT / "crlf.extxyz", "w", newline="") as f:
        f.write(CRLF)

    names = list(written) + ["vec_cell.extxyz", "quirks.extxyz", "crlf.extxyz"]
    expected = {
        "versions": {
            "ase": ase.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "seed": SEED,
        "files": {},
    }
    for name in names:
        frames = ase.io.read(OUT / name, index=":", format="extxyz")
        expected["files"][name] = [expected_frame(a) for a in frames]

    # allow_nan=False: every value must be plain JSON for serde_json
    text = json.dumps(expected, indent=1, allow_nan=False)
    (OUT / "expected.json").write_text(text + "\n")
    for name in names + ["expected.json"]:
        print(f"{OUT / name}: {(OUT / name).stat().st_size} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
