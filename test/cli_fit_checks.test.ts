// `acdc fit`'s checks end to end on the bundled EMT copper example: the
// seeded validation split (numpy's RandomState(seed).permutation), the
// linear and per-species-count baselines, the warnings, --model auto, the
// variance calibration, --e0 per species, --jitter, GAP's per-frame and
// per-config_type sigmas and --sigma-virial; bad input is one `acdc:` line,
// an exit code and no model file.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FIT_DEFAULTS, LinearModel, SparseGPR, System, formatXyz, loadModelSync, readXyzSync } from 'acdc-ml';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const train = path.join(root, 'examples', 'emt-cu-train.xyz');
const frames = readXyzSync(train);

// numpy 2.4.6: np.random.RandomState(0).permutation(40)[:4] and RandomState(1).permutation(40)[:4]
const SEED0 = [22, 20, 25, 4];
const SEED1 = [2, 31, 3, 21];

function acdc(args: string[], cwd?: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd, env: { ...process.env, ACDC_NUM_THREADS: '2' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function folder(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-fit-checks-'));
}

async function expectOneLineError(args: string[], status: number, message: RegExp, cwd: string) {
  const r = await acdc(args, cwd);
  expect(r.status, r.stderr).toBe(status);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^acdc( \w+)?: /);
  expect(lines[0]).toMatch(message);
  expect(fs.readdirSync(cwd).filter((f) => f.endsWith('.acdc') || f.includes('partial'))).toEqual([]);
}

const smallHypers = {
  cutoff: { radius: 4, smoothing: { type: 'ShiftedCosine', width: 1 } },
  density: { type: 'Gaussian', width: 0.5 },
  basis: { type: 'TensorProduct', max_angular: 3, radial: { type: 'Gto', max_radial: 3 } },
};
const dir = folder();
const hypers = path.join(dir, 'small.json');
fs.writeFileSync(hypers, JSON.stringify(smallHypers));
const quick = ['--hypers', hypers, '--sparse', '20', '--json'];

/** The JSON header of a .acdc file (magic, version, zero, u64 length, JSON). */
function header(file: string): Record<string, unknown> {
  const b = fs.readFileSync(file);
  const n = Number(b.readBigUInt64LE(16));
  return JSON.parse(b.subarray(24, 24 + n).toString('utf8'));
}

describe('acdc fit: validation split, baselines, calibration (defaults)', () => {
  const model = path.join(dir, 'default.acdc');
  let s: any;
  let stderr = '';
  beforeAll(async () => {
    const r = await acdc(['fit', train, '--out', model, ...quick]);
    expect(r.status, r.stderr).toBe(0);
    s = JSON.parse(r.stdout);
    stderr = r.stderr;
  }, 300_000);

  it('holds out 10 % of the frames, numpy\'s RandomState(0).permutation, and fits on the rest', () => {
    expect(s.split).toEqual({ fraction: 0.1, seed: 0, training: 36, validation: [...SEED0].sort((a, b) => a - b), moved: 0 });
    expect(s.frames).toBe(40);
    expect(s.training.energy.count).toBe(36);
    expect(s.validation.energy.count).toBe(4);
    expect(s.validation.forces.count).toBe(4 * 32 * 3);
  });

  it('the validation errors are those of the saved model on the held-out frames', async () => {
    const m = loadModelSync(model);
    const held = s.split.validation.map((k: number) => frames[k]);
    const p = m.predictSync(held, { forces: true });
    let sq = 0;
    held.forEach((f: System, k: number) => (sq += ((p.energy[k] - (f.info.energy as number)) / f.size) ** 2));
    expect(Math.abs(Math.sqrt(sq / held.length) - s.validation.energy.rmse)).toBeLessThanOrEqual(1e-12 * s.validation.energy.rmse);
    expect(s.candidates[s.chosen].validation).toEqual(s.validation);
    // the statistics come from the core (models::calibration::error_statistics): MAE and the forces, transcribed here
    let abs = 0;
    held.forEach((f: System, k: number) => (abs += Math.abs((p.energy[k] - (f.info.energy as number)) / f.size)));
    expect(Math.abs(abs / held.length - s.validation.energy.mae)).toBeLessThanOrEqual(1e-12 * s.validation.energy.mae);
    let fAbs = 0;
    let fSq = 0;
    let fCount = 0;
    held.forEach((f: System, k: number) => {
      const ref = f.arrays.forces as Float64Array;
      for (let i = 0; i < ref.length; i++, fCount++) {
        const d = p.forces![k][i] - ref[i];
        fAbs += Math.abs(d);
        fSq += d * d;
      }
    });
    expect(s.validation.forces.count).toBe(fCount);
    expect(Math.abs(fAbs / fCount - s.validation.forces.mae)).toBeLessThanOrEqual(1e-12 * s.validation.forces.mae);
    expect(Math.abs(Math.sqrt(fSq / fCount) - s.validation.forces.rmse)).toBeLessThanOrEqual(1e-12 * s.validation.forces.rmse);
  });

  it('fits the three candidates of --model auto (the default) and the count baseline on the same frames, and saves the best', () => {
    expect(s.requested).toBe('auto');
    expect(Object.keys(s.candidates).sort()).toEqual(['gpr', 'gpr+2b', 'linear']);
    for (const c of Object.values(s.candidates) as any[]) expect(c.loss).toBeGreaterThan(0);
    // the loss is Σ (validation RMSE / default sigma)² over the fitted targets
    for (const c of Object.values(s.candidates) as any[]) {
      const v = c.validation;
      const sigma = { energy: FIT_DEFAULTS.sigmaEnergy, forces: FIT_DEFAULTS.sigmaForces, stress: FIT_DEFAULTS.sigmaStress };
      let loss = 0;
      for (const t of ['energy', 'forces', 'stress'] as const) if (v[t]) loss += (v[t].rmse / sigma[t]) ** 2;
      expect(v.energy).not.toBeNull();
      expect(Math.abs(c.loss - loss)).toBeLessThanOrEqual(1e-12 * loss);
    }
    const losses = Object.entries(s.candidates).map(([k, c]: [string, any]) => [k, c.loss] as const);
    const best = losses.reduce((a, b) => (b[1] < a[1] ? b : a))[0];
    expect(s.chosen).toBe(best);
    expect(s.model).toBe(best === 'linear' ? 'linear' : 'gpr');
    expect(s.terms).toBe(best === 'linear' ? null : best === 'gpr+2b' ? '2b,soap' : 'soap');
    const saved = loadModelSync(model);
    expect(saved.kind).toBe(best === 'linear' ? 'linear' : 'sparse_gpr');
    if (best === 'gpr+2b') expect((saved.fitInfo.terms as Array<{ type: string }>).map((t) => t.type)).toEqual(['soap', 'distance_2b']);
    // one species: least squares of E on N, e = Σ E N / Σ N², transcribed here
    const tr = frames.filter((_, k) => !s.split.validation.includes(k));
    const e = tr.reduce((a, f) => a + (f.info.energy as number) * f.size, 0) / tr.reduce((a, f) => a + f.size * f.size, 0);
    expect(Math.abs(s.countBaseline.perAtom['29'] - e)).toBeLessThanOrEqual(1e-12 * Math.abs(e));
    const held = s.split.validation.map((k: number) => frames[k]);
    const baselineRmse = Math.sqrt(held.reduce((a: number, f: System) => a + ((e * f.size - (f.info.energy as number)) / f.size) ** 2, 0) / held.length);
    expect(Math.abs(s.countBaseline.validation.energy.rmse - baselineRmse)).toBeLessThanOrEqual(1e-10 * baselineRmse);
    expect(s.countBaseline.validation.energy.count).toBe(4);
    expect(s.countBaseline.validation.forces).toBeNull();
    // EMT copper is learnt: the GPR beats the count baseline by far. EMT is
    // nearly body-ordered, so the linear model on the same features may beat
    // the GPR: then, and only then, one warning line says so
    expect(s.validation.energy.rmse).toBeLessThan(0.2 * s.countBaseline.validation.energy.rmse);
    // auto saves the best candidate: no warning that it loses to the linear model
    expect(s.warnings).toHaveLength(0);
    expect(stderr).toBe(s.warnings.map((w: string) => `acdc fit: warning: ${w}\n`).join(''));
  });

  it('calibrates the variance on the leave-one-out errors of the training frames, checks it on the validation frames and saves it with the model', () => {
    expect(s.calibration.method).toBe('leave-one-out');
    expect(s.calibration.structures).toBe(36);
    expect(s.calibration.scale).toBeGreaterThan(0);
    // the noise per atom, fitted with the scale
    expect(s.calibration.noise).toBeGreaterThanOrEqual(0);
    expect(s.calibration.validation.structures).toBe(4);
    for (const k of ['within1Sigma', 'within2Sigma'] as const) {
      for (const c of [s.calibration, s.calibration.validation]) {
        expect(c[k]).toBeGreaterThanOrEqual(0);
        expect(c[k]).toBeLessThanOrEqual(1);
      }
    }
    const m = loadModelSync(model);
    expect(m.varianceScale).toBe(s.calibration.scale);
    expect(m.varianceNoise).toBe(s.calibration.noise);
    expect(m.fitInfo.variance_calibration).toBe('leave-one-out');
    // the same calibration through the API on the training frames, in file order
    const trainFrames = frames.filter((_, k) => !s.split.validation.includes(k));
    const again = loadModelSync(model).calibrateVarianceLeaveOneOutSync(trainFrames);
    expect(Math.abs(again.scale - s.calibration.scale)).toBeLessThanOrEqual(1e-12 * s.calibration.scale);
    expect(again.within1Sigma).toBe(s.calibration.within1Sigma);
    // the validation coverage is that of the saved variance on the held-out frames
    const check = m.calibrateVarianceSync(s.split.validation.map((k: number) => frames[k]), { apply: false });
    expect(check.within1SigmaBefore).toBe(s.calibration.validation.within1Sigma);
    expect(check.within2SigmaBefore).toBe(s.calibration.validation.within2Sigma);
    expect(m.varianceScale).toBe(s.calibration.scale);
    expect(fs.readdirSync(dir).sort()).toEqual(['default.acdc', 'small.json']);
  });

  it('the text report prints validation errors next to training errors and the comparison', async () => {
    const out = path.join(folder(), 'm.acdc');
    const r = await acdc(['fit', train, '--out', out, '--hypers', hypers, '--sparse', '20']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/(sparse GPR \((SOAP|distance_2b \+ SOAP)\)|linear model) \(chosen by --model auto: lowest validation loss\) fitted on 36 structures/);
    expect(r.stdout).toMatch(/validation: 4 of 40 frames held out \(--validation 0\.1, --seed 0\)/);
    expect(r.stdout).toMatch(/training errors:/);
    expect(r.stdout).toMatch(/validation errors:/);
    expect(r.stdout).toMatch(/sparse GPR( \(saved\))?\s+\S+ meV\/atom/);
    expect(r.stdout).toMatch(/sparse GPR, 2b \+ SOAP( \(saved\))?\s+\S+ meV\/atom/);
    expect(r.stdout).toMatch(/linear model( \(saved\))?\s+\S+ meV\/atom/);
    expect(r.stdout.match(/\(saved\)/g)).toHaveLength(1);
    expect(r.stdout).toMatch(/per-species-count baseline\s+\S+ meV\/atom\s+—/);
    expect(r.stdout).toMatch(/variance calibrated on the leave-one-out errors of the 36 training frames: s·\(v \+ \S+( meV²·N)?\), s = \S+; their errors within 1σ \d+ %, within 2σ \d+ %/);
    expect(r.stdout).toMatch(/validation frames \(not used to calibrate\): 4 energy errors, within 1σ \d+ %, within 2σ \d+ %/);
  }, 300_000);
});

describe('acdc fit: --sparse and a minority species', () => {
  it('a species with fewer training environments than --sparse keeps all of them, with a note', async () => {
    const d = folder();
    // the first 12 frames of the Cu set, the first atom of frames 0–2 made Au: 3 Au environments
    const lines = fs.readFileSync(train, 'utf8').split('\n');
    const out: string[] = [];
    for (let k = 0, frame = 0; frame < 12; frame++) {
      const n = Number(lines[k]);
      out.push(lines[k]!, lines[k + 1]!);
      for (let i = 0; i < n; i++) out.push(frame < 3 && i === 0 ? lines[k + 2 + i]!.replace(/^Cu\b/, 'Au') : lines[k + 2 + i]!);
      k += n + 2;
    }
    const file = path.join(d, 'minority.xyz');
    fs.writeFileSync(file, out.join('\n') + '\n');
    const r = await acdc(['fit', file, '--out', path.join(d, 'm.acdc'), ...quick, '--model', 'gpr', '--validation', '0']);
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.sparse).toEqual({ 29: 20, 79: 3 });
    expect(s.notes).toContain('species 79 has 3 training environments, fewer than --sparse 20: all of them are its sparse set');
    expect(loadModelSync(path.join(d, 'm.acdc')).kind).toBe('sparse_gpr');
  }, 300_000);
});

