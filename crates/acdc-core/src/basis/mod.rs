//! Radial bases and their integrals with a Gaussian density.
//!
//! A [`RadialIntegral`] gives, for a pair distance r, the radial part
//! I_nl(r) of the expansion coefficients ⟨n l m|ρ⟩ = I_nl(r)·Y_l^m(r̂) for
//! all (n, l) at once (docs/CONVENTIONS.md §2.6). [`gto::GtoRadialIntegral`] evaluates it
//! exactly; [`SplinedRadialIntegral`] tabulates any radial integral with
//! cubic Hermite splines, per angular channel l as featomic does.

pub mod gap;
pub mod gto;
pub mod laplacian;
pub mod tabulated;

pub use self::gto::GtoRadialIntegral;

use crate::error::Result;
use crate::math::spline::{HermiteSpline, SharedGridSplines};

/// Radial integral I_nl(r) of a basis with the neighbour Gaussian density,
/// all (n, l) at once.
///
/// Implementations are immutable after construction and can be shared by
/// many threads; `compute` must not allocate.
pub trait RadialIntegral: Send + Sync {
    /// The maximal angular channel l_max.
    fn max_angular(&self) -> usize;

    /// Number of radial functions n_max = max_radial + 1.
    fn size(&self) -> usize;

    /// Values I_nl(r) and optionally derivatives dI_nl/dr at distance
    /// `r` ≥ 0 (Å), laid out `[l * size() + n]`, each of length
    /// (l_max + 1)·size(). The values are dimensionless (overlaps of the
    /// L²-normalised basis functions with the L²-normalised Gaussian
    /// density), the derivatives are in Å⁻¹.
    fn compute(&self, r: f64, values: &mut [f64], derivatives: Option<&mut [f64]>);
}

/// A radial integral tabulated on [0, cutoff] with cubic Hermite splines,
/// one spline per angular channel l (each with its own uniform grid, chosen
/// as featomic does so that results agree with featomic's splines).
#[derive(Debug, Clone)]
pub struct SplinedRadialIntegral {
    max_angular: usize,
    size: usize,
    splines: Vec<HermiteSpline>,
    /// `shares_grid[l]`: spline l has the same grid as spline l − 1, so the
    /// interval lookup can be reused
    shares_grid: Vec<bool>,
    /// The same splines interleaved per grid for the values-only path: runs
    /// of consecutive channels on one grid (first channel, table), in order
    /// of l, covering every channel.
    grids: Vec<(usize, SharedGridSplines)>,
}

impl SplinedRadialIntegral {
    /// Tabulates `exact` on [0, `cutoff`] (Å) until the mean absolute or
    /// mean relative error of the values at the interval midpoints is below
    /// `accuracy`, separately for every l.
    ///
    /// Errors: `accuracy` not positive and finite or `cutoff` not positive
    /// (invalid parameter); accuracy not reachable with 10 000 points
    /// (numerical).
    pub fn new(exact: &dyn RadialIntegral, cutoff: f64, accuracy: f64) -> Result<SplinedRadialIntegral> {
        if !(cutoff.is_finite() && cutoff > 0.0) {
            return Err(crate::Error::InvalidParameter(format!(
                "cutoff must be a positive number of Å to build radial splines, got {cutoff}"
            )));
        }
        let max_angular = exact.max_angular();
        let size = exact.size();
        let groups = vec![size; max_angular + 1];
        // one group of functions per l: the group index in errors is l
        let splines = HermiteSpline::with_accuracy_grouped(0.0, cutoff, &groups, accuracy, |r, values, derivatives| {
            exact.compute(r, values, Some(derivatives));
        })
        .map_err(|error| match error {
            crate::Error::Numerical(message) => crate::Error::Numerical(format!(
                "radial integral {}",
                message.replacen("spline of function group", "spline of angular channel l =", 1)
            )),
            other => other,
        })?;
        let shares_grid: Vec<bool> = (0..=max_angular).map(|l| l > 0 && splines[l].len() == splines[l - 1].len()).collect();
        let mut grids = Vec::new();
        let mut first = 0;
        for l in 1..=max_angular + 1 {
            if l == max_angular + 1 || !shares_grid[l] {
                // the same grid size on [0, cutoff] is the same grid: every
                // channel's grid is a subset of one refinement's
                match SharedGridSplines::new(&splines[first..l]) {
                    Some(table) => grids.push((first, table)),
                    // not reached (one grid size on [0, cutoff] is one grid);
                    // a channel alone always has one grid
                    None => grids.extend((first..l).filter_map(|c| Some((c, SharedGridSplines::new(&splines[c..=c])?)))),
                }
                first = l;
            }
        }
        Ok(SplinedRadialIntegral { max_angular, size, splines, shares_grid, grids })
    }

