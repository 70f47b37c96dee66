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
