//! GAP's SOAP radial basis (QUIP/GAP `descriptors.F90`, `soap` with its
//! default `EQUISPACED_GAUSS` basis), so that a power spectrum with
//! `radial: {type: "Gap"}` has, after normalisation, the dot products of
//! GAP's `soap` descriptor (docs/MODELS.md, "GAP's radial basis, native").
//!
//! GAP expands the density in n_max Gaussians of width σ (the atom width,
//! `atom_sigma` = `density.width`) centred at r_a = a·h, a = 0…n_max−1,
//! h = r_b/n_max, r_b = r_c + σ·√(2·10·ln 10) (GAP's `basis_error_exponent`
//! 10), α = 1/(2σ²). A neighbour Gaussian at distance r contributes to
//! channel l
//!
//!   f_la(r) = exp(−α(r² + r_a²))·i_l(2α r r_a) = exp(−α(r − r_a)²)·[e^(−x) i_l(x)],
//!
//! x = 2α r r_a, i_l the modified spherical Bessel function of the first
//! kind (the scaled form never overflows, whatever σ and r_c). The radial
//! functions are then I_lb(r) = Σ_a f_la(r)·T_ab with T = C⁻¹L, where
//! C_ab = exp(−α(r_a − r_b)²) and L is the lower Cholesky factor of the
//! overlap matrix S of the basis Gaussians (S = L Lᵀ, S below in closed form).
//! GAP's constant prefactors are left out: a normalised kernel does not see
//! them. `scripts/reference/gap_radial_table.py` is the independent numpy
//! transcription the tests compare with.

use nalgebra::DMatrix;

use super::RadialIntegral;
use crate::error::{Error, Result};
use crate::math::bessel::scaled_modified_spherical_in;

/// Largest radial index of the GAP basis (n_max = 24 Gaussians). The
/// transform also needs the Gaussians far enough apart for C and S to be
/// invertible; that is checked separately (it depends on σ and r_c).
pub const MAX_GAP_RADIAL: usize = 23;
/// Largest angular channel the GAP basis evaluates (the stack buffers of
/// [`GapRadialIntegral::compute`] are sized for it).
pub const MAX_GAP_ANGULAR: usize = 30;
/// Largest accepted condition number of C and S: beyond it, T = C⁻¹L loses
/// more than 4 of the 16 digits and no longer reproduces GAP.
const MAX_CONDITION: f64 = 1e12;
/// GAP's `basis_error_exponent` (its default, not exposed by acdc).
const BASIS_ERROR_EXPONENT: f64 = 10.0;

extern "C" {
    #[link_name = "erf"]
    fn c_erf(x: f64) -> f64;
}

/// The error function of the platform's C library.
fn erf(x: f64) -> f64 {
    // SAFETY: erf is a pure C99 function of one double, defined for every input.
    unsafe { c_erf(x) }
}

/// GAP's radial basis with a Gaussian density: `max_radial + 1` functions
/// for every angular channel l = 0…`max_angular`.
#[derive(Debug, Clone)]
pub struct GapRadialIntegral {
    max_angular: usize,
    n_max: usize,
    alpha: f64,
    /// r_a in Å.
    centres: Vec<f64>,
    /// T = C⁻¹L, row-major `[a][b]`.
    transform: Vec<f64>,
}

