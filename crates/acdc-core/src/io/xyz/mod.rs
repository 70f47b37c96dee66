//! Extended XYZ reading and writing, compatible with ASE (`ase.io.extxyz`).
//!
//! A frame is an atom count line, a comment line, and one line per atom:
//!
//! ```text
//! 2
//! Lattice="4.0 0.0 0.0 0.0 4.0 0.0 0.0 0.0 4.0" Properties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc="T T F"
//! Si 0.0 0.0 0.0 0.1 0.0 0.0
//! Si 1.0 1.0 1.0 -0.1 0.0 0.0
//! ```
//!
//! The comment line is read the way ASE's `key_val_str_to_dict` reads it:
//! `key=value` pairs separated by whitespace; values quoted with `"…"`,
//! `'…'`, `{…}` or `[…]`; `\` escapes the next character; a key without a
//! value is boolean true; a value becomes an integer (or integer array) if
//! every whitespace- or comma-separated word is an integer, else a float (or
//! float array) if every word is a number, else a boolean (or boolean array)
//! if every word is one of `T F True False true false TRUE FALSE`, else a
//! `_JSON …` value is decoded, else it stays a string. `uid` is never
//! converted. `Lattice` (nine numbers, the lattice vectors a, b, c one after
//! the other), `pbc` and `Properties` describe the structure and are not kept
//! in [`Frame::info`]. Without `Lattice` the cell is zero; `pbc` defaults to
//! `T T T` when a `Lattice` is given and to `F F F` otherwise. Without
//! `Properties` the columns are `species:S:1:pos:R:3`.
//!
//! Per-atom columns: `species` (element symbols, case-insensitive as in ASE)
//! or `Z` (atomic numbers; ASE prefers it over `species` when both are given)
//! become [`System::types`], `pos` becomes [`System::positions`]; every other
//! column is kept in [`Frame::arrays`] under its name in the file.
//!
//! Where ASE reads an input silently wrong, this reader is stricter or
//! fixes it, and says so in its error messages:
//! - an atom line with more or fewer columns than `Properties` declares, a
//!   logical column that is not `T`/`F`/`True`/`False`, an unterminated quote,
//!   a trailing lone `\`, a negative atom count, a blank line followed by
//!   another frame, and a file with neither `species` nor `Z` or without `pos`
//!   are errors (ASE truncates, guesses or stops early);
//! - an empty value (`key=` or `key=""`) is the empty string (ASE makes it an
//!   empty integer array, and misreads the pair after `key=""`);
//! - a comment line without any `=` whose quotes do not balance is free text
//!   and is kept whole as `comment` (ASE glues its words into one key);
//! - a parsed structure is validated by [`System::new`], so a NaN position
//!   or a singular periodic cell is a parse error at the frame's comment line.
//!
//! The `VEC1`/`VEC2`/`VEC3` lines that ASE's `vec_cell=True` writes after the
//! atoms are read as the cell too (periodic along each given vector; the
//! comment line is then kept whole as `comment`, as in ASE).
//!
//! Writing produces files that ASE reads back to the same values, and that
//! this reader reads back exactly (floats are written in their shortest
//! round-trip form). Values that the plain syntax would read back as
//! something else (a string `"42"`, one-element arrays, strings with line
//! breaks, nested data) are written in ASE's `_JSON …` form.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use super::clip;
use crate::error::{Error, Result};
use crate::system::System;

/// Longest line accepted (bytes): a longer one is an error rather than an
/// unbounded read into memory.
pub const MAX_LINE_BYTES: usize = 64 << 20;
/// Most `key=value` pairs on one comment line.
pub const MAX_INFO_KEYS: usize = 1 << 20;
/// Most values per atom line (the sum of the `Properties` column counts).
pub const MAX_COLUMNS: usize = 1 << 20;


mod comment;
mod elements;
mod python;
mod read;
mod write;

use comment::*;
use python::*;

pub use elements::{atomic_number, element_symbol, ELEMENT_SYMBOLS};
pub use read::{parse_xyz, read_xyz, XyzReader};
pub use write::{format_xyz, write_frame, write_xyz};

/// One frame of an extended XYZ file: the structure, the comment-line
/// values, and the extra per-atom columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The structure (types from `species` or `Z`, positions from `pos`,
    /// cell from `Lattice`, periodicity from `pbc`).
    pub system: System,
    /// Comment-line values other than `Lattice`, `pbc` and `Properties`, in
    /// the order of the file (a repeated key keeps its first place and its
    /// last value, as a Python dict does).
    pub info: Vec<(String, InfoValue)>,
    /// Per-atom columns other than `species`, `pos` and `Z`, under their
    /// names in the file, in the order of `Properties`.
    pub arrays: Vec<(String, Column)>,
}

impl Frame {
    /// A frame holding only a structure.
    pub fn new(system: System) -> Frame {
        Frame { system, info: Vec::new(), arrays: Vec::new() }
    }

