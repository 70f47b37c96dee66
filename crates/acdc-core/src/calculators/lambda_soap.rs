//! λ-SOAP: the equivariant power spectrum (featomic's
//! `clebsch_gordan.EquivariantPowerSpectrum`),
//!
//! ρ^{⊗2; λμ}_{a n₁ l₁; b n₂ l₂}(i) = Σ_{m₁m₂} Ĉ^{l₁l₂λ}_{m₁m₂μ} ⟨a n₁ l₁ m₁|ρ_i⟩⟨b n₂ l₂ m₂|ρ_i⟩,
//!
//! with the real Clebsch–Gordan coefficients Ĉ of [`crate::math::clebsch_gordan`]
//! (featomic's coupling sign included), l₁ ≤ l₂, |l₁ − l₂| ≤ λ ≤ l₁ + l₂ and
//! parity o3_sigma = (−1)^{l₁+l₂+λ}. Each block transforms under a rotation R
//! as D^λ(R) acting on o3_mu, and under inversion as o3_sigma·(−1)^λ.
//! M. J. Willatt, F. Musil, M. Ceriotti, J. Chem. Phys. 150, 154110 (2019),
//! doi:10.1063/1.5090481; A. Grisafi, D. M. Wilkins, G. Csányi, M. Ceriotti,
//! Phys. Rev. Lett. 120, 036002 (2018), doi:10.1103/PhysRevLett.120.036002.
//!
//! At λ = 0 (σ = +1, l₁ = l₂ = l) this is the SOAP power spectrum without its
//! √2 for distinct neighbour types: both (a, b) and (b, a) blocks are present.
//!
//! Layouts (as featomic): keys (o3_lambda, o3_sigma, center_type,
//! neighbor_1_type, neighbor_2_type), properties (l_1, l_2, n_1, n_2); or, with
//! `neighbors_to_properties`, keys (o3_lambda, o3_sigma, center_type) and
//! properties (l_1, l_2, neighbor_1_type, n_1, neighbor_2_type, n_2), with
//! (neighbor_1_type, n_1) outer. (l_1, l_2) groups are in ascending order.
//! Samples of a split block are the centres that see a or b (all-zero rows
//! where they see only one of them, as featomic's sample union gives).
//!
//! Gradients (which featomic's CG code does not provide) follow from the
//! product rule on the expansion gradients: ∂ρ^{⊗2} = Ĉ(∂c_a ⊗ c_b + c_a ⊗ ∂c_b).
use rayon::prelude::*;

use super::shared::{key_selected, species_pairs, Environments};
use super::soap::sample_labels;
use super::shared::GradientFlags;
use super::soap::expansion::{CentreDensity, Expansion};
use super::soap::hypers::SoapHypers;
use super::{Calculator, ComputeOptions};
use crate::error::{Error, Result};
use crate::math::cg_product::{apply_steps, outer, outer_add, used_sources, Step};
use crate::math::clebsch_gordan::{ClebschGordan, MAX_DEGREE};
use crate::system::System;
use crate::tensor::{Labels, TensorBlock, TensorMap};

const SPLIT_KEYS: [&str; 5] = ["o3_lambda", "o3_sigma", "center_type", "neighbor_1_type", "neighbor_2_type"];
const MERGED_KEYS: [&str; 3] = ["o3_lambda", "o3_sigma", "center_type"];

/// λ-SOAP with featomic 0.6 SOAP hyper-parameters, plus an optional fixed
/// list of neighbour types for the merged layout.
pub struct EquivariantPowerSpectrum {
    parameters: String,
    expansion: Expansion,
    cg: ClebschGordan,
    /// [`mirror_symmetric`] for (l, λ), at l·(2·l_max + 1) + λ
    mirror: Vec<bool>,
    neighbor_types: Option<Vec<i32>>,
}

/// Rows of the coefficient-like arrays of one centre: `data[base + lm * stride ..][..n_max]`.
#[derive(Clone, Copy)]
pub(crate) struct Side<'a> {
    pub data: &'a [f64],
    pub base: usize,
    pub stride: usize,
}

impl Side<'_> {
    #[inline(always)]
    fn row(&self, lm: usize, n_max: usize) -> &[f64] {
        &self.data[self.base + lm * self.stride..][..n_max]
    }
}

