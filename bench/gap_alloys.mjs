#!/usr/bin/env node
// acdc's SparseGPR against GAP (gap_fit + quippy, quippy-ase 0.10.3) on two
// held-out multi-species EMT data sets, at matched settings and the same
// number of sparse points per centre species (one SOAP descriptor per centre
// species on GAP's side, the form of acdc's per-species SparseGPR):
//
//   cuau: Cu and Cu–Au (25 % Au) MD frames, 32-atom strained cells
//         (scripts/reference/emt_data.py --repeat 2 --train-frames 40
//          --alloy-frames 40 --test-frames 100 --seed 2026: 80 train, 110 test)
//   ptni: Pt–Ni, 32-atom triclinic cells, trained at Pt 8/16/24,
//         tested at Pt 12/16/20 (scripts/reference/emt_ptni_alloy_data.py)
//
//   node bench/gap_alloys.mjs [--sets cuau,ptni] [--python PATH] [--only gap|acdc]
//                             [--methods cur,leverage] [--sparse 300] [--virials on|off]
//                             [--candidates lev,levmix,random --seeds 0,1,2]
//
// SOAP r_c 5 Å (cosine 1 Å), GAP n_max 6 = acdc max_radial 5, l_max 4,
// atom_sigma 0.5 Å, ζ 4, δ 0.2 eV, σ_E 0.002 eV/atom, σ_F 0.05 eV/Å, e0
// average, GAP sparse_jitter 1e-8 (acdc jitter 1e-8/δ², the same absolute
// jitter). Virials: gap_fit reads the frames' `stress` as virials whenever
// they have no `virial` (its stress_parameter_name defaults to `stress`, and
// virial_parameter_name=NONE does not stop it), with σ_V = 0.05 eV/atom·√N;
// `--virials on` (the default) fits acdc to the same stresses with the same
// noise (frameSigmas virial σ_V·√N), `--virials off` fits neither side to them
// (stress_parameter_name=NONE for gap_fit). gap_fit runs under `flock /tmp/gap.lock` (it takes ~6 GB)
// with OMP_NUM_THREADS=1; acdc with 1 thread. Wall time, CPU time and peak
// RSS from /usr/bin/time -v. Results: bench/.data/gap-alloys-*.json (one per
// side, reused by --only) and a table on stdout.
//
// --candidates: sparse sets drawn outside acdc on acdc's own features
// (scripts/reference/sparse_candidates.py: GAP's leverage rule, mixtures with
// uniform sampling, kernel and ridge leverage, k-means++, random; `levG`
// draws GAP's rule on GAP's radial basis, scripts/reference/gap_radial_table.py)
// and fitted by acdc through sparse: {method: 'indices'}
// (bench/gap_same_sparse.mjs, virials as --virials), one row per method and
// seed next to GAP's: docs/MODELS.md "Which sparse environments".
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH, '..');
const DATA = path.join(BENCH, '.data');
const REF = path.join(ROOT, 'scripts', 'reference');

const o = { sets: ['cuau', 'ptni'], python: path.join(BENCH, '.venv', 'bin', 'python'), only: null, methods: ['cur', 'leverage'], sparse: 300, virials: 'on', candidates: [], seeds: [0, 1, 2] };
for (let k = 2; k < process.argv.length; k++) {
  const a = process.argv[k];
  const v = () => {
    if (k + 1 >= process.argv.length) throw new Error(`${a} needs a value`);
    return process.argv[++k];
  };
  if (a === '--sets') o.sets = v().split(',');
  else if (a === '--python') o.python = path.resolve(v());
  else if (a === '--only') o.only = v();
  else if (a === '--methods') o.methods = v().split(',').filter(Boolean);
  else if (a === '--sparse') o.sparse = Number(v());
  else if (a === '--candidates') o.candidates = v().split(',');
  else if (a === '--seeds') o.seeds = v().split(',').map(Number);
  else if (a === '--virials') {
    o.virials = v();
    if (o.virials !== 'on' && o.virials !== 'off') throw new Error(`--virials ${o.virials} (expected on or off)`);
  }
  else if (a === '--help' || a === '-h') {
    console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 34).join('\n'));
    process.exit(0);
  } else throw new Error(`unknown option ${a} (try --help)`);
}

