//! Cubic Hermite splines of many functions at once on a uniform grid.
//!
//! Used to tabulate radial integrals I_nl(r) and dI_nl/dr: one interval
//! lookup per evaluation point gives all functions and their derivatives.
//!
//! Construction follows featomic 0.6 so that splined results agree with
//! featomic's to rounding (docs/CONVENTIONS.md §2.7): start from 11 equidistant
//! points on [start, stop], evaluate the function at every interval midpoint,
//! and stop when the mean absolute error *or* the mean relative error of the
//! spline *values* at these midpoints is below the accuracy; otherwise insert
//! the midpoints (halving the spacing) and repeat. A spline may not exceed
//! 10 000 points (so at most 5121 points are ever used). featomic measures
//! the error on the values only, not on the derivatives; we do the same so
//! that both libraries pick the same grid.

use crate::error::{Error, Result};

mod shared_grid;
pub use shared_grid::SharedGridSplines;

/// Maximal number of points in a spline (featomic's limit).
pub const MAX_SPLINE_POINTS: usize = 10_000;

/// Number of points of the initial grid.
const INITIAL_POINTS: usize = 11;

/// A cubic Hermite spline of `n_functions` functions of one variable,
/// tabulated on a uniform grid over [start, stop].
///
/// Data are stored per knot as `[values…, derivatives…]` so that evaluating
/// all functions touches two contiguous blocks of memory.
#[derive(Debug, Clone)]
pub struct HermiteSpline {
    start: f64,
    stop: f64,
    n_functions: usize,
    inv_step: f64,
    positions: Vec<f64>,
    /// 1 / (x_{k+1} − x_k) of every interval: evaluation multiplies
    /// instead of dividing (two divisions per channel and pair before)
    inv_widths: Vec<f64>,
    data: Vec<f64>,
}

/// Where a point falls in a spline's grid, with the Hermite basis
/// polynomials already evaluated; reusable for every spline sharing the same
/// grid.
#[derive(Debug, Clone, Copy)]
pub struct SplineLocation {
    /// Index of the interval [x_k, x_{k+1}].
    pub k: usize,
    /// Number of knots of the grid this location was computed for.
    pub n_points: usize,
    h00: f64,
    h10: f64,
    h01: f64,
    h11: f64,
    d00: f64,
    d10: f64,
    d01: f64,
    d11: f64,
}

impl SplineLocation {
    /// The basis values (h00, h10, h01, h11) that multiply the interval's
    /// (p0, m0, p1, m1) rows for the values.
    #[inline(always)]
    pub fn value_basis(&self) -> [f64; 4] {
        [self.h00, self.h10, self.h01, self.h11]
    }
}

impl HermiteSpline {
    /// Builds a spline of `n_functions` functions on [start, stop] reaching
    /// the requested mean `accuracy` (see the module documentation).
    ///
    /// `function(x, values, derivatives)` fills the `n_functions` values and
    /// derivatives at `x` (units: those of the functions and function/x).
    pub fn with_accuracy<F>(start: f64, stop: f64, n_functions: usize, accuracy: f64, function: F) -> Result<HermiteSpline>
    where
        F: FnMut(f64, &mut [f64], &mut [f64]),
    {
        let mut splines = HermiteSpline::with_accuracy_grouped(start, stop, &[n_functions], accuracy, function)?;
        Ok(splines.pop().expect("one group gives one spline"))
    }

