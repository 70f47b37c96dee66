//! Times SOAP power-spectrum gradients in the Rust core (wall and process
//! CPU time per call) and optionally dumps every value, to compare two
//! builds of the gradient code bit for bit (issue 19).
//!
//!     cargo run --release -p acdc-core --example soap_gradients -- FILE.xyz \
//!         [--strain] [--no-positions] [--reps N] [--dump OUT.f64]
//!
//! Hyper-parameters as bench/run.mjs. Threads: ACDC_NUM_THREADS. The dump is
//! every block's values then its gradients' values (in the order of the
//! TensorMap), as little-endian f64.
use std::io::Write;
use std::time::Instant;

use acdc_core::calculators::{from_name, ComputeOptions};
use acdc_core::io::xyz::read_xyz;
use acdc_core::parallel::configure_thread_pool;
use acdc_core::System;

const HYPERS: &str = r#"{
  "cutoff": {"radius": 5.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
  "density": {"type": "Gaussian", "width": 0.3},
  "basis": {"type": "TensorProduct", "max_angular": 6, "radial": {"type": "Gto", "max_radial": 7}}
}"#;

/// (user, system) CPU seconds of this process so far.
fn cpu_seconds() -> (f64, f64) {
    // SAFETY: getrusage only writes the struct we pass
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    (t(u.ru_utime), t(u.ru_stime))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut path, mut dump, mut reps) = (None, None, 5usize);
    let (mut positions, mut strain) = (true, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--strain" => strain = true,
            "--no-positions" => positions = false,
            "--reps" => reps = args.next().ok_or("--reps needs a value")?.parse()?,
            "--dump" => dump = Some(args.next().ok_or("--dump needs a path")?),
            other if path.is_none() => path = Some(other.to_string()),
            other => return Err(format!("unexpected argument {other}").into()),
        }
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters (as the Node binding does)
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
    }
    configure_thread_pool();
    let systems: Vec<System> = read_xyz(&path.ok_or("usage: soap_gradients FILE.xyz")?)?.into_iter().map(|f| f.system).collect();
    let calculator = from_name("soap_power_spectrum", HYPERS)?;
    let mut gradients = Vec::new();
    if positions {
        gradients.push("positions".to_string());
    }
    if strain {
        gradients.push("strain".to_string());
    }
    let options = ComputeOptions { gradients, ..Default::default() };
    drop(calculator.compute(&systems, &options)?);
    let (mut wall, mut cpu, mut user, mut sys) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        let (w, (u0, s0)) = (Instant::now(), cpu_seconds());
        let tm = calculator.compute(&systems, &options)?;
        wall.push(w.elapsed().as_secs_f64());
        let (u1, s1) = cpu_seconds();
        cpu.push(u1 - u0 + s1 - s0);
        user.push(u1 - u0);
        sys.push(s1 - s0);
        drop(tm);
    }
    println!(
        "wall {:.2} ms  cpu {:.2} ms  user {:.2} ms  sys {:.2} ms  (medians of {reps})",
        median(wall) * 1e3,
        median(cpu) * 1e3,
        median(user) * 1e3,
        median(sys) * 1e3
    );
    if let Some(dump) = dump {
        let tm = calculator.compute(&systems, &options)?;
        let mut f = std::io::BufWriter::new(std::fs::File::create(dump)?);
        for b in &tm.blocks {
            for v in b.values.iter().chain(b.gradients.iter().flat_map(|(_, g)| g.values.iter())) {
                f.write_all(&v.to_le_bytes())?;
            }
        }
        f.flush()?;
    }
    Ok(())
}
