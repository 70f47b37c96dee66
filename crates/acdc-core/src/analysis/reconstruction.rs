//! Feature reconstruction measures between two representations X and Y of
//! the same samples (Goscinski, Fraux, Imbalzano & Ceriotti, Mach. Learn.:
//! Sci. Technol. 2, 025028 (2021), doi:10.1088/2632-2153/abdaf7), with the
//! conventions of scikit-matter 0.4.1 so that the same numbers come out.
//!
//! **Preparation.** The samples are split into train and test rows. X and Y
//! are each centred by their column means on the train rows and divided by
//! one scalar, the square root of their total (population) variance on the
//! train rows; both train and test rows are transformed. A total variance
//! below 10⁻¹² is an error.
//!
//! **Regression.** A linear map W (no intercept) from X to Y is fit on the
//! train rows by truncated-SVD least squares: `W = V_r S_r⁻¹ U_rᵀ Y`, keeping
//! the singular values `s > α · s_max`. α is chosen among 20 values
//! geometrically spaced in [10⁻⁹, 0.9] by 2-fold cross-validation on the
//! train rows (folds from a shuffle with seed 0x5F3759DF, numpy's MT19937;
//! `s_max` = the largest singular value of either fold; score = mean over
//! the two directions of −(mean over outputs of the per-output RMSE); the
//! first best α wins).
//!
//! **Measures.** `n_test` is the number of test rows.
//! - GFRE = ‖Y_test − X_test W‖_F / √n_test.
//! - GFRD = ‖X_test Q − X_test W‖_F / √n_test, with Q the orthogonal
//!   Procrustes map from X_train to X_train W: `Q = U Vᵀ` from the thin SVD
//!   `X_trainᵀ X_train W = U Σ Vᵀ`, a d_X × d_Y matrix with orthonormal rows
//!   (d_X ≤ d_Y) or columns (d_X > d_Y). For d_Y ≥ d_X this is exactly
//!   scikit-matter's zero-padded Procrustes. For d_Y < d_X scikit-matter
//!   0.4.1 fails (it subtracts a d_X-column prediction from a d_Y-column
//!   one); zero-padding Y to d_X columns, the padded rotation is not unique,
//!   but its first d_Y columns are (they are the Q above), so GFRD compares
//!   the two maps inside Y's space. When `X_trainᵀ X_train W` has rank
//!   below min(d_X, d_Y) (fewer training rows than features, or singular
//!   values dropped by the regression) no rotation is unique (scikit-matter
//!   then returns whatever its LAPACK's SVD completes); Q is then the
//!   partial isometry `U_r V_rᵀ` on the r non-zero singular values, which
//!   acts, like W, on the span of the training data only.
//! - LFRE: for each test point, its `k` nearest train points (squared
//!   Euclidean distance on the scaled X, ties by index) are centred by their
//!   own means and the same regression is fit on them; the error of
//!   `ỹ = ȳ + (x − x̄) W` is accumulated as `√(mean ‖y − ỹ‖²)`.
//!
//! **Split.** Both given: used as given (order matters: the folds shuffle
//! positions). One given: the other is every remaining index, ascending.
//! Neither: scikit-learn's `train_test_split(test_size=0.5, train_size=0.5,
//! random_state=0x5F3759DF)`, i.e. a numpy MT19937 permutation p of the n
//! indices, test = p[..⌈n/2⌉], train = p[⌈n/2⌉..].
use nalgebra::DMatrix;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::math::linalg::{dot, svd, Dense};
use crate::math::random::LegacyRandomState;

/// The seed scikit-matter uses for the default split and the folds.
const SEED: u32 = 0x5F3759DF;

/// Train and test rows; `None` for a side that is not given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    /// Rows used to fit (scaling, regression, neighbours).
    pub train: Option<Vec<usize>>,
    /// Rows on which the error is measured.
    pub test: Option<Vec<usize>>,
}

/// scikit-matter's default split of `n` samples: (train, test).
pub fn default_split(n: usize) -> Result<(Vec<usize>, Vec<usize>)> {
    if n > u32::MAX as usize {
        return Err(Error::InvalidParameter(format!("{n} samples are too many for the default split")));
    }
    let p = LegacyRandomState::new(SEED).permutation(n);
    let n_test = n.div_ceil(2);
    Ok((p[n_test..n_test + n / 2].to_vec(), p[..n_test].to_vec()))
}

