//! Large zeroed output buffers.
//!
//! Gradient blocks can be hundreds of MB, so two things matter here:
//! allocation failure must be an error, not a process abort (a JS caller
//! cannot catch an abort), and faulting the pages in one 4 KiB trap at a time
//! costs more than computing them (measured: 0.17 s of kernel time for the
//! 160 MB gradient block of a 512-atom SOAP, against 0.07 s of arithmetic).
//! On Linux ≥ 5.14, large buffers are therefore pre-faulted with
//! MADV_POPULATE_WRITE, in parallel chunks. Transparent huge pages were
//! faster still when buffers are freed promptly, but under Node.js, where
//! buffers live until the garbage collector runs, the kernel's compaction
//! made them 4× slower: pre-faulting is the predictable choice.
use std::alloc::{alloc_zeroed, Layout};

use crate::error::{Error, Result};

/// Buffers at least this large (bytes) are pre-faulted.
const PREFAULT_THRESHOLD: usize = 1 << 20;

/// A vector of `len` zeros, or an error naming `what` when the memory cannot
/// be had. Large buffers come pre-faulted (Linux only).
pub fn zeroed(len: usize, what: &str) -> Result<Vec<f64>> {
    let v = zeroed_unfaulted(len, what)?;
    #[cfg(target_os = "linux")]
    prefault(&v);
    Ok(v)
}

/// As [`zeroed`], without pre-faulting: for writers that fault their part
/// in ([`prefault_part`]) just before writing it, so that the freshly zeroed
/// pages are still in cache when written (one pass over memory, not two).
/// Mid-sized buffers are zeroed by the thread pool (and so already faulted).
pub fn zeroed_unfaulted(len: usize, what: &str) -> Result<Vec<f64>> {
    if (PARALLEL_ZERO_MIN..PARALLEL_ZERO_MAX).contains(&len.saturating_mul(8)) {
        return zeroed_in_parallel(len, what);
    }
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
    Ok(v)
}

/// Where [`for_overwrite`] may take a buffer of a given length that is
/// already resident (its contents arbitrary), or `None`. The Node binding
/// installs its pool of large results that JavaScript no longer references.
pub type ReuseSource = fn(usize) -> Option<Vec<f64>>;

static REUSE_SOURCE: std::sync::OnceLock<ReuseSource> = std::sync::OnceLock::new();

/// Installs the source of reusable buffers for [`for_overwrite`] (once per
/// process; later calls are ignored). Without one, nothing is reused.
pub fn set_reuse_source(source: ReuseSource) {
    let _ = REUSE_SOURCE.set(source);
}

/// A buffer of `len` values for a writer that assigns **every** element:
/// a resident buffer from the reuse source when it has one of this length
/// (`true`: no page faults, contents arbitrary until written), else a fresh
/// one as from [`zeroed_unfaulted`] (`false`).
pub fn for_overwrite(len: usize, what: &str) -> Result<(Vec<f64>, bool)> {
    if len > 0 {
        if let Some(v) = REUSE_SOURCE.get().and_then(|source| source(len)) {
            if v.len() == len {
                return Ok((v, true));
            }
        }
    }
    Ok((zeroed_unfaulted(len, what)?, false))
}

/// Where [`reusable`] may take resident memory: an allocation made by the
/// global allocator with exactly this layout, its contents arbitrary, now
/// owned by the caller; or `None`. The Node binding installs its pool.
pub type RawReuseSource = fn(Layout) -> Option<std::ptr::NonNull<u8>>;

static RAW_REUSE_SOURCE: std::sync::OnceLock<RawReuseSource> = std::sync::OnceLock::new();

/// Installs the source of [`reusable`] (once per process; later calls are
/// ignored). Without one, nothing is reused.
pub fn set_raw_reuse_source(source: RawReuseSource) {
    let _ = RAW_REUSE_SOURCE.set(source);
}

