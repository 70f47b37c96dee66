//! Tensor models (SparseTensorGPR, TensorLinearModel): fit, predict, and the
//! bytes of their `.acdc` files. The JS layer (`js/tensor_models.ts`) reads
//! the targets from the systems and checks option shapes; this converts them.
use std::sync::Arc;

use acdc_core::models::tensor_model_file;
use acdc_core::models::{TensorFitOptions, TensorKindOptions, TensorModel, TensorPrediction, TensorSparseMethod, TensorTarget};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::calculators::CancelToken;
use crate::errors::{ensure_thread_pool, guarded, to_napi};
use crate::models::Job;
use crate::system::{to_core_list, SystemData};

/// Fit settings and targets, as the JS layer passes them.
#[napi(object, object_to_js = false)]
pub struct TensorFitData {
    /// "sparse_tensor_gpr" or "tensor_linear"
    pub kind: String,
    /// "dipole" or "polarizability"
    pub target: String,
    /// λ-SOAP hyper-parameters (JSON text)
    pub hypers: String,
    /// Cartesian targets, 3 or 9 per system
    pub values: Vec<Float64Array>,
    /// noise per component (target unit)
    pub sigma: f64,
    /// where the targets came from (kept in the model's meta)
    pub key: Option<String>,
    /// GPR: sparse environments per species
    pub count: Option<u32>,
    /// GPR: species with their own count
    pub count_species: Option<Vec<i32>>,
    /// GPR: their counts
    pub count_values: Option<Vec<u32>>,
    /// GPR: "fps" or "random"
    pub method: Option<String>,
    /// GPR: seed of the random selection
    pub seed: Option<u32>,
    /// GPR: ζ
    pub zeta: Option<f64>,
    /// GPR: jitter on K_MM
    pub jitter: Option<f64>,
    /// linear: ridge parameter
    pub regularizer: Option<f64>,
    /// dipoles: the per-species charge term (default: true for a dipole, false otherwise)
    pub charges: Option<bool>,
}

/// Predicted tensors.
#[napi(object, object_from_js = false)]
pub struct TensorPredictionData {
    /// 3 or 9 values per structure
    pub tensors: Vec<Float64Array>,
    /// per structure, n_atoms × (3 or 9) atomic contributions (when asked)
    pub atoms: Option<Vec<Float64Array>>,
}

fn invalid(m: String) -> Error {
    Error::new(Status::InvalidArg, m)
}

fn fit_inputs(systems: &[SystemData], data: TensorFitData, token: Option<&CancelToken>) -> Result<(Vec<acdc_core::System>, Vec<Vec<f64>>, TensorFitOptions)> {
    let systems = to_core_list(systems)?;
    let target = TensorTarget::from_name(&data.target).map_err(to_napi)?;
    let kind = match data.kind.as_str() {
        "sparse_tensor_gpr" => {
            let zeta = data.zeta.unwrap_or(2.0);
            if !(zeta.is_finite() && zeta >= 1.0 && zeta.fract() == 0.0 && zeta <= 1024.0) {
                return Err(invalid(format!("kernel.zeta = {zeta} (expected an integer between 1 and 1024)")));
            }
            TensorKindOptions::SparseGpr {
                count: data.count.unwrap_or(0) as usize,
                counts: data.count_species.unwrap_or_default().into_iter().zip(data.count_values.unwrap_or_default().into_iter().map(|c| c as usize)).collect(),
                method: TensorSparseMethod::from_name(data.method.as_deref().unwrap_or("fps")).map_err(to_napi)?,
                seed: data.seed.unwrap_or(0),
                zeta: zeta as u32,
                jitter: data.jitter.unwrap_or(1e-8),
            }
        }
        "tensor_linear" => TensorKindOptions::Linear { regularizer: data.regularizer.unwrap_or(0.0) },
        other => return Err(invalid(format!("kind = \"{other}\" (expected \"sparse_tensor_gpr\" or \"tensor_linear\")"))),
    };
    let values = data.values.iter().map(|a| a.to_vec()).collect();
    let charges = data.charges.unwrap_or(target == TensorTarget::Dipole);
    let options = TensorFitOptions { hypers: data.hypers, target, kind, sigma: data.sigma, key: data.key, charges, cancel: token.map(|t| t.flag()) };
    Ok((systems, values, options))
}

fn prediction_to_js(p: TensorPrediction) -> Result<TensorPredictionData> {
    let atoms = if p.atoms.is_empty() { None } else { Some(p.atoms.into_iter().map(Float64Array::new).collect()) };
    Ok(TensorPredictionData { tensors: p.structures.into_iter().map(Float64Array::new).collect(), atoms })
}

/// A fitted tensor model.
#[napi]
pub struct NativeTensorModel {
    inner: Arc<TensorModel>,
}

