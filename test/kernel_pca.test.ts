// Kernel PCA against scikit-learn 1.8.0's KernelPCA(kernel="precomputed",
// eigen_solver="dense") on the normalised polynomial kernel
// (scripts/reference/sklearn_kernel_pca.py → test/fixtures/sklearn/kernel_pca.json).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kernelPca, kernelPcaAsync, pca, polynomialKernel } from 'acdc-ml';

interface Arr {
  shape: number[];
  data: number[];
}
interface Case {
  name: string;
  X: Arr;
  zeta: number;
  n: number;
  kernel: Arr;
  scores: Arr;
  eigenvalues: Arr;
  eigenvectors: Arr;
}
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'sklearn', 'kernel_pca.json'), 'utf8')) as { cases: Case[] };
const dense = (a: Arr) => ({ data: Float64Array.from(a.data), shape: a.shape });

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('kernelPca equals scikit-learn KernelPCA', () => {
  for (const c of fixture.cases) {
    it(`${c.name}: from features (ζ = ${c.zeta}) and from the precomputed kernel, ≤ 1e-10 relative`, async () => {
      const fromX = kernelPca(dense(c.X), c.n, { zeta: c.zeta });
      const fromK = await kernelPcaAsync(dense(c.kernel), c.n, { precomputed: true });
      for (const r of [fromX, fromK]) {
        expect(r.scores.shape).toEqual(c.scores.shape);
        expect(r.eigenvectors.shape).toEqual(c.eigenvectors.shape);
        const lam = maxAbs(c.eigenvalues.data);
        expect(maxDiff(r.eigenvalues, c.eigenvalues.data)).toBeLessThanOrEqual(1e-10 * lam);
        // scikit-learn fixes signs as acdc does (largest-magnitude entry of each eigenvector positive)
        expect(maxDiff(r.eigenvectors.data, c.eigenvectors.data)).toBeLessThanOrEqual(1e-9);
        expect(maxDiff(r.scores.data, c.scores.data)).toBeLessThanOrEqual(1e-9 * Math.sqrt(lam));
      }
      // the kernel acdc builds from features is the fixture's
      expect(maxDiff(polynomialKernel(dense(c.X), dense(c.X), { zeta: c.zeta }).data, c.kernel.data)).toBeLessThan(1e-14);
    });
  }

  it('ζ = 1 on centred-in-feature-space data: kernel PCA of the linear kernel of unit rows is PCA of the unit rows', () => {
    const c = fixture.cases.find((k) => k.zeta === 1)!;
    const [N, F] = c.X.shape;
    const unit = new Float64Array(N * F);
    for (let i = 0; i < N; i++) {
      let norm = 0;
      for (let j = 0; j < F; j++) norm += c.X.data[i * F + j] ** 2;
      for (let j = 0; j < F; j++) unit[i * F + j] = c.X.data[i * F + j] / Math.sqrt(norm);
    }
    const p = pca({ data: unit, shape: [N, F] }, c.n);
    const k = kernelPca(dense(c.X), c.n, { zeta: 1 });
    for (let j = 0; j < c.n; j++) {
      // eigenvalue of the centred Gram matrix = (N − 1) × PCA variance; scores equal up to sign
      expect(Math.abs(k.eigenvalues[j] - (N - 1) * p.explainedVariance[j])).toBeLessThan(1e-12 * k.eigenvalues[0]);
      const sign = Math.sign(k.scores.data[j]) * Math.sign(p.scores.data[j]);
      let err = 0;
      for (let i = 0; i < N; i++) err = Math.max(err, Math.abs(k.scores.data[i * c.n + j] - sign * p.scores.data[i * c.n + j]));
      expect(err).toBeLessThan(1e-12);
    }
  });

  it('rejects bad input with a message naming it', () => {
    const K = { data: new Float64Array([1, 0.5, 0.2, 1]), shape: [2, 2] };
    expect(() => kernelPca(K, 1, { precomputed: true })).toThrow(/not symmetric: K\[1\]\[0\] = 0.2 but K\[0\]\[1\] = 0.5/);
    expect(() => kernelPca({ data: new Float64Array(6), shape: [2, 3] }, 1, { precomputed: true })).toThrow(/must be square, got shape \[2, 3\]/);
    expect(() => kernelPca(K, 1, { precomputed: true, zeta: 2 })).toThrow(/zeta applies to features/);
    expect(() => kernelPca(K, 1, { gamma: 1 } as any)).toThrow(/unknown kernelPca option "gamma"/);
    // an indefinite "kernel": the centred diag(1, −5, 1) has eigenvalues −3, 0, 1
    const bad = { data: new Float64Array([1, 0, 0, 0, -5, 0, 0, 0, 1]), shape: [3, 3] };
    // the message names the eigenvalue: −3 to the SVD's accuracy (a few ε·‖K‖)
    expect(() => kernelPca(bad, 1, { precomputed: true })).toThrow(/not positive semi-definite: it has the eigenvalue -[\d.e-]+ among/);
    let message = '';
    try {
      kernelPca(bad, 1, { precomputed: true });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(Math.abs(Number(/eigenvalue (\S+) among/.exec(message)![1]) + 3)).toBeLessThanOrEqual(1e-14);
    expect(() => kernelPca({ data: new Float64Array([1, 0.5, 0.5, 1]), shape: [2, 2] }, 5, { precomputed: true })).toThrow(/n = 5/);
  });
});
