"""Extended XYZ files with values that JSON cannot hold, written by ASE.

Dev-only: acdc never runs Python. Writes, with ase.io.write:
  test/fixtures/fuzz/special_floats.extxyz  info NaN, inf, -0.0 and arrays of them
  test/fixtures/fuzz/empty_frame.extxyz     a frame without atoms
and test/fixtures/fuzz/ase_special.json: the versions used and what ASE reads
back from each file (floats as Python repr strings, since JSON has no NaN).

Pinned: ase==3.23.0 (numpy as its dependency). Run from the repository root:
  python -m venv /tmp/venv-ase && /tmp/venv-ase/bin/pip install ase==3.23.0
  /tmp/venv-ase/bin/python scripts/reference/ase_xyz_special.py
"""

import io
import json
import platform
from pathlib import Path

import numpy as np

import ase
import ase.io
from ase import Atoms

assert ase.__version__ == "3.23.0", ase.__version__
OUT = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "fuzz"


def described(value):
    if isinstance(value, np.ndarray):
        return [repr(float(x)) for x in value]
    return repr(float(value))


def main():
    special = Atoms()
    special.info.update({"e": float("nan"), "f": float("inf"), "g": -0.0, "h": [float("nan"), -float("inf")], "k": [-0.0]})
    files = {"special_floats.extxyz": special, "empty_frame.extxyz": Atoms()}
    expected = {}
    for name, atoms in files.items():
        buf = io.StringIO()
        ase.io.write(buf, atoms, format="extxyz")
        (OUT / name).write_text(buf.getvalue())
        back = ase.io.read(OUT / name, format="extxyz")
        expected[name] = {"natoms": len(back), "info": {k: described(v) for k, v in back.info.items()}}
    versions = {"ase": ase.__version__, "numpy": np.__version__, "python": platform.python_version()}
    (OUT / "ase_special.json").write_text(json.dumps({"versions": versions, "files": expected}, indent=1) + "\n")


if __name__ == "__main__":
    main()
