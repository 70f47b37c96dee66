// Pseudo-elements in models (issue 26): test errors of LinearModel and
// SparseGPR against the number B of pseudo-elements (density.alchemical, U
// from fitAlchemicalCoupling on the training frames) and the species-resolved
// model, on five-element EMT fcc alloys (scripts/reference/emt_hea_data.py:
// 32-atom cells, random compositions of Ni Cu Pd Ag Au, strained and
// rattled). Fitted to energies and forces; reports test energy and force
// RMSE, features per centre species, weights, the U fit and the model fit
// time, and the load average around each fit (the machine may be shared).
//
//   node bench/alchemical_models.mjs [--train-frames 160] [--test-frames 60]
//        [--models linear,gpr] [--B 1,2,3,4,5,full] [--python PATH]
//        [--sparse 200] [--zeta 2] [--delta 0.2] [--out bench/alchemical-models.json]
// The data are generated into bench/.data/ on first use (needs ASE:
// scripts/reference/requirements.txt; --python or $PYTHON). Threads:
// ACDC_NUM_THREADS (default 2).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(ROOT, 'package.json'));
process.env.ACDC_NUM_THREADS ??= '2';
const acdc = require('acdc-ml');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const k = args.indexOf(name);
  return k >= 0 ? args[k + 1] : def;
};
const python = opt('--python', process.env.PYTHON ?? 'python3');
const trainFrames = Number(opt('--train-frames', '160'));
const testFrames = Number(opt('--test-frames', '60'));
const models = opt('--models', 'linear,gpr').split(',');
const Bs = opt('--B', '1,2,3,4,5,full').split(',').filter((b) => b !== 'none');
const sparse = Number(opt('--sparse', '200'));
const zeta = Number(opt('--zeta', '2'));
const delta = Number(opt('--delta', '0.2'));
const outFile = path.resolve(opt('--out', path.join(ROOT, 'bench', 'alchemical-models.json')));

const dir = path.join(ROOT, 'bench/.data');
const trainFile = path.join(dir, 'emt-hea-train.xyz');
const testFile = path.join(dir, 'emt-hea-test.xyz');
if (!fs.existsSync(trainFile) || !fs.existsSync(testFile)) {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync(python, [path.join(ROOT, 'scripts/reference/emt_hea_data.py'), '--train', trainFile, '--test', testFile,
    '--train-frames', '160', '--test-frames', '60', '--seed', '2026'], { stdio: 'inherit' });
}
const train = acdc.readXyzSync(trainFile).slice(0, trainFrames);
const test = acdc.readXyzSync(testFile).slice(0, testFrames);
const species = [...new Set(train.flatMap((s) => Array.from(s.types)))].sort((a, b) => a - b);

const hypers = {
  cutoff: { radius: 4.5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.5 },
  basis: { type: 'TensorProduct', max_angular: 3, radial: { type: 'Gto', max_radial: 3 } },
};
const common = { targets: { energy: 'energy', forces: 'forces' }, sigmas: { energy: 0.002, forces: 0.05 }, e0: 'fit' };
const fitters = {
  linear: (h) => acdc.LinearModel.fit(train, { ...common, hypers: h, regularizer: 1e-6 }),
  gpr: (h) => acdc.SparseGPR.fit(train, { ...common, hypers: h, sparse: { count: sparse }, kernel: { zeta, delta } }),
};

const now = () => performance.now() / 1000;
const atoms = (fs_) => fs_.reduce((n, s) => n + s.size, 0);
const meanE = test.reduce((a, s) => a + s.info.energy / s.size, 0) / test.length;
const spread = {
  energy: Math.sqrt(test.reduce((a, s) => a + (s.info.energy / s.size - meanE) ** 2, 0) / test.length),
  forces: Math.sqrt(test.reduce((a, s) => a + s.arrays.forces.reduce((u, v) => u + v * v, 0), 0) / (3 * atoms(test))),
};
function errors(p) {
  let se = 0;
  let sf = 0;
  let nf = 0;
  test.forEach((s, k) => {
    se += ((p.energy[k] - s.info.energy) / s.size) ** 2;
    const f = s.arrays.forces;
    for (let i = 0; i < f.length; i++) sf += (p.forces[k][i] - f[i]) ** 2;
    nf += f.length;
  });
  return { energy: Math.sqrt(se / test.length), forces: Math.sqrt(sf / nf) };
}

