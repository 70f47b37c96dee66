// fitRadialContraction: the contracted features (computed from splines of the
// contracted radial integrals) are an exact linear map W of the full
// features, the same W for values and gradients (≤ 1e-7 of the largest
// value), with orthonormal columns, and they keep more than their share of
// the variance (principal components).
import { describe, expect, it } from 'vitest';
import { fitRadialContraction, SoapPowerSpectrum, SphericalExpansion, type SoapHypers, type TensorBlock } from 'acdc-ml';
import { gradientErrors, maxAbs, molecule, periodicSystem } from './cg_helpers';

const BASES: [string, SoapHypers['basis']][] = [
  ['Gto', { type: 'TensorProduct', max_angular: 3, radial: { type: 'Gto', max_radial: 6 } }],
  ['LaplacianEigenstate', { type: 'LaplacianEigenstate', max_radial: 5, max_angular: 3 }],
];

function hypers(basis: SoapHypers['basis']): SoapHypers {
  return { cutoff: { radius: 3.5, smoothing: { type: 'ShiftedCosine', width: 0.5 } }, density: { type: 'Gaussian', width: 0.35, center_atom_weight: 0.8 }, basis };
}

/** Least squares W (n × k) with full·W ≈ contracted (rows of width n and k). */
function solve(full: ArrayLike<number>, n: number, contracted: ArrayLike<number>, k: number): Float64Array {
  const A = new Float64Array(n * n);
  const B = new Float64Array(n * k);
  const rows = full.length / n;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) A[i * n + j] += full[r * n + i] * full[r * n + j];
      for (let j = 0; j < k; j++) B[i * k + j] += full[r * n + i] * contracted[r * k + j];
    }
  }
  // Gauss–Jordan with partial pivoting
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(A[r * n + c]) > Math.abs(A[p * n + c])) p = r;
    for (let j = 0; j < n; j++) [A[c * n + j], A[p * n + j]] = [A[p * n + j], A[c * n + j]];
    for (let j = 0; j < k; j++) [B[c * k + j], B[p * k + j]] = [B[p * k + j], B[c * k + j]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = A[r * n + c] / A[c * n + c];
      for (let j = 0; j < n; j++) A[r * n + j] -= f * A[c * n + j];
      for (let j = 0; j < k; j++) B[r * k + j] -= f * B[c * k + j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) B[i * k + j] /= A[i * n + i];
  return B;
}

function residual(full: ArrayLike<number>, n: number, contracted: ArrayLike<number>, k: number, W: Float64Array): number {
  let worst = 0;
  for (let r = 0; r < full.length / n; r++) {
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += full[r * n + i] * W[i * k + j];
      worst = Math.max(worst, Math.abs(s - contracted[r * k + j]));
    }
  }
  return worst;
}

describe('fitRadialContraction', () => {
  for (const [name, basis] of BASES) {
    it(`${name}: contracted features = full features × W, values and gradients (≤ 1e-7)`, async () => {
      const systems = [periodicSystem(), molecule()];
      const full = hypers(basis);
      const contracted = await fitRadialContraction(systems, full, { maxRadial: 2 });
      expect(contracted.basis.type).toBe('Explicit');
      expect(contracted.density).toEqual({ type: 'DiracDelta', center_atom_weight: 0.8, scaling: null });
      // the hyper-parameters survive JSON
      const again = JSON.parse(JSON.stringify(contracted)) as SoapHypers;
      const a = new SphericalExpansion(full).computeSync(systems, { gradients: ['positions'] });
      const b = new SphericalExpansion(again).computeSync(systems, { gradients: ['positions'] });
      expect(b.keys.count).toBe(a.keys.count);
      const byL = new Map<number, [TensorBlock, TensorBlock][]>();
      for (let i = 0; i < a.keys.count; i++) {
        const key = a.keys.entry(i);
        const l = key.o3_lambda;
        byL.set(l, [...(byL.get(l) ?? []), [a.block(i), b.block(key)]]);
      }
      for (const [l, pairs] of byL) {
        const n = pairs[0][0].properties.count;
        const k = pairs[0][1].properties.count;
        expect(k).toBe(Math.min(3, n));
        const fullValues = pairs.flatMap(([x]) => Array.from(x.values));
        const contractedValues = pairs.flatMap(([, y]) => Array.from(y.values));
        const W = solve(fullValues, n, contractedValues, k);
        const scale = maxAbs(Float64Array.from(contractedValues));
        expect(residual(fullValues, n, contractedValues, k, W), `l=${l}`).toBeLessThan(1e-7 * scale);
        // the same W maps the gradients
        const fullGradients = pairs.flatMap(([x]) => Array.from(x.gradient('positions')!.values));
        const contractedGradients = pairs.flatMap(([, y]) => Array.from(y.gradient('positions')!.values));
        expect(residual(fullGradients, n, contractedGradients, k, W)).toBeLessThan(1e-7 * maxAbs(Float64Array.from(contractedGradients)));
        // orthonormal columns, and at least the average share of the variance
        for (let p = 0; p < k; p++) for (let q = 0; q < k; q++) {
          let dot = 0;
          for (let i = 0; i < n; i++) dot += W[i * k + p] * W[i * k + q];
          expect(Math.abs(dot - (p === q ? 1 : 0)), `l=${l} W columns ${p},${q}`).toBeLessThan(1e-6);
        }
        const norm = (v: number[]) => v.reduce((s, x) => s + x * x, 0);
        expect(norm(contractedValues)).toBeGreaterThanOrEqual((k / n) * norm(fullValues) * (1 - 1e-12));
      }
    });
  }

  it('the contracted power spectrum has finite-difference gradients and Σ_l k_l² properties', async () => {
    const system = periodicSystem();
    const contracted = await fitRadialContraction([system], hypers(BASES[1][1]), { maxRadial: 1 });
    const calc = new SoapPowerSpectrum(contracted);
    const tm = calc.computeSync(system, { gradients: ['positions', 'strain'] });
    expect(tm.block(0).properties.count).toBe(4 * 4);
    const err = gradientErrors(system, tm, (s) => calc.computeSync(s));
    expect(err.positions).toBeLessThan(1e-6);
    expect(err.strain).toBeLessThan(1e-6);
  });

  it('errors', async () => {
    const systems = [molecule()];
    await expect(fitRadialContraction(systems, hypers(BASES[0][1]), { maxRadial: -1 })).rejects.toThrow(/maxRadial must be a non-negative integer, got -1/);
    await expect(fitRadialContraction(systems, hypers(BASES[0][1]), { maxRadial: 1, byType: true })).rejects.toThrow(/byType/);
    const exact = hypers({ type: 'TensorProduct', max_angular: 2, radial: { type: 'Gto', max_radial: 3 }, spline_accuracy: null });
    await expect(fitRadialContraction(systems, exact, { maxRadial: 1 })).rejects.toThrow(/spline_accuracy is null/);
  });
});
