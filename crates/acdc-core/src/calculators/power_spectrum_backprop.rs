//! Forces and stress of a model of the power spectrum by backpropagation
//! through the density expansion, without the power-spectrum gradients.
//!
//! A model gives each atom an energy ε_i(x_i) of its joined power spectrum
//! x_i and the gradient g_i = ∂ε_i/∂x_i. Forming ∂x_i/∂r_j for every pair
//! costs (l_max + 1)·n_max² floats per neighbour, species pair and direction
//! (3.4 GiB for 8 000 Si atoms); here each centre is handled on its own, in
//! per-thread scratch:
//!
//! 1. expand the density c[lm][a][n] of centre i with the factored pair
//!    gradients (`GradientFlags::pair_factors`);
//! 2. x_i from c exactly as the power-spectrum calculator forms it (the same
//!    products in the same order, so x_i and ε_i are bit for bit those of
//!    the calculator's values);
//! 3. h[lm][a][n] = ∂ε_i/∂c[lm][a][n]: with
//!    p^{a1 a2}[l][n1][n2] = f_l Σ_m c[lm][a1][n1] c[lm][a2][n2]
//!    (f_l = (−1)^l/√(2l+1), ×√2 when a1 ≠ a2, docs/CONVENTIONS.md §3.1),
//!    h[lm][a1][n1] += f_l Σ_n2 g[l][n1][n2] c[lm][a2][n2] and
//!    h[lm][a2][n2] += f_l Σ_n1 g[l][n1][n2] c[lm][a1][n1]
//!    (both terms for a1 = a2);
//! 4. for every pair i → j (neighbour species b) the chain rule with the
//!    factored expansion gradient ∂c[lm][b][n]/∂r_ij,x =
//!    α[l][n] û_x Y[lm] + β[l][n] ∂Y[lm]/∂û_x gives the 3-vector
//!    ∂ε_i/∂r_ij = Σ_lm (û Y[lm] Σ_n h α + ∇Y[lm] Σ_n h β);
//!    it adds to ∂E/∂r_j, is taken off ∂E/∂r_i, and r_ij,a ∂ε_i/∂r_ij,b adds
//!    to the virial ∂E/∂ε_ab (periodic images of i itself included).
//!
//! With pseudo-elements (`density.alchemical`) the blocks are made of
//! c̃[lm][q][n] = Σ_s u[q][s] c[lm][s][n]; h̃ = ∂ε/∂c̃ is formed as in 3. and
//! mapped back, h[lm][s][n] = Σ_q u[q][s] h̃[lm][q][n], before 4.
//!
//! What a centre leaves behind is one 3-vector per pair; the sums over
//! centres run afterwards in centre order, so the result does not depend on
//! the number of threads. Memory is the neighbour list, those vectors and
//! one expansion per thread.
use rayon::prelude::*;

use super::{accumulate_products, SoapPowerSpectrum};
use crate::calculators::shared::Environments;
use crate::calculators::shared::GradientFlags;
use crate::calculators::soap::alchemical::Mixing;
use crate::calculators::soap::expansion::CentreDensity;
use crate::calculators::ComputeOptions;
use crate::error::{Error, Result};
use crate::system::System;

/// The joined feature layout a model reads (see
/// `models::atomic_features::FeatureLayout`): neighbour-species pairs
/// (a1 ≤ a2, atomic numbers) in property order, each a block of
/// (l, n1, n2) properties.
#[derive(Debug, Clone, Copy)]
pub struct JoinedLayout<'a> {
    /// Centre species the model knows (sorted atomic numbers).
    pub species: &'a [i32],
    /// Neighbour-species pairs in property order.
    pub pairs: &'a [(i32, i32)],
    /// Properties of one pair block, (l_max + 1)·n_max².
    pub block_size: usize,
}

/// What backpropagation gives for one structure.
#[derive(Debug, Clone, Default)]
pub struct Backpropagated {
    /// ε_i of every atom, eV (the model's part only).
    pub energies: Vec<f64>,
    /// ∂E/∂r_j, eV/Å, 3N (xyz inner); empty without positions.
    pub gradient: Vec<f64>,
    /// Virial W_ab = ∂E/∂ε_ab = Σ_pairs r_ij,a ∂ε_i/∂r_ij,b, eV, row-major;
    /// zero without strain.
    pub virial: [f64; 9],
    /// The joined features x_i, `n_atoms × n_features`, when asked.
    pub values: Vec<f64>,
}