// baseline: per-species reference energies fitted to the training energies by least squares on the species counts
function countBaseline() {
  const S = species.length;
  const a = new Float64Array(S * S);
  const b = new Float64Array(S);
  const counts = (s) => species.map((z) => Array.from(s.types).filter((t) => t === z).length);
  for (const s of train) {
    const c = counts(s);
    for (let p = 0; p < S; p++) {
      b[p] += c[p] * s.info.energy;
      for (let q = 0; q < S; q++) a[p * S + q] += c[p] * c[q];
    }
  }
  // Gaussian elimination with partial pivoting (S × S)
  const x = Array.from(b);
  const m = Array.from(a);
  for (let k = 0; k < S; k++) {
    let piv = k;
    for (let r = k + 1; r < S; r++) if (Math.abs(m[r * S + k]) > Math.abs(m[piv * S + k])) piv = r;
    for (let q = 0; q < S; q++) [m[k * S + q], m[piv * S + q]] = [m[piv * S + q], m[k * S + q]];
    [x[k], x[piv]] = [x[piv], x[k]];
    for (let r = k + 1; r < S; r++) {
      const f = m[r * S + k] / m[k * S + k];
      for (let q = k; q < S; q++) m[r * S + q] -= f * m[k * S + q];
      x[r] -= f * x[k];
    }
  }
  for (let k = S - 1; k >= 0; k--) {
    for (let q = k + 1; q < S; q++) x[k] -= m[k * S + q] * x[q];
    x[k] /= m[k * S + k];
  }
  const se = test.reduce((acc, s) => acc + ((counts(s).reduce((u, c, p) => u + c * x[p], 0) - s.info.energy) / s.size) ** 2, 0);
  return { e0: Object.fromEntries(species.map((z, p) => [z, x[p]])), energy: Math.sqrt(se / test.length) };
}
const baseline = countBaseline();

const rows = [];
process.stderr.write(`train ${train.length} frames (${atoms(train)} atoms), test ${test.length} frames (${atoms(test)} atoms), species ${species.join(' ')}; threads ${process.env.ACDC_NUM_THREADS}\n`);
for (const b of Bs) {
  let h = hypers;
  let couplingSeconds = null;
  if (b !== 'full') {
    const t = now();
    h = await acdc.fitAlchemicalCoupling(train, hypers, { pseudoTypes: Number(b) });
    couplingSeconds = now() - t;
  }
  const pairs = b === 'full' ? (species.length * (species.length + 1)) / 2 : (Number(b) * (Number(b) + 1)) / 2;
  const features = pairs * 4 * 4 * 4; // (l, n1, n2) per neighbour pair: 4 l × 4 n × 4 n
  for (const m of models) {
    const load0 = os.loadavg()[0];
    const t = now();
    const model = await fitters[m](h);
    const fitSeconds = now() - t;
    const load1 = os.loadavg()[0];
    const e = errors(await model.predict(test, { forces: true }));
    const row = { B: b, model: m, features, weights: m === 'linear' ? species.length * features : null, sparse: m === 'gpr' ? sparse * species.length : null, couplingSeconds, fitSeconds, load: [load0, load1], ...e };
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
}
const out = {
  train: { frames: train.length, atoms: atoms(train) },
  test: { frames: test.length, atoms: atoms(test) },
  species,
  spread,
  baseline,
  hypers,
  common,
  sparse,
  kernel: { zeta, delta },
  rows,
  threads: Number(process.env.ACDC_NUM_THREADS),
  versions: { node: process.version, acdc: require(path.join(ROOT, 'package.json')).version },
};
fs.writeFileSync(outFile + '.tmp', JSON.stringify(out, null, 1));
fs.renameSync(outFile + '.tmp', outFile);
const fmt = (x, d = 3) => (x === null || x === undefined ? '—' : Number(x).toPrecision(d));
const lines = [];
lines.push(`Test spread: ${fmt(1000 * spread.energy)} meV/atom (energy std), ${fmt(1000 * spread.forces)} meV/Å (force rms); per-species e0 from the counts alone: ${fmt(1000 * baseline.energy)} meV/atom.`);
lines.push('');
lines.push('| B | model | features / centre species | weights or sparse points | U fit (s) | fit (s) | load avg (before, after) | E RMSE (meV/atom) | F RMSE (meV/Å) |');
lines.push('|---|---|---:|---:|---:|---:|---|---:|---:|');
for (const r of rows) {
  lines.push(`| ${r.B} | ${r.model} | ${r.features} | ${r.weights ?? r.sparse} | ${r.couplingSeconds === null ? '—' : r.couplingSeconds.toFixed(2)} | ${r.fitSeconds.toFixed(1)} | ${r.load.map((x) => x.toFixed(1)).join(', ')} | ${fmt(1000 * r.energy)} | ${fmt(1000 * r.forces)} |`);
}
console.log(lines.join('\n'));