describe('acdc fit: --seed, --validation 0, --model auto, warnings', () => {
  it('--seed draws another split; --validation 0 fits every frame and checks nothing', async () => {
    const d = folder();
    const r1 = await acdc(['fit', train, '--out', path.join(d, 'a.acdc'), ...quick, '--seed', '1', '--model', 'linear']);
    expect(r1.status, r1.stderr).toBe(0);
    const a = JSON.parse(r1.stdout);
    expect(a.split.validation).toEqual([...SEED1].sort((x, y) => x - y));
    expect(Object.keys(a.candidates)).toEqual(['linear']);
    expect(a.countBaseline.validation.energy.count).toBe(4);
    // the linear model's force variance: calibrated on the 36 training frames'
    // leave-one-frame-out force errors, checked on the 4 validation frames, kept in the file
    expect(a.forceCalibration).toMatchObject({ method: 'leave-one-out', components: 36 * 32 * 3 });
    expect(a.forceCalibration.validation.components).toBe(4 * 32 * 3);
    expect(loadModelSync(path.join(d, 'a.acdc')).forceVarianceCalibration).toEqual({ scale: a.forceCalibration.scale, noise: a.forceCalibration.noise });
    // one composition: frames left out, no composition spread
    expect(a.calibration.groups).toBe('frame');
    expect(a.calibration.compositionSpread).toBeNull();
    const r0 = await acdc(['fit', train, '--out', path.join(d, 'b.acdc'), ...quick, '--validation', '0']);
    expect(r0.status, r0.stderr).toBe(0);
    const b = JSON.parse(r0.stdout);
    expect(b.split).toEqual({ fraction: 0, seed: 0, training: 40, validation: [], moved: 0 });
    expect(b.validation).toBeNull();
    // leave-one-out needs no split: every frame calibrates, nothing checks it
    expect(b.calibration.structures).toBe(40);
    expect(b.calibration.validation).toBeNull();
    expect(b.countBaseline).toBeNull();
    expect(Object.keys(b.candidates)).toEqual(['gpr']);
    // the GPR's force variance (posterior + prior part): calibrated on all 40 frames, nothing to check it on
    expect(b.forceCalibration).toMatchObject({ method: 'leave-one-out', components: 40 * 32 * 3, validation: null });
    expect(loadModelSync(path.join(d, 'b.acdc')).forceVarianceCalibration).toEqual({ scale: b.forceCalibration.scale, noise: b.forceCalibration.noise });
    expect(loadModelSync(path.join(d, 'b.acdc')).varianceScale).toBe(b.calibration.scale);
  }, 300_000);

  it('--force-calibration off: the same linear fit, no force calibration in the report or the file', async () => {
    const d = folder();
    const on = path.join(d, 'on.acdc');
    const off = path.join(d, 'off.acdc');
    const r1 = await acdc(['fit', train, '--out', on, ...quick, '--model', 'linear', '--force-calibration', 'auto']);
    expect(r1.status, r1.stderr).toBe(0);
    const a = JSON.parse(r1.stdout);
    expect(a.forceCalibration).toMatchObject({ method: 'leave-one-out', components: 36 * 32 * 3 });
    expect(header(on).meta).toHaveProperty('force_variance_scale');
    const r0 = await acdc(['fit', train, '--out', off, ...quick, '--model', 'linear', '--force-calibration', 'off']);
    expect(r0.status, r0.stderr).toBe(0);
    const b = JSON.parse(r0.stdout);
    expect(b.forceCalibration).toBeNull();
    expect(b.notes).toContain('the force variance was not calibrated (--force-calibration off): the model file holds none, and its force variance is the uncalibrated one');
    const meta = header(off).meta as Record<string, unknown>;
    expect(meta).not.toHaveProperty('force_variance_scale');
    expect(meta).not.toHaveProperty('force_variance_noise');
    expect(loadModelSync(off).forceVarianceCalibration).toEqual({ scale: 1, noise: 0 });
    // the fit and the energy calibration are the same as with it
    expect(loadModelSync(off).weights).toEqual(loadModelSync(on).weights);
    expect(b.calibration.scale).toBe(a.calibration.scale);
    // the text report says so
    const t = await acdc(['fit', train, '--out', path.join(d, 'text.acdc'), '--hypers', hypers, '--model', 'linear', '--force-calibration', 'off']);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stdout).toContain('note: the force variance was not calibrated (--force-calibration off)');
    expect(t.stdout).not.toContain('force variance calibrated on');
  }, 300_000);

  it('--model auto saves the candidate with the lower validation loss', async () => {
    const d = folder();
    const r = await acdc(['fit', train, '--out', path.join(d, 'auto.acdc'), ...quick, '--model', 'auto']);
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.requested).toBe('auto');
    const order = ['gpr', 'gpr+2b', 'linear'];
    expect(Object.keys(s.candidates).sort()).toEqual(order);
    // the lowest loss, ties to the earlier candidate
    let best = 'gpr';
    for (const k of order) if (s.candidates[k].loss < s.candidates[best].loss) best = k;
    expect(s.chosen).toBe(best);
    expect(s.model).toBe(best === 'linear' ? 'linear' : 'gpr');
    expect(loadModelSync(path.join(d, 'auto.acdc')).kind).toBe(best === 'linear' ? 'linear' : 'sparse_gpr');
    // with --terms the GPR has them, and auto has no separate 2b candidate
    const t = await acdc(['fit', train, '--out', path.join(d, 'auto2b.acdc'), ...quick, '--terms', '2b,soap']);
    expect(t.status, t.stderr).toBe(0);
    expect(Object.keys(JSON.parse(t.stdout).candidates).sort()).toEqual(['gpr', 'linear']);
    // the GPR with a distance_2b term has a calibrated force variance too
    // (both terms' prior parts): on the 36 training frames, checked on the 4 validation frames
    const g = await acdc(['fit', train, '--out', path.join(d, 'gpr2b.acdc'), ...quick, '--model', 'gpr', '--terms', '2b,soap']);
    expect(g.status, g.stderr).toBe(0);
    const sg = JSON.parse(g.stdout);
    expect(sg.terms).toBe('2b,soap');
    expect(sg.forceCalibration).toMatchObject({ method: 'leave-one-out', components: 36 * 32 * 3 });
    expect(sg.forceCalibration.validation.components).toBe(4 * 32 * 3);
    expect(sg.notes.some((n: string) => /force variance was not calibrated/.test(n))).toBe(false);
    const m2b = loadModelSync(path.join(d, 'gpr2b.acdc'));
    expect(m2b.forceVarianceCalibration).toEqual({ scale: sg.forceCalibration.scale, noise: sg.forceCalibration.noise });
  }, 300_000);

  it('a GPR that learnt nothing (δ = 1e-6 eV: α ≈ 0, with e0 1 eV/atom off) is saved with one warning line per baseline it loses to', async () => {
    const d = folder();
    const r = await acdc(['fit', train, '--out', path.join(d, 'bad.acdc'), ...quick, '--model', 'gpr', '--delta', '1e-6', '--e0', '29:1']);
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^acdc fit: warning: the sparse GPR loses to the linear model on the same features on validation \(energy RMSE .*\): try --model linear or --model auto$/);
    expect(lines[1]).toMatch(/^acdc fit: warning: the sparse GPR loses to the per-species-count baseline on validation energies/);
    expect(s.warnings).toHaveLength(2);
    expect(fs.existsSync(path.join(d, 'bad.acdc'))).toBe(true);
    // the same under auto: the 2b + SOAP candidate's solve is singular (the
    // SOAP columns are 1e-12 of the 2b ones); it is left out with a note and
    // auto saves one of the others
    const a = await acdc(['fit', train, '--out', path.join(d, 'bad-auto.acdc'), ...quick, '--delta', '1e-6', '--e0', '29:1']);
    expect(a.status, a.stderr).toBe(0);
    const sa = JSON.parse(a.stdout);
    expect(sa.notes.some((n: string) => /^the distance_2b \+ SOAP candidate failed and was left out: .*singular/.test(n))).toBe(true);
    expect(Object.keys(sa.candidates).sort()).toEqual(['gpr', 'linear']);
    expect(sa.chosen).toBe('linear');
  }, 300_000);
});

