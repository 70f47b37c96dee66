//! Gaussian-type-orbital (GTO) radial basis and its exact radial integral
//! with a Gaussian neighbour density (docs/CONVENTIONS.md §2.5–§2.6, featomic's "Gto" basis).
//!
//! Primitive functions R_n(r) = N_n r^n exp(−r²/(2σ_n²)), n = 0…n_max−1,
//! with σ_n = r_c·max(√n, 1)/n_max, are made orthonormal on [0, ∞) with
//! weight r² by Löwdin's S^(−1/2). With c = 1/(2σ²) (σ the density width),
//! d_n = 1/(2σ_n²), a = (n + l + 3)/2, b = l + 3/2 and z = c²r²/(c + d_n), the
//! primitive radial integral is
//!
//! I_nl(r) = (π/σ²)^(3/4)·Γ(a)/Γ(b)·(c + d_n)^(−a)·(c r)^l·e^(−c r²)·₁F₁(a; b; z).
//!
//! We evaluate it as (c r)^l·e^(−c d_n r²/(c + d_n))·[e^(−z)₁F₁(a; b; z)], which
//! is the same number without the overflow of ₁F₁ at large z, and its
//! derivative through d/dz[e^(−z)₁F₁(a; b; z)] = ((a − b)/b)·e^(−z)₁F₁(a; b + 1; z),
//! which has no cancellation at large r. The orthonormalised integrals are
//! Σ_n' (S^(−1/2))_{nn'} N_n' I_n'l(r), as in featomic.

use nalgebra::{DMatrix, SymmetricEigen};

use super::RadialIntegral;
use crate::error::{Error, Result};
use crate::math::special::{gamma, gamma_ratio, hyp1f1_scaled};

/// Largest number of radial functions (max_radial + 1) supported; the
/// overlap matrix is numerically singular long before (around 20–30).
/// Bounding it lets `compute` keep its scratch on the stack.
pub const MAX_GTO_SIZE: usize = 64;

/// GTO widths σ_n = r_c·max(√n, 1)/n_max (Å) for n = 0…n_max−1, with
/// `size` = n_max and `radius` = r_c in Å.
pub fn gto_widths(size: usize, radius: f64) -> Vec<f64> {
    (0..size).map(|n| radius * (n as f64).sqrt().max(1.0) / size as f64).collect()
}

/// Normalisation N_n = √(2/(σ_n^(2n+3) Γ(n + 3/2))) of each primitive, so
/// that ∫₀^∞ r² R_n² dr = 1 (units Å^(−n−3/2)); `widths` from [`gto_widths`].
pub fn gto_normalization(widths: &[f64]) -> Vec<f64> {
    widths
        .iter()
        .enumerate()
        .map(|(n, &sigma)| (2.0 / (sigma.powi(2 * n as i32 + 3) * gamma(n as f64 + 1.5))).sqrt())
        .collect()
}

/// Overlap S_nn' = ∫₀^∞ r² R_n R_n' dr of the normalised primitives
/// (dimensionless), row-major n_max × n_max.
///
/// Written as Γ((n+n'+3)/2)/√(Γ(n+3/2)Γ(n'+3/2))·(sσ_n²)^(−(2n+3)/4)·(sσ_n'²)^(−(2n'+3)/4)
/// with s = (1/σ_n² + 1/σ_n'²)/2, which equals docs/CONVENTIONS.md §2.5's expression and is
/// free of large powers of σ; the diagonal is 1.
pub fn gto_overlap(widths: &[f64]) -> Vec<f64> {
    let size = widths.len();
    let mut overlap = vec![0.0; size * size];
    for n1 in 0..size {
        for n2 in n1..size {
            let (s1, s2) = (widths[n1], widths[n2]);
            let s = 0.5 * (1.0 / (s1 * s1) + 1.0 / (s2 * s2));
            let (e1, e2) = (n1 as f64 + 1.5, n2 as f64 + 1.5);
            let value = gamma(0.5 * (e1 + e2)) / (gamma(e1) * gamma(e2)).sqrt()
                * (s * s1 * s1).powf(-0.5 * e1)
                * (s * s2 * s2).powf(-0.5 * e2);
            overlap[n1 * size + n2] = value;
            overlap[n2 * size + n1] = value;
        }
    }
    overlap
}

