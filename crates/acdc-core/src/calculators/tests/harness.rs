//! Every calculator through the shared harness of [`super::tests_utils`]:
//! values against a reference fixture (featomic or DScribe, under
//! test/fixtures, or an independent transcription where no fixture exists),
//! position and strain gradients against central finite differences, and
//! selected keys / samples equal to the matching subset of a full compute.
//!
//! | calculator | values | positions FD | strain FD | selection |
//! |---|---|---|---|---|
//! | spherical_expansion | featomic small_cell | yes | yes | keys, samples |
//! | soap_power_spectrum | featomic small_cell | yes | yes | keys, samples |
//! | soap_radial_spectrum | featomic small_cell | yes | yes | keys, samples |
//! | equivariant_power_spectrum (λ-SOAP) | featomic_cg molecule, periodic | yes | yes | keys, samples (1) |
//! | soap_bispectrum | featomic_cg density_correlations ν = 3, λ = 0 | yes | yes | keys, samples |
//! | density_correlations | featomic_cg molecule, periodic | (no gradients) | (no gradients) | keys |
//! | symmetry_functions (ACSF) | DScribe | yes | yes | keys, samples |
//! | coulomb_matrix | DScribe | yes | yes | samples |
//! | sine_matrix | DScribe | yes | yes | samples |
//! | ewald_sum_matrix | DScribe | yes | yes | samples |
//! | alchemical expansion / power spectrum | U × species-resolved expansion | yes | yes | keys, samples |
//!
//! (1) λ-SOAP takes its keys from the neighbour types the selected centres
//! see, so a sample selection may drop a key whose selected rows are zero
//! (featomic keeps it); the check allows exactly that.
//!
//! Fixture paths are relative to the crate (`CARGO_MANIFEST_DIR/../../test/fixtures`).
use std::io::Read;

use serde_json::Value;

use super::tests_utils::{check_selection, finite_differences_positions, finite_differences_strain, molecule, triclinic};
use super::*;
use crate::system::System;
use crate::tensor::{Labels, TensorMap};

fn fixture(path: &str) -> Value {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures").join(path);
    let bytes = std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut text).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn ints(v: &Value) -> Vec<i32> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap() as i32).collect()
}

fn system(v: &Value) -> System {
    let p = numbers(&v["positions"]);
    let c = numbers(&v["cell"]);
    let pbc: Vec<bool> = v["pbc"].as_array().unwrap().iter().map(|b| b.as_bool().unwrap()).collect();
    System::new(
        ints(&v["types"]),
        p.chunks(3).map(|x| [x[0], x[1], x[2]]).collect(),
        [[c[0], c[1], c[2]], [c[3], c[4], c[5]], [c[6], c[7], c[8]]],
        [pbc[0], pbc[1], pbc[2]],
    )
    .unwrap()
}

fn labels(v: &Value) -> Labels {
    let names: Vec<&str> = v["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    let values = v["values"].as_array().unwrap().iter().flat_map(ints).collect();
    Labels::new(&names, values)
}

/// Compares `tm` with a fixture TensorMap (featomic's layout: keys, blocks of
/// samples, components, properties and flat values), rows and columns
/// matched by their labels: |got − want| ≤ tol × max(largest |want| of the
/// block, 1e-5 × largest of all blocks). Returns the number of values compared.
fn compare_with_fixture(tm: &TensorMap, want: &Value, tol: f64) -> usize {
    let keys = labels(&want["keys"]);
    assert_eq!(tm.keys.names, keys.names);
    assert_eq!(tm.keys.count(), keys.count(), "number of keys");
    let blocks = want["blocks"].as_array().unwrap();
    let overall = blocks.iter().flat_map(|b| numbers(&b["values"])).fold(0.0f64, |m, v| m.max(v.abs()));
    let mut compared = 0;
    for (b, key) in keys.rows().enumerate() {
        let k = tm.keys.position(key).unwrap_or_else(|| panic!("key {key:?} missing"));
        let (got, w) = (&tm.blocks[k], &blocks[b]);
        let (samples, properties) = (labels(&w["samples"]), labels(&w["properties"]));
        assert_eq!(got.samples.names, samples.names);
        assert_eq!(got.properties.names, properties.names);
        assert_eq!(got.samples.count(), samples.count(), "key {key:?}: samples");
        assert_eq!(got.properties.count(), properties.count(), "key {key:?}: properties");
        let components: Vec<Labels> = w["components"].as_array().unwrap().iter().map(labels).collect();
        assert_eq!(got.components, components, "key {key:?}: components");
        let nc: usize = components.iter().map(|c| c.count()).product();
        let np = properties.count();
        let values = numbers(&w["values"]);
        let scale = values.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-5 * overall);
        let cols: Vec<usize> = properties.rows().map(|p| got.properties.position(p).unwrap_or_else(|| panic!("property {p:?} missing"))).collect();
        for (s, sample) in samples.rows().enumerate() {
            let r = got.samples.position(sample).unwrap_or_else(|| panic!("key {key:?}: sample {sample:?} missing"));
            for c in 0..nc {
                for (p, &q) in cols.iter().enumerate() {
                    let (g, x) = (got.values[(r * nc + c) * np + q], values[(s * nc + c) * np + p]);
                    assert!((g - x).abs() <= tol * scale, "key {key:?}, sample {sample:?}, component {c}, property {p}: {g:e} vs {x:e}");
                    compared += 1;
                }
            }
        }
    }
    compared
}

