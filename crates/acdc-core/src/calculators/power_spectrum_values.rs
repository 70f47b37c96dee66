//! The power spectrum without gradients, fused: each centre's density is
//! expanded into per-thread scratch and contracted straight into its rows
//! of the output blocks, so no per-centre expansion is ever stored.
//!
//! Why: storing every centre's dense coefficients (all species, all (l, m))
//! and then running one parallel loop per key block costs allocations,
//! zero-fills and memory traffic that dominate when there are many species
//! (14 for the g2 molecules: 44 KB of mostly zeros per centre) or many small
//! blocks. The rows of every block are assigned before the parallel loop
//! (from the species present around each centre, known from the neighbour
//! list), so each row is written by exactly one task and the result does
//! not depend on the number of threads.
use rayon::prelude::*;

use super::{accumulate_products, SoapPowerSpectrum, KEY_NAMES};
use crate::calculators::shared::{key_selected, Environments};
use crate::calculators::shared::GradientFlags;
use crate::calculators::ComputeOptions;
use crate::error::Result;
use crate::system::System;
use crate::tensor::{Labels, TensorBlock, TensorMap};

/// A pointer to the start of one output block, shared by the tasks that
/// write its (disjoint) rows.
#[derive(Clone, Copy)]
struct BlockPtr(*mut f64);
// SAFETY: every row is written by exactly one task (rows are assigned once,
// before the parallel loop), and the buffers outlive the loop
unsafe impl Send for BlockPtr {}
unsafe impl Sync for BlockPtr {}

