// Checks the calibration of `acdc fit`'s predictive variance on held-out
// data: fits with the CLI's defaults (or reuses a saved fit), then measures
// on a separate test file the fraction of energy errors within 1σ and 2σ of
// the variance (target 0.68 ± 0.1 and 0.95 ± 0.05), with 95 % Wilson
// intervals for the number of test frames, for the calibration the CLI saved
// and for the alternatives docs/MODELS.md compares:
//   validation  s = mean(r²/v) on the validation frames (the 10 % split), no noise
//   loo         s from the closed-form leave-one-out errors of the training frames, no noise
//   loo+sigma   the same with the fit's energy noise σ_E²·N added to v (Bayesian posterior predictive)
//   loo+fit     s and a noise per atom c in s·(v + c·N), both by maximum likelihood (the CLI's default)
//   validation+fit  c from loo+fit, s from the validation frames
//   lco, lco+fit    as loo and loo+fit, but leaving out all training frames of one
//                   composition at a time (leave-one-composition-out, closed form;
//                   the CLI's default when the training frames have ≥ 3 compositions)
// "test" is every test frame; "testNew" only those whose composition (species-count
// ratios) no training frame has.
// The coverages are computed by the Rust core (calibrateVariance reports the
// coverage of the model's variance before it rescales).
//
//   python scripts/reference/emt_ptni_data.py /tmp/ptni-train.xyz /tmp/ptni-test.xyz 120 400
//   node bench/calibration.cjs /tmp/ptni-train.xyz /tmp/ptni-test.xyz [acdc fit options…]
//   node bench/calibration.cjs train.xyz test.xyz --saved model.acdc summary.json   # reuse `acdc fit --json` output
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const acdc = require('acdc-ml');

const [train, test, ...extra] = process.argv.slice(2);
if (!train || !test) {
  console.error('usage: node bench/calibration.cjs train.xyz test.xyz [--saved model.acdc summary.json | acdc fit options…]');
  process.exit(2);
}
let model;
let s;
let fitSeconds = null;
let dir = null;
if (extra[0] === '--saved') {
  model = extra[1];
  s = JSON.parse(fs.readFileSync(extra[2], 'utf8'));
} else {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-calibration-'));
  model = path.join(dir, 'model.acdc');
  const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [cli, 'fit', train, '--out', model, '--json', ...extra], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) {
    console.error(r.stderr);
    process.exit(1);
  }
  s = JSON.parse(r.stdout);
  fitSeconds = +((Date.now() - t0) / 1000).toFixed(1);
}
const all = acdc.readXyzSync(train);
const validSet = new Set(s.split.validation);
const trainFrames = all.filter((_, k) => !validSet.has(k));
const validFrames = s.split.validation.map((k) => all[k]);
const frames = acdc.readXyzSync(test);
// a composition: the species counts divided by their greatest common divisor
const gcd = (a, b) => (b === 0 ? a : gcd(b, a % b));
const composition = (f) => {
  const counts = new Map();
  for (const t of f.types) counts.set(t, (counts.get(t) ?? 0) + 1);
  const g = [...counts.values()].reduce(gcd, 0);
  return [...counts.entries()].sort((a, b) => a[0] - b[0]).map(([t, n]) => `${t}:${n / g}`).join(',');
};
const trainCompositions = new Set(trainFrames.map(composition));
const newFrames = frames.filter((f) => !trainCompositions.has(composition(f)));

