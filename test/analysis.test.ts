// GFRE / GFRD / LFRE and local prediction rigidity against scikit-matter
// 0.4.1, PCA against numpy's SVD (fixtures from
// scripts/reference/skmatter_fixtures.py). Tolerance: 1e-10 relative.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  gfrd,
  gfrdAsync,
  gfre,
  gfreAsync,
  lfre,
  lfreAsync,
  localPredictionRigidity,
  localPredictionRigidityAsync,
  pca,
  pcaAsync,
  readNpySync,
  type DenseArray,
} from 'acdc-ml';

interface ArrayJson {
  shape: number[];
  data: number[];
}
const dense = (a: ArrayJson): DenseArray<Float64Array> => ({ data: Float64Array.from(a.data), shape: a.shape });
const FIXTURES = join(__dirname, 'fixtures', 'skmatter');
const load = (name: string) => JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8'));
const TOL = 1e-10;
const rel = (got: number, want: number) => Math.abs(got - want) / Math.abs(want);

interface ReconstructionCase {
  split: string;
  train: number[] | null;
  test: number[] | null;
  gfre: number;
  gfre_wide: number;
  // where X_trainᵀ X_train W is rank-deficient (gfrd_*_unique false) no
  // rotation is unique and the reference is the partial isometry on the
  // training span (numpy); elsewhere it is the unique Procrustes rotation,
  // equal to skmatter's where skmatter works (d_Y ≥ d_X)
  gfrd_wide: number;
  gfrd_narrow: number;
  gfrd_reverse: number;
  gfrd_narrow_unique: boolean;
  gfrd_reverse_unique: boolean;
  lfre: number;
  lfre_reverse: number;
}
const reconstruction = load('reconstruction') as {
  versions: Record<string, string>;
  X: ArrayJson;
  Y: ArrayJson;
  Ywide: ArrayJson;
  cases: ReconstructionCase[];
  splits: { n: number; train: number[]; test: number[] }[];
};

describe('feature reconstruction measures vs skmatter 0.4.1', () => {
  const X = dense(reconstruction.X);
  const Y = dense(reconstruction.Y);
  const Ywide = dense(reconstruction.Ywide);
  it('fixtures were made with the pinned versions', () => {
    expect(reconstruction.versions).toMatchObject({ skmatter: '0.4.1', numpy: '2.4.6', 'scikit-learn': '1.8.0', scipy: '1.17.1' });
  });
  for (const c of reconstruction.cases) {
    const split = { ...(c.train ? { trainIdx: c.train } : {}), ...(c.test ? { testIdx: c.test } : {}) };
    it(`${c.split} split: GFRE, GFRD, LFRE`, async () => {
      expect(rel(gfre(X, Y, split), c.gfre)).toBeLessThanOrEqual(TOL);
      expect(rel(gfre(X, Ywide, split), c.gfre_wide)).toBeLessThanOrEqual(TOL);
      expect(rel(gfrd(X, Ywide, split), c.gfrd_wide)).toBeLessThanOrEqual(TOL);
      expect(rel(lfre(X, Y, { nLocalPoints: 8, ...split }), c.lfre)).toBeLessThanOrEqual(TOL);
      expect(rel(lfre(Y, X, { nLocalPoints: 10, ...split }), c.lfre_reverse)).toBeLessThanOrEqual(TOL);
      expect(await gfreAsync(X, Y, split)).toBe(gfre(X, Y, split));
      expect(await gfrdAsync(X, Ywide, split)).toBe(gfrd(X, Ywide, split));
      expect(await lfreAsync(X, Y, { nLocalPoints: 8, ...split })).toBe(lfre(X, Y, { nLocalPoints: 8, ...split }));
    });
    it(`${c.split} split: GFRD with fewer target than source features (Y-space Procrustes${c.gfrd_reverse_unique ? '' : ', rank-deficient'})`, () => {
      expect(rel(gfrd(X, Y, split), c.gfrd_narrow)).toBeLessThanOrEqual(TOL);
      expect(rel(gfrd(Ywide, X, split), c.gfrd_reverse)).toBeLessThanOrEqual(TOL);
    });
  }
  it('the default split is the explicit split skmatter derives from numpy', () => {
    // measures are functions of the split, and bit-equal results need the same rows in the same order
    const s = reconstruction.splits.find((t) => t.n === 30)!;
    expect(gfre(X, Y)).toBe(gfre(X, Y, { trainIdx: s.train, testIdx: s.test }));
    expect(lfre(X, Y, { nLocalPoints: 8 })).toBe(lfre(X, Y, { nLocalPoints: 8, trainIdx: s.train, testIdx: s.test }));
    for (const t of reconstruction.splits) {
      const Xn = { data: Float64Array.from({ length: t.n * 2 }, (_, k) => Math.sin(k * 1.3) + (k % 2) * Math.cos(k)), shape: [t.n, 2] };
      const Yn = { data: Float64Array.from({ length: t.n }, (_, k) => Math.cos(3 * k) * k), shape: [t.n, 1] };
      if (t.train.length < 2) {
        expect(() => gfre(Xn, Yn)).toThrow(/trainIdx has 1 sample/);
        continue;
      }
      expect(gfre(Xn, Yn)).toBe(gfre(Xn, Yn, { trainIdx: t.train, testIdx: t.test }));
    }
  });
  it('is 0 for a linear target, and GFRD is 0 for a rotation', () => {
    const n = X.shape[0];
    const rot = new Float64Array(n * 6);
    const lin = new Float64Array(n * 2);
    for (let i = 0; i < n; i++) {
      const x = X.data.subarray(i * 6, i * 6 + 6);
      const c = Math.cos(0.7);
      const s = Math.sin(0.7);
      rot.set([c * x[0] - s * x[1], s * x[0] + c * x[1], x[2], x[3], x[4], x[5]], i * 6);
      lin.set([x[0] + 2 * x[3], x[2] - x[5]], i * 2);
    }
    expect(gfrd(X, { data: rot, shape: [n, 6] })).toBeLessThan(1e-12);
    expect(gfre(X, { data: lin, shape: [n, 2] })).toBeLessThan(1e-12);
    expect(gfre(X, { data: rot, shape: [n, 6] })).toBeLessThan(1e-12);
  });
});

