//! Dense linear algebra for models and analysis: a row-major matrix type for
//! the public boundary, and SVD, symmetric eigendecomposition and Cholesky
//! solves (nalgebra) with the checks that turn numerical trouble into
//! [`Error::Numerical`] instead of silent garbage.
//!
//! nalgebra stores matrices column-major while every array that crosses the
//! JS boundary is row-major: [`Dense::to_matrix`] and [`Dense::from_matrix`]
//! convert once, at the boundary of each algorithm.
use nalgebra::{DMatrix, DVector};

use crate::error::{Error, Result};

/// A dense row-major matrix of `rows × cols` values (no units of its own:
/// features, targets or kernel values).
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// Row-major values, `rows * cols` of them.
    pub data: Vec<f64>,
    /// Number of rows (samples).
    pub rows: usize,
    /// Number of columns (features).
    pub cols: usize,
}

impl Dense {
    /// Checks the size and that every value is finite; `name` is the
    /// argument's name in error messages.
    pub fn new(name: &str, data: Vec<f64>, rows: usize, cols: usize) -> Result<Self> {
        let expected = rows.checked_mul(cols).ok_or_else(|| Error::InvalidParameter(format!("{name}: shape [{rows}, {cols}] is too large")))?;
        if data.len() != expected {
            return Err(Error::InvalidParameter(format!(
                "{name}: shape [{rows}, {cols}] needs {expected} values, got {}",
                data.len()
            )));
        }
        if rows == 0 || cols == 0 {
            return Err(Error::InvalidParameter(format!("{name}: shape [{rows}, {cols}] is empty")));
        }
        if let Some(k) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidParameter(format!(
                "{name}[{}, {}] = {} (every value must be finite)",
                k / cols,
                k % cols,
                data[k]
            )));
        }
        Ok(Dense { data, rows, cols })
    }

    /// Row `i` as a slice.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The transpose, row-major.
    pub fn transpose(&self) -> Dense {
        let mut data = vec![0.0; self.data.len()];
        for i in 0..self.rows {
            for j in 0..self.cols {
                data[j * self.rows + i] = self.data[i * self.cols + j];
            }
        }
        Dense { data, rows: self.cols, cols: self.rows }
    }

    /// The rows `idx`, in that order.
    pub fn select_rows(&self, idx: &[usize]) -> Dense {
        let mut data = Vec::with_capacity(idx.len() * self.cols);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Dense { data, rows: idx.len(), cols: self.cols }
    }

    /// As a (column-major) nalgebra matrix.
    pub fn to_matrix(&self) -> DMatrix<f64> {
        DMatrix::from_row_slice(self.rows, self.cols, &self.data)
    }

    /// From a nalgebra matrix, back to row-major.
    pub fn from_matrix(m: &DMatrix<f64>) -> Dense {
        let (rows, cols) = m.shape();
        let mut data = Vec::with_capacity(rows * cols);
        for i in 0..rows {
            for j in 0..cols {
                data.push(m[(i, j)]);
            }
        }
        Dense { data, rows, cols }
    }
}

/// The largest matrix a computation may allocate, in elements (2³¹, 16 GiB
/// of f64): beyond it, an input-sized allocation fails with an error that
/// names the culprit instead of aborting the process.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// Checks that a `rows × cols` result can be allocated (see [`MAX_ELEMENTS`]).
pub fn check_size(rows: usize, cols: usize, what: &str) -> Result<()> {
    match rows.checked_mul(cols) {
        Some(n) if n <= MAX_ELEMENTS => Ok(()),
        _ => Err(Error::InvalidParameter(format!(
            "{what} would be a {rows} × {cols} matrix, larger than the limit of {MAX_ELEMENTS} values"
        ))),
    }
}

