//! Typed arrays handed to JavaScript, and who owns their memory.
//!
//! Asynchronous results move their Rust buffers into "external" ArrayBuffers
//! (no copy). V8 does not count external memory unless told, and Node runs
//! their finalizers only when the event loop turns, so a tight loop of
//! synchronous calls would keep every result alive. Synchronous calls
//! therefore copy their results into ArrayBuffers that V8 allocates itself
//! (counted by the garbage collector and freed by it at once); asynchronous
//! results stay external and their sizes are reported to V8
//! (`napi_adjust_external_memory`) so that the collector feels them.
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};

use napi::bindgen_prelude::*;

static ALLOCATED: AtomicI64 = AtomicI64::new(0);
static FREED: AtomicI64 = AtomicI64::new(0);

thread_local! {
    /// Set while a synchronous call builds its results: copy into V8 memory.
    static V8_OWNED: Cell<Option<napi::sys::napi_env>> = const { Cell::new(None) };
}

macro_rules! typed_array {
    ($name:ident, $array:ty, $slice:ident, $elem:ty) => {
        /// A typed array holding `v`: copied into V8's memory during a
        /// synchronous call ([`Reporter::sync`]), else moved without a copy
        /// into an external buffer whose size is counted for [`report`].
        pub fn $name(v: Vec<$elem>) -> $array {
            if v.is_empty() {
                return <$array>::new(v);
            }
            if let Some(raw) = V8_OWNED.with(Cell::get) {
                let env = Env::from_raw(raw);
                if let Ok(array) = $slice::copy_from(&env, &v).and_then(|s| s.into_typed_array(&env)) {
                    return array;
                }
            }
            let mut v = std::mem::ManuallyDrop::new(v);
            let (ptr, len, cap) = (v.as_mut_ptr(), v.len(), v.capacity());
            let bytes = (cap * std::mem::size_of::<$elem>()) as i64;
            ALLOCATED.fetch_add(bytes, Ordering::Relaxed);
            // SAFETY: ptr/len/cap come from a Vec we no longer own; the
            // finalizer rebuilds and drops it exactly once.
            unsafe {
                <$array>::with_external_data(ptr, len, move |p, l| {
                    drop(Vec::from_raw_parts(p, l, cap));
                    FREED.fetch_add(bytes, Ordering::Relaxed);
                })
            }
        }
    };
}

typed_array!(f64_array, Float64Array, Float64ArraySlice, f64);
typed_array!(i32_array, Int32Array, Int32ArraySlice, i32);
typed_array!(u32_array, Uint32Array, Uint32ArraySlice, u32);

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
    sync: bool,
}

impl<'a> Reporter<'a> {
    /// For asynchronous results: external buffers, reported.
    pub fn new(env: &'a Env) -> Reporter<'a> {
        Reporter { env, sync: false }
    }

    /// For synchronous results: typed arrays made until this is dropped are
    /// copied into V8's own memory.
    pub fn sync(env: &'a Env) -> Reporter<'a> {
        V8_OWNED.with(|c| c.set(Some(env.raw())));
        Reporter { env, sync: true }
    }
}

impl Drop for Reporter<'_> {
    fn drop(&mut self) {
        if self.sync {
            V8_OWNED.with(|c| c.set(None));
        }
        report(self.env);
    }
}