describe('acdc fit: --e0, --jitter, sigmas per frame and per config_type', () => {
  it('--e0 Z:eV sets e0 per species; --jitter is stored', async () => {
    const d = folder();
    const r = await acdc(['fit', train, '--out', path.join(d, 'e.acdc'), ...quick, '--e0', '29:-3.5', '--jitter', '1e-6', '--validation', '0']);
    expect(r.status, r.stderr).toBe(0);
    const m = loadModelSync(path.join(d, 'e.acdc'));
    expect(m.e0).toEqual({ 29: -3.5 });
    expect(header(path.join(d, 'e.acdc')).jitter).toBe(1e-6);
  }, 300_000);

  it('config_type sigmas (per atom, as gap_fit) and per-frame info sigmas give the fit the API gives with those frameSigmas', async () => {
    const d = folder();
    const typed = frames.map((f, k) => {
      const info: Record<string, unknown> = { ...f.info, config_type: k % 2 ? 'hot' : 'cold' };
      if (k === 3) info.energy_sigma = 0.05;
      if (k === 5) info.force_sigma = 0.3;
      if (k === 7) info.virial_sigma = 0.7;
      return new System({ types: f.types, positions: f.positions, cell: f.cell, pbc: f.pbc, info: info as System['info'], arrays: f.arrays });
    });
    const file = path.join(d, 'typed.xyz');
    fs.writeFileSync(file, formatXyz(typed));
    const r = await acdc(['fit', file, '--out', path.join(d, 't.acdc'), ...quick, '--model', 'linear', '--validation', '0', '--config-type-sigma', 'hot:0.004:0.1:0.02:0.0:cold:0.001:0.03:0.01:0.0']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).frameSigmas).toBe(40);
    const own = typed.map((f, k) => {
      const g = k % 2 ? { e: 0.004, f: 0.1, v: 0.02 } : { e: 0.001, f: 0.03, v: 0.01 };
      return {
        energy: k === 3 ? 0.05 : g.e * Math.sqrt(f.size),
        forces: k === 5 ? 0.3 : g.f,
        virial: k === 7 ? 0.7 : g.v * Math.sqrt(f.size),
      };
    });
    const api = await LinearModel.fit(typed, {
      hypers: smallHypers as never,
      targets: { energy: 'energy', forces: 'forces', stress: 'stress' },
      sigmas: { energy: 0.002, forces: 0.05, stress: 0.001 },
      frameSigmas: own,
      regularizer: 1e-6,
    });
    const cliModel = loadModelSync(path.join(d, 't.acdc'));
    const w = cliModel.weights;
    const scale = Math.max(...Array.from(api.weights, Math.abs));
    api.weights.forEach((x, k) => expect(Math.abs(x - w[k])).toBeLessThanOrEqual(1e-12 * scale));
    // and differs from the fit with the default sigmas
    const plain = await LinearModel.fit(typed, { hypers: smallHypers as never, targets: { energy: 'energy', forces: 'forces', stress: 'stress' }, sigmas: { energy: 0.002, forces: 0.05, stress: 0.001 }, regularizer: 1e-6 });
    expect(Math.max(...Array.from(plain.weights, (x, k) => Math.abs(x - w[k])))).toBeGreaterThan(1e-6 * scale);
  }, 300_000);

  it('--sigma-virial σ (eV/atom) equals per-frame virial sigmas σ·√N', async () => {
    const d = folder();
    const r = await acdc(['fit', train, '--out', path.join(d, 'v.acdc'), ...quick, '--model', 'linear', '--validation', '0', '--sigma-virial', '0.05']);
    expect(r.status, r.stderr).toBe(0);
    const api = await LinearModel.fit(frames, {
      hypers: smallHypers as never,
      targets: { energy: 'energy', forces: 'forces', stress: 'stress' },
      sigmas: { energy: 0.002, forces: 0.05, stress: 0.001 },
      frameSigmas: frames.map((f) => ({ virial: 0.05 * Math.sqrt(f.size) })),
      regularizer: 1e-6,
    });
    const w = loadModelSync(path.join(d, 'v.acdc')).weights;
    const scale = Math.max(...Array.from(api.weights, Math.abs));
    api.weights.forEach((x, k) => expect(Math.abs(x - w[k])).toBeLessThanOrEqual(1e-12 * scale));
  }, 300_000);
});

