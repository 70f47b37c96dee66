//! Alchemical compression of the neighbour types (Willatt, Musil and
//! Ceriotti, Phys. Chem. Chem. Phys. 20, 29661 (2018)): the density of
//! pseudo-element b is ρ_b = Σ_a u_ba ρ_a, so neighbour j (element a_j)
//! contributes with weight u_(b,a_j). The expansion coefficients are
//! therefore c_(b n l m) = Σ_a u_ba c_(a n l m) and the power spectrum of
//! the pseudo-densities has B(B+1)/2 neighbour-type pairs instead of
//! S(S+1)/2.
//!
//! Implementation: the pair loop runs once (its cost does not depend on the
//! number of elements); the species-resolved coefficients are contracted
//! with U block by block (samples are the union of the combined blocks, a
//! missing block counts as zero), gradients included; the power spectrum is
//! then formed from the B pseudo-element blocks.
use std::collections::BTreeMap;

use super::hypers::Alchemical;
use crate::error::{Error, Result};
use crate::tensor::{Labels, TensorBlock, TensorMap};

/// Checks `alchemical` (names the field): at least one type, distinct
/// types, B ≥ 1 rows of S finite numbers.
pub fn validate(alchemical: &Alchemical) -> Result<()> {
    let s = alchemical.types.len();
    if s == 0 {
        return Err(Error::InvalidParameter("density.alchemical.types must list at least one atomic type".into()));
    }
    let mut sorted = alchemical.types.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::InvalidParameter(format!("density.alchemical.types lists {} twice", w[0])));
    }
    if alchemical.coupling.is_empty() {
        return Err(Error::InvalidParameter("density.alchemical.coupling must have at least one row (pseudo-element)".into()));
    }
    for (b, row) in alchemical.coupling.iter().enumerate() {
        if row.len() != s {
            return Err(Error::InvalidParameter(format!(
                "density.alchemical.coupling[{b}] has {} entries, expected {s} (one per entry of types)",
                row.len()
            )));
        }
        if let Some(v) = row.iter().find(|v| !v.is_finite()) {
            return Err(Error::InvalidParameter(format!("density.alchemical.coupling[{b}] contains {v}, not a finite number")));
        }
    }
    Ok(())
}

/// Keeps the blocks whose keys match `options.selected_keys`.
pub fn select_keys(tensor: TensorMap, options: &super::ComputeOptions) -> Result<TensorMap> {
    if options.selected_keys.is_none() {
        return Ok(tensor);
    }
    let names: Vec<&str> = tensor.keys.names.iter().map(String::as_str).collect();
    let mut keys = Vec::new();
    let mut blocks = Vec::new();
    for (k, block) in tensor.blocks.into_iter().enumerate() {
        let key = tensor.keys.row(k);
        if super::environment::key_selected(options, &names, key)? {
            keys.extend_from_slice(key);
            blocks.push(block);
        }
    }
    TensorMap::new(Labels::new(&names, keys), blocks)
}

