//! SOAP power spectrum p^{a1 a2}_{n1 n2 l}(i) = (−1)^l/√(2l+1) Σ_m
//! ⟨a1 n1 l m|ρ_i⟩⟨a2 n2 l m|ρ_i⟩ (×√2 when a1 ≠ a2), docs/CONVENTIONS.md §3.1.
use rayon::prelude::*;

use super::shared::{key_selected, Environments};
use super::soap::sample_labels;
use super::shared::GradientFlags;
use super::soap::expansion::{CentreDensity, Expansion};
use super::soap::alchemical::Mixing;
use super::soap::hypers::SoapHypers;
use super::{Calculator, ComputeOptions};
use crate::error::Result;
use crate::system::System;
use crate::tensor::{Labels, TensorBlock, TensorMap};

const KEY_NAMES: [&str; 3] = ["center_type", "neighbor_1_type", "neighbor_2_type"];
/// With `density.alchemical`: the neighbour types are pseudo-elements.
const PSEUDO_KEY_NAMES: [&str; 3] = ["center_type", "pseudo_1_type", "pseudo_2_type"];

#[path = "power_spectrum_values.rs"]
mod values;

#[path = "power_spectrum_gradients.rs"]
mod gradients;

#[path = "power_spectrum_backprop.rs"]
mod backprop;
pub use backprop::{Backpropagated, JoinedLayout};

/// SOAP power spectrum with featomic 0.6 hyper-parameters.
pub struct SoapPowerSpectrum {
    parameters: String,
    expansion: Expansion,
}

/// `c + a · b` of the gradient kernel: one fused multiply-add (one
/// rounding) when `FMA`, which the streaming kernel and the general loop take
/// alike where the CPU has the instruction (checked once at run time), so
/// the two stay bitwise equal on any one machine; else a product then a sum
/// (the software `mul_add` is slow).
#[inline(always)]
fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        c + a * b
    }
}

/// `out[(l, n1, n2)] += f_l Σ_m a[lm][n1] b[lm][n2]`, with `a[lm]` at
/// `a[lm * a_stride..]` and likewise for `b`: one small AᵀB product per l.
///
/// This is the hot loop of power-spectrum gradients. The radial size is
/// made a compile-time constant for common sizes (fully unrolled, vectorised
/// loops) and, on x86-64 machines that have them, AVX2 and FMA are used
/// (checked once at run time, so the binary still runs everywhere).
#[inline]
fn accumulate_products(out: &mut [f64], factors: &[f64], n_max: usize, a: &[f64], a_stride: usize, b: &[f64], b_stride: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::math::cpu::has_avx2_fma() {
            // SAFETY: the CPU supports the features this function is compiled for
            unsafe { accumulate_products_avx2(out, factors, n_max, a, a_stride, b, b_stride) };
            return;
        }
    }
    accumulate_products_dispatch(out, factors, n_max, a, a_stride, b, b_stride);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn accumulate_products_avx2(out: &mut [f64], factors: &[f64], n_max: usize, a: &[f64], a_stride: usize, b: &[f64], b_stride: usize) {
    match n_max {
        4 => products_registers::<4>(out, factors, a, a_stride, b, b_stride),
        8 => products_registers::<8>(out, factors, a, a_stride, b, b_stride),
        12 => products_registers::<12>(out, factors, a, a_stride, b, b_stride),
        16 => products_registers::<16>(out, factors, a, a_stride, b, b_stride),
        _ => accumulate_products_dispatch(out, factors, n_max, a, a_stride, b, b_stride),
    }
}

/// [`products_fixed`] with a block of rows of `out` held in AVX2 registers
/// across the 2l + 1 values of m (the compiled loop loaded and stored every
/// row of the N × N block once per m: 13 times per block at l = 6, and the
/// contraction was 10 k of ~110 k instructions per si512 atom). The same
/// operations in the same order (x = f·a, then out + x·b, not fused), so the
/// same bits as [`products_fixed`]; N a multiple of 4 up to 16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn products_registers<const N: usize>(out: &mut [f64], factors: &[f64], a: &[f64], a_stride: usize, b: &[f64], b_stride: usize) {
    assert!(out.len() >= factors.len() * N * N);
    registers_block::<N, true>(out.as_mut_ptr(), factors, a, a_stride, b, b_stride);
}

/// The register-blocked contraction behind [`products_registers`]
/// (`ACCUMULATE`: out + Σ) and the values path's row stores (not
/// `ACCUMULATE`: the sums start from +0.0 and overwrite `out`, which need
/// not be initialised): one body, so the two keep the same operations in
/// the same order and the values path's bits equal the gradient path's.
/// `out` must hold factors.len()·N² values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(crate) unsafe fn registers_block<const N: usize, const ACCUMULATE: bool>(out: *mut f64, factors: &[f64], a: &[f64], a_stride: usize, b: &[f64], b_stride: usize) {
    use std::arch::x86_64::{
        __m256d, _mm256_add_pd, _mm256_loadu_pd, _mm256_mul_pd, _mm256_permute4x64_pd, _mm256_set1_pd, _mm256_setzero_pd, _mm256_storeu_pd,
    };
    const W: usize = 4;
    let lanes = N / W;
    // rows × lanes ≤ 8 accumulators, and the rows divide N
    let rows = if lanes == 1 { N } else if lanes == 2 { 4 } else { 2 };
    let n_l = factors.len();
    assert!(N % W == 0 && (1..=4).contains(&lanes) && N % rows == 0);
    if n_l == 0 {
        return;
    }
    let last = n_l * n_l - 1;
    assert!(a.len() >= last * a_stride + N && b.len() >= last * b_stride + N);
    // SAFETY (every access below): block l of `out` is out[l·N²..][..N²]
    // (the caller), and a[lm·a_stride..][..N], b[lm·b_stride..][..N] exist
    // for every lm < n_l² (the asserts above)
    for (l, &f) in factors.iter().enumerate() {
        let o = out.add(l * N * N);
        let fv = _mm256_set1_pd(f);
        let mut n1 = 0;
        while n1 < N {
            let mut acc: [[__m256d; 4]; 8] = [[_mm256_setzero_pd(); 4]; 8];
            if ACCUMULATE {
                for (r, row) in acc.iter_mut().enumerate().take(rows) {
                    for (v, x) in row.iter_mut().enumerate().take(lanes) {
                        *x = _mm256_loadu_pd(o.add((n1 + r) * N + v * W));
                    }
                }
            }
            for lm in l * l..(l + 1) * (l + 1) {
                let ap = a.as_ptr().add(lm * a_stride + n1);
                let bp = b.as_ptr().add(lm * b_stride);
                let mut bv = [_mm256_setzero_pd(); 4];
                for (v, x) in bv.iter_mut().enumerate().take(lanes) {
                    *x = _mm256_loadu_pd(bp.add(v * W));
                }
                if rows == W {
                    // the four f·a of the block in one product, each then
                    // spread over a register (a lane permutation): 5
                    // instructions instead of 4 scalar products and 4
                    // broadcasts; the same products, so the same bits
                    let fa = _mm256_mul_pd(fv, _mm256_loadu_pd(ap));
                    let spread = [
                        _mm256_permute4x64_pd::<0x00>(fa),
                        _mm256_permute4x64_pd::<0x55>(fa),
                        _mm256_permute4x64_pd::<0xAA>(fa),
                        _mm256_permute4x64_pd::<0xFF>(fa),
                    ];
                    for (row, &x) in acc.iter_mut().zip(&spread) {
                        for v in 0..lanes {
                            row[v] = _mm256_add_pd(row[v], _mm256_mul_pd(x, bv[v]));
                        }
                    }
                    continue;
                }
                for (r, row) in acc.iter_mut().enumerate().take(rows) {
                    let x = _mm256_set1_pd(f * *ap.add(r));
                    for v in 0..lanes {
                        row[v] = _mm256_add_pd(row[v], _mm256_mul_pd(x, bv[v]));
                    }
                }
            }
            for (r, row) in acc.iter().enumerate().take(rows) {
                for (v, x) in row.iter().enumerate().take(lanes) {
                    _mm256_storeu_pd(o.add((n1 + r) * N + v * W), *x);
                }
            }
            n1 += rows;
        }
    }
}

