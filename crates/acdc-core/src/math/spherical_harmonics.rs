//! Real spherical harmonics Y_l^m and their Cartesian gradients, computed as
//! polynomials in x, y, z (no trigonometric functions).
//!
//! Convention (docs/CONVENTIONS.md §2.8): real, orthonormal on the unit sphere, m < 0 ↔
//! sin(|m|φ), m > 0 ↔ cos(mφ), with the Condon–Shortley phase cancelled as in
//! sphericart and featomic, so that
//! (Y_1^−1, Y_1^0, Y_1^1) = √(3/4π)·(y, z, x)/r and every Y_l^l ∝ +Re (x + iy)^l.
//! Values for degree l and order m live at index `l² + l + m`.
//!
//! Algorithm (as in sphericart): with ζ = x + iy, the solid harmonics
//! r^l Y_l^m are N_l^m·q_l^m(z, r²)·(Re ζ^m or Im ζ^m), where q_l^m is a
//! polynomial obtained by the diagonal and three-term recurrences in l. The
//! normalisation is folded into the recurrence coefficients so nothing
//! overflows for large l. Gradients of solid harmonics are linear
//! combinations of the solid harmonics of degree l − 1 (m ± 1 for x and y,
//! m for z); the gradient of Y(r̂) then follows by removing the radial part.

use std::f64::consts::{PI, SQRT_2};

/// Index of (l, m) in the value array: `l² + l + m`.
#[inline]
pub fn lm_index(l: usize, m: isize) -> usize {
    debug_assert!(m.unsigned_abs() <= l);
    ((l * l + l) as isize + m) as usize
}

/// Index of (l, m ≥ 0) in the triangular coefficient tables.
#[inline]
fn tri(l: usize, m: usize) -> usize {
    l * (l + 1) / 2 + m
}

/// Real spherical harmonics up to a maximal degree, with precomputed
/// recurrence coefficients. Evaluation does not allocate, takes `&self`, and
/// can run concurrently from many threads.
#[derive(Debug, Clone)]
pub struct SphericalHarmonics {
    max_angular: usize,
    /// normalised q_m^m (constants; the √2 of m > 0 included)
    diagonal: Vec<f64>,
    /// q_{m+1}^m = this·z·q_m^m
    off_diagonal: Vec<f64>,
    /// [a, b] of q_l^m = a·z·q_{l−1}^m − b·r²·q_{l−2}^m, m-major, l = m+2…l_max
    recurrence: Vec<[f64; 2]>,
    /// start of each m in `recurrence` (length l_max + 2)
    recurrence_start: Vec<usize>,
    /// ∂/∂x and ∂/∂y coefficient of the (l − 1, m + 1) harmonic
    gradient_plus: Vec<f64>,
    /// ∂/∂x and ∂/∂y coefficient of the (l − 1, m − 1) harmonic
    gradient_minus: Vec<f64>,
    /// ∂/∂z coefficient of the (l − 1, m) harmonic
    gradient_z: Vec<f64>,
}

impl SphericalHarmonics {
    /// Prepares the recurrences for degrees 0 ≤ l ≤ `max_angular`.
    pub fn new(max_angular: usize) -> SphericalHarmonics {
        let size = (max_angular + 1) * (max_angular + 2) / 2;
        let mut gradient_plus = vec![0.0; size];
        let mut gradient_minus = vec![0.0; size];
        let mut gradient_z = vec![0.0; size];

        let mut diagonal = Vec::with_capacity(max_angular + 1);
        let mut off_diagonal = Vec::with_capacity(max_angular + 1);
        let mut recurrence = Vec::new();
        let mut recurrence_start = Vec::with_capacity(max_angular + 2);
        let mut q_mm = 0.5 / PI.sqrt();
        for m in 0..=max_angular {
            let mf = m as f64;
            // N_m^m (2m−1)!! from N_{m−1}^{m−1} (2m−3)!!: ×√(1 + 1/(2m)), and
            // ×√2 once when going from m = 0 to m = 1
            if m == 1 {
                q_mm *= 3.0f64.sqrt();
            } else if m > 1 {
                q_mm *= (1.0 + 0.5 / mf).sqrt();
            }
            diagonal.push(q_mm);
            off_diagonal.push((2.0 * mf + 3.0).sqrt());
            recurrence_start.push(recurrence.len());
            for l in m + 2..=max_angular {
                // normalised three-term recurrence (ratios of N_l^m)
                let (lf, l2, m2) = (l as f64, (l * l) as f64, mf * mf);
                let lm1 = lf - 1.0;
                let a = ((4.0 * l2 - 1.0) / (l2 - m2)).sqrt();
                let b = ((2.0 * lf + 1.0) / (2.0 * lf - 3.0) * (lm1 * lm1 - m2) / (l2 - m2)).sqrt();
                recurrence.push([a, b]);
            }
        }
        recurrence_start.push(recurrence.len());

        for l in 1..=max_angular {
            let lf = l as f64;
            let ratio = (2.0 * lf + 1.0) / (2.0 * lf - 1.0);
            for m in 0..=l {
                let mf = m as f64;
                // ∂ of a degree-l solid harmonic in terms of degree l − 1;
                // the √2 of m > 0 harmonics enters when m or m ± 1 is 0
                let plus = -0.5 * (ratio * (lf - mf) * (lf - mf - 1.0)).max(0.0).sqrt();
                gradient_plus[tri(l, m)] = if m == 0 { plus / SQRT_2 } else { plus };
                if m >= 1 {
                    let minus = 0.5 * ((lf + mf) * (lf + mf - 1.0) * ratio).sqrt();
                    gradient_minus[tri(l, m)] = if m == 1 { minus * SQRT_2 } else { minus };
                }
                gradient_z[tri(l, m)] = (ratio * (lf - mf) * (lf + mf)).sqrt();
            }
        }

        SphericalHarmonics {
            max_angular,
            diagonal,
            off_diagonal,
            recurrence,
            recurrence_start,
            gradient_plus,
            gradient_minus,
            gradient_z,
        }
    }

