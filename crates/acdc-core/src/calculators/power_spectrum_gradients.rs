//! The power spectrum with position (and strain) gradients, one centre at a
//! time: each centre's density is expanded into per-thread scratch and its
//! value rows and gradient rows of *every* block are written before the
//! next centre is expanded.
//!
//! Why: the general loop expanded every centre first (keeping each pair's
//! factored gradient, 2.5 kB a pair: 25 MB for water64) and then ran one
//! parallel loop per key block, which read those pair factors back from
//! memory once per block a pair feeds (twice with two species). Here they
//! are used while still in cache. The rows of every block are assigned
//! before the parallel loop, from the neighbour list (the species around
//! each centre and its distinct neighbour atoms, as the expansion finds
//! them), so each row is written by exactly one task, the result does not
//! depend on the number of threads, and values and gradients are bit for
//! bit those of the general loop (the same expansion, products and
//! gradient kernel, in the same order).
use rayon::prelude::*;

use super::{accumulate_products, GradientScratch, SampleGradient, Shape, SoapPowerSpectrum, KEY_NAMES};
use crate::calculators::shared::{check_cancelled, key_selected, Environments, GradientFlags};
use crate::calculators::ComputeOptions;
use crate::error::{Error, Result};
use crate::system::System;
use crate::tensor::{Labels, TensorBlock, TensorMap};

/// A pointer to the start of one output buffer, shared by the tasks that
/// write its (disjoint) rows.
#[derive(Clone, Copy)]
struct Out(*mut f64);
// SAFETY: every row is written by exactly one task (rows are assigned once,
// before the parallel loop), and the buffers outlive the loop
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// One row of one block that a centre fills.
struct Assignment {
    block: usize,
    /// sample (row) index in the block
    row: usize,
    /// first gradient row of this sample in the block's position gradients
    gradient_row: usize,
}

/// One output block: its key's species indices, its samples and buffers.
struct Block {
    key: [i32; 3],
    s1: usize,
    s2: usize,
    factors: Vec<f64>,
    /// (system, atom) of each sample
    samples: Vec<i32>,
    /// gradient rows of each sample: (atom, neighbour index or None for the centre)
    atoms: Vec<Vec<(usize, Option<usize>)>>,
    gradient_rows: usize,
}

