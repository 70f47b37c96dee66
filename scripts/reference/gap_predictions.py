"""Per-frame predictions of a GAP model (quippy Potential) on an extxyz file,
written as JSON: {"energy": [eV per frame], "forces": [[3N eV/Å] per frame]},
for comparing acdc's predictions with GAP's frame by frame
(bench/gap_same_sparse.mjs, docs/MODELS.md "Multi-species accuracy against
GAP").

Versions: quippy-ase==0.10.3, ase==3.29.0, numpy==2.4.6.

    OMP_NUM_THREADS=1 python scripts/reference/gap_predictions.py gap.xml test.xyz out.json
"""
import json
import sys

from ase.io import read
from quippy.potential import Potential


def main(argv):
    xml, test, out = argv
    pot = Potential(param_filename=xml)
    energy, forces = [], []
    for at in read(test, ":"):
        a = at.copy()
        a.calc = pot
        energy.append(float(a.get_potential_energy()))
        forces.append([float(v) for v in a.get_forces().ravel()])
    with open(out, "w") as f:
        json.dump({"energy": energy, "forces": forces}, f)


if __name__ == "__main__":
    main(sys.argv[1:])
