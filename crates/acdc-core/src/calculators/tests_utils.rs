//! Shared checks for the calculators' unit tests: analytic gradients against
//! central finite differences, and small test structures.
use super::{Calculator, ComputeOptions};
use crate::system::System;
use crate::tensor::TensorMap;

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
                let nf = block.properties.count();
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
                let nf = block.properties.count();
                let grad = block.gradient("strain").expect("strain gradient");
                let analytic: Vec<f64> =
                    (0..block.samples.count()).flat_map(|s| grad.values[(s * 9 + a * 3 + b) * nf..][..nf].iter().copied()).collect();
                let fd: Vec<f64> = vp.blocks[k].values.iter().zip(&vm.blocks[k].values).map(|(p, m)| (p - m) / (2.0 * H)).collect();
                check(&analytic, &fd, tol, &format!("{} block {k}, d/dε[{a}][{b}]", calc.name()));
            }
        }
    }
}
