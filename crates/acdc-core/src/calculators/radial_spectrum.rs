//! SOAP radial spectrum: the l = 0 part of the expansion, ⟨a n 0 0|ρ_i⟩.
use super::shared::{key_selected, species_pairs, Environments};
use super::soap::sample_labels;
use super::soap::expansion::{CentreDensity, Expansion};
use super::soap::hypers::RadialSpectrumHypers;
use super::{Calculator, ComputeOptions};
use crate::error::Result;
use crate::system::System;
use crate::tensor::{Labels, TensorBlock, TensorMap};

const KEY_NAMES: [&str; 2] = ["center_type", "neighbor_type"];

/// SOAP radial spectrum with featomic 0.6 hyper-parameters.
pub struct SoapRadialSpectrum {
    parameters: String,
    expansion: Expansion,
}

impl SoapRadialSpectrum {
    /// The calculator's stable name (also the label of its hyper-parameter errors).
    pub const NAME: &'static str = "soap_radial_spectrum";

    /// Parses and validates the hyper-parameters, builds the basis.
    pub fn new(hypers: &str) -> Result<SoapRadialSpectrum> {
        let (_, settings) = RadialSpectrumHypers::from_json(Self::NAME, hypers)?;
        if settings.alchemical.is_some() {
            return Err(crate::Error::InvalidParameter(
                "density.alchemical is supported by SphericalExpansion and SoapPowerSpectrum only".into(),
            ));
        }
        Ok(SoapRadialSpectrum { parameters: hypers.to_string(), expansion: Expansion::new(settings)? })
    }

    fn keys_from<'p>(species: &[i32], presence: impl Iterator<Item = (usize, &'p [bool])>) -> Vec<[i32; 2]> {
        let ns = species.len();
        let seen = species_pairs(ns, presence);
        (0..ns * ns).filter(|&k| seen[k]).map(|k| [species[k / ns], species[k % ns]]).collect()
    }
}

impl Calculator for SoapRadialSpectrum {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn parameters(&self) -> &str {
        &self.parameters
    }

    fn keys(&self, systems: &[System]) -> Result<Labels> {
        let env = Environments::new(systems, self.expansion.settings.cutoff)?;
        let presence = env.presence();
        Ok(Labels::new(&KEY_NAMES, Self::keys_from(&env.species, presence.iter().map(|(c, p)| (*c, p.as_slice()))).concat()))
    }

    fn compute(&self, systems: &[System], options: &ComputeOptions) -> Result<TensorMap> {
        let flags = options.gradient_flags()?;
        let per_pair = Environments::expansion_bytes_per_pair(&self.expansion, flags);
        let env = Environments::for_options(systems, self.expansion.settings.cutoff, options, per_pair)?;
        let centres = env.centres(options)?;
        {
            // refuse before allocating what would not fit
            let n_max = self.expansion.n_max() as f64;
            env.check_output("the SOAP radial spectrum", &centres, flags, |present| present as f64 * n_max)?;
        }
        let densities = env.expand(&self.expansion, &centres, flags)?;
        let n_max = self.expansion.n_max();
        let ns = env.species.len();
        let stride_lm = ns * n_max;
        let mut key_values = Vec::new();
        let mut blocks = Vec::new();
        for key in Self::keys_from(&env.species, densities.iter().map(|d| (d.centre_species, d.present.as_slice()))) {
            if !key_selected(options, &KEY_NAMES, &key)? {
                continue;
            }
            options.check_cancelled()?;
            let c = env.species.binary_search(&key[0]).unwrap_or(0);
            let s = env.species.binary_search(&key[1]).unwrap_or(0);
            let rows: Vec<&CentreDensity> = densities.iter().filter(|d| d.centre_species == c && d.present[s]).collect();
            let values = rows.iter().flat_map(|d| d.coefficients[s * n_max..][..n_max].iter().copied()).collect();
            let mut block = TensorBlock::new(sample_labels(&rows), vec![], Labels::range("n", n_max), values)?;
            if flags.positions {
                let mut samples = Vec::new();
                let mut grad = Vec::new();
                for (row, d) in rows.iter().enumerate() {
                    let n_lm_n = self.expansion.n_lm() * n_max;
                    let atoms = d.gradient_rows(|sp| sp == s);
                    for (atom, source) in atoms {
                        samples.extend_from_slice(&[row as i32, d.system as i32, atom as i32]);
                        for x in 0..3 {
                            match source {
                                Some(k) => grad.extend_from_slice(&d.neighbor_gradients[(k * 3 + x) * n_lm_n..][..n_max]),
                                None => grad.extend_from_slice(&d.centre_gradient[x * self.expansion.n_lm() * stride_lm + s * n_max..][..n_max]),
                            }
                        }
                    }
                }
                let g = TensorBlock::new(
                    Labels::new(&["sample", "system", "atom"], samples),
                    vec![Labels::range("xyz", 3)],
                    Labels::range("n", n_max),
                    grad,
                )?;
                block.gradients.push(("positions".into(), g));
            }
            if flags.strain {
                let n_lm = self.expansion.n_lm();
                let grad = rows
                    .iter()
                    .flat_map(|d| (0..9).flat_map(move |ab| d.strain_gradient[ab * n_lm * stride_lm + s * n_max..][..n_max].iter().copied()))
                    .collect();
                let g = TensorBlock::new(
                    Labels::range("sample", rows.len()),
                    // featomic 0.6.7 names the strain components (xyz_2, xyz_1)
                    // in this order; values[a][b] = ∂/∂ε_ab
                    vec![Labels::range("xyz_2", 3), Labels::range("xyz_1", 3)],
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
            return super::soap::ragged::trim(tensor, self.expansion.sizes(), false);
        }
        Ok(tensor)
    }
}
