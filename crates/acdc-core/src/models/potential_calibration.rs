//! Calibrating a fitted [`Potential`]'s predictive variances and keeping the
//! result in the model: the leave-out calibration of the energy variance
//! (s·(v + c·N), s and c from the training structures' closed-form leave-out
//! errors) and the held-out factors that multiply an existing calibration,
//! for the energy and for the force variance. The fitting of s and c is in
//! [`super::calibration`]; here the model's current calibration is read,
//! composed with the new factor and written back, so that the callers (the
//! API and `acdc fit`) only pass data through. Also the prior's weight
//! against the energy data (`acdc rigidity`'s regulariser), read from the
//! same fitted sigmas.

use super::calibration::{self, Calibration, LeaveOneOut};
use super::potential::Potential;
use crate::{Error, Result};

/// The noise term c of the energy variance s·(v + c·N) in a leave-out calibration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveOutNoise {
    /// c fitted together with s by maximum likelihood.
    Fit,
    /// c = 0: the variance is s·v.
    None,
    /// c = σ_E², the energy sigma per atom of the fit (`meta.sigmas.energy`, eV/atom).
    Sigma,
}

impl LeaveOutNoise {
    /// 'fit', 'none' or 'sigma'; any other value is an error naming `field`.
    pub fn parse(value: &str, field: &str) -> Result<LeaveOutNoise> {
        match value {
            "fit" => Ok(LeaveOutNoise::Fit),
            "none" => Ok(LeaveOutNoise::None),
            "sigma" => Ok(LeaveOutNoise::Sigma),
            other => Err(Error::InvalidParameter(format!("{field} = '{other}' (expected 'fit', 'none' or 'sigma')"))),
        }
    }
}

/// A leave-out calibration of the energy variance, as applied to the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeaveOutCalibration {
    /// The fit of s (its `scale`) and the coverage before and after.
    pub fit: Calibration,
    /// c, eV²/atom (0 when none).
    pub noise: f64,
    /// How many groups were left out in turn.
    pub group_count: usize,
}

/// A held-out calibration: the factor f the held-out data asks for,
/// multiplied into the model's current scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeldOutCalibration {
    /// The held-out fit alone: its `scale` is the factor f, its fractions the
    /// coverage of the held-out errors before (s) and after (s·f).
    pub fit: Calibration,
    /// s·f: the model's scale with this factor applied, eV² per unit variance.
    pub scale: f64,
    /// The model's noise term, unchanged (eV²/atom for the energy, eV²/Å² per force component).
    pub noise: f64,
}

impl Potential {
    /// Calibrates the energy variance on leave-out errors of the training
    /// structures ([`Potential::leave_out`]) and keeps the result in the
    /// model (scale, noise per atom, `'leave-one-out'`, the grouping).
    /// `noise` chooses c; [`LeaveOutNoise::Sigma`] needs the fit's energy
    /// sigma in the model's meta.
    pub fn calibrate_energy_variance_leave_out(&mut self, l: &LeaveOneOut, noise: LeaveOutNoise) -> Result<LeaveOutCalibration> {
        let (fit, c) = match noise {
            LeaveOutNoise::Fit => calibration::calibrate_variance_and_noise(&l.errors, &l.variances, &l.atoms)?,
            LeaveOutNoise::None => (calibration::calibrate_variance_with_noise(&l.errors, &l.variances, &l.atoms, 0.0)?, 0.0),
            LeaveOutNoise::Sigma => {
                let sigma = self.meta.get("sigmas").and_then(|s| s.get("energy")).and_then(serde_json::Value::as_f64).ok_or_else(|| {
                    Error::InvalidParameter("noise = 'sigma': the model does not record its energy sigma (fitInfo.sigmas.energy, the model file's meta.sigmas.energy); use 'fit' or 'none'".into())
                })?;
                let c = sigma * sigma;
                (calibration::calibrate_variance_with_noise(&l.errors, &l.variances, &l.atoms, c)?, c)
            }
        };
        let group_count = l.groups.iter().map(|&g| g + 1).max().unwrap_or(0);
        self.set_variance_calibration(fit.scale, c, "leave-one-out")?;
        self.set_variance_calibration_groups(l.scheme, group_count);
        Ok(LeaveOutCalibration { fit, noise: c, group_count })
    }