describe('reconstruction measures: bad inputs throw errors naming the argument', () => {
  const X = dense(reconstruction.X);
  const Y = dense(reconstruction.Y);
  it('mismatched rows, constant features, NaN', () => {
    const short = { data: Y.data.subarray(0, 8), shape: [2, 4] };
    expect(() => gfre(X, short)).toThrow(/X has 30 rows but Y has 2/);
    const constant = { data: new Float64Array(30 * 2).fill(3), shape: [30, 2] };
    expect(() => gfre(X, constant)).toThrow(/Y has a total variance of 0e0 on the training rows/);
    expect(() => gfrd(constant, Y)).toThrow(/X has a total variance/);
    const nan = { data: Float64Array.from(Y.data), shape: Y.shape };
    nan.data[4 * 4 + 2] = NaN;
    expect(() => lfre(X, nan, { nLocalPoints: 5 })).toThrow(/Y\[4, 2\] = NaN/);
  });
  it('too few points for LFRE, bad indices, bad options', () => {
    expect(() => lfre(X, Y, { nLocalPoints: 16 })).toThrow(/nLocalPoints = 16 must be between 2 and the number of training samples \(15\)/);
    expect(() => lfre(X, Y, { nLocalPoints: 1 })).toThrow(/nLocalPoints = 1/);
    expect(() => lfre(X, Y, {} as { nLocalPoints: number })).toThrow(/nLocalPoints must be an integer ≥ 0, got undefined/);
    expect(() => gfre(X, Y, { trainIdx: [0, 1, 30] })).toThrow(/trainIdx\[2\] = 30 is out of range \(there are 30 samples\)/);
    expect(() => gfre(X, Y, { trainIdx: [0, 1, 1] })).toThrow(/trainIdx\[2\] = 1 is repeated/);
    expect(() => gfre(X, Y, { testIdx: [0.5] })).toThrow(/testIdx\[0\] must be an integer ≥ 0, got 0.5/);
    expect(() => gfre(X, Y, { trainIdx: [3] })).toThrow(/trainIdx has 1 sample \(at least 2 are needed\)/);
    expect(() => gfre(X, Y, { train: [1] } as object)).toThrow(/unknown gfre option "train"/);
  });
  it('async forms reject', async () => {
    await expect(gfreAsync(X, { data: Y.data.subarray(0, 8), shape: [2, 4] })).rejects.toThrow(/X has 30 rows but Y has 2/);
    await expect(lfreAsync(X, Y, { nLocalPoints: 40 })).rejects.toThrow(/nLocalPoints = 40/);
  });
});

