"""Stillinger–Weber silicon frames for the body-order learning curves in
docs/MODELS.md ("Higher body order").

Every frame is a 64-site diamond cell (2×2×2 conventional cells, a = 5.431 Å)
with a random cell deformation 1 + e (every entry of e uniform in
±--strain, not symmetrised: triclinic) and Gaussian rattles whose width is
drawn per frame uniformly in [--rattle-min, --rattle-max] Å (a stand-in for
temperatures from a few hundred to ~1500 K); a fraction --vacancy of the
frames has one atom removed (63 atoms). Energies (eV), forces (eV/Å) and
stress (eV/Å³, ASE's sign) from the Stillinger–Weber potential
(F. H. Stillinger & T. A. Weber, Phys. Rev. B 31, 5262 (1985),
doi:10.1103/PhysRevB.31.5262) in QUIP's implementation, with the original
parameters (ε = 2.1675 eV, σ = 2.0951 Å). Training and test frames come from
independent random streams.

Versions: ase==3.29.0, numpy==2.4.6, quippy-ase==0.10.3 (QUIP's `IP SW`).

    python scripts/reference/sw_silicon_data.py --train si-train.xyz --test si-test.xyz
"""
import argparse

import numpy as np
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from quippy.potential import Potential

SW = """<SW_params n_types="1" label="PRB_31_plus_H">
<comment> Stillinger and Weber, Phys. Rev. B 31 p 5262 (1984)</comment>
<per_type_data type="1" atomic_num="14" />
<per_pair_data atnum_i="14" atnum_j="14" AA="7.049556277" BB="0.6022245584"
      p="4" q="0" a="1.80" sigma="2.0951" eps="2.1675" />
<per_triplet_data atnum_c="14" atnum_j="14" atnum_k="14"
      lambda="21.0" gamma="1.20" eps="2.1675" />
</SW_params>"""


def frame(rng, args, potential):
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat((2, 2, 2))
    if rng.uniform() < args.vacancy:
        del atoms[int(rng.integers(len(atoms)))]
    e = rng.uniform(-args.strain, args.strain, (3, 3))
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + e), scale_atoms=True)
    width = rng.uniform(args.rattle_min, args.rattle_max)
    atoms.positions += rng.normal(0.0, width, atoms.positions.shape)
    atoms.calc = potential
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    stress = atoms.get_stress(voigt=False)
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
    atoms.info["rattle"] = width
    return atoms


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--n-train", type=int, default=60)
    p.add_argument("--n-test", type=int, default=30)
    p.add_argument("--strain", type=float, default=0.03)
    p.add_argument("--rattle-min", type=float, default=0.03)
    p.add_argument("--rattle-max", type=float, default=0.2)
    p.add_argument("--vacancy", type=float, default=0.25)
    args = p.parse_args()
    potential = Potential("IP SW", param_str=SW)
    for name, n, seed in [(args.train, args.n_train, 1), (args.test, args.n_test, 2)]:
        rng = np.random.default_rng(seed)
        write(name, [frame(rng, args, potential) for _ in range(n)], format="extxyz")


if __name__ == "__main__":
    main()