/// The 2-fold split of `n` rows (scikit-learn's shuffled `KFold`): both
/// folds in ascending order; the first holds ⌊n/2⌋ rows.
pub fn two_folds(n: usize) -> (Vec<usize>, Vec<usize>) {
    let p = LegacyRandomState::new(SEED).permutation(n);
    let n_second = n.div_ceil(2);
    let mut first = p[n_second..].to_vec();
    let mut second = p[..n_second].to_vec();
    first.sort_unstable();
    second.sort_unstable();
    (first, second)
}

fn check_indices(name: &str, idx: &[usize], n: usize) -> Result<()> {
    if idx.is_empty() {
        return Err(Error::InvalidParameter(format!("{name} is empty")));
    }
    let mut seen = vec![false; n];
    for (k, &i) in idx.iter().enumerate() {
        if i >= n {
            return Err(Error::InvalidParameter(format!("{name}[{k}] = {i} is out of range (there are {n} samples)")));
        }
        if seen[i] {
            return Err(Error::InvalidParameter(format!("{name}[{k}] = {i} is repeated")));
        }
        seen[i] = true;
    }
    Ok(())
}

/// Resolves the split of `n` samples into (train, test).
pub fn resolve_split(n: usize, split: &Split) -> Result<(Vec<usize>, Vec<usize>)> {
    let rest = |given: &[usize]| -> Vec<usize> {
        let mut used = vec![false; n];
        given.iter().for_each(|&i| used[i] = true);
        (0..n).filter(|&i| !used[i]).collect()
    };
    let (train, test) = match (&split.train, &split.test) {
        (None, None) => default_split(n)?,
        (Some(train), None) => {
            check_indices("trainIdx", train, n)?;
            (train.clone(), rest(train))
        }
        (None, Some(test)) => {
            check_indices("testIdx", test, n)?;
            (rest(test), test.clone())
        }
        (Some(train), Some(test)) => (train.clone(), test.clone()),
    };
    check_indices("trainIdx", &train, n)?;
    check_indices("testIdx", &test, n)?;
    if train.len() < 2 {
        return Err(Error::InvalidParameter(format!("trainIdx has {} sample (at least 2 are needed)", train.len())));
    }
    Ok((train, test))
}

/// Centres by the train rows' column means and divides by the square root of
/// their total variance: returns the scaled (train, test) matrices.
fn standardise(name: &str, m: &Dense, train: &[usize], test: &[usize]) -> Result<(DMatrix<f64>, DMatrix<f64>)> {
    let tr = m.select_rows(train);
    let mut mean = vec![0.0; m.cols];
    for i in 0..tr.rows {
        mean.iter_mut().zip(tr.row(i)).for_each(|(a, v)| *a += v);
    }
    mean.iter_mut().for_each(|a| *a /= tr.rows as f64);
    let mut var = vec![0.0; m.cols];
    for i in 0..tr.rows {
        for ((s, v), a) in var.iter_mut().zip(tr.row(i)).zip(&mean) {
            *s += (v - a) * (v - a);
        }
    }
    let total: f64 = var.iter().map(|s| s / tr.rows as f64).sum();
    if total < 1e-12 {
        return Err(Error::InvalidParameter(format!(
            "{name} has a total variance of {total:e} on the training rows (constant features cannot be scaled)"
        )));
    }
    let scale = total.sqrt();
    let transform = |rows: &[usize]| DMatrix::from_fn(rows.len(), m.cols, |i, j| (m.data[rows[i] * m.cols + j] - mean[j]) / scale);
    Ok((transform(train), transform(test)))
}

/// −(mean over outputs of the per-output RMSE).
fn neg_rmse(truth: &DMatrix<f64>, prediction: &DMatrix<f64>) -> f64 {
    let n = truth.nrows() as f64;
    let t = truth.ncols();
    let total: f64 = (0..t)
        .map(|c| {
            let mse: f64 = truth.column(c).iter().zip(prediction.column(c).iter()).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / n;
            mse.sqrt()
        })
        .sum();
    -total / t as f64
}

/// The 20 relative regularisations, numpy's `geomspace(1e-9, 0.9, 20)`.
fn alphas() -> [f64; 20] {
    let (lo, hi) = (1e-9f64.log10(), 0.9f64.log10());
    let step = (hi - lo) / 19.0;
    let mut a = [0.0; 20];
    for (i, v) in a.iter_mut().enumerate() {
        *v = 10f64.powf(i as f64 * step + lo);
    }
    a[0] = 1e-9;
    a[19] = 0.9;
    a
}

