//! NumPy's `.npy` format (versions 1–3): plain numeric arrays and the
//! structured all-`int32` arrays metatensor uses for labels.
//!
//! Written by hand rather than with a crate because metatensor's labels are
//! structured arrays whose field names are only known at run time, which the
//! typed npy crates cannot express; the format itself is a short text header
//! followed by raw little-endian bytes.
use std::io::{Seek, SeekFrom, Write};

use crate::error::{Error, Result};
use crate::tensor::Labels;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy aligns the start of the data on 64 bytes.
const ALIGN: usize = 64;

/// Element type of a plain array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    /// `<f8`
    F64,
    /// `<f4`
    F32,
    /// `<i4`
    I32,
    /// `<i8`
    I64,
}

impl Scalar {
    /// numpy's type string, little-endian (e.g. `<f8`).
    pub fn descr(self) -> &'static str {
        match self {
            Scalar::F64 => "<f8",
            Scalar::F32 => "<f4",
            Scalar::I32 => "<i4",
            Scalar::I64 => "<i8",
        }
    }

    fn size(self) -> usize {
        match self {
            Scalar::F64 | Scalar::I64 => 8,
            Scalar::F32 | Scalar::I32 => 4,
        }
    }
}

/// The dtype of an array as read from a header.
#[derive(Debug, Clone, PartialEq)]
pub enum Dtype {
    /// A plain numeric type; `big_endian` when the file says `>`.
    Plain { scalar: Scalar, big_endian: bool },
    /// A structured array of int32 fields (metatensor labels), by name.
    Fields { names: Vec<String>, big_endian: bool },
}

/// An array read from a `.npy` file: its dtype, shape and raw bytes.
#[derive(Debug, Clone)]
pub struct NpyArray {
    /// Element type.
    pub dtype: Dtype,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Raw payload, C order.
    pub data: Vec<u8>,
}

impl NpyArray {
    /// The values converted to f64 (any numeric dtype).
    pub fn to_f64(&self, what: &str) -> Result<Vec<f64>> {
        let Dtype::Plain { scalar, big_endian } = self.dtype else {
            return Err(Error::Io(format!("{what}: expected a numeric array, found a structured array")));
        };
        let n = scalar.size();
        let chunks = self.data.chunks_exact(n);
        let out = match scalar {
            Scalar::F64 => chunks.map(|c| f64::from_bits(word(c, big_endian))).collect(),
            Scalar::F32 => chunks.map(|c| f32::from_bits(word(c, big_endian) as u32) as f64).collect(),
            Scalar::I32 => chunks.map(|c| word(c, big_endian) as u32 as i32 as f64).collect(),
            Scalar::I64 => chunks.map(|c| word(c, big_endian) as i64 as f64).collect(),
        };
        Ok(out)
    }

    /// A structured int32 array as labels (metatensor's layout).
    pub fn to_labels(&self, what: &str) -> Result<Labels> {
        let Dtype::Fields { names, big_endian } = &self.dtype else {
            return Err(Error::Io(format!("{what}: expected a structured array of int32 fields (labels), found {:?}", self.dtype)));
        };
        if names.is_empty() && self.shape.iter().any(|&d| d != 0) {
            return Err(Error::Io(format!("{what}: labels without any dimension name cannot hold {:?} entries", self.shape)));
        }
        if self.shape.len() != 1 {
            return Err(Error::Io(format!("{what}: labels must be one-dimensional, found shape {:?}", self.shape)));
        }
        let values = self.data.chunks_exact(4).map(|c| word(c, *big_endian) as u32 as i32).collect();
        Ok(Labels { names: names.clone(), values })
    }
}

fn word(bytes: &[u8], big_endian: bool) -> u64 {
    let mut w = 0u64;
    if big_endian {
        for &b in bytes {
            w = (w << 8) | b as u64;
        }
    } else {
        for &b in bytes.iter().rev() {
            w = (w << 8) | b as u64;
        }
    }
    w
}

fn shape_text(shape: &[usize], min_width: usize) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut first = dims.first().cloned().unwrap_or_default();
    // room for the row count to grow when a streaming writer rewrites the header
    while first.len() < min_width {
        first.insert(0, ' ');
    }
    match dims.len() {
        0 => "()".to_string(),
        1 => format!("({first},)"),
        _ => format!("({first}, {})", dims[1..].join(", ")),
    }
}