const SOAP_SMALL: &str = r#"{"cutoff": {"radius": 3.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
    "density": {"type": "Gaussian", "width": 0.35, "center_atom_weight": 0.7},
    "basis": {"type": "TensorProduct", "max_angular": 2, "radial": {"type": "Gto", "max_radial": 2}}}"#;

/// The FD tolerance of the SOAP family: central differences with h = 1e-5
/// are accurate to ~1e-9 of the scale; splines add their 1e-8 error to the
/// analytic derivative of the interpolant.
const SOAP_FD: f64 = 1e-6;

fn soap_harness(calc: &dyn Calculator, strain: bool) {
    finite_differences_positions(calc, &molecule(), SOAP_FD);
    finite_differences_positions(calc, &triclinic(), SOAP_FD);
    if strain {
        finite_differences_strain(calc, &triclinic(), SOAP_FD);
    }
    check_selection(calc, &[molecule(), triclinic()]);
}

/// featomic's SphericalExpansion, SoapPowerSpectrum and SoapRadialSpectrum
/// (exact radial integrals) on distorted triclinic Si2 / SiC cells.
fn featomic_values(name: &str) {
    let f = fixture("featomic/small_cell.json.gz");
    let systems: Vec<System> = f["systems"].as_array().unwrap().iter().map(system).collect();
    let mut done = 0;
    for calc in f["calculations"].as_array().unwrap() {
        if calc["calculator"] != name {
            continue;
        }
        let c = from_name(name, &calc["hypers"].to_string()).unwrap();
        let tm = c.compute(&systems, &ComputeOptions::default()).unwrap();
        // featomic's own splines differ from acdc's at 1e-8 (their spline accuracy)
        let tol = if calc["variant"] == "exact" { 1e-10 } else { 1e-7 };
        assert!(compare_with_fixture(&tm, calc, tol) > 30);
        done += 1;
    }
    assert_eq!(done, 2, "{name}: exact and splined calculations in the fixture");
}

#[test]
fn spherical_expansion() {
    featomic_values("spherical_expansion");
    soap_harness(&SphericalExpansion::new(SOAP_SMALL).unwrap(), true);
}

#[test]
fn soap_power_spectrum() {
    featomic_values("soap_power_spectrum");
    soap_harness(&SoapPowerSpectrum::new(SOAP_SMALL).unwrap(), true);
}

#[test]
fn soap_radial_spectrum() {
    featomic_values("soap_radial_spectrum");
    let radial = r#"{"cutoff": {"radius": 3.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        "density": {"type": "Gaussian", "width": 0.35, "center_atom_weight": 0.7},
        "basis": {"radial": {"type": "Gto", "max_radial": 3}}}"#;
    soap_harness(&SoapRadialSpectrum::new(radial).unwrap(), true);
}

