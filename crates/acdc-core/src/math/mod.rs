//! Special functions, spherical harmonics and splines.

pub mod clebsch_gordan;
pub mod cpu;
pub mod linalg;
pub mod special;
pub mod spherical_harmonics;
pub mod spline;
