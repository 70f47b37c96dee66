// `acdc fit` warns when the calibrated variance covers the validation
// errors less than chance allows (js/cli/fit_checks.ts calibrationWarning,
// the binomial tail from the Rust core): the Pt–Ni case of docs/MODELS.md
// (6 and 9 of 12 within 1σ and 2σ) warns, a calibrated-looking check and a
// too-wide variance do not.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.join(__dirname, '..');
const { calibrationWarning, compositionSpread, compositionSpreadWarning, COMPOSITION_SPREAD_WARNING } = require(path.join(root, 'dist', 'cli', 'fit_checks.js')) as typeof import('../js/cli/fit_checks');

describe('acdc fit: the calibration warning', () => {
  it('warns when so few validation errors are within 2σ that a calibrated variance would give them with probability < 0.025', () => {
    // P(X ≤ 9 | 12, 0.9545), transcribed here
    const p = 0.9545;
    const tail = 1 - 66 * p ** 10 * (1 - p) ** 2 - 12 * p ** 11 * (1 - p) - p ** 12;
    const w = calibrationWarning({ structures: 12, within1Sigma: 6 / 12, within2Sigma: 9 / 12 });
    expect(w).toContain('6 of 12 within 1σ, 9 of 12 within 2σ');
    expect(w).toContain(`probability ${tail.toPrecision(2)}`);
    expect(tail).toBeLessThan(0.025);
    // 10 of 12 within 2σ: P = 0.10, no warning; nor for a variance too wide
    expect(calibrationWarning({ structures: 12, within1Sigma: 7 / 12, within2Sigma: 10 / 12 })).toBeNull();
    expect(calibrationWarning({ structures: 12, within1Sigma: 1, within2Sigma: 1 })).toBeNull();
    // 1σ alone: 20 of 60 within 1σ (expected 41) warns
    expect(calibrationWarning({ structures: 60, within1Sigma: 20 / 60, within2Sigma: 57 / 60 })).toContain('20 of 60 within 1σ');
    expect(calibrationWarning({ structures: 0, within1Sigma: 0, within2Sigma: 0 })).toBeNull();
  });
});

// the composition spread comes from the Rust core
// (models::calibration::composition_spread): errors r = ±√(2v) with v/N not
// constant make the frame calibration s_f = 2, c_f = 0 exactly (the
// likelihood is largest at c = 0 by Jensen's inequality), so the spread is
// s_c·(v̄ + c_c·N̄)/(2·v̄) by hand: v̄ = 0.075 eV², N̄ = 20
describe('acdc fit: the composition-spread warning', () => {
  const v = Float64Array.from([0.01, 0.04, 0.09, 0.16]);
  const atoms = [10, 20, 20, 30];
  const errors = v.map((x, k) => (k % 2 ? -1 : 1) * Math.sqrt(2 * x));
  const byFrame = { errors, variances: v, atoms };
  it('is the ratio of the two calibrated variances at the mean leave-one-out variance', () => {
    const want = (50 * (0.075 + 0.001 * 20)) / (2 * 0.075);
    const s = compositionSpread({ scale: 50, noise: 0.001 }, byFrame);
    expect(Math.abs(s.spread - want)).toBeLessThanOrEqual(1e-14 * want);
    expect(Math.abs(s.sigmaRatio - Math.sqrt(want))).toBeLessThanOrEqual(1e-14 * want);
    expect(s.warn).toBe(true);
    expect(Math.abs(compositionSpread({ scale: 2, noise: 0 }, byFrame).spread - 1)).toBeLessThan(1e-14);
  });
  it('warns above 10: the sparse GPR on Pt–Ni (144) and not the linear model (1.83)', () => {
    expect(COMPOSITION_SPREAD_WARNING).toBe(10);
    const w = compositionSpreadWarning(compositionSpread({ scale: 2 * 144.3, noise: 0 }, byFrame));
    expect(w).toContain('144× the one calibrated on left-out frames');
    expect(w).toContain('about 12× too wide');
    expect(w!.split('\n')).toHaveLength(1);
    expect(compositionSpreadWarning(compositionSpread({ scale: 2 * 1.83, noise: 0 }, byFrame))).toBeNull();
    expect(compositionSpreadWarning(compositionSpread({ scale: 2 * 9.99, noise: 0 }, byFrame))).toBeNull();
  });
  it('names the field and value of bad input', () => {
    expect(() => compositionSpread({ scale: 0, noise: 0 }, byFrame)).toThrow(/composition_scale = 0 \(expected a positive finite number\)/);
    expect(() => compositionSpread({ scale: 1, noise: -1 }, byFrame)).toThrow(/composition_noise = -1/);
    expect(() => compositionSpread({ scale: 1, noise: 0 }, { ...byFrame, atoms: [10, 20, 20] })).toThrow(/4 errors, 4 variances, 3 atom counts/);
    expect(() => compositionSpread({ scale: 1, noise: 0 }, { ...byFrame, variances: Float64Array.from([0.01, Number.NaN, 0.09, 0.16]) })).toThrow(/variances\[1\] = NaN/);
    expect(() => compositionSpread({ scale: 1, noise: 0 }, { ...byFrame, atoms: [10, 0, 20, 30] })).toThrow(/atoms\[1\] = 0/);
  });
});
