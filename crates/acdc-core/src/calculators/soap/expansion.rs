//! The density expansion engine shared by every SOAP-family calculator:
//! for one centre, the coefficients ⟨s n l m|ρ_i⟩ over all neighbour species
//! s, with their gradients with respect to neighbour positions, the centre
//! position and the strain (docs/CONVENTIONS.md §2, §4).
use std::f64::consts::PI;

use super::density::{cutoff_function, cutoff_value, radial_scaling};
use super::hypers::{ExpansionSettings, Smoothing};
pub use crate::calculators::shared::GradientFlags;
use crate::basis::gto::GtoRadialIntegral;
use crate::basis::tabulated::{tabulate_like_featomic_python, ChannelRadial, RaggedRadialIntegral, TabulatedSpline};
use crate::basis::{RadialIntegral, SplinedRadialIntegral};
use super::hypers::{ExplicitRadial, RadialKind};
use crate::error::{Error, Result};
use crate::math::spherical_harmonics::SphericalHarmonics;
use crate::neighbors::Pairs;

/// One neighbour pair of a centre, for gradients in factored form. The
/// gradient of the pair's coefficients with respect to r_ij is
/// `g[x][lm][n] = α[l][n]·u_x·Y[lm] + β[l][n]·∂Y[lm]/∂û_x`, with α = d(w I)/dr
/// and β = w I / r stored in `pair_radial`, Y and ∂Y/∂û in `pair_angular`.
#[derive(Debug, Clone, Copy)]
pub struct PairGeometry {
    /// Index of this pair's atom in `CentreDensity::neighbors`, or None for
    /// a periodic image of the centre itself.
    pub neighbor: Option<usize>,
    /// Species index of the neighbour.
    pub species: usize,
    /// r_ij in Å.
    pub vector: [f64; 3],
    /// r̂_ij.
    pub unit: [f64; 3],
}

/// Pairs closer than this (Å) are atoms on top of each other: an error.
pub(crate) const COINCIDENT: f64 = 1e-12;

/// A radial integral, either exact or splined.
pub enum Radial {
    /// Exact GTO integrals.
    Exact(GtoRadialIntegral),
    /// Splined GTO or GAP integrals.
    Splined(SplinedRadialIntegral),
    /// Exact integrals of GAP's radial basis.
    Gap(crate::basis::gap::GapRadialIntegral),
    /// A basis with its own radial functions per angular channel
    /// (Laplacian eigenstates, featomic's Explicit), zero-padded.
    Ragged(RaggedRadialIntegral),
}

impl Radial {
    pub(crate) fn get(&self) -> &dyn RadialIntegral {
        match self {
            Radial::Exact(r) => r,
            Radial::Gap(r) => r,
            Radial::Splined(r) => r,
            Radial::Ragged(r) => r,
        }
    }
}

/// Precomputed state of an expansion (basis, splines); shared by threads.
pub struct Expansion {
    /// The validated settings.
    pub settings: ExpansionSettings,
    pub(crate) radial: Radial,
    /// I_n0(0) · Y_0^0 for the centre's own Gaussian, per n.
    centre_term: Vec<f64>,
}

/// Result of expanding the density around one centre. Coefficients are
/// dense over the species of the calculation: layout `[lm][species][n]`
/// where `lm = l² + l + m`.
#[derive(Debug, Clone, Default)]
pub struct CentreDensity {
    /// System index.
    pub system: usize,
    /// Centre atom index.
    pub atom: usize,
    /// Species index (into the calculation's species list) of the centre.
    pub centre_species: usize,
    /// Coefficients `[lm][s][n]`.
    pub coefficients: Vec<f64>,
    /// Whether species s has a neighbour within the cutoff (or is the centre).
    pub present: Vec<bool>,
    /// Neighbour atoms with a gradient row (self-images excluded), sorted by atom: (atom, species).
    pub neighbors: Vec<(usize, usize)>,
    /// ∂coefficients/∂x_neighbor, `[k][xyz][lm][n]` for neighbour k (its own species only).
    pub neighbor_gradients: Vec<f64>,
    /// ∂coefficients/∂x_centre, `[xyz][lm][s][n]`.
    pub centre_gradient: Vec<f64>,
    /// ∂coefficients/∂ε_ab, `[a][b][lm][s][n]`.
    pub strain_gradient: Vec<f64>,
    /// With `pair_factors`: every pair within the cutoff.
    pub pairs: Vec<PairGeometry>,
    /// With `pair_factors`: `[p][α, β][l][n]`.
    pub pair_radial: Vec<f64>,
    /// With `pair_factors`: `[p][Y, ∂Y/∂û_x, ∂Y/∂û_y, ∂Y/∂û_z][lm]`.
    pub pair_angular: Vec<f64>,
}

