"""Reference tensors for SparseTensorGPR / TensorLinearModel: dipoles and
polarizabilities of small molecules and clusters from a polarizable
point-charge model written in numpy (dev-only; acdc never runs Python).

Model (units: e, Å; dipole e·Å, polarizability Å³, Gaussian-like units with
4πε₀ = 1 so that an induced dipole is p = α E with E in e/Å²):

* charges q from charge equilibration (QEq, Rappé & Goddard, J. Phys. Chem.
  95, 3358 (1991)): minimise Σ_i (χ_i q_i + ½ J_i q_i²) + ½ Σ_{i≠j} q_i q_j
  / sqrt(r_ij² + a_ij²), a_ij = 2.5 (1/J_i + 1/J_j) Å with every molecule neutral (one Lagrange multiplier
  per molecule), so charges depend on the geometry and on the neighbours;
* induced dipoles from Thole's damped point-dipole model (B. T. Thole, Chem.
  Phys. 59, 341 (1981), exponential damping as in AMOEBA, a = 0.39):
  p_i = α_i (E_i + Σ_{j≠i} T_ij p_j), solved as one linear system; the
  molecular polarizability is A = Σ_ij B_ij with B = (α⁻¹ − T)⁻¹ (symmetric
  3×3 after the sum), the field E_i is the damped field of the charges of
  the other molecules;
* dipole μ = Σ_i q_i (r_i − r_com) + Σ_i p_i (each molecule is neutral, so
  the origin does not matter).

Both are non-additive: A is not a sum of atomic terms, and the charges and
induced dipoles depend on every neighbour.

Structures: water monomers, dimers and trimers, and molecules of ASE's g2 set
made of H, C, N, O with at most 8 atoms, all distorted (Gaussian noise) and
randomly oriented. Written as extxyz with info keys `dipole` (3) and
`polarizability` (9, row-major), to examples/molecule-tensors.xyz,
with the versions in test/fixtures/tensors/versions.json.

Run:
    python -m venv /tmp/venv-tensor && /tmp/venv-tensor/bin/pip install ase numpy
    /tmp/venv-tensor/bin/python scripts/reference/tensor_data.py
"""
import json
import os
import sys

import ase
import numpy as np
from ase.build import molecule
from ase.collections import g2
from ase.io import write

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
OUT = os.path.join(ROOT, "test", "fixtures", "tensors")
rng = np.random.default_rng(20261206)

# electronegativity χ and hardness J (e/Å units), polarizability α (Å³)
CHI = {1: 4.5, 6: 5.3, 7: 6.9, 8: 8.7}
HARD = {1: 13.9, 6: 10.1, 7: 11.8, 8: 13.4}
ALPHA = {1: 0.496, 6: 1.334, 7: 1.073, 8: 0.837}
THOLE = 0.39


def random_rotation():
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def qeq(z, pos, mol):
    n = len(z)
    nmol = mol.max() + 1
    a = np.zeros((n + nmol, n + nmol))
    b = np.zeros(n + nmol)
    for i in range(n):
        a[i, i] = HARD[z[i]]
        b[i] = -CHI[z[i]]
        for j in range(n):
            if i != j:
                r = np.linalg.norm(pos[i] - pos[j])
                shield = 2.5 * (1 / HARD[z[i]] + 1 / HARD[z[j]])
                a[i, j] = 1.0 / np.sqrt(r * r + shield**2)
        a[i, n + mol[i]] = 1.0
        a[n + mol[i], i] = 1.0
    x = np.linalg.solve(a, b)
    return x[:n]


def thole_factors(r, ai, aj):
    u = r / (ai * aj) ** (1 / 6)
    e = np.exp(-THOLE * u**3)
    return 1 - e, 1 - (1 + THOLE * u**3) * e


def tensors(z, pos, mol):
    n = len(z)
    alpha = np.array([ALPHA[k] for k in z])
    q = qeq(z, pos, mol)
    # damped dipole field tensor T and field of the other molecules' charges
    t = np.zeros((3 * n, 3 * n))
    field = np.zeros(3 * n)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            d = pos[i] - pos[j]
            r = np.linalg.norm(d)
            l3, l5 = thole_factors(r, alpha[i], alpha[j])
            t[3 * i:3 * i + 3, 3 * j:3 * j + 3] = 3 * l5 * np.outer(d, d) / r**5 - l3 * np.eye(3) / r**3
            if mol[i] != mol[j]:
                field[3 * i:3 * i + 3] += l3 * q[j] * d / r**3
    relay = np.linalg.inv(np.diag(np.repeat(1 / alpha, 3)) - t)
    pol = np.zeros((3, 3))
    for i in range(n):
        for j in range(n):
            pol += relay[3 * i:3 * i + 3, 3 * j:3 * j + 3]
    pol = 0.5 * (pol + pol.T)
    p = relay @ field
    com = pos.mean(axis=0)
    dipole = (q[:, None] * (pos - com)).sum(axis=0) + p.reshape(n, 3).sum(axis=0)
    return dipole, pol


def place(parts, spread):
    """Random non-overlapping placement of molecules (min distance 2.2 Å)."""
    for _ in range(200):
        out = []
        for k, m in enumerate(parts):
            p = m.positions - m.positions.mean(axis=0)
            p = p @ random_rotation().T + (rng.uniform(-spread, spread, 3) if k else 0)
            out.append(p)
        ok = True
        for k, p in enumerate(out):
            for other in out[:k]:
                if np.min(np.linalg.norm(p[:, None] - other[None], axis=2)) < 2.2:
                    ok = False
        if ok:
            return np.concatenate(out)
    raise RuntimeError("could not place molecules")


def frame(names, spread=2.6, noise=0.06):
    parts = [molecule(n) for n in names]
    pos = place(parts, spread)
    z = np.concatenate([m.numbers for m in parts])
    mol = np.concatenate([[k] * len(m) for k, m in enumerate(parts)])
    pos = pos + rng.normal(scale=noise, size=pos.shape)
    dipole, pol = tensors(z, pos, mol)
    atoms = ase.Atoms(numbers=z, positions=pos)
    atoms.info["dipole"] = dipole
    atoms.info["polarizability"] = pol.reshape(9)
    return atoms


def main():
    small = sorted(n for n in g2.names if set(g2[n].numbers) <= {1, 6, 7, 8} and 3 <= len(g2[n]) <= 8)
    frames = []
    for _ in range(90):
        frames.append(frame(["H2O"]))
    for _ in range(90):
        frames.append(frame(["H2O", "H2O"]))
    for _ in range(60):
        frames.append(frame(["H2O", "H2O", "H2O"], spread=3.2))
    for _ in range(160):
        frames.append(frame([small[rng.integers(len(small))]]))
    order = rng.permutation(len(frames))
    frames = [frames[k] for k in order]
    os.makedirs(OUT, exist_ok=True)
    write(os.path.join(ROOT, "examples", "molecule-tensors.xyz"), frames, format="extxyz")
    versions = {"python": sys.version.split()[0], "numpy": np.__version__, "ase": ase.__version__,
                "script": "scripts/reference/tensor_data.py", "frames": len(frames), "molecules": small}
    with open(os.path.join(OUT, "versions.json"), "w") as f:
        json.dump(versions, f, indent=1)
        f.write("\n")
    print(len(frames), "frames;", len(small), "g2 molecules")


if __name__ == "__main__":
    main()
