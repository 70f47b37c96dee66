//! Times the Rust core with no N-API in between: the baseline that
//! bench/run.mjs compares the Node API against.
//!
//!     cargo run --release -p acdc-core --example bench_core -- soap|nl|acsf FILE.xyz \
//!         [--gradients] [--warmup N] [--warmup-seconds S] [--reps N] [--reuse]
//!
//! Threads: ACDC_NUM_THREADS, as in the Node package. What is timed, on
//! systems already in memory:
//!   soap  one SOAP power spectrum `compute` (neighbour list included), with
//!         bench/run.mjs's hyper-parameters (featomic 0.6 JSON: cutoff 5,
//!         ShiftedCosine 0.5, Gaussian 0.3, max_angular 6, Gto max_radial 7);
//!   nl    one full neighbour list, cutoff 5 Å, of the first frame (arrays
//!         of 8 MiB or more reused by the next call, as the Node binding's
//!         output pool does; ACDC_OUTPUT_POOL=0: fresh memory every call);
//!   acsf  one symmetry-functions `compute` with bench/worker.mjs's
//!         ACSF_HYPERS (cutoff 6, three G2, four G4), for profiling;
//!   sph   the real spherical harmonics up to l = 6 of every point of FILE
//!         (raw little-endian f64 x, y, z per point, Å), as the SOAP values
//!         path computes them: unit vectors, then the batched kernel
//!         (AVX2 where the CPU has it) in batches of SPH_BATCH points into a
//!         reused [lm][point] buffer. `--dump OUT` writes the values of the
//!         last call, point-major (N × 49 f64), for bench/run.mjs to compare
//!         with sphericart's.
//! `--reuse` hands the large result buffers of a call back for the next
//! call's outputs of the same length, as the Node binding's output pool does
//! (`acdc_core::tensor::buffer::set_reuse_source`), so that the time is not
//! that of faulting fresh pages in: the Node API's case after its first call.
//! Prints one JSON line: {"times": [seconds...], "threads", "values", ...}.

use std::time::Instant;

use acdc_core::calculators::{from_name, ComputeOptions};
use acdc_core::io::xyz::read_xyz;
use acdc_core::math::spherical_harmonics::{unit_vector, SphericalHarmonics};
use acdc_core::parallel::{configure_thread_pool, num_threads};
use acdc_core::{NeighborList, System};

const ACSF_HYPERS: &str = r#"{"cutoff": 6, "g2": [[1, 1], [1, 2], [1, 3]],
  "g4": [[1, 1, 1], [1, 2, 1], [1, 1, -1], [1, 2, -1]]}"#;

const HYPERS: &str = r#"{
  "cutoff": {"radius": 5.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
  "density": {"type": "Gaussian", "width": 0.3},
  "basis": {"type": "TensorProduct", "max_angular": 6, "radial": {"type": "Gto", "max_radial": 7}}
}"#;

fn max_rss_kib() -> i64 {
    // VmHWM of this process, in KiB (Linux); -1 elsewhere
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(-1)
}

/// CPU time of the whole process (every thread), in seconds; 0 where unknown.
fn process_cpu_seconds() -> f64 {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes into the timespec we own
        if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } == 0 {
            return ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9;
        }
    }
    0.0
}

/// Memory of dropped neighbour lists, for the next list of the same system:
/// what the Node binding's output pool does for results JavaScript dropped
/// (crates/acdc-node/src/external.rs), so that `nl` compares the N-API
/// boundary rather than fresh page faults. `ACDC_OUTPUT_POOL=0` turns it off.
static SPARE: std::sync::Mutex<Vec<(usize, std::alloc::Layout)>> = std::sync::Mutex::new(Vec::new());

fn pool_enabled() -> bool {
    std::env::var_os("ACDC_OUTPUT_POOL").map_or(true, |v| v != "0")
}

fn take_spare(layout: std::alloc::Layout) -> Option<std::ptr::NonNull<u8>> {
    let mut spare = SPARE.lock().ok()?;
    let k = spare.iter().position(|&(_, l)| l == layout)?;
    std::ptr::NonNull::new(spare.swap_remove(k).0 as *mut u8)
}

/// Keeps the allocation of `v` (at least 8 MiB, as the binding's pool) for [`take_spare`].
fn keep<T>(v: Vec<T>) {
    let layout = std::alloc::Layout::array::<T>(v.capacity()).expect("layout of an existing Vec");
    if !pool_enabled() || layout.size() < 8 << 20 {
        return;
    }
    let mut v = std::mem::ManuallyDrop::new(v);
    if let Ok(mut spare) = SPARE.lock() {
        spare.push((v.as_mut_ptr() as usize, layout));
    }
}

