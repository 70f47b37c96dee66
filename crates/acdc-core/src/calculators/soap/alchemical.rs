//! Alchemical compression of the neighbour types (Willatt, Musil and
//! Ceriotti, Phys. Chem. Chem. Phys. 20, 29661 (2018)): the density of
//! pseudo-element b is ρ_b = Σ_a u_ba ρ_a, so neighbour j (element a_j)
//! contributes with weight u_(b,a_j). The expansion coefficients are
//! therefore c_(b n l m) = Σ_a u_ba c_(a n l m) and the power spectrum of
//! the pseudo-densities has B(B+1)/2 neighbour-type pairs instead of
//! S(S+1)/2.
//!
//! Implementation: the pair loop runs once (its cost does not depend on the
//! number of elements). The spherical expansion contracts the
//! species-resolved blocks with U ([`contract_expansion`]: samples are the
//! union of the combined blocks, a missing block counts as zero, gradients
//! included). The power spectrum applies U to each centre's density instead
//! ([`Mixing::contract`]) and then runs the ordinary power-spectrum kernel,
//! values and gradients, on the B pseudo-elements.
use std::collections::BTreeMap;

use super::expansion::{CentreDensity, PairGeometry};
use super::hypers::Alchemical;
use crate::error::{Error, Result};
use crate::tensor::{Labels, TensorBlock, TensorMap};

/// The coupling matrix U over the species of one calculation:
/// `u[b * species + s]` is the weight of species index s in pseudo-element b.
pub struct Mixing {
    /// B, the number of pseudo-elements.
    pub pseudo: usize,
    /// The number of species of the calculation.
    pub species: usize,
    u: Vec<f64>,
}

impl Mixing {
    /// U for the sorted `species` of a calculation; errors when one of them
    /// is not in `alchemical.types`.
    pub fn new(alchemical: &Alchemical, species: &[i32]) -> Result<Mixing> {
        let ns = species.len();
        let mut u = vec![0.0; alchemical.coupling.len() * ns];
        for (s, &t) in species.iter().enumerate() {
            let column = alchemical.types.iter().position(|&x| x == t).ok_or_else(|| {
                Error::InvalidParameter(format!(
                    "the systems contain atomic type {t}, which density.alchemical.types ({:?}) does not list",
                    alchemical.types
                ))
            })?;
            for (b, row) in alchemical.coupling.iter().enumerate() {
                u[b * ns + s] = row[column];
            }
        }
        Ok(Mixing { pseudo: alchemical.coupling.len(), species: ns, u })
    }

    /// U as `[b][s]`, row-major.
    pub fn matrix(&self) -> &[f64] {
        &self.u
    }

    /// u_(b, s): the weight of species index `s` in pseudo-element `b`.
    pub fn weight(&self, b: usize, s: usize) -> f64 {
        self.u[b * self.species + s]
    }

    /// Which pseudo-elements have a density around a centre whose
    /// environment holds the species flagged in `present`: those with a
    /// non-zero weight on one of them.
    pub fn present(&self, present: &[bool]) -> Vec<bool> {
        (0..self.pseudo).map(|b| present.iter().enumerate().any(|(s, &p)| p && self.weight(b, s) != 0.0)).collect()
    }

