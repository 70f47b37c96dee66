//! Density correlations of any order by iterated Clebsch–Gordan products
//! (featomic's `clebsch_gordan.DensityCorrelations`):
//!
//! ρ^{⊗(ν+1)} = ρ^{⊗ν} ⊗_CG ρ^{⊗1},  out[s, μ, (p, q)] = Σ_{m₁m₂} Ĉ^{l₁l₂λ}_{m₁m₂μ} A[s, m₁, p] B[s, m₂, q],
//!
//! on a TensorMap with `o3_lambda`, `o3_sigma` keys and one `[o3_mu]`
//! component, with the real coefficients Ĉ of [`crate::math::clebsch_gordan`].
//! Output o3_sigma = σ₁σ₂(−1)^{l₁+l₂+λ}. J. Nigam, S. Pozdnyakov, M. Ceriotti,
//! J. Chem. Phys. 153, 121101 (2020), doi:10.1063/5.0021116.
//!
//! Conventions follow featomic 0.6.7 so that labels and values agree:
//! - key dimensions other than o3_lambda/o3_sigma present on both sides are
//!   matched; output keys are (o3_lambda, o3_sigma, matched…, other₁…,
//!   l_1, other₂…, l_2) on the first product, then k_i, l_{i+1};
//! - property names get numeric suffixes (n → n_1, neighbor_type →
//!   neighbor_1_type), the right factor's once more at each iteration;
//!   properties are the full product, left factor outer;
//! - samples of two blocks are the union (left order first), with zeros where
//!   a block lacks a sample;
//! - `skip_redundant` keeps only keys with l_1 ≤ l_2 ≤ … ≤ l_ν at each step.
//!
//! Gradients present on both inputs are carried through by the product rule,
//! `∂out = Ĉ(∂A ⊗ B + A ⊗ ∂B)`; gradient rows of one sample are the union of
//! both factors' rows, sorted.
use std::collections::HashMap;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::math::cg_product::{apply_steps, outer, used_sources, Step};
use crate::math::clebsch_gordan::{ClebschGordan, MAX_DEGREE};
use crate::tensor::{Labels, TensorBlock, TensorBlockOf, TensorMap, TensorMapOf};

/// Settings of a density-correlation computation.
#[derive(Debug, Clone)]
pub struct DensityCorrelations {
    /// Number of CG products (ν = n_correlations + 1).
    pub n_correlations: usize,
    /// Largest o3_lambda the coefficients cover; every product must fit in it.
    pub max_angular: usize,
    /// Keep only l_1 ≤ l_2 ≤ … ≤ l_ν keys.
    pub skip_redundant: bool,
}

/// featomic's `_increment_numeric_suffix`: "n" → "n_1", "n_1" → "n_2",
/// "neighbor_type" → "neighbor_1_type", "neighbor_1_type" → "neighbor_2_type".
pub fn increment_suffix(name: &str, by: usize) -> String {
    let (prefix, suffix) = match name.strip_suffix("type") {
        Some(_) if name.rfind("_type").is_some() => (&name[..name.rfind("_type").unwrap_or(0)], "_type"),
        _ => (name, ""),
    };
    let (stem, number) = match prefix.rfind('_') {
        Some(i) if !prefix[i + 1..].is_empty() && prefix[i + 1..].bytes().all(|c| c.is_ascii_digit()) => {
            (&prefix[..i], prefix[i + 1..].parse::<usize>().unwrap_or(0))
        }
        _ => (prefix, 0),
    };
    format!("{stem}_{}{suffix}", number + by)
}

/// Per-block samples of one input tensor, for matching.
struct Index<'a, V> {
    block: &'a TensorBlockOf<V>,
    /// gradient rows of each sample: (parameter slot, rows [(row, rest labels)]) sorted by rest labels
    gradient_rows: Vec<Vec<Vec<(usize, &'a [i32])>>>,
}

