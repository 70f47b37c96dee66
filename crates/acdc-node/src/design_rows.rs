//! The fused path of `acdc featurize`: frames read straight into core
//! systems (JS sees only their atom counts and species), and design-matrix
//! rows computed, reduced, placed and appended to a `.npy` file off the
//! event loop, without an intermediate JS TensorMap.
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Seek, Write};
use std::sync::{Arc, Mutex};

use acdc_core::budget::parse_size;
use acdc_core::calculators::{Calculator, ComputeOptions};
use acdc_core::design_rows::{design_rows_into, DesignLayout, RowBuffer, RowReduction};
use acdc_core::io::npy;
use acdc_core::io::sparse_file::SparseFile;
use acdc_core::io::xyz::XyzReader as CoreReader;
use acdc_core::System;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::calculators::{check_memory_variable, CancelToken, NativeCalculator};
use crate::errors::{ensure_thread_pool, guarded, to_napi};
use crate::tensor::{labels_to_js, LabelsData};

fn io_error(path: &str, e: impl std::fmt::Display) -> Error {
    crate::errors::io_error(path, e)
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

/// A file, or extended XYZ text held in memory (a request body).
type SharedReader = Arc<Mutex<CoreReader<Box<dyn BufRead + Send>>>>;

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
            let input: Box<dyn BufRead + Send> = Box::new(BufReader::new(file));
            Ok(XyzSystemReader { inner: Arc::new(Mutex::new(CoreReader::new(input))), path })
        })
    }

    /// A reader of extended XYZ `text` held in memory (no file); `name`
    /// stands for the path in error messages ("body: parse error at line 3: …").
    #[napi(factory)]
    pub fn from_text(text: String, name: String) -> Self {
        let input: Box<dyn BufRead + Send> = Box::new(Cursor::new(text.into_bytes()));
        XyzSystemReader { inner: Arc::new(Mutex::new(CoreReader::new(input))), path: name }
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

/// Rows waiting to be written, in order, by the writer thread.
type Rows = (RowBuffer, usize);

/// What the writer thread leaves: rows written, the in-memory image, the CRC-32.
type Written = (u32, Option<Vec<u8>>, Option<u32>);

/// Buffers kept across writers, so that a server answering request after
/// request does not fault fresh pages in for every answer (a 9 MB answer
/// is 2 300 page faults for its image, as many for its rows): at most
/// [`POOL_ENTRIES`] of each kind, none above [`POOL_ENTRY_BYTES`].
static SPARE_IMAGES: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
static SPARE_ROWS: Mutex<Vec<RowBuffer>> = Mutex::new(Vec::new());
const POOL_ENTRIES: usize = 4;
const POOL_ENTRY_BYTES: usize = 16 << 20;

/// A pooled image of at least `bytes` (and at most twice that), emptied.
fn pooled_image(bytes: usize) -> Option<Vec<u8>> {
    let mut pool = SPARE_IMAGES.lock().ok()?;
    let k = pool.iter().position(|v| v.capacity() >= bytes && v.capacity() <= 2 * bytes)?;
    let mut image = pool.swap_remove(k);
    image.clear();
    Some(image)
}

fn give_image(image: Vec<u8>) {
    if image.capacity() > POOL_ENTRY_BYTES {
        return;
    }
    if let Ok(mut pool) = SPARE_IMAGES.lock() {
        if pool.len() >= POOL_ENTRIES {
            pool.remove(0);
        }
        pool.push(image);
    }
}

fn pooled_rows() -> Option<RowBuffer> {
    SPARE_ROWS.lock().ok()?.pop()
}

fn give_rows(rows: Vec<RowBuffer>) {
    if let Ok(mut pool) = SPARE_ROWS.lock() {
        for r in rows {
            if r.values.capacity() * 8 > POOL_ENTRY_BYTES {
                continue;
            }
            if pool.len() >= POOL_ENTRIES {
                pool.remove(0);
            }
            pool.push(r);
        }
    }
}

/// The `.npy` file, written by a thread of its own so that writing batch k
/// overlaps computing batch k + 1. Buffers come back for reuse.
struct WriterState {
    /// the file, or the name of an in-memory answer in messages
    path: String,
    /// `Some(bytes to reserve)`: the `.npy` is built in memory instead of a file
    memory: Option<usize>,
    /// the in-memory `.npy`, once finished
    image: Option<Vec<u8>>,
    /// whether the writer computes the CRC-32 of the file it writes
    checksum: bool,
    /// that CRC-32, once finished
    crc32: Option<u32>,
    scalar: npy::Scalar,
    /// created by the first append (rows go to the thread through it)
    sender: Option<std::sync::mpsc::SyncSender<Rows>>,
    thread: Option<std::thread::JoinHandle<Result<Written>>>,
    /// buffers the writer thread is done with
    spare: Arc<Mutex<Vec<RowBuffer>>>,
    /// the first write error, reported by the next append or by finish
    failed: Arc<Mutex<Option<String>>>,
    finished: bool,
}

impl WriterState {
    fn check(&self) -> Result<()> {
        if self.finished {
            return Err(io_error(&self.path, "writer already finished"));
        }
        match self.failed.lock().ok().and_then(|f| f.clone()) {
            Some(message) => Err(Error::new(Status::GenericFailure, message)),
            None => Ok(()),
        }
    }

    /// Creates the file (or the in-memory image) and the thread that writes
    /// rows of `columns` values.
    fn start(&mut self, columns: usize) -> Result<()> {
        let path = self.path.clone();
        // one batch may wait while another is written: memory stays bounded
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Rows>(1);
        let (spare, failed) = (self.spare.clone(), self.failed.clone());
        let thread = match self.memory {
            Some(reserve) => {
                let mut image = pooled_image(reserve).unwrap_or_default();
                image
                    .try_reserve_exact(reserve)
                    .map_err(|_| Error::new(Status::GenericFailure, format!("{path}: cannot allocate {reserve} bytes for the answer")))?;
                let mut out = npy::NpyRowWriter::new(Cursor::new(image), columns, self.scalar).map_err(|e| io_error(&path, e))?;
                if self.checksum {
                    out = out.with_crc32();
                }
                spawn_writer(out, columns, receiver, spare, failed, path, |c: Cursor<Vec<u8>>| Some(c.into_inner()))
            }
            None => {
                let file = File::create(&path).map_err(|e| io_error(&path, e))?;
                // zero pages (absent species combinations) are left as holes
                let mut out = npy::NpyRowWriter::new(SparseFile::new(file), columns, self.scalar).map_err(|e| io_error(&path, e))?;
                if self.checksum {
                    out = out.with_crc32();
                }
                spawn_writer(out, columns, receiver, spare, failed, path, |_| None)
            }
        }
        .map_err(|e| io_error(&self.path, format!("cannot start the writer thread: {e}")))?;
        self.sender = Some(sender);
        self.thread = Some(thread);
        Ok(())
    }

    /// Stops the thread (after it has written what it holds); its row count.
    /// An in-memory image is kept for [`DesignRowWriter::take_npy`].
    fn stop(&mut self) -> Result<u32> {
        self.sender = None;
        match self.thread.take() {
            Some(thread) => {
                let (rows, image, crc32) = thread.join().map_err(|_| Error::from_reason(format!("{}: the writer thread panicked", self.path)))??;
                self.image = image;
                self.crc32 = crc32;
                // finished: its row buffers serve the next writer at once
                // (not when the JS object is collected)
                if let Ok(mut spare) = self.spare.lock() {
                    give_rows(std::mem::take(&mut *spare));
                }
                Ok(rows)
            }
            None => Ok(0),
        }
    }
}

/// The thread that appends rows to `out` as they arrive and finishes the
/// array when the channel closes; `image` keeps what an in-memory target holds.
fn spawn_writer<W: Write + Seek + Send + 'static>(
    mut out: npy::NpyRowWriter<W>,
    columns: usize,
    receiver: std::sync::mpsc::Receiver<Rows>,
    spare: Arc<Mutex<Vec<RowBuffer>>>,
    failed: Arc<Mutex<Option<String>>>,
    path: String,
    image: fn(W) -> Option<Vec<u8>>,
) -> std::io::Result<std::thread::JoinHandle<Result<Written>>> {
    std::thread::Builder::new().name("acdc-npy-writer".into()).spawn(move || -> Result<Written> {
        let fail = |e: String| {
            if let Ok(mut f) = failed.lock() {
                f.get_or_insert(e.clone());
            }
            Error::new(Status::GenericFailure, e)
        };
        for (values, rows) in receiver {
            if rows > 0 {
                out.append(&values.values[..rows * columns]).map_err(|e| fail(crate::errors::to_napi_in(&path, e).reason))?;
            }
            if let Ok(mut spare) = spare.lock() {
                spare.push(values);
            }
        }
        let rows = out.rows();
        let (w, crc32) = out.finish_with_crc32().map_err(|e| fail(crate::errors::to_napi_in(&path, e).reason))?;
        Ok((rows as u32, image(w), crc32))
    })
}

