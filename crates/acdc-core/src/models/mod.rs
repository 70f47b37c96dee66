//! Learning on dense feature matrices: selection of samples or features
//! ([`selection`]) and kernels between atomic environments and structures
//! ([`kernels`]). Inputs are row-major [`Dense`](crate::math::linalg::Dense)
//! matrices with one row per sample (atomic environment or structure).

pub mod atomic_features;
pub mod kernels;
pub mod model_file;
pub mod pair_term;
pub mod potential;
pub mod selection;

pub use kernels::{polynomial_kernel, structure_kernel, PolynomialKernel};
pub use pair_term::{PairOptions, PairTerm};
pub use potential::{E0, FitOptions, Kind, KindOptions, Potential, Prediction, PredictOptions, Sigmas, SparseMethod, Targets};
pub use selection::{cur, farthest_point_sampling, Axis, Selection};
