//! Periodic neighbour search with cell lists (docs/CONVENTIONS.md §1).
//!
//! Atoms are binned in fractional coordinates of an effective cell whose
//! periodic rows are the lattice vectors and whose non-periodic rows are unit
//! vectors orthogonal to the periodic ones. Bins are about `cutoff` wide
//! along the first two axes and `cutoff / 8` along the last (measured between
//! lattice planes) and atoms are sorted by bin, so a row of bins along the
//! last axis is one contiguous run of coordinates: a centre scans 3 × 3 such
//! rows; a thinner cell makes the search reach as many periodic images as
//! needed. A centre scans its rows without
//! branches (a cheap squared-distance filter that compacts the indices of
//! candidates), then tests the survivors exactly and sorts them by (j, shift).
//! When every atom is inside the cell (the usual input) a full list's AVX2
//! scan skips the filter and does the exact test itself, four atoms at a
//! time, with the scalar test's operations in each lane (same pairs, same
//! bits).
//! Work is O(N) at fixed density and parallel over centres; the output order
//! and every value do not depend on the number of threads.
use rayon::prelude::*;

use crate::budget::MemoryBudget;
use crate::error::{Error, Result};
use crate::system::{cross, det3, dot, norm, System};
use crate::tensor::buffer;

/// Neighbour-list options.
#[derive(Debug, Clone, Copy)]
pub struct NeighborList {
    /// Cutoff radius in Å; pairs with distance < cutoff are kept.
    pub cutoff: f64,
    /// Full list (both i→j and j→i) when true, half list otherwise.
    pub full: bool,
}

/// Pairs as a struct of arrays, sorted by `i`, then `j`, then shift.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pairs {
    /// Index of the first atom (the centre).
    pub i: Vec<u32>,
    /// Index of the second atom (the neighbour).
    pub j: Vec<u32>,
    /// Integer cell shift S of the neighbour image.
    pub shifts: Vec<[i32; 3]>,
    /// |r_ij| in Å.
    pub distances: Vec<f64>,
    /// r_ij = x_j − x_i + S·H in Å.
    pub vectors: Vec<[f64; 3]>,
}

impl Pairs {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.i.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.i.is_empty()
    }

    /// Grows the capacity to exactly `total` pairs (when below), failing
    /// instead of aborting; large arrays take resident memory that a caller
    /// no longer uses when there is some of exactly that size
    /// ([`buffer::reusable`]: the Node binding's pool of results JavaScript
    /// dropped), so that a repeated search does not fault in fresh pages.
    fn reserve_total(&mut self, total: usize) -> Result<()> {
        fn grow<T: Copy>(v: &mut Vec<T>, total: usize) -> Result<()> {
            if total <= v.capacity() {
                return Ok(());
            }
            if let Some(mut reused) = buffer::reusable::<T>(total) {
                reused.extend_from_slice(v);
                *v = reused;
                return Ok(());
            }
            v.try_reserve_exact(total - v.len())
                .map_err(|_| Error::Memory(format!("could not allocate a neighbour list of {total} pairs")))
        }
        grow(&mut self.i, total)?;
        grow(&mut self.j, total)?;
        grow(&mut self.shifts, total)?;
        grow(&mut self.distances, total)?;
        grow(&mut self.vectors, total)
    }

    /// Concatenates per-chunk results, each thread copying its share.
    fn concat_parallel(parts: &[Pairs]) -> Result<Pairs> {
        let total: usize = parts.iter().map(Pairs::len).sum();
        let mut out = Pairs::default();
        out.reserve_total(total)?;
        // every element is written below, before anything reads it
        fn uninit<T>(v: &mut Vec<T>, total: usize) -> &mut [std::mem::MaybeUninit<T>] {
            &mut v.spare_capacity_mut()[..total]
        }
        let mut rest = (
            uninit(&mut out.i, total),
            uninit(&mut out.j, total),
            uninit(&mut out.shifts, total),
            uninit(&mut out.distances, total),
            uninit(&mut out.vectors, total),
        );
        let mut slots = Vec::with_capacity(parts.len());
        for p in parts {
            let n = p.len();
            let (i, ri) = std::mem::take(&mut rest.0).split_at_mut(n);
            let (j, rj) = std::mem::take(&mut rest.1).split_at_mut(n);
            let (s, rs) = std::mem::take(&mut rest.2).split_at_mut(n);
            let (d, rd) = std::mem::take(&mut rest.3).split_at_mut(n);
            let (v, rv) = std::mem::take(&mut rest.4).split_at_mut(n);
            rest = (ri, rj, rs, rd, rv);
            slots.push((p, i, j, s, d, v));
        }
        fn write<T: Copy>(to: &mut [std::mem::MaybeUninit<T>], from: &[T]) {
            for (t, &f) in to.iter_mut().zip(from) {
                t.write(f);
            }
        }
        slots.into_par_iter().for_each(|(p, i, j, s, d, v)| {
            write(i, &p.i);
            write(j, &p.j);
            write(s, &p.shifts);
            write(d, &p.distances);
            write(v, &p.vectors);
        });
        // SAFETY: the parts' lengths sum to `total`, so the slots above
        // cover the first `total` elements of each array, all written
        unsafe {
            out.i.set_len(total);
            out.j.set_len(total);
            out.shifts.set_len(total);
            out.distances.set_len(total);
            out.vectors.set_len(total);
        }
        Ok(out)
    }
}

/// Upper bound on the number of periodic images along one axis; a cutoff
/// needing more is almost certainly a unit mistake and would exhaust memory.
const MAX_IMAGES_PER_AXIS: i64 = 1000;
/// Periodic image offsets are 32-bit: atoms farther than this many cells
/// from the origin would lose neighbours to overflow, so they are refused.
const MAX_CELLS_FROM_ORIGIN: f64 = 1e9;
/// Most neighbours per atom a periodic system may have (see
/// `NeighborList::check_density`).
pub const MAX_NEIGHBORS_PER_ATOM: f64 = 1e6;
/// Bytes of one pair in [`Pairs`]: i, j, shift, distance, vector.
pub const PAIR_BYTES: usize = 4 + 4 + 12 + 8 + 24;
/// Bins are about cutoff / BIN_DIVISIONS[k] wide along axis k. A centre
/// scans one contiguous run of atoms per row of bins along the last axis, so
/// what a scan costs is mostly per row (set-up, the partial last block of
/// four) and per candidate, not per bin: bins as wide as the cutoff along the
/// first two axes give 3 × 3 rows instead of the 5 × 5 of cutoff / 2 bins,
/// and thin bins along the last axis keep the rows short (17 bins, 2.125
/// cutoff). The rows cover 19.1 cutoff³ against 15.6 for 5³ bins of cutoff / 2
/// (1.2 times the candidates), for 9 row set-ups instead of 25: on silicon
/// (28 pairs a centre, 1 000 to 100 000 atoms) 15–20 % fewer instructions
/// per list. Periodic wrap-around still splits a row in two where it
/// crosses the cell's boundary along the last axis.
const BIN_DIVISIONS: [i64; 3] = [1, 1, 8];

/// Geometry of the binning: effective cell, its inverse, bin counts and search ranges.
struct Grid {
    /// lowest fractional coordinate along non-periodic axes (0 for periodic ones)
    origin: [f64; 3],
    /// fractional extent covered by the bins along each axis (1 for periodic ones)
    extent: [f64; 3],
    bins: [i64; 3],
    range: [i64; 3],
    pbc: [bool; 3],
}

/// Effective cell: periodic rows are the lattice vectors; non-periodic rows
/// are orthonormal vectors orthogonal to the periodic ones.
fn effective_cell(system: &System) -> [[f64; 3]; 3] {
    let pbc = system.pbc;
    let cell = system.cell;
    let periodic: Vec<usize> = (0..3).filter(|&k| pbc[k]).collect();
    let unit = |v: [f64; 3]| {
        let n = norm(v);
        [v[0] / n, v[1] / n, v[2] / n]
    };
    let mut m = [[0.0; 3]; 3];
    match periodic.len() {
        0 => m = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        3 => m = cell,
        1 => {
            let p = periodic[0];
            let a = unit(cell[p]);
            // any vector not parallel to a
            let trial = if a[0].abs() < 0.9 { [1.0, 0.0, 0.0] } else { [0.0, 1.0, 0.0] };
            let u = unit(cross(a, trial));
            let v = cross(a, u);
            m[p] = cell[p];
            m[(p + 1) % 3] = u;
            m[(p + 2) % 3] = v;
        }
        _ => {
            let (p, q) = (periodic[0], periodic[1]);
            let np = 3 - p - q;
            m[p] = cell[p];
            m[q] = cell[q];
            m[np] = unit(cross(cell[p], cell[q]));
        }
    }
    m
}

fn inverse3(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let d = det3(m);
    let c = |r: usize, s: usize| {
        let (r1, r2) = ((r + 1) % 3, (r + 2) % 3);
        let (s1, s2) = ((s + 1) % 3, (s + 2) % 3);
        m[r1][s1] * m[r2][s2] - m[r1][s2] * m[r2][s1]
    };
    let mut inv = [[0.0; 3]; 3];
    for r in 0..3 {
        for s in 0..3 {
            inv[s][r] = c(r, s) / d;
        }
    }
    inv
}

/// Fractional coordinates s such that x = s · M.
fn fractional(x: [f64; 3], inverse: &[[f64; 3]; 3]) -> [f64; 3] {
    let mut s = [0.0; 3];
    for (k, sk) in s.iter_mut().enumerate() {
        *sk = x[0] * inverse[0][k] + x[1] * inverse[1][k] + x[2] * inverse[2][k];
    }
    s
}

impl NeighborList {
    /// Validates the options: the cutoff must be finite and positive.
    pub fn new(cutoff: f64, full: bool) -> Result<NeighborList> {
        if !(cutoff.is_finite() && cutoff > 0.0) {
            return Err(Error::InvalidParameter(format!("cutoff must be a positive finite number of Å, got {cutoff}")));
        }
        Ok(NeighborList { cutoff, full })
    }

