//! Representations. Every calculator implements [`Calculator`]: built from
//! featomic-style JSON hyper-parameters, it turns systems into a `TensorMap`.
//!
//! Layout: `shared/` holds what every calculator uses (the options of a
//! computation, neighbour environments, sample and key selection); `soap/`
//! holds the SOAP engine (hyper-parameters, density, expansion, ragged
//! bases, pseudo-elements); the calculators themselves are the flat files
//! here. Imports run calculators → soap → shared, never back.

pub mod shared;
pub mod soap;

pub mod acsf;
pub mod bispectrum;
pub mod coulomb_matrix;
pub mod density_correlations;
pub mod ewald_sum_matrix;
pub mod lambda_soap;
pub mod power_spectrum;
pub mod radial_spectrum;
pub mod sine_matrix;
pub mod spherical_expansion;
#[cfg(test)]
pub(crate) mod tests_utils;
// the per-calculator harness lives under tests/ with the other test-only code
#[path = "tests/harness.rs"]
#[cfg(test)]
mod harness;

pub use acsf::SymmetryFunctions;
pub use coulomb_matrix::CoulombMatrix;
// the matrix machinery the sine and Ewald sum matrices share
pub(crate) use coulomb_matrix::{Matrix, MatrixDescriptor, MatrixSettings, Permutation};
pub use ewald_sum_matrix::EwaldSumMatrix;
pub use sine_matrix::SineMatrix;
pub(crate) use sine_matrix::cell_inverse;
pub use bispectrum::SoapBispectrum;
pub use density_correlations::DensityCorrelations;
pub use lambda_soap::EquivariantPowerSpectrum;
pub use power_spectrum::SoapPowerSpectrum;
pub use radial_spectrum::SoapRadialSpectrum;
pub use spherical_expansion::SphericalExpansion;

use crate::error::{Error, Result};
use crate::system::System;
use crate::tensor::{Labels, TensorMap};
pub use shared::options::{check_cancelled, ComputeOptions, GradientFlags};
pub use soap::hypers::ExpansionSettings;

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

/// What a calculator's output is, for the front ends that write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// Rotation-invariant rows per atom (samples `system`, `atom`).
    Invariant,
    /// Blocks that rotate with a Wigner matrix (components `o3_mu`): no
    /// dense design matrix.
    Equivariant,
    /// One row per structure (samples `system`).
    PerStructure,
}

impl OutputKind {
    /// The stable name given to JavaScript.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputKind::Invariant => "invariant",
            OutputKind::Equivariant => "equivariant",
            OutputKind::PerStructure => "per_structure",
        }
    }
}

/// Where a calculator comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// The SOAP engine: featomic's hyper-parameters, density expansion.
    Soap,
    /// The DScribe-style descriptors, with DScribe's hyper-parameters.
    Classic,
}

impl Family {
    /// The stable name given to JavaScript.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Soap => "soap",
            Family::Classic => "classic",
        }
    }
}

/// The neighbour-key combinations that become the columns of a design
/// matrix computed natively (the core's `design_rows` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighborKeys {
    /// Pairs a ≤ b (`neighbor_1_type`, `neighbor_2_type`): k(k + 1)/2 per centre for k species.
    Pairs,
    /// Single species (`neighbor_type`): k per centre.
    Singles,
}

impl NeighborKeys {
    /// The stable name given to JavaScript.
    pub fn as_str(self) -> &'static str {
        match self {
            NeighborKeys::Pairs => "neighbor_pairs",
            NeighborKeys::Singles => "neighbor_singles",
        }
    }
}