/// One centre's share, summed afterwards in centre order.
struct CentreShare {
    energy: f64,
    /// ∂ε_i/∂r_ij for every pair to another atom j, in pair order
    neighbors: Vec<(u32, [f64; 3])>,
    /// ∂ε_i/∂r_i
    centre: [f64; 3],
    virial: [f64; 9],
    values: Vec<f64>,
}

/// Per-thread buffers.
struct Scratch {
    expansion: crate::calculators::soap::expansion::Scratch,
    density: CentreDensity,
    x: Vec<f64>,
    h: Vec<f64>,
    ha: Vec<f64>,
    /// pseudo-element coefficients c̃ and ∂ε/∂c̃, `[lm][q][n]`
    mixed: Vec<f64>,
    h_mixed: Vec<f64>,
}

impl SoapPowerSpectrum {
    /// Whether [`SoapPowerSpectrum::backpropagate`] handles these
    /// hyper-parameters: not with a ragged radial basis (per-l n_max).
    pub fn supports_backpropagation(&self) -> bool {
        !crate::calculators::soap::ragged::is_ragged(self.expansion.sizes())
    }

    /// Energies, ∂E/∂r and the virial of a per-atom model ε_i = ε(x_i) of
    /// the joined power spectrum, without forming the power-spectrum
    /// gradients (see the module doc). `model(c, x)` returns ε and ∂ε/∂x
    /// for an atom of `layout.species[c]`. `positions`/`strain` choose the
    /// gradients; `keep_values` returns the features too. With
    /// `density.alchemical` the layout's pairs are pseudo-element indices.
    /// Only the budget and cancellation of `options` are used. Fails when
    /// [`SoapPowerSpectrum::supports_backpropagation`] is false.
    #[allow(clippy::too_many_arguments)]
    pub fn backpropagate<F>(
        &self,
        systems: &[System],
        layout: JoinedLayout<'_>,
        positions: bool,
        strain: bool,
        keep_values: bool,
        options: &ComputeOptions,
        model: F,
    ) -> Result<Vec<Backpropagated>>
    where
        F: Fn(usize, &[f64]) -> (f64, Vec<f64>) + Sync,
    {
        if !self.supports_backpropagation() {
            return Err(Error::InvalidParameter(
                "backpropagation through the power spectrum needs a basis with one n_max for every l".into(),
            ));
        }
        let expansion = &self.expansion;
        let n_max = expansion.n_max();
        let n_lm = expansion.n_lm();
        let l_max = expansion.settings.max_angular;
        let ln = (l_max + 1) * n_max;
        let bs = ln * n_max;
        if layout.block_size != bs {
            return Err(Error::InvalidParameter(format!("the model's feature blocks have {} properties, the power spectrum {bs}", layout.block_size)));
        }
        let nf = layout.pairs.len() * bs;
        // what every pair leaves behind until the sums (a 3-vector and its atom)
        let per_pair = std::mem::size_of::<(u32, [f64; 3])>() as f64;
        let env = Environments::for_options(systems, expansion.settings.cutoff, options, per_pair)?;
        let ns = env.species.len();
        let stride_lm = ns * n_max;
        // with pseudo-elements, c̃[lm][q][n] = Σ_s u[q][s] c[lm][s][n] (u as `[q][s]`
        // over this batch's species) and the blocks are pseudo-element pairs
        let mix: Option<Vec<f64>> = match &expansion.settings.alchemical {
            None => None,
            Some(alchemical) => Some(Mixing::new(alchemical, &env.species)?.matrix().to_vec()),
        };
        let channels = mix.as_ref().map_or(ns, |u| u.len() / ns.max(1));
        let channel_stride = channels * n_max;
        // the model's species index of each species of this batch
        let centre_index: Vec<usize> = env
            .species
            .iter()
            .map(|t| {
                layout.species.binary_search(t).map_err(|_| {
                    Error::InvalidParameter(format!("atomic type {t} is not one of the model's species {:?}", layout.species))
                })
            })
            .collect::<Result<_>>()?;
        // each block's species in this batch, or pseudo-elements (None: absent, the block is zero)
        let blocks: Vec<Option<(usize, usize)>> = layout
            .pairs
            .iter()
            .map(|&(a, b)| match mix {
                None => Some((env.species.binary_search(&a).ok()?, env.species.binary_search(&b).ok()?)),
                Some(_) => {
                    let ok = |q: i32| usize::try_from(q).ok().filter(|&q| q < channels);
                    Some((ok(a)?, ok(b)?))
                }
            })
            .collect();
        let factors: [Vec<f64>; 2] = [1.0, std::f64::consts::SQRT_2].map(|cross| {
            (0..=l_max).map(|l| cross * if l % 2 == 0 { 1.0 } else { -1.0 } / ((2 * l + 1) as f64).sqrt()).collect()
        });
        let flags = GradientFlags { positions: false, strain: false, pair_factors: true };
        let centres: Vec<(usize, usize)> = systems.iter().enumerate().flat_map(|(k, s)| (0..s.size()).map(move |i| (k, i))).collect();
        options.check_cancelled()?;

        let shares: Vec<CentreShare> = centres
            .par_iter()
            .map_init(
                || Scratch {
                    expansion: expansion.scratch(),
                    density: CentreDensity::default(),
                    x: vec![0.0; nf],
                    h: vec![0.0; n_lm * stride_lm],
                    ha: vec![0.0; 2 * n_lm],
                    mixed: vec![0.0; if mix.is_some() { n_lm * channel_stride } else { 0 }],
                    h_mixed: vec![0.0; if mix.is_some() { n_lm * channel_stride } else { 0 }],
                },
                |scratch, &(k, i)| -> Result<CentreShare> {
                    crate::calculators::check_cancelled(&env.cancel)?;
                    let Scratch { expansion: expansion_scratch, density: d, x, h, ha, mixed, h_mixed } = scratch;
                    let range = env.starts[k][i]..env.starts[k][i + 1];
                    expansion.expand(k, i, &env.pairs[k], range, &env.species_index[k], ns, flags, expansion_scratch, d)?;
                    // the coefficients the blocks are made of, and which channels are present
                    // (pseudo-elements: all, an absent one has zero coefficients)
                    let species_present = |s: usize| d.present[s];
                    let all = |_: usize| true;
                    let (cf, present): (&[f64], &dyn Fn(usize) -> bool) = match &mix {
                        None => (d.coefficients.as_slice(), &species_present),
                        Some(u) => {
                            mixed.fill(0.0);
                            for lm in 0..n_lm {
                                for q in 0..channels {
                                    let out = &mut mixed[lm * channel_stride + q * n_max..lm * channel_stride + (q + 1) * n_max];
                                    for s in 0..ns {
                                        let w = u[q * ns + s];
                                        if w != 0.0 && d.present[s] {
                                            let c = &d.coefficients[lm * stride_lm + s * n_max..lm * stride_lm + (s + 1) * n_max];
                                            for n in 0..n_max {
                                                out[n] += w * c[n];
                                            }
                                        }
                                    }
                                }
                            }
                            (mixed.as_slice(), &all)
                        }
                    };
                    // x_i: the calculator's products, into a zeroed block, for the blocks it would have
                    x.fill(0.0);
                    for (p, block) in blocks.iter().enumerate() {
                        let Some((s1, s2)) = *block else { continue };
                        if present(s1) && present(s2) {
                            let f = &factors[usize::from(s1 != s2)];
                            accumulate_products(&mut x[p * bs..(p + 1) * bs], f, n_max, &cf[s1 * n_max..], channel_stride, &cf[s2 * n_max..], channel_stride);
                        }
                    }
                    let (energy, g) = model(centre_index[d.centre_species], x);
                    if g.len() != nf {
                        return Err(Error::InvalidParameter(format!("the model's energy gradient has {} values for {nf} features", g.len())));
                    }
                    let mut share = CentreShare {
                        energy,
                        neighbors: Vec::new(),
                        centre: [0.0; 3],
                        virial: [0.0; 9],
                        values: if keep_values { x.clone() } else { Vec::new() },
                    };
                    if !(positions || strain) {
                        return Ok(share);
                    }
                    // h = ∂ε/∂c (of the pseudo-elements first, with them)
                    let hc: &mut [f64] = if mix.is_some() { &mut h_mixed[..] } else { &mut h[..] };
                    hc.fill(0.0);
                    for (p, block) in blocks.iter().enumerate() {
                        let Some((s1, s2)) = *block else { continue };
                        if !(present(s1) && present(s2)) {
                            continue;
                        }
                        let f = &factors[usize::from(s1 != s2)];
                        let gp = &g[p * bs..(p + 1) * bs];
                        for (l, &fl) in f.iter().enumerate() {
                            let gl = &gp[l * n_max * n_max..(l + 1) * n_max * n_max];
                            for lm in l * l..(l + 1) * (l + 1) {
                                let base = lm * channel_stride;
                                for n1 in 0..n_max {
                                    let row = &gl[n1 * n_max..(n1 + 1) * n_max];
                                    let c2 = &cf[base + s2 * n_max..base + (s2 + 1) * n_max];
                                    let mut acc = 0.0;
                                    for n2 in 0..n_max {
                                        acc += row[n2] * c2[n2];
                                    }
                                    hc[base + s1 * n_max + n1] += fl * acc;
                                }
                                for n2 in 0..n_max {
                                    let c1 = &cf[base + s1 * n_max..base + (s1 + 1) * n_max];
                                    let mut acc = 0.0;
                                    for n1 in 0..n_max {
                                        acc += gl[n1 * n_max + n2] * c1[n1];
                                    }
                                    hc[base + s2 * n_max + n2] += fl * acc;
                                }
                            }
                        }
                    }
                    if let Some(u) = &mix {
                        // ∂ε/∂c[s] = Σ_q u[q][s] ∂ε/∂c̃[q]
                        h.fill(0.0);
                        for lm in 0..n_lm {
                            for s in 0..ns {
                                let out = &mut h[lm * stride_lm + s * n_max..lm * stride_lm + (s + 1) * n_max];
                                for q in 0..channels {
                                    let w = u[q * ns + s];
                                    let src = &h_mixed[lm * channel_stride + q * n_max..lm * channel_stride + (q + 1) * n_max];
                                    for n in 0..n_max {
                                        out[n] += w * src[n];
                                    }
                                }
                            }
                        }
                    }
                    if positions {
                        share.neighbors.reserve(d.pairs.len());
                    }
                    for (q, pair) in d.pairs.iter().enumerate() {
                        if pair.neighbor.is_none() && !strain {
                            // a periodic image of the centre does not move it
                            continue;
                        }
                        let radial = &d.pair_radial[q * 2 * ln..(q + 1) * 2 * ln];
                        let (alpha, beta) = radial.split_at(ln);
                        let angular = &d.pair_angular[q * 4 * n_lm..(q + 1) * 4 * n_lm];
                        let b = pair.species;
                        // ha[lm] = Σ_n h α, ha[n_lm + lm] = Σ_n h β
                        for l in 0..=l_max {
                            let al = &alpha[l * n_max..(l + 1) * n_max];
                            let be = &beta[l * n_max..(l + 1) * n_max];
                            for lm in l * l..(l + 1) * (l + 1) {
                                let hr = &h[lm * stride_lm + b * n_max..lm * stride_lm + (b + 1) * n_max];
                                let (mut sa, mut sb) = (0.0, 0.0);
                                for n in 0..n_max {
                                    sa += hr[n] * al[n];
                                    sb += hr[n] * be[n];
                                }
                                ha[lm] = sa;
                                ha[n_lm + lm] = sb;
                            }
                        }
                        let (y, rest) = angular.split_at(n_lm);
                        let (dx, rest) = rest.split_at(n_lm);
                        let (dy, dz) = rest.split_at(n_lm);
                        let (mut radial_part, mut gx, mut gy, mut gz) = (0.0, 0.0, 0.0, 0.0);
                        for lm in 0..n_lm {
                            radial_part += ha[lm] * y[lm];
                            let sb = ha[n_lm + lm];
                            gx += sb * dx[lm];
                            gy += sb * dy[lm];
                            gz += sb * dz[lm];
                        }
                        let u = pair.unit;
                        let grad = [radial_part * u[0] + gx, radial_part * u[1] + gy, radial_part * u[2] + gz];
                        if positions {
                            if let Some(kk) = pair.neighbor {
                                share.neighbors.push((d.neighbors[kk].0 as u32, grad));
                                for x in 0..3 {
                                    share.centre[x] -= grad[x];
                                }
                            }
                        }
                        if strain {
                            for a in 0..3 {
                                for bb in 0..3 {
                                    share.virial[3 * a + bb] += pair.vector[a] * grad[bb];
                                }
                            }
                        }
                    }
                    Ok(share)
                },
            )
            .collect::<Result<_>>()?;

        let mut out: Vec<Backpropagated> = systems
            .iter()
            .map(|s| Backpropagated {
                energies: Vec::with_capacity(s.size()),
                gradient: vec![0.0; if positions { 3 * s.size() } else { 0 }],
                virial: [0.0; 9],
                values: Vec::with_capacity(if keep_values { s.size() * nf } else { 0 }),
            })
            .collect();
        for (&(k, i), share) in centres.iter().zip(shares) {
            let o = &mut out[k];
            o.energies.push(share.energy);
            o.values.extend_from_slice(&share.values);
            if positions {
                for (j, g) in share.neighbors {
                    let j = j as usize;
                    for x in 0..3 {
                        o.gradient[3 * j + x] += g[x];
                    }
                }
                for x in 0..3 {
                    o.gradient[3 * i + x] += share.centre[x];
                }
            }
            for (w, v) in o.virial.iter_mut().zip(share.virial) {
                *w += v;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::calculators::SoapPowerSpectrum;
    use crate::math::random::LegacyRandomState;
    use crate::models::{E0, FitOptions, KindOptions, PairOptions, Potential, PredictOptions, Sigmas, SparseMethod, Targets};
    use crate::system::System;

    const HYPERS: &str = r#"{"cutoff": {"radius": 3.5, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        "density": {"type": "Gaussian", "width": 0.4},
        "basis": {"type": "TensorProduct", "max_angular": 3, "radial": {"type": "Gto", "max_radial": 4}, "spline_accuracy": null}}"#;

    /// A rattled fcc cell of 4 atoms (Cu, with one Au when `two` and `seed`
    /// is even), periodic or a free cluster of the same atoms.
    fn structure(seed: u32, two: bool, periodic: bool) -> System {
        let mut rng = LegacyRandomState::new(seed);
        let a = 3.6 + 0.05 * rng.gauss();
        let base = [[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]];
        let mut positions = Vec::new();
        let mut types = Vec::new();
        for (k, b) in base.iter().enumerate() {
            positions.push([a * b[0] + 0.1 * rng.gauss(), a * b[1] + 0.1 * rng.gauss(), a * b[2] + 0.1 * rng.gauss()]);
            types.push(if two && k == 3 && seed % 2 == 0 { 79 } else { 29 });
        }
        if periodic {
            let cell = [[a + 0.05 * rng.gauss(), 0.1 * rng.gauss(), 0.0], [0.0, a, 0.0], [0.05, 0.0, a]];
            System::new(types, positions, cell, [true; 3]).unwrap()
        } else {
            System::new(types, positions, [[0.0; 3]; 3], [false; 3]).unwrap()
        }
    }

    fn targets(systems: &[System]) -> Targets {
        let mut t = Targets { energy: Vec::new(), forces: Some(Vec::new()), stress: Some(Vec::new()), frame_sigmas: Vec::new() };
        for (k, s) in systems.iter().enumerate() {
            t.energy.push(-3.0 * s.size() as f64 + 0.01 * k as f64);
            t.forces.as_mut().unwrap().push((0..3 * s.size()).map(|i| 0.01 * ((i * 7 + k) % 5) as f64 - 0.02).collect());
            t.stress.as_mut().unwrap().push(Some([0.001 * k as f64, 0.0, 0.0, 0.0, 0.002, 0.0, 0.0, 0.0, -0.001]));
        }
        t
    }

    fn fit(systems: &[System], kind: KindOptions, pair: bool) -> Potential {
        fit_with(HYPERS, systems, kind, pair)
    }

    fn fit_with(hypers: &str, systems: &[System], kind: KindOptions, pair: bool) -> Potential {
        let options = FitOptions {
            hypers: hypers.into(),
            kind,
            sigmas: Sigmas { energy: 0.01, forces: 0.1, stress: 0.01 },
            e0: E0::Average,
            batch_atoms: 9,
            cancel: None,
            pair: if pair { Some(PairOptions { cutoff: 3.4, transition: 1.0, theta: 0.4, delta: 0.3, count: 6, jitter: None }) } else { None },
        };
        Potential::fit(systems, &targets(systems), &options).unwrap()
    }

    fn gpr() -> KindOptions {
        KindOptions::SparseGpr { count: 3, counts: vec![], method: SparseMethod::Cur, seed: 0, zeta: 3, delta: 0.5, jitter: 1e-8 }
    }

    /// Largest |a − b| over the largest |b| (1e-300 floor).
    fn relative(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
    }

    /// Backpropagation equals the path through the power-spectrum
    /// gradients: energies (and variances) bit for bit, forces and stress
    /// to 1e-12 of their largest component (only the summation order differs).
    #[test]
    fn equals_the_feature_gradient_path() {
        for two in [false, true] {
            let train: Vec<System> = (0..6).map(|k| structure(k, two, true)).collect();
            let models = [(gpr(), false), (KindOptions::Linear { regularizer: 1e-6 }, false), (gpr(), true)];
            for (kind, pair) in models {
                let p = fit(&train, kind, pair);
                assert!(p.calculator().supports_backpropagation());
                for periodic in [true, false] {
                    // a larger periodic cell too: several images of the same neighbour
                    let mut test: Vec<System> = (20..24).map(|k| structure(k, two, periodic)).collect();
                    test.push(train[0].clone());
                    if !periodic {
                        test.pop();
                    }
                    for variance in [false, true] {
                        let opts = PredictOptions { forces: true, stress: periodic, variance };
                        let new = p.predict_within(&test, &opts, 7, &None, None).unwrap();
                        let old = p.predict_within_features(&test, &opts, 7, &None, None).unwrap();
                        assert_eq!(new.energy, old.energy, "two {two} pair {pair} periodic {periodic}");
                        assert_eq!(new.variance, old.variance);
                        for (k, (f, g)) in new.forces.iter().zip(&old.forces).enumerate() {
                            let e = relative(f, g);
                            assert!(e <= 1e-12, "forces of {k}: {e:e} (two {two} pair {pair} periodic {periodic})");
                        }
                        assert_eq!(new.stress.len(), old.stress.len());
                        for (k, (s, t)) in new.stress.iter().zip(&old.stress).enumerate() {
                            let e = relative(s, t);
                            assert!(e <= 1e-12, "stress of {k}: {e:e} (two {two} pair {pair})");
                        }
                        // stress alone, forces alone
                        if periodic {
                            let only = PredictOptions { forces: false, stress: true, variance: false };
                            let a = p.predict_within(&test, &only, 7, &None, None).unwrap();
                            assert!(a.forces.is_empty());
                            for (s, t) in a.stress.iter().zip(&old.stress) {
                                assert!(relative(s, t) <= 1e-12);
                            }
                        }
                        let only = PredictOptions { forces: true, stress: false, variance: false };
                        let a = p.predict_within(&test, &only, 7, &None, None).unwrap();
                        assert!(a.stress.is_empty());
                        assert_eq!(a.energy, old.energy);
                        for (f, g) in a.forces.iter().zip(&old.forces) {
                            assert!(relative(f, g) <= 1e-12);
                        }
                    }
                }
            }
        }
    }

    /// The forces are not trivially zero, and a species absent from the
    /// test structures (a model of Cu and Au on pure Cu) is handled.
    #[test]
    fn absent_species_and_nonzero_forces() {
        let train: Vec<System> = (0..6).map(|k| structure(k, true, true)).collect();
        let p = fit(&train, gpr(), false);
        let test: Vec<System> = (21..24).step_by(2).map(|k| structure(k, true, true)).collect();
        assert!(test.iter().all(|s| s.types.iter().all(|&t| t == 29)));
        let opts = PredictOptions { forces: true, stress: true, variance: false };
        let new = p.predict_within(&test, &opts, 100, &None, None).unwrap();
        let old = p.predict_within_features(&test, &opts, 100, &None, None).unwrap();
        assert_eq!(new.energy, old.energy);
        for (f, g) in new.forces.iter().zip(&old.forces) {
            assert!(g.iter().any(|v| v.abs() > 1e-3));
            assert!(relative(f, g) <= 1e-12);
        }
    }

    /// A cancelled prediction stops, and unsupported hyper-parameters (a
    /// ragged radial basis) say so instead of computing something else.
    #[test]
    fn cancel_and_unsupported() {
        let train: Vec<System> = (0..6).map(|k| structure(k, false, true)).collect();
        let p = fit(&train, KindOptions::Linear { regularizer: 1e-6 }, false);
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let opts = PredictOptions { forces: true, stress: true, variance: false };
        assert!(p.predict_within(&train, &opts, 100, &Some(flag), None).is_err());
        const RAGGED: &str = r#"{"cutoff": {"radius": 3.5, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
            "density": {"type": "Gaussian", "width": 0.3},
            "basis": {"type": "LaplacianEigenstate", "max_radial": 4, "max_angular": 3}}"#;
        let calc = SoapPowerSpectrum::new(RAGGED).unwrap();
        assert!(!calc.supports_backpropagation());
        let layout = super::JoinedLayout { species: &[29], pairs: &[(29, 29)], block_size: 4 * 16 };
        let err = calc.backpropagate(&train, layout, true, false, false, &Default::default(), |_, x| (0.0, vec![0.0; x.len()])).unwrap_err();
        assert!(err.to_string().contains("one n_max for every l"), "{err}");
    }

    /// Pseudo-elements (`density.alchemical`): ∂ε/∂c̃ is mapped back to the
    /// species, h[s] = Σ_q u[q][s] h̃[q]. The feature path mixes the
    /// coefficients in another order, so energies agree to 1e-13 relative
    /// rather than bit for bit; forces and stress to 1e-12 of their largest
    /// component. Two pseudo-elements of two species, and one (a real
    /// compression), GPR and linear.
    #[test]
    fn pseudo_elements_equal_the_feature_gradient_path() {
        let couplings = ["[[0.5, -0.25], [0.3, 1.0]]", "[[0.8, -0.6]]"];
        let train: Vec<System> = (0..6).map(|k| structure(k, true, true)).collect();
        for coupling in couplings {
            let hypers = format!(
                r#"{{"cutoff": {{"radius": 3.5, "smoothing": {{"type": "ShiftedCosine", "width": 0.5}}}},
                "density": {{"type": "Gaussian", "width": 0.4, "alchemical": {{"types": [29, 79], "coupling": {coupling}}}}},
                "basis": {{"type": "TensorProduct", "max_angular": 3, "radial": {{"type": "Gto", "max_radial": 4}}, "spline_accuracy": null}}}}"#
            );
            for kind in [gpr(), KindOptions::Linear { regularizer: 1e-6 }] {
                let p = fit_with(&hypers, &train, kind, false);
                assert!(p.calculator().supports_backpropagation());
                for periodic in [true, false] {
                    let test: Vec<System> = (20..24).map(|k| structure(k, true, periodic)).collect();
                    let opts = PredictOptions { forces: true, stress: periodic, variance: false };
                    let new = p.predict_within(&test, &opts, 7, &None, None).unwrap();
                    let old = p.predict_within_features(&test, &opts, 7, &None, None).unwrap();
                    for (a, b) in new.energy.iter().zip(&old.energy) {
                        assert!((a - b).abs() <= 1e-13 * b.abs(), "energy {a} vs {b} ({coupling})");
                    }
                    for (k, (f, g)) in new.forces.iter().zip(&old.forces).enumerate() {
                        assert!(g.iter().any(|v| v.abs() > 1e-4));
                        let e = relative(f, g);
                        assert!(e <= 1e-12, "forces of {k}: {e:e} ({coupling}, periodic {periodic})");
                    }
                    assert_eq!(new.stress.len(), old.stress.len());
                    for (s, t) in new.stress.iter().zip(&old.stress) {
                        let e = relative(s, t);
                        assert!(e <= 1e-12, "stress: {e:e} ({coupling})");
                    }
                }
            }
        }
    }
}
