// Issue 24, core items: hostile `.acdc` files (built here, with the CRC
// recomputed as anyone can), budgets from the real neighbour counts, the
// memory budget of predict, absurd training targets. Each reproducer of the
// audit is a test: an ordinary Error naming the field, never an abort.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { LinearModel, SoapPowerSpectrum, SparseGPR, System, formatXyz, loadModelSync, modelFromBuffer } from 'acdc-ml';
import { run } from './spawn_helpers';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');

const HYPERS = {
  cutoff: { radius: 3.0, smoothing: { type: 'ShiftedCosine' as const, width: 0.5 } },
  density: { type: 'Gaussian' as const, width: 0.4 },
  basis: { type: 'TensorProduct' as const, max_angular: 2, radial: { type: 'Gto' as const, max_radial: 2 } },
};

const frames = Array.from({ length: 4 }, (_, k) => {
  const d = 0.05 * k;
  return new System({
    types: [1, 8, 1, k % 2 ? 1 : 8],
    positions: [0, 0, 0, 1.1 + d, 0.2, 0, 0.1, 1.3 - d, 0.3, 1.2, 1.0, 1.1 + d],
    info: { energy: -10 + 0.1 * k },
  });
});

const gpr = SparseGPR.fitSync(frames, { hypers: HYPERS, sigmas: { energy: 0.01 }, sparse: { count: 3, method: 'fps' }, kernel: { zeta: 2, delta: 0.5 } });
const original = Buffer.from(gpr.toBuffer());

