//! The 2-body term of a sum-of-kernels potential, in the form of GAP's
//! `distance_2b` descriptor (docs/MODELS.md, "Sums of kernels").
//!
//! Each ordered pair of atoms (i, j), j ≠ i or a periodic image of i, closer
//! than the cutoff is one environment, described by its distance r and
//! belonging to the species pair (Z_a, Z_b), Z_a ≤ Z_b: as in GAP, every
//! unordered pair counts twice (checked against quippy 0.10.3, whose
//! prediction this form reproduces to 2e-10, docs/MODELS.md). Two
//! environments of the same species pair have the covariance
//!
//! k(r, r') = f_c(r) f_c(r') δ² exp(−(r − r')² / (2θ²)),
//!
//! with f_c = 1 below `cutoff − transition`, ½(1 + cos(π (r − cutoff +
//! transition) / transition)) in the transition and 0 beyond the cutoff
//! (GAP's `coordination_function`, its `cutoff_transition_width`). Pairs of
//! different species pairs do not covary. The term's energy is
//!
//! E_2b(A) = 2 Σ_{unordered pairs p of A} Σ_{m ∈ M(species pair of p)} α_m k(r_p, r_m),
//!
//! (GAP also multiplies by f_c(r_m) of the sparse point, as here.) The code
//! walks a half neighbour list and doubles every pair's contribution.
//! with M the sparse distances of each species pair: `count` points chosen
//! uniformly over the range of the training distances (GAP's
//! `sparse_method=uniform`, see [`uniform_points`]).
use nalgebra::DMatrix;

use crate::error::{Error, Result};
use crate::neighbors::NeighborList;
use crate::system::System;

/// Every unordered pair is two environments (i, j) and (j, i), as in GAP.
const ORDERED: f64 = 2.0;

/// Settings of the 2-body term given to the fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairOptions {
    /// Cutoff radius, Å.
    pub cutoff: f64,
    /// Width of the cosine transition below the cutoff, Å (GAP's default 0.5).
    pub transition: f64,
    /// Length scale θ of the squared-exponential kernel, Å.
    pub theta: f64,
    /// Kernel scale δ, eV.
    pub delta: f64,
    /// Sparse distances per species pair.
    pub count: usize,
    /// Jitter of this term's K_MM, relative to its δ² (None: the SOAP
    /// term's relative jitter). GAP's `sparse_jitter` is absolute and the
    /// same for every descriptor: matching it takes sparse_jitter/δ² per term.
    pub jitter: Option<f64>,
}

impl PairOptions {
    /// Checks every field, naming the bad one.
    pub fn check(&self) -> Result<()> {
        let positive = |name: &str, v: f64| -> Result<()> {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::InvalidParameter(format!("distance_2b.{name} = {v} (expected a positive number)")));
            }
            Ok(())
        };
        positive("cutoff", self.cutoff)?;
        positive("theta", self.theta)?;
        positive("delta", self.delta)?;
        if !(self.transition.is_finite() && self.transition >= 0.0 && self.transition <= self.cutoff) {
            return Err(Error::InvalidParameter(format!(
                "distance_2b.transition = {} (expected a number between 0 and the cutoff {}, Å)",
                self.transition, self.cutoff
            )));
        }
        if self.count == 0 {
            return Err(Error::InvalidParameter("distance_2b.sparse.count = 0 (expected at least 1 sparse distance per species pair)".into()));
        }
        if let Some(j) = self.jitter {
            if !(j.is_finite() && j >= 0.0) {
                return Err(Error::InvalidParameter(format!("distance_2b.jitter = {j} (expected a finite number ≥ 0, relative to δ²)")));
            }
        }
        if self.count > 100_000 {
            return Err(Error::InvalidParameter(format!("distance_2b.sparse.count = {} (expected at most 100000)", self.count)));
        }
        Ok(())
    }
}