#[inline(always)]
fn accumulate_products_dispatch(out: &mut [f64], factors: &[f64], n_max: usize, a: &[f64], a_stride: usize, b: &[f64], b_stride: usize) {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match n_max {
                $($n => products_fixed::<$n>(out, factors, a, a_stride, b, b_stride),)*
                _ => products_any(out, factors, n_max, a, a_stride, b, b_stride),
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

#[inline(always)]
fn products_fixed<const N: usize>(out: &mut [f64], factors: &[f64], a: &[f64], a_stride: usize, b: &[f64], b_stride: usize) {
    for (l, (&f, o)) in factors.iter().zip(out.chunks_exact_mut(N * N)).enumerate() {
        for lm in l * l..(l + 1) * (l + 1) {
            let ar: &[f64; N] = a[lm * a_stride..lm * a_stride + N].try_into().expect("N values");
            let br: &[f64; N] = b[lm * b_stride..lm * b_stride + N].try_into().expect("N values");
            for n1 in 0..N {
                let x = f * ar[n1];
                let row: &mut [f64; N] = (&mut o[n1 * N..(n1 + 1) * N]).try_into().expect("N values");
                for n2 in 0..N {
                    row[n2] += x * br[n2];
                }
            }
        }
    }
}

#[inline(always)]
fn products_any(out: &mut [f64], factors: &[f64], n_max: usize, a: &[f64], a_stride: usize, b: &[f64], b_stride: usize) {
    let nn = n_max * n_max;
    for (l, (&f, o)) in factors.iter().zip(out.chunks_exact_mut(nn)).enumerate() {
        for lm in l * l..(l + 1) * (l + 1) {
            let ar = &a[lm * a_stride..lm * a_stride + n_max];
            let br = &b[lm * b_stride..lm * b_stride + n_max];
            for (row, &x) in o.chunks_exact_mut(n_max).zip(ar) {
                let x = f * x;
                for (r, &y) in row.iter_mut().zip(br) {
                    *r += x * y;
                }
            }
        }
    }
}

impl SoapPowerSpectrum {
    /// The calculator's stable name (also the label of its hyper-parameter errors).
    pub const NAME: &'static str = "soap_power_spectrum";

    /// Parses and validates the hyper-parameters, builds the basis.
    pub fn new(hypers: &str) -> Result<SoapPowerSpectrum> {
        let (_, settings) = SoapHypers::from_json(Self::NAME, hypers)?;
        Ok(SoapPowerSpectrum { parameters: hypers.to_string(), expansion: Expansion::new(settings)? })
    }

    /// Keys (centre type, neighbour label 1 ≤ label 2) of the centres whose
    /// environments hold both: `neighbors` labels the entries of `present`
    /// (the species, or the pseudo-elements 0…B − 1), `species` the centres.
    fn keys_from<'p>(species: &[i32], neighbors: &[i32], presence: impl Iterator<Item = (usize, &'p [bool])>) -> Vec<[i32; 3]> {
        let (nc, ns) = (species.len(), neighbors.len());
        let mut seen = vec![false; nc * ns * ns];
        for (c, present) in presence {
            for s1 in 0..ns {
                for s2 in s1..ns {
                    if present[s1] && present[s2] {
                        seen[(c * ns + s1) * ns + s2] = true;
                    }
                }
            }
        }
        let mut keys = Vec::new();
        for c in 0..nc {
            for s1 in 0..ns {
                for s2 in s1..ns {
                    if seen[(c * ns + s1) * ns + s2] {
                        keys.push([species[c], neighbors[s1], neighbors[s2]]);
                    }
                }
            }
        }
        keys
    }

    /// U over the species of these environments, with `density.alchemical`.
    fn mixing(&self, env: &Environments) -> Result<Option<Mixing>> {
        self.expansion.settings.alchemical.as_ref().map(|a| Mixing::new(a, &env.species)).transpose()
    }

    fn properties(&self) -> Labels {
        let n_max = self.expansion.n_max() as i32;
        let mut v = Vec::new();
        for l in 0..=self.expansion.settings.max_angular as i32 {
            for n1 in 0..n_max {
                for n2 in 0..n_max {
                    v.extend_from_slice(&[l, n1, n2]);
                }
            }
        }
        Labels::new(&["l", "n_1", "n_2"], v)
    }
}

/// Sizes of one expansion.
struct Shape {
    l_max: usize,
    n_max: usize,
    n_lm: usize,
}

/// Per-thread buffers for the gradient of one sample.
struct GradientScratch {
    /// ∂p/∂r_ij of one pair, `[xyz][l][n1][n2]`, for pairs whose values are
    /// not written straight into their output row
    pair: Vec<f64>,
    /// −Σ_pairs ∂p/∂r_ij: the centre's row, `[xyz][l][n1][n2]`, kept in
    /// cache until the sample is done
    centre: Vec<f64>,
    /// Σ_m Y_lm C[lm][s][n] for the partner species, `[l][n]`
    yc: Vec<f64>,
    /// Σ_m ∂Y_lm/∂û_x C[lm][s][n], `[xyz][l][n]`
    dc: Vec<f64>,
    /// output row of each neighbour of the sample (streaming path)
    row_of: Vec<usize>,
    /// images of each neighbour still to write (streaming path)
    images: Vec<u32>,
}

impl GradientScratch {
    fn new(shape: &Shape) -> GradientScratch {
        let ln = (shape.l_max + 1) * shape.n_max;
        let n_props = ln * shape.n_max;
        GradientScratch {
            pair: vec![0.0; 3 * n_props],
            centre: vec![0.0; 3 * n_props],
            yc: vec![0.0; ln],
            dc: vec![0.0; 3 * ln],
            row_of: Vec::new(),
            images: Vec::new(),
        }
    }
}

/// Which factor of p = Σ_m C1 C2 a pair moves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PairSide {
    /// s1 == s2: both, d(CᵀC) = gᵀC + Cᵀg
    Both,
    /// the neighbour has species s1 (≠ s2): ∂C1 ⊗ C2
    Left,
    /// the neighbour has species s2 (≠ s1): C1 ⊗ ∂C2
    Right,
}

