// TensorMap operations and files, each checked against a direct computation
// on small cases (gradients and absent species combinations included).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  Labels,
  SoapPowerSpectrum,
  SphericalExpansion,
  System,
  TensorBlock,
  TensorMap,
  join,
  loadNpy,
  readNpySync,
  saveNpy,
  readNpy,
  toArray,
  writeNpy,
  writeNpySync,
} from 'acdc-ml';
import { expectSameTensor } from './tensor_helpers';

const hypers = {
  cutoff: { radius: 3.5, smoothing: { type: 'ShiftedCosine' as const, width: 0.5 } },
  density: { type: 'Gaussian' as const, width: 0.3 },
  basis: { type: 'TensorProduct' as const, max_angular: 2, radial: { type: 'Gto' as const, max_radial: 2 } },
};

// Three structures; species combinations differ between them (no N-N pair
// anywhere, no O in the last one), so merged blocks have absent combinations.
const systems = [
  new System({ types: [8, 1, 1], positions: [0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0] }),
  new System({ types: [6, 8, 1, 7], positions: [0, 0, 0, 1.2, 0.1, 0, -0.5, 0.9, 0.2, -0.6, -0.8, 0.3] }),
  new System({
    types: [6, 1, 1, 1, 1],
    positions: [0, 0, 0, 0.63, 0.63, 0.63, -0.63, -0.63, 0.63, -0.63, 0.63, -0.63, 0.63, -0.63, -0.63],
    cell: [6, 0, 0, 0, 6, 0, 0, 0, 6],
    pbc: [true, true, true],
  }),
];
const soap = new SoapPowerSpectrum(hypers);
const tm = soap.computeSync(systems, { gradients: ['positions'] });

function rowIndex(labels: Labels): Map<string, number> {
  const m = new Map<string, number>();
  for (let r = 0; r < labels.count; r++) m.set(labels.row(r).join(','), r);
  return m;
}

/** Value of `block` at (sample row, component flat index, property row), or 0 when the row is absent. */
function at(block: TensorBlock | undefined, sample: number[], comp: number, prop: number[]): number {
  if (!block) return 0;
  const s = rowIndex(block.samples).get(sample.join(','));
  const p = rowIndex(block.properties).get(prop.join(','));
  if (s === undefined || p === undefined) return 0;
  const perRow = block.values.length / Math.max(1, block.samples.count);
  return block.values[s * perRow + comp * block.properties.count + p];
}

function findBlock(t: TensorMap, key: Record<string, number>): TensorBlock | undefined {
  const k = t.keys.position(key);
  return k < 0 ? undefined : t.block(k);
}