    fn grid(&self, system: &System, fractional_positions: &[[f64; 3]]) -> Result<Grid> {
        let m = effective_cell(system);
        let volume = det3(&m).abs();
        let mut origin = [0.0; 3];
        let mut extent = [1.0; 3];
        let mut bins = [1i64; 3];
        let mut width = [0.0; 3];
        for k in 0..3 {
            // distance between the lattice planes spanned by the other two rows
            let plane = volume / norm(cross(m[(k + 1) % 3], m[(k + 2) % 3]));
            if !system.pbc[k] {
                let (lo, hi) = fractional_positions
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| (lo.min(s[k]), hi.max(s[k])));
                let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 0.0) };
                origin[k] = lo;
                extent[k] = (hi - lo).max(0.0);
            }
            let length = extent[k] * plane;
            // bins slightly wider than cutoff / BIN_DIVISIONS, so that rounding in
            // the binning never hides a pair; the search then visits
            // 2·BIN_DIVISIONS + 1 bins per axis (more in a cell thinner than that)
            let bin_width = self.cutoff / BIN_DIVISIONS[k] as f64 * (1.0 + 1e-9);
            bins[k] = ((length / bin_width).floor() as i64).clamp(1, 1 << 20);
            width[k] = length / bins[k] as f64;
        }
        // Cap the bin count near the atom count: sparse systems would otherwise
        // spend their time visiting empty bins.
        let max_bins = (2 * fractional_positions.len()).max(8) as i64;
        while bins[0] * bins[1] * bins[2] > max_bins {
            let k = (0..3).max_by_key(|&k| bins[k]).unwrap_or(0);
            bins[k] = (bins[k] + 1) / 2;
            let plane = volume / norm(cross(m[(k + 1) % 3], m[(k + 2) % 3]));
            width[k] = extent[k] * plane / bins[k] as f64;
        }
        let mut range = [0i64; 3];
        for k in 0..3 {
            if width[k] > 0.0 {
                let r = (self.cutoff / width[k]).ceil();
                if system.pbc[k] && r > (MAX_IMAGES_PER_AXIS * bins[k]) as f64 {
                    return Err(Error::InvalidParameter(format!(
                        "cutoff {} Å needs more than {MAX_IMAGES_PER_AXIS} periodic images along cell vector {}: \
                         the cell is too thin for this cutoff (check the units, Å)",
                        self.cutoff,
                        ["a", "b", "c"][k]
                    )));
                }
                range[k] = if system.pbc[k] { r as i64 } else { (r as i64).min(bins[k]) };
            }
        }
        Ok(Grid { origin, extent, bins, range, pbc: system.pbc })
    }

    /// Computes the pairs of `system` closer than the cutoff, within the
    /// process-wide memory budget ([`MemoryBudget::global`]).
    pub fn compute(&self, system: &System) -> Result<Pairs> {
        self.compute_within(system, MemoryBudget::global())
    }

    /// Estimated number of pairs of `system` (full list): the number density
    /// of the atoms (over the cell along periodic axes, over the atoms'
    /// extent along the others) times the cutoff sphere, per centre, capped
    /// by the number of atoms times the periodic images the search visits.
    /// An estimate, not a bound: it is what the budget is checked against.
    pub fn estimate_pairs(&self, system: &System) -> Result<f64> {
        let n = system.size();
        if n == 0 {
            return Ok(0.0);
        }
        let inverse = inverse3(&effective_cell(system));
        let frac: Vec<[f64; 3]> = system.positions.iter().map(|&x| fractional(x, &inverse)).collect();
        let grid = self.grid(system, &frac)?;
        self.check_density(system, &grid)?;
        Ok(self.estimate_from_grid(system, &grid))
    }

    fn estimate_from_grid(&self, system: &System, grid: &Grid) -> f64 {
        let n = system.size() as f64;
        let m = effective_cell(system);
        let volume = det3(&m).abs();
        // the parallelepiped the atoms span: the whole cell along periodic
        // axes, the atoms' fractional extent along the others
        let mut box_volume = volume;
        let mut images = 1.0;
        for k in 0..3 {
            box_volume *= grid.extent[k];
            if grid.pbc[k] {
                images *= (2 * grid.range[k] + 1) as f64;
            }
        }
        let sphere = 4.0 / 3.0 * std::f64::consts::PI * self.cutoff.powi(3);
        let per_centre = (n / box_volume.max(1e-300) * sphere + 1.0).min(n * images);
        let total = n * per_centre;
        if self.full { total } else { 0.5 * total }
    }

    /// Refuses cutoffs that give more than [`MAX_NEIGHBORS_PER_ATOM`]
    /// neighbours per atom in a periodic system: far beyond any
    /// representation's range (≈ 100 Å in a solid), almost surely a unit
    /// mistake, and minutes of search before any memory check could help.
    fn check_density(&self, system: &System, grid: &Grid) -> Result<()> {
        if !grid.pbc.iter().any(|&p| p) {
            return Ok(());
        }
        let per_atom = self.estimate_from_grid(system, grid) / system.size().max(1) as f64;
        if per_atom > MAX_NEIGHBORS_PER_ATOM {
            return Err(Error::InvalidParameter(format!(
                "cutoff {} Å gives about {per_atom:.2e} neighbours per atom in this periodic system (at most {MAX_NEIGHBORS_PER_ATOM:e}): \
                 check the cutoff and its units (Å)",
                self.cutoff
            )));
        }
        Ok(())
    }

    /// An upper bound on the pairs of a full list: for every occupied bin,
    /// its atoms times the atoms of every bin (and periodic image) its
    /// centres scan. From the real positions, so a dense cluster in a large
    /// cell is counted as dense; about 4.5 times the pair count at uniform
    /// density (the scanned bins cover 19.1 cutoff³, the sphere 4.2).
    fn candidate_bound(&self, grid: &Grid, start: &[usize]) -> f64 {
        let [nx, ny, nz] = grid.bins.map(|b| b as usize);
        let total_bins = nx * ny * nz;
        // The bins a centre scans are a box (a product of one range per
        // axis), so the atoms they hold are three one-dimensional window
        // sums in a row: 3·(2r + 1) additions a bin instead of (2r + 1)³.
        // The sums are of integers below 2^53, so exact: the same bound as
        // summing bin by bin.
        let mut sums: Vec<f64> = (0..total_bins).map(|b| (start[b + 1] - start[b]) as f64).collect();
        let mut next = vec![0.0; total_bins];
        for (axis, (n, stride)) in [(nx, ny * nz), (ny, nz), (nz, 1)].into_iter().enumerate() {
            let r = grid.range[axis];
            for (b, out) in next.iter_mut().enumerate() {
                let c = (b / stride) % n;
                let base = b - c * stride;
                let mut acc = 0.0;
                for d in -r..=r {
                    if let Some((w, _)) = wrap(c as i64 + d, n as i64, grid.pbc[axis]) {
                        acc += sums[base + w as usize * stride];
                    }
                }
                *out = acc;
            }
            std::mem::swap(&mut sums, &mut next);
        }
        let mut total = 0.0;
        for (bin, reach) in sums.iter().enumerate() {
            let occupied = start[bin + 1] - start[bin];
            if occupied > 0 {
                total += occupied as f64 * reach;
            }
        }
        total
    }

    /// The number of pairs of `system` (full or half list as configured),
    /// from its real positions: the cheap bound of the cell list when it is
    /// at most `max_pairs`, else the exact count of a search that stores
    /// nothing. What memory budgets are checked against before a search.
    pub fn count_pairs(&self, system: &System, max_pairs: f64) -> Result<f64> {
        let n = system.size();
        if n == 0 {
            return Ok(0.0);
        }
        let inverse = inverse3(&effective_cell(system));
        let frac: Vec<[f64; 3]> = system.positions.iter().map(|&x| fractional(x, &inverse)).collect();
        let grid = self.grid(system, &frac)?;
        self.check_density(system, &grid)?;
        let bins = Binning::new(system, &grid, &frac);
        let bound = self.candidate_bound(&grid, &bins.start);
        if bound <= max_pairs {
            return Ok(bound);
        }
        let ctx = SearchContext::new(self, system, &grid, &bins, simd_available());
        Ok(ctx.count_pairs() as f64)
    }

    /// [`NeighborList::compute`] with an explicit memory budget.
    pub fn compute_within(&self, system: &System, budget: MemoryBudget) -> Result<Pairs> {
        self.compute_with(system, budget, simd_available())
    }

    /// [`NeighborList::compute_within`], with the vector filter or without.
    fn compute_with(&self, system: &System, budget: MemoryBudget, simd: bool) -> Result<Pairs> {
        let Some((grid, bins)) = self.binned(system, budget)? else {
            return Ok(Pairs::default());
        };
        let n = system.size();
        let ctx = SearchContext::new(self, system, &grid, &bins, simd);
        // the pair arrays (52 bytes a pair, written twice when parallel
        // chunks are concatenated), from the real pair count, not the
        // average density: a bound from the bin occupancies when that fits,
        // else the exact count of a search that stores nothing
        let bytes = |pairs: f64| pairs * 2.0 * PAIR_BYTES as f64 + n as f64 * 160.0;
        // the box sums of the bound cost 4 % of a search in a solid; every
        // centre scans at most the fullest bin's atoms in each bin it
        // visits, so when that cruder bound fits, so does the exact one
        let fullest = bins.start.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0) as f64;
        let visited: f64 = (0..3).map(|k| (2 * grid.range[k] + 1) as f64).product();
        let fits = |pairs: f64| bytes(pairs) <= budget.bytes as f64;
        if !fits(n as f64 * fullest * visited) && !fits(self.candidate_bound(&grid, &bins.start)) {
            let exact = ctx.count_pairs() as f64;
            budget.check(&format!("the neighbour list ({} atoms, cutoff {} Å, {exact:.3e} pairs)", n, self.cutoff), bytes(exact))?;
        }
        let mut scratch = Candidates::default();
        // in parallel from a few chunks per thread on: below 512 atoms the
        // search of a dense system (water64: 192 atoms, ~100 pairs each)
        // was a quarter of a 2-thread SOAP call, all on one thread
        let threads = rayon::current_num_threads();
        if n < 32 || threads == 1 {
            // one thread: write straight into the final arrays, reserving
            // from the pair density of the first centres
            let mut pairs = Pairs::default();
            let probe = n.min(256);
            // room for the probe's pairs from the density estimate (at most
            // 256 a centre: a flat open system's estimate is no density), so
            // that the probe does not grow five arrays by doubling, copying
            // them at each step (~5 % of a 1000-atom list). In a small system
            // (at most four probes) the room is for every centre (at most
            // 1024 × 256 pairs, 13.6 MB), so that a list as dense as the
            // estimate is not copied into larger arrays after the probe (the
            // copy was 6 % of si_nl_1k's instructions)
            let per_centre = self.estimate_from_grid(system, &grid) / n as f64;
            let first = if n <= 4 * probe { n } else { probe };
            pairs.reserve_total((first as f64 * (1.25 * per_centre).min(256.0)) as usize + 64)?;
            for i in 0..probe {
                ctx.search_centre(i, &mut pairs, &mut scratch);
            }
            let estimate = (pairs.len() as f64 * n as f64 / probe as f64 * 1.02) as usize;
            pairs.reserve_total(estimate)?;
            for i in probe..n {
                ctx.search_centre(i, &mut pairs, &mut scratch);
            }
            return Ok(pairs);
        }
        let chunk = (n / (8 * threads)).clamp(8, 64);
        let n_chunks = n.div_ceil(chunk);
        let parts: Vec<Pairs> = (0..n_chunks)
            .into_par_iter()
            .map_init(Candidates::default, |scratch, c| {
                let mut out = Pairs::default();
                for i in c * chunk..((c + 1) * chunk).min(n) {
                    ctx.search_centre(i, &mut out, scratch);
                }
                out
            })
            .collect();
        Pairs::concat_parallel(&parts)
    }

    /// The checks of a search (cutoff, positions, cell, density, the budget
    /// of the search's own arrays) and the binning; None for a system
    /// without atoms. Shared by [`NeighborList::compute_within`] and the
    /// per-centre search (`centre.rs`), so both refuse the same inputs.
    fn binned(&self, system: &System, budget: MemoryBudget) -> Result<Option<(Grid, Binning)>> {
        NeighborList::new(self.cutoff, self.full)?;
        let n = system.size();
        if n == 0 {
            return Ok(None);
        }
        let inverse = inverse3(&effective_cell(system));
        let frac: Vec<[f64; 3]> = system.positions.iter().map(|&x| fractional(x, &inverse)).collect();
        for (a, f) in frac.iter().enumerate() {
            if let Some(k) = (0..3).find(|&k| system.pbc[k] && f[k].abs() > MAX_CELLS_FROM_ORIGIN) {
                return Err(Error::InvalidSystem(format!(
                    "atom {a} is {:.3e} cells away from the origin along cell vector {} (at most {MAX_CELLS_FROM_ORIGIN:e}): \
                     wrap the positions into the cell",
                    f[k],
                    ["a", "b", "c"][k]
                )));
            }
        }
        let grid = self.grid(system, &frac)?;
        self.check_density(system, &grid)?;
        // the per-atom arrays of the binning (fractional, wrapped and binned
        // positions, offsets, bins, order: about 140 bytes an atom) and
        // small per-centre candidate buffers, before binning
        budget.check(&format!("the neighbour search of {n} atoms"), n as f64 * 160.0)?;
        let bins = Binning::new(system, &grid, &frac);
        Ok(Some((grid, bins)))
    }
}

