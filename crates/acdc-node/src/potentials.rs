//! Potentials (sparse GPR, linear model): fit, predict, and the bytes of a
//! `.acdc` model file. The JS layer (`js/potentials.ts`) reads the targets
//! from the systems and checks the options' shapes; this file converts them.
use std::sync::Arc;

use acdc_core::budget::parse_size;
use acdc_core::models::model_file;
use acdc_core::models::calibration;
use acdc_core::models::validation;
use acdc_core::models::{E0, FeatureKind, FitOptions, FrameSigmas, KindOptions, PairOptions, Potential, PredictOptions, Prediction, Sigmas, SparseMethod, Targets};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::calculators::CancelToken;
use crate::errors::{ensure_thread_pool, guarded, to_napi};
use crate::models::Job;
use crate::system::{to_core_list, SystemData};

/// Structures per batch, counted in atoms, when streaming features.
const BATCH_ATOMS: usize = 512;

/// Fit settings and targets, as the JS layer passes them.
#[napi(object, object_to_js = false)]
pub struct PotentialFitData {
    /// "sparse_gpr" or "linear"
    pub kind: String,
    /// "power_spectrum" (absent: the default) or "bispectrum" (ν = 3)
    pub features: Option<String>,
    /// power spectrum hyper-parameters (JSON text)
    pub hypers: String,
    /// energies, eV, one per system
    pub energy: Float64Array,
    /// forces, eV/Å, 3N per system (absent: not fitted)
    pub forces: Option<Vec<Float64Array>>,
    /// stress, eV/Å³, 9 per system, or empty for a non-periodic system (absent: not fitted)
    pub stress: Option<Vec<Float64Array>>,
    /// GPR: sparse environments per species
    pub count: Option<u32>,
    /// GPR: species with their own count
    pub count_species: Option<Vec<i32>>,
    /// GPR: their counts
    pub count_values: Option<Vec<u32>>,
    /// GPR: "cur", "leverage", "leverage-mix", "pivoted-cholesky", "greedy-trace", "fps", "random" or "indices"
    pub method: Option<String>,
    /// GPR, method "indices": the species of each list
    pub indices_species: Option<Vec<i32>>,
    /// GPR, method "indices": the length of each list
    pub indices_lengths: Option<Vec<u32>>,
    /// GPR, method "indices": the lists one after the other (0-based per species)
    pub indices_values: Option<Vec<u32>>,
    /// GPR: seed of the random selection
    pub seed: Option<u32>,
    /// GPR: kernel exponent
    pub zeta: Option<f64>,
    /// GPR: kernel scale, eV
    pub delta: Option<f64>,
    /// GPR: jitter relative to δ²
    pub jitter: Option<f64>,
    /// GPR: GAP's absolute sparse_jitter, eV², for every term (each gets it over its own δ²); excludes `jitter` and `pair_jitter`
    pub sparse_jitter: Option<f64>,
    /// linear: ridge parameter
    pub regularizer: Option<f64>,
    /// eV/atom
    pub sigma_energy: f64,
    /// eV/Å
    pub sigma_forces: Option<f64>,
    /// eV/Å³
    pub sigma_stress: Option<f64>,
    /// "average", "fit" or "given"
    pub e0: String,
    /// with e0 = "given": species
    pub e0_species: Option<Vec<i32>>,
    /// with e0 = "given": eV per atom
    pub e0_values: Option<Vec<f64>>,
    /// atoms per streamed batch (default 512)
    pub batch_atoms: Option<u32>,
    /// per-system noise of the total energy, eV (NaN: the default rule σ_E·√N)
    pub frame_sigma_energy: Option<Float64Array>,
    /// per-system noise of a force component, eV/Å (NaN: the default)
    pub frame_sigma_forces: Option<Float64Array>,
    /// per-system noise of a stress component, eV/Å³ (NaN: the default)
    pub frame_sigma_stress: Option<Float64Array>,
    /// per-system noise of a virial component, eV (NaN: the default); stress rows get σ_v/V
    pub frame_sigma_virial: Option<Float64Array>,
    /// GPR with a distance_2b term: its cutoff, Å (absent: SOAP only)
    pub pair_cutoff: Option<f64>,
    /// distance_2b: width of the cosine transition, Å
    pub pair_transition: Option<f64>,
    /// distance_2b: kernel length scale θ, Å
    pub pair_theta: Option<f64>,
    /// distance_2b: kernel scale δ, eV
    pub pair_delta: Option<f64>,
    /// distance_2b: sparse distances per species pair
    pub pair_count: Option<u32>,
    /// distance_2b: jitter of its K_MM relative to its δ² (default: `jitter`)
    pub pair_jitter: Option<f64>,
}