    /// The maximal degree l_max.
    pub fn max_angular(&self) -> usize {
        self.max_angular
    }

    /// Number of values, (l_max + 1)².
    pub fn size(&self) -> usize {
        (self.max_angular + 1) * (self.max_angular + 1)
    }

    /// Y_l^m(r̂) for all l ≤ l_max into `values[l² + l + m]`.
    ///
    /// `r` is any non-zero vector (only its direction matters; lengths in Å
    /// or any unit). A zero vector is treated as the direction +z, as
    /// featomic does for coincident atoms.
    pub fn compute(&self, r: [f64; 3], values: &mut [f64]) {
        assert!(values.len() >= self.size(), "values has {} entries, expected {}", values.len(), self.size());
        let (unit, _) = normalise(r);
        self.solid_harmonics(unit, values);
    }

    /// Y_l^m(r̂) and its gradient ∂Y_l^m(r/|r|)/∂r_a with respect to the
    /// Cartesian components of the (not necessarily unit) input vector `r`.
    ///
    /// `gradients` has length 3·(l_max + 1)², laid out `[a][l² + l + m]`
    /// with a = x, y, z. The gradient has units of 1/length (1/Å when `r` is
    /// in Å) and is tangent to the sphere (r·∇Y = 0). Passing the unit vector
    /// r̂ gives the gradient at |r| = 1, so ∂Y(r̂_ij)/∂r_ij = (that)/r_ij. A
    /// zero vector gives the values at +z and zero gradients.
    pub fn compute_with_gradients(&self, r: [f64; 3], values: &mut [f64], gradients: &mut [f64]) {
        let size = self.size();
        assert!(values.len() >= size, "values has {} entries, expected {}", values.len(), size);
        assert!(gradients.len() >= 3 * size, "gradients has {} entries, expected {}", gradients.len(), 3 * size);
        let (unit, norm) = normalise(r);
        self.solid_harmonics(unit, values);
        if norm == 0.0 {
            gradients[..3 * size].fill(0.0);
            return;
        }

        let (gx, rest) = gradients[..3 * size].split_at_mut(size);
        let (gy, gz) = rest.split_at_mut(size);
        gx[0] = 0.0;
        gy[0] = 0.0;
        gz[0] = 0.0;
        let inv_norm = 1.0 / norm;
        let values = &values[..size];
        for l in 1..=self.max_angular {
            let lf = l as f64;
            // harmonics of degree l − 1: cos-type C(m) = previous[l − 1 + m],
            // sin-type S(m) = previous[l − 1 − m]
            let previous = &values[(l - 1) * (l - 1)..l * l];
            let centre = l - 1;
            let current = &values[l * l..(l + 1) * (l + 1)];
            let (gx, gy, gz) = (
                &mut gx[l * l..(l + 1) * (l + 1)],
                &mut gy[l * l..(l + 1) * (l + 1)],
                &mut gz[l * l..(l + 1) * (l + 1)],
            );
            let t = tri(l, 0);
            let plus = &self.gradient_plus[t..=t + l];
            let minus = &self.gradient_minus[t..=t + l];
            let z_coefficient = &self.gradient_z[t..=t + l];

            // ∇Y(r̂) = (∇S − l·S·r̂)/|r| with S the solid harmonic r^l Y_l^m
            let mut store = |i: usize, dx: f64, dy: f64, dz: f64| {
                let y = lf * current[i];
                gx[i] = (dx - y * unit[0]) * inv_norm;
                gy[i] = (dy - y * unit[1]) * inv_norm;
                gz[i] = (dz - y * unit[2]) * inv_norm;
            };

            // m = 0
            let (c1, s1) = if l >= 2 { (previous[centre + 1], previous[centre - 1]) } else { (0.0, 0.0) };
            store(l, 2.0 * plus[0] * c1, 2.0 * plus[0] * s1, z_coefficient[0] * previous[centre]);

            for m in 1..=l {
                let (c_plus, s_plus) =
                    if m + 1 < l { (previous[centre + m + 1], previous[centre - m - 1]) } else { (0.0, 0.0) };
                let c_minus = previous[centre + m - 1];
                let s_minus = if m >= 2 { previous[centre + 1 - m] } else { 0.0 };
                let (c_same, s_same) = if m < l { (previous[centre + m], previous[centre - m]) } else { (0.0, 0.0) };
                let (p, q, w) = (plus[m], minus[m], z_coefficient[m]);
                // cos-type, +m
                store(l + m, p * c_plus + q * c_minus, p * s_plus - q * s_minus, w * c_same);
                // sin-type, −m
                store(l - m, p * s_plus + q * s_minus, q * c_minus - p * c_plus, w * s_same);
            }
        }
    }