/// A fitted 2-body term: its settings and sparse distances.
#[derive(Debug, Clone, PartialEq)]
pub struct PairTerm {
    /// Cutoff radius, Å.
    pub cutoff: f64,
    /// Width of the cosine transition, Å.
    pub transition: f64,
    /// Kernel length scale θ, Å.
    pub theta: f64,
    /// Kernel scale δ, eV.
    pub delta: f64,
    /// Species pairs (Z_a ≤ Z_b), sorted.
    pub pairs: Vec<(i32, i32)>,
    /// Sparse distances of each species pair, Å.
    pub sparse: Vec<Vec<f64>>,
    /// Start of each species pair's parameters within the term.
    offsets: Vec<usize>,
}

/// One pair of a structure within the cutoff.
#[derive(Debug, Clone, Copy)]
pub struct PairEnv {
    /// First atom.
    pub i: usize,
    /// Second atom (an image of it).
    pub j: usize,
    /// Index of the species pair in [`PairTerm::pairs`].
    pub kind: usize,
    /// Distance, Å.
    pub r: f64,
    /// x_j + S·H − x_i, Å.
    pub vector: [f64; 3],
}

/// GAP's cosine cutoff and its derivative.
fn cutoff_function(r: f64, cutoff: f64, transition: f64) -> (f64, f64) {
    if r >= cutoff {
        (0.0, 0.0)
    } else if r <= cutoff - transition || transition == 0.0 {
        (1.0, 0.0)
    } else {
        let t = std::f64::consts::PI * (r - cutoff + transition) / transition;
        (0.5 * (1.0 + t.cos()), -0.5 * std::f64::consts::PI / transition * t.sin())
    }
}

/// Species pairs (a ≤ b) of a species list.
pub fn species_pairs(species: &[i32]) -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    for (k, &a) in species.iter().enumerate() {
        for &b in &species[k..] {
            out.push((a, b));
        }
    }
    out
}

/// `count` sparse distances spread uniformly over the training distances
/// `r` of one species pair (GAP's `sparse_method=uniform`): the range
/// [min, max] is cut into `count` equal bins and each bin contributes the
/// training distance nearest its centre; a distance picked twice (a bin
/// centre in a gap of the distribution) is kept once, so fewer than
/// `count` points can come back. Empty when `r` is.
pub fn uniform_points(r: &[f64], count: usize) -> Vec<f64> {
    if r.is_empty() {
        return Vec::new();
    }
    let mut sorted = r.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (lo, hi) = (sorted[0], sorted[sorted.len() - 1]);
    let width = (hi - lo) / count as f64;
    let mut out: Vec<f64> = Vec::with_capacity(count);
    for k in 0..count {
        let centre = lo + (k as f64 + 0.5) * width;
        let at = sorted.partition_point(|&v| v < centre);
        let mut best = sorted[at.min(sorted.len() - 1)];
        if at > 0 && (centre - sorted[at - 1]).abs() <= (best - centre).abs() {
            best = sorted[at - 1];
        }
        if out.last() != Some(&best) {
            out.push(best);
        }
    }
    out
}

impl PairTerm {
    /// A term from its settings and sparse distances (checked).
    pub fn new(cutoff: f64, transition: f64, theta: f64, delta: f64, pairs: Vec<(i32, i32)>, sparse: Vec<Vec<f64>>) -> Result<PairTerm> {
        PairOptions { cutoff, transition, theta, delta, count: 1, jitter: None }.check()?;
        if pairs.len() != sparse.len() {
            return Err(Error::InvalidParameter(format!("distance_2b: {} species pairs but {} sparse sets", pairs.len(), sparse.len())));
        }
        if pairs.windows(2).any(|w| w[0] >= w[1]) || pairs.iter().any(|&(a, b)| a > b) {
            return Err(Error::InvalidParameter("distance_2b: species pairs are not sorted (a ≤ b) and unique".into()));
        }
        let mut offsets = vec![0];
        for (k, s) in sparse.iter().enumerate() {
            if let Some(r) = s.iter().find(|r| !(r.is_finite() && **r >= 0.0)) {
                return Err(Error::InvalidParameter(format!("distance_2b: sparse distance {r} of species pair {:?} is not a distance", pairs[k])));
            }
            offsets.push(offsets[k] + s.len());
        }
        Ok(PairTerm { cutoff, transition, theta, delta, pairs, sparse, offsets })
    }

