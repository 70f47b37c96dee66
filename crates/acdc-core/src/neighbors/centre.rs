//! The neighbour search one centre at a time, for a caller that uses each
//! centre's pairs at once and never needs the whole list (the SOAP
//! power spectrum's values path).
//!
//! Why: writing every pair of a system into the five arrays of [`Pairs`],
//! growing and concatenating them, and reading them back per centre cost
//! about a tenth of a values call (si512: the emitted list, its copies and
//! the binning done twice for the budget bound). Here the binning is made
//! once per system, and each centre's pairs are searched into a small
//! per-thread [`Pairs`] right where they are expanded. The pairs of a
//! centre are those of [`NeighborList::compute`] for that centre, in the
//! same (j, shift) order and with the same bits (the same search and the
//! same sort, `search_centre`), so sums over them in list order are the
//! same sums.
use super::*;

/// A system binned for the per-centre search (see [`NeighborList::prepare`]).
pub(crate) struct PreparedSearch {
    list: NeighborList,
    grid: Grid,
    bins: Binning,
}

/// The per-centre search of one prepared system.
pub(crate) struct CentreSearch<'a> {
    ctx: SearchContext<'a>,
}

/// Per-thread buffers of [`CentreSearch`].
#[derive(Default)]
pub(crate) struct CentreScratch {
    found: Candidates,
    pairs: Pairs,
    /// (x, y) row order of the presence search, per axis
    order: [Vec<usize>; 2],
}

impl NeighborList {
    /// Checks `system` as [`NeighborList::compute_within`] does (cutoff,
    /// positions, cell, density, the search's own arrays against `budget`)
    /// and bins it; None for a system without atoms. Full lists only.
    pub(crate) fn prepare(&self, system: &System, budget: MemoryBudget) -> Result<Option<PreparedSearch>> {
        assert!(self.full, "the per-centre search gives full lists");
        Ok(self.binned(system, budget)?.map(|(grid, bins)| PreparedSearch { list: *self, grid, bins }))
    }
}

impl PreparedSearch {
    /// The pairs of the system's full list, as [`NeighborList::count_pairs`]
    /// counts them (the cell list's bound when it is at most `max_pairs`,
    /// else the exact count), without binning again.
    pub(crate) fn count_pairs(&self, system: &System, max_pairs: f64) -> f64 {
        let bound = self.list.candidate_bound(&self.grid, &self.bins.start);
        if bound <= max_pairs {
            return bound;
        }
        SearchContext::new(&self.list, system, &self.grid, &self.bins, simd_available()).count_pairs() as f64
    }

    /// A cruder bound than [`PreparedSearch::count_pairs`]'s, without its
    /// box sums (4 % of a search in a solid): every atom scans at most the
    /// fullest bin's atoms in each bin it visits.
    pub(crate) fn crude_bound(&self) -> f64 {
        let fullest = self.bins.start.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0) as f64;
        let visited: f64 = (0..3).map(|k| (2 * self.grid.range[k] + 1) as f64).product();
        self.bins.offsets.len() as f64 * fullest * visited
    }

    /// The search over `system` (the system this was prepared for).
    pub(crate) fn search<'a>(&'a self, system: &'a System) -> CentreSearch<'a> {
        CentreSearch { ctx: SearchContext::new(&self.list, system, &self.grid, &self.bins, simd_available()) }
    }
}