fn cg_fixture(name: &str) -> (Vec<System>, Vec<Value>) {
    let f = fixture(&format!("featomic_cg/{name}.json.gz"));
    (f["systems"].as_array().unwrap().iter().map(system).collect(), f["calculations"].as_array().unwrap().clone())
}

#[test]
fn equivariant_power_spectrum() {
    for name in ["molecule", "periodic"] {
        let (systems, calcs) = cg_fixture(name);
        let mut done = 0;
        for calc in calcs.iter().filter(|c| c["kind"] == "equivariant_power_spectrum" && c["variant"] == "exact") {
            let types = calc["options"]["neighbor_types"].as_array().map(|_| ints(&calc["options"]["neighbor_types"]));
            let c = lambda_soap::EquivariantPowerSpectrum::new(&calc["hypers"].to_string(), types).unwrap();
            let options = ComputeOptions { neighbors_to_properties: calc["options"]["neighbors_to_properties"] == true, ..Default::default() };
            let tm = c.compute(&systems, &options).unwrap();
            assert!(compare_with_fixture(&tm, calc, 1e-10) > 100);
            done += 1;
        }
        assert_eq!(done, 2);
    }
    let calc = EquivariantPowerSpectrum::new(SOAP_SMALL, None).unwrap();
    finite_differences_positions(&calc, &molecule(), SOAP_FD);
    finite_differences_positions(&calc, &triclinic(), SOAP_FD);
    finite_differences_strain(&calc, &triclinic(), SOAP_FD);
    check_selection(&calc, &[molecule(), triclinic()]);
}

#[test]
fn soap_bispectrum() {
    // featomic's DensityCorrelations(n_correlations = 2), o3_lambda = 0 blocks:
    // our properties are (l_1, l_2, k_2, l_3, then featomic's property row)
    for name in ["molecule", "periodic"] {
        let (systems, calcs) = cg_fixture(name);
        let calc = calcs.iter().find(|c| c["kind"] == "density_correlations" && c["options"]["n_correlations"] == 2).unwrap();
        let tm = SoapBispectrum::new(&calc["hypers"].to_string()).unwrap().compute(&systems, &ComputeOptions::default()).unwrap();
        let keys = labels(&calc["keys"]);
        let dim = |n: &str| keys.dimension(n).unwrap();
        let all = calc["blocks"].as_array().unwrap();
        let overall = all.iter().flat_map(|b| numbers(&b["values"])).fold(0.0f64, |m, v| m.max(v.abs()));
        let mut compared = 0;
        for (b, key) in keys.rows().enumerate() {
            if key[dim("o3_lambda")] != 0 || key[dim("o3_sigma")] != 1 {
                continue;
            }
            let w = &all[b];
            let block = tm.block_by(&[("center_type", key[dim("center_type")])]).unwrap();
            let (samples, properties) = (labels(&w["samples"]), labels(&w["properties"]));
            let values = numbers(&w["values"]);
            let np = properties.count();
            let scale = values.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-5 * overall);
            for (q, p) in properties.rows().enumerate() {
                let head = [key[dim("l_1")], key[dim("l_2")], key[dim("k_2")], key[dim("l_3")]];
                let col = block.properties.rows().position(|r| r[..4] == head && r[4..] == *p).unwrap_or_else(|| panic!("column {head:?} {p:?}"));
                for (s, sample) in samples.rows().enumerate() {
                    let r = block.samples.position(sample).unwrap();
                    let got = block.values[r * block.properties.count() + col];
                    assert!((got - values[s * np + q]).abs() <= 1e-10 * scale, "{name} key {key:?}: {got:e} vs {:e}", values[s * np + q]);
                    compared += 1;
                }
            }
        }
        assert!(compared > 100, "{compared}");
    }
    soap_harness(&SoapBispectrum::new(SOAP_SMALL).unwrap(), true);
}