impl<'a, V: AsRef<[f64]>> Index<'a, V> {
    fn new(block: &'a TensorBlockOf<V>, parameters: &[String]) -> Result<Self> {
        let mut gradient_rows = Vec::with_capacity(parameters.len());
        for p in parameters {
            let g = block.gradient(p).ok_or_else(|| Error::InvalidParameter(format!("a block has no \"{p}\" gradient")))?;
            let mut rows: Vec<Vec<(usize, &[i32])>> = vec![Vec::new(); block.samples.count()];
            for (r, row) in g.samples.rows().enumerate() {
                let s = row[0] as usize;
                if s >= rows.len() {
                    return Err(Error::InvalidParameter(format!("\"{p}\" gradient row {r} refers to sample {s}, beyond the block")));
                }
                rows[s].push((r, &row[1..]));
            }
            for list in &mut rows {
                list.sort_by(|a, b| a.1.cmp(b.1));
            }
            gradient_rows.push(rows);
        }
        Ok(Index { block, gradient_rows })
    }
}

fn check_block<V: AsRef<[f64]>>(block: &TensorBlockOf<V>, lambda: i32, what: &str) -> Result<()> {
    let ok = block.components.len() == 1
        && block.components[0].names == ["o3_mu"]
        && block.components[0].count() == 2 * lambda as usize + 1;
    if !ok {
        return Err(Error::InvalidParameter(format!(
            "{what}: blocks need a single [o3_mu] component with 2·o3_lambda + 1 = {} entries",
            2 * lambda + 1
        )));
    }
    Ok(())
}

impl DensityCorrelations {
    /// Validates the settings and tabulates the coefficients up to `max_angular`.
    pub fn new(n_correlations: usize, max_angular: usize, skip_redundant: bool) -> Result<DensityCorrelations> {
        if n_correlations == 0 {
            return Err(Error::InvalidParameter("n_correlations must be at least 1, got 0".into()));
        }
        if max_angular > MAX_DEGREE {
            return Err(Error::InvalidParameter(format!("max_angular is {max_angular}, larger than the supported {MAX_DEGREE}")));
        }
        Ok(DensityCorrelations { n_correlations, max_angular, skip_redundant })
    }

    /// Correlates `density` with itself `n_correlations` times. With
    /// `angular_cutoff`, intermediate (and, without `selected_keys`, final)
    /// products keep only o3_lambda ≤ the cutoff; `selected_keys` selects the
    /// final keys on the dimensions it names.
    pub fn compute<V: AsRef<[f64]> + Sync>(&self, density: &TensorMapOf<V>, angular_cutoff: Option<usize>, selected_keys: Option<&Labels>) -> Result<TensorMap> {
        for name in ["o3_lambda", "o3_sigma"] {
            if density.keys.dimension(name).is_none() {
                return Err(Error::InvalidParameter(format!("density keys must contain \"{name}\" (they are {:?})", density.keys.names)));
            }
        }
        let cutoff_labels = angular_cutoff.map(|c| Labels::new(&["o3_lambda"], (0..=c as i32).collect()));
        let right = rename_properties(density, 2);
        // The product before the last keeps only keys from which the last
        // product can reach a selected o3_lambda: no final key comes from
        // the others (the bispectrum's λ = 0 needs k₂ = l₃ ≥ l₂, so about
        // half of the intermediate blocks are never used).
        let density_lambdas: Vec<i32> = {
            let dim = density.keys.dimension("o3_lambda").unwrap_or(0);
            let mut l: Vec<i32> = density.keys.rows().map(|r| r[dim]).collect();
            l.sort_unstable();
            l.dedup();
            l
        };
        let final_lambdas: Option<Vec<i32>> =
            selected_keys.and_then(|sel| sel.dimension("o3_lambda").map(|dim| sel.rows().map(|r| r[dim]).collect()));
        let reach = |i: usize| match &final_lambdas {
            Some(finals) if i + 2 == self.n_correlations => Some(Reach { right: &density_lambdas, finals }),
            _ => None,
        };
        let mut left =
            self.product(&rename_properties(density, 1), &right, "l_1", "l_2", self.selection(0, &cutoff_labels, selected_keys), reach(0))?;
        for i in 1..self.n_correlations {
            let right = rename_properties(density, i + 2);
            let l1 = format!("k_{}", i + 1);
            let l2 = format!("l_{}", i + 2);
            left = self.product(&left, &right, &l1, &l2, self.selection(i, &cutoff_labels, selected_keys), reach(i))?;
        }
        Ok(left)
    }

