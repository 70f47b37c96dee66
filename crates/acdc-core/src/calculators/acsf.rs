//! Atom-centred symmetry functions (Behler, J. Chem. Phys. 134, 074106 (2011),
//! doi:10.1063/1.3553717), with the conventions of DScribe 2.1.2 so that the
//! numbers agree with it.
//!
//! With the cosine cutoff f_c(r) = ½(cos(π r / r_c) + 1) for r ≤ r_c (inclusive)
//! and the neighbours j ≠ i of centre i within r_c (periodic images included,
//! an atom's own images too), the functions are
//!
//! ```text
//! G1          = Σ_j f_c(r_ij)
//! G2[η, R_s]  = Σ_j exp(−η (r_ij − R_s)²) f_c(r_ij)
//! G3[κ]       = Σ_j cos(κ r_ij) f_c(r_ij)
//! G4[η, ζ, λ] = Σ_{j<k} 2^{1−ζ} (1 + λ cos θ_ijk)^ζ exp(−η (r_ij² + r_ik² + r_jk²)) f_c(r_ij) f_c(r_ik) f_c(r_jk)
//! G5[η, ζ, λ] = Σ_{j<k} 2^{1−ζ} (1 + λ cos θ_ijk)^ζ exp(−η (r_ij² + r_ik²)) f_c(r_ij) f_c(r_ik)
//! ```
//!
//! The angular sums run over **unordered** pairs of neighbours (each pair once,
//! half of Behler's ordered double sum), and G4 keeps a pair only if
//! r_jk ≤ r_c. Every function is split by neighbour species: G1–G3 by the
//! species of j, G4/G5 by the unordered species pair of (j, k). η is in Å⁻²,
//! R_s in Å, κ in Å⁻¹, ζ and λ are dimensionless.
//!
//! An extension that DScribe lacks: ANI-style angular functions (Smith, Isayev
//! & Roitberg, Chem. Sci. 8, 3192 (2017), doi:10.1039/C6SC05720A), in
//! TorchANI's form, over the same unordered neighbour pairs:
//!
//! ```text
//! A[η, ζ, R_s, θ_s] = Σ_{j<k} 2^{1−ζ} (1 + cos(θ'_ijk − θ_s))^ζ exp(−η ((r_ij + r_ik)/2 − R_s)²) f_c(r_ij) f_c(r_ik),
//! θ'_ijk = arccos(0.95 cos θ_ijk)
//! ```
//!
//! (function 6 in the properties, after G5 in each species-pair group).
//!
//! Where DScribe gives NaN (a non-integer ζ and 1 + λ cos θ pushed below 0
//! by round-off for collinear neighbours), the limit 0 is used instead.
//!
//! The neighbour list keeps pairs with r < r_c; a pair at exactly r_c adds
//! f_c(r_c) = 0, so this is the same as DScribe's inclusive test.
//!
//! Gradients are analytic: with respect to positions (rows for the centre and
//! each of its neighbour atoms) and to strain (positions and cell deformed by
//! 1 + ε), in the same layout as the SOAP calculators.
use rayon::prelude::*;
use serde::Deserialize;

use super::shared::{key_selected, Environments};
use super::soap::hypers::parse_json;
use super::{Calculator, ComputeOptions};
use crate::error::{Error, Result};
use crate::system::System;
use crate::tensor::{Labels, TensorBlock, TensorMap};

const KEY_NAMES: [&str; 1] = ["center_type"];
const PROPERTY_NAMES: [&str; 4] = ["function", "neighbor_1_type", "neighbor_2_type", "index"];

/// Hyper-parameters of [`SymmetryFunctions`], named as DScribe names them.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SymmetryFunctionsHypers {
    /// Cutoff radius r_c in Å.
    pub cutoff: f64,
    /// G2 parameters, one row `[η (Å⁻²), R_s (Å)]` per function.
    #[serde(default)]
    pub g2: Vec<[f64; 2]>,
    /// G3 parameters, one `κ` (Å⁻¹) per function.
    #[serde(default)]
    pub g3: Vec<f64>,
    /// G4 parameters, one row `[η (Å⁻²), ζ, λ]` per function.
    #[serde(default)]
    pub g4: Vec<[f64; 3]>,
    /// G5 parameters, one row `[η (Å⁻²), ζ, λ]` per function.
    #[serde(default)]
    pub g5: Vec<[f64; 3]>,
    /// ANI-style angular functions (an extension, not in DScribe), one row
    /// `[η (Å⁻²), ζ, R_s (Å), θ_s (rad)]` per function; see the module doc.
    #[serde(default)]
    pub ani: Vec<[f64; 4]>,
    /// The species the features are split over (sorted, duplicates removed).
    /// Defaults to the species of the systems computed together; give it to
    /// get the same columns for every batch.
    #[serde(default)]
    pub types: Option<Vec<i32>>,
}

impl SymmetryFunctionsHypers {
    /// Parses and validates the JSON hyper-parameters.
    pub fn from_json(json: &str) -> Result<SymmetryFunctionsHypers> {
        let mut h: SymmetryFunctionsHypers = parse_json("symmetry_functions", json)?;
        if !(h.cutoff.is_finite() && h.cutoff > 0.0) {
            return Err(Error::InvalidParameter(format!("cutoff must be a positive finite number (Å), got {}", h.cutoff)));
        }
        let finite = |field: String, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(Error::InvalidParameter(format!("{field} is {v}; parameters must be finite")))
            }
        };
        for (r, row) in h.g2.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                finite(format!("g2[{r}][{c}]"), v)?;
            }
        }
        for (r, &v) in h.g3.iter().enumerate() {
            finite(format!("g3[{r}]"), v)?;
        }
        for (name, rows) in [("g4", &h.g4), ("g5", &h.g5)] {
            for (r, row) in rows.iter().enumerate() {
                for (c, &v) in row.iter().enumerate() {
                    finite(format!("{name}[{r}][{c}]"), v)?;
                }
            }
        }
        for (r, row) in h.ani.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                finite(format!("ani[{r}][{c}]"), v)?;
            }
        }
        if let Some(types) = &mut h.types {
            if types.is_empty() {
                return Err(Error::InvalidParameter("types is empty (give at least one species, or leave it out)".into()));
            }
            types.sort_unstable();
            types.dedup();
        }
        Ok(h)
    }
}

/// DScribe-compatible atom-centred symmetry functions G1–G5.
pub struct SymmetryFunctions {
    parameters: String,
    hypers: SymmetryFunctionsHypers,
}

/// Features and gradients of one centre.
struct CentreFeatures {
    system: usize,
    atom: usize,
    values: Vec<f64>,
    /// Atoms with a position-gradient row, sorted (the centre included).
    atoms: Vec<usize>,
    /// `[atoms.len()][3][n_features]`
    positions: Vec<f64>,
    /// `[3][3][n_features]`, [a][b] = ∂/∂ε_ab
    strain: Vec<f64>,
}

/// Cosine cutoff and its derivative.
#[inline]
fn cutoff_function(r: f64, rc: f64) -> (f64, f64) {
    let x = std::f64::consts::PI * r / rc;
    (0.5 * (x.cos() + 1.0), -0.5 * std::f64::consts::PI / rc * x.sin())
}

/// TorchANI's factor on cos θ before the arc cosine (Smith et al. 2017 use
/// it so that the angular functions have finite gradients when θ = 0 or π).
const ANI_COS_SCALE: f64 = 0.95;

/// 1 + λ cos θ. With |λ| ≤ 1 it is never negative, but round-off makes it
/// slightly so for collinear neighbours (cos θ = ±1, e.g. two images of one
/// atom); a non-integer power of it would then be NaN (DScribe's result).
/// There the limit, 0, is returned instead.
#[inline]
fn angular_base(lambda: f64, cos: f64, zeta: f64) -> f64 {
    let base = 1.0 + lambda * cos;
    if base < 0.0 && zeta.fract() != 0.0 {
        0.0
    } else {
        base
    }
}

/// ζ as an integer exponent when it is one (the usual case: 1, 2, 4, 8, …),
/// so that base^(ζ−1) is a few multiplications instead of `powf`.
fn integer_exponent(zeta: f64) -> Option<i32> {
    (zeta.fract() == 0.0 && zeta.abs() < 1024.0).then_some(zeta as i32)
}

