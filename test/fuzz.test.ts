// Seeded fuzzing of the parsers and TensorMap operations through the public
// API, each chunk of cases in its own child process (scripts/fuzz/worker.cjs):
// an input that crashed the process would show as a signal or a non-zero exit
// here instead of killing the test runner. `npm run fuzz -- --minutes N` runs
// the same targets for longer, with fresh seeds.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const worker = path.join(__dirname, '..', 'scripts', 'fuzz', 'worker.cjs');

interface Counts {
  target: string;
  cases: number;
  ok: number;
  errors: number;
  crashes: number;
}

/** Runs one chunk in a child process; resolves with its exit and its counts. */
function chunk(target: string, seed: number, cases: number): Promise<{ code: number | null; signal: string | null; counts?: Counts; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [worker, '--target', target, '--seed', String(seed), '--cases', String(cases)]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => {
      const line = stdout.trim().split('\n').pop();
      resolve({ code, signal, counts: line ? (JSON.parse(line) as Counts) : undefined, stderr: stderr.slice(-3000) });
    });
  });
}

async function fuzz(target: string, total: number, chunks: number): Promise<Counts> {
  const sum: Counts = { target, cases: 0, ok: 0, errors: 0, crashes: 0 };
  const runs = await Promise.all(Array.from({ length: chunks }, (_, k) => chunk(target, 1000 * k + 7, Math.ceil(total / chunks))));
  for (const r of runs) {
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    for (const key of ['cases', 'ok', 'errors', 'crashes'] as const) sum[key] += r.counts![key];
  }
  console.log(`fuzz ${target}: ${JSON.stringify(sum)}`);
  return sum;
}

describe('fuzzing in child processes', () => {
  it('extended XYZ: no crash, and whatever parses formats back to an equal frame', async () => {
    const c = await fuzz('xyz', 10_000, 2);
    expect(c.crashes).toBe(0);
    expect(c.ok).toBeGreaterThan(200);
  }, 120_000);

  it('.npy: no crash', async () => {
    const c = await fuzz('npy', 10_000, 2);
    expect(c.crashes).toBe(0);
    expect(c.errors).toBeGreaterThan(1000);
  }, 120_000);

  it('.mts: no crash, and whatever loads round-trips', async () => {
    const c = await fuzz('mts', 10_000, 2);
    expect(c.crashes).toBe(0);
    expect(c.ok).toBeGreaterThan(100);
  }, 120_000);

  it('TensorMap operations on random valid maps: no crash, every result round-trips through .mts', async () => {
    const c = await fuzz('ops', 2_100, 2);
    expect(c.crashes).toBe(0);
    expect(c.cases).toBeGreaterThanOrEqual(10_000);
    expect(c.ok).toBeGreaterThan(5000);
  }, 120_000);

  it('.acdc model files (CRC recomputed): no crash, no huge allocation, no silently different prediction after an edit of a validated field', async () => {
    const runs = await Promise.all([chunk('acdc', 11, 400), chunk('acdc', 1011, 400)]);
    let loaded = 0;
    let cases = 0;
    for (const r of runs) {
      expect(r.signal, r.stderr).toBeNull();
      expect(r.code, r.stderr).toBe(0);
      const c = r.counts as Counts & { loaded: number; silent: number; maxRssMiB: number };
      expect(c.crashes, r.stderr).toBe(0);
      expect(c.silent, r.stderr).toBe(0);
      // a model of a few kB: anything near a GiB is an allocation sized by a hostile field
      expect(c.maxRssMiB).toBeLessThan(1024);
      loaded += c.loaded;
      cases += c.cases;
    }
    console.log(`fuzz acdc: ${cases} cases, ${loaded} loaded`);
    expect(cases).toBe(800);
    expect(loaded).toBeGreaterThan(20);
  }, 180_000);

  it('every reproducer of the corpus is a plain error or a success', async () => {
    const r = await chunk('corpus', 1, 0);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    expect(r.counts!.crashes).toBe(0);
    expect(r.counts!.cases).toBeGreaterThanOrEqual(8);
  }, 120_000);
});
