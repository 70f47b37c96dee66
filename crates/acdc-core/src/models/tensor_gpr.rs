//! Tensorial properties learnt on λ-SOAP: symmetry-adapted sparse GPR
//! ([`TensorKind::SparseGpr`], A. Grisafi, D. M. Wilkins, G. Csányi,
//! M. Ceriotti, Phys. Rev. Lett. 120, 036002 (2018),
//! doi:10.1103/PhysRevLett.120.036002) and linear λ-SOAP regression
//! ([`TensorKind::Linear`]) of dipoles (λ = 1) and symmetric rank-2 tensors
//! such as polarizabilities (λ = 0 ⊕ λ = 2). See docs/MODELS.md.
//!
//! # Features
//! P^λ(i) is the o3_sigma = +1, o3_lambda = λ block of the equivariant power
//! spectrum of atom i ([`EquivariantPowerSpectrum`], neighbour types moved
//! into the properties with the model's species fixed), a (2λ+1) × q matrix.
//! σ = +1 makes the block transform like a polar tensor: under inversion it
//! picks up (−1)^λ, as a dipole (λ = 1) and a polarizability (λ = 0, 2) do.
//! P̂^λ(i) = P^λ(i)/‖P^λ(i)‖_F (zero when the block is zero), and ŝ(i) the
//! normalised λ = 0 block (equal to the normalised SOAP power spectrum: the
//! (a, b) and (b, a) blocks hold the power spectrum over √2 each).
//!
//! # Kernel and model
//! K^λ_{μμ'}(i, j) = [P̂^λ(i) P̂^λ(j)ᵀ]_{μμ'} (ŝ(i)·ŝ(j))^{ζ−1} between atoms
//! of the same centre species (zero otherwise). A structure's spherical
//! tensor is a sum of atomic terms,
//! y^λ_μ(A) = N_A·b_λ + Σ_{i∈A} Σ_{m∈M(Z_i)} Σ_{μ'} K^λ_{μμ'}(i, m) α_{mμ'},
//! with M(Z) sparse environments per centre species and b_0 the mean trace
//! component per atom of the training set (b_λ = 0 for λ > 0). The linear
//! model is y^λ_μ(A) = N_A·b_λ + Σ_{i∈A} Σ_q P^λ_{μq}(i) w^{Z_i}_q on the raw
//! block.
//!
//! # Charges (dipoles)
//! A dipole model may add one partial charge per species (as Veit, Wilkins,
//! Yang, DiStasio, Ceriotti, J. Chem. Phys. 153, 024113 (2020)):
//! μ(A) = Σ_{i∈A} q_{Z_i} (r_i − r̄_A) + Σ_i μ_i^{λ-SOAP}, r̄_A the mean atomic
//! position, so the term is translation invariant and rotates (and inverts)
//! as a polar vector. The charges are fitted jointly with the weights, with
//! no prior: they are a handful of parameters that every structure
//! determines three times over, and a prior would need an arbitrary scale in
//! e and would push the global part of the dipole into the local term. As
//! Σ_i (r_i − r̄) = 0, the data fix the charges only up to a common shift;
//! the gauge Σ_Z N_Z q_Z = 0 (N_Z the atoms of species Z in the training
//! set: the training set is neutral on average) picks one without changing
//! any prediction. Periodic frames are refused (r − r̄ is not defined across
//! periodic images).
//!
//! # Fit
//! Per λ, with Φ the derivative of the structure components by the
//! parameters, θ minimises ‖(y − Φθ)/σ‖² + θᵀ P θ with P = K_MM + jitter·I
//! (projected process) or λ_reg·I (ridge), as the least-squares solution of
//! [Φ/σ; Lᵀ] θ = [y/σ; 0] (L Lᵀ = P) by Householder QR.
//!
//! # Cartesian ↔ spherical
//! Vectors: (v_y, v_z, v_x) for μ = −1, 0, 1 (featomic's real spherical
//! harmonics). Symmetric T: s⁰ = tr T/√3 and s² = (√2 T_xy, √2 T_yz,
//! (2T_zz − T_xx − T_yy)/√6, √2 T_xz, (T_xx − T_yy)/√2), an orthonormal map
//! (‖T‖_F² = (s⁰)² + ‖s²‖²).
use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;

use super::selection::{farthest_point_sampling, Axis};
use crate::budget::MemoryBudget;
use crate::calculators::{check_cancelled, Calculator, ComputeOptions, EquivariantPowerSpectrum};
use crate::error::{Error, Result};
use crate::math::linalg::Dense;
use crate::math::random::LegacyRandomState;
use crate::system::System;
use crate::tensor::Labels;

/// Cancellation flag shared with the caller.
pub type CancelFlag = Option<std::sync::Arc<std::sync::atomic::AtomicBool>>;

/// Which Cartesian tensor the model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorTarget {
    /// A vector (3 components, e.g. a dipole moment in e·Å): λ = 1.
    Dipole,
    /// A symmetric 3 × 3 tensor (9 components row-major, e.g. a
    /// polarizability in Å³): λ = 0 ⊕ λ = 2.
    Polarizability,
}

impl TensorTarget {
    /// "dipole" or "polarizability".
    pub fn name(&self) -> &'static str {
        match self {
            TensorTarget::Dipole => "dipole",
            TensorTarget::Polarizability => "polarizability",
        }
    }

    /// Parses a name.
    pub fn from_name(name: &str) -> Result<TensorTarget> {
        match name {
            "dipole" => Ok(TensorTarget::Dipole),
            "polarizability" => Ok(TensorTarget::Polarizability),
            other => Err(Error::InvalidParameter(format!("target = \"{other}\" (expected \"dipole\" or \"polarizability\")"))),
        }
    }

    /// Cartesian components per structure: 3 or 9.
    pub fn size(&self) -> usize {
        match self {
            TensorTarget::Dipole => 3,
            TensorTarget::Polarizability => 9,
        }
    }

    /// The λ channels.
    pub fn lambdas(&self) -> &'static [usize] {
        match self {
            TensorTarget::Dipole => &[1],
            TensorTarget::Polarizability => &[0, 2],
        }
    }
}

/// Cartesian vector → λ = 1 spherical components (y, z, x).
pub fn vector_to_spherical(v: &[f64]) -> [f64; 3] {
    [v[1], v[2], v[0]]
}

/// λ = 1 spherical components → Cartesian vector.
pub fn vector_from_spherical(s: &[f64]) -> [f64; 3] {
    [s[2], s[0], s[1]]
}

/// Symmetric 3 × 3 (row-major) → (s⁰, s²): the λ = 0 and λ = 2 parts.
/// The antisymmetric part, if any, is dropped (callers check it).
pub fn symmetric_to_spherical(t: &[f64]) -> ([f64; 1], [f64; 5]) {
    let sym = |a: usize, b: usize| 0.5 * (t[3 * a + b] + t[3 * b + a]);
    let (xx, yy, zz) = (t[0], t[4], t[8]);
    let r2 = std::f64::consts::SQRT_2;
    let r3 = 3f64.sqrt();
    let r6 = 6f64.sqrt();
    ([(xx + yy + zz) / r3], [r2 * sym(0, 1), r2 * sym(1, 2), (2.0 * zz - xx - yy) / r6, r2 * sym(0, 2), (xx - yy) / r2])
}

/// (s⁰, s²) → symmetric 3 × 3, row-major.
pub fn symmetric_from_spherical(s0: f64, s2: &[f64]) -> [f64; 9] {
    let r2 = std::f64::consts::SQRT_2;
    let r3 = 3f64.sqrt();
    let r6 = 6f64.sqrt();
    let iso = s0 / r3;
    let xy = s2[0] / r2;
    let yz = s2[1] / r2;
    let xz = s2[3] / r2;
    let xx = iso - s2[2] / r6 + s2[4] / r2;
    let yy = iso - s2[2] / r6 - s2[4] / r2;
    let zz = iso + 2.0 * s2[2] / r6;
    [xx, xy, xz, xy, yy, yz, xz, yz, zz]
}

