//! Deterministic, seeded fuzzing of every parser and of the TensorMap
//! operations: valid seed inputs are mutated (bit flips, truncation,
//! splicing, huge numbers, deep nesting) and each case runs under
//! `catch_unwind`, so a panic fails the test with its input instead of
//! stopping the run. (A crash that cannot unwind, such as a stack overflow,
//! still ends this test binary, which cargo reports as a failure.)
//!
//! `ACDC_FUZZ_CASES` sets the number of cases per target (default 10 000);
//! `ACDC_FUZZ_SEED` the seed.

use std::io::Cursor;

use acdc_core::io::xyz::{format_xyz, parse_xyz};
use acdc_core::io::{mts, npy};
use acdc_core::tensor::{ops, Labels, TensorMap};
use crate::common::{mutate, no_panic, random_tensor, same_frame, Rng};

fn cases() -> usize {
    std::env::var("ACDC_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

fn seed() -> u64 {
    std::env::var("ACDC_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20261130)
}

fn xyz_seeds() -> Vec<String> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/xyz");
    let mut seeds: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "extxyz").then(|| std::fs::read_to_string(p).ok())?
        })
        .collect();
    seeds.push("0\nProperties=species:R:1:pos:R:3 pbc=\"F F F\"\n".into());
    seeds.push("1\ne=nan f=-inf g=-0.0 h=\"_JSON [NaN, 1.5]\" s=\"a b\" j=\"_JSON {\\\"a\\\": [1, null]}\"\nH 0 0 0\n".into());
    seeds.push("2\nLattice=\"2 0 0 0 2 0 0 0 2\" Properties=species:S:1:pos:R:3:q:I:2:ok:L:1:w:S:1 pbc=\"T F T\"\nO 0 0 0 1 2 T a\nH 1 1 1 3 4 F b\n".into());
    seeds.push("1\nplain comment\nC 0 0 0\nVEC1 3 0 0\n".into());
    assert!(seeds.len() > 6, "fixtures not found in {}", dir.display());
    seeds
}

const XYZ_TOKENS: &[&[u8]] = &[
    b"\n", b" ", b"=", b"\"", b"'", b"{", b"[", b"\\", b":", b",", b"nan", b"-0.0", b"inf", b"_JSON ", b"_JSON [",
    b"Properties=species:S:1:pos:R:3:x:R:9223372036854775807", b"Properties=species:R:1:pos:R:3", b"Lattice=\"1 0 0 0 1 0 0 0 1\"",
    b"pbc=T", b"uid=", b"Z:I:1", b"VEC1 1 0 0\n", b"\r", b"\xe2\x80\xa8", b"\x0b", b"1e999", b"T", b"0x1",
];

#[test]
fn fuzz_extxyz_parse_format_round_trip() {
    let seeds = xyz_seeds();
    let mut rng = Rng(seed());
    let (mut parsed, mut errors) = (0, 0);
    for case in 0..cases() {
        let mut bytes = seeds[rng.below(seeds.len())].clone().into_bytes();
        if rng.chance(0.3) {
            let other = seeds[rng.below(seeds.len())].as_bytes();
            let cut = rng.below(other.len() + 1);
            bytes.extend_from_slice(&other[cut..]);
        }
        mutate(&mut rng, &mut bytes, XYZ_TOKENS);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let outcome = no_panic(|| -> Result<bool, String> {
            let frames = match parse_xyz(&text) {
                Ok(f) => f,
                Err(_) => return Ok(false),
            };
            // what parses must format back to an equal frame
            let out = format_xyz(&frames).map_err(|e| format!("parsed but cannot be written: {e}"))?;
            let back = parse_xyz(&out).map_err(|e| format!("written text does not parse: {e}\n{out}"))?;
            if back.len() != frames.len() || !frames.iter().zip(&back).all(|(a, b)| same_frame(a, b)) {
                return Err(format!("written text reads back differently:\n{out}"));
            }
            Ok(true)
        });
        match outcome {
            Ok(Ok(true)) => parsed += 1,
            Ok(Ok(false)) => errors += 1,
            Ok(Err(m)) => panic!("case {case}: {m}\ninput: {text:?}"),
            Err(p) => panic!("case {case} panicked: {p}\ninput: {text:?}"),
        }
    }
    eprintln!("extxyz: {} cases, {parsed} parsed and round-tripped, {errors} errors, 0 panics", cases());
    assert!(parsed > cases() / 20 && errors > cases() / 20, "mutations too mild or too harsh: {parsed} parsed, {errors} errors");
}

