//! Folding new rows into the triangular factor of a least-squares problem:
//! given R (n × n, upper triangular) and Qᵀb of the rows seen so far, and a
//! block of p new rows A (p × n) with right-hand side b, compute R' and
//! Q'ᵀb' of the stacked system [R; A], [Qᵀb; b] by Householder
//! reflections (Golub & Van Loan, *Matrix Computations*, 4th ed., §5.2 and
//! §6.5.3, "adding rows").
//!
//! Why not nalgebra's QR of the stacked (n + p) × n matrix, which this
//! replaces in the potentials' streaming fit: it does not know that R is
//! triangular, so each reflector spans n + p − k rows where only 1 + p are
//! non-zero (for p = n about 1.5× the flops and memory traffic), and it runs
//! on one thread while the fit's other stages run on all. Here reflector k
//! touches row k of R and the p rows of A only, and its application to the
//! trailing columns is split across the rayon pool column by column. Each
//! column is updated by one thread in a fixed order, so the factor is the
//! same bit for bit whatever the number of threads.
//!
//! The reflector follows LAPACK's `dlarfg`: for x = [α; a] (α = R[k,k],
//! a = A[:,k]), β = −sign(α)·‖x‖, τ = (β − α)/β, v = [1; a/(α − β)], and
//! H = I − τvvᵀ maps x to [β; 0]. A zero column a leaves R[k,k] as it is
//! (τ = 0), so rows that do not touch a parameter do not flip its sign.
use rayon::prelude::*;

/// Below this many multiply-adds a column sweep runs on the calling
/// thread: a rayon split costs a few microseconds, the work of ~10⁴ FMAs.
const PARALLEL_MIN_WORK: usize = 1 << 14;

/// Folds the p rows of `a` (p × n, column-major: column j is
/// `a[j*p..(j+1)*p]`) with right-hand side `b` (p) into the upper-triangular
/// `r` (n × n, column-major; its strict lower triangle is neither read nor
/// written) and `qtb` (n). On return `r` and `qtb` describe the stacked
/// system; `a` and `b` hold the reflectors' tails (workspace, not a
/// result). Lengths are the caller's contract (checked in debug builds).
pub fn fold_rows(r: &mut [f64], qtb: &mut [f64], a: &mut [f64], b: &mut [f64], n: usize, p: usize) {
    debug_assert!(r.len() == n * n && qtb.len() == n && a.len() == n * p && b.len() == p);
    if p == 0 {
        return;
    }
    let mut taus = [0.0f64; PANEL];
    let mut next_taus = [0.0f64; PANEL];
    factor_panel(r, qtb, a, b, n, p, 0, PANEL.min(n), &mut taus);
    for k0 in (0..n).step_by(PANEL) {
        let k1 = (k0 + PANEL).min(n);
        let k2 = (k1 + PANEL).min(n);
        // the panel's reflectors, in order, on each trailing column: the
        // column stays in L1 for all of them, the panel in L2. Look-ahead:
        // the next panel's columns are updated first and factored at once
        // (serial work) while the other columns are updated on the rest of
        // the pool; every column still sees the same reflectors in the same
        // order, so the factor is the same bit for bit.
        let (_, r_trailing) = r.split_at_mut(k1 * n);
        let (r_next, r_rest) = r_trailing.split_at_mut((k2 - k1) * n);
        let (a_done, a_trailing) = a.split_at_mut(k1 * p);
        let (a_next, a_rest) = a_trailing.split_at_mut((k2 - k1) * p);
        let v = &a_done[k0 * p..];
        let panel_taus = &taus[..k1 - k0];
        let qtb_next = &mut qtb[k1..k2];
        let b = &mut *b;
        let next_out = &mut next_taus;
        let mut next = move || {
            if k1 < k2 {
                sweep(r_next, n, k0, a_next, p, v, panel_taus);
                factor_panel_at(r_next, qtb_next, a_next, b, n, p, k1, next_out);
            }
        };
        let parallel = (n - k2) * p * panel_taus.len() >= PARALLEL_MIN_WORK;
        let mut rest = move || {
            if parallel {
                // about PARALLEL_MIN_WORK multiply-adds per task
                let per_task = (PARALLEL_MIN_WORK / (p * panel_taus.len())).max(1);
                r_rest.par_chunks_mut(n * per_task).zip(a_rest.par_chunks_mut(p * per_task)).for_each(|(rs, as_)| sweep(rs, n, k0, as_, p, v, panel_taus));
            } else {
                sweep(r_rest, n, k0, a_rest, p, v, panel_taus);
            }
        };
        if parallel {
            rayon::join(next, rest);
        } else {
            next();
            rest();
        }
        std::mem::swap(&mut taus, &mut next_taus);
    }
}

