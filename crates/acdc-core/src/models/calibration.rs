//! What `acdc fit` checks a fitted potential against on held-out
//! structures: the per-species-count baseline (energy regressed on the
//! number of atoms of each species, the least a potential must beat) and
//! the calibration of the predictive variance (a scale fitted by maximum
//! likelihood, with a noise term; for forces by default the scale whose
//! 1σ/2σ coverage is nearest the Gaussian's). See docs/MODELS.md.
use nalgebra::{DMatrix, DVector};

use crate::error::{Error, Result};
use crate::system::System;

/// The per-species-count baseline: E(A) = Σ_Z n_Z(A) e_Z.
#[derive(Debug, Clone, PartialEq)]
pub struct CountBaseline {
    /// Species of the training structures, sorted.
    pub species: Vec<i32>,
    /// e_Z per species, eV per atom (the minimum-norm least-squares
    /// solution: with one composition only, every species gets the mean
    /// energy per atom).
    pub per_atom: Vec<f64>,
    /// Its energies of the evaluated structures, eV.
    pub predictions: Vec<f64>,
}

/// Least squares of the total `energy` (eV) of `train` on the species
/// counts, solved through the SVD with singular values below
/// 1e-12·σ_max dropped (minimum norm when the compositions are linearly
/// dependent), and its energies for `evaluate` (a species absent from
/// `train` is an error).
pub fn species_count_baseline(train: &[System], energy: &[f64], evaluate: &[System]) -> Result<CountBaseline> {
    if train.is_empty() {
        return Err(Error::InvalidParameter("the count baseline needs at least one training structure".into()));
    }
    if energy.len() != train.len() {
        return Err(Error::InvalidParameter(format!("{} energies for {} structures", energy.len(), train.len())));
    }
    if let Some(k) = energy.iter().position(|e| !e.is_finite()) {
        return Err(Error::InvalidParameter(format!("energy[{k}] = {} (expected a finite number, eV)", energy[k])));
    }
    let mut species: Vec<i32> = train.iter().flat_map(|s| s.types.iter().copied()).collect();
    species.sort_unstable();
    species.dedup();
    let counts = |systems: &[System], what: &str| -> Result<DMatrix<f64>> {
        let mut m = DMatrix::<f64>::zeros(systems.len(), species.len());
        for (k, s) in systems.iter().enumerate() {
            for &t in &s.types {
                let c = species
                    .binary_search(&t)
                    .map_err(|_| Error::InvalidParameter(format!("{what}[{k}] holds species {t}, which no training structure has (species {species:?})")))?;
                m[(k, c)] += 1.0;
            }
        }
        Ok(m)
    };
    let a = counts(train, "train")?;
    let svd = a.svd(true, true);
    let max = svd.singular_values.iter().copied().fold(0.0, f64::max);
    if !(max > 0.0) {
        return Err(Error::Numerical("the count baseline: the training structures have no atoms".into()));
    }
    let solution = svd
        .solve(&DVector::from_column_slice(energy), 1e-12 * max)
        .map_err(|e| Error::Numerical(format!("the count baseline: {e}")))?;
    let predictions = counts(evaluate, "evaluate")? * &solution;
    Ok(CountBaseline { species, per_atom: solution.as_slice().to_vec(), predictions: predictions.as_slice().to_vec() })
}

/// Mean absolute and root-mean-square error of one quantity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorStatistics {
    /// mean |d|, in the unit of the values over the divisor's.
    pub mae: f64,
    /// √(mean d²).
    pub rmse: f64,
    /// How many values entered.
    pub count: usize,
}

/// MAE and RMSE of d_k = (predicted_k − reference_k)/divisor_k (`divisor`
/// empty: 1 each; the atom counts give an energy per atom), what `acdc fit`
/// and `acdc predict` report and `--model auto` chooses by. None for no
/// values. The references and divisors must be finite (divisors positive);
/// a non-finite prediction is let through and makes the statistics
/// non-finite, which `acdc fit` turns into an error naming the target.
pub fn error_statistics(predicted: &[f64], reference: &[f64], divisor: &[f64]) -> Result<Option<ErrorStatistics>> {
    let n = predicted.len();
    if reference.len() != n || !(divisor.is_empty() || divisor.len() == n) {
        return Err(Error::InvalidParameter(format!("{n} predicted values, {} references, {} divisors (expected as many references, and no divisor or one each)", reference.len(), divisor.len())));
    }
    if let Some(k) = reference.iter().position(|r| !r.is_finite()) {
        return Err(Error::InvalidParameter(format!("reference[{k}] = {} (expected a finite number)", reference[k])));
    }
    if let Some(k) = divisor.iter().position(|d| !(d.is_finite() && *d > 0.0)) {
        return Err(Error::InvalidParameter(format!("divisor[{k}] = {} (expected a positive finite number)", divisor[k])));
    }
    if n == 0 {
        return Ok(None);
    }
    let (mut abs, mut sq) = (0.0, 0.0);
    for k in 0..n {
        let d = if divisor.is_empty() { predicted[k] - reference[k] } else { predicted[k] / divisor[k] - reference[k] / divisor[k] };
        abs += d.abs();
        sq += d * d;
    }
    Ok(Some(ErrorStatistics { mae: abs / n as f64, rmse: (sq / n as f64).sqrt(), count: n }))
}

/// The validation loss `acdc fit --model auto` minimises and its warnings
/// compare: Σ over the fitted targets of (RMSE / σ)², each target's RMSE
/// (energy per atom in eV/atom, force components in eV/Å, stress components
/// in eV/Å³) in units of its default sigma, the weighting of the fit itself,
/// so that no target dominates by its unit. `rmse` holds energy, forces,
/// stress, None for a target not fitted; its sigma is then not read. A
/// non-finite RMSE (a model that predicted NaN) gives a non-finite loss
/// (`acdc fit` refuses non-finite statistics before it gets here).
pub fn validation_loss(rmse: [Option<f64>; 3], sigmas: [f64; 3]) -> Result<f64> {
    const NAMES: [&str; 3] = ["energy", "forces", "stress"];
    let mut loss = 0.0;
    for ((r, s), name) in rmse.iter().zip(sigmas).zip(NAMES) {
        let Some(r) = r else { continue };
        if !(s.is_finite() && s > 0.0) {
            return Err(Error::InvalidParameter(format!("sigmas.{name} = {s} (expected a positive number)")));
        }
        if r.is_finite() && *r < 0.0 {
            return Err(Error::InvalidParameter(format!("rmse.{name} = {r} (expected a root-mean-square error, ≥ 0)")));
        }
        loss += (r / s) * (r / s);
    }
    Ok(loss)
}

/// A fitted scale of the predictive variance and how well it covers the errors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// s in v_calibrated = s·v: the maximum-likelihood value mean(r²/v).
    pub scale: f64,
    /// Structures that entered (a positive variance).
    pub count: usize,
    /// Fraction of them with |r| ≤ √(s·v).
    pub within_1: f64,
    /// Fraction with |r| ≤ 2√(s·v).
    pub within_2: f64,
    /// The same fractions before scaling (s = 1).
    pub within_1_uncalibrated: f64,
    /// With s = 1, |r| ≤ 2√v.
    pub within_2_uncalibrated: f64,
}

/// [`calibrate_variance`] on held-out predictions: the errors r = predicted −
/// reference are formed here, piece by piece (one piece per structure for
/// forces, eV/Å and eV²/Å², or one piece of all energies, eV and eV²), so
/// callers hand over what the model predicted as it came.
pub fn calibrate_variance_held_out(predicted: &[&[f64]], reference: &[&[f64]], variances: &[&[f64]]) -> Result<Calibration> {
    if predicted.len() != reference.len() || predicted.len() != variances.len() {
        return Err(Error::InvalidParameter(format!("{} predicted pieces, {} reference pieces, {} variance pieces (expected as many of each)", predicted.len(), reference.len(), variances.len())));
    }
    let mut errors = Vec::new();
    let mut flat = Vec::new();
    for (i, ((p, r), v)) in predicted.iter().zip(reference).zip(variances).enumerate() {
        if p.len() != r.len() || p.len() != v.len() {
            return Err(Error::InvalidParameter(format!("piece {i}: {} predicted values, {} references, {} variances (expected as many of each)", p.len(), r.len(), v.len())));
        }
        if let Some(k) = r.iter().position(|x| !x.is_finite()) {
            return Err(Error::InvalidParameter(format!("reference[{i}][{k}] = {} (expected a finite number)", r[k])));
        }
        errors.extend(p.iter().zip(r.iter()).map(|(p, r)| p - r));
        flat.extend_from_slice(v);
    }
    calibrate_variance(&errors, &flat)
}

