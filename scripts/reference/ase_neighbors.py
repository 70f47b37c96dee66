"""Neighbour-list reference pairs from ASE, for acdc's neighbour list tests.

Dev-only: acdc never runs Python. Writes test/fixtures/neighbors/ase_neighbors.json
with ase.neighborlist.neighbor_list('ijSdD', atoms, cutoff, self_interaction=False):
a full list (both (i, j, S) and (j, i, -S)), pairs with |r_ij| < cutoff, where
r_ij = D = x_j - x_i + S @ cell, cell rows = lattice vectors (docs/CONVENTIONS.md §1).

Layout:
  versions: {ase, numpy, python}, seed
  cases: [{name, description, types, positions (flat 3N), cell (flat 9, rows
           = lattice vectors), pbc, cutoff, n_pairs, isolated_atoms (atoms
           without any neighbour),
           pairs: {i, j, S (flat 3 per pair), d, D (flat 3 per pair)}}]
Pairs are sorted by (i, j, S0, S1, S2). Positions are not wrapped: several
cases put atoms outside the cell on purpose.

Every case is checked here so that the fixture is unambiguous: D equals
x_j - x_i + S @ cell, no pair distance lies within 1e-6 Å of the cutoff (so a
correct implementation cannot disagree by rounding), and the list is
symmetric.

Run: python scripts/reference/ase_neighbors.py   (from the repository root)
"""

import json
import platform
import sys
from pathlib import Path

import numpy as np

import ase
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list

SEED = 20240612
ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test" / "fixtures" / "neighbors" / "ase_neighbors.json"
MARGIN = 1e-6  # Å: no pair distance this close to the cutoff


def random_cell(rng, lengths, max_tilt):
    """Rows a, b, c: a along x, b in the xy plane, random tilts."""
    a = np.array([lengths[0], 0.0, 0.0])
    b = np.array([rng.uniform(-max_tilt, max_tilt) * lengths[1], lengths[1], 0.0])
    c = np.array([rng.uniform(-max_tilt, max_tilt) * lengths[2],
                  rng.uniform(-max_tilt, max_tilt) * lengths[2], lengths[2]])
    return np.array([a, b, c])


def random_types(rng, n, species=(1, 6, 8, 14)):
    return rng.choice(species, n)


def from_fractional(frac, cell):
    return frac @ cell


