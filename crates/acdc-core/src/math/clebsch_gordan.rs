//! Clebsch–Gordan coefficients and Wigner D matrices for *real* spherical
//! harmonics, in the convention of this crate's harmonics (m < 0 ↔ sin|m|φ,
//! m > 0 ↔ cos mφ, (Y_1^−1, Y_1^0, Y_1^1) ∝ (y, z, x)), which is featomic's.
//!
//! **Complex coefficients.** ⟨l₁ m₁; l₂ m₂ | L M⟩ (Condon–Shortley phase)
//! from Racah's closed formula (G. Racah, Phys. Rev. 62, 438 (1942),
//! doi:10.1103/PhysRev.62.438), summed in floating point. The alternating sum
//! loses a little precision as l grows; degrees are therefore capped at
//! [`MAX_DEGREE`], where the coupling matrices stay orthogonal to ~1e-13.
//!
//! **Real coefficients.** With `Y^real_l = U_l Y^complex_l`, where row m of
//! the unitary `U_l` is `(i δ_{m'm} − i(−1)^m δ_{m',−m})/√2` for m < 0, `δ_{m'0}`
//! for m = 0 and `(δ_{m',−m} + (−1)^m δ_{m'm})/√2` for m > 0,
//! `T[m₁,m₂,μ] = Σ U_L[μ,M] ⟨l₁a; l₂b|LM⟩ conj(U_l₁[m₁,a]) conj(U_l₂[m₂,b])`
//! is purely real when l₁ + l₂ + L is even and purely imaginary otherwise;
//! the stored coefficient is that non-zero part. Coupling then uses
//! `Ĉ = (−1)^{l₁+l₂+L} · C^stored`: this is the sign featomic's
//! `clebsch_gordan` module applies at coupling time, kept here so that
//! products of densities match featomic's numbers and signs exactly.
//! With it, coupling l ⊗ l → 0 is `(−1)^l/√(2l+1) Σ_m a_m b_m`, the SOAP
//! power-spectrum normalisation. For real inputs that transform like real
//! harmonics, `Σ_{m₁m₂} Ĉ[m₁,m₂,μ] a_{m₁} b_{m₂}` transforms like a degree-L
//! real harmonic.
//!
//! **Wigner D.** `D^l(R)` is defined by `Y^real_l(R r̂) = D^l(R) Y^real_l(r̂)`
//! (rows = new μ). It is computed as the projection
//! `D[μ,μ'] = ∫ Y_μ(R r̂) Y_μ'(r̂) dΩ`, with a product quadrature
//! (Gauss–Legendre in cos θ, uniform in φ) that is exact for the degree-2l
//! polynomial integrand: no Euler angles, hence no convention to match.
use std::f64::consts::{FRAC_1_SQRT_2, PI};

use super::spherical_harmonics::SphericalHarmonics;
use crate::error::{Error, Result};

/// Largest degree accepted by the functions of this module.
pub const MAX_DEGREE: usize = 24;

fn check_degree(name: &str, l: usize) -> Result<()> {
    if l > MAX_DEGREE {
        return Err(Error::InvalidParameter(format!("{name} is {l}, larger than the largest supported degree {MAX_DEGREE}")));
    }
    Ok(())
}

/// n! for n ≤ 3·MAX_DEGREE + 1, as f64 (exact up to 22!, then rounded).
fn factorial(n: usize) -> f64 {
    (1..=n).fold(1.0, |acc, k| acc * k as f64)
}

/// Complex ⟨l₁ m₁; l₂ m₂ | L M⟩ with the Condon–Shortley phase (Racah's formula).
pub fn complex_clebsch_gordan(l1: usize, m1: i64, l2: usize, m2: i64, l: usize, m: i64) -> f64 {
    let (j1, j2, j) = (l1 as i64, l2 as i64, l as i64);
    if m1 + m2 != m || m1.abs() > j1 || m2.abs() > j2 || m.abs() > j || j < (j1 - j2).abs() || j > j1 + j2 {
        return 0.0;
    }
    let f = |n: i64| factorial(n as usize);
    let prefactor = ((2 * j + 1) as f64 * f(j + j1 - j2) * f(j - j1 + j2) * f(j1 + j2 - j) / f(j1 + j2 + j + 1)).sqrt()
        * (f(j + m) * f(j - m) * f(j1 - m1) * f(j1 + m1) * f(j2 - m2) * f(j2 + m2)).sqrt();
    let k_min = 0.max(j2 - j - m1).max(j1 - j + m2);
    let k_max = (j1 + j2 - j).min(j1 - m1).min(j2 + m2);
    let mut sum = 0.0;
    for k in k_min..=k_max {
        let term = 1.0 / (f(k) * f(j1 + j2 - j - k) * f(j1 - m1 - k) * f(j2 + m2 - k) * f(j - j2 + m1 + k) * f(j - j1 - m2 + k));
        sum += if k % 2 == 0 { term } else { -term };
    }
    prefactor * sum
}

