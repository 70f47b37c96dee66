//! What `acdc fit` checks a fitted potential against on held-out
//! structures: the per-species-count baseline (energy regressed on the
//! number of atoms of each species, the least a potential must beat) and
//! the calibration of the predictive variance (one scale factor fitted by
//! maximum likelihood). See docs/MODELS.md.
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

#[cfg(test)]
mod tests {
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
