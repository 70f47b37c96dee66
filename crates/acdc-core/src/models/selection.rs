//! Greedy selection of samples (rows) or features (columns) of a dense
//! matrix: farthest point sampling and iterative CUR.
//!
//! Both pick, at each step, the unselected point with the largest score,
//! breaking ties towards the lowest index; "points" are the rows of `X` for
//! [`Axis::Samples`] and its columns for [`Axis::Features`]. The conventions
//! are those of scikit-matter 0.4.1, so that the same indices come out.
//!
//! **Farthest point sampling** (FPS; Eldar, Lindenbaum, Porat & Zeevi, IEEE
//! Trans. Image Process. 6, 1305 (1997), doi:10.1109/83.623193; Imbalzano et
//! al., J. Chem. Phys. 148, 241730 (2018), doi:10.1063/1.5024611). The score
//! of a point is its *squared* Euclidean distance to the closest selected
//! point, `d(i, j) = ‖x_i‖² + ‖x_j‖² − 2 x_i·x_j`; the first point (or
//! points) is given (`initialize`, default 0), and the distance reported for
//! it is +∞.
//!
//! **CUR** (Mahoney & Drineas, PNAS 106, 697 (2009),
//! doi:10.1073/pnas.0803205106; the iterative form of Imbalzano et al.). The
//! score of point i is its leverage on the top-k singular vectors of the
//! current matrix P (rows = points), `π_i = Σ_{c<k} U_ic²`. After each pick
//! j, every point is orthogonalised against it, `p ← p − (p·v) v` with
//! `v = p_j/‖p_j‖` (left unnormalised when `‖p_j‖ < 10⁻¹²`), and π is
//! recomputed every `recompute_every` picks; `recompute_every = 0` keeps the
//! first π and never orthogonalises (static leverage-score CUR).
//!
//! Two strategies compute CUR's singular vectors: [`cur`] takes a full SVD
//! of the residual (the accurate Jacobi SVD of `math::linalg`) at every
//! recomputation, any k; [`cur_power_iteration`] (k = 1, every pick) finds
//! the top singular vector by warm-started power iteration, for the
//! hundreds of picks of a GPR's sparse points from thousands of rows.
//!
//! Ties and exhausted rank. At each step the unselected point with the
//! largest score wins, the lowest index among equal scores (numpy's argmax,
//! as in scikit-matter). Where scikit-matter's pick is arbitrary (singular
//! vectors of a residual made of rounding errors, once the rank of X is used
//! up or the residual has rank < k), acdc's is defined: see [`cur`].
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;

use crate::calculators::check_cancelled;
use crate::error::{Error, Result};
use crate::math::linalg::{dot, svd, Dense};

/// Which points a selection picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// Rows of X.
    Samples,
    /// Columns of X.
    Features,
}

impl Axis {
    /// Parses "samples" / "features".
    pub fn from_name(name: &str) -> Result<Axis> {
        match name {
            "samples" => Ok(Axis::Samples),
            "features" => Ok(Axis::Features),
            other => Err(Error::InvalidParameter(format!("axis = \"{other}\" (expected \"samples\" or \"features\")"))),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Axis::Samples => "samples (rows)",
            Axis::Features => "features (columns)",
        }
    }
}

/// Selected points, in selection order, with their score when picked.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Indices along the selection axis.
    pub indices: Vec<usize>,
    /// FPS: squared distance to the previously selected points (+∞ for the
    /// first); CUR: the importance π of the point when it was picked.
    pub scores: Vec<f64>,
}

/// The points as rows: X itself, or its transpose for feature selection.
fn points(x: &Dense, axis: Axis) -> Dense {
    match axis {
        Axis::Samples => x.clone(),
        Axis::Features => x.transpose(),
    }
}

fn check_count(n: usize, available: usize, axis: Axis) -> Result<()> {
    if n == 0 || n > available {
        return Err(Error::InvalidParameter(format!("n = {n} must be between 1 and the number of {} ({available})", axis.noun())));
    }
    Ok(())
}

