//! Typed arrays handed to JavaScript, and who owns their memory.
//!
//! Large results (at least [`EXTERNAL_MIN_BYTES`]) move their Rust buffers
//! into "external" ArrayBuffers: no copy, and no serial memset + memcpy on
//! the JS thread (for a 1000-atom SOAP call that copy was ~10 % of the call at
//! one thread and more at two, where it is the serial part). V8 counts the
//! length of every ArrayBuffer it attaches to a backing store, external ones
//! included, as external memory (`ArrayBufferSweeper::Append` adjusts the
//! isolate's external memory, and the sweep takes it back), so the garbage
//! collector feels them without help: the binding used to report them once
//! more (`napi_adjust_external_memory`), which counted every result twice
//! and started V8's incremental marking inside calls twice as early.
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
//!
//! The largest results (position gradients: 160 MB for 512 silicon atoms)
//! also go through a pool ([`POOL_MIN_BYTES`]): fresh memory of that size
//! comes from the kernel, one page fault and one zeroed page per 4 KiB, which
//! cost about as much as the arithmetic, on every call. So the binding keeps
//! a weak reference to the ArrayBuffer of each such result; once the garbage
//! collector has found it unreachable (no typed array, `.buffer` or Buffer
//! over it remains), its memory goes back to a per-length free list, and the
//! core's writers that assign every element take it from there
//! (`acdc_core::tensor::buffer::for_overwrite`) instead of fresh pages. A
//! buffer that JavaScript can still reach is never handed out again: the
//! weak reference is only empty once the ArrayBuffer object is gone (and
//! external ArrayBuffers cannot be detached: transferring one copies it).
//! V8 does not always collect a result at the first full collection after it
//! became unreachable (objects made while it marks survive that cycle), so a
//! call may still find the previous result of its size lent and take fresh
//! memory: correct, only slower. Such a result is lent even past the cap
//! above as long as no more than one result as large awaits collection (a
//! copy would need a second buffer); beyond that, the cap's copies keep a
//! tight loop bounded (V8 does not finish a collection in a loop that
//! allocates little on its own heap, so lent results would pile up).
//! Neighbour lists go through the same pool: their index, shift and vector
//! arrays are lent when as large (from ~1.4 M pairs), and the core takes
//! their memory back through `acdc_core::tensor::buffer::reusable`, which
//! asks for one exact layout (the list reserves a deterministic capacity,
//! so a repeated list of the same system finds its previous arrays). The
//! pool keeps the allocation's layout, so any element type can be lent.
//! Released buffers not reused within [`POOL_MAX_IDLE_CALLS`] calls, or
//! beyond [`POOL_MAX_FREE_BYTES`], are freed. `ACDC_OUTPUT_POOL=0` turns the
//! pool off (read at every call).
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use napi::bindgen_prelude::*;

/// Arrays of at least this many bytes are handed over without a copy.
pub const EXTERNAL_MIN_BYTES: usize = 64 << 10;
/// External bytes not yet finalized beyond which synchronous calls copy
/// their results into V8 memory instead.
pub const SYNC_EXTERNAL_CAP_BYTES: i64 = 64 << 20;

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
    /// External bytes awaiting collection as the current synchronous call started.
    static SYNC_START_OUTSTANDING: Cell<i64> = const { Cell::new(0) };
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
            OUTSTANDING.fetch_add(bytes, Ordering::Relaxed);
            // SAFETY: ptr/len/cap come from a Vec we no longer own; the
            // finalizer rebuilds and drops it exactly once.
            unsafe {
                <$array>::with_external_data(ptr, len, move |p, l| {
                    drop(Vec::from_raw_parts(p, l, cap));
                    OUTSTANDING.fetch_sub(bytes, Ordering::Relaxed);
                })
            }
        }
    };
}

typed_array!(f64_array_unpooled, Float64Array, Float64ArraySlice, f64, TypedArrayType::Float64);
typed_array!(i32_array_unpooled, Int32Array, Int32ArraySlice, i32, TypedArrayType::Int32);
typed_array!(u32_array_unpooled, Uint32Array, Uint32ArraySlice, u32, TypedArrayType::Uint32);

