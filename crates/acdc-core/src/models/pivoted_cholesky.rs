//! Sparse environments by greedy pivoted Cholesky in the model's own kernel
//! space (`sparse.method = "pivoted-cholesky"`): the projected-process
//! choice for a sparse GPR, sometimes called kernel farthest point sampling
//! (S. Fine, K. Scheinberg, JMLR 2, 243 (2001); M. Seeger, C. Williams,
//! N. Lawrence, AISTATS 2003; for SOAP-GAP sparse sets e.g. M. A. Caro et
//! al.'s "greedy kernel selection").
//!
//! With k(x, x') = (x̂·x̂')^ζ (the normalised polynomial kernel of the model,
//! without δ², which does not change the picks) and M the environments
//! picked so far, the next pick is the environment of largest residual
//! variance
//!
//!   d(x) = k(x, x) − k_xM K_MM⁻¹ k_Mx,
//!
//! the prior variance of the GPR's local energy at x that the sparse set
//! does not explain: exactly what the projected-process approximation loses
//! there. The residuals are updated with one Cholesky column per pick
//! (incomplete Cholesky with the largest pivot), O(N·M·(F + M)) for N
//! environments with F features and M picks, no randomness.
//!
//! Ties. k(x, x) = 1 for every normalised environment, so the first pick is
//! a tie by construction (and x̂·x̂ computed in floating point is 1 ± a few
//! ulp, which would make it rounding noise). Ties in the residual are broken
//! by the larger cosine to the centroid of the environments (the most
//! typical first), then by the features in lexicographic order; the centroid
//! is summed column by column over the sorted values, so that, with every
//! residual computed row by row, a permutation of the input rows gives the
//! same environments in the same order (the indices permuted).
//!
//! Degenerate input: once the largest residual is at or below
//! [`RESIDUAL_FLOOR`] the picked environments span the rest to rounding
//! (duplicates, a low-rank set); the remaining picks take the order above
//! with no further Cholesky update, as the greedy CUR takes the lowest
//! unselected index once its residual vanishes. K_MM may then need the
//! model's jitter, which the fit's own check reports.
use std::cmp::Ordering;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use rayon::prelude::*;

use crate::budget::MemoryBudget;
use crate::calculators::check_cancelled;
use crate::error::{Error, Result};
use crate::math::linalg::dot;

/// A residual variance (relative to k(x, x) = 1) at or below this counts as
/// zero: the Cholesky update divides by √d, and below ~1e-12 the residuals
/// 1 − Σ l² are rounding error (a few ulp times the number of picks).
pub const RESIDUAL_FLOOR: f64 = 1e-12;