    /// Y_l^m for a batch of unit vectors given as components `x`, `y`, `z`
    /// (each of length P; made by [`unit_vector`] so that they are the
    /// directions [`SphericalHarmonics::compute`] would use), into
    /// `values[(l² + l + m) · P + p]`: one contiguous row of P values per
    /// (l, m). `scratch` holds 4·P values.
    ///
    /// Every value is bitwise equal to [`SphericalHarmonics::compute`] of
    /// that direction: the same operations in the same order, one direction
    /// per SIMD lane instead of one after the other, which is why the
    /// layout is (l, m)-major.
    #[inline(always)]
    pub fn compute_batch(&self, x: &[f64], y: &[f64], z: &[f64], scratch: &mut [f64], values: &mut [f64]) {
        let count = x.len();
        let l_max = self.max_angular;
        assert!(y.len() == count && z.len() == count, "x, y and z must have the same length");
        assert!(values.len() >= self.size() * count, "values has {} entries, expected {}", values.len(), self.size() * count);
        assert!(scratch.len() >= 4 * count, "scratch has {} entries, expected {}", scratch.len(), 4 * count);
        let (cos_m, rest) = scratch[..4 * count].split_at_mut(count);
        let (sin_m, rest) = rest.split_at_mut(count);
        let (q_previous, q) = rest.split_at_mut(count);
        cos_m.fill(1.0);
        sin_m.fill(0.0);
        for m in 0..=l_max {
            if m > 0 {
                for p in 0..count {
                    let new_cos = x[p] * cos_m[p] - y[p] * sin_m[p];
                    sin_m[p] = x[p] * sin_m[p] + y[p] * cos_m[p];
                    cos_m[p] = new_cos;
                }
            }
            q_previous.fill(self.diagonal[m]);
            store_batch(values, count, l_max, m, m, q_previous, cos_m, sin_m);
            if m == l_max {
                break;
            }
            let off = self.off_diagonal[m];
            for p in 0..count {
                q[p] = off * z[p] * q_previous[p];
            }
            store_batch(values, count, l_max, m + 1, m, q, cos_m, sin_m);
            let coefficients = &self.recurrence[self.recurrence_start[m]..self.recurrence_start[m + 1]];
            for (l, &[a, b]) in (m + 2..=l_max).zip(coefficients) {
                for p in 0..count {
                    let next = a * z[p] * q[p] - b * q_previous[p];
                    q_previous[p] = q[p];
                    q[p] = next;
                }
                store_batch(values, count, l_max, l, m, q, cos_m, sin_m);
            }
        }
    }