    /// The spline of angular channel `l`.
    pub fn spline(&self, l: usize) -> &HermiteSpline {
        &self.splines[l]
    }

    /// The spline of angular channel `l` alone.
    pub fn into_channel(mut self, l: usize) -> HermiteSpline {
        self.splines.swap_remove(l)
    }

    /// The values (no derivatives) of every channel at every distance of
    /// `distances` (Å), N = `size` functions per channel known at compile
    /// time, into `values` laid out `[p][l][n]`: what
    /// [`RadialIntegral::compute`] gives without derivatives, bitwise when
    /// `FMA` is [`crate::math::spline::fused`]`()`.
    #[inline(always)]
    pub fn compute_values_many<const N: usize, const FMA: bool>(&self, distances: &[f64], values: &mut [f64]) {
        let ln = (self.max_angular + 1) * N;
        assert!(self.size == N && values.len() >= distances.len() * ln);
        #[cfg(target_arch = "x86_64")]
        if FMA && N % 4 == 0 {
            // SAFETY: FMA = fused() is true only where the CPU has AVX2 and FMA
            unsafe { self.compute_values_fma::<N>(distances, values) };
            return;
        }
        for (&r, out) in distances.iter().zip(values.chunks_exact_mut(ln)) {
            self.compute_values_fixed::<N, FMA>(r, out);
        }
    }

    /// The values (no derivatives) of every channel at `r` into `values`
    /// laid out `[l][n]`, the per-channel loops unrolled: what
    /// [`RadialIntegral::compute`] gives without derivatives, bitwise when
    /// `FMA` is [`crate::math::spline::fused`]`()`.
    #[inline(always)]
    fn compute_values_fixed<const N: usize, const FMA: bool>(&self, r: f64, values: &mut [f64]) {
        let channels = self.max_angular + 1;
        assert!(self.size == N && values.len() >= channels * N && self.splines.len() == channels && self.shares_grid.len() == channels);
        let mut location = self.splines[0].locate(r);
        for l in 0..channels {
            // SAFETY: l < channels = splines.len() = shares_grid.len() (asserted)
            let spline = unsafe { self.splines.get_unchecked(l) };
            if l > 0 && !unsafe { *self.shares_grid.get_unchecked(l) } {
                location = spline.locate(r);
            }
            let out: &mut [f64; N] = (&mut values[l * N..(l + 1) * N]).try_into().expect("N values");
            spline.evaluate_values_fixed::<N, FMA>(&location, out);
        }
    }

