// The linear model's per-component force variance (docs/MODELS.md, "Force
// variance"): ψᵀM⁻¹ψ calibrated as s_F·(v + c_F) on the closed-form
// leave-one-frame-out force errors of the training frames. The closed form
// equals refits and the variance equals finite differences of the energy
// row in the Rust core (models::potential::leave_one_out_tests); here: the
// API against a refit through frameSigmas (the leave-out error of one
// frame's forces), async = sync, the calibration as s_F·(v + c_F) and kept
// in the file, `apply: false` leaves the model alone, the same for the
// sparse GPR alone and with a distance_2b term, and bad options give
// one-line errors naming the field.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LinearModel, loadModelSync, SparseGPR } from 'acdc-ml';
import { smallCase, smallTest, smallTrain } from './potential_helpers';

const dir = mkdtempSync(join(tmpdir(), 'acdc-force-variance-'));

describe('LinearModel force variance', () => {
  const model = LinearModel.fitSync(smallTrain, smallCase.linear);

  it('gives 3N positive variances per system, async equal to sync', async () => {
    const v = model.forceVarianceSync(smallTest);
    expect(v.map((x) => x.length)).toEqual(smallTest.map((s) => 3 * s.size));
    for (const x of v) for (const y of x) expect(y).toBeGreaterThan(0);
    expect(await model.forceVariance(smallTest)).toEqual(v);
    expect(model.forceVarianceCalibration).toEqual({ scale: 1, noise: 0 });
  });

  it('calibrates on the leave-one-frame-out force errors: the first frame\'s equal a refit without its forces (≤ 1e-8)', async () => {
    // the refit: frame 0's force rows with a noise of 1e12 eV/Å
    const refit = LinearModel.fitSync(smallTrain, { ...smallCase.linear, frameSigmas: smallTrain.map((_: unknown, k: number) => (k === 0 ? { forces: 1e12 } : null)) });
    const p = refit.predictSync([smallTrain[0]!], { forces: true });
    const ref = Array.from(smallTrain[0]!.arrays.forces as Float64Array);
    const errors = ref.map((f, i) => p.forces![0]![i]! - f);
    const v = refit.forceVarianceSync([smallTrain[0]!])[0]!;
    const m = LinearModel.fitSync(smallTrain, smallCase.linear);
    const l = m.forceLeaveOneOutSync([...smallTrain]);
    expect(l.frames.filter((f) => f === 0)).toHaveLength(errors.length);
    errors.forEach((r, i) => {
      expect(Math.abs(l.errors[i]! - r)).toBeLessThanOrEqual(1e-8 * Math.max(Math.abs(r), 1e-6));
      expect(Math.abs(l.variances[i]! - v[i]!)).toBeLessThanOrEqual(1e-8 * v[i]!);
    });
    expect(await m.forceLeaveOneOut([...smallTrain])).toEqual(l);
    const c = m.calibrateForceVarianceLeaveOneOutSync([...smallTrain]);
    expect(c.method).toBe('leave-one-out');
    expect(c.components).toBe(l.errors.length);
    expect(c.components).toBe(smallTrain.reduce((a: number, s: { size: number }) => a + 3 * s.size, 0));
    expect(c.scale).toBeGreaterThan(0);
    expect(c.noise).toBeGreaterThanOrEqual(0);
    // the calibrated variance is s_F·(v + c_F) of the raw one, and kept in the file
    const raw = model.forceVarianceSync(smallTest);
    const cal = m.forceVarianceSync(smallTest);
    raw.forEach((x, k) => x.forEach((y, i) => expect(Math.abs(cal[k]![i]! - c.scale * (y + c.noise))).toBeLessThanOrEqual(1e-12 * cal[k]![i]!)));
    const file = join(dir, 'linear.acdc');
    m.saveSync(file);
    const back = loadModelSync(file);
    expect(back.forceVarianceCalibration).toEqual({ scale: c.scale, noise: c.noise });
    expect(back.forceVarianceSync(smallTest)).toEqual(cal);
    // apply: false measures only
    const check = back.calibrateForceVarianceSync(smallTest, { apply: false });
    expect(check.method).toBe('held-out');
    expect(check.components).toBe(smallTest.reduce((a: number, s: { size: number }) => a + 3 * s.size, 0));
    expect(back.forceVarianceCalibration).toEqual({ scale: c.scale, noise: c.noise });
    const applied = back.calibrateForceVarianceSync(smallTest);
    expect(back.forceVarianceCalibration.scale).toBeCloseTo(applied.scale, 12);
    expect(applied.scale / c.scale).toBeCloseTo(check.scale / c.scale, 12);
  });

  it('fits s_F by coverage (default) or by likelihood, with the same c_F; the fractions are those of the left-out errors', () => {
    const a = LinearModel.fitSync(smallTrain, smallCase.linear);
    const l = a.forceLeaveOneOutSync([...smallTrain]);
    const cov = a.calibrateForceVarianceLeaveOneOutSync([...smallTrain]);
    expect(cov.scaleRule).toBe('coverage');
    const lik = a.calibrateForceVarianceLeaveOneOutSync([...smallTrain], { scaleRule: 'likelihood' });
    expect(lik.scaleRule).toBe('likelihood');
    expect(lik.noise).toBe(cov.noise);
    expect(lik.scale).toBe(lik.likelihoodScale);
    expect(cov.likelihoodScale).toBe(lik.scale);
    // maximum likelihood, transcribed: s = mean(r² / (v + c))
    const n = l.errors.length;
    let m = 0;
    for (let i = 0; i < n; i++) m += l.errors[i]! ** 2 / (l.variances[i]! + lik.noise);
    expect(Math.abs(m / n - lik.scale)).toBeLessThanOrEqual(1e-12 * lik.scale);
    for (const c of [cov, lik]) {
      let w1 = 0;
      let w2 = 0;
      for (let i = 0; i < n; i++) {
        const z = l.errors[i]! ** 2 / (c.scale * (l.variances[i]! + c.noise));
        if (z <= 1) w1++;
        if (z <= 4) w2++;
      }
      expect(c.within1Sigma).toBeCloseTo(w1 / n, 12);
      expect(c.within2Sigma).toBeCloseTo(w2 / n, 12);
    }
    // the coverage rule is no further from the bands (in band units) than the likelihood's
    const dev = (c: { within1Sigma: number; within2Sigma: number }) => Math.max(Math.abs(c.within1Sigma - 0.6827) / 0.1, Math.abs(c.within2Sigma - 0.9545) / 0.05);
    expect(dev(cov)).toBeLessThanOrEqual(dev(lik) + 1e-12);
    expect(a.forceVarianceCalibration).toEqual({ scale: lik.scale, noise: lik.noise });
    expect(() => a.calibrateForceVarianceLeaveOneOutSync([...smallTrain], { scaleRule: 'median' as never })).toThrow(/^scaleRule must be 'coverage' or 'likelihood', got "median"$/);
  });

  it('async calibration equals sync', async () => {
    const a = LinearModel.fitSync(smallTrain, smallCase.linear);
    const b = LinearModel.fitSync(smallTrain, smallCase.linear);
    expect(await a.calibrateForceVarianceLeaveOneOut([...smallTrain])).toEqual(b.calibrateForceVarianceLeaveOneOutSync([...smallTrain]));
  });

  it('refuses bad options in one line naming the field', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ forces: '' }, /forces must be a non-empty string/],
      [{ force: 'forces' }, /unknown calibrateForceVariance option "force"/],
      [{ sigmaForces: [0.1] }, /sigmaForces must be an array of \d+ entries/],
      [{ sigmaForces: smallTrain.map(() => -1) }, /sigmaForces\[0\] must be a positive number/],
      [{ forces: 'nope' }, /systems\[0\]\.arrays\.nope is missing/],
      ['x', /force calibration options must be an object/],
    ];
    for (const [o, message] of bad) {
      let e: Error | undefined;
      try {
        model.calibrateForceVarianceLeaveOneOutSync([...smallTrain], o as never);
      } catch (x) {
        e = x as Error;
      }
      expect(e?.message).toMatch(message);
      expect(e!.message.split('\n')).toHaveLength(1);
    }
    // not the training frames of the fit
    expect(() => model.calibrateForceVarianceLeaveOneOutSync(smallTrain.slice(1))).toThrow(/training structures/);
  });
});