/// Indices of `count` rows of the row-major `rows × cols` matrix `x_hat`
/// (normalised feature vectors, one environment per row) chosen by greedy
/// pivoted Cholesky of the kernel (x̂·x̂')^`zeta`, in the order picked.
pub fn pivoted_cholesky(x_hat: &[f64], rows: usize, cols: usize, count: usize, zeta: u32, cancel: &Option<Arc<AtomicBool>>) -> Result<Vec<usize>> {
    if count > rows {
        return Err(Error::InvalidParameter(format!("cannot choose {count} sparse environments among {rows}")));
    }
    if x_hat.len() != rows * cols {
        return Err(Error::InvalidParameter(format!("pivoted Cholesky: {} values for a {rows} × {cols} matrix", x_hat.len())));
    }
    if zeta == 0 {
        return Err(Error::InvalidParameter("pivoted Cholesky: kernel.zeta = 0 (expected at least 1)".into()));
    }
    if x_hat.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidParameter("pivoted Cholesky: the features contain a non-finite value".into()));
    }
    if count == 0 {
        return Ok(Vec::new());
    }
    MemoryBudget::global().check("the pivoted Cholesky factor of the sparse selection", ((rows * count + 3 * rows + cols) * 8) as f64)?;

    let centroid = centroid(x_hat, rows, cols);
    let typical: Vec<f64> = x_hat.chunks(cols).map(|row| dot(row, &centroid)).collect();
    // l[i * count + t]: the Cholesky factor's row i (environments × picks)
    let mut l = vec![0.0; rows * count];
    let mut residual = vec![1.0; rows];
    let mut picked = vec![false; rows];
    let mut out = Vec::with_capacity(count);
    let mut exhausted = false;
    for m in 0..count {
        check_cancelled(cancel)?;
        let select = |exhausted: bool| {
            let mut best: Option<usize> = None;
            for i in (0..rows).filter(|&i| !picked[i]) {
                best = match best {
                    None => Some(i),
                    Some(b) => Some(if better(i, b, &residual, &typical, x_hat, cols, exhausted) { i } else { b }),
                };
            }
            best.expect("count ≤ rows leaves an unpicked environment")
        };
        let mut p = select(exhausted);
        if !exhausted && !(residual[p] > RESIDUAL_FLOOR) {
            // the picks span the rest: from here on the tie order alone
            exhausted = true;
            p = select(true);
        }
        picked[p] = true;
        out.push(p);
        if exhausted || m + 1 == count {
            continue;
        }
        let pivot = residual[p].sqrt();
        let xp = &x_hat[p * cols..(p + 1) * cols];
        let lp: Vec<f64> = l[p * count..p * count + m].to_vec();
        // row by row: each row's numbers do not depend on the others (or on their order)
        l.par_chunks_mut(count).zip(residual.par_iter_mut()).enumerate().with_min_len(64).for_each(|(i, (li, di))| {
            let k = dot(&x_hat[i * cols..(i + 1) * cols], xp).powi(zeta as i32);
            let v = (k - dot(&li[..m], &lp)) / pivot;
            li[m] = v;
            *di -= v * v;
        });
        residual[p] = 0.0;
    }
    Ok(out)
}

