//! The fused path of `acdc featurize`: frames read straight into core
//! systems (JS sees only their atom counts and species), and design-matrix
//! rows computed, reduced, placed and appended to a `.npy` file off the
//! event loop, without an intermediate JS TensorMap.
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::sync::{Arc, Mutex};

use acdc_core::budget::parse_size;
use acdc_core::calculators::{from_name, Calculator, ComputeOptions};
use acdc_core::design_rows::{design_rows, DesignLayout, RowReduction};
use acdc_core::io::npy;
use acdc_core::io::xyz::XyzReader as CoreReader;
use acdc_core::System;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::calculators::{check_memory_variable, CancelToken};
use crate::errors::{ensure_thread_pool, guarded, to_napi};
use crate::tensor::{labels_to_js, LabelsData};

fn io_error(path: &str, e: impl std::fmt::Display) -> Error {
    Error::new(Status::InvalidArg, format!("{path}: {e}"))
}

/// A batch of structures read by [`XyzSystemReader`], held natively until a
/// [`DesignRowWriter`] consumes it.
#[napi]
pub struct SystemBatch {
    systems: Arc<Mutex<Option<Vec<System>>>>,
    sizes: Vec<u32>,
    types: Vec<i32>,
}

#[napi]
impl SystemBatch {
    /// Number of structures.
    #[napi(getter)]
    pub fn length(&self) -> u32 {
        self.sizes.len() as u32
    }

    /// Atom count of each structure.
    #[napi]
    pub fn sizes(&self) -> Uint32Array {
        Uint32Array::new(self.sizes.clone())
    }

    /// Atomic species of every atom, structure after structure.
    #[napi]
    pub fn types(&self) -> Int32Array {
        Int32Array::new(self.types.clone())
    }
}

type SharedReader = Arc<Mutex<CoreReader<BufReader<File>>>>;

/// A streaming extended XYZ reader whose batches stay native: only the
/// structures (species, positions, cell, pbc) are kept; info and extra
/// columns are dropped.
#[napi]
pub struct XyzSystemReader {
    inner: SharedReader,
    path: String,
}

#[napi]
impl XyzSystemReader {
    /// Opens `path` for streaming.
    #[napi(constructor)]
    pub fn new(path: String) -> Result<Self> {
        guarded("XyzSystemReader", || {
            let file = File::open(&path).map_err(|e| io_error(&path, e))?;
            Ok(XyzSystemReader { inner: Arc::new(Mutex::new(CoreReader::new(BufReader::new(file)))), path })
        })
    }

    /// Reads up to `count` frames off the event loop; an empty batch at the end.
    #[napi(ts_return_type = "Promise<SystemBatch>")]
    pub fn next(&self, count: u32) -> AsyncTask<NextSystemsTask> {
        AsyncTask::new(NextSystemsTask { reader: self.inner.clone(), count: count.max(1) as usize, path: self.path.clone() })
    }
}

/// Reading the next batch of structures.
pub struct NextSystemsTask {
    reader: SharedReader,
    count: usize,
    path: String,
}

impl Task for NextSystemsTask {
    type Output = SystemBatch;
    type JsValue = SystemBatch;
    fn compute(&mut self) -> Result<SystemBatch> {
        guarded("XyzSystemReader.next", || {
            let mut reader = self.reader.lock().map_err(|_| Error::from_reason("xyz reader was poisoned by an earlier error"))?;
            // the batch size is the caller's wish, not a promise of frames
            let mut systems = Vec::with_capacity(self.count.min(1024));
            let mut sizes = Vec::with_capacity(self.count.min(1024));
            let mut types = Vec::new();
            for frame in reader.by_ref().take(self.count) {
                let system = frame.map_err(|e| io_error(&self.path, e))?.system;
                sizes.push(system.size() as u32);
                types.extend_from_slice(&system.types);
                systems.push(system);
            }
            Ok(SystemBatch { systems: Arc::new(Mutex::new(Some(systems))), sizes, types })
        })
    }
    fn resolve(&mut self, _env: Env, output: SystemBatch) -> Result<SystemBatch> {
        Ok(output)
    }
}

fn scalar(dtype: &str) -> Result<npy::Scalar> {
    match dtype {
        "float64" => Ok(npy::Scalar::F64),
        "float32" => Ok(npy::Scalar::F32),
        other => Err(Error::new(Status::InvalidArg, format!("dtype must be \"float64\" or \"float32\", got \"{other}\""))),
    }
}

struct WriterState {
    path: String,
    scalar: npy::Scalar,
    out: Option<npy::NpyRowWriter<BufWriter<File>>>,
    finished: bool,
}

/// Design-matrix rows of a SOAP power (or radial) spectrum for a fixed
/// species list, appended batch by batch to a 2-D `.npy` file: per atom
/// (reduction "atom") or per structure ("sum", "mean", "species-mean").
/// The file is created by the first `append`.
#[napi]
pub struct DesignRowWriter {
    calculator: Arc<dyn Calculator>,
    layout: Arc<DesignLayout>,
    state: Arc<Mutex<WriterState>>,
}