    /// The factor f of the energy variance from held-out structures
    /// (`predicted` and `reference` energies, eV; `variances` the model's
    /// calibrated variances there, eV²). With `apply`, the model's scale
    /// becomes s·f (the noise stays); without, only the coverage is measured
    /// (as [`Potential::energy_variance_held_out`]).
    pub fn calibrate_energy_variance_held_out(&mut self, predicted: &[f64], reference: &[f64], variances: &[f64], apply: bool) -> Result<HeldOutCalibration> {
        let c = self.energy_variance_held_out(predicted, reference, variances)?;
        if apply {
            self.set_variance_scale(c.scale)?;
        }
        Ok(c)
    }

    /// [`Potential::calibrate_energy_variance_held_out`] without `apply`:
    /// the factor and coverage, the model left as it is (so a caller holding
    /// the model shared need not copy it to ask).
    pub fn energy_variance_held_out(&self, predicted: &[f64], reference: &[f64], variances: &[f64]) -> Result<HeldOutCalibration> {
        let fit = calibration::calibrate_variance_held_out(&[predicted], &[reference], &[variances])?;
        let scale = self.variance_scale() * fit.scale;
        Ok(HeldOutCalibration { fit, scale, noise: self.variance_noise() })
    }

    /// The factor f_F of the force variance from held-out structures (per
    /// structure: predicted and reference forces, eV/Å, 3N each, and the
    /// calibrated variances, eV²/Å²). The factor multiplies the whole
    /// calibrated variance s_F·(v + c_F), so with `apply` the model's
    /// s_F becomes s_F·f_F and c_F stays.
    pub fn calibrate_force_variance_held_out(&mut self, predicted: &[&[f64]], reference: &[&[f64]], variances: &[&[f64]], apply: bool) -> Result<HeldOutCalibration> {
        let c = self.force_variance_held_out(predicted, reference, variances)?;
        if apply {
            self.set_force_variance_calibration(c.scale, c.noise)?;
        }
        Ok(c)
    }

    /// [`Potential::calibrate_force_variance_held_out`] without `apply`.
    pub fn force_variance_held_out(&self, predicted: &[&[f64]], reference: &[&[f64]], variances: &[&[f64]]) -> Result<HeldOutCalibration> {
        let fit = calibration::calibrate_variance_held_out(predicted, reference, variances)?;
        let (s, c) = self.force_variance_calibration();
        Ok(HeldOutCalibration { fit, scale: s * fit.scale, noise: c })
    }
}

impl Potential {
    /// The weight α of the prior against the energy data in this model's
    /// posterior, as the local prediction rigidity needs it (Chong et al.,
    /// J. Chem. Theory Comput. 19, 8020 (2023)): (σ_E/δ)² for a sparse GPR
    /// (σ_E eV/atom, δ eV), λ·σ_E² for a linear model with ridge parameter
    /// λ. None when the model does not record its energy sigma.
    pub fn prior_weight(&self) -> Option<f64> {
        let sigma = self.meta.get("sigmas").and_then(|s| s.get("energy")).and_then(serde_json::Value::as_f64)?;
        let alpha = match self.kind {
            super::Kind::SparseGpr => (sigma / self.delta) * (sigma / self.delta),
            super::Kind::Linear => self.regularizer * sigma * sigma,
        };
        alpha.is_finite().then_some(alpha)
    }
}

#[cfg(test)]
mod tests {
    use super::super::calibration::LeaveOutScheme;
    use super::super::potential::tests::{options, structure, targets};
    use super::super::{KindOptions, Potential};
    use super::*;

    fn linear() -> Potential {
        let systems: Vec<_> = (0..4).map(|k| structure(k, 4)).collect();
        Potential::fit(&systems, &targets(&systems), &options(KindOptions::Linear { regularizer: 1e-6 })).unwrap()
    }

    fn leave_out() -> LeaveOneOut {
        LeaveOneOut {
            errors: vec![0.1, -0.3, 0.05, 0.2],
            variances: vec![0.01, 0.02, 0.005, 0.01],
            leverage: Vec::new(),
            atoms: vec![4, 4, 3, 4],
            groups: vec![0, 1, 1, 2],
            scheme: LeaveOutScheme::Composition,
        }
    }