/// Atoms sorted into the bins of a [`Grid`] (CSR layout).
struct Binning {
    /// integer cell offset that wraps each atom into the cell (periodic axes)
    offsets: Vec<[i32; 3]>,
    /// bin of each atom
    bin_of: Vec<usize>,
    /// atoms of bin b are `sorted[start[b]..start[b + 1]]`
    start: Vec<usize>,
    sorted: Vec<u32>,
}

impl Binning {
    fn new(system: &System, grid: &Grid, frac: &[[f64; 3]]) -> Binning {
        let n = system.size();
        // Wrap periodic coordinates into [0, 1) and remember the integer offset.
        let mut offsets = vec![[0i32; 3]; n];
        let mut bin_of = vec![0usize; n];
        for a in 0..n {
            let mut b = [0i64; 3];
            for k in 0..3 {
                let mut s = frac[a][k];
                if grid.pbc[k] {
                    let f = floor(s);
                    offsets[a][k] = f as i32;
                    s -= f;
                } else {
                    s = if grid.extent[k] > 0.0 { (s - grid.origin[k]) / grid.extent[k] } else { 0.0 };
                }
                // truncation, not floor: they differ only below zero, where
                // the clamp gives bin 0 either way
                b[k] = ((s * grid.bins[k] as f64) as i64).clamp(0, grid.bins[k] - 1);
            }
            bin_of[a] = ((b[0] * grid.bins[1] + b[1]) * grid.bins[2] + b[2]) as usize;
        }
        let total_bins = (grid.bins[0] * grid.bins[1] * grid.bins[2]) as usize;
        // counting sort of atoms into bins (CSR layout)
        let mut start = vec![0usize; total_bins + 1];
        for &b in &bin_of {
            start[b + 1] += 1;
        }
        for b in 0..total_bins {
            start[b + 1] += start[b];
        }
        let mut fill = start.clone();
        let mut sorted = vec![0u32; n];
        for (a, &b) in bin_of.iter().enumerate() {
            sorted[fill[b]] = a as u32;
            fill[b] += 1;
        }
        Binning { offsets, bin_of, start, sorted }
    }
}

/// A run of bins visited along one axis: bins `first..=last`, translated by
/// `t` cell vectors (`shift` = t times that cell vector, in Å).
#[derive(Clone, Copy)]
struct Run {
    first: usize,
    last: usize,
    t: i32,
    shift: [f64; 3],
}

struct SearchContext<'a> {
    list: &'a NeighborList,
    system: &'a System,
    grid: &'a Grid,
    offsets: &'a [[i32; 3]],
    bin_of: &'a [usize],
    start: &'a [usize],
    /// positions moved into the cell by their offsets
    wrapped: Vec<[f64; 3]>,
    /// `wrapped` in the order of `sorted`, one array per Cartesian axis, so
    /// that a run of bins is three contiguous streams for the filter
    xs: Vec<f64>,
    ys: Vec<f64>,
    zs: Vec<f64>,
    /// position, offset and index of the atoms in the order of `sorted`
    binned_atoms: Vec<BinnedAtom>,
    /// per axis, the runs of bins a centre in bin coordinate c visits are
    /// `runs[axis][run_start[axis][c]..run_start[axis][c + 1]]`; along the
    /// last axis, consecutive bins with the same translation are merged into
    /// one run (one contiguous range of atoms)
    runs: [Vec<Run>; 3],
    run_start: [Vec<usize>; 3],
    /// whether the filter uses AVX2 (checked at run time)
    simd: bool,
    /// every atom inside the cell (all offsets zero): the full list's AVX2
    /// scan then does the exact test itself, four atoms at a time, on the
    /// given positions (`xs`, `ys`, `zs` are those positions in bin order)
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    plain: bool,
    /// no coordinate is −0.0 (then an unshifted run may skip adding the ±0
    /// image translation, see `scan_plain`)
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    no_negative_zero: bool,
    /// atom index of each position in bin order, padded by a SIMD width
    /// (the vector scan reads the indices of whole blocks of four)
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    sorted: Vec<u32>,
    /// position in bin order of each atom
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    rank: Vec<u32>,
}

/// An atom as the exact test reads it, stored in bin order.
struct BinnedAtom {
    position: [f64; 3],
    offset: [i32; 3],
    index: u32,
}