/// The two kinds of tensor model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorKind {
    /// Symmetry-adapted sparse GPR.
    SparseGpr,
    /// Linear regression on the raw λ-SOAP block.
    Linear,
}

impl TensorKind {
    /// Name in model files: "sparse_tensor_gpr" or "tensor_linear".
    pub fn name(&self) -> &'static str {
        match self {
            TensorKind::SparseGpr => "sparse_tensor_gpr",
            TensorKind::Linear => "tensor_linear",
        }
    }
}

/// How sparse environments are chosen (on the normalised invariant block ŝ,
/// so the choice does not depend on the orientation of the structures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorSparseMethod {
    /// Farthest point sampling from the first candidate.
    Fps,
    /// The first `count` of a seeded MT19937 permutation (numpy's `RandomState(seed).permutation`).
    Random,
}

impl TensorSparseMethod {
    /// Parses "fps" or "random".
    pub fn from_name(name: &str) -> Result<TensorSparseMethod> {
        match name {
            "fps" => Ok(TensorSparseMethod::Fps),
            "random" => Ok(TensorSparseMethod::Random),
            other => Err(Error::InvalidParameter(format!("sparse.method = \"{other}\" (expected \"fps\" or \"random\")"))),
        }
    }

    /// "fps" or "random".
    pub fn name(&self) -> &'static str {
        match self {
            TensorSparseMethod::Fps => "fps",
            TensorSparseMethod::Random => "random",
        }
    }
}

/// Kind-specific fit settings.
#[derive(Debug, Clone)]
pub enum TensorKindOptions {
    /// Sparse GPR.
    SparseGpr {
        /// Sparse environments per centre species.
        count: usize,
        /// Per-species overrides (species, count).
        counts: Vec<(i32, usize)>,
        /// Selection method.
        method: TensorSparseMethod,
        /// Seed of the random selection.
        seed: u32,
        /// Exponent of the scalar factor (ζ ≥ 1; ζ = 1 is the linear λ-SOAP kernel).
        zeta: u32,
        /// Added to the diagonal of K_MM (the kernel is dimensionless, ≤ 1).
        jitter: f64,
    },
    /// Ridge regression.
    Linear {
        /// λ_reg ≥ 0 on ‖w‖².
        regularizer: f64,
    },
}

/// Fit settings.
#[derive(Debug, Clone)]
pub struct TensorFitOptions {
    /// λ-SOAP (EquivariantPowerSpectrum) hyper-parameters, JSON text (featomic schema).
    pub hypers: String,
    /// Dipole or polarizability.
    pub target: TensorTarget,
    /// GPR or linear settings.
    pub kind: TensorKindOptions,
    /// Noise per Cartesian component, in the target's unit (e·Å, Å³).
    pub sigma: f64,
    /// Where the targets came from (e.g. the extxyz info key), kept in the model's `meta` as `key`.
    pub key: Option<String>,
    /// Dipoles: add one partial charge per species (in e), fitted jointly
    /// with the λ-SOAP weights (see the module doc); needs non-periodic frames.
    /// Must be false for a polarizability.
    pub charges: bool,
    /// Cancellation.
    pub cancel: CancelFlag,
}

/// One λ channel of a fitted model.
#[derive(Debug, Clone)]
pub struct Channel {
    /// Angular order.
    pub lambda: usize,
    /// Properties of the λ block (q).
    pub n_features: usize,
    /// Properties of the λ = 0 block.
    pub n_scalar: usize,
    /// GPR: sparse environments per species (in the order of the model's species).
    pub sparse_counts: Vec<usize>,
    /// GPR: normalised λ blocks of the sparse environments, `Σm × (2λ+1) × q`.
    pub sparse_features: Vec<f64>,
    /// GPR: normalised λ = 0 blocks of the sparse environments, `Σm × n_scalar`.
    pub sparse_scalar: Vec<f64>,
    /// α (`Σm × (2λ+1)`, species blocks in order) or w (`species × q`).
    pub weights: Vec<f64>,
    /// Constant per atom of component μ = 0 (λ = 0 only), in the target's unit.
    pub offset: f64,
    /// λ = 1 with the charge term: one partial charge per species (in the
    /// order of the model's species), in e; empty without it.
    pub charges: Vec<f64>,
}

impl Channel {
    fn n_mu(&self) -> usize {
        2 * self.lambda + 1
    }

    fn species_offset(&self, c: usize) -> usize {
        self.sparse_counts[..c].iter().sum()
    }
}

/// A fitted tensor model.
pub struct TensorModel {
    /// GPR or linear.
    pub kind: TensorKind,
    /// What it predicts.
    pub target: TensorTarget,
    /// λ-SOAP hyper-parameters (JSON text, as given at fit time).
    pub hypers: String,
    /// Sorted species the model knows (centres and neighbours).
    pub species: Vec<i32>,
    /// Kernel exponent ζ (GPR; 1 for the linear model).
    pub zeta: u32,
    /// Jitter on K_MM (GPR).
    pub jitter: f64,
    /// Ridge parameter (linear).
    pub regularizer: f64,
    /// Noise per component used at fit time.
    pub sigma: f64,
    /// One per λ of the target, in the order of [`TensorTarget::lambdas`].
    pub channels: Vec<Channel>,
    /// Facts about the fit (JSON).
    pub meta: serde_json::Value,
    calculator: EquivariantPowerSpectrum,
}

impl std::fmt::Debug for TensorModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorModel").field("kind", &self.kind).field("target", &self.target).field("species", &self.species).finish()
    }
}

/// Predictions: Cartesian tensors per structure (3 or 9 each, row-major), and per atom when asked.
#[derive(Debug, Clone, Default)]
pub struct TensorPrediction {
    /// One tensor per structure.
    pub structures: Vec<Vec<f64>>,
    /// Per structure, `n_atoms × (3 or 9)` atomic contributions (empty unless asked); they sum to the structure's tensor.
    pub atoms: Vec<Vec<f64>>,
}

/// λ blocks of one atom.
#[derive(Clone)]
struct AtomFeatures {
    species: usize,
    /// per channel: raw λ block, (2λ+1) × q
    raw: Vec<Vec<f64>>,
    /// per channel: normalised λ block
    hat: Vec<Vec<f64>>,
    /// normalised λ = 0 block
    scalar: Vec<f64>,
}

fn check_positive(name: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v > 0.0) {
        return Err(Error::InvalidParameter(format!("{name} = {v} (expected a positive number)")));
    }
    Ok(())
}

