#!/usr/bin/env node
// The i-PI driver's cost per step against the floor of any Node i-PI client
// (issue 27). A minimal Python server (bench/ipi_fake_server.py: STATUS,
// POSDATA, STATUS, GETFORCE a step, no integrator) drives, over a unix
// socket:
//   minimal  a Node client that answers from its 'data' handler with one
//            canned FORCEREADY (no decoding, no model): what the socket, the
//            event loop and Node's stream path cost alone;
//   canned   driveIpi with a model that returns one precomputed prediction
//            (predict and predictSync): the driver's protocol, no model;
//   model    driveIpi with the model itself, the JavaScript loop (--with-model);
//   native   driveIpi with the model itself, the native loop (loop 'native':
//            a thread of the binding owns the socket; --with-model);
//   alone    the model's predictSync in a loop, no socket (--with-model): its
//            CPU per step, to subtract from the two rows above.
// Each runs twice, for 100 and for --steps evaluations, in fresh processes;
// CPU time per step = the difference of the process's CPU time (user +
// system, all threads) over the difference of steps, so start-up cancels.
// Also the server's median round trip (POSDATA sent → FORCEREADY read).
//
//   ACDC_INTEROP_PYTHON=/path/bin/python node bench/ipi_floor.mjs [--steps 2100] [--reps 2]
//       [--xyz bench/.data/md-step/cell-2.xyz] [--model bench/.data/md-step/linear.acdc] [--with-model]
//
// The python needs numpy. The structure's comment line must hold Lattice="…".
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const SELF = fileURLToPath(import.meta.url);
const BENCH = path.dirname(SELF);

const cpuSeconds = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};