interface RigidityCase {
  name: string;
  alpha: number;
  train: ArrayJson[];
  test: ArrayJson[];
  lpr: number[][];
  rankDiff: number;
}
const rigidity = load('rigidity') as { cases: RigidityCase[] };

describe('local prediction rigidity vs skmatter 0.4.1', () => {
  for (const c of rigidity.cases) {
    it(`${c.name}: LPR per atom and rank difference`, async () => {
      const train = c.train.map(dense);
      const test = c.test.map(dense);
      const r = localPredictionRigidity(train, test, c.alpha);
      expect(r.rankDiff).toBe(c.rankDiff);
      expect(r.lpr.map((a) => a.length)).toEqual(c.lpr.map((a) => a.length));
      let worst = 0;
      r.lpr.forEach((a, s) => a.forEach((v, i) => (worst = Math.max(worst, rel(v, c.lpr[s][i])))));
      expect(worst).toBeLessThanOrEqual(TOL);
      const ra = await localPredictionRigidityAsync(train, test, c.alpha);
      expect(ra.rankDiff).toBe(r.rankDiff);
      expect(ra.lpr.map((a) => Array.from(a))).toEqual(r.lpr.map((a) => Array.from(a)));
    });
  }
  it('bad inputs', () => {
    const c = rigidity.cases[0];
    const train = c.train.map(dense);
    const test = c.test.map(dense);
    const narrow = { data: new Float64Array(4).fill(1), shape: [1, 4] };
    expect(() => localPredictionRigidity(train, [narrow], c.alpha)).toThrow(/test\[0\] has 4 features \(columns\) but train\[0\] has 5/);
    expect(() => localPredictionRigidity([], test, c.alpha)).toThrow(/train is empty/);
    expect(() => localPredictionRigidity(train, test, -1)).toThrow(/alpha = -1/);
    expect(() => localPredictionRigidity(train, test, NaN)).toThrow(/alpha = NaN/);
    const nan = { data: Float64Array.from(train[1].data), shape: train[1].shape };
    nan.data[3] = NaN;
    expect(() => localPredictionRigidity([train[0], nan], test, c.alpha)).toThrow(/train\[1\]\[0, 3\] = NaN/);
  });
});

interface PcaCase {
  name: string;
  X: ArrayJson;
  n: number;
  scores: ArrayJson;
  components: ArrayJson;
  explainedVariance: number[];
}
const pcaCases = (load('pca') as { cases: PcaCase[] }).cases;

describe('PCA vs numpy SVD of the centred matrix (up to sign)', () => {
  for (const c of pcaCases) {
    it(`${c.name}: components, scores, explained variance`, async () => {
      const p = pca(dense(c.X), c.n);
      expect(p.components.shape).toEqual(c.components.shape);
      expect(p.scores.shape).toEqual(c.scores.shape);
      const [rows, cols] = c.X.shape;
      const scale = Math.max(...c.scores.data.map(Math.abs));
      for (let k = 0; k < c.n; k++) {
        // the sign convention: largest-|value| entry of each component positive
        let big = 0;
        for (let j = 1; j < cols; j++) if (Math.abs(p.components.data[k * cols + j]) > Math.abs(p.components.data[k * cols + big])) big = j;
        expect(p.components.data[k * cols + big]).toBeGreaterThan(0);
        const sign = Math.sign(p.components.data[k * cols + big] * c.components.data[k * cols + big]);
        for (let j = 0; j < cols; j++) expect(Math.abs(p.components.data[k * cols + j] - sign * c.components.data[k * cols + j])).toBeLessThanOrEqual(TOL);
        for (let i = 0; i < rows; i++) expect(Math.abs(p.scores.data[i * c.n + k] - sign * c.scores.data[i * c.n + k]) / scale).toBeLessThanOrEqual(TOL);
        expect(rel(p.explainedVariance[k], c.explainedVariance[k])).toBeLessThanOrEqual(TOL);
      }
      const a = await pcaAsync(dense(c.X), c.n);
      expect(Array.from(a.components.data)).toEqual(Array.from(p.components.data));
    });
  }
  it('bad inputs', () => {
    const X = dense(pcaCases[1].X); // 5 × 9
    expect(() => pca(X, 6)).toThrow(/n = 6 must be between 1 and min\(rows, columns\) = 5/);
    expect(() => pca({ data: new Float64Array(3), shape: [1, 3] }, 1)).toThrow(/X has 1 row/);
    expect(() => pca({ data: Float64Array.of(1, NaN), shape: [1, 2] }, 1)).toThrow(/X\[0, 1\] = NaN/);
  });
});