describe('acdc fit: bad input for the new options is one line, an exit code and no file', () => {
  it('usage errors exit 2', async () => {
    const d = folder();
    const cases: Array<[string[], RegExp]> = [
      [['--validation', '1'], /--validation.*expected a fraction ≥ 0 and < 1, got "1"/],
      [['--validation', 'x'], /expected a fraction/],
      [['--seed', '-1'], /--seed.*expected an integer from 0 to 4294967295, got "-1"/],
      [['--jitter', '-1'], /--jitter.*expected a number ≥ 0, got "-1"/],
      [['--e0', '29:abc'], /--e0.*expected average, fit or Z:eV pairs such as 29:-3\.5,79:-3\.2, got "29:abc"/],
      [['--e0', '29:1,29:2'], /species 29 is given twice/],
      [['--config-type-sigma', 'bulk:0.1'], /--config-type-sigma.*2 fields is not a multiple of 5/],
      [['--config-type-sigma', 'bulk:a:0.05:0.05:0'], /bulk: energy sigma "a" is not a number ≥ 0/],
      [['--config-type-sigma', 'bulk:1:1:1,bulk:1:1:1'], /config_type "bulk" is given twice/],
      [['--model', 'nn'], /expected one of gpr, linear, auto, got "nn"/],
      [['--calibrate-by', 'atom'], /--calibrate-by.*expected one of auto, frame, composition, got "atom"/],
      [['--force-calibration', 'on'], /--force-calibration.*expected one of auto, off, got "on"/],
    ];
    for (const [args, message] of cases) await expectOneLineError(['fit', train, '--out', 'm.acdc', ...args], 2, message, d);
  }, 120_000);

  it('errors found in the data exit 1', async () => {
    const d = folder();
    await expectOneLineError(['fit', train, '--out', 'm.acdc', ...quick, '--e0', '79:-3'], 1, /e0 has no value for species 29/, d);
    await expectOneLineError(['fit', train, '--out', 'm.acdc', ...quick, '--no-charges'], 1, /--no-charges applies to dipole models \(--target dipole\), not to energy fits/, d);
    await expectOneLineError(['fit', train, '--out', 'm.acdc', ...quick, '--config-type-sigma', 'bulk:0.001:0.05:0.05:0'], 1, /no frame has a config_type listed in --config-type-sigma \(bulk\)/, d);
    await expectOneLineError(['fit', train, '--out', 'm.acdc', ...quick, '--sigma-virial', '0.05', '--sigma-stress', '0.01'], 1, /--sigma-virial and --sigma-stress both set the stress noise/, d);
    const bad = frames.map((f, k) => new System({ types: f.types, positions: f.positions, cell: f.cell, pbc: f.pbc, info: { ...f.info, ...(k === 2 ? { force_sigma: -1 } : {}) } as System['info'], arrays: f.arrays }));
    fs.writeFileSync(path.join(d, 'bad.xyz'), formatXyz(bad));
    await expectOneLineError(['fit', 'bad.xyz', '--out', 'm.acdc', ...quick, '--validation', '0'], 1, /bad\.xyz: frame 2: force_sigma is -1 \(expected a positive number\)/, d);
  }, 300_000);
});

