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
use super::atomic_features::FeatureLayout;
use super::pair_term::PairTerm;
use super::potential::{Kind, Potential};
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
        "neighbor_species": p.layout.species,
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
    let version: u32 = if p.pair.is_some() { 2 } else { 1 };
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
    let kind = match field("kind")?.as_str() {
        Some("sparse_gpr") => Kind::SparseGpr,
        Some("linear") => Kind::Linear,
        other => return Err(bad(what, format!("unknown model kind {other:?}"))),
    };
    let species: Vec<i32> = serde_json::from_value(field("species")?.clone()).map_err(|e| bad(what, format!("species: {e}")))?;
    let block_size = num("block_size")? as usize;
    let layout = FeatureLayout::new(species.clone(), block_size);
    if layout.species != species {
        return Err(bad(what, "species are not sorted and unique"));
    }
    let e0_map = field("e0")?.as_object().ok_or_else(|| bad(what, "e0 is not an object"))?;
    let e0: Vec<f64> = species
        .iter()
        .map(|z| e0_map.get(&z.to_string()).and_then(|v| v.as_f64()).ok_or_else(|| bad(what, format!("e0 has no value for species {z}"))))
        .collect::<Result<_>>()?;
    let array = |name: &str| -> Result<Vec<f64>> {
        let table = field("arrays")?.as_array().ok_or_else(|| bad(what, "arrays is not a list"))?;
        let entry = table.iter().find(|e| e.get("name").and_then(|v| v.as_str()) == Some(name)).ok_or_else(|| bad(what, format!("array \"{name}\" is missing")))?;
        if entry.get("dtype").and_then(|v| v.as_str()) != Some("<f8") {
            return Err(bad(what, format!("array \"{name}\" is not little-endian float64")));
        }
        let offset = entry.get("offset").and_then(|v| v.as_u64()).ok_or_else(|| bad(what, format!("array \"{name}\" has no offset")))? as usize;
        let shape: Vec<usize> = serde_json::from_value(entry.get("shape").cloned().unwrap_or_default()).map_err(|e| bad(what, format!("array \"{name}\" shape: {e}")))?;
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| bad(what, format!("array \"{name}\" is too large")))?;
        let start = data_start.checked_add(offset).ok_or_else(|| bad(what, "bad offset"))?;
        let end = count.checked_mul(8).and_then(|b| start.checked_add(b)).ok_or_else(|| bad(what, "bad size"))?;
        if end > body.len() {
            return Err(bad(what, format!("truncated model file: array \"{name}\" ends at byte {end}, the data ends at {}", body.len())));
        }
        Ok(body[start..end].chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect())
    };
    let weights = array("weights")?;
    let r_factor = array("r_factor")?;
    let (sparse, cholesky) = if kind == Kind::SparseGpr {
        let counts: Vec<usize> = serde_json::from_value(field("sparse_counts")?.clone()).map_err(|e| bad(what, format!("sparse_counts: {e}")))?;
        if counts.len() != species.len() {
            return Err(bad(what, "sparse_counts does not match species"));
        }
        let flat = array("sparse_features")?;
        let nf = layout.n_features();
        if flat.len() != counts.iter().sum::<usize>() * nf {
            return Err(bad(what, "sparse_features does not match sparse_counts × n_features"));
        }
        let mut sparse = Vec::new();
        let mut at = 0;
        for c in counts {
            sparse.push(flat[at * nf..(at + c) * nf].to_vec());
            at += c;
        }
        (sparse, array("cholesky")?)
    } else {
        (Vec::new(), Vec::new())
    };
    let pair = match (version, header.get("terms")) {
        (_, None) => None,
        (1, Some(_)) => return Err(bad(what, "format version 1 cannot hold \"terms\" (a 2-body term needs version 2)")),
        (_, Some(terms)) => Some(read_pair_term(terms, &array("distance_2b_sparse")?).map_err(|e| bad(what, e))?),
    };
    let hypers = serde_json::to_string(field("hypers")?).map_err(|e| bad(what, format!("hypers: {e}")))?;
    let zeta = num("zeta")?;
    Potential::assemble_with_pair(
        kind,
        hypers,
        layout,
        e0,
        zeta as u32,
        num("delta")?,
        num("jitter")?,
        num("regularizer")?,
        sparse,
        weights,
        cholesky,
        r_factor,
        header.get("meta").cloned().unwrap_or(serde_json::Value::Null),
        pair,
    )
    .map_err(|e| bad(what, e))
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
