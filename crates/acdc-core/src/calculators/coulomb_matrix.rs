//! Coulomb matrix (Rupp, Tkatchenko, Müller & von Lilienfeld, Phys. Rev.
//! Lett. 108, 058301 (2012), doi:10.1103/PhysRevLett.108.058301) with the
//! conventions of DScribe 2.1.2, and the machinery it shares with the sine and
//! Ewald sum matrices: permutations, padding, flattening, gradients.
//!
//! For atoms with atomic numbers Z_i at positions R_i (Å):
//!
//! ```text
//! M_ii = ½ Z_i^2.4        M_ij = Z_i Z_j / |R_i − R_j|   (Å⁻¹, no conversion to bohr)
//! ```
//!
//! The cell and the periodicity are ignored. The matrix is then permuted:
//! `none` keeps the atom order; `sorted_l2` orders rows and columns by
//! decreasing Euclidean norm of the rows (a stable sort: ties keep the atom
//! order); `random` adds normal noise of width `sigma` to the norms before
//! sorting (Hansen et al., J. Chem. Theory Comput. 9, 3404 (2013),
//! doi:10.1021/ct400195d), drawing from one generator per calculator whose
//! state persists across calls, exactly as DScribe does; `eigenspectrum`
//! keeps only the eigenvalues, by decreasing absolute value. The result is
//! zero-padded to `n_atoms_max` and flattened row-major (`index = a ·
//! n_atoms_max + b`), or `index = a` for the eigenspectrum.
//!
//! Gradients (positions and strain) are analytic. For the sorted variants they
//! are those of the sorted matrix at fixed order, which is the derivative
//! everywhere except where two norms (or two |eigenvalues|) tie.
use std::sync::Mutex;

use nalgebra::{DMatrix, SymmetricEigen};
use rayon::prelude::*;
use serde::Deserialize;

use super::shared::key_selected;
use super::shared::GradientFlags;
use super::soap::hypers::parse_json;
use super::{Calculator, ComputeOptions};
use crate::budget::MemoryBudget;
use crate::error::{Error, Result};
use crate::math::random::{LegacyRandomState, Mt19937};
use crate::system::System;
use crate::tensor::buffer::zeroed;
use crate::tensor::{Labels, TensorBlock, TensorMap};

/// `n_atoms_max` is limited so that n_atoms_max² fits the property labels.
pub const N_ATOMS_MAX_LIMIT: usize = 46340;

/// How the matrix rows and columns are ordered (DScribe's `permutation`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Permutation {
    /// Atom order.
    None,
    /// Decreasing row norm (stable).
    #[default]
    SortedL2,
    /// Eigenvalues by decreasing absolute value.
    Eigenspectrum,
    /// Decreasing row norm plus normal noise of width `sigma`.
    Random,
}

/// Hyper-parameters common to the three matrices.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixSettings {
    /// Size the matrix is padded to; systems may not have more atoms.
    pub n_atoms_max: usize,
    /// Ordering of rows and columns.
    pub permutation: Permutation,
    /// Width of the noise added to the norms (`random` only), in the units
    /// of the matrix.
    pub sigma: Option<f64>,
    /// Seed of the generator (`random` only; DScribe's default is 0).
    pub seed: u32,
}

impl MatrixSettings {
    /// Validates the settings shared by every matrix.
    pub fn new(n_atoms_max: usize, permutation: Permutation, sigma: Option<f64>, seed: Option<i64>) -> Result<MatrixSettings> {
        if n_atoms_max == 0 || n_atoms_max > N_ATOMS_MAX_LIMIT {
            return Err(Error::InvalidParameter(format!(
                "n_atoms_max must be between 1 and {N_ATOMS_MAX_LIMIT}, got {n_atoms_max}"
            )));
        }
        match (permutation, sigma) {
            (Permutation::Random, None) => {
                return Err(Error::InvalidParameter("permutation \"random\" needs sigma (the width of the noise added to the row norms)".into()))
            }
            (Permutation::Random, Some(s)) if !(s.is_finite() && s > 0.0) => {
                return Err(Error::InvalidParameter(format!("sigma must be a positive finite number, got {s}")))
            }
            (Permutation::Random, _) => {}
            (p, Some(s)) => {
                return Err(Error::InvalidParameter(format!(
                    "sigma = {s} is only used with permutation \"random\", but permutation is \"{}\"",
                    permutation_name(p)
                )))
            }
            (_, None) => {}
        }
        let seed = match seed {
            None => 0,
            Some(s) if (0..=u32::MAX as i64).contains(&s) => s as u32,
            Some(s) => return Err(Error::InvalidParameter(format!("seed must be an integer between 0 and 4294967295, got {s}"))),
        };
        Ok(MatrixSettings { n_atoms_max, permutation, sigma, seed })
    }