/// An empty vector with a capacity of exactly `capacity` elements, over
/// resident memory from the reuse source when it has an allocation of that
/// layout (no page faults when filled); `None` otherwise (the caller
/// allocates as usual). For plain-data `T` of non-zero size.
pub fn reusable<T: Copy>(capacity: usize) -> Option<Vec<T>> {
    if capacity == 0 || std::mem::size_of::<T>() == 0 {
        return None;
    }
    let source = RAW_REUSE_SOURCE.get()?;
    let layout = Layout::array::<T>(capacity).ok()?;
    let ptr = source(layout)?;
    // SAFETY: the source hands over an allocation of the global allocator
    // with exactly `layout`, the layout of a Vec<T> of this capacity; the
    // length is 0, so no element is read before it is written.
    Some(unsafe { Vec::from_raw_parts(ptr.as_ptr().cast::<T>(), 0, capacity) })
}

/// As [`for_overwrite`], but a fresh buffer is not zeroed either (a
/// mid-sized one was cleared by a memset that its writer then overwrote:
/// 62 of the 235 MB of water64's SOAP position gradients): the elements are
/// uninitialised until the writer assigns them, and
/// [`assume_written`] hands the buffer over once it has assigned every one.
pub fn for_overwrite_uninit(len: usize, what: &str) -> Result<(Vec<std::mem::MaybeUninit<f64>>, bool)> {
    use std::mem::MaybeUninit;
    if len > 0 {
        if let Some(mut v) = REUSE_SOURCE.get().and_then(|source| source(len)) {
            if v.len() == len {
                let (ptr, cap) = (v.as_mut_ptr(), v.capacity());
                std::mem::forget(v);
                // SAFETY: the same allocation and layout (MaybeUninit<f64>
                // has f64's), initialised values reinterpreted as maybe-uninit
                return Ok((unsafe { Vec::from_raw_parts(ptr as *mut MaybeUninit<f64>, len, cap) }, true));
            }
        }
    }
    if len == 0 {
        return Ok((Vec::new(), false));
    }
    let mut v: Vec<MaybeUninit<f64>> = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        Error::InvalidParameter(format!(
            "{what} needs {len} values ({:.1} GB), more memory than is available: compute fewer systems at once",
            len as f64 * 8e-9
        ))
    })?;
    // SAFETY: the capacity is at least len, and MaybeUninit needs no initialisation
    unsafe { v.set_len(len) };
    Ok((v, false))
}