/// Position and strain gradients of one power-spectrum sample, contracted
/// from the factored pair gradients (see `PairGeometry`): for a pair whose
/// neighbour has species s1,
/// ∂p[l][n1][n2]/∂r_x = f_l (α[l][n1] u_x YC2[l][n2] + β[l][n1] DC2_x[l][n2]),
/// with YC2 = Σ_m Y C2 and DC2_x = Σ_m ∂Y/∂û_x C2; symmetric for species s2.
/// This never forms the (2l+1)×n gradient of the expansion.
///
/// Each neighbour's row is written once, straight from the products (a
/// further periodic image of the same atom adds to it), and the centre's row,
/// −Σ over the pairs, is accumulated in cache and written at the end: the
/// output (hundreds of MB for a few hundred atoms) is touched once.
struct SampleGradient<'a> {
    shape: &'a Shape,
    factors: &'a [f64],
    s1: usize,
    s2: usize,
    density: &'a CentreDensity,
    /// gradient rows (atom, neighbour index or None for the centre)
    atoms: &'a [(usize, Option<usize>)],
}

impl SampleGradient<'_> {
    /// Fills `positions` (this sample's rows, `[row][xyz][property]`; every
    /// element is written) and adds to `strain` (`[a][b][property]`, zero on
    /// entry); an empty slice skips that gradient.
    fn run(&self, scratch: &mut GradientScratch, positions: &mut [f64], strain: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        {
            if crate::math::cpu::has_avx2_fma() {
                // SAFETY: the CPU supports the features these functions are compiled for
                unsafe {
                    if !reference_path() && self.run_streaming(scratch, positions, strain) {
                        return;
                    }
                    self.run_avx2(scratch, positions, strain)
                };
                return;
            }
        }
        self.run_dispatch::<false>(scratch, positions, strain);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, scratch: &mut GradientScratch, positions: &mut [f64], strain: &mut [f64]) {
        self.run_dispatch::<true>(scratch, positions, strain);
    }

    /// Position gradients only, n_max a multiple of 4 up to 16, AVX2: the
    /// same values bit for bit as [`SampleGradient::run_generic`], from
    /// registers. Each element of a pair's products is computed once, added
    /// to the centre's row (in L1) and written once with a non-temporal
    /// store when the neighbour has a single image (the output, hundreds of
    /// MB, then costs one pass over memory instead of a read for ownership
    /// plus the write-back, and it does not evict the pair data). Returns
    /// false when it does not apply (nothing is written then).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_streaming(&self, scratch: &mut GradientScratch, positions: &mut [f64], strain: &mut [f64]) -> bool {
        if positions.is_empty() || !strain.is_empty() {
            return false;
        }
        match self.shape.n_max {
            4 => self.stream_fixed::<4>(scratch, positions),
            8 => self.stream_fixed::<8>(scratch, positions),
            12 => self.stream_fixed::<12>(scratch, positions),
            16 => self.stream_fixed::<16>(scratch, positions),
            _ => return false,
        }
        true
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn stream_fixed<const N: usize>(&self, scratch: &mut GradientScratch, positions: &mut [f64]) {
        use std::arch::x86_64::_mm_sfence;
        let Shape { l_max, n_lm, .. } = *self.shape;
        let ln = (l_max + 1) * N;
        let n_props = ln * N;
        let row_len = 3 * n_props;
        let d = self.density;
        let (s1, s2) = (self.s1, self.s2);
        let GradientScratch { pair: _, centre, yc, dc, row_of, images } = scratch;
        row_of.clear();
        row_of.resize(d.neighbors.len(), usize::MAX);
        images.clear();
        images.resize(d.neighbors.len(), 0);
        let mut centre_row = usize::MAX;
        for (row, &(_, source)) in self.atoms.iter().enumerate() {
            match source {
                Some(k) => row_of[k] = row,
                None => centre_row = row,
            }
        }
        assert!(centre_row != usize::MAX && positions.len() >= self.atoms.len() * row_len);
        for pair in &d.pairs {
            if let Some(k) = pair.neighbor {
                if pair.species == s1 || pair.species == s2 {
                    images[k] += 1;
                }
            }
        }
        // rows are a multiple of 128 bytes (N a multiple of 4), so one test
        // of the block's start holds for every row
        let base = positions.as_mut_ptr();
        let stream = if base as usize % 32 == 0 {
            Store::Stream32
        } else if base as usize % 16 == 0 {
            Store::Stream16
        } else {
            Store::Plain
        };
        centre.fill(0.0);
        let centre = centre.as_mut_ptr();
        for (p, pair) in d.pairs.iter().enumerate() {
            let b = pair.species;
            if b != s1 && b != s2 {
                continue;
            }
            // a periodic image of the centre has no position gradient
            let Some(k) = pair.neighbor else { continue };
            let radial = &d.pair_radial[p * 2 * ln..(p + 1) * 2 * ln];
            let angular = &d.pair_angular[p * 4 * n_lm..(p + 1) * 4 * n_lm];
            let (side, partner) = if s1 == s2 { (PairSide::Both, s2) } else if b == s1 { (PairSide::Left, s2) } else { (PairSide::Right, s1) };
            self.contract_m(N, angular, partner, yc, dc);
            // several images of one atom: the first assigns, the others add
            let store = match images[k] {
                1 => stream,
                _ if images[k] > 0 => Store::Plain,
                _ => Store::Add,
            };
            if images[k] > 1 {
                // mark the first image done: later ones (count 0 → Add)
                images[k] = 0;
            }
            let dst = base.add(row_of[k] * row_len);
            pair_row::<N>(self.factors, side, pair.unit, radial, yc, dc, store, dst, centre);
        }
        let dst = base.add(centre_row * row_len);
        for i in (0..row_len).step_by(4) {
            store4(stream, dst.add(i), std::arch::x86_64::_mm256_loadu_pd(centre.add(i)));
        }
        // non-temporal stores are weakly ordered: complete them before the
        // task reports to another thread
        _mm_sfence();
    }

    /// The radial size as a constant for common sizes (unrolled loops).
    #[inline(always)]
    fn run_dispatch<const FMA: bool>(&self, scratch: &mut GradientScratch, positions: &mut [f64], strain: &mut [f64]) {
        macro_rules! fixed {
            ($($n:literal)*) => {
                match self.shape.n_max {
                    $($n => self.run_generic::<FMA>($n, scratch, positions, strain),)*
                    n => self.run_generic::<FMA>(n, scratch, positions, strain),
                }
            };
        }
        fixed!(4 5 6 7 8 9 10 12 16)
    }

    /// `yc[l][n] = Σ_m Y[lm] C[lm][s][n]` and `dc[x][l][n] = Σ_m ∂Y[lm]/∂û_x
    /// C[lm][s][n]` in one pass over the coefficients of species `species`;
    /// `angular` is `[Y, ∂Y/∂û_x, ∂Y/∂û_y, ∂Y/∂û_z][lm]`. Not fused: with
    /// fused sums here as well, the forces of `power_spectrum_backprop`'s
    /// `equals_the_feature_gradient_path` differed from this path's by
    /// 1.007e-12 of their largest component, over that test's 1e-12.
    #[inline(always)]
    fn contract_m(&self, n_max: usize, angular: &[f64], species: usize, yc: &mut [f64], dc: &mut [f64]) {
        let Shape { l_max, n_lm, .. } = *self.shape;
        let ln = (l_max + 1) * n_max;
        let stride = self.density.present.len() * n_max;
        let c = &self.density.coefficients;
        let (dx, rest) = dc.split_at_mut(ln);
        let (dy, dz) = rest.split_at_mut(ln);
        let (w0, rest) = angular.split_at(n_lm);
        let (w1, rest) = rest.split_at(n_lm);
        let (w2, w3) = rest.split_at(n_lm);
        const MAX: usize = 16;
        for l in 0..=l_max {
            let span = l * n_max..(l + 1) * n_max;
            let (o0, o1, o2, o3) = (&mut yc[span.clone()], &mut dx[span.clone()], &mut dy[span.clone()], &mut dz[span]);
            if n_max <= MAX {
                // sums kept in registers (n_max is a constant here)
                let mut acc = [[0.0f64; MAX]; 4];
                for lm in l * l..(l + 1) * (l + 1) {
                    let (a, b, cc, d) = (w0[lm], w1[lm], w2[lm], w3[lm]);
                    let row = &c[lm * stride + species * n_max..][..n_max];
                    for n in 0..n_max {
                        let v = row[n];
                        acc[0][n] += a * v;
                        acc[1][n] += b * v;
                        acc[2][n] += cc * v;
                        acc[3][n] += d * v;
                    }
                }
                o0.copy_from_slice(&acc[0][..n_max]);
                o1.copy_from_slice(&acc[1][..n_max]);
                o2.copy_from_slice(&acc[2][..n_max]);
                o3.copy_from_slice(&acc[3][..n_max]);
                continue;
            }
            o0.fill(0.0);
            o1.fill(0.0);
            o2.fill(0.0);
            o3.fill(0.0);
            for lm in l * l..(l + 1) * (l + 1) {
                let (a, b, cc, d) = (w0[lm], w1[lm], w2[lm], w3[lm]);
                let row = &c[lm * stride + species * n_max..][..n_max];
                for n in 0..n_max {
                    let v = row[n];
                    o0[n] += a * v;
                    o1[n] += b * v;
                    o2[n] += cc * v;
                    o3[n] += d * v;
                }
            }
        }
    }

    /// ∂p/∂r_ij of one pair into `out` (`[xyz][l][n1][n2]`, every element
    /// assigned), from its radial factors α, β (`[l][n]`), its direction
    /// `unit` and the partner contractions `yc`, `dc`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn pair_products<const FMA: bool>(&self, n_max: usize, side: PairSide, unit: [f64; 3], alpha: &[f64], beta: &[f64], yc: &[f64], dc: &[f64], out: &mut [f64]) {
        let ln = (self.shape.l_max + 1) * n_max;
        let nn = n_max * n_max;
        let n_props = ln * n_max;
        for x in 0..3 {
            let u = unit[x];
            let out = &mut out[x * n_props..(x + 1) * n_props];
            for (l, &f) in self.factors.iter().enumerate() {
                let o = &mut out[l * nn..(l + 1) * nn];
                let al = &alpha[l * n_max..(l + 1) * n_max];
                let be = &beta[l * n_max..(l + 1) * n_max];
                let yc = &yc[l * n_max..(l + 1) * n_max];
                let dc = &dc[x * ln + l * n_max..x * ln + (l + 1) * n_max];
                match side {
                    PairSide::Both => {
                        // d(CᵀC) = gᵀC + Cᵀg: both terms at once, symmetric in (n1, n2)
                        for n1 in 0..n_max {
                            let (a1, b1, y1, z1) = (f * al[n1] * u, f * be[n1], f * yc[n1] * u, f * dc[n1]);
                            let row = &mut o[n1 * n_max..(n1 + 1) * n_max];
                            for n2 in 0..n_max {
                                row[n2] = madd::<FMA>(z1, be[n2], madd::<FMA>(y1, al[n2], madd::<FMA>(b1, dc[n2], a1 * yc[n2])));
                            }
                        }
                    }
                    PairSide::Left => {
                        // ∂C1 ⊗ C2: rows n1 from the pair, columns n2 from C2
                        for n1 in 0..n_max {
                            let (a, bb) = (f * al[n1] * u, f * be[n1]);
                            let row = &mut o[n1 * n_max..(n1 + 1) * n_max];
                            for n2 in 0..n_max {
                                row[n2] = madd::<FMA>(bb, dc[n2], a * yc[n2]);
                            }
                        }
                    }
                    PairSide::Right => {
                        // C1 ⊗ ∂C2: rows n1 from C1, columns n2 from the pair
                        for n1 in 0..n_max {
                            let (y, z) = (f * yc[n1] * u, f * dc[n1]);
                            let row = &mut o[n1 * n_max..(n1 + 1) * n_max];
                            for n2 in 0..n_max {
                                row[n2] = madd::<FMA>(z, be[n2], y * al[n2]);
                            }
                        }
                    }
                }
            }
        }
    }

    #[inline(always)]
    fn run_generic<const FMA: bool>(&self, n_max: usize, scratch: &mut GradientScratch, positions: &mut [f64], strain: &mut [f64]) {
        let Shape { l_max, n_lm, .. } = *self.shape;
        let ln = (l_max + 1) * n_max;
        let n_props = ln * n_max;
        let row_len = 3 * n_props;
        let d = self.density;
        let (s1, s2) = (self.s1, self.s2);
        let with_positions = !positions.is_empty();
        let with_strain = !strain.is_empty();
        // row of each neighbour in the output, and of the centre
        let mut row_of = vec![usize::MAX; d.neighbors.len()];
        let mut written = vec![false; d.neighbors.len()];
        let mut centre_row = usize::MAX;
        for (row, &(_, source)) in self.atoms.iter().enumerate() {
            match source {
                Some(k) => row_of[k] = row,
                None => centre_row = row,
            }
        }
        let GradientScratch { pair: pair_scratch, centre, yc, dc, .. } = scratch;
        if with_positions {
            centre.fill(0.0);
        }
        for (p, pair) in d.pairs.iter().enumerate() {
            let b = pair.species;
            if b != s1 && b != s2 {
                continue;
            }
            let neighbor = if with_positions { pair.neighbor } else { None };
            if neighbor.is_none() && !with_strain {
                // a periodic image of the centre has no position gradient
                continue;
            }
            let radial = &d.pair_radial[p * 2 * ln..(p + 1) * 2 * ln];
            let (alpha, beta) = radial.split_at(ln);
            let angular = &d.pair_angular[p * 4 * n_lm..(p + 1) * 4 * n_lm];
            // contract with the coefficients of the *other* species of each term
            let (side, partner) = if s1 == s2 { (PairSide::Both, s2) } else if b == s1 { (PairSide::Left, s2) } else { (PairSide::Right, s1) };
            self.contract_m(n_max, angular, partner, yc, dc);
            // the first pair of a neighbour writes its row, further periodic
            // images of the same atom add to it
            let first = neighbor.is_some_and(|k| !written[k]);
            let values: &[f64] = match neighbor {
                Some(k) if first => {
                    let row = row_of[k];
                    let out = &mut positions[row * row_len..(row + 1) * row_len];
                    self.pair_products::<FMA>(n_max, side, pair.unit, alpha, beta, yc, dc, out);
                    // 0 + v, as accumulating into a zeroed row gave: turns the
                    // −0.0 of some exact zeros into +0.0 and changes nothing else
                    for o in out.iter_mut() {
                        *o += 0.0;
                    }
                    written[k] = true;
                    out
                }
                _ => {
                    self.pair_products::<FMA>(n_max, side, pair.unit, alpha, beta, yc, dc, pair_scratch);
                    if let Some(k) = neighbor {
                        // another periodic image of the same neighbour
                        let row = row_of[k];
                        for (o, &v) in positions[row * row_len..(row + 1) * row_len].iter_mut().zip(pair_scratch.iter()) {
                            *o += v;
                        }
                    }
                    pair_scratch
                }
            };
            if neighbor.is_some() {
                for (o, &v) in centre.iter_mut().zip(values) {
                    *o -= v;
                }
            }
            if with_strain {
                // ∂/∂ε_ab = Σ_pairs r_a ∂/∂r_b, self-images included
                for a in 0..3 {
                    let ra = pair.vector[a];
                    for bb in 0..3 {
                        let src = &values[bb * n_props..(bb + 1) * n_props];
                        let dst = &mut strain[(a * 3 + bb) * n_props..(a * 3 + bb + 1) * n_props];
                        for (o, &v) in dst.iter_mut().zip(src) {
                            *o += ra * v;
                        }
                    }
                }
            }
        }
        if with_positions {
            positions[centre_row * row_len..(centre_row + 1) * row_len].copy_from_slice(centre);
        }
    }
}