describe('keysToProperties', () => {
  it('merges neighbour species into properties, with zeros for absent combinations and gradients following', () => {
    const merged = tm.keysToProperties(['neighbor_1_type', 'neighbor_2_type']);
    expect(merged.keys.names).toEqual(['center_type']);
    expect(Array.from(merged.keys.values)).toEqual([1, 6, 7, 8]);
    let zeros = 0;
    for (let k = 0; k < merged.keys.count; k++) {
      const center = merged.keys.values[k];
      // the neighbour pairs present for this centre species, sorted
      const pairs: number[][] = [];
      for (let q = 0; q < tm.keys.count; q++) {
        if (tm.keys.values[q * 3] === center) pairs.push([tm.keys.values[q * 3 + 1], tm.keys.values[q * 3 + 2]]);
      }
      pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      const b = merged.block(k);
      expect(b.properties.names).toEqual(['neighbor_1_type', 'neighbor_2_type', 'l', 'n_1', 'n_2']);
      const nProps = tm.block(0).properties.count;
      expect(b.properties.count).toBe(pairs.length * nProps);
      for (let q = 0; q < pairs.length; q++) expect(b.properties.row(q * nProps).slice(0, 2)).toEqual(pairs[q]);
      for (let s = 0; s < b.samples.count; s++) {
        for (let p = 0; p < b.properties.count; p++) {
          const prop = b.properties.row(p);
          const src = findBlock(tm, { center_type: center, neighbor_1_type: prop[0], neighbor_2_type: prop[1] });
          const expected = at(src, b.samples.row(s), 0, prop.slice(2));
          if (!src || !rowIndex(src.samples).has(b.samples.row(s).join(','))) zeros++;
          expect(b.values[s * b.properties.count + p]).toBe(expected);
        }
      }
      const g = b.gradient('positions')!;
      for (let r = 0; r < g.samples.count; r++) {
        const [sample, system, atom] = g.samples.row(r);
        const parent = b.samples.row(sample);
        for (let x = 0; x < 3; x++) {
          for (let p = 0; p < b.properties.count; p += 7) {
            const prop = b.properties.row(p);
            const src = findBlock(tm, { center_type: center, neighbor_1_type: prop[0], neighbor_2_type: prop[1] });
            let expected = 0;
            if (src) {
              const srcSample = rowIndex(src.samples).get(parent.join(','));
              if (srcSample !== undefined) expected = at(src.gradient('positions'), [srcSample, system, atom], x, prop.slice(2));
            }
            expect(g.values[(r * 3 + x) * b.properties.count + p]).toBe(expected);
          }
        }
      }
    }
    expect(zeros).toBeGreaterThan(0);
  });

  it('takes explicit combinations for a fixed column layout', () => {
    const combos = new Labels(['neighbor_1_type', 'neighbor_2_type'], [[1, 1], [1, 6], [1, 7], [1, 8], [8, 16]]);
    const oxygen = new TensorMap(tm.keys, tm.blocks()).select({ center_type: 8, neighbor_1_type: 1 });
    const merged = oxygen.keysToProperties(combos);
    const b = merged.block({ center_type: 8 });
    const n = tm.block(0).properties.count;
    expect(b.properties.count).toBe(5 * n);
    // [8, 16] never occurs: its columns are zeros
    for (let s = 0; s < b.samples.count; s++) for (let p = 4 * n; p < 5 * n; p++) expect(b.values[s * 5 * n + p]).toBe(0);
    const src = tm.block({ center_type: 8, neighbor_1_type: 1, neighbor_2_type: 6 });
    const s0 = rowIndex(b.samples).get(src.samples.row(0).join(','))!;
    expect(Array.from(b.values.subarray(s0 * 5 * n + n, s0 * 5 * n + 2 * n))).toEqual(Array.from(src.values.subarray(0, n)));
    expect(() => tm.keysToProperties(new Labels(['neighbor_1_type', 'neighbor_2_type'], [[1, 1]]))).toThrow(/not among the values to move/);
    expect(() => tm.keysToProperties('no_such_key')).toThrow(/no_such_key/);
    expect(() => tm.keysToProperties([])).toThrow(/non-empty/);
  });
});

describe('keysToSamples', () => {
  it('moves the centre species into sorted samples', () => {
    const merged = tm.keysToProperties(['neighbor_1_type', 'neighbor_2_type']).keysToSamples('center_type');
    expect(merged.keys.names).toEqual(['_']);
    const b = merged.block(0);
    expect(b.samples.names).toEqual(['system', 'atom', 'center_type']);
    const atoms = systems.reduce((n, s) => n + s.size, 0);
    expect(b.samples.count).toBe(atoms);
    for (let r = 1; r < b.samples.count; r++) {
      const [s0, a0] = b.samples.row(r - 1);
      const [s1, a1] = b.samples.row(r);
      expect(s1 > s0 || (s1 === s0 && a1 > a0)).toBe(true);
    }
    const perCenter = tm.keysToProperties(['neighbor_1_type', 'neighbor_2_type']);
    for (let r = 0; r < b.samples.count; r++) {
      const [system, atom, center] = b.samples.row(r);
      expect(center).toBe(systems[system].types[atom]);
      const src = perCenter.block({ center_type: center });
      const s = rowIndex(src.samples).get(`${system},${atom}`)!;
      const n = b.properties.count;
      expect(Array.from(b.values.subarray(r * n, (r + 1) * n))).toEqual(Array.from(src.values.subarray(s * n, (s + 1) * n)));
    }
    expect(b.gradient('positions')!.samples.count).toBe(perCenter.blocks().reduce((n, x) => n + x.gradient('positions')!.samples.count, 0));
  });
});

