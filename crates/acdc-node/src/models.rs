//! Selection (FPS, CUR) and kernels on dense row-major matrices, plus the
//! conversions and the generic off-thread task that `analysis.rs` shares.
use acdc_core::math::linalg::Dense;
use acdc_core::models::{self, Axis, PolynomialKernel, Selection};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{ensure_thread_pool, guarded, to_napi};

/// A dense row-major matrix `{data, shape: [rows, cols]}`.
#[napi(object)]
pub struct MatrixData {
    /// row-major values, rows × cols
    pub data: Float64Array,
    /// [rows, cols]
    pub shape: Vec<u32>,
}

/// Copies a JS matrix into the core type (checked shape, finite values).
pub(crate) fn dense_from_js(name: &str, m: &MatrixData) -> Result<Dense> {
    if m.shape.len() != 2 {
        return Err(Error::new(Status::InvalidArg, format!("{name}: shape must be [rows, cols], got {:?}", m.shape)));
    }
    Dense::new(name, m.data.to_vec(), m.shape[0] as usize, m.shape[1] as usize).map_err(to_napi)
}

pub(crate) fn dense_to_js(d: Dense) -> MatrixData {
    MatrixData { shape: vec![d.rows as u32, d.cols as u32], data: Float64Array::new(d.data) }
}

pub(crate) fn indices_to_js(name: &str, v: &[usize]) -> Result<Int32Array> {
    let out: std::result::Result<Vec<i32>, _> = v.iter().map(|&i| i32::try_from(i)).collect();
    out.map(Int32Array::new).map_err(|_| Error::new(Status::InvalidArg, format!("{name}: an index does not fit in an Int32Array")))
}

/// Work run on a libuv thread: the closure owns copies of its inputs, made
/// on the JS thread; `to_js` turns its result into a JS value back there.
pub struct Job<O: Send + 'static, J> {
    what: &'static str,
    work: Option<Box<dyn FnOnce() -> acdc_core::Result<O> + Send>>,
    to_js: fn(O) -> Result<J>,
}

impl<O: Send + 'static, J> Job<O, J> {
    pub(crate) fn new(what: &'static str, work: impl FnOnce() -> acdc_core::Result<O> + Send + 'static, to_js: fn(O) -> Result<J>) -> AsyncTask<Self>
    where
        J: ToNapiValue + TypeName,
    {
        AsyncTask::new(Job { what, work: Some(Box::new(work)), to_js })
    }
}

impl<O: Send + 'static, J: ToNapiValue + TypeName> Task for Job<O, J> {
    type Output = O;
    type JsValue = J;

    fn compute(&mut self) -> Result<O> {
        let work = self.work.take().ok_or_else(|| Error::from_reason(format!("{} ran twice", self.what)))?;
        guarded(self.what, || {
            ensure_thread_pool();
            work().map_err(to_napi)
        })
    }

    fn resolve(&mut self, _env: Env, output: O) -> Result<J> {
        (self.to_js)(output)
    }
}

/// Selected indices (in selection order) with their scores.
#[napi(object, object_from_js = false)]
pub struct SelectionData {
    /// indices along the selection axis
    pub indices: Int32Array,
    /// FPS: squared distance when selected (first: Infinity); CUR: importance π when selected
    pub scores: Float64Array,
}

fn selection_to_js(s: Selection) -> Result<SelectionData> {
    Ok(SelectionData { indices: indices_to_js("indices", &s.indices)?, scores: Float64Array::new(s.scores) })
}

fn axis(name: &str) -> Result<Axis> {
    Axis::from_name(name).map_err(to_napi)
}

fn fps_work(x: &MatrixData, n: u32, initialize: Vec<u32>, axis_name: &str) -> Result<impl FnOnce() -> acdc_core::Result<Selection> + Send + 'static> {
    let x = dense_from_js("X", x)?;
    let axis = axis(axis_name)?;
    let initialize: Vec<usize> = initialize.into_iter().map(|i| i as usize).collect();
    Ok(move || models::farthest_point_sampling(&x, n as usize, &initialize, axis))
}

/// Farthest point sampling (synchronously).
#[napi]
pub fn fps_sync(x: MatrixData, n: u32, initialize: Vec<u32>, axis: String) -> Result<SelectionData> {
    guarded("farthestPointSampling", || {
        ensure_thread_pool();
        selection_to_js(fps_work(&x, n, initialize, &axis)?().map_err(to_napi)?)
    })
}

