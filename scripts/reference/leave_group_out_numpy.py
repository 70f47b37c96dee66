"""Reference for `models::calibration::leave_group_out` (docs/MODELS.md,
"Variance calibration"): leave-one-group-out errors and variances of a
regularised least-squares fit by explicit refits, with no Woodbury algebra.

The fit: M = P + Σ_rows a aᵀ over energy rows a_A = φ_A/σ_A (one per
structure) and extra rows that always stay (standing in for force and
stress rows), θ = M⁻¹ g. For every group G the refit drops G's energy rows
(M_G = M − Σ_{A∈G} a_A a_Aᵀ, g_G likewise) and gives, for each A in G,
r_(−G),A = φ_A·θ_G − y_A and the variance φ_Aᵀ M_G⁻¹ φ_A (+ a prior part
that the data do not touch). The fixture holds what the Rust function
takes — the full fit's errors r_A = φ_A·θ − y_A, the rows u_A = R⁻ᵀφ_A
(M = RᵀR, R = the transposed Cholesky factor), σ_A², the prior parts and the
groups — and the refit answers.

Versions: numpy==2.4.6 (any numpy with linalg.cholesky and solve gives the
same numbers to rounding).

    python scripts/reference/leave_group_out_numpy.py test/fixtures/models/leave_group_out.json
"""
import json
import sys

import numpy as np


def main(out):
    rng = np.random.default_rng(2026)
    n, p, extra = 14, 6, 9
    phi = rng.standard_normal((n, p)) * rng.uniform(0.3, 3.0, size=(n, 1))
    sigma = rng.uniform(0.05, 0.4, size=n)
    y = phi @ rng.standard_normal(p) + sigma * rng.standard_normal(n)
    xf = rng.standard_normal((extra, p))
    yf = rng.standard_normal(extra)
    prior_matrix = 0.5 * np.eye(p)
    prior = rng.uniform(0.0, 0.2, size=n)
    # groups of 1 to 5 structures, interleaved
    groups = np.array([0, 1, 2, 0, 1, 2, 3, 0, 1, 4, 4, 0, 1, 0])
    a = phi / sigma[:, None]
    m = prior_matrix + a.T @ a + xf.T @ xf
    g = a.T @ (y / sigma) + xf.T @ yf
    theta = np.linalg.solve(m, g)
    errors = phi @ theta - y
    r = np.linalg.cholesky(m).T  # M = RᵀR, R upper triangular
    u = np.linalg.solve(r.T, phi.T).T
    want_errors = np.zeros(n)
    want_variances = np.zeros(n)
    for grp in np.unique(groups):
        keep = groups != grp
        mg = prior_matrix + a[keep].T @ a[keep] + xf.T @ xf
        gg = a[keep].T @ (y[keep] / sigma[keep]) + xf.T @ yf
        tg = np.linalg.solve(mg, gg)
        for k in np.flatnonzero(~keep):
            want_errors[k] = phi[k] @ tg - y[k]
            want_variances[k] = prior[k] + phi[k] @ np.linalg.solve(mg, phi[k])
    fixture = {
        "comment": "scripts/reference/leave_group_out_numpy.py (numpy " + np.__version__ + "): explicit refits without each group's energy rows",
        "errors": errors.tolist(),
        "u": u.tolist(),
        "prior": prior.tolist(),
        "sigma2": (sigma**2).tolist(),
        "groups": groups.tolist(),
        "want_errors": want_errors.tolist(),
        "want_variances": want_variances.tolist(),
    }
    with open(out, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
