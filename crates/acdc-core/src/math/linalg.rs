//! Dense linear algebra for models and analysis: a row-major matrix type for
//! the public boundary, and SVD and symmetric eigendecomposition (Jacobi,
//! accurate to ε·‖A‖ on rank-deficient input) and Cholesky solves
//! (nalgebra) with the checks that turn numerical trouble into
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

/// A bound on the Jacobi sweeps of SVD and eigendecomposition: they
/// converge quadratically in 5–15 sweeps; the bound only makes sure that no
/// input can hang.
const MAX_SWEEPS: usize = 80;

/// Thin SVD with both sets of singular vectors; `what` names the matrix in
/// the errors.
///
/// Why not nalgebra's SVD: its Golub–Kahan iteration stops on answers that
/// reconstruct a rank-deficient matrix (a CUR residual, a centred feature
/// matrix with duplicate rows) to 10⁻¹⁰–10⁻⁵ of its norm instead of ε. This
/// is the one-sided Jacobi SVD (Hestenes 1958; Demmel & Veselić, SIAM J.
/// Matrix Anal. Appl. 13, 1204 (1992)) applied to the triangular factor of a
/// Householder QR of the tall side (`A = QR`, `R = U_R Σ Vᵀ`, `U = Q U_R`):
/// plane rotations make the columns of `R V` mutually orthogonal to m·ε, so
/// `A − U Σ Vᵀ` is a few ε·‖A‖ per entry whatever the rank, and `V` is
/// orthogonal to ε. The columns of `U` for a zero singular value are
/// completed to an orthonormal set (standard basis vectors farthest from the
/// span of the others, orthogonalised twice).
pub fn svd(a: DMatrix<f64>, what: &str) -> Result<Svd> {
    let (m, n) = a.shape();
    if m == 0 || n == 0 {
        return Err(Error::Numerical(format!("SVD of the empty matrix {what} ({m} × {n})")));
    }
    if let Some(v) = a.iter().find(|v| !v.is_finite()) {
        return Err(Error::Numerical(format!("{what} contains {v} (an SVD needs finite values)")));
    }
    if m < n {
        let t = svd_tall(&a.transpose(), what)?;
        let out = Svd { u: t.vt.transpose(), s: t.s, vt: t.u.transpose() };
        check_svd(&a, &out, what)?;
        return Ok(out);
    }
    let out = svd_tall(&a, what)?;
    check_svd(&a, &out, what)?;
    Ok(out)
}

fn check_svd(a: &DMatrix<f64>, d: &Svd, what: &str) -> Result<()> {
    let norm = d.s.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    check_reconstruction(a, &(&d.u * DMatrix::from_diagonal(&d.s) * &d.vt), norm, "SVD", what)
}

/// SVD of an m × n matrix with m ≥ n.
fn svd_tall(a: &DMatrix<f64>, what: &str) -> Result<Svd> {
    let (m, n) = a.shape();
    // a square matrix is rotated directly; a tall one through its R factor
    let (q, mut g) = if m > n {
        let qr = a.clone().qr();
        (Some(qr.q()), qr.r())
    } else {
        (None, a.clone())
    };
    let mut v = DMatrix::<f64>::identity(n, n);
    jacobi_columns(&mut g, &mut v, what)?;
    // Σ and U_R from the orthogonal columns of R V, sorted by decreasing σ
    let norms: Vec<f64> = (0..n).map(|j| g.column(j).norm()).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| norms[j].total_cmp(&norms[i]).then(i.cmp(&j)));
    let s = DVector::from_iterator(n, order.iter().map(|&j| norms[j]));
    let rows = g.nrows();
    let mut ur = DMatrix::<f64>::zeros(rows, n);
    let mut missing = Vec::new();
    for (c, &j) in order.iter().enumerate() {
        if norms[j] > 0.0 {
            ur.set_column(c, &(g.column(j) / norms[j]));
        } else {
            missing.push(c);
        }
    }
    complete_orthonormal(&mut ur, &missing);
    let vt = DMatrix::from_fn(n, n, |r, c| v[(c, order[r])]);
    let u = match q {
        Some(q) => q * ur,
        None => ur,
    };
    Ok(Svd { u, s, vt })
}

