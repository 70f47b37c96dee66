//! File formats.

/// Extended XYZ (ASE-compatible) reading and writing.
pub mod xyz;