/// Fits the scale s of the energy variance v (eV²) so that the errors r
/// (eV, prediction − reference) are most likely under r ~ N(0, s·v):
/// s = mean(r²/v) over the structures with v > 0 (a variance at rounding
/// level, ≤ 0, carries no information and is left out). Also the fraction
/// of errors within 1 and 2 standard deviations, before and after.
pub fn calibrate_variance(errors: &[f64], variances: &[f64]) -> Result<Calibration> {
    if errors.len() != variances.len() {
        return Err(Error::InvalidParameter(format!("{} errors for {} variances", errors.len(), variances.len())));
    }
    if let Some(k) = errors.iter().zip(variances).position(|(r, v)| !r.is_finite() || !v.is_finite()) {
        return Err(Error::InvalidParameter(format!("error[{k}] = {}, variance[{k}] = {} (expected finite numbers)", errors[k], variances[k])));
    }
    let used: Vec<(f64, f64)> = errors.iter().zip(variances).filter(|(_, v)| **v > 0.0).map(|(r, v)| (*r, *v)).collect();
    if used.is_empty() {
        return Err(Error::InvalidParameter("no structure has a positive predictive variance: the variance cannot be calibrated".into()));
    }
    let n = used.len() as f64;
    let mut scale = used.iter().map(|(r, v)| r * r / v).sum::<f64>() / n;
    if scale == 0.0 {
        // every error exactly zero: keep the variance as it is
        scale = 1.0;
    }
    if !scale.is_finite() {
        return Err(Error::Numerical(format!("the variance scale is {scale} (errors far beyond the variances)")));
    }
    let within = |s: f64, k: f64| used.iter().filter(|(r, v)| r.abs() <= k * (s * v).sqrt()).count() as f64 / n;
    Ok(Calibration {
        scale,
        count: used.len(),
        within_1: within(scale, 1.0),
        within_2: within(scale, 2.0),
        within_1_uncalibrated: within(1.0, 1.0),
        within_2_uncalibrated: within(1.0, 2.0),
    })
}

/// Fraction of a Gaussian within one standard deviation, erf(1/√2).
pub const GAUSSIAN_WITHIN_1: f64 = 0.682_689_492_137_085_9;
/// Fraction of a Gaussian within two standard deviations, erf(√2).
pub const GAUSSIAN_WITHIN_2: f64 = 0.954_499_736_103_641_6;
/// Half-widths of the coverage targets at 1σ and 2σ (0.68 ± 0.1 and
/// 0.95 ± 0.05): the units in which [`coverage_scale`] weighs a deviation.
pub const COVERAGE_BANDS: [f64; 2] = [0.1, 0.05];

/// Fits the scale s of the variance v so that the errors r are covered as a
/// Gaussian's would be: the s minimising the larger of
/// |f₁(s) − 0.683| / 0.1 and |f₂(s) − 0.954| / 0.05, f_k(s) the fraction
/// of the errors with |r| ≤ k√(s·v) (over those with v > 0), i.e. the
/// coverage at 1σ and 2σ in units of its target band ([`COVERAGE_BANDS`]).
///
/// Why not the maximum-likelihood s = mean(r²/v) ([`calibrate_variance`]):
/// force errors are heavier-tailed than a Gaussian of their variance (more
/// small and more large errors), and s = mean(r²/v) is pulled up by the
/// large ones, so that the fraction within 1σ comes out at 0.72–0.79 on
/// the very errors it was fitted on (docs/MODELS.md, "Force variance");
/// no single s can match both fractions then, and this one splits the
/// difference in band units. f₁ and f₂ are step functions of s, so the
/// minimum is exact: the objective is evaluated once per interval between
/// consecutive breakpoints (every r²/v and r²/(4v)), and s is the geometric
/// middle of the best interval (of the best ones, the one nearest to
/// `prefer` in ln s: the maximum-likelihood scale, for a deterministic and
/// stable choice). All errors zero: s = 1.
pub fn coverage_scale(errors: &[f64], variances: &[f64], prefer: f64) -> Result<Calibration> {
    let ml = calibrate_variance(errors, variances)?;
    let mut z: Vec<f64> = errors.iter().zip(variances).filter(|(_, v)| **v > 0.0).map(|(r, v)| r * r / v).collect();
    let n = z.len();
    if z.iter().any(|x| !x.is_finite()) {
        return Err(Error::Numerical("a squared error over its variance is not finite (errors far beyond the variances)".into()));
    }
    z.sort_by(f64::total_cmp);
    if z[n - 1] == 0.0 {
        return Ok(ml);
    }
    // breakpoints: f₁ steps at every z, f₂ at every z/4
    let mut points: Vec<f64> = z.iter().flat_map(|&x| [x, x / 4.0]).filter(|&x| x > 0.0).collect();
    points.sort_by(f64::total_cmp);
    points.dedup();
    let objective = |c1: usize, c2: usize| {
        let f1 = c1 as f64 / n as f64;
        let f2 = c2 as f64 / n as f64;
        ((f1 - GAUSSIAN_WITHIN_1).abs() / COVERAGE_BANDS[0]).max((f2 - GAUSSIAN_WITHIN_2).abs() / COVERAGE_BANDS[1])
    };
    let prefer = if prefer.is_finite() && prefer > 0.0 { prefer.ln() } else { ml.scale.ln() };
    let (mut i1, mut i2) = (0usize, 0usize);
    let mut best: Option<(f64, f64, f64)> = None; // (objective, distance to prefer, s)
    for (k, &b) in points.iter().enumerate() {
        // counts on [b, next): z ≤ b and z ≤ 4b
        while i1 < n && z[i1] <= b {
            i1 += 1;
        }
        while i2 < n && z[i2] <= 4.0 * b {
            i2 += 1;
        }
        let s = match points.get(k + 1) {
            Some(&next) => (b * next).sqrt(),
            None => b,
        };
        let candidate = (objective(i1, i2), (s.ln() - prefer).abs(), s);
        let better = match best {
            None => true,
            Some((o, d, _)) => candidate.0 < o || (candidate.0 == o && candidate.1 < d),
        };
        if better {
            best = Some(candidate);
        }
    }
    let scale = best.map_or(ml.scale, |b| b.2);
    let within = |k: f64| z.iter().filter(|&&x| x <= k * k * scale).count() as f64 / n as f64;
    Ok(Calibration { scale, within_1: within(1.0), within_2: within(2.0), ..ml })
}

/// How the scale of the force variance is fitted to left-out force errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleRule {
    /// [`coverage_scale`]: the fractions within 1σ and 2σ nearest their targets (the default).
    Coverage,
    /// The maximum-likelihood s = mean(r²/(v + c)).
    Likelihood,
}

impl ScaleRule {
    /// From "coverage" or "likelihood" (`field` names the option in the message).
    pub fn parse(value: &str, field: &str) -> Result<ScaleRule> {
        match value {
            "coverage" => Ok(ScaleRule::Coverage),
            "likelihood" => Ok(ScaleRule::Likelihood),
            other => Err(Error::InvalidParameter(format!("{field} = \"{other}\" (expected \"coverage\" or \"likelihood\")"))),
        }
    }

    /// The rule's name, as parsed.
    pub fn as_str(self) -> &'static str {
        match self {
            ScaleRule::Coverage => "coverage",
            ScaleRule::Likelihood => "likelihood",
        }
    }
}

/// The force variance's calibration s_F·(v + c_F) from left-out force
/// errors r (eV/Å) and variances v (eV²/Å², one per component): c_F by the
/// profile likelihood of [`calibrate_variance_and_noise`] (N = 1), then s_F
/// by `rule` on v + c_F. Returns the calibration, c_F and the
/// maximum-likelihood scale at that c_F (equal to the calibration's scale
/// under [`ScaleRule::Likelihood`]).
pub fn calibrate_force_variance(errors: &[f64], variances: &[f64], rule: ScaleRule) -> Result<(Calibration, f64, f64)> {
    let ones = vec![1usize; errors.len()];
    let (ml, noise) = calibrate_variance_and_noise(errors, variances, &ones)?;
    match rule {
        ScaleRule::Likelihood => Ok((ml, noise, ml.scale)),
        ScaleRule::Coverage => {
            let total: Vec<f64> = variances.iter().map(|v| v + noise).collect();
            let c = coverage_scale(errors, &total, ml.scale)?;
            // the uncalibrated fractions are those of v alone, as the likelihood's
            Ok((Calibration { within_1_uncalibrated: ml.within_1_uncalibrated, within_2_uncalibrated: ml.within_2_uncalibrated, ..c }, noise, ml.scale))
        }
    }
}

/// [`calibrate_variance`] of the errors (eV) against the variances plus a
/// noise per atom: v_A + noise·N_A (eV², `noise` in eV²/atom, ≥ 0), the
/// posterior predictive variance of an energy whose noise is that of the
/// fit (σ_E per atom, σ_E²·N for a structure of N atoms).
pub fn calibrate_variance_with_noise(errors: &[f64], variances: &[f64], atoms: &[usize], noise: f64) -> Result<Calibration> {
    if atoms.len() != variances.len() {
        return Err(Error::InvalidParameter(format!("{} atom counts for {} variances", atoms.len(), variances.len())));
    }
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(Error::InvalidParameter(format!("noise = {noise} (expected a finite number ≥ 0, eV² per atom)")));
    }
    let total: Vec<f64> = variances.iter().zip(atoms).map(|(v, &n)| v + noise * n as f64).collect();
    calibrate_variance(errors, &total)
}