/// The matrix O = S^(−1/2)·diag(N) (row-major, units of N) mapping the
/// un-normalised primitives r^n e^(−r²/2σ_n²) to the orthonormal basis:
/// ⟨n| = Σ_n' O_nn' r^n' e^(−r²/2σ_n'²).
///
/// Errors when an eigenvalue of S is ≤ machine epsilon: "radial overlap
/// matrix is singular, lower max_radial".
pub fn gto_orthonormalization(widths: &[f64]) -> Result<Vec<f64>> {
    let size = widths.len();
    let overlap = gto_overlap(widths);
    let matrix = DMatrix::from_row_slice(size, size, &overlap);
    let eigen = SymmetricEigen::new(matrix);
    let smallest = eigen.eigenvalues.iter().copied().fold(f64::INFINITY, f64::min);
    if smallest.is_nan() || smallest <= f64::EPSILON {
        return Err(Error::Numerical(format!(
            "radial overlap matrix is singular, lower max_radial (max_radial = {}, smallest eigenvalue {smallest:e})",
            size - 1
        )));
    }
    let normalization = gto_normalization(widths);
    let vectors = &eigen.eigenvectors;
    let inv_sqrt: Vec<f64> = eigen.eigenvalues.iter().map(|&v| 1.0 / v.sqrt()).collect();
    let mut result = vec![0.0; size * size];
    for i in 0..size {
        for j in 0..size {
            let mut sum = 0.0;
            for k in 0..size {
                sum += vectors[(i, k)] * inv_sqrt[k] * vectors[(j, k)];
            }
            result[i * size + j] = sum * normalization[j];
        }
    }
    Ok(result)
}

/// Whether x is a finite number > 0.
fn is_positive_finite(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// Exact GTO radial integral with a Gaussian density, all (n, l) at once.
#[derive(Debug, Clone)]
pub struct GtoRadialIntegral {
    max_angular: usize,
    size: usize,
    /// c = 1/(2σ²) (Å⁻²)
    c: f64,
    /// d_n = 1/(2σ_n²) (Å⁻²)
    d: Vec<f64>,
    /// c²/(c + d_n): z = this·r² (Å⁻²)
    z_factor: Vec<f64>,
    /// c d_n/(c + d_n): the remaining Gaussian decay e^(−this·r²) (Å⁻²)
    decay: Vec<f64>,
    /// 2c/(c + d_n), used in the derivative (dimensionless)
    derivative_factor: Vec<f64>,
    /// [l][n]: (π/σ²)^(3/4)·Γ(a)/Γ(b)·(c + d_n)^(−a)
    prefactor: Vec<f64>,
    /// [l][n]: a = (n + l + 3)/2
    a: Vec<f64>,
    /// [l][n]: (a − b)/b
    derivative_ratio: Vec<f64>,
    /// S^(−1/2)·diag(N), row-major n_max × n_max
    orthonormalization: Vec<f64>,
}

impl GtoRadialIntegral {
    /// Prepares the integral for `max_radial` (largest n, inclusive),
    /// `max_angular` (largest l), basis radius `cutoff` (Å) and Gaussian
    /// density width `density_width` σ (Å).
    ///
    /// Errors: non-positive or non-finite cutoff or width, more than
    /// [`MAX_GTO_SIZE`] radial functions (invalid parameter); singular
    /// overlap matrix (numerical).
    pub fn new(max_radial: usize, max_angular: usize, cutoff: f64, density_width: f64) -> Result<GtoRadialIntegral> {
        if !is_positive_finite(cutoff) {
            return Err(Error::InvalidParameter(format!("cutoff radius must be a positive number of Å, got {cutoff}")));
        }
        if !is_positive_finite(density_width) {
            return Err(Error::InvalidParameter(format!(
                "density width must be a positive number of Å, got {density_width}"
            )));
        }
        let size = max_radial + 1;
        if size > MAX_GTO_SIZE {
            return Err(Error::InvalidParameter(format!(
                "max_radial must be at most {}, got {max_radial}",
                MAX_GTO_SIZE - 1
            )));
        }

        let widths = gto_widths(size, cutoff);
        let orthonormalization = gto_orthonormalization(&widths)?;

        let sigma2 = density_width * density_width;
        let c = 0.5 / sigma2;
        let d: Vec<f64> = widths.iter().map(|s| 0.5 / (s * s)).collect();
        let z_factor = d.iter().map(|&dn| c * c / (c + dn)).collect();
        let decay = d.iter().map(|&dn| c * dn / (c + dn)).collect();
        let derivative_factor = d.iter().map(|&dn| 2.0 * c / (c + dn)).collect();

        // (π/σ²)^(3/4) gathers 4π (angular integral), √π/4 (radial
        // Gaussian integral) and the L² normalisation (πσ²)^(−3/4) of g
        let global = (std::f64::consts::PI / sigma2).powf(0.75);
        let mut prefactor = vec![0.0; (max_angular + 1) * size];
        let mut a_values = vec![0.0; (max_angular + 1) * size];
        let mut derivative_ratio = vec![0.0; (max_angular + 1) * size];
        for l in 0..=max_angular {
            let b = l as f64 + 1.5;
            for (n, &dn) in d.iter().enumerate() {
                let a = 0.5 * (n + l + 3) as f64;
                let i = l * size + n;
                a_values[i] = a;
                derivative_ratio[i] = (a - b) / b;
                prefactor[i] = global * gamma_ratio(a, b) * (c + dn).powf(-a);
            }
        }

        Ok(GtoRadialIntegral {
            max_angular,
            size,
            c,
            d,
            z_factor,
            decay,
            derivative_factor,
            prefactor,
            a: a_values,
            derivative_ratio,
            orthonormalization,
        })
    }

    /// The orthonormalisation matrix S^(−1/2)·diag(N), row-major.
    pub fn orthonormalization(&self) -> &[f64] {
        &self.orthonormalization
    }

    /// Primitive (not orthonormalised) integrals and derivatives of channel
    /// `l` at distance `r` (Å) into the first n_max entries of the buffers.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn primitive(
        &self,
        l: usize,
        r: f64,
        cr_l: f64,
        cr_l_minus_1: f64,
        z: &[f64],
        decay: &[f64],
        values: &mut [f64],
        derivatives: Option<&mut [f64]>,
    ) {
        let size = self.size;
        let b = l as f64 + 1.5;
        let row = l * size;
        match derivatives {
            None => {
                for n in 0..size {
                    let m = hyp1f1_scaled(self.a[row + n], b, z[n]);
                    values[n] = self.prefactor[row + n] * cr_l * decay[n] * m;
                }
            }
            Some(derivatives) => {
                let c = self.c;
                for n in 0..size {
                    let a = self.a[row + n];
                    let m = hyp1f1_scaled(a, b, z[n]);
                    let common = self.prefactor[row + n] * decay[n];
                    values[n] = common * cr_l * m;

                    // d/dr of (cr)^l: l c (cr)^(l−1), written without 1/r so that r = 0 works
                    let power_term = if l > 0 { l as f64 * c * cr_l_minus_1 * m } else { 0.0 };
                    // d/dr of e^(−(d/c) z) e^(−z)₁F₁ with dz/dr = 2c²r/(c + d)
                    let ratio = self.derivative_ratio[row + n];
                    let dm = if ratio != 0.0 { ratio * hyp1f1_scaled(a, b + 1.0, z[n]) } else { 0.0 };
                    let z_term = cr_l * self.derivative_factor[n] * r * (c * dm - self.d[n] * m);
                    derivatives[n] = common * (power_term + z_term);
                }
            }
        }
    }
}

