//! featomic 0.6 hyper-parameters: parsed from JSON, unknown keys
//! rejected, values validated with messages naming the field.
use serde::Deserialize;

use crate::error::{Error, Result};

/// Largest angular index accepted: far beyond what anyone fits, small
/// enough that a typo cannot exhaust memory.
pub const MAX_ANGULAR_LIMIT: usize = 30;
/// Largest GTO radial index accepted: from 24 on, the overlap matrix of the
/// GTO basis is numerically singular in double precision (it depends only on
/// max_radial: the widths scale with the cutoff), so those values could
/// never compute.
pub const MAX_RADIAL_LIMIT: usize = 23;
/// Largest spline accuracy accepted: coarser splines are not a
/// representation of the radial integral any more.
pub const MAX_SPLINE_ACCURACY: f64 = 0.1;

/// `cutoff`: radius (Å) and smoothing of the neighbour density.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cutoff {
    /// Cutoff radius in Å.
    pub radius: f64,
    /// Smoothing of the density at the cutoff.
    pub smoothing: Smoothing,
}

/// `cutoff.smoothing`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Smoothing {
    /// f_c(r) = 1 below the cutoff, 0 beyond.
    Step,
    /// Cosine switch over the last `width` Å before the cutoff.
    ShiftedCosine {
        /// Width of the switching shell in Å.
        width: f64,
    },
}

/// `density`: the atomic density that is expanded.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Density {
    /// A Gaussian of standard deviation `width` (Å) on each neighbour.
    Gaussian {
        /// Gaussian width σ in Å.
        width: f64,
        /// Weight of the centre's own Gaussian (default 1).
        #[serde(default = "one")]
        center_atom_weight: f64,
        /// Optional radial scaling of neighbour contributions.
        #[serde(default)]
        scaling: Option<Scaling>,
    },
}

fn one() -> f64 {
    1.0
}

/// `density.scaling`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Scaling {
    /// s(r) = rate / (rate + (r / scale)^exponent).
    Willatt2018 {
        /// Length scale in Å.
        scale: f64,
        /// Dimensionless rate.
        rate: f64,
        /// Dimensionless exponent.
        exponent: f64,
    },
}

/// `basis.radial`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum RadialBasis {
    /// Gaussian-type orbitals; `max_radial + 1` functions.
    Gto {
        /// Largest radial index (inclusive).
        max_radial: usize,
        /// Radius of the basis in Å; defaults to the cutoff radius.
        #[serde(default)]
        radius: Option<f64>,
    },
}

impl RadialBasis {
    /// Largest radial index (inclusive).
    pub fn max_radial(&self) -> usize {
        match self {
            RadialBasis::Gto { max_radial, .. } => *max_radial,
        }
    }
}

/// `basis` of the spherical expansion and power spectrum.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Basis {
    /// The same radial basis for every angular channel l = 0…max_angular.
    TensorProduct {
        /// Largest angular channel (inclusive).
        max_angular: usize,
        /// The radial basis.
        radial: RadialBasis,
        /// Spline accuracy; `null` evaluates integrals exactly. Default 1e-8.
        #[serde(default = "default_accuracy", deserialize_with = "nullable")]
        spline_accuracy: Option<f64>,
    },
}

/// `basis` of the radial spectrum (no angular part).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RadialOnlyBasis {
    /// The radial basis.
    pub radial: RadialBasis,
    /// Spline accuracy; `null` evaluates integrals exactly. Default 1e-8.
    #[serde(default = "default_accuracy", deserialize_with = "nullable")]
    pub spline_accuracy: Option<f64>,
}

fn default_accuracy() -> Option<f64> {
    Some(1e-8)
}

/// Present-but-null means "no splines"; absent means the default.
fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<f64>, D::Error> {
    Option::<f64>::deserialize(d)
}

/// Hyper-parameters of `SphericalExpansion` and `SoapPowerSpectrum`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SoapHypers {
    /// Cutoff radius and smoothing.
    pub cutoff: Cutoff,
    /// Neighbour density.
    pub density: Density,
    /// Expansion basis.
    pub basis: Basis,
}

