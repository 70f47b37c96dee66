//! Calculators: one native class wraps any core calculator by name.
use std::sync::Arc;

use acdc_core::budget::parse_size;
use acdc_core::calculators::{from_name, Calculator, ComputeOptions};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{ensure_thread_pool, guarded, to_napi};
use crate::external::Reporter;
use crate::system::{to_core_list, SystemData};
use crate::tensor::{labels_from_js, labels_to_js, tensor_to_js, LabelsData, TensorMapData};

/// Options of a computation, as given by the JS layer.
#[napi(object, object_to_js = false)]
pub struct ComputeOptionsData {
    /// "positions" and/or "strain"
    pub gradients: Option<Vec<String>>,
    /// only blocks matching these key rows
    pub selected_keys: Option<LabelsData>,
    /// only these (system, atom) centres
    pub selected_samples: Option<LabelsData>,
    /// memory budget: bytes, or a size such as "4G" or "50%"
    pub max_memory: Option<String>,
    /// equivariant calculators: neighbour types in properties
    pub neighbors_to_properties: Option<bool>,
}

fn options_from_js(o: Option<ComputeOptionsData>) -> Result<ComputeOptions> {
    check_memory_variable()?;
    let Some(o) = o else { return Ok(ComputeOptions::default()) };
    Ok(ComputeOptions {
        max_memory: o.max_memory.as_deref().map(|m| parse_size("maxMemory", m)).transpose().map_err(to_napi)?,
        gradients: o.gradients.unwrap_or_default(),
        selected_keys: o.selected_keys.as_ref().map(|l| labels_from_js("selectedKeys", l)).transpose()?,
        selected_samples: o.selected_samples.as_ref().map(|l| labels_from_js("selectedSamples", l)).transpose()?,
        cancel: None,
        neighbors_to_properties: o.neighbors_to_properties.unwrap_or(false),
    })
}

/// One entry of the core's calculator registry (see
/// `acdc_core::calculators::REGISTRY`).
#[napi(object)]
pub struct CalculatorInfo {
    /// Stable name.
    pub name: String,
    /// "soap" or "classic".
    pub family: String,
    /// "invariant", "equivariant" or "per_structure".
    pub output: String,
    /// Gradients `compute` can give.
    pub gradients: Vec<String>,
    /// Whether the output fits one dense `.npy` design matrix.
    pub dense: bool,
    /// "neighbor_pairs" or "neighbor_singles": the native design-row path; null without one.
    pub design_rows: Option<String>,
    /// Hyper-parameters used when none are given (JSON text); null: required.
    pub default_hypers: Option<String>,
    /// A short example of hyper-parameters, for messages.
    pub example_hypers: String,
}

/// The calculators of the core, in registry order (the first is the default
/// of the front ends).
#[napi]
pub fn calculator_registry() -> Vec<CalculatorInfo> {
    acdc_core::calculators::REGISTRY
        .iter()
        .map(|e| CalculatorInfo {
            name: e.name.into(),
            family: e.family.as_str().into(),
            output: e.output.as_str().into(),
            gradients: e.gradients.iter().map(|g| g.to_string()).collect(),
            dense: e.dense,
            design_rows: e.design_rows.map(|d| d.as_str().into()),
            default_hypers: e.default_hypers.map(String::from),
            example_hypers: e.example_hypers.into(),
        })
        .collect()
}

/// A calculator from the core, built from its name and JSON hyper-parameters.
#[napi]
pub struct NativeCalculator {
    inner: Arc<dyn Calculator>,
}

#[napi]
impl NativeCalculator {
    /// `name`: one of [`calculator_registry`]; `hypers`: JSON text.
    #[napi(constructor)]
    pub fn new(name: String, hypers: String) -> Result<Self> {
        guarded("calculator constructor", || {
            // size the thread pool before building (see NativePotential::from_bytes)
            ensure_thread_pool();
            let inner = from_name(&name, &hypers).map_err(to_napi)?;
            Ok(NativeCalculator { inner: Arc::from(inner) })
        })
    }

    /// The calculator's name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// The hyper-parameters as given (JSON).
    #[napi(getter)]
    pub fn parameters(&self) -> String {
        self.inner.parameters().to_string()
    }

    /// Keys produced for these systems.
    #[napi]
    pub fn keys(&self, systems: Vec<SystemData>) -> Result<LabelsData> {
        guarded("keys", || {
            ensure_thread_pool();
            let systems = to_core_list(&systems)?;
            self.inner.keys(&systems).map(labels_to_js).map_err(to_napi)
        })
    }

