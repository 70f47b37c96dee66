// `acdc featurize --queue`, `acdc worker` and `acdc merge` against a real
// redis-server (started here on a free loopback port, stopped after): the
// merged shards are byte for byte what a single `acdc featurize` writes,
// also when a worker is killed (SIGKILL) in the middle of a shard, and a
// malformed frame fails its shard only, reported in the manifest and by the
// exit code.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRedis } from './prerequisites';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const example = path.join(root, 'examples', 'molecules.xyz');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-queue-'));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const env = { ...process.env, ACDC_NUM_THREADS: '1', ACDC_QUEUE_LOCK_MS: '1500', ACDC_QUEUE_STALLED_MS: '500' };

/** Runs the CLI to completion. */
function run(args: string[], timeout = 120_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [cli, ...args], { env, timeout });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const workers: ChildProcess[] = [];
/** Per worker: resolves true once it has connected and announced itself, false if it exited first. */
const announced = new WeakMap<ChildProcess, Promise<boolean>>();
function startWorker(url: string, ...extra: string[]): ChildProcess {
  const w = spawn(process.execPath, [cli, 'worker', '--queue', url, '--root', dir, '--root', root, ...extra], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  announced.set(
    w,
    new Promise<boolean>((resolve) => {
      w.stderr!.on('data', (d) => {
        err += d;
        if (err.includes('acdc worker: worker ')) resolve(true);
      });
      w.on('exit', () => resolve(false));
    }),
  );
  workers.push(w);
  return w;
}
/** Waits until every given worker is connected to Redis and taking jobs (a condition, not a delay). */
async function workersReady(...ws: ChildProcess[]): Promise<void> {
  expect(await Promise.all(ws.map((w) => announced.get(w)!))).toEqual(ws.map(() => true));
}
async function stopWorkers(): Promise<void> {
  await Promise.all(
    workers.splice(0).map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.exitCode !== null || w.signalCode !== null) return resolve();
          w.on('exit', () => resolve());
          w.kill('SIGTERM');
        }),
    ),
  );
}

/** `n` copies of the example's frames, as one file. */
function bigInput(name: string, copies: number): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, fs.readFileSync(example, 'utf8').repeat(copies));
  return p;
}

/** Runs single-process featurize and queue + merge into twin folders; returns both outputs. */
async function single(input: string, tag: string, options: string[]): Promise<string> {
  fs.mkdirSync(path.join(dir, tag, 'single'), { recursive: true });
  const out = path.join(dir, tag, 'single', 'features.npy');
  const r = await run(['featurize', input, '--out', out, ...options]);
  expect(r.status, r.stderr).toBe(0);
  return out;
}

function expectSameFiles(a: string, b: string): void {
  expect(fs.readFileSync(b).equals(fs.readFileSync(a))).toBe(true);
  expect(fs.readFileSync(`${b}.labels.json`, 'utf8')).toBe(fs.readFileSync(`${a}.labels.json`, 'utf8'));
}

requireRedis();

