//! Data-driven compression of the SOAP basis, fitted on structures:
//! pseudo-elements (alchemical compression, Willatt, Musil and Ceriotti,
//! PCCP 20, 29661 (2018)) and contracted radial bases (Goscinski, Musil,
//! Pozdnyakov, Nigam and Ceriotti, J. Chem. Phys. 155, 104106 (2021)).
//!
//! Both diagonalise an uncentred covariance of spherical-expansion
//! coefficients and keep its leading eigenvectors, each with its
//! largest-magnitude entry positive (the first such entry on ties), so that
//! the result is reproducible. The eigendecomposition is
//! [`symmetric_eigen`], the core's one symmetric eigensolver.
use std::collections::HashMap;

use nalgebra::DMatrix;

use crate::basis::tabulated::NodeTable;
use crate::calculators::soap::expansion::Expansion;
use crate::calculators::soap::hypers::SoapHypers;
use crate::calculators::{Calculator, ComputeOptions, SphericalExpansion};
use crate::error::{Error, Result};
use crate::math::linalg::symmetric_eigen;
use crate::system::System;
use crate::tensor::TensorMap;

/// The leading `k` eigenvectors of the symmetric `c` (n × n, row-major) as
/// rows (k × n), each with its largest-magnitude entry positive.
pub fn leading_eigenvectors(c: &[f64], n: usize, k: usize, what: &str) -> Result<Vec<Vec<f64>>> {
    let (_, vectors) = symmetric_eigen(DMatrix::from_row_slice(n, n, c), what)?;
    Ok((0..k.min(n))
        .map(|col| {
            let v: Vec<f64> = (0..n).map(|r| vectors[(r, col)]).collect();
            let mut big = 0.0f64;
            for &x in &v {
                if x.abs() > big.abs() {
                    big = x;
                }
            }
            let sign = if big < 0.0 { -1.0 } else { 1.0 };
            v.into_iter().map(|x| sign * x).collect()
        })
        .collect())
}

fn dimension(tm: &TensorMap, name: &str) -> Result<usize> {
    tm.keys.dimension(name).ok_or_else(|| Error::InvalidParameter(format!("the spherical expansion has no key \"{name}\"")))
}

/// Fitted pseudo-element coupling: `density.alchemical` of the hypers.
#[derive(Debug, Clone, PartialEq)]
pub struct AlchemicalCoupling {
    /// The elements of the systems, sorted by atomic number (S of them).
    pub types: Vec<i32>,
    /// U, B rows of S entries, orthonormal.
    pub coupling: Vec<Vec<f64>>,
}

/// Fits the pseudo-element coupling U (B × S) to `systems`.
///
/// The species-resolved spherical expansion of `hypers` (JSON, without
/// `density.alchemical`) gives, for every coefficient (centre, l, m, n), a
/// vector x over the S elements present (0 where absent). The uncentred
/// covariance C = (1/N) Σ x xᵀ (S × S) is diagonalised and its B leading
/// eigenvectors are the rows of U: the rank-B linear map of the element
/// channels that best preserves the density coefficients in the
/// least-squares sense.
pub fn fit_alchemical_coupling(systems: &[System], hypers: &str, pseudo_types: usize) -> Result<AlchemicalCoupling> {
    let mut all = element_components(systems, hypers)?;
    let s_count = all.types.len();
    if pseudo_types < 1 || pseudo_types > s_count {
        return Err(Error::InvalidParameter(format!(
            "pseudoTypes must be an integer between 1 and the number of elements in the systems ({s_count}), got {pseudo_types}"
        )));
    }
    all.coupling.truncate(pseudo_types);
    Ok(all)
}

/// Every principal direction of the element channels (S rows, decreasing
/// eigenvalue): [`fit_alchemical_coupling`] keeps the first B. For callers
/// that check B against the number of elements themselves.
pub fn element_components(systems: &[System], hypers: &str) -> Result<AlchemicalCoupling> {
    let tm = SphericalExpansion::new(hypers)?.compute(systems, &ComputeOptions::default())?;
    let (dl, dt) = (dimension(&tm, "o3_lambda")?, dimension(&tm, "neighbor_type")?);
    let mut types: Vec<i32> = tm.keys.rows().map(|k| k[dt]).collect();
    types.sort_unstable();
    types.dedup();
    let s_count = types.len();
    // one row per (centre, l): [m][n][element], in the order of first appearance
    let mut index: HashMap<(i32, i32, i32), usize> = HashMap::new();
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for (b, key) in tm.keys.rows().enumerate() {
        let block = &tm.blocks[b];
        let samples = block.samples.count();
        let width = block.values.len() / samples.max(1);
        let a = types.binary_search(&key[dt]).expect("neighbor_type among the types");
        for s in 0..samples {
            let row = block.samples.row(s);
            let id = (row[0], row[1], key[dl]);
            let r = *index.entry(id).or_insert_with(|| {
                rows.push(vec![0.0; width * s_count]);
                rows.len() - 1
            });
            for k in 0..width {
                rows[r][k * s_count + a] = block.values[s * width + k];
            }
        }
    }
    let mut c = vec![0.0; s_count * s_count];
    let mut count = 0usize;
    for row in &rows {
        for x in row.chunks(s_count) {
            for i in 0..s_count {
                if x[i] == 0.0 {
                    continue;
                }
                for j in 0..s_count {
                    c[i * s_count + j] += x[i] * x[j];
                }
            }
            count += 1;
        }
    }
    c.iter_mut().for_each(|v| *v /= count.max(1) as f64);
    let coupling = leading_eigenvectors(&c, s_count, s_count, "the element covariance")?;
    Ok(AlchemicalCoupling { types, coupling })
}

