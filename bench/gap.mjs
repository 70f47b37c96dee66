#!/usr/bin/env node
// acdc's sparse GPR side by side with GAP (gap_fit and quippy, from the
// quippy-ase wheel) on the same EMT copper train/test split, matched hypers:
//
//   node bench/gap.mjs [--repeat 3 --train-frames 18 --test-frames 8]
//                      [--sparse 300 --delta 0.2 --reps 3 --python PATH --only gap|acdc]
//                      [--acdc-sparse-method cur|fps|random]
//
// --only runs one side and keeps its results in bench/.data/gap-bench-*.json;
// the table shows every side whose results exist for the same options.
//
// 1. bench/.venv (or --python's venv) gets quippy-ase if it lacks gap_fit.
// 2. bench/.data/emt-gap-{train,test}.xyz from scripts/reference/emt_data.py.
// 3. GAP: gap_fit (1 thread: OMP_NUM_THREADS=1) under /usr/bin/time -v
//    (wall time, peak RSS); quippy's Potential predicts energy, forces and
//    stress of the test frames (1 thread), median of --reps passes.
// 4. acdc: SparseGPR.fit in a fresh process per thread count (1 and 2),
//    under /usr/bin/time -v; loadModel + predict, median of --reps calls.
// 5. A table on stdout (ratios acdc/GAP) and bench/gap-results.json.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH, '..');
const DATA = path.join(BENCH, '.data');
const QUIPPY = 'quippy-ase==0.10.3';

function parseArgs(argv) {
  const o = { repeat: 3, trainFrames: 18, testFrames: 8, sparse: 300, delta: 0.2, zeta: 4, reps: 3, python: null, only: null, acdcSparseMethod: 'cur' };
  const o2 = { sigmaEnergy: 0.002, sigmaForces: 0.05, sigmaStress: 0.001 };
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    const value = () => {
      if (k + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++k];
    };
    if (a === '--repeat') o.repeat = Number(value());
    else if (a === '--train-frames') o.trainFrames = Number(value());
    else if (a === '--test-frames') o.testFrames = Number(value());
    else if (a === '--sparse') o.sparse = Number(value());
    else if (a === '--delta') o.delta = Number(value());
    else if (a === '--reps') o.reps = Number(value());
    else if (a === '--python') o.python = path.resolve(value());
    else if (a === '--only') o.only = value();
    else if (a === '--acdc-sparse-method') o.acdcSparseMethod = value();
    else if (a === '--help' || a === '-h') {
      console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 16).join('\n'));
      process.exit(0);
    } else throw new Error(`unknown option ${a} (try --help)`);
  }
  return { ...o, ...o2 };
}

function capture(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 256 << 20, ...opts });
  if (r.error) throw r.error;
  return r;
}

function must(r, what) {
  if (r.status !== 0) throw new Error(`${what} exited with ${r.status}:\n${(r.stderr || '').slice(-4000)}\n${(r.stdout || '').slice(-2000)}`);
  return r;
}

/** The python of the venv, with quippy-ase (gap_fit, quip) installed if missing. */
function setupPython(o) {
  const py = o.python ?? path.join(BENCH, '.venv', 'bin', 'python');
  if (!fs.existsSync(py)) {
    must(capture(process.env.PYTHON ?? 'python3', ['-m', 'venv', path.dirname(path.dirname(py))], { stdio: 'inherit' }), 'python3 -m venv');
  }
  const bin = path.dirname(py);
  if (!fs.existsSync(path.join(bin, 'gap_fit')) || capture(py, ['-c', 'import quippy, ase']).status !== 0) {
    console.log(`installing ${QUIPPY} into ${path.relative(ROOT, path.dirname(bin))}`);
    must(capture(py, ['-m', 'pip', 'install', '--quiet', QUIPPY, 'ase==3.29.0'], { stdio: 'inherit' }), `pip install ${QUIPPY}`);
  }
  return { py, gapFit: path.join(bin, 'gap_fit') };
}

