//! The native i-PI driver loop: a thread of its own owns the socket, runs
//! `acdc_core::io::ipi::drive` with the potential's predict, and settles a
//! Promise when the server sends EXIT or the run fails. js/drivers/ipi.ts
//! checks the options and chooses this loop or its own.
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acdc_core::io::ipi::{drive, on_own_pool, DriveOptions, DriveSummary, IpiError, IpiErrorKind};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{coded, ensure_thread_pool, guarded, to_napi};
use crate::potentials::NativePotential;

/// Atoms per batch handed to the model (one structure per step: any value ≥ N).
const BATCH_ATOMS: usize = 512;

/// Settings of a native run, checked by the JS layer.
#[napi(object, object_to_js = false)]
pub struct IpiDriveData {
    /// Unix socket path (absolute), or absent for TCP.
    pub unix: Option<String>,
    /// TCP host, with `port`.
    pub host: Option<String>,
    /// TCP port.
    pub port: Option<u32>,
    /// Atomic numbers in the server's order (absent: `single_species` for every atom).
    pub species: Option<Int32Array>,
    /// The model's single species.
    pub single_species: Option<i32>,
    /// Send the energy variance (eV²) in the extra string.
    pub variance: bool,
    /// A close between steps after at least one reply ends the run.
    pub exit_on_close: bool,
    /// Seconds to wait for each message and for the server to read a reply;
    /// connecting is retried every 0.1 s for at most min(timeout, 30) s.
    pub timeout: f64,
}

/// What a native run did (seconds).
#[napi(object, object_from_js = false)]
pub struct IpiDriveSummaryData {
    /// FORCEREADY replies sent.
    pub steps: f64,
    /// Seconds in the model.
    pub model_seconds: f64,
    /// Seconds of the loop's own work.
    pub protocol_seconds: f64,
    /// Of those, up to and including the first reply.
    pub first_protocol_seconds: f64,
    /// Seconds from connection to the end.
    pub seconds: f64,
}

/// Stops a native run: sets its flag and shuts its socket down, so that a
/// read or write blocked on the server returns at once.
#[napi]
pub struct IpiCancel {
    flag: Arc<AtomicBool>,
    socket: Arc<Mutex<Option<Stream>>>,
}

#[napi]
impl IpiCancel {
    /// A handle not yet used.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        IpiCancel { flag: Arc::new(AtomicBool::new(false)), socket: Arc::new(Mutex::new(None)) }
    }

    /// Ends the run it was given to (it rejects with an AbortError).
    #[napi]
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Ok(guard) = self.socket.lock() {
            if let Some(s) = guard.as_ref() {
                s.shutdown();
            }
        }
    }
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn shutdown(&self) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }

    fn try_clone(&self) -> std::io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }

    fn set_timeouts(&self, t: Duration) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => {
                s.set_read_timeout(Some(t))?;
                s.set_write_timeout(Some(t))
            }
            Stream::Tcp(s) => {
                s.set_read_timeout(Some(t))?;
                s.set_write_timeout(Some(t))
            }
        }
    }
}

impl std::io::Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl std::io::Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Target {
    Unix(String),
    Tcp(String, u16),
}

fn io_err(message: String) -> napi::Error {
    coded("ACDC_IO", "", message)
}

fn where_of(t: &Target) -> String {
    match t {
        Target::Unix(p) => format!("unix socket {p}"),
        Target::Tcp(h, p) => format!("{h}:{p}"),
    }
}