/// base^(ζ−1), with 0 where the power is undefined for base ≤ 0 (ζ < 1).
#[inline]
fn power_minus_one(base: f64, zeta: f64, integer: Option<i32>) -> f64 {
    if !(base > 0.0 || zeta >= 1.0) {
        return 0.0;
    }
    match integer {
        Some(z) => base.powi(z - 1),
        None => base.powf(zeta - 1.0),
    }
}

impl SymmetryFunctions {
    /// Parses and validates the hyper-parameters.
    pub fn new(hypers: &str) -> Result<SymmetryFunctions> {
        Ok(SymmetryFunctions { parameters: hypers.to_string(), hypers: SymmetryFunctionsHypers::from_json(hypers)? })
    }

    fn n_radial(&self) -> usize {
        1 + self.hypers.g2.len() + self.hypers.g3.len()
    }

    fn n_angular(&self) -> usize {
        self.hypers.g4.len() + self.hypers.g5.len() + self.hypers.ani.len()
    }

    /// Number of features for `n_types` species (DScribe's count).
    pub fn n_features(&self, n_types: usize) -> usize {
        n_types * self.n_radial() + n_types * (n_types + 1) / 2 * self.n_angular()
    }

    /// Property labels in DScribe's column order: for each neighbour species
    /// (ascending) G1, G2…, G3…; then for each unordered species pair
    /// (t_k ≤ t_j, ordered by t_j then t_k) G4…, G5….
    pub fn properties(&self, species: &[i32]) -> Labels {
        let h = &self.hypers;
        let mut v = Vec::new();
        for &t in species {
            v.extend_from_slice(&[1, t, -1, 0]);
            for i in 0..h.g2.len() {
                v.extend_from_slice(&[2, t, -1, i as i32]);
            }
            for i in 0..h.g3.len() {
                v.extend_from_slice(&[3, t, -1, i as i32]);
            }
        }
        for tj in 0..species.len() {
            for tk in 0..=tj {
                for i in 0..h.g4.len() {
                    v.extend_from_slice(&[4, species[tk], species[tj], i as i32]);
                }
                for i in 0..h.g5.len() {
                    v.extend_from_slice(&[5, species[tk], species[tj], i as i32]);
                }
                for i in 0..h.ani.len() {
                    v.extend_from_slice(&[6, species[tk], species[tj], i as i32]);
                }
            }
        }
        Labels::new(&PROPERTY_NAMES, v)
    }

    /// The species the features are split over, checking that every atom's
    /// species is one of them.
    fn species(&self, env: &Environments) -> Result<Vec<i32>> {
        let Some(types) = &self.hypers.types else { return Ok(env.species.clone()) };
        for (k, s) in env.systems.iter().enumerate() {
            if let Some((i, t)) = s.types.iter().enumerate().find(|(_, t)| types.binary_search(t).is_err()) {
                return Err(Error::InvalidParameter(format!(
                    "systems[{k}]: atom {i} has type {t}, which is not in types {types:?}"
                )));
            }
        }
        Ok(types.clone())
    }

