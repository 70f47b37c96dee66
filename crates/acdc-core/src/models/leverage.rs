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
use rayon::prelude::*;

use crate::budget::MemoryBudget;
use crate::error::{Error, Result};
use crate::math::qr_fold::fold_rows;
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
///
/// A tall matrix (the usual case: thousands of environments, a few hundred
/// features) goes through its triangular factor: X = QR (rows folded into R
/// by [`fold_rows`], Householder, split across the rayon pool column by
/// column), R = U_R S Vᵀ (a cols × cols SVD, V only), and the rows of U_k =
/// X V_k S_k⁻¹ (a product split across the pool by rows). X and R have the
/// same singular values and right singular vectors, so k, the count of
/// singular values above GAP's tolerance, is the same, and ℓ_j agrees with
/// the SVD of X to rounding (ε·s_1/s_k relative, ≤ 1e-11 for the Cu–Au sets
/// of docs/MODELS.md). Why: the SVD of the whole X with U (Golub–Kahan on
/// rows × cols, serial) was a third of a sparse-GPR fit on one thread, and it
/// did not use the second core; the fold and the product are ~2Nd² and Nd·k
/// multiply-adds on every core, and the SVD left is of a cols × cols matrix.
/// A wide or square matrix (fewer environments than features, e.g. a rare
/// species) is decomposed as it is.
fn leverage_scores(x: &[f64], rows: usize, cols: usize) -> Result<(Vec<f64>, usize)> {
    if rows <= cols {
        return leverage_scores_direct(x, rows, cols);
    }
    let n = cols;
    let block = n.max(FOLD_ROWS);
    // R, the folded block (column-major) and V, Vᵀ and the SVD's work of the cols × cols R
    MemoryBudget::global().check("the SVD of the sparse-selection matrix", ((4 * n * n + block * n + 2 * rows) * 8) as f64)?;
    let mut r = vec![0.0; n * n];
    let mut qtb = vec![0.0; n];
    let mut a = vec![0.0; block * n];
    let mut b = vec![0.0; block];
    for chunk in x.chunks(block * n) {
        let p = chunk.len() / n;
        for (i, row) in chunk.chunks_exact(n).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                a[j * p + i] = v;
            }
        }
        b[..p].fill(0.0);
        fold_rows(&mut r, &mut qtb, &mut a[..p * n], &mut b[..p], n, p);
    }
    // the strict lower triangle of r was never written: zeros
    let svd = DMatrix::from_column_slice(n, n, &r).svd(false, true);
    let vt = svd.v_t.as_ref().ok_or_else(|| Error::Numerical("leverage CUR: the SVD did not converge".into()))?;
    let s = &svd.singular_values;
    let (order, k) = leading_directions(s.as_slice())?;
    // W = V_k S_k⁻¹ (cols × k), ℓ_j = ‖x_j W‖²
    let w = DMatrix::from_fn(n, k, |i, c| vt[(order[c], i)] / s[order[c]]);
    let mut leverage = vec![0.0; rows];
    leverage.par_chunks_mut(PRODUCT_ROWS).zip(x.par_chunks(PRODUCT_ROWS * n)).for_each(|(out, xs)| {
        let u = DMatrix::from_row_slice(out.len(), n, xs) * &w;
        for (j, l) in out.iter_mut().enumerate() {
            *l = u.row(j).iter().map(|v| v * v).sum();
        }
    });
    Ok((leverage, k))
}

/// Rows folded into R at a time (at least the number of features): each
/// fold costs ~2·p·cols² multiply-adds on a p × cols block that stays in L2.
const FOLD_ROWS: usize = 256;

/// Rows of U_k formed per task of the leverage product.
const PRODUCT_ROWS: usize = 256;

/// The indices of the singular values `s` from the largest down
/// (nalgebra does not promise an order) and GAP's k = max(1, ⌊#(s > 1e-13)/2⌋).
fn leading_directions(s: &[f64]) -> Result<(Vec<usize>, usize)> {
    if s.iter().any(|v| !v.is_finite()) {
        return Err(Error::Numerical("leverage CUR: the SVD did not converge".into()));
    }
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
    let nonzero = s.iter().filter(|&&v| v > TOL_SVD).count();
    Ok((order, (nonzero / 2).max(1)))
}

/// [`leverage_scores`] by the SVD of `x` itself, with U.
fn leverage_scores_direct(x: &[f64], rows: usize, cols: usize) -> Result<(Vec<f64>, usize)> {
    let k_max = rows.min(cols);
    MemoryBudget::global().check("the SVD of the sparse-selection matrix", ((2 * rows * cols + rows * k_max) * 8) as f64)?;
    let m = DMatrix::from_row_slice(rows, cols, x);
    let svd = m.svd(true, false);
    let u = svd.u.as_ref().ok_or_else(|| Error::Numerical("leverage CUR: the SVD did not converge".into()))?;
    let (order, k) = leading_directions(svd.singular_values.as_slice())?;
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

    /// The tall path (R by folding, the SVD of R, U_k = X V_k S_k⁻¹) gives
    /// the leverage and k of the SVD of X itself: full-rank, low-rank (k from
    /// the count of non-zero singular values), with duplicated rows, more rows
    /// than one fold and than one product task, at any thread count.
    #[test]
    fn tall_path_equals_the_svd_of_the_whole_matrix() {
        let mut random = crate::math::random::xorshift_uniform(7);
        for &(rows, cols, rank) in &[(40, 6, 6), (300, 20, 7), (700, 33, 33), (1100, 48, 19)] {
            let a: Vec<f64> = (0..rows * rank).map(|_| random() - 0.5).collect();
            let b: Vec<f64> = (0..rank * cols).map(|_| random() - 0.5).collect();
            let mut x = vec![0.0; rows * cols];
            for i in 0..rows {
                // every fifth row repeats the one before (duplicate environments)
                let src = if i % 5 == 4 { i - 1 } else { i };
                for j in 0..cols {
                    x[i * cols + j] = (0..rank).map(|r| a[src * rank + r] * b[r * cols + j]).sum();
                }
                let norm = x[i * cols..(i + 1) * cols].iter().map(|v| v * v).sum::<f64>().sqrt();
                x[i * cols..(i + 1) * cols].iter_mut().for_each(|v| *v /= norm);
            }
            let (direct, k_direct) = leverage_scores_direct(&x, rows, cols).unwrap();
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let (tall, k) = pool.install(|| leverage_scores(&x, rows, cols)).unwrap();
                assert_eq!(k, k_direct, "{rows} × {cols}, rank {rank}");
                assert_eq!(k, (rank / 2).max(1));
                for (j, (t, d)) in tall.iter().zip(&direct).enumerate() {
                    assert!((t - d).abs() <= 1e-11, "{rows} × {cols} rank {rank}, row {j}: {t} against {d}");
                }
                // the leverages of the k directions sum to k
                assert!((tall.iter().sum::<f64>() - k as f64).abs() < 1e-9);
            }
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
