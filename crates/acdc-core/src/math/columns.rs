//! Products of a column-major matrix A (`rows × cols`, column k at
//! `a[k·rows..(k + 1)·rows]`) with a vector, on both sides: Aᵀx (a dot
//! product per column) and A w (a weighted sum of the columns).
//!
//! Why: the sparse GPR evaluates, for every atom of every MD step, the
//! cosines s = X̂ᵀx̂ between the atom's normalised features and its
//! species' sparse points and the gradient X̂ b of the kernel sum: two
//! products with an n_features × n_sparse matrix (252 × 400 for silicon at
//! GAP's settings). nalgebra's generic products ran them at ~5
//! instructions a multiply-add, two thirds of a GPR step's instructions.
//! Here four columns go together, four lanes wide with FMA, so each load of
//! x (or of the output) serves four columns.
#[cfg(target_arch = "x86_64")]
use super::cpu::has_avx2_fma;

/// out[k] = Σ_i a[k·rows + i]·x[i] for k < cols (Aᵀx).
pub fn transpose_times(a: &[f64], rows: usize, cols: usize, x: &[f64], out: &mut [f64]) {
    assert!(a.len() == rows * cols && x.len() == rows && out.len() == cols, "columns::transpose_times: sizes");
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above); sizes asserted
        unsafe { transpose_times_avx2(a, rows, cols, x, out) };
        return;
    }
    transpose_times_scalar(a, rows, x, out);
}

fn transpose_times_scalar(a: &[f64], rows: usize, x: &[f64], out: &mut [f64]) {
    for (k, o) in out.iter_mut().enumerate() {
        *o = a[k * rows..(k + 1) * rows].iter().zip(x).map(|(p, q)| p * q).sum();
    }
}

/// out[i] = Σ_k a[k·rows + i]·w[k] for i < rows (A w).
pub fn times(a: &[f64], rows: usize, cols: usize, w: &[f64], out: &mut [f64]) {
    assert!(a.len() == rows * cols && w.len() == cols && out.len() == rows, "columns::times: sizes");
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above); sizes asserted
        unsafe { times_avx2(a, rows, cols, w, out) };
        return;
    }
    times_scalar(a, rows, w, out);
}

fn times_scalar(a: &[f64], rows: usize, w: &[f64], out: &mut [f64]) {
    out.fill(0.0);
    for (column, &wk) in a.chunks_exact(rows.max(1)).zip(w) {
        for (o, v) in out.iter_mut().zip(column) {
            *o += wk * v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn transpose_times_avx2(a: &[f64], rows: usize, cols: usize, x: &[f64], out: &mut [f64]) {
    use std::arch::x86_64::*;
    let r4 = rows & !3;
    let sum4 = |v: __m256d| -> f64 {
        let mut lanes = [0.0f64; 4];
        _mm256_storeu_pd(lanes.as_mut_ptr(), v);
        (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
    };
    let xp = x.as_ptr();
    let mut k = 0;
    while k + 4 <= cols {
        let p: [*const f64; 4] = std::array::from_fn(|c| a.as_ptr().add((k + c) * rows));
        let mut acc = [_mm256_setzero_pd(); 4];
        let mut i = 0;
        while i < r4 {
            let xv = _mm256_loadu_pd(xp.add(i));
            for c in 0..4 {
                acc[c] = _mm256_fmadd_pd(_mm256_loadu_pd(p[c].add(i)), xv, acc[c]);
            }
            i += 4;
        }
        for c in 0..4 {
            let mut t = sum4(acc[c]);
            for i in r4..rows {
                t += *p[c].add(i) * x[i];
            }
            out[k + c] = t;
        }
        k += 4;
    }
    while k < cols {
        let p = a.as_ptr().add(k * rows);
        let mut acc = _mm256_setzero_pd();
        let mut i = 0;
        while i < r4 {
            acc = _mm256_fmadd_pd(_mm256_loadu_pd(p.add(i)), _mm256_loadu_pd(xp.add(i)), acc);
            i += 4;
        }
        let mut t = sum4(acc);
        for i in r4..rows {
            t += *p.add(i) * x[i];
        }
        out[k] = t;
        k += 1;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn times_avx2(a: &[f64], rows: usize, cols: usize, w: &[f64], out: &mut [f64]) {
    use std::arch::x86_64::*;
    out.fill(0.0);
    let r4 = rows & !3;
    let op = out.as_mut_ptr();
    let mut k = 0;
    while k < cols {
        let width = (cols - k).min(4);
        let p: [*const f64; 4] = std::array::from_fn(|c| a.as_ptr().add((k + c.min(width - 1)) * rows));
        // a missing column of the last group has weight 0 (it re-reads a real one)
        let wk: [f64; 4] = std::array::from_fn(|c| if c < width { w[k + c] } else { 0.0 });
        let wv = wk.map(|v| _mm256_set1_pd(v));
        let mut i = 0;
        while i < r4 {
            let mut o = _mm256_loadu_pd(op.add(i));
            for c in 0..4 {
                o = _mm256_fmadd_pd(wv[c], _mm256_loadu_pd(p[c].add(i)), o);
            }
            _mm256_storeu_pd(op.add(i), o);
            i += 4;
        }
        for i in r4..rows {
            let mut o = out[i];
            for c in 0..4 {
                o += wk[c] * *p[c].add(i);
            }
            out[i] = o;
        }
        k += 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both products against plain sums (≤ 1e-14 relative to Σ|terms|), on
    /// shapes with every remainder of rows and columns modulo 4, and the
    /// scalar forms against the vector ones.
    #[test]
    fn products_equal_plain_sums() {
        let mut random = crate::math::random::xorshift_uniform(11);
        for rows in [1usize, 3, 4, 7, 8, 33, 252] {
            for cols in [1usize, 2, 3, 4, 5, 9, 400] {
                let a: Vec<f64> = (0..rows * cols).map(|_| random() - 0.5).collect();
                let x: Vec<f64> = (0..rows).map(|_| random() - 0.5).collect();
                let w: Vec<f64> = (0..cols).map(|_| random() - 0.5).collect();
                let mut s = vec![f64::NAN; cols];
                let mut s_scalar = vec![f64::NAN; cols];
                transpose_times(&a, rows, cols, &x, &mut s);
                transpose_times_scalar(&a, rows, &x, &mut s_scalar);
                for k in 0..cols {
                    let terms = (0..rows).map(|i| a[k * rows + i] * x[i]);
                    let (want, size): (f64, f64) = terms.fold((0.0, 0.0), |(t, m), v| (t + v, m + v.abs()));
                    for got in [s[k], s_scalar[k]] {
                        assert!((got - want).abs() <= 1e-14 * size.max(1e-300), "{rows} × {cols}, column {k}: {got} vs {want}");
                    }
                }
                let mut g = vec![f64::NAN; rows];
                let mut g_scalar = vec![f64::NAN; rows];
                times(&a, rows, cols, &w, &mut g);
                times_scalar(&a, rows, &w, &mut g_scalar);
                for i in 0..rows {
                    let terms = (0..cols).map(|k| a[k * rows + i] * w[k]);
                    let (want, size): (f64, f64) = terms.fold((0.0, 0.0), |(t, m), v| (t + v, m + v.abs()));
                    for got in [g[i], g_scalar[i]] {
                        assert!((got - want).abs() <= 1e-14 * size.max(1e-300), "{rows} × {cols}, row {i}: {got} vs {want}");
                    }
                }
            }
        }
    }
}
