//! Per-atom feature vectors for potentials: the SOAP power spectrum of each
//! atom with all its neighbour-species blocks joined into one property
//! vector, and the matching position and strain gradients.
//!
//! The neighbour species are fixed once (the species of the training set),
//! so every atom of a given centre species has the same property layout:
//! the pairs (a1, a2) with a1 ≤ a2 of those species, in that order, each
//! holding the (l, n_1, n_2) properties of the power spectrum. A pair
//! absent from an environment contributes zeros (as featomic's
//! `keys_to_properties` fills missing blocks).
//!
//! With `density.alchemical` (pseudo-elements) the neighbour "species" are
//! the pseudo-element indices 0…B−1 (the power spectrum's `pseudo_1_type`,
//! `pseudo_2_type`), while the centres stay the real species.
use std::collections::HashMap;

use rayon::prelude::*;

use super::bispectrum_features::FeatureKind;
use crate::calculators::{Calculator, ComputeOptions, SoapPowerSpectrum};
use crate::error::{Error, Result};
use crate::system::System;
use crate::tensor::TensorMap;

/// The joined property layout: which neighbour-species pair sits where.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureLayout {
    /// Sorted species (atomic numbers) the model knows, as centres (and
    /// as neighbours, without pseudo-elements).
    pub species: Vec<i32>,
    /// Sorted neighbour types of the pairs: `species`, or the
    /// pseudo-element indices 0…B−1 with `density.alchemical`.
    pub neighbors: Vec<i32>,
    /// Neighbour pairs (a1 ≤ a2 of `neighbors`), in property order.
    pub pairs: Vec<(i32, i32)>,
    /// Properties of one block, (l_max + 1)·n_max²; with the bispectrum
    /// (no neighbour-pair blocks) every feature of an atom.
    pub block_size: usize,
    /// Power spectrum (ν = 2) or bispectrum (ν = 3,
    /// [`super::bispectrum_features`]: `pairs` is then empty).
    pub features: FeatureKind,
}

impl FeatureLayout {
    /// The layout for these species (centres and neighbours) and block size.
    pub fn new(species: Vec<i32>, block_size: usize) -> FeatureLayout {
        FeatureLayout::with_neighbors(species.clone(), species, block_size)
    }

    /// The layout for these centre species, neighbour types (species or
    /// pseudo-element indices) and block size.
    pub fn with_neighbors(mut species: Vec<i32>, mut neighbors: Vec<i32>, block_size: usize) -> FeatureLayout {
        species.sort_unstable();
        species.dedup();
        neighbors.sort_unstable();
        neighbors.dedup();
        let mut pairs = Vec::new();
        for (k, &a) in neighbors.iter().enumerate() {
            for &b in &neighbors[k..] {
                pairs.push((a, b));
            }
        }
        FeatureLayout { species, neighbors, pairs, block_size, features: FeatureKind::PowerSpectrum }
    }

    /// The layout of a ν = 3 model: these centre (and neighbour) species,
    /// `n_features` bispectrum features per atom.
    pub fn bispectrum(mut species: Vec<i32>, n_features: usize) -> FeatureLayout {
        species.sort_unstable();
        species.dedup();
        FeatureLayout { neighbors: species.clone(), species, pairs: Vec::new(), block_size: n_features, features: FeatureKind::Bispectrum }
    }

    /// The layout of `calculator`'s power spectrum for a model of these
    /// (centre) species: the neighbour types are the species, or the
    /// pseudo-elements of `density.alchemical`, whose `types` must then
    /// list every species.
    pub fn for_calculator(calculator: &SoapPowerSpectrum, species: Vec<i32>) -> Result<FeatureLayout> {
        let (hypers, _) = crate::calculators::soap::hypers::SoapHypers::from_json("hypers", calculator.parameters())?;
        let neighbors = match hypers.density.alchemical() {
            None => species.clone(),
            Some(alchemical) => {
                if let Some(z) = species.iter().find(|z| !alchemical.types.contains(z)) {
                    return Err(Error::InvalidParameter(format!(
                        "the training systems contain atomic type {z}, which density.alchemical.types ({:?}) does not list",
                        alchemical.types
                    )));
                }
                (0..alchemical.coupling.len() as i32).collect()
            }
        };
        let probe = *species.first().ok_or_else(|| Error::InvalidParameter("no atoms to fit".into()))?;
        Ok(FeatureLayout::with_neighbors(species, neighbors, block_size_for(calculator, probe)?))
    }

