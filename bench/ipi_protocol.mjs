#!/usr/bin/env node
// The i-PI driver's per-message work without the socket (issue 27): decode
// a POSDATA (cell + N positions, Bohr → Å), build the System, encode the
// FORCEREADY reply (eV → Hartree), for N = 64, 1 000, 8 000 atoms, as the
// driver does it (after the first step the System is not validated again
// while the cell stays the same; the reply Buffer is reused). Prints the
// first call (cold: V8 has not compiled anything yet, as on an MD run's
// first step), the sum of the first 11 (a 10-step run) and the median of
// calls 1 000–3 000 (steady state), in µs. One process per size and
// repetition; the cold numbers are the smallest over the processes (on a
// loaded machine a lost time slice lands on one call at random), the steady
// ones the median.
//
//   node bench/ipi_protocol.mjs [--atoms 64,1000,8000] [--procs 5]
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const SELF = fileURLToPath(import.meta.url);
// the driver's internals (not exported by the package), from this checkout's build
const DIST = new URL('../dist/', import.meta.url);
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

if (process.argv[2] === '--child') {
  const n = Number(process.argv[3]);
  const P = require(fileURLToPath(new URL('drivers/ipi_protocol.js', DIST)));
  const S = require(fileURLToPath(new URL('system.js', DIST)));
  const cellBytes = Buffer.alloc(144);
  for (let k = 0; k < 3; k++) cellBytes.writeDoubleLE(20.5, 8 * 4 * k);
  for (let k = 0; k < 3; k++) cellBytes.writeDoubleLE(1 / 20.5, 72 + 8 * 4 * k);
  // positions at an odd offset in a larger chunk, as a socket read leaves them
  const chunk = Buffer.alloc(24 * n + 13);
  const positionBytes = chunk.subarray(5, 5 + 24 * n);
  for (let k = 0; k < 3 * n; k++) positionBytes.writeDoubleLE(20 * ((k * 0.618034) % 1), 8 * k);
  const types = new Int32Array(n).fill(14);
  const forces = new Float64Array(3 * n).fill(0.1);
  const stress = new Float64Array(9).fill(0.01);
  const checked = typeof S.checkedSystem === 'function';
  const rows = [];
  let validated = false;
  let spare = null;
  for (let it = 0; it < 3000; it++) {
    const t0 = process.hrtime.bigint();
    const cell = P.decodeCell(cellBytes);
    const positions = P.decodePositions(positionBytes, n);
    const volume = P.cellVolume(cell);
    const s = checked && validated ? S.checkedSystem(types.slice(), positions, cell, [true, true, true]) : new S.System({ types, positions, cell, pbc: true });
    validated = true;
    const t1 = process.hrtime.bigint();
    spare = P.encodeForceReady({ energy: -1, forces, stress, volume, extra: '' }, n, spare);
    const t2 = process.hrtime.bigint();
    if (s.size !== n) throw new Error('bad system');
    rows.push([Number(t1 - t0) / 1e3, Number(t2 - t1) / 1e3]);
  }
  const total = (r) => r[0] + r[1];
  console.log(JSON.stringify({
    atoms: n,
    first: total(rows[0]),
    first11: rows.slice(0, 11).reduce((a, r) => a + total(r), 0),
    steadyDecode: median(rows.slice(1000).map((r) => r[0])),
    steadyEncode: median(rows.slice(1000).map((r) => r[1])),
  }));
  process.exit(0);
}

let sizes = [64, 1000, 8000];
const k = process.argv.indexOf('--atoms');
if (k > 0) sizes = process.argv[k + 1].split(',').map(Number);
const kp = process.argv.indexOf('--procs');
const procs = kp > 0 ? Number(process.argv[kp + 1]) : 5;
console.log(`load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log('| atoms | first call µs | first 11 calls µs | steady: decode + System µs | steady: encode µs |');
console.log('|---|---|---|---|---|');
for (const n of sizes) {
  const runs = [];
  for (let p = 0; p < procs; p++) {
    const r = spawnSync(process.execPath, [SELF, '--child', String(n)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    runs.push(JSON.parse(r.stdout.trim().split('\n').pop()));
  }
  const min = (f) => Math.min(...runs.map(f));
  const med = (f) => median(runs.map(f));
  console.log(`| ${n} | ${min((o) => o.first).toFixed(0)} | ${min((o) => o.first11).toFixed(0)} | ${med((o) => o.steadyDecode).toFixed(1)} | ${med((o) => o.steadyEncode).toFixed(1)} |`);
}
