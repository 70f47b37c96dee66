//! Analysis of feature matrices: principal components ([`pca`]), feature
//! reconstruction measures between two representations of the same samples
//! ([`reconstruction`]: GFRE, GFRD, LFRE) and local prediction rigidity of a
//! linear model ([`rigidity`]), kernel PCA ([`kernel_pca`]), kernel ridge
//! learning curves ([`kernel_ridge`]) and the data-driven compression of the
//! SOAP basis ([`compression`]: pseudo-elements, contracted radial bases).

pub mod compression;
pub mod kernel_pca;
pub mod kernel_ridge;
pub mod pca;
pub mod reconstruction;
pub mod rigidity;

pub use pca::{pca, Pca};
pub use reconstruction::{gfrd, gfre, lfre, Split};
pub use rigidity::{local_prediction_rigidity, Rigidity};
pub use kernel_pca::{kernel_pca, KernelPca};