impl Drop for WriterState {
    fn drop(&mut self) {
        // an abandoned writer (an error in JS) still closes its file
        let _ = self.stop();
        if let Some(image) = self.image.take() {
            give_image(image);
        }
        if let Ok(mut spare) = self.spare.lock() {
            give_rows(std::mem::take(&mut *spare));
        }
    }
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
    /// `calculator`: one with design rows in `calculatorRegistry()`;
    /// `species`: the centre and neighbour species of the columns;
    /// `reduction`: "atom", "sum", "mean" or "species-mean"; `dtype`:
    /// "float64" (default) or "float32"; `checksum`: also compute the
    /// CRC-32 of the file as it is written ([`DesignRowWriter::crc32`]).
    #[napi(constructor)]
    pub fn new(path: String, calculator: &NativeCalculator, species: Int32Array, reduction: String, dtype: Option<String>, max_memory: Option<String>, checksum: Option<bool>) -> Result<Self> {
        Self::create(path, None, calculator, species, reduction, dtype, max_memory, checksum.unwrap_or(false))
    }

    /// A writer whose `.npy` is built in memory (the bytes the file would
    /// hold) and taken with [`DesignRowWriter::take_npy`] once finished:
    /// for answers that go to a socket, not a disk. `name` names it in
    /// messages; `rows`: the rows expected, to reserve the memory at once
    /// (checked against `maxMemory` first).
    #[napi(factory)]
    pub fn in_memory(name: String, rows: u32, calculator: &NativeCalculator, species: Int32Array, reduction: String, dtype: Option<String>, max_memory: Option<String>) -> Result<Self> {
        Self::create(name, Some(rows as usize), calculator, species, reduction, dtype, max_memory, false)
    }