/// One angular channel of a contracted radial basis: its integrals at the
/// spline nodes of the full basis.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractedChannel {
    /// Angular channel l.
    pub l: usize,
    /// Number k of contracted functions.
    pub size: usize,
    /// Node positions (Å).
    pub positions: Vec<f64>,
    /// Contracted radial integrals at the nodes, row-major [node][k].
    pub values: Vec<f64>,
    /// Their radial derivatives (Å⁻¹), row-major [node][k].
    pub derivatives: Vec<f64>,
}

/// Fits a contracted radial basis of `max_radial + 1` functions per l (fewer
/// where the basis has fewer) to `systems`.
///
/// For every angular channel l of the splined basis of `hypers` (JSON), with
/// c_(i a l m n) the species-resolved expansion coefficients, the n × n
/// covariance C_l = Σ_(i,a,m) c cᵀ is diagonalised; its k leading
/// eigenvectors (rows of U_l) define R'_(l p) = Σ_n U_(l p n) R_(l n), whose
/// integrals are U_l applied to the node values and derivatives of the full
/// splines. The cubic Hermite spline is linear in its node data, so features
/// computed from these tables equal U_l applied to the full features up to
/// rounding.
pub fn fit_radial_contraction(systems: &[System], hypers: &str, max_radial: usize) -> Result<Vec<ContractedChannel>> {
    let (_, settings) = SoapHypers::from_json(SphericalExpansion::NAME, hypers)?;
    let tables: Vec<(usize, NodeTable)> =
        Expansion::new(settings)?.node_tables()?.into_iter().enumerate().filter_map(|(l, t)| t.map(|t| (l, t))).collect();
    let tm = SphericalExpansion::new(hypers)?.compute(systems, &ComputeOptions::default())?;
    let dl = dimension(&tm, "o3_lambda")?;
    let mut covariance: HashMap<usize, Vec<f64>> = tables.iter().map(|(l, t)| (*l, vec![0.0; t.size * t.size])).collect();
    for (b, key) in tm.keys.rows().enumerate() {
        let block = &tm.blocks[b];
        let n = block.properties.count();
        let Some(c) = covariance.get_mut(&(key[dl] as usize)) else { continue };
        if c.len() != n * n {
            continue;
        }
        for x in block.values.chunks(n) {
            for i in 0..n {
                if x[i] == 0.0 {
                    continue;
                }
                for j in 0..n {
                    c[i * n + j] += x[i] * x[j];
                }
            }
        }
    }
    tables
        .into_iter()
        .map(|(l, t)| {
            let n = t.size;
            let u = leading_eigenvectors(&covariance[&l], n, max_radial + 1, &format!("the radial covariance of l = {l}"))?;
            let k = u.len();
            let project = |data: &[f64]| -> Vec<f64> {
                data.chunks(n).flat_map(|node| u.iter().map(move |row| row.iter().zip(node).map(|(a, b)| a * b).sum::<f64>())).collect()
            };
            Ok(ContractedChannel { l, size: k, values: project(&t.values), derivatives: project(&t.derivatives), positions: t.positions })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_eigenvectors_of_a_known_matrix() {
        // eigenvalues 3 (1, 1)/√2 and 1 (1, −1)/√2; signs: largest entry positive
        let v = leading_eigenvectors(&[2.0, 1.0, 1.0, 2.0], 2, 2, "C").unwrap();
        let r = std::f64::consts::FRAC_1_SQRT_2;
        assert!((v[0][0] - r).abs() < 1e-15 && (v[0][1] - r).abs() < 1e-15, "{v:?}");
        assert!((v[1][0].abs() - r).abs() < 1e-15 && (v[1][0] + v[1][1]).abs() < 1e-15, "{v:?}");
        assert!(v[1][0] > 0.0, "{v:?}");
    }

    const HYPERS: &str = r#"{"cutoff": {"radius": 3.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        "density": {"type": "Gaussian", "width": 0.35},
        "basis": {"type": "TensorProduct", "max_angular": 2, "radial": {"type": "Gto", "max_radial": 3}}}"#;

    #[test]
    fn alchemical_coupling_is_orthonormal_and_b_is_checked() {
        let systems = [crate::calculators::tests_utils::molecule(), crate::calculators::tests_utils::triclinic()];
        let fit = fit_alchemical_coupling(&systems, HYPERS, 2).unwrap();
        assert_eq!(fit.types, vec![1, 6, 7, 8]);
        for r in &fit.coupling {
            for s in &fit.coupling {
                let dot: f64 = r.iter().zip(s).map(|(a, b)| a * b).sum();
                assert!((dot - if std::ptr::eq(r, s) { 1.0 } else { 0.0 }).abs() < 1e-12, "{dot}");
            }
        }
        let e = fit_alchemical_coupling(&systems, HYPERS, 5).unwrap_err().to_string();
        assert!(e.contains("number of elements in the systems (4), got 5"), "{e}");
    }

    #[test]
    fn radial_contraction_keeps_the_node_grid() {
        let systems = [crate::calculators::tests_utils::triclinic()];
        let channels = fit_radial_contraction(&systems, HYPERS, 1).unwrap();
        assert_eq!(channels.iter().map(|c| c.l).collect::<Vec<_>>(), vec![0, 1, 2]);
        for c in &channels {
            assert_eq!(c.size, 2);
            assert_eq!(c.values.len(), c.positions.len() * 2);
            assert_eq!(c.derivatives.len(), c.positions.len() * 2);
        }
    }
}
