// Sums of kernels on an alloy across compositions (docs/MODELS.md, "Sums of
// kernels"): SOAP-only SparseGPR, distance_2b + SOAP, and LinearModel on the
// same power spectrum, fitted to energies and forces of TRAIN and tested on
// TEST (the Pt–Ni frames of scripts/reference/emt_ptni_alloy_data.py), with test
// errors overall and per value of the info key `pt`. GAP-matched settings
// (the GAP side: docs/MODELS.md). One JSON line per model.
//   node bench/terms_alloy.mjs TRAIN TEST
// Threads: ACDC_NUM_THREADS from the environment.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(ROOT, 'package.json'));
const acdc = require('acdc-ml');

const [trainFile, testFile] = process.argv.slice(2);
const train = await acdc.readXyz(trainFile);
const test = await acdc.readXyz(testFile);
// GAP: soap cutoff=5 cutoff_transition_width=1 n_max=6 l_max=4 atom_sigma=0.5
const hypers = {
  cutoff: { radius: 5, smoothing: { type: 'ShiftedCosine', width: 1 } },
  density: { type: 'Gaussian', width: 0.5 },
  basis: { type: 'TensorProduct', max_angular: 4, radial: { type: 'Gto', max_radial: 5 } },
};
const common = { targets: { energy: 'energy', forces: 'forces' }, sigmas: { energy: 0.002, forces: 0.05 }, e0: 'average' };
const soap = { type: 'soap', hypers, sparse: { count: 300, method: 'cur' }, kernel: { zeta: 4, delta: 0.2 } };
// TERMS_2B_DELTA (eV) overrides the 2-body δ
const pair = { type: 'distance_2b', cutoff: 5, transition: 0.5, theta: 1, delta: Number(process.env.TERMS_2B_DELTA ?? 1), sparse: { count: 20 } };
const models = {
  soap: () => acdc.SparseGPR.fit(train, { ...common, hypers, sparse: soap.sparse, kernel: soap.kernel }),
  '2b+soap': () => acdc.SparseGPR.fit(train, { ...common, terms: [pair, soap] }),
  linear: () => acdc.LinearModel.fit(train, { ...common, hypers, regularizer: 1e-6 }),
};
const only = process.env.TERMS_MODELS ? process.env.TERMS_MODELS.split(',') : Object.keys(models);
for (const name of only) {
  const t = performance.now();
  const model = await models[name]();
  const fitSeconds = (performance.now() - t) / 1000;
  const p = await model.predict(test, { forces: true });
  const de = test.map((s, k) => (p.energy[k] - s.info.energy) / s.size);
  let se = 0;
  let n = 0;
  test.forEach((s, k) => {
    const f = s.arrays.forces;
    for (let i = 0; i < f.length; i++) {
      se += (p.forces[k][i] - f[i]) ** 2;
      n++;
    }
  });
  const rms = (x) => 1000 * Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length);
  const mean = (x) => (1000 * x.reduce((a, v) => a + v, 0)) / x.length;
  const groups = {};
  for (const g of [...new Set(test.map((s) => s.info.pt))].sort((a, b) => a - b)) {
    const d = de.filter((_, k) => test[k].info.pt === g);
    groups[g] = { energy_rmse_meV_atom: rms(d), energy_mean_meV_atom: mean(d) };
  }
  const spread = rms(test.map((s) => s.info.energy / s.size).map((e, _, a) => e - a.reduce((u, v) => u + v, 0) / a.length));
  console.log(JSON.stringify({ model: name, fitSeconds, energy_rmse_meV_atom: rms(de), forces_rmse: Math.sqrt(se / n), by_group: groups, test_energy_spread_meV_atom: spread }));
}
