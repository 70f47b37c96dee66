//! Tensor models ([`TensorModel`]) in the `.acdc` container: the same
//! framing as [`super::model_file`] (magic `ACDCMODL`, format version, JSON
//! header, 8-byte aligned little-endian float64 arrays, CRC-32), with
//! `kind` "sparse_tensor_gpr" or "tensor_linear".
//!
//! Header: `format`, `kind`, `acdc_version`, `target` ("dipole" or
//! "polarizability"), `hypers`, `species`, `zeta`, `jitter`, `regularizer`,
//! `sigma`, `channels` (`[{lambda, n_features, n_scalar, sparse_counts,
//! offset}]`), `meta` and `arrays` (`{name, offset, shape, dtype: "<f8"}`):
//! per channel λ, `weights_λ`, and for the GPR `sparse_features_λ`
//! (Σm × (2λ+1) × q, normalised λ blocks) and `sparse_scalar_λ`
//! (Σm × n_scalar, normalised λ = 0 blocks). A dipole model with the charge
//! term has `"charges": true` in its λ = 1 channel and the array `charges_1`
//! (one partial charge per species, e); such a file is written as format
//! version 3, so that an older acdc, which would ignore the charges and
//! predict wrong dipoles, refuses it; models without charges stay version 1.
//! Every size is checked against the header and the file length before
//! anything is allocated, and the hyper-parameters are validated by building
//! the calculator.
use super::model_file::{FORMAT_VERSION, MAGIC};
use super::tensor_gpr::{Channel, TensorKind, TensorModel, TensorTarget};
use crate::error::{Error, Result};

/// Format version of a tensor model with the dipole charge term (the others are written as version 1).
pub const CHARGES_FORMAT_VERSION: u32 = 3;

/// Newest format version the framing accepts (energy files are checked again by their own reader).
const MAX_VERSION: u32 = if FORMAT_VERSION > CHARGES_FORMAT_VERSION { FORMAT_VERSION } else { CHARGES_FORMAT_VERSION };

/// Model kinds this module reads.
pub const TENSOR_KINDS: [&str; 2] = ["sparse_tensor_gpr", "tensor_linear"];

/// Serialises a tensor model.
pub fn to_bytes(m: &TensorModel) -> Result<Vec<u8>> {
    let mut arrays: Vec<(String, Vec<usize>, &[f64])> = Vec::new();
    let mut channels = Vec::new();
    for ch in &m.channels {
        let l = ch.lambda;
        let total: usize = ch.sparse_counts.iter().sum();
        arrays.push((format!("weights_{l}"), vec![ch.weights.len()], &ch.weights));
        if m.kind == TensorKind::SparseGpr {
            arrays.push((format!("sparse_features_{l}"), vec![total, 2 * l + 1, ch.n_features], &ch.sparse_features));
            arrays.push((format!("sparse_scalar_{l}"), vec![total, ch.n_scalar], &ch.sparse_scalar));
        }
        let mut entry = serde_json::json!({
            "lambda": l, "n_features": ch.n_features, "n_scalar": ch.n_scalar,
            "sparse_counts": ch.sparse_counts, "offset": ch.offset,
        });
        if !ch.charges.is_empty() {
            entry["charges"] = serde_json::json!(true);
            arrays.push((format!("charges_{l}"), vec![ch.charges.len()], &ch.charges));
        }
        channels.push(entry);
    }
    let mut table = Vec::new();
    let mut offset = 0usize;
    for (name, shape, data) in &arrays {
        table.push(serde_json::json!({ "name": name, "offset": offset, "shape": shape, "dtype": "<f8" }));
        offset += data.len() * 8;
    }
    let hypers: serde_json::Value = serde_json::from_str(&m.hypers).map_err(|e| Error::InvalidParameter(format!("hypers: {e}")))?;
    let header = serde_json::json!({
        "format": "acdc-model",
        "kind": m.kind.name(),
        "acdc_version": env!("CARGO_PKG_VERSION"),
        "target": m.target.name(),
        "hypers": hypers,
        "species": m.species,
        "zeta": m.zeta,
        "jitter": m.jitter,
        "regularizer": m.regularizer,
        "sigma": m.sigma,
        "channels": channels,
        "meta": m.meta,
        "arrays": table,
    });
    let header = serde_json::to_vec(&header).map_err(|e| Error::InvalidParameter(format!("model header: {e}")))?;
    let mut out = Vec::with_capacity(32 + header.len() + offset);
    out.extend_from_slice(MAGIC);
    // tensor models use no version-2 extension (the 2-body term of energy models)
    let version: u32 = if m.has_charges() { CHARGES_FORMAT_VERSION } else { 1 };
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

/// Checks the framing and returns (header, start of the array section, body without the CRC, format version).
fn frame<'a>(bytes: &'a [u8], what: &str) -> Result<(serde_json::Value, usize, &'a [u8], u32)> {
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(bad(what, "not an acdc model file (wrong magic bytes; expected a file written by model.save)"));
    }
    if bytes.len() < 28 {
        return Err(bad(what, format!("truncated model file ({} bytes)", bytes.len())));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if !(1..=MAX_VERSION).contains(&version) {
        return Err(bad(what, format!("model file format version {version} is not supported (this acdc reads versions 1 to {MAX_VERSION})")));
    }
    let body = &bytes[..bytes.len() - 4];
    let stored = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().expect("4 bytes"));
    let header_len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    if header_len > body.len().saturating_sub(24) as u64 {
        return Err(bad(what, format!("truncated model file: the header needs {header_len} bytes, the file has {}", bytes.len())));
    }
    let header_len = header_len as usize;
    if crc32fast::hash(body) != stored {
        return Err(bad(what, "checksum mismatch: the model file is corrupted or truncated"));
    }
    let header: serde_json::Value = serde_json::from_slice(&bytes[24..24 + header_len]).map_err(|e| bad(what, format!("header: {e}")))?;
    let data_start = (24 + header_len).div_ceil(8) * 8;
    Ok((header, data_start, body, version))
}

