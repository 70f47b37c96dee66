//! The checks a potential's settings and numbers must pass, shared by
//! [`Potential::fit`](super::potential::Potential::fit) (before the work) and
//! the model file reader ([`super::model_file::from_bytes`], at load): a
//! model file is accepted only when `fit` could have written it. The CRC of
//! a model file detects corruption, not tampering (anyone can recompute it),
//! so every field is checked for meaning here, and sizes are checked against
//! bounds before anything is allocated from them.
use rayon::prelude::*;

use super::potential::{Kind, Potential, Prediction, Targets};
use crate::error::{Error, Result};
use crate::system::System;

/// Largest kernel exponent ζ accepted: k = δ² (x̂·x̂')^ζ with ζ in the
/// hundreds is already a delta function on the sphere (GAP uses 2 to 8).
pub const MAX_ZETA: u32 = 100;
/// Largest |E|/N of a training energy, eV per atom: all-electron total
/// energies of the heaviest elements are about 1e6 eV per atom, so a larger
/// target is a unit or parsing mistake.
pub const MAX_ENERGY_PER_ATOM: f64 = 1e7;
/// Largest force component of a training target, eV/Å.
pub const MAX_FORCE: f64 = 1e6;
/// Largest stress component of a training target, eV/Å³ (1.6e8 GPa).
pub const MAX_STRESS: f64 = 1e6;

/// `v` must be finite and > 0.
pub fn check_positive(name: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v > 0.0) {
        return Err(Error::InvalidParameter(format!("{name} = {v} (expected a positive number)")));
    }
    Ok(())
}

/// The GPR kernel settings: ζ an integer in 1..=[`MAX_ZETA`] (given as a
/// float so that a file's 2.5 is refused, not truncated), δ > 0 (eV),
/// jitter ≥ 0 (relative to δ²), all finite.
pub fn check_kernel(zeta: f64, delta: f64, jitter: f64) -> Result<u32> {
    if !(zeta.is_finite() && zeta.fract() == 0.0 && zeta >= 1.0 && zeta <= MAX_ZETA as f64) {
        return Err(Error::InvalidParameter(format!("kernel.zeta = {zeta} (expected an integer from 1 to {MAX_ZETA})")));
    }
    check_positive("kernel.delta", delta)?;
    if !(jitter.is_finite() && jitter >= 0.0) {
        return Err(Error::InvalidParameter(format!("jitter = {jitter} (expected a number ≥ 0)")));
    }
    Ok(zeta as u32)
}

/// The relative jitter (× δ²) of a term of scale `delta` (eV) from an
/// absolute one, eV² (GAP's `sparse_jitter`, one number for every term):
/// `absolute`/δ². `absolute` must be finite and ≥ 0, δ positive.
pub fn relative_jitter(absolute: f64, delta: f64) -> Result<f64> {
    if !(absolute.is_finite() && absolute >= 0.0) {
        return Err(Error::InvalidParameter(format!("sparseJitter = {absolute} (expected a number ≥ 0, eV²)")));
    }
    check_positive("delta", delta)?;
    Ok(absolute / (delta * delta))
}

/// The ridge parameter of the linear model: finite and ≥ 0.
pub fn check_regularizer(regularizer: f64) -> Result<()> {
    if !(regularizer.is_finite() && regularizer >= 0.0) {
        return Err(Error::InvalidParameter(format!("regularizer = {regularizer} (expected a number ≥ 0)")));
    }
    Ok(())
}

/// A reference energy (eV per atom of species `z`): finite.
pub fn check_e0(z: i32, v: f64) -> Result<()> {
    if !v.is_finite() {
        return Err(Error::InvalidParameter(format!("e0[{z}] = {v} (expected a finite number, eV)")));
    }
    Ok(())
}

