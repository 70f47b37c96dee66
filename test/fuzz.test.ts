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

  it('every reproducer of the corpus is a plain error or a success', async () => {
    const r = await chunk('corpus', 1, 0);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    expect(r.counts!.crashes).toBe(0);
    expect(r.counts!.cases).toBeGreaterThanOrEqual(8);
  }, 120_000);
});
