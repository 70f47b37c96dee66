//! Operations that turn calculator output into design matrices:
//! moving key dimensions into properties or samples, reducing over samples,
//! and joining tensors computed on separate batches. Gradients follow the
//! values; absent key combinations are filled with zeros. Orders follow
//! metatensor (sorted samples, moved key values sorted).
use std::collections::HashMap;

use super::{Labels, TensorBlock, TensorBlockOf, TensorMap, TensorMapOf};
use crate::error::{Error, Result};

/// Sorted unique rows of `values` (rows of `width`), and for each input row
/// its index among them.
fn unique_sorted(values: &[i32], width: usize) -> (Vec<i32>, Vec<usize>) {
    let n = if width == 0 { 0 } else { values.len() / width };
    let row = |i: usize| &values[i * width..(i + 1) * width];
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| row(a).cmp(row(b)));
    let mut out = Vec::with_capacity(values.len());
    let mut map = vec![0usize; n];
    let mut count = 0usize;
    for (k, &i) in order.iter().enumerate() {
        if k == 0 || row(i) != row(order[k - 1]) {
            out.extend_from_slice(row(i));
            count += 1;
        }
        map[i] = count - 1;
    }
    (out, map)
}

fn dims(labels: &Labels, names: &[String], what: &str) -> Result<Vec<usize>> {
    names
        .iter()
        .map(|n| {
            labels.dimension(n).ok_or_else(|| {
                Error::InvalidParameter(format!("{what}: no dimension named \"{n}\" (dimensions are {:?})", labels.names))
            })
        })
        .collect()
}

fn pick(row: &[i32], dims: &[usize]) -> Vec<i32> {
    dims.iter().map(|&d| row[d]).collect()
}

