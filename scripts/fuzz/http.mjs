#!/usr/bin/env node
// HTTP body fuzzer of `acdc serve`: `node scripts/fuzz/http.mjs [--count 2000]
// [--seed 1] [--client-timeout 30]`. Starts `acdc serve` (with a model, so that
// /v1/predict is fuzzed too) on a free loopback port and sends mutated requests:
// extended XYZ and JSON bodies with seeded byte flips, truncations, inserted
// bytes, spliced numbers (NaN, 1e308, -0, huge counts), odd and deeply nested
// JSON values, hyper-parameters pushed to extremes, long species lists, random
// content types, query parameters and Host/Origin headers. Every answer must be
// one of the statuses the server documents (never 500), /healthz must answer
// after every request, and the server must stay alive. Prints counts per
// status, the slowest request, the server's peak RSS, and the failures (with
// the seed and index to replay them); exit code 1 when any.
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
const count = Number(arg('count', '2000'));
const seed0 = Number(arg('seed', '1'));
const clientTimeout = Number(arg('client-timeout', '30')) * 1000;
const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const model = path.join(root, 'examples', 'ipi', 'cu.acdc');
const DOCUMENTED = new Set([200, 400, 403, 404, 408, 413, 415, 422, 431, 503]);

// xorshift32: reproducible mutations
let state = seed0 >>> 0 || 1;
const rand = () => {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 2 ** 32;
};
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const int = (n) => Math.floor(rand() * n);

const molecules = fs.readFileSync(path.join(root, 'examples', 'molecules.xyz'), 'utf8');
const frames = molecules.split(/(?=^\d+\s*$)/m).filter((f) => f.trim() !== '');
const copper = fs.readFileSync(path.join(root, 'examples', 'emt-cu-test.xyz'), 'utf8').split(/(?=^\d+\s*$)/m)[0];
const hypers = () => ({
  cutoff: { radius: 4, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 3, radial: { type: 'Gto', max_radial: 3 } },
});
const weird = [NaN, Infinity, -1, 0, -0, 1e308, 1e-308, 2 ** 31, 2 ** 53 + 1, 1e12, 0.5, '3', null, true, [], {}, '', 'x'.repeat(1000)];

function mutateText(text) {
  let b = Buffer.from(text, 'utf8');
  const kind = int(6);
  if (kind === 0) for (let k = 0; k < 1 + int(8); k++) b[int(b.length)] = int(256);
  else if (kind === 1) b = b.subarray(0, int(b.length));
  else if (kind === 2) {
    const at = int(b.length);
    b = Buffer.concat([b.subarray(0, at), Buffer.from(String(pick(weird))), b.subarray(at)]);
  } else if (kind === 3) {
    // a number replaced
    const s = b.toString('utf8');
    const nums = [...s.matchAll(/-?\d+(\.\d+)?/g)];
    if (nums.length) {
      const m = pick(nums);
      b = Buffer.from(s.slice(0, m.index) + String(pick(weird)) + s.slice(m.index + m[0].length));
    }
  } else if (kind === 4) b = Buffer.concat([b, b.subarray(0, int(b.length))]);
  return b;
}

function mutateValue(v, depth = 0) {
  if (depth > 6) return v;
  if (Array.isArray(v)) {
    const out = v.map((x) => (rand() < 0.1 ? mutateValue(x, depth + 1) : x));
    if (rand() < 0.05) out.push(pick(weird));
    if (rand() < 0.05) out.splice(int(out.length + 1), 1);
    return out;
  }
  if (v !== null && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) {
      if (rand() < 0.05) continue;
      out[k] = rand() < 0.3 ? mutateValue(x, depth + 1) : x;
    }
    if (rand() < 0.05) out[pick(['extra', 'max_angular', 'type', '__proto__', 'constructor'])] = pick(weird);
    return out;
  }
  return rand() < 0.3 ? pick(weird) : v;
}

function deep(n) {
  return '['.repeat(n) + ']'.repeat(n);
}

