#!/usr/bin/env node
// Service load test (not a test): `acdc serve` on a free loopback port,
// autocannon POSTing the same 64-molecule extended XYZ request
// (soap_power_spectrum, per-structure mean, .npy answer) for a fixed time;
// then the same work in this process through the library, for atoms/s:
// featurize to a file, and featurizeText in memory (what the server runs),
// with the CPU seconds per request of the server and per call in process.
//
//   node bench/serve.mjs [--seconds 15] [--connections 2] [--threads 2]
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const autocannon = require('autocannon');
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const k = args.indexOf(`--${name}`);
  return k >= 0 ? Number(args[k + 1]) : fallback;
};
const seconds = arg('seconds', 15);
const connections = arg('connections', 2);
const threads = arg('threads', 2);
process.env.ACDC_NUM_THREADS = String(threads);
const acdc = require(root);

const frames = acdc.readXyzSync(path.join(root, 'examples', 'molecules.xyz')).slice(0, 64);
const body = acdc.formatXyz(frames);
const atoms = frames.reduce((n, f) => n + f.size, 0);

// the server: `concurrency` = connections, so that every request computes at once
const server = spawn(process.execPath, [cli, 'serve', '--port', '0', '--threads', String(threads), '--concurrency', String(connections)], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d) => {
    out += d;
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
    if (m) resolve(Number(m[1]));
  });
  server.on('exit', (code) => reject(new Error(`acdc serve exited with ${code}`)));
});
const url = `http://127.0.0.1:${port}/v1/featurize?perStructure=mean`;
const headers = { 'content-type': 'text/plain', accept: 'application/octet-stream' };
// the server's CPU seconds (all its threads), from its Prometheus metrics
const serverCpu = async () => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(/^acdc_process_cpu_seconds_total (\S+)$/m.exec(text)[1]);
};
const timing = (h, name) => Number(new RegExp(`${name};dur=([\\d.]+)`).exec(h ?? '')?.[1] ?? NaN);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
// warm-up
await fetch(url, { method: 'POST', headers, body });
// sequential requests: the server's own time per request (server-timing) and the client's
const sequential = { featurize: [], total: [], client: [] };
for (let k = 0; k < 8; k++) {
  const t = process.hrtime.bigint();
  const r = await fetch(url, { method: 'POST', headers, body });
  await r.arrayBuffer();
  sequential.client.push(Number(process.hrtime.bigint() - t) / 1e6);
  sequential.featurize.push(timing(r.headers.get('server-timing'), 'featurize'));
  sequential.total.push(timing(r.headers.get('server-timing'), 'total'));
}
const cpu0 = await serverCpu();
const result = await autocannon({ url, method: 'POST', headers, body, connections, duration: seconds });
const cpuPerRequest = (await serverCpu() - cpu0) / result.requests.total;
// the same load from Node's fetch (undici): another client, to tell the
// client's cost of reading the answers from the server's
let fetched = 0;
const fetchStart = process.hrtime.bigint();
const deadline = Date.now() + seconds * 1000;
await Promise.all(
  Array.from({ length: connections }, async () => {
    while (Date.now() < deadline) {
      const r = await fetch(url, { method: 'POST', headers, body });
      if (!r.ok) throw new Error(`status ${r.status}`);
      await r.arrayBuffer();
      fetched += 1;
    }
  }),
);
const fetchSeconds = Number(process.hrtime.bigint() - fetchStart) / 1e9;
server.kill('SIGTERM');
if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx answers, ${result.errors} errors`);

// in process: the same request through the library function the server runs
// (featurize: extended XYZ file in, .npy out), on the same thread count
const { featurize } = require(path.join(root, 'dist', 'featurize', 'index.js'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-bench-serve-'));
const input = path.join(dir, 'request.xyz');
fs.writeFileSync(input, body);
const run = () => featurize(input, { calculator: 'soap_power_spectrum', perStructure: 'mean', out: path.join(dir, 'f.npy'), batch: 64, progress: false });
await run();
const n = Math.max(5, Math.round(result.requests.total / connections));
const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
// `connections` requests at once, as the load test had
for (let k = 0; k < n; k++) await Promise.all(Array.from({ length: connections }, run));
const inProcess = Number(process.hrtime.bigint() - t0) / 1e9;
const c1 = process.cpuUsage(c0);
const cpuPerCall = (c1.user + c1.system) / 1e6 / (n * connections);
// the in-memory library function the server runs for these calculators
// (extended XYZ text in, .npy bytes out), when this build has it
const { featurizeText } = require(path.join(root, 'dist', 'featurize', 'text.js'));
let memory = null;
if (typeof featurizeText === 'function') {
  // each of the `connections` calls at once reuses its own answer buffer, as the server does
  const slots = Array.from({ length: connections }, () => null);
  const allocate = (c) => (bytes) => (slots[c] !== null && slots[c].length >= bytes ? slots[c] : (slots[c] = Buffer.allocUnsafeSlow(bytes)));
  const runText = (_, c) => featurizeText(body, { calculator: 'soap_power_spectrum', perStructure: 'mean', batch: 64, allocate: allocate(c) });
  await runText(null, 0);
  const m0 = process.cpuUsage();
  const t1 = process.hrtime.bigint();
  for (let k = 0; k < n; k++) await Promise.all(Array.from({ length: connections }, runText));
  const s = Number(process.hrtime.bigint() - t1) / 1e9;
  const m1 = process.cpuUsage(m0);
  memory = { seconds: s, cpu: (m1.user + m1.system) / 1e6 / (n * connections) };
}
fs.rmSync(dir, { recursive: true, force: true });

const served = (result.requests.total * atoms) / result.duration;
const library = (n * connections * atoms) / inProcess;
console.log(`request: ${frames.length} molecules (${atoms} atoms), soap_power_spectrum --per-structure mean, .npy answer (${body.length} bytes in)`);
console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model}), load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; ${threads} threads, ${connections} connections, ${seconds} s`);
console.log('| | requests/s | p50 ms | p99 ms | atoms/s |');
console.log('|---|---|---|---|---|');
console.log(`| acdc serve (autocannon, ${result.requests.total} requests) | ${result.requests.average.toFixed(2)} | ${result.latency.p50} | ${result.latency.p99} | ${served.toFixed(0)} |`);
console.log(`| acdc serve (fetch loop, ${fetched} requests) | ${(fetched / fetchSeconds).toFixed(2)} | | | ${((fetched * atoms) / fetchSeconds).toFixed(0)} |`);
console.log(`| library in process (${n * connections} calls) | ${((n * connections) / inProcess).toFixed(2)} | | | ${library.toFixed(0)} |`);
if (memory) console.log(`| library in memory, featurizeText (${n * connections} calls) | ${((n * connections) / memory.seconds).toFixed(2)} | | | ${((n * connections * atoms) / memory.seconds).toFixed(0)} |`);
console.log(`sequential requests (8): server featurize ${median(sequential.featurize).toFixed(1)} ms, server total ${median(sequential.total).toFixed(1)} ms, client ${median(sequential.client).toFixed(1)} ms (medians)`);
console.log(`CPU seconds per request: server ${(cpuPerRequest * 1000).toFixed(1)} ms (all threads, under autocannon); library in process ${(cpuPerCall * 1000).toFixed(1)} ms${memory ? `, in memory ${(memory.cpu * 1000).toFixed(1)} ms` : ''}; server / library ${(cpuPerRequest / cpuPerCall).toFixed(2)}${memory ? `, server / in memory ${(cpuPerRequest / memory.cpu).toFixed(2)}` : ''}`);
const peer = memory ? (n * connections * atoms) / memory.seconds : library;
const peerName = memory ? 'featurizeText in memory, the function the server runs' : 'featurize to a file';
console.log(`service overhead against the library in process (${peerName}): ${((1 - served / peer) * 100).toFixed(1)} % (autocannon), ${((1 - (fetched * atoms) / fetchSeconds / peer) * 100).toFixed(1)} % (fetch) of its throughput; the clients run on the same cores as the server`);
