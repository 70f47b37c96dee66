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
use super::density::{cutoff_function, radial_scaling, unit_weight_below};
use super::expansion::COINCIDENT;
use super::expansion::{madd, Expansion, Radial};
use crate::basis::RadialIntegral;
use crate::error::{Error, Result};
use crate::math::spherical_harmonics::{unit_vector, SphericalHarmonics};
use crate::neighbors::Pairs;

/// Rows of C_l held in registers at once for n_max = N: as many as fit in
/// 12 of the 16 AVX2 registers (the rest hold the pair's radial values and
/// the broadcast harmonic): 6 × 8 doubles for n_max = 8, 8 × 4 for
/// n_max = 4 (4 rows otherwise, as before). Why: with 4 rows
/// for every N, l = 6 took 4 passes over the pairs (4 + 4 + 4 + 1 rows),
/// each reloading the radial values; with 6, 3 passes (6 + 6 + 1). The
/// accumulators are independent, so the bits do not depend on the blocking.
const fn rows_for(n: usize) -> usize {
    match n {
        4 => 8,
        8 => 6,
        _ => 4,
    }
}

/// Per-thread buffers of [`Expansion::expand_values`], grown on demand.
pub struct ValuesScratch {
    /// Pairs within the cutoff, in neighbour-list order (the first `count`
    /// of it; the rest is stale): index into the centre's pairs and slot.
    kept: Vec<(usize, usize)>,
    /// The same pairs grouped by slot (stable), padded with idle lanes to a
    /// multiple of 4 (r = 1, weight 0, direction +z): vector r_ij (Å),
    /// r (Å), density weight.
    vx: Vec<f64>,
    vy: Vec<f64>,
    vz: Vec<f64>,
    r: Vec<f64>,
    w: Vec<f64>,
    /// Pairs of slot s are `slot_start[s]..slot_start[s + 1]` of the grouped arrays.
    slot_start: Vec<usize>,
    /// Next free place of each slot while grouping.
    next: Vec<usize>,
    /// Radial integrals of the grouped pairs, `[p][l][n]`.
    radial: Vec<f64>,
    /// Radial derivatives of one pair (unsplined integrals only).
    derivatives: Vec<f64>,
    /// w_p Y_lm(r̂_p) of the grouped pairs, `[lm][p]` (padded rows).
    harmonics: Vec<f64>,
    /// Directions, for machines without AVX2 (`compute_batch`).
    ux: Vec<f64>,
    uy: Vec<f64>,
    uz: Vec<f64>,
    sph_scratch: Vec<f64>,
    sph: SphericalHarmonics,
}

impl ValuesScratch {
    /// Empty buffers for an expansion up to `max_angular`.
    pub fn new(max_angular: usize) -> ValuesScratch {
        ValuesScratch {
            kept: Vec::new(),
            vx: Vec::new(),
            vy: Vec::new(),
            vz: Vec::new(),
            r: Vec::new(),
            w: Vec::new(),
            slot_start: Vec::new(),
            next: Vec::new(),
            radial: Vec::new(),
            derivatives: Vec::new(),
            harmonics: Vec::new(),
            ux: Vec::new(),
            uy: Vec::new(),
            uz: Vec::new(),
            sph_scratch: Vec::new(),
            sph: SphericalHarmonics::new(max_angular),
        }
    }
}

