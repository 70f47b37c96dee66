// Where the CPU time of a SOAP computeSync goes, by thread
// (Linux: /proc/self/task/*/schedstat read around each call):
//
//   ACDC_NUM_THREADS=2 node --expose-gc bench/thread_split.mjs bench/.data/si512.xyz [REPS] [--gradients] [--quiesce]
//
// --gradients: with position gradients (the output pool lends the previous,
// collected result's pages, as in `npm run bench`).
// --quiesce: after the collections between calls, also wait (event-loop
// turns, at most 200) until V8's and Node's own threads have used no CPU
// over one turn, so that the call does not share the cores with the
// collector's concurrent sweeping that the forced collections start.
//
// main: the JS thread (serial work: N-API conversion, anything the core does
// outside its parallel loops); workers: the rayon pool; other: V8's own
// threads (garbage collection) during the call; critical = main + workers /
// threads, the wall time the call would take on otherwise idle cores;
// critical_max = main + the busiest worker (what load imbalance between the
// workers adds; the JS thread waits while the pool runs, so its CPU and the
// pool's add up on the critical path). The
// ratio of `critical` at 1 and 2 threads estimates the speed-up on a quiet
// machine even when the machine is shared. NAPI_RS_NATIVE_LIBRARY_PATH picks
// another build of the binding for an A/B. Prints one JSON line of medians (ms).
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
const require = createRequire(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'package.json'));
// every thread that exists before acdc runs anything is V8's or Node's: the
// rayon pool is started by the first reader or calculator built, not by the
// first compute, so thread ids must be taken before `readXyzSync`
const before = new Set(fs.readdirSync('/proc/self/task'));
const acdc = require('acdc-ml');
const HYPERS = { cutoff: { radius: 5.0, smoothing: { type: 'ShiftedCosine', width: 0.5 } }, density: { type: 'Gaussian', width: 0.3 }, basis: { type: 'TensorProduct', max_angular: 6, radial: { type: 'Gto', max_radial: 7 } } };
const args = process.argv.slice(2);
const gradients = args.includes('--gradients');
const quiesce = args.includes('--quiesce');
const [file, repsArg] = args.filter((a) => !a.startsWith('--'));
const reps = Number(repsArg ?? 30);
const frames = acdc.readXyzSync(file);
const calc = new acdc.SoapPowerSpectrum(HYPERS);
// schedstat: CPU time and run-queue wait (ns); the wait is time a thread
// was ready but another process had the core (the machine's load)
const snap = () => Object.fromEntries(fs.readdirSync('/proc/self/task').map((t) => { try { const f = fs.readFileSync(`/proc/self/task/${t}/schedstat`, 'utf8').split(' '); return [t, [Number(f[0]), Number(f[1])]]; } catch { return [t, [0, 0]]; } }));
const settle = async () => { gc(); await new Promise((r) => setImmediate(r)); gc(); await new Promise((r) => setImmediate(r)); };
const options = gradients ? { gradients: ['positions'] } : {};
const run = () => { const tm = calc.computeSync(frames, options); let n = 0; for (const b of tm.blocks()) n += b.values.length; return n; };
run(); await settle();
const pool = new Set(fs.readdirSync('/proc/self/task').filter((t) => !before.has(t))); // rayon threads (and any thread acdc started)
// CPU time (ns) of the threads that are neither the JS thread nor acdc's pool
const otherCpu = () => { let s = 0; for (const [t, v] of Object.entries(snap())) if (t != process.pid && !pool.has(t)) s += v[0]; return s; };
let quiesceTurns = 0;
const quiet = async () => {
  if (!quiesce) return;
  let last = otherCpu();
  for (let k = 0; k < 200; k++) {
    await new Promise((r) => setImmediate(r));
    quiesceTurns++;
    const now = otherCpu();
    if (now === last) return;
    last = now;
  }
};
for (let w = 0; w < 2; w++) { run(); await settle(); await quiet(); }
const main = [], workers = [], v8 = [], wall = [], faults = [], waits = [];
for (let k = 0; k < reps; k++) {
  const f0 = process.resourceUsage().minorPageFault;
  const a = snap(); const t0 = process.hrtime.bigint(); run(); const t1 = process.hrtime.bigint(); const b = snap();
  faults.push(process.resourceUsage().minorPageFault - f0);
  let m = 0, w = [], o = 0, q = 0;
  for (const t of Object.keys(b)) {
    const d = (b[t][0] - (a[t]?.[0] ?? 0)) / 1e6;
    if (t == process.pid || pool.has(t)) q += (b[t][1] - (a[t]?.[1] ?? 0)) / 1e6;
    if (t == process.pid) m += d; else if (pool.has(t)) w.push(d); else o += d;
  }
  main.push(m); workers.push(w); v8.push(o); wall.push(Number(t1 - t0) / 1e6); waits.push(q);
  await settle();
  await quiet();
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
const wsum = workers.map((w) => w.reduce((x, y) => x + y, 0));
const n = Math.max(1, workers[0].length);
const perWorker = workers[0].map((_, w) => +med(workers.map((x) => x[w] ?? 0)).toFixed(3));
const crit = main.map((m, k) => m + wsum[k] / n);
const critMax = main.map((m, k) => m + Math.max(0, ...workers[k]));
console.log(JSON.stringify({ threads: n, gradients, main: +med(main).toFixed(3), workers: +med(wsum).toFixed(3), other: +med(v8).toFixed(3), critical: +med(crit).toFixed(3), critical_max: +med(critMax).toFixed(3), per_worker: perWorker, wall: +med(wall).toFixed(3), runqueue_wait: +med(waits).toFixed(3), minor_faults: med(faults), ...(quiesce ? { quiesce_turns_per_call: +(quiesceTurns / (reps + 2)).toFixed(1) } : {}) }));