/// Groups the blocks by the key dimensions not in `moved`: returns the new
/// keys and, per group, the (block index, moved values) of its blocks.
fn group_by_remaining(keys: &Labels, moved: &[usize]) -> (Labels, Vec<Vec<(usize, Vec<i32>)>>) {
    let remaining: Vec<usize> = (0..keys.size()).filter(|d| !moved.contains(d)).collect();
    if remaining.is_empty() {
        if keys.count() == 0 {
            return (Labels { names: vec!["_".to_string()], values: vec![] }, vec![]);
        }
        let all = (0..keys.count()).map(|k| (k, pick(keys.row(k), moved))).collect();
        return (Labels::new(&["_"], vec![0]), vec![all]);
    }
    let mut index: HashMap<Vec<i32>, usize> = HashMap::new();
    let mut values = Vec::new();
    let mut groups: Vec<Vec<(usize, Vec<i32>)>> = Vec::new();
    for k in 0..keys.count() {
        let r = pick(keys.row(k), &remaining);
        let g = *index.entry(r.clone()).or_insert_with(|| {
            values.extend_from_slice(&r);
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push((k, pick(keys.row(k), moved)));
    }
    let names = remaining.iter().map(|&d| keys.names[d].clone()).collect();
    (Labels { names, values }, groups)
}

/// Union of the property rows of `blocks`, in first-seen order, and for each
/// block the new index of each of its properties.
fn property_union<V>(blocks: &[&TensorBlockOf<V>], key: &str) -> Result<(Labels, Vec<Vec<usize>>)> {
    let names = blocks[0].properties.names.clone();
    let mut index: HashMap<&[i32], usize> = HashMap::new();
    let mut values = Vec::new();
    let mut maps = Vec::new();
    for b in blocks {
        if b.properties.names != names {
            return Err(Error::InvalidParameter(format!(
                "{key}: blocks have different property names ({:?} and {:?})",
                names, b.properties.names
            )));
        }
        let map = b
            .properties
            .rows()
            .map(|r| {
                *index.entry(r).or_insert_with(|| {
                    values.extend_from_slice(r);
                    values.len() / names.len().max(1) - 1
                })
            })
            .collect();
        maps.push(map);
    }
    Ok((Labels { names, values }, maps))
}

fn same_components<V>(blocks: &[&TensorBlockOf<V>], key: &str) -> Result<Vec<Labels>> {
    let c = blocks[0].components.clone();
    if blocks.iter().any(|b| b.components != c) {
        return Err(Error::InvalidParameter(format!("{key}: blocks to merge have different components")));
    }
    Ok(c)
}

/// One block placed into a merged block: where its samples and properties go.
struct Placement<'a, V> {
    block: &'a TensorBlockOf<V>,
    sample_map: Vec<usize>,
    property_map: Vec<usize>,
}

/// Builds the merged block (values and gradients) from placed blocks.
fn merge<V: AsRef<[f64]>>(placed: &[Placement<V>], samples: Labels, components: Vec<Labels>, properties: Labels, key: &str) -> Result<TensorBlock> {
    samples.check(&format!("{key}: samples"))?;
    properties.check(&format!("{key}: properties"))?;
    let n_props = properties.count();
    let per_row: usize = components.iter().map(Labels::count).product();
    let mut values = zeros(&[samples.count(), per_row, n_props], key)?;
    for p in placed {
        scatter(p.block.values.as_ref(), p.block.properties.count(), per_row, &p.sample_map, &p.property_map, &mut values, n_props);
    }
    let mut block = TensorBlock::new(samples, components, properties.clone(), values)?;

    let parameters: Vec<String> = placed[0].block.gradients.iter().map(|(p, _)| p.clone()).collect();
    for parameter in parameters {
        let grads: Vec<&TensorBlockOf<V>> = placed
            .iter()
            .map(|p| {
                p.block.gradient(&parameter).ok_or_else(|| {
                    Error::InvalidParameter(format!("{key}: some blocks have \"{parameter}\" gradients and some do not"))
                })
            })
            .collect::<Result<_>>()?;
        let names = grads[0].samples.names.clone();
        let width = names.len();
        let mut rows = Vec::new();
        for (g, p) in grads.iter().zip(placed) {
            if g.samples.names != names {
                return Err(Error::InvalidParameter(format!("{key}: gradient sample names differ")));
            }
            for r in g.samples.rows() {
                rows.push(p.sample_map[r[0] as usize] as i32);
                rows.extend_from_slice(&r[1..]);
            }
        }
        let (unique, map) = unique_sorted(&rows, width);
        let gcomponents = same_components(&grads, key)?;
        let g_per_row: usize = gcomponents.iter().map(Labels::count).product();
        let gsamples = Labels { names, values: unique };
        let mut gvalues = zeros(&[gsamples.count(), g_per_row, n_props], key)?;
        let mut offset = 0;
        for (g, p) in grads.iter().zip(placed) {
            let n = g.samples.count();
            scatter(g.values.as_ref(), g.properties.count(), g_per_row, &map[offset..offset + n], &p.property_map, &mut gvalues, n_props);
            offset += n;
        }
        block.add_gradient(&parameter, TensorBlock::new(gsamples, gcomponents, properties.clone(), gvalues)?)?;
    }
    Ok(block)
}

/// Adds rows of `src` (`per_row` component entries of `src_props` each) into
/// `dst` at the mapped rows and property columns.
fn scatter(src: &[f64], src_props: usize, per_row: usize, rows: &[usize], props: &[usize], dst: &mut [f64], dst_props: usize) {
    // a zero-sized row (no properties, or a component with no entries) holds nothing to move
    if src_props == 0 || per_row == 0 {
        return;
    }
    for (s, chunk) in src.chunks_exact(per_row * src_props).enumerate() {
        let base = rows[s] * per_row * dst_props;
        for (c, line) in chunk.chunks_exact(src_props).enumerate() {
            let out = &mut dst[base + c * dst_props..base + (c + 1) * dst_props];
            for (p, &v) in line.iter().enumerate() {
                out[props[p]] += v;
            }
        }
    }
}

/// Moves the key dimensions `moved.names` into the properties. With empty
/// `moved.values`, each merged block gets the values present among its own
/// blocks (sorted; as metatensor does); with explicit values, every merged
/// block gets exactly those columns (zeros where a block is absent), which
/// fixes the column layout across blocks and batches.
pub fn keys_to_properties<V: AsRef<[f64]>>(tensor: &TensorMapOf<V>, moved: &Labels) -> Result<TensorMap> {
    let moved_dims = dims(&tensor.keys, &moved.names, "keys_to_properties")?;
    let (keys, groups) = group_by_remaining(&tensor.keys, &moved_dims);
    let mut blocks = Vec::with_capacity(groups.len());
    for (g, group) in groups.iter().enumerate() {
        let key = format!("keys_to_properties (key {:?})", keys.row(g));
        let moved_values = if moved.values.is_empty() {
            let present: Vec<i32> = group.iter().flat_map(|(_, mv)| mv.iter().copied()).collect();
            unique_sorted(&present, moved_dims.len()).0
        } else {
            moved.values.clone()
        };
        let moved_labels = Labels { names: moved.names.clone(), values: moved_values };
        let members: Vec<&TensorBlockOf<V>> = group.iter().map(|(k, _)| &tensor.blocks[*k]).collect();
        let components = same_components(&members, &key)?;
        let (props, prop_maps) = property_union(&members, &key)?;
        let sample_names = members[0].samples.names.clone();
        let mut rows = Vec::new();
        for b in &members {
            if b.samples.names != sample_names {
                return Err(Error::InvalidParameter(format!("{key}: blocks have different sample names")));
            }
            rows.extend_from_slice(&b.samples.values);
        }
        let (unique, map) = unique_sorted(&rows, sample_names.len());
        let mut placed = Vec::new();
        let mut offset = 0;
        for ((_, mv), (b, pmap)) in group.iter().zip(members.iter().zip(prop_maps)) {
            let m = moved_labels.position(mv).ok_or_else(|| {
                Error::InvalidParameter(format!("{key}: the key values {mv:?} of a block are not among the values to move"))
            })?;
            let n = b.samples.count();
            placed.push(Placement {
                block: b,
                sample_map: map[offset..offset + n].to_vec(),
                property_map: pmap.iter().map(|p| m * props.count() + p).collect(),
            });
            offset += n;
        }
        let mut names = moved_labels.names.clone();
        names.extend(props.names.iter().cloned());
        let mut values = Vec::with_capacity(moved_labels.count() * props.values.len());
        for mv in moved_labels.rows() {
            for p in props.rows() {
                values.extend_from_slice(mv);
                values.extend_from_slice(p);
            }
        }
        let properties = Labels { names, values };
        blocks.push(merge(&placed, Labels { names: sample_names, values: unique }, components, properties, &key)?);
    }
    TensorMap::new(keys, blocks)
}

/// Moves the key dimensions `names` into the samples (appended after the
/// existing sample dimensions; samples sorted).
pub fn keys_to_samples<V: AsRef<[f64]>>(tensor: &TensorMapOf<V>, names: &[String]) -> Result<TensorMap> {
    let moved_dims = dims(&tensor.keys, names, "keys_to_samples")?;
    let (keys, groups) = group_by_remaining(&tensor.keys, &moved_dims);
    let mut blocks = Vec::with_capacity(groups.len());
    for (g, group) in groups.iter().enumerate() {
        let key = format!("keys_to_samples (key {:?})", keys.row(g));
        let members: Vec<&TensorBlockOf<V>> = group.iter().map(|(k, _)| &tensor.blocks[*k]).collect();
        let components = same_components(&members, &key)?;
        let (properties, prop_maps) = property_union(&members, &key)?;
        let mut sample_names = members[0].samples.names.clone();
        sample_names.extend(names.iter().cloned());
        let mut rows = Vec::new();
        for ((_, mv), b) in group.iter().zip(&members) {
            if b.samples.names[..] != sample_names[..sample_names.len() - names.len()] {
                return Err(Error::InvalidParameter(format!("{key}: blocks have different sample names")));
            }
            for r in b.samples.rows() {
                rows.extend_from_slice(r);
                rows.extend_from_slice(mv);
            }
        }
        let (unique, map) = unique_sorted(&rows, sample_names.len());
        let mut placed = Vec::new();
        let mut offset = 0;
        for (b, pmap) in members.iter().zip(prop_maps) {
            let n = b.samples.count();
            placed.push(Placement { block: b, sample_map: map[offset..offset + n].to_vec(), property_map: pmap });
            offset += n;
        }
        blocks.push(merge(&placed, Labels { names: sample_names, values: unique }, components, properties, &key)?);
    }
    TensorMap::new(keys, blocks)
}

/// Sums (or averages, with `mean`) over the sample dimensions `names`: the
/// remaining sample dimensions label the result (e.g. summing over "atom"
/// gives per-structure features labelled by "system").
pub fn reduce_over_samples<V: AsRef<[f64]>>(tensor: &TensorMapOf<V>, names: &[String], mean: bool) -> Result<TensorMap> {
    let mut blocks = Vec::with_capacity(tensor.blocks.len());
    for (k, block) in tensor.blocks.iter().enumerate() {
        let what = format!("sum_over_samples (block {k})");
        let removed = dims(&block.samples, names, &what)?;
        let kept: Vec<usize> = (0..block.samples.size()).filter(|d| !removed.contains(d)).collect();
        let (sample_names, rows): (Vec<String>, Vec<i32>) = if kept.is_empty() {
            (vec!["_".to_string()], vec![0; block.samples.count()])
        } else {
            (kept.iter().map(|&d| block.samples.names[d].clone()).collect(), block.samples.rows().flat_map(|r| pick(r, &kept)).collect())
        };
        let (unique, map) = unique_sorted(&rows, sample_names.len());
        let samples = Labels { names: sample_names, values: unique };
        let mut counts = vec![0usize; samples.count()];
        map.iter().for_each(|&m| counts[m] += 1);
        let n_props = block.properties.count();
        let identity: Vec<usize> = (0..n_props).collect();
        let per_row: usize = block.components.iter().map(Labels::count).product();
        let mut values = zeros(&[samples.count(), per_row, n_props], &what)?;
        scatter(block.values.as_ref(), n_props, per_row, &map, &identity, &mut values, n_props);
        if mean {
            divide_rows(&mut values, per_row * n_props, |r| counts[r]);
        }
        let mut out = TensorBlock::new(samples, block.components.clone(), block.properties.clone(), values)?;
        for (parameter, g) in &block.gradients {
            let width = g.samples.size();
            let rows: Vec<i32> = g
                .samples
                .rows()
                .flat_map(|r| std::iter::once(map[r[0] as usize] as i32).chain(r[1..].iter().copied()))
                .collect();
            let (unique, gmap) = unique_sorted(&rows, width);
            let gsamples = Labels { names: g.samples.names.clone(), values: unique };
            let g_per_row: usize = g.components.iter().map(Labels::count).product();
            let mut gvalues = zeros(&[gsamples.count(), g_per_row, n_props], &what)?;
            scatter(g.values.as_ref(), n_props, g_per_row, &gmap, &identity, &mut gvalues, n_props);
            if mean {
                let parent: Vec<usize> = gsamples.rows().map(|r| r[0] as usize).collect();
                divide_rows(&mut gvalues, g_per_row * n_props, |r| counts[parent[r]]);
            }
            out.add_gradient(parameter, TensorBlock::new(gsamples, g.components.clone(), g.properties.clone(), gvalues)?)?;
        }
        blocks.push(out);
    }
    TensorMap::new(tensor.keys.clone(), blocks)
}

/// A zeroed buffer of the product of `dims` values; an error, not an abort,
/// when the product overflows or the memory cannot be had.
fn zeros(dims: &[usize], what: &str) -> Result<Vec<f64>> {
    let len = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::InvalidParameter(format!("{what}: the result would have more than 2^64 values")))?;
    super::buffer::zeroed(len, what)
}

