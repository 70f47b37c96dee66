// An i-PI socket client: connects to an MD engine that speaks the i-PI
// protocol (i-PI, ASE's SocketIOCalculator, LAMMPS `fix ipi`, CP2K, ...),
// receives positions and returns energy, forces and virial computed by a
// model, until the server sends EXIT. Encoding/decoding is in
// ./ipi_protocol.ts; this file owns the socket.
import { coded, invalidParameter, rethrown } from '../errors';
import * as net from 'node:net';
import { System, checkedSystem } from '../system';
import { abortError, checkSignal, type AbortSignalLike } from '../schedule';
import native from '../native';
import { plainNativePotential } from '../potentials';
import { HEADER_LENGTH, MAX_ATOMS, MAX_INIT_LENGTH, cellVolume, decodeCell, decodePositions, encodeForceReady, header, parseHeader } from './ipi_protocol';

/** What a model's `predict` returns (one entry per system). Units: eV, eV/Å, eV/Å³. */
export interface IpiPrediction {
  /** Energies in eV. */
  energy: ArrayLike<number>;
  /** Forces in eV/Å, one flat 3N array per system. */
  forces?: ArrayLike<ArrayLike<number>>;
  /** Stress σ = (1/V) ∂E/∂ε in eV/Å³ (9 numbers, ASE's sign), one per system. */
  stress?: ArrayLike<ArrayLike<number>>;
  /** Variance of the predicted energy in eV², one per system (optional). */
  variance?: ArrayLike<number>;
}

/**
 * Anything with a `predict` like acdc's models: `SparseGPR`, `LinearModel`, or
 * a user's object. `species`, if present, lists the species the model knows;
 * a model of a single species needs no species from the caller.
 */
export interface IpiModel {
  predict(systems: System[], options: { forces: true; stress: boolean; variance?: boolean }): IpiPrediction | Promise<IpiPrediction>;
  /**
   * The same evaluation on the calling thread (acdc's models have it). When
   * present, short steps use it instead of `predict` (see
   * {@link DriveIpiOptions.compute}).
   */
  predictSync?(systems: System[], options: { forces: true; stress: boolean; variance?: boolean }): IpiPrediction;
  readonly species?: ArrayLike<number>;
}

/** One evaluation, reported to `onStep` after its reply was sent. */
export interface IpiStep {
  /** 1 for the first evaluation. */
  step: number;
  /** Number of atoms. */
  atoms: number;
  /** Energy in eV. */
  energy: number;
  /** Energy variance in eV² when the model returned one. */
  variance?: number;
  /** Seconds spent in `model.predict` (or `predictSync`) for this evaluation. */
  modelSeconds: number;
  /**
   * Seconds the driver spent on the protocol for this evaluation, from the
   * previous reply to this one (see {@link DriveIpiResult.protocolSeconds}).
   */
  protocolSeconds: number;
}

