#!/usr/bin/env node
// Service throughput (not a test): `acdc serve` on a free loopback port
// against the same work in this process through the library function the
// server runs (featurizeText: extended XYZ text in, .npy bytes out), on the
// same thread count and the same number of requests computed at once. The
// request: 64 molecules (soap_power_spectrum, per-structure mean, .npy
// answer of 9 MB).
//
// The load comes from bench/serve_client.mjs in a process of its own:
// keep-alive connections that read the answers into one reused buffer and
// discard them. Its CPU is reported apart from the server's (the server's
// from its /metrics, all threads), and so is the library's per call: on a
// machine where the client shares the cores with the server, requests/s
// alone mixes the three.
//
//   node bench/serve.mjs [--seconds 15] [--threads 2] [--concurrency N] [--connections 2N]
//
// --concurrency: requests computed at once, by the server and by the
// library (default: the cores); --connections: client connections (default
// twice that, so that one answer travels while the next is computed).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const k = args.indexOf(`--${name}`);
  return k >= 0 ? Number(args[k + 1]) : fallback;
};
const cores = os.availableParallelism?.() ?? os.cpus().length;
const seconds = arg('seconds', 15);
const threads = arg('threads', 2);
const concurrency = arg('concurrency', cores);
const connections = arg('connections', 2 * concurrency);
// the library's pool: set before the binding loads
process.env.ACDC_NUM_THREADS = String(threads);
const acdc = require(root);
const { featurizeText } = require(path.join(root, 'dist', 'featurize', 'text.js'));
const { makeCalculator } = require(path.join(root, 'dist', 'featurize', 'index.js'));

const frames = acdc.readXyzSync(path.join(root, 'examples', 'molecules.xyz')).slice(0, 64);
const body = acdc.formatXyz(frames);
const atoms = frames.reduce((n, f) => n + f.size, 0);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-bench-serve-'));
const bodyFile = path.join(dir, 'request.xyz');
fs.writeFileSync(bodyFile, body);
const load0 = os.loadavg();

const server = spawn(process.execPath, [cli, 'serve', '--port', '0', '--threads', String(threads), '--concurrency', String(concurrency), '--queue-size', String(Math.max(16, connections))], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d) => {
    out += d;
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
    if (m) resolve(Number(m[1]));
  });
  server.on('exit', (code) => reject(new Error(`acdc serve exited with ${code}`)));
});
const target = '/v1/featurize?perStructure=mean';
const url = `http://127.0.0.1:${port}${target}`;
const headers = { 'content-type': 'text/plain', accept: 'application/octet-stream' };
const metric = async (name) => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)[1]);
};
const timing = (h, name) => Number(new RegExp(`${name};dur=([\\d.]+)`).exec(h ?? '')?.[1] ?? NaN);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const client = (conns, secs) =>
  new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(here, 'serve_client.mjs'), String(port), target, bodyFile, String(conns), String(secs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`serve_client exited ${code}`))));
  });

// warm-up (the calculator is built on the first request)
const first = await fetch(url, { method: 'POST', headers, body });
if (!first.ok) throw new Error(`status ${first.status}: ${await first.text()}`);
const answerBytes = (await first.arrayBuffer()).byteLength;
// one request at a time: the server's own time (server-timing) against the client's
const sequential = { featurize: [], total: [] };
for (let k = 0; k < 8; k++) {
  const r = await fetch(url, { method: 'POST', headers, body });
  await r.arrayBuffer();
  sequential.featurize.push(timing(r.headers.get('server-timing'), 'featurize'));
  sequential.total.push(timing(r.headers.get('server-timing'), 'total'));
}
const one = await client(1, Math.min(5, seconds));