    /// Builds one spline per group of functions, each refined independently
    /// exactly as if it had been built alone with [`HermiteSpline::with_accuracy`],
    /// but evaluating `function` only once per position for all groups.
    ///
    /// `function(x, values, derivatives)` fills all Σ `group_sizes` functions,
    /// group after group. featomic splines each angular channel l of a radial
    /// integral separately; grouping by l reproduces its grids.
    pub fn with_accuracy_grouped<F>(
        start: f64,
        stop: f64,
        group_sizes: &[usize],
        accuracy: f64,
        mut function: F,
    ) -> Result<Vec<HermiteSpline>>
    where
        F: FnMut(f64, &mut [f64], &mut [f64]),
    {
        if !(accuracy.is_finite() && accuracy > 0.0) {
            return Err(Error::InvalidParameter(format!(
                "spline_accuracy must be a positive number, got {accuracy}"
            )));
        }
        if !(start.is_finite() && stop.is_finite() && start < stop) {
            return Err(Error::InvalidParameter(format!(
                "spline range must satisfy start < stop, got [{start}, {stop}]"
            )));
        }
        let total: usize = group_sizes.iter().sum();
        let offsets: Vec<usize> = group_sizes
            .iter()
            .scan(0, |acc, &size| {
                let offset = *acc;
                *acc += size;
                Some(offset)
            })
            .collect();

        // the grid shared by every group, with all functions: [k][values…, derivatives…]
        let grid_step = (stop - start) / (INITIAL_POINTS - 1) as f64;
        let mut positions: Vec<f64> = (0..INITIAL_POINTS).map(|k| start + k as f64 * grid_step).collect();
        let mut data = vec![0.0; INITIAL_POINTS * 2 * total];
        for (k, &x) in positions.iter().enumerate() {
            let block = &mut data[k * 2 * total..(k + 1) * 2 * total];
            let (values, derivatives) = block.split_at_mut(total);
            function(x, values, derivatives);
        }

        // number of grid points at which each group converged
        let mut converged_at: Vec<Option<usize>> = vec![None; group_sizes.len()];
        for (g, &size) in group_sizes.iter().enumerate() {
            if size == 0 {
                converged_at[g] = Some(INITIAL_POINTS);
            }
        }

        let mut mid_data = Vec::new();
        let mut interpolated = vec![0.0; total];
        loop {
            if converged_at.iter().all(Option::is_some) {
                break;
            }
            let n_points = positions.len();
            let n_mid = n_points - 1;

            // exact values at the midpoints of every interval
            let mid_positions: Vec<f64> = (0..n_mid).map(|k| (positions[k] + positions[k + 1]) / 2.0).collect();
            mid_data.clear();
            mid_data.resize(n_mid * 2 * total, 0.0);
            for (k, &x) in mid_positions.iter().enumerate() {
                let block = &mut mid_data[k * 2 * total..(k + 1) * 2 * total];
                let (values, derivatives) = block.split_at_mut(total);
                function(x, values, derivatives);
            }

            // error of the current spline at these midpoints, per group
            let mut absolute = vec![0.0; group_sizes.len()];
            let mut relative = vec![0.0; group_sizes.len()];
            for (k, &x) in mid_positions.iter().enumerate() {
                let location = location_in_interval(&positions, k, x);
                // never fused: the grids must be featomic's, decided by
                // the same arithmetic as featomic's error estimate
                evaluate_block::<false>(&location, &data, total, 0, total, &mut interpolated, None);
                let exact = &mid_data[k * 2 * total..k * 2 * total + total];
                for (g, (&offset, &size)) in offsets.iter().zip(group_sizes).enumerate() {
                    if converged_at[g].is_some() {
                        continue;
                    }
                    for f in offset..offset + size {
                        let error = interpolated[f] - exact[f];
                        absolute[g] += error.abs();
                        // like featomic: a zero exact value gives NaN/∞ and
                        // disables the relative criterion for this round
                        relative[g] += (error / exact[f]).abs();
                    }
                }
            }

            let mut failure = None;
            for (g, &size) in group_sizes.iter().enumerate() {
                if converged_at[g].is_some() {
                    continue;
                }
                let count = (n_mid * size) as f64;
                let (mean_absolute, mean_relative) = (absolute[g] / count, relative[g] / count);
                if mean_absolute < accuracy || mean_relative < accuracy {
                    converged_at[g] = Some(n_points);
                } else if n_points + n_mid > MAX_SPLINE_POINTS && failure.is_none() {
                    failure = Some((g, mean_absolute, mean_relative));
                }
            }
            if let Some((g, mean_absolute, mean_relative)) = failure {
                return Err(Error::Numerical(format!(
                    "spline of function group {g} failed to reach spline_accuracy {accuracy:e} with at most \
                     {MAX_SPLINE_POINTS} points (mean absolute error {mean_absolute:e}, mean relative error \
                     {mean_relative:e}); use a larger spline_accuracy"
                )));
            }
            if converged_at.iter().all(Option::is_some) {
                break;
            }

            // insert the midpoints: the spacing halves
            let mut new_positions = Vec::with_capacity(n_points + n_mid);
            let mut new_data = Vec::with_capacity((n_points + n_mid) * 2 * total);
            for k in 0..n_points {
                new_positions.push(positions[k]);
                new_data.extend_from_slice(&data[k * 2 * total..(k + 1) * 2 * total]);
                if k < n_mid {
                    new_positions.push(mid_positions[k]);
                    new_data.extend_from_slice(&mid_data[k * 2 * total..(k + 1) * 2 * total]);
                }
            }
            positions = new_positions;
            data = new_data;
        }

        // extract each group on its own (coarser or equal) grid
        let n_points = positions.len();
        let mut splines = Vec::with_capacity(group_sizes.len());
        for (g, (&offset, &size)) in offsets.iter().zip(group_sizes).enumerate() {
            let points = converged_at[g].expect("every group converged");
            let stride = (n_points - 1) / (points - 1);
            let mut group_positions = Vec::with_capacity(points);
            let mut group_data = Vec::with_capacity(points * 2 * size);
            for k in (0..n_points).step_by(stride) {
                group_positions.push(positions[k]);
                let block = &data[k * 2 * total..(k + 1) * 2 * total];
                group_data.extend_from_slice(&block[offset..offset + size]);
                group_data.extend_from_slice(&block[total + offset..total + offset + size]);
            }
            splines.push(HermiteSpline {
                start,
                stop,
                n_functions: size,
                inv_step: (points - 1) as f64 / (stop - start),
                inv_widths: inverse_widths(&group_positions),
                positions: group_positions,
                data: group_data,
            });
        }
        Ok(splines)
    }