/// Indices of `count` rows of the row-major `rows × cols` matrix `x_hat`
/// (normalised feature vectors) chosen by greedy trace reduction of the
/// kernel (x̂·x̂')^`zeta` (`sparse.method = "greedy-trace"`; A. J. Smola,
/// B. Schölkopf, ICML 2000, "sparse greedy matrix approximation"): the same
/// pivoted Cholesky as [`pivoted_cholesky`] with another pivot rule. With R
/// the residual kernel K − K_NM K_MM⁻¹ K_MN, picking x lowers the total
/// residual variance Σ_j R_jj by Σ_j R_jx² / R_xx, and the pick is the
/// environment that lowers it most: where [`pivoted_cholesky`] takes the
/// least explained environment (an outlier first), this takes the one that
/// explains most of the others, so the set follows where the environments
/// are. Costs O(N²) memory (the residual matrix) and O(N²·(F + M)) time;
/// ties as [`pivoted_cholesky`] (the row sums of R² are summed in row
/// order, so a permutation of the rows gives the same picks up to ties at
/// rounding level).
pub fn greedy_trace(x_hat: &[f64], rows: usize, cols: usize, count: usize, zeta: u32, cancel: &Option<Arc<AtomicBool>>) -> Result<Vec<usize>> {
    if count > rows {
        return Err(Error::InvalidParameter(format!("cannot choose {count} sparse environments among {rows}")));
    }
    if x_hat.len() != rows * cols {
        return Err(Error::InvalidParameter(format!("greedy trace: {} values for a {rows} × {cols} matrix", x_hat.len())));
    }
    if zeta == 0 {
        return Err(Error::InvalidParameter("greedy trace: kernel.zeta = 0 (expected at least 1)".into()));
    }
    if x_hat.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidParameter("greedy trace: the features contain a non-finite value".into()));
    }
    if count == 0 {
        return Ok(Vec::new());
    }
    MemoryBudget::global().check(
        &format!("the residual kernel of sparse.method \"greedy-trace\" ({rows} × {rows} environments of one species; \"pivoted-cholesky\" or \"leverage\" need less)"),
        ((rows * rows + 4 * rows + cols) * 8) as f64,
    )?;
    let centroid = centroid(x_hat, rows, cols);
    let typical: Vec<f64> = x_hat.chunks(cols).map(|row| dot(row, &centroid)).collect();
    // r[i * rows + j]: the residual kernel, k(x, x) = 1 exactly for normalised rows
    let mut r = vec![0.0; rows * rows];
    r.par_chunks_mut(rows).enumerate().with_min_len(16).for_each(|(i, ri)| {
        let xi = &x_hat[i * cols..(i + 1) * cols];
        for (j, v) in ri.iter_mut().enumerate() {
            *v = if i == j { 1.0 } else { dot(xi, &x_hat[j * cols..(j + 1) * cols]).powi(zeta as i32) };
        }
    });
    let mut picked = vec![false; rows];
    let mut out = Vec::with_capacity(count);
    let mut exhausted = false;
    let mut gain = vec![0.0; rows];
    for m in 0..count {
        check_cancelled(cancel)?;
        if !exhausted {
            gain.par_iter_mut().enumerate().with_min_len(16).for_each(|(i, g)| {
                let d = r[i * rows + i];
                *g = if picked[i] || !(d > RESIDUAL_FLOOR) { f64::NEG_INFINITY } else { r[i * rows..(i + 1) * rows].iter().map(|v| v * v).sum::<f64>() / d };
            });
        }
        let select = |exhausted: bool| {
            let mut best: Option<usize> = None;
            for i in (0..rows).filter(|&i| !picked[i]) {
                best = match best {
                    None => Some(i),
                    Some(b) => Some(if better(i, b, &gain, &typical, x_hat, cols, exhausted) { i } else { b }),
                };
            }
            best.expect("count ≤ rows leaves an unpicked environment")
        };
        let mut p = select(exhausted);
        if !exhausted && gain[p] == f64::NEG_INFINITY {
            // every residual variance is at the floor: the picks span the rest
            exhausted = true;
            p = select(true);
        }
        picked[p] = true;
        out.push(p);
        if exhausted || m + 1 == count {
            continue;
        }
        let column: Vec<f64> = r[p * rows..(p + 1) * rows].to_vec();
        let pivot = column[p];
        r.par_chunks_mut(rows).enumerate().with_min_len(16).for_each(|(i, ri)| {
            let f = column[i] / pivot;
            for (v, c) in ri.iter_mut().zip(&column) {
                *v -= f * c;
            }
        });
    }
    Ok(out)
}

/// Whether environment `i` goes before `b`: the larger residual (unless
/// `exhausted`), then the larger cosine to the centroid, then the features
/// in lexicographic order (larger first).
fn better(i: usize, b: usize, residual: &[f64], typical: &[f64], x: &[f64], cols: usize, exhausted: bool) -> bool {
    if !exhausted {
        match residual[i].total_cmp(&residual[b]) {
            Ordering::Greater => return true,
            Ordering::Less => return false,
            Ordering::Equal => {}
        }
    }
    match typical[i].total_cmp(&typical[b]) {
        Ordering::Greater => return true,
        Ordering::Less => return false,
        Ordering::Equal => {}
    }
    for (a, c) in x[i * cols..(i + 1) * cols].iter().zip(&x[b * cols..(b + 1) * cols]) {
        match a.total_cmp(c) {
            Ordering::Greater => return true,
            Ordering::Less => return false,
            Ordering::Equal => {}
        }
    }
    false
}