const { hypers: gprHypers, sparse: gprSparse, kernel: gprKernel, ...gprRest } = smallCase.gpr;
const pairTerm = { type: 'distance_2b', cutoff: 4, transition: 0.5, theta: 0.5, delta: 0.5, sparse: { count: 5 } };
const gprCases: Array<[string, object]> = [
  ['SOAP alone', smallCase.gpr],
  // a sum of kernels: the prior part adds the distance_2b term's (models::pair_term)
  ['distance_2b + SOAP', { ...gprRest, terms: [{ type: 'soap', hypers: gprHypers, sparse: gprSparse, kernel: gprKernel }, pairTerm] }],
];

describe.each(gprCases)('SparseGPR force variance (prior part + posterior part), %s', (_name, options) => {
  it('calibrates on the leave-one-frame-out force errors: the first frame\'s equal a refit without its forces (≤ 1e-8), async = sync', async () => {
    const m = SparseGPR.fitSync(smallTrain, options as typeof smallCase.gpr);
    const v = m.forceVarianceSync(smallTest);
    expect(v.map((x) => x.length)).toEqual(smallTest.map((s) => 3 * s.size));
    for (const x of v) for (const y of x) expect(y).toBeGreaterThan(0);
    expect(await m.forceVariance(smallTest)).toEqual(v);
    // the same sparse set (fps on the features) with frame 0's forces at a noise of 1e12 eV/Å
    const refit = SparseGPR.fitSync(smallTrain, { ...(options as typeof smallCase.gpr), frameSigmas: smallTrain.map((_: unknown, k: number) => (k === 0 ? { forces: 1e12 } : null)) });
    const p = refit.predictSync([smallTrain[0]!], { forces: true });
    const ref = Array.from(smallTrain[0]!.arrays.forces as Float64Array);
    const errors = ref.map((f, i) => p.forces![0]![i]! - f);
    const rv = refit.forceVarianceSync([smallTrain[0]!])[0]!;
    const l = m.forceLeaveOneOutSync([...smallTrain]);
    errors.forEach((r, i) => {
      expect(Math.abs(l.errors[i]! - r)).toBeLessThanOrEqual(1e-8 * Math.max(Math.abs(r), 1e-6));
      expect(Math.abs(l.variances[i]! - rv[i]!)).toBeLessThanOrEqual(1e-8 * rv[i]!);
    });
    // leaving a frame's forces out can only raise their variance
    const own = m.forceVarianceSync([smallTrain[0]!])[0]!;
    own.forEach((x, i) => expect(l.variances[i]!).toBeGreaterThanOrEqual(x * (1 - 1e-12)));
    const c = m.calibrateForceVarianceLeaveOneOutSync([...smallTrain]);
    expect(c.components).toBe(smallTrain.reduce((a: number, s: { size: number }) => a + 3 * s.size, 0));
    const cal = m.forceVarianceSync(smallTest);
    v.forEach((x, k) => x.forEach((y, i) => expect(Math.abs(cal[k]![i]! - c.scale * (y + c.noise))).toBeLessThanOrEqual(1e-12 * cal[k]![i]!)));
  });
});
