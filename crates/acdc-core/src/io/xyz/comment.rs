//! The comment line: splitting `key=value` pairs as ASE does and typing
//! the values (numbers, logicals, text, `_JSON`).
use super::*;

/// One `key[=value]` item of a comment line after quotes and escapes are
/// resolved; `value` is `None` for a bare key.
#[derive(Debug, PartialEq)]
pub(super) struct RawItem {
    pub(super) key: String,
    pub(super) value: Option<String>,
}

/// Splits a comment line into items exactly as ASE's `key_val_str_to_dict`
/// does, except that an unterminated quote or a trailing lone backslash is an
/// error and a quoted empty value ends its item.
pub(super) fn split_comment(line: &str) -> std::result::Result<Vec<RawItem>, String> {
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
pub(super) fn closing_delimiter(c: char) -> Option<char> {
    match c {
        '"' => Some('"'),
        '\'' => Some('\''),
        '{' => Some('}'),
        '[' => Some(']'),
        _ => None,
    }
}

/// Logical words as ASE's comment-line reader accepts them.
pub(super) fn info_bool(word: &str) -> Option<bool> {
    match word {
        "T" | "true" | "True" | "TRUE" => Some(true),
        "F" | "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Types a comment-line value the way ASE does (see the module docs).
pub(super) fn interpret_value(key: &str, value: &str) -> std::result::Result<InfoValue, String> {
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
pub(super) enum JsonScalar {
    Bool(bool),
    Int(i64),
    Float(f64),
}

/// One JSON number or logical, also accepting the `NaN`, `Infinity` and
/// `-Infinity` that Python's `json` writes and reads.
pub(super) fn json_scalar(token: &str) -> Option<JsonScalar> {
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
pub(super) fn json_numeric(text: &str) -> Option<InfoValue> {
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
pub(super) fn interpret_json(text: &str) -> std::result::Result<InfoValue, String> {
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
pub(super) fn describe(value: &InfoValue) -> String {
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
pub(super) fn parse_comment(line: &str) -> std::result::Result<Vec<(String, InfoValue)>, String> {
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

/// Removes and returns `key` from the info list.
pub(super) fn take_info(info: &mut Vec<(String, InfoValue)>, key: &str) -> Option<InfoValue> {
    info.iter().position(|(k, _)| k == key).map(|p| info.remove(p).1)
}