    fn selection<'s>(&self, i: usize, cutoff: &'s Option<Labels>, selected: Option<&'s Labels>) -> Option<&'s Labels> {
        if i + 1 == self.n_correlations && selected.is_some() {
            selected
        } else {
            cutoff.as_ref()
        }
    }

    /// One CG product of two tensors, with featomic's key rules.
    fn product<V1, V2>(
        &self,
        t1: &TensorMapOf<V1>,
        t2: &TensorMapOf<V2>,
        name1: &str,
        name2: &str,
        selected: Option<&Labels>,
        reach: Option<Reach>,
    ) -> Result<TensorMap>
    where
        V1: AsRef<[f64]> + Sync,
        V2: AsRef<[f64]> + Sync,
    {
        let cg_names = ["o3_lambda", "o3_sigma"];
        let (k1, k2) = (&t1.keys, &t2.keys);
        let matched: Vec<&String> = k1.names.iter().filter(|n| !cg_names.contains(&n.as_str()) && k2.names.contains(n)).collect();
        let other1: Vec<&String> = k1.names.iter().filter(|n| !cg_names.contains(&n.as_str()) && !matched.contains(n)).collect();
        let other2: Vec<&String> = k2.names.iter().filter(|n| !cg_names.contains(&n.as_str()) && !matched.contains(n)).collect();
        let mut names: Vec<String> = cg_names.iter().map(|s| s.to_string()).collect();
        names.extend(matched.iter().map(|s| s.to_string()));
        names.extend(other1.iter().map(|s| s.to_string()));
        names.push(name1.to_string());
        names.extend(other2.iter().map(|s| s.to_string()));
        names.push(name2.to_string());
        let d = |l: &Labels, n: &str| l.dimension(n).unwrap_or(0);
        let (lam1, sig1, lam2, sig2) = (d(k1, "o3_lambda"), d(k1, "o3_sigma"), d(k2, "o3_lambda"), d(k2, "o3_sigma"));

        if let Some(bad) = k1.rows().map(|r| r[lam1]).chain(k2.rows().map(|r| r[lam2])).find(|&l| l < 0) {
            return Err(Error::InvalidParameter(format!("o3_lambda must be non-negative, got {bad}")));
        }
        // the coefficients must cover the largest product, as featomic requires
        let max1 = k1.rows().map(|r| r[lam1]).max().unwrap_or(0) as usize;
        let max2 = k2.rows().map(|r| r[lam2]).max().unwrap_or(0) as usize;
        let mut needed = max1 + max2;
        if let Some(sel) = selected {
            if let Some(dim) = sel.dimension("o3_lambda") {
                needed = needed.min(sel.rows().map(|r| r[dim]).max().unwrap_or(0).max(0) as usize);
            }
            if let Some(dim) = sel.dimension("o3_sigma") {
                if let Some(bad) = sel.rows().map(|r| r[dim]).find(|s| s.abs() != 1) {
                    return Err(Error::InvalidParameter(format!("selected o3_sigma must be +1 or -1, got {bad}")));
                }
            }
            for n in &sel.names {
                if !names.contains(n) {
                    return Err(Error::InvalidParameter(format!("selectedKeys has a dimension named \"{n}\" (keys are {names:?})")));
                }
            }
        }
        if needed > self.max_angular {
            return Err(Error::InvalidParameter(format!(
                "max_angular is {} but the products need o3_lambda up to {needed}: raise max_angular or set angularCutoff",
                self.max_angular
            )));
        }
        let l_dims: Vec<usize> = (1..)
            .map(|k| format!("l_{k}"))
            .take_while(|n| names.contains(n))
            .map(|n| names.iter().position(|m| *m == n).unwrap_or(0))
            .collect();

        // output keys, grouped by block pair
        let mut jobs: Vec<(usize, usize, Vec<(Vec<i32>, usize)>)> = Vec::new();
        for (i1, r1) in k1.rows().enumerate() {
            for (i2, r2) in k2.rows().enumerate() {
                if !matched.iter().all(|n| r1[d(k1, n)] == r2[d(k2, n)]) {
                    continue;
                }
                let (l1, l2) = (r1[lam1], r2[lam2]);
                let mut list = Vec::new();
                for lambda in (l1 - l2).abs()..=l1 + l2 {
                    let parity = if (l1 + l2 + lambda) % 2 == 0 { 1 } else { -1 };
                    let mut key = vec![lambda, r1[sig1] * r2[sig2] * parity];
                    key.extend(matched.iter().map(|n| r1[d(k1, n)]));
                    key.extend(other1.iter().map(|n| r1[d(k1, n)]));
                    key.push(l1);
                    key.extend(other2.iter().map(|n| r2[d(k2, n)]));
                    key.push(l2);
                    if let Some(sel) = selected {
                        let dims: Vec<usize> = sel.names.iter().map(|n| names.iter().position(|m| m == n).unwrap_or(0)).collect();
                        if !sel.rows().any(|row| dims.iter().zip(row).all(|(&dd, &v)| key[dd] == v)) {
                            continue;
                        }
                    }
                    if self.skip_redundant && l_dims.windows(2).any(|w| key[w[0]] > key[w[1]]) {
                        continue;
                    }
                    if lambda as usize > self.max_angular {
                        continue;
                    }
                    if let Some(reach) = &reach {
                        // the next factor's l (≥ this l₂ when skipping redundant keys) must couple λ to a final λ
                        let next = |l: i32| (!self.skip_redundant || l >= l2) && reach.finals.iter().any(|&f| (lambda - l).abs() <= f && f <= lambda + l);
                        if !reach.right.iter().any(|&l| next(l)) {
                            continue;
                        }
                    }
                    list.push((key, lambda as usize));
                }
                if !list.is_empty() {
                    jobs.push((i1, i2, list));
                }
            }
        }

        // sized to these inputs: a selection may keep λ small while l₁, l₂ are large
        let cg = ClebschGordan::shared(max1.max(max2), self.max_angular.min(max1 + max2))?;
        let parameters: Vec<String> = match (t1.blocks.first(), t2.blocks.first()) {
            (Some(a), Some(b)) => {
                let pa: Vec<String> = a.gradients.iter().map(|(p, _)| p.clone()).collect();
                pa.into_iter().filter(|p| b.gradient(p).is_some()).collect()
            }
            _ => Vec::new(),
        };
        let results: Vec<Vec<(Vec<i32>, TensorBlock)>> = jobs
            .par_iter()
            .map(|(i1, i2, list)| {
                let (a, b) = (&t1.blocks[*i1], &t2.blocks[*i2]);
                check_block(a, k1.row(*i1)[lam1], "density")?;
                check_block(b, k2.row(*i2)[lam2], "density")?;
                let pair = PairProduct::new(a, b, &parameters)?;
                let (l1, l2) = (k1.row(*i1)[lam1] as usize, k2.row(*i2)[lam2] as usize);
                let lambdas: Vec<usize> = list.iter().map(|(_, lambda)| *lambda).collect();
                let values = pair.values(&cg, l1, l2, &lambdas)?;
                list.iter().zip(values).map(|((key, lambda), values)| Ok((key.clone(), pair.block(&cg, l1, l2, *lambda, values)?))).collect()
            })
            .collect::<Result<_>>()?;
        let mut values = Vec::new();
        let mut blocks = Vec::new();
        for (key, block) in results.into_iter().flatten() {
            values.extend(key);
            blocks.push(block);
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        TensorMap::new(Labels::new(&refs, values), blocks)
    }
}

/// What the last product can use: the o3_lambda of its right factor and
/// the selected final o3_lambda.
struct Reach<'a> {
    right: &'a [i32],
    finals: &'a [i32],
}