/// Linear combination Σ_k w_k·block_k of blocks with the same components
/// and properties; samples (and gradient samples) are the sorted union.
fn combine(parts: &[(&TensorBlock, f64)]) -> Result<TensorBlock> {
    let first = parts[0].0;
    let mut sample_set: BTreeMap<Vec<i32>, usize> = BTreeMap::new();
    for (b, _) in parts {
        for r in b.samples.rows() {
            sample_set.insert(r.to_vec(), 0);
        }
    }
    for (i, v) in sample_set.values_mut().enumerate() {
        *v = i;
    }
    let width: usize = first.values.len() / first.samples.count().max(1);
    let width = if first.samples.count() == 0 { first.components.iter().map(Labels::count).product::<usize>() * first.properties.count() } else { width };
    let mut values = vec![0.0; sample_set.len() * width];
    let maps: Vec<Vec<usize>> = parts.iter().map(|(b, _)| b.samples.rows().map(|r| sample_set[r]).collect()).collect();
    for ((b, w), map) in parts.iter().zip(&maps) {
        for (i, &row) in map.iter().enumerate() {
            let src = &b.values[i * width..(i + 1) * width];
            for (o, v) in values[row * width..(row + 1) * width].iter_mut().zip(src) {
                *o += w * v;
            }
        }
    }
    let samples = Labels { names: first.samples.names.clone(), values: sample_set.keys().flatten().copied().collect() };
    let mut out = TensorBlock::new(samples, first.components.clone(), first.properties.clone(), values)?;
    for (parameter, g0) in &first.gradients {
        // gradient sample rows: first entry is the parent's sample index
        let mut set: BTreeMap<Vec<i32>, usize> = BTreeMap::new();
        let mut per_part = Vec::new();
        for ((b, _), map) in parts.iter().zip(&maps) {
            let g = b.gradient(parameter).ok_or_else(|| Error::InvalidParameter(format!("a block lacks its {parameter} gradient")))?;
            let rows: Vec<Vec<i32>> = g
                .samples
                .rows()
                .map(|r| {
                    let mut r = r.to_vec();
                    r[0] = map[r[0] as usize] as i32;
                    r
                })
                .collect();
            for r in &rows {
                set.insert(r.clone(), 0);
            }
            per_part.push((g, rows));
        }
        for (i, v) in set.values_mut().enumerate() {
            *v = i;
        }
        let gwidth = g0.components.iter().map(Labels::count).product::<usize>() * first.properties.count();
        let mut gvalues = vec![0.0; set.len() * gwidth];
        for ((g, rows), (_, w)) in per_part.iter().zip(parts) {
            for (i, r) in rows.iter().enumerate() {
                let row = set[r];
                for (o, v) in gvalues[row * gwidth..(row + 1) * gwidth].iter_mut().zip(&g.values[i * gwidth..(i + 1) * gwidth]) {
                    *o += w * v;
                }
            }
        }
        let gsamples = Labels { names: g0.samples.names.clone(), values: set.keys().flatten().copied().collect() };
        out.gradients.push((parameter.clone(), TensorBlock::new(gsamples, g0.components.clone(), first.properties.clone(), gvalues)?));
    }
    Ok(out)
}

/// Contracts a species-resolved spherical expansion (keys o3_lambda,
/// o3_sigma, center_type, neighbor_type) with U into keys (o3_lambda,
/// o3_sigma, center_type, pseudo_type). Errors when a neighbour type is not
/// in `alchemical.types`.
pub fn contract_expansion(tensor: &TensorMap, alchemical: &Alchemical) -> Result<TensorMap> {
    let column = |t: i32| -> Result<usize> {
        alchemical.types.iter().position(|&x| x == t).ok_or_else(|| {
            Error::InvalidParameter(format!(
                "the systems contain atomic type {t}, which density.alchemical.types ({:?}) does not list",
                alchemical.types
            ))
        })
    };
    // group blocks by (o3_lambda, o3_sigma, center_type)
    let mut groups: BTreeMap<(i32, i32, i32), Vec<(usize, usize)>> = BTreeMap::new();
    for (k, key) in tensor.keys.rows().enumerate() {
        groups.entry((key[2], key[0], key[1])).or_default().push((k, column(key[3])?));
    }
    let mut keys = Vec::new();
    let mut blocks = Vec::new();
    for (&(center, l, sigma), members) in &groups {
        for (b, row) in alchemical.coupling.iter().enumerate() {
            let parts: Vec<(&TensorBlock, f64)> = members.iter().filter(|(_, a)| row[*a] != 0.0).map(|&(k, a)| (&tensor.blocks[k], row[a])).collect();
            if parts.is_empty() {
                continue;
            }
            keys.extend_from_slice(&[l, sigma, center, b as i32]);
            blocks.push(combine(&parts)?);
        }
    }
    // featomic's order: (center_type, pseudo_type) outer, o3_lambda inner
    let mut order: Vec<usize> = (0..blocks.len()).collect();
    order.sort_by_key(|&i| (keys[4 * i + 2], keys[4 * i + 3], keys[4 * i]));
    let mut sorted_keys = Vec::with_capacity(keys.len());
    let mut slots: Vec<Option<TensorBlock>> = blocks.into_iter().map(Some).collect();
    let mut sorted_blocks = Vec::with_capacity(slots.len());
    for i in order {
        sorted_keys.extend_from_slice(&keys[4 * i..4 * i + 4]);
        sorted_blocks.push(slots[i].take().expect("each block once"));
    }
    TensorMap::new(Labels::new(&["o3_lambda", "o3_sigma", "center_type", "pseudo_type"], sorted_keys), sorted_blocks)
}

