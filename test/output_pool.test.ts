// The pool of large results (crates/acdc-node/src/external.rs): a position-
// gradient block of at least 8 MiB that JavaScript can no longer reach is
// reused by the next computation of the same size instead of fresh, faulted
// pages. What must hold: a buffer the user still holds (as the typed array,
// only its ArrayBuffer, or only a view of part of it) is never written by a
// later call, and a reused buffer gives the same numbers, bit for bit, as a
// fresh one. `ACDC_OUTPUT_POOL=0` turns the pool off (read at every call), so
// one process can compute both ways. The minor page faults of a call show
// whether its buffer was reused: a count of kernel events, not a timing.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from './spawn_helpers';

const root = path.resolve(__dirname, '..');
const hypers = {
  cutoff: { radius: 4.0, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 6, radial: { type: 'Gto', max_radial: 7 } },
};

// diamond silicon, 3 × 3 × 3 conventional cells (216 atoms), rattled by
// ±0.05 Å from `seed`: every seed gives the same neighbour counts (cutoff 4 Å
// lies between the second and third shells), so the same gradient shape
// (216 × 17 rows × 3 × 448 values = 39.5 MB) with different numbers
const PRELUDE = `
const acdc = require('acdc-ml');
function silicon(seed) {
  const n = 3, a = 5.43, basis = [[0,0,0],[0,.5,.5],[.5,0,.5],[.5,.5,0],[.25,.25,.25],[.25,.75,.75],[.75,.25,.75],[.75,.75,.25]];
  const positions = [];
  const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 0.1;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++)
    for (const b of basis) positions.push([(i + b[0]) * a + rand(), (j + b[1]) * a + rand(), (k + b[2]) * a + rand()]);
  return new acdc.System({ types: positions.map(() => 14), positions, cell: [[n * a, 0, 0], [0, n * a, 0], [0, 0, n * a]], pbc: [true, true, true] });
}
const soap = new acdc.SoapPowerSpectrum(${JSON.stringify(hypers)});
const grad = (tm) => tm.block(0).gradient('positions').values;
const settle = async () => {
  for (let k = 0; k < 2; k++) { globalThis.gc(); await new Promise((r) => setImmediate(r)); }
};
// minor page faults of one synchronous gradient call, and its gradient values
const faultsOf = (system) => {
  const before = process.resourceUsage().minorPageFault;
  const g = grad(soap.computeSync([system], { gradients: ['positions'] }));
  return { g, faults: process.resourceUsage().minorPageFault - before };
};
// the faults of one call whose result is dropped at once: only a number
// leaves this (synchronous) function, so no interpreter register of an
// async caller keeps the result alive across its next await
const dropFaults = (seed) => faultsOf(silicon(seed)).faults;
const sameBits = (a, b) => {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
};
`;