/// Dot product of two equally long slices.
#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A thin singular value decomposition `A = U diag(s) Vᵀ` with `s` sorted in
/// decreasing order; `u` is `m × r`, `vt` is `r × n`, `r = min(m, n)`.
#[derive(Debug, Clone)]
pub struct Svd {
    /// Left singular vectors (columns).
    pub u: DMatrix<f64>,
    /// Singular values, decreasing.
    pub s: DVector<f64>,
    /// Right singular vectors (rows).
    pub vt: DMatrix<f64>,
}

/// A bound on the QR sweeps of SVD and eigendecomposition: generous (they
/// converge in a few sweeps per value), but finite so that no input can hang.
fn max_iterations(m: usize, n: usize) -> usize {
    1000 + 100 * (m + n)
}

/// Thin SVD with both sets of singular vectors; `what` names the matrix in
/// the error raised when the iteration does not converge.
pub fn svd(a: DMatrix<f64>, what: &str) -> Result<Svd> {
    let (m, n) = a.shape();
    if m == 0 || n == 0 {
        return Err(Error::Numerical(format!("SVD of the empty matrix {what} ({m} × {n})")));
    }
    let mut svd = nalgebra::SVD::try_new(a.clone(), true, true, 5.0 * f64::EPSILON, max_iterations(m, n))
        .ok_or_else(|| Error::Numerical(format!("the SVD of {what} ({m} × {n}) did not converge")))?;
    svd.sort_by_singular_values();
    let (u, vt) = match (svd.u, svd.v_t) {
        (Some(u), Some(vt)) => (u, vt),
        _ => return Err(Error::Numerical(format!("the SVD of {what} returned no singular vectors"))),
    };
    let s = svd.singular_values;
    let norm = s.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    check_reconstruction(&a, &(&u * DMatrix::from_diagonal(&s) * &vt), norm, "SVD", what)?;
    Ok(Svd { u, s, vt })
}

/// Eigendecomposition of a symmetric matrix: eigenvalues in decreasing order
/// and the matching eigenvectors as columns.
pub fn symmetric_eigen(a: DMatrix<f64>, what: &str) -> Result<(DVector<f64>, DMatrix<f64>)> {
    let n = a.nrows();
    if n != a.ncols() {
        return Err(Error::Numerical(format!("{what} is {n} × {} (an eigendecomposition needs a square matrix)", a.ncols())));
    }
    let eig = nalgebra::SymmetricEigen::try_new(a.clone(), f64::EPSILON, max_iterations(n, n))
        .ok_or_else(|| Error::Numerical(format!("the eigendecomposition of {what} ({n} × {n}) did not converge")))?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| eig.eigenvalues[j].total_cmp(&eig.eigenvalues[i]));
    let values = DVector::from_iterator(n, order.iter().map(|&i| eig.eigenvalues[i]));
    let vectors = DMatrix::from_fn(n, n, |r, c| eig.eigenvectors[(r, order[c])]);
    let back = &vectors * DMatrix::from_diagonal(&values) * vectors.transpose();
    // only the lower triangle is read: compare with the symmetrised input
    let symmetric = (&a + a.transpose()) * 0.5;
    let norm = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    check_reconstruction(&symmetric, &back, norm, "eigendecomposition", what)?;
    Ok((values, vectors))
}

/// A decomposition that does not give its matrix back is an error: nalgebra's
/// iterations can stop on a wrong answer when asked for too tight a
/// convergence, and a wrong basis would silently corrupt every result.
///
/// `norm` is the spectral norm of `a` (its largest singular value or largest
/// |eigenvalue|): a backward-stable decomposition reconstructs `a` to a few
/// ε·‖a‖₂ per entry, times a factor growing with the size. Scaling by the
/// largest entry instead would refuse correct decompositions of tall matrices
/// (a 2000 × 448 feature matrix has ‖a‖₂ hundreds of times its largest entry).
fn check_reconstruction(a: &DMatrix<f64>, back: &DMatrix<f64>, norm: f64, kind: &str, what: &str) -> Result<()> {
    let error = (back - a).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let size = a.nrows().max(a.ncols()) as f64;
    if error.is_nan() || error > 1e-12 * size.max(10.0) * norm {
        return Err(Error::Numerical(format!(
            "the {kind} of {what} is inaccurate (largest reconstruction error {error:.3e}, spectral norm {norm:.3e})"
        )));
    }
    Ok(())
}

