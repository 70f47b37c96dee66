//! Shared helpers of the robustness and fuzz tests: a seeded generator,
//! random valid tensor maps, byte mutators and bitwise frame comparison.
#![allow(dead_code)]

use acdc_core::io::xyz::{Column, Frame, InfoValue};
use acdc_core::tensor::{Labels, TensorBlock, TensorMap};

/// SplitMix64: small, seeded, reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    /// Any double: random bits (NaN, infinities, subnormals, ±0 included)
    /// half the time, else a special value or an ordinary one.
    pub fn any_f64(&mut self) -> f64 {
        match self.below(8) {
            0..=3 => f64::from_bits(self.next()),
            4 => [0.0, -0.0, f64::MIN_POSITIVE, 5e-324, -5e-324, f64::MAX, f64::MIN, f64::EPSILON][self.below(8)],
            5 => f64::from_bits(self.next() & 0x800F_FFFF_FFFF_FFFF), // subnormal
            _ => (self.next() as i64 as f64) * 1e-18 * 10f64.powi(self.below(40) as i32 - 20),
        }
    }
    /// A finite double.
    pub fn finite_f64(&mut self) -> f64 {
        loop {
            let x = self.any_f64();
            if x.is_finite() {
                return x;
            }
        }
    }
}

fn labels(names: &[&str], rows: Vec<Vec<i32>>) -> Labels {
    Labels { names: names.iter().map(|s| s.to_string()).collect(), values: rows.concat() }
}

/// A random tensor map that is valid by construction: distinct keys, blocks
/// sharing their label names, gradients (for all blocks or none) whose
/// samples point into their block.
pub fn random_tensor(rng: &mut Rng) -> TensorMap {
    let key_names: &[&str] = [&["center_type"][..], &["center_type", "neighbor_type"], &["o3_lambda", "center_type", "neighbor_type"]]
        [rng.below(3)];
    // at most the number of distinct keys (3 values per dimension)
    let n_blocks = rng.below(5.min(3usize.pow(key_names.len() as u32) + 1));
    let mut keys: Vec<Vec<i32>> = Vec::new();
    while keys.len() < n_blocks {
        let k: Vec<i32> = key_names.iter().map(|_| rng.below(3) as i32).collect();
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let n_components = rng.below(3);
    let with_gradient = rng.chance(0.5);
    let blocks = keys
        .iter()
        .map(|_| {
            let n_samples = rng.below(5);
            let samples = labels(&["system", "atom"], (0..n_samples).map(|_| vec![rng.below(3) as i32, rng.below(4) as i32]).collect());
            let components: Vec<Labels> =
                (0..n_components).map(|c| Labels::range(["o3_mu", "xyz_c"][c], rng.below(4))).collect();
            let n_props = rng.below(4);
            let properties = labels(&["n"], (0..n_props).map(|_| vec![rng.below(5) as i32]).collect());
            let per_row: usize = components.iter().map(Labels::count).product();
            let values = (0..n_samples * per_row * n_props).map(|_| rng.finite_f64()).collect();
            let mut block = TensorBlock::new(samples, components.clone(), properties.clone(), values).unwrap();
            if with_gradient {
                let rows = if n_samples == 0 { 0 } else { rng.below(6) };
                let gs = labels(
                    &["sample", "system", "atom"],
                    (0..rows).map(|_| vec![rng.below(n_samples) as i32, rng.below(3) as i32, rng.below(4) as i32]).collect(),
                );
                let mut gc = vec![Labels::range("xyz", 3)];
                gc.extend(components);
                let g_per_row: usize = gc.iter().map(Labels::count).product();
                let gv = (0..rows * g_per_row * n_props).map(|_| rng.finite_f64()).collect();
                block.add_gradient("positions", TensorBlock::new(gs, gc, properties, gv).unwrap()).unwrap();
            }
            block
        })
        .collect();
    TensorMap::new(labels(key_names, keys), blocks).unwrap()
}

/// Mutates `bytes` in place: bit flips, truncation, duplication of a slice,
/// insertion of a token, overwrite with a huge number.
pub fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, tokens: &[&[u8]]) {
    for _ in 0..1 + rng.below(2) {
        let len = bytes.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => bytes.truncate(rng.below(len)),
            2 if len > 0 => {
                let a = rng.below(len);
                let b = (a + rng.below(64)).min(len);
                let piece = bytes[a..b].to_vec();
                let at = rng.below(len + 1);
                bytes.splice(at..at, piece);
            }
            3 if !tokens.is_empty() => {
                let t = tokens[rng.below(tokens.len())];
                let at = rng.below(len + 1);
                bytes.splice(at..at, t.iter().copied());
            }
            4 if len > 0 => {
                let huge: &[&[u8]] = &[b"9223372036854775807", b"18446744073709551616", b"4294967296", b"-1", b"1e308", b"99999999999"];
                let t = huge[rng.below(huge.len())];
                let at = rng.below(len);
                let end = (at + t.len()).min(len);
                bytes.splice(at..end, t.iter().copied());
            }
            _ if len > 0 => {
                let i = rng.below(len);
                bytes[i] = rng.next() as u8;
            }
            _ => bytes.extend_from_slice(b"1"),
        }
    }
}

/// The bits of `x`, with every NaN the same (text formats keep no payload).
pub fn bits_of(x: f64) -> u64 {
    if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

/// Whether two frames are equal with floats compared bit for bit (any NaN
/// equal to any NaN).
pub fn same_frame(a: &Frame, b: &Frame) -> bool {
    let bits = |v: &[f64]| v.iter().map(|&x| bits_of(x)).collect::<Vec<_>>();
    let flat = |p: &[[f64; 3]]| p.iter().flatten().map(|&x| bits_of(x)).collect::<Vec<_>>();
    let info_eq = |x: &InfoValue, y: &InfoValue| match (x, y) {
        (InfoValue::Float(p), InfoValue::Float(q)) => bits_of(*p) == bits_of(*q),
        (InfoValue::FloatArray(p), InfoValue::FloatArray(q)) => bits(p) == bits(q),
        _ => x == y,
    };
    let col_eq = |x: &Column, y: &Column| match (x, y) {
        (Column::Float { data: p, ncols: m }, Column::Float { data: q, ncols: n }) => m == n && bits(p) == bits(q),
        _ => x == y,
    };
    a.system.types == b.system.types
        && flat(&a.system.positions) == flat(&b.system.positions)
        && flat(&a.system.cell) == flat(&b.system.cell)
        && a.system.pbc == b.system.pbc
        && a.info.len() == b.info.len()
        && a.info.iter().zip(&b.info).all(|((k, x), (l, y))| k == l && info_eq(x, y))
        && a.arrays.len() == b.arrays.len()
        && a.arrays.iter().zip(&b.arrays).all(|((k, x), (l, y))| k == l && col_eq(x, y))
}

/// Runs `f`, turning a panic into an `Err` that carries its message.
pub fn no_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
    })
}
