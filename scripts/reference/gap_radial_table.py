"""acdc hypers that reproduce GAP's SOAP descriptor (QUIP/GAP `soap` with its
default radial basis, EQUISPACED_GAUSS) exactly, as a tabulated radial basis
with a Dirac-delta density (the atom Gaussian is inside the table).

GAP's radial functions (GAP descriptors.F90, soap_initialise / soap_calc):
n_max Gaussians of width atom_sigma centred at r_a = a·h, a = 0…n_max−1,
h = r_b / n_max, r_b = cutoff + atom_sigma·√(2·10·ln 10) (basis_error_exponent
10), α = 1/(2·atom_sigma²). A neighbour Gaussian at distance r contributes,
in channel l, f_la(r) = exp(−α(r² + r_a²))·i_l(2α r r_a) (i_l the modified
spherical Bessel function of the first kind), then the coefficients are
f_l(r)·T with T = C⁻¹ L, C_ab = exp(−α(r_a − r_b)²) and L the lower Cholesky
factor of the overlap of the basis Gaussians (S = L Lᵀ), and the cosine cutoff
function of the pair. Only T Tᵀ enters a kernel, and the power spectrum's
l-normalisation 1/√(2l+1), the √2 of the off-diagonal (species, n) pairs and
the centre atom in its own species channel match acdc's already; so a
`SoapPowerSpectrum` with these hypers has, after normalisation, the same
dot products as GAP's descriptor (checked by gap_kernels.py).

Used as evidence for docs/MODELS.md ("Multi-species accuracy against GAP"),
not at run time. Versions: numpy==2.4.6, scipy==1.16 (any recent scipy).

    python scripts/reference/gap_radial_table.py --cutoff 5 --width 1 --n-max 6 --l-max 4 \
        --atom-sigma 0.5 > gap_hypers.json
"""
import argparse
import json
import sys

import numpy as np
from scipy.special import erf, spherical_in


def transform(n_max, alpha, r):
    c = np.exp(-alpha * (r[:, None] - r[None, :]) ** 2)
    ri, rj = r[None, :], r[:, None]
    s = (
        np.exp(-alpha * (ri**2 + rj**2)) * np.sqrt(2.0) * alpha**1.5 * (ri + rj)
        + alpha * np.exp(-0.5 * alpha * (ri - rj) ** 2) * np.sqrt(np.pi) * (1.0 + alpha * (ri + rj) ** 2)
        * (1.0 + erf(np.sqrt(alpha / 2.0) * (ri + rj)))
    ) / np.sqrt(128.0 * alpha**5)
    lower = np.linalg.cholesky(s)
    return np.linalg.solve(c, lower)


def table(args):
    alpha = 0.5 / args.atom_sigma**2
    r_b = args.cutoff + args.atom_sigma * np.sqrt(2.0 * 10.0 * np.log(10.0))
    centres = np.arange(args.n_max) * (r_b / args.n_max)
    t = transform(args.n_max, alpha, centres)
    grid = np.linspace(0.0, args.cutoff, args.points)
    by_angular = {}
    for l in range(args.l_max + 1):
        points = []
        for r in grid:
            x = 2.0 * alpha * r * centres
            g = np.exp(-alpha * (r**2 + centres**2))
            f = g * spherical_in(l, x)
            df = -2.0 * alpha * r * f + g * 2.0 * alpha * centres * spherical_in(l, x, derivative=True)
            points.append({"position": float(r), "values": list(map(float, f @ t)), "derivatives": list(map(float, df @ t))})
        by_angular[str(l)] = {"type": "Tabulated", "points": points}
    return {
        "cutoff": {"radius": args.cutoff, "smoothing": {"type": "ShiftedCosine", "width": args.width}},
        "density": {"type": "DiracDelta"},
        "basis": {"type": "Explicit", "by_angular": by_angular},
    }


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cutoff", type=float, default=5.0)
    p.add_argument("--width", type=float, default=1.0, help="cutoff_transition_width (Å)")
    p.add_argument("--n-max", type=int, default=6)
    p.add_argument("--l-max", type=int, default=4)
    p.add_argument("--atom-sigma", type=float, default=0.5)
    p.add_argument("--points", type=int, default=1001, help="spline nodes on [0, cutoff]")
    json.dump(table(p.parse_args(argv)), sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