def cases(rng):
    out = []

    # 1. one atom in a cell much smaller than the cutoff: only self-images
    cell = np.eye(3) * 1.2
    out.append(("tiny_cubic_self_images",
                 "1 atom, cubic 1.2 Å cell, cutoff 3.1: every pair is an image of the atom itself",
                 Atoms([14], positions=[[0.3, 0.2, 0.1]], cell=cell, pbc=True), 3.1))

    # 2. small random triclinic cell, several atoms, many images
    cell = random_cell(rng, rng.uniform(1.8, 2.6, 3), 0.4)
    frac = rng.uniform(0, 1, (3, 3))
    out.append(("small_triclinic",
                 "3 atoms, triclinic cell with ~2 Å vectors, cutoff 5",
                 Atoms(random_types(rng, 3), positions=from_fractional(frac, cell), cell=cell, pbc=True), 5.0))

    # 3. very skewed cell: the vectors are nearly parallel (angles ~10-15°)
    cell = np.array([[3.0, 0.0, 0.0], [2.9, 0.6, 0.0], [2.85, 0.55, 0.7]])
    frac = rng.uniform(0, 1, (6, 3))
    out.append(("very_skewed",
                 "6 atoms, cell vectors 10-15° apart (thin, sheared cell), cutoff 4",
                 Atoms(random_types(rng, 6), positions=from_fractional(frac, cell), cell=cell, pbc=True), 4.0))

    # 4. pbc T F T, atoms outside the cell in every direction
    cell = random_cell(rng, [4.0, 5.0, 4.5], 0.3)
    frac = rng.uniform(-1.5, 2.5, (10, 3))
    out.append(("mixed_pbc_TFT_outside",
                 "10 atoms, pbc T F T, fractional coordinates in [-1.5, 2.5), cutoff 3.5",
                 Atoms(random_types(rng, 10), positions=from_fractional(frac, cell), cell=cell,
                       pbc=[True, False, True]), 3.5))

    # 5. slab: pbc T T F, small in-plane cell, negative fractional coordinates
    cell = random_cell(rng, [3.0, 3.2, 15.0], 0.25)
    frac = np.column_stack([rng.uniform(-1.0, 1.0, 12), rng.uniform(-2.0, 0.5, 12), rng.uniform(0.3, 0.6, 12)])
    out.append(("slab_TTF_negative_fractional",
                 "12 atoms, pbc T T F, 3 Å in-plane cell, negative fractional coordinates, cutoff 4",
                 Atoms(random_types(rng, 12), positions=from_fractional(frac, cell), cell=cell,
                       pbc=[True, True, False]), 4.0))

    # 6. 2D periodic, tiny in-plane cell, large cutoff: many images in-plane only
    cell = np.array([[2.0, 0.0, 0.0], [0.7, 1.9, 0.0], [0.0, 0.0, 10.0]])
    out.append(("sheet_TTF_large_cutoff",
                 "2 atoms, pbc T T F, 2 Å in-plane cell, cutoff 5.95",
                 Atoms([6, 6], positions=[[0.1, 0.2, 5.0], [1.2, 0.9, 5.4]], cell=cell,
                       pbc=[True, True, False]), 5.95))

    # 7. wire: pbc T F F, zero cell rows along the non-periodic directions
    cell = np.array([[1.5, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    pos = np.column_stack([rng.uniform(-2, 2, 4), rng.uniform(-1, 1, 4), rng.uniform(-1, 1, 4)])
    out.append(("wire_TFF_zero_rows",
                 "4 atoms, pbc T F F, only lattice vector a given (b, c zero), cutoff 3.5",
                 Atoms(random_types(rng, 4), positions=pos, cell=cell, pbc=[True, False, False]), 3.5))

    # 8. cluster: no periodicity, zero cell, one isolated atom
    pos = rng.uniform(0, 6, (20, 3))
    pos = np.vstack([pos, [[30.0, 30.0, 30.0]]])  # far from everything: no neighbours
    out.append(("cluster_FFF_isolated_atom",
                 "21 atoms, no cell, pbc F F F; atom 20 is isolated (no neighbours), cutoff 3",
                 Atoms(random_types(rng, 21), positions=pos, pbc=False), 3.0))

    # 9. periodic, big cell, isolated atom, atoms far outside the cell
    cell = random_cell(rng, [20.0, 22.0, 21.0], 0.1)
    frac = rng.uniform(0.0, 0.2, (8, 3))
    frac = np.vstack([frac, [[0.6, 0.6, 0.6]]])  # isolated, even through images
    frac[:3] += rng.integers(-3, 4, (3, 3))  # same atoms, unwrapped by whole cells
    out.append(("periodic_isolated_unwrapped",
                 "9 atoms, pbc T T T, 20 Å triclinic cell; atom 8 has no neighbours; atoms 0-2 shifted by whole cells, cutoff 3",
                 Atoms(random_types(rng, 9), positions=from_fractional(frac, cell), cell=cell, pbc=True), 3.0))

    # 10. large: >= 1000 atoms, rattled fcc in a sheared cell, some atoms unwrapped
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((6, 6, 7))
    shear = np.eye(3) + np.array([[0.0, 0.04, -0.03], [0.02, 0.0, 0.05], [-0.01, 0.03, 0.0]])
    atoms.set_cell(atoms.cell @ shear, scale_atoms=True)
    atoms.rattle(0.1, seed=SEED)
    n = len(atoms)
    moved = rng.choice(n, n // 10, replace=False)
    atoms.positions[moved] += rng.integers(-2, 3, (len(moved), 3)) @ atoms.cell
    atoms.numbers = rng.choice([28, 29], n)
    out.append(("large_fcc_1008",
                f"{n} atoms, rattled fcc Cu/Ni in a sheared cell, pbc T T T, 10% of atoms unwrapped by whole cells, cutoff 3",
                atoms, 3.0))

    # 11. mixed pbc F T F with a random cell and atoms straddling the boundaries
    cell = random_cell(rng, [6.0, 2.5, 7.0], 0.3)
    frac = rng.uniform(-0.5, 1.5, (8, 3))
    out.append(("mixed_pbc_FTF",
                 "8 atoms, pbc F T F, 2.5 Å periodic vector, cutoff 4",
                 Atoms(random_types(rng, 8), positions=from_fractional(frac, cell), cell=cell,
                       pbc=[False, True, False]), 4.0))
    return out


def compute(name, description, atoms, cutoff):
    i, j, S, d, D = neighbor_list("ijSdD", atoms, cutoff, self_interaction=False)
    order = np.lexsort((S[:, 2], S[:, 1], S[:, 0], j, i))
    i, j, S, d, D = i[order], j[order], S[order], d[order], D[order]

    # checks that make the fixture unambiguous
    cell = np.asarray(atoms.cell)
    pos = atoms.positions
    assert np.allclose(D, pos[j] - pos[i] + S @ cell, atol=1e-9, rtol=0), name
    assert np.allclose(d, np.linalg.norm(D, axis=1), atol=1e-12, rtol=0), name
    assert np.all(S[:, ~atoms.pbc] == 0), name
    assert not np.any((i == j) & np.all(S == 0, axis=1)), name
    wider = neighbor_list("d", atoms, cutoff + MARGIN, self_interaction=False)
    assert not np.any(np.abs(wider - cutoff) < MARGIN), f"{name}: a distance is within {MARGIN} of the cutoff"
    forward = {(a, b, tuple(s)) for a, b, s in zip(i.tolist(), j.tolist(), S.tolist())}
    assert all((b, a, tuple(-x for x in s)) in forward for a, b, s in forward), f"{name}: not symmetric"
    isolated = sorted(set(range(len(atoms))) - set(i.tolist()))
    if "isolated" in name:
        assert isolated == [len(atoms) - 1], f"{name}: atoms without neighbours: {isolated}"

    return {
        "name": name,
        "description": description,
        "types": atoms.numbers.tolist(),
        "positions": pos.reshape(-1).tolist(),
        "cell": cell.reshape(-1).tolist(),
        "pbc": [bool(p) for p in atoms.pbc],
        "cutoff": cutoff,
        "n_pairs": int(len(i)),
        "isolated_atoms": isolated,
        "pairs": {
            "i": i.tolist(),
            "j": j.tolist(),
            "S": S.reshape(-1).tolist(),
            "d": d.tolist(),
            "D": D.reshape(-1).tolist(),
        },
    }


def main():
    rng = np.random.default_rng(SEED)
    results = [compute(*case) for case in cases(rng)]
    data = {
        "versions": {"ase": ase.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "seed": SEED,
        "function": "ase.neighborlist.neighbor_list('ijSdD', atoms, cutoff, self_interaction=False)",
        "convention": "full list; D = x_j - x_i + S @ cell (cell rows = lattice vectors); pairs with d < cutoff; "
                      "sorted by (i, j, S)",
        "cases": results,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # one case per line keeps diffs readable; allow_nan=False keeps it plain JSON
    body = ",\n".join(json.dumps(c, allow_nan=False, separators=(",", ":")) for c in results)
    head = json.dumps({k: v for k, v in data.items() if k != "cases"}, allow_nan=False)
    OUT.write_text(head[:-1] + ',\n"cases": [\n' + body + "\n]}\n")
    json.loads(OUT.read_text())  # the hand-joined text is valid JSON
    for c in results:
        print(f"{c['name']}: {len(c['types'])} atoms, {c['n_pairs']} pairs", file=sys.stderr)
    print(f"{OUT}: {OUT.stat().st_size} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
