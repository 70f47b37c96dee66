//! Neighbour lists.
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{ensure_thread_pool, guarded, to_napi};
use crate::external::{f64_array, i32_array, u32_array};
use crate::system::{to_core, SystemData};
use crate::external::Reporter;

/// Pairs as flat typed arrays.
#[napi(object, object_from_js = false)]
pub struct PairsData {
    /// first atom of each pair
    pub i: Uint32Array,
    /// second atom of each pair
    pub j: Uint32Array,
    /// integer cell shifts, 3 per pair
    pub shifts: Int32Array,
    /// distances in Å
    pub distances: Float64Array,
    /// x_j − x_i + S·H in Å, 3 per pair
    pub vectors: Float64Array,
}

/// `Vec<[T; 3]>` as the flat `Vec<T>` over the same allocation (no copy:
/// for millions of pairs the copies and their page faults cost ~10% of the
/// whole neighbour list).
fn flatten3<T: Copy>(v: Vec<[T; 3]>) -> Vec<T> {
    let mut v = std::mem::ManuallyDrop::new(v);
    let (ptr, len, cap) = (v.as_mut_ptr(), v.len(), v.capacity());
    // SAFETY: [T; 3] is three T with no padding and T's alignment, so the
    // buffer of `cap` [T; 3] is exactly the allocation of `3 cap` T
    unsafe { Vec::from_raw_parts(ptr.cast::<T>(), 3 * len, 3 * cap) }
}

fn to_js(pairs: acdc_core::Pairs) -> PairsData {
    PairsData {
        i: u32_array(pairs.i),
        j: u32_array(pairs.j),
        shifts: i32_array(flatten3(pairs.shifts)),
        distances: f64_array(pairs.distances),
        vectors: f64_array(flatten3(pairs.vectors)),
    }
}

fn list(cutoff: f64, full: bool) -> Result<acdc_core::NeighborList> {
    acdc_core::NeighborList::new(cutoff, full).map_err(to_napi)
}

/// Computes the neighbour list of one system (synchronously).
#[napi]
pub fn compute_neighbors(env: Env, system: SystemData, cutoff: f64, full: bool) -> Result<PairsData> {
    let _report = Reporter::sync(&env);
    guarded("NeighborList.computeSync", || {
        ensure_thread_pool();
        let system = to_core(&system)?;
        list(cutoff, full)?.compute(&system).map(to_js).map_err(to_napi)
    })
}

/// Work item for the asynchronous neighbour list: owns a copy of the input.
pub struct NeighborsTask {
    system: acdc_core::System,
    list: acdc_core::NeighborList,
}

impl Task for NeighborsTask {
    type Output = acdc_core::Pairs;
    type JsValue = PairsData;

    fn compute(&mut self) -> Result<Self::Output> {
        guarded("NeighborList.compute", || {
            ensure_thread_pool();
            self.list.compute(&self.system).map_err(to_napi)
        })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<Self::JsValue> {
        let _report = Reporter::new(&env);
        Ok(to_js(output))
    }
}

/// Computes the neighbour list of one system off the event loop.
#[napi(ts_return_type = "Promise<PairsData>")]
pub fn compute_neighbors_async(system: SystemData, cutoff: f64, full: bool) -> Result<AsyncTask<NeighborsTask>> {
    guarded("NeighborList.compute", || {
        let system = to_core(&system)?;
        Ok(AsyncTask::new(NeighborsTask { system, list: list(cutoff, full)? }))
    })
}