/// Index of the largest score among unselected points (lowest index on ties).
fn best(scores: &[f64], selected: &[bool]) -> usize {
    let mut best = usize::MAX;
    let mut value = f64::NEG_INFINITY;
    for (i, (&s, &taken)) in scores.iter().zip(selected).enumerate() {
        if !taken && (best == usize::MAX || s > value) {
            best = i;
            value = s;
        }
    }
    best
}

/// Farthest point sampling of `n` points, starting from `initialize` (all
/// preselected, in order; counted in `n`).
pub fn farthest_point_sampling(x: &Dense, n: usize, initialize: &[usize], axis: Axis) -> Result<Selection> {
    let p = points(x, axis);
    let count = p.rows;
    check_count(n, count, axis)?;
    if initialize.is_empty() {
        return Err(Error::InvalidParameter("initialize is empty (give at least one starting index)".into()));
    }
    if initialize.len() > n {
        return Err(Error::InvalidParameter(format!("initialize has {} indices, more than n = {n}", initialize.len())));
    }
    let mut selected = vec![false; count];
    for (k, &i) in initialize.iter().enumerate() {
        if i >= count {
            return Err(Error::InvalidParameter(format!("initialize[{k}] = {i} is out of range (there are {count} {})", axis.noun())));
        }
        if selected[i] {
            return Err(Error::InvalidParameter(format!("initialize[{k}] = {i} is repeated")));
        }
        selected[i] = true;
    }
    selected.fill(false);

    let norms: Vec<f64> = (0..count).map(|i| dot(p.row(i), p.row(i))).collect();
    let mut hausdorff = vec![f64::INFINITY; count];
    let mut sel = Selection { indices: Vec::with_capacity(n), scores: Vec::with_capacity(n) };
    let pick = |j: usize, sel: &mut Selection, hausdorff: &mut Vec<f64>, selected: &mut Vec<bool>| {
        sel.indices.push(j);
        sel.scores.push(hausdorff[j]);
        selected[j] = true;
        let xj = p.row(j);
        let nj = norms[j];
        hausdorff.par_iter_mut().enumerate().with_min_len(256).for_each(|(i, h)| {
            let d = norms[i] + nj - 2.0 * dot(p.row(i), xj);
            if d < *h {
                *h = d;
            }
        });
    };
    for &i in initialize {
        pick(i, &mut sel, &mut hausdorff, &mut selected);
    }
    while sel.indices.len() < n {
        let j = best(&hausdorff, &selected);
        pick(j, &mut sel, &mut hausdorff, &mut selected);
    }
    Ok(sel)
}

/// Below this norm a selected point is not normalised before
/// orthogonalising against it (scikit-matter's tolerance).
const CUR_TOLERANCE: f64 = 1e-12;

/// π_i = Σ_c U_ic² over the top `k` singular vectors of the rows of `p`
/// whose singular value exceeds `floor` (the rounding level of the original
/// matrix): a direction at or below it is made of rounding errors, and its
/// singular vector would rank the points at random. With no direction left
/// (the residual has vanished: the rank of X is exhausted) every π is 0, and
/// the pick goes to the lowest unselected index. U's columns are formed as
/// `P v_c / s_c`, so that identical points get bit-identical scores (and ties
/// go to the lowest index).
fn leverage(p: &Dense, k: usize, floor: f64) -> Result<Vec<f64>> {
    let d = svd(p.to_matrix(), "the CUR matrix")?;
    let mut pi = vec![0.0; p.rows];
    for c in 0..k.min(d.s.len()) {
        let s = d.s[c];
        if !(s > floor) {
            break;
        }
        let v: Vec<f64> = d.vt.row(c).iter().copied().collect();
        for (i, value) in pi.iter_mut().enumerate() {
            let u = dot(p.row(i), &v) / s;
            *value += u * u;
        }
    }
    Ok(pi)
}

