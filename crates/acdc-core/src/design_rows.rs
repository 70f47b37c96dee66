//! Design-matrix rows straight from a calculator's output, without the
//! intermediate tensor operations: the per-atom blocks of an invariant
//! calculator (keys `center_type` + neighbour types, or pseudo-element
//! pairs with `density.alchemical`; samples `system`,
//! `atom`) are reduced per structure (or kept per atom) and placed into a
//! fixed column layout — every (centre species, neighbour combination) of a
//! species list × the calculator's properties, zeros where a combination is
//! absent.
//!
//! The values are those of the tensor route — `reduce_over_samples` over
//! "atom", a division by the atom count, `keys_to_properties` with explicit
//! key values, `keys_to_samples("center_type")` — bit for bit: each entry is
//! accumulated from zero in the block's sample order, scaled by the same
//! reciprocal, and added to zero once more (as a placement into a zeroed
//! array does, which turns -0 into +0).
use crate::budget::MemoryBudget;
use crate::calculators::soap::hypers::SoapHypers;
use crate::calculators::{entry, Calculator, ComputeOptions, NeighborKeys, REGISTRY};
use crate::error::{Error, Result};
use crate::tensor::{Labels, TensorMap};
use crate::System;

/// How the per-atom rows of a structure become rows of the design matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowReduction {
    /// One row per atom, in file order (system, atom); the centre species
    /// selects nothing: columns are the neighbour combinations × properties.
    PerAtom,
    /// Σ_i x_i over the atoms of the structure.
    Sum,
    /// (Σ_i x_i) / N, N the atom count of the structure.
    Mean,
    /// For each centre species a, (Σ_{i of species a} x_i) / N_a.
    SpeciesMean,
}

impl RowReduction {
    /// "atom", "sum", "mean" or "species-mean".
    pub fn from_name(name: &str) -> Result<RowReduction> {
        match name {
            "atom" => Ok(RowReduction::PerAtom),
            "sum" => Ok(RowReduction::Sum),
            "mean" => Ok(RowReduction::Mean),
            "species-mean" => Ok(RowReduction::SpeciesMean),
            other => Err(Error::InvalidParameter(format!(
                "reduction must be \"atom\", \"sum\", \"mean\" or \"species-mean\", got \"{other}\""
            ))),
        }
    }
}

/// Whether `calculator`'s design-row columns are neighbour pairs (k(k + 1)/2 per centre for k species).
fn pairs(calculator: &dyn Calculator) -> bool {
    entry(calculator.name()).map(|e| e.design_rows == Some(NeighborKeys::Pairs)).unwrap_or(false)
}

/// The columns of a design matrix: centre species (per-structure rows only)
/// × neighbour key combinations × properties, in this order.
#[derive(Clone, Debug)]
pub struct DesignLayout {
    species: Vec<i32>,
    neighbors: Labels,
    properties: Labels,
    reduction: RowReduction,
}

/// The neighbour key combinations of calculator `name` for these species,
/// as its registry entry's [`NeighborKeys`] says: ordered pairs a ≤ b
/// (`neighbor_1_type`, `neighbor_2_type`) for the power spectrum, single
/// species (`neighbor_type`) for the radial spectrum.
pub fn neighbor_keys(name: &str, species: &[i32]) -> Result<Labels> {
    match entry(name)?.design_rows {
        Some(NeighborKeys::Pairs) => {
            let mut values = Vec::new();
            for &a in species {
                for &b in species {
                    if a <= b {
                        values.extend_from_slice(&[a, b]);
                    }
                }
            }
            Ok(Labels::new(&["neighbor_1_type", "neighbor_2_type"], values))
        }
        Some(NeighborKeys::Singles) => Ok(Labels::new(&["neighbor_type"], species.to_vec())),
        None => {
            let names: Vec<&str> = REGISTRY.iter().filter(|e| e.design_rows.is_some()).map(|e| e.name).collect();
            Err(Error::InvalidParameter(format!("design rows are computed for {}, not \"{name}\"", names.join(" and "))))
        }
    }
}

