#!/usr/bin/env node
// Fits the copper model of examples/ipi (cu.acdc), which the i-PI tests
// (test/ipi.test.ts) and the README example drive:
//
//   npm run build && node scripts/reference/ipi_fit_model.mjs
//
// Training data: test/fixtures/ipi/cu_emt.xyz (24 frames of 32-atom copper
// labelled with ASE's EMT, made by scripts/reference/ipi_emt_data.py): the
// first 20 frames train, the last 4 are held out. A sparse GPR on SOAP power
// spectra (r_c 4 Å, small basis: fast enough for 1000-step test runs), fitted to energies, forces and stresses. Writes
// examples/ipi/cu.acdc and examples/ipi/cu.fit.json (hyper-parameters and
// the held-out errors).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { SparseGPR, readXyzSync } = require('acdc-ml');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const frames = readXyzSync(path.join(root, 'test', 'fixtures', 'ipi', 'cu_emt.xyz'));
const train = frames.slice(0, 20);
const test = frames.slice(20);
const options = {
  hypers: {
    cutoff: { radius: 4.0, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
    density: { type: 'Gaussian', width: 0.4 },
    basis: { type: 'TensorProduct', max_angular: 3, radial: { type: 'Gto', max_radial: 4 } },
  },
  targets: { energy: 'energy', forces: 'forces', stress: 'stress' },
  sparse: { count: 50, method: 'fps' },
  kernel: { zeta: 2, delta: 0.2 },
  sigmas: { energy: 0.002, forces: 0.03, stress: 0.002 },
};
const model = await SparseGPR.fit(train, options);
const p = await model.predict(test, { forces: true, stress: true });
let e2 = 0;
let f2 = 0;
let nf = 0;
let s2 = 0;
test.forEach((s, k) => {
  e2 += ((p.energy[k] - s.info.energy) / s.size) ** 2;
  const f = s.arrays.forces;
  for (let i = 0; i < f.length; i++) f2 += (p.forces[k][i] - f[i]) ** 2;
  nf += f.length;
  for (let i = 0; i < 9; i++) s2 += (p.stress[k][i] - s.info.stress[i]) ** 2;
});
const errors = {
  energyRmsePerAtom: Math.sqrt(e2 / test.length),
  forceRmse: Math.sqrt(f2 / nf),
  stressRmse: Math.sqrt(s2 / (9 * test.length)),
};
const out = path.join(root, 'examples', 'ipi', 'cu.acdc');
await model.save(out);
fs.writeFileSync(
  path.join(root, 'examples', 'ipi', 'cu.fit.json'),
  JSON.stringify({ data: 'test/fixtures/ipi/cu_emt.xyz (ASE 3.29.0 EMT)', train: 'frames 0-19', test: 'frames 20-23', options, heldOutErrors: errors, units: 'eV/atom, eV/Å, eV/Å³' }, null, 2) + '\n',
);
console.log(`wrote ${out} (${fs.statSync(out).size} bytes); held out: ${JSON.stringify(errors)}`);
