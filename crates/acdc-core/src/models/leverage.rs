//! GAP's `sparse_method=cur_points`: randomised CUR column selection by
//! statistical leverage (M. W. Mahoney, P. Drineas, PNAS 106, 697 (2009),
//! doi:10.1073/pnas.0803205106), as gap_fit's `cur_decomposition` does it
//! with one iteration.
//!
//! With X the environments × features matrix of normalised features and
//! X = U S Vᵀ, the rank is k = ⌊(number of singular values > 1e-13) / 2⌋
//! (at least 1), the leverage of environment j is ℓ_j = Σ_{r<k} U_jr² (the
//! k largest singular values), its probability p_j = min(1, m·ℓ_j / k) for m
//! points, and the m environments with the smallest u_j − p_j are kept,
//! u_j uniform in [0, 1) (numpy's `RandomState(seed).random_sample`, in
//! environment order). Environments with p_j = 1 are always kept; the rest
//! are drawn in proportion to their leverage, so the sparse set follows the
//! distribution of the data instead of its extremes (which the greedy CUR,
//! `cur`, picks first).
use nalgebra::DMatrix;

use crate::budget::MemoryBudget;
use crate::error::{Error, Result};
use crate::math::random::LegacyRandomState;

/// Singular values at or below this count as zero (GAP's `TOL_SVD`).
const TOL_SVD: f64 = 1e-13;

/// Indices of `count` rows of the row-major `rows × cols` matrix `x`
/// chosen by leverage-score sampling with `seed`.
pub fn leverage_cur(x: &[f64], rows: usize, cols: usize, count: usize, seed: u32) -> Result<Vec<usize>> {
    if count > rows {
        return Err(Error::InvalidParameter(format!("cannot choose {count} sparse environments among {rows}")));
    }
    if x.len() != rows * cols {
        return Err(Error::InvalidParameter(format!("leverage CUR: {} values for a {rows} × {cols} matrix", x.len())));
    }
    let (leverage, k) = leverage_scores(x, rows, cols)?;
    let mut random = LegacyRandomState::new(seed);
    let mut keyed: Vec<(f64, usize)> = (0..rows)
        .map(|j| {
            let p = (count as f64 * leverage[j] / k as f64).min(1.0);
            (random.random_sample() - p, j)
        })
        .collect();
    // stable: equal keys keep environment order
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(keyed[..count].iter().map(|&(_, j)| j).collect())
}

/// Leverage ℓ_j = Σ_{r<k} U_jr² of every row of the row-major `rows × cols`
/// matrix `x` on its k = max(1, ⌊#(s > 1e-13)/2⌋) largest singular values, and k.
fn leverage_scores(x: &[f64], rows: usize, cols: usize) -> Result<(Vec<f64>, usize)> {
    let k_max = rows.min(cols);
    MemoryBudget::global().check("the SVD of the sparse-selection matrix", ((2 * rows * cols + rows * k_max) * 8) as f64)?;
    let m = DMatrix::from_row_slice(rows, cols, x);
    let svd = m.svd(true, false);
    let u = svd.u.as_ref().ok_or_else(|| Error::Numerical("leverage CUR: the SVD did not converge".into()))?;
    let s = &svd.singular_values;
    if s.iter().any(|v| !v.is_finite()) {
        return Err(Error::Numerical("leverage CUR: the SVD did not converge".into()));
    }
    // the k largest singular values (nalgebra does not promise an order)
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
    let nonzero = s.iter().filter(|&&v| v > TOL_SVD).count();
    let k = (nonzero / 2).max(1);
    Ok(((0..rows).map(|j| order[..k].iter().map(|&r| u[(j, r)] * u[(j, r)]).sum()).collect(), k))
}

