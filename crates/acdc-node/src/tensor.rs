//! TensorMaps handed to JavaScript: typed arrays over Rust-built buffers
//! (moved, not copied).
use acdc_core::tensor::{Labels, TensorBlock, TensorBlockOf, TensorMap, TensorMapOf};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::external::{f64_array, i32_array};

/// Labels: names and row-major values.
#[napi(object)]
pub struct LabelsData {
    /// dimension names
    pub names: Vec<String>,
    /// row-major values, count × names.length
    pub values: Int32Array,
}

/// A block with its gradients.
#[napi(object)]
pub struct BlockData {
    /// sample labels
    pub samples: LabelsData,
    /// component labels, one per middle dimension
    pub components: Vec<LabelsData>,
    /// property labels
    pub properties: LabelsData,
    /// row-major values
    pub values: Float64Array,
    /// gradient blocks, by parameter
    pub gradients: Vec<GradientData>,
}

/// A gradient block.
#[napi(object)]
pub struct GradientData {
    /// "positions" or "strain"
    pub parameter: String,
    /// the gradient values and labels
    pub block: BlockData,
}

/// Keys and blocks.
#[napi(object)]
pub struct TensorMapData {
    /// one row per block
    pub keys: LabelsData,
    /// the blocks, in key order
    pub blocks: Vec<BlockData>,
}

pub fn labels_to_js(l: Labels) -> LabelsData {
    LabelsData { names: l.names, values: i32_array(l.values) }
}

pub fn labels_from_js(field: &str, l: &LabelsData) -> Result<Labels> {
    let n = l.names.len();
    if n == 0 || l.values.len() % n != 0 {
        return Err(Error::new(
            Status::InvalidArg,
            format!("{field} has {} names and {} values (values must hold whole rows of one value per name)", n, l.values.len()),
        ));
    }
    let labels = Labels { names: l.names.clone(), values: l.values.to_vec() };
    labels.check(field).map_err(crate::errors::to_napi)?;
    Ok(labels)
}

/// A block whose label arrays exist in JS already and whose values do not yet.
struct LabelledBlock {
    samples: LabelsData,
    components: Vec<LabelsData>,
    properties: LabelsData,
    values: Vec<f64>,
    gradients: Vec<(String, LabelledBlock)>,
}

/// First pass of [`tensor_to_js`]: checks the gradients with the core's own
/// rules (`TensorBlock::add_gradient`: calculators assemble their blocks
/// directly, and `TensorBlock.fromData` in JS trusts what comes from here
/// instead of checking each gradient row again on the JS thread) and makes
/// the label arrays.
fn label_block(mut b: TensorBlock) -> Result<LabelledBlock> {
    for (parameter, g) in std::mem::take(&mut b.gradients) {
        b.add_gradient(&parameter, g).map_err(crate::errors::to_napi)?;
    }
    let gradients = std::mem::take(&mut b.gradients).into_iter().map(|(p, g)| Ok((p, label_block(g)?))).collect::<Result<Vec<_>>>()?;
    Ok(LabelledBlock {
        samples: labels_to_js(b.samples),
        components: b.components.into_iter().map(labels_to_js).collect(),
        properties: labels_to_js(b.properties),
        values: b.values,
        gradients,
    })
}

/// Second pass: the values, as external or lent arrays.
fn valued_block(b: LabelledBlock) -> BlockData {
    BlockData {
        samples: b.samples,
        components: b.components,
        properties: b.properties,
        values: f64_array(b.values),
        gradients: b.gradients.into_iter().map(|(parameter, g)| GradientData { parameter, block: valued_block(g) }).collect(),
    }
}

/// A tensor map for JS, in two passes: every label array first, then the
/// values. The small label arrays are copied into memory V8 allocates, and
/// V8 runs a scavenge before such an allocation whenever the young
/// generation holds more than twice a semi-space of external array buffers
/// (`Heap::AllocateExternalBackingStore`): made after a block's lent
/// gradient values (tens of MB), every later block's labels cost one
/// scavenge each, on the JS thread, inside the call (4–7 a water64 +
/// gradients call, `--trace-gc`: "external memory pressure").
pub fn tensor_to_js(t: TensorMap) -> Result<TensorMapData> {
    let keys = labels_to_js(t.keys);
    let blocks = t.blocks.into_iter().map(label_block).collect::<Result<Vec<_>>>()?;
    Ok(TensorMapData { keys, blocks: blocks.into_iter().map(valued_block).collect() })
}

/// A block from JS for the core: labels are copied, values taken by `values`
/// (a copy for async work, a borrow of the typed array for sync calls).
fn block_from_js_with<'a, V: AsRef<[f64]>>(field: &str, b: &'a BlockData, values: &impl Fn(&'a Float64Array) -> V) -> Result<TensorBlockOf<V>> {
    let components = b
        .components
        .iter()
        .enumerate()
        .map(|(i, c)| labels_from_js(&format!("{field}.components[{i}]"), c))
        .collect::<Result<Vec<_>>>()?;
    let mut block = TensorBlockOf::new(
        labels_from_js(&format!("{field}.samples"), &b.samples)?,
        components,
        labels_from_js(&format!("{field}.properties"), &b.properties)?,
        values(&b.values),
    )
    .map_err(|e| crate::errors::to_napi_in(field, e))?;
    for g in &b.gradients {
        let grad = block_from_js_with(&format!("{field}.gradient('{}')", g.parameter), &g.block, values)?;
        block.add_gradient(&g.parameter, grad).map_err(|e| crate::errors::to_napi_in(field, e))?;
    }
    Ok(block)
}

fn tensor_from_js_with<'a, V: AsRef<[f64]>>(field: &str, t: &'a TensorMapData, values: impl Fn(&'a Float64Array) -> V) -> Result<TensorMapOf<V>> {
    let keys = labels_from_js(&format!("{field}.keys"), &t.keys)?;
    let blocks = t
        .blocks
        .iter()
        .enumerate()
        .map(|(i, b)| block_from_js_with(&format!("{field}.block({i})"), b, &values))
        .collect::<Result<Vec<_>>>()?;
    TensorMapOf::new(keys, blocks).map_err(|e| crate::errors::to_napi_in(field, e))
}

/// Copies a tensor map from JS into the core (for work off the JS thread).
pub fn tensor_from_js(field: &str, t: &TensorMapData) -> Result<TensorMap> {
    tensor_from_js_with(field, t, |v: &Float64Array| v.to_vec())
}

/// A tensor map whose values borrow the JS typed arrays: valid only during
/// the synchronous call that received `t`.
pub fn tensor_view_from_js<'a>(field: &str, t: &'a TensorMapData) -> Result<TensorMapOf<&'a [f64]>> {
    tensor_from_js_with(field, t, |v: &'a Float64Array| -> &'a [f64] { v })
}
