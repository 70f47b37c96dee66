// What the binding hands back, and what `TensorBlock.fromData` now takes on
// trust. The binding checks every gradient block with the core's own rules
// (`TensorBlock::add_gradient`) before converting it, and the JS wrapper no
// longer walks each gradient row again on the JS thread. These tests rebuild
// every calculator's blocks through the public constructor, which still runs
// the full JS check, so a calculator whose gradients broke an invariant would
// fail here rather than reach a user unchecked. The binding also stopped
// reporting its external buffers to V8 a second time (V8 counts every
// ArrayBuffer's length itself): a tight loop of gradient calls, which only
// V8's own accounting can make the garbage collector run, must stay bounded.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from './spawn_helpers';
import {
  SoapPowerSpectrum,
  SoapRadialSpectrum,
  SphericalExpansion,
  SymmetryFunctions,
  System,
  TensorBlock,
  type TensorMap,
} from 'acdc-ml';

const root = path.resolve(__dirname, '..');
const soapHypers = {
  cutoff: { radius: 3.5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 3, radial: { type: 'Gto', max_radial: 3 } },
} as const;

// water-like: two species, periodic, slightly irregular
function waterish(): System {
  const positions: number[][] = [];
  const types: number[] = [];
  let seed = 7;
  const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 0.4;
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 2; j++) {
      for (let k = 0; k < 2; k++) {
        const o = [i * 3.1 + rand(), j * 3.1 + rand(), k * 3.1 + rand()];
        positions.push(o, [o[0] + 0.96, o[1], o[2] + rand()], [o[0] - 0.24, o[1] + 0.93, o[2] + rand()]);
        types.push(8, 1, 1);
      }
    }
  }
  return new System({ types, positions, cell: [[6.2, 0, 0], [0, 6.2, 0], [0, 0, 6.2]], pbc: [true, true, true] });
}

// every block again through `new TensorBlock`, which checks each gradient
function rebuildChecked(tm: TensorMap): number {
  let gradients = 0;
  for (const b of tm.blocks()) {
    const grads = new Map(b.gradientsList().map((p) => [p, b.gradient(p)!] as const));
    gradients += grads.size;
    const again = new TensorBlock(b.samples, b.components, b.properties, b.values, grads);
    expect(again.shape).toEqual(b.shape);
  }
  return gradients;
}

describe('binding results', () => {
  const system = waterish();
  const cases: Array<[string, () => TensorMap]> = [
    ['SoapPowerSpectrum', () => new SoapPowerSpectrum(soapHypers).computeSync(system, { gradients: ['positions', 'strain'] })],
    ['SphericalExpansion', () => new SphericalExpansion(soapHypers).computeSync(system, { gradients: ['positions', 'strain'] })],
    [
      'SoapRadialSpectrum',
      () =>
        new SoapRadialSpectrum({ cutoff: soapHypers.cutoff, density: soapHypers.density, basis: { radial: { type: 'Gto', max_radial: 3 } } }).computeSync(system, {
          gradients: ['positions', 'strain'],
        }),
    ],
    ['SymmetryFunctions', () => new SymmetryFunctions({ cutoff: 3.5, g2: [[1, 1]], g4: [[1, 1, 1]] }).computeSync(system, { gradients: ['positions', 'strain'] })],
  ];
  for (const [name, compute] of cases) {
    it(`${name}: gradient blocks pass the public constructor's checks`, () => {
      const tm = compute();
      expect(rebuildChecked(tm)).toBe(2 * tm.length);
    });
  }

  it('the async form gives the same labels and bits as the sync form', async () => {
    const soap = new SoapPowerSpectrum(soapHypers);
    const a = soap.computeSync(system, { gradients: ['positions'] });
    const b = await soap.compute(system, { gradients: ['positions'] });
    const bits = (v: ArrayBufferView) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
    expect(b.length).toBe(a.length);
    a.blocks().forEach((x, k) => {
      const y = b.blocks()[k];
      for (const [p, q] of [
        [x, y],
        [x.gradient('positions')!, y.gradient('positions')!],
      ]) {
        expect(bits(q.values)).toBe(bits(p.values));
        expect(bits(q.samples.values)).toBe(bits(p.samples.values));
        expect(bits(q.properties.values)).toBe(bits(p.properties.values));
        expect(q.components.map((c) => bits(c.values))).toEqual(p.components.map((c) => bits(c.values)));
      }
    });
  });

  it('a tight loop of gradient computeSync stays bounded without help from the binding', async () => {
    // 216 silicon atoms, cutoff 4 Å: a 39.5 MB position-gradient block a call,
    // lent from the output pool; no explicit collection and no event-loop turn
    const script = `
      const acdc = require('acdc-ml');
      const n = 3, a = 5.43, basis = [[0,0,0],[0,.5,.5],[.5,0,.5],[.5,.5,0],[.25,.25,.25],[.25,.75,.75],[.75,.25,.75],[.75,.75,.25]];
      const positions = [];
      let seed = 3;
      const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 0.1;
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++)
        for (const b of basis) positions.push([(i + b[0]) * a + rand(), (j + b[1]) * a + rand(), (k + b[2]) * a + rand()]);
      const system = new acdc.System({ types: positions.map(() => 14), positions, cell: [[n * a, 0, 0], [0, n * a, 0], [0, 0, n * a]], pbc: [true, true, true] });
      const soap = new acdc.SoapPowerSpectrum(${JSON.stringify({ ...soapHypers, cutoff: { ...soapHypers.cutoff, radius: 4.0 }, basis: { type: 'TensorProduct', max_angular: 6, radial: { type: 'Gto', max_radial: 7 } } })});
      const one = soap.computeSync(system, { gradients: ['positions'] }).block(0).gradient('positions').values.byteLength;
      const base = process.memoryUsage().rss;
      let peak = 0;
      for (let k = 0; k < 40; k++) {
        soap.computeSync(system, { gradients: ['positions'] });
        peak = Math.max(peak, process.memoryUsage().rss);
      }
      console.log(JSON.stringify({ one, growth: peak - base }));
    `;
    const r = await run(process.execPath, ['-e', script], { cwd: root, env: { ...process.env, ACDC_NUM_THREADS: '2' } });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    // keeping every result would take 40 × 39.5 MB = 1.58 GB
    expect(out.one).toBeGreaterThan(30e6);
    expect(40 * out.one).toBeGreaterThan(2.5 * 600e6);
    expect(out.growth).toBeLessThan(600e6);
  }, 120_000);
});