    /// [`SplinedRadialIntegral::compute_values_many`] with explicit AVX2
    /// fused multiply-adds (N a multiple of 4) from the interleaved tables:
    /// one lookup and one broadcast of the basis per grid and distance, the
    /// channels of a grid read from one block, and the sizes checked once
    /// per call instead of once per channel and distance.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn compute_values_fma<const N: usize>(&self, distances: &[f64], values: &mut [f64]) {
        use std::arch::x86_64::_mm256_set1_pd;
        let ln = (self.max_angular + 1) * N;
        assert!(self.size == N && values.len() >= distances.len() * ln);
        for (first, grid) in &self.grids {
            assert!(grid.n_functions() == N && (first + grid.channels()) * N <= ln);
            let out = values.as_mut_ptr().add(first * N);
            // the look-ups four distances at a time (the same intervals and
            // bases as `locate`, see `locate_values4`), the rest one by one
            let fours = distances.chunks_exact(4);
            let rest = fours.remainder();
            for (b, four) in fours.enumerate() {
                // SAFETY: AVX2 (this function's features)
                let (ks, bases) = grid.locate_values4(four.try_into().expect("four distances"));
                for q in 0..4 {
                    let [a, b0, c, d] = bases[q];
                    let h = [_mm256_set1_pd(a), _mm256_set1_pd(b0), _mm256_set1_pd(c), _mm256_set1_pd(d)];
                    // SAFETY: as below, for distance p = 4b + q
                    grid.evaluate_values_fma::<N>(ks[q], &h, out.add((4 * b + q) * ln));
                }
            }
            let done = distances.len() - rest.len();
            for (p, &r) in rest.iter().enumerate() {
                let location = grid.locate(r);
                let [a, b, c, d] = location.value_basis();
                let h = [_mm256_set1_pd(a), _mm256_set1_pd(b), _mm256_set1_pd(c), _mm256_set1_pd(d)];
                // SAFETY: AVX2 and FMA (this function's features); N
                // functions (asserted); k from locate; the channels
                // first..first + channels() of distance p are
                // values[p · ln + first · N..][..channels() · N], inside
                // `values` (asserted)
                grid.evaluate_values_fma::<N>(location.k, &h, out.add((done + p) * ln));
            }
        }
    }

    /// Number of grid points of the spline of angular channel `l`.
    pub fn grid_size(&self, l: usize) -> usize {
        self.splines[l].len()
    }
}

impl RadialIntegral for SplinedRadialIntegral {
    fn max_angular(&self) -> usize {
        self.max_angular
    }

    fn size(&self) -> usize {
        self.size
    }