/// Predictions for a list of systems.
#[napi(object, object_from_js = false)]
pub struct PotentialPredictionData {
    /// eV
    pub energy: Float64Array,
    /// eV/Å, 3N each
    pub forces: Option<Vec<Float64Array>>,
    /// eV/Å³, 9 each, row-major, ASE sign
    pub stress: Option<Vec<Float64Array>>,
    /// eV²
    pub variance: Option<Float64Array>,
}

fn invalid(m: String) -> Error {
    Error::new(Status::InvalidArg, m)
}

fn frame_sigmas(n: usize, columns: [&Option<Float64Array>; 4]) -> Result<Vec<FrameSigmas>> {
    if columns.iter().all(|c| c.is_none()) {
        return Ok(Vec::new());
    }
    let mut out = vec![FrameSigmas::default(); n];
    for (name, values) in ["energy", "forces", "stress", "virial"].into_iter().zip(columns) {
        let Some(values) = values else { continue };
        if values.len() != n {
            return Err(invalid(format!("frame sigmas of the {name}: {} values for {n} systems", values.len())));
        }
        for (k, &v) in values.iter().enumerate() {
            let v = if v.is_nan() { None } else { Some(v) };
            match name {
                "energy" => out[k].energy = v,
                "forces" => out[k].forces = v,
                "stress" => out[k].stress = v,
                _ => out[k].virial = v,
            }
        }
    }
    Ok(out)
}

/// The features of `data` (the power spectrum when absent).
fn feature_kind(data: &PotentialFitData) -> Result<FeatureKind> {
    data.features.as_deref().map_or(Ok(FeatureKind::PowerSpectrum), |name| FeatureKind::from_name("features", name).map_err(to_napi))
}

