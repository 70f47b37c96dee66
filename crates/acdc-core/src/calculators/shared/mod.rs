//! What every calculator uses, SOAP or classic: the options of a
//! computation, neighbour environments of a batch, and sample and key
//! selection. Nothing here knows about a basis or a calculator.
pub mod environments;
pub mod options;
pub mod selection;

pub use environments::{species_pairs, Environments};
pub use options::{check_cancelled, ComputeOptions, GradientFlags};
pub use selection::{key_selected, select_keys};
