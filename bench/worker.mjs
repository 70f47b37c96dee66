// One benchmark measurement of acdc through its Node API, in its own process.
//
//   node --expose-gc bench/worker.mjs CASE FILE [--gradients] [--warmup N] [--reps N]
//
// CASE: soap | nl. Threads come from ACDC_NUM_THREADS, set by bench/run.mjs
// in this process's environment. What is timed (process.hrtime.bigint around
// the call only; systems already in memory as acdc System objects):
//   soap  new SoapPowerSpectrum(hypers).computeSync(systems, {gradients}):
//         the N-API call (systems handed over), neighbour list, expansion,
//         power spectrum, and the TensorMap wrapped as JS objects.
//   nl    new NeighborList({cutoff: 5, full: true}).computeSync(system):
//         i, j, shifts, distances, vectors as typed arrays.
//   lsoap new EquivariantPowerSpectrum(LSOAP_HYPERS).computeSync(systems):
//         λ-SOAP, every o3_lambda, neighbour types in the keys (featomic's
//         default layout).
//   nu3   new SoapBispectrum(NU3_HYPERS).computeSync(systems): ν = 3 invariants.
//   acsf  new SymmetryFunctions(ACSF_HYPERS).computeSync(systems, {gradients}).
//   cm    new CoulombMatrix({n_atoms_max: largest system, permutation:
//         'sorted_l2'}).computeSync(systems).
// The output is dropped, and the GC and N-API finalizers run, between calls
// (outside the timing).
// Prints one JSON line: {times: [s...], rss_before_kib, maxrss_kib, info}.

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { settle } from './settle.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const acdc = require('acdc-ml');

const HYPERS = {
  cutoff: { radius: 5.0, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 6, radial: { type: 'Gto', max_radial: 7 } },
};

// the `cg` group (bench/run.mjs --only cg): modest sizes so featomic's
// Python Clebsch-Gordan code finishes; the same in bench/worker.py
const cgHypers = (maxAngular, maxRadial) => ({
  cutoff: { radius: 5.0, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: maxAngular, radial: { type: 'Gto', max_radial: maxRadial } },
});
const LSOAP_HYPERS = cgHypers(4, 4);
const NU3_HYPERS = cgHypers(3, 3);
// the `classic` group: DScribe ACSF(r_cut=6, g2_params, g4_params), same in worker.py
const ACSF_HYPERS = {
  cutoff: 6,
  g2: [[1, 1], [1, 2], [1, 3]],
  g4: [[1, 1, 1], [1, 2, 1], [1, 1, -1], [1, 2, -1]],
};
const CASES = ['soap', 'nl', 'lsoap', 'nu3', 'acsf', 'cm'];

function parseArgs(argv) {
  const args = { gradients: false, warmup: 1, warmupSeconds: 0, reps: 5, positional: [] };
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    if (a === '--gradients') args.gradients = true;
    else if (a === '--warmup') args.warmup = Number(argv[++k]);
    else if (a === '--reps') args.reps = Number(argv[++k]);
    else if (a === '--warmup-seconds') args.warmupSeconds = Number(argv[++k]);
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else args.positional.push(a);
  }
  [args.case, args.file] = args.positional;
  if (!CASES.includes(args.case) || !args.file) throw new Error(`usage: worker.mjs ${CASES.join('|')} FILE [--gradients] [--warmup N] [--reps N]`);
  return args;
}

function count(tm) {
  let n = 0;
  for (const b of tm.blocks()) {
    n += b.values.length;
    const g = b.gradient('positions');
    if (g) n += g.values.length;
  }
  return n;
}

function countValues(tm) {
  let n = 0;
  for (const b of tm.blocks()) n += b.values.length;
  return n;
}

const args = parseArgs(process.argv.slice(2));
const frames = acdc.readXyzSync(args.file);
const info = { threads: Number(process.env.ACDC_NUM_THREADS ?? 0) || null };
let run;
if (args.case === 'soap') {
  const calc = new acdc.SoapPowerSpectrum(HYPERS);
  const options = args.gradients ? { gradients: ['positions'] } : undefined;
  run = () => {
    const tm = calc.computeSync(frames, options);
    info.values = count(tm);
  };
} else if (args.case === 'lsoap' || args.case === 'nu3' || args.case === 'acsf' || args.case === 'cm') {
  let calc;
  if (args.case === 'lsoap') calc = new acdc.EquivariantPowerSpectrum(LSOAP_HYPERS);
  else if (args.case === 'nu3') calc = new acdc.SoapBispectrum(NU3_HYPERS);
  else if (args.case === 'acsf') calc = new acdc.SymmetryFunctions(ACSF_HYPERS);
  else {
    const nAtomsMax = Math.max(...frames.map((f) => f.types.length));
    info.n_atoms_max = nAtomsMax;
    calc = new acdc.CoulombMatrix({ n_atoms_max: nAtomsMax, permutation: 'sorted_l2' });
  }
  const options = args.gradients ? { gradients: ['positions'] } : undefined;
  run = () => {
    const tm = calc.computeSync(frames, options);
    info.values = countValues(tm);
    info.blocks = tm.keys.count;
  };
} else {
  const nl = new acdc.NeighborList({ cutoff: 5, full: true });
  run = () => {
    const pairs = nl.computeSync(frames[0]);
    info.pairs = pairs.i.length;
  };
}

// the previous output dropped between calls, as in every timed bench call
await settle();
const rssBefore = process.resourceUsage().maxRSS;
const times = [];
// warm-up: --warmup calls, continued (when there is any warm-up) until
// --warmup-seconds of compute have passed, so that both vCPUs of a shared
// machine are awake before timing; the Python and Rust workers do the same
let warmed = 0;
let warmTime = 0;
while (warmed < args.warmup || (args.warmup > 0 && warmTime < args.warmupSeconds)) {
  const start = process.hrtime.bigint();
  run();
  warmTime += Number(process.hrtime.bigint() - start) / 1e9;
  warmed += 1;
  await settle();
}
for (let k = 0; k < args.reps; k++) {
  const start = process.hrtime.bigint();
  run();
  times.push(Number(process.hrtime.bigint() - start) / 1e9);
  await settle();
}
process.stdout.write(
  JSON.stringify({ times, rss_before_kib: rssBefore, maxrss_kib: process.resourceUsage().maxRSS, info }) + '\n',
);