describe('acdc featurize --queue with redis-server', () => {
  let redis: ChildProcess;
  let port: number;
  const url = (db: number) => `redis://127.0.0.1:${port}/${db}`;

  beforeAll(async () => {
    port = await freePort();
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    for (let k = 0; k < 100; k++) {
      const up = await new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.end();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
      if (up) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('redis-server did not start');
  });

  afterAll(async () => {
    await stopWorkers();
    redis?.kill('SIGTERM');
    // inputs of tens of MB and their shards: not left in the temporary folder
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('producer + 2 workers: the merged shards are the bytes of a single featurize (per-structure mean)', async () => {
    const input = bigInput('two.xyz', 2);
    const options = ['--per-structure', 'mean', '--batch', '5'];
    const want = await single(input, 'two', options);
    // both must be taking jobs before the producer starts, or a worker that starts late (a loaded
    // machine, tests running in parallel) may find every shard already taken by the other
    await workersReady(startWorker(url(1)), startWorker(url(1)));
    const shards = path.join(dir, 'two', 'shards');
    const r = await run(['featurize', input, '--queue', url(1), '--out-dir', shards, '--shard-frames', '17', '--json', ...options]);
    await stopWorkers();
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ shards: Math.ceil(240 / 17), failed: 0, frames: 240 });
    const manifest = JSON.parse(fs.readFileSync(path.join(shards, 'manifest.json'), 'utf8'));
    expect(manifest.complete).toBe(true);
    expect(manifest.failures).toEqual([]);
    expect(manifest.shards.map((s: { firstFrame: number }) => s.firstFrame)).toEqual(Array.from({ length: 15 }, (_, k) => 17 * k));
    expect(manifest.rows).toBe(240);
    // both workers took part
    expect(new Set(manifest.shards.map((s: { worker: string }) => s.worker)).size).toBe(2);
    fs.mkdirSync(path.join(dir, 'two', 'merged'));
    const got = path.join(dir, 'two', 'merged', 'features.npy');
    const m = await run(['merge', path.join(shards, 'manifest.json'), '--out', got]);
    expect(m.status, m.stderr).toBe(0);
    expectSameFiles(want, got);
    // the same holes as the single-process file: merge writes no page of zeros
    // (per-structure SOAP rows of 4 species: most pages are zero)
    expect(fs.statSync(got).blocks).toBe(fs.statSync(want).blocks);
    expect(fs.statSync(got).blocks * 512).toBeLessThan(fs.statSync(got).size);

    // the same command again: the jobs find their shards complete and verified, and recompute nothing
    const before = fs.readdirSync(shards).map((f) => [f, fs.statSync(path.join(shards, f)).mtimeMs]);
    startWorker(url(1));
    const again = await run(['featurize', input, '--queue', url(1), '--out-dir', shards, '--shard-frames', '17', '--json', ...options]);
    await stopWorkers();
    expect(again.status, again.stderr).toBe(0);
    const manifest2 = JSON.parse(fs.readFileSync(path.join(shards, 'manifest.json'), 'utf8'));
    expect(manifest2.shards).toEqual(manifest.shards);
    for (const [f, mtime] of before) if (f !== 'manifest.json') expect(fs.statSync(path.join(shards, f as string)).mtimeMs).toBe(mtime);

    // merge checks every checksum before writing anything
    const tampered = path.join(shards, manifest.shards[3].file);
    const bytes = fs.readFileSync(tampered);
    bytes[bytes.length - 1] ^= 1;
    fs.writeFileSync(tampered, bytes);
    const bad = path.join(dir, 'two', 'tampered.npy');
    const t = await run(['merge', path.join(shards, 'manifest.json'), '--out', bad]);
    expect(t.status).toBe(1);
    expect(t.stderr).toBe(`acdc: ${tampered} does not match its crc32 in ${path.join(shards, 'manifest.json')} (the file changed after the run)\n`);
    expect(fs.existsSync(bad)).toBe(false);
    const missing = await run(['merge', path.join(dir, 'nothing', 'manifest.json'), '--out', bad]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(`acdc: ${path.join(dir, 'nothing', 'manifest.json')}: no such file\n`);
  });

  it('gzip input, per-atom float32 rows, one worker running 2 shards at once: same bytes', async () => {
    const plain = bigInput('gz.xyz', 1);
    const input = `${plain}.gz`;
    fs.writeFileSync(input, gzipSync(fs.readFileSync(plain)));
    const options = ['--calculator', 'soap_radial_spectrum', '--dtype', 'float32'];
    const want = await single(input, 'gz', options);
    startWorker(url(2), '--concurrency', '2');
    const shards = path.join(dir, 'gz', 'shards');
    const r = await run(['featurize', input, '--queue', url(2), '--out-dir', shards, '--shard-frames', '50', ...options]);
    await stopWorkers();
    expect(r.status, r.stderr).toBe(0);
    // gzip input: the producer wrote one plain input per shard
    expect(fs.readdirSync(path.join(shards, 'inputs')).sort()).toEqual(['shard-00000.xyz', 'shard-00001.xyz', 'shard-00002.xyz']);
    const got = path.join(dir, 'gz', 'features.npy');
    const m = await run(['merge', path.join(shards, 'manifest.json'), '--out', got]);
    expect(m.status, m.stderr).toBe(0);
    // the labels name the output file: compare under the same name
    fs.mkdirSync(path.join(dir, 'gz', 'merged'));
    fs.renameSync(got, path.join(dir, 'gz', 'merged', 'features.npy'));
    fs.renameSync(`${got}.labels.json`, path.join(dir, 'gz', 'merged', 'features.npy.labels.json'));
    expectSameFiles(want, path.join(dir, 'gz', 'merged', 'features.npy'));
  });

  it('a shard that outlives its lock many times over is computed once: the lock is renewed while it computes, no stalled job, no second execution', async () => {
    // a 600 ms lock (renewed every 300 ms) and a stalled check every 250 ms,
    // against one shard of 6 000 periodic Cu frames (seconds of compute):
    // a worker whose event loop were blocked by the computation would let the
    // lock expire, and the other worker would take the job and compute it again
    const lockMs = 600;
    const input = path.join(dir, 'long.xyz');
    fs.writeFileSync(input, fs.readFileSync(path.join(root, 'examples', 'emt-cu-train.xyz'), 'utf8').repeat(150));
    const shortLock = { ...env, ACDC_QUEUE_LOCK_MS: String(lockMs), ACDC_QUEUE_STALLED_MS: '250' };
    // each line of the workers' logs with the time it arrived
    const lines: { pid: number; at: number; line: string }[] = [];
    const pair = [0, 1].map(() => {
      const w = spawn(process.execPath, [cli, 'worker', '--queue', url(8), '--root', dir], { env: shortLock, stdio: ['ignore', 'ignore', 'pipe'] });
      let rest = '';
      announced.set(
        w,
        new Promise<boolean>((resolve) => {
          w.stderr!.on('data', (d) => {
            rest += d;
            const parts = rest.split('\n');
            rest = parts.pop()!;
            for (const line of parts) lines.push({ pid: w.pid!, at: performance.now(), line });
            if (lines.some((l) => l.pid === w.pid && l.line.includes('acdc worker: worker '))) resolve(true);
          });
          w.on('exit', () => resolve(false));
        }),
      );
      workers.push(w);
      return w;
    });
    await workersReady(...pair);
    const shards = path.join(dir, 'long', 'shards');
    const r = await run(['featurize', input, '--queue', url(8), '--out-dir', shards, '--shard-frames', '6000', '--per-structure', 'mean']);
    await stopWorkers();
    expect(r.status, r.stderr).toBe(0);
    const started = lines.filter((l) => /shard 0 \(frames 0–5999\) started/.test(l.line));
    const done = lines.filter((l) => /shard 0 \(frames 0–5999\) done/.test(l.line));
    expect(lines.filter((l) => l.line.includes(' stalled: '))).toEqual([]);
    expect(started).toHaveLength(1);
    expect(done).toHaveLength(1);
    expect(done[0].pid).toBe(started[0].pid);
    const manifest = JSON.parse(fs.readFileSync(path.join(shards, 'manifest.json'), 'utf8'));
    expect(manifest.shards[0].worker).toMatch(new RegExp(`:${started[0].pid}$`));
    // not a timing assertion: the check that this run tested what it says,
    // a computation longer than the lock (by about 10× on an idle 2-core machine)
    expect(done[0].at - started[0].at).toBeGreaterThan(lockMs);
  }, 120_000);

  it('a worker killed (SIGKILL) in the middle of a shard: another worker takes the shard, output complete and identical', async () => {
    const input = bigInput('kill.xyz', 3);
    const options = ['--batch', '2', '--per-structure', 'sum'];
    const want = await single(input, 'kill', options);
    const shards = path.join(dir, 'kill', 'shards');
    fs.mkdirSync(shards, { recursive: true });
    const producer = run(['featurize', input, '--queue', url(3), '--out-dir', shards, '--shard-frames', '40', ...options]);
    const victim = startWorker(url(3));
    // wait until the victim is writing a shard (its temporary .npy exists), then kill it
    let partial: string | undefined;
    for (let k = 0; k < 20_000 && partial === undefined; k++) {
      partial = fs.readdirSync(shards).find((f) => f.endsWith('.partial') && f.includes(`.${victim.pid}-`) && f.includes('.npy.'));
      if (partial === undefined) await new Promise((r) => setTimeout(r, 2));
    }
    expect(partial).toBeDefined();
    victim.kill('SIGKILL');
    const index = Number(/shard-(\d+)/.exec(partial!)![1]);
    const rescuer = startWorker(url(3));
    const r = await producer;
    await stopWorkers();
    expect(r.status, r.stderr).toBe(0);
    const manifest = JSON.parse(fs.readFileSync(path.join(shards, 'manifest.json'), 'utf8'));
    // the interrupted shard was computed by the other worker
    expect(manifest.shards[index].worker).toMatch(new RegExp(`:${rescuer.pid}$`));
    expect(manifest.rows).toBe(360);
    fs.mkdirSync(path.join(dir, 'kill', 'merged'));
    const got = path.join(dir, 'kill', 'merged', 'features.npy');
    const m = await run(['merge', path.join(shards, 'manifest.json'), '--out', got]);
    expect(m.status, m.stderr).toBe(0);
    expectSameFiles(want, got);
  });

  it('a malformed frame fails its shard only: reported in the manifest and by the exit code; merge refuses', async () => {
    const lines = fs.readFileSync(example, 'utf8').split('\n');
    // frame 5 of the example: replace a coordinate of its first atom
    let line = 0;
    for (let f = 0; f < 5; f++) line += Number(lines[line]) + 2;
    const bad = line + 2; // 0-based index of the atom line
    const words = lines[bad].trim().split(/\s+/);
    words[2] = 'abc';
    lines[bad] = words.join(' ');
    const input = path.join(dir, 'poison.xyz');
    fs.writeFileSync(input, lines.join('\n'));
    startWorker(url(4));
    const shards = path.join(dir, 'poison');
    const r = await run(['featurize', input, '--queue', url(4), '--out-dir', shards, '--shard-frames', '4', '--attempts', '2', '--per-structure', 'sum']);
    await stopWorkers();
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    // the shard's error is the one a single featurize of the file gives (frame and line in the whole file)
    const alone = await run(['featurize', input, '--out', path.join(dir, 'poison-single.npy'), '--per-structure', 'sum']);
    expect(alone.status).toBe(1);
    expect(alone.stderr).toContain(`line ${bad + 1}`);
    // the same, except that the queue's errors never quote the input (a job may name a file that is not the user's)
    const parse = /parse error at line .*/.exec(alone.stderr.trim())![0].replace(/'[^'\n]*'|"[^"\n]*"|`[^`\n]*`/g, "'…'");
    expect(parse).toContain("'…'");
    // frames 4–7 are read as one batch: the 4 frames of shard 0 were complete
    expect(r.stderr).toBe(
      `acdc: 1 of 30 shards failed (listed in ${path.join(shards, 'manifest.json')}); shard 1 (frames 4–7) after 2 attempts: ${input}: ${parse} (after 4 complete frames)\n`,
    );
    const manifest = JSON.parse(fs.readFileSync(path.join(shards, 'manifest.json'), 'utf8'));
    expect(manifest.complete).toBe(false);
    expect(manifest.failures).toHaveLength(1);
    expect(manifest.failures[0]).toMatchObject({ index: 1, firstFrame: 4, frames: 4, attempts: 2 });
    expect(manifest.failures[0].error).toBe(`${input}: ${parse} (after 4 complete frames)`);
    expect(manifest.shards).toHaveLength(29);
    const m = await run(['merge', path.join(shards, 'manifest.json'), '--out', path.join(dir, 'poison.npy')]);
    expect(m.status).toBe(1);
    expect(m.stderr).toMatch(/^acdc: .*1 shards failed .*run the queue again before merging\n$/);
    expect(fs.existsSync(path.join(dir, 'poison.npy'))).toBe(false);
  });

  it('Redis unreachable or a bad URL: one line naming the URL, exit 1, nothing written', async () => {
    const closed = await freePort();
    const out = path.join(dir, 'nowhere');
    const r = await run(['featurize', example, '--queue', `redis://127.0.0.1:${closed}/0`, '--out-dir', out], 30_000);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^acdc: cannot reach Redis at redis://127\\.0\\.0\\.1:${closed}/0: .*ECONNREFUSED.*\\n$`));
    expect(fs.existsSync(out)).toBe(false);
    const w = await run(['worker', '--queue', `redis://127.0.0.1:${closed}/0`], 30_000);
    expect(w.status).toBe(1);
    expect(w.stderr).toMatch(new RegExp(`^acdc: cannot reach Redis at redis://127\\.0\\.0\\.1:${closed}/0`));
    const h = await run(['featurize', example, '--queue', 'http://127.0.0.1/0', '--out-dir', out]);
    expect(h.status).toBe(1);
    expect(h.stderr).toBe('acdc: --queue http://127.0.0.1/0: expected a redis:// or rediss:// URL, got the scheme "http"\n');
    // usage errors: exit 2
    const d = await run(['featurize', example, '--queue', url(0), '--out-dir', out, '--out', 'x.npy']);
    expect(d.status).toBe(2);
    expect(d.stderr).toMatch(/^acdc featurize: --queue writes shards to --out-dir.*\(see acdc featurize --help\)\n$/);
    const e = await run(['featurize', example, '--queue', url(0)]);
    expect(e.status).toBe(2);
    expect(e.stderr).toMatch(/^acdc featurize: --queue needs --out-dir/);
  });

  it('two producers on one --out-dir: the second is refused naming the first; another run on a finished folder is refused too', async () => {
    const out = path.join(dir, 'shared-out');
    const first = spawn(process.execPath, [cli, 'featurize', example, '--queue', url(6), '--out-dir', out, '--shard-frames', '25', '--per-structure', 'mean'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let firstErr = '';
    first.stderr!.on('data', (d) => (firstErr += d));
    const firstDone = new Promise<number | null>((r) => first.on('exit', (code) => r(code)));
    // no worker yet: the first producer waits for its shards, holding the folder
    for (let k = 0; k < 200 && !fs.existsSync(path.join(out, '.acdc-queue.lock')); k++) await new Promise((r) => setTimeout(r, 50));
    const second = await run(['featurize', example, '--queue', url(6), '--out-dir', out, '--shard-frames', '25', '--per-structure', 'sum']);
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`^acdc: --out-dir .* is in use by another acdc featurize --queue \\(process ${first.pid} on .*\\n$`));
    startWorker(url(6));
    expect(await firstDone, firstErr).toBe(0);
    await stopWorkers();
    expect(fs.existsSync(path.join(out, '.acdc-queue.lock'))).toBe(false);
    // a finished run's folder: another run is refused before anything is touched
    const before = fs.readFileSync(path.join(out, 'manifest.json'), 'utf8');
    const other = await run(['featurize', example, '--queue', url(6), '--out-dir', out, '--shard-frames', '25', '--per-structure', 'sum']);
    expect(other.status).toBe(1);
    expect(other.stderr).toMatch(/^acdc: --out-dir .* holds the manifest of another run \(.*molecules\.xyz\): use another folder, or delete it first\n$/);
    expect(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')).toBe(before);
  }, 120_000);

  it('a worker only touches files under its --root: a job outside fails naming the path', async () => {
    const out = path.join(dir, 'rooted');
    // the worker's root is a folder that holds neither the input nor the output
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-root-'));
    const w = spawn(process.execPath, [cli, 'worker', '--queue', url(7), '--root', elsewhere], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    w.stderr!.on('data', () => undefined);
    workers.push(w);
    const r = await run(['featurize', example, '--queue', url(7), '--out-dir', out, '--shard-frames', '100', '--attempts', '1', '--per-structure', 'mean']);
    await stopWorkers();
    fs.rmSync(elsewhere, { recursive: true, force: true });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/shard 0: the input .*molecules\.xyz is outside the folders this worker may read \(--root /);
  }, 120_000);

  it('Redis lost in the middle of a run: the producer fails within seconds, naming the URL', async () => {
    const p2 = await freePort();
    const r2 = spawn('redis-server', ['--port', String(p2), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    try {
      for (let k = 0; k < 100; k++) {
        const up = await new Promise<boolean>((resolve) => {
          const s = net.connect(p2, '127.0.0.1', () => (s.end(), resolve(true)));
          s.on('error', () => resolve(false));
        });
        if (up) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const producer = spawn(process.execPath, [cli, 'featurize', example, '--queue', `redis://127.0.0.1:${p2}/0`, '--out-dir', path.join(dir, 'lost'), '--shard-frames', '25'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      producer.stderr!.on('data', (d) => (err += d));
      const exited = new Promise<number | null>((r) => producer.on('exit', (code) => r(code)));
      // no worker: the producer waits on its jobs; then Redis goes away
      for (let k = 0; k < 200 && !fs.existsSync(path.join(dir, 'lost', '.acdc-queue.lock')); k++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 500));
      r2.kill('SIGKILL');
      const t = performance.now();
      const code = await exited;
      const seconds = (performance.now() - t) / 1000;
      console.log(`producer exit after Redis was killed: ${seconds.toFixed(1)} s`);
      expect(code).toBe(1);
      expect(err).toMatch(new RegExp(`^acdc: lost the connection to Redis at redis://127\\.0\\.0\\.1:${p2}/0`));
      expect(seconds).toBeLessThan(30); // liveness: it used to take about a minute
    } finally {
      r2.kill('SIGKILL');
    }
  }, 120_000);
});
