// `acdc rigidity` end to end: the per-atom lpr column equals
// localPredictionRigidity (itself checked against scikit-matter) on the
// atomic power spectrum computed through the API; the chemiscope file holds
// it as an atom property and passes chemiscope's checks (with
// ACDC_INTEROP_PYTHON); bad input fails with one line and leaves no file.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { Labels, SoapPowerSpectrum, SparseGPR, System, localPredictionRigidity, readXyzSync, writeXyzSync } from 'acdc-ml';
import { interopPython } from './prerequisites';
import { checked, run } from './spawn_helpers';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-cli-rigidity-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function acdc(...args: string[]) {
  return run(process.execPath, [cli, ...args], { env: { ...process.env, ACDC_NUM_THREADS: '2' } });
}

const HYPERS = {
  cutoff: { radius: 3.5, smoothing: { type: 'ShiftedCosine' as const, width: 0.5 } },
  density: { type: 'Gaussian' as const, width: 0.3 },
  basis: { type: 'TensorProduct' as const, max_angular: 1, radial: { type: 'Gto' as const, max_radial: 2 } },
};
const hypersFile = path.join(dir, 'hypers.json');
fs.writeFileSync(hypersFile, JSON.stringify(HYPERS));
const frames = readXyzSync(path.join(root, 'examples', 'molecules.xyz'));
const trainFile = path.join(dir, 'train.xyz');
const testFile = path.join(dir, 'test.xyz');
writeXyzSync(trainFile, frames.slice(0, 90));
writeXyzSync(testFile, frames.slice(90));

/** Atomic features with the centre species as a property dimension: one row per atom, per structure. */
function atomicFeatures(systems: System[], species: number[], hypers: object = HYPERS) {
  const keys: number[][] = [];
  for (const c of species) for (const a of species) for (const b of species) if (a <= b) keys.push([c, a, b]);
  const block = new SoapPowerSpectrum(hypers as typeof HYPERS).computeSync(systems).keysToProperties(new Labels(['center_type', 'neighbor_1_type', 'neighbor_2_type'], keys)).block(0);
  const F = block.properties.count;
  const system = block.samples.column('system');
  const atom = block.samples.column('atom');
  const out = systems.map((s) => ({ data: new Float64Array(s.size * F), shape: [s.size, F] }));
  for (let r = 0; r < block.samples.count; r++) out[system[r]].data.set(block.values.subarray(r * F, (r + 1) * F), atom[r] * F);
  return out;
}