fn normalised(x: &[f64]) -> Vec<f64> {
    let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
    if norm == 0.0 {
        return vec![0.0; x.len()];
    }
    x.iter().map(|v| v / norm).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn calculator_for(hypers: &str, species: &[i32]) -> Result<EquivariantPowerSpectrum> {
    EquivariantPowerSpectrum::new(hypers, Some(species.to_vec()))
}

/// λ blocks of every atom of `systems`: raw and normalised per channel λ, and ŝ.
fn atom_features(
    calculator: &EquivariantPowerSpectrum,
    species: &[i32],
    lambdas: &[usize],
    systems: &[System],
    sizes: Option<(&[usize], usize)>,
    cancel: &CancelFlag,
) -> Result<(Vec<Vec<AtomFeatures>>, Vec<usize>, usize)> {
    let mut wanted: Vec<i32> = lambdas.iter().map(|&l| l as i32).collect();
    if !wanted.contains(&0) {
        wanted.push(0);
    }
    let mut keys = Vec::new();
    for &l in &wanted {
        keys.extend_from_slice(&[l, 1]);
    }
    let options = ComputeOptions {
        selected_keys: Some(Labels::new(&["o3_lambda", "o3_sigma"], keys)),
        neighbors_to_properties: true,
        cancel: cancel.clone(),
        ..Default::default()
    };
    let tensor = calculator.compute(systems, &options)?;
    // property counts, from the blocks (or the model for predictions)
    let mut n_features: Vec<Option<usize>> = vec![None; lambdas.len()];
    let mut n_scalar: Option<usize> = None;
    if let Some((nf, ns)) = sizes {
        n_features = nf.iter().map(|&v| Some(v)).collect();
        n_scalar = Some(ns);
    }
    for (key, block) in tensor.keys.rows().zip(&tensor.blocks) {
        let count = block.properties.count();
        let l = key[0] as usize;
        let check = |slot: &mut Option<usize>| -> Result<()> {
            match slot {
                Some(v) if *v != count => Err(Error::InvalidParameter(format!("λ-SOAP block o3_lambda = {l} has {count} properties, the model expects {v}"))),
                Some(_) => Ok(()),
                None => {
                    *slot = Some(count);
                    Ok(())
                }
            }
        };
        if l == 0 {
            check(&mut n_scalar)?;
        }
        if let Some(c) = lambdas.iter().position(|&x| x == l) {
            check(&mut n_features[c])?;
        }
    }
    let n_scalar = n_scalar.ok_or_else(|| Error::InvalidParameter("λ-SOAP gave no o3_lambda = 0 block".into()))?;
    let n_features: Vec<usize> = n_features.into_iter().map(|v| v.unwrap_or(0)).collect();
    let mut out: Vec<Vec<AtomFeatures>> = systems
        .iter()
        .map(|s| {
            s.types
                .iter()
                .map(|t| AtomFeatures {
                    species: species.binary_search(t).unwrap_or(usize::MAX),
                    raw: lambdas.iter().zip(&n_features).map(|(&l, &q)| vec![0.0; (2 * l + 1) * q]).collect(),
                    hat: Vec::new(),
                    scalar: vec![0.0; n_scalar],
                })
                .collect()
        })
        .collect();
    for (key, block) in tensor.keys.rows().zip(&tensor.blocks) {
        let l = key[0] as usize;
        let per = (2 * l + 1) * block.properties.count();
        for (row, sample) in block.samples.rows().enumerate() {
            let (s, i) = (sample[0] as usize, sample[1] as usize);
            let values = &block.values[row * per..(row + 1) * per];
            if l == 0 {
                out[s][i].scalar.copy_from_slice(values);
            }
            if let Some(c) = lambdas.iter().position(|&x| x == l) {
                out[s][i].raw[c].copy_from_slice(values);
            }
        }
    }
    out.par_iter_mut().for_each(|atoms| {
        for a in atoms.iter_mut() {
            a.hat = a.raw.iter().map(|x| normalised(x)).collect();
            a.scalar = normalised(&a.scalar);
        }
    });
    Ok((out, n_features, n_scalar))
}

fn check_species(systems: &[System], species: &[i32], offset: usize) -> Result<()> {
    for (k, s) in systems.iter().enumerate() {
        if let Some(&t) = s.types.iter().find(|t| species.binary_search(t).is_err()) {
            return Err(Error::InvalidParameter(format!(
                "systems[{}].types contains {t}, a species the model was not trained on (model species: {species:?})",
                k + offset
            )));
        }
    }
    Ok(())
}

/// Refuses periodic frames for the charge term: r − r̄ has no meaning across periodic images.
fn check_molecules(systems: &[System], offset: usize, fitting: bool) -> Result<()> {
    if let Some(k) = systems.iter().position(|s| s.pbc.iter().any(|&p| p)) {
        let s = &systems[k];
        let advice = if fitting { "fit with charges: false (acdc fit --no-charges)" } else { "refit the model with charges: false (acdc fit --no-charges)" };
        return Err(Error::InvalidParameter(format!(
            "systems[{}] is periodic (pbc = {:?}): the dipole charge term (charges) needs molecules or clusters, as r − r̄ is not defined across periodic images; {advice}",
            k + offset,
            s.pbc
        )));
    }
    Ok(())
}

/// r_i − r̄ of every atom, r̄ the mean position (Å).
fn centred(system: &System) -> Vec<[f64; 3]> {
    let n = system.size() as f64;
    let mut mean = [0.0; 3];
    for p in &system.positions {
        (0..3).for_each(|a| mean[a] += p[a]);
    }
    mean.iter_mut().for_each(|m| *m /= n);
    system.positions.iter().map(|p| [p[0] - mean[0], p[1] - mean[1], p[2] - mean[2]]).collect()
}

/// ∂μ/∂q_Z = Σ_{i: Z_i = Z} (r_i − r̄) for every species, `3 × n_species` row-major in the λ = 1 order (y, z, x); Å.
fn charge_rows(system: &System, species: &[i32]) -> Vec<f64> {
    let ns = species.len();
    let mut out = vec![0.0; 3 * ns];
    for (t, d) in system.types.iter().zip(centred(system)) {
        let z = species.binary_search(t).expect("species checked");
        let sph = vector_to_spherical(&d);
        for mu in 0..3 {
            out[mu * ns + z] += sph[mu];
        }
    }
    out
}

/// Checks the Cartesian targets and turns them into spherical ones per channel.
fn spherical_targets(target: TensorTarget, systems: &[System], values: &[Vec<f64>]) -> Result<Vec<Vec<Vec<f64>>>> {
    if values.len() != systems.len() {
        return Err(Error::InvalidParameter(format!("{} {} targets for {} systems", values.len(), target.name(), systems.len())));
    }
    let size = target.size();
    let mut out: Vec<Vec<Vec<f64>>> = vec![Vec::with_capacity(systems.len()); target.lambdas().len()];
    for (k, v) in values.iter().enumerate() {
        if v.len() != size {
            return Err(Error::InvalidParameter(format!("systems[{k}]: {} has {} values (expected {size})", target.name(), v.len())));
        }
        if let Some(p) = v.iter().position(|x| !x.is_finite()) {
            return Err(Error::InvalidParameter(format!("systems[{k}]: {}[{p}] = {} (expected a finite number)", target.name(), v[p])));
        }
        match target {
            TensorTarget::Dipole => out[0].push(vector_to_spherical(v).to_vec()),
            TensorTarget::Polarizability => {
                let scale = v.iter().map(|x| x.abs()).fold(0.0, f64::max);
                for a in 0..3 {
                    for b in 0..a {
                        if (v[3 * a + b] - v[3 * b + a]).abs() > 1e-8 * scale.max(f64::MIN_POSITIVE) {
                            return Err(Error::InvalidParameter(format!(
                                "systems[{k}]: polarizability is not symmetric ([{a}][{b}] = {}, [{b}][{a}] = {})",
                                v[3 * a + b],
                                v[3 * b + a]
                            )));
                        }
                    }
                }
                let (s0, s2) = symmetric_to_spherical(v);
                out[0].push(s0.to_vec());
                out[1].push(s2.to_vec());
            }
        }
    }
    Ok(out)
}

/// K^λ(i, m) (row-major (2λ+1)²) times the scalar factor.
fn block_kernel(hat_i: &[f64], hat_m: &[f64], n_mu: usize, q: usize, scalar: f64, out: &mut [f64]) {
    for a in 0..n_mu {
        let ra = &hat_i[a * q..(a + 1) * q];
        for b in 0..n_mu {
            out[a * n_mu + b] = scalar * dot(ra, &hat_m[b * q..(b + 1) * q]);
        }
    }
}

impl TensorModel {
    /// Parameters of channel `c`.
    pub fn n_params(&self, c: usize) -> usize {
        self.channels[c].weights.len()
    }

    /// Checks a model assembled from parts (e.g. read from a file): sizes, finiteness and hypers.
    #[allow(clippy::too_many_arguments)]
    pub fn assemble(
        kind: TensorKind,
        target: TensorTarget,
        hypers: String,
        species: Vec<i32>,
        zeta: u32,
        jitter: f64,
        regularizer: f64,
        sigma: f64,
        channels: Vec<Channel>,
        meta: serde_json::Value,
    ) -> Result<TensorModel> {
        let mut sorted = species.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if species.is_empty() || sorted != species {
            return Err(Error::InvalidParameter(format!("species {species:?} are not sorted, unique and non-empty")));
        }
        if !(1..=1024).contains(&zeta) {
            return Err(Error::InvalidParameter(format!("zeta = {zeta} (expected an integer between 1 and 1024)")));
        }
        if !(jitter.is_finite() && jitter >= 0.0) {
            return Err(Error::InvalidParameter(format!("jitter = {jitter} (expected a number ≥ 0)")));
        }
        if !(regularizer.is_finite() && regularizer >= 0.0) {
            return Err(Error::InvalidParameter(format!("regularizer = {regularizer} (expected a number ≥ 0)")));
        }
        check_positive("sigma", sigma)?;
        let calculator = calculator_for(&hypers, &species)?;
        let lambdas = target.lambdas();
        if channels.len() != lambdas.len() || channels.iter().zip(lambdas).any(|(c, &l)| c.lambda != l) {
            return Err(Error::InvalidParameter(format!("a {} model needs the channels λ = {lambdas:?}", target.name())));
        }
        // the property counts these hypers give
        let probe = System::new(vec![species[0]], vec![[0.0; 3]], [[0.0; 3]; 3], [false; 3])?;
        let mut keys = Vec::new();
        for &l in lambdas.iter().chain(std::iter::once(&0)) {
            keys.extend_from_slice(&[l as i32, 1]);
        }
        let options = ComputeOptions { selected_keys: Some(Labels::new(&["o3_lambda", "o3_sigma"], keys)), neighbors_to_properties: true, ..Default::default() };
        let t = calculator.compute(&[probe], &options)?;
        let count_of = |l: usize| t.keys.rows().zip(&t.blocks).find(|(k, _)| k[0] == l as i32).map(|(_, b)| b.properties.count());
        let ns = species.len();
        for ch in &channels {
            let l = ch.lambda;
            if count_of(l) != Some(ch.n_features) || count_of(0) != Some(ch.n_scalar) {
                return Err(Error::InvalidParameter(format!(
                    "channel λ = {l}: {} / {} properties, the hypers give {:?} / {:?}",
                    ch.n_features,
                    ch.n_scalar,
                    count_of(l),
                    count_of(0)
                )));
            }
            if !ch.offset.is_finite() || (l != 0 && ch.offset != 0.0) {
                return Err(Error::InvalidParameter(format!("channel λ = {l}: offset = {}", ch.offset)));
            }
            if !ch.charges.is_empty() {
                if target != TensorTarget::Dipole {
                    return Err(Error::InvalidParameter(format!("channel λ = {l}: charges are a term of dipole models only")));
                }
                if ch.charges.len() != ns {
                    return Err(Error::InvalidParameter(format!("channel λ = {l}: {} charges for {ns} species", ch.charges.len())));
                }
                if let Some(p) = ch.charges.iter().position(|v| !v.is_finite()) {
                    return Err(Error::InvalidParameter(format!("channel λ = {l}: charges[{p}] = {} is not finite", ch.charges[p])));
                }
            }
            let n_mu = 2 * l + 1;
            match kind {
                TensorKind::SparseGpr => {
                    if ch.sparse_counts.len() != ns {
                        return Err(Error::InvalidParameter(format!("channel λ = {l}: {} sparse counts for {ns} species", ch.sparse_counts.len())));
                    }
                    let m = ch.sparse_counts.iter().try_fold(0usize, |a, &c| a.checked_add(c)).ok_or_else(|| Error::InvalidParameter("sparse counts overflow".into()))?;
                    let sizes = [
                        ("sparse_features", ch.sparse_features.len(), m.checked_mul(n_mu * ch.n_features)),
                        ("sparse_scalar", ch.sparse_scalar.len(), m.checked_mul(ch.n_scalar)),
                        ("weights", ch.weights.len(), m.checked_mul(n_mu)),
                    ];
                    for (name, got, want) in sizes {
                        if Some(got) != want {
                            return Err(Error::InvalidParameter(format!("channel λ = {l}: {name} has {got} values, expected {want:?}")));
                        }
                    }
                }
                TensorKind::Linear => {
                    if Some(ch.weights.len()) != ns.checked_mul(ch.n_features) {
                        return Err(Error::InvalidParameter(format!("channel λ = {l}: {} weights, expected {ns} × {}", ch.weights.len(), ch.n_features)));
                    }
                }
            }
            for (name, data) in [("weights", &ch.weights), ("sparse_features", &ch.sparse_features), ("sparse_scalar", &ch.sparse_scalar)] {
                if let Some(p) = data.iter().position(|v| !v.is_finite()) {
                    return Err(Error::InvalidParameter(format!("channel λ = {l}: {name}[{p}] = {} is not finite", data[p])));
                }
            }
        }
        Ok(TensorModel { kind, target, hypers, species, zeta, jitter, regularizer, sigma, channels, meta, calculator })
    }

    /// Fits a model to Cartesian tensors, one per system (3 for a dipole,
    /// 9 row-major for a symmetric tensor).
    pub fn fit(systems: &[System], values: &[Vec<f64>], options: &TensorFitOptions) -> Result<TensorModel> {
        if systems.is_empty() {
            return Err(Error::InvalidParameter("systems is empty (a fit needs at least one structure)".into()));
        }
        check_positive("sigma", options.sigma)?;
        let target = options.target;
        let targets = spherical_targets(target, systems, values)?;
        if options.charges {
            if target != TensorTarget::Dipole {
                return Err(Error::InvalidParameter(format!("charges = true: the charge term is for dipoles, not a {} (give charges: false)", target.name())));
            }
            check_molecules(systems, 0, true)?;
        }
        let mut species: Vec<i32> = systems.iter().flat_map(|s| s.types.iter().copied()).collect();
        species.sort_unstable();
        species.dedup();
        let ns = species.len();
        let calculator = calculator_for(&options.hypers, &species)?;
        let lambdas = target.lambdas();
        let budget = MemoryBudget::global();
        let n_atoms: usize = systems.iter().map(System::size).sum();
        let (kind, zeta, jitter, regularizer) = match options.kind {
            TensorKindOptions::SparseGpr { zeta, jitter, .. } => {
                if !(1..=1024).contains(&zeta) {
                    return Err(Error::InvalidParameter(format!("kernel.zeta = {zeta} (expected an integer between 1 and 1024)")));
                }
                if !(jitter.is_finite() && jitter >= 0.0) {
                    return Err(Error::InvalidParameter(format!("jitter = {jitter} (expected a number ≥ 0)")));
                }
                (TensorKind::SparseGpr, zeta, jitter, 0.0)
            }
            TensorKindOptions::Linear { regularizer } => {
                if !(regularizer.is_finite() && regularizer >= 0.0) {
                    return Err(Error::InvalidParameter(format!("regularizer = {regularizer} (expected a number ≥ 0)")));
                }
                (TensorKind::Linear, 1, 0.0, regularizer)
            }
        };
        let (features, n_features, n_scalar) = atom_features(&calculator, &species, lambdas, systems, None, &options.cancel)?;
        if let Some(c) = n_features.iter().position(|&q| q == 0) {
            return Err(Error::InvalidParameter(format!(
                "the λ-SOAP hypers give no o3_lambda = {}, o3_sigma = +1 block (a {} needs basis.max_angular ≥ 1)",
                lambdas[c],
                target.name()
            )));
        }
        let per_atom: usize = n_scalar + lambdas.iter().zip(&n_features).map(|(&l, &q)| 2 * (2 * l + 1) * q).sum::<usize>();
        budget.check("the training features", (n_atoms as f64) * (per_atom as f64) * 8.0)?;

        let mut channels = Vec::new();
        for (c, &lambda) in lambdas.iter().enumerate() {
            check_cancelled(&options.cancel)?;
            let n_mu = 2 * lambda + 1;
            let q = n_features[c];
            let y_sph = &targets[c];
            // λ = 0: a constant per atom (the mean trace component per atom)
            let offset = if lambda == 0 { systems.iter().zip(y_sph).map(|(s, y)| y[0] / s.size() as f64).sum::<f64>() / systems.len() as f64 } else { 0.0 };
            let mut channel = Channel {
                lambda,
                n_features: q,
                n_scalar,
                sparse_counts: vec![0; ns],
                sparse_features: Vec::new(),
                sparse_scalar: Vec::new(),
                weights: Vec::new(),
                offset,
                charges: Vec::new(),
            };
            if let TensorKindOptions::SparseGpr { count, ref counts, method, seed, .. } = options.kind {
                for (sc, &z) in species.iter().enumerate() {
                    let want = counts.iter().find(|(s, _)| *s == z).map_or(count, |&(_, c)| c);
                    if want == 0 {
                        return Err(Error::InvalidParameter(format!("sparse.count = 0 for species {z} (expected at least 1 sparse environment per species)")));
                    }
                    // candidates: atoms of this species with a non-zero λ block, in training order
                    let candidates: Vec<&AtomFeatures> =
                        features.iter().flatten().filter(|a| a.species == sc && a.hat[c].iter().any(|&v| v != 0.0)).collect();
                    if candidates.len() < want {
                        return Err(Error::InvalidParameter(format!(
                            "sparse.count = {want} but species {z} has only {} environments with a non-zero λ = {lambda} block in the training set",
                            candidates.len()
                        )));
                    }
                    let indices = match method {
                        TensorSparseMethod::Fps => {
                            let mut data = Vec::with_capacity(candidates.len() * n_scalar);
                            for a in &candidates {
                                data.extend_from_slice(&a.scalar);
                            }
                            farthest_point_sampling(&Dense { data, rows: candidates.len(), cols: n_scalar }, want, &[0], Axis::Samples)?.indices
                        }
                        TensorSparseMethod::Random => LegacyRandomState::new(seed).permutation(candidates.len())[..want].to_vec(),
                    };
                    for k in indices {
                        channel.sparse_features.extend_from_slice(&candidates[k].hat[c]);
                        channel.sparse_scalar.extend_from_slice(&candidates[k].scalar);
                    }
                    channel.sparse_counts[sc] = want;
                }
            }
            let n_weights = match kind {
                TensorKind::SparseGpr => channel.sparse_counts.iter().sum::<usize>() * n_mu,
                TensorKind::Linear => ns * q,
            };
            // the charge term: ns more parameters after the weights, and one gauge row after the prior
            let with_charges = options.charges && lambda == 1;
            let n = n_weights + if with_charges { ns } else { 0 };
            let n_rows = n_weights + if with_charges { 1 } else { 0 };
            let rows = systems.len() * n_mu;
            budget.check("the least-squares system", ((rows + n_rows) as f64) * (n as f64) * 8.0 * 2.0)?;
            // the data rows, folded at the end into the prior's triangle
            // (math::qr_fold): the prior rows are upper triangular, the
            // charges' gauge row included (row n_weights, charge columns)
            let mut stack = DMatrix::<f64>::zeros(rows, n);
            let mut rhs = DVector::<f64>::zeros(rows);
            let mut prior = DMatrix::<f64>::zeros(n, n);
            debug_assert!(n_rows <= n);
            // structure rows
            let scratch = Rows { kind, channel: &channel, zeta, n_species: ns };
            let structure_rows: Vec<Vec<f64>> = features.par_iter().map(|atoms| scratch.design_rows(atoms, c)).collect();
            for (k, r) in structure_rows.iter().enumerate() {
                let n_k = systems[k].size() as f64;
                for mu in 0..n_mu {
                    let row = k * n_mu + mu;
                    for p in 0..n_weights {
                        stack[(row, p)] = r[mu * n_weights + p] / options.sigma;
                    }
                    let base = if mu == 0 { n_k * offset } else { 0.0 };
                    rhs[row] = (y_sph[k][mu] - base) / options.sigma;
                }
            }
            if with_charges {
                let mut atoms_of = vec![0usize; ns];
                for (k, s) in systems.iter().enumerate() {
                    let d = charge_rows(s, &species);
                    for mu in 0..n_mu {
                        for z in 0..ns {
                            stack[(k * n_mu + mu, n_weights + z)] = d[mu * ns + z] / options.sigma;
                        }
                    }
                    for t in &s.types {
                        atoms_of[species.binary_search(t).expect("species of the training set")] += 1;
                    }
                }
                // the gauge Σ_Z N_Z q_Z = 0: the data rows do not see a common
                // shift of the charges, so this row's weight changes no
                // prediction; it is set to the charge columns' scale so the
                // QR sees no artificially small pivot
                let scale = (0..ns).map(|z| stack.view((0, n_weights + z), (rows, 1)).norm()).fold(1.0 / options.sigma, f64::max);
                for z in 0..ns {
                    prior[(n_weights, n_weights + z)] = scale * atoms_of[z] as f64 / n_atoms as f64;
                }
            }
            // prior rows
            match kind {
                TensorKind::SparseGpr => {
                    for sc in 0..ns {
                        let m = channel.sparse_counts[sc];
                        let o = channel.species_offset(sc);
                        let size = m * n_mu;
                        let mut kmm = DMatrix::<f64>::zeros(size, size);
                        let mut block = vec![0.0; n_mu * n_mu];
                        for a in 0..m {
                            for b in 0..m {
                                let sa = &channel.sparse_scalar[(o + a) * n_scalar..(o + a + 1) * n_scalar];
                                let sb = &channel.sparse_scalar[(o + b) * n_scalar..(o + b + 1) * n_scalar];
                                let scalar = dot(sa, sb).powi(zeta as i32 - 1);
                                let fa = &channel.sparse_features[(o + a) * n_mu * q..(o + a + 1) * n_mu * q];
                                let fb = &channel.sparse_features[(o + b) * n_mu * q..(o + b + 1) * n_mu * q];
                                block_kernel(fa, fb, n_mu, q, scalar, &mut block);
                                for x in 0..n_mu {
                                    for y in 0..n_mu {
                                        kmm[(a * n_mu + x, b * n_mu + y)] = block[x * n_mu + y];
                                    }
                                }
                            }
                        }
                        for d in 0..size {
                            kmm[(d, d)] += jitter;
                        }
                        let l = kmm.cholesky().ok_or_else(|| {
                            Error::Numerical(format!(
                                "K_MM (λ = {lambda}) of species {} is not positive definite (duplicate or symmetric sparse environments?): increase jitter (now {jitter}) or lower sparse.count",
                                species[sc]
                            ))
                        })?;
                        let lt = l.l().transpose();
                        prior.view_mut((o * n_mu, o * n_mu), (size, size)).copy_from(&lt);
                    }
                }
                TensorKind::Linear => {
                    for p in 0..n_weights {
                        prior[(p, p)] = regularizer.sqrt();
                    }
                }
            }
            check_cancelled(&options.cancel)?;
            let mut r = prior;
            let mut b = DVector::<f64>::zeros(n);
            crate::math::qr_fold::fold_rows(r.as_mut_slice(), b.as_mut_slice(), stack.as_mut_slice(), rhs.as_mut_slice(), n, rows);
            drop(stack);
            let max = (0..n).map(|k| r[(k, k)].abs()).fold(0.0, f64::max);
            if let Some(k) = (0..n).find(|&k| !(r[(k, k)].abs() > f64::EPSILON * n as f64 * max)) {
                let advice = if k >= n_weights { "the species' charges are not determined by these structures: add data, or fit with charges: false (acdc fit --no-charges)" } else { "add data, or increase the regularizer / jitter" };
                return Err(Error::Numerical(format!(
                    "the least-squares system (λ = {lambda}) is singular (R[{k}, {k}] = {:e}, largest {max:e}): {advice}",
                    r[(k, k)]
                )));
            }
            let w = r.solve_upper_triangular(&b.rows(0, n).into_owned()).ok_or_else(|| Error::Numerical("the least-squares system is singular".into()))?;
            if let Some(k) = w.iter().position(|v| !v.is_finite()) {
                return Err(Error::Numerical(format!("weight {k} (λ = {lambda}) is not finite: the least-squares system is singular")));
            }
            channel.weights = w.as_slice()[..n_weights].to_vec();
            channel.charges = w.as_slice()[n_weights..].to_vec();
            channels.push(channel);
        }
        let mut meta = serde_json::json!({
            "sigma": options.sigma,
            "target": target.name(),
            "training_structures": systems.len(),
            "charges": options.charges,
        });
        if let Some(key) = &options.key {
            meta["key"] = serde_json::json!(key);
        }
        if let TensorKindOptions::SparseGpr { method, seed, .. } = options.kind {
            let counts: serde_json::Map<String, serde_json::Value> =
                species.iter().enumerate().map(|(c, z)| (z.to_string(), serde_json::json!(channels[0].sparse_counts[c]))).collect();
            meta["sparse"] = serde_json::json!({ "method": method.name(), "seed": seed, "count": counts });
        }
        Ok(TensorModel { kind, target, hypers: options.hypers.clone(), species, zeta, jitter, regularizer, sigma: options.sigma, channels, meta, calculator })
    }

    /// Predicts the Cartesian tensor of every system, and the atomic contributions when `per_atom`.
    pub fn predict(&self, systems: &[System], per_atom: bool, cancel: &CancelFlag) -> Result<TensorPrediction> {
        check_species(systems, &self.species, 0)?;
        if self.has_charges() {
            check_molecules(systems, 0, false)?;
        }
        let lambdas = self.target.lambdas();
        let nf: Vec<usize> = self.channels.iter().map(|c| c.n_features).collect();
        let mut out = TensorPrediction::default();
        let size = self.target.size();
        // batches of about 512 atoms bound the memory of the features
        let mut start = 0;
        while start < systems.len() {
            check_cancelled(cancel)?;
            let mut end = start;
            let mut atoms = 0;
            while end < systems.len() && (end == start || atoms + systems[end].size() <= 512) {
                atoms += systems[end].size();
                end += 1;
            }
            let (features, _, _) = atom_features(&self.calculator, &self.species, lambdas, &systems[start..end], Some((&nf, self.channels[0].n_scalar)), cancel)?;
            let results: Vec<(Vec<f64>, Vec<f64>)> = features
                .par_iter()
                .zip(&systems[start..end])
                .map(|(atoms, system)| {
                    let mut per = vec![0.0; atoms.len() * size];
                    let mut sums: Vec<Vec<f64>> = self.channels.iter().map(|ch| vec![0.0; 2 * ch.lambda + 1]).collect();
                    let centred = if self.has_charges() { centred(system) } else { Vec::new() };
                    for (i, a) in atoms.iter().enumerate() {
                        let mut sph: Vec<Vec<f64>> = self.channels.iter().enumerate().map(|(c, ch)| self.atom_spherical(ch, a, c)).collect();
                        for (v, ch) in sph.iter_mut().zip(&self.channels) {
                            if !ch.charges.is_empty() {
                                // q_{Z_i} (r_i − r̄), in the λ = 1 order
                                let d = vector_to_spherical(&centred[i]);
                                v.iter_mut().zip(d).for_each(|(x, dx)| *x += ch.charges[a.species] * dx);
                            }
                        }
                        per[i * size..(i + 1) * size].copy_from_slice(&self.cartesian(&sph));
                        for (sum, v) in sums.iter_mut().zip(&sph) {
                            sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
                        }
                    }
                    (self.cartesian(&sums), per)
                })
                .collect();
            for (total, per) in results {
                out.structures.push(total);
                if per_atom {
                    out.atoms.push(per);
                }
            }
            start = end;
        }
        Ok(out)
    }

    /// Whether the model has the dipole charge term.
    pub fn has_charges(&self) -> bool {
        self.channels.iter().any(|c| !c.charges.is_empty())
    }

    /// The fitted partial charges per species (in the order of `species`), in e; `None` without the charge term.
    pub fn charges(&self) -> Option<&[f64]> {
        self.channels.iter().find(|c| !c.charges.is_empty()).map(|c| c.charges.as_slice())
    }

    fn cartesian(&self, sph: &[Vec<f64>]) -> Vec<f64> {
        match self.target {
            TensorTarget::Dipole => vector_from_spherical(&sph[0]).to_vec(),
            TensorTarget::Polarizability => symmetric_from_spherical(sph[0][0], &sph[1]).to_vec(),
        }
    }

    /// Spherical components of one atom's contribution to channel `c` (offset included).
    fn atom_spherical(&self, ch: &Channel, a: &AtomFeatures, c: usize) -> Vec<f64> {
        let rows = Rows { kind: self.kind, channel: ch, zeta: self.zeta, n_species: self.species.len() };
        let n_mu = 2 * ch.lambda + 1;
        let n = ch.weights.len();
        let design = rows.design_rows(std::slice::from_ref(a), c);
        let mut out = vec![0.0; n_mu];
        for mu in 0..n_mu {
            out[mu] = dot(&design[mu * n..(mu + 1) * n], &ch.weights);
        }
        out[0] += ch.offset;
        out
    }
}

/// Builds design rows for one channel.
struct Rows<'a> {
    kind: TensorKind,
    channel: &'a Channel,
    zeta: u32,
    n_species: usize,
}