/// One calculator as every layer sees it: the single place that lists the
/// calculators. The front ends (CLI, queue, server) read this table through
/// the binding instead of keeping their own lists.
pub struct CalculatorEntry {
    /// Stable name, as [`Calculator::name`] returns it.
    pub name: &'static str,
    /// Which engine and which hyper-parameter conventions.
    pub family: Family,
    /// What the output is.
    pub output: OutputKind,
    /// Gradients `compute` can give ("positions", "strain").
    pub gradients: &'static [&'static str],
    /// Whether the output fits one dense `.npy` design matrix (rows: atoms or
    /// structures, columns fixed by the species) across batches.
    pub dense: bool,
    /// The native design-row path of `.npy` output, if the calculator has one.
    pub design_rows: Option<NeighborKeys>,
    /// Hyper-parameters used when none are given (JSON text, exactly as
    /// stored in the outputs' provenance); None: they must be given.
    pub default_hypers: Option<&'static str>,
    /// A short example of hyper-parameters, for error messages.
    pub example_hypers: &'static str,
    /// Builds the calculator from JSON hyper-parameters.
    pub build: fn(&str) -> Result<Box<dyn Calculator>>,
}

/// The common SOAP setting: r_c = 5 Å with a 0.5 Å shifted-cosine switch,
/// σ = 0.3 Å, 8 radial × 7 angular channels.
pub const DEFAULT_SOAP_HYPERS: &str = r#"{"cutoff":{"radius":5,"smoothing":{"type":"ShiftedCosine","width":0.5}},"density":{"type":"Gaussian","width":0.3},"basis":{"type":"TensorProduct","max_angular":6,"radial":{"type":"Gto","max_radial":7}}}"#;
/// [`DEFAULT_SOAP_HYPERS`] in the radial spectrum's basis form (l = 0 only).
const DEFAULT_RADIAL_HYPERS: &str = r#"{"cutoff":{"radius":5,"smoothing":{"type":"ShiftedCosine","width":0.5}},"density":{"type":"Gaussian","width":0.3},"basis":{"radial":{"type":"Gto","max_radial":7}}}"#;
/// [`DEFAULT_SOAP_HYPERS`] with 4 radial × 4 angular channels: the ν = 3
/// invariants grow as (n_max · l_max)³.
const DEFAULT_BISPECTRUM_HYPERS: &str = r#"{"cutoff":{"radius":5,"smoothing":{"type":"ShiftedCosine","width":0.5}},"density":{"type":"Gaussian","width":0.3},"basis":{"type":"TensorProduct","max_angular":3,"radial":{"type":"Gto","max_radial":3}}}"#;
const SOAP_EXAMPLE: &str = r#"{"cutoff": {"radius": 5, "smoothing": {"type": "ShiftedCosine", "width": 0.5}}, "density": {"type": "Gaussian", "width": 0.3}, "basis": {...}}"#;
const MATRIX_EXAMPLE: &str = r#"{"n_atoms_max": 30}"#;
const BOTH: &[&str] = &["positions", "strain"];

