//! Analysis of feature matrices: principal components ([`pca`]), feature
//! reconstruction measures between two representations of the same samples
//! ([`reconstruction`]: GFRE, GFRD, LFRE) and local prediction rigidity of a
//! linear model ([`rigidity`]).

pub mod pca;
pub mod reconstruction;
pub mod rigidity;

pub use pca::{pca, Pca};
pub use reconstruction::{gfrd, gfre, lfre, Split};
pub use rigidity::{local_prediction_rigidity, Rigidity};
