//! The parallel loop that expands the density around every selected centre
//! of a batch, within the computation's memory budget.
use rayon::prelude::*;

use super::expansion::{CentreDensity, Expansion, PairGeometry};
use crate::calculators::shared::{check_cancelled, Environments, GradientFlags};
use crate::error::Result;
use crate::tensor::Labels;

impl Environments<'_> {
    /// Bytes per pair that [`Environments::expand`] holds with these flags
    /// (pass to [`Environments::for_options`]).
    pub fn expansion_bytes_per_pair(expansion: &Expansion, gradients: GradientFlags) -> f64 {
        if gradients.pair_factors {
            let (n_max, n_lm, l_max) = (expansion.n_max() as f64, expansion.n_lm() as f64, expansion.settings.max_angular as f64);
            8.0 * (2.0 * (l_max + 1.0) * n_max + 4.0 * n_lm) + std::mem::size_of::<PairGeometry>() as f64
        } else {
            0.0
        }
    }

    /// Expands the density around every centre, in parallel, in order,
    /// after checking the memory all of them will hold against the budget.
    pub fn expand(&self, expansion: &Expansion, centres: &[(usize, usize)], gradients: GradientFlags) -> Result<Vec<CentreDensity>> {
        let n_species = self.species.len();
        let (n_max, n_lm, l_max) = (expansion.n_max() as f64, expansion.n_lm() as f64, expansion.settings.max_angular as f64);
        let dense = n_lm * n_species as f64 * n_max;
        let mut floats = 0.0;
        for &(k, i) in centres {
            floats += dense;
            if gradients.positions {
                floats += 3.0 * n_lm * n_max * self.distinct_neighbors(k, i) as f64 + 3.0 * dense;
            }
            if gradients.strain {
                floats += 9.0 * dense;
            }
            if gradients.pair_factors {
                let per_pair = 2.0 * (l_max + 1.0) * n_max + 4.0 * n_lm + (std::mem::size_of::<PairGeometry>() / 8) as f64;
                floats += per_pair * self.pair_count(k, i) as f64;
            }
        }
        self.check_budget(&format!("the density expansion of {} centres", centres.len()), floats * 8.0)?;
        centres
            .par_iter()
            .map_init(
                || expansion.scratch(),
                |scratch, &(k, i)| {
                    check_cancelled(&self.cancel)?;
                    let mut out = CentreDensity::default();
                    let range = self.starts[k][i]..self.starts[k][i + 1];
                    expansion.expand(
                        k,
                        i,
                        &self.pairs[k],
                        range,
                        &self.species_index[k],
                        n_species,
                        gradients,
                        scratch,
                        &mut out,
                    )?;
                    Ok(out)
                },
            )
            .collect()
    }
}

/// Sample labels (system, atom) for a list of centres.
pub fn sample_labels(centres: &[&CentreDensity]) -> Labels {
    Labels::new(&["system", "atom"], centres.iter().flat_map(|c| [c.system as i32, c.atom as i32]).collect())
}