// 95 % Wilson score interval of a binomial fraction
const wilson = (p, n) => {
  const z = 1.96;
  const c = (p + (z * z) / (2 * n)) / (1 + (z * z) / n);
  const h = (z / (1 + (z * z) / n)) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  return [+(c - h).toFixed(3), +(c + h).toFixed(3)];
};
const coverage = (m, set) => {
  // calibrateVariance reports the coverage of the current variance, then rescales: the caller discards m
  const c = m.calibrateVarianceSync(set);
  return { within1: +c.within1SigmaBefore.toFixed(3), within2: +c.within2SigmaBefore.toFixed(3), ci1: wilson(c.within1SigmaBefore, c.structures), ci2: wilson(c.within2SigmaBefore, c.structures), n: c.structures };
};
const variant = (name) => {
  const m = acdc.loadModelSync(model);
  const noise = name.endsWith('+sigma') ? 'sigma' : name.endsWith('+fit') ? 'fit' : 'none';
  const groups = name.startsWith('lco') ? 'composition' : 'frame';
  const loo = m.calibrateVarianceLeaveOneOutSync(trainFrames, { noise, groups });
  let fitted = loo;
  if (name.startsWith('validation')) fitted = m.calibrateVarianceSync(validFrames);
  const out = { scale: +fitted.scale.toPrecision(3), noise_meV2_atom: +(1e6 * m.varianceNoise).toPrecision(3) };
  out.looWithin1 = +loo.within1Sigma.toFixed(3);
  out.looWithin2 = +loo.within2Sigma.toFixed(3);
  const mv = acdc.loadModelSync(model);
  mv.calibrateVarianceLeaveOneOutSync(trainFrames, { noise, groups });
  if (name.startsWith('validation')) mv.calibrateVarianceSync(validFrames);
  if (validFrames.length) out.validation = coverage(mv, validFrames);
  if (newFrames.length && newFrames.length < frames.length) {
    const mn = acdc.loadModelSync(model);
    mn.calibrateVarianceLeaveOneOutSync(trainFrames, { noise, groups });
    if (name.startsWith('validation')) mn.calibrateVarianceSync(validFrames);
    out.testNew = coverage(mn, newFrames);
  }
  out.test = coverage(m, frames);
  return out;
};

const saved = acdc.loadModelSync(model);
const p = saved.predictSync(frames, { forces: true });
let e2 = 0;
let f2 = 0;
let nf = 0;
frames.forEach((f, k) => {
  e2 += ((p.energy[k] - f.info.energy) / f.size) ** 2;
  const ref = f.arrays.forces;
  for (let i = 0; i < ref.length; i++) (f2 += (p.forces[k][i] - ref[i]) ** 2), (nf += 1);
});
const meV = (x) => +(1000 * x).toPrecision(3);
const savedInfo = saved.fitInfo;
const out = {
  command: `acdc fit ${path.basename(train)} ${extra[0] === '--saved' ? '' : extra.join(' ')}`.trim(),
  fitSeconds,
  model: s.model,
  chosen: s.chosen,
  trainingFrames: trainFrames.length,
  validationFrames: validFrames.length,
  validationRmse: Object.fromEntries(
    Object.entries(s.candidates).map(([k, c]) => [k, { energy_meV_atom: c.validation && meV(c.validation.energy.rmse), forces: c.validation && c.validation.forces && +c.validation.forces.rmse.toPrecision(3) }]),
  ),
  countBaselineRmse_meV_atom: s.countBaseline && meV(s.countBaseline.validation.energy.rmse),
  warnings: s.warnings,
  cliCalibration: s.calibration,
  savedCalibration: { method: savedInfo.variance_calibration ?? 'held-out', groups: savedInfo.variance_calibration_groups ?? null, scale: saved.varianceScale, noise: saved.varianceNoise },
  trainingCompositions: trainCompositions.size,
  test: { frames: frames.length, newCompositionFrames: newFrames.length, energyRmse_meV_atom: meV(Math.sqrt(e2 / frames.length)), forcesRmse: +Math.sqrt(f2 / nf).toPrecision(3), saved: coverage(acdc.loadModelSync(model), frames) },
  variants: {},
};
if (newFrames.length && newFrames.length < frames.length) {
  const idx = frames.map((f, k) => (trainCompositions.has(composition(f)) ? -1 : k)).filter((k) => k >= 0);
  out.test.energyRmseNew_meV_atom = meV(Math.sqrt(idx.reduce((a, k) => a + ((p.energy[k] - frames[k].info.energy) / frames[k].size) ** 2, 0) / idx.length));
  out.test.savedNew = coverage(acdc.loadModelSync(model), newFrames);
}
for (const name of ['validation', 'loo', 'loo+sigma', 'loo+fit', 'validation+fit', 'lco', 'lco+fit']) {
  if (name.startsWith('validation') && validFrames.length === 0) continue;
  out.variants[name] = variant(name);
}
{
  const m = acdc.loadModelSync(model);
  const before = m.calibrateVarianceLeaveOneOutSync(trainFrames, { noise: 'fit', groups: 'frame' }).scale;
  // the factor the test errors would ask for on top of loo+fit (1: calibrated)
  out.test.scaleFittedOnTest_relativeToLooFit = +(m.calibrateVarianceSync(frames).scale / before).toPrecision(3);
}
console.log(JSON.stringify(out, null, 1));
if (dir) fs.rmSync(dir, { recursive: true, force: true });
