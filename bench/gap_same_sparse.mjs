#!/usr/bin/env node
// acdc's SparseGPR fitted with GAP's own sparse environments (gap_fit's
// print_sparse_index files), predicted on a test set and compared frame by
// frame with GAP's predictions (scripts/reference/gap_predictions.py): the
// experiment of docs/MODELS.md "Multi-species accuracy against GAP".
//
//   node bench/gap_same_sparse.mjs --train T.xyz --test X.xyz
//        [--hypers gap_hypers.json]            (default: GTO, max_radial 5, l_max 4)
//        [--indices idx29.dat:29,idx79.dat:79] (gap_fit's 1-based index files; default: --sparse)
//        [--sparse leverage:300:0]             (method:count[:seed] when no --indices)
//        [--e0 average|fit]                   (GAP's e0_method=average, the default, or one e0 per species fitted)
//        [--virial 0.05]                       (fit the stress as GAP fits virials: σ_V·√N eV per component)
//        [--gap gap_pred.json] [--save model.acdc] [--json out.json]
//        [--model model.acdc]                  (predict with a saved model instead of fitting)
//        [--group-by temperature]              (also per config_type and this info key: e.g. per
//                                               MD trajectory of emt_data.py, one per temperature)
//        [--terms 2b]                          (GAP's distance_2b + SOAP: the 2b term as `acdc fit --terms 2b,soap`'s
//                                               defaults, cutoff 5 Å, transition 0.5 Å, θ 1 Å, δ 1 eV, 20 uniform
//                                               distances per species pair, jitter 1e-8 relative = GAP's absolute 1e-8;
//                                               bench/gap_draws.sh --terms 2b)
//        [--jitter J]                          (relative jitter, × each term's δ²; default 1e-8/δ_SOAP², GAP's absolute 1e-8 on SOAP)
//        [--loo 1]                             (also the closed-form leave-one-out energy errors of the
//                                               training frames, per config_type: can the training side
//                                               rank sparse draws? docs/MODELS.md "Ranking draws by leave-one-out")
//
// SOAP settings otherwise as bench/gap_alloys.mjs: ζ 4, δ 0.2 eV, σ 0.002
// eV/atom and 0.05 eV/Å, e0 average, jitter 1e-8/δ² (GAP's absolute 1e-8).
// One JSON line on stdout: test RMSE (all, per config_type), mean signed
// energy error per config_type, and the largest differences from GAP.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const acdc = createRequire(path.join(ROOT, 'package.json'))('acdc-ml');

const o = { hypers: null, indices: null, sparse: 'leverage:300', virial: null, e0: 'average', gap: null, save: null, json: null, model: null, loo: null, 'group-by': null, terms: null, jitter: null };
for (let k = 2; k < process.argv.length; k += 2) {
  const key = process.argv[k].replace(/^--/, '');
  if (!(key in o) && key !== 'train' && key !== 'test') throw new Error(`unknown option ${process.argv[k]}`);
  o[key] = process.argv[k + 1];
}
const DELTA = 0.2;
const hypers = o.hypers
  ? JSON.parse(fs.readFileSync(o.hypers, 'utf8'))
  : {
      cutoff: { radius: 5, smoothing: { type: 'ShiftedCosine', width: 1 } },
      density: { type: 'Gaussian', width: 0.5 },
      basis: { type: 'TensorProduct', max_angular: 4, radial: { type: 'Gto', max_radial: 5 } },
    };