/// The power spectrum of pseudo-element expansions (output of
/// [`contract_expansion`]): keys (center_type, pseudo_1_type,
/// pseudo_2_type) with pseudo_1 ≤ pseudo_2, properties (l, n_1, n_2),
/// p = (−1)^l/√(2l+1)·Σ_m c_(b1 l m n1)·c_(b2 l m n2), times √2 when
/// b1 ≠ b2 (the normalisation of the species-resolved SOAP power spectrum).
/// Samples: the centres present in both pseudo-element expansions.
pub fn power_spectrum(expansion: &TensorMap, max_angular: usize) -> Result<TensorMap> {
    // (center, pseudo) → blocks by l
    let mut by: BTreeMap<(i32, i32), BTreeMap<i32, &TensorBlock>> = BTreeMap::new();
    for (k, key) in expansion.keys.rows().enumerate() {
        by.entry((key[2], key[3])).or_default().insert(key[0], &expansion.blocks[k]);
    }
    let centers: Vec<i32> = {
        let mut c: Vec<i32> = by.keys().map(|k| k.0).collect();
        c.dedup();
        c
    };
    let mut keys = Vec::new();
    let mut blocks = Vec::new();
    for &c in &centers {
        let pseudo: Vec<i32> = by.keys().filter(|k| k.0 == c).map(|k| k.1).collect();
        for (i, &b1) in pseudo.iter().enumerate() {
            for &b2 in &pseudo[i..] {
                let (x, y) = (&by[&(c, b1)], &by[&(c, b2)]);
                let ls: Vec<i32> = (0..=max_angular as i32).filter(|l| x.contains_key(l) && y.contains_key(l)).collect();
                if ls.is_empty() {
                    continue;
                }
                let cross = if b1 != b2 { std::f64::consts::SQRT_2 } else { 1.0 };
                blocks.push(pair_block(x, y, &ls, cross)?);
                keys.extend_from_slice(&[c, b1, b2]);
            }
        }
    }
    TensorMap::new(Labels::new(&["center_type", "pseudo_1_type", "pseudo_2_type"], keys), blocks)
}

