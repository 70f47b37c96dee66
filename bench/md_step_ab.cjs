// A/B of one MD step (energy, forces, stress) through the Node API with two
// builds of the addon, alternating (docs/PERFORMANCE.md, "Round eight: the
// sparse GPR's per-atom kernel products"): each build is copied over the
// repository's native/ addon in turn (the new one is left there), and a
// child process times 15 `predictSync` calls with forces and stress on a
// rattled diamond cell of N³ conventional cells (8·N³ Si atoms) at one
// thread; one JSON line per run (fastest and median call, ms).
//
//   node bench/md_step_ab.cjs OLD.node NEW.node MODEL.acdc N
//   (MODEL.acdc: e.g. `cargo run --release -p acdc-core --example md_step -- fit MODEL.acdc`)
const fs = require('fs');
const path = require('path');
const [oldNode, newNode, modelFile, cellsArg] = process.argv.slice(2);
if (!cellsArg) {
  console.error('usage: node bench/md_step_ab.cjs OLD.node NEW.node MODEL.acdc N');
  process.exit(2);
}
const ROOT = path.join(__dirname, '..');
const target = path.join(ROOT, 'native', fs.readdirSync(path.join(ROOT, 'native')).find((f) => f.endsWith('.node')));
const { execFileSync } = require('child_process');
if (process.env.CHILD) {
  const acdc = require(ROOT);
  const n = Number(cellsArg), a = 5.43;
  const basis = [[0,0,0],[0,.5,.5],[.5,0,.5],[.5,.5,0],[.25,.25,.25],[.25,.75,.75],[.75,.25,.75],[.75,.75,.25]];
  let seed = 7; const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 - 0.5; };
  const pos = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) for (const b of basis) pos.push((i + b[0]) * a + 0.1 * rnd(), (j + b[1]) * a + 0.1 * rnd(), (k + b[2]) * a + 0.1 * rnd());
  const s = new acdc.System({ types: new Int32Array(pos.length / 3).fill(14), positions: Float64Array.from(pos), cell: Float64Array.from([n * a, 0, 0, 0, n * a, 0, 0, 0, n * a]), pbc: [true, true, true] });
  const m = acdc.loadModelSync(modelFile);
  m.predictSync(s, { forces: true, stress: true });
  const t = [];
  for (let r = 0; r < 15; r++) { const t0 = process.hrtime.bigint(); m.predictSync(s, { forces: true, stress: true }); t.push(Number(process.hrtime.bigint() - t0) / 1e6); }
  t.sort((x, y) => x - y);
  console.log(JSON.stringify({ min: t[0], median: t[7] }));
} else {
  for (let round = 0; round < 3; round++) for (const [label, file] of [['old', oldNode], ['new', newNode]]) {
    fs.copyFileSync(file, target);
    const out = execFileSync(process.execPath, [__filename, oldNode, newNode, modelFile, cellsArg], { env: { ...process.env, CHILD: '1', ACDC_NUM_THREADS: '1' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    console.log(label, out.trim(), 'load', fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  }
  fs.copyFileSync(newNode, target);
}
