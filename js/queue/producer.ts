// `acdc featurize FILE --queue redis://… --out-dir DIR`: splits the input
// into shards in one streaming pass, enqueues one BullMQ job per shard (job
// id: a deterministic shard id), follows them through QueueEvents, and
// writes DIR/manifest.json describing every shard (or its failure).
import { coded, rethrown } from '../errors';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type { Job, Queue as BullQueue, QueueEvents as BullQueueEvents } from 'bullmq';
import { calculatorInfo, makeCalculator, type CalculatorName, type PerStructure } from '../featurize';
import type { Dtype } from '../tensor';
import { writeAtomicallySync } from '../atomic';
import { connect, DEFAULT_QUEUE_NAME, probeRedis, checkRedisUrl, displayUrl } from './connection';
import { isGzipFile, splitInput, type SplitResult } from './split';
import { recordedShard, shardBase, type ShardJob, type ShardOptions, type ShardRecord } from './shard';

export interface QueueFeaturizeOptions {
  queue: string;
  queueName?: string;
  outDir: string;
  shardFrames: number;
  /** Attempts per shard before it is reported as failed (default 3). */
  attempts?: number;
  calculator: CalculatorName;
  hypers?: string;
  perStructure?: PerStructure;
  dtype?: Dtype;
  species?: number[];
  batch: number;
  maxMemory?: string;
  progress?: boolean;
}

/** A shard that failed every attempt. */
export interface ShardFailure {
  id: string;
  index: number;
  firstFrame: number;
  frames: number;
  attempts: number;
  error: string;
}

/** The file `DIR/manifest.json`. */
export interface Manifest {
  format: 'acdc-shards';
  formatVersion: 1;
  acdc: string;
  created: string;
  input: { name: string; path: string | null; bytes: number; sha256: string; gzip: boolean };
  calculator: CalculatorName;
  /** The hyper-parameters JSON (null: the calculator's defaults). */
  hypers: unknown;
  options: { perStructure: PerStructure | null; dtype: Dtype; species: number[]; batch: number; maxMemory: string | null };
  shardFrames: number;
  frames: number;
  atoms: number;
  /** Rows and columns of the merged design matrix (null while shards are missing). */
  rows: number | null;
  columns: number | null;
  columnLabels: { names: string[]; values: number[][] } | null;
  complete: boolean;
  shards: ShardRecord[];
  failures: ShardFailure[];
}

export interface QueueSummary {
  manifest: string;
  shards: number;
  failed: number;
  frames: number;
  atoms: number;
  seconds: number;
}

function version(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../../package.json') as { version: string }).version;
}

/** One progress line on stderr from queue events. */
function progressLine(done: number, failed: number, total: number, start: number): void {
  const s = (Date.now() - start) / 1000;
  const width = 30;
  const bar = '█'.repeat(Math.round((total ? (done + failed) / total : 1) * width)).padEnd(width, '░');
  process.stderr.write(`\r${bar} ${done}/${total} shards${failed ? `, ${failed} failed` : ''}  elapsed ${s.toFixed(1)}s `);
}

/**
 * Enqueues the shards of `file` and waits for the workers; resolves with a
 * summary once the manifest is written. Rejects (after writing the
 * manifest) when a shard failed every attempt.
 */