fn npy_seeds(rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for scalar in [npy::Scalar::F64, npy::Scalar::F32, npy::Scalar::I32, npy::Scalar::I64] {
        let mut buf = Vec::new();
        let values: Vec<f64> = (0..6).map(|_| rng.below(100) as f64).collect();
        npy::write_f64(&mut buf, &[2, 3], &values, scalar).unwrap();
        seeds.push(buf);
    }
    let mut buf = Vec::new();
    npy::write_labels(&mut buf, &Labels::new(&["system", "atom"], vec![0, 1, 2, 3])).unwrap();
    seeds.push(buf);
    seeds
}

const NPY_TOKENS: &[&[u8]] = &[b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", b"((((((((((((((((((((", b"{{{{{{{{{{{{", b"'", b"\"", b",", b")", b"]", b"}", b"True", b"-", b"L", b"4294967296, 4294967296", b"'>f8'", b"('a', '<i4'), "];

#[test]
fn fuzz_npy_headers_and_data() {
    let mut rng = Rng(seed() ^ 1);
    let seeds = npy_seeds(&mut rng);
    let (mut ok, mut errors) = (0, 0);
    for case in 0..cases() {
        let mut bytes = seeds[rng.below(seeds.len())].clone();
        if rng.chance(0.05) {
            // a whole header of brackets (the stack overflow reproducer)
            let depth = 1 + rng.below(20_000);
            bytes = b"\x93NUMPY\x02\x00".to_vec();
            bytes.extend_from_slice(&(depth as u32).to_le_bytes());
            bytes.extend(std::iter::repeat_n(b"[({"[rng.below(3)], depth));
        } else {
            mutate(&mut rng, &mut bytes, NPY_TOKENS);
        }
        let r = no_panic(|| {
            npy::read(&bytes, "fuzz.npy").and_then(|a| {
                let _ = a.to_f64("fuzz.npy");
                a.to_labels("fuzz.npy").map(|_| ())
            })
        });
        match r {
            Ok(Ok(())) => ok += 1,
            Ok(Err(e)) => {
                errors += 1;
                assert!(e.to_string().len() < 1000, "case {case}: message too long: {}", e.to_string().len());
            }
            Err(p) => panic!("case {case} panicked: {p}\ninput: {bytes:?}"),
        }
    }
    eprintln!("npy: {} cases, {ok} read, {errors} errors, 0 panics", cases());
    assert!(errors > 0 && ok + errors == cases());
}

/// Rewrites an archive with one entry replaced, so that mutations reach the
/// npy and label checks behind the zip checksums.
fn with_entry_replaced(archive: &[u8], rng: &mut Rng) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut zip = zip::ZipArchive::new(Cursor::new(archive)).unwrap();
    let target = rng.below(zip.len());
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        if i == target {
            mutate(rng, &mut bytes, NPY_TOKENS);
        }
        let method = if rng.chance(0.2) { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
        out.start_file(name, zip::write::SimpleFileOptions::default().compression_method(method)).unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

#[test]
fn fuzz_mts_archives() {
    let mut rng = Rng(seed() ^ 2);
    let (mut ok, mut errors) = (0, 0);
    for case in 0..cases() {
        let t = random_tensor(&mut rng);
        let archive = mts::save(Cursor::new(Vec::new()), &t).unwrap().into_inner();
        let bytes = if rng.chance(0.7) {
            with_entry_replaced(&archive, &mut rng)
        } else {
            let mut b = archive;
            mutate(&mut rng, &mut b, NPY_TOKENS);
            b
        };
        match no_panic(|| mts::load(Cursor::new(&bytes[..]))) {
            Ok(Ok(loaded)) => {
                ok += 1;
                // whatever loads must save and load again to the same map
                let again = mts::save(Cursor::new(Vec::new()), &loaded).unwrap().into_inner();
                let back = mts::load(Cursor::new(again)).unwrap();
                assert!(same_tensor(&back, &loaded), "case {case}: loaded map does not round-trip");
            }
            Ok(Err(_)) => errors += 1,
            Err(p) => panic!("case {case} panicked: {p}"),
        }
    }
    eprintln!("mts: {} cases, {ok} loaded, {errors} errors, 0 panics", cases());
    assert!(errors > 0 && ok > 0);
}

/// Equality with floats compared bit for bit (a corrupted archive may hold NaNs).
fn same_tensor(a: &TensorMap, b: &TensorMap) -> bool {
    use acdc_core::tensor::TensorBlock;
    fn same_block(x: &TensorBlock, y: &TensorBlock) -> bool {
        x.samples == y.samples
            && x.components == y.components
            && x.properties == y.properties
            && x.values.iter().map(|v| v.to_bits()).eq(y.values.iter().map(|v| v.to_bits()))
            && x.gradients.len() == y.gradients.len()
            && x.gradients.iter().zip(&y.gradients).all(|((p, g), (q, h))| p == q && same_block(g, h))
    }
    a.keys == b.keys && a.blocks.len() == b.blocks.len() && a.blocks.iter().zip(&b.blocks).all(|(x, y)| same_block(x, y))
}

/// Every operation on random valid maps: no panic, and every result is a
/// valid map that round-trips through `.mts`.
#[test]
fn fuzz_tensor_operations() {
    let mut rng = Rng(seed() ^ 3);
    let (mut ok, mut errors) = (0, 0);
    for case in 0..cases() {
        let t = random_tensor(&mut rng);
        let names = t.keys.names.clone();
        let some_keys: Vec<String> = names.iter().filter(|_| rng.chance(0.5)).cloned().collect();
        let moved = if some_keys.is_empty() { vec![names[0].clone()] } else { some_keys };
        let explicit = rng.chance(0.3);
        let values: Vec<i32> = if explicit { (0..moved.len() * (1 + rng.below(4))).map(|_| rng.below(3) as i32).collect() } else { vec![] };
        let sample_names: Vec<String> =
            [["atom"].as_slice(), &["system"], &["system", "atom"], &["nope"]][rng.below(4)].iter().map(|s| s.to_string()).collect();
        let other = random_tensor(&mut rng);
        let results = no_panic(|| {
            vec![
                ("keys_to_properties", ops::keys_to_properties(&t, &Labels { names: moved.clone(), values: values.clone() })),
                ("keys_to_samples", ops::keys_to_samples(&t, &moved)),
                ("sum_over_samples", ops::reduce_over_samples(&t, &sample_names, false)),
                ("mean_over_samples", ops::reduce_over_samples(&t, &sample_names, true)),
                ("join", ops::join_samples(&[t.clone(), other.clone()], None)),
                ("join_self", ops::join_samples(&[t.clone(), t.clone()], Some(&[3, 3]))),
            ]
        })
        .unwrap_or_else(|p| panic!("case {case} panicked: {p}\ninput: {t:?}"));
        for map in std::iter::once(Ok(t.clone())).chain(results.into_iter().map(|(_, r)| r)) {
            match map {
                Ok(m) => {
                    ok += 1;
                    let bytes = mts::save(Cursor::new(Vec::new()), &m)
                        .unwrap_or_else(|e| panic!("case {case}: a result cannot be saved: {e}\n{m:?}"))
                        .into_inner();
                    let back = mts::load(Cursor::new(bytes)).unwrap_or_else(|e| panic!("case {case}: a saved result cannot be loaded: {e}\n{m:?}"));
                    assert!(same_tensor(&back, &m), "case {case}: round trip changed the map");
                }
                Err(_) => errors += 1,
            }
        }
    }
    eprintln!("tensor ops: {} maps, {ok} results round-tripped, {errors} errors, 0 panics", cases());
    assert!(ok > cases() && errors > 0);
}
