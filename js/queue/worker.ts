// `acdc worker`: a BullMQ worker that featurizes shards. Each job names a
// byte range of a plain extended XYZ file; the worker copies only that range
// to a temporary file, featurizes it exactly as `acdc featurize` would (the
// species, hence the columns, fixed by the producer), writes the shard's
// `.npy` and `.labels.json` atomically, then its checksummed record. A job
// whose shard is already complete (record present, checksums matching) is
// not computed again, so a retried or duplicated job changes nothing.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Worker, type Job } from 'bullmq';
import { featurize, makeCalculator, type Calc } from '../cli/featurize';
import { writeAtomicallySync } from '../atomic';
import { connect, DEFAULT_QUEUE_NAME, probeRedis, checkRedisUrl, displayUrl } from './connection';
import { sha256File, shardBase, verifiedShard, type ShardJob, type ShardRecord } from './shard';

export interface WorkerOptions {
  /** Redis URL, `redis://HOST:PORT/DB`. */
  queue: string;
  queueName?: string;
  /** Jobs computed at once by this process (default 1). */
  concurrency?: number;
  /** Threads of the native pool (ACDC_NUM_THREADS). */
  threads?: number;
  /** Called with one line per finished or failed shard. */
  log?: (line: string) => void;
}

/** Milliseconds from an environment variable, or the default. */
function envMs(name: string, fallback: number): number {
  const x = Number(process.env[name]);
  return Number.isFinite(x) && x > 0 ? x : fallback;
}

function temporary(ext: string): string {
  return path.join(os.tmpdir(), `acdc-shard-${process.pid}-${randomBytes(4).toString('hex')}${ext}`);
}

function remove(p: string): void {
  try {
    fs.unlinkSync(p);
  } catch {
    // already gone
  }
}

/**
 * Rewrites frame and line numbers of an error about the shard's own file
 * into numbers in the original input, and its temporary name into the input's name.
 */
function shardError(e: unknown, job: ShardJob, tmp: string): Error {
  const message = e instanceof Error ? e.message : String(e);
  const lineOffset = job.input.firstLine - 1;
  const out = message
    .split(tmp)
    .join(job.inputName)
    .replace(/\bframes (\d+)–(\d+)/g, (_, a, b) => `frames ${Number(a) + job.firstFrame}–${Number(b) + job.firstFrame}`)
    .replace(/\bframe (\d+)/g, (_, a) => `frame ${Number(a) + job.firstFrame}`)
    .replace(/\bline (\d+)/g, (_, a) => `line ${Number(a) + lineOffset}`)
    .replace(/\bafter (\d+) complete frames/g, (_, a) => `after ${Number(a) + job.firstFrame} complete frames`);
  return new Error(out);
}

/** The last calculator built, by its calculator name and hyper-parameters: shards of one run reuse it. */
let cached: { key: string; calc: Calc } | undefined;