/// Forms the reflectors of the panel of columns k0..k1 (all of R and A, as
/// [`fold_rows`] holds them) and applies each to the right-hand side and to
/// the panel's later columns; their τ go to `taus[..k1 − k0]`.
#[allow(clippy::too_many_arguments)]
fn factor_panel(r: &mut [f64], qtb: &mut [f64], a: &mut [f64], b: &mut [f64], n: usize, p: usize, k0: usize, k1: usize, taus: &mut [f64; PANEL]) {
    factor_panel_at(&mut r[k0 * n..k1 * n], &mut qtb[k0..k1], &mut a[k0 * p..k1 * p], b, n, p, k0, taus);
}

/// [`factor_panel`] on the panel's own columns: `r_panel` holds R's columns
/// k0…k0 + w − 1 (n each), `qtb_panel` and `a_panel` the matching entries and
/// columns, w = `qtb_panel.len()`.
#[allow(clippy::too_many_arguments)]
fn factor_panel_at(r_panel: &mut [f64], qtb_panel: &mut [f64], a_panel: &mut [f64], b: &mut [f64], n: usize, p: usize, k0: usize, taus: &mut [f64; PANEL]) {
    let width = qtb_panel.len();
    for c in 0..width {
        let k = k0 + c;
        // the reflector of column k, from R[k,k] and A[:,k]
        let (head, tail) = a_panel.split_at_mut((c + 1) * p);
        let v = &mut head[c * p..];
        taus[c] = 0.0;
        let norm_a = norm2(v);
        if norm_a == 0.0 {
            continue;
        }
        let alpha = r_panel[c * n + k];
        let norm = alpha.hypot(norm_a);
        let beta = if alpha >= 0.0 { -norm } else { norm };
        let tau = (beta - alpha) / beta;
        let scale = 1.0 / (alpha - beta);
        for x in v.iter_mut() {
            *x *= scale;
        }
        r_panel[c * n + k] = beta;
        taus[c] = tau;
        // H applied to the right-hand side and to the panel's columns
        // after k: w = R[k,j] + v·A[:,j]; R[k,j] −= τw; A[:,j] −= τw·v
        sweep(std::slice::from_mut(&mut qtb_panel[c]), 1, 0, b, p, v, &[tau]);
        sweep(&mut r_panel[(c + 1) * n..width * n], n, k, &mut tail[..(width - c - 1) * p], p, v, &[tau]);
    }
}

/// Reflectors factored together before they are applied to the trailing
/// columns: 32 columns of up to a few thousand rows stay in L2.
const PANEL: usize = 32;

