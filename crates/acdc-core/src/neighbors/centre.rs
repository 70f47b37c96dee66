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
    /// two instead of 25.
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
        // bin (the untranslated one) and move outwards
        for (k, axis_runs) in [runs_x, runs_y].into_iter().enumerate() {
            let own = axis_runs.iter().position(|r| r.t == 0 && r.first == b[k]).unwrap_or(0);
            let order = &mut scratch.order[k];
            order.clear();
            order.push(own);
            for d in 1..axis_runs.len() {
                if d <= own {
                    order.push(own - d);
                }
                if own + d < axis_runs.len() {
                    order.push(own + d);
                }
            }
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
