//! Large zeroed output buffers.
//!
//! Gradient blocks can be hundreds of MB, so two things matter here:
//! allocation failure must be an error, not a process abort (a JS caller
//! cannot catch an abort), and faulting the pages in 4 KiB at a time costs
//! more than computing them (measured: 0.17 s of kernel time for the 170 MB
//! gradient block of a 512-atom SOAP). On Linux, large buffers therefore ask
//! for transparent huge pages before their first touch.
use std::alloc::{alloc_zeroed, Layout};

use crate::error::{Error, Result};

/// Buffers at least this large (bytes) are advised to use huge pages.
const HUGE_PAGE_THRESHOLD: usize = 8 << 20;

/// A vector of `len` zeros, or an error naming `what` when the memory cannot
/// be had. Backed by huge pages when large (Linux only).
pub fn zeroed(len: usize, what: &str) -> Result<Vec<f64>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let too_large = || {
        Error::InvalidParameter(format!(
            "{what} needs {len} values ({:.1} GB), more memory than is available: compute fewer systems at once",
            len as f64 * 8e-9
        ))
    };
    let layout = Layout::array::<f64>(len).map_err(|_| too_large())?;
    // SAFETY: the layout has a non-zero size; a null pointer is handled; the
    // memory is zeroed, and all-zero bytes are a valid f64 (0.0); the vector
    // takes ownership with the same layout (capacity = len) it was allocated with.
    let v = unsafe {
        let ptr = alloc_zeroed(layout) as *mut f64;
        if ptr.is_null() {
            return Err(too_large());
        }
        Vec::from_raw_parts(ptr, len, len)
    };
    #[cfg(target_os = "linux")]
    advise_huge_pages(&v);
    Ok(v)
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(v: &[f64]) {
    let bytes = std::mem::size_of_val(v);
    if bytes < HUGE_PAGE_THRESHOLD {
        return;
    }
    const HUGE: usize = 2 << 20;
    let start = v.as_ptr() as usize;
    let aligned = (start + HUGE - 1) & !(HUGE - 1);
    let end = (start + bytes) & !(HUGE - 1);
    if end > aligned {
        // SAFETY: the range lies inside the allocation of `v`; MADV_HUGEPAGE
        // only changes how the kernel backs it, never its contents. Failure
        // (no THP support) is harmless and ignored.
        unsafe {
            libc::madvise(aligned as *mut libc::c_void, end - aligned, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn zeroed_buffers_are_zero() {
        for len in [0, 10, (16 << 20) / 8 + 3] {
            let v = super::zeroed(len, "test").unwrap();
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 0.0));
        }
    }

    #[test]
    fn impossible_sizes_are_errors() {
        let e = super::zeroed(usize::MAX / 16, "the gradient block").unwrap_err();
        assert!(e.to_string().contains("the gradient block needs"), "{e}");
    }
}