fn connect_once(t: &Target) -> std::io::Result<Stream> {
    match t {
        Target::Unix(p) => UnixStream::connect(p).map(Stream::Unix),
        Target::Tcp(h, port) => {
            let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, format!("no address for {h}"));
            for a in (h.as_str(), *port).to_socket_addrs()? {
                match TcpStream::connect(a) {
                    Ok(s) => {
                        // replies are small and answer a request each: Nagle's
                        // algorithm would hold them for the server's delayed ACK
                        s.set_nodelay(true)?;
                        return Ok(Stream::Tcp(s));
                    }
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
    }
}

/// Connects, retrying every 0.1 s while the socket is not there yet or
/// refuses, for at most `window` (as the JS driver does).
fn connect(t: &Target, window: Duration, cancel: &AtomicBool) -> Result<Stream> {
    let until = Instant::now() + window;
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err(coded("ABORT_ERR", "", "cancelled"));
        }
        match connect_once(t) {
            Ok(s) => return Ok(s),
            Err(e) => {
                let retry = matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused);
                if !retry || Instant::now() >= until {
                    let code = match e.kind() {
                        std::io::ErrorKind::NotFound => " ENOENT",
                        std::io::ErrorKind::ConnectionRefused => " ECONNREFUSED",
                        _ => "",
                    };
                    let retried = if retry { format!(" (retried for {} s)", acdc_core::io::ipi::js_number(window.as_secs_f64())) } else { String::new() };
                    return Err(io_err(format!("cannot connect to the i-PI server at {}: connect{code}: {e}{retried}", where_of(t))));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn error_to_napi(e: IpiError) -> napi::Error {
    match e {
        IpiError::Model(e) => to_napi(e),
        IpiError::Protocol { kind, message } => {
            let code = match kind {
                IpiErrorKind::Io => "ACDC_IO",
                IpiErrorKind::Parse => "ACDC_PARSE",
                IpiErrorKind::InvalidSystem => "ACDC_INVALID_SYSTEM",
                IpiErrorKind::InvalidParameter => "ACDC_INVALID_PARAMETER",
                IpiErrorKind::Numerical => "ACDC_NUMERICAL",
                IpiErrorKind::Cancelled => "ABORT_ERR",
            };
            coded(code, "", message)
        }
    }
}

fn summary_to_js(s: DriveSummary, seconds: f64) -> IpiDriveSummaryData {
    IpiDriveSummaryData {
        steps: s.steps as f64,
        model_seconds: s.model_seconds,
        protocol_seconds: s.protocol_seconds,
        first_protocol_seconds: s.first_protocol_seconds,
        seconds,
    }
}

/// The whole run, on the driver's thread: connect, drive, close.
fn run(potential: Arc<acdc_core::models::Potential>, target: Target, options: DriveOptions, socket: Arc<Mutex<Option<Stream>>>) -> Result<IpiDriveSummaryData> {
    let window = options.timeout.min(Duration::from_secs(30));
    let mut stream = connect(&target, window, &options.cancel)?;
    let started = Instant::now();
    stream.set_timeouts(options.timeout).map_err(|e| io_err(format!("the i-PI connection to {} failed: {e}", options.address)))?;
    // the cancel handle gets a second descriptor of the same socket; a
    // cancel that came while connecting finds it here
    if let Ok(clone) = stream.try_clone() {
        if let Ok(mut guard) = socket.lock() {
            *guard = Some(clone);
        }
    }
    if options.cancel.load(Ordering::SeqCst) {
        return Err(coded("ABORT_ERR", "", "cancelled"));
    }
    let cancel = Some(options.cancel.clone());
    let threads = acdc_core::parallel::num_threads();
    let mut work = || {
        let mut evaluate = |system: &acdc_core::System, o: &acdc_core::models::PredictOptions| potential.predict_within(std::slice::from_ref(system), o, BATCH_ATOMS, &cancel, None);
        drive(&mut stream, &mut evaluate, &options)
    };
    // ACDC_IPI_POOL=global (for bench/ipi_floor.mjs's comparison): the model
    // runs on the process-wide pool, handed over every step
    let out = if std::env::var("ACDC_IPI_POOL").is_ok_and(|v| v == "global") { work() } else { on_own_pool(threads, work).and_then(|r| r) };
    if let Ok(mut guard) = socket.lock() {
        *guard = None;
    }
    match out {
        Ok(s) => {
            // EXIT: nothing more is owed either way
            stream.shutdown();
            Ok(summary_to_js(s, started.elapsed().as_secs_f64()))
        }
        Err(e) => Err(error_to_napi(e)),
    }
}

#[napi]
impl NativePotential {
    /// Drives an i-PI server with this potential on a thread of its own;
    /// resolves when the server sends EXIT (see driveIpi in js/drivers/ipi.ts).
    #[napi(ts_return_type = "Promise<IpiDriveSummaryData>")]
    pub fn drive_ipi<'env>(&self, env: &'env Env, data: IpiDriveData, cancel: &IpiCancel) -> Result<Object<'env>> {
        let (target, options) = guarded("driveIpi", || {
            ensure_thread_pool();
            let target = match (&data.unix, &data.host, data.port) {
                (Some(p), None, None) => Target::Unix(p.clone()),
                (None, Some(h), Some(port)) if (1..=65535).contains(&port) => Target::Tcp(h.clone(), port as u16),
                _ => return Err(coded("ACDC_INVALID_PARAMETER", "", "driveIpi: give either a unix socket path or a host and a port (1 to 65535)")),
            };
            if !(data.timeout.is_finite() && data.timeout > 0.0 && data.timeout <= 2e6) {
                return Err(coded("ACDC_INVALID_PARAMETER", "", format!("driveIpi: timeout must be a positive number of seconds (at most 2e6), got {}", data.timeout)));
            }
            let species = data.species.as_ref().map(|s| s.to_vec());
            let single = match (&species, data.single_species) {
                (Some(_), _) => 0,
                (None, Some(z)) => z,
                (None, None) => return Err(coded("ACDC_INVALID_PARAMETER", "", "driveIpi: give species or the model's single species")),
            };
            let address = match &target {
                Target::Unix(p) => format!("unix socket {p}"),
                Target::Tcp(h, p) => format!("{h}:{p}"),
            };
            let options = DriveOptions {
                species,
                single_species: single,
                variance: data.variance,
                exit_on_close: data.exit_on_close,
                timeout: Duration::from_secs_f64(data.timeout),
                cancel: cancel.flag.clone(),
                address,
            };
            Ok((target, options))
        })?;
        let (deferred, promise) = env.create_deferred()?;
        let potential = self.inner.clone();
        let socket = cancel.socket.clone();
        let spawned = std::thread::Builder::new().name("acdc-ipi".into()).spawn(move || {
            let out = guarded("driveIpi", || run(potential, target, options, socket));
            match out {
                Ok(summary) => deferred.resolve(move |_| Ok(summary)),
                Err(e) => deferred.reject(e),
            }
        });
        if let Err(e) = spawned {
            return Err(coded("ACDC_IO", "", format!("driveIpi: cannot start the driver thread: {e}")));
        }
        Ok(promise)
    }
}