describe('sumOverSamples / meanOverSamples', () => {
  it('per-structure features and their gradients equal direct sums over atoms', () => {
    const sum = tm.sumOverSamples('atom');
    const mean = tm.meanOverSamples(['atom']);
    for (let k = 0; k < tm.keys.count; k++) {
      const src = tm.block(k);
      const s = sum.block(k);
      const m = mean.block(k);
      expect(s.samples.names).toEqual(['system']);
      const n = src.properties.count;
      const expected = new Map<number, Float64Array>();
      const counts = new Map<number, number>();
      for (let r = 0; r < src.samples.count; r++) {
        const system = src.samples.row(r)[0];
        const acc = expected.get(system) ?? new Float64Array(n);
        for (let p = 0; p < n; p++) acc[p] += src.values[r * n + p];
        expected.set(system, acc);
        counts.set(system, (counts.get(system) ?? 0) + 1);
      }
      expect(s.samples.count).toBe(expected.size);
      for (let r = 0; r < s.samples.count; r++) {
        const system = s.samples.row(r)[0];
        for (let p = 0; p < n; p++) {
          expect(s.values[r * n + p]).toBeCloseTo(expected.get(system)![p], 14);
          expect(m.values[r * n + p]).toBeCloseTo(expected.get(system)![p] / counts.get(system)!, 14);
        }
      }
      // gradient of the sum: per (system, atom), the sum of the per-centre gradient rows
      const g = src.gradient('positions')!;
      const gs = s.gradient('positions')!;
      const direct = new Map<string, Float64Array>();
      for (let r = 0; r < g.samples.count; r++) {
        const [sample, system, atom] = g.samples.row(r);
        const key = `${src.samples.row(sample)[0]},${system},${atom}`;
        const acc = direct.get(key) ?? new Float64Array(3 * n);
        for (let q = 0; q < 3 * n; q++) acc[q] += g.values[r * 3 * n + q];
        direct.set(key, acc);
      }
      expect(gs.samples.count).toBe(direct.size);
      for (let r = 0; r < gs.samples.count; r++) {
        const [sample, system, atom] = gs.samples.row(r);
        const acc = direct.get(`${s.samples.row(sample)[0]},${system},${atom}`)!;
        for (let q = 0; q < 3 * n; q++) expect(gs.values[r * 3 * n + q]).toBeCloseTo(acc[q], 13);
      }
    }
    expect(() => tm.sumOverSamples('structure')).toThrow(/structure/);
  });

  // (metatensor-operations 0.5.0's mean_over_samples divides gradient rows
  // differently from these finite differences; acdc follows the derivative)
  it.each(['sum', 'mean'] as const)('the gradient of per-structure features (%s) matches finite differences', (how) => {
    const h = 1e-5;
    // two hydrogen centres: the mean differs from the sum
    const sys = systems[0];
    const reduce = (t: TensorMap) => (how === 'sum' ? t.sumOverSamples('atom') : t.meanOverSamples('atom'));
    const base = reduce(soap.computeSync([sys], { gradients: ['positions'] })).keysToProperties(['center_type', 'neighbor_1_type', 'neighbor_2_type']);
    const b = base.block(0);
    const g = b.gradient('positions')!;
    const n = b.properties.count;
    const displaced = (atom: number, x: number, d: number) => {
      const pos = Float64Array.from(sys.positions);
      pos[3 * atom + x] += d;
      const t = reduce(soap.computeSync([new System({ types: sys.types, positions: pos, cell: sys.cell, pbc: sys.pbc })]));
      return t.keysToProperties(new Labels(b.properties.names.slice(0, 3), uniqueKeys(b.properties)));
    };
    for (const atom of [0, 2]) {
      for (const x of [0, 1]) {
        const plus = displaced(atom, x, h).block(0).values;
        const minus = displaced(atom, x, -h).block(0).values;
        const r = rowIndex(g.samples).get(`0,0,${atom}`)!;
        let maxErr = 0;
        let maxVal = 0;
        for (let p = 0; p < n; p++) {
          const fd = (plus[p] - minus[p]) / (2 * h);
          maxErr = Math.max(maxErr, Math.abs(fd - g.values[(r * 3 + x) * n + p]));
          maxVal = Math.max(maxVal, Math.abs(fd));
        }
        expect(maxErr / maxVal).toBeLessThan(1e-6);
      }
    }
  });
});

function uniqueKeys(properties: Labels): number[][] {
  const seen = new Map<string, number[]>();
  for (let r = 0; r < properties.count; r++) {
    const k = properties.row(r).slice(0, 3);
    seen.set(k.join(','), k);
  }
  return [...seen.values()];
}

describe('join', () => {
  it('batches joined along samples equal one computation over all systems, gradients included', () => {
    const a = soap.computeSync(systems.slice(0, 2), { gradients: ['positions'] });
    const b = soap.computeSync(systems.slice(2), { gradients: ['positions'] });
    const joined = join([a, b]);
    expect(joined.keys).toEqual(tm.keys);
    for (let k = 0; k < tm.keys.count; k++) {
      const x = joined.block(k);
      const y = tm.block(k);
      expect(x.samples).toEqual(y.samples);
      expect(Array.from(x.values)).toEqual(Array.from(y.values));
      const gx = x.gradient('positions')!;
      const gy = y.gradient('positions')!;
      expect(gx.samples).toEqual(gy.samples);
      expect(Array.from(gx.values)).toEqual(Array.from(gy.values));
    }
    // explicit counts: an empty trailing structure still shifts the next batch
    const shifted = TensorMap.join([b, b], { systemCounts: [3, 1] });
    expect(shifted.block(0).samples.row(shifted.block(0).samples.count - 1)[0]).toBe(3);
    expect(() => TensorMap.join([])).toThrow(/non-empty/);
    const se = new SphericalExpansion(hypers).computeSync(systems[0]);
    expect(() => join([a, se])).toThrow(/key names/);
  });
});

