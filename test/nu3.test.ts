// Potentials on the ν = 3 features (features: 'bispectrum'): LinearModel
// and SparseGPR against a numpy transcription (scripts/reference/nu3_numpy.py
// on the dump of scripts/reference/nu3_dump.js; fixture
// test/fixtures/models/nu3_case_expected.json) to ≤ 1e-8 relative; forces and
// stress against central differences of the energy (h = 1e-5, ≤ 1e-6 relative
// to the largest component); rotations and permutations; save → load →
// predict bit for bit; bad input; `acdc fit --features bispectrum`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LinearModel, SparseGPR, loadModelSync, modelFromBuffer, writeXyzSync } from 'acdc-ml';
import { FIXTURES, checkAgainstNumpy, checkFiniteDifferences, checkSymmetries, smallTest, smallTrain } from './potential_helpers';
import { run } from './spawn_helpers';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const nu3Case: any = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'nu3_case.json'), 'utf8'));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const expected: any = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'nu3_case_expected.json'), 'utf8'));
const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');

// nu3_case.json uses the frames of small_case.json
const linear = LinearModel.fitSync(smallTrain, nu3Case.linear);
const gpr = SparseGPR.fitSync(smallTrain, nu3Case.gpr);

describe('potentials on the bispectrum (ν = 3)', () => {
  it('equal the numpy transcription (≤ 1e-8 relative)', () => {
    expect(nu3Case.train).toEqual([0, 1, 2, 3, 4, 5, 18, 19, 22]);
    expect(linear.features).toBe('bispectrum');
    expect(linear.featureCount).toBe(expected.n_features);
    expect(gpr.featureCount).toBe(expected.n_features);
    checkAgainstNumpy(linear, 'linear', expected);
    checkAgainstNumpy(gpr, 'gpr', expected);
  });

  it('differ from the power-spectrum models of the same hypers', () => {
    const { features: _, ...plain } = nu3Case.linear;
    const ps = LinearModel.fitSync(smallTrain, plain);
    expect(ps.features).toBe('power_spectrum');
    expect(ps.featureCount).toBeLessThan(linear.featureCount);
    const a = linear.predictSync(smallTest).energy;
    const b = ps.predictSync(smallTest).energy;
    expect(Math.max(...Array.from(a, (v, k) => Math.abs(v - b[k])))).toBeGreaterThan(1e-4);
  });

  it('forces and stress are the derivatives of the energy', () => {
    for (const m of [linear, gpr]) {
      for (const s of smallTest) checkFiniteDifferences(m, s, 1e-5, 1e-6);
    }
  }, 300_000);

  it('are invariant under rotations and permutations', () => {
    for (const m of [linear, gpr]) for (const s of smallTest) checkSymmetries(m, s);
  }, 120_000);

  it('save → load → predict bit for bit; the file records the features', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-nu3-'));
    for (const m of [linear, gpr]) {
      const file = path.join(dir, `${m.kind}.acdc`);
      m.saveSync(file);
      const back = loadModelSync(file);
      expect(back.features).toBe('bispectrum');
      const opts = { forces: true, stress: true, variance: true };
      const frames = smallTest.filter((s) => s.pbc.every(Boolean));
      expect(back.predictSync(frames, opts)).toEqual(m.predictSync(frames, opts));
      const bytes = fs.readFileSync(file);
      expect(Buffer.from(modelFromBuffer(bytes).toBuffer()).equals(bytes)).toBe(true);
      const header = JSON.parse(bytes.subarray(24, 24 + Number(bytes.readBigUInt64LE(16))).toString('utf8'));
      expect(header.features).toBe('bispectrum');
      expect(bytes.readUInt32LE(8)).toBe(2);
    }
  });

  it('bad input names the option', () => {
    expect(() => LinearModel.fitSync(smallTrain, { ...nu3Case.linear, features: 'trispectrum' as never })).toThrow(
      /features = "trispectrum" \(expected 'power_spectrum' or 'bispectrum'\)/,
    );
    const big = structuredClone(nu3Case.linear.hypers);
    big.basis.max_angular = 8;
    big.basis.radial.max_radial = 11;
    expect(() => LinearModel.fitSync(smallTrain, { ...nu3Case.linear, hypers: big })).toThrow(/bispectrum features per atom, more than the 30000 a model accepts/);
    const pair = { type: 'distance_2b', cutoff: 4, transition: 0.5, theta: 0.5, delta: 0.5, sparse: { count: 5 } };
    const soap = { type: 'soap', hypers: nu3Case.gpr.hypers, sparse: nu3Case.gpr.sparse, kernel: nu3Case.gpr.kernel };
    expect(() => SparseGPR.fitSync(smallTrain, { ...nu3Case.gpr, hypers: undefined, sparse: undefined, kernel: undefined, terms: [pair, soap] })).toThrow(
      /bispectrum.*distance_2b.*not supported/,
    );
  });
});

describe('acdc fit --features', () => {
  const acdc = (args: string[]) => run(process.execPath, [cli, ...args], { env: { ...process.env, ACDC_NUM_THREADS: '2' } });

  it('fits a linear model on the bispectrum, and refuses a bad name', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-nu3-cli-'));
    const data = path.join(dir, 'train.xyz');
    writeXyzSync(data, smallTrain);
    const hypers = path.join(dir, 'hypers.json');
    fs.writeFileSync(hypers, JSON.stringify(nu3Case.linear.hypers));
    const out = path.join(dir, 'm.acdc');
    const r = await acdc(['fit', data, '-o', out, '--hypers', hypers, '--model', 'linear', '--features', 'bispectrum', '--no-progress', '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).features).toBe('bispectrum');
    expect(loadModelSync(out).features).toBe('bispectrum');
    const bad = path.join(dir, 'bad.acdc');
    const e = await acdc(['fit', data, '-o', bad, '--hypers', hypers, '--features', 'trispectrum', '--no-progress']);
    expect(e.status).not.toBe(0);
    const lines = e.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^acdc( \w+)?: .*--features/);
    expect(fs.existsSync(bad)).toBe(false);
  }, 300_000);
});