// the server's user and system CPU seconds (all threads), from /proc where there is one
const procTimes = (pid) => {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return { user: Number(f[11]) / 100, system: Number(f[12]) / 100 };
  } catch {
    return { user: NaN, system: NaN };
  }
};
// under load
const proc0 = procTimes(server.pid);
const cpu0 = await metric('acdc_process_cpu_seconds_total');
const load = await client(connections, seconds);
const serverCpu = (await metric('acdc_process_cpu_seconds_total')) - cpu0;
const proc1 = procTimes(server.pid);
server.kill('SIGTERM');
if (load.failures > 0) throw new Error(`${load.failures} failed requests (${load.lastError})`);

// in process: `concurrency` calls at once, each reusing its own answer buffer as the server does
const slots = Array.from({ length: concurrency }, () => null);
const allocate = (c) => (bytes) => (slots[c] !== null && slots[c].length >= bytes ? slots[c] : (slots[c] = Buffer.allocUnsafeSlow(bytes)));
// the calculator built once and reused, as the server keeps its calculators
// (building one costs more than a request's featurization)
const calculatorInstance = makeCalculator('soap_power_spectrum');
const call = (c) => featurizeText(body, { calculator: 'soap_power_spectrum', calculatorInstance, perStructure: 'mean', batch: 64, allocate: allocate(c) });
await call(0);
let calls = 0;
const libDeadline = Date.now() + seconds * 1000;
const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
await Promise.all(
  Array.from({ length: concurrency }, async (_, c) => {
    while (Date.now() < libDeadline) {
      await call(c);
      calls += 1;
    }
  }),
);
const libSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
const c1 = process.cpuUsage(c0);
const libSystem = c1.system / 1e6 / calls;
const libCpu = (c1.user + c1.system) / 1e6 / calls;
fs.rmSync(dir, { recursive: true, force: true });

const servedRate = load.requests / load.seconds;
const libRate = calls / libSeconds;
const serverPer = serverCpu / load.requests;
const clientPer = load.cpuSeconds / load.requests;
const ms = (s) => (s * 1000).toFixed(1);
console.log(`request: ${frames.length} molecules (${atoms} atoms), soap_power_spectrum --per-structure mean, .npy answer of ${(answerBytes / 1e6).toFixed(1)} MB (${body.length} bytes in)`);
console.log(`machine: ${cores} cores (${os.cpus()[0]?.model}), load average before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; ${threads} threads; ${concurrency} computed at once (server --concurrency, library calls at once); ${connections} client connections; ${seconds} s each`);
console.log('| | requests/s | p50 ms | p99 ms | atoms/s | CPU ms per request |');
console.log('|---|---|---|---|---|---|');
console.log(`| acdc serve (${load.requests} requests) | ${servedRate.toFixed(2)} | ${load.p50.toFixed(0)} | ${load.p99.toFixed(0)} | ${(servedRate * atoms).toFixed(0)} | server ${ms(serverPer)} + client ${ms(clientPer)} |`);
console.log(`| library in process, featurizeText (${calls} calls) | ${libRate.toFixed(2)} | | | ${(libRate * atoms).toFixed(0)} | ${ms(libCpu)} |`);
console.log(`one connection: ${(one.requests / one.seconds).toFixed(2)} requests/s, p50 ${one.p50.toFixed(1)} ms (server: featurize ${median(sequential.featurize).toFixed(1)} ms, total ${median(sequential.total).toFixed(1)} ms, medians of 8); client CPU ${ms(one.cpuSeconds / one.requests)} ms per answer`);
console.log(`system CPU ms per request (kernel: socket writes, page faults): server ${ms((proc1.system - proc0.system) / load.requests)} of ${ms(serverPer)}; library ${ms(libSystem)} of ${ms(libCpu)}`);
console.log(`served / in-process throughput: ${(servedRate / libRate).toFixed(2)}× (wall clock, client on the same cores)`);
console.log(`CPU per request: server / library ${(serverPer / libCpu).toFixed(2)}; (server + client) / library ${((serverPer + clientPer) / libCpu).toFixed(2)}: on a CPU-bound machine, served throughput ≈ library × ${(libCpu / serverPer).toFixed(2)} with the client elsewhere, × ${(libCpu / (serverPer + clientPer)).toFixed(2)} with it on the same cores`);
