#!/usr/bin/env node
// Soak of `acdc serve`: `node scripts/serve_soak.mjs --minutes 30 [--every 60]
// [--log FILE]`. Starts the server (with a model) and keeps 4 clients busy
// with a mix of requests: featurize as .npy, JSON and multipart, per atom and
// per structure, with default and custom hypers (built once, then cached),
// predictions with forces and stress, bad bodies (400), oversize answers
// refused before the work (422), clients that disconnect mid-request, and
// /healthz and /metrics. Every `--every` seconds it samples the server's RSS;
// at the end it prints the samples, a least-squares slope of RSS after the
// first quarter (MiB per hour), and the number of errors: answers other than
// the one each request expects, connection errors, a server that died.
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
const minutes = Number(arg('minutes', '30'));
const every = Number(arg('every', '60'));
const logFile = arg('log', undefined);
const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const model = path.join(root, 'examples', 'ipi', 'cu.acdc');
const molecules = fs.readFileSync(path.join(root, 'examples', 'molecules.xyz'), 'utf8');
const frames = molecules.split(/(?=^\d+\s*$)/m).filter((f) => f.trim() !== '');
const copper = fs.readFileSync(path.join(root, 'examples', 'emt-cu-test.xyz'), 'utf8').split(/(?=^\d+\s*$)/m)[0];

const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--model', model, '--max-memory', '1G'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ACDC_NUM_THREADS: '2' } });
let stderr = '';
child.stderr.on('data', (d) => (stderr += d));
const port = await new Promise((resolve, reject) => {
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
    if (m) resolve(Number(m[1]));
  });
  child.on('exit', (code) => reject(new Error(`acdc serve exited with ${code}: ${stderr}`)));
});

function send(method, url, body, headers, abortAfterMs) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: url, headers, agent: false }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => resolve(res.statusCode));
      res.on('error', () => resolve('response error'));
    });
    req.on('error', (e) => resolve(abortAfterMs !== undefined ? 'aborted' : `error ${e.code ?? e.message}`));
    if (abortAfterMs !== undefined) setTimeout(() => req.destroy(), abortAfterMs);
    req.end(body);
  });
}

const hypers = { cutoff: { radius: 4, smoothing: { type: 'ShiftedCosine', width: 0.5 } }, density: { type: 'Gaussian', width: 0.3 }, basis: { type: 'TensorProduct', max_angular: 4, radial: { type: 'Gto', max_radial: 4 } } };
const text = { 'content-type': 'text/plain' };
const json = { 'content-type': 'application/json' };
const kinds = [
  ['npy per structure', () => send('POST', '/v1/featurize?perStructure=mean', frames.slice(0, 20).join(''), { ...text, accept: 'application/octet-stream' }), 200],
  ['json per atom', () => send('POST', '/v1/featurize', frames.slice(0, 10).join(''), text), 200],
  ['multipart', () => send('POST', '/v1/featurize?perStructure=sum&dtype=float32', frames.slice(0, 10).join(''), { ...text, accept: 'multipart/mixed' }), 200],
  ['custom hypers', () => send('POST', '/v1/featurize', JSON.stringify({ structures: frames.slice(0, 5).join(''), hypers, options: { perStructure: 'mean' } }), json), 200],
  ['predict', () => send('POST', '/v1/predict?forces=true&stress=true', copper, text), 200],
  ['bad body', () => send('POST', '/v1/featurize', 'garbage\n', text), 400],
  ['too large', () => send('POST', '/v1/featurize', JSON.stringify({ structures: frames[0], options: { species: Array.from({ length: 2000 }, (_, k) => k + 1), perStructure: 'mean' } }), json), 422],
  ['disconnect', () => send('POST', '/v1/featurize', frames.slice(0, 60).join(''), text, 30), 'aborted'],
  ['healthz', () => send('GET', '/healthz', undefined, {}), 200],
  ['metrics', () => send('GET', '/metrics', undefined, {}), 200],
];

const end = Date.now() + minutes * 60_000;
const counts = Object.fromEntries(kinds.map(([k]) => [k, 0]));
const errors = [];
const samples = [];
const rss = () => {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024;
  } catch {
    return NaN;
  }
};
const t0 = Date.now();
const sample = () => {
  const s = { minute: Number(((Date.now() - t0) / 60_000).toFixed(2)), rssMiB: Number(rss().toFixed(1)), requests: Object.values(counts).reduce((a, b) => a + b, 0), errors: errors.length, load: os.loadavg()[0].toFixed(1) };
  samples.push(s);
  process.stderr.write(`serve soak: ${JSON.stringify(s)}\n`);
  if (logFile) fs.appendFileSync(logFile, JSON.stringify(s) + '\n');
};
sample();
const timer = setInterval(sample, every * 1000);
let k = 0;
async function client() {
  while (Date.now() < end && child.exitCode === null) {
    const [name, run, expected] = kinds[k++ % kinds.length];
    const got = await run();
    counts[name] += 1;
    // a disconnect may also lose the race and get its answer
    if (got !== expected && !(name === 'disconnect' && got === 200)) errors.push({ name, got, expected, minute: ((Date.now() - t0) / 60_000).toFixed(2) });
  }
}
await Promise.all([client(), client(), client(), client()]);
clearInterval(timer);
sample();
const alive = child.exitCode === null;
child.kill('SIGTERM');
const steady = samples.filter((s) => s.minute >= minutes / 4);
let slope = NaN;
if (steady.length >= 2) {
  const mx = steady.reduce((a, s) => a + s.minute, 0) / steady.length;
  const my = steady.reduce((a, s) => a + s.rssMiB, 0) / steady.length;
  slope = (steady.reduce((a, s) => a + (s.minute - mx) * (s.rssMiB - my), 0) / steady.reduce((a, s) => a + (s.minute - mx) ** 2, 0)) * 60;
}
console.log(
  JSON.stringify(
    {
      minutes,
      requests: counts,
      errors: errors.length,
      firstErrors: errors.slice(0, 10),
      serverAlive: alive,
      rssMiB: { first: samples[0].rssMiB, afterQuarter: steady[0]?.rssMiB, last: samples.at(-1).rssMiB, max: Math.max(...samples.map((s) => s.rssMiB)) },
      rssSlopeMiBPerHourAfterQuarter: Number(slope.toFixed(1)),
      cpus: os.cpus().length,
    },
    null,
    1,
  ),
);
process.exit(errors.length > 0 || !alive ? 1 : 0);
