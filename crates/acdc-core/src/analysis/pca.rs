//! Principal component analysis through the SVD of the centred matrix.
//!
//! With `X − x̄ = U S Vᵀ` (thin SVD, singular values decreasing), the first
//! `n` components are the rows of Vᵀ, the scores are `U S` (= `(X − x̄) V`),
//! and the explained variance of component c is `s_c² / (N − 1)` (the
//! unbiased sample variance of its scores, scikit-learn's convention).
//! Pearson, Phil. Mag. 2, 559 (1901), doi:10.1080/14786440109462720.
//!
//! The sign of each singular pair is arbitrary; here it is fixed so that the
//! entry of largest magnitude of each component is positive (the first such
//! entry on exact ties), which makes the result reproducible across
//! platforms and LAPACK builds.
//!
//! A full SVD costs O(N·F·min(N, F)) and a copy of the matrix, which is
//! minutes for the per-atom features of 10⁵ atoms. When few components of a
//! large matrix are asked for, they come from block subspace iteration on
//! the centred operator instead (Halko, Martinsson and Tropp, SIAM Rev. 53,
//! 217 (2011), doi:10.1137/090771806, algorithm 4.4), O(N·F·b) a sweep with a
//! block of b = n + 10 vectors, run until every wanted singular triplet has a
//! residual ‖(X − x̄)v − s·u‖ below 1e-12·s₁ — the same numbers as the full
//! SVD to that accuracy, without ever forming X − x̄.
use nalgebra::DMatrix;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::math::linalg::{svd, Dense};
use crate::math::random::LegacyRandomState;

/// Result of [`pca`].
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// Projections of the samples, `N × n`.
    pub scores: Dense,
    /// Principal directions as rows, `n × F`, orthonormal.
    pub components: Dense,
    /// Variance along each component, `n` values, decreasing.
    pub explained_variance: Vec<f64>,
    /// Total variance of the data, the sum over features of each column's
    /// unbiased variance (the denominator of explained-variance fractions).
    pub total_variance: f64,
    /// The column means that were subtracted, `F` values.
    pub mean: Vec<f64>,
}

/// The first `n` principal components of the rows of `x` (at least two).
pub fn pca(x: &Dense, n: usize) -> Result<Pca> {
    if x.rows < 2 {
        return Err(Error::InvalidParameter(format!("X has {} row (PCA needs at least 2 samples)", x.rows)));
    }
    let max = x.rows.min(x.cols);
    if n == 0 || n > max {
        return Err(Error::InvalidParameter(format!("n = {n} must be between 1 and min(rows, columns) = {max}")));
    }
    let mut mean = vec![0.0; x.cols];
    for i in 0..x.rows {
        mean.iter_mut().zip(x.row(i)).for_each(|(m, v)| *m += v);
    }
    mean.iter_mut().for_each(|m| *m /= x.rows as f64);
    let total_variance = x.data.chunks(x.cols).map(|r| r.iter().zip(&mean).map(|(v, m)| (v - m) * (v - m)).sum::<f64>()).sum::<f64>()
        / (x.rows - 1) as f64;
    if iterative(x.rows, x.cols, n) {
        if let Some(p) = pca_iterative(x, n, mean.clone(), total_variance)? {
            return Ok(p);
        }
    }
    let mut centred = x.clone();
    for row in centred.data.chunks_mut(x.cols) {
        row.iter_mut().zip(&mean).for_each(|(v, m)| *v -= m);
    }
    let d = svd(centred.to_matrix(), "the centred X")?;
    let mut components = Dense { data: vec![0.0; n * x.cols], rows: n, cols: x.cols };
    let mut scores = Dense { data: vec![0.0; x.rows * n], rows: x.rows, cols: n };
    for c in 0..n {
        let row = d.vt.row(c);
        let mut largest = 0;
        for j in 1..x.cols {
            if row[j].abs() > row[largest].abs() {
                largest = j;
            }
        }
        let sign = if row[largest] < 0.0 { -1.0 } else { 1.0 };
        for j in 0..x.cols {
            components.data[c * x.cols + j] = sign * row[j];
        }
        for i in 0..x.rows {
            scores.data[i * n + c] = sign * d.u[(i, c)] * d.s[c];
        }
    }
    let explained_variance = (0..n).map(|c| d.s[c] * d.s[c] / (x.rows - 1) as f64).collect();
    Ok(Pca { scores, components, explained_variance, total_variance, mean })
}