/// Hyper-parameters of `SoapRadialSpectrum`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RadialSpectrumHypers {
    /// Cutoff radius and smoothing.
    pub cutoff: Cutoff,
    /// Neighbour density.
    pub density: Density,
    /// Radial basis.
    pub basis: RadialOnlyBasis,
}

/// The validated settings the expansion engine runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpansionSettings {
    /// Cutoff radius in Å.
    pub cutoff: f64,
    /// Cutoff smoothing.
    pub smoothing: Smoothing,
    /// Gaussian width σ in Å.
    pub density_width: f64,
    /// Weight of the centre's own Gaussian.
    pub center_atom_weight: f64,
    /// Radial scaling, if any.
    pub scaling: Option<Scaling>,
    /// Largest angular channel.
    pub max_angular: usize,
    /// Largest radial index.
    pub max_radial: usize,
    /// Radius of the radial basis in Å.
    pub basis_radius: f64,
    /// Spline accuracy, or None for exact integrals.
    pub spline_accuracy: Option<f64>,
}

/// Parses JSON text into `T`, naming the path of a bad or unknown key
/// (`density.widht`). serde's line and column are dropped: the JS layer
/// re-serialises the user's object on one line, and for tagged sections
/// serde reports the end of the section, not the key; `fromJson` in the JS
/// layer locates the path in the user's own text instead.
pub fn parse_json<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let mut path = e.path().to_string();
        let mut message = e.into_inner().to_string();
        if let Some(at) = message.rfind(" at line ") {
            message.truncate(at);
        }
        if let Some(field) = unknown_field(&message) {
            path = if path == "." || path.is_empty() { field.to_string() } else { format!("{path}.{field}") };
        }
        if path == "." || path.is_empty() {
            Error::InvalidParameter(format!("{what} hyper-parameters: {message}"))
        } else {
            Error::InvalidParameter(format!("{what} hyper-parameters: {path}: {message}"))
        }
    })
}

/// The key of serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.find('`').map(|end| &rest[..end])
}

fn positive(field: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!("{field} must be a positive finite number, got {v}")))
    }
}

fn settings(cutoff: &Cutoff, density: &Density, radial: &RadialBasis, max_angular: usize, spline: Option<f64>) -> Result<ExpansionSettings> {
    positive("cutoff.radius", cutoff.radius)?;
    if let Smoothing::ShiftedCosine { width } = cutoff.smoothing {
        positive("cutoff.smoothing.width", width)?;
        if width > cutoff.radius {
            return Err(Error::InvalidParameter(format!(
                "cutoff.smoothing.width ({width} Å) must not exceed cutoff.radius ({} Å)",
                cutoff.radius
            )));
        }
    }
    let Density::Gaussian { width, center_atom_weight, scaling } = density;
    positive("density.width", *width)?;
    // a relative weight: beyond 1e10 the power spectrum (its square) and
    // its gradients overflow long before it means anything
    if !(center_atom_weight.is_finite() && center_atom_weight.abs() <= 1e10) {
        return Err(Error::InvalidParameter(format!(
            "density.center_atom_weight must be a finite number of magnitude at most 1e10, got {center_atom_weight:e}"
        )));
    }
    if let Some(Scaling::Willatt2018 { scale, rate, exponent }) = scaling {
        positive("density.scaling.scale", *scale)?;
        positive("density.scaling.rate", *rate)?;
        if !exponent.is_finite() || *exponent < 0.0 {
            return Err(Error::InvalidParameter(format!("density.scaling.exponent must be a non-negative number, got {exponent}")));
        }
    }
    if max_angular > MAX_ANGULAR_LIMIT {
        return Err(Error::InvalidParameter(format!("basis.max_angular is {max_angular}; at most {MAX_ANGULAR_LIMIT} is supported")));
    }
    let RadialBasis::Gto { max_radial, radius } = *radial;
    if max_radial > MAX_RADIAL_LIMIT {
        return Err(Error::InvalidParameter(format!("basis.radial.max_radial is {max_radial}; at most {MAX_RADIAL_LIMIT} is supported")));
    }
    let basis_radius = radius.unwrap_or(cutoff.radius);
    positive("basis.radial.radius", basis_radius)?;
    // featomic 0.6 ties the GTO basis to the cutoff and rejects any other
    // radius; accepting it here would give numbers featomic cannot reproduce.
    if basis_radius != cutoff.radius {
        return Err(Error::InvalidParameter(format!(
            "basis.radial.radius ({basis_radius} Å) must equal cutoff.radius ({} Å) for the Gto basis, as in featomic; leave it out",
            cutoff.radius
        )));
    }
    if let Some(acc) = spline {
        positive("basis.spline_accuracy", acc)?;
        if acc > MAX_SPLINE_ACCURACY {
            return Err(Error::InvalidParameter(format!(
                "basis.spline_accuracy is {acc:e}; at most {MAX_SPLINE_ACCURACY} (or null for exact radial integrals)"
            )));
        }
    }
    Ok(ExpansionSettings {
        cutoff: cutoff.radius,
        smoothing: cutoff.smoothing,
        density_width: *width,
        center_atom_weight: *center_atom_weight,
        scaling: *scaling,
        max_angular,
        max_radial,
        basis_radius,
        spline_accuracy: spline,
    })
}

