//! Sine matrix (Faber, Lindmaa, von Lilienfeld & Armiento, Int. J. Quantum
//! Chem. 115, 1094 (2015), doi:10.1002/qua.24917) with the conventions of
//! DScribe 2.1.2.
//!
//! With B the cell (rows = lattice vectors, Å) and s = (R_j − R_i) B⁻¹ the
//! fractional displacement,
//!
//! ```text
//! M_ii = ½ Z_i^2.4        M_ij = Z_i Z_j / φ_ij,   φ_ij = ‖ (sin²(π s_1), sin²(π s_2), sin²(π s_3)) · B ‖
//! ```
//!
//! The system is treated as periodic along all three lattice vectors
//! whatever its `pbc` (DScribe forces it), so the cell must have three
//! independent vectors. Permutations, padding, the `random` generator (NumPy's
//! legacy `RandomState`, as DScribe computes this matrix in Python) and
//! gradients are those of [`super::CoulombMatrix`].
use serde::Deserialize;

use super::{Matrix, MatrixDescriptor, MatrixSettings, Permutation};
use super::shared::GradientFlags;
use super::soap::hypers::parse_json;
use super::{Calculator, ComputeOptions};
use crate::error::{Error, Result};
use crate::system::{det3, System};
use crate::tensor::{Labels, TensorMap};

/// Hyper-parameters of [`SineMatrix`], named as DScribe names them.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SineMatrixHypers {
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
}

/// Inverse of a 3×3 matrix, or an error naming the system when it is singular.
pub(crate) fn cell_inverse(k: usize, cell: &[[f64; 3]; 3], name: &str) -> Result<[[f64; 3]; 3]> {
    let d = det3(cell);
    let scale = (0..3).map(|r| (cell[r][0].powi(2) + cell[r][1].powi(2) + cell[r][2].powi(2)).sqrt()).product::<f64>();
    if !(d.abs() > 1e-10 * scale) || scale == 0.0 {
        return Err(Error::InvalidSystem(format!(
            "systems[{k}]: {name} treats every system as periodic along a, b and c, but the cell {cell:?} is singular"
        )));
    }
    let mut inv = [[0.0; 3]; 3];
    for r in 0..3 {
        for c in 0..3 {
            let (r1, r2) = ((r + 1) % 3, (r + 2) % 3);
            let (c1, c2) = ((c + 1) % 3, (c + 2) % 3);
            // adjugate: inv[c][r] = cofactor(r, c) / det
            inv[c][r] = (cell[r1][c1] * cell[r2][c2] - cell[r1][c2] * cell[r2][c1]) / d;
        }
    }
    Ok(inv)
}

/// DScribe-compatible sine matrix.
#[derive(Debug)]
pub struct SineMatrix {
    inner: MatrixDescriptor,
}

impl SineMatrix {
    /// Parses and validates the hyper-parameters.
    pub fn new(hypers: &str) -> Result<SineMatrix> {
        let h: SineMatrixHypers = parse_json("sine_matrix", hypers)?;
        let settings = MatrixSettings::new(h.n_atoms_max, h.permutation, h.sigma, h.seed)?;
        Ok(SineMatrix { inner: MatrixDescriptor::new(hypers, settings, true) })
    }

    fn matrix(k: usize, system: &System, flags: GradientFlags) -> Result<Matrix> {
        let n = system.size();
        let mut m = Matrix::zeros(n, flags)?;
        if n == 0 {
            return Ok(m);
        }
        let b = system.cell;
        let inv = cell_inverse(k, &b, "sine_matrix")?;
        let pi = std::f64::consts::PI;
        for i in 0..n {
            m.values[i * n + i] = 0.5 * (system.types[i] as f64).powf(2.4);
            for j in i + 1..n {
                let (xi, xj) = (system.positions[i], system.positions[j]);
                let r = [xj[0] - xi[0], xj[1] - xi[1], xj[2] - xi[2]];
                let mut s = [0.0; 3];
                for q in 0..3 {
                    s[q] = r[0] * inv[0][q] + r[1] * inv[1][q] + r[2] * inv[2][q];
                }
                let u: Vec<f64> = s.iter().map(|&sq| (pi * sq).sin().powi(2)).collect();
                let mut v = [0.0; 3];
                for c in 0..3 {
                    v[c] = u[0] * b[0][c] + u[1] * b[1][c] + u[2] * b[2][c];
                }
                let phi = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
                if phi == 0.0 {
                    return Err(Error::InvalidSystem(format!(
                        "systems[{k}]: atoms {i} and {j} are periodic images of each other (the sine matrix would be infinite)"
                    )));
                }
                let zz = system.types[i] as f64 * system.types[j] as f64;
                let value = zz / phi;
                // ∂φ/∂r_c = Σ_q (B⁻¹)_cq π sin(2π s_q) (B v)_q / φ
                let mut g = [0.0; 3];
                if !m.positions.is_empty() {
                    let mut w = [0.0; 3];
                    for q in 0..3 {
                        w[q] = pi * (2.0 * pi * s[q]).sin() * (b[q][0] * v[0] + b[q][1] * v[1] + b[q][2] * v[2]) / phi;
                    }
                    let dm = -zz / (phi * phi);
                    for c in 0..3 {
                        g[c] = dm * (inv[c][0] * w[0] + inv[c][1] * w[1] + inv[c][2] * w[2]);
                    }
                }
                // fractional coordinates do not change under strain, only B:
                // ∂φ/∂ε_ab = v_a v_b / φ
                let mut strain = [[0.0; 3]; 3];
                if !m.strain.is_empty() {
                    for (a, row) in strain.iter_mut().enumerate() {
                        for (c, e) in row.iter_mut().enumerate() {
                            *e = -zz / (phi * phi) * v[a] * v[c] / phi;
                        }
                    }
                }
                m.add_pair_with_strain(i, j, value, g, &strain);
            }
        }
        Ok(m)
    }
}

impl Calculator for SineMatrix {
    fn name(&self) -> &str {
        "sine_matrix"
    }

    fn parameters(&self) -> &str {
        &self.inner.parameters
    }

    fn keys(&self, _systems: &[System]) -> Result<Labels> {
        Ok(MatrixDescriptor::keys())
    }

    fn compute(&self, systems: &[System], options: &ComputeOptions) -> Result<TensorMap> {
        self.inner.compute("sine_matrix", systems, options, SineMatrix::matrix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calculators::tests_utils::{finite_differences_positions, finite_differences_strain, triclinic};

    #[test]
    fn finite_differences() {
        for permutation in ["none", "sorted_l2", "eigenspectrum"] {
            let calc = SineMatrix::new(&format!(r#"{{"n_atoms_max": 6, "permutation": "{permutation}"}}"#)).unwrap();
            finite_differences_positions(&calc, &triclinic(), 1e-6);
            finite_differences_strain(&calc, &triclinic(), 1e-6);
        }
    }

    #[test]
    fn needs_a_cell() {
        let calc = SineMatrix::new(r#"{"n_atoms_max": 6}"#).unwrap();
        let molecule = crate::calculators::tests_utils::molecule();
        let e = calc.compute(&[molecule], &ComputeOptions::default()).unwrap_err().to_string();
        assert!(e.contains("is singular"), "{e}");
    }
}
