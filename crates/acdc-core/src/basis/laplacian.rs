//! Laplacian-eigenstate (LE) radial basis (Bigi, Huguenin-Dumittan,
//! Ceriotti and Manolopoulos, J. Chem. Phys. 157, 234101 (2022)).
//!
//! The functions are the eigenstates of the Laplacian in a sphere of radius
//! r_0 with Dirichlet boundary conditions: R_ln(r) = N_ln·j_l(z_ln r/r_0),
//! z_ln the (n+1)-th zero of j_l, eigenvalue E_ln = z_ln²/r_0². The basis
//! keeps every (l, n) with E_ln ≤ E_(0,max_radial): fewer radial functions
//! for larger l ("ragged"), and a smoothness that is balanced between the
//! radial and angular directions. N_ln = (r_0³/2·j_(l+1)(z_ln)²)^(−1/2)
//! normalises ∫_0^r_0 r² R_ln² dr = 1 (the functions are orthogonal).
//!
//! The radial integral with the Gaussian density g(r) = (πσ²)^(−3/4)
//! e^(−r²/2σ²) is, for a neighbour at distance d,
//!
//! I_ln(d) = 4π(πσ²)^(−3/4) ∫_0^r_0 r² R_ln(r) e^(−(r−d)²/2σ²) [e^(−z) i_l(z)] dr,  z = r d/σ²,
//!
//! computed here by composite Gauss–Legendre quadrature, and its
//! derivative dI/dd = [4π(πσ²)^(−3/4) ∫ r³ R e^(−(r−d)²/2σ²) [e^(−z) i_l'(z)] dr − d·I]/σ².
//! The integrals are tabulated with featomic's Python rule so that
//! the results equal those of `featomic.splines.SoapSpliner`.

use std::f64::consts::PI;

use crate::error::{Error, Result};
use crate::math::bessel::{gauss_legendre, scaled_modified_spherical_in, spherical_jn, spherical_jn_zeros};

/// Largest `max_radial` accepted for the LE basis (l_max grows with it;
/// 40 already gives ~2000 functions).
pub const MAX_LE_RADIAL: usize = 40;

/// Number of radial functions of each angular channel of the LE basis
/// with `max_radial` (largest n at l = 0) and, optionally, an explicit
/// `max_angular`; the pattern does not depend on the radius.
///
/// Errors: an explicit `max_angular` so large that some channel would have
/// no function.
pub fn le_sizes(max_radial: usize, max_angular: Option<usize>) -> Result<Vec<usize>> {
    if max_radial > MAX_LE_RADIAL {
        return Err(Error::InvalidParameter(format!("basis.max_radial is {max_radial}; at most {MAX_LE_RADIAL} is supported for LaplacianEigenstate")));
    }
    let mut l_max = max_angular.unwrap_or(max_radial);
    if l_max > 4 * MAX_LE_RADIAL {
        return Err(Error::InvalidParameter(format!("basis.max_angular is {l_max}; at most {} is supported", 4 * MAX_LE_RADIAL)));
    }
    let mut zeros = spherical_jn_zeros(l_max, max_radial + 1);
    let limit = zeros[0][max_radial];
    if max_angular.is_none() {
        while zeros[l_max][0] < limit {
            l_max += max_radial.max(1);
            zeros = spherical_jn_zeros(l_max, max_radial + 1);
        }
        l_max = zeros.iter().filter(|z| z[0] <= limit).count() - 1;
    }
    let sizes: Vec<usize> = (0..=l_max).map(|l| zeros[l].iter().filter(|&&z| z <= limit).count()).collect();
    if let Some(l) = sizes.iter().position(|&s| s == 0) {
        return Err(Error::InvalidParameter(format!(
            "basis.max_angular is {l_max}, but with max_radial = {max_radial} the LaplacianEigenstate basis has no function for l = {l} (at most max_angular = {})",
            l - 1
        )));
    }
    Ok(sizes)
}

/// The LE radial functions for given channel sizes and radius, and their
/// radial integrals with a Gaussian or a Dirac-delta density.
#[derive(Debug, Clone)]
pub struct LaplacianEigenstate {
    sizes: Vec<usize>,
    radius: f64,
    /// `[l][n]` zeros z_ln
    zeros: Vec<Vec<f64>>,
    /// `[l][n]` normalisations N_ln
    norms: Vec<Vec<f64>>,
}