/// Sample matching and gradient rows of one (block₁, block₂) pair, shared by
/// every λ of the pair.
struct PairProduct<'a, V1, V2> {
    a: Index<'a, V1>,
    b: Index<'a, V2>,
    samples: Labels,
    /// per output sample: row in a, row in b
    rows: Vec<(Option<usize>, Option<usize>)>,
    parameters: &'a [String],
    properties: Labels,
}

impl<'a, V1: AsRef<[f64]> + Sync, V2: AsRef<[f64]> + Sync> PairProduct<'a, V1, V2> {
    fn new(a: &'a TensorBlockOf<V1>, b: &'a TensorBlockOf<V2>, parameters: &'a [String]) -> Result<Self> {
        if a.samples.names != b.samples.names {
            return Err(Error::InvalidParameter(format!(
                "blocks have different sample names ({:?} and {:?})",
                a.samples.names, b.samples.names
            )));
        }
        for n in &b.properties.names {
            if a.properties.names.contains(n) {
                return Err(Error::InvalidParameter(format!("both factors have a property named \"{n}\"")));
            }
        }
        let (samples, rows) = if a.samples == b.samples {
            (a.samples.clone(), (0..a.samples.count()).map(|s| (Some(s), Some(s))).collect())
        } else {
            let mut index: HashMap<&[i32], usize> = HashMap::new();
            let mut rows: Vec<(Option<usize>, Option<usize>)> = Vec::new();
            let mut values = Vec::new();
            for (s, row) in a.samples.rows().enumerate() {
                index.insert(row, rows.len());
                rows.push((Some(s), None));
                values.extend_from_slice(row);
            }
            for (s, row) in b.samples.rows().enumerate() {
                match index.get(row) {
                    Some(&k) => rows[k].1 = Some(s),
                    None => {
                        rows.push((None, Some(s)));
                        values.extend_from_slice(row);
                    }
                }
            }
            (Labels { names: a.samples.names.clone(), values }, rows)
        };
        let mut names: Vec<&str> = a.properties.names.iter().map(String::as_str).collect();
        names.extend(b.properties.names.iter().map(String::as_str));
        let mut values = Vec::with_capacity(a.properties.count() * b.properties.count() * names.len());
        for p in a.properties.rows() {
            for q in b.properties.rows() {
                values.extend_from_slice(p);
                values.extend_from_slice(q);
            }
        }
        Ok(PairProduct {
            a: Index::new(a, parameters)?,
            b: Index::new(b, parameters)?,
            samples,
            rows,
            parameters,
            properties: Labels::new(&names, values),
        })
    }

