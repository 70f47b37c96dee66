//! Ragged radial bases: every angular channel l has its own number of
//! radial functions `sizes[l]`. The expansion engine works on a dense
//! padding (the largest size for every l, the extra functions identically
//! zero); this module drops the padded properties from a labelled result.
//!
//! Which l a radial index belongs to is read from the labels: property `n`
//! pairs with a property `l` or else the key `o3_lambda` (else l = 0), and
//! property `n_k` with property `l_k` or else `l`.
use crate::error::Result;
use crate::tensor::{Labels, TensorBlock, TensorMap};

/// Whether `sizes` describe a basis with padding to drop.
pub fn is_ragged(sizes: &[usize]) -> bool {
    let n_max = sizes.iter().copied().max().unwrap_or(0);
    sizes.iter().any(|&s| s != n_max)
}

/// For each property dimension `n…`, the dimension (in properties, or in
/// keys when `from_key`) that holds its l.
fn pairing(properties: &Labels, keys: &Labels) -> Vec<(usize, Option<usize>, Option<usize>)> {
    let mut out = Vec::new();
    for (i, name) in properties.names.iter().enumerate() {
        let l_name = if name == "n" {
            "l".to_string()
        } else if let Some(suffix) = name.strip_prefix("n_") {
            format!("l_{suffix}")
        } else {
            continue;
        };
        let in_properties = properties.dimension(&l_name).or_else(|| properties.dimension("l"));
        let in_keys = if in_properties.is_none() { keys.dimension("o3_lambda") } else { None };
        out.push((i, in_properties, in_keys));
    }
    out
}

/// Keeps the properties whose radial indices are below the size of their
/// channel, in every block and gradient; drops blocks left without
/// properties. With `key_is_channel` (the spherical expansion), the key
/// `o3_lambda` is the channel l of the block's `n`; otherwise it is a
/// coupled degree and the channels are read from the properties.
pub fn trim(tensor: TensorMap, sizes: &[usize], key_is_channel: bool) -> Result<TensorMap> {
    let size = |l: i32| -> usize { if l >= 0 && (l as usize) < sizes.len() { sizes[l as usize] } else { 0 } };
    let key_lambda = if key_is_channel { tensor.keys.dimension("o3_lambda") } else { None };
    let no_keys = Labels::new(&[], vec![]);
    let mut keys = Vec::new();
    let mut blocks = Vec::new();
    for (k, block) in tensor.blocks.into_iter().enumerate() {
        let key = tensor.keys.row(k);
        if let Some(d) = key_lambda {
            if size(key[d]) == 0 {
                continue;
            }
        }
        let pairs = pairing(&block.properties, if key_is_channel { &tensor.keys } else { &no_keys });
        let keep: Vec<usize> = block
            .properties
            .rows()
            .enumerate()
            .filter(|(_, row)| {
                pairs.iter().all(|&(n, p, kd)| {
                    let l = match (p, kd) {
                        (Some(p), _) => row[p],
                        (None, Some(kd)) => key[kd],
                        _ => 0,
                    };
                    (row[n] as usize) < size(l)
                })
            })
            .map(|(i, _)| i)
            .collect();
        if keep.is_empty() && block.properties.count() > 0 {
            continue;
        }
        keys.extend_from_slice(key);
        if keep.len() == block.properties.count() {
            blocks.push(block);
        } else {
            blocks.push(select_properties(block, &keep)?);
        }
    }
    TensorMap::new(Labels { names: tensor.keys.names.clone(), values: keys }, blocks)
}

fn select_properties(block: TensorBlock, keep: &[usize]) -> Result<TensorBlock> {
    let width = block.properties.names.len();
    let mut values = Vec::with_capacity(keep.len() * width);
    for &i in keep {
        values.extend_from_slice(block.properties.row(i));
    }
    let properties = Labels { names: block.properties.names.clone(), values };
    let select = |data: &[f64], n_props: usize| -> Vec<f64> {
        let rows = if n_props == 0 { 0 } else { data.len() / n_props };
        let mut out = Vec::with_capacity(rows * keep.len());
        for r in 0..rows {
            let row = &data[r * n_props..(r + 1) * n_props];
            out.extend(keep.iter().map(|&i| row[i]));
        }
        out
    };
    let n_props = block.properties.count();
    let mut out = TensorBlock::new(block.samples, block.components, properties.clone(), select(&block.values, n_props))?;
    for (parameter, g) in block.gradients {
        let gv = select(&g.values, n_props);
        out.gradients.push((parameter, TensorBlock::new(g.samples, g.components, properties.clone(), gv)?));
    }
    Ok(out)
}