    /// The density of one centre over the pseudo-elements: coefficients
    /// c̃_(b) = Σ_s u_bs c_(s) (`[lm][b][n]`), and with pair factors every
    /// pair of species s repeated once per pseudo-element b with u_bs ≠ 0,
    /// as a pair of species b whose radial factors α, β are scaled by u_bs
    /// (the pair's share of ∂c̃_b). The neighbours keep their real species:
    /// a neighbour has a gradient row in pseudo-element b when u_bs ≠ 0.
    pub fn contract(&self, density: CentreDensity, n_max: usize) -> CentreDensity {
        let (ns, nb) = (self.species, self.pseudo);
        let n_lm = density.coefficients.len() / (ns * n_max).max(1);
        let mut coefficients = vec![0.0; n_lm * nb * n_max];
        for lm in 0..n_lm {
            for b in 0..nb {
                let out = &mut coefficients[(lm * nb + b) * n_max..][..n_max];
                for s in 0..ns {
                    let w = self.weight(b, s);
                    if w == 0.0 {
                        continue;
                    }
                    for (o, &c) in out.iter_mut().zip(&density.coefficients[(lm * ns + s) * n_max..][..n_max]) {
                        *o += w * c;
                    }
                }
            }
        }
        let mut pairs = Vec::new();
        let mut pair_radial = Vec::new();
        let mut pair_angular = Vec::new();
        if !density.pairs.is_empty() {
            let radial_len = density.pair_radial.len() / density.pairs.len();
            let angular_len = density.pair_angular.len() / density.pairs.len();
            for (p, pair) in density.pairs.iter().enumerate() {
                let radial = &density.pair_radial[p * radial_len..(p + 1) * radial_len];
                let angular = &density.pair_angular[p * angular_len..(p + 1) * angular_len];
                for b in 0..nb {
                    let w = self.weight(b, pair.species);
                    if w == 0.0 {
                        continue;
                    }
                    pairs.push(PairGeometry { species: b, ..*pair });
                    pair_radial.extend(radial.iter().map(|&r| w * r));
                    pair_angular.extend_from_slice(angular);
                }
            }
        }
        CentreDensity {
            present: self.present(&density.present),
            coefficients,
            pairs,
            pair_radial,
            pair_angular,
            ..density
        }
    }
}

/// Linear combination Σ_k w_k·block_k of blocks with the same components
/// and properties; samples (and gradient samples) are the sorted union.
fn combine(parts: &[(&TensorBlock, f64)]) -> Result<TensorBlock> {
    let first = parts[0].0;
    let mut sample_set: BTreeMap<Vec<i32>, usize> = BTreeMap::new();
    for (b, _) in parts {
        for r in b.samples.rows() {
            sample_set.insert(r.to_vec(), 0);
        }
    }
    for (i, v) in sample_set.values_mut().enumerate() {
        *v = i;
    }
    let width: usize = first.values.len() / first.samples.count().max(1);
    let width = if first.samples.count() == 0 { first.components.iter().map(Labels::count).product::<usize>() * first.properties.count() } else { width };
    let mut values = vec![0.0; sample_set.len() * width];
    let maps: Vec<Vec<usize>> = parts.iter().map(|(b, _)| b.samples.rows().map(|r| sample_set[r]).collect()).collect();
    for ((b, w), map) in parts.iter().zip(&maps) {
        for (i, &row) in map.iter().enumerate() {
            let src = &b.values[i * width..(i + 1) * width];
            for (o, v) in values[row * width..(row + 1) * width].iter_mut().zip(src) {
                *o += w * v;
            }
        }
    }
    let samples = Labels { names: first.samples.names.clone(), values: sample_set.keys().flatten().copied().collect() };
    let mut out = TensorBlock::new(samples, first.components.clone(), first.properties.clone(), values)?;
    for (parameter, g0) in &first.gradients {
        // gradient sample rows: first entry is the parent's sample index
        let mut set: BTreeMap<Vec<i32>, usize> = BTreeMap::new();
        let mut per_part = Vec::new();
        for ((b, _), map) in parts.iter().zip(&maps) {
            let g = b.gradient(parameter).ok_or_else(|| Error::InvalidParameter(format!("a block lacks its {parameter} gradient")))?;
            let rows: Vec<Vec<i32>> = g
                .samples
                .rows()
                .map(|r| {
                    let mut r = r.to_vec();
                    r[0] = map[r[0] as usize] as i32;
                    r
                })
                .collect();
            for r in &rows {
                set.insert(r.clone(), 0);
            }
            per_part.push((g, rows));
        }
        for (i, v) in set.values_mut().enumerate() {
            *v = i;
        }
        let gwidth = g0.components.iter().map(Labels::count).product::<usize>() * first.properties.count();
        let mut gvalues = vec![0.0; set.len() * gwidth];
        for ((g, rows), (_, w)) in per_part.iter().zip(parts) {
            for (i, r) in rows.iter().enumerate() {
                let row = set[r];
                for (o, v) in gvalues[row * gwidth..(row + 1) * gwidth].iter_mut().zip(&g.values[i * gwidth..(i + 1) * gwidth]) {
                    *o += w * v;
                }
            }
        }
        let gsamples = Labels { names: g0.samples.names.clone(), values: set.keys().flatten().copied().collect() };
        out.gradients.push((parameter.clone(), TensorBlock::new(gsamples, g0.components.clone(), first.properties.clone(), gvalues)?));
    }
    Ok(out)
}