    /// The values of the blocks of every λ in `lambdas` for this pair, in
    /// one pass over the samples: per sample, the outer products
    /// a[m₁] ⊗ b[m₂] over the property planes are formed once and shared by
    /// every λ and μ ([`crate::math::cg_product`]); a sample's rows are
    /// zeroed just before they are accumulated, while in cache.
    fn values(&self, cg: &ClebschGordan, l1: usize, l2: usize, lambdas: &[usize]) -> Result<Vec<Vec<f64>>> {
        let (a, b) = (self.a.block, self.b.block);
        let (np, nq) = (a.properties.count(), b.properties.count());
        let n_props = np * nq;
        let (n1, n2) = (2 * l1 + 1, 2 * l2 + 1);
        let index = |v: usize| u32::try_from(v).map_err(|_| Error::InvalidParameter("density correlation block too large for its index type".into()));
        let mut steps = Vec::new();
        let mut buffers = Vec::with_capacity(lambdas.len());
        let mut per_sample = Vec::with_capacity(lambdas.len());
        // fresh buffers come zeroed; a reused one is zeroed per sample, in cache
        let mut dirty = false;
        for (k, &lambda) in lambdas.iter().enumerate() {
            for e in cg.get(l1, l2, lambda) {
                steps.push(Step { out: index(k)?, pos: index(e.mu * n_props)?, src: index((e.m1 * n2 + e.m2) * n_props)?, value: e.value });
            }
            let len = (2 * lambda + 1) * n_props;
            let (buffer, reused) = crate::tensor::buffer::for_overwrite(self.rows.len() * len, "the density correlations")?;
            dirty |= reused;
            buffers.push(buffer);
            per_sample.push(len);
        }
        let used: Vec<(usize, usize, usize)> =
            used_sources(&steps).into_iter().map(|src| src as usize).map(|src| (src, src / n_props.max(1) / n2, src / n_props.max(1) % n2)).collect();
        let (av, bv) = (a.values.as_ref(), b.values.as_ref());
        let mut p = vec![0.0; n1 * n2 * n_props];
        let mut base = vec![0usize; lambdas.len()];
        for (s, &(ra, rb)) in self.rows.iter().enumerate() {
            for ((buffer, start), &len) in buffers.iter_mut().zip(base.iter_mut()).zip(&per_sample) {
                *start = s * len;
                if dirty {
                    buffer[s * len..][..len].fill(0.0);
                }
            }
            if let (Some(ra), Some(rb), true) = (ra, rb, n_props > 0) {
                let xa = &av[ra * n1 * np..][..n1 * np];
                let xb = &bv[rb * n2 * nq..][..n2 * nq];
                for &(src, m1, m2) in &used {
                    outer(&mut p[src..][..n_props], &xa[m1 * np..][..np], &xb[m2 * nq..][..nq]);
                }
                apply_steps(&mut buffers, &base, &steps, &p, n_props);
            }
        }
        Ok(buffers)
    }

