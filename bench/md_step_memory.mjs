#!/usr/bin/env node
// Peak memory and time of one MD step (energy + forces + stress) of a fitted
// sparse GPR on rattled diamond silicon (64, 1 000, 8 000 atoms), before and
// after backpropagating the per-atom feature gradient into expansion space
// (issue 27), in the same run:
//
//   node bench/md_step_memory.mjs [--cells 2,5,10] [--reps 3] [--threads 2]
//
// "features" is the path that forms the power-spectrum gradients and
// contracts them (Potential::predict_within_features), "backprop" the
// default path (Potential::predict_within). The model: GAP's matched
// settings (n_max 8, l_max 6, r_c 5 Å, σ 0.5 Å, ζ 4, δ 0.2 eV, 400 CUR
// sparse points), fitted once by the md_step example on made-up smooth
// targets (bench/.data/md-step-si.acdc); what is timed does not depend on
// the weights. Each measurement is its own process (peak RSS = VmHWM of
// that process, the Rust core only: no Node heap). Results in
// bench/.data/md-step-memory.json and a table on stdout.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH, '..');
const DATA = path.join(BENCH, '.data');

function parseArgs(argv) {
  const o = { cells: [2, 5, 10], reps: 3, threads: 2 };
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    const value = () => {
      if (k + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++k];
    };
    if (a === '--cells') o.cells = value().split(',').map(Number);
    else if (a === '--reps') o.reps = Number(value());
    else if (a === '--threads') o.threads = Number(value());
    else if (a === '--help' || a === '-h') {
      console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 18).join('\n'));
      process.exit(0);
    } else throw new Error(`unknown option ${a} (try --help)`);
  }
  return o;
}

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

const o = parseArgs(process.argv.slice(2));
// the addon's target folder: the core built by `npm run build:native` is reused
const TARGET = 'x86_64-unknown-linux-gnu';
run('cargo', ['build', '--release', '-q', '--target', TARGET, '-p', 'acdc-core', '--example', 'md_step']);
const exe = path.join(ROOT, 'target', TARGET, 'release', 'examples', 'md_step');
fs.mkdirSync(DATA, { recursive: true });
const model = path.join(DATA, 'md-step-si.acdc');
if (!fs.existsSync(model)) run(exe, ['fit', model]);
const results = [];
for (const cells of o.cells) {
  for (const mode of ['features', 'backprop']) {
    const line = run(exe, ['step', model, mode, String(cells), '--reps', String(o.reps)], { ACDC_NUM_THREADS: String(o.threads) });
    const r = JSON.parse(line.trim().split('\n').pop());
    results.push(r);
    console.error(JSON.stringify(r));
  }
}
const gib = (b) => (b / 2 ** 30).toFixed(3);
const lines = [
  `MD step (energy + forces + stress), rattled diamond Si, sparse GPR (400 points, n_max 8, l_max 6, r_c 5 Å), ${o.threads} threads, median of ${o.reps}; load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  '',
  '| atoms | before: time | before: peak RSS | after: time | after: peak RSS | time after/before | peak after/before | minor faults per step before / after |',
  '|---|---|---|---|---|---|---|---|',
];
for (const cells of o.cells) {
  const b = results.find((r) => r.mode === 'features' && r.atoms === 8 * cells ** 3);
  const a = results.find((r) => r.mode === 'backprop' && r.atoms === 8 * cells ** 3);
  const rel = Math.abs(a.energy - b.energy) / Math.abs(b.energy);
  if (rel !== 0) console.error(`note: energies differ at ${cells}: ${rel}`);
  lines.push(
    `| ${a.atoms} | ${b.seconds.toFixed(3)} s | ${gib(b.peak_rss)} GiB | ${a.seconds.toFixed(3)} s | ${gib(a.peak_rss)} GiB | ${(a.seconds / b.seconds).toFixed(2)} | ${(a.peak_rss / b.peak_rss).toFixed(2)} | ${b.minor_faults_per_step} / ${a.minor_faults_per_step} |`,
  );
}
console.log(lines.join('\n'));
fs.writeFileSync(path.join(DATA, 'md-step-memory.json'), JSON.stringify({ options: o, results }, null, 2) + '\n');