    #[allow(clippy::too_many_arguments)]
    fn centre(&self, env: &Environments, k: usize, i: usize, type_index: &[usize], n_types: usize, positions: bool, strain: bool) -> CentreFeatures {
        let h = &self.hypers;
        let rc = h.cutoff;
        let nf = self.n_features(n_types);
        let (n2, n4, n5) = (h.g2.len(), h.g4.len(), h.g5.len());
        let n_rad = self.n_radial();
        let n_ang = self.n_angular();
        let ang_start = n_types * n_rad;
        let pairs = &env.pairs[k];
        let range = env.starts[k][i]..env.starts[k][i + 1];
        let want_gradient = positions || strain;

        let mut atoms: Vec<usize> = Vec::new();
        let mut row_of_pair: Vec<usize> = Vec::new();
        if positions {
            atoms = pairs.j[range.clone()].iter().map(|&j| j as usize).collect();
            atoms.push(i);
            atoms.sort_unstable();
            atoms.dedup();
            row_of_pair = pairs.j[range.clone()].iter().map(|&j| atoms.binary_search(&(j as usize)).unwrap_or(0)).collect();
        }
        let centre_row = atoms.binary_search(&i).unwrap_or(0);
        let mut out = CentreFeatures {
            system: k,
            atom: i,
            values: vec![0.0; nf],
            positions: vec![0.0; if positions { atoms.len() * 3 * nf } else { 0 }],
            atoms,
            strain: vec![0.0; if strain { 9 * nf } else { 0 }],
        };
        // one feature's derivative with respect to the pair vectors r_ij (and r_ik)
        let add_gradient = |out: &mut CentreFeatures, f: usize, terms: &[(usize, [f64; 3], [f64; 3])]| {
            for &(p, vec, g) in terms {
                if positions {
                    let rj = row_of_pair[p - range.start];
                    for x in 0..3 {
                        out.positions[(rj * 3 + x) * nf + f] += g[x];
                        out.positions[(centre_row * 3 + x) * nf + f] -= g[x];
                    }
                }
                if strain {
                    for a in 0..3 {
                        for b in 0..3 {
                            out.strain[(a * 3 + b) * nf + f] += vec[a] * g[b];
                        }
                    }
                }
            }
        };

        for p in range.clone() {
            let r = pairs.distances[p];
            let v = pairs.vectors[p];
            let u = [v[0] / r, v[1] / r, v[2] / r];
            let (fc, dfc) = cutoff_function(r, rc);
            let off = type_index[pairs.j[p] as usize] * n_rad;
            let emit = |out: &mut CentreFeatures, f: usize, value: f64, d: f64| {
                out.values[f] += value;
                if want_gradient {
                    add_gradient(out, f, &[(p, v, [d * u[0], d * u[1], d * u[2]])]);
                }
            };
            emit(&mut out, off, fc, dfc);
            for (q, &[eta, rs]) in h.g2.iter().enumerate() {
                let e = (-eta * (r - rs) * (r - rs)).exp();
                emit(&mut out, off + 1 + q, e * fc, e * (dfc - 2.0 * eta * (r - rs) * fc));
            }
            for (q, &kappa) in h.g3.iter().enumerate() {
                let (s, c) = (kappa * r).sin_cos();
                emit(&mut out, off + 1 + n2 + q, c * fc, c * dfc - kappa * s * fc);
            }
        }

        if n_ang > 0 {
            // per centre, not per triplet: the cutoff function of every
            // neighbour, and 2^(1−ζ) and integer ζ of every function row
            let cut: Vec<(f64, f64)> = range.clone().map(|p| cutoff_function(pairs.distances[p], rc)).collect();
            let powers = |rows: &[[f64; 3]]| -> Vec<(f64, Option<i32>)> {
                rows.iter().map(|&[_, zeta, _]| ((1.0 - zeta).exp2(), integer_exponent(zeta))).collect()
            };
            let (p4, p5) = (powers(&h.g4), powers(&h.g5));
            for p in range.clone() {
                let a = pairs.distances[p];
                let vj = pairs.vectors[p];
                let tj = type_index[pairs.j[p] as usize];
                let (fa, dfa) = cut[p - range.start];
                for q in range.start..p {
                    let b = pairs.distances[q];
                    let vk = pairs.vectors[q];
                    let tk = type_index[pairs.j[q] as usize];
                    let vjk = [vk[0] - vj[0], vk[1] - vj[1], vk[2] - vj[2]];
                    let d2 = vjk[0] * vjk[0] + vjk[1] * vjk[1] + vjk[2] * vjk[2];
                    let d = d2.sqrt();
                    let (fb, dfb) = cut[q - range.start];
                    let cos = (a * a + b * b - d2) / (2.0 * a * b);
                    let dcos = [1.0 / b - cos / a, 1.0 / a - cos / b, -d / (a * b)];
                    let (hi, lo) = if tj >= tk { (tj, tk) } else { (tk, tj) };
                    let off = ang_start + (hi * (hi + 1) / 2 + lo) * n_ang;
                    let uj = [vj[0] / a, vj[1] / a, vj[2] / a];
                    let uk = [vk[0] / b, vk[1] / b, vk[2] / b];
                    // ∂T/∂(a, b, d) → gradients with respect to the vectors r_ij and r_ik
                    let emit = |out: &mut CentreFeatures, f: usize, value: f64, da: f64, db: f64, dd: f64| {
                        out.values[f] += value;
                        if want_gradient {
                            let mut gj = [0.0; 3];
                            let mut gk = [0.0; 3];
                            for x in 0..3 {
                                let ujk = if d > 0.0 { vjk[x] / d } else { 0.0 };
                                gj[x] = da * uj[x] - dd * ujk;
                                gk[x] = db * uk[x] + dd * ujk;
                            }
                            add_gradient(out, f, &[(p, vj, gj), (q, vk, gk)]);
                        }
                    };
                    if n4 > 0 && d <= rc {
                        // values only: the cosine alone (no sine for the derivative)
                        let (fd, dfd) = if want_gradient { cutoff_function(d, rc) } else { (0.5 * ((std::f64::consts::PI * d / rc).cos() + 1.0), 0.0) };
                        let fff = fa * fb * fd;
                        let squares = a * a + b * b + d2;
                        let (mut last_eta, mut e) = (f64::NAN, 0.0);
                        for (m, &[eta, zeta, lambda]) in h.g4.iter().enumerate() {
                            // rows often share η: one exp for all of them
                            if eta != last_eta {
                                (last_eta, e) = (eta, (-eta * squares).exp());
                            }
                            let base = angular_base(lambda, cos, zeta);
                            let (k2, integer) = p4[m];
                            let pow1 = power_minus_one(base, zeta, integer);
                            let ang = k2 * pow1 * base;
                            let value = ang * e * fff;
                            if !want_gradient {
                                out.values[off + m] += value;
                                continue;
                            }
                            let dang = k2 * zeta * lambda * pow1;
                            let da = e * (dang * dcos[0] * fff + ang * (-2.0 * eta * a * fff + dfa * fb * fd));
                            let db = e * (dang * dcos[1] * fff + ang * (-2.0 * eta * b * fff + fa * dfb * fd));
                            let dd = e * (dang * dcos[2] * fff + ang * (-2.0 * eta * d * fff + fa * fb * dfd));
                            emit(&mut out, off + m, value, da, db, dd);
                        }
                    }
                    let ff = fa * fb;
                    let squares = a * a + b * b;
                    let (mut last_eta, mut e) = (f64::NAN, 0.0);
                    for (m, &[eta, zeta, lambda]) in h.g5.iter().enumerate() {
                        if eta != last_eta {
                            (last_eta, e) = (eta, (-eta * squares).exp());
                        }
                        let base = angular_base(lambda, cos, zeta);
                        let (k2, integer) = p5[m];
                        let pow1 = power_minus_one(base, zeta, integer);
                        let ang = k2 * pow1 * base;
                        let value = ang * e * ff;
                        if !want_gradient {
                            out.values[off + n4 + m] += value;
                            continue;
                        }
                        let dang = k2 * zeta * lambda * pow1;
                        let da = e * (dang * dcos[0] * ff + ang * (-2.0 * eta * a * ff + dfa * fb));
                        let db = e * (dang * dcos[1] * ff + ang * (-2.0 * eta * b * ff + fa * dfb));
                        let dd = e * dang * dcos[2] * ff;
                        emit(&mut out, off + n4 + m, value, da, db, dd);
                    }
                    if !h.ani.is_empty() {
                        // θ' = acos(0.95 cos θ), whose derivative stays finite
                        // for collinear neighbours
                        let u = ANI_COS_SCALE * cos;
                        let theta = u.acos();
                        let dtheta_dcos = -ANI_COS_SCALE / (1.0 - u * u).sqrt();
                        let ff = fa * fb;
                        for (m, &[eta, zeta, rs, theta_s]) in h.ani.iter().enumerate() {
                            let (sin_shift, cos_shift) = (theta - theta_s).sin_cos();
                            let base = 1.0 + cos_shift;
                            let pow1 = if base > 0.0 || zeta >= 1.0 { base.powf(zeta - 1.0) } else { 0.0 };
                            let k2 = 2f64.powf(1.0 - zeta);
                            let mid = 0.5 * (a + b) - rs;
                            let e = (-eta * mid * mid).exp();
                            let ang = k2 * pow1 * base;
                            let dang = k2 * zeta * pow1 * (-sin_shift) * dtheta_dcos;
                            let value = ang * e * ff;
                            let da = e * (dang * dcos[0] * ff + ang * (-eta * mid * ff + dfa * fb));
                            let db = e * (dang * dcos[1] * ff + ang * (-eta * mid * ff + fa * dfb));
                            let dd = e * dang * dcos[2] * ff;
                            emit(&mut out, off + n4 + n5 + m, value, da, db, dd);
                        }
                    }
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Values only: the angular sums G4/G5 as array passes over the neighbour pairs
//
// Per centre, the neighbours are reordered by species and stored as arrays
// (positions, unit vectors, f_c(r)·exp(−η r²) for each distinct η), so that
// each species pair (t_j, t_k) is one run of (j, k) pairs. The runs are cut
// into chunks of at most `CHUNK` pairs; per chunk, one pass writes r_jk²,
// cos θ and f_c(r_jk) of every pair, one pass per distinct η the products
// f_c(r_ij) f_c(r_ik) exp(−η (r_ij² + r_ik²)), one pass per G4 η the factor
// of r_jk, and one pass per function row the sum of w · (1 + λ cos θ)^ζ.
// Every pass is a branch-free loop over the pairs that the compiler
// vectorises (the AVX2/FMA copy is chosen at run time): f_c(r_jk) and
// exp(−η r_jk²) are polynomials there, not libm calls. The factor 2^{1−ζ}
// is applied once per sum.

/// Pairs of neighbours processed together: the scratch arrays of a chunk stay
/// in the L1/L2 caches whatever the number of neighbours.
const CHUNK: usize = 1024;

/// Lanes of the explicit partial sums (the compiler may not reorder
/// floating-point sums itself).
const LANES: usize = 4;

/// Per-thread buffers of the values kernel, reused from centre to centre.
#[derive(Default)]
struct ValuesScratch {
    /// Pair indices of the centre's neighbours, ordered by species index.
    order: Vec<usize>,
    /// Distances r, f_c(r) and one radial term per neighbour, in `order`.
    r: Vec<f64>,
    fc: Vec<f64>,
    term: Vec<f64>,
    /// Neighbour vectors and unit vectors, in `order`.
    x: Vec<f64>,
    y: Vec<f64>,
    z: Vec<f64>,
    ux: Vec<f64>,
    uy: Vec<f64>,
    uz: Vec<f64>,
    /// `[n_eta][n]`: f_c(r) exp(−η r²) of each neighbour.
    radial: Vec<f64>,
    /// Per pair of the chunk: r_jk², cos θ_ijk, f_c(r_jk) (0 beyond r_c).
    d2: Vec<f64>,
    cos: Vec<f64>,
    fd: Vec<f64>,
    /// `[n_eta][CHUNK]`: f_c(r_ij) f_c(r_ik) exp(−η (r_ij² + r_ik²)).
    pair: Vec<f64>,
    /// `[CHUNK]`: the G4 weight of one η (the factor of r_jk included).
    weight: Vec<f64>,
}

/// The G4/G5 function rows grouped for the kernel.
struct AngularPlan {
    /// Distinct η over G4 and G5 (Å⁻²).
    etas: Vec<f64>,
    /// Per distinct η: whether a G4 row uses it.
    eta_in_g4: Vec<bool>,
    /// Per G4 row: (η index, λ, ζ, integer ζ, 2^{1−ζ}).
    g4: Vec<(usize, f64, f64, Option<i32>, f64)>,
    /// Per G5 row: the same.
    g5: Vec<(usize, f64, f64, Option<i32>, f64)>,
    /// No G5 rows: only pairs with r_jk ≤ r_c add anything, and the kernel
    /// keeps only those ([`compact_pairs`]).
    compact: bool,
}

impl AngularPlan {
    fn new(h: &SymmetryFunctionsHypers) -> AngularPlan {
        let mut etas: Vec<f64> = Vec::new();
        let mut eta_in_g4 = Vec::new();
        let mut rows = |list: &[[f64; 3]], is_g4: bool| -> Vec<(usize, f64, f64, Option<i32>, f64)> {
            list.iter()
                .map(|&[eta, zeta, lambda]| {
                    let g = match etas.iter().position(|&e| e == eta) {
                        Some(g) => g,
                        None => {
                            etas.push(eta);
                            eta_in_g4.push(false);
                            etas.len() - 1
                        }
                    };
                    eta_in_g4[g] |= is_g4;
                    (g, lambda, zeta, integer_exponent(zeta), (1.0 - zeta).exp2())
                })
                .collect()
        };
        let g4 = rows(&h.g4, true);
        let g5 = rows(&h.g5, false);
        let compact = g5.is_empty();
        AngularPlan { etas, eta_in_g4, g4, g5, compact }
    }
}

/// a·b + c, fused where the CPU has FMA (the AVX2 copy of the kernel).
#[inline(always)]
fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// exp(x) for x ≤ 0, branch-free so that loops over it vectorise: x = n ln 2
/// + r with |r| ≤ ln 2 / 2, e^r by its Taylor polynomial of degree 12
/// (truncation ≤ 2e-16 relative), 2^n written into the exponent bits.
/// Below −708 (e^x < 3.3e-308) it returns e^{−708} instead of a subnormal.
#[inline(always)]
fn exp_nonpositive<const FMA: bool>(x: f64) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    // ln 2 split so that n · LN2_HI is exact for |n| < 2^11
    const LN2_HI: f64 = 6.931_471_803_691_238_2e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    // 1.5 · 2^52: adding it rounds to an integer kept in the low mantissa bits
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    const C: [f64; 13] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5_040.0,
        1.0 / 40_320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
    ];
    let x = x.max(-708.0);
    let kf = madd::<FMA>(x, LOG2E, SHIFT);
    let n = kf - SHIFT;
    let r = madd::<FMA>(-n, LN2_LO, madd::<FMA>(-n, LN2_HI, x));
    // Horner by hand: no iterator to inline into the AVX2 copy
    let mut p = C[12];
    p = madd::<FMA>(p, r, C[11]);
    p = madd::<FMA>(p, r, C[10]);
    p = madd::<FMA>(p, r, C[9]);
    p = madd::<FMA>(p, r, C[8]);
    p = madd::<FMA>(p, r, C[7]);
    p = madd::<FMA>(p, r, C[6]);
    p = madd::<FMA>(p, r, C[5]);
    p = madd::<FMA>(p, r, C[4]);
    p = madd::<FMA>(p, r, C[3]);
    p = madd::<FMA>(p, r, C[2]);
    p = madd::<FMA>(p, r, C[1]);
    p = madd::<FMA>(p, r, C[0]);
    // the low bits of kf hold n (−1022 ≤ n ≤ 0): biased exponent n + 1023
    let scale = f64::from_bits(kf.to_bits().wrapping_add(1023) << 52);
    p * scale
}

/// The cosine cutoff f_c(r) = ½(cos(π r / r_c) + 1) = cos²(π r / (2 r_c))
/// from w = (π r / (2 r_c))² ∈ [0, (π/2)²]: the cosine's Taylor polynomial
/// in w to degree 10 (truncation < 2e-17), no square root and no libm call.
#[inline(always)]
fn cutoff_from_scaled_square<const FMA: bool>(w: f64) -> f64 {
    const C: [f64; 11] = [
        1.0,
        -1.0 / 2.0,
        1.0 / 24.0,
        -1.0 / 720.0,
        1.0 / 40_320.0,
        -1.0 / 3_628_800.0,
        1.0 / 479_001_600.0,
        -1.0 / 87_178_291_200.0,
        1.0 / 20_922_789_888_000.0,
        -1.0 / 6_402_373_705_728_000.0,
        1.0 / 2_432_902_008_176_640_000.0,
    ];
    let mut c = C[10];
    c = madd::<FMA>(c, w, C[9]);
    c = madd::<FMA>(c, w, C[8]);
    c = madd::<FMA>(c, w, C[7]);
    c = madd::<FMA>(c, w, C[6]);
    c = madd::<FMA>(c, w, C[5]);
    c = madd::<FMA>(c, w, C[4]);
    c = madd::<FMA>(c, w, C[3]);
    c = madd::<FMA>(c, w, C[2]);
    c = madd::<FMA>(c, w, C[1]);
    c = madd::<FMA>(c, w, C[0]);
    c * c
}

/// base^Z for a compile-time Z, by repeated squaring.
#[inline(always)]
fn integer_power<const Z: u32>(base: f64) -> f64 {
    let (mut result, mut b, mut z) = (1.0, base, Z);
    let mut first = true;
    while z > 0 {
        if z & 1 == 1 {
            result = if first { b } else { result * b };
            first = false;
        }
        z >>= 1;
        if z > 0 {
            b *= b;
        }
    }
    result
}

/// Σ_p w_p (1 + λ cos_p)^Z; the slices have a length that is a multiple of `LANES`.
#[inline(always)]
fn power_sum<const Z: u32, const FMA: bool>(w: &[f64], cos: &[f64], lambda: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if FMA {
        // SAFETY: the FMA copy runs only where the CPU has AVX2 and FMA
        // (`centre_values`); the compiler does not vectorise this sum itself
        // (no reassociation of floating-point additions)
        return unsafe { power_sum_avx2::<Z>(w, cos, lambda) };
    }
    let (w, cos) = (w.as_chunks::<LANES>().0, cos.as_chunks::<LANES>().0);
    let n = w.len().min(cos.len());
    let mut acc = [0.0; LANES];
    for c in 0..n {
        let (wc, cc) = (&w[c], &cos[c]);
        for l in 0..LANES {
            let base = madd::<FMA>(lambda, cc[l], 1.0);
            acc[l] = madd::<FMA>(wc[l], integer_power::<Z>(base), acc[l]);
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// `power_sum` with four lanes in one AVX register.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn power_sum_avx2<const Z: u32>(w: &[f64], cos: &[f64], lambda: f64) -> f64 {
    use std::arch::x86_64::*;
    let n = w.len().min(cos.len()) / 4;
    let (one, lam) = (_mm256_set1_pd(1.0), _mm256_set1_pd(lambda));
    let mut acc = _mm256_setzero_pd();
    for c in 0..n {
        // SAFETY: 4c + 3 < n·4 ≤ both lengths
        let (wv, cv) = unsafe { (_mm256_loadu_pd(w.as_ptr().add(4 * c)), _mm256_loadu_pd(cos.as_ptr().add(4 * c))) };
        let base = _mm256_fmadd_pd(lam, cv, one);
        let (mut result, mut b, mut z, mut first) = (one, base, Z, true);
        while z > 0 {
            if z & 1 == 1 {
                result = if first { b } else { _mm256_mul_pd(result, b) };
                first = false;
            }
            z >>= 1;
            if z > 0 {
                b = _mm256_mul_pd(b, b);
            }
        }
        acc = _mm256_fmadd_pd(wv, result, acc);
    }
    let mut lanes = [0.0; 4];
    // SAFETY: four doubles into a four-double array
    unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), acc) };
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
}

/// Σ_p w_p (1 + λ cos_p)^ζ (without 2^{1−ζ}), with the conventions of
/// `angular_base` and `power_minus_one` for the general ζ.
#[inline(always)]
fn angular_sum<const FMA: bool>(w: &[f64], cos: &[f64], lambda: f64, zeta: f64, integer: Option<i32>) -> f64 {
    match integer {
        Some(1) => power_sum::<1, FMA>(w, cos, lambda),
        Some(2) => power_sum::<2, FMA>(w, cos, lambda),
        Some(3) => power_sum::<3, FMA>(w, cos, lambda),
        Some(4) => power_sum::<4, FMA>(w, cos, lambda),
        Some(5) => power_sum::<5, FMA>(w, cos, lambda),
        Some(6) => power_sum::<6, FMA>(w, cos, lambda),
        Some(7) => power_sum::<7, FMA>(w, cos, lambda),
        Some(8) => power_sum::<8, FMA>(w, cos, lambda),
        Some(16) => power_sum::<16, FMA>(w, cos, lambda),
        _ => {
            let mut sum = 0.0;
            for p in 0..w.len().min(cos.len()) {
                let base = angular_base(lambda, cos[p], zeta);
                sum += w[p] * power_minus_one(base, zeta, integer) * base;
            }
            sum
        }
    }
}

impl SymmetryFunctions {
    /// Whether the values-only kernel applies: no ANI rows (they keep the
    /// general loop) and η ≥ 0 in G2, G4 and G5 (its exponential takes x ≤ 0).
    fn values_kernel_applies(&self) -> bool {
        let h = &self.hypers;
        h.ani.is_empty() && h.g2.iter().all(|row| row[0] >= 0.0) && h.g4.iter().chain(&h.g5).all(|row| row[0] >= 0.0)
    }

    /// Features of one centre, values only (see the section comment above).
    fn centre_values(&self, env: &Environments, k: usize, i: usize, type_index: &[usize], n_types: usize, plan: &AngularPlan, s: &mut ValuesScratch) -> CentreFeatures {
        #[cfg(target_arch = "x86_64")]
        {
            if crate::math::cpu::has_avx2_fma() {
                // SAFETY: the CPU supports the features this copy is compiled for
                return unsafe { self.centre_values_avx2(env, k, i, type_index, n_types, plan, s) };
            }
        }
        self.centre_values_impl::<false>(env, k, i, type_index, n_types, plan, s)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn centre_values_avx2(&self, env: &Environments, k: usize, i: usize, type_index: &[usize], n_types: usize, plan: &AngularPlan, s: &mut ValuesScratch) -> CentreFeatures {
        self.centre_values_impl::<true>(env, k, i, type_index, n_types, plan, s)
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn centre_values_impl<const FMA: bool>(&self, env: &Environments, k: usize, i: usize, type_index: &[usize], n_types: usize, plan: &AngularPlan, s: &mut ValuesScratch) -> CentreFeatures {
        let h = &self.hypers;
        let rc = h.cutoff;
        let nf = self.n_features(n_types);
        let n2 = h.g2.len();
        let (n4, n5) = (h.g4.len(), h.g5.len());
        let n_rad = self.n_radial();
        let n_ang = self.n_angular();
        let ang_start = n_types * n_rad;
        let pairs = &env.pairs[k];
        let range = env.starts[k][i]..env.starts[k][i + 1];
        let mut values = vec![0.0; nf];
        let rc2 = rc * rc;
        // w = (π r / (2 r_c))²
        let w_scale = (std::f64::consts::FRAC_PI_2 / rc) * (std::f64::consts::FRAC_PI_2 / rc);
        let n = range.len();
        let angular = n_ang > 0 && n >= 2;

        // neighbours by species: each species is one run of neighbours and
        // each species pair one run of pairs
        s.order.clear();
        s.order.extend(range.clone());
        s.order.sort_unstable_by_key(|&p| (type_index[pairs.j[p] as usize], p));
        let mut block = vec![0usize; n_types + 1];
        let n_eta = plan.etas.len();
        // arrays padded by a whole lane: the loops over neighbours and pairs
        // run over whole lanes (the padding is finite: r = 1, vector 0)
        let stride = n + LANES;
        for v in [&mut s.x, &mut s.y, &mut s.z] {
            v.clear();
            v.resize(stride, 0.0);
        }
        s.r.clear();
        s.r.resize(stride, 1.0);
        for (a, &p) in s.order.iter().enumerate() {
            (s.x[a], s.y[a], s.z[a]) = (pairs.vectors[p][0], pairs.vectors[p][1], pairs.vectors[p][2]);
            s.r[a] = pairs.distances[p];
            block[type_index[pairs.j[p] as usize] + 1] += 1;
        }
        for t in 0..n_types {
            block[t + 1] += block[t];
        }
        // per neighbour, as array passes that vectorise: f_c(r), the unit
        // vector, and f_c(r) exp(−η r²) of each angular η
        for v in [&mut s.fc, &mut s.ux, &mut s.uy, &mut s.uz, &mut s.term] {
            v.clear();
            v.resize(stride, 0.0);
        }
        s.radial.clear();
        s.radial.resize(n_eta * stride, 0.0);
        {
            let (r, fc) = (&s.r[..stride], &mut s.fc[..stride]);
            for a in 0..stride {
                fc[a] = cutoff_from_scaled_square::<FMA>(r[a] * r[a] * w_scale);
            }
        }
        if angular {
            let (r, x, y, z) = (&s.r[..stride], &s.x[..stride], &s.y[..stride], &s.z[..stride]);
            let (ux, uy, uz) = (&mut s.ux[..stride], &mut s.uy[..stride], &mut s.uz[..stride]);
            for a in 0..stride {
                (ux[a], uy[a], uz[a]) = (x[a] / r[a], y[a] / r[a], z[a] / r[a]);
            }
            for (g, &eta) in plan.etas.iter().enumerate() {
                let (r, fc) = (&s.r[..stride], &s.fc[..stride]);
                let radial = &mut s.radial[g * stride..(g + 1) * stride];
                for a in 0..stride {
                    radial[a] = fc[a] * exp_nonpositive::<FMA>(-eta * r[a] * r[a]);
                }
            }
        }
        // G1 and G2 per species, summed in neighbour order (as the general loop)
        for t in 0..n_types {
            let off = t * n_rad;
            values[off] += s.fc[block[t]..block[t + 1]].iter().fold(0.0, |acc, &f| acc + f);
        }
        for (q, &[eta, rs]) in h.g2.iter().enumerate() {
            {
                let (r, fc, term) = (&s.r[..stride], &s.fc[..stride], &mut s.term[..stride]);
                for a in 0..stride {
                    term[a] = exp_nonpositive::<FMA>(-eta * (r[a] - rs) * (r[a] - rs)) * fc[a];
                }
            }
            for t in 0..n_types {
                values[t * n_rad + 1 + q] += s.term[block[t]..block[t + 1]].iter().fold(0.0, |acc, &e| acc + e);
            }
        }
        for (q, &kappa) in h.g3.iter().enumerate() {
            for t in 0..n_types {
                for a in block[t]..block[t + 1] {
                    values[t * n_rad + 1 + n2 + q] += (kappa * s.r[a]).cos() * s.fc[a];
                }
            }
        }
        if !angular {
            return CentreFeatures { system: k, atom: i, values, atoms: Vec::new(), positions: Vec::new(), strain: Vec::new() };
        }
        if plan.compact {
            for v in [&mut s.d2, &mut s.cos, &mut s.fd, &mut s.weight] {
                v.resize(CHUNK + LANES, 0.0);
            }
            s.pair.resize(n_eta * (CHUNK + LANES), 0.0);
            let mut sums = vec![0.0; n4];
            for hi in 0..n_types {
                for lo in 0..=hi {
                    let (jr, kr) = (block[hi]..block[hi + 1], block[lo]..block[lo + 1]);
                    if jr.is_empty() || kr.is_empty() {
                        continue;
                    }
                    sums.iter_mut().for_each(|v| *v = 0.0);
                    compact_pairs::<FMA>(s, stride, jr, kr, hi == lo, plan, rc2, w_scale, &mut sums);
                    let off = ang_start + (hi * (hi + 1) / 2 + lo) * n_ang;
                    for (m, row) in plan.g4.iter().enumerate() {
                        values[off + m] += row.4 * sums[m];
                    }
                }
            }
            return CentreFeatures { system: k, atom: i, values, atoms: Vec::new(), positions: Vec::new(), strain: Vec::new() };
        }
        for v in [&mut s.d2, &mut s.cos, &mut s.fd, &mut s.weight] {
            v.resize(CHUNK + LANES, 0.0);
        }
        s.pair.resize(n_eta * (CHUNK + LANES), 0.0);

        let mut sums = vec![0.0; n4 + n5];
        for hi in 0..n_types {
            for lo in 0..=hi {
                let (jr, kr) = (block[hi]..block[hi + 1], block[lo]..block[lo + 1]);
                if jr.is_empty() || kr.is_empty() {
                    continue;
                }
                sums.iter_mut().for_each(|v| *v = 0.0);
                let mut len = 0;
                for j in jr {
                    let ks = if hi == lo { kr.start..j } else { kr.clone() };
                    let mut k0 = ks.start;
                    while k0 < ks.end {
                        if len == CHUNK {
                            angular_chunk::<FMA>(s, len, plan, &mut sums);
                            len = 0;
                        }
                        let k1 = ks.end.min(k0 + CHUNK - len);
                        pair_geometry::<FMA>(s, stride, j, k0..k1, len, rc2, w_scale, n4 > 0);
                        len += k1 - k0;
                        k0 = k1;
                    }
                }
                if len > 0 {
                    angular_chunk::<FMA>(s, len, plan, &mut sums);
                }
                let off = ang_start + (hi * (hi + 1) / 2 + lo) * n_ang;
                for (m, row) in plan.g4.iter().enumerate() {
                    values[off + m] += row.4 * sums[m];
                }
                for (m, row) in plan.g5.iter().enumerate() {
                    values[off + n4 + m] += row.4 * sums[n4 + m];
                }
            }
        }
        CentreFeatures { system: k, atom: i, values, atoms: Vec::new(), positions: Vec::new(), strain: Vec::new() }
    }
}

/// Writes r_jk², cos θ_ijk and f_c(r_jk) (0 beyond r_c; only if `with_fd`)
/// of the pairs (j, k) for k in `ks` at chunk positions `at..`, and the
/// neighbour products of each η. It runs over whole lanes: the up to
/// `LANES − 1` entries written past the pairs are overwritten by the next
/// j, or zeroed when the chunk is padded.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pair_geometry<const FMA: bool>(s: &mut ValuesScratch, stride: usize, j: usize, ks: std::ops::Range<usize>, at: usize, rc2: f64, w_scale: f64, with_fd: bool) {
    // whole lanes: the loops below then vectorise with no scalar remainder
    let (k0, len) = (ks.start, ks.len().div_ceil(LANES) * LANES);
    let (xj, yj, zj) = (s.x[j], s.y[j], s.z[j]);
    let (uxj, uyj, uzj) = (s.ux[j], s.uy[j], s.uz[j]);
    let (x, y, z) = (&s.x[k0..k0 + len], &s.y[k0..k0 + len], &s.z[k0..k0 + len]);
    let (ux, uy, uz) = (&s.ux[k0..k0 + len], &s.uy[k0..k0 + len], &s.uz[k0..k0 + len]);
    let cos = &mut s.cos[at..at + len];
    if with_fd {
        let d2 = &mut s.d2[at..at + len];
        let fd = &mut s.fd[at..at + len];
        for t in 0..len {
            cos[t] = madd::<FMA>(ux[t], uxj, madd::<FMA>(uy[t], uyj, uz[t] * uzj));
            let (dx, dy, dz) = (x[t] - xj, y[t] - yj, z[t] - zj);
            let r2 = madd::<FMA>(dx, dx, madd::<FMA>(dy, dy, dz * dz));
            d2[t] = r2;
            let f = cutoff_from_scaled_square::<FMA>(r2 * w_scale);
            fd[t] = if r2 <= rc2 { f } else { 0.0 };
        }
    } else {
        for t in 0..len {
            cos[t] = madd::<FMA>(ux[t], uxj, madd::<FMA>(uy[t], uyj, uz[t] * uzj));
        }
    }
    for g in 0..s.radial.len() / stride {
        let radial = &s.radial[g * stride..(g + 1) * stride];
        let fj = radial[j];
        let rk = &radial[k0..k0 + len];
        let pair = &mut s.pair[g * (CHUNK + LANES) + at..g * (CHUNK + LANES) + at + len];
        for t in 0..len {
            pair[t] = fj * rk[t];
        }
    }
}

/// G4 sums of one species-pair run, keeping only the pairs (j, k) with
/// r_jk ≤ r_c: in a cutoff sphere about half of the neighbour pairs are
/// farther apart than r_c (56 % on si512 at r_c = 6 Å) and add 0, so they
/// are dropped right after r_jk² and cos θ are formed, before the
/// polynomials of f_c(r_jk) and exp(−η r_jk²) and the power sums. The kept
/// pairs are packed into the chunk arrays (`cos`, `d2`, and the neighbour
/// products `pair` of each η) and summed chunk by chunk ([`compact_chunk`]).
/// `same`: j and k from one species, k < j; else every (j, k).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn compact_pairs<const FMA: bool>(s: &mut ValuesScratch, stride: usize, jr: std::ops::Range<usize>, kr: std::ops::Range<usize>, same: bool, plan: &AngularPlan, rc2: f64, w_scale: f64, sums: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if FMA {
        // SAFETY: the FMA copy runs only where the CPU has AVX2 and FMA (`centre_values`)
        unsafe { compact_pairs_avx2(s, stride, jr, kr, same, plan, rc2, w_scale, sums) };
        return;
    }
    let n_eta = plan.etas.len();
    let mut len = 0;
    for j in jr {
        let ks = if same { kr.start..j } else { kr.clone() };
        let (xj, yj, zj) = (s.x[j], s.y[j], s.z[j]);
        let (uxj, uyj, uzj) = (s.ux[j], s.uy[j], s.uz[j]);
        for k in ks {
            if len == CHUNK {
                compact_chunk::<FMA>(s, len, plan, w_scale, sums);
                len = 0;
            }
            let (dx, dy, dz) = (s.x[k] - xj, s.y[k] - yj, s.z[k] - zj);
            let d2 = madd::<FMA>(dx, dx, madd::<FMA>(dy, dy, dz * dz));
            // branch-free: the slot is written whatever happens, and kept
            // by advancing `len` only if the pair is within r_c
            s.d2[len] = d2;
            s.cos[len] = madd::<FMA>(s.ux[k], uxj, madd::<FMA>(s.uy[k], uyj, s.uz[k] * uzj));
            for g in 0..n_eta {
                s.pair[g * (CHUNK + LANES) + len] = s.radial[g * stride + j] * s.radial[g * stride + k];
            }
            len += usize::from(d2 <= rc2);
        }
    }
    if len > 0 {
        compact_chunk::<FMA>(s, len, plan, w_scale, sums);
    }
}

/// Left-packing permutations: for a 4-bit mask of kept lanes, the 32-bit
/// lane indices (two per f64) that move the kept f64 lanes to the front.
#[cfg(target_arch = "x86_64")]
const PACK: [[i32; 8]; 16] = {
    let mut table = [[0i32; 8]; 16];
    let mut mask = 0;
    while mask < 16 {
        let (mut out, mut lane) = (0, 0);
        while lane < 4 {
            if mask & (1 << lane) != 0 {
                table[mask][2 * out] = 2 * lane as i32;
                table[mask][2 * out + 1] = 2 * lane as i32 + 1;
                out += 1;
            }
            lane += 1;
        }
        mask += 1;
    }
    table
};

/// `compact_pairs` with four pairs per AVX register, kept ones packed with
/// one permutation per array.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn compact_pairs_avx2(s: &mut ValuesScratch, stride: usize, jr: std::ops::Range<usize>, kr: std::ops::Range<usize>, same: bool, plan: &AngularPlan, rc2: f64, w_scale: f64, sums: &mut [f64]) {
    use std::arch::x86_64::*;
    let n_eta = plan.etas.len();
    let rc2v = _mm256_set1_pd(rc2);
    let mut len = 0;
    // every array read below has `stride` = n + LANES entries per row and
    // k < n: the four lanes from k are in bounds; the writes go to
    // len..len + 4 ≤ CHUNK + LANES
    debug_assert!(s.x.len() >= stride && s.radial.len() >= n_eta * stride && s.cos.len() >= CHUNK + LANES);
    debug_assert!(s.pair.len() >= n_eta * (CHUNK + LANES));
    for j in jr {
        let ks = if same { kr.start..j } else { kr.clone() };
        let (xj, yj, zj) = (_mm256_set1_pd(s.x[j]), _mm256_set1_pd(s.y[j]), _mm256_set1_pd(s.z[j]));
        let (uxj, uyj, uzj) = (_mm256_set1_pd(s.ux[j]), _mm256_set1_pd(s.uy[j]), _mm256_set1_pd(s.uz[j]));
        // pieces of at most CHUNK / 2 pairs, flushed before a piece that
        // might not fit: the loop over a piece has no call in it
        let mut k0 = ks.start;
        while k0 < ks.end {
            let k1 = ks.end.min(k0 + CHUNK / 2);
            if len + (k1 - k0) + LANES > CHUNK {
                compact_chunk::<true>(s, len, plan, w_scale, sums);
                len = 0;
            }
            let mut k = k0;
            while k < k1 {
                // SAFETY: k + 3 < n + LANES = stride (see above)
                let (x, y, z, ux, uy, uz) = unsafe {
                    (
                        _mm256_loadu_pd(s.x.as_ptr().add(k)),
                        _mm256_loadu_pd(s.y.as_ptr().add(k)),
                        _mm256_loadu_pd(s.z.as_ptr().add(k)),
                        _mm256_loadu_pd(s.ux.as_ptr().add(k)),
                        _mm256_loadu_pd(s.uy.as_ptr().add(k)),
                        _mm256_loadu_pd(s.uz.as_ptr().add(k)),
                    )
                };
                let (dx, dy, dz) = (_mm256_sub_pd(x, xj), _mm256_sub_pd(y, yj), _mm256_sub_pd(z, zj));
                let d2 = _mm256_fmadd_pd(dx, dx, _mm256_fmadd_pd(dy, dy, _mm256_mul_pd(dz, dz)));
                let mut bits = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LE_OQ>(d2, rc2v)) as usize;
                if k1 - k < LANES {
                    bits &= (1 << (k1 - k)) - 1;
                }
                let cos = _mm256_fmadd_pd(ux, uxj, _mm256_fmadd_pd(uy, uyj, _mm256_mul_pd(uz, uzj)));
                // stored whatever the mask (no branch to mispredict): the
                // lanes past the kept ones are overwritten or padded later
                // SAFETY: PACK[bits] is eight i32
                let perm = unsafe { _mm256_loadu_si256(PACK[bits].as_ptr().cast()) };
                // (a macro, not a closure: a closure would not inherit the target features)
                macro_rules! pack {
                    ($v:expr) => {
                        _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps($v), perm))
                    };
                }
                // SAFETY: len + 3 < CHUNK + LANES (the piece fits, see above)
                unsafe {
                    _mm256_storeu_pd(s.d2.as_mut_ptr().add(len), pack!(d2));
                    _mm256_storeu_pd(s.cos.as_mut_ptr().add(len), pack!(cos));
                }
                for g in 0..n_eta {
                    // SAFETY: g·stride + k + 3 < n_eta·stride; g·(CHUNK + LANES) + len + 3 < n_eta·(CHUNK + LANES)
                    unsafe {
                        let fj = _mm256_set1_pd(*s.radial.get_unchecked(g * stride + j));
                        let fk = _mm256_loadu_pd(s.radial.as_ptr().add(g * stride + k));
                        _mm256_storeu_pd(s.pair.as_mut_ptr().add(g * (CHUNK + LANES) + len), pack!(_mm256_mul_pd(fj, fk)));
                    }
                }
                len += bits.count_ones() as usize;
                k += LANES;
            }
            k0 = k1;
        }
    }
    if len > 0 {
        compact_chunk::<true>(s, len, plan, w_scale, sums);
    }
}