#[test]
fn density_correlations() {
    use crate::tensor::ops::keys_to_properties;
    for name in ["molecule", "periodic"] {
        let (systems, calcs) = cg_fixture(name);
        let mut done = 0;
        for calc in calcs.iter().filter(|c| c["kind"] == "density_correlations") {
            let o = &calc["options"];
            let se = SphericalExpansion::new(&calc["hypers"].to_string()).unwrap().compute(&systems, &ComputeOptions::default()).unwrap();
            let density = keys_to_properties(&se, &Labels::new(&["neighbor_type"], vec![])).unwrap();
            let dc = DensityCorrelations::new(o["n_correlations"].as_u64().unwrap() as usize, o["max_angular"].as_u64().unwrap() as usize, true).unwrap();
            let cutoff = o["angular_cutoff"].as_u64().map(|c| c as usize);
            let tm = dc.compute(&density, cutoff, None).unwrap();
            assert!(compare_with_fixture(&tm, calc, 1e-10) > 100);
            // selected keys: the subset of the full result, bit for bit
            let chosen: Vec<i32> = tm.keys.rows().step_by(3).flatten().copied().collect();
            let names: Vec<&str> = tm.keys.names.iter().map(|s| s.as_str()).collect();
            let some = dc.compute(&density, cutoff, Some(&Labels::new(&names, chosen.clone()))).unwrap();
            assert_eq!(some.keys.count(), chosen.len() / names.len());
            for (k, key) in some.keys.rows().enumerate() {
                let full = &tm.blocks[tm.keys.position(key).unwrap()];
                assert_eq!(some.blocks[k].samples, full.samples);
                assert_eq!(some.blocks[k].values, full.values, "{name} key {key:?}");
            }
            done += 1;
        }
        assert_eq!(done, 2);
    }
}

fn dscribe(name: &str) -> Value {
    fixture(&format!("dscribe/{name}.json.gz"))
}

/// |got − want| ≤ tol × max(|want|, 1e-3 × largest |want|), entry by entry.
fn close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: sizes");
    let floor = 1e-3 * want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * w.abs().max(floor), "{what}, entry {k}: {g:e} vs {w:e}");
    }
}

