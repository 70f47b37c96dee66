//! The client side of the i-PI socket protocol, run as one blocking loop on a
//! thread of its own: reads the server's messages, evaluates a model for
//! each POSDATA and writes FORCEREADY, until EXIT. The JavaScript driver
//! (`js/drivers/ipi.ts`) speaks the same protocol through Node's streams; this
//! loop gives the same replies, bit for bit, without the event loop, a
//! JavaScript call or a thread hand-over per message.
//!
//! Wire format (i-PI 3.3.1, `ipi/interfaces/sockets.py`): 12-byte ASCII
//! headers padded with spaces; little-endian int32 counts and float64 data;
//! atomic units (Bohr, Hartree); the cell h with the lattice vectors as
//! columns, sent row-major, then h⁻¹; the virial sent back is W = −V·σ in
//! Hartree. i-PI's own rounded conversion factors are used ([`BOHR_PER_ANGSTROM`]…),
//! so that what i-PI writes in Å and eV is what the model computed.
//!
//! Every size read from the socket is checked before anything is sized by
//! it, and buffers grow only with the bytes that actually arrived: a hostile
//! server can make the loop fail, not allocate gigabytes or panic.
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::models::potential::{PredictOptions, Prediction};
use crate::system::System;

/// Bohr per Å (i-PI 3.3.1 `UnitMap["length"]["angstrom"]`).
pub const BOHR_PER_ANGSTROM: f64 = 1.8897261;
/// Hartree per eV (i-PI 3.3.1 `UnitMap["energy"]["electronvolt"]`).
pub const HARTREE_PER_EV: f64 = 0.036749326;
/// Hartree/Bohr per eV/Å (i-PI 3.3.1 `UnitMap["force"]["ev/ang"]`).
pub const FORCE_PER_EV_PER_ANGSTROM: f64 = 0.019446904;

/// Length of every message header, in bytes.
pub const HEADER_LENGTH: usize = 12;
/// Most atoms a POSDATA message may announce (24 bytes each: at most 2 GiB of positions).
pub const MAX_ATOMS: usize = 0x7fff_ffff / 24;
/// Longest INIT parameter string accepted, in bytes.
pub const MAX_INIT_LENGTH: usize = 1 << 24;
/// Bytes read from the socket at most per call (the buffer grows in such steps, never by a size the server announced).
const READ_CHUNK: usize = 1 << 16;

/// Which kind of failure ended a run; the binding maps it to acdc's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpiErrorKind {
    /// The connection failed, closed early, or timed out (ACDC_IO).
    Io,
    /// A malformed message (ACDC_PARSE).
    Parse,
    /// The server's atoms do not fit the species (ACDC_INVALID_SYSTEM).
    InvalidSystem,
    /// The model returned something unusable (ACDC_INVALID_PARAMETER).
    InvalidParameter,
    /// The model returned a non-finite number (ACDC_NUMERICAL).
    Numerical,
    /// The caller cancelled the run (ABORT_ERR).
    Cancelled,
}

/// Why a run ended before EXIT: a protocol failure with its message (the
/// same text as the JavaScript driver's), or the model's own error.
#[derive(Debug, Clone, PartialEq)]
pub enum IpiError {
    /// A failure of the conversation.
    Protocol { kind: IpiErrorKind, message: String },
    /// The model (or building the structure) failed.
    Model(Error),
}

fn fail<T>(kind: IpiErrorKind, message: impl Into<String>) -> Result<T, IpiError> {
    Err(IpiError::Protocol { kind, message: message.into() })
}

/// Settings of [`drive`].
pub struct DriveOptions {
    /// Atomic species of the atoms in the server's order; when `None`, every
    /// atom gets `single_species` (a model of one species).
    pub species: Option<Vec<i32>>,
    /// The model's single species, used when `species` is `None`.
    pub single_species: i32,
    /// Ask the model for the energy variance and send it in the extra string
    /// as `{"energy_variance": …}` (eV²).
    pub variance: bool,
    /// A close between messages, with no reply owed and at least one sent,
    /// ends the run like EXIT (ASE's SocketIOCalculator never sends EXIT).
    pub exit_on_close: bool,
    /// The read/write timeout set on the socket (it is named in the errors).
    pub timeout: Duration,
    /// Set by the caller to stop; the caller also shuts the socket down so
    /// that a blocked read returns.
    pub cancel: Arc<AtomicBool>,
    /// The server's address, for the error messages.
    pub address: String,
}

