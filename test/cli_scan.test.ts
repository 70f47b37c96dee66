// `acdc scan` end to end: the learning-curve errors equal an independent
// computation (features from `acdc featurize`, ridge regression solved in
// its primal form / GP mean solved by Gaussian elimination here) on the
// split the command reports; the SVG and the table; bad input.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatXyz, polynomialKernel, readNpySync, readXyzSync, writeXyzSync } from 'acdc-ml';
import { run } from './spawn_helpers';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-cli-scan-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function acdc(...args: string[]) {
  const r = await run(process.execPath, [cli, ...args], { env: { ...process.env, ACDC_NUM_THREADS: '2' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// the bundled molecules with a smooth pair-potential energy (eV), as a target
const frames = readXyzSync(path.join(root, 'examples', 'molecules.xyz'));
for (const f of frames) {
  let e = 0;
  for (let i = 0; i < f.size; i++) {
    for (let j = 0; j < i; j++) {
      const d = Math.hypot(f.positions[3 * i] - f.positions[3 * j], f.positions[3 * i + 1] - f.positions[3 * j + 1], f.positions[3 * i + 2] - f.positions[3 * j + 2]);
      e += Math.sqrt(f.types[i] * f.types[j]) * (Math.exp(-2 * (d - 1.2)) - 2 * Math.exp(-(d - 1.2)));
    }
  }
  f.info.energy = e;
}
const data = path.join(dir, 'molecules-energy.xyz');
writeXyzSync(data, frames);
const perAtom = frames.map((f) => (f.info.energy as number) / f.size);

/** Solves A x = b (n × n, row-major) by Gaussian elimination with partial pivoting. */
function solve(A: Float64Array, b: Float64Array, n: number): Float64Array {
  const M = Float64Array.from(A);
  const x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r * n + c]) > Math.abs(M[p * n + c])) p = r;
    for (let k = 0; k < n; k++) [M[c * n + k], M[p * n + k]] = [M[p * n + k], M[c * n + k]];
    [x[c], x[p]] = [x[p], x[c]];
    for (let r = c + 1; r < n; r++) {
      const f = M[r * n + c] / M[c * n + c];
      for (let k = c; k < n; k++) M[r * n + k] -= f * M[c * n + k];
      x[r] -= f * x[c];
    }
  }
  for (let r = n - 1; r >= 0; r--) {
    let s = x[r];
    for (let k = r + 1; k < n; k++) s -= M[r * n + k] * x[k];
    x[r] = s / M[r * n + r];
  }
  return x;
}

function rmse(pred: number[], test: number[]): number {
  return Math.sqrt(test.reduce((a, t, k) => a + (pred[k] - perAtom[t]) ** 2, 0) / test.length);
}