/// The neighbour key combinations of `calculator` for these species: those
/// of [`neighbor_keys`], except for a power spectrum with
/// `density.alchemical`, whose keys are pairs of pseudo-elements b₁ ≤ b₂
/// (`pseudo_1_type`, `pseudo_2_type`, numbered 0..B from the rows of the
/// coupling) whatever the species.
pub fn calculator_keys(calculator: &dyn Calculator, species: &[i32]) -> Result<Labels> {
    if pairs(calculator) {
        let (_, settings) = SoapHypers::from_json("hypers", calculator.parameters())?;
        if let Some(alchemical) = settings.alchemical {
            let b = alchemical.coupling.len() as i32;
            let mut values = Vec::new();
            for b1 in 0..b {
                for b2 in b1..b {
                    values.extend_from_slice(&[b1, b2]);
                }
            }
            return Ok(Labels::new(&["pseudo_1_type", "pseudo_2_type"], values));
        }
    }
    neighbor_keys(calculator.name(), species)
}

impl DesignLayout {
    /// The layout for `calculator` over `species` (sorted and deduplicated
    /// here): the properties are those the calculator gives a single atom of
    /// the first species, the same for every block of these calculators.
    pub fn for_calculator(calculator: &dyn Calculator, species: &[i32], reduction: RowReduction) -> Result<DesignLayout> {
        DesignLayout::for_calculator_within(calculator, species, reduction, crate::budget::MemoryBudget::global())
    }

    /// [`DesignLayout::for_calculator`], refusing before any key is built
    /// when one row of the columns and their labels would not fit `budget`
    /// (k species give k(k + 1)/2 neighbour pairs, and k times as many
    /// column groups per structure).
    pub fn for_calculator_within(calculator: &dyn Calculator, species: &[i32], reduction: RowReduction, budget: crate::budget::MemoryBudget) -> Result<DesignLayout> {
        let mut species = species.to_vec();
        species.sort_unstable();
        species.dedup();
        let Some(&first) = species.first() else {
            return Err(Error::InvalidParameter("design rows need at least one species".into()));
        };
        let probe = System::new(vec![first], vec![[0.0; 3]], [[0.0; 3]; 3], [false; 3])?;
        let tensor = calculator.compute(&[probe], &ComputeOptions::default())?;
        let block = tensor.blocks.first().ok_or_else(|| {
            Error::InvalidParameter(format!("{} gives no block for one atom of species {first}", calculator.name()))
        })?;
        let k = species.len() as f64;
        let keys = if pairs(calculator) { k * (k + 1.0) / 2.0 } else { k };
        let groups = if reduction == RowReduction::PerAtom { keys } else { k * keys };
        let columns = groups * block.properties.count() as f64;
        // one row of float64, and the column labels (up to 6 int32 each)
        budget.check(&format!("the columns of {} species ({columns:.3e} columns)", species.len()), columns * (8.0 + 24.0) + keys * 8.0)?;
        let neighbors = calculator_keys(calculator, &species)?;
        Ok(DesignLayout { species, neighbors, properties: block.properties.clone(), reduction })
    }

    /// The layout from its parts (species sorted and deduplicated here).
    pub fn new(species: &[i32], neighbors: Labels, properties: Labels, reduction: RowReduction) -> DesignLayout {
        let mut species = species.to_vec();
        species.sort_unstable();
        species.dedup();
        DesignLayout { species, neighbors, properties, reduction }
    }

    /// The reduction.
    pub fn reduction(&self) -> RowReduction {
        self.reduction
    }

    /// Key combinations that own a group of columns.
    fn groups(&self) -> usize {
        match self.reduction {
            RowReduction::PerAtom => self.neighbors.count(),
            _ => self.species.len() * self.neighbors.count(),
        }
    }

    /// Number of columns.
    pub fn columns(&self) -> usize {
        self.groups() * self.properties.count()
    }

    /// Column labels: (`center_type`,) neighbour dimensions, property
    /// dimensions — as `keys_to_properties` names them.
    pub fn column_labels(&self) -> Labels {
        let mut names: Vec<String> = Vec::new();
        if self.reduction != RowReduction::PerAtom {
            names.push("center_type".into());
        }
        names.extend(self.neighbors.names.iter().cloned());
        names.extend(self.properties.names.iter().cloned());
        let mut values = Vec::with_capacity(self.columns() * names.len());
        let centres: Vec<Option<i32>> = match self.reduction {
            RowReduction::PerAtom => vec![None],
            _ => self.species.iter().map(|&s| Some(s)).collect(),
        };
        for c in &centres {
            for n in self.neighbors.rows() {
                for p in self.properties.rows() {
                    values.extend(c.iter());
                    values.extend_from_slice(n);
                    values.extend_from_slice(p);
                }
            }
        }
        Labels { names, values }
    }

