//! The `.acdc` model file: one self-describing file per fitted potential.
//!
//! Layout (all integers little-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `ACDCMODL` |
//! | 4 | format version (u32, currently 1) |
//! | 4 | zero |
//! | 8 | header length H (u64) |
//! | H | JSON header (UTF-8) |
//! | 0–7 | zero padding to a multiple of 8 |
//! | … | arrays: little-endian float64, at the offsets the header lists (relative to the start of this section) |
//! | 4 | CRC-32 (IEEE) of every preceding byte |
//!
//! The header holds `kind`, `acdc_version`, `hypers` (the power spectrum
//! hyper-parameters), `species`, `neighbor_species`, `block_size`,
//! `n_features`, `zeta`, `delta`, `jitter`, `regularizer`, `e0` ({Z: eV}),
//! `sparse_counts`, `meta` and `arrays`: `{name, offset, shape, dtype:
//! "<f8"}` for `weights`, `r_factor`, and for the GPR `sparse_features`
//! and `cholesky`. Floats in the header are written with the shortest
//! representation that reads back exactly, so save → load is bit for bit.
//!
//! Version 2 (written only for a sum-of-kernels GPR; a plain model is still
//! written as version 1, so older readers keep reading it and refuse a
//! model whose 2-body term they would ignore) adds `terms`: a list whose one
//! entry describes the `distance_2b` term (`type`, `cutoff`, `transition`,
//! `theta`, `delta`, `species_pairs`, `sparse_counts`), and the array
//! `distance_2b_sparse` (its sparse distances, Å); `weights`, `r_factor`
//! and `cholesky` then cover both terms, SOAP first.
//!
//! A model on the ν = 3 features (the SOAP bispectrum of `hypers`) has
//! `"features": "bispectrum"`, `block_size` = `n_features` = the
//! bispectrum features per atom ([`super::bispectrum_features`]) and
//! `neighbor_species` = `species`; it is written as version 2, and files
//! without `features` are power-spectrum models (every file written before).
use super::atomic_features::FeatureLayout;
use super::bispectrum_features::{FeatureKind, MAX_BISPECTRUM_FEATURES};
use super::pair_term::PairTerm;
use super::potential::{Kind, Potential};
use super::validation;
use crate::error::{Error, Result};

/// First bytes of every model file.
pub const MAGIC: &[u8; 8] = b"ACDCMODL";
/// Newest format version this build reads and writes (2 only for a model
/// with a 2-body term); files with a newer version are refused.
pub const FORMAT_VERSION: u32 = 2;