/// Fits both the scale s and the noise per atom c (eV²/atom) of the
/// variance s·(v_A + c·N_A) by maximum likelihood of r_A ~ N(0, s·(v_A + c·N_A)):
/// for a given c the best s is mean(r²/(v + c·N)) (as in
/// [`calibrate_variance`]), which leaves the profile
/// −2 log L(c) = Σ_A ln(s(c)·(v_A + c·N_A)) + n, minimised over c ≥ 0 on a
/// logarithmic grid (c = c₀·e^x, x ∈ [−14, 14] in steps of 0.05, c₀ =
/// mean v / mean N, and c = 0) refined by golden section to 1e-6 in x.
/// The noise absorbs the part of the errors the variance v does not
/// follow (a misfit that stays however much data there is); c = 0 when v
/// alone explains them best. Returns the calibration at the optimum and c.
pub fn calibrate_variance_and_noise(errors: &[f64], variances: &[f64], atoms: &[usize]) -> Result<(Calibration, f64)> {
    if errors.len() != variances.len() || atoms.len() != variances.len() {
        return Err(Error::InvalidParameter(format!("{} errors, {} variances, {} atom counts (expected as many of each)", errors.len(), variances.len(), atoms.len())));
    }
    if let Some(k) = errors.iter().zip(variances).position(|(r, v)| !r.is_finite() || !v.is_finite()) {
        return Err(Error::InvalidParameter(format!("error[{k}] = {}, variance[{k}] = {} (expected finite numbers)", errors[k], variances[k])));
    }
    if let Some(k) = atoms.iter().position(|&n| n == 0) {
        return Err(Error::InvalidParameter(format!("atoms[{k}] = 0 (expected at least one atom)")));
    }
    let n = errors.len();
    if n < 2 {
        return Err(Error::InvalidParameter(format!("{n} structures: fitting a scale and a noise needs at least 2")));
    }
    let mean_v = variances.iter().map(|v| v.max(0.0)).sum::<f64>() / n as f64;
    let mean_n = atoms.iter().sum::<usize>() as f64 / n as f64;
    // −2 log L / n at noise c, with the best s; None where some v + cN ≤ 0
    let profile = |c: f64| -> Option<f64> {
        let mut s = 0.0;
        let mut logs = 0.0;
        for k in 0..n {
            let u = variances[k] + c * atoms[k] as f64;
            if !(u > 0.0) {
                return None;
            }
            s += errors[k] * errors[k] / u;
            logs += u.ln();
        }
        let s = s / n as f64;
        if !(s > 0.0) {
            return None;
        }
        Some(s.ln() + logs / n as f64)
    };
    // the scale of c: the typical variance per atom (a tiny positive c₀ when every v is 0)
    let c0 = if mean_v > 0.0 { mean_v / mean_n } else { errors.iter().map(|r| r * r).sum::<f64>() / (n as f64 * mean_n) };
    if !(c0 > 0.0) {
        // every error and variance zero: nothing to fit
        return Ok((calibrate_variance(errors, variances)?, 0.0));
    }
    let at = |x: f64| c0 * x.exp();
    let mut best_x = None;
    let mut best = profile(0.0).unwrap_or(f64::INFINITY);
    let steps = 560;
    let grid: Vec<f64> = (0..=steps).map(|k| -14.0 + 28.0 * k as f64 / steps as f64).collect();
    let values: Vec<f64> = grid.iter().map(|&x| profile(at(x)).unwrap_or(f64::INFINITY)).collect();
    for (k, &v) in values.iter().enumerate() {
        if v < best {
            best = v;
            best_x = Some(k);
        }
    }
    let noise = match best_x {
        None => 0.0,
        Some(k) => {
            // golden section inside the neighbouring grid points
            let (mut a, mut b) = (grid[k.saturating_sub(1)], grid[(k + 1).min(steps)]);
            let g = (5f64.sqrt() - 1.0) / 2.0;
            let f = |x: f64| profile(at(x)).unwrap_or(f64::INFINITY);
            let (mut x1, mut x2) = (b - g * (b - a), a + g * (b - a));
            let (mut f1, mut f2) = (f(x1), f(x2));
            while b - a > 1e-6 {
                if f1 < f2 {
                    b = x2;
                    x2 = x1;
                    f2 = f1;
                    x1 = b - g * (b - a);
                    f1 = f(x1);
                } else {
                    a = x1;
                    x1 = x2;
                    f1 = f2;
                    x2 = a + g * (b - a);
                    f2 = f(x2);
                }
            }
            let x = 0.5 * (a + b);
            if f(x) <= best { at(x) } else { at(grid[k]) }
        }
    };
    Ok((calibrate_variance_with_noise(errors, variances, atoms, noise)?, noise))
}

/// How much wider the variance calibrated on left-out compositions may be
/// than the one calibrated on left-out frames before `acdc fit` warns (an
/// order of magnitude in variance, 3.2× in σ). Measured on held-out EMT
/// Pt–Ni (docs/MODELS.md, "Variance calibration"): 1.83 for the linear
/// model, whose composition-calibrated variance covers new compositions,
/// and 144 for the sparse GPR, whose variance there is 32× too wide.
pub const COMPOSITION_SPREAD_WARNING: f64 = 10.0;

/// The composition-calibrated variance against the frame-calibrated one
/// ([`composition_spread`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompositionSpread {
    /// s_c·(v̄ + c_c·N̄) / (s_f·(v̄ + c_f·N̄)): 1 when both calibrations agree.
    pub spread: f64,
    /// √spread: how many times wider σ is when compositions are left out.
    pub sigma_ratio: f64,
    /// spread > [`COMPOSITION_SPREAD_WARNING`] (false for a NaN spread, which the checks rule out).
    pub warn: bool,
    /// s_f, the scale of the frame calibration.
    pub frame_scale: f64,
    /// c_f, its noise per atom, eV²/atom.
    pub frame_noise: f64,
    /// v̄, the mean per-frame leave-one-out variance (negative rounding-level values counted as 0), eV².
    pub mean_variance: f64,
    /// N̄, the mean atom count of the frames.
    pub mean_atoms: f64,
}

/// Compares a calibration on left-out compositions, s_c·(v + c_c·N) with
/// `composition_scale` s_c (> 0) and `composition_noise` c_c (eV²/atom,
/// ≥ 0), with the one the per-frame leave-one-out `errors` (eV),
/// `variances` (eV²) and `atoms` give ([`calibrate_variance_and_noise`]:
/// s_f, c_f), at a typical training frame: the mean leave-one-out
/// variance v̄ and the mean atom count N̄. A spread far above 1 says that
/// the model's variance does not follow its errors away from the training
/// compositions (docs/MODELS.md, "Variance calibration").
pub fn composition_spread(composition_scale: f64, composition_noise: f64, errors: &[f64], variances: &[f64], atoms: &[usize]) -> Result<CompositionSpread> {
    if !(composition_scale.is_finite() && composition_scale > 0.0) {
        return Err(Error::InvalidParameter(format!("composition_scale = {composition_scale} (expected a positive finite number)")));
    }
    if !(composition_noise.is_finite() && composition_noise >= 0.0) {
        return Err(Error::InvalidParameter(format!("composition_noise = {composition_noise} (expected a finite number ≥ 0, eV² per atom)")));
    }
    let n = errors.len();
    if variances.len() != n || atoms.len() != n {
        return Err(Error::InvalidParameter(format!("{n} errors, {} variances, {} atom counts (expected as many of each)", variances.len(), atoms.len())));
    }
    if let Some(k) = errors.iter().position(|r| !r.is_finite()) {
        return Err(Error::InvalidParameter(format!("errors[{k}] = {} (expected a finite number, eV)", errors[k])));
    }
    if let Some(k) = variances.iter().position(|v| !v.is_finite()) {
        return Err(Error::InvalidParameter(format!("variances[{k}] = {} (expected a finite number, eV²)", variances[k])));
    }
    if let Some(k) = atoms.iter().position(|&a| a == 0) {
        return Err(Error::InvalidParameter(format!("atoms[{k}] = 0 (expected at least one atom)")));
    }
    let (frame, frame_noise) = calibrate_variance_and_noise(errors, variances, atoms)?;
    // a leave-one-out variance below zero is rounding: it counts as none
    let mean_variance = variances.iter().map(|v| v.max(0.0)).sum::<f64>() / n as f64;
    let mean_atoms = atoms.iter().sum::<usize>() as f64 / n as f64;
    let by_frame = frame.scale * (mean_variance + frame_noise * mean_atoms);
    if !(by_frame > 0.0) {
        return Err(Error::Numerical(format!(
            "the frame-calibrated variance at the mean frame is {by_frame} eV² (s_f = {}, c_f = {frame_noise}, mean variance {mean_variance}): no spread to compare against",
            frame.scale
        )));
    }
    let spread = composition_scale * (mean_variance + composition_noise * mean_atoms) / by_frame;
    Ok(CompositionSpread { spread, sigma_ratio: spread.sqrt(), warn: spread > COMPOSITION_SPREAD_WARNING, frame_scale: frame.scale, frame_noise, mean_variance, mean_atoms })
}