impl CentreDensity {
    /// Gradient rows of this centre for neighbour species accepted by
    /// `include`: the centre itself (source None) and every neighbour atom of
    /// those species (source Some(k), its index in `neighbors`), sorted by atom.
    pub fn gradient_rows(&self, include: impl Fn(usize) -> bool) -> Vec<(usize, Option<usize>)> {
        let mut atoms: Vec<(usize, Option<usize>)> = self
            .neighbors
            .iter()
            .enumerate()
            .filter(|(_, &(_, species))| include(species))
            .map(|(k, &(atom, _))| (atom, Some(k)))
            .collect();
        atoms.push((self.atom, None));
        atoms.sort_unstable_by_key(|&(atom, _)| atom);
        atoms
    }
}

/// Per-thread scratch for one pair: radial integrals and harmonics.
pub struct Scratch {
    radial: Vec<f64>,
    radial_derivative: Vec<f64>,
    harmonics: Vec<f64>,
    harmonics_gradient: Vec<f64>,
    sph: SphericalHarmonics,
    pair_gradient: Vec<f64>,
    /// The values-only path (see `expansion_values`), with one slot per species.
    values: super::expansion_values::ValuesScratch,
    identity_slots: Vec<usize>,
}

impl Expansion {
    /// Builds the radial basis (and its splines) for these settings.
    pub fn new(settings: ExpansionSettings) -> Result<Expansion> {
        let radial = match &settings.radial {
            RadialKind::Gto => {
                let exact = GtoRadialIntegral::new(settings.max_radial, settings.max_angular, settings.basis_radius, settings.density_width)?;
                match settings.spline_accuracy {
                    None => Radial::Exact(exact),
                    Some(accuracy) => Radial::Splined(SplinedRadialIntegral::new(&exact, settings.cutoff, accuracy)?),
                }
            }
            RadialKind::Gap => {
                let exact = crate::basis::gap::GapRadialIntegral::new(settings.max_radial, settings.max_angular, settings.cutoff, settings.density_width)?;
                match settings.spline_accuracy {
                    None => Radial::Gap(exact),
                    Some(accuracy) => Radial::Splined(SplinedRadialIntegral::new(&exact, settings.cutoff, accuracy)?),
                }
            }
            RadialKind::LaplacianEigenstate { sizes, radius, accuracy } => {
                Radial::Ragged(laplacian_eigenstate(sizes, *radius, &settings, *accuracy)?)
            }
            RadialKind::Explicit(channels) => Radial::Ragged(explicit(channels, &settings)?),
        };
        let n_max = settings.max_radial + 1;
        let mut values = vec![0.0; (settings.max_angular + 1) * n_max];
        radial.get().compute(0.0, &mut values, None);
        let y00 = 0.5 / PI.sqrt();
        let centre_term = values[..n_max].iter().map(|v| v * y00).collect();
        Ok(Expansion { settings, radial, centre_term })
    }

    /// Number of radial functions of each angular channel (ragged bases
    /// have fewer for some l; the coefficients are zero-padded to `n_max`).
    pub fn sizes(&self) -> &[usize] {
        &self.settings.sizes
    }

