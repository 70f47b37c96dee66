#!/usr/bin/env node
// Sparse selection methods against GAP's cur_points draws, several draws each,
// with the mean and spread: docs/MODELS.md "Sparse selection against GAP's
// draws". acdc's fits are bench/gap_same_sparse.mjs runs (SOAP 5 Å, cosine
// 1 Å, ζ 4, δ 0.2 eV, 300 points per centre species, σ 0.002 eV/atom,
// 0.05 eV/Å, virials σ_V 0.05 eV/atom·√N, e0 average, one thread); GAP's are
// the per-frame predictions bench/gap_draws.sh wrote, scored here the same way.
//
//   node bench/sparse_draws.mjs --train T.xyz --test X.xyz --hypers H.json
//        --runs leverage:0,1,2,3,4/pivoted-cholesky:0      (method:seeds, '/'-separated)
//        [--gap DIR]            (bench/gap_draws.sh's output folder: every pred-seed*.json in it)
//        [--out results.jsonl]  (one JSON line per run appended; runs already there are not redone)
//        [--python P]           (for candidate selections made outside acdc: a method written
//                                `py:NAME` is scripts/reference/sparse_candidates.py's NAME, drawn
//                                with P (numpy, ase) on the training set's features, which
//                                `acdc featurize` writes once into --work, and fitted by acdc as
//                                given indices; e.g. --runs py:levstrat:0,1,2/py:kmkr:0,1,2)
//        [--work DIR]           (where those features and index files go; default bench/.data/sparse-candidates)
//        [--terms 2b]           (distance_2b + SOAP, bench/gap_same_sparse.mjs --terms 2b)
//
// Prints a table: per method, each draw's test energy RMSE (meV/atom) and
// force RMSE (eV/Å), mean ± standard deviation and min–max, and the same per
// config_type.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const o = { train: null, test: null, hypers: null, runs: 'leverage:0', gap: null, out: null, virial: '0.05', python: null, work: path.join(ROOT, 'bench', '.data', 'sparse-candidates'), terms: null };
for (let k = 2; k < process.argv.length; k += 2) {
  const key = process.argv[k].replace(/^--/, '');
  if (!(key in o)) throw new Error(`unknown option ${process.argv[k]}`);
  o[key] = process.argv[k + 1];
}
if (!o.train || !o.test) throw new Error('--train and --test are required');

const done = new Map();
if (o.out && fs.existsSync(o.out)) {
  for (const line of fs.readFileSync(o.out, 'utf8').split('\n').filter(Boolean)) {
    const r = JSON.parse(line);
    done.set(r.key, r);
  }
}
const results = [];
for (const spec of o.runs.split('/').filter(Boolean)) {
  // the seeds follow the last ':' (a candidate method is written py:NAME)
  const cut = spec.lastIndexOf(':');
  const [method, seeds] = cut > 0 && /^[0-9,]+$/.test(spec.slice(cut + 1)) ? [spec.slice(0, cut), spec.slice(cut + 1)] : [spec, '0'];
  for (const seed of seeds.split(',')) {
    const key = [o.train, o.test, o.hypers, method, seed, o.virial, ...(o.terms ? [o.terms] : [])].join('|');
    if (done.has(key)) {
      results.push(done.get(key));
      continue;
    }
    const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const sparse = method.startsWith('py:') ? ['--indices', candidateIndices(method.slice(3), seed)] : ['--sparse', `${method}:300:${seed}`];
    const args = [path.join(ROOT, 'bench', 'gap_same_sparse.mjs'), '--train', o.train, '--test', o.test, ...sparse, '--virial', o.virial];
    if (o.hypers) args.push('--hypers', o.hypers);
    if (o.terms) args.push('--terms', o.terms);
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, ACDC_NUM_THREADS: '1', RAYON_NUM_THREADS: '1' } });
    if (r.status !== 0) throw new Error(`gap_same_sparse ${method}:${seed} failed:\n${r.stderr}`);
    const line = JSON.parse(r.stdout.trim().split('\n').pop());
    const row = { key, label: method, seed: Number(seed), load, fitCpuSeconds: line.fitCpuSeconds, test: line.test };
    if (o.out) fs.appendFileSync(o.out, JSON.stringify(row) + '\n');
    console.error(`${method} seed ${seed}: E ${line.test.all.energyRmseMeV.toFixed(3)} meV/atom, F ${line.test.all.forcesRmse.toFixed(4)} eV/Å (load ${load})`);
    results.push(row);
  }
}