/// The (at most two) non-zero entries `(m', U_l[m, m'])` of row m of the
/// complex-to-real matrix, as (re, im) pairs.
fn u_row(m: i64) -> [(i64, (f64, f64)); 2] {
    let sign = if m % 2 == 0 { 1.0 } else { -1.0 };
    let h = FRAC_1_SQRT_2;
    if m < 0 {
        [(m, (0.0, h)), (-m, (0.0, -sign * h))]
    } else if m == 0 {
        [(0, (1.0, 0.0)), (0, (0.0, 0.0))]
    } else {
        [(-m, (h, 0.0)), (m, (sign * h, 0.0))]
    }
}

fn cmul(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0)
}

fn conj(a: (f64, f64)) -> (f64, f64) {
    (a.0, -a.1)
}

/// featomic's stored real coefficients C^stored (without the coupling sign),
/// dense `[m₁+l₁][m₂+l₂][μ+L]`.
fn stored_real(l1: usize, l2: usize, l: usize) -> Vec<f64> {
    let (n1, n2, n) = (2 * l1 + 1, 2 * l2 + 1, 2 * l + 1);
    let mut out = vec![0.0; n1 * n2 * n];
    let imaginary = (l1 + l2 + l) % 2 == 1;
    for (i1, m1) in (-(l1 as i64)..=l1 as i64).enumerate() {
        for (i2, m2) in (-(l2 as i64)..=l2 as i64).enumerate() {
            for (i, mu) in (-(l as i64)..=l as i64).enumerate() {
                let mut t = (0.0, 0.0);
                // for m = 0 the second entry has a zero coefficient
                for (a, ua) in u_row(m1) {
                    for (b, ub) in u_row(m2) {
                        for (big_m, um) in u_row(mu) {
                            if a + b != big_m || (m1 == 0 && ua == (0.0, 0.0)) {
                                continue;
                            }
                            let c = complex_clebsch_gordan(l1, a, l2, b, l, big_m);
                            if c == 0.0 {
                                continue;
                            }
                            let p = cmul(cmul(um, conj(ua)), conj(ub));
                            t.0 += c * p.0;
                            t.1 += c * p.1;
                        }
                    }
                }
                out[(i1 * n2 + i2) * n + i] = if imaginary { t.1 } else { t.0 };
            }
        }
    }
    out
}

/// Real Clebsch–Gordan coefficients Ĉ^{l₁ l₂ L}, including featomic's
/// coupling sign (−1)^{l₁+l₂+L}: dense row-major `[m₁+l₁][m₂+l₂][μ+L]`, shape
/// (2l₁+1, 2l₂+1, 2L+1). All zero unless |l₁ − l₂| ≤ L ≤ l₁ + l₂.
pub fn real_clebsch_gordan(l1: usize, l2: usize, l: usize) -> Result<Vec<f64>> {
    check_degree("l1", l1)?;
    check_degree("l2", l2)?;
    check_degree("L", l)?;
    let mut c = stored_real(l1, l2, l);
    if (l1 + l2 + l) % 2 == 1 {
        c.iter_mut().for_each(|v| *v = -*v);
    }
    Ok(c)
}

/// One non-zero coefficient Ĉ[m₁,m₂,μ] (indices are m + l, 0-based).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CgEntry {
    /// m₁ + l₁
    pub m1: usize,
    /// m₂ + l₂
    pub m2: usize,
    /// μ + L
    pub mu: usize,
    /// Ĉ, coupling sign included
    pub value: f64,
}

