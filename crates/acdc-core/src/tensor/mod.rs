//! Labelled block tensors (metatensor's data model): a `TensorMap` maps keys
//! to `TensorBlock`s; each block has samples × components… × properties
//! values (row-major) and optional gradient blocks.
pub mod buffer;
pub mod ops;

use crate::error::{Error, Result};

/// A set of named integer labels: `count()` rows of `names.len()` values,
/// row-major.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Labels {
    /// Names of the dimensions.
    pub names: Vec<String>,
    /// Row-major values, `count() * names.len()` entries.
    pub values: Vec<i32>,
}

impl Labels {
    /// Builds labels, checking that `values` holds whole rows.
    pub fn new(names: &[&str], values: Vec<i32>) -> Labels {
        assert!(names.is_empty() || values.len() % names.len() == 0, "labels values do not hold whole rows");
        Labels { names: names.iter().map(|s| s.to_string()).collect(), values }
    }

    /// Labels with one dimension and the values 0..n.
    pub fn range(name: &str, n: usize) -> Labels {
        Labels::new(&[name], (0..n as i32).collect())
    }

    /// Number of rows.
    pub fn count(&self) -> usize {
        if self.names.is_empty() {
            0
        } else {
            self.values.len() / self.names.len()
        }
    }

    /// Number of dimensions.
    pub fn size(&self) -> usize {
        self.names.len()
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[i32] {
        let n = self.names.len();
        &self.values[i * n..(i + 1) * n]
    }

    /// Iterator over rows.
    pub fn rows(&self) -> impl Iterator<Item = &[i32]> {
        self.values.chunks_exact(self.names.len().max(1))
    }

    /// Position of the dimension called `name`.
    pub fn dimension(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Index of the row equal to `row`, if any.
    pub fn position(&self, row: &[i32]) -> Option<usize> {
        self.rows().position(|r| r == row)
    }

    /// Checks what every `Labels` must satisfy to be stored and read back
    /// (metatensor's rules): values hold whole rows, names are distinct
    /// identifiers (ASCII letters, digits and `_`, not starting with a
    /// digit), and labels without names hold no values. `what` names the
    /// labels in the error.
    pub fn check(&self, what: &str) -> Result<()> {
        whole_rows(self, what)?;
        let width = self.names.len();
        let mut seen = std::collections::HashSet::with_capacity(width);
        for name in &self.names {
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(Error::InvalidParameter(format!(
                    "{what}: name \"{}\" is not an identifier (ASCII letters, digits and _, not starting with a digit)",
                    crate::error::clip(name)
                )));
            }
            if !seen.insert(name.as_str()) {
                return Err(Error::InvalidParameter(format!("{what}: name \"{name}\" appears twice")));
            }
        }
        Ok(())
    }

    /// Whether two rows are equal; checked in linear time with a hash set.
    pub fn has_duplicates(&self) -> bool {
        let mut seen = std::collections::HashSet::with_capacity(self.count());
        self.rows().any(|r| !seen.insert(r))
    }
}

/// A block of values with its labels and gradients, generic over the storage
/// of the values: owned (`TensorBlock`) or borrowed (`TensorBlockRef`, e.g.
/// over a JS typed array during a synchronous call, which spares a copy).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorBlockOf<V> {
    /// One label row per sample (first dimension of `values`).
    pub samples: Labels,
    /// One `Labels` per component dimension (middle dimensions of `values`).
    pub components: Vec<Labels>,
    /// One label row per property (last dimension of `values`).
    pub properties: Labels,
    /// Row-major values, shape `[samples, components…, properties]`.
    pub values: V,
    /// Gradient blocks by parameter ("positions", "strain").
    pub gradients: Vec<(String, TensorBlockOf<V>)>,
}

/// A block owning its values.
pub type TensorBlock = TensorBlockOf<Vec<f64>>;
/// A block borrowing its values.
pub type TensorBlockRef<'a> = TensorBlockOf<&'a [f64]>;

impl<V: AsRef<[f64]>> TensorBlockOf<V> {
    /// Builds a block, checking that the labels hold whole rows and that the
    /// values match their shape.
    pub fn new(samples: Labels, components: Vec<Labels>, properties: Labels, values: V) -> Result<Self> {
        let block = TensorBlockOf { samples, components, properties, values, gradients: Vec::new() };
        for (labels, what) in [(&block.samples, "samples"), (&block.properties, "properties")] {
            whole_rows(labels, what)?;
        }
        for (k, c) in block.components.iter().enumerate() {
            whole_rows(c, &format!("components[{k}]"))?;
        }
        let expected = block.shape().iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if expected != Some(block.values.as_ref().len()) {
            let expected = expected.map_or("more than 2^64".to_string(), |e| e.to_string());
            return Err(Error::InvalidParameter(format!(
                "block values have {} entries but the labels give shape {:?} ({expected} entries)",
                block.values.as_ref().len(),
                block.shape()
            )));
        }
        Ok(block)
    }

    /// Shape `[samples, components…, properties]`.
    pub fn shape(&self) -> Vec<usize> {
        let mut s = vec![self.samples.count()];
        s.extend(self.components.iter().map(Labels::count));
        s.push(self.properties.count());
        s
    }

