"""Candidate calibrations of the predictive energy variance, fitted on the
training frames' closed-form leave-out errors (bench/calibration_candidates.cjs
dumps them) and measured on held-out test frames: the fraction of test
energy errors within 1σ and 2σ (target 0.68 ± 0.1 and 0.95 ± 0.05), with
95 % Wilson intervals, on all test frames and on those at compositions no
training frame has. docs/MODELS.md, "Calibrating the sparse GPR across
compositions", gives the table this prints.

Left out (what the errors r and variances v come from):
  frame            each training frame alone (leave-one-out)
  composition      all frames of one composition at once
  interior+frames  compositions inside the range of the others left out
                   whole, the other frames one by one
  interior         only the frames of compositions inside the range of the
                   others, left out whole (interpolation, as a user's new
                   composition between the training ones)
Variance (fitted by maximum likelihood unless said):
  s·v              s = mean(r²/v)                 (acdc's `noise: 'none'`)
  s·(v + c·N)      s and c ≥ 0 jointly            (acdc's default, `noise: 'fit'`)
  robust s·v       s = median(r²/v) / 0.45494 (the median of χ²₁)
  s·v^q            s and the power q jointly (q = 1: s·v)
A binary alloy is assumed for "interior" (the fraction of the first species
orders the compositions).

Versions: numpy==2.4.6, scipy==1.17.1.

    python bench/calibration_candidates.py /tmp/gpr-dump.json
"""
import json
import sys

import numpy as np
from scipy.optimize import minimize_scalar

CHI2_1_MEDIAN = 0.4549364231195724


def wilson(p, n, z=1.96):
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return c - h, c + h


def scale_and_noise(r, v, n):
    """s and c of s·(v + c·N) by maximum likelihood: the profile over c as
    in acdc (grid of c₀·e^x, x ∈ [−14, 14], then a bounded refinement)."""
    def profile(c):
        u = v + c * n
        if np.any(u <= 0):
            return np.inf
        return np.log(np.mean(r * r / u)) + np.mean(np.log(u))
    c0 = np.mean(np.maximum(v, 0)) / np.mean(n)
    xs = np.linspace(-14, 14, 561)
    values = [profile(c0 * np.exp(x)) for x in xs]
    k = int(np.argmin(values))
    c = 0.0
    if values[k] < profile(0.0):
        x = minimize_scalar(lambda x: profile(c0 * np.exp(x)), bounds=(xs[max(k - 1, 0)], xs[min(k + 1, 560)]), method="bounded", options={"xatol": 1e-7}).x
        c = c0 * np.exp(x)
    return np.mean(r * r / (v + c * n)), c


def power(r, v):
    """s and q of s·(v/v₀)^q by maximum likelihood (v₀ the geometric mean of v)."""
    v0 = np.exp(np.mean(np.log(v)))
    best = None
    for q in np.linspace(0.2, 5, 4801):
        u = (v / v0) ** q
        s = np.mean(r * r / u)
        nll = np.log(s) + np.mean(np.log(u))
        if best is None or nll < best[0]:
            best = (nll, q, s)
    return best[1], best[2], v0


def composition_gp(tr, n_train, s_f, c_f):
    """A Gaussian process on composition for the bias per atom that the
    per-frame variance misses: b(x) ~ GP(0, τ²·exp(−|x − x′|²/(2ℓ²))), x the
    fraction of the first species. Fitted on the training side only: each
    composition left out whole gives its frames' errors per atom e_A =
    r_(−G),A/N_A ~ N(0, σ²_(−g) 11ᵀ + diag(s_f(v_A + c_f N_A)/N_A²)), with
    σ²_(−g) the GP's posterior variance at x_g given the other training
    compositions (their biases observed with the variance of a mean of
    their frames' per-atom noise); τ and ℓ by maximum likelihood on a grid.
    Returns a function giving the GP's posterior variance (eV²/atom²) at
    test fractions given every training composition, and the fitted τ, ℓ."""
    x = np.array(tr["fraction"])
    comp = tr["composition"]
    r, v = np.array(comp["errors"]), np.array(comp["variances"])
    frame_v = np.array(tr["frame"]["variances"])
    groups = np.array(comp["groups"])
    xs = np.array([x[groups == g][0] for g in range(groups.max() + 1)])
    # noise of each composition's mean bias: the per-frame calibrated variance per atom², over the count
    nug = np.array([np.mean(s_f * (np.maximum(frame_v[groups == g], 0) + c_f * n_train[groups == g]) / n_train[groups == g] ** 2) / np.sum(groups == g) for g in range(len(xs))])

    def post(tau, ell, train_idx, at):
        k = lambda a, b: tau * tau * np.exp(-((a[:, None] - b[None, :]) ** 2) / (2 * ell * ell))
        K = k(xs[train_idx], xs[train_idx]) + np.diag(nug[train_idx])
        ks = k(at, xs[train_idx])
        return tau * tau - np.einsum("ij,ij->i", ks @ np.linalg.inv(K), ks)

    def nll(tau, ell):
        total = 0.0
        for g in range(len(xs)):
            m = groups == g
            others = np.array([h for h in range(len(xs)) if h != g])
            sb = post(tau, ell, others, np.array([xs[g]]))[0]
            e = r[m] / n_train[m]
            cov = sb * np.ones((m.sum(), m.sum())) + np.diag(s_f * (np.maximum(v[m], 0) + c_f * n_train[m]) / n_train[m] ** 2)
            sign, logdet = np.linalg.slogdet(cov)
            total += 0.5 * (logdet + e @ np.linalg.solve(cov, e))
        return total

    best = None
    for tau in np.exp(np.linspace(np.log(1e-4), np.log(10.0), 121)):
        for ell in np.exp(np.linspace(np.log(0.02), np.log(5.0), 81)):
            f = nll(tau, ell)
            if best is None or f < best[0]:
                best = (f, tau, ell)
    _, tau, ell = best
    every = np.arange(len(xs))
    return (lambda at: post(tau, ell, every, np.asarray(at, float))), tau, ell