    /// Builds a spline from values and derivatives tabulated on the uniform
    /// grid of `n_points` points over [start, stop]; `values` and
    /// `derivatives` are laid out `[point][function]`.
    pub fn from_uniform_grid(
        start: f64,
        stop: f64,
        n_functions: usize,
        values: &[f64],
        derivatives: &[f64],
    ) -> Result<HermiteSpline> {
        if n_functions == 0 || !values.len().is_multiple_of(n_functions) || values.len() != derivatives.len() {
            return Err(Error::InvalidParameter(format!(
                "spline table sizes do not match: {} values, {} derivatives, {} functions",
                values.len(),
                derivatives.len(),
                n_functions
            )));
        }
        let points = values.len() / n_functions;
        if points < 2 || !(start.is_finite() && stop.is_finite() && start < stop) {
            return Err(Error::InvalidParameter(format!(
                "a spline needs at least 2 points and start < stop, got {points} points on [{start}, {stop}]"
            )));
        }
        let step = (stop - start) / (points - 1) as f64;
        let positions: Vec<f64> = (0..points).map(|k| start + k as f64 * step).collect();
        let mut data = Vec::with_capacity(2 * values.len());
        for k in 0..points {
            data.extend_from_slice(&values[k * n_functions..(k + 1) * n_functions]);
            data.extend_from_slice(&derivatives[k * n_functions..(k + 1) * n_functions]);
        }
        Ok(HermiteSpline { start, stop, n_functions, inv_step: 1.0 / step, inv_widths: inverse_widths(&positions), positions, data })
    }

    /// Number of grid points.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether the spline has no points (never true for a built spline).
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Positions of the grid points.
    pub fn positions(&self) -> &[f64] {
        &self.positions
    }