    /// Adds the gradient with respect to `parameter` after checking what the
    /// operations and the `.mts` format rely on: the parameter is a new,
    /// non-empty name without `/`; the gradient has no gradients itself; its
    /// first sample dimension is "sample" and indexes this block's samples;
    /// its components end with this block's components; its properties are
    /// this block's.
    pub fn add_gradient(&mut self, parameter: &str, gradient: Self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidParameter(format!("gradient \"{}\": {m}", crate::error::clip(parameter))));
        if parameter.is_empty() || parameter.contains('/') || parameter.chars().any(char::is_control) {
            return bad("the parameter name must be non-empty, without '/' or control characters".into());
        }
        if self.gradient(parameter).is_some() {
            return bad("this block already has a gradient with respect to it".into());
        }
        if !gradient.gradients.is_empty() {
            return bad("a gradient block cannot have gradients itself".into());
        }
        if gradient.samples.names.first().map(String::as_str) != Some("sample") {
            return bad(format!("the first sample dimension must be \"sample\", got {:?}", gradient.samples.names));
        }
        let n = self.samples.count();
        if let Some(r) = gradient.samples.rows().find(|r| r[0] < 0 || r[0] as usize >= n) {
            return bad(format!("sample {} points past the block's {n} samples", r[0]));
        }
        let (gc, bc) = (&gradient.components, &self.components);
        if gc.len() < bc.len() || gc[gc.len() - bc.len()..] != bc[..] {
            return bad("its components must end with the block's components".into());
        }
        if gradient.properties != self.properties {
            return bad("its properties must be the block's properties".into());
        }
        self.gradients.push((parameter.to_string(), gradient));
        Ok(())
    }

    /// The gradient block with respect to `parameter`.
    pub fn gradient(&self, parameter: &str) -> Option<&Self> {
        self.gradients.iter().find(|(p, _)| p == parameter).map(|(_, b)| b)
    }
}

fn whole_rows(labels: &Labels, what: &str) -> Result<()> {
    let width = labels.names.len();
    if width == 0 && !labels.values.is_empty() || width != 0 && !labels.values.len().is_multiple_of(width) {
        return Err(Error::InvalidParameter(format!(
            "{what}: {} values are not whole rows of {width} names",
            labels.values.len()
        )));
    }
    Ok(())
}

/// Keys → blocks, generic over the storage of the values like `TensorBlockOf`.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorMapOf<V> {
    /// One key row per block.
    pub keys: Labels,
    /// Blocks in the order of `keys`.
    pub blocks: Vec<TensorBlockOf<V>>,
}

/// A tensor map owning its values.
pub type TensorMap = TensorMapOf<Vec<f64>>;
/// A tensor map borrowing its values.
pub type TensorMapRef<'a> = TensorMapOf<&'a [f64]>;

impl<V: AsRef<[f64]>> TensorMapOf<V> {
    /// Builds a tensor map, checking that there is one block per key and that
    /// the keys hold whole rows and are distinct.
    pub fn new(keys: Labels, blocks: Vec<TensorBlockOf<V>>) -> Result<Self> {
        whole_rows(&keys, "keys")?;
        if keys.count() != blocks.len() || keys.names.is_empty() && !blocks.is_empty() {
            return Err(Error::InvalidParameter(format!(
                "{} keys but {} blocks",
                keys.count(),
                blocks.len()
            )));
        }
        if keys.has_duplicates() {
            return Err(Error::InvalidParameter("keys: two blocks have the same key".to_string()));
        }
        Ok(TensorMapOf { keys, blocks })
    }

    /// The block whose key matches every `(name, value)` given.
    pub fn block_by(&self, selection: &[(&str, i32)]) -> Result<&TensorBlockOf<V>> {
        let mut dims = Vec::new();
        for (name, value) in selection {
            let d = self.keys.dimension(name).ok_or_else(|| {
                Error::InvalidParameter(format!("no key dimension named \"{name}\" (keys are {:?})", self.keys.names))
            })?;
            dims.push((d, *value));
        }
        let found: Vec<usize> =
            (0..self.keys.count()).filter(|&k| dims.iter().all(|&(d, v)| self.keys.row(k)[d] == v)).collect();
        match found.as_slice() {
            [k] => Ok(&self.blocks[*k]),
            [] => Err(Error::InvalidParameter(format!("no block matches {selection:?}"))),
            _ => Err(Error::InvalidParameter(format!("{} blocks match {selection:?}, expected one", found.len()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_blocks() {
        let l = Labels::new(&["a", "b"], vec![1, 2, 3, 4]);
        assert_eq!(l.count(), 2);
        assert_eq!(l.row(1), &[3, 4]);
        assert_eq!(l.position(&[3, 4]), Some(1));
        let b = TensorBlock::new(l.clone(), vec![Labels::range("m", 3)], Labels::range("n", 2), vec![0.0; 12]).unwrap();
        assert_eq!(b.shape(), vec![2, 3, 2]);
        assert!(TensorBlock::new(l.clone(), vec![], Labels::range("n", 2), vec![0.0; 3]).is_err());
        let t = TensorMap::new(Labels::new(&["k"], vec![7]), vec![b]).unwrap();
        assert!(t.block_by(&[("k", 7)]).is_ok());
        assert!(t.block_by(&[("k", 8)]).is_err());
        assert!(t.block_by(&[("x", 8)]).unwrap_err().to_string().contains("no key dimension"));
    }
}
