"""High-precision reference values for acdc's special functions and GTO radial integral.

Dev-only: acdc never runs Python. Run with a venv where
`pip install mpmath==1.4.1` (the version is recorded in the output):

    python scripts/reference/mpmath_special.py      (from the repository root)

writes crates/acdc-core/tests/data/special_functions.json, read by the unit
tests in crates/acdc-core/src/math/special.rs and src/basis/gto.rs.

Everything is computed with mpmath at 50 significant digits and rounded to the
nearest double only when written (json writes repr(float), which round-trips).

Layout:
  versions: {mpmath, python}
  gamma: [[x, Γ(x)], ...]
  hyp1f1: [[a, b, z, e^-z 1F1(a; b; z), 1F1(a; b; z) or null when it overflows], ...]
  radial: [{max_radial, max_angular, cutoff, density_width,
            points: [{r, values: [l][n], derivatives: [l][n]}]}]
     values are the orthonormalised GTO radial integrals I_nl(r) of docs/CONVENTIONS.md §2.6,
     derivatives dI_nl/dr; S^(-1/2) is computed in high precision too.
  radial_quadrature_check: the closed form agreed with direct quadrature of
     4π(πσ²)^(-3/4) e^(-r²/2σ²) ∫ ρ² R_n(ρ) e^(-ρ²/2σ²) i_l(ρr/σ²) dρ for
     these (n, l, r) (the script asserts it before writing anything).
"""

import json
import os
import platform

import mpmath as mp

mp.mp.dps = 50

OUTPUT = os.path.join("crates", "acdc-core", "tests", "data", "special_functions.json")

DOUBLE_MAX = mp.mpf("1.7976931348623157e308")


def to_float(x):
    return float(mp.mpf(x))


def gamma_values():
    xs = [k / 2 for k in range(1, 80)]  # integers and half-integers up to 39.5
    xs += [50.5, 100.0, 120.5, 150.0, 170.5, 171.5]
    xs += [0.1, 0.3, 0.7, 1.25, 1.9, 2.2, 3.7, 7.3, 12.9, 17.25, 33.3, 66.6]
    return [[x, to_float(mp.gamma(mp.mpf(x)))] for x in xs]


def hyp1f1_values():
    zs = [0.0, 1e-6, 1e-3, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 29.5, 30.5, 45.0,
          70.0, 100.0, 150.0, 300.0, 700.0, 1500.0, 5000.0, 2e4, 1e5]
    rows = []
    # the GTO arguments a = (n + l + 3)/2, b = l + 3/2 (b + 1 for derivatives)
    for l in range(0, 22):
        b = mp.mpf(l) + mp.mpf(3) / 2
        for n in range(0, 21):
            a = mp.mpf(n + l + 3) / 2
            for z in zs:
                rows.append(entry(a, b, z))
    # a few generic arguments
    for a in ["0.3", "1.25", "7.7", "15.1"]:
        for b in ["0.5", "1.75", "13.2"]:
            for z in [0.2, 3.0, 25.0, 31.0, 80.0, 400.0, 3000.0]:
                rows.append(entry(mp.mpf(a), mp.mpf(b), z))
    return rows


def entry(a, b, z):
    z = mp.mpf(z)
    value = mp.hyp1f1(a, b, z)
    scaled = value * mp.exp(-z)
    unscaled = to_float(value) if value < DOUBLE_MAX else None
    return [to_float(a), to_float(b), to_float(z), to_float(scaled), unscaled]


