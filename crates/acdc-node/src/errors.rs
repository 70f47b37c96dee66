//! Mapping of core errors to JS errors; panics become errors too.
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Converts a core error into a JS `Error` carrying the same message.
pub fn to_napi(e: acdc_core::Error) -> napi::Error {
    napi::Error::new(napi::Status::InvalidArg, e.to_string())
}

/// Runs `f`, turning a panic (always a bug in acdc) into a JS error instead
/// of unwinding across the FFI boundary.
pub fn guarded<T>(what: &str, f: impl FnOnce() -> napi::Result<T>) -> napi::Result<T> {
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

/// Sizes the process-wide rayon pool once, from `ACDC_NUM_THREADS` when set.
pub fn ensure_thread_pool() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(acdc_core::parallel::configure_thread_pool);
}
