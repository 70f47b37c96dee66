//! Several splines on one grid, their knots interleaved: the values-only
//! SOAP path evaluates every angular channel of a radial integral at one
//! distance, and here all channels of one grid interval are one contiguous
//! block of memory.
//!
//! Why: with one [`HermiteSpline`] per channel, a distance's lookup read 7
//! tables (l_max = 6) in 7 places, and each channel paid its own checks
//! (the table's size, the block's bounds, whether its grid is shared):
//! ≈ 17 of the ≈ 27 instructions of a channel (callgrind, si512). The
//! values are the same numbers with the same basis and the same fused
//! multiply-adds in the same order as [`HermiteSpline::evaluate`], so the
//! same bits: only where they are read from changed.
use super::{locate_on_grid, HermiteSpline, SplineLocation};

/// `channels` splines of `n_functions` functions each on one uniform grid,
/// stored per knot as `[channel][values…, derivatives…]`: the interval
/// [x_k, x_{k+1}] of every channel is the contiguous block of knots k and
/// k + 1 (4 · channels · n_functions values).
#[derive(Debug, Clone)]
pub struct SharedGridSplines {
    start: f64,
    inv_step: f64,
    positions: Vec<f64>,
    inv_widths: Vec<f64>,
    channels: usize,
    n_functions: usize,
    /// `[k][channel][values n_functions, derivatives n_functions]`
    data: Vec<f64>,
}

impl SharedGridSplines {
    /// The splines `splines` (at least one, all with the same number of
    /// functions) interleaved; `None` where their grids or sizes differ.
    pub fn new(splines: &[HermiteSpline]) -> Option<SharedGridSplines> {
        let first = splines.first()?;
        let same = |s: &HermiteSpline| {
            s.n_functions == first.n_functions
                && s.start.to_bits() == first.start.to_bits()
                && s.inv_step.to_bits() == first.inv_step.to_bits()
                && s.positions.len() == first.positions.len()
                && s.positions.iter().zip(&first.positions).all(|(a, b)| a.to_bits() == b.to_bits())
        };
        if !splines.iter().all(same) {
            return None;
        }
        let (n_points, block) = (first.positions.len(), 2 * first.n_functions);
        let mut data = Vec::with_capacity(n_points * splines.len() * block);
        for k in 0..n_points {
            for s in splines {
                data.extend_from_slice(&s.data[k * block..(k + 1) * block]);
            }
        }
        Some(SharedGridSplines {
            start: first.start,
            inv_step: first.inv_step,
            positions: first.positions.clone(),
            inv_widths: first.inv_widths.clone(),
            channels: splines.len(),
            n_functions: first.n_functions,
            data,
        })
    }

    /// Number of splines (channels) on this grid.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Number of functions of each channel.
    pub fn n_functions(&self) -> usize {
        self.n_functions
    }

    /// [`HermiteSpline::locate`] on this grid: the same interval and the
    /// same basis values, bit for bit.
    #[inline(always)]
    pub fn locate(&self, x: f64) -> SplineLocation {
        // SAFETY: the grid is that of a built HermiteSpline: n ≥ 2
        // positions and their n − 1 inverse widths
        unsafe { locate_on_grid(self.start, self.inv_step, &self.positions, &self.inv_widths, x) }
    }

