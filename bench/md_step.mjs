#!/usr/bin/env node
// MD-step cost against GAP (issue 27): the wall time of one energy + forces +
// stress evaluation of a fitted SparseGPR and LinearModel (the Node API, as
// an MD driver calls it) on rattled diamond silicon of 64, 1 000 and 8 000
// atoms at 1 and 2 threads, against quippy's GAP with the same settings
// (`Potential(param_filename=…)` as an ASE calculator, OMP_NUM_THREADS=1),
// measured in the same run, and the i-PI round trip as a fraction of a step.
//
//   node bench/md_step.mjs [--quick] [--cells 2,5,10] [--threads 1,2] [--reps N]
//                          [--gap-reps 5,3,2] [--ipi-steps N] [--no-gap] [--no-ipi] [--ipi-only] [--ipi-loop native,js] [--lock FILE]
//
// Set-up (once, kept in bench/.data/md-step/): `bench/md_step_gap.py fit`
// writes ten rattled 64-atom cells with made-up smooth targets and runs
// gap_fit (soap cutoff 5 Å, transition 1 Å, n_max 8, l_max 6, atom_sigma
// 0.5 Å, ζ 4, δ 0.2 eV, 400 cur_points, sparse_jitter 1e-8); `acdc fit` fits
// the same frames with the same settings (--model gpr --sparse 400
// --sparse-method cur --zeta 4 --delta 0.2 --jitter 2.5e-7 (= 1e-8 eV²/δ²),
// and --model linear); what is timed does not depend on the weights. The
// timed cell (diamond, a = 5.43 Å, σ = 0.05 Å rattles, seed 7) is written by
// `md_step_gap.py cell`, so acdc and GAP evaluate the same positions.
//
// Timing: every measurement is its own process (acdc: this script with
// --child and ACDC_NUM_THREADS; GAP: md_step_gap.py step), one untimed
// warm-up evaluation, then the median of the timed ones: wall time, and the
// process's CPU time (user + system, all threads), which a loaded machine
// inflates far less than wall time (the 1-thread CPU-time ratio is the
// number to trust there). acdc's include
// the N-API call and the result arrays (predictSync({forces, stress})).
// GAP is single-threaded here (OMP_NUM_THREADS=1: the quippy-ase wheel's
// GAP; both ratios use that time). i-PI (needs ACDC_INTEROP_PYTHON with
// ipi==3.3.1): NVE steps of the same cell driven by driveIpi, reporting the
// driver's protocol time (decode, encode, write) and the whole round trip
// (step time − model time: i-PI's Python loop + socket + protocol) per step.
// --quick: fewer repetitions (GAP at 8 000 atoms: one warm-up + 1 timed),
// i-PI at 64 and 1 000 atoms only. --ipi-only: only the i-PI part (no
// acdc-alone or GAP steps; the table then gives the driver's protocol per
// step, first evaluation apart). --ipi-loop: the driver loops to run
// (driveIpi's `loop`: 'native' = the binding's thread, 'js' = Node's socket;
// default both, native first). --lock FILE runs gap_fit and GAP's steps
// under flock(1) on FILE (a shared machine). Results: bench/.data/md-step.json
// and a markdown table on stdout, with the load average before and after.
import { spawnSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH, '..');
const WORK = path.join(BENCH, '.data', 'md-step');
const SELF = fileURLToPath(import.meta.url);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// ---- child: one model, one cell, one thread count -------------------------
if (process.argv[2] === '--child') {
  const [model, cell, reps, warmup] = process.argv.slice(3);
  const acdc = require('acdc-ml');
  const m = acdc.loadModelSync(model);
  const [system] = acdc.readXyzSync(cell);
  const opts = { forces: true, stress: true };
  let p;
  for (let k = 0; k < Number(warmup); k++) p = m.predictSync([system], opts);
  const times = [];
  const cpu = [];
  for (let k = 0; k < Number(reps); k++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    p = m.predictSync([system], opts);
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
  }
  const threads = Number(process.env.ACDC_NUM_THREADS ?? 0);
  console.log(JSON.stringify({ atoms: system.size, threads, reps: times.length, seconds: median(times), all_seconds: times, cpu_seconds: median(cpu), peak_rss: process.resourceUsage().maxRSS * 1024, energy: p.energy[0] }));
  process.exit(0);
}

