//! The SOAP engine shared by the SOAP-family calculators: featomic's
//! hyper-parameters (`hypers`), the atomic density (`density`), the radial
//! and angular expansion of it around a centre (`expansion`, its values-only
//! path `expansion_values`, the batch driver `expand`), bases with a
//! different size per angular channel (`ragged`) and pseudo-elements
//! (`alchemical`). It builds on `shared/` and knows no calculator.
pub mod alchemical;
pub mod density;
pub mod expand;
pub mod expansion;
pub mod expansion_values;
pub mod hypers;
pub mod ragged;

pub use expand::sample_labels;
