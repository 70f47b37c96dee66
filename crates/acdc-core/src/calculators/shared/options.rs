//! What one computation asks for (gradients, selections, memory budget,
//! cancellation): the options every calculator, SOAP or classic, reads.
use crate::error::{Error, Result};
use crate::tensor::Labels;

/// Which gradients to compute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GradientFlags {
    /// ∂/∂(atomic positions).
    pub positions: bool,
    /// ∂/∂(strain ε), positions and cell deformed by (1 + ε).
    pub strain: bool,
    /// Keep the factors of every pair's gradient (the SOAP expansion's `PairGeometry`)
    /// instead of explicit ∂coefficient/∂x arrays: the power spectrum
    /// contracts them directly, which is cheaper than forming them.
    pub pair_factors: bool,
}

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