impl LaplacianEigenstate {
    /// `sizes[l]` functions per channel (from [`le_sizes`]), basis radius
    /// r_0 in Å.
    pub fn new(sizes: Vec<usize>, radius: f64) -> Result<LaplacianEigenstate> {
        if !(radius.is_finite() && radius > 0.0) {
            return Err(Error::InvalidParameter(format!("basis.radius must be a positive finite number of Å, got {radius}")));
        }
        let l_max = sizes.len() - 1;
        let n = sizes.iter().copied().max().unwrap_or(1);
        let all = spherical_jn_zeros(l_max, n);
        let mut zeros = Vec::new();
        let mut norms = Vec::new();
        let mut buffer = vec![0.0; l_max + 2];
        for (l, &size) in sizes.iter().enumerate() {
            let z: Vec<f64> = all[l][..size].to_vec();
            let norm = z
                .iter()
                .map(|&z| {
                    spherical_jn(z, &mut buffer[..l + 2]);
                    1.0 / (radius.powi(3) / 2.0 * buffer[l + 1] * buffer[l + 1]).sqrt()
                })
                .collect();
            zeros.push(z);
            norms.push(norm);
        }
        Ok(LaplacianEigenstate { sizes, radius, zeros, norms })
    }

    /// Functions per channel.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// Dirac-delta density: the orthonormal functions themselves, R_ln(d)
    /// and dR_ln/dd, not truncated at the radius (as featomic). Layout:
    /// channels one after the other, `sizes[l]` entries each.
    pub fn delta_integrals(&self, d: f64, values: &mut [f64], derivatives: &mut [f64]) {
        let mut buffer = vec![0.0; self.sizes.len() + 2];
        let mut offset = 0;
        for (l, &size) in self.sizes.iter().enumerate() {
            for n in 0..size {
                let k = self.zeros[l][n] / self.radius;
                let x = k * d;
                spherical_jn(x, &mut buffer[..l + 2]);
                // j_l'(x) = l/x j_l − j_(l+1); at x = 0 only l = 1 has j_1'(0) = 1/3
                let dj = if x == 0.0 {
                    if l == 1 { 1.0 / 3.0 } else { 0.0 }
                } else {
                    l as f64 / x * buffer[l] - buffer[l + 1]
                };
                values[offset + n] = self.norms[l][n] * buffer[l];
                derivatives[offset + n] = self.norms[l][n] * dj * k;
            }
            offset += size;
        }
    }

    /// Prepares the Gaussian-density integrals for width σ (Å).
    pub fn gaussian(&self, sigma: f64) -> Result<GaussianLeIntegral> {
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(Error::InvalidParameter(format!("density.width must be a positive finite number, got {sigma}")));
        }
        // panels of at most σ/2 (and at least 40): the Gaussian factor is
        // resolved to ~1e-15 by 30 nodes per panel
        let panels = ((2.0 * self.radius / sigma).ceil() as usize).max(40);
        let (x, w) = gauss_legendre(30);
        let h = self.radius / panels as f64;
        let mut nodes = Vec::with_capacity(panels * 30);
        let mut weights = Vec::with_capacity(panels * 30);
        for p in 0..panels {
            let a = p as f64 * h;
            for (xi, wi) in x.iter().zip(&w) {
                nodes.push(a + 0.5 * h * (xi + 1.0));
                weights.push(0.5 * h * wi);
            }
        }
        let total: usize = self.sizes.iter().sum();
        let q = nodes.len();
        // table[f][q] = w_q r_q² R_f(r_q)
        let mut table = vec![0.0; total * q];
        let mut buffer = vec![0.0; self.sizes.len() + 1];
        let mut f = 0;
        for (l, &size) in self.sizes.iter().enumerate() {
            for n in 0..size {
                let k = self.zeros[l][n] / self.radius;
                for (i, (&r, &wq)) in nodes.iter().zip(&weights).enumerate() {
                    spherical_jn(k * r, &mut buffer[..l + 1]);
                    table[f * q + i] = wq * r * r * self.norms[l][n] * buffer[l];
                }
                f += 1;
            }
        }
        Ok(GaussianLeIntegral { sizes: self.sizes.clone(), sigma, nodes, table })
    }
}

/// The LE radial integrals with a Gaussian density, by quadrature.
#[derive(Debug, Clone)]
pub struct GaussianLeIntegral {
    sizes: Vec<usize>,
    sigma: f64,
    nodes: Vec<f64>,
    table: Vec<f64>,
}

