"""featomic's spherical expansion of a two-atom system, to pin down acdc's radial
integral and spherical-harmonics conventions.

Dev-only: acdc never runs Python. Run with a venv where
`pip install featomic==0.6.7 ase` (versions are recorded in the output):

    python scripts/reference/featomic_radial_check.py      (from the repository root)

writes crates/acdc-core/tests/data/featomic_radial.json, read by the unit tests
in crates/acdc-core/src/basis/mod.rs.

The system is a centre of type 1 at the origin and one neighbour of type 8 at
r·u (u a fixed unit vector), non-periodic. Every r is inside the region where
the cutoff function is 1 (Step cutoff, or ShiftedCosine with r <= r_c - width)
and there is no radial scaling, so featomic's coefficients are exactly

    <n l m| centre 0, neighbour type 8>  = I_nl(r) Y_l^m(u)
    <n l m| centre 1, neighbour type 1>  = I_nl(r) Y_l^m(-u)
    <n 0 0| centre 0, neighbour type 1>  = w_c I_n0(0) Y_0^0      (the centre's own density)

and the positions gradient of the first one with respect to the neighbour is
d/dr_vec [I_nl(|r|) Y_l^m(r/|r|)].

Layout:
  versions: {featomic, metatensor-core, ase, numpy, python}
  cases: [{hypers, direction: u, center_atom_weight,
           self: [n]                                    (w_c I_n0(0) Y_0^0),
           points: [{r,
                     values: [l][m + l][n]              (centre 0, neighbour type 8),
                     reverse: [l][m + l][n]             (centre 1, neighbour type 1; optional),
                     gradients: [xyz][l][m + l][n]}]}]  (d values / d position of atom 1; optional)
"""

import json
import os
import platform

import ase
import metatensor
import numpy as np

import featomic
from featomic import SphericalExpansion

OUTPUT = os.path.join("crates", "acdc-core", "tests", "data", "featomic_radial.json")

DIRECTION = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])


def hypers(cutoff, smoothing, width, max_radial, max_angular, spline_accuracy, center_atom_weight):
    return {
        "cutoff": {"radius": cutoff, "smoothing": smoothing},
        "density": {"type": "Gaussian", "width": width, "center_atom_weight": center_atom_weight},
        "basis": {
            "type": "TensorProduct",
            "max_angular": max_angular,
            "radial": {"type": "Gto", "max_radial": max_radial},
            "spline_accuracy": spline_accuracy,
        },
    }


CASES = [
    (hypers(5.0, {"type": "Step"}, 0.3, 6, 6, None, 0.7), [0.7, 1.5, 2.9, 4.6]),
    (hypers(4.5, {"type": "ShiftedCosine", "width": 0.5}, 0.5, 8, 10, None, 1.0), [0.9, 2.2, 3.9]),
    (hypers(6.0, {"type": "Step"}, 0.25, 3, 12, None, 0.0), [0.3, 3.3, 5.8]),
    (hypers(3.5, {"type": "Step"}, 0.1, 4, 4, None, 1.0), [0.2, 1.3, 3.4]),
    # splined with the default accuracy: acdc builds the same grids
    (hypers(5.0, {"type": "Step"}, 0.3, 6, 6, 1e-8, 0.7), [0.7, 1.5, 2.9, 4.6, 4.99]),
    (hypers(4.0, {"type": "ShiftedCosine", "width": 0.3}, 0.5, 8, 8, 1e-6, 1.0), [0.05, 1.234, 3.6]),
]


def block_values(tm, l, center, neighbor, sample_atom):
    block = tm.block({"o3_lambda": l, "o3_sigma": 1, "center_type": center, "neighbor_type": neighbor})
    samples = block.samples
    row = [i for i, s in enumerate(samples.values.tolist()) if s == [0, sample_atom]]
    assert len(row) == 1
    return block, row[0]


def main():
    cases = []
    for h, distances in CASES:
        calc = SphericalExpansion(**h)
        max_angular = h["basis"]["max_angular"]
        points = []
        self_term = None
        for r in distances:
            atoms = ase.Atoms(numbers=[1, 8], positions=[[0.0, 0.0, 0.0], list(r * DIRECTION)], pbc=False)
            tm = calc.compute(atoms, gradients=["positions"])
            values, reverse, gradients = [], [], [[], [], []]
            for l in range(max_angular + 1):
                block, row = block_values(tm, l, 1, 8, 0)
                assert block.properties.names == ["n"]
                values.append(block.values[row].tolist())
                gradient = block.gradient("positions")
                assert gradient.samples.names == ["sample", "system", "atom"]
                grad_rows = [i for i, s in enumerate(gradient.samples.values.tolist()) if s == [row, 0, 1]]
                assert len(grad_rows) == 1
                for xyz in range(3):
                    gradients[xyz].append(gradient.values[grad_rows[0], xyz].tolist())

                block, row = block_values(tm, l, 8, 1, 1)
                reverse.append(block.values[row].tolist())

            block, row = block_values(tm, 0, 1, 1, 0)
            self_term = block.values[row, 0].tolist()
            point = {"r": r, "values": values}
            # gradients and the reversed pair for a few points only, to keep the file small
            if len(points) == 0 or (h["basis"]["spline_accuracy"] is None and max_angular <= 6):
                point["reverse"] = reverse
                point["gradients"] = gradients
            points.append(point)

        cases.append({
            "hypers": h,
            "direction": DIRECTION.tolist(),
            "center_atom_weight": h["density"]["center_atom_weight"],
            "self": self_term,
            "points": points,
        })

    data = {
        "versions": {
            "featomic": featomic.__version__,
            "metatensor-core": metatensor.__version__,
            "ase": ase.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "cases": cases,
    }
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    with open(OUTPUT, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