    /// Number of parameters (sparse distances over all species pairs).
    pub fn n_params(&self) -> usize {
        *self.offsets.last().unwrap_or(&0)
    }

    /// Start of species pair `k`'s parameters within the term.
    pub fn offset(&self, k: usize) -> usize {
        self.offsets[k]
    }

    /// The pairs of `system` within the cutoff whose species pair the term
    /// knows (a pair of an unknown species pair is an error).
    pub fn environments(&self, system: &System) -> Result<Vec<PairEnv>> {
        let list = NeighborList::new(self.cutoff, false)?.compute(system)?;
        let mut out = Vec::with_capacity(list.len());
        for p in 0..list.len() {
            let (i, j) = (list.i[p] as usize, list.j[p] as usize);
            let (a, b) = (system.types[i], system.types[j]);
            let key = if a <= b { (a, b) } else { (b, a) };
            let kind = self.pairs.binary_search(&key).map_err(|_| {
                Error::InvalidParameter(format!("distance_2b: the species pair ({}, {}) is not in the model (it knows {:?})", key.0, key.1, self.pairs))
            })?;
            out.push(PairEnv { i, j, kind, r: list.distances[p], vector: list.vectors[p] });
        }
        Ok(out)
    }

    /// 2 k(r, r_m) and 2 ∂k/∂r (the two ordered pairs of one unordered
    /// pair) for every sparse distance m of species pair `kind`.
    fn kernel_row(&self, kind: usize, r: f64) -> (Vec<f64>, Vec<f64>) {
        let (fc, dfc) = cutoff_function(r, self.cutoff, self.transition);
        let d2 = self.delta * self.delta;
        let t2 = self.theta * self.theta;
        let mut k = Vec::with_capacity(self.sparse[kind].len());
        let mut dk = Vec::with_capacity(self.sparse[kind].len());
        for &rm in &self.sparse[kind] {
            let (fm, _) = cutoff_function(rm, self.cutoff, self.transition);
            let e = d2 * fm * (-(r - rm) * (r - rm) / (2.0 * t2)).exp();
            k.push(ORDERED * fc * e);
            dk.push(ORDERED * (dfc - fc * (r - rm) / t2) * e);
        }
        (k, dk)
    }

    /// The covariance between two environments of the same species pair
    /// (one ordered pair each).
    pub fn kernel(&self, r: f64, s: f64) -> f64 {
        let (f, _) = cutoff_function(r, self.cutoff, self.transition);
        let (g, _) = cutoff_function(s, self.cutoff, self.transition);
        f * g * self.delta * self.delta * (-(r - s) * (r - s) / (2.0 * self.theta * self.theta)).exp()
    }