impl GaussianLeIntegral {
    /// Values I_ln(d) and derivatives dI_ln/dd at distance `d` (Å),
    /// channels one after the other (`sizes[l]` entries each).
    pub fn compute(&self, d: f64, values: &mut [f64], derivatives: &mut [f64]) {
        let s2 = self.sigma * self.sigma;
        let prefactor = 4.0 * PI / (PI * s2).powf(0.75);
        let l_count = self.sizes.len();
        let q = self.nodes.len();
        // per node: g_l = e^(−(r−d)²/2σ²)·e^(−z)i_l(z), g'_l = r·e^(..)·e^(−z)i_l'(z)
        let mut g = vec![0.0; l_count * q];
        let mut gd = vec![0.0; l_count * q];
        let mut bessel = vec![0.0; l_count + 1];
        for (i, &r) in self.nodes.iter().enumerate() {
            let exponent = (r - d) * (r - d) / (2.0 * s2);
            if exponent > 745.0 {
                continue;
            }
            let gauss = (-exponent).exp();
            let z = r * d / s2;
            scaled_modified_spherical_in(z, &mut bessel);
            for l in 0..l_count {
                g[l * q + i] = gauss * bessel[l];
                let derivative = if z == 0.0 {
                    if l == 1 { 1.0 / 3.0 } else { 0.0 }
                } else {
                    bessel[l + 1] + l as f64 / z * bessel[l]
                };
                gd[l * q + i] = gauss * r * derivative;
            }
        }
        let mut f = 0;
        for (l, &size) in self.sizes.iter().enumerate() {
            let (gl, gdl) = (&g[l * q..(l + 1) * q], &gd[l * q..(l + 1) * q]);
            for _ in 0..size {
                let row = &self.table[f * q..(f + 1) * q];
                let (mut v, mut dv) = (0.0, 0.0);
                for i in 0..q {
                    v += row[i] * gl[i];
                    dv += row[i] * gdl[i];
                }
                values[f] = prefactor * v;
                derivatives[f] = (prefactor * dv - d * values[f]) / s2;
                f += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ragged_sizes() {
        assert_eq!(le_sizes(0, None).unwrap(), vec![1]);
        assert_eq!(le_sizes(3, None).unwrap(), vec![4, 3, 3, 2, 2, 1, 1, 1]);
        assert_eq!(le_sizes(4, None).unwrap(), vec![5, 4, 4, 3, 3, 2, 2, 2, 1, 1, 1]);
        assert_eq!(le_sizes(8, None).unwrap(), vec![9, 8, 8, 7, 7, 6, 6, 5, 5, 5, 4, 4, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1]);
        assert_eq!(le_sizes(6, Some(3)).unwrap(), vec![7, 6, 6, 5]);
        assert!(le_sizes(3, Some(7)).is_ok());
        let e = le_sizes(3, Some(8)).unwrap_err();
        assert!(e.to_string().contains("no function for l = 8"), "{e}");
    }

    #[test]
    fn reference_integrals_and_derivatives() {
        // T_0n(0) for r_0 = 3.5, σ = 0.4 (featomic 0.6.7)
        let le = LaplacianEigenstate::new(le_sizes(4, None).unwrap(), 3.5).unwrap();
        let g = le.gaussian(0.4).unwrap();
        let total: usize = le.sizes().iter().sum();
        let (mut v, mut d) = (vec![0.0; total], vec![0.0; total]);
        g.compute(0.0, &mut v, &mut d);
        let expected = [1.0741574119925732, 1.7706028006504984, 1.9242039799013688, 1.633969813467554, 1.1434671876286564];
        for n in 0..5 {
            assert!((v[n] - expected[n]).abs() < 1e-12, "{n}: {} {}", v[n], expected[n]);
        }
        // derivatives by finite differences
        let (mut vp, mut vm, mut dd) = (vec![0.0; total], vec![0.0; total], vec![0.0; total]);
        for &r in &[0.7, 2.1, 3.3] {
            let h = 1e-5;
            g.compute(r, &mut v, &mut d);
            g.compute(r + h, &mut vp, &mut dd);
            g.compute(r - h, &mut vm, &mut dd);
            for f in 0..total {
                assert!(((vp[f] - vm[f]) / (2.0 * h) - d[f]).abs() < 1e-7, "{r} {f}");
            }
            let (mut dv, mut ddv) = (vec![0.0; total], vec![0.0; total]);
            le.delta_integrals(r, &mut dv, &mut ddv);
            le.delta_integrals(r + h, &mut vp, &mut dd);
            le.delta_integrals(r - h, &mut vm, &mut dd);
            for f in 0..total {
                assert!(((vp[f] - vm[f]) / (2.0 * h) - ddv[f]).abs() < 1e-6, "delta {r} {f}");
            }
        }
    }
}
