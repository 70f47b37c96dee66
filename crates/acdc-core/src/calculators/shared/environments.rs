//! Neighbour lists and species of a batch of systems, which species occur
//! around which centre, and the memory this computation holds. Centre and key
//! selection are in `selection.rs`; the SOAP expansion of every centre in
//! `soap/expand.rs`.
use rayon::prelude::*;

use super::options::{ComputeOptions, GradientFlags};
use crate::error::{Error, Result};
use crate::budget::MemoryBudget;
use crate::neighbors::{NeighborList, Pairs, PreparedSearch, PAIR_BYTES};
use crate::system::System;

/// Everything about a batch of systems that does not depend on the basis.
pub struct Environments<'a> {
    /// The systems.
    pub systems: &'a [System],
    /// Sorted distinct species over all systems.
    pub species: Vec<i32>,
    /// Full neighbour list of each system.
    pub pairs: Vec<Pairs>,
    /// For system k, pairs of centre i are `starts[k][i]..starts[k][i + 1]`.
    pub starts: Vec<Vec<usize>>,
    /// For system k, the species index of each atom.
    pub species_index: Vec<Vec<usize>>,
    /// The memory budget this computation is checked against.
    pub budget: MemoryBudget,
    /// Bytes this computation already holds or has been allowed (neighbour
    /// lists, then expansions and outputs): every check is against the sum.
    committed: std::sync::Mutex<f64>,
    /// Cancellation flag of the computation (see [`ComputeOptions::cancel`]).
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl<'a> Environments<'a> {
    /// Builds neighbour lists (in parallel over systems) with `cutoff` in Å,
    /// within the process-wide memory budget.
    pub fn new(systems: &'a [System], cutoff: f64) -> Result<Environments<'a>> {
        Environments::new_within(systems, cutoff, MemoryBudget::global(), 0.0)
    }

    /// Builds neighbour lists within the budget of these options
    /// (`max_memory`, else the process-wide budget). `bytes_per_pair` is
    /// what the calculator will hold for each pair after the search (e.g.
    /// factored gradients), so that the whole estimate is checked before the
    /// search starts.
    pub fn for_options(systems: &'a [System], cutoff: f64, options: &ComputeOptions, bytes_per_pair: f64) -> Result<Environments<'a>> {
        let mut env = Environments::new_within(systems, cutoff, MemoryBudget::or_global(options.max_memory), bytes_per_pair)?;
        env.cancel = options.cancel.clone();
        options.check_cancelled()?;
        Ok(env)
    }

    /// Builds neighbour lists with an explicit memory budget, checked for the
    /// sum of the estimated pair counts of all systems (times the search's
    /// own and the caller's `bytes_per_pair`) before any search.
    pub fn new_within(systems: &'a [System], cutoff: f64, budget: MemoryBudget, bytes_per_pair: f64) -> Result<Environments<'a>> {
        let mut species: Vec<i32> = systems.iter().flat_map(|s| s.types.iter().copied()).collect();
        species.sort_unstable();
        species.dedup();
        let list = NeighborList::new(cutoff, true)?;
        // pairs from the real positions (a cell-list bound, or the exact
        // count where the bound does not fit), never the average density:
        // a dense cluster inside a large cell has as many pairs as in vacuum
        let per_pair = 2.0 * PAIR_BYTES as f64 + bytes_per_pair;
        let max_pairs = budget.bytes as f64 / per_pair;
        let mut estimate = 0.0;
        for (k, s) in systems.iter().enumerate() {
            estimate += list.count_pairs(s, (max_pairs - estimate).max(0.0)).map_err(|e| prefix(k, e))?;
            if estimate > max_pairs {
                break;
            }
        }
        check_pair_budget(&budget, cutoff, systems.len(), estimate, per_pair)?;
        let pairs: Vec<Pairs> = systems
            .par_iter()
            .enumerate()
            .map(|(k, s)| list.compute_within(s, budget).map_err(|e| prefix(k, e)))
            .collect::<Result<_>>()?;
        let starts = systems
            .iter()
            .zip(&pairs)
            .map(|(s, p)| {
                let mut start = vec![0usize; s.size() + 1];
                for &i in &p.i {
                    start[i as usize + 1] += 1;
                }
                for i in 0..s.size() {
                    start[i + 1] += start[i];
                }
                start
            })
            .collect();
        let species_index = systems
            .iter()
            .map(|s| s.types.iter().map(|t| species.binary_search(t).unwrap_or(0)).collect())
            .collect();
        let held = pairs.iter().map(|p| p.len() as f64 * PAIR_BYTES as f64).sum::<f64>();
        Ok(Environments { systems, species, pairs, starts, species_index, budget, committed: std::sync::Mutex::new(held), cancel: None })
    }

    /// The species, budget and checks of [`Environments::for_options`], but
    /// no neighbour lists: `pairs` and `starts` are empty, and each system
    /// is binned for a per-centre search instead (one entry per system,
    /// None for a system without atoms), for a caller that searches each
    /// centre's pairs where it uses them (the power spectrum's values path).
    /// The inputs refused, and the budget's refusals, are those of
    /// [`Environments::for_options`]: the same checks of every system, and
    /// the full list's pair count against the budget as if the list were
    /// built (a dense cluster is refused here as there, before any work).
    pub(crate) fn for_centre_search(
        systems: &'a [System],
        cutoff: f64,
        options: &ComputeOptions,
    ) -> Result<(Environments<'a>, Vec<Option<PreparedSearch>>)> {
        let budget = MemoryBudget::or_global(options.max_memory);
        let mut species: Vec<i32> = systems.iter().flat_map(|s| s.types.iter().copied()).collect();
        species.sort_unstable();
        species.dedup();
        let list = NeighborList::new(cutoff, true)?;
        let prepared: Vec<Option<PreparedSearch>> = systems
            .iter()
            .enumerate()
            .map(|(k, s)| list.prepare(s, budget).map_err(|e| prefix(k, e)))
            .collect::<Result<_>>()?;
        let per_pair = 2.0 * PAIR_BYTES as f64;
        let max_pairs = budget.bytes as f64 / per_pair;
        let mut estimate = 0.0;
        // when the crude bound fits, so does the pair count (as in the search)
        let crude: f64 = prepared.iter().flatten().map(PreparedSearch::crude_bound).sum();
        let fits = crude <= max_pairs;
        for (s, p) in systems.iter().zip(&prepared).filter(|_| !fits) {
            if let Some(p) = p {
                estimate += p.count_pairs(s, (max_pairs - estimate).max(0.0));
            }
            if estimate > max_pairs {
                break;
            }
        }
        check_pair_budget(&budget, cutoff, systems.len(), estimate, per_pair)?;
        let species_index = systems
            .iter()
            .map(|s| s.types.iter().map(|t| species.binary_search(t).unwrap_or(0)).collect())
            .collect();
        // what is held: the binned systems (the search's per-atom arrays)
        let held = systems.iter().map(|s| s.size() as f64 * 160.0).sum::<f64>();
        let env = Environments {
            systems,
            species,
            pairs: Vec::new(),
            starts: Vec::new(),
            species_index,
            budget,
            committed: std::sync::Mutex::new(held),
            cancel: options.cancel.clone(),
        };
        options.check_cancelled()?;
        Ok((env, prepared))
    }

    /// Pairs of centre `i` of system `k` (images included).
    pub fn pair_count(&self, k: usize, i: usize) -> usize {
        self.starts[k][i + 1] - self.starts[k][i]
    }

    /// Distinct neighbour atoms of centre `i` of system `k`, the centre's
    /// own images excluded: the gradient rows a centre contributes (pairs of
    /// a centre are sorted by neighbour).
    pub fn distinct_neighbors(&self, k: usize, i: usize) -> usize {
        let j = &self.pairs[k].j[self.starts[k][i]..self.starts[k][i + 1]];
        let mut count = 0;
        let mut last = u32::MAX;
        for &jj in j {
            if jj != last && jj as usize != i {
                count += 1;
            }
            last = jj;
        }
        count
    }

    /// Checks `bytes` more for `what`, on top of what this computation
    /// already holds, against the budget; on success they count as held.
    pub fn check_budget(&self, what: &str, bytes: f64) -> Result<()> {
        let mut committed = self.committed.lock().unwrap_or_else(|e| e.into_inner());
        let total = *committed + bytes;
        if total > self.budget.bytes as f64 && bytes <= self.budget.bytes as f64 {
            // name the part that tipped it over, and what was held already
            return self.budget.check(
                &format!("{what} (on top of {} already held by this computation)", crate::budget::format_bytes(*committed)),
                total,
            );
        }
        self.budget.check(what, total)?;
        *committed = total;
        Ok(())
    }

    /// Checks the output of a calculator against the budget before it is
    /// allocated: `floats_per_row` values for each of `rows_per_centre(present
    /// species count)` rows of every centre, times the gradient rows (3 per
    /// distinct neighbour and the centre for positions, 9 for strain).
    pub fn check_output(
        &self,
        what: &str,
        centres: &[(usize, usize)],
        flags: GradientFlags,
        floats_per_centre: impl Fn(usize) -> f64,
    ) -> Result<()> {
        let mut total = 0.0;
        for &(k, i) in centres {
            let mut present = vec![false; self.species.len()];
            present[self.species_index[k][i]] = true;
            for p in self.starts[k][i]..self.starts[k][i + 1] {
                present[self.species_index[k][self.pairs[k].j[p] as usize]] = true;
            }
            let per_row = floats_per_centre(present.iter().filter(|&&x| x).count());
            let mut factor = 1.0;
            if flags.positions {
                factor += 3.0 * (self.distinct_neighbors(k, i) + 1) as f64;
            }
            if flags.strain {
                factor += 9.0;
            }
            total += per_row * factor;
        }
        self.check_budget(&format!("the output of {what} ({} centres)", centres.len()), total * 8.0)
    }

    /// For every atom of every system: its species index and which species
    /// occur in its environment (itself included). This decides which keys
    /// and samples exist, without expanding anything.
    pub fn presence(&self) -> Vec<(usize, Vec<bool>)> {
        let n_species = self.species.len();
        let mut out = Vec::new();
        for (k, system) in self.systems.iter().enumerate() {
            for i in 0..system.size() {
                let mut present = vec![false; n_species];
                present[self.species_index[k][i]] = true;
                for p in self.starts[k][i]..self.starts[k][i + 1] {
                    present[self.species_index[k][self.pairs[k].j[p] as usize]] = true;
                }
                out.push((self.species_index[k][i], present));
            }
        }
        out
    }
}

/// The budget check of the neighbour pairs of `count` systems: `estimate`
/// pairs (a bound, or the exact count) of `per_pair` bytes each, the error
/// naming the systems, the cutoff (Å) and the pair count.
fn check_pair_budget(budget: &MemoryBudget, cutoff: f64, count: usize, estimate: f64, per_pair: f64) -> Result<()> {
    let systems = if count == 1 { "one system".to_string() } else { format!("{count} systems") };
    budget.check(&format!("{systems} (cutoff {cutoff} Å, {estimate:.3e} neighbour pairs or more)"), estimate * per_pair)
}

fn prefix(k: usize, e: Error) -> Error {
    match e {
        Error::InvalidSystem(m) => Error::InvalidSystem(format!("systems[{k}]: {m}")),
        Error::InvalidParameter(m) => Error::InvalidParameter(format!("systems[{k}]: {m}")),
        Error::Memory(m) => Error::Memory(format!("systems[{k}]: {m}")),
        other => other,
    }
}

/// `seen[c * ns + s]`: whether some centre of species c has species s in its
/// environment, from (centre species, presence) rows.
pub fn species_pairs<'p>(ns: usize, presence: impl Iterator<Item = (usize, &'p [bool])>) -> Vec<bool> {
    let mut seen = vec![false; ns * ns];
    for (c, present) in presence {
        for (s, &p) in present.iter().enumerate() {
            seen[c * ns + s] |= p;
        }
    }
    seen
}
