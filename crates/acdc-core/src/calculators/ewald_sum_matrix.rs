//! Ewald sum matrix (Faber, Lindmaa, von Lilienfeld & Armiento, Int. J.
//! Quantum Chem. 115, 1094 (2015), doi:10.1002/qua.24917) with the
//! conventions of DScribe 2.1.2: point charges Z_i (e), lengths in Å, no
//! 1/(4πε₀), so entries are in e²/Å.
//!
//! With the screening parameter a (Å⁻¹), the volume V and the reciprocal
//! vectors G (2π B⁻ᵀ), M = M_real + M_recip + M_0:
//!
//! ```text
//! M_real[i,j]  = Σ_{images n, 1e-8 < d < r_cut} Z_i Z_j erfc(a d) / d,  d = |R_j + n − R_i|
//! M_recip[i,j] = (4π / V) Z_i Z_j Σ_{0 < |G| ≤ g_cut} exp(−G² / 4a²) / G² cos(G·(R_j − R_i))
//! M_0[i,i]     = −a/√π Z_i² − π Z_i² / (2 V a²),     M_0[i,j≠i] = −π Z_i Z_j / (V a²)
//! ```
//!
//! with the diagonals of M_real and M_recip halved, so that the electrostatic
//! energy is the sum of the upper triangle, diagonal included. Defaults
//! (Jackson & Catlow, Mol. Simul. 1, 207 (1988)): a = √π (N w / V²)^{1/6},
//! f = √(−ln accuracy), r_cut = f / a, g_cut = 2 a f. The system is periodic
//! along a, b and c whatever its `pbc` (DScribe forces it).
//!
//! Gradients are analytic at fixed sets of real and reciprocal terms; the
//! strain gradient includes the change of V and, when a is the default, of a.
//! Permutations, padding and the `random` generator (NumPy's) are those of
//! [`super::CoulombMatrix`].
use serde::Deserialize;

use super::{Matrix, MatrixDescriptor, MatrixSettings, Permutation};
use super::shared::GradientFlags;
use super::soap::hypers::parse_json;
use super::cell_inverse;
use super::{Calculator, ComputeOptions};
use crate::budget::MemoryBudget;
use crate::error::{Error, Result};
use crate::neighbors::NeighborList;
use crate::system::{det3, System};
use crate::tensor::{Labels, TensorMap};

extern "C" {
    #[link_name = "erfc"]
    fn c_erfc(x: f64) -> f64;
}

/// The complementary error function of the platform's C library (the one
/// NumPy and SciPy users compare against to the last bit or two).
fn erfc(x: f64) -> f64 {
    // SAFETY: erfc is a pure C99 function of one double, defined for every input.
    unsafe { c_erfc(x) }
}

/// Largest number of reciprocal vectors accepted (a huge g_cut is a unit mistake).
const MAX_RECIPROCAL_VECTORS: i64 = 10_000_000;

/// Hyper-parameters of [`EwaldSumMatrix`], named as DScribe names them
/// (DScribe takes the Ewald ones as arguments of `create`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EwaldSumMatrixHypers {
    /// Size the matrix is padded to.
    pub n_atoms_max: usize,
    /// Ordering of rows and columns (default `sorted_l2`).
    #[serde(default)]
    pub permutation: Permutation,
    /// Noise width for `random`.
    #[serde(default)]
    pub sigma: Option<f64>,
    /// Seed for `random` (default 0; DScribe draws a random seed when none is given).
    #[serde(default)]
    pub seed: Option<i64>,
    /// Accuracy that sets the default cutoffs (default 1e-5).
    #[serde(default)]
    pub accuracy: Option<f64>,
    /// Relative cost of real and reciprocal terms in the default a (default 1).
    #[serde(default)]
    pub w: Option<f64>,
    /// Real-space cutoff in Å (give it with g_cut).
    #[serde(default)]
    pub r_cut: Option<f64>,
    /// Reciprocal-space cutoff in Å⁻¹ (give it with r_cut).
    #[serde(default)]
    pub g_cut: Option<f64>,
    /// Screening parameter in Å⁻¹.
    #[serde(default)]
    pub a: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
struct EwaldParameters {
    accuracy: f64,
    w: f64,
    cutoffs: Option<(f64, f64)>,
    a: Option<f64>,
}

/// DScribe-compatible Ewald sum matrix.
#[derive(Debug)]
pub struct EwaldSumMatrix {
    inner: MatrixDescriptor,
    ewald: EwaldParameters,
}

fn positive(field: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(Error::InvalidParameter(format!("{field} must be a positive finite number, got {v}")))
    }
}

