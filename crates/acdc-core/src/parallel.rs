//! The process-wide rayon pool.

/// Builds the global rayon pool with `ACDC_NUM_THREADS` threads when that
/// variable is a positive integer; otherwise rayon's default (the
/// cgroup-aware core count). Its threads are named `acdc-0`, `acdc-1`, …
/// so that `top -H`, `perf` and /proc tell them from the host's own (V8's
/// workers, Python's). Does nothing if the pool already exists.
pub fn configure_thread_pool() {
    let requested = std::env::var("ACDC_NUM_THREADS").ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|&n| n > 0);
    // 0: rayon's default count
    let builder = rayon::ThreadPoolBuilder::new().num_threads(requested.unwrap_or(0)).thread_name(|i| format!("acdc-{i}"));
    // an error only means the pool was already built; keep that one
    let _ = builder.build_global();
}

/// Number of threads in the pool that parallel work uses.
pub fn num_threads() -> usize {
    rayon::current_num_threads()
}