    /// The spline nodes of the radial integral of every channel l (None for
    /// a channel outside the basis). Errors for exact (unsplined) integrals.
    pub fn node_tables(&self) -> Result<Vec<Option<crate::basis::tabulated::NodeTable>>> {
        match &self.radial {
            Radial::Exact(_) | Radial::Gap(_) => Err(Error::InvalidParameter(
                "basis.spline_accuracy is null: the radial integrals are exact and have no spline nodes".into(),
            )),
            Radial::Splined(s) => Ok((0..=self.settings.max_angular).map(|l| Some(crate::basis::tabulated::NodeTable::from_spline(s.spline(l)))).collect()),
            Radial::Ragged(r) => (0..=self.settings.max_angular).map(|l| r.node_table(l)).collect(),
        }
    }

    /// The tabulated spline of channel `l`, for bases tabulated by acdc or
    /// given as tables.
    pub fn table(&self, l: usize) -> Option<&TabulatedSpline> {
        match &self.radial {
            Radial::Ragged(r) => r.table(l),
            _ => None,
        }
    }

    /// The density weight w(r) = f_c(r)·s(r) of neighbour `j` at r (Å)
    /// from `centre`, and dw/dr, after the checks every pair passes: not on
    /// top of the centre (`shift` names the image in the error), and finite.
    // always inlined (the values-only kernel calls it once per pair), the
    // error messages built out of line
    #[inline(always)]
    pub(crate) fn pair_weight(&self, system_index: usize, centre: usize, j: usize, r: f64, shift: [i32; 3]) -> Result<(f64, f64)> {
        if r < COINCIDENT {
            return Err(coincident(system_index, centre, j, shift));
        }
        let (fc, dfc) = cutoff_function(self.settings.smoothing, self.settings.cutoff, r);
        let (sc, dsc) = radial_scaling(self.settings.scaling, r);
        let weight = fc * sc;
        let dweight = dfc * sc + fc * dsc;
        if !(weight.is_finite() && dweight.is_finite()) {
            return Err(weight_not_finite(system_index, centre, j, r));
        }
        Ok((weight, dweight))
    }

    /// The weight of [`Expansion::pair_weight`] alone, with its errors: the
    /// same value and the same error for every pair.
    ///
    /// Why: without a radial scaling the weight is f_c(r) (times 1.0, the
    /// same bits), and its derivative −π·sin(t)/(2·width) is finite wherever
    /// f_c is, for widths of at least 1e-300 Å (|sin t| ≤ 1), so the check
    /// of both is the check of f_c alone; then only the cosine is computed
    /// ([`cutoff_value`]). Elsewhere (a scaling, a smaller width) this is
    /// `pair_weight`.
    #[inline(always)]
    pub(crate) fn pair_weight_value(&self, system_index: usize, centre: usize, j: usize, r: f64, shift: [i32; 3]) -> Result<f64> {
        let cosine_only = self.settings.scaling.is_none()
            && match self.settings.smoothing {
                Smoothing::Step => true,
                Smoothing::ShiftedCosine { width } => width >= 1e-300,
            };
        if !cosine_only {
            return Ok(self.pair_weight(system_index, centre, j, r, shift)?.0);
        }
        if r < COINCIDENT {
            return Err(coincident(system_index, centre, j, shift));
        }
        let weight = cutoff_value(self.settings.smoothing, self.settings.cutoff, r);
        if !weight.is_finite() {
            return Err(weight_not_finite(system_index, centre, j, r));
        }
        Ok(weight)
    }

    /// I_n0(0) · Y_0^0 for the centre's own Gaussian, per n.
    pub(crate) fn centre_term(&self) -> &[f64] {
        &self.centre_term
    }

    /// Number of radial functions (the largest over the channels).
    pub fn n_max(&self) -> usize {
        self.settings.max_radial + 1
    }

    /// Number of (l, m) channels, (l_max + 1)².
    pub fn n_lm(&self) -> usize {
        (self.settings.max_angular + 1) * (self.settings.max_angular + 1)
    }

