//! Time and peak memory of one MD step (energy, forces, stress) of a fitted
//! sparse GPR on rattled diamond silicon, in the Rust core (issue 27):
//!
//!     cargo run --release -p acdc-core --example md_step -- fit MODEL.acdc
//!     cargo run --release -p acdc-core --example md_step -- step MODEL.acdc \
//!         backprop|features N_CELLS [--reps R]
//!
//! `fit` fits GAP's matched settings (n_max 8, l_max 6, r_c 5 Å, σ 0.5 Å,
//! ζ 4, δ 0.2 eV, 400 CUR sparse points) on ten rattled 64-atom cells with
//! made-up smooth targets (what is timed does not depend on the weights).
//! `step` predicts one N_CELLS³ × 8-atom cell (64, 1 000, 8 000 atoms for
//! 2, 5, 10), R times, by backpropagation (`predict_within`) or through the
//! power-spectrum gradients (`predict_within_features`, the path before),
//! and prints one JSON line: median wall seconds per step, this process's
//! peak RSS (VmHWM) and its page faults. One process per measurement, so
//! the peaks do not mix. Threads: ACDC_NUM_THREADS. bench/md_step_memory.mjs
//! runs the grid.
use std::time::Instant;

use acdc_core::math::random::LegacyRandomState;
use acdc_core::models::{model_file, E0, FitOptions, KindOptions, Potential, PredictOptions, Sigmas, SparseMethod, Targets};
use acdc_core::parallel::configure_thread_pool;
use acdc_core::System;

const HYPERS: &str = r#"{
  "cutoff": {"radius": 5.0, "smoothing": {"type": "ShiftedCosine", "width": 1.0}},
  "density": {"type": "Gaussian", "width": 0.5},
  "basis": {"type": "TensorProduct", "max_angular": 6, "radial": {"type": "Gto", "max_radial": 7}}
}"#;

/// Diamond silicon, `n`³ conventional cells (a = 5.43 Å), every coordinate
/// moved by a Gaussian of `rattle` Å.
fn diamond(n: usize, rattle: f64, seed: u32) -> System {
    let a = 5.43;
    let basis = [
        [0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0],
        [0.25, 0.25, 0.25], [0.25, 0.75, 0.75], [0.75, 0.25, 0.75], [0.75, 0.75, 0.25],
    ];
    let mut rng = LegacyRandomState::new(seed);
    let mut positions = Vec::new();
    for i in 0..n {
        for j in 0..n {
            for k in 0..n {
                for b in &basis {
                    let p = [(i as f64 + b[0]) * a, (j as f64 + b[1]) * a, (k as f64 + b[2]) * a];
                    positions.push(p.map(|v| v + rattle * rng.gauss()));
                }
            }
        }
    }
    let l = n as f64 * a;
    System::new(vec![14; positions.len()], positions, [[l, 0.0, 0.0], [0.0, l, 0.0], [0.0, 0.0, l]], [true; 3]).expect("a valid cell")
}

/// Peak resident set (VmHWM, bytes) and (minor, major) page faults so far.
fn peak_and_faults() -> (u64, i64, i64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024;
    // SAFETY: getrusage only writes the struct we pass
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    (hwm, u.ru_minflt, u.ru_majflt)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    configure_thread_pool();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("fit") => {
            let path = args.get(1).ok_or("fit MODEL.acdc")?;
            let systems: Vec<System> = (0..10).map(|k| diamond(2, 0.1 + 0.01 * k as f64, k + 1)).collect();
            // smooth made-up targets: a harmonic pull of each atom to its lattice site
            let lattice = diamond(2, 0.0, 0);
            let mut targets = Targets { energy: Vec::new(), forces: Some(Vec::new()), stress: Some(Vec::new()), frame_sigmas: Vec::new() };
            for s in &systems {
                let mut e = -4.6 * s.size() as f64;
                let mut f = Vec::new();
                for (p, q) in s.positions.iter().zip(&lattice.positions) {
                    for x in 0..3 {
                        let d = p[x] - q[x];
                        e += 0.5 * d * d;
                        f.push(-d);
                    }
                }
                targets.energy.push(e);
                targets.forces.as_mut().unwrap().push(f);
                targets.stress.as_mut().unwrap().push(Some([0.0; 9]));
            }
            let options = FitOptions {
                hypers: HYPERS.into(),
                kind: KindOptions::SparseGpr { count: 400, counts: vec![], method: SparseMethod::Cur, seed: 0, zeta: 4, delta: 0.2, jitter: 1e-8 },
                sigmas: Sigmas { energy: 0.002, forces: 0.05, stress: 0.001 },
                e0: E0::Average,
                batch_atoms: 128,
                cancel: None,
                pair: None,
            };
            let start = Instant::now();
            let p = Potential::fit(&systems, &targets, &options)?;
            std::fs::write(path, model_file::to_bytes(&p)?)?;
            eprintln!("fitted in {:.1} s", start.elapsed().as_secs_f64());
        }
        Some("step") => {
            let path = args.get(1).ok_or("step MODEL.acdc MODE N_CELLS")?;
            let mode = args.get(2).ok_or("step MODEL.acdc MODE N_CELLS")?.clone();
            let cells: usize = args.get(3).ok_or("step MODEL.acdc MODE N_CELLS")?.parse()?;
            let reps: usize = match args.iter().position(|a| a == "--reps") {
                Some(k) => args.get(k + 1).ok_or("--reps needs a value")?.parse()?,
                None => 3,
            };
            let p = model_file::from_bytes(&std::fs::read(path)?, path)?;
            let system = diamond(cells, 0.05, 7);
            let (before, _, _) = peak_and_faults();
            let opts = PredictOptions { forces: true, stress: true, variance: false };
            let mut times = Vec::new();
            let mut energy = 0.0;
            let mut force_norm = 0.0;
            let (_, faults0, _) = peak_and_faults();
            for _ in 0..reps {
                let start = Instant::now();
                let out = match mode.as_str() {
                    "backprop" => p.predict_within(std::slice::from_ref(&system), &opts, usize::MAX, &None, None)?,
                    "features" => p.predict_within_features(std::slice::from_ref(&system), &opts, usize::MAX, &None, None)?,
                    other => return Err(format!("mode {other} (expected backprop or features)").into()),
                };
                times.push(start.elapsed().as_secs_f64());
                energy = out.energy[0];
                force_norm = out.forces[0].iter().map(|f| f * f).sum::<f64>().sqrt();
            }
            let (peak, faults, _) = peak_and_faults();
            times.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!(
                "{{\"mode\":\"{mode}\",\"atoms\":{},\"threads\":{},\"reps\":{reps},\"seconds\":{},\"peak_rss\":{peak},\"rss_before\":{before},\"minor_faults_per_step\":{},\"energy\":{energy:.17e},\"force_norm\":{force_norm:.17e}}}",
                system.size(),
                rayon::current_num_threads(),
                times[times.len() / 2],
                (faults - faults0) / reps as i64,
            );
        }
        _ => return Err("usage: md_step fit MODEL.acdc | md_step step MODEL.acdc backprop|features N_CELLS [--reps R]".into()),
    }
    Ok(())
}