/// Adds the `len` packed pairs (all with r_jk ≤ r_c) to the G4 sums.
#[inline(always)]
fn compact_chunk<const FMA: bool>(s: &mut ValuesScratch, len: usize, plan: &AngularPlan, w_scale: f64, sums: &mut [f64]) {
    // pad to whole lanes with pairs that add 0
    let padded = len.div_ceil(LANES) * LANES;
    for p in len..padded {
        s.cos[p] = 0.0;
        s.d2[p] = 0.0;
        for g in 0..plan.etas.len() {
            s.pair[g * (CHUNK + LANES) + p] = 0.0;
        }
    }
    {
        let (d2, fd) = (&s.d2[..padded], &mut s.fd[..padded]);
        for p in 0..padded {
            fd[p] = cutoff_from_scaled_square::<FMA>(d2[p] * w_scale);
        }
    }
    let cos = &s.cos[..padded];
    for (g, &eta) in plan.etas.iter().enumerate() {
        let pair = &s.pair[g * (CHUNK + LANES)..g * (CHUNK + LANES) + padded];
        let (d2, fd) = (&s.d2[..padded], &s.fd[..padded]);
        let weight = &mut s.weight[..padded];
        for p in 0..padded {
            weight[p] = pair[p] * fd[p] * exp_nonpositive::<FMA>(-eta * d2[p]);
        }
        for (m, &(eta_index, lambda, zeta, integer, _)) in plan.g4.iter().enumerate() {
            if eta_index == g {
                sums[m] += angular_sum::<FMA>(weight, cos, lambda, zeta, integer);
            }
        }
    }
}

