// `acdc serve`: featurization over HTTP (Fastify).
//
//   POST /v1/featurize   extended XYZ body (text/plain, chemical/x-xyz or
//                        application/octet-stream) with options in the query,
//                        or JSON {structures, hypers, options}
//                        → Accept: application/octet-stream: the .npy bytes
//                          `acdc featurize --out x.npy` writes for the same
//                          input and options (names of the labels in headers)
//                        → Accept: multipart/mixed: the .npy, then the
//                          .labels.json sidecar, as two parts
//                        → otherwise JSON {shape, dtype, data, rows, columns}
//   GET /healthz, GET /metrics (Prometheus text)
//
// Every request is computed on the native thread pool through the async API
// (the event loop stays free), at most `concurrency` at once with `queue`
// more waiting (503 beyond), and cancelled when its client disconnects.
import * as http from 'node:http';
import type { Socket } from 'node:net';
import * as os from 'node:os';
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { DEFAULT_CALCULATOR, DENSE_CALCULATORS, PER_STRUCTURE, calculatorInfo, makeCalculatorAsync, type Calc, type CalculatorName, type LabelsSidecar, type PerStructure } from '../featurize';
import { featurizeParsed, parseXyzText, type FeaturizedNpy, type ParsedXyz } from '../featurize/text';
import { formatXyz, fromFrame } from '../xyz';
import native from '../native';
import { runQueued } from '../schedule';
import { System, type SystemInit } from '../system';
import type { Dtype } from '../tensor';
import { npyLayout } from '../queue/merge';
import { loadModel } from '../potentials';
import { TensorModel } from '../tensor_models';
import { Gate, QueueFull } from './gate';
import { createMetrics, type Metrics } from './metrics';
import { DEFAULT_LIMITS, type ServeLimits } from './limits';
import { isAcdcError, type AcdcErrorCode, coded } from '../errors';

export { DEFAULT_LIMITS, type ServeLimits };

/** A fitted model (`loadModel`, or a tensor model from `loadTensorModel`) that `POST /v1/predict` runs. */
export type ServedModel = Awaited<ReturnType<typeof loadModel>> | TensorModel;

export interface ServeOptions extends Partial<ServeLimits> {
  /** Fastify's logger (default off). */
  logger?: boolean;
  /** The model of `POST /v1/predict` (without one, that route answers 404). */
  model?: ServedModel;
  /**
   * Host names (besides the bound address, and `localhost` / the machine's
   * names and addresses when bound to all interfaces) that requests may name
   * in their `Host` header; others are refused (403), so that a web page
   * cannot reach the server through a DNS name it controls (DNS rebinding).
   */
  allowHosts?: string[];
  /**
   * Origins (`https://app.example.org`) whose browser pages may call the
   * server; requests from other origins (with an `Origin` header that is not
   * the server's own) are refused (403). `'*'` allows every origin.
   */
  corsOrigins?: string[];
}