const SETS = {
  cuau: {
    species: [29, 79],
    make: (train, test) => [path.join(REF, 'emt_data.py'), '--train', train, '--test', test, '--repeat', '2', '--train-frames', '40', '--alloy-frames', '40', '--test-frames', '100', '--seed', '2026'],
  },
  ptni: {
    species: [28, 78],
    make: (train, test) => [path.join(REF, 'emt_ptni_alloy_data.py'), '--train', train, '--test', test],
  },
};
const SIGMA_E = 0.002;
const SIGMA_F = 0.05;
const DELTA = 0.2;
const ZETA = 4;
const SIGMA_V = 0.05;
const GTO_HYPERS = {
  cutoff: { radius: 5, smoothing: { type: 'ShiftedCosine', width: 1 } },
  density: { type: 'Gaussian', width: 0.5 },
  basis: { type: 'TensorProduct', max_angular: 4, radial: { type: 'Gto', max_radial: 5 } },
}; // eV/atom, gap_fit's default_sigma[3] (×√N: sigma_per_atom)

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 256 << 20, env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ').slice(0, 300)} exited with ${r.status}:\n${(r.stderr || '').slice(-3000)}`);
  return r;
}

/** cmd under /usr/bin/time -v (inside flock when `lock`): stdout, wall s, CPU s, peak RSS bytes. */
function timed(cmd, args, env, lock = false) {
  const argv = lock ? ['/tmp/gap.lock', '/usr/bin/time', '-v', cmd, ...args] : ['-v', cmd, ...args];
  const r = run(lock ? 'flock' : '/usr/bin/time', argv, env);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr);
  const cpu = ['User', 'System'].reduce((t, k) => t + Number(new RegExp(`${k} time \\(seconds\\): ([\\d.]+)`).exec(r.stderr)?.[1] ?? NaN), 0);
  return { stdout: r.stdout, seconds: Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]), cpuSeconds: cpu, peakBytes: Number(rss[1]) * 1024 };
}

function data(name) {
  fs.mkdirSync(DATA, { recursive: true });
  const train = path.join(DATA, `gap-alloys-${name}-train.xyz`);
  const test = path.join(DATA, `gap-alloys-${name}-test.xyz`);
  if (!fs.existsSync(train) || !fs.existsSync(test)) {
    console.log(`writing ${path.relative(ROOT, train)}, ${path.relative(ROOT, test)}`);
    run(o.python, SETS[name].make(train, test));
  }
  return { train, test };
}

function gap(name, files) {
  const work = path.join(DATA, `gap-alloys-${name}`);
  fs.mkdirSync(work, { recursive: true });
  const xml = path.join(work, 'gap.xml');
  // one template: gap_fit's add_species (default T) makes one descriptor per
  // centre species from it, each with n_sparse points. Writing `Z=29 : Z=79`
  // descriptors by hand instead makes add_species copy each of them again
  // (four descriptors, twice the sparse points per species).
  const soap =
    `soap cutoff=5.0 cutoff_transition_width=1.0 n_max=6 l_max=4 atom_sigma=0.5 zeta=${ZETA} delta=${DELTA} n_sparse=${o.sparse} ` +
    'sparse_method=cur_points covariance_type=dot_product';
  const args = [
    `at_file=${files.train}`, `gap={${soap}}`, `default_sigma={${SIGMA_E} ${SIGMA_F} ${SIGMA_V} 0.0}` /* the virial sigma must be > 0 even with virial_parameter_name=NONE */, 'e0_method=average',
    'energy_parameter_name=energy', 'force_parameter_name=forces', 'virial_parameter_name=NONE', ...(o.virials === 'off' ? ['stress_parameter_name=NONE'] : []), 'sparse_jitter=1e-8', `gp_file=${xml}`,
  ];
  console.log(`[${name}] flock /tmp/gap.lock gap_fit ${args.join(' ')}`);
  const fit = timed(path.join(path.dirname(o.python), 'gap_fit'), args, { OMP_NUM_THREADS: '1' }, true);
  const pred = run('flock', ['/tmp/gap.lock', o.python, path.join(BENCH, 'gap_tools.py'), 'predict', xml, files.test, '--reps', '1'], { OMP_NUM_THREADS: '1' });
  return { fitSeconds: fit.seconds, fitCpuSeconds: fit.cpuSeconds, peakBytes: fit.peakBytes, errors: JSON.parse(pred.stdout.trim().split('\n').pop()).errors, command: `gap_fit ${args.join(' ')}` };
}

