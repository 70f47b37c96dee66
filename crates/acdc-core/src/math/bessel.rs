//! Spherical Bessel functions j_l, scaled modified spherical Bessel
//! functions e^(−z)·i_l(z), the zeros of j_l, and Gauss–Legendre quadrature:
//! what the Laplacian-eigenstate radial basis needs (Bigi, Huguenin-Dumittan,
//! Ceriotti and Manolopoulos, J. Chem. Phys. 157, 234101 (2022)).

use std::f64::consts::PI;

/// Values are rescaled by this factor when the downward recurrences grow
/// past its inverse, so that they never overflow.
const RESCALE: f64 = 1e-200;

/// Spherical Bessel functions j_l(x) for l = 0…`out.len()`−1 at x ≥ 0
/// (dimensionless).
///
/// Upward recurrence where it is stable (x above the largest l), Miller's
/// downward recurrence normalised by j_0 or j_1 (whichever is larger)
/// otherwise; accurate to a few ulps relative to max(|j_0|, |j_1|) and to
/// ~1e-15 relative for the decaying tail.
pub fn spherical_jn(x: f64, out: &mut [f64]) {
    let count = out.len();
    if count == 0 {
        return;
    }
    if x == 0.0 {
        out.fill(0.0);
        out[0] = 1.0;
        return;
    }
    let (s, c) = x.sin_cos();
    let j0 = if x < 1e-4 { 1.0 - x * x / 6.0 + x.powi(4) / 120.0 } else { s / x };
    let j1 = if x < 1e-4 { x / 3.0 - x.powi(3) / 30.0 } else { (s / x - c) / x };
    if x > count as f64 {
        out[0] = j0;
        if count > 1 {
            out[1] = j1;
        }
        for l in 2..count {
            out[l] = (2 * l - 1) as f64 / x * out[l - 1] - out[l - 2];
        }
        return;
    }
    // Miller: start well above max(l, x) and recur down
    let start = count + 20 + (4.0 * x.sqrt() + x) as usize;
    let (mut above, mut current) = (0.0f64, 1e-300f64);
    for l in (0..=start).rev() {
        if l < count {
            out[l] = current;
        }
        if l == 0 {
            break;
        }
        // j_{l−1} = (2l+1)/x·j_l − j_{l+1}
        let below = (2 * l + 1) as f64 / x * current - above;
        above = current;
        current = below;
        if current.abs() > 1.0 / RESCALE {
            above *= RESCALE;
            current *= RESCALE;
            for v in out.iter_mut().skip(l.saturating_sub(1)) {
                *v *= RESCALE;
            }
        }
    }
    let scale = if count > 1 && j1.abs() > j0.abs() { j1 / out[1] } else { j0 / out[0] };
    for v in out.iter_mut() {
        *v *= scale;
    }
}

/// Scaled modified spherical Bessel functions e^(−z)·i_l(z) for
/// l = 0…`out.len()`−1 at z ≥ 0 (dimensionless), by Miller's downward
/// recurrence normalised with e^(−z)·i_0(z) = (1 − e^(−2z))/(2z).
pub fn scaled_modified_spherical_in(z: f64, out: &mut [f64]) {
    let count = out.len();
    if count == 0 {
        return;
    }
    out.fill(0.0);
    if z == 0.0 {
        out[0] = 1.0;
        return;
    }
    // i_l(z)/i_0(z) ≈ exp(−l²/(2z)) for large z: go far enough up that the
    // starting guess no longer matters
    let start = count + 30 + (9.0 * z.sqrt()) as usize;
    let (mut above, mut current) = (0.0f64, 1e-300f64);
    for l in (0..=start).rev() {
        if l < count {
            out[l] = current;
        }
        if l == 0 {
            break;
        }
        // i_{l−1} = (2l+1)/z·i_l + i_{l+1}
        let below = (2 * l + 1) as f64 / z * current + above;
        above = current;
        current = below;
        if current > 1.0 / RESCALE {
            above *= RESCALE;
            current *= RESCALE;
            for v in out.iter_mut().skip(l.saturating_sub(1)) {
                *v *= RESCALE;
            }
        }
    }
    let i0 = if z < 1e-8 { 1.0 - z } else { -(-2.0 * z).exp_m1() / (2.0 * z) };
    let scale = i0 / out[0];
    for v in out.iter_mut() {
        *v *= scale;
    }
}

