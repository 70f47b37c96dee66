"""Checks that the `classic` benchmark cases compute the same numbers in acdc
and DScribe 2.1.2 (same hyper-parameters as bench/worker.mjs and worker.py):
ACSF values on si512 and water64, and the sorted_l2 Coulomb matrix on
g2x1000, to 1e-10 (absolute, relative to the largest value for the matrix).

    bench/.venv/bin/python bench/check_same.py bench/.data
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from ase.io import read
from dscribe.descriptors import ACSF, CoulombMatrix

sys.path.insert(0, str(Path(__file__).parent))
from worker import ACSF_HYPERS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "bench" / ".data")

NODE = r"""
const acdc = require('acdc-ml');
const [kind, file] = process.argv.slice(1);
const frames = acdc.readXyzSync(file);
let calc;
if (kind === 'acsf') calc = new acdc.SymmetryFunctions({ cutoff: 6, g2: [[1, 1], [1, 2], [1, 3]], g4: [[1, 1, 1], [1, 2, 1], [1, 1, -1], [1, 2, -1]] });
else calc = new acdc.CoulombMatrix({ n_atoms_max: Math.max(...frames.map((f) => f.types.length)), permutation: 'sorted_l2' });
const x = acdc.toArray(calc.computeSync(frames), { layout: 'dscribe' });
process.stdout.write(JSON.stringify({ shape: x.shape, data: Array.from(x.data) }));
"""


def acdc_array(kind, file):
    out = subprocess.run(["node", "-e", NODE, kind, str(file)], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    x = json.loads(out)
    return np.array(x["data"]).reshape(x["shape"])


ok = True
for name in ["si512", "water64"]:
    atoms = read(DATA / f"{name}.xyz")
    species = sorted(set(int(z) for z in atoms.numbers))
    ref = ACSF(species=species, periodic=bool(atoms.pbc.any()), **ACSF_HYPERS).create(atoms)
    got = acdc_array("acsf", DATA / f"{name}.xyz")
    err = float(np.abs(got - ref).max()) if got.shape == ref.shape else float("inf")
    print(f"ACSF {name}: shape acdc {got.shape} DScribe {ref.shape}, max |diff| {err:.2e}")
    ok &= err <= 1e-10
frames = read(DATA / "g2x1000.xyz", ":")
ref = CoulombMatrix(n_atoms_max=max(len(a) for a in frames), permutation="sorted_l2").create(frames)
got = acdc_array("cm", DATA / "g2x1000.xyz").reshape(ref.shape)
err = float(np.abs(got - ref).max() / np.abs(ref).max())
bad = int((np.abs(got - ref).max(axis=1) > 1e-10 * np.abs(ref).max()).sum())
# rows of (nearly) equal norm may come in another order: compare each
# molecule's matrix entries as a sorted multiset, and its row norms
n = max(len(a) for a in frames)
g, r = got.reshape(-1, n, n), ref.reshape(-1, n, n)
multiset = float(np.abs(np.sort(got, axis=1) - np.sort(ref, axis=1)).max() / np.abs(ref).max())
norms = float(np.abs(np.linalg.norm(g, axis=2) - np.linalg.norm(r, axis=2)).max() / np.abs(ref).max())
print(f"CoulombMatrix g2x1000: shape {ref.shape}, max |diff| / max |value| {err:.2e} "
      f"({bad} molecules differ); sorted entries {multiset:.2e}, row norms {norms:.2e}")
ok &= multiset <= 1e-10 and norms <= 1e-10
sys.exit(0 if ok else 1)
