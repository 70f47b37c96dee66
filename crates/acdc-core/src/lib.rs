//! acdc-core: atom-centred density correlations in pure Rust.
//!
//! Units: lengths in Å, energies in eV.

pub mod analysis;
pub mod basis;
pub mod budget;
pub mod calculators;
pub mod error;
pub mod io;
pub mod math;
pub mod models;
pub mod neighbors;
pub mod parallel;
pub mod system;
pub mod tensor;
pub mod design_rows;

pub use error::{Error, Result};
pub use neighbors::{NeighborList, Pairs};
pub use system::System;