/// Training targets must be finite (checked by the caller) and of a
/// physical magnitude: a finite 1e300 eV would make every square in the
/// fit overflow to infinity. Names the frame and the value.
pub fn check_target_magnitudes(systems: &[System], targets: &Targets) -> Result<()> {
    for (k, (s, &e)) in systems.iter().zip(&targets.energy).enumerate() {
        let per_atom = e / s.size().max(1) as f64;
        if per_atom.abs() > MAX_ENERGY_PER_ATOM {
            return Err(Error::InvalidParameter(format!(
                "systems[{k}]: energy = {e:e} eV is {per_atom:.3e} eV per atom, beyond ±{MAX_ENERGY_PER_ATOM:e} (check the units and the energy key of this frame)"
            )));
        }
    }
    if let Some(forces) = &targets.forces {
        for (k, f) in forces.iter().enumerate() {
            if let Some(p) = f.iter().position(|v| v.abs() > MAX_FORCE) {
                return Err(Error::InvalidParameter(format!(
                    "systems[{k}]: forces[{p}] = {:e} eV/Å, beyond ±{MAX_FORCE:e} (check the units and the forces key of this frame)",
                    f[p]
                )));
            }
        }
    }
    if let Some(stress) = &targets.stress {
        for (k, t) in stress.iter().enumerate() {
            if let Some(t) = t {
                if let Some(p) = t.iter().position(|v| v.abs() > MAX_STRESS) {
                    return Err(Error::InvalidParameter(format!(
                        "systems[{k}]: stress[{p}] = {:e} eV/Å³, beyond ±{MAX_STRESS:e} (check the units and the stress key of this frame)",
                        t[p]
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Every value of a prediction must be finite; `offset` is the index of the
/// first system (for the error). A model whose numbers passed the load checks
/// can still overflow on an extreme structure: that is an error, never a NaN
/// in an answer.
pub fn check_prediction(p: &Prediction, offset: usize) -> Result<()> {
    let bad = |what: &str, k: usize, v: f64| {
        Err(Error::Numerical(format!(
            "systems[{}]: the predicted {what} is {v}, not a finite number (the model's weights or this structure are out of range)",
            k + offset
        )))
    };
    for (k, &e) in p.energy.iter().enumerate() {
        if !e.is_finite() {
            return bad("energy", k, e);
        }
    }
    for (k, f) in p.forces.iter().enumerate() {
        if let Some(&v) = f.iter().find(|v| !v.is_finite()) {
            return bad("force", k, v);
        }
    }
    for (k, s) in p.stress.iter().enumerate() {
        if let Some(&v) = s.iter().find(|v| !v.is_finite()) {
            return bad("stress", k, v);
        }
    }
    for (k, &v) in p.variance.iter().enumerate() {
        if !v.is_finite() {
            return bad("variance", k, v);
        }
    }
    Ok(())
}

/// Checks of a loaded potential that need its built state: the hyper-
/// parameters give the stored block size for every species (a model whose
/// hypers do not match its arrays fails here, not at every predict), the
/// factors are triangular with a positive diagonal, and for the GPR the
/// stored Cholesky factor is that of K_MM + jitter·δ²·I recomputed from the
/// sparse environments, ζ, δ and jitter (an edit of any of them is refused).
pub fn check_loaded(p: &Potential) -> Result<()> {
    let bad = Error::InvalidParameter;
    // the neighbour types are the species, or with density.alchemical its
    // pseudo-element indices: anything else would pair the wrong columns
    let expected = super::atomic_features::FeatureLayout::for_calculator(p.calculator(), p.layout.species.clone())?;
    if expected.neighbors != p.layout.neighbors {
        return Err(bad(format!(
            "neighbor_species = {:?}, but the hypers and species give {:?}",
            p.layout.neighbors, expected.neighbors
        )));
    }
    let bs = p.layout.block_size;
    // a ν = 3 model: assemble already compared the bispectrum's feature count with block_size
    let probed = if p.bispectrum().is_some() { Vec::new() } else { probe_block_sizes(p)? };
    for (z, size) in probed {
        if size != bs {
            return Err(bad(format!(
                "the hypers give {size} properties per block for species {z}, the file's block_size is {bs}: the hypers do not match the arrays"
            )));
        }
    }
    let n = p.n_params();
    for k in 0..n {
        let row = &p.r_factor[k * n..(k + 1) * n];
        if !(row[k] != 0.0) || row[..k].iter().any(|&v| v != 0.0) {
            return Err(bad(format!("r_factor is not upper triangular with a non-zero diagonal (row {k})")));
        }
    }
    if p.kind == Kind::SparseGpr {
        check_cholesky(p).map_err(bad)?;
    }
    Ok(())
}

/// (species, properties per block) the calculator gives each species of the
/// model, from one isolated atom of each.
fn probe_block_sizes(p: &Potential) -> Result<Vec<(i32, usize)>> {
    use crate::calculators::{Calculator, ComputeOptions};
    let ns = p.layout.species.len();
    // far enough apart that no pair is within any cutoff the hypers accept
    let positions: Vec<[f64; 3]> = (0..ns).map(|k| [1e4 * k as f64, 0.0, 0.0]).collect();
    let probe = System::new(p.layout.species.clone(), positions, [[0.0; 3]; 3], [false; 3])?;
    let t = p.calculator().compute(&[probe], &ComputeOptions::default())?;
    let mut out = Vec::new();
    for (key, block) in t.keys.rows().zip(&t.blocks) {
        out.push((key[0], block.properties.count()));
    }
    if out.is_empty() {
        out.push((p.layout.species[0], 0));
    }
    Ok(out)
}

/// Rows of K_MM compared in full up to this many multiply-adds per species;
/// above, an evenly spread subset of rows (always the first and last).
const CHOLESKY_CHECK_WORK: f64 = 5e8;

fn check_cholesky(p: &Potential) -> std::result::Result<(), String> {
    let nf = p.layout.n_features();
    let n = p.n_params();
    let d2 = p.delta * p.delta;
    let kernel = p.kernel();
    // the factor is block diagonal, one lower-triangular block per species
    let mut block_start = Vec::with_capacity(n);
    let mut o = 0;
    for x in &p.sparse {
        let m = x.len() / nf.max(1);
        block_start.extend(std::iter::repeat_n(o, m));
        o += m;
    }
    for (i, &first) in block_start.iter().enumerate() {
        let row = &p.cholesky[i * n..(i + 1) * n];
        if row.iter().enumerate().any(|(j, &v)| !(first..=i).contains(&j) && v != 0.0) || !(row[i] > 0.0) {
            return Err(format!("the Cholesky factor is not block lower triangular with a positive diagonal (row {i})"));
        }
    }
    let mut o = 0;
    for (c, x) in p.sparse.iter().enumerate() {
        let m = x.len() / nf.max(1);
        let z = p.layout.species[c];
        let hat: Vec<Vec<f64>> = x
            .chunks_exact(nf)
            .map(|r| {
                let norm = crate::math::linalg::dot(r, r).sqrt();
                r.iter().map(|v| v / norm).collect()
            })
            .collect();
        let rows: Vec<usize> = if (m * m) as f64 * nf as f64 <= CHOLESKY_CHECK_WORK {
            (0..m).collect()
        } else {
            let keep = ((CHOLESKY_CHECK_WORK / (m as f64 * nf as f64)) as usize).max(2);
            let mut r: Vec<usize> = (0..keep).map(|k| k * (m - 1) / (keep - 1)).collect();
            r.dedup();
            r
        };
        let tolerance = 64.0 * (m as f64 + 1.0 + p.zeta as f64) * f64::EPSILON * d2 * (1.0 + p.jitter);
        // rows in parallel; each row compares every column, so an edited
        // sparse environment shows in any row checked
        let chol = &p.cholesky;
        rows.par_iter().try_for_each(|&i| -> std::result::Result<(), String> {
            let li = &chol[(o + i) * n + o..(o + i) * n + o + m];
            for j in 0..m {
                let lj = &chol[(o + j) * n + o..(o + j) * n + o + m];
                let llt = crate::math::linalg::dot(&li[..=i.min(j)], &lj[..=i.min(j)]);
                let mut k = kernel.of_cosine(crate::math::linalg::dot(&hat[i], &hat[j]));
                if i == j {
                    k += p.jitter * d2;
                }
                if !((llt - k).abs() <= tolerance) {
                    return Err(format!(
                        "the Cholesky factor of species {z} does not match K_MM recomputed from the sparse environments, zeta, delta and jitter \
                         (entry ({i}, {j}): L·Lᵀ = {llt:e}, K = {k:e}): the file was edited or written by a different model"
                    ));
                }
            }
            Ok(())
        })?;
        o += m;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_jitter_divides_by_delta_squared() {
        assert_eq!(relative_jitter(1e-8, 0.5).unwrap(), 1e-8 / 0.25);
        assert_eq!(relative_jitter(0.0, 2.0).unwrap(), 0.0);
        assert!(relative_jitter(-1.0, 1.0).unwrap_err().to_string().contains("sparseJitter = -1"));
        assert!(relative_jitter(f64::NAN, 1.0).unwrap_err().to_string().contains("sparseJitter = NaN"));
        assert!(relative_jitter(1e-8, 0.0).unwrap_err().to_string().contains("delta"));
    }
}
