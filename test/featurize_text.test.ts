// featurizeText: extended XYZ held in memory → the .npy bytes and sidecar
// that `acdc featurize --out x.npy` writes for the same input and options
// (the path of `acdc serve` and of queue workers), byte for byte, through
// the fused in-memory path (SOAP spectra, several batches) and through the
// file fallback (other dense calculators); bad input fails naming the text
// and its line, as the file path does.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatXyz, readXyzSync } from 'acdc-ml';
import { run } from './spawn_helpers';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
/* eslint-disable @typescript-eslint/no-require-imports */
const { featurizeText, parseXyzText, featurizeParsed } = require(path.join(root, 'dist', 'featurize', 'text.js')) as typeof import('../js/featurize/text');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-featurize-text-'));
const frames = readXyzSync(path.join(root, 'examples', 'molecules.xyz'));
// 11 molecules: batches of 4 leave a partial last batch
const text = formatXyz(frames.slice(0, 11));
const file = path.join(dir, 'input.xyz');
fs.writeFileSync(file, text);
const cmHypers = path.join(dir, 'cm.json');
fs.writeFileSync(cmHypers, JSON.stringify({ n_atoms_max: 30 }));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function cliFeatures(...options: string[]): Promise<{ npy: Buffer; labels: string }> {
  const out = path.join(dir, 'features.npy');
  const r = await run(process.execPath, [cli, 'featurize', file, '--out', out, ...options], { env: { ...process.env, ACDC_NUM_THREADS: '2' } });
  expect(r.status, r.stderr).toBe(0);
  return { npy: fs.readFileSync(out), labels: fs.readFileSync(`${out}.labels.json`, 'utf8') };
}

describe('featurizeText', () => {
  const cases: Array<[string, Record<string, unknown>, string[]]> = [
    ['power spectrum per atom, batches of 4', { calculator: 'soap_power_spectrum', batch: 4 }, ['--batch', '4']],
    ['power spectrum, per-structure mean, one batch', { calculator: 'soap_power_spectrum', perStructure: 'mean' }, ['--per-structure', 'mean']],
    ['radial spectrum, float32, species fixed, per-structure sum', { calculator: 'soap_radial_spectrum', dtype: 'float32', species: [8, 1, 6, 7, 9], perStructure: 'sum', batch: 3 }, ['--calculator', 'soap_radial_spectrum', '--dtype', 'float32', '--species', '1,6,7,8,9', '--per-structure', 'sum', '--batch', '3']],
    ['Coulomb matrix (no design rows: through a file)', { calculator: 'coulomb_matrix', hypers: cmHypers }, ['--calculator', 'coulomb_matrix', '--hypers', cmHypers]],
  ];
  for (const [name, options, flags] of cases) {
    it(`${name}: the bytes of acdc featurize --out`, async () => {
      const want = await cliFeatures(...flags);
      const got = await featurizeText(text, { ...(options as { calculator: string }), outName: 'features.npy' });
      expect(got.npy.equals(want.npy)).toBe(true);
      expect(JSON.stringify(got.labels)).toBe(want.labels);
      expect(got.frames).toBe(11);
      expect(got.atoms).toBe(frames.slice(0, 11).reduce((n, f) => n + f.size, 0));
      expect([got.rows, got.columns]).toEqual([JSON.parse(want.labels).rows.values.length, JSON.parse(want.labels).columns.values.length]);
    });
  }

  it('allocate: the .npy bytes land in the caller\'s buffer (a view of it), reused from call to call', async () => {
    const want = await cliFeatures('--per-structure', 'mean');
    let buffer: Buffer | null = null;
    const allocate = (bytes: number) => (buffer !== null && buffer.length >= bytes ? buffer : (buffer = Buffer.alloc(bytes + 100)));
    const a = await featurizeText(text, { calculator: 'soap_power_spectrum', perStructure: 'mean', allocate });
    expect(a.npy.buffer).toBe(buffer!.buffer);
    expect(a.npy.equals(want.npy)).toBe(true);
    expect(a.names).toEqual({ rows: JSON.parse(want.labels).rows.names, columns: JSON.parse(want.labels).columns.names });
    buffer!.fill(7);
    const b = await featurizeText(text, { calculator: 'soap_power_spectrum', perStructure: 'mean', allocate });
    expect(b.npy.buffer).toBe(a.npy.buffer);
    expect(b.npy.equals(want.npy)).toBe(true);
    expect(JSON.stringify(b.labels)).toBe(want.labels);
  });

  it('parses once: frames, atoms and species before any work; a parsed text is consumed by one featurization', async () => {
    const parsed = await parseXyzText(text, { name: 'body', batch: 4 });
    expect([parsed.frames, parsed.atoms]).toEqual([11, frames.slice(0, 11).reduce((n, f) => n + f.size, 0)]);
    expect(parsed.species).toEqual([...new Set(frames.slice(0, 11).flatMap((f) => Array.from(f.types)))].sort((a, b) => a - b));
    await featurizeParsed(parsed, { calculator: 'soap_radial_spectrum' });
    await expect(featurizeParsed(parsed, { calculator: 'soap_radial_spectrum' })).rejects.toThrow(/already appended/);
  });

  it('bad input: the error names the text and its line (as the file path names the file)', async () => {
    await expect(featurizeText('garbage\n', { calculator: 'soap_power_spectrum', name: 'body' })).rejects.toThrow(/^body: parse error at line 1: expected the number of atoms/);
    // the third frame's atom line is broken: line numbers count from the text's start
    const lines = text.split('\n');
    const third = formatXyz(frames.slice(0, 2)).split('\n').length - 1;
    lines[third + 2] = 'H 0.0 zero 0.0';
    await expect(featurizeText(lines.join('\n'), { calculator: 'soap_power_spectrum', name: 'body' })).rejects.toThrow(new RegExp(`^body: parse error at line ${third + 3}\\b`));
    await expect(featurizeText(text, { calculator: 'soap_power_spectrum', species: [1, 6], name: 'body' })).rejects.toThrow(/^body, frame \d+ \(line \d+\): species \d+ is not in --species 1,6/);
    await expect(featurizeText('', { calculator: 'soap_power_spectrum', name: 'body' })).rejects.toThrow(/^body holds no frames/);
    await expect(featurizeText(text, { calculator: 'spherical_expansion' })).rejects.toThrow(/equivariant/);
    await expect(featurizeText(text, { calculator: 'soap_power_spectrum', maxValues: 100 })).rejects.toMatchObject({ code: 'ACDC_MEMORY', limit: 'maxValues' });
    // the answer alone over the memory budget is refused before any work
    await expect(featurizeText(text, { calculator: 'soap_power_spectrum', maxMemory: '64K' })).rejects.toMatchObject({ code: 'ACDC_MEMORY' });
  });
});
