//! Python's number and whitespace rules, which the comment line and atom
//! lines follow because ASE reads them with Python.

/// Whitespace as Python's `str.split()` sees it (Unicode whitespace plus the
/// ASCII separators \x1c–\x1f).
pub(super) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python `int()` syntax: optional sign, decimal digits, single underscores
/// between digits. `None` when it is not an integer or does not fit in i64
/// (NumPy then falls back to float, and so do we).
pub(super) fn python_int(text: &str) -> Option<i64> {
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
pub(super) fn python_float(text: &str) -> Option<f64> {
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
pub(super) fn strip_underscores(text: &str) -> Option<String> {
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

/// Characters that Python's `str.splitlines()` (and so a reader of the file
/// as text) treats as the end of a line: they cannot appear inside a key or a
/// plain value of a written file.
pub(super) fn is_line_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}')
}
