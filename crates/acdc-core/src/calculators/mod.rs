//! Representations. Every calculator implements [`Calculator`]: built from
//! featomic-style JSON hyper-parameters, it turns systems into a `TensorMap`.

pub mod density;
pub mod hypers;


pub use hypers::ExpansionSettings;
