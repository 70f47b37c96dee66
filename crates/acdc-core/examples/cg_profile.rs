//! Times (or, under callgrind, profiles) the Clebsch–Gordan calculators of
//! the bench's `cg` group in the Rust core, with no N-API in between:
//!
//!     cargo run --release -p acdc-core --example cg_profile -- lsoap|nu3 FILE.xyz [--reps N]
//!
//! Hyper-parameters as bench/worker.mjs: cutoff 5 Å (shifted cosine 0.5),
//! Gaussian density 0.3, GTO radial basis; λ-SOAP (`lsoap`,
//! EquivariantPowerSpectrum, every o3_lambda, neighbour types in the keys)
//! max_angular 4, max_radial 4; ν = 3 (`nu3`, SoapBispectrum) max_angular 3,
//! max_radial 3. One warm-up call, then `reps` timed calls (default 5).
//! Prints one JSON line: {"times": [seconds...], "values": N}.

use std::time::Instant;

use acdc_core::calculators::{from_name, ComputeOptions};
use acdc_core::io::xyz::read_xyz;
use acdc_core::parallel::configure_thread_pool;
use acdc_core::System;

fn hypers(max_angular: usize, max_radial: usize) -> String {
    format!(
        r#"{{"cutoff": {{"radius": 5.0, "smoothing": {{"type": "ShiftedCosine", "width": 0.5}}}},
  "density": {{"type": "Gaussian", "width": 0.3}},
  "basis": {{"type": "TensorProduct", "max_angular": {max_angular}, "radial": {{"type": "Gto", "max_radial": {max_radial}}}}}}}"#
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: cg_profile lsoap|nu3 FILE.xyz [--reps N] [--warmup N]";
    let (mode, path) = (args.first().ok_or(usage)?, args.get(1).ok_or(usage)?);
    let option = |name: &str, default: usize| -> Result<usize, Box<dyn std::error::Error>> {
        match args.iter().position(|a| a == name) {
            Some(k) => Ok(args.get(k + 1).ok_or(usage)?.parse()?),
            None => Ok(default),
        }
    };
    let (reps, warmup) = (option("--reps", 5)?, option("--warmup", 1)?);
    let calculator = match mode.as_str() {
        "lsoap" => from_name("equivariant_power_spectrum", &hypers(4, 4))?,
        "nu3" => from_name("soap_bispectrum", &hypers(3, 3))?,
        _ => return Err(usage.into()),
    };
    configure_thread_pool();
    let systems: Vec<System> = read_xyz(path)?.into_iter().map(|f| f.system).collect();
    let options = ComputeOptions::default();
    let mut values = 0;
    for _ in 0..warmup {
        drop(calculator.compute(&systems, &options)?);
    }
    let mut times = Vec::new();
    for _ in 0..reps {
        let start = Instant::now();
        let tm = calculator.compute(&systems, &options)?;
        times.push(format!("{:.6e}", start.elapsed().as_secs_f64()));
        values = tm.blocks.iter().map(|b| b.values.len()).sum();
    }
    println!("{{\"times\": [{}], \"values\": {values}}}", times.join(", "));
    Ok(())
}
