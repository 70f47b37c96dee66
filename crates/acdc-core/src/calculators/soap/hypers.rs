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
        /// Optional compression of the neighbour types into pseudo-elements.
        #[serde(default)]
        alchemical: Option<Alchemical>,
    },
    /// A Dirac delta on each neighbour: the radial "integral" is the radial
    /// function itself. featomic uses it with tabulated radial integrals
    /// (the density is then already inside the table).
    DiracDelta {
        /// Weight of the centre's own contribution (default 1).
        #[serde(default = "one")]
        center_atom_weight: f64,
        /// Optional radial scaling of neighbour contributions.
        #[serde(default)]
        scaling: Option<Scaling>,
        /// Optional compression of the neighbour types into pseudo-elements.
        #[serde(default)]
        alchemical: Option<Alchemical>,
    },
}

/// `density.alchemical`: neighbour j of element a contributes to
/// pseudo-element b with weight `coupling[b][types.index(a)]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Alchemical {
    /// Atomic numbers of the columns of `coupling`.
    pub types: Vec<i32>,
    /// B rows (pseudo-elements) × S columns (elements), dimensionless.
    pub coupling: Vec<Vec<f64>>,
}

impl Alchemical {
    /// Checks `alchemical` (names the field): at least one type, distinct
    /// types, B ≥ 1 rows of S finite numbers.
    pub fn validate(&self) -> Result<()> {
        let alchemical = self;
        let s = alchemical.types.len();
        if s == 0 {
            return Err(Error::InvalidParameter("density.alchemical.types must list at least one atomic type".into()));
        }
        let mut sorted = alchemical.types.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::InvalidParameter(format!("density.alchemical.types lists {} twice", w[0])));
        }
        if alchemical.coupling.is_empty() {
            return Err(Error::InvalidParameter("density.alchemical.coupling must have at least one row (pseudo-element)".into()));
        }
        for (b, row) in alchemical.coupling.iter().enumerate() {
            if row.len() != s {
                return Err(Error::InvalidParameter(format!(
                    "density.alchemical.coupling[{b}] has {} entries, expected {s} (one per entry of types)",
                    row.len()
                )));
            }
            if let Some(v) = row.iter().find(|v| !v.is_finite()) {
                return Err(Error::InvalidParameter(format!("density.alchemical.coupling[{b}] contains {v}, not a finite number")));
            }
        }
        Ok(())
    }
}

impl Density {
    /// The alchemical compression, if any.
    pub fn alchemical(&self) -> Option<&Alchemical> {
        match self {
            Density::Gaussian { alchemical, .. } | Density::DiracDelta { alchemical, .. } => alchemical.as_ref(),
        }
    }
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
    /// GAP's radial basis (QUIP/GAP `soap`, its default `EQUISPACED_GAUSS`):
    /// `max_radial + 1` Gaussians of width `density.width` (GAP's
    /// `atom_sigma`) spread over the cutoff and orthonormalised as GAP does,
    /// so that GAP's `n_max` is `max_radial + 1`. Needs a Gaussian density;
    /// a normalised power spectrum with it has GAP's kernel.
    Gap {
        /// Largest radial index (inclusive): GAP's n_max − 1.
        max_radial: usize,
    },
}

