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
use rayon::prelude::*;

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

/// π_i = Σ_{c<k} U_ic² for the rows of `p`. U's columns are formed as
/// `P v_c / s_c`, so that identical points get bit-identical scores (and ties
/// go to the lowest index); a vanishing singular value falls back on the
/// SVD's own U.
fn leverage(p: &Dense, k: usize) -> Result<Vec<f64>> {
    let d = svd(p.to_matrix(), "the CUR matrix")?;
    let smax = d.s[0];
    let mut pi = vec![0.0; p.rows];
    for c in 0..k.min(d.s.len()) {
        let s = d.s[c];
        let v: Vec<f64> = d.vt.row(c).iter().copied().collect();
        let stable = s > smax * f64::EPSILON * (p.rows.max(p.cols) as f64) && s > 0.0;
        for (i, value) in pi.iter_mut().enumerate() {
            let u = if stable { dot(p.row(i), &v) / s } else { d.u[(i, c)] };
            *value += u * u;
        }
    }
    Ok(pi)
}

/// Iterative CUR selection of `n` points using the top `k` singular vectors,
/// recomputing the importance every `recompute_every` picks (0: never, and
/// no orthogonalisation).
pub fn cur(x: &Dense, n: usize, k: usize, recompute_every: usize, axis: Axis) -> Result<Selection> {
    let mut p = points(x, axis);
    check_count(n, p.rows, axis)?;
    let rank_max = p.rows.min(p.cols);
    if k == 0 || k > rank_max {
        return Err(Error::InvalidParameter(format!(
            "k = {k} must be between 1 and min(rows, columns) = {rank_max} (the number of singular vectors)"
        )));
    }
    let mut pi = leverage(&p, k)?;
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
                pi = leverage(&p, k)?;
            }
        }
        pi[j] = 0.0;
    }
    Ok(Selection { indices, scores })
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
}