/// Sparse real coefficients for every l₁, l₂ ≤ `max_l` and
/// |l₁ − l₂| ≤ L ≤ min(l₁ + l₂, `max_lambda`). Only about a (2L+1)-th of the
/// dense entries are non-zero (|μ| ∈ {|m₁ + m₂|, |m₁ − m₂|}), so products
/// loop over the stored entries only.
#[derive(Debug, Clone)]
pub struct ClebschGordan {
    max_l: usize,
    max_lambda: usize,
    entries: Vec<Vec<CgEntry>>,
}

impl ClebschGordan {
    /// Tabulates the coefficients; degrees above [`MAX_DEGREE`] are an error.
    pub fn new(max_l: usize, max_lambda: usize) -> Result<ClebschGordan> {
        check_degree("max_angular", max_l)?;
        check_degree("max_angular", max_lambda)?;
        let mut entries = Vec::with_capacity((max_l + 1) * (max_l + 1) * (max_lambda + 1));
        for l1 in 0..=max_l {
            for l2 in 0..=max_l {
                for l in 0..=max_lambda {
                    let mut list = Vec::new();
                    if l + l1.min(l2) >= l1.max(l2) && l <= l1 + l2 {
                        let dense = real_clebsch_gordan(l1, l2, l)?;
                        let (n2, n) = (2 * l2 + 1, 2 * l + 1);
                        for (k, &value) in dense.iter().enumerate() {
                            // the exact zeros of the selection rules come out at
                            // the 1e-17 level; featomic drops below 1e-15 too
                            if value.abs() > 1e-15 {
                                list.push(CgEntry { m1: k / (n2 * n), m2: (k / n) % n2, mu: k % n, value });
                            }
                        }
                    }
                    entries.push(list);
                }
            }
        }
        Ok(ClebschGordan { max_l, max_lambda, entries })
    }

    /// The table for (`max_l`, `max_lambda`), built once per process and
    /// shared: callers that size a table per call (density correlations)
    /// would otherwise spend a few percent of the call in Racah's sums. The
    /// last few tables asked for are kept.
    pub fn shared(max_l: usize, max_lambda: usize) -> Result<std::sync::Arc<ClebschGordan>> {
        use std::sync::{Arc, Mutex};
        static CACHE: Mutex<Vec<Arc<ClebschGordan>>> = Mutex::new(Vec::new());
        let found = {
            let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
            cache.iter().find(|t| t.max_l == max_l && t.max_lambda == max_lambda).cloned()
        };
        if let Some(table) = found {
            return Ok(table);
        }
        let table = Arc::new(ClebschGordan::new(max_l, max_lambda)?);
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= 4 {
            cache.remove(0);
        }
        cache.push(Arc::clone(&table));
        Ok(table)
    }

    /// Non-zero entries of Ĉ^{l₁ l₂ L} (empty when the triangle rule fails).
    /// Panics if a degree exceeds the tabulated range: callers size the
    /// table from the same settings they loop over.
    pub fn get(&self, l1: usize, l2: usize, l: usize) -> &[CgEntry] {
        assert!(l1 <= self.max_l && l2 <= self.max_l && l <= self.max_lambda, "CG ({l1},{l2},{l}) outside the table");
        &self.entries[(l1 * (self.max_l + 1) + l2) * (self.max_lambda + 1) + l]
    }

    /// Largest l₁, l₂ in the table.
    pub fn max_l(&self) -> usize {
        self.max_l
    }

    /// Largest L in the table.
    pub fn max_lambda(&self) -> usize {
        self.max_lambda
    }
}

/// Gauss–Legendre nodes and weights on [−1, 1] (Newton on P_n).
fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    for i in 0..n {
        let mut x = (PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, x);
            for k in 2..=n {
                let kf = k as f64;
                let p2 = ((2.0 * kf - 1.0) * x * p1 - (kf - 1.0) * p0) / kf;
                p0 = p1;
                p1 = p2;
            }
            let pn = if n == 0 { 1.0 } else { p1 };
            let pn1 = if n == 1 { 1.0 } else { p0 };
            dp = n as f64 * (x * pn - pn1) / (x * x - 1.0);
            let dx = pn / dp;
            x -= dx;
            if dx.abs() < 1e-16 {
                break;
            }
        }
        nodes[i] = x;
        weights[i] = 2.0 / ((1.0 - x * x) * dp * dp);
    }
    (nodes, weights)
}