impl SoapHypers {
    /// Parses and validates featomic-style JSON.
    pub fn from_json(what: &str, json: &str) -> Result<(SoapHypers, ExpansionSettings)> {
        let h: SoapHypers = parse_json(what, json)?;
        let Basis::TensorProduct { max_angular, radial, spline_accuracy } = &h.basis;
        let s = settings(&h.cutoff, &h.density, radial, *max_angular, *spline_accuracy)?;
        Ok((h, s))
    }
}

impl RadialSpectrumHypers {
    /// Parses and validates featomic-style JSON.
    pub fn from_json(what: &str, json: &str) -> Result<(RadialSpectrumHypers, ExpansionSettings)> {
        let h: RadialSpectrumHypers = parse_json(what, json)?;
        let s = settings(&h.cutoff, &h.density, &h.basis.radial, 0, h.basis.spline_accuracy)?;
        Ok((h, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
        "cutoff": {"radius": 5.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        "density": {"type": "Gaussian", "width": 0.3},
        "basis": {"type": "TensorProduct", "max_angular": 6, "radial": {"type": "Gto", "max_radial": 7}}
    }"#;

    #[test]
    fn parses_defaults() {
        let (_, s) = SoapHypers::from_json("soap", GOOD).unwrap();
        assert_eq!(s.center_atom_weight, 1.0);
        assert_eq!(s.spline_accuracy, Some(1e-8));
        assert_eq!(s.basis_radius, 5.0);
        let exact = GOOD.replace("\"max_radial\": 7}", "\"max_radial\": 7}, \"spline_accuracy\": null");
        let (_, s) = SoapHypers::from_json("soap", &exact).unwrap();
        assert_eq!(s.spline_accuracy, None);
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        let e = SoapHypers::from_json("soap", &GOOD.replace("\"width\": 0.5", "\"widht\": 0.5")).unwrap_err();
        assert!(e.to_string().contains("cutoff.smoothing"), "{e}");
        assert!(e.to_string().contains("widht"), "{e}");
        let e = SoapHypers::from_json("soap", &GOOD.replace("5.0", "-5.0")).unwrap_err();
        assert!(e.to_string().contains("cutoff.radius must be a positive finite number, got -5"), "{e}");
        let e = SoapHypers::from_json("soap", &GOOD.replace("ShiftedCosine", "Linear")).unwrap_err();
        assert!(e.to_string().contains("Linear"), "{e}");
        let e = SoapHypers::from_json("soap", &GOOD.replace("\"max_angular\": 6", "\"max_angular\": 600")).unwrap_err();
        assert!(e.to_string().contains("max_angular is 600"), "{e}");
        let e = SoapHypers::from_json("soap", "{").unwrap_err();
        assert!(e.to_string().contains("soap hyper-parameters"), "{e}");
    }
}
