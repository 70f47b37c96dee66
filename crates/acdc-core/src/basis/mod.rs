//! Radial bases and their integrals with a Gaussian density.