/** Options of {@link driveIpi}. Give exactly one of `unix` and `port`. */
export interface DriveIpiOptions {
  /**
   * Unix-socket name as in i-PI's `<address>`: the socket is
   * `/tmp/ipi_NAME` (i-PI's default prefix). An absolute path is used as is (for `i-pi -S PREFIX`).
   */
  unix?: string;
  /** TCP host (default 'localhost'), with `port`. */
  host?: string;
  /** TCP port (1–65535), as in i-PI's `<port>`. */
  port?: number;
  /**
   * Species of the atoms, in the order the server sends them: atomic
   * numbers, or a System (e.g. the first frame of the file the MD engine
   * starts from). Default: the model's single species.
   */
  species?: ArrayLike<number> | System;
  /**
   * Seconds to wait for the server: for each message (and, when the socket
   * is not there yet, for connecting: retried every 0.1 s for at most
   * min(timeout, 30) s), and for the server to read the replies the
   * driver has written (more than 1 MiB unread: the driver stops reading
   * until it drains, and fails after `timeout`). Default 600.
   */
  timeout?: number;
  /**
   * Treat the server closing the connection between messages, when no reply
   * is owed and at least one was sent, as the end of the run (like EXIT).
   * ASE's SocketIOCalculator closes without sending EXIT (ASE's own client
   * does the same). Default false: a close before EXIT is an error.
   */
  exitOnClose?: boolean;
  /** Ask the model for the energy variance and send it in the extra string as `{"energy_variance": …}` (eV²). Default false. */
  variance?: boolean;
  signal?: AbortSignalLike;
  /** Called after each reply was sent. */
  onStep?: (step: IpiStep) => void;
  /**
   * How the model is called. 'async': `predict` (off the main thread) every
   * step. 'sync': `predictSync` every step (the model must have one; the
   * event loop waits for each step). 'auto' (default), for a model with
   * `predictSync`: the first step with `predict`, the second with
   * `predictSync` when the first took under 50 × {@link IPI_SYNC_BELOW}
   * seconds (the hand-over to a worker thread and back alone can take
   * milliseconds on a loaded machine), then `predictSync` while the
   * shortest model time so far is under IPI_SYNC_BELOW and `predict`
   * otherwise. For a short step the hand-over is a visible part of the
   * step, for a long one it is not, and the event loop stays free.
   */
  compute?: 'auto' | 'async' | 'sync';
  /**
   * Which loop speaks the protocol. 'native': a thread of acdc's native
   * library owns the socket, parses every message, calls the model's native
   * predict and writes the replies, with no JavaScript (nor a thread
   * hand-over) per message; the model must be one of acdc's own
   * (`SparseGPR`, `LinearModel`, as `loadModel` gives) and `onStep` and
   * `compute` are not used. 'js': this module's loop over Node's socket,
   * for any model. 'auto' (default): 'native' when the model is one of
   * acdc's, no `onStep` is given and `compute` is 'auto', else 'js'. Both send
   * the same bytes for the same positions and fail with the same errors.
   */
  loop?: 'auto' | 'native' | 'js';
}

/**
 * Model time (seconds) of a step under which `compute: 'auto'` calls
 * `predictSync` for the next one: a step blocks the event loop at most
 * about this long.
 */
export const IPI_SYNC_BELOW = 0.01;

/** What {@link driveIpi} resolves to once the server sent EXIT. */
export interface DriveIpiResult {
  /** Number of evaluations (FORCEREADY replies) sent. */
  steps: number;
  /** Seconds spent in `model.predict`, summed. */
  modelSeconds: number;
  /**
   * Seconds the driver itself spent on the protocol: parsing every message,
   * answering STATUS, decoding POSDATA, building the System, encoding and
   * writing FORCEREADY (not waiting for the server's bytes, not the model).
   * The JavaScript loop measures wall time; the native loop its thread's
   * CPU time (user + system, on Linux), which a loaded machine does not
   * inflate with waits for the scheduler.
   */
  protocolSeconds: number;
  /** Of `protocolSeconds`, the part up to and including the first reply (connection set-up, INIT, cold code). */
  firstProtocolSeconds: number;
  /** Seconds from connection to EXIT. */
  seconds: number;
  /** The loop that ran (see {@link DriveIpiOptions.loop}). */
  loop: 'native' | 'js';
}

/** The socket path of a unix-socket name, as i-PI makes it: `/tmp/ipi_NAME`. */
export function ipiUnixPath(name: string): string {
  return name.startsWith('/') ? name : `/tmp/ipi_${name}`;
}

/**
 * Bytes received and not read yet above which the driver stops reading the
 * socket (unless a pending read needs more), so that a server that sends
 * faster than the driver answers is slowed by TCP instead of growing memory.
 */
export const READ_HIGH_WATER = 1 << 20;

/**
 * Bytes written and not yet taken by the server above which the driver waits
 * (without reading) for the server to read them; after `timeout` seconds it
 * closes with an error naming the server.
 */