/** A refusal with its HTTP status and the limit (or field) it names. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly limit?: string,
  ) {
    super(message);
  }
}

interface FeaturizeRequest {
  xyz: string | null;
  systems: System[] | null;
  calculator: CalculatorName;
  hypers: string | null;
  perStructure: PerStructure | undefined;
  dtype: Dtype;
  species: number[] | undefined;
}

function option<T extends string>(name: string, value: unknown, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new HttpError(400, `${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`, name);
  }
  return value as T;
}

function speciesOption(value: unknown): number[] | undefined {
  if (value === undefined) return undefined;
  const list = typeof value === 'string' ? value.split(',').map((s) => s.trim()) : value;
  if (!Array.isArray(list) || list.length === 0 || !list.every((s) => (typeof s === 'number' || (typeof s === 'string' && /^-?\d+$/.test(s))) && Number.isSafeInteger(Number(s)))) {
    throw new HttpError(400, `species must be atomic numbers (a list, or comma-separated in the query), got ${JSON.stringify(value)?.slice(0, 100)}`, 'species');
  }
  return list.map(Number);
}

const OPTION_NAMES = ['calculator', 'perStructure', 'per_structure', 'dtype', 'species', 'hypers'];

/** The request's input and options, checked; throws HttpError(400) naming the field. */
function parseRequest(request: FastifyRequest): FeaturizeRequest {
  const query = (request.query ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(query)) if (!OPTION_NAMES.includes(k)) throw new HttpError(400, `unknown query parameter "${k}" (known: ${OPTION_NAMES.join(', ')})`, k);
  let opts: Record<string, unknown> = { ...query };
  let xyz: string | null = null;
  let systems: System[] | null = null;
  let hypers: unknown = query.hypers;
  const body = request.body;
  if (typeof body === 'string') {
    xyz = body;
  } else if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    const b = body as Record<string, unknown>;
    for (const k of Object.keys(b)) if (!['structures', 'hypers', 'options'].includes(k)) throw new HttpError(400, `unknown field "${k}" in the JSON body (known: structures, hypers, options)`, k);
    if (b.options !== undefined) {
      if (b.options === null || typeof b.options !== 'object' || Array.isArray(b.options)) throw new HttpError(400, 'options must be an object', 'options');
      for (const k of Object.keys(b.options)) if (!OPTION_NAMES.includes(k) || k === 'hypers') throw new HttpError(400, `unknown option "${k}" (known: calculator, perStructure, dtype, species)`, `options.${k}`);
      opts = { ...opts, ...(b.options as Record<string, unknown>) };
    }
    if (b.hypers !== undefined) hypers = b.hypers;
    if (typeof b.structures === 'string') xyz = b.structures;
    else if (Array.isArray(b.structures)) {
      if (b.structures.length === 0) throw new HttpError(400, 'structures is empty: nothing to featurize', 'structures');
      systems = b.structures.map((s, k) => {
        try {
          return s instanceof System ? s : new System(s as SystemInit);
        } catch (e) {
          throw new HttpError(400, `structures[${k}]: ${(e as Error).message}`, `structures[${k}]`);
        }
      });
    } else throw new HttpError(400, 'structures must be an array of {types, positions, cell?, pbc?} or extended XYZ text', 'structures');
  } else {
    throw new HttpError(400, 'the body must be extended XYZ text (Content-Type text/plain or chemical/x-xyz) or JSON {structures, hypers, options}', 'body');
  }
  if (xyz !== null && xyz.trim() === '') throw new HttpError(400, 'the extended XYZ body is empty: nothing to featurize', 'body');
  let hypersText: string | null = null;
  checkDepth('hypers', hypers);
  if (hypers !== undefined && hypers !== null) {
    if (typeof hypers === 'string') {
      try {
        JSON.parse(hypers);
      } catch {
        throw new HttpError(400, 'hypers is not valid JSON', 'hypers');
      }
      hypersText = hypers;
    } else if (typeof hypers === 'object' && !Array.isArray(hypers)) hypersText = JSON.stringify(hypers);
    else throw new HttpError(400, `hypers must be an object (or JSON text in the query), got ${JSON.stringify(hypers)?.slice(0, 100)}`, 'hypers');
  }
  const calculator = option('calculator', opts.calculator, DENSE_CALCULATORS) ?? DEFAULT_CALCULATOR;
  const perStructure = option('perStructure', opts.perStructure ?? opts.per_structure, PER_STRUCTURE);
  const dtype = option('dtype', opts.dtype, ['float64', 'float32'] as const) ?? 'float64';
  return { xyz, systems, calculator, hypers: hypersText, perStructure, dtype, species: speciesOption(opts.species) };
}

/** Deepest nesting of objects/arrays accepted in `hypers` (real ones are 4 deep). */
const MAX_HYPERS_DEPTH = 32;

/** Refuses JSON nested deeper than {@link MAX_HYPERS_DEPTH} (checked without recursion, so it cannot overflow the stack). */
function checkDepth(name: string, value: unknown): void {
  if (typeof value === 'string') {
    let depth = 0;
    let inString = false;
    for (let k = 0; k < value.length; k++) {
      const c = value.charCodeAt(k);
      if (inString) {
        if (c === 0x5c) k += 1;
        else if (c === 0x22) inString = false;
      } else if (c === 0x22) inString = true;
      else if (c === 0x7b || c === 0x5b) {
        if (++depth > MAX_HYPERS_DEPTH) throw new HttpError(400, `${name} is nested more than ${MAX_HYPERS_DEPTH} levels deep`, name);
      } else if (c === 0x7d || c === 0x5d) depth -= 1;
    }
    return;
  }
  let level: unknown[] = [value];
  for (let depth = 0; level.length > 0; depth++) {
    if (depth > MAX_HYPERS_DEPTH) throw new HttpError(400, `${name} is nested more than ${MAX_HYPERS_DEPTH} levels deep`, name);
    const next: unknown[] = [];
    for (const v of level) if (v !== null && typeof v === 'object') next.push(...(Array.isArray(v) ? v : Object.values(v as object)));
    level = next;
  }
}

/**
 * The HTTP status of each error code (the README's table): what the client
 * sent is wrong (400), well-formed but over a limit or numerically
 * unworkable (422), or the server failed (500). The status follows the
 * code alone, never the message (every error of the featurize engine has one).
 */