/// Extra vectors in the iteration block beyond the n wanted: the error of
/// the wanted subspace shrinks by (s_{b+1}/s_n)² a sweep.
const OVERSAMPLING: usize = 10;
/// Below this many multiply-adds (N·F·min(N, F)) the full SVD is quick.
const ITERATIVE_ABOVE: f64 = 2e8;
/// Residual ‖Av − s·u‖ accepted, relative to the largest singular value.
const RESIDUAL_TOLERANCE: f64 = 1e-12;
/// Sweeps before the iteration gives up and the full SVD is used.
const MAX_SWEEPS: usize = 300;
/// Rows per task of the parallel products: fixed, so that the sums are the
/// same for every thread count.
const ROW_CHUNK: usize = 256;

/// Whether [`pca`] uses subspace iteration for `n` components of `rows × cols`.
fn iterative(rows: usize, cols: usize, n: usize) -> bool {
    let small = rows.min(cols);
    n + OVERSAMPLING < small && (rows as f64) * (cols as f64) * (small as f64) > ITERATIVE_ABOVE
}

/// `(X − 1x̄ᵀ)·V` for `V` (F × b, column-major): N × b, column-major.
fn centred_times(x: &Dense, mean: &[f64], v: &DMatrix<f64>) -> DMatrix<f64> {
    let (f, b) = v.shape();
    // V row-major so that one row of X meets contiguous memory
    let mut vr = vec![0.0; f * b];
    for j in 0..f {
        for k in 0..b {
            vr[j * b + k] = v[(j, k)];
        }
    }
    let shift: Vec<f64> = (0..b).map(|k| (0..f).map(|j| mean[j] * vr[j * b + k]).sum()).collect();
    let mut rows = vec![0.0; x.rows * b];
    rows.par_chunks_mut(ROW_CHUNK * b).enumerate().for_each(|(c, out)| {
        for (r, o) in out.chunks_mut(b).enumerate() {
            let xi = x.row(c * ROW_CHUNK + r);
            for (j, &xij) in xi.iter().enumerate() {
                if xij != 0.0 {
                    let vj = &vr[j * b..(j + 1) * b];
                    o.iter_mut().zip(vj).for_each(|(o, v)| *o += xij * v);
                }
            }
            o.iter_mut().zip(&shift).for_each(|(o, s)| *o -= s);
        }
    });
    DMatrix::from_row_slice(x.rows, b, &rows)
}

/// `(X − 1x̄ᵀ)ᵀ·Q` for `Q` (N × b, column-major): F × b, column-major.
fn centred_transpose_times(x: &Dense, mean: &[f64], q: &DMatrix<f64>) -> DMatrix<f64> {
    let (n, b) = q.shape();
    let f = x.cols;
    let mut qr = vec![0.0; n * b];
    for i in 0..n {
        for k in 0..b {
            qr[i * b + k] = q[(i, k)];
        }
    }
    // per-chunk partial sums F × b (row-major), added in chunk order
    let partials: Vec<Vec<f64>> = (0..n.div_ceil(ROW_CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut acc = vec![0.0; f * b];
            for i in c * ROW_CHUNK..((c + 1) * ROW_CHUNK).min(n) {
                let qi = &qr[i * b..(i + 1) * b];
                for (j, &xij) in x.row(i).iter().enumerate() {
                    if xij != 0.0 {
                        acc[j * b..(j + 1) * b].iter_mut().zip(qi).for_each(|(a, q)| *a += xij * q);
                    }
                }
            }
            acc
        })
        .collect();
    let mut total = vec![0.0; f * b];
    for p in &partials {
        total.iter_mut().zip(p).for_each(|(t, v)| *t += v);
    }
    let column_sums: Vec<f64> = (0..b).map(|k| (0..n).map(|i| qr[i * b + k]).sum()).collect();
    for j in 0..f {
        for k in 0..b {
            total[j * b + k] -= mean[j] * column_sums[k];
        }
    }
    DMatrix::from_row_slice(f, b, &total)
}

