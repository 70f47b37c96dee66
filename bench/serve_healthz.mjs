#!/usr/bin/env node
// /healthz latency of `acdc serve` while the heaviest request its default
// limits allow runs: `node bench/serve_healthz.mjs [--atoms 110000]
// [--accept json|npy] [--build]`. The request is a per-atom SOAP power
// spectrum of fcc copper (default hypers: 448 columns, so 110 000 atoms give
// 49.3 M values, just under the default maxFeatures of 50 M) answered as JSON
// (the most work for the event loop); `--build` sends instead a calculator of
// max_angular 30, max_radial 23, spline_accuracy 1e-12 (seconds to build).
// /healthz is polled every 20 ms from another process-free client loop; prints
// the worst and 99th-percentile latency, the request's status and time, and
// the server's peak RSS. The machine's load is printed with the numbers: on a
// shared machine the latency measures the scheduler as much as the server.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const k = args.indexOf(`--${name}`);
  return k >= 0 ? args[k + 1] : fallback;
};
const atoms = Number(arg('atoms', '110000'));
const accept = arg('accept', 'json');
const build = args.includes('--build');
const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');

/** fcc copper, a = 3.61 Å, n×n×m conventional cells (4 atoms each), at least `atoms` atoms, trimmed to exactly `atoms` in one periodic frame. */
function copper(count) {
  const cells = Math.ceil(Math.cbrt(count / 4));
  const a = 3.61;
  const basis = [
    [0, 0, 0],
    [0.5, 0.5, 0],
    [0.5, 0, 0.5],
    [0, 0.5, 0.5],
  ];
  const lines = [];
  for (let i = 0; i < cells && lines.length < count; i++)
    for (let j = 0; j < cells && lines.length < count; j++)
      for (let k = 0; k < cells && lines.length < count; k++)
        for (const b of basis) if (lines.length < count) lines.push(`Cu ${((i + b[0]) * a).toFixed(4)} ${((j + b[1]) * a).toFixed(4)} ${((k + b[2]) * a).toFixed(4)}`);
  const L = cells * a;
  return `${lines.length}\nLattice="${L} 0 0 0 ${L} 0 0 0 ${L}" pbc="T T T"\n${lines.join('\n')}\n`;
}

function rssMiB(pid) {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
  } catch {
    return NaN;
  }
}

const child = spawn(process.execPath, [cli, 'serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve, reject) => {
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
    if (m) resolve(Number(m[1]));
  });
  child.on('exit', (code) => reject(new Error(`acdc serve exited with ${code}`)));
});

const body = build
  ? JSON.stringify({
      structures: '3\nPBC="F F F"\nO 0 0 0\nH 0.76 0.59 0\nH -0.76 0.59 0\n',
      hypers: {
        cutoff: { radius: 5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
        density: { type: 'Gaussian', width: 0.3 },
        basis: { type: 'TensorProduct', max_angular: 30, radial: { type: 'Gto', max_radial: 23 }, spline_accuracy: 1e-12 },
      },
      options: { perStructure: 'sum' },
    })
  : copper(atoms);
const t0 = performance.now();
let status = 0;
let bytes = 0;
let done = false;
const work = new Promise((resolve) => {
  const req = http.request(
    { host: '127.0.0.1', port, method: 'POST', path: '/v1/featurize', agent: false, headers: { 'content-type': build ? 'application/json' : 'text/plain', accept: accept === 'npy' ? 'application/octet-stream' : 'application/json' } },
    (res) => {
      status = res.statusCode;
      res.on('data', (c) => (bytes += c.length));
      res.on('end', resolve);
    },
  );
  req.on('error', (e) => {
    status = `error ${e.message}`;
    resolve();
  });
  req.end(body);
}).then(() => (done = true));

const latencies = [];
let peak = 0;
while (!done) {
  const t = performance.now();
  await new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', resolve);
  });
  latencies.push(performance.now() - t);
  peak = Math.max(peak, rssMiB(child.pid));
  await new Promise((r) => setTimeout(r, 20));
}
await work;
child.kill('SIGTERM');
latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
console.log(
  JSON.stringify({
    request: build ? 'calculator build (l 30, n 23, 1e-12)' : `${atoms} Cu atoms per-atom, ${accept}`,
    status,
    answerBytes: bytes,
    requestSeconds: Number(((performance.now() - t0) / 1000).toFixed(1)),
    healthzPolls: latencies.length,
    healthzWorstMs: Number(latencies.at(-1).toFixed(1)),
    healthzP99Ms: Number(q(0.99).toFixed(1)),
    healthzMedianMs: Number(q(0.5).toFixed(1)),
    serverPeakRssMiB: Math.round(peak),
    load: os.loadavg().map((x) => x.toFixed(1)).join(' '),
    cpus: os.cpus().length,
  }),
);