impl SoapPowerSpectrum {
    /// Species-resolved power spectrum with position and/or strain gradients
    /// (no pseudo-elements).
    pub(in crate::calculators) fn compute_gradients(&self, systems: &[System], options: &ComputeOptions, flags: GradientFlags) -> Result<TensorMap> {
        let expansion = &self.expansion;
        let expand_flags = GradientFlags { positions: false, strain: false, pair_factors: true };
        // the pair factors are held per thread here, not per pair; the
        // estimate is kept as it was so that the budget check is unchanged
        let per_pair = Environments::expansion_bytes_per_pair(expansion, expand_flags);
        let env = Environments::for_options(systems, expansion.settings.cutoff, options, per_pair)?;
        let centres = env.centres(options)?;
        let n_max = expansion.n_max();
        let l_max = expansion.settings.max_angular;
        let n_lm = expansion.n_lm();
        let n_props = (l_max + 1) * n_max * n_max;
        {
            // refuse before allocating what would not fit
            let (n_max, l_max) = (n_max as f64, l_max as f64);
            env.check_output("the SOAP power spectrum", &centres, flags, |present| {
                (present * (present + 1) / 2) as f64 * (l_max + 1.0) * n_max * n_max
            })?;
        }
        let ns = env.species.len();
        let cutoff = expansion.settings.cutoff;

        // what the expansion will find around each centre: the species
        // present (the centre's own included) and the distinct neighbour
        // atoms (images of the centre excluded), from the same pairs and the
        // same distance test. Centre by centre in parallel: on the calling
        // thread this plan was a third of a 2-thread call's serial part.
        let plans: Vec<(Vec<bool>, Vec<(usize, usize)>)> = centres
            .par_iter()
            .map(|&(k, i)| {
                let mut seen = vec![false; ns];
                seen[env.species_index[k][i]] = true;
                let pairs = &env.pairs[k];
                let mut neighbors: Vec<(usize, usize)> = Vec::with_capacity(env.starts[k][i + 1] - env.starts[k][i]);
                for p in env.starts[k][i]..env.starts[k][i + 1] {
                    if pairs.distances[p] >= cutoff {
                        continue;
                    }
                    let j = pairs.j[p] as usize;
                    let s = env.species_index[k][j];
                    seen[s] = true;
                    if j != i && neighbors.last().is_none_or(|&(last, _)| last != j) {
                        neighbors.push((j, s));
                    }
                }
                (seen, neighbors)
            })
            .collect();

        // blocks in featomic's key order, and every centre's rows in them
        let centre_species: Vec<usize> = centres.iter().map(|&(k, i)| env.species_index[k][i]).collect();
        let keys = Self::keys_from(&env.species, &env.species, plans.iter().enumerate().map(|(c, (present, _))| (centre_species[c], present.as_slice())));
        let mut blocks = Vec::new();
        let mut assignments: Vec<Vec<Assignment>> = (0..centres.len()).map(|_| Vec::new()).collect();
        for key in keys {
            if !key_selected(options, &KEY_NAMES, &key)? {
                continue;
            }
            let c = env.species.binary_search(&key[0]).unwrap_or(0);
            let s1 = env.species.binary_search(&key[1]).unwrap_or(0);
            let s2 = env.species.binary_search(&key[2]).unwrap_or(0);
            let cross = if s1 != s2 { std::f64::consts::SQRT_2 } else { 1.0 };
            let factors: Vec<f64> = (0..=l_max)
                .map(|l| cross * if l % 2 == 0 { 1.0 } else { -1.0 } / ((2 * l + 1) as f64).sqrt())
                .collect();
            // the centres with a row in this block, in centre order
            let members: Vec<usize> = (0..centres.len())
                .filter(|&index| {
                    let here = &plans[index].0;
                    centre_species[index] == c && here[s1] && here[s2]
                })
                .collect();
            // each row's gradient atoms (as CentreDensity::gradient_rows), in parallel
            let atoms: Vec<Vec<(usize, Option<usize>)>> = if flags.positions {
                members
                    .par_iter()
                    .map(|&index| {
                        let i = centres[index].1;
                        let mut atoms: Vec<(usize, Option<usize>)> = plans[index]
                            .1
                            .iter()
                            .enumerate()
                            .filter(|(_, &(_, s))| s == s1 || s == s2)
                            .map(|(n, &(atom, _))| (atom, Some(n)))
                            .collect();
                        atoms.push((i, None));
                        atoms.sort_unstable_by_key(|&(atom, _)| atom);
                        atoms
                    })
                    .collect()
            } else {
                vec![Vec::new(); members.len()]
            };
            let mut block = Block { key, s1, s2, factors, samples: Vec::with_capacity(2 * members.len()), atoms, gradient_rows: 0 };
            for (row, &index) in members.iter().enumerate() {
                let (k, i) = centres[index];
                block.samples.extend_from_slice(&[k as i32, i as i32]);
                assignments[index].push(Assignment { block: blocks.len(), row, gradient_row: block.gradient_rows });
                block.gradient_rows += block.atoms[row].len();
            }
            blocks.push(block);
        }
        options.check_cancelled()?;

        // the buffers: values accumulate (zeros), position gradients are
        // assigned element by element (see SampleGradient), strain accumulates
        let mut values = Vec::with_capacity(blocks.len());
        let mut positions = Vec::with_capacity(blocks.len());
        let mut strain = Vec::with_capacity(blocks.len());
        let mut prefault = Vec::with_capacity(blocks.len());
        for block in &blocks {
            let rows = block.atoms.len();
            values.push(crate::tensor::buffer::zeroed(rows * n_props, "the power spectrum")?);
            // every element is assigned by SampleGradient before any is read
            let (buffer, reused) =
                crate::tensor::buffer::for_overwrite_uninit(block.gradient_rows * 3 * n_props, "the power spectrum position gradients")?;
            // (transparent huge pages would cut the kernel's share on si512,
            // but on a virtual machine that hands free memory back to its
            // host they made g2x1000 1.3–1.5× slower, and erratic)
            prefault.push(!reused && buffer.len() * 8 >= 1 << 20);
            positions.push(buffer);
            strain.push(crate::tensor::buffer::zeroed(if flags.strain { rows * 9 * n_props } else { 0 }, "the power spectrum strain gradients")?);
        }
        let values_out: Vec<Out> = values.iter_mut().map(|v| Out(v.as_mut_ptr())).collect();
        let positions_out: Vec<Out> = positions.iter_mut().map(|v| Out(v.as_mut_ptr() as *mut f64)).collect();
        let strain_out: Vec<Out> = strain.iter_mut().map(|v| Out(v.as_mut_ptr())).collect();
        let shape = Shape { l_max, n_max, n_lm };
        let stride_lm = ns * n_max;

        (0..centres.len()).into_par_iter().try_for_each_init(
            || (expansion.scratch(), super::CentreDensity::default(), GradientScratch::new(&shape)),
            |(scratch, density, gradient_scratch), index| -> Result<()> {
                check_cancelled(&env.cancel)?;
                let (k, i) = centres[index];
                let range = env.starts[k][i]..env.starts[k][i + 1];
                expansion.expand(k, i, &env.pairs[k], range, &env.species_index[k], ns, expand_flags, scratch, density)?;
                if density.neighbors[..] != plans[index].1[..] {
                    return Err(Error::Numerical(format!("internal: the neighbours of atom {i} of system {k} differ between the row plan and the expansion")));
                }
                for a in &assignments[index] {
                    let block = &blocks[a.block];
                    let cf = &density.coefficients;
                    // SAFETY: row a.row of this block is this centre's alone
                    // (assigned once above), inside the buffer of rows·n_props
                    let out = unsafe { std::slice::from_raw_parts_mut(values_out[a.block].0.add(a.row * n_props), n_props) };
                    accumulate_products(out, &block.factors, n_max, &cf[block.s1 * n_max..], stride_lm, &cf[block.s2 * n_max..], stride_lm);
                    let atoms = &block.atoms[a.row];
                    let gradient: &mut [f64] = if flags.positions {
                        // SAFETY: this sample's gradient rows, assigned to it alone
                        // above; SampleGradient writes each element before reading it
                        unsafe { std::slice::from_raw_parts_mut(positions_out[a.block].0.add(a.gradient_row * 3 * n_props), atoms.len() * 3 * n_props) }
                    } else {
                        &mut []
                    };
                    if prefault[a.block] {
                        crate::tensor::buffer::prefault_part(gradient);
                    }
                    let strain_row: &mut [f64] = if flags.strain {
                        // SAFETY: as above, this sample's 9·n_props strain values
                        unsafe { std::slice::from_raw_parts_mut(strain_out[a.block].0.add(a.row * 9 * n_props), 9 * n_props) }
                    } else {
                        &mut []
                    };
                    let task = SampleGradient { shape: &shape, factors: &block.factors, s1: block.s1, s2: block.s2, density, atoms };
                    task.run(gradient_scratch, gradient, strain_row);
                }
                Ok(())
            },
        )?;

        let properties = self.properties();
        let mut key_values = Vec::with_capacity(3 * blocks.len());
        let mut out_blocks = Vec::with_capacity(blocks.len());
        // SAFETY: every gradient row of every sample was assigned (the loop
        // above ran to completion for every centre, each sample's task
        // assigns its rows: each neighbour row from its first image, the
        // centre row from the scratch)
        let positions: Vec<Vec<f64>> = positions.into_iter().map(|v| unsafe { crate::tensor::buffer::assume_written(v) }).collect();
        for ((block, values), (positions, strain)) in blocks.into_iter().zip(values).zip(positions.into_iter().zip(strain)) {
            let rows = block.atoms.len();
            let mut result = TensorBlock::new(Labels::new(&["system", "atom"], block.samples.clone()), vec![], properties.clone(), values)?;
            if flags.positions {
                let mut samples = Vec::with_capacity(3 * block.gradient_rows);
                for (row, atoms) in block.atoms.iter().enumerate() {
                    let system = block.samples[2 * row];
                    for &(atom, _) in atoms {
                        samples.extend_from_slice(&[row as i32, system, atom as i32]);
                    }
                }
                let gb = TensorBlock::new(Labels::new(&["sample", "system", "atom"], samples), vec![Labels::range("xyz", 3)], properties.clone(), positions)?;
                result.gradients.push(("positions".into(), gb));
            }
            if flags.strain {
                // featomic 0.6.7 names the strain components (xyz_2, xyz_1) in
                // this order; values[a][b] = ∂/∂ε_ab
                let gb = TensorBlock::new(
                    Labels::range("sample", rows),
                    vec![Labels::range("xyz_2", 3), Labels::range("xyz_1", 3)],
                    properties.clone(),
                    strain,
                )?;
                result.gradients.push(("strain".into(), gb));
            }
            key_values.extend_from_slice(&block.key);
            out_blocks.push(result);
        }
        let tensor = TensorMap::new(Labels::new(&KEY_NAMES, key_values), out_blocks)?;
        if crate::calculators::soap::ragged::is_ragged(self.expansion.sizes()) {
            return crate::calculators::soap::ragged::trim(tensor, self.expansion.sizes(), false);
        }
        Ok(tensor)
    }
}