impl RadialBasis {
    /// Largest radial index (inclusive).
    pub fn max_radial(&self) -> usize {
        match self {
            RadialBasis::Gto { max_radial, .. } | RadialBasis::Gap { max_radial } => *max_radial,
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
    /// Laplacian eigenstates (spherical Bessel functions), ragged: channel l
    /// keeps the functions whose eigenvalue is at most that of (l = 0,
    /// n = max_radial).
    LaplacianEigenstate {
        /// Largest radial index of l = 0 (inclusive).
        max_radial: usize,
        /// Largest angular channel; default: every channel with a function.
        #[serde(default)]
        max_angular: Option<usize>,
        /// Radius of the basis in Å; default: the cutoff radius.
        #[serde(default)]
        radius: Option<f64>,
        /// Accuracy of the tabulated radial integrals (`null` means 1e-8,
        /// as in featomic). Default 1e-8.
        #[serde(default = "default_accuracy", deserialize_with = "nullable")]
        spline_accuracy: Option<f64>,
    },
    /// featomic's explicit basis: a radial basis per listed angular channel
    /// (keys are l as strings); only the listed channels are computed.
    Explicit {
        /// Radial basis of each channel.
        by_angular: std::collections::BTreeMap<String, ExplicitRadial>,
        /// Spline accuracy for `Gto` channels; `null` evaluates exactly.
        #[serde(default = "default_accuracy", deserialize_with = "nullable")]
        spline_accuracy: Option<f64>,
    },
}

/// One point of a tabulated radial basis (featomic's `Tabulated`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SplinePoint {
    /// Distance in Å.
    pub position: f64,
    /// The radial integrals of every function of the channel at `position`.
    pub values: Vec<f64>,
    /// Their derivatives with respect to the distance (Å⁻¹).
    pub derivatives: Vec<f64>,
}

/// The radial functions of one angular channel of an `Explicit` basis.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ExplicitRadial {
    /// Gaussian-type orbitals of this channel only (`max_radial + 1`
    /// functions, widths and orthonormalisation from this size).
    Gto {
        /// Largest radial index (inclusive).
        max_radial: usize,
        /// Radius in Å; must equal the cutoff radius.
        #[serde(default)]
        radius: Option<f64>,
    },
    /// Radial integrals tabulated as cubic Hermite spline nodes (used with
    /// a `DiracDelta` density).
    Tabulated {
        /// Nodes (sorted on reading).
        points: Vec<SplinePoint>,
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

/// The radial basis of validated settings.
#[derive(Debug, Clone, PartialEq)]
pub enum RadialKind {
    /// `TensorProduct` with `Gto`: `max_radial + 1` functions for every l.
    Gto,
    /// `TensorProduct` with `Gap`: GAP's `max_radial + 1` functions for every l.
    Gap,
    /// Laplacian eigenstates: `sizes[l]` functions of radius `radius` (Å),
    /// tabulated to `accuracy`.
    LaplacianEigenstate {
        /// Functions per channel.
        sizes: Vec<usize>,
        /// Basis radius in Å.
        radius: f64,
        /// Spline accuracy.
        accuracy: f64,
    },
    /// featomic's `Explicit`: a radial basis per channel (None: absent).
    Explicit(Vec<Option<ExplicitRadial>>),
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
    /// The radial basis (`max_radial` is then the largest size − 1).
    pub radial: RadialKind,
    /// Whether the density is a Dirac delta (else a Gaussian of `density_width`).
    pub dirac_delta: bool,
    /// Number of radial functions of each channel l = 0…max_angular.
    pub sizes: Vec<usize>,
    /// Alchemical compression of the neighbour types, if any.
    pub alchemical: Option<Alchemical>,
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
            // serde_path_to_error's path already ends with an unknown key of a
            // plain struct (`cutof`), not with one inside a tagged section
            let last = path.rsplit('.').next().unwrap_or("");
            if path == "." || path.is_empty() {
                path = field.to_string();
            } else if last != field {
                path = format!("{path}.{field}");
            }
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

impl Cutoff {
    /// Checks the radius and the smoothing width (names the field).
    fn validate(&self) -> Result<()> {
        positive("cutoff.radius", self.radius)?;
        if let Smoothing::ShiftedCosine { width } = self.smoothing {
            positive("cutoff.smoothing.width", width)?;
            if width > self.radius {
                return Err(Error::InvalidParameter(format!(
                    "cutoff.smoothing.width ({width} Å) must not exceed cutoff.radius ({} Å)",
                    self.radius
                )));
            }
        }
        Ok(())
    }
}

impl Density {
    /// Checks the width, the centre weight and the scaling (names the
    /// field); returns the Gaussian width (0 for a Dirac delta), centre
    /// weight, scaling and whether the density is a Dirac delta. The
    /// pseudo-elements are checked on their own ([`Alchemical::validate`]).
    fn validate(&self) -> Result<(f64, f64, Option<Scaling>, bool)> {
        let (width, center_atom_weight, scaling, delta) = match self {
            Density::Gaussian { width, center_atom_weight, scaling, .. } => {
                positive("density.width", *width)?;
                (*width, *center_atom_weight, *scaling, false)
            }
            Density::DiracDelta { center_atom_weight, scaling, .. } => (0.0, *center_atom_weight, *scaling, true),
        };
        // a relative weight: beyond 1e10 the power spectrum (its square) and
        // its gradients overflow long before it means anything
        if !(center_atom_weight.is_finite() && center_atom_weight.abs() <= 1e10) {
            return Err(Error::InvalidParameter(format!(
                "density.center_atom_weight must be a finite number of magnitude at most 1e10, got {center_atom_weight:e}"
            )));
        }
        if let Some(Scaling::Willatt2018 { scale, rate, exponent }) = scaling {
            positive("density.scaling.scale", scale)?;
            positive("density.scaling.rate", rate)?;
            if !exponent.is_finite() || exponent < 0.0 {
                return Err(Error::InvalidParameter(format!("density.scaling.exponent must be a non-negative number, got {exponent}")));
            }
        }
        Ok((width, center_atom_weight, scaling, delta))
    }
}

impl RadialBasis {
    /// Checks the GTO size and radius against the cutoff (names the field);
    /// returns (max_radial, radius in Å).
    fn validate(&self, cutoff: &Cutoff) -> Result<(usize, f64)> {
        let (max_radial, radius) = match *self {
            RadialBasis::Gto { max_radial, radius } => (max_radial, radius),
            RadialBasis::Gap { max_radial } => {
                if max_radial > crate::basis::gap::MAX_GAP_RADIAL {
                    return Err(Error::InvalidParameter(format!(
                        "basis.radial.max_radial is {max_radial}; the Gap basis supports at most {} (GAP's n_max = max_radial + 1)",
                        crate::basis::gap::MAX_GAP_RADIAL
                    )));
                }
                return Ok((max_radial, cutoff.radius));
            }
        };
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
        Ok((max_radial, basis_radius))
    }
}

/// The settings of a GTO tensor-product basis (and of the radial
/// spectrum's GTO basis, `max_angular` 0): each section checked on its own.
fn settings(cutoff: &Cutoff, density: &Density, radial: &RadialBasis, max_angular: usize, spline: Option<f64>) -> Result<ExpansionSettings> {
    cutoff.validate()?;
    if let (RadialBasis::Gap { .. }, Density::DiracDelta { .. }) = (radial, density) {
        return Err(Error::InvalidParameter(
            "density.type is DiracDelta: the Gap radial basis needs density.type Gaussian with a width (GAP's atom_sigma, Å)".into(),
        ));
    }
    if let Density::DiracDelta { .. } = density {
        return Err(Error::InvalidParameter(
            "density.type DiracDelta needs a basis of type Explicit with Tabulated channels or LaplacianEigenstate \
             (this combination of basis and density is not supported)"
                .into(),
        ));
    }
    let (width, center_atom_weight, scaling, _) = density.validate()?;
    if max_angular > MAX_ANGULAR_LIMIT {
        return Err(Error::InvalidParameter(format!("basis.max_angular is {max_angular}; at most {MAX_ANGULAR_LIMIT} is supported")));
    }
    let (max_radial, basis_radius) = radial.validate(cutoff)?;
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
        density_width: width,
        center_atom_weight,
        scaling,
        max_angular,
        max_radial,
        basis_radius,
        spline_accuracy: spline,
        radial: match radial {
            RadialBasis::Gto { .. } => RadialKind::Gto,
            RadialBasis::Gap { .. } => RadialKind::Gap,
        },
        dirac_delta: false,
        sizes: vec![max_radial + 1; max_angular + 1],
        alchemical: None,
    })
}

/// Checks the cutoff and density shared by every basis; returns the
/// Gaussian width (0 for a Dirac delta), centre weight and scaling.
fn common(cutoff: &Cutoff, density: &Density) -> Result<(f64, f64, Option<Scaling>, bool)> {
    cutoff.validate()?;
    density.validate()
}

fn accuracy_check(acc: f64) -> Result<()> {
    positive("basis.spline_accuracy", acc)?;
    if acc > MAX_SPLINE_ACCURACY {
        return Err(Error::InvalidParameter(format!("basis.spline_accuracy is {acc:e}; at most {MAX_SPLINE_ACCURACY}")));
    }
    Ok(())
}

fn ragged_settings(cutoff: &Cutoff, density: &Density, basis: &Basis) -> Result<ExpansionSettings> {
    let (width, weight, scaling, delta) = common(cutoff, density)?;
    let (radial, sizes, basis_radius, spline_accuracy) = match basis {
        Basis::TensorProduct { .. } => unreachable!("handled by settings()"),
        Basis::LaplacianEigenstate { max_radial, max_angular, radius, spline_accuracy } => {
            let sizes = crate::basis::laplacian::le_sizes(*max_radial, *max_angular)?;
            let radius = radius.unwrap_or(cutoff.radius);
            positive("basis.radius", radius)?;
            let accuracy = spline_accuracy.unwrap_or(1e-8);
            accuracy_check(accuracy)?;
            (RadialKind::LaplacianEigenstate { sizes: sizes.clone(), radius, accuracy }, sizes, radius, Some(accuracy))
        }
        Basis::Explicit { by_angular, spline_accuracy } => {
            if by_angular.is_empty() {
                return Err(Error::InvalidParameter("basis.by_angular must list at least one angular channel".into()));
            }
            let mut channels: Vec<Option<ExplicitRadial>> = Vec::new();
            for (key, radial) in by_angular {
                let l: usize = key.trim().parse().map_err(|_| {
                    Error::InvalidParameter(format!("basis.by_angular: key \"{key}\" is not an angular channel (a non-negative integer)"))
                })?;
                if l > MAX_ANGULAR_LIMIT {
                    return Err(Error::InvalidParameter(format!("basis.by_angular.{key}: at most l = {MAX_ANGULAR_LIMIT} is supported")));
                }
                if channels.len() <= l {
                    channels.resize(l + 1, None);
                }
                if channels[l].is_some() {
                    return Err(Error::InvalidParameter(format!("basis.by_angular: angular channel {l} is listed twice (\"{key}\")")));
                }
                match radial {
                    ExplicitRadial::Gto { max_radial, radius } => {
                        if delta {
                            return Err(Error::InvalidParameter(format!(
                                "basis.by_angular.{key}: a Gto channel needs a Gaussian density, got DiracDelta (use Tabulated channels)"
                            )));
                        }
                        if *max_radial > MAX_RADIAL_LIMIT {
                            return Err(Error::InvalidParameter(format!("basis.by_angular.{key}.max_radial is {max_radial}; at most {MAX_RADIAL_LIMIT} is supported")));
                        }
                        if let Some(r) = radius {
                            if *r != cutoff.radius {
                                return Err(Error::InvalidParameter(format!(
                                    "basis.by_angular.{key}.radius ({r} Å) must equal cutoff.radius ({} Å) for the Gto basis, as in featomic; leave it out",
                                    cutoff.radius
                                )));
                            }
                        }
                    }
                    ExplicitRadial::Tabulated { points } => {
                        if !delta {
                            return Err(Error::InvalidParameter(format!(
                                "basis.by_angular.{key}: a Tabulated channel needs density.type DiracDelta (the density is inside the table), got Gaussian"
                            )));
                        }
                        if points.len() < 2 {
                            return Err(Error::InvalidParameter(format!("basis.by_angular.{key}.points: at least 2 points are needed, got {}", points.len())));
                        }
                        let first = points.iter().map(|p| p.position).fold(f64::INFINITY, f64::min);
                        let last = points.iter().map(|p| p.position).fold(f64::NEG_INFINITY, f64::max);
                        if first != 0.0 || !(last >= cutoff.radius) {
                            return Err(Error::InvalidParameter(format!(
                                "basis.by_angular.{key}.points must cover [0, cutoff.radius = {} Å] starting exactly at 0, got [{first}, {last}]",
                                cutoff.radius
                            )));
                        }
                        if points[0].values.is_empty() {
                            return Err(Error::InvalidParameter(format!("basis.by_angular.{key}.points[0].values is empty")));
                        }
                    }
                }
                channels[l] = Some(radial.clone());
            }
            let sizes = channels
                .iter()
                .map(|c| match c {
                    None => 0,
                    Some(ExplicitRadial::Gto { max_radial, .. }) => max_radial + 1,
                    Some(ExplicitRadial::Tabulated { points }) => points[0].values.len(),
                })
                .collect();
            if let Some(acc) = spline_accuracy {
                accuracy_check(*acc)?;
            }
            (RadialKind::Explicit(channels), sizes, cutoff.radius, *spline_accuracy)
        }
    };
    let sizes: Vec<usize> = sizes;
    if sizes.len() > MAX_ANGULAR_LIMIT + 1 {
        return Err(Error::InvalidParameter(format!(
            "the basis reaches l = {}; at most {MAX_ANGULAR_LIMIT} is supported (lower max_radial or set max_angular)",
            sizes.len() - 1
        )));
    }
    let n_max = sizes.iter().copied().max().unwrap_or(1).max(1);
    Ok(ExpansionSettings {
        cutoff: cutoff.radius,
        smoothing: cutoff.smoothing,
        density_width: width,
        center_atom_weight: weight,
        scaling,
        max_angular: sizes.len() - 1,
        max_radial: n_max - 1,
        basis_radius,
        spline_accuracy,
        radial,
        dirac_delta: delta,
        sizes,
        alchemical: None,
    })
}

impl SoapHypers {
    /// Parses and validates featomic-style JSON.
    pub fn from_json(what: &str, json: &str) -> Result<(SoapHypers, ExpansionSettings)> {
        let h: SoapHypers = parse_json(what, json)?;
        let mut s = match &h.basis {
            Basis::TensorProduct { max_angular, radial, spline_accuracy } => settings(&h.cutoff, &h.density, radial, *max_angular, *spline_accuracy)?,
            other => ragged_settings(&h.cutoff, &h.density, other)?,
        };
        if let Some(alchemical) = h.density.alchemical() {
            alchemical.validate()?;
            s.alchemical = Some(alchemical.clone());
        }
        Ok((h, s))
    }
}

impl RadialSpectrumHypers {
    /// Parses and validates featomic-style JSON.
    pub fn from_json(what: &str, json: &str) -> Result<(RadialSpectrumHypers, ExpansionSettings)> {
        // a ragged or explicit expansion basis ("type": LaplacianEigenstate /
        // Explicit) is accepted too: only its l = 0 channel is used. A GTO
        // TensorProduct basis has featomic's own radial-spectrum form,
        // {"radial": …}: power-spectrum hypers given here by mistake are refused
        let value: serde_json::Value = serde_json::from_str(json).unwrap_or(serde_json::Value::Null);
        if let Some(kind) = value.get("basis").and_then(|b| b.get("type")) {
            if kind.as_str() == Some("TensorProduct") {
                return Err(Error::InvalidParameter(
                    "basis: the radial spectrum takes featomic's {\"radial\": {\"type\": \"Gto\", …}} basis (or a LaplacianEigenstate / Explicit basis, \
                     whose l = 0 channel is used), not a TensorProduct basis with max_angular: these look like power-spectrum hyper-parameters"
                        .into(),
                ));
            }
            let (h, mut s) = SoapHypers::from_json(what, json)?;
            if s.sizes[0] == 0 {
                return Err(Error::InvalidParameter("basis: the radial spectrum needs the angular channel l = 0".into()));
            }
            s.max_angular = 0;
            s.sizes.truncate(1);
            s.max_radial = s.sizes[0] - 1;
            match &mut s.radial {
                RadialKind::LaplacianEigenstate { sizes, .. } => sizes.truncate(1),
                RadialKind::Explicit(channels) => channels.truncate(1),
                RadialKind::Gto | RadialKind::Gap => {}
            }
            let basis = match h.basis {
                Basis::TensorProduct { radial, spline_accuracy, .. } => RadialOnlyBasis { radial, spline_accuracy },
                _ => RadialOnlyBasis { radial: RadialBasis::Gto { max_radial: s.max_radial, radius: None }, spline_accuracy: s.spline_accuracy },
            };
            return Ok((RadialSpectrumHypers { cutoff: h.cutoff, density: h.density, basis }, s));
        }
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
