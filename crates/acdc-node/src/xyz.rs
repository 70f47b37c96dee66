//! Extended XYZ files and strings.
use std::fs::File;
use std::io::BufReader;
use std::sync::{Arc, Mutex};

use acdc_core::io::xyz::{self, Column, Frame, InfoValue, XyzReader as CoreReader};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{guarded, to_napi};
use crate::system::{to_core, SystemData};

/// A per-atom column, flat row-major.
#[napi(object)]
pub struct ColumnData {
    /// column name
    pub name: String,
    /// "float", "int", "bool" or "string"
    pub kind: String,
    /// values per atom
    pub ncols: u32,
    /// values when kind is "float"
    pub floats: Option<Float64Array>,
    /// values when kind is "int"
    pub ints: Option<Int32Array>,
    /// values when kind is "bool"
    pub bools: Option<Vec<bool>>,
    /// values when kind is "string"
    pub strings: Option<Vec<String>>,
}

/// One frame: the structure, its info (as JSON text) and extra columns.
#[napi(object)]
pub struct FrameData {
    /// atomic species
    pub types: Int32Array,
    /// positions in Å, 3 per atom
    pub positions: Float64Array,
    /// cell in Å, 9 numbers, rows are lattice vectors
    pub cell: Float64Array,
    /// periodicity
    pub pbc: Vec<bool>,
    /// comment-line key=value pairs as a JSON object
    pub info_json: String,
    /// per-atom columns beyond species and pos
    pub arrays: Vec<ColumnData>,
    /// info numbers that JSON cannot carry (NaN, ±Infinity, -0): the JSON
    /// holds 0 in their place
    pub info_floats: Vec<InfoFloat>,
}

/// One info number kept out of the JSON text: `info[key]` (index -1) or
/// `info[key][index]`.
#[napi(object)]
pub struct InfoFloat {
    /// the info key
    pub key: String,
    /// position in the array, or -1 for a single number
    pub index: i32,
    /// the value
    pub value: f64,
}

/// Whether a float must travel outside the JSON text: JSON has no NaN or
/// infinities, and JavaScript's JSON.stringify writes -0 as 0.
fn special(x: f64) -> bool {
    !x.is_finite() || (x == 0.0 && x.is_sign_negative())
}

fn info_to_json(info: &[(String, InfoValue)]) -> (String, Vec<InfoFloat>) {
    use serde_json::{Map, Value};
    let mut specials = Vec::new();
    let mut num = |key: &str, index: i32, x: f64| match serde_json::Number::from_f64(x) {
        Some(n) if !special(x) => Value::Number(n),
        _ => {
            specials.push(InfoFloat { key: key.to_string(), index, value: x });
            Value::from(0)
        }
    };
    let mut map = Map::new();
    for (k, v) in info {
        let value = match v {
            InfoValue::Int(i) => Value::from(*i),
            InfoValue::Float(x) => num(k, -1, *x),
            InfoValue::Bool(b) => Value::from(*b),
            InfoValue::Str(s) => Value::from(s.clone()),
            InfoValue::IntArray(a) => Value::from(a.clone()),
            InfoValue::FloatArray(a) => Value::Array(a.iter().enumerate().map(|(i, &x)| num(k, i as i32, x)).collect()),
            InfoValue::BoolArray(a) => Value::from(a.clone()),
            InfoValue::Json(v) => v.clone(),
        };
        map.insert(k.clone(), value);
    }
    (Value::Object(map).to_string(), specials)
}

/// Puts the numbers carried outside the JSON back in place.
fn apply_specials(info: &mut [(String, InfoValue)], specials: &[InfoFloat]) -> Result<()> {
    for s in specials {
        let bad = || Error::new(Status::InvalidArg, format!("infoFloats: no number at info.{}[{}]", s.key, s.index));
        let slot = info.iter_mut().find(|(k, _)| *k == s.key).ok_or_else(bad)?;
        if s.index < 0 {
            slot.1 = InfoValue::Float(s.value);
            continue;
        }
        let i = s.index as usize;
        let mut floats = match &slot.1 {
            InfoValue::FloatArray(a) => a.clone(),
            InfoValue::IntArray(a) => a.iter().map(|&x| x as f64).collect(),
            _ => return Err(bad()),
        };
        *floats.get_mut(i).ok_or_else(bad)? = s.value;
        slot.1 = InfoValue::FloatArray(floats);
    }
    Ok(())
}