fn rows_of(m: &DMatrix<f64>, idx: &[usize]) -> DMatrix<f64> {
    DMatrix::from_fn(idx.len(), m.ncols(), |i, j| m[(idx[i], j)])
}

/// A linear map kept factored, `W = V_r diag(1/s_r) U_rᵀ Y = A B` with `A`
/// (d_X × r) and `B` (r × d_Y): with many features, forming the d_X × d_Y
/// matrix W costs more than everything else.
struct LinearMap {
    a: DMatrix<f64>,
    b: DMatrix<f64>,
}

impl LinearMap {
    fn apply(&self, x: &DMatrix<f64>) -> DMatrix<f64> {
        (x * &self.a) * &self.b
    }
}

/// `(XV)[:, ..keep] diag(1/s) (Uᵀy)[..keep, :]`: the truncated-SVD prediction.
fn truncated_predict(xv: &DMatrix<f64>, s: &nalgebra::DVector<f64>, uty: &DMatrix<f64>, keep: usize) -> DMatrix<f64> {
    let mut left = xv.columns(0, keep).into_owned();
    for c in 0..keep {
        left.column_mut(c).scale_mut(1.0 / s[c]);
    }
    left * uty.rows(0, keep)
}

/// Truncated-SVD least squares with the cut chosen by 2-fold cross
/// validation: the map W (d_X × d_Y) with `Y ≈ X W`.
fn ridge_2fold(x: &DMatrix<f64>, y: &DMatrix<f64>) -> Result<LinearMap> {
    let n = x.nrows();
    if n < 2 {
        return Err(Error::InvalidParameter(format!("the regression needs at least 2 samples, got {n}")));
    }
    let (f1, f2) = two_folds(n);
    let (x1, x2, y1, y2) = (rows_of(x, &f1), rows_of(x, &f2), rows_of(y, &f1), rows_of(y, &f2));
    let d1 = svd(x1.clone(), "the first cross-validation fold")?;
    let d2 = svd(x2.clone(), "the second cross-validation fold")?;
    let rcond = n.max(x.ncols()) as f64 * f64::EPSILON;
    let n1 = d1.s.iter().filter(|&&s| s > rcond).count();
    let n2 = d2.s.iter().filter(|&&s| s > rcond).count();
    // projections kept once, as scikit-matter does: Uᵀy and X_other V
    let uty1 = d1.u.transpose() * &y1;
    let uty2 = d2.u.transpose() * &y2;
    let x2v1 = &x2 * d1.vt.transpose();
    let x1v2 = &x1 * d2.vt.transpose();
    let smax = d1.s[0].max(d2.s[0]);
    let scaled: Vec<f64> = alphas().iter().map(|a| a * smax).collect();
    let mut cache: Vec<((usize, usize), f64)> = Vec::new();
    let mut best = (f64::NEG_INFINITY, 0usize);
    for (k, &alpha) in scaled.iter().enumerate() {
        let k1 = n1.min(d1.s.iter().filter(|&&s| s > alpha).count());
        let k2 = n2.min(d2.s.iter().filter(|&&s| s > alpha).count());
        // equal cuts give bit-equal losses, so ties resolve as in numpy
        let loss = match cache.iter().find(|(key, _)| *key == (k1, k2)) {
            Some(&(_, l)) => l,
            None => {
                let l = (neg_rmse(&y2, &truncated_predict(&x2v1, &d1.s, &uty1, k1))
                    + neg_rmse(&y1, &truncated_predict(&x1v2, &d2.s, &uty2, k2)))
                    / 2.0;
                cache.push(((k1, k2), l));
                l
            }
        };
        if k == 0 || loss > best.0 {
            best = (loss, k);
        }
    }
    let alpha = scaled[best.1];
    let d = svd(x.clone(), "the training features")?;
    let keep = d.s.iter().filter(|&&s| s > alpha).count();
    let mut a = d.vt.rows(0, keep).transpose();
    for c in 0..keep {
        a.column_mut(c).scale_mut(1.0 / d.s[c]);
    }
    let b = d.u.columns(0, keep).transpose() * y;
    Ok(LinearMap { a, b })
}

fn check_pair(x: &Dense, y: &Dense) -> Result<()> {
    if x.rows != y.rows {
        return Err(Error::InvalidParameter(format!("X has {} rows but Y has {} (one row per sample in both)", x.rows, y.rows)));
    }
    Ok(())
}