impl<'a> SearchContext<'a> {
    fn new(list: &'a NeighborList, system: &'a System, grid: &'a Grid, bins: &'a Binning, simd: bool) -> SearchContext<'a> {
        let cell = system.cell;
        let n = system.size();
        let plain = bins.offsets.iter().all(|o| *o == [0, 0, 0]);
        let mut rank = vec![0u32; if plain { n } else { 0 }];
        if plain {
            for (p, &a) in bins.sorted.iter().enumerate() {
                rank[a as usize] = p as u32;
            }
        }
        let wrapped: Vec<[f64; 3]> = (0..n)
            .map(|a| {
                let (o, x) = (bins.offsets[a], system.positions[a]);
                if plain {
                    // the given position, bit for bit (x − 0·c could flip a zero's sign)
                    return x;
                }
                let mut w = [0.0; 3];
                for (k, wk) in w.iter_mut().enumerate() {
                    *wk = x[k] - o[0] as f64 * cell[0][k] - o[1] as f64 * cell[1][k] - o[2] as f64 * cell[2][k];
                }
                w
            })
            .collect();
        // padded by a SIMD width: the vector filter reads whole blocks of
        // four and masks the lanes past a run
        let axis = |k: usize| -> Vec<f64> {
            bins.sorted.iter().map(|&a| wrapped[a as usize][k]).chain([0.0; FILTER_LANES]).collect()
        };
        let (xs, ys, zs) = (axis(0), axis(1), axis(2));
        let binned_atoms = bins
            .sorted
            .iter()
            .map(|&a| BinnedAtom { position: system.positions[a as usize], offset: bins.offsets[a as usize], index: a })
            .collect();
        // the bins (and image translations) visited along each axis depend
        // only on the centre's bin coordinate along that axis: tabulated
        // once here instead of once per centre
        let mut runs: [Vec<Run>; 3] = Default::default();
        let mut run_start: [Vec<usize>; 3] = Default::default();
        for k in 0..3 {
            run_start[k].push(0);
            for c in 0..grid.bins[k] {
                let first_run = runs[k].len();
                for d in -grid.range[k]..=grid.range[k] {
                    let Some((bin, t)) = wrap(c + d, grid.bins[k], grid.pbc[k]) else { continue };
                    let bin = bin as usize;
                    let own = runs[k].len() > first_run;
                    match runs[k].last_mut() {
                        Some(last) if k == 2 && own && last.t == t && bin == last.last + 1 => last.last = bin,
                        _ => {
                            let tf = t as f64;
                            let shift = [tf * cell[k][0], tf * cell[k][1], tf * cell[k][2]];
                            runs[k].push(Run { first: bin, last: bin, t, shift })
                        }
                    }
                }
                // visited in bin order (then image order), not in order of
                // displacement: bins follow space, and so do the atom
                // indices of most inputs (a crystal built cell by cell), so
                // the scan then meets the neighbours closer to the (j,
                // shift) order of the output and the per-centre sort moves
                // fewer (on si_nl_1k 2.4 moves a pair instead of 4.0)
                runs[k][first_run..].sort_unstable_by_key(|r| (r.first, r.t));
                run_start[k].push(runs[k].len());
            }
        }
        SearchContext {
            list,
            system,
            grid,
            offsets: &bins.offsets,
            bin_of: &bins.bin_of,
            start: &bins.start,
            wrapped,
            xs,
            ys,
            zs,
            binned_atoms,
            runs,
            run_start,
            simd: simd && simd_available(),
            plain,
            no_negative_zero: system.positions.iter().flatten().all(|x| x.to_bits() != (-0.0f64).to_bits()),
            sorted: bins.sorted.iter().copied().chain([0; FILTER_LANES]).collect(),
            rank,
        }
    }

    /// Appends all pairs with first atom `i`, sorted by (j, shift).
    fn search_centre(&self, i: usize, out: &mut Pairs, found: &mut Candidates) {
        self.collect(i, found);
        found.emit_sorted(i as u32, self.system.size(), self.simd, out);
    }

    /// Fills `found` with the pairs of centre `i`, unsorted, with the AVX2
    /// filter where the CPU has it (the same pairs and values either way:
    /// the vector filter does the scalar one's operations, lane by lane).
    #[inline]
    fn collect(&self, i: usize, found: &mut Candidates) {
        #[cfg(target_arch = "x86_64")]
        if self.simd {
            // SAFETY: `simd` is only set when the CPU has AVX2
            unsafe {
                if self.list.full {
                    self.collect_avx2::<true>(i, found);
                } else {
                    self.collect_avx2::<false>(i, found);
                }
            }
            return;
        }
        if self.list.full {
            self.collect_centre::<true, false>(i, found);
        } else {
            self.collect_centre::<false, false>(i, found);
        }
    }

    /// [`SearchContext::collect_centre`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn collect_avx2<const FULL: bool>(&self, i: usize, found: &mut Candidates) {
        self.collect_centre::<FULL, true>(i, found);
    }

    /// The exact number of pairs, found by the same search without storing
    /// them (parallel over centres; memory: one centre's candidates per thread).
    fn count_pairs(&self) -> usize {
        (0..self.system.size())
            .into_par_iter()
            .with_min_len(64)
            .map_init(Candidates::default, |found, i| {
                self.collect(i, found);
                found.len()
            })
            .sum()
    }

    /// Fills `found` with the pairs of centre `i`, unsorted.
    #[inline(always)]
    fn collect_centre<const FULL: bool, const SIMD: bool>(&self, i: usize, found: &mut Candidates) {
        let (centre, b, wi) = self.centre(i);
        found.clear();
        let runs = |k: usize| &self.runs[k][self.run_start[k][b[k]]..self.run_start[k][b[k] + 1]];
        let (runs_x, runs_y, runs_z) = (runs(0), runs(1), runs(2));
        // one scan per (x, y) row of bins and run along z (bins hold about
        // one atom each in a solid, so the search does not try to skip bins
        // out of reach: a mispredicted branch costs more)
        for rx in runs_x {
            for ry in runs_y {
                self.scan_row::<FULL, SIMD>(&centre, wi, rx, ry, runs_z, found);
            }
        }
    }

    /// What the scans of centre `i` share, its bin coordinates and its
    /// wrapped position.
    #[inline(always)]
    fn centre(&self, i: usize) -> (Centre, [usize; 3], [f64; 3]) {
        let g = self.grid;
        let (ny, nz) = (g.bins[1] as usize, g.bins[2] as usize);
        let bi = self.bin_of[i];
        let b = [bi / (ny * nz), (bi / nz) % ny, bi % nz];
        let cutoff2 = self.list.cutoff * self.list.cutoff;
        let centre = Centre {
            i,
            xi: self.system.positions[i],
            oi: self.offsets[i],
            cutoff2,
            // the filter works on wrapped positions (contiguous per bin) with
            // a margin, so that rounding never drops a pair; the exact test
            // follows
            filter2: cutoff2 * (1.0 + 1e-8) + 1e-12,
        };
        (centre, b, self.wrapped[i])
    }

    /// The scans of one (x, y) row of bins: every run along z.
    #[inline(always)]
    fn scan_row<const FULL: bool, const SIMD: bool>(&self, centre: &Centre, wi: [f64; 3], rx: &Run, ry: &Run, runs_z: &[Run], found: &mut Candidates) {
        let (ny, nz) = (self.grid.bins[1] as usize, self.grid.bins[2] as usize);
        let row = (rx.first * ny + ry.first) * nz;
        let base_xy = [rx.shift[0] + ry.shift[0] - wi[0], rx.shift[1] + ry.shift[1] - wi[1], rx.shift[2] + ry.shift[2] - wi[2]];
        for rz in runs_z {
            let (lo, hi) = (self.start[row + rz.first], self.start[row + rz.last + 1]);
            if lo == hi {
                continue;
            }
            #[cfg(target_arch = "x86_64")]
            if SIMD && FULL && self.plain {
                // SAFETY: SIMD is only set by `collect_avx2` (and the
                // per-centre search's AVX2 entry), which run only where the
                // CPU has AVX2
                unsafe {
                    let unshifted = rx.t == 0 && ry.t == 0 && rz.t == 0;
                    // the run that holds the centre itself (its lane is
                    // masked, see `scan_plain`): one run of the centre's 9+
                    let own = unshifted && (lo..hi).contains(&(self.rank[centre.i] as usize));
                    match (unshifted && self.no_negative_zero, own) {
                        (true, true) => self.scan_plain::<true, true>(centre, [0, 0, 0], [[0.0; 3]; 3], lo, hi, found),
                        (true, false) => self.scan_plain::<true, false>(centre, [0, 0, 0], [[0.0; 3]; 3], lo, hi, found),
                        (false, true) => self.scan_plain::<false, true>(centre, [rx.t, ry.t, rz.t], [rx.shift, ry.shift, rz.shift], lo, hi, found),
                        (false, false) => self.scan_plain::<false, false>(centre, [rx.t, ry.t, rz.t], [rx.shift, ry.shift, rz.shift], lo, hi, found),
                    }
                };
                continue;
            }
            let base = [base_xy[0] + rz.shift[0], base_xy[1] + rz.shift[1], base_xy[2] + rz.shift[2]];
            self.scan::<FULL, SIMD>(centre, [rx.t, ry.t, rz.t], lo, hi, base, found);
        }
    }

    /// The full list's scan of the atoms `lo..hi` (in bin order) when every
    /// atom is inside the cell, so that the shift is the run's translation
    /// `t`: the exact test of [`SearchContext::scan`] four atoms at a time,
    /// without the filter. Each lane does the scalar test's operations in its
    /// order, r = ((x_j − x_i) + t_a·a) + t_b·b) + t_c·c (`u` holds the three
    /// products, as the runs store them) and |r|² < cutoff², so the pairs and
    /// every bit of their values are the scalar path's. `OWN`: the run holds
    /// the centre (then `t` is zero), whose lane is masked.
    ///
    /// The pairs are written without [`Candidates::push`]: (x, y, z, |r|²)
    /// of the four lanes are transposed into one register a lane, stored as
    /// the candidate's first 32 bytes, and (j, shift) as its last 16, into
    /// room reserved for the whole run (instead of ~45 instructions a pair
    /// through four spilled lane arrays and two checked pushes). In a block
    /// that keeps any lane, all four are written and the count advances by
    /// the kept ones: a loop over the set bits ended at a data-dependent
    /// place, a mispredicted branch about once a block (si_nl_1k: 0.68 →
    /// 0.58 ms a list, for 6.79 → 6.85 M instructions). Blocks that keep
    /// none are still skipped (writing them too was 25 % slower on water64).
    ///
    /// # Safety
    /// The CPU has AVX2; `xs`, `ys`, `zs` are padded by [`FILTER_LANES`]
    /// past the last atom (they are).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn scan_plain<const UNSHIFTED: bool, const OWN: bool>(
        &self,
        centre: &Centre,
        t: [i32; 3],
        u: [[f64; 3]; 3],
        lo: usize,
        hi: usize,
        found: &mut Candidates,
    ) {
        use std::arch::x86_64::*;
        let len = hi - lo;
        // the lane of the centre itself (shift 0) when this run holds it
        let skip = if OWN { (self.rank[centre.i] as usize).wrapping_sub(lo) } else { usize::MAX };
        // the lanes of the last block that are inside the run
        let full = len & !(FILTER_LANES - 1);
        let tail = (1u32 << (len & (FILTER_LANES - 1))) - 1;
        // (j, shift) of a pair is `tj` with j in its first lane; the key's
        // shift bits are the run's
        let (b0, b1, b2) = ((t[0] + SHIFT_BIAS) as u32, (t[1] + SHIFT_BIAS) as u32, (t[2] + SHIFT_BIAS) as u32);
        found.overflow |= (b0 | b1 | b2) >= 2 * SHIFT_BIAS as u32;
        let shift_key = ((b0 as u64 & 1023) << 20) | ((b1 as u64 & 1023) << 10) | (b2 as u64 & 1023);
        // room for every lane of every block (the lanes past the kept ones
        // are written and then overwritten or left past the length)
        found.pairs.reserve(len + FILTER_LANES);
        found.order.reserve(len + FILTER_LANES);
        let xi = centre.xi;
        debug_assert!(hi + FILTER_LANES <= self.xs.len() && hi + FILTER_LANES <= self.sorted.len());
        // SAFETY: loads (and `sorted` reads) are at lo + k .. lo + k + 4
        // with k < len, inside the padded arrays; pairs are written at
        // count ≤ (pairs before) + k + 3 < (pairs before) + len + 4, inside
        // the room reserved above, and the lengths are set to cover exactly
        // the kept ones, all written
        unsafe {
            let set = _mm256_set1_pd;
            let (cx, cy, cz) = (set(xi[0]), set(xi[1]), set(xi[2]));
            let (ax, ay, az) = (set(u[0][0]), set(u[0][1]), set(u[0][2]));
            let (bx, by, bz) = (set(u[1][0]), set(u[1][1]), set(u[1][2]));
            let (gx, gy, gz) = (set(u[2][0]), set(u[2][1]), set(u[2][2]));
            let limit = set(centre.cutoff2);
            let tj = _mm_setr_epi32(0, t[0], t[1], t[2]);
            let (px, py, pz) = (self.xs.as_ptr().add(lo), self.ys.as_ptr().add(lo), self.zs.as_ptr().add(lo));
            let mut count = found.pairs.len();
            let (pairs, order) = (found.pairs.as_mut_ptr(), found.order.as_mut_ptr());
            let mut lanes = [_mm256_setzero_pd(); FILTER_LANES];
            let mut k = 0usize;
            while k < len {
                let (mut dx, mut dy, mut dz) = (
                    _mm256_sub_pd(_mm256_loadu_pd(px.add(k)), cx),
                    _mm256_sub_pd(_mm256_loadu_pd(py.add(k)), cy),
                    _mm256_sub_pd(_mm256_loadu_pd(pz.add(k)), cz),
                );
                // UNSHIFTED: the products are ±0, and d + (±0) = d for any
                // d but −0, which x_j − x_i is only when a coordinate is −0
                if !UNSHIFTED {
                    dx = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(dx, ax), bx), gx);
                    dy = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(dy, ay), by), gy);
                    dz = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(dz, az), bz), gz);
                }
                let d2 = _mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(dx, dx), _mm256_mul_pd(dy, dy)), _mm256_mul_pd(dz, dz));
                let mut mask = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(d2, limit)) as u32;
                mask &= if k < full { (1 << FILTER_LANES) - 1 } else { tail };
                if OWN {
                    let own = skip.wrapping_sub(k);
                    if own < FILTER_LANES {
                        mask &= !(1 << own);
                    }
                }
                if mask != 0 {
                    // (x, y, z, |r|²) of each lane
                    let (xy_lo, xy_hi) = (_mm256_unpacklo_pd(dx, dy), _mm256_unpackhi_pd(dx, dy));
                    let (zd_lo, zd_hi) = (_mm256_unpacklo_pd(dz, d2), _mm256_unpackhi_pd(dz, d2));
                    lanes[0] = _mm256_permute2f128_pd::<0x20>(xy_lo, zd_lo);
                    lanes[1] = _mm256_permute2f128_pd::<0x20>(xy_hi, zd_hi);
                    lanes[2] = _mm256_permute2f128_pd::<0x31>(xy_lo, zd_lo);
                    lanes[3] = _mm256_permute2f128_pd::<0x31>(xy_hi, zd_hi);
                    // every lane written, the count advanced by the lanes
                    // kept: no branch on which lanes those are (the loop
                    // over the set bits ended at a data-dependent place)
                    for (l, lane) in lanes.iter().enumerate() {
                        let j = *self.sorted.get_unchecked(lo + k + l);
                        let c = pairs.add(count);
                        _mm256_storeu_pd(std::ptr::addr_of_mut!((*c).vector).cast(), *lane);
                        _mm_storeu_si128(std::ptr::addr_of_mut!((*c).j).cast(), _mm_insert_epi32::<0>(tj, j as i32));
                        order.add(count).write(Key { key: ((j as u64) << 30) | shift_key, at: count as u32 });
                        count += ((mask >> l) & 1) as usize;
                    }
                }
                k += FILTER_LANES;
            }
            found.pairs.set_len(count);
            found.order.set_len(count);
        }
    }

    /// Tests the atoms `lo..hi` in bin order, translated by `t` cell
    /// vectors, as neighbours of the centre; `base` is the translation minus
    /// the centre's wrapped position.
    #[inline(always)]
    fn scan<const FULL: bool, const SIMD: bool>(&self, centre: &Centre, t: [i32; 3], lo: usize, hi: usize, base: [f64; 3], found: &mut Candidates) {
        let len = hi - lo;
        // room for the vector filter's last block of four
        if found.hits.len() < len + FILTER_LANES {
            found.hits.resize(len + FILTER_LANES, 0);
        }
        #[cfg(target_arch = "x86_64")]
        let kept = if SIMD {
            // SAFETY: SIMD is only set by `collect_avx2`, which runs only
            // where the CPU has AVX2; the arrays are padded by FILTER_LANES
            // past the last atom, and `hits` has len + FILTER_LANES slots
            unsafe { filter_avx2(&self.xs, &self.ys, &self.zs, lo, len, base, centre.filter2, &mut found.hits) }
        } else {
            filter_scalar(&self.xs[lo..hi], &self.ys[lo..hi], &self.zs[lo..hi], base, centre.filter2, &mut found.hits)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let kept = filter_scalar(&self.xs[lo..hi], &self.ys[lo..hi], &self.zs[lo..hi], base, centre.filter2, &mut found.hits);
        if kept == 0 {
            return;
        }
        let cell = &self.system.cell;
        let (i, xi, oi) = (centre.i, centre.xi, centre.oi);
        // shift = t + oi − oj: the part that does not depend on the neighbour
        let ti = [t[0] + oi[0], t[1] + oi[1], t[2] + oi[2]];
        let atoms = &self.binned_atoms[lo..hi];
        for q in 0..kept {
            let atom = &atoms[found.hits[q] as usize];
            let j = atom.index;
            if !FULL && (j as usize) < i {
                continue;
            }
            let oj = atom.offset;
            let s = [ti[0] - oj[0], ti[1] - oj[1], ti[2] - oj[2]];
            if j as usize == i {
                if s == [0, 0, 0] {
                    continue;
                }
                // half list: keep the image whose first non-zero shift is positive
                if !FULL && s.iter().find(|&&c| c != 0).is_some_and(|&c| c < 0) {
                    continue;
                }
            }
            let xj = atom.position;
            let (sa, sb, sc) = (s[0] as f64, s[1] as f64, s[2] as f64);
            let mut v = [0.0; 3];
            for (k, vk) in v.iter_mut().enumerate() {
                *vk = xj[k] - xi[k] + sa * cell[0][k] + sb * cell[1][k] + sc * cell[2][k];
            }
            let d2 = dot(v, v);
            if d2 < centre.cutoff2 {
                found.push(j, s, v, d2);
            }
        }
    }
}