/// One-sided Jacobi: rotates pairs of columns of `g` (and of `v`) until
/// every pair is orthogonal to rows·ε relative to the product of their norms.
///
/// Two rules keep rounding from rotating forever: a pair counts as
/// orthogonal when |g_p·g_q| ≤ rows·ε·‖g_p‖‖g_q‖ (the rounding error of the
/// dot product itself), and a column whose norm falls to ε·‖G‖_F is set to
/// zero (it is rounding noise; dropping it changes A by at most that much,
/// and its singular value is 0).
fn jacobi_columns(g: &mut DMatrix<f64>, v: &mut DMatrix<f64>, what: &str) -> Result<()> {
    let n = g.ncols();
    let rows = g.nrows();
    let tol = rows.max(2) as f64 * f64::EPSILON;
    let floor = f64::EPSILON * g.norm();
    for _ in 0..MAX_SWEEPS {
        for j in 0..n {
            let mut column = g.column_mut(j);
            if column.norm() <= floor {
                column.fill(0.0);
            }
        }
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let (gp, gq) = columns(g.as_mut_slice(), rows, p, q);
                let alpha = dot(gp, gp);
                let beta = dot(gq, gq);
                let gamma = dot(gp, gq);
                if gamma == 0.0 || gamma.abs() <= tol * (alpha.sqrt() * beta.sqrt()) {
                    continue;
                }
                rotated = true;
                let (c, s) = rotation(alpha, beta, gamma);
                rotate(gp, gq, c, s);
                let (vp, vq) = columns(v.as_mut_slice(), n, p, q);
                rotate(vp, vq, c, s);
            }
        }
        if !rotated {
            return Ok(());
        }
    }
    Err(Error::Numerical(format!("the Jacobi SVD of {what} did not converge in {MAX_SWEEPS} sweeps")))
}

/// Columns p < q of a column-major matrix with `rows` rows, both mutable.
fn columns(data: &mut [f64], rows: usize, p: usize, q: usize) -> (&mut [f64], &mut [f64]) {
    let (head, tail) = data.split_at_mut(q * rows);
    (&mut head[p * rows..(p + 1) * rows], &mut tail[..rows])
}

/// The rotation (c, s) that zeroes the off-diagonal γ of the 2 × 2 symmetric
/// matrix [[α, γ], [γ, β]] (Rutishauser's formulas, the small root of the
/// tangent for stability).
fn rotation(alpha: f64, beta: f64, gamma: f64) -> (f64, f64) {
    let zeta = (beta - alpha) / (2.0 * gamma);
    let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
    let c = 1.0 / (1.0 + t * t).sqrt();
    (c, c * t)
}

/// (x, y) ← (c x − s y, s x + c y).
fn rotate(x: &mut [f64], y: &mut [f64], c: f64, s: f64) {
    for (a, b) in x.iter_mut().zip(y.iter_mut()) {
        let (u, w) = (*a, *b);
        *a = c * u - s * w;
        *b = s * u + c * w;
    }
}

/// Fills the columns `missing` of `u` (the others orthonormal) with unit
/// vectors orthogonal to every other column: each time the standard basis
/// vector farthest from the span of the filled columns (its squared distance
/// 1 − Σ_j u_kj² is at least (rows − filled)/rows for the best k; lowest k
/// on ties), orthogonalised twice (Gram–Schmidt "twice is enough").
fn complete_orthonormal(u: &mut DMatrix<f64>, missing: &[usize]) {
    let (rows, cols) = u.shape();
    let mut filled: Vec<bool> = (0..cols).map(|c| !missing.contains(&c)).collect();
    for &c in missing {
        let mut best = (0, f64::NEG_INFINITY);
        for k in 0..rows {
            let inside: f64 = (0..cols).filter(|&j| filled[j]).map(|j| u[(k, j)] * u[(k, j)]).sum();
            if 1.0 - inside > best.1 {
                best = (k, 1.0 - inside);
            }
        }
        let mut x = DVector::<f64>::zeros(rows);
        x[best.0] = 1.0;
        for _ in 0..2 {
            for j in (0..cols).filter(|&j| filled[j]) {
                let proj = u.column(j).dot(&x);
                x -= u.column(j) * proj;
            }
        }
        let norm = x.norm();
        u.set_column(c, &(x / norm));
        filled[c] = true;
    }
}

