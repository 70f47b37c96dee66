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

/// Element symbols indexed by atomic number; index 0 is `X`, ASE's dummy atom.
pub const ELEMENT_SYMBOLS: [&str; 119] = [
    "X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar", "K", "Ca",
    "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y",
    "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce",
    "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir",
    "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm",
    "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc",
    "Lv", "Ts", "Og",
];

/// Atomic number of an element symbol, read as ASE reads the `species`
/// column: the first letter is upper-cased and the rest lower-cased, so `si`,
/// `SI` and `Si` are all silicon. `X` is 0.
pub fn atomic_number(symbol: &str) -> Option<i32> {
    let mut chars = symbol.chars();
    let first = chars.next()?;
    let canonical: String = first.to_uppercase().chain(chars.flat_map(char::to_lowercase)).collect();
    ELEMENT_SYMBOLS.iter().position(|&s| s == canonical).map(|z| z as i32)
}

/// Element symbol of an atomic number in 0..=118 (0 is `X`).
pub fn element_symbol(number: i32) -> Option<&'static str> {
    usize::try_from(number).ok().and_then(|z| ELEMENT_SYMBOLS.get(z).copied())
}

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

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// Parses every frame of an extended XYZ text.
pub fn parse_xyz(text: &str) -> Result<Vec<Frame>> {
    XyzReader::new(text.as_bytes()).collect()
}

/// Reads every frame of an extended XYZ file.
pub fn read_xyz<P: AsRef<Path>>(path: P) -> Result<Vec<Frame>> {
    XyzReader::open(path)?.collect()
}

/// Streams the frames of an extended XYZ input one at a time; memory is
/// bounded by the largest frame, not by the file.
///
/// The iterator stops after the first error (it yields that error once, then
/// `None`), so a malformed file never looks like a shorter valid one.
pub struct XyzReader<R: BufRead> {
    input: R,
    /// Number of lines read so far (the 1-based number of the last line).
    line: usize,
    /// A line read ahead to look for `VEC` lines after a frame's atoms.
    peeked: Option<(usize, String)>,
    /// Set after the end of input or an error.
    done: bool,
    /// Reused byte buffer for one line.
    buf: Vec<u8>,
}

impl XyzReader<BufReader<File>> {
    /// Opens a file for streaming.
    pub fn open<P: AsRef<Path>>(path: P) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::Io(format!("cannot open '{}': {e}", path.display())))?;
        Ok(XyzReader::new(BufReader::new(file)))
    }
}

impl<R: BufRead> XyzReader<R> {
    /// Streams frames from any buffered reader.
    pub fn new(input: R) -> Self {
        XyzReader { input, line: 0, peeked: None, done: false, buf: Vec::new() }
    }

    /// The next line (without its `\n` or `\r\n`) and its 1-based number.
    fn next_line(&mut self) -> Result<Option<(usize, String)>> {
        if let Some(p) = self.peeked.take() {
            return Ok(Some(p));
        }
        self.buf.clear();
        // `read_until` with a limit: a file without line breaks must not be
        // read whole into one line
        let mut n = 0;
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io(format!("reading line {}: {e}", self.line + 1))),
            };
            if chunk.is_empty() {
                break;
            }
            let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if n + take > MAX_LINE_BYTES + 2 {
                self.line += 1;
                return Err(parse_error(self.line, format!("line is longer than {MAX_LINE_BYTES} bytes")));
            }
            self.buf.extend_from_slice(&chunk[..take]);
            self.input.consume(take);
            n += take;
            if done {
                break;
            }
        }
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        match std::str::from_utf8(&self.buf) {
            // A byte-order mark (some Windows editors add one) is not content.
            Ok(s) if self.line == 1 => Ok(Some((self.line, s.strip_prefix('\u{feff}').unwrap_or(s).to_string()))),
            Ok(s) => Ok(Some((self.line, s.to_string()))),
            Err(e) => Err(parse_error(self.line, format!("line is not valid UTF-8 (byte {})", e.valid_up_to() + 1))),
        }
    }

    /// Reads one frame; `Ok(None)` at the end of the input.
    fn read_frame(&mut self) -> Result<Option<Frame>> {
        let (header_line, header) = match self.next_line()? {
            None => return Ok(None),
            Some(l) => l,
        };
        if header.trim().is_empty() {
            // Blank lines may end a file; anything after them would be
            // silently dropped by ASE, so it is an error here.
            loop {
                match self.next_line()? {
                    None => return Ok(None),
                    Some((_, t)) if t.trim().is_empty() => continue,
                    Some((l, _)) => {
                        return Err(parse_error(
                            header_line,
                            format!("blank line where the number of atoms of a frame was expected (more content follows at line {l})"),
                        ))
                    }
                }
            }
        }
        let natoms = parse_atom_count(header.trim()).map_err(|m| parse_error(header_line, m))?;

        let (comment_line, comment) = match self.next_line()? {
            None => {
                return Err(parse_error(
                    header_line + 1,
                    format!("truncated frame: the input ends after the atom count {natoms} (expected a comment line)"),
                ))
            }
            Some(l) => l,
        };

        // Atom lines are kept as text until the comment line is interpreted,
        // because `VEC` lines after the atoms change how it is read.
        let mut atom_lines = Vec::with_capacity(natoms.min(1 << 16));
        for k in 0..natoms {
            match self.next_line()? {
                Some((_, l)) => atom_lines.push(l),
                None => {
                    return Err(parse_error(
                        comment_line + 1 + k,
                        format!(
                            "truncated frame: expected {natoms} atom lines after the comment line at line {comment_line}, found {k}"
                        ),
                    ))
                }
            }
        }

        let mut vec_lines = Vec::new();
        while let Some((l, text)) = self.next_line()? {
            if text.trim_start().starts_with("VEC") {
                if vec_lines.len() == 3 {
                    return Err(parse_error(l, "more than 3 VEC cell lines after a frame".to_string()));
                }
                vec_lines.push((l, text));
            } else {
                self.peeked = Some((l, text));
                break;
            }
        }

        build_frame(comment_line, &comment, &atom_lines, &vec_lines).map(Some)
    }
}

