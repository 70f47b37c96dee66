//! Special functions, spherical harmonics, splines and random numbers.

pub mod bessel;
pub(crate) mod cg_product;
pub mod clebsch_gordan;
pub mod columns;
pub mod cpu;
pub mod linalg;
pub mod qr_fold;
pub mod triangular;
pub mod random;
pub mod special;
pub mod spherical_harmonics;
pub mod spline;