    #[inline(always)]
    fn compute(&self, r: f64, values: &mut [f64], mut derivatives: Option<&mut [f64]>) {
        let n = self.size;
        let total = (self.max_angular + 1) * n;
        assert!(values.len() >= total, "values has {} entries, expected {total}", values.len());
        if let Some(d) = derivatives.as_deref() {
            assert!(d.len() >= total, "derivatives has {} entries, expected {total}", d.len());
        }
        let mut location = self.splines[0].locate(r);
        for (l, spline) in self.splines.iter().enumerate() {
            if !self.shares_grid[l] && l > 0 {
                location = spline.locate(r);
            }
            let out = &mut values[l * n..(l + 1) * n];
            match derivatives.as_deref_mut() {
                Some(d) => spline.evaluate(&location, out, Some(&mut d[l * n..(l + 1) * n])),
                None => spline.evaluate(&location, out, None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::spherical_harmonics::SphericalHarmonics;

    fn as_vec(value: &serde_json::Value) -> Vec<f64> {
        value.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
    }

    /// Largest |a − b| over `expected`, relative to the largest |expected|.
    fn normwise_error(actual: &[f64], expected: &[f64]) -> f64 {
        let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let error = actual.iter().zip(expected).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        if scale == 0.0 {
            error
        } else {
            error / scale
        }
    }

    /// featomic 0.6.7's spherical expansion of a centre and one neighbour
    /// (scripts/reference/featomic_radial_check.py): ⟨n l m| = I_nl(r)·Y_l^m(r̂).
    /// This pins normalisation, signs, m ordering, gradients, the centre's
    /// own contribution and the spline grids.
    #[test]
    fn matches_featomic_pair_expansion() {
        let data: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/featomic_radial.json")).expect("valid reference JSON");
        assert_eq!(data["versions"]["featomic"], "0.6.7");
        for case in data["cases"].as_array().unwrap() {
            let hypers = &case["hypers"];
            let cutoff = hypers["cutoff"]["radius"].as_f64().unwrap();
            let width = hypers["density"]["width"].as_f64().unwrap();
            let max_angular = hypers["basis"]["max_angular"].as_u64().unwrap() as usize;
            let max_radial = hypers["basis"]["radial"]["max_radial"].as_u64().unwrap() as usize;
            let spline_accuracy = hypers["basis"]["spline_accuracy"].as_f64();
            let center_atom_weight = case["center_atom_weight"].as_f64().unwrap();
            let direction = as_vec(&case["direction"]);

            let exact = GtoRadialIntegral::new(max_radial, max_angular, cutoff, width).unwrap();
            let splined = spline_accuracy.map(|accuracy| SplinedRadialIntegral::new(&exact, cutoff, accuracy).unwrap());
            let radial: &dyn RadialIntegral = match &splined {
                Some(s) => s,
                None => &exact,
            };
            // exact integrals: the 1e-10 of docs/CONVENTIONS.md; splined: same grids as
            // featomic, so only rounding differs
            let tolerance = 1e-10;
            let size = max_radial + 1;
            let n_lm = (max_angular + 1) * (max_angular + 1);
            let sh = SphericalHarmonics::new(max_angular);
            let (mut values, mut derivatives) = (vec![0.0; (max_angular + 1) * size], vec![0.0; (max_angular + 1) * size]);
            let (mut y, mut dy, mut y_reverse) = (vec![0.0; n_lm], vec![0.0; 3 * n_lm], vec![0.0; n_lm]);

            // the centre's own Gaussian: w_c·I_n0(0)·Y_0^0
            radial.compute(0.0, &mut values, None);
            let y00 = 0.5 / std::f64::consts::PI.sqrt();
            let self_term: Vec<f64> = values[..size].iter().map(|v| center_atom_weight * v * y00).collect();
            let error = normwise_error(&self_term, &as_vec(&case["self"]));
            assert!(error < tolerance, "self term: {error:e}");

            let mut worst = [0.0f64; 3];
            for point in case["points"].as_array().unwrap() {
                let r = point["r"].as_f64().unwrap();
                let r_vec = [r * direction[0], r * direction[1], r * direction[2]];
                radial.compute(r, &mut values, Some(&mut derivatives));
                sh.compute_with_gradients(r_vec, &mut y, &mut dy);
                sh.compute([-r_vec[0], -r_vec[1], -r_vec[2]], &mut y_reverse);
                for l in 0..=max_angular {
                    let mut ours = Vec::new();
                    let mut ours_reverse = Vec::new();
                    let mut ours_gradient = Vec::new();
                    for m in 0..2 * l + 1 {
                        let lm = l * l + m;
                        for n in 0..size {
                            ours.push(values[l * size + n] * y[lm]);
                            ours_reverse.push(values[l * size + n] * y_reverse[lm]);
                        }
                    }
                    for xyz in 0..3 {
                        for m in 0..2 * l + 1 {
                            let lm = l * l + m;
                            for n in 0..size {
                                let i = l * size + n;
                                ours_gradient.push(derivatives[i] * r_vec[xyz] / r * y[lm] + values[i] * dy[xyz * n_lm + lm]);
                            }
                        }
                    }
                    let flatten = |v: &serde_json::Value| -> Vec<f64> {
                        v.as_array().unwrap().iter().flat_map(as_vec).collect()
                    };
                    let expected = flatten(&point["values"][l]);
                    let error = normwise_error(&ours, &expected);
                    worst[0] = worst[0].max(error);
                    assert!(error < tolerance, "values l={l} r={r}: {error:e} (spline {spline_accuracy:?})");
                    if let Some(reverse) = point.get("reverse") {
                        let error = normwise_error(&ours_reverse, &flatten(&reverse[l]));
                        worst[1] = worst[1].max(error);
                        assert!(error < tolerance, "reversed pair l={l} r={r}: {error:e}");
                    }
                    if let Some(gradients) = point.get("gradients") {
                        let expected: Vec<f64> = (0..3).flat_map(|xyz| flatten(&gradients[xyz][l])).collect();
                        let error = normwise_error(&ours_gradient, &expected);
                        worst[2] = worst[2].max(error);
                        assert!(error < tolerance, "gradients l={l} r={r}: {error:e}");
                    }
                }
            }
            eprintln!(
                "featomic check (max_radial={max_radial}, max_angular={max_angular}, width={width}, spline={spline_accuracy:?}): \
                 values {:e}, reversed {:e}, gradients {:e}",
                worst[0], worst[1], worst[2]
            );
        }
    }

    #[test]
    fn splines_are_as_accurate_as_requested() {
        let exact = GtoRadialIntegral::new(7, 6, 5.0, 0.3).unwrap();
        for &accuracy in &[1e-6, 1e-8, 1e-10] {
            let splined = SplinedRadialIntegral::new(&exact, 5.0, accuracy).unwrap();
            let total = 7 * 8;
            let (mut a, mut da, mut b, mut db) = (vec![0.0; total], vec![0.0; total], vec![0.0; total], vec![0.0; total]);
            let (mut mean_error, mut max_error, mut max_value) = (0.0f64, 0.0f64, 0.0f64);
            let samples = 997;
            for k in 0..samples {
                // irrational steps: never on a grid point
                let r = 5.0 * ((k as f64 + 0.5) * 0.618_033_988_749_895).fract();
                exact.compute(r, &mut a, Some(&mut da));
                splined.compute(r, &mut b, Some(&mut db));
                for i in 0..total {
                    let error = (a[i] - b[i]).abs();
                    mean_error += error;
                    max_error = max_error.max(error);
                    max_value = max_value.max(a[i].abs());
                }
            }
            mean_error /= (samples * total) as f64;
            let sizes: Vec<usize> = (0..=6).map(|l| splined.grid_size(l)).collect();
            eprintln!("spline accuracy {accuracy:e}: grid sizes {sizes:?}, mean |error| {mean_error:e}, max |error| {max_error:e} (max |I| {max_value:.3})");
            // the criterion is the mean error at midpoints (where it is
            // largest), so the mean over random points is below it
            assert!(mean_error < accuracy, "mean error {mean_error:e}");
            assert!(max_error < 100.0 * accuracy, "max error {max_error:e}");
        }
    }

    #[test]
    fn spline_derivatives_and_boundaries() {
        let exact = GtoRadialIntegral::new(5, 4, 4.0, 0.5).unwrap();
        let splined = SplinedRadialIntegral::new(&exact, 4.0, 1e-8).unwrap();
        let total = 5 * 6;
        let (mut v, mut d, mut v2) = (vec![0.0; total], vec![0.0; total], vec![0.0; total]);
        let (mut e, mut de) = (vec![0.0; total], vec![0.0; total]);
        // at r = 0 the spline returns the exact knot values (centre term)
        splined.compute(0.0, &mut v, Some(&mut d));
        exact.compute(0.0, &mut e, Some(&mut de));
        assert_eq!(v, e);
        assert_eq!(d, de);
        // derivative output is the derivative of the value output
        let (r, h) = (2.345, 1e-7);
        splined.compute(r, &mut v, Some(&mut d));
        splined.compute(r + h, &mut v2, None);
        for i in 0..total {
            assert!(((v2[i] - v[i]) / h - d[i]).abs() < 1e-5 * (1.0 + d[i].abs()));
        }
        // just below the cutoff
        splined.compute(4.0 - 1e-12, &mut v, None);
        exact.compute(4.0 - 1e-12, &mut e, None);
        for i in 0..total {
            assert!((v[i] - e[i]).abs() < 1e-9);
        }
        assert!(matches!(SplinedRadialIntegral::new(&exact, 4.0, 0.0), Err(crate::Error::InvalidParameter(_))));
        let error = SplinedRadialIntegral::new(&exact, 4.0, 1e-25).unwrap_err();
        assert!(
            matches!(&error, crate::Error::Numerical(m) if m.starts_with("radial integral spline of angular channel l = 0 failed")),
            "{error}"
        );
        assert!(matches!(SplinedRadialIntegral::new(&exact, -1.0, 1e-8), Err(crate::Error::InvalidParameter(_))));
    }
}