/// The (l₁, l₂) groups of one output block and where they start in its properties.
pub(crate) struct Couplings {
    pub lambda: usize,
    /// (l₁, l₂, first property)
    pub pairs: Vec<(usize, usize, usize)>,
    /// properties per sample and μ
    pub n_props: usize,
    /// length of the second factor's property axis (n_max or types·n_max)
    pub q_total: usize,
}

/// `out[μ][off + (i0 + i)·q + j0 + j] += Ĉ[m₁,m₂,μ] a[l₁m₁][i] b[l₂m₂][j]`
/// for every (l₁, l₂) of `c`, with the sparse coefficients: the hot loop.
/// `i0`, `j0` place the factors' n-ranges inside the property axis.
#[inline]
pub(crate) fn couple(out: &mut [f64], c: &Couplings, cg: &ClebschGordan, n_max: usize, a: Side, i0: usize, b: Side, j0: usize) {
    for &(l1, l2, off) in &c.pairs {
        for e in cg.get(l1, l2, c.lambda) {
            let ra = a.row(l1 * l1 + e.m1, n_max);
            let rb = b.row(l2 * l2 + e.m2, n_max);
            let o = &mut out[e.mu * c.n_props + off..];
            for (i, &x) in ra.iter().enumerate() {
                let x = e.value * x;
                let row = &mut o[(i0 + i) * c.q_total + j0..][..n_max];
                for (r, &y) in row.iter_mut().zip(rb) {
                    *r += x * y;
                }
            }
        }
    }
}

/// Whether Ĉ^{l l λ}[m₂,m₁,μ] = (−1)^λ Ĉ^{l l λ}[m₁,m₂,μ] for every entry, as
/// the coupling of two equal degrees gives; checked on the table (once per
/// (l, λ), when the calculator is made) rather than assumed, so that a different convention
/// would only cost speed.
fn mirror_symmetric(cg: &ClebschGordan, l: usize, lambda: usize) -> bool {
    let entries = cg.get(l, l, lambda);
    let sign = if lambda % 2 == 0 { 1.0 } else { -1.0 };
    entries.iter().all(|e| {
        e.m1 == e.m2
            || entries
                .iter()
                .any(|f| (f.m1, f.m2, f.mu) == (e.m2, e.m1, e.mu) && (f.value - sign * e.value).abs() <= 1e-14 * e.value.abs())
    })
}

/// Whether plane `k` = m₁·n₂ + m₂ has m₁ < m₂ (a P ± Pᵀ plane when symmetric).
fn k_off_diagonal(k: usize, n2: usize) -> bool {
    k / n2 < k % n2
}

/// (λ, σ) of every block and its (l₁ ≤ l₂) groups, in the order featomic's
/// keys first appear per centre type: σ = +1 and −1 for each λ ascending.
pub(crate) fn lambda_sigma_pairs(l_max: usize) -> Vec<(usize, i32, Vec<(usize, usize)>)> {
    let mut out = Vec::new();
    for lambda in 0..=2 * l_max {
        for sigma in [1, -1] {
            let mut pairs = Vec::new();
            for l1 in 0..=l_max {
                for l2 in l1..=l_max {
                    let parity = if (l1 + l2 + lambda) % 2 == 0 { 1 } else { -1 };
                    if l2 - l1 <= lambda && lambda <= l1 + l2 && parity == sigma {
                        pairs.push((l1, l2));
                    }
                }
            }
            if !pairs.is_empty() {
                out.push((lambda, sigma, pairs));
            }
        }
    }
    out
}

/// One output block to fill: its couplings and the species channels
/// (species a, offset of a's n-range, species b, offset of b's n-range).
struct Plan {
    key: Vec<i32>,
    couplings: Couplings,
    properties: Labels,
    channels: Vec<(usize, usize, usize, usize)>,
    rows: Vec<usize>,
    /// species whose neighbours get gradient rows
    gradient_species: Vec<bool>,
    /// plans of one group are adjacent and share rows, channels and
    /// q_total: their values are computed in one pass over the centres
    group: usize,
}