impl SoapPowerSpectrum {
    /// Values-only compute of the species-resolved power spectrum.
    pub(in crate::calculators) fn compute_values(&self, systems: &[System], options: &ComputeOptions) -> Result<TensorMap> {
        let expansion = &self.expansion;
        let env = Environments::for_options(systems, expansion.settings.cutoff, options, 0.0)?;
        let centres = env.centres(options)?;
        let n_max = expansion.n_max();
        let l_max = expansion.settings.max_angular;
        let n_lm = expansion.n_lm();
        let n_props = (l_max + 1) * n_max * n_max;
        {
            // refuse before allocating what would not fit
            let (n_max, l_max) = (n_max as f64, l_max as f64);
            env.check_output("the SOAP power spectrum", &centres, GradientFlags::default(), |present| {
                (present * (present + 1) / 2) as f64 * (l_max + 1.0) * n_max * n_max
            })?;
        }
        let ns = env.species.len();

        // species present around each centre (the centre's own included;
        // the neighbour list holds only pairs within the cutoff), sorted
        let mut present_start = Vec::with_capacity(centres.len() + 1);
        let mut present: Vec<u32> = Vec::new();
        let mut seen = vec![false; ns];
        present_start.push(0);
        for &(k, i) in &centres {
            seen.fill(false);
            seen[env.species_index[k][i]] = true;
            for &j in &env.pairs[k].j[env.starts[k][i]..env.starts[k][i + 1]] {
                seen[env.species_index[k][j as usize]] = true;
            }
            present.extend((0..ns as u32).filter(|&s| seen[s as usize]));
            present_start.push(present.len());
        }

        // the keys, in featomic's order, and the selected ones' indices
        let mut exists = vec![false; ns * ns * ns];
        for (c, &(k, i)) in centres.iter().enumerate() {
            let centre = env.species_index[k][i];
            let p = &present[present_start[c]..present_start[c + 1]];
            for (a, &s1) in p.iter().enumerate() {
                for &s2 in &p[a..] {
                    exists[(centre * ns + s1 as usize) * ns + s2 as usize] = true;
                }
            }
        }
        let mut key_values = Vec::new();
        let mut key_species = Vec::new();
        let mut key_index = vec![u32::MAX; ns * ns * ns];
        for (t, _) in exists.iter().enumerate().filter(|(_, &e)| e) {
            let (c, s1, s2) = (t / (ns * ns), (t / ns) % ns, t % ns);
            let key = [env.species[c], env.species[s1], env.species[s2]];
            if !key_selected(options, &KEY_NAMES, &key)? {
                continue;
            }
            key_index[t] = key_species.len() as u32;
            key_species.push((s1, s2));
            key_values.extend_from_slice(&key);
        }

        // every (centre, key) gets its row, in centre order
        let n_keys = key_species.len();
        let mut rows = vec![0usize; n_keys];
        let mut samples: Vec<Vec<i32>> = vec![Vec::new(); n_keys];
        let mut task_start = Vec::with_capacity(centres.len() + 1);
        let mut tasks: Vec<(u32, usize)> = Vec::new();
        task_start.push(0);
        for (c, &(k, i)) in centres.iter().enumerate() {
            let centre = env.species_index[k][i];
            let p = &present[present_start[c]..present_start[c + 1]];
            for (a, &s1) in p.iter().enumerate() {
                for &s2 in &p[a..] {
                    let key = key_index[(centre * ns + s1 as usize) * ns + s2 as usize];
                    if key != u32::MAX {
                        let key = key as usize;
                        tasks.push((key as u32, rows[key]));
                        rows[key] += 1;
                        samples[key].extend_from_slice(&[k as i32, i as i32]);
                    }
                }
            }
            task_start.push(tasks.len());
        }
        options.check_cancelled()?;

        // neither zeroed nor pre-faulted here: each row is zeroed below by the
        // task that writes it, while in cache. A separate zeroing and
        // pre-faulting of the output were two more parallel regions per
        // call and block, each waking the pool, and one more pass over memory
        let mut values = Vec::with_capacity(n_keys);
        for &count in &rows {
            values.push(crate::tensor::buffer::for_overwrite_uninit(count * n_props, "the power spectrum")?.0);
        }
        let pointers: Vec<BlockPtr> = values.iter_mut().map(|v| BlockPtr(v.as_mut_ptr() as *mut f64)).collect();
        let factors: [Vec<f64>; 2] = [1.0, std::f64::consts::SQRT_2].map(|cross| {
            (0..=l_max).map(|l| cross * if l % 2 == 0 { 1.0 } else { -1.0 } / ((2 * l + 1) as f64).sqrt()).collect()
        });

        centres.par_iter().enumerate().try_for_each_init(
            || (expansion.values_scratch(), vec![usize::MAX; ns], Vec::<f64>::new()),
            |(scratch, slot_of, coefficients), (c, &(k, i))| -> Result<()> {
                crate::calculators::check_cancelled(&env.cancel)?;
                let p = &present[present_start[c]..present_start[c + 1]];
                for (slot, &s) in p.iter().enumerate() {
                    slot_of[s as usize] = slot;
                }
                let n_slots = p.len();
                let stride_lm = n_slots * n_max;
                coefficients.resize(n_lm * stride_lm, 0.0);
                let range = env.starts[k][i]..env.starts[k][i + 1];
                let expanded = expansion.expand_values(
                    k,
                    i,
                    &env.pairs[k],
                    range,
                    &env.species_index[k],
                    slot_of,
                    n_slots,
                    scratch,
                    coefficients,
                );
                if expanded.is_ok() {
                    for &(key, row) in &tasks[task_start[c]..task_start[c + 1]] {
                        let (s1, s2) = key_species[key as usize];
                        let (a, b) = (slot_of[s1], slot_of[s2]);
                        // SAFETY: row `row` of block `key` lies inside its
                        // buffer (rows[key] rows of n_props) and no other task
                        // writes it; the buffer is alive until the loop ends.
                        // The row is initialised (zeros) before the slice over
                        // it is made
                        let out = unsafe {
                            let start = pointers[key as usize].0.add(row * n_props);
                            std::ptr::write_bytes(start, 0, n_props);
                            std::slice::from_raw_parts_mut(start, n_props)
                        };
                        let f = &factors[usize::from(s1 != s2)];
                        accumulate_products(out, f, n_max, &coefficients[a * n_max..], stride_lm, &coefficients[b * n_max..], stride_lm);
                    }
                }
                for &s in p {
                    slot_of[s as usize] = usize::MAX;
                }
                expanded
            },
        )?;

        let properties = self.properties();
        let mut blocks = Vec::with_capacity(n_keys);
        for (values, samples) in values.into_iter().zip(samples) {
            // SAFETY: the loop succeeded, so every (centre, key) task zeroed
            // and wrote its row, and the rows of a block are exactly its
            // rows[key] tasks
            let values = unsafe { crate::tensor::buffer::assume_written(values) };
            blocks.push(TensorBlock::new(Labels::new(&["system", "atom"], samples), vec![], properties.clone(), values)?);
        }
        let tensor = TensorMap::new(Labels::new(&KEY_NAMES, key_values), blocks)?;
        if crate::calculators::soap::ragged::is_ragged(expansion.sizes()) {
            return crate::calculators::soap::ragged::trim(tensor, expansion.sizes(), false);
        }
        Ok(tensor)
    }
}