/// The mean of the rows, each column summed over its sorted values, so that
/// the result does not depend on the order of the rows.
fn centroid(x: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut column = Vec::with_capacity(rows);
    (0..cols)
        .map(|c| {
            column.clear();
            column.extend((0..rows).map(|r| x[r * cols + c]));
            column.sort_by(f64::total_cmp);
            column.iter().sum::<f64>() / rows as f64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::random::LegacyRandomState;

    fn normalised(rows: usize, cols: usize, seed: u32) -> Vec<f64> {
        let mut rng = LegacyRandomState::new(seed);
        let mut x: Vec<f64> = (0..rows * cols).map(|_| rng.random_sample() - 0.3).collect();
        for row in x.chunks_mut(cols) {
            let n = dot(row, row).sqrt();
            row.iter_mut().for_each(|v| *v /= n);
        }
        x
    }

    /// The residual variance d(x) = k(x,x) − k_xM K_MM⁻¹ k_Mx computed
    /// directly (dense solve), for comparing with the Cholesky updates.
    fn direct_residuals(x: &[f64], rows: usize, cols: usize, zeta: u32, chosen: &[usize]) -> Vec<f64> {
        let k = |i: usize, j: usize| dot(&x[i * cols..(i + 1) * cols], &x[j * cols..(j + 1) * cols]).powi(zeta as i32);
        let m = chosen.len();
        let kmm = nalgebra::DMatrix::from_fn(m, m, |a, b| k(chosen[a], chosen[b]));
        let inv = kmm.try_inverse().unwrap();
        (0..rows)
            .map(|i| {
                let kim = nalgebra::DVector::from_fn(m, |a, _| k(i, chosen[a]));
                1.0 - kim.dot(&(&inv * &kim))
            })
            .collect()
    }

    /// Every case of the fixture's `set` picked by `select` equals the numpy
    /// transcription's picks (scripts/reference/pivoted_cholesky_numpy.py:
    /// dense solves per step, not Cholesky updates).
    fn check_fixture(set: &str, select: fn(&[f64], usize, usize, usize, u32, &Option<Arc<AtomicBool>>) -> Result<Vec<usize>>) {
        let text = include_str!("../../../../test/fixtures/models/pivoted_cholesky.json");
        let fixture: serde_json::Value = serde_json::from_str(text).unwrap();
        for case in fixture[set].as_array().unwrap() {
            let field = |name: &str| case[name].as_u64().unwrap() as usize;
            let (rows, cols, count, zeta) = (field("rows"), field("cols"), field("count"), field("zeta") as u32);
            let x: Vec<f64> = case["x"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let expected: Vec<usize> = case["expected"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
            let got = select(&x, rows, cols, count, zeta, &None).unwrap();
            assert_eq!(got, expected, "{set}: {rows}×{cols}, {count} picks, ζ {zeta}");
        }
    }

    #[test]
    fn matches_numpy_transcription() {
        check_fixture("cases", pivoted_cholesky);
    }

    #[test]
    fn greedy_trace_matches_numpy_transcription() {
        check_fixture("trace_cases", greedy_trace);
    }

    #[test]
    fn greedy_trace_permutation_and_duplicates() {
        let (rows, cols) = (80, 14);
        let x = normalised(rows, cols, 11);
        let order = LegacyRandomState::new(3).permutation(rows);
        let mut y = vec![0.0; rows * cols];
        for (new, &old) in order.iter().enumerate() {
            y[new * cols..(new + 1) * cols].copy_from_slice(&x[old * cols..(old + 1) * cols]);
        }
        for zeta in [1, 2, 4] {
            let a = greedy_trace(&x, rows, cols, 25, zeta, &None).unwrap();
            let b: Vec<usize> = greedy_trace(&y, rows, cols, 25, zeta, &None).unwrap().into_iter().map(|i| order[i]).collect();
            assert_eq!(a, b, "zeta {zeta}");
        }
        let (distinct, cols) = (6, 8);
        let base = normalised(distinct, cols, 2);
        let mut x = Vec::new();
        for _ in 0..3 {
            x.extend_from_slice(&base);
        }
        let picks = greedy_trace(&x, 3 * distinct, cols, distinct, 2, &None).unwrap();
        let mut classes: Vec<usize> = picks.iter().map(|i| i % distinct).collect();
        classes.sort();
        assert_eq!(classes, (0..distinct).collect::<Vec<_>>(), "picks {picks:?}");
        assert!(greedy_trace(&x, 18, cols, 19, 2, &None).is_err());
    }

    #[test]
    fn every_pick_has_the_largest_direct_residual() {
        let (rows, cols, zeta) = (40, 9, 3);
        let x = normalised(rows, cols, 5);
        let picks = pivoted_cholesky(&x, rows, cols, 12, zeta, &None).unwrap();
        for m in 1..picks.len() {
            let d = direct_residuals(&x, rows, cols, zeta, &picks[..m]);
            let best = (0..rows).filter(|i| !picks[..m].contains(i)).map(|i| d[i]).fold(f64::MIN, f64::max);
            assert!((d[picks[m]] - best).abs() <= 1e-10, "pick {m}: residual {} vs largest {best}", d[picks[m]]);
        }
    }

    #[test]
    fn a_permutation_of_the_rows_permutes_the_picks() {
        let (rows, cols) = (80, 14);
        let x = normalised(rows, cols, 11);
        let order = LegacyRandomState::new(3).permutation(rows);
        let mut y = vec![0.0; rows * cols];
        for (new, &old) in order.iter().enumerate() {
            y[new * cols..(new + 1) * cols].copy_from_slice(&x[old * cols..(old + 1) * cols]);
        }
        for zeta in [1, 2, 4] {
            let a = pivoted_cholesky(&x, rows, cols, 25, zeta, &None).unwrap();
            let b: Vec<usize> = pivoted_cholesky(&y, rows, cols, 25, zeta, &None).unwrap().into_iter().map(|i| order[i]).collect();
            assert_eq!(a, b, "zeta {zeta}");
        }
    }

    #[test]
    fn duplicates_are_picked_last_and_nothing_breaks() {
        // 6 distinct environments, each three times
        let (distinct, cols) = (6, 8);
        let base = normalised(distinct, cols, 2);
        let mut x = Vec::new();
        for _ in 0..3 {
            x.extend_from_slice(&base);
        }
        let rows = 3 * distinct;
        let picks = pivoted_cholesky(&x, rows, cols, distinct, 2, &None).unwrap();
        let mut classes: Vec<usize> = picks.iter().map(|i| i % distinct).collect();
        classes.sort();
        assert_eq!(classes, (0..distinct).collect::<Vec<_>>(), "picks {picks:?}");
        let all = pivoted_cholesky(&x, rows, cols, rows, 2, &None).unwrap();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(sorted, (0..rows).collect::<Vec<_>>());
    }

    #[test]
    fn first_pick_is_closest_to_the_centroid() {
        let (rows, cols) = (30, 6);
        let x = normalised(rows, cols, 9);
        let c = centroid(&x, rows, cols);
        let cos: Vec<f64> = x.chunks(cols).map(|r| dot(r, &c)).collect();
        let expected = (0..rows).max_by(|&a, &b| cos[a].total_cmp(&cos[b])).unwrap();
        assert_eq!(pivoted_cholesky(&x, rows, cols, 1, 4, &None).unwrap(), vec![expected]);
    }

    #[test]
    fn bad_input_is_an_error() {
        let x = normalised(4, 3, 1);
        assert!(pivoted_cholesky(&x, 4, 3, 5, 2, &None).unwrap_err().to_string().contains("cannot choose 5"));
        assert!(pivoted_cholesky(&x, 4, 3, 2, 0, &None).unwrap_err().to_string().contains("zeta"));
        let mut y = x.clone();
        y[2] = f64::NAN;
        assert!(pivoted_cholesky(&y, 4, 3, 2, 2, &None).unwrap_err().to_string().contains("non-finite"));
    }
}