impl EquivariantPowerSpectrum {
    /// Parses the SOAP hyper-parameters; `neighbor_types` fixes the
    /// neighbour types of the merged layout (zeros for absent ones).
    pub fn new(hypers: &str, neighbor_types: Option<Vec<i32>>) -> Result<EquivariantPowerSpectrum> {
        let (_, settings) = SoapHypers::from_json("equivariant_power_spectrum", hypers)?;
        if settings.alchemical.is_some() {
            return Err(crate::Error::InvalidParameter(
                "density.alchemical is supported by SphericalExpansion and SoapPowerSpectrum only".into(),
            ));
        }
        let l_max = settings.max_angular;
        if 2 * l_max > MAX_DEGREE {
            return Err(Error::InvalidParameter(format!(
                "basis.max_angular is {l_max}, but λ-SOAP couples up to o3_lambda = 2·max_angular and supports at most {MAX_DEGREE}"
            )));
        }
        let cg = ClebschGordan::new(l_max, 2 * l_max)?;
        if let Some(types) = &neighbor_types {
            let mut sorted = types.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if types.is_empty() || sorted.len() != types.len() {
                return Err(Error::InvalidParameter(format!("neighborTypes must be distinct atomic types, got {types:?}")));
            }
        }
        let mirror = (0..=l_max).flat_map(|l| (0..=2 * l_max).map(move |lambda| (l, lambda))).map(|(l, lambda)| mirror_symmetric(&cg, l, lambda)).collect();
        Ok(EquivariantPowerSpectrum { parameters: hypers.to_string(), expansion: Expansion::new(settings)?, cg, mirror, neighbor_types })
    }