impl EwaldSumMatrix {
    /// Parses and validates the hyper-parameters.
    pub fn new(hypers: &str) -> Result<EwaldSumMatrix> {
        let h: EwaldSumMatrixHypers = parse_json("ewald_sum_matrix", hypers)?;
        let settings = MatrixSettings::new(h.n_atoms_max, h.permutation, h.sigma, h.seed)?;
        let accuracy = positive("accuracy", h.accuracy.unwrap_or(1e-5))?;
        if accuracy >= 1.0 {
            return Err(Error::InvalidParameter(format!("accuracy must be below 1, got {accuracy}")));
        }
        let w = positive("w", h.w.unwrap_or(1.0))?;
        let cutoffs = match (h.r_cut, h.g_cut) {
            (None, None) => None,
            (Some(r), Some(g)) => Some((positive("r_cut", r)?, positive("g_cut", g)?)),
            (r, g) => {
                return Err(Error::InvalidParameter(format!(
                    "give both r_cut and g_cut, or neither (got r_cut = {r:?}, g_cut = {g:?})"
                )))
            }
        };
        let a = h.a.map(|a| positive("a", a)).transpose()?;
        Ok(EwaldSumMatrix { inner: MatrixDescriptor::new(hypers, settings, true), ewald: EwaldParameters { accuracy, w, cutoffs, a } })
    }

    fn matrix(&self, k: usize, system: &System, flags: GradientFlags, budget: MemoryBudget) -> Result<Matrix> {
        let n = system.size();
        let mut m = Matrix::zeros(n, flags)?;
        if n == 0 {
            return Ok(m);
        }
        let cell = system.cell;
        let inv = cell_inverse(k, &cell, "ewald_sum_matrix")?;
        let volume = det3(&cell).abs();
        let p = self.ewald;
        let a = p.a.unwrap_or_else(|| (n as f64 * p.w / (volume * volume)).powf(1.0 / 6.0) * std::f64::consts::PI.sqrt());
        // ∂a/∂ε_ab = da δ_ab: the default a scales as V^(−1/3)
        let da = if p.a.is_none() { -a / 3.0 } else { 0.0 };
        let (r_cut, g_cut) = p.cutoffs.unwrap_or_else(|| {
            let f = (-p.accuracy.ln()).sqrt();
            (f / a, 2.0 * a * f)
        });
        let z: Vec<f64> = system.types.iter().map(|&t| t as f64).collect();
        let sqrt_pi = std::f64::consts::PI.sqrt();
        let pi = std::f64::consts::PI;

        // real space, over every image within r_cut (full list: both i→j and j→i)
        let periodic = System::new(system.types.clone(), system.positions.clone(), cell, [true; 3]).map_err(|e| match e {
            Error::InvalidSystem(msg) => Error::InvalidSystem(format!("systems[{k}]: {msg}")),
            other => other,
        })?;
        let pairs = NeighborList::new(r_cut, true)?.compute_within(&periodic, budget).map_err(|e| match e {
            Error::Memory(msg) => Error::Memory(format!("systems[{k}]: {msg}")),
            Error::InvalidParameter(msg) => Error::InvalidParameter(format!("systems[{k}]: {msg}")),
            other => other,
        })?;
        for q in 0..pairs.len() {
            let d = pairs.distances[q];
            if d <= 1e-8 {
                continue;
            }
            let (i, j) = (pairs.i[q] as usize, pairs.j[q] as usize);
            let r = pairs.vectors[q];
            let half = if i == j { 0.5 } else { 1.0 };
            let zz = half * z[i] * z[j];
            let e = erfc(a * d);
            let gauss = (-a * a * d * d).exp();
            let value = zz * e / d;
            let dd = zz * (-2.0 * a / sqrt_pi * gauss / d - e / (d * d));
            let g = [dd * r[0] / d, dd * r[1] / d, dd * r[2] / d];
            let mut strain = [[0.0; 3]; 3];
            if flags.strain {
                let dvalue_da = -zz * 2.0 / sqrt_pi * gauss;
                for x in 0..3 {
                    for y in 0..3 {
                        strain[x][y] = r[x] * g[y];
                    }
                    strain[x][x] += dvalue_da * da;
                }
            }
            m.add_entry(i, j, value, g, &strain);
        }

        // reciprocal space: G = h b_1 + k b_2 + l b_3 with b_j = 2π (column j of B⁻¹)
        let b: Vec<[f64; 3]> = (0..3).map(|j| [2.0 * pi * inv[0][j], 2.0 * pi * inv[1][j], 2.0 * pi * inv[2][j]]).collect();
        let bound: Vec<i64> = (0..3)
            .map(|i| {
                let length = (cell[i][0].powi(2) + cell[i][1].powi(2) + cell[i][2].powi(2)).sqrt();
                (g_cut * length / (2.0 * pi)).floor() as i64 + 1
            })
            .collect();
        let count = bound.iter().map(|&h| 2 * h + 1).product::<i64>();
        if count > MAX_RECIPROCAL_VECTORS {
            return Err(Error::InvalidParameter(format!(
                "systems[{k}]: g_cut = {g_cut} Å⁻¹ needs {count} reciprocal vectors (more than {MAX_RECIPROCAL_VECTORS}); use a smaller g_cut"
            )));
        }
        let prefactor = 4.0 * pi / volume;
        let mut cos = vec![0.0; n];
        let mut sin = vec![0.0; n];
        for h in -bound[0]..=bound[0] {
            for kk in -bound[1]..=bound[1] {
                for l in -bound[2]..=bound[2] {
                    if h == 0 && kk == 0 && l == 0 {
                        continue;
                    }
                    let (hf, kf, lf) = (h as f64, kk as f64, l as f64);
                    let gv = [
                        hf * b[0][0] + kf * b[1][0] + lf * b[2][0],
                        hf * b[0][1] + kf * b[1][1] + lf * b[2][1],
                        hf * b[0][2] + kf * b[1][2] + lf * b[2][2],
                    ];
                    let g2 = gv[0] * gv[0] + gv[1] * gv[1] + gv[2] * gv[2];
                    if g2.sqrt() > g_cut {
                        continue;
                    }
                    let f = (-g2 / (4.0 * a * a)).exp() / g2;
                    // ∂f/∂(G²) and ∂f/∂a
                    let df_dg2 = f * (-1.0 / (4.0 * a * a) - 1.0 / g2);
                    let df_da = f * g2 / (2.0 * a * a * a);
                    for i in 0..n {
                        let x = system.positions[i];
                        let (s, c) = (gv[0] * x[0] + gv[1] * x[1] + gv[2] * x[2]).sin_cos();
                        cos[i] = c;
                        sin[i] = s;
                    }
                    for i in 0..n {
                        for j in i..n {
                            let half = if i == j { 0.5 } else { 1.0 };
                            let zz = half * prefactor * z[i] * z[j];
                            let cos_ij = cos[i] * cos[j] + sin[i] * sin[j];
                            let value = zz * f * cos_ij;
                            let mut g = [0.0; 3];
                            if flags.positions && i != j {
                                let sin_ij = sin[j] * cos[i] - cos[j] * sin[i];
                                for x in 0..3 {
                                    g[x] = -zz * f * sin_ij * gv[x];
                                }
                            }
                            let mut strain = [[0.0; 3]; 3];
                            if flags.strain {
                                // V scales as 1 + tr ε, G² changes by −2 G_a G_b, G·r is invariant
                                for x in 0..3 {
                                    for y in 0..3 {
                                        strain[x][y] = zz * cos_ij * df_dg2 * (-2.0 * gv[x] * gv[y]);
                                    }
                                    strain[x][x] += zz * cos_ij * (-f + df_da * da);
                                }
                            }
                            m.add_pair_with_strain(i, j, value, g, &strain);
                        }
                    }
                }
            }
        }

        // constant terms: self-interaction and neutralising background
        let inv_va2 = 1.0 / (volume * a * a);
        // ∂(1/(V a²))/∂ε_xx
        let d_inv_va2 = -inv_va2 * (1.0 + 2.0 * da / a);
        for i in 0..n {
            for j in i..n {
                let (value, derivative) = if i == j {
                    (
                        -a / sqrt_pi * z[i] * z[i] - pi * z[i] * z[i] * inv_va2 / 2.0,
                        -da / sqrt_pi * z[i] * z[i] - pi * z[i] * z[i] * d_inv_va2 / 2.0,
                    )
                } else {
                    (-pi * z[i] * z[j] * inv_va2, -pi * z[i] * z[j] * d_inv_va2)
                };
                let mut strain = [[0.0; 3]; 3];
                if flags.strain {
                    for (x, row) in strain.iter_mut().enumerate() {
                        row[x] = derivative;
                    }
                }
                m.add_pair_with_strain(i, j, value, [0.0; 3], &strain);
            }
        }
        Ok(m)
    }
}

