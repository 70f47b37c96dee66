#!/usr/bin/env node
// i-PI driving speed: NVE steps per second with acdc as the force engine, and
// where the time goes (model, driver protocol, the rest = i-PI and the socket).
//
//   ACDC_INTEROP_PYTHON=/path/venv/bin/python node bench/ipi.mjs [--model FILE] [--steps N] [--sizes 108,864] [--transport unix|inet]
//
// For each size (fcc copper, a = 3.61 Å, 3×3×3 = 108 and 6×6×6 = 864 atoms)
// it starts i-PI 3.3.1 (the `i-pi` script next to the venv's python) on a
// fresh unix socket, drives it with driveIpi for N steps (default 100) and
// prints a row. Models:
// - `zero`: energy, forces, stress all 0 — the cost of i-PI plus the protocol;
// - the model in --model FILE (loaded with acdc's loadModel), when given.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const acdc = require('acdc-ml');

function parseArgs(argv) {
  const o = { model: null, steps: 100, sizes: [108, 864], transport: 'unix' };
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    const value = () => argv[++k];
    if (a === '--model') o.model = path.resolve(value());
    else if (a === '--steps') o.steps = Number(value());
    else if (a === '--sizes') o.sizes = value().split(',').map(Number);
    else if (a === '--transport') o.transport = value();
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

function fcc(repeat, a = 3.61) {
  const L = a * repeat;
  const basis = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]];
  const lines = [];
  let seed = 5;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.04;
  for (let i = 0; i < repeat; i++)
    for (let j = 0; j < repeat; j++)
      for (let k = 0; k < repeat; k++)
        for (const b of basis) lines.push(`Cu ${[(i + b[0]) * a + rnd(), (j + b[1]) * a + rnd(), (k + b[2]) * a + rnd()].map((v) => v.toFixed(8)).join(' ')}`);
  return `${lines.length}\n# CELL(abcABC): ${L} ${L} ${L} 90 90 90 positions{angstrom} cell{angstrom}\n${lines.join('\n')}\n`;
}

function input(socket, steps) {
  return `<simulation verbosity="low" safe_stride="100000">
  <output prefix="md"><properties stride="${steps}" filename="out">[ step, conserved{electronvolt}, temperature{kelvin} ]</properties></output>
  <total_steps>${steps}</total_steps>
  <prng><seed>12345</seed></prng>
  ${socket}
  <system>
    <initialize nbeads="1"><file mode="xyz">init.xyz</file><velocities mode="thermal" units="kelvin">300</velocities></initialize>
    <forces><force forcefield="acdc"/></forces>
    <ensemble><temperature units="kelvin">300</temperature></ensemble>
    <motion mode="dynamics"><dynamics mode="nve"><timestep units="femtosecond">1</timestep></dynamics></motion>
  </system>
</simulation>
`;
}

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

const zero = {
  species: [29],
  predict(systems) {
    return { energy: new Float64Array(systems.length), forces: systems.map((s) => new Float64Array(3 * s.size)), stress: systems.map(() => new Float64Array(9)) };
  },
};

async function run(python, model, atoms, steps, transport) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-ipi-bench-'));
  fs.writeFileSync(path.join(dir, 'init.xyz'), fcc(Math.round(Math.cbrt(atoms / 4))));
  const name = `acdc_bench_${process.pid}_${atoms}`;
  const port = await freePort();
  const socket =
    transport === 'unix'
      ? `<ffsocket name="acdc" mode="unix"><address>${name}</address><latency>1e-4</latency></ffsocket>`
      : `<ffsocket name="acdc" mode="inet"><address>127.0.0.1</address><port>${port}</port><latency>1e-4</latency></ffsocket>`;
  fs.writeFileSync(path.join(dir, 'input.xml'), input(socket, steps));
  const server = spawn(python, [path.join(path.dirname(python), 'i-pi'), 'input.xml'], { cwd: dir, stdio: 'ignore', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  const exited = new Promise((resolve) => server.on('exit', resolve));
  try {
    return await acdc.driveIpi(model, { ...(transport === 'unix' ? { unix: name } : { host: '127.0.0.1', port }), timeout: 600 });
  } finally {
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    server.kill();
    await exited;
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
  }
}

const o = parseArgs(process.argv.slice(2));
const python = process.env.ACDC_INTEROP_PYTHON;
if (!python) throw new Error('set ACDC_INTEROP_PYTHON to a python with ipi==3.3.1 (bash scripts/ci/interop-python.sh DIR)');
const models = [['zero', zero]];
if (o.model) models.push([path.basename(o.model), await acdc.loadModel(o.model)]);
console.log(`i-PI NVE, ${o.steps} steps, ${o.transport} socket, ${os.cpus().length} cores, node ${process.version}`);
console.log('| model | atoms | steps/s | ms/step | model ms/step | driver protocol ms/step (% of step) | rest (i-PI + socket) ms/step |');
console.log('|---|---|---|---|---|---|---|');
for (const [label, model] of models) {
  for (const atoms of o.sizes) {
    // the first evaluation (startup, warm-up) is not a step
    const r = await run(python, model, atoms, o.steps, o.transport);
    const n = r.steps;
    const ms = (1000 * r.seconds) / n;
    const modelMs = (1000 * r.modelSeconds) / n;
    const protoMs = (1000 * r.protocolSeconds) / n;
    console.log(`| ${label} | ${atoms} | ${(n / r.seconds).toFixed(1)} | ${ms.toFixed(2)} | ${modelMs.toFixed(2)} | ${protoMs.toFixed(3)} (${((100 * protoMs) / ms).toFixed(1)} %) | ${(ms - modelMs - protoMs).toFixed(2)} |`);
  }
}