    /// Builds from the JSON the registry passes: SOAP hypers with an optional
    /// extra top-level `neighbor_types` array.
    pub fn from_json(json: &str) -> Result<EquivariantPowerSpectrum> {
        let mut value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| Error::InvalidParameter(format!("equivariant_power_spectrum hyper-parameters are not valid JSON: {e}")))?;
        let types = match value.as_object_mut().and_then(|o| o.remove("neighbor_types")) {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(serde_json::from_value::<Vec<i32>>(v.clone()).map_err(|_| {
                Error::InvalidParameter(format!("neighbor_types must be an array of integers, got {v}"))
            })?),
        };
        let mut calc = Self::new(&value.to_string(), types)?;
        calc.parameters = json.to_string();
        Ok(calc)
    }

    fn plans(&self, species: &[i32], densities: &[CentreDensity], options: &ComputeOptions) -> Result<Vec<Plan>> {
        let ns = species.len();
        let n_max = self.expansion.n_max();
        let l_max = self.expansion.settings.max_angular;
        let seen = species_pairs(ns, densities.iter().map(|d| (d.centre_species, d.present.as_slice())));
        let lambdas = lambda_sigma_pairs(l_max);
        let mut plans = Vec::new();
        let mut group_id = 0;
        for c in 0..ns {
            let centres: Vec<usize> = (0..densities.len()).filter(|&k| densities[k].centre_species == c).collect();
            if centres.is_empty() {
                continue;
            }
            if options.neighbors_to_properties {
                // the types of the property axis, and their species index (None: absent everywhere)
                let types: Vec<(i32, Option<usize>)> = match &self.neighbor_types {
                    Some(t) => t.iter().map(|&t| (t, species.binary_search(&t).ok())).collect(),
                    None => (0..ns).filter(|&s| seen[c * ns + s]).map(|s| (species[s], Some(s))).collect(),
                };
                let nt = types.len();
                let mut channels = Vec::new();
                let mut gradient_species = vec![false; ns];
                for (t, &(_, sa)) in types.iter().enumerate() {
                    for (u, &(_, sb)) in types.iter().enumerate() {
                        if let (Some(sa), Some(sb)) = (sa, sb) {
                            channels.push((sa, t * n_max, sb, u * n_max));
                            gradient_species[sa] = true;
                        }
                    }
                }
                let rows: Vec<usize> =
                    centres.iter().copied().filter(|&k| types.iter().any(|&(_, s)| s.is_some_and(|s| densities[k].present[s]))).collect();
                for (lambda, sigma, pairs) in &lambdas {
                    let key = vec![*lambda as i32, *sigma, species[c]];
                    if !key_selected(options, &MERGED_KEYS, &key)? {
                        continue;
                    }
                    let group = nt * n_max * nt * n_max;
                    let mut props = Vec::new();
                    for &(l1, l2) in pairs {
                        for &(ta, _) in &types {
                            for n1 in 0..n_max as i32 {
                                for &(tb, _) in &types {
                                    for n2 in 0..n_max as i32 {
                                        props.extend_from_slice(&[l1 as i32, l2 as i32, ta, n1, tb, n2]);
                                    }
                                }
                            }
                        }
                    }
                    let couplings = Couplings {
                        lambda: *lambda,
                        pairs: pairs.iter().enumerate().map(|(k, &(l1, l2))| (l1, l2, k * group)).collect(),
                        n_props: pairs.len() * group,
                        q_total: nt * n_max,
                    };
                    let properties = Labels::new(&["l_1", "l_2", "neighbor_1_type", "n_1", "neighbor_2_type", "n_2"], props);
                    plans.push(Plan {
                        key,
                        couplings,
                        properties,
                        channels: channels.clone(),
                        rows: rows.clone(),
                        gradient_species: gradient_species.clone(),
                        group: group_id,
                    });
                }
                group_id += 1;
            } else {
                for a in (0..ns).filter(|&a| seen[c * ns + a]) {
                    for b in (0..ns).filter(|&b| seen[c * ns + b]) {
                        let rows: Vec<usize> =
                            centres.iter().copied().filter(|&k| densities[k].present[a] || densities[k].present[b]).collect();
                        let mut gradient_species = vec![false; ns];
                        gradient_species[a] = true;
                        gradient_species[b] = true;
                        for (lambda, sigma, pairs) in &lambdas {
                            let key = vec![*lambda as i32, *sigma, species[c], species[a], species[b]];
                            if !key_selected(options, &SPLIT_KEYS, &key)? {
                                continue;
                            }
                            let group = n_max * n_max;
                            let mut props = Vec::new();
                            for &(l1, l2) in pairs {
                                for n1 in 0..n_max as i32 {
                                    for n2 in 0..n_max as i32 {
                                        props.extend_from_slice(&[l1 as i32, l2 as i32, n1, n2]);
                                    }
                                }
                            }
                            let couplings = Couplings {
                                lambda: *lambda,
                                pairs: pairs.iter().enumerate().map(|(k, &(l1, l2))| (l1, l2, k * group)).collect(),
                                n_props: pairs.len() * group,
                                q_total: n_max,
                            };
                            let properties = Labels::new(&["l_1", "l_2", "n_1", "n_2"], props);
                            plans.push(Plan {
                                key,
                                couplings,
                                properties,
                                channels: vec![(a, 0, b, 0)],
                                rows: rows.clone(),
                                gradient_species: gradient_species.clone(),
                                group: group_id,
                            });
                        }
                        group_id += 1;
                    }
                }
            }
        }
        Ok(plans)
    }

    /// The values of one group of plans (same rows and channels, one block
    /// per plan), in one pass over the centres: per centre and (l₁, l₂), the
    /// outer products of the two factors' (m, n) rows are formed once and
    /// shared by every λ and μ of the group ([`crate::math::cg_product`]).
    /// Each centre's rows are zeroed just before they are accumulated, while
    /// in cache, rather than the whole output up front.
    fn group_values(&self, plans: &[Plan], densities: &[CentreDensity], ns: usize) -> Result<Vec<Vec<f64>>> {
        let first = &plans[0];
        let n_max = self.expansion.n_max();
        let stride = ns * n_max;
        let q = first.couplings.q_total;
        let qq = q * q;
        let channels = &first.channels;
        // absent neighbour types leave parts of the (p, q) plane at zero
        let covered = channels.len() * n_max * n_max == qq;
        let mut pairs: Vec<(usize, usize)> = plans.iter().flat_map(|p| p.couplings.pairs.iter().map(|&(l1, l2, _)| (l1, l2))).collect();
        pairs.sort_unstable();
        pairs.dedup();
        // one channel that fills the whole (p, q) plane: neighbour types in the keys
        let single = match channels[..] {
            [(sa, 0, sb, 0)] if q == n_max => Some((sa, sb)),
            _ => None,
        };
        // per (l₁, l₂): its steps over every block of the group, and the
        // planes they read: (offset, m₁, m₂, kind) with kind 0 the outer
        // product P[m₁,m₂], 1 and 2 the planes P ± Pᵀ of `symmetric` below
        let mut programs: Vec<(usize, usize, Vec<Step>, Vec<(usize, usize, usize, u8)>)> = Vec::with_capacity(pairs.len());
        let mut scratch = 0;
        for &(l1, l2) in &pairs {
            let n2 = 2 * l2 + 1;
            let planes = (2 * l1 + 1) * n2;
            // l₁ = l₂ with one species on both sides: P[m₂,m₁] = P[m₁,m₂]ᵀ and
            // Ĉ[m₂,m₁,μ] = (−1)^λ Ĉ[m₁,m₂,μ], so each m₁ < m₂ term and its
            // mirror are one update with the plane P + (−1)^λ Pᵀ: half the steps
            let symmetric = l1 == l2 && single.is_some_and(|(a, b)| a == b) && plans.iter().all(|p| self.mirror[l1 * (2 * self.expansion.settings.max_angular + 1) + p.couplings.lambda]);
            let mut steps = Vec::new();
            for (b, plan) in plans.iter().enumerate() {
                let c = &plan.couplings;
                for &(_, _, off) in c.pairs.iter().filter(|&&(x, y, _)| (x, y) == (l1, l2)) {
                    for e in self.cg.get(l1, l2, c.lambda) {
                        let plane = match (symmetric, e.m1.cmp(&e.m2)) {
                            (true, std::cmp::Ordering::Greater) => continue,
                            (true, std::cmp::Ordering::Less) if c.lambda % 2 == 1 => planes + e.m1 * n2 + e.m2,
                            _ => e.m1 * n2 + e.m2,
                        };
                        let index = |v: usize| u32::try_from(v).map_err(|_| Error::InvalidParameter("λ-SOAP block too large for its index type".into()));
                        steps.push(Step { out: index(b)?, pos: index(e.mu * c.n_props + off)?, src: index(plane * qq)?, value: e.value });
                    }
                }
            }
            scratch = scratch.max(if symmetric { 2 } else { 1 } * planes * qq);
            let used = used_sources(&steps)
                .into_iter()
                .map(|src| {
                    let plane = src as usize / qq;
                    let (kind, k) = if plane >= planes { (2, plane - planes) } else { (u8::from(symmetric && k_off_diagonal(plane, n2)), plane) };
                    (src as usize, k / n2, k % n2, kind)
                })
                .collect();
            programs.push((l1, l2, steps, used));
        }
        let rows: Vec<&CentreDensity> = first.rows.iter().map(|&k| &densities[k]).collect();
        // the buffers are not zeroed up front (a memset of the whole output,
        // 40 MB on si512, then overwritten): each centre's rows are zeroed
        // just before they are accumulated, while in cache
        let mut buffers = Vec::with_capacity(plans.len());
        for plan in plans {
            let per_sample = (2 * plan.couplings.lambda + 1) * plan.couplings.n_props;
            let (buffer, _) = crate::tensor::buffer::for_overwrite_uninit(rows.len() * per_sample, "the equivariant power spectrum")?;
            buffers.push(buffer);
        }
        let mut per_row: Vec<Vec<&mut [std::mem::MaybeUninit<f64>]>> = (0..rows.len()).map(|_| Vec::with_capacity(plans.len())).collect();
        for (buffer, plan) in buffers.iter_mut().zip(plans) {
            let per_sample = (2 * plan.couplings.lambda + 1) * plan.couplings.n_props;
            // rows.len() chunks of per_sample: together, every element
            for (out, chunk) in per_row.iter_mut().zip(buffer.chunks_mut(per_sample.max(1))) {
                out.push(chunk);
            }
        }
        let base = vec![0usize; plans.len()];
        per_row.into_par_iter().zip(rows.par_iter()).for_each_init(
            || vec![0.0; scratch],
            |p, (outs, d)| {
                let mut outs: Vec<&mut [f64]> = outs
                    .into_iter()
                    .map(|o| {
                        o.fill(std::mem::MaybeUninit::new(0.0));
                        // SAFETY: every element was just assigned; MaybeUninit<f64> has f64's layout
                        unsafe { &mut *(o as *mut [std::mem::MaybeUninit<f64>] as *mut [f64]) }
                    })
                    .collect();
                let coef = &d.coefficients;
                for (l1, l2, steps, used) in &programs {
                    for &(src, m1, m2, kind) in used {
                        let plane = &mut p[src..][..qq];
                        if let Some((sa, sb)) = single {
                            let ra = &coef[sa * n_max + (l1 * l1 + m1) * stride..][..n_max];
                            let rb = &coef[sb * n_max + (l2 * l2 + m2) * stride..][..n_max];
                            outer(plane, ra, rb);
                            if kind != 0 {
                                // P + (−1)^λ Pᵀ, Pᵀ[i][j] = rb[i]·ra[j]
                                outer_add(plane, rb, ra, if kind == 1 { 1.0 } else { -1.0 });
                            }
                            continue;
                        }
                        if !covered {
                            plane.fill(0.0);
                        }
                        for &(sa, i0, sb, j0) in channels {
                            let ra = &coef[sa * n_max + (l1 * l1 + m1) * stride..][..n_max];
                            let rb = &coef[sb * n_max + (l2 * l2 + m2) * stride..][..n_max];
                            for (i, &x) in ra.iter().enumerate() {
                                for (r, &y) in plane[(i0 + i) * q + j0..][..n_max].iter_mut().zip(rb) {
                                    *r = x * y;
                                }
                            }
                        }
                    }
                    apply_steps(&mut outs, &base, steps, p, qq);
                }
            },
        );
        // SAFETY: each buffer is the union of its rows' chunks, and each
        // row was zeroed then accumulated above
        Ok(buffers.into_iter().map(|b| unsafe { crate::tensor::buffer::assume_written(b) }).collect())
    }

    fn block(&self, plan: &Plan, values: Vec<f64>, densities: &[CentreDensity], ns: usize, flags: GradientFlags) -> Result<TensorBlock> {
        let n_max = self.expansion.n_max();
        let n_lm = self.expansion.n_lm();
        let stride = ns * n_max;
        let c = &plan.couplings;
        let n_mu = 2 * c.lambda + 1;
        let per_sample = n_mu * c.n_props;
        let rows: Vec<&CentreDensity> = plan.rows.iter().map(|&k| &densities[k]).collect();
        let cg = &self.cg;
        let mu = Labels::new(&["o3_mu"], (-(c.lambda as i32)..=c.lambda as i32).collect());
        let mut block = TensorBlock::new(sample_labels(&rows), vec![mu.clone()], plan.properties.clone(), values)?;

        if flags.positions {
            let atoms: Vec<Vec<(usize, Option<usize>)>> = rows.iter().map(|d| d.gradient_rows(|s| plan.gradient_species[s])).collect();
            let total: usize = atoms.iter().map(Vec::len).sum();
            let mut grad = crate::tensor::buffer::zeroed(total * 3 * per_sample, "the equivariant power spectrum position gradients")?;
            let mut chunks = Vec::with_capacity(rows.len());
            let mut rest = grad.as_mut_slice();
            for a in &atoms {
                let (head, tail) = rest.split_at_mut(a.len() * 3 * per_sample);
                chunks.push(head);
                rest = tail;
            }
            chunks.into_par_iter().zip(rows.par_iter().zip(atoms.par_iter())).for_each(|(out, (d, atoms))| {
                let coef = &d.coefficients;
                for (g, &(_, source)) in atoms.iter().enumerate() {
                    for x in 0..3 {
                        let o = &mut out[(g * 3 + x) * per_sample..][..per_sample];
                        for &(sa, i0, sb, j0) in &plan.channels {
                            let a = Side { data: coef, base: sa * n_max, stride };
                            let b = Side { data: coef, base: sb * n_max, stride };
                            match source {
                                Some(k) => {
                                    let s = d.neighbors[k].1;
                                    let dn = Side { data: &d.neighbor_gradients, base: (k * 3 + x) * n_lm * n_max, stride: n_max };
                                    if s == sa {
                                        couple(o, c, cg, n_max, dn, i0, b, j0);
                                    }
                                    if s == sb {
                                        couple(o, c, cg, n_max, a, i0, dn, j0);
                                    }
                                }
                                None => {
                                    let base = x * n_lm * stride;
                                    let da = Side { data: &d.centre_gradient, base: base + sa * n_max, stride };
                                    let db = Side { data: &d.centre_gradient, base: base + sb * n_max, stride };
                                    couple(o, c, cg, n_max, da, i0, b, j0);
                                    couple(o, c, cg, n_max, a, i0, db, j0);
                                }
                            }
                        }
                    }
                }
            });
            let mut samples = Vec::with_capacity(3 * total);
            for (row, (d, atoms)) in rows.iter().zip(&atoms).enumerate() {
                for &(atom, _) in atoms {
                    samples.extend_from_slice(&[row as i32, d.system as i32, atom as i32]);
                }
            }
            let gb = TensorBlock::new(
                Labels::new(&["sample", "system", "atom"], samples),
                vec![Labels::range("xyz", 3), mu.clone()],
                plan.properties.clone(),
                grad,
            )?;
            block.gradients.push(("positions".into(), gb));
        }
        if flags.strain {
            let mut grad = crate::tensor::buffer::zeroed(rows.len() * 9 * per_sample, "the equivariant power spectrum strain gradients")?;
            grad.par_chunks_mut((9 * per_sample).max(1)).zip(rows.par_iter()).for_each(|(out, d)| {
                let coef = &d.coefficients;
                for ab in 0..9 {
                    let o = &mut out[ab * per_sample..][..per_sample];
                    let base = ab * n_lm * stride;
                    for &(sa, i0, sb, j0) in &plan.channels {
                        let a = Side { data: coef, base: sa * n_max, stride };
                        let b = Side { data: coef, base: sb * n_max, stride };
                        let da = Side { data: &d.strain_gradient, base: base + sa * n_max, stride };
                        let db = Side { data: &d.strain_gradient, base: base + sb * n_max, stride };
                        couple(o, c, cg, n_max, da, i0, b, j0);
                        couple(o, c, cg, n_max, a, i0, db, j0);
                    }
                }
            });
            // featomic names the strain components (xyz_2, xyz_1); values[a][b] = ∂/∂ε_ab
            let gb = TensorBlock::new(
                Labels::range("sample", rows.len()),
                vec![Labels::range("xyz_2", 3), Labels::range("xyz_1", 3), mu],
                plan.properties.clone(),
                grad,
            )?;
            block.gradients.push(("strain".into(), gb));
        }
        Ok(block)
    }
}

