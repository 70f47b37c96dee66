//! The density coefficients ⟨s n l m|ρ_i⟩ of one centre without gradients,
//! computed over all the centre's pairs at once.
//!
//! Why batched: one pair at a time, every one of the (l_max + 1)² · n_max
//! multiply-adds of a pair loads and stores its coefficient, so the loop is
//! bound by memory operations, not arithmetic. Here the pairs within the
//! cutoff are gathered first and grouped by neighbour species (keeping
//! their order), the radial integrals and the harmonics of all of them are
//! evaluated (the harmonics one pair per SIMD lane), and the coefficients
//! of each species are then a small matrix product per l,
//! C_l[m][n] += Σ_p (w_p Y_lm(r̂_p)) R_nl(r_p), with a block of rows of C_l
//! held in registers across the pairs.
//!
//! Every coefficient is the sum of the same products, in the same order
//! (the centre's own term, then the pairs in neighbour-list order), as the
//! pair-by-pair loop of [`Expansion::expand`] computes them with gradients,
//! so the values are bitwise equal with and without gradients.
use super::density::{cutoff_function, radial_scaling};
use super::expansion::{madd, Expansion, Radial};
use crate::basis::RadialIntegral;
use crate::error::{Error, Result};
use crate::math::spherical_harmonics::{unit_vector, SphericalHarmonics};
use crate::neighbors::Pairs;

/// Rows of C_l held in registers at once (4 × n_max = 32 doubles for
/// n_max = 8: eight AVX2 registers).
const ROWS: usize = 4;

/// Per-thread buffers of [`Expansion::expand_values`], grown on demand.
pub struct ValuesScratch {
    /// Pairs within the cutoff, in neighbour-list order: slot, r (Å),
    /// density weight, and the direction as `SphericalHarmonics` uses it.
    slot: Vec<usize>,
    distance: Vec<f64>,
    weight: Vec<f64>,
    unit: Vec<[f64; 3]>,
    /// The same pairs grouped by slot (stable): r, weight, direction.
    r: Vec<f64>,
    w: Vec<f64>,
    ux: Vec<f64>,
    uy: Vec<f64>,
    uz: Vec<f64>,
    /// Pairs of slot s are `slot_start[s]..slot_start[s + 1]` of the grouped arrays.
    slot_start: Vec<usize>,
    /// Next free place of each slot while grouping.
    next: Vec<usize>,
    /// Radial integrals of the grouped pairs, `[p][l][n]`.
    radial: Vec<f64>,
    /// Radial derivatives of one pair (unsplined integrals only).
    derivatives: Vec<f64>,
    /// w_p Y_lm(r̂_p) of the grouped pairs, `[lm][p]`.
    harmonics: Vec<f64>,
    sph_scratch: Vec<f64>,
    sph: SphericalHarmonics,
}

impl ValuesScratch {
    /// Empty buffers for an expansion up to `max_angular`.
    pub fn new(max_angular: usize) -> ValuesScratch {
        ValuesScratch {
            slot: Vec::new(),
            distance: Vec::new(),
            weight: Vec::new(),
            unit: Vec::new(),
            r: Vec::new(),
            w: Vec::new(),
            ux: Vec::new(),
            uy: Vec::new(),
            uz: Vec::new(),
            slot_start: Vec::new(),
            next: Vec::new(),
            radial: Vec::new(),
            derivatives: Vec::new(),
            harmonics: Vec::new(),
            sph_scratch: Vec::new(),
            sph: SphericalHarmonics::new(max_angular),
        }
    }
}

impl Expansion {
    /// Fresh [`ValuesScratch`] for one thread.
    pub fn values_scratch(&self) -> ValuesScratch {
        ValuesScratch::new(self.settings.max_angular)
    }