/// Applies H_i = I − τ_i[1; v_i][1; v_i]ᵀ for i = 0, 1, … in order to the
/// columns [heads[c·stride + k0 + i]; columns[c·p..(c + 1)·p]] for every
/// column c (v_i = `v[i·p..(i + 1)·p]`; τ_i = 0 skips), with AVX2 and FMA
/// where the CPU has them (f64::mul_add without the `fma` target feature
/// is a library call, ten times slower than the multiply and add it
/// replaces). Each column sees the same operations in the same order
/// whoever calls, so the result does not depend on how columns are split.
fn sweep(heads: &mut [f64], stride: usize, k0: usize, columns: &mut [f64], p: usize, v: &[f64], taus: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    if super::cpu::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above)
        unsafe { sweep_avx2_fma(heads, stride, k0, columns, p, v, taus) };
        return;
    }
    sweep_scalar(heads, stride, k0, columns, p, v, taus);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sweep_avx2_fma(heads: &mut [f64], stride: usize, k0: usize, columns: &mut [f64], p: usize, v: &[f64], taus: &[f64]) {
    use std::arch::x86_64::*;
    let p16 = p & !15;
    for (hc, column) in heads.chunks_mut(stride).zip(columns.chunks_exact_mut(p)) {
        for (i, &tau) in taus.iter().enumerate() {
            if tau == 0.0 {
                continue;
            }
            let v = &v[i * p..(i + 1) * p];
            let (vp, cp) = (v.as_ptr(), column.as_mut_ptr());
            // w = τ(head + v·column): four accumulators, so that the FMAs
            // do not wait on each other's latency
            let mut acc = [_mm256_setzero_pd(); 4];
            let mut e = 0;
            while e < p16 {
                for (l, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_pd(_mm256_loadu_pd(vp.add(e + 4 * l)), _mm256_loadu_pd(cp.add(e + 4 * l)), *a);
                }
                e += 16;
            }
            let sum = _mm256_add_pd(_mm256_add_pd(acc[0], acc[1]), _mm256_add_pd(acc[2], acc[3]));
            let mut lanes = [0.0f64; 4];
            _mm256_storeu_pd(lanes.as_mut_ptr(), sum);
            let mut t = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
            for e in p16..p {
                t = v[e].mul_add(column[e], t);
            }
            let head = &mut hc[k0 + i];
            let w = tau * (*head + t);
            *head -= w;
            // column −= w·v
            let mw = _mm256_set1_pd(-w);
            let mut e = 0;
            while e + 4 <= p {
                _mm256_storeu_pd(cp.add(e), _mm256_fmadd_pd(mw, _mm256_loadu_pd(vp.add(e)), _mm256_loadu_pd(cp.add(e))));
                e += 4;
            }
            for e in e..p {
                column[e] = (-w).mul_add(v[e], column[e]);
            }
        }
    }
}

/// The same as the AVX2 path, in scalar arithmetic (no fused multiply-add).
fn sweep_scalar(heads: &mut [f64], stride: usize, k0: usize, columns: &mut [f64], p: usize, v: &[f64], taus: &[f64]) {
    for (hc, column) in heads.chunks_mut(stride).zip(columns.chunks_exact_mut(p)) {
        for (i, &tau) in taus.iter().enumerate() {
            if tau == 0.0 {
                continue;
            }
            let v = &v[i * p..(i + 1) * p];
            let mut s = [0.0f64; 4];
            let (v4, vr) = v.split_at(p & !3);
            let (c4, cr) = column.split_at(v4.len());
            for (x, y) in v4.chunks_exact(4).zip(c4.chunks_exact(4)) {
                for l in 0..4 {
                    s[l] += x[l] * y[l];
                }
            }
            let mut t = (s[0] + s[1]) + (s[2] + s[3]);
            for (x, y) in vr.iter().zip(cr) {
                t += x * y;
            }
            let head = &mut hc[k0 + i];
            let w = tau * (*head + t);
            *head -= w;
            for (c, vi) in column.iter_mut().zip(v) {
                *c -= w * vi;
            }
        }
    }
}

