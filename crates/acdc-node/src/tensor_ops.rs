//! TensorMap operations and files (.mts, .npy): convert, call the core, convert back.
use std::fs::File;
use std::io::{BufReader, BufWriter};

use acdc_core::io::sparse_file::SparseFile;
use acdc_core::io::{mts, npy};
use acdc_core::tensor::{ops, Labels, TensorMap};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{guarded, to_napi};
use crate::external::Reporter;
use crate::tensor::{tensor_from_js, tensor_to_js, tensor_view_from_js, TensorMapData};

fn io_error(path: &str, e: impl std::fmt::Display) -> Error {
    crate::errors::io_error(path, e)
}

/// Moves key dimensions into properties; `values` (row-major, one row per
/// combination) fixes the columns, otherwise the values present are used.
/// CRC-32 (IEEE, as zlib's `crc32`) of `data`, continued from `previous`
/// (the CRC of the bytes before; 0 or absent to start).
#[napi]
pub fn crc32(data: Uint8Array, previous: Option<u32>) -> u32 {
    acdc_core::io::npy::crc32_continue(previous.unwrap_or(0), &data)
}

#[napi]
pub fn tensor_keys_to_properties(env: Env, tensor: TensorMapData, names: Vec<String>, values: Option<Int32Array>) -> Result<TensorMapData> {
    let _report = Reporter::sync(&env);
    guarded("keysToProperties", || {
        if names.is_empty() {
            return Err(Error::new(Status::InvalidArg, "keysToProperties: names must not be empty".to_string()));
        }
        let values = values.map(|v| v.to_vec()).unwrap_or_default();
        if values.len() % names.len() != 0 {
            return Err(Error::new(
                Status::InvalidArg,
                format!("keysToProperties: {} values are not whole rows of {} names", values.len(), names.len()),
            ));
        }
        let t = tensor_view_from_js("tensor", &tensor)?;
        ops::keys_to_properties(&t, &Labels { names, values }).map_err(to_napi).and_then(tensor_to_js)
    })
}

/// Moves key dimensions into samples.
#[napi]
pub fn tensor_keys_to_samples(env: Env, tensor: TensorMapData, names: Vec<String>) -> Result<TensorMapData> {
    let _report = Reporter::sync(&env);
    guarded("keysToSamples", || {
        if names.is_empty() {
            return Err(Error::new(Status::InvalidArg, "keysToSamples: names must not be empty".to_string()));
        }
        let t = tensor_view_from_js("tensor", &tensor)?;
        ops::keys_to_samples(&t, &names).map_err(to_napi).and_then(tensor_to_js)
    })
}

/// Sums (or averages) over the given sample dimensions.
#[napi]
pub fn tensor_reduce_over_samples(env: Env, tensor: TensorMapData, names: Vec<String>, mean: bool) -> Result<TensorMapData> {
    let _report = Reporter::sync(&env);
    guarded("sumOverSamples", || {
        let t = tensor_view_from_js("tensor", &tensor)?;
        ops::reduce_over_samples(&t, &names, mean).map_err(to_napi).and_then(tensor_to_js)
    })
}

/// Joins tensors of consecutive batches along samples, renumbering "system".
#[napi]
pub fn tensor_join(env: Env, tensors: Vec<TensorMapData>, system_counts: Option<Vec<u32>>) -> Result<TensorMapData> {
    let _report = Reporter::sync(&env);
    guarded("join", || {
        let ts = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| tensor_view_from_js(&format!("tensors[{i}]"), t))
            .collect::<Result<Vec<_>>>()?;
        let counts: Option<Vec<usize>> = system_counts.map(|c| c.into_iter().map(|x| x as usize).collect());
        ops::join_samples(&ts, counts.as_deref()).map_err(to_napi).and_then(tensor_to_js)
    })
}

fn save_mts<V: AsRef<[f64]>>(path: &str, t: &acdc_core::tensor::TensorMapOf<V>) -> Result<()> {
    let file = File::create(path).map_err(|e| io_error(path, e))?;
    let out = mts::save(BufWriter::new(file), t).map_err(|e| io_error(path, e))?;
    out.into_inner().map_err(|e| io_error(path, e.error()))?.sync_all().map_err(|e| io_error(path, e))
}

fn load_mts(path: &str) -> Result<TensorMap> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    mts::load(BufReader::new(file)).map_err(|e| io_error(path, e))
}

/// Writes a TensorMap to a metatensor `.mts` file.
#[napi]
pub fn tensor_save_sync(path: String, tensor: TensorMapData) -> Result<()> {
    guarded("save", || save_mts(&path, &tensor_view_from_js("tensor", &tensor)?))
}