    /// w·Y_l^m(r̂) of four pairs at once, one per AVX2 lane, into
    /// `out[(l² + l + m) · stride + offset + lane]`: the values-only SOAP
    /// kernel's harmonics, with the density weight folded into the store.
    ///
    /// Pair `lane` has the vector (`vx`, `vy`, `vz`)[lane] (Å), its length
    /// `r`[lane] and weight `w`[lane]. Its direction is the one the
    /// pair-by-pair path uses: u = v / r, then [`unit_vector`] of u (+z where
    /// the norm of u is 0 or not finite). Every value is bitwise
    /// `w · (Y from SphericalHarmonics::compute(u))`: the same operations in
    /// the same order (divisions and square roots are correctly rounded in
    /// both), carried in registers across m and l instead of through a
    /// scratch array, so nothing but the 49 results is loaded or stored.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn weighted_block4(
        &self,
        vx: &[f64; 4],
        vy: &[f64; 4],
        vz: &[f64; 4],
        r: &[f64; 4],
        w: &[f64; 4],
        out: &mut [f64],
        offset: usize,
        stride: usize,
    ) {
        // l_max known at compile time for the common sizes: the loops over
        // m and l unroll, every store offset and coefficient is a constant
        // (the generic loop spent about as many instructions on indices as
        // on the arithmetic)
        macro_rules! fixed {
            ($($l:literal)*) => {
                match self.max_angular {
                    $($l => self.weighted_block4_impl::<$l>(vx, vy, vz, r, w, out, offset, stride),)*
                    _ => self.weighted_block4_impl::<{ usize::MAX }>(vx, vy, vz, r, w, out, offset, stride),
                }
            };
        }
        fixed!(2 3 4 5 6 7 8 9 10 12)
    }

    /// [`SphericalHarmonics::weighted_block4`] with l_max = `L`, or any
    /// l_max for `L = usize::MAX`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn weighted_block4_impl<const L: usize>(
        &self,
        vx: &[f64; 4],
        vy: &[f64; 4],
        vz: &[f64; 4],
        r: &[f64; 4],
        w: &[f64; 4],
        out: &mut [f64],
        offset: usize,
        stride: usize,
    ) {
        use std::arch::x86_64::{
            _mm256_add_pd, _mm256_and_pd, _mm256_blendv_pd, _mm256_cmp_pd, _mm256_div_pd, _mm256_loadu_pd, _mm256_mul_pd,
            _mm256_set1_pd, _mm256_setzero_pd, _mm256_sqrt_pd, _mm256_storeu_pd, _mm256_sub_pd, _CMP_GT_OQ, _CMP_LT_OQ,
        };
        let l_max = if L == usize::MAX { self.max_angular } else { L };
        assert!(l_max == self.max_angular);
        let size = (l_max + 1) * (l_max + 1);
        assert!(offset + 4 <= stride && out.len() >= (size - 1) * stride + offset + 4);
        // the recurrence coefficients are stored m-major, l = m + 2 … l_max,
        // the order in which the loop below uses them
        let n_recurrence = (0..=l_max).map(|m| l_max.saturating_sub(m + 1)).sum::<usize>();
        assert!(self.diagonal.len() == l_max + 1 && self.off_diagonal.len() == l_max + 1 && self.recurrence.len() == n_recurrence);
        let base = out.as_mut_ptr().add(offset);
        let r = _mm256_loadu_pd(r.as_ptr());
        let w = _mm256_loadu_pd(w.as_ptr());
        let (zero, one) = (_mm256_setzero_pd(), _mm256_set1_pd(1.0));
        // u = v / r, then normalise(u), as unit_vector([v / r]) does
        let ux = _mm256_div_pd(_mm256_loadu_pd(vx.as_ptr()), r);
        let uy = _mm256_div_pd(_mm256_loadu_pd(vy.as_ptr()), r);
        let uz = _mm256_div_pd(_mm256_loadu_pd(vz.as_ptr()), r);
        let norm = _mm256_sqrt_pd(_mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(ux, ux), _mm256_mul_pd(uy, uy)), _mm256_mul_pd(uz, uz)));
        // norm > 0 and finite (false for NaN)
        let valid = _mm256_and_pd(_mm256_cmp_pd::<_CMP_GT_OQ>(norm, zero), _mm256_cmp_pd::<_CMP_LT_OQ>(norm, _mm256_set1_pd(f64::INFINITY)));
        let x = _mm256_blendv_pd(zero, _mm256_div_pd(ux, norm), valid);
        let y = _mm256_blendv_pd(zero, _mm256_div_pd(uy, norm), valid);
        let z = _mm256_blendv_pd(one, _mm256_div_pd(uz, norm), valid);

        let mut cos_m = one; // Re ζ^m
        let mut sin_m = zero; // Im ζ^m
        // column m: every l from m to l_max. Re/Im ζ^m advance from those of
        // m − 1, then the recurrence in l from the diagonal term, each value
        // stored as (q·Re ζ^m)·w and (q·Im ζ^m)·w (q·w for m = 0). A macro,
        // so that a constant m makes every index below a constant
        macro_rules! column {
            ($m:expr) => {{
                let m: usize = $m;
                if m > 0 {
                    let new_cos = _mm256_sub_pd(_mm256_mul_pd(x, cos_m), _mm256_mul_pd(y, sin_m));
                    sin_m = _mm256_add_pd(_mm256_mul_pd(x, sin_m), _mm256_mul_pd(y, cos_m));
                    cos_m = new_cos;
                }
                macro_rules! store {
                    ($l:expr, $q:expr) => {{
                        let centre = $l * $l + $l;
                        if m == 0 {
                            _mm256_storeu_pd(base.add(centre * stride), _mm256_mul_pd($q, w));
                        } else {
                            _mm256_storeu_pd(base.add((centre + m) * stride), _mm256_mul_pd(_mm256_mul_pd($q, cos_m), w));
                            _mm256_storeu_pd(base.add((centre - m) * stride), _mm256_mul_pd(_mm256_mul_pd($q, sin_m), w));
                        }
                    }};
                }
                let mut q_previous = _mm256_set1_pd(*self.diagonal.get_unchecked(m));
                store!(m, q_previous);
                if m < l_max {
                    let mut q = _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(*self.off_diagonal.get_unchecked(m)), z), q_previous);
                    store!(m + 1, q);
                    // the recurrence coefficients are stored m-major,
                    // l = m + 2 … l_max: those of column m start after the
                    // l_max − m' − 1 of every m' < m
                    let mut next_coefficient = (0..m).map(|k| l_max.saturating_sub(k + 1)).sum::<usize>();
                    for l in m + 2..=l_max {
                        let [a, b] = *self.recurrence.get_unchecked(next_coefficient);
                        next_coefficient += 1;
                        let next = _mm256_sub_pd(
                            _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(a), z), q),
                            _mm256_mul_pd(_mm256_set1_pd(b), q_previous),
                        );
                        q_previous = q;
                        q = next;
                        store!(l, q);
                    }
                }
            }};
        }
        if L == usize::MAX {
            for m in 0..=l_max {
                column!(m);
            }
        } else {
            // m spelled out as constants for a fixed l_max: with m and l_max
            // known, the loop over l unrolls and every store's row (and
            // coefficient) is a constant; the loop over m with m a variable
            // computed each row's offset with two or three multiplications
            // (179 instructions a pair in si512 with it, 104 without)
            macro_rules! columns {
                ($($m:literal)*) => {
                    $(if $m <= l_max {
                        column!($m);
                    })*
                };
            }
            column!(0);
            columns!(1 2 3 4 5 6 7 8 9 10 11 12);
        }
    }

    /// Solid harmonics r^l Y_l^m at a unit vector (i.e. the Y_l^m), m-outer
    /// so that Re/Im ζ^m and the diagonal term are carried along without
    /// scratch storage.
    fn solid_harmonics(&self, unit: [f64; 3], values: &mut [f64]) {
        let [x, y, z] = unit;
        let l_max = self.max_angular;
        let values = &mut values[..(l_max + 1) * (l_max + 1)];
        // r² = 1 for the unit vector: the b coefficient multiplies q_{l−2} directly
        let mut cos_m = 1.0; // Re ζ^m
        let mut sin_m = 0.0; // Im ζ^m
        for m in 0..=l_max {
            if m > 0 {
                let new_cos = x * cos_m - y * sin_m;
                sin_m = x * sin_m + y * cos_m;
                cos_m = new_cos;
            }
            let (c, s) = if m == 0 { (1.0, 0.0) } else { (cos_m, sin_m) };
            let store = |values: &mut [f64], l: usize, q: f64| {
                let centre = l * l + l;
                values[centre + m] = q * c;
                if m > 0 {
                    values[centre - m] = q * s;
                }
            };

            let mut q_previous = self.diagonal[m];
            store(values, m, q_previous);
            if m == l_max {
                break;
            }
            let mut q = self.off_diagonal[m] * z * q_previous;
            store(values, m + 1, q);
            let coefficients = &self.recurrence[self.recurrence_start[m]..self.recurrence_start[m + 1]];
            for (l, &[a, b]) in (m + 2..=l_max).zip(coefficients) {
                let next = a * z * q - b * q_previous;
                q_previous = q;
                q = next;
                store(values, l, q);
            }
        }
    }
}