#[test]
fn symmetry_functions() {
    let f = dscribe("acsf");
    let mut done = 0;
    for c in f["cases"].as_array().unwrap() {
        let s = system(&f["systems"][c["system"].as_str().unwrap()]);
        let calc = SymmetryFunctions::new(&c["hypers"].to_string()).unwrap();
        let tm = calc.compute(std::slice::from_ref(&s), &ComputeOptions::default()).unwrap();
        // DScribe's matrix: one row per atom, the row of its centre-type block
        let nf = tm.blocks[0].properties.count();
        let mut got = vec![f64::NAN; s.size() * nf];
        for block in &tm.blocks {
            for (r, sample) in block.samples.rows().enumerate() {
                got[sample[1] as usize * nf..][..nf].copy_from_slice(&block.values[r * nf..][..nf]);
            }
        }
        close(&got, &numbers(&c["values"]), 1e-10, &format!("acsf {}", c["hypers"]));
        done += 1;
    }
    assert!(done >= 8);
    let calc = SymmetryFunctions::new(r#"{"cutoff": 3.6, "g2": [[0.5, 0.0]], "g3": [1.0], "g4": [[0.1, 1.0, 1.0]], "g5": [[0.3, 4.0, -1.0]]}"#).unwrap();
    finite_differences_positions(&calc, &triclinic(), 1e-6);
    finite_differences_strain(&calc, &triclinic(), 1e-6);
    check_selection(&calc, &[molecule(), triclinic()]);
}

fn matrix_values(name: &str, make: impl Fn(&str) -> Box<dyn Calculator>) {
    let f = dscribe(name);
    let mut done = 0;
    for c in f["cases"].as_array().unwrap().iter().filter(|c| c.get("values").is_some()) {
        let systems: Vec<System> = c["systems"].as_array().unwrap().iter().map(|n| system(&f["systems"][n.as_str().unwrap()])).collect();
        let tm = make(&c["hypers"].to_string()).compute(&systems, &ComputeOptions::default()).unwrap();
        assert_eq!(tm.blocks.len(), 1);
        close(&tm.blocks[0].values, &numbers(&c["values"]), 1e-10, &format!("{name} {}", c["hypers"]));
        done += 1;
    }
    assert!(done >= 3, "{name}: {done} cases");
}

#[test]
fn coulomb_matrix() {
    matrix_values("coulomb_matrix", |h| Box::new(CoulombMatrix::new(h).unwrap()));
    let calc = CoulombMatrix::new(r#"{"n_atoms_max": 7, "permutation": "sorted_l2"}"#).unwrap();
    finite_differences_positions(&calc, &molecule(), 1e-6);
    finite_differences_strain(&calc, &triclinic(), 1e-6);
    check_selection(&calc, &[molecule(), triclinic(), molecule()]);
}

#[test]
fn sine_matrix() {
    matrix_values("sine_matrix", |h| Box::new(SineMatrix::new(h).unwrap()));
    let calc = SineMatrix::new(r#"{"n_atoms_max": 6, "permutation": "none"}"#).unwrap();
    finite_differences_positions(&calc, &triclinic(), 1e-6);
    finite_differences_strain(&calc, &triclinic(), 1e-6);
    let mut other = triclinic();
    other.positions[1][0] += 0.3;
    check_selection(&calc, &[triclinic(), other]);
}

#[test]
fn ewald_sum_matrix() {
    matrix_values("ewald_sum_matrix", |h| Box::new(EwaldSumMatrix::new(h).unwrap()));
    let calc = EwaldSumMatrix::new(r#"{"n_atoms_max": 5, "permutation": "none"}"#).unwrap();
    finite_differences_positions(&calc, &triclinic(), 1e-6);
    finite_differences_strain(&calc, &triclinic(), 1e-6);
    let mut other = triclinic();
    other.positions[2][1] -= 0.25;
    check_selection(&calc, &[triclinic(), other]);
}

const ALCHEMICAL: &str = r#"{"cutoff": {"radius": 3.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
    "density": {"type": "Gaussian", "width": 0.35, "alchemical": {"types": [1, 6, 7, 8],
        "coupling": [[0.5, 0.5, -0.5, 0.5], [0.1, -0.7, 0.3, 0.6]]}},
    "basis": {"type": "TensorProduct", "max_angular": 2, "radial": {"type": "Gto", "max_radial": 2}}}"#;

#[test]
fn alchemical() {
    // values: c_b = Σ_a u_ba c_a from the species-resolved expansion
    let plain: Value = {
        let mut v: Value = serde_json::from_str(ALCHEMICAL).unwrap();
        v["density"].as_object_mut().unwrap().remove("alchemical");
        v
    };
    let u = [[0.5, 0.5, -0.5, 0.5], [0.1, -0.7, 0.3, 0.6]];
    let types = [1, 6, 7, 8];
    let systems = [molecule(), triclinic()];
    let species = SphericalExpansion::new(&plain.to_string()).unwrap().compute(&systems, &ComputeOptions::default()).unwrap();
    let pseudo = SphericalExpansion::new(ALCHEMICAL).unwrap().compute(&systems, &ComputeOptions::default()).unwrap();
    assert_eq!(pseudo.keys.names, ["o3_lambda", "o3_sigma", "center_type", "pseudo_type"]);
    let mut compared = 0;
    for (k, key) in pseudo.keys.rows().enumerate() {
        let block = &pseudo.blocks[k];
        let width = block.values.len() / block.samples.count();
        let scale = block.values.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
        for (r, sample) in block.samples.rows().enumerate() {
            let mut want = vec![0.0; width];
            for (a, &t) in types.iter().enumerate() {
                let Some(sb) = species.keys.position(&[key[0], key[1], key[2], t]) else { continue };
                let sblock = &species.blocks[sb];
                if let Some(sr) = sblock.samples.position(sample) {
                    want.iter_mut().zip(&sblock.values[sr * width..][..width]).for_each(|(w, c)| *w += u[key[3] as usize][a] * c);
                }
            }
            for (g, w) in block.values[r * width..][..width].iter().zip(&want) {
                assert!((g - w).abs() <= 1e-12 * scale, "key {key:?}, sample {sample:?}: {g:e} vs {w:e}");
                compared += 1;
            }
        }
    }
    assert!(compared > 500, "{compared}");
    soap_harness(&SphericalExpansion::new(ALCHEMICAL).unwrap(), true);
    soap_harness(&SoapPowerSpectrum::new(ALCHEMICAL).unwrap(), true);
}
