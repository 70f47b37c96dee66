// `acdc worker`: a BullMQ worker that featurizes shards. Each job names a
// byte range of a plain extended XYZ file; the worker reads only that range
// (into memory, or a temporary copy when large), featurizes it exactly as
// `acdc featurize` would (the
// species, hence the columns, fixed by the producer), writes the shard's
// `.npy` and `.labels.json` atomically, then its record with their CRC-32
// checksums (computed as the files are written, not read back). A job
// whose shard is already complete (record present, checksums matching) is
// not computed again, so a retried or duplicated job changes nothing.
import { coded, rethrown } from '../errors';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Worker, type Job } from 'bullmq';
import { featurize, makeCalculator, type Calc } from '../featurize';
import { parseXyzText } from '../featurize/text';
import { designRowsToFile, usesDesignRows, type BatchSource } from '../featurize/design_rows';
import { ReadAhead } from '../featurize/read_ahead';
import type { ResolvedInput } from '../featurize/input';
import native from '../native';
import { writeAtomicallySync } from '../atomic';
import { connect, DEFAULT_QUEUE_NAME, probeRedis, checkRedisUrl, displayUrl } from './connection';
import { crc32File, crc32Hex, sha256File, shardBase, verifiedShard, type ShardJob, type ShardRecord } from './shard';

export interface WorkerOptions {
  /** Redis URL, `redis://HOST:PORT/DB`. */
  queue: string;
  queueName?: string;
  /** Jobs computed at once by this process (default 1). */
  concurrency?: number;
  /** Threads of the native pool (ACDC_NUM_THREADS). */
  threads?: number;
  /** Called with one line per shard started, finished or failed, and per job taken back as stalled. */
  log?: (line: string) => void;
  /**
   * Folders this worker may read inputs from and write shards to (default:
   * its current directory). A job naming a path outside them fails without
   * touching it: whoever can write to the queue cannot make the worker read
   * or write elsewhere.
   */
  roots?: string[];
}

/** Real paths of the worker's root folders; throws naming one that is not a folder. */
export function resolveRoots(roots: string[] | undefined): string[] {
  const list = roots === undefined || roots.length === 0 ? [process.cwd()] : roots;
  return list.map((r) => {
    let real: string;
    try {
      real = fs.realpathSync(r);
    } catch {
      throw coded('ACDC_IO', `--root ${r}: no such folder`);
    }
    if (!fs.statSync(real).isDirectory()) throw coded('ACDC_IO', `--root ${r} is not a folder`);
    return real;
  });
}

/** Whether `p` (resolved through symbolic links as far as it exists) lies inside one of `roots`. */
function inside(p: string, roots: string[]): boolean {
  let real = path.resolve(p);
  // resolve the longest existing prefix (the shard files may not exist yet)
  const rest: string[] = [];
  for (;;) {
    try {
      real = path.join(fs.realpathSync(real), ...rest.reverse());
      break;
    } catch {
      const parent = path.dirname(real);
      if (parent === real) return false;
      rest.push(path.basename(real));
      real = parent;
    }
  }
  return roots.some((r) => real === r || real.startsWith(r.endsWith(path.sep) ? r : r + path.sep));
}

/**
 * Checks that a job read from the queue only names files under the worker's
 * roots, and is shaped as the producer makes it (no error quotes its values
 * beyond the paths it names).
 */