fn pair_block(x: &BTreeMap<i32, &TensorBlock>, y: &BTreeMap<i32, &TensorBlock>, ls: &[i32], cross: f64) -> Result<TensorBlock> {
    let x0 = x[&ls[0]];
    let y0 = y[&ls[0]];
    // samples in both
    let y_index: BTreeMap<&[i32], usize> = y0.samples.rows().enumerate().map(|(i, r)| (r, i)).collect();
    let common: Vec<(usize, usize)> = x0.samples.rows().enumerate().filter_map(|(i, r)| y_index.get(r).map(|&j| (i, j))).collect();
    let mut properties = Vec::new();
    for &l in ls {
        let (n1, n2) = (x[&l].properties.count(), y[&l].properties.count());
        for a in 0..n1 {
            for b in 0..n2 {
                properties.extend_from_slice(&[l, a as i32, b as i32]);
            }
        }
    }
    let n_props = properties.len() / 3;
    let mut values = vec![0.0; common.len() * n_props];
    // gradient rows per output sample: union of the atoms of both sides
    let has_positions = x0.gradient("positions").is_some();
    let has_strain = x0.gradient("strain").is_some();
    let grad_rows = |block: &TensorBlock| -> BTreeMap<(usize, i32, i32), usize> {
        let g = block.gradient("positions").expect("positions gradient");
        g.samples.rows().enumerate().map(|(i, r)| ((r[0] as usize, r[1], r[2]), i)).collect()
    };
    let mut g_samples = Vec::new();
    let mut g_values = Vec::new();
    let mut s_values = if has_strain { vec![0.0; common.len() * 9 * n_props] } else { Vec::new() };
    let xg: BTreeMap<i32, BTreeMap<(usize, i32, i32), usize>> = if has_positions { ls.iter().map(|&l| (l, grad_rows(x[&l]))).collect() } else { BTreeMap::new() };
    let yg: BTreeMap<i32, BTreeMap<(usize, i32, i32), usize>> = if has_positions { ls.iter().map(|&l| (l, grad_rows(y[&l]))).collect() } else { BTreeMap::new() };
    for (s, &(i, j)) in common.iter().enumerate() {
        let out = &mut values[s * n_props..(s + 1) * n_props];
        let mut offset = 0;
        for &l in ls {
            let (a, b) = (x[&l], y[&l]);
            let (n1, n2, nm) = (a.properties.count(), b.properties.count(), (2 * l + 1) as usize);
            let f = cross * if l % 2 == 0 { 1.0 } else { -1.0 } / ((2 * l + 1) as f64).sqrt();
            let (ra, rb) = (&a.values[i * nm * n1..(i + 1) * nm * n1], &b.values[j * nm * n2..(j + 1) * nm * n2]);
            for m in 0..nm {
                for p in 0..n1 {
                    let v = f * ra[m * n1 + p];
                    for q in 0..n2 {
                        out[offset + p * n2 + q] += v * rb[m * n2 + q];
                    }
                }
            }
            if has_strain {
                let (ga, gb) = (a.gradient("strain").expect("strain"), b.gradient("strain").expect("strain"));
                let (da, db) = (&ga.values[i * 9 * nm * n1..], &gb.values[j * 9 * nm * n2..]);
                let so = &mut s_values[s * 9 * n_props..(s + 1) * 9 * n_props];
                for c in 0..9 {
                    for m in 0..nm {
                        for p in 0..n1 {
                            for q in 0..n2 {
                                so[c * n_props + offset + p * n2 + q] +=
                                    f * (da[(c * nm + m) * n1 + p] * rb[m * n2 + q] + ra[m * n1 + p] * db[(c * nm + m) * n2 + q]);
                            }
                        }
                    }
                }
            }
            offset += n1 * n2;
        }
        if has_positions {
            // atoms with a gradient row on either side (same system)
            let mut atoms: std::collections::BTreeSet<(i32, i32)> = std::collections::BTreeSet::new();
            for &l in ls {
                atoms.extend(xg[&l].range((i, i32::MIN, i32::MIN)..=(i, i32::MAX, i32::MAX)).map(|(k, _)| (k.1, k.2)));
                atoms.extend(yg[&l].range((j, i32::MIN, i32::MIN)..=(j, i32::MAX, i32::MAX)).map(|(k, _)| (k.1, k.2)));
            }
            for (system, atom) in atoms {
                g_samples.extend_from_slice(&[s as i32, system, atom]);
                let base = g_values.len();
                g_values.resize(base + 3 * n_props, 0.0);
                let go = &mut g_values[base..];
                let mut offset = 0;
                for &l in ls {
                    let (a, b) = (x[&l], y[&l]);
                    let (n1, n2, nm) = (a.properties.count(), b.properties.count(), (2 * l + 1) as usize);
                    let f = cross * if l % 2 == 0 { 1.0 } else { -1.0 } / ((2 * l + 1) as f64).sqrt();
                    let (ra, rb) = (&a.values[i * nm * n1..(i + 1) * nm * n1], &b.values[j * nm * n2..(j + 1) * nm * n2]);
                    let da = xg[&l].get(&(i, system, atom)).map(|&r| &a.gradient("positions").expect("g").values[r * 3 * nm * n1..(r + 1) * 3 * nm * n1]);
                    let db = yg[&l].get(&(j, system, atom)).map(|&r| &b.gradient("positions").expect("g").values[r * 3 * nm * n2..(r + 1) * 3 * nm * n2]);
                    for c in 0..3 {
                        for m in 0..nm {
                            for p in 0..n1 {
                                for q in 0..n2 {
                                    let mut v = 0.0;
                                    if let Some(da) = da {
                                        v += da[(c * nm + m) * n1 + p] * rb[m * n2 + q];
                                    }
                                    if let Some(db) = db {
                                        v += ra[m * n1 + p] * db[(c * nm + m) * n2 + q];
                                    }
                                    go[c * n_props + offset + p * n2 + q] += f * v;
                                }
                            }
                        }
                    }
                    offset += n1 * n2;
                }
            }
        }
    }
    let samples_names: Vec<&str> = x0.samples.names.iter().map(String::as_str).collect();
    let samples = Labels::new(&samples_names, common.iter().flat_map(|&(i, _)| x0.samples.row(i).to_vec()).collect());
    let properties = Labels::new(&["l", "n_1", "n_2"], properties);
    let mut block = TensorBlock::new(samples, vec![], properties.clone(), values)?;
    if has_positions {
        block.gradients.push((
            "positions".into(),
            TensorBlock::new(Labels::new(&["sample", "system", "atom"], g_samples), vec![Labels::range("xyz", 3)], properties.clone(), g_values)?,
        ));
    }
    if has_strain {
        block.gradients.push((
            "strain".into(),
            TensorBlock::new(Labels::range("sample", common.len()), vec![Labels::range("xyz_2", 3), Labels::range("xyz_1", 3)], properties, s_values)?,
        ));
    }
    Ok(block)
}