function acdc(name, files, method) {
  // atoms per training frame (extxyz: a count line, a comment line, the atoms)
  const sizes = [];
  const lines = fs.readFileSync(files.train, 'utf8').split('\n');
  for (let k = 0; k < lines.length && lines[k].trim() !== ''; k += Number(lines[k]) + 2) sizes.push(Number(lines[k]));
  const options = {
    hypers: GTO_HYPERS,
    targets: { energy: 'energy', forces: 'forces', ...(o.virials === 'on' ? { stress: 'stress' } : {}) },
    sparse: { count: o.sparse, method, seed: 0 },
    kernel: { zeta: ZETA, delta: DELTA },
    jitter: 1e-8 / (DELTA * DELTA),
    sigmas: { energy: SIGMA_E, forces: SIGMA_F, ...(o.virials === 'on' ? { stress: 1 } : {}) },
    ...(o.virials === 'on' ? { frameSigmas: sizes.map((n) => ({ virial: SIGMA_V * Math.sqrt(n) })) } : {}),
    e0: 'average',
  };
  const model = path.join(DATA, `gap-alloys-${name}-${method}.acdc`);
  const opts = path.join(DATA, `gap-alloys-${name}-${method}.json`);
  fs.writeFileSync(opts, JSON.stringify(options));
  const env = { ACDC_NUM_THREADS: '1', RAYON_NUM_THREADS: '1', OMP_NUM_THREADS: '1' };
  const worker = path.join(BENCH, 'gap_acdc.mjs');
  const fit = timed(process.execPath, [worker, 'fit', files.train, model, `@${opts}`], env);
  const pred = run(process.execPath, [worker, 'predict', model, files.test, '1'], env);
  return { method, fitSeconds: fit.seconds, fitCpuSeconds: fit.cpuSeconds, peakBytes: fit.peakBytes, errors: JSON.parse(pred.stdout.trim().split('\n').pop()).errors, options };
}

