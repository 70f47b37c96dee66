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
use crate::error::{Error, Result};
use crate::math::linalg::{svd, Dense};

/// Result of [`pca`].
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// Projections of the samples, `N × n`.
    pub scores: Dense,
    /// Principal directions as rows, `n × F`, orthonormal.
    pub components: Dense,
    /// Variance along each component, `n` values, decreasing.
    pub explained_variance: Vec<f64>,
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
    Ok(Pca { scores, components, explained_variance, mean })
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
}
