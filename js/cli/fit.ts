// `acdc fit`: fits a sparse GPR (GAP-style) or linear potential on the
// energies, forces and stress of an extxyz file and saves it as one .acdc
// model file, written atomically. By default it holds out a seeded
// validation split of whole frames, fits a linear model and the
// per-species-count baseline next to the chosen model, warns when the
// chosen model loses to either on validation, and calibrates the
// predictive variance on the validation frames. Prints a fit report:
// training and validation errors, baselines, calibration, time.
import * as fs from 'node:fs';
import type { SoapHypers } from '../calculators';
import { DEFAULT_FIT_HYPERS } from '../fit_defaults';
import type { E0Option, ForceVarianceCalibration, PotentialFeatures, VarianceCalibration } from '../potentials';
import type { System } from '../system';
import { readXyz } from '../xyz';
import { checkWritableTarget } from '../atomic';
import { rethrown, coded } from '../errors';
import { resolveInput } from '../featurize/input';
import { modelsApi, type CliModel, type CommonFitOptions } from './model_api';
import { Stages } from './stages';
import { checkTermOptions, withTerms, type TermCliOptions } from './terms';
import { errors, isFullyPeriodic, trainingTargets, type Errors, type TargetNames } from './targets';
import { calibrationWarning, compositionSpread, compositionSpreadWarning, countBaselineErrors, frameSigmas, parseConfigTypeSigma, validationLoss, validationSplit } from './fit_checks';

// the one table of defaults, shared with SparseGPR.fit and LinearModel.fit
export { DEFAULT_FIT_HYPERS, FIT_DEFAULTS } from '../fit_defaults';

export const MODEL_KINDS = ['gpr', 'linear', 'auto'] as const;
/** What --features accepts (the calculators the energy models can be fitted on). */
export const FEATURE_KINDS = ['power_spectrum', 'bispectrum'] as const;

/**
 * The candidates `acdc fit` can fit on the same features: the sparse GPR
 * with the terms asked for (SOAP alone by default), the sparse GPR with
 * GAP's distance_2b term next to SOAP (tried by `--model auto` when
 * `--terms` is not given), and the linear model.
 */
export type CandidateKind = 'gpr' | 'gpr+2b' | 'linear';

/**
 * Largest linear model `acdc fit --model gpr` fits as a check on its own
 * (species × features parameters: 1512 for two species at the default hypers,
 * R is 18 MB); beyond it the check is skipped with a note.
 */
export const LINEAR_CHECK_MAX_PARAMETERS = 5000;
export const SPARSE_METHODS = ['cur', 'leverage', 'leverage-mix', 'pivoted-cholesky', 'greedy-trace', 'fps', 'random'] as const;
export const E0_METHODS = ['average', 'fit'] as const;
/** What --force-calibration accepts. */
export const FORCE_CALIBRATION = ['auto', 'off'] as const;

export interface FitOptions extends TermCliOptions {
  out: string;
  hypers?: string;
  /** Features of the energy models (default: the power spectrum). */
  features?: PotentialFeatures;
  energy: string;
  /** Forces column; false: --no-forces; undefined: "forces" when every frame has it. */
  forces?: string | false;
  /** Stress key; false: --no-stress; undefined: "stress" when every periodic frame has it. */
  stress?: string | false;
  model: (typeof MODEL_KINDS)[number];
  sparse: number;
  sparseMethod: (typeof SPARSE_METHODS)[number];
  zeta: number;
  delta: number;
  jitter: number;
  /**
   * GAP's sparse_jitter (eV², absolute, the same for every term), passed
   * to SparseGPR.fit as `sparseJitter` instead of --jitter and --2b-jitter.
   */
  sparseJitter?: number;
  sigmaEnergy: number;
  sigmaForces: number;
  sigmaStress: number;
  /** Per-atom virial sigma, eV/atom (GAP's default_sigma virial), instead of sigmaStress. */
  sigmaVirial?: number;
  /** GAP's config_type_sigma string. */
  configTypeSigma?: string;
  regularizer: number;
  e0: E0Option;
  /** Fraction of whole frames held out (0: none). */
  validation: number;
  /** Seed of the validation split. */
  seed: number;
  /** What the leave-out variance calibration leaves out in turn (default 'auto'). */
  calibrateBy?: 'auto' | 'frame' | 'composition';
  /**
   * Whether the force variance is calibrated on the leave-one-frame-out
   * force errors of the training frames: 'auto' (the default: when forces
   * are fitted, for the linear model and the sparse GPR with or without a
   * distance_2b term) or 'off' (the model file then holds no force calibration).
   */
  forceCalibration?: (typeof FORCE_CALIBRATION)[number];
  progress: boolean;
  json?: boolean;
}

