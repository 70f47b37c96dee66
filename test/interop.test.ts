// Files that Python reads: acdc writes .mts/.npy, metatensor-core and numpy
// load them (and write back), acdc reads what Python wrote. The Python is
// ACDC_INTEROP_PYTHON (set by .ci/run), else a python3 that imports numpy and
// metatensor, else a venv that scripts/ci/interop-python.sh makes once under
// node_modules/.cache (dev-only: acdc itself never needs Python). The
// committed fixture part (files written by Python earlier) needs none.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SoapPowerSpectrum, TensorMap, readNpySync, readXyzSync, writeNpySync } from 'acdc-ml';
import { expectSameTensor } from './tensor_helpers';
import { checked, run } from './spawn_helpers';

const fixtures = path.join(__dirname, 'fixtures', 'metatensor');

/** A Python with numpy and metatensor-core, made on first use if need be. */
async function interopPython(): Promise<string> {
  const configured = process.env.ACDC_INTEROP_PYTHON;
  if (configured) return configured;
  // no python3 at all (spawn fails) counts as one without the packages
  const probe = await run('python3', ['-c', 'import metatensor, numpy']).catch(() => null);
  if (probe?.status === 0) return 'python3';
  const root = path.join(__dirname, '..');
  const venv = path.join(root, 'node_modules', '.cache', 'acdc-interop-venv');
  // installs numpy and metatensor-core with pip (once; reused afterwards)
  await checked('bash', [path.join(root, 'scripts', 'ci', 'interop-python.sh'), venv], { echo: true });
  return path.join(venv, 'bin', 'python');
}

describe('files written by Python (committed fixtures)', () => {
  const meta = JSON.parse(fs.readFileSync(path.join(fixtures, 'meta.json'), 'utf8'));
  const frames = readXyzSync(path.join(fixtures, 'systems.xyz'));

  it('reads featomic output saved by metatensor.save and matches acdc block by block (≤1e-7, splined)', () => {
    const ref = TensorMap.loadSync(path.join(fixtures, 'featomic_soap.mts'));
    const ours = new SoapPowerSpectrum(meta.hypers).computeSync(frames, { gradients: ['positions', 'strain'] });
    expect(ours.keys).toEqual(ref.keys);
    for (let k = 0; k < ref.keys.count; k++) {
      const r = ref.block(k);
      const o = ours.block(k);
      expect(o.samples).toEqual(r.samples);
      expect(o.properties).toEqual(r.properties);
      for (const [name, x, y] of [
        ['values', o, r],
        ['positions', o.gradient('positions')!, r.gradient('positions')!],
        ['strain', o.gradient('strain')!, r.gradient('strain')!],
      ] as const) {
        expect(x.samples, name).toEqual(y.samples);
        expect(x.components, name).toEqual(y.components);
        let scale = 0;
        for (const v of y.values) scale = Math.max(scale, Math.abs(v));
        let err = 0;
        for (let i = 0; i < y.values.length; i++) err = Math.max(err, Math.abs(x.values[i] - y.values[i]));
        expect(err, `block ${k} ${name}`).toBeLessThanOrEqual(1e-7 * Math.max(scale, 1e-5));
      }
    }
  });

  it('reads .npy files written by numpy (float64, float32, int32, 3-D)', () => {
    for (const [file, dtype, shape] of [
      ['f8_2d.npy', '<f8', [3, 4]],
      ['f4_2d.npy', '<f4', [3, 4]],
      ['i4_1d.npy', '<i4', [12]],
      ['f8_3d.npy', '<f8', [2, 3, 2]],
    ] as const) {
      const a = readNpySync(path.join(fixtures, file));
      expect(a.dtype, file).toBe(dtype);
      expect(a.shape, file).toEqual(shape);
      // every fixture holds (i - 5.5) * 0.25 for i = 0..11 in C order
      expect(Array.from(a.data), file).toEqual(Array.from({ length: 12 }, (_, i) => (dtype === '<i4' ? i - 5 : (i - 5.5) * 0.25)));
    }
    expect(() => readNpySync(path.join(fixtures, 'fortran.npy'))).toThrow(/Fortran/);
  });
});

describe('live round trip with metatensor-core and numpy', () => {
  let py = '';
  beforeAll(async () => {
    py = await interopPython();
  }, 600_000);

  it('Python loads what acdc writes, and acdc reads what Python writes, identically', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-interop-'));
    const frames = readXyzSync(path.join(fixtures, 'systems.xyz'));
    const meta = JSON.parse(fs.readFileSync(path.join(fixtures, 'meta.json'), 'utf8'));
    const tm = new SoapPowerSpectrum(meta.hypers).computeSync(frames, { gradients: ['positions'] });
    tm.saveSync(path.join(dir, 'soap.mts'));
    const design = tm.sumOverSamples('atom').keysToProperties(['center_type', 'neighbor_1_type', 'neighbor_2_type']).toArray();
    writeNpySync(path.join(dir, 'design.npy'), design);
    writeNpySync(path.join(dir, 'design32.npy'), design, { dtype: 'float32' });

    const out = await checked(py, [path.join(__dirname, 'interop', 'metatensor_roundtrip.py'), dir]);
    const summary = JSON.parse(out.trim().split('\n').pop()!);
    expect(summary.keys).toEqual(tm.keys.names);
    expect(summary.blocks).toBe(tm.keys.count);
    expect(summary.gradients).toEqual(['positions']);
    expect(summary.gradient_shapes).toEqual(tm.blocks().map((b) => b.gradient('positions')!.shape));
    let sum = 0;
    for (const b of tm.blocks()) for (const v of b.values) sum += v;
    expect(summary.value_sum).toBeCloseTo(sum, 10);
    expect(summary.design_shape).toEqual(design.shape);
    expect(summary.design_dtype).toBe('float64');
    expect(summary.design32_dtype).toBe('float32');
    expect(summary.design32_matches).toBe(true);

    // what Python wrote, read back by acdc
    expectSameTensor(TensorMap.loadSync(path.join(dir, 'py_soap.mts')), tm);
    expectSameTensor(tm.keysToProperties(['neighbor_1_type', 'neighbor_2_type']), TensorMap.loadSync(path.join(dir, 'py_ktp.mts')));
    expectSameTensor(
      tm.keysToProperties(['neighbor_1_type', 'neighbor_2_type']).keysToSamples('center_type'),
      TensorMap.loadSync(path.join(dir, 'py_kts.mts')),
    );
    const t = readNpySync(path.join(dir, 'py_design.npy'));
    const [rows, cols] = design.shape;
    expect(t.shape).toEqual([cols, rows]);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c += 13) expect(t.data[c * rows + r]).toBe(design.data[r * cols + c]);
  });
});
