// acdc side of the acdc-vs-GAP benchmark (bench/gap.mjs), one job per process
// so that each has its own peak memory:
//   node bench/gap_acdc.mjs fit TRAIN MODEL OPTIONS_JSON   → {fitSeconds, totalSeconds}
//     (OPTIONS_JSON: the JSON text, or @path of a file holding it; `model` in it
//     picks 'gpr' (default, SparseGPR) or 'linear' (LinearModel))
//   node bench/gap_acdc.mjs predict MODEL TEST REPS        → {seconds, atoms, errors}
// Threads: ACDC_NUM_THREADS from the environment.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(ROOT, 'package.json'));
const acdc = require('acdc-ml');
const { errors } = require(path.join(ROOT, 'dist', 'cli', 'targets.js'));

const [job, a, b, c] = process.argv.slice(2);
const t0 = performance.now();
if (job === 'fit') {
  const { model: kind = 'gpr', ...options } = JSON.parse(c.startsWith('@') ? fs.readFileSync(c.slice(1), 'utf8') : c);
  const frames = await acdc.readXyz(a);
  const t = performance.now();
  const model = await (kind === 'linear' ? acdc.LinearModel : acdc.SparseGPR).fit(frames, options);
  const fitSeconds = (performance.now() - t) / 1000;
  await model.save(b);
  console.log(JSON.stringify({ fitSeconds, totalSeconds: (performance.now() - t0) / 1000 }));
} else if (job === 'predict') {
  const reps = Number(c);
  const model = await acdc.loadModel(a);
  const frames = await acdc.readXyz(b);
  const options = { forces: true, stress: true };
  const p = await model.predict(frames, options); // warm-up, and what the errors use
  const times = [];
  const cpu = [];
  for (let k = 0; k < reps; k++) {
    const t = performance.now();
    const c = process.cpuUsage();
    await model.predict(frames, options);
    times.push((performance.now() - t) / 1000);
    const d = process.cpuUsage(c);
    cpu.push((d.user + d.system) / 1e6);
  }
  const median = (x) => [...x].sort((u, v) => u - v)[Math.floor(x.length / 2)];
  const atoms = frames.reduce((n, s) => n + s.size, 0);
  const e = errors(b, frames, p, { energy: 'energy', forces: 'forces', stress: 'stress' });
  console.log(JSON.stringify({ frames: frames.length, atoms, seconds: median(times), cpuSeconds: median(cpu), errors: e }));
} else {
  throw new Error(`unknown job ${job}`);
}