    /// Number of features per system.
    pub fn n_features(&self) -> usize {
        match self.permutation {
            Permutation::Eigenspectrum => self.n_atoms_max,
            _ => self.n_atoms_max * self.n_atoms_max,
        }
    }
}

fn permutation_name(p: Permutation) -> &'static str {
    match p {
        Permutation::None => "none",
        Permutation::SortedL2 => "sorted_l2",
        Permutation::Eigenspectrum => "eigenspectrum",
        Permutation::Random => "random",
    }
}

/// Hyper-parameters of [`CoulombMatrix`], named as DScribe names them.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CoulombMatrixHypers {
    /// Size the matrix is padded to.
    pub n_atoms_max: usize,
    /// Ordering of rows and columns (default `sorted_l2`).
    #[serde(default)]
    pub permutation: Permutation,
    /// Noise width for `random`.
    #[serde(default)]
    pub sigma: Option<f64>,
    /// Seed for `random` (default 0).
    #[serde(default)]
    pub seed: Option<i64>,
}

/// One system's matrix and its derivatives, before permutation and padding.
#[derive(Debug, Default)]
pub(crate) struct Matrix {
    /// Number of atoms.
    pub n: usize,
    /// `[n][n]`, symmetric.
    pub values: Vec<f64>,
    /// `[n atoms][3][n][n]`: ∂M/∂R (empty without position gradients).
    pub positions: Vec<f64>,
    /// `[3][3][n][n]`: ∂M/∂ε_ab (empty without strain gradients).
    pub strain: Vec<f64>,
}

impl Matrix {
    /// A matrix of zeros, with gradient storage as requested.
    pub fn zeros(n: usize, flags: GradientFlags) -> Result<Matrix> {
        let nn = n * n;
        Ok(Matrix {
            n,
            values: zeroed(nn, "the matrix")?,
            positions: if flags.positions { zeroed(n * 3 * nn, "the position gradients")? } else { Vec::new() },
            strain: if flags.strain { zeroed(9 * nn, "the strain gradients")? } else { Vec::new() },
        })
    }

    /// Adds to the single entry M_ij: `value`, its gradient `g` with respect
    /// to R_j (and −g with respect to R_i) and its strain derivative.
    #[inline]
    pub fn add_entry(&mut self, i: usize, j: usize, value: f64, g: [f64; 3], strain: &[[f64; 3]; 3]) {
        let n = self.n;
        let nn = n * n;
        let ij = i * n + j;
        self.values[ij] += value;
        // a term between an atom and its own images does not move with it
        if !self.positions.is_empty() && i != j {
            for x in 0..3 {
                self.positions[(j * 3 + x) * nn + ij] += g[x];
                self.positions[(i * 3 + x) * nn + ij] -= g[x];
            }
        }
        if !self.strain.is_empty() {
            for a in 0..3 {
                for b in 0..3 {
                    self.strain[(a * 3 + b) * nn + ij] += strain[a][b];
                }
            }
        }
    }

    /// Adds to M_ij and M_ji (once on the diagonal), see [`Matrix::add_entry`].
    #[inline]
    pub fn add_pair_with_strain(&mut self, i: usize, j: usize, value: f64, g: [f64; 3], strain: &[[f64; 3]; 3]) {
        self.add_entry(i, j, value, g, strain);
        if i != j {
            self.add_entry(j, i, value, [-g[0], -g[1], -g[2]], strain);
        }
    }

    /// Adds a term that depends only on the vector r = R_j − R_i (+ a lattice
    /// translation), with `g = ∂value/∂r`: the strain derivative is r_a g_b.
    #[inline]
    pub fn add_pair(&mut self, i: usize, j: usize, value: f64, r: [f64; 3], g: [f64; 3]) {
        let mut strain = [[0.0; 3]; 3];
        if !self.strain.is_empty() {
            for a in 0..3 {
                for b in 0..3 {
                    strain[a][b] = r[a] * g[b];
                }
            }
        }
        self.add_pair_with_strain(i, j, value, g, &strain);
    }
}

