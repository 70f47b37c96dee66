// `acdc featurize` to .npy through the fused native path (design rows
// computed, reduced and placed in Rust) against the tensor path it replaces
// (ACDC_FEATURIZE_TENSORS=1: TensorMap operations in JS): the .npy and
// .labels.json files must be byte-identical, the summaries equal, and bad
// input must fail with the same one-line message and leave no file.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SoapPowerSpectrum, System, TensorMap, formatXyz, parseXyz, readNpySync } from 'acdc-ml';
import { run } from './spawn_helpers';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const examples = path.join(root, 'examples');

async function acdc(args: string[], tensors: boolean, cwd: string) {
  const env: Record<string, string | undefined> = { ...process.env, ACDC_NUM_THREADS: '2' };
  if (tensors) env.ACDC_FEATURIZE_TENSORS = '1';
  else delete env.ACDC_FEATURIZE_TENSORS;
  const r = await run(process.execPath, [cli, 'featurize', ...args], { cwd, env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const small = {
  cutoff: { radius: 4, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 3, radial: { type: 'Gto', max_radial: 3 } },
};
const radial = { ...small, basis: { radial: { type: 'Gto', max_radial: 4 } } };

/**
 * Molecules where every species is absent from some frames (H, Li, C, N, O,
 * F, Cl), one frame without atoms, one single atom, and a periodic cell.
 */
function mixedFile(dir: string): string {
  const none = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  const frames = [
    new System({ types: [6, 1, 1, 1, 1], positions: [0, 0, 0, 0.63, 0.63, 0.63, -0.63, -0.63, 0.63, -0.63, 0.63, -0.63, 0.63, -0.63, -0.63], cell: none }),
    new System({ types: [8, 1, 1], positions: [0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0], cell: none }),
    new System({ types: [], positions: [], cell: none }),
    new System({ types: [7, 1, 1, 1], positions: [0, 0, 0.1, 0.94, 0, -0.3, -0.47, 0.81, -0.3, -0.47, -0.81, -0.3], cell: none }),
    new System({ types: [3], positions: [0, 0, 0], cell: none }),
    new System({ types: [9, 6, 17, 1], positions: [0, 0, 1.35, 0, 0, 0, 0, 0, -1.77, 1.0, 0.2, 0.1], cell: none }),
    new System({ types: [3, 9], positions: [0.1, 0.2, 0.3, 1.6, 1.7, 1.8], cell: [3.2, 0, 0, 0.4, 3.1, 0, 0.2, 0.3, 3.3], pbc: true }),
    new System({ types: [1, 1], positions: [0, 0, 0, 0.74, 0, 0], cell: none }),
  ];
  const file = path.join(dir, 'mixed.xyz');
  fs.writeFileSync(file, formatXyz(frames));
  return file;
}

/** Runs both paths into folders a/ and b/ (same file names, so the sidecars can be compared byte for byte). */
async function bothPaths(input: string, args: string[], dir: string) {
  const out: Record<string, { npy: Buffer; labels: Buffer; summary: Record<string, unknown> }> = {};
  for (const [name, tensors] of [['tensor', true], ['fused', false]] as const) {
    const d = path.join(dir, name);
    fs.mkdirSync(d, { recursive: true });
    const r = await acdc([input, '--out', 'x.npy', '--json', ...args], tensors, d);
    expect(r.status, `${name} ${args.join(' ')}: ${r.stderr}`).toBe(0);
    const summary = JSON.parse(r.stdout) as Record<string, unknown>;
    delete summary.seconds;
    delete summary.structuresPerSecond;
    out[name] = { npy: fs.readFileSync(path.join(d, 'x.npy')), labels: fs.readFileSync(path.join(d, 'x.npy.labels.json')), summary };
    expect(fs.readdirSync(d).sort(), `${name}: no temporary file left`).toEqual(['x.npy', 'x.npy.labels.json']);
  }
  return out;
}

async function expectSame(input: string, args: string[], dir: string) {
  const { tensor, fused } = await bothPaths(input, args, dir);
  const what = `${path.basename(input)} ${args.join(' ')}`;
  expect(fused.npy.length, what).toBe(tensor.npy.length);
  expect(fused.npy.equals(tensor.npy), `${what}: .npy bytes`).toBe(true);
  expect(fused.labels.toString(), `${what}: .labels.json`).toBe(tensor.labels.toString());
  expect(fused.summary, what).toEqual(tensor.summary);
  return fused;
}

function folder(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-design-rows-'));
}

describe('acdc featurize .npy: the fused path writes the bytes of the tensor path', () => {
  it('power spectrum: per atom, sum, mean, species-mean; float64 and float32; --species with extra species', async () => {
    const dir = folder();
    const hypers = path.join(dir, 'h.json');
    fs.writeFileSync(hypers, JSON.stringify(small));
    const input = mixedFile(dir);
    let k = 0;
    for (const reduction of [[], ['--per-structure', 'sum'], ['--per-structure', 'mean'], ['--per-structure', 'species-mean']]) {
      for (const dtype of ['float64', 'float32']) {
        // batches of 3 mix the empty frame with others; --species adds
        // species of no frame (5, 11) to the columns
        const species = dtype === 'float32' ? ['--species', '1,3,5,6,7,8,9,11,17'] : [];
        const fused = await expectSame(input, ['--hypers', hypers, '--batch', '3', '--dtype', dtype, ...reduction, ...species], path.join(dir, String(k++)));
        expect(fused.summary.frames).toBe(8);
        // the values are not all zeros
        const m = readNpySync(path.join(dir, String(k - 1), 'fused', 'x.npy'));
        expect(m.data.some((v) => v !== 0)).toBe(true);
      }
    }
  });

  it('radial spectrum, and the bundled examples with the default hyper-parameters', async () => {
    const dir = folder();
    const hypers = path.join(dir, 'r.json');
    fs.writeFileSync(hypers, JSON.stringify(radial));
    const input = mixedFile(dir);
    let k = 0;
    for (const reduction of [[], ['--per-structure', 'mean'], ['--per-structure', 'species-mean']]) {
      await expectSame(input, ['--calculator', 'soap_radial_spectrum', '--hypers', hypers, '--batch', '2', ...reduction], path.join(dir, String(k++)));
    }
    await expectSame(path.join(examples, 'molecules.xyz'), ['--per-structure', 'mean', '--batch', '7'], path.join(dir, String(k++)));
    await expectSame(path.join(examples, 'silicon-defect.xyz'), ['--per-structure', 'sum', '--dtype', 'float32'], path.join(dir, String(k++)));
    await expectSame(path.join(examples, 'water.xyz'), [], path.join(dir, String(k++)));
  });

  it('alchemical hypers (density.alchemical): .npy on both paths equals the .mts of the same run, bit for bit', async () => {
    const dir = folder();
    const hypers = path.join(dir, 'a.json');
    // 2 pseudo-elements over the 7 species of mixedFile and 2 absent ones
    const types = [1, 3, 5, 6, 7, 8, 9, 11, 17];
    const coupling = [types.map((t, i) => Math.cos(t + i) / 2), types.map((t) => (t % 3) - 0.75)];
    fs.writeFileSync(hypers, JSON.stringify({ ...small, density: { ...small.density, alchemical: { types, coupling } } }));
    const input = mixedFile(dir);
    const m = await acdc([input, '--hypers', hypers, '--batch', '3', '--out', 'x.mts'], false, dir);
    expect(m.status, m.stderr).toBe(0);
    const tm = TensorMap.loadSync(path.join(dir, 'x.mts'));
    expect(tm.keys.names).toEqual(['center_type', 'pseudo_1_type', 'pseudo_2_type']);
    let k = 0;
    for (const reduction of [[], ['--per-structure', 'sum']]) {
      const perAtom = reduction.length === 0;
      const fused = await expectSame(input, ['--hypers', hypers, '--batch', '3', ...reduction], path.join(dir, String(k++)));
      const x = readNpySync(path.join(dir, String(k - 1), 'fused', 'x.npy'));
      const labels = JSON.parse(fused.labels.toString());
      expect(labels.columns.names).toEqual([...(perAtom ? [] : ['center_type']), 'pseudo_1_type', 'pseudo_2_type', 'l', 'n_1', 'n_2']);
      const columns = x.shape[1];
      const column = new Map<string, number>(labels.columns.values.map((v: number[], c: number) => [v.join(','), c]));
      const row = new Map<string, number>(labels.rows.values.map((v: number[], r: number) => [v.join(','), r]));
      // the .mts values placed (per atom) or summed in sample order from
      // zero (per structure), as the .npy paths do: equal with ===, where
      // only -0 and +0 are not told apart (placement into zeros gives +0)
      const expected = new Float64Array(x.data.length);
      for (let b = 0; b < tm.keys.count; b++) {
        const key = Array.from(tm.keys.row(b));
        const block = tm.block(b);
        const props = block.properties;
        const sys = block.samples.column('system');
        const atom = block.samples.column('atom');
        for (let r = 0; r < block.samples.count; r++) {
          const i = row.get(perAtom ? `${sys[r]},${atom[r]}` : `${sys[r]}`)!;
          for (let p = 0; p < props.count; p++) {
            const c = column.get([...(perAtom ? key.slice(1) : key), ...props.row(p)].join(','))!;
            expected[i * columns + c] += block.values[r * props.count + p];
          }
        }
      }
      let differ = 0;
      for (let i = 0; i < expected.length; i++) if (x.data[i] !== expected[i]) differ++;
      expect(differ, `${reduction.join(' ') || 'per atom'}: entries that differ from the .mts`).toBe(0);
      expect(x.data.some((v) => v !== 0)).toBe(true);
    }
  });

  it('rows equal the API: mean over atoms of SoapPowerSpectrum.compute, placed in the sidecar columns', async () => {
    const dir = folder();
    const hypers = path.join(dir, 'h.json');
    fs.writeFileSync(hypers, JSON.stringify(small));
    const input = mixedFile(dir);
    const r = await acdc([input, '--hypers', hypers, '--per-structure', 'mean', '--out', 'x.npy'], false, dir);
    expect(r.status, r.stderr).toBe(0);
    const m = readNpySync(path.join(dir, 'x.npy'));
    const labels = JSON.parse(fs.readFileSync(path.join(dir, 'x.npy.labels.json'), 'utf8'));
    expect(labels.columns.names).toEqual(['center_type', 'neighbor_1_type', 'neighbor_2_type', 'l', 'n_1', 'n_2']);
    const columns = m.shape[1];
    const column = new Map<string, number>(labels.columns.values.map((v: number[], c: number) => [v.join(','), c]));
    const systems = parseXyz(fs.readFileSync(input, 'utf8'));
    const tm = new SoapPowerSpectrum(small as never).computeSync(systems);
    const expected = new Float64Array(systems.length * columns);
    for (let b = 0; b < tm.keys.count; b++) {
      const key = Array.from(tm.keys.row(b));
      const block = tm.block(b);
      const props = block.properties;
      const sys = block.samples.column('system');
      for (let r2 = 0; r2 < block.samples.count; r2++) {
        const s = sys[r2];
        for (let p = 0; p < props.count; p++) {
          const c = column.get([...key, ...props.row(p)].join(','))!;
          expected[s * columns + c] += block.values[r2 * props.count + p] / systems[s].size;
        }
      }
    }
    expect(m.shape[0]).toBe(systems.length);
    let worst = 0;
    for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(m.data[i] - expected[i]));
    // summation orders differ (division per term here): rounding level
    expect(worst).toBeLessThan(1e-14);
  });

  it('a batch holding only a frame without atoms gives a row of zeros (the tensor path has no block to place)', async () => {
    const dir = folder();
    const input = mixedFile(dir);
    const r = await acdc([input, '--per-structure', 'mean', '--batch', '1', '--out', 'x.npy'], false, dir);
    expect(r.status, r.stderr).toBe(0);
    const m = readNpySync(path.join(dir, 'x.npy'));
    expect(m.shape[0]).toBe(8);
    expect(m.data.subarray(2 * m.shape[1], 3 * m.shape[1]).every((v) => v === 0)).toBe(true);
  });

  it('bad input: the same one-line errors (frame and line numbers), and no file', async () => {
    const dir = folder();
    const input = mixedFile(dir);
    const text = fs.readFileSync(input, 'utf8');
    const lines = text.split('\n');
    // an unknown element in frame 5 (its second atom, C), then a file cut
    // after the first atom of frame 5
    const header5 = [5, 3, 0, 4, 1].reduce((n, a) => n + a + 2, 0);
    const bad = lines.slice();
    expect(bad[header5 + 3]).toMatch(/^C\s/);
    bad[header5 + 3] = bad[header5 + 3].replace(/^C/, 'Xx');
    const cases: [string, string, string[]][] = [
      ['unknown.xyz', bad.join('\n'), []],
      ['truncated.xyz', lines.slice(0, header5 + 3).join('\n') + '\n', []],
      // with --species there is no scan: the errors come from the batches
      ['unknown-in-batch.xyz', bad.join('\n'), ['--species', '1,3,6,7,8,9,17']],
      ['truncated-in-batch.xyz', lines.slice(0, header5 + 3).join('\n') + '\n', ['--species', '1,3,6,7,8,9,17']],
      ['species.xyz', text, ['--species', '1,6,7,8']],
      ['huge-cutoff.xyz', text, ['--hypers', path.join(dir, 'huge.json')]],
      ['budget.xyz', text, ['--max-memory', '2K']],
    ];
    fs.writeFileSync(path.join(dir, 'huge.json'), JSON.stringify({ ...small, cutoff: { radius: 500, smoothing: { type: 'ShiftedCosine', width: 0.5 } } }));
    for (const [name, content, extra] of cases) {
      fs.writeFileSync(path.join(dir, name), content);
      const messages: string[] = [];
      for (const tensors of [true, false]) {
        const d = fs.mkdtempSync(path.join(dir, 'run-'));
        const r = await acdc([path.join(dir, name), '--out', 'x.npy', '--per-structure', 'mean', '--batch', '2', ...extra], tensors, d);
        expect(r.status, `${name}: ${r.stdout}`).toBe(1);
        const err = r.stderr.trim().split('\n');
        expect(err, `${name}: ${r.stderr}`).toHaveLength(1);
        expect(err[0]).toMatch(/^acdc: /);
        messages.push(err[0]);
        expect(fs.readdirSync(d), `${name}: nothing written`).toEqual([]);
      }
      expect(messages[1], name).toBe(messages[0]);
      if (name === 'species.xyz') expect(messages[1]).toMatch(/frame 4 \(line \d+\): species 3 is not in --species 1,6,7,8/);
      if (name.startsWith('unknown') || name.startsWith('truncated')) expect(messages[1]).toMatch(/line 27\b/);
      if (name.endsWith('-in-batch.xyz')) expect(messages[1]).toMatch(/after 4 complete frames/);
    }
  });
});