/** Candidate sparse sets (sparse_candidates.py) fitted by acdc as given indices; one result per method and seed. */
function candidates(name, files) {
  const dir = path.join(DATA, `gap-alloys-${name}-candidates`);
  fs.mkdirSync(dir, { recursive: true });
  const features = path.join(dir, 'gto.npy');
  const gapFeatures = path.join(dir, 'gap-basis.npy');
  const gapHypers = path.join(dir, 'gap-basis-hypers.json');
  const cli = path.join(ROOT, 'dist', 'cli', 'main.js');
  const gto = path.join(dir, 'gto-hypers.json');
  fs.writeFileSync(gto, JSON.stringify(GTO_HYPERS));
  if (!fs.existsSync(features)) run(process.execPath, [cli, 'featurize', files.train, '-o', features, '--hypers', gto, '--threads', '1', '--no-progress']);
  if (o.candidates.includes('levG') && !fs.existsSync(gapFeatures)) {
    const table = run(o.python, [path.join(REF, 'gap_radial_table.py'), '--cutoff', '5', '--width', '1', '--n-max', '6', '--l-max', '4', '--atom-sigma', '0.5']);
    fs.writeFileSync(gapHypers, table.stdout);
    run(process.execPath, [cli, 'featurize', files.train, '-o', gapFeatures, '--hypers', gapHypers, '--threads', '1', '--no-progress']);
  }
  const env = { ACDC_NUM_THREADS: '1', RAYON_NUM_THREADS: '1', OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' };
  const out = [];
  for (const method of o.candidates) {
    const picks = run(o.python, [path.join(REF, 'sparse_candidates.py'), '--train', files.train, '--features', features, '--alt-features', gapFeatures, method, o.seeds.join(','), path.join(dir, name), '--count', String(o.sparse)], env);
    picks.stdout.trim().split('\n').forEach((indices, k) => {
      const args = [path.join(BENCH, 'gap_same_sparse.mjs'), '--train', files.train, '--test', files.test, '--indices', indices, ...(o.virials === 'on' ? ['--virial', String(SIGMA_V)] : [])];
      const r = JSON.parse(run(process.execPath, args, env).stdout.trim().split('\n').pop());
      out.push({ method, seed: o.seeds[k], energyRmse: r.test.all.energyRmseMeV / 1e3, forcesRmse: r.test.all.forcesRmse, groups: r.test });
      console.log(`[${name}] ${method} seed ${o.seeds[k]}: ${(r.test.all.energyRmseMeV).toFixed(2)} meV/atom, ${r.test.all.forcesRmse.toFixed(4)} eV/Å`);
    });
  }
  return out;
}

const f3 = (x) => (x === undefined || x === null || Number.isNaN(x) ? '—' : x.toPrecision(3));
const lines = [];
for (const name of o.sets) {
  const files = data(name);
  const cache = (side) => path.join(DATA, `gap-alloys-${name}-${side}-s${o.sparse}-v${o.virials}.json`);
  const side = (s, compute) => {
    if (o.only !== null && o.only !== s) return fs.existsSync(cache(s)) ? JSON.parse(fs.readFileSync(cache(s), 'utf8')) : null;
    const r = compute();
    fs.writeFileSync(cache(s), JSON.stringify(r, null, 1));
    return r;
  };
  const g = side('gap', () => gap(name, files));
  const runs = o.methods.length > 0 ? (side('acdc', () => o.methods.map((m) => acdc(name, files, m))) ?? []) : [];
  const picked = o.candidates.length > 0 && o.only !== 'gap' ? candidates(name, files) : [];
  lines.push(`\n${name}: ${o.sparse} sparse points per centre species, virials ${o.virials}; machine shared and loaded (ratios from the same run)`);
  lines.push('| | energy RMSE (meV/atom) | force RMSE (eV/Å) | fit wall (s) | fit CPU (s) | fit peak RSS (MiB) |');
  lines.push('|---|---|---|---|---|---|');
  const row = (label, r) => lines.push(`| ${label} | ${f3(r.errors.energy.rmse * 1e3)} | ${f3(r.errors.forces.rmse)} | ${f3(r.fitSeconds)} | ${f3(r.fitCpuSeconds)} | ${(r.peakBytes / 2 ** 20).toFixed(0)} |`);
  if (g) row('GAP (gap_fit cur_points, quippy)', g);
  for (const r of runs) row(`acdc SparseGPR, sparse.method ${r.method}`, r);
  if (g) {
    for (const r of runs) {
      lines.push(
        `| ratio acdc (${r.method}) / GAP | ${f3(r.errors.energy.rmse / g.errors.energy.rmse)} | ${f3(r.errors.forces.rmse / g.errors.forces.rmse)} | ` +
          `${f3(r.fitSeconds / g.fitSeconds)} | ${f3(r.fitCpuSeconds / g.fitCpuSeconds)} | ${f3(r.peakBytes / g.peakBytes)} |`,
      );
    }
  }
  if (picked.length > 0) {
    fs.writeFileSync(path.join(DATA, `gap-alloys-${name}-candidates-s${o.sparse}-v${o.virials}.json`), JSON.stringify(picked, null, 1));
    lines.push('\n| acdc, candidate sparse set (indices) | seed | E RMSE (meV/atom) | F RMSE (eV/Å) | E / GAP | F / GAP |');
    lines.push('|---|---|---|---|---|---|');
    for (const r of picked) {
      const ratio = (a, b) => (g ? f3(a / b) : '—');
      lines.push(`| ${r.method} | ${r.seed} | ${f3(r.energyRmse * 1e3)} | ${f3(r.forcesRmse)} | ${ratio(r.energyRmse, g?.errors.energy.rmse)} | ${ratio(r.forcesRmse, g?.errors.forces.rmse)} |`);
    }
  }
}
console.log(lines.join('\n'));