/// What a run did, once the server sent EXIT.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriveSummary {
    /// FORCEREADY replies sent.
    pub steps: usize,
    /// Seconds in the model, summed.
    pub model_seconds: f64,
    /// CPU seconds (user + system, on Linux; elsewhere wall seconds, waits
    /// included) the loop's thread spent outside the model: parsing,
    /// answering STATUS, decoding, building the structure, encoding, and the
    /// socket calls with the kernel's work to block and wake the thread.
    pub protocol_seconds: f64,
    /// Of `protocol_seconds`, the part up to and including the first reply.
    pub first_protocol_seconds: f64,
}

/// The stream a run talks over: a unix socket or a TCP connection, with its
/// timeouts set by the caller.
pub trait Channel: Read + Write {}
impl<T: Read + Write> Channel for T {}

/// CPU seconds (user + system) the calling thread has used: the loop's own
/// cost, which a loaded machine does not inflate (wall time would count the
/// moments the thread waits to be scheduled while it has work).
#[cfg(target_os = "linux")]
fn thread_cpu_seconds() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given and nothing else
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } == 0;
    if ok {
        t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
    } else {
        0.0
    }
}

/// Elsewhere: wall time since the first call (the loop's time then includes
/// its waits for the server).
#[cfg(not(target_os = "linux"))]
fn thread_cpu_seconds() -> f64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// Exact-length reads over a stream that delivers arbitrary chunks.
struct Reader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

enum Need {
    /// All the bytes are there, at `start..start+n` of the buffer.
    Ready,
    /// The stream ended (after `partial` bytes of the `n`).
    Closed { partial: bool },
}

impl Reader {
    fn new() -> Reader {
        Reader { buf: vec![0; READ_CHUNK], start: 0, end: 0 }
    }

    fn available(&self) -> usize {
        self.end - self.start
    }

    /// Makes `n` bytes available (n is checked by the caller against the protocol's limits).
    fn fill(&mut self, s: &mut dyn Channel, n: usize, what: &str, o: &DriveOptions) -> Result<Need, IpiError> {
        while self.available() < n {
            if self.start > 0 && self.buf.len() - self.start < n {
                // move what is left to the front (the buffer is at most ~2× what is still needed)
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                // grow by at most what is already held (or one chunk): memory
                // follows the bytes that arrived, not the size announced
                let grow = self.buf.len().min(n - self.available()).max(READ_CHUNK);
                self.buf.resize(self.buf.len() + grow, 0);
            }
            let end = self.end;
            let got = s.read(&mut self.buf[end..]);
            match got {
                Ok(0) => {
                    if o.cancel.load(Ordering::Relaxed) {
                        return Err(IpiError::Protocol { kind: IpiErrorKind::Cancelled, message: "cancelled".into() });
                    }
                    return Ok(Need::Closed { partial: self.available() > 0 });
                }
                Ok(k) => self.end += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    if o.cancel.load(Ordering::Relaxed) {
                        return fail(IpiErrorKind::Cancelled, "cancelled");
                    }
                    return match e.kind() {
                        ErrorKind::WouldBlock | ErrorKind::TimedOut => fail(IpiErrorKind::Io, format!("i-PI protocol: no data from the server for {} s while waiting for {what}", seconds(o.timeout))),
                        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => fail(IpiErrorKind::Io, format!("{} ({})", closed_message(o), errno_name(&e))),
                        _ => fail(IpiErrorKind::Io, format!("the i-PI connection to {} failed: {e}", o.address)),
                    };
                }
            }
        }
        Ok(Need::Ready)
    }

    /// The next `n` bytes; a close before them is an error naming `what`.
    fn read(&mut self, s: &mut dyn Channel, n: usize, what: &str, o: &DriveOptions) -> Result<&[u8], IpiError> {
        match self.fill(s, n, what, o)? {
            Need::Ready => {
                let at = self.start;
                self.start += n;
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                }
                Ok(&self.buf[at..at + n])
            }
            Need::Closed { .. } => fail(IpiErrorKind::Io, format!("{} (while waiting for {what})", closed_message(o))),
        }
    }

    /// Skips `n` bytes (the INIT string), in chunks.
    fn skip(&mut self, s: &mut dyn Channel, mut n: usize, what: &str, o: &DriveOptions) -> Result<(), IpiError> {
        while n > 0 {
            let k = n.min(READ_CHUNK);
            self.read(s, k, what, o)?;
            n -= k;
        }
        Ok(())
    }
}