/// P(X ≤ k) for X ~ Binomial(n, p): how likely `k` or fewer of `n`
/// errors fall inside a band that holds a fraction p of them when the
/// variance is calibrated (p = 0.6827 for 1σ, 0.9545 for 2σ of a Gaussian).
/// Summed term by term in logarithms (exact to rounding for any n).
pub fn binomial_lower_tail(k: usize, n: usize, p: f64) -> Result<f64> {
    if !(p > 0.0 && p < 1.0) {
        return Err(Error::InvalidParameter(format!("p = {p} (expected a probability strictly between 0 and 1)")));
    }
    if k > n {
        return Err(Error::InvalidParameter(format!("k = {k} is above n = {n}")));
    }
    // ln C(n, j) by the running sum of ln((n − j + 1)/j)
    let mut ln_c = 0.0;
    let mut total = 0.0;
    for j in 0..=k {
        if j > 0 {
            ln_c += ((n - j + 1) as f64).ln() - (j as f64).ln();
        }
        total += (ln_c + j as f64 * p.ln() + (n - j) as f64 * (1.0 - p).ln()).exp();
    }
    Ok(total.min(1.0))
}

/// Leave-one-out energy errors and variances of a model's training structures.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaveOneOut {
    /// r_(−A) = E_(−A) − E_ref, eV: the error of a fit without the energy row of A.
    pub errors: Vec<f64>,
    /// The predictive variance of that fit at A, eV² (no scale, no noise).
    pub variances: Vec<f64>,
    /// h_A = φᵀ(RᵀR)⁻¹φ/σ_A²: the weight of A's energy row in its own prediction, in [0, 1).
    pub leverage: Vec<f64>,
    /// Atoms of each structure.
    pub atoms: Vec<usize>,
    /// Which structures were left out together: the group of each
    /// structure (0, 1, … in order of first appearance); one group per
    /// structure when each was left out alone.
    pub groups: Vec<usize>,
    /// How the groups were formed.
    pub scheme: LeaveOutScheme,
}

/// How the training structures are left out when the variance is
/// calibrated on their held-out errors (docs/MODELS.md, "Variance calibration").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveOutScheme {
    /// Each structure's energy row alone (leave-one-out).
    Frame,
    /// All structures of one composition (the same species-count ratios) at
    /// once: leave-one-composition-out.
    Composition,
}

impl LeaveOutScheme {
    /// The name kept in a model file's `meta.variance_calibration_groups`.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaveOutScheme::Frame => "frame",
            LeaveOutScheme::Composition => "composition",
        }
    }
}

/// Which scheme to use: one of them, or `Auto`: by composition when the
/// training structures have at least [`MIN_COMPOSITIONS`] distinct
/// compositions and none has more than [`MAX_GROUP_FRAMES`] structures,
/// else by frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveOut {
    /// [`LeaveOutScheme::Frame`].
    Frame,
    /// [`LeaveOutScheme::Composition`].
    Composition,
    /// Composition when there are at least [`MIN_COMPOSITIONS`] of them and
    /// no composition has more than [`MAX_GROUP_FRAMES`] structures
    /// ([`LeaveOut::scheme`]); else frame.
    Auto,
}

impl LeaveOut {
    /// Parses 'frame', 'composition' or 'auto' (`field` names the option in the error).
    pub fn parse(value: &str, field: &str) -> Result<LeaveOut> {
        match value {
            "frame" => Ok(LeaveOut::Frame),
            "composition" => Ok(LeaveOut::Composition),
            "auto" => Ok(LeaveOut::Auto),
            other => Err(Error::InvalidParameter(format!("{field} = '{other}' (expected 'auto', 'frame' or 'composition')"))),
        }
    }

    /// The scheme this choice leaves out by, given the composition group
    /// of each structure and the number of groups ([`composition_groups`]).
    /// `Auto` takes compositions when there are at least
    /// [`MIN_COMPOSITIONS`] and the largest holds at most
    /// [`MAX_GROUP_FRAMES`] structures, else frames.
    pub fn scheme(self, groups: &[usize], count: usize) -> LeaveOutScheme {
        match self {
            LeaveOut::Frame => LeaveOutScheme::Frame,
            LeaveOut::Composition => LeaveOutScheme::Composition,
            LeaveOut::Auto => {
                let mut sizes = vec![0usize; count];
                for &g in groups {
                    if g < count {
                        sizes[g] += 1;
                    }
                }
                let largest = sizes.iter().copied().max().unwrap_or(0);
                if count >= MIN_COMPOSITIONS && largest <= MAX_GROUP_FRAMES { LeaveOutScheme::Composition } else { LeaveOutScheme::Frame }
            }
        }
    }
}

/// The most structures of one composition for which [`LeaveOut::Auto`]
/// still leaves compositions out ([`leave_group_out`]): a group of g
/// structures costs a g×g Cholesky factorisation and a solve with g
/// right-hand sides (g³/3 + g³ multiply-adds: 1.1e10 at g = 2000, seconds
/// on one core) and three g×g matrices (24·g² bytes: 96 MB at g = 2000),
/// growing as g³ and g² beyond; leave-one-out costs one dot product per
/// structure.
pub const MAX_GROUP_FRAMES: usize = 2000;

/// The fewest distinct compositions for which [`LeaveOut::Auto`] leaves
/// compositions out: with two, leaving one out asks a model fitted on a
/// single composition to predict the other, an extrapolation no test
/// within the span of the training compositions meets.
pub const MIN_COMPOSITIONS: usize = 3;

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The composition group of each structure: structures whose species
/// counts are proportional (the same counts divided by their greatest
/// common divisor: Pt8Ni24 and Pt16Ni48 are one composition) share a group,
/// numbered 0, 1, … in order of first appearance. Returns the groups and
/// their number.
pub fn composition_groups(systems: &[System]) -> (Vec<usize>, usize) {
    let mut keys: Vec<Vec<(i32, usize)>> = Vec::new();
    let mut groups = Vec::with_capacity(systems.len());
    for s in systems {
        let mut counts: Vec<(i32, usize)> = Vec::new();
        let mut types = s.types.clone();
        types.sort_unstable();
        for t in types {
            match counts.last_mut() {
                Some((z, n)) if *z == t => *n += 1,
                _ => counts.push((t, 1)),
            }
        }
        let g = counts.iter().fold(0, |g, &(_, n)| gcd(g, n)).max(1);
        for c in &mut counts {
            c.1 /= g;
        }
        let index = match keys.iter().position(|k| *k == counts) {
            Some(i) => i,
            None => {
                keys.push(counts);
                keys.len() - 1
            }
        };
        groups.push(index);
    }
    (groups, keys.len())
}

