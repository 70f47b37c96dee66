//! ⟨a n l m|ρ_i⟩: the spherical expansion of the neighbour density, one
//! block per (o3_lambda, o3_sigma, center_type, neighbor_type).
use super::shared::{key_selected, species_pairs, Environments};
use super::soap::sample_labels;
use super::soap::expansion::{CentreDensity, Expansion};
use super::soap::hypers::SoapHypers;
use super::{Calculator, ComputeOptions};
use crate::error::Result;
use crate::system::System;
use crate::tensor::{Labels, TensorBlock, TensorMap};

const KEY_NAMES: [&str; 4] = ["o3_lambda", "o3_sigma", "center_type", "neighbor_type"];

/// Spherical expansion with featomic 0.6 hyper-parameters.
pub struct SphericalExpansion {
    parameters: String,
    expansion: Expansion,
}

impl SphericalExpansion {
    /// The calculator's stable name (also the label of its hyper-parameter errors).
    pub const NAME: &'static str = "spherical_expansion";

    /// Parses and validates the hyper-parameters, builds the basis.
    pub fn new(hypers: &str) -> Result<SphericalExpansion> {
        let (_, settings) = SoapHypers::from_json(Self::NAME, hypers)?;
        Ok(SphericalExpansion { parameters: hypers.to_string(), expansion: Expansion::new(settings)? })
    }

    fn keys_from<'p>(&self, species: &[i32], presence: impl Iterator<Item = (usize, &'p [bool])>) -> Vec<[i32; 4]> {
        let ns = species.len();
        let pairs = species_pairs(ns, presence);
        let mut keys = Vec::new();
        // featomic's order: (center_type, neighbor_type) outer, o3_lambda inner
        for c in 0..ns {
            for s in 0..ns {
                if pairs[c * ns + s] {
                    for l in 0..=self.expansion.settings.max_angular as i32 {
                        if self.expansion.sizes()[l as usize] == 0 {
                            continue; // a channel that an Explicit basis leaves out
                        }
                        keys.push([l, 1, species[c], species[s]]);
                    }
                }
            }
        }
        keys
    }
}

impl Calculator for SphericalExpansion {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn parameters(&self) -> &str {
        &self.parameters
    }

    fn keys(&self, systems: &[System]) -> Result<Labels> {
        if self.expansion.settings.alchemical.is_some() {
            return Ok(self.compute(systems, &ComputeOptions::default())?.keys);
        }
        let env = Environments::new(systems, self.expansion.settings.cutoff)?;
        let presence = env.presence();
        Ok(Labels::new(&KEY_NAMES, self.keys_from(&env.species, presence.iter().map(|(c, p)| (*c, p.as_slice()))).concat()))
    }

    fn compute(&self, systems: &[System], options: &ComputeOptions) -> Result<TensorMap> {
        if let Some(alchemical) = &self.expansion.settings.alchemical {
            let inner = ComputeOptions { selected_keys: None, ..options.clone() };
            let species_resolved = self.compute_species(systems, &inner)?;
            // B pseudo-elements multiply the size by B / neighbour species: refuse before building it
            crate::budget::MemoryBudget::or_global(options.max_memory)
                .check("the pseudo-element expansion (density.alchemical)", super::soap::alchemical::contracted_bytes(&species_resolved, alchemical))?;
            let tensor = super::soap::alchemical::contract_expansion(&species_resolved, alchemical)?;
            return super::shared::select_keys(tensor, options);
        }
        self.compute_species(systems, options)
    }
}