    /// Number of rows for structures of these atom counts.
    pub fn rows(&self, sizes: &[usize]) -> usize {
        match self.reduction {
            RowReduction::PerAtom => sizes.iter().sum(),
            _ => sizes.len(),
        }
    }
}

/// Rows of a design matrix, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct DesignRows {
    /// rows × columns values.
    pub values: Vec<f64>,
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub columns: usize,
}

fn dimension(labels: &Labels, name: &str, what: &str) -> Result<usize> {
    labels
        .dimension(name)
        .ok_or_else(|| Error::InvalidParameter(format!("{what}: no dimension named \"{name}\" (dimensions are {:?})", labels.names)))
}

/// A reusable buffer of design rows that remembers which ranges hold
/// non-zero values, so that only those are zeroed again (a design matrix of
/// several species is mostly zeros).
#[derive(Clone, Debug, Default)]
pub struct RowBuffer {
    /// The rows of the last batch, row-major.
    pub values: Vec<f64>,
    /// (start, length) of the ranges of `values` written by the last batch.
    written: Vec<(usize, usize)>,
}

impl RowBuffer {
    /// `len` zeros, reusing the memory (and zeroing only what was written).
    fn reset(&mut self, len: usize, what: &str) -> Result<()> {
        if self.values.len() == len {
            for &(start, n) in &self.written {
                self.values[start..start + n].iter_mut().for_each(|v| *v = 0.0);
            }
        } else {
            self.values.clear();
            self.values
                .try_reserve_exact(len)
                .map_err(|_| Error::Memory(format!("{what} need {:.1} GB, more than is available", len as f64 * 8e-9)))?;
            self.values.resize(len, 0.0);
        }
        self.written.clear();
        Ok(())
    }
}

/// Places the per-atom blocks of `tensor` (computed for structures of
/// `sizes` atoms) into rows of `layout`. `budget` bounds the rows' memory.
pub fn place_rows(tensor: &TensorMap, sizes: &[usize], layout: &DesignLayout, budget: MemoryBudget) -> Result<DesignRows> {
    let mut buffer = RowBuffer::default();
    let rows = place_rows_into(tensor, sizes, layout, budget, &mut buffer)?;
    Ok(DesignRows { values: buffer.values, rows, columns: layout.columns() })
}