/// Serialises a potential.
pub fn to_bytes(p: &Potential) -> Result<Vec<u8>> {
    let mut arrays: Vec<(&str, Vec<usize>, &[f64])> = Vec::new();
    let n = p.n_params();
    let nf = p.layout.n_features();
    let mut sparse_flat = Vec::new();
    arrays.push(("weights", vec![n], &p.weights));
    arrays.push(("r_factor", vec![n, n], &p.r_factor));
    if p.kind == Kind::SparseGpr {
        for x in &p.sparse {
            sparse_flat.extend_from_slice(x);
        }
        arrays.push(("cholesky", vec![n, n], &p.cholesky));
    }
    let n_soap = p.soap_params();
    if p.kind == Kind::SparseGpr {
        arrays.push(("sparse_features", vec![n_soap, nf], &sparse_flat));
    }
    let pair_flat: Vec<f64> = p.pair.as_ref().map(|t| t.sparse.concat()).unwrap_or_default();
    if p.pair.is_some() {
        arrays.push(("distance_2b_sparse", vec![pair_flat.len()], &pair_flat));
    }
    let mut table = Vec::new();
    let mut offset = 0usize;
    for (name, shape, data) in &arrays {
        table.push(serde_json::json!({ "name": name, "offset": offset, "shape": shape, "dtype": "<f8" }));
        offset += data.len() * 8;
    }
    let hypers: serde_json::Value = serde_json::from_str(&p.hypers).map_err(|e| Error::InvalidParameter(format!("hypers: {e}")))?;
    let e0: serde_json::Map<String, serde_json::Value> =
        p.layout.species.iter().zip(&p.e0).map(|(z, v)| (z.to_string(), serde_json::json!(v))).collect();
    let sparse_counts: Vec<usize> = (0..p.layout.species.len()).map(|c| if p.kind == Kind::SparseGpr { p.species_params(c) } else { 0 }).collect();
    let mut header = serde_json::json!({
        "format": "acdc-model",
        "kind": p.kind.name(),
        "acdc_version": env!("CARGO_PKG_VERSION"),
        "hypers": hypers,
        "species": p.layout.species,
        "neighbor_species": p.layout.neighbors,
        "block_size": p.layout.block_size,
        "n_features": nf,
        "zeta": p.zeta,
        "delta": p.delta,
        "jitter": p.jitter,
        "regularizer": p.regularizer,
        "e0": e0,
        "sparse_counts": sparse_counts,
        "meta": p.meta,
        "arrays": table,
    });
    if let Some(term) = &p.pair {
        header["terms"] = serde_json::json!([term.describe()]);
    }
    let bispectrum = p.layout.features == FeatureKind::Bispectrum;
    if bispectrum {
        header["features"] = serde_json::json!(p.layout.features.name());
    }
    let version: u32 = if p.pair.is_some() || bispectrum { 2 } else { 1 };
    let header = serde_json::to_vec(&header).map_err(|e| Error::InvalidParameter(format!("model header: {e}")))?;
    let mut out = Vec::with_capacity(32 + header.len() + offset);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    while out.len() % 8 != 0 {
        out.push(0);
    }
    for (_, _, data) in &arrays {
        for v in data.iter() {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn bad(what: &str, m: impl std::fmt::Display) -> Error {
    Error::Parse { line: 0, message: format!("{what}: {m}") }
}

/// Reads a potential; `what` names the file in errors (e.g. its path).
pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Potential> {
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(bad(what, "not an acdc model file (wrong magic bytes; expected a file written by model.save)"));
    }
    if bytes.len() < 28 {
        return Err(bad(what, format!("truncated model file ({} bytes)", bytes.len())));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(bad(
            what,
            format!("model file format version {version} is not supported by acdc {} (it reads versions 1 to {FORMAT_VERSION}); refit or upgrade acdc", env!("CARGO_PKG_VERSION")),
        ));
    }
    let body = &bytes[..bytes.len() - 4];
    let stored = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().expect("4 bytes"));
    let header_len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes")) as usize;
    if header_len > body.len().saturating_sub(24) {
        return Err(bad(what, format!("truncated model file: the header needs {header_len} bytes, the file has {}", bytes.len())));
    }
    if crc32fast::hash(body) != stored {
        return Err(bad(what, "checksum mismatch: the model file is corrupted or truncated"));
    }
    let header: serde_json::Value = serde_json::from_slice(&bytes[24..24 + header_len]).map_err(|e| bad(what, format!("header: {e}")))?;
    let mut data_start = 24 + header_len;
    while data_start % 8 != 0 {
        data_start += 1;
    }
    let field = |name: &str| header.get(name).ok_or_else(|| bad(what, format!("header has no \"{name}\"")));
    let num = |name: &str| field(name).and_then(|v| v.as_f64().ok_or_else(|| bad(what, format!("header \"{name}\" is not a number"))));
    // a count: a non-negative integer, at most what the file could hold
    let body_floats = body.len() / 8;
    let count = |name: &str| -> Result<usize> {
        let v = field(name)?;
        match v.as_u64() {
            Some(c) if c as usize <= body_floats => Ok(c as usize),
            _ => Err(bad(what, format!("header \"{name}\" = {} (expected an integer from 0 to {body_floats}, the floats this file holds)", short(v)))),
        }
    };
    let kind = match field("kind")?.as_str() {
        Some("sparse_gpr") => Kind::SparseGpr,
        Some("linear") => Kind::Linear,
        other => return Err(bad(what, format!("unknown model kind {other:?}"))),
    };
    let species: Vec<i32> = serde_json::from_value(field("species")?.clone()).map_err(|e| bad(what, format!("species: {e}")))?;
    if species.is_empty() || species.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad(what, "species must be a non-empty list of sorted, distinct atomic numbers"));
    }
    // pseudo-element indices with density.alchemical; the species otherwise
    // (files without the field predate pseudo-elements in models)
    let neighbors: Vec<i32> = match header.get("neighbor_species") {
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| bad(what, format!("neighbor_species: {e}")))?,
        None => species.clone(),
    };
    if neighbors.is_empty() || neighbors.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad(what, "neighbor_species must be a non-empty list of sorted, distinct types"));
    }
    let features = match header.get("features") {
        None => FeatureKind::PowerSpectrum,
        Some(v) => FeatureKind::from_name("features", v.as_str().ok_or_else(|| bad(what, format!("header \"features\" = {} is not a string", short(v))))?)
            .map_err(|e| bad(what, e))?,
    };
    if features == FeatureKind::Bispectrum && neighbors != species {
        return Err(bad(what, format!("neighbor_species = {neighbors:?} but a bispectrum model's neighbour types are its species {species:?}")));
    }
    let block_size = count("block_size")?;
    if block_size == 0 {
        return Err(bad(what, "block_size = 0 (expected the properties of one power-spectrum block)"));
    }
    // sizes before any allocation: every model stores at least one row of
    // n_features floats per species (linear weights, or ≥ 1 sparse
    // environment per species), so n_species × n_features is bounded by
    // the file, and so is everything predict allocates per atom
    let ns = species.len();
    let nn = neighbors.len() as u128;
    let nf = match features {
        FeatureKind::PowerSpectrum => (nn * (nn + 1) / 2) * block_size as u128,
        FeatureKind::Bispectrum => block_size as u128,
    };
    if features == FeatureKind::Bispectrum && nf > MAX_BISPECTRUM_FEATURES as u128 {
        return Err(bad(what, format!("block_size = {nf} bispectrum features per atom, more than the {MAX_BISPECTRUM_FEATURES} a model accepts")));
    }
    if (ns as u128) * nf > body_floats as u128 {
        return Err(bad(
            what,
            format!("{ns} species with block_size {block_size} need {} floats per species, more than the file holds ({} bytes)", nf, bytes.len()),
        ));
    }
    let nf = nf as usize;
    if count("n_features")? != nf {
        return Err(bad(what, format!("n_features = {} but {} neighbour types with block_size {block_size} give {nf}", short(field("n_features")?), neighbors.len())));
    }
    let layout = match features {
        FeatureKind::PowerSpectrum => FeatureLayout::with_neighbors(species.clone(), neighbors.clone(), block_size),
        FeatureKind::Bispectrum => FeatureLayout::bispectrum(species.clone(), block_size),
    };
    debug_assert_eq!(layout.n_features(), nf);
    let e0_map = field("e0")?.as_object().ok_or_else(|| bad(what, "e0 is not an object"))?;
    if let Some(k) = e0_map.keys().find(|k| !species.iter().any(|z| z.to_string() == **k)) {
        return Err(bad(what, format!("e0 has a value for {k}, which is not a species of the model {species:?}")));
    }
    let e0: Vec<f64> = species
        .iter()
        .map(|z| e0_map.get(&z.to_string()).and_then(|v| v.as_f64()).ok_or_else(|| bad(what, format!("e0 has no value for species {z}"))))
        .collect::<Result<_>>()?;
    for (z, &v) in species.iter().zip(&e0) {
        validation::check_e0(*z, v).map_err(|e| bad(what, e))?;
    }
    let zeta = num("zeta")?;
    let delta = num("delta")?;
    let jitter = num("jitter")?;
    let regularizer = num("regularizer")?;
    let zeta = validation::check_kernel(zeta, delta, jitter).map_err(|e| bad(what, e))?;
    validation::check_regularizer(regularizer).map_err(|e| bad(what, e))?;
    let meta = header.get("meta").cloned().unwrap_or(serde_json::Value::Null);
    if let Some(sigmas) = meta.get("sigmas").and_then(|v| v.as_object()) {
        for (k, v) in sigmas {
            validation::check_positive(&format!("meta.sigmas.{k}"), v.as_f64().unwrap_or(f64::NAN)).map_err(|e| bad(what, e))?;
        }
    }
    // the variance calibration (absent in files written before: s = 1, no noise)
    if let Some(v) = meta.get("variance_noise") {
        match v.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => {}
            _ => return Err(bad(what, format!("meta.variance_noise = {} (expected a finite number ≥ 0, eV² per atom)", short(v)))),
        }
    }
    // the parameters: sparse environments per species (GPR) or one weight per feature and species
    let counts: Vec<usize> = match kind {
        Kind::SparseGpr => {
            let list = field("sparse_counts")?.as_array().ok_or_else(|| bad(what, "sparse_counts is not a list"))?;
            if list.len() != ns {
                return Err(bad(what, format!("sparse_counts has {} entries for {ns} species", list.len())));
            }
            let counts = list
                .iter()
                .zip(&species)
                .map(|(v, z)| match v.as_u64() {
                    Some(c) if c >= 1 && c as usize <= body_floats => Ok(c as usize),
                    _ => Err(bad(what, format!("sparse_counts for species {z} = {} (expected at least 1 sparse environment)", short(v)))),
                })
                .collect::<Result<Vec<_>>>()?;
            counts
        }
        Kind::Linear => vec![nf; ns],
    };
    // a 2-body term (format version 2): its sparse distances follow the SOAP parameters
    let terms = match (version, header.get("terms")) {
        (_, None) => None,
        (1, Some(_)) => return Err(bad(what, "format version 1 cannot hold \"terms\" (a 2-body term needs version 2)")),
        (_, Some(_)) if kind != Kind::SparseGpr => return Err(bad(what, "\"terms\" belongs to a sparse_gpr model only")),
        (_, Some(t)) => Some(t),
    };
    let n_pair = match terms {
        None => 0,
        Some(t) => {
            let list = t.get(0).and_then(|t| t.get("sparse_counts")).and_then(|v| v.as_array()).ok_or_else(|| bad(what, "terms[0].sparse_counts is missing or not a list"))?;
            list.iter()
                .try_fold(0usize, |a, v| v.as_u64().and_then(|c| a.checked_add(c as usize)))
                .filter(|&n| n <= body_floats)
                .ok_or_else(|| bad(what, "terms[0].sparse_counts are not counts the file can hold"))?
        }
    };
    let n_soap = counts.iter().try_fold(0usize, |a, &c| a.checked_add(c)).filter(|&n| n <= body_floats);
    let n_soap = n_soap.ok_or_else(|| bad(what, "the parameter counts exceed what the file holds"))?;
    let n = n_soap + n_pair;
    // the square factors must fit in the file too
    if (n as u128) * (n as u128) > body_floats as u128 {
        return Err(bad(what, format!("{n} parameters need {n}² floats per factor, more than the file holds ({} bytes)", bytes.len())));
    }
    // the arrays, exactly as `to_bytes` lays them out: in this order,
    // back to back from offset 0, filling the data section to the CRC (an
    // edited offset or an extra array is refused, not read)
    let table = field("arrays")?.as_array().ok_or_else(|| bad(what, "arrays is not a list"))?;
    let mut expected: Vec<(&str, Vec<usize>)> = vec![("weights", vec![n]), ("r_factor", vec![n, n])];
    if kind == Kind::SparseGpr {
        expected.push(("cholesky", vec![n, n]));
        expected.push(("sparse_features", vec![n_soap, nf]));
    }
    if terms.is_some() {
        expected.push(("distance_2b_sparse", vec![n_pair]));
    }
    if table.len() != expected.len() {
        return Err(bad(what, format!("arrays lists {} arrays, a {} model has {}", table.len(), kind.name(), expected.len())));
    }
    let mut offset = 0usize;
    let mut values: Vec<Vec<f64>> = Vec::new();
    for (entry, (name, shape)) in table.iter().zip(&expected) {
        if entry.get("name").and_then(|v| v.as_str()) != Some(*name) {
            return Err(bad(what, format!("arrays[{}] is {}, expected \"{name}\"", values.len(), short(entry.get("name").unwrap_or(&serde_json::Value::Null)))));
        }
        if entry.get("dtype").and_then(|v| v.as_str()) != Some("<f8") {
            return Err(bad(what, format!("array \"{name}\" is not little-endian float64 (dtype \"<f8\")")));
        }
        if entry.get("offset").and_then(|v| v.as_u64()) != Some(offset as u64) {
            return Err(bad(what, format!("array \"{name}\" has offset {}, expected {offset} (arrays are stored back to back)", short(entry.get("offset").unwrap_or(&serde_json::Value::Null)))));
        }
        let got: Option<Vec<usize>> = entry.get("shape").and_then(|v| serde_json::from_value(v.clone()).ok());
        if got.as_ref() != Some(shape) {
            return Err(bad(what, format!("array \"{name}\" has shape {}, the header's sizes give {shape:?}", short(entry.get("shape").unwrap_or(&serde_json::Value::Null)))));
        }
        // sizes are bounded by the file above, so these do not overflow
        let count: usize = shape.iter().product();
        let start = data_start + offset;
        let end = start + count * 8;
        if end > body.len() {
            return Err(bad(what, format!("truncated model file: array \"{name}\" ends at byte {end}, the data ends at {}", body.len())));
        }
        let v: Vec<f64> = body[start..end].chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
        if let Some(k) = v.iter().position(|x| !x.is_finite()) {
            return Err(bad(what, format!("array \"{name}\"[{k}] = {} (expected finite numbers)", v[k])));
        }
        values.push(v);
        offset += count * 8;
    }
    if data_start + offset != body.len() {
        return Err(bad(what, format!("{} bytes after the last array (the arrays end at byte {}, the checksum starts at {})", body.len().saturating_sub(data_start + offset), data_start + offset, body.len())));
    }
    let mut values = values.into_iter();
    let weights = values.next().unwrap_or_default();
    let r_factor = values.next().unwrap_or_default();
    let (sparse, cholesky) = if kind == Kind::SparseGpr {
        let cholesky = values.next().unwrap_or_default();
        let flat = values.next().unwrap_or_default();
        let mut sparse = Vec::with_capacity(ns);
        let mut at = 0;
        for &c in &counts {
            sparse.push(flat[at * nf..(at + c) * nf].to_vec());
            at += c;
        }
        (sparse, cholesky)
    } else {
        (Vec::new(), Vec::new())
    };
    let pair = match terms {
        None => None,
        Some(t) => Some(read_pair_term(t, &values.next().unwrap_or_default()).map_err(|e| bad(what, e))?),
    };
    let hypers = serde_json::to_string(field("hypers")?).map_err(|e| bad(what, format!("hypers: {e}")))?;
    let p = Potential::assemble_with_pair(kind, hypers, layout, e0, zeta, delta, jitter, regularizer, sparse, weights, cholesky, r_factor, meta, pair)
        .map_err(|e| bad(what, e))?;
    validation::check_loaded(&p).map_err(|e| bad(what, e))?;
    Ok(p)
}

