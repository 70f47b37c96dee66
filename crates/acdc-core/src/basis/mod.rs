//! Radial bases and their integrals with a Gaussian density.
//!
//! A [`RadialIntegral`] gives, for a pair distance r, the radial part
//! I_nl(r) of the expansion coefficients ⟨n l m|ρ⟩ = I_nl(r)·Y_l^m(r̂) for
//! all (n, l) at once (SPEC.md §2). [`gto::GtoRadialIntegral`] evaluates it
//! exactly; [`SplinedRadialIntegral`] tabulates any radial integral with
//! cubic Hermite splines, per angular channel l as featomic does.

pub mod gto;

pub use self::gto::GtoRadialIntegral;

use crate::error::Result;
use crate::math::spline::HermiteSpline;

/// Radial integral I_nl(r) of a basis with the neighbour Gaussian density,
/// all (n, l) at once.
///
/// Implementations are immutable after construction and can be shared by
/// many threads; `compute` must not allocate.
pub trait RadialIntegral: Send + Sync {
    /// The maximal angular channel l_max.
    fn max_angular(&self) -> usize;

    /// Number of radial functions n_max = max_radial + 1.
    fn size(&self) -> usize;

    /// Values I_nl(r) and optionally derivatives dI_nl/dr at distance
    /// `r` ≥ 0 (Å), laid out `[l * size() + n]`, each of length
    /// (l_max + 1)·size(). Values have units of Å^(3/2)·(density units), the
    /// derivatives those of the values per Å.
    fn compute(&self, r: f64, values: &mut [f64], derivatives: Option<&mut [f64]>);
}

/// A radial integral tabulated on [0, cutoff] with cubic Hermite splines,
/// one spline per angular channel l (each with its own uniform grid, chosen
/// as featomic does so that results agree with featomic's splines).
#[derive(Debug, Clone)]
pub struct SplinedRadialIntegral {
    max_angular: usize,
    size: usize,
    splines: Vec<HermiteSpline>,
    /// `shares_grid[l]`: spline l has the same grid as spline l − 1, so the
    /// interval lookup can be reused
    shares_grid: Vec<bool>,
}

impl SplinedRadialIntegral {
    /// Tabulates `exact` on [0, `cutoff`] (Å) until the mean absolute or
    /// mean relative error of the values at the interval midpoints is below
    /// `accuracy`, separately for every l.
    ///
    /// Errors: `accuracy` not positive and finite or `cutoff` not positive
    /// (invalid parameter); accuracy not reachable with 10 000 points
    /// (numerical).
    pub fn new(exact: &dyn RadialIntegral, cutoff: f64, accuracy: f64) -> Result<SplinedRadialIntegral> {
        if !(cutoff > 0.0) || !cutoff.is_finite() {
            return Err(crate::Error::InvalidParameter(format!(
                "cutoff must be a positive number of Å to build radial splines, got {cutoff}"
            )));
        }
        let max_angular = exact.max_angular();
        let size = exact.size();
        let groups = vec![size; max_angular + 1];
        let splines = HermiteSpline::with_accuracy_grouped(0.0, cutoff, &groups, accuracy, |r, values, derivatives| {
            exact.compute(r, values, Some(derivatives));
        })?;
        let shares_grid = (0..=max_angular).map(|l| l > 0 && splines[l].len() == splines[l - 1].len()).collect();
        Ok(SplinedRadialIntegral { max_angular, size, splines, shares_grid })
    }

    /// Number of grid points of the spline of angular channel `l`.
    pub fn grid_size(&self, l: usize) -> usize {
        self.splines[l].len()
    }
}

impl RadialIntegral for SplinedRadialIntegral {
    fn max_angular(&self) -> usize {
        self.max_angular
    }

    fn size(&self) -> usize {
        self.size
    }

    fn compute(&self, r: f64, values: &mut [f64], mut derivatives: Option<&mut [f64]>) {
        let n = self.size;
        let total = (self.max_angular + 1) * n;
        assert!(values.len() >= total, "values has {} entries, expected {total}", values.len());
        if let Some(d) = derivatives.as_deref() {
            assert!(d.len() >= total, "derivatives has {} entries, expected {total}", d.len());
        }
        let mut location = self.splines[0].locate(r);
        for (l, spline) in self.splines.iter().enumerate() {
            if !self.shares_grid[l] && l > 0 {
                location = spline.locate(r);
            }
            let out = &mut values[l * n..(l + 1) * n];
            match derivatives.as_deref_mut() {
                Some(d) => spline.evaluate(&location, out, Some(&mut d[l * n..(l + 1) * n])),
                None => spline.evaluate(&location, out, None),
            }
        }
    }
}