// ---- child: i-PI NVE on one cell --------------------------------------------
if (process.argv[2] === '--ipi-child') {
  const [model, cell, steps, python, loop] = process.argv.slice(3);
  const acdc = require('acdc-ml');
  const m = await acdc.loadModel(model);
  const [system] = acdc.readXyzSync(cell);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-md-step-ipi-'));
  const L = system.cell;
  const lines = [];
  for (let i = 0; i < system.size; i++) lines.push(`Si ${[0, 1, 2].map((x) => system.positions[3 * i + x].toFixed(10)).join(' ')}`);
  // the cells are cubic (md_step_gap.py's diamond): abc = the diagonal
  fs.writeFileSync(path.join(dir, 'init.xyz'), `${system.size}\n# CELL(abcABC): ${L[0]} ${L[4]} ${L[8]} 90 90 90 positions{angstrom} cell{angstrom}\n${lines.join('\n')}\n`);
  const name = `acdc_mdstep_${process.pid}`;
  fs.writeFileSync(
    path.join(dir, 'input.xml'),
    `<simulation verbosity="low" safe_stride="100000">
  <output prefix="md"><properties stride="${steps}" filename="out">[ step, conserved{electronvolt} ]</properties></output>
  <total_steps>${steps}</total_steps>
  <prng><seed>12345</seed></prng>
  <ffsocket name="acdc" mode="unix"><address>${name}</address><latency>1e-4</latency></ffsocket>
  <system>
    <initialize nbeads="1"><file mode="xyz">init.xyz</file><velocities mode="thermal" units="kelvin">300</velocities></initialize>
    <forces><force forcefield="acdc"/></forces>
    <ensemble><temperature units="kelvin">300</temperature></ensemble>
    <motion mode="dynamics"><dynamics mode="nve"><timestep units="femtosecond">1</timestep></dynamics></motion>
  </system>
</simulation>
`,
  );
  const server = spawn(python, [path.join(path.dirname(python), 'i-pi'), 'input.xml'], { cwd: dir, stdio: 'ignore', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  const exited = new Promise((resolve) => server.on('exit', resolve));
  try {
    // per evaluation (drivers that report it): the driver's protocol and model seconds
    const perStep = [];
    // the native loop calls no JavaScript per step: only the run's sums (and the first evaluation's protocol)
    const r = await acdc.driveIpi(m, { unix: name, timeout: 600, ...(loop === 'native' ? { loop } : { loop: 'js', onStep: (s) => perStep.push([s.protocolSeconds ?? null, s.modelSeconds]) }) });
    const cpu = process.cpuUsage();
    console.log(JSON.stringify({ atoms: system.size, threads: Number(process.env.ACDC_NUM_THREADS ?? 0), ...r, perStep, cpuSeconds: (cpu.user + cpu.system) / 1e6 }));
  } finally {
    await Promise.race([exited, new Promise((res) => setTimeout(res, 5000))]);
    server.kill();
    await exited;
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
  }
  process.exit(0);
}

// ---- parent ------------------------------------------------------------------
function parseArgs(argv) {
  const o = { quick: false, cells: [2, 5, 10], threads: [1, 2], reps: null, gapReps: null, ipiSteps: null, ipiLoops: ['native', 'js'], gap: true, ipi: true, ipiOnly: false, lock: null };
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    const value = () => {
      if (k + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++k];
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--cells') o.cells = value().split(',').map(Number);
    else if (a === '--threads') o.threads = value().split(',').map(Number);
    else if (a === '--reps') o.reps = Number(value());
    else if (a === '--gap-reps') o.gapReps = value().split(',').map(Number);
    else if (a === '--ipi-steps') o.ipiSteps = Number(value());
    else if (a === '--no-gap') o.gap = false;
    else if (a === '--no-ipi') o.ipi = false;
    else if (a === '--ipi-only') o.ipiOnly = true;
    else if (a === '--ipi-loop') o.ipiLoops = value().split(',');
    else if (a === '--lock') o.lock = path.resolve(value());
    else if (a === '--help' || a === '-h') {
      console.log(fs.readFileSync(SELF, 'utf8').split('\n').slice(1, 39).join('\n'));
      process.exit(0);
    } else throw new Error(`unknown option ${a} (try --help)`);
  }
  for (const c of o.cells) if (!(Number.isInteger(c) && c >= 1)) throw new Error(`--cells: ${c} is not a positive integer`);
  return o;
}

function run(cmd, args, env = {}, lock = null) {
  const [c, a] = lock ? ['flock', [lock, cmd, ...args]] : [cmd, args];
  const r = spawnSync(c, a, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}
const lastJson = (out) => JSON.parse(out.trim().split('\n').pop());
const loadavg = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

const o = parseArgs(process.argv.slice(2));
const python = process.env.ACDC_GAP_PYTHON ?? [path.join(BENCH, '.venv', 'bin', 'python'), '/tmp/venv-terms/bin/python'].find((p) => fs.existsSync(p));
if (!python) throw new Error('no python with quippy-ase: set ACDC_GAP_PYTHON (or link a venv at bench/.venv)');
// reps per size index (64, 1 000, 8 000 atoms; a larger count reuses the last)
const acdcReps = o.reps !== null ? [o.reps] : o.quick ? [7, 3, 2] : [21, 7, 5];
const gapReps = o.gapReps ?? (o.quick ? [5, 2, 1] : [9, 5, 3]);
const ipiSteps = o.ipiSteps ?? (o.quick ? 10 : 40);
const ipiCells = o.quick ? o.cells.filter((c) => c <= 5) : o.cells;
const at = (list, k) => list[Math.min(k, list.length - 1)];

fs.mkdirSync(WORK, { recursive: true });
const load0 = loadavg();
const t0 = Date.now();
if (!o.ipiOnly && !fs.existsSync(path.join(WORK, 'gap.xml'))) {
  console.error('gap_fit …');
  run(python, [path.join(BENCH, 'md_step_gap.py'), 'fit', WORK], { OMP_NUM_THREADS: '1' }, o.lock);
}
const cli = path.join(ROOT, 'dist', 'cli', 'main.js');
const models = { gpr: path.join(WORK, 'gpr.acdc'), linear: path.join(WORK, 'linear.acdc') };
const common = ['--validation', '0', '--no-stress', '--sigma-energy', '0.002', '--sigma-forces', '0.05'];
if (!fs.existsSync(models.gpr)) {
  console.error('acdc fit --model gpr …');
  run(process.execPath, [cli, 'fit', path.join(WORK, 'train.xyz'), '--model', 'gpr', '--sparse', '400', '--sparse-method', 'cur', '--zeta', '4', '--delta', '0.2', '--jitter', '2.5e-7', ...common, '--out', models.gpr]);
}
if (!fs.existsSync(models.linear)) {
  console.error('acdc fit --model linear …');
  run(process.execPath, [cli, 'fit', path.join(WORK, 'train.xyz'), '--model', 'linear', ...common, '--out', models.linear]);
}
for (const c of o.cells) if (!fs.existsSync(path.join(WORK, `cell-${c}.xyz`))) run(python, [path.join(BENCH, 'md_step_gap.py'), 'cell', WORK, String(c)]);

const results = { acdc: [], gap: [], ipi: [] };
if (!o.ipiOnly) o.cells.forEach((c, k) => {
  const cell = path.join(WORK, `cell-${c}.xyz`);
  for (const kind of ['gpr', 'linear']) {
    for (const threads of o.threads) {
      console.error(`acdc ${kind} ${8 * c ** 3} atoms, ${threads} thread(s) …`);
      const r = lastJson(run(process.execPath, [SELF, '--child', models[kind], cell, String(at(acdcReps, k)), '1'], { ACDC_NUM_THREADS: String(threads) }));
      results.acdc.push({ model: kind, ...r });
    }
  }
  if (o.gap) {
    console.error(`GAP ${8 * c ** 3} atoms …`);
    const r = lastJson(run(python, [path.join(BENCH, 'md_step_gap.py'), 'step', WORK, String(c), '--reps', String(at(gapReps, k)), '--warmup', '1'], { OMP_NUM_THREADS: '1' }, o.lock));
    results.gap.push(r);
  }
});
const ipiPython = process.env.ACDC_INTEROP_PYTHON;
let ipiNote = null;
if (o.ipi && !ipiPython) ipiNote = 'i-PI not measured: set ACDC_INTEROP_PYTHON to a python with ipi==3.3.1';
if (o.ipi && ipiPython) {
  for (const c of ipiCells) {
    for (const kind of ['gpr', 'linear']) {
      console.error(`i-PI ${kind} ${8 * c ** 3} atoms …`);
      for (const loop of o.ipiLoops) {
        const r = lastJson(run(process.execPath, [SELF, '--ipi-child', models[kind], path.join(WORK, `cell-${c}.xyz`), String(ipiSteps), ipiPython, loop], { ACDC_NUM_THREADS: '1' }));
        results.ipi.push({ model: kind, ...r });
      }
    }
  }
}
const load1 = loadavg();
const meta = { date: new Date().toISOString(), quick: o.quick, cores: os.cpus().length, node: process.version, loadBefore: load0, loadAfter: load1, minutes: +((Date.now() - t0) / 60000).toFixed(1) };
fs.writeFileSync(path.join(BENCH, '.data', o.ipiOnly ? 'md-step-ipi.json' : 'md-step.json'), JSON.stringify({ meta, ...results }, null, 1));

const ms = (s) => (s >= 1 ? `${s.toFixed(2)} s` : `${(1000 * s).toPrecision(3)} ms`);
const lines = [];
if (o.ipiOnly) {
  lines.push(`i-PI 3.3.1 NVE over a unix socket, ${ipiSteps} steps, acdc on 1 thread, ${meta.cores} cores, load average ${load0} before / ${load1} after, ${meta.minutes} min`);
  lines.push('');
  lines.push('| model | atoms | loop | step | model | driver protocol, mean (% of model) | protocol, 1st evaluation | protocol, mean of the others (% of model) | median of the others (% of model) |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  const us = (s) => (s === null || s === undefined ? '—' : s >= 1e-3 ? ms(s) : `${(1e6 * s).toPrecision(3)} µs`);
  for (const r of results.ipi) {
    const model = r.modelSeconds / r.steps;
    const proto = r.protocolSeconds / r.steps;
    const per = r.perStep.filter((x) => x[0] !== null);
    const rest = per.length > 1 ? median(per.slice(1).map((x) => x[0])) : null;
    const restModel = per.length > 1 ? median(per.slice(1).map((x) => x[1])) : null;
    const others = r.steps > 1 ? (r.protocolSeconds - r.firstProtocolSeconds) / (r.steps - 1) : null;
    const othersCell = others === null ? '—' : `${us(others)} (${((100 * others) / model).toFixed(2)} %)`;
    lines.push(`| ${r.model} | ${r.atoms} | ${r.loop} | ${ms(r.seconds / r.steps)} | ${ms(model)} | ${us(proto)} (${((100 * proto) / model).toFixed(2)} %) | ${us(r.firstProtocolSeconds)} | ${othersCell} | ${rest === null ? '—' : `${us(rest)} (${((100 * rest) / restModel).toFixed(2)} %)`} |`);
  }
  console.log(lines.join('\n'));
  process.exit(0);
}
lines.push(`MD step (energy + forces + stress), rattled diamond Si, ${o.quick ? '--quick' : 'full'} run, ${meta.cores} cores, load average ${load0} before / ${load1} after, ${meta.minutes} min`);
lines.push('');
lines.push(`| atoms | GAP (1 thread) | ${o.threads.map((t) => `SparseGPR ${t} thr`).join(' | ')} | ${o.threads.map((t) => `Linear ${t} thr`).join(' | ')} | ${o.threads.map((t) => `GPR/GAP ${t} thr`).join(' | ')} | ${o.threads.map((t) => `Linear/GAP ${t} thr`).join(' | ')} |`);
lines.push(`|---|---|${o.threads.map(() => '---|').join('').repeat(4)}`);
for (const c of o.cells) {
  const n = 8 * c ** 3;
  const g = results.gap.find((r) => r.atoms === n);
  const a = (kind, t) => results.acdc.find((r) => r.atoms === n && r.model === kind && r.threads === t);
  const cells = [String(n), g ? `${ms(g.seconds)} (${g.reps})` : '—'];
  for (const kind of ['gpr', 'linear']) for (const t of o.threads) cells.push(`${ms(a(kind, t).seconds)} (${a(kind, t).reps})`);
  for (const kind of ['gpr', 'linear']) for (const t of o.threads) cells.push(g ? (a(kind, t).seconds / g.seconds).toFixed(3) : '—');
  lines.push(`| ${cells.join(' | ')} |`);
}
lines.push('');
lines.push('(median wall time per step; in brackets the timed steps after one warm-up)');
lines.push('');
lines.push(`| atoms | GAP CPU s/step | ${o.threads.map((t) => `SparseGPR CPU ${t} thr`).join(' | ')} | ${o.threads.map((t) => `Linear CPU ${t} thr`).join(' | ')} | GPR/GAP CPU 1 thr | Linear/GAP CPU 1 thr |`);
lines.push(`|---|---|${o.threads.map(() => '---|').join('').repeat(2)}---|---|`);
for (const c of o.cells) {
  const n = 8 * c ** 3;
  const g = results.gap.find((r) => r.atoms === n);
  const a = (kind, t) => results.acdc.find((r) => r.atoms === n && r.model === kind && r.threads === t);
  const row = [String(n), g ? ms(g.cpu_seconds) : '—'];
  for (const kind of ['gpr', 'linear']) for (const t of o.threads) row.push(ms(a(kind, t).cpu_seconds));
  for (const kind of ['gpr', 'linear']) row.push(g && a(kind, 1) ? (a(kind, 1).cpu_seconds / g.cpu_seconds).toFixed(3) : '—');
  lines.push(`| ${row.join(' | ')} |`);
}
lines.push('');
lines.push('(median CPU time of the process per step, user + system over all its threads)');
lines.push('');
lines.push('| atoms | GAP peak RSS | SparseGPR peak RSS (1 thr) | Linear peak RSS (1 thr) | µs/atom GAP | µs/atom GPR 1 thr | µs/atom linear 1 thr |');
lines.push('|---|---|---|---|---|---|---|');
const mib = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`;
for (const c of o.cells) {
  const n = 8 * c ** 3;
  const g = results.gap.find((r) => r.atoms === n);
  const t = o.threads[0];
  const gp = results.acdc.find((r) => r.atoms === n && r.model === 'gpr' && r.threads === t);
  const li = results.acdc.find((r) => r.atoms === n && r.model === 'linear' && r.threads === t);
  lines.push(`| ${n} | ${g ? mib(g.peak_rss) : '—'} | ${mib(gp.peak_rss)} | ${mib(li.peak_rss)} | ${g ? ((1e6 * g.seconds) / n).toFixed(0) : '—'} | ${((1e6 * gp.seconds) / n).toFixed(0)} | ${((1e6 * li.seconds) / n).toFixed(0)} |`);
}
if (results.ipi.length) {
  lines.push('');
  lines.push(`i-PI 3.3.1 NVE over a unix socket, ${ipiSteps} steps, acdc on 1 thread (per step; "round trip" = step − model time: i-PI's Python loop, the socket and the driver's protocol):`);
  lines.push('');
  lines.push('| model | atoms | loop | step | model | driver protocol (% of model time) | protocol, mean after the 1st evaluation (% of model) | round trip (% of model time) |');
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const r of results.ipi) {
    const step = r.seconds / r.steps;
    const model = r.modelSeconds / r.steps;
    const proto = r.protocolSeconds / r.steps;
    const rest = r.steps > 1 ? (r.protocolSeconds - r.firstProtocolSeconds) / (r.steps - 1) : null;
    const restCell = rest === null ? '—' : `${ms(rest)} (${((100 * rest) / model).toFixed(2)} %)`;
    lines.push(`| ${r.model} | ${r.atoms} | ${r.loop} | ${ms(step)} | ${ms(model)} | ${ms(proto)} (${((100 * proto) / model).toFixed(2)} %) | ${restCell} | ${ms(step - model)} (${((100 * (step - model)) / model).toFixed(1)} %) |`);
  }
}
if (ipiNote) lines.push('', ipiNote);
console.log(lines.join('\n'));