/// Solves `A X = B` for a symmetric positive-definite `A` by Cholesky. Fails
/// when `A` is not positive definite or when its condition number (estimated
/// from the Cholesky diagonal, a lower bound) exceeds `max_condition`: a
/// solve that loses all digits is an error, not a result.
pub fn cholesky_solve(a: DMatrix<f64>, b: &DMatrix<f64>, max_condition: f64, what: &str) -> Result<DMatrix<f64>> {
    let n = a.nrows();
    if n != a.ncols() || b.nrows() != n {
        return Err(Error::Numerical(format!("{what}: cannot solve a {n} × {} system with {} right-hand rows", a.ncols(), b.nrows())));
    }
    let chol = nalgebra::Cholesky::new(a).ok_or_else(|| {
        Error::Numerical(format!("{what} is not positive definite (add regularisation, or remove duplicated points)"))
    })?;
    let diag = chol.l_dirty().diagonal();
    let (lo, hi) = diag.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &d| (lo.min(d.abs()), hi.max(d.abs())));
    let condition = (hi / lo).powi(2);
    if !condition.is_finite() || condition > max_condition {
        return Err(Error::Numerical(format!(
            "{what} is ill-conditioned (condition number ≥ {condition:.3e}, limit {max_condition:.1e}): increase the regularisation"
        )));
    }
    Ok(chol.solve(b))
}

/// Pseudo-inverse of a symmetric matrix in factored form, from its
/// eigendecomposition: eigenvalues with `|λ| ≤ rcond · max|λ|` are dropped
/// (numpy's `pinv` rule on singular values), and the numerical rank uses
/// numpy's `matrix_rank` tolerance `max|λ| · n · ε`.
#[derive(Debug, Clone)]
pub struct SymmetricPinv {
    /// Kept eigenvectors as columns (n × r).
    pub vectors: DMatrix<f64>,
    /// Their eigenvalues (r).
    pub values: DVector<f64>,
    /// Numerical rank of the matrix.
    pub rank: usize,
}

impl SymmetricPinv {
    /// Decomposes `a` (only its symmetric part is used).
    pub fn new(a: DMatrix<f64>, rcond: f64, what: &str) -> Result<Self> {
        let n = a.nrows();
        let (values, vectors) = symmetric_eigen(a, what)?;
        let largest = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let rank = values.iter().filter(|v| v.abs() > largest * n as f64 * f64::EPSILON).count();
        let kept: Vec<usize> = (0..n).filter(|&k| values[k].abs() > rcond * largest).collect();
        let vectors = DMatrix::from_fn(n, kept.len(), |r, c| vectors[(r, kept[c])]);
        let values = DVector::from_iterator(kept.len(), kept.iter().map(|&k| values[k]));
        Ok(SymmetricPinv { vectors, values, rank })
    }

    /// `x A⁺ xᵀ` for every row x of `x`.
    pub fn quadratic_forms(&self, x: &DMatrix<f64>) -> Vec<f64> {
        let projected = x * &self.vectors;
        (0..x.nrows()).map(|i| projected.row(i).iter().zip(self.values.iter()).map(|(p, l)| p * p / l).sum()).collect()
    }

