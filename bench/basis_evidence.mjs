// Evidence for issue 15 (basis-set engineering and pseudo-elements), on ASE
// EMT data:
//   1. equal feature count: GTO vs Laplacian-eigenstate (LE) vs PCA-contracted
//      radial bases, SOAP power spectrum, fitted to energies + forces of EMT Cu
//      (examples/emt-cu-{train,test}.xyz) with SparseGPR and LinearModel; test
//      RMSEs, and the GFRE between the three feature sets in both directions;
//   2. pseudo-elements: on random fcc alloys of Al, Cu, Ag, Au, Ni, Pd, Pt
//      (scripts/reference/emt_alloy_data.py), test errors vs the number B of
//      pseudo-elements from fitAlchemicalCoupling, and the species-resolved
//      reference; feature count and featurisation / fit time per B.
//
//   node bench/basis_evidence.mjs [--part 1|2] [--python PATH] [--threads N]
// The alloy data are generated into bench/.data/ on first use (needs ASE: a
// Python with scripts/reference/requirements.txt; --python or $PYTHON).
// Output: markdown tables on stdout, and bench/basis-evidence.json.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fitRidge, predictRidge } from './ridge_forces.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(ROOT, 'package.json'));
const acdc = require('acdc-ml');
const { SoapPowerSpectrum, SparseGPR, LinearModel, fitRadialContraction, fitAlchemicalCoupling, gfre, readXyzSync } = acdc;

const args = process.argv.slice(2);
const opt = (name, def) => {
  const k = args.indexOf(name);
  return k >= 0 ? args[k + 1] : def;
};
const part = opt('--part', 'all');
const python = opt('--python', process.env.PYTHON ?? 'python3');
const threads = Number(opt('--threads', '2'));
process.env.ACDC_NUM_THREADS ??= String(threads);

const out = {};
const now = () => performance.now() / 1000;
const fmt = (x, d = 3) => (x === null || x === undefined ? '—' : Number(x).toPrecision(d));

// RMSE of energy per atom (eV/atom) and force components (eV/Å)
function rmse(frames, p) {
  let se = 0, ne = 0, sf = 0, nf = 0;
  frames.forEach((s, k) => {
    const n = s.size;
    se += ((p.energy[k] - s.info.energy) / n) ** 2;
    ne += 1;
    const ref = s.arrays.forces;
    const f = p.forces[k];
    for (let i = 0; i < 3 * n; i++) {
      sf += (f[i] - ref[i]) ** 2;
      nf += 1;
    }
  });
  return { energy: Math.sqrt(se / ne), forces: Math.sqrt(sf / nf) };
}
// the spread of the targets: RMSE of predicting the mean energy per atom / zero forces
function spread(frames) {
  const e = frames.map((s) => s.info.energy / s.size);
  const mean = e.reduce((a, b) => a + b, 0) / e.length;
  let sf = 0, nf = 0;
  for (const s of frames) for (const v of s.arrays.forces) { sf += v * v; nf += 1; }
  return { energy: Math.sqrt(e.reduce((a, x) => a + (x - mean) ** 2, 0) / e.length), forces: Math.sqrt(sf / nf) };
}

const targets = { energy: 'energy', forces: 'forces' };
const sigmas = { energy: 0.002, forces: 0.05 }; // eV/atom, eV/Å (bench/gap.mjs's)

async function fitAndTest(kind, train, test, hypers, extra) {
  const t0 = now();
  const model = kind === 'gpr'
    ? await SparseGPR.fit(train, { hypers, targets, sigmas, kernel: { zeta: 2, delta: 0.2 }, sparse: { count: extra.sparse, method: 'cur' }, e0: extra.e0 })
    : await LinearModel.fit(train, { hypers, targets, sigmas, regularizer: extra.regularizer, e0: extra.e0 });
  const fit = now() - t0;
  const p = await model.predict(test, { forces: true });
  return { ...rmse(test, p), fitSeconds: fit };
}

