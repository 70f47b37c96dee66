//! ν = 3 per-atom features for potentials: the SOAP bispectrum
//! ([`SoapBispectrum`], body order 4) of each atom as one property vector,
//! with its position and strain gradients, in the same
//! [`StructureFeatures`] form as the power spectrum's so that the linear
//! model and the sparse GPR use either unchanged.
//!
//! The property layout is fixed once for the model's species: every
//! (l₁, l₂, k₂, l₃, a₁, n₁, a₂, n₂, a₃, n₃) that the calculator gives a
//! structure holding all of them, in the calculator's order, except the
//! duplicates of the 1 ↔ 2 swap: when l₁ = l₂ the coupling is symmetric in
//! the first two densities (the Clebsch–Gordan phase (−1)^(l₁+l₂−l₃) is +1
//! since the sum is even), so only (a₁, n₁) ≤ (a₂, n₂) is kept. A structure
//! without some species has fewer properties; they are placed by label, and
//! the missing ones are zero.
//!
//! The bispectrum grows as (species · n_radial)³ · (number of l triples):
//! [`MAX_BISPECTRUM_FEATURES`] bounds it before anything is computed.
use std::collections::HashMap;

use super::atomic_features::{FeatureLayout, StructureFeatures};
use crate::calculators::soap::hypers::SoapHypers;
use crate::calculators::{Calculator, ComputeOptions, SoapBispectrum};
use crate::error::{Error, Result};
use crate::system::System;
use crate::tensor::{Labels, TensorMap};

/// Which per-atom features a potential is learnt on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeatureKind {
    /// The SOAP power spectrum (ν = 2, body order 3), [`crate::calculators::SoapPowerSpectrum`].
    #[default]
    PowerSpectrum,
    /// The SOAP bispectrum (ν = 3, body order 4), [`SoapBispectrum`].
    Bispectrum,
}

impl FeatureKind {
    /// The option's value: `power_spectrum` (the SOAP power spectrum) or
    /// `bispectrum` (the SOAP bispectrum of the same hypers).
    pub fn name(&self) -> &'static str {
        match self {
            FeatureKind::PowerSpectrum => "power_spectrum",
            FeatureKind::Bispectrum => "bispectrum",
        }
    }

    /// Parses the option's value; `what` names the option in the error.
    pub fn from_name(what: &str, name: &str) -> Result<FeatureKind> {
        match name {
            "power_spectrum" => Ok(FeatureKind::PowerSpectrum),
            "bispectrum" => Ok(FeatureKind::Bispectrum),
            other => Err(Error::InvalidParameter(format!("{what} = \"{other}\" (expected \"power_spectrum\" or \"bispectrum\")"))),
        }
    }
}

/// Largest number of bispectrum features per atom a model accepts (after
/// the 1 ↔ 2 duplicates are dropped). The linear model has this many
/// weights per species and its least-squares factor their square; above
/// this the fit would take hours and gigabytes on a workstation.
pub const MAX_BISPECTRUM_FEATURES: usize = 30_000;

/// Number of bispectrum features per atom for these hypers and this many
/// species, from the hypers alone (before any allocation): the valid l
/// triples l₁ ≤ l₂ ≤ l₃ ≤ l_max (even sum, l₃ ≤ l₁ + l₂) times the radial
/// and species channels, with the l₁ = l₂ duplicates removed.
pub fn bispectrum_feature_count(hypers: &str, n_species: usize) -> Result<u128> {
    let (_, settings) = SoapHypers::from_json("hypers", hypers)?;
    let channels = |l: usize| n_species as u128 * settings.sizes.get(l).copied().unwrap_or(0) as u128;
    let lmax = settings.max_angular;
    let mut count: u128 = 0;
    for l1 in 0..=lmax {
        for l2 in l1..=lmax {
            for l3 in l2..=lmax.min(l1 + l2) {
                if (l1 + l2 + l3) % 2 != 0 {
                    continue;
                }
                let (a, b, c) = (channels(l1), channels(l2), channels(l3));
                count += if l1 == l2 { a * (a + 1) / 2 * c } else { a * b * c };
            }
        }
    }
    Ok(count)
}

