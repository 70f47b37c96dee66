//! Learning on dense feature matrices: selection of samples or features
//! ([`selection`]) and kernels between atomic environments and structures
//! ([`kernels`]). Inputs are row-major [`Dense`](crate::math::linalg::Dense)
//! matrices with one row per sample (atomic environment or structure).

pub mod atomic_features;
pub mod bispectrum_features;
pub mod calibration;
pub mod force_prior;
pub mod kernels;
pub mod leverage;
pub mod model_file;
pub mod pair_term;
pub mod pivoted_cholesky;
pub mod potential;
pub mod potential_calibration;
pub mod selection;
pub mod tensor_gpr;
pub mod tensor_model_file;
pub mod validation;

pub use kernels::{polynomial_kernel, structure_kernel, PolynomialKernel};
pub use bispectrum_features::{FeatureKind, MAX_BISPECTRUM_FEATURES};
pub use calibration::{binomial_lower_tail, calibrate_variance, calibrate_variance_and_noise, calibrate_variance_with_noise, composition_groups, composition_spread, error_statistics, leave_group_out, leave_one_out, species_count_baseline, validation_loss, Calibration, CompositionSpread, CountBaseline, ErrorStatistics, LeaveOneOut, LeaveOut, LeaveOutScheme, COMPOSITION_SPREAD_WARNING, MAX_GROUP_FRAMES, MIN_COMPOSITIONS};
pub use pair_term::{PairOptions, PairTerm};
pub use potential::{E0, FitOptions, FrameSigmas, Kind, KindOptions, Potential, Prediction, PredictOptions, Sigmas, SparseMethod, Targets};
pub use selection::{cur, farthest_point_sampling, Axis, Selection};
pub use tensor_gpr::{TensorFitOptions, TensorKind, TensorKindOptions, TensorModel, TensorPrediction, TensorSparseMethod, TensorTarget};