/** Runs a command under /usr/bin/time -v: its output, wall seconds and peak RSS (bytes). */
function timed(cmd, args, env) {
  const r = capture('/usr/bin/time', ['-v', cmd, ...args], { env: { ...process.env, ...env } });
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr);
  if (r.status !== 0 || !rss || !wall) throw new Error(`${path.basename(cmd)} ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-4000)}\n${r.stdout.slice(-2000)}`);
  const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
  const cpu = ['User', 'System'].reduce((t, k) => t + Number(new RegExp(`${k} time \\(seconds\\): ([\\d.]+)`).exec(r.stderr)?.[1] ?? NaN), 0);
  return { stdout: r.stdout, seconds, cpuSeconds: cpu, peakBytes: Number(rss[1]) * 1024 };
}

function data(o, py) {
  fs.mkdirSync(DATA, { recursive: true });
  const tag = `r${o.repeat}-n${o.trainFrames}-t${o.testFrames}`;
  const train = path.join(DATA, `emt-gap-${tag}-train.xyz`);
  const test = path.join(DATA, `emt-gap-${tag}-test.xyz`);
  if (!fs.existsSync(train) || !fs.existsSync(test)) {
    console.log(`writing ${path.relative(ROOT, train)} and ${path.relative(ROOT, test)} (ASE EMT molecular dynamics)`);
    must(
      capture(py, [
        path.join(ROOT, 'scripts', 'reference', 'emt_data.py'),
        '--train', train, '--test', test,
        '--repeat', String(o.repeat), '--train-frames', String(o.trainFrames), '--test-frames', String(o.testFrames), '--seed', '7',
      ]),
      'emt_data.py',
    );
  }
  return { train, test };
}

function gap(o, py, gapFit, files) {
  const work = path.join(DATA, 'gap');
  fs.mkdirSync(work, { recursive: true });
  const train = path.join(work, 'train_gap.xyz');
  must(
    capture(py, [path.join(BENCH, 'gap_tools.py'), 'prepare', files.train, train,
      '--sigma-energy', String(o.sigmaEnergy), '--sigma-forces', String(o.sigmaForces), '--sigma-stress', String(o.sigmaStress)]),
    'gap_tools.py prepare',
  );
  const xml = path.join(work, 'gap.xml');
  const args = [
    `at_file=${train}`,
    `gap={soap cutoff=5.0 cutoff_transition_width=1.0 n_max=8 l_max=6 atom_sigma=0.5 zeta=${o.zeta} delta=${o.delta} ` +
      `n_sparse=${o.sparse} sparse_method=cur_points covariance_type=dot_product add_species=T}`,
    // per-frame energy_sigma and virial_sigma (written by prepare) replace the first and third
    `default_sigma={${o.sigmaEnergy} ${o.sigmaForces} ${o.sigmaStress} 0.0}`,
    'e0_method=average', 'energy_parameter_name=energy', 'force_parameter_name=forces', 'virial_parameter_name=virial',
    'sparse_jitter=1e-8', `gp_file=${xml}`,
  ];
  console.log(`gap_fit ${args.join(' ')}`);
  const fit = timed(gapFit, args, { OMP_NUM_THREADS: '1' });
  const pred = must(capture(py, [path.join(BENCH, 'gap_tools.py'), 'predict', xml, files.test, '--reps', String(o.reps)], { env: { ...process.env, OMP_NUM_THREADS: '1' } }), 'quippy predict');
  return { fitSeconds: fit.seconds, fitCpuSeconds: fit.cpuSeconds, peakBytes: fit.peakBytes, predict: JSON.parse(pred.stdout.trim().split('\n').pop()), command: `gap_fit ${args.join(' ')}` };
}

function acdcRun(o, files, threads) {
  const require = createRequire(path.join(ROOT, 'package.json'));
  const { DEFAULT_FIT_HYPERS } = require(path.join(ROOT, 'dist', 'cli', 'fit.js'));
  const options = {
    hypers: DEFAULT_FIT_HYPERS,
    targets: { energy: 'energy', forces: 'forces', stress: 'stress' },
    sparse: { count: o.sparse, method: o.acdcSparseMethod },
    kernel: { zeta: o.zeta, delta: o.delta },
    sigmas: { energy: o.sigmaEnergy, forces: o.sigmaForces, stress: o.sigmaStress },
    e0: 'average',
  };
  const model = path.join(DATA, `acdc-gap-${threads}.acdc`);
  const env = { ACDC_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads), RAYON_NUM_THREADS: String(threads) };
  const worker = path.join(BENCH, 'gap_acdc.mjs');
  const fit = timed(process.execPath, [worker, 'fit', files.train, model, JSON.stringify(options)], env);
  const inner = JSON.parse(fit.stdout.trim().split('\n').pop());
  const pred = must(capture(process.execPath, [worker, 'predict', model, files.test, String(o.reps)], { env: { ...process.env, ...env } }), 'acdc predict');
  return { threads, fitSeconds: fit.seconds, fitCpuSeconds: fit.cpuSeconds, fitCallSeconds: inner.fitSeconds, peakBytes: fit.peakBytes, predict: JSON.parse(pred.stdout.trim().split('\n').pop()) };
}