    /// Fresh scratch space for one thread.
    pub fn scratch(&self) -> Scratch {
        let n_radial = (self.settings.max_angular + 1) * self.n_max();
        Scratch {
            radial: vec![0.0; n_radial],
            radial_derivative: vec![0.0; n_radial],
            harmonics: vec![0.0; self.n_lm()],
            harmonics_gradient: vec![0.0; 3 * self.n_lm()],
            sph: SphericalHarmonics::new(self.settings.max_angular),
            pair_gradient: vec![0.0; 3 * self.n_lm() * self.n_max()],
            values: self.values_scratch(),
            identity_slots: Vec::new(),
        }
    }

    /// Expands the density around atom `centre` of `system`. `pairs` is the
    /// full neighbour list of the system restricted to this centre (all
    /// entries have `i == centre`, sorted by j), `species_index` maps each
    /// atom to its index in the species list, `n_species` its length.
    #[allow(clippy::too_many_arguments)]
    pub fn expand(
        &self,
        system_index: usize,
        centre: usize,
        pairs: &Pairs,
        range: std::ops::Range<usize>,
        species_index: &[usize],
        n_species: usize,
        gradients: GradientFlags,
        scratch: &mut Scratch,
        out: &mut CentreDensity,
    ) -> Result<()> {
        let n_max = self.n_max();
        let n_lm = self.n_lm();
        let l_max = self.settings.max_angular;
        let stride_s = n_max; // within one lm: [s][n]
        let stride_lm = n_species * n_max;
        out.system = system_index;
        out.atom = centre;
        out.centre_species = species_index[centre];
        reset(&mut out.coefficients, n_lm * stride_lm);
        out.present.clear();
        out.present.resize(n_species, false);
        out.present[out.centre_species] = true;
        out.neighbors.clear();
        out.neighbor_gradients.clear();
        out.pairs.clear();
        out.pair_radial.clear();
        out.pair_angular.clear();
        if gradients.positions {
            // one gradient block per distinct neighbour (images of an atom
            // share it): no reallocation in the pair loop, and no room
            // reserved for the many images of a small periodic cell
            let mut distinct = 0;
            let mut last = u32::MAX;
            for &j in &pairs.j[range.clone()] {
                if j != last && j as usize != centre {
                    distinct += 1;
                }
                last = j;
            }
            out.neighbor_gradients.reserve(distinct * 3 * n_lm * n_max);
        }
        if gradients.pair_factors {
            out.pairs.reserve(range.len());
            out.pair_radial.reserve(range.len() * 2 * (l_max + 1) * n_max);
            out.pair_angular.reserve(range.len() * 4 * n_lm);
        }
        if gradients.positions {
            reset(&mut out.centre_gradient, 3 * n_lm * stride_lm);
        } else {
            out.centre_gradient.clear();
        }
        if gradients.strain {
            reset(&mut out.strain_gradient, 9 * n_lm * stride_lm);
        } else {
            out.strain_gradient.clear();
        }

        // the centre's own Gaussian: only l = 0, no gradient; weighted like a
        // neighbour at r = 0 (as featomic does: s(0) is not 1 for every scaling)
        let w_c = self.settings.center_atom_weight
            * cutoff_function(self.settings.smoothing, self.settings.cutoff, 0.0).0
            * radial_scaling(self.settings.scaling, 0.0).0;
        for n in 0..n_max {
            out.coefficients[out.centre_species * stride_s + n] += w_c * self.centre_term[n];
        }

        let radial = self.radial.get();
        let cutoff = self.settings.cutoff;
        if !(gradients.positions || gradients.strain || gradients.pair_factors) {
            // all pairs at once (expansion_values.rs): the same values, faster
            for p in range.clone() {
                if pairs.distances[p] < cutoff {
                    out.present[species_index[pairs.j[p] as usize]] = true;
                }
            }
            scratch.identity_slots.clear();
            scratch.identity_slots.extend(0..n_species);
            return self.expand_values(
                system_index,
                centre,
                pairs,
                range,
                species_index,
                &scratch.identity_slots,
                n_species,
                &mut scratch.values,
                &mut out.coefficients,
            );
        }
        for p in range {
            let j = pairs.j[p] as usize;
            let r_vec = pairs.vectors[p];
            let r = pairs.distances[p];
            if r >= cutoff {
                continue;
            }
            let (weight, dweight) = self.pair_weight(system_index, centre, j, r, pairs.shifts[p])?;
            let s = species_index[j];
            out.present[s] = true;
            let unit = [r_vec[0] / r, r_vec[1] / r, r_vec[2] / r];
            // without gradients `expand_values` took over above
            radial.compute(r, &mut scratch.radial, Some(&mut scratch.radial_derivative));
            scratch.sph.compute_with_gradients(unit, &mut scratch.harmonics, &mut scratch.harmonics_gradient);
            accumulate_pair(&mut out.coefficients[s * stride_s..], stride_lm, weight, &scratch.harmonics, &scratch.radial, l_max, n_max);
            if gradients.pair_factors {
                let neighbor = if j == centre {
                    None
                } else {
                    if out.neighbors.last().is_none_or(|&(last, _)| last != j) {
                        out.neighbors.push((j, s));
                    }
                    Some(out.neighbors.len() - 1)
                };
                out.pairs.push(PairGeometry { neighbor, species: s, vector: r_vec, unit });
                let (rad, drad) = (&scratch.radial, &scratch.radial_derivative);
                out.pair_radial.extend(rad.iter().zip(drad).map(|(&v, &d)| dweight * v + weight * d));
                out.pair_radial.extend(rad.iter().map(|&v| weight * v / r));
                out.pair_angular.extend_from_slice(&scratch.harmonics[..n_lm]);
                out.pair_angular.extend_from_slice(&scratch.harmonics_gradient[..3 * n_lm]);
                continue;
            }
            // ∂/∂r_ij of w(r) I_nl(r) Y_lm(r̂): [xyz][lm][n]
            let g = &mut scratch.pair_gradient;
            for l in 0..=l_max {
                let rad = &scratch.radial[l * n_max..(l + 1) * n_max];
                let drad = &scratch.radial_derivative[l * n_max..(l + 1) * n_max];
                for lm in l * l..(l + 1) * (l + 1) {
                    let y = scratch.harmonics[lm];
                    for x in 0..3 {
                        // ∇Y(r̂) = (∇_unit Y)/r for the degree-0 homogeneous function Y(r/|r|)
                        let dy = scratch.harmonics_gradient[x * n_lm + lm] / r;
                        let row = &mut g[(x * n_lm + lm) * n_max..][..n_max];
                        for n in 0..n_max {
                            row[n] = (dweight * rad[n] + weight * drad[n]) * unit[x] * y + weight * rad[n] * dy;
                        }
                    }
                }
            }
            // a periodic image of the centre moves with it: no position
            // gradient, but the strain still stretches S·H
            if gradients.positions && j != centre {
                match out.neighbors.last() {
                    Some(&(last, _)) if last == j => {
                        // another periodic image of the same neighbour
                        let block = out.neighbor_gradients.len() - g.len();
                        for (b, v) in out.neighbor_gradients[block..].iter_mut().zip(g.iter()) {
                            *b += v;
                        }
                    }
                    _ => {
                        out.neighbors.push((j, s));
                        out.neighbor_gradients.extend_from_slice(g);
                    }
                }
                for x in 0..3 {
                    for lm in 0..n_lm {
                        let src = &g[(x * n_lm + lm) * n_max..][..n_max];
                        let dst = &mut out.centre_gradient[(x * n_lm + lm) * stride_lm + s * stride_s..][..n_max];
                        for n in 0..n_max {
                            dst[n] -= src[n];
                        }
                    }
                }
            }
            if gradients.strain {
                for a in 0..3 {
                    for b in 0..3 {
                        let ra = r_vec[a];
                        for lm in 0..n_lm {
                            let src = &g[(b * n_lm + lm) * n_max..][..n_max];
                            let dst = &mut out.strain_gradient[((a * 3 + b) * n_lm + lm) * stride_lm + s * stride_s..][..n_max];
                            for n in 0..n_max {
                                dst[n] += ra * src[n];
                            }
                        }
                    }
                }
            }
        }
        // extreme but finite hyper-parameters (a huge center_atom_weight,
        // a scaling that overflows) must not hand out infinities or NaN
        if !out.coefficients.iter().all(|c| c.is_finite()) {
            return Err(Error::Numerical(format!(
                "the density coefficients of atom {centre} of system {system_index} are not finite: \
                 check density.center_atom_weight and density.scaling"
            )));
        }
        Ok(())
    }
}