impl Calculator for EquivariantPowerSpectrum {
    fn name(&self) -> &str {
        "equivariant_power_spectrum"
    }

    fn parameters(&self) -> &str {
        &self.parameters
    }

    fn keys(&self, systems: &[System]) -> Result<Labels> {
        // the split layout (the default of `compute`)
        let env = Environments::new(systems, self.expansion.settings.cutoff)?;
        let ns = env.species.len();
        let seen = species_pairs(ns, env.presence().iter().map(|(c, p)| (*c, p.as_slice())));
        let lambdas = lambda_sigma_pairs(self.expansion.settings.max_angular);
        let mut values = Vec::new();
        for c in 0..ns {
            for a in (0..ns).filter(|&a| seen[c * ns + a]) {
                for b in (0..ns).filter(|&b| seen[c * ns + b]) {
                    for (lambda, sigma, _) in &lambdas {
                        values.extend_from_slice(&[*lambda as i32, *sigma, env.species[c], env.species[a], env.species[b]]);
                    }
                }
            }
        }
        Ok(Labels::new(&SPLIT_KEYS, values))
    }

    fn compute(&self, systems: &[System], options: &ComputeOptions) -> Result<TensorMap> {
        let flags = options.gradient_flags()?;
        let expand = GradientFlags { positions: flags.positions, strain: flags.strain, pair_factors: false };
        let env = Environments::for_options(systems, self.expansion.settings.cutoff, options, 0.0)?;
        let centres = env.centres(options)?;
        let densities = env.expand(&self.expansion, &centres, expand)?;
        let ns = env.species.len();
        let plans = self.plans(&env.species, &densities, options)?;
        let names: &[&str] = if options.neighbors_to_properties { &MERGED_KEYS } else { &SPLIT_KEYS };
        let mut keys = Vec::new();
        let mut blocks = Vec::with_capacity(plans.len());
        for group in plans.chunk_by(|a, b| a.group == b.group) {
            let values = self.group_values(group, &densities, ns)?;
            for (plan, values) in group.iter().zip(values) {
                blocks.push(self.block(plan, values, &densities, ns, flags)?);
                keys.extend_from_slice(&plan.key);
            }
            options.check_cancelled()?;
        }
        let tensor = TensorMap::new(Labels::new(names, keys), blocks)?;
        if super::soap::ragged::is_ragged(self.expansion.sizes()) {
            return super::soap::ragged::trim(tensor, self.expansion.sizes(), false);
        }
        Ok(tensor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calculators::SoapPowerSpectrum;

    const HYPERS: &str = r#"{"cutoff": {"radius": 3.5, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        "density": {"type": "Gaussian", "width": 0.3},
        "basis": {"type": "TensorProduct", "max_angular": 3, "radial": {"type": "Gto", "max_radial": 2}, "spline_accuracy": null}}"#;

    fn system() -> System {
        System::new(
            vec![8, 6, 1, 1, 1],
            vec![[0.0, 0.0, 0.0], [1.2, 0.1, -0.1], [-0.5, 0.9, 0.2], [1.8, 0.9, 0.3], [0.3, -0.4, 1.5]],
            [[0.0; 3]; 3],
            [false; 3],
        )
        .unwrap()
    }

    /// λ = 0, l₁ = l₂ blocks equal the power spectrum (÷√2 for a ≠ b).
    #[test]
    fn lambda_zero_is_the_power_spectrum() {
        let systems = [system()];
        let ls = EquivariantPowerSpectrum::new(HYPERS, None).unwrap().compute(&systems, &ComputeOptions::default()).unwrap();
        let ps = SoapPowerSpectrum::new(HYPERS).unwrap().compute(&systems, &ComputeOptions::default()).unwrap();
        let mut checked = 0;
        for (k, key) in ps.keys.rows().enumerate() {
            let p = &ps.blocks[k];
            let l = ls.block_by(&[("o3_lambda", 0), ("o3_sigma", 1), ("center_type", key[0]), ("neighbor_1_type", key[1]), ("neighbor_2_type", key[2])]).unwrap();
            let factor = if key[1] == key[2] { 1.0 } else { std::f64::consts::SQRT_2 };
            for (pr, prop) in p.properties.rows().enumerate() {
                let col = l.properties.position(&[prop[0], prop[0], prop[1], prop[2]]).unwrap();
                for (s, sample) in p.samples.rows().enumerate() {
                    let row = l.samples.position(sample).unwrap();
                    let want = p.values[s * p.properties.count() + pr];
                    let got = factor * l.values[row * l.properties.count() + col];
                    assert!((want - got).abs() <= 1e-14 * want.abs().max(1e-3), "{key:?} {prop:?}: {want} vs {got}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 100);
    }

    #[test]
    fn neighbor_types_are_validated() {
        let e = EquivariantPowerSpectrum::new(&HYPERS.replace("\"max_angular\": 3", "\"max_angular\": 13"), None).err().unwrap();
        assert!(e.to_string().contains("basis.max_angular is 13"), "{e}");
        assert!(EquivariantPowerSpectrum::new(HYPERS, Some(vec![1, 1])).is_err());
        assert!(EquivariantPowerSpectrum::from_json(&HYPERS.replace("\"cutoff\"", "\"neighbor_types\": [1, 8], \"cutoff\"")).is_ok());
        let e = EquivariantPowerSpectrum::from_json(&HYPERS.replace("\"cutoff\"", "\"neighbor_types\": \"x\", \"cutoff\"")).err().unwrap();
        assert!(e.to_string().contains("neighbor_types"), "{e}");
    }
}