export const WRITE_HIGH_WATER = 1 << 20;

/** Reads exact byte counts from a stream that delivers arbitrary chunks. */
class ByteReader {
  private chunks: Buffer[] = [];
  private available = 0;
  private waiting: { n: number; what: string; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  // One timer for every wait, re-armed (refresh) rather than made and
  // cleared per message: a timer list emptied and made again costs more
  // than the rest of a small message's handling. When it fires with no read
  // waiting, it is a leftover and does nothing.
  private timer: NodeJS.Timeout | null = null;
  private failure: Error | null = null;
  private paused = false;

  constructor(
    private readonly timeoutMs: number,
    private readonly flow: { pause(): void; resume(): void } = { pause() {}, resume() {} },
  ) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.available += chunk.length;
    this.serve();
    // backpressure: stop reading while enough is buffered and no read waits for more
    if (!this.paused && this.waiting === null && this.available > READ_HIGH_WATER) {
      this.paused = true;
      this.flow.pause();
    }
  }

  private resumeIfLow(): void {
    if (this.paused && (this.available <= READ_HIGH_WATER || this.waiting !== null)) {
      this.paused = false;
      this.flow.resume();
    }
  }

  /** Every pending and later read rejects with `error` (the first one given wins). */
  fail(error: Error): void {
    if (this.failure === null) this.failure = error;
    this.stop();
    const w = this.waiting;
    if (w !== null) {
      this.waiting = null;
      w.reject(this.failure);
    }
  }

  /** Drops the timer (at the end of the run; a later wait makes a new one). */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private readonly expire = () => {
    const w = this.waiting;
    if (w !== null) this.fail(coded('ACDC_IO', `i-PI protocol: no data from the server for ${this.timeoutMs / 1000} s while waiting for ${w.what}`));
  };

  /** The next `n` bytes; rejects after the timeout, on failure, or when the stream ends first. */
  read(n: number, what: string): Promise<Buffer> {
    if (this.available >= n) {
      const out = this.take(n);
      this.resumeIfLow();
      return Promise.resolve(out);
    }
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      if (this.timer === null) {
        this.timer = setTimeout(this.expire, this.timeoutMs);
        // the socket keeps the process alive while a read waits; a leftover timer must not
        this.timer.unref();
      } else {
        this.timer.refresh();
      }
      this.waiting = { n, what, resolve, reject };
      this.resumeIfLow();
    });
  }

  /** The next `n` bytes if they are all here, else null (then `read` waits for them). */
  readNow(n: number): Buffer | null {
    if (this.available < n || this.waiting !== null) return null;
    const out = this.take(n);
    this.resumeIfLow();
    return out;
  }

  /** Bytes received and not read yet. */
  get buffered(): number {
    return this.available;
  }

  /** The message a pending read waits for, if any. */
  get pending(): string | null {
    return this.waiting?.what ?? null;
  }

  private serve(): void {
    const w = this.waiting;
    if (w !== null && this.available >= w.n) {
      this.waiting = null;
      w.resolve(this.take(w.n));
    }
  }

  private take(n: number): Buffer {
    if (this.chunks[0].length >= n) {
      const head = this.chunks[0];
      const out = head.subarray(0, n);
      if (head.length === n) this.chunks.shift();
      else this.chunks[0] = head.subarray(n);
      this.available -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const head = this.chunks[0];
      const k = Math.min(head.length, n - at);
      head.copy(out, at, 0, k);
      at += k;
      if (k === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(k);
    }
    this.available -= n;
    return out;
  }
}

