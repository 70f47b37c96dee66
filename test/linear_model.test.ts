// LinearModel (ridge regression on the raw power spectrum: a 3-body
// potential) on EMT Cu / Cu–Au data: equal to the numpy transcription
// (scripts/reference/gpr_numpy.py) to ≤ 1e-8 relative; forces and stress are
// the derivatives of the energy (central differences, h = 1e-5, ≤ 1e-6
// relative to the largest component); symmetries; save → load bit for bit;
// errors; async = sync; fit quality on held-out frames.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LinearModel, loadModel, SparseGPR, System } from 'acdc-ml';
import { checkAgainstNumpy, expectedFrameSigmas, checkFiniteDifferences, checkSymmetries, forceErrors, smallCase, smallTest, smallTrain, test, train } from './potential_helpers';

const dir = mkdtempSync(join(tmpdir(), 'acdc-linear-'));
const model = LinearModel.fitSync(smallTrain, smallCase.linear);

describe('LinearModel', () => {
  it('with per-structure sigmas (GAP\'s energy_sigma, force_sigma, virial_sigma) equals the numpy transcription (≤ 1e-8 relative)', () => {
    const own = LinearModel.fitSync(smallTrain, { ...smallCase.linear, frameSigmas: smallCase.frameSigmas });
    checkAgainstNumpy(own, 'linear', expectedFrameSigmas);
    expect(own.fitInfo.frame_sigmas).toBe(smallCase.frameSigmas.filter((f: unknown) => f !== null).length);
    // the sigmas change the fit: the weights differ from the plain case by far more than the tolerance
    const plain = LinearModel.fitSync(smallTrain, smallCase.linear);
    const diff = Math.max(...Array.from(own.weights, (w, k) => Math.abs(w - plain.weights[k]))) / Math.max(...Array.from(plain.weights, Math.abs));
    expect(diff).toBeGreaterThan(1e-4);
  });

  it('rejects bad per-structure sigmas, naming the entry', () => {
    const bad: Array<[unknown, RegExp]> = [
      [[{ energy: 0.01 }], /frameSigmas has 1 entries for 9 systems/],
      [smallTrain.map(() => ({ forces: -1 })), /frameSigmas\[0\]\.forces = -1 \(expected a positive number\)/],
      [smallTrain.map(() => ({ stress: 0.1, virial: 0.1 })), /frameSigmas\[0\] gives both stress and virial/],
      [smallTrain.map(() => ({ energies: 1 })), /unknown frameSigmas\[0\] option "energies"/],
      ['0.1', /frameSigmas must be an array/],
    ];
    for (const [frameSigmas, message] of bad) expect(() => LinearModel.fitSync(smallTrain, { ...smallCase.linear, frameSigmas } as never)).toThrow(message);
  });

  it('equals the numpy transcription (≤ 1e-8 relative)', () => {
    checkAgainstNumpy(model, 'linear');
    expect(model.kind).toBe('linear');
    expect(model.species).toEqual([29, 79]);
    expect(model.weights.length).toBe(2 * model.featureCount);
  });

  it('forces and stress are the derivatives of the energy (central differences, h = 1e-5)', () => {
    const exact = { ...smallCase.linear.hypers, basis: { ...smallCase.linear.hypers.basis, spline_accuracy: null } };
    const m = LinearModel.fitSync(smallTrain, { ...smallCase.linear, hypers: exact });
    for (const s of [smallTest[0], smallTest[3], smallTest[4]]) {
      const worst = checkFiniteDifferences(m, s, 1e-5, 1e-6);
      console.log(`LinearModel finite differences (${s.size} atoms): force ${worst.force.toExponential(2)}, stress ${worst.stress.toExponential(2)} relative`);
    }
  });

  it('energies are invariant, forces covariant under rotations and permutations', () => {
    checkSymmetries(model, smallTest[3]);
  });

  it('save → load → predict is bit for bit', async () => {
    const path = join(dir, 'linear.acdc');
    await model.save(path);
    const a = await LinearModel.load(path);
    const b = await loadModel(path);
    expect(b).toBeInstanceOf(LinearModel);
    const opts = { forces: true, variance: true };
    const want = model.predictSync(smallTest, opts);
    expect(a.predictSync(smallTest, opts)).toEqual(want);
    expect(LinearModel.loadSync(path).predictSync(smallTest, opts)).toEqual(want);
    const gpr = join(dir, 'gpr.acdc');
    SparseGPR.fitSync(smallTrain, smallCase.gpr).saveSync(gpr);
    await expect(LinearModel.load(gpr)).rejects.toThrow(/gpr\.acdc: holds a sparse_gpr model, not linear/);
  });

  it("priorWeight (acdc rigidity's α) is λ·σ_E² for a linear model and (σ_E/δ)² for a SparseGPR, also after a save and load", async () => {
    const linear = LinearModel.fitSync(smallTrain, smallCase.linear);
    const sigma = smallCase.linear.sigmas.energy as number;
    expect(linear.priorWeight).toBe(smallCase.linear.regularizer * sigma * sigma);
    const gpr = SparseGPR.fitSync(smallTrain, smallCase.gpr);
    const s = smallCase.gpr.sigmas.energy as number;
    expect(gpr.priorWeight).toBe((s / gpr.delta) * (s / gpr.delta));
    const file = join(mkdtempSync(join(tmpdir(), 'acdc-prior-')), 'linear.acdc');
    await linear.save(file);
    expect((await loadModel(file)).priorWeight).toBe(linear.priorWeight);
  });

  it('rejects bad inputs and singular systems', () => {
    expect(() => LinearModel.fitSync(smallTrain, { ...smallCase.linear, regularizer: -1 })).toThrow(/regularizer = -1/);
    expect(() => LinearModel.fitSync(smallTrain, { ...smallCase.linear, targets: { forces: 'forces' } as never })).toThrow(/targets\.energy is required/);
    // two energies cannot determine hundreds of weights without a regularizer
    expect(() => LinearModel.fitSync(smallTrain.slice(0, 2), { hypers: smallCase.linear.hypers, targets: { energy: 'energy' }, regularizer: 0 })).toThrow(/singular/);
    expect(() => LinearModel.fitSync([], smallCase.linear)).toThrow(/systems is empty/);
    expect(() => model.predictSync(new System({ types: [8], positions: [0, 0, 0] }))).toThrow(/contains 8, a species the model was not trained on/);
  });

  it('async and sync agree bit for bit; e0 options', async () => {
    const a = await LinearModel.fit(smallTrain, smallCase.linear);
    expect(a.weights).toEqual(model.weights);
    expect(await model.predict(smallTest, { forces: true })).toEqual(model.predictSync(smallTest, { forces: true }));
    const given = LinearModel.fitSync(smallTrain, { ...smallCase.linear, e0: { 29: -0.1, 79: 0.2 } });
    expect(given.e0).toEqual({ 29: -0.1, 79: 0.2 });
    const fitted = LinearModel.fitSync(smallTrain, { ...smallCase.linear, e0: 'fit' });
    expect(Object.keys(fitted.e0)).toEqual(['29', '79']);
  });

  it('learns EMT forces: held-out force RMSE well below their spread', () => {
    const m = LinearModel.fitSync(train, {
      hypers: { ...smallCase.linear.hypers, cutoff: { radius: 4.5, smoothing: { type: 'ShiftedCosine', width: 0.5 } } },
      targets: { energy: 'energy', forces: 'forces', stress: 'stress' },
      regularizer: 1e-6,
      sigmas: { energy: 0.001, forces: 0.03, stress: 0.002 },
    });
    const { rmse, std } = forceErrors(m, test);
    console.log(`LinearModel on EMT Cu/CuAu: held-out force RMSE ${rmse.toFixed(4)} eV/Å, force spread ${std.toFixed(4)} eV/Å`);
    expect(rmse).toBeLessThan(0.15 * std);
  });
});