impl Rows<'_> {
    /// `(2λ+1) × n_params` row-major: ∂y_μ/∂θ of the sum over `atoms`, for channel `c`.
    fn design_rows(&self, atoms: &[AtomFeatures], c: usize) -> Vec<f64> {
        let ch = self.channel;
        let n_mu = ch.n_mu();
        let q = ch.n_features;
        let n = match self.kind {
            TensorKind::SparseGpr => ch.sparse_counts.iter().sum::<usize>() * n_mu,
            TensorKind::Linear => self.n_species * q,
        };
        let mut out = vec![0.0; n_mu * n];
        let mut block = vec![0.0; n_mu * n_mu];
        for a in atoms {
            match self.kind {
                TensorKind::SparseGpr => {
                    let m = ch.sparse_counts[a.species];
                    let o = ch.species_offset(a.species);
                    for k in 0..m {
                        let s = &ch.sparse_scalar[(o + k) * ch.n_scalar..(o + k + 1) * ch.n_scalar];
                        let scalar = dot(&a.scalar, s).powi(self.zeta as i32 - 1);
                        let f = &ch.sparse_features[(o + k) * n_mu * q..(o + k + 1) * n_mu * q];
                        block_kernel(&a.hat[c], f, n_mu, q, scalar, &mut block);
                        for mu in 0..n_mu {
                            for nu in 0..n_mu {
                                out[mu * n + (o + k) * n_mu + nu] += block[mu * n_mu + nu];
                            }
                        }
                    }
                }
                TensorKind::Linear => {
                    for mu in 0..n_mu {
                        let src = &a.raw[c][mu * q..(mu + 1) * q];
                        let dst = &mut out[mu * n + a.species * q..mu * n + (a.species + 1) * q];
                        for (d, s) in dst.iter_mut().zip(src) {
                            *d += s;
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYPERS: &str = r#"{"cutoff": {"radius": 3.5, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        "density": {"type": "Gaussian", "width": 0.4},
        "basis": {"type": "TensorProduct", "max_angular": 2, "radial": {"type": "Gto", "max_radial": 3}, "spline_accuracy": null}}"#;

    /// A small molecule-like structure with a pseudo-random geometry.
    fn structure(seed: u64) -> System {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let types = vec![8, 1, 1, 6, 1];
        let base = [[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0], [0.3, -0.4, 1.4], [1.0, -0.9, 1.8]];
        let positions = base.iter().map(|p| [p[0] + 0.3 * next(), p[1] + 0.3 * next(), p[2] + 0.3 * next()]).collect();
        System::new(types, positions, [[0.0; 3]; 3], [false; 3]).unwrap()
    }

    /// A rotation from three angles, times −1 when `improper`.
    fn rotation(a: f64, b: f64, c: f64, improper: bool) -> [[f64; 3]; 3] {
        let rz = |t: f64| [[t.cos(), -t.sin(), 0.0], [t.sin(), t.cos(), 0.0], [0.0, 0.0, 1.0]];
        let ry = |t: f64| [[t.cos(), 0.0, t.sin()], [0.0, 1.0, 0.0], [-t.sin(), 0.0, t.cos()]];
        let mul = |x: [[f64; 3]; 3], y: [[f64; 3]; 3]| {
            let mut o = [[0.0; 3]; 3];
            for i in 0..3 {
                for j in 0..3 {
                    o[i][j] = (0..3).map(|k| x[i][k] * y[k][j]).sum();
                }
            }
            o
        };
        let mut r = mul(mul(rz(a), ry(b)), rz(c));
        if improper {
            r.iter_mut().for_each(|row| row.iter_mut().for_each(|v| *v = -*v));
        }
        r
    }

    fn rotate(s: &System, r: &[[f64; 3]; 3]) -> System {
        let positions: Vec<[f64; 3]> = s.positions.iter().map(|p| [0, 1, 2].map(|i| (0..3).map(|k| r[i][k] * p[k]).sum::<f64>())).collect();
        System::new(s.types.clone(), positions, [[0.0; 3]; 3], [false; 3]).unwrap()
    }

    /// Targets: a vector and a symmetric tensor that rotate with the structure.
    fn targets(s: &System, target: TensorTarget) -> Vec<f64> {
        let q = |t: i32| -> f64 {
            match t {
                8 => -0.8,
                6 => 0.3,
                _ => 0.25,
            }
        };
        let mut d = [0.0; 3];
        let mut p = [0.0; 9];
        for (t, r) in s.types.iter().zip(&s.positions) {
            for a in 0..3 {
                d[a] += q(*t) * r[a] * (1.0 + 0.1 * r[a] * r[a]);
                for b in 0..3 {
                    p[3 * a + b] += q(*t).abs() * r[a] * r[b] + if a == b { 1.0 } else { 0.0 };
                }
            }
        }
        match target {
            TensorTarget::Dipole => d.to_vec(),
            TensorTarget::Polarizability => p.to_vec(),
        }
    }

    fn fit_charges(target: TensorTarget, kind: TensorKindOptions, charges: bool) -> (TensorModel, Vec<System>) {
        let systems: Vec<System> = (0..12).map(structure).collect();
        let values: Vec<Vec<f64>> = systems.iter().map(|s| targets(s, target)).collect();
        let options = TensorFitOptions { hypers: HYPERS.into(), target, kind, sigma: 1e-3, key: None, charges, cancel: None };
        (TensorModel::fit(&systems, &values, &options).unwrap(), systems)
    }

    /// (target, kind, charges) of every model the tests check.
    fn variants() -> Vec<(TensorTarget, TensorKindOptions, bool)> {
        let mut out = Vec::new();
        for target in [TensorTarget::Dipole, TensorTarget::Polarizability] {
            for kind in [gpr(), TensorKindOptions::Linear { regularizer: 1e-6 }] {
                out.push((target, kind.clone(), false));
                if target == TensorTarget::Dipole {
                    out.push((target, kind, true));
                }
            }
        }
        out
    }

    fn gpr() -> TensorKindOptions {
        TensorKindOptions::SparseGpr { count: 6, counts: vec![], method: TensorSparseMethod::Fps, seed: 0, zeta: 2, jitter: 1e-8 }
    }

    fn rel(a: &[f64], b: &[f64]) -> f64 {
        let scale = b.iter().map(|v| v * v).sum::<f64>().sqrt();
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt() / scale
    }

    #[test]
    fn spherical_maps_round_trip() {
        let v = [0.3, -1.2, 2.5];
        assert_eq!(vector_from_spherical(&vector_to_spherical(&v)), v);
        let t = [1.0, 0.2, -0.3, 0.2, 2.0, 0.7, -0.3, 0.7, -0.5];
        let (s0, s2) = symmetric_to_spherical(&t);
        let back = symmetric_from_spherical(s0[0], &s2);
        assert!(rel(&back, &t) < 1e-15);
        let norm2 = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>();
        assert!((norm2(&t) - s0[0] * s0[0] - norm2(&s2)).abs() < 1e-14);
    }

    /// Predictions rotate as the Cartesian tensor (proper and improper
    /// rotations), do not depend on the atom order, and the atomic
    /// contributions sum to the structure's tensor.
    #[test]
    fn equivariant_and_permutation_invariant() {
        for (target, kind, charges) in variants() {
            {
                let (model, _) = fit_charges(target, kind, charges);
                assert_eq!(model.has_charges(), charges);
                let s = structure(99);
                let base = model.predict(&[s.clone()], true, &None).unwrap();
                let y = &base.structures[0];
                let sum: Vec<f64> = (0..y.len()).map(|c| (0..s.size()).map(|i| base.atoms[0][i * y.len() + c]).sum()).collect();
                assert!(rel(&sum, y) < 1e-13, "{target:?}: atoms sum {sum:?} vs {y:?}");
                for (k, improper) in [(0, false), (1, true), (2, false), (3, true)] {
                    let r = rotation(0.3 + k as f64, 1.1 * k as f64 + 0.2, 2.0 - 0.7 * k as f64, improper);
                    let got = &model.predict(&[rotate(&s, &r)], false, &None).unwrap().structures[0];
                    let want: Vec<f64> = match target {
                        TensorTarget::Dipole => (0..3).map(|i| (0..3).map(|a| r[i][a] * y[a]).sum()).collect(),
                        TensorTarget::Polarizability => (0..9)
                            .map(|ij| {
                                let (i, j) = (ij / 3, ij % 3);
                                (0..3).flat_map(|a| (0..3).map(move |b| (a, b))).map(|(a, b)| r[i][a] * y[3 * a + b] * r[j][b]).sum()
                            })
                            .collect(),
                    };
                    assert!(rel(got, &want) < 1e-10, "{target:?} rotation {k}: {got:?} vs {want:?}");
                }
                let mut order: Vec<usize> = (0..s.size()).collect();
                order.reverse();
                order.swap(0, 2);
                let p = System::new(order.iter().map(|&i| s.types[i]).collect(), order.iter().map(|&i| s.positions[i]).collect(), [[0.0; 3]; 3], [false; 3]).unwrap();
                let got = &model.predict(&[p], false, &None).unwrap().structures[0];
                assert!(rel(got, y) < 1e-12, "{target:?}: permuted {got:?} vs {y:?}");
                // translation invariant (the charge term uses r − r̄)
                let shifted = System::new(s.types.clone(), s.positions.iter().map(|p| [p[0] + 3.7, p[1] - 12.1, p[2] + 0.4]).collect(), [[0.0; 3]; 3], [false; 3]).unwrap();
                let got = &model.predict(&[shifted], false, &None).unwrap().structures[0];
                assert!(rel(got, y) < 1e-12, "{target:?} charges {charges}: translated {got:?} vs {y:?}");
            }
        }
    }

    /// Dipoles that are exactly Σ q_Z (r_i − r̄) give back the charges (in the
    /// gauge Σ_Z N_Z q_Z = 0) and no λ-SOAP part, for both kinds; the
    /// per-atom contributions are q_Z (r_i − r̄).
    #[test]
    fn charges_are_recovered() {
        let systems: Vec<System> = (0..12).map(structure).collect();
        let species = [1, 6, 8];
        let raw = [0.31, -0.2, -0.55];
        let mut count = [0.0; 3];
        for s in &systems {
            for t in &s.types {
                count[species.iter().position(|z| z == t).unwrap()] += 1.0;
            }
        }
        let shift = (0..3).map(|z| count[z] * raw[z]).sum::<f64>() / count.iter().sum::<f64>();
        let want: Vec<f64> = raw.iter().map(|q| q - shift).collect();
        let dipole = |s: &System| -> Vec<f64> {
            let mut d = vec![0.0; 3];
            for (t, r) in s.types.iter().zip(centred(s)) {
                let q = raw[species.iter().position(|z| z == t).unwrap()];
                (0..3).for_each(|a| d[a] += q * r[a]);
            }
            d
        };
        let values: Vec<Vec<f64>> = systems.iter().map(dipole).collect();
        for kind in [gpr(), TensorKindOptions::Linear { regularizer: 1e-6 }] {
            let options = TensorFitOptions { hypers: HYPERS.into(), target: TensorTarget::Dipole, kind, sigma: 1e-3, key: None, charges: true, cancel: None };
            let model = TensorModel::fit(&systems, &values, &options).unwrap();
            let q = model.charges().unwrap();
            assert!(rel(q, &want) < 1e-8, "charges {q:?} vs {want:?}");
            let s = structure(77);
            let p = model.predict(&[s.clone()], true, &None).unwrap();
            assert!(rel(&p.structures[0], &dipole(&s)) < 1e-6, "{:?} vs {:?}", p.structures[0], dipole(&s));
            for (i, (t, r)) in s.types.iter().zip(centred(&s)).enumerate() {
                let qz = want[species.iter().position(|z| z == t).unwrap()];
                let expect: Vec<f64> = r.iter().map(|x| qz * x).collect();
                let got = &p.atoms[0][3 * i..3 * i + 3];
                assert!(got.iter().zip(&expect).all(|(a, b)| (a - b).abs() < 1e-6), "atom {i}: {got:?} vs {expect:?}");
            }
        }
    }

    /// The charge term is refused for periodic frames (fit and predict) and for polarizabilities.
    #[test]
    fn charges_rejects() {
        let mut systems: Vec<System> = (0..6).map(structure).collect();
        let values: Vec<Vec<f64>> = systems.iter().map(|s| targets(s, TensorTarget::Dipole)).collect();
        let options = TensorFitOptions { hypers: HYPERS.into(), target: TensorTarget::Dipole, kind: gpr(), sigma: 1e-3, key: None, charges: true, cancel: None };
        let model = TensorModel::fit(&systems, &values, &options).unwrap();
        let s = &systems[3];
        let periodic = System::new(s.types.clone(), s.positions.clone(), [[20.0, 0.0, 0.0], [0.0, 20.0, 0.0], [0.0, 0.0, 20.0]], [true; 3]).unwrap();
        let e = model.predict(&[systems[0].clone(), periodic.clone()], false, &None).unwrap_err().to_string();
        assert!(e.contains("systems[1] is periodic") && e.contains("charges: false"), "{e}");
        systems[3] = periodic;
        let e = TensorModel::fit(&systems, &values, &options).unwrap_err().to_string();
        assert!(e.contains("systems[3] is periodic") && e.contains("--no-charges") && !e.contains('\n'), "{e}");
        let mut o = options.clone();
        o.charges = false;
        assert!(TensorModel::fit(&systems, &values, &o).is_ok());
        o.target = TensorTarget::Polarizability;
        o.charges = true;
        let t = vec![vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]; 6];
        assert!(TensorModel::fit(&systems[..3], &t[..3], &o).unwrap_err().to_string().contains("charges = true"));
    }

    /// The training data are reproduced (a fit that works), and the file
    /// round trip is bit for bit.
    #[test]
    fn fits_and_round_trips() {
        for (target, kind, charges) in variants() {
            {
                let kind = match kind {
                    TensorKindOptions::Linear { .. } => TensorKindOptions::Linear { regularizer: 1e-8 },
                    k => k,
                };
                let (model, systems) = fit_charges(target, kind, charges);
                let p = model.predict(&systems, false, &None).unwrap();
                let err: f64 = systems.iter().zip(&p.structures).map(|(s, y)| rel(y, &targets(s, target))).fold(0.0, f64::max);
                assert!(err < 0.05, "{target:?}: training error {err}");
                let bytes = super::super::tensor_model_file::to_bytes(&model).unwrap();
                // only a model with charges needs format version 3: the others stay readable by older acdc
                assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), if charges { 3 } else { 1 });
                let back = super::super::tensor_model_file::from_bytes(&bytes, "mem").unwrap();
                assert_eq!(back.charges(), model.charges());
                let q = back.predict(&systems, false, &None).unwrap();
                assert_eq!(p.structures, q.structures);
                assert_eq!(super::super::tensor_model_file::to_bytes(&back).unwrap(), bytes);
                // corruption and truncation are named
                let mut bad = bytes.clone();
                bad[bytes.len() / 2] ^= 1;
                assert!(super::super::tensor_model_file::from_bytes(&bad, "mem").unwrap_err().to_string().contains("checksum"));
                assert!(super::super::tensor_model_file::from_bytes(&bytes[..bytes.len() - 9], "mem").is_err());
                if charges {
                    // a version-1 file cannot carry charges (an older reader would drop them)
                    let mut old = bytes[..bytes.len() - 4].to_vec();
                    old[8..12].copy_from_slice(&1u32.to_le_bytes());
                    let crc = crc32fast::hash(&old);
                    old.extend_from_slice(&crc.to_le_bytes());
                    let e = super::super::tensor_model_file::from_bytes(&old, "mem").unwrap_err().to_string();
                    assert!(e.contains("format version 1 cannot hold charges"), "{e}");
                }
            }
        }
    }

    #[test]
    fn rejects() {
        let systems: Vec<System> = (0..3).map(structure).collect();
        let options = TensorFitOptions { hypers: HYPERS.into(), target: TensorTarget::Dipole, kind: gpr(), sigma: 1e-3, key: None, charges: false, cancel: None };
        let e = TensorModel::fit(&systems, &[vec![0.0; 3], vec![0.0; 2], vec![0.0; 3]], &options).unwrap_err();
        assert!(e.to_string().contains("systems[1]: dipole has 2 values"), "{e}");
        let e = TensorModel::fit(&systems, &[vec![0.0; 3], vec![f64::NAN; 3], vec![0.0; 3]], &options).unwrap_err();
        assert!(e.to_string().contains("dipole[0] = NaN"), "{e}");
        let mut o = options.clone();
        o.target = TensorTarget::Polarizability;
        let mut t = vec![vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]; 3];
        t[2][1] = 0.5;
        let e = TensorModel::fit(&systems, &t, &o).unwrap_err();
        assert!(e.to_string().contains("systems[2]: polarizability is not symmetric"), "{e}");
        let mut o = options.clone();
        o.sigma = 0.0;
        assert!(TensorModel::fit(&systems, &vec![vec![0.0; 3]; 3], &o).unwrap_err().to_string().contains("sigma = 0"));
        let mut o = options;
        o.kind = TensorKindOptions::SparseGpr { count: 100, counts: vec![], method: TensorSparseMethod::Fps, seed: 0, zeta: 2, jitter: 1e-8 };
        assert!(TensorModel::fit(&systems, &vec![vec![0.0; 3]; 3], &o).unwrap_err().to_string().contains("sparse.count = 100"));
    }
}