fn fit_inputs(systems: &[SystemData], data: PotentialFitData, token: Option<&CancelToken>) -> Result<(Vec<acdc_core::System>, Targets, FitOptions)> {
    let systems = to_core_list(systems)?;
    let targets = Targets {
        energy: data.energy.to_vec(),
        forces: data.forces.map(|f| f.iter().map(|a| a.to_vec()).collect()),
        stress: data
            .stress
            .map(|s| {
                s.iter()
                    .enumerate()
                    .map(|(k, a)| match a.len() {
                        0 => Ok(None),
                        9 => Ok(Some(<[f64; 9]>::try_from(&a[..]).expect("9 values"))),
                        n => Err(invalid(format!("systems[{k}]: stress has {n} values (expected 9)"))),
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?,
        frame_sigmas: frame_sigmas(systems.len(), [&data.frame_sigma_energy, &data.frame_sigma_forces, &data.frame_sigma_stress, &data.frame_sigma_virial])?,
    };
    let kind = match data.kind.as_str() {
        "sparse_gpr" => {
            let zeta = data.zeta.unwrap_or(4.0);
            if !(zeta.is_finite() && zeta >= 1.0 && zeta.fract() == 0.0 && zeta <= 1024.0) {
                return Err(invalid(format!("kernel.zeta = {zeta} (expected an integer between 1 and 1024)")));
            }
            KindOptions::SparseGpr {
                count: data.count.unwrap_or(0) as usize,
                counts: data.count_species.unwrap_or_default().into_iter().zip(data.count_values.unwrap_or_default().into_iter().map(|c| c as usize)).collect(),
                method: match data.method.as_deref().unwrap_or("leverage") {
                    "indices" => {
                        let species = data.indices_species.unwrap_or_default();
                        let lengths = data.indices_lengths.unwrap_or_default();
                        let values = data.indices_values.unwrap_or_default();
                        let total: usize = lengths.iter().map(|&n| n as usize).sum();
                        if species.len() != lengths.len() || total != values.len() {
                            return Err(invalid("sparse.indices: species, lengths and values disagree".into()));
                        }
                        let mut lists = Vec::with_capacity(species.len());
                        let mut start = 0;
                        for (z, n) in species.into_iter().zip(lengths) {
                            lists.push((z, values[start..start + n as usize].iter().map(|&i| i as usize).collect()));
                            start += n as usize;
                        }
                        SparseMethod::Indices(lists)
                    }
                    name => SparseMethod::from_name(name).map_err(to_napi)?,
                },
                seed: data.seed.unwrap_or(0),
                zeta: zeta as u32,
                delta: data.delta.unwrap_or(0.2),
                jitter: match data.sparse_jitter {
                    Some(absolute) => validation::relative_jitter(absolute, data.delta.unwrap_or(0.2)).map_err(to_napi)?,
                    None => data.jitter.unwrap_or(1e-8),
                },
            }
        }
        "linear" => KindOptions::Linear { regularizer: data.regularizer.unwrap_or(0.0) },
        other => return Err(invalid(format!("kind = \"{other}\" (expected \"sparse_gpr\" or \"linear\")"))),
    };
    let e0 = match data.e0.as_str() {
        "average" => E0::Average,
        "fit" => E0::Fit,
        "given" => {
            let species = data.e0_species.unwrap_or_default();
            let values = data.e0_values.unwrap_or_default();
            if species.len() != values.len() {
                return Err(invalid("e0: species and values differ in length".into()));
            }
            E0::Given(species.into_iter().zip(values).collect())
        }
        other => return Err(invalid(format!("e0 = \"{other}\" (expected 'average', 'fit' or an object {{Z: eV}})"))),
    };
    // GAP's absolute sparse_jitter: the distance_2b term's share over its own δ²
    let pair_jitter = match data.sparse_jitter {
        Some(absolute) => Some(validation::relative_jitter(absolute, data.pair_delta.unwrap_or(1.0)).map_err(to_napi)?),
        None => data.pair_jitter,
    };
    let options = FitOptions {
        hypers: data.hypers,
        kind,
        sigmas: Sigmas { energy: data.sigma_energy, forces: data.sigma_forces.unwrap_or(f64::NAN), stress: data.sigma_stress.unwrap_or(f64::NAN) },
        e0,
        batch_atoms: data.batch_atoms.map_or(BATCH_ATOMS, |b| b as usize),
        cancel: token.map(|t| t.flag()),
        pair: data.pair_cutoff.map(|cutoff| PairOptions {
            cutoff,
            transition: data.pair_transition.unwrap_or(0.5),
            theta: data.pair_theta.unwrap_or(1.0),
            delta: data.pair_delta.unwrap_or(1.0),
            count: data.pair_count.unwrap_or(20) as usize,
            jitter: pair_jitter,
        }),
    };
    Ok((systems, targets, options))
}

/// A fitted potential.
#[napi]
pub struct NativePotential {
    pub(crate) inner: Arc<Potential>,
}

fn potential_to_js(p: Potential) -> Result<NativePotential> {
    Ok(NativePotential { inner: Arc::new(p) })
}

fn prediction_to_js(p: Prediction) -> Result<PotentialPredictionData> {
    let forces = if p.forces.is_empty() { None } else { Some(p.forces.into_iter().map(Float64Array::new).collect()) };
    let stress = if p.stress.is_empty() { None } else { Some(p.stress.into_iter().map(|s| Float64Array::new(s.to_vec())).collect()) };
    let variance = if p.variance.is_empty() { None } else { Some(Float64Array::new(p.variance)) };
    Ok(PotentialPredictionData { energy: Float64Array::new(p.energy), forces, stress, variance })
}

#[napi]
impl NativePotential {
    /// Fits synchronously.
    #[napi(factory)]
    pub fn fit_sync(systems: Vec<SystemData>, data: PotentialFitData) -> Result<NativePotential> {
        guarded("fitSync", || {
            ensure_thread_pool();
            let features = feature_kind(&data)?;
            let (systems, targets, options) = fit_inputs(&systems, data, None)?;
            potential_to_js(Potential::fit_with_features(&systems, &targets, &options, features).map_err(to_napi)?)
        })
    }

    /// Fits off the event loop; `token` cancels it.
    #[napi(ts_return_type = "Promise<NativePotential>")]
    pub fn fit(systems: Vec<SystemData>, data: PotentialFitData, token: Option<&CancelToken>) -> Result<AsyncTask<Job<Potential, NativePotential>>> {
        guarded("fit", || {
            let features = feature_kind(&data)?;
            let (systems, targets, options) = fit_inputs(&systems, data, token)?;
            Ok(Job::new("fit", move || Potential::fit_with_features(&systems, &targets, &options, features), potential_to_js))
        })
    }

    /// Reads the bytes of a `.acdc` file; `what` names it in errors.
    #[napi(factory)]
    pub fn from_bytes(bytes: Uint8Array, what: String) -> Result<NativePotential> {
        guarded("load", || {
            // loading builds the model's calculators, which may use the
            // thread pool: size it first, or rayon sizes it to every core
            // and ACDC_NUM_THREADS (--threads) is ignored for the process
            ensure_thread_pool();
            potential_to_js(model_file::from_bytes(&bytes, &what).map_err(to_napi)?)
        })
    }

    /// The bytes of a `.acdc` file.
    #[napi]
    pub fn to_bytes(&self) -> Result<Uint8Array> {
        guarded("save", || Ok(Uint8Array::new(model_file::to_bytes(&self.inner).map_err(to_napi)?)))
    }

    /// Predicts synchronously.
    #[napi]
    pub fn predict_sync(&self, systems: Vec<SystemData>, forces: bool, stress: bool, variance: bool, max_memory: Option<String>) -> Result<PotentialPredictionData> {
        guarded("predictSync", || {
            ensure_thread_pool();
            let systems = to_core_list(&systems)?;
            let options = PredictOptions { forces, stress, variance };
            let max_memory = max_memory.as_deref().map(|m| parse_size("maxMemory", m)).transpose().map_err(to_napi)?;
            prediction_to_js(self.inner.predict_within(&systems, &options, BATCH_ATOMS, &None, max_memory).map_err(to_napi)?)
        })
    }

    /// Predicts off the event loop; `token` cancels it.
    #[napi(ts_return_type = "Promise<PotentialPredictionData>")]
    pub fn predict(
        &self,
        systems: Vec<SystemData>,
        forces: bool,
        stress: bool,
        variance: bool,
        token: Option<&CancelToken>,
        max_memory: Option<String>,
    ) -> Result<AsyncTask<Job<Prediction, PotentialPredictionData>>> {
        guarded("predict", || {
            let systems = to_core_list(&systems)?;
            let inner = self.inner.clone();
            let cancel = token.map(|t| t.flag());
            let options = PredictOptions { forces, stress, variance };
            let max_memory = max_memory.as_deref().map(|m| parse_size("maxMemory", m)).transpose().map_err(to_napi)?;
            Ok(Job::new("predict", move || inner.predict_within(&systems, &options, BATCH_ATOMS, &cancel, max_memory), prediction_to_js))
        })
    }

    /// "sparse_gpr" or "linear".
    #[napi(getter)]
    pub fn kind(&self) -> String {
        self.inner.kind.name().to_string()
    }

    /// Power spectrum hyper-parameters (JSON text).
    #[napi(getter)]
    pub fn hypers(&self) -> String {
        self.inner.hypers.clone()
    }

    /// "power_spectrum" or "bispectrum".
    #[napi(getter)]
    pub fn features(&self) -> String {
        self.inner.layout.features.name().to_string()
    }

    /// Species (atomic numbers) of the training set, sorted.
    #[napi(getter)]
    pub fn species(&self) -> Vec<i32> {
        self.inner.layout.species.clone()
    }

    /// e0 per species, eV, in the order of `species`.
    #[napi(getter)]
    pub fn e0(&self) -> Vec<f64> {
        self.inner.e0.clone()
    }

    /// Kernel exponent ζ (GPR).
    #[napi(getter)]
    pub fn zeta(&self) -> u32 {
        self.inner.zeta
    }

    /// Kernel scale δ, eV (GPR).
    #[napi(getter)]
    pub fn delta(&self) -> f64 {
        self.inner.delta
    }

    /// The prior's weight against the energy data: (σ_E/δ)² (GPR) or λ·σ_E² (linear); null without σ_E.
    #[napi(getter)]
    pub fn prior_weight(&self) -> Option<f64> {
        self.inner.prior_weight()
    }

    /// Length of one atom's feature vector.
    #[napi(getter)]
    pub fn n_features(&self) -> u32 {
        self.inner.layout.n_features() as u32
    }

    /// Sparse environments (GPR) or weights (linear) per species.
    #[napi(getter)]
    pub fn counts(&self) -> Vec<u32> {
        (0..self.inner.layout.species.len()).map(|c| self.inner.species_params(c) as u32).collect()
    }

    /// Facts about the fit (JSON text): sigmas, targets, sparse selection.
    #[napi(getter)]
    pub fn meta(&self) -> String {
        self.inner.meta.to_string()
    }

    /// The fitted weights (α or w).
    #[napi(getter)]
    pub fn weights(&self) -> Float64Array {
        Float64Array::new(self.inner.weights.clone())
    }

    /// Factor of the predictive variance (1 unless calibrated).
    #[napi(getter)]
    pub fn variance_scale(&self) -> f64 {
        self.inner.variance_scale()
    }

    /// Sets the factor of the predictive variance (kept in the model file).
    #[napi]
    pub fn set_variance_scale(&mut self, scale: f64) -> Result<()> {
        guarded("setVarianceScale", || {
            let mut p = (*self.inner).clone();
            p.set_variance_scale(scale).map_err(to_napi)?;
            self.inner = Arc::new(p);
            Ok(())
        })
    }

    /// Energy noise per atom in the predictive variance, eV²/atom (0 unless calibrated with it).
    #[napi(getter)]
    pub fn variance_noise(&self) -> f64 {
        self.inner.variance_noise()
    }

    /// Sets the variance scale, the noise per atom (eV²/atom) and how they were fitted (kept in the model file).
    /// `groups` ('frame' or 'composition') and `group_count` record how a
    /// leave-out calibration grouped the training structures.
    #[napi]
    pub fn set_variance_calibration(&mut self, scale: f64, noise: f64, method: String, groups: Option<String>, group_count: Option<u32>) -> Result<()> {
        guarded("setVarianceCalibration", || {
            let mut p = (*self.inner).clone();
            p.set_variance_calibration(scale, noise, &method).map_err(to_napi)?;
            if let Some(g) = groups {
                let scheme = match g.as_str() {
                    "frame" => calibration::LeaveOutScheme::Frame,
                    "composition" => calibration::LeaveOutScheme::Composition,
                    other => return Err(to_napi(acdc_core::Error::InvalidParameter(format!("groups = '{other}' (expected 'frame' or 'composition')")))),
                };
                p.set_variance_calibration_groups(scheme, group_count.unwrap_or(0) as usize);
            }
            self.inner = Arc::new(p);
            Ok(())
        })
    }

    /// Force variance calibration [scale, noise (eV²/Å²)]: s_F·(v + c_F) per component.
    #[napi(getter)]
    pub fn force_variance_calibration(&self) -> Vec<f64> {
        let (s, c) = self.inner.force_variance_calibration();
        vec![s, c]
    }

    /// Sets the force variance calibration (kept in the model file).
    #[napi]
    pub fn set_force_variance_calibration(&mut self, scale: f64, noise: f64) -> Result<()> {
        guarded("setForceVarianceCalibration", || {
            let mut p = (*self.inner).clone();
            p.set_force_variance_calibration(scale, noise).map_err(to_napi)?;
            self.inner = Arc::new(p);
            Ok(())
        })
    }

    /// Predicted force variances (linear model), synchronously.
    #[napi]
    pub fn force_variance_sync(&self, systems: Vec<SystemData>) -> Result<ForceVarianceData> {
        guarded("forceVarianceSync", || {
            ensure_thread_pool();
            let systems = to_core_list(&systems)?;
            force_variance_to_js(self.inner.force_variance(&systems, BATCH_ATOMS, &None).map_err(to_napi)?)
        })
    }

    /// Predicted force variances off the event loop; `token` cancels it.
    #[napi(ts_return_type = "Promise<ForceVarianceData>")]
    pub fn force_variance(&self, systems: Vec<SystemData>, token: Option<&CancelToken>) -> Result<AsyncTask<Job<Vec<Vec<f64>>, ForceVarianceData>>> {
        guarded("forceVariance", || {
            let systems = to_core_list(&systems)?;
            let inner = self.inner.clone();
            let cancel = token.map(|t| t.flag());
            Ok(Job::new("forceVariance", move || inner.force_variance(&systems, BATCH_ATOMS, &cancel), force_variance_to_js))
        })
    }

    /// Leave-one-frame-out force errors and variances of the training structures, synchronously.
    #[napi]
    pub fn force_leave_out_sync(&self, systems: Vec<SystemData>, forces: Vec<Float64Array>, sigma_forces: Option<Vec<Option<f64>>>) -> Result<ForceLeaveOutData> {
        guarded("forceLeaveOutSync", || {
            ensure_thread_pool();
            let systems = to_core_list(&systems)?;
            let forces: Vec<Vec<f64>> = forces.iter().map(|f| f.to_vec()).collect();
            let sigmas = sigma_forces.unwrap_or_default();
            force_leave_out_to_js(self.inner.force_leave_out(&systems, &forces, &sigmas, BATCH_ATOMS, &None).map_err(to_napi)?)
        })
    }

    /// The force leave-out off the event loop; `token` cancels it.
    #[napi(ts_return_type = "Promise<ForceLeaveOutData>")]
    pub fn force_leave_out(
        &self,
        systems: Vec<SystemData>,
        forces: Vec<Float64Array>,
        sigma_forces: Option<Vec<Option<f64>>>,
        token: Option<&CancelToken>,
    ) -> Result<AsyncTask<Job<(Vec<f64>, Vec<f64>, Vec<usize>), ForceLeaveOutData>>> {
        guarded("forceLeaveOut", || {
            let systems = to_core_list(&systems)?;
            let inner = self.inner.clone();
            let cancel = token.map(|t| t.flag());
            let forces: Vec<Vec<f64>> = forces.iter().map(|f| f.to_vec()).collect();
            let sigmas = sigma_forces.unwrap_or_default();
            Ok(Job::new("forceLeaveOut", move || inner.force_leave_out(&systems, &forces, &sigmas, BATCH_ATOMS, &cancel), force_leave_out_to_js))
        })
    }

    /// Leave-one-out energy errors and variances of the training structures, synchronously.
    #[napi]
    /// `groups`: 'auto' (default), 'frame' or 'composition'.
    pub fn leave_one_out_sync(&self, systems: Vec<SystemData>, energy: Float64Array, sigma_energy: Option<Vec<Option<f64>>>, groups: Option<String>) -> Result<LeaveOneOutData> {
        guarded("leaveOneOutSync", || {
            ensure_thread_pool();
            let systems = to_core_list(&systems)?;
            let sigmas = sigma_energy.unwrap_or_default();
            let how = calibration::LeaveOut::parse(groups.as_deref().unwrap_or("auto"), "groups").map_err(to_napi)?;
            leave_one_out_to_js(self.inner.leave_out(&systems, &energy, &sigmas, how, BATCH_ATOMS, &None).map_err(to_napi)?)
        })
    }

    /// Leave-one-out off the event loop; `token` cancels it.
    #[napi(ts_return_type = "Promise<LeaveOneOutData>")]
    pub fn leave_one_out(
        &self,
        systems: Vec<SystemData>,
        energy: Float64Array,
        sigma_energy: Option<Vec<Option<f64>>>,
        groups: Option<String>,
        token: Option<&CancelToken>,
    ) -> Result<AsyncTask<Job<calibration::LeaveOneOut, LeaveOneOutData>>> {
        guarded("leaveOneOut", || {
            let systems = to_core_list(&systems)?;
            let inner = self.inner.clone();
            let cancel = token.map(|t| t.flag());
            let energy = energy.to_vec();
            let sigmas = sigma_energy.unwrap_or_default();
            let how = calibration::LeaveOut::parse(groups.as_deref().unwrap_or("auto"), "groups").map_err(to_napi)?;
            Ok(Job::new("leaveOneOut", move || inner.leave_out(&systems, &energy, &sigmas, how, BATCH_ATOMS, &cancel), leave_one_out_to_js))
        })
    }
}

/// Predicted variance of every force component, eV²/Å².
#[napi(object, object_from_js = false)]
pub struct ForceVarianceData {
    /// 3N per system, in the order of the positions
    pub variance: Vec<Float64Array>,
}

fn force_variance_to_js(v: Vec<Vec<f64>>) -> Result<ForceVarianceData> {
    Ok(ForceVarianceData { variance: v.into_iter().map(Float64Array::new).collect() })
}

/// Leave-one-frame-out force errors and variances of the training structures.
#[napi(object, object_from_js = false)]
pub struct ForceLeaveOutData {
    /// eV/Å, prediction of the fit without the structure's force rows − reference, flat
    pub errors: Float64Array,
    /// eV²/Å², its variance (no scale, no noise)
    pub variances: Float64Array,
    /// the structure of each component
    pub frames: Vec<u32>,
}

fn force_leave_out_to_js(l: (Vec<f64>, Vec<f64>, Vec<usize>)) -> Result<ForceLeaveOutData> {
    Ok(ForceLeaveOutData { errors: Float64Array::new(l.0), variances: Float64Array::new(l.1), frames: l.2.into_iter().map(|k| k as u32).collect() })
}

/// Leave-one-out energy errors and variances of the training structures.
#[napi(object, object_from_js = false)]
pub struct LeaveOneOutData {
    /// eV, prediction without the structure's energy row − reference
    pub errors: Float64Array,
    /// eV², variance of that prediction (no scale, no noise)
    pub variances: Float64Array,
    /// weight of the row in its own prediction, in [0, 1)
    pub leverage: Float64Array,
    /// atoms per structure
    pub atoms: Vec<u32>,
    /// the group each structure was left out with (0, 1, …)
    pub groups: Vec<u32>,
    /// 'frame' or 'composition'
    pub scheme: String,
}

fn leave_one_out_to_js(l: calibration::LeaveOneOut) -> Result<LeaveOneOutData> {
    Ok(LeaveOneOutData {
        errors: Float64Array::new(l.errors),
        variances: Float64Array::new(l.variances),
        leverage: Float64Array::new(l.leverage),
        atoms: l.atoms.into_iter().map(|n| n as u32).collect(),
        groups: l.groups.into_iter().map(|n| n as u32).collect(),
        scheme: l.scheme.as_str().into(),
    })
}

/// The per-species-count baseline's fit and its energies.
#[napi(object, object_from_js = false)]
pub struct CountBaselineData {
    /// training species, sorted
    pub species: Vec<i32>,
    /// eV per atom of each species
    pub per_atom: Vec<f64>,
    /// eV, one per evaluated system
    pub predictions: Float64Array,
}

/// Least squares of the training energies (eV) on the species counts, and its energies for `evaluate`.
#[napi]
pub fn species_count_baseline(train: Vec<SystemData>, energy: Float64Array, evaluate: Vec<SystemData>) -> Result<CountBaselineData> {
    guarded("speciesCountBaseline", || {
        let train = to_core_list(&train)?;
        let evaluate = to_core_list(&evaluate)?;
        let b = calibration::species_count_baseline(&train, &energy, &evaluate).map_err(to_napi)?;
        Ok(CountBaselineData { species: b.species, per_atom: b.per_atom, predictions: Float64Array::new(b.predictions) })
    })
}

/// A variance scale fitted by maximum likelihood and the coverage of the errors.
#[napi(object, object_from_js = false)]
pub struct CalibrationData {
    /// s in s·v
    pub scale: f64,
    /// structures with a positive variance
    pub count: u32,
    /// fraction within 1σ after scaling
    pub within1: f64,
    /// fraction within 2σ after scaling
    pub within2: f64,
    /// fraction within 1σ before
    pub within1_uncalibrated: f64,
    /// fraction within 2σ before
    pub within2_uncalibrated: f64,
    /// noise per atom in s·(v + noise·N), eV²/atom (0: none)
    pub noise: f64,
}

/// Fits the variance scale to errors (eV) and variances (eV²).
#[napi]
pub fn calibrate_energy_variance(errors: Float64Array, variances: Float64Array) -> Result<CalibrationData> {
    guarded("calibrateEnergyVariance", || {
        let c = calibration::calibrate_variance(&errors, &variances).map_err(to_napi)?;
        Ok(calibration_data(&c, 0.0))
    })
}

/// Fits the variance scale to held-out predictions against references, piece
/// by piece (energies eV with variances eV², or per-structure forces eV/Å with eV²/Å²).
#[napi]
pub fn calibrate_variance_held_out(predicted: Vec<Float64Array>, reference: Vec<Float64Array>, variances: Vec<Float64Array>) -> Result<CalibrationData> {
    guarded("calibrateVarianceHeldOut", || {
        let c = calibration::calibrate_variance_held_out(&f64_slices(&predicted), &f64_slices(&reference), &f64_slices(&variances)).map_err(to_napi)?;
        Ok(calibration_data(&c, 0.0))
    })
}

/// Borrowed views of the arrays, no copy.
pub(crate) fn f64_slices(a: &[Float64Array]) -> Vec<&[f64]> {
    a.iter().map(|x| &x[..]).collect()
}

/// The JS form of a core calibration, with the noise per atom (eV²/atom) it used.
fn calibration_data(c: &calibration::Calibration, noise: f64) -> CalibrationData {
    CalibrationData {
        scale: c.scale,
        count: c.count as u32,
        within1: c.within_1,
        within2: c.within_2,
        within1_uncalibrated: c.within_1_uncalibrated,
        within2_uncalibrated: c.within_2_uncalibrated,
        noise,
    }
}

/// Fits the variance scale to errors (eV) against variances (eV²) plus `noise` (eV²/atom) × atoms.
#[napi]
pub fn calibrate_energy_variance_with_noise(errors: Float64Array, variances: Float64Array, atoms: Vec<u32>, noise: f64) -> Result<CalibrationData> {
    guarded("calibrateEnergyVarianceWithNoise", || {
        let atoms: Vec<usize> = atoms.into_iter().map(|n| n as usize).collect();
        let c = calibration::calibrate_variance_with_noise(&errors, &variances, &atoms, noise).map_err(to_napi)?;
        Ok(calibration_data(&c, noise))
    })
}

/// Fits the variance scale and the noise per atom (eV²/atom) of s·(v + noise·N) by maximum likelihood.
#[napi]
pub fn calibrate_energy_variance_and_noise(errors: Float64Array, variances: Float64Array, atoms: Vec<u32>) -> Result<CalibrationData> {
    guarded("calibrateEnergyVarianceAndNoise", || {
        let atoms: Vec<usize> = atoms.into_iter().map(|n| n as usize).collect();
        let (c, noise) = calibration::calibrate_variance_and_noise(&errors, &variances, &atoms).map_err(to_napi)?;
        Ok(calibration_data(&c, noise))
    })
}

/// A force variance calibration and the maximum-likelihood scale beside it.
#[napi(object, object_from_js = false)]
pub struct ForceCalibrationData {
    /// the calibration (scale s_F by the rule, noise c_F in eV²/Å²)
    pub calibration: CalibrationData,
    /// the maximum-likelihood s_F at the same c_F
    pub likelihood_scale: f64,
}

/// Fits the force variance's s_F·(v + c_F) to left-out force errors (eV/Å)
/// and variances (eV²/Å²): c_F by maximum likelihood, s_F by `rule`
/// ("coverage": the fractions within 1σ and 2σ nearest 0.683 and 0.954 in
/// units of their bands; "likelihood").
#[napi]
pub fn calibrate_force_variance_leave_out(errors: Float64Array, variances: Float64Array, rule: String) -> Result<ForceCalibrationData> {
    guarded("calibrateForceVarianceLeaveOut", || {
        let rule = calibration::ScaleRule::parse(&rule, "scaleRule").map_err(to_napi)?;
        let (c, noise, likelihood_scale) = calibration::calibrate_force_variance(&errors, &variances, rule).map_err(to_napi)?;
        Ok(ForceCalibrationData { calibration: calibration_data(&c, noise), likelihood_scale })
    })
}

/// Mean absolute and root-mean-square error of one quantity.
#[napi(object, object_from_js = false)]
pub struct ErrorStatisticsData {
    /// mean |d|
    pub mae: f64,
    /// √(mean d²)
    pub rmse: f64,
    /// values
    pub count: u32,
}

/// MAE and RMSE of (predicted − reference)/divisor (no divisors: 1 each); null for no values.
#[napi]
pub fn error_statistics(predicted: Float64Array, reference: Float64Array, divisor: Option<Float64Array>) -> Result<Option<ErrorStatisticsData>> {
    guarded("errorStatistics", || {
        let e = calibration::error_statistics(&predicted, &reference, divisor.as_deref().unwrap_or(&[])).map_err(to_napi)?;
        Ok(e.map(|e| ErrorStatisticsData { mae: e.mae, rmse: e.rmse, count: e.count as u32 }))
    })
}

/// Σ (RMSE/σ)² over the fitted targets (energy eV/atom, forces eV/Å, stress eV/Å³; null: not fitted): the loss `acdc fit --model auto` minimises.
#[napi]
pub fn validation_loss(energy_rmse: Option<f64>, forces_rmse: Option<f64>, stress_rmse: Option<f64>, sigma_energy: f64, sigma_forces: f64, sigma_stress: f64) -> Result<f64> {
    guarded("validationLoss", || calibration::validation_loss([energy_rmse, forces_rmse, stress_rmse], [sigma_energy, sigma_forces, sigma_stress]).map_err(to_napi))
}

/// The composition-calibrated variance against the frame-calibrated one at the mean training frame.
#[napi(object, object_from_js = false)]
pub struct CompositionSpreadData {
    /// s_c·(v̄ + c_c·N̄) / (s_f·(v̄ + c_f·N̄))
    pub spread: f64,
    /// √spread: the factor in σ
    pub sigma_ratio: f64,
    /// spread above the warning threshold (10)
    pub warn: bool,
    /// s_f
    pub frame_scale: f64,
    /// c_f, eV²/atom
    pub frame_noise: f64,
    /// v̄, eV²
    pub mean_variance: f64,
    /// N̄, atoms
    pub mean_atoms: f64,
}

/// The variance calibrated on left-out compositions (scale, noise in eV²/atom) over the one the per-frame leave-one-out errors (eV), variances (eV²) and atom counts give.
#[napi]
pub fn composition_spread(composition_scale: f64, composition_noise: f64, errors: Float64Array, variances: Float64Array, atoms: Vec<u32>) -> Result<CompositionSpreadData> {
    guarded("compositionSpread", || {
        let atoms: Vec<usize> = atoms.into_iter().map(|n| n as usize).collect();
        let c = calibration::composition_spread(composition_scale, composition_noise, &errors, &variances, &atoms).map_err(to_napi)?;
        Ok(CompositionSpreadData { spread: c.spread, sigma_ratio: c.sigma_ratio, warn: c.warn, frame_scale: c.frame_scale, frame_noise: c.frame_noise, mean_variance: c.mean_variance, mean_atoms: c.mean_atoms })
    })
}

/// The composition spread above which `acdc fit` warns.
#[napi]
pub fn composition_spread_warning_threshold() -> f64 {
    calibration::COMPOSITION_SPREAD_WARNING
}

/// P(X ≤ k) for X ~ Binomial(n, p).
#[napi]
pub fn binomial_lower_tail(k: u32, n: u32, p: f64) -> Result<f64> {
    guarded("binomialLowerTail", || calibration::binomial_lower_tail(k as usize, n as usize, p).map_err(to_napi))
}

/// numpy's `RandomState(seed).permutation(n)` (MT19937): how `acdc fit` draws its validation split.
#[napi]
pub fn seeded_permutation(n: u32, seed: u32) -> Result<Vec<u32>> {
    guarded("seededPermutation", || {
        Ok(acdc_core::math::random::LegacyRandomState::new(seed).permutation(n as usize).into_iter().map(|k| k as u32).collect())
    })
}
