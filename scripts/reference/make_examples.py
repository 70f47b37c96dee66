"""Writes the bundled example structures in examples/ (dev-only).

Run: python -m venv .venv && .venv/bin/pip install ase numpy && .venv/bin/python scripts/reference/make_examples.py
"""
import numpy as np
from ase.build import bulk, molecule
from ase.io import write

rng = np.random.default_rng(2026)
frames = []
for k in range(8):
    si = bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 2))
    del si[k]  # one vacancy, a different one per frame
    si.rattle(stdev=0.05, seed=int(rng.integers(1 << 30)))
    si.info["config_type"] = "vacancy"
    si.info["frame"] = k
    frames.append(si)
write("examples/silicon-defect.xyz", frames, format="extxyz")

waters = []
for k in range(4):
    w = molecule("H2O")
    w.rattle(stdev=0.02, seed=k)
    w.info["config_type"] = "molecule"
    waters.append(w)
write("examples/water.xyz", waters, format="extxyz")

# Small organic molecules (H, C, N, O) from ase.collections.g2, rattled:
# the bundled input of the README's `acdc featurize` command.
from ase.collections import g2

names = [n for n in g2.names if set(g2[n].get_chemical_symbols()) <= {"H", "C", "N", "O"}]
molecules = []
for k in range(120):
    m = g2[names[k % len(names)]].copy()
    m.rattle(stdev=0.03, seed=k)
    m.info["config_type"] = "g2"
    m.info["name"] = names[k % len(names)]
    molecules.append(m)
write("examples/molecules.xyz", molecules, format="extxyz")
