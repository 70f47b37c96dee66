//! Kernel principal component analysis (Schölkopf, Smola and Müller, Neural
//! Comput. 10, 1299 (1998), doi:10.1162/089976698300017467) of a kernel
//! matrix.
//!
//! With K the N × N kernel and 1 the N × N matrix of 1/N, the centred kernel
//! is K̃ = K − 1K − K1 + 1K1 (the kernel of the features centred in the
//! feature space of k). Its eigenpairs K̃ v_c = λ_c v_c (λ decreasing,
//! |v_c| = 1) give the scores t_ic = v_ic √λ_c of sample i on component c,
//! which is scikit-learn's `KernelPCA(kernel="precomputed").fit_transform(K)`.
//! Signs follow scikit-learn's rule: the largest-magnitude entry of each v_c
//! is positive.
//!
//! K̃ is symmetric positive semi-definite, so its SVD is its
//! eigendecomposition; [`pca`] of K̃ (whose column means are already zero)
//! provides it.
use crate::analysis::pca::pca;
use crate::error::{Error, Result};
use crate::math::linalg::Dense;

/// Result of [`kernel_pca`].
#[derive(Debug, Clone, PartialEq)]
pub struct KernelPca {
    /// Projections of the samples, `N × n`: eigenvector times √eigenvalue.
    pub scores: Dense,
    /// The n largest eigenvalues of the centred kernel, decreasing (kernel units).
    pub eigenvalues: Vec<f64>,
    /// The unit eigenvectors as columns, `N × n`.
    pub eigenvectors: Dense,
}

/// The doubly centred kernel, checked square and symmetric (to 1e-10 of its
/// largest entry).
pub fn centred_kernel(k: &Dense) -> Result<Dense> {
    if k.rows != k.cols {
        return Err(Error::InvalidParameter(format!("a precomputed kernel must be square, got shape [{}, {}]", k.rows, k.cols)));
    }
    let n = k.rows;
    let d = &k.data;
    let scale = d.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for i in 0..n {
        for j in 0..i {
            if (d[i * n + j] - d[j * n + i]).abs() > 1e-10 * scale {
                return Err(Error::InvalidParameter(format!(
                    "the kernel is not symmetric: K[{i}][{j}] = {} but K[{j}][{i}] = {}",
                    d[i * n + j],
                    d[j * n + i]
                )));
            }
        }
    }
    let mut row_mean = vec![0.0; n];
    let mut total = 0.0;
    for i in 0..n {
        let s: f64 = d[i * n..(i + 1) * n].iter().sum();
        row_mean[i] = s / n as f64;
        total += s;
    }
    total /= (n * n) as f64;
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = d[i * n + j] - row_mean[i] - row_mean[j] + total;
        }
    }
    Ok(Dense { data: out, rows: n, cols: n })
}

/// The first `n` kernel principal components of the kernel matrix `k`
/// (N × N, symmetric). Fails when one of the n eigenvalues of largest
/// magnitude of the centred kernel is negative beyond rounding (1e-12 of the
/// largest): `k` is then not a kernel.
pub fn kernel_pca(k: &Dense, n: usize) -> Result<KernelPca> {
    let kc = centred_kernel(k)?;
    let big_n = kc.rows;
    let p = pca(&kc, n)?;
    let mut eigenvalues = vec![0.0; n];
    let mut scores = vec![0.0; big_n * n];
    let mut vectors = vec![0.0; big_n * n];
    let s0 = (p.explained_variance[0] * (big_n - 1) as f64).sqrt();
    for c in 0..n {
        // singular value s_c = √((N − 1) · variance); u_c · v_c = −1 would mean λ_c = −s_c
        let s = (p.explained_variance[c] * (big_n - 1) as f64).sqrt();
        let dot: f64 = (0..big_n).map(|i| p.scores.data[i * n + c] * p.components.data[c * big_n + i]).sum();
        if dot < 0.0 && s > 1e-12 * s0 {
            return Err(Error::Numerical(format!(
                "the centred kernel is not positive semi-definite: it has the eigenvalue {} among its {n} largest in magnitude",
                -s
            )));
        }
        // a negative eigenvalue at rounding level is zero (as scikit-learn clips it)
        eigenvalues[c] = if dot < 0.0 { 0.0 } else { s };
        let root = eigenvalues[c].sqrt();
        for i in 0..big_n {
            let v = p.components.data[c * big_n + i];
            vectors[i * n + c] = v;
            scores[i * n + c] = v * root;
        }
    }
    Ok(KernelPca {
        scores: Dense { data: scores, rows: big_n, cols: n },
        eigenvalues,
        eigenvectors: Dense { data: vectors, rows: big_n, cols: n },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_kernel_pca_is_pca_of_the_features() {
        // for K = X Xᵀ the kernel scores are the PCA scores of X (up to sign,
        // fixed differently), and λ_c = (N − 1) · explained variance
        let x = Dense::new("X", vec![0.3, 1.0, -0.2, 0.5, 2.0, 0.7, 1.5, -0.4, 0.1, -1.0, 0.6, 0.9, 0.8, 0.2, -0.5], 5, 3).unwrap();
        let k = crate::analysis::kernel_ridge::gram(&x);
        let kp = kernel_pca(&k, 2).unwrap();
        let p = pca(&x, 2).unwrap();
        for c in 0..2 {
            assert!((kp.eigenvalues[c] - 4.0 * p.explained_variance[c]).abs() < 1e-12 * kp.eigenvalues[0]);
            let sign = (0..5).map(|i| kp.scores.data[i * 2 + c] * p.scores.data[i * 2 + c]).sum::<f64>().signum();
            for i in 0..5 {
                assert!((kp.scores.data[i * 2 + c] - sign * p.scores.data[i * 2 + c]).abs() < 1e-10, "component {c}, sample {i}");
            }
        }
    }

    #[test]
    fn an_indefinite_kernel_is_refused_with_its_eigenvalue() {
        // the centred diag(1, −5, 1) has eigenvalues −3, 0, 1
        let k = Dense::new("K", vec![1.0, 0.0, 0.0, 0.0, -5.0, 0.0, 0.0, 0.0, 1.0], 3, 3).unwrap();
        let e = kernel_pca(&k, 1).unwrap_err().to_string();
        assert!(e.contains("not positive semi-definite: it has the eigenvalue -"), "{e}");
        let asym = Dense::new("K", vec![1.0, 0.5, 0.2, 1.0], 2, 2).unwrap();
        assert!(kernel_pca(&asym, 1).unwrap_err().to_string().contains("K[1][0] = 0.2 but K[0][1] = 0.5"));
    }
}