fn header(descr: &str, shape: &[usize], min_width: usize) -> Vec<u8> {
    let dict = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': {}, }}", shape_text(shape, min_width));
    // version 1.0 holds headers up to 65535 bytes; labels with many names need 2.0
    let (version, prefix) = if dict.len() + 12 < 65000 { (1u8, 10) } else { (2u8, 12) };
    let total = (prefix + dict.len() + 1).div_ceil(ALIGN) * ALIGN;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.push(version);
    out.push(0);
    let len = total - prefix;
    if version == 1 {
        out.extend_from_slice(&(len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

/// Writes a plain array: `values` in C order with the given shape.
pub fn write_f64<W: Write>(w: &mut W, shape: &[usize], values: &[f64], scalar: Scalar) -> Result<()> {
    check_count(shape, values.len())?;
    w.write_all(&header(&format!("'{}'", scalar.descr()), shape, 0))?;
    write_values(w, values, scalar)
}

fn write_values<W: Write>(w: &mut W, values: &[f64], scalar: Scalar) -> Result<()> {
    #[cfg(target_endian = "little")]
    if scalar == Scalar::F64 {
        // SAFETY: f64 has no padding, every byte of it is initialised, and
        // u8 has alignment 1: its memory is its little-endian bytes
        let bytes = unsafe { std::slice::from_raw_parts(values.as_ptr() as *const u8, std::mem::size_of_val(values)) };
        w.write_all(bytes)?;
        return Ok(());
    }
    let mut buf = Vec::with_capacity(values.len().min(1 << 16) * 8);
    for chunk in values.chunks(1 << 16) {
        buf.clear();
        match scalar {
            Scalar::F64 => chunk.iter().for_each(|v| buf.extend_from_slice(&v.to_le_bytes())),
            Scalar::F32 => chunk.iter().for_each(|v| buf.extend_from_slice(&(*v as f32).to_le_bytes())),
            Scalar::I32 => chunk.iter().for_each(|v| buf.extend_from_slice(&(*v as i32).to_le_bytes())),
            Scalar::I64 => chunk.iter().for_each(|v| buf.extend_from_slice(&(*v as i64).to_le_bytes())),
        }
        w.write_all(&buf)?;
    }
    Ok(())
}

fn check_count(shape: &[usize], n: usize) -> Result<()> {
    let expected: usize = shape.iter().product();
    if expected != n {
        return Err(Error::InvalidParameter(format!("array has {n} values but shape {shape:?} needs {expected}")));
    }
    Ok(())
}

/// Writes labels as a structured int32 array (metatensor's layout).
pub fn write_labels<W: Write>(w: &mut W, labels: &Labels) -> Result<()> {
    // a name that is not an identifier could break the header's quoting
    labels.check("labels")?;
    let fields: Vec<String> = labels.names.iter().map(|n| format!("('{n}', '<i4'), ")).collect();
    w.write_all(&header(&format!("[{}]", fields.join("")), &[labels.count()], 0))?;
    let mut buf = Vec::with_capacity(labels.values.len() * 4);
    labels.values.iter().for_each(|v| buf.extend_from_slice(&v.to_le_bytes()));
    w.write_all(&buf)?;
    Ok(())
}

/// CRC-32 (IEEE polynomial, zlib's `crc32`) of `bytes` continued from the
/// CRC `previous` of the bytes before them (0 to start): a file's checksum
/// computed block by block equals that of the whole.
pub fn crc32_continue(previous: u32, bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(previous);
    h.update(bytes);
    h.finalize()
}

/// Writes a 2-D array row block by row block when the number of rows is only
/// known at the end: the header is rewritten by [`NpyRowWriter::finish`].
pub struct NpyRowWriter<W: Write + Seek> {
    out: W,
    columns: usize,
    rows: usize,
    scalar: Scalar,
    header_len: usize,
    /// CRC-32 of the values written so far (when asked for): the file's
    /// checksum is known when it is finished, without reading it back
    crc: Option<crc32fast::Hasher>,
}

/// A writer that feeds what it writes to a CRC-32 as well.
struct Crc32Tee<'a, W: Write> {
    out: &'a mut W,
    crc: &'a mut crc32fast::Hasher,
}

impl<W: Write> Write for Crc32Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write + Seek> NpyRowWriter<W> {
    /// Starts an array of `columns` columns.
    pub fn new(mut out: W, columns: usize, scalar: Scalar) -> Result<Self> {
        let h = header(&format!("'{}'", scalar.descr()), &[0, columns], 20);
        out.write_all(&h)?;
        Ok(NpyRowWriter { out, columns, rows: 0, scalar, header_len: h.len(), crc: None })
    }

    /// Also computes the CRC-32 (IEEE, as zlib's `crc32`) of the whole file,
    /// returned by [`NpyRowWriter::finish_with_crc32`]. Call before the first
    /// [`NpyRowWriter::append`].
    pub fn with_crc32(mut self) -> Self {
        self.crc = Some(crc32fast::Hasher::new());
        self
    }

    /// Appends whole rows (row-major values).
    pub fn append(&mut self, values: &[f64]) -> Result<()> {
        if self.columns == 0 || values.len() % self.columns != 0 {
            return Err(Error::InvalidParameter(format!(
                "{} values are not whole rows of {} columns",
                values.len(),
                self.columns
            )));
        }
        match self.crc.as_mut() {
            Some(crc) => write_values(&mut Crc32Tee { out: &mut self.out, crc }, values, self.scalar)?,
            None => write_values(&mut self.out, values, self.scalar)?,
        }
        self.rows += values.len() / self.columns;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Writes the final shape into the header and flushes.
    pub fn finish(self) -> Result<W> {
        Ok(self.finish_with_crc32()?.0)
    }

    /// [`NpyRowWriter::finish`], with the CRC-32 of the whole file (final
    /// header and values) when [`NpyRowWriter::with_crc32`] asked for it.
    pub fn finish_with_crc32(mut self) -> Result<(W, Option<u32>)> {
        let h = header(&format!("'{}'", self.scalar.descr()), &[self.rows, self.columns], 20);
        if h.len() != self.header_len {
            return Err(Error::Io("npy header grew while streaming (too many rows)".into()));
        }
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&h)?;
        self.out.seek(SeekFrom::End(0))?;
        self.out.flush()?;
        // CRC(header ‖ values) from the two parts: the header is only final now
        let crc = self.crc.map(|values| {
            let mut whole = crc32fast::Hasher::new();
            whole.update(&h);
            whole.combine(&values);
            whole.finalize()
        });
        Ok((self.out, crc))
    }
}

/// Parses a whole `.npy` file; `what` names it in error messages.
pub fn read(bytes: &[u8], what: &str) -> Result<NpyArray> {
    let bad = |m: String| Error::Io(format!("{what}: {m}"));
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("not an .npy file (missing the \\x93NUMPY magic string)".into()));
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(bad(format!("unsupported .npy format version {v}"))),
    };
    let end = start.checked_add(len).filter(|&e| e <= bytes.len()).ok_or_else(|| bad("truncated header".into()))?;
    let text = std::str::from_utf8(&bytes[start..end]).map_err(|_| bad("header is not text".into()))?;
    let dict = PyParser::new(text).parse_value().map_err(|m| bad(format!("bad header: {m}")))?;
    let PyValue::Dict(entries) = dict else { return Err(bad("header is not a dict".into())) };
    let get = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    if let Some(PyValue::Bool(true)) = get("fortran_order") {
        return Err(bad("Fortran-ordered arrays are not supported (save with C order)".into()));
    }
    let shape = match get("shape") {
        Some(PyValue::Tuple(dims)) => dims
            .iter()
            .map(|d| match d {
                PyValue::Int(i) if *i >= 0 => Ok(*i as usize),
                other => Err(bad(format!("bad dimension {} in shape", super::clip(&format!("{other:?}"))))),
            })
            .collect::<Result<Vec<_>>>()?,
        other => return Err(bad(format!("bad or missing shape: {}", super::clip(&format!("{other:?}"))))),
    };
    let dtype = match get("descr") {
        Some(PyValue::Str(s)) => parse_scalar(s).map_err(bad)?,
        Some(PyValue::List(fields)) => {
            let mut names = Vec::new();
            let mut big = false;
            for f in fields {
                match f {
                    PyValue::Tuple(t) if t.len() == 2 => match (&t[0], &t[1]) {
                        (PyValue::Str(name), PyValue::Str(ty)) if ty == "<i4" || ty == ">i4" => {
                            big = ty.starts_with('>');
                            names.push(name.clone());
                        }
                        _ => {
                            let t = super::clip(&format!("{t:?}"));
                            return Err(bad(format!("unsupported structured field {t} (only int32 fields are supported)")));
                        }
                    },
                    other => return Err(bad(format!("unsupported structured field {}", super::clip(&format!("{other:?}"))))),
                }
            }
            Dtype::Fields { names, big_endian: big }
        }
        other => return Err(bad(format!("bad or missing descr: {}", super::clip(&format!("{other:?}"))))),
    };
    let item = match &dtype {
        Dtype::Plain { scalar, .. } => scalar.size(),
        Dtype::Fields { names, .. } => 4 * names.len(),
    };
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| bad("shape overflows".into()))?;
    let nbytes = count.checked_mul(item).ok_or_else(|| bad("shape overflows".into()))?;
    if bytes.len() - end < nbytes {
        return Err(bad(format!("truncated data: shape {shape:?} needs {nbytes} bytes, the file has {}", bytes.len() - end)));
    }
    Ok(NpyArray { dtype, shape, data: bytes[end..end + nbytes].to_vec() })
}