export async function featurizeOnQueue(file: string, o: QueueFeaturizeOptions): Promise<QueueSummary> {
  const start = Date.now();
  const url = checkRedisUrl(o.queue);
  if (!calculatorInfo(o.calculator).dense) throw coded('ACDC_INVALID_PARAMETER', `--queue writes .npy shards: ${o.calculator} needs an .mts output, which the queue does not produce`);
  if (!Number.isSafeInteger(o.shardFrames) || o.shardFrames < 1) throw coded('ACDC_INVALID_PARAMETER', `--shard-frames must be a positive integer, got ${o.shardFrames}`);
  const attempts = o.attempts ?? 3;
  // the hyper-parameters are checked here, and travel as text to the workers
  makeCalculator(o.calculator, o.hypers);
  const hypers = o.hypers === undefined ? null : fs.readFileSync(o.hypers, 'utf8');
  if (file !== '-') {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      throw coded('ACDC_IO', `${file}: no such file`);
    }
    if (st.isDirectory()) throw coded('ACDC_IO', `${file} is a folder, not an extended XYZ file`);
    if (st.size === 0) throw coded('ACDC_PARSE', `${file} is empty: no frames to read`);
  }
  // a plain file is split (read, nothing written) while Redis is probed and
  // the queue client loaded: no worker has a job before the split ends, and
  // loading ioredis and BullMQ (≈ 0.4 s) used to come first, on the path of
  // every run. An error of the split is reported once it is awaited, after
  // the probe's.
  let early: Promise<SplitResult> | undefined;
  try {
    if (file !== '-' && !isGzipFile(file)) early = splitInput(file, file, { shardFrames: o.shardFrames, collectSpecies: o.species === undefined, inputsDir: path.join(path.resolve(o.outDir), 'inputs') });
  } catch {
    // unreadable: split (and reported) in its turn, as before
  }
  early?.catch(() => undefined);
  await probeRedis(url);
  const outDir = path.resolve(o.outDir);
  try {
    fs.mkdirSync(outDir, { recursive: true });
  } catch (e) {
    throw rethrown(e, `--out-dir ${o.outDir}: ${(e as Error).message}`, 'ACDC_IO');
  }
  const unlock = lockFolder(outDir, o.outDir);
  try {
    return await produce(file, o, url, outDir, hypers, attempts, start, early);
  } finally {
    unlock();
  }
}

/** The lock file of a run's output folder. */
export const LOCK_FILE = '.acdc-queue.lock';

/** Whether process `pid` of this host is alive. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the output folder for this run: a lock file created exclusively
 * (a second producer on the same folder is refused, naming the first); a
 * lock left by a process of this host that no longer runs is taken over.
 * Returns the function that releases it. @internal
 */
