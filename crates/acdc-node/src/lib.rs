//! N-API bindings for acdc: converts and validates JS values, calls the core,
//! and hands typed arrays back. No numerics live here.
#![deny(clippy::all)]

mod analysis;
mod basis;
mod calculators;
mod clebsch_gordan;
mod design_rows;
mod errors;
mod external;
mod ipi;
mod models;
mod neighbors;
mod potential_calibration;
mod potentials;
mod system;
mod tensor;
mod tensor_models;
mod tensor_ops;
mod xyz;

pub use analysis::*;
pub use calculators::*;
pub use clebsch_gordan::*;
pub use ipi::*;
pub use design_rows::*;
pub use models::*;
pub use neighbors::*;
pub use potentials::*;
pub use system::*;
pub use tensor::*;
pub use tensor_models::*;
pub use tensor_ops::*;
pub use xyz::*;