/// Tests compare the streaming gradient kernel against the general loop
/// through this switch.
#[cfg(test)]
static REFERENCE_PATH: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[inline(always)]
fn reference_path() -> bool {
    #[cfg(test)]
    {
        REFERENCE_PATH.load(std::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(not(test))]
    {
        false
    }
}

/// How [`pair_row`] puts a value into the output.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    /// assign, non-temporal, 32-byte aligned
    Stream32,
    /// assign, non-temporal, 16-byte aligned
    Stream16,
    /// assign
    Plain,
    /// add to what an earlier image of the same atom assigned
    Add,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn store4(store: Store, dst: *mut f64, v: std::arch::x86_64::__m256d) {
    use std::arch::x86_64::*;
    match store {
        Store::Stream32 => _mm256_stream_pd(dst, v),
        Store::Stream16 => {
            _mm_stream_pd(dst, _mm256_castpd256_pd128(v));
            _mm_stream_pd(dst.add(2), _mm256_extractf128_pd::<1>(v));
        }
        Store::Plain => _mm256_storeu_pd(dst, v),
        Store::Add => _mm256_storeu_pd(dst, _mm256_add_pd(_mm256_loadu_pd(dst), v)),
    }
}

/// One pair's ∂p/∂r_ij (`[xyz][l][n1][n2]`) into its output row `dst` and
/// subtracted from the centre's row `centre`: the operations of
/// `SampleGradient::pair_products::<true>` in the same order (products, then
/// fused multiply-adds left to right), then `+ 0.0` for an assigned value (as
/// the general loop does: no −0.0 where a zeroed row would have held +0.0),
/// so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn pair_row<const N: usize>(factors: &[f64], side: PairSide, unit: [f64; 3], radial: &[f64], yc: &[f64], dc: &[f64], store: Store, dst: *mut f64, centre: *mut f64) {
    macro_rules! go {
        ($side:literal, $store:literal) => {
            pair_row_fixed::<N, $side, $store>(factors, unit, radial, yc, dc, dst, centre)
        };
    }
    macro_rules! stores {
        ($side:literal) => {
            match store {
                Store::Stream32 => go!($side, 0),
                Store::Stream16 => go!($side, 1),
                Store::Plain => go!($side, 2),
                Store::Add => go!($side, 3),
            }
        };
    }
    match side {
        PairSide::Both => stores!(0),
        PairSide::Left => stores!(1),
        PairSide::Right => stores!(2),
    }
}

