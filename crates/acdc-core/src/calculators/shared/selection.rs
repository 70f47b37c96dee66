//! Which centres and which blocks a computation covers: `selected_samples`
//! and `selected_keys` of [`ComputeOptions`], checked against the systems
//! (a row naming nothing is a mistake, not an empty result).
use super::environments::Environments;
use super::options::ComputeOptions;
use crate::error::{Error, Result};
use crate::system::System;
use crate::tensor::{Labels, TensorMap};

impl Environments<'_> {
    /// The (system, atom) centres to compute, honouring `selected_samples`.
    /// When `selected_keys` names `center_type`, only atoms of those types are
    /// expanded: the other blocks would be dropped anyway.
    pub fn centres(&self, options: &ComputeOptions) -> Result<Vec<(usize, usize)>> {
        // a species that no system holds selects nothing: a mistake, not an empty result
        if let Some(keys) = &options.selected_keys {
            for (d, name) in keys.names.iter().enumerate() {
                if !name.ends_with("_type") {
                    continue;
                }
                for (r, row) in keys.rows().enumerate() {
                    if self.species.binary_search(&row[d]).is_err() {
                        return Err(Error::InvalidParameter(format!(
                            "selectedKeys row {r}: {name} {} is not a species of these systems ({})",
                            row[d],
                            self.species.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
                        )));
                    }
                }
            }
        }
        let centre_types: Option<Vec<i32>> = options.selected_keys.as_ref().and_then(|keys| {
            let d = keys.dimension("center_type")?;
            Some(keys.rows().map(|row| row[d]).collect())
        });
        let wanted = move |t: i32| centre_types.as_ref().is_none_or(|types| types.contains(&t));
        let all = self
            .systems
            .iter()
            .enumerate()
            .flat_map(|(k, s)| (0..s.size()).map(move |i| (k, i)))
            .filter(move |&(k, i)| wanted(self.systems[k].types[i]));
        let Some(selection) = &options.selected_samples else {
            return Ok(all.collect());
        };
        let mut dims = Vec::new();
        for name in &selection.names {
            match name.as_str() {
                "system" => dims.push(0),
                "atom" => dims.push(1),
                other => {
                    return Err(Error::InvalidParameter(format!(
                        "selectedSamples has a dimension named \"{other}\" (expected \"system\" and/or \"atom\")"
                    )))
                }
            }
        }
        // a row naming no existing centre is a mistake, not an empty result
        let largest = self.systems.iter().map(System::size).max().unwrap_or(0);
        for (r, row) in selection.rows().enumerate() {
            let system = dims.iter().position(|&d| d == 0).map(|k| row[k]);
            let atom = dims.iter().position(|&d| d == 1).map(|k| row[k]);
            if let Some(k) = system {
                if k < 0 || k as usize >= self.systems.len() {
                    return Err(Error::InvalidParameter(format!(
                        "selectedSamples row {r}: system {k} does not exist (there are {} systems)",
                        self.systems.len()
                    )));
                }
            }
            if let Some(i) = atom {
                let size = system.map(|k| self.systems[k as usize].size()).unwrap_or(largest);
                if i < 0 || i as usize >= size {
                    return Err(Error::InvalidParameter(match system {
                        Some(k) => format!("selectedSamples row {r}: atom {i} does not exist in system {k} ({size} atoms)"),
                        None => format!("selectedSamples row {r}: atom {i} does not exist in any system (at most {size} atoms)"),
                    }));
                }
            }
        }
        Ok(all
            .filter(|&(k, i)| {
                let here = [k as i32, i as i32];
                selection.rows().any(|row| dims.iter().zip(row).all(|(&d, &v)| here[d] == v))
            })
            .collect())
    }
}

/// Whether a key row passes `selected_keys` (rows matched on the selection's names).
pub fn key_selected(options: &ComputeOptions, names: &[&str], key: &[i32]) -> Result<bool> {
    let Some(selection) = &options.selected_keys else {
        return Ok(true);
    };
    let mut dims = Vec::new();
    for name in &selection.names {
        let d = names.iter().position(|n| n == name).ok_or_else(|| {
            Error::InvalidParameter(format!("selectedKeys has a dimension named \"{name}\" (keys are {names:?})"))
        })?;
        dims.push(d);
    }
    Ok(selection.rows().any(|row| dims.iter().zip(row).all(|(&d, &v)| key[d] == v)))
}

/// Keeps the blocks whose keys match `options.selected_keys`.
pub fn select_keys(tensor: TensorMap, options: &ComputeOptions) -> Result<TensorMap> {
    if options.selected_keys.is_none() {
        return Ok(tensor);
    }
    let names: Vec<&str> = tensor.keys.names.iter().map(String::as_str).collect();
    let mut keys = Vec::new();
    let mut blocks = Vec::new();
    for (k, block) in tensor.blocks.into_iter().enumerate() {
        let key = tensor.keys.row(k);
        if key_selected(options, &names, key)? {
            keys.extend_from_slice(key);
            blocks.push(block);
        }
    }
    TensorMap::new(Labels::new(&names, keys), blocks)
}
