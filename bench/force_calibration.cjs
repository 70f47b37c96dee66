// The linear model's per-component force variance on held-out frames
// (docs/MODELS.md, "Force variance"): calibrates a saved `acdc fit --json`
// model's force variance on the closed-form leave-one-frame-out force errors
// of its training frames, then measures the fraction of test force
// components within 1σ and 2σ (target 0.68 ± 0.1 and 0.95 ± 0.05), with 95 %
// Wilson intervals, on all test frames and on those at compositions no
// training frame has (the intervals count components as independent, which
// the components of one frame are not: read them as a lower bound on the
// uncertainty).
//
//   node bench/force_calibration.cjs model.acdc summary.json train.xyz test.xyz
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const acdc = require(path.join(__dirname, '..'));

const [model, summary, train, test] = process.argv.slice(2);
if (!test) {
  console.error('usage: node bench/force_calibration.cjs model.acdc summary.json train.xyz test.xyz');
  process.exit(2);
}
const s = JSON.parse(fs.readFileSync(summary, 'utf8'));
const all = acdc.readXyzSync(train);
const held = new Set(s.split.validation);
const trainFrames = all.filter((_, k) => !held.has(k));
const validFrames = s.split.validation.map((k) => all[k]);
const testFrames = acdc.readXyzSync(test);
const gcd = (a, b) => (b === 0 ? a : gcd(b, a % b));
const composition = (f) => {
  const counts = new Map();
  for (const t of f.types) counts.set(t, (counts.get(t) ?? 0) + 1);
  const g = [...counts.values()].reduce(gcd, 0);
  return [...counts.entries()].sort((a, b) => a[0] - b[0]).map(([t, n]) => `${t}:${n / g}`).join(',');
};
const seen = new Set(trainFrames.map(composition));
const newFrames = testFrames.filter((f) => !seen.has(composition(f)));
const wilson = (p, n) => {
  const z = 1.96;
  const c = (p + (z * z) / (2 * n)) / (1 + (z * z) / n);
  const h = (z / (1 + (z * z) / n)) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  return [+(c - h).toFixed(3), +(c + h).toFixed(3)];
};
const m = acdc.loadModelSync(model);
const t0 = Date.now();
const c = m.calibrateForceVarianceLeaveOneOutSync(trainFrames);
const seconds = (Date.now() - t0) / 1000;
const coverage = (frames) => {
  const r = m.calibrateForceVarianceSync(frames, { apply: false });
  return { components: r.components, within1: +r.within1SigmaBefore.toFixed(3), ci1: wilson(r.within1SigmaBefore, r.components), within2: +r.within2SigmaBefore.toFixed(3), ci2: wilson(r.within2SigmaBefore, r.components), scaleAskedFor: +(r.scale / c.scale).toPrecision(3) };
};
console.log(
  JSON.stringify(
    {
      model: m.kind,
      calibration: { scale: +c.scale.toPrecision(4), noise_meV2_A2: +(1e6 * c.noise).toPrecision(3), components: c.components, within1: +c.within1Sigma.toFixed(3), within2: +c.within2Sigma.toFixed(3), seconds },
      validation: validFrames.length ? coverage(validFrames) : null,
      test: coverage(testFrames),
      testNew: newFrames.length && newFrames.length < testFrames.length ? coverage(newFrames) : null,
    },
    null,
    1,
  ),
);
