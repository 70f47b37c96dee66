//! The inner loop shared by the Clebsch–Gordan calculators (λ-SOAP, density
//! correlations): with the outer products `P[m₁,m₂][k] = a[m₁][p]·b[m₂][q]`
//! (k = p·n_q + q) tabulated once per sample and (l₁, l₂), every coefficient
//! Ĉ[m₁,m₂,μ] of every output λ is one contiguous `out[μ][k] += Ĉ·P[m₁,m₂][k]`
//! over the whole (p, q) property plane. The products a·b are so shared by
//! every λ and μ they feed (about 2l₁+1 coefficients each), and the update
//! vectorises over the property axis whatever n_max is.
//! One [`Step`] is one coefficient; a list of steps is the sparse
//! coefficient table laid out for one (l₁, l₂) and a set of output blocks.

/// `outs[out][base[out] + pos ..][..len] += value · P[src ..][..len]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    /// which output buffer
    pub out: u32,
    /// offset in that buffer's current sample (μ·n_props + first property)
    pub pos: u32,
    /// offset of the (m₁, m₂) outer product in P
    pub src: u32,
    /// Ĉ[m₁,m₂,μ]
    pub value: f64,
}

/// Runs `steps` (see [`Step`]) with vectors of `len` values; `base[b]` is
/// where the current sample starts in `outs[b]`. AVX2 + FMA where the CPU
/// has them (one rounding per update instead of two).
pub(crate) fn apply_steps<O: AsMut<[f64]>>(outs: &mut [O], base: &[usize], steps: &[Step], p: &[f64], len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if super::cpu::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA (checked just above)
            unsafe { apply_steps_fma(outs, base, steps, p, len) };
            return;
        }
    }
    for s in steps {
        let o = &mut outs[s.out as usize].as_mut()[base[s.out as usize] + s.pos as usize..][..len];
        let x = &p[s.src as usize..][..len];
        for (r, &v) in o.iter_mut().zip(x) {
            *r += s.value * v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn apply_steps_fma<O: AsMut<[f64]>>(outs: &mut [O], base: &[usize], steps: &[Step], p: &[f64], len: usize) {
    // the planes of n_max² (and (types·n_max)²) values the calculators use,
    // with the vector loop unrolled: the same operations in the same order
    // SAFETY (each arm): the caller checked AVX2 and FMA
    unsafe {
        match len {
            4 => return apply_fixed_fma::<4, O>(outs, base, steps, p),
            9 => return apply_fixed_fma::<9, O>(outs, base, steps, p),
            16 => return apply_fixed_fma::<16, O>(outs, base, steps, p),
            25 => return apply_fixed_fma::<25, O>(outs, base, steps, p),
            36 => return apply_fixed_fma::<36, O>(outs, base, steps, p),
            49 => return apply_fixed_fma::<49, O>(outs, base, steps, p),
            64 => return apply_fixed_fma::<64, O>(outs, base, steps, p),
            100 => return apply_fixed_fma::<100, O>(outs, base, steps, p),
            _ => {}
        }
    }
    use std::arch::x86_64::{_mm256_fmadd_pd, _mm256_loadu_pd, _mm256_set1_pd, _mm256_storeu_pd};
    for s in steps {
        // bounds checked once per step, by the slicing
        let o = &mut outs[s.out as usize].as_mut()[base[s.out as usize] + s.pos as usize..][..len];
        let x = &p[s.src as usize..][..len];
        let c = _mm256_set1_pd(s.value);
        let mut k = 0;
        while k + 4 <= len {
            // SAFETY: k + 4 ≤ len = o.len() = x.len(); unaligned loads and stores
            unsafe {
                let v = _mm256_fmadd_pd(c, _mm256_loadu_pd(x.as_ptr().add(k)), _mm256_loadu_pd(o.as_ptr().add(k)));
                _mm256_storeu_pd(o.as_mut_ptr().add(k), v);
            }
            k += 4;
        }
        while k < len {
            o[k] = s.value.mul_add(x[k], o[k]);
            k += 1;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn apply_fixed_fma<const N: usize, O: AsMut<[f64]>>(outs: &mut [O], base: &[usize], steps: &[Step], p: &[f64]) {
    use std::arch::x86_64::{_mm256_fmadd_pd, _mm256_loadu_pd, _mm256_set1_pd, _mm256_storeu_pd};
    for s in steps {
        let o = &mut outs[s.out as usize].as_mut()[base[s.out as usize] + s.pos as usize..][..N];
        let x = &p[s.src as usize..][..N];
        let c = _mm256_set1_pd(s.value);
        for k in 0..N / 4 {
            // SAFETY: 4k + 4 ≤ N = o.len() = x.len(); unaligned loads and stores
            unsafe {
                let v = _mm256_fmadd_pd(c, _mm256_loadu_pd(x.as_ptr().add(4 * k)), _mm256_loadu_pd(o.as_ptr().add(4 * k)));
                _mm256_storeu_pd(o.as_mut_ptr().add(4 * k), v);
            }
        }
        for k in N / 4 * 4..N {
            o[k] = s.value.mul_add(x[k], o[k]);
        }
    }
}

/// `plane[i·b.len() + j] += (s·a[i])·b[j]` (s = ±1: the products are those
/// of [`outer`], exactly): adds the transposed outer product, P + s·Pᵀ.
#[inline]
pub(crate) fn outer_add(plane: &mut [f64], a: &[f64], b: &[f64], s: f64) {
    #[inline(always)]
    fn fixed<const N: usize>(plane: &mut [f64], a: &[f64], b: &[f64], s: f64) {
        let Ok(b) = <&[f64; N]>::try_from(b) else { return };
        for (row, &x) in plane.chunks_exact_mut(N).zip(a) {
            if let Ok(row) = <&mut [f64; N]>::try_from(row) {
                let x = s * x;
                for j in 0..N {
                    row[j] += x * b[j];
                }
            }
        }
    }
    match b.len() {
        0 => {}
        4 => fixed::<4>(plane, a, b, s),
        5 => fixed::<5>(plane, a, b, s),
        6 => fixed::<6>(plane, a, b, s),
        7 => fixed::<7>(plane, a, b, s),
        8 => fixed::<8>(plane, a, b, s),
        n => {
            for (row, &x) in plane.chunks_exact_mut(n).zip(a) {
                let x = s * x;
                for (r, &y) in row.iter_mut().zip(b) {
                    *r += x * y;
                }
            }
        }
    }
}

/// `plane[i·b.len() + j] = a[i]·b[j]`: one outer product P[m₁,m₂], with
/// the common short lengths unrolled (a runtime-length inner loop of 4 or 5
/// does not vectorise).
#[inline]
pub(crate) fn outer(plane: &mut [f64], a: &[f64], b: &[f64]) {
    #[inline(always)]
    fn fixed<const N: usize>(plane: &mut [f64], a: &[f64], b: &[f64]) {
        let Ok(b) = <&[f64; N]>::try_from(b) else { return };
        for (row, &x) in plane.chunks_exact_mut(N).zip(a) {
            if let Ok(row) = <&mut [f64; N]>::try_from(row) {
                for j in 0..N {
                    row[j] = x * b[j];
                }
            }
        }
    }
    debug_assert_eq!(plane.len(), a.len() * b.len());
    match b.len() {
        0 => {}
        1 => fixed::<1>(plane, a, b),
        2 => fixed::<2>(plane, a, b),
        3 => fixed::<3>(plane, a, b),
        4 => fixed::<4>(plane, a, b),
        5 => fixed::<5>(plane, a, b),
        6 => fixed::<6>(plane, a, b),
        7 => fixed::<7>(plane, a, b),
        8 => fixed::<8>(plane, a, b),
        n => {
            for (row, &x) in plane.chunks_exact_mut(n).zip(a) {
                for (r, &y) in row.iter_mut().zip(b) {
                    *r = x * y;
                }
            }
        }
    }
}

/// The distinct `src` offsets of `steps`, ascending: the outer products a
/// sample needs (a selection of keys, or λ = 0 alone, uses few of them).
pub(crate) fn used_sources(steps: &[Step]) -> Vec<u32> {
    let mut src: Vec<u32> = steps.iter().map(|s| s.src).collect();
    src.sort_unstable();
    src.dedup();
    src
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector path and the scalar definition agree (to rounding), tails included.
    #[test]
    fn steps_accumulate() {
        for len in [1usize, 4, 5, 9, 25, 26] {
            let p: Vec<f64> = (0..3 * len).map(|k| (k as f64 * 0.37).sin()).collect();
            let steps = [
                Step { out: 0, pos: 0, src: 0, value: 0.5 },
                Step { out: 1, pos: len as u32, src: len as u32, value: -1.25 },
                Step { out: 0, pos: 0, src: 2 * len as u32, value: 2.0 },
            ];
            let mut outs = vec![vec![1.0; 3 * len], vec![0.0; 3 * len]];
            apply_steps(&mut outs, &[0, len], &steps, &p, len);
            for k in 0..len {
                let want0 = 1.0 + 0.5 * p[k] + 2.0 * p[2 * len + k];
                assert!((outs[0][k] - want0).abs() < 1e-15, "{len} {k}");
                assert!((outs[1][2 * len + k] + 1.25 * p[len + k]).abs() < 1e-15);
                assert_eq!(outs[1][k], 0.0);
            }
            assert_eq!(used_sources(&steps), vec![0, len as u32, 2 * len as u32]);
        }
    }

    #[test]
    fn outer_products() {
        for (na, nb) in [(3usize, 1usize), (4, 4), (5, 5), (9, 9)] {
            let a: Vec<f64> = (0..na).map(|k| k as f64 + 0.5).collect();
            let b: Vec<f64> = (0..nb).map(|k| 1.0 - k as f64).collect();
            let mut plane = vec![f64::NAN; na * nb];
            outer(&mut plane, &a, &b);
            for i in 0..na {
                for j in 0..nb {
                    assert_eq!(plane[i * nb + j], a[i] * b[j]);
                }
            }
            if na == nb {
                let mut sym = plane.clone();
                outer_add(&mut sym, &b, &a, -1.0);
                for i in 0..na {
                    for j in 0..nb {
                        assert_eq!(sym[i * nb + j], plane[i * nb + j] - plane[j * nb + i]);
                    }
                }
            }
        }
    }
}
