// Hostile parameters, cancellation, fairness and memory under careless use:
// each case was a crash, a hang, NaN or unbounded memory before.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NeighborList, SoapPowerSpectrum, SphericalExpansion, System, TensorMap, readXyz, readXyzSync, maxConcurrent } from 'acdc-ml';
import { run } from './spawn_helpers';

const root = path.join(__dirname, '..');
const frames = readXyzSync(path.join(root, 'examples', 'molecules.xyz'));
const hypers = {
  cutoff: { radius: 5, smoothing: { type: 'ShiftedCosine' as const, width: 0.5 } },
  density: { type: 'Gaussian' as const, width: 0.3 },
  basis: { type: 'TensorProduct' as const, max_angular: 4, radial: { type: 'Gto' as const, max_radial: 4 } },
};
const water = new System({ types: [8, 1, 1], positions: [0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0] });

describe('hyper-parameters that used to give NaN, singular bases or type errors', () => {
  const cases: [string, unknown, RegExp][] = [
    ['max_radial 24 (singular GTO overlap)', { ...hypers, basis: { ...hypers.basis, radial: { type: 'Gto', max_radial: 24 } } }, /max_radial is 24; at most 23/],
    ['center_atom_weight 1e308', { ...hypers, density: { ...hypers.density, center_atom_weight: 1e308 } }, /center_atom_weight must be a finite number of magnitude at most 1e10/],
    ['spline_accuracy 1e300', { ...hypers, basis: { ...hypers.basis, spline_accuracy: 1e300 } }, /spline_accuracy is 1e300; at most 0\.1/],
    ['NaN width', { ...hypers, density: { ...hypers.density, width: NaN } }, /density\.width must be a finite number, got NaN/],
    ['infinite cutoff', { ...hypers, cutoff: { ...hypers.cutoff, radius: Infinity } }, /cutoff\.radius must be a finite number, got Infinity/],
    ['GTO radius other than the cutoff', { ...hypers, basis: { ...hypers.basis, radial: { type: 'Gto', max_radial: 4, radius: 4 } } }, /basis\.radial\.radius \(4 Å\) must equal cutoff\.radius \(5 Å\)/],
    ['a typo', { ...hypers, density: { type: 'Gaussian', widht: 0.3 } }, /density\.widht: unknown field/],
  ];
  for (const [what, h, message] of cases) {
    it(what, () => {
      expect(() => new SoapPowerSpectrum(h as typeof hypers)).toThrow(message);
    });
  }

  it('a scaling that overflows is an error, not NaN', () => {
    const h = { ...hypers, density: { ...hypers.density, scaling: { type: 'Willatt2018' as const, scale: 1e-300, rate: 1, exponent: 4 } } };
    expect(() => new SoapPowerSpectrum(h).computeSync([water], { gradients: ['positions'] })).toThrow(/not finite: density\.scaling overflows/);
  });

  it('fromJson names the line and column of the offending key', () => {
    const text = '{\n  "cutoff": {"radius": 5, "smoothing": {"type": "Step"}},\n  "density": {"type": "Gaussian", "width": -1},\n  "basis": {"type": "TensorProduct", "max_angular": 2, "radial": {"type": "Gto", "max_radial": 2}}\n}';
    expect(() => SoapPowerSpectrum.fromJson(text)).toThrow(/density\.width must be a positive finite number, got -1 \(line 3, column 35\)/);
    expect(SoapPowerSpectrum.fromJson(JSON.stringify(hypers)).name).toBe('soap_power_spectrum');
  });
});

describe('selections that name nothing', () => {
  it('out-of-range selectedSamples are errors, not empty results', () => {
    const soap = new SoapPowerSpectrum(hypers);
    expect(() => soap.computeSync([water], { selectedSamples: [{ system: 3, atom: 0 }] })).toThrow(/selectedSamples row 0: system 3 does not exist \(there are 1 systems\)/);
    expect(() => soap.computeSync([water], { selectedSamples: [{ system: 0, atom: 7 }] })).toThrow(/atom 7 does not exist in system 0 \(3 atoms\)/);
    expect(() => soap.computeSync([water], { selectedSamples: [{ atom: -1 }] })).toThrow(/atom -1 does not exist/);
    expect(soap.computeSync([water], { selectedSamples: [{ system: 0, atom: 2 }] }).block(0).samples.count).toBe(1);
  });

  it('selectedKeys naming a species no system holds are errors, not empty results', () => {
    const soap = new SoapPowerSpectrum(hypers);
    expect(() => soap.computeSync([water], { selectedKeys: [{ center_type: 99 }] })).toThrow(/selectedKeys row 0: center_type 99 is not a species of these systems \(1, 8\)/);
    expect(() => new SphericalExpansion(hypers).computeSync([water], { selectedKeys: [{ neighbor_type: 6 }] })).toThrow(/neighbor_type 6 is not a species/);
    expect(soap.computeSync([water], { selectedKeys: [{ center_type: 8 }] }).keys.count).toBe(3);
  });
});