class Gto:
    """The GTO basis of docs/CONVENTIONS.md §2.5 in high precision."""

    def __init__(self, max_radial, max_angular, cutoff, density_width):
        self.size = max_radial + 1
        self.max_angular = max_angular
        cutoff = mp.mpf(cutoff)
        self.sigma = mp.mpf(density_width)
        self.widths = [cutoff * max(mp.sqrt(n), 1) / self.size for n in range(self.size)]
        self.norms = [mp.sqrt(2 / (s ** (2 * n + 3) * mp.gamma(n + mp.mpf(3) / 2)))
                      for n, s in enumerate(self.widths)]
        overlap = mp.matrix(self.size, self.size)
        for i, si in enumerate(self.widths):
            for j, sj in enumerate(self.widths):
                overlap[i, j] = ((mp.mpf(1) / 2 / si ** 2 + mp.mpf(1) / 2 / sj ** 2) ** (-mp.mpf(i + j + 3) / 2)
                                 * mp.gamma(mp.mpf(i + j + 3) / 2)
                                 / (si ** i * sj ** j * (si * sj) ** mp.mpf(1.5)
                                    * mp.sqrt(mp.gamma(i + mp.mpf(1.5)) * mp.gamma(j + mp.mpf(1.5)))))
        eigenvalues, vectors = mp.eigsy(overlap)
        inv_sqrt = mp.matrix(self.size, self.size)
        for i in range(self.size):
            for j in range(self.size):
                inv_sqrt[i, j] = mp.fsum(vectors[i, k] * vectors[j, k] / mp.sqrt(eigenvalues[k])
                                         for k in range(self.size))
        self.ortho = [[inv_sqrt[i, j] * self.norms[j] for j in range(self.size)] for i in range(self.size)]

    def primitive(self, n, l, r):
        """(value, d/dr) of the primitive integral for r^n exp(-r²/2σ_n²)."""
        r = mp.mpf(r)
        c = 1 / (2 * self.sigma ** 2)
        d = 1 / (2 * self.widths[n] ** 2)
        a = mp.mpf(n + l + 3) / 2
        b = l + mp.mpf(3) / 2
        z = c ** 2 * r ** 2 / (c + d)
        pref = (mp.pi / self.sigma ** 2) ** mp.mpf(0.75) * mp.gamma(a) / mp.gamma(b) * (c + d) ** (-a)
        value = pref * mp.exp(-c * r ** 2) * (c * r) ** l * mp.hyp1f1(a, b, z)
        # d/dr, differentiated symbolically in high precision (no cancellation
        # concern at 50 digits); at r = 0 only l = 1 survives
        if r == 0:
            derivative = pref * c if l == 1 else mp.mpf(0)
        else:
            dz = 2 * c ** 2 * r / (c + d)
            derivative = pref * mp.exp(-c * r ** 2) * (
                (l * c * (c * r) ** (l - 1) - 2 * c * r * (c * r) ** l) * mp.hyp1f1(a, b, z)
                + (c * r) ** l * a / b * mp.hyp1f1(a + 1, b + 1, z) * dz)
        return value, derivative

    def point(self, r):
        values, derivatives = [], []
        for l in range(self.max_angular + 1):
            prim = [self.primitive(n, l, r) for n in range(self.size)]
            values.append([to_float(mp.fsum(self.ortho[i][j] * prim[j][0] for j in range(self.size)))
                           for i in range(self.size)])
            derivatives.append([to_float(mp.fsum(self.ortho[i][j] * prim[j][1] for j in range(self.size)))
                                for i in range(self.size)])
        return {"r": float(r), "values": values, "derivatives": derivatives}

    def quadrature(self, n, l, r):
        """Primitive integral by direct quadrature (independent of the closed form)."""
        r = mp.mpf(r)
        s2 = self.sigma ** 2
        sn = self.widths[n]

        def integrand(rho):
            x = rho * r / s2
            # modified spherical Bessel i_l(x) = sqrt(pi/2x) I_{l+1/2}(x)
            il = mp.sqrt(mp.pi / (2 * x)) * mp.besseli(l + mp.mpf(1) / 2, x) if x != 0 else (1 if l == 0 else 0)
            return rho ** 2 * rho ** n * mp.exp(-rho ** 2 / (2 * sn ** 2)) * mp.exp(-rho ** 2 / (2 * s2)) * il

        upper = r + 12 * max(self.sigma, sn) + 10 * sn
        integral = mp.quad(integrand, mp.linspace(0, upper, 12))
        return 4 * mp.pi * (mp.pi * s2) ** mp.mpf(-0.75) * mp.exp(-r ** 2 / (2 * s2)) * integral


RADIAL_CASES = [
    # (max_radial, max_angular, cutoff, density_width, distances)
    (6, 6, 5.0, 0.3, [0.0, 1e-3, 0.5, 1.7, 3.2, 4.9]),
    (8, 10, 4.5, 0.5, [0.0, 0.9, 2.2, 4.4]),
    (4, 4, 10.0, 0.1, [0.05, 1.0, 5.0, 9.9]),  # narrow density: z up to ~5e3
    (3, 20, 6.0, 0.25, [0.3, 2.0, 5.9]),       # high l
    (12, 8, 6.0, 0.4, [0.0, 1.0, 3.0, 5.5]),   # larger, worse-conditioned overlap
]


def radial_values():
    cases = []
    for max_radial, max_angular, cutoff, width, distances in RADIAL_CASES:
        gto = Gto(max_radial, max_angular, cutoff, width)
        cases.append({
            "max_radial": max_radial,
            "max_angular": max_angular,
            "cutoff": cutoff,
            "density_width": width,
            "points": [gto.point(r) for r in distances],
        })
    return cases


def quadrature_check():
    gto = Gto(5, 6, 4.0, 0.4)
    checked = []
    for n, l, r in [(0, 0, 0.7), (3, 2, 1.9), (5, 6, 3.1), (2, 1, 0.0), (4, 3, 3.9)]:
        closed, _ = gto.primitive(n, l, r)
        quad = gto.quadrature(n, l, r)
        assert abs(closed - quad) <= mp.mpf("1e-25") * abs(quad) + mp.mpf("1e-40"), (n, l, r, closed, quad)
        checked.append([n, l, r])
    return checked


def main():
    checked = quadrature_check()
    data = {
        "versions": {"mpmath": mp.__version__, "python": platform.python_version()},
        "gamma": gamma_values(),
        "hyp1f1": hyp1f1_values(),
        "radial": radial_values(),
        "radial_quadrature_check": {"max_radial": 5, "cutoff": 4.0, "density_width": 0.4, "n_l_r": checked},
    }
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    with open(OUTPUT, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