/// Generator state that persists across calls of one calculator.
#[derive(Debug)]
pub(crate) enum Noise {
    /// C++ `std::mt19937` with a fresh `std::normal_distribution` per row
    /// (DScribe's Coulomb matrix, computed in C++).
    Cpp(Mt19937),
    /// `numpy.random.RandomState` (DScribe's sine and Ewald matrices).
    Numpy(LegacyRandomState),
}

impl Noise {
    /// Noisy norms and the resulting order of rows.
    fn order(&mut self, norms: &[f64], sigma: f64) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..norms.len()).collect();
        match self {
            Noise::Cpp(g) => {
                let noisy: Vec<f64> = norms.iter().map(|&m| g.normal_cpp(m, sigma)).collect();
                // std::stable_sort, descending
                idx.sort_by(|&a, &b| noisy[b].total_cmp(&noisy[a]));
            }
            Noise::Numpy(g) => {
                let noisy: Vec<f64> = norms.iter().map(|&m| g.normal(m, sigma)).collect();
                // argsort ascending, then reversed: ties come out in reverse order
                idx.sort_by(|&a, &b| noisy[a].total_cmp(&noisy[b]));
                idx.reverse();
            }
        }
        idx
    }
}

/// What the three matrices share: settings, the generator, and turning one
/// matrix per system into a TensorMap.
#[derive(Debug)]
pub(crate) struct MatrixDescriptor {
    pub parameters: String,
    pub settings: MatrixSettings,
    noise: Mutex<Noise>,
}

impl MatrixDescriptor {
    /// `numpy_noise`: whether `random` follows NumPy's generator (sine,
    /// Ewald) rather than the C++ one (Coulomb).
    pub fn new(parameters: &str, settings: MatrixSettings, numpy_noise: bool) -> MatrixDescriptor {
        let noise = if numpy_noise {
            Noise::Numpy(LegacyRandomState::new(settings.seed))
        } else {
            Noise::Cpp(Mt19937::new(settings.seed))
        };
        MatrixDescriptor { parameters: parameters.to_string(), settings, noise: Mutex::new(noise) }
    }

    /// The single key: `_` = 0.
    pub fn keys() -> Labels {
        Labels::new(&["_"], vec![0])
    }

