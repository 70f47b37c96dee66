//! Kernel ridge regression on a precomputed kernel, for the learning curves
//! of `acdc scan`: α = (K_tt + λ I)⁻¹ (y_t − ȳ_t), ŷ = ȳ_t + K_·t α, solved by
//! a Cholesky factorisation ([`cholesky_solve`]; λ > 0 makes K_tt + λ I
//! positive definite). With the linear kernel of centred features this is
//! ridge regression with an intercept; with the normalised polynomial kernel
//! it is the posterior mean of Gaussian process regression with noise
//! variance λ and a constant mean.
use nalgebra::DMatrix;

use crate::error::{Error, Result};
use crate::math::linalg::{cholesky_solve, Dense};

/// The linear kernel X Xᵀ of the rows of `x` (N × N).
pub fn gram(x: &Dense) -> Dense {
    let (n, f) = (x.rows, x.cols);
    let mut g = vec![0.0; n * n];
    for i in 0..n {
        let xi = x.row(i);
        for j in 0..=i {
            let s: f64 = xi.iter().zip(&x.data[j * f..(j + 1) * f]).map(|(a, b)| a * b).sum();
            g[i * n + j] = s;
            g[j * n + i] = s;
        }
    }
    Dense { data: g, rows: n, cols: n }
}

/// The linear kernel of the features centred by the mean of the rows
/// `train`, from their Gram matrix `g` (N × N):
/// G_ij − m_i − m_j + M with m_i the mean of G_it over t ∈ train.
pub fn centred_gram(g: &Dense, train: &[usize]) -> Dense {
    let n = g.rows;
    let m: Vec<f64> = (0..n).map(|i| train.iter().map(|&t| g.data[i * n + t]).sum::<f64>() / train.len() as f64).collect();
    let total = train.iter().map(|&t| m[t]).sum::<f64>() / train.len() as f64;
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = g.data[i * n + j] - m[i] - m[j] + total;
        }
    }
    Dense { data: out, rows: n, cols: n }
}

fn check_indices(name: &str, idx: &[usize], n: usize) -> Result<()> {
    if idx.is_empty() {
        return Err(Error::InvalidParameter(format!("{name} is empty")));
    }
    if let Some(&i) = idx.iter().find(|&&i| i >= n) {
        return Err(Error::InvalidParameter(format!("{name} contains {i}, but the kernel has {n} rows")));
    }
    Ok(())
}

/// Fits on the rows `train` of the full kernel `k` (N × N) and predicts the
/// rows `test`. The regulariser is `relative` times the mean diagonal of
/// K_tt, so that it does not depend on the scale of the kernel.
pub fn kernel_ridge_predict(k: &Dense, y: &[f64], train: &[usize], test: &[usize], relative: f64) -> Result<Vec<f64>> {
    let n = k.rows;
    if k.cols != n {
        return Err(Error::InvalidParameter(format!("the kernel is {} × {} (expected a square matrix)", k.rows, k.cols)));
    }
    if y.len() != n {
        return Err(Error::InvalidParameter(format!("y has {} values, the kernel {n} rows", y.len())));
    }
    check_indices("train", train, n)?;
    check_indices("test", test, n)?;
    if !(relative > 0.0 && relative.is_finite()) {
        return Err(Error::InvalidParameter(format!("the regularizer must be a positive number, got {relative}")));
    }
    let t = train.len();
    let trace: f64 = train.iter().map(|&a| k.data[a * n + a]).sum();
    let lambda = relative * trace / t as f64;
    let ktt = DMatrix::from_fn(t, t, |a, b| k.data[train[a] * n + train[b]] + if a == b { lambda } else { 0.0 });
    let mean = train.iter().map(|&a| y[a]).sum::<f64>() / t as f64;
    let rhs = DMatrix::from_iterator(t, 1, train.iter().map(|&a| y[a] - mean));
    let alpha = cholesky_solve(ktt, &rhs, f64::INFINITY, "the regularised training kernel (raise the regularizer)")?;
    Ok(test.iter().map(|&s| mean + train.iter().enumerate().map(|(a, &r)| k.data[s * n + r] * alpha[a]).sum::<f64>()).collect())
}

/// The kernel of a learning curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurveKernel {
    /// The input is a feature matrix (N × F); each training set uses the
    /// linear kernel of the features centred by its own mean (ridge
    /// regression with an intercept).
    Linear,
    /// The input is a kernel matrix (N × N), used as given.
    Precomputed,
}

