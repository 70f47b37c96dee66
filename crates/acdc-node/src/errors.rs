//! Mapping of core errors to JS errors; panics become errors too.
//!
//! Every error keeps its kind across the boundary as a stable `code`
//! (`ACDC_INVALID_PARAMETER`, `ACDC_IO`, …) and, where the core has it, data
//! (the JSON path of a parameter, the line of a parse error, the OS error
//! number of an I/O error). napi-rs gives a JS error only a message and one of
//! its own status names, and an asynchronous task cannot choose another, so
//! the code and data travel in front of the message:
//! `\u{1}CODE\u{1}{json data}\u{1}message`. js/native.ts, the only module
//! that loads this binding, moves them onto the error object before any caller
//! sees it.
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Marks the start of the code and of the data in an error message.
const TAG: char = '\u{1}';

/// The stable code of a core error (documented in the README's error table).
pub fn code(e: &acdc_core::Error) -> &'static str {
    use acdc_core::Error as E;
    match e {
        E::InvalidSystem(_) => "ACDC_INVALID_SYSTEM",
        E::InvalidParameter(_) => "ACDC_INVALID_PARAMETER",
        E::Parse { .. } => "ACDC_PARSE",
        E::Io(_) => "ACDC_IO",
        E::Numerical(_) => "ACDC_NUMERICAL",
        E::Memory(_) => "ACDC_MEMORY",
        E::Cancelled => "ABORT_ERR",
    }
}

/// A napi error carrying `code`, `data` (a JSON object's text, or empty) and the message.
pub fn coded(code: &str, data: &str, message: impl std::fmt::Display) -> napi::Error {
    napi::Error::new(napi::Status::GenericFailure, format!("{TAG}{code}{TAG}{data}{TAG}{message}"))
}

/// Converts a core error into a JS `Error` with its code, data and message.
pub fn to_napi(e: acdc_core::Error) -> napi::Error {
    to_napi_in("", e)
}

/// [`to_napi`] with `context` (a file name) in front of the message.
pub fn to_napi_in(context: &str, e: acdc_core::Error) -> napi::Error {
    let data = match &e {
        acdc_core::Error::InvalidParameter(m) => parameter_path(m).map(|p| format!("{{\"path\":{}}}", json_string(p))),
        acdc_core::Error::Parse { line, .. } => Some(format!("{{\"line\":{line}}}")),
        acdc_core::Error::Io(m) => os_error(m).map(|n| format!("{{\"osErrno\":{n}}}")),
        _ => None,
    };
    let message = if context.is_empty() { e.to_string() } else { format!("{context}: {e}") };
    coded(code(&e), data.as_deref().unwrap_or(""), message)
}

/// `e` with `context` (`systems[3]`, a file name) in front of its message,
/// keeping its code and data.
pub fn in_context(context: &str, e: napi::Error) -> napi::Error {
    let reason = &e.reason;
    if let Some(rest) = reason.strip_prefix(TAG) {
        // TAG code TAG data TAG message
        if let Some(end) = rest.find(TAG).and_then(|a| rest[a + 1..].find(TAG).map(|b| a + 1 + b)) {
            return napi::Error::new(e.status, format!("{TAG}{}{TAG}{context}: {}", &rest[..end], &rest[end + 1..]));
        }
    }
    napi::Error::new(e.status, format!("{context}: {reason}"))
}

/// An I/O error of the binding's own file handling (`path: message`), with
/// the OS error number when `e` is an OS error.
pub fn io_error(path: &str, e: impl std::fmt::Display) -> napi::Error {
    let message = format!("{path}: {e}");
    let data = os_error(&message).map(|n| format!("{{\"osErrno\":{n}}}"));
    coded("ACDC_IO", data.as_deref().unwrap_or(""), message)
}

/// The OS error number std::io::Error's text ends with: "… (os error 2)".
fn os_error(message: &str) -> Option<i32> {
    let start = message.rfind("(os error ")? + "(os error ".len();
    let end = start + message[start..].find(')')?;
    message[start..end].parse().ok()
}

/// The JSON path a parameter message starts with. The core writes every
/// parameter error as `[<what> hyper-parameters: ]<path>: …` or `<path> must
/// …` / `<path> is …` / `<path> (…`, the path in the user's own terms
/// (`basis.radial.max_radial`, `g2[1][0]`); a message that names no path
/// gives none.
fn parameter_path(message: &str) -> Option<&str> {
    let rest = match message.find(" hyper-parameters: ") {
        Some(at) if !message[..at].contains(' ') => &message[at + " hyper-parameters: ".len()..],
        _ => message,
    };
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'))).unwrap_or(rest.len());
    let path = &rest[..end];
    let after = &rest[end..];
    let starts_ok = path.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let ends_ok = [":", " must", " is ", " (", " has ", " should "].iter().any(|s| after.starts_with(s));
    (starts_ok && ends_ok && !path.ends_with('.')).then_some(path)
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
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
            Err(coded("ACDC_INTERNAL", "", format!("internal error in {what} (please report this bug): {detail}")))
        }
    }
}

/// Sizes the process-wide rayon pool once, from `ACDC_NUM_THREADS` when set,
/// and tunes glibc's allocator for our output buffers.
pub fn ensure_thread_pool() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tune_allocator();
        crate::external::install_pool();
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