// the Cu–Au small case of test/gpr.test.ts: 9 frames in 3 compositions
describe('acdc fit: compositions left out, and the spread against frames', () => {
  it('reports calibration.compositionSpread as the two calibrations give it, and warns only above 10', async () => {
    const fixtures = path.join(root, 'test', 'fixtures', 'models');
    const small = JSON.parse(fs.readFileSync(path.join(fixtures, 'small_case.json'), 'utf8'));
    const all = readXyzSync(path.join(fixtures, 'train.xyz'));
    const chosen: System[] = small.train.map((k: number) => all[k]);
    const d = folder();
    const file = path.join(d, 'cuau.xyz');
    fs.writeFileSync(file, formatXyz(chosen));
    const out = path.join(d, 'cuau.acdc');
    const r = await acdc(['fit', file, '--out', out, ...quick, '--model', 'linear', '--validation', '0']);
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.calibration).toMatchObject({ groups: 'composition', groupCount: 3 });
    // the frame calibration and the mean leave-one-out variance, through the API, and the ratio by hand
    const m = loadModelSync(out);
    const byFrame = m.calibrateVarianceLeaveOneOutSync(chosen, { groups: 'frame' });
    const l = m.leaveOneOutSync(chosen, { groups: 'frame' });
    const v = Array.from(l.variances).reduce((a, x) => a + Math.max(x, 0), 0) / l.variances.length;
    const n = l.atoms.reduce((a, x) => a + x, 0) / l.atoms.length;
    const want = (s.calibration.scale * (v + s.calibration.noise * n)) / (byFrame.scale * (v + byFrame.noise! * n));
    expect(Math.abs(s.calibration.compositionSpread - want)).toBeLessThanOrEqual(1e-12 * want);
    const warned = s.warnings.some((w: string) => w.includes('calibrated on left-out compositions'));
    expect(warned).toBe(want > 10);
    expect(r.stderr).toBe(s.warnings.map((w: string) => `acdc fit: warning: ${w}\n`).join(''));
    // the linear model's force variance is calibrated on the 9 frames
    expect(s.forceCalibration.components).toBe(chosen.reduce((a, f) => a + 3 * f.size, 0));
    expect(s.forceCalibration.validation).toBeNull();
  }, 300_000);
});
