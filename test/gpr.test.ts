// SparseGPR (GAP form) on EMT Cu / Cu–Au data (scripts/reference/emt_models.py):
// - equal to a numpy transcription of the same equations
//   (scripts/reference/gpr_numpy.py) to ≤ 1e-8 relative: weights, energies,
//   forces, stress, variance;
// - forces = −dE/dr and stress = (1/V) dE/dε by central differences of the
//   predicted energies, h = 1e-5 (Å, strain), ≤ 1e-6 relative to the largest component;
// - rotation / permutation invariance of energies, covariance of forces ≤ 1e-10;
// - save → load → predict bit for bit; broken files and bad inputs give Errors naming the problem;
// - async = sync bit for bit; an AbortSignal cancels a fit; fit quality on held-out frames.
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LinearModel, loadModel, loadModelSync, modelFromBuffer, SparseGPR, System } from 'acdc-ml';
import { checkAgainstNumpy, expectedFrameSigmas, checkFiniteDifferences, checkSymmetries, expected, forceErrors, smallCase, smallTest, smallTrain, test, train } from './potential_helpers';
import { checked } from './spawn_helpers';

const dir = mkdtempSync(join(tmpdir(), 'acdc-gpr-'));
const model = SparseGPR.fitSync(smallTrain, smallCase.gpr);

