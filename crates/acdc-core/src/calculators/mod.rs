//! Representations. Every calculator implements [`Calculator`]: built from
//! featomic-style JSON hyper-parameters, it turns systems into a `TensorMap`.

pub mod acsf;
pub mod alchemical;
pub mod bispectrum;
pub mod coulomb_matrix;
pub mod density;
pub mod density_correlations;
pub mod environment;
pub mod ewald_sum_matrix;
pub mod expansion;
pub mod expansion_values;
pub mod hypers;
pub mod lambda_soap;
pub mod power_spectrum;
pub mod radial_spectrum;
pub mod ragged;
pub mod sine_matrix;
pub mod spherical_expansion;
#[cfg(test)]
pub(crate) mod tests_utils;
#[cfg(test)]
mod harness;

pub use acsf::SymmetryFunctions;
pub use coulomb_matrix::CoulombMatrix;
pub use ewald_sum_matrix::EwaldSumMatrix;
pub use sine_matrix::SineMatrix;
pub use bispectrum::SoapBispectrum;
pub use density_correlations::DensityCorrelations;
pub use lambda_soap::EquivariantPowerSpectrum;
pub use power_spectrum::SoapPowerSpectrum;
pub use radial_spectrum::SoapRadialSpectrum;
pub use spherical_expansion::SphericalExpansion;

use crate::error::{Error, Result};
use crate::system::System;
use crate::tensor::{Labels, TensorMap};
pub use hypers::ExpansionSettings;
use expansion::GradientFlags;

/// Options of one computation.
#[derive(Debug, Clone, Default)]
pub struct ComputeOptions {
    /// Gradients to compute: "positions" and/or "strain".
    pub gradients: Vec<String>,
    /// Only compute the blocks whose keys match one of these rows (on the
    /// dimensions named here).
    pub selected_keys: Option<Labels>,
    /// Only compute these centres: rows over "system" and/or "atom".
    pub selected_samples: Option<Labels>,
    /// Memory budget of this computation in bytes; None uses
    /// `ACDC_MAX_MEMORY` or the default (see [`crate::budget`]).
    pub max_memory: Option<u64>,
    /// Set from another thread to stop the computation early: it then
    /// returns [`Error::Cancelled`] (checked between centres and blocks).
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Equivariant calculators only: move the neighbour types from the keys
    /// into the properties.
    pub neighbors_to_properties: bool,
}

impl ComputeOptions {
    /// Fails with [`Error::Cancelled`] once `cancel` has been set.
    pub fn check_cancelled(&self) -> Result<()> {
        check_cancelled(&self.cancel)
    }
}

/// Fails with [`Error::Cancelled`] once `flag` has been set.
pub fn check_cancelled(flag: &Option<std::sync::Arc<std::sync::atomic::AtomicBool>>) -> Result<()> {
    match flag {
        Some(f) if f.load(std::sync::atomic::Ordering::Relaxed) => Err(Error::Cancelled),
        _ => Ok(()),
    }
}

impl ComputeOptions {
    /// Parses the gradient names, rejecting unknown ones.
    pub fn gradient_flags(&self) -> Result<GradientFlags> {
        let mut flags = GradientFlags::default();
        for g in &self.gradients {
            match g.as_str() {
                "positions" => flags.positions = true,
                "strain" => flags.strain = true,
                other => {
                    return Err(Error::InvalidParameter(format!(
                        "gradients contains \"{other}\" (expected \"positions\" or \"strain\")"
                    )))
                }
            }
        }
        Ok(flags)
    }
}

/// A representation of atomic structures.
pub trait Calculator: Send + Sync {
    /// Stable name, e.g. "soap_power_spectrum".
    fn name(&self) -> &str;
    /// Hyper-parameters exactly as given, for provenance in saved files.
    fn parameters(&self) -> &str;
    /// Keys this calculator produces for these systems.
    fn keys(&self, systems: &[System]) -> Result<Labels>;
    /// Computes into a TensorMap; honours gradients and selections.
    fn compute(&self, systems: &[System], options: &ComputeOptions) -> Result<TensorMap>;
}

/// Builds a calculator from its name and JSON hyper-parameters.
pub fn from_name(name: &str, hypers: &str) -> Result<Box<dyn Calculator>> {
    match name {
        "spherical_expansion" => Ok(Box::new(SphericalExpansion::new(hypers)?)),
        "soap_power_spectrum" => Ok(Box::new(SoapPowerSpectrum::new(hypers)?)),
        "soap_radial_spectrum" => Ok(Box::new(SoapRadialSpectrum::new(hypers)?)),
        "equivariant_power_spectrum" => Ok(Box::new(EquivariantPowerSpectrum::from_json(hypers)?)),
        "soap_bispectrum" => Ok(Box::new(SoapBispectrum::new(hypers)?)),
        "symmetry_functions" => Ok(Box::new(SymmetryFunctions::new(hypers)?)),
        "coulomb_matrix" => Ok(Box::new(CoulombMatrix::new(hypers)?)),
        "sine_matrix" => Ok(Box::new(SineMatrix::new(hypers)?)),
        "ewald_sum_matrix" => Ok(Box::new(EwaldSumMatrix::new(hypers)?)),
        other => Err(Error::InvalidParameter(format!(
            "unknown calculator \"{other}\" (expected spherical_expansion, soap_power_spectrum, soap_radial_spectrum, \
             equivariant_power_spectrum, soap_bispectrum, symmetry_functions, coulomb_matrix, sine_matrix or ewald_sum_matrix)"
        ))),
    }
}