/// Test RMSE of kernel ridge regression for nested training sets: the first
/// `size` rows of `pool` for every `size` in `sizes`, tested on `test`.
/// RMSE in the units of `y`.
pub fn learning_curve(input: &Dense, kernel: CurveKernel, y: &[f64], pool: &[usize], test: &[usize], sizes: &[usize], relative: f64) -> Result<Vec<f64>> {
    if let Some(&s) = sizes.iter().find(|&&s| s == 0 || s > pool.len()) {
        return Err(Error::InvalidParameter(format!("training size {s} must be between 1 and the pool's {} rows", pool.len())));
    }
    let g = match kernel {
        CurveKernel::Linear => gram(input),
        CurveKernel::Precomputed => input.clone(),
    };
    sizes
        .iter()
        .map(|&size| {
            let train = &pool[..size];
            let k = match kernel {
                CurveKernel::Linear => centred_gram(&g, train),
                CurveKernel::Precomputed => g.clone(),
            };
            let pred = kernel_ridge_predict(&k, y, train, test, relative)?;
            let sq: f64 = pred.iter().zip(test).map(|(p, &t)| (p - y[t]) * (p - y[t])).sum();
            Ok((sq / test.len() as f64).sqrt())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_curve_equals_primal_ridge_regression() {
        // 6 points of a line plus noise: the ridge solution in the dual
        // (kernel) form equals the primal (XcᵀXc + λ I) w = Xcᵀ (y − ȳ)
        let x = Dense::new("X", vec![0.0, 1.0, 1.0, 0.5, 2.0, 0.2, 3.0, 1.5, 4.0, 0.1, 5.0, 0.9], 6, 2).unwrap();
        let y = [0.1, 1.2, 1.9, 3.2, 3.9, 5.1];
        let (train, test) = ([0usize, 2, 3, 5], [1usize, 4]);
        let rel = 1e-3;
        let k = centred_gram(&gram(&x), &train);
        let pred = kernel_ridge_predict(&k, &y, &train, &test, rel).unwrap();
        // primal
        let mu: Vec<f64> = (0..2).map(|j| train.iter().map(|&t| x.data[t * 2 + j]).sum::<f64>() / 4.0).collect();
        let ybar = train.iter().map(|&t| y[t]).sum::<f64>() / 4.0;
        let xc = |t: usize, j: usize| x.data[t * 2 + j] - mu[j];
        let trace: f64 = train.iter().map(|&t| xc(t, 0) * xc(t, 0) + xc(t, 1) * xc(t, 1)).sum();
        let lambda = rel * trace / 4.0;
        let a = DMatrix::from_fn(2, 2, |i, j| train.iter().map(|&t| xc(t, i) * xc(t, j)).sum::<f64>() + if i == j { lambda } else { 0.0 });
        let b = DMatrix::from_fn(2, 1, |i, _| train.iter().map(|&t| xc(t, i) * (y[t] - ybar)).sum::<f64>());
        let w = a.lu().solve(&b).unwrap();
        for (p, &s) in pred.iter().zip(&test) {
            let want = ybar + xc(s, 0) * w[0] + xc(s, 1) * w[1];
            assert!((p - want).abs() < 1e-12 * want.abs().max(1.0), "{p} vs {want}");
        }
        let curve = learning_curve(&x, CurveKernel::Linear, &y, &train, &test, &[4], rel).unwrap();
        let rmse = (pred.iter().zip(&test).map(|(p, &t)| (p - y[t]).powi(2)).sum::<f64>() / 2.0).sqrt();
        assert_eq!(curve, vec![rmse]);
    }

    #[test]
    fn bad_input_is_named() {
        let k = Dense::new("K", vec![1.0, 0.0, 0.0, 1.0], 2, 2).unwrap();
        let e = kernel_ridge_predict(&k, &[1.0, 2.0], &[0, 5], &[1], 1e-3).unwrap_err();
        assert!(e.to_string().contains("train contains 5"), "{e}");
        let e = kernel_ridge_predict(&k, &[1.0, 2.0], &[0], &[1], 0.0).unwrap_err();
        assert!(e.to_string().contains("regularizer"), "{e}");
        let neg = Dense::new("K", vec![-1.0, 0.0, 0.0, -1.0], 2, 2).unwrap();
        let e = kernel_ridge_predict(&neg, &[1.0, 2.0], &[0, 1], &[1], 1e-3).unwrap_err();
        assert!(e.to_string().contains("not positive definite"), "{e}");
    }
}
