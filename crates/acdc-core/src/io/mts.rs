//! metatensor's `.mts` files: a numpy `.npz` archive (ZIP, entries STORED)
//! holding `keys.npy` and, for block `i`, `blocks/i/{values,samples,properties}.npy`,
//! `blocks/i/components/k.npy` and the same under `blocks/i/gradients/<parameter>/`
//! (gradient blocks share their parent's properties, which are not stored again).
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::npy;
use crate::error::{Error, Result};
use crate::tensor::{Labels, TensorBlock, TensorMap, TensorMapOf};

fn zip_error(e: zip::result::ZipError) -> Error {
    Error::Io(format!("not a valid .mts (zip) archive: {e}"))
}

/// Writes `tensor` in metatensor's format (float64 values), streaming each
/// array into the archive without an intermediate copy.
pub fn save<W: Write + Seek, V: AsRef<[f64]>>(out: W, tensor: &TensorMapOf<V>) -> Result<W> {
    let mut zip = ZipWriter::new(out);
    let start = |zip: &mut ZipWriter<W>, name: String, bytes: usize| -> Result<()> {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .large_file(bytes as u64 >= u32::MAX as u64 - 65536);
        zip.start_file(name, options).map_err(zip_error)
    };
    let labels = |zip: &mut ZipWriter<W>, name: String, l: &Labels| -> Result<()> {
        l.check(&name)?;
        start(zip, name, l.values.len() * 4)?;
        npy::write_labels(zip, l)
    };
    labels(&mut zip, "keys.npy".into(), &tensor.keys)?;
    for (i, block) in tensor.blocks.iter().enumerate() {
        let mut blocks = vec![(format!("blocks/{i}"), block, true)];
        blocks.extend(block.gradients.iter().map(|(p, g)| (format!("blocks/{i}/gradients/{p}"), g, false)));
        for (prefix, b, with_properties) in blocks {
            let values = b.values.as_ref();
            start(&mut zip, format!("{prefix}/values.npy"), values.len() * 8)?;
            npy::write_f64(&mut zip, &b.shape(), values, npy::Scalar::F64)?;
            labels(&mut zip, format!("{prefix}/samples.npy"), &b.samples)?;
            for (k, c) in b.components.iter().enumerate() {
                labels(&mut zip, format!("{prefix}/components/{k}.npy"), c)?;
            }
            if with_properties {
                labels(&mut zip, format!("{prefix}/properties.npy"), &b.properties)?;
            }
        }
    }
    zip.finish().map_err(zip_error)
}

/// How much larger than its compressed bytes a deflated entry can be
/// (deflate's best case is about 1032:1); a larger declared size is a lie.
const DEFLATE_MAX_RATIO: u64 = 1032;

/// Reads a `.mts` file (or any npz in metatensor's layout).
///
/// Every size read from the archive is checked against the bytes actually
/// there before anything is allocated, and the archive's entries are indexed
/// once, so loading is linear in the size of the file.
pub fn load<R: Read + Seek>(mut input: R) -> Result<TensorMap> {
    let archive_len = input.seek(SeekFrom::End(0))?;
    input.seek(SeekFrom::Start(0))?;
    let mut zip = ZipArchive::new(input).map_err(zip_error)?;
    let names: Vec<String> =
        zip.file_names().map(|n| n.map(|n| n.into_owned())).collect::<std::result::Result<_, _>>().map_err(zip_error)?;
    // Per block: its component count and gradient parameters, from one pass
    // over the entry names.
    let mut components: HashMap<&str, usize> = HashMap::new();
    let mut parameters: HashMap<&str, Vec<&str>> = HashMap::new();
    for name in &names {
        if let Some((prefix, rest)) = name.split_once("/components/") {
            if let Some(k) = rest.strip_suffix(".npy").and_then(|k| k.parse::<usize>().ok()) {
                let n = components.entry(prefix).or_default();
                *n = (*n).max(k.saturating_add(1));
            }
        }
        if let Some(rest) = name.strip_prefix("blocks/") {
            if let Some((block, rest)) = rest.split_once("/gradients/") {
                if let Some(p) = rest.strip_suffix("/values.npy").filter(|p| !p.contains('/')) {
                    parameters.entry(&name[..7 + block.len()]).or_default().push(p);
                }
            }
        }
    }
    let mut read = |name: &str| -> Result<npy::NpyArray> {
        let file = zip.by_name(name).map_err(|_| Error::Io(format!("not a metatensor file: missing entry '{name}'")))?;
        let declared = file.size();
        let limit = match file.compression() {
            CompressionMethod::Stored => file.compressed_size(),
            _ => file.compressed_size().saturating_mul(DEFLATE_MAX_RATIO),
        };
        if declared > limit || file.compressed_size() > archive_len {
            return Err(Error::Io(format!(
                "{name}: declares {declared} bytes but holds {} compressed bytes (corrupt archive)",
                file.compressed_size()
            )));
        }
        let mut bytes = Vec::new();
        let size = usize::try_from(declared).map_err(|_| Error::Io(format!("{name}: {declared} bytes is too large")))?;
        bytes.try_reserve_exact(size).map_err(|_| {
            Error::Io(format!("{name}: not enough memory for its {declared} bytes ({:.1} GB)", declared as f64 * 1e-9))
        })?;
        // never read past the declared size, whatever the compressed stream holds
        file.take(declared + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Io(format!("{name}: {e} (truncated or corrupt archive?)")))?;
        if bytes.len() as u64 != declared {
            return Err(Error::Io(format!("{name}: holds {} bytes, not the {declared} its header declares", bytes.len())));
        }
        npy::read(&bytes, name)
    };
    let keys = read("keys.npy")?.to_labels("keys.npy")?;
    keys.check("keys.npy").map_err(|e| Error::Io(e.to_string()))?;
    // each block has at least values, samples and properties entries
    if keys.count() > names.len() / 3 {
        return Err(Error::Io(format!(
            "keys.npy has {} entries but the archive only holds {} files (3 or more per block)",
            keys.count(),
            names.len()
        )));
    }
    let mut blocks = Vec::with_capacity(keys.count());
    for i in 0..keys.count() {
        let prefix = format!("blocks/{i}");
        let name = format!("{prefix}/properties.npy");
        let properties = read(&name)?.to_labels(&name)?;
        properties.check(&name).map_err(|e| Error::Io(strip_kind(&e)))?;
        let n_components = components.get(prefix.as_str()).copied().unwrap_or(0);
        let mut block = read_block(&mut read, n_components, &prefix, properties.clone())?;
        let mut params: Vec<&str> = parameters.get(prefix.as_str()).cloned().unwrap_or_default();
        params.sort_unstable();
        for p in params {
            let g_prefix = format!("{prefix}/gradients/{p}");
            let n = components.get(g_prefix.as_str()).copied().unwrap_or(0);
            let g = read_block(&mut read, n, &g_prefix, properties.clone())?;
            block.add_gradient(p, g).map_err(|e| Error::Io(format!("{g_prefix}: {}", strip_kind(&e))))?;
        }
        blocks.push(block);
    }
    TensorMap::new(keys, blocks).map_err(|e| Error::Io(strip_kind(&e)))
}

