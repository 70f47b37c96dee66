// N calls of one binding entry point in a fresh process, for instruction
// counts of the JS thread (load-independent) with callgrind:
//
//   ACDC_NUM_THREADS=2 valgrind --tool=callgrind --separate-threads=yes \
//     node --expose-gc bench/napi_calls.mjs soap|nl FILE N [--gradients] [--no-gc | --gc-only]
//
// Thread by thread (callgrind's file suffix -01 is the JS thread). Two warm-up calls
// run first (JIT, the output pool); after every call the garbage collector
// runs as in bench/worker.mjs (so the pool's buffers are reused as in
// `npm run bench`); --gc-only runs those collections without the calls, the
// baseline that leaves the calls' own cost (what a timed call contains):
//
//   per call = (count of N calls − count of N --gc-only) / N
//
// --no-gc: no collections (V8 then collects when it decides, inside calls).
// Prints a checksum so that the calls cannot be optimised away.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { settle } from './settle.mjs';
const require = createRequire(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'package.json'));
const acdc = require('acdc-ml');
const HYPERS = { cutoff: { radius: 5.0, smoothing: { type: 'ShiftedCosine', width: 0.5 } }, density: { type: 'Gaussian', width: 0.3 }, basis: { type: 'TensorProduct', max_angular: 6, radial: { type: 'Gto', max_radial: 7 } } };
const args = process.argv.slice(2);
const gradients = args.includes('--gradients');
const forceGc = !args.includes('--no-gc');
// --gc-only: after the warm-up, the N full GCs without the calls (the baseline to subtract)
const gcOnly = args.includes('--gc-only');
const [kind, file, nArg] = args.filter((a) => !a.startsWith('--'));
const n = Number(nArg ?? 1);
const frames = acdc.readXyzSync(file);
let run;
if (kind === 'soap') {
  const calc = new acdc.SoapPowerSpectrum(HYPERS);
  const options = gradients ? { gradients: ['positions'] } : {};
  run = () => calc.computeSync(frames, options).blocks().reduce((s, b) => s + b.values.length, 0);
} else if (kind === 'nl') {
  const nl = new acdc.NeighborList({ cutoff: 5, full: true });
  run = () => nl.computeSync(frames[0]).i.length;
} else {
  throw new Error('usage: napi_calls.mjs soap|nl FILE N [--gradients]');
}
// as bench/worker.mjs between timed calls (settle.mjs)
let check = 0;
for (let k = 0; k < 2 + n; k++) {
  if (!(gcOnly && k >= 2)) check += run();
  if (forceGc) await settle();
}
console.log(JSON.stringify({ kind, gradients, calls: n, check }));