    /// [`SharedGridSplines::locate`] of four distances at once: their
    /// intervals and value bases (h00, h10, h01, h11), bit for bit those of
    /// `locate(x[q])` and [`SplineLocation::value_basis`].
    ///
    /// Why: the look-up is about 20 scalar floating-point operations a
    /// distance (the interval's guess and its floor, the comparisons, the
    /// Hermite basis), issued on the same pipes as the 56 vector
    /// multiply-adds of the channels; four lanes at a time they are about a
    /// quarter as many (a values-only spline of si512's 28 distances a centre,
    /// micro-benchmark: 25.6 → 23.1 ns a distance with the table in L2, 20.4 →
    /// 16.2 ns with it in L1). Each lane does the scalar operations in their
    /// order (no fused operations), so the same bits; the corrections of the
    /// guess by one interval stay scalar, per lane.
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    pub unsafe fn locate_values4(&self, x: &[f64; 4]) -> ([usize; 4], [[f64; 4]; 4]) {
        use std::arch::x86_64::*;
        let positions = &self.positions;
        let n = positions.len();
        // the grid of a built HermiteSpline: n ≥ 2 positions and n − 1
        // inverse widths, and few enough knots for 32-bit indices
        debug_assert!(n >= 2 && self.inv_widths.len() == n - 1 && n <= i32::MAX as usize);
        let xv = _mm256_loadu_pd(x.as_ptr());
        // guess = ⌊(x − start) · (1 / step)⌋, as `locate_on_grid`
        let guess = _mm256_floor_pd(_mm256_mul_pd(_mm256_sub_pd(xv, _mm256_set1_pd(self.start)), _mm256_set1_pd(self.inv_step)));
        // if guess > 0 { min(guess, n − 2) } else { 0 }: NaN and guesses ≤ 0
        // give 0 (the comparisons are false for NaN), +∞ gives n − 2
        let last = _mm256_set1_pd((n - 2) as f64);
        let clamped = _mm256_blendv_pd(last, guess, _mm256_cmp_pd::<_CMP_LT_OQ>(guess, last));
        let guess = _mm256_and_pd(clamped, _mm256_cmp_pd::<_CMP_GT_OQ>(guess, _mm256_setzero_pd()));
        // integers in [0, n − 2], so the conversion is exact
        let mut k4 = [0i32; 4];
        _mm_storeu_si128(k4.as_mut_ptr().cast(), _mm256_cvttpd_epi32(guess));
        let (mut ks, mut x_k, mut x_k1, mut inv) = ([0usize; 4], [0.0; 4], [0.0; 4], [0.0; 4]);
        for q in 0..4 {
            let (mut k, xq) = (k4[q] as usize, x[q]);
            // SAFETY: k ≤ n − 2, and k + 1 ≤ n − 1 (as in `locate_on_grid`)
            if k > 0 && xq < *positions.get_unchecked(k) {
                k -= 1;
            } else if k + 2 < n && xq >= *positions.get_unchecked(k + 1) {
                k += 1;
            }
            ks[q] = k;
            x_k[q] = *positions.get_unchecked(k);
            x_k1[q] = *positions.get_unchecked(k + 1);
            inv[q] = *self.inv_widths.get_unchecked(k);
        }
        // `hermite_basis`: t = (x − x_k)·(1/Δ), t², t³ and the four value
        // bases, the same operations in the same order
        let x_kv = _mm256_loadu_pd(x_k.as_ptr());
        let delta = _mm256_sub_pd(_mm256_loadu_pd(x_k1.as_ptr()), x_kv);
        let t = _mm256_mul_pd(_mm256_sub_pd(xv, x_kv), _mm256_loadu_pd(inv.as_ptr()));
        let t2 = _mm256_mul_pd(t, t);
        let t3 = _mm256_mul_pd(t2, t);
        let c = _mm256_set1_pd;
        let h00 = _mm256_add_pd(_mm256_sub_pd(_mm256_mul_pd(c(2.0), t3), _mm256_mul_pd(c(3.0), t2)), c(1.0));
        let h10 = _mm256_mul_pd(_mm256_add_pd(_mm256_sub_pd(t3, _mm256_mul_pd(c(2.0), t2)), t), delta);
        let h01 = _mm256_add_pd(_mm256_mul_pd(c(-2.0), t3), _mm256_mul_pd(c(3.0), t2));
        let h11 = _mm256_mul_pd(_mm256_sub_pd(t3, t2), delta);
        let mut basis = [[0.0; 4]; 4];
        for (row, h) in basis.iter_mut().zip([h00, h10, h01, h11]) {
            _mm256_storeu_pd(row.as_mut_ptr(), h);
        }
        let lane = |q: usize| [basis[0][q], basis[1][q], basis[2][q], basis[3][q]];
        (ks, [lane(0), lane(1), lane(2), lane(3)])
    }