/// Results of at least this many bytes are lent from the pool.
pub const POOL_MIN_BYTES: usize = 8 << 20;
/// At most this many bytes of released results are kept for reuse.
const POOL_MAX_FREE_BYTES: usize = 1 << 30;
/// A released buffer not reused within this many calls is freed.
const POOL_MAX_IDLE_CALLS: u64 = 2;

/// A result lent to JavaScript: its memory (an allocation of the global
/// allocator with `layout`, the capacity of the Vec it came from), the bytes
/// JavaScript sees, and a weak reference to its ArrayBuffer (null if it
/// could not be made: then only the finalizer returns it).
struct Lent {
    id: u64,
    env: napi::sys::napi_env,
    ptr: *mut u8,
    layout: std::alloc::Layout,
    bytes: usize,
    weak: napi::sys::napi_ref,
}

/// Memory of a result JavaScript can no longer reach, allocated with
/// `layout`, released at call number `since`. Handed out again only for
/// exactly that layout (so element types of one size and alignment share it).
struct Free {
    ptr: *mut u8,
    layout: std::alloc::Layout,
    since: u64,
}

struct Pool {
    lent: Vec<Lent>,
    free: Vec<Free>,
    next_id: u64,
    /// calls seen by [`reclaim`]
    calls: u64,
}

// SAFETY: the raw pointers are owned allocations (Vec parts) moved between
// threads only under the mutex; `env` and `weak` are used only on the JS
// thread that owns `env` (reclaim and the finalizer compare `env`).
unsafe impl Send for Pool {}

static POOL: Mutex<Pool> = Mutex::new(Pool { lent: Vec::new(), free: Vec::new(), next_id: 1, calls: 0 });

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    // a panic while holding the lock leaves consistent lists (no invariant spans two statements)
    POOL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn pool_enabled() -> bool {
    std::env::var_os("ACDC_OUTPUT_POOL").map_or(true, |v| v != "0")
}

/// Frees the memory of a free-list entry.
fn free_memory(f: Free) {
    // SAFETY: the pool owns this allocation, made by the global allocator with `layout`
    unsafe { std::alloc::dealloc(f.ptr, f.layout) };
}

impl Pool {
    /// Moves a lent result to the free list (or frees it when the pool is off).
    fn release(&mut self, k: usize) {
        let lent = self.lent.swap_remove(k);
        let bytes = lent.bytes as i64;
        OUTSTANDING.fetch_sub(bytes, Ordering::Relaxed);
        let free = Free { ptr: lent.ptr, layout: lent.layout, since: self.calls };
        if pool_enabled() {
            self.free.push(free);
        } else {
            free_memory(free);
        }
    }

    /// Frees what has waited too long or exceeds the byte cap (oldest first).
    fn trim(&mut self) {
        let enabled = pool_enabled();
        let calls = self.calls;
        let mut kept = Vec::with_capacity(self.free.len());
        let mut bytes = 0usize;
        // newest first, so that the cap drops the oldest
        self.free.sort_by_key(|f| std::cmp::Reverse(f.since));
        for f in self.free.drain(..) {
            let size = f.layout.size();
            if enabled && calls - f.since <= POOL_MAX_IDLE_CALLS && bytes + size <= POOL_MAX_FREE_BYTES {
                bytes += size;
                kept.push(f);
            } else {
                free_memory(f);
            }
        }
        self.free = kept;
    }
}

/// The core's source of reusable memory: a released result allocated with
/// exactly `layout`, now owned by the caller.
fn take_layout(layout: std::alloc::Layout) -> Option<std::ptr::NonNull<u8>> {
    if !pool_enabled() {
        return None;
    }
    let mut pool = pool();
    // always the same one of several (the lowest address), so that a spare
    // sits idle and is freed rather than kept in turn with the other
    let (k, _) = pool.free.iter().enumerate().filter(|(_, f)| f.layout == layout).min_by_key(|(_, f)| f.ptr as usize)?;
    std::ptr::NonNull::new(pool.free.swap_remove(k).ptr)
}

/// The core's source of reusable buffers: a released result of exactly `len` values.
fn take(len: usize) -> Option<Vec<f64>> {
    let ptr = take_layout(std::alloc::Layout::array::<f64>(len).ok()?)?;
    // SAFETY: the pool owned this allocation, made with the layout of `len`
    // f64, and gives it up here; its contents are initialised numbers
    // (a former result)
    Some(unsafe { Vec::from_raw_parts(ptr.as_ptr().cast::<f64>(), len, len) })
}

