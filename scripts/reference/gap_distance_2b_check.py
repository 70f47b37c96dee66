"""Checks the exact form of GAP's distance_2b energy (dev-only), as used by
acdc's 2-body term (docs/MODELS.md, "Sums of kernels").

Reads a gap_fit model made of distance_2b descriptors only (α, sparse
points, `sparseCutoff`, θ, signal variance δ² from its XML and sparseX
files), recomputes test energies with candidate formulas, and compares them
with quippy's prediction:

    E = Σ e0 + c Σ_{pairs} f_c(r) Σ_m α_m [f_c(r_m)] δ² exp(−(r − r_m)²/(2θ²))

for c = 2 (every unordered pair twice, i.e. GAP's ordered pairs) or 1, with
or without the sparse point's f_c(r_m). Measured (quippy-ase 0.10.3, ase
3.29.0, numpy 2.4.6, 9 Pt–Ni training frames): ordered pairs with f_c(r_m): 1.7e-10
relative; pairs once: 0.46; without f_c(r_m): > 1e6 (6 test frames).

    python scripts/reference/emt_ptni_alloy_data.py --train small-train.xyz --test small-test.xyz --train-per 3 --test-per 2 --seed 5
    D="cutoff=5.0 cutoff_transition_width=0.5 covariance_type=ard_se delta=1.0 theta_uniform=1.0 n_sparse=15 sparse_method=uniform"
    OMP_NUM_THREADS=1 flock /tmp/gap.lock gap_fit at_file=small-train.xyz "gap={distance_2b $D}" \\
        default_sigma="{0.002 0.05 0.05 0.0}" e0_method=average energy_parameter_name=energy \\
        force_parameter_name=forces virial_parameter_name=NONE gp_file=gap2b.xml sparse_jitter=1e-8
    OMP_NUM_THREADS=1 flock /tmp/gap.lock python scripts/reference/gap_distance_2b_check.py gap2b.xml small-test.xyz 5.0 0.5

(`gap={distance_2b ...}` without Z1/Z2: gap_fit's add_species makes one
descriptor per species pair.)
"""
import re
import sys

import numpy as np
from ase.io import read
from ase.neighborlist import neighbor_list
from quippy.potential import Potential

xml, test_file, rc, w = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
test = read(test_file, ":")
text = open(xml).read()
e0 = {int(z): float(v) for z, v in re.findall(r'<e0 Z="(\d+)" value="([^"]+)"', text)}
coords = []
for block in re.findall(r"<gpCoordinates (.*?)</gpCoordinates>", text, re.S):
    desc = re.search(r"<descriptor>(.*?)</descriptor>", block).group(1)
    z = tuple(sorted((int(re.search(r"Z1=(\d+)", desc).group(1)), int(re.search(r"Z2=(\d+)", desc).group(1)))))
    coords.append(
        dict(
            z=z,
            theta=float(re.search(r"<theta>\s*(\S+)", block).group(1)),
            sv=float(re.search(r'signal_variance="([^"]+)"', block).group(1)),
            alpha=np.array([float(a) for a in re.findall(r'alpha="([^"]+)"', block)]),
            sc=np.array([float(a) for a in re.findall(r'sparseCutoff="([^"]+)"', block)]),
            x=np.atleast_1d(np.loadtxt(re.search(r'sparseX_filename="([^"]+)"', block).group(1))),
        )
    )


def fc(r):
    return np.where(r <= rc - w, 1.0, np.where(r >= rc, 0.0, 0.5 * (1 + np.cos(np.pi * (r - rc + w) / w))))


print("sparseCutoff − f_c(sparse point), largest:", max(np.abs(c["sc"] - fc(c["x"])).max() for c in coords))


def energy(at, twice, sparse_cutoff):
    i, j, d = neighbor_list("ijd", at, rc)  # full list: every unordered pair twice
    Z = at.numbers
    e = sum(e0[z] for z in Z)
    for c in coords:
        m = np.array([tuple(sorted((Z[a], Z[b]))) == c["z"] for a, b in zip(i, j)], dtype=bool)
        r = d[m]
        K = c["sv"] * np.exp(-((r[:, None] - c["x"][None, :]) ** 2) / (2 * c["theta"] ** 2)) * fc(r)[:, None]
        if sparse_cutoff:
            K = K * c["sc"][None, :]
        e += (1.0 if twice else 0.5) * (K @ c["alpha"]).sum()
    return e


pot = Potential(param_filename=xml)
for twice in (True, False):
    for sparse_cutoff in (True, False):
        worst = 0.0
        for at in test:
            a = at.copy()
            a.calc = pot
            ref = a.get_potential_energy()
            worst = max(worst, abs(energy(at, twice, sparse_cutoff) - ref) / abs(ref))
        print(f"pairs {'twice' if twice else 'once'}, {'with' if sparse_cutoff else 'without'} f_c(r_m): largest relative error {worst:.2e}")
