//! Clebsch–Gordan coefficients, Wigner D matrices and density correlations.
use acdc_core::calculators::DensityCorrelations;
use acdc_core::math::clebsch_gordan::{real_clebsch_gordan, wigner_d};
use acdc_core::tensor::{Labels, TensorMap};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{ensure_thread_pool, guarded, to_napi};
use crate::tensor::{labels_from_js, tensor_from_js, tensor_to_js, tensor_view_from_js, LabelsData, TensorMapData};

fn degree(field: &str, v: i32) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::new(Status::InvalidArg, format!("{field} must be a non-negative integer, got {v}")))
}

/// Real Clebsch–Gordan coefficients (coupling sign included), row-major
/// (2l1+1, 2l2+1, 2L+1).
#[napi]
pub fn clebsch_gordan(l1: i32, l2: i32, lambda: i32) -> Result<Float64Array> {
    guarded("clebschGordan", || {
        let (a, b, c) = (degree("l1", l1)?, degree("l2", l2)?, degree("L", lambda)?);
        real_clebsch_gordan(a, b, c).map(Float64Array::new).map_err(to_napi)
    })
}

/// Real Wigner D^l(R), row-major (2l+1)², rows = new m.
#[napi]
pub fn wigner_d_matrix(l: i32, rotation: Float64Array) -> Result<Float64Array> {
    guarded("wignerD", || {
        let l = degree("l", l)?;
        wigner_d(l, &rotation).map(Float64Array::new).map_err(to_napi)
    })
}

/// Iterated CG products of a density TensorMap.
#[napi]
pub struct NativeDensityCorrelations {
    inner: std::sync::Arc<DensityCorrelations>,
}

fn selection(angular_cutoff: Option<i32>, selected_keys: Option<&LabelsData>) -> Result<(Option<usize>, Option<Labels>)> {
    let cutoff = angular_cutoff.map(|c| degree("angularCutoff", c)).transpose()?;
    let selected = selected_keys.map(|l| labels_from_js("selectedKeys", l)).transpose()?;
    Ok((cutoff, selected))
}

#[napi]
impl NativeDensityCorrelations {
    /// `n_correlations` ≥ 1 products, coefficients up to `max_angular`.
    #[napi(constructor)]
    pub fn new(n_correlations: i32, max_angular: i32, skip_redundant: bool) -> Result<Self> {
        guarded("DensityCorrelations constructor", || {
            let n = degree("n_correlations", n_correlations)?;
            let l = degree("max_angular", max_angular)?;
            let inner = DensityCorrelations::new(n, l, skip_redundant).map_err(to_napi)?;
            Ok(NativeDensityCorrelations { inner: std::sync::Arc::new(inner) })
        })
    }

    /// Computes synchronously.
    #[napi]
    pub fn compute_sync(&self, density: TensorMapData, angular_cutoff: Option<i32>, selected_keys: Option<LabelsData>) -> Result<TensorMapData> {
        guarded("computeSync", || {
            ensure_thread_pool();
            let (cutoff, selected) = selection(angular_cutoff, selected_keys.as_ref())?;
            let t = tensor_view_from_js("density", &density)?;
            self.inner.compute(&t, cutoff, selected.as_ref()).map_err(to_napi).and_then(tensor_to_js)
        })
    }

    /// Computes off the event loop; the density is copied first.
    #[napi(ts_return_type = "Promise<TensorMapData>")]
    pub fn compute(&self, density: TensorMapData, angular_cutoff: Option<i32>, selected_keys: Option<LabelsData>) -> Result<AsyncTask<CorrelationTask>> {
        guarded("compute", || {
            let (cutoff, selected) = selection(angular_cutoff, selected_keys.as_ref())?;
            let density = tensor_from_js("density", &density)?;
            Ok(AsyncTask::new(CorrelationTask { inner: self.inner.clone(), density, cutoff, selected }))
        })
    }
}

/// An asynchronous density correlation owning a copy of its input.
pub struct CorrelationTask {
    inner: std::sync::Arc<DensityCorrelations>,
    density: TensorMap,
    cutoff: Option<usize>,
    selected: Option<Labels>,
}

impl Task for CorrelationTask {
    type Output = TensorMap;
    type JsValue = TensorMapData;

    fn compute(&mut self) -> Result<Self::Output> {
        guarded("compute", || {
            ensure_thread_pool();
            self.inner.compute(&self.density, self.cutoff, self.selected.as_ref()).map_err(to_napi)
        })
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        tensor_to_js(output)
    }
}