/// [`pair_row`] for one side (0 both, 1 left, 2 right) and one way of
/// storing (0 stream from 32-byte aligned, 1 stream from 16, 2 assign, 3 add).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn pair_row_fixed<const N: usize, const SIDE: u8, const STORE: u8>(factors: &[f64], unit: [f64; 3], radial: &[f64], yc: &[f64], dc: &[f64], dst: *mut f64, centre: *mut f64) {
    use std::arch::x86_64::*;
    const MAXV: usize = 4;
    let lanes = N / 4;
    let n_l = factors.len();
    let ln = n_l * N;
    let nn = N * N;
    let n_props = ln * N;
    assert!(N % 4 == 0 && lanes <= MAXV && radial.len() >= 2 * ln && yc.len() >= ln && dc.len() >= 3 * ln);
    let zero = _mm256_setzero_pd();
    // SAFETY (every access): offsets l·N + i < ln of alpha, beta and yc, and
    // x·ln + l·N + i of dc (the assert above); dst and centre hold
    // 3·n_props values (the callers' rows)
    let (alpha, beta, ycp, dcp) = (radial.as_ptr(), radial.as_ptr().add(ln), yc.as_ptr(), dc.as_ptr());
    for x in 0..3 {
        let u = unit[x];
        for (l, &f) in factors.iter().enumerate() {
            let at = l * N;
            let (al, be, ycl, dcl) = (alpha.add(at), beta.add(at), ycp.add(at), dcp.add(x * ln + at));
            let (mut av, mut bv, mut yv, mut dv) = ([zero; MAXV], [zero; MAXV], [zero; MAXV], [zero; MAXV]);
            for i in 0..lanes {
                av[i] = _mm256_loadu_pd(al.add(4 * i));
                bv[i] = _mm256_loadu_pd(be.add(4 * i));
                yv[i] = _mm256_loadu_pd(ycl.add(4 * i));
                dv[i] = _mm256_loadu_pd(dcl.add(4 * i));
            }
            let o = x * n_props + l * nn;
            // the scalar factors of every row n1, as pair_products forms them
            // ((f·α)·u, f·β, (f·YC)·u, f·DC), four at a time: the products
            // are the same IEEE operations as the scalar ones
            let (fv, uv) = (_mm256_set1_pd(f), _mm256_set1_pd(u));
            let (mut ps, mut qs, mut rs, mut ts) = ([0.0f64; N], [0.0f64; N], [0.0f64; N], [0.0f64; N]);
            for i in 0..lanes {
                let (pv, qv, rv, tv) = match SIDE {
                    0 => (_mm256_mul_pd(_mm256_mul_pd(fv, av[i]), uv), _mm256_mul_pd(fv, bv[i]), _mm256_mul_pd(_mm256_mul_pd(fv, yv[i]), uv), _mm256_mul_pd(fv, dv[i])),
                    1 => (_mm256_mul_pd(_mm256_mul_pd(fv, av[i]), uv), _mm256_mul_pd(fv, bv[i]), zero, zero),
                    _ => (_mm256_mul_pd(_mm256_mul_pd(fv, yv[i]), uv), _mm256_mul_pd(fv, dv[i]), zero, zero),
                };
                _mm256_storeu_pd(ps.as_mut_ptr().add(4 * i), pv);
                _mm256_storeu_pd(qs.as_mut_ptr().add(4 * i), qv);
                if SIDE == 0 {
                    _mm256_storeu_pd(rs.as_mut_ptr().add(4 * i), rv);
                    _mm256_storeu_pd(ts.as_mut_ptr().add(4 * i), tv);
                }
            }
            for n1 in 0..N {
                let (p, q) = (_mm256_broadcast_sd(&ps[n1]), _mm256_broadcast_sd(&qs[n1]));
                let row = o + n1 * N;
                for v in 0..lanes {
                    // fused as pair_products::<true> sums: left to right, one rounding each
                    let w = match SIDE {
                        0 => {
                            let (r, t) = (_mm256_broadcast_sd(&rs[n1]), _mm256_broadcast_sd(&ts[n1]));
                            let w = _mm256_fmadd_pd(q, dv[v], _mm256_mul_pd(p, yv[v]));
                            let w = _mm256_fmadd_pd(r, av[v], w);
                            _mm256_fmadd_pd(t, bv[v], w)
                        }
                        1 => _mm256_fmadd_pd(q, dv[v], _mm256_mul_pd(p, yv[v])),
                        _ => _mm256_fmadd_pd(q, bv[v], _mm256_mul_pd(p, av[v])),
                    };
                    let d = dst.add(row + 4 * v);
                    let w = match STORE {
                        0 => {
                            let w = _mm256_add_pd(w, zero);
                            _mm256_stream_pd(d, w);
                            w
                        }
                        1 => {
                            let w = _mm256_add_pd(w, zero);
                            _mm_stream_pd(d, _mm256_castpd256_pd128(w));
                            _mm_stream_pd(d.add(2), _mm256_extractf128_pd::<1>(w));
                            w
                        }
                        2 => {
                            let w = _mm256_add_pd(w, zero);
                            _mm256_storeu_pd(d, w);
                            w
                        }
                        _ => {
                            _mm256_storeu_pd(d, _mm256_add_pd(_mm256_loadu_pd(d), w));
                            w
                        }
                    };
                    let c = centre.add(row + 4 * v);
                    _mm256_storeu_pd(c, _mm256_sub_pd(_mm256_loadu_pd(c), w));
                }
            }
        }
    }
}

