//! File formats.

/// Extended XYZ (ASE-compatible) reading and writing.
pub mod xyz;

/// metatensor's `.mts` TensorMap files (npz archives).
pub mod mts;

/// NumPy `.npy` arrays.
pub mod npy;
