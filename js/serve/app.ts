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
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { CALCULATORS, PER_STRUCTURE, featurize, makeCalculator, type Calc, type CalculatorName, type PerStructure } from '../cli/featurize';
import { readXyz, formatXyz } from '../xyz';
import { System, type SystemInit } from '../system';
import type { Dtype } from '../tensor';
import { npyLayout } from '../queue/merge';
import { loadModel } from '../potentials';
import { Gate, QueueFull } from './gate';
import { createMetrics, type Metrics } from './metrics';
import { DEFAULT_LIMITS, type ServeLimits } from './limits';

export { DEFAULT_LIMITS, type ServeLimits };

/** A fitted model (`loadModel`) that `POST /v1/predict` runs. */
export type ServedModel = Awaited<ReturnType<typeof loadModel>>;

export interface ServeOptions extends Partial<ServeLimits> {
  /** Fastify's logger (default off). */
  logger?: boolean;
  /** The model of `POST /v1/predict` (without one, that route answers 404). */
  model?: ServedModel;
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

const NPY_CALCULATORS = CALCULATORS.filter((c) => !['spherical_expansion', 'equivariant_power_spectrum', 'soap_bispectrum'].includes(c));

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
  const calculator = option('calculator', opts.calculator, NPY_CALCULATORS) ?? 'soap_power_spectrum';
  const perStructure = option('perStructure', opts.perStructure ?? opts.per_structure, PER_STRUCTURE);
  const dtype = option('dtype', opts.dtype, ['float64', 'float32'] as const) ?? 'float64';
  return { xyz, systems, calculator, hypers: hypersText, perStructure, dtype, species: speciesOption(opts.species) };
}

/** A budget or size error of the core, as the limit it hit. */
function asLimitError(m: string): HttpError {
  if (/memory budget|ACDC_MAX_MEMORY|--max-memory/i.test(m)) return new HttpError(422, `${m.replace(/ ?\(--max-memory or ACDC_MAX_MEMORY\)/, '')} (maxMemory = the server's memory budget per request)`, 'maxMemory');
  return new HttpError(400, m, 'input');
}

interface Featurized {
  npy: Buffer;
  labels: Buffer;
  rows: number;
  columns: number;
  atoms: number;
  /** Seconds of the featurization itself, and of all the request's work (parsing, files). */
  seconds: number;
  totalSeconds: number;
}

/** Calculators already built, by name and hyper-parameters (the most recent 8). */
const calculators = new Map<string, Calc>();
function calculatorFor(name: CalculatorName, hypersText: string | null, hypersPath: string | undefined): Calc {
  const key = JSON.stringify([name, hypersText]);
  let calc = calculators.get(key);
  if (calc === undefined) {
    calc = makeCalculator(name, hypersPath);
    if (calculators.size >= 8) calculators.delete(calculators.keys().next().value!);
  } else calculators.delete(key);
  calculators.set(key, calc);
  return calc;
}

