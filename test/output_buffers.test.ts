// Who owns the output memory. Large results of synchronous calls are handed
// to V8 without a copy (external ArrayBuffers whose native memory is freed by
// a finalizer that Node runs when the event loop turns); once the external
// bytes awaiting finalizers pass a cap, results are copied into V8's own
// memory instead. These tests check that both kinds of buffer hold the same
// numbers, outlive the calculator and the systems, and that a tight loop of
// synchronous calls (no event-loop turn, so no finalizer runs) stays bounded.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from './spawn_helpers';

const root = path.resolve(__dirname, '..');
const hypers = {
  cutoff: { radius: 4.0, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 6, radial: { type: 'Gto', max_radial: 7 } },
};

// diamond silicon, n × n × n conventional cells (8 n³ atoms), slightly rattled
const SILICON = `
function silicon(n) {
  const a = 5.43, basis = [[0,0,0],[0,.5,.5],[.5,0,.5],[.5,.5,0],[.25,.25,.25],[.25,.75,.75],[.75,.25,.75],[.75,.75,.25]];
  const positions = [];
  let seed = 1;
  const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 0.1;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++)
    for (const b of basis) positions.push([(i + b[0]) * a + rand(), (j + b[1]) * a + rand(), (k + b[2]) * a + rand()]);
  return { types: positions.map(() => 14), positions, cell: [[n * a, 0, 0], [0, n * a, 0], [0, 0, n * a]], pbc: [true, true, true] };
}`;

async function runNode(script: string, args: string[] = []) {
  const r = await run(process.execPath, [...args, '-e', script], { cwd: root, env: { ...process.env, ACDC_NUM_THREADS: '2' } });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe('output buffers', () => {
  it('stay valid and unchanged after the calculator and the systems are collected', async () => {
    const out = await runNode(
      `
      ${SILICON}
      const acdc = require('acdc-ml');
      let soap = new acdc.SoapPowerSpectrum(${JSON.stringify(hypers)});
      let systems = [new acdc.System(silicon(2))];
      const tm = soap.computeSync(systems);
      const values = tm.block(0).values;
      const copy = Float64Array.from(values);
      soap = undefined; systems = undefined;
      // garbage, collections and event-loop turns (finalizers of dropped buffers run)
      const again = new acdc.SoapPowerSpectrum(${JSON.stringify(hypers)});
      const turn = () => new Promise((r) => setImmediate(r));
      (async () => {
        for (let k = 0; k < 20; k++) {
          again.computeSync([new acdc.System(silicon(2))]);
          globalThis.gc();
          await turn();
        }
        let same = values.length === copy.length && values.length > 0;
        for (let i = 0; i < copy.length && same; i++) same = Object.is(values[i], copy[i]);
        console.log(JSON.stringify({ same, length: values.length, bytes: values.byteLength }));
      })();
      `,
      ['--expose-gc'],
    );
    expect(out.length).toBe(64 * 448);
    // large enough to be handed over without a copy
    expect(out.bytes).toBeGreaterThanOrEqual(64 << 10);
    expect(out.same).toBe(true);
  });

  it('hold the same numbers whether handed over or copied (past the cap), sync and async', async () => {
    const out = await runNode(`
      ${SILICON}
      const acdc = require('acdc-ml');
      const soap = new acdc.SoapPowerSpectrum(${JSON.stringify(hypers)});
      const systems = [new acdc.System(silicon(3))];
      // a tight loop: nothing is finalized, so the later calls are past the cap and copy
      const results = [];
      for (let k = 0; k < 120; k++) results.push(soap.computeSync(systems).block(0).values);
      const first = results[0];
      const bits = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
      const allSame = results.every((v) => v instanceof Float64Array && v.byteOffset % 8 === 0 && bits(v) === bits(first));
      soap.compute(systems).then((tm) => {
        console.log(JSON.stringify({ allSame, asyncSame: bits(tm.block(0).values) === bits(first), bytes: first.byteLength }));
      });
    `);
    // 120 results of 216 × 448 values: 93 MB, more than the 64 MiB cap
    expect(out.bytes * 120).toBeGreaterThan(64 * 2 ** 20);
    expect(out.allSame).toBe(true);
    expect(out.asyncSame).toBe(true);
  });

  it('a tight loop of values-only computeSync stays bounded', async () => {
    const out = await runNode(`
      ${SILICON}
      const acdc = require('acdc-ml');
      const soap = new acdc.SoapPowerSpectrum(${JSON.stringify(hypers)});
      const systems = [new acdc.System(silicon(3))];
      const one = soap.computeSync(systems).block(0).values.byteLength;
      const base = process.memoryUsage().rss;
      let peak = 0;
      for (let k = 0; k < 1500; k++) {
        soap.computeSync(systems);
        if (k % 10 === 0) peak = Math.max(peak, process.memoryUsage().rss);
      }
      console.log(JSON.stringify({ one, growth: peak - base }));
    `);
    // keeping every result would take 1500 × 774 kB = 1.16 GB; the loop may
    // hold the 64 MiB cap of buffers awaiting finalizers plus what V8 has not
    // collected yet
    expect(out.growth).toBeLessThan(400e6);
    expect(1500 * out.one).toBeGreaterThan(2.5 * 400e6);
  });

});