/// The message of a core error without its "invalid parameter:" prefix, to
/// be re-labelled as a file error.
fn strip_kind(e: &Error) -> String {
    match e {
        Error::InvalidParameter(m) | Error::InvalidSystem(m) | Error::Io(m) | Error::Numerical(m) => m.clone(),
        other => other.to_string(),
    }
}

fn read_block(
    read: &mut impl FnMut(&str) -> Result<npy::NpyArray>,
    n_components: usize,
    prefix: &str,
    properties: Labels,
) -> Result<TensorBlock> {
    let labels = |read: &mut dyn FnMut(&str) -> Result<npy::NpyArray>, name: &str| -> Result<Labels> {
        let l = read(name)?.to_labels(name)?;
        l.check(name).map_err(|e| Error::Io(strip_kind(&e)))?;
        Ok(l)
    };
    let samples = labels(read, &format!("{prefix}/samples.npy"))?;
    let mut components = Vec::new();
    for k in 0..n_components {
        components.push(labels(read, &format!("{prefix}/components/{k}.npy"))?);
    }
    let values_name = format!("{prefix}/values.npy");
    let array = read(&values_name)?;
    let values = array.to_f64(&values_name)?;
    let block = TensorBlock::new(samples, components, properties, values)
        .map_err(|e| Error::Io(format!("{values_name}: {}", strip_kind(&e))))?;
    if array.shape != block.shape() {
        return Err(Error::Io(format!(
            "{values_name} has shape {:?} but its labels give {:?}",
            array.shape,
            block.shape()
        )));
    }
    Ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn example() -> TensorMap {
        let samples = Labels::new(&["system", "atom"], vec![0, 0, 0, 1, 1, 0]);
        let comps = vec![Labels::range("o3_mu", 3)];
        let props = Labels::new(&["n"], vec![0, 1]);
        let values: Vec<f64> = (0..18).map(|v| v as f64 * 0.5 - 1.0).collect();
        let mut block = TensorBlock::new(samples, comps.clone(), props.clone(), values).unwrap();
        let gs = Labels::new(&["sample", "system", "atom"], vec![0, 0, 0, 0, 0, 1, 2, 1, 0]);
        let gcomps = vec![Labels::range("xyz", 3), comps[0].clone()];
        let g = TensorBlock::new(gs, gcomps, props, (0..54).map(|v| v as f64).collect()).unwrap();
        block.gradients.push(("positions".into(), g));
        let empty = TensorBlock::new(
            Labels { names: vec!["system".into(), "atom".into()], values: vec![] },
            vec![],
            Labels::range("n", 2),
            vec![],
        )
        .unwrap();
        TensorMap::new(Labels::new(&["o3_lambda", "center_type"], vec![1, 8, 0, 1]), vec![block, empty]).unwrap()
    }

    #[test]
    fn round_trip() {
        let t = example();
        let bytes = save(std::io::Cursor::new(Vec::new()), &t).unwrap().into_inner();
        assert_eq!(load(std::io::Cursor::new(&bytes)).unwrap(), t);
        let cut = &bytes[..bytes.len() / 2];
        assert!(load(std::io::Cursor::new(cut)).is_err());
    }
}