impl SphericalExpansion {
    /// The species-resolved expansion (keys with neighbor_type).
    fn compute_species(&self, systems: &[System], options: &ComputeOptions) -> Result<TensorMap> {
        let flags = options.gradient_flags()?;
        let per_pair = Environments::expansion_bytes_per_pair(&self.expansion, flags);
        let env = Environments::for_options(systems, self.expansion.settings.cutoff, options, per_pair)?;
        let centres = env.centres(options)?;
        {
            // refuse before allocating what would not fit
            let (n_max, n_lm) = (self.expansion.n_max() as f64, self.expansion.n_lm() as f64);
            env.check_output("the spherical expansion", &centres, flags, |present| present as f64 * n_lm * n_max)?;
        }
        let densities = env.expand(&self.expansion, &centres, flags)?;
        let n_max = self.expansion.n_max();
        let n_lm = self.expansion.n_lm();
        let ns = env.species.len();
        let stride_lm = ns * n_max;
        let mut key_values = Vec::new();
        let mut blocks = Vec::new();
        for key in self.keys_from(&env.species, densities.iter().map(|d| (d.centre_species, d.present.as_slice()))) {
            if !key_selected(options, &KEY_NAMES, &key)? {
                continue;
            }
            options.check_cancelled()?;
            let l = key[0] as usize;
            let c = env.species.binary_search(&key[2]).unwrap_or(0);
            let s = env.species.binary_search(&key[3]).unwrap_or(0);
            let rows: Vec<&CentreDensity> = densities.iter().filter(|d| d.centre_species == c && d.present[s]).collect();
            let n_m = 2 * l + 1;
            let mut values = Vec::with_capacity(rows.len() * n_m * n_max);
            for d in &rows {
                for lm in l * l..(l + 1) * (l + 1) {
                    values.extend_from_slice(&d.coefficients[lm * stride_lm + s * n_max..][..n_max]);
                }
            }
            let mu = Labels::new(&["o3_mu"], (-(l as i32)..=l as i32).collect());
            let mut block = TensorBlock::new(sample_labels(&rows), vec![mu.clone()], Labels::range("n", n_max), values)?;
            if flags.positions {
                let mut samples = Vec::new();
                let mut grad = Vec::new();
                for (row, d) in rows.iter().enumerate() {
                    // gradient rows: the centre and every neighbour of species s, sorted by atom
                    let atoms = d.gradient_rows(|sp| sp == s);
                    for (atom, source) in atoms {
                        samples.extend_from_slice(&[row as i32, d.system as i32, atom as i32]);
                        for x in 0..3 {
                            for lm in l * l..(l + 1) * (l + 1) {
                                match source {
                                    Some(k) => grad.extend_from_slice(&d.neighbor_gradients[(k * 3 + x) * n_lm * n_max + lm * n_max..][..n_max]),
                                    None => grad.extend_from_slice(&d.centre_gradient[(x * n_lm + lm) * stride_lm + s * n_max..][..n_max]),
                                }
                            }
                        }
                    }
                }
                let g = TensorBlock::new(
                    Labels::new(&["sample", "system", "atom"], samples),
                    vec![Labels::range("xyz", 3), mu.clone()],
                    Labels::range("n", n_max),
                    grad,
                )?;
                block.gradients.push(("positions".into(), g));
            }
            if flags.strain {
                let mut grad = Vec::with_capacity(rows.len() * 9 * n_m * n_max);
                for d in &rows {
                    for ab in 0..9 {
                        for lm in l * l..(l + 1) * (l + 1) {
                            grad.extend_from_slice(&d.strain_gradient[(ab * n_lm + lm) * stride_lm + s * n_max..][..n_max]);
                        }
                    }
                }
                let g = TensorBlock::new(
                    Labels::range("sample", rows.len()),
                    // featomic 0.6.7 names the strain components (xyz_2, xyz_1)
                    // in this order; values[a][b] = ∂/∂ε_ab
                    vec![Labels::range("xyz_2", 3), Labels::range("xyz_1", 3), mu],
                    Labels::range("n", n_max),
                    grad,
                )?;
                block.gradients.push(("strain".into(), g));
            }
            key_values.extend_from_slice(&key);
            blocks.push(block);
        }
        let tensor = TensorMap::new(Labels::new(&KEY_NAMES, key_values), blocks)?;
        if super::soap::ragged::is_ragged(self.expansion.sizes()) {
            return super::soap::ragged::trim(tensor, self.expansion.sizes(), true);
        }
        Ok(tensor)
    }
}