describe('SparseGPR', () => {
  it('with per-structure sigmas (GAP\'s energy_sigma, force_sigma, virial_sigma) equals the numpy transcription (≤ 1e-8 relative)', () => {
    const own = SparseGPR.fitSync(smallTrain, { ...smallCase.gpr, frameSigmas: smallCase.frameSigmas });
    checkAgainstNumpy(own, 'gpr', expectedFrameSigmas);
    expect(own.fitInfo.frame_sigmas).toBe(smallCase.frameSigmas.filter((f: unknown) => f !== null).length);
    // the sigmas change the fit: the weights differ from the plain case by far more than the tolerance
    const plain = SparseGPR.fitSync(smallTrain, smallCase.gpr);
    const diff = Math.max(...Array.from(own.weights, (w, k) => Math.abs(w - plain.weights[k]))) / Math.max(...Array.from(plain.weights, Math.abs));
    expect(diff).toBeGreaterThan(1e-4);
  });

  it('rejects bad per-structure sigmas, naming the entry', () => {
    const bad: Array<[unknown, RegExp]> = [
      [[{ energy: 0.01 }], /frameSigmas has 1 entries for 9 systems/],
      [smallTrain.map(() => ({ forces: -1 })), /frameSigmas\[0\]\.forces = -1 \(expected a positive number\)/],
      [smallTrain.map(() => ({ stress: 0.1, virial: 0.1 })), /frameSigmas\[0\] gives both stress and virial/],
      [smallTrain.map(() => ({ energies: 1 })), /unknown frameSigmas\[0\] option "energies"/],
      ['0.1', /frameSigmas must be an array/],
    ];
    for (const [frameSigmas, message] of bad) expect(() => SparseGPR.fitSync(smallTrain, { ...smallCase.gpr, frameSigmas } as never)).toThrow(message);
  });

  it('equals the numpy transcription (≤ 1e-8 relative)', () => {
    expect(expected.versions.numpy).toBe('2.4.6');
    checkAgainstNumpy(model, 'gpr');
  });

  it('describes itself', () => {
    expect(model.kind).toBe('sparse_gpr');
    expect(model.species).toEqual([29, 79]);
    expect(model.sparseCounts).toEqual([8, 8]);
    expect(model.zeta).toBe(3);
    expect(model.delta).toBe(0.3);
    expect(model.hypers).toEqual(smallCase.gpr.hypers);
    expect(model.e0[29]).toBeCloseTo(expected.e0, 14);
    expect(model.fitInfo).toMatchObject({ sparse: { method: 'fps', count: { 29: 8, 79: 8 } }, training_structures: smallTrain.length });
  });

  it('forces and stress are the derivatives of the energy (central differences, h = 1e-5)', () => {
    // exact radial integrals: splined ones have a derivative table of their own, consistent only to the spline accuracy
    const exact = { ...smallCase.gpr.hypers, basis: { ...smallCase.gpr.hypers.basis, spline_accuracy: null } };
    const model = SparseGPR.fitSync(smallTrain, { ...smallCase.gpr, hypers: exact });
    for (const s of [smallTest[0], smallTest[3]]) {
      const worst = checkFiniteDifferences(model, s, 1e-5, 1e-6);
      console.log(`SparseGPR finite differences (${s.size} atoms): force ${worst.force.toExponential(2)}, stress ${worst.stress.toExponential(2)} relative`);
    }
    checkFiniteDifferences(model, smallTest[4], 1e-5, 1e-6); // the non-periodic cluster: forces only
  });

  it('energies are invariant, forces covariant under rotations and permutations', () => {
    checkSymmetries(model, smallTest[3]);
    checkSymmetries(model, smallTest[4]);
  });

  it('save → load → predict is bit for bit', async () => {
    const path = join(dir, 'gpr.acdc');
    await model.save(path);
    const a = await SparseGPR.load(path);
    const b = SparseGPR.loadSync(path);
    const c = await loadModel(path);
    expect(c).toBeInstanceOf(SparseGPR);
    expect(loadModelSync(path).kind).toBe('sparse_gpr');
    const opts = { forces: true, variance: true };
    const want = model.predictSync(smallTest, opts);
    for (const m of [a, b, c, modelFromBuffer(readFileSync(path))]) expect(m.predictSync(smallTest, opts)).toEqual(want);
    const periodic = smallTest.filter((s) => s.pbc.every(Boolean));
    expect(a.predictSync(periodic, { stress: true })).toEqual(model.predictSync(periodic, { stress: true }));
    model.saveSync(join(dir, 'gpr2.acdc'));
    expect(readFileSync(join(dir, 'gpr2.acdc'))).toEqual(readFileSync(path));
    expect(Buffer.from(a.toBuffer())).toEqual(readFileSync(path));
    expect(readdirSync(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });

  it('refuses broken model files, naming the path and the problem', async () => {
    const path = join(dir, 'ok.acdc');
    model.saveSync(path);
    const bytes = readFileSync(path);
    const write = (name: string, b: Uint8Array) => {
      const p = join(dir, name);
      writeFileSync(p, b);
      return p;
    };
    const flipped = Buffer.from(bytes);
    flipped[bytes.length - 100] ^= 0x10;
    expect(() => SparseGPR.loadSync(write('flipped.acdc', flipped))).toThrow(/flipped\.acdc: checksum mismatch/);
    expect(() => SparseGPR.loadSync(write('short.acdc', bytes.subarray(0, bytes.length - 50)))).toThrow(/short\.acdc: (truncated|checksum)/);
    expect(() => SparseGPR.loadSync(write('tiny.acdc', bytes.subarray(0, 12)))).toThrow(/tiny\.acdc: truncated/);
    const newer = Buffer.from(bytes);
    newer.writeUInt32LE(99, 8);
    expect(() => SparseGPR.loadSync(write('newer.acdc', newer))).toThrow(/newer\.acdc: model file format version 99 is not supported/);
    expect(() => SparseGPR.loadSync(write('magic.acdc', Buffer.from('hello world, not a model at all')))).toThrow(/magic\.acdc: not an acdc model file/);
    await expect(SparseGPR.load(join(dir, 'missing.acdc'))).rejects.toThrow(/missing\.acdc: cannot read the model file/);
    const linear = LinearModel.fitSync(smallTrain, smallCase.linear);
    linear.saveSync(join(dir, 'linear.acdc'));
    expect(() => SparseGPR.loadSync(join(dir, 'linear.acdc'))).toThrow(/linear\.acdc: holds a linear model, not sparse_gpr/);
    expect(() => model.saveSync(join(dir, 'no-such-folder', 'm.acdc'))).toThrow(/does not exist/);
  });

  it('reads stress as 9 numbers or Voigt 6 alike', () => {
    const voigt = smallTrain.map((s) => {
      const st = s.info.stress as number[] | undefined;
      if (st === undefined || st.length === 6) return s;
      const [xx, , , xy, yy, , xz, yz, zz] = st;
      return new System({ ...s, info: { ...s.info, stress: [xx, yy, zz, yz, xz, xy] } });
    });
    expect(smallTrain.some((s) => (s.info.stress as number[] | undefined)?.length === 9)).toBe(true);
    const a = SparseGPR.fitSync(voigt, smallCase.gpr);
    // the fixture's 3×3 stresses are symmetric to rounding: Voigt keeps the upper triangle
    expect(Array.from(a.weights).every((w, k) => Math.abs(w - model.weights[k]) <= 1e-9 * Math.abs(model.weights[k]) + 1e-12)).toBe(true);
  });

  it('rejects bad inputs with errors naming the field and value', () => {
    const base = smallCase.gpr;
    const noEnergy = smallTrain.map((s, k) => (k === 2 ? new System({ ...s, info: { ...s.info, energy: undefined as never } }) : s));
    delete noEnergy[2].info.energy;
    expect(() => SparseGPR.fitSync(noEnergy, base)).toThrow(/systems\[2\]\.info\.energy is missing/);
    const nanEnergy = smallTrain.map((s, k) => (k === 1 ? new System({ ...s, info: { ...s.info, energy: NaN } }) : s));
    expect(() => SparseGPR.fitSync(nanEnergy, base)).toThrow(/systems\[1\]\.info\.energy = NaN/);
    const nanForces = smallTrain.map((s, k) => {
      if (k !== 0) return s;
      const f = Float64Array.from(s.arrays.forces as Float64Array);
      f[4] = NaN;
      return new System({ ...s, arrays: { forces: f } });
    });
    expect(() => SparseGPR.fitSync(nanForces, base)).toThrow(/systems\[0\]\.arrays\.forces\[4\] = NaN/);
    const noStress = smallTrain.map((s, k) => (k === 0 ? new System({ ...s, info: { energy: s.info.energy } }) : s));
    expect(() => SparseGPR.fitSync(noStress, base)).toThrow(/systems\[0\]\.info\.stress is missing/);
    const cluster = smallTrain.length - 1;
    const clusterStress = smallTrain.map((s, k) => (k === cluster ? new System({ ...s, info: { ...s.info, stress: [0, 0, 0, 0, 0, 0] } }) : s));
    expect(() => SparseGPR.fitSync(clusterStress, base)).toThrow(new RegExp(`systems\\[${cluster}\\]\\.info\\.stress is given but systems\\[${cluster}\\] is not periodic`));
    expect(() => SparseGPR.fitSync(smallTrain, { ...base, sparse: { count: 0 } })).toThrow(/sparse\.count = 0/);
    expect(() => SparseGPR.fitSync(smallTrain, { ...base, sparse: { count: 500 } })).toThrow(/sparse\.count = 500 but species 29 has only \d+ environments in the training set/);
    expect(() => SparseGPR.fitSync(smallTrain, { ...base, sparse: { count: 4, method: 'best' as never } })).toThrow(/sparse\.method = "best"/);
    expect(() => SparseGPR.fitSync(smallTrain, { ...base, kernel: { zeta: 2.5, delta: 1 } })).toThrow(/kernel\.zeta = 2\.5/);
    expect(() => SparseGPR.fitSync(smallTrain, { ...base, sigmas: { energy: -1, forces: 0.1, stress: 0.1 } })).toThrow(/sigmas\.energy = -1/);
    expect(() => SparseGPR.fitSync(smallTrain, { ...base, sigmas: { energy: 0.01 } })).toThrow(/sigmas\.forces = undefined/);
    expect(() => SparseGPR.fitSync(smallTrain, { ...base, bogus: 1 } as never)).toThrow(/unknown SparseGPR\.fit option "bogus"/);
    expect(() => SparseGPR.fitSync(smallTrain, { ...base, e0: { 29: -3 } })).toThrow(/e0 has no value for species 79/);
    expect(() => SparseGPR.fitSync(smallTrain, { ...base, sparse: { count: { 29: 4 } } })).toThrow(/sparse\.count = 0 for species 79/);
    const perSpecies = SparseGPR.fitSync(smallTrain, { ...base, sparse: { count: { 29: 12, 79: 5 }, method: 'fps' } });
    expect(perSpecies.sparseCounts).toEqual([12, 5]);
    // a species the model never saw
    const cuOnly = train.filter((s) => Array.from(s.types).every((t) => t === 29)).slice(0, 4);
    const cu = SparseGPR.fitSync(cuOnly, { ...base, sparse: { count: 4, method: 'fps' } });
    expect(() => cu.predictSync(test[6])).toThrow(/systems\[0\]\.types contains 79, a species the model was not trained on/);
    expect(() => cu.predictSync(test[8], { stress: true })).toThrow(/stress: systems\[0\] is not periodic/);
    expect(() => cu.predictSync(test[0], { force: true } as never)).toThrow(/unknown predict option "force"/);
    // singular: identical environments (perfect crystals) and no jitter
    const perfect = [0, 1, 2].map((k) => {
      const a = 3.6;
      return new System({
        types: [29, 29, 29, 29],
        positions: [0, 0, 0, 0, a / 2, a / 2, a / 2, 0, a / 2, a / 2, a / 2, 0],
        cell: [a, 0, 0, 0, a, 0, 0, 0, a],
        pbc: true,
        info: { energy: -1 - k },
      });
    });
    expect(() => SparseGPR.fitSync(perfect, { ...base, targets: { energy: 'energy' }, sparse: { count: 2, method: 'random' }, jitter: 0 })).toThrow(
      /K_MM of species 29 is not positive definite|singular/,
    );
  });

  it('takes given sparse environments (sparse.method indices, as gap_fit print_sparse_index)', () => {
    const base = { ...smallCase.gpr, sparse: { count: { 29: 6, 79: 3 }, method: 'random' as const, seed: 5 } };
    // numpy 2.4.6: RandomState(5).permutation(131)[:6] and RandomState(5).permutation(10)[:3], the 131 Cu and
    // 10 Au environments of smallTrain: what 'random' picks, so the given lists must give the same model
    const indices = { 29: [52, 89, 42, 115, 98, 56], 79: [9, 5, 2] };
    const random = SparseGPR.fitSync(smallTrain, base);
    const given = SparseGPR.fitSync(smallTrain, { ...base, sparse: { method: 'indices', indices } });
    expect(given.sparseCounts).toEqual([6, 3]);
    expect((given.fitInfo.sparse as { method: string }).method).toBe('indices');
    expect(given.weights).toEqual(random.weights);
    expect(given.toBuffer().length).toBe(random.toBuffer().length);
    // other environments give another model
    const other = SparseGPR.fitSync(smallTrain, { ...base, sparse: { method: 'indices', indices: { 29: [0, 1, 2, 3, 4, 5], 79: [0, 1, 2] } } });
    expect(other.weights).not.toEqual(random.weights);
    const bad = (list: unknown) => () => SparseGPR.fitSync(smallTrain, { ...base, sparse: { method: 'indices', indices: list } as never });
    expect(bad({ 29: [0, 131], 79: [0] })).toThrow(/sparse\.indices\[29\]\[1\] = 131 but species 29 has only 131 environments/);
    expect(bad({ 29: [3, 1, 3], 79: [0] })).toThrow(/sparse\.indices\[29\]\[2\] = 3 is given twice/);
    expect(bad({ 29: [0] })).toThrow(/sparse\.indices has no list for species 79/);
    expect(bad({ 29: [0], 79: [] })).toThrow(/sparse\.indices\[79\] is empty/);
    expect(bad({ 29: [0], 79: [0], 28: [0] })).toThrow(/species 28, which the training set does not hold/);
    expect(bad({ 29: [-1], 79: [0] })).toThrow(/sparse\.indices\[29\]\[0\] = -1/);
    expect(bad({ 29: [0.5], 79: [0] })).toThrow(/sparse\.indices\[29\]\[0\] = 0\.5/);
    expect(bad({ 29: 3, 79: [0] })).toThrow(/sparse\.indices\[29\] must be an array/);
    expect(bad(undefined)).toThrow(/sparse\.indices must be an object/);
    expect(() => SparseGPR.fitSync(smallTrain, { ...base, sparse: { method: 'indices', indices, count: 3 } as never })).toThrow(/unknown sparse option "count" \(expected method, indices\)/);
  });

  it("sparse.method 'leverage-mix' picks what the numpy transcription picks on acdc's features", () => {
    // scripts/reference/mixed_leverage_small_case.py: `acdc featurize` features of smallTrain, normalised per
    // species, and mixed_leverage_numpy.py's draw (seed 3, uniform share ½): an independent redo of the selection
    const ref = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'models', 'mixed_leverage_small_case.json'), 'utf8'));
    const base = { ...smallCase.gpr, sparse: { count: { 29: 6, 79: 3 }, method: 'leverage-mix' as const, seed: ref.seed } };
    const mixed = SparseGPR.fitSync(smallTrain, base);
    expect((mixed.fitInfo.sparse as { method: string }).method).toBe('leverage-mix');
    const given = SparseGPR.fitSync(smallTrain, { ...base, sparse: { method: 'indices', indices: ref.indices } });
    expect(mixed.weights).toEqual(given.weights);
    // deterministic for a seed; GAP's rule ('leverage') draws another set here
    expect(SparseGPR.fitSync(smallTrain, base).weights).toEqual(mixed.weights);
    expect(SparseGPR.fitSync(smallTrain, { ...base, sparse: { ...base.sparse, method: 'leverage' } }).weights).not.toEqual(mixed.weights);
    expect(() => SparseGPR.fitSync(smallTrain, { ...base, sparse: { count: 4, method: 'mixed' } } as never)).toThrow(
      /sparse\.method = "mixed" \(expected 'cur', 'leverage', 'leverage-mix', 'pivoted-cholesky', 'greedy-trace', 'fps', 'random' or 'indices'\)/,
    );
  });

  it("sparse.method 'pivoted-cholesky' picks what the numpy transcription picks, whatever the order of the frames", () => {
    // scripts/reference/pivoted_cholesky_small_case.py: `acdc featurize` features of smallTrain, normalised per species,
    // and pivoted_cholesky_numpy.py's picks (dense solves per step, not the core's Cholesky updates)
    const ref = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'models', 'pivoted_cholesky_small_case.json'), 'utf8'));
    expect(ref.zeta).toBe(smallCase.gpr.kernel.zeta);
    const base = { ...smallCase.gpr, sparse: { count: { 29: 6, 79: 3 }, method: 'pivoted-cholesky' as const } };
    const chol = SparseGPR.fitSync(smallTrain, base);
    expect((chol.fitInfo.sparse as { method: string }).method).toBe('pivoted-cholesky');
    const given = SparseGPR.fitSync(smallTrain, { ...base, sparse: { method: 'indices', indices: ref.indices } });
    expect(chol.weights).toEqual(given.weights);
    // the seed plays no part
    expect(SparseGPR.fitSync(smallTrain, { ...base, sparse: { ...base.sparse, seed: 7 } }).weights).toEqual(chol.weights);
    // frames in reverse order: the same environments, picked in the same order, so the same model up to the
    // rounding of the least-squares sums (rows in another order)
    const reversed = SparseGPR.fitSync([...smallTrain].reverse(), base);
    const a = chol.predictSync(smallTest, { forces: true });
    const b = reversed.predictSync(smallTest, { forces: true });
    const scale = Math.max(...a.energy.map(Math.abs));
    a.energy.forEach((e: number, k: number) => expect(Math.abs(e - b.energy[k])).toBeLessThanOrEqual(1e-9 * scale));
    chol.weights.forEach((w: number, k: number) => expect(Math.abs(w - reversed.weights[k])).toBeLessThanOrEqual(1e-6 * Math.max(...chol.weights.map(Math.abs))));
    // 'greedy-trace': the same transcription's other pivot rule
    const traceOptions = { ...base, sparse: { ...base.sparse, method: 'greedy-trace' as const } };
    const trace = SparseGPR.fitSync(smallTrain, traceOptions);
    expect((trace.fitInfo.sparse as { method: string }).method).toBe('greedy-trace');
    expect(trace.weights).toEqual(SparseGPR.fitSync(smallTrain, { ...base, sparse: { method: 'indices', indices: ref.trace_indices } }).weights);
    expect(trace.weights).not.toEqual(chol.weights);
  });

  it('async and sync agree bit for bit; an AbortSignal cancels a fit', async () => {
    const a = await SparseGPR.fit(smallTrain, smallCase.gpr);
    expect(a.weights).toEqual(model.weights);
    const opts = { forces: true, variance: true };
    expect(await model.predict(smallTest, opts)).toEqual(model.predictSync(smallTest, opts));
    const controller = new AbortController();
    const pending = SparseGPR.fit(train, { ...smallCase.gpr, signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toThrow(/abort/i);
    const aborted = new AbortController();
    aborted.abort();
    await expect(model.predict(smallTest, { signal: aborted.signal })).rejects.toThrow(/abort/i);
    expect(existsSync(dir)).toBe(true);
  });

  it('fits and predicts bit for bit with 1 or 2 threads', async () => {
    const script = `
      const acdc = require('acdc-ml');
      const h = require('node:crypto').createHash('sha256');
      const setup = ${JSON.stringify(smallCase.gpr)};
      const train = acdc.readXyzSync(${JSON.stringify(join(__dirname, 'fixtures', 'models', 'train.xyz'))});
      const m = acdc.SparseGPR.fitSync(${JSON.stringify(smallCase.train)}.map((k) => train[k]), setup);
      const p = m.predictSync(train.slice(0, 4), { forces: true, stress: true, variance: true });
      h.update(m.toBuffer());
      for (const a of [p.energy, p.variance, ...p.forces, ...p.stress]) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
      process.stdout.write(h.digest('hex'));`;
    const digest = (threads: string) => checked(process.execPath, ['-e', script], { env: { ...process.env, ACDC_NUM_THREADS: threads }, cwd: __dirname });
    const one = await digest('1');
    expect(one).toMatch(/^[0-9a-f]{64}$/);
    expect(await digest('2')).toBe(one);
    expect(await digest('3')).toBe(one);
  });

  it.runIf(process.platform === 'linux')('a model loaded before any computation still runs on ACDC_NUM_THREADS threads', async () => {
    // loading builds the model's calculators; the native pool was sized by
    // rayon's default (every core) when that came first, and ACDC_NUM_THREADS
    // (--threads) was then ignored for the whole process (seen in acdc drive)
    const dir = mkdtempSync(join(tmpdir(), 'acdc-threads-'));
    const file = join(dir, 'model.acdc');
    model.saveSync(file);
    const script = `
      const acdc = require('acdc-ml');
      const m = acdc.loadModelSync(${JSON.stringify(file)});
      const test = acdc.readXyzSync(${JSON.stringify(join(__dirname, 'fixtures', 'models', 'test.xyz'))});
      m.predictSync(test.slice(0, 2), { forces: true, stress: true });
      process.stdout.write(/Threads:\\s+(\\d+)/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))[1]);`;
    const threads = async (n: string) => Number(await checked(process.execPath, ['-e', script], { env: { ...process.env, ACDC_NUM_THREADS: n }, cwd: __dirname }));
    expect((await threads('2')) - (await threads('1'))).toBe(1);
  });

  it('learns EMT forces: held-out force RMSE well below their spread', () => {
    const cu = (list: System[]) => list.filter((s) => Array.from(s.types).every((t) => t === 29));
    const m = SparseGPR.fitSync(cu(train), {
      ...smallCase.gpr,
      hypers: { ...smallCase.gpr.hypers, basis: { type: 'TensorProduct', max_angular: 4, radial: { type: 'Gto', max_radial: 5 } }, cutoff: { radius: 4.5, smoothing: { type: 'ShiftedCosine', width: 0.5 } } },
      sparse: { count: 100, method: 'cur' },
      kernel: { zeta: 4, delta: 0.5 },
      sigmas: { energy: 0.001, forces: 0.03, stress: 0.002 },
    });
    const { rmse, std } = forceErrors(m, cu(test));
    console.log(`SparseGPR on EMT Cu: held-out force RMSE ${rmse.toFixed(4)} eV/Å, force spread ${std.toFixed(4)} eV/Å`);
    expect(rmse).toBeLessThan(0.15 * std);
  });
});

