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
// Each transport (loopback TCP, and a unix domain socket: `acdc serve
// --socket`) is also measured with a bare node:http server that answers the
// same bytes to the same client (bench/serve_floor.mjs): what moving the
// answer costs with no work behind it, so that the server's CPU per request
// splits into library + transport + the rest (Fastify, checks, event loop).
//
//   node bench/serve.mjs [--seconds 15] [--threads 2] [--concurrency N] [--connections 2N] [--transports tcp,unix] [--dtype float64|float32] [--client node|splice]
//
// --client splice: the load comes from bench/serve_client_splice.py instead
// (python3 from PATH, or $PYTHON; Linux, Python >= 3.10), which moves each
// answer's body to /dev/null with splice(2) instead of copying it into the
// client: the cheapest client there is for the CPU it shares with the server.
//
// --dtype float32: the answer at half the bytes (the same on both sides), to
// see how the service's ratio follows the size of what it sends.
//
// --concurrency: requests computed at once, by the server and by the
// library (default: the cores); --connections: client connections (default
// twice that, so that one answer travels while the next is computed).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
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
const clientKind = args.includes('--client') ? args[args.indexOf('--client') + 1] : 'node';
if (!['node', 'splice'].includes(clientKind)) throw new Error(`--client: node or splice, got ${clientKind}`);
const dtype = args.includes('--dtype') ? args[args.indexOf('--dtype') + 1] : 'float64';
if (!['float64', 'float32'].includes(dtype)) throw new Error(`--dtype: float64 or float32, got ${dtype}`);
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
const answerFile = path.join(dir, 'answer.npy');
fs.writeFileSync(bodyFile, body);
const load0 = os.loadavg();

const transports = (args.includes('--transports') ? args[args.indexOf('--transports') + 1] : 'tcp,unix').split(',');
for (const t of transports) if (!['tcp', 'unix'].includes(t)) throw new Error(`--transports: tcp, unix or both (comma-separated), got ${t}`);
const target = `/v1/featurize?perStructure=mean${dtype === 'float64' ? '' : `&dtype=${dtype}`}`;
const headers = { 'content-type': 'text/plain', accept: 'application/octet-stream' };
const timing = (h, name) => Number(new RegExp(`${name};dur=([\\d.]+)`).exec(h ?? '')?.[1] ?? NaN);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
// the server's user and system CPU seconds (all threads), from /proc where there is one
const procTimes = (pid) => {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return { user: Number(f[11]) / 100, system: Number(f[12]) / 100 };
  } catch {
    return { user: NaN, system: NaN };
  }
};
// one HTTP request over TCP (`at`: a port) or a unix socket (`at`: unix:PATH); fetch has no unix sockets
const request = (at, method, target, body) =>
  new Promise((resolve, reject) => {
    const where = String(at).startsWith('unix:') ? { socketPath: String(at).slice(5) } : { host: '127.0.0.1', port: at };
    const r = http.request({ ...where, method, path: target, headers: body === undefined ? {} : headers, agent: false }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(body);
  });
// a child process printing "listening on http://127.0.0.1:PORT" or "listening on unix:PATH": that address
const listening = (child) =>
  new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (?:http:\/\/127\.0\.0\.1:(\d+)|(unix:\S+?))[\s(]/.exec(out);
      if (m) resolve(m[1] !== undefined ? Number(m[1]) : m[2]);
    });
    child.on('exit', (code) => reject(new Error(`${child.spawnargs.slice(1, 3).join(' ')} exited with ${code}`)));
  });
const client = (at, conns, secs) =>
  new Promise((resolve, reject) => {
    const clientArgs = [String(at), target, bodyFile, String(conns), String(secs)];
    const p =
      clientKind === 'splice'
        ? spawn(process.env.PYTHON ?? 'python3', [path.join(here, 'serve_client_splice.py'), ...clientArgs], { stdio: ['ignore', 'pipe', 'inherit'] })
        : spawn(process.execPath, [path.join(here, 'serve_client.mjs'), ...clientArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`serve_client exited ${code}`))));
  });
const stop = (child) => new Promise((resolve) => (child.exitCode !== null ? resolve() : (child.once('exit', resolve), child.kill('SIGTERM'))));