/// Lanes of the vector filter (f64 in an AVX2 register).
const FILTER_LANES: usize = 4;

/// Whether the vector filter can run here.
fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::math::cpu::has_avx2()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The squared-distance filter of one run of atoms: writes the positions
/// (in the run) of the atoms with |x + base|² < filter2 to the front of
/// `hits` and returns their count. Branch-free: every index is written, the
/// count advances only for those within reach.
#[inline(always)]
fn filter_scalar(xs: &[f64], ys: &[f64], zs: &[f64], base: [f64; 3], filter2: f64, hits: &mut [u32]) -> usize {
    let hits = &mut hits[..xs.len()];
    let mut kept = 0usize;
    for (k, ((x, y), z)) in xs.iter().zip(ys).zip(zs).enumerate() {
        let (dx, dy, dz) = (x + base[0], y + base[1], z + base[2]);
        let r2 = dx * dx + dy * dy + dz * dz;
        hits[kept] = k as u32;
        kept += (r2 < filter2) as usize;
    }
    kept
}

/// [`filter_scalar`] four atoms at a time over `lo..lo + len` (the same
/// operations in the same order in each lane, so the same atoms pass):
/// the lanes within reach and within the run form a 4-bit mask, and a table
/// gives their positions packed to the front, stored as one block.
///
/// # Safety
/// The CPU has AVX2; `xs`, `ys`, `zs` hold at least `lo + len + 3` values
/// (rounded up to a block of four); `hits` has at least `len + 4` slots.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn filter_avx2(xs: &[f64], ys: &[f64], zs: &[f64], lo: usize, len: usize, base: [f64; 3], filter2: f64, hits: &mut [u32]) -> usize {
    use std::arch::x86_64::*;
    /// positions of the set bits of each 4-bit mask, packed to the front
    const PACK: [[u32; 4]; 16] = {
        let mut table = [[0u32; 4]; 16];
        let mut m = 0;
        while m < 16 {
            let (mut bit, mut n) = (0, 0);
            while bit < 4 {
                if m & (1 << bit) != 0 {
                    table[m][n] = bit as u32;
                    n += 1;
                }
                bit += 1;
            }
            m += 1;
        }
        table
    };
    debug_assert!(lo + len.next_multiple_of(FILTER_LANES) <= xs.len().min(ys.len()).min(zs.len()) && hits.len() >= len + FILTER_LANES);
    // SAFETY: per the contract above: every load reads lanes lo + k .. lo +
    // k + 4 with k < len, inside the padded arrays; every store writes 4
    // slots from kept ≤ k < len, inside `hits`
    unsafe {
        let (bx, by, bz) = (_mm256_set1_pd(base[0]), _mm256_set1_pd(base[1]), _mm256_set1_pd(base[2]));
        let limit = _mm256_set1_pd(filter2);
        let (px, py, pz) = (xs.as_ptr().add(lo), ys.as_ptr().add(lo), zs.as_ptr().add(lo));
        let out = hits.as_mut_ptr();
        let mut kept = 0usize;
        let mut k = 0usize;
        while k < len {
            let dx = _mm256_add_pd(_mm256_loadu_pd(px.add(k)), bx);
            let dy = _mm256_add_pd(_mm256_loadu_pd(py.add(k)), by);
            let dz = _mm256_add_pd(_mm256_loadu_pd(pz.add(k)), bz);
            let r2 = _mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(dx, dx), _mm256_mul_pd(dy, dy)), _mm256_mul_pd(dz, dz));
            let mut mask = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(r2, limit)) as usize;
            if len - k < FILTER_LANES {
                mask &= (1 << (len - k)) - 1;
            }
            let packed = _mm_add_epi32(_mm_loadu_si128(PACK[mask].as_ptr().cast()), _mm_set1_epi32(k as i32));
            _mm_storeu_si128(out.add(kept).cast(), packed);
            kept += mask.count_ones() as usize;
            k += FILTER_LANES;
        }
        kept
    }
}

/// What the scans of one centre share.
struct Centre {
    i: usize,
    /// position as given (the exact test and the output use it)
    xi: [f64; 3],
    /// cell offset that wraps the centre into the cell
    oi: [i32; 3],
    cutoff2: f64,
    filter2: f64,
}

/// `x.floor()` without a call into libm (x86-64 without SSE4.1 has no
/// rounding instruction: six calls an atom were a third of the binning).
/// Exact: below 2^52 in magnitude the truncation through i64 is exact and
/// corrected by one below zero; from 2^52 on every f64 is an integer, and
/// ±∞ and NaN are returned as they are. Only the sign of a zero may differ
/// (+0 for −0), which the binning does not see.
#[inline(always)]
fn floor(x: f64) -> f64 {
    if x.abs() < 4_503_599_627_370_496.0 {
        let t = x as i64 as f64;
        if t > x { t - 1.0 } else { t }
    } else {
        x
    }
}

/// Maps a bin index that may lie outside the grid back into it. Returns the
/// wrapped index and the number of cell vectors crossed, or None when the bin
/// is outside along a non-periodic axis.
#[inline]
fn wrap(index: i64, bins: i64, periodic: bool) -> Option<(i64, i32)> {
    if (0..bins).contains(&index) {
        Some((index, 0))
    } else if periodic {
        Some((index.rem_euclid(bins), index.div_euclid(bins) as i32))
    } else {
        None
    }
}

/// The pairs of one centre before they are sorted into the output.
#[derive(Default)]
struct Candidates {
    /// the pairs in the order the search met them
    pairs: Vec<Candidate>,
    /// (sort key, position in `pairs`): sorted in place instead of the
    /// pairs themselves, 16 bytes a move instead of 48 (the insertion sort
    /// makes about three moves a pair in a solid)
    order: Vec<Key>,
    /// whether a shift too large to pack into a key was seen
    overflow: bool,
    /// `order` as packed u64 keys (key << 6 | position), for the
    /// insertion sort
    packed: Vec<u64>,
    /// a copy of `packed` for the counting sort, or the rank sort's output
    spare: Vec<u64>,
    /// scratch for the branch-free filter of one run of bins
    hits: Vec<u32>,
}

/// Sort key of a candidate: (j, biased shift) packed into 62 bits, and the
/// candidate's position.
#[derive(Clone, Copy)]
struct Key {
    key: u64,
    at: u32,
}