/// [`place_rows`] into `buffer` (its memory is reused), returning the number
/// of rows: `buffer.values` holds them.
pub fn place_rows_into(tensor: &TensorMap, sizes: &[usize], layout: &DesignLayout, budget: MemoryBudget, buffer: &mut RowBuffer) -> Result<usize> {
    let rows = layout.rows(sizes);
    let columns = layout.columns();
    let len = rows
        .checked_mul(columns)
        .ok_or_else(|| Error::InvalidParameter("design rows: more than 2^64 values".into()))?;
    let what = format!("the design-matrix rows of this batch ({rows} × {columns})");
    budget.check(&what, len as f64 * 8.0)?;
    buffer.reset(len, &what)?;
    let RowBuffer { values, written } = buffer;
    let nprops = layout.properties.count();

    let centre_dim = dimension(&tensor.keys, "center_type", "design rows (keys)")?;
    let neighbor_dims: Vec<usize> = layout
        .neighbors
        .names
        .iter()
        .map(|n| dimension(&tensor.keys, n, "design rows (keys)"))
        .collect::<Result<_>>()?;
    if tensor.keys.size() != 1 + neighbor_dims.len() {
        return Err(Error::InvalidParameter(format!("design rows: unexpected key dimensions {:?}", tensor.keys.names)));
    }
    let mut offsets = Vec::with_capacity(sizes.len());
    let mut acc = 0usize;
    for &n in sizes {
        offsets.push(acc);
        acc += n;
    }
    // samples of the current block in each structure
    let mut counts = vec![0usize; sizes.len()];
    let mut neighbor = vec![0i32; neighbor_dims.len()];

    for (k, block) in tensor.blocks.iter().enumerate() {
        let key = tensor.keys.row(k);
        let centre = key[centre_dim];
        neighbor.iter_mut().zip(&neighbor_dims).for_each(|(v, &d)| *v = key[d]);
        let unknown = || Error::InvalidParameter(format!("design rows: the key {key:?} is not among the columns (species {:?})", layout.species));
        let n_slot = layout.neighbors.position(&neighbor).ok_or_else(unknown)?;
        let slot = match layout.reduction {
            RowReduction::PerAtom => n_slot,
            _ => layout.species.binary_search(&centre).map_err(|_| unknown())? * layout.neighbors.count() + n_slot,
        };
        if block.properties != layout.properties || !block.components.is_empty() {
            return Err(Error::InvalidParameter(format!(
                "design rows: block {key:?} has properties {:?} and {} components, not the layout's {:?}",
                block.properties.names,
                block.components.len(),
                layout.properties.names
            )));
        }
        let sd = dimension(&block.samples, "system", "design rows (samples)")?;
        let ad = dimension(&block.samples, "atom", "design rows (samples)")?;
        let base = slot * nprops;
        counts.iter_mut().for_each(|c| *c = 0);
        for (r, sample) in block.samples.rows().enumerate() {
            let (s, a) = (sample[sd], sample[ad]);
            let bad = || Error::InvalidParameter(format!("design rows: sample (system {s}, atom {a}) outside the batch"));
            let s = usize::try_from(s).ok().filter(|&s| s < sizes.len()).ok_or_else(bad)?;
            let a = usize::try_from(a).ok().filter(|&a| a < sizes[s]).ok_or_else(bad)?;
            let row = match layout.reduction {
                RowReduction::PerAtom => offsets[s] + a,
                _ => s,
            };
            if counts[s] == 0 || layout.reduction == RowReduction::PerAtom {
                written.push((row * columns + base, nprops));
            }
            counts[s] += 1;
            let src = &block.values[r * nprops..(r + 1) * nprops];
            let dst = &mut values[row * columns + base..row * columns + base + nprops];
            dst.iter_mut().zip(src).for_each(|(d, &x)| *d += x);
        }
        // each (structure, key) group of columns is complete once its block
        // is: scale it now (the untouched zeros would stay +0 anyway)
        let scale = |s: usize, c: usize| match layout.reduction {
            RowReduction::Mean => Some(1.0 / sizes[s] as f64),
            RowReduction::SpeciesMean => Some(1.0 / c as f64),
            _ => None,
        };
        for (s, &c) in counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            if let Some(inv) = scale(s, c) {
                values[s * columns + base..s * columns + base + nprops].iter_mut().for_each(|v| *v = 0.0 + *v * inv);
            }
        }
    }
    Ok(rows)
}

/// Computes `calculator` on `systems` and places the result into rows of
/// `layout` (see [`place_rows`]); `options.max_memory` bounds both.
pub fn design_rows(calculator: &dyn Calculator, systems: &[System], layout: &DesignLayout, options: &ComputeOptions) -> Result<DesignRows> {
    let mut buffer = RowBuffer::default();
    let rows = design_rows_into(calculator, systems, layout, options, &mut buffer)?;
    Ok(DesignRows { values: buffer.values, rows, columns: layout.columns() })
}

