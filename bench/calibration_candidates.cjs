// Dumps what the variance calibrations of docs/MODELS.md ("Calibrating the
// sparse GPR across compositions") are computed from, for one saved
// `acdc fit --json` model: the closed-form leave-out errors and variances of
// the training frames left out by frame and by composition (no scale, no
// noise), and the model's raw variance and error on the validation and test
// frames. bench/calibration_candidates.py then fits each candidate
// calibration on the training frames alone and measures it on the test frames.
//
//   node dist/cli/main.js fit bench/.data/ptni-train.xyz --model gpr --out /tmp/gpr.acdc --json > /tmp/gpr.json
//   node bench/calibration_candidates.cjs /tmp/gpr.acdc /tmp/gpr.json bench/.data/ptni-train.xyz bench/.data/ptni-test.xyz /tmp/gpr-dump.json
//   python bench/calibration_candidates.py /tmp/gpr-dump.json
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const acdc = require(path.join(__dirname, '..'));

const [model, summary, train, test, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node bench/calibration_candidates.cjs model.acdc summary.json train.xyz test.xyz out.json');
  process.exit(2);
}
const s = JSON.parse(fs.readFileSync(summary, 'utf8'));
const all = acdc.readXyzSync(train);
const held = new Set(s.split.validation);
const trainFrames = all.filter((_, k) => !held.has(k));
const validFrames = s.split.validation.map((k) => all[k]);
const testFrames = acdc.readXyzSync(test);
const m = acdc.loadModelSync(model);
// a composition: the species counts divided by their greatest common divisor
const gcd = (a, b) => (b === 0 ? a : gcd(b, a % b));
const composition = (f) => {
  const counts = new Map();
  for (const t of f.types) counts.set(t, (counts.get(t) ?? 0) + 1);
  const g = [...counts.values()].reduce(gcd, 0);
  return [...counts.entries()].sort((a, b) => a[0] - b[0]).map(([t, n]) => `${t}:${n / g}`).join(',');
};
// fraction of the first species of the training frames (a binary alloy: one number per composition)
const species = [...new Set(trainFrames.flatMap((f) => [...f.types]))].sort((a, b) => a - b);
const fraction = (f) => f.types.filter((t) => t === species[0]).length / f.size;
const res = { model: s.model, species, train: { label: trainFrames.map(composition), fraction: trainFrames.map(fraction) } };
for (const groups of ['frame', 'composition']) {
  const l = m.leaveOneOutSync(trainFrames, { groups });
  res.train[groups] = { errors: [...l.errors], variances: [...l.variances], atoms: l.atoms, groups: l.groups };
}
// the model's own variance v (the saved one is s·(v + c·N))
const raw = (frames) => {
  const p = m.predictSync(frames, { variance: true });
  return {
    label: frames.map(composition),
    fraction: frames.map(fraction),
    errors: frames.map((f, k) => p.energy[k] - f.info.energy),
    variances: frames.map((f, k) => p.variance[k] / m.varianceScale - m.varianceNoise * f.size),
    atoms: frames.map((f) => f.size),
  };
};
res.validation = raw(validFrames);
res.test = raw(testFrames);
fs.writeFileSync(out, JSON.stringify(res));
console.log(`wrote ${out}`);