/// One pair found for the current centre. `repr(C)`: the vector scan
/// stores `vector` and `d2` as one 32-byte lane and `j` and `shift` as one
/// 16-byte lane (`SearchContext::scan_plain`).
#[derive(Clone, Copy)]
#[repr(C)]
struct Candidate {
    vector: [f64; 3],
    d2: f64,
    j: u32,
    shift: [i32; 3],
}

/// Shifts in [-SHIFT_BIAS, SHIFT_BIAS) pack into 10 bits each.
const SHIFT_BIAS: i32 = 512;

/// At most this many pairs per centre are sorted by insertion: in a solid
/// the search meets the neighbours nearly in index order (bins and atom
/// indices both follow space), about three moves per pair on si_nl_10k.
const INSERTION_SORT_MAX: usize = 64;

/// From this many pairs on, a centre's candidates are first sorted into
/// ranges of j before the insertion sort (see `Candidates::emit_sorted`).
const BUCKET_SORT_MIN: usize = 40;

impl Candidates {
    fn clear(&mut self) {
        self.pairs.clear();
        self.order.clear();
        self.overflow = false;
    }

    fn len(&self) -> usize {
        self.pairs.len()
    }

    #[inline(always)]
    fn push(&mut self, j: u32, shift: [i32; 3], vector: [f64; 3], d2: f64) {
        // written out (not `shift.map`): the Node binding's build did not
        // inline the array map, ~60 instructions a pair
        let (b0, b1, b2) = ((shift[0] + SHIFT_BIAS) as u32, (shift[1] + SHIFT_BIAS) as u32, (shift[2] + SHIFT_BIAS) as u32);
        // one comparison for the three: a negative biased shift wraps to a
        // large u32
        self.overflow |= (b0 | b1 | b2) >= 2 * SHIFT_BIAS as u32;
        let key = ((j as u64) << 30) | ((b0 as u64 & 1023) << 20) | ((b1 as u64 & 1023) << 10) | (b2 as u64 & 1023);
        self.order.push(Key { key, at: self.pairs.len() as u32 });
        self.pairs.push(Candidate { vector, d2, j, shift });
    }