/// Connects the pool to the core (once per process).
pub fn install_pool() {
    acdc_core::tensor::buffer::set_reuse_source(take);
    acdc_core::tensor::buffer::set_raw_reuse_source(take_layout);
}

/// Called on the JS thread as a computation starts: returns to the free
/// list every lent result of this `env` whose ArrayBuffer the garbage
/// collector has found unreachable, and frees what waited too long. No
/// N-API call is made while the pool is locked (none runs a finalizer now,
/// but a finalizer taking the lock again would deadlock).
pub fn reclaim(env: napi::sys::napi_env) {
    let candidates: Vec<(u64, napi::sys::napi_ref)> = {
        let mut pool = pool();
        pool.calls += 1;
        pool.lent.iter().filter(|l| l.env == env && !l.weak.is_null()).map(|l| (l.id, l.weak)).collect()
    };
    let mut dead = Vec::new();
    for (id, weak) in candidates {
        let mut value = std::ptr::null_mut();
        // SAFETY: `weak` was made on this env's JS thread, where we are; it
        // is deleted only here or in the finalizer, both on this thread
        let status = unsafe { napi::sys::napi_get_reference_value(env, weak, &mut value) };
        if status == napi::sys::Status::napi_ok && value.is_null() {
            // SAFETY: as above; the entry is released below and its reference not used again
            unsafe { napi::sys::napi_delete_reference(env, weak) };
            dead.push(id);
        }
    }
    let mut pool = pool();
    for id in dead {
        if let Some(k) = pool.lent.iter().position(|l| l.id == id) {
            pool.release(k);
        }
    }
    pool.trim();
}

/// Finalizer of a lent ArrayBuffer (V8 has dropped its backing store): the
/// result goes back unless [`reclaim`] took it already.
unsafe extern "C" fn lent_finalize(env: napi::sys::napi_env, _data: *mut std::ffi::c_void, hint: *mut std::ffi::c_void) {
    let id = hint as usize as u64;
    let weak = {
        let mut pool = pool();
        let Some(k) = pool.lent.iter().position(|l| l.id == id) else { return };
        let weak = if pool.lent[k].env == env { pool.lent[k].weak } else { std::ptr::null_mut() };
        pool.release(k);
        weak
    };
    if !weak.is_null() {
        // SAFETY: the finalizer runs on the JS thread of `env`, which made `weak`
        unsafe { napi::sys::napi_delete_reference(env, weak) };
    }
}

/// Lends `v` to JavaScript as an external typed array (of `kind`, whose
/// elements are `T`) tracked by the pool; gives `v` back if N-API refuses.
fn lend<T: Copy, A: FromNapiValue>(raw: napi::sys::napi_env, v: Vec<T>, kind: TypedArrayType) -> std::result::Result<A, Vec<T>> {
    use napi::sys;
    let Ok(layout) = std::alloc::Layout::array::<T>(v.capacity()) else { return Err(v) };
    let mut v = std::mem::ManuallyDrop::new(v);
    let (ptr, len) = (v.as_mut_ptr(), v.len());
    let bytes = len * std::mem::size_of::<T>();
    let id = {
        let mut pool = pool();
        pool.next_id += 1;
        pool.next_id - 1
    };
    let mut arraybuffer = std::ptr::null_mut();
    // SAFETY: N-API calls on the JS thread that owns `raw`; the memory stays
    // valid until the pool frees it, which it does only after the
    // ArrayBuffer is unreachable (weak reference empty) or finalized; the
    // finalizer cannot run before the entry is pushed (the ArrayBuffer is
    // alive in this call's handle scope, and finalizers run later on this thread).
    unsafe {
        if sys::napi_create_external_arraybuffer(raw, ptr.cast(), bytes, Some(lent_finalize), id as usize as *mut std::ffi::c_void, &mut arraybuffer)
            != sys::Status::napi_ok
            || arraybuffer.is_null()
        {
            return Err(std::mem::ManuallyDrop::into_inner(v));
        }
        let mut weak = std::ptr::null_mut();
        if sys::napi_create_reference(raw, arraybuffer, 0, &mut weak) != sys::Status::napi_ok {
            weak = std::ptr::null_mut();
        }
        pool().lent.push(Lent { id, env: raw, ptr: ptr.cast::<u8>(), layout, bytes, weak });
        OUTSTANDING.fetch_add(bytes as i64, Ordering::Relaxed);
        let mut array = std::ptr::null_mut();
        if sys::napi_create_typedarray(raw, kind as i32, len, arraybuffer, 0, &mut array) == sys::Status::napi_ok && !array.is_null() {
            if let Ok(a) = A::from_napi_value(raw, array) {
                return Ok(a);
            }
        }
        // the ArrayBuffer owns the memory now (its finalizer returns it);
        // hand out a copy rather than fail
        let copy = std::slice::from_raw_parts(ptr, len).to_vec();
        Err(copy)
    }
}