    /// The values of every channel at interval `k` with the basis values
    /// `h` (h00, h10, h01, h11) broadcast, into `out[channel · N + f]`,
    /// N = `n_functions` a multiple of 4: `h00·p0 + h10·m0 + h01·p1 + h11·m1`
    /// as a product and three fused multiply-adds, left to right, as
    /// [`HermiteSpline::evaluate`] computes them where [`super::fused`]
    /// holds.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `N == self.n_functions()`; `k` is at most
    /// the number of knots − 2 (as [`SharedGridSplines::locate`] gives);
    /// `out` is valid for `channels() · N` writes.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn evaluate_values_fma<const N: usize>(&self, k: usize, h: &[std::arch::x86_64::__m256d; 4], out: *mut f64) {
        use std::arch::x86_64::{_mm256_fmadd_pd, _mm256_loadu_pd, _mm256_mul_pd, _mm256_storeu_pd};
        debug_assert!(N % 4 == 0 && self.n_functions == N && k + 2 <= self.positions.len());
        let knot = self.channels * 2 * N;
        // SAFETY: knots k and k + 1 exist (k ≤ n − 2), each holds
        // `channels` blocks of 2N values (N values, N derivatives); out has
        // channels · N places
        let p = self.data.as_ptr().add(k * knot);
        let q = p.add(knot);
        for c in 0..self.channels {
            let (a, b, o) = (p.add(c * 2 * N), q.add(c * 2 * N), out.add(c * N));
            for v in (0..N).step_by(4) {
                let mut acc = _mm256_mul_pd(h[0], _mm256_loadu_pd(a.add(v)));
                acc = _mm256_fmadd_pd(h[1], _mm256_loadu_pd(a.add(N + v)), acc);
                acc = _mm256_fmadd_pd(h[2], _mm256_loadu_pd(b.add(v)), acc);
                acc = _mm256_fmadd_pd(h[3], _mm256_loadu_pd(b.add(N + v)), acc);
                _mm256_storeu_pd(o.add(v), acc);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Interleaved tables give the bits of the per-channel splines, at the
    /// knots, between them, outside the range, and for NaN.
    #[test]
    fn interleaved_values_are_the_per_channel_bits() {
        // three channels of 8 functions tabulated on one grid of 41 knots
        let n_points = 41;
        let splines: Vec<HermiteSpline> = (0..3)
            .map(|c| {
                let (mut values, mut derivatives) = (Vec::new(), Vec::new());
                for k in 0..n_points {
                    let x = 5.0 * k as f64 / (n_points - 1) as f64;
                    for n in 0..8 {
                        let a = 0.3 + 0.2 * n as f64 + 0.1 * c as f64;
                        let (e, w) = ((-a * x * x).exp(), 1.0 + n as f64 * x);
                        values.push(e * w.cos());
                        derivatives.push(e * (-2.0 * a * x * w.cos() - n as f64 * w.sin()));
                    }
                }
                HermiteSpline::from_uniform_grid(0.0, 5.0, 8, &values, &derivatives).unwrap()
            })
            .collect();
        let first = &splines[0];
        let shared = SharedGridSplines::new(&splines).expect("one grid");
        assert_eq!((shared.channels(), shared.n_functions()), (3, 8));
        let mut xs: Vec<f64> = (0..=997).map(|k| 5.0 * k as f64 / 997.0).collect();
        xs.extend_from_slice(first.positions());
        xs.extend_from_slice(&[-1e-9, -3.0, 5.0 + 1e-9, 7.5, f64::NAN, f64::INFINITY, -0.0]);
        for &x in &xs {
            let location = shared.locate(x);
            let reference = splines[0].locate(x);
            assert_eq!(location.k, reference.k, "x = {x}");
            assert_eq!(location.value_basis().map(f64::to_bits), reference.value_basis().map(f64::to_bits), "x = {x}");
            if !crate::math::spline::fused() {
                continue;
            }
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::x86_64::_mm256_set1_pd;
                let mut out = [0.0; 24];
                let [a, b, c, d] = location.value_basis();
                // SAFETY: fused() says the CPU has AVX2 and FMA; 8 functions,
                // k from locate, 3 · 8 places
                unsafe {
                    let h = [_mm256_set1_pd(a), _mm256_set1_pd(b), _mm256_set1_pd(c), _mm256_set1_pd(d)];
                    shared.evaluate_values_fma::<8>(location.k, &h, out.as_mut_ptr());
                }
                for (c, spline) in splines.iter().enumerate() {
                    let mut expected = [0.0; 8];
                    spline.evaluate(&reference, &mut expected, None);
                    for n in 0..8 {
                        assert_eq!(out[c * 8 + n].to_bits(), expected[n].to_bits(), "x = {x}, channel {c}, n = {n}");
                    }
                }
            }
        }
        // four at a time: the same intervals and bases, bit for bit, for
        // every x above (knots, midpoints, outside, NaN, ±∞) and random ones
        #[cfg(target_arch = "x86_64")]
        if crate::math::cpu::has_avx2() {
            let mut state = 0x1234_5678_u64;
            let mut many = xs.clone();
            many.extend((0..4000).map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                -1.0 + 7.0 * ((state >> 11) as f64 / (1u64 << 53) as f64)
            }));
            many.extend_from_slice(&[f64::NEG_INFINITY, 1e300, -1e300, 5.0, 0.0, f64::MIN_POSITIVE]);
            for rotation in 0..4 {
                for four in many[rotation..].chunks_exact(4) {
                    let four: &[f64; 4] = four.try_into().expect("four");
                    // SAFETY: the CPU has AVX2 (checked above)
                    let (ks, bases) = unsafe { shared.locate_values4(four) };
                    for q in 0..4 {
                        let reference = shared.locate(four[q]);
                        assert_eq!(ks[q], reference.k, "x = {}", four[q]);
                        assert_eq!(bases[q].map(f64::to_bits), reference.value_basis().map(f64::to_bits), "x = {}", four[q]);
                    }
                }
            }
        }
        // different grids are not interleaved
        let coarse = HermiteSpline::with_accuracy(0.0, 5.0, 8, 1e-2, |x, v, d| {
            v.fill(x.sin());
            d.fill(x.cos());
        })
        .unwrap();
        assert_ne!(coarse.len(), n_points);
        assert!(SharedGridSplines::new(&[splines[0].clone(), coarse]).is_none());
        assert!(SharedGridSplines::new(&[]).is_none());
    }
}