impl GapRadialIntegral {
    /// GAP's basis for a cutoff `cutoff` (Å) and atom width `sigma` (Å).
    ///
    /// Errors (naming the hyper-parameter): max_radial above
    /// [`MAX_GAP_RADIAL`], max_angular above [`MAX_GAP_ANGULAR`], a
    /// non-positive width or cutoff, or Gaussians so close together
    /// (max_radial large for this σ and r_c) that C or S is numerically
    /// singular.
    pub fn new(max_radial: usize, max_angular: usize, cutoff: f64, sigma: f64) -> Result<GapRadialIntegral> {
        if max_radial > MAX_GAP_RADIAL {
            return Err(Error::InvalidParameter(format!(
                "basis.radial.max_radial is {max_radial}; the Gap basis supports at most {MAX_GAP_RADIAL} (GAP's n_max = max_radial + 1 ≤ {})",
                MAX_GAP_RADIAL + 1
            )));
        }
        if max_angular > MAX_GAP_ANGULAR {
            return Err(Error::InvalidParameter(format!("basis.max_angular is {max_angular}; at most {MAX_GAP_ANGULAR} is supported")));
        }
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(Error::InvalidParameter(format!("density.width must be a positive finite number of Å for the Gap basis, got {sigma}")));
        }
        if !(cutoff.is_finite() && cutoff > 0.0) {
            return Err(Error::InvalidParameter(format!("cutoff.radius must be a positive finite number, got {cutoff}")));
        }
        let n_max = max_radial + 1;
        let alpha = 0.5 / (sigma * sigma);
        let r_b = cutoff + sigma * (2.0 * BASIS_ERROR_EXPONENT * std::f64::consts::LN_10).sqrt();
        let centres: Vec<f64> = (0..n_max).map(|a| a as f64 * (r_b / n_max as f64)).collect();
        let c = DMatrix::from_fn(n_max, n_max, |i, j| (-alpha * (centres[i] - centres[j]).powi(2)).exp());
        let s = DMatrix::from_fn(n_max, n_max, |i, j| {
            let (ri, rj) = (centres[j], centres[i]);
            ((-alpha * (ri * ri + rj * rj)).exp() * std::f64::consts::SQRT_2 * alpha.powf(1.5) * (ri + rj)
                + alpha
                    * (-0.5 * alpha * (ri - rj).powi(2)).exp()
                    * std::f64::consts::PI.sqrt()
                    * (1.0 + alpha * (ri + rj).powi(2))
                    * (1.0 + erf((alpha / 2.0).sqrt() * (ri + rj))))
                / (128.0 * alpha.powi(5)).sqrt()
        });
        let too_close = |what: &str, condition: f64| {
            Error::InvalidParameter(format!(
                "basis.radial.max_radial is {max_radial}: GAP's {n_max} Gaussians of width density.width = {sigma} Å, {:.3} Å apart, \
                 overlap too much for the Gap basis to be computed accurately (condition number of {what} {condition:.1e}); \
                 use a smaller max_radial or a smaller density.width",
                r_b / n_max as f64
            ))
        };
        for (what, m) in [("C", &c), ("S", &s)] {
            let values = m.clone().symmetric_eigenvalues();
            let (lo, hi) = values.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v.abs())));
            let condition = if lo > 0.0 { hi / lo } else { f64::INFINITY };
            if !(condition <= MAX_CONDITION) {
                return Err(too_close(what, condition));
            }
        }
        let lower = nalgebra::Cholesky::new(s).ok_or_else(|| too_close("S", f64::INFINITY))?.l();
        let t = c.lu().solve(&lower).ok_or_else(|| too_close("C", f64::INFINITY))?;
        let transform = (0..n_max).flat_map(|a| (0..n_max).map(move |b| (a, b))).map(|(a, b)| t[(a, b)]).collect::<Vec<f64>>();
        if transform.iter().any(|v| !v.is_finite()) {
            return Err(too_close("C", f64::INFINITY));
        }
        Ok(GapRadialIntegral { max_angular, n_max, alpha, centres, transform })
    }

    /// The centres r_a of GAP's Gaussians (Å).
    pub fn centres(&self) -> &[f64] {
        &self.centres
    }
}

impl RadialIntegral for GapRadialIntegral {
    fn max_angular(&self) -> usize {
        self.max_angular
    }

    fn size(&self) -> usize {
        self.n_max
    }