const RADIAL_4 = {
  cutoff: { radius: 4, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { radial: { type: 'Gto', max_radial: 7 } },
};

describe('acdc scan', () => {
  it('linear: each error equals primal ridge regression (intercept, centred features) on `featurize --per-structure mean`', async () => {
    const svg = path.join(dir, 'curves.svg');
    const r = await acdc('scan', data, '--cutoffs', '4,2.5', '--body-order', '2', '--relative-regularizer', '1e-4', '--svg', svg, '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ structures: 120, testSize: 30, trainSizes: [12, 23, 45, 90], model: 'linear', target: 'energy' });
    expect(s.curves.map((c: { cutoff: number; bodyOrder: number }) => [c.cutoff, c.bodyOrder])).toEqual([
      [4, 2],
      [2.5, 2],
    ]);
    expect(new Set([...s.split.test, ...s.split.train]).size).toBe(120);

    const hypers = path.join(dir, 'radial4.json');
    fs.writeFileSync(hypers, JSON.stringify(RADIAL_4));
    const out = path.join(dir, 'radial4.npy');
    const f = await acdc('featurize', data, '--calculator', 'soap_radial_spectrum', '--hypers', hypers, '--per-structure', 'mean', '--out', out);
    expect(f.status, f.stderr).toBe(0);
    const X = readNpySync(out);
    const F = X.shape[1];
    expect(s.curves[0].columns).toBe(F);
    s.trainSizes.forEach((size: number, k: number) => {
      const train: number[] = s.split.train.slice(0, size);
      const mu = new Float64Array(F);
      for (const t of train) for (let j = 0; j < F; j++) mu[j] += X.data[t * F + j] / size;
      const ybar = train.reduce((a, t) => a + perAtom[t], 0) / size;
      // (XcᵀXc + λ I) w = Xcᵀ (y − ȳ), λ = 1e-4 · trace(Xc Xcᵀ) / n
      const A = new Float64Array(F * F);
      const b = new Float64Array(F);
      let trace = 0;
      for (const t of train) {
        for (let i = 0; i < F; i++) {
          const xi = X.data[t * F + i] - mu[i];
          trace += xi * xi;
          b[i] += xi * (perAtom[t] - ybar);
          for (let j = 0; j < F; j++) A[i * F + j] += xi * (X.data[t * F + j] - mu[j]);
        }
      }
      for (let i = 0; i < F; i++) A[i * F + i] += (1e-4 * trace) / size;
      const w = solve(A, b, F);
      const pred = s.split.test.map((t: number) => {
        let p = ybar;
        for (let j = 0; j < F; j++) p += (X.data[t * F + j] - mu[j]) * w[j];
        return p;
      });
      const want = rmse(pred, s.split.test);
      expect(Math.abs(s.curves[0].rmse[k] - want), `n = ${size}`).toBeLessThanOrEqual(1e-8 * want);
    });
    // with every training structure, r_c = 4 Å beats predicting the mean
    expect(s.curves[0].rmse[3]).toBeLessThan(0.5 * s.testStd);

    const text = fs.readFileSync(svg, 'utf8');
    expect(text.startsWith('<svg')).toBe(true);
    expect(text).toContain('training structures');
    expect(text).toContain('test RMSE of energy per atom');
    expect(text).toContain('r_c = 2.5 Å, body order 2');
  });

  it('gpr: each error equals the GP mean with the (x̂·x̂′)² kernel of the per-structure power spectrum; table output', async () => {
    const r = await acdc('scan', data, '--cutoffs', '3', '--body-order', '3', '--model', 'gpr', '--relative-regularizer', '1e-3', '--seed', '7', '--json');
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    const hypers = path.join(dir, 'ps3.json');
    fs.writeFileSync(
      hypers,
      JSON.stringify({
        cutoff: { radius: 3, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
        density: { type: 'Gaussian', width: 0.3 },
        basis: { type: 'TensorProduct', max_angular: 6, radial: { type: 'Gto', max_radial: 7 } },
      }),
    );
    const out = path.join(dir, 'ps3.npy');
    expect((await acdc('featurize', data, '--hypers', hypers, '--per-structure', 'mean', '--out', out)).status).toBe(0);
    const X = readNpySync(out);
    const K = polynomialKernel(X, X, { zeta: 2 }).data;
    const N = X.shape[0];
    s.trainSizes.forEach((size: number, k: number) => {
      const train: number[] = s.split.train.slice(0, size);
      const ybar = train.reduce((a, t) => a + perAtom[t], 0) / size;
      const A = new Float64Array(size * size);
      for (let a = 0; a < size; a++) for (let b = 0; b < size; b++) A[a * size + b] = K[train[a] * N + train[b]] + (a === b ? 1e-3 : 0);
      const alpha = solve(A, Float64Array.from(train, (t) => perAtom[t] - ybar), size);
      const pred = s.split.test.map((t: number) => train.reduce((p, u, a) => p + K[t * N + u] * alpha[a], ybar));
      const want = rmse(pred, s.split.test);
      expect(Math.abs(s.curves[0].rmse[k] - want), `n = ${size}`).toBeLessThanOrEqual(1e-8 * want);
    });
    const table = await acdc('scan', data, '--cutoffs', '3', '--body-order', '3', '--model', 'gpr', '--relative-regularizer', '1e-3', '--seed', '7');
    expect(table.status).toBe(0);
    expect(table.stdout).toContain('n=90');
    expect(table.stdout).toContain(s.curves[0].rmse[3].toPrecision(4));
  });

  it('bad input: one line, exit 1 or 2, no plot left', async () => {
    const noEnergy = path.join(root, 'examples', 'molecules.xyz');
    const few = path.join(dir, 'few.xyz');
    fs.writeFileSync(few, formatXyz(frames.slice(0, 6)));
    const text = path.join(dir, 'text-energy.xyz');
    fs.writeFileSync(text, fs.readFileSync(data, 'utf8').replace(/energy=[^ ]+/, 'energy=high'));
    const cases: Array<[string[], number, RegExp]> = [
      [['scan', noEnergy, '--cutoffs', '3', '--svg', path.join(dir, 'bad1.svg')], 1, /frame 0: no "energy" in the comment line/],
      [['scan', text, '--cutoffs', '3'], 1, /frame 0: energy is "high", not a finite number/],
      [['scan', data, '--cutoffs', '3', '--target-key', 'charge'], 1, /no "charge" in the comment line/],
      [['scan', few, '--cutoffs', '3', '--svg', path.join(dir, 'bad2.svg')], 1, /6 structures: a learning curve needs at least 10/],
      [['scan', data, '--cutoffs', '3', '--body-order', '4'], 1, /--body-order 4: expected 2 \(radial spectrum\) or 3/],
      [['scan', data, '--cutoffs', '3', '--svg', path.join(dir, 'bad3.png')], 1, /the plot file must end in \.svg/],
      [['scan', data, '--cutoffs', '3,x'], 2, /^acdc scan: option '--cutoffs <list>' argument '3,x' is invalid/],
      [['scan', data, '--cutoffs', '3', '--model', 'nn'], 2, /expected one of linear, gpr, got "nn"/],
      [['scan', data], 2, /required option '--cutoffs <list>' not specified/],
    ];
    for (const [args, status, message] of cases) {
      const r = await acdc(...args);
      expect(r.status, args.join(' ')).toBe(status);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('bad') || f.includes('.partial'))).toEqual([]);
  });
});