/// Rows (l, ±m) of a batch: q·Re ζ^m and q·Im ζ^m (q alone for m = 0).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn store_batch(values: &mut [f64], count: usize, l_max: usize, l: usize, m: usize, q: &[f64], cos_m: &[f64], sin_m: &[f64]) {
    let centre = l * l + l;
    debug_assert!(l <= l_max && values.len() >= (l_max + 1) * (l_max + 1) * count);
    let (q, cos_m, sin_m) = (&q[..count], &cos_m[..count], &sin_m[..count]);
    let row = &mut values[(centre + m) * count..(centre + m + 1) * count];
    if m == 0 {
        row.copy_from_slice(q);
        return;
    }
    for ((o, &q), &c) in row.iter_mut().zip(q).zip(cos_m) {
        *o = q * c;
    }
    let row = &mut values[(centre - m) * count..(centre - m + 1) * count];
    for ((o, &q), &s) in row.iter_mut().zip(q).zip(sin_m) {
        *o = q * s;
    }
}

/// The unit vector along `r` that [`SphericalHarmonics::compute`] uses
/// (+z for the zero vector), for [`SphericalHarmonics::compute_batch`].
#[inline(always)]
pub fn unit_vector(r: [f64; 3]) -> [f64; 3] {
    normalise(r).0
}