    /// Adds the term's derivatives with respect to its parameters to the
    /// unweighted rows of one structure: `energy` (n_params), `forces`
    /// (3N × n_params, −∂/∂r_j, absent when not wanted) and `virial`
    /// (9 × n_params, ∂/∂ε_ab), each row `stride` wide with the term's
    /// columns starting at `column`.
    pub fn add_rows(&self, envs: &[PairEnv], stride: usize, column: usize, energy: &mut [f64], mut forces: Option<&mut [f64]>, mut virial: Option<&mut [f64]>) {
        for e in envs {
            let (k, dk) = self.kernel_row(e.kind, e.r);
            let o = column + self.offsets[e.kind];
            for (m, v) in k.iter().enumerate() {
                energy[o + m] += v;
            }
            let u = e.vector.map(|v| v / e.r);
            if let Some(f) = forces.as_deref_mut() {
                for x in 0..3 {
                    for (m, d) in dk.iter().enumerate() {
                        // E depends on r_j − r_i: −∂/∂r_j = −dk u, −∂/∂r_i = +dk u
                        f[(3 * e.j + x) * stride + o + m] -= d * u[x];
                        f[(3 * e.i + x) * stride + o + m] += d * u[x];
                    }
                }
            }
            if let Some(w) = virial.as_deref_mut() {
                for a in 0..3 {
                    for b in 0..3 {
                        let g = u[a] * e.vector[b];
                        for (m, d) in dk.iter().enumerate() {
                            w[(3 * a + b) * stride + o + m] += d * g;
                        }
                    }
                }
            }
        }
    }

    /// The term's energy, forces (−∂E/∂r, 3N) and virial (∂E/∂ε, 9,
    /// row-major) for weights `alpha` (n_params).
    pub fn energy_forces_virial(&self, envs: &[PairEnv], n_atoms: usize, alpha: &[f64], forces: bool) -> (f64, Vec<f64>, [f64; 9]) {
        let mut energy = 0.0;
        let mut f = vec![0.0; if forces { 3 * n_atoms } else { 0 }];
        let mut virial = [0.0; 9];
        for e in envs {
            let (k, dk) = self.kernel_row(e.kind, e.r);
            let w = &alpha[self.offsets[e.kind]..self.offsets[e.kind + 1]];
            energy += crate::math::linalg::dot(&k, w);
            let de = crate::math::linalg::dot(&dk, w);
            let u = e.vector.map(|v| v / e.r);
            if forces {
                for x in 0..3 {
                    f[3 * e.j + x] -= de * u[x];
                    f[3 * e.i + x] += de * u[x];
                }
            }
            for a in 0..3 {
                for b in 0..3 {
                    virial[3 * a + b] += de * u[a] * e.vector[b];
                }
            }
        }
        (energy, f, virial)
    }

    /// k*_m = 2 Σ_p k(r_p, r_m) (added into `phi` at `column`) and
    /// k** = 4 Σ_{p,q} k(r_p, r_q) over unordered pairs p, q of the same
    /// species pair (each stands for two environments).
    pub fn variance_parts(&self, envs: &[PairEnv], phi: &mut [f64], column: usize) -> f64 {
        let mut kss = 0.0;
        for e in envs {
            let (k, _) = self.kernel_row(e.kind, e.r);
            let o = column + self.offsets[e.kind];
            for (m, v) in k.iter().enumerate() {
                phi[o + m] += v;
            }
            for q in envs {
                if q.kind == e.kind {
                    kss += ORDERED * ORDERED * self.kernel(e.r, q.r);
                }
            }
        }
        kss
    }

    /// ∂²k(r, s)/∂r∂s: the covariance of the derivatives of one species
    /// pair's pair energy at distances r and s (eV²/Å²).
    fn kernel_mixed_derivative(&self, r: f64, s: f64) -> f64 {
        let (f, df) = cutoff_function(r, self.cutoff, self.transition);
        let (g, dg) = cutoff_function(s, self.cutoff, self.transition);
        let t2 = self.theta * self.theta;
        let d = r - s;
        let e = self.delta * self.delta * (-d * d / (2.0 * t2)).exp();
        // ∂E/∂r = −E d/θ², ∂E/∂s = E d/θ², ∂²E/∂r∂s = E (1/θ² − d²/θ⁴)
        e * (df * dg + df * g * d / t2 - f * dg * d / t2 + f * g * (1.0 / t2 - d * d / (t2 * t2)))
    }