    /// Computes `matrix` for every selected system (in parallel), then
    /// permutes, pads and flattens in system order (the generator is used in
    /// that order).
    pub fn compute<F>(&self, name: &str, systems: &[System], options: &ComputeOptions, matrix: F) -> Result<TensorMap>
    where
        F: Fn(usize, &System, GradientFlags) -> Result<Matrix> + Sync,
    {
        let flags = options.gradient_flags()?;
        let selected = selected_systems(systems, options)?;
        if !key_selected(options, &["_"], &[0])? {
            return TensorMap::new(Labels::new(&["_"], vec![]), vec![]);
        }
        let n_max = self.settings.n_atoms_max;
        for &k in &selected {
            if systems[k].size() > n_max {
                return Err(Error::InvalidParameter(format!(
                    "systems[{k}] has {} atoms, more than n_atoms_max = {n_max} ({name})",
                    systems[k].size()
                )));
            }
        }
        let nf = self.settings.n_features();
        let budget = MemoryBudget::or_global(options.max_memory);
        let mut floats = 0.0;
        for &k in &selected {
            let n = systems[k].size() as f64;
            // the unpermuted matrix, then the output row, each with its gradients
            let gradient_rows = 1.0 + if flags.positions { 3.0 * n } else { 0.0 } + if flags.strain { 9.0 } else { 0.0 };
            floats += (n * n + nf as f64) * gradient_rows;
        }
        budget.check(&format!("the output of {name} ({} systems)", selected.len()), floats * 8.0)?;
        let matrices: Vec<Matrix> = selected
            .par_iter()
            .map(|&k| {
                // a cancelled computation stops between systems
                options.check_cancelled()?;
                matrix(k, &systems[k], flags)
            })
            .collect::<Result<_>>()?;

        let n_grad_rows: usize = matrices.iter().map(|m| m.n).sum();
        let mut values = zeroed(matrices.len() * nf, name)?;
        let mut positions = if flags.positions { zeroed(n_grad_rows * 3 * nf, "position gradients")? } else { Vec::new() };
        let mut strain = if flags.strain { zeroed(matrices.len() * 9 * nf, "strain gradients")? } else { Vec::new() };
        let mut grad_samples = Vec::new();
        let mut noise = self.noise.lock().unwrap_or_else(|e| e.into_inner());
        let mut grad_row = 0;
        for (s, (m, &k)) in matrices.iter().zip(&selected).enumerate() {
            let n = m.n;
            let nn = n * n;
            let out = &mut values[s * nf..][..nf];
            // (feature, source entries) pairs: a permutation, or eigenvectors
            match self.settings.permutation {
                Permutation::Eigenspectrum => {
                    if n > 0 {
                        let eig = SymmetricEigen::new(DMatrix::from_row_slice(n, n, &m.values));
                        let mut order: Vec<usize> = (0..n).collect();
                        order.sort_by(|&a, &b| eig.eigenvalues[b].abs().total_cmp(&eig.eigenvalues[a].abs()));
                        for (a, &e) in order.iter().enumerate() {
                            out[a] = eig.eigenvalues[e];
                            // Hellmann–Feynman: ∂λ = vᵀ ∂M v
                            let v: Vec<f64> = eig.eigenvectors.column(e).iter().copied().collect();
                            let project = |dm: &[f64]| {
                                let mut acc = 0.0;
                                for i in 0..n {
                                    for j in 0..n {
                                        acc += v[i] * dm[i * n + j] * v[j];
                                    }
                                }
                                acc
                            };
                            if flags.positions {
                                for atom in 0..n {
                                    for x in 0..3 {
                                        positions[((grad_row + atom) * 3 + x) * nf + a] = project(&m.positions[(atom * 3 + x) * nn..][..nn]);
                                    }
                                }
                            }
                            if flags.strain {
                                for ab in 0..9 {
                                    strain[(s * 9 + ab) * nf + a] = project(&m.strain[ab * nn..][..nn]);
                                }
                            }
                        }
                    }
                }
                permutation => {
                    let idx: Vec<usize> = match permutation {
                        Permutation::None => (0..n).collect(),
                        _ => {
                            let norms: Vec<f64> =
                                (0..n).map(|i| m.values[i * n..][..n].iter().map(|v| v * v).sum::<f64>().sqrt()).collect();
                            if permutation == Permutation::Random {
                                noise.order(&norms, self.settings.sigma.unwrap_or(0.0))
                            } else {
                                let mut idx: Vec<usize> = (0..n).collect();
                                idx.sort_by(|&a, &b| norms[b].total_cmp(&norms[a]));
                                idx
                            }
                        }
                    };
                    for a in 0..n {
                        for b in 0..n {
                            let (f, src) = (a * n_max + b, idx[a] * n + idx[b]);
                            out[f] = m.values[src];
                            if flags.positions {
                                for atom in 0..n {
                                    for x in 0..3 {
                                        positions[((grad_row + atom) * 3 + x) * nf + f] = m.positions[(atom * 3 + x) * nn + src];
                                    }
                                }
                            }
                            if flags.strain {
                                for ab in 0..9 {
                                    strain[(s * 9 + ab) * nf + f] = m.strain[ab * nn + src];
                                }
                            }
                        }
                    }
                }
            }
            if flags.positions {
                for atom in 0..n {
                    grad_samples.extend_from_slice(&[s as i32, k as i32, atom as i32]);
                }
            }
            grad_row += n;
        }
        drop(noise);

        let properties = Labels::range("index", nf);
        let samples = Labels::new(&["system"], selected.iter().map(|&k| k as i32).collect());
        let mut block = TensorBlock::new(samples, vec![], properties.clone(), values)?;
        if flags.positions {
            let g = TensorBlock::new(
                Labels::new(&["sample", "system", "atom"], grad_samples),
                vec![Labels::range("xyz", 3)],
                properties.clone(),
                positions,
            )?;
            block.gradients.push(("positions".into(), g));
        }
        if flags.strain {
            let g = TensorBlock::new(
                Labels::range("sample", selected.len()),
                // same naming as the other calculators: values[a][b] = ∂/∂ε_ab
                vec![Labels::range("xyz_2", 3), Labels::range("xyz_1", 3)],
                properties,
                strain,
            )?;
            block.gradients.push(("strain".into(), g));
        }
        TensorMap::new(Self::keys(), vec![block])
    }
}