const served = {};
let answerBytes = 0;
for (const transport of transports) {
  const socket = path.join(dir, 'acdc.sock');
  const where = transport === 'unix' ? ['--socket', socket] : ['--port', '0'];
  const server = spawn(process.execPath, [cli, 'serve', ...where, '--threads', String(threads), '--concurrency', String(concurrency), '--queue-size', String(Math.max(16, connections))], { stdio: ['ignore', 'pipe', 'inherit'] });
  const at = await listening(server);
  const metric = async (name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec((await request(at, 'GET', '/metrics')).body.toString())[1]);
  // warm-up (the calculator is built on the first request)
  const first = await request(at, 'POST', target, body);
  if (first.status !== 200) throw new Error(`status ${first.status}: ${first.body}`);
  answerBytes = first.body.length;
  fs.writeFileSync(answerFile, first.body);
  // one request at a time: the server's own time (server-timing) against the client's
  const sequential = { featurize: [], total: [] };
  for (let k = 0; k < 8; k++) {
    const r = await request(at, 'POST', target, body);
    sequential.featurize.push(timing(r.headers['server-timing'], 'featurize'));
    sequential.total.push(timing(r.headers['server-timing'], 'total'));
  }
  const one = await client(at, 1, Math.min(5, seconds));
  // under load
  const proc0 = procTimes(server.pid);
  const cpu0 = await metric('acdc_process_cpu_seconds_total');
  const load = await client(at, connections, seconds);
  const serverCpu = (await metric('acdc_process_cpu_seconds_total')) - cpu0;
  const proc1 = procTimes(server.pid);
  await stop(server);
  if (load.failures > 0) throw new Error(`${load.failures} failed requests (${load.lastError})`);
  // the floor: a bare node:http server answering the same bytes to the same client
  const floorServer = spawn(process.execPath, [path.join(here, 'serve_floor.mjs'), answerFile, ...(transport === 'unix' ? [socket] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const floorAt = await listening(floorServer);
  const f0 = procTimes(floorServer.pid);
  const floor = await client(floorAt, connections, Math.min(5, seconds));
  const f1 = procTimes(floorServer.pid);
  await stop(floorServer);
  served[transport] = { load, one, sequential, serverCpu, system: proc1.system - proc0.system, floor, floorCpu: f1.user + f1.system - f0.user - f0.system, floorSystem: f1.system - f0.system };
}

// in process: `concurrency` calls at once, each reusing its own answer buffer as the server does
const slots = Array.from({ length: concurrency }, () => null);
const allocate = (c) => (bytes) => (slots[c] !== null && slots[c].length >= bytes ? slots[c] : (slots[c] = Buffer.allocUnsafeSlow(bytes)));
// the calculator built once and reused, as the server keeps its calculators
// (building one costs more than a request's featurization)
const calculatorInstance = makeCalculator('soap_power_spectrum');
const call = (c) => featurizeText(body, { calculator: 'soap_power_spectrum', calculatorInstance, perStructure: 'mean', dtype, batch: 64, allocate: allocate(c) });
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

const libRate = calls / libSeconds;
const ms = (x) => (x * 1000).toFixed(1);
console.log(`request: ${frames.length} molecules (${atoms} atoms), soap_power_spectrum --per-structure mean --dtype ${dtype}, .npy answer of ${(answerBytes / 1e6).toFixed(1)} MB (${body.length} bytes in)`);
console.log(`machine: ${cores} cores (${os.cpus()[0]?.model}), load average before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; ${threads} threads; ${concurrency} computed at once (server --concurrency, library calls at once); ${connections} client connections (${clientKind === 'splice' ? 'bench/serve_client_splice.py: splice to /dev/null' : 'bench/serve_client.mjs'}); ${seconds} s each`);
console.log('| | requests/s | p50 ms | p99 ms | atoms/s | CPU ms per request |');
console.log('|---|---|---|---|---|---|');
for (const [transport, r] of Object.entries(served)) {
  const rate = r.load.requests / r.load.seconds;
  console.log(`| acdc serve, ${transport === 'unix' ? 'unix socket' : 'loopback TCP'} (${r.load.requests} requests) | ${rate.toFixed(2)} | ${r.load.p50.toFixed(0)} | ${r.load.p99.toFixed(0)} | ${(rate * atoms).toFixed(0)} | server ${ms(r.serverCpu / r.load.requests)} (system ${ms(r.system / r.load.requests)}) + client ${ms(r.load.cpuSeconds / r.load.requests)} |`);
  console.log(`| bare node:http, same answer bytes, ${transport === 'unix' ? 'unix socket' : 'loopback TCP'} (${r.floor.requests} requests) | ${(r.floor.requests / r.floor.seconds).toFixed(2)} | ${r.floor.p50.toFixed(0)} | ${r.floor.p99.toFixed(0)} | | server ${ms(r.floorCpu / r.floor.requests)} (system ${ms(r.floorSystem / r.floor.requests)}) + client ${ms(r.floor.cpuSeconds / r.floor.requests)} |`);
}
console.log(`| library in process, featurizeText (${calls} calls) | ${libRate.toFixed(2)} | | | ${(libRate * atoms).toFixed(0)} | ${ms(libCpu)} (system ${ms(libSystem)}) |`);
for (const [transport, r] of Object.entries(served)) {
  const rate = r.load.requests / r.load.seconds;
  const serverPer = r.serverCpu / r.load.requests;
  const clientPer = r.load.cpuSeconds / r.load.requests;
  const floorPer = r.floorCpu / r.floor.requests;
  console.log(`\n${transport}: one connection ${(r.one.requests / r.one.seconds).toFixed(2)} requests/s, p50 ${r.one.p50.toFixed(1)} ms (server: featurize ${median(r.sequential.featurize).toFixed(1)} ms, total ${median(r.sequential.total).toFixed(1)} ms, medians of 8); client CPU ${ms(r.one.cpuSeconds / r.one.requests)} ms per answer`);
  console.log(`${transport}: server CPU per request = library ${ms(libCpu)} + moving the answer (bare node:http) ${ms(floorPer)} + the rest (Fastify, checks, event loop) ${ms(serverPer - libCpu - floorPer)} ms`);
  console.log(`${transport}: served / in-process throughput ${(rate / libRate).toFixed(2)}× (wall clock, client on the same cores)`);
  console.log(`${transport}: CPU per request server / library ${(serverPer / libCpu).toFixed(2)}; (server + client) / library ${((serverPer + clientPer) / libCpu).toFixed(2)}: on a CPU-bound machine, served throughput ≈ library × ${(libCpu / serverPer).toFixed(2)} with the client elsewhere, × ${(libCpu / (serverPer + clientPer)).toFixed(2)} with it on the same cores`);
}
