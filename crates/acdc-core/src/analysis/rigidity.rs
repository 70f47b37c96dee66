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
use nalgebra::{DMatrix, DVector};

use crate::error::{Error, Result};
use crate::math::linalg::{check_size, dot, svd, Dense};

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
    let inverse = CovariancePinv::new(means, alpha)?;
    let lpr = test
        .iter()
        .map(|s| {
            (0..s.rows)
                .map(|i| {
                    let x: Vec<f64> = s.row(i).iter().map(|v| v / sfactor).collect();
                    1.0 / inverse.quadratic_form(&x)
                })
                .collect()
        })
        .collect();
    let rank = inverse.rank;
    Ok(Rigidity { lpr, rank_diff: features - rank })
}

/// The pseudo-inverse of M = XᵀX + αI (X: one row per training structure,
/// F features) in factored form, from the thin SVD X = U Σ Vᵀ rather than an
/// F × F eigendecomposition: M's eigenvalues are σ_k² + α along the k ≤
/// min(n, F) right singular vectors v_k and α on their orthogonal complement,
/// so one SVD of the n × F matrix (O(n²F) with n structures, against O(F³)
/// Jacobi sweeps over the covariance, ~25 s for F ≈ 1 200) gives the same
/// M⁺, with the small eigenvalues more accurate (σ² rather than noise of
/// order ε‖M‖). Drop rule and rank as numpy's `pinv` (rcond 10⁻¹⁵) and
/// `matrix_rank` (max|λ| · F · ε) on M's eigenvalues.
struct CovariancePinv {
    /// Right singular vectors v_k (k vectors of F values).
    vectors: Vec<Vec<f64>>,
    /// 1/(σ_k² + α) where kept, else 0.
    inverse_values: DVector<f64>,
    /// 1/α when the complement's eigenvalue α is kept, else 0.
    inverse_alpha: f64,
    /// Numerical rank of M.
    rank: usize,
}

impl CovariancePinv {
    fn new(x: DMatrix<f64>, alpha: f64) -> Result<Self> {
        let features = x.ncols();
        let decomposition = svd(x, "the training structures' mean features")?;
        let values: Vec<f64> = decomposition.s.iter().map(|s| s * s + alpha).collect();
        let complement = features - values.len();
        let largest = values.iter().fold(alpha, |m, &v| m.max(v));
        let rank_tolerance = largest * features as f64 * f64::EPSILON;
        let pinv_tolerance = 1e-15 * largest;
        let rank = values.iter().filter(|&&v| v > rank_tolerance).count() + if alpha > rank_tolerance { complement } else { 0 };
        let inverse_values = DVector::from_iterator(values.len(), values.iter().map(|&v| if v > pinv_tolerance { 1.0 / v } else { 0.0 }));
        let inverse_alpha = if complement > 0 && alpha > pinv_tolerance { 1.0 / alpha } else { 0.0 };
        let vectors = (0..decomposition.vt.nrows()).map(|k| decomposition.vt.row(k).iter().copied().collect()).collect();
        Ok(CovariancePinv { vectors, inverse_values, inverse_alpha, rank })
    }

    /// x M⁺ xᵀ for one row x (F values).
    fn quadratic_form(&self, x: &[f64]) -> f64 {
        let mut residual = x.to_vec();
        let mut sum = 0.0;
        for (v, &inverse) in self.vectors.iter().zip(self.inverse_values.iter()) {
            let p = dot(x, v);
            sum += p * p * inverse;
            residual.iter_mut().zip(v).for_each(|(r, vj)| *r -= p * vj);
        }
        // the complement's part from the explicit residual x − V Vᵀx, not
        // |x|² − Σ p²: no cancellation when x lies nearly in the span of V
        if self.inverse_alpha > 0.0 {
            sum += dot(&residual, &residual) * self.inverse_alpha;
        }
        sum
    }
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

    /// The factored form equals the pseudo-inverse of the explicit F × F
    /// covariance (Jacobi eigendecomposition), with fewer structures than
    /// features, more, and a rank-deficient set without regularisation.
    #[test]
    fn factored_pseudo_inverse_equals_the_explicit_covariance() {
        use crate::math::linalg::SymmetricPinv;
        let value = |i: usize, j: usize, seed: usize| (((i * 31 + j * 17 + seed * 7) as f64) * 0.61).sin() + 0.2 * ((i + seed) as f64 * 0.13).cos();
        for (n, features, alpha, rank) in [(5, 12, 1e-3, 5), (20, 6, 0.1, 6), (8, 10, 0.0, 3)] {
            // X = Q₁ diag(1, 0.8, …) Q₂ᵀ with orthonormal Q₁, Q₂: rank `rank`,
            // singular values ≥ 0.8^(rank−1), so that the explicit covariance's
            // eigenvalues are accurate enough to compare with
            let q1 = DMatrix::from_fn(n, rank, |i, j| value(i, j, 1)).qr().q();
            let q2 = DMatrix::from_fn(features, rank, |i, j| value(i, j, 2)).qr().q();
            let d = DMatrix::from_diagonal(&DVector::from_fn(rank, |k, _| 0.8f64.powi(k as i32)));
            let x = &q1 * d * q2.transpose();
            let explicit = SymmetricPinv::new(x.transpose() * &x + DMatrix::identity(features, features) * alpha, 1e-15, "M").unwrap();
            let factored = CovariancePinv::new(x.clone(), alpha).unwrap();
            assert_eq!(factored.rank, explicit.rank, "rank, n = {n}, F = {features}");
            let probes = DMatrix::from_fn(4, features, |i, j| value(i, j, 3));
            let want = explicit.quadratic_forms(&probes);
            for (i, w) in want.iter().enumerate() {
                let row: Vec<f64> = probes.row(i).iter().copied().collect();
                let got = factored.quadratic_form(&row);
                assert!((got - w).abs() <= 1e-10 * w.abs(), "n = {n}, F = {features}, α = {alpha}: {got} vs {w}");
            }
        }
    }
}