// Carbon environments of examples/molecules.xyz: SOAP power spectrum (120 × 270)
// and radial spectrum (120 × 20) computed by acdc (scripts/reference/skmatter_soap_features.js).
describe('analysis of SOAP features vs skmatter 0.4.1 / numpy', () => {
  const soap = load('soap') as {
    measures: { train: number[]; test: number[]; gfre_ps_rs: number; gfre_rs_ps: number; gfrd_ps_rs: number; gfrd_rs_ps: number; lfre_rs_ps: number };
    rigidity: { alpha: number; structureCounts: number[]; trainStructures: number; lpr: number[][]; rankDiff: number };
    pca: { n: number; scores: ArrayJson; components: ArrayJson; explainedVariance: number[] };
  };
  const ps = readNpySync(join(FIXTURES, 'soap_ps.npy'));
  const rs = readNpySync(join(FIXTURES, 'soap_rs.npy'));
  const m = soap.measures;
  const split = { trainIdx: m.train, testIdx: m.test };
  it('GFRE both ways, GFRD power → radial spectrum, LFRE radial → power spectrum', () => {
    expect(rel(gfre(ps, rs, split), m.gfre_ps_rs)).toBeLessThanOrEqual(TOL);
    expect(rel(gfre(rs, ps, split), m.gfre_rs_ps)).toBeLessThanOrEqual(TOL);
    // the power spectrum contains the radial spectrum's information, not the reverse
    expect(m.gfre_ps_rs).toBeLessThan(m.gfre_rs_ps);
    expect(rel(gfrd(ps, rs, split), m.gfrd_ps_rs)).toBeLessThanOrEqual(TOL);
    // 80 training rows, 270 target features: rank-deficient, partial isometry
    expect(rel(gfrd(rs, ps, split), m.gfrd_rs_ps)).toBeLessThanOrEqual(TOL);
    expect(rel(lfre(rs, ps, { nLocalPoints: 30, ...split }), m.lfre_rs_ps)).toBeLessThanOrEqual(TOL);
  });
  it('local prediction rigidity of radial-spectrum atoms grouped by structure', () => {
    const r = soap.rigidity;
    const cols = rs.shape[1];
    const structures: DenseArray<Float64Array>[] = [];
    let row = 0;
    for (const count of r.structureCounts) {
      structures.push({ data: rs.data.slice(row * cols, (row + count) * cols), shape: [count, cols] });
      row += count;
    }
    const out = localPredictionRigidity(structures.slice(0, r.trainStructures), structures.slice(r.trainStructures), r.alpha);
    expect(out.rankDiff).toBe(r.rankDiff);
    let worst = 0;
    out.lpr.forEach((a, s) => a.forEach((v, i) => (worst = Math.max(worst, rel(v, r.lpr[s][i])))));
    expect(worst).toBeLessThanOrEqual(TOL);
  });
  it('PCA of the power spectrum', () => {
    const p = pca(ps, soap.pca.n);
    const cols = ps.shape[1];
    const scale = Math.max(...soap.pca.scores.data.map(Math.abs));
    for (let k = 0; k < soap.pca.n; k++) {
      let big = 0;
      for (let j = 1; j < cols; j++) if (Math.abs(soap.pca.components.data[k * cols + j]) > Math.abs(soap.pca.components.data[k * cols + big])) big = j;
      const sign = Math.sign(p.components.data[k * cols + big] * soap.pca.components.data[k * cols + big]);
      for (let j = 0; j < cols; j++) expect(Math.abs(p.components.data[k * cols + j] - sign * soap.pca.components.data[k * cols + j])).toBeLessThanOrEqual(TOL);
      for (let i = 0; i < ps.shape[0]; i++) {
        expect(Math.abs(p.scores.data[i * soap.pca.n + k] - sign * soap.pca.scores.data[i * soap.pca.n + k]) / scale).toBeLessThanOrEqual(TOL);
      }
      expect(rel(p.explainedVariance[k], soap.pca.explainedVariance[k])).toBeLessThanOrEqual(TOL);
    }
  });
});