/// Adds the chunk's `len` pairs to the sums of every G4 and G5 row.
#[inline(always)]
fn angular_chunk<const FMA: bool>(s: &mut ValuesScratch, len: usize, plan: &AngularPlan, sums: &mut [f64]) {
    // pad to whole lanes with pairs that add 0
    let padded = len.div_ceil(LANES) * LANES;
    for p in len..padded {
        s.cos[p] = 0.0;
        s.d2[p] = 0.0;
        s.fd[p] = 0.0;
        for g in 0..plan.etas.len() {
            s.pair[g * (CHUNK + LANES) + p] = 0.0;
        }
    }
    let cos = &s.cos[..padded];
    let n4 = plan.g4.len();
    for (g, &eta) in plan.etas.iter().enumerate() {
        let pair = &s.pair[g * (CHUNK + LANES)..g * (CHUNK + LANES) + padded];
        if plan.eta_in_g4[g] {
            let (d2, fd) = (&s.d2[..padded], &s.fd[..padded]);
            let weight = &mut s.weight[..padded];
            for p in 0..padded {
                weight[p] = pair[p] * fd[p] * exp_nonpositive::<FMA>(-eta * d2[p]);
            }
            for (m, &(eta_index, lambda, zeta, integer, _)) in plan.g4.iter().enumerate() {
                if eta_index == g {
                    sums[m] += angular_sum::<FMA>(weight, cos, lambda, zeta, integer);
                }
            }
        }
        for (m, &(eta_index, lambda, zeta, integer, _)) in plan.g5.iter().enumerate() {
            if eta_index == g {
                sums[n4 + m] += angular_sum::<FMA>(pair, cos, lambda, zeta, integer);
            }
        }
    }
}