describe('acdc rigidity', () => {
  const out = path.join(dir, 'lpr.xyz');
  const map = path.join(dir, 'lpr.json.gz');

  it('the lpr column equals localPredictionRigidity on the atomic power spectrum (≤ 1e-10 relative)', async () => {
    const r = await acdc('rigidity', hypersFile, trainFile, testFile, '--alpha', '1e-3', '--out', out, '--chemiscope', map, '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ trainStructures: 90, testStructures: 30, alpha: 1e-3, alphaFrom: '--alpha', rankDiff: 0 });
    const species = [...new Set(frames.flatMap((f) => Array.from(f.types)))].sort((a, b) => a - b);
    const want = localPredictionRigidity(atomicFeatures(frames.slice(0, 90), species), atomicFeatures(frames.slice(90), species), 1e-3);
    const got = readXyzSync(out);
    expect(got).toHaveLength(30);
    let err = 0;
    got.forEach((f, k) => {
      expect(f.info).toEqual(frames[90 + k].info);
      const lpr = f.arrays.lpr as Float64Array;
      expect(lpr).toHaveLength(f.size);
      for (let a = 0; a < f.size; a++) err = Math.max(err, Math.abs(lpr[a] - want.lpr[k][a]) / want.lpr[k][a]);
    });
    expect(err).toBeLessThanOrEqual(1e-10);
    expect(s.testAtoms).toBe(got.reduce((n, f) => n + f.size, 0));

    const doc = JSON.parse(zlib.gunzipSync(fs.readFileSync(map)).toString('utf8'));
    expect(doc.environments).toHaveLength(s.testAtoms);
    expect(doc.properties.lpr.target).toBe('atom');
    expect(doc.properties.lpr.values[0]).toBeCloseTo(want.lpr[0][0], 12);
    expect(doc.properties.log10_lpr.values[0]).toBeCloseTo(Math.log10(want.lpr[0][0]), 12);
    expect(doc.settings).toMatchObject({ target: 'atom', map: { x: { property: 'pca[1]' }, color: { property: 'log10_lpr' } } });
  });

  it('a fitted SparseGPR (.acdc): its hypers and species, α = (σ_E/δ)² by default', async () => {
    const fixtures = path.join(__dirname, 'fixtures', 'models');
    const train = readXyzSync(path.join(fixtures, 'train.xyz'));
    const test = readXyzSync(path.join(fixtures, 'test.xyz'));
    const hypers = {
      cutoff: { radius: 4, smoothing: { type: 'ShiftedCosine' as const, width: 0.5 } },
      density: { type: 'Gaussian' as const, width: 0.3 },
      basis: { type: 'TensorProduct' as const, max_angular: 2, radial: { type: 'Gto' as const, max_radial: 2 } },
    };
    const model = await SparseGPR.fit(train, { hypers, sparse: { count: 10 }, kernel: { zeta: 2, delta: 0.5 }, sigmas: { energy: 0.01 } });
    const file = path.join(dir, 'gpr.acdc');
    await model.save(file);
    const lprFile = path.join(dir, 'gpr-lpr.xyz');
    const r = await acdc('rigidity', file, path.join(fixtures, 'train.xyz'), path.join(fixtures, 'test.xyz'), '--out', lprFile, '--json');
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.alpha).toBeCloseTo((0.01 / 0.5) ** 2, 15);
    expect(s.alphaFrom).toMatch(/σ_E\/δ/);
    const want = localPredictionRigidity(atomicFeatures(train, model.species, hypers), atomicFeatures(test, model.species, hypers), (0.01 / 0.5) ** 2);
    let err = 0;
    readXyzSync(lprFile).forEach((f, k) => {
      const lpr = f.arrays.lpr as Float64Array;
      for (let a = 0; a < f.size; a++) err = Math.max(err, Math.abs(lpr[a] - want.lpr[k][a]) / want.lpr[k][a]);
    });
    expect(err).toBeLessThanOrEqual(1e-10);
    // a structure with a species the model does not know
    const alien = path.join(dir, 'alien-h.xyz');
    fs.writeFileSync(alien, '1\npbc="F F F"\nH 0 0 0\n');
    const bad = await acdc('rigidity', file, path.join(fixtures, 'train.xyz'), alien, '--out', path.join(dir, 'bad-alien.xyz'));
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/alien-h\.xyz, frame 0: species 1 is not one the model knows \(29, 79\)/);
  }, 120_000);

  it('the chemiscope file passes the viewer validator and create_input', async () => {
    const py = interopPython();
    const pkg = (await checked(py, ['-c', 'import chemiscope, os; print(os.path.dirname(chemiscope.__file__))'])).trim();
    const v = await run(process.execPath, [path.join(__dirname, 'interop', 'chemiscope_validate.mjs'), path.join(pkg, 'static', 'chemiscope-widget.mjs'), map]);
    expect(v.stdout + v.stderr).toMatch(/^valid: /);
    const check = JSON.parse(await checked(py, [path.join(__dirname, 'interop', 'chemiscope_check.py'), map]));
    expect(check.properties).toEqual(expect.arrayContaining(['lpr', 'log10_lpr', 'pca[1]', 'pca[2]']));
  });

  it('bad input: one line, exit 1 or 2, no file left', async () => {
    const alien = path.join(dir, 'alien.xyz');
    fs.writeFileSync(alien, '1\npbc="F F F"\nSi 0 0 0\n');
    const big = path.join(dir, 'big.json');
    fs.writeFileSync(big, JSON.stringify({ ...HYPERS, basis: { type: 'TensorProduct', max_angular: 6, radial: { type: 'Gto', max_radial: 7 } } }));
    const cases: Array<[string[], number, RegExp]> = [
      [['rigidity', big, trainFile, testFile, '--alpha', '1', '--out', path.join(dir, 'bad0.xyz')], 1, /17920 features per atom \(4480 per centre species × 4 species\): the LPR needs a 17920×17920 covariance/],
      [['rigidity', hypersFile, trainFile, testFile, '--out', path.join(dir, 'bad1.xyz')], 1, /with hyper-parameters instead of a fitted model, give the regulariser with --alpha/],
      [['rigidity', hypersFile, trainFile, testFile, '--alpha', '1e-3', '--out', path.join(dir, 'bad2.npy')], 1, /must end in \.xyz/],
      [['rigidity', hypersFile, trainFile, testFile, '--alpha', '1e-3', '--out', path.join(dir, 'bad3.xyz'), '--chemiscope', path.join(dir, 'bad3.html')], 1, /--chemiscope .*: a chemiscope file must end in \.json or \.json\.gz/],
      [['rigidity', path.join(dir, 'model.bin'), trainFile, testFile, '--alpha', '1', '--out', path.join(dir, 'bad4.xyz')], 1, /model\.bin: cannot read the model file/],
      [['rigidity', hypersFile, trainFile, testFile, '--alpha', '-1', '--out', path.join(dir, 'bad5.xyz')], 2, /expected a number ≥ 0, got "-1"/],
      [['rigidity', hypersFile, trainFile, '--alpha', '1', '--out', path.join(dir, 'bad6.xyz')], 2, /missing required argument 'test'/],
    ];
    for (const [args, status, message] of cases) {
      const r = await acdc(...args);
      expect(r.status, args.join(' ')).toBe(status);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
    // a species the model was not given: hypers mode takes the species of both files, so use a species-fixed model only when merged;
    // here the Si atom is simply featurised (species 1, 6, 7, 8, 14)
    const r = await acdc('rigidity', hypersFile, trainFile, alien, '--alpha', '1e-3', '--out', path.join(dir, 'alien-lpr.xyz'));
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('bad') || f.includes('.partial'))).toEqual([]);
  });
});