struct Prepared {
    x_train: DMatrix<f64>,
    x_test: DMatrix<f64>,
    y_train: DMatrix<f64>,
    y_test: DMatrix<f64>,
}

fn prepare(x: &Dense, y: &Dense, split: &Split) -> Result<Prepared> {
    check_pair(x, y)?;
    let (train, test) = resolve_split(x.rows, split)?;
    let (x_train, x_test) = standardise("X", x, &train, &test)?;
    let (y_train, y_test) = standardise("Y", y, &train, &test)?;
    Ok(Prepared { x_train, x_test, y_train, y_test })
}

fn rms_rows(m: &DMatrix<f64>) -> f64 {
    (m.iter().map(|v| v * v).sum::<f64>() / m.nrows() as f64).sqrt()
}

/// Global feature reconstruction error of Y from X (dimensionless: both are
/// scaled to unit total variance).
pub fn gfre(x: &Dense, y: &Dense, split: &Split) -> Result<f64> {
    let p = prepare(x, y, split)?;
    let w = ridge_2fold(&p.x_train, &p.y_train)?;
    Ok(rms_rows(&(&p.y_test - w.apply(&p.x_test))))
}

/// Global feature reconstruction distortion of the map X → Y: how far the
/// best linear map is from the best orthogonal one (dimensionless).
pub fn gfrd(x: &Dense, y: &Dense, split: &Split) -> Result<f64> {
    let p = prepare(x, y, split)?;
    let w = ridge_2fold(&p.x_train, &p.y_train)?;
    let q = ProcrustesMap::new(&p.x_train, &w.apply(&p.x_train))?;
    Ok(rms_rows(&(q.apply(&p.x_test) - w.apply(&p.x_test))))
}

/// The orthogonal Procrustes map between the training rows A and their
/// images B: the polar factor `Q = U_r V_rᵀ` of `M = Aᵀ B = U Σ Vᵀ` on its
/// r non-zero singular values. With `r = min(d_X, d_Y)` it is the unique
/// semi-orthogonal maximiser of tr(Qᵀ M); with a rank-deficient M (fewer
/// training rows than features, or a regression that dropped singular
/// values) every orthogonal solution agrees with it on the span of the
/// training data and differs only outside it, where the ridge map is zero
/// too, so the partial isometry is the reproducible choice.
///
/// M is never formed: with `A = U_a S_a V_aᵀ` and `B = U_b S_b V_bᵀ` (thin),
/// `M = V_a C V_bᵀ` with the small `C = S_a U_aᵀ U_b S_b`, and the SVD of C
/// gives M's.
struct ProcrustesMap {
    left: DMatrix<f64>,
    right: DMatrix<f64>,
}

impl ProcrustesMap {
    fn new(a: &DMatrix<f64>, b: &DMatrix<f64>) -> Result<Self> {
        let da = svd(a.clone(), "the scaled training features")?;
        let db = svd(b.clone(), "the reconstructed training targets")?;
        let mut c = da.u.transpose() * &db.u;
        for (i, &s) in da.s.iter().enumerate() {
            c.row_mut(i).scale_mut(s);
        }
        for (j, &s) in db.s.iter().enumerate() {
            c.column_mut(j).scale_mut(s);
        }
        let dc = svd(c, "the Procrustes matrix")?;
        let tol = dc.s[0] * a.ncols().max(b.ncols()) as f64 * f64::EPSILON;
        let r = dc.s.iter().filter(|&&s| s > tol).count();
        // x Q = ((x V_a) P_r)(R_rᵀ V_bᵀ)
        let left = da.vt.transpose() * dc.u.columns(0, r);
        let right = dc.vt.rows(0, r) * &db.vt;
        Ok(ProcrustesMap { left, right })
    }

    fn apply(&self, x: &DMatrix<f64>) -> DMatrix<f64> {
        (x * &self.left) * &self.right
    }
}