/// Real Wigner matrix D^l(R) for a proper rotation R (row-major 3×3, acting
/// on column vectors: r' = R r), such that Y_l(R r̂) = D^l(R) Y_l(r̂) with the
/// real harmonics of this crate. Row-major (2l+1)², rows = new μ. R must be
/// orthogonal with determinant +1 (checked to 1e-8); for an improper matrix
/// use D^l(−R)·(−1)^l.
pub fn wigner_d(l: usize, rotation: &[f64]) -> Result<Vec<f64>> {
    check_degree("l", l)?;
    if rotation.len() != 9 || rotation.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidParameter(format!(
            "rotation must be 9 finite numbers (a row-major 3×3 matrix), got {} values",
            rotation.len()
        )));
    }
    let r = rotation;
    for i in 0..3 {
        for j in 0..3 {
            let dot: f64 = (0..3).map(|k| r[3 * i + k] * r[3 * j + k]).sum();
            let expected = if i == j { 1.0 } else { 0.0 };
            if (dot - expected).abs() > 1e-8 {
                return Err(Error::InvalidParameter(format!(
                    "rotation is not orthogonal: (R Rᵀ)[{i}][{j}] = {dot} (expected {expected})"
                )));
            }
        }
    }
    let det = r[0] * (r[4] * r[8] - r[5] * r[7]) - r[1] * (r[3] * r[8] - r[5] * r[6]) + r[2] * (r[3] * r[7] - r[4] * r[6]);
    if det < 0.0 {
        return Err(Error::InvalidParameter(format!("rotation has determinant {det}: it must be a proper rotation (+1)")));
    }
    let n = 2 * l + 1;
    let sph = SphericalHarmonics::new(l);
    let (nodes, weights) = gauss_legendre(l + 1);
    let n_phi = 2 * l + 2;
    let mut y = vec![0.0; sph.size()];
    let mut y_rot = vec![0.0; sph.size()];
    let mut d = vec![0.0; n * n];
    let offset = l * l;
    for (&z, &w) in nodes.iter().zip(&weights) {
        let s = (1.0 - z * z).max(0.0).sqrt();
        for k in 0..n_phi {
            let phi = 2.0 * PI * k as f64 / n_phi as f64;
            let p = [s * phi.cos(), s * phi.sin(), z];
            let q = [
                r[0] * p[0] + r[1] * p[1] + r[2] * p[2],
                r[3] * p[0] + r[4] * p[1] + r[5] * p[2],
                r[6] * p[0] + r[7] * p[1] + r[8] * p[2],
            ];
            sph.compute(p, &mut y);
            sph.compute(q, &mut y_rot);
            let weight = w * 2.0 * PI / n_phi as f64;
            for a in 0..n {
                let ya = weight * y_rot[offset + a];
                for b in 0..n {
                    d[a * n + b] += ya * y[offset + b];
                }
            }
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotation(axis: [f64; 3], angle: f64) -> [f64; 9] {
        let n = (axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]).sqrt();
        let (x, y, z) = (axis[0] / n, axis[1] / n, axis[2] / n);
        let (s, c) = angle.sin_cos();
        let t = 1.0 - c;
        [
            t * x * x + c,
            t * x * y - s * z,
            t * x * z + s * y,
            t * x * y + s * z,
            t * y * y + c,
            t * y * z - s * x,
            t * x * z - s * y,
            t * y * z + s * x,
            t * z * z + c,
        ]
    }

    #[test]
    fn complex_values_known() {
        // <1 0; 1 0 | 0 0> = −1/√3, <1 1; 1 −1 | 0 0> = 1/√3, <1/2 ...> not integer
        assert!((complex_clebsch_gordan(1, 0, 1, 0, 0, 0) + 1.0 / 3f64.sqrt()).abs() < 1e-15);
        assert!((complex_clebsch_gordan(1, 1, 1, -1, 0, 0) - 1.0 / 3f64.sqrt()).abs() < 1e-15);
        // <1 1; 1 0 | 2 1> = 1/√2, <2 0; 1 0 | 1 0> = −√(2/5)
        assert!((complex_clebsch_gordan(1, 1, 1, 0, 2, 1) - FRAC_1_SQRT_2).abs() < 1e-15);
        assert!((complex_clebsch_gordan(2, 0, 1, 0, 1, 0) + (2.0f64 / 5.0).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn featomic_signs() {
        // l ⊗ l → 0 is (−1)^l/√(2l+1) δ_{m1 m2}
        for l in 0..6 {
            let c = real_clebsch_gordan(l, l, 0).unwrap();
            let n = 2 * l + 1;
            for a in 0..n {
                for b in 0..n {
                    let expected = if a == b { (if l % 2 == 0 { 1.0 } else { -1.0 }) / (n as f64).sqrt() } else { 0.0 };
                    assert!((c[a * n + b] - expected).abs() < 1e-14, "l={l} {a} {b}: {}", c[a * n + b]);
                }
            }
        }
        // 1 ⊗ 1 → 1 in (y, z, x) order: −(a × b)/√2 in (y, z, x) order
        let c = real_clebsch_gordan(1, 1, 1).unwrap();
        let a = [0.3, -1.2, 0.7]; // (y, z, x)
        let b = [1.1, 0.4, -0.5];
        let mut out = [0.0; 3];
        for i in 0..3 {
            for j in 0..3 {
                for k in 0..3 {
                    out[k] += c[(i * 3 + j) * 3 + k] * a[i] * b[j];
                }
            }
        }
        let (ax, ay, az) = (a[2], a[0], a[1]);
        let (bx, by, bz) = (b[2], b[0], b[1]);
        let cross = [az * bx - ax * bz, ax * by - ay * bx, ay * bz - az * by]; // (y, z, x) components
        for k in 0..3 {
            assert!((out[k] + cross[k] * FRAC_1_SQRT_2).abs() < 1e-15, "{out:?} vs {cross:?}");
        }
    }

    /// Σ_{m1 m2} C[m1,m2,μ] C[m1,m2,μ'] = δ_{μμ'} and completeness over L.
    #[test]
    fn orthogonality() {
        for l1 in 0..=10 {
            for l2 in 0..=10 {
                let (n1, n2) = (2 * l1 + 1, 2 * l2 + 1);
                let mut completeness = vec![0.0; (n1 * n2) * (n1 * n2)];
                for l in l1.abs_diff(l2)..=l1 + l2 {
                    let n = 2 * l + 1;
                    let c = real_clebsch_gordan(l1, l2, l).unwrap();
                    for mu in 0..n {
                        for nu in 0..n {
                            let s: f64 = (0..n1 * n2).map(|k| c[k * n + mu] * c[k * n + nu]).sum();
                            let expected = if mu == nu { 1.0 } else { 0.0 };
                            assert!((s - expected).abs() < 1e-13, "({l1},{l2},{l}) {mu} {nu}: {s}");
                        }
                    }
                    for a in 0..n1 * n2 {
                        for b in 0..n1 * n2 {
                            completeness[a * n1 * n2 + b] += (0..n).map(|mu| c[a * n + mu] * c[b * n + mu]).sum::<f64>();
                        }
                    }
                }
                for a in 0..n1 * n2 {
                    for b in 0..n1 * n2 {
                        let expected = if a == b { 1.0 } else { 0.0 };
                        assert!((completeness[a * n1 * n2 + b] - expected).abs() < 1e-13);
                    }
                }
            }
        }
    }

    #[test]
    fn largest_degree_stays_orthogonal() {
        let l1 = MAX_DEGREE;
        for l in [0, 7, MAX_DEGREE] {
            let c = real_clebsch_gordan(l1, l1, l).unwrap();
            let n = 2 * l + 1;
            let s: f64 = c.chunks_exact(n).map(|row| row[0] * row[0]).sum();
            assert!((s - 1.0).abs() < 1e-11, "{l}: {s}");
        }
        assert!(real_clebsch_gordan(MAX_DEGREE + 1, 0, MAX_DEGREE + 1).is_err());
    }

    /// Y_l(R r) = D Y_l(r), D orthogonal, D(R1 R2) = D(R1) D(R2), and the
    /// l = 1 closed form D = Π R Πᵀ with (y, z, x) ordering.
    #[test]
    fn wigner_d_equivariance() {
        let r = rotation([0.3, -0.8, 0.5], 1.234);
        let r2 = rotation([1.0, 0.2, -0.1], -2.1);
        let sph = SphericalHarmonics::new(12);
        let points = [[0.2, -0.5, 0.84], [-0.9, 0.1, 0.3], [0.0, 0.0, 1.0], [0.5, 0.5, -0.7]];
        let mut y = vec![0.0; sph.size()];
        let mut y_rot = vec![0.0; sph.size()];
        for l in 0..=12 {
            let n = 2 * l + 1;
            let d = wigner_d(l, &r).unwrap();
            for p in points {
                let q = [
                    r[0] * p[0] + r[1] * p[1] + r[2] * p[2],
                    r[3] * p[0] + r[4] * p[1] + r[5] * p[2],
                    r[6] * p[0] + r[7] * p[1] + r[8] * p[2],
                ];
                sph.compute(p, &mut y);
                sph.compute(q, &mut y_rot);
                for a in 0..n {
                    let dy: f64 = (0..n).map(|b| d[a * n + b] * y[l * l + b]).sum();
                    assert!((dy - y_rot[l * l + a]).abs() < 1e-13, "l={l}: {dy} vs {}", y_rot[l * l + a]);
                }
            }
            // orthogonal
            for a in 0..n {
                for b in 0..n {
                    let s: f64 = (0..n).map(|k| d[a * n + k] * d[b * n + k]).sum();
                    assert!((s - if a == b { 1.0 } else { 0.0 }).abs() < 1e-13);
                }
            }
            // group property
            let mut r12 = [0.0; 9];
            for i in 0..3 {
                for j in 0..3 {
                    r12[i * 3 + j] = (0..3).map(|k| r[i * 3 + k] * r2[k * 3 + j]).sum();
                }
            }
            let (d2, d12) = (wigner_d(l, &r2).unwrap(), wigner_d(l, &r12).unwrap());
            for a in 0..n {
                for b in 0..n {
                    let s: f64 = (0..n).map(|k| d[a * n + k] * d2[k * n + b]).sum();
                    assert!((s - d12[a * n + b]).abs() < 1e-13);
                }
            }
        }
        let d1 = wigner_d(1, &r).unwrap();
        let perm = [1, 2, 0]; // (y, z, x)
        for a in 0..3 {
            for b in 0..3 {
                assert!((d1[a * 3 + b] - r[perm[a] * 3 + perm[b]]).abs() < 1e-14);
            }
        }
        assert!(wigner_d(2, &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0]).is_err());
        assert!(wigner_d(2, &[1.0, 0.0, 0.0]).is_err());
        assert!(wigner_d(2, &[2.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]).is_err());
    }

    /// Coupling two harmonics gives a degree-L covariant: C(D a, D b) = D C(a, b).
    #[test]
    fn coupling_is_equivariant() {
        let r = rotation([0.1, 0.9, -0.4], 0.77);
        let table = ClebschGordan::new(4, 8).unwrap();
        let a: Vec<f64> = (0..81).map(|k| ((k * 37 % 11) as f64 - 5.0) / 7.0).collect();
        let b: Vec<f64> = (0..81).map(|k| ((k * 53 % 13) as f64 - 6.0) / 5.0).collect();
        let ds: Vec<Vec<f64>> = (0..=8).map(|l| wigner_d(l, &r).unwrap()).collect();
        let rotate = |v: &[f64]| -> Vec<f64> {
            let mut out = vec![0.0; 81];
            for l in 0..=4 {
                let n = 2 * l + 1;
                for i in 0..n {
                    out[l * l + i] = (0..n).map(|j| ds[l][i * n + j] * v[l * l + j]).sum();
                }
            }
            out
        };
        let (ra, rb) = (rotate(&a), rotate(&b));
        for l1 in 0..=4usize {
            for l2 in 0..=4usize {
                for l in l1.abs_diff(l2)..=l1 + l2 {
                    let n = 2 * l + 1;
                    let couple = |x: &[f64], y: &[f64]| {
                        let mut out = vec![0.0; n];
                        for e in table.get(l1, l2, l) {
                            out[e.mu] += e.value * x[l1 * l1 + e.m1] * y[l2 * l2 + e.m2];
                        }
                        out
                    };
                    let (plain, rotated) = (couple(&a, &b), couple(&ra, &rb));
                    for i in 0..n {
                        let expected: f64 = (0..n).map(|j| ds[l][i * n + j] * plain[j]).sum();
                        assert!((rotated[i] - expected).abs() < 1e-12, "({l1},{l2},{l})");
                    }
                }
            }
        }
    }
}