#[napi]
impl DesignRowWriter {
    /// `calculator`: soap_power_spectrum or soap_radial_spectrum, with its
    /// JSON hyper-parameters; `species`: the centre and neighbour species of
    /// the columns; `reduction`: "atom", "sum", "mean" or "species-mean";
    /// `dtype`: "float64" (default) or "float32".
    #[napi(constructor)]
    pub fn new(path: String, calculator: String, hypers: String, species: Int32Array, reduction: String, dtype: Option<String>) -> Result<Self> {
        guarded("DesignRowWriter", || {
            ensure_thread_pool();
            let scalar = scalar(dtype.as_deref().unwrap_or("float64"))?;
            let reduction = RowReduction::from_name(&reduction).map_err(to_napi)?;
            let calculator: Arc<dyn Calculator> = Arc::from(from_name(&calculator, &hypers).map_err(to_napi)?);
            let layout = DesignLayout::for_calculator(calculator.as_ref(), &species, reduction).map_err(to_napi)?;
            let state = WriterState { path, scalar, out: None, finished: false };
            Ok(DesignRowWriter { calculator, layout: Arc::new(layout), state: Arc::new(Mutex::new(state)) })
        })
    }

    /// Number of columns.
    #[napi(getter)]
    pub fn columns(&self) -> u32 {
        self.layout.columns() as u32
    }

    /// The column labels ((center_type,) neighbour types, properties).
    #[napi]
    pub fn column_labels(&self) -> LabelsData {
        labels_to_js(self.layout.column_labels())
    }

    /// Computes the rows of `batch` (which it consumes) and appends them,
    /// off the event loop; resolves to the number of rows appended.
    /// `maxMemory` bounds the computation; `token` cancels it.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn append(&self, batch: &SystemBatch, max_memory: Option<String>, token: Option<&CancelToken>) -> Result<AsyncTask<AppendTask>> {
        guarded("DesignRowWriter.append", || {
            check_memory_variable()?;
            let max_memory = max_memory.as_deref().map(|m| parse_size("maxMemory", m)).transpose().map_err(to_napi)?;
            let systems = batch
                .systems
                .lock()
                .map_err(|_| Error::from_reason("batch was poisoned by an earlier error"))?
                .take()
                .ok_or_else(|| Error::new(Status::InvalidArg, "this batch was already appended".to_string()))?;
            let options = ComputeOptions { max_memory, cancel: token.map(|t| t.flag()), ..Default::default() };
            Ok(AsyncTask::new(AppendTask {
                calculator: self.calculator.clone(),
                layout: self.layout.clone(),
                state: self.state.clone(),
                systems,
                options,
            }))
        })
    }

    /// Finishes the file; returns the number of rows written.
    #[napi]
    pub fn finish(&self) -> Result<u32> {
        guarded("DesignRowWriter.finish", || {
            let mut state = self.state.lock().map_err(|_| Error::from_reason("writer was poisoned by an earlier error"))?;
            if state.finished {
                return Err(io_error(&state.path, "writer already finished"));
            }
            state.finished = true;
            let path = state.path.clone();
            let out = match state.out.take() {
                Some(out) => out,
                None => {
                    let file = File::create(&path).map_err(|e| io_error(&path, e))?;
                    npy::NpyRowWriter::new(BufWriter::new(file), self.layout.columns(), state.scalar).map_err(|e| io_error(&path, e))?
                }
            };
            let rows = out.rows();
            let out = out.finish().map_err(|e| io_error(&path, e))?;
            out.into_inner().map_err(|e| io_error(&path, e.error()))?;
            Ok(rows as u32)
        })
    }
}

/// Computing and appending one batch.
pub struct AppendTask {
    calculator: Arc<dyn Calculator>,
    layout: Arc<DesignLayout>,
    state: Arc<Mutex<WriterState>>,
    systems: Vec<System>,
    options: ComputeOptions,
}

impl Task for AppendTask {
    type Output = u32;
    type JsValue = u32;
    fn compute(&mut self) -> Result<u32> {
        guarded("DesignRowWriter.append", || {
            ensure_thread_pool();
            let rows = design_rows(self.calculator.as_ref(), &self.systems, &self.layout, &self.options).map_err(to_napi)?;
            // the structures are no longer needed: free them before writing
            self.systems = Vec::new();
            let mut state = self.state.lock().map_err(|_| Error::from_reason("writer was poisoned by an earlier error"))?;
            if state.finished {
                return Err(io_error(&state.path, "writer already finished"));
            }
            let path = state.path.clone();
            let scalar = state.scalar;
            let out = match &mut state.out {
                Some(out) => out,
                none => {
                    let file = File::create(&path).map_err(|e| io_error(&path, e))?;
                    none.insert(npy::NpyRowWriter::new(BufWriter::new(file), rows.columns, scalar).map_err(|e| io_error(&path, e))?)
                }
            };
            if rows.rows > 0 {
                out.append(&rows.values).map_err(|e| io_error(&path, e))?;
            }
            Ok(rows.rows as u32)
        })
    }
    fn resolve(&mut self, _env: Env, rows: u32) -> Result<u32> {
        Ok(rows)
    }
}
