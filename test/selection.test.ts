// Selection (FPS, CUR) and polynomial kernels against scikit-matter 0.4.1 and
// numpy (fixtures from scripts/reference/skmatter_fixtures.py).
// FPS/CUR: indices identical (ties included); FPS select distances ≤ 1e-12
// relative. Kernels: ≤ 1e-13 relative to the largest entry.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cur,
  curAsync,
  curWithScores,
  farthestPointSampling,
  farthestPointSamplingAsync,
  farthestPointSamplingWithScores,
  farthestPointSamplingWithScoresAsync,
  polynomialKernel,
  polynomialKernelAsync,
  structureKernel,
  structureKernelAsync,
  readNpySync,
  readXyzSync,
  selectSamples,
  selectSamplesAsync,
  SoapPowerSpectrum,
  type DenseArray,
} from 'acdc-ml';

interface ArrayJson {
  shape: number[];
  data: number[];
}
const FIXTURES = join(__dirname, 'fixtures', 'skmatter');
/** An inline array, or `{npy}`: a SOAP feature matrix stored next to the JSON. */
const dense = (a: ArrayJson | { npy: string }): DenseArray<Float64Array> =>
  'npy' in a ? readNpySync(join(FIXTURES, a.npy)) : { data: Float64Array.from(a.data), shape: a.shape };
const load = (name: string) => JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8'));
const num = (v: number | string) => (v === 'inf' ? Infinity : v === '-inf' ? -Infinity : (v as number));

interface FpsCase {
  name: string;
  X: ArrayJson | { npy: string };
  n: number;
  axis: 'samples' | 'features';
  initialize: number | number[];
  indices: number[];
  distances: (number | string)[];
}
interface CurCase {
  name: string;
  X: ArrayJson | { npy: string };
  n: number;
  axis: 'samples' | 'features';
  k: number;
  recomputeEvery: number;
  indices: number[];
}
const selection = load('selection') as { versions: Record<string, string>; fps: FpsCase[]; cur: CurCase[] };
// carbon environments of examples/molecules.xyz (SOAP power / radial spectrum computed by acdc)
const soap = load('soap') as { fps: FpsCase[]; cur: CurCase[] };
selection.fps.push(...soap.fps);
selection.cur.push(...soap.cur);

function maxRelative(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < want.length; i++) if (Number.isFinite(want[i])) scale = Math.max(scale, Math.abs(want[i]));
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    if (!Number.isFinite(want[i])) {
      expect(got[i]).toBe(want[i]);
      continue;
    }
    worst = Math.max(worst, Math.abs(got[i] - want[i]) / scale);
  }
  return worst;
}

describe('farthest point sampling vs skmatter 0.4.1', () => {
  it('fixtures were made with the pinned versions', () => {
    expect(selection.versions.skmatter).toBe('0.4.1');
  });
  for (const c of selection.fps) {
    it(`${c.name}: same indices and select distances`, async () => {
      const opts = { initialize: c.initialize, axis: c.axis };
      const X = dense(c.X);
      expect(Array.from(farthestPointSampling(X, c.n, opts))).toEqual(c.indices);
      const s = farthestPointSamplingWithScores(X, c.n, opts);
      expect(Array.from(s.indices)).toEqual(c.indices);
      expect(maxRelative(s.scores, c.distances.map(num))).toBeLessThanOrEqual(1e-12);
      expect(Array.from(await farthestPointSamplingAsync(X, c.n, opts))).toEqual(c.indices);
      expect(Array.from((await farthestPointSamplingWithScoresAsync(X, c.n, opts)).scores)).toEqual(Array.from(s.scores));
    });
  }
  it('reads typed-array views (non-zero byteOffset) correctly', () => {
    const big = Float64Array.from({ length: 200 }, (_, k) => Math.sin(k * 0.77) + (k % 7));
    const view = { data: big.subarray(40, 100), shape: [20, 3] };
    const copy = { data: Float64Array.from(big.subarray(40, 100)), shape: [20, 3] };
    const a = farthestPointSamplingWithScores(view, 6);
    const b = farthestPointSamplingWithScores(copy, 6);
    expect(Array.from(a.indices)).toEqual(Array.from(b.indices));
    expect(Array.from(a.scores)).toEqual(Array.from(b.scores));
    expect(Array.from(cur(view, 2, { axis: 'features' }))).toEqual(Array.from(cur(copy, 2, { axis: 'features' })));
  });
  it('a float32 copy selects the same points when values are exact in float32', () => {
    const c = selection.fps.find((f) => f.name === 'ties_samples')!;
    const X = { data: Float32Array.from((c.X as ArrayJson).data), shape: (c.X as ArrayJson).shape };
    expect(Array.from(farthestPointSampling(X, c.n))).toEqual(c.indices);
  });
});