/// Contracts a species-resolved spherical expansion (keys o3_lambda,
/// o3_sigma, center_type, neighbor_type) with U into keys (o3_lambda,
/// o3_sigma, center_type, pseudo_type). Errors when a neighbour type is not
/// in `alchemical.types`.
pub fn contract_expansion(tensor: &TensorMap, alchemical: &Alchemical) -> Result<TensorMap> {
    let column = |t: i32| -> Result<usize> {
        alchemical.types.iter().position(|&x| x == t).ok_or_else(|| {
            Error::InvalidParameter(format!(
                "the systems contain atomic type {t}, which density.alchemical.types ({:?}) does not list",
                alchemical.types
            ))
        })
    };
    // group blocks by (o3_lambda, o3_sigma, center_type)
    let mut groups: BTreeMap<(i32, i32, i32), Vec<(usize, usize)>> = BTreeMap::new();
    for (k, key) in tensor.keys.rows().enumerate() {
        groups.entry((key[2], key[0], key[1])).or_default().push((k, column(key[3])?));
    }
    let mut keys = Vec::new();
    let mut blocks = Vec::new();
    for (&(center, l, sigma), members) in &groups {
        for (b, row) in alchemical.coupling.iter().enumerate() {
            let parts: Vec<(&TensorBlock, f64)> = members.iter().filter(|(_, a)| row[*a] != 0.0).map(|&(k, a)| (&tensor.blocks[k], row[a])).collect();
            if parts.is_empty() {
                continue;
            }
            keys.extend_from_slice(&[l, sigma, center, b as i32]);
            blocks.push(combine(&parts)?);
        }
    }
    // featomic's order: (center_type, pseudo_type) outer, o3_lambda inner
    let mut order: Vec<usize> = (0..blocks.len()).collect();
    order.sort_by_key(|&i| (keys[4 * i + 2], keys[4 * i + 3], keys[4 * i]));
    let mut sorted_keys = Vec::with_capacity(keys.len());
    let mut slots: Vec<Option<TensorBlock>> = blocks.into_iter().map(Some).collect();
    let mut sorted_blocks = Vec::with_capacity(slots.len());
    for i in order {
        sorted_keys.extend_from_slice(&keys[4 * i..4 * i + 4]);
        sorted_blocks.push(slots[i].take().expect("each block once"));
    }
    TensorMap::new(Labels::new(&["o3_lambda", "o3_sigma", "center_type", "pseudo_type"], sorted_keys), sorted_blocks)
}

/// Bytes of the pseudo-element expansion [`contract_expansion`] would build
/// from this species-resolved one: each (l, centre) group of blocks over the
/// neighbour species becomes one block per pseudo-element of the same shape,
/// so the size scales by B pseudo-elements / the neighbour species present.
pub fn contracted_bytes(tensor: &TensorMap, alchemical: &Alchemical) -> f64 {
    let mut neighbors: Vec<i32> = tensor.keys.rows().map(|k| k[k.len() - 1]).collect();
    neighbors.sort_unstable();
    neighbors.dedup();
    let floats: f64 = tensor
        .blocks
        .iter()
        .map(|b| b.values.len() as f64 + b.gradients.iter().map(|(_, g)| g.values.len() as f64).sum::<f64>())
        .sum();
    floats * 8.0 * alchemical.coupling.len() as f64 / neighbors.len().max(1) as f64
}
