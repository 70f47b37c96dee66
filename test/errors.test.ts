// Every exported function, fed bad input, throws (or rejects with) an Error
// that names the problem; nothing crashes the process.
import { describe, expect, it } from 'vitest';
import * as acdc from 'acdc-ml';

const hypers = {
  cutoff: { radius: 3, smoothing: { type: 'ShiftedCosine' as const, width: 0.5 } },
  density: { type: 'Gaussian' as const, width: 0.3 },
  basis: { type: 'TensorProduct' as const, max_angular: 2, radial: { type: 'Gto' as const, max_radial: 2 } },
};
const radialHypers = { cutoff: hypers.cutoff, density: hypers.density, basis: { radial: hypers.basis.radial } };
const water = { types: [8, 1, 1], positions: [0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0] };

describe('bad input never crashes', () => {
  const badSystems: unknown[] = [
    null,
    42,
    'water',
    {},
    { types: [1], positions: [0, 0] },
    { types: [1], positions: [0, 0, NaN] },
    { types: ['Hx'], positions: [0, 0, 0] }, // element symbols are accepted, unknown ones are not
    { types: [1.5], positions: [0, 0, 0] },
    { types: [1], positions: [0, 0, 0], cell: [1, 0, 0, 1, 0, 0, 0, 0, 1], pbc: true },
    { types: [1], positions: [0, 0, 0], pbc: 'yes' },
    { types: [1], positions: [[0, 0, 0, 0]] },
  ];

  it('System', () => {
    for (const bad of badSystems) expect(() => new acdc.System(bad as never)).toThrow(Error);
  });

  it('NeighborList', async () => {
    for (const options of [null, {}, { cutoff: 0 }, { cutoff: NaN }, { cutoff: '5' }, { cutoff: 5, full: 'yes' }, { cutoff: 5, extra: 1 }]) {
      expect(() => new acdc.NeighborList(options as never)).toThrow(Error);
    }
    const list = new acdc.NeighborList({ cutoff: 3 });
    for (const bad of badSystems) {
      expect(() => list.computeSync(bad as never)).toThrow(Error);
      await expect(list.compute(bad as never)).rejects.toThrow(Error);
    }
    const thin = { types: [1], positions: [0, 0, 0], cell: [1e-6, 0, 0, 0, 1, 0, 0, 0, 1], pbc: true };
    expect(() => new acdc.NeighborList({ cutoff: 5 }).computeSync(thin)).toThrow(/periodic images/);
  });

  it('calculators', async () => {
    const bads: unknown[] = [
      null,
      {},
      { ...hypers, extra: 1 },
      { ...hypers, cutoff: { radius: -1, smoothing: { type: 'Step' } } },
      { ...hypers, cutoff: { radius: 3, smoothing: { type: 'Linear' } } },
      { ...hypers, density: { type: 'Gaussian', width: 0 } },
      { ...hypers, basis: { ...hypers.basis, max_angular: -1 } },
      { ...hypers, basis: { ...hypers.basis, max_angular: 1e9 } },
      { ...hypers, basis: { ...hypers.basis, spline_accuracy: -1 } },
      { ...hypers, basis: { ...hypers.basis, radial: { type: 'Gto', max_radial: 2, widht: 1 } } },
    ];
    for (const Calc of [acdc.SphericalExpansion, acdc.SoapPowerSpectrum]) {
      for (const bad of bads) expect(() => new Calc(bad as never)).toThrow(Error);
      const calc = new Calc(hypers);
      for (const bad of badSystems) {
        expect(() => calc.computeSync(bad as never)).toThrow(Error);
        await expect(calc.compute(bad as never)).rejects.toThrow(Error);
      }
      for (const options of [
        { gradients: ['cell'] },
        { gradients: 'positions' },
        { selectedKeys: [{ no_such_key: 1 }] },
        { selectedSamples: [{ molecule: 0 }] },
        { selectedSamples: [] },
        { nope: true },
      ]) {
        expect(() => calc.computeSync(water, options as never)).toThrow(Error);
        await expect(calc.compute(water, options as never)).rejects.toThrow(Error);
      }
    }
    expect(() => new acdc.SoapRadialSpectrum(hypers as never)).toThrow(/basis/);
    expect(() => new acdc.SoapRadialSpectrum(radialHypers).computeSync([water, null] as never)).toThrow(/systems\[1\]/);
  });

  it('extended XYZ', async () => {
    for (const bad of [undefined, 42, null]) expect(() => acdc.parseXyz(bad as never)).toThrow(Error);
    expect(() => acdc.parseXyz('2\n\nH 0 0 0\n')).toThrow(/line/);
    expect(() => acdc.formatXyz([{ ...water, info: { bad: () => 1 } }] as never)).toThrow(/info/);
    expect(() => acdc.readXyzSync('/no/such/file.xyz')).toThrow(/no\/such\/file/);
    await expect(acdc.readXyz('/no/such/file.xyz')).rejects.toThrow(/no\/such\/file/);
    expect(() => acdc.writeXyzSync('/no/such/dir/out.xyz', [water])).toThrow(Error);
    await expect(acdc.writeXyz('/no/such/dir/out.xyz', [water])).rejects.toThrow(Error);
    await expect((async () => {
      for await (const _ of acdc.iterXyz('/no/such/file.xyz')) void _;
    })()).rejects.toThrow(/no\/such\/file/);
  });

  it('TensorMap access', () => {
    const tm = new acdc.SoapPowerSpectrum(hypers).computeSync(water);
    expect(() => tm.block(99)).toThrow(/out of range/);
    expect(() => tm.block({ center_type: 99 })).toThrow(/0 blocks match/);
    expect(() => tm.block({ colour: 1 })).toThrow(/no key dimension/);
    expect(() => new acdc.Labels(['a', 'b'], [1, 2, 3])).toThrow(/whole rows/);
  });

  it('TensorMap operations and files', async () => {
    const tm = new acdc.SoapPowerSpectrum(hypers).computeSync(water, { gradients: ['positions'] });
    for (const bad of [null, 42, [], [''], ['center_type', 7], 'colour']) {
      expect(() => tm.keysToProperties(bad as never)).toThrow(Error);
      expect(() => tm.keysToSamples(bad as never)).toThrow(Error);
    }
    for (const bad of [null, 42, ['atom', 7], 'colour']) {
      expect(() => tm.sumOverSamples(bad as never)).toThrow(Error);
      expect(() => tm.meanOverSamples(bad as never)).toThrow(Error);
    }
    for (const bad of [null, [], [tm, null], [tm, 'x'], 7]) expect(() => acdc.TensorMap.join(bad as never)).toThrow(Error);
    expect(() => acdc.TensorMap.join([tm], { systemCounts: [-1] })).toThrow(/systemCounts/);
    expect(() => acdc.TensorMap.join([tm, tm], { systemCounts: [1] })).toThrow(/system counts/);
    expect(() => tm.select(null as never)).toThrow(/selection/);
    expect(() => tm.select({ center_type: 1.5 })).toThrow(/integer/);
    for (const bad of [null, 42, '', {}]) {
      expect(() => tm.saveSync(bad as never)).toThrow(Error);
      expect(() => acdc.TensorMap.loadSync(bad as never)).toThrow(Error);
      expect(() => acdc.readNpySync(bad as never)).toThrow(Error);
      expect(() => acdc.writeNpySync(bad as never, { data: new Float64Array(1), shape: [1] })).toThrow(Error);
    }
    expect(() => tm.saveSync('/nonexistent-dir/x.mts')).toThrow(/nonexistent-dir/);
    await expect(tm.saveAsync('/nonexistent-dir/x.mts')).rejects.toThrow(/nonexistent-dir/);
    await expect(acdc.readNpy('/nonexistent-dir/x.npy')).rejects.toThrow(/nonexistent-dir/);
    for (const bad of [null, {}, { data: [1, 2], shape: [2] }, { data: new Float64Array(2), shape: [3] }, { data: new Float64Array(2), shape: [-2, -1] }]) {
      expect(() => acdc.writeNpySync('/tmp/acdc-never.npy', bad as never)).toThrow(Error);
    }
    expect(() => acdc.toArray(null as never)).toThrow(/TensorBlock/);
    expect(() => acdc.TensorMap.fromBuffer('bytes' as never)).toThrow(/Buffer/);
  });
});