describe('CUR vs skmatter 0.4.1', () => {
  for (const c of selection.cur) {
    it(`${c.name}: same indices`, async () => {
      const opts = { k: c.k, recomputeEvery: c.recomputeEvery, axis: c.axis };
      const X = dense(c.X);
      expect(Array.from(cur(X, c.n, opts))).toEqual(c.indices);
      expect(Array.from(await curAsync(X, c.n, opts))).toEqual(c.indices);
      const s = curWithScores(X, c.n, opts);
      // leverage scores of k unit vectors: each in [0, 1]
      for (const v of s.scores) expect(v).toBeGreaterThanOrEqual(0);
      for (const v of s.scores) expect(v).toBeLessThanOrEqual(1 + 1e-12);
    });
  }
  it('selecting more points than the rank of X stays valid (distinct indices, scores in [0, 1])', () => {
    // rank 2: after two picks every point is orthogonalised to zero
    const X = { data: Float64Array.of(1, 0, 0, 2, 1, 1, 3, 1, 2, -1, 0, 1), shape: [6, 2] };
    const s = curWithScores(X, 6);
    expect(new Set(s.indices).size).toBe(6);
    expect(Array.from(s.scores.slice(2)).every((v) => Math.abs(v) <= 1)).toBe(true);
  });
  it('the first CUR score is the largest squared entry of the top singular vector', () => {
    // rank one: X = u vᵀ, so π_i = u_i² / |u|²
    const u = [1, -2, 3, 0.5];
    const v = [2, 1];
    const X = { data: Float64Array.from(u.flatMap((a) => v.map((b) => a * b))), shape: [4, 2] };
    const s = curWithScores(X, 1);
    expect(Array.from(s.indices)).toEqual([2]);
    expect(Math.abs(s.scores[0] - 9 / (1 + 4 + 9 + 0.25))).toBeLessThan(1e-14);
  });
});

interface HardCase {
  name: string;
  X: string;
  n: number;
  axis: 'samples' | 'features';
  k?: number;
  recomputeEvery?: number;
  initialize?: number;
  indices: number[];
  determined: number;
}
// random, low-rank, rank-deficient, badly scaled, duplicate-row and tiny
// matrices (scripts/reference/skmatter_selection_hard.py); `determined`: the
// leading picks that do not depend on rounding in skmatter (the Rust test
// checks the first undetermined pick against skmatter's own scores)
const hard = load('selection_hard') as { versions: Record<string, string>; matrices: Record<string, ArrayJson>; cur: HardCase[]; fps: HardCase[] };

describe('CUR and FPS on hard matrices vs skmatter 0.4.1: never throw, same determined picks', () => {
  it('fixtures were made with the pinned versions', () => {
    expect(hard.versions.skmatter).toBe('0.4.1');
  });
  it('CUR', () => {
    for (const c of hard.cur) {
      const got = Array.from(cur(dense(hard.matrices[c.X]), c.n, { k: c.k, recomputeEvery: c.recomputeEvery, axis: c.axis }));
      expect(new Set(got).size, c.name).toBe(c.n);
      expect(got.slice(0, c.determined), c.name).toEqual(c.indices.slice(0, c.determined));
    }
  });
  it('FPS', () => {
    for (const c of hard.fps) {
      const got = Array.from(farthestPointSampling(dense(hard.matrices[c.X]), c.n, { initialize: c.initialize, axis: c.axis }));
      expect(got.slice(0, c.determined), c.name).toEqual(c.indices.slice(0, c.determined));
    }
  });
  it('uniform random 60 × 12 matrices: cur(X, 8) and cur(X, 12, {k: 8}) on both axes never throw (40 seeds)', () => {
    let state = 0x2545f491;
    const uniform = () => {
      // xorshift32: deterministic, no dependency
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) / 2 ** 32;
    };
    for (let seed = 0; seed < 40; seed++) {
      const X = { data: Float64Array.from({ length: 720 }, uniform), shape: [60, 12] };
      expect(new Set(cur(X, 8)).size).toBe(8);
      expect(new Set(cur(X, 12, { k: 8 })).size).toBe(12);
      expect(new Set(cur(X, 12, { k: 8, axis: 'features' })).size).toBe(12);
      expect(new Set(cur(X, 60, { k: 12 })).size).toBe(60);
    }
  });
});