function checkOptions(options: DriveIpiOptions): { target: net.NetConnectOpts; where: string; timeoutMs: number } {
  if (options === null || typeof options !== 'object') throw invalidParameter('driveIpi options must be an object {unix} or {host, port}');
  const { unix, host, port, timeout, compute, loop } = options;
  if (loop !== undefined && loop !== 'auto' && loop !== 'native' && loop !== 'js') {
    throw invalidParameter(`driveIpi: loop must be 'auto', 'native' or 'js', got ${JSON.stringify(loop)}`);
  }
  if (compute !== undefined && compute !== 'auto' && compute !== 'async' && compute !== 'sync') {
    throw invalidParameter(`driveIpi: compute must be 'auto', 'async' or 'sync', got ${JSON.stringify(compute)}`);
  }
  if (unix !== undefined && port !== undefined) throw invalidParameter('driveIpi: give either unix or port, not both');
  if (unix === undefined && port === undefined) throw invalidParameter('driveIpi: give unix (a socket name) or port (with host) to connect to');
  let timeoutMs = 600_000;
  if (timeout !== undefined) {
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0 || timeout > 2_000_000) {
      throw invalidParameter(`driveIpi: timeout must be a positive number of seconds (at most 2e6), got ${String(timeout)}`);
    }
    timeoutMs = timeout * 1000;
  }
  if (unix !== undefined) {
    if (typeof unix !== 'string' || unix.length === 0 || unix.includes('\0')) throw invalidParameter(`driveIpi: unix must be a non-empty socket name, got ${JSON.stringify(unix)}`);
    if (host !== undefined) throw invalidParameter('driveIpi: host goes with port, not with unix');
    const path = ipiUnixPath(unix);
    return { target: { path }, where: `unix socket ${path}`, timeoutMs };
  }
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw invalidParameter(`driveIpi: port must be an integer from 1 to 65535, got ${String(port)}`);
  const h = host ?? 'localhost';
  if (typeof h !== 'string' || h.length === 0) throw invalidParameter(`driveIpi: host must be a non-empty string, got ${JSON.stringify(host)}`);
  return { target: { host: h, port, noDelay: true }, where: `${h}:${port}`, timeoutMs };
}

function speciesOf(model: IpiModel, species: DriveIpiOptions['species']): Int32Array | null {
  if (species instanceof System) return Int32Array.from(species.types);
  if (species !== undefined) {
    if (species === null || typeof species !== 'object' || typeof species.length !== 'number') throw invalidParameter('driveIpi: species must be an array of atomic numbers or a System');
    const out = new Int32Array(species.length);
    for (let i = 0; i < species.length; i++) {
      const z = species[i];
      if (!Number.isInteger(z) || z < 0 || z > 0x7fffffff) throw invalidParameter(`driveIpi: species[${i}] must be a non-negative integer, got ${String(z)}`);
      out[i] = z;
    }
    return out;
  }
  const known = model.species;
  if (known !== undefined && known !== null && known.length === 1) return null; // filled with the single species once N is known
  const list = known === undefined || known === null ? 'does not list its species' : `has species ${Array.from(known).join(',')}`;
  throw invalidParameter(`driveIpi: the model ${list}: give species (e.g. --init structure.xyz, the file the MD engine starts from)`);
}