    /// Values of every function at grid point `k`.
    pub fn node_values(&self, k: usize) -> &[f64] {
        &self.data[k * 2 * self.n_functions..][..self.n_functions]
    }

    /// Derivatives of every function at grid point `k`.
    pub fn node_derivatives(&self, k: usize) -> &[f64] {
        &self.data[(k * 2 + 1) * self.n_functions..][..self.n_functions]
    }

    /// Number of splined functions.
    pub fn n_functions(&self) -> usize {
        self.n_functions
    }

    /// Start of the tabulated range.
    pub fn start(&self) -> f64 {
        self.start
    }

    /// End of the tabulated range.
    pub fn stop(&self) -> f64 {
        self.stop
    }

    /// Finds the interval containing `x` and evaluates the Hermite basis.
    /// Points outside [start, stop] use the first or last interval (cubic
    /// extrapolation).
    #[inline(always)]
    pub fn locate(&self, x: f64) -> SplineLocation {
        // SAFETY: every constructor makes at least 2 positions and their
        // n − 1 inverse widths
        unsafe { locate_on_grid(self.start, self.inv_step, &self.positions, &self.inv_widths, x) }
    }

    /// Evaluates all functions (and optionally their derivatives) at a
    /// location obtained from [`HermiteSpline::locate`] on this spline or on
    /// one with the same grid.
    ///
    /// The values are `h00·p0 + h10·m0 + h01·p1 + h11·m1` accumulated left
    /// to right, with fused multiply-adds where the CPU has them (checked
    /// once at run time, [`fused`]): the same choice and order as
    /// [`HermiteSpline::evaluate_values_fixed`] under `FMA =` [`fused`]`()`,
    /// so the SOAP values-only path and the gradient path get the same bits.
    #[inline(always)]
    pub fn evaluate(&self, location: &SplineLocation, values: &mut [f64], derivatives: Option<&mut [f64]>) {
        debug_assert_eq!(location.n_points, self.positions.len());
        #[cfg(target_arch = "x86_64")]
        if fused() {
            // SAFETY: the CPU has AVX2 and FMA (checked by `fused`)
            unsafe { evaluate_block_fma(location, &self.data, self.n_functions, values, derivatives) };
            return;
        }
        evaluate_block::<false>(location, &self.data, self.n_functions, 0, self.n_functions, values, derivatives);
    }

    /// The values of all N = `n_functions` functions at a location (no
    /// derivatives), with N known at compile time: the four rows of the
    /// interval are one contiguous block of 4N values (one bounds check, a
    /// fully unrolled loop). The same products and sums in the same order
    /// as [`HermiteSpline::evaluate`], so the same bits.
    /// `FMA` must be [`fused`]`()` for the bits of [`HermiteSpline::evaluate`]
    /// (callers compiled for FMA pass `true` where the CPU has it).
    #[inline(always)]
    pub fn evaluate_values_fixed<const N: usize, const FMA: bool>(&self, location: &SplineLocation, values: &mut [f64; N]) {
        debug_assert_eq!(self.n_functions, N);
        let block = &self.data[location.k * 2 * N..][..4 * N];
        let row = |i: usize| -> &[f64; N] { block[i * N..(i + 1) * N].try_into().expect("N values") };
        let (p0, m0, p1, m1) = (row(0), row(1), row(2), row(3));
        for f in 0..N {
            values[f] = hermite_sum::<FMA>(location.h00, p0[f], location.h10, m0[f], location.h01, p1[f], location.h11, m1[f]);
        }
    }

    /// Evaluates all functions and optionally their derivatives at `x`.
    #[inline]
    pub fn compute(&self, x: f64, values: &mut [f64], derivatives: Option<&mut [f64]>) {
        let location = self.locate(x);
        self.evaluate(&location, values, derivatives);
    }
}