    /// Length of one atom's feature vector.
    pub fn n_features(&self) -> usize {
        match self.features {
            FeatureKind::PowerSpectrum => self.pairs.len() * self.block_size,
            FeatureKind::Bispectrum => self.block_size,
        }
    }

    /// Index of `species` in [`FeatureLayout::species`].
    pub fn species_index(&self, species: i32) -> Option<usize> {
        self.species.binary_search(&species).ok()
    }

    /// Fails naming the system and species when a system holds a species the
    /// layout does not know.
    pub fn check_systems(&self, systems: &[System], offset: usize) -> Result<()> {
        for (k, s) in systems.iter().enumerate() {
            if let Some(&t) = s.types.iter().find(|&&t| self.species_index(t).is_none()) {
                return Err(Error::InvalidParameter(format!(
                    "systems[{}].types contains {t}, a species the model was not trained on (model species: {:?})",
                    k + offset,
                    self.species
                )));
            }
        }
        Ok(())
    }
}

/// Features of one structure, and optionally their gradients.
#[derive(Debug, Clone, Default)]
pub struct StructureFeatures {
    /// Species index (in the layout) of every atom.
    pub species: Vec<usize>,
    /// `n_atoms × n_features`, row-major.
    pub values: Vec<f64>,
    /// Per centre atom i: (atom j, offset into `position_values`) of the
    /// rows ∂x_i/∂r_j, each `3 × n_features` (xyz outer).
    pub position_rows: Vec<Vec<(usize, usize)>>,
    /// Storage of the position gradient rows.
    pub position_values: Vec<f64>,
    /// `n_atoms × 9 × n_features`: ∂x_i/∂ε_ab at `[i][3a + b]`, empty
    /// without strain gradients.
    pub strain: Vec<f64>,
}

impl StructureFeatures {
    /// Number of atoms.
    pub fn n_atoms(&self) -> usize {
        self.species.len()
    }

    /// The offset in `position_values` of the rows ∂x_i/∂r_j (3 × `nf`),
    /// appended (zeros) the first time the pair (i, j) is met; `slots` maps
    /// j to that offset for centre i.
    pub(super) fn position_slot(&mut self, slots: &mut HashMap<usize, usize>, i: usize, j: usize, nf: usize) -> usize {
        *slots.entry(j).or_insert_with(|| {
            let o = self.position_values.len();
            self.position_values.resize(o + 3 * nf, 0.0);
            self.position_rows[i].push((j, o));
            o
        })
    }
}

/// Computes the joined power spectrum of `systems` (and its `positions` /
/// `strain` gradients when asked) in one call of the calculator.
pub fn compute_features(
    calculator: &SoapPowerSpectrum,
    layout: &FeatureLayout,
    systems: &[System],
    positions: bool,
    strain: bool,
    cancel: &Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
) -> Result<Vec<StructureFeatures>> {
    let mut gradients = Vec::new();
    if positions {
        gradients.push("positions".to_string());
    }
    if strain {
        gradients.push("strain".to_string());
    }
    let options = ComputeOptions { gradients, cancel: cancel.clone(), ..Default::default() };
    let tensor = calculator.compute(systems, &options)?;
    join_features(&tensor, layout, systems, positions, strain)
}