/** One fitted candidate's errors. */
export interface CandidateSummary {
  training: Errors;
  validation: Errors | null;
  /** Validation loss: Σ (RMSE/σ)² over the fitted targets (null without a validation split). */
  loss: number | null;
}

export interface FitSummary {
  file: string;
  out: string;
  /** The model saved: 'gpr' or 'linear' (with --model auto, the one chosen). */
  model: 'gpr' | 'linear';
  /** The candidate saved ('gpr+2b': the GPR with a distance_2b term next to SOAP). */
  chosen: CandidateKind;
  /** The GPR's kernel terms ('soap' or '2b,soap'); null for a linear model. */
  terms: string | null;
  /** What --model asked for. */
  requested: (typeof MODEL_KINDS)[number];
  /** Frames in the file. */
  frames: number;
  /** The validation split: fraction, seed, frame indices held out (the model is fitted on the rest and not refitted). */
  split: { fraction: number; seed: number; training: number; validation: number[]; moved: number };
  atoms: number;
  species: number[];
  targets: TargetNames;
  /** Sparse environments per centre species (GPR): min(--sparse, atoms of that species). */
  sparse: Record<string, number> | null;
  hypers: SoapHypers;
  /** The features of the models: 'power_spectrum' (ν = 2) or 'bispectrum' (ν = 3). */
  features: PotentialFeatures;
  /** Training errors of the saved model on the training frames. */
  training: Errors;
  /** Its errors on the validation frames (null: no split). */
  validation: Errors | null;
  /** The candidates fitted on the same features: the GPR, the GPR with a 2-body term (auto) and the linear model (each fitted when asked for, as a check, or as a candidate of auto). */
  candidates: Partial<Record<CandidateKind, CandidateSummary>>;
  /** The per-species-count baseline (energy = Σ_Z n_Z e_Z, least squares on the training frames): its validation energy errors and e_Z (eV/atom). */
  countBaseline: { validation: Errors; perAtom: Record<string, number> } | null;
  /**
   * Calibration of the energy variance: the scale (and noise per atom)
   * fitted on the closed-form leave-one-out errors of the training frames,
   * their coverage, and `validation`: the coverage on the validation frames,
   * which took no part in it (null: no split). Null when it failed (a note says why).
   */
  calibration: FitCalibration | null;
  /**
   * Calibration of the per-component force variance (linear model or
   * sparse GPR, with or without a distance_2b term, with forces):
   * s_F·(v + c_F) from the closed-form leave-one-frame-out force errors of
   * the training frames, and the coverage on the validation frames. Null
   * without forces, with --force-calibration off or when it failed (a note
   * says why).
   */
  forceCalibration: FitForceCalibration | null;
  /** Frames with their own sigmas (info keys or config_type). */
  frameSigmas: number;
  /** One line each: the saved model loses to a baseline on validation. */
  warnings: string[];
  /** Checks that were not made, and why. */
  notes: string[];
  seconds: number;
}