fn info_from_json(json: &str) -> Result<Vec<(String, InfoValue)>> {
    use serde_json::Value;
    let bad = |k: &str| Error::new(Status::InvalidArg, format!("info.{k} must be a number, string, boolean, null, array or object"));
    let Value::Object(map) = serde_json::from_str::<Value>(json).map_err(|e| Error::new(Status::InvalidArg, format!("info: {e}")))? else {
        return Err(Error::new(Status::InvalidArg, "info must be an object".to_string()));
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let value = match &v {
            Value::Bool(b) => InfoValue::Bool(*b),
            Value::String(s) => InfoValue::Str(s.clone()),
            Value::Number(n) => match n.as_i64() {
                Some(i) => InfoValue::Int(i),
                None => InfoValue::Float(n.as_f64().ok_or_else(|| bad(&k))?),
            },
            Value::Array(a) if a.iter().all(Value::is_boolean) => InfoValue::BoolArray(a.iter().filter_map(Value::as_bool).collect()),
            Value::Array(a) if a.iter().all(|x| x.as_i64().is_some()) => InfoValue::IntArray(a.iter().filter_map(Value::as_i64).collect()),
            Value::Array(a) if a.iter().all(Value::is_number) => InfoValue::FloatArray(a.iter().filter_map(Value::as_f64).collect()),
            Value::Array(_) | Value::Object(_) | Value::Null => InfoValue::Json(v.clone()),
        };
        out.push((k, value));
    }
    Ok(out)
}

fn frame_to_js(f: Frame) -> FrameData {
    let s = f.system;
    let cell: Vec<f64> = s.cell.iter().flatten().copied().collect();
    let (info_json, info_floats) = info_to_json(&f.info);
    let arrays = f
        .arrays
        .into_iter()
        .map(|(name, column)| {
            let mut c = ColumnData { name, kind: String::new(), ncols: 0, floats: None, ints: None, bools: None, strings: None };
            match column {
                Column::Float { data, ncols } => {
                    c.kind = "float".into();
                    c.ncols = ncols as u32;
                    c.floats = Some(Float64Array::new(data));
                }
                Column::Int { data, ncols } => {
                    c.kind = "int".into();
                    c.ncols = ncols as u32;
                    c.ints = Some(Int32Array::new(data));
                }
                Column::Bool { data, ncols } => {
                    c.kind = "bool".into();
                    c.ncols = ncols as u32;
                    c.bools = Some(data);
                }
                Column::Str { data, ncols } => {
                    c.kind = "string".into();
                    c.ncols = ncols as u32;
                    c.strings = Some(data);
                }
            }
            c
        })
        .collect();
    FrameData {
        types: Int32Array::new(s.types),
        positions: Float64Array::new(s.positions.into_iter().flatten().collect()),
        cell: Float64Array::new(cell),
        pbc: s.pbc.to_vec(),
        info_json,
        arrays,
        info_floats,
    }
}

