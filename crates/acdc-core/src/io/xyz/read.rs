//! Reading: the streaming frame reader, `Properties`, and the assembly of
//! a frame from its lines.
use super::*;

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

pub(super) fn parse_error(line: usize, message: String) -> Error {
    Error::Parse { line, message }
}

/// The atom count line: one non-negative integer (Python `int()` syntax).
pub(super) fn parse_atom_count(text: &str) -> std::result::Result<usize, String> {
    match python_int(text) {
        Some(n) if n < 0 => Err(format!("the number of atoms is negative ({n})")),
        Some(n) => usize::try_from(n).map_err(|_| format!("the number of atoms {n} is too large")),
        None if text.is_empty() => Err("empty line where the number of atoms was expected".to_string()),
        None => Err(format!("expected the number of atoms (an integer), found '{}'", clip(text))),
    }
}

/// Column type letters of `Properties`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
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
pub(super) struct Property {
    pub(super) name: String,
    pub(super) kind: Kind,
    pub(super) ncols: usize,
}

/// Parses `Properties=name:type:ncols:…`.
pub(super) fn parse_properties(full: &str) -> std::result::Result<Vec<Property>, String> {
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
pub(super) enum ColumnData {
    Real(Vec<f64>),
    Int(Vec<i32>),
    Str(Vec<String>),
    Logical(Vec<bool>),
}

/// Logical words as ASE's per-atom reader accepts them.
pub(super) fn column_bool(word: &str) -> Option<bool> {
    match word {
        "T" | "True" => Some(true),
        "F" | "False" => Some(false),
        _ => None,
    }
}

/// Turns the text of one frame into a [`Frame`]. `comment_line` is the
/// 1-based line number of the comment; atom `k` is on `comment_line + 1 + k`.
pub(super) fn build_frame(
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
pub(super) fn default_properties() -> Vec<Property> {
    vec![
        Property { name: "species".to_string(), kind: Kind::Str, ncols: 1 },
        Property { name: "pos".to_string(), kind: Kind::Real, ncols: 3 },
    ]
}

/// The cell from `Lattice`: nine numbers, lattice vectors a, b, c in turn.
pub(super) fn lattice_cell(value: &InfoValue) -> std::result::Result<[[f64; 3]; 3], String> {
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
pub(super) fn parse_pbc(value: &InfoValue) -> std::result::Result<[bool; 3], String> {
    match value {
        InfoValue::Bool(b) => Ok([*b; 3]),
        InfoValue::BoolArray(v) if v.len() == 3 => Ok([v[0], v[1], v[2]]),
        InfoValue::Int(i) => Ok([*i != 0; 3]),
        InfoValue::IntArray(v) if v.len() == 3 => Ok([v[0] != 0, v[1] != 0, v[2] != 0]),
        other => Err(format!("pbc must be one or three logicals such as \"T T F\", got {}", describe(other))),
    }
}