    /// The prior variance of every force component of one structure under
    /// this term alone (eV²/Å², 3N in the order of the positions: atom-major,
    /// x, y, z). With E_2b = Σ_p 2 ε(r_p) over the unordered pairs p of
    /// `envs` (ε the pair energy of p's species pair, a Gaussian process of
    /// covariance k), F_aα = −Σ_p 2 ε'(r_p) ∂r_p/∂r_aα and
    ///
    ///   k**_F(a, α) = 4 Σ_{p, q same species pair} s_p s_q ∂²k(r_p, r_q)/∂r∂s,
    ///
    /// s_p = ∂r_p/∂r_aα = u_α (a the pair's second atom), −u_α (its first),
    /// 0 when a is neither or both (a pair with its own periodic image).
    /// The terms are independent processes, so a sum-of-kernels model's
    /// force prior is the sum of its terms' (`models::force_prior` the SOAP
    /// one's).
    pub fn force_prior_variance(&self, envs: &[PairEnv], n_atoms: usize) -> Vec<f64> {
        // for each atom, (pair, sign) of the pairs whose distance moves with it
        let mut moving: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n_atoms];
        for (p, e) in envs.iter().enumerate() {
            if e.i != e.j && e.i < n_atoms && e.j < n_atoms {
                moving[e.j].push((p, 1.0));
                moving[e.i].push((p, -1.0));
            }
        }
        let mut out = vec![0.0; 3 * n_atoms];
        for (a, pairs) in moving.iter().enumerate() {
            let mut sum = [0.0; 3];
            for (x, &(p, sp)) in pairs.iter().enumerate() {
                let ep = &envs[p];
                let up = ep.vector.map(|v| sp * v / ep.r);
                for &(q, sq) in &pairs[x..] {
                    let eq = &envs[q];
                    if eq.kind != ep.kind {
                        continue;
                    }
                    // (p, q) and (q, p) give the same term
                    let weight = if p == q { 1.0 } else { 2.0 } * ORDERED * ORDERED * self.kernel_mixed_derivative(ep.r, eq.r);
                    for (alpha, s) in sum.iter_mut().enumerate() {
                        *s += weight * up[alpha] * sq * eq.vector[alpha] / eq.r;
                    }
                }
            }
            out[3 * a..3 * a + 3].copy_from_slice(&sum);
        }
        out
    }

    /// The block of K_MM of species pair `kind` (M_k × M_k), with
    /// `jitter`·δ² on the diagonal.
    pub fn kmm(&self, kind: usize, jitter: f64) -> DMatrix<f64> {
        let s = &self.sparse[kind];
        let mut k = DMatrix::from_fn(s.len(), s.len(), |a, b| self.kernel(s[a], s[b]));
        for a in 0..s.len() {
            k[(a, a)] += jitter * self.delta * self.delta;
        }
        k
    }

    /// The term's settings as JSON (model file header and fit facts).
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "distance_2b",
            "cutoff": self.cutoff,
            "transition": self.transition,
            "theta": self.theta,
            "delta": self.delta,
            "species_pairs": self.pairs.iter().map(|&(a, b)| [a, b]).collect::<Vec<_>>(),
            "sparse_counts": self.sparse.iter().map(Vec::len).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoff_function_is_smooth() {
        let (rc, w) = (5.0, 0.5);
        assert_eq!(cutoff_function(4.4, rc, w), (1.0, 0.0));
        assert_eq!(cutoff_function(5.0, rc, w), (0.0, 0.0));
        let (f, _) = cutoff_function(4.75, rc, w);
        assert!((f - 0.5).abs() < 1e-15);
        let h = 1e-6;
        for r in [4.55, 4.7, 4.9, 4.99] {
            let fd = (cutoff_function(r + h, rc, w).0 - cutoff_function(r - h, rc, w).0) / (2.0 * h);
            assert!((fd - cutoff_function(r, rc, w).1).abs() < 1e-8, "{r}");
        }
    }

    #[test]
    fn uniform_points_cover_the_range() {
        let r: Vec<f64> = (0..100).map(|k| 2.0 + 0.03 * k as f64).collect();
        let p = uniform_points(&r, 4);
        assert_eq!(p.len(), 4);
        assert!(p[0] < 2.5 && p[3] > 4.5, "{p:?}");
        // a gap in the distribution: bins whose centre falls in it share a point
        let r = [1.0, 1.1, 3.0];
        assert_eq!(uniform_points(&r, 4), vec![1.1, 3.0]);
        assert!(uniform_points(&[], 3).is_empty());
    }

    /// The force prior against mixed central differences of the term's
    /// structure kernel K(A, B) = 4 Σ_{p∈A, q∈B, same species pair} k(r_p, r_q)
    /// between two copies of a structure whose atom a is moved along α by s
    /// in one and t in the other: k**_F = ∂²K/∂s∂t at s = t = 0 (h = 1e-4 Å,
    /// checked at 1e-6 of the largest component). Pairs in the cosine
    /// transition, a pair with its own periodic image (a small cell) and
    /// two species pairs.
    #[test]
    fn force_prior_by_finite_differences() {
        let cell = [[3.1, 0.0, 0.0], [0.4, 3.3, 0.0], [0.2, -0.3, 3.6]];
        let positions = vec![[0.1, 0.2, 0.3], [1.4, 0.9, 0.2], [0.7, 2.1, 1.5], [2.2, 1.6, 2.4]];
        let system = System::new(vec![29, 79, 29, 29], positions, cell, [true, true, true]).unwrap();
        let term = PairTerm::new(3.4, 1.0, 0.4, 0.3, vec![(29, 29), (29, 79), (79, 79)], vec![vec![2.0, 2.6], vec![2.3], vec![2.5]]).unwrap();
        let envs = term.environments(&system).unwrap();
        assert!(envs.iter().any(|e| e.i == e.j), "the cell is small enough for a pair with its own image");
        assert!(envs.iter().any(|e| e.r > 2.4 && e.r < 3.4), "pairs in the transition");
        let kss = term.force_prior_variance(&envs, system.size());
        let structure_kernel = |a: &[PairEnv], b: &[PairEnv]| -> f64 {
            let mut k = 0.0;
            for p in a {
                for q in b {
                    if p.kind == q.kind {
                        k += ORDERED * ORDERED * term.kernel(p.r, q.r);
                    }
                }
            }
            k
        };
        let h = 1e-4;
        let largest = kss.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(largest > 0.0);
        for k in 0..3 * system.size() {
            let [plus, minus] = [h, -h].map(|d| {
                let mut q = system.clone();
                q.positions[k / 3][k % 3] += d;
                term.environments(&q).unwrap()
            });
            let want = (structure_kernel(&plus, &plus) - structure_kernel(&plus, &minus) - structure_kernel(&minus, &plus) + structure_kernel(&minus, &minus)) / (4.0 * h * h);
            assert!((kss[k] - want).abs() <= 1e-6 * largest, "component {k}: {} vs {want}", kss[k]);
            assert!(kss[k] >= 0.0);
        }
    }

    #[test]
    fn rejects() {
        let good = PairOptions { cutoff: 5.0, transition: 0.5, theta: 1.0, delta: 1.0, count: 10, jitter: Some(1e-8) };
        assert!(good.check().is_ok());
        let msg = |o: PairOptions| o.check().unwrap_err().to_string();
        assert!(msg(PairOptions { theta: -1.0, ..good }).contains("distance_2b.theta = -1"));
        assert!(msg(PairOptions { cutoff: f64::NAN, ..good }).contains("distance_2b.cutoff = NaN"));
        assert!(msg(PairOptions { transition: 6.0, ..good }).contains("distance_2b.transition = 6"));
        assert!(msg(PairOptions { count: 0, ..good }).contains("distance_2b.sparse.count = 0"));
        assert!(msg(PairOptions { jitter: Some(-1.0), ..good }).contains("distance_2b.jitter = -1"));
    }
}