/// 1 / (x_{k+1} − x_k) for every interval of `positions`.
fn inverse_widths(positions: &[f64]) -> Vec<f64> {
    positions.windows(2).map(|w| 1.0 / (w[1] - w[0])).collect()
}

/// The interval of a uniform grid that holds `x`, and the Hermite basis
/// there: [`HermiteSpline::locate`] and [`SharedGridSplines::locate`] both
/// come here, so a location (hence the spline values) has the same bits
/// whichever table it is computed for.
///
/// # Safety
/// `positions` has n ≥ 2 entries and `inv_widths` n − 1 (the interval `k`
/// found is at most n − 2, so x_k, x_{k+1} and 1/(x_{k+1} − x_k) exist).
#[inline(always)]
unsafe fn locate_on_grid(start: f64, inv_step: f64, positions: &[f64], inv_widths: &[f64], x: f64) -> SplineLocation {
    let n = positions.len();
    debug_assert!(n >= 2 && inv_widths.len() == n - 1);
    // uniform grid: direct index, then fix the rare off-by-one that
    // rounding of the stored positions can cause
    let guess = ((x - start) * inv_step).floor();
    // NaN and guesses ≤ 0 give 0, huge ones (+∞ too) n − 2: the guess is
    // clamped to [1, n − 2] as a float, an integer value, so the conversion
    // is exact and needs no saturation (one signed conversion; the
    // saturating `as` took a compare and two conditional moves, and an
    // unsigned one two conversions)
    let last = (n - 2) as f64;
    let mut k = if guess > 0.0 { (if guess < last { guess } else { last }).to_int_unchecked::<i64>() as usize } else { 0 };
    if k > 0 && x < *positions.get_unchecked(k) {
        k -= 1;
    } else if k + 2 < n && x >= *positions.get_unchecked(k + 1) {
        k += 1;
    }
    // k ≤ n − 2 still: it grew only where k + 2 < n
    let x_k = *positions.get_unchecked(k);
    let delta = *positions.get_unchecked(k + 1) - x_k;
    // t = (x − x_k) · (1 / Δ) from a table instead of (x − x_k) / Δ: it
    // differs from featomic's formula by rounding only (an ulp or two of t)
    let inv_delta = *inv_widths.get_unchecked(k);
    hermite_basis(k, n, (x - x_k) * inv_delta, delta, inv_delta)
}

/// Hermite basis for `x` in the interval [positions[k], positions[k+1]],
/// with featomic's division: used while the grid is refined, so that the
/// error estimates, and with them the grids, are featomic's.
#[inline(always)]
fn location_in_interval(positions: &[f64], k: usize, x: f64) -> SplineLocation {
    // notation of https://en.wikipedia.org/wiki/Cubic_Hermite_spline, as in featomic
    let x_k = positions[k];
    let delta = positions[k + 1] - x_k;
    hermite_basis(k, positions.len(), (x - x_k) / delta, delta, 1.0 / delta)
}

/// The cubic Hermite basis functions and their derivatives at fraction `t`
/// of interval `k`, of width `delta` (its inverse `inv_delta` given, as the
/// two callers compute it differently).
#[inline(always)]
fn hermite_basis(k: usize, n_points: usize, t: f64, delta: f64, inv_delta: f64) -> SplineLocation {
    let t2 = t * t;
    let t3 = t2 * t;
    let d00 = 6.0 * (t2 - t);
    SplineLocation {
        k,
        n_points,
        h00: 2.0 * t3 - 3.0 * t2 + 1.0,
        h10: (t3 - 2.0 * t2 + t) * delta,
        h01: -2.0 * t3 + 3.0 * t2,
        h11: (t3 - t2) * delta,
        d00: d00 * inv_delta,
        d10: 3.0 * t2 - 4.0 * t + 1.0,
        d01: -d00 * inv_delta,
        d11: 3.0 * t2 - 2.0 * t,
    }
}