describe('cancellation', () => {
  it('an aborted compute rejects with an AbortError long before the computation would end', async () => {
    const soap = new SoapPowerSpectrum(hypers);
    const many = Array.from({ length: 8 }, () => frames).flat();
    let started = performance.now();
    await soap.compute(many, { gradients: ['positions'] });
    const full = performance.now() - started;
    const controller = new AbortController();
    started = performance.now();
    const pending = soap.compute(many, { gradients: ['positions'], signal: controller.signal });
    setTimeout(() => controller.abort(), 0.1 * full);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    // a ratio, not a time: the aborted call stops well before a full one ends
    expect((performance.now() - started) / full).toBeLessThan(0.6);
    // a signal aborted before the call rejects at once; the calculator still works afterwards
    const aborted = new AbortController();
    aborted.abort(new Error('stop'));
    await expect(soap.compute([water], { signal: aborted.signal })).rejects.toThrow('stop');
    expect((await soap.compute([water])).keys.count).toBeGreaterThan(0);
  });

  it('readXyz, NeighborList.compute, saveAsync and loadAsync take a signal', async () => {
    const aborted = new AbortController();
    aborted.abort();
    const signal = aborted.signal;
    await expect(readXyz(path.join(root, 'examples', 'water.xyz'), { signal })).rejects.toMatchObject({ name: 'AbortError' });
    await expect(new NeighborList({ cutoff: 3 }).compute(water, { signal })).rejects.toMatchObject({ name: 'AbortError' });
    const tm = new SphericalExpansion(hypers).computeSync([water]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-abort-'));
    await expect(tm.saveAsync(path.join(dir, 'x.mts'), { signal })).rejects.toMatchObject({ name: 'AbortError' });
    expect(fs.readdirSync(dir)).toEqual([]);
    await tm.saveAsync(path.join(dir, 'x.mts'));
    await expect(TensorMap.loadAsync(path.join(dir, 'x.mts'), { signal })).rejects.toMatchObject({ name: 'AbortError' });
    await expect(new SoapPowerSpectrum(hypers).compute([water], { signal: {} as AbortSignal })).rejects.toThrow(/signal must be an AbortSignal/);
  });
});

describe('fairness', () => {
  it('file reads are not queued behind many concurrent computes', async () => {
    expect(maxConcurrent()).toBeGreaterThanOrEqual(1);
    const soap = new SoapPowerSpectrum(hypers);
    // twice as many computes as may run at once, each long enough that
    // waiting for one to end (what a read queued behind them would do) is
    // about half of the total; with 16 short computes one wave was an
    // eighth of the total, too close to the bound below to tell the two apart
    const big = Array.from({ length: 8 }, () => frames).flat();
    const started = performance.now();
    const computes = Array.from({ length: 2 * maxConcurrent() }, () => soap.compute(big));
    // the read's own wait, from its start: the calls above convert their
    // systems on this thread before the read is issued
    const reading = performance.now();
    await fs.promises.readFile(path.join(root, 'README.md'));
    const waited = performance.now() - reading;
    const results = await Promise.all(computes);
    const total = performance.now() - started;
    // a ratio, not a time: without the queue the read waits until one of the
    // computes holding every libuv thread ends (about half of the total)
    expect(waited / total, JSON.stringify({ waited, total })).toBeLessThan(0.1);
    // concurrent results are identical to each other
    const first = results[0].block(0).values;
    for (const r of results) expect(r.block(0).values).toEqual(first);
  });
});

describe('memory under careless use', () => {
  it('a tight loop of computeSync with gradients stays within a small multiple of one call', async () => {
    const script = `
      const acdc = require('acdc-ml');
      const frames = acdc.readXyzSync(${JSON.stringify(path.join(root, 'examples', 'molecules.xyz'))}).slice(0, 64);
      const soap = new acdc.SoapPowerSpectrum(${JSON.stringify(hypers)});
      soap.computeSync(frames, { gradients: ['positions'] });
      const base = process.memoryUsage().rss;
      const one = soap.computeSync(frames, { gradients: ['positions'] }).blocks().reduce((n, b) => n + b.values.byteLength + b.gradient('positions').values.byteLength, 0);
      let peak = 0;
      for (let k = 0; k < 200; k++) {
        soap.computeSync(frames, { gradients: ['positions'] });
        peak = Math.max(peak, process.memoryUsage().rss);
      }
      console.log(JSON.stringify({ base, one, peak }));
    `;
    const r = await run(process.execPath, ['-e', script], { cwd: root, env: { ...process.env, ACDC_NUM_THREADS: '2' } });
    expect(r.status, r.stderr).toBe(0);
    const { base, one, peak } = JSON.parse(r.stdout);
    // 200 results would be 200 × one; the loop may hold a handful
    expect(peak - base).toBeLessThan(Math.max(20 * one, 200e6));
    // …and the bound is well below what keeping every result would reach
    expect(200 * one).toBeGreaterThan(2 * Math.max(20 * one, 200e6));
  });
});