impl RadialIntegral for GtoRadialIntegral {
    fn max_angular(&self) -> usize {
        self.max_angular
    }

    fn size(&self) -> usize {
        self.size
    }

    fn compute(&self, r: f64, values: &mut [f64], mut derivatives: Option<&mut [f64]>) {
        let size = self.size;
        let total = (self.max_angular + 1) * size;
        assert!(values.len() >= total, "values has {} entries, expected {total}", values.len());
        if let Some(d) = derivatives.as_deref() {
            assert!(d.len() >= total, "derivatives has {} entries, expected {total}", d.len());
        }
        debug_assert!(r >= 0.0, "negative distance {r}");

        // per-call scratch on the stack: no allocation, safe from any thread
        let mut z = [0.0; MAX_GTO_SIZE];
        let mut decay = [0.0; MAX_GTO_SIZE];
        let r2 = r * r;
        for n in 0..size {
            z[n] = self.z_factor[n] * r2;
            decay[n] = (-self.decay[n] * r2).exp();
        }
        let mut primitive = [0.0; MAX_GTO_SIZE];
        let mut primitive_derivative = [0.0; MAX_GTO_SIZE];

        let cr = self.c * r;
        let mut cr_l = 1.0; // (c r)^l
        let mut cr_l_minus_1 = 0.0; // (c r)^(l−1), only used for l ≥ 1
        for l in 0..=self.max_angular {
            if l > 0 {
                cr_l_minus_1 = cr_l;
                cr_l *= cr;
            }
            let want_derivative = derivatives.is_some();
            self.primitive(
                l,
                r,
                cr_l,
                cr_l_minus_1,
                &z[..size],
                &decay[..size],
                &mut primitive[..size],
                if want_derivative { Some(&mut primitive_derivative[..size]) } else { None },
            );

            // orthonormalise: out_n = Σ_n' O_nn' primitive_n'
            let out = &mut values[l * size..(l + 1) * size];
            for (n, value) in out.iter_mut().enumerate() {
                let row = &self.orthonormalization[n * size..(n + 1) * size];
                *value = row.iter().zip(&primitive[..size]).map(|(o, p)| o * p).sum();
            }
            if let Some(d) = derivatives.as_deref_mut() {
                let out = &mut d[l * size..(l + 1) * size];
                for (n, value) in out.iter_mut().enumerate() {
                    let row = &self.orthonormalization[n * size..(n + 1) * size];
                    *value = row.iter().zip(&primitive_derivative[..size]).map(|(o, p)| o * p).sum();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// High-precision values from scripts/reference/mpmath_special.py.
    fn reference() -> serde_json::Value {
        serde_json::from_str(include_str!("../../tests/data/special_functions.json")).expect("valid reference JSON")
    }

    fn compute(gto: &GtoRadialIntegral, r: f64) -> (Vec<f64>, Vec<f64>) {
        let total = (gto.max_angular() + 1) * gto.size();
        let (mut values, mut derivatives) = (vec![0.0; total], vec![0.0; total]);
        gto.compute(r, &mut values, Some(&mut derivatives));
        (values, derivatives)
    }

    #[test]
    fn against_mpmath() {
        let data = reference();
        for case in data["radial"].as_array().unwrap() {
            let max_radial = case["max_radial"].as_u64().unwrap() as usize;
            let max_angular = case["max_angular"].as_u64().unwrap() as usize;
            let cutoff = case["cutoff"].as_f64().unwrap();
            let width = case["density_width"].as_f64().unwrap();
            let gto = GtoRadialIntegral::new(max_radial, max_angular, cutoff, width).unwrap();
            let size = max_radial + 1;
            // error of each (l, r) row relative to the largest |value| of the
            // row (orthonormalised values change sign across n), and
            // element-wise relative error where the value is not tiny
            let (mut worst_row, mut worst_element, mut worst_derivative) = (0.0f64, 0.0f64, 0.0f64);
            for point in case["points"].as_array().unwrap() {
                let r = point["r"].as_f64().unwrap();
                let (values, derivatives) = compute(&gto, r);
                for l in 0..=max_angular {
                    let expected: Vec<f64> =
                        point["values"][l].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                    let expected_derivative: Vec<f64> =
                        point["derivatives"][l].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                    let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                    let derivative_scale = expected_derivative.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                    for n in 0..size {
                        let (value, reference) = (values[l * size + n], expected[n]);
                        if scale > 0.0 {
                            worst_row = worst_row.max((value - reference).abs() / scale);
                            if reference.abs() > 1e-3 * scale {
                                worst_element = worst_element.max(((value - reference) / reference).abs());
                            }
                        } else {
                            assert_eq!(value, 0.0, "l={l} n={n} r={r}");
                        }
                        let (derivative, reference) = (derivatives[l * size + n], expected_derivative[n]);
                        if derivative_scale > 0.0 {
                            worst_derivative = worst_derivative.max((derivative - reference).abs() / derivative_scale);
                        } else {
                            assert_eq!(derivative, 0.0, "l={l} n={n} r={r}");
                        }
                    }
                }
            }
            eprintln!(
                "GTO max_radial={max_radial} max_angular={max_angular} cutoff={cutoff} width={width}: \
                 row-relative {worst_row:e}, element-relative {worst_element:e}, derivative row-relative {worst_derivative:e}"
            );
            // The overlap condition number κ(S) grows fast with max_radial
            // (3e4 at 8 functions, 4e7 at 13). Rounding S's entries to double
            // alone moves S^(−1/2) by ~κ·ε (6e-9 at 13 functions, checked
            // with mpmath), so any double-precision code, featomic included,
            // carries that error; allow it for the largest case.
            let tolerance = if max_radial <= 8 { 1e-12 } else { 1e-8 };
            assert!(worst_row < tolerance, "values: {worst_row:e}");
            // entries much smaller than their row come out of the S^(−1/2)
            // sum with cancellation: only the row-relative error is ~ε·κ
            assert!(worst_element < 1e3 * tolerance, "values: {worst_element:e}");
            assert!(worst_derivative < tolerance, "derivatives: {worst_derivative:e}");
        }
    }

    #[test]
    fn orthonormalization_is_inverse_square_root() {
        let widths = gto_widths(8, 5.0);
        let o = gto_orthonormalization(&widths).unwrap();
        let s = gto_overlap(&widths);
        let norm = gto_normalization(&widths);
        let size = widths.len();
        // (O N⁻¹) S (O N⁻¹)ᵀ = S^(−1/2) S S^(−1/2) = 1
        for i in 0..size {
            for j in 0..size {
                let mut sum = 0.0;
                for a in 0..size {
                    for b in 0..size {
                        sum += o[i * size + a] / norm[a] * s[a * size + b] * o[j * size + b] / norm[b];
                    }
                }
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((sum - expected).abs() < 1e-10, "({i}, {j}): {sum}");
            }
        }
        for n in 0..size {
            assert!((s[n * size + n] - 1.0).abs() < 1e-15);
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for &(width, cutoff) in &[(0.5, 5.0), (0.1, 8.0), (0.3, 4.0)] {
            let gto = GtoRadialIntegral::new(7, 10, cutoff, width).unwrap();
            for &r in &[0.3, 1.1, 2.5, 3.9, 7.5] {
                let h = 1e-6;
                let (values, derivatives) = compute(&gto, r);
                let (plus, _) = compute(&gto, r + h);
                let (minus, _) = compute(&gto, r - h);
                let scale = values.iter().chain(&derivatives).fold(0.0f64, |m, v| m.max(v.abs()));
                for i in 0..values.len() {
                    let fd = (plus[i] - minus[i]) / (2.0 * h);
                    assert!((fd - derivatives[i]).abs() < 1e-7 * scale.max(1e-300), "σ={width} r={r} i={i}: {fd} {}", derivatives[i]);
                }
            }
        }
    }

    #[test]
    fn limits_at_zero() {
        let gto = GtoRadialIntegral::new(5, 4, 4.0, 0.4).unwrap();
        let size = 6;
        let (values, derivatives) = compute(&gto, 0.0);
        let (values_small, derivatives_small) = compute(&gto, 1e-9);
        for l in 0..=4 {
            for n in 0..size {
                let i = l * size + n;
                if l > 0 {
                    assert_eq!(values[i], 0.0);
                }
                if l != 1 {
                    assert_eq!(derivatives[i], 0.0);
                } else {
                    assert!(derivatives[i] != 0.0);
                }
                // continuity from r > 0
                assert!((values[i] - values_small[i]).abs() < 1e-7 * values[..size].iter().fold(0.0f64, |m, v| m.max(v.abs())));
                assert!((derivatives[i] - derivatives_small[i]).abs() < 1e-6 * derivatives.iter().fold(0.0f64, |m, v| m.max(v.abs())));
            }
        }
        assert!(values.iter().chain(&derivatives).all(|v| v.is_finite()));
    }

    #[test]
    fn large_distances_and_narrow_densities_stay_finite() {
        // z = c²r²/(c + d) reaches ~10⁶ here: ₁F₁ itself would overflow
        let gto = GtoRadialIntegral::new(8, 12, 10.0, 0.05).unwrap();
        for &r in &[5.0, 9.99, 20.0, 60.0] {
            let (values, derivatives) = compute(&gto, r);
            assert!(values.iter().chain(&derivatives).all(|v| v.is_finite()), "r = {r}");
        }
        // far outside every basis function, everything decays to 0
        let (values, _) = compute(&gto, 60.0);
        assert!(values.iter().all(|v| v.abs() < 1e-30));
    }

    #[test]
    fn invalid_parameters() {
        let error = GtoRadialIntegral::new(30, 3, 5.0, 0.4).unwrap_err();
        assert!(
            matches!(&error, Error::Numerical(m) if m.contains("radial overlap matrix is singular, lower max_radial")),
            "{error}"
        );
        assert!(matches!(GtoRadialIntegral::new(3, 3, 0.0, 0.4), Err(Error::InvalidParameter(_))));
        assert!(matches!(GtoRadialIntegral::new(3, 3, 5.0, -0.1), Err(Error::InvalidParameter(_))));
        assert!(matches!(GtoRadialIntegral::new(3, 3, f64::NAN, 0.3), Err(Error::InvalidParameter(_))));
        assert!(matches!(GtoRadialIntegral::new(64, 3, 5.0, 0.3), Err(Error::InvalidParameter(_))));
    }

    #[test]
    fn shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<GtoRadialIntegral>();
        assert_send_sync::<crate::basis::SplinedRadialIntegral>();
    }
}