/// The `kind` of a model file ("sparse_gpr", "linear", "sparse_tensor_gpr", …) after checking its framing.
pub fn kind_of(bytes: &[u8], what: &str) -> Result<String> {
    let (header, _, _, _) = frame(bytes, what)?;
    header.get("kind").and_then(|v| v.as_str()).map(str::to_string).ok_or_else(|| bad(what, "header has no \"kind\""))
}

/// Reads a tensor model; `what` names the file in errors.
pub fn from_bytes(bytes: &[u8], what: &str) -> Result<TensorModel> {
    let (header, data_start, body, version) = frame(bytes, what)?;
    let field = |name: &str| header.get(name).ok_or_else(|| bad(what, format!("header has no \"{name}\"")));
    let num = |name: &str| field(name).and_then(|v| v.as_f64().ok_or_else(|| bad(what, format!("header \"{name}\" is not a number"))));
    let kind = match field("kind")?.as_str() {
        Some("sparse_tensor_gpr") => TensorKind::SparseGpr,
        Some("tensor_linear") => TensorKind::Linear,
        Some(other @ ("sparse_gpr" | "linear")) => {
            return Err(bad(what, format!("holds a {other} energy model, not a tensor model (load it with SparseGPR.load / LinearModel.load)")))
        }
        other => return Err(bad(what, format!("unknown model kind {other:?}"))),
    };
    let target = TensorTarget::from_name(field("target")?.as_str().unwrap_or("")).map_err(|e| bad(what, e))?;
    let species: Vec<i32> = serde_json::from_value(field("species")?.clone()).map_err(|e| bad(what, format!("species: {e}")))?;
    let zeta = num("zeta")?;
    if !(zeta.fract() == 0.0 && (1.0..=1024.0).contains(&zeta)) {
        return Err(bad(what, format!("zeta = {zeta} (expected an integer between 1 and 1024)")));
    }
    let table = field("arrays")?.as_array().ok_or_else(|| bad(what, "arrays is not a list"))?;
    let array = |name: &str, expected: Option<usize>| -> Result<Vec<f64>> {
        let entry = table.iter().find(|e| e.get("name").and_then(|v| v.as_str()) == Some(name)).ok_or_else(|| bad(what, format!("array \"{name}\" is missing")))?;
        if entry.get("dtype").and_then(|v| v.as_str()) != Some("<f8") {
            return Err(bad(what, format!("array \"{name}\" is not little-endian float64")));
        }
        let offset = entry.get("offset").and_then(|v| v.as_u64()).ok_or_else(|| bad(what, format!("array \"{name}\" has no offset")))?;
        let shape: Vec<u64> = serde_json::from_value(entry.get("shape").cloned().unwrap_or_default()).map_err(|e| bad(what, format!("array \"{name}\" shape: {e}")))?;
        let count = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).ok_or_else(|| bad(what, format!("array \"{name}\" is too large")))?;
        if let Some(e) = expected {
            if count != e as u64 {
                return Err(bad(what, format!("array \"{name}\" has {count} values, the header implies {e}")));
            }
        }
        let start = (data_start as u64).checked_add(offset).ok_or_else(|| bad(what, "bad offset"))?;
        let end = count.checked_mul(8).and_then(|b| start.checked_add(b)).ok_or_else(|| bad(what, "bad size"))?;
        if end > body.len() as u64 {
            return Err(bad(what, format!("truncated model file: array \"{name}\" ends at byte {end}, the data ends at {}", body.len())));
        }
        Ok(body[start as usize..end as usize].chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect())
    };
    let list = field("channels")?.as_array().ok_or_else(|| bad(what, "channels is not a list"))?;
    if list.len() != target.lambdas().len() {
        return Err(bad(what, format!("{} channels for a {} model (expected λ = {:?})", list.len(), target.name(), target.lambdas())));
    }
    let mut channels = Vec::new();
    for (entry, &lambda) in list.iter().zip(target.lambdas()) {
        let get = |name: &str| entry.get(name).and_then(|v| v.as_u64()).ok_or_else(|| bad(what, format!("channel λ = {lambda}: \"{name}\" is missing or not an integer")));
        if get("lambda")? != lambda as u64 {
            return Err(bad(what, format!("channel λ = {lambda} is stored as λ = {}", get("lambda")?)));
        }
        // sizes are bounded by the file length before they size anything
        let limit = body.len() as u64;
        let n_features = get("n_features")?;
        let n_scalar = get("n_scalar")?;
        if n_features > limit || n_scalar > limit {
            return Err(bad(what, format!("channel λ = {lambda}: property counts {n_features} / {n_scalar} exceed the file size")));
        }
        let (n_features, n_scalar) = (n_features as usize, n_scalar as usize);
        let counts: Vec<u64> = serde_json::from_value(entry.get("sparse_counts").cloned().unwrap_or_default()).map_err(|e| bad(what, format!("channel λ = {lambda}: sparse_counts: {e}")))?;
        if counts.len() != species.len() || counts.iter().any(|&c| c > limit) {
            return Err(bad(what, format!("channel λ = {lambda}: sparse_counts {counts:?} do not match species {species:?}")));
        }
        let counts: Vec<usize> = counts.into_iter().map(|c| c as usize).collect();
        let offset = entry.get("offset").and_then(|v| v.as_f64()).ok_or_else(|| bad(what, format!("channel λ = {lambda}: offset is missing")))?;
        let n_mu = 2 * lambda + 1;
        let total: usize = counts.iter().sum();
        let (weights, sparse_features, sparse_scalar) = match kind {
            TensorKind::SparseGpr => (
                array(&format!("weights_{lambda}"), Some(total * n_mu))?,
                array(&format!("sparse_features_{lambda}"), total.checked_mul(n_mu * n_features))?,
                array(&format!("sparse_scalar_{lambda}"), total.checked_mul(n_scalar))?,
            ),
            TensorKind::Linear => (array(&format!("weights_{lambda}"), species.len().checked_mul(n_features))?, Vec::new(), Vec::new()),
        };
        let charges = match entry.get("charges") {
            None | Some(serde_json::Value::Bool(false)) => Vec::new(),
            Some(serde_json::Value::Bool(true)) => {
                if version < CHARGES_FORMAT_VERSION {
                    return Err(bad(what, format!("format version {version} cannot hold charges (the charge term needs version {CHARGES_FORMAT_VERSION})")));
                }
                array(&format!("charges_{lambda}"), Some(species.len()))?
            }
            Some(other) => return Err(bad(what, format!("channel λ = {lambda}: \"charges\" = {other} (expected true or false)"))),
        };
        channels.push(Channel { lambda, n_features, n_scalar, sparse_counts: counts, sparse_features, sparse_scalar, weights, offset, charges });
    }
    let hypers = serde_json::to_string(field("hypers")?).map_err(|e| bad(what, format!("hypers: {e}")))?;
    TensorModel::assemble(
        kind,
        target,
        hypers,
        species,
        zeta as u32,
        num("jitter")?,
        num("regularizer")?,
        num("sigma")?,
        channels,
        header.get("meta").cloned().unwrap_or(serde_json::Value::Null),
    )
    .map_err(|e| bad(what, e))
}
