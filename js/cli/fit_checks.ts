// What `acdc fit` adds around a fit so that a bad default cannot pass
// silently: the seeded validation split (whole frames), GAP's per-frame and
// per-config_type sigmas, per-species e0, and the comparison of the chosen
// model with a linear model and the per-species-count baseline. The
// numerics (the split's permutation, the count baseline's least squares,
// the variance calibration) run in the Rust core.
import { coded } from '../errors';
import native from '../native';
import type { E0Option, FrameSigma } from '../potentials';
import type { System } from '../system';
import { energyOf, type Errors, type TargetNames } from './targets';

/** `--e0`: average, fit, or `Z:eV,Z:eV…` (every training species). */
export function parseE0(value: string): E0Option {
  if (value === 'average' || value === 'fit') return value;
  const out: Record<number, number> = {};
  for (const part of value.split(',')) {
    const m = /^\s*(\d+)\s*:\s*(\S+)\s*$/.exec(part);
    const v = m ? Number(m[2]) : NaN;
    if (!m || m[2].trim() === '' || !Number.isFinite(v)) {
      throw coded('ACDC_INVALID_PARAMETER', `expected average, fit or Z:eV pairs such as 29:-3.5,79:-3.2, got "${value}"`);
    }
    if (Number(m[1]) in out) throw coded('ACDC_INVALID_PARAMETER', `species ${m[1]} is given twice in "${value}"`);
    out[Number(m[1])] = v;
  }
  return out;
}

/** One config_type's sigmas as GAP writes them: energy (eV/atom), force (eV/Å), virial (eV/atom), hessian (ignored). */
export interface ConfigTypeSigma {
  energy: number;
  forces: number;
  virial: number;
}

/**
 * `--config-type-sigma`: GAP's `type:energy:force:virial:hessian:type:…`
 * (groups of five) or the same groups separated by commas (hessian optional).
 */
export function parseConfigTypeSigma(value: string): Map<string, ConfigTypeSigma> {
  const groups: string[][] = [];
  const bad = (why: string) => coded('ACDC_INVALID_PARAMETER', `${why} (expected type:energy:force:virial[:hessian] groups, e.g. bulk:0.001:0.05:0.05:0.0,liquid:0.003:0.1:0.1:0.0), got "${value}"`);
  if (value.includes(',')) {
    for (const g of value.split(',')) groups.push(g.split(':').map((x) => x.trim()));
  } else {
    const parts = value.split(':').map((x) => x.trim());
    if (parts.length === 4) groups.push(parts);
    else {
      if (parts.length % 5 !== 0) throw bad(`${parts.length} fields is not a multiple of 5`);
      for (let k = 0; k < parts.length; k += 5) groups.push(parts.slice(k, k + 5));
    }
  }
  const out = new Map<string, ConfigTypeSigma>();
  for (const g of groups) {
    if (g.length !== 4 && g.length !== 5) throw bad(`group "${g.join(':')}" has ${g.length} fields`);
    const [name, ...rest] = g;
    if (name === '' || /^[-+0-9.]/.test(name)) throw bad(`"${name}" is not a config_type name`);
    const [energy, forces, virial] = rest.map(Number);
    for (const [what, v, text] of [['energy', energy, rest[0]], ['force', forces, rest[1]], ['virial', virial, rest[2]]] as const) {
      if (text === '' || !Number.isFinite(v) || v < 0) throw bad(`${name}: ${what} sigma "${text}" is not a number ≥ 0`);
    }
    if (out.has(name)) throw bad(`config_type "${name}" is given twice`);
    out.set(name, { energy, forces, virial });
  }
  return out;
}

/** Which sigmas a frame gets besides the defaults. */
export interface SigmaSources {
  /** `--config-type-sigma`, by the frame's info `config_type`. */
  configTypes?: Map<string, ConfigTypeSigma>;
  /** `--sigma-virial`: per-atom virial sigma, eV/atom, instead of --sigma-stress. */
  virialPerAtom?: number;
  /** Which targets are fitted. */
  targets: TargetNames;
}