function connectOnce(target: net.NetConnectOpts): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(target);
    const onError = (e: Error) => {
      socket.destroy();
      reject(e);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

async function connect(target: net.NetConnectOpts, where: string, windowMs: number, signal: AbortSignalLike | undefined): Promise<net.Socket> {
  const until = Date.now() + windowMs;
  for (;;) {
    if (signal?.aborted) throw abortError(signal);
    try {
      const socket = await connectOnce(target);
      if (signal?.aborted) {
        socket.destroy();
        throw abortError(signal);
      }
      return socket;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const retry = code === 'ENOENT' || code === 'ECONNREFUSED';
      if (!retry || Date.now() >= until) {
        throw rethrown(e, `cannot connect to the i-PI server at ${where}: ${(e as Error).message}${retry ? ` (retried for ${windowMs / 1000} s)` : ''}`, 'ACDC_IO');
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Whether two cells are equal number for number. */
function sameCell(a: Float64Array, b: Float64Array): boolean {
  for (let k = 0; k < 9; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** Ends the socket once what was written is sent; resolves on close, or after `ms`. */
function flushAndClose(socket: net.Socket, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      socket.off('finish', done);
      socket.off('close', done);
      resolve();
    }
    socket.once('finish', done);
    socket.once('close', done);
    // keep reading (and dropping) what the server still sends: closing with
    // unread bytes would make the kernel reset the connection and drop the
    // end of the reply
    socket.removeAllListeners('data');
    socket.on('data', () => {});
    socket.resume();
    socket.end();
  });
}

/**
 * Drives molecular dynamics over the i-PI socket protocol: connects to the
 * server (i-PI, ASE's SocketIOCalculator, LAMMPS `fix ipi`, ...), and for
 * every POSDATA it receives calls `model.predict([system], {forces: true,
 * stress: true})` and replies FORCEREADY with the energy, forces and virial
 * W = −V·σ in atomic units (i-PI's own constants, {@link IPI_UNITS}). It
 * resolves when the server sends EXIT, and rejects with an Error saying what
 * went wrong on a malformed message, non-finite positions, a change in the
 * number of atoms, a mismatch with `species`, a server that disconnects or
 * stays silent past `timeout`, one that does not read the replies within
 * `timeout`, or an abort. A reply is written in one piece or not at all: one
 * already started is finished before the connection is closed on an error.
 *
 * The cell is taken as periodic when its determinant is non-zero (the
 * protocol has no periodicity flag); positions are used as sent.
 */
export async function driveIpi(model: IpiModel, options: DriveIpiOptions): Promise<DriveIpiResult> {
  if (model === null || typeof model !== 'object' || typeof (model as IpiModel).predict !== 'function') {
    throw invalidParameter('driveIpi: model must be an object with a predict(systems, options) method');
  }
  const { target, where, timeoutMs } = checkOptions(options);
  const signal = checkSignal(options.signal);
  const onStep = options.onStep;
  if (onStep !== undefined && typeof onStep !== 'function') throw invalidParameter('driveIpi: onStep must be a function');
  let species = speciesOf(model, options.species);
  const variance = options.variance === true;
  const compute = options.compute ?? 'auto';
  const predictSync = typeof model.predictSync === 'function' ? model.predictSync.bind(model) : null;
  if (compute === 'sync' && predictSync === null) throw invalidParameter("driveIpi: compute 'sync' needs a model with predictSync");
  const nativeModel = plainNativePotential(model);
  const loop = options.loop ?? 'auto';
  if (loop === 'native') {
    if (nativeModel === null) throw invalidParameter("driveIpi: loop 'native' needs one of acdc's models (SparseGPR or LinearModel, predict not overridden)");
    if (onStep !== undefined) throw invalidParameter("driveIpi: loop 'native' does not call onStep (use loop 'js')");
    if (compute !== 'auto') throw invalidParameter(`driveIpi: compute '${compute}' applies to loop 'js' only`);
  }
  if (nativeModel !== null && (loop === 'native' || (loop === 'auto' && onStep === undefined && compute === 'auto'))) {
    return driveNative(nativeModel, target, timeoutMs, species, model.species, variance, options.exitOnClose === true, signal);
  }

  const socket = await connect(target, where, Math.min(timeoutMs, 30_000), signal);
  // replies are small and answer a request each: Nagle's algorithm would hold
  // them back for the server's delayed ACK (tens of ms a step over TCP)
  if (!('path' in target)) socket.setNoDelay(true);
  const started = process.hrtime.bigint();
  const reader = new ByteReader(timeoutMs, socket);
  let exited = false;
  socket.on('data', (chunk: Buffer) => reader.push(chunk));
  const closed = coded('ACDC_IO', `the i-PI server at ${where} closed the connection before sending EXIT`);
  socket.on('error', (e: NodeJS.ErrnoException) => {
    const reset = e.code === 'ECONNRESET' || e.code === 'EPIPE';
    reader.fail(rethrown(e, reset ? `${closed.message} (${e.code})` : `the i-PI connection to ${where} failed: ${e.message}`, 'ACDC_IO'));
  });
  socket.on('close', () => {
    if (!exited) reader.fail(reader.pending ? coded('ACDC_IO', `${closed.message} (while waiting for ${reader.pending})`) : closed);
  });
  // an abort ends a pending read and a pending model call alike
  let rejectAborted: (e: Error) => void = () => {};
  const aborted = new Promise<never>((_, reject) => (rejectAborted = reject));
  aborted.catch(() => {});
  const onAbort = () => {
    reader.fail(abortError(signal!));
    rejectAborted(abortError(signal!));
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  let initialized = false;
  let reply: Buffer | null = null;
  let replyInfo: IpiStep | null = null;
  // the last reply's Buffer, written over by the next one of the same
  // length once the socket holds none of it (every write handed to the kernel)
  let spare: Buffer | null = null;
  let atoms = -1;
  let steps = 0;
  let firstProtocolSeconds = 0;
  let modelSeconds = 0;
  let lastModelSeconds = Infinity;
  // the shortest model time so far: a step's cost hardly changes during MD,
  // and the shortest is the one least inflated by the hand-over to a worker
  // thread or by other processes
  let fastestModelSeconds = Infinity;
  // the cell (Å) of the last System validated with `new System`
  let validCell: Float64Array | null = null;
  let validPeriodic = false;
  let triedSync = false;
  const now = () => Number(process.hrtime.bigint()) / 1e9;
  // The driver's own time: running from the moment the bytes a message
  // needs are there until the driver waits for more bytes or calls the model.
  let protocolSeconds = 0;
  let protocolAtLastReply = 0;
  let busySince: number | null = null;
  const busy = () => {
    busySince ??= now();
  };
  const idle = () => {
    if (busySince !== null) protocolSeconds += now() - busySince;
    busySince = null;
  };
  // `readNow(n) ?? await read(n)`: no Promise when the bytes are already here
  const read = async (n: number, what: string): Promise<Buffer> => {
    if (reader.buffered >= n) return reader.read(n, what);
    idle();
    const bytes = await reader.read(n, what);
    busy();
    return bytes;
  };
  let failure: Error | null = null;
  let stalled: Error | null = null;
  socket.on('error', (e) => (failure ??= e));
  // Backpressure: while more than WRITE_HIGH_WATER bytes wait for the server
  // to read them, the driver neither writes nor reads (the reader pauses the
  // socket), so a server that floods STATUS and never reads cannot grow the
  // driver's memory; one that never drains is an error after `timeout`.
  const drained = () =>
    new Promise<void>((resolve, reject) => {
      const done = (e?: Error) => {
        clearTimeout(timer);
        socket.off('drain', onDrain);
        socket.off('close', onClose);
        signal?.removeEventListener('abort', onAbortDrain);
        if (e) reject(e);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(coded('ACDC_IO', `the i-PI server at ${where} closed the connection before reading the replies`));
      const onAbortDrain = () => done(abortError(signal!));
      const timer = setTimeout(
        () => done((stalled = coded('ACDC_IO', `the i-PI server at ${where} does not read the replies: ${socket.writableLength} bytes unread for ${timeoutMs / 1000} s (it must read each reply before sending more requests)`))),
        timeoutMs,
      );
      socket.once('drain', onDrain);
      socket.once('close', onClose);
      signal?.addEventListener('abort', onAbortDrain, { once: true });
    });
  const send = async (b: Buffer) => {
    if (socket.writableLength > WRITE_HIGH_WATER) {
      idle();
      await drained();
      busy();
    }
    if (!socket.writable) throw coded('ACDC_IO', `the i-PI server at ${where} closed the connection before the reply could be sent`);
    socket.write(b);
  };
  // `send` without a Promise when the socket is not behind
  const sendNow = (b: Buffer): boolean => {
    if (socket.writableLength > WRITE_HIGH_WATER || !socket.writable) return false;
    socket.write(b);
    return true;
  };
  try {
    for (;;) {
      let head: Buffer;
      try {
        head = reader.readNow(HEADER_LENGTH) ?? (await read(HEADER_LENGTH, 'a message header'));
      } catch (e) {
        const atBoundary = reader.buffered === 0 && reply === null && steps > 0;
        if (options.exitOnClose === true && atBoundary && (e === closed || (e as Error).message.startsWith(closed.message))) {
          exited = true;
          break;
        }
        throw e;
      }
      const message = parseHeader(head);
      if (message === 'EXIT') {
        exited = true;
        break;
      } else if (message === 'STATUS') {
        const status = header(!initialized ? 'NEEDINIT' : reply !== null ? 'HAVEDATA' : 'READY');
        if (!sendNow(status)) await send(status);
      } else if (message === 'INIT') {
        const head = await read(8, 'the INIT message');
        const length = head.readInt32LE(4);
        if (length < 0 || length > MAX_INIT_LENGTH) throw coded('ACDC_PARSE', `i-PI protocol: malformed INIT message: parameter string length ${length} (expected 0 to ${MAX_INIT_LENGTH})`);
        await read(length, 'the INIT parameter string');
        initialized = true;
      } else if (message === 'POSDATA') {
        const cellBytes = reader.readNow(144) ?? (await read(144, 'the POSDATA cell'));
        const n = (reader.readNow(4) ?? (await read(4, 'the POSDATA atom count'))).readInt32LE(0);
        if (n < 1 || n > MAX_ATOMS) throw coded('ACDC_PARSE', `i-PI protocol: malformed POSDATA message: ${n} atoms (expected 1 to ${MAX_ATOMS})`);
        if (atoms >= 0 && n !== atoms) throw coded('ACDC_PARSE', `i-PI protocol: the number of atoms changed from ${atoms} to ${n} at evaluation ${steps + 1}`);
        if (species !== null && species.length !== n) {
          throw coded('ACDC_INVALID_SYSTEM', `the server sent ${n} atoms but the species list has ${species.length} (check --init / species: it must be the structure the MD engine runs)`);
        }
        const positionBytes = reader.readNow(24 * n) ?? (await read(24 * n, `${n} positions`));
        const cell = decodeCell(cellBytes);
        const positions = decodePositions(positionBytes, n);
        atoms = n;
        if (species === null) species = new Int32Array(n).fill(model.species![0]);
        const volume = cellVolume(cell);
        const periodic = volume > 1e-12;
        // a new System each step (the model may keep the ones it was given);
        // validated natively only when the cell changed: the positions were
        // checked finite above, and nothing else enters the validation
        let system: System;
        if (validCell !== null && validPeriodic === periodic && sameCell(validCell, cell)) {
          system = checkedSystem(species.slice(), positions, periodic ? cell : new Float64Array(9), [periodic, periodic, periodic]);
        } else {
          system = new System({ types: species, positions, cell: periodic ? cell : null, pbc: periodic });
          validCell = cell.slice();
          validPeriodic = periodic;
        }
        const useSync: boolean = predictSync !== null && (compute === 'sync' || (compute === 'auto' && fastestModelSeconds < (triedSync ? 1 : 50) * IPI_SYNC_BELOW));
        triedSync ||= useSync;
        idle();
        const tm = now();
        let p: IpiPrediction;
        try {
          const o = { forces: true as const, stress: periodic, ...(variance ? { variance: true } : {}) };
          p = useSync ? predictSync!([system], o) : await Promise.race([model.predict([system], o), aborted]);
        } finally {
          lastModelSeconds = now() - tm;
          fastestModelSeconds = Math.min(fastestModelSeconds, lastModelSeconds);
          busy();
        }
        const dt = lastModelSeconds;
        modelSeconds += dt;
        if (signal?.aborted) throw abortError(signal);
        if (p === null || typeof p !== 'object' || p.energy === undefined || p.forces === undefined) throw coded('ACDC_INVALID_PARAMETER', 'the model returned no energy or no forces');
        if (periodic && p.stress === undefined) throw coded('ACDC_INVALID_PARAMETER', 'the model returned no stress for a periodic cell (the virial needs it)');
        const v = variance && p.variance !== undefined ? Number(p.variance[0]) : undefined;
        const extra = v === undefined ? '' : JSON.stringify({ energy_variance: Number.isFinite(v) ? v : null });
        const energy = Number(p.energy[0]);
        reply = encodeForceReady({ energy, forces: p.forces[0], stress: periodic ? p.stress![0] : null, volume, extra }, n, socket.writableLength === 0 ? spare : null);
        replyInfo = { step: steps + 1, atoms: n, energy, modelSeconds: dt, protocolSeconds: 0, ...(v === undefined ? {} : { variance: v }) };
      } else {
        // GETFORCE
        if (reply === null) throw coded('ACDC_PARSE', 'i-PI protocol: the server sent GETFORCE before any POSDATA');
        if (!sendNow(reply)) await send(reply);
        spare = reply;
        reply = null;
        steps += 1;
        idle();
        replyInfo!.protocolSeconds = protocolSeconds - protocolAtLastReply;
        protocolAtLastReply = protocolSeconds;
        if (steps === 1) firstProtocolSeconds = protocolSeconds;
        onStep?.(replyInfo!);
        busy();
      }
    }
    idle();
  } catch (e) {
    // A reply already handed to the socket is finished before closing (a
    // server that reads gets whole replies or none), within `timeout`.
    if (socket.writableLength > 0 && !socket.destroyed && failure === null && stalled === null && !signal?.aborted) await flushAndClose(socket, Math.min(timeoutMs, 30_000));
    throw e;
  } finally {
    reader.stop();
    signal?.removeEventListener('abort', onAbort);
    if (exited) socket.end();
    else socket.destroy();
  }
  return { steps, modelSeconds, protocolSeconds, firstProtocolSeconds, seconds: Number(process.hrtime.bigint() - started) / 1e9, loop: 'js' };
}

/**
 * The native loop (see {@link DriveIpiOptions.loop}): the binding connects
 * (retrying as {@link connect} does), drives on a thread of its own and
 * settles the Promise; an abort sets its flag and shuts the socket down.
 */
async function driveNative(
  model: NonNullable<ReturnType<typeof plainNativePotential>>,
  target: net.NetConnectOpts,
  timeoutMs: number,
  species: Int32Array | null,
  known: ArrayLike<number> | undefined,
  variance: boolean,
  exitOnClose: boolean,
  signal: AbortSignalLike | undefined,
): Promise<DriveIpiResult> {
  if (signal?.aborted) throw abortError(signal);
  const where = 'path' in target ? { unix: target.path } : { host: (target as net.TcpNetConnectOpts).host ?? 'localhost', port: (target as net.TcpNetConnectOpts).port };
  const cancel = new native.IpiCancel();
  const onAbort = () => cancel.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const r = await model.driveIpi(
      {
        ...where,
        ...(species !== null ? { species } : { singleSpecies: known![0] }),
        variance,
        exitOnClose,
        timeout: timeoutMs / 1000,
      },
      cancel,
    );
    return { steps: r.steps, modelSeconds: r.modelSeconds, protocolSeconds: r.protocolSeconds, firstProtocolSeconds: r.firstProtocolSeconds, seconds: r.seconds, loop: 'native' };
  } catch (e) {
    if (signal?.aborted) throw abortError(signal);
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