fn model_to_js(m: TensorModel) -> Result<NativeTensorModel> {
    Ok(NativeTensorModel { inner: Arc::new(m) })
}

/// The `kind` in the header of a `.acdc` file (after checking its framing and checksum).
#[napi]
pub fn model_file_kind(bytes: Uint8Array, what: String) -> Result<String> {
    guarded("modelFileKind", || tensor_model_file::kind_of(&bytes, &what).map_err(to_napi))
}

#[napi]
impl NativeTensorModel {
    /// Fits synchronously.
    #[napi(factory)]
    pub fn fit_sync(systems: Vec<SystemData>, data: TensorFitData) -> Result<NativeTensorModel> {
        guarded("fitSync", || {
            ensure_thread_pool();
            let (systems, values, options) = fit_inputs(&systems, data, None)?;
            model_to_js(TensorModel::fit(&systems, &values, &options).map_err(to_napi)?)
        })
    }

    /// Fits off the event loop; `token` cancels it.
    #[napi(ts_return_type = "Promise<NativeTensorModel>")]
    pub fn fit(systems: Vec<SystemData>, data: TensorFitData, token: Option<&CancelToken>) -> Result<AsyncTask<Job<TensorModel, NativeTensorModel>>> {
        guarded("fit", || {
            let (systems, values, options) = fit_inputs(&systems, data, token)?;
            Ok(Job::new("fit", move || TensorModel::fit(&systems, &values, &options), model_to_js))
        })
    }

    /// Reads the bytes of a `.acdc` file; `what` names it in errors.
    #[napi(factory)]
    pub fn from_bytes(bytes: Uint8Array, what: String) -> Result<NativeTensorModel> {
        guarded("load", || {
            // size the thread pool before the model's calculators are built
            // (see NativePotential::from_bytes)
            ensure_thread_pool();
            model_to_js(tensor_model_file::from_bytes(&bytes, &what).map_err(to_napi)?)
        })
    }

    /// The bytes of a `.acdc` file.
    #[napi]
    pub fn to_bytes(&self) -> Result<Uint8Array> {
        guarded("save", || Ok(Uint8Array::new(tensor_model_file::to_bytes(&self.inner).map_err(to_napi)?)))
    }

    /// Predicts synchronously.
    #[napi]
    pub fn predict_sync(&self, systems: Vec<SystemData>, per_atom: bool) -> Result<TensorPredictionData> {
        guarded("predictSync", || {
            ensure_thread_pool();
            let systems = to_core_list(&systems)?;
            prediction_to_js(self.inner.predict(&systems, per_atom, &None).map_err(to_napi)?)
        })
    }

    /// Predicts off the event loop; `token` cancels it.
    #[napi(ts_return_type = "Promise<TensorPredictionData>")]
    pub fn predict(&self, systems: Vec<SystemData>, per_atom: bool, token: Option<&CancelToken>) -> Result<AsyncTask<Job<TensorPrediction, TensorPredictionData>>> {
        guarded("predict", || {
            let systems = to_core_list(&systems)?;
            let inner = self.inner.clone();
            let cancel = token.map(|t| t.flag());
            Ok(Job::new("predict", move || inner.predict(&systems, per_atom, &cancel), prediction_to_js))
        })
    }

    /// "sparse_tensor_gpr" or "tensor_linear".
    #[napi(getter)]
    pub fn kind(&self) -> String {
        self.inner.kind.name().to_string()
    }

    /// "dipole" or "polarizability".
    #[napi(getter)]
    pub fn target(&self) -> String {
        self.inner.target.name().to_string()
    }

    /// λ-SOAP hyper-parameters (JSON text).
    #[napi(getter)]
    pub fn hypers(&self) -> String {
        self.inner.hypers.clone()
    }

    /// Species of the training set, sorted.
    #[napi(getter)]
    pub fn species(&self) -> Vec<i32> {
        self.inner.species.clone()
    }

    /// ζ (GPR; 1 for the linear model).
    #[napi(getter)]
    pub fn zeta(&self) -> u32 {
        self.inner.zeta
    }

    /// Sparse environments per species (GPR; zeros for the linear model).
    #[napi(getter)]
    pub fn counts(&self) -> Vec<u32> {
        self.inner.channels[0].sparse_counts.iter().map(|&c| c as u32).collect()
    }

    /// Fitted partial charges per species (e, in the order of `species`); null without the charge term.
    #[napi(getter)]
    pub fn charges(&self) -> Option<Vec<f64>> {
        self.inner.charges().map(<[f64]>::to_vec)
    }

    /// Facts about the fit (JSON text).
    #[napi(getter)]
    pub fn meta(&self) -> String {
        self.inner.meta.to_string()
    }
}