    fn block(&self, cg: &ClebschGordan, l1: usize, l2: usize, lambda: usize, values: Vec<f64>) -> Result<TensorBlock> {
        let (a, b) = (self.a.block, self.b.block);
        let (np, nq) = (a.properties.count(), b.properties.count());
        let n_props = np * nq;
        let (n1, n2, n_mu) = (2 * l1 + 1, 2 * l2 + 1, 2 * lambda + 1);
        let entries = cg.get(l1, l2, lambda);
        let (av, bv) = (a.values.as_ref(), b.values.as_ref());
        let mu = Labels::new(&["o3_mu"], (-(lambda as i32)..=lambda as i32).collect());
        let mut block = TensorBlock::new(self.samples.clone(), vec![mu.clone()], self.properties.clone(), values)?;

        for (slot, parameter) in self.parameters.iter().enumerate() {
            let (ga, gb) = (a.gradient(parameter).expect("checked in Index::new"), b.gradient(parameter).expect("checked in Index::new"));
            let extra_a: Vec<Labels> = ga.components[..ga.components.len().saturating_sub(1)].to_vec();
            let extra_b: Vec<Labels> = gb.components[..gb.components.len().saturating_sub(1)].to_vec();
            if extra_a != extra_b || ga.samples.names != gb.samples.names {
                return Err(Error::InvalidParameter(format!("the \"{parameter}\" gradients of the two factors have different layouts")));
            }
            let n_extra: usize = extra_a.iter().map(Labels::count).product();
            let (gav, gbv) = (ga.values.as_ref(), gb.values.as_ref());
            let width = ga.samples.size();
            // gradient rows of each output sample: the union of both factors'
            // rows (merged sorted lists), (row in ∂A, row in ∂B)
            let mut merged: Vec<(usize, Option<usize>, Option<usize>, &[i32])> = Vec::new();
            let empty = Vec::new();
            for (s, &(ra, rb)) in self.rows.iter().enumerate() {
                let rows_a = ra.map_or(&empty, |r| &self.a.gradient_rows[slot][r]);
                let rows_b = rb.map_or(&empty, |r| &self.b.gradient_rows[slot][r]);
                let (mut i, mut j) = (0, 0);
                while i < rows_a.len() || j < rows_b.len() {
                    let take_a = j >= rows_b.len() || (i < rows_a.len() && rows_a[i].1 <= rows_b[j].1);
                    let take_b = i >= rows_a.len() || (j < rows_b.len() && rows_b[j].1 <= rows_a[i].1);
                    let rest = if take_a { rows_a[i].1 } else { rows_b[j].1 };
                    merged.push((s, take_a.then(|| rows_a[i].0), take_b.then(|| rows_b[j].0), rest));
                    i += usize::from(take_a);
                    j += usize::from(take_b);
                }
            }
            let per_row = n_extra * n_mu * n_props;
            let mut grad = crate::tensor::buffer::zeroed(merged.len() * per_row, "the density correlation gradients")?;
            grad.par_chunks_mut(per_row.max(1)).zip(merged.par_iter()).for_each(|(out, &(s, ga_row, gb_row, _))| {
                let (ra, rb) = self.rows[s];
                for x in 0..n_extra {
                    let o = &mut out[x * n_mu * n_props..][..n_mu * n_props];
                    if let (Some(g), Some(rb)) = (ga_row, rb) {
                        let da = &gav[(g * n_extra + x) * n1 * np..][..n1 * np];
                        couple_dense(o, entries, n_props, da, np, &bv[rb * n2 * nq..][..n2 * nq], nq);
                    }
                    if let (Some(g), Some(ra)) = (gb_row, ra) {
                        let db = &gbv[(g * n_extra + x) * n2 * nq..][..n2 * nq];
                        couple_dense(o, entries, n_props, &av[ra * n1 * np..][..n1 * np], np, db, nq);
                    }
                }
            });
            let mut samples = Vec::with_capacity(merged.len() * width);
            for &(s, _, _, rest) in &merged {
                samples.push(s as i32);
                samples.extend_from_slice(rest);
            }
            let sample_names: Vec<&str> = ga.samples.names.iter().map(String::as_str).collect();
            debug_assert_eq!(sample_names.len(), width);
            let mut components = extra_a;
            components.push(mu.clone());
            let g = TensorBlock::new(Labels::new(&sample_names, samples), components, self.properties.clone(), grad)?;
            block.gradients.push((parameter.clone(), g));
        }
        Ok(block)
    }
}