/// Eigendecomposition of a symmetric matrix: eigenvalues in decreasing order
/// and the matching eigenvectors as columns. Only the symmetric part
/// (A + Aᵀ)/2 is decomposed.
///
/// Cyclic two-sided Jacobi (the symmetric counterpart of [`svd`], for the
/// same reason): rotations annihilate off-diagonal entries until each is
/// below n·ε·√(|a_pp a_qq|) or ε·‖A‖_F / n, which reconstructs A to a few
/// ε·‖A‖ whatever the rank, and keeps the eigenvectors orthogonal to ε.
pub fn symmetric_eigen(a: DMatrix<f64>, what: &str) -> Result<(DVector<f64>, DMatrix<f64>)> {
    let n = a.nrows();
    if n != a.ncols() {
        return Err(Error::Numerical(format!("{what} is {n} × {} (an eigendecomposition needs a square matrix)", a.ncols())));
    }
    if n == 0 {
        return Err(Error::Numerical(format!("eigendecomposition of the empty matrix {what}")));
    }
    if let Some(v) = a.iter().find(|v| !v.is_finite()) {
        return Err(Error::Numerical(format!("{what} contains {v} (an eigendecomposition needs finite values)")));
    }
    let symmetric = (&a + a.transpose()) * 0.5;
    let mut w = symmetric.clone();
    let mut vec = DMatrix::<f64>::identity(n, n);
    let floor = f64::EPSILON * w.norm() / n as f64;
    let mut converged = false;
    for _ in 0..MAX_SWEEPS {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let gamma = w[(p, q)];
                if gamma == 0.0 {
                    continue;
                }
                let (app, aqq) = (w[(p, p)], w[(q, q)]);
                if gamma.abs() <= n.max(2) as f64 * f64::EPSILON * (app * aqq).abs().sqrt() || gamma.abs() <= floor {
                    w[(p, q)] = 0.0;
                    w[(q, p)] = 0.0;
                    continue;
                }
                rotated = true;
                // W ← Jᵀ W J with J the rotation of columns p, q
                let (c, s) = rotation(app, aqq, gamma);
                let (cp, cq) = columns(w.as_mut_slice(), n, p, q);
                rotate(cp, cq, c, s);
                for k in 0..n {
                    let (x, y) = (w[(p, k)], w[(q, k)]);
                    w[(p, k)] = c * x - s * y;
                    w[(q, k)] = s * x + c * y;
                }
                w[(p, q)] = 0.0;
                w[(q, p)] = 0.0;
                let (vp, vq) = columns(vec.as_mut_slice(), n, p, q);
                rotate(vp, vq, c, s);
            }
        }
        if !rotated {
            converged = true;
            break;
        }
    }
    if !converged {
        return Err(Error::Numerical(format!("the Jacobi eigendecomposition of {what} ({n} × {n}) did not converge in {MAX_SWEEPS} sweeps")));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| w[(j, j)].total_cmp(&w[(i, i)]).then(i.cmp(&j)));
    let values = DVector::from_iterator(n, order.iter().map(|&i| w[(i, i)]));
    let vectors = DMatrix::from_fn(n, n, |r, c| vec[(r, order[c])]);
    let back = &vectors * DMatrix::from_diagonal(&values) * vectors.transpose();
    let norm = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    check_reconstruction(&symmetric, &back, norm, "eigendecomposition", what)?;
    Ok((values, vectors))
}

