//! Special functions, spherical harmonics and splines.
