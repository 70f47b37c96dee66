//! Shared checks for the calculators' unit tests: analytic gradients against
//! central finite differences, and small test structures.
use super::{Calculator, ComputeOptions};
use crate::system::System;
use crate::tensor::{Labels, TensorMap};

/// Step of the central differences, in Å (positions) or dimensionless (strain).
const H: f64 = 1e-5;

/// A molecule with three species (C, O, H) and one more (N).
pub fn molecule() -> System {
    System::new(
        vec![6, 8, 1, 1, 7, 1],
        vec![[0.0, 0.0, 0.0], [1.21, 0.05, -0.02], [-0.55, 0.93, 0.1], [-0.52, -0.96, 0.07], [0.3, 0.4, 2.1], [1.1, 1.3, 1.7]],
        [[0.0; 3]; 3],
        [false; 3],
    )
    .unwrap()
}

/// A triclinic cell thinner than the cutoffs used in the tests (each atom
/// sees several of its own periodic images), three species.
pub fn triclinic() -> System {
    let cell = [[3.1, 0.0, 0.0], [0.9, 2.8, 0.0], [0.6, 0.7, 3.3]];
    let fractional = [[0.05, 0.1, 0.0], [0.4, 0.3, 0.25], [0.7, 0.6, 0.55], [0.2, 0.85, 0.7], [0.95, 0.45, 0.1]];
    let positions = fractional
        .iter()
        .map(|f| {
            let mut x = [0.0; 3];
            for k in 0..3 {
                x[k] = f[0] * cell[0][k] + f[1] * cell[1][k] + f[2] * cell[2][k];
            }
            x
        })
        .collect();
    System::new(vec![8, 1, 6, 1, 8], positions, cell, [true; 3]).unwrap()
}

fn values(calc: &dyn Calculator, system: &System) -> TensorMap {
    calc.compute(std::slice::from_ref(system), &ComputeOptions::default()).unwrap()
}

fn check(analytic: &[f64], fd: &[f64], tol: f64, what: &str) {
    let scale = analytic.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (k, (a, f)) in analytic.iter().zip(fd).enumerate() {
        assert!((a - f).abs() <= tol * scale, "{what}, entry {k}: analytic {a:e}, finite differences {f:e} (scale {scale:e})");
    }
}

/// Position gradients against central differences:
/// |analytic − FD| ≤ tol × max(1, largest |gradient| of the block).
pub fn finite_differences_positions(calc: &dyn Calculator, system: &System, tol: f64) {
    let options = ComputeOptions { gradients: vec!["positions".into()], ..Default::default() };
    let reference = calc.compute(std::slice::from_ref(system), &options).unwrap();
    for atom in 0..system.size() {
        for x in 0..3 {
            let mut plus = system.clone();
            plus.positions[atom][x] += H;
            let mut minus = system.clone();
            minus.positions[atom][x] -= H;
            let (vp, vm) = (values(calc, &plus), values(calc, &minus));
            assert_eq!(vp.keys, reference.keys);
            for (b, block) in reference.blocks.iter().enumerate() {
                assert_eq!(vp.blocks[b].samples, block.samples);
                // one sample's values: components × properties
                let nf = block.values.len() / block.samples.count().max(1);
                let grad = block.gradient("positions").expect("positions gradient");
                let mut analytic = vec![0.0; block.values.len()];
                let d = grad.samples.dimension("atom").unwrap();
                for (r, row) in grad.samples.rows().enumerate() {
                    if row[d] as usize == atom {
                        let s = row[0] as usize;
                        analytic[s * nf..][..nf].copy_from_slice(&grad.values[(r * 3 + x) * nf..][..nf]);
                    }
                }
                let fd: Vec<f64> = vp.blocks[b].values.iter().zip(&vm.blocks[b].values).map(|(p, m)| (p - m) / (2.0 * H)).collect();
                check(&analytic, &fd, tol, &format!("{} block {b}, d/dx[{atom}][{x}]", calc.name()));
            }
        }
    }
}