#[cold]
#[inline(never)]
fn coincident(system_index: usize, centre: usize, j: usize, shift: [i32; 3]) -> Error {
    Error::InvalidSystem(format!("atoms {centre} and {j} of system {system_index} are at the same position (shift {shift:?})"))
}

#[cold]
#[inline(never)]
fn weight_not_finite(system_index: usize, centre: usize, j: usize, r: f64) -> Error {
    Error::Numerical(format!(
        "the density weight of atom {j} around atom {centre} of system {system_index} (r = {r} Å) is not finite: \
         density.scaling overflows at this distance"
    ))
}

/// The Laplacian-eigenstate integrals, tabulated per channel with
/// featomic's Python rule on [0, cutoff].
fn laplacian_eigenstate(sizes: &[usize], radius: f64, settings: &ExpansionSettings, accuracy: f64) -> Result<RaggedRadialIntegral> {
    let le = crate::basis::laplacian::LaplacianEigenstate::new(sizes.to_vec(), radius)?;
    let tables = if settings.dirac_delta {
        tabulate_like_featomic_python(0.0, settings.cutoff, sizes, accuracy, |r, v, d| le.delta_integrals(r, v, d))?
    } else {
        let gaussian = le.gaussian(settings.density_width)?;
        tabulate_like_featomic_python(0.0, settings.cutoff, sizes, accuracy, |r, v, d| gaussian.compute(r, v, d))?
    };
    Ok(RaggedRadialIntegral::new(sizes.to_vec(), tables.into_iter().map(ChannelRadial::Tabulated).collect()))
}

