#!/usr/bin/env node
// `acdc map --per-atom` at scale: a periodic Cu–Au fcc alloy of --atoms atoms
// (seeded random species and displacements), mapped by this checkout and,
// with --baseline DIR, by another checkout's build in the same run. Reports
// wall seconds of each command, their ratio, and the largest difference
// between the two maps' PCA scores relative to the largest score (the same
// numbers up to the sign convention, which both share).
//
//   node bench/map_scale.mjs [--atoms 2048] [--baseline /path/to/other/checkout] [--threads 2]
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
const atoms = Number(option('atoms', 2048));
const baseline = option('baseline', undefined);
const threads = option('threads', '2');

// a cubic fcc supercell with at least `atoms` sites, cut to `atoms` atoms
const cells = Math.ceil(Math.cbrt(atoms / 4));
const a = 3.8;
let seed = 12345;
const random = () => {
  // a small LCG: the input only needs to be the same every run
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const basis = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]];
const lines = [];
for (let i = 0; i < cells && lines.length < atoms; i++) {
  for (let j = 0; j < cells && lines.length < atoms; j++) {
    for (let k = 0; k < cells && lines.length < atoms; k++) {
      for (const b of basis) {
        if (lines.length >= atoms) break;
        const p = [i + b[0], j + b[1], k + b[2]].map((x) => (x * a + 0.1 * (random() - 0.5)).toFixed(6));
        lines.push(`${random() < 0.5 ? 'Cu' : 'Au'} ${p.join(' ')}`);
      }
    }
  }
}
const L = (cells * a).toFixed(6);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-map-bench-'));
const input = path.join(dir, `cuau${atoms}.xyz`);
fs.writeFileSync(input, `${atoms}\nLattice="${L} 0 0 0 ${L} 0 0 0 ${L}" Properties=species:S:1:pos:R:3 pbc="T T T"\n${lines.join('\n')}\n`);

function run(checkout, name) {
  const out = path.join(dir, `${name}.json`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [path.join(checkout, 'dist', 'cli', 'main.js'), 'map', input, '--per-atom', '--out', out], {
    encoding: 'utf8',
    env: { ...process.env, ACDC_NUM_THREADS: threads },
    maxBuffer: 1 << 26,
  });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${name}: exit ${r.status}: ${r.stderr}`);
  const doc = JSON.parse(fs.readFileSync(out, 'utf8'));
  return { seconds, scores: [doc.properties['pca[1]'].values, doc.properties['pca[2]'].values] };
}

const now = run(root, 'this');
console.log(`acdc map --per-atom, ${atoms} Cu/Au atoms, ${threads} threads: this checkout ${now.seconds.toFixed(2)} s`);
if (baseline !== undefined) {
  const base = run(baseline, 'baseline');
  let err = 0;
  let scale = 0;
  for (let c = 0; c < 2; c++) {
    for (let i = 0; i < atoms; i++) {
      err = Math.max(err, Math.abs(now.scores[c][i] - base.scores[c][i]));
      scale = Math.max(scale, Math.abs(base.scores[c][i]));
    }
  }
  console.log(`baseline ${baseline}: ${base.seconds.toFixed(2)} s; this/baseline = ${(now.seconds / base.seconds).toFixed(3)}; max |Δscore| / max |score| = ${(err / scale).toExponential(2)}`);
}
fs.rmSync(dir, { recursive: true, force: true });
