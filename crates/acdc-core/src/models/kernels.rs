//! The normalised polynomial dot-product kernel between atomic environments
//! and its sum over the atoms of structures.
//!
//! `k(x, x') = δ² (x̂·x̂')^ζ` with `x̂ = x/‖x‖`, the kernel of SOAP-GAP
//! (Bartók, Kondor & Csányi, Phys. Rev. B 87, 184115 (2013),
//! doi:10.1103/PhysRevB.87.184115; De, Bartók, Csányi & Ceriotti, Phys. Chem.
//! Chem. Phys. 18, 13754 (2016), doi:10.1039/C6CP00415F). δ carries the
//! units of the target (eV for energies), so δ² k is a covariance in eV².
//! The kernel between structures A and B is the sum over their atoms,
//! `K(A, B) = Σ_{i∈A} Σ_{j∈B} k(x_i, x_j)`, which makes a model of the
//! energy a sum of atomic contributions.
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::math::linalg::{check_size, dot, Dense};


/// Hyper-parameters of the normalised polynomial kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolynomialKernel {
    /// Exponent ζ, a positive integer (odd powers keep the sign of x̂·x̂').
    pub zeta: u32,
    /// Scale δ, in the units of the target (eV for energies).
    pub delta: f64,
}

impl PolynomialKernel {
    /// Checks ζ ≥ 1 (an integer, so that negative cosines stay real) and a
    /// finite δ > 0.
    pub fn new(zeta: f64, delta: f64) -> Result<Self> {
        if !(zeta.is_finite() && zeta >= 1.0 && zeta.fract() == 0.0 && zeta <= 1024.0) {
            return Err(Error::InvalidParameter(format!("zeta = {zeta} (expected an integer between 1 and 1024)")));
        }
        if !(delta.is_finite() && delta > 0.0) {
            return Err(Error::InvalidParameter(format!("delta = {delta} (expected a positive number)")));
        }
        Ok(PolynomialKernel { zeta: zeta as u32, delta })
    }

    /// k = δ² c^ζ for the cosine c = x̂·x̂', in the target's units squared.
    pub fn of_cosine(&self, c: f64) -> f64 {
        self.weighted(1.0, c)
    }

    /// w·k = w δ² c^ζ: a weighted kernel value, rounded as the models
    /// form it (w δ² first; w = 1 gives exactly [`Self::of_cosine`]).
    pub fn weighted(&self, w: f64, c: f64) -> f64 {
        let d2 = self.delta * self.delta;
        w * d2 * c.powi(self.zeta as i32)
    }

    /// The gradient of k(x, x') with respect to the unnormalised x is
    /// ∂k/∂x = g (x̂' − c x̂) with g = δ² ζ c^(ζ−1) / ‖x‖; this returns w·g
    /// (w = 1 for the kernel itself, a model weight for a weighted sum).
    /// `norm` is ‖x‖, in the features' units.
    pub fn weighted_gradient_factor(&self, w: f64, c: f64, norm: f64) -> f64 {
        let d2 = self.delta * self.delta;
        w * d2 * self.zeta as f64 * c.powi(self.zeta as i32 - 1) / norm
    }
}

/// Rows divided by their norms; a zero row cannot be normalised.
fn normalised(x: &Dense, name: &str) -> Result<Dense> {
    let mut out = x.clone();
    for (i, row) in out.data.chunks_mut(x.cols).enumerate() {
        let norm = dot(row, row).sqrt();
        if norm == 0.0 {
            return Err(Error::InvalidParameter(format!("{name}: row {i} is zero (the normalised kernel needs a non-zero feature vector)")));
        }
        row.iter_mut().for_each(|v| *v /= norm);
    }
    Ok(out)
}

fn same_features(a: &Dense, b: &Dense) -> Result<()> {
    if a.cols != b.cols {
        return Err(Error::InvalidParameter(format!("A has {} features (columns) but B has {}", a.cols, b.cols)));
    }
    Ok(())
}

/// Kernel between every row of `a` and every row of `b`: `a.rows × b.rows`.
pub fn polynomial_kernel(a: &Dense, b: &Dense, kernel: &PolynomialKernel) -> Result<Dense> {
    same_features(a, b)?;
    check_size(a.rows, b.rows, "the kernel")?;
    let an = normalised(a, "A")?.to_matrix();
    let bn = normalised(b, "B")?.to_matrix();
    // one matrix product (blocked, vectorised) for all the cosines
    let cosines = an * bn.transpose();
    let mut k = Dense::from_matrix(&cosines);
    k.data.par_iter_mut().with_min_len(4096).for_each(|c| *c = kernel.of_cosine(*c));
    Ok(k)
}