/// The bispectrum of a model's species and the place of each property in
/// the joined feature vector.
pub struct BispectrumMap {
    calculator: SoapBispectrum,
    /// Property label → feature index.
    columns: HashMap<Vec<i32>, usize>,
    n_features: usize,
}

impl BispectrumMap {
    /// The map for these hypers (featomic SOAP JSON) and the model's sorted
    /// species; refuses feature counts above [`MAX_BISPECTRUM_FEATURES`].
    pub fn new(hypers: &str, species: &[i32]) -> Result<BispectrumMap> {
        let calculator = SoapBispectrum::new(hypers)?;
        let expected = bispectrum_feature_count(hypers, species.len())?;
        if expected > MAX_BISPECTRUM_FEATURES as u128 {
            let (_, s) = SoapHypers::from_json("hypers", hypers)?;
            return Err(Error::InvalidParameter(format!(
                "features = \"bispectrum\": {} species with max_radial {} and max_angular {} give {expected} bispectrum features per atom, \
                 more than the {MAX_BISPECTRUM_FEATURES} a model accepts: lower max_radial or max_angular",
                species.len(),
                s.sizes.first().copied().unwrap_or(1).saturating_sub(1),
                s.max_angular
            )));
        }
        if species.is_empty() {
            return Err(Error::InvalidParameter("no atoms to fit".into()));
        }
        // one isolated atom of every species: the full property set, no neighbours
        let positions: Vec<[f64; 3]> = (0..species.len()).map(|k| [1e4 * k as f64, 0.0, 0.0]).collect();
        let probe = System::new(species.to_vec(), positions, [[0.0; 3]; 3], [false; 3])?;
        let t = calculator.compute(&[probe], &ComputeOptions::default())?;
        let block = t.blocks.first().ok_or_else(|| Error::InvalidParameter("the bispectrum of the species has no blocks".into()))?;
        let dims = property_dimensions(&block.properties)?;
        let mut columns = HashMap::new();
        for row in block.properties.rows() {
            if keep(row, &dims) {
                let n = columns.len();
                columns.insert(row.to_vec(), n);
            }
        }
        let n_features = columns.len();
        if n_features as u128 != expected {
            return Err(Error::InvalidParameter(format!(
                "the bispectrum gives {n_features} features per atom, the hypers predict {expected}: unsupported basis for features = \"bispectrum\""
            )));
        }
        Ok(BispectrumMap { calculator, columns, n_features })
    }

    /// Features per atom.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The calculator.
    pub fn calculator(&self) -> &SoapBispectrum {
        &self.calculator
    }

    /// Feature index of each property of a block (None: a dropped duplicate).
    pub fn columns(&self, properties: &Labels) -> Result<Vec<Option<usize>>> {
        let dims = property_dimensions(properties)?;
        properties
            .rows()
            .map(|row| {
                if !keep(row, &dims) {
                    return Ok(None);
                }
                self.columns.get(row).copied().map(Some).ok_or_else(|| {
                    Error::InvalidParameter(format!("bispectrum property {row:?} is not in the model's layout (a species the model was not trained on?)"))
                })
            })
            .collect()
    }

    /// Computes the joined bispectrum of `systems` (and its gradients when asked).
    pub fn compute(
        &self,
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
        let tensor = self.calculator.compute(systems, &options)?;
        self.join(&tensor, layout, systems, positions, strain)
    }

