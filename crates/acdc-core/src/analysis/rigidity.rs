//! Local prediction rigidity (LPR) of a linear model on atomic features
//! whose structure-level prediction is the mean of atomic contributions
//! (Chong, Grasselli, Ben Mahmoud, Morrow, Deringer & Ceriotti, J. Chem.
//! Theory Comput. 19, 8020 (2023), doi:10.1021/acs.jctc.3c00704), following
//! scikit-matter 0.4.1's `local_prediction_rigidity`:
//!
//! ```text
//! s      = √( Σ_f mean over all training atoms of x_f² )   (no centring)
//! x̄_A    = mean over the atoms of training structure A of x/s
//! M      = Σ_A x̄_Aᵀ x̄_A + α I
//! LPR_a  = 1 / ( (x_a/s) M⁺ (x_a/s)ᵀ )                    for each test atom a
//! ```
//! M⁺ is the pseudo-inverse (eigenvalues with |λ| ≤ 10⁻¹⁵ max|λ| dropped);
//! `rank_diff` = number of features − numerical rank of M (tolerance
//! `max|λ| · F · ε`), the number of directions the training set does not
//! constrain. An atom entirely outside the constrained directions has an
//! infinite LPR. α is the model's regulariser (in the scaled units).
use nalgebra::DMatrix;

use crate::error::{Error, Result};
use crate::math::linalg::{check_size, Dense, SymmetricPinv};

/// Result of [`local_prediction_rigidity`].
#[derive(Debug, Clone, PartialEq)]
pub struct Rigidity {
    /// LPR of every atom, one vector per test structure (dimensionless).
    pub lpr: Vec<Vec<f64>>,
    /// Number of features minus the rank of the regularised covariance.
    pub rank_diff: usize,
}

fn check_structures(name: &str, list: &[Dense], features: usize, reference: &str) -> Result<()> {
    if list.is_empty() {
        return Err(Error::InvalidParameter(format!("{name} is empty (give at least one structure)")));
    }
    for (k, s) in list.iter().enumerate() {
        if s.cols != features {
            return Err(Error::InvalidParameter(format!("{name}[{k}] has {} features (columns) but {reference} has {features}", s.cols)));
        }
    }
    Ok(())
}

/// LPR of every atom of the `test` structures for a model trained on the
/// `train` structures (each an `n_atoms × F` matrix) with regulariser `alpha`.
pub fn local_prediction_rigidity(train: &[Dense], test: &[Dense], alpha: f64) -> Result<Rigidity> {
    let features = train.first().map_or(0, |s| s.cols);
    check_structures("train", train, features, "train[0]")?;
    check_structures("test", test, features, "train[0]")?;
    check_size(features, features, "the feature covariance")?;
    if !(alpha.is_finite() && alpha >= 0.0) {
        return Err(Error::InvalidParameter(format!("alpha = {alpha} (expected a finite number ≥ 0)")));
    }
    let atoms: usize = train.iter().map(|s| s.rows).sum();
    let mut mean_sq = vec![0.0; features];
    for s in train {
        for i in 0..s.rows {
            mean_sq.iter_mut().zip(s.row(i)).for_each(|(m, v)| *m += v * v);
        }
    }
    let sfactor = mean_sq.iter().map(|m| m / atoms as f64).sum::<f64>().sqrt();
    if sfactor == 0.0 {
        return Err(Error::InvalidParameter("train: every feature of every atom is zero (the features cannot be scaled)".into()));
    }
    let mut means = DMatrix::<f64>::zeros(train.len(), features);
    for (k, s) in train.iter().enumerate() {
        for i in 0..s.rows {
            for (j, v) in s.row(i).iter().enumerate() {
                means[(k, j)] += v / sfactor;
            }
        }
        means.row_mut(k).scale_mut(1.0 / s.rows as f64);
    }
    let covariance = means.transpose() * &means + DMatrix::<f64>::identity(features, features) * alpha;
    let inverse = SymmetricPinv::new(covariance, 1e-15, "the regularised training covariance")?;
    let lpr = test
        .iter()
        .map(|s| {
            let x = DMatrix::from_fn(s.rows, features, |i, j| s.data[i * features + j] / sfactor);
            inverse.quadratic_forms(&x).into_iter().map(|q| 1.0 / q).collect()
        })
        .collect();
    let rank = inverse.rank;
    Ok(Rigidity { lpr, rank_diff: features - rank })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_feature_by_hand() {
        // one feature: s² = mean(x²) over atoms; M = Σ x̄² + α; LPR = M s²/x²
        let train = vec![Dense::new("a", vec![1.0, 3.0], 2, 1).unwrap(), Dense::new("b", vec![2.0], 1, 1).unwrap()];
        let test = vec![Dense::new("t", vec![4.0], 1, 1).unwrap()];
        let r = local_prediction_rigidity(&train, &test, 0.5).unwrap();
        let s2: f64 = (1.0 + 9.0 + 4.0) / 3.0;
        let m = (2.0 * 2.0 + 2.0 * 2.0) / s2 + 0.5;
        assert!((r.lpr[0][0] - m * s2 / 16.0).abs() < 1e-14);
        assert_eq!(r.rank_diff, 0);
    }

    #[test]
    fn rank_deficient_and_errors() {
        let train = vec![Dense::new("a", vec![1.0, 0.0], 1, 2).unwrap()];
        let r = local_prediction_rigidity(&train, &train, 0.0).unwrap();
        assert_eq!(r.rank_diff, 1);
        let wrong = vec![Dense::new("t", vec![1.0], 1, 1).unwrap()];
        assert!(local_prediction_rigidity(&train, &wrong, 0.0).unwrap_err().to_string().contains("test[0] has 1 features (columns) but train[0] has 2"));
        assert!(local_prediction_rigidity(&train, &train, -1.0).unwrap_err().to_string().contains("alpha = -1"));
    }
}
