//! Radial weights of neighbour contributions: cutoff smoothing f_c(r) and
//! density scaling s(r) (docs/CONVENTIONS.md §2.2, §2.3).
use std::f64::consts::PI;

use super::hypers::{Scaling, Smoothing};

/// f_c(r) and df_c/dr for a cutoff `radius` (Å) with the given smoothing.
///
/// The value is [`cutoff_value`]'s, bit for bit: the cosine and the sine
/// are two calls (the sine's argument passed through `black_box`), not one
/// `sincos` that LLVM would otherwise form from them, so that the values
/// path, which needs only the cosine, calls the same `cos` on every libm.
#[inline]
pub fn cutoff_function(smoothing: Smoothing, radius: f64, r: f64) -> (f64, f64) {
    match smoothing {
        Smoothing::Step => (if r < radius { 1.0 } else { 0.0 }, 0.0),
        Smoothing::ShiftedCosine { width } => {
            if r <= radius - width {
                (1.0, 0.0)
            } else if r >= radius {
                (0.0, 0.0)
            } else {
                let t = PI * (r - radius + width) / width;
                (0.5 * (1.0 + t.cos()), -0.5 * PI * std::hint::black_box(t).sin() / width)
            }
        }
    }
}

/// f_c(r) alone: the value of [`cutoff_function`], the same operations.
/// Why: the values-only SOAP path weighs the pairs in the last `width` Å
/// (a quarter of water64's) and needs no derivative; `sincos` there was
/// 5 % of a water64 values call.
#[inline]
pub fn cutoff_value(smoothing: Smoothing, radius: f64, r: f64) -> f64 {
    match smoothing {
        Smoothing::Step => {
            if r < radius {
                1.0
            } else {
                0.0
            }
        }
        Smoothing::ShiftedCosine { width } => {
            if r <= radius - width {
                1.0
            } else if r >= radius {
                0.0
            } else {
                let t = PI * (r - radius + width) / width;
                0.5 * (1.0 + t.cos())
            }
        }
    }
}

/// The distance (Å) up to which a pair's density weight f_c(r)·s(r) is
/// exactly 1 (f_c = 1 and no scaling), for pairs closer than `radius`:
/// radius − width for a shifted cosine, `radius` for a step; −∞ with a
/// scaling (`unscaled` false), where no weight is 1 for sure.
#[inline]
pub fn unit_weight_below(smoothing: Smoothing, unscaled: bool, radius: f64) -> f64 {
    if !unscaled {
        return f64::NEG_INFINITY;
    }
    match smoothing {
        Smoothing::Step => radius,
        Smoothing::ShiftedCosine { width } => radius - width,
    }
}

/// s(r) and ds/dr; (1, 0) without scaling.
#[inline]
pub fn radial_scaling(scaling: Option<Scaling>, r: f64) -> (f64, f64) {
    match scaling {
        None => (1.0, 0.0),
        Some(Scaling::Willatt2018 { scale, rate, exponent }) => {
            if exponent == 0.0 {
                return (rate / (rate + 1.0), 0.0);
            }
            let x = r / scale;
            let xe = x.powf(exponent);
            let denominator = rate + xe;
            let value = rate / denominator;
            // d/dr of rate/(rate + x^e) = −rate·e·x^(e−1)/scale / (rate + x^e)²
            let derivative = if r == 0.0 {
                0.0
            } else {
                -rate * exponent * xe / x / scale / (denominator * denominator)
            };
            (value, derivative)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_finite_differences() {
        let smoothings = [Smoothing::Step, Smoothing::ShiftedCosine { width: 0.7 }];
        let scaling = Some(Scaling::Willatt2018 { scale: 2.0, rate: 1.3, exponent: 4.0 });
        let h = 1e-6;
        for &r in &[0.3, 2.0, 4.45, 4.71, 4.99] {
            for &s in &smoothings {
                let (_, d) = cutoff_function(s, 5.0, r);
                let fd = (cutoff_function(s, 5.0, r + h).0 - cutoff_function(s, 5.0, r - h).0) / (2.0 * h);
                assert!((d - fd).abs() < 1e-7, "{s:?} r={r}: {d} vs {fd}");
            }
            let (_, d) = radial_scaling(scaling, r);
            let fd = (radial_scaling(scaling, r + h).0 - radial_scaling(scaling, r - h).0) / (2.0 * h);
            assert!((d - fd).abs() < 1e-7, "scaling r={r}: {d} vs {fd}");
        }
        assert_eq!(cutoff_function(Smoothing::ShiftedCosine { width: 0.5 }, 5.0, 4.75).0, 0.5);
        // the value alone is the value of the pair, bit for bit
        for &s in &smoothings {
            for k in 0..=2000 {
                let r = 4.0 + k as f64 * 1.2e-3;
                assert_eq!(cutoff_value(s, 5.0, r).to_bits(), cutoff_function(s, 5.0, r).0.to_bits(), "{s:?} r={r}");
            }
        }
        assert_eq!(radial_scaling(scaling, 0.0).0, 1.0);
    }
}