fn divide_rows(values: &mut [f64], row: usize, count: impl Fn(usize) -> usize) {
    if row == 0 {
        return;
    }
    for (r, chunk) in values.chunks_exact_mut(row).enumerate() {
        let inv = 1.0 / count(r).max(1) as f64;
        chunk.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Concatenates tensors computed on consecutive batches of systems along the
/// samples, shifting the "system" sample dimension of tensor `t` by the number
/// of systems in the tensors before it (`system_counts[t]`, or one more than
/// the largest system index found when not given). Keys are the sorted union.
pub fn join_samples<V: AsRef<[f64]>>(tensors: &[TensorMapOf<V>], system_counts: Option<&[usize]>) -> Result<TensorMap> {
    let Some(first) = tensors.first() else {
        return Err(Error::InvalidParameter("join: no tensors given".into()));
    };
    if let Some(c) = system_counts {
        if c.len() != tensors.len() {
            return Err(Error::InvalidParameter(format!("join: {} system counts for {} tensors", c.len(), tensors.len())));
        }
    }
    let too_many = || Error::InvalidParameter("join: the renumbered system indices do not fit in 32-bit integers".into());
    let mut offsets = Vec::with_capacity(tensors.len());
    let mut total = 0i64;
    for (t, tensor) in tensors.iter().enumerate() {
        if tensor.keys.names != first.keys.names {
            return Err(Error::InvalidParameter(format!(
                "join: tensor {t} has key names {:?}, tensor 0 has {:?}",
                tensor.keys.names, first.keys.names
            )));
        }
        offsets.push(i32::try_from(total).map_err(|_| too_many())?);
        total += match system_counts {
            Some(c) => i64::try_from(c[t]).map_err(|_| too_many())?,
            None => tensor
                .blocks
                .iter()
                .filter_map(|b| {
                    let d = b.samples.dimension("system")?;
                    b.samples.rows().map(|r| i64::from(r[d]) + 1).max()
                })
                .max()
                .unwrap_or(0)
                .max(0),
        };
        if total > i64::from(i32::MAX) {
            return Err(too_many());
        }
    }
    let all_keys: Vec<i32> = tensors.iter().flat_map(|t| t.keys.values.iter().copied()).collect();
    let (unique, _) = unique_sorted(&all_keys, first.keys.size());
    let keys = Labels { names: first.keys.names.clone(), values: unique };
    let mut blocks = Vec::with_capacity(keys.count());
    for k in 0..keys.count() {
        let parts: Vec<(i32, &TensorBlockOf<V>)> = tensors
            .iter()
            .zip(&offsets)
            .filter_map(|(t, &o)| t.keys.position(keys.row(k)).map(|i| (o, &t.blocks[i])))
            .collect();
        blocks.push(join_block(&parts, &format!("join (key {:?})", keys.row(k)))?);
    }
    TensorMap::new(keys, blocks)
}

fn join_block<V: AsRef<[f64]>>(parts: &[(i32, &TensorBlockOf<V>)], key: &str) -> Result<TensorBlock> {
    let b0 = parts[0].1;
    fn parameters<V>(b: &TensorBlockOf<V>) -> Vec<&str> {
        let mut p: Vec<&str> = b.gradients.iter().map(|(p, _)| p.as_str()).collect();
        p.sort_unstable();
        p
    }
    for (_, b) in parts {
        if b.samples.names != b0.samples.names || b.components != b0.components || b.properties != b0.properties {
            return Err(Error::InvalidParameter(format!(
                "{key}: blocks differ in sample names, components or properties (were they computed with the same hyper-parameters?)"
            )));
        }
        if parameters(b) != parameters(b0) {
            return Err(Error::InvalidParameter(format!("{key}: some tensors have gradients that others do not")));
        }
    }
    let overflow = || Error::InvalidParameter(format!("{key}: the renumbered samples do not fit in 32-bit integers"));
    let shift = |labels: &Labels, offset: i32, sample_offset: Option<i32>| -> Result<Vec<i32>> {
        let d = labels.dimension("system");
        let mut v = labels.values.clone();
        for row in v.chunks_exact_mut(labels.size().max(1)) {
            if let Some(d) = d {
                row[d] = row[d].checked_add(offset).ok_or_else(overflow)?;
            }
            if let Some(s) = sample_offset {
                row[0] = row[0].checked_add(s).ok_or_else(overflow)?;
            }
        }
        Ok(v)
    };
    let mut samples = Vec::new();
    let mut values = Vec::new();
    for (o, b) in parts {
        samples.extend(shift(&b.samples, *o, None)?);
        values.extend_from_slice(b.values.as_ref());
    }
    let mut out = TensorBlock::new(
        Labels { names: b0.samples.names.clone(), values: samples },
        b0.components.clone(),
        b0.properties.clone(),
        values,
    )?;
    for (parameter, g0) in &b0.gradients {
        let mut gsamples = Vec::new();
        let mut gvalues = Vec::new();
        let mut sample_offset = 0i32;
        for (o, b) in parts {
            let g = b.gradient(parameter).ok_or_else(|| {
                Error::InvalidParameter(format!("{key}: some tensors have \"{parameter}\" gradients and some do not"))
            })?;
            if g.samples.names != g0.samples.names || g.components != g0.components {
                return Err(Error::InvalidParameter(format!(
                    "{key}: the \"{parameter}\" gradients differ in sample names or components"
                )));
            }
            gsamples.extend(shift(&g.samples, *o, Some(sample_offset))?);
            gvalues.extend_from_slice(g.values.as_ref());
            let n = i32::try_from(b.samples.count()).map_err(|_| overflow())?;
            sample_offset = sample_offset.checked_add(n).ok_or_else(overflow)?;
        }
        let g = TensorBlock::new(
            Labels { names: g0.samples.names.clone(), values: gsamples },
            g0.components.clone(),
            g0.properties.clone(),
            gvalues,
        )?;
        out.add_gradient(parameter, g)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(samples: &[[i32; 2]], props: &[i32], base: f64, grad: bool) -> TensorBlock {
        let s = Labels::new(&["system", "atom"], samples.iter().flatten().copied().collect());
        let p = Labels::new(&["n"], props.to_vec());
        let values: Vec<f64> = (0..samples.len() * props.len()).map(|v| base + v as f64).collect();
        let mut b = TensorBlock::new(s, vec![], p.clone(), values).unwrap();
        if grad {
            // one gradient row per sample, with respect to atom 0 of its system
            let gs: Vec<i32> = samples.iter().enumerate().flat_map(|(i, s)| [i as i32, s[0], 0]).collect();
            let n = samples.len();
            let gv: Vec<f64> = (0..n * 3 * props.len()).map(|v| -base - v as f64).collect();
            let g = TensorBlock::new(Labels::new(&["sample", "system", "atom"], gs), vec![Labels::range("xyz", 3)], p, gv).unwrap();
            b.add_gradient("positions", g).unwrap();
        }
        b
    }

    fn tensor(grad: bool) -> TensorMap {
        // keys (center, neighbor): (1,1), (1,8), (8,8); no (8,1) block
        let keys = Labels::new(&["center_type", "neighbor_type"], vec![1, 1, 1, 8, 8, 8]);
        TensorMap::new(
            keys,
            vec![
                block(&[[0, 1], [0, 2]], &[0, 1], 10.0, grad),
                block(&[[0, 2]], &[0, 1], 20.0, grad),
                block(&[[0, 0], [1, 0]], &[0, 1], 30.0, grad),
            ],
        )
        .unwrap()
    }

    #[test]
    fn keys_to_properties_fills_absent_blocks() {
        let t = tensor(true);
        let moved = Labels { names: vec!["neighbor_type".into()], values: vec![] };
        let r = keys_to_properties(&t, &moved).unwrap();
        assert_eq!(r.keys, Labels::new(&["center_type"], vec![1, 8]));
        let b = &r.blocks[0];
        assert_eq!(b.properties, Labels::new(&["neighbor_type", "n"], vec![1, 0, 1, 1, 8, 0, 8, 1]));
        assert_eq!(b.samples, Labels::new(&["system", "atom"], vec![0, 1, 0, 2]));
        // atom 1 has no neighbour of type 8: zeros there
        assert_eq!(b.values, vec![10.0, 11.0, 0.0, 0.0, 12.0, 13.0, 20.0, 21.0]);
        // per merged block, the values present in its own keys (metatensor's rule)
        let b8 = &r.blocks[1];
        assert_eq!(b8.properties, Labels::new(&["neighbor_type", "n"], vec![8, 0, 8, 1]));
        assert_eq!(b8.values, vec![30.0, 31.0, 32.0, 33.0]);
        let g = b.gradient("positions").unwrap();
        assert_eq!(g.samples, Labels::new(&["sample", "system", "atom"], vec![0, 0, 0, 1, 0, 0]));
        // sample 1 (atom 2): neighbour-1 gradient row 1, neighbour-8 gradient row 0
        assert_eq!(&g.values[12..16], &[-16.0, -17.0, -20.0, -21.0]);
        // explicit values give fixed columns, including ones absent everywhere
        let fixed = Labels::new(&["neighbor_type"], vec![1, 6, 8]);
        let r = keys_to_properties(&t, &fixed).unwrap();
        assert_eq!(r.blocks[0].properties.count(), 6);
        assert_eq!(r.blocks[0].values[..6], [10.0, 11.0, 0.0, 0.0, 0.0, 0.0]);
        assert!(keys_to_properties(&t, &Labels::new(&["neighbor_type"], vec![1])).is_err());
        assert!(keys_to_properties(&t, &Labels { names: vec!["x".into()], values: vec![] }).is_err());
    }

    #[test]
    fn keys_to_samples_sorts_and_keeps_gradients() {
        let t = tensor(true);
        let r = keys_to_samples(&t, &["center_type".to_string()]).unwrap();
        assert_eq!(r.keys, Labels::new(&["neighbor_type"], vec![1, 8]));
        let b = &r.blocks[1];
        assert_eq!(b.samples, Labels::new(&["system", "atom", "center_type"], vec![0, 0, 8, 0, 2, 1, 1, 0, 8]));
        assert_eq!(b.values, vec![30.0, 31.0, 20.0, 21.0, 32.0, 33.0]);
        let g = b.gradient("positions").unwrap();
        assert_eq!(g.samples, Labels::new(&["sample", "system", "atom"], vec![0, 0, 0, 1, 0, 0, 2, 1, 0]));
        assert_eq!(&g.values[6..8], &[-20.0, -21.0]);
    }

    #[test]
    fn sum_and_mean_over_atoms() {
        let t = tensor(true);
        let s = reduce_over_samples(&t, &["atom".to_string()], false).unwrap();
        assert_eq!(s.blocks[0].samples, Labels::new(&["system"], vec![0]));
        assert_eq!(s.blocks[0].values, vec![22.0, 24.0]);
        let g = s.blocks[0].gradient("positions").unwrap();
        assert_eq!(g.samples, Labels::new(&["sample", "system", "atom"], vec![0, 0, 0]));
        assert_eq!(g.values[0], -10.0 - 16.0);
        let m = reduce_over_samples(&t, &["atom".to_string()], true).unwrap();
        assert_eq!(m.blocks[0].values, vec![11.0, 12.0]);
        assert_eq!(m.blocks[0].gradient("positions").unwrap().values[0], -13.0);
        assert_eq!(m.blocks[2].values, vec![30.0, 31.0, 32.0, 33.0]);
        let all = reduce_over_samples(&t, &["system".to_string(), "atom".to_string()], false).unwrap();
        assert_eq!(all.blocks[2].samples, Labels::new(&["_"], vec![0]));
        assert!(reduce_over_samples(&t, &["structure".to_string()], false).is_err());
    }

    #[test]
    fn join_renumbers_systems() {
        let a = tensor(true);
        let keys = Labels::new(&["center_type", "neighbor_type"], vec![1, 1]);
        let b = TensorMap::new(keys, vec![block(&[[0, 0], [2, 1]], &[0, 1], 50.0, true)]).unwrap();
        let j = join_samples(&[a.clone(), b.clone()], None).unwrap();
        assert_eq!(j.keys.count(), 3);
        assert_eq!(j.blocks[0].samples, Labels::new(&["system", "atom"], vec![0, 1, 0, 2, 2, 0, 4, 1]));
        let g = j.blocks[0].gradient("positions").unwrap();
        assert_eq!(g.samples.row(3), &[3, 4, 0]);
        let j = join_samples(&[a.clone(), b], Some(&[5, 3])).unwrap();
        assert_eq!(j.blocks[0].samples.row(2), &[5, 0]);
        let no_grad = tensor(false);
        assert!(join_samples(&[a, no_grad], None).is_err());
        assert!(join_samples::<Vec<f64>>(&[], None).is_err());
    }
}
