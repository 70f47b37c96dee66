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
    /// Builds a block, checking that the values match the labels.
    pub fn new(samples: Labels, components: Vec<Labels>, properties: Labels, values: V) -> Result<Self> {
        let block = TensorBlockOf { samples, components, properties, values, gradients: Vec::new() };
        let expected: usize = block.shape().iter().product();
        if expected != block.values.as_ref().len() {
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

    /// The gradient block with respect to `parameter`.
    pub fn gradient(&self, parameter: &str) -> Option<&Self> {
        self.gradients.iter().find(|(p, _)| p == parameter).map(|(_, b)| b)
    }
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
    /// Builds a tensor map, checking that there is one block per key.
    pub fn new(keys: Labels, blocks: Vec<TensorBlockOf<V>>) -> Result<Self> {
        if keys.count() != blocks.len() {
            return Err(Error::InvalidParameter(format!(
                "{} keys but {} blocks",
                keys.count(),
                blocks.len()
            )));
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