impl Calculator for EwaldSumMatrix {
    fn name(&self) -> &str {
        "ewald_sum_matrix"
    }

    fn parameters(&self) -> &str {
        &self.inner.parameters
    }

    fn keys(&self, _systems: &[System]) -> Result<Labels> {
        Ok(MatrixDescriptor::keys())
    }

    fn compute(&self, systems: &[System], options: &ComputeOptions) -> Result<TensorMap> {
        let budget = MemoryBudget::or_global(options.max_memory);
        self.inner.compute("ewald_sum_matrix", systems, options, |k, s, f| self.matrix(k, s, f, budget))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calculators::tests_utils::{finite_differences_positions, finite_differences_strain, triclinic};

    #[test]
    fn finite_differences() {
        for hypers in [
            r#"{"n_atoms_max": 5, "permutation": "none"}"#,
            r#"{"n_atoms_max": 5, "permutation": "sorted_l2", "a": 0.9, "r_cut": 6.0, "g_cut": 5.0}"#,
            r#"{"n_atoms_max": 6, "permutation": "eigenspectrum", "accuracy": 1e-7}"#,
        ] {
            let calc = EwaldSumMatrix::new(hypers).unwrap();
            finite_differences_positions(&calc, &triclinic(), 1e-6);
            finite_differences_strain(&calc, &triclinic(), 1e-6);
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        let err = |h: &str| EwaldSumMatrix::new(h).err().unwrap().to_string();
        assert!(err(r#"{"n_atoms_max": 3, "r_cut": 5}"#).contains("give both r_cut and g_cut"));
        assert!(err(r#"{"n_atoms_max": 3, "accuracy": 2}"#).contains("accuracy must be below 1"));
        assert!(err(r#"{"n_atoms_max": 3, "a": -1}"#).contains("a must be a positive"));
    }
}