impl Calculator for SoapPowerSpectrum {

    fn name(&self) -> &str {
        Self::NAME
    }

    fn parameters(&self) -> &str {
        &self.parameters
    }

    fn keys(&self, systems: &[System]) -> Result<Labels> {
        let env = Environments::new(systems, self.expansion.settings.cutoff)?;
        let presence = env.presence();
        if let Some(mixing) = self.mixing(&env)? {
            let pseudo: Vec<(usize, Vec<bool>)> = presence.iter().map(|(c, p)| (*c, mixing.present(p))).collect();
            let labels: Vec<i32> = (0..mixing.pseudo as i32).collect();
            return Ok(Labels::new(&PSEUDO_KEY_NAMES, Self::keys_from(&env.species, &labels, pseudo.iter().map(|(c, p)| (*c, p.as_slice()))).concat()));
        }
        Ok(Labels::new(&KEY_NAMES, Self::keys_from(&env.species, &env.species, presence.iter().map(|(c, p)| (*c, p.as_slice()))).concat()))
    }

    fn compute(&self, systems: &[System], options: &ComputeOptions) -> Result<TensorMap> {
        let flags = options.gradient_flags()?;
        let alchemical = self.expansion.settings.alchemical.as_ref();
        if !(flags.positions || flags.strain) && alchemical.is_none() {
            return self.compute_values(systems, options);
        }
        if alchemical.is_none() && !reference_path() {
            return self.compute_gradients(systems, options, flags);
        }
        let mut per_pair = Environments::expansion_bytes_per_pair(&self.expansion, GradientFlags { positions: false, strain: false, pair_factors: flags.positions || flags.strain });
        if let Some(a) = alchemical {
            // each pair is repeated for every pseudo-element it feeds
            per_pair *= 1.0 + a.coupling.len() as f64;
        }
        let env = Environments::for_options(systems, self.expansion.settings.cutoff, options, per_pair)?;
        let mixing = self.mixing(&env)?;
        let centres = match &mixing {
            // the keys name pseudo-elements, not species: centres are not pre-selected by key
            Some(_) => env.centres(&ComputeOptions { selected_keys: None, ..options.clone() })?,
            None => env.centres(options)?,
        };
        {
            // refuse before allocating what would not fit
            let (n_max, l_max) = (self.expansion.n_max() as f64, self.expansion.settings.max_angular as f64);
            let pseudo = mixing.as_ref().map(|m| m.pseudo);
            // P pseudo-elements grow the output as P²: name them, the usual cause
            let what = match pseudo {
                Some(p) => format!("the SOAP power spectrum of {p} pseudo-elements (density.alchemical.coupling has {p} rows)"),
                None => "the SOAP power spectrum".to_string(),
            };
            env.check_output(&what, &centres, flags, |present| {
                let present = pseudo.unwrap_or(present);
                (present * (present + 1) / 2) as f64 * (l_max + 1.0) * n_max * n_max
            })?;
        }
        let expand_flags = GradientFlags { positions: false, strain: false, pair_factors: flags.positions || flags.strain };
        let densities = env.expand(&self.expansion, &centres, expand_flags)?;
        let n_max = self.expansion.n_max();
        let n_lm = self.expansion.n_lm();
        let l_max = self.expansion.settings.max_angular;
        // with pseudo-elements, U is applied to every centre's density and
        // everything below runs on the B pseudo-elements instead of the species
        let (densities, neighbor_labels, key_names) = match &mixing {
            Some(m) => (
                densities.into_par_iter().map(|d| m.contract(d, n_max)).collect::<Vec<_>>(),
                (0..m.pseudo as i32).collect::<Vec<i32>>(),
                PSEUDO_KEY_NAMES,
            ),
            None => (densities, env.species.clone(), KEY_NAMES),
        };
        let ns = neighbor_labels.len();
        let stride_lm = ns * n_max;
        let n_props = (l_max + 1) * n_max * n_max;
        let properties = self.properties();

        let mut key_values = Vec::new();
        let mut blocks = Vec::new();
        for key in Self::keys_from(&env.species, &neighbor_labels, densities.iter().map(|d| (d.centre_species, d.present.as_slice()))) {
            if !key_selected(options, &key_names, &key)? {
                continue;
            }
            options.check_cancelled()?;
            let c = env.species.binary_search(&key[0]).unwrap_or(0);
            let s1 = neighbor_labels.binary_search(&key[1]).unwrap_or(0);
            let s2 = neighbor_labels.binary_search(&key[2]).unwrap_or(0);
            let cross = if s1 != s2 { std::f64::consts::SQRT_2 } else { 1.0 };
            let factors: Vec<f64> = (0..=l_max)
                .map(|l| cross * if l % 2 == 0 { 1.0 } else { -1.0 } / ((2 * l + 1) as f64).sqrt())
                .collect();
            let rows: Vec<&CentreDensity> =
                densities.iter().filter(|d| d.centre_species == c && d.present[s1] && d.present[s2]).collect();

            let mut values = crate::tensor::buffer::zeroed(rows.len() * n_props, "the power spectrum")?;
            values.par_chunks_mut(n_props.max(1)).zip(rows.par_iter()).for_each(|(out, d)| {
                let cf = &d.coefficients;
                accumulate_products(out, &factors, n_max, &cf[s1 * n_max..], stride_lm, &cf[s2 * n_max..], stride_lm);
            });
            let mut block = TensorBlock::new(sample_labels(&rows), vec![], properties.clone(), values)?;

            if flags.positions || flags.strain {
                let gradient_atoms: Vec<Vec<(usize, Option<usize>)>> = if flags.positions {
                    match &mixing {
                        // a neighbour (of its real species) moves pseudo-element b when u_b,sp ≠ 0
                        Some(m) => rows.iter().map(|d| d.gradient_rows(|sp| m.weight(s1, sp) != 0.0 || m.weight(s2, sp) != 0.0)).collect(),
                        None => rows.iter().map(|d| d.gradient_rows(|sp| sp == s1 || sp == s2)).collect(),
                    }
                } else {
                    vec![Vec::new(); rows.len()]
                };
                let total: usize = gradient_atoms.iter().map(Vec::len).sum();
                // every element is written once by its sample, which faults
                // its own part in first (see SampleGradient); a reused
                // (resident) buffer needs neither zeros nor faulting
                let (mut positions, reused) = crate::tensor::buffer::for_overwrite(total * 3 * n_props, "the power spectrum position gradients")?;
                // (transparent huge pages would cut the kernel's share on
                // si512, but on a virtual machine that hands free memory back
                // to its host they made g2x1000 1.3–1.5× slower, and erratic)
                let prefault = !reused && positions.len() * 8 >= 1 << 20;
                let mut strain = crate::tensor::buffer::zeroed(if flags.strain { rows.len() * 9 * n_props } else { 0 }, "the power spectrum strain gradients")?;
                // one disjoint output slice per sample, filled in parallel
                let mut chunks = Vec::with_capacity(rows.len());
                let mut rest = positions.as_mut_slice();
                for atoms in &gradient_atoms {
                    let (head, tail) = rest.split_at_mut(atoms.len() * 3 * n_props);
                    chunks.push(head);
                    rest = tail;
                }
                let strain_chunks: Vec<&mut [f64]> = if flags.strain {
                    strain.chunks_exact_mut(9 * n_props).collect()
                } else {
                    (0..rows.len()).map(|_| <&mut [f64]>::default()).collect()
                };
                let shape = Shape { l_max, n_max, n_lm };
                chunks
                    .into_par_iter()
                    .zip(strain_chunks)
                    .zip(rows.par_iter().zip(gradient_atoms.par_iter()))
                    .for_each_init(
                        || GradientScratch::new(&shape),
                        |scratch, ((out, out_strain), (d, atoms))| {
                            if prefault {
                                crate::tensor::buffer::prefault_part(out);
                            }
                            let task = SampleGradient { shape: &shape, factors: &factors, s1, s2, density: d, atoms };
                            task.run(scratch, out, out_strain);
                        },
                    );
                if flags.positions {
                    let mut samples = Vec::with_capacity(3 * total);
                    for (row, (d, atoms)) in rows.iter().zip(&gradient_atoms).enumerate() {
                        for &(atom, _) in atoms {
                            samples.extend_from_slice(&[row as i32, d.system as i32, atom as i32]);
                        }
                    }
                    let gb = TensorBlock::new(
                        Labels::new(&["sample", "system", "atom"], samples),
                        vec![Labels::range("xyz", 3)],
                        properties.clone(),
                        positions,
                    )?;
                    block.gradients.push(("positions".into(), gb));
                }
                if flags.strain {
                    // featomic 0.6.7 names the strain components (xyz_2, xyz_1) in
                    // this order; values[a][b] = ∂/∂ε_ab
                    let gb = TensorBlock::new(
                        Labels::range("sample", rows.len()),
                        vec![Labels::range("xyz_2", 3), Labels::range("xyz_1", 3)],
                        properties.clone(),
                        strain,
                    )?;
                    block.gradients.push(("strain".into(), gb));
                }
            }
            key_values.extend_from_slice(&key);
            blocks.push(block);
        }
        let tensor = TensorMap::new(Labels::new(&key_names, key_values), blocks)?;
        if super::soap::ragged::is_ragged(self.expansion.sizes()) {
            return super::soap::ragged::trim(tensor, self.expansion.sizes(), false);
        }
        Ok(tensor)
    }
}