    /// The coefficients of atom `centre` of a system into `coefficients`,
    /// laid out `[lm][slot][n]` with `n_slots` slots per (l, m); the
    /// neighbour species with index s goes to slot `slot_of[s]`, and a pair
    /// whose species has no slot (`usize::MAX`) is an error in the caller:
    /// every species within the cutoff must have one. `pairs` and `range`
    /// are as for [`Expansion::expand`]. Returns nothing else: presence of
    /// species is the caller's (it chose the slots).
    #[allow(clippy::too_many_arguments)]
    pub fn expand_values(
        &self,
        system_index: usize,
        centre: usize,
        pairs: &Pairs,
        range: std::ops::Range<usize>,
        species_index: &[usize],
        slot_of: &[usize],
        n_slots: usize,
        scratch: &mut ValuesScratch,
        coefficients: &mut [f64],
    ) -> Result<()> {
        #[cfg(target_arch = "x86_64")]
        {
            // the same choice as the pair-by-pair path (expansion.rs,
            // accumulate_pair), so that values stay bitwise equal to it
            if crate::math::cpu::has_avx2_fma() {
                // SAFETY: the CPU supports the features this function is compiled for
                return unsafe {
                    self.expand_values_fma(system_index, centre, pairs, range, species_index, slot_of, n_slots, scratch, coefficients)
                };
            }
            if crate::math::cpu::has_avx2() {
                // SAFETY: the CPU supports the features this function is compiled for
                return unsafe {
                    self.expand_values_avx2(system_index, centre, pairs, range, species_index, slot_of, n_slots, scratch, coefficients)
                };
            }
        }
        self.expand_values_generic::<false>(system_index, centre, pairs, range, species_index, slot_of, n_slots, scratch, coefficients)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn expand_values_fma(
        &self,
        system_index: usize,
        centre: usize,
        pairs: &Pairs,
        range: std::ops::Range<usize>,
        species_index: &[usize],
        slot_of: &[usize],
        n_slots: usize,
        scratch: &mut ValuesScratch,
        coefficients: &mut [f64],
    ) -> Result<()> {
        self.expand_values_generic::<true>(system_index, centre, pairs, range, species_index, slot_of, n_slots, scratch, coefficients)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn expand_values_avx2(
        &self,
        system_index: usize,
        centre: usize,
        pairs: &Pairs,
        range: std::ops::Range<usize>,
        species_index: &[usize],
        slot_of: &[usize],
        n_slots: usize,
        scratch: &mut ValuesScratch,
        coefficients: &mut [f64],
    ) -> Result<()> {
        self.expand_values_generic::<false>(system_index, centre, pairs, range, species_index, slot_of, n_slots, scratch, coefficients)
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn expand_values_generic<const FMA: bool>(
        &self,
        system_index: usize,
        centre: usize,
        pairs: &Pairs,
        range: std::ops::Range<usize>,
        species_index: &[usize],
        slot_of: &[usize],
        n_slots: usize,
        scratch: &mut ValuesScratch,
        coefficients: &mut [f64],
    ) -> Result<()> {
        let n_max = self.n_max();
        let n_lm = self.n_lm();
        let l_max = self.settings.max_angular;
        let stride_lm = n_slots * n_max;
        let coefficients = &mut coefficients[..n_lm * stride_lm];
        coefficients.fill(0.0);

        // the centre's own Gaussian, as in `expand`
        let centre_slot = slot_of[species_index[centre]];
        let w_c = self.settings.center_atom_weight
            * cutoff_function(self.settings.smoothing, self.settings.cutoff, 0.0).0
            * radial_scaling(self.settings.scaling, 0.0).0;
        for (n, term) in self.centre_term().iter().enumerate() {
            coefficients[centre_slot * n_max + n] += w_c * term;
        }

        // 1. the pairs within the cutoff, with the checks of `expand`
        let s = scratch;
        s.slot.clear();
        s.distance.clear();
        s.weight.clear();
        s.unit.clear();
        let cutoff = self.settings.cutoff;
        for p in range {
            let r = pairs.distances[p];
            if r >= cutoff {
                continue;
            }
            let j = pairs.j[p] as usize;
            let (weight, _) = self.pair_weight(system_index, centre, j, r, pairs.shifts[p])?;
            let v = pairs.vectors[p];
            let slot = slot_of[species_index[j]];
            debug_assert!(slot < n_slots, "species {} has no slot", species_index[j]);
            s.slot.push(slot);
            s.distance.push(r);
            s.weight.push(weight);
            s.unit.push(unit_vector([v[0] / r, v[1] / r, v[2] / r]));
        }

        // 2. grouped by slot, neighbour-list order kept within a slot
        let count = s.slot.len();
        s.slot_start.clear();
        s.slot_start.resize(n_slots + 1, 0);
        for &slot in &s.slot {
            s.slot_start[slot + 1] += 1;
        }
        for k in 0..n_slots {
            s.slot_start[k + 1] += s.slot_start[k];
        }
        for v in [&mut s.r, &mut s.w, &mut s.ux, &mut s.uy, &mut s.uz] {
            set_len_for_overwrite(v, count);
        }
        {
            s.next.clear();
            s.next.extend_from_slice(&s.slot_start);
            for p in 0..count {
                let q = s.next[s.slot[p]];
                s.next[s.slot[p]] += 1;
                s.r[q] = s.distance[p];
                s.w[q] = s.weight[p];
                s.ux[q] = s.unit[p][0];
                s.uy[q] = s.unit[p][1];
                s.uz[q] = s.unit[p][2];
            }
        }

        // 3. radial integrals, [p][l][n]
        let ln = (l_max + 1) * n_max;
        set_len_for_overwrite(&mut s.radial, count * ln);
        match &self.radial {
            Radial::Splined(spline) => {
                // unrolled per channel for the common n_max; the same bits
                // as `compute`, which the gradient path calls
                macro_rules! fixed {
                    ($($n:literal)*) => {
                        match n_max {
                            $($n => {
                                for (r, out) in s.r.iter().zip(s.radial.chunks_exact_mut(ln)) {
                                    spline.compute_values_fixed::<$n>(*r, out);
                                }
                            })*
                            _ => {
                                for (p, &r) in s.r.iter().enumerate() {
                                    spline.compute(r, &mut s.radial[p * ln..(p + 1) * ln], None);
                                }
                            }
                        }
                    };
                }
                fixed!(4 6 8 10 12 16);
            }
            other => {
                // exact integrals may round differently when derivatives are
                // asked for: ask, so that values match the gradient path
                let radial = other.get();
                s.derivatives.clear();
                s.derivatives.resize(ln, 0.0);
                for (p, &r) in s.r.iter().enumerate() {
                    radial.compute(r, &mut s.radial[p * ln..(p + 1) * ln], Some(&mut s.derivatives));
                }
            }
        }

        // 4. w_p Y_lm(r̂_p), [lm][p]
        set_len_for_overwrite(&mut s.harmonics, n_lm * count);
        set_len_for_overwrite(&mut s.sph_scratch, 4 * count);
        s.sph.compute_batch(&s.ux, &s.uy, &s.uz, &mut s.sph_scratch, &mut s.harmonics);
        for row in s.harmonics.chunks_exact_mut(count.max(1)) {
            for (y, &w) in row.iter_mut().zip(&s.w) {
                *y = w * *y;
            }
        }

        // 5. C_l += Yᵀ R per slot and l
        for slot in 0..n_slots {
            let pairs = s.slot_start[slot]..s.slot_start[slot + 1];
            if pairs.is_empty() {
                continue;
            }
            let c = &mut coefficients[slot * n_max..];
            macro_rules! fixed {
                ($($n:literal)*) => {
                    match n_max {
                        $($n => accumulate_fixed::<$n, FMA>(c, stride_lm, l_max, &s.harmonics, count, &s.radial, ln, pairs),)*
                        _ => accumulate_any::<FMA>(c, stride_lm, l_max, n_max, &s.harmonics, count, &s.radial, ln, pairs),
                    }
                };
            }
            fixed!(4 5 6 7 8 9 10 11 12 16);
        }

        if !coefficients.iter().all(|c| c.is_finite()) {
            return Err(Error::Numerical(format!(
                "the density coefficients of atom {centre} of system {system_index} are not finite: \
                 check density.center_atom_weight and density.scaling"
            )));
        }
        Ok(())
    }
}

/// Makes `v` `len` long for a writer that assigns every element before
/// reading it: the old contents are kept and only the elements past the
/// previous length are zeroed (a few pairs' worth from one centre to the
/// next). Why: clearing and re-zeroing the
/// per-centre buffers (radial integrals, harmonics: ~24 kB for a si512
/// centre) cost a memset per buffer and centre, 11 per centre, more
/// instructions than the contraction itself (callgrind, si512).
#[inline]
fn set_len_for_overwrite(v: &mut Vec<f64>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    } else {
        v.truncate(len);
    }
}

/// `c[lm][n] += Σ_p yw[lm][p] · radial[p][l][n]` for the pairs `pairs`, `c`
/// starting at this slot (rows `stride_lm` apart), with N = n_max known at
/// compile time.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn accumulate_fixed<const N: usize, const FMA: bool>(
    c: &mut [f64],
    stride_lm: usize,
    l_max: usize,
    yw: &[f64],
    count: usize,
    radial: &[f64],
    ln: usize,
    pairs: std::ops::Range<usize>,
) {
    for l in 0..=l_max {
        let end = (l + 1) * (l + 1);
        let mut lm = l * l;
        while lm < end {
            let rows = (end - lm).min(ROWS);
            match rows {
                4 => block::<N, 4, FMA>(c, stride_lm, lm, l, yw, count, radial, ln, pairs.clone()),
                3 => block::<N, 3, FMA>(c, stride_lm, lm, l, yw, count, radial, ln, pairs.clone()),
                2 => block::<N, 2, FMA>(c, stride_lm, lm, l, yw, count, radial, ln, pairs.clone()),
                _ => block::<N, 1, FMA>(c, stride_lm, lm, l, yw, count, radial, ln, pairs.clone()),
            }
            lm += rows;
        }
    }
}

/// K rows (lm0 … lm0 + K − 1, all of degree l) of C kept in registers
/// while the pairs stream through.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block<const N: usize, const K: usize, const FMA: bool>(
    c: &mut [f64],
    stride_lm: usize,
    lm0: usize,
    l: usize,
    yw: &[f64],
    count: usize,
    radial: &[f64],
    ln: usize,
    pairs: std::ops::Range<usize>,
) {
    #[cfg(target_arch = "x86_64")]
    if FMA && N % 4 == 0 && N <= 16 {
        // the compiler kept this kernel's accumulators in scalar registers
        // and the stack (profile of si512); explicit vectors, the same fused
        // multiply-adds in the same order, so the same bits
        // SAFETY: FMA is true only under expand_values_fma, which runs only
        // where the CPU has AVX2 and FMA
        unsafe { block_fma::<N, K>(c, stride_lm, lm0, l, yw, count, radial, ln, pairs) };
        return;
    }
    let mut acc = [[0.0f64; N]; K];
    for (k, row) in acc.iter_mut().enumerate() {
        row.copy_from_slice(&c[(lm0 + k) * stride_lm..(lm0 + k) * stride_lm + N]);
    }
    let (start, end) = (pairs.start, pairs.end);
    assert!((l + 1) * N <= ln && end * ln <= radial.len() && (lm0 + K) * count <= yw.len() && end <= count);
    let ys: [&[f64]; K] = std::array::from_fn(|k| &yw[(lm0 + k) * count + start..(lm0 + k) * count + end]);
    for (q, pair) in radial[start * ln..end * ln].chunks_exact(ln).enumerate() {
        let r: &[f64; N] = pair[l * N..(l + 1) * N].try_into().expect("N values");
        for k in 0..K {
            // SAFETY: q < end − start = ys[k].len() (one chunk per pair)
            let y = unsafe { *ys[k].get_unchecked(q) };
            for n in 0..N {
                acc[k][n] = madd::<FMA>(y, r[n], acc[k][n]);
            }
        }
    }
    for (k, row) in acc.iter().enumerate() {
        c[(lm0 + k) * stride_lm..(lm0 + k) * stride_lm + N].copy_from_slice(row);
    }
}

