// The linear model's per-component force variance (docs/MODELS.md, "Force
// variance"): ψᵀM⁻¹ψ calibrated as s_F·(v + c_F) on the closed-form
// leave-one-frame-out force errors of the training frames. The closed form
// equals refits and the variance equals finite differences of the energy
// row in the Rust core (models::potential::leave_one_out_tests); here: the
// API against a refit through frameSigmas (the leave-out error of one
// frame's forces), async = sync, the calibration as s_F·(v + c_F) and kept
// in the file, `apply: false` leaves the model alone, the GPR refused, and
// bad options give one-line errors naming the field.
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

  it('async calibration equals sync', async () => {
    const a = LinearModel.fitSync(smallTrain, smallCase.linear);
    const b = LinearModel.fitSync(smallTrain, smallCase.linear);
    expect(await a.calibrateForceVarianceLeaveOneOut([...smallTrain])).toEqual(b.calibrateForceVarianceLeaveOneOutSync([...smallTrain]));
  });

  it('refuses a sparse GPR with a distance_2b term and bad options in one line naming the field', () => {
    const { hypers, sparse, kernel, ...rest } = smallCase.gpr;
    const pair = { type: 'distance_2b', cutoff: 4, transition: 0.5, theta: 0.5, delta: 0.5, sparse: { count: 5 } };
    const g = SparseGPR.fitSync(smallTrain, { ...rest, terms: [{ type: 'soap', hypers, sparse, kernel }, pair] });
    expect(() => g.forceVarianceSync(smallTest)).toThrow(/distance_2b term's force prior is not computed/);
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

describe('SparseGPR force variance (prior part + posterior part)', () => {
  it('calibrates on the leave-one-frame-out force errors: the first frame\'s equal a refit without its forces (≤ 1e-8), async = sync', async () => {
    const m = SparseGPR.fitSync(smallTrain, smallCase.gpr);
    const v = m.forceVarianceSync(smallTest);
    expect(v.map((x) => x.length)).toEqual(smallTest.map((s) => 3 * s.size));
    for (const x of v) for (const y of x) expect(y).toBeGreaterThan(0);
    expect(await m.forceVariance(smallTest)).toEqual(v);
    // the same sparse set (fps on the features) with frame 0's forces at a noise of 1e12 eV/Å
    const refit = SparseGPR.fitSync(smallTrain, { ...smallCase.gpr, frameSigmas: smallTrain.map((_: unknown, k: number) => (k === 0 ? { forces: 1e12 } : null)) });
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