fn parse_scalar(s: &str) -> std::result::Result<Dtype, String> {
    let (big_endian, rest) = match s.as_bytes().first() {
        Some(b'<') | Some(b'|') | Some(b'=') => (false, &s[1..]),
        Some(b'>') => (true, &s[1..]),
        _ => (false, s),
    };
    let scalar = match rest {
        "f8" => Scalar::F64,
        "f4" => Scalar::F32,
        "i4" => Scalar::I32,
        "i8" => Scalar::I64,
        _ => return Err(format!("unsupported dtype '{}' (supported: f8, f4, i4, i8)", super::clip(s))),
    };
    Ok(Dtype::Plain { scalar, big_endian })
}

/// The subset of Python literals found in npy headers.
#[derive(Debug, Clone, PartialEq)]
enum PyValue {
    Str(String),
    Int(i64),
    Bool(bool),
    Tuple(Vec<PyValue>),
    List(Vec<PyValue>),
    Dict(Vec<(String, PyValue)>),
}

/// Deepest nesting of brackets accepted in a header. numpy writes at most
/// three levels (dict, list of fields, field tuple); the limit keeps a
/// hostile header from exhausting the stack of the recursive parser.
const MAX_DEPTH: usize = 16;

struct PyParser<'a> {
    s: &'a [u8],
    at: usize,
    depth: usize,
}