    #[allow(clippy::too_many_arguments)]
    fn create(path: String, memory_rows: Option<usize>, calculator: &NativeCalculator, species: Int32Array, reduction: String, dtype: Option<String>, max_memory: Option<String>, checksum: bool) -> Result<Self> {
        guarded("DesignRowWriter", || {
            ensure_thread_pool();
            let scalar = scalar(dtype.as_deref().unwrap_or("float64"))?;
            let reduction = RowReduction::from_name(&reduction).map_err(to_napi)?;
            let calculator = calculator.shared();
            let max_memory = max_memory.as_deref().map(|m| parse_size("maxMemory", m)).transpose().map_err(to_napi)?;
            let budget = acdc_core::budget::MemoryBudget::or_global(max_memory);
            let layout = DesignLayout::for_calculator_within(calculator.as_ref(), &species, reduction, budget).map_err(to_napi)?;
            let memory = match memory_rows {
                Some(rows) => {
                    let bytes = (rows as f64) * (layout.columns() as f64) * (if scalar == npy::Scalar::F32 { 4.0 } else { 8.0 }) + 4096.0;
                    budget.check("the in-memory .npy answer", bytes).map_err(to_napi)?;
                    Some(bytes as usize)
                }
                None => None,
            };
            let state = WriterState {
                path,
                memory,
                image: None,
                checksum,
                crc32: None,
                scalar,
                sender: None,
                thread: None,
                spare: Arc::new(Mutex::new(Vec::new())),
                failed: Arc::new(Mutex::new(None)),
                finished: false,
            };
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

    /// Stops writing without finishing the file (after an error): waits
    /// for the writer thread so that the file is closed.
    #[napi]
    pub fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.finished = true;
            let _ = state.stop();
        }
    }

    /// Finishes the file (waiting for the rows still being written);
    /// returns the number of rows written.
    #[napi]
    pub fn finish(&self) -> Result<u32> {
        guarded("DesignRowWriter.finish", || {
            let mut state = self.state.lock().map_err(|_| Error::from_reason("writer was poisoned by an earlier error"))?;
            state.check()?;
            if state.sender.is_none() {
                state.start(self.layout.columns())?;
            }
            state.finished = true;
            state.stop()
        })
    }

    /// The `.npy` bytes of an in-memory writer after `finish` (once: the
    /// buffer is handed over without a copy).
    #[napi]
    pub fn take_npy(&self) -> Result<Uint8Array> {
        guarded("DesignRowWriter.takeNpy", || {
            let mut state = self.state.lock().map_err(|_| Error::from_reason("writer was poisoned by an earlier error"))?;
            if !state.finished {
                return Err(Error::from_reason(format!("{}: the answer is not finished", state.path)));
            }
            let image = state.image.take().ok_or_else(|| Error::from_reason(format!("{}: no in-memory answer (a file writer, or already taken)", state.path)))?;
            Ok(Uint8Array::new(image))
        })
    }

    /// CRC-32 (IEEE, as zlib's `crc32`) of the whole `.npy` file, computed
    /// while it was written: null before `finish`, or without `checksum`.
    #[napi(getter)]
    pub fn crc32(&self) -> Option<u32> {
        self.state.lock().ok().and_then(|s| s.crc32)
    }

    /// Bytes of the finished in-memory `.npy` (0 before `finish`, or once taken).
    #[napi(getter)]
    pub fn npy_length(&self) -> i64 {
        self.state.lock().ok().and_then(|s| s.image.as_ref().map(|i| i.len() as i64)).unwrap_or(0)
    }

    /// Copies the finished in-memory `.npy` into `target` (at least
    /// `npyLength` bytes) and frees it; returns the bytes copied. For callers
    /// that reuse their answer buffers: every buffer handed to JS counts as
    /// external memory, and a few answers of megabytes make V8 collect
    /// garbage (tens of ms), while the copy costs about 1 ms per 10 MB.
    #[napi]
    pub fn take_npy_into(&self, mut target: Uint8Array) -> Result<i64> {
        guarded("DesignRowWriter.takeNpyInto", || {
            let mut state = self.state.lock().map_err(|_| Error::from_reason("writer was poisoned by an earlier error"))?;
            if !state.finished {
                return Err(Error::from_reason(format!("{}: the answer is not finished", state.path)));
            }
            let image = state.image.take().ok_or_else(|| Error::from_reason(format!("{}: no in-memory answer (a file writer, or already taken)", state.path)))?;
            // SAFETY: a synchronous call on the JS thread: no JavaScript runs,
            // and nothing else reads or writes the caller's array, while it is borrowed
            let into = unsafe { target.as_mut() };
            if into.len() < image.len() {
                let message = format!("{}: the target holds {} bytes, the answer {}", state.path, into.len(), image.len());
                state.image = Some(image);
                return Err(Error::new(Status::InvalidArg, message));
            }
            into[..image.len()].copy_from_slice(&image);
            let n = image.len();
            // the next answer of about this size reuses the memory
            give_image(image);
            Ok(n as i64)
        })
    }

    /// [`DesignRowWriter::finish`] off the event loop; resolves to the number of rows.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn finish_async(&self) -> AsyncTask<FinishTask> {
        AsyncTask::new(FinishTask { layout: self.layout.clone(), state: self.state.clone() })
    }
}