function checkJob(job: ShardJob, roots: string[]): void {
  const where = `shard ${Number.isSafeInteger(job?.index) ? job.index : '?'}`;
  if (job === null || typeof job !== 'object' || job.input === null || typeof job.input !== 'object' || typeof job.input.path !== 'string' || typeof job.outDir !== 'string') {
    throw coded('ACDC_PARSE', `${where}: malformed job (not made by acdc featurize --queue)`);
  }
  for (const k of ['start', 'end', 'firstLine'] as const) {
    if (!Number.isSafeInteger(job.input[k]) || job.input[k] < 0) throw coded('ACDC_PARSE', `${where}: malformed job (input.${k})`);
  }
  if (!Number.isSafeInteger(job.index) || job.index < 0 || !Number.isSafeInteger(job.firstFrame) || !Number.isSafeInteger(job.frames) || job.frames < 1) throw coded('ACDC_PARSE', `${where}: malformed job (index, firstFrame or frames)`);
  if (job.input.end <= job.input.start) throw coded('ACDC_PARSE', `${where}: malformed job (empty byte range)`);
  if (!path.isAbsolute(job.input.path) || !path.isAbsolute(job.outDir)) throw coded('ACDC_PARSE', `${where}: malformed job (paths must be absolute)`);
  const list = roots.join(', ');
  if (!inside(job.input.path, roots)) throw coded('ACDC_INVALID_PARAMETER', `${where}: the input ${job.input.path} is outside the folders this worker may read (--root ${list})`);
  if (!inside(job.outDir, roots)) throw coded('ACDC_INVALID_PARAMETER', `${where}: the output folder ${job.outDir} is outside the folders this worker may write (--root ${list})`);
}

/**
 * An error about the input's content, without the content: parse errors
 * quote the offending text, and a job may point at a file that is not
 * the user's to read.
 */
function withoutContent(message: string): string {
  return message.replace(/'[^'\n]*'|"[^"\n]*"|`[^`\n]*`/g, "'…'");
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
  const message = withoutContent(e instanceof Error ? e.message : String(e));
  const lineOffset = job.input.firstLine - 1;
  const out = message
    .split(tmp)
    .join(job.inputName)
    .replace(/\bframes (\d+)–(\d+)/g, (_, a, b) => `frames ${Number(a) + job.firstFrame}–${Number(b) + job.firstFrame}`)
    .replace(/\bframe (\d+)/g, (_, a) => `frame ${Number(a) + job.firstFrame}`)
    .replace(/\bline (\d+)/g, (_, a) => `line ${Number(a) + lineOffset}`)
    .replace(/\bafter (\d+) complete frames/g, (_, a) => `after ${Number(a) + job.firstFrame} complete frames`);
  return rethrown(e, out, 'ACDC_PARSE');
}

/** The last calculator built, by its calculator name and hyper-parameters: shards of one run reuse it. */
let cached: { key: string; calc: Calc } | undefined;

/** The calculator of the job's options (built once per run, kept in {@link cached}); `input` names the shard in errors. */
function calculatorOf(job: ShardJob, input: string): Calc {
  const key = JSON.stringify([job.options.calculator, job.options.hypers]);
  if (cached?.key !== key) {
    const hypers = job.options.hypers === null ? undefined : temporary('.json');
    try {
      if (hypers) fs.writeFileSync(hypers, job.options.hypers!);
      cached = { key, calc: makeCalculator(job.options.calculator, hypers) };
    } catch (e) {
      throw shardError(e, job, input);
    } finally {
      if (hypers) remove(hypers);
    }
  }
  return cached.calc;
}

/**
 * Largest shard input (bytes) read into memory: its bytes read once,
 * checked and parsed natively. A larger range is copied to a temporary file
 * (checked there) and streamed from it.
 */
const MEMORY_SHARD_BYTES = 64 << 20;