/// A header value in an error message, cut short.
fn short(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::models::potential::{FitOptions, KindOptions, PredictOptions, Sigmas, SparseMethod, Targets, E0};
    use crate::system::System;

    const HYPERS: &str = r#"{"cutoff": {"radius": 3.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        "density": {"type": "Gaussian", "width": 0.4},
        "basis": {"type": "TensorProduct", "max_angular": 2, "radial": {"type": "Gto", "max_radial": 2}, "spline_accuracy": null}}"#;

    fn systems() -> Vec<System> {
        (0..5)
            .map(|k| {
                let d = 0.07 * k as f64;
                let positions = vec![[0.0, 0.0, 0.0], [1.1 + d, 0.2, 0.0], [0.1, 1.3 - d, 0.3], [1.2, 1.0, 1.1 + d]];
                let types = vec![1, 8, 1, if k % 2 == 0 { 8 } else { 1 }];
                System::new(types, positions, [[0.0; 3]; 3], [false; 3]).unwrap()
            })
            .collect()
    }

    fn fitted(kind: KindOptions) -> (Potential, Vec<u8>) {
        let s = systems();
        let targets = Targets { energy: (0..s.len()).map(|k| -10.0 + 0.1 * k as f64).collect(), forces: None, stress: None, frame_sigmas: Vec::new() };
        let options = FitOptions { hypers: HYPERS.into(), pair: None, kind, sigmas: Sigmas { energy: 0.01, forces: 0.1, stress: 0.01 }, e0: E0::Average, batch_atoms: 100, cancel: None };
        let p = Potential::fit(&s, &targets, &options).unwrap();
        let bytes = to_bytes(&p).unwrap();
        (p, bytes)
    }

    fn gpr() -> KindOptions {
        KindOptions::SparseGpr { count: 3, counts: vec![], method: SparseMethod::Fps, seed: 0, zeta: 2, delta: 0.5, jitter: 1e-8 }
    }

    /// The header and data of a model file, edited, with the CRC recomputed (as anyone can).
    pub(crate) fn rewrite(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value, &mut Vec<u8>)) -> Vec<u8> {
        let header_len = u64::from_le_bytes(bytes[16..24].try_into().unwrap()) as usize;
        let mut header: serde_json::Value = serde_json::from_slice(&bytes[24..24 + header_len]).unwrap();
        let data_start = (24 + header_len).div_ceil(8) * 8;
        let mut data = bytes[data_start..bytes.len() - 4].to_vec();
        edit(&mut header, &mut data);
        let h = serde_json::to_vec(&header).unwrap();
        let mut out = bytes[..16].to_vec();
        out.extend_from_slice(&(h.len() as u64).to_le_bytes());
        out.extend_from_slice(&h);
        while out.len() % 8 != 0 {
            out.push(0);
        }
        out.extend_from_slice(&data);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn refused(bytes: &[u8], needle: &str) {
        match from_bytes(bytes, "m.acdc") {
            Ok(_) => panic!("loaded; expected an error with {needle:?}"),
            Err(e) => assert!(e.to_string().contains(needle), "{e}"),
        }
    }

    #[test]
    fn round_trip_still_loads_and_predicts_the_same() {
        for kind in [gpr(), KindOptions::Linear { regularizer: 1e-6 }] {
            let (p, bytes) = fitted(kind);
            let q = from_bytes(&bytes, "m.acdc").unwrap();
            let o = PredictOptions { forces: true, stress: false, variance: true };
            assert_eq!(p.predict(&systems(), &o, 100, &None).unwrap(), q.predict(&systems(), &o, 100, &None).unwrap());
            // the rewrite helper itself changes nothing
            assert_eq!(rewrite(&bytes, |_, _| {}), bytes);
        }
    }

    /// Issue 24 item 1: empty arrays with a huge block size loaded and aborted at predict.
    #[test]
    fn empty_sparse_set_with_huge_block_size_is_refused_at_load() {
        let (_, bytes) = fitted(gpr());
        for block in [1u64 << 40, 1u64 << 58] {
            let hostile = rewrite(&bytes, |h, data| {
                h["sparse_counts"] = serde_json::json!([0, 0]);
                h["block_size"] = serde_json::json!(block);
                h["n_features"] = serde_json::json!(block * 3);
                h["arrays"] = serde_json::json!([
                    {"name": "weights", "offset": 0, "shape": [0], "dtype": "<f8"},
                    {"name": "r_factor", "offset": 0, "shape": [0, 0], "dtype": "<f8"},
                    {"name": "cholesky", "offset": 0, "shape": [0, 0], "dtype": "<f8"},
                    {"name": "sparse_features", "offset": 0, "shape": [0, 0], "dtype": "<f8"},
                ]);
                data.clear();
            });
            refused(&hostile, "block_size");
        }
        // the same with a plausible block size: at least one sparse environment per species
        let hostile = rewrite(&bytes, |h, _| h["sparse_counts"] = serde_json::json!([0, 6]));
        refused(&hostile, "sparse_counts for species 1 = 0");
    }

    /// Issue 24 item 2: 100 000 species built every pair before any check.
    #[test]
    fn many_species_are_refused_before_the_layout_is_built() {
        let (_, bytes) = fitted(gpr());
        let hostile = rewrite(&bytes, |h, _| {
            h["species"] = serde_json::json!((1..=100_000).collect::<Vec<i32>>());
            h["neighbor_species"] = h["species"].clone();
        });
        let t = std::time::Instant::now();
        refused(&hostile, "100000 species");
        // not a timing assertion on the result: a guard against building 5e9 pairs
        assert!(t.elapsed().as_secs() < 60);
    }

    /// Issue 24 item 11: every field `fit` validates is validated at load.
    #[test]
    fn kernel_settings_are_validated_like_fit() {
        let (_, bytes) = fitted(gpr());
        for (field, value, needle) in [
            ("zeta", serde_json::json!(2.5), "kernel.zeta = 2.5"),
            ("zeta", serde_json::json!(0), "kernel.zeta = 0"),
            ("zeta", serde_json::json!(-1), "kernel.zeta = -1"),
            ("zeta", serde_json::json!(1e10), "kernel.zeta = 10000000000"),
            ("delta", serde_json::json!(0), "kernel.delta = 0"),
            ("delta", serde_json::json!(-0.5), "kernel.delta = -0.5"),
            ("jitter", serde_json::json!(-1e-8), "jitter = -0.00000001"),
            ("block_size", serde_json::json!(1u64 << 40), "block_size"),
            ("n_features", serde_json::json!(7), "n_features = 7"),
            ("species", serde_json::json!([8, 1]), "sorted"),
            ("neighbor_species", serde_json::json!([1, 6]), "neighbor_species"),
        ] {
            refused(&rewrite(&bytes, |h, _| h[field] = value.clone()), needle);
        }
        // fit refuses the same settings with the same words
        let s = systems();
        let targets = Targets { energy: vec![-10.0; s.len()], forces: None, stress: None, frame_sigmas: Vec::new() };
        for (zeta, delta, needle) in [(0u32, 0.5, "kernel.zeta = 0"), (101, 0.5, "kernel.zeta = 101"), (2, 0.0, "kernel.delta = 0")] {
            let kind = KindOptions::SparseGpr { count: 3, counts: vec![], method: SparseMethod::Fps, seed: 0, zeta, delta, jitter: 1e-8 };
            let options = FitOptions { hypers: HYPERS.into(), pair: None, kind, sigmas: Sigmas { energy: 0.01, forces: 0.1, stress: 0.01 }, e0: E0::Average, batch_atoms: 100, cancel: None };
            let e = Potential::fit(&s, &targets, &options).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    /// A valid but different ζ, δ or jitter would predict something else:
    /// the stored Cholesky factor no longer matches K_MM.
    #[test]
    fn edited_kernel_settings_are_caught_by_the_cholesky_factor() {
        let (_, bytes) = fitted(gpr());
        for (field, value) in [("zeta", serde_json::json!(3)), ("delta", serde_json::json!(0.6)), ("jitter", serde_json::json!(1e-6))] {
            refused(&rewrite(&bytes, |h, _| h[field] = value.clone()), "does not match K_MM");
        }
        // an edited sparse environment too (the last array of the file)
        refused(
            &rewrite(&bytes, |_, data| {
                let at = data.len() - 8;
                let v = f64::from_le_bytes(data[at..].try_into().unwrap()) * 1.5 + 0.1;
                data[at..].copy_from_slice(&v.to_le_bytes());
            }),
            "does not match K_MM",
        );
    }

    #[test]
    fn non_finite_numbers_and_bad_layouts_are_refused() {
        let (_, bytes) = fitted(gpr());
        // a NaN weight used to give energy NaN (HTTP 200 with null)
        refused(&rewrite(&bytes, |_, data| data[..8].copy_from_slice(&f64::NAN.to_le_bytes())), "array \"weights\"[0] = NaN");
        refused(&rewrite(&bytes, |_, data| data[..8].copy_from_slice(&f64::INFINITY.to_le_bytes())), "array \"weights\"[0] = inf");
        refused(&rewrite(&bytes, |h, _| h["e0"]["1"] = serde_json::json!(null)), "e0 has no value for species 1");
        refused(&rewrite(&bytes, |h, _| h["e0"]["79"] = serde_json::json!(1.0)), "e0 has a value for 79");
        refused(&rewrite(&bytes, |h, _| h["meta"]["sigmas"]["energy"] = serde_json::json!(-1)), "meta.sigmas.energy");
        refused(&rewrite(&bytes, |h, _| h["arrays"][0]["offset"] = serde_json::json!(8)), "offset");
        refused(&rewrite(&bytes, |h, _| h["arrays"][1]["shape"] = serde_json::json!([6, 5])), "shape");
        refused(&rewrite(&bytes, |_, data| data.extend_from_slice(&[0; 8])), "after the last array");
        refused(&rewrite(&bytes, |h, _| h["regularizer"] = serde_json::json!(-1)), "regularizer");
    }

    /// Issue 24 item 19: hypers that do not match the arrays fail at load.
    #[test]
    fn hypers_that_do_not_match_the_arrays_are_refused_at_load() {
        let (_, bytes) = fitted(gpr());
        refused(&rewrite(&bytes, |h, _| h["hypers"]["basis"]["radial"]["max_radial"] = serde_json::json!(3)), "do not match");
        refused(&rewrite(&bytes, |h, _| h["hypers"]["cutoff"]["radius"] = serde_json::json!(-1)), "cutoff");
    }

    /// Issue 24 item 16: a finite but absurd target is refused, naming the frame.
    #[test]
    fn absurd_targets_are_refused() {
        let s = systems();
        let mut targets = Targets { energy: vec![-10.0; s.len()], forces: None, stress: None, frame_sigmas: Vec::new() };
        targets.energy[3] = 1e300;
        let options = FitOptions { hypers: HYPERS.into(), pair: None, kind: gpr(), sigmas: Sigmas { energy: 0.01, forces: 0.1, stress: 0.01 }, e0: E0::Average, batch_atoms: 100, cancel: None };
        let e = Potential::fit(&s, &targets, &options).unwrap_err().to_string();
        assert!(e.contains("systems[3]: energy = 1e300"), "{e}");
        targets.energy[3] = -10.0;
        targets.forces = Some(s.iter().map(|x| vec![0.0; 3 * x.size()]).collect());
        targets.forces.as_mut().unwrap()[2][4] = -1e9;
        let e = Potential::fit(&s, &targets, &options).unwrap_err().to_string();
        assert!(e.contains("systems[2]: forces[4] = -1e9"), "{e}");
    }

    /// What a prediction holds is budgeted before the features are computed.
    #[test]
    fn prediction_is_within_the_budget() {
        let (p, _) = fitted(gpr());
        let o = PredictOptions { forces: true, stress: false, variance: false };
        let e = p.predict_within(&systems(), &o, 100, &None, Some(1000)).unwrap_err().to_string();
        assert!(e.contains("predicting systems[0..5]"), "{e}");
        assert!(p.predict_within(&systems(), &o, 100, &None, Some(1 << 30)).is_ok());
    }
}

/// The 2-body term from the header's `terms` and its sparse distances.
fn read_pair_term(terms: &serde_json::Value, flat: &[f64]) -> std::result::Result<PairTerm, String> {
    let list = terms.as_array().ok_or("terms is not a list")?;
    let [term] = list.as_slice() else {
        return Err(format!("terms has {} entries (expected one distance_2b term)", list.len()));
    };
    if term.get("type").and_then(|v| v.as_str()) != Some("distance_2b") {
        return Err(format!("terms[0].type = {} (expected \"distance_2b\")", term.get("type").unwrap_or(&serde_json::Value::Null)));
    }
    let num = |name: &str| term.get(name).and_then(|v| v.as_f64()).ok_or_else(|| format!("terms[0].{name} is missing or not a number"));
    let pairs: Vec<[i32; 2]> = serde_json::from_value(term.get("species_pairs").cloned().unwrap_or_default()).map_err(|e| format!("terms[0].species_pairs: {e}"))?;
    let counts: Vec<usize> = serde_json::from_value(term.get("sparse_counts").cloned().unwrap_or_default()).map_err(|e| format!("terms[0].sparse_counts: {e}"))?;
    if counts.len() != pairs.len() {
        return Err("terms[0].sparse_counts does not match species_pairs".into());
    }
    if counts.iter().try_fold(0usize, |a, &c| a.checked_add(c)) != Some(flat.len()) {
        return Err(format!("distance_2b_sparse has {} values, terms[0].sparse_counts sum to another number", flat.len()));
    }
    let mut sparse = Vec::with_capacity(counts.len());
    let mut at = 0;
    for c in counts {
        sparse.push(flat[at..at + c].to_vec());
        at += c;
    }
    PairTerm::new(num("cutoff")?, num("transition")?, num("theta")?, num("delta")?, pairs.iter().map(|p| (p[0], p[1])).collect(), sparse).map_err(|e| e.to_string())
}