impl<R: BufRead> Iterator for XyzReader<R> {
    type Item = Result<Frame>;

    fn next(&mut self) -> Option<Result<Frame>> {
        if self.done {
            return None;
        }
        match self.read_frame() {
            Ok(Some(frame)) => Some(Ok(frame)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn parse_error(line: usize, message: String) -> Error {
    Error::Parse { line, message }
}

/// The atom count line: one non-negative integer (Python `int()` syntax).
fn parse_atom_count(text: &str) -> std::result::Result<usize, String> {
    match python_int(text) {
        Some(n) if n < 0 => Err(format!("the number of atoms is negative ({n})")),
        Some(n) => usize::try_from(n).map_err(|_| format!("the number of atoms {n} is too large")),
        None if text.is_empty() => Err("empty line where the number of atoms was expected".to_string()),
        None => Err(format!("expected the number of atoms (an integer), found '{}'", clip(text))),
    }
}

/// Whitespace as Python's `str.split()` sees it (Unicode whitespace plus the
/// ASCII separators \x1c–\x1f).
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python `int()` syntax: optional sign, decimal digits, single underscores
/// between digits. `None` when it is not an integer or does not fit in i64
/// (NumPy then falls back to float, and so do we).
fn python_int(text: &str) -> Option<i64> {
    let digits = strip_underscores(text)?;
    let body = digits.strip_prefix(['+', '-']).unwrap_or(&digits);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok()
}

/// Python `float()` syntax: decimal or exponent notation, `inf`, `infinity`
/// and `nan` in any case, with an optional sign and single underscores
/// between digits.
fn python_float(text: &str) -> Option<f64> {
    let digits = strip_underscores(text)?;
    let body = digits.strip_prefix(['+', '-']).unwrap_or(&digits);
    let lower = body.to_ascii_lowercase();
    let special = matches!(lower.as_str(), "inf" | "infinity" | "nan");
    // Within this alphabet Rust's and Python's float grammars agree; outside
    // it (hex, Fortran `1.0d0`) both reject, so check it explicitly rather
    // than rely on Rust's parser rejecting exactly what Python rejects.
    if !special && !body.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
        return None;
    }
    digits.parse::<f64>().ok()
}

/// Removes underscores that sit between two ASCII digits (PEP 515); `None`
/// if any underscore is elsewhere.
fn strip_underscores(text: &str) -> Option<String> {
    if !text.contains('_') {
        return Some(text.to_string());
    }
    // Numbers are ASCII; refusing anything else also makes the byte-wise
    // copy below exact.
    if !text.is_ascii() {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    for (k, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            let before = k > 0 && bytes[k - 1].is_ascii_digit();
            let after = k + 1 < bytes.len() && bytes[k + 1].is_ascii_digit();
            if !(before && after) {
                return None;
            }
        } else {
            out.push(b as char);
        }
    }
    Some(out)
}

/// One `key[=value]` item of a comment line after quotes and escapes are
/// resolved; `value` is `None` for a bare key.
#[derive(Debug, PartialEq)]
struct RawItem {
    key: String,
    value: Option<String>,
}

/// Splits a comment line into items exactly as ASE's `key_val_str_to_dict`
/// does, except that an unterminated quote or a trailing lone backslash is an
/// error and a quoted empty value ends its item.
fn split_comment(line: &str) -> std::result::Result<Vec<RawItem>, String> {
    let mut pairs: Vec<Vec<String>> = vec![vec![String::new()]];
    // Whether the current part (key or value) has begun: a character or an
    // opening quote. ASE only looks at characters, which makes `a="" b=1`
    // read as a = "b=1"; tracking quotes too fixes that.
    let mut started = false;
    let mut closing: Option<char> = None;
    let mut opening = ' ';
    let mut escaped = false;
    let push = |pairs: &mut Vec<Vec<String>>, c: char| {
        // `pairs` always holds a pair with a part when this is called.
        if let Some(part) = pairs.last_mut().and_then(|p| p.last_mut()) {
            part.push(c);
        }
    };
    for c in line.trim_matches(is_py_space).chars() {
        if escaped {
            push(&mut pairs, c);
            started = true;
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if let Some(close) = closing {
            if c == close {
                closing = None;
            } else {
                push(&mut pairs, c);
            }
        } else if let Some(close) = closing_delimiter(c) {
            closing = Some(close);
            opening = c;
            started = true;
        } else if is_py_space(c) {
            if started {
                pairs.push(vec![String::new()]);
                started = false;
            }
        } else if c == '=' {
            // `key = value`: whitespace before `=` has already opened a new,
            // empty pair; drop it and continue the previous one, as ASE does.
            if !started && pairs.last().is_some_and(|p| p.len() == 1 && p[0].is_empty()) {
                pairs.pop();
            }
            match pairs.last_mut() {
                Some(p) => p.push(String::new()),
                None => return Err("'=' with no key before it".to_string()),
            }
            started = false;
        } else {
            push(&mut pairs, c);
            started = true;
        }
    }
    if escaped {
        return Err("the line ends with a lone backslash '\\' (nothing to escape)".to_string());
    }
    if let Some(close) = closing {
        return Err(format!("unterminated quote: {opening} is never closed by {close}"));
    }
    // An empty line leaves one pair that never began; drop it. (Whitespace
    // only opens a new pair after a begun part, so no other pair can be
    // empty without having begun with a quote.)
    if !started && pairs.last().is_some_and(|p| p.len() == 1 && p[0].is_empty()) {
        pairs.pop();
    }
    let mut items = Vec::with_capacity(pairs.len());
    for mut pair in pairs {
        let key = pair.remove(0);
        if key.is_empty() {
            return Err(format!(
                "empty key{}",
                if pair.is_empty() { String::new() } else { format!(" (with value '{}')", clip(&pair.join("="))) }
            ));
        }
        let value = if pair.is_empty() { None } else { Some(pair.join("=")) };
        items.push(RawItem { key, value });
    }
    Ok(items)
}

/// The closing delimiter of an opening quote or bracket.
fn closing_delimiter(c: char) -> Option<char> {
    match c {
        '"' => Some('"'),
        '\'' => Some('\''),
        '{' => Some('}'),
        '[' => Some(']'),
        _ => None,
    }
}

/// Logical words as ASE's comment-line reader accepts them.
fn info_bool(word: &str) -> Option<bool> {
    match word {
        "T" | "true" | "True" | "TRUE" => Some(true),
        "F" | "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Types a comment-line value the way ASE does (see the module docs).
fn interpret_value(key: &str, value: &str) -> std::result::Result<InfoValue, String> {
    if key.eq_ignore_ascii_case("uid") {
        if value.contains(is_line_break) {
            return Err(format!("'{}' contains a line break character, which cannot be written back", clip(key)));
        }
        return Ok(InfoValue::Str(value.to_string()));
    }
    let words: Vec<&str> = value.split(|c: char| is_py_space(c) || c == ',').filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return Ok(InfoValue::Str(value.to_string()));
    }
    if let Some(ints) = words.iter().map(|w| python_int(w)).collect::<Option<Vec<i64>>>() {
        return Ok(if ints.len() == 1 { InfoValue::Int(ints[0]) } else { InfoValue::IntArray(ints) });
    }
    if let Some(floats) = words.iter().map(|w| python_float(w)).collect::<Option<Vec<f64>>>() {
        return Ok(if floats.len() == 1 { InfoValue::Float(floats[0]) } else { InfoValue::FloatArray(floats) });
    }
    if let Some(bools) = words.iter().map(|w| info_bool(w)).collect::<Option<Vec<bool>>>() {
        return Ok(if bools.len() == 1 { InfoValue::Bool(bools[0]) } else { InfoValue::BoolArray(bools) });
    }
    if let Some(json) = value.strip_prefix("_JSON ") {
        return interpret_json(json).map_err(|e| format!("'{}' holds invalid _JSON: {e}", clip(key)));
    }
    Ok(InfoValue::Str(value.to_string()))
}

/// A JSON scalar that NumPy would put in a numeric or logical array.
#[derive(Clone, Copy)]
enum JsonScalar {
    Bool(bool),
    Int(i64),
    Float(f64),
}

/// One JSON number or logical, also accepting the `NaN`, `Infinity` and
/// `-Infinity` that Python's `json` writes and reads.
fn json_scalar(token: &str) -> Option<JsonScalar> {
    match token {
        "true" => return Some(JsonScalar::Bool(true)),
        "false" => return Some(JsonScalar::Bool(false)),
        "NaN" => return Some(JsonScalar::Float(f64::NAN)),
        "Infinity" => return Some(JsonScalar::Float(f64::INFINITY)),
        "-Infinity" => return Some(JsonScalar::Float(f64::NEG_INFINITY)),
        _ => {}
    }
    // JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    let b = token.as_bytes();
    let mut k = 0;
    let digits = |k: &mut usize| {
        let start = *k;
        while *k < b.len() && b[*k].is_ascii_digit() {
            *k += 1;
        }
        *k - start
    };
    if k < b.len() && b[k] == b'-' {
        k += 1;
    }
    let int_start = k;
    let n = digits(&mut k);
    if n == 0 || (n > 1 && b[int_start] == b'0') {
        return None;
    }
    let mut is_float = false;
    if k < b.len() && b[k] == b'.' {
        k += 1;
        if digits(&mut k) == 0 {
            return None;
        }
        is_float = true;
    }
    if k < b.len() && (b[k] == b'e' || b[k] == b'E') {
        k += 1;
        if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
            k += 1;
        }
        if digits(&mut k) == 0 {
            return None;
        }
        is_float = true;
    }
    if k != b.len() {
        return None;
    }
    if !is_float {
        if let Ok(i) = token.parse::<i64>() {
            return Some(JsonScalar::Int(i));
        }
    }
    token.parse::<f64>().ok().map(JsonScalar::Float)
}

/// A scalar or a flat list of JSON numbers/logicals typed as `np.array`
/// types it: any float makes a float array, else any integer an integer
/// array (logicals count as 0/1), else a logical array; `[]` is an empty
/// float array.
fn json_numeric(text: &str) -> Option<InfoValue> {
    let t = text.trim();
    if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let inner = inner.trim();
        if inner.is_empty() {
            return Some(InfoValue::FloatArray(Vec::new()));
        }
        let scalars = inner.split(',').map(|tok| json_scalar(tok.trim())).collect::<Option<Vec<_>>>()?;
        let any_float = scalars.iter().any(|s| matches!(s, JsonScalar::Float(_)));
        let any_int = scalars.iter().any(|s| matches!(s, JsonScalar::Int(_)));
        let as_f64 = |s: &JsonScalar| match *s {
            JsonScalar::Bool(b) => f64::from(u8::from(b)),
            JsonScalar::Int(i) => i as f64,
            JsonScalar::Float(x) => x,
        };
        let as_i64 = |s: &JsonScalar| match *s {
            JsonScalar::Bool(b) => i64::from(b),
            JsonScalar::Int(i) => i,
            JsonScalar::Float(x) => x as i64,
        };
        Some(if any_float {
            InfoValue::FloatArray(scalars.iter().map(as_f64).collect())
        } else if any_int {
            InfoValue::IntArray(scalars.iter().map(as_i64).collect())
        } else {
            InfoValue::BoolArray(scalars.iter().map(|s| matches!(s, JsonScalar::Bool(true))).collect())
        })
    } else {
        json_scalar(t).map(|s| match s {
            JsonScalar::Bool(b) => InfoValue::Bool(b),
            JsonScalar::Int(i) => InfoValue::Int(i),
            JsonScalar::Float(x) => InfoValue::Float(x),
        })
    }
}

/// Decodes the text after `_JSON `, typing it as ASE does.
fn interpret_json(text: &str) -> std::result::Result<InfoValue, String> {
    if let Some(v) = json_numeric(text) {
        return Ok(v);
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok(match value {
        serde_json::Value::String(s) => InfoValue::Str(s),
        other => InfoValue::Json(other),
    })
}

/// A short description of a value for error messages.
fn describe(value: &InfoValue) -> String {
    match value {
        InfoValue::Int(i) => format!("the integer {i}"),
        InfoValue::Float(x) => format!("the number {x:?}"),
        InfoValue::Bool(b) => format!("the logical {}", if *b { "T" } else { "F" }),
        InfoValue::Str(s) => format!("the text '{}'", clip(s)),
        InfoValue::IntArray(v) => format!("{} integers {}", v.len(), clip(&format!("{v:?}"))),
        InfoValue::FloatArray(v) => format!("{} numbers {}", v.len(), clip(&format!("{v:?}"))),
        InfoValue::BoolArray(v) => format!("{} logicals {}", v.len(), clip(&format!("{v:?}"))),
        InfoValue::Json(v) => format!("the JSON value {}", clip(&v.to_string())),
    }
}

/// Reads the comment line into ordered `(key, value)` pairs.
fn parse_comment(line: &str) -> std::result::Result<Vec<(String, InfoValue)>, String> {
    let items = match split_comment(line) {
        Ok(items) => items,
        // Free text without any `key=value` (a plain XYZ title such as
        // "it's water") is kept whole rather than rejected.
        Err(_) if !line.contains('=') => {
            return Ok(vec![("comment".to_string(), InfoValue::Str(line.trim().to_string()))])
        }
        Err(e) => return Err(format!("comment line: {e}")),
    };
    if items.len() > MAX_INFO_KEYS {
        return Err(format!("comment line has {} key=value pairs (at most {MAX_INFO_KEYS} are supported)", items.len()));
    }
    let mut info: Vec<(String, InfoValue)> = Vec::with_capacity(items.len());
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::with_capacity(items.len());
    for RawItem { key, value } in items {
        if key.contains(is_line_break) {
            return Err(format!("key '{}' contains a line break character, which cannot be written back", clip(&key)));
        }
        let value = match value {
            None => InfoValue::Bool(true),
            Some(v) => interpret_value(&key, &v)?,
        };
        match index.get(&key) {
            Some(&slot) => info[slot].1 = value,
            None => {
                index.insert(key.clone(), info.len());
                info.push((key, value));
            }
        }
    }
    Ok(info)
}

/// Characters that Python's `str.splitlines()` (and so a reader of the file
/// as text) treats as the end of a line: they cannot appear inside a key or a
/// plain value of a written file.
fn is_line_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Removes and returns `key` from the info list.
fn take_info(info: &mut Vec<(String, InfoValue)>, key: &str) -> Option<InfoValue> {
    info.iter().position(|(k, _)| k == key).map(|p| info.remove(p).1)
}

/// Column type letters of `Properties`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Real,
    Int,
    Str,
    Logical,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Real => 'R',
            Kind::Int => 'I',
            Kind::Str => 'S',
            Kind::Logical => 'L',
        }
    }
}

/// One `name:type:ncols` entry of `Properties`.
#[derive(Debug, Clone, PartialEq)]
struct Property {
    name: String,
    kind: Kind,
    ncols: usize,
}

/// Parses `Properties=name:type:ncols:…`.
fn parse_properties(full: &str) -> std::result::Result<Vec<Property>, String> {
    let text = clip(full);
    let fields: Vec<&str> = full.split(':').collect();
    if !fields.len().is_multiple_of(3) {
        return Err(format!(
            "Properties '{text}' has {} ':'-separated fields, not a multiple of 3 (name:type:columns)",
            fields.len()
        ));
    }
    let mut props: Vec<Property> = Vec::with_capacity(fields.len() / 3);
    let mut seen = std::collections::HashSet::with_capacity(fields.len() / 3);
    let mut total = 0usize;
    for f in fields.chunks_exact(3) {
        let (full_name, kind, ncols) = (f[0], f[1], f[2]);
        let name = &*clip(full_name);
        if name.is_empty() {
            return Err(format!("Properties '{text}' has an empty column name"));
        }
        if full_name.contains(is_line_break) {
            return Err(format!("Properties '{text}': a column name contains a line break character"));
        }
        let kind = match kind {
            "R" => Kind::Real,
            "I" => Kind::Int,
            "S" => Kind::Str,
            "L" => Kind::Logical,
            other => {
                let other = clip(other);
                return Err(format!("Properties '{text}': column '{name}' has type '{other}' (expected R, I, S or L)"));
            }
        };
        let ncols = match python_int(ncols) {
            Some(n) if n >= 1 && n as u64 <= MAX_COLUMNS as u64 => n as usize,
            Some(n) if n >= 1 => {
                return Err(format!(
                    "Properties '{text}': column '{name}' has {n} columns (at most {MAX_COLUMNS} are supported)"
                ))
            }
            _ => {
                let ncols = clip(ncols);
                return Err(format!(
                    "Properties '{text}': column '{name}' has '{ncols}' columns (expected a positive integer)"
                ));
            }
        };
        total += ncols;
        if total > MAX_COLUMNS {
            return Err(format!("Properties '{text}' declares more than {MAX_COLUMNS} values per atom"));
        }
        if !seen.insert(full_name) {
            return Err(format!("Properties '{text}' names the column '{name}' twice"));
        }
        props.push(Property { name: full_name.to_string(), kind, ncols });
    }
    Ok(props)
}

/// Values of one column while the atom lines are read.
enum ColumnData {
    Real(Vec<f64>),
    Int(Vec<i32>),
    Str(Vec<String>),
    Logical(Vec<bool>),
}

/// Logical words as ASE's per-atom reader accepts them.
fn column_bool(word: &str) -> Option<bool> {
    match word {
        "T" | "True" => Some(true),
        "F" | "False" => Some(false),
        _ => None,
    }
}

/// Turns the text of one frame into a [`Frame`]. `comment_line` is the
/// 1-based line number of the comment; atom `k` is on `comment_line + 1 + k`.
fn build_frame(
    comment_line: usize,
    comment: &str,
    atom_lines: &[String],
    vec_lines: &[(usize, String)],
) -> Result<Frame> {
    let at = |line: usize| move |m: String| parse_error(line, m);
    let natoms = atom_lines.len();

    let (info, props, cell, pbc) = if vec_lines.is_empty() {
        let mut info = parse_comment(comment).map_err(at(comment_line))?;
        let lattice = take_info(&mut info, "Lattice");
        let pbc_value = take_info(&mut info, "pbc");
        let props_value = take_info(&mut info, "Properties");
        let cell = match &lattice {
            None => [[0.0; 3]; 3],
            Some(v) => lattice_cell(v).map_err(at(comment_line))?,
        };
        let pbc = match &pbc_value {
            Some(v) => parse_pbc(v).map_err(at(comment_line))?,
            None => [lattice.is_some(); 3],
        };
        let props = match &props_value {
            None => default_properties(),
            Some(InfoValue::Str(s)) => parse_properties(s).map_err(at(comment_line))?,
            Some(other) => {
                return Err(parse_error(
                    comment_line,
                    format!("Properties must be name:type:columns text, got {}", describe(other)),
                ))
            }
        };
        (info, props, cell, pbc)
    } else {
        // ASE's vec_cell layout: the comment is free text, the columns are
        // the default ones, and VECn lines give the periodic cell vectors.
        let trimmed = comment.trim_matches(is_py_space);
        let info = vec![("comment".to_string(), InfoValue::Str(trimmed.to_string()))];
        let mut cell = [[0.0; 3]; 3];
        let mut pbc = [false; 3];
        for (k, (line, text)) in vec_lines.iter().enumerate() {
            let words: Vec<&str> = text.split(is_py_space).filter(|w| !w.is_empty()).collect();
            let expected = format!("VEC{}", k + 1);
            if words[0] != expected {
                return Err(parse_error(*line, format!("expected the cell line {expected}, found '{}'", clip(words[0]))));
            }
            if words.len() != 4 {
                return Err(parse_error(
                    *line,
                    format!(
                        "{expected} has {} numbers (expected 3: the x, y, z of lattice vector {})",
                        words.len() - 1,
                        k + 1
                    ),
                ));
            }
            for c in 0..3 {
                cell[k][c] = python_float(words[1 + c])
                    .ok_or_else(|| parse_error(*line, format!("{expected}: '{}' is not a number", clip(words[1 + c]))))?;
            }
            pbc[k] = true;
        }
        (info, default_properties(), cell, pbc)
    };

    let props_text = clip(
        &props.iter().map(|p| format!("{}:{}:{}", p.name, p.kind.letter(), p.ncols)).collect::<Vec<_>>().join(":"),
    );
    let find = |name: &str| props.iter().position(|p| p.name == name);
    let species = find("species");
    let pos = find("pos");
    let z = find("Z");
    let check = |idx: Option<usize>, kind: Kind, ncols: usize| -> Result<()> {
        if let Some(i) = idx {
            let p = &props[i];
            if p.kind != kind || p.ncols != ncols {
                return Err(parse_error(
                    comment_line,
                    format!(
                        "Properties '{props_text}': column '{}' must be {}:{}:{ncols}, not {}:{}:{}",
                        p.name,
                        p.name,
                        kind.letter(),
                        p.name,
                        p.kind.letter(),
                        p.ncols
                    ),
                ));
            }
        }
        Ok(())
    };
    // ASE writes the empty species column of a frame without atoms as
    // `species:R:1`: accept that spelling when there are no atoms
    let empty_real_species = natoms == 0 && species.is_some_and(|i| props[i].kind == Kind::Real && props[i].ncols == 1);
    if !empty_real_species {
        check(species, Kind::Str, 1)?;
    }
    check(pos, Kind::Real, 3)?;
    check(z, Kind::Int, 1)?;
    if species.is_none() && z.is_none() {
        return Err(parse_error(
            comment_line,
            format!(
                "Properties '{props_text}' has neither a species:S:1 nor a Z:I:1 column, so the atoms have no types"
            ),
        ));
    }
    if pos.is_none() {
        return Err(parse_error(comment_line, format!("Properties '{props_text}' has no pos:R:3 column")));
    }

    let total: usize = props.iter().map(|p| p.ncols).sum();
    // reserve only what the atom lines can hold (each value takes at least
    // two bytes with its separator), so a huge declared column count costs nothing
    let text_bytes: usize = atom_lines.iter().map(|l| l.len() + 1).sum();
    let plausible = natoms.saturating_mul(total) <= text_bytes / 2 + 1;
    let mut data: Vec<ColumnData> = props
        .iter()
        .map(|p| {
            let n = if plausible { natoms * p.ncols } else { 0 };
            match p.kind {
                Kind::Real => ColumnData::Real(Vec::with_capacity(n)),
                Kind::Int => ColumnData::Int(Vec::with_capacity(n)),
                Kind::Str => ColumnData::Str(Vec::with_capacity(n)),
                Kind::Logical => ColumnData::Logical(Vec::with_capacity(n)),
            }
        })
        .collect();
    for (k, text) in atom_lines.iter().enumerate() {
        let line = comment_line + 1 + k;
        let words: Vec<&str> = text.split(is_py_space).filter(|w| !w.is_empty()).collect();
        if words.len() != total {
            return Err(parse_error(
                line,
                format!(
                    "atom {} has {} columns but Properties '{props_text}' declares {total}{}",
                    k + 1,
                    words.len(),
                    if words.is_empty() { " (empty line: fewer atom lines than the atom count?)" } else { "" }
                ),
            ));
        }
        let mut w = 0;
        for (p, column) in props.iter().zip(data.iter_mut()) {
            for c in 0..p.ncols {
                let word = words[w];
                let what =
                    if p.ncols == 1 { format!("'{}'", p.name) } else { format!("'{}' (component {})", p.name, c + 1) };
                let bad = |expected: &str| {
                    parse_error(
                        line,
                        format!("'{}' in column {} ({what}) of atom {} is not {expected}", clip(word), w + 1, k + 1),
                    )
                };
                match column {
                    ColumnData::Real(v) => v.push(python_float(word).ok_or_else(|| bad("a real number"))?),
                    ColumnData::Int(v) => {
                        let i = python_int(word).ok_or_else(|| bad("an integer"))?;
                        v.push(i32::try_from(i).map_err(|_| bad("a 32-bit integer"))?);
                    }
                    ColumnData::Logical(v) => {
                        v.push(column_bool(word).ok_or_else(|| bad("a logical (T, F, True or False)"))?)
                    }
                    ColumnData::Str(v) => v.push(word.to_string()),
                }
                w += 1;
            }
        }
    }

    let mut types: Option<Vec<i32>> = None;
    let mut positions: Vec<[f64; 3]> = Vec::new();
    let mut arrays = Vec::with_capacity(props.len());
    for (idx, (p, column)) in props.iter().zip(data).enumerate() {
        if Some(idx) == z {
            if let ColumnData::Int(v) = column {
                types = Some(v);
            }
        } else if Some(idx) == species {
            if z.is_some() {
                // ASE takes the types from Z and drops species.
                continue;
            }
            if let ColumnData::Str(v) = column {
                let mut t = Vec::with_capacity(v.len());
                for (k, s) in v.iter().enumerate() {
                    t.push(atomic_number(s).ok_or_else(|| {
                        parse_error(comment_line + 1 + k, format!("unknown element symbol '{}' for atom {}", clip(s), k + 1))
                    })?);
                }
                types = Some(t);
            }
        } else if Some(idx) == pos {
            if let ColumnData::Real(v) = column {
                positions = v.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
            }
        } else {
            let ncols = p.ncols;
            let col = match column {
                ColumnData::Real(data) => Column::Float { data, ncols },
                ColumnData::Int(data) => Column::Int { data, ncols },
                ColumnData::Str(data) => Column::Str { data, ncols },
                ColumnData::Logical(data) => Column::Bool { data, ncols },
            };
            arrays.push((p.name.clone(), col));
        }
    }
    // `types` is always set: the checks above guarantee a species or Z column
    // of the right kind.
    let types = types.unwrap_or_default();
    let system = System::new(types, positions, cell, pbc).map_err(|e| match e {
        Error::InvalidSystem(m) => parse_error(comment_line, format!("invalid structure: {m}")),
        other => other,
    })?;
    Ok(Frame { system, info, arrays })
}

/// `species:S:1:pos:R:3`, ASE's default when `Properties` is absent.
fn default_properties() -> Vec<Property> {
    vec![
        Property { name: "species".to_string(), kind: Kind::Str, ncols: 1 },
        Property { name: "pos".to_string(), kind: Kind::Real, ncols: 3 },
    ]
}

/// The cell from `Lattice`: nine numbers, lattice vectors a, b, c in turn.
fn lattice_cell(value: &InfoValue) -> std::result::Result<[[f64; 3]; 3], String> {
    let values: Vec<f64> = match value {
        InfoValue::FloatArray(v) => v.clone(),
        InfoValue::IntArray(v) => v.iter().map(|&i| i as f64).collect(),
        InfoValue::Int(i) => vec![*i as f64],
        InfoValue::Float(x) => vec![*x],
        other => return Err(format!("Lattice must be 9 numbers, got {}", describe(other))),
    };
    if values.len() != 9 {
        return Err(format!("Lattice has {} numbers (expected 9: lattice vectors a, b, c)", values.len()));
    }
    Ok([[values[0], values[1], values[2]], [values[3], values[4], values[5]], [values[6], values[7], values[8]]])
}

/// `pbc`: one logical for all directions or three, as ASE accepts (integers
/// are read as non-zero = periodic, as NumPy converts them).
fn parse_pbc(value: &InfoValue) -> std::result::Result<[bool; 3], String> {
    match value {
        InfoValue::Bool(b) => Ok([*b; 3]),
        InfoValue::BoolArray(v) if v.len() == 3 => Ok([v[0], v[1], v[2]]),
        InfoValue::Int(i) => Ok([*i != 0; 3]),
        InfoValue::IntArray(v) if v.len() == 3 => Ok([v[0] != 0, v[1] != 0, v[2] != 0]),
        other => Err(format!("pbc must be one or three logicals such as \"T T F\", got {}", describe(other))),
    }
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// Formats frames as extended XYZ text that ASE and [`parse_xyz`] read back
/// to the same values. Errors (naming the frame and field) when a frame
/// cannot be written faithfully: a type that is not an atomic number, a
/// column whose length does not match the atom count, a string column entry
/// with whitespace, an invalid or reserved key or column name.
pub fn format_xyz(frames: &[Frame]) -> Result<String> {
    let mut out = Vec::new();
    for (k, frame) in frames.iter().enumerate() {
        write_frame_numbered(&mut out, frame, k)?;
    }
    // Only `str` pieces are written, so the bytes are valid UTF-8.
    String::from_utf8(out).map_err(|e| Error::Io(format!("formatted text is not UTF-8: {e}")))
}

/// Writes frames to a file (created or truncated), as [`format_xyz`].
pub fn write_xyz<P: AsRef<Path>>(path: P, frames: &[Frame]) -> Result<()> {
    let path = path.as_ref();
    let file = File::create(path).map_err(|e| Error::Io(format!("cannot create '{}': {e}", path.display())))?;
    let mut out = BufWriter::new(file);
    for (k, frame) in frames.iter().enumerate() {
        write_frame_numbered(&mut out, frame, k)?;
    }
    out.flush().map_err(|e| Error::Io(format!("writing '{}': {e}", path.display())))
}

/// Writes one frame to `out`, for streaming output.
pub fn write_frame<W: Write>(out: &mut W, frame: &Frame) -> Result<()> {
    check_frame(frame).map_err(Error::InvalidParameter)?;
    out.write_all(frame_text(frame).as_bytes()).map_err(|e| Error::Io(e.to_string()))
}

fn write_frame_numbered<W: Write>(out: &mut W, frame: &Frame, index: usize) -> Result<()> {
    check_frame(frame).map_err(|m| Error::InvalidParameter(format!("frame {index}: {m}")))?;
    out.write_all(frame_text(frame).as_bytes()).map_err(|e| Error::Io(e.to_string()))
}

/// Names reserved for the structure itself.
const RESERVED_INFO: [&str; 3] = ["Lattice", "Properties", "pbc"];
const RESERVED_COLUMNS: [&str; 3] = ["species", "pos", "Z"];

/// Checks everything that would make the written text unreadable or read
/// back differently.
fn check_frame(frame: &Frame) -> std::result::Result<(), String> {
    let sys = &frame.system;
    let n = sys.types.len();
    if sys.positions.len() != n {
        return Err(format!("positions has {} atoms but types has {n}", sys.positions.len()));
    }
    for (i, &t) in sys.types.iter().enumerate() {
        if element_symbol(t).is_none() {
            return Err(format!("types[{i}] = {t} is not an atomic number in 0..=118, so it has no element symbol"));
        }
    }
    let mut keys = std::collections::HashSet::with_capacity(frame.info.len());
    for (full_key, value) in &frame.info {
        if full_key.is_empty() {
            return Err("info has an empty key".to_string());
        }
        let key = &*clip(full_key);
        if full_key.contains(is_line_break) {
            return Err(format!("info key {key:?} contains a line break character"));
        }
        if RESERVED_INFO.contains(&full_key.as_str()) {
            return Err(format!("info key '{key}' is reserved: it is written from the system"));
        }
        if !keys.insert(full_key.as_str()) {
            return Err(format!("info key '{key}' appears twice"));
        }
        if full_key.eq_ignore_ascii_case("uid") {
            match value {
                InfoValue::Str(s) if !s.contains(is_line_break) => {}
                InfoValue::Str(_) => return Err(format!("info '{key}' contains a line break character")),
                // a bare `uid` key, as the reader reads it
                InfoValue::Bool(true) => {}
                other => {
                    return Err(format!(
                        "info '{key}' must be text (readers never convert it), got {}",
                        describe(other)
                    ))
                }
            }
        }
    }
    let mut names = std::collections::HashSet::with_capacity(frame.arrays.len());
    for (full_name, column) in &frame.arrays {
        let name = &*clip(full_name);
        if full_name.is_empty() || full_name.contains(':') || full_name.contains(is_line_break) {
            return Err(format!(
                "arrays name {name:?} cannot be written in Properties (it must be non-empty, without ':' or line breaks)"
            ));
        }
        if RESERVED_COLUMNS.contains(&full_name.as_str()) {
            return Err(format!("arrays name '{name}' is reserved: it is written from the system"));
        }
        if !names.insert(full_name.as_str()) {
            return Err(format!("arrays name '{name}' appears twice"));
        }
        let ncols = column.ncols();
        if ncols == 0 {
            return Err(format!("arrays '{name}' has ncols = 0 (expected at least 1)"));
        }
        if column.len() != n * ncols {
            return Err(format!(
                "arrays '{name}' has {} values but the frame has {n} atoms × {ncols} columns (expected {})",
                column.len(),
                n * ncols
            ));
        }
        if let Column::Str { data, .. } = column {
            if let Some((i, s)) = data
                .iter()
                .enumerate()
                .find(|(_, s)| s.is_empty() || s.chars().any(is_py_space))
            {
                let s = clip(s);
                return Err(format!(
                    "arrays '{name}' value {i} ({s:?}) is empty or contains whitespace, which a string column cannot hold"
                ));
            }
        }
    }
    Ok(())
}

/// Shortest text that reads back to exactly `x` (Python's `float()` and ours
/// accept it); it always has a `.` or an exponent (or is `NaN`/`inf`), so it
/// is never mistaken for an integer.
fn fmt_float(x: f64) -> String {
    // NaN as Python's str() writes it, which is what ASE writes
    if x.is_nan() {
        "nan".to_string()
    } else {
        format!("{x:?}")
    }
}

/// A float as Python's `json` module writes it.
fn json_float(x: f64) -> String {
    if x.is_nan() {
        "NaN".to_string()
    } else if x == f64::INFINITY {
        "Infinity".to_string()
    } else if x == f64::NEG_INFINITY {
        "-Infinity".to_string()
    } else {
        fmt_float(x)
    }
}

/// Quotes a key or value when it holds anything the comment-line reader
/// treats specially, escaping `"` and `\`.
fn quote(s: &str) -> String {
    let special = s.is_empty() || s.chars().any(|c| is_py_space(c) || "\"'{}[]=\\,".contains(c));
    if !special {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The value text of one comment-line pair.
fn info_value_text(key: &str, value: &InfoValue) -> String {
    let json = |payload: String| quote(&format!("_JSON {payload}"));
    match value {
        InfoValue::Int(i) => i.to_string(),
        InfoValue::Float(x) => fmt_float(*x),
        InfoValue::Bool(b) => if *b { "T" } else { "F" }.to_string(),
        InfoValue::Str(s) => {
            // uid is never converted on reading, so it is written as it is.
            let plain_reads_back = key.eq_ignore_ascii_case("uid")
                || (!s.is_empty()
                    && !s.chars().any(char::is_control)
                    && interpret_value(key, s).is_ok_and(|v| v == InfoValue::Str(s.clone())));
            if plain_reads_back {
                quote(s)
            } else {
                json(serde_json::Value::String(s.clone()).to_string())
            }
        }
        InfoValue::IntArray(v) if v.len() >= 2 => quote(&v.iter().map(i64::to_string).collect::<Vec<_>>().join(" ")),
        InfoValue::IntArray(v) => json(format!("[{}]", v.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))),
        InfoValue::FloatArray(v) if v.len() >= 2 => {
            quote(&v.iter().map(|&x| fmt_float(x)).collect::<Vec<_>>().join(" "))
        }
        InfoValue::FloatArray(v) => {
            json(format!("[{}]", v.iter().map(|&x| json_float(x)).collect::<Vec<_>>().join(", ")))
        }
        InfoValue::BoolArray(v) if v.len() >= 2 => {
            quote(&v.iter().map(|&b| if b { "T" } else { "F" }).collect::<Vec<_>>().join(" "))
        }
        InfoValue::BoolArray(v) => {
            json(format!("[{}]", v.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ")))
        }
        InfoValue::Json(v) => json(v.to_string()),
    }
}

/// The full text of one (already checked) frame.
fn frame_text(frame: &Frame) -> String {
    let sys = &frame.system;
    let n = sys.types.len();
    let mut comment = String::new();
    if sys.cell.iter().flatten().any(|&x| x != 0.0) {
        let lattice: Vec<String> = sys.cell.iter().flatten().map(|&x| fmt_float(x)).collect();
        comment.push_str(&format!("Lattice=\"{}\" ", lattice.join(" ")));
    }
    // ASE writes the (empty) species column of a frame without atoms as reals
    let mut properties = String::from(if n == 0 { "species:R:1:pos:R:3" } else { "species:S:1:pos:R:3" });
    for (name, column) in &frame.arrays {
        properties.push_str(&format!(":{name}:{}:{}", column.type_letter(), column.ncols()));
    }
    // quoted only when a column name needs it, so ordinary files look as ASE writes them
    comment.push_str("Properties=");
    comment.push_str(&quote(&properties));
    for (key, value) in &frame.info {
        comment.push(' ');
        comment.push_str(&quote(key));
        if key.eq_ignore_ascii_case("uid") && *value == InfoValue::Bool(true) {
            // `uid=T` would read back as the text "T"
            continue;
        }
        comment.push('=');
        comment.push_str(&info_value_text(key, value));
    }
    let tf = |b: bool| if b { "T" } else { "F" };
    comment.push_str(&format!(" pbc=\"{} {} {}\"", tf(sys.pbc[0]), tf(sys.pbc[1]), tf(sys.pbc[2])));

    // Cells of the atom table, one Vec per printed column, so that each
    // column can be padded to a common width for readability.
    let mut table: Vec<(Vec<String>, bool)> = Vec::new();
    let symbols = sys.types.iter().map(|&t| element_symbol(t).unwrap_or("X").to_string()).collect();
    table.push((symbols, true));
    for c in 0..3 {
        table.push((sys.positions.iter().map(|p| fmt_float(p[c])).collect(), false));
    }
    for (_, column) in &frame.arrays {
        let ncols = column.ncols();
        for c in 0..ncols {
            let cells: Vec<String> = match column {
                Column::Float { data, .. } => (0..n).map(|i| fmt_float(data[i * ncols + c])).collect(),
                Column::Int { data, .. } => (0..n).map(|i| data[i * ncols + c].to_string()).collect(),
                Column::Bool { data, .. } => (0..n).map(|i| tf(data[i * ncols + c]).to_string()).collect(),
                Column::Str { data, .. } => (0..n).map(|i| data[i * ncols + c].clone()).collect(),
            };
            table.push((cells, matches!(column, Column::Str { .. })));
        }
    }
    let widths: Vec<usize> =
        table.iter().map(|(cells, _)| cells.iter().map(|s| s.chars().count()).max().unwrap_or(0)).collect();

    let mut text = format!("{n}\n{comment}\n");
    for i in 0..n {
        for (c, (cells, left)) in table.iter().enumerate() {
            if c > 0 {
                text.push(' ');
            }
            let last = c + 1 == table.len();
            let cell = &cells[i];
            if *left {
                text.push_str(cell);
                if !last {
                    text.extend(std::iter::repeat_n(' ', widths[c] - cell.chars().count()));
                }
            } else {
                text.extend(std::iter::repeat_n(' ', widths[c] - cell.chars().count()));
                text.push_str(cell);
            }
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
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