// ---- children -----------------------------------------------------------------
if (process.argv[2] === '--minimal') {
  const [socketPath, atoms] = process.argv.slice(3);
  const n = Number(atoms);
  const H = (s) => Buffer.from(s.padEnd(12, ' '), 'ascii');
  const reply = Buffer.alloc(12 + 8 + 4 + 24 * n + 72 + 4);
  H('FORCEREADY').copy(reply);
  reply.writeInt32LE(n, 20);
  let buf = Buffer.alloc(0);
  let init = false;
  let have = false;
  const sock = net.createConnection({ path: socketPath });
  sock.on('data', (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    for (;;) {
      if (buf.length < 12) return;
      const h = buf.toString('latin1', 0, 12).trim();
      let need = 12;
      if (h === 'INIT') {
        if (buf.length < 20) return;
        need = 20 + buf.readInt32LE(16);
      } else if (h === 'POSDATA') {
        if (buf.length < 160) return;
        need = 160 + 24 * buf.readInt32LE(156);
      }
      if (buf.length < need) return;
      buf = buf.subarray(need);
      if (h === 'STATUS') sock.write(H(!init ? 'NEEDINIT' : have ? 'HAVEDATA' : 'READY'));
      else if (h === 'INIT') init = true;
      else if (h === 'POSDATA') have = true;
      else if (h === 'GETFORCE') {
        sock.write(reply);
        have = false;
      } else if (h === 'EXIT') {
        sock.end();
        sock.on('close', () => console.log(JSON.stringify({ cpu: cpuSeconds() })));
        return;
      }
    }
  });
} else if (process.argv[2] === '--alone') {
  // the model's own CPU per step, no socket: the same predictSync calls in a loop
  const [steps, modelPath, xyz] = process.argv.slice(3);
  const acdc = require('acdc-ml');
  const m = acdc.loadModelSync(modelPath);
  const [s] = acdc.readXyzSync(xyz);
  const t = process.hrtime.bigint();
  for (let k = 0; k < Number(steps); k++) m.predictSync([s], { forces: true, stress: true });
  console.log(JSON.stringify({ cpu: cpuSeconds(), modelSeconds: Number(process.hrtime.bigint() - t) / 1e9, server: { round_trip_median_s: NaN } }));
} else if (process.argv[2] === '--driver') {
  const [socketPath, modelPath, xyz, kind] = process.argv.slice(3);
  const acdc = require('acdc-ml');
  const m = acdc.loadModelSync(modelPath);
  const [s] = acdc.readXyzSync(xyz);
  const p = m.predictSync([s], { forces: true, stress: true });
  const canned = { species: Array.from(new Set(s.types)), predict: async () => p, predictSync: () => p };
  const perStep = [];
  const how = kind === 'native' ? { loop: 'native' } : { loop: 'js', onStep: (x) => perStep.push(x.protocolSeconds) };
  const r = await acdc.driveIpi(kind === 'canned' ? canned : m, { unix: socketPath, species: s.types, timeout: 120, ...how });
  const later = perStep.slice(1).sort((a, b) => a - b);
  // the native loop reports sums only: the mean after the first evaluation
  const protocol = kind === 'native' ? (r.protocolSeconds - r.firstProtocolSeconds) / (r.steps - 1) : later[later.length >> 1];
  console.log(JSON.stringify({ cpu: cpuSeconds(), steps: r.steps, protocolMedian: protocol, modelSeconds: r.modelSeconds }));
} else {
  // ---- parent ------------------------------------------------------------------
  const arg = (name, fallback) => {
    const k = process.argv.indexOf(name);
    return k > 0 ? process.argv[k + 1] : fallback;
  };
  const steps = Number(arg('--steps', '2100'));
  const reps = Number(arg('--reps', '2'));
  const xyz = path.resolve(arg('--xyz', path.join(BENCH, '.data', 'md-step', 'cell-2.xyz')));
  const modelPath = path.resolve(arg('--model', path.join(BENCH, '.data', 'md-step', 'linear.acdc')));
  const python = process.env.ACDC_INTEROP_PYTHON;
  if (!python) throw new Error('set ACDC_INTEROP_PYTHON to a python with numpy');
  const atoms = Number(fs.readFileSync(xyz, 'utf8').split('\n')[0]);
  const kinds = ['minimal', 'canned', ...(process.argv.includes('--with-model') ? ['alone', 'model', 'native'] : [])];

  const once = async (kind, n) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-ipi-floor-'));
    const socketPath = path.join(dir, 'socket');
    try {
      const server = spawn(python, [path.join(BENCH, 'ipi_fake_server.py'), socketPath, xyz, String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let serverOut = '';
      server.stdout.on('data', (d) => (serverOut += d));
      const serverDone = new Promise((resolve) => server.on('exit', resolve));
      for (let k = 0; k < 100 && !fs.existsSync(socketPath); k++) await new Promise((r) => setTimeout(r, 50));
      if (kind === 'alone') {
        server.kill();
        await serverDone;
        const r = spawnSync(process.execPath, [SELF, '--alone', String(n), modelPath, xyz], { encoding: 'utf8', env: { ...process.env, ACDC_NUM_THREADS: process.env.ACDC_NUM_THREADS ?? '1' } });
        if (r.status !== 0) throw new Error(r.stderr);
        return JSON.parse(r.stdout.trim().split('\n').pop());
      }
      const args = kind === 'minimal' ? ['--minimal', socketPath, String(atoms)] : ['--driver', socketPath, modelPath, xyz, kind];
      const child = spawn(process.execPath, [SELF, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ACDC_NUM_THREADS: process.env.ACDC_NUM_THREADS ?? '1' } });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      const code = await new Promise((resolve) => child.on('exit', resolve));
      await serverDone;
      if (code !== 0) throw new Error(`${kind} child failed (${code})`);
      return { ...JSON.parse(out.trim().split('\n').pop()), server: JSON.parse(serverOut.trim().split('\n').pop()) };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  const load0 = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const rows = [];
  for (let r = 0; r < reps; r++) {
    for (const kind of kinds) {
      const short = await once(kind, 100);
      const long = await once(kind, steps);
      rows.push({
        kind,
        cpuPerStep: (long.cpu - short.cpu) / (steps - 100),
        modelPerStep: long.modelSeconds === undefined ? null : (long.modelSeconds - short.modelSeconds) / (steps - 100),
        roundTrip: long.server.round_trip_median_s,
        protocolPerStep: long.protocolMedian ?? null,
      });
    }
  }
  const load1 = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`${atoms} atoms, ${steps} vs 100 steps, ${reps} rep(s), unix socket, node ${process.version}, load average ${load0} before / ${load1} after`);
  console.log('');
  console.log('| client | CPU µs per step (each rep) | model µs per step (wall) | server round trip, median µs | driver protocol per step (js: median of IpiStep.protocolSeconds after the 1st; native: mean after the 1st), µs |');
  console.log('|---|---|---|---|---|');
  for (const kind of kinds) {
    const mine = rows.filter((x) => x.kind === kind);
    const us = (v) => (1e6 * v).toFixed(0);
    console.log(`| ${kind} | ${mine.map((x) => us(x.cpuPerStep)).join(', ')} | ${mine.map((x) => (x.modelPerStep === null ? '—' : us(x.modelPerStep))).join(', ')} | ${mine.map((x) => us(x.roundTrip)).join(', ')} | ${mine.map((x) => (x.protocolPerStep === null ? '—' : us(x.protocolPerStep))).join(', ')} |`);
  }
}