describe('selection: bad inputs throw errors naming the argument', () => {
  const X = { data: Float64Array.from({ length: 12 }, (_, i) => Math.sin(i)), shape: [4, 3] };
  it('n larger than the axis', () => {
    expect(() => farthestPointSampling(X, 5)).toThrow(/n = 5 must be between 1 and the number of samples \(rows\) \(4\)/);
    expect(() => farthestPointSampling(X, 4, { axis: 'features' })).toThrow(/n = 4 .* features \(columns\) \(3\)/);
    expect(() => cur(X, 9)).toThrow(/n = 9/);
    expect(() => cur(X, 2, { k: 4 })).toThrow(/k = 4/);
    expect(() => farthestPointSampling(X, 0)).toThrow(/n must be an integer ≥ 1, got 0/);
  });
  it('bad initialize, axis and options', () => {
    expect(() => farthestPointSampling(X, 2, { initialize: 7 })).toThrow(/initialize\[0\] = 7 is out of range/);
    expect(() => farthestPointSampling(X, 3, { initialize: [1, 1] })).toThrow(/initialize\[1\] = 1 is repeated/);
    expect(() => farthestPointSampling(X, 2, { initialize: -1 })).toThrow(/initialize must be an integer ≥ 0, got -1/);
    expect(() => farthestPointSampling(X, 2, { axis: 'rows' as 'samples' })).toThrow(/axis must be "samples" or "features", got "rows"/);
    expect(() => cur(X, 2, { kk: 1 } as object)).toThrow(/unknown cur option "kk"/);
  });
  it('NaN and malformed arrays', () => {
    const bad = { data: Float64Array.from(X.data), shape: [4, 3] };
    bad.data[7] = NaN;
    expect(() => farthestPointSampling(bad, 2)).toThrow(/X\[2, 1\] = NaN/);
    expect(() => cur(bad, 2)).toThrow(/X\[2, 1\] = NaN/);
    expect(() => farthestPointSampling({ data: X.data, shape: [5, 3] }, 2)).toThrow(/X: shape \[5, 3\] needs 15 values, got 12/);
    expect(() => farthestPointSampling({ data: X.data, shape: [12] }, 2)).toThrow(/X.shape must be \[rows, cols\]/);
    expect(() => farthestPointSampling([1, 2] as unknown as DenseArray, 2)).toThrow(/X must be a dense array/);
  });
  it('async forms reject with the same errors', async () => {
    await expect(farthestPointSamplingAsync(X, 5)).rejects.toThrow(/n = 5/);
    await expect(curAsync(X, 2, { k: 4 })).rejects.toThrow(/k = 4/);
  });
});

interface KernelCase {
  zeta: number;
  delta: number;
  atoms: ArrayJson;
  structures: ArrayJson;
}
const kernels = load('kernels') as { A: ArrayJson; B: ArrayJson; structuresA: number[]; structuresB: number[]; cases: KernelCase[] };