impl CentreSearch<'_> {
    /// The pairs of centre `i`: exactly the entries of the full list with
    /// first atom `i`, in the list's order, in `scratch` (overwritten).
    pub(crate) fn pairs_of<'s>(&self, i: usize, scratch: &'s mut CentreScratch) -> &'s Pairs {
        let out = &mut scratch.pairs;
        out.i.clear();
        out.j.clear();
        out.shifts.clear();
        out.distances.clear();
        out.vectors.clear();
        self.ctx.search_centre(i, out, &mut scratch.found);
        out
    }

    /// Marks in `seen` (indexed by `species_index` of the atoms) the species
    /// of the neighbours of centre `i` (pairs of the full list); stops as
    /// soon as `wanted` species are marked. Returns the number marked.
    ///
    /// Why: which species occur around each centre decides the output's
    /// rows, which are assigned before the centres are expanded. The rows
    /// of bins nearest the centre are scanned first, so in a mixture (water:
    /// an H within 1 Å of every O) the search usually stops after a row or
    /// two instead of 9.
    pub(crate) fn species_within(&self, i: usize, species_index: &[usize], wanted: usize, seen: &mut [bool], scratch: &mut CentreScratch) -> usize {
        #[cfg(target_arch = "x86_64")]
        if self.ctx.simd {
            // SAFETY: `simd` is only set when the CPU has AVX2
            return unsafe { self.species_within_avx2(i, species_index, wanted, seen, scratch) };
        }
        self.species_within_generic::<false>(i, species_index, wanted, seen, scratch)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn species_within_avx2(&self, i: usize, species_index: &[usize], wanted: usize, seen: &mut [bool], scratch: &mut CentreScratch) -> usize {
        self.species_within_generic::<true>(i, species_index, wanted, seen, scratch)
    }

    #[inline(always)]
    fn species_within_generic<const SIMD: bool>(
        &self,
        i: usize,
        species_index: &[usize],
        wanted: usize,
        seen: &mut [bool],
        scratch: &mut CentreScratch,
    ) -> usize {
        let ctx = &self.ctx;
        let (centre, b, wi) = ctx.centre(i);
        let found = &mut scratch.found;
        found.clear();
        let runs = |k: usize| &ctx.runs[k][ctx.run_start[k][b[k]]..ctx.run_start[k][b[k] + 1]];
        let (runs_x, runs_y, runs_z) = (runs(0), runs(1), runs(2));
        // along x and y every run is one bin: start from the centre's own
        // bin (the untranslated one) and move outwards (the runs are
        // tabulated in bin order, so by displacement d = bin + t·bins − own)
        for (k, axis_runs) in [runs_x, runs_y].into_iter().enumerate() {
            let bins = ctx.grid.bins[k];
            let distance = |r: &super::Run| (r.first as i64 + r.t as i64 * bins - b[k] as i64).abs();
            let order = &mut scratch.order[k];
            order.clear();
            order.extend(0..axis_runs.len());
            order.sort_by_key(|&q| distance(&axis_runs[q]));
        }
        let mut marked = 0;
        let mut checked = 0;
        for &x in &scratch.order[0] {
            for &y in &scratch.order[1] {
                ctx.scan_row::<true, SIMD>(&centre, wi, &runs_x[x], &runs_y[y], runs_z, found);
                for c in &found.pairs[checked..] {
                    let s = species_index[c.j as usize];
                    if !seen[s] {
                        seen[s] = true;
                        marked += 1;
                    }
                }
                checked = found.pairs.len();
                if marked >= wanted {
                    return marked;
                }
            }
        }
        marked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random systems: orthogonal and skewed cells, every periodicity, atoms
    /// inside and outside the cell, cells thinner than the cutoff, a −0.0
    /// coordinate, dense ones (more than 64 pairs a centre: the other sort),
    /// three species.
    fn systems() -> Vec<System> {
        let mut state = 0x5eed_u64;
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut out = Vec::new();
        for case in 0..24 {
            let n = [1, 2, 7, 40, 150, 300][case % 6];
            let scale = if case % 5 == 0 && n <= 40 { 2.0 } else { 4.0 + 8.0 * next() };
            let skew = if case % 3 == 0 { 0.0 } else { 0.4 };
            let cell = [[scale, 0.0, 0.0], [skew * scale, scale * (0.8 + 0.4 * next()), 0.0], [0.3 * skew * scale, -skew * scale, scale]];
            let pbc = [case % 2 == 0 || case % 7 == 0, case % 4 < 2, case % 8 != 3];
            let spread = if case % 4 == 1 { 1.6 } else { 1.0 };
            let mut positions: Vec<[f64; 3]> = (0..n)
                .map(|_| {
                    let f = [spread * next() - 0.1 * (spread - 1.0), spread * next(), next()];
                    let mut x = [0.0; 3];
                    for (k, xk) in x.iter_mut().enumerate() {
                        *xk = f[0] * cell[0][k] + f[1] * cell[1][k] + f[2] * cell[2][k];
                    }
                    x
                })
                .collect();
            if case % 6 == 2 {
                positions[0][1] = -0.0;
            }
            let types = (0..n).map(|a| [1, 8, 29][(a * 7 + case) % 3]).collect();
            out.push(System::new(types, positions, cell, pbc).unwrap());
        }
        out
    }

    /// Each centre's pairs from the per-centre search are the full list's
    /// pairs of that centre, in the same order, bit for bit; and the species
    /// marked around it are those of the list's pairs, whether the search
    /// stops early or scans everything.
    #[test]
    fn per_centre_pairs_and_species_are_the_lists() {
        let mut checked = 0;
        for system in systems() {
            for cutoff in [1.5, 3.0, 5.0] {
                let list = NeighborList::new(cutoff, true).unwrap();
                let all = list.compute(&system).unwrap();
                let prepared = list.prepare(&system, MemoryBudget::global()).unwrap().unwrap();
                let search = prepared.search(&system);
                let mut scratch = CentreScratch::default();
                let species: Vec<usize> = system.types.iter().map(|&t| [1, 8, 29].iter().position(|&s| s == t).unwrap()).collect();
                let mut start = 0;
                for i in 0..system.size() {
                    let end = start + all.i[start..].iter().take_while(|&&c| c as usize == i).count();
                    let mine = search.pairs_of(i, &mut scratch).clone();
                    assert_eq!(mine.len(), end - start, "centre {i}, cutoff {cutoff}");
                    assert!(mine.i.iter().all(|&c| c as usize == i));
                    assert_eq!(mine.j, all.j[start..end]);
                    assert_eq!(mine.shifts, all.shifts[start..end]);
                    for q in 0..mine.len() {
                        assert_eq!(mine.distances[q].to_bits(), all.distances[start + q].to_bits());
                        assert_eq!(mine.vectors[q].map(f64::to_bits), all.vectors[start + q].map(f64::to_bits));
                    }
                    let mut expected = [false; 3];
                    expected[species[i]] = true;
                    for &j in &all.j[start..end] {
                        expected[species[j as usize]] = true;
                    }
                    for wanted in [1, 2, 3] {
                        let mut seen = [false; 3];
                        seen[species[i]] = true;
                        let marked = search.species_within(i, &species, wanted, &mut seen, &mut scratch);
                        assert_eq!(marked, seen.iter().filter(|&&x| x).count() - 1);
                        if marked < wanted {
                            // a full scan: exactly the list's species
                            assert_eq!(seen, expected, "centre {i}, cutoff {cutoff}");
                        } else {
                            assert!(seen.iter().zip(&expected).all(|(&s, &e)| !s || e));
                        }
                        if wanted >= 2 {
                            assert_eq!(seen, expected, "centre {i}, cutoff {cutoff}, wanted {wanted}");
                        }
                    }
                    checked += end - start;
                    start = end;
                }
                assert_eq!(start, all.len());
            }
        }
        assert!(checked > 100_000, "{checked} pairs checked");
    }
}