/// [`DesignRowWriter::finish`] on the thread pool: waiting for the rows
/// still being written (hundreds of MB for a large per-atom matrix) must not
/// hold the event loop.
pub struct FinishTask {
    layout: Arc<DesignLayout>,
    state: Arc<Mutex<WriterState>>,
}

impl Task for FinishTask {
    type Output = u32;
    type JsValue = u32;
    fn compute(&mut self) -> Result<u32> {
        guarded("DesignRowWriter.finishAsync", || {
            let mut state = self.state.lock().map_err(|_| Error::from_reason("writer was poisoned by an earlier error"))?;
            state.check()?;
            if state.sender.is_none() {
                state.start(self.layout.columns())?;
            }
            state.finished = true;
            state.stop()
        })
    }
    fn resolve(&mut self, _env: Env, output: u32) -> Result<u32> {
        Ok(output)
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
            let (sender, mut values) = {
                let state = self.state.lock().map_err(|_| Error::from_reason("writer was poisoned by an earlier error"))?;
                state.check()?;
                let values = state.spare.lock().ok().and_then(|mut s| s.pop()).or_else(pooled_rows).unwrap_or_default();
                (state.sender.clone(), values)
            };
            let rows = design_rows_into(self.calculator.as_ref(), &self.systems, &self.layout, &self.options, &mut values).map_err(to_napi)?;
            // the structures are no longer needed: free them before writing
            self.systems = Vec::new();
            let sender = match sender {
                Some(sender) => sender,
                None => {
                    let mut state = self.state.lock().map_err(|_| Error::from_reason("writer was poisoned by an earlier error"))?;
                    state.check()?;
                    if state.sender.is_none() {
                        state.start(self.layout.columns())?;
                    }
                    state.sender.clone().ok_or_else(|| Error::from_reason("writer thread missing"))?
                }
            };
            // blocks while the writer is a batch behind
            if sender.send((values, rows)).is_err() {
                let state = self.state.lock().map_err(|_| Error::from_reason("writer was poisoned by an earlier error"))?;
                state.check()?;
                return Err(io_error(&state.path, "the writer thread stopped"));
            }
            Ok(rows as u32)
        })
    }
    fn resolve(&mut self, _env: Env, rows: u32) -> Result<u32> {
        Ok(rows)
    }
}