/// `out[μ][p·nq + q] += Ĉ[m₁,m₂,μ] a[m₁][p] b[m₂][q]` over the sparse entries.
#[inline]
fn couple_dense(out: &mut [f64], entries: &[crate::math::clebsch_gordan::CgEntry], n_props: usize, a: &[f64], np: usize, b: &[f64], nq: usize) {
    for e in entries {
        let ra = &a[e.m1 * np..][..np];
        let rb = &b[e.m2 * nq..][..nq];
        let o = &mut out[e.mu * n_props..][..n_props];
        for (row, &x) in o.chunks_exact_mut(nq).zip(ra) {
            let x = e.value * x;
            for (r, &y) in row.iter_mut().zip(rb) {
                *r += x * y;
            }
        }
    }
}

/// The density with every property name given numeric suffix `by`.
fn rename_properties<V: AsRef<[f64]>>(t: &TensorMapOf<V>, by: usize) -> TensorMapOf<&[f64]> {
    let blocks = t
        .blocks
        .iter()
        .map(|b| {
            let rename = |l: &Labels| Labels { names: l.names.iter().map(|n| increment_suffix(n, by)).collect(), values: l.values.clone() };
            let properties = rename(&b.properties);
            TensorBlockOf {
                samples: b.samples.clone(),
                components: b.components.clone(),
                properties: properties.clone(),
                values: b.values.as_ref(),
                gradients: b
                    .gradients
                    .iter()
                    .map(|(p, g)| {
                        (p.clone(), TensorBlockOf {
                            samples: g.samples.clone(),
                            components: g.components.clone(),
                            properties: properties.clone(),
                            values: g.values.as_ref(),
                            gradients: Vec::new(),
                        })
                    })
                    .collect(),
            }
        })
        .collect();
    TensorMapOf { keys: t.keys.clone(), blocks }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_like_featomic() {
        assert_eq!(increment_suffix("n", 1), "n_1");
        assert_eq!(increment_suffix("n", 0), "n_0");
        assert_eq!(increment_suffix("n_1", 1), "n_2");
        assert_eq!(increment_suffix("center_type", 3), "center_3_type");
        assert_eq!(increment_suffix("first_atom_1_type", 1), "first_atom_2_type");
        assert_eq!(increment_suffix("center_type_1_type", 7), "center_type_8_type");
        assert_eq!(increment_suffix("neighbor_type", 2), "neighbor_2_type");
    }

    const HYPERS: &str = r#"{"cutoff": {"radius": 3.5, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        "density": {"type": "Gaussian", "width": 0.3},
        "basis": {"type": "TensorProduct", "max_angular": 2, "radial": {"type": "Gto", "max_radial": 2}, "spline_accuracy": null}}"#;

    fn system() -> crate::system::System {
        crate::system::System::new(
            vec![8, 6, 1, 1],
            vec![[0.0, 0.0, 0.0], [1.2, 0.1, -0.1], [-0.5, 0.9, 0.2], [1.8, 0.9, 0.3]],
            [[0.0; 3]; 3],
            [false; 3],
        )
        .unwrap()
    }

    /// One product of the spherical expansion, with l_1, l_2 moved to the
    /// properties, is λ-SOAP with neighbours in properties (an independent
    /// code path: dense vs per-centre coupling).
    #[test]
    fn one_product_is_lambda_soap() {
        use crate::calculators::{Calculator, ComputeOptions, EquivariantPowerSpectrum, SphericalExpansion};
        use crate::tensor::ops::keys_to_properties;
        let systems = [system()];
        let se = SphericalExpansion::new(HYPERS).unwrap().compute(&systems, &ComputeOptions::default()).unwrap();
        let density = keys_to_properties(&se, &Labels::new(&["neighbor_type"], vec![])).unwrap();
        let dc = DensityCorrelations::new(1, 4, true).unwrap().compute(&density, None, None).unwrap();
        let dc = keys_to_properties(&dc, &Labels::new(&["l_1", "l_2"], vec![])).unwrap();
        let options = ComputeOptions { neighbors_to_properties: true, ..Default::default() };
        let ls = EquivariantPowerSpectrum::new(HYPERS, None).unwrap().compute(&systems, &options).unwrap();
        assert_eq!(dc.keys.count(), ls.keys.count());
        for (k, key) in ls.keys.rows().enumerate() {
            let (a, b) = (&ls.blocks[k], dc.block_by(&[("o3_lambda", key[0]), ("o3_sigma", key[1]), ("center_type", key[2])]).unwrap());
            assert_eq!(a.properties, b.properties);
            assert_eq!(a.samples, b.samples);
            let scale = a.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (x, y) in a.values.iter().zip(&b.values) {
                assert!((x - y).abs() <= 1e-14 * scale, "{key:?}: {x} vs {y}");
            }
        }
    }

    /// A selection may keep o3_lambda below max_angular while the inputs'
    /// l are above it: the coefficients must still cover the inputs.
    #[test]
    fn selection_below_the_input_degrees() {
        use crate::calculators::{Calculator, ComputeOptions, SphericalExpansion};
        use crate::tensor::ops::keys_to_properties;
        let se = SphericalExpansion::new(HYPERS).unwrap().compute(&[system()], &ComputeOptions::default()).unwrap();
        let density = keys_to_properties(&se, &Labels::new(&["neighbor_type"], vec![])).unwrap();
        let selected = Labels::new(&["o3_lambda"], vec![0, 1]);
        let dc = DensityCorrelations::new(1, 1, true).unwrap();
        let out = dc.compute(&density, None, Some(&selected)).unwrap();
        assert!(out.keys.rows().all(|k| k[0] <= 1));
        assert!(out.keys.rows().any(|k| k[3] == 2 && k[4] == 2));
        assert!(dc.compute(&density, None, None).unwrap_err().to_string().contains("max_angular is 1"));
    }

    #[test]
    fn settings_are_checked() {
        assert!(DensityCorrelations::new(0, 4, true).is_err());
        assert!(DensityCorrelations::new(1, MAX_DEGREE + 1, true).is_err());
    }
}