/// Systems selected by `selected_samples` (dimension `system` only).
fn selected_systems(systems: &[System], options: &ComputeOptions) -> Result<Vec<usize>> {
    let Some(selection) = &options.selected_samples else { return Ok((0..systems.len()).collect()) };
    if let Some(name) = selection.names.iter().find(|n| n.as_str() != "system") {
        return Err(Error::InvalidParameter(format!(
            "selectedSamples has a dimension named \"{name}\" (this calculator's samples are \"system\" only)"
        )));
    }
    // a row naming no existing system is a mistake, not an empty result
    for (r, row) in selection.rows().enumerate() {
        if let Some(&k) = row.iter().find(|&&k| k < 0 || k as usize >= systems.len()) {
            return Err(Error::InvalidParameter(format!(
                "selectedSamples row {r}: system {k} does not exist (there are {} systems)",
                systems.len()
            )));
        }
    }
    Ok((0..systems.len()).filter(|&k| selection.rows().any(|row| row.iter().all(|&v| v == k as i32))).collect())
}

/// DScribe-compatible Coulomb matrix.
#[derive(Debug)]
pub struct CoulombMatrix {
    inner: MatrixDescriptor,
}

impl CoulombMatrix {
    /// Parses and validates the hyper-parameters.
    pub fn new(hypers: &str) -> Result<CoulombMatrix> {
        let h: CoulombMatrixHypers = parse_json("coulomb_matrix", hypers)?;
        let settings = MatrixSettings::new(h.n_atoms_max, h.permutation, h.sigma, h.seed)?;
        Ok(CoulombMatrix { inner: MatrixDescriptor::new(hypers, settings, false) })
    }

    /// The unpermuted matrix of one system, with gradients.
    fn matrix(k: usize, system: &System, flags: GradientFlags) -> Result<Matrix> {
        let n = system.size();
        let mut m = Matrix::zeros(n, flags)?;
        for i in 0..n {
            m.values[i * n + i] = 0.5 * (system.types[i] as f64).powf(2.4);
            for j in i + 1..n {
                let (xi, xj) = (system.positions[i], system.positions[j]);
                let r = [xj[0] - xi[0], xj[1] - xi[1], xj[2] - xi[2]];
                let d = (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]).sqrt();
                if d == 0.0 {
                    return Err(Error::InvalidSystem(format!("systems[{k}]: atoms {i} and {j} are at the same position")));
                }
                let zz = system.types[i] as f64 * system.types[j] as f64;
                let c = -zz / (d * d * d);
                m.add_pair(i, j, zz / d, r, [c * r[0], c * r[1], c * r[2]]);
            }
        }
        Ok(m)
    }
}

impl Calculator for CoulombMatrix {
    fn name(&self) -> &str {
        "coulomb_matrix"
    }

    fn parameters(&self) -> &str {
        &self.inner.parameters
    }

    fn keys(&self, _systems: &[System]) -> Result<Labels> {
        Ok(MatrixDescriptor::keys())
    }

    fn compute(&self, systems: &[System], options: &ComputeOptions) -> Result<TensorMap> {
        self.inner.compute("coulomb_matrix", systems, options, CoulombMatrix::matrix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calculators::tests_utils::{finite_differences_positions, finite_differences_strain, molecule, triclinic};

    #[test]
    fn finite_differences() {
        for permutation in ["none", "sorted_l2", "eigenspectrum"] {
            let calc = CoulombMatrix::new(&format!(r#"{{"n_atoms_max": 7, "permutation": "{permutation}"}}"#)).unwrap();
            finite_differences_positions(&calc, &molecule(), 1e-6);
            finite_differences_strain(&calc, &molecule(), 1e-6);
            finite_differences_positions(&calc, &triclinic(), 1e-6);
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        let err = |h: &str| CoulombMatrix::new(h).err().unwrap().to_string();
        assert!(err(r#"{"n_atoms_max": 3, "sigma": 1}"#).contains("sigma = 1 is only used with permutation \"random\""));
        assert!(err(r#"{"n_atoms_max": 3, "permutation": "random"}"#).contains("needs sigma"));
        assert!(err(r#"{"n_atoms_max": 3, "permutation": "sorted"}"#).contains("unknown variant `sorted`"));
        assert!(err(r#"{"n_atoms_max": 0}"#).contains("n_atoms_max must be between 1"));
        let calc = CoulombMatrix::new(r#"{"n_atoms_max": 3}"#).unwrap();
        let e = calc.compute(&[molecule()], &ComputeOptions::default()).unwrap_err().to_string();
        assert!(e.contains("systems[0] has 6 atoms, more than n_atoms_max = 3"), "{e}");
    }
}