#[cfg(test)]
mod kernel_tests {
    /// The register-blocked AVX2 contraction gives bitwise what the plain
    /// loop gives (same products, same order, nothing fused), for every N
    /// it serves, strides wider than N, and an output that already holds
    /// values.
    #[test]
    fn register_blocked_products_equal_the_plain_loop_bitwise() {
        #[cfg(target_arch = "x86_64")]
        {
            if !crate::math::cpu::has_avx2_fma() {
                return;
            }
            let mut uniform = crate::math::random::xorshift_uniform(0x2545_f491_4f6c_dd1du64);
            let mut next = move || uniform() - 0.5;
            macro_rules! check {
                ($($n:literal)*) => {$({
                    const N: usize = $n;
                    for n_l in [1usize, 3, 7] {
                        let stride = 3 * N + 1;
                        let factors: Vec<f64> = (0..n_l).map(|_| 1.0 + next()).collect();
                        let a: Vec<f64> = (0..n_l * n_l * stride).map(|_| next()).collect();
                        let b: Vec<f64> = (0..n_l * n_l * stride).map(|_| next()).collect();
                        let start: Vec<f64> = (0..n_l * N * N).map(|_| next()).collect();
                        let (mut plain, mut blocked) = (start.clone(), start);
                        super::products_fixed::<N>(&mut plain, &factors, &a, stride, &b, stride);
                        // SAFETY: the CPU has AVX2 and FMA (checked above)
                        unsafe { super::products_registers::<N>(&mut blocked, &factors, &a, stride, &b, stride) };
                        for (x, y) in plain.iter().zip(&blocked) {
                            assert_eq!(x.to_bits(), y.to_bits(), "N = {N}, {n_l} channels: {x} != {y}");
                        }
                    }
                })*};
            }
            check!(4 8 12 16);
        }
    }
}

#[cfg(test)]
mod streaming_tests {
    use super::*;
    use crate::calculators::tests_utils::{molecule, triclinic};