    #[test]
    fn leave_out_noise_choices_are_the_calibration_functions_and_are_kept() {
        let l = leave_out();
        let mut p = linear();
        let c = p.calibrate_energy_variance_leave_out(&l, LeaveOutNoise::Fit).unwrap();
        let (fit, noise) = calibration::calibrate_variance_and_noise(&l.errors, &l.variances, &l.atoms).unwrap();
        assert_eq!((c.fit, c.noise, c.group_count), (fit, noise, 3));
        assert_eq!((p.variance_scale(), p.variance_noise()), (fit.scale, noise));
        assert_eq!(p.meta["variance_calibration"], "leave-one-out");
        assert_eq!(p.meta["variance_calibration_groups"], "composition");
        assert_eq!(p.meta["variance_calibration_group_count"], 3);

        let c = p.calibrate_energy_variance_leave_out(&l, LeaveOutNoise::None).unwrap();
        assert_eq!((c.fit, c.noise), (calibration::calibrate_variance_with_noise(&l.errors, &l.variances, &l.atoms, 0.0).unwrap(), 0.0));
        assert_eq!(p.variance_noise(), 0.0);

        // the fit's σ_E is 0.01 eV/atom (the tests' options): c = 1e-4 eV²/atom
        let c = p.calibrate_energy_variance_leave_out(&l, LeaveOutNoise::Sigma).unwrap();
        assert_eq!(c.noise, 0.01 * 0.01);
        assert_eq!(c.fit, calibration::calibrate_variance_with_noise(&l.errors, &l.variances, &l.atoms, 1e-4).unwrap());
        assert_eq!((p.variance_scale(), p.variance_noise()), (c.fit.scale, 1e-4));

        p.meta.as_object_mut().unwrap().remove("sigmas");
        let e = p.calibrate_energy_variance_leave_out(&l, LeaveOutNoise::Sigma).unwrap_err().to_string();
        assert!(e.contains("meta.sigmas.energy"), "{e}");
        assert!(LeaveOutNoise::parse("maybe", "noise").unwrap_err().to_string().contains("noise = 'maybe'"));
    }

    #[test]
    fn prior_weights_of_both_kinds() {
        // the tests' options: σ_E 0.01 eV/atom; δ 0.5 eV (GPR), λ 1e-6 (linear)
        let mut p = linear();
        assert_eq!(p.prior_weight(), Some(1e-6 * 0.01 * 0.01));
        let systems: Vec<_> = (0..6).map(|k| structure(k, 4)).collect();
        let gpr = KindOptions::SparseGpr { count: 3, counts: vec![], method: super::super::SparseMethod::Cur, seed: 0, zeta: 3, delta: 0.5, jitter: 1e-8 };
        let g = Potential::fit(&systems, &targets(&systems), &options(gpr)).unwrap();
        assert_eq!(g.prior_weight(), Some((0.01 / 0.5) * (0.01 / 0.5)));
        p.meta.as_object_mut().unwrap().remove("sigmas");
        assert_eq!(p.prior_weight(), None);
    }

    #[test]
    fn held_out_factors_multiply_the_current_calibration() {
        let mut p = linear();
        p.set_variance_calibration(2.0, 0.5, "leave-one-out").unwrap();
        // errors 0.5, −1, 2 against variances 0.25, 1, 1: f = mean(r²/v) = 2
        let (pred, reference, var) = ([1.5, 1.0, 5.0], [1.0, 2.0, 3.0], [0.25, 1.0, 1.0]);
        let c = p.calibrate_energy_variance_held_out(&pred, &reference, &var, false).unwrap();
        assert_eq!((c.fit.scale, c.scale, c.noise), (2.0, 4.0, 0.5));
        assert_eq!(p.variance_scale(), 2.0, "apply = false leaves the model alone");
        let c = p.calibrate_energy_variance_held_out(&pred, &reference, &var, true).unwrap();
        assert_eq!((c.scale, p.variance_scale(), p.variance_noise()), (4.0, 4.0, 0.5));

        p.set_force_variance_calibration(3.0, 0.25).unwrap();
        let c = p.calibrate_force_variance_held_out(&[&pred[..1], &pred[1..]], &[&reference[..1], &reference[1..]], &[&var[..1], &var[1..]], true).unwrap();
        assert_eq!((c.fit.scale, c.scale, c.noise), (2.0, 6.0, 0.25));
        assert_eq!(p.force_variance_calibration(), (6.0, 0.25));
        let e = p.calibrate_force_variance_held_out(&[&pred[..]], &[&reference[..2]], &[&var[..]], true).unwrap_err().to_string();
        assert!(e.contains("piece 0"), "{e}");
        assert_eq!(p.force_variance_calibration(), (6.0, 0.25), "a refused calibration changes nothing");
    }
}