fn frame_from_js(k: usize, f: &FrameData) -> Result<Frame> {
    let prefix = |e: Error| crate::errors::in_context(&format!("frames[{k}]"), e);
    let system = to_core(&SystemData {
        types: Int32Array::new(f.types.to_vec()),
        positions: Float64Array::new(f.positions.to_vec()),
        cell: Float64Array::new(f.cell.to_vec()),
        pbc: f.pbc.clone(),
    })
    .map_err(prefix)?;
    let n = system.size();
    let mut arrays = Vec::new();
    for c in &f.arrays {
        let ncols = c.ncols as usize;
        let missing = || prefix(Error::new(Status::InvalidArg, format!("arrays.{} of kind {} has no values", c.name, c.kind)));
        let column = match c.kind.as_str() {
            "float" => Column::Float { data: c.floats.as_ref().ok_or_else(missing)?.to_vec(), ncols },
            "int" => Column::Int { data: c.ints.as_ref().ok_or_else(missing)?.to_vec(), ncols },
            "bool" => Column::Bool { data: c.bools.clone().ok_or_else(missing)?, ncols },
            "string" => Column::Str { data: c.strings.clone().ok_or_else(missing)?, ncols },
            other => return Err(prefix(Error::new(Status::InvalidArg, format!("arrays.{} has unknown kind \"{other}\"", c.name)))),
        };
        let len = match &column {
            Column::Float { data, .. } => data.len(),
            Column::Int { data, .. } => data.len(),
            Column::Bool { data, .. } => data.len(),
            Column::Str { data, .. } => data.len(),
        };
        if ncols == 0 || len != n * ncols {
            return Err(prefix(Error::new(
                Status::InvalidArg,
                format!("arrays.{} has {len} values, expected {n} atoms × {ncols} columns", c.name),
            )));
        }
        arrays.push((c.name.clone(), column));
    }
    let mut info = info_from_json(&f.info_json).map_err(prefix)?;
    apply_specials(&mut info, &f.info_floats).map_err(prefix)?;
    Ok(Frame { system, info, arrays })
}

fn frames_from_js(frames: &[FrameData]) -> Result<Vec<Frame>> {
    frames.iter().enumerate().map(|(k, f)| frame_from_js(k, f)).collect()
}

/// Element symbols indexed by atomic number (0 is "X", a dummy atom).
#[napi]
pub fn element_symbols() -> Vec<String> {
    xyz::ELEMENT_SYMBOLS.iter().map(|s| s.to_string()).collect()
}

/// Parses extended XYZ text.
#[napi]
pub fn parse_xyz(text: String) -> Result<Vec<FrameData>> {
    guarded("parseXyz", || Ok(xyz::parse_xyz(&text).map_err(to_napi)?.into_iter().map(frame_to_js).collect()))
}

/// Formats frames as extended XYZ text.
#[napi]
pub fn format_xyz(frames: Vec<FrameData>) -> Result<String> {
    guarded("formatXyz", || xyz::format_xyz(&frames_from_js(&frames)?).map_err(to_napi))
}

fn with_path(path: &str, e: acdc_core::Error) -> Error {
    crate::errors::to_napi_in(path, e)
}

/// Reads all frames of a file (blocking).
#[napi]
pub fn read_xyz_sync(path: String) -> Result<Vec<FrameData>> {
    guarded("readXyzSync", || Ok(xyz::read_xyz(&path).map_err(|e| with_path(&path, e))?.into_iter().map(frame_to_js).collect()))
}

/// Writes frames to a file (blocking).
#[napi]
pub fn write_xyz_sync(path: String, frames: Vec<FrameData>) -> Result<()> {
    guarded("writeXyzSync", || xyz::write_xyz(&path, &frames_from_js(&frames)?).map_err(|e| with_path(&path, e)))
}

/// Reading a whole file on a worker thread.
pub struct ReadTask {
    path: String,
}

impl Task for ReadTask {
    type Output = Vec<Frame>;
    type JsValue = Vec<FrameData>;
    fn compute(&mut self) -> Result<Self::Output> {
        guarded("readXyz", || xyz::read_xyz(&self.path).map_err(|e| with_path(&self.path, e)))
    }
    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(output.into_iter().map(frame_to_js).collect())
    }
}

/// Reads all frames of a file off the event loop.
#[napi(ts_return_type = "Promise<Array<FrameData>>")]
pub fn read_xyz(path: String) -> AsyncTask<ReadTask> {
    AsyncTask::new(ReadTask { path })
}

/// The frames of extended XYZ text, with their total atom count.
#[napi(object)]
pub struct ParsedFrames {
    /// atoms in all frames
    pub atoms: f64,
    /// the frames; empty when `atoms` is above the caller's limit
    pub frames: Vec<FrameData>,
}

/// Parsing text held in memory on a worker thread.
pub struct ParseTextTask {
    text: String,
    name: String,
    max_atoms: f64,
}