/// The first `n` singular triplets of X − 1x̄ᵀ by block subspace iteration:
/// (s, V as F × n columns, scores (X − 1x̄ᵀ)V as N × n), or `None` when the
/// residuals did not reach the tolerance in [`MAX_SWEEPS`] sweeps.
fn leading_singular_triplets(x: &Dense, mean: &[f64], n: usize) -> Result<Option<(Vec<f64>, DMatrix<f64>, DMatrix<f64>)>> {
    let b = n + OVERSAMPLING;
    // a seeded Gaussian start: the same components on every run
    let mut rng = LegacyRandomState::new(0);
    let omega = DMatrix::from_fn(x.cols, b, |_, _| rng.gauss());
    let mut q = centred_times(x, mean, &omega).qr().q();
    for _ in 0..MAX_SWEEPS {
        // Z = AᵀQ = V_z S U_zᵀ, so B = QᵀA = U_z S V_zᵀ: its right singular
        // vectors V_z are the current estimates of A's
        let z = centred_transpose_times(x, mean, &q);
        let d = svd(z, "the subspace-iteration block")?;
        let v = d.u; // F × b
        let s = d.s;
        let u_small = d.vt.transpose(); // b × b
        let y = centred_times(x, mean, &v); // A·V_z, N × b
        let scale = s[0].max(f64::MIN_POSITIVE);
        let mut worst = 0.0f64;
        for i in 0..n {
            let u = &q * u_small.column(i);
            let r = (y.column(i) - u * s[i]).norm();
            worst = worst.max(r / scale);
        }
        if worst <= RESIDUAL_TOLERANCE {
            let values = (0..n).map(|i| s[i]).collect();
            return Ok(Some((values, v.columns(0, n).into_owned(), y.columns(0, n).into_owned())));
        }
        q = y.qr().q();
    }
    Ok(None)
}