/** Index files of one candidate selection (sparse_candidates.py), as `file:Z,file:Z`. */
function candidateIndices(name, seed) {
  if (!o.python) throw new Error(`--python is required for the candidate method py:${name}`);
  fs.mkdirSync(o.work, { recursive: true });
  const tag = `${path.basename(o.train, '.xyz')}-${o.hypers ? path.basename(o.hypers, '.json') : 'gto'}`;
  const features = path.join(o.work, `${tag}.npy`);
  const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' };
  if (!fs.existsSync(features)) {
    const cli = [path.join(ROOT, 'dist', 'cli', 'main.js'), 'featurize', o.train, '-o', features, '--threads', '1', '--no-progress', ...(o.hypers ? ['--hypers', o.hypers] : [])];
    const r = spawnSync(process.execPath, cli, { encoding: 'utf8', env });
    if (r.status !== 0) throw new Error(`acdc featurize failed:\n${r.stderr}`);
  }
  const script = path.join(ROOT, 'scripts', 'reference', 'sparse_candidates.py');
  const r = spawnSync(o.python, [script, '--train', o.train, '--features', features, name, String(seed), path.join(o.work, tag)], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`sparse_candidates.py ${name} ${seed} failed:\n${r.stderr}`);
  return r.stdout.trim().split('\n').pop();
}

if (o.gap) {
  const acdc = createRequire(path.join(ROOT, 'package.json'))('acdc-ml');
  const test = await acdc.readXyz(o.test);
  const files = fs.readdirSync(o.gap).filter((f) => /^pred-seed\d+\.json$/.test(f)).sort((a, b) => Number(a.match(/\d+/)[0]) - Number(b.match(/\d+/)[0]));
  for (const f of files) {
    const pred = JSON.parse(fs.readFileSync(path.join(o.gap, f), 'utf8'));
    if (pred.energy.length !== test.length) throw new Error(`${f}: ${pred.energy.length} frames, the test file has ${test.length}`);
    results.push({ label: 'GAP cur_points', seed: Number(f.match(/\d+/)[0]), test: score(test, pred.energy, pred.forces) });
  }
}

function score(test, energy, forces) {
  const groups = {};
  test.forEach((s, k) => {
    const n = s.size;
    const g = String(s.info.config_type ?? 'all');
    for (const key of new Set(['all', g])) groups[key] ??= { de: [], df: [] };
    const de = (energy[k] - Number(s.info.energy)) / n;
    const ref = Array.from(s.arrays.forces.flat ? s.arrays.forces.flat() : s.arrays.forces);
    for (const key of new Set(['all', g])) {
      groups[key].de.push(de);
      ref.forEach((v, i) => groups[key].df.push(forces[k][i] - v));
    }
  });
  const rms = (x) => Math.sqrt(x.reduce((t, v) => t + v * v, 0) / x.length);
  const mean = (x) => x.reduce((t, v) => t + v, 0) / x.length;
  return Object.fromEntries(Object.entries(groups).map(([g, v]) => [g, { energyRmseMeV: 1e3 * rms(v.de), energyMeanMeV: 1e3 * mean(v.de), forcesRmse: rms(v.df), frames: v.de.length }]));
}

// the table: per label, per group
const labels = [...new Set(results.map((r) => r.label))];
const groups = [...new Set(results.flatMap((r) => Object.keys(r.test)))];
const stats = (x) => {
  const m = x.reduce((t, v) => t + v, 0) / x.length;
  const sd = x.length > 1 ? Math.sqrt(x.reduce((t, v) => t + (v - m) ** 2, 0) / (x.length - 1)) : NaN;
  return { m, sd, lo: Math.min(...x), hi: Math.max(...x) };
};
for (const g of groups) {
  console.log(`\n${g} (${results.find((r) => r.test[g]).test[g].frames} test frames)`);
  console.log('| method | draws | E RMSE (meV/atom) | mean ± sd [min–max] | F RMSE (eV/Å) | mean ± sd [min–max] |');
  console.log('|---|---|---|---|---|---|');
  for (const label of labels) {
    const rs = results.filter((r) => r.label === label && r.test[g]);
    if (!rs.length) continue;
    const e = rs.map((r) => r.test[g].energyRmseMeV);
    const f = rs.map((r) => r.test[g].forcesRmse);
    const se = stats(e);
    const sf = stats(f);
    const fmt = (s, d) => `${s.m.toFixed(d)} ± ${Number.isNaN(s.sd) ? '–' : s.sd.toFixed(d)} [${s.lo.toFixed(d)}–${s.hi.toFixed(d)}]`;
    console.log(`| ${label} | ${rs.map((r) => r.seed).join(',')} | ${e.map((v) => v.toFixed(2)).join(' / ')} | ${fmt(se, 2)} | ${f.map((v) => v.toFixed(4)).join(' / ')} | ${fmt(sf, 4)} |`);
  }
}