/// Unit vector and norm; the zero vector maps to +z with norm 0.
#[inline]
fn normalise(r: [f64; 3]) -> ([f64; 3], f64) {
    let norm = (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]).sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return ([0.0, 0.0, 1.0], 0.0);
    }
    ([r[0] / norm, r[1] / norm, r[2] / norm], norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small deterministic generator (xorshift64*), enough for test points.
    struct Rng(u64);
    impl Rng {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
        }
        fn vector(&mut self) -> [f64; 3] {
            [2.0 * self.uniform() - 1.0, 2.0 * self.uniform() - 1.0, 2.0 * self.uniform() - 1.0]
        }
    }

    fn unit(v: [f64; 3]) -> [f64; 3] {
        normalise(v).0
    }

    /// Legendre polynomial P_l(t) by the three-term recurrence.
    fn legendre(l: usize, t: f64) -> f64 {
        let (mut p0, mut p1) = (1.0, t);
        if l == 0 {
            return 1.0;
        }
        for k in 1..l {
            let kf = k as f64;
            let p2 = ((2.0 * kf + 1.0) * t * p1 - kf * p0) / (kf + 1.0);
            p0 = p1;
            p1 = p2;
        }
        p1
    }

    /// Gauss–Legendre nodes and weights on [−1, 1] by Newton iteration.
    fn gauss_legendre(n: usize) -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| {
                let mut t = (PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
                let mut derivative = 0.0;
                for _ in 0..100 {
                    let p = legendre(n, t);
                    let p_minus = legendre(n - 1, t);
                    derivative = n as f64 * (t * p - p_minus) / (t * t - 1.0);
                    let step = p / derivative;
                    t -= step;
                    if step.abs() < 1e-16 {
                        break;
                    }
                }
                (t, 2.0 / ((1.0 - t * t) * derivative * derivative))
            })
            .collect()
    }

    #[test]
    fn low_degrees_closed_form() {
        let sh = SphericalHarmonics::new(2);
        let mut values = vec![0.0; 9];
        let mut rng = Rng(7);
        for _ in 0..20 {
            let [x, y, z] = unit(rng.vector());
            sh.compute([x, y, z], &mut values);
            let c1 = (3.0 / (4.0 * PI)).sqrt();
            let c2 = 0.5 * (15.0 / PI).sqrt();
            let expected = [
                0.5 / PI.sqrt(),
                c1 * y,
                c1 * z,
                c1 * x,
                c2 * x * y,
                c2 * y * z,
                0.25 * (5.0 / PI).sqrt() * (3.0 * z * z - 1.0),
                c2 * x * z,
                0.5 * c2 * (x * x - y * y),
            ];
            for (v, e) in values.iter().zip(expected) {
                assert!((v - e).abs() < 1e-15, "{v} vs {e}");
            }
        }
    }

    #[test]
    fn only_direction_matters() {
        let sh = SphericalHarmonics::new(8);
        let mut a = vec![0.0; 81];
        let mut b = vec![0.0; 81];
        sh.compute([0.3, -1.2, 0.7], &mut a);
        sh.compute([3.0, -12.0, 7.0], &mut b);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-15);
        }
    }

    #[test]
    fn sectoral_sign_and_norm() {
        // Y_l^l(x̂) = √2·√((2l+1)/(4π)/(2l)!)·(2l−1)!! > 0 (no Condon–Shortley sign)
        let l_max = 25;
        let sh = SphericalHarmonics::new(l_max);
        let mut values = vec![0.0; (l_max + 1) * (l_max + 1)];
        sh.compute([1.0, 0.0, 0.0], &mut values);
        for l in 1..=l_max {
            let mut ln = 0.5 * ((2 * l + 1) as f64 / (4.0 * PI)).ln();
            for k in 1..=2 * l {
                ln -= 0.5 * (k as f64).ln();
            }
            for k in (1..2 * l).step_by(2) {
                ln += (k as f64).ln();
            }
            let expected = SQRT_2 * ln.exp();
            let value = values[lm_index(l, l as isize)];
            assert!(((value - expected) / expected).abs() < 1e-13, "l={l}: {value} vs {expected}");
        }
    }

    #[test]
    fn poles() {
        let l_max = 20;
        let sh = SphericalHarmonics::new(l_max);
        let mut values = vec![0.0; (l_max + 1) * (l_max + 1)];
        for sign in [1.0, -1.0] {
            sh.compute([0.0, 0.0, sign], &mut values);
            for l in 0..=l_max {
                for m in -(l as isize)..=(l as isize) {
                    let expected = if m == 0 { ((2 * l + 1) as f64 / (4.0 * PI)).sqrt() * sign.powi(l as i32) } else { 0.0 };
                    assert!((values[lm_index(l, m)] - expected).abs() < 1e-14);
                }
            }
        }
    }

    #[test]
    fn orthonormality_by_quadrature() {
        // Gauss–Legendre in cos θ × uniform φ integrates polynomials of degree
        // ≤ 2 l_max on the sphere exactly
        let l_max = 20;
        let n = (l_max + 1) * (l_max + 1);
        let sh = SphericalHarmonics::new(l_max);
        let nodes = gauss_legendre(l_max + 2);
        let n_phi = 2 * l_max + 3;
        let mut gram = vec![0.0; n * n];
        let mut values = vec![0.0; n];
        for &(t, w) in &nodes {
            let s = (1.0 - t * t).sqrt();
            for k in 0..n_phi {
                let phi = 2.0 * PI * k as f64 / n_phi as f64;
                sh.compute([s * phi.cos(), s * phi.sin(), t], &mut values);
                let weight = w * 2.0 * PI / n_phi as f64;
                for i in 0..n {
                    let wi = weight * values[i];
                    for j in i..n {
                        gram[i * n + j] += wi * values[j];
                    }
                }
            }
        }
        let mut worst = 0.0f64;
        for i in 0..n {
            for j in i..n {
                let expected = if i == j { 1.0 } else { 0.0 };
                worst = worst.max((gram[i * n + j] - expected).abs());
            }
        }
        assert!(worst < 1e-13, "orthonormality error {worst:e}");
    }

    #[test]
    fn addition_theorem() {
        let l_max = 20;
        let sh = SphericalHarmonics::new(l_max);
        let size = (l_max + 1) * (l_max + 1);
        let (mut a, mut b) = (vec![0.0; size], vec![0.0; size]);
        let mut rng = Rng(12345);
        for _ in 0..50 {
            let (u, v) = (unit(rng.vector()), unit(rng.vector()));
            sh.compute(u, &mut a);
            sh.compute(v, &mut b);
            let cos = u[0] * v[0] + u[1] * v[1] + u[2] * v[2];
            for l in 0..=l_max {
                let sum: f64 = (l * l..(l + 1) * (l + 1)).map(|i| a[i] * b[i]).sum();
                let expected = (2 * l + 1) as f64 / (4.0 * PI) * legendre(l, cos);
                assert!((sum - expected).abs() < 1e-13 * (2 * l + 1) as f64, "l={l}: {sum} vs {expected}");
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let l_max = 20;
        let sh = SphericalHarmonics::new(l_max);
        let size = (l_max + 1) * (l_max + 1);
        let mut values = vec![0.0; size];
        let mut gradients = vec![0.0; 3 * size];
        let (mut plus, mut minus) = (vec![0.0; size], vec![0.0; size]);
        let mut rng = Rng(99);
        let mut worst = 0.0f64;
        let mut points: Vec<[f64; 3]> = (0..20).map(|_| {
            let v = rng.vector();
            let scale = 0.5 + 3.0 * rng.uniform();
            [v[0] * scale, v[1] * scale, v[2] * scale]
        }).collect();
        // near and at the poles, where angle-based formulas are singular
        points.push([0.0, 0.0, 1.3]);
        points.push([1e-9, -2e-9, -0.8]);
        for r in points {
            sh.compute_with_gradients(r, &mut values, &mut gradients);
            let h = 1e-6;
            for a in 0..3 {
                let (mut rp, mut rm) = (r, r);
                rp[a] += h;
                rm[a] -= h;
                sh.compute(rp, &mut plus);
                sh.compute(rm, &mut minus);
                for i in 0..size {
                    let fd = (plus[i] - minus[i]) / (2.0 * h);
                    worst = worst.max((fd - gradients[a * size + i]).abs() / (1.0 + fd.abs()));
                }
            }
            // tangent: r·∇Y = 0
            for i in 0..size {
                let radial = r[0] * gradients[i] + r[1] * gradients[size + i] + r[2] * gradients[2 * size + i];
                assert!(radial.abs() < 1e-12, "radial component {radial}");
            }
        }
        assert!(worst < 1e-7, "worst finite-difference mismatch {worst:e}");
    }

    #[test]
    fn zero_vector_is_z_axis() {
        let sh = SphericalHarmonics::new(3);
        let mut values = vec![0.0; 16];
        let mut gradients = vec![1.0; 48];
        sh.compute_with_gradients([0.0; 3], &mut values, &mut gradients);
        let mut expected = vec![0.0; 16];
        sh.compute([0.0, 0.0, 2.0], &mut expected);
        assert_eq!(values, expected);
        assert!(gradients.iter().all(|&g| g == 0.0));
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    /// The batch form is the scalar form, bit for bit, lane by lane,
    /// including the zero vector and directions along the axes.
    #[test]
    fn batch_equals_scalar_bitwise() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut uniform = || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let mut vectors: Vec<[f64; 3]> = (0..37).map(|_| [3.0 * uniform(), 3.0 * uniform(), 3.0 * uniform()]).collect();
        vectors.extend_from_slice(&[[0.0, 0.0, 0.0], [0.0, 0.0, -2.0], [1.0, 0.0, 0.0], [0.0, 1e-300, 0.0]]);
        for l_max in [0, 1, 2, 6, 11] {
            let sph = SphericalHarmonics::new(l_max);
            let units: Vec<[f64; 3]> = vectors.iter().map(|&v| unit_vector(v)).collect();
            let (x, y, z): (Vec<f64>, Vec<f64>, Vec<f64>) =
                (units.iter().map(|u| u[0]).collect(), units.iter().map(|u| u[1]).collect(), units.iter().map(|u| u[2]).collect());
            let count = vectors.len();
            let mut batch = vec![f64::NAN; sph.size() * count];
            let mut scratch = vec![0.0; 4 * count];
            sph.compute_batch(&x, &y, &z, &mut scratch, &mut batch);
            let mut single = vec![0.0; sph.size()];
            for (p, &v) in vectors.iter().enumerate() {
                sph.compute(v, &mut single);
                for lm in 0..sph.size() {
                    assert_eq!(batch[lm * count + p].to_bits(), single[lm].to_bits(), "l_max {l_max}, lm {lm}, vector {v:?}");
                }
            }
        }
    }

    /// The values-only SOAP kernel's four-lane harmonics are bitwise
    /// w · `compute(v / r)` (which normalises v / r), for every l_max
    /// with and without a compile-time size, idle lanes (r = 1, v = +z,
    /// w = 0) and vectors whose length is not r (the kernel normalises).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn weighted_block4_is_weight_times_compute_bitwise() {
        if !crate::math::cpu::has_avx2() {
            return;
        }
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut uniform = || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let mut pairs: Vec<([f64; 3], f64, f64)> = (0..41)
            .map(|_| {
                let v = [3.0 * uniform(), 3.0 * uniform(), 3.0 * uniform()];
                let r = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt() * (1.0 + 1e-9 * uniform());
                (v, r, 0.5 + uniform())
            })
            .collect();
        pairs.extend_from_slice(&[([0.0, 0.0, 1.0], 1.0, 0.0), ([0.0, 0.0, -2.0], 2.0, 0.7), ([1e-13, 0.0, 0.0], 1e-13, 1.0)]);
        while pairs.len() % 4 != 0 {
            pairs.push(([0.0, 0.0, 1.0], 1.0, 0.0));
        }
        let stride = pairs.len() + 4;
        for l_max in [0, 1, 2, 6, 11, 12] {
            let sph = SphericalHarmonics::new(l_max);
            let mut out = vec![f64::NAN; sph.size() * stride];
            for b in (0..pairs.len()).step_by(4) {
                let lane = |f: &dyn Fn(&([f64; 3], f64, f64)) -> f64| -> [f64; 4] { std::array::from_fn(|k| f(&pairs[b + k])) };
                let (vx, vy, vz) = (lane(&|p| p.0[0]), lane(&|p| p.0[1]), lane(&|p| p.0[2]));
                let (r, w) = (lane(&|p| p.1), lane(&|p| p.2));
                // SAFETY: the CPU has AVX2 (checked above)
                unsafe { sph.weighted_block4(&vx, &vy, &vz, &r, &w, &mut out, b, stride) };
            }
            let mut single = vec![0.0; sph.size()];
            for (p, &(v, r, w)) in pairs.iter().enumerate() {
                // as the pair-by-pair path: compute(v / r), which normalises
                sph.compute([v[0] / r, v[1] / r, v[2] / r], &mut single);
                for lm in 0..sph.size() {
                    let expected = w * single[lm];
                    assert_eq!(out[lm * stride + p].to_bits(), expected.to_bits(), "l_max {l_max}, lm {lm}, pair {p}");
                }
            }
        }
    }
}