/// Iterative CUR selection of `n` points using the top `k` singular vectors,
/// recomputing the importance every `recompute_every` picks (0: never, and
/// no orthogonalisation).
///
/// Never fails on a finite matrix with valid `n` and `k`. Where
/// scikit-matter's choice is arbitrary, acdc's is defined: singular vectors
/// whose singular value is at most `max(rows, cols)·ε·‖X‖₂` are left out of
/// π (scikit-matter's ARPACK SVD returns vectors of rounding noise there, and
/// raises "ARPACK error -9" when the residual is exactly zero), so once the
/// numerical rank of X is used up every remaining π is 0 and the picks go to
/// the lowest unselected indices.
pub fn cur(x: &Dense, n: usize, k: usize, recompute_every: usize, axis: Axis) -> Result<Selection> {
    let mut p = points(x, axis);
    check_count(n, p.rows, axis)?;
    let rank_max = p.rows.min(p.cols);
    if k == 0 || k > rank_max {
        return Err(Error::InvalidParameter(format!(
            "k = {k} must be between 1 and min(rows, columns) = {rank_max} (the number of singular vectors)"
        )));
    }
    let norm = svd(p.to_matrix(), "the CUR matrix")?.s[0];
    let floor = norm * f64::EPSILON * p.rows.max(p.cols) as f64;
    let mut pi = leverage(&p, k, floor)?;
    let mut selected = vec![false; p.rows];
    let mut indices = Vec::with_capacity(n);
    let mut scores = Vec::with_capacity(n);
    while indices.len() < n {
        let j = best(&pi, &selected);
        indices.push(j);
        scores.push(pi[j]);
        selected[j] = true;
        if recompute_every != 0 {
            let mut v = p.row(j).to_vec();
            let norm = dot(&v, &v).sqrt();
            if norm >= CUR_TOLERANCE {
                v.iter_mut().for_each(|x| *x /= norm);
            }
            let cols = p.cols;
            p.data.par_chunks_mut(cols).with_min_len(64).for_each(|row| {
                let c = dot(row, &v);
                row.iter_mut().zip(&v).for_each(|(r, vi)| *r -= c * vi);
            });
            if indices.len() % recompute_every == 0 && indices.len() < n {
                pi = leverage(&p, k, floor)?;
            }
        }
        pi[j] = 0.0;
    }
    Ok(Selection { indices, scores })
}