function nFeatures(hypers, frames) {
  const tm = new SoapPowerSpectrum(hypers).computeSync(frames.slice(0, 1));
  return tm.block(0).properties.count;
}

// per-structure mean features, every key block moved into the properties
function structureFeatures(hypers, frames) {
  const tm = new SoapPowerSpectrum(hypers).computeSync(frames);
  return tm.meanOverSamples('atom').keysToProperties(tm.keys.names).toArray();
}
function atomFeatures(hypers, frames) {
  const tm = new SoapPowerSpectrum(hypers).computeSync(frames);
  return tm.keysToProperties(tm.keys.names.filter((n) => n !== 'center_type')).block(0).values;
}

// ---------------------------------------------------------------- part 1
async function part1() {
  const train = readXyzSync(path.join(ROOT, 'examples/emt-cu-train.xyz'));
  const test = readXyzSync(path.join(ROOT, 'examples/emt-cu-test.xyz'));
  const common = {
    cutoff: { radius: 4.5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
    density: { type: 'Gaussian', width: 0.5 },
  };
  const L = 4;
  const gto = (n) => ({ ...common, basis: { type: 'TensorProduct', max_angular: L, radial: { type: 'Gto', max_radial: n } } });
  const le = (n) => ({ ...common, basis: { type: 'LaplacianEigenstate', max_radial: n, max_angular: L } });
  const bigGto = gto(11);
  // LE sizes: the max_radial whose power-spectrum size is nearest
  const leCounts = [];
  for (let n = 1; n <= 14; n++) {
    try {
      leCounts.push([n, nFeatures(le(n), train)]);
    } catch {
      // max_radial too small to reach l = max_angular: not a candidate
    }
  }
  const rows = [];
  const gfreRows = [];
  for (const n of [2, 3, 5]) {
    const g = gto(n);
    const count = nFeatures(g, train);
    const [nLe, countLe] = leCounts.reduce((best, c) => (Math.abs(c[1] - count) < Math.abs(best[1] - count) ? c : best));
    const t0 = now();
    const pcaHypers = await fitRadialContraction(train, bigGto, { maxRadial: n });
    const pcaFitSeconds = now() - t0;
    const sets = [
      ['GTO', `Gto max_radial ${n}`, g],
      ['LE', `LaplacianEigenstate max_radial ${nLe}`, le(nLe)],
      ['PCA', `contraction of Gto max_radial 11 to ${n + 1} per l`, pcaHypers],
    ];
    const feats = {};
    const atoms = {};
    for (const [name, desc, hypers] of sets) {
      const c = nFeatures(hypers, train);
      const gpr = await fitAndTest('gpr', train, test, hypers, { sparse: 200 });
      const lin = await fitAndTest('linear', train, test, hypers, { regularizer: 1e-8 });
      rows.push({ size: count, basis: name, desc, features: c, gpr, linear: lin, pcaFitSeconds: name === 'PCA' ? pcaFitSeconds : undefined });
      process.stderr.write(`part 1: ${name} ${desc}: ${c} features, GPR ${fmt(gpr.energy)} eV/atom ${fmt(gpr.forces)} eV/Å; linear ${fmt(lin.energy)} ${fmt(lin.forces)}\n`);
      feats[name] = structureFeatures(hypers, [...train, ...test]);
      atoms[name] = atomFeatures(hypers, [...train, ...test]);
    }
    const nAtoms = atoms.GTO.length / nFeatures(g, train);
    for (const a of ['GTO', 'LE', 'PCA']) {
      for (const b of ['GTO', 'LE', 'PCA']) {
        if (a === b) continue;
        const toDense = (name, hyp) => ({ data: atoms[name], shape: [nAtoms, atoms[name].length / nAtoms] });
        gfreRows.push({ size: count, from: a, to: b, structures: gfre(feats[a], feats[b]), atoms: gfre(toDense(a), toDense(b)) });
      }
    }
  }
  out.part1 = { rows, gfre: gfreRows, leCounts, train: { frames: train.length, atoms: train.reduce((n, s) => n + s.size, 0) }, test: { frames: test.length, atoms: test.reduce((n, s) => n + s.size, 0) }, spread: spread(test) };
  const lines = [];
  lines.push(`EMT Cu: train ${out.part1.train.frames} frames (${out.part1.train.atoms} atoms), test ${out.part1.test.frames} frames (${out.part1.test.atoms} atoms); r_c 4.5 Å, σ 0.5 Å, max_angular ${L}. Test spread: ${fmt(out.part1.spread.energy)} eV/atom (energy std), ${fmt(out.part1.spread.forces)} eV/Å (force rms).`);
  lines.push('SparseGPR: 200 CUR sparse points, ζ 2, δ 0.2 eV; LinearModel: regularizer 1e-8; σ_E 0.002 eV/atom, σ_F 0.05 eV/Å for both.');
  lines.push('');
  lines.push('| basis | radial set | features | GPR E RMSE (meV/atom) | GPR F RMSE (meV/Å) | linear E RMSE (meV/atom) | linear F RMSE (meV/Å) |');
  lines.push('|---|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    lines.push(`| ${r.basis} | ${r.desc} | ${r.features} | ${fmt(1000 * r.gpr.energy)} | ${fmt(1000 * r.gpr.forces)} | ${fmt(1000 * r.linear.energy)} | ${fmt(1000 * r.linear.forces)} |`);
  }
  lines.push('');
  lines.push('GFRE(X → Y) (error reconstructing Y from X by ridge regression; 0: Y is a linear function of X), train + test frames; per-structure mean features and per-atom features:');
  lines.push('');
  lines.push('| features | X → Y | GFRE, per-structure mean | GFRE, per atom |');
  lines.push('|---:|---|---:|---:|');
  for (const r of gfreRows) lines.push(`| ${r.size} | ${r.from} → ${r.to} | ${fmt(r.structures)} | ${fmt(r.atoms)} |`);
  console.log(lines.join('\n'));
}

// ---------------------------------------------------------------- part 2
async function part2() {
  const dir = path.join(ROOT, 'bench/.data');
  const trainFile = path.join(dir, 'emt-alloy-train.xyz');
  const testFile = path.join(dir, 'emt-alloy-test.xyz');
  if (!fs.existsSync(trainFile) || !fs.existsSync(testFile)) {
    fs.mkdirSync(dir, { recursive: true });
    execFileSync(python, [path.join(ROOT, 'scripts/reference/emt_alloy_data.py'), '--train', trainFile, '--test', testFile,
      '--train-frames', '48', '--test-frames', '16', '--seed', '2026'], { stdio: 'inherit' });
  }
  const train = readXyzSync(trainFile);
  const test = readXyzSync(testFile);
  const species = [...new Set(train.flatMap((s) => Array.from(s.types)))].sort((a, b) => a - b);
  const S = species.length;
  const base = {
    cutoff: { radius: 4.5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
    density: { type: 'Gaussian', width: 0.5 },
    basis: { type: 'TensorProduct', max_angular: 3, radial: { type: 'Gto', max_radial: 3 } },
  };
  const rows = [];
  const ridgeSigmas = { energy: 0.002, forces: 0.05 };
  const regularizer = [10, 1, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7];
  const run = async (label, B, hypers, couplingSeconds) => {
    const calc = new SoapPowerSpectrum(hypers);
    const t0 = now();
    const tmTrain = await calc.compute(train, { gradients: ['positions'] });
    const tmTest = await calc.compute(test, { gradients: ['positions'] });
    const featSeconds = now() - t0;
    let features = 0;
    for (let k = 0; k < tmTrain.keys.count; k++) if (tmTrain.keys.entry(k).center_type === species[0]) features += tmTrain.block(k).properties.count;
    const t1 = now();
    const model = fitRidge(tmTrain, train, species, { sigmas: ridgeSigmas, regularizer, shared: true });
    const fitSeconds = now() - t1;
    const ridge = { ...rmse(test, predictRidge(model, tmTest, test)), fitSeconds };
    const row = { label, B, features, weights: model.w.length, featSeconds, couplingSeconds, ridge, regularizer: model.regularizer };
    rows.push(row);
    process.stderr.write(`part 2: ${label}: ${features} features/centre type, featurise ${featSeconds.toFixed(2)} s, ridge ${fmt(ridge.energy)} ${fmt(ridge.forces)} (${fitSeconds.toFixed(1)} s, regularizer ${model.regularizer})\n`);
  };
  for (let B = 1; B <= S; B++) {
    const t0 = now();
    const fitted = await fitAlchemicalCoupling(train, base, { pseudoTypes: B });
    await run(`B = ${B}`, B, fitted, now() - t0);
  }
  await run('species-resolved', null, base, null);
  out.part2 = { species, rows, train: { frames: train.length, atoms: train.reduce((n, s) => n + s.size, 0) }, test: { frames: test.length, atoms: test.reduce((n, s) => n + s.size, 0) }, spread: spread(test) };
  const lines = [];
  lines.push(`EMT fcc alloys of ${S} elements (Z = ${species.join(', ')}): train ${out.part2.train.frames} frames (${out.part2.train.atoms} atoms), test ${out.part2.test.frames} frames (${out.part2.test.atoms} atoms); r_c 4.5 Å, σ 0.5 Å, Gto max_radial 3, max_angular 3. Test spread: ${fmt(out.part2.spread.energy)} eV/atom (energy std), ${fmt(out.part2.spread.forces)} eV/Å (force rms).`);
  lines.push(`Model: ridge regression on energies + forces (bench/ridge_forces.mjs; one weight vector shared by all centre species, e0 fitted on the species counts, σ_E ${ridgeSigmas.energy} eV/atom, σ_F ${ridgeSigmas.forces} eV/Å, regularizer × mean diagonal of the kernel, chosen from ${regularizer.join(', ')} by the error on every 4th training frame).`);
  lines.push('Features: power-spectrum features of one centre type (the weights are shared by all centre types). Featurise: train + test power spectrum with position gradients. U fit: fitAlchemicalCoupling on the training set.');
  lines.push('');
  lines.push('| B | features | weights | featurise (s) | U fit (s) | ridge fit (s) | regularizer | E RMSE (meV/atom) | F RMSE (meV/Å) |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    lines.push(`| ${r.B ?? r.label} | ${r.features} | ${r.weights} | ${r.featSeconds.toFixed(2)} | ${r.couplingSeconds === null ? '—' : r.couplingSeconds.toFixed(2)} | ${r.ridge.fitSeconds.toFixed(1)} | ${r.regularizer} | ${fmt(1000 * r.ridge.energy)} | ${fmt(1000 * r.ridge.forces)} |`);
  }
  console.log(lines.join('\n'));
}

const t0 = now();
if (part === 'all' || part === '1') await part1();
if (part === 'all') console.log('');
if (part === 'all' || part === '2') await part2();
out.totalSeconds = now() - t0;
out.threads = Number(process.env.ACDC_NUM_THREADS);
out.versions = { node: process.version, acdc: require(path.join(ROOT, 'package.json')).version };
const file = path.join(ROOT, 'bench', part === 'all' ? 'basis-evidence.json' : `basis-evidence-${part}.json`);
fs.writeFileSync(file + '.tmp', JSON.stringify(out, null, 1));
fs.renameSync(file + '.tmp', file);
process.stderr.write(`total ${out.totalSeconds.toFixed(1)} s → ${path.relative(ROOT, file)}\n`);