/// A decomposition that does not give its matrix back is an error: a wrong
/// basis would silently corrupt every result (the Jacobi iterations above
/// are not expected to trip it; the check stays as the last line of defence).
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

    /// Deterministic uniform numbers in [0, 1) (xorshift64*), so that the
    /// tests need no random-number crate.
    struct Rng(u64);
    impl Rng {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        }
        fn matrix(&mut self, m: usize, n: usize) -> DMatrix<f64> {
            DMatrix::from_fn(m, n, |_, _| self.uniform() - 0.5)
        }
    }

    /// Rank-deficient, badly scaled and degenerate test matrices of many
    /// shapes, with a name for the failure message.
    fn hard_matrices() -> Vec<(String, DMatrix<f64>)> {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut out = Vec::new();
        for &(m, n) in &[(60, 12), (12, 60), (500, 100), (50, 50), (1, 5), (5, 1), (1, 1), (7, 7), (30, 3)] {
            let full = DMatrix::from_fn(m, n, |_, _| rng.uniform());
            out.push((format!("uniform {m}×{n}"), full));
            for rank in [1, 3, 10] {
                if rank < m.min(n) {
                    let a = rng.matrix(m, rank) * rng.matrix(rank, n);
                    out.push((format!("rank {rank} {m}×{n}"), a));
                }
            }
            out.push((format!("zero {m}×{n}"), DMatrix::zeros(m, n)));
            // columns spanning 1e-8 .. 1e8
            let scaled = DMatrix::from_fn(m, n, |_, j| (rng.uniform() - 0.5) * 10f64.powf(-8.0 + 16.0 * j as f64 / (n.max(2) - 1) as f64));
            out.push((format!("scaled columns {m}×{n}"), scaled));
            // duplicated rows, then every row orthogonalised against one of
            // them (the residual CUR decomposes after a pick)
            let mut dup = rng.matrix(m, n);
            if m > 2 {
                let r0 = dup.row(0).into_owned();
                dup.set_row(m - 1, &r0);
                let v = dup.row(1).transpose().normalize();
                let proj = &dup * &v;
                dup -= proj * v.transpose();
            }
            out.push((format!("duplicate rows, orthogonalised {m}×{n}"), dup));
        }
        // CUR residuals of a uniform 60 × 12 matrix after 1..11 picks: the
        // matrices on which the previous SVD failed
        let mut p = DMatrix::from_fn(60, 12, |_, _| rng.uniform());
        for pick in 0..11 {
            let v = p.row(5 * pick).transpose().normalize();
            let proj = &p * &v;
            p -= proj * v.transpose();
            out.push((format!("CUR residual after {} picks", pick + 1), p.clone()));
        }
        out
    }

    fn largest(m: &DMatrix<f64>) -> f64 {
        m.iter().fold(0.0f64, |a, v| a.max(v.abs()))
    }

    /// Backward error ‖A − UΣVᵀ‖_max ≤ 4·max(m, n)·ε·‖A‖₂, VᵀV = I and the
    /// columns of U orthonormal to 4·max(m, n)·ε, on every hard matrix.
    #[test]
    fn svd_is_accurate_on_rank_deficient_input() {
        for (name, a) in hard_matrices() {
            let (m, n) = a.shape();
            let d = svd(a.clone(), &name).unwrap_or_else(|e| panic!("{name}: {e}"));
            let r = m.min(n);
            assert_eq!((d.u.shape(), d.s.len(), d.vt.shape()), ((m, r), r, (r, n)), "{name}");
            assert!(d.s.as_slice().windows(2).all(|w| w[0] >= w[1]) && d.s.iter().all(|&v| v >= 0.0), "{name}");
            let size = m.max(n) as f64;
            let bound = 4.0 * size * f64::EPSILON;
            let error = largest(&(&d.u * DMatrix::from_diagonal(&d.s) * &d.vt - &a));
            assert!(error <= bound * d.s[0], "{name}: reconstruction error {error:e}, σ₁ {:e}", d.s[0]);
            let vv = largest(&(&d.vt * d.vt.transpose() - DMatrix::identity(r, r)));
            let uu = largest(&(d.u.transpose() * &d.u - DMatrix::identity(r, r)));
            assert!(vv <= bound && uu <= bound, "{name}: VᵀV − I {vv:e}, UᵀU − I {uu:e}");
        }
    }

    /// The same bounds for the symmetric eigendecomposition of the Gram
    /// matrices AᵀA and AAᵀ (positive semi-definite, mostly singular).
    #[test]
    fn eigen_is_accurate_on_rank_deficient_input() {
        for (name, a) in hard_matrices() {
            if a.nrows() > 100 || a.ncols() > 100 {
                continue;
            }
            for g in [a.transpose() * &a, &a * a.transpose()] {
                let n = g.nrows();
                let (vals, vecs) = symmetric_eigen(g.clone(), &name).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(vals.as_slice().windows(2).all(|w| w[0] >= w[1]), "{name}");
                let norm = vals.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let bound = 4.0 * n.max(2) as f64 * f64::EPSILON;
                let error = largest(&(&vecs * DMatrix::from_diagonal(&vals) * vecs.transpose() - &g));
                assert!(error <= bound * norm.max(f64::MIN_POSITIVE), "{name}: reconstruction error {error:e}, ‖G‖ {norm:e}");
                let orth = largest(&(vecs.transpose() * &vecs - DMatrix::identity(n, n)));
                assert!(orth <= bound, "{name}: VᵀV − I {orth:e}");
            }
        }
    }

    #[test]
    fn decompositions_refuse_non_finite_input() {
        let a = DMatrix::from_row_slice(2, 2, &[1.0, f64::NAN, 0.0, 1.0]);
        let e = svd(a.clone(), "A").unwrap_err().to_string();
        assert!(e.contains("A contains NaN"), "{e}");
        let e = symmetric_eigen(a, "B").unwrap_err().to_string();
        assert!(e.contains("B contains NaN"), "{e}");
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

