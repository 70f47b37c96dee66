//! Extended XYZ files written (or read) by ASE parse to what ASE reads.
//!
//! test/fixtures/xyz/*.extxyz and expected.json come from
//! scripts/reference/ase_xyz.py; expected.json records, for every frame, the
//! types, positions, cell, pbc, info and per-atom arrays as ASE reads them
//! back. Floats must be equal bit for bit: both sides parse the same decimal
//! text with a correctly rounded parser.

use std::collections::BTreeSet;
use std::path::PathBuf;

use acdc_core::io::xyz::{format_xyz, parse_xyz, Column, Frame, InfoValue};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/xyz")
}

fn expected() -> Value {
    let path = fixtures().join("expected.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn i64s(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

fn bools(v: &Value) -> Vec<bool> {
    v.as_array().unwrap().iter().map(|x| x.as_bool().unwrap()).collect()
}

/// Bitwise float comparison (distinguishes -0.0, which ASE also keeps).
fn assert_same_floats(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(g.to_bits() == w.to_bits(), "{what}[{k}]: got {g:?}, ASE has {w:?}");
    }
}

fn check_info(what: &str, got: &InfoValue, want: &Value) {
    let value = &want["value"];
    match (want["type"].as_str().unwrap(), got) {
        ("int", InfoValue::Int(i)) => assert_eq!(*i, value.as_i64().unwrap(), "{what}"),
        ("float", InfoValue::Float(x)) => assert_same_floats(what, &[*x], &[value.as_f64().unwrap()]),
        ("bool", InfoValue::Bool(b)) => assert_eq!(*b, value.as_bool().unwrap(), "{what}"),
        ("str", InfoValue::Str(s)) => assert_eq!(s, value.as_str().unwrap(), "{what}"),
        ("int_array", InfoValue::IntArray(v)) => assert_eq!(v, &i64s(value), "{what}"),
        ("float_array", InfoValue::FloatArray(v)) => assert_same_floats(what, v, &f64s(value)),
        ("bool_array", InfoValue::BoolArray(v)) => assert_eq!(v, &bools(value), "{what}"),
        ("json", InfoValue::Json(v)) => assert_eq!(v, value, "{what}"),
        (kind, other) => panic!("{what}: ASE has a {kind} {value}, acdc read {other:?}"),
    }
}

fn check_array(what: &str, got: &Column, want: &Value) {
    let ncols = want["ncols"].as_u64().unwrap() as usize;
    assert_eq!(got.ncols(), ncols, "{what}: ncols");
    let data = &want["data"];
    match (want["type"].as_str().unwrap(), got) {
        ("float", Column::Float { data: d, .. }) => assert_same_floats(what, d, &f64s(data)),
        ("int", Column::Int { data: d, .. }) => {
            assert_eq!(d.iter().map(|&i| i64::from(i)).collect::<Vec<_>>(), i64s(data), "{what}")
        }
        ("bool", Column::Bool { data: d, .. }) => assert_eq!(d, &bools(data), "{what}"),
        ("str", Column::Str { data: d, .. }) => {
            let want: Vec<&str> = data.as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
            assert_eq!(d, &want, "{what}")
        }
        (kind, other) => panic!("{what}: ASE has a {kind} column, acdc read {other:?}"),
    }
}

fn check_frame(what: &str, got: &Frame, want: &Value) {
    let sys = &got.system;
    assert_eq!(sys.types.iter().map(|&t| i64::from(t)).collect::<Vec<_>>(), i64s(&want["types"]), "{what}: types");
    let positions: Vec<f64> = sys.positions.iter().flatten().copied().collect();
    assert_same_floats(&format!("{what}: positions"), &positions, &f64s(&want["positions"]));
    let cell: Vec<f64> = sys.cell.iter().flatten().copied().collect();
    assert_same_floats(&format!("{what}: cell"), &cell, &f64s(&want["cell"]));
    assert_eq!(sys.pbc.to_vec(), bools(&want["pbc"]), "{what}: pbc");

    let want_info = want["info"].as_object().unwrap();
    let got_keys: BTreeSet<&str> = got.info.iter().map(|(k, _)| k.as_str()).collect();
    let want_keys: BTreeSet<&str> = want_info.keys().map(String::as_str).collect();
    assert_eq!(got_keys, want_keys, "{what}: info keys");
    for (key, value) in &got.info {
        check_info(&format!("{what}: info '{key}'"), value, &want_info[key]);
    }

    let want_arrays = want["arrays"].as_object().unwrap();
    let got_names: BTreeSet<&str> = got.arrays.iter().map(|(k, _)| k.as_str()).collect();
    let want_names: BTreeSet<&str> = want_arrays.keys().map(String::as_str).collect();
    assert_eq!(got_names, want_names, "{what}: arrays");
    for (name, column) in &got.arrays {
        check_array(&format!("{what}: arrays '{name}'"), column, &want_arrays[name]);
    }
}

#[test]
fn fixtures_parse_as_ase_reads_them() {
    let expected = expected();
    assert!(expected["versions"]["ase"].is_string(), "expected.json records the ASE version");
    let files = expected["files"].as_object().unwrap();
    assert!(files.len() >= 7, "expected.json lists {} files", files.len());
    for (name, frames) in files {
        let path = fixtures().join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let parsed = parse_xyz(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let frames = frames.as_array().unwrap();
        assert_eq!(parsed.len(), frames.len(), "{name}: number of frames");
        for (k, (got, want)) in parsed.iter().zip(frames).enumerate() {
            check_frame(&format!("{name} frame {k}"), got, want);
        }
    }
}

#[test]
fn every_fixture_file_is_listed() {
    // a fixture added to the directory without an expectation would go untested
    let expected = expected();
    let files = expected["files"].as_object().unwrap();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".extxyz") || name.ends_with(".xyz") {
            assert!(files.contains_key(&name), "{name} has no entry in expected.json");
        }
    }
}

#[test]
fn fixtures_round_trip_through_format() {
    // what acdc writes, acdc reads back to the same values (still matching ASE)
    let expected = expected();
    for (name, frames) in expected["files"].as_object().unwrap() {
        let text = std::fs::read_to_string(fixtures().join(name)).unwrap();
        let parsed = parse_xyz(&text).unwrap();
        let written = format_xyz(&parsed).unwrap_or_else(|e| panic!("{name}: {e}"));
        let back = parse_xyz(&written).unwrap_or_else(|e| panic!("{name} as written by acdc: {e}\n{written}"));
        for (k, (got, want)) in back.iter().zip(frames.as_array().unwrap()).enumerate() {
            check_frame(&format!("{name} frame {k} (rewritten)"), got, want);
        }
        assert_eq!(format_xyz(&back).unwrap(), written, "{name}: formatting is stable");
    }
}