/// Local feature reconstruction error of Y from X with `n_local` neighbours
/// per test point (dimensionless).
pub fn lfre(x: &Dense, y: &Dense, n_local: usize, split: &Split) -> Result<f64> {
    let p = prepare(x, y, split)?;
    let n_train = p.x_train.nrows();
    if n_local < 2 || n_local > n_train {
        return Err(Error::InvalidParameter(format!(
            "nLocalPoints = {n_local} must be between 2 and the number of training samples ({n_train})"
        )));
    }
    let rows = |m: &DMatrix<f64>| -> Vec<Vec<f64>> { (0..m.nrows()).map(|i| m.row(i).iter().copied().collect()).collect() };
    let (xtr, xte) = (rows(&p.x_train), rows(&p.x_test));
    let norms: Vec<f64> = xtr.iter().map(|r| dot(r, r)).collect();
    let errors: Vec<f64> = (0..xte.len())
        .into_par_iter()
        .map(|i| -> Result<f64> {
            let xi = &xte[i];
            let ni = dot(xi, xi);
            let d: Vec<f64> = xtr.iter().zip(&norms).map(|(r, &nr)| nr + ni - 2.0 * dot(xi, r)).collect();
            let mut order: Vec<usize> = (0..n_train).collect();
            order.sort_by(|&a, &b| d[a].total_cmp(&d[b]).then(a.cmp(&b)));
            order.truncate(n_local);
            let lx = rows_of(&p.x_train, &order);
            let ly = rows_of(&p.y_train, &order);
            let mx = lx.row_mean();
            let my = ly.row_mean();
            let cx = DMatrix::from_fn(n_local, lx.ncols(), |r, c| lx[(r, c)] - mx[c]);
            let cy = DMatrix::from_fn(n_local, ly.ncols(), |r, c| ly[(r, c)] - my[c]);
            let w = ridge_2fold(&cx, &cy)?;
            let dx = DMatrix::from_row_slice(1, mx.len(), (p.x_test.row(i) - &mx).as_slice());
            let predicted = my + w.apply(&dx);
            let e = p.y_test.row(i) - predicted;
            Ok(e.iter().map(|v| v * v).sum())
        })
        .collect::<Result<_>>()?;
    Ok((errors.iter().sum::<f64>() / errors.len() as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_permutation() {
        // numpy: np.random.RandomState(0x5F3759DF).permutation(7) and the
        // split / folds scikit-learn derives from it
        let (train, test) = default_split(7).unwrap();
        assert_eq!(train, vec![3, 1, 4]);
        assert_eq!(test, vec![5, 6, 2, 0]);
        assert_eq!(two_folds(7), (vec![1, 3, 4], vec![0, 2, 5, 6]));
    }

    fn data() -> (Dense, Dense) {
        let n = 16;
        let x: Vec<f64> = (0..n * 3).map(|k| ((k * 13 % 17) as f64 * 0.7).sin()).collect();
        let x = Dense::new("X", x, n, 3).unwrap();
        let mut y = Vec::new();
        for i in 0..n {
            let r = x.row(i);
            y.extend_from_slice(&[2.0 * r[0] - r[1], r[2] + 0.5 * r[0], 3.0 * r[1]]);
        }
        (x, Dense::new("Y", y, n, 3).unwrap())
    }

    #[test]
    fn linear_targets_are_reconstructed() {
        let (x, y) = data();
        let split = Split::default();
        assert!(gfre(&x, &y, &split).unwrap() < 1e-12);
        // an invertible, non-orthogonal map has a distortion; a rotation not
        assert!(gfrd(&x, &y, &split).unwrap() > 1e-3);
        let mut rot = Vec::new();
        for i in 0..x.rows {
            let r = x.row(i);
            rot.extend_from_slice(&[r[1], -r[0], r[2]]);
        }
        let rot = Dense::new("Y", rot, x.rows, 3).unwrap();
        assert!(gfrd(&x, &rot, &split).unwrap() < 1e-12);
        assert!(lfre(&x, &y, 6, &split).unwrap() < 1e-12);
    }

    #[test]
    fn rejects_bad_inputs() {
        let (x, y) = data();
        let short = Dense::new("Y", vec![1.0; 6], 2, 3).unwrap();
        assert!(gfre(&x, &short, &Split::default()).unwrap_err().to_string().contains("X has 16 rows but Y has 2"));
        let constant = Dense::new("Y", vec![1.0; 48], 16, 3).unwrap();
        assert!(gfre(&x, &constant, &Split::default()).unwrap_err().to_string().contains("Y has a total variance"));
        let e = lfre(&x, &y, 9, &Split::default()).unwrap_err().to_string();
        assert!(e.contains("nLocalPoints = 9") && e.contains("(8)"), "{e}");
        let split = Split { train: Some(vec![0, 1, 16]), test: None };
        assert!(gfre(&x, &y, &split).unwrap_err().to_string().contains("trainIdx[2] = 16"));
    }
}