    /// The pseudo-inverse as a matrix.
    pub fn matrix(&self) -> DMatrix<f64> {
        let mut scaled = self.vectors.clone();
        for (c, &l) in self.values.iter().enumerate() {
            scaled.column_mut(c).scale_mut(1.0 / l);
        }
        scaled * self.vectors.transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(m: usize, n: usize) -> DMatrix<f64> {
        DMatrix::from_fn(m, n, |i, j| ((i * 7 + j * 3) as f64 * 0.37).sin() + 0.1 * (i as f64 - j as f64))
    }

    #[test]
    fn row_major_round_trip() {
        let d = Dense::new("X", (0..6).map(f64::from).collect(), 2, 3).unwrap();
        let m = d.to_matrix();
        assert_eq!(m[(1, 0)], 3.0);
        assert_eq!(Dense::from_matrix(&m), d);
        assert_eq!(d.transpose().transpose(), d);
        assert_eq!(d.transpose().row(2), &[2.0, 5.0]);
    }

    #[test]
    fn size_limit() {
        assert!(check_size(1 << 16, 1 << 15, "K").is_ok());
        let e = check_size(1 << 20, 1 << 20, "K").unwrap_err().to_string();
        assert!(e.contains("K would be a 1048576 × 1048576 matrix"), "{e}");
        assert!(check_size(usize::MAX, 2, "K").is_err());
    }

    #[test]
    fn rejects_bad_arrays() {
        let e = Dense::new("X", vec![1.0, f64::NAN], 1, 2).unwrap_err();
        assert!(e.to_string().contains("X[0, 1] = NaN"), "{e}");
        let e = Dense::new("Y", vec![1.0; 5], 2, 3).unwrap_err();
        assert!(e.to_string().contains("Y: shape [2, 3] needs 6 values, got 5"), "{e}");
    }

    #[test]
    fn svd_reconstructs_sorted() {
        for (m, n) in [(7, 4), (4, 7), (5, 5)] {
            let a = sample(m, n);
            let d = svd(a.clone(), "A").unwrap();
            assert!(d.s.as_slice().windows(2).all(|w| w[0] >= w[1]));
            let back = &d.u * DMatrix::from_diagonal(&d.s) * &d.vt;
            assert!((back - a).abs().max() < 1e-13);
        }
    }

    #[test]
    fn rank_one_svd() {
        // a case where nalgebra with a convergence threshold of 1 ε returns
        // a wrong U: the threshold used here must give the exact answer
        let a = DMatrix::from_row_slice(4, 2, &[-1.5, 3.0, -0.5, 1.0, 0.5, -1.0, 1.5, -3.0]);
        let d = svd(a, "A").unwrap();
        assert!((d.s[0] - 5.0).abs() < 1e-14 && d.s[1].abs() < 1e-14);
        assert!((d.u[(0, 0)].abs() - 0.3 * 5f64.sqrt()).abs() < 1e-14);
    }

    #[test]
    fn eigen_and_pinv() {
        let b = sample(6, 3);
        let a = &b * b.transpose(); // rank 3
        let (vals, vecs) = symmetric_eigen(a.clone(), "A").unwrap();
        assert!(vals.as_slice().windows(2).all(|w| w[0] >= w[1]));
        let back = &vecs * DMatrix::from_diagonal(&vals) * vecs.transpose();
        assert!((back - &a).abs().max() < 1e-12);
        let pinv = SymmetricPinv::new(a.clone(), 1e-15, "A").unwrap();
        assert_eq!(pinv.rank, 3);
        // Moore–Penrose: A A⁺ A = A, and the quadratic forms use A⁺
        let p = pinv.matrix();
        assert!((&a * &p * &a - &a).abs().max() < 1e-10);
        let x = sample(2, 6);
        let q = pinv.quadratic_forms(&x);
        let direct = &x * &p * x.transpose();
        assert!((q[0] - direct[(0, 0)]).abs() < 1e-10 * direct[(0, 0)].abs() && (q[1] - direct[(1, 1)]).abs() < 1e-10 * direct[(1, 1)].abs());
    }

    #[test]
    fn cholesky_checks_conditioning() {
        let b = sample(5, 5);
        let a = &b * b.transpose() + DMatrix::identity(5, 5);
        let rhs = sample(5, 2);
        let x = cholesky_solve(a.clone(), &rhs, 1e12, "K").unwrap();
        assert!((&a * x - &rhs).abs().max() < 1e-12);
        let singular = sample(5, 2) * sample(5, 2).transpose();
        assert!(cholesky_solve(singular, &rhs, 1e12, "K").is_err());
    }
}