/// Strain gradients against central differences (positions and cell deformed
/// by 1 ± h e_ab), same tolerance rule as positions.
pub fn finite_differences_strain(calc: &dyn Calculator, system: &System, tol: f64) {
    let options = ComputeOptions { gradients: vec!["strain".into()], ..Default::default() };
    let reference = calc.compute(std::slice::from_ref(system), &options).unwrap();
    let deform = |eps: f64, a: usize, b: usize| {
        let mut s = system.clone();
        for p in s.positions.iter_mut() {
            p[b] += eps * p[a];
        }
        for row in s.cell.iter_mut() {
            row[b] += eps * row[a];
        }
        s
    };
    for a in 0..3 {
        for b in 0..3 {
            let (vp, vm) = (values(calc, &deform(H, a, b)), values(calc, &deform(-H, a, b)));
            for (k, block) in reference.blocks.iter().enumerate() {
                // one sample's values: components × properties; the gradient
                // row r belongs to the sample its first label names
                let nf = block.values.len() / block.samples.count().max(1);
                let grad = block.gradient("strain").expect("strain gradient");
                let mut analytic = vec![0.0; block.values.len()];
                for (r, row) in grad.samples.rows().enumerate() {
                    let s = row[0] as usize;
                    analytic[s * nf..][..nf].copy_from_slice(&grad.values[(r * 9 + a * 3 + b) * nf..][..nf]);
                }
                let fd: Vec<f64> = vp.blocks[k].values.iter().zip(&vm.blocks[k].values).map(|(p, m)| (p - m) / (2.0 * H)).collect();
                check(&analytic, &fd, tol, &format!("{} block {k}, d/dε[{a}][{b}]", calc.name()));
            }
        }
    }
}

/// Selected keys and selected samples give exactly (bit for bit) the
/// matching blocks and rows of the full compute of `systems`: keys, every
/// other key of the full result; samples, every other (system, atom) centre
/// for per-atom calculators, every other system for per-structure ones. A
/// block may be absent from the sample selection only where all its
/// selected rows are zero in the full result.
pub fn check_selection(calc: &dyn Calculator, systems: &[System]) {
    let full = calc.compute(systems, &ComputeOptions::default()).unwrap();
    let names: Vec<&str> = full.keys.names.iter().map(|s| s.as_str()).collect();
    let chosen: Vec<i32> = full.keys.rows().step_by(2).flatten().copied().collect();
    let options = ComputeOptions { selected_keys: Some(Labels::new(&names, chosen.clone())), ..Default::default() };
    let some = calc.compute(systems, &options).unwrap();
    assert_eq!(some.keys, Labels::new(&names, chosen), "{}: selected keys", calc.name());
    for (k, key) in some.keys.rows().enumerate() {
        let whole = &full.blocks[full.keys.position(key).unwrap()];
        assert_eq!(some.blocks[k].samples, whole.samples, "{} key {key:?}", calc.name());
        assert_eq!(some.blocks[k].properties, whole.properties, "{} key {key:?}", calc.name());
        assert_eq!(some.blocks[k].values, whole.values, "{} key {key:?}: selected keys change the values", calc.name());
    }

    let per_atom = full.blocks[0].samples.dimension("atom").is_some();
    let selection = if per_atom {
        let rows: Vec<i32> = systems.iter().enumerate().flat_map(|(s, sys)| (0..sys.size()).map(move |a| (s, a))).step_by(2).flat_map(|(s, a)| [s as i32, a as i32]).collect();
        Labels::new(&["system", "atom"], rows)
    } else {
        Labels::new(&["system"], (0..systems.len() as i32).filter(|s| s % 2 == 1).collect())
    };
    assert!(selection.count() > 0);
    let options = ComputeOptions { selected_samples: Some(selection.clone()), ..Default::default() };
    let some = calc.compute(systems, &options).unwrap();
    let picked = |row: &[i32]| selection.position(&row[..selection.names.len()]).is_some();
    let mut rows_seen = 0;
    for (b, key) in full.keys.rows().enumerate() {
        let whole = &full.blocks[b];
        let width = whole.values.len() / whole.samples.count().max(1);
        let wanted: Vec<usize> = (0..whole.samples.count()).filter(|&r| picked(whole.samples.row(r))).collect();
        let Some(k) = some.keys.position(key) else {
            // λ-SOAP takes its keys from the neighbour types the selected
            // centres see (featomic: from every centre); a key can only go
            // when its selected rows are the zero product c_a ⊗ 0
            for &w in &wanted {
                assert!(
                    whole.values[w * width..][..width].iter().all(|&v| v == 0.0),
                    "{} key {key:?}: selected samples dropped a block with non-zero rows",
                    calc.name()
                );
            }
            continue;
        };
        let part = &some.blocks[k];
        assert_eq!(part.samples.count(), wanted.len(), "{} key {key:?}: selected sample count", calc.name());
        for (r, &w) in wanted.iter().enumerate() {
            assert_eq!(part.samples.row(r), whole.samples.row(w), "{} key {key:?}: sample order", calc.name());
            assert_eq!(&part.values[r * width..][..width], &whole.values[w * width..][..width], "{} key {key:?}, sample {r}", calc.name());
            rows_seen += 1;
        }
    }
    assert!(rows_seen > 0, "{}: no selected sample was compared", calc.name());
    for key in some.keys.rows() {
        assert!(full.keys.position(key).is_some(), "{}: selected samples made the key {key:?}", calc.name());
    }
}
