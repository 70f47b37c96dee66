//! metatensor's `.mts` files: a numpy `.npz` archive (ZIP, entries STORED)
//! holding `keys.npy` and, for block `i`, `blocks/i/{values,samples,properties}.npy`,
//! `blocks/i/components/k.npy` and the same under `blocks/i/gradients/<parameter>/`
//! (gradient blocks share their parent's properties, which are not stored again).
use std::io::{Read, Seek, Write};

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

/// Reads a `.mts` file (or any npz in metatensor's layout).
pub fn load<R: Read + Seek>(input: R) -> Result<TensorMap> {
    let mut zip = ZipArchive::new(input).map_err(zip_error)?;
    let names: Vec<String> =
        zip.file_names().map(|n| n.map(|n| n.into_owned())).collect::<std::result::Result<_, _>>().map_err(zip_error)?;
    let mut read = |name: &str| -> Result<npy::NpyArray> {
        let mut file = zip.by_name(name).map_err(|_| Error::Io(format!("not a metatensor file: missing entry '{name}'")))?;
        let mut bytes = Vec::with_capacity(file.size().min(1 << 30) as usize);
        file.read_to_end(&mut bytes).map_err(|e| Error::Io(format!("{name}: {e} (truncated or corrupt archive?)")))?;
        npy::read(&bytes, name)
    };
    let keys = read("keys.npy")?.to_labels("keys.npy")?;
    let mut blocks = Vec::with_capacity(keys.count());
    for i in 0..keys.count() {
        let prefix = format!("blocks/{i}");
        let properties = read(&format!("{prefix}/properties.npy"))?.to_labels("properties")?;
        let mut block = read_block(&mut read, &names, &prefix, properties.clone())?;
        let grad_prefix = format!("{prefix}/gradients/");
        let mut parameters: Vec<String> = names
            .iter()
            .filter_map(|n| n.strip_prefix(&grad_prefix)?.strip_suffix("/values.npy"))
            .filter(|p| !p.contains('/'))
            .map(str::to_string)
            .collect();
        parameters.sort();
        for p in parameters {
            let g = read_block(&mut read, &names, &format!("{grad_prefix}{p}"), properties.clone())?;
            check_gradient(&block, &g, &p, i)?;
            block.gradients.push((p, g));
        }
        blocks.push(block);
    }
    TensorMap::new(keys, blocks)
}

fn read_block(
    read: &mut impl FnMut(&str) -> Result<npy::NpyArray>,
    names: &[String],
    prefix: &str,
    properties: Labels,
) -> Result<TensorBlock> {
    let samples = read(&format!("{prefix}/samples.npy"))?.to_labels("samples")?;
    let mut components = Vec::new();
    while names.iter().any(|n| *n == format!("{prefix}/components/{}.npy", components.len())) {
        let name = format!("{prefix}/components/{}.npy", components.len());
        components.push(read(&name)?.to_labels(&name)?);
    }
    let values_name = format!("{prefix}/values.npy");
    let array = read(&values_name)?;
    let values = array.to_f64(&values_name)?;
    let block = TensorBlock::new(samples, components, properties, values)
        .map_err(|e| Error::Io(format!("{values_name}: {e}")))?;
    if array.shape != block.shape() {
        return Err(Error::Io(format!(
            "{values_name} has shape {:?} but its labels give {:?}",
            array.shape,
            block.shape()
        )));
    }
    Ok(block)
}

fn check_gradient(block: &TensorBlock, g: &TensorBlock, parameter: &str, i: usize) -> Result<()> {
    let ok = g.samples.names.first().map(String::as_str) == Some("sample")
        && g.samples.rows().all(|r| (r[0] as usize) < block.samples.count() && r[0] >= 0)
        && g.components.len() >= block.components.len()
        && g.components[g.components.len() - block.components.len()..] == block.components[..];
    if ok {
        Ok(())
    } else {
        Err(Error::Io(format!(
            "blocks/{i}/gradients/{parameter}: gradient samples must start with 'sample' (< {}) and its components must end with the block's",
            block.samples.count()
        )))
    }
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