/// The buffer of [`for_overwrite_uninit`] as values.
///
/// # Safety
/// Every element has been assigned.
pub unsafe fn assume_written(v: Vec<std::mem::MaybeUninit<f64>>) -> Vec<f64> {
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: the same allocation and layout; every element is initialised (the caller's promise)
    Vec::from_raw_parts(v.as_mut_ptr() as *mut f64, v.len(), v.capacity())
}

/// Faults in (Linux: MADV_POPULATE_WRITE, on this thread) the pages that lie
/// entirely inside `part`, a piece of a buffer from [`zeroed_unfaulted`];
/// the contents are unchanged. Elsewhere, or on older kernels, nothing
/// happens and pages fault on first write as usual.
pub fn prefault_part(part: &mut [f64]) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let bytes = std::mem::size_of_val(part);
        let start = (part.as_ptr() as usize + PAGE - 1) & !(PAGE - 1);
        let end = (part.as_ptr() as usize + bytes) & !(PAGE - 1);
        if end > start {
            // SAFETY: a page-aligned range inside `part`, which we borrow
            // mutably; MADV_POPULATE_WRITE never changes the contents.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_POPULATE_WRITE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = part;
}

/// Buffers of this many bytes or more, and less than [`PARALLEL_ZERO_MAX`],
/// are zeroed by the thread pool rather than by `calloc` on the calling
/// thread.
/// (64 kB: the power spectrum of water64 has three blocks of 229 kB, which
/// `calloc` cleared on the calling thread, a quarter of the serial part of
/// a 2-thread call.)
const PARALLEL_ZERO_MIN: usize = 64 << 10;
/// From this size on `calloc` takes fresh pages from the kernel, which come
/// zeroed (glibc's largest mmap threshold; the Node binding sets it too), so
/// nothing is gained by writing zeros: such buffers are only pre-faulted.
const PARALLEL_ZERO_MAX: usize = 32 << 20;

/// [`zeroed`] for mid-sized buffers: glibc's `calloc` clears a reused heap
/// chunk with one memset on the calling thread, which was the largest serial
/// part of a many-block output (a third of a 2-thread SOAP call on 1000
/// molecules); here the zeros are written by every thread of the pool.
fn zeroed_in_parallel(len: usize, what: &str) -> Result<Vec<f64>> {
    use rayon::prelude::*;
    use std::mem::MaybeUninit;
    let layout = Layout::array::<f64>(len).map_err(|_| Error::InvalidParameter(format!("{what} needs {len} values")))?;
    // SAFETY: the layout has a non-zero size (len * 8 ≥ PARALLEL_ZERO_MIN);
    // a null pointer is handled; every element is written (zero) before the
    // vector is made, and it takes ownership with the same layout.
    unsafe {
        let ptr = std::alloc::alloc(layout) as *mut f64;
        if ptr.is_null() {
            return Err(Error::InvalidParameter(format!(
                "{what} needs {len} values ({:.1} GB), more memory than is available: compute fewer systems at once",
                len as f64 * 8e-9
            )));
        }
        let slots = std::slice::from_raw_parts_mut(ptr as *mut MaybeUninit<f64>, len);
        slots.par_chunks_mut(16 << 10).for_each(|chunk| chunk.fill(MaybeUninit::new(0.0)));
        Ok(Vec::from_raw_parts(ptr, len, len))
    }
}

#[cfg(target_os = "linux")]
fn prefault(v: &[f64]) {
    use rayon::prelude::*;
    let bytes = std::mem::size_of_val(v);
    if bytes < PREFAULT_THRESHOLD {
        return;
    }
    const PAGE: usize = 4096;
    const CHUNK: usize = 4 << 20;
    let start = (v.as_ptr() as usize + PAGE - 1) & !(PAGE - 1);
    let end = (v.as_ptr() as usize + bytes) & !(PAGE - 1);
    (start..end).into_par_iter().step_by(CHUNK).for_each(|chunk| {
        let len = CHUNK.min(end - chunk);
        // SAFETY: the range lies inside the allocation of `v` and is page
        // aligned; MADV_POPULATE_WRITE only faults the (already zero) pages
        // in, never changing their contents. Failure (older kernels) is
        // harmless: the pages are then faulted on first write as usual.
        unsafe {
            libc::madvise(chunk as *mut libc::c_void, len, libc::MADV_POPULATE_WRITE);
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn zeroed_buffers_are_zero() {
        for len in [0, 10, (300 << 10) / 8 + 1, (16 << 20) / 8 + 3, (40 << 20) / 8] {
            let v = super::zeroed(len, "test").unwrap();
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 0.0));
        }
    }

    #[test]
    fn reused_memory_is_zeroed() {
        // freed memory of the same size is usually handed out again: it must
        // come back as zeros, whichever path clears it
        for len in [(300 << 10) / 8 + 1, (4 << 20) / 8] {
            for _ in 0..4 {
                drop(vec![1.5f64; len]);
                let v = super::zeroed(len, "test").unwrap();
                assert!(v.iter().all(|&x| x.to_bits() == 0));
            }
        }
    }

    #[test]
    fn impossible_sizes_are_errors() {
        let e = super::zeroed(usize::MAX / 16, "the gradient block").unwrap_err();
        assert!(e.to_string().contains("the gradient block needs"), "{e}");
    }
}