/// Iterative CUR with k = 1 and `recompute_every = 1` on the rows of `x`,
/// for many picks from a large matrix (the sparse points of a GPR): the top
/// right singular vector v of the residual comes from power iteration on the
/// residual's Gram matrix (warm-started from the previous v, at most 200
/// steps, to 10⁻¹⁰) instead of a full SVD per pick, O(rows·cols + cols²·steps)
/// per pick. Each pick takes the row with the largest (x_i·v)² (lowest index
/// on ties), then projects the picked row's direction out of every row, as
/// [`cur`] does; with distinct leverages both give the same indices. Scores
/// are π_i = (x_i·v)²/Σ_j (x_j·v)². A vanished residual leaves every score at
/// 0 and the lowest unselected index is taken, as in [`cur`].
///
/// `cancel` is polled once per pick.
pub fn cur_power_iteration(x: &Dense, count: usize, cancel: &Option<Arc<AtomicBool>>) -> Result<Selection> {
    let (rows, nf) = (x.rows, x.cols);
    check_count(count, rows, Axis::Samples)?;
    let mut r = DMatrix::from_row_slice(rows, nf, &x.data);
    let mut gram = r.tr_mul(&r);
    let mut v = DVector::from_element(nf, 1.0 / (nf as f64).sqrt());
    let mut selected = vec![false; rows];
    let mut sel = Selection { indices: Vec::with_capacity(count), scores: Vec::with_capacity(count) };
    while sel.indices.len() < count {
        check_cancelled(cancel)?;
        for _ in 0..200 {
            let w = &gram * &v;
            let norm = w.norm();
            if !(norm > 0.0) {
                break;
            }
            let w = w / norm;
            let change = (&w - &v).norm();
            v = w;
            if change < 1e-10 {
                break;
            }
        }
        let scores = &r * &v;
        let mut best = usize::MAX;
        let mut value = f64::NEG_INFINITY;
        for (i, &sc) in scores.iter().enumerate() {
            if !selected[i] && (best == usize::MAX || sc * sc > value) {
                best = i;
                value = sc * sc;
            }
        }
        let total = scores.norm_squared();
        selected[best] = true;
        sel.indices.push(best);
        sel.scores.push(if total > 0.0 { value / total } else { 0.0 });
        let mut u = r.row(best).transpose();
        let norm = u.norm();
        if norm >= CUR_TOLERANCE {
            u /= norm;
        }
        let ru = &r * &u;
        r -= &ru * u.transpose();
        let gu = &gram * &u;
        let ugu = u.dot(&gu);
        gram -= &gu * u.transpose() + &u * gu.transpose() - &u * u.transpose() * ugu;
        v -= &u * v.dot(&u);
        if v.norm() < 1e-8 {
            v = DVector::from_element(nf, 1.0 / (nf as f64).sqrt());
        } else {
            let n = v.norm();
            v /= n;
        }
    }
    Ok(sel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Dense {
        // points on a line at 0, 1, 3, 7: FPS from 0 picks 7, then 3 (d² 9
        // vs 16 from 7 → 3 is at 9 from 0 and 16 from 7: min 9), then 1
        Dense::new("X", vec![0.0, 0.0, 1.0, 0.0, 3.0, 0.0, 7.0, 0.0], 4, 2).unwrap()
    }

    #[test]
    fn fps_by_hand() {
        let s = farthest_point_sampling(&grid(), 4, &[0], Axis::Samples).unwrap();
        assert_eq!(s.indices, vec![0, 3, 2, 1]);
        assert_eq!(s.scores, vec![f64::INFINITY, 49.0, 9.0, 1.0]);
        // the same points as columns
        let s = farthest_point_sampling(&grid().transpose(), 3, &[3], Axis::Features).unwrap();
        assert_eq!(s.indices, vec![3, 0, 2]);
    }

    #[test]
    fn fps_ties_go_to_lowest_index() {
        let x = Dense::new("X", vec![0.0, 1.0, -1.0, 1.0, -1.0], 5, 1).unwrap();
        let s = farthest_point_sampling(&x, 3, &[0], Axis::Samples).unwrap();
        assert_eq!(s.indices, vec![0, 1, 2]);
    }

    #[test]
    fn fps_rejects_bad_arguments() {
        let e = farthest_point_sampling(&grid(), 5, &[0], Axis::Samples).unwrap_err().to_string();
        assert!(e.contains("n = 5") && e.contains("(4)"), "{e}");
        let e = farthest_point_sampling(&grid(), 2, &[4], Axis::Samples).unwrap_err().to_string();
        assert!(e.contains("initialize[0] = 4"), "{e}");
        let e = farthest_point_sampling(&grid(), 3, &[1, 1], Axis::Samples).unwrap_err().to_string();
        assert!(e.contains("initialize[1] = 1 is repeated"), "{e}");
    }

    #[test]
    fn cur_picks_dominant_directions() {
        // rows 0 and 2 dominate; 1 is small, 3 duplicates 0
        let x = Dense::new("X", vec![5.0, 0.0, 0.0, 0.1, 0.1, 0.2, 0.0, 3.0, 0.0, 5.0, 0.0, 0.0], 4, 3).unwrap();
        let s = cur(&x, 2, 1, 1, Axis::Samples).unwrap();
        assert_eq!(s.indices, vec![0, 2]);
        // the duplicate is worthless once row 0 is selected
        let s = cur(&x, 3, 1, 1, Axis::Samples).unwrap();
        assert_eq!(s.indices[2], 1);
        let e = cur(&x, 2, 4, 1, Axis::Samples).unwrap_err().to_string();
        assert!(e.contains("k = 4"), "{e}");
    }

    #[test]
    fn power_iteration_matches_svd_cur() {
        // distinct leverages: the same picks as the SVD-based CUR
        let mut rng = crate::math::random::LegacyRandomState::new(7);
        let (rows, cols) = (40, 6);
        let data: Vec<f64> = (0..rows * cols).map(|k| rng.gauss() * (1.0 + (k % cols) as f64)).collect();
        let x = Dense { data, rows, cols };
        let want = cur(&x, 6, 1, 1, Axis::Samples).unwrap().indices;
        assert_eq!(cur_power_iteration(&x, 6, &None).unwrap().indices, want);
    }

    #[test]
    fn exhausted_rank_goes_to_the_lowest_index() {
        // rows e2-heavy first: 3e2 (row 3), then 2e1 (row 2); the residual
        // is then exactly zero (scikit-matter raises "ARPACK error -9"), and
        // the remaining picks are the lowest unselected indices, score 0
        let x = Dense::new("X", vec![1., 0., 0., 0., 1., 0., 2., 0., 0., 0., 3., 0., 0., 0., 0., 1., 0., 0., 0., 0., 0.], 7, 3).unwrap();
        let s = cur(&x, 6, 1, 1, Axis::Samples).unwrap();
        assert_eq!(s.indices, vec![3, 2, 0, 1, 4, 5]);
        assert_eq!(&s.scores[2..], &[0.0; 4]);
        let p = cur_power_iteration(&x, 6, &None).unwrap();
        assert_eq!(p.indices, vec![3, 2, 0, 1, 4, 5]);
        // an all-zero matrix, both axes and both strategies
        let zero = Dense::new("X", vec![0.0; 12], 4, 3).unwrap();
        assert_eq!(cur(&zero, 4, 2, 1, Axis::Samples).unwrap().indices, vec![0, 1, 2, 3]);
        assert_eq!(cur(&zero, 3, 3, 0, Axis::Features).unwrap().indices, vec![0, 1, 2]);
        assert_eq!(cur_power_iteration(&zero, 4, &None).unwrap().indices, vec![0, 1, 2, 3]);
    }

    #[test]
    fn tiny_matrices_never_throw() {
        // 1 × 5 (scikit-matter refuses one sample): columns are points of
        // dimension 1, the largest |x| first, then the lowest indices
        let x = Dense::new("X", vec![0.5, -2.0, 1.0, 2.0, 0.0], 1, 5).unwrap();
        assert_eq!(cur(&x, 5, 1, 1, Axis::Features).unwrap().indices, vec![1, 0, 2, 3, 4]);
        assert_eq!(cur(&x, 1, 1, 1, Axis::Samples).unwrap().indices, vec![0]);
        // FPS from 0.5: −2 (d² 6.25), then 2 (2.25), then 1 and 0 tie at 0.25
        assert_eq!(farthest_point_sampling(&x, 5, &[0], Axis::Features).unwrap().indices, vec![0, 1, 3, 2, 4]);
        // k = min(rows, cols) (scikit-matter's ARPACK needs k < min): all
        // singular vectors, π_i = 1 (to rounding) for both rows
        let x = Dense::new("X", vec![2.0, 1.0, -1.0, 3.0], 2, 2).unwrap();
        let mut s = cur(&x, 2, 2, 1, Axis::Samples).unwrap().indices;
        s.sort_unstable();
        assert_eq!(s, vec![0, 1]);
        let one = Dense::new("X", vec![3.0], 1, 1).unwrap();
        assert_eq!(cur(&one, 1, 1, 1, Axis::Samples).unwrap().indices, vec![0]);
    }

    /// Step-by-step scikit-matter 0.4.1 references on hard matrices
    /// (scripts/reference/skmatter_selection_hard.py): the indices must be
    /// equal on every step whose pick does not depend on rounding
    /// (`determined`); at the first step that does, acdc's pick must tie
    /// scikit-matter's in scikit-matter's own scores (within the gap that
    /// defines "determined"), unless scikit-matter chose among singular
    /// vectors of rounding noise (residual ≤ minResidual or σ_k/σ_1 ≤ minSk),
    /// where any unselected index is as good. FPS distances on the
    /// determined steps agree to 1e-12 × the largest squared norm.
    #[test]
    fn hard_matrices_match_skmatter() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test/fixtures/skmatter/selection_hard.json");
        let text = std::fs::read_to_string(path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["versions"]["skmatter"], "0.4.1");
        let th = &json["thresholds"];
        let (cur_gap, fps_gap) = (th["curGap"].as_f64().unwrap(), th["fpsGap"].as_f64().unwrap());
        let (min_sk, min_residual) = (th["minSk"].as_f64().unwrap(), th["minResidual"].as_f64().unwrap());
        let num = |v: &serde_json::Value| match v.as_str() {
            Some("inf") => f64::INFINITY,
            Some("-inf") => f64::NEG_INFINITY,
            _ => v.as_f64().unwrap(),
        };
        let ints = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as usize).collect::<Vec<_>>();
        let matrix = |name: &serde_json::Value| {
            let v = &json["matrices"][name.as_str().unwrap()];
            let shape = ints(&v["shape"]);
            Dense::new("X", v["data"].as_array().unwrap().iter().map(num).collect(), shape[0], shape[1]).unwrap()
        };
        let (mut checked, mut total, mut ties) = (0, 0, 0);
        for case in json["cur"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let x = matrix(&case["X"]);
            let axis = Axis::from_name(case["axis"].as_str().unwrap()).unwrap();
            let n = case["n"].as_u64().unwrap() as usize;
            let k = case["k"].as_u64().unwrap() as usize;
            let every = case["recomputeEvery"].as_u64().unwrap() as usize;
            let got = cur(&x, n, k, every, axis).unwrap_or_else(|e| panic!("{name}: {e}")).indices;
            let want = ints(&case["indices"]);
            let determined = case["determined"].as_u64().unwrap() as usize;
            let mut distinct = got.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), n, "{name}: {got:?}");
            assert_eq!(got[..determined], want[..determined], "{name}: the first {determined} picks");
            checked += determined;
            total += n;
            if determined < n && got[determined] != want[determined] {
                let next = &case["next"];
                let noise = num(&next["residual"]) <= min_residual || num(&next["sk"]) <= min_sk;
                let scores: Vec<f64> = next["scores"].as_array().unwrap().iter().map(num).collect();
                let (a, b) = (scores[got[determined]], scores[want[determined]]);
                assert!(noise || (a - b).abs() <= cur_gap, "{name}: step {determined} picks {} (π {a}) where skmatter picks {} (π {b})", got[determined], want[determined]);
                ties += 1;
            }
        }
        for case in json["fps"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let x = matrix(&case["X"]);
            let axis = Axis::from_name(case["axis"].as_str().unwrap()).unwrap();
            let n = case["n"].as_u64().unwrap() as usize;
            let init = case["initialize"].as_u64().unwrap() as usize;
            let got = farthest_point_sampling(&x, n, &[init], axis).unwrap_or_else(|e| panic!("{name}: {e}"));
            let want = ints(&case["indices"]);
            let determined = case["determined"].as_u64().unwrap() as usize;
            assert_eq!(got.indices[..determined], want[..determined], "{name}: the first {determined} picks");
            let p = points(&x, axis);
            let scale = (0..p.rows).map(|i| dot(p.row(i), p.row(i))).fold(0.0f64, f64::max);
            let distances: Vec<f64> = case["distances"].as_array().unwrap().iter().map(num).collect();
            for t in 0..determined {
                let (a, b) = (got.scores[t], distances[t]);
                assert!(a == b || (a - b).abs() <= 1e-12 * scale, "{name}: distance {t}: {a} vs {b}");
            }
            checked += determined;
            total += n;
            if determined < n && got.indices[determined] != want[determined] {
                let scores: Vec<f64> = case["next"]["scores"].as_array().unwrap().iter().map(num).collect();
                let (a, b) = (scores[got.indices[determined]], scores[want[determined]]);
                assert!((a - b).abs() <= fps_gap * scale, "{name}: step {determined} picks {} (d {a}) where skmatter picks {} (d {b})", got.indices[determined], want[determined]);
                ties += 1;
            }
        }
        eprintln!("skmatter hard cases: {checked} of {total} picks determined and equal, {ties} first undetermined picks differ (ties or noise)");
    }
}