/// Closed-form leave-group-out of the energy rows of a regularised least
/// squares fit (the block form of [`leave_one_out`]). With M = RᵀR and the
/// energy rows a_A = φ_A/σ_A of the structures of a group G stacked as
/// the columns of A, removing them gives M' = M − A Aᵀ and, by Woodbury,
/// with H = AᵀM⁻¹A (H_AB = u_A·u_B/(σ_A σ_B), u = R⁻ᵀφ) and Σ = diag(σ_A):
///
/// ```text
/// r_(−G) = Σ (I − H)⁻¹ Σ⁻¹ r_G
/// Φ_Gᵀ M'⁻¹ Φ_G = Σ (I − H)⁻¹ H Σ
/// ```
///
/// (for one structure: r/(1 − h) and φᵀM⁻¹φ/(1 − h)). `u` holds u_A per
/// structure (all the same length), `prior` the part of the variance the
/// data do not shrink (as in [`leave_one_out`]); the variance of a left-out
/// structure is prior + the diagonal of the second line (each structure's
/// own variance: the errors of one group are correlated, and the
/// calibration treats them one by one). `leverage` gets the diagonal of H.
/// A group whose removal leaves M' singular (I − H not positive definite:
/// the group alone fixes some prediction) is an error naming it.
pub fn leave_group_out(errors: &[f64], u: &[Vec<f64>], prior: &[f64], sigma2: &[f64], atoms: &[usize], groups: &[usize], scheme: LeaveOutScheme) -> Result<LeaveOneOut> {
    let n = errors.len();
    if u.len() != n || prior.len() != n || sigma2.len() != n || atoms.len() != n || groups.len() != n {
        return Err(Error::InvalidParameter(format!(
            "leave-group-out: {n} errors, {} rows, {} prior variances, {} sigmas, {} atom counts, {} groups (expected as many of each)",
            u.len(),
            prior.len(),
            sigma2.len(),
            atoms.len(),
            groups.len()
        )));
    }
    let width = u.first().map_or(0, Vec::len);
    for k in 0..n {
        if u[k].len() != width {
            return Err(Error::InvalidParameter(format!("leave-group-out: row {k} has {} entries, row 0 {width}", u[k].len())));
        }
        if !(errors[k].is_finite() && prior[k].is_finite() && u[k].iter().all(|x| x.is_finite())) {
            return Err(Error::InvalidParameter(format!("leave-group-out: structure {k} has a non-finite error, prior variance or row")));
        }
        if !(sigma2[k].is_finite() && sigma2[k] > 0.0) {
            return Err(Error::InvalidParameter(format!("leave-group-out: sigma2[{k}] = {} (expected a positive finite number, eV²)", sigma2[k])));
        }
    }
    let mut out = LeaveOneOut { errors: vec![0.0; n], variances: vec![0.0; n], leverage: vec![0.0; n], atoms: atoms.to_vec(), groups: groups.to_vec(), scheme };
    let count = groups.iter().copied().max().map_or(0, |g| g + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (k, &g) in groups.iter().enumerate() {
        members[g].push(k);
    }
    for (g, list) in members.iter().enumerate() {
        let m = list.len();
        if m == 0 {
            continue;
        }
        let sigma: Vec<f64> = list.iter().map(|&k| sigma2[k].sqrt()).collect();
        let mut h = DMatrix::<f64>::zeros(m, m);
        for a in 0..m {
            for b in 0..=a {
                let dot: f64 = u[list[a]].iter().zip(&u[list[b]]).map(|(x, y)| x * y).sum();
                let v = dot / (sigma[a] * sigma[b]);
                h[(a, b)] = v;
                h[(b, a)] = v;
            }
        }
        let b = DMatrix::<f64>::identity(m, m) - &h;
        let chol = b.cholesky().ok_or_else(|| {
            Error::Numerical(format!(
                "leave-group-out: group {g} ({m} structures, the first structure {}) cannot be left out: the fit's predictions there rest on its energy rows alone (I − H is not positive definite)",
                list[0]
            ))
        })?;
        let scaled = DVector::from_iterator(m, (0..m).map(|a| errors[list[a]] / sigma[a]));
        let z = chol.solve(&scaled);
        let bh = chol.solve(&h);
        for a in 0..m {
            let k = list[a];
            out.errors[k] = sigma[a] * z[a];
            // B⁻¹H is symmetric positive semi-definite in exact arithmetic: a
            // negative diagonal is rounding
            out.variances[k] = prior[k] + sigma2[k] * bh[(a, a)].max(0.0);
            out.leverage[k] = h[(a, a)];
        }
    }
    Ok(out)
}

/// Closed-form leave-one-out of the energy rows of a fit by regularised
/// least squares (ridge or projected-process GPR, see models/potential.rs):
/// with M = RᵀR = P + Σ_rows a aᵀ and the energy row of structure A
/// a = φ/σ_A (φ the unweighted row, σ_A its noise, eV), removing it gives
/// M' = M − a aᵀ and, by Sherman–Morrison,
///
/// ```text
/// r_(−A) = r_A / (1 − h_A),   φᵀM'⁻¹φ = φᵀM⁻¹φ / (1 − h_A),
/// h_A = φᵀM⁻¹φ / σ_A²
/// ```
///
/// (r_A = E_A − E_ref of the full fit). `posterior` is φᵀM⁻¹φ and `prior`
/// the rest of the variance (the GPR's k** − k*ᵀK_MM⁻¹k*, unchanged by the
/// data; 0 for the linear model), so the variance of the fit without the
/// row is prior + posterior/(1 − h). `sigma2` = σ_A², eV². A leverage of 1
/// (the row alone fixes the prediction) is an error naming the structure.
pub fn leave_one_out(errors: &[f64], posterior: &[f64], prior: &[f64], sigma2: &[f64], atoms: &[usize]) -> Result<LeaveOneOut> {
    let n = errors.len();
    if posterior.len() != n || prior.len() != n || sigma2.len() != n || atoms.len() != n {
        return Err(Error::InvalidParameter(format!(
            "leave-one-out: {n} errors, {} posterior and {} prior variances, {} sigmas, {} atom counts (expected as many of each)",
            posterior.len(),
            prior.len(),
            sigma2.len(),
            atoms.len()
        )));
    }
    let mut out = LeaveOneOut { errors: Vec::with_capacity(n), variances: Vec::with_capacity(n), leverage: Vec::with_capacity(n), atoms: atoms.to_vec(), groups: (0..n).collect(), scheme: LeaveOutScheme::Frame };
    for k in 0..n {
        let (r, p, q, s) = (errors[k], posterior[k], prior[k], sigma2[k]);
        if !(r.is_finite() && p.is_finite() && q.is_finite()) {
            return Err(Error::InvalidParameter(format!("leave-one-out: structure {k} has error {r}, variances {p} and {q} (expected finite numbers)")));
        }
        if !(s.is_finite() && s > 0.0) {
            return Err(Error::InvalidParameter(format!("leave-one-out: sigma2[{k}] = {s} (expected a positive finite number, eV²)")));
        }
        // a posterior variance below zero is rounding: it carries no weight
        let h = p.max(0.0) / s;
        if !(h < 1.0 - 1e-12) {
            return Err(Error::Numerical(format!(
                "leave-one-out: structure {k}'s energy row has leverage {h} (the fit's prediction there rests on that row alone): it cannot be left out"
            )));
        }
        out.errors.push(r / (1.0 - h));
        out.variances.push(q + p / (1.0 - h));
        out.leverage.push(h);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {

    #[test]
    fn validation_loss_weights_each_target_by_its_sigma() {
        // 0.004/0.002 = 2, 0.1/0.05 = 2, 0.02/0.05 = 0.4: 4 + 4 + 0.16
        let l = validation_loss([Some(0.004), Some(0.1), Some(0.02)], [0.002, 0.05, 0.05]).unwrap();
        assert!((l - 8.16).abs() < 1e-12, "{l}");
        // a target not fitted adds nothing and its sigma is not read
        let l = validation_loss([Some(0.004), None, None], [0.002, f64::NAN, 0.0]).unwrap();
        assert!((l - 4.0).abs() < 1e-12, "{l}");
        assert_eq!(validation_loss([None, None, None], [1.0, 1.0, 1.0]).unwrap(), 0.0);
        // a NaN RMSE passes through
        assert!(validation_loss([Some(f64::NAN), None, None], [1.0, 1.0, 1.0]).unwrap().is_nan());
        let e = validation_loss([None, Some(0.1), None], [0.002, 0.0, 0.05]).unwrap_err().to_string();
        assert!(e.contains("sigmas.forces = 0"), "{e}");
        let e = validation_loss([Some(-1.0), None, None], [0.002, 0.05, 0.05]).unwrap_err().to_string();
        assert!(e.contains("rmse.energy = -1"), "{e}");
    }
    use super::*;

    fn system(types: &[i32]) -> System {
        let positions: Vec<[f64; 3]> = (0..types.len()).map(|k| [3.0 * k as f64, 0.0, 0.0]).collect();
        System::new(types.to_vec(), positions, [[0.0; 3]; 3], [false; 3]).unwrap()
    }

    #[test]
    fn count_baseline_is_least_squares() {
        // E = 2 n_1 − 3 n_8 exactly: the fit recovers it
        let train = [system(&[1, 1, 8]), system(&[1, 8, 8]), system(&[1]), system(&[8, 8, 8])];
        let energy: Vec<f64> = train.iter().map(|s| s.types.iter().map(|&t| if t == 1 { 2.0 } else { -3.0 }).sum()).collect();
        let b = species_count_baseline(&train, &energy, &[system(&[1, 8])]).unwrap();
        assert_eq!(b.species, vec![1, 8]);
        assert!((b.per_atom[0] - 2.0).abs() < 1e-12 && (b.per_atom[1] + 3.0).abs() < 1e-12);
        assert!((b.predictions[0] + 1.0).abs() < 1e-12);
        // one composition: minimum norm, the mean energy per atom of each structure
        let one = [system(&[1, 8]), system(&[8, 1])];
        let b = species_count_baseline(&one, &[-1.0, -3.0], &[system(&[1, 8])]).unwrap();
        assert!((b.per_atom[0] + 1.0).abs() < 1e-12 && (b.per_atom[1] + 1.0).abs() < 1e-12);
        assert!((b.predictions[0] + 2.0).abs() < 1e-12);
        assert!(species_count_baseline(&one, &[-1.0, -3.0], &[system(&[6])]).unwrap_err().to_string().contains("species 6"));
    }

    /// Synthetic data where the variance is right by construction: a
    /// Bayesian ridge regression y_k = x_kᵀw + σ√N_k ε_k with w ~ N(0, τ²I),
    /// ε ~ N(0, 1), fitted with the true prior and noise. The leave-one-out
    /// calibration with the noise term must find s ≈ 1 and cover fresh test
    /// points at 0.6827 and 0.9545. Tolerances, 4 standard deviations with
    /// n = 2000 calibration and 4000 test points: the ML scale has relative
    /// sd √(2/n) = 0.032 (tolerance 0.13); a coverage p has binomial sd
    /// √(p(1−p)/4000) = 0.0074 (1σ) and 0.0033 (2σ), plus the scale's error
    /// (d cover/d ln s = φ(k)·k: 0.0077 at 1σ, 0.0035 at 2σ): 0.044 and 0.02.
    #[test]
    fn leave_one_out_calibration_covers_gaussian_data() {
        use crate::math::random::LegacyRandomState;
        let mut rng = LegacyRandomState::new(2026);
        let (p, n, n_test, sigma, tau) = (12usize, 2000usize, 4000usize, 0.05, 0.3);
        let w = DVector::from_iterator(p, (0..p).map(|_| tau * rng.gauss()));
        let mut draw = |count: usize| {
            let mut x = DMatrix::<f64>::zeros(count, p);
            let mut y = DVector::<f64>::zeros(count);
            let mut atoms = vec![0usize; count];
            for k in 0..count {
                // sizes and feature scales vary, so the variances do too
                atoms[k] = 1 + rng.interval(63) as usize;
                let scale = 0.2 + 3.0 * rng.random_sample();
                for j in 0..p {
                    x[(k, j)] = scale * rng.gauss();
                }
                y[k] = (x.row(k) * &w)[0] + sigma * (atoms[k] as f64).sqrt() * rng.gauss();
            }
            (x, y, atoms)
        };
        let (x, y, atoms) = draw(n);
        let (xt, yt, atoms_t) = draw(n_test);
        // M = I/τ² + Σ_k x_k x_kᵀ/σ_k², θ = M⁻¹ Σ_k x_k y_k/σ_k²
        let s2: Vec<f64> = atoms.iter().map(|&a| sigma * sigma * a as f64).collect();
        let mut m = DMatrix::<f64>::identity(p, p) / (tau * tau);
        let mut g = DVector::<f64>::zeros(p);
        for k in 0..n {
            let xk = x.row(k).transpose();
            m += &xk * xk.transpose() / s2[k];
            g += &xk * (y[k] / s2[k]);
        }
        let chol = m.clone().cholesky().unwrap();
        let theta = chol.solve(&g);
        let post = |xk: DVector<f64>| xk.dot(&chol.solve(&xk));
        let errors: Vec<f64> = (0..n).map(|k| (x.row(k) * &theta)[0] - y[k]).collect();
        let posterior: Vec<f64> = (0..n).map(|k| post(x.row(k).transpose())).collect();
        let loo = leave_one_out(&errors, &posterior, &vec![0.0; n], &s2, &atoms).unwrap();
        let c = calibrate_variance_with_noise(&loo.errors, &loo.variances, &atoms, sigma * sigma).unwrap();
        assert!((c.scale - 1.0).abs() < 0.13, "scale {}", c.scale);
        // fresh points, variance s·(v + σ²N)
        let te: Vec<f64> = (0..n_test).map(|k| (xt.row(k) * &theta)[0] - yt[k]).collect();
        let tv: Vec<f64> = (0..n_test).map(|k| c.scale * (post(xt.row(k).transpose()) + sigma * sigma * atoms_t[k] as f64)).collect();
        let t = calibrate_variance(&te, &tv).unwrap();
        assert!((t.within_1_uncalibrated - 0.6827).abs() < 0.044, "within 1σ {}", t.within_1_uncalibrated);
        assert!((t.within_2_uncalibrated - 0.9545).abs() < 0.02, "within 2σ {}", t.within_2_uncalibrated);
        // the closed form against explicit refits without each row (10 of them)
        for k in (0..n).step_by(200) {
            let xk = x.row(k).transpose();
            let mk = &m - &xk * xk.transpose() / s2[k];
            let gk = &g - &xk * (y[k] / s2[k]);
            let ck = mk.cholesky().unwrap();
            let r = xk.dot(&ck.solve(&gk)) - y[k];
            let v = xk.dot(&ck.solve(&xk));
            assert!((loo.errors[k] - r).abs() <= 1e-10 * r.abs().max(1e-3), "{k}: {} vs {r}", loo.errors[k]);
            assert!((loo.variances[k] - v).abs() <= 1e-10 * v, "{k}: {} vs {v}", loo.variances[k]);
        }
    }

    /// Errors drawn from N(0, a·v + b·N) with known a and b: the joint
    /// maximum likelihood finds them and covers fresh draws. n = 4000 each.
    /// Tolerances (4 sd): the fitted total variance per structure carries
    /// the ML errors of two parameters, each ~ √(2/n)·(a few) ≈ 0.05
    /// relative, checked at 0.25 on c = b/a and 0.15 on s; coverages as in
    /// the test above with n = 4000: 0.044 and 0.02. The optimum is a
    /// maximum: moving c by ±5 % raises −2 log L.
    /// The coverage scale: on Gaussian errors (20 000 seeded draws: the
    /// coverages carry a sampling sd of 0.003, checked at 0.01, and the scale
    /// at 3 %) it is the true scale and covers 0.683 / 0.954; on
    /// heavy-tailed errors (Student t with 3 degrees of freedom, by
    /// quantiles) the maximum-likelihood scale covers more than 0.78 within
    /// 1σ while the coverage scale brings both fractions inside their
    /// bands; its objective is the smallest on a fine grid of scales (no
    /// better s exists); all errors zero keep s = 1; bad input names the
    /// value.
    #[test]
    fn coverage_scale_matches_the_bands() {
        use crate::math::random::LegacyRandomState;
        let mut rng = LegacyRandomState::new(11);
        let g = 20_000;
        let vg: Vec<f64> = (0..g).map(|k| 1e-3 * (1.0 + (k % 7) as f64)).collect();
        // Gaussian: r = √(a v) N(0, 1), a = 2.5
        let a = 2.5;
        let rg: Vec<f64> = vg.iter().map(|v| (a * v).sqrt() * rng.gauss()).collect();
        let c = coverage_scale(&rg, &vg, 1.0).unwrap();
        assert!((c.scale / a - 1.0).abs() < 0.03, "scale {}", c.scale);
        assert!((c.within_1 - GAUSSIAN_WITHIN_1).abs() < 0.01 && (c.within_2 - GAUSSIAN_WITHIN_2).abs() < 0.01, "{c:?}");
        let n = 4000;
        let q = |k: usize| (k as f64 + 0.5) / n as f64;
        let v: Vec<f64> = (0..n).map(|k| 1e-3 * (1.0 + (k % 7) as f64)).collect();
        // Student t₃ quantiles (closed form for ν = 3 is awkward: invert the CDF by bisection)
        let t3_cdf = |t: f64| {
            let x = t / 3f64.sqrt();
            0.5 + (x / (1.0 + x * x) + x.atan()) / std::f64::consts::PI
        };
        let t3 = |p: f64| {
            let (mut lo, mut hi) = (-1e3, 1e3);
            for _ in 0..200 {
                let mid = 0.5 * (lo + hi);
                if t3_cdf(mid) < p {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            0.5 * (lo + hi)
        };
        let r: Vec<f64> = (0..n).map(|k| v[k].sqrt() * t3(q(k))).collect();
        let ml = calibrate_variance(&r, &v).unwrap();
        assert!(ml.within_1 > 0.78, "maximum likelihood on t₃ errors: {ml:?}");
        let c = coverage_scale(&r, &v, ml.scale).unwrap();
        assert!((c.within_1 - GAUSSIAN_WITHIN_1).abs() <= 0.1 && (c.within_2 - GAUSSIAN_WITHIN_2).abs() <= 0.05, "{c:?}");
        let objective = |s: f64| {
            let f = |k: f64| r.iter().zip(&v).filter(|(r, v)| r.abs() <= k * (s * **v).sqrt()).count() as f64 / n as f64;
            ((f(1.0) - GAUSSIAN_WITHIN_1).abs() / 0.1).max((f(2.0) - GAUSSIAN_WITHIN_2).abs() / 0.05)
        };
        let at = objective(c.scale);
        for k in 0..4000 {
            let s = ml.scale * (-4.0 + 8.0 * k as f64 / 4000.0).exp();
            assert!(objective(s) >= at - 1e-12, "s = {s}: {} < {at}", objective(s));
        }
        assert_eq!(coverage_scale(&[0.0, 0.0], &[1.0, 2.0], 1.0).unwrap().scale, 1.0);
        assert!(coverage_scale(&[f64::NAN], &[1.0], 1.0).unwrap_err().to_string().contains("error[0] = NaN"));
    }

    #[test]
    fn scale_and_noise_by_maximum_likelihood() {
        use crate::math::random::LegacyRandomState;
        let mut rng = LegacyRandomState::new(7);
        let (a, b) = (2.0, 3e-6);
        let mut draw = |count: usize| {
            let mut v = Vec::new();
            let mut atoms = Vec::new();
            let mut r = Vec::new();
            for _ in 0..count {
                // v spans three decades, so that v and N are told apart
                let vk = 1e-5 * 10f64.powf(3.0 * rng.random_sample() - 2.0);
                let nk = 8 + rng.interval(120) as usize;
                r.push((a * vk + b * nk as f64).sqrt() * rng.gauss());
                v.push(vk);
                atoms.push(nk);
            }
            (r, v, atoms)
        };
        let (r, v, atoms) = draw(4000);
        let (c, noise) = calibrate_variance_and_noise(&r, &v, &atoms).unwrap();
        assert!((noise / (b / a) - 1.0).abs() < 0.25, "noise {noise} vs {}", b / a);
        assert!((c.scale / a - 1.0).abs() < 0.15, "scale {} vs {a}", c.scale);
        let nll = |noise: f64| {
            let u: Vec<f64> = v.iter().zip(&atoms).map(|(v, &n)| v + noise * n as f64).collect();
            let s = r.iter().zip(&u).map(|(r, u)| r * r / u).sum::<f64>() / r.len() as f64;
            u.iter().map(|u| (s * u).ln()).sum::<f64>()
        };
        assert!(nll(noise) < nll(1.05 * noise) && nll(noise) < nll(0.95 * noise));
        let (rt, vt, nt) = draw(4000);
        let tv: Vec<f64> = vt.iter().zip(&nt).map(|(v, &n)| c.scale * (v + noise * n as f64)).collect();
        let t = calibrate_variance(&rt, &tv).unwrap();
        assert!((t.within_1_uncalibrated - 0.6827).abs() < 0.044, "within 1σ {}", t.within_1_uncalibrated);
        assert!((t.within_2_uncalibrated - 0.9545).abs() < 0.02, "within 2σ {}", t.within_2_uncalibrated);
        // no noise in the data: c stays near 0 (its share of the variance below 5 %)
        // the same standard normal draws z = r/√(a v + b N), now times √(a v)
        let r0: Vec<f64> = (0..r.len()).map(|k| (a * v[k]).sqrt() * r[k] / (a * v[k] + b * atoms[k] as f64).sqrt()).collect();
        let (_, noise0) = calibrate_variance_and_noise(&r0, &v, &atoms).unwrap();
        let share = noise0 * atoms.iter().sum::<usize>() as f64 / (v.iter().sum::<f64>() + noise0 * atoms.iter().sum::<usize>() as f64);
        assert!(share < 0.05, "noise share {share}");
    }

    /// Errors r_k = ±√(a·v_k) with v_k/N_k not constant: the frame
    /// likelihood is largest at c_f = 0 (by Jensen, ln mean(v/(v + cN)) ≥
    /// mean ln(v/(v + cN)), equal only at c = 0), so s_f = a exactly and the
    /// spread is s_c·(v̄ + c_c·N̄)/(a·v̄), here by hand: v = 0.01, 0.04,
    /// 0.09, 0.16 eV² (v̄ = 0.075), N = 10, 20, 20, 30 (N̄ = 20), a = 2,
    /// s_c = 50, c_c = 0.001: 50·(0.075 + 0.02)/(2·0.075) = 31.666….
    #[test]
    fn composition_spread_by_hand() {
        let v: [f64; 4] = [0.01, 0.04, 0.09, 0.16];
        let atoms = [10usize, 20, 20, 30];
        let r: Vec<f64> = v.iter().enumerate().map(|(k, v)| if k % 2 == 0 { (2.0 * v).sqrt() } else { -(2.0 * v).sqrt() }).collect();
        let s = composition_spread(50.0, 0.001, &r, &v, &atoms).unwrap();
        assert_eq!(s.frame_noise, 0.0);
        assert!((s.frame_scale - 2.0).abs() < 1e-14, "{}", s.frame_scale);
        assert!((s.mean_variance - 0.075).abs() < 1e-15 && s.mean_atoms == 20.0);
        let want = 50.0 * (0.075 + 0.001 * 20.0) / (2.0 * 0.075);
        assert!((s.spread - want).abs() <= 1e-14 * want, "{} vs {want}", s.spread);
        assert!((s.sigma_ratio - want.sqrt()).abs() <= 1e-14 * want);
        assert!(s.warn);
        // the same calibration both ways: 1, no warning; exactly 10: no warning
        assert!((composition_spread(2.0, 0.0, &r, &v, &atoms).unwrap().spread - 1.0).abs() < 1e-14);
        assert!(!composition_spread(2.0, 0.0, &r, &v, &atoms).unwrap().warn);
        let ten = composition_spread(20.0, 0.0, &r, &v, &atoms).unwrap();
        assert!((ten.spread - 10.0).abs() < 1e-13);
        // a noisy case: the ratio with whatever calibrate_variance_and_noise fits
        let r2 = [0.3, -0.05, 0.2, -0.4];
        let (f, c) = calibrate_variance_and_noise(&r2, &v, &atoms).unwrap();
        let s2 = composition_spread(3.0, 0.002, &r2, &v, &atoms).unwrap();
        let want2 = 3.0 * (0.075 + 0.002 * 20.0) / (f.scale * (0.075 + c * 20.0));
        assert!((s2.spread - want2).abs() <= 1e-14 * want2);
        // a rounding-level negative variance counts as 0 in the mean
        let s3 = composition_spread(1.0, 0.0, &[0.1, 0.2, 0.3], &[-1e-18, 0.02, 0.04], &[4, 4, 8]).unwrap();
        assert!((s3.mean_variance - 0.02).abs() < 1e-16);
    }

    #[test]
    fn composition_spread_rejects() {
        let (r, v, a) = ([0.1, 0.2], [0.01, 0.02], [4usize, 8]);
        let msg = |e: Error| e.to_string();
        assert!(msg(composition_spread(0.0, 0.0, &r, &v, &a).unwrap_err()).contains("composition_scale = 0"));
        assert!(msg(composition_spread(f64::NAN, 0.0, &r, &v, &a).unwrap_err()).contains("composition_scale = NaN"));
        assert!(msg(composition_spread(1.0, -1.0, &r, &v, &a).unwrap_err()).contains("composition_noise = -1"));
        assert!(msg(composition_spread(1.0, f64::INFINITY, &r, &v, &a).unwrap_err()).contains("composition_noise = inf"));
        assert!(msg(composition_spread(1.0, 0.0, &r, &v[..1], &a).unwrap_err()).contains("2 errors, 1 variances, 2 atom counts"));
        assert!(msg(composition_spread(1.0, 0.0, &[0.1, f64::NAN], &v, &a).unwrap_err()).contains("errors[1] = NaN"));
        assert!(msg(composition_spread(1.0, 0.0, &r, &[0.01, f64::INFINITY], &a).unwrap_err()).contains("variances[1] = inf"));
        assert!(msg(composition_spread(1.0, 0.0, &r, &v, &[4, 0]).unwrap_err()).contains("atoms[1] = 0"));
        // no positive variance: no frame calibration to compare against
        assert!(msg(composition_spread(1.0, 0.0, &[0.0, 0.0], &[0.0, 0.0], &a).unwrap_err()).contains("positive predictive variance"));
    }

    /// By hand: d = (0.5, −1, 2)/(1, 2, 4) = (0.5, −0.5, 0.5): MAE 0.5, RMSE 0.5;
    /// without divisors d = (0.5, −1, 2): MAE 7/6, RMSE √(5.25/3).
    #[test]
    fn error_statistics_by_hand() {
        let (p, r) = ([1.5, 1.0, 5.0], [1.0, 2.0, 3.0]);
        let e = error_statistics(&p, &r, &[1.0, 2.0, 4.0]).unwrap().unwrap();
        assert!((e.mae - 0.5).abs() < 1e-15 && (e.rmse - 0.5).abs() < 1e-15 && e.count == 3);
        let e = error_statistics(&p, &r, &[]).unwrap().unwrap();
        assert!((e.mae - 7.0 / 6.0).abs() < 1e-15 && (e.rmse - (5.25f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(error_statistics(&[], &[], &[]).unwrap(), None);
        assert!(error_statistics(&[f64::NAN], &[1.0], &[]).unwrap().unwrap().rmse.is_nan());
        assert!(error_statistics(&p, &r[..2], &[]).unwrap_err().to_string().contains("3 predicted values, 2 references"));
        assert!(error_statistics(&p, &[1.0, f64::INFINITY, 3.0], &[]).unwrap_err().to_string().contains("reference[1] = inf"));
        assert!(error_statistics(&p, &r, &[1.0, 0.0, 1.0]).unwrap_err().to_string().contains("divisor[1] = 0"));
    }

    /// The held-out form equals `calibrate_variance` on errors made by hand:
    /// r = (0.5, −1, 2) over v = (0.25, 1, 1) gives s = (1 + 1 + 4)/3 = 2.
    #[test]
    fn held_out_calibration_by_hand() {
        let c = calibrate_variance_held_out(&[&[1.5], &[1.0, 5.0]], &[&[1.0], &[2.0, 3.0]], &[&[0.25], &[1.0, 1.0]]).unwrap();
        assert!((c.scale - 2.0).abs() < 1e-15 && c.count == 3);
        assert_eq!(c, calibrate_variance(&[0.5, -1.0, 2.0], &[0.25, 1.0, 1.0]).unwrap());
        let e = calibrate_variance_held_out(&[&[1.0]], &[&[1.0], &[2.0]], &[&[1.0]]).unwrap_err().to_string();
        assert!(e.contains("1 predicted pieces, 2 reference pieces"), "{e}");
        let e = calibrate_variance_held_out(&[&[1.0, 2.0]], &[&[1.0]], &[&[1.0, 1.0]]).unwrap_err().to_string();
        assert!(e.contains("piece 0: 2 predicted values, 1 references"), "{e}");
        let e = calibrate_variance_held_out(&[&[1.0]], &[&[f64::NAN]], &[&[1.0]]).unwrap_err().to_string();
        assert!(e.contains("reference[0][0] = NaN"), "{e}");
    }

    #[test]
    fn binomial_tail_by_hand() {
        // P(X ≤ 9 | 12, 0.95) = 1 − C(12,10) p¹⁰q² − 12 p¹¹q − p¹²
        let p: f64 = 0.95;
        let want = 1.0 - 66.0 * p.powi(10) * 0.05f64.powi(2) - 12.0 * p.powi(11) * 0.05 - p.powi(12);
        assert!((binomial_lower_tail(9, 12, p).unwrap() - want).abs() < 1e-14);
        assert!((binomial_lower_tail(12, 12, p).unwrap() - 1.0).abs() < 1e-14);
        assert!((binomial_lower_tail(0, 3, 0.5).unwrap() - 0.125).abs() < 1e-15);
        assert!((binomial_lower_tail(1, 3, 0.5).unwrap() - 0.5).abs() < 1e-15);
        assert!(binomial_lower_tail(4, 3, 0.5).is_err() && binomial_lower_tail(1, 3, 1.0).is_err());
    }

    /// Groups of one structure: the block formula reduces to
    /// Sherman–Morrison (≤ 1e-12 relative); and by composition, counts
    /// that are proportional share a group.
    #[test]
    fn leave_group_out_of_singletons_is_leave_one_out() {
        use crate::math::random::LegacyRandomState;
        let mut rng = LegacyRandomState::new(11);
        let n = 7;
        let u: Vec<Vec<f64>> = (0..n).map(|_| (0..5).map(|_| 0.3 * rng.gauss()).collect()).collect();
        let errors: Vec<f64> = (0..n).map(|_| rng.gauss()).collect();
        let prior: Vec<f64> = (0..n).map(|_| rng.random_sample()).collect();
        let sigma2: Vec<f64> = (0..n).map(|_| 1.0 + rng.random_sample()).collect();
        let atoms = vec![4usize; n];
        let post: Vec<f64> = u.iter().map(|r| r.iter().map(|x| x * x).sum()).collect();
        let one = leave_one_out(&errors, &post, &prior, &sigma2, &atoms).unwrap();
        let groups: Vec<usize> = (0..n).collect();
        let blocks = leave_group_out(&errors, &u, &prior, &sigma2, &atoms, &groups, LeaveOutScheme::Composition).unwrap();
        for k in 0..n {
            assert!((one.errors[k] - blocks.errors[k]).abs() <= 1e-12 * one.errors[k].abs());
            assert!((one.variances[k] - blocks.variances[k]).abs() <= 1e-12 * one.variances[k]);
            assert!((one.leverage[k] - blocks.leverage[k]).abs() <= 1e-12 * one.leverage[k]);
        }
        // a group whose rows alone fix a prediction cannot be left out
        let tall = vec![vec![2.0, 0.0], vec![0.0, 2.0], vec![0.1, 0.1]];
        let e = leave_group_out(&[0.1; 3], &tall, &[0.0; 3], &[1.0; 3], &[1; 3], &[0, 0, 1], LeaveOutScheme::Composition).unwrap_err();
        assert!(e.to_string().contains("group 0"), "{e}");
        let cell = |types: &[i32]| system(types);
        let (g, count) = composition_groups(&[cell(&[78, 28, 28, 28]), cell(&[28, 78, 28, 28, 78, 28, 28, 28]), cell(&[78, 78, 28, 28]), cell(&[28; 3]), cell(&[28])]);
        assert_eq!((g, count), (vec![0, 0, 1, 2, 2], 3));
    }

    /// Against explicit refits in numpy (scripts/reference/leave_group_out_numpy.py):
    /// 14 structures in 5 interleaved groups of 1 to 5, extra rows that stay
    /// (as force rows do), a prior part; errors and variances ≤ 1e-10 relative.
    #[test]
    fn leave_group_out_matches_numpy_refits() {
        let text = include_str!("../../../../test/fixtures/models/leave_group_out.json");
        let f: serde_json::Value = serde_json::from_str(text).unwrap();
        let list = |k: &str| -> Vec<f64> { f[k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect() };
        let u: Vec<Vec<f64>> = f["u"].as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()).collect();
        let groups: Vec<usize> = f["groups"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let errors = list("errors");
        let atoms = vec![1usize; errors.len()];
        let got = leave_group_out(&errors, &u, &list("prior"), &list("sigma2"), &atoms, &groups, LeaveOutScheme::Composition).unwrap();
        for (k, (want_r, want_v)) in list("want_errors").into_iter().zip(list("want_variances")).enumerate() {
            assert!((got.errors[k] - want_r).abs() <= 1e-10 * want_r.abs(), "structure {k}: error {} vs {want_r}", got.errors[k]);
            assert!((got.variances[k] - want_v).abs() <= 1e-10 * want_v, "structure {k}: variance {} vs {want_v}", got.variances[k]);
        }
    }

    /// `Auto`: compositions from three of them on, unless one holds more
    /// than MAX_GROUP_FRAMES structures (its g×g factorisation would be
    /// slow): then frames; the forced schemes ignore both.
    #[test]
    fn auto_scheme_by_count_and_size() {
        let small = [0usize, 1, 2, 0, 1, 2];
        assert_eq!(LeaveOut::Auto.scheme(&small, 3), LeaveOutScheme::Composition);
        assert_eq!(LeaveOut::Auto.scheme(&[0, 1, 0, 1], 2), LeaveOutScheme::Frame);
        assert_eq!(LeaveOut::Frame.scheme(&small, 3), LeaveOutScheme::Frame);
        let mut at_limit = vec![0usize; MAX_GROUP_FRAMES];
        at_limit.extend([1, 2]);
        assert_eq!(LeaveOut::Auto.scheme(&at_limit, 3), LeaveOutScheme::Composition);
        let mut over = vec![1usize; MAX_GROUP_FRAMES + 1];
        over.extend([0, 2]);
        assert_eq!(LeaveOut::Auto.scheme(&over, 3), LeaveOutScheme::Frame);
        assert_eq!(LeaveOut::Composition.scheme(&over, 3), LeaveOutScheme::Composition);
        assert_eq!(LeaveOut::parse("auto", "groups").unwrap(), LeaveOut::Auto);
        assert_eq!(LeaveOut::parse("interior", "groups").unwrap_err().to_string().lines().count(), 1);
        assert!(LeaveOut::parse("interior", "groups").unwrap_err().to_string().contains("groups = 'interior'"));
    }

    #[test]
    fn leave_one_out_rejects() {
        assert!(leave_one_out(&[1.0], &[1.0], &[0.0], &[1.0], &[1]).unwrap_err().to_string().contains("leverage 1"));
        assert!(leave_one_out(&[1.0], &[1.0], &[0.0], &[0.0], &[1]).unwrap_err().to_string().contains("sigma2[0]"));
        assert!(leave_one_out(&[1.0, 2.0], &[1.0], &[0.0], &[1.0], &[1]).is_err());
        assert!(calibrate_variance_with_noise(&[1.0], &[1.0], &[1], -1.0).unwrap_err().to_string().contains("noise"));
    }

    #[test]
    fn calibration_is_the_likelihood_maximum() {
        let r = [0.1, -0.2, 0.05, 0.0, 0.3];
        let v = [0.01, 0.01, 0.04, 0.01, 0.0];
        let c = calibrate_variance(&r, &v).unwrap();
        // (1 + 4 + 1/16 + 0)/4, the zero variance left out
        assert!((c.scale - (1.0 + 4.0 + 0.0625) / 4.0).abs() < 1e-14);
        assert_eq!(c.count, 4);
        // √(s v) = 0.1125 for v = 0.01: 0.1 and 0.0 within 1σ; 0.05 vs 0.225: within
        assert_eq!(c.within_1, 0.75);
        assert_eq!(c.within_2, 1.0);
        assert_eq!(c.within_1_uncalibrated, 0.75);
        assert!(calibrate_variance(&[1.0], &[0.0]).is_err());
        assert!(calibrate_variance(&[f64::NAN], &[1.0]).is_err());
    }
}
