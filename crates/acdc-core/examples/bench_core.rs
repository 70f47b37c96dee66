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
//!         of 32 MiB or more reused by the next call, as the Node binding's
//!         output pool does; ACDC_OUTPUT_POOL=0: fresh memory every call);
//!   acsf  one symmetry-functions `compute` with bench/worker.mjs's
//!         ACSF_HYPERS (cutoff 6, three G2, four G4), for profiling.
//! `--reuse` hands the large result buffers of a call back for the next
//! call's outputs of the same length, as the Node binding's output pool does
//! (`acdc_core::tensor::buffer::set_reuse_source`), so that the time is not
//! that of faulting fresh pages in: the Node API's case after its first call.
//! Prints one JSON line: {"times": [seconds...], "threads", "values", ...}.

use std::time::Instant;

use acdc_core::calculators::{from_name, ComputeOptions};
use acdc_core::io::xyz::read_xyz;
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

/// Keeps the allocation of `v` (at least 32 MiB, as the binding's pool) for [`take_spare`].
fn keep<T>(v: Vec<T>) {
    let layout = std::alloc::Layout::array::<T>(v.capacity()).expect("layout of an existing Vec");
    if !pool_enabled() || layout.size() < 32 << 20 {
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
    let mut reuse = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--gradients" => gradients = true,
            "--reuse" => reuse = true,
            "--warmup" => warmup = args.next().ok_or("--warmup needs a value")?.parse()?,
            "--reps" => reps = args.next().ok_or("--reps needs a value")?.parse()?,
            "--warmup-seconds" => warmup_seconds = args.next().ok_or("--warmup-seconds needs a value")?.parse()?,
            other if mode.is_none() && !other.starts_with("--") => mode = Some(other.to_string()),
            other if path.is_none() && !other.starts_with("--") => path = Some(other.to_string()),
            other => return Err(format!("unexpected argument {other}").into()),
        }
    }
    let usage = "usage: bench_core soap|nl|acsf FILE.xyz [--gradients] [--warmup N] [--reps N]";
    let (mode, path) = (mode.ok_or(usage)?, path.ok_or(usage)?);
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
                        // the binding pools results of 32 MiB and more (POOL_MIN_BYTES)
                        if g.values.len() * 8 >= 32 << 20 {
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