def main(path):
    d = json.load(open(path))
    tr, te = d["train"], d["test"]
    x = np.array(tr["fraction"])
    inner = (x > x.min()) & (x < x.max())
    frame, comp = tr["frame"], tr["composition"]
    n_train = np.array(frame["atoms"], float)
    left_out = {
        "frame": (np.array(frame["errors"]), np.array(frame["variances"]), n_train),
        "composition": (np.array(comp["errors"]), np.array(comp["variances"]), n_train),
        "interior+frames": (np.where(inner, comp["errors"], frame["errors"]), np.where(inner, comp["variances"], frame["variances"]), n_train),
        "interior": (np.array(comp["errors"])[inner], np.array(comp["variances"])[inner], n_train[inner]),
    }
    r_t, v_t, n_t = np.array(te["errors"]), np.array(te["variances"]), np.array(te["atoms"], float)
    seen = set(tr["label"])
    new = np.array([c not in seen for c in te["label"]])
    print(f"model {d['model']}: {len(r_t)} test frames, {new.sum()} at new compositions; test energy RMSE {1e3 * np.sqrt(np.mean((r_t / n_t) ** 2)):.3g} meV/atom")
    print(f"the scale the test errors ask for (s·v): all {np.mean(r_t ** 2 / v_t):.3g}, new compositions {np.mean(r_t[new] ** 2 / v_t[new]):.3g}")
    print("| left out | variance | fitted | test within 1σ [95 %] | within 2σ [95 %] | new compositions within 1σ [95 %] | within 2σ [95 %] |")
    print("|---|---|---|---|---|---|---|")
    for name, (r, v, n) in left_out.items():
        if len(r) == 0:
            continue
        for how in ["s·v", "s·(v + c·N)", "robust s·v", "s·v^q"] + (["s·(v + c·N) + N²·σ_b²(x), GP on composition"] if name == "frame" else []):
            if how == "s·v":
                s = np.mean(r * r / v)
                var, fitted = s * v_t, f"s = {s:.3g}"
            elif how == "s·(v + c·N)":
                s, c = scale_and_noise(r, v, n)
                var, fitted = s * (v_t + c * n_t), f"s = {s:.3g}, c = {1e6 * c:.3g} meV²/atom"
            elif how == "robust s·v":
                s = np.median(r * r / v) / CHI2_1_MEDIAN
                var, fitted = s * v_t, f"s = {s:.3g}"
            elif how.endswith("GP on composition"):
                s, c = scale_and_noise(r, v, n)
                sigma_b2, tau, ell = composition_gp(tr, n_train, s, c)
                var = s * (v_t + c * n_t) + n_t ** 2 * sigma_b2(te["fraction"])
                fitted = f"s = {s:.3g}, c = {1e6 * c:.3g} meV²/atom, τ = {1e3 * tau:.3g} meV/atom, ℓ = {ell:.3g}"
            else:
                q, s, v0 = power(r, v)
                var, fitted = s * (v_t / v0) ** q, f"q = {q:.3g}"
            z = np.abs(r_t) / np.sqrt(var)
            cells = []
            for mask in (np.ones(len(z), bool), new):
                for k in (1, 2):
                    p = np.mean(z[mask] <= k)
                    lo, hi = wilson(p, mask.sum())
                    cells.append(f"{p:.2f} [{lo:.2f}, {hi:.2f}]")
            print(f"| {name} | {how} | {fitted} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