/// Farthest point sampling off the event loop.
#[napi(ts_return_type = "Promise<SelectionData>")]
pub fn fps(x: MatrixData, n: u32, initialize: Vec<u32>, axis: String) -> Result<AsyncTask<Job<Selection, SelectionData>>> {
    guarded("farthestPointSamplingAsync", || Ok(Job::new("farthestPointSamplingAsync", fps_work(&x, n, initialize, &axis)?, selection_to_js)))
}

fn cur_work(x: &MatrixData, n: u32, k: u32, recompute_every: u32, axis_name: &str) -> Result<impl FnOnce() -> acdc_core::Result<Selection> + Send + 'static> {
    let x = dense_from_js("X", x)?;
    let axis = axis(axis_name)?;
    Ok(move || models::cur(&x, n as usize, k as usize, recompute_every as usize, axis))
}

/// CUR selection (synchronously).
#[napi]
pub fn cur_sync(x: MatrixData, n: u32, k: u32, recompute_every: u32, axis: String) -> Result<SelectionData> {
    guarded("cur", || {
        ensure_thread_pool();
        selection_to_js(cur_work(&x, n, k, recompute_every, &axis)?().map_err(to_napi)?)
    })
}

/// CUR selection off the event loop.
#[napi(ts_return_type = "Promise<SelectionData>")]
pub fn cur(x: MatrixData, n: u32, k: u32, recompute_every: u32, axis: String) -> Result<AsyncTask<Job<Selection, SelectionData>>> {
    guarded("curAsync", || Ok(Job::new("curAsync", cur_work(&x, n, k, recompute_every, &axis)?, selection_to_js)))
}

fn matrix_out(d: Dense) -> Result<MatrixData> {
    Ok(dense_to_js(d))
}

fn kernel_work(a: &MatrixData, b: &MatrixData, zeta: f64, delta: f64) -> Result<impl FnOnce() -> acdc_core::Result<Dense> + Send + 'static> {
    let a = dense_from_js("A", a)?;
    let b = dense_from_js("B", b)?;
    let kernel = PolynomialKernel::new(zeta, delta).map_err(to_napi)?;
    Ok(move || models::polynomial_kernel(&a, &b, &kernel))
}

/// Normalised polynomial kernel between the rows of A and B (synchronously).
#[napi]
pub fn polynomial_kernel_sync(a: MatrixData, b: MatrixData, zeta: f64, delta: f64) -> Result<MatrixData> {
    guarded("polynomialKernel", || {
        ensure_thread_pool();
        kernel_work(&a, &b, zeta, delta)?().map(dense_to_js).map_err(to_napi)
    })
}

/// Normalised polynomial kernel off the event loop.
#[napi(ts_return_type = "Promise<MatrixData>")]
pub fn polynomial_kernel(a: MatrixData, b: MatrixData, zeta: f64, delta: f64) -> Result<AsyncTask<Job<Dense, MatrixData>>> {
    guarded("polynomialKernelAsync", || Ok(Job::new("polynomialKernelAsync", kernel_work(&a, &b, zeta, delta)?, matrix_out)))
}

fn structure_work(
    a: &MatrixData,
    structures_a: Vec<u32>,
    b: &MatrixData,
    structures_b: Vec<u32>,
    zeta: f64,
    delta: f64,
) -> Result<impl FnOnce() -> acdc_core::Result<Dense> + Send + 'static> {
    let a = dense_from_js("A", a)?;
    let b = dense_from_js("B", b)?;
    let kernel = PolynomialKernel::new(zeta, delta).map_err(to_napi)?;
    let sa: Vec<usize> = structures_a.into_iter().map(|i| i as usize).collect();
    let sb: Vec<usize> = structures_b.into_iter().map(|i| i as usize).collect();
    Ok(move || models::structure_kernel(&a, &sa, &b, &sb, &kernel))
}

/// Structure kernel: sums of the atomic kernel over the atoms of each structure (synchronously).
#[napi]
pub fn structure_kernel_sync(a: MatrixData, structures_a: Vec<u32>, b: MatrixData, structures_b: Vec<u32>, zeta: f64, delta: f64) -> Result<MatrixData> {
    guarded("structureKernel", || {
        ensure_thread_pool();
        structure_work(&a, structures_a, &b, structures_b, zeta, delta)?().map(dense_to_js).map_err(to_napi)
    })
}

/// Structure kernel off the event loop.
#[napi(ts_return_type = "Promise<MatrixData>")]
pub fn structure_kernel(a: MatrixData, structures_a: Vec<u32>, b: MatrixData, structures_b: Vec<u32>, zeta: f64, delta: f64) -> Result<AsyncTask<Job<Dense, MatrixData>>> {
    guarded("structureKernelAsync", || Ok(Job::new("structureKernelAsync", structure_work(&a, structures_a, &b, structures_b, zeta, delta)?, matrix_out)))
}