describe('SparseGPR variance calibration', () => {
  it('fits s = mean(r²/v) on held-out frames, scales predict({variance}) by it and keeps it in the file', () => {
    const m = SparseGPR.fitSync(smallTrain, smallCase.gpr);
    expect(m.varianceScale).toBe(1);
    const raw = m.predictSync(smallTest, { variance: true });
    const c = m.calibrateVarianceSync(smallTest);
    // the maximum-likelihood scale of r ~ N(0, s·v), over the frames with v > 0, transcribed here
    let sum = 0;
    let n = 0;
    let in1 = 0;
    let in2 = 0;
    smallTest.forEach((s, k) => {
      const v = raw.variance![k];
      if (!(v > 0)) return;
      const r = raw.energy[k] - (s.info.energy as number);
      sum += (r * r) / v;
      n += 1;
    });
    const scale = sum / n;
    smallTest.forEach((s, k) => {
      const v = raw.variance![k];
      if (!(v > 0)) return;
      const r = Math.abs(raw.energy[k] - (s.info.energy as number));
      if (r <= Math.sqrt(scale * v)) in1 += 1;
      if (r <= 2 * Math.sqrt(scale * v)) in2 += 1;
    });
    expect(Math.abs(c.scale - scale) / scale).toBeLessThan(1e-14);
    expect(c.structures).toBe(n);
    expect(c.within1Sigma).toBe(in1 / n);
    expect(c.within2Sigma).toBe(in2 / n);
    expect(m.varianceScale).toBe(c.scale);
    const after = m.predictSync(smallTest, { variance: true });
    after.variance!.forEach((v, k) => expect(Math.abs(v - c.scale * raw.variance![k])).toBeLessThanOrEqual(1e-15 * Math.abs(v)));
    expect(after.energy).toEqual(raw.energy);
    // the scale travels with the model file; calibrating again multiplies it
    const loaded = modelFromBuffer(m.toBuffer());
    expect(loaded.varianceScale).toBe(c.scale);
    expect(loaded.fitInfo.variance_scale).toBe(c.scale);
    expect(loaded.predictSync(smallTest, { variance: true }).variance).toEqual(after.variance);
    const again = loaded.calibrateVarianceSync(smallTest);
    expect(Math.abs(again.scale - c.scale)).toBeLessThanOrEqual(1e-14 * c.scale);
  });

  it('a model file written before calibration existed loads with factor 1 and no noise', () => {
    const old = loadModelSync(join(__dirname, '..', 'examples', 'ipi', 'cu.acdc'));
    expect(old.fitInfo.variance_scale).toBeUndefined();
    expect(old.varianceScale).toBe(1);
    expect(old.fitInfo.variance_noise).toBeUndefined();
    expect(old.varianceNoise).toBe(0);
  });

  // the closed form is checked against refits in the Rust core
  // (models::potential leave_one_out_tests); here: the public API agrees
  // with a refit that drops one energy row (its sigma 1e12 eV), the scale is
  // the likelihood maximum over the leave-one-out errors and predict returns
  // s·(v + σ_E²·N)
  for (const kind of ['gpr', 'linear'] as const) {
    it(`${kind}: leave-one-out calibration of the training frames`, async () => {
      const fit = (o: object) => (kind === 'gpr' ? SparseGPR.fitSync(smallTrain, { ...smallCase.gpr, ...o }) : LinearModel.fitSync(smallTrain, { ...smallCase.linear, ...o }));
      const m = fit({});
      const loo = m.leaveOneOutSync(smallTrain);
      expect(loo.errors.length).toBe(smallTrain.length);
      const a = 1;
      const frameSigmas = smallTrain.map((_, k) => (k === a ? { energy: 1e12 } : {}));
      const refit = fit({ frameSigmas });
      const r = refit.predictSync(smallTrain[a], { variance: true });
      const want = r.energy[0] - (smallTrain[a].info.energy as number);
      expect(Math.abs(loo.errors[a] - want)).toBeLessThanOrEqual(1e-8 * Math.max(Math.abs(want), 1e-6));
      expect(Math.abs(loo.variances[a] - r.variance![0])).toBeLessThanOrEqual(1e-8 * r.variance![0]);
      // the fit's per-structure sigmas go in with it: the refit's own leave-one-out of that frame is the refit's error
      const own = refit.leaveOneOutSync(smallTrain, { sigmaEnergy: frameSigmas.map((f) => (f as { energy?: number }).energy) });
      expect(own.leverage[a]).toBeLessThan(1e-20);
      // the default fits the noise per atom too; 'sigma' takes the fit's σ_E²
      const fitted = fit({}).calibrateVarianceLeaveOneOutSync(smallTrain);
      expect(fitted.noise).toBeGreaterThanOrEqual(0);
      const noise = smallCase[kind].sigmas.energy ** 2;
      const c = m.calibrateVarianceLeaveOneOutSync(smallTrain, { noise: 'sigma' });
      let sum = 0;
      smallTrain.forEach((s, k) => (sum += loo.errors[k] ** 2 / (loo.variances[k] + noise * s.size)));
      expect(Math.abs(c.scale - sum / smallTrain.length)).toBeLessThanOrEqual(1e-14 * c.scale);
      expect(c).toMatchObject({ method: 'leave-one-out', noise, structures: smallTrain.length });
      expect(m.varianceScale).toBe(c.scale);
      expect(m.varianceNoise).toBe(noise);
      const raw = fit({}).predictSync(smallTest, { variance: true }).variance!;
      const got = m.predictSync(smallTest, { variance: true }).variance!;
      smallTest.forEach((s, k) => expect(Math.abs(got[k] - c.scale * (raw[k] + noise * s.size))).toBeLessThanOrEqual(1e-14 * got[k]));
      const back = modelFromBuffer(m.toBuffer());
      expect(back.predictSync(smallTest, { variance: true }).variance).toEqual(got);
      expect(back.fitInfo.variance_calibration).toBe('leave-one-out');
      // without the noise term, and the async form
      const plain = fit({});
      const p = plain.calibrateVarianceLeaveOneOutSync(smallTrain, { noise: 'none' });
      expect(plain.varianceNoise).toBe(0);
      expect(p.noise).toBe(0);
      expect(await fit({}).calibrateVarianceLeaveOneOut(smallTrain, { noise: 'none' })).toEqual(p);
      expect(await fit({}).calibrateVarianceLeaveOneOut(smallTrain)).toEqual(fitted);
      expect(await fit({}).leaveOneOut(smallTrain)).toEqual(loo);
      // a measurement leaves the model as it is
      const before = m.varianceScale;
      m.calibrateVarianceSync(smallTest, { apply: false });
      expect(m.varianceScale).toBe(before);
      expect(() => m.leaveOneOutSync(smallTrain.slice(1))).toThrow(/leave-one-out needs the \d+ training structures/);
      expect(() => m.leaveOneOutSync(smallTrain, { sigmaEnergy: [1] })).toThrow(/sigmaEnergy must be an array of \d+ entries/);
      expect(() => m.calibrateVarianceLeaveOneOutSync(smallTrain, { noise: true } as never)).toThrow(/noise must be 'fit', 'sigma' or 'none'/);
    });
  }

  // leave-one-composition-out: the small case has three compositions (Cu:
  // seven frames, Cu10Au6 and Cu12Au4); the block closed form against a
  // refit without the energy rows of every frame of one composition (the
  // core checks every group, models::potential leave_one_out_tests)
  for (const kind of ['gpr', 'linear'] as const) {
    it(`${kind}: leave-one-composition-out equals a refit without the composition`, async () => {
      const fit = (o: object) => (kind === 'gpr' ? SparseGPR.fitSync(smallTrain, { ...smallCase.gpr, ...o }) : LinearModel.fitSync(smallTrain, { ...smallCase.linear, ...o }));
      const m = fit({});
      const lco = m.leaveOneOutSync(smallTrain, { groups: 'composition' });
      expect(lco.scheme).toBe('composition');
      expect(new Set(lco.groups).size).toBe(3);
      expect(m.leaveOneOutSync(smallTrain, { groups: 'auto' })).toEqual(lco);
      expect(m.leaveOneOutSync(smallTrain).scheme).toBe('frame');
      const cu = smallTrain.map((s, k) => (s.types.every((t) => t === 29) ? k : -1)).filter((k) => k >= 0);
      expect(cu.length).toBe(7);
      expect(cu.every((k) => lco.groups[k] === lco.groups[cu[0]])).toBe(true);
      const refit = fit({ frameSigmas: smallTrain.map((_, k) => (cu.includes(k) ? { energy: 1e12 } : {})) });
      const r = refit.predictSync(cu.map((k) => smallTrain[k]), { variance: true });
      cu.forEach((k, j) => {
        const want = r.energy[j] - (smallTrain[k].info.energy as number);
        expect(Math.abs(lco.errors[k] - want)).toBeLessThanOrEqual(1e-8 * Math.max(Math.abs(want), 1e-6));
        expect(Math.abs(lco.variances[k] - r.variance![j])).toBeLessThanOrEqual(1e-8 * r.variance![j]);
      });
      // the calibration records the scheme in the model file; a later leave-one-out calibration removes it
      const c = m.calibrateVarianceLeaveOneOutSync(smallTrain, { groups: 'auto', noise: 'none' });
      expect(c).toMatchObject({ method: 'leave-one-out', groups: 'composition', groupCount: 3 });
      let sum = 0;
      smallTrain.forEach((_, k) => (sum += lco.errors[k] ** 2 / lco.variances[k]));
      expect(Math.abs(c.scale - sum / smallTrain.length)).toBeLessThanOrEqual(1e-14 * c.scale);
      const back = modelFromBuffer(m.toBuffer());
      expect(back.fitInfo).toMatchObject({ variance_calibration: 'leave-one-out', variance_calibration_groups: 'composition', variance_calibration_group_count: 3 });
      expect(back.varianceScale).toBe(c.scale);
      expect(await fit({}).leaveOneOut(smallTrain, { groups: 'composition' })).toEqual(lco);
      const f = back.calibrateVarianceLeaveOneOutSync(smallTrain);
      expect(f).toMatchObject({ groups: 'frame', groupCount: smallTrain.length });
      expect(modelFromBuffer(back.toBuffer()).fitInfo.variance_calibration_groups).toBe('frame');
      expect(() => m.leaveOneOutSync(smallTrain, { groups: 'species' } as never)).toThrow(/groups must be 'auto', 'frame' or 'composition'/);
    });
  }

  it('the async form gives the same and bad options are refused', async () => {
    const a = SparseGPR.fitSync(smallTrain, smallCase.gpr);
    const b = SparseGPR.fitSync(smallTrain, smallCase.gpr);
    expect(await a.calibrateVariance(smallTest)).toEqual(b.calibrateVarianceSync(smallTest));
    expect(() => a.calibrateVarianceSync(smallTest, { energy: 'nope' })).toThrow(/info\.nope is missing/);
    expect(() => a.calibrateVarianceSync(smallTest, { bogus: 1 } as never)).toThrow(/unknown calibrateVariance option "bogus"/);
  });
});
