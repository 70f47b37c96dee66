//! Typed arrays handed to JavaScript, and who owns their memory.
//!
//! Large results (at least [`EXTERNAL_MIN_BYTES`]) move their Rust buffers
//! into "external" ArrayBuffers: no copy, and no serial memset + memcpy on
//! the JS thread (for a 1000-atom SOAP call that copy was ~10 % of the call at
//! one thread and more at two, where it is the serial part). Their sizes are
//! reported to V8 (`napi_adjust_external_memory`) so that the garbage
//! collector feels them.
//!
//! Node runs the finalizers of external buffers only when the event loop
//! turns, so a tight loop of synchronous calls would keep every earlier
//! result alive until it ends. A synchronous call therefore hands out
//! external buffers only when the external bytes not yet finalized are
//! within [`SYNC_EXTERNAL_CAP_BYTES`] as it starts; otherwise it copies into
//! ArrayBuffers that V8 allocates (uninitialised, freed by the garbage
//! collector itself), so such a loop holds at most the cap plus one call's
//! results. Small arrays (labels) are always
//! copied into V8 memory: cheaper than an external buffer and its finalizer.
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};

use napi::bindgen_prelude::*;

/// Arrays of at least this many bytes are handed over without a copy.
pub const EXTERNAL_MIN_BYTES: usize = 64 << 10;
/// External bytes not yet finalized beyond which synchronous calls copy
/// their results into V8 memory instead.
pub const SYNC_EXTERNAL_CAP_BYTES: i64 = 64 << 20;

/// External bytes made and freed since the last [`report`] to V8.
static ALLOCATED: AtomicI64 = AtomicI64::new(0);
static FREED: AtomicI64 = AtomicI64::new(0);
/// External bytes handed to JS whose finalizer has not run yet.
static OUTSTANDING: AtomicI64 = AtomicI64::new(0);

/// How a binding function builds its typed arrays.
#[derive(Clone, Copy)]
enum Mode {
    /// synchronous call: external when the bytes awaiting finalizers were
    /// within the cap as the call started (`true`), else copied into V8 memory
    Sync(napi::sys::napi_env, bool),
    /// results of an asynchronous task: external (the event loop turns
    /// between such calls, so finalizers run)
    Async(napi::sys::napi_env),
}

thread_local! {
    /// Set while a binding function builds its results ([`Reporter`]).
    static MODE: Cell<Option<Mode>> = const { Cell::new(None) };
}

/// Copies `bytes` into a new ArrayBuffer that V8 allocates without zeroing
/// it first (a Node `Buffer`'s store); returns the ArrayBuffer and the byte
/// offset of the data in it.
fn v8_copy(env: napi::sys::napi_env, bytes: &[u8]) -> Option<(napi::sys::napi_value, usize)> {
    use napi::sys;
    let mut data = std::ptr::null_mut();
    let mut buffer = std::ptr::null_mut();
    // SAFETY: plain N-API calls on the JS thread that owns `env` (Mode is
    // only set there); `data` points to `bytes.len()` writable bytes when the
    // call succeeds.
    unsafe {
        if sys::napi_create_buffer(env, bytes.len(), &mut data, &mut buffer) != sys::Status::napi_ok || data.is_null() {
            return None;
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), data.cast::<u8>(), bytes.len());
        let (mut kind, mut length, mut ptr, mut arraybuffer, mut offset) = (0, 0, std::ptr::null_mut(), std::ptr::null_mut(), 0);
        if sys::napi_get_typedarray_info(env, buffer, &mut kind, &mut length, &mut ptr, &mut arraybuffer, &mut offset) != sys::Status::napi_ok {
            return None;
        }
        Some((arraybuffer, offset))
    }
}