describe('polynomial kernels vs a direct numpy computation', () => {
  const A = dense(kernels.A);
  const B = dense(kernels.B);
  for (const c of kernels.cases) {
    it(`zeta ${c.zeta}, delta ${c.delta}: atomic and structure kernels`, async () => {
      const opts = { zeta: c.zeta, delta: c.delta };
      const K = polynomialKernel(A, B, opts);
      expect(K.shape).toEqual(c.atoms.shape);
      expect(maxRelative(K.data, c.atoms.data)).toBeLessThanOrEqual(1e-13);
      expect(Array.from((await polynomialKernelAsync(A, B, opts)).data)).toEqual(Array.from(K.data));
      const S = structureKernel(A, kernels.structuresA, B, kernels.structuresB, opts);
      expect(S.shape).toEqual(c.structures.shape);
      expect(maxRelative(S.data, c.structures.data)).toBeLessThanOrEqual(1e-13);
      const Sa = await structureKernelAsync(A, kernels.structuresA, B, kernels.structuresB, opts);
      expect(Array.from(Sa.data)).toEqual(Array.from(S.data));
    });
  }
  it('is symmetric, δ² on the diagonal, and invariant to scaling a row', () => {
    const K = polynomialKernel(A, A, { zeta: 2, delta: 1.5 });
    const n = A.shape[0];
    for (let i = 0; i < n; i++) {
      expect(Math.abs(K.data[i * n + i] - 2.25)).toBeLessThan(1e-14);
      for (let j = 0; j < n; j++) expect(K.data[i * n + j]).toBe(K.data[j * n + i]);
    }
    const scaled = { data: Float64Array.from(A.data, (v, k) => (k < A.shape[1] ? 3 * v : v)), shape: A.shape };
    const K2 = polynomialKernel(scaled, A, { zeta: 2, delta: 1.5 });
    expect(maxRelative(K2.data, K.data)).toBeLessThan(1e-14);
  });
  it('rejects bad hyper-parameters and mismatched inputs', () => {
    expect(() => polynomialKernel(A, B, { zeta: 1.5 })).toThrow(/zeta must be an integer ≥ 1, got 1.5/);
    expect(() => polynomialKernel(A, B, { zeta: 2, delta: -1 })).toThrow(/delta = -1/);
    const C = { data: new Float64Array(6).fill(1), shape: [2, 3] };
    expect(() => polynomialKernel(A, C, { zeta: 2 })).toThrow(/A has 5 features \(columns\) but B has 3/);
    expect(() => structureKernel(A, [0, 1], B, kernels.structuresB, { zeta: 2 })).toThrow(/structuresA has 2 entries but there are 7 rows/);
    const Z = { data: new Float64Array(5), shape: [1, 5] };
    expect(() => polynomialKernel(Z, B, { zeta: 2 })).toThrow(/A: row 0 is zero/);
    // an output sized by a structure index is checked before it is allocated
    const huge = [...kernels.structuresA.slice(0, 6), 0xffffffff];
    expect(() => structureKernel(A, huge, B, kernels.structuresB, { zeta: 2 })).toThrow(/the structure kernel would be a 4294967296 × 2 matrix/);
  });
});

describe('selectSamples: per-block selection on a TensorMap', () => {
  const frames = readXyzSync(join(__dirname, '..', 'examples', 'molecules.xyz')).slice(0, 12);
  const tm = new SoapPowerSpectrum({
    cutoff: { radius: 3.5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
    density: { type: 'Gaussian', width: 0.4 },
    basis: { type: 'TensorProduct', max_angular: 2, radial: { type: 'Gto', max_radial: 2 } },
  })
    .computeSync(frames)
    .keysToProperties(['neighbor_1_type', 'neighbor_2_type']);
  it('picks, in every centre-species block, what FPS / CUR pick on its matrix', async () => {
    for (const method of ['fps', 'cur'] as const) {
      const picked = selectSamples(tm, 4, { method });
      expect(picked.map((p) => p.key)).toEqual(tm.blocks().map((_, b) => tm.keys.entry(b)));
      const asyncPicked = await selectSamplesAsync(tm, 4, { method });
      picked.forEach((p, b) => {
        const block = tm.blocks()[b];
        const X = block.toArray() as DenseArray<Float64Array>;
        const want = X.shape[0] <= 4 ? Array.from({ length: X.shape[0] }, (_, i) => i) : Array.from(method === 'fps' ? farthestPointSampling(X, 4) : cur(X, 4));
        expect(Array.from(p.indices)).toEqual(want);
        expect(Array.from(asyncPicked[b].indices)).toEqual(want);
        expect(p.samples.names).toEqual(block.samples.names);
        want.forEach((r, k) => expect(p.samples.row(k)).toEqual(block.samples.row(r)));
      });
    }
  });
  it('keeps every sample of a block with at most n, and rejects bad options', () => {
    const picked = selectSamples(tm, 1000);
    picked.forEach((p, b) => expect(p.indices.length).toBe(tm.blocks()[b].shape[0]));
    expect(() => selectSamples(tm, 0)).toThrow(/n must be an integer ≥ 1, got 0/);
    expect(() => selectSamples(tm, 3, { method: 'random' as 'fps' })).toThrow(/method must be "fps" or "cur", got "random"/);
    expect(() => selectSamples({} as never, 3)).toThrow(/selectSamples expects a TensorMap/);
  });
});