function table(o, g, runs, files) {
  const lines = [];
  const f3 = (x) => (x === undefined || x === null ? '—' : x.toPrecision(3));
  const mb = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  const perAtom = (p) => (p.seconds / p.atoms) * 1e6;
  const cpuPerAtom = (p) => (p.cpuSeconds / p.atoms) * 1e6;
  lines.push(`EMT Cu, ${o.repeat ** 3 * 4}-atom cells: train ${o.trainFrames} frames, test ${o.testFrames} frames; n_max 8 (max_radial 7), l_max 6, r_c 5 Å, σ 0.5 Å, ζ ${o.zeta}, δ ${o.delta} eV, ${o.sparse} sparse (GAP: cur_points; acdc: ${o.acdcSparseMethod})`);
  lines.push('| | energy RMSE (meV/atom) | force RMSE (eV/Å) | stress RMSE (meV/Å³) | fit wall (s) | fit CPU (s) | fit peak RSS | predict wall (µs/atom, E+F+σ) | predict CPU (µs/atom) |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  const row = (name, r) =>
    lines.push(
      `| ${name} | ${f3(r.predict.errors.energy.rmse * 1e3)} | ${f3(r.predict.errors.forces.rmse)} | ${f3(r.predict.errors.stress.rmse * 1e3)} | ${f3(r.fitSeconds)} | ${f3(r.fitCpuSeconds)} | ${mb(r.peakBytes)} | ${f3(perAtom(r.predict))} | ${f3(cpuPerAtom(r.predict))} |`,
    );
  if (g) row('GAP (gap_fit, quippy), 1 thread', g);
  for (const r of runs) row(`acdc, ${r.threads} thread${r.threads > 1 ? 's' : ''}`, r);
  if (g) {
    for (const r of runs) {
      lines.push(
        `| ratio acdc/GAP (${r.threads} thr.) | ${f3(r.predict.errors.energy.rmse / g.predict.errors.energy.rmse)} | ${f3(r.predict.errors.forces.rmse / g.predict.errors.forces.rmse)} | ` +
          `${f3(r.predict.errors.stress.rmse / g.predict.errors.stress.rmse)} | ${f3(r.fitSeconds / g.fitSeconds)} | ${f3(r.fitCpuSeconds / g.fitCpuSeconds)} | ${f3(r.peakBytes / g.peakBytes)} | ${f3(perAtom(r.predict) / perAtom(g.predict))} | ${f3(cpuPerAtom(r.predict) / cpuPerAtom(g.predict))} |`,
      );
    }
  }
  return lines.join('\n');
}

const o = parseArgs(process.argv.slice(2));
const { py, gapFit } = setupPython(o);
const files = data(o, py);
const { only, python, acdcSparseMethod, ...same } = o;
const cache = (side) => path.join(DATA, `gap-bench-${side}-${Buffer.from(JSON.stringify(same)).toString('base64url').slice(0, 120)}.json`);
const side = (name, compute) => {
  if (only !== null && only !== name) return fs.existsSync(cache(name)) ? JSON.parse(fs.readFileSync(cache(name), 'utf8')) : null;
  const r = compute();
  fs.writeFileSync(cache(name), JSON.stringify(r));
  return r;
};
const g = side('gap', () => gap(o, py, gapFit, files));
const runs = side('acdc', () => [1, 2].map((t) => acdcRun(o, files, t))) ?? [];
const text = table(o, g, runs, files);
console.log(text);
fs.writeFileSync(path.join(BENCH, 'gap-results.json'), JSON.stringify({ options: o, gap: g, acdc: runs, table: text }, null, 2) + '\n');
