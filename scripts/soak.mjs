#!/usr/bin/env node
// Soak test: `npm run soak -- --minutes 60`. Loops the library's main paths
// (sync and async computes with gradients, TensorMap operations, .mts save
// and load, .npy and .xyz writes and reads, cancelled computes) and prints
// the resident memory, V8's heap and array buffers, and the number of open
// handles every 30 s. At the end it fits a line through RSS after the
// warm-up: a flat line (and a constant handle count) means nothing leaks.
// Writes the samples as JSON lines next to the summary (--log FILE).
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const require = createRequire(import.meta.url);
const acdc = require('acdc-ml');

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const k = args.indexOf(`--${name}`);
  return k >= 0 ? args[k + 1] : fallback;
};
const minutes = Number(arg('minutes', '5'));
const every = Number(arg('every', '30'));
const logFile = arg('log', undefined);
if (!(minutes > 0)) {
  console.error(`soak: --minutes must be a positive number, got ${arg('minutes')}`);
  process.exit(2);
}

const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');
const frames = acdc.readXyzSync(path.join(root, 'examples', 'molecules.xyz'));
const water = acdc.readXyzSync(path.join(root, 'examples', 'water.xyz'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-soak-'));
const hypers = {
  cutoff: { radius: 4.5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 4, radial: { type: 'Gto', max_radial: 5 } },
};
const soap = new acdc.SoapPowerSpectrum(hypers);
const expansion = new acdc.SphericalExpansion(hypers);

let iterations = 0;
async function once(k) {
  const batch = frames.slice((k * 16) % 96, ((k * 16) % 96) + 24);
  const a = soap.computeSync(batch, { gradients: ['positions', 'strain'] });
  const b = await soap.compute(batch, { gradients: ['positions'] });
  const mean = b.meanOverSamples('atom').keysToProperties(['center_type', 'neighbor_1_type', 'neighbor_2_type']);
  acdc.writeNpySync(path.join(dir, 'x.npy'), mean.toArray());
  await acdc.writeNpy(path.join(dir, 'y.npy'), mean.toArray({ dtype: 'float32' }));
  acdc.readNpySync(path.join(dir, 'x.npy'));
  await acdc.readNpy(path.join(dir, 'y.npy'));
  a.saveSync(path.join(dir, 'a.mts'));
  await b.saveAsync(path.join(dir, 'b.mts'));
  acdc.TensorMap.loadSync(path.join(dir, 'a.mts'));
  const loaded = await acdc.TensorMap.loadAsync(path.join(dir, 'b.mts'));
  acdc.TensorMap.fromBuffer(loaded.toBuffer());
  acdc.TensorMap.join([b, loaded]);
  await expansion.compute(water, { gradients: ['strain'] });
  acdc.writeXyzSync(path.join(dir, 'w.xyz'), batch);
  await acdc.readXyz(path.join(dir, 'w.xyz'));
  for await (const f of acdc.iterXyz(path.join(dir, 'w.xyz'), { batch: 7 })) void f;
  await new acdc.NeighborList({ cutoff: 5 }).compute(batch[0]);
  const controller = new AbortController();
  const cancelled = soap.compute(frames, { gradients: ['positions'], signal: controller.signal });
  setTimeout(() => controller.abort(), 5);
  await cancelled.catch((e) => {
    if (e.name !== 'AbortError') throw e;
  });
  iterations += 1;
}

const handles = () => (typeof process.getActiveResourcesInfo === 'function' ? process.getActiveResourcesInfo().length : 0);
const samples = [];
function sample(t) {
  const m = process.memoryUsage();
  const s = {
    minutes: t / 60000,
    iterations,
    rssMB: m.rss / 1e6,
    heapMB: m.heapUsed / 1e6,
    externalMB: m.external / 1e6,
    arrayBuffersMB: m.arrayBuffers / 1e6,
    handles: handles(),
  };
  samples.push(s);
  console.log(
    `${s.minutes.toFixed(1).padStart(6)} min  ${String(s.iterations).padStart(7)} iterations  RSS ${s.rssMB.toFixed(0).padStart(5)} MB  ` +
      `heap ${s.heapMB.toFixed(0).padStart(4)} MB  array buffers ${s.arrayBuffersMB.toFixed(0).padStart(4)} MB  handles ${s.handles}`,
  );
  if (logFile) fs.appendFileSync(logFile, JSON.stringify(s) + '\n');
}

const start = Date.now();
let next = 0;
let k = 0;
while (Date.now() - start < minutes * 60000) {
  await once(k++);
  const t = Date.now() - start;
  if (t >= next) {
    sample(t);
    next += every * 1000;
  }
}
sample(Date.now() - start);
fs.rmSync(dir, { recursive: true, force: true });

// least-squares slope of RSS after the first fifth (warm-up)
const steady = samples.filter((s) => s.minutes >= minutes / 5);
const n = steady.length;
const mx = steady.reduce((a, s) => a + s.minutes, 0) / n;
const my = steady.reduce((a, s) => a + s.rssMB, 0) / n;
const slope = steady.reduce((a, s) => a + (s.minutes - mx) * (s.rssMB - my), 0) / Math.max(1e-12, steady.reduce((a, s) => a + (s.minutes - mx) ** 2, 0));
const summary = {
  minutes,
  iterations,
  rssFirstMB: steady[0]?.rssMB,
  rssLastMB: steady[n - 1]?.rssMB,
  rssMaxMB: Math.max(...samples.map((s) => s.rssMB)),
  rssSlopeMBPerHour: slope * 60,
  handlesFirst: steady[0]?.handles,
  handlesLast: steady[n - 1]?.handles,
};
console.log(`soak summary: ${JSON.stringify(summary)}`);