/// ‖x‖₂ without overflow or underflow for any finite x (scaled by the
/// largest magnitude, as LAPACK's `dnrm2` guards it).
fn norm2(x: &[f64]) -> f64 {
    let big = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if big == 0.0 || !big.is_finite() {
        return big;
    }
    let inv = 1.0 / big;
    let s: f64 = x.iter().map(|v| (v * inv) * (v * inv)).sum();
    big * s.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::random::LegacyRandomState;
    use nalgebra::{DMatrix, DVector};

    fn random(rng: &mut LegacyRandomState, rows: usize, cols: usize) -> DMatrix<f64> {
        let u: Vec<f64> = (0..rows * cols).map(|_| rng.random_sample() - 0.5).collect();
        DMatrix::from_column_slice(rows, cols, &u)
    }

    /// Folds `blocks` into R0 and checks the normal equations and the
    /// least-squares solution against nalgebra's QR of the whole stack.
    fn check(n: usize, blocks: &[usize], seed: u32) {
        let mut rng = LegacyRandomState::new(seed);
        let r0 = random(&mut rng, n, n).upper_triangle() + DMatrix::identity(n, n) * 2.0;
        let mut r = r0.clone();
        let mut qtb = DVector::<f64>::zeros(n);
        let mut all_a = r0.clone();
        let mut all_b = DVector::<f64>::zeros(n);
        for &p in blocks {
            let a = random(&mut rng, p, n);
            let b = DVector::from_iterator(p, (0..p).map(|_| rng.random_sample()));
            let (mut aw, mut bw) = (a.as_slice().to_vec(), b.as_slice().to_vec());
            fold_rows(r.as_mut_slice(), qtb.as_mut_slice(), &mut aw, &mut bw, n, p);
            all_a = DMatrix::from_fn(all_a.nrows() + p, n, |i, j| if i < all_a.nrows() { all_a[(i, j)] } else { a[(i - all_a.nrows(), j)] });
            all_b = DVector::from_iterator(all_b.len() + p, all_b.iter().copied().chain(b.iter().copied()));
        }
        // RᵀR = AᵀA (R0ᵀR0 included) to rounding
        let ata = all_a.transpose() * &all_a;
        let rtr = r.upper_triangle().transpose() * r.upper_triangle();
        let scale = ata.amax();
        assert!((&rtr - &ata).amax() <= 1e-13 * scale * n as f64, "RᵀR vs AᵀA: {:e}", (&rtr - &ata).amax());
        // the solution of R x = Qᵀb is the least-squares solution
        let x = r.upper_triangle().solve_upper_triangular(&qtb).unwrap();
        let reference = all_a.clone().qr();
        let mut rb = all_b.clone();
        reference.q_tr_mul(&mut rb);
        let x_ref = reference.r().solve_upper_triangular(&rb.rows(0, n).into_owned()).unwrap();
        assert!((&x - &x_ref).amax() <= 1e-10 * x_ref.amax(), "x: {:e}", (&x - &x_ref).amax());
    }

    #[test]
    fn the_simd_and_scalar_sweeps_agree() {
        // the scalar path is what CPUs without AVX2/FMA run
        let (p, columns, panel) = (37, 5, 3);
        let mut rng = LegacyRandomState::new(5);
        let v: Vec<f64> = (0..p * panel).map(|_| rng.random_sample() - 0.5).collect();
        let taus = [1.3, 0.0, 0.7];
        let heads: Vec<f64> = (0..columns * 4).map(|_| rng.random_sample()).collect();
        let cols: Vec<f64> = (0..columns * p).map(|_| rng.random_sample() - 0.5).collect();
        let (mut h1, mut c1) = (heads.clone(), cols.clone());
        let (mut h2, mut c2) = (heads.clone(), cols.clone());
        sweep(&mut h1, 4, 1, &mut c1, p, &v, &taus);
        sweep_scalar(&mut h2, 4, 1, &mut c2, p, &v, &taus);
        for (a, b) in h1.iter().zip(&h2).chain(c1.iter().zip(&c2)) {
            assert!((a - b).abs() <= 1e-14, "{a} vs {b}");
        }
        // the reflector with τ = 0 and the heads outside k0..k0 + 3 are untouched
        for c in 0..columns {
            assert_eq!(h2[c * 4], heads[c * 4]);
            assert_eq!(h2[c * 4 + 2], heads[c * 4 + 2]);
            assert_ne!(h2[c * 4 + 1], heads[c * 4 + 1]);
        }
    }

    #[test]
    fn folds_match_the_qr_of_the_stack() {
        check(1, &[1], 1);
        check(7, &[3, 1, 12], 2);
        check(40, &[40, 5, 80], 3);
        // large enough that the columns are split across the pool
        check(150, &[300, 150], 4);
    }

    #[test]
    fn zero_rows_and_zero_columns_leave_r_alone() {
        let n = 5;
        let mut rng = LegacyRandomState::new(7);
        let r0 = random(&mut rng, n, n).upper_triangle() + DMatrix::identity(n, n);
        let mut r = r0.clone();
        let mut qtb = vec![0.5; n];
        let mut a = vec![0.0; 3 * n];
        let mut b = vec![1.0; 3];
        fold_rows(r.as_mut_slice(), &mut qtb, &mut a, &mut b, n, 3);
        assert_eq!(r, r0);
        assert_eq!(qtb, vec![0.5; n]);
        // a row touching only the last parameter changes only R's last column's tail
        let mut a = vec![0.0; n];
        a[n - 1] = 3.0;
        let mut b = vec![2.0];
        let mut r = r0.clone();
        fold_rows(r.as_mut_slice(), &mut qtb, &mut a, &mut b, n, 1);
        for j in 0..n {
            for i in 0..=j {
                if (i, j) != (n - 1, n - 1) {
                    assert_eq!(r[(i, j)], r0[(i, j)], "({i}, {j})");
                }
            }
        }
        let d = r0[(n - 1, n - 1)];
        assert!((r[(n - 1, n - 1)].abs() - (d * d + 9.0).sqrt()).abs() < 1e-14);
    }

    /// The fold before the look-ahead (each panel factored after all the
    /// trailing columns were updated): the reference the look-ahead must
    /// equal bit for bit.
    fn fold_rows_without_look_ahead(r: &mut [f64], qtb: &mut [f64], a: &mut [f64], b: &mut [f64], n: usize, p: usize) {
        let mut taus = [0.0f64; PANEL];
        for k0 in (0..n).step_by(PANEL) {
            let k1 = (k0 + PANEL).min(n);
            factor_panel(r, qtb, a, b, n, p, k0, k1, &mut taus);
            let (panel, trailing) = a.split_at_mut(k1 * p);
            let v = &panel[k0 * p..];
            let taus = &taus[..k1 - k0];
            let r_trailing = &mut r[k1 * n..];
            let per_task = (PARALLEL_MIN_WORK / (p * taus.len())).max(1);
            r_trailing.par_chunks_mut(n * per_task).zip(trailing.par_chunks_mut(p * per_task)).for_each(|(rs, as_)| sweep(rs, n, k0, as_, p, v, taus));
        }
    }

    #[test]
    fn the_look_ahead_gives_the_same_bits() {
        // n below, at and between multiples of the panel; p small (serial
        // trailing updates) and large (joined with the next panel)
        for (n, p, seed) in [(1, 3, 1), (31, 7, 2), (32, 64, 3), (33, 200, 4), (97, 150, 5), (130, 400, 6), (64, 1, 7)] {
            let mut rng = LegacyRandomState::new(seed);
            let r0 = random(&mut rng, n, n).upper_triangle() + DMatrix::identity(n, n);
            let mut a = random(&mut rng, p, n);
            // a zero column (τ = 0) inside a panel
            a.column_mut(n / 2).fill(0.0);
            let b: Vec<f64> = (0..p).map(|_| rng.random_sample()).collect();
            let fold = |threads: usize, look_ahead: bool| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| {
                    let mut r = r0.as_slice().to_vec();
                    let mut qtb = vec![0.25; n];
                    let (mut aw, mut bw) = (a.as_slice().to_vec(), b.clone());
                    if look_ahead {
                        fold_rows(&mut r, &mut qtb, &mut aw, &mut bw, n, p);
                    } else {
                        fold_rows_without_look_ahead(&mut r, &mut qtb, &mut aw, &mut bw, n, p);
                    }
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    (bits(&r), bits(&qtb), bits(&aw), bits(&bw))
                })
            };
            let reference = fold(1, false);
            for threads in [1, 2, 3] {
                assert!(fold(threads, true) == reference, "n = {n}, p = {p}, {threads} threads");
            }
        }
    }

    #[test]
    fn the_factor_does_not_depend_on_the_thread_count() {
        let (n, p) = (120, 400);
        let mut rng = LegacyRandomState::new(11);
        let r0 = random(&mut rng, n, n).upper_triangle() + DMatrix::identity(n, n);
        let a = random(&mut rng, p, n);
        let b: Vec<f64> = (0..p).map(|_| rng.random_sample()).collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut r = r0.clone();
                let mut qtb = vec![0.0; n];
                let (mut aw, mut bw) = (a.as_slice().to_vec(), b.clone());
                fold_rows(r.as_mut_slice(), &mut qtb, &mut aw, &mut bw, n, p);
                (r, qtb)
            })
        };
        assert_eq!(run(1), run(3));
    }
}