/// [`block`] with AVX2 vectors of 4 values, for N a multiple of 4 up to 16:
/// each accumulator is `fma(y, r, acc)` per element, as in [`block`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn block_fma<const N: usize, const K: usize>(
    c: &mut [f64],
    stride_lm: usize,
    lm0: usize,
    l: usize,
    yw: &[f64],
    count: usize,
    radial: &[f64],
    ln: usize,
    pairs: std::ops::Range<usize>,
) {
    use std::arch::x86_64::{__m256d, _mm256_fmadd_pd, _mm256_loadu_pd, _mm256_set1_pd, _mm256_setzero_pd, _mm256_storeu_pd};
    const W: usize = 4;
    let lanes = N / W;
    let (start, end) = (pairs.start, pairs.end);
    assert!(N % W == 0 && lanes <= 4);
    assert!((l + 1) * N <= ln && end * ln <= radial.len() && (lm0 + K) * count <= yw.len() && end <= count);
    assert!((lm0 + K - 1) * stride_lm + N <= c.len());
    // SAFETY (every access below): rows lm0..lm0 + K of `c` hold N values
    // from (lm0 + k) · stride_lm, pair p's radial values of degree l are
    // radial[p · ln + l · N..][..N], and yw[(lm0 + k) · count + p] exists for
    // p < end (the asserts above)
    let mut acc: [[__m256d; 4]; K] = [[_mm256_setzero_pd(); 4]; K];
    for (k, row) in acc.iter_mut().enumerate() {
        for (v, a) in row.iter_mut().enumerate().take(lanes) {
            *a = _mm256_loadu_pd(c.as_ptr().add((lm0 + k) * stride_lm + v * W));
        }
    }
    for p in start..end {
        let rp = radial.as_ptr().add(p * ln + l * N);
        let mut r = [_mm256_setzero_pd(); 4];
        for (v, x) in r.iter_mut().enumerate().take(lanes) {
            *x = _mm256_loadu_pd(rp.add(v * W));
        }
        for (k, row) in acc.iter_mut().enumerate() {
            let y = _mm256_set1_pd(*yw.get_unchecked((lm0 + k) * count + p));
            for v in 0..lanes {
                row[v] = _mm256_fmadd_pd(y, r[v], row[v]);
            }
        }
    }
    for (k, row) in acc.iter().enumerate() {
        for (v, a) in row.iter().enumerate().take(lanes) {
            _mm256_storeu_pd(c.as_mut_ptr().add((lm0 + k) * stride_lm + v * W), *a);
        }
    }
}