/// Joins the blocks of a power spectrum of `systems` into per-atom
/// features; gradients are joined only when asked (and present).
///
/// Structure by structure on the rayon pool: each structure's features,
/// gradient rows and the storage they sit in are written by one task, which
/// visits the blocks, their gradients and their rows in the tensor's order,
/// so the result (values, the order of `position_rows` and the offsets into
/// `position_values`) is the same bit for bit as a serial join at any thread
/// count. Why: the join copies every position gradient of the batch (3 ×
/// n_features floats per neighbour pair) into freshly allocated storage;
/// done serially it was a quarter of a linear `acdc fit` on one thread and
/// ran on the calling thread while the pool waited (docs/PERFORMANCE.md,
/// "fit6"). The storage of each structure's position rows is sized before it
/// is written (no growth by reallocation).
pub fn join_features(tensor: &TensorMap, layout: &FeatureLayout, systems: &[System], positions: bool, strain: bool) -> Result<Vec<StructureFeatures>> {
    let nf = layout.n_features();
    let bs = layout.block_size;
    let species: Vec<Vec<usize>> = systems.iter().map(|s| s.types.iter().map(|&t| layout.species_index(t).unwrap_or(usize::MAX)).collect()).collect();
    if let Some(k) = species.iter().position(|f| f.contains(&usize::MAX)) {
        layout.check_systems(&systems[k..k + 1], k)?;
    }
    // per block: its pair's place, and its rows (values and gradients)
    // bucketed by structure, each bucket in the block's order
    struct BlockRows {
        p: usize,
        /// per structure: (sample row, atom i)
        samples: Vec<Vec<(usize, usize)>>,
        /// per structure: (gradient row, atom i, atom j) of the position gradient
        positions: Vec<Vec<(usize, usize, usize)>>,
        /// per structure: (gradient row, atom i) of the strain gradient
        strain: Vec<Vec<(usize, usize)>>,
        position_index: Option<usize>,
        strain_index: Option<usize>,
    }
    let n_systems = systems.len();
    let mut blocks = Vec::with_capacity(tensor.blocks.len());
    for (key, block) in tensor.keys.rows().zip(&tensor.blocks) {
        let pair = (key[1], key[2]);
        let p = layout.pairs.iter().position(|&q| q == pair).ok_or_else(|| {
            Error::InvalidParameter(format!("neighbour species pair {pair:?} is not in the model's species {:?}", layout.species))
        })?;
        if block.properties.count() != bs {
            return Err(Error::InvalidParameter(format!("power spectrum block has {} properties, the model expects {bs}", block.properties.count())));
        }
        let samples: Vec<(usize, usize)> = block.samples.rows().map(|r| (r[0] as usize, r[1] as usize)).collect();
        let mut rows = BlockRows { p, samples: vec![Vec::new(); n_systems], positions: Vec::new(), strain: Vec::new(), position_index: None, strain_index: None };
        for (row, &(s, i)) in samples.iter().enumerate() {
            rows.samples[s].push((row, i));
        }
        for (index, (parameter, gradient)) in block.gradients.iter().enumerate() {
            // a block holds at most one gradient per parameter (`add_gradient`)
            if parameter == "positions" && positions && rows.position_index.is_none() {
                let mut by = vec![Vec::new(); n_systems];
                for (g, r) in gradient.samples.rows().enumerate() {
                    let (s, i) = samples[r[0] as usize];
                    by[s].push((g, i, r[2] as usize));
                }
                rows.positions = by;
                rows.position_index = Some(index);
            } else if parameter == "strain" && strain && rows.strain_index.is_none() {
                let mut by = vec![Vec::new(); n_systems];
                for (g, r) in gradient.samples.rows().enumerate() {
                    let (s, i) = samples[r[0] as usize];
                    by[s].push((g, i));
                }
                rows.strain = by;
                rows.strain_index = Some(index);
            }
        }
        blocks.push(rows);
    }
    let out = species
        .into_par_iter()
        .zip(systems.par_iter())
        .enumerate()
        .map(|(s, (species, system))| {
            let n = system.size();
            let mut f = StructureFeatures {
                values: vec![0.0; n * nf],
                position_rows: vec![Vec::new(); if positions { n } else { 0 }],
                strain: if strain { vec![0.0; n * 9 * nf] } else { Vec::new() },
                species,
                position_values: Vec::new(),
            };
            // each (i, j) pair's place in position_values, in order of first
            // appearance over the blocks; then one allocation
            let mut slots: Vec<HashMap<usize, usize>> = if positions { vec![HashMap::new(); n] } else { Vec::new() };
            let mut offsets: Vec<Vec<usize>> = Vec::with_capacity(blocks.len());
            let mut used = 0;
            for rows in &blocks {
                let mine = rows.positions.get(s).map_or(&[][..], Vec::as_slice);
                let mut o = Vec::with_capacity(mine.len());
                for &(_, i, j) in mine {
                    o.push(*slots[i].entry(j).or_insert_with(|| {
                        let offset = used;
                        used += 3 * nf;
                        f.position_rows[i].push((j, offset));
                        offset
                    }));
                }
                offsets.push(o);
            }
            drop(slots);
            f.position_values = vec![0.0; used];
            for ((rows, block), o) in blocks.iter().zip(&tensor.blocks).zip(&offsets) {
                let p = rows.p;
                for &(row, i) in &rows.samples[s] {
                    f.values[i * nf + p * bs..i * nf + (p + 1) * bs].copy_from_slice(&block.values[row * bs..(row + 1) * bs]);
                }
                if let Some(index) = rows.position_index {
                    let gradient = &block.gradients[index].1;
                    for (&(g, _, _), &offset) in rows.positions[s].iter().zip(o) {
                        for x in 0..3 {
                            let src = &gradient.values[(g * 3 + x) * bs..(g * 3 + x + 1) * bs];
                            f.position_values[offset + x * nf + p * bs..offset + x * nf + (p + 1) * bs].copy_from_slice(src);
                        }
                    }
                }
                if let Some(index) = rows.strain_index {
                    let gradient = &block.gradients[index].1;
                    for &(g, i) in &rows.strain[s] {
                        for ab in 0..9 {
                            let src = &gradient.values[(g * 9 + ab) * bs..(g * 9 + ab + 1) * bs];
                            let o = (i * 9 + ab) * nf + p * bs;
                            f.strain[o..o + bs].copy_from_slice(src);
                        }
                    }
                }
            }
            f
        })
        .collect();
    Ok(out)
}

