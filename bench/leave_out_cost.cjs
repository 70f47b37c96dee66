// CPU time of one calibration call of a saved `acdc fit --json` model on its
// own training frames (docs/MODELS.md, "The calibration steps of acdc fit"):
// the force leave-out, the energy leave-out by frame or by composition, or
// predictions with variance. Give the package root to compare two builds on
// the same model and frames in one session (the machine's load inflates wall
// times far more than CPU times: state it next to any number).
//
//   node dist/cli/main.js fit train.xyz --model linear --out /tmp/lin.acdc --json > /tmp/lin.json
//   node bench/leave_out_cost.cjs <package root> force|energy|energy-composition|predict-variance /tmp/lin.acdc /tmp/lin.json train.xyz
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const [root, what, model, summary, train] = process.argv.slice(2);
if (!train) {
  console.error('usage: node bench/leave_out_cost.cjs <package root> force|energy|energy-composition|predict-variance model.acdc summary.json train.xyz');
  process.exit(2);
}
const acdc = require(path.resolve(root));
const s = JSON.parse(fs.readFileSync(summary, 'utf8'));
const held = new Set(s.split.validation);
const frames = acdc.readXyzSync(train).filter((_, k) => !held.has(k));
const m = acdc.loadModelSync(model);
const calls = {
  force: () => m.forceLeaveOneOutSync(frames),
  energy: () => m.leaveOneOutSync(frames, { groups: 'frame' }),
  'energy-composition': () => m.leaveOneOutSync(frames, { groups: 'composition' }),
  'predict-variance': () => m.predictSync(frames, { variance: true }),
};
if (!calls[what]) {
  console.error(`unknown call '${what}' (expected one of ${Object.keys(calls).join(', ')})`);
  process.exit(2);
}
const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
calls[what]();
const c = process.cpuUsage(c0);
console.log(JSON.stringify({ root, what, frames: frames.length, cpuSeconds: (c.user + c.system) / 1e6, wallSeconds: Number(process.hrtime.bigint() - t0) / 1e9 }));