/// The first `n` principal components by subspace iteration, with the same
/// conventions as the SVD path; `None` when the iteration did not converge.
fn pca_iterative(x: &Dense, n: usize, mean: Vec<f64>, total_variance: f64) -> Result<Option<Pca>> {
    let Some((s, v, y)) = leading_singular_triplets(x, &mean, n)? else { return Ok(None) };
    let mut components = Dense { data: vec![0.0; n * x.cols], rows: n, cols: x.cols };
    let mut scores = Dense { data: vec![0.0; x.rows * n], rows: x.rows, cols: n };
    for c in 0..n {
        let col = v.column(c);
        let mut largest = 0;
        for j in 1..x.cols {
            if col[j].abs() > col[largest].abs() {
                largest = j;
            }
        }
        let sign = if col[largest] < 0.0 { -1.0 } else { 1.0 };
        for j in 0..x.cols {
            components.data[c * x.cols + j] = sign * col[j];
        }
        for i in 0..x.rows {
            scores.data[i * n + c] = sign * y[(i, c)];
        }
    }
    let explained_variance = s.iter().map(|s| s * s / (x.rows - 1) as f64).collect();
    Ok(Some(Pca { scores, components, explained_variance, total_variance, mean }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_of_points() {
        // points on the line y = -2x: one component along ±(1, -2)/√5 with
        // the sign making -2/√5 (the largest entry) positive
        let x = Dense::new("X", vec![0.0, 0.0, 1.0, -2.0, 2.0, -4.0, 3.0, -6.0], 4, 2).unwrap();
        let p = pca(&x, 1).unwrap();
        let s5 = 5f64.sqrt();
        assert!((p.components.data[0] + 1.0 / s5).abs() < 1e-14);
        assert!((p.components.data[1] - 2.0 / s5).abs() < 1e-14);
        // variance of t·√5 for t = 0..3 around 1.5: 5 · 5/3
        assert!((p.explained_variance[0] - 25.0 / 3.0).abs() < 1e-12, "{:?}", p);
        assert!((p.scores.data[0] - 1.5 * s5).abs() < 1e-13);
        assert!(pca(&x, 3).unwrap_err().to_string().contains("n = 3"));
    }

    /// A matrix with a decaying spectrum (like SOAP features): rank-r signal
    /// with singular values 1, 1/2, 1/4, … plus small noise, rows shifted.
    fn decaying(rows: usize, cols: usize, seed: u32) -> Dense {
        let mut rng = LegacyRandomState::new(seed);
        let r = 12;
        let a: Vec<f64> = (0..rows * r).map(|_| rng.gauss()).collect();
        let b: Vec<f64> = (0..r * cols).map(|_| rng.gauss()).collect();
        let mut data = vec![0.0; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                let mut v = 3.0 + 0.1 * (j as f64);
                for k in 0..r {
                    v += a[i * r + k] * b[k * cols + j] * 0.5f64.powi(k as i32);
                }
                data[i * cols + j] = v + 1e-3 * rng.gauss();
            }
        }
        Dense::new("X", data, rows, cols).unwrap()
    }

    fn assert_same(a: &Pca, b: &Pca, tol: f64) {
        let scale = a.scores.data.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (x, y) in a.scores.data.iter().zip(&b.scores.data) {
            assert!((x - y).abs() <= tol * scale, "scores {x} vs {y}");
        }
        for (x, y) in a.components.data.iter().zip(&b.components.data) {
            assert!((x - y).abs() <= tol, "components {x} vs {y}");
        }
        for (x, y) in a.explained_variance.iter().zip(&b.explained_variance) {
            assert!((x - y).abs() <= tol * a.explained_variance[0], "variance {x} vs {y}");
        }
        assert!((a.total_variance - b.total_variance).abs() <= 1e-12 * a.total_variance);
    }

    #[test]
    fn subspace_iteration_equals_the_full_svd() {
        // tall and wide, both below the size where pca() switches, so that
        // pca() gives the full-SVD answer to compare with
        for (rows, cols, n) in [(900, 120, 2), (150, 700, 3), (400, 400, 5)] {
            assert!(!iterative(rows, cols, n));
            let x = decaying(rows, cols, rows as u32);
            let exact = pca(&x, n).unwrap();
            let it = pca_iterative(&x, n, exact.mean.clone(), exact.total_variance).unwrap().expect("converged");
            assert_same(&exact, &it, 1e-9);
        }
    }

    #[test]
    fn total_variance_is_the_sum_of_all_component_variances() {
        let x = decaying(60, 20, 7);
        let p = pca(&x, 20).unwrap();
        let sum: f64 = p.explained_variance.iter().sum();
        assert!((sum - p.total_variance).abs() <= 1e-12 * sum, "{sum} vs {}", p.total_variance);
    }

    #[test]
    fn large_matrices_take_the_iterative_path_and_keep_the_sign_convention() {
        let (rows, cols) = (6000, 200);
        assert!(iterative(rows, cols, 2));
        let x = decaying(rows, cols, 3);
        let p = pca(&x, 2).unwrap();
        for c in 0..2 {
            let row = &p.components.data[c * cols..(c + 1) * cols];
            let largest = row.iter().cloned().fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
            assert!(largest > 0.0);
            let norm: f64 = row.iter().map(|v| v * v).sum();
            assert!((norm - 1.0).abs() < 1e-12);
        }
        // scores are the projections of the centred rows on the components
        for i in [0, 17, 5999] {
            for c in 0..2 {
                let proj: f64 = (0..cols).map(|j| (x.data[i * cols + j] - p.mean[j]) * p.components.data[c * cols + j]).sum();
                assert!((proj - p.scores.data[i * 2 + c]).abs() < 1e-9 * p.explained_variance[0].sqrt());
            }
        }
        // and the same thread-count-independent numbers every run
        assert_eq!(p, pca(&x, 2).unwrap());
    }
}