/** Computes one shard (or finds it complete); resolves to its record. */
export async function processShard(job: ShardJob): Promise<ShardRecord> {
  const done = await verifiedShard(job.outDir, job.id, job.index);
  if (done) return done;
  const base = shardBase(job.index);
  const out = path.join(job.outDir, `${base}.npy`);
  let size: number;
  try {
    size = fs.statSync(job.input.path).size;
  } catch (e) {
    throw new Error(`${job.inputName}: the input ${job.input.path} cannot be read on this worker (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): workers need the input and --out-dir at the same paths as the producer`);
  }
  if (size < job.input.end) throw new Error(`${job.inputName}: ${job.input.path} holds ${size} bytes, shard ${job.index} ends at byte ${job.input.end}: the file changed since it was split`);
  const whole = job.input.start === 0 && size === job.input.end;
  const input = whole ? job.input.path : temporary('.xyz');
  const hypers = job.options.hypers === null ? undefined : temporary('.json');
  try {
    if (!whole) {
      await pipeline(fs.createReadStream(job.input.path, { start: job.input.start, end: job.input.end - 1 }), fs.createWriteStream(input));
    }
    if (hypers) fs.writeFileSync(hypers, job.options.hypers!);
    const key = JSON.stringify([job.options.calculator, job.options.hypers]);
    if (cached?.key !== key) {
      try {
        cached = { key, calc: makeCalculator(job.options.calculator, hypers) };
      } catch (e) {
        throw shardError(e, job, input);
      }
    }
    let summary;
    try {
      summary = await featurize(input, {
        calculator: job.options.calculator,
        hypers,
        perStructure: job.options.perStructure ?? undefined,
        out,
        batch: job.options.batch,
        dtype: job.options.dtype,
        species: job.options.species,
        maxMemory: job.options.maxMemory ?? undefined,
        progress: false,
        calculatorInstance: cached.calc,
      });
    } catch (e) {
      throw shardError(e, job, input);
    }
    if (summary.frames !== job.frames) throw new Error(`${job.inputName}: shard ${job.index} holds ${summary.frames} frames, the producer counted ${job.frames}`);
    const labels = `${out}.labels.json`;
    const [shaFile, shaLabels] = await Promise.all([sha256File(out), sha256File(labels)]);
    const record: ShardRecord = {
      id: job.id,
      index: job.index,
      file: path.basename(out),
      labels: path.basename(labels),
      firstFrame: job.firstFrame,
      frames: summary.frames,
      atoms: summary.atoms,
      rows: summary.rows!,
      columns: summary.columns!,
      sha256: { file: shaFile, labels: shaLabels },
      bytes: { file: fs.statSync(out).size, labels: fs.statSync(labels).size },
      worker: `${os.hostname()}:${process.pid}`,
    };
    writeAtomicallySync(path.join(job.outDir, `${base}.json`), (t) => fs.writeFileSync(t, JSON.stringify(record, null, 1)));
    return record;
  } finally {
    if (!whole) remove(input);
    if (hypers) remove(hypers);
  }
}

/**
 * Runs a worker until SIGINT or SIGTERM (or `signal`); resolves once it has
 * closed (a job in progress is finished first).
 */
export async function runWorker(options: WorkerOptions, signal?: AbortSignal): Promise<void> {
  const url = checkRedisUrl(options.queue);
  if (options.threads !== undefined) process.env.ACDC_NUM_THREADS = String(options.threads);
  await probeRedis(url);
  const log = options.log ?? (() => undefined);
  let closing = false;
  let lost: Error | undefined;
  let wake: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const connection = connect(url, (e) => {
    if (!closing) {
      lost = e;
      wake();
    }
  });
  const worker = new Worker<ShardJob, ShardRecord>(
    options.queueName ?? DEFAULT_QUEUE_NAME,
    async (job: Job<ShardJob, ShardRecord>) => processShard(job.data),
    {
      connection,
      concurrency: options.concurrency ?? 1,
      // a killed worker's job is taken back after lockDuration (+ stalledInterval)
      lockDuration: envMs('ACDC_QUEUE_LOCK_MS', 30_000),
      stalledInterval: envMs('ACDC_QUEUE_STALLED_MS', 30_000),
      maxStalledCount: 3,
    },
  );
  worker.on('completed', (job) => {
    const d = job.data;
    log(`shard ${d.index} (frames ${d.firstFrame}–${d.firstFrame + d.frames - 1}) done`);
  });
  worker.on('failed', (job, e) => {
    if (job) log(`shard ${job.data.index} (frames ${job.data.firstFrame}–${job.data.firstFrame + job.data.frames - 1}) failed (attempt ${job.attemptsMade}): ${e.message.split('\n')[0]}`);
  });
  worker.on('error', () => undefined);
  const stop = () => wake();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  signal?.addEventListener('abort', stop, { once: true });
  log(`worker ${os.hostname()}:${process.pid} on ${displayUrl(url)}, queue ${options.queueName ?? DEFAULT_QUEUE_NAME}, concurrency ${options.concurrency ?? 1}`);
  await stopped;
  closing = true;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  await worker.close(lost !== undefined);
  connection.disconnect();
  if (lost) throw lost;
}
