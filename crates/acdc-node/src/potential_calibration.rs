//! The variance calibrations that change a fitted potential: the core reads
//! the model's current calibration, composes it with the new one and keeps
//! the result (acdc_core::models::potential_calibration); this file only
//! converts.

use std::sync::Arc;

use acdc_core::models::calibration::{Calibration, LeaveOneOut, LeaveOutScheme};
use acdc_core::models::potential_calibration::{HeldOutCalibration, LeaveOutNoise};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{guarded, to_napi};
use crate::potentials::{f64_slices, NativePotential};

/// A variance calibration as the model now holds it (or, held out without
/// `apply`, would hold it).
#[napi(object, object_from_js = false)]
pub struct AppliedCalibrationData {
    /// the model's scale s (held out: the earlier scale times `factor`)
    pub scale: f64,
    /// the noise term: eV²/atom for energies, eV²/Å² per force component (0: none)
    pub noise: f64,
    /// values with a positive variance (structures, or force components)
    pub count: u32,
    /// fraction within 1σ with the new calibration
    pub within1: f64,
    /// fraction within 2σ with the new calibration
    pub within2: f64,
    /// fraction within 1σ before it
    pub within1_uncalibrated: f64,
    /// fraction within 2σ before it
    pub within2_uncalibrated: f64,
    /// held out: the factor f the held-out errors ask for
    pub factor: Option<f64>,
    /// leave-out: how many groups were left out in turn
    pub group_count: Option<u32>,
}

fn calibration_to_js(fit: &Calibration, scale: f64, noise: f64) -> AppliedCalibrationData {
    AppliedCalibrationData {
        scale,
        noise,
        count: fit.count as u32,
        within1: fit.within_1,
        within2: fit.within_2,
        within1_uncalibrated: fit.within_1_uncalibrated,
        within2_uncalibrated: fit.within_2_uncalibrated,
        factor: None,
        group_count: None,
    }
}

fn held_out_to_js(c: HeldOutCalibration) -> AppliedCalibrationData {
    AppliedCalibrationData { factor: Some(c.fit.scale), ..calibration_to_js(&c.fit, c.scale, c.noise) }
}

#[napi]
impl NativePotential {
    /// Calibrates the energy variance on leave-out errors (eV) and variances
    /// (eV²) of the training structures and keeps it in the model; `noise`
    /// is 'fit', 'none' or 'sigma' (the fit's σ_E² per atom).
    #[napi]
    pub fn calibrate_energy_variance_leave_out(
        &mut self,
        errors: Float64Array,
        variances: Float64Array,
        atoms: Vec<u32>,
        groups: Vec<u32>,
        scheme: String,
        noise: String,
    ) -> Result<AppliedCalibrationData> {
        guarded("calibrateEnergyVarianceLeaveOut", || {
            let scheme = match scheme.as_str() {
                "frame" => LeaveOutScheme::Frame,
                "composition" => LeaveOutScheme::Composition,
                other => return Err(to_napi(acdc_core::Error::InvalidParameter(format!("scheme = '{other}' (expected 'frame' or 'composition')")))),
            };
            let noise = LeaveOutNoise::parse(&noise, "noise").map_err(to_napi)?;
            let l = LeaveOneOut {
                errors: errors.to_vec(),
                variances: variances.to_vec(),
                leverage: Vec::new(),
                atoms: atoms.into_iter().map(|n| n as usize).collect(),
                groups: groups.into_iter().map(|g| g as usize).collect(),
                scheme,
            };
            // copies the model only while an asynchronous call still holds it
            let c = Arc::make_mut(&mut self.inner).calibrate_energy_variance_leave_out(&l, noise).map_err(to_napi)?;
            Ok(AppliedCalibrationData { group_count: Some(c.group_count as u32), ..calibration_to_js(&c.fit, c.fit.scale, c.noise) })
        })
    }

    /// The held-out factor of the energy variance (energies eV, variances
    /// eV²); with `apply` the model's scale becomes s·f.
    #[napi]
    pub fn calibrate_energy_variance_held_out(&mut self, predicted: Float64Array, reference: Float64Array, variances: Float64Array, apply: bool) -> Result<AppliedCalibrationData> {
        guarded("calibrateEnergyVarianceHeldOut", || {
            let c = if apply {
                Arc::make_mut(&mut self.inner).calibrate_energy_variance_held_out(&predicted, &reference, &variances, true)
            } else {
                self.inner.energy_variance_held_out(&predicted, &reference, &variances)
            }
            .map_err(to_napi)?;
            Ok(held_out_to_js(c))
        })
    }

    /// The held-out factor of the force variance (per structure: forces
    /// eV/Å and variances eV²/Å², 3N each); with `apply` s_F becomes s_F·f.
    #[napi]
    pub fn calibrate_force_variance_held_out(&mut self, predicted: Vec<Float64Array>, reference: Vec<Float64Array>, variances: Vec<Float64Array>, apply: bool) -> Result<AppliedCalibrationData> {
        guarded("calibrateForceVarianceHeldOut", || {
            let (predicted, reference, variances) = (f64_slices(&predicted), f64_slices(&reference), f64_slices(&variances));
            let c = if apply {
                Arc::make_mut(&mut self.inner).calibrate_force_variance_held_out(&predicted, &reference, &variances, true)
            } else {
                self.inner.force_variance_held_out(&predicted, &reference, &variances)
            }
            .map_err(to_napi)?;
            Ok(held_out_to_js(c))
        })
    }
}
