//! Structures coming from JavaScript.
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{guarded, to_napi};

/// A structure as flat typed arrays (the JS `System` class holds these).
#[napi(object, object_to_js = false)]
pub struct SystemData {
    /// atomic species, one per atom
    pub types: Int32Array,
    /// Cartesian positions in Å, 3 per atom
    pub positions: Float64Array,
    /// cell in Å, 9 numbers, rows are lattice vectors
    pub cell: Float64Array,
    /// periodicity along a, b, c
    pub pbc: Vec<bool>,
}

/// Converts (copies) JS data into a validated core system.
pub fn to_core(data: &SystemData) -> Result<acdc_core::System> {
    if data.pbc.len() != 3 {
        return Err(crate::errors::coded("ACDC_INVALID_SYSTEM", "", format!("pbc has {} values (expected 3 booleans)", data.pbc.len())));
    }
    let pbc = [data.pbc[0], data.pbc[1], data.pbc[2]];
    acdc_core::System::from_flat(&data.types, &data.positions, &data.cell, pbc).map_err(to_napi)
}

/// Converts a list of systems, naming the index of a bad one.
pub fn to_core_list(data: &[SystemData]) -> Result<Vec<acdc_core::System>> {
    data.iter()
        .enumerate()
        .map(|(k, s)| to_core(s).map_err(|e| crate::errors::in_context(&format!("systems[{k}]"), e)))
        .collect()
}

/// Validates a structure; throws an Error naming the bad field and value.
#[napi]
pub fn validate_system(system: SystemData) -> Result<()> {
    guarded("validateSystem", || to_core(&system).map(|_| ()))
}