impl Task for ParseTextTask {
    type Output = (usize, Vec<Frame>);
    type JsValue = ParsedFrames;
    fn compute(&mut self) -> Result<Self::Output> {
        guarded("parseXyzText", || {
            let frames = xyz::parse_xyz(&std::mem::take(&mut self.text)).map_err(|e| with_path(&self.name, e))?;
            let atoms = frames.iter().map(|f| f.system.size()).sum();
            Ok((atoms, frames))
        })
    }
    fn resolve(&mut self, _env: Env, (atoms, frames): Self::Output) -> Result<Self::JsValue> {
        // over the limit: no JS object is made for the frames
        let frames = if atoms as f64 > self.max_atoms { Vec::new() } else { frames.into_iter().map(frame_to_js).collect() };
        Ok(ParsedFrames { atoms: atoms as f64, frames })
    }
}

/// Parses extended XYZ `text` off the event loop; `name` stands for a path
/// in error messages ("body: parse error at line 3: …"). Frames holding more
/// than `maxAtoms` atoms in all are counted but not converted (`frames` empty).
#[napi(ts_return_type = "Promise<ParsedFrames>")]
pub fn parse_xyz_text(text: String, name: String, max_atoms: f64) -> AsyncTask<ParseTextTask> {
    AsyncTask::new(ParseTextTask { text, name, max_atoms })
}

/// Writing a file on a worker thread (frames converted on the JS thread).
pub struct WriteTask {
    path: String,
    frames: Vec<Frame>,
}

impl Task for WriteTask {
    type Output = ();
    type JsValue = ();
    fn compute(&mut self) -> Result<Self::Output> {
        guarded("writeXyz", || xyz::write_xyz(&self.path, &self.frames).map_err(|e| with_path(&self.path, e)))
    }
    fn resolve(&mut self, _env: Env, _output: ()) -> Result<()> {
        Ok(())
    }
}

/// Writes frames to a file off the event loop.
#[napi(ts_return_type = "Promise<void>")]
pub fn write_xyz(path: String, frames: Vec<FrameData>) -> Result<AsyncTask<WriteTask>> {
    guarded("writeXyz", || Ok(AsyncTask::new(WriteTask { path, frames: frames_from_js(&frames)? })))
}

type SharedReader = Arc<Mutex<CoreReader<BufReader<File>>>>;

/// A streaming reader: frames are parsed in batches off the event loop.
#[napi]
pub struct XyzReader {
    inner: SharedReader,
    path: String,
}

#[napi]
impl XyzReader {
    /// Opens `path` for streaming.
    #[napi(constructor)]
    pub fn new(path: String) -> Result<Self> {
        guarded("iterXyz", || {
            let file = File::open(&path).map_err(|e| crate::errors::io_error(&path, e))?;
            Ok(XyzReader { inner: Arc::new(Mutex::new(CoreReader::new(BufReader::new(file)))), path })
        })
    }

    /// Reads up to `count` frames off the event loop; an empty array at the end.
    #[napi(ts_return_type = "Promise<Array<FrameData>>")]
    pub fn next(&self, count: u32) -> AsyncTask<NextTask> {
        AsyncTask::new(NextTask { reader: self.inner.clone(), count: count.max(1) as usize, path: self.path.clone() })
    }
}

/// Reading the next batch of a stream.
pub struct NextTask {
    reader: SharedReader,
    count: usize,
    path: String,
}

impl Task for NextTask {
    type Output = Vec<Frame>;
    type JsValue = Vec<FrameData>;
    fn compute(&mut self) -> Result<Self::Output> {
        guarded("iterXyz", || {
            let mut reader = self.reader.lock().map_err(|_| Error::from_reason("xyz reader was poisoned by an earlier error"))?;
            // the batch size is the caller's wish, not a promise of frames:
            // grow with what is read rather than reserving it up front
            let mut out = Vec::with_capacity(self.count.min(1024));
            for frame in reader.by_ref().take(self.count) {
                out.push(frame.map_err(|e| with_path(&self.path, e))?);
            }
            Ok(out)
        })
    }
    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(output.into_iter().map(frame_to_js).collect())
    }
}