let sparse;
if (o.indices) {
  const indices = {};
  for (const item of o.indices.split(',')) {
    const [file, z] = item.split(':');
    // gap_fit writes 1-based indices
    indices[z] = fs.readFileSync(file, 'utf8').trim().split(/\s+/).map((v) => Number(v) - 1);
  }
  sparse = { method: 'indices', indices };
} else {
  const [method, count, seed = '0'] = o.sparse.split(':');
  sparse = { method, count: Number(count), seed: Number(seed) };
}
const train = await acdc.readXyz(o.train);
const test = await acdc.readXyz(o.test);
if (o.terms !== null && o.terms !== '2b') throw new Error(`--terms ${o.terms}: expected 2b`);
const soap = { hypers, sparse, kernel: { zeta: 4, delta: DELTA } };
// GAP's sparse_jitter (1e-8 eV², absolute, every descriptor) on the 2b term: 1e-8/δ_2b² with δ_2b = 1 eV
// (the fit's `jitter` below matches it on the SOAP term; docs/MODELS.md "2b + SOAP against GAP's")
const PAIR_JITTER = o.jitter !== null ? Number(o.jitter) : 1e-8;
const options = {
  ...(o.terms === '2b' ? { terms: [{ type: 'soap', ...soap }, { type: 'distance_2b', cutoff: 5, transition: 0.5, theta: 1, delta: 1, sparse: { count: 20 }, jitter: PAIR_JITTER }] } : soap),
  targets: { energy: 'energy', forces: 'forces', ...(o.virial ? { stress: 'stress' } : {}) },
  jitter: o.jitter !== null ? Number(o.jitter) : 1e-8 / (DELTA * DELTA),
  sigmas: { energy: 0.002, forces: 0.05, ...(o.virial ? { stress: 1 } : {}) },
  ...(o.virial ? { frameSigmas: train.map((s) => ({ virial: Number(o.virial) * Math.sqrt(s.size) })) } : {}),
  e0: o.e0,
};
const cpu0 = process.cpuUsage();
const model = o.model ? await acdc.loadModel(o.model) : await acdc.SparseGPR.fit(train, options);
const cpu = process.cpuUsage(cpu0);
if (o.save) await model.save(o.save);
const p = await model.predict(test, { forces: true });
const gap = o.gap ? JSON.parse(fs.readFileSync(o.gap, 'utf8')) : null;
const groups = {};
let maxDe = 0;
let maxDf = 0;
test.forEach((s, k) => {
  const n = s.size;
  const g = String(s.info.config_type ?? 'all');
  const keys = new Set(['all', g, ...(o['group-by'] ? [`${g}-${s.info[o['group-by']]}`] : [])]);
  for (const key of keys) groups[key] ??= { de: [], df: [] };
  const de = (p.energy[k] - Number(s.info.energy)) / n;
  const ref = Array.from(s.arrays.forces.flat ? s.arrays.forces.flat() : s.arrays.forces);
  const f = Array.from(p.forces[k].flat ? p.forces[k].flat() : p.forces[k]);
  for (const key of keys) {
    groups[key].de.push(de);
    f.forEach((v, i) => groups[key].df.push(v - ref[i]));
  }
  if (gap) {
    maxDe = Math.max(maxDe, Math.abs(p.energy[k] - gap.energy[k]) / n);
    f.forEach((v, i) => (maxDf = Math.max(maxDf, Math.abs(v - gap.forces[k][i]))));
  }
});
const rms = (x) => Math.sqrt(x.reduce((t, v) => t + v * v, 0) / x.length);
const mean = (x) => x.reduce((t, v) => t + v, 0) / x.length;
let loo = null;
if (o.loo) {
  const l = await model.leaveOneOut(train, { energy: 'energy' });
  const byGroup = {};
  train.forEach((s, k) => {
    const g = String(s.info.config_type ?? 'all');
    for (const key of new Set(['all', g])) (byGroup[key] ??= []).push(l.errors[k] / s.size);
  });
  loo = Object.fromEntries(Object.entries(byGroup).map(([g, v]) => [g, { energyRmseMeV: 1e3 * rms(v), energyMeanMeV: 1e3 * mean(v), frames: v.length }]));
}
const out = {
  ...(o.model ? { model: o.model } : { sparse: o.indices ? 'gap indices' : o.sparse, hypers: o.hypers ?? 'gto', virial: o.virial, e0: o.e0 }),
  ...(o.model ? {} : { fitCpuSeconds: (cpu.user + cpu.system) / 1e6 }),
  test: Object.fromEntries(
    Object.entries(groups).map(([g, v]) => [g, { energyRmseMeV: 1e3 * rms(v.de), energyMeanMeV: 1e3 * mean(v.de), forcesRmse: rms(v.df), frames: v.de.length }]),
  ),
  ...(loo ? { loo } : {}),
  ...(gap ? { vsGap: { maxEnergyPerAtom: maxDe, maxForce: maxDf } } : {}),
};
if (o.json) fs.writeFileSync(o.json, JSON.stringify(out, null, 1));
console.log(JSON.stringify(out));
