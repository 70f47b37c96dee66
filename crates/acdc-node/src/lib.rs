//! N-API bindings for acdc: converts and validates JS values, calls the core,
//! and hands typed arrays back. No numerics live here.
#![deny(clippy::all)]

mod errors;
mod neighbors;
mod system;
mod xyz;

pub use neighbors::*;
pub use system::*;
pub use xyz::*;