/// Bytes of the power spectrum [`power_spectrum`] would build from this
/// pseudo-element expansion, before it is built: per centre species, the
/// samples × P(P + 1)/2 pseudo pairs × Σ_l n² properties, times the gradient
/// rows (3 per position-gradient row, 9 for strain). P pseudo-elements grow
/// the output as P², so this is checked against the budget first.
pub fn power_spectrum_bytes(expansion: &TensorMap) -> f64 {
    // (center, pseudo) → (samples, gradient rows, Σ_l n²)
    let mut by: BTreeMap<(i32, i32), (f64, f64, f64, bool)> = BTreeMap::new();
    for (k, key) in expansion.keys.rows().enumerate() {
        let block = &expansion.blocks[k];
        let n = block.properties.count() as f64;
        let entry = by.entry((key[2], key[3])).or_insert((0.0, 0.0, 0.0, false));
        entry.0 = entry.0.max(block.samples.count() as f64);
        entry.1 = entry.1.max(block.gradient("positions").map_or(0.0, |g| g.samples.count() as f64));
        entry.2 += n * n;
        entry.3 |= block.gradient("strain").is_some();
    }
    let mut centers: BTreeMap<i32, (f64, f64, f64, bool, f64)> = BTreeMap::new();
    for (&(c, _), &(samples, rows, props, strain)) in &by {
        let e = centers.entry(c).or_insert((0.0, 0.0, 0.0, false, 0.0));
        e.0 = e.0.max(samples);
        e.1 += rows;
        e.2 = e.2.max(props);
        e.3 |= strain;
        e.4 += 1.0;
    }
    let mut floats = 0.0;
    for &(samples, rows, props, strain, pseudo) in centers.values() {
        let pairs = pseudo * (pseudo + 1.0) / 2.0;
        // a pair's gradient rows are the union of both sides' rows: at most twice the mean
        let grad_rows = 2.0 * rows / pseudo.max(1.0);
        floats += pairs * props * (samples * (1.0 + if strain { 9.0 } else { 0.0 }) + 3.0 * grad_rows);
    }
    floats * 8.0
}

/// Bytes of the pseudo-element expansion [`contract_expansion`] would build
/// from this species-resolved one: each (l, centre) group of blocks over the
/// neighbour species becomes one block per pseudo-element of the same shape,
/// so the size scales by B pseudo-elements / the neighbour species present.
pub fn contracted_bytes(tensor: &TensorMap, alchemical: &Alchemical) -> f64 {
    let mut neighbors: Vec<i32> = tensor.keys.rows().map(|k| k[k.len() - 1]).collect();
    neighbors.sort_unstable();
    neighbors.dedup();
    let floats: f64 = tensor
        .blocks
        .iter()
        .map(|b| b.values.len() as f64 + b.gradients.iter().map(|(_, g)| g.values.len() as f64).sum::<f64>())
        .sum();
    floats * 8.0 * alchemical.coupling.len() as f64 / neighbors.len().max(1) as f64
}