function infoSigma(file: string, s: System, k: number, key: string): number | undefined {
  const v = s.info[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw coded('ACDC_INVALID_SYSTEM', `${file}: frame ${k}: ${key} is ${JSON.stringify(v)} (expected a positive number)`);
  return v;
}

/**
 * The per-frame sigmas of GAP's rules, most specific first: the frame's
 * own info keys `energy_sigma` (eV), `force_sigma` (eV/Å), `virial_sigma`
 * (eV), which are absolute as in gap_fit; then its `config_type`'s group,
 * whose energy and virial sigmas are per atom (×√N, gap_fit's
 * sigma_per_atom); then `--sigma-virial` (per atom). Undefined when no
 * frame has any.
 */
export function frameSigmas(file: string, frames: System[], o: SigmaSources): Array<FrameSigma | undefined> | undefined {
  let any = false;
  const used = new Set<string>();
  const out = frames.map((s, k) => {
    const f: FrameSigma = {};
    const root = Math.sqrt(s.size);
    const type = s.info.config_type;
    const group = o.configTypes && typeof type === 'string' ? o.configTypes.get(type) : undefined;
    if (group) {
      used.add(type as string);
      f.energy = group.energy * root;
      if (o.targets.forces) f.forces = group.forces;
      if (o.targets.stress && s.pbc.every(Boolean)) f.virial = group.virial * root;
    } else if (o.virialPerAtom !== undefined && o.targets.stress && s.pbc.every(Boolean)) {
      f.virial = o.virialPerAtom * root;
    }
    const e = infoSigma(file, s, k, 'energy_sigma');
    const fs = infoSigma(file, s, k, 'force_sigma');
    const v = infoSigma(file, s, k, 'virial_sigma');
    if (e !== undefined) f.energy = e;
    if (fs !== undefined && o.targets.forces) f.forces = fs;
    if (v !== undefined && o.targets.stress && s.pbc.every(Boolean)) f.virial = v;
    for (const [what, x] of [['energy', f.energy], ['force', f.forces], ['virial', f.virial]] as const) {
      if (x !== undefined && !(x > 0)) throw coded('ACDC_INVALID_SYSTEM', `${file}: frame ${k} (config_type ${String(type)}): the ${what} sigma is 0 (a fitted target needs a positive sigma)`);
    }
    if (Object.keys(f).length === 0) return undefined;
    any = true;
    return f;
  });
  if (o.configTypes && used.size === 0) {
    throw coded('ACDC_INVALID_SYSTEM', `${file}: no frame has a config_type listed in --config-type-sigma (${[...o.configTypes.keys()].join(', ')})`);
  }
  return any ? out : undefined;
}

/** Indices of the training and validation frames. */
export interface Split {
  training: number[];
  validation: number[];
  /** Validation frames moved back to training because they hold a species no training frame has. */
  moved: number;
}

/**
 * Holds out round(fraction·n) whole frames, the first of numpy's
 * `RandomState(seed).permutation(n)`, so the same split is drawn in Python;
 * a validation frame holding a species that no training frame has goes back
 * to training (a model cannot predict an unknown species). Indices sorted.
 */
export function validationSplit(frames: System[], fraction: number, seed: number): Split {
  const n = frames.length;
  const count = Math.round(fraction * n);
  if (fraction === 0 || count === 0 || count >= n) return { training: frames.map((_, k) => k), validation: [], moved: 0 };
  const order = native.seededPermutation(n, seed);
  const validation = order.slice(0, count);
  const training = order.slice(count);
  const known = new Set(training.flatMap((k) => [...frames[k].types]));
  const keep: number[] = [];
  let moved = 0;
  for (const k of validation) {
    if ([...frames[k].types].every((t) => known.has(t))) keep.push(k);
    else {
      training.push(k);
      for (const t of frames[k].types) known.add(t);
      moved += 1;
    }
  }
  return { training: training.sort((a, b) => a - b), validation: keep.sort((a, b) => a - b), moved };
}

/** The per-species-count baseline's energy errors on `evaluate` (eV/atom), fitted on `train`. */
export function countBaselineErrors(file: string, train: System[], evaluate: System[], energyKey: string): { errors: Errors; perAtom: Record<string, number> } {
  const energy = Float64Array.from(train.map((s, k) => energyOf(file, s, k, energyKey)!));
  const b = native.speciesCountBaseline(
    train.map((s) => s.data()),
    energy,
    evaluate.map((s) => s.data()),
  );
  const reference = Float64Array.from(evaluate.map((s, k) => energyOf(file, s, k, energyKey)!));
  const e = native.errorStatistics(b.predictions, reference, Float64Array.from(evaluate.map((s) => s.size)));
  return {
    errors: { energy: e ? { mae: e.mae, rmse: e.rmse, count: e.count } : null, forces: null, stress: null },
    perAtom: Object.fromEntries(b.species.map((z, c) => [z, b.perAtom[c]])),
  };
}

/**
 * The validation loss that `--model auto` minimises and the warnings use:
 * Σ over the fitted targets of (RMSE / σ)², each target's RMSE in units of
 * its default sigma (energy per atom, force component, stress component),
 * the weighting of the fit itself.
 */
export function validationLoss(e: Errors, sigmas: { energy: number; forces: number; stress: number }): number {
  return native.validationLoss(e.energy?.rmse ?? null, e.forces?.rmse ?? null, e.stress?.rmse ?? null, sigmas.energy, sigmas.forces, sigmas.stress);
}

/** Coverage of a calibrated variance on frames that took no part in the calibration. */
export interface CoverageCheck {
  structures: number;
  within1Sigma: number;
  within2Sigma: number;
}

/**
 * One warning line when the calibrated variance covers the validation
 * errors less than chance allows: the binomial probability of so few
 * errors within 1σ (p = 0.6827) or within 2σ (p = 0.9545) below 0.025
 * each (at most 5 % false alarms for a calibrated variance, two tests);
 * null otherwise. A too-wide variance is not warned about.
 */
export function calibrationWarning(check: CoverageCheck): string | null {
  const n = check.structures;
  if (n === 0) return null;
  const k1 = Math.round(check.within1Sigma * n);
  const k2 = Math.round(check.within2Sigma * n);
  const p = Math.min(native.binomialLowerTail(k1, n, 0.6827), native.binomialLowerTail(k2, n, 0.9545));
  if (!(p < 0.025)) return null;
  return (
    `the calibrated variance is too small for the validation errors (${k1} of ${n} within 1σ, ${k2} of ${n} within 2σ; a calibrated variance gives so few with probability ${p.toPrecision(2)}): ` +
    'the errors away from the training frames are larger than their leave-one-out errors; calibrate on frames like those the model will meet (model.calibrateVariance)'
  );
}

/**
 * How much wider the variance calibrated on left-out compositions may be
 * than the one calibrated on left-out frames before `acdc fit` warns (an
 * order of magnitude in variance; the Rust core's
 * `models::calibration::COMPOSITION_SPREAD_WARNING`). Measured on held-out
 * EMT Pt–Ni (docs/MODELS.md, "Variance calibration"): 1.83 for the linear
 * model, whose composition-calibrated variance covers new compositions
 * (0.74 and 0.97 within 1σ and 2σ), and 144 for the sparse GPR, whose
 * variance there is 32× too wide.
 */
export const COMPOSITION_SPREAD_WARNING: number = native.compositionSpreadWarningThreshold();

/** A leave-out calibration: s·(v + noise·N). */
export interface ScaleAndNoise {
  scale: number;
  /** eV²/atom */
  noise: number;
}

/** The composition spread and what the warning prints, as the Rust core computes them. */
export interface CompositionSpread {
  /** s_c·(v̄ + c_c·N̄) / (s_f·(v̄ + c_f·N̄)): 1 when both calibrations agree. */
  spread: number;
  /** √spread: how many times wider σ is. */
  sigmaRatio: number;
  /** spread > COMPOSITION_SPREAD_WARNING. */
  warn: boolean;
}

/**
 * The ratio of the composition-calibrated variance `byComposition` to the
 * one the per-frame leave-one-out errors (eV), variances (eV²) and atom
 * counts give (their scale and noise fitted by maximum likelihood), at a
 * typical training frame: the mean leave-one-out variance and atom count.
 * Computed in the Rust core (`models::calibration::composition_spread`).
 */
export function compositionSpread(byComposition: ScaleAndNoise, byFrame: { errors: Float64Array; variances: Float64Array; atoms: number[] }): CompositionSpread {
  const c = native.compositionSpread(byComposition.scale, byComposition.noise, byFrame.errors, byFrame.variances, byFrame.atoms);
  return { spread: c.spread, sigmaRatio: c.sigmaRatio, warn: c.warn };
}

/**
 * One warning line when leaving compositions out widens the calibrated
 * variance more than COMPOSITION_SPREAD_WARNING times over leaving frames
 * out: the model's variance does not follow its errors away from the
 * training compositions, so the calibrated σ is far too wide at them and
 * rests, at new compositions, on errors of a harder task (predicting a
 * whole composition from the others); null otherwise.
 */
export function compositionSpreadWarning(s: CompositionSpread): string | null {
  if (!s.warn) return null;
  return (
    `the variance calibrated on left-out compositions is ${s.spread.toPrecision(3)}× the one calibrated on left-out frames: ` +
    "the model's variance does not follow its errors away from the training compositions, so its σ is about " +
    `${s.sigmaRatio.toPrecision(2)}× too wide at them and not calibrated at new ones; check it on frames of the compositions the model will meet (model.calibrateVariance)`
  );
}