export function lockFolder(outDir: string, shown: string): () => void {
  const lock = path.join(outDir, LOCK_FILE);
  const mine = JSON.stringify({ host: os.hostname(), pid: process.pid, started: new Date().toISOString() });
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(lock, mine, { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw rethrown(e, `--out-dir ${shown}: cannot create ${LOCK_FILE} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'ACDC_IO');
      let holder: { host?: string; pid?: number; started?: string } = {};
      try {
        holder = JSON.parse(fs.readFileSync(lock, 'utf8')) as typeof holder;
      } catch {
        // unreadable: treated as held
      }
      const stale = holder.host === os.hostname() && Number.isSafeInteger(holder.pid) && !alive(holder.pid!);
      if (stale && attempt === 0) {
        fs.rmSync(lock, { force: true });
        continue;
      }
      const who = holder.pid !== undefined ? `process ${holder.pid} on ${holder.host}, since ${holder.started}` : 'another process';
      throw coded('ACDC_IO', `--out-dir ${shown} is in use by another acdc featurize --queue (${who}): use another folder, or remove ${lock} if that run is gone`);
    }
  }
  return () => {
    try {
      if (fs.readFileSync(lock, 'utf8') === mine) fs.rmSync(lock, { force: true });
    } catch {
      // already gone
    }
  };
}

async function produce(file: string, o: QueueFeaturizeOptions, url: string, outDir: string, hypers: string | null, attempts: number, start: number, early: Promise<SplitResult> | undefined): Promise<QueueSummary> {
  // a folder holding the manifest of another run (other input or options) is
  // not overwritten; the same run again (resumed) is fine. What is known
  // before the split is checked first (so that nothing of that run is
  // touched), the input's checksum and species after it.
  const manifestPath = path.join(outDir, 'manifest.json');
  let previous: Partial<Manifest> | null | undefined;
  if (fs.existsSync(manifestPath)) {
    try {
      previous = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as Partial<Manifest>;
    } catch {
      previous = null;
    }
    const same =
      previous !== null &&
      previous.input?.path === (file === '-' ? null : path.resolve(file)) &&
      previous.calculator === o.calculator &&
      previous.shardFrames === o.shardFrames &&
      JSON.stringify(previous.hypers ?? null) === JSON.stringify(hypers === null ? null : JSON.parse(hypers)) &&
      JSON.stringify({ ...previous.options, species: undefined }) ===
        JSON.stringify({ perStructure: o.perStructure ?? null, dtype: o.dtype ?? 'float64', species: undefined, batch: o.batch, maxMemory: o.maxMemory ?? null });
    if (!same) throw coded('ACDC_INVALID_PARAMETER', `--out-dir ${o.outDir} holds the manifest of another run (${previous?.input?.name ?? 'unreadable'}): use another folder, or delete it first`);
  }
  try {
    fs.mkdirSync(path.join(outDir, 'inputs'), { recursive: true });
  } catch (e) {
    throw rethrown(e, `--out-dir ${o.outDir}: ${(e as Error).message}`, 'ACDC_IO');
  }
  const name = file === '-' ? 'standard input' : file;
  const splitting = early ?? splitInput(file, name, { shardFrames: o.shardFrames, collectSpecies: o.species === undefined, inputsDir: path.join(outDir, 'inputs') });
  splitting.catch(() => undefined);
  // loaded while the split runs (its species pass is on the native pool)
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Queue, QueueEvents } = require('bullmq') as typeof import('bullmq');
  const split = await splitting;
  if (split.frames === 0) throw coded('ACDC_PARSE', `${name} holds no frames`);
  const gzip = split.shards.length > 0 && split.shards[0].input.path.startsWith(path.join(outDir, 'inputs'));
  if (!gzip) fs.rmSync(path.join(outDir, 'inputs'), { recursive: true, force: true });
  const options: ShardOptions = {
    calculator: o.calculator,
    hypers,
    perStructure: o.perStructure ?? null,
    dtype: o.dtype ?? 'float64',
    species: [...new Set(o.species ?? split.species ?? [])].sort((a, b) => a - b),
    batch: o.batch,
    maxMemory: o.maxMemory ?? null,
  };
  if (previous !== undefined && (previous === null || previous.input?.sha256 !== split.sha256 || JSON.stringify(previous.options?.species) !== JSON.stringify(options.species))) {
    throw coded('ACDC_INVALID_PARAMETER', `--out-dir ${o.outDir} holds the manifest of another run (${previous?.input?.name ?? 'unreadable'}): use another folder, or delete it first`);
  }
  const runKey = createHash('sha256')
    .update(JSON.stringify({ input: split.sha256, options, shardFrames: o.shardFrames, outDir }))
    .digest('hex')
    .slice(0, 16);
  const jobs: ShardJob[] = split.shards.map((s) => ({
    id: `${runKey}-${s.index}`,
    index: s.index,
    inputName: name,
    input: s.input,
    firstFrame: s.firstFrame,
    frames: s.frames,
    outDir,
    options,
  }));

  const queueName = o.queueName ?? DEFAULT_QUEUE_NAME;
  let closing = false;
  let lost: Error | undefined;
  let wake: () => void = () => undefined;
  const onLost = (e: Error) => {
    if (!closing) {
      lost = e;
      wake();
    }
  };
  const qConnection = connect(url, onLost);
  const eConnection = connect(url, onLost);
  const queue: BullQueue<ShardJob, ShardRecord> = new Queue<ShardJob, ShardRecord>(queueName, { connection: qConnection });
  const events: BullQueueEvents = new QueueEvents(queueName, { connection: eConnection });
  queue.on('error', () => undefined);
  events.on('error', () => undefined);
  const pending = new Map<string, ShardJob>(jobs.map((j) => [j.id, j]));
  const records = new Map<number, ShardRecord>();
  const failures: ShardFailure[] = [];
  const show = o.progress ? () => progressLine(records.size, failures.length, jobs.length, start) : () => undefined;
  try {
    await events.waitUntilReady();
    // jobs the events say have finished: only those are looked at, except
    // for a sweep of every pending job once a second (an event can be missed)
    const finished = new Set<string>();
    events.on('completed', ({ jobId }) => {
      if (pending.has(jobId)) {
        finished.add(jobId);
        wake();
      }
    });
    events.on('failed', ({ jobId }) => {
      if (pending.has(jobId)) {
        finished.add(jobId);
        wake();
      }
    });
    // a job of an earlier run of the same shards: followed if still waiting
    // or running, else replaced; the new jobs are added in one round trip
    const existing = await Promise.all(jobs.map((job) => queue.getJob(job.id)));
    const states = await Promise.all(existing.map((j) => j?.getState()));
    const fresh: ShardJob[] = [];
    await Promise.all(
      jobs.map(async (job, k) => {
        const j = existing[k];
        if (j) {
          if (states[k] === 'completed' || states[k] === 'failed') await j.remove();
          else return; // waiting or running already: follow it
        }
        fresh.push(job);
      }),
    );
    fresh.sort((a, b) => a.index - b.index);
    await queue.addBulk(fresh.map((job) => ({ name: 'shard', data: job, opts: { jobId: job.id, attempts, backoff: { type: 'fixed' as const, delay: 500 }, removeOnComplete: false, removeOnFail: false } })));
    // follow the jobs: woken by queue events, and checking every second in any case
    let sweep = Date.now() + 1000;
    while (pending.size > 0 && !lost) {
      const all = Date.now() >= sweep;
      if (all) sweep = Date.now() + 1000;
      const look = all ? [...pending] : [...finished].filter((id) => pending.has(id)).map((id) => [id, pending.get(id)!] as const);
      finished.clear();
      const lookStates = await Promise.all(look.map(([id]) => queue.getJobState(id)));
      for (const [k, [id, job]] of look.entries()) {
        const state = lookStates[k];
        if (state === 'completed') {
          // the record and file sizes are checked here; the checksums of
          // the files (which cost a read of every shard) by acdc merge,
          // which refuses a shard that does not match them
          const record = await recordedShard(outDir, id, job.index);
          if (record) records.set(job.index, record);
          else failures.push({ id, index: job.index, firstFrame: job.firstFrame, frames: job.frames, attempts: 0, error: `the job completed but ${shardBase(job.index)} is missing or does not match its record in ${outDir}` });
          pending.delete(id);
        } else if (state === 'failed' || state === 'unknown') {
          const j: Job | undefined = await queue.getJob(id);
          failures.push({
            id,
            index: job.index,
            firstFrame: job.firstFrame,
            frames: job.frames,
            attempts: j?.attemptsMade ?? 0,
            error: j?.failedReason ?? 'the job disappeared from the queue',
          });
          pending.delete(id);
        }
      }
      show();
      if (pending.size === 0) break;
      if (finished.size > 0) continue;
      // the timer is cleared when an event wakes the loop: a pending one
      // would keep the process alive for up to a second after the run
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, Math.max(0, sweep - Date.now()));
      });
      clearTimeout(timer);
    }
    if (lost) throw lost;
    // the manifest holds the record of every shard: the jobs are no longer needed
    await Promise.all(jobs.map(async (job) => (await queue.getJob(job.id))?.remove()));
  } catch (e) {
    if (lost) throw lost;
    const message = (e as Error).message;
    if (/Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT/.test(message)) throw rethrown(e, `lost the connection to Redis at ${displayUrl(url)}: ${message}`, 'ACDC_IO');
    throw e;
  } finally {
    closing = true;
    if (o.progress) process.stderr.write('\n');
    await Promise.allSettled([queue.close(), events.close()]);
    qConnection.disconnect();
    eConnection.disconnect();
  }

  const shards = [...records.values()].sort((a, b) => a.index - b.index);
  failures.sort((a, b) => a.index - b.index);
  const first = shards[0];
  let columnLabels: Manifest['columnLabels'] = null;
  if (first) {
    const sidecar = JSON.parse(fs.readFileSync(path.join(outDir, first.labels), 'utf8')) as { columns: { names: string[]; values: number[][] } };
    columnLabels = sidecar.columns;
  }
  const complete = failures.length === 0;
  const manifest: Manifest = {
    format: 'acdc-shards',
    formatVersion: 1,
    acdc: version(),
    created: new Date().toISOString(),
    input: { name, path: file === '-' ? null : path.resolve(file), bytes: split.bytes, sha256: split.sha256, gzip },
    calculator: o.calculator,
    hypers: hypers === null ? null : JSON.parse(hypers),
    options: { perStructure: options.perStructure, dtype: options.dtype, species: options.species, batch: options.batch, maxMemory: options.maxMemory },
    shardFrames: o.shardFrames,
    frames: split.frames,
    atoms: split.atoms,
    rows: complete ? shards.reduce((n, s) => n + s.rows, 0) : null,
    columns: first ? first.columns : null,
    columnLabels,
    complete,
    shards,
    failures,
  };
  writeAtomicallySync(manifestPath, (t) => fs.writeFileSync(t, JSON.stringify(manifest, null, 1)));
  if (!complete) {
    const f = failures[0];
    throw coded('ACDC_IO', 
      `${failures.length} of ${jobs.length} shards failed (listed in ${manifestPath}); shard ${f.index} (frames ${f.firstFrame}–${f.firstFrame + f.frames - 1}) after ${f.attempts} attempts: ${f.error.split('\n')[0]}`,
    );
  }
  return { manifest: manifestPath, shards: shards.length, failed: 0, frames: split.frames, atoms: split.atoms, seconds: (Date.now() - start) / 1000 };
}

export { displayUrl };