/// The AVX2 entry points of [`Expansion::expand_values`]: one body, compiled
/// once per feature set.
macro_rules! simd_entry {
    ($name:ident, $features:literal, $fma:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name(
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
            self.expand_values_generic::<$fma, true>(system_index, centre, pairs, range, species_index, slot_of, n_slots, scratch, coefficients)
        }
    };
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
            // accumulate_pair, and the spline's `fused`), so that values
            // stay bitwise equal to it
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
        self.expand_values_generic::<false, false>(system_index, centre, pairs, range, species_index, slot_of, n_slots, scratch, coefficients)
    }

    simd_entry!(expand_values_fma, "avx2,fma", true);
    simd_entry!(expand_values_avx2, "avx2", false);

    /// The body of [`Expansion::expand_values`]: `FMA` where the CPU has
    /// fused multiply-adds (accumulation and spline), `AVX2` where it has
    /// AVX2 (harmonics four pairs at a time).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn expand_values_generic<const FMA: bool, const AVX2: bool>(
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
        // Where the accumulation runs in AVX2 registers (`block_fma`), the
        // rows of degree l ≥ 1 start from +0.0 in registers and are stored
        // once, so only the l = 0 rows (which take the centre's term first)
        // are zeroed here, and the rows of a slot without pairs below.
        // Why: zeroing all of them (3 kB per si512 centre, a `rep stos` in
        // glibc's memset) and loading them back cost about as much as the
        // harmonics' last block. fma(y, r, +0.0) from a register or from
        // memory is the same operation, so the bits do not change.
        let fresh = cfg!(target_arch = "x86_64") && FMA && n_max % 4 == 0 && n_max <= 16;
        if fresh {
            coefficients[..stride_lm].fill(0.0);
        } else {
            coefficients.fill(0.0);
        }

        // the centre's own Gaussian, as in `expand`
        let centre_slot = slot_of[species_index[centre]];
        let w_c = self.settings.center_atom_weight
            * cutoff_function(self.settings.smoothing, self.settings.cutoff, 0.0).0
            * radial_scaling(self.settings.scaling, 0.0).0;
        for (n, term) in self.centre_term().iter().enumerate() {
            coefficients[centre_slot * n_max + n] += w_c * term;
        }

        // 1. the pairs within the cutoff and their slots, counted per slot
        // (one slot: every pair is in it, in order, and step 2 reads the
        // pairs directly, without the species look-ups or this list)
        let s = scratch;
        let cutoff = self.settings.cutoff;
        let (distances, neighbours) = (&pairs.distances[range.clone()], &pairs.j[range.clone()]);
        let (vectors, shifts) = (&pairs.vectors[range.clone()], &pairs.shifts[range.clone()]);
        let one_slot = n_slots == 1;
        s.slot_start.clear();
        s.slot_start.resize(n_slots + 1, 0);
        let mut count = 0;
        if one_slot {
            count = distances.iter().filter(|&&r| r < cutoff).count();
            s.slot_start[1] = count;
        } else {
            // (pair, slot) of the pairs kept, written at `count`
            if s.kept.len() < distances.len() {
                s.kept.resize(distances.len(), (0, 0));
            }
            let kept = &mut s.kept[..distances.len()];
            for (q, (&r, &j)) in distances.iter().zip(neighbours).enumerate() {
                if r < cutoff {
                    let slot = slot_of[species_index[j as usize]];
                    debug_assert!(slot < n_slots, "species {} has no slot", species_index[j as usize]);
                    s.slot_start[slot + 1] += 1;
                    // SAFETY: count ≤ q < distances.len() = kept.len()
                    unsafe { *kept.get_unchecked_mut(count) = (q, slot) };
                    count += 1;
                }
            }
            for k in 0..n_slots {
                s.slot_start[k + 1] += s.slot_start[k];
            }
        }

        // 2. grouped by slot (neighbour-list order kept within a slot), with
        // the density weight and the checks of `expand`; the padding lanes
        // are idle pairs of weight 0
        let stride = count.div_ceil(4) * 4;
        for v in [&mut s.vx, &mut s.vy, &mut s.vz, &mut s.r, &mut s.w] {
            set_len_for_overwrite(v, stride);
        }
        // below this distance the weight is exactly 1 (`pair_weight` gives
        // f_c = 1 and no scaling multiplies it): the common case skips the
        // cutoff function and its checks, the same value
        let unit_below = unit_weight_below(self.settings.smoothing, self.settings.scaling.is_none(), cutoff);
        {
            let (vx, vy, vz, rs, ws) = (&mut s.vx[..count], &mut s.vy[..count], &mut s.vz[..count], &mut s.r[..count], &mut s.w[..count]);
            // a macro, not a closure: the closure, called from two loops,
            // was compiled out of line (a call per pair)
            macro_rules! put {
                ($q:expr, $place:expr) => {{
                    let (q, place): (usize, usize) = ($q, $place);
                    let r = distances[q];
                    let weight = if r <= unit_below && r >= COINCIDENT {
                        1.0
                    } else {
                        self.pair_weight_value(system_index, centre, neighbours[q] as usize, r, shifts[q])?
                    };
                    let v = vectors[q];
                    // one place per kept pair
                    assert!(place < count);
                    // SAFETY: place < count, the length of the five slices
                    unsafe {
                        *vx.get_unchecked_mut(place) = v[0];
                        *vy.get_unchecked_mut(place) = v[1];
                        *vz.get_unchecked_mut(place) = v[2];
                        *rs.get_unchecked_mut(place) = r;
                        *ws.get_unchecked_mut(place) = weight;
                    }
                }};
            }
            if one_slot {
                let mut place = 0;
                for (q, &r) in distances.iter().enumerate() {
                    if r < cutoff {
                        put!(q, place);
                        place += 1;
                    }
                }
            } else {
                s.next.clear();
                s.next.extend_from_slice(&s.slot_start[..n_slots]);
                for &(q, slot) in &s.kept[..count] {
                    let place = s.next[slot];
                    s.next[slot] = place + 1;
                    put!(q, place);
                }
            }
        }
        for q in count..stride {
            s.vx[q] = 0.0;
            s.vy[q] = 0.0;
            s.vz[q] = 1.0;
            s.r[q] = 1.0;
            s.w[q] = 0.0;
        }

        // 3. radial integrals, [p][l][n]
        let ln = (l_max + 1) * n_max;
        set_len_for_overwrite(&mut s.radial, count * ln);
        match &self.radial {
            Radial::Splined(spline) => {
                // the channels unrolled for the common n_max; the same bits
                // as `compute`, which the gradient path calls
                macro_rules! fixed {
                    ($($n:literal)*) => {
                        match n_max {
                            $($n => spline.compute_values_many::<$n, FMA>(&s.r[..count], &mut s.radial),)*
                            _ => {
                                for (p, &r) in s.r[..count].iter().enumerate() {
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
                for (p, &r) in s.r[..count].iter().enumerate() {
                    radial.compute(r, &mut s.radial[p * ln..(p + 1) * ln], Some(&mut s.derivatives));
                }
            }
        }

        // 4. w_p Y_lm(r̂_p), [lm][p], rows of `stride` values
        set_len_for_overwrite(&mut s.harmonics, n_lm * stride);
        #[cfg(target_arch = "x86_64")]
        if AVX2 {
            for b in (0..stride).step_by(4) {
                let lanes = |v: &[f64]| -> [f64; 4] { v[b..b + 4].try_into().expect("4 lanes") };
                let (vx, vy, vz, r, w) = (lanes(&s.vx), lanes(&s.vy), lanes(&s.vz), lanes(&s.r), lanes(&s.w));
                // SAFETY: AVX2 is true only under the entry points compiled
                // for AVX2, which run only where the CPU has it
                unsafe { s.sph.weighted_block4(&vx, &vy, &vz, &r, &w, &mut s.harmonics, b, stride) };
            }
        }
        if !AVX2 {
            for v in [&mut s.ux, &mut s.uy, &mut s.uz] {
                set_len_for_overwrite(v, stride);
            }
            for q in 0..stride {
                let r = s.r[q];
                let u = unit_vector([s.vx[q] / r, s.vy[q] / r, s.vz[q] / r]);
                (s.ux[q], s.uy[q], s.uz[q]) = (u[0], u[1], u[2]);
            }
            set_len_for_overwrite(&mut s.sph_scratch, 4 * stride);
            s.sph.compute_batch(&s.ux, &s.uy, &s.uz, &mut s.sph_scratch, &mut s.harmonics);
            for row in s.harmonics.chunks_exact_mut(stride.max(1)) {
                for (y, &w) in row.iter_mut().zip(&s.w) {
                    *y = w * *y;
                }
            }
        }

        // 5. C_l += Yᵀ R per slot and l
        for slot in 0..n_slots {
            let pairs = s.slot_start[slot]..s.slot_start[slot + 1];
            if pairs.is_empty() {
                if fresh {
                    for row in coefficients[stride_lm..].chunks_exact_mut(stride_lm) {
                        row[slot * n_max..(slot + 1) * n_max].fill(0.0);
                    }
                }
                continue;
            }
            let c = &mut coefficients[slot * n_max..];
            macro_rules! fixed {
                ($($n:literal)*) => {
                    match n_max {
                        $($n => accumulate_fixed::<$n, FMA>(c, stride_lm, l_max, &s.harmonics, stride, &s.radial, ln, pairs, fresh),)*
                        _ => accumulate_any::<FMA>(c, stride_lm, l_max, n_max, &s.harmonics, stride, &s.radial, ln, pairs),
                    }
                };
            }
            fixed!(4 5 6 7 8 9 10 11 12 16);
        }

        if !all_finite(coefficients) {
            return Err(Error::Numerical(format!(
                "the density coefficients of atom {centre} of system {system_index} are not finite: \
                 check density.center_atom_weight and density.scaling"
            )));
        }
        Ok(())
    }
}

/// Whether every value is finite, four lanes at a time: x·0 is 0 for finite
/// x and NaN for ±∞ and NaN, so the sums are NaN exactly when some value is
/// not finite. (The element-by-element test was a scalar loop of 5
/// instructions per coefficient: 2.7 k per si512 atom, more than the
/// harmonics.)
#[inline(always)]
fn all_finite(values: &[f64]) -> bool {
    let mut sums = [0.0f64; 4];
    let chunks = values.chunks_exact(4);
    let rest = chunks.remainder();
    for chunk in chunks {
        for k in 0..4 {
            sums[k] += chunk[k] * 0.0;
        }
    }
    rest.iter().all(|v| v.is_finite()) && sums.iter().all(|s| *s == 0.0)
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
/// compile time. With `fresh` (only where [`block`] runs `block_fma`), the
/// rows of degree l ≥ 1 are written, `Σ_p` from +0.0, without being read.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn accumulate_fixed<const N: usize, const FMA: bool>(
    c: &mut [f64],
    stride_lm: usize,
    l_max: usize,
    yw: &[f64],
    yw_stride: usize,
    radial: &[f64],
    ln: usize,
    pairs: std::ops::Range<usize>,
    fresh: bool,
) {
    // the bounds of every block below, checked once here rather than in
    // each of the 12 blocks of a centre (`block_fma` relies on them)
    let n_lm = (l_max + 1) * (l_max + 1);
    assert!((l_max + 1) * N <= ln && pairs.end * ln <= radial.len() && n_lm * yw_stride <= yw.len() && pairs.end <= yw_stride);
    assert!((n_lm - 1) * stride_lm + N <= c.len());
    for l in 0..=l_max {
        let end = (l + 1) * (l + 1);
        let mut lm = l * l;
        let zero = fresh && l > 0;
        while lm < end {
            let rows = (end - lm).min(rows_for(N));
            // SAFETY: the block is rows lm..lm + rows ≤ (l + 1)² of degree
            // l ≤ l_max, inside the bounds asserted above
            unsafe {
                match rows {
                    8 => block::<N, 8, FMA>(c, stride_lm, lm, l, yw, yw_stride, radial, ln, pairs.clone(), zero),
                    7 => block::<N, 7, FMA>(c, stride_lm, lm, l, yw, yw_stride, radial, ln, pairs.clone(), zero),
                    6 => block::<N, 6, FMA>(c, stride_lm, lm, l, yw, yw_stride, radial, ln, pairs.clone(), zero),
                    5 => block::<N, 5, FMA>(c, stride_lm, lm, l, yw, yw_stride, radial, ln, pairs.clone(), zero),
                    4 => block::<N, 4, FMA>(c, stride_lm, lm, l, yw, yw_stride, radial, ln, pairs.clone(), zero),
                    3 => block::<N, 3, FMA>(c, stride_lm, lm, l, yw, yw_stride, radial, ln, pairs.clone(), zero),
                    2 => block::<N, 2, FMA>(c, stride_lm, lm, l, yw, yw_stride, radial, ln, pairs.clone(), zero),
                    _ => block::<N, 1, FMA>(c, stride_lm, lm, l, yw, yw_stride, radial, ln, pairs.clone(), zero),
                }
            }
            lm += rows;
        }
    }
}

/// K rows (lm0 … lm0 + K − 1, all of degree l) of C kept in registers
/// while the pairs stream through; with `zero`, starting from +0.0 rather
/// than from `c` (only under `block_fma`: the caller sets it only there).
///
/// # Safety
/// Rows lm0..lm0 + K of `c` (`stride_lm` apart) hold N values each,
/// `radial` the values of degree l of every pair below `pairs.end`
/// (`ln` per pair), `yw` the rows lm0..lm0 + K of `yw_stride` ≥ pairs.end
/// values: what [`accumulate_fixed`] asserts for all its blocks.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn block<const N: usize, const K: usize, const FMA: bool>(
    c: &mut [f64],
    stride_lm: usize,
    lm0: usize,
    l: usize,
    yw: &[f64],
    yw_stride: usize,
    radial: &[f64],
    ln: usize,
    pairs: std::ops::Range<usize>,
    zero: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if FMA && N % 4 == 0 && N <= 16 {
        // the compiler kept this kernel's accumulators in scalar registers
        // and the stack (profile of si512); explicit vectors, the same fused
        // multiply-adds in the same order, so the same bits
        // SAFETY: FMA is true only under expand_values_fma, which runs only
        // where the CPU has AVX2 and FMA; the bounds are this function's
        unsafe { block_fma::<N, K>(c, stride_lm, lm0, l, yw, yw_stride, radial, ln, pairs, zero) };
        return;
    }
    assert!(!zero, "rows start from zero only in block_fma");
    let mut acc = [[0.0f64; N]; K];
    for (k, row) in acc.iter_mut().enumerate() {
        row.copy_from_slice(&c[(lm0 + k) * stride_lm..(lm0 + k) * stride_lm + N]);
    }
    let (start, end) = (pairs.start, pairs.end);
    assert!((l + 1) * N <= ln && end * ln <= radial.len() && (lm0 + K) * yw_stride <= yw.len() && end <= yw_stride);
    let ys: [&[f64]; K] = std::array::from_fn(|k| &yw[(lm0 + k) * yw_stride + start..(lm0 + k) * yw_stride + end]);
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
/// each accumulator is `fma(y, r, acc)` per element, as in [`block`]; with
/// `zero` the accumulators start from +0.0 instead of the rows of `c`.
///
/// # Safety
/// The CPU has AVX2 and FMA; the bounds of [`block`].
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
    yw_stride: usize,
    radial: &[f64],
    ln: usize,
    pairs: std::ops::Range<usize>,
    zero: bool,
) {
    use std::arch::x86_64::{__m256d, _mm256_fmadd_pd, _mm256_loadu_pd, _mm256_set1_pd, _mm256_setzero_pd, _mm256_storeu_pd};
    const W: usize = 4;
    let lanes = N / W;
    let (start, end) = (pairs.start, pairs.end);
    assert!(N % W == 0 && lanes <= 4);
    // checked once per centre by the caller, `accumulate_fixed`
    debug_assert!((l + 1) * N <= ln && end * ln <= radial.len() && (lm0 + K) * yw_stride <= yw.len() && end <= yw_stride);
    debug_assert!((lm0 + K - 1) * stride_lm + N <= c.len());
    // SAFETY (every access below): rows lm0..lm0 + K of `c` hold N values
    // from (lm0 + k) · stride_lm, pair p's radial values of degree l are
    // radial[p · ln + l · N..][..N], and yw[(lm0 + k) · yw_stride + p] exists for
    // p < end (the bounds `accumulate_fixed` asserts for every block)
    let mut acc: [[__m256d; 4]; K] = [[_mm256_setzero_pd(); 4]; K];
    if !zero {
        for (k, row) in acc.iter_mut().enumerate() {
            for (v, a) in row.iter_mut().enumerate().take(lanes) {
                *a = _mm256_loadu_pd(c.as_ptr().add((lm0 + k) * stride_lm + v * W));
            }
        }
    }
    for p in start..end {
        let rp = radial.as_ptr().add(p * ln + l * N);
        let mut r = [_mm256_setzero_pd(); 4];
        for (v, x) in r.iter_mut().enumerate().take(lanes) {
            *x = _mm256_loadu_pd(rp.add(v * W));
        }
        for (k, row) in acc.iter_mut().enumerate() {
            let y = _mm256_set1_pd(*yw.get_unchecked((lm0 + k) * yw_stride + p));
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
    yw_stride: usize,
    radial: &[f64],
    ln: usize,
    pairs: std::ops::Range<usize>,
) {
    for l in 0..=l_max {
        for lm in l * l..(l + 1) * (l + 1) {
            let row = &mut c[lm * stride_lm..lm * stride_lm + n_max];
            for p in pairs.clone() {
                let y = yw[lm * yw_stride + p];
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