/** Reads and checks `--hypers`: a JSON object of power spectrum hyper-parameters. */
function readHypers(file: string | undefined): SoapHypers {
  if (file === undefined) return DEFAULT_FIT_HYPERS;
  let text: string;
  try {
    if (fs.statSync(file).isDirectory()) throw coded('ACDC_IO', `--hypers ${file} is a folder, not a JSON file`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw rethrown(e, `--hypers ${file}: no such file`, 'ACDC_IO');
    throw e;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw coded('ACDC_PARSE', `--hypers ${file} is not valid JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw coded('ACDC_INVALID_PARAMETER', `--hypers ${file} must hold a JSON object of SOAP hyper-parameters`);
  return value as SoapHypers;
}

async function readFrames(file: string): Promise<{ frames: System[]; name: string }> {
  const input = await resolveInput(file);
  try {
    return { frames: await readXyz(input.path), name: input.name };
  } catch (e) {
    throw rethrown(e, `${input.name}: ${(e as Error).message}`, 'ACDC_PARSE');
  } finally {
    input.cleanup();
  }
}

/** The variance calibration of `acdc fit` and its independent check. */
export type FitCalibration = VarianceCalibration & {
  /** Coverage of the calibrated variance on the validation frames, and the scale their errors alone would give (relative: 1 is calibrated). */
  validation: { structures: number; within1Sigma: number; within2Sigma: number; relativeScale: number } | null;
  /**
   * When compositions were left out: the composition-calibrated variance
   * over the frame-calibrated one at a typical training frame (1: they
   * agree; above 10 `acdc fit` warns); null when frames were left out.
   */
  compositionSpread: number | null;
};

/** The force variance calibration of `acdc fit` and its check on the validation frames. */
export type FitForceCalibration = ForceVarianceCalibration & {
  /** Coverage of the validation force components, and the factor their errors alone would ask for (1: calibrated). */
  validation: { components: number; within1Sigma: number; within2Sigma: number; relativeScale: number } | null;
};

/** Fits, checks against the baselines on the validation frames, calibrates and writes the model; the summary of what was done. */
export async function fit(file: string, o: FitOptions): Promise<FitSummary> {
  const t0 = process.hrtime.bigint();
  checkWritableTarget(o.out, '--out');
  checkTermOptions(o, o.model);
  const notes0: string[] = [];
  const hypers = readHypers(o.hypers);
  const configTypes = o.configTypeSigma === undefined ? undefined : parseConfigTypeSigma(o.configTypeSigma);
  const stages = new Stages('acdc fit', o.progress);
  try {
    stages.start(`reading ${file}`);
    const { frames, name } = await readFrames(file);
    const targets = trainingTargets(name, frames, { energy: o.energy, forces: o.forces, stress: o.stress });
    const species = [...new Set(frames.flatMap((s) => [...s.types]))].sort((a, b) => a - b);
    const split = validationSplit(frames, o.validation, o.seed);
    const train = split.training.map((k) => frames[k]);
    const valid = split.validation.map((k) => frames[k]);
    // read from every frame, so that errors name the frame's index in the file
    const allSigmas = frameSigmas(name, frames, { configTypes, virialPerAtom: o.sigmaVirial, targets });
    const ownSigmas = allSigmas && split.training.map((k) => allSigmas[k]);
    const common: CommonFitOptions = {
      hypers,
      ...(o.features ? { features: o.features } : {}),
      targets: { energy: targets.energy, ...(targets.forces ? { forces: targets.forces } : {}), ...(targets.stress ? { stress: targets.stress } : {}) },
      sigmas: {
        energy: o.sigmaEnergy,
        ...(targets.forces ? { forces: o.sigmaForces } : {}),
        ...(targets.stress ? { stress: o.sigmaStress } : {}),
      },
      ...(ownSigmas ? { frameSigmas: ownSigmas } : {}),
      e0: o.e0,
    };
    const api = modelsApi();
    // --sparse per centre species, at most the species' training environments
    // (a minority species keeps all of them, as the report's `sparse` says)
    const environments = new Map<number, number>();
    for (const s of train) for (const t of s.types) environments.set(t, (environments.get(t) ?? 0) + 1);
    const sparseCount: Record<number, number> = {};
    for (const [z, n] of [...environments].sort((a, b) => a[0] - b[0])) {
      sparseCount[z] = Math.min(o.sparse, n);
      if (n < o.sparse && o.model !== 'linear') notes0.push(`species ${z} has ${n} training environments, fewer than --sparse ${o.sparse}: all of them are its sparse set`);
    }
    const gprOptions = { ...common, sparse: { count: sparseCount, method: o.sparseMethod }, kernel: { zeta: o.zeta, delta: o.delta }, ...(o.sparseJitter !== undefined ? { sparseJitter: o.sparseJitter } : { jitter: o.jitter }) };
    const fitKind = async (kind: CandidateKind): Promise<CliModel> => {
      try {
        if (kind === 'gpr') return await api.SparseGPR.fit(train, withTerms(o, gprOptions));
        if (kind === 'gpr+2b') return await api.SparseGPR.fit(train, withTerms({ ...o, terms: '2b,soap' }, gprOptions));
        return await api.LinearModel.fit(train, { ...common, regularizer: o.regularizer });
      } catch (e) {
        throw rethrown(e, `${name}: ${(e as Error).message}`);
      }
    };
    const evaluate = async (model: CliModel, set: typeof frames): Promise<Errors> => {
      const stress = targets.stress !== null && set.every(isFullyPeriodic);
      return errors(name, set, await model.predict(set, { forces: targets.forces !== null, stress }), targets);
    };
    const lossSigmas = { energy: o.sigmaEnergy, forces: o.sigmaForces, stress: o.sigmaStress };
    // the requested kind, and the linear model as a check when there is a
    // split; auto (the default) fits every candidate and keeps the one with
    // the lowest validation loss (without a split there is nothing to choose
    // by: the GPR is kept)
    const twoBodyGiven = (o.terms ?? 'soap').split(',').includes('2b');
    const kinds: CandidateKind[] =
      o.model === 'auto'
        ? valid.length > 0
          ? ['gpr', ...(twoBodyGiven ? [] : (['gpr+2b'] as const)), 'linear']
          : ['gpr']
        : valid.length > 0 && o.model === 'gpr'
          ? ['gpr', 'linear']
          : [o.model];
    if (o.model === 'auto' && valid.length === 0) notes0.push('--model auto without a validation split: the sparse GPR was kept, nothing was compared');
    const models: Partial<Record<CandidateKind, CliModel>> = {};
    const candidates: Partial<Record<CandidateKind, CandidateSummary>> = {};
    const notes: string[] = notes0;
    let firstError: unknown;
    for (const kind of kinds) {
      if (kind === 'linear' && models.gpr) {
        // the linear model has species × features parameters and a QR of that square: skip it when it would dwarf the GPR
        const params = models.gpr.featureCount * species.length;
        if (params > LINEAR_CHECK_MAX_PARAMETERS) {
          notes.push(`the linear model ${o.model === 'auto' ? 'candidate' : 'check'} was skipped: it would have ${params} parameters (more than ${LINEAR_CHECK_MAX_PARAMETERS}); fit it with --model linear and smaller --hypers`);
          continue;
        }
      }
      if (kind === 'gpr+2b' && typeof (hypers as { cutoff?: { radius?: unknown } }).cutoff?.radius !== 'number') {
        notes.push('the distance_2b + SOAP candidate was skipped: the SOAP hyper-parameters have no cutoff.radius to give the 2-body term its cutoff');
        continue;
      }
      const what = { gpr: `sparse GPR${twoBodyGiven ? ' (distance_2b + SOAP)' : ''} (descriptors, sparse selection, kernels, solve)`, 'gpr+2b': 'sparse GPR with distance_2b + SOAP (descriptors, sparse selection, kernels, solve)', linear: 'linear model (descriptors, solve)' }[kind];
      stages.start(`fitting the ${what}`);
      try {
        const model = await fitKind(kind);
        stages.start(`${kind}: training${valid.length ? ' and validation' : ''} errors`);
        const validation = valid.length ? await evaluate(model, valid) : null;
        candidates[kind] = { training: await evaluate(model, train), validation, loss: validation ? validationLoss(validation, lossSigmas) : null };
        models[kind] = model;
      } catch (e) {
        // a model that was asked for fails the command, and so does bad
        // input; a candidate of auto (or the linear check) whose solve fails
        // numerically is reported and the others go on
        if (o.model === kind || (e as { code?: string }).code !== 'ACDC_NUMERICAL') throw e;
        firstError ??= e;
        notes.push(`the ${kind === 'gpr+2b' ? 'distance_2b + SOAP' : kind} candidate failed and was left out: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    const fitted = kinds.filter((k) => candidates[k] !== undefined);
    if (fitted.length === 0) throw firstError;
    let chosen: CandidateKind = o.model === 'auto' ? fitted[0] : o.model;
    if (o.model === 'auto') {
      // ties keep the earlier (simpler GPR first) candidate
      for (const kind of fitted) if (candidates[kind]!.loss! < candidates[chosen]!.loss!) chosen = kind;
    }
    const model = models[chosen]!;
    const warnings: string[] = [];
    let countBaseline: ReturnType<typeof countBaselineErrors> | null = null;
    let calibration: FitCalibration | null = null;
    if (valid.length > 0) {
      stages.start('count baseline');
      countBaseline = countBaselineErrors(name, train, valid, targets.energy);
      const mine = candidates[chosen]!;
      const other = chosen === 'gpr' ? candidates.linear : undefined;
      const meV = (x: number) => `${(1000 * x).toPrecision(3)} meV/atom`;
      if (other && other.loss! < mine.loss!) {
        warnings.push(
          `the sparse GPR loses to the linear model on the same features on validation (energy RMSE ${meV(mine.validation!.energy!.rmse)} vs ${meV(other.validation!.energy!.rmse)}` +
            `${mine.validation!.forces ? `, forces ${mine.validation!.forces.rmse.toPrecision(3)} vs ${other.validation!.forces!.rmse.toPrecision(3)} eV/Å` : ''}): try --model linear or --model auto`,
        );
      }
      const counts = countBaseline.errors.energy;
      if (counts && mine.validation!.energy!.rmse > counts.rmse) {
        warnings.push(
          `the ${chosen === 'linear' ? 'linear model' : 'sparse GPR'} loses to the per-species-count baseline on validation energies (RMSE ${meV(mine.validation!.energy!.rmse)} vs ${meV(counts.rmse)}): the model has not learnt the energy`,
        );
      }
    }
    // the variance scale from the leave-one-out errors of every training
    // frame (closed form, no refit; docs/MODELS.md, "Variance calibration"),
    // then checked on the validation frames, which took no part in it
    if (targets.energy) {
      stages.start('variance calibration (leave-out)');
      try {
        const sigmaEnergy = ownSigmas?.map((f) => f?.energy);
        const fitted = await model.calibrateVarianceLeaveOneOut(train, { energy: targets.energy, groups: o.calibrateBy ?? 'auto', ...(sigmaEnergy ? { sigmaEnergy } : {}) });
        // leaving compositions out: compared with leaving frames out, whose
        // variance the model's own follows, to tell a variance that misses
        // the composition errors (docs/MODELS.md, "Variance calibration")
        let spread: number | null = null;
        if (fitted.groups === 'composition') {
          const byFrame = await model.leaveOneOut(train, { energy: targets.energy, groups: 'frame', ...(sigmaEnergy ? { sigmaEnergy } : {}) });
          const c = compositionSpread({ scale: fitted.scale, noise: fitted.noise ?? 0 }, byFrame);
          spread = c.spread;
          const w = compositionSpreadWarning(c);
          if (w) warnings.push(w);
        }
        let check: FitCalibration['validation'] = null;
        if (valid.length > 0) {
          const c = await model.calibrateVariance(valid, { energy: targets.energy, apply: false });
          check = { structures: c.structures, within1Sigma: c.within1SigmaBefore, within2Sigma: c.within2SigmaBefore, relativeScale: c.factor! };
          const w = calibrationWarning(check);
          if (w) warnings.push(w);
        }
        calibration = { ...fitted, validation: check, compositionSpread: spread };
      } catch (e) {
        notes.push(`the variance was not calibrated: ${(e as Error).message}`);
      }
    }
    // the force variance (linear model and sparse GPR, with or without a
    // distance_2b term): each training frame's force rows left out at once
    // (closed form), checked on the validation frames
    let forceCalibration: FitForceCalibration | null = null;
    const forceCalibrationOff = o.forceCalibration === 'off';
    const forceVariance = chosen === 'linear' || chosen === 'gpr' || chosen === 'gpr+2b';
    if (targets.forces && forceVariance && forceCalibrationOff) notes.push('the force variance was not calibrated (--force-calibration off): the model file holds none, and its force variance is the uncalibrated one');
    if (targets.forces && forceVariance && !forceCalibrationOff) {
      stages.start('force variance calibration (leave-out)');
      try {
        const sigmaForces = ownSigmas?.map((f) => f?.forces);
        const fitted = await model.calibrateForceVarianceLeaveOneOut(train, { forces: targets.forces, ...(sigmaForces ? { sigmaForces } : {}) });
        let check: FitForceCalibration['validation'] = null;
        if (valid.length > 0) {
          const c = await model.calibrateForceVariance(valid, { forces: targets.forces, apply: false });
          check = { components: c.components, within1Sigma: c.within1SigmaBefore, within2Sigma: c.within2SigmaBefore, relativeScale: c.factor! };
        }
        forceCalibration = { ...fitted, validation: check };
      } catch (e) {
        notes.push(`the force variance was not calibrated: ${(e as Error).message}`);
      }
    }
    // a fit is an error, not a model, when its own training errors overflow
    for (const [q, e] of Object.entries(candidates[chosen]!.training)) {
      if (e && !(Number.isFinite(e.mae) && Number.isFinite(e.rmse))) throw coded('ACDC_NUMERICAL', `${name}: the training ${q} errors are not finite (MAE ${e.mae}, RMSE ${e.rmse}): check the targets' units; no model written`);
    }
    stages.start(`writing ${o.out}`);
    await model.save(o.out); // written to a temporary name, then renamed
    stages.end();
    let sparse: Record<string, number> | null = null;
    if (chosen !== 'linear') {
      sparse = {};
      // what the fit was asked for (a species only in validation frames: none)
      for (const z of species) sparse[z] = sparseCount[z] ?? 0;
    }
    return {
      file: name,
      out: o.out,
      model: chosen === 'linear' ? 'linear' : 'gpr',
      chosen,
      terms: chosen === 'linear' ? null : chosen === 'gpr+2b' || twoBodyGiven ? '2b,soap' : 'soap',
      requested: o.model,
      frames: frames.length,
      split: { fraction: o.validation, seed: o.seed, training: train.length, validation: split.validation, moved: split.moved },
      atoms: frames.reduce((n, s) => n + s.size, 0),
      species,
      targets,
      sparse,
      hypers,
      features: o.features ?? 'power_spectrum',
      training: candidates[chosen]!.training,
      validation: candidates[chosen]!.validation,
      candidates,
      countBaseline: countBaseline && { validation: countBaseline.errors, perAtom: countBaseline.perAtom },
      calibration,
      forceCalibration,
      frameSigmas: ownSigmas ? ownSigmas.filter((f) => f !== undefined).length : 0,
      warnings,
      notes,
      seconds: Number(process.hrtime.bigint() - t0) / 1e9,
    };
  } catch (e) {
    stages.abort();
    throw e;
  }
}
