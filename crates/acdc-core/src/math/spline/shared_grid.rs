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
