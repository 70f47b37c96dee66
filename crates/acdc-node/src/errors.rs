//! Mapping of core errors to JS errors; panics become errors too.
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Converts a core error into a JS `Error` carrying the same message.
pub fn to_napi(e: acdc_core::Error) -> napi::Error {
    napi::Error::new(napi::Status::InvalidArg, e.to_string())
}

/// Runs `f`, turning a panic (always a bug in acdc) into a JS error instead
/// of unwinding across the FFI boundary.
pub fn guarded<T>(what: &str, f: impl FnOnce() -> napi::Result<T>) -> napi::Result<T> {
    silence_panic_messages();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(napi::Error::from_reason(format!("internal error in {what} (please report this bug): {detail}")))
        }
    }
}

/// Sizes the process-wide rayon pool once, from `ACDC_NUM_THREADS` when set,
/// and tunes glibc's allocator for our output buffers.
pub fn ensure_thread_pool() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tune_allocator();
        acdc_core::parallel::configure_thread_pool();
    });
}

/// Output buffers (MBs each) are freed by V8's garbage collector, often many
/// at once; with glibc's dynamic thresholds that returns them to the kernel
/// and the next computation page-faults its buffers in again (≈1 fault per
/// 4 kB: ~10-20% of a SOAP call on 1000 atoms). Fixed thresholds keep up to
/// `ACDC_MALLOC_TRIM_MB` (default 128; 0 keeps glibc's defaults) of freed
/// memory for reuse. Node's own heap is allocated by V8, not malloc.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    let trim_mb = std::env::var("ACDC_MALLOC_TRIM_MB").ok().and_then(|v| v.trim().parse::<i32>().ok()).unwrap_or(128);
    if trim_mb <= 0 {
        return;
    }
    // SAFETY: mallopt only sets allocator parameters; it is thread-safe.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, trim_mb.min(2047) << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

/// Rust's default panic hook prints the message (and, with RUST_BACKTRACE
/// set, a backtrace) to stderr even when the panic is caught; the panic
/// already becomes a JS error carrying the message, and a library must not
/// write to its host's stderr.
fn silence_panic_messages() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}
