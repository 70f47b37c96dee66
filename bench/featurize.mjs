#!/usr/bin/env node
// `acdc featurize` of a 10 000-frame molecule file to a per-structure .npy:
// the tensor path (ACDC_FEATURIZE_TENSORS=1: JS frames → systems →
// calc.compute → TensorMap operations in JS → rows) against the fused native
// path (frames → native systems → rows reduced and placed in Rust), run
// alternately in the same session. Reports structures/s (wall clock of the
// whole command, from the summary's `seconds`), CPU seconds and peak RSS of
// each child, and checks that both outputs are byte-identical.
//
//   node bench/featurize.mjs [--frames 10000] [--repeats 3] [--threads 2]
//                            [--per-structure mean] [--dtype float64] [--keep]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const k = args.indexOf(`--${name}`);
  return k >= 0 ? args[k + 1] : fallback;
};
const frames = Number(option('frames', 10000));
const repeats = Number(option('repeats', 3));
const threads = option('threads', '2');
const perStructure = option('per-structure', 'mean');
const dtype = option('dtype', 'float64');
const keep = args.includes('--keep');

// the input: examples/molecules.xyz (120 small organic molecules of the G2
// set, H C N O) cycled to `frames` frames
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-featurize-bench-'));
const input = path.join(dir, `molecules${frames}.xyz`);
{
  const text = fs.readFileSync(path.join(root, 'examples', 'molecules.xyz'), 'utf8');
  const lines = text.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length && lines[i].trim() !== ''; ) {
    const n = Number(lines[i]);
    blocks.push(lines.slice(i, i + n + 2).join('\n') + '\n');
    i += n + 2;
  }
  const out = fs.openSync(input, 'w');
  for (let k = 0; k < frames; k++) fs.writeSync(out, blocks[k % blocks.length]);
  fs.closeSync(out);
}

// a preload that writes the child's own resource usage when it exits
const rusage = path.join(dir, 'rusage.cjs');
fs.writeFileSync(
  rusage,
  "process.on('exit', () => require('fs').writeFileSync(process.env.ACDC_BENCH_RUSAGE, JSON.stringify(process.resourceUsage())));\n",
);

const cli = path.join(root, 'dist', 'cli', 'main.js');
function run(variant, out) {
  const usage = path.join(dir, `${variant}.rusage.json`);
  const env = { ...process.env, ACDC_BENCH_RUSAGE: usage };
  if (variant === 'tensor') env.ACDC_FEATURIZE_TENSORS = '1';
  else delete env.ACDC_FEATURIZE_TENSORS;
  const argv = ['--require', rusage, cli, 'featurize', input, '--out', out, '--threads', threads, '--dtype', dtype, '--json'];
  if (perStructure !== 'atom') argv.push('--per-structure', perStructure);
  const r = spawnSync(process.execPath, argv, { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${variant}: exit ${r.status}: ${r.stderr}`);
  const summary = JSON.parse(r.stdout);
  const u = JSON.parse(fs.readFileSync(usage, 'utf8'));
  return { seconds: summary.seconds, rate: summary.frames / summary.seconds, cpu: (u.userCPUTime + u.systemCPUTime) / 1e6, rssMB: u.maxRSS / 1024 };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const results = { tensor: [], fused: [] };
console.log(`acdc featurize ${path.basename(input)} (${frames} frames) --per-structure ${perStructure} --dtype ${dtype} --threads ${threads}; ${repeats} repeats, alternating`);
for (let k = 0; k < repeats; k++) {
  const order = k % 2 === 0 ? ['tensor', 'fused'] : ['fused', 'tensor'];
  const outs = {};
  for (const variant of order) {
    fs.mkdirSync(path.join(dir, variant), { recursive: true });
    outs[variant] = path.join(dir, variant, 'x.npy');
    const r = run(variant, outs[variant]);
    results[variant].push(r);
    console.log(`  ${variant.padEnd(6)} ${r.seconds.toFixed(2)} s  ${r.rate.toFixed(0)} structures/s  cpu ${r.cpu.toFixed(2)} s  peak RSS ${r.rssMB.toFixed(0)} MB`);
  }
  if (k === 0) {
    const same = (a, b) => spawnSync('cmp', ['-s', a, b]).status === 0;
    // the sidecar names the .npy file: same base name in separate folders
    if (!same(outs.tensor, outs.fused) || !same(`${outs.tensor}.labels.json`, `${outs.fused}.labels.json`)) {
      throw new Error('the two paths wrote different .npy or .labels.json files');
    }
    console.log('  .npy and .labels.json byte-identical');
  }
  for (const out of Object.values(outs)) for (const f of [out, `${out}.labels.json`]) fs.rmSync(f, { force: true });
}
const row = (v) => {
  const rs = results[v];
  return { rate: median(rs.map((r) => r.rate)), cpu: median(rs.map((r) => r.cpu)), rss: Math.max(...rs.map((r) => r.rssMB)) };
};
const t = row('tensor');
const f = row('fused');
console.log('\n| path | structures/s (median) | CPU s (median) | peak RSS MB (max) |');
console.log('|---|---|---|---|');
console.log(`| tensor (ACDC_FEATURIZE_TENSORS=1) | ${t.rate.toFixed(0)} | ${t.cpu.toFixed(2)} | ${t.rss.toFixed(0)} |`);
console.log(`| fused | ${f.rate.toFixed(0)} | ${f.cpu.toFixed(2)} | ${f.rss.toFixed(0)} |`);
console.log(`| fused / tensor | ${(f.rate / t.rate).toFixed(2)}× | ${(f.cpu / t.cpu).toFixed(2)}× | ${(f.rss / t.rss).toFixed(2)}× |`);
if (!keep) fs.rmSync(dir, { recursive: true, force: true });
else console.log(`input kept in ${dir}`);