/// [`accumulate_fixed`] for any n_max.
#[allow(clippy::too_many_arguments)]
fn accumulate_any<const FMA: bool>(
    c: &mut [f64],
    stride_lm: usize,
    l_max: usize,
    n_max: usize,
    yw: &[f64],
    count: usize,
    radial: &[f64],
    ln: usize,
    pairs: std::ops::Range<usize>,
) {
    for l in 0..=l_max {
        for lm in l * l..(l + 1) * (l + 1) {
            let row = &mut c[lm * stride_lm..lm * stride_lm + n_max];
            for p in pairs.clone() {
                let y = yw[lm * count + p];
                let r = &radial[p * ln + l * n_max..p * ln + (l + 1) * n_max];
                for (o, &v) in row.iter_mut().zip(r) {
                    *o = madd::<FMA>(y, v, *o);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::calculators::tests_utils::{molecule, triclinic};
    use crate::calculators::{Calculator, ComputeOptions, SoapPowerSpectrum, SphericalExpansion};

    fn hypers(basis: &str, scaling: &str) -> String {
        format!(
            r#"{{"cutoff": {{"radius": 3.5, "smoothing": {{"type": "ShiftedCosine", "width": 0.5}}}},
                "density": {{"type": "Gaussian", "width": 0.35{scaling}}}, "basis": {basis}}}"#
        )
    }

    /// The batched values-only path gives bitwise the values of the
    /// pair-by-pair path that runs with gradients: GTO (splined, exact,
    /// n_max in and out of the fixed-size kernels), Laplacian eigenstates,
    /// a radial scaling, a molecule and a cell thinner than the cutoff.
    #[test]
    fn values_equal_the_gradient_path_bitwise() {
        let bases = [
            r#"{"type": "TensorProduct", "max_angular": 6, "radial": {"type": "Gto", "max_radial": 7}}"#,
            r#"{"type": "TensorProduct", "max_angular": 3, "radial": {"type": "Gto", "max_radial": 2}}"#,
            r#"{"type": "TensorProduct", "max_angular": 2, "radial": {"type": "Gto", "max_radial": 5}}"#,
            r#"{"type": "TensorProduct", "max_angular": 0, "radial": {"type": "Gto", "max_radial": 12}}"#,
            r#"{"type": "TensorProduct", "max_angular": 4, "radial": {"type": "Gto", "max_radial": 4}, "spline_accuracy": null}"#,
            r#"{"type": "LaplacianEigenstate", "max_radial": 4, "max_angular": 3}"#,
        ];
        let scalings = ["", r#", "scaling": {"type": "Willatt2018", "rate": 1.2, "scale": 2.0, "exponent": 3}"#];
        let with_gradients = ComputeOptions { gradients: vec!["positions".into()], ..Default::default() };
        for basis in bases {
            for scaling in scalings {
                let h = hypers(basis, scaling);
                let calculators: [Box<dyn Calculator>; 2] =
                    [Box::new(SphericalExpansion::new(&h).unwrap()), Box::new(SoapPowerSpectrum::new(&h).unwrap())];
                for calc in &calculators {
                    let systems = [molecule(), triclinic()];
                    let values = calc.compute(&systems, &ComputeOptions::default()).unwrap();
                    let reference = calc.compute(&systems, &with_gradients).unwrap();
                    assert_eq!(values.keys, reference.keys, "{} {h}", calc.name());
                    for (a, b) in values.blocks.iter().zip(&reference.blocks) {
                        assert_eq!(a.samples, b.samples);
                        assert_eq!(a.values.len(), b.values.len());
                        for (x, y) in a.values.iter().zip(&b.values) {
                            assert_eq!(x.to_bits(), y.to_bits(), "{} {h}: {x} != {y}", calc.name());
                        }
                    }
                }
            }
        }
    }
}