fn closed_message(o: &DriveOptions) -> String {
    format!("the i-PI server at {} closed the connection before sending EXIT", o.address)
}

fn errno_name(e: &std::io::Error) -> &'static str {
    match e.kind() {
        ErrorKind::ConnectionReset => "ECONNRESET",
        ErrorKind::BrokenPipe => "EPIPE",
        _ => "error",
    }
}

/// `d` in seconds as JavaScript prints a number (0.3, 600).
fn seconds(d: Duration) -> String {
    js_number(d.as_secs_f64())
}

/// A finite `v` as JavaScript's `Number.prototype.toString` (and so
/// `JSON.stringify`) writes it: the shortest digits that read back as `v`,
/// in plain notation for decimal exponents −7 < e < 21, else as `1.5e-7`.
pub fn js_number(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    // Rust's {:e} gives the same shortest round-trip digits as JavaScript
    let s = format!("{:e}", v.abs());
    let (mantissa, exponent) = s.split_once('e').expect("{:e} has an exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let e: i32 = exponent.parse().expect("{:e} exponent is an integer");
    let k = digits.len() as i32;
    let n = e + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let sign = if n - 1 < 0 { '-' } else { '+' };
        let rest = if k == 1 { String::new() } else { format!(".{}", &digits[1..]) };
        format!("{}{rest}e{sign}{}", &digits[..1], (n - 1).abs())
    };
    if v < 0.0 {
        format!("-{body}")
    } else {
        body
    }
}

const SERVER_MESSAGES: [&str; 5] = ["STATUS", "INIT", "POSDATA", "GETFORCE", "EXIT"];

/// The message a header names, as the JavaScript driver parses it: the
/// upper-case name, then spaces, optionally ended by NULs.
fn parse_header(bytes: &[u8]) -> Result<&'static str, IpiError> {
    let text: String = bytes.iter().map(|&b| b as char).collect();
    let without_nul = text.trim_end_matches('\0');
    let name = text.trim_end_matches([' ', '\0']);
    let upper = {
        let letters = without_nul.trim_end_matches(' ');
        !letters.is_empty() && letters.bytes().all(|b| b.is_ascii_uppercase()) && without_nul[letters.len()..].bytes().all(|b| b == b' ')
    };
    if let Some(found) = SERVER_MESSAGES.iter().find(|m| **m == name) {
        if upper {
            return Ok(found);
        }
    }
    let shown = if bytes.iter().all(|&b| (0x20..=0x7e).contains(&b)) {
        serde_json::to_string(&text).unwrap_or_default()
    } else {
        format!("0x{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
    };
    fail(IpiErrorKind::Parse, format!("i-PI protocol: malformed message from the server: header {shown} is not one of STATUS, INIT, POSDATA, GETFORCE, EXIT"))
}

fn header(name: &str) -> [u8; HEADER_LENGTH] {
    let mut h = [b' '; HEADER_LENGTH];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h
}

fn f64_at(b: &[u8], k: usize) -> f64 {
    f64::from_le_bytes(b[8 * k..8 * k + 8].try_into().expect("8 bytes"))
}

/// JavaScript's `String(v)` for a non-finite float64.
fn js_special(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// Decodes h (Bohr, vectors as columns, row-major) to the cell in Å with
/// the vectors as rows, exactly as `decodeCell` of the JavaScript driver.
fn decode_cell(bytes: &[u8]) -> Result<[f64; 9], IpiError> {
    let mut cell = [0.0; 9];
    for r in 0..3 {
        for c in 0..3 {
            let v = f64_at(bytes, 3 * r + c);
            if !v.is_finite() {
                return fail(IpiErrorKind::Parse, format!("i-PI protocol: POSDATA cell h[{r}][{c}] is {}, not a finite number", js_special(v)));
            }
            cell[3 * c + r] = v / BOHR_PER_ANGSTROM;
        }
    }
    Ok(cell)
}

/// |det| of a cell (rows = vectors), in the JavaScript driver's order of operations.
fn cell_volume(c: &[f64; 9]) -> f64 {
    let (a0, a1, a2, b0, b1, b2, c0, c1, c2) = (c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]);
    (a0 * (b1 * c2 - b2 * c1) - a1 * (b0 * c2 - b2 * c0) + a2 * (b0 * c1 - b1 * c0)).abs()
}