/// A Float64Array holding `v`: lent from the pool when it is that large and
/// would be external anyway, else as [`f64_array_unpooled`].
pub fn f64_array(v: Vec<f64>) -> Float64Array {
    pooled(v, TypedArrayType::Float64, f64_array_unpooled)
}

/// An Int32Array holding `v`, as [`f64_array`] (neighbour-list shifts).
pub fn i32_array(v: Vec<i32>) -> Int32Array {
    pooled(v, TypedArrayType::Int32, i32_array_unpooled)
}

/// A Uint32Array holding `v`, as [`f64_array`] (neighbour-list indices).
pub fn u32_array(v: Vec<u32>) -> Uint32Array {
    pooled(v, TypedArrayType::Uint32, u32_array_unpooled)
}

/// `v` lent from the pool when it is that large and would be external
/// anyway, else made by `unpooled`. The pool keeps the whole capacity (a
/// neighbour list reserves a little more than it fills) and hands it out
/// again for exactly that layout.
fn pooled<T: Copy, A: FromNapiValue>(v: Vec<T>, kind: TypedArrayType, unpooled: fn(Vec<T>) -> A) -> A {
    let bytes = std::mem::size_of_val(v.as_slice());
    if bytes >= POOL_MIN_BYTES && pool_enabled() {
        let raw = match MODE.with(Cell::get) {
            Some(Mode::Async(raw)) | Some(Mode::Sync(raw, true)) => Some(raw),
            // past the synchronous cap, still lent while at most one earlier
            // result of this size (beyond the cap) awaits collection: the
            // previous call's, when V8 has not collected it yet; a copy into
            // V8 memory would fault in a second buffer as large
            Some(Mode::Sync(raw, false)) if SYNC_START_OUTSTANDING.with(Cell::get) <= bytes as i64 + SYNC_EXTERNAL_CAP_BYTES => Some(raw),
            _ => None,
        };
        if let Some(raw) = raw {
            return match lend(raw, v, kind) {
                Ok(array) => array,
                Err(v) => unpooled(v),
            };
        }
    }
    unpooled(v)
}

/// Held while a binding function builds its results (on the JS thread of
/// `env`): decides how typed arrays are made until dropped.
pub struct Reporter<'a> {
    _env: std::marker::PhantomData<&'a Env>,
    previous: Option<Mode>,
}

impl<'a> Reporter<'a> {
    /// For asynchronous results: large arrays external, small ones copied.
    pub fn new(env: &'a Env) -> Reporter<'a> {
        reclaim(env.raw());
        Reporter { _env: std::marker::PhantomData, previous: MODE.with(|c| c.replace(Some(Mode::Async(env.raw())))) }
    }

    /// For synchronous results: large arrays external when the external
    /// bytes not yet finalized are within [`SYNC_EXTERNAL_CAP_BYTES`] now,
    /// else (and small arrays always) copied into V8's own memory.
    pub fn sync(env: &'a Env) -> Reporter<'a> {
        reclaim(env.raw());
        let outstanding = OUTSTANDING.load(Ordering::Relaxed);
        SYNC_START_OUTSTANDING.with(|c| c.set(outstanding));
        let within_cap = outstanding <= SYNC_EXTERNAL_CAP_BYTES;
        Reporter { _env: std::marker::PhantomData, previous: MODE.with(|c| c.replace(Some(Mode::Sync(env.raw(), within_cap)))) }
    }
}

impl Drop for Reporter<'_> {
    fn drop(&mut self) {
        MODE.with(|c| c.set(self.previous));
    }
}