type Header = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The file with its header and data edited and the CRC recomputed. */
function rewrite(bytes: Buffer, edit: (h: Header, data: Buffer) => Buffer | void): Buffer {
  const headerLen = Number(bytes.readBigUInt64LE(16));
  const header = JSON.parse(bytes.subarray(24, 24 + headerLen).toString('utf8')) as Header;
  const dataStart = Math.ceil((24 + headerLen) / 8) * 8;
  let data: Buffer = Buffer.from(bytes.subarray(dataStart, bytes.length - 4));
  data = edit(header, data) ?? data;
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  let body = Buffer.concat([bytes.subarray(0, 16), len, h]);
  body = Buffer.concat([body, Buffer.alloc((8 - (body.length % 8)) % 8), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(zlib.crc32(body));
  return Buffer.concat([body, crc]);
}

function folder(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-hostile-'));
}

describe('hostile model files are refused at load', () => {
  it('the rewrite helper alone changes nothing the model predicts', () => {
    // (JSON.stringify may spell a float differently from the writer: the bytes can differ, the numbers not)
    expect(Array.from(modelFromBuffer(rewrite(original, () => undefined)).predictSync(frames).energy)).toEqual(Array.from(gpr.predictSync(frames).energy));
  });

  it('item 1: sparse_counts [0] with block_size 2^40 or 2^58 and empty arrays (aborted the process at predict)', () => {
    for (const block of [2 ** 40, 2 ** 58]) {
      const hostile = rewrite(original, (h) => {
        h.sparse_counts = [0, 0];
        h.block_size = block;
        h.n_features = block * 3;
        h.arrays = ['weights', 'r_factor', 'cholesky', 'sparse_features'].map((name, k) => ({ name, offset: 0, shape: k === 0 ? [0] : [0, 0], dtype: '<f8' }));
        return Buffer.alloc(0);
      });
      expect(() => modelFromBuffer(hostile, 'hostile.acdc')).toThrow(/hostile\.acdc.*block_size/);
    }
    expect(() => modelFromBuffer(rewrite(original, (h) => void (h.sparse_counts = [0, 6])))).toThrow(/sparse_counts for species 1 = 0/);
  });

  it('item 2: a header listing 100 000 species is refused before any pair is built', () => {
    const dir = folder();
    const file = path.join(dir, 'species.acdc');
    fs.writeFileSync(
      file,
      rewrite(original, (h) => {
        h.species = Array.from({ length: 100_000 }, (_, k) => k + 1);
        h.neighbor_species = h.species;
      }),
    );
    expect(() => loadModelSync(file)).toThrow(/100000 species with block_size/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('item 11: zeta, delta, jitter are validated as fit validates them', () => {
    const cases: [string, unknown, RegExp][] = [
      ['zeta', 2.5, /kernel\.zeta = 2\.5 \(expected an integer from 1 to 100\)/],
      ['zeta', 0, /kernel\.zeta = 0/],
      ['zeta', -1, /kernel\.zeta = -1/],
      ['zeta', 1e10, /kernel\.zeta = 10000000000/],
      ['delta', 0, /kernel\.delta = 0 \(expected a positive number\)/],
      ['jitter', -1, /jitter = -1/],
    ];
    for (const [field, value, message] of cases) {
      expect(() => modelFromBuffer(rewrite(original, (h) => void (h[field] = value)))).toThrow(message);
    }
    // fit says the same
    expect(() => SparseGPR.fitSync(frames, { hypers: HYPERS, sigmas: { energy: 0.01 }, sparse: { count: 3 }, kernel: { zeta: 101 } })).toThrow(/kernel\.zeta = 101/);
  });

  it('item 11: another valid zeta, delta or jitter (which would predict something else) is caught by the stored Cholesky factor', () => {
    for (const [field, value] of [['zeta', 3], ['delta', 0.6], ['jitter', 1e-6]] as const) {
      expect(() => modelFromBuffer(rewrite(original, (h) => void (h[field] = value)))).toThrow(/does not match K_MM/);
    }
  });

  it('item 11: a NaN or infinite weight is refused at load (gave energy null over HTTP, nan in acdc predict)', () => {
    for (const v of [NaN, Infinity]) {
      const hostile = rewrite(original, (_, data) => void data.writeDoubleLE(v, 0));
      expect(() => modelFromBuffer(hostile)).toThrow(/array "weights"\[0\] = (NaN|inf)/);
    }
  });

  it('item 11: acdc predict on a tampered model exits non-zero with one line and writes nothing', async () => {
    const dir = folder();
    const model = path.join(dir, 'nan.acdc');
    fs.writeFileSync(model, rewrite(original, (_, data) => void data.writeDoubleLE(NaN, 0)));
    const xyz = path.join(dir, 'in.xyz');
    fs.writeFileSync(xyz, formatXyz(frames));
    const out = path.join(dir, 'out.xyz');
    const r = await run(process.execPath, [cli, 'predict', model, xyz, '-o', out]);
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^acdc: .*nan\.acdc.*weights/);
    expect(fs.existsSync(out)).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('item 19: hypers that do not match the arrays fail at load, not at every predict', () => {
    const hostile = rewrite(original, (h) => void (h.hypers.basis.radial.max_radial = 3));
    expect(() => modelFromBuffer(hostile)).toThrow(/the hypers do not match the arrays/);
  });

  it('edited array offsets, shapes and trailing bytes are refused', () => {
    expect(() => modelFromBuffer(rewrite(original, (h) => void (h.arrays[0].offset = 8)))).toThrow(/offset/);
    expect(() => modelFromBuffer(rewrite(original, (h) => void (h.arrays[0].shape = [2 ** 40])))).toThrow(/shape/);
    expect(() => modelFromBuffer(rewrite(original, (_, data) => Buffer.concat([data, Buffer.alloc(8)])))).toThrow(/after the last array/);
  });

  it('a linear model round-trips and its hostile twin is refused', () => {
    const linear = LinearModel.fitSync(frames, { hypers: HYPERS, regularizer: 1e-6 });
    const bytes = Buffer.from(linear.toBuffer());
    expect(Array.from(modelFromBuffer(bytes).predictSync(frames).energy)).toEqual(Array.from(linear.predictSync(frames).energy));
    expect(() => modelFromBuffer(rewrite(bytes, (h) => void (h.regularizer = -1)))).toThrow(/regularizer = -1/);
    expect(() => modelFromBuffer(rewrite(bytes, (h) => void (h.block_size = 2 ** 40)))).toThrow(/block_size/);
  });
});

describe('memory budgets from the real work', () => {
  it('item 3: a dense cluster inside a large periodic cell is budgeted by its real neighbour count', () => {
    // 4000 atoms in a 2 Å cube: 1.6e7 pairs (1.7 GB of neighbour list); the
    // cell's average density (4000 / 1e6 Å³) gave about 2e4 pairs
    const n = 4000;
    let seed = 1;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2;
    const positions = Array.from({ length: 3 * n }, rand);
    const cluster = new System({ types: new Array(n).fill(29), positions, cell: [100, 0, 0, 0, 100, 0, 0, 0, 100], pbc: [true, true, true] });
    const calc = new SoapPowerSpectrum({ ...HYPERS, cutoff: { radius: 4, smoothing: { type: 'ShiftedCosine', width: 0.5 } } });
    expect(() => calc.computeSync(cluster, { maxMemory: '200M' })).toThrow(/neighbour pairs|neighbour list/);
    // the same atoms spread over the cell fit easily
    const spread = new System({ types: new Array(n).fill(29), positions: positions.map((x) => x * 50), cell: [100, 0, 0, 0, 100, 0, 0, 0, 100], pbc: [true, true, true] });
    expect(() => calc.computeSync(spread, { maxMemory: '200M' })).not.toThrow();
  });

  it('item 9: predict honours maxMemory before computing', async () => {
    expect(() => gpr.predictSync(frames, { maxMemory: 1000 })).toThrow(/predicting systems\[0\.\.4\].*more than the budget/);
    await expect(gpr.predict(frames, { maxMemory: 1000 })).rejects.toThrow(/more than the budget/);
    expect(gpr.predictSync(frames, { maxMemory: '1G' }).energy).toHaveLength(4);
    expect(() => gpr.predictSync(frames, { maxMemory: -1 })).toThrow(/maxMemory/);
  });
});

describe('output sizes are checked before the work (item 4)', () => {
  const water = new System({ types: [8, 1, 1], positions: [0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0] });

  it('acdc featurize --species with 3000 entries is refused before any key is built', async () => {
    const dir = folder();
    const xyz = path.join(dir, 'water.xyz');
    fs.writeFileSync(xyz, formatXyz([water]));
    const out = path.join(dir, 'f.npy');
    const species = Array.from({ length: 3000 }, (_, k) => k + 1).join(',');
    for (const extra of [[], ['--per-structure', 'mean']]) {
      const r = await run(process.execPath, [cli, 'featurize', xyz, '--species', species, '--max-memory', '1G', '-o', out, ...extra]);
      expect(r.status).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^acdc: .*3000 species/);
      expect(fs.existsSync(out)).toBe(false);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('400 pseudo-elements in density.alchemical are refused under maxMemory before the pairs are built', () => {
    const coupling = Array.from({ length: 400 }, (_, b) => [Math.cos(b), Math.sin(b)]);
    const calc = new SoapPowerSpectrum({ ...HYPERS, basis: { type: 'TensorProduct', max_angular: 6, radial: { type: 'Gto', max_radial: 7 } }, density: { type: 'Gaussian', width: 0.4, alchemical: { types: [1, 8], coupling } } });
    expect(() => calc.computeSync(water, { maxMemory: '500M' })).toThrow(/alchemical|pseudo-element/);
    // a few pseudo-elements are fine
    const small = new SoapPowerSpectrum({ ...HYPERS, density: { type: 'Gaussian', width: 0.4, alchemical: { types: [1, 8], coupling: coupling.slice(0, 3) } } });
    expect(small.computeSync(water, { maxMemory: '1G' }).length).toBeGreaterThan(0);
  });
});

describe('absurd training targets', () => {
  it('item 16: a finite energy of 1e300 is refused, naming the frame', () => {
    const bad = frames.map((s, k) => new System({ types: s.types, positions: s.positions, info: { energy: k === 2 ? 1e300 : -10 } }));
    expect(() => SparseGPR.fitSync(bad, { hypers: HYPERS, sigmas: { energy: 0.01 }, sparse: { count: 2 } })).toThrow(/systems\[2\]: energy = 1e300 eV/);
  });

  it('item 16: acdc fit with energy=1e300 exits non-zero, names the frame and writes no model', async () => {
    const dir = folder();
    const xyz = path.join(dir, 'train.xyz');
    fs.writeFileSync(xyz, formatXyz(frames.map((s, k) => new System({ types: s.types, positions: s.positions, info: { energy: k === 1 ? 1e300 : -10 } }))));
    const hypers = path.join(dir, 'hypers.json');
    fs.writeFileSync(hypers, JSON.stringify(HYPERS));
    const out = path.join(dir, 'model.acdc');
    const r = await run(process.execPath, [cli, 'fit', xyz, '--hypers', hypers, '--model', 'linear', '-o', out]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/^acdc: .*systems\[1\]: energy = 1e300/);
    expect(fs.existsSync(out)).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