/// [`design_rows`] into `buffer` (its memory is reused); returns the number
/// of rows.
pub fn design_rows_into(calculator: &dyn Calculator, systems: &[System], layout: &DesignLayout, options: &ComputeOptions, buffer: &mut RowBuffer) -> Result<usize> {
    let sizes: Vec<usize> = systems.iter().map(System::size).collect();
    let tensor = calculator.compute(systems, options)?;
    place_rows_into(&tensor, &sizes, layout, MemoryBudget::or_global(options.max_memory), buffer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calculators::{from_name, SoapPowerSpectrum, SoapRadialSpectrum, SphericalExpansion};
    use crate::tensor::ops;

    const HYPERS: &str = r#"{"cutoff": {"radius": 3.5, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        "density": {"type": "Gaussian", "width": 0.3},
        "basis": {"type": "TensorProduct", "max_angular": 3, "radial": {"type": "Gto", "max_radial": 3}}}"#;
    const RADIAL: &str = r#"{"cutoff": {"radius": 3.5, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        "density": {"type": "Gaussian", "width": 0.3},
        "basis": {"radial": {"type": "Gto", "max_radial": 4}}}"#;

    /// Structures where some species are absent, one without atoms, one
    /// periodic.
    fn systems() -> Vec<System> {
        let none = [[0.0; 3]; 3];
        vec![
            crate::calculators::tests_utils::molecule(),
            System::new(vec![1, 1], vec![[0.0; 3], [0.74, 0.0, 0.0]], none, [false; 3]).unwrap(),
            System::new(vec![], vec![], none, [false; 3]).unwrap(),
            System::new(vec![8, 1, 1], vec![[0.0; 3], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]], none, [false; 3]).unwrap(),
            crate::calculators::tests_utils::triclinic(),
            System::new(vec![6], vec![[0.0; 3]], none, [false; 3]).unwrap(),
        ]
    }

    /// The tensor route of `acdc featurize`: reduce, divide, move keys, then
    /// place rows in structure (or file) order.
    fn tensor_route(tensor: &TensorMap, sizes: &[usize], layout: &DesignLayout) -> Vec<f64> {
        let atom = ["atom".to_string()];
        let mut t = tensor.clone();
        match layout.reduction {
            RowReduction::Sum | RowReduction::Mean => t = ops::reduce_over_samples(&t, &atom, false).unwrap(),
            RowReduction::SpeciesMean => t = ops::reduce_over_samples(&t, &atom, true).unwrap(),
            RowReduction::PerAtom => {}
        }
        if layout.reduction == RowReduction::Mean {
            for b in &mut t.blocks {
                let n = b.properties.count();
                for (r, s) in b.samples.rows().map(|r| r[0] as usize).collect::<Vec<_>>().into_iter().enumerate() {
                    let scale = if sizes[s] > 0 { 1.0 / sizes[s] as f64 } else { 0.0 };
                    b.values[r * n..(r + 1) * n].iter_mut().for_each(|v| *v *= scale);
                }
            }
        }
        let per_atom = layout.reduction == RowReduction::PerAtom;
        let dense = if per_atom {
            let t = ops::keys_to_properties(&t, &layout.neighbors).unwrap();
            ops::keys_to_samples(&t, &["center_type".to_string()]).unwrap()
        } else {
            let mut values = Vec::new();
            for &c in &layout.species {
                for n in layout.neighbors.rows() {
                    values.push(c);
                    values.extend_from_slice(n);
                }
            }
            let mut names = vec!["center_type".to_string()];
            names.extend(layout.neighbors.names.iter().cloned());
            ops::keys_to_properties(&t, &Labels { names, values }).unwrap()
        };
        let block = &dense.blocks[0];
        assert_eq!(block.properties, layout.column_labels());
        let columns = block.properties.count();
        let mut out = vec![0.0; layout.rows(sizes) * columns];
        let offsets: Vec<usize> = sizes.iter().scan(0, |acc, &n| { let o = *acc; *acc += n; Some(o) }).collect();
        for (r, s) in block.samples.rows().enumerate() {
            let row = if per_atom { offsets[s[0] as usize] + s[1] as usize } else { s[0] as usize };
            out[row * columns..(row + 1) * columns].copy_from_slice(&block.values[r * columns..(r + 1) * columns]);
        }
        out
    }

    fn check(name: &str, hypers: &str, species: &[i32]) {
        let calc = from_name(name, hypers).unwrap();
        let systems = systems();
        let sizes: Vec<usize> = systems.iter().map(System::size).collect();
        let tensor = calc.compute(&systems, &ComputeOptions::default()).unwrap();
        for reduction in [RowReduction::PerAtom, RowReduction::Sum, RowReduction::Mean, RowReduction::SpeciesMean] {
            let layout = DesignLayout::for_calculator(calc.as_ref(), species, reduction).unwrap();
            let rows = design_rows(calc.as_ref(), &systems, &layout, &ComputeOptions::default()).unwrap();
            let expected = tensor_route(&tensor, &sizes, &layout);
            assert_eq!(rows.rows * rows.columns, expected.len());
            assert_eq!(rows.columns, layout.column_labels().count());
            // bit for bit, -0 and +0 told apart
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(bits(&rows.values) == bits(&expected), "{name} {reduction:?}: rows differ from the tensor route");
            assert!(rows.values.iter().any(|&v| v != 0.0));
        }
    }

    #[test]
    fn power_spectrum_rows_match_the_tensor_route() {
        check(SoapPowerSpectrum::NAME, HYPERS, &[1, 6, 7, 8, 14]);
        // species not in any structure (3) and the triclinic cell's species
        let species: Vec<i32> = {
            let mut s: Vec<i32> = systems().iter().flat_map(|s| s.types.clone()).collect();
            s.push(3);
            s
        };
        check(SoapPowerSpectrum::NAME, HYPERS, &species);
    }

    #[test]
    fn alchemical_rows_match_the_tensor_route() {
        // 2 pseudo-elements of 5 types (14 absent from the structures); the
        // columns are the pseudo pairs (0,0), (0,1), (1,1) whatever the species
        const ALCHEMICAL: &str = r#"{"cutoff": {"radius": 3.5, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
            "density": {"type": "Gaussian", "width": 0.3, "alchemical": {"types": [1, 6, 7, 8, 14],
                "coupling": [[0.5, -0.25, 1.0, 0.75, 0.1], [0.0, 1.0, -0.5, 0.25, 2.0]]}},
            "basis": {"type": "TensorProduct", "max_angular": 3, "radial": {"type": "Gto", "max_radial": 3}}}"#;
        check(SoapPowerSpectrum::NAME, ALCHEMICAL, &[1, 6, 7, 8]);
        let calc = from_name(SoapPowerSpectrum::NAME, ALCHEMICAL).unwrap();
        let layout = DesignLayout::for_calculator(calc.as_ref(), &[1, 6, 7, 8], RowReduction::PerAtom).unwrap();
        let labels = layout.column_labels();
        assert_eq!(&labels.names[..2], &["pseudo_1_type".to_string(), "pseudo_2_type".to_string()]);
        assert_eq!(layout.columns(), 3 * layout.properties.count());
    }

    #[test]
    fn a_reused_buffer_gives_the_rows_of_a_fresh_one() {
        let calc = from_name(SoapPowerSpectrum::NAME, HYPERS).unwrap();
        let all = systems();
        let species: Vec<i32> = all.iter().flat_map(|s| s.types.clone()).collect();
        for reduction in [RowReduction::PerAtom, RowReduction::Mean, RowReduction::SpeciesMean] {
            let layout = DesignLayout::for_calculator(calc.as_ref(), &species, reduction).unwrap();
            let mut buffer = RowBuffer::default();
            // batches of the same shape (3 structures) and of another one
            for batch in [&all[0..3], &all[3..6], &all[1..4], &all[0..2], &all[4..6]] {
                let options = ComputeOptions::default();
                let rows = design_rows_into(calc.as_ref(), batch, &layout, &options, &mut buffer).unwrap();
                let fresh = design_rows(calc.as_ref(), batch, &layout, &options).unwrap();
                assert_eq!(rows, fresh.rows);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert!(bits(&buffer.values) == bits(&fresh.values), "{reduction:?}: reused buffer differs");
            }
        }
    }

    #[test]
    fn radial_spectrum_rows_match_the_tensor_route() {
        let species: Vec<i32> = systems().iter().flat_map(|s| s.types.clone()).collect();
        check(SoapRadialSpectrum::NAME, RADIAL, &species);
    }

    #[test]
    fn unknown_species_and_calculators_are_errors() {
        let calc = from_name(SoapPowerSpectrum::NAME, HYPERS).unwrap();
        let layout = DesignLayout::for_calculator(calc.as_ref(), &[1, 6], RowReduction::Sum).unwrap();
        let err = design_rows(calc.as_ref(), &systems()[..1], &layout, &ComputeOptions::default()).unwrap_err();
        assert!(err.to_string().contains("not among the columns"), "{err}");
        let se = from_name(SphericalExpansion::NAME, HYPERS).unwrap();
        assert!(DesignLayout::for_calculator(se.as_ref(), &[1], RowReduction::Sum).is_err());
        assert!(DesignLayout::for_calculator(calc.as_ref(), &[], RowReduction::Sum).is_err());
        assert!(RowReduction::from_name("median").is_err());
        let tiny = ComputeOptions { max_memory: Some(64), ..Default::default() };
        assert!(design_rows(calc.as_ref(), &systems()[1..2], &DesignLayout::for_calculator(calc.as_ref(), &[1], RowReduction::Sum).unwrap(), &tiny).is_err());
    }
}
