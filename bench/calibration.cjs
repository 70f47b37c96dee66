// Checks `acdc fit`'s defaults on held-out data: fits with the CLI (its
// validation split, baselines and variance calibration), then measures on a
// separate test file the fraction of energy errors within 1σ and 2σ of the
// calibrated variance (target 0.68 ± 0.1 and 0.95 ± 0.05) and the test RMSE
// of the saved model. The coverage is computed by the Rust core
// (calibrateVariance reports the coverage before it rescales).
//
//   /tmp/venv/bin/python scripts/reference/emt_ptni_data.py /tmp/ptni-train.xyz /tmp/ptni-test.xyz 120 90
//   node bench/calibration.cjs /tmp/ptni-train.xyz /tmp/ptni-test.xyz [acdc fit options…]
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const acdc = require('acdc-ml');

const [train, test, ...extra] = process.argv.slice(2);
if (!train || !test) {
  console.error('usage: node bench/calibration.cjs train.xyz test.xyz [acdc fit options…]');
  process.exit(2);
}
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-calibration-'));
const model = path.join(dir, 'model.acdc');
const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
const t0 = Date.now();
const r = spawnSync(process.execPath, [cli, 'fit', train, '--out', model, '--json', ...extra], { encoding: 'utf8', maxBuffer: 1 << 26 });
if (r.status !== 0) {
  console.error(r.stderr);
  process.exit(1);
}
const s = JSON.parse(r.stdout);
const frames = acdc.readXyzSync(test);
const m = acdc.loadModelSync(model);
const p = m.predictSync(frames, { forces: true });
let e2 = 0;
let f2 = 0;
let nf = 0;
frames.forEach((f, k) => {
  e2 += ((p.energy[k] - f.info.energy) / f.size) ** 2;
  const ref = f.arrays.forces;
  for (let i = 0; i < ref.length; i++) (f2 += (p.forces[k][i] - ref[i]) ** 2), (nf += 1);
});
const heldOut = m.calibrateVarianceSync(frames);
const meV = (x) => +(1000 * x).toPrecision(3);
console.log(
  JSON.stringify({
    command: `acdc fit ${path.basename(train)} ${extra.join(' ')}`.trim(),
    fitSeconds: +((Date.now() - t0) / 1000).toFixed(1),
    model: s.model,
    validationFrames: s.split.validation.length,
    validationRmse: Object.fromEntries(
      Object.entries(s.candidates).map(([k, c]) => [k, { energy_meV_atom: meV(c.validation.energy.rmse), forces: c.validation.forces && +c.validation.forces.rmse.toPrecision(3) }]),
    ),
    countBaselineRmse_meV_atom: meV(s.countBaseline.validation.energy.rmse),
    warnings: s.warnings,
    calibration: { scale: +s.calibration.scale.toPrecision(3), validationWithin1: s.calibration.within1Sigma, validationWithin2: s.calibration.within2Sigma },
    test: {
      frames: frames.length,
      energyRmse_meV_atom: meV(Math.sqrt(e2 / frames.length)),
      forcesRmse: +Math.sqrt(f2 / nf).toPrecision(3),
      within1Sigma: +heldOut.within1SigmaBefore.toFixed(3),
      within2Sigma: +heldOut.within2SigmaBefore.toFixed(3),
      scaleFittedOnTest: +heldOut.scale.toPrecision(3),
    },
  }),
);
fs.rmSync(dir, { recursive: true, force: true });