fn structure_count(index: &[usize], rows: usize, name: &str) -> Result<usize> {
    if index.len() != rows {
        return Err(Error::InvalidParameter(format!("{name} has {} entries but there are {rows} rows of features", index.len())));
    }
    Ok(index.iter().max().map_or(0, |&m| m + 1))
}

/// Kernel between structures as sums over atoms: row r of `a` belongs to
/// structure `structures_a[r]` (0-based; structures without atoms get zero
/// rows). Result: `n_structures_a × n_structures_b`.
pub fn structure_kernel(a: &Dense, structures_a: &[usize], b: &Dense, structures_b: &[usize], kernel: &PolynomialKernel) -> Result<Dense> {
    let na = structure_count(structures_a, a.rows, "structuresA")?;
    let nb = structure_count(structures_b, b.rows, "structuresB")?;
    check_size(na, nb, "the structure kernel")?;
    let k = polynomial_kernel(a, b, kernel)?;
    let mut data = vec![0.0; na * nb];
    for i in 0..a.rows {
        let out = &mut data[structures_a[i] * nb..(structures_a[i] + 1) * nb];
        for (j, &v) in k.row(i).iter().enumerate() {
            out[structures_b[j]] += v;
        }
    }
    Ok(Dense { data, rows: na, cols: nb })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        let a = Dense::new("A", vec![3.0, 4.0, 1.0, 0.0], 2, 2).unwrap();
        let b = Dense::new("B", vec![0.0, 2.0], 1, 2).unwrap();
        let k = PolynomialKernel::new(2.0, 2.0).unwrap();
        let out = polynomial_kernel(&a, &b, &k).unwrap();
        // cosines 0.8 and 0
        assert!((out.data[0] - 4.0 * 0.64).abs() < 1e-15);
        assert_eq!(out.data[1], 0.0);
        let s = structure_kernel(&a, &[0, 0], &b, &[0], &k).unwrap();
        assert_eq!((s.rows, s.cols), (1, 1));
        assert!((s.data[0] - 2.56).abs() < 1e-15);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        // ∂k/∂x = g (x̂' − c x̂) for k(x, x') = δ² (x̂·x̂')^ζ, central differences
        let x = [0.3, -1.2, 0.7, 2.0];
        let y = [1.1, 0.4, -0.5, 0.9];
        for zeta in [1.0, 2.0, 3.0, 4.0] {
            let k = PolynomialKernel::new(zeta, 0.7).unwrap();
            let value = |x: &[f64]| {
                let (nx, ny) = (dot(x, x).sqrt(), dot(&y, &y).sqrt());
                k.of_cosine(dot(x, &y) / (nx * ny))
            };
            let nx = dot(&x, &x).sqrt();
            let ny = dot(&y, &y).sqrt();
            let c = dot(&x, &y) / (nx * ny);
            let g = k.weighted_gradient_factor(1.0, c, nx);
            for d in 0..4 {
                let want = g * (y[d] / ny - c * x[d] / nx);
                let h = 1e-6;
                let (mut p, mut m) = (x, x);
                p[d] += h;
                m[d] -= h;
                let fd = (value(&p) - value(&m)) / (2.0 * h);
                assert!((fd - want).abs() < 1e-8, "zeta {zeta}, d {d}: {fd} vs {want}");
            }
            // weights scale both, and w = 1 is the plain kernel bit for bit
            assert_eq!(k.weighted(1.0, c), k.of_cosine(c));
            assert!((k.weighted(-2.5, c) + 2.5 * k.of_cosine(c)).abs() < 1e-15);
        }
    }

    #[test]
    fn rejects() {
        assert!(PolynomialKernel::new(1.5, 1.0).unwrap_err().to_string().contains("zeta = 1.5"));
        assert!(PolynomialKernel::new(2.0, 0.0).unwrap_err().to_string().contains("delta = 0"));
        let a = Dense::new("A", vec![0.0, 0.0], 1, 2).unwrap();
        let k = PolynomialKernel::new(1.0, 1.0).unwrap();
        assert!(polynomial_kernel(&a, &a, &k).unwrap_err().to_string().contains("row 0 is zero"));
    }
}