    fn compute(&self, r: f64, values: &mut [f64], derivatives: Option<&mut [f64]>) {
        const NA: usize = MAX_GAP_RADIAL + 1;
        const NL: usize = MAX_GAP_ANGULAR + 1;
        let (n, l_count, alpha) = (self.n_max, self.max_angular + 1, self.alpha);
        // f[l][a] and df/dr[l][a]
        let mut f = [[0.0f64; NA]; NL];
        let mut df = [[0.0f64; NA]; NL];
        let mut bessel = [0.0f64; NL + 1];
        for (a, &ra) in self.centres.iter().enumerate() {
            let gauss = (-alpha * (r - ra) * (r - ra)).exp();
            let x = 2.0 * alpha * r * ra;
            scaled_modified_spherical_in(x, &mut bessel[..l_count + 1]);
            for l in 0..l_count {
                f[l][a] = gauss * bessel[l];
                // i_l'(x) = i_(l+1)(x) + l/x·i_l(x); at x = 0 only i_1' = 1/3 survives
                let di = if x == 0.0 {
                    if l == 1 { 1.0 / 3.0 } else { 0.0 }
                } else {
                    bessel[l + 1] + l as f64 / x * bessel[l]
                };
                df[l][a] = -2.0 * alpha * r * f[l][a] + gauss * 2.0 * alpha * ra * di;
            }
        }
        for l in 0..l_count {
            let out = &mut values[l * n..(l + 1) * n];
            for (b, v) in out.iter_mut().enumerate() {
                *v = (0..n).map(|a| f[l][a] * self.transform[a * n + b]).sum();
            }
        }
        if let Some(derivatives) = derivatives {
            for l in 0..l_count {
                let out = &mut derivatives[l * n..(l + 1) * n];
                for (b, v) in out.iter_mut().enumerate() {
                    *v = (0..n).map(|a| df[l][a] * self.transform[a * n + b]).sum();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use serde_json::Value;

    use super::*;
    use crate::calculators::tests_utils::{finite_differences_positions, finite_differences_strain};
    use crate::calculators::{Calculator, ComputeOptions, SoapPowerSpectrum};
    use crate::system::System;

    /// test/fixtures/gap/gap_basis.json.gz (scripts/reference/gap_basis_fixtures.py).
    fn fixture() -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/gap/gap_basis.json.gz");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut text).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn numbers(v: &Value) -> Vec<f64> {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
    }

    fn hypers(setting: &Value, spline: &str) -> String {
        format!(
            r#"{{"cutoff": {{"radius": {}, "smoothing": {{"type": "ShiftedCosine", "width": {}}}}},
                "density": {{"type": "Gaussian", "width": {}}},
                "basis": {{"type": "TensorProduct", "max_angular": {}, "radial": {{"type": "Gap", "max_radial": {}}}, "spline_accuracy": {spline}}}}}"#,
            setting["cutoff"],
            setting["width"],
            setting["atom_sigma"],
            setting["l_max"],
            setting["n_max"].as_u64().unwrap() - 1
        )
    }

    fn systems(f: &Value) -> Vec<System> {
        f["systems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                let p = numbers(&v["positions"]);
                let c = numbers(&v["cell"]);
                let types = v["types"].as_array().unwrap().iter().map(|t| t.as_i64().unwrap() as i32).collect();
                System::new(types, p.chunks(3).map(|x| [x[0], x[1], x[2]]).collect(), [[c[0], c[1], c[2]], [c[3], c[4], c[5]], [c[6], c[7], c[8]]], [true; 3])
                    .unwrap()
            })
            .collect()
    }

    /// The exact radial functions equal the numpy transcription
    /// (gap_radial_table.py) at its nodes: |Δ| ≤ 1e-10 × the channel's
    /// largest |value| (values) or |derivative| (derivatives).
    #[test]
    fn equals_the_numpy_table() {
        let f = fixture();
        for case in f["cases"].as_array().unwrap() {
            let s = &case["settings"];
            let (n_max, l_max) = (s["n_max"].as_u64().unwrap() as usize, s["l_max"].as_u64().unwrap() as usize);
            let gap = GapRadialIntegral::new(n_max - 1, l_max, s["cutoff"].as_f64().unwrap(), s["atom_sigma"].as_f64().unwrap()).unwrap();
            let (mut v, mut d) = (vec![0.0; (l_max + 1) * n_max], vec![0.0; (l_max + 1) * n_max]);
            let mut worst = 0.0f64;
            for l in 0..=l_max {
                let points = case["radial"][l.to_string()].as_array().unwrap();
                let rows: Vec<(f64, Vec<f64>, Vec<f64>)> = points.iter().map(|p| (p[0].as_f64().unwrap(), numbers(&p[1]), numbers(&p[2]))).collect();
                let value_scale = rows.iter().flat_map(|r| r.1.iter()).fold(0.0f64, |m, x| m.max(x.abs()));
                let derivative_scale = rows.iter().flat_map(|r| r.2.iter()).fold(0.0f64, |m, x| m.max(x.abs()));
                for (r, values, derivatives) in &rows {
                    gap.compute(*r, &mut v, Some(&mut d));
                    for b in 0..n_max {
                        let (dv, dd) = ((v[l * n_max + b] - values[b]).abs() / value_scale, (d[l * n_max + b] - derivatives[b]).abs() / derivative_scale);
                        worst = worst.max(dv).max(dd);
                        assert!(dv <= 1e-10 && dd <= 1e-10, "n_max {n_max}, l {l}, r {r}, b {b}: {} vs {values:?}", v[l * n_max + b]);
                    }
                }
            }
            eprintln!("GAP basis n_max {n_max}: largest relative difference from numpy {worst:.1e}");
        }
    }

