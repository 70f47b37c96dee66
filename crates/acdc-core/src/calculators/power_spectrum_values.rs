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
use crate::neighbors::{CentreScratch, CentreSearch};
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
        // no neighbour list: each system is binned once, and each centre's
        // pairs are searched where they are expanded (neighbors/centre.rs),
        // the same pairs in the same order as the list the gradient path reads
        let (env, prepared) = Environments::for_centre_search(systems, expansion.settings.cutoff, options)?;
        // (one system: no parallel region, whose wake-up of the pool costs
        // more than building one search)
        let searches: Vec<Option<CentreSearch>> = if systems.len() > 1 {
            prepared.par_iter().zip(systems).map(|(p, s)| p.as_ref().map(|p| p.search(s))).collect()
        } else {
            prepared.iter().zip(systems).map(|(p, s)| p.as_ref().map(|p| p.search(s))).collect()
        };
        let centres = env.centres(options)?;
        let n_max = expansion.n_max();
        let l_max = expansion.settings.max_angular;
        let n_lm = expansion.n_lm();
        let n_props = (l_max + 1) * n_max * n_max;
        let ns = env.species.len();

        // species present around each centre (the centre's own included;
        // neighbours are the pairs of the full list, all within the cutoff),
        // sorted; and the output's size from them, refused before anything
        // of that size is allocated. A system of one species needs no
        // search for it; in a mixture the search stops once every species
        // of the system is seen.
        let system_species: Vec<usize> = env
            .species_index
            .iter()
            .map(|index| {
                let mut seen = vec![false; ns];
                index.iter().for_each(|&s| seen[s] = true);
                seen.iter().filter(|&&x| x).count()
            })
            .collect();
        let presence = |(scratch, seen): &mut (CentreScratch, Vec<bool>), chunk: &[(usize, usize)]| {
            let mut present = Vec::with_capacity(chunk.len());
            let mut counts = Vec::with_capacity(chunk.len());
            for &(k, i) in chunk {
                let own = env.species_index[k][i];
                let before = present.len();
                if system_species[k] == 1 {
                    present.push(own as u32);
                } else {
                    seen.fill(false);
                    seen[own] = true;
                    if let Some(search) = &searches[k] {
                        search.species_within(i, &env.species_index[k], system_species[k] - 1, seen, scratch);
                    }
                    present.extend((0..ns as u32).filter(|&s| seen[s as usize]));
                }
                counts.push((present.len() - before) as u32);
            }
            (present, counts)
        };
        // searched in parallel only where a system has several species
        let chunks: Vec<(Vec<u32>, Vec<u32>)> = if system_species.iter().all(|&count| count == 1) {
            vec![presence(&mut (CentreScratch::default(), vec![false; ns]), &centres)]
        } else {
            centres.par_chunks(64).map_init(|| (CentreScratch::default(), vec![false; ns]), presence).collect()
        };
        let mut present_start = Vec::with_capacity(centres.len() + 1);
        let mut present: Vec<u32> = Vec::with_capacity(chunks.iter().map(|c| c.0.len()).sum());
        let mut output_floats = 0.0;
        present_start.push(0);
        for (species, counts) in &chunks {
            present.extend_from_slice(species);
            for &count in counts {
                let count = count as f64;
                output_floats += count * (count + 1.0) / 2.0 * n_props as f64;
                present_start.push(present_start.last().copied().unwrap_or(0) + count as usize);
            }
        }
        drop(chunks);
        env.check_budget(&format!("the output of the SOAP power spectrum ({} centres)", centres.len()), output_floats * 8.0)?;

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
        let mut task_start = Vec::with_capacity(centres.len() + 1);
        // at most one task per pair of present species and centre: sized
        // once, as are the samples below, rather than grown by doubling
        let mut tasks: Vec<(u32, usize)> = Vec::with_capacity((output_floats / n_props.max(1) as f64) as usize);
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
                    }
                }
            }
            task_start.push(tasks.len());
        }
        let mut samples: Vec<Vec<i32>> = rows.iter().map(|&count| Vec::with_capacity(2 * count)).collect();
        for (c, &(k, i)) in centres.iter().enumerate() {
            for &(key, _) in &tasks[task_start[c]..task_start[c + 1]] {
                samples[key as usize].extend_from_slice(&[k as i32, i as i32]);
            }
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
            || (expansion.values_scratch(), vec![usize::MAX; ns], Vec::<f64>::new(), CentreScratch::default()),
            |(scratch, slot_of, coefficients, found), (c, &(k, i))| -> Result<()> {
                crate::calculators::check_cancelled(&env.cancel)?;
                let p = &present[present_start[c]..present_start[c + 1]];
                for (slot, &s) in p.iter().enumerate() {
                    slot_of[s as usize] = slot;
                }
                let n_slots = p.len();
                let stride_lm = n_slots * n_max;
                coefficients.resize(n_lm * stride_lm, 0.0);
                // a centre exists only in a system with atoms, which was prepared
                let pairs = searches[k].as_ref().expect("a prepared search").pairs_of(i, found);
                let expanded = expansion.expand_values(
                    k,
                    i,
                    pairs,
                    0..pairs.len(),
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
                        let f = &factors[usize::from(s1 != s2)];
                        // SAFETY: row `row` of block `key` lies inside its
                        // buffer (rows[key] rows of n_props) and no other task
                        // writes it; the buffer is alive until the loop ends
                        let start = unsafe { pointers[key as usize].0.add(row * n_props) };
                        let (ca, cb) = (&coefficients[a * n_max..], &coefficients[b * n_max..]);
                        // SAFETY: as above; `store_products` writes every
                        // one of the n_props values of the row
                        if unsafe { store_products(start, n_props, f, n_max, ca, stride_lm, cb, stride_lm) } {
                            continue;
                        }
                        // SAFETY: as above; the row is initialised (zeros)
                        // before the slice over it is made
                        let out = unsafe {
                            std::ptr::write_bytes(start, 0, n_props);
                            std::slice::from_raw_parts_mut(start, n_props)
                        };
                        accumulate_products(out, f, n_max, ca, stride_lm, cb, stride_lm);
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

/// Writes one centre's power-spectrum row (`len` values from `out`, laid out
/// `[l][n1][n2]`) where the CPU has AVX2 and FMA and n_max is 4, 8, 12 or 16;
/// returns false (and writes nothing) elsewhere, for the caller to zero the
/// row and accumulate into it.
///
/// Why: zeroing each row (3.5 kB for si512, a `rep stos` in glibc's memset)
/// and loading it back into the accumulators cost more than 5 % of the
/// values path's time (perf, si512). The accumulators start from +0.0 in
/// registers instead; the contraction is the gradient path's own body
/// (`registers_block` in power_spectrum.rs, without its initial load: x =
/// f·a, then acc + x·b, not fused), so the row is bitwise the one the
/// gradient path computes.
///
/// # Safety
/// `out` must be valid for writes of `len` values, and `len` must be
/// (l_max + 1)·n_max² with `factors.len()` = l_max + 1.
#[allow(clippy::too_many_arguments)]
unsafe fn store_products(out: *mut f64, len: usize, factors: &[f64], n_max: usize, a: &[f64], a_stride: usize, b: &[f64], b_stride: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    if crate::math::cpu::has_avx2_fma() {
        assert_eq!(len, factors.len() * n_max * n_max);
        // SAFETY: the CPU has AVX2 and FMA; `out` holds `len` values (the caller)
        match n_max {
            4 => super::registers_block::<4, false>(out, factors, a, a_stride, b, b_stride),
            8 => super::registers_block::<8, false>(out, factors, a, a_stride, b, b_stride),
            12 => super::registers_block::<12, false>(out, factors, a, a_stride, b, b_stride),
            16 => super::registers_block::<16, false>(out, factors, a, a_stride, b, b_stride),
            _ => return false,
        }
        return true;
    }
    let _ = (out, len, factors, n_max, a, a_stride, b, b_stride);
    false
}


#[cfg(test)]
mod tests {
    use crate::calculators::tests_utils::triclinic;
    use crate::calculators::{Calculator, ComputeOptions, SoapPowerSpectrum};
    use crate::error::Error;

    /// The values path counts its output in the presence pass: a budget the
    /// output does not fit in is refused naming the power spectrum's output,
    /// and a roomy one (16 MiB) is not.
    #[test]
    fn the_output_is_checked_against_the_budget() {
        let hypers = r#"{"cutoff": {"radius": 3.5, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
            "density": {"type": "Gaussian", "width": 0.35},
            "basis": {"type": "TensorProduct", "max_angular": 4, "radial": {"type": "Gto", "max_radial": 5}}}"#;
        let calculator = SoapPowerSpectrum::new(hypers).unwrap();
        let systems = [triclinic()];
        let tensor = calculator.compute(&systems, &ComputeOptions::default()).unwrap();
        let bytes: usize = tensor.blocks.iter().map(|b| b.values.len() * 8).sum();
        assert!(bytes > 0);

        let tight = ComputeOptions { max_memory: Some(bytes as u64), ..Default::default() };
        match calculator.compute(&systems, &tight) {
            Err(Error::Memory(message)) => {
                assert!(message.contains("the output of the SOAP power spectrum (5 centres)"), "{message}")
            }
            other => panic!("expected a memory error, got {:?}", other.map(|t| t.blocks.len())),
        }
        let roomy = ComputeOptions { max_memory: Some(1 << 24), ..Default::default() };
        assert!(calculator.compute(&systems, &roomy).is_ok());
    }

    /// The per-centre search's values path gives the same keys, samples and
    /// bits at 1, 2 and 3 threads, and the gradient path's values (which
    /// read the neighbour list): a batch (the search set up in parallel), a
    /// sparse two-species gas where many centres lack one species (the
    /// presence search's full scans and early stops, rows that differ from
    /// centre to centre), a dense mixture and a one-species crystal.
    #[test]
    fn values_are_the_same_bits_at_any_thread_count_and_with_gradients() {
        use crate::system::System;
        let mut next = crate::math::random::xorshift_uniform(0x9e37_79b9_7f4a_7c15u64);
        let mut random = |n: usize, side: f64, species: &dyn Fn(usize) -> i32| {
            let types = (0..n).map(species).collect();
            let positions = (0..n).map(|_| [side * next(), side * next(), side * next()]).collect();
            System::new(types, positions, [[side, 0.0, 0.0], [0.0, side, 0.0], [0.0, 0.0, side]], [true; 3]).unwrap()
        };
        let gas = random(40, 14.0, &|k| if k % 5 == 0 { 8 } else { 1 });
        let dense = random(60, 8.0, &|k| if k % 3 == 0 { 8 } else { 1 });
        let crystal = random(30, 7.0, &|_| 14);
        let hypers = r#"{"cutoff": {"radius": 3.5, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
            "density": {"type": "Gaussian", "width": 0.35},
            "basis": {"type": "TensorProduct", "max_angular": 4, "radial": {"type": "Gto", "max_radial": 7}}}"#;
        let calculator = SoapPowerSpectrum::new(hypers).unwrap();
        let batch = [gas, dense, crystal, triclinic()];
        let at = |threads: usize, options: &ComputeOptions| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| calculator.compute(&batch, options).unwrap())
        };
        let values = ComputeOptions::default();
        let reference = at(1, &values);
        let with_gradients = at(2, &ComputeOptions { gradients: vec!["positions".into()], ..Default::default() });
        let mut rows = 0;
        for other in [at(2, &values), at(3, &values), with_gradients] {
            assert_eq!(other.keys, reference.keys);
            for (a, b) in reference.blocks.iter().zip(&other.blocks) {
                assert_eq!(a.samples, b.samples);
                assert_eq!(a.values.len(), b.values.len());
                assert!(a.values.iter().zip(&b.values).all(|(x, y)| x.to_bits() == y.to_bits()));
                rows += a.samples.count();
            }
        }
        // the gas's centres lack a species often enough that blocks differ in rows
        assert!(reference.blocks.iter().map(|b| b.samples.count()).min() < reference.blocks.iter().map(|b| b.samples.count()).max());
        assert!(rows > 0);
    }
}