    /// Places the properties of a bispectrum of `systems` in the model's
    /// feature vectors; gradients only when asked (and present).
    pub fn join(&self, tensor: &TensorMap, layout: &FeatureLayout, systems: &[System], positions: bool, strain: bool) -> Result<Vec<StructureFeatures>> {
        let nf = layout.n_features();
        if nf != self.n_features {
            return Err(Error::InvalidParameter(format!("the model has {nf} features per atom, the bispectrum {}", self.n_features)));
        }
        layout.check_systems(systems, 0)?;
        let mut out: Vec<StructureFeatures> = systems
            .iter()
            .map(|s| StructureFeatures {
                species: s.types.iter().map(|&t| layout.species_index(t).unwrap_or(usize::MAX)).collect(),
                values: vec![0.0; s.size() * nf],
                position_rows: vec![Vec::new(); if positions { s.size() } else { 0 }],
                position_values: Vec::new(),
                strain: if strain { vec![0.0; s.size() * 9 * nf] } else { Vec::new() },
            })
            .collect();
        let mut slots: Vec<Vec<HashMap<usize, usize>>> = if positions { systems.iter().map(|s| vec![HashMap::new(); s.size()]).collect() } else { Vec::new() };
        for block in &tensor.blocks {
            let columns = self.columns(&block.properties)?;
            let bs = columns.len();
            let samples: Vec<(usize, usize)> = block.samples.rows().map(|r| (r[0] as usize, r[1] as usize)).collect();
            for (row, &(s, i)) in samples.iter().enumerate() {
                let dst = &mut out[s].values[i * nf..(i + 1) * nf];
                for (k, c) in columns.iter().enumerate() {
                    if let Some(c) = c {
                        dst[*c] = block.values[row * bs + k];
                    }
                }
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
                            let dst = &mut f.position_values[offset + x * nf..offset + (x + 1) * nf];
                            for (k, c) in columns.iter().enumerate() {
                                if let Some(c) = c {
                                    dst[*c] = src[k];
                                }
                            }
                        }
                    }
                } else if parameter == "strain" && strain {
                    for (g, r) in gradient.samples.rows().enumerate() {
                        let (s, i) = samples[r[0] as usize];
                        let f = &mut out[s];
                        for ab in 0..9 {
                            let src = &gradient.values[(g * 9 + ab) * bs..(g * 9 + ab + 1) * bs];
                            let dst = &mut f.strain[(i * 9 + ab) * nf..(i * 9 + ab + 1) * nf];
                            for (k, c) in columns.iter().enumerate() {
                                if let Some(c) = c {
                                    dst[*c] = src[k];
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Positions of l_1, l_2, neighbor_1_type, n_1, neighbor_2_type, n_2 in the properties.
fn property_dimensions(properties: &Labels) -> Result<[usize; 6]> {
    let mut out = [0; 6];
    for (k, name) in ["l_1", "l_2", "neighbor_1_type", "n_1", "neighbor_2_type", "n_2"].iter().enumerate() {
        out[k] = properties
            .dimension(name)
            .ok_or_else(|| Error::InvalidParameter(format!("bispectrum properties have no dimension \"{name}\"")))?;
    }
    Ok(out)
}

/// False for the second copy of a 1 ↔ 2 swap (l₁ = l₂, (a₂, n₂) < (a₁, n₁)).
fn keep(row: &[i32], d: &[usize; 6]) -> bool {
    row[d[0]] != row[d[1]] || (row[d[2]], row[d[3]]) <= (row[d[4]], row[d[5]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::model_file;
    use crate::models::potential::{FitOptions, KindOptions, Potential, PredictOptions, Sigmas, SparseMethod, Targets, E0};

    const HYPERS: &str = r#"{"cutoff": {"radius": 3.5, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        "density": {"type": "Gaussian", "width": 0.4},
        "basis": {"type": "TensorProduct", "max_angular": 2, "radial": {"type": "Gto", "max_radial": 2}, "spline_accuracy": null}}"#;

    /// A distorted 4-atom fcc cell of Cu with one Au in every other seed.
    fn structure(seed: u32) -> System {
        let mut state = 0x9e37_79b9u64.wrapping_mul(seed as u64 + 1);
        let mut rand = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let a = 3.6 + 0.1 * rand();
        let base = [[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]];
        let positions = base.iter().map(|b| [0, 1, 2].map(|x| a * b[x] + 0.2 * rand())).collect();
        let types = (0..4).map(|k| if k == 3 && seed % 2 == 0 { 79 } else { 29 }).collect();
        let cell = [[a + 0.1 * rand(), 0.2 * rand(), 0.0], [0.0, a, 0.1 * rand()], [0.1 * rand(), 0.0, a]];
        System::new(types, positions, cell, [true; 3]).unwrap()
    }

    fn targets(systems: &[System]) -> Targets {
        let mut t = Targets { energy: Vec::new(), forces: Some(Vec::new()), stress: Some(Vec::new()), frame_sigmas: Vec::new() };
        for (k, s) in systems.iter().enumerate() {
            t.energy.push(-3.0 * s.size() as f64 + 0.01 * k as f64);
            t.forces.as_mut().unwrap().push((0..3 * s.size()).map(|i| 0.01 * ((i * 7 + k) % 5) as f64 - 0.02).collect());
            t.stress.as_mut().unwrap().push(Some([0.001 * k as f64, 0.0, 0.0, 0.0, 0.002, 0.0, 0.0, 0.0, -0.001]));
        }
        t
    }

    fn options(kind: KindOptions) -> FitOptions {
        FitOptions { hypers: HYPERS.into(), kind, sigmas: Sigmas { energy: 0.01, forces: 0.1, stress: 0.01 }, e0: E0::Average, batch_atoms: 9, cancel: None, pair: None }
    }

    fn gpr() -> KindOptions {
        KindOptions::SparseGpr { count: 3, counts: vec![], method: SparseMethod::Cur, seed: 0, zeta: 3, delta: 0.5, jitter: 1e-8 }
    }

    /// Forces and stress against central differences of the energy (h = 1e-5
    /// Å and strain), ≤ 1e-6 relative to the largest component of the frame.
    fn check_finite_differences(p: &Potential, s: &System) {
        let opts = PredictOptions { forces: true, stress: true, variance: false };
        let pred = p.predict(&[s.clone()], &opts, 100, &None).unwrap();
        let energy = |s: &System| p.predict(&[s.clone()], &PredictOptions::default(), 100, &None).unwrap().energy[0];
        let h = 1e-5;
        let largest = pred.forces[0].iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let largest_stress = pred.stress[0].iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(largest > 1e-4 && largest_stress > 1e-6, "forces {largest} / stress {largest_stress} ~ 0: the test would not see an error");
        for i in 0..s.size() {
            for x in 0..3 {
                let mut plus = s.clone();
                plus.positions[i][x] += h;
                let mut minus = s.clone();
                minus.positions[i][x] -= h;
                let fd = -(energy(&plus) - energy(&minus)) / (2.0 * h);
                let an = pred.forces[0][3 * i + x];
                assert!((fd - an).abs() < 1e-6 * largest, "force {i} {x}: {an} vs {fd} (largest {largest})");
            }
        }
        for a in 0..3 {
            for b in 0..3 {
                let deform = |e: f64| {
                    let mut t = s.clone();
                    let mut m = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
                    m[a][b] += e;
                    let apply = |v: [f64; 3]| [0, 1, 2].map(|r| (0..3).map(|c| m[r][c] * v[c]).sum::<f64>());
                    t.positions = t.positions.iter().map(|&v| apply(v)).collect();
                    for row in t.cell.iter_mut() {
                        *row = apply(*row);
                    }
                    t
                };
                let fd = (energy(&deform(h)) - energy(&deform(-h))) / (2.0 * h) / s.volume();
                let an = pred.stress[0][3 * a + b];
                assert!((fd - an).abs() < 1e-6 * largest_stress, "stress {a} {b}: {an} vs {fd} (largest {largest_stress})");
            }
        }
    }

    /// The dropped columns equal their 1 ↔ 2 partners, and the count from the hypers is exact.
    #[test]
    fn dropped_duplicates_are_equal() {
        let map = BispectrumMap::new(HYPERS, &[29, 79]).unwrap();
        // 2 species × 3 radial = 6 channels; l₁ ≤ l₂ ≤ l₃ ≤ 2 with an even sum:
        // (0,1,1) (0,2,2) in full, (0,0,0) (1,1,2) (2,2,2) without the 1 ↔ 2 copies
        let n = 6u128;
        let full = n * n * n;
        let half = n * (n + 1) / 2 * n;
        assert_eq!(map.n_features() as u128, 2 * full + 3 * half);
        assert_eq!(bispectrum_feature_count(HYPERS, 2).unwrap(), map.n_features() as u128);
        let t = map.calculator().compute(&[structure(0)], &ComputeOptions::default()).unwrap();
        for block in &t.blocks {
            let d = property_dimensions(&block.properties).unwrap();
            let width = block.properties.count();
            let scale = block.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let mut dropped = 0;
            for (k, row) in block.properties.rows().enumerate() {
                if keep(row, &d) {
                    continue;
                }
                dropped += 1;
                let mut partner = row.to_vec();
                partner.swap(d[2], d[4]);
                partner.swap(d[3], d[5]);
                let q = block.properties.position(&partner).unwrap();
                for s in 0..block.samples.count() {
                    let (u, v) = (block.values[s * width + k], block.values[s * width + q]);
                    assert!((u - v).abs() <= 1e-13 * scale, "{row:?}: {u} vs {v}");
                }
            }
            assert!(dropped > 0);
        }
    }

    #[test]
    fn too_many_features_are_refused_before_computing() {
        let big = HYPERS.replace("\"max_angular\": 2", "\"max_angular\": 8").replace("\"max_radial\": 2", "\"max_radial\": 11");
        let e = BispectrumMap::new(&big, &[28, 78]).err().unwrap().to_string();
        assert!(e.contains("bispectrum") && e.contains("max_radial 11") && e.contains("30000"), "{e}");
    }

    /// ν = 3 linear model and sparse GPR: forces and stress are the
    /// derivatives of the energy (also on a structure missing a species),
    /// rotations and permutations leave the energy unchanged and rotate the
    /// forces, and a saved model predicts the same bits.
    #[test]
    fn linear_and_gpr_on_the_bispectrum() {
        let systems: Vec<System> = (0..8).map(structure).collect();
        let t = targets(&systems);
        for kind in [KindOptions::Linear { regularizer: 1e-6 }, gpr()] {
            let p = Potential::fit_with_features(&systems, &t, &options(kind.clone()), FeatureKind::Bispectrum).unwrap();
            assert_eq!(p.layout.features, FeatureKind::Bispectrum);
            assert_eq!(p.layout.n_features(), bispectrum_feature_count(HYPERS, 2).unwrap() as usize);
            check_finite_differences(&p, &structure(12));
            check_finite_differences(&p, &structure(13)); // Cu only: Au properties absent from the batch

            // the power spectrum model differs
            let q = Potential::fit(&systems, &t, &options(kind)).unwrap();
            let e3 = p.predict(&systems[..1], &PredictOptions::default(), 100, &None).unwrap().energy[0];
            let e2 = q.predict(&systems[..1], &PredictOptions::default(), 100, &None).unwrap().energy[0];
            assert!((e3 - e2).abs() > 1e-6, "{e3} vs {e2}");

            let s = structure(14);
            let opts = PredictOptions { forces: true, stress: true, variance: false };
            let a = p.predict(&[s.clone()], &opts, 100, &None).unwrap();
            let (sn, cs) = (0.7f64.sin(), 0.7f64.cos());
            let r = [[cs, -sn, 0.0], [sn * 0.6, cs * 0.6, -0.8], [sn * 0.8, cs * 0.8, 0.6]];
            let rot = |v: [f64; 3]| [0, 1, 2].map(|i| (0..3).map(|k| r[i][k] * v[k]).sum::<f64>());
            let mut rotated = s.clone();
            rotated.positions = s.positions.iter().map(|&v| rot(v)).collect();
            rotated.cell = s.cell.map(rot);
            let b = p.predict(&[rotated], &opts, 100, &None).unwrap();
            let scale = a.energy[0].abs();
            assert!((a.energy[0] - b.energy[0]).abs() < 1e-12 * scale, "{} vs {}", a.energy[0], b.energy[0]);
            for i in 0..s.size() {
                let f = rot([a.forces[0][3 * i], a.forces[0][3 * i + 1], a.forces[0][3 * i + 2]]);
                for x in 0..3 {
                    assert!((f[x] - b.forces[0][3 * i + x]).abs() < 1e-10, "force {i}: {f:?}");
                }
            }
            let order = [2, 0, 3, 1];
            let permuted = System::new(order.iter().map(|&k| s.types[k]).collect(), order.iter().map(|&k| s.positions[k]).collect(), s.cell, [true; 3]).unwrap();
            let c = p.predict(&[permuted], &opts, 100, &None).unwrap();
            assert!((a.energy[0] - c.energy[0]).abs() < 1e-12 * scale);
            for (new, &old) in order.iter().enumerate() {
                for x in 0..3 {
                    assert!((a.forces[0][3 * old + x] - c.forces[0][3 * new + x]).abs() < 1e-10);
                }
            }
            for ab in 0..9 {
                assert!((a.stress[0][ab] - c.stress[0][ab]).abs() < 1e-12);
            }

            let all = PredictOptions { forces: true, stress: true, variance: true };
            let before = p.predict(&systems, &all, 100, &None).unwrap();
            let bytes = model_file::to_bytes(&p).unwrap();
            let loaded = model_file::from_bytes(&bytes, "nu3.acdc").unwrap();
            assert_eq!(loaded.layout, p.layout);
            assert_eq!(before, loaded.predict(&systems, &all, 100, &None).unwrap());
            assert_eq!(bytes, model_file::to_bytes(&loaded).unwrap());
        }
    }

    /// A file whose `features` or `block_size` were edited is refused by name.
    #[test]
    fn edited_files_are_refused() {
        let systems: Vec<System> = (0..4).map(structure).collect();
        let p = Potential::fit_with_features(&systems, &targets(&systems), &options(KindOptions::Linear { regularizer: 1e-6 }), FeatureKind::Bispectrum).unwrap();
        let bytes = model_file::to_bytes(&p).unwrap();
        // the header rewritten whole (its length may change), the arrays kept
        let edit = |f: &dyn Fn(&mut serde_json::Value)| -> String {
            let out = model_file::tests::rewrite(&bytes, |h, _| f(h));
            model_file::from_bytes(&out, "m.acdc").err().map(|e| e.to_string()).unwrap_or_default()
        };
        // read as a power-spectrum model, the stored sizes no longer add up:
        // refused by the size check, which names n_features
        let e = edit(&|h| h["features"] = serde_json::json!("power_spectrum"));
        assert!(e.contains("n_features = 810") && e.contains("give 2430"), "{e}");
        let e = edit(&|h| h["features"] = serde_json::json!(3));
        assert!(e.contains("features"), "{e}");
        let e = edit(&|h| {
            h.as_object_mut().unwrap().remove("features");
        });
        assert!(!e.is_empty(), "a bispectrum file read as a power-spectrum model must be refused");
        let e = edit(&|h| h["hypers"]["basis"]["max_angular"] = serde_json::json!(1));
        assert!(e.contains("bispectrum features"), "{e}");
    }
}