/// Indices of `count` rows of the row-major `rows × cols` matrix `x`, drawn
/// as in [`leverage_cur`] but with the inclusion probabilities mixed with
/// uniform ones: p_j = min(1, (1 − a)·m·ℓ_j/k + a·m/rows), a = `uniform`
/// in [0, 1] (a = 0 is [`leverage_cur`], a = 1 a uniform draw). Why: the
/// leverage counts directions, not environments, and with several species
/// the species-pair blocks that only alloy environments fill hold half of the
/// directions, so GAP's rule puts ~90 % of the Cu sparse points of a
/// half-Cu, half-Cu–Au training set on the alloy frames; the uniform share
/// keeps every environment's probability at least a·m/rows.
pub fn mixed_leverage_cur(x: &[f64], rows: usize, cols: usize, count: usize, seed: u32, uniform: f64) -> Result<Vec<usize>> {
    if count > rows {
        return Err(Error::InvalidParameter(format!("cannot choose {count} sparse environments among {rows}")));
    }
    if x.len() != rows * cols {
        return Err(Error::InvalidParameter(format!("leverage CUR: {} values for a {rows} × {cols} matrix", x.len())));
    }
    if !(0.0..=1.0).contains(&uniform) {
        return Err(Error::InvalidParameter(format!("leverage CUR: uniform share {uniform} (expected a number in [0, 1])")));
    }
    let (leverage, k) = leverage_scores(x, rows, cols)?;
    let mut random = LegacyRandomState::new(seed);
    let flat = count as f64 / rows as f64;
    let mut keyed: Vec<(f64, usize)> = (0..rows)
        .map(|j| {
            let p = ((1.0 - uniform) * (count as f64 * leverage[j] / k as f64) + uniform * flat).min(1.0);
            (random.random_sample() - p, j)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(keyed[..count].iter().map(|&(_, j)| j).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_full_leverage_rows_and_counts() {
        // rows 0..3 are orthogonal directions, the rest copies of row 0
        let mut x = vec![0.0; 12 * 3];
        for j in 0..12 {
            x[j * 3 + if j < 3 { j } else { 0 }] = 1.0;
        }
        for seed in 0..5 {
            let picked = leverage_cur(&x, 12, 3, 3, seed).unwrap();
            assert_eq!(picked.len(), 3);
            let mut sorted = picked.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 3);
        }
        assert!(leverage_cur(&x, 12, 3, 13, 0).is_err());
    }

    /// Against the numpy transcription (scripts/reference/leverage_cur_numpy.py):
    /// the same environments in the same order.
    #[test]
    fn matches_numpy_transcription() {
        let text = include_str!("../../../../test/fixtures/models/leverage_cur.json");
        let fixture: serde_json::Value = serde_json::from_str(text).unwrap();
        for case in fixture["cases"].as_array().unwrap() {
            let n = |k: &str| case[k].as_u64().unwrap() as usize;
            let x: Vec<f64> = case["x"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let expected: Vec<usize> = case["expected"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
            let got = leverage_cur(&x, n("rows"), n("cols"), n("count"), n("seed") as u32).unwrap();
            assert_eq!(got, expected, "rows {} cols {} count {}", n("rows"), n("cols"), n("count"));
        }
    }

    /// Against the numpy transcription (scripts/reference/mixed_leverage_numpy.py):
    /// the same environments in the same order, for uniform shares 0, ¼, ½ and 1
    /// and a block-shaped (two-species-like) matrix; share 0 is GAP's rule.
    #[test]
    fn mixed_matches_numpy_transcription() {
        let text = include_str!("../../../../test/fixtures/models/mixed_leverage_cur.json");
        let fixture: serde_json::Value = serde_json::from_str(text).unwrap();
        for case in fixture["cases"].as_array().unwrap() {
            let n = |k: &str| case[k].as_u64().unwrap() as usize;
            let uniform = case["uniform"].as_f64().unwrap();
            let x: Vec<f64> = case["x"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let expected: Vec<usize> = case["expected"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
            let got = mixed_leverage_cur(&x, n("rows"), n("cols"), n("count"), n("seed") as u32, uniform).unwrap();
            assert_eq!(got, expected, "rows {} cols {} count {} uniform {uniform}", n("rows"), n("cols"), n("count"));
            if uniform == 0.0 {
                assert_eq!(got, leverage_cur(&x, n("rows"), n("cols"), n("count"), n("seed") as u32).unwrap());
            }
            // deterministic for a seed
            assert_eq!(got, mixed_leverage_cur(&x, n("rows"), n("cols"), n("count"), n("seed") as u32, uniform).unwrap());
        }
    }

    #[test]
    fn mixed_rejects_bad_input() {
        let x = vec![1.0; 12];
        assert!(mixed_leverage_cur(&x, 4, 3, 5, 0, 0.5).unwrap_err().to_string().contains("cannot choose 5"));
        assert!(mixed_leverage_cur(&x, 4, 3, 2, 0, 1.5).unwrap_err().to_string().contains("uniform share 1.5"));
        assert!(mixed_leverage_cur(&x, 4, 3, 2, 0, f64::NAN).is_err());
        assert!(mixed_leverage_cur(&x[..11], 4, 3, 2, 0, 0.5).is_err());
    }
}