/// The first `count` positive zeros of j_l for l = 0…`max_angular`,
/// `[l][n]` (dimensionless): z[0][n] = (n + 1)π, and the zeros of j_l
/// interlace those of j_(l−1), so each is bracketed and found by bisection
/// to full double precision.
pub fn spherical_jn_zeros(max_angular: usize, count: usize) -> Vec<Vec<f64>> {
    let total = count + max_angular + 1;
    let mut points: Vec<f64> = (1..=total).map(|k| k as f64 * PI).collect();
    let mut zeros = vec![(0..count).map(|n| (n + 1) as f64 * PI).collect::<Vec<f64>>()];
    let mut buffer = vec![0.0; max_angular + 2];
    let mut j = |l: usize, x: f64| {
        spherical_jn(x, &mut buffer[..l + 1]);
        buffer[l]
    };
    for l in 1..=max_angular {
        let n_roots = total - l;
        let mut roots = Vec::with_capacity(n_roots);
        for k in 0..n_roots {
            let (mut a, mut b) = (points[k], points[k + 1]);
            let mut fa = j(l, a);
            for _ in 0..200 {
                let m = 0.5 * (a + b);
                if m <= a || m >= b {
                    break;
                }
                let fm = j(l, m);
                if fm == 0.0 {
                    a = m;
                    b = m;
                    break;
                }
                if (fm > 0.0) == (fa > 0.0) {
                    a = m;
                    fa = fm;
                } else {
                    b = m;
                }
            }
            roots.push(0.5 * (a + b));
        }
        zeros.push(roots[..count].to_vec());
        points = roots;
    }
    zeros
}

/// Gauss–Legendre nodes and weights on [−1, 1] for `n` points, by Newton
/// iteration on P_n (accurate to a few ulps).
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    for i in 0..n.div_ceil(2) {
        let mut x = (PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut derivative = 0.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0f64, x);
            for k in 2..=n {
                let p2 = ((2 * k - 1) as f64 * x * p1 - (k - 1) as f64 * p0) / k as f64;
                p0 = p1;
                p1 = p2;
            }
            let p = if n == 0 { 1.0 } else { p1 };
            derivative = n as f64 * (x * p - p0) / (x * x - 1.0);
            let dx = p / derivative;
            x -= dx;
            if dx.abs() < 1e-16 {
                break;
            }
        }
        nodes[i] = -x;
        nodes[n - 1 - i] = x;
        let w = 2.0 / ((1.0 - x * x) * derivative * derivative);
        weights[i] = w;
        weights[n - 1 - i] = w;
    }
    (nodes, weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spherical_bessel_values() {
        // closed forms of j_2 and of the scaled i_1
        let mut out = [0.0; 6];
        for &x in &[1e-3, 0.3, 2.0, 7.5, 25.0] {
            spherical_jn(x, &mut out);
            let (s, c) = (f64::sin(x), f64::cos(x));
            // the closed form cancels at small x: use the series there
            let j2 = if x < 0.01 { x * x / 15.0 - x.powi(4) / 210.0 } else { (3.0 / (x * x) - 1.0) * s / x - 3.0 * c / (x * x) };
            assert!((out[2] - j2).abs() < 1e-13 * (1.0 + j2.abs()), "{x}: {} {j2}", out[2]);
            // j_5 from the recurrence of j_0, j_1 in extended terms
            let mut up = [s / x, (s / x - c) / x, 0.0, 0.0, 0.0, 0.0];
            for l in 2..6 {
                up[l] = (2 * l - 1) as f64 / x * up[l - 1] - up[l - 2];
            }
            if x > 6.0 {
                assert!((out[5] - up[5]).abs() < 1e-13, "{x}");
            }
            let mut i = [0.0; 3];
            scaled_modified_spherical_in(x, &mut i);
            let i1 = (x * x.cosh() - x.sinh()) / (x * x) * (-x).exp();
            if x > 0.1 {
                // the closed form cancels at small x
                assert!((i[1] - i1).abs() < 1e-12 * i1.abs(), "{x}: {} {i1}", i[1]);
            }
        }
        // small argument series: i_l(z) ≈ z^l/(2l+1)!!
        let mut i = [0.0; 5];
        scaled_modified_spherical_in(1e-5, &mut i);
        assert!((i[4] / (1e-20 / 945.0 * (-1e-5f64).exp()) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn zeros_match_tabulated_values() {
        let z = spherical_jn_zeros(4, 5);
        let expected = [
            [3.14159265359, 6.28318530718, 9.424777960769, 12.566370614359, 15.707963267949],
            [4.493409457909, 7.725251836938, 10.904121659429, 14.066193912831, 17.220755271931],
            [5.763459196895, 9.095011330476, 12.322940970567, 15.514603010887, 18.689036355363],
            [6.987932000501, 10.417118547379, 13.698023153249, 16.923621285214, 20.121806174454],
            [8.182561452571, 11.70490715457, 15.039664707617, 18.301255959542, 21.5254177334],
        ];
        for l in 0..5 {
            for n in 0..5 {
                assert!((z[l][n] - expected[l][n]).abs() < 1e-11, "{l} {n}");
            }
        }
    }

    #[test]
    fn quadrature_integrates_polynomials() {
        let (x, w) = gauss_legendre(30);
        let integral: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(58)).sum();
        assert!((integral - 2.0 / 59.0).abs() < 1e-15);
        assert!((w.iter().sum::<f64>() - 2.0).abs() < 1e-14);
    }
}