export const HTTP_STATUS: Readonly<Record<AcdcErrorCode, number>> = {
  ACDC_INVALID_PARAMETER: 400,
  ACDC_INVALID_SYSTEM: 400,
  ACDC_PARSE: 400,
  ACDC_NUMERICAL: 422,
  ACDC_MEMORY: 422,
  ACDC_IO: 500,
  ABORT_ERR: 500,
  ACDC_INTERNAL: 500,
};

/** An error of the featurize engine (message `m`, the request's paths replaced) as its HTTP refusal. */
function asHttpError(e: unknown, m: string): HttpError {
  const code = isAcdcError(e) ? e.code : undefined;
  if (code === 'ACDC_MEMORY') return new HttpError(422, `${m.replace(/ ?\(--max-memory or ACDC_MAX_MEMORY\)/, '')} (maxMemory = the server's memory budget per request)`, 'maxMemory');
  const status = code === undefined ? 400 : HTTP_STATUS[code];
  return new HttpError(status, status === 500 ? `internal error: ${m}` : m, status === 500 ? undefined : 'input');
}

interface Featurized {
  npy: Buffer;
  /** The sidecar, built when asked for (an .npy answer needs only `names`). */
  labels(): LabelsSidecar;
  names: { rows: string[]; columns: string[] };
  /** The pooled buffer `npy` is a view of (given back once the answer is sent), if any. */
  pooled: Buffer | null;
  rows: number;
  columns: number;
  atoms: number;
  /** Seconds of the featurization itself, and of all the request's work (parsing included). */
  seconds: number;
  totalSeconds: number;
}

/**
 * Calculators built or being built, by name and hyper-parameters (the most
 * recent 8). They are built off the event loop (a large basis takes
 * seconds); concurrent requests with the same hypers share one build, and a
 * failed build is not kept.
 */
const calculators = new Map<string, Promise<Calc>>();
function calculatorFor(name: CalculatorName, hypersText: string | null): Promise<Calc> {
  const key = JSON.stringify([name, hypersText]);
  let calc = calculators.get(key);
  if (calc === undefined) {
    calc = makeCalculatorAsync(name, hypersText);
    calc.catch(() => {
      if (calculators.get(key) === calc) calculators.delete(key);
    });
    if (calculators.size >= 8) calculators.delete(calculators.keys().next().value!);
  } else calculators.delete(key);
  calculators.set(key, calc);
  return calc;
}

/** Properties per block of a SOAP calculator (the same for every block), from a two-atom probe; cached per calculator. */
const propertyCounts = new WeakMap<Calc, number>();
async function propertiesPerBlock(calc: Calc, z: number, maxMemory: string, signal: AbortSignal): Promise<number> {
  const known = propertyCounts.get(calc);
  if (known !== undefined) return known;
  const tm = await calc.compute(new System({ types: [z, z], positions: [0, 0, 0, 1, 0, 0] }), { signal, maxMemory });
  const blocks = tm.blocks();
  const n = blocks.length > 0 ? blocks[0].properties.count : 0;
  propertyCounts.set(calc, n);
  return n;
}

/**
 * The values (rows × columns) the answer will hold, before computing it:
 * rows are structures (perStructure) or atoms, columns the blocks of every
 * species combination times their properties. Null for calculators whose
 * width is not known in advance (checked after the computation).
 */
async function expectedValues(req: FeaturizeRequest, calc: Calc, parsed: ParsedXyz, maxMemory: string, signal: AbortSignal): Promise<{ rows: number; columns: number } | null> {
  const designRows = calculatorInfo(req.calculator).designRows;
  if (designRows === null) return null;
  const present = new Set(parsed.species);
  // a species outside `species` is an error of the computation, which names the frame
  if (req.species && [...present].some((z) => !req.species!.includes(z))) return null;
  const species = req.species ? [...new Set(req.species)] : [...present];
  if (species.length === 0) return null;
  const s = species.length;
  const combinations = designRows === 'neighbor_pairs' ? (s * (s + 1)) / 2 : s;
  const rows = req.perStructure ? parsed.frames : parsed.atoms;
  // a width beyond any limit is refused without probing the calculator
  if (rows * s * combinations > 1e15) return { rows, columns: s * combinations };
  const p = await propertiesPerBlock(calc, species[0], maxMemory, signal);
  return { rows, columns: s * combinations * p };
}

/**
 * Answer buffers reused across requests: a fresh buffer of megabytes per
 * answer is external memory to V8, which then collects garbage every few
 * answers (tens of ms each). A buffer goes back once its answer is sent;
 * at most `keep` are kept, none above {@link KEPT_BUFFER_BYTES} (an idle
 * server does not hold the memory of its largest answers).
 */