/// Buffers of dropped results, for `--reuse`.
static POOL: std::sync::Mutex<Vec<Vec<f64>>> = std::sync::Mutex::new(Vec::new());

fn from_pool(len: usize) -> Option<Vec<f64>> {
    let mut pool = POOL.lock().ok()?;
    let at = pool.iter().position(|v| v.len() == len)?;
    Some(pool.swap_remove(at))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut mode = None;
    let mut path = None;
    let mut gradients = false;
    let mut warmup = 1usize;
    let mut reps = 5usize;
    let mut warmup_seconds = 0.0f64;
    let mut dump = None;
    let mut reuse = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--gradients" => gradients = true,
            "--dump" => dump = Some(args.next().ok_or("--dump needs a value")?),
            "--reuse" => reuse = true,
            "--warmup" => warmup = args.next().ok_or("--warmup needs a value")?.parse()?,
            "--reps" => reps = args.next().ok_or("--reps needs a value")?.parse()?,
            "--warmup-seconds" => warmup_seconds = args.next().ok_or("--warmup-seconds needs a value")?.parse()?,
            other if mode.is_none() && !other.starts_with("--") => mode = Some(other.to_string()),
            other if path.is_none() && !other.starts_with("--") => path = Some(other.to_string()),
            other => return Err(format!("unexpected argument {other}").into()),
        }
    }
    let usage = "usage: bench_core soap|nl|acsf|sph FILE [--gradients] [--warmup N] [--reps N] [--dump OUT]";
    let (mode, path) = (mode.ok_or(usage)?, path.ok_or(usage)?);
    if mode == "sph" {
        return spherical_harmonics(&path, warmup, warmup_seconds, reps, dump.as_deref());
    }
    if mode != "soap" && mode != "nl" && mode != "acsf" {
        return Err(usage.into());
    }

    // the Node binding fixes glibc's malloc thresholds (crates/acdc-node,
    // errors.rs: tune_allocator); do the same so that the comparison isolates
    // the N-API boundary rather than allocator settings
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var("ACDC_MALLOC_TRIM_MB").map_or(true, |v| v.trim() != "0") {
        // SAFETY: mallopt only sets allocator parameters
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
        }
    }
    configure_thread_pool();
    acdc_core::tensor::buffer::set_raw_reuse_source(take_spare);
    if reuse {
        acdc_core::tensor::buffer::set_reuse_source(from_pool);
    }
    let systems: Vec<System> = read_xyz(&path)?.into_iter().map(|f| f.system).collect();
    let calculator = if mode == "acsf" {
        from_name("symmetry_functions", ACSF_HYPERS)?
    } else {
        from_name("soap_power_spectrum", HYPERS)?
    };
    let neighbors = NeighborList::new(5.0, true)?;
    let options = ComputeOptions {
        gradients: if gradients { vec!["positions".to_string()] } else { Vec::new() },
        ..Default::default()
    };

    let rss_before = max_rss_kib();
    let mut times = Vec::with_capacity(reps);
    let mut cpu_times = Vec::with_capacity(reps);
    let mut values = 0usize;
    // one call: its time, and the number of values (or pairs) it produced
    let call = || -> Result<(f64, usize), Box<dyn std::error::Error>> {
        let start = Instant::now();
        if mode != "nl" {
            let tm = calculator.compute(&systems, &options)?;
            let elapsed = start.elapsed().as_secs_f64();
            let n = tm
                .blocks
                .iter()
                .map(|b| b.values.len() + b.gradients.iter().map(|(_, g)| g.values.len()).sum::<usize>())
                .sum();
            if reuse {
                let mut pool = POOL.lock().map_err(|_| "pool poisoned")?;
                for block in tm.blocks {
                    for (_, g) in block.gradients {
                        // the binding pools results of 8 MiB and more (POOL_MIN_BYTES)
                        if g.values.len() * 8 >= 8 << 20 {
                            pool.push(g.values);
                        }
                    }
                }
            } else {
                drop(tm);
            }
            Ok((elapsed, n))
        } else {
            let pairs = neighbors.compute(&systems[0])?;
            let elapsed = start.elapsed().as_secs_f64();
            let n = pairs.len();
            keep(pairs.i);
            keep(pairs.j);
            keep(pairs.shifts);
            keep(pairs.distances);
            keep(pairs.vectors);
            Ok((elapsed, n))
        }
    };
    // warm-up: `warmup` calls, continued (when there is any warm-up) until
    // `warmup_seconds` of compute have passed, as in bench/worker.mjs
    let (mut warmed, mut warm_time) = (0usize, 0.0f64);
    while warmed < warmup || (warmup > 0 && warm_time < warmup_seconds) {
        warm_time += call()?.0;
        warmed += 1;
    }
    for _ in 0..reps {
        let cpu = process_cpu_seconds();
        let (t, n) = call()?;
        cpu_times.push(process_cpu_seconds() - cpu);
        times.push(t);
        values = n;
    }
    let times: Vec<String> = times.iter().map(|t| format!("{t:.6e}")).collect();
    let cpu_times: Vec<String> = cpu_times.iter().map(|t| format!("{t:.6e}")).collect();
    println!(
        "{{\"times\": [{}], \"cpu_times\": [{}], \"threads\": {}, \"values\": {}, \"atoms\": {}, \"rss_before_kib\": {}, \"maxrss_kib\": {}}}",
        times.join(", "),
        cpu_times.join(", "),
        num_threads(),
        values,
        systems.iter().map(System::size).sum::<usize>(),
        rss_before,
        max_rss_kib()
    );
    Ok(())
}

