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

// the Pt–Ni fits of docs/MODELS.md ("Variance calibration"): the
// composition-calibrated and frame-calibrated s and c, the mean per-frame
// leave-one-out variance (eV²) and 32 atoms per frame
describe('acdc fit: the composition-spread warning', () => {
  it('is the ratio of the two calibrated variances at the mean leave-one-out variance', () => {
    // s_c (v + c_c N) / (s_f (v + c_f N)), by hand
    expect(compositionSpread({ scale: 4, noise: 1e-4 }, { scale: 2, noise: 0 }, 0.01, 50)).toBeCloseTo((4 * (0.01 + 5e-3)) / (2 * 0.01), 14);
    expect(compositionSpread({ scale: 3, noise: 0 }, { scale: 3, noise: 0 }, 0.2, 10)).toBe(1);
  });
  it('warns above 10: the sparse GPR on Pt–Ni (144) and not the linear model (1.83)', () => {
    expect(COMPOSITION_SPREAD_WARNING).toBe(10);
    const w = compositionSpreadWarning(144.3);
    expect(w).toContain('144× the one calibrated on left-out frames');
    expect(w).toContain('about 12× too wide');
    expect(w!.split('\n')).toHaveLength(1);
    expect(compositionSpreadWarning(1.83)).toBeNull();
    expect(compositionSpreadWarning(10)).toBeNull();
    expect(compositionSpreadWarning(Number.NaN)).toBeNull();
  });
});