function makeRequest(i) {
  const route = rand() < 0.75 ? '/v1/featurize' : '/v1/predict';
  const xyz = route === '/v1/predict' ? copper : frames.slice(0, 1 + int(6)).join('');
  const headers = {};
  let body;
  let query = '';
  const style = int(10);
  if (style <= 3) {
    headers['content-type'] = pick(['text/plain', 'chemical/x-xyz', 'application/octet-stream', 'text/x-xyz']);
    body = mutateText(xyz);
    if (route === '/v1/featurize') query = pick(['', '?perStructure=mean', '?perStructure=sum&dtype=float32', '?calculator=soap_radial_spectrum', `?species=${pick(['1,6,7,8', '1', '-1', '0,1e9', Array.from({ length: 500 }, (_, k) => k + 1).join(',')])}`, `?hypers=${encodeURIComponent(JSON.stringify(mutateValue(hypers())))}`, '?foo=bar', `?hypers=${encodeURIComponent(deep(40))}`]);
    else query = pick(['', '?forces=true', '?stress=true&forces=1', '?variance=true', '?forces=maybe']);
  } else if (style <= 7) {
    headers['content-type'] = 'application/json';
    const structures = rand() < 0.5 ? xyz : frames.slice(0, 2).map(() => ({ types: [8, 1, 1], positions: [0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0] }));
    const doc = route === '/v1/featurize' ? { structures, hypers: hypers(), options: { perStructure: 'mean' } } : { structures, options: { forces: true } };
    let mutated = mutateValue(doc);
    if (rand() < 0.05 && route === '/v1/featurize') mutated = { ...mutated, hypers: JSON.parse('{"a":'.repeat(200) + '1' + '}'.repeat(200)) };
    if (rand() < 0.05 && route === '/v1/featurize') mutated = { structures: xyz, options: { species: Array.from({ length: 1000 + int(3000) }, (_, k) => k + 1), perStructure: 'mean' } };
    if (rand() < 0.05 && route === '/v1/featurize') {
      const h = hypers();
      h.basis.max_angular = 10 + int(40);
      h.basis.radial.max_radial = 10 + int(40);
      h.basis.spline_accuracy = pick([1e-12, 1e-10, 1e-6]);
      mutated = { structures: xyz, hypers: h, options: { perStructure: 'sum' } };
    }
    body = rand() < 0.5 ? Buffer.from(JSON.stringify(mutated)) : mutateText(JSON.stringify(mutated));
  } else if (style === 8) {
    headers['content-type'] = pick(['image/png', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', 'application/json; charset=latin1']);
    body = mutateText(xyz);
  } else {
    headers['content-type'] = 'text/plain';
    body = Buffer.from(xyz);
    const h = int(4);
    if (h === 0) headers.host = pick(['evil.example', 'localhost.evil.example', '127.0.0.1.nip.io', '[::2]', '']);
    else if (h === 1) headers.origin = pick(['https://evil.example', 'null', 'file://', 'http://127.0.0.1:1']);
    else if (h === 2) headers.accept = pick(['multipart/mixed', 'application/octet-stream', 'application/json', '*/*']);
  }
  return { i, route, query, headers, body };
}

function send(port, r) {
  return new Promise((resolve) => {
    const t = performance.now();
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: r.route + r.query, headers: { ...r.headers, 'content-length': r.body.length }, agent: false, timeout: clientTimeout }, (res) => {
      let bytes = 0;
      res.on('data', (c) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t, bytes }));
      res.on('error', (e) => resolve({ status: `response error ${e.code ?? e.message}`, ms: performance.now() - t }));
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (e) => resolve({ status: e.message === 'client timeout' ? 'client timeout' : `error ${e.code ?? e.message}`, ms: performance.now() - t }));
    req.end(r.body);
  });
}

function healthz(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

function rssMiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

async function main() {
  if (!fs.existsSync(cli)) {
    console.error('fuzz/http: run `npm run build` first (dist/cli/main.js is missing)');
    process.exit(2);
  }
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--model', model, '--max-memory', '1G', '--request-timeout', '10'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ACDC_NUM_THREADS: '2' } });
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
  const counts = new Map();
  const failures = [];
  let slowest = { ms: 0 };
  let peak = 0;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const r = makeRequest(i);
    const a = await send(port, r);
    counts.set(a.status, (counts.get(a.status) ?? 0) + 1);
    if (a.ms > slowest.ms) slowest = { ms: a.ms, i, route: r.route, status: a.status };
    peak = Math.max(peak, rssMiB(child.pid));
    const documented = DOCUMENTED.has(a.status) || a.status === 'client timeout';
    if (!documented) failures.push({ i, status: a.status, route: r.route, query: r.query.slice(0, 200), headers: r.headers });
    if (child.exitCode !== null || child.signalCode !== null) {
      failures.push({ i, status: `server died (${child.exitCode ?? child.signalCode}): ${stderr.slice(-500)}` });
      break;
    }
    if (!(await healthz(port))) failures.push({ i, status: '/healthz did not answer' });
    if ((i + 1) % 100 === 0) process.stderr.write(`fuzz/http: ${i + 1}/${count}, ${failures.length} failures, peak RSS ${peak.toFixed(0)} MiB\n`);
  }
  const alive = child.exitCode === null && child.signalCode === null;
  child.kill('SIGTERM');
  const summary = {
    seed: seed0,
    requests: [...counts.values()].reduce((a, b) => a + b, 0),
    statuses: Object.fromEntries([...counts].sort((a, b) => String(a[0]).localeCompare(String(b[0])))),
    failures: failures.length,
    serverAlive: alive,
    peakRssMiB: Math.round(peak),
    slowest: { ...slowest, ms: Math.round(slowest.ms) },
    seconds: Math.round((performance.now() - t0) / 1000),
    node: process.version,
    host: `${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(1)}`,
  };
  console.log(JSON.stringify(summary, null, 1));
  for (const f of failures.slice(0, 20)) console.log(JSON.stringify(f));
  process.exit(failures.length > 0 ? 1 : 0);
}

main().catch((e) => {
  console.error(`fuzz/http: ${e.message}`);
  process.exit(2);
});
