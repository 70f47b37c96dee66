//! The prior variance of a sparse GPR's force components: the part of the
//! force variance that the sparse set does not explain.
//!
//! A GPR potential is E = Σ_i ε(x̂_i) with ε a Gaussian process of the
//! normalised features x̂_i of the atoms of one species, covariance
//! k(x̂, ŷ) = δ²(x̂·ŷ)^ζ (the same species only). A force component
//! F = −∂E/∂r_aα (atom a, direction α) is a linear functional of ε, so its
//! prior variance is
//!
//!   k**_F = Σ_{i,j} g_iᵀ ∇_x̂∇_ŷ k(x̂_i, x̂_j) g_j,   g_i = ∂x̂_i/∂r_aα,
//!
//! over the centres i, j (same species) whose environments contain a. With
//! c = x̂_i·x̂_j, ∇_x̂∇_ŷ k = δ²ζ [c^{ζ−1} I + (ζ−1) c^{ζ−2} ŷ x̂ᵀ], so each
//! pair costs three dot products:
//!
//!   g_iᵀ H g_j = δ²ζ [c^{ζ−1} (g_i·g_j) + (ζ−1) c^{ζ−2} (g_i·x̂_j)(x̂_i·g_j)],
//!
//! and g_i = (∂x_i/∂r − x̂_i (x̂_i·∂x_i/∂r)) / ‖x_i‖ is the gradient of the
//! unnormalised features projected off x̂_i (so g_i·x̂_i = 0 and the i = j
//! term is δ²ζ‖g_i‖²). The projected process (DTC, the fit of GAP and of
//! `SparseGPR`) adds the posterior part ψᵀM⁻¹ψ to k**_F − ψᵀK_MM⁻¹ψ, ψ the
//! force row (Quiñonero-Candela & Rasmussen, JMLR 6, 1939 (2005), eq. 20;
//! for forces as derivative observations, Bartók & Csányi, Int. J. Quantum
//! Chem. 115, 1051 (2015), section 4): the prior part is what the sparse
//! set leaves unexplained, ≥ 0 up to rounding.
use rayon::prelude::*;

use super::atomic_features::StructureFeatures;
use super::kernels::PolynomialKernel;
use crate::error::{Error, Result};
use crate::math::linalg::dot;

/// k**_F of every force component of one structure (eV²/Å², 3N in the
/// order of the positions: atom-major, x, y, z), from its unnormalised
/// features (`nf` per atom) with position gradients.
pub fn force_prior_variance(f: &StructureFeatures, nf: usize, kernel: &PolynomialKernel) -> Result<Vec<f64>> {
    let n = f.n_atoms();
    if f.values.len() != n * nf || f.position_rows.len() != n {
        return Err(Error::InvalidParameter(format!("force prior: features of {n} atoms with {} values and {} gradient lists", f.values.len(), f.position_rows.len())));
    }
    let mut hats = vec![0.0; n * nf];
    let mut norms = vec![0.0; n];
    for i in 0..n {
        let x = &f.values[i * nf..(i + 1) * nf];
        let norm = dot(x, x).sqrt();
        if !(norm > 0.0 && norm.is_finite()) {
            return Err(Error::Numerical(format!("force prior: the features of atom {i} have norm {norm} (a kernel on normalised features needs a non-zero, finite norm)")));
        }
        norms[i] = norm;
        for (h, v) in hats[i * nf..(i + 1) * nf].iter_mut().zip(x) {
            *h = v / norm;
        }
    }
    // for each atom a, the centres whose features move with it
    let mut moving: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (i, rows) in f.position_rows.iter().enumerate() {
        for &(a, offset) in rows {
            if a >= n || offset + 3 * nf > f.position_values.len() {
                return Err(Error::InvalidParameter(format!("force prior: gradient row of centre {i} names atom {a} at offset {offset}")));
            }
            moving[a].push((i, offset));
        }
    }
    let zeta = kernel.zeta;
    let scale = kernel.delta * kernel.delta * zeta as f64;
    let per_atom: Vec<[f64; 3]> = moving
        .par_iter()
        .map(|centres| {
            // g of every (centre, direction): 3 rows of nf per centre
            let mut g = vec![0.0; centres.len() * 3 * nf];
            for (p, &(i, offset)) in centres.iter().enumerate() {
                let hat = &hats[i * nf..(i + 1) * nf];
                for alpha in 0..3 {
                    let raw = &f.position_values[offset + alpha * nf..offset + (alpha + 1) * nf];
                    let along = dot(hat, raw);
                    let out = &mut g[(3 * p + alpha) * nf..(3 * p + alpha + 1) * nf];
                    for ((o, r), h) in out.iter_mut().zip(raw).zip(hat) {
                        *o = (r - along * h) / norms[i];
                    }
                }
            }
            let mut sum = [0.0; 3];
            for (p, &(i, _)) in centres.iter().enumerate() {
                let hat_i = &hats[i * nf..(i + 1) * nf];
                for (q, &(j, _)) in centres.iter().enumerate().skip(p) {
                    if f.species[i] != f.species[j] {
                        continue;
                    }
                    let hat_j = &hats[j * nf..(j + 1) * nf];
                    let c = dot(hat_i, hat_j);
                    let first = c.powi(zeta as i32 - 1);
                    let second = if zeta >= 2 { (zeta - 1) as f64 * c.powi(zeta as i32 - 2) } else { 0.0 };
                    // the pair (p, q) and (q, p) give the same term
                    let weight = if p == q { 1.0 } else { 2.0 };
                    for (alpha, s) in sum.iter_mut().enumerate() {
                        let gp = &g[(3 * p + alpha) * nf..(3 * p + alpha + 1) * nf];
                        let gq = &g[(3 * q + alpha) * nf..(3 * q + alpha + 1) * nf];
                        let mut term = first * dot(gp, gq);
                        if second != 0.0 && p != q {
                            term += second * dot(gp, hat_j) * dot(hat_i, gq);
                        }
                        *s += weight * term;
                    }
                }
            }
            sum.map(|s| scale * s)
        })
        .collect();
    Ok(per_atom.into_iter().flatten().collect())
}