/// Runs `f` on a worker thread of a rayon pool of its own with `threads`
/// threads (the caller passes the process-wide pool's size), made for the
/// run and dropped after it. The model's parallel loops then start on the
/// driver's own thread, and with one thread run there entirely, instead of
/// being handed to the process-wide pool every step and waited for (a
/// wake-up of another thread per parallel loop). The driver's blocking
/// socket calls occupy only this pool, never the one other computations use.
pub fn on_own_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> Result<R, IpiError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|k| format!("acdc-ipi-{k}"))
        .build()
        .map_err(|e| IpiError::Protocol { kind: IpiErrorKind::Io, message: format!("cannot start the driver's threads: {e}") })?;
    Ok(pool.install(f))
}

/// What the loop asks the model for one structure.
pub type Evaluate<'a> = dyn FnMut(&System, &PredictOptions) -> crate::Result<Prediction> + 'a;

/// Runs the client until the server sends EXIT (or closes, with
/// `exit_on_close`), or until an error: a malformed message, non-finite
/// positions, a change in the number of atoms, a species mismatch, a server
/// that disconnects or is silent past the timeout, a model failure, or a
/// cancel. A reply is written whole with one blocking write or the run fails.
pub fn drive(stream: &mut dyn Channel, evaluate: &mut Evaluate<'_>, o: &DriveOptions) -> Result<DriveSummary, IpiError> {
    let mut r = Reader::new();
    let mut summary = DriveSummary::default();
    let mut initialized = false;
    let mut reply: Vec<u8> = Vec::new();
    let mut have_reply = false;
    let mut atoms: Option<usize> = None;
    let mut species: Option<Vec<i32>> = o.species.clone();
    let mut positions: Vec<f64> = Vec::new();
    // the loop's cost is its thread's CPU time minus the model's part of it:
    // two clock readings a step (each a system call of ~1-2 µs), not two per wait
    let cpu_start = thread_cpu_seconds();
    let mut model_cpu = 0.0;
    let write = |s: &mut dyn Channel, bytes: &[u8]| -> Result<(), IpiError> {
        let out = s.write_all(bytes);
        if let Err(e) = out {
            if o.cancel.load(Ordering::Relaxed) {
                return fail(IpiErrorKind::Cancelled, "cancelled");
            }
            return match e.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                    fail(
                    IpiErrorKind::Io,
                    format!("the i-PI server at {} does not read the replies: a {}-byte reply could not be written for {} s (it must read each reply before sending more requests)", o.address, bytes.len(), seconds(o.timeout)),
                )
                }
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => fail(IpiErrorKind::Io, format!("the i-PI server at {} closed the connection before the reply could be sent", o.address)),
                _ => fail(IpiErrorKind::Io, format!("the i-PI connection to {} failed: {e}", o.address)),
            };
        }
        Ok(())
    };
    loop {
        if o.cancel.load(Ordering::Relaxed) {
            return fail(IpiErrorKind::Cancelled, "cancelled");
        }
        let message = match r.fill(stream, HEADER_LENGTH, "a message header", o)? {
            Need::Ready => parse_header(r.read(stream, HEADER_LENGTH, "a message header", o)?)?,
            Need::Closed { partial } => {
                if o.exit_on_close && !partial && !have_reply && summary.steps > 0 {
                    break;
                }
                return fail(IpiErrorKind::Io, format!("{} (while waiting for a message header)", closed_message(o)));
            }
        };
        match message {
            "EXIT" => break,
            "STATUS" => {
                let h = header(if !initialized {
                    "NEEDINIT"
                } else if have_reply {
                    "HAVEDATA"
                } else {
                    "READY"
                });
                write(stream, &h)?;
            }
            "INIT" => {
                let head = r.read(stream, 8, "the INIT message", o)?;
                let length = i32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
                if length < 0 || length as usize > MAX_INIT_LENGTH {
                    return fail(IpiErrorKind::Parse, format!("i-PI protocol: malformed INIT message: parameter string length {length} (expected 0 to {MAX_INIT_LENGTH})"));
                }
                r.skip(stream, length as usize, "the INIT parameter string", o)?;
                initialized = true;
            }
            "POSDATA" => {
                let cell = decode_cell(r.read(stream, 144, "the POSDATA cell", o)?);
                let raw_n = i32::from_le_bytes(r.read(stream, 4, "the POSDATA atom count", o)?.try_into().expect("4 bytes"));
                if raw_n < 1 || raw_n as usize > MAX_ATOMS {
                    return fail(IpiErrorKind::Parse, format!("i-PI protocol: malformed POSDATA message: {raw_n} atoms (expected 1 to {MAX_ATOMS})"));
                }
                let n = raw_n as usize;
                if let Some(a) = atoms {
                    if a != n {
                        return fail(IpiErrorKind::Parse, format!("i-PI protocol: the number of atoms changed from {a} to {n} at evaluation {}", summary.steps + 1));
                    }
                }
                if let Some(s) = &species {
                    if s.len() != n {
                        return fail(
                            IpiErrorKind::InvalidSystem,
                            format!("the server sent {n} atoms but the species list has {} (check --init / species: it must be the structure the MD engine runs)", s.len()),
                        );
                    }
                }
                let bytes = r.read(stream, 24 * n, &format!("{n} positions"), o)?;
                // the cell is checked after the positions arrived, as the JavaScript driver does
                let cell = cell?;
                positions.clear();
                positions.reserve(3 * n);
                for k in 0..3 * n {
                    let v = f64_at(bytes, k);
                    if !v.is_finite() {
                        return fail(IpiErrorKind::Parse, format!("i-PI protocol: POSDATA position of atom {} ({}) is {}, not a finite number", k / 3, ["x", "y", "z"][k % 3], js_special(v)));
                    }
                    positions.push(v / BOHR_PER_ANGSTROM);
                }
                atoms = Some(n);
                let types = species.get_or_insert_with(|| vec![o.single_species; n]);
                let volume = cell_volume(&cell);
                let periodic = volume > 1e-12;
                let system = System::from_flat(types, &positions, if periodic { &cell } else { &[0.0; 9] }, [periodic; 3]).map_err(IpiError::Model)?;
                let options = PredictOptions { forces: true, stress: periodic, variance: o.variance };
                let t = Instant::now();
                let c = thread_cpu_seconds();
                let p = evaluate(&system, &options);
                model_cpu += thread_cpu_seconds() - c;
                summary.model_seconds += t.elapsed().as_secs_f64();
                let p = p.map_err(IpiError::Model)?;
                encode_force_ready(&p, n, periodic, volume, o.variance, &mut reply)?;
                have_reply = true;
            }
            _ => {
                // GETFORCE
                if !have_reply {
                    return fail(IpiErrorKind::Parse, "i-PI protocol: the server sent GETFORCE before any POSDATA");
                }
                write(stream, &reply)?;
                have_reply = false;
                summary.steps += 1;
                if summary.steps == 1 {
                    summary.first_protocol_seconds = thread_cpu_seconds() - cpu_start - model_cpu;
                }
            }
        }
    }
    summary.protocol_seconds = thread_cpu_seconds() - cpu_start - model_cpu;
    Ok(summary)
}