async function runNode(script: string, env: Record<string, string> = {}) {
  const r = await run(process.execPath, ['--expose-gc', '-e', PRELUDE + script], {
    cwd: root,
    env: { ...process.env, ACDC_NUM_THREADS: '2', ...env },
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe('output pool', () => {
  it('never writes into a buffer the user still holds; reuses the ones dropped', async () => {
    const out = await runNode(`
      // many calls on other structures, each after a full collection, so
      // that any buffer found unreachable is reused; their page faults
      const churn = async (seed) => {
        const faults = [];
        for (let k = 0; k < 6; k++) {
          await settle();
          faults.push(dropFaults(seed + k));
        }
        await settle();
        return faults;
      };
      (async () => {
        await settle();
        // one result kept at a time (results JavaScript holds beyond 64 MiB
        // make synchronous calls copy into V8 memory, out of the pool's reach)
        let typed = faultsOf(silicon(11)).g;
        const typedCopy = Float64Array.from(typed);
        const pages = typed.byteLength / 4096;
        const faultsTyped = await churn(100);
        const typedSame = sameBits(typed, typedCopy);
        typed = null;
        // kept only as its ArrayBuffer (the typed array is dropped here)
        let [keptBuffer, bufferCopy] = ((g) => [g.buffer, Float64Array.from(g)])(faultsOf(silicon(12)).g);
        const faultsBuffer = await churn(200);
        const bufferSame = sameBits(new Float64Array(keptBuffer), bufferCopy);
        keptBuffer = null;
        // kept only as a view of its last 1000 values
        const [tail, tailCopy] = ((g) => [g.subarray(g.length - 1000), Float64Array.from(g.subarray(g.length - 1000))])(faultsOf(silicon(13)).g);
        const faultsTail = await churn(300);
        const tailSame = sameBits(tail, tailCopy);
        console.log(JSON.stringify({ pages, faultsTyped, faultsBuffer, faultsTail, typedSame, bufferSame, tailSame }));
      })();
    `);
    expect(out.pages).toBeGreaterThan(8000);
    // the churn's own results were reused (a fresh 39.5 MB buffer faults
    // ~9600 pages in), so the kept buffers were candidates and were left
    // alone; V8 now and then keeps an unreachable result one collection
    // longer, and that call takes fresh memory, so most calls, not all
    for (const faults of [out.faultsTyped, out.faultsBuffer, out.faultsTail]) {
      const reused = faults.slice(1).filter((f: number) => f < out.pages / 10).length;
      expect(reused, JSON.stringify(out)).toBeGreaterThanOrEqual(3);
    }
    expect(out.typedSame).toBe(true);
    expect(out.bufferSame).toBe(true);
    expect(out.tailSame).toBe(true);
  });

  it('gives the same bits with and without the pool, sync and async', async () => {
    const out = await runNode(`
      (async () => {
        // without the pool: fresh memory
        process.env.ACDC_OUTPUT_POOL = '0';
        const fresh = faultsOf(silicon(21));
        const reference = Float64Array.from(fresh.g);
        fresh.g = null;
        await settle();
        dropFaults(22); // a second unpooled call, its result dropped
        await settle();
        // with the pool: the next result of this shape reuses the buffer of
        // a different structure's gradients, so any element the core failed
        // to write would keep that structure's value
        // V8 now and then keeps an unreachable result one collection longer
        // (then the call takes fresh memory and proves nothing): up to five
        // tries, each compared bit for bit, until one call reuses a buffer
        process.env.ACDC_OUTPUT_POOL = '1';
        let syncSame = true;
        let pooledFaults = Infinity;
        let tries = 0;
        while (tries < 5 && !(pooledFaults < reference.byteLength / 4096 / 10)) {
          dropFaults(23 + 10 * tries);
          await settle();
          const pooled = faultsOf(silicon(21));
          syncSame = syncSame && sameBits(pooled.g, reference);
          pooledFaults = Math.min(pooledFaults, pooled.faults);
          pooled.g = null;
          tries++;
          await settle();
        }
        dropFaults(24);
        await settle();
        const before = process.resourceUsage().minorPageFault;
        const viaAsync = grad(await soap.compute([silicon(21)], { gradients: ['positions'] }));
        const asyncFaults = process.resourceUsage().minorPageFault - before;
        console.log(JSON.stringify({
          pages: reference.byteLength / 4096,
          freshFaults: fresh.faults,
          pooledFaults,
          tries,
          asyncFaults,
          syncSame,
          asyncSame: sameBits(viaAsync, reference),
        }));
      })();
    `);
    // the unpooled call faulted its buffer in; a pooled one (of at most
    // five tries, every one compared) reused one
    expect(out.freshFaults).toBeGreaterThan(out.pages / 2);
    expect(out.pooledFaults, JSON.stringify(out)).toBeLessThan(out.pages / 10);
    expect(out.syncSame).toBe(true);
    expect(out.asyncSame).toBe(true);
  });
  it('a tight loop of synchronous gradient calls stays bounded (no event-loop turn)', async () => {
    const out = await runNode(`
      const system = silicon(31);
      const one = grad(soap.computeSync([system], { gradients: ['positions'] })).byteLength;
      const fs = require('node:fs');
      const rss = () => Number(fs.readFileSync('/proc/self/status', 'utf8').match(/VmRSS:\\s+(\\d+)/)[1]) * 1024;
      const base = rss();
      let peak = 0;
      for (let k = 0; k < 30; k++) {
        soap.computeSync([system], { gradients: ['positions'] });
        peak = Math.max(peak, rss());
      }
      console.log(JSON.stringify({ one, growth: peak - base }));
    `);
    // keeping all 30 results would take 30 × 39.5 MB = 1.18 GB; collections
    // (triggered by the external memory reported to V8) return them to the pool
    expect(30 * out.one).toBeGreaterThan(1.1e9);
    expect(out.growth).toBeLessThan(0.4 * 30 * out.one);
  });
});