macro_rules! typed_array {
    ($name:ident, $array:ty, $slice:ident, $elem:ty, $kind:expr) => {
        /// A typed array holding `v`: moved without a copy into an external
        /// buffer when large (synchronous calls: within the cap), else
        /// copied into V8's memory.
        pub fn $name(v: Vec<$elem>) -> $array {
            if v.is_empty() {
                return <$array>::new(v);
            }
            let bytes = std::mem::size_of_val(v.as_slice());
            let mode = MODE.with(Cell::get);
            let (raw, external) = match mode {
                None => (None, true),
                Some(Mode::Async(raw)) => (Some(raw), bytes >= EXTERNAL_MIN_BYTES),
                Some(Mode::Sync(raw, within_cap)) => (Some(raw), within_cap && bytes >= EXTERNAL_MIN_BYTES),
            };
            if let (false, Some(raw)) = (external, raw) {
                let env = Env::from_raw(raw);
                if bytes >= EXTERNAL_MIN_BYTES {
                    // SAFETY: the elements are plain numbers, readable as bytes
                    let raw_bytes = unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), bytes) };
                    if let Some((arraybuffer, offset)) = v8_copy(raw, raw_bytes) {
                        if offset % std::mem::align_of::<$elem>() == 0 {
                            let mut array = std::ptr::null_mut();
                            // SAFETY: N-API calls on the JS thread; the
                            // ArrayBuffer holds `bytes` bytes from `offset`
                            let made = unsafe {
                                napi::sys::napi_create_typedarray(raw, $kind as i32, v.len(), arraybuffer, offset, &mut array) == napi::sys::Status::napi_ok
                                    && !array.is_null()
                            };
                            if made {
                                // SAFETY: `array` is a typed array of this element type
                                if let Ok(a) = unsafe { <$array>::from_napi_value(raw, array) } {
                                    return a;
                                }
                            }
                        }
                    }
                }
                if let Ok(array) = $slice::copy_from(&env, &v).and_then(|s| s.into_typed_array(&env)) {
                    return array;
                }
            }
            let mut v = std::mem::ManuallyDrop::new(v);
            let (ptr, len, cap) = (v.as_mut_ptr(), v.len(), v.capacity());
            let bytes = (cap * std::mem::size_of::<$elem>()) as i64;
            ALLOCATED.fetch_add(bytes, Ordering::Relaxed);
            OUTSTANDING.fetch_add(bytes, Ordering::Relaxed);
            // SAFETY: ptr/len/cap come from a Vec we no longer own; the
            // finalizer rebuilds and drops it exactly once.
            unsafe {
                <$array>::with_external_data(ptr, len, move |p, l| {
                    drop(Vec::from_raw_parts(p, l, cap));
                    FREED.fetch_add(bytes, Ordering::Relaxed);
                    OUTSTANDING.fetch_sub(bytes, Ordering::Relaxed);
                })
            }
        }
    };
}

typed_array!(f64_array, Float64Array, Float64ArraySlice, f64, TypedArrayType::Float64);
typed_array!(i32_array, Int32Array, Int32ArraySlice, i32, TypedArrayType::Int32);
typed_array!(u32_array, Uint32Array, Uint32ArraySlice, u32, TypedArrayType::Uint32);

/// Tells V8 how much external memory was made and freed since the last call.
pub fn report(env: &Env) {
    let made = ALLOCATED.swap(0, Ordering::Relaxed);
    let freed = FREED.swap(0, Ordering::Relaxed);
    let delta = made - freed;
    if delta != 0 {
        // a failure only means V8 keeps its previous estimate
        let _ = env.adjust_external_memory(delta);
    }
}

/// Held while a binding function builds its results; reports external
/// memory to V8 when dropped.
pub struct Reporter<'a> {
    env: &'a Env,
    previous: Option<Mode>,
}

impl<'a> Reporter<'a> {
    /// For asynchronous results: large arrays external, small ones copied.
    pub fn new(env: &'a Env) -> Reporter<'a> {
        Reporter { env, previous: MODE.with(|c| c.replace(Some(Mode::Async(env.raw())))) }
    }

    /// For synchronous results: large arrays external when the external
    /// bytes not yet finalized are within [`SYNC_EXTERNAL_CAP_BYTES`] now,
    /// else (and small arrays always) copied into V8's own memory.
    pub fn sync(env: &'a Env) -> Reporter<'a> {
        let within_cap = OUTSTANDING.load(Ordering::Relaxed) <= SYNC_EXTERNAL_CAP_BYTES;
        Reporter { env, previous: MODE.with(|c| c.replace(Some(Mode::Sync(env.raw(), within_cap)))) }
    }
}

impl Drop for Reporter<'_> {
    fn drop(&mut self) {
        MODE.with(|c| c.set(self.previous));
        report(self.env);
    }
}