/// The FORCEREADY reply, as `encodeForceReady` of the JavaScript driver
/// writes it (same operations, same order: the same bytes).
fn encode_force_ready(p: &Prediction, atoms: usize, periodic: bool, volume: f64, variance: bool, out: &mut Vec<u8>) -> Result<(), IpiError> {
    let energy = p.energy.first().copied();
    let forces = p.forces.first();
    let (Some(energy), Some(forces)) = (energy, forces) else {
        return fail(IpiErrorKind::InvalidParameter, "the model returned no energy or no forces");
    };
    let stress = if periodic {
        match p.stress.first() {
            Some(s) => Some(s),
            None => return fail(IpiErrorKind::InvalidParameter, "the model returned no stress for a periodic cell (the virial needs it)"),
        }
    } else {
        None
    };
    let extra = if variance {
        match p.variance.first() {
            Some(&v) => format!("{{\"energy_variance\":{}}}", if v.is_finite() { js_number(v) } else { "null".into() }),
            None => String::new(),
        }
    } else {
        String::new()
    };
    if !energy.is_finite() {
        return fail(IpiErrorKind::Numerical, format!("the model returned a non-finite energy ({} eV)", js_special(energy)));
    }
    if forces.len() != 3 * atoms {
        return fail(IpiErrorKind::InvalidParameter, format!("the model returned {} force components for {atoms} atoms (expected {})", forces.len(), 3 * atoms));
    }
    if let Some(k) = forces.iter().position(|f| !f.is_finite()) {
        return fail(IpiErrorKind::Numerical, format!("the model returned a non-finite force on atom {} ({}: {} eV/Å)", k / 3, ["x", "y", "z"][k % 3], js_special(forces[k])));
    }
    if let Some(s) = stress {
        if let Some(k) = s.iter().position(|v| !v.is_finite()) {
            return fail(IpiErrorKind::Numerical, format!("the model returned a non-finite stress (component {k}: {} eV/Å³)", js_special(s[k])));
        }
    }
    out.clear();
    out.reserve(HEADER_LENGTH + 8 + 4 + 24 * atoms + 72 + 4 + extra.len());
    out.extend_from_slice(&header("FORCEREADY"));
    out.extend_from_slice(&(energy * HARTREE_PER_EV).to_le_bytes());
    out.extend_from_slice(&(atoms as i32).to_le_bytes());
    for &f in forces {
        out.extend_from_slice(&(f * FORCE_PER_EV_PER_ANGSTROM).to_le_bytes());
    }
    for k in 0..9 {
        let s = stress.map_or(0.0, |s| s[k]);
        // W = −V σ in Hartree; + 0 turns −0 into 0 (as the JavaScript driver)
        out.extend_from_slice(&(-volume * s * HARTREE_PER_EV + 0.0).to_le_bytes());
    }
    out.extend_from_slice(&(extra.len() as i32).to_le_bytes());
    out.extend_from_slice(extra.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_number_matches_javascript() {
        for (v, s) in [
            (0.125, "0.125"),
            (0.3, "0.3"),
            (600.0, "600"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.5e-7, "1.5e-7"),
            (1e-7, "1e-7"),
            (1.25e-6, "0.00000125"),
            (-2.5, "-2.5"),
            (123456.789, "123456.789"),
            (0.1 + 0.2, "0.30000000000000004"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ] {
            assert_eq!(js_number(v), s, "{v:e}");
        }
    }

    /// A server's bytes to read, in chunks of `chunk` bytes, and what the loop wrote.
    struct Scripted {
        input: Vec<u8>,
        at: usize,
        chunk: usize,
        output: Vec<u8>,
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.chunk).min(self.input.len() - self.at);
            buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn options(species: Option<Vec<i32>>) -> DriveOptions {
        DriveOptions { species, single_species: 29, variance: false, exit_on_close: false, timeout: Duration::from_secs(1), cancel: Arc::new(AtomicBool::new(false)), address: "test".into() }
    }

    fn posdata(n: usize, side_bohr: f64) -> Vec<u8> {
        let mut b = header("POSDATA").to_vec();
        for k in 0..9 {
            b.extend_from_slice(&(if k % 4 == 0 { side_bohr } else { 0.0 }).to_le_bytes());
        }
        for k in 0..9 {
            b.extend_from_slice(&(if k % 4 == 0 { 1.0 / side_bohr } else { 0.0 }).to_le_bytes());
        }
        b.extend_from_slice(&(n as i32).to_le_bytes());
        for k in 0..3 * n {
            b.extend_from_slice(&(0.5 + k as f64).to_le_bytes());
        }
        b
    }

    #[test]
    fn a_conversation_in_odd_chunks_gives_the_replies_in_atomic_units() {
        let mut input = Vec::new();
        input.extend_from_slice(&header("STATUS"));
        input.extend_from_slice(&header("INIT"));
        input.extend_from_slice(&0i32.to_le_bytes());
        input.extend_from_slice(&2i32.to_le_bytes());
        input.extend_from_slice(b"ab");
        input.extend_from_slice(&header("STATUS"));
        input.extend_from_slice(&posdata(2, 20.0));
        input.extend_from_slice(&header("STATUS"));
        input.extend_from_slice(&header("GETFORCE"));
        input.extend_from_slice(&header("EXIT"));
        let mut s = Scripted { input, at: 0, chunk: 7, output: Vec::new() };
        let mut seen = Vec::new();
        let mut evaluate = |system: &System, o: &PredictOptions| {
            seen.push((system.size(), o.stress));
            Ok(Prediction { energy: vec![2.0], forces: vec![vec![1.0, -1.0, 0.5, 0.0, 0.0, -0.5]], stress: vec![[0.1; 9]], variance: vec![] })
        };
        let summary = drive(&mut s, &mut evaluate, &options(None)).unwrap();
        assert_eq!(summary.steps, 1);
        assert_eq!(seen, vec![(2, true)]);
        let out = &s.output;
        assert_eq!(&out[..36], b"NEEDINIT    READY       HAVEDATA    ");
        assert_eq!(&out[36..48], b"FORCEREADY  ");
        assert_eq!(f64_at(&out[48..], 0), 2.0 * HARTREE_PER_EV);
        assert_eq!(i32::from_le_bytes(out[56..60].try_into().unwrap()), 2);
        assert_eq!(f64_at(&out[60..], 1), -FORCE_PER_EV_PER_ANGSTROM);
        let volume = cell_volume(&[20.0 / BOHR_PER_ANGSTROM, 0.0, 0.0, 0.0, 20.0 / BOHR_PER_ANGSTROM, 0.0, 0.0, 0.0, 20.0 / BOHR_PER_ANGSTROM]);
        assert_eq!(f64_at(&out[60 + 48..], 0), -volume * 0.1 * HARTREE_PER_EV);
        assert_eq!(out.len(), 36 + 12 + 8 + 4 + 48 + 72 + 4);
    }

    #[test]
    fn hostile_sizes_are_errors_and_allocate_only_what_arrived() {
        let mut evaluate = |_: &System, _: &PredictOptions| -> crate::Result<Prediction> { panic!("no evaluation expected") };
        // 80 M atoms announced (1.9 GB of positions), 100 bytes sent, then the end
        let mut input = posdata(1, 20.0);
        input.truncate(12 + 144);
        input.extend_from_slice(&80_000_000i32.to_le_bytes());
        input.extend_from_slice(&[0; 100]);
        let mut s = Scripted { input, at: 0, chunk: 1 << 20, output: Vec::new() };
        let e = drive(&mut s, &mut evaluate, &options(None)).unwrap_err();
        assert_eq!(e, IpiError::Protocol { kind: IpiErrorKind::Io, message: "the i-PI server at test closed the connection before sending EXIT (while waiting for 80000000 positions)".into() });
        for (count, expected) in [(-1i32, "-1 atoms"), (i32::MAX, "2147483647 atoms")] {
            let mut input = header("POSDATA").to_vec();
            input.extend_from_slice(&[0; 144]);
            input.extend_from_slice(&count.to_le_bytes());
            let mut s = Scripted { input, at: 0, chunk: 3, output: Vec::new() };
            let IpiError::Protocol { kind, message } = drive(&mut s, &mut evaluate, &options(None)).unwrap_err() else { panic!() };
            assert_eq!(kind, IpiErrorKind::Parse);
            assert!(message.contains(expected), "{message}");
        }
        let mut input = header("INIT").to_vec();
        input.extend_from_slice(&0i32.to_le_bytes());
        input.extend_from_slice(&i32::MAX.to_le_bytes());
        let mut s = Scripted { input, at: 0, chunk: 5, output: Vec::new() };
        let IpiError::Protocol { message, .. } = drive(&mut s, &mut evaluate, &options(None)).unwrap_err() else { panic!() };
        assert!(message.contains("parameter string length 2147483647"), "{message}");
    }

    #[test]
    fn headers_parse_as_the_javascript_driver_does() {
        assert_eq!(parse_header(b"STATUS      ").unwrap(), "STATUS");
        assert_eq!(parse_header(b"EXIT\0\0\0\0\0\0\0\0").unwrap(), "EXIT");
        assert!(parse_header(b"status      ").is_err());
        assert!(parse_header(b"STATUS  X   ").is_err());
        let IpiError::Protocol { message, .. } = parse_header(&[0xff, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).unwrap_err() else { panic!() };
        assert!(message.contains("header 0xff000102030405060708090a"), "{message}");
        let IpiError::Protocol { message, .. } = parse_header(b"HELLO WORLD!").unwrap_err() else { panic!() };
        assert!(message.contains("header \"HELLO WORLD!\""), "{message}");
    }
}