/// Reads a metatensor `.mts` file.
#[napi]
pub fn tensor_load_sync(env: Env, path: String) -> Result<TensorMapData> {
    let _report = Reporter::sync(&env);
    guarded("load", || load_mts(&path).and_then(tensor_to_js))
}

/// Serialises a TensorMap to the bytes of a `.mts` file.
#[napi]
pub fn tensor_save_buffer(tensor: TensorMapData) -> Result<Uint8Array> {
    guarded("saveBuffer", || {
        let t = tensor_view_from_js("tensor", &tensor)?;
        let bytes = mts::save(std::io::Cursor::new(Vec::new()), &t).map_err(to_napi)?.into_inner();
        Ok(Uint8Array::new(bytes))
    })
}

/// Reads a TensorMap from the bytes of a `.mts` file.
#[napi]
pub fn tensor_load_buffer(env: Env, buffer: Uint8Array) -> Result<TensorMapData> {
    let _report = Reporter::sync(&env);
    guarded("loadBuffer", || mts::load(std::io::Cursor::new(&buffer[..])).map_err(to_napi).and_then(tensor_to_js))
}

/// Saving off the event loop (the tensor is copied first).
pub struct SaveTask {
    path: String,
    tensor: TensorMap,
}

impl Task for SaveTask {
    type Output = ();
    type JsValue = ();
    fn compute(&mut self) -> Result<()> {
        guarded("save", || save_mts(&self.path, &self.tensor))
    }
    fn resolve(&mut self, _env: Env, _output: ()) -> Result<()> {
        Ok(())
    }
}

/// Loading off the event loop.
pub struct LoadTask {
    path: String,
}

impl Task for LoadTask {
    type Output = TensorMap;
    type JsValue = TensorMapData;
    fn compute(&mut self) -> Result<TensorMap> {
        guarded("load", || load_mts(&self.path))
    }
    fn resolve(&mut self, env: Env, output: TensorMap) -> Result<TensorMapData> {
        let _report = Reporter::new(&env);
        tensor_to_js(output)
    }
}

/// Writes a `.mts` file off the event loop.
#[napi(ts_return_type = "Promise<void>")]
pub fn tensor_save(path: String, tensor: TensorMapData) -> Result<AsyncTask<SaveTask>> {
    guarded("save", || Ok(AsyncTask::new(SaveTask { path, tensor: tensor_from_js("tensor", &tensor)? })))
}

/// Reads a `.mts` file off the event loop.
#[napi(ts_return_type = "Promise<TensorMapData>")]
pub fn tensor_load(path: String) -> AsyncTask<LoadTask> {
    AsyncTask::new(LoadTask { path })
}

fn scalar(dtype: &str) -> Result<npy::Scalar> {
    match dtype {
        "float64" => Ok(npy::Scalar::F64),
        "float32" => Ok(npy::Scalar::F32),
        other => Err(Error::new(Status::InvalidArg, format!("dtype must be \"float64\" or \"float32\", got \"{other}\""))),
    }
}

/// A numeric array read from `.npy`.
#[napi(object)]
pub struct NpyData {
    /// values in C order, converted to float64
    pub data: Float64Array,
    /// dimensions (numbers: a dimension may exceed 2^32 when another is 0)
    pub shape: Vec<f64>,
    /// the dtype stored in the file ("<f8", "<f4", "<i4", "<i8")
    pub dtype: String,
}

/// Reads a numeric `.npy` file (f8, f4, i4, i8; converted to float64).
#[napi]
pub fn npy_read_sync(path: String) -> Result<NpyData> {
    guarded("readNpy", || {
        let bytes = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
        let a = npy::read(&bytes, &path).map_err(to_napi)?;
        let dtype = match &a.dtype {
            npy::Dtype::Plain { scalar, big_endian } => if *big_endian { scalar.descr().replace('<', ">") } else { scalar.descr().to_string() },
            npy::Dtype::Fields { .. } => "structured".to_string(),
        };
        let data = a.to_f64(&path).map_err(to_napi)?;
        // every dimension ≤ 2^53 is exact as a JS number; a larger one cannot
        // hold data and is refused rather than rounded
        if let Some(d) = a.shape.iter().find(|&&d| d as u64 > 1u64 << 53) {
            return Err(Error::new(Status::InvalidArg, format!("{path}: dimension {d} of shape {:?} is larger than 2^53", a.shape)));
        }
        Ok(NpyData { data: Float64Array::new(data), shape: a.shape.iter().map(|&d| d as f64).collect(), dtype })
    })
}