    /// The comment-line value stored under `key`.
    pub fn get_info(&self, key: &str) -> Option<&InfoValue> {
        self.info.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The per-atom column stored under `name`.
    pub fn get_array(&self, name: &str) -> Option<&Column> {
        self.arrays.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

impl From<System> for Frame {
    fn from(system: System) -> Frame {
        Frame::new(system)
    }
}

/// A comment-line value, typed as ASE types it.
#[derive(Debug, Clone, PartialEq)]
pub enum InfoValue {
    /// An integer, e.g. `step=10`.
    Int(i64),
    /// A real number, e.g. `energy=-1.5` or `t=1e3`.
    Float(f64),
    /// A logical, e.g. `converged=T`, or a key without a value.
    Bool(bool),
    /// Anything that is not a number or logical, e.g. `name="bulk Si"`.
    Str(String),
    /// Several integers, e.g. `ids="1 2 3"` or `ids=1,2,3`.
    IntArray(Vec<i64>),
    /// Several numbers, at least one of them not an integer, e.g. `stress="…"`.
    FloatArray(Vec<f64>),
    /// Several logicals, e.g. `flags="T F T"`.
    BoolArray(Vec<bool>),
    /// A `_JSON …` value that is not a string, a scalar or a flat array of
    /// numbers or logicals: nested arrays, lists of strings, objects, `null`.
    /// (Those simpler values are read as the variants above, as ASE reads
    /// them, so `Json(json!([1, 2]))` reads back as `IntArray(vec![1, 2])`.)
    Json(serde_json::Value),
}

/// A per-atom column: `ncols` values per atom, stored flat, row-major
/// (`data[atom * ncols + col]`).
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Real values (`R` in `Properties`).
    Float {
        /// Flat row-major values.
        data: Vec<f64>,
        /// Values per atom.
        ncols: usize,
    },
    /// Integer values (`I` in `Properties`; 32-bit, as ASE stores them).
    Int {
        /// Flat row-major values.
        data: Vec<i32>,
        /// Values per atom.
        ncols: usize,
    },
    /// Logical values (`L` in `Properties`).
    Bool {
        /// Flat row-major values.
        data: Vec<bool>,
        /// Values per atom.
        ncols: usize,
    },
    /// Strings without whitespace (`S` in `Properties`).
    Str {
        /// Flat row-major values.
        data: Vec<String>,
        /// Values per atom.
        ncols: usize,
    },
}

impl Column {
    /// Values per atom.
    pub fn ncols(&self) -> usize {
        match self {
            Column::Float { ncols, .. }
            | Column::Int { ncols, .. }
            | Column::Bool { ncols, .. }
            | Column::Str { ncols, .. } => *ncols,
        }
    }

    /// Total number of values (atoms × `ncols`).
    pub fn len(&self) -> usize {
        match self {
            Column::Float { data, .. } => data.len(),
            Column::Int { data, .. } => data.len(),
            Column::Bool { data, .. } => data.len(),
            Column::Str { data, .. } => data.len(),
        }
    }

    /// Whether the column holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `Properties` type letter: `R`, `I`, `L` or `S`.
    fn type_letter(&self) -> char {
        match self {
            Column::Float { .. } => 'R',
            Column::Int { .. } => 'I',
            Column::Bool { .. } => 'L',
            Column::Str { .. } => 'S',
        }
    }
}


#[cfg(test)]
mod tests {
    use super::read::*;
    use super::write::*;
    use super::*;

    fn parse_err(text: &str) -> (usize, String) {
        match parse_xyz(text) {
            Err(Error::Parse { line, message }) => (line, message),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    fn one(text: &str) -> Frame {
        let mut frames = parse_xyz(text).unwrap();
        assert_eq!(frames.len(), 1);
        frames.pop().unwrap()
    }

    fn info_of(comment: &str) -> Vec<(String, InfoValue)> {
        one(&format!("1\n{comment}\nH 0 0 0\n")).info
    }

    #[test]
    fn element_table_matches_ase() {
        assert_eq!(ELEMENT_SYMBOLS.len(), 119);
        assert_eq!(atomic_number("H"), Some(1));
        assert_eq!(atomic_number("si"), Some(14));
        assert_eq!(atomic_number("FE"), Some(26));
        assert_eq!(atomic_number("U"), Some(92));
        assert_eq!(atomic_number("Og"), Some(118));
        assert_eq!(atomic_number("X"), Some(0));
        assert_eq!(atomic_number("Xx"), None);
        assert_eq!(atomic_number(""), None);
        assert_eq!(element_symbol(118), Some("Og"));
        assert_eq!(element_symbol(119), None);
        assert_eq!(element_symbol(-1), None);
        for z in 0..=118 {
            assert_eq!(atomic_number(element_symbol(z).unwrap()), Some(z));
        }
    }

    #[test]
    fn reads_a_periodic_frame_with_extra_columns() {
        let text = "2\n\
            Lattice=\"4.0 0.0 0.0 0.0 5.0 0.0 1.0 0.0 6.0\" Properties=species:S:1:pos:R:3:forces:R:3:tags:I:1:label:S:1:fixed:L:1 energy=-1.5 pbc=\"T T F\"\n\
            Si 0.0 0.0 0.0  0.1 0.2 0.3  7 a T\n\
            o  1.0 1.5 2.0 -0.1 -0.2 -0.3 -2 bb False\n";
        let f = one(text);
        assert_eq!(f.system.types, vec![14, 8]);
        assert_eq!(f.system.positions, vec![[0.0, 0.0, 0.0], [1.0, 1.5, 2.0]]);
        assert_eq!(f.system.cell, [[4.0, 0.0, 0.0], [0.0, 5.0, 0.0], [1.0, 0.0, 6.0]]);
        assert_eq!(f.system.pbc, [true, true, false]);
        assert_eq!(f.info, vec![("energy".to_string(), InfoValue::Float(-1.5))]);
        assert_eq!(
            f.get_array("forces"),
            Some(&Column::Float { data: vec![0.1, 0.2, 0.3, -0.1, -0.2, -0.3], ncols: 3 })
        );
        assert_eq!(f.get_array("tags"), Some(&Column::Int { data: vec![7, -2], ncols: 1 }));
        assert_eq!(f.get_array("label"), Some(&Column::Str { data: vec!["a".into(), "bb".into()], ncols: 1 }));
        assert_eq!(f.get_array("fixed"), Some(&Column::Bool { data: vec![true, false], ncols: 1 }));
        let names: Vec<&str> = f.arrays.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["forces", "tags", "label", "fixed"]);
    }

    #[test]
    fn defaults_for_missing_lattice_pbc_and_properties() {
        // no Lattice: zero cell, not periodic
        let f = one("1\nenergy=1\nH 1 2 3\n");
        assert_eq!(f.system.cell, [[0.0; 3]; 3]);
        assert_eq!(f.system.pbc, [false; 3]);
        assert_eq!(f.system.positions, vec![[1.0, 2.0, 3.0]]);
        // Lattice without pbc: periodic in all directions (ASE's default)
        let f = one("1\nLattice=\"2 0 0 0 2 0 0 0 2\"\nH 0 0 0\n");
        assert_eq!(f.system.pbc, [true; 3]);
        assert_eq!(f.system.cell, [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]);
        // pbc as a single logical, or integers
        let f = one("1\nLattice=\"2 0 0 0 2 0 0 0 2\" pbc=F\nH 0 0 0\n");
        assert_eq!(f.system.pbc, [false; 3]);
        let f = one("1\nLattice=\"2 0 0 0 2 0 0 0 2\" pbc=\"1 0 1\"\nH 0 0 0\n");
        assert_eq!(f.system.pbc, [true, false, true]);
        // ASE's {} and [] quoting for the lattice
        let f = one("1\nLattice={2 0 0 0 2 0 0 0 2} pbc=[T,F,T]\nH 0 0 0\n");
        assert_eq!(f.system.pbc, [true, false, true]);
        assert_eq!(f.system.cell[1], [0.0, 2.0, 0.0]);
    }

    #[test]
    fn plain_xyz_and_empty_comment() {
        let frames =
            parse_xyz("2\nwater dimer fragment\nO 0 0 0\nH 0 0 0.96\n3\n\nC 0 0 0\nC 1.2 0 0\nH 2 0 0\n").unwrap();
        assert_eq!(frames.len(), 2);
        // ASE reads words of a plain title as keys set to true
        assert_eq!(
            frames[0].info,
            vec![
                ("water".to_string(), InfoValue::Bool(true)),
                ("dimer".to_string(), InfoValue::Bool(true)),
                ("fragment".to_string(), InfoValue::Bool(true)),
            ]
        );
        assert_eq!(frames[0].system.types, vec![8, 1]);
        assert!(frames[1].info.is_empty());
        assert_eq!(frames[1].system.types, vec![6, 6, 1]);
        // free text that the key=value reader cannot split is kept whole
        let f = one("1\nit's a title\nH 0 0 0\n");
        assert_eq!(f.info, vec![("comment".to_string(), InfoValue::Str("it's a title".to_string()))]);
    }

    #[test]
    fn info_value_types() {
        let info = info_of(
            "i=3 neg=-7 plus=+4 big=99999999999999999999 f=1.5 e=1e3 nan=nan inf=-inf b=T b2=false b3=TRUE \
             s=hello q=\"two words\" ia=\"1 2 3\" fa=\"1 2.5\" ba=\"T F True\" csv=1,2,3 curly={4 5} square=[1.5,2] \
             flag uid=007 under=1_000 emp2=\"\" last=x emp=",
        );
        let get = |k: &str| info.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(get("i"), InfoValue::Int(3));
        assert_eq!(get("neg"), InfoValue::Int(-7));
        assert_eq!(get("plus"), InfoValue::Int(4));
        // beyond i64, NumPy falls back to float
        assert_eq!(get("big"), InfoValue::Float(1e20));
        assert_eq!(get("f"), InfoValue::Float(1.5));
        assert_eq!(get("e"), InfoValue::Float(1000.0));
        assert!(matches!(get("nan"), InfoValue::Float(x) if x.is_nan()));
        assert_eq!(get("inf"), InfoValue::Float(f64::NEG_INFINITY));
        assert_eq!(get("b"), InfoValue::Bool(true));
        assert_eq!(get("b2"), InfoValue::Bool(false));
        assert_eq!(get("b3"), InfoValue::Bool(true));
        assert_eq!(get("s"), InfoValue::Str("hello".into()));
        assert_eq!(get("q"), InfoValue::Str("two words".into()));
        assert_eq!(get("ia"), InfoValue::IntArray(vec![1, 2, 3]));
        assert_eq!(get("fa"), InfoValue::FloatArray(vec![1.0, 2.5]));
        assert_eq!(get("ba"), InfoValue::BoolArray(vec![true, false, true]));
        assert_eq!(get("csv"), InfoValue::IntArray(vec![1, 2, 3]));
        assert_eq!(get("curly"), InfoValue::IntArray(vec![4, 5]));
        assert_eq!(get("square"), InfoValue::FloatArray(vec![1.5, 2.0]));
        assert_eq!(get("flag"), InfoValue::Bool(true));
        assert_eq!(get("uid"), InfoValue::Str("007".into()));
        assert_eq!(get("under"), InfoValue::Int(1000));
        assert_eq!(get("emp"), InfoValue::Str(String::new()));
        assert_eq!(get("emp2"), InfoValue::Str(String::new()));
        assert_eq!(get("last"), InfoValue::Str("x".into()));
        // order of the file is kept
        assert_eq!(info[0].0, "i");
        assert_eq!(info.last().unwrap().0, "emp");
        // as in ASE, `key= next` gives key the value `next`: an empty value
        // can only be unquoted at the end of the line
        assert_eq!(
            info_of("a= b c=1"),
            vec![("a".to_string(), InfoValue::Str("b".into())), ("c".to_string(), InfoValue::Int(1))]
        );
        // an empty quoted value ends its pair (ASE would read a = "b=1")
        assert_eq!(
            info_of("a=\"\" b=1"),
            vec![("a".to_string(), InfoValue::Str(String::new())), ("b".to_string(), InfoValue::Int(1))]
        );
        // an empty quoted key followed by more pairs is still an error
        let (line, msg) = parse_err("1\n\"\" x=\nH 0 0 0\n");
        assert_eq!(line, 2);
        assert!(msg.contains("empty key"), "{msg}");
    }

    #[test]
    fn quotes_escapes_and_spacing() {
        let info =
            info_of(r#"a = 1 b= 2 c =3 esc="say \"hi\"" sq='x y' back=a\ b k\=ey=v mixed=ab"c d"e eq=x=y dup=1 dup=2"#);
        assert_eq!(
            info,
            vec![
                ("a".to_string(), InfoValue::Int(1)),
                ("b".to_string(), InfoValue::Int(2)),
                ("c".to_string(), InfoValue::Int(3)),
                ("esc".to_string(), InfoValue::Str("say \"hi\"".into())),
                ("sq".to_string(), InfoValue::Str("x y".into())),
                ("back".to_string(), InfoValue::Str("a b".into())),
                ("k=ey".to_string(), InfoValue::Str("v".into())),
                ("mixed".to_string(), InfoValue::Str("abc de".into())),
                ("eq".to_string(), InfoValue::Str("x=y".into())),
                // a repeated key keeps its first place and its last value
                ("dup".to_string(), InfoValue::Int(2)),
            ]
        );
    }

    #[test]
    fn json_values() {
        let info = info_of(
            r#"l="_JSON [1, 2]" lf="_JSON [1, 2.5]" lb="_JSON [true, false]" one="_JSON [7]" e="_JSON []" s="_JSON \"42\"" n="_JSON [NaN, Infinity]" d="_JSON {\"a\": [1, \"x\"]}" m="_JSON [[1, 2], [3, 4]]" nul="_JSON null""#,
        );
        let get = |k: &str| info.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(get("l"), InfoValue::IntArray(vec![1, 2]));
        assert_eq!(get("lf"), InfoValue::FloatArray(vec![1.0, 2.5]));
        assert_eq!(get("lb"), InfoValue::BoolArray(vec![true, false]));
        assert_eq!(get("one"), InfoValue::IntArray(vec![7]));
        assert_eq!(get("e"), InfoValue::FloatArray(vec![]));
        assert_eq!(get("s"), InfoValue::Str("42".into()));
        match get("n") {
            InfoValue::FloatArray(v) => assert!(v[0].is_nan() && v[1] == f64::INFINITY),
            other => panic!("{other:?}"),
        }
        assert_eq!(get("d"), InfoValue::Json(serde_json::json!({"a": [1, "x"]})));
        assert_eq!(get("m"), InfoValue::Json(serde_json::json!([[1, 2], [3, 4]])));
        assert_eq!(get("nul"), InfoValue::Json(serde_json::Value::Null));
        let (line, msg) = parse_err("1\nbad=\"_JSON {oops\"\nH 0 0 0\n");
        assert_eq!(line, 2);
        assert!(msg.contains("'bad' holds invalid _JSON"), "{msg}");
    }

    #[test]
    fn z_column_wins_over_species() {
        let f = one("2\nProperties=species:S:1:pos:R:3:Z:I:1\nH 0 0 0 8\nH 1 0 0 1\n");
        assert_eq!(f.system.types, vec![8, 1]);
        assert!(f.arrays.is_empty());
        let f = one("1\nProperties=Z:I:1:pos:R:3\n26 0 0 0\n");
        assert_eq!(f.system.types, vec![26]);
    }

    #[test]
    fn vec_cell_lines() {
        let text = "2\nsome title\nH 0 0 0\nH 0.7 0 0\nVEC1 3.0 0.0 0.0\nVEC2 0.0 4.0 0.0\n1\n\nHe 0 0 0\n";
        let frames = parse_xyz(text).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].system.pbc, [true, true, false]);
        assert_eq!(frames[0].system.cell, [[3.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0; 3]]);
        assert_eq!(frames[0].info, vec![("comment".to_string(), InfoValue::Str("some title".into()))]);
        assert_eq!(frames[1].system.types, vec![2]);
        let (line, msg) = parse_err("1\n\nH 0 0 0\nVEC2 1 0 0\n");
        assert_eq!(line, 4);
        assert!(msg.contains("expected the cell line VEC1"), "{msg}");
        let (line, msg) = parse_err("1\n\nH 0 0 0\nVEC1 1 0\n");
        assert_eq!(line, 4);
        assert!(msg.contains("VEC1 has 2 numbers"), "{msg}");
        let (line, msg) = parse_err("1\n\nH 0 0 0\nVEC1 1 0 0\nVEC2 0 1 0\nVEC3 0 0 1\nVEC4 1 1 1\n");
        assert_eq!(line, 7);
        assert!(msg.contains("more than 3 VEC"), "{msg}");
    }

    #[test]
    fn line_endings_blank_lines_and_empty_input() {
        assert_eq!(parse_xyz("\u{feff}1\n\nH 0 0 0\n").unwrap()[0].system.types, vec![1]);
        let f = parse_xyz("1\r\nenergy=2\r\nH 0 0 1\r\n").unwrap();
        assert_eq!(f[0].system.positions, vec![[0.0, 0.0, 1.0]]);
        assert_eq!(f[0].info, vec![("energy".to_string(), InfoValue::Int(2))]);
        assert!(parse_xyz("").unwrap().is_empty());
        assert!(parse_xyz("\n\n  \n").unwrap().is_empty());
        // trailing blank lines and a missing final newline are fine
        assert_eq!(parse_xyz("1\n\nH 0 0 0\n\n\n").unwrap().len(), 1);
        assert_eq!(parse_xyz("1\n\nH 0 0 0").unwrap().len(), 1);
        // zero atoms is a valid (empty) frame
        let f = parse_xyz("0\nenergy=0.0\n").unwrap();
        assert_eq!(f[0].system.types.len(), 0);
        // a blank line between frames would hide the rest of the file
        let (line, msg) = parse_err("1\n\nH 0 0 0\n\n1\n\nH 0 0 0\n");
        assert_eq!(line, 4);
        assert!(msg.contains("more content follows at line 5"), "{msg}");
    }

    #[test]
    fn malformed_headers() {
        let cases: &[(&str, usize, &str)] = &[
            ("abc\n\nH 0 0 0\n", 1, "expected the number of atoms (an integer), found 'abc'"),
            ("1.5\n\nH 0 0 0\n", 1, "found '1.5'"),
            ("-1\n\n", 1, "the number of atoms is negative (-1)"),
            ("2 atoms\n\nH 0 0 0\n", 1, "found '2 atoms'"),
            ("1\n\nH 0 0 0\nfoo\n", 4, "found 'foo'"),
            ("3\n", 2, "truncated frame: the input ends after the atom count 3"),
            (
                "3\ncomment\nH 0 0 0\n",
                4,
                "truncated frame: expected 3 atom lines after the comment line at line 2, found 1",
            ),
        ];
        for (text, line, needle) in cases {
            let (l, m) = parse_err(text);
            assert_eq!(l, *line, "{text:?}: {m}");
            assert!(m.contains(needle), "{text:?}: {m}");
        }
    }

    #[test]
    fn malformed_atom_lines() {
        let cases: &[(&str, usize, &str)] = &[
            ("1\n\nH 0 0\n", 3, "atom 1 has 3 columns but Properties 'species:S:1:pos:R:3' declares 4"),
            ("1\n\nH 0 0 0 5\n", 3, "atom 1 has 5 columns"),
            ("2\n\nH 0 0 0\n\n", 4, "atom 2 has 0 columns"),
            ("1\n\nH 0 zero 0\n", 3, "'zero' in column 3 ('pos' (component 2)) of atom 1 is not a real number"),
            ("1\n\nQq 0 0 0\n", 3, "unknown element symbol 'Qq' for atom 1"),
            ("2\n\nH 0 0 0\n6 1 0 0\n", 4, "unknown element symbol '6' for atom 2"),
            (
                "1\nProperties=species:S:1:pos:R:3:n:I:1\nH 0 0 0 1.5\n",
                3,
                "'1.5' in column 5 ('n') of atom 1 is not an integer",
            ),
            ("1\nProperties=species:S:1:pos:R:3:n:I:1\nH 0 0 0 3000000000\n", 3, "is not a 32-bit integer"),
            (
                "1\nProperties=species:S:1:pos:R:3:m:L:1\nH 0 0 0 yes\n",
                3,
                "'yes' in column 5 ('m') of atom 1 is not a logical",
            ),
            ("1\nProperties=species:S:1:pos:R:3:Z:I:1\nH 0 0 0 x\n", 3, "is not an integer"),
        ];
        for (text, line, needle) in cases {
            let (l, m) = parse_err(text);
            assert_eq!(l, *line, "{text:?}: {m}");
            assert!(m.contains(needle), "{text:?}: {m}");
        }
    }

    #[test]
    fn malformed_comment_lines() {
        let cases: &[(&str, &str)] = &[
            ("Lattice=\"1 0 0 0 1 0\"", "Lattice has 6 numbers (expected 9"),
            ("Lattice=\"a b c d e f g h i\"", "Lattice must be 9 numbers, got the text"),
            ("Lattice=T", "Lattice must be 9 numbers, got the logical T"),
            ("name=\"unterminated value", "unterminated quote: \" is never closed by \""),
            ("a={1 2", "unterminated quote: { is never closed by }"),
            ("a=1 b=2\\", "lone backslash"),
            ("=5", "'=' with no key before it"),
            ("\"\"=5", "empty key (with value '5')"),
            ("pbc=\"T T\"", "pbc must be one or three logicals"),
            ("pbc=maybe", "pbc must be one or three logicals such as \"T T F\", got the text 'maybe'"),
            ("Properties=species:S:1:pos:R", "has 5 ':'-separated fields, not a multiple of 3"),
            ("Properties=species:S:1:pos:X:3", "column 'pos' has type 'X' (expected R, I, S or L)"),
            ("Properties=species:S:1:pos:R:three", "column 'pos' has 'three' columns"),
            ("Properties=species:S:1:pos:R:0", "column 'pos' has '0' columns"),
            ("Properties=species:S:1:pos:R:3:pos:R:3", "names the column 'pos' twice"),
            ("Properties=species:S:1:pos:R:2", "column 'pos' must be pos:R:3, not pos:R:2"),
            ("Properties=species:I:1:pos:R:3", "column 'species' must be species:S:1"),
            ("Properties=pos:R:3:x:S:1", "has neither a species:S:1 nor a Z:I:1 column"),
            ("Properties=species:S:1:xyz:R:3", "has no pos:R:3 column"),
            ("Properties=7", "Properties must be name:type:columns text, got the integer 7"),
            ("Properties=:S:1:pos:R:3", "empty column name"),
        ];
        for (comment, needle) in cases {
            let (l, m) = parse_err(&format!("1\n{comment}\nH 0 0 0\n"));
            assert_eq!(l, 2, "{comment}: {m}");
            assert!(m.contains(needle), "{comment}: {m}");
        }
    }

    #[test]
    fn invalid_structures_are_parse_errors_at_the_comment_line() {
        let (l, m) = parse_err("1\nenergy=1\nH nan 0 0\n");
        assert_eq!(l, 2);
        assert!(m.contains("invalid structure: positions[0][0] is NaN"), "{m}");
        let (l, m) = parse_err("1\n\nH 0 0 0\n1\nLattice=\"1 0 0 2 0 0 0 0 1\"\nH 0 0 0\n");
        assert_eq!(l, 5);
        assert!(m.contains("singular"), "{m}");
        let (l, m) = parse_err("1\npbc=T\nH 0 0 0\n");
        assert_eq!(l, 2);
        assert!(m.contains("cell vector a is zero"), "{m}");
    }

    #[test]
    fn invalid_utf8_is_a_parse_error() {
        let bytes: &[u8] = b"1\ncomment \xff\nH 0 0 0\n";
        let err = XyzReader::new(bytes).next().unwrap().unwrap_err();
        assert_eq!(err, Error::Parse { line: 2, message: "line is not valid UTF-8 (byte 9)".to_string() });
    }

    #[test]
    fn reader_streams_and_stops_after_an_error() {
        let text = "1\n\nH 0 0 0\n1\n\nHe 0 0 0\nbad\n1\n\nLi 0 0 0\n";
        let mut reader = XyzReader::new(text.as_bytes());
        assert_eq!(reader.next().unwrap().unwrap().system.types, vec![1]);
        assert_eq!(reader.next().unwrap().unwrap().system.types, vec![2]);
        let err = reader.next().unwrap().unwrap_err();
        assert!(matches!(err, Error::Parse { line: 7, .. }), "{err:?}");
        assert!(reader.next().is_none());
        // parse_xyz never returns a partial result
        assert!(parse_xyz(text).is_err());
    }

    fn sample_frame() -> Frame {
        let system = System::new(
            vec![14, 8, 0],
            vec![[0.1, -0.0, 1e-300], [1.0 / 3.0, 2.5e17, -7.25], [f64::MIN_POSITIVE, 0.0, 123456.789]],
            [[4.1, 0.0, 0.0], [0.3, 5.2, 0.0], [0.0, 0.0, 0.0]],
            [true, true, false],
        )
        .unwrap();
        let info = vec![
            ("energy".to_string(), InfoValue::Float(-12.345678901234567)),
            ("whole".to_string(), InfoValue::Float(1e16)),
            ("step".to_string(), InfoValue::Int(-42)),
            ("ok".to_string(), InfoValue::Bool(false)),
            ("name".to_string(), InfoValue::Str("bulk \"Si\" {x} [y] a\\b, c=d".to_string())),
            ("numeric_text".to_string(), InfoValue::Str("42".to_string())),
            ("bool_text".to_string(), InfoValue::Str("T".to_string())),
            ("json_text".to_string(), InfoValue::Str("_JSON 5".to_string())),
            ("empty".to_string(), InfoValue::Str(String::new())),
            ("lines".to_string(), InfoValue::Str("two\nlines\ttab".to_string())),
            ("ints".to_string(), InfoValue::IntArray(vec![1, -2, 3])),
            ("one_int".to_string(), InfoValue::IntArray(vec![5])),
            ("floats".to_string(), InfoValue::FloatArray(vec![0.1, 2.0, f64::NAN, f64::NEG_INFINITY])),
            ("one_float".to_string(), InfoValue::FloatArray(vec![f64::INFINITY])),
            ("no_floats".to_string(), InfoValue::FloatArray(vec![])),
            ("bools".to_string(), InfoValue::BoolArray(vec![true, false])),
            ("one_bool".to_string(), InfoValue::BoolArray(vec![true])),
            ("stress".to_string(), InfoValue::FloatArray(vec![1.0, 0.5, 0.25, 0.5, 2.0, 0.125, 0.25, 0.125, 3.0])),
            ("nested".to_string(), InfoValue::Json(serde_json::json!({"a": [[1, 2], ["x", null]], "b": "q\"uote"}))),
            ("key with space".to_string(), InfoValue::Int(1)),
            ("uid".to_string(), InfoValue::Str("123".to_string())),
        ];
        let arrays = vec![
            (
                "forces".to_string(),
                Column::Float { data: vec![0.1, 0.2, 0.3, -1e-9, 5e20, 0.0, 1.0, 2.0, 3.0], ncols: 3 },
            ),
            ("tags".to_string(), Column::Int { data: vec![0, -1, i32::MAX], ncols: 1 }),
            ("pair".to_string(), Column::Int { data: vec![1, 2, 3, 4, 5, 6], ncols: 2 }),
            ("label".to_string(), Column::Str { data: vec!["a".into(), "long_label".into(), "é".into()], ncols: 1 }),
            ("mask".to_string(), Column::Bool { data: vec![true, false, true], ncols: 1 }),
        ];
        Frame { system, info, arrays }
    }

    /// Equality that treats NaN as equal to itself and compares floats bitwise.
    fn same_bits(a: &Frame, b: &Frame) -> bool {
        format!("{a:?}") == format!("{b:?}")
            && a.system
                .positions
                .iter()
                .flatten()
                .zip(b.system.positions.iter().flatten())
                .all(|(x, y)| x.to_bits() == y.to_bits())
    }

    #[test]
    fn round_trips_exactly() {
        let frames =
            vec![sample_frame(), Frame::new(System::new(vec![1], vec![[0.0; 3]], [[0.0; 3]; 3], [false; 3]).unwrap())];
        let text = format_xyz(&frames).unwrap();
        let back = parse_xyz(&text).unwrap();
        assert_eq!(back.len(), 2);
        // empty float arrays read back as empty float arrays; everything else
        // is identical, bit for bit
        for (a, b) in frames.iter().zip(&back) {
            assert!(same_bits(a, b), "\n{a:?}\n{b:?}\n{text}");
        }
        // and formatting again gives the same text
        assert_eq!(format_xyz(&back).unwrap(), text);
        assert!(text.starts_with("3\nLattice=\"4.1 0.0 0.0 0.3 5.2 0.0 0.0 0.0 0.0\" Properties=species:S:1:pos:R:3:forces:R:3:tags:I:1:pair:I:2:label:S:1:mask:L:1 "), "{text}");
        assert!(text.contains(" pbc=\"T T F\"\n"), "{text}");
        // the second frame has no cell, so no Lattice
        assert!(text.contains("1\nProperties=species:S:1:pos:R:3 pbc=\"F F F\"\nH 0.0 0.0 0.0\n"), "{text}");
    }

    #[test]
    fn formatted_values_read_back_with_their_types() {
        let text = format_xyz(&[sample_frame()]).unwrap();
        let comment = text.lines().nth(1).unwrap();
        for piece in [
            "energy=-12.345678901234567",
            "whole=1e16",
            "step=-42",
            "ok=F",
            r#"name="bulk \"Si\" {x} [y] a\\b, c=d""#,
            r#"numeric_text="_JSON \"42\"""#,
            r#"empty="_JSON \"\"""#,
            r#"ints="1 -2 3""#,
            r#"one_int="_JSON [5]""#,
            r#"floats="0.1 2.0 nan -inf""#,
            r#"one_float="_JSON [Infinity]""#,
            r#"bools="T F""#,
            r#""key with space"=1"#,
            "uid=123",
        ] {
            assert!(comment.contains(piece), "{piece} not in {comment}");
        }
    }

    #[test]
    fn format_rejects_what_cannot_be_written() {
        let base = sample_frame();
        let expect = |f: Frame, needle: &str| match format_xyz(&[f]) {
            Err(Error::InvalidParameter(m)) => assert!(m.starts_with("frame 0: ") && m.contains(needle), "{m}"),
            other => panic!("expected an error containing {needle:?}, got {other:?}"),
        };
        let mut f = base.clone();
        f.system.types[1] = 200;
        expect(f, "types[1] = 200 is not an atomic number");
        let mut f = base.clone();
        f.system.positions.pop();
        expect(f, "positions has 2 atoms but types has 3");
        let mut f = base.clone();
        f.info.push(("Lattice".into(), InfoValue::Int(1)));
        expect(f, "info key 'Lattice' is reserved");
        let mut f = base.clone();
        f.info.push(("energy".into(), InfoValue::Int(1)));
        expect(f, "info key 'energy' appears twice");
        let mut f = base.clone();
        f.info.push((String::new(), InfoValue::Int(1)));
        expect(f, "empty key");
        let mut f = base.clone();
        f.info.push(("a\nb".into(), InfoValue::Int(1)));
        expect(f, "line break character");
        let mut f = base.clone();
        f.info.retain(|(k, _)| k != "uid");
        f.info.push(("UID".into(), InfoValue::Int(1)));
        expect(f, "info 'UID' must be text");
        let mut f = base.clone();
        f.arrays.push(("pos".into(), Column::Float { data: vec![0.0; 9], ncols: 3 }));
        expect(f, "arrays name 'pos' is reserved");
        let mut f = base.clone();
        f.arrays.push(("a:b".into(), Column::Float { data: vec![0.0; 3], ncols: 1 }));
        expect(f, "cannot be written in Properties");
        let mut f = base.clone();
        f.arrays.push(("a\u{2028}b".into(), Column::Float { data: vec![0.0; 3], ncols: 1 }));
        expect(f, "cannot be written in Properties");
        let mut f = base.clone();
        f.arrays.push(("short".into(), Column::Float { data: vec![0.0; 5], ncols: 2 }));
        expect(f, "arrays 'short' has 5 values but the frame has 3 atoms × 2 columns (expected 6)");
        let mut f = base.clone();
        f.arrays.push(("zero".into(), Column::Int { data: vec![], ncols: 0 }));
        expect(f, "ncols = 0");
        let mut f = base.clone();
        f.arrays.push(("words".into(), Column::Str { data: vec!["a".into(), "b c".into(), "d".into()], ncols: 1 }));
        expect(f, "arrays 'words' value 1 (\"b c\") is empty or contains whitespace");
        let mut f = base;
        f.arrays.push(("tags".into(), Column::Int { data: vec![0; 3], ncols: 1 }));
        expect(f, "arrays name 'tags' appears twice");
    }

    #[test]
    fn files_round_trip_and_stream() {
        let dir = std::env::temp_dir().join(format!("acdc-xyz-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("frames.extxyz");
        let frames = vec![sample_frame(), sample_frame()];
        write_xyz(&path, &frames).unwrap();
        let back = read_xyz(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert!(same_bits(&frames[0], &back[1]));
        let mut streamed = 0;
        for frame in XyzReader::open(&path).unwrap() {
            assert_eq!(frame.unwrap().system.types, vec![14, 8, 0]);
            streamed += 1;
        }
        assert_eq!(streamed, 2);
        let mut buf = Vec::new();
        write_frame(&mut buf, &frames[0]).unwrap();
        assert_eq!(String::from_utf8(buf).unwrap(), format_xyz(&frames[..1]).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        match read_xyz(dir.join("missing.xyz")) {
            Err(Error::Io(m)) => assert!(m.contains("cannot open") && m.contains("missing.xyz"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn python_number_syntax() {
        assert_eq!(python_int("007"), Some(7));
        assert_eq!(python_int("+5"), Some(5));
        assert_eq!(python_int("1_000"), Some(1000));
        assert_eq!(python_int("1__0"), None);
        assert_eq!(python_int("_1"), None);
        assert_eq!(python_int("1e5"), None);
        assert_eq!(python_int("-"), None);
        assert_eq!(python_float("1e5"), Some(1e5));
        assert_eq!(python_float(".5"), Some(0.5));
        assert_eq!(python_float("5."), Some(5.0));
        assert_eq!(python_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(python_float("NaN").unwrap().is_nan());
        assert_eq!(python_float("1_0.5"), Some(10.5));
        assert_eq!(python_float("1.0d0"), None);
        assert_eq!(python_float("0x10"), None);
        assert_eq!(python_float("infinite"), None);
    }
}
