//! Writing: checks that a frame can be written faithfully, then the text.
use super::*;

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

pub(super) fn write_frame_numbered<W: Write>(out: &mut W, frame: &Frame, index: usize) -> Result<()> {
    check_frame(frame).map_err(|m| Error::InvalidParameter(format!("frame {index}: {m}")))?;
    out.write_all(frame_text(frame).as_bytes()).map_err(|e| Error::Io(e.to_string()))
}

/// Names reserved for the structure itself.
pub(super) const RESERVED_INFO: [&str; 3] = ["Lattice", "Properties", "pbc"];
pub(super) const RESERVED_COLUMNS: [&str; 3] = ["species", "pos", "Z"];

/// Checks everything that would make the written text unreadable or read
/// back differently.
pub(super) fn check_frame(frame: &Frame) -> std::result::Result<(), String> {
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
pub(super) fn fmt_float(x: f64) -> String {
    // NaN as Python's str() writes it, which is what ASE writes
    if x.is_nan() {
        "nan".to_string()
    } else {
        format!("{x:?}")
    }
}

/// A float as Python's `json` module writes it.
pub(super) fn json_float(x: f64) -> String {
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
pub(super) fn quote(s: &str) -> String {
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
pub(super) fn info_value_text(key: &str, value: &InfoValue) -> String {
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
pub(super) fn frame_text(frame: &Frame) -> String {
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