/// Writes a `.npy` file of `shape` from row-major `data` as float64 or float32.
#[napi]
pub fn npy_write_sync(path: String, data: Float64Array, shape: Vec<u32>, dtype: Option<String>) -> Result<()> {
    guarded("writeNpy", || {
        let scalar = scalar(dtype.as_deref().unwrap_or("float64"))?;
        let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        let file = File::create(&path).map_err(|e| io_error(&path, e))?;
        let mut out = BufWriter::new(file);
        npy::write_f64(&mut out, &shape, &data, scalar).map_err(to_napi)?;
        std::io::Write::flush(&mut out).map_err(|e| io_error(&path, e))
    })
}

/// A 2-D `.npy` file written row block by row block (the number of rows is
/// written into the header by `finish`); memory stays bounded by one block.
/// Whole pages of zeros are left as holes (`SparseFile`, as `acdc featurize`
/// writes its files): `acdc merge` of per-structure SOAP rows used to write
/// the merged matrix's zero pages (about half of it) into the page cache.
#[napi]
pub struct NpyRowWriter {
    path: String,
    inner: Option<npy::NpyRowWriter<SparseFile>>,
}

#[napi]
impl NpyRowWriter {
    /// Creates (truncates) `path` for rows of `columns` values.
    #[napi(constructor)]
    pub fn new(path: String, columns: u32, dtype: Option<String>) -> Result<Self> {
        guarded("NpyRowWriter", || {
            let scalar = scalar(dtype.as_deref().unwrap_or("float64"))?;
            let file = File::create(&path).map_err(|e| io_error(&path, e))?;
            let inner = npy::NpyRowWriter::new(SparseFile::new(file), columns as usize, scalar).map_err(|e| io_error(&path, e))?;
            Ok(NpyRowWriter { path, inner: Some(inner) })
        })
    }

    /// Appends whole rows (row-major).
    #[napi]
    pub fn append(&mut self, rows: Float64Array) -> Result<()> {
        let path = self.path.clone();
        let inner = self.inner.as_mut().ok_or_else(|| io_error(&path, "writer already finished"))?;
        guarded("NpyRowWriter.append", || inner.append(&rows).map_err(|e| io_error(&path, e)))
    }

    /// Finishes the file; returns the number of rows written.
    #[napi]
    pub fn finish(&mut self) -> Result<u32> {
        let path = self.path.clone();
        let inner = self.inner.take().ok_or_else(|| io_error(&path, "writer already finished"))?;
        guarded("NpyRowWriter.finish", || {
            let rows = inner.rows();
            // finish writes the header, then flushes: every buffered byte is
            // written and the file given its full length (a trailing hole too)
            inner.finish().map_err(|e| io_error(&path, e))?;
            Ok(rows as u32)
        })
    }
}

/// Reading `.npy` off the event loop.
pub struct NpyReadTask {
    path: String,
}

impl Task for NpyReadTask {
    type Output = NpyData;
    type JsValue = NpyData;
    fn compute(&mut self) -> Result<NpyData> {
        npy_read_sync(self.path.clone())
    }
    fn resolve(&mut self, _env: Env, output: NpyData) -> Result<NpyData> {
        Ok(output)
    }
}

/// Reads a numeric `.npy` file off the event loop.
#[napi(ts_return_type = "Promise<NpyData>")]
pub fn npy_read(path: String) -> AsyncTask<NpyReadTask> {
    AsyncTask::new(NpyReadTask { path })
}

/// Writing `.npy` off the event loop (the values are copied first).
pub struct NpyWriteTask {
    path: String,
    data: Vec<f64>,
    shape: Vec<usize>,
    scalar: npy::Scalar,
}

impl Task for NpyWriteTask {
    type Output = ();
    type JsValue = ();
    fn compute(&mut self) -> Result<()> {
        guarded("writeNpy", || {
            let file = File::create(&self.path).map_err(|e| io_error(&self.path, e))?;
            let mut out = BufWriter::new(file);
            npy::write_f64(&mut out, &self.shape, &self.data, self.scalar).map_err(to_napi)?;
            std::io::Write::flush(&mut out).map_err(|e| io_error(&self.path, e))
        })
    }
    fn resolve(&mut self, _env: Env, _output: ()) -> Result<()> {
        Ok(())
    }
}

/// Writes a `.npy` file off the event loop.
#[napi(ts_return_type = "Promise<void>")]
pub fn npy_write(path: String, data: Float64Array, shape: Vec<u32>, dtype: Option<String>) -> Result<AsyncTask<NpyWriteTask>> {
    let scalar = scalar(dtype.as_deref().unwrap_or("float64"))?;
    let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let expected: usize = shape.iter().product();
    if expected != data.len() {
        return Err(Error::new(Status::InvalidArg, format!("writeNpy: data has {} values but shape {shape:?} needs {expected}", data.len())));
    }
    Ok(AsyncTask::new(NpyWriteTask { path, data: data.to_vec(), shape, scalar }))
}