    /// Computes synchronously.
    #[napi]
    pub fn compute_sync(&self, env: Env, systems: Vec<SystemData>, options: Option<ComputeOptionsData>) -> Result<TensorMapData> {
        let _report = Reporter::sync(&env);
        guarded("computeSync", || {
            ensure_thread_pool();
            let systems = to_core_list(&systems)?;
            let options = options_from_js(options)?;
            self.inner.compute(&systems, &options).map_err(to_napi).and_then(tensor_to_js)
        })
    }

    /// Computes off the event loop; the inputs are copied first. `token`
    /// cancels the computation (it then rejects with "cancelled").
    #[napi(ts_return_type = "Promise<TensorMapData>")]
    pub fn compute(&self, env: Env, systems: Vec<SystemData>, options: Option<ComputeOptionsData>, token: Option<&CancelToken>) -> Result<AsyncTask<ComputeTask>> {
        // results the garbage collector has found unreachable go back to the
        // output pool before the task runs, so that it can reuse them
        crate::external::reclaim(env.raw());
        guarded("compute", || {
            let systems = to_core_list(&systems)?;
            let mut options = options_from_js(options)?;
            options.cancel = token.map(|t| t.flag.clone());
            Ok(AsyncTask::new(ComputeTask { calculator: self.inner.clone(), systems, options }))
        })
    }
}

/// Builds a calculator off the event loop (a large basis with a tight
/// `spline_accuracy` takes seconds to tabulate): resolves with the same
/// object `new NativeCalculator(name, hypers)` gives.
#[napi(ts_return_type = "Promise<NativeCalculator>")]
pub fn build_calculator(name: String, hypers: String) -> AsyncTask<BuildCalculatorTask> {
    AsyncTask::new(BuildCalculatorTask { name, hypers })
}

/// The construction of a calculator on the thread pool.
pub struct BuildCalculatorTask {
    name: String,
    hypers: String,
}

impl Task for BuildCalculatorTask {
    type Output = Arc<dyn Calculator>;
    type JsValue = NativeCalculator;

    fn compute(&mut self) -> Result<Self::Output> {
        guarded("calculator constructor", || from_name(&self.name, &self.hypers).map(Arc::from).map_err(to_napi))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(NativeCalculator { inner: output })
    }
}

/// Cancels the asynchronous computations it is given to (an AbortSignal's
/// native side).
#[napi]
pub struct CancelToken {
    flag: Arc<std::sync::atomic::AtomicBool>,
}

#[napi]
impl CancelToken {
    /// A token not yet cancelled.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        CancelToken { flag: Arc::new(std::sync::atomic::AtomicBool::new(false)) }
    }

    /// Asks every computation holding this token to stop.
    #[napi]
    pub fn cancel(&self) {
        self.flag.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl NativeCalculator {
    /// The core calculator, for tasks outside this file.
    pub(crate) fn shared(&self) -> Arc<dyn Calculator> {
        self.inner.clone()
    }
}

impl CancelToken {
    /// The shared flag, for tasks outside this file.
    pub(crate) fn flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.flag.clone()
    }
}

/// An asynchronous computation owning copies of its inputs.
pub struct ComputeTask {
    calculator: Arc<dyn Calculator>,
    systems: Vec<acdc_core::System>,
    options: ComputeOptions,
}

impl Task for ComputeTask {
    type Output = acdc_core::tensor::TensorMap;
    type JsValue = TensorMapData;

    fn compute(&mut self) -> Result<Self::Output> {
        guarded("compute", || {
            ensure_thread_pool();
            self.calculator.compute(&self.systems, &self.options).map_err(to_napi)
        })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<Self::JsValue> {
        let _report = Reporter::new(&env);
        tensor_to_js(output)
    }
}

/// A malformed `ACDC_MAX_MEMORY` is reported rather than silently replaced
/// by the default.
pub fn check_memory_variable() -> Result<()> {
    match std::env::var("ACDC_MAX_MEMORY") {
        Ok(v) => parse_size("ACDC_MAX_MEMORY", &v).map(|_| ()).map_err(to_napi),
        Err(_) => Ok(()),
    }
}

/// The memory budget in bytes: `maxMemory` (bytes or a size such as "4G")
/// when given, else `ACDC_MAX_MEMORY`, else half of the available memory.
#[napi]
pub fn memory_budget(max_memory: Option<String>) -> Result<f64> {
    check_memory_variable()?;
    let explicit = max_memory.as_deref().map(|m| parse_size("maxMemory", m)).transpose().map_err(to_napi)?;
    Ok(acdc_core::budget::MemoryBudget::or_global(explicit).bytes as f64)
}