async function computeFeatures(req: FeaturizeRequest, limits: ServeLimits, signal: AbortSignal): Promise<Featurized> {
  const start = process.hrtime.bigint();
  const dir = path.join(os.tmpdir(), `acdc-serve-${process.pid}-${randomBytes(6).toString('hex')}`);
  fs.mkdirSync(dir, { recursive: true });
  try {
    const input = path.join(dir, 'request.xyz');
    let atoms: number;
    if (req.systems) {
      atoms = req.systems.reduce((n, s) => n + s.size, 0);
      if (atoms > limits.maxAtoms) throw new HttpError(413, `the request holds ${atoms} atoms, more than maxAtoms = ${limits.maxAtoms}`, 'maxAtoms');
      fs.writeFileSync(input, formatXyz(req.systems));
    } else {
      fs.writeFileSync(input, req.xyz!);
      let systems: System[];
      try {
        systems = await readXyz(input, { signal });
      } catch (e) {
        if (signal.aborted) throw e;
        throw new HttpError(400, (e as Error).message.split(input).join('body'), 'body');
      }
      atoms = systems.reduce((n, s) => n + s.size, 0);
      if (atoms > limits.maxAtoms) throw new HttpError(413, `the request holds ${atoms} atoms, more than maxAtoms = ${limits.maxAtoms}`, 'maxAtoms');
    }
    let hypers: string | undefined;
    if (req.hypers !== null) {
      hypers = path.join(dir, 'hypers.json');
      fs.writeFileSync(hypers, req.hypers);
    }
    const out = path.join(dir, 'features.npy');
    let summary;
    try {
      const calculatorInstance = calculatorFor(req.calculator, req.hypers, hypers);
      summary = await featurize(input, {
        calculatorInstance,
        calculator: req.calculator,
        hypers,
        perStructure: req.perStructure,
        out,
        batch: 64,
        dtype: req.dtype,
        species: req.species,
        maxMemory: limits.maxMemory,
        maxValues: limits.maxFeatures,
        progress: false,
        signal,
      });
    } catch (e) {
      if (signal.aborted) throw e;
      let message = (e as Error).message.split(input).join('body');
      if (hypers) message = message.split(hypers).join('hypers');
      if (/more than maxValues = /.test(message)) throw new HttpError(422, message.replace('maxValues', 'maxFeatures'), 'maxFeatures');
      throw asLimitError(message.replace(/^--hypers hypers: /, 'hypers: '));
    }
    const values = summary.rows! * summary.columns!;
    if (values > limits.maxFeatures) {
      throw new HttpError(422, `the answer holds ${summary.rows} × ${summary.columns} = ${values} values, more than maxFeatures = ${limits.maxFeatures}`, 'maxFeatures');
    }
    return { npy: fs.readFileSync(out), labels: fs.readFileSync(`${out}.labels.json`), rows: summary.rows!, columns: summary.columns!, atoms, seconds: summary.seconds, totalSeconds: Number(process.hrtime.bigint() - start) / 1e9 };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function values(npy: Buffer): number[] {
  const { rows, columns, itemsize, offset } = npyLayout(npy, 'features');
  const bytes = npy.subarray(offset, offset + rows * columns * itemsize);
  const copy = new Uint8Array(bytes);
  return Array.from(itemsize === 8 ? new Float64Array(copy.buffer) : new Float32Array(copy.buffer));
}

/** `rows.names` or `columns.names` of a labels sidecar, without parsing its (large) values. */
function labelNames(sidecar: Buffer, which: 'rows' | 'columns'): string[] {
  const key = Buffer.from(`"${which}":{"names":`);
  const at = which === 'rows' ? sidecar.indexOf(key) : sidecar.lastIndexOf(key);
  const end = sidecar.indexOf(']', at);
  return JSON.parse(sidecar.toString('utf8', at + key.length, end + 1)) as string[];
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

/** Systems of an extended XYZ body, parsed off the event loop. */
async function readBody(xyz: string, signal: AbortSignal): Promise<System[]> {
  const dir = path.join(os.tmpdir(), `acdc-serve-${process.pid}-${randomBytes(6).toString('hex')}`);
  fs.mkdirSync(dir, { recursive: true });
  const input = path.join(dir, 'request.xyz');
  try {
    fs.writeFileSync(input, xyz);
    try {
      return await readXyz(input, { signal });
    } catch (e) {
      if (signal.aborted) throw e;
      throw new HttpError(400, (e as Error).message.split(input).join('body'), 'body');
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The Fastify server of `acdc serve` (not listening yet). */
export function buildServer(options: ServeOptions = {}): FastifyInstance {
  const limits: ServeLimits = { ...DEFAULT_LIMITS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as ServeLimits;
  const gate = new Gate(limits.concurrency, limits.queue);
  const metrics: Metrics = createMetrics(() => ({ running: gate.running, waiting: gate.waiting }));
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: limits.maxBodyBytes });
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
      if (!reply.raw.writableEnded) controller.abort(new Error('the client disconnected'));
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
      result = await computeFeatures(req, limits, controller.signal);
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
    const labels = { rows: { names: labelNames(result.labels, 'rows') }, columns: { names: labelNames(result.labels, 'columns') } };
    const accept = String(request.headers.accept ?? '');
    reply.header('server-timing', `featurize;dur=${(result.seconds * 1000).toFixed(1)}, total;dur=${(result.totalSeconds * 1000).toFixed(1)}`);
    reply.header('x-acdc-shape', `${result.rows},${result.columns}`);
    reply.header('x-acdc-dtype', req.dtype);
    reply.header('x-acdc-row-names', labels.rows.names.join(','));
    reply.header('x-acdc-column-names', labels.columns.names.join(','));
    if (/application\/octet-stream|application\/x-npy/.test(accept)) {
      return reply.type('application/octet-stream').send(result.npy);
    }
    if (/multipart\/mixed/.test(accept)) {
      const boundary = `acdc-${randomBytes(12).toString('hex')}`;
      const body = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="features.npy"\r\n\r\n`),
        result.npy,
        Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/json\r\nContent-Disposition: attachment; filename="features.npy.labels.json"\r\n\r\n`),
        result.labels,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      return reply.type(`multipart/mixed; boundary=${boundary}`).send(body);
    }
    const all = JSON.parse(result.labels.toString('utf8')) as Record<string, unknown>;
    return reply.type('application/json').send({
      shape: [result.rows, result.columns],
      dtype: req.dtype,
      calculator: req.calculator,
      perStructure: req.perStructure ?? null,
      rows: all.rows,
      columns: all.columns,
      data: values(result.npy),
    });
  });

  app.post('/v1/predict', async (request: FastifyRequest, reply: FastifyReply) => {
    const model = options.model;
    if (!model) throw new HttpError(404, 'no model is loaded: start the server with acdc serve --model <model.acdc>', 'model');
    const req = parsePredictRequest(request);
    const controller = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableEnded) controller.abort(new Error('the client disconnected'));
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
    const start = process.hrtime.bigint();
    let prediction;
    let atoms: number;
    try {
      const systems = req.systems ?? (await readBody(req.xyz!, controller.signal));
      atoms = systems.reduce((n, s) => n + s.size, 0);
      if (atoms > limits.maxAtoms) throw new HttpError(413, `the request holds ${atoms} atoms, more than maxAtoms = ${limits.maxAtoms}`, 'maxAtoms');
      try {
        prediction = await model.predict(systems, { forces: req.forces, stress: req.stress, variance: req.variance, maxMemory: limits.maxMemory, signal: controller.signal });
      } catch (e) {
        if (controller.signal.aborted) throw e;
        const m = (e as Error).message;
        if (/ACDC_MAX_MEMORY/.test(m)) throw asLimitError(m);
        throw new HttpError(400, m, 'structures');
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