    /// Appends the candidates to `out` in (j, shift) order.
    /// `simd`: the CPU has AVX2 (then small centres are sorted by rank).
    fn emit_sorted(&mut self, i: u32, n_atoms: usize, simd: bool, out: &mut Pairs) {
        let order = &mut self.order;
        let pairs = &self.pairs;
        let n = order.len();
        if !self.overflow && n <= INSERTION_SORT_MAX && n_atoms <= 1 << PACKED_J_BITS {
            // keys are distinct (one per (j, shift)), so any sort gives the
            // same order. The key (j: at most 26 bits, then the shift's 30)
            // and the position (< 64) packed into one u64, so that an
            // insertion step moves 8 bytes, not a 16-byte `Key` (si_nl_1k:
            // 6.22 → 5.96 M instructions a list).
            let packed = &mut self.packed;
            packed.clear();
            packed.extend(order.iter().map(|k| (k.key << 6) | k.at as u64));
            // From BUCKET_SORT_MIN pairs on, first a stable counting sort
            // into BUCKETS ranges of j (a monotone function of the key),
            // then insertion, which then only moves pairs within a bucket.
            // Why: the search meets neighbours in bin order, not index order
            // (in water64, ~55 pairs a centre took ~500 insertion moves,
            // 7.6 k of 92 k instructions an atom, when the runs were visited
            // in order of displacement). Below, insertion alone: the
            // counting pass costs ~250 instructions a centre plus ~15 a
            // pair, more than the moves it saves (si_nl_1k, 28 pairs: 2.4
            // moves a pair by insertion alone, 0.8 after the buckets; the
            // list 8.29 → 7.54 M instructions without them; water64's 2.77
            // → 2.81 M).
            if n >= BUCKET_SORT_MIN {
                const BUCKETS: usize = 64;
                // j >> s is below BUCKETS for every j < n_atoms
                let s = (usize::BITS - n_atoms.saturating_sub(1).leading_zeros()).saturating_sub(BUCKETS.trailing_zeros());
                let bucket = |p: u64| ((p >> (36 + s)) as usize).min(BUCKETS - 1);
                let mut counts = [0u32; BUCKETS + 1];
                for &p in packed.iter() {
                    counts[bucket(p) + 1] += 1;
                }
                for b in 0..BUCKETS {
                    counts[b + 1] += counts[b];
                }
                self.spare.clear();
                self.spare.extend_from_slice(packed);
                for &p in &self.spare {
                    let b = bucket(p);
                    packed[counts[b] as usize] = p;
                    counts[b] += 1;
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = simd;
            #[cfg(target_arch = "x86_64")]
            if simd && n < BUCKET_SORT_MIN {
                // SAFETY: `simd` is only set where the CPU has AVX2
                unsafe { rank_sort_avx2(packed, &mut self.spare) };
                write_out(pairs, i, self.spare.iter().map(|&p| (p & 63) as usize), n, out);
                return;
            }
            insertion_sort(packed);
            write_out(pairs, i, packed.iter().map(|&p| (p & 63) as usize), n, out);
            return;
        }
        if self.overflow {
            order.sort_unstable_by_key(|k| {
                let c = &pairs[k.at as usize];
                (c.j, c.shift)
            });
        } else {
            order.sort_unstable_by_key(|k| k.key);
        }
        write_out(pairs, i, order.iter().map(|k| k.at as usize), n, out);
    }
}

/// Bits of j in a packed sort key (see `Candidates::emit_sorted`).
const PACKED_J_BITS: u32 = 26;

/// Sorts distinct `keys` (below 2^62) into `sorted` by rank: each key goes
/// to the place given by the number of keys below it, counted four at a
/// time (n²/4 vector comparisons). No branch depends on the keys: the
/// insertion sort's inner loop ends at a data-dependent place about once a
/// pair, a mispredicted branch each time (~28 a centre in silicon). More
/// instructions (si_nl_1k: 5.87 → 6.79 M a list) but less time: CPU time of
/// a list 0.835 → 0.685 ms (si_nl_1k), 9.0 → 7.8 ms (si_nl_10k), old and
/// new `bench_core` interleaved, medians; water64 (55 pairs a centre, the
/// other sorts) unchanged.
///
/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rank_sort_avx2(keys: &mut Vec<u64>, sorted: &mut Vec<u64>) {
    use std::arch::x86_64::*;
    let n = keys.len();
    debug_assert!(keys.iter().all(|&k| k < 1 << 62));
    // padded to whole blocks of four with a key above every key, which
    // counts below none
    keys.resize(n.next_multiple_of(4), i64::MAX as u64);
    sorted.clear();
    sorted.resize(n, 0);
    let blocks = keys.len() / 4;
    let p = keys.as_ptr();
    // SAFETY: loads read blocks of four inside `keys` (padded above); a
    // rank is the number of other keys below a key (distinct keys), so
    // below n, the length of `sorted`
    unsafe {
        for a in 0..n {
            let x = _mm256_set1_epi64x(*p.add(a) as i64);
            let mut below = _mm256_setzero_si256();
            for b in 0..blocks {
                // all lanes −1 where the other key is below x (signed
                // comparison: every key is below 2^62)
                below = _mm256_sub_epi64(below, _mm256_cmpgt_epi64(x, _mm256_loadu_si256(p.add(4 * b).cast())));
            }
            let pair = _mm_add_epi64(_mm256_castsi256_si128(below), _mm256_extracti128_si256::<1>(below));
            let rank = (_mm_cvtsi128_si64(pair) + _mm_extract_epi64::<1>(pair)) as usize;
            *sorted.get_unchecked_mut(rank) = *p.add(a);
        }
    }
    keys.truncate(n);
}

/// Sorts `keys` by insertion (few moves when they are nearly sorted).
/// Unchecked: the bounds checks were half the instructions of the inner
/// loop.
#[inline(always)]
fn insertion_sort(keys: &mut [u64]) {
    let n = keys.len();
    let p = keys.as_mut_ptr();
    for a in 1..n {
        // SAFETY: 0 ≤ b − 1 < b ≤ a < n, the length of `keys`
        unsafe {
            let x = *p.add(a);
            let mut b = a;
            while b > 0 && *p.add(b - 1) > x {
                *p.add(b) = *p.add(b - 1);
                b -= 1;
            }
            *p.add(b) = x;
        }
    }
}

/// Appends the `n` candidates at positions `at` (in that order) to `out`,
/// with first atom `i`: one pass writing the five arrays.
#[inline(always)]
fn write_out(pairs: &[Candidate], i: u32, at: impl Iterator<Item = usize>, n: usize, out: &mut Pairs) {
    out.i.reserve(n);
    out.j.reserve(n);
    out.shifts.reserve(n);
    out.distances.reserve(n);
    out.vectors.reserve(n);
    let (oi, oj, os, od, ov) = (
        &mut out.i.spare_capacity_mut()[..n],
        &mut out.j.spare_capacity_mut()[..n],
        &mut out.shifts.spare_capacity_mut()[..n],
        &mut out.distances.spare_capacity_mut()[..n],
        &mut out.vectors.spare_capacity_mut()[..n],
    );
    let mut written = 0;
    for (q, k) in at.take(n).enumerate() {
        let c = &pairs[k];
        oi[q].write(i);
        oj[q].write(c.j);
        os[q].write(c.shift);
        od[q].write(c.d2.sqrt());
        ov[q].write(c.vector);
        written += 1;
    }
    debug_assert_eq!(written, n, "one position a pair");
    // SAFETY: the first n spare elements of each array were written above
    unsafe {
        let len = out.i.len() + n;
        out.i.set_len(len);
        out.j.set_len(len);
        out.shifts.set_len(len);
        out.distances.set_len(len);
        out.vectors.set_len(len);
    }
}

mod centre;
pub(crate) use centre::{CentreScratch, CentreSearch, PreparedSearch};

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers in [0, 1) for tests.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Brute force over every image within reach, for checking.
    fn brute_force(system: &System, cutoff: f64, full: bool) -> Vec<(u32, u32, [i32; 3])> {
        let m = effective_cell(system);
        let volume = det3(&m).abs();
        let mut reach = [0i32; 3];
        for k in 0..3 {
            if system.pbc[k] {
                let plane = volume / norm(cross(m[(k + 1) % 3], m[(k + 2) % 3]));
                // positions may be far outside the cell: add the spread in fractional units
                let inv = inverse3(&m);
                let fr: Vec<f64> = system.positions.iter().map(|&x| fractional(x, &inv)[k]).collect();
                let spread = fr.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
                    - fr.iter().cloned().fold(f64::INFINITY, f64::min);
                reach[k] = (cutoff / plane + spread).ceil() as i32 + 1;
            }
        }
        let mut out = Vec::new();
        let n = system.size();
        for i in 0..n {
            for j in 0..n {
                for a in -reach[0]..=reach[0] {
                    for b in -reach[1]..=reach[1] {
                        for c in -reach[2]..=reach[2] {
                            let s = [a, b, c];
                            if i == j && s == [0, 0, 0] {
                                continue;
                            }
                            let mut v = [0.0; 3];
                            for k in 0..3 {
                                v[k] = system.positions[j][k] - system.positions[i][k]
                                    + a as f64 * system.cell[0][k]
                                    + b as f64 * system.cell[1][k]
                                    + c as f64 * system.cell[2][k];
                            }
                            if norm(v) < cutoff {
                                let keep = full
                                    || i < j
                                    || (i == j && s.iter().find(|&&x| x != 0).is_some_and(|&x| x > 0));
                                if keep {
                                    out.push((i as u32, j as u32, s));
                                }
                            }
                        }
                    }
                }
            }
        }
        out.sort();
        out
    }

    fn random_system(rng: &mut Lcg, n: usize, pbc: [bool; 3], scale: f64) -> System {
        let mut cell = [[0.0; 3]; 3];
        for (r, row) in cell.iter_mut().enumerate() {
            for (k, v) in row.iter_mut().enumerate() {
                *v = if r == k { scale * (0.7 + 0.6 * rng.next()) } else { scale * 0.5 * (rng.next() - 0.5) };
            }
        }
        let positions = (0..n)
            .map(|_| {
                // fractional coordinates in [-0.5, 1.5): atoms outside the cell on purpose
                let s = [2.0 * rng.next() - 0.5, 2.0 * rng.next() - 0.5, 2.0 * rng.next() - 0.5];
                let mut x = [0.0; 3];
                for k in 0..3 {
                    x[k] = s[0] * cell[0][k] + s[1] * cell[1][k] + s[2] * cell[2][k];
                }
                x
            })
            .collect();
        System::new(vec![1; n], positions, cell, pbc).unwrap()
    }

    #[test]
    fn matches_brute_force_on_random_cells() {
        let mut rng = Lcg(42);
        let pbcs = [[true; 3], [true, false, true], [false; 3], [true, true, false], [false, true, false]];
        for (case, &pbc) in pbcs.iter().cycle().take(20).enumerate() {
            let n = 1 + case % 9;
            let scale = if case % 2 == 0 { 1.5 } else { 4.0 };
            let system = random_system(&mut rng, n, pbc, scale);
            for &(cutoff, full) in &[(3.7, true), (3.7, false), (1.1, true)] {
                let pairs = NeighborList::new(cutoff, full).unwrap().compute(&system).unwrap();
                let mut got: Vec<_> =
                    (0..pairs.len()).map(|p| (pairs.i[p], pairs.j[p], pairs.shifts[p])).collect();
                let sorted_already = got.windows(2).all(|w| w[0] <= w[1]);
                assert!(sorted_already, "pairs are not in canonical order");
                got.sort();
                assert_eq!(got, brute_force(&system, cutoff, full), "case {case} pbc {pbc:?} cutoff {cutoff}");
                for p in 0..pairs.len() {
                    let (i, j, s) = (pairs.i[p] as usize, pairs.j[p] as usize, pairs.shifts[p]);
                    for k in 0..3 {
                        let expected = system.positions[j][k] - system.positions[i][k]
                            + (0..3).map(|r| s[r] as f64 * system.cell[r][k]).sum::<f64>();
                        assert!((pairs.vectors[p][k] - expected).abs() < 1e-12);
                    }
                    assert!((norm(pairs.vectors[p]) - pairs.distances[p]).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn matches_brute_force_on_a_thousand_atoms() {
        let mut rng = Lcg(2024);
        for pbc in [[true; 3], [true, false, true]] {
            let system = random_system(&mut rng, 1000, pbc, 14.0);
            let pairs = NeighborList::new(3.0, true).unwrap().compute(&system).unwrap();
            let got: Vec<_> = (0..pairs.len()).map(|p| (pairs.i[p], pairs.j[p], pairs.shifts[p])).collect();
            assert_eq!(got, brute_force(&system, 3.0, true), "pbc {pbc:?}");
        }
    }

    #[test]
    fn half_list_is_half_of_full_list() {
        let mut rng = Lcg(7);
        let system = random_system(&mut rng, 1200, [true; 3], 30.0);
        let full = NeighborList::new(4.0, true).unwrap().compute(&system).unwrap();
        let half = NeighborList::new(4.0, false).unwrap().compute(&system).unwrap();
        assert_eq!(full.len(), 2 * half.len());
        let mut from_half: Vec<_> = (0..half.len())
            .flat_map(|p| {
                let s = half.shifts[p];
                [(half.i[p], half.j[p], s), (half.j[p], half.i[p], [-s[0], -s[1], -s[2]])]
            })
            .collect();
        from_half.sort();
        let from_full: Vec<_> = (0..full.len()).map(|p| (full.i[p], full.j[p], full.shifts[p])).collect();
        assert_eq!(from_half, from_full);
    }

    #[test]
    fn same_output_for_any_thread_count() {
        let mut rng = Lcg(11);
        // large, and small enough that the chunks are a few atoms each
        for (n, scale) in [(2000, 25.0), (200, 9.0), (40, 5.0)] {
            let system = random_system(&mut rng, n, [true, true, false], scale);
            let list = NeighborList::new(5.0, true).unwrap();
            let serial = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| list.compute(&system).unwrap());
            for threads in [2, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let parallel = pool.install(|| list.compute(&system).unwrap());
                assert_eq!(parallel, serial, "{n} atoms, {threads} threads");
            }
        }
    }

    #[test]
    fn rejects_bad_cutoffs_and_absurd_image_counts() {
        assert!(NeighborList::new(-1.0, true).unwrap_err().to_string().contains("cutoff"));
        assert!(NeighborList::new(f64::NAN, true).is_err());
        let cell = [[1e-4, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let system = System::new(vec![1], vec![[0.0; 3]], cell, [true; 3]).unwrap();
        let e = NeighborList::new(5.0, true).unwrap().compute(&system).unwrap_err();
        assert!(e.to_string().contains("periodic images"), "{e}");
    }

    #[test]
    fn refuses_absurd_cutoffs_and_budgets_before_searching() {
        // two Si atoms in a 3.8 Å primitive cell: a 500 Å cutoff means ~3e7 neighbours per atom
        let cell = [[0.0, 2.7, 2.7], [2.7, 0.0, 2.7], [2.7, 2.7, 0.0]];
        let system = System::new(vec![14, 14], vec![[0.0; 3], [1.35; 3]], cell, [true; 3]).unwrap();
        let e = NeighborList::new(500.0, true).unwrap().compute(&system).unwrap_err();
        assert!(e.to_string().contains("neighbours per atom"), "{e}");
        let list = NeighborList::new(20.0, true).unwrap();
        let estimate = list.estimate_pairs(&system).unwrap();
        let exact = list.compute(&system).unwrap().len() as f64;
        assert!((estimate / exact - 1.0).abs() < 0.1, "estimate {estimate} vs {exact}");
        let e = list.compute_within(&system, MemoryBudget { bytes: 10_000 }).err().expect("refused");
        assert!(matches!(e, Error::Memory(_)) && e.to_string().contains("neighbour list"), "{e}");
        // atoms too far away for 32-bit image offsets
        let far = System::new(vec![14, 14], vec![[0.0; 3], [1e10, 0.0, 0.0]], cell, [true; 3]).unwrap();
        let e = NeighborList::new(3.0, true).unwrap().compute(&far).unwrap_err();
        assert!(e.to_string().contains("cells away"), "{e}");
    }

    /// The budget counts the real pairs: a bound from the bins that is never
    /// below the exact count, and the exact count where the bound does not fit.
    #[test]
    fn pair_counts_bound_and_match_the_search() {
        let mut rng = Lcg(11);
        for (n, pbc, scale) in [(50, [true; 3], 6.0), (300, [true, false, true], 9.0), (200, [false; 3], 10.0), (700, [true; 3], 12.0)] {
            let system = random_system(&mut rng, n, pbc, scale);
            for full in [true, false] {
                let list = NeighborList::new(3.1, full).unwrap();
                let exact = list.compute(&system).unwrap().len() as f64;
                assert_eq!(list.count_pairs(&system, 0.0).unwrap(), exact);
                let bound = list.count_pairs(&system, f64::INFINITY).unwrap();
                assert!(bound >= exact, "bound {bound} below {exact}");
            }
        }
    }

    /// The separable box sums of `candidate_bound` give the bound of the
    /// triple loop over every bin's reach (periodic, mixed and open axes,
    /// and a cell thinner than the cutoff, where bins are reached twice).
    #[test]
    fn candidate_bound_equals_the_triple_loop() {
        fn triple_loop(grid: &Grid, start: &[usize]) -> f64 {
            let [nx, ny, nz] = grid.bins;
            let mut total = 0.0;
            for bin in 0..(nx * ny * nz) as usize {
                let occupied = start[bin + 1] - start[bin];
                if occupied == 0 {
                    continue;
                }
                let b = [bin as i64 / (ny * nz), (bin as i64 / nz) % ny, bin as i64 % nz];
                let mut reach = 0usize;
                for dx in -grid.range[0]..=grid.range[0] {
                    let Some((x, _)) = wrap(b[0] + dx, nx, grid.pbc[0]) else { continue };
                    for dy in -grid.range[1]..=grid.range[1] {
                        let Some((y, _)) = wrap(b[1] + dy, ny, grid.pbc[1]) else { continue };
                        let row = ((x * ny + y) * nz) as usize;
                        for dz in -grid.range[2]..=grid.range[2] {
                            let Some((z, _)) = wrap(b[2] + dz, nz, grid.pbc[2]) else { continue };
                            reach += start[row + z as usize + 1] - start[row + z as usize];
                        }
                    }
                }
                total += occupied as f64 * reach as f64;
            }
            total
        }
        let mut rng = Lcg(17);
        for (n, pbc, scale, cutoff) in [
            (50, [true; 3], 6.0, 3.1),
            (300, [true, false, true], 9.0, 3.1),
            (200, [false; 3], 10.0, 2.5),
            (700, [true; 3], 12.0, 3.1),
            (40, [true; 3], 3.0, 5.0),
        ] {
            let system = random_system(&mut rng, n, pbc, scale);
            let list = NeighborList::new(cutoff, true).unwrap();
            let inverse = inverse3(&effective_cell(&system));
            let frac: Vec<[f64; 3]> = system.positions.iter().map(|&x| fractional(x, &inverse)).collect();
            let grid = list.grid(&system, &frac).unwrap();
            let bins = Binning::new(&system, &grid, &frac);
            let (fast, slow) = (list.candidate_bound(&grid, &bins.start), triple_loop(&grid, &bins.start));
            assert_eq!(fast.to_bits(), slow.to_bits(), "{n} atoms, pbc {pbc:?}: {fast} != {slow}");
            assert!(fast > 0.0);
        }
    }

    fn same_bits(a: &Pairs, b: &Pairs) -> bool {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let flat = |v: &[[f64; 3]]| v.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
        a.i == b.i
            && a.j == b.j
            && a.shifts == b.shifts
            && bits(&a.distances) == bits(&b.distances)
            && flat(&a.vectors) == flat(&b.vectors)
    }

    /// The AVX2 filter (where the CPU has it) gives the scalar filter's
    /// pairs, order and values bit for bit; so do output arrays taken from a
    /// reuse source whose memory holds garbage (the Node binding's pool),
    /// serial and parallel.
    #[test]
    fn vector_filter_and_reused_outputs_give_the_plain_output() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        static REUSE: AtomicBool = AtomicBool::new(false);
        static HANDED: AtomicUsize = AtomicUsize::new(0);
        fn garbage(layout: std::alloc::Layout) -> Option<std::ptr::NonNull<u8>> {
            if !REUSE.load(Ordering::SeqCst) {
                return None;
            }
            // SAFETY: a non-zero layout (reusable asks for capacity > 0);
            // every byte is set, NaN bits in the f64 arrays
            let ptr = unsafe {
                let ptr = std::alloc::alloc(layout);
                if !ptr.is_null() {
                    std::ptr::write_bytes(ptr, 0xff, layout.size());
                }
                ptr
            };
            HANDED.fetch_add(1, Ordering::SeqCst);
            std::ptr::NonNull::new(ptr)
        }
        crate::tensor::buffer::set_raw_reuse_source(garbage);
        let mut rng = Lcg(99);
        let (mut asked, mut configurations) = (0, 0);
        let pbcs = [[true; 3], [true, false, true], [false; 3]];
        for (case, &pbc) in pbcs.iter().cycle().take(6).enumerate() {
            let (n, scale) = if case % 2 == 0 { (1500, 22.0) } else { (300, 7.0) };
            let system = random_system(&mut rng, n, pbc, scale);
            for (cutoff, full) in [(5.0, true), (5.0, false), (2.2, true)] {
                let list = NeighborList::new(cutoff, full).unwrap();
                let budget = MemoryBudget { bytes: 1 << 34 };
                for threads in [1, 2] {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    REUSE.store(false, Ordering::SeqCst);
                    let plain = pool.install(|| list.compute_with(&system, budget, false).unwrap());
                    assert!(!plain.is_empty());
                    let vector = pool.install(|| list.compute_with(&system, budget, true).unwrap());
                    assert!(same_bits(&plain, &vector), "case {case}, cutoff {cutoff}, full {full}, {threads} threads: vector filter");
                    REUSE.store(true, Ordering::SeqCst);
                    let before = HANDED.load(Ordering::SeqCst);
                    let reused = pool.install(|| list.compute_with(&system, budget, false).unwrap());
                    REUSE.store(false, Ordering::SeqCst);
                    // where the first centres' growth already holds the
                    // estimate, the serial search asks for nothing
                    asked += (HANDED.load(Ordering::SeqCst) > before) as usize;
                    configurations += 1;
                    assert!(same_bits(&plain, &reused), "case {case}, cutoff {cutoff}, full {full}, {threads} threads: reused outputs");
                }
            }
        }
        assert!(2 * asked > configurations, "the reuse source was asked in {asked} of {configurations} searches");
    }

    /// The binning's floor is libm's, bit for bit, but for the sign of a zero.
    #[test]
    fn floor_without_libm_is_floor() {
        let mut rng = Lcg(7);
        let mut values = vec![
            0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1.0 - f64::EPSILON / 2.0, -1.0 + f64::EPSILON / 2.0, 1e9, -1e9 - 0.25,
            4_503_599_627_370_495.5, -4_503_599_627_370_495.5, 4_503_599_627_370_496.0, -4_503_599_627_370_497.0,
            1e300, -1e300, f64::MIN_POSITIVE, -f64::MIN_POSITIVE, f64::INFINITY, f64::NEG_INFINITY,
        ];
        for _ in 0..10_000 {
            let scale = 10f64.powi((rng.next() * 40.0) as i32 - 20);
            values.push((rng.next() - 0.5) * scale);
        }
        for x in values {
            let (mine, libm) = (floor(x), x.floor());
            assert!(mine.to_bits() == libm.to_bits() || (mine == 0.0 && libm == 0.0), "floor({x:e}): {mine:e} against {libm:e}");
        }
        assert!(floor(f64::NAN).is_nan());
    }

    /// Atoms inside the cell (every offset zero): the full list's AVX2 scan
    /// does the exact test itself, four atoms at a time. Its pairs and every
    /// bit of their values are the scalar path's, and its pairs the brute
    /// force's (periodic, mixed and open axes; cells thinner than the cutoff,
    /// where an atom meets its own images; duplicated positions).
    #[test]
    fn atoms_inside_the_cell_give_the_scalar_output() {
        let mut rng = Lcg(21);
        let mut plain_seen = 0;
        for pbc in [[true; 3], [true, false, true], [false; 3]] {
            for (n, scale, cutoff) in [(1500, 22.0, 5.0), (300, 7.0, 3.3), (40, 4.0, 5.0), (6, 2.0, 3.0)] {
                let base = random_system(&mut rng, n, pbc, scale);
                let cell = base.cell;
                // fractional in the search's effective cell (a non-periodic
                // row replaced by a unit normal), where the offsets are taken
                let m = effective_cell(&base);
                let mut positions: Vec<[f64; 3]> = (0..n)
                    .map(|_| {
                        // away from the faces, so that rounding never wraps an atom
                        let f = [0.01 + 0.98 * rng.next(), 0.01 + 0.98 * rng.next(), 0.01 + 0.98 * rng.next()];
                        let mut x = [0.0; 3];
                        for k in 0..3 {
                            x[k] = f[0] * m[0][k] + f[1] * m[1][k] + f[2] * m[2][k];
                        }
                        x
                    })
                    .collect();
                // two atoms at the same place: a pair at distance 0 that is not a self pair
                positions[n - 1] = positions[0];
                let system = System::new(vec![14; n], positions, cell, pbc).unwrap();
                let list = NeighborList::new(cutoff, true).unwrap();
                let inverse = inverse3(&effective_cell(&system));
                let frac: Vec<[f64; 3]> = system.positions.iter().map(|&x| fractional(x, &inverse)).collect();
                let grid = list.grid(&system, &frac).unwrap();
                let bins = Binning::new(&system, &grid, &frac);
                plain_seen += SearchContext::new(&list, &system, &grid, &bins, true).plain as usize;
                let budget = MemoryBudget { bytes: 1 << 34 };
                for threads in [1, 2] {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    let scalar = pool.install(|| list.compute_with(&system, budget, false).unwrap());
                    let vector = pool.install(|| list.compute_with(&system, budget, true).unwrap());
                    assert!(same_bits(&scalar, &vector), "{n} atoms, pbc {pbc:?}, {threads} threads");
                    let got: Vec<_> = (0..vector.len()).map(|p| (vector.i[p], vector.j[p], vector.shifts[p])).collect();
                    assert_eq!(got, brute_force(&system, cutoff, true), "{n} atoms, pbc {pbc:?}");
                }
            }
        }
        assert_eq!(plain_seen, 12);
    }

    /// The vector filter's kept positions: those of the scalar filter, for
    /// every run length and offset (masked tails, reads past the run).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_filter_keeps_the_scalar_filters_atoms() {
        if !simd_available() {
            return;
        }
        let mut rng = Lcg(3);
        let n = 40;
        let pad = |v: Vec<f64>| v.into_iter().chain([0.0; FILTER_LANES]).collect::<Vec<f64>>();
        let (xs, ys, zs) = (
            pad((0..n).map(|_| 4.0 * rng.next()).collect()),
            pad((0..n).map(|_| 4.0 * rng.next()).collect()),
            pad((0..n).map(|_| 4.0 * rng.next()).collect()),
        );
        let base = [-2.0, -2.0, -2.0];
        let mut some_kept = false;
        for lo in 0..n {
            for len in 0..=(n - lo) {
                let (mut a, mut b) = (vec![0u32; len + FILTER_LANES], vec![0u32; len + FILTER_LANES]);
                let ka = filter_scalar(&xs[lo..lo + len], &ys[lo..lo + len], &zs[lo..lo + len], base, 2.0, &mut a);
                // SAFETY: AVX2 checked above; arrays padded, `b` has len + 4 slots
                let kb = unsafe { filter_avx2(&xs, &ys, &zs, lo, len, base, 2.0, &mut b) };
                assert_eq!(a[..ka], b[..kb], "lo {lo} len {len}");
                some_kept |= ka > 0 && ka < len;
            }
        }
        assert!(some_kept);
    }

    /// Issue 24 item 3: a dense cluster inside a large periodic cell. The
    /// cell's average density gave a few thousand pairs; there are 4e6.
    #[test]
    fn a_dense_cluster_in_a_large_cell_is_budgeted_by_its_real_pairs() {
        let mut rng = Lcg(5);
        let n = 2000;
        let positions: Vec<[f64; 3]> = (0..n).map(|_| [2.0 * rng.next(), 2.0 * rng.next(), 2.0 * rng.next()]).collect();
        let cell = [[100.0, 0.0, 0.0], [0.0, 100.0, 0.0], [0.0, 0.0, 100.0]];
        let system = System::new(vec![29; n], positions, cell, [true; 3]).unwrap();
        let list = NeighborList::new(4.0, true).unwrap();
        assert!(list.estimate_pairs(&system).unwrap() < 1e4);
        assert_eq!(list.count_pairs(&system, 1e5).unwrap(), (n * (n - 1)) as f64);
        // 4e6 pairs × 104 bytes: refused under 100 MB before anything is stored
        let e = list.compute_within(&system, MemoryBudget { bytes: 100 << 20 }).unwrap_err();
        assert!(matches!(e, Error::Memory(_)) && e.to_string().contains("3.998e6 pairs"), "{e}");
        assert_eq!(list.compute_within(&system, MemoryBudget { bytes: 1 << 30 }).unwrap().len(), n * (n - 1));
    }
}
