//! The examples under `examples/`, compiled as modules of this test binary so
//! that `npm test` checks they still build without linking each of them (with
//! thin LTO, four example links took longer than all the tests).
//! Their `main` functions are not run here: `bench/` runs them. An example
//! must therefore stay one self-contained file (no `mod` of its own).
#![allow(dead_code)]

#[path = "../../examples/bench_core.rs"]
mod bench_core;
#[path = "../../examples/cg_profile.rs"]
mod cg_profile;
#[path = "../../examples/md_step.rs"]
mod md_step;
#[path = "../../examples/qr_fold_ab.rs"]
mod qr_fold_ab;
#[path = "../../examples/soap_gradients.rs"]
mod soap_gradients;
#[path = "../../examples/write_floor.rs"]
mod write_floor;

/// A new example must be listed above, or nothing would check that it builds.
#[test]
fn every_example_is_compiled_here() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let listed = include_str!("examples.rs");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rs"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no examples found in {}", dir.display());
    for name in names {
        assert!(listed.contains(&format!("#[path = \"../../examples/{name}\"]")), "examples/{name} is not compiled by tests/integration/examples.rs: add it there");
    }
}