impl Calculator for SymmetryFunctions {
    fn name(&self) -> &str {
        "symmetry_functions"
    }

    fn parameters(&self) -> &str {
        &self.parameters
    }

    fn keys(&self, systems: &[System]) -> Result<Labels> {
        let env = Environments::new(systems, self.hypers.cutoff)?;
        self.species(&env)?;
        Ok(Labels::new(&KEY_NAMES, env.species.clone()))
    }

    fn compute(&self, systems: &[System], options: &ComputeOptions) -> Result<TensorMap> {
        let flags = options.gradient_flags()?;
        let env = Environments::for_options(systems, self.hypers.cutoff, options, 0.0)?;
        let species = self.species(&env)?;
        let type_index: Vec<Vec<usize>> =
            systems.iter().map(|s| s.types.iter().map(|t| species.binary_search(t).unwrap_or(0)).collect()).collect();
        // centres of unselected centre types are already left out here
        let centres = env.centres(options)?;
        key_selected(options, &KEY_NAMES, &[0])?;
        let n_types = species.len();
        let nf = self.n_features(n_types);
        // per centre: its own features, then their copy in the output block
        env.check_output("the symmetry functions", &centres, flags, |_| 2.0 * nf as f64)?;
        let plan = AngularPlan::new(&self.hypers);
        let values_only = !flags.positions && !flags.strain && self.values_kernel_applies();
        let features: Vec<CentreFeatures> = centres
            .par_iter()
            .map_init(ValuesScratch::default, |scratch, &(k, i)| {
                // a cancelled computation stops between centres
                options.check_cancelled()?;
                Ok(if values_only {
                    self.centre_values(&env, k, i, &type_index[k], n_types, &plan, scratch)
                } else {
                    self.centre(&env, k, i, &type_index[k], n_types, flags.positions, flags.strain)
                })
            })
            .collect::<Result<_>>()?;

        let properties = self.properties(&species);
        let mut key_values = Vec::new();
        let mut blocks = Vec::new();
        for &c in &env.species {
            let rows: Vec<&CentreFeatures> = features.iter().filter(|f| systems[f.system].types[f.atom] == c).collect();
            if rows.is_empty() {
                continue;
            }
            let values = rows.iter().flat_map(|f| f.values.iter().copied()).collect();
            let samples = Labels::new(&["system", "atom"], rows.iter().flat_map(|f| [f.system as i32, f.atom as i32]).collect());
            let mut block = TensorBlock::new(samples, vec![], properties.clone(), values)?;
            if flags.positions {
                let mut samples = Vec::new();
                let mut grad = Vec::new();
                for (row, f) in rows.iter().enumerate() {
                    for &atom in &f.atoms {
                        samples.extend_from_slice(&[row as i32, f.system as i32, atom as i32]);
                    }
                    grad.extend_from_slice(&f.positions);
                }
                let g = TensorBlock::new(
                    Labels::new(&["sample", "system", "atom"], samples),
                    vec![Labels::range("xyz", 3)],
                    properties.clone(),
                    grad,
                )?;
                block.gradients.push(("positions".into(), g));
            }
            if flags.strain {
                let grad = rows.iter().flat_map(|f| f.strain.iter().copied()).collect();
                let g = TensorBlock::new(
                    Labels::range("sample", rows.len()),
                    // same naming as the SOAP calculators: values[a][b] = ∂/∂ε_ab
                    vec![Labels::range("xyz_2", 3), Labels::range("xyz_1", 3)],
                    properties.clone(),
                    grad,
                )?;
                block.gradients.push(("strain".into(), g));
            }
            debug_assert_eq!(block.properties.count(), nf);
            key_values.push(c);
            blocks.push(block);
        }
        TensorMap::new(Labels::new(&KEY_NAMES, key_values), blocks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calculators::tests_utils::{finite_differences_positions, finite_differences_strain, molecule, triclinic};

    const HYPERS: &str = r#"{"cutoff": 3.6, "g2": [[0.5, 0.0], [1.0, 1.5]], "g3": [1.0, 2.3],
        "g4": [[0.1, 1.0, 1.0], [0.2, 2.0, -1.0], [0.05, 2.5, 1.0]], "g5": [[0.1, 1.0, 1.0], [0.3, 4.0, -1.0], [0.02, 1.5, -1.0]],
        "ani": [[0.3, 2.0, 1.2, 0.4], [0.1, 1.5, 2.0, 2.5], [0.2, 1.0, 0.9, 3.14159]]}"#;

    #[test]
    fn finite_differences() {
        let calc = SymmetryFunctions::new(HYPERS).unwrap();
        finite_differences_positions(&calc, &molecule(), 1e-6);
        finite_differences_strain(&calc, &molecule(), 1e-6);
        finite_differences_positions(&calc, &triclinic(), 1e-6);
        finite_differences_strain(&calc, &triclinic(), 1e-6);
    }

    /// Values-only calls take the vectorised kernel (both its AVX2/FMA copy
    /// and the portable one; with G5 rows the kernel over every pair, without
    /// them the one that keeps only pairs with r_jk ≤ r_c), calls with
    /// gradients the general loop: equal to round-off, on systems whose
    /// neighbour pairs span several chunks.
    #[test]
    fn values_kernel_matches_general_loop() {
        let g4 = r#""g2": [[0.5, 0.0], [1.0, 1.5]], "g3": [1.0],
            "g4": [[0.1, 1.0, 1.0], [0.2, 2.0, -1.0], [0.05, 2.5, 1.0], [0.1, 3.0, 1.0], [0.0, 16.0, -1.0]]"#;
        let with_g5 = format!(r#"{g4}, "g5": [[0.1, 1.0, 1.0], [0.3, 4.0, -1.0], [0.02, 1.5, -1.0]]"#);
        let mut most_pairs = 0;
        let cases = [(3.6, molecule()), (3.6, triclinic()), (5.5, triclinic())];
        for (rows, compact) in [(with_g5.as_str(), false), (g4, true)] {
            for (cutoff, system) in cases.clone() {
                let calc = SymmetryFunctions::new(&format!(r#"{{"cutoff": {cutoff}, {rows}}}"#)).unwrap();
                assert!(calc.values_kernel_applies());
                assert_eq!(AngularPlan::new(&calc.hypers).compact, compact);
                let systems = [system];
                let env = Environments::new(&systems, cutoff).unwrap();
                let n_types = env.species.len();
                let type_index: Vec<usize> = systems[0].types.iter().map(|t| env.species.binary_search(t).unwrap()).collect();
                let plan = AngularPlan::new(&calc.hypers);
                let mut scratch = ValuesScratch::default();
                for i in 0..systems[0].size() {
                    let n = env.starts[0][i + 1] - env.starts[0][i];
                    most_pairs = most_pairs.max(n * (n - 1) / 2);
                    let want = calc.centre(&env, 0, i, &type_index, n_types, false, false).values;
                    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
                    let fast = calc.centre_values(&env, 0, i, &type_index, n_types, &plan, &mut scratch).values;
                    let portable = calc.centre_values_impl::<false>(&env, 0, i, &type_index, n_types, &plan, &mut scratch).values;
                    for got in [fast, portable] {
                        for (f, (g, w)) in got.iter().zip(&want).enumerate() {
                            assert!((g - w).abs() <= 1e-12 * scale, "compact {compact}, cutoff {cutoff}, atom {i}, feature {f}: {g} vs {w}");
                        }
                    }
                }
            }
        }
        assert!(most_pairs > 2 * CHUNK, "{most_pairs} pairs: the test should span several chunks");
    }

    #[test]
    fn labels_follow_dscribe_columns() {
        let calc = SymmetryFunctions::new(r#"{"cutoff": 3, "g2": [[1, 0]], "g4": [[0.1, 1, 1]], "types": [8, 1, 6, 1]}"#).unwrap();
        let p = calc.properties(&[1, 6, 8]);
        assert_eq!(p.count(), calc.n_features(3));
        assert_eq!(p.count(), 3 * 2 + 6);
        assert_eq!(p.row(0), &[1, 1, -1, 0]);
        assert_eq!(p.row(3), &[2, 6, -1, 0]);
        // pairs (1,1), (1,6), (6,6), (1,8), (6,8), (8,8)
        let pairs: Vec<[i32; 2]> = (6..12).map(|r| [p.row(r)[1], p.row(r)[2]]).collect();
        assert_eq!(pairs, vec![[1, 1], [1, 6], [6, 6], [1, 8], [6, 8], [8, 8]]);
    }

    #[test]
    fn rejects_bad_parameters() {
        let e = SymmetryFunctions::new(r#"{"cutoff": 3, "g2": [[1, 0, 2]]}"#).err().unwrap().to_string();
        assert!(e.contains("g2[0]"), "{e}");
        let e = SymmetryFunctions::new(r#"{"cutoff": -1}"#).err().unwrap().to_string();
        assert!(e.contains("cutoff must be a positive"), "{e}");
        let e = SymmetryFunctions::new(r#"{"cutoff": 3, "g5": [[1, 2]]}"#).err().unwrap().to_string();
        assert!(e.contains("g5[0]"), "{e}");
        let calc = SymmetryFunctions::new(r#"{"cutoff": 3, "types": [1, 6]}"#).unwrap();
        let e = calc.compute(&[molecule()], &ComputeOptions::default()).err().unwrap().to_string();
        assert!(e.contains("which is not in types [1, 6]"), "{e}");
    }
}