/// Every calculator, one line each. The first is the default of the front
/// ends (`acdc featurize`, `acdc serve`).
pub static REGISTRY: &[CalculatorEntry] = &[
    CalculatorEntry { name: "soap_power_spectrum", family: Family::Soap, output: OutputKind::Invariant, gradients: BOTH, dense: true, design_rows: Some(NeighborKeys::Pairs), default_hypers: Some(DEFAULT_SOAP_HYPERS), example_hypers: SOAP_EXAMPLE, build: |h| Ok(Box::new(SoapPowerSpectrum::new(h)?)) },
    CalculatorEntry { name: "soap_radial_spectrum", family: Family::Soap, output: OutputKind::Invariant, gradients: BOTH, dense: true, design_rows: Some(NeighborKeys::Singles), default_hypers: Some(DEFAULT_RADIAL_HYPERS), example_hypers: SOAP_EXAMPLE, build: |h| Ok(Box::new(SoapRadialSpectrum::new(h)?)) },
    CalculatorEntry { name: SphericalExpansion::NAME, family: Family::Soap, output: OutputKind::Equivariant, gradients: BOTH, dense: false, design_rows: None, default_hypers: Some(DEFAULT_SOAP_HYPERS), example_hypers: SOAP_EXAMPLE, build: |h| Ok(Box::new(SphericalExpansion::new(h)?)) },
    CalculatorEntry { name: "equivariant_power_spectrum", family: Family::Soap, output: OutputKind::Equivariant, gradients: BOTH, dense: false, design_rows: None, default_hypers: Some(DEFAULT_SOAP_HYPERS), example_hypers: SOAP_EXAMPLE, build: |h| Ok(Box::new(EquivariantPowerSpectrum::from_json(h)?)) },
    CalculatorEntry { name: "soap_bispectrum", family: Family::Soap, output: OutputKind::Invariant, gradients: BOTH, dense: false, design_rows: None, default_hypers: Some(DEFAULT_BISPECTRUM_HYPERS), example_hypers: SOAP_EXAMPLE, build: |h| Ok(Box::new(SoapBispectrum::new(h)?)) },
    CalculatorEntry { name: "symmetry_functions", family: Family::Classic, output: OutputKind::Invariant, gradients: BOTH, dense: true, design_rows: None, default_hypers: None, example_hypers: r#"{"cutoff": 5, "g2": [[1, 0]], "types": [1, 8]}"#, build: |h| Ok(Box::new(SymmetryFunctions::new(h)?)) },
    CalculatorEntry { name: "coulomb_matrix", family: Family::Classic, output: OutputKind::PerStructure, gradients: BOTH, dense: true, design_rows: None, default_hypers: None, example_hypers: MATRIX_EXAMPLE, build: |h| Ok(Box::new(CoulombMatrix::new(h)?)) },
    CalculatorEntry { name: "sine_matrix", family: Family::Classic, output: OutputKind::PerStructure, gradients: BOTH, dense: true, design_rows: None, default_hypers: None, example_hypers: MATRIX_EXAMPLE, build: |h| Ok(Box::new(SineMatrix::new(h)?)) },
    CalculatorEntry { name: "ewald_sum_matrix", family: Family::Classic, output: OutputKind::PerStructure, gradients: BOTH, dense: true, design_rows: None, default_hypers: None, example_hypers: MATRIX_EXAMPLE, build: |h| Ok(Box::new(EwaldSumMatrix::new(h)?)) },
];

/// The registry entry of calculator `name`, or an error listing the valid names.
pub fn entry(name: &str) -> Result<&'static CalculatorEntry> {
    REGISTRY.iter().find(|e| e.name == name).ok_or_else(|| {
        let names: Vec<&str> = REGISTRY.iter().map(|e| e.name).collect();
        let (last, rest) = names.split_last().expect("the registry is not empty");
        Error::InvalidParameter(format!("unknown calculator \"{name}\" (expected {} or {last})", rest.join(", ")))
    })
}

/// Builds a calculator from its name and JSON hyper-parameters.
pub fn from_name(name: &str, hypers: &str) -> Result<Box<dyn Calculator>> {
    (entry(name)?.build)(hypers)
}

#[cfg(test)]
mod registry_tests {
    use super::*;

    #[test]
    fn unknown_names_list_every_calculator() {
        let message = from_name("nope", "{}").err().unwrap().to_string();
        assert!(message.contains("unknown calculator \"nope\""), "{message}");
        for e in REGISTRY {
            assert!(message.contains(e.name), "{message} lacks {}", e.name);
        }
    }

    #[test]
    fn entries_build_what_they_name() {
        let mut seen = std::collections::HashSet::new();
        for e in REGISTRY {
            assert!(seen.insert(e.name), "{} is registered twice", e.name);
            // the matrices need hyper-parameters: their example is complete
            let hypers = e.default_hypers.unwrap_or(if e.family == Family::Classic { e.example_hypers } else { "" });
            let calc = from_name(e.name, hypers).unwrap_or_else(|err| panic!("{}: {err}", e.name));
            assert_eq!(calc.name(), e.name);
            assert_eq!(calc.parameters(), hypers);
            assert!(e.design_rows.is_none() || (e.dense && e.output == OutputKind::Invariant), "{}", e.name);
        }
    }
}
