// Learning curves against the body order of the features (docs/MODELS.md,
// "Higher body order"): LinearModel and SparseGPR on the SOAP power spectrum
// (ν = 2) and on the SOAP bispectrum (ν = 3, features: 'bispectrum') of
// the same hypers, fitted to energies and forces of nested random subsets of
// TRAIN (one seeded permutation; the first n frames for each n) and tested
// on all of TEST. One JSON line per (model, n).
//   node bench/nu_learning_curves.mjs TRAIN TEST
// Environment:
//   NU_SIZES      training frames per point (default 10,20,45)
//   NU_MODELS     linear2,linear3,gpr2,gpr3 (default: all four)
//   NU_RADIAL     max_radial (default 2), NU_ANGULAR max_angular (default 3)
//   NU_CUTOFF     cutoff radius in Å (default 5; shifted cosine 1 Å; Gaussian 0.5 Å)
//   NU_SPARSE     sparse environments per centre species of the GPRs (default 300)
//   NU_ZETA       ζ of the GPRs (default 4), NU_DELTA δ in eV (default 0.2)
//   NU_SIGMAS     energy (eV/atom),forces (eV/Å) sigmas (default 0.002,0.05)
//   NU_LAMBDA     ridge parameter of the linear models (default 1e-6)
//   ACDC_NUM_THREADS threads.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(ROOT, 'package.json'));
const acdc = require('acdc-ml');

const [trainFile, testFile] = process.argv.slice(2);
if (!trainFile || !testFile) throw new Error('usage: node bench/nu_learning_curves.mjs TRAIN TEST');
const env = (k, d) => process.env[k] ?? d;
const train = await acdc.readXyz(trainFile);
const test = await acdc.readXyz(testFile);
const hypers = {
  cutoff: { radius: Number(env('NU_CUTOFF', 5)), smoothing: { type: 'ShiftedCosine', width: 1 } },
  density: { type: 'Gaussian', width: 0.5 },
  basis: { type: 'TensorProduct', max_angular: Number(env('NU_ANGULAR', 3)), radial: { type: 'Gto', max_radial: Number(env('NU_RADIAL', 2)) } },
};
const [sigmaE, sigmaF] = env('NU_SIGMAS', '0.002,0.05').split(',').map(Number);
const common = { hypers, targets: { energy: 'energy', forces: 'forces' }, sigmas: { energy: sigmaE, forces: sigmaF }, e0: 'average' };
const gpr = (features, frames) => {
  const atoms = (z) => frames.reduce((n, s) => n + s.types.filter((t) => t === z).length, 0);
  const species = [...new Set(frames.flatMap((s) => [...s.types]))];
  const count = Object.fromEntries(species.map((z) => [z, Math.min(Number(env('NU_SPARSE', 300)), atoms(z))]));
  return acdc.SparseGPR.fit(frames, { ...common, features, sparse: { count, method: 'cur' }, kernel: { zeta: Number(env('NU_ZETA', 4)), delta: Number(env('NU_DELTA', 0.2)) } });
};
const models = {
  linear2: (frames) => acdc.LinearModel.fit(frames, { ...common, features: 'power_spectrum', regularizer: Number(env('NU_LAMBDA', 1e-6)) }),
  linear3: (frames) => acdc.LinearModel.fit(frames, { ...common, features: 'bispectrum', regularizer: Number(env('NU_LAMBDA', 1e-6)) }),
  gpr2: (frames) => gpr('power_spectrum', frames),
  gpr3: (frames) => gpr('bispectrum', frames),
};

// one seeded permutation (a 32-bit LCG): nested subsets
let state = 12345;
const order = train.map((_, k) => k);
for (let k = order.length - 1; k > 0; k--) {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  const j = state % (k + 1);
  [order[k], order[j]] = [order[j], order[k]];
}
const sizes = env('NU_SIZES', '10,20,45').split(',').map(Number).filter((n) => n <= train.length);
const rms = (x) => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length);
const spread = 1000 * rms(test.map((s) => s.info.energy / s.size).map((e, _, a) => e - a.reduce((u, v) => u + v, 0) / a.length));
for (const name of env('NU_MODELS', 'linear2,linear3,gpr2,gpr3').split(',')) {
  for (const n of sizes) {
    const frames = order.slice(0, n).map((k) => train[k]);
    const t = performance.now();
    let model;
    try {
      model = await models[name](frames);
    } catch (e) {
      console.log(JSON.stringify({ model: name, train_frames: n, error: e.message }));
      continue;
    }
    const fitSeconds = (performance.now() - t) / 1000;
    const p = await model.predict(test, { forces: true });
    const de = test.map((s, k) => (p.energy[k] - s.info.energy) / s.size);
    const df = test.flatMap((s, k) => Array.from(s.arrays.forces, (f, i) => p.forces[k][i] - f));
    console.log(JSON.stringify({
      model: name,
      train_frames: n,
      features_per_atom: model.featureCount,
      parameters: model.weights.length,
      fit_seconds: fitSeconds,
      energy_rmse_meV_atom: 1000 * rms(de),
      forces_rmse: rms(df),
      test_energy_spread_meV_atom: spread,
    }));
  }
}