/// Degree of the `sph` case (the SOAP cases' max_angular).
const SPH_L_MAX: usize = 6;
/// Points per batch in the `sph` case: about the neighbours of one centre
/// within 5 Å in water (si512 has ~26), the batches the SOAP values path
/// hands to the kernel.
const SPH_BATCH: usize = 64;

/// The batched kernel as the SOAP values path runs it: compiled for AVX2
/// and FMA (expansion_values.rs dispatches to such a copy).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sph_batch_avx2(sph: &SphericalHarmonics, x: &[f64], y: &[f64], z: &[f64], scratch: &mut [f64], values: &mut [f64]) {
    sph.compute_batch(x, y, z, scratch, values);
}

fn sph_batch(sph: &SphericalHarmonics, x: &[f64], y: &[f64], z: &[f64], scratch: &mut [f64], values: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for
        unsafe { sph_batch_avx2(sph, x, y, z, scratch, values) };
        return;
    }
    sph.compute_batch(x, y, z, scratch, values);
}

/// The `sph` case: times Y_l^m(r̂) of every point of `path`, one call = all
/// points; prints the same JSON line as the other cases (values = N · 49).
fn spherical_harmonics(path: &str, warmup: usize, warmup_seconds: f64, reps: usize, dump: Option<&str>) -> Result<(), Box<dyn std::error::Error>> {
    let bytes = std::fs::read(path)?;
    if bytes.len() % 24 != 0 || bytes.is_empty() {
        return Err(format!("{path}: expected x, y, z f64 triples, got {} bytes", bytes.len()).into());
    }
    let points: Vec<[f64; 3]> = bytes
        .chunks_exact(24)
        .map(|c| std::array::from_fn(|k| f64::from_le_bytes(c[8 * k..8 * k + 8].try_into().expect("8 bytes"))))
        .collect();
    let sph = SphericalHarmonics::new(SPH_L_MAX);
    let n_lm = sph.size();
    let (mut x, mut y, mut z) = (vec![0.0; SPH_BATCH], vec![0.0; SPH_BATCH], vec![0.0; SPH_BATCH]);
    let mut scratch = vec![0.0; 4 * SPH_BATCH];
    let mut values = vec![0.0; n_lm * SPH_BATCH];
    let mut out = vec![0.0; n_lm * points.len()];
    let mut call = |keep: bool| -> f64 {
        let start = Instant::now();
        for (b, batch) in points.chunks(SPH_BATCH).enumerate() {
            let count = batch.len();
            for (p, r) in batch.iter().enumerate() {
                let u = unit_vector(*r);
                (x[p], y[p], z[p]) = (u[0], u[1], u[2]);
            }
            sph_batch(&sph, &x[..count], &y[..count], &z[..count], &mut scratch, &mut values[..n_lm * count]);
            if keep {
                for p in 0..count {
                    for lm in 0..n_lm {
                        out[(b * SPH_BATCH + p) * n_lm + lm] = values[lm * count + p];
                    }
                }
            }
            std::hint::black_box(&values);
        }
        start.elapsed().as_secs_f64()
    };
    let (mut warmed, mut warm_time) = (0usize, 0.0f64);
    while warmed < warmup || (warmup > 0 && warm_time < warmup_seconds) {
        warm_time += call(false);
        warmed += 1;
    }
    let times: Vec<String> = (0..reps).map(|_| format!("{:.6e}", call(false))).collect();
    if let Some(dump) = dump {
        call(true);
        let bytes: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dump, bytes)?;
    }
    println!(
        "{{\"times\": [{}], \"threads\": 1, \"values\": {}, \"points\": {}, \"batch\": {SPH_BATCH}, \"l_max\": {SPH_L_MAX}, \"rss_before_kib\": -1, \"maxrss_kib\": {}}}",
        times.join(", "),
        out.len(),
        points.len(),
        max_rss_kib()
    );
    Ok(())
}
