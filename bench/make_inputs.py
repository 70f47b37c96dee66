"""Writes the standard benchmark inputs (extended XYZ, via ASE) into a folder.

    python bench/make_inputs.py bench/.data

Every structure is made from a fixed seed, so the files are the same on
every run; a file that already exists with the right content is left alone.

  si512.xyz       diamond silicon, 4x4x4 conventional cells = 512 atoms, rattled 0.05 Å
  water64.xyz     64 randomly oriented water molecules in a cubic box at 1 g/cm³ (192 atoms)
  g2x1000.xyz     1000 molecules of ase.collections.g2, cycled, non-periodic (one frame each)
  si_nl_1k.xyz    diamond silicon supercells for the neighbour list:  5³·8 = 1000 atoms
  si_nl_10k.xyz                                                      11³·8 = 10648 atoms
  si_nl_100k.xyz                                                     23³·8 = 97336 atoms
"""

import hashlib
import json
import os
import sys

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.collections import g2
from ase.io import write

AVOGADRO = 6.02214076e23


def silicon(n, seed):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (n, n, n)
    atoms.rattle(stdev=0.05, seed=seed)
    atoms.wrap()
    return atoms


def random_rotation(rng):
    # uniform random rotation from a normalised Gaussian quaternion
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    a, b, c, d = q
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
        ]
    )


def water_box(n_side=4, density=1.0, seed=7):
    """n_side³ molecules on a jittered grid, each randomly rotated, at `density` g/cm³."""
    rng = np.random.default_rng(seed)
    n_mol = n_side**3
    mass = n_mol * 18.01528 / AVOGADRO  # g
    length = (mass / density) ** (1.0 / 3.0) * 1e8  # cm -> Å
    spacing = length / n_side
    r_oh, angle = 0.9572, np.deg2rad(104.52)
    # molecule frame: O at the origin, H in the xy plane
    local = np.array(
        [
            [0.0, 0.0, 0.0],
            [r_oh, 0.0, 0.0],
            [r_oh * np.cos(angle), r_oh * np.sin(angle), 0.0],
        ]
    )
    local -= local.mean(axis=0)
    positions, symbols = [], []
    for ix in range(n_side):
        for iy in range(n_side):
            for iz in range(n_side):
                centre = (np.array([ix, iy, iz]) + 0.5) * spacing
                centre += rng.uniform(-0.08, 0.08, size=3) * spacing
                rot = random_rotation(rng)
                positions.extend(centre + local @ rot.T)
                symbols.extend(["O", "H", "H"])
    atoms = Atoms(symbols, positions=positions, cell=[length] * 3, pbc=True)
    atoms.wrap()
    return atoms


def g2_molecules(count=1000):
    names = list(g2.names)
    frames = []
    for k in range(count):
        atoms = g2[names[k % len(names)]].copy()
        atoms.cell[:] = 0.0
        atoms.pbc = False
        frames.append(atoms)
    return frames


INPUTS = {
    "si512": lambda: [silicon(4, seed=1)],
    "water64": lambda: [water_box()],
    "g2x1000": lambda: g2_molecules(1000),
    "si_nl_1k": lambda: [silicon(5, seed=2)],
    "si_nl_10k": lambda: [silicon(11, seed=3)],
    "si_nl_100k": lambda: [silicon(23, seed=4)],
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".data")
    os.makedirs(out, exist_ok=True)
    manifest = {}
    for name, make in INPUTS.items():
        frames = make()
        path = os.path.join(out, f"{name}.xyz")
        tmp = path + ".tmp"
        write(tmp, frames, format="extxyz")
        with open(tmp, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        old = None
        if os.path.exists(path):
            with open(path, "rb") as f:
                old = hashlib.sha256(f.read()).hexdigest()
        if old == digest:
            os.remove(tmp)
        else:
            os.replace(tmp, path)
        manifest[name] = {
            "file": f"{name}.xyz",
            "frames": len(frames),
            "atoms": int(sum(len(a) for a in frames)),
            "species": sorted({int(z) for a in frames for z in a.numbers}),
            "periodic": bool(frames[0].pbc.any()),
            "sha256": digest,
        }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    for name, m in manifest.items():
        print(f"  {name:12s} {m['frames']:5d} frame(s) {m['atoms']:7d} atoms  species {m['species']}")


if __name__ == "__main__":
    main()