describe('select, toArray, float32', () => {
  it('selects blocks by key and hands out dense arrays', () => {
    const hydrogen = tm.select({ center_type: 1 });
    expect(hydrogen.keys.count).toBe(tm.blocks({ center_type: 1 }).length);
    expect(hydrogen.block(0)).toBe(tm.blocks({ center_type: 1 })[0]);
    const design = tm.sumOverSamples('atom').keysToProperties(['center_type', 'neighbor_1_type', 'neighbor_2_type']);
    const arr = design.toArray();
    expect(arr.shape).toEqual([3, design.block(0).properties.count]);
    expect(arr.data).toBe(design.block(0).values);
    const f32 = toArray(design.block(0), { dtype: 'float32' });
    expect(f32.data).toBeInstanceOf(Float32Array);
    for (let i = 0; i < arr.data.length; i += 97) expect(f32.data[i]).toBe(Math.fround(arr.data[i]));
    expect(toArray(design).data).toBe(arr.data);
    expect(() => tm.toArray()).toThrow(/exactly one block/);
    expect(() => toArray(design.block(0), { dtype: 'int8' as 'float32' })).toThrow(/dtype/);
  });
});

describe('files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-files-'));

  it('.mts round trip (sync, async, buffer) keeps every label, value and gradient', async () => {
    const file = path.join(dir, 'soap.mts');
    tm.saveSync(file);
    const back = TensorMap.loadSync(file);
    const viaAsync = path.join(dir, 'soap-async.mts');
    await tm.saveAsync(viaAsync);
    const back2 = await TensorMap.loadAsync(viaAsync);
    const back3 = TensorMap.fromBuffer(tm.toBuffer());
    for (const t of [back, back2, back3]) expectSameTensor(t, tm);
    expect(fs.readFileSync(file).subarray(0, 2).toString()).toBe('PK');
  });

  it('malformed and truncated .mts files give clear errors', () => {
    const file = path.join(dir, 'soap.mts');
    tm.saveSync(file);
    const bytes = fs.readFileSync(file);
    const truncated = path.join(dir, 'truncated.mts');
    fs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    expect(() => TensorMap.loadSync(truncated)).toThrow(/truncated\.mts/);
    const text = path.join(dir, 'text.mts');
    fs.writeFileSync(text, 'hello');
    expect(() => TensorMap.loadSync(text)).toThrow(/zip/);
    expect(() => TensorMap.loadSync(path.join(dir, 'missing.mts'))).toThrow(/missing\.mts/);
    expect(() => TensorMap.fromBuffer(new Uint8Array(10))).toThrow(/zip/);
    expect(() => tm.saveSync('')).toThrow(/path/);
    return expect(TensorMap.loadAsync(truncated)).rejects.toThrow(/truncated\.mts/);
  });

  it('.npy round trip in float64 and float32, and malformed files', async () => {
    const design = tm.sumOverSamples('atom').keysToProperties(['center_type', 'neighbor_1_type', 'neighbor_2_type']).toArray();
    const f64 = path.join(dir, 'x.npy');
    writeNpySync(f64, design);
    const back = readNpySync(f64);
    expect(back.shape).toEqual(design.shape);
    expect(back.dtype).toBe('<f8');
    expect(back.data).toEqual(design.data);
    expect(loadNpy(f64).data).toEqual(design.data);
    saveNpy(f64, design);
    expect(readNpySync(f64).data).toEqual(design.data);
    const f32 = path.join(dir, 'x32.npy');
    await writeNpy(f32, design, { dtype: 'float32' });
    const back32 = await readNpy(f32);
    expect(back32.dtype).toBe('<f4');
    for (let i = 0; i < design.data.length; i += 31) expect(back32.data[i]).toBe(Math.fround(design.data[i]));
    expect(() => writeNpySync(f64, { data: new Float64Array(5), shape: [2, 3] })).toThrow(/5 values/);
    const bad = path.join(dir, 'bad.npy');
    fs.writeFileSync(bad, fs.readFileSync(f64).subarray(0, 100));
    expect(() => readNpySync(bad)).toThrow(/truncated/);
    fs.writeFileSync(bad, 'not numpy at all');
    expect(() => readNpySync(bad)).toThrow(/magic/);
  });
});