/// Whether spline values are evaluated with fused multiply-adds: where the
/// CPU has AVX2 and FMA (decided once per process).
#[inline(always)]
pub fn fused() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::math::cpu::has_avx2_fma()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `a0·b0 + a1·b1 + a2·b2 + a3·b3`, left to right: a product then three
/// fused multiply-adds when `FMA` (half the instructions of the values
/// loop), else products and sums. The spline's one formula for values, so
/// that every caller choosing `FMA` alike gets the same bits.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn hermite_sum<const FMA: bool>(a0: f64, b0: f64, a1: f64, b1: f64, a2: f64, b2: f64, a3: f64, b3: f64) -> f64 {
    if FMA {
        a3.mul_add(b3, a2.mul_add(b2, a1.mul_add(b1, a0 * b0)))
    } else {
        a0 * b0 + a1 * b1 + a2 * b2 + a3 * b3
    }
}

/// [`evaluate_block`] with fused multiply-adds, compiled for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn evaluate_block_fma(location: &SplineLocation, data: &[f64], n_functions: usize, values: &mut [f64], derivatives: Option<&mut [f64]>) {
    evaluate_block::<true>(location, data, n_functions, 0, n_functions, values, derivatives);
}

/// Evaluates functions [offset, offset + count) of a table whose knots hold
/// `stride` values then `stride` derivatives. The values with
/// [`hermite_sum`]; the derivatives (only the gradient path asks for them)
/// always as products and sums.
#[inline(always)]
fn evaluate_block<const FMA: bool>(
    location: &SplineLocation,
    data: &[f64],
    stride: usize,
    offset: usize,
    count: usize,
    values: &mut [f64],
    derivatives: Option<&mut [f64]>,
) {
    let first = &data[location.k * 2 * stride..(location.k + 1) * 2 * stride];
    let second = &data[(location.k + 1) * 2 * stride..(location.k + 2) * 2 * stride];
    let (p0, m0) = (&first[offset..offset + count], &first[stride + offset..stride + offset + count]);
    let (p1, m1) = (&second[offset..offset + count], &second[stride + offset..stride + offset + count]);
    let values = &mut values[..count];
    for f in 0..count {
        values[f] = hermite_sum::<FMA>(location.h00, p0[f], location.h10, m0[f], location.h01, p1[f], location.h11, m1[f]);
    }
    if let Some(derivatives) = derivatives {
        let derivatives = &mut derivatives[..count];
        for f in 0..count {
            derivatives[f] = location.d00 * p0[f] + location.d10 * m0[f] + location.d01 * p1[f] + location.d11 * m1[f];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sin_cos(x: f64, values: &mut [f64], derivatives: &mut [f64]) {
        values[0] = x.sin();
        derivatives[0] = x.cos();
    }

    #[test]
    fn reproduces_a_smooth_function() {
        let spline = HermiteSpline::with_accuracy(-3.0, 6.0, 1, 1e-9, sin_cos).unwrap();
        let (mut v, mut d) = ([0.0], [0.0]);
        for &x in &[-2.2, -1.002_421_44, 0.0, 1e-9, 2.3, 3.2, 4.7, 5.3, 5.999_999_99] {
            spline.compute(x, &mut v, Some(&mut d));
            assert!((v[0] - x.sin()).abs() < 1e-8, "{x}");
            assert!((d[0] - x.cos()).abs() < 1e-6, "{x}");
        }
        // exact at the knots
        for &x in spline.positions() {
            spline.compute(x, &mut v, Some(&mut d));
            assert!((v[0] - x.sin()).abs() <= 1e-16 * (1.0 + x.abs()));
            assert!((d[0] - x.cos()).abs() <= 2e-15);
        }
        // uniform grid of 10·2^j + 1 points
        assert_eq!((spline.len() - 1) % 10, 0);
        assert!(((spline.len() - 1) / 10).is_power_of_two());
    }

    #[test]
    fn cubic_polynomials_are_exact_on_the_first_grid() {
        // two functions, exactly cubic: the error is rounding, so 11 points suffice
        let spline = HermiteSpline::with_accuracy(0.0, 2.0, 2, 1e-12, |x, v, d| {
            v[0] = 1.0 + x - 2.0 * x * x + 0.5 * x * x * x;
            d[0] = 1.0 - 4.0 * x + 1.5 * x * x;
            v[1] = 3.0 * x * x;
            d[1] = 6.0 * x;
        })
        .unwrap();
        assert_eq!(spline.len(), 11);
        let (mut v, mut d) = ([0.0; 2], [0.0; 2]);
        spline.compute(1.2345, &mut v, Some(&mut d));
        let x: f64 = 1.2345;
        assert!((v[0] - (1.0 + x - 2.0 * x * x + 0.5 * x * x * x)).abs() < 1e-14);
        assert!((d[1] - 6.0 * x).abs() < 1e-13);
    }

    #[test]
    fn derivatives_are_those_of_the_spline() {
        // even with a coarse spline, the derivative output is the derivative
        // of the value output (gradients must be consistent with values)
        let spline = HermiteSpline::with_accuracy(0.0, 5.0, 1, 1e-2, |x, v, d| {
            v[0] = (-x * x).exp();
            d[0] = -2.0 * x * (-x * x).exp();
        })
        .unwrap();
        let (mut v0, mut v1, mut d) = ([0.0], [0.0], [0.0]);
        let (x, h) = (1.37, 1e-7);
        spline.compute(x, &mut v0, Some(&mut d));
        spline.compute(x + h, &mut v1, None);
        assert!(((v1[0] - v0[0]) / h - d[0]).abs() < 1e-6);
    }

    #[test]
    fn grouped_construction_matches_separate_ones() {
        let functions = |x: f64, v: &mut [f64], d: &mut [f64]| {
            v[0] = x.sin();
            d[0] = x.cos();
            v[1] = (3.0 * x).cos();
            d[1] = -3.0 * (3.0 * x).sin();
            v[2] = (-x).exp();
            d[2] = -(-x).exp();
        };
        let grouped = HermiteSpline::with_accuracy_grouped(0.0, 4.0, &[1, 2], 1e-7, functions).unwrap();
        let first = HermiteSpline::with_accuracy(0.0, 4.0, 1, 1e-7, |x, v, d| {
            let (mut all_v, mut all_d) = ([0.0; 3], [0.0; 3]);
            functions(x, &mut all_v, &mut all_d);
            v[0] = all_v[0];
            d[0] = all_d[0];
        })
        .unwrap();
        let second = HermiteSpline::with_accuracy(0.0, 4.0, 2, 1e-7, |x, v, d| {
            let (mut all_v, mut all_d) = ([0.0; 3], [0.0; 3]);
            functions(x, &mut all_v, &mut all_d);
            v.copy_from_slice(&all_v[1..]);
            d.copy_from_slice(&all_d[1..]);
        })
        .unwrap();
        assert_eq!(grouped[0].positions(), first.positions());
        assert_eq!(grouped[0].data, first.data);
        assert_eq!(grouped[1].positions(), second.positions());
        assert_eq!(grouped[1].data, second.data);
        // the faster-varying group needs a finer grid
        assert!(grouped[1].len() > grouped[0].len());
    }

    #[test]
    fn location_is_reusable_across_splines_with_the_same_grid() {
        let a = HermiteSpline::with_accuracy(0.0, 1.0, 1, 1e-3, |x, v, d| {
            v[0] = x * x;
            d[0] = 2.0 * x;
        })
        .unwrap();
        let b = HermiteSpline::with_accuracy(0.0, 1.0, 1, 1e-3, |x, v, d| {
            v[0] = x * x * x;
            d[0] = 3.0 * x * x;
        })
        .unwrap();
        assert_eq!(a.len(), b.len());
        let location = a.locate(0.4321);
        let mut v = [0.0];
        b.evaluate(&location, &mut v, None);
        assert!((v[0] - 0.4321f64.powi(3)).abs() < 1e-12);
    }

    #[test]
    fn interval_lookup_edges() {
        let spline = HermiteSpline::with_accuracy(0.0, 10.0, 1, 1e-10, sin_cos).unwrap();
        let mut v = [0.0];
        // last point and slightly outside both ends: finite, continuous
        for &x in &[0.0, -1e-12, 10.0, 10.0 + 1e-12, 9.999_999_999] {
            spline.compute(x, &mut v, None);
            assert!((v[0] - x.sin()).abs() < 1e-9, "{x}: {}", v[0]);
        }
        // every knot: the located interval contains it
        for (k, &x) in spline.positions().iter().enumerate() {
            let location = spline.locate(x);
            assert!(location.k == k.min(spline.len() - 2));
        }
    }

    #[test]
    fn refuses_bad_accuracy_and_unreachable_accuracy() {
        for accuracy in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let error = HermiteSpline::with_accuracy(0.0, 1.0, 1, accuracy, sin_cos).unwrap_err();
            assert!(matches!(error, Error::InvalidParameter(_)), "{error}");
        }
        // rounding keeps the mean error near 1e-17, never below 1e-30
        let error = HermiteSpline::with_accuracy(0.0, 1.0, 1, 1e-30, sin_cos).unwrap_err();
        assert!(matches!(error, Error::Numerical(ref m) if m.contains("10000 points")), "{error}");
    }

    #[test]
    fn from_uniform_grid_roundtrip() {
        let xs: Vec<f64> = (0..21).map(|k| k as f64 * 0.1).collect();
        let values: Vec<f64> = xs.iter().map(|x| x.sin()).collect();
        let derivatives: Vec<f64> = xs.iter().map(|x| x.cos()).collect();
        let spline = HermiteSpline::from_uniform_grid(0.0, 2.0, 1, &values, &derivatives).unwrap();
        let mut v = [0.0];
        spline.compute(0.75, &mut v, None);
        assert!((v[0] - 0.75f64.sin()).abs() < 1e-6);
        assert!(HermiteSpline::from_uniform_grid(0.0, 2.0, 2, &values[..3], &derivatives[..3]).is_err());
    }

    /// The two ways of evaluating spline values, `evaluate` (the gradient
    /// path) and `evaluate_values_fixed` (the values-only path) with
    /// `FMA = fused()`, give the same bits; with FMA they are within a few
    /// ulp of the unfused sums (both are the same Hermite formula).
    #[test]
    fn fixed_and_generic_values_are_the_same_bits() {
        let spline = HermiteSpline::with_accuracy(0.0, 5.0, 8, 1e-8, |x, v, d| {
            for n in 0..8 {
                let a = 0.3 + 0.2 * n as f64;
                v[n] = (-a * x * x).exp() * (1.0 + n as f64 * x).cos();
                d[n] = (-a * x * x).exp() * (-2.0 * a * x * (1.0 + n as f64 * x).cos() - n as f64 * (1.0 + n as f64 * x).sin());
            }
        })
        .unwrap();
        for k in 0..997 {
            let x = 5.0 * k as f64 / 996.0;
            let location = spline.locate(x);
            let (mut generic, mut fixed, mut plain) = ([0.0; 8], [0.0; 8], [0.0; 8]);
            spline.evaluate(&location, &mut generic, None);
            if fused() {
                spline.evaluate_values_fixed::<8, true>(&location, &mut fixed);
            } else {
                spline.evaluate_values_fixed::<8, false>(&location, &mut fixed);
            }
            spline.evaluate_values_fixed::<8, false>(&location, &mut plain);
            for n in 0..8 {
                assert_eq!(generic[n].to_bits(), fixed[n].to_bits(), "x = {x}, n = {n}");
                // four products of O(1) terms: a few ulp of the largest
                assert!((generic[n] - plain[n]).abs() <= 1e-15, "x = {x}, n = {n}: {} vs {}", generic[n], plain[n]);
            }
        }
    }
}