/// Properties of one power-spectrum block for these hyper-parameters.
pub fn block_size(calculator: &SoapPowerSpectrum) -> Result<usize> {
    block_size_for(calculator, 1)
}

/// Properties of one power-spectrum block, probed with one isolated atom
/// of type `species` (a type the hyper-parameters accept: with
/// `density.alchemical` one of its `types`).
pub fn block_size_for(calculator: &SoapPowerSpectrum, species: i32) -> Result<usize> {
    // one isolated atom has one block with the full property set
    let probe = System::new(vec![species], vec![[0.0; 3]], [[0.0; 3]; 3], [false; 3])?;
    let t = calculator.compute(&[probe], &ComputeOptions::default())?;
    match t.blocks.first().map(|b| b.properties.count()) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(Error::InvalidParameter(format!(
            "the power spectrum of an isolated atom of type {species} has no properties (density.alchemical.coupling all zero for it?)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::potential::tests::structure as structure_pub;

    const HYPERS: &str = r#"{"cutoff": {"radius": 3.5, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        "density": {"type": "Gaussian", "width": 0.4},
        "basis": {"type": "TensorProduct", "max_angular": 3, "radial": {"type": "Gto", "max_radial": 3}, "spline_accuracy": null}}"#;

    /// The serial join this module had before it ran structure by structure
    /// (one pass over the blocks, position storage grown as pairs appear):
    /// the reference the parallel join must equal bit for bit.
    fn serial_join(tensor: &TensorMap, layout: &FeatureLayout, systems: &[System], positions: bool, strain: bool) -> Vec<StructureFeatures> {
        let nf = layout.n_features();
        let bs = layout.block_size;
        let mut out: Vec<StructureFeatures> = systems
            .iter()
            .map(|s| StructureFeatures {
                values: vec![0.0; s.size() * nf],
                position_rows: vec![Vec::new(); if positions { s.size() } else { 0 }],
                strain: if strain { vec![0.0; s.size() * 9 * nf] } else { Vec::new() },
                species: s.types.iter().map(|&t| layout.species_index(t).unwrap()).collect(),
                position_values: Vec::new(),
            })
            .collect();
        let mut slots: Vec<Vec<HashMap<usize, usize>>> = if positions { systems.iter().map(|s| vec![HashMap::new(); s.size()]).collect() } else { Vec::new() };
        for (key, block) in tensor.keys.rows().zip(&tensor.blocks) {
            let p = layout.pairs.iter().position(|&q| q == (key[1], key[2])).unwrap();
            let samples: Vec<(usize, usize)> = block.samples.rows().map(|r| (r[0] as usize, r[1] as usize)).collect();
            for (row, &(s, i)) in samples.iter().enumerate() {
                out[s].values[i * nf + p * bs..i * nf + (p + 1) * bs].copy_from_slice(&block.values[row * bs..(row + 1) * bs]);
            }
            for (parameter, gradient) in &block.gradients {
                if parameter == "positions" && positions {
                    for (g, r) in gradient.samples.rows().enumerate() {
                        let (s, i) = samples[r[0] as usize];
                        let j = r[2] as usize;
                        let f = &mut out[s];
                        let offset = f.position_slot(&mut slots[s][i], i, j, nf);
                        for x in 0..3 {
                            let src = &gradient.values[(g * 3 + x) * bs..(g * 3 + x + 1) * bs];
                            f.position_values[offset + x * nf + p * bs..offset + x * nf + (p + 1) * bs].copy_from_slice(src);
                        }
                    }
                } else if parameter == "strain" && strain {
                    for (g, r) in gradient.samples.rows().enumerate() {
                        let (s, i) = samples[r[0] as usize];
                        for ab in 0..9 {
                            let src = &gradient.values[(g * 9 + ab) * bs..(g * 9 + ab + 1) * bs];
                            let o = (i * 9 + ab) * nf + p * bs;
                            out[s].strain[o..o + bs].copy_from_slice(src);
                        }
                    }
                }
            }
        }
        out
    }

    fn same(a: &[StructureFeatures], b: &[StructureFeatures]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x.species, y.species);
            assert_eq!(x.position_rows, y.position_rows);
            let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&x.values), bits(&y.values));
            assert_eq!(bits(&x.position_values), bits(&y.position_values));
            assert_eq!(bits(&x.strain), bits(&y.strain));
        }
    }

    #[test]
    fn parallel_join_equals_the_serial_join_bit_for_bit() {
        let calculator = SoapPowerSpectrum::new(HYPERS).unwrap();
        // two species; some structures hold one of them only, so some blocks
        // have no samples in some structures, and one structure is not periodic
        let mut systems: Vec<System> = (0..7).map(|seed| structure_pub(seed, if seed == 3 { 2 } else { 4 })).collect();
        let s = &systems[5];
        systems[5] = System::new(s.types.clone(), s.positions.clone(), [[0.0; 3]; 3], [false; 3]).unwrap();
        let layout = FeatureLayout::for_calculator(&calculator, vec![29, 79]).unwrap();
        for (positions, strain) in [(true, true), (true, false), (false, true), (false, false)] {
            let periodic: Vec<System> = systems.iter().filter(|s| !strain || s.is_periodic()).cloned().collect();
            let mut gradients = Vec::new();
            if positions {
                gradients.push("positions".to_string());
            }
            if strain {
                gradients.push("strain".to_string());
            }
            let tensor = calculator.compute(&periodic, &ComputeOptions { gradients, ..Default::default() }).unwrap();
            let reference = serial_join(&tensor, &layout, &periodic, positions, strain);
            assert!(!positions || reference.iter().all(|f| !f.position_values.is_empty()));
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let joined = pool.install(|| join_features(&tensor, &layout, &periodic, positions, strain)).unwrap();
                same(&joined, &reference);
            }
            // a structure with a species the layout does not know is named
            let narrow = FeatureLayout::new(vec![29], layout.block_size);
            let e = join_features(&tensor, &narrow, &periodic, positions, strain).unwrap_err().to_string();
            assert!(e.contains("not trained on") || e.contains("not in the model's species"), "{e}");
        }
    }
}