/// featomic's Explicit basis: per channel a table or its own GTO set.
fn explicit(channels: &[Option<ExplicitRadial>], settings: &ExpansionSettings) -> Result<RaggedRadialIntegral> {
    let mut out = Vec::with_capacity(channels.len());
    for (l, channel) in channels.iter().enumerate() {
        out.push(match channel {
            None => ChannelRadial::Absent,
            Some(ExplicitRadial::Tabulated { points }) => {
                let points = points.iter().map(|p| (p.position, p.values.clone(), p.derivatives.clone())).collect();
                ChannelRadial::Tabulated(TabulatedSpline::new(&format!("basis.by_angular.{l}"), points)?)
            }
            Some(ExplicitRadial::Gto { max_radial, .. }) => {
                let exact = GtoRadialIntegral::new(*max_radial, l, settings.cutoff, settings.density_width)?;
                match settings.spline_accuracy {
                    None => ChannelRadial::Exact(std::sync::Arc::new(exact)),
                    Some(accuracy) => ChannelRadial::Native(SplinedRadialIntegral::new(&exact, settings.cutoff, accuracy)?.into_channel(l)),
                }
            }
        });
    }
    Ok(RaggedRadialIntegral::new(settings.sizes.clone(), out))
}

/// `c + a · b`, as one fused multiply-add (one rounding) when `FMA`, else
/// as a product then a sum. Kernels take `FMA = true` only where the CPU has
/// the instruction (checked once at run time; the software `mul_add` is slow);
/// the values-only path and the pair-by-pair path choose alike, so their
/// coefficients stay bitwise equal on any one machine.
#[inline(always)]
pub(super) fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        c + a * b
    }
}