    /// Normalised power-spectrum rows of the centres of type `z`, in the
    /// order of `centres` ([system, atom] pairs).
    fn normalised_rows(tm: &crate::tensor::TensorMap, z: i32, centres: &[(usize, usize)]) -> Vec<Vec<f64>> {
        let ct = tm.keys.dimension("center_type").unwrap();
        let mut rows: Vec<Vec<f64>> = vec![Vec::new(); centres.len()];
        for (k, key) in tm.keys.rows().enumerate() {
            if key[ct] != z {
                continue;
            }
            let block = &tm.blocks[k];
            let np = block.properties.count();
            let (ds, da) = (block.samples.dimension("system").unwrap(), block.samples.dimension("atom").unwrap());
            let mut here = vec![vec![0.0; np]; centres.len()];
            for (r, sample) in block.samples.rows().enumerate() {
                let at = centres.iter().position(|&c| c == (sample[ds] as usize, sample[da] as usize)).expect("centre in the fixture");
                here[at].copy_from_slice(&block.values[r * np..(r + 1) * np]);
            }
            for (row, h) in rows.iter_mut().zip(here) {
                row.extend(h);
            }
        }
        for row in rows.iter_mut() {
            let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
        rows
    }

    /// The normalised kernel of acdc's power spectrum with the Gap basis
    /// equals GAP's own (quippy's soap descriptor, ζ = 1) on Cu–Au cells:
    /// ≤ 1e-10 with exact radial integrals (`spline_accuracy: null`; measured
    /// 4e-15 and 1e-14); with the default 1e-8 splines the kernel carries
    /// their error, ≤ 100 × spline_accuracy (featomic's rule bounds the
    /// *mean* error at the midpoints, not the largest; measured 5e-8 and 2e-7).
    #[test]
    fn kernel_equals_quippy() {
        let f = fixture();
        let systems = systems(&f);
        for case in f["cases"].as_array().unwrap() {
            for (spline, tol) in [("null", 1e-10), ("1e-8", 100.0 * 1e-8)] {
                let calc = SoapPowerSpectrum::new(&hypers(&case["settings"], spline)).unwrap();
                let tm = calc.compute(&systems, &ComputeOptions::default()).unwrap();
                for z in [29, 79] {
                    let want = &case["kernels"][z.to_string()];
                    let centres: Vec<(usize, usize)> = want["centres"].as_array().unwrap().iter().map(|c| (c[0].as_u64().unwrap() as usize, c[1].as_u64().unwrap() as usize)).collect();
                    let kernel = numbers(&want["kernel"]);
                    let rows = normalised_rows(&tm, z, &centres);
                    let mut worst = 0.0f64;
                    for i in 0..centres.len() {
                        for j in 0..centres.len() {
                            let k: f64 = rows[i].iter().zip(&rows[j]).map(|(a, b)| a * b).sum();
                            worst = worst.max((k - kernel[i * centres.len() + j]).abs());
                        }
                    }
                    eprintln!("GAP kernel, Z {z}, spline {spline}: largest |k_acdc − k_quippy| {worst:.1e}");
                    assert!(worst <= tol, "Z {z}, spline_accuracy {spline}: largest kernel difference {worst:e} > {tol:e}");
                }
            }
        }
    }

    /// Position and strain gradients of the power spectrum with the Gap
    /// basis (splined, the default, and exact) against central differences.
    #[test]
    fn power_spectrum_gradients() {
        let f = fixture();
        let mut small = systems(&f).swap_remove(0);
        // 8 atoms keep the finite differences quick
        small.positions.truncate(8);
        small.types.truncate(8);
        let small = System::new(small.types.clone(), small.positions.clone(), small.cell, [true; 3]).unwrap();
        let setting = &f["cases"][1]["settings"];
        for spline in ["null", "1e-8"] {
            let calc = SoapPowerSpectrum::new(&hypers(setting, spline)).unwrap();
            finite_differences_positions(&calc, &small, 1e-6);
            finite_differences_strain(&calc, &small, 1e-6);
        }
    }

    /// Bad hyper-parameters name the field.
    #[test]
    fn bad_hypers() {
        let good = hypers(&fixture()["cases"][0]["settings"], "1e-8");
        assert!(SoapPowerSpectrum::new(&good).is_ok());
        let err = |json: String| SoapPowerSpectrum::new(&json).err().expect("refused").to_string();
        let e = err(good.replace("\"max_radial\": 5", "\"max_radial\": 24"));
        assert!(e.contains("basis.radial.max_radial is 24") && e.contains("at most 23"), "{e}");
        let e = err(good.replace("\"max_radial\": 5", "\"max_radial\": -1"));
        assert!(e.contains("basis") && e.contains("-1") && e.contains("usize"), "{e}");
        let e = err(good.replace("\"width\": 0.5", "\"sigma\": 0.5"));
        assert!(e.contains("density") && e.contains("width"), "{e}");
        let e = err(good.replace("{\"type\": \"Gaussian\", \"width\": 0.5}", "{\"type\": \"DiracDelta\"}"));
        assert!(e.contains("density.type is DiracDelta") && e.contains("Gap radial basis needs density.type Gaussian"), "{e}");
        let e = err(good.replace("\"max_radial\": 5}", "\"max_radial\": 5, \"radius\": 5}"));
        assert!(e.contains("radius"), "{e}");
        let e = err(good.replace("\"width\": 0.5}", "\"width\": 0.0}"));
        assert!(e.contains("density.width must be a positive finite number"), "{e}");
        let e = err(good.replace("\"max_radial\": 5", "\"max_radial\": 23").replace("\"width\": 0.5}", "\"width\": 1.5}"));
        assert!(e.contains("overlap too much"), "{e}");
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let gap = GapRadialIntegral::new(5, 6, 5.0, 0.5).unwrap();
        let size = 6 * 7;
        let (mut v, mut d, mut vp, mut vm) = (vec![0.0; size], vec![0.0; size], vec![0.0; size], vec![0.0; size]);
        for &r in &[0.0, 1e-3, 0.7, 2.5, 4.99] {
            gap.compute(r, &mut v, Some(&mut d));
            let h = 1e-6;
            gap.compute(r + h, &mut vp, None);
            gap.compute((r - h).max(0.0), &mut vm, None);
            let span = if r >= h { 2.0 * h } else { r + h };
            for k in 0..size {
                let fd = (vp[k] - vm[k]) / span;
                let tol = if r >= h { 1e-7 } else { 1e-5 };
                assert!((fd - d[k]).abs() <= tol * (1.0 + d[k].abs()), "r {r} k {k}: {fd} vs {}", d[k]);
            }
        }
    }

    #[test]
    fn refuses_bad_sizes() {
        let e = GapRadialIntegral::new(24, 4, 5.0, 0.5).unwrap_err().to_string();
        assert!(e.contains("basis.radial.max_radial is 24") && e.contains("at most 23"), "{e}");
        // 24 Gaussians 0.22 Å apart, 1 Å wide: C is singular
        let e = GapRadialIntegral::new(23, 4, 5.0, 1.0).unwrap_err().to_string();
        assert!(e.contains("overlap too much") && e.contains("density.width = 1"), "{e}");
    }
}
