//! The memory budget: work whose size comes from the input (pairs within a
//! cutoff, expansion coefficients, gradient rows, output blocks) is estimated
//! before anything is allocated and refused when the estimate is above the
//! budget. A refused computation is an ordinary error that names what was
//! too big; without this check, an allocator failure aborts the whole
//! process (Rust's default for a failed allocation), which no `try` catches.
//!
//! The budget is, in order: the `max_memory` option of a computation, the
//! `ACDC_MAX_MEMORY` environment variable (bytes, or a number with a K/M/G/T
//! suffix in powers of 1024, or a percentage of the machine's memory such as
//! `50%`), or half of the memory available to the process (the smaller of
//! physical memory and a cgroup limit), or 8 GiB where neither can be read.

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Default share of the process's memory that one computation may use.
pub const DEFAULT_FRACTION: f64 = 0.5;
/// Budget used when the machine's memory cannot be read.
pub const FALLBACK_BYTES: u64 = 8 << 30;

/// A limit in bytes on the memory one computation may allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Bytes.
    pub bytes: u64,
}

impl MemoryBudget {
    /// The process-wide budget: `ACDC_MAX_MEMORY`, else the default. Read
    /// once; an invalid `ACDC_MAX_MEMORY` falls back to the default (the
    /// binding validates the variable and reports it, see [`parse_size`]).
    pub fn global() -> MemoryBudget {
        static GLOBAL: OnceLock<MemoryBudget> = OnceLock::new();
        *GLOBAL.get_or_init(|| {
            std::env::var("ACDC_MAX_MEMORY")
                .ok()
                .and_then(|v| parse_size("ACDC_MAX_MEMORY", &v).ok())
                .map(|bytes| MemoryBudget { bytes })
                .unwrap_or_else(MemoryBudget::default_for_machine)
        })
    }

    /// [`DEFAULT_FRACTION`] of the memory available to this process.
    pub fn default_for_machine() -> MemoryBudget {
        let bytes = available_memory().map(|m| (m as f64 * DEFAULT_FRACTION) as u64).unwrap_or(FALLBACK_BYTES);
        MemoryBudget { bytes }
    }

    /// `max_memory` when given, else [`MemoryBudget::global`].
    pub fn or_global(max_memory: Option<u64>) -> MemoryBudget {
        max_memory.map(|bytes| MemoryBudget { bytes }).unwrap_or_else(MemoryBudget::global)
    }

    /// Fails when `bytes` (an estimate for `what`) is above the budget. The
    /// message names the quantity, the estimate and the budget, and says
    /// how to raise it.
    pub fn check(&self, what: &str, bytes: f64) -> Result<()> {
        if bytes.is_finite() && bytes <= self.bytes as f64 {
            return Ok(());
        }
        Err(Error::Memory(format!(
            "{what} needs about {} of memory, more than the budget of {} (set by the maxMemory option or ACDC_MAX_MEMORY; \
             a smaller cutoff, fewer structures per batch or no gradients need less)",
            format_bytes(bytes),
            format_bytes(self.bytes as f64)
        )))
    }
}

/// Bytes as a short human-readable string (1024-based units).
pub fn format_bytes(bytes: f64) -> String {
    if !bytes.is_finite() {
        return "an unbounded amount".into();
    }
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else if v >= 1e4 {
        format!("{v:.3e} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Parses a memory size: bytes (`1000000`), a number with a K/M/G/T suffix
/// (powers of 1024, an optional trailing `B` or `iB`), or a percentage of
/// the memory available to the process (`25%`). `field` names the source in
/// the error.
pub fn parse_size(field: &str, text: &str) -> Result<u64> {
    let t = text.trim();
    let bad = || Error::InvalidParameter(format!("{field} must be a size such as 4G, 512M, 1000000 or 50%, got \"{}\"", truncate(text, 40)));
    if let Some(p) = t.strip_suffix('%') {
        let p: f64 = p.trim().parse().map_err(|_| bad())?;
        if !(p > 0.0 && p <= 100.0) {
            return Err(bad());
        }
        let total = available_memory().unwrap_or(FALLBACK_BYTES * 2);
        return Ok((total as f64 * p / 100.0) as u64);
    }
    let upper = t.to_ascii_uppercase();
    let body = upper.strip_suffix("IB").or_else(|| upper.strip_suffix('B')).unwrap_or(&upper);
    let (number, scale) = match body.chars().last() {
        Some('K') => (&body[..body.len() - 1], 1u64 << 10),
        Some('M') => (&body[..body.len() - 1], 1 << 20),
        Some('G') => (&body[..body.len() - 1], 1 << 30),
        Some('T') => (&body[..body.len() - 1], 1 << 40),
        _ => (body, 1),
    };
    let v: f64 = number.trim().parse().map_err(|_| bad())?;
    let bytes = v * scale as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < 1.8e19) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max).collect();
        s.push('…');
        s
    }
}

/// Memory available to this process in bytes: physical memory, or the
/// cgroup limit when that is smaller. None where neither can be read.
pub fn available_memory() -> Option<u64> {
    let physical = physical_memory();
    let cgroup = cgroup_limit();
    match (physical, cgroup) {
        (Some(p), Some(c)) => Some(p.min(c)),
        (p, c) => p.or(c),
    }
}

#[cfg(target_os = "linux")]
fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(not(target_os = "linux"))]
fn physical_memory() -> Option<u64> {
    None
}

#[cfg(target_os = "linux")]
fn cgroup_limit() -> Option<u64> {
    // cgroup v2, then v1; "max" or an absurdly large v1 value mean no limit
    for path in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(v) = text.trim().parse::<u64>() {
                if v < (1u64 << 60) {
                    return Some(v);
                }
            }
        }
    }
    None
}

#[cfg(not(target_os = "linux"))]
fn cgroup_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("x", "1000").unwrap(), 1000);
        assert_eq!(parse_size("x", "4K").unwrap(), 4096);
        assert_eq!(parse_size("x", "1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("x", "2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("x", "512mb").unwrap(), 512 << 20);
        assert!(parse_size("x", "50%").unwrap() > 0);
        for bad in ["", "abc", "-5G", "0", "150%", "1e30", "NaN", "G"] {
            let e = parse_size("ACDC_MAX_MEMORY", bad).unwrap_err().to_string();
            assert!(e.contains("ACDC_MAX_MEMORY"), "{bad}: {e}");
        }
    }

    #[test]
    fn check_names_the_quantity_and_the_budget() {
        let b = MemoryBudget { bytes: 1 << 30 };
        assert!(b.check("x", 1e9).is_ok());
        let e = b.check("neighbour list of system 0", 3e10).unwrap_err().to_string();
        assert!(e.contains("neighbour list of system 0") && e.contains("27.9 GiB") && e.contains("1.0 GiB"), "{e}");
        assert!(b.check("x", f64::INFINITY).is_err());
        assert!(b.check("x", f64::NAN).is_err());
    }

    #[test]
    fn machine_default_is_positive() {
        assert!(MemoryBudget::default_for_machine().bytes > 0);
    }
}