    fn hypers(max_radial: usize, max_angular: usize, cutoff: f64) -> String {
        format!(
            r#"{{"cutoff": {{"radius": {cutoff}, "smoothing": {{"type": "ShiftedCosine", "width": 0.5}}}},
                "density": {{"type": "Gaussian", "width": 0.3}},
                "basis": {{"type": "TensorProduct", "max_angular": {max_angular}, "radial": {{"type": "Gto", "max_radial": {max_radial}}}}}}}"#
        )
    }

    /// Two species in a periodic box, a few atoms with several images each.
    fn water_like() -> System {
        let species = vec![8, 1, 1, 8, 1, 1, 8, 1, 1];
        let mut next = crate::math::random::xorshift_uniform(0x9e37_79b9_7f4a_7c15u64);
        let positions = (0..species.len()).map(|_| [4.5 * next(), 4.5 * next(), 4.5 * next()]).collect();
        System::new(species, positions, [[4.5, 0.0, 0.0], [0.0, 4.5, 0.0], [0.0, 0.0, 4.5]], [true; 3]).unwrap()
    }

    fn assert_same_bits(a: &TensorMap, b: &TensorMap, what: &str) {
        assert_eq!(a.keys, b.keys, "{what}: keys");
        assert_eq!(a.blocks.len(), b.blocks.len());
        for (x, y) in a.blocks.iter().zip(&b.blocks) {
            assert_eq!(x.samples, y.samples, "{what}: samples");
            for (u, v) in x.values.iter().zip(&y.values) {
                assert_eq!(u.to_bits(), v.to_bits(), "{what}: values {u} != {v}");
            }
            assert_eq!(x.gradients.len(), y.gradients.len());
            for ((_, g), (_, h)) in x.gradients.iter().zip(&y.gradients) {
                assert_eq!(g.samples, h.samples, "{what}: gradient samples");
                assert_eq!(g.values.len(), h.values.len());
                for (k, (u, v)) in g.values.iter().zip(&h.values).enumerate() {
                    assert_eq!(u.to_bits(), v.to_bits(), "{what}: gradient entry {k}: {u} != {v}");
                }
            }
        }
    }

    /// The streaming kernel gives the general loop's position gradients bit
    /// for bit: one and several species, neighbours with several periodic
    /// images (triclinic, water_like), every radial size it serves.
    #[test]
    fn streaming_position_gradients_equal_the_general_loop_bitwise() {
        #[cfg(target_arch = "x86_64")]
        {
            if !crate::math::cpu::has_avx2_fma() {
                return;
            }
            let options = ComputeOptions { gradients: vec!["positions".into()], ..Default::default() };
            for (max_radial, max_angular) in [(3, 3), (7, 4), (11, 2), (15, 1)] {
                let calc = SoapPowerSpectrum::new(&hypers(max_radial, max_angular, 4.0)).unwrap();
                for (name, system) in [("molecule", molecule()), ("triclinic", triclinic()), ("water_like", water_like())] {
                    let systems = [system];
                    REFERENCE_PATH.store(true, std::sync::atomic::Ordering::SeqCst);
                    let reference = calc.compute(&systems, &options);
                    REFERENCE_PATH.store(false, std::sync::atomic::Ordering::SeqCst);
                    let streamed = calc.compute(&systems, &options).unwrap();
                    assert_same_bits(&reference.unwrap(), &streamed, &format!("{name}, n_max {}", max_radial + 1));
                }
            }
        }
    }

    /// The per-centre driver's rows, values and gradients do not depend on
    /// the number of threads (row plan, neighbour-list chunks and the
    /// parallel loop all split differently at 1, 2 and 3): the same bits,
    /// on 2 species with 60 atoms and on a 1-species crystal of 64.
    #[test]
    fn gradients_are_the_same_bits_at_1_2_and_3_threads() {
        let mut next = crate::math::random::xorshift_uniform(0x2545_f491_4f6c_dd1du64);
        let species = (0..60).map(|k| if k % 3 == 0 { 8 } else { 1 }).collect();
        let positions = (0..60).map(|_| [8.0 * next(), 8.0 * next(), 8.0 * next()]).collect();
        let box2 = System::new(species, positions, [[8.0, 0.0, 0.0], [0.0, 8.0, 0.0], [0.0, 0.0, 8.0]], [true; 3]).unwrap();
        let mut silicon = Vec::new();
        for c in 0..8 {
            let (a, b, d) = ((c & 1) as f64, ((c >> 1) & 1) as f64, ((c >> 2) & 1) as f64);
            for base in [[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]] {
                for shift in [0.0, 0.25] {
                    let jitter = [0.1 * (next() - 0.5), 0.1 * (next() - 0.5), 0.1 * (next() - 0.5)];
                    silicon.push([5.43 * (a + base[0] + shift) + jitter[0], 5.43 * (b + base[1] + shift) + jitter[1], 5.43 * (d + base[2] + shift) + jitter[2]]);
                }
            }
        }
        let crystal = System::new(vec![14; silicon.len()], silicon, [[10.86, 0.0, 0.0], [0.0, 10.86, 0.0], [0.0, 0.0, 10.86]], [true; 3]).unwrap();
        let calc = SoapPowerSpectrum::new(&hypers(7, 4, 4.0)).unwrap();
        for (name, system) in [("two species", box2), ("silicon", crystal)] {
            let systems = [system];
            for gradients in [vec!["positions".to_string()], vec!["positions".to_string(), "strain".to_string()]] {
                let options = ComputeOptions { gradients: gradients.clone(), ..Default::default() };
                let at = |threads: usize| {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    pool.install(|| calc.compute(&systems, &options).unwrap())
                };
                let one = at(1);
                assert!(one.blocks.iter().all(|b| b.gradients.iter().all(|(_, g)| !g.values.is_empty())), "{name}: gradients computed");
                for threads in [2, 3] {
                    assert_same_bits(&one, &at(threads), &format!("{name}, {gradients:?}, 1 vs {threads} threads"));
                }
            }
        }
    }

    /// Every way `pair_row` stores (streamed from 32- or 16-byte aligned
    /// rows, plain, added to an earlier image) and every side gives what
    /// `pair_products` and the general loop's sums give, bit for bit.
    #[test]
    fn pair_row_equals_pair_products_for_every_store() {
        #[cfg(target_arch = "x86_64")]
        {
            if !crate::math::cpu::has_avx2_fma() {
                return;
            }
            const N: usize = 8;
            let l_max = 3;
            let (ln, n_lm) = ((l_max + 1) * N, (l_max + 1) * (l_max + 1));
            let n_props = ln * N;
            let mut uniform = crate::math::random::xorshift_uniform(0x2545_f491_4f6c_dd1du64);
            let mut next = move || uniform() - 0.5;
            let shape = Shape { l_max, n_max: N, n_lm };
            let factors: Vec<f64> = (0..=l_max).map(|l| (-1.0f64).powi(l as i32) / ((2 * l + 1) as f64).sqrt()).collect();
            let density = CentreDensity::default();
            let task = SampleGradient { shape: &shape, factors: &factors, s1: 0, s2: 1, density: &density, atoms: &[] };
            let radial: Vec<f64> = (0..2 * ln).map(|_| next()).collect();
            let yc: Vec<f64> = (0..ln).map(|_| next()).collect();
            let dc: Vec<f64> = (0..3 * ln).map(|_| next()).collect();
            let unit = [0.48, -0.6, 0.64];
            for side in [PairSide::Both, PairSide::Left, PairSide::Right] {
                let mut v = vec![0.0; 3 * n_props];
                task.pair_products::<true>(N, side, unit, &radial[..ln], &radial[ln..], &yc, &dc, &mut v);
                for store in [Store::Stream32, Store::Stream16, Store::Plain, Store::Add] {
                    // a 32-byte aligned buffer, offset to the alignment each store needs
                    let mut buffer = vec![[0.0f64; 4]; 3 * n_props / 4 + 1];
                    let flat = buffer.as_mut_ptr() as *mut f64;
                    let start = flat as usize;
                    let offset = if store == Store::Stream32 { (32 - start % 32) % 32 / 8 } else { ((32 - start % 32) % 32 / 8 + 2) % 4 };
                    // SAFETY: offset < 4, and the buffer holds 3·n_props + 4 values
                    let dst = unsafe { std::slice::from_raw_parts_mut(flat.add(offset), 3 * n_props) };
                    let before: Vec<f64> = (0..3 * n_props).map(|_| next()).collect();
                    dst.copy_from_slice(&before);
                    let mut centre: Vec<f64> = (0..3 * n_props).map(|_| next()).collect();
                    let centre_before = centre.clone();
                    // SAFETY: the CPU has AVX2 and FMA; both rows hold 3·n_props values
                    unsafe {
                        pair_row::<N>(&factors, side, unit, &radial, &yc, &dc, store, dst.as_mut_ptr(), centre.as_mut_ptr());
                        std::arch::x86_64::_mm_sfence();
                    }
                    for k in 0..3 * n_props {
                        let (want, w) = if store == Store::Add { (before[k] + v[k], v[k]) } else { (v[k] + 0.0, v[k] + 0.0) };
                        assert_eq!(dst[k].to_bits(), want.to_bits(), "row entry {k}");
                        assert_eq!(centre[k].to_bits(), (centre_before[k] - w).to_bits(), "centre entry {k}");
                    }
                }
            }
        }
    }
}