class AnswerBuffers {
  readonly #free: Buffer[] = [];
  constructor(private readonly keep: number) {}
  /** A buffer of at least `bytes` (at most twice that, so that a small answer does not hold a large buffer). */
  take(bytes: number): Buffer {
    const k = this.#free.findIndex((b) => b.length >= bytes && b.length <= 2 * bytes);
    if (k >= 0) return this.#free.splice(k, 1)[0];
    return Buffer.allocUnsafeSlow(bytes);
  }
  give(buffer: Buffer): void {
    if (buffer.length > KEPT_BUFFER_BYTES) return;
    this.#free.push(buffer);
    if (this.#free.length > this.keep) this.#free.shift();
  }
}

/** Largest answer buffer kept for reuse (bytes). */
const KEPT_BUFFER_BYTES = 64 << 20;

async function computeFeatures(req: FeaturizeRequest, limits: ServeLimits, signal: AbortSignal, buffers: AnswerBuffers): Promise<Featurized> {
  const start = process.hrtime.bigint();
  if (req.systems) {
    const atoms = req.systems.reduce((n, s) => n + s.size, 0);
    if (atoms > limits.maxAtoms) throw new HttpError(413, `the request holds ${atoms} atoms, more than maxAtoms = ${limits.maxAtoms}`, 'maxAtoms');
  }
  // the body is parsed once, natively and off the event loop, and the
  // answer built in memory: no temporary files, nothing read back
  let parsed: ParsedXyz;
  try {
    parsed = await parseXyzText(req.systems ? formatXyz(req.systems) : req.xyz!, { name: 'body', batch: 64, signal });
  } catch (e) {
    if (signal.aborted) throw e;
    throw new HttpError(400, (e as Error).message, 'body');
  }
  const atoms = parsed.atoms;
  if (atoms > limits.maxAtoms) throw new HttpError(413, `the request holds ${atoms} atoms, more than maxAtoms = ${limits.maxAtoms}`, 'maxAtoms');
  let calculatorInstance: Calc;
  try {
    calculatorInstance = await calculatorFor(req.calculator, req.hypers);
  } catch (e) {
    throw asHttpError(e, (e as Error).message);
  }
  if (signal.aborted) throw signal.reason;
  // the size of the answer is known before the work: refuse it first
  let expected: Awaited<ReturnType<typeof expectedValues>>;
  try {
    expected = await expectedValues(req, calculatorInstance, parsed, limits.maxMemory, signal);
  } catch (e) {
    if (signal.aborted) throw e;
    throw asHttpError(e, (e as Error).message);
  }
  if (expected !== null && expected.rows * expected.columns > limits.maxFeatures) {
    const { rows, columns } = expected;
    throw new HttpError(422, `the answer would hold ${rows} × ${columns} = ${rows * columns} values, more than maxFeatures = ${limits.maxFeatures}`, 'maxFeatures');
  }
  let answer: FeaturizedNpy;
  let pooled: Buffer | null = null;
  try {
    answer = await featurizeParsed(parsed, {
      calculatorInstance,
      calculator: req.calculator,
      perStructure: req.perStructure,
      batch: 64,
      dtype: req.dtype,
      species: req.species,
      maxMemory: limits.maxMemory,
      maxValues: limits.maxFeatures,
      signal,
      outName: 'features.npy',
      allocate: (bytes) => (pooled = buffers.take(bytes)),
    });
  } catch (e) {
    if (signal.aborted) throw e;
    const message = (e as Error).message;
    if (isAcdcError(e) && e.limit === 'maxValues') throw new HttpError(422, message.replace('maxValues', 'maxFeatures'), 'maxFeatures');
    throw asHttpError(e, message);
  }
  const values = answer.rows * answer.columns;
  if (values > limits.maxFeatures) {
    throw new HttpError(422, `the answer holds ${answer.rows} × ${answer.columns} = ${values} values, more than maxFeatures = ${limits.maxFeatures}`, 'maxFeatures');
  }
  return { npy: answer.npy, labels: () => answer.labels, names: answer.names, pooled, rows: answer.rows, columns: answer.columns, atoms, seconds: answer.seconds, totalSeconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

/** Values formatted per chunk of the JSON answer: small enough that the event loop stays free between chunks (a few ms each). */
const JSON_CHUNK_VALUES = 4_096;

/**
 * The JSON answer as a stream: `head` (an object's fields, without the
 * closing brace) then `"data":[…]}` written a chunk at a time, so that an
 * answer of tens of millions of values neither blocks the event loop nor
 * builds one string longer than V8 allows.
 */
function jsonAnswer(head: string, npy: Buffer): Readable {
  const { rows, columns, itemsize, offset } = npyLayout(npy, 'features');
  const count = rows * columns;
  // a view when the values are aligned (they are in acdc's files), else one copy
  const first = npy.byteOffset + offset;
  const aligned = first % itemsize === 0;
  const buffer = aligned ? npy.buffer : new Uint8Array(npy.subarray(offset, offset + count * itemsize)).buffer;
  const start = aligned ? first : 0;
  const data = itemsize === 8 ? new Float64Array(buffer, start, count) : new Float32Array(buffer, start, count);
  let at = 0;
  let started = false;
  return new Readable({
    read() {
      if (!started) {
        started = true;
        this.push(`${head},"data":[`);
        return;
      }
      if (at >= count) {
        this.push(']}');
        this.push(null);
        return;
      }
      const end = Math.min(count, at + JSON_CHUNK_VALUES);
      const parts = new Array<string>(end - at);
      for (let k = at; k < end; k++) {
        const v = data[k];
        parts[k - at] = Number.isFinite(v) ? String(v) : 'null';
      }
      const text = (at > 0 ? ',' : '') + parts.join(',');
      at = end;
      // yield to the event loop between chunks
      setImmediate(() => this.push(text));
    },
  });
}

const PREDICT_OPTIONS = ['forces', 'stress', 'variance'];

function flag(name: string, v: unknown): boolean {
  if (v === undefined || v === false || v === 'false' || v === '0') return false;
  if (v === true || v === 'true' || v === '1' || v === '') return true;
  throw new HttpError(400, `${name} must be true or false, got ${JSON.stringify(v)?.slice(0, 100)}`, name);
}

/** The systems and options of a predict request; throws HttpError(400) naming the field. */
function parsePredictRequest(request: FastifyRequest): { xyz: string | null; systems: System[] | null; forces: boolean; stress: boolean; variance: boolean } {
  const query = (request.query ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(query)) if (!PREDICT_OPTIONS.includes(k)) throw new HttpError(400, `unknown query parameter "${k}" (known: ${PREDICT_OPTIONS.join(', ')})`, k);
  let opts: Record<string, unknown> = { ...query };
  let xyz: string | null = null;
  let systems: System[] | null = null;
  const body = request.body;
  if (typeof body === 'string') xyz = body;
  else if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    const b = body as Record<string, unknown>;
    for (const k of Object.keys(b)) if (!['structures', 'options'].includes(k)) throw new HttpError(400, `unknown field "${k}" in the JSON body (known: structures, options)`, k);
    if (b.options !== undefined) {
      if (b.options === null || typeof b.options !== 'object' || Array.isArray(b.options)) throw new HttpError(400, 'options must be an object', 'options');
      for (const k of Object.keys(b.options)) if (!PREDICT_OPTIONS.includes(k)) throw new HttpError(400, `unknown option "${k}" (known: ${PREDICT_OPTIONS.join(', ')})`, `options.${k}`);
      opts = { ...opts, ...(b.options as Record<string, unknown>) };
    }
    if (typeof b.structures === 'string') xyz = b.structures;
    else if (Array.isArray(b.structures) && b.structures.length > 0) {
      systems = b.structures.map((s, k) => {
        try {
          return new System(s as SystemInit);
        } catch (e) {
          throw new HttpError(400, `structures[${k}]: ${(e as Error).message}`, `structures[${k}]`);
        }
      });
    } else throw new HttpError(400, 'structures must be a non-empty array of {types, positions, cell?, pbc?} or extended XYZ text', 'structures');
  } else throw new HttpError(400, 'the body must be extended XYZ text (Content-Type text/plain or chemical/x-xyz) or JSON {structures, options}', 'body');
  if (xyz !== null && xyz.trim() === '') throw new HttpError(400, 'the extended XYZ body is empty: nothing to predict', 'body');
  return { xyz, systems, forces: flag('forces', opts.forces), stress: flag('stress', opts.stress), variance: flag('variance', opts.variance) };
}

/**
 * Systems of an extended XYZ body, parsed natively off the event loop from
 * the text in memory (no temporary file). The atoms are counted before any
 * JS object is made for them: a body over `maxAtoms` is refused (413) with
 * only its text in memory (itself bounded by `maxBodyBytes`).
 */
async function readBody(xyz: string, maxAtoms: number, signal: AbortSignal): Promise<System[]> {
  let parsed: Awaited<ReturnType<typeof native.parseXyzText>>;
  try {
    parsed = await runQueued(() => native.parseXyzText(xyz, 'body', maxAtoms), signal);
  } catch (e) {
    if (signal.aborted) throw e;
    throw new HttpError(400, (e as Error).message, 'body');
  }
  if (parsed.atoms > maxAtoms) throw new HttpError(413, `the request holds ${parsed.atoms} atoms, more than maxAtoms = ${maxAtoms}`, 'maxAtoms');
  if (parsed.frames.length === 0) throw new HttpError(400, 'body holds no frames', 'body');
  return parsed.frames.map(fromFrame);
}

const shutdowns = new WeakMap<FastifyInstance, { sockets: Set<Socket>; busy: WeakSet<Socket> }>();

/**
 * Stops the server: no new connections; connections that are still sending
 * their request (a stalled upload) or idle are closed at once; requests
 * being computed get `graceMs` to finish, then their connections are closed
 * too. Resolves once the server is closed.
 */
export async function closeServer(app: FastifyInstance, graceMs = 10_000): Promise<void> {
  const state = shutdowns.get(app);
  const closing = app.close();
  if (state !== undefined) {
    for (const socket of state.sockets) if (!state.busy.has(socket)) socket.destroy();
    const timer = setTimeout(() => {
      for (const socket of state.sockets) socket.destroy();
    }, graceMs);
    timer.unref();
    try {
      await closing;
    } finally {
      clearTimeout(timer);
    }
  } else await closing;
}

/** The host name of a Host header, lower case, without the port; null when malformed. */
function hostName(header: string | undefined): string | null {
  if (header === undefined) return null;
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(header.trim());
  return m ? m[1].toLowerCase() : null;
}

/**
 * The host names requests may use: the bound address; for a loopback
 * address also `localhost`, 127.0.0.1 and [::1]; for all interfaces also the
 * machine's name and interface addresses; plus `extra`.
 */
function allowedHosts(app: FastifyInstance, extra: string[]): () => Set<string> {
  let cached: Set<string> | null = null;
  return () => {
    if (cached !== null) return cached;
    const names = new Set<string>(extra.map((h) => h.toLowerCase()));
    const bracket = (a: string) => (a.includes(':') ? `[${a}]` : a);
    const address = app.server.address();
    // a unix domain socket (the address is its path) is reached from this
    // machine only: its clients name it as loopback (curl --unix-socket sends
    // Host: localhost); a proxy in front of it passes on other names (--allow-host)
    const bound = address !== null && typeof address === 'object' ? address.address : '127.0.0.1';
    names.add(bracket(bound).toLowerCase());
    const loopback = ['localhost', '127.0.0.1', '[::1]'];
    if (bound === '127.0.0.1' || bound === '::1' || bound.startsWith('127.')) for (const h of loopback) names.add(h);
    if (bound === '0.0.0.0' || bound === '::') {
      for (const h of loopback) names.add(h);
      names.add(os.hostname().toLowerCase());
      for (const list of Object.values(os.networkInterfaces())) for (const i of list ?? []) names.add(bracket(i.address).toLowerCase());
    }
    if (address !== null) cached = names;
    return names;
  };
}

/** The Fastify server of `acdc serve` (not listening yet). */
export function buildServer(options: ServeOptions = {}): FastifyInstance {
  const limits: ServeLimits = { ...DEFAULT_LIMITS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as ServeLimits;
  const gate = new Gate(limits.concurrency, limits.queue);
  const buffers = new AnswerBuffers(limits.concurrency + 2);
  const metrics: Metrics = createMetrics(() => ({ running: gate.running, waiting: gate.waiting }));
  // Timeouts on receiving a request (headers and body) but not on computing
  // it: a client that sends slowly or stalls is closed (408) after
  // requestTimeoutMs, an idle keep-alive connection after idleTimeoutMs.
  const serverFactory = (handler: http.RequestListener) =>
    http.createServer(
      {
        requestTimeout: limits.requestTimeoutMs,
        headersTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.idleTimeoutMs,
        connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.requestTimeoutMs / 4))),
      },
      handler,
    );
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: limits.maxBodyBytes, serverFactory, return503OnClosing: true });
  const sockets = new Set<Socket>();
  const busy = new WeakSet<Socket>();
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  shutdowns.set(app, { sockets, busy });
  const hosts = allowedHosts(app, options.allowHosts ?? []);
  const corsOrigins = options.corsOrigins ?? [];

  // Host and Origin: a browser page may only reach the server under a name
  // the server answers to (no DNS rebinding) and from an allowed origin.
  app.addHook('onRequest', async (request, reply) => {
    const host = hostName(request.headers.host);
    if (host === null || !hosts().has(host)) {
      throw new HttpError(403, `Host ${JSON.stringify(String(request.headers.host ?? '')).slice(0, 200)} is not a name of this server (allowed: ${[...hosts()].join(', ')}; add names with --allow-host)`, 'host');
    }
    const origin = request.headers.origin;
    if (origin !== undefined) {
      let originHost: string | null = null;
      try {
        originHost = new URL(origin).host.toLowerCase();
      } catch {
        originHost = null;
      }
      const sameOrigin = originHost !== null && originHost === String(request.headers.host).toLowerCase();
      const allowed = sameOrigin || corsOrigins.includes('*') || corsOrigins.includes(origin);
      if (!allowed) throw new HttpError(403, `cross-origin requests from ${JSON.stringify(origin).slice(0, 200)} are refused (start the server with --cors-origin ORIGIN to allow a web page to call it)`, 'origin');
      if (!sameOrigin) {
        reply.header('access-control-allow-origin', corsOrigins.includes('*') ? '*' : origin);
        reply.header('vary', 'Origin');
        reply.header('access-control-expose-headers', 'x-acdc-shape, x-acdc-dtype, x-acdc-row-names, x-acdc-column-names, server-timing');
      }
      if (request.method === 'OPTIONS') {
        reply.header('access-control-allow-methods', 'GET, POST');
        reply.header('access-control-allow-headers', 'content-type, accept');
        reply.header('access-control-max-age', '600');
        return reply.code(204).send();
      }
    }
  });
  // the request was received whole: from here on, shutdown waits for it
  app.addHook('preHandler', async (request) => {
    busy.add(request.raw.socket);
  });
  app.addHook('onResponse', async (request) => {
    busy.delete(request.raw.socket);
  });
  app.options('/*', async (_request, reply) => reply.code(204).send());
  const xyzTypes = ['chemical/x-xyz', 'application/octet-stream', 'text/x-xyz', 'application/x-extxyz'];
  app.addContentTypeParser(xyzTypes, { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unknown';
    metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    metrics.latency.observe({ route }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, _request, reply) => {
    if (error instanceof HttpError) return reply.code(error.status).send({ error: error.message, ...(error.limit ? { limit: error.limit } : {}) });
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({ error: `the body is larger than maxBodyBytes = ${limits.maxBodyBytes} bytes`, limit: 'maxBodyBytes' });
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.code(415).send({ error: `unsupported Content-Type: send extended XYZ as text/plain (or ${xyzTypes.join(', ')}) or JSON as application/json` });
    }
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    return reply.code(status).send({ error: status === 500 ? `internal error: ${error.message}` : error.message });
  });

  app.get('/healthz', async () => ({ status: 'ok', running: gate.running, waiting: gate.waiting }));

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.post('/v1/featurize', async (request: FastifyRequest, reply: FastifyReply) => {
    const req = parseRequest(request);
    const controller = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableEnded) controller.abort(coded('ABORT_ERR', 'the client disconnected'));
    };
    reply.raw.on('close', onClose);
    let leave: () => void;
    try {
      leave = await gate.enter(controller.signal);
    } catch (e) {
      if (controller.signal.aborted) metrics.cancelled.inc({ route: '/v1/featurize' });
      if (e instanceof QueueFull) {
        reply.header('retry-after', '1');
        throw new HttpError(503, e.message, 'queue');
      }
      throw e;
    }
    let result: Featurized;
    try {
      result = await computeFeatures(req, limits, controller.signal, buffers);
    } catch (e) {
      if (controller.signal.aborted) metrics.cancelled.inc({ route: '/v1/featurize' });
      throw e;
    } finally {
      leave();
      reply.raw.off('close', onClose);
    }
    metrics.atoms.inc({ route: '/v1/featurize' }, result.atoms);
    metrics.computeSeconds.inc({ route: '/v1/featurize' }, result.seconds);
    if (result.seconds > 0) metrics.atomsPerSecond.set({ route: '/v1/featurize' }, result.atoms / result.seconds);
    // the buffer is reused once the answer has left (or the client has gone)
    const pooled = result.pooled;
    if (pooled !== null) reply.raw.once('close', () => buffers.give(pooled));
    const accept = String(request.headers.accept ?? '');
    reply.header('server-timing', `featurize;dur=${(result.seconds * 1000).toFixed(1)}, total;dur=${(result.totalSeconds * 1000).toFixed(1)}`);
    reply.header('x-acdc-shape', `${result.rows},${result.columns}`);
    reply.header('x-acdc-dtype', req.dtype);
    reply.header('x-acdc-row-names', result.names.rows.join(','));
    reply.header('x-acdc-column-names', result.names.columns.join(','));
    if (/application\/octet-stream|application\/x-npy/.test(accept)) {
      return reply.type('application/octet-stream').send(result.npy);
    }
    if (/multipart\/mixed/.test(accept)) {
      const boundary = `acdc-${randomBytes(12).toString('hex')}`;
      const body = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="features.npy"\r\n\r\n`),
        result.npy,
        Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/json\r\nContent-Disposition: attachment; filename="features.npy.labels.json"\r\n\r\n`),
        // the text of the .labels.json file
        Buffer.from(JSON.stringify(result.labels())),
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      return reply.type(`multipart/mixed; boundary=${boundary}`).send(body);
    }
    const all = result.labels();
    const head = JSON.stringify({
      shape: [result.rows, result.columns],
      dtype: req.dtype,
      calculator: req.calculator,
      perStructure: req.perStructure ?? null,
      rows: all.rows,
      columns: all.columns,
    });
    return reply.type('application/json').send(jsonAnswer(head.slice(0, -1), result.npy));
  });

  app.post('/v1/predict', async (request: FastifyRequest, reply: FastifyReply) => {
    const model = options.model;
    if (!model) throw new HttpError(404, 'no model is loaded: start the server with acdc serve --model-file <model.acdc>', 'model');
    const req = parsePredictRequest(request);
    const controller = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableEnded) controller.abort(coded('ABORT_ERR', 'the client disconnected'));
    };
    reply.raw.on('close', onClose);
    let leave: () => void;
    try {
      leave = await gate.enter(controller.signal);
    } catch (e) {
      if (controller.signal.aborted) metrics.cancelled.inc({ route: '/v1/predict' });
      if (e instanceof QueueFull) {
        reply.header('retry-after', '1');
        throw new HttpError(503, e.message, 'queue');
      }
      throw e;
    }
    if (model instanceof TensorModel && (req.forces || req.stress || req.variance)) {
      leave();
      reply.raw.off('close', onClose);
      const asked = (['forces', 'stress', 'variance'] as const).find((k) => req[k])!;
      throw new HttpError(400, `${asked}: the model is a ${model.kind} ${model.target} model, which predicts tensors only`, asked);
    }
    const start = process.hrtime.bigint();
    let prediction;
    let tensors: Float64Array[] | undefined;
    let atoms: number;
    try {
      const systems = req.systems ?? (await readBody(req.xyz!, limits.maxAtoms, controller.signal));
      atoms = systems.reduce((n, s) => n + s.size, 0);
      if (atoms > limits.maxAtoms) throw new HttpError(413, `the request holds ${atoms} atoms, more than maxAtoms = ${limits.maxAtoms}`, 'maxAtoms');
      try {
        if (model instanceof TensorModel) tensors = (await model.predict(systems, { signal: controller.signal })).tensors;
        else prediction = await model.predict(systems, { forces: req.forces, stress: req.stress, variance: req.variance, maxMemory: limits.maxMemory, signal: controller.signal });
      } catch (e) {
        if (controller.signal.aborted) throw e;
        const limit = asHttpError(e, (e as Error).message);
        throw limit.limit === 'maxMemory' ? limit : new HttpError(400, (e as Error).message, 'structures');
      }
    } catch (e) {
      if (controller.signal.aborted) metrics.cancelled.inc({ route: '/v1/predict' });
      throw e;
    } finally {
      leave();
      reply.raw.off('close', onClose);
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    metrics.atoms.inc({ route: '/v1/predict' }, atoms);
    metrics.computeSeconds.inc({ route: '/v1/predict' }, seconds);
    if (seconds > 0) metrics.atomsPerSecond.set({ route: '/v1/predict' }, atoms / seconds);
    reply.header('server-timing', `total;dur=${(seconds * 1000).toFixed(1)}`);
    if (tensors !== undefined || prediction === undefined) {
      // a tensor model: Cartesian tensors (3, or 9 row-major) in the unit of its training data
      const m = model as TensorModel;
      return reply.type('application/json').send({ target: m.target, [m.target]: (tensors ?? []).map((t) => Array.from(t)) });
    }
    return reply.type('application/json').send({
      units: { energy: 'eV', forces: 'eV/Å', stress: 'eV/Å³', variance: 'eV²' },
      energy: Array.from(prediction.energy),
      ...(prediction.forces ? { forces: prediction.forces.map((f) => Array.from(f)) } : {}),
      ...(prediction.stress ? { stress: prediction.stress.map((f) => Array.from(f)) } : {}),
      ...(prediction.variance ? { variance: Array.from(prediction.variance) } : {}),
    });
  });

  return app;
}