impl<'a> PyParser<'a> {
    fn new(s: &'a str) -> Self {
        PyParser { s: s.as_bytes(), at: 0, depth: 0 }
    }

    /// Parses a nested value, counting the nesting depth.
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> std::result::Result<T, String>) -> std::result::Result<T, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!("brackets nested deeper than {MAX_DEPTH} levels at byte {}", self.at));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn skip(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip();
        self.s.get(self.at).copied()
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.at))
        }
    }

    fn sequence(&mut self, close: u8) -> std::result::Result<Vec<PyValue>, String> {
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(close) {
                self.at += 1;
                return Ok(items);
            }
            items.push(self.parse_value()?);
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(c) if c == close => {}
                _ => return Err(format!("expected ',' or '{}' at byte {}", close as char, self.at)),
            }
        }
    }

    fn parse_value(&mut self) -> std::result::Result<PyValue, String> {
        match self.peek() {
            Some(b'{') => {
                self.at += 1;
                self.nested(|p| {
                    let mut entries = Vec::new();
                    loop {
                        if p.peek() == Some(b'}') {
                            p.at += 1;
                            return Ok(PyValue::Dict(entries));
                        }
                        let PyValue::Str(key) = p.parse_value()? else { return Err("dict keys must be strings".into()) };
                        p.expect(b':')?;
                        entries.push((key, p.parse_value()?));
                        match p.peek() {
                            Some(b',') => p.at += 1,
                            Some(b'}') => {}
                            _ => return Err(format!("expected ',' or '}}' at byte {}", p.at)),
                        }
                    }
                })
            }
            Some(b'(') => {
                self.at += 1;
                Ok(PyValue::Tuple(self.nested(|p| p.sequence(b')'))?))
            }
            Some(b'[') => {
                self.at += 1;
                Ok(PyValue::List(self.nested(|p| p.sequence(b']'))?))
            }
            Some(q @ (b'\'' | b'"')) => {
                self.at += 1;
                let start = self.at;
                while self.at < self.s.len() && self.s[self.at] != q {
                    self.at += 1;
                }
                if self.at >= self.s.len() {
                    return Err("unterminated string".into());
                }
                let text = String::from_utf8_lossy(&self.s[start..self.at]).into_owned();
                self.at += 1;
                Ok(PyValue::Str(text))
            }
            Some(c) if c.is_ascii_digit() || c == b'-' => {
                let start = self.at;
                self.at += 1;
                while self.at < self.s.len() && (self.s[self.at].is_ascii_digit() || self.s[self.at] == b'L') {
                    self.at += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("").trim_end_matches('L');
                text.parse().map(PyValue::Int).map_err(|_| format!("bad integer '{}'", super::clip(text)))
            }
            Some(b'T') if self.s[self.at..].starts_with(b"True") => {
                self.at += 4;
                Ok(PyValue::Bool(true))
            }
            Some(b'F') if self.s[self.at..].starts_with(b"False") => {
                self.at += 5;
                Ok(PyValue::Bool(false))
            }
            Some(c) => Err(format!("unexpected '{}' at byte {}", c as char, self.at)),
            None => Err("unexpected end of header".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_plain_and_labels() {
        let mut buf = Vec::new();
        write_f64(&mut buf, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, -6.5], Scalar::F64).unwrap();
        assert_eq!((buf.len() - 48) % 64, 0, "data starts on a 64-byte boundary");
        let a = read(&buf, "x").unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.to_f64("x").unwrap(), vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]);

        let l = Labels::new(&["system", "atom"], vec![0, 1, 2, -3]);
        let mut buf = Vec::new();
        write_labels(&mut buf, &l).unwrap();
        assert_eq!(read(&buf, "l").unwrap().to_labels("l").unwrap(), l);
        assert!(read(&buf, "l").unwrap().to_f64("l").is_err());
    }

    #[test]
    fn streaming_rows_rewrites_the_header() {
        let mut w = NpyRowWriter::new(std::io::Cursor::new(Vec::new()), 2, Scalar::F32).unwrap();
        w.append(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        w.append(&[5.0, 6.0]).unwrap();
        assert!(w.append(&[1.0]).is_err());
        let bytes = w.finish().unwrap().into_inner();
        let a = read(&bytes, "s").unwrap();
        assert_eq!(a.shape, vec![3, 2]);
        assert_eq!(a.to_f64("s").unwrap(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn streamed_crc32_is_that_of_the_finished_file() {
        // the CRC of the file as written (header rewritten at the end) equals
        // a CRC computed afresh over its bytes (crc32fast::hash, a one-shot
        // pass); a flipped bit changes it. Both element types, several appends.
        for scalar in [Scalar::F64, Scalar::F32] {
            let mut w = NpyRowWriter::new(std::io::Cursor::new(Vec::new()), 3, scalar).unwrap().with_crc32();
            w.append(&[1.0, -2.5, 3.0, 0.0, 0.0, 0.0]).unwrap();
            w.append(&[1e-300, f64::MAX, 7.0]).unwrap();
            let (out, crc) = w.finish_with_crc32().unwrap();
            let mut bytes = out.into_inner();
            assert_eq!(crc, Some(crc32fast::hash(&bytes)));
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            assert_ne!(crc, Some(crc32fast::hash(&bytes)));
        }
        // the IEEE polynomial of zlib: CRC-32 of "123456789" is 0xCBF43926,
        // the same continued block by block
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32_continue(crc32_continue(0, b"1234"), b"56789"), 0xCBF4_3926);
        let w = NpyRowWriter::new(std::io::Cursor::new(Vec::new()), 1, Scalar::F64).unwrap();
        assert_eq!(w.finish_with_crc32().unwrap().1, None);
    }

    #[test]
    fn malformed_files_are_errors() {
        let mut buf = Vec::new();
        write_f64(&mut buf, &[4], &[1.0; 4], Scalar::F64).unwrap();
        assert!(read(&buf[..buf.len() - 1], "t").unwrap_err().to_string().contains("truncated data"));
        assert!(read(&buf[..20], "t").unwrap_err().to_string().contains("truncated header"));
        assert!(read(b"PK\x03\x04 not npy", "t").unwrap_err().to_string().contains("magic"));
        let at = buf.windows(3).position(|w| w == b"<f8").unwrap();
        buf[at + 1] = b'c';
        assert!(read(&buf, "t").unwrap_err().to_string().contains("unsupported dtype"));
    }
}