/** The byte range of shard `job`, read into memory and checked against the producer's sha256. */
async function readRange(job: ShardJob): Promise<Buffer> {
  const length = job.input.end - job.input.start;
  const bytes = Buffer.alloc(length);
  const fd = await fs.promises.open(job.input.path, 'r');
  try {
    let read = 0;
    while (read < length) {
      const { bytesRead } = await fd.read(bytes, read, length - read, job.input.start + read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    if (read < length) throw coded('ACDC_IO', `${job.inputName}: ${job.input.path} ends before byte ${job.input.end} of shard ${job.index}: the file changed since it was split`);
  } finally {
    await fd.close();
  }
  if (job.input.sha256 !== undefined && createHash('sha256').update(bytes).digest('hex') !== job.input.sha256) throw rangeChanged(job);
  return bytes;
}

function rangeChanged(job: ShardJob): Error {
  return coded('ACDC_IO', `${job.inputName}: bytes ${job.input.start}–${job.input.end - 1} of ${job.input.path} (shard ${job.index}, frames ${job.firstFrame}–${job.firstFrame + job.frames - 1}) changed since the input was split (sha256 differs): run acdc featurize --queue again`);
}

/** The shard's record, written last (atomically): the shard is complete once it exists. */
function writeRecord(job: ShardJob, out: string, counts: { frames: number; atoms: number; rows: number; columns: number }, crc32: { file: string; labels: string }): ShardRecord {
  const labels = `${out}.labels.json`;
  const record: ShardRecord = {
    id: job.id,
    index: job.index,
    file: path.basename(out),
    labels: path.basename(labels),
    firstFrame: job.firstFrame,
    frames: counts.frames,
    atoms: counts.atoms,
    rows: counts.rows,
    columns: counts.columns,
    crc32,
    ...(job.input.sha256 !== undefined ? { input: { start: job.input.start, end: job.input.end, sha256: job.input.sha256 } } : {}),
    bytes: { file: fs.statSync(out).size, labels: fs.statSync(labels).size },
    worker: `${os.hostname()}:${process.pid}`,
  };
  writeAtomicallySync(path.join(job.outDir, `${shardBase(job.index)}.json`), (t) => fs.writeFileSync(t, JSON.stringify(record, null, 1)));
  return record;
}

/**
 * Shard `job` through the fused path (the SOAP spectra's design rows), as
 * `acdc featurize` writes a file: rows computed natively and written by the
 * native writer to a temporary name (all-zero pages left as holes), renamed
 * once complete. The writer computes the file's CRC-32 as it writes, and
 * the sidecar's is that of the text written: nothing is read back.
 */
async function shardFused(job: ShardJob, out: string, size: number): Promise<ShardRecord> {
  const name = job.inputName;
  const calc = calculatorOf(job, name);
  const length = job.input.end - job.input.start;
  let batches: BatchSource;
  let cleanup = () => undefined as void;
  // with a checksum of the range, the worker checks its own copy of the
  // bytes: what it featurizes is what it checked
  const whole = job.input.start === 0 && size === job.input.end && job.input.sha256 === undefined;
  let where = name;
  if (length <= MEMORY_SHARD_BYTES) {
    const bytes = await readRange(job);
    let parsed;
    try {
      parsed = await parseXyzText(bytes.toString('utf8'), { name, batch: job.options.batch });
    } catch (e) {
      throw shardError(e, job, name);
    }
    let next = 0;
    batches = { take: async () => parsed.batches[Math.min(next++, parsed.batches.length - 1)], settle: async () => undefined };
  } else {
    const input = whole ? job.input.path : temporary('.xyz');
    if (!whole) {
      cleanup = () => remove(input);
      try {
        await pipeline(fs.createReadStream(job.input.path, { start: job.input.start, end: job.input.end - 1 }), fs.createWriteStream(input));
        if (job.input.sha256 !== undefined && (await sha256File(input)) !== job.input.sha256) throw rangeChanged(job);
      } catch (e) {
        cleanup();
        throw e;
      }
    }
    where = input;
    const reader = new native.XyzSystemReader(input);
    batches = new ReadAhead(() => reader.next(job.options.batch), { name, path: input, cleanup: () => undefined } satisfies ResolvedInput);
  }
  let done;
  try {
    done = await designRowsToFile(
      batches,
      { name },
      calc,
      job.options.dtype,
      {
        calculator: job.options.calculator,
        perStructure: job.options.perStructure ?? undefined,
        out,
        batch: job.options.batch,
        dtype: job.options.dtype,
        species: job.options.species,
        maxMemory: job.options.maxMemory ?? undefined,
        progress: false,
      },
      job.options.species,
      undefined,
      true,
    );
  } catch (e) {
    throw shardError(e, job, where);
  } finally {
    cleanup();
  }
  if (done.frames !== job.frames) throw coded('ACDC_INVALID_SYSTEM', `${job.inputName}: shard ${job.index} holds ${done.frames} frames, the producer counted ${job.frames}`);
  if (done.crc32 === null) throw coded('ACDC_INTERNAL', `shard ${job.index}: the writer computed no checksum`);
  return writeRecord(job, out, done, { file: crc32Hex(done.crc32), labels: crc32Hex(native.crc32(Buffer.from(done.labelsText))) });
}

/** Computes one shard (or finds it complete); resolves to its record. */
export async function processShard(job: ShardJob, roots: string[] = resolveRoots(undefined)): Promise<ShardRecord> {
  checkJob(job, roots);
  const done = await verifiedShard(job.outDir, job.id, job.index);
  if (done) return done;
  const base = shardBase(job.index);
  const out = path.join(job.outDir, `${base}.npy`);
  let size: number;
  try {
    size = fs.statSync(job.input.path).size;
  } catch (e) {
    throw rethrown(e, `${job.inputName}: the input ${job.input.path} cannot be read on this worker (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): workers need the input and --out-dir at the same paths as the producer`, 'ACDC_IO');
  }
  if (size < job.input.end) throw coded('ACDC_IO', `${job.inputName}: ${job.input.path} holds ${size} bytes, shard ${job.index} ends at byte ${job.input.end}: the file changed since it was split`);
  if (usesDesignRows('npy', job.options.calculator, job.options.species)) return shardFused(job, out, size);
  // the other calculators: `featurize` on the range (a temporary copy), its files checksummed after
  const whole = job.input.start === 0 && size === job.input.end && job.input.sha256 === undefined;
  const input = whole ? job.input.path : temporary('.xyz');
  const hypers = job.options.hypers === null ? undefined : temporary('.json');
  try {
    if (!whole) {
      await pipeline(fs.createReadStream(job.input.path, { start: job.input.start, end: job.input.end - 1 }), fs.createWriteStream(input));
      if (job.input.sha256 !== undefined && (await sha256File(input)) !== job.input.sha256) throw rangeChanged(job);
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
    if (summary.frames !== job.frames) throw coded('ACDC_INVALID_SYSTEM', `${job.inputName}: shard ${job.index} holds ${summary.frames} frames, the producer counted ${job.frames}`);
    const [file, labels] = await Promise.all([crc32File(out), crc32File(`${out}.labels.json`)]);
    return writeRecord(job, out, { frames: summary.frames, atoms: summary.atoms, rows: summary.rows!, columns: summary.columns! }, { file, labels });
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
  const roots = resolveRoots(options.roots);
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
    async (job: Job<ShardJob, ShardRecord>) => processShard(job.data, roots),
    {
      connection,
      concurrency: options.concurrency ?? 1,
      // a killed worker's job is taken back after lockDuration (+ stalledInterval)
      lockDuration: envMs('ACDC_QUEUE_LOCK_MS', 30_000),
      stalledInterval: envMs('ACDC_QUEUE_STALLED_MS', 30_000),
      maxStalledCount: 3,
    },
  );
  // one line per execution started and per job taken back from a worker
  // that stopped renewing its lock: with them, a log tells how many times
  // each shard was computed
  worker.on('active', (job) => {
    const d = job.data;
    log(`shard ${d.index} (frames ${d.firstFrame}–${d.firstFrame + d.frames - 1}) started (attempt ${job.attemptsStarted})`);
  });
  worker.on('stalled', (jobId) => log(`job ${jobId} stalled: its lock expired, it goes back to the queue`));
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
  log(`worker ${os.hostname()}:${process.pid} on ${displayUrl(url)}, queue ${options.queueName ?? DEFAULT_QUEUE_NAME}, concurrency ${options.concurrency ?? 1}, files under ${roots.join(', ')}`);
  await stopped;
  closing = true;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  await worker.close(lost !== undefined);
  connection.disconnect();
  if (lost) throw lost;
}