/// `c[lm * stride_lm + n] += (weight · Y[lm]) · R[l][n]`: one pair's
/// contribution to the coefficients of its species (`c` starts at that
/// species' row). The hot loop of the expansion without gradients. The
/// radial size is a compile-time constant for common sizes and, on x86-64
/// machines that have them, AVX2 and FMA are used (checked once at run
/// time), as by the values-only path ([`madd`]).
#[inline]
fn accumulate_pair(c: &mut [f64], stride_lm: usize, weight: f64, harmonics: &[f64], radial: &[f64], l_max: usize, n_max: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::math::cpu::has_avx2_fma() {
            // SAFETY: the CPU supports the features this function is compiled for
            unsafe { accumulate_pair_fma(c, stride_lm, weight, harmonics, radial, l_max, n_max) };
            return;
        }
        if crate::math::cpu::has_avx2() {
            // SAFETY: the CPU supports the features this function is compiled for
            unsafe { accumulate_pair_avx2(c, stride_lm, weight, harmonics, radial, l_max, n_max) };
            return;
        }
    }
    accumulate_pair_dispatch::<false>(c, stride_lm, weight, harmonics, radial, l_max, n_max);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn accumulate_pair_fma(c: &mut [f64], stride_lm: usize, weight: f64, harmonics: &[f64], radial: &[f64], l_max: usize, n_max: usize) {
    accumulate_pair_dispatch::<true>(c, stride_lm, weight, harmonics, radial, l_max, n_max);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn accumulate_pair_avx2(c: &mut [f64], stride_lm: usize, weight: f64, harmonics: &[f64], radial: &[f64], l_max: usize, n_max: usize) {
    accumulate_pair_dispatch::<false>(c, stride_lm, weight, harmonics, radial, l_max, n_max);
}

#[inline(always)]
fn accumulate_pair_dispatch<const FMA: bool>(c: &mut [f64], stride_lm: usize, weight: f64, harmonics: &[f64], radial: &[f64], l_max: usize, n_max: usize) {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match n_max {
                $($n => accumulate_pair_fixed::<$n, FMA>(c, stride_lm, weight, harmonics, radial, l_max),)*
                _ => accumulate_pair_any::<FMA>(c, stride_lm, weight, harmonics, radial, l_max, n_max),
            }
        };
    }
    fixed!(4 5 6 7 8 9 10 11 12 16)
}

#[inline(always)]
fn accumulate_pair_fixed<const N: usize, const FMA: bool>(c: &mut [f64], stride_lm: usize, weight: f64, harmonics: &[f64], radial: &[f64], l_max: usize) {
    for l in 0..=l_max {
        let rad: &[f64; N] = radial[l * N..(l + 1) * N].try_into().expect("N values");
        for lm in l * l..(l + 1) * (l + 1) {
            let y = weight * harmonics[lm];
            let row: &mut [f64; N] = (&mut c[lm * stride_lm..lm * stride_lm + N]).try_into().expect("N values");
            for n in 0..N {
                row[n] = madd::<FMA>(y, rad[n], row[n]);
            }
        }
    }
}

#[inline(always)]
fn accumulate_pair_any<const FMA: bool>(c: &mut [f64], stride_lm: usize, weight: f64, harmonics: &[f64], radial: &[f64], l_max: usize, n_max: usize) {
    for l in 0..=l_max {
        let rad = &radial[l * n_max..(l + 1) * n_max];
        for lm in l * l..(l + 1) * (l + 1) {
            let y = weight * harmonics[lm];
            let row = &mut c[lm * stride_lm..][..n_max];
            for n in 0..n_max {
                row[n] = madd::<FMA>(y, rad[n], row[n]);
            }
        }
    }
}

fn reset(v: &mut Vec<f64>, len: usize) {
    v.clear();
    v.resize(len, 0.0);
}
