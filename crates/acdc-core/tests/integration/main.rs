//! The core's integration tests, as modules of one test binary: cargo builds
//! every `tests/*.rs` file as a binary of its own, each linked with thin LTO
//! in the release profile `npm test` uses, and those links cost more than the
//! tests' own code. Add a test file here as a module, not as a new
//! `tests/*.rs`.
mod common;
mod examples;
mod fuzz;
mod module_cycles;
mod regressions;
mod xyz_ase;
