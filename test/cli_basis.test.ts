// `acdc alchemical fit` end to end, and `acdc featurize --hypers` with the new
// hyper-parameter forms (LaplacianEigenstate basis, density.alchemical).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readXyzSync, SoapPowerSpectrum, TensorMap } from 'acdc-ml';
import { run } from './spawn_helpers';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const molecules = path.join(root, 'examples', 'molecules.xyz');

async function acdc(...args: string[]) {
  const r = await run(process.execPath, [cli, ...args], { env: { ...process.env, ACDC_NUM_THREADS: '2' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const HYPERS = {
  cutoff: { radius: 4, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 3, radial: { type: 'Gto', max_radial: 3 } },
};

describe('acdc alchemical fit', () => {
  it('writes hyper-parameters with a B × S coupling that featurize and the API accept', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-basis-'));
    const hypersIn = path.join(dir, 'in.json');
    fs.writeFileSync(hypersIn, JSON.stringify(HYPERS));
    const out = path.join(dir, 'hypers.json');
    const r = await acdc('alchemical', 'fit', molecules, '--pseudo-types', '2', '--hypers', hypersIn, '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^2 pseudo-elements for elements /);
    const fitted = JSON.parse(fs.readFileSync(out, 'utf8'));
    const types = Array.from(new Set(readXyzSync(molecules).flatMap((s) => Array.from(s.types)))).sort((a, b) => a - b);
    expect(fitted.density.alchemical.types).toEqual(types);
    expect(fitted.density.alchemical.coupling.length).toBe(2);
    expect(fitted.basis).toEqual(HYPERS.basis);
    // featurize --hypers with the fitted file: pseudo-element keys in the .mts
    const mts = path.join(dir, 'f.mts');
    const f = await acdc('featurize', molecules, '--hypers', out, '--out', mts);
    expect(f.stderr).toBe('');
    expect(f.code).toBe(0);
    const tm = TensorMap.loadSync(mts);
    expect(tm.keys.names).toEqual(['center_type', 'pseudo_1_type', 'pseudo_2_type']);
    const direct = new SoapPowerSpectrum(fitted).computeSync(readXyzSync(molecules));
    expect(tm.keys.count).toBe(direct.keys.count);
  });

  it('featurize --hypers accepts a LaplacianEigenstate basis', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-basis-'));
    const hypers = path.join(dir, 'le.json');
    fs.writeFileSync(hypers, JSON.stringify({ ...HYPERS, basis: { type: 'LaplacianEigenstate', max_radial: 3 } }));
    const out = path.join(dir, 'le.npy');
    const r = await acdc('featurize', molecules, '--hypers', hypers, '--out', out, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // Σ_l sizes[l]² properties per species triple: 16 + 9 + 9 + 4 + 4 + 1 + 1 + 1 = 45
    expect(JSON.parse(r.stdout).columns % 45).toBe(0);
  });

  it('bad input: one line, exit code, no output file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-basis-'));
    const out = path.join(dir, 'hypers.json');
    const tooMany = await acdc('alchemical', 'fit', molecules, '--pseudo-types', '9', '--out', out);
    expect(tooMany.code).toBe(1);
    expect(tooMany.stderr).toMatch(/^acdc: pseudoTypes must be an integer between 1 and the number of elements in the systems \(\d+\), got 9\n$/);
    const usage = await acdc('alchemical', 'fit', molecules, '--pseudo-types', 'x', '--out', out);
    expect(usage.code).toBe(2);
    expect(usage.stderr.trim().split('\n').length).toBe(1);
    const missing = await acdc('alchemical', 'fit', path.join(dir, 'nope.xyz'), '--pseudo-types', '2', '--out', out);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n').length).toBe(1);
    const badHypers = path.join(dir, 'bad.json');
    fs.writeFileSync(badHypers, '{"cutoff": ');
    const bad = await acdc('alchemical', 'fit', molecules, '--pseudo-types', '2', '--hypers', badHypers, '--out', out);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/not valid JSON/);
    expect(fs.readdirSync(dir).filter((f) => f !== 'bad.json')).toEqual([]);
  });
});

describe('acdc basis fit', () => {
  it('writes Explicit hyper-parameters that featurize accepts; bad input fails cleanly', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-basis-'));
    const hypersIn = path.join(dir, 'in.json');
    fs.writeFileSync(hypersIn, JSON.stringify(HYPERS));
    const out = path.join(dir, 'contracted.json');
    const r = await acdc('basis', 'fit', molecules, '--max-radial', '1', '--hypers', hypersIn, '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const fitted = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(fitted.basis.type).toBe('Explicit');
    expect(Object.keys(fitted.basis.by_angular)).toEqual(['0', '1', '2', '3']);
    const npy = path.join(dir, 'c.npy');
    const f = await acdc('featurize', molecules, '--hypers', out, '--out', npy, '--json');
    expect(f.code).toBe(0);
    // 4 channels × 2² properties per species triple
    expect(JSON.parse(f.stdout).columns % 16).toBe(0);
    const bad = await acdc('basis', 'fit', molecules, '--max-radial', '-2', '--out', path.join(dir, 'x.json'));
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n').length).toBe(1);
    const exact = path.join(dir, 'exact.json');
    fs.writeFileSync(exact, JSON.stringify({ ...HYPERS, basis: { ...HYPERS.basis, spline_accuracy: null } }));
    const e = await acdc('basis', 'fit', molecules, '--max-radial', '1', '--hypers', exact, '--out', path.join(dir, 'y.json'));
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/^acdc: .*spline_accuracy is null/);
    expect(fs.existsSync(path.join(dir, 'x.json')) || fs.existsSync(path.join(dir, 'y.json'))).toBe(false);
  });
});
