// Interatomic potentials on the SOAP power spectrum: SparseGPR (GAP's
// sparse Gaussian process) and LinearModel (ridge regression, a 3-body
// potential), fitted to energies, forces and stress read from System.info /
// System.arrays, with forces and stress from analytic gradients. The model,
// the fit and the file format are described in docs/MODELS.md.
import { invalidParameter, outOfRange } from './errors';

import { readModelFile, readModelFileSync, writeModelFile, writeModelFileSync } from './model_files';
import type { SoapHypers } from './calculators';
import { FIT_DEFAULTS } from './fit_defaults';
import native from './native';
import type { PotentialFitData, PotentialPredictionData } from './native';
import { abortable, checkSignal, runQueued, throwIfAborted, type AbortSignalLike } from './schedule';
import { asSystem, describe, System, SystemInit } from './system';

type NativePotential = InstanceType<typeof native.NativePotential>;
type Systems = System | SystemInit | Array<System | SystemInit>;

/** Names of the targets: `energy` in `System.info` (eV), `forces` in `System.arrays` (eV/Å, 3N), `stress` in `System.info` (eV/Å³, 9 row-major or Voigt 6 `xx yy zz yz xz xy`, ASE sign). */
export interface PotentialTargets {
  /** Key of the total energy in `System.info`, eV. */
  energy: string;
  /** Key of the forces in `System.arrays`, eV/Å, 3 per atom. */
  forces?: string;
  /** Key of the stress in `System.info`, eV/Å³: 9 numbers (3×3 row-major or nested) or Voigt 6 (xx yy zz yz xz xy); ASE sign, (1/V) ∂E/∂ε. */
  stress?: string;
}

/** Noise levels of the targets (the regularisation of the fit). */
export interface PotentialSigmas {
  /** eV per atom: a structure of N atoms gets σ·√N (GAP's sigma per atom). */
  energy: number;
  /** eV/Å per component. */
  forces?: number;
  /** eV/Å³ per component. */
  stress?: number;
}

/**
 * The noise of one structure's rows, overriding `sigmas` for it (GAP's
 * per-frame `energy_sigma`, `force_sigma`, `virial_sigma`). Each value is
 * absolute: `energy` is the noise of the total energy (eV, not per atom).
 */
export interface FrameSigma {
  /** Noise of the total energy, eV. */
  energy?: number;
  /** Noise of each force component, eV/Å. */
  forces?: number;
  /** Noise of each stress component, eV/Å³. */
  stress?: number;
  /** Noise of each virial component (−V·stress), eV (GAP's `virial_sigma`): the stress rows get virial/V. Not with `stress`. */
  virial?: number;
}

/** Reference energy per atom: 'average' (mean E/N, every species), 'fit' (least squares on the species counts) or `{Z: eV}`. */
export type E0Option = 'average' | 'fit' | Record<number, number>;

/**
 * A 2-body term in the form of GAP's `distance_2b`: every ordered pair of atoms (i, j) within `cutoff` is an
 * environment described by its distance r, with the covariance f_c(r) f_c(r') δ² exp(−(r − r')²/(2θ²)) between
 * pairs of the same species pair (f_c: cosine over the last `transition` Å). See docs/MODELS.md, "Sums of kernels".
 */
export interface Distance2bTerm {
  type: 'distance_2b';
  /** Cutoff radius, Å (GAP's `cutoff`). */
  cutoff: number;
  /** Width of the cosine transition below the cutoff, Å (default 0.5, GAP's `cutoff_transition_width`). */
  transition?: number;
  /** Length scale θ of the squared-exponential kernel, Å (default 1, GAP's `theta_uniform`). */
  theta?: number;
  /** Kernel scale δ, eV (default 1, GAP's `delta`). */
  delta?: number;
  /** Sparse distances per species pair, spread uniformly over the training distances (default 20, GAP's `n_sparse` with `sparse_method=uniform`). */
  sparse?: { count?: number };
  /**
   * Added to the diagonal of this term's K_MM, relative to its δ² (default: the fit's `jitter`). GAP's
   * `sparse_jitter` is absolute and shared by all descriptors: to match it, give each term sparse_jitter/δ².
   */
  jitter?: number;
}

/** The SOAP term of a sum of kernels: the same settings as a single-kernel SparseGPR. */
export interface SoapTerm {
  type: 'soap';
  /** SoapPowerSpectrum hyper-parameters (featomic schema). */
  hypers: SoapHypers;
  /** Sparse environments per centre species, as `SparseGPRFitOptions.sparse`. */
  sparse: SparseEnvironments;
  /** Kernel k = δ² (x̂·x̂')^ζ (defaults ζ = 4, δ = 1 eV). */
  kernel?: { zeta?: number; delta?: number };
}

/**
 * How the sparse environments of a SparseGPR are chosen: `count` per centre species (a number, or `{Z: count}`) by
 * `method` (`'leverage'`, the default, as GAP's `cur_points`; `'leverage-mix'`, GAP's leverage probabilities mixed half
 * and half with uniform ones; `'pivoted-cholesky'`, deterministic greedy pivoted Cholesky of the model's kernel, each pick
 * the environment of largest residual variance k(x,x) − k_xM K_MM⁻¹ k_Mx; `'greedy-trace'`, the same Cholesky picking
 * the environment that lowers the total residual variance most (O(N²) memory per species); `'cur'`, `'fps'`, `'random'`; `seed` default 0),
 * or
 * given: `{method: 'indices', indices: {Z: [i, ...]}}` with one list per centre species of the training set, each
 * index counting that species' atoms of the training systems in order from 0 (system by system, atom by atom), as
 * gap_fit's `print_sparse_index` file less one. The lists may not repeat an index.
 */
export type SparseEnvironments =
  | { count: number | Record<number, number>; method?: 'cur' | 'leverage' | 'leverage-mix' | 'pivoted-cholesky' | 'greedy-trace' | 'fps' | 'random'; seed?: number }
  | { method: 'indices'; indices: Record<number, number[]> };

/** One term of a sum of kernels. */
export type KernelTerm = Distance2bTerm | SoapTerm;

/** Options of `SparseGPR.fit`. */
/**
 * The per-atom features a potential is learnt on: `'power_spectrum'` (ν = 2, body order 3, the default)
 * or `'bispectrum'` (ν = 3, body order 4: `SoapBispectrum` of the same hypers, with the copies that the
 * symmetry of the first two densities makes equal dropped). The bispectrum grows as (species × radial)³: a model
 * accepts at most 30 000 features per atom.
 */
export type PotentialFeatures = 'power_spectrum' | 'bispectrum';

export interface SparseGPRFitOptions {
  /** SoapPowerSpectrum hyper-parameters (featomic schema). Required unless `terms` is given. */
  hypers?: SoapHypers;
  /** Features computed from `hypers` (default `'power_spectrum'`); `'bispectrum'` cannot be combined with a `distance_2b` term. */
  features?: PotentialFeatures;
  /** Where the targets are (default `{ energy: 'energy' }`). */
  targets?: PotentialTargets;
  /**
   * Sparse environments: `count` per centre species (a number, or `{Z: count}` per species, e.g. for a minority species),
   * chosen by leverage-score sampling as GAP's `cur_points` (`'leverage'`, the default, with `seed`), the same mixed with
   * uniform sampling (`'leverage-mix'`, with `seed`), greedy pivoted Cholesky of the kernel (`'pivoted-cholesky'`,
   * deterministic: the largest residual prior variance first), greedy trace reduction (`'greedy-trace'`, the pick that
   * lowers the total residual variance most), greedy CUR with one singular
   * vector (`'cur'`), FPS or at random (`seed`, default 0); or given (`{method: 'indices', indices}`); see docs/MODELS.md.
   */
  sparse?: SparseEnvironments;
  /** Kernel k = δ² (x̂·x̂')^ζ: ζ an integer ≥ 1 (default 4), δ in eV (default 0.2; the defaults are those of `acdc fit`). */
  kernel?: { zeta?: number; delta?: number };
  /**
   * A sum of kernels (GAP's `gap={distance_2b ... : soap ...}`): one `soap` term (which then holds `hypers`,
   * `sparse` and `kernel`, not given at the top level) and at most one `distance_2b` term, each with its own δ
   * and sparse set, fitted together in one sparse GPR. Without `terms` the model is the SOAP kernel alone.
   */
  terms?: KernelTerm[];
  /** Noise levels. */
  sigmas: PotentialSigmas;
  /** Per-structure noise levels overriding `sigmas` (one entry per system; null or undefined: `sigmas`). */
  frameSigmas?: Array<FrameSigma | null | undefined>;
  /** Reference energies (default 'average'). */
  e0?: E0Option;
  /** Added to the diagonal of K_MM, relative to δ² (default 1e-8). */
  jitter?: number;
  /**
   * GAP's `sparse_jitter`: added to the diagonal of every term's K_MM in eV², absolute; each term gets
   * it over its own δ² (instead of `jitter` and a distance_2b term's `jitter`).
   */
  sparseJitter?: number;
  /** Structures are streamed in batches of about this many atoms (default 512). */
  batchAtoms?: number;
  /** Cancels an asynchronous fit. */
  signal?: AbortSignalLike;
}

/** Options of `LinearModel.fit`. */
export interface LinearModelFitOptions {
  /** SoapPowerSpectrum hyper-parameters (featomic schema). */
  hypers: SoapHypers;
  /** Features computed from `hypers` (default `'power_spectrum'`; `'bispectrum'`: ν = 3). */
  features?: PotentialFeatures;
  /** Where the targets are (default `{ energy: 'energy' }`). */
  targets?: PotentialTargets;
  /** Ridge parameter λ ≥ 0 on ‖w‖² (the residuals are divided by the sigmas). */
  regularizer: number;
  /** Noise levels (default 1 for each: plain least squares, energies weighted by 1/√N). */
  sigmas?: PotentialSigmas;
  /** Per-structure noise levels overriding `sigmas` (one entry per system; null or undefined: `sigmas`). */
  frameSigmas?: Array<FrameSigma | null | undefined>;
  /** Reference energies (default 'average'). */
  e0?: E0Option;
  /** Structures are streamed in batches of about this many atoms (default 512). */
  batchAtoms?: number;
  /** Cancels an asynchronous fit. */
  signal?: AbortSignalLike;
}

/** What `predict` computes besides energies. */
export interface PredictOptions {
  /** Forces, eV/Å. */
  forces?: boolean;
  /** Stress, eV/Å³ (periodic systems only). */
  stress?: boolean;
  /** Predictive variance of the energy, eV², times the model's `varianceScale` (1 unless calibrated). */
  variance?: boolean;
  /**
   * Memory budget of the prediction: bytes, or a size such as '4G' or '50%'
   * (default: ACDC_MAX_MEMORY, else half of the machine's memory). Each batch
   * is checked before its features are computed; above it, an error.
   */
  maxMemory?: number | string;
  /** Cancels an asynchronous prediction. */
  signal?: AbortSignalLike;
}

/** Predictions, one entry per system. */
export interface PotentialPrediction {
  /** Energies, eV. */
  energy: Float64Array;
  /** Forces, eV/Å, 3N per system (when asked). */
  forces?: Float64Array[];
  /** Stress, eV/Å³, 9 per system, row-major, ASE sign (1/V) ∂E/∂ε (when asked). */
  stress?: Float64Array[];
  /** Energy variance, eV² (when asked). */
  variance?: Float64Array;
}

function checkKeys(what: string, o: object, allowed: readonly string[]): void {
  for (const key of Object.keys(o)) {
    if (!allowed.includes(key)) throw invalidParameter(`unknown ${what} option "${key}" (expected ${allowed.join(', ')})`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function finiteNumber(name: string, v: unknown, { positive = false, integer = false, min }: { positive?: boolean; integer?: boolean; min?: number } = {}): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || (positive && v <= 0) || (integer && !Number.isInteger(v)) || (min !== undefined && v < min)) {
    const want = integer ? (positive ? 'a positive integer' : `an integer ≥ ${min ?? 0}`) : positive ? 'a positive number' : min !== undefined ? `a number ≥ ${min}` : 'a finite number';
    throw outOfRange(`${name} = ${describe(v)} (expected ${want})`);
  }
  return v;
}

function toList(systems: Systems): System[] {
  const list = Array.isArray(systems) ? systems : [systems];
  if (list.length === 0) throw outOfRange('systems is empty');
  return list.map((s, k) => asSystem(s, `systems[${k}]`));
}

function flatNumbers(v: unknown): number[] | undefined {
  if (typeof v === 'number') return [v];
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>);
  if (!Array.isArray(v)) return undefined;
  const out: number[] = [];
  for (const x of v) {
    const inner = flatNumbers(x);
    if (inner === undefined) return undefined;
    out.push(...inner);
  }
  return out;
}

/** 3×3 row-major stress from 9 numbers (flat or nested) or Voigt 6 (xx yy zz yz xz xy). */
function stressTensor(where: string, v: unknown): Float64Array {
  const flat = flatNumbers(v);
  if (flat === undefined || (flat.length !== 9 && flat.length !== 6)) {
    throw outOfRange(`${where} = ${describe(v)} (expected 9 numbers, 3×3 row-major, or Voigt 6: xx yy zz yz xz xy; eV/Å³)`);
  }
  flat.forEach((x, k) => {
    if (!Number.isFinite(x)) throw outOfRange(`${where}[${k}] = ${x} (expected a finite number, eV/Å³)`);
  });
  if (flat.length === 9) return Float64Array.from(flat);
  const [xx, yy, zz, yz, xz, xy] = flat;
  return Float64Array.from([xx, xy, xz, xy, yy, yz, xz, yz, zz]);
}

function checkTargets(t: unknown): PotentialTargets {
  if (t === undefined) return { energy: 'energy' };
  if (!isObject(t)) throw invalidParameter(`targets must be an object {energy, forces?, stress?}, got ${describe(t)}`);
  checkKeys('targets', t, ['energy', 'forces', 'stress']);
  for (const key of ['energy', 'forces', 'stress']) {
    if (t[key] !== undefined && (typeof t[key] !== 'string' || t[key] === '')) throw invalidParameter(`targets.${key} must be a non-empty string, got ${describe(t[key])}`);
  }
  if (t.energy === undefined) throw invalidParameter('targets.energy is required (the key of the energy in System.info, e.g. "energy")');
  return t as unknown as PotentialTargets;
}

/** Reads and checks the targets of every system. */
function readTargets(systems: System[], targets: PotentialTargets): Pick<PotentialFitData, 'energy' | 'forces' | 'stress'> {
  const energy = new Float64Array(systems.length);
  const forces: Float64Array[] | undefined = targets.forces === undefined ? undefined : [];
  const stress: Float64Array[] | undefined = targets.stress === undefined ? undefined : [];
  systems.forEach((s, k) => {
    const e = s.info[targets.energy];
    if (e === undefined) throw outOfRange(`systems[${k}].info.${targets.energy} is missing (targets.energy = '${targets.energy}')`);
    if (typeof e !== 'number' || !Number.isFinite(e)) throw outOfRange(`systems[${k}].info.${targets.energy} = ${describe(e)} (expected a finite energy in eV)`);
    energy[k] = e;
    if (forces !== undefined) {
      const f = s.arrays[targets.forces!];
      if (f === undefined) throw outOfRange(`systems[${k}].arrays.${targets.forces} is missing (targets.forces = '${targets.forces}')`);
      const flat = flatNumbers(f);
      if (flat === undefined || flat.length !== 3 * s.size) {
        throw outOfRange(`systems[${k}].arrays.${targets.forces} has ${describe(f)} (expected 3 × ${s.size} numbers, eV/Å)`);
      }
      const bad = flat.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) throw outOfRange(`systems[${k}].arrays.${targets.forces}[${bad}] = ${flat[bad]} (expected a finite force, eV/Å)`);
      forces.push(Float64Array.from(flat));
    }
    if (stress !== undefined) {
      const v = s.info[targets.stress!];
      const periodic = s.pbc.every(Boolean);
      if (v === undefined) {
        if (periodic) throw outOfRange(`systems[${k}].info.${targets.stress} is missing (targets.stress = '${targets.stress}'; every periodic system needs one)`);
        stress.push(new Float64Array(0));
      } else {
        if (!periodic) throw outOfRange(`systems[${k}].info.${targets.stress} is given but systems[${k}] is not periodic (pbc = [${s.pbc}]): stress needs a cell`);
        stress.push(stressTensor(`systems[${k}].info.${targets.stress}`, v));
      }
    }
  });
  return { energy, forces, stress };
}

function e0Fields(e0: unknown): Pick<PotentialFitData, 'e0' | 'e0Species' | 'e0Values'> {
  if (e0 === undefined || e0 === 'average') return { e0: 'average' };
  if (e0 === 'fit') return { e0: 'fit' };
  if (!isObject(e0)) throw invalidParameter(`e0 must be 'average', 'fit' or an object {Z: eV}, got ${describe(e0)}`);
  const species: number[] = [];
  const values: number[] = [];
  for (const [z, v] of Object.entries(e0)) {
    if (!/^-?\d+$/.test(z)) throw invalidParameter(`e0 key "${z}" is not an atomic number`);
    species.push(Number(z));
    values.push(finiteNumber(`e0[${z}]`, v));
  }
  return { e0: 'given', e0Species: species, e0Values: values };
}

function sigmaFields(sigmas: unknown, targets: PotentialTargets, required: boolean): Pick<PotentialFitData, 'sigmaEnergy' | 'sigmaForces' | 'sigmaStress'> {
  if (sigmas === undefined && !required) return { sigmaEnergy: 1, sigmaForces: targets.forces ? 1 : undefined, sigmaStress: targets.stress ? 1 : undefined };
  if (!isObject(sigmas)) throw invalidParameter(`sigmas must be an object {energy, forces?, stress?}, got ${describe(sigmas)}`);
  checkKeys('sigmas', sigmas, ['energy', 'forces', 'stress']);
  const out = { sigmaEnergy: finiteNumber('sigmas.energy', sigmas.energy, { positive: true }), sigmaForces: undefined as number | undefined, sigmaStress: undefined as number | undefined };
  if (targets.forces !== undefined) out.sigmaForces = finiteNumber('sigmas.forces', sigmas.forces, { positive: true });
  if (targets.stress !== undefined) out.sigmaStress = finiteNumber('sigmas.stress', sigmas.stress, { positive: true });
  return out;
}

function featuresField(features: unknown): PotentialFeatures | undefined {
  if (features === undefined) return undefined;
  if (features !== 'power_spectrum' && features !== 'bispectrum')
    throw outOfRange(`features = ${describe(features)} (expected 'power_spectrum' or 'bispectrum')`);
  return features;
}

function hypersText(hypers: unknown): string {
  if (!isObject(hypers)) throw invalidParameter(`hypers must be SoapPowerSpectrum hyper-parameters (an object), got ${describe(hypers)}`);
  return JSON.stringify(hypers);
}

/** Per-system sigmas as three columns, NaN where `sigmas` applies. */
function frameSigmaFields(v: unknown, systems: System[]): Pick<PotentialFitData, 'frameSigmaEnergy' | 'frameSigmaForces' | 'frameSigmaStress' | 'frameSigmaVirial'> {
  if (v === undefined) return {};
  if (!Array.isArray(v)) throw invalidParameter(`frameSigmas must be an array with one entry per system, got ${describe(v)}`);
  if (v.length !== systems.length) throw outOfRange(`frameSigmas has ${v.length} entries for ${systems.length} systems`);
  const column = () => new Float64Array(v.length).fill(NaN);
  const columns = { energy: column(), forces: column(), stress: column(), virial: column() };
  v.forEach((entry: unknown, k) => {
    if (entry === null || entry === undefined) return;
    if (!isObject(entry)) throw invalidParameter(`frameSigmas[${k}] must be an object {energy?, forces?, stress?}, got ${describe(entry)}`);
    checkKeys(`frameSigmas[${k}]`, entry, ['energy', 'forces', 'stress', 'virial']);
    if (entry.stress !== undefined && entry.virial !== undefined) throw outOfRange(`frameSigmas[${k}] gives both stress and virial (give one)`);
    for (const key of ['energy', 'forces', 'stress', 'virial'] as const) {
      if (entry[key] !== undefined) columns[key][k] = finiteNumber(`frameSigmas[${k}].${key}`, entry[key], { positive: true });
    }
  });
  return { frameSigmaEnergy: columns.energy, frameSigmaForces: columns.forces, frameSigmaStress: columns.stress, frameSigmaVirial: columns.virial };
}

function batchField(v: unknown): number | undefined {
  return v === undefined ? undefined : finiteNumber('batchAtoms', v, { integer: true, positive: true });
}

/** The SOAP and 2-body settings of `terms` (or of the top-level options without it). */
/**
 * `sparseJitter` (GAP's absolute sparse_jitter, eV²) for the core, which
 * gives each term its value over the term's δ²; refused next to a relative
 * jitter (the fit's or a term's).
 */
function sparseJitterField(options: Record<string, unknown>, pair: { pairJitter?: number } | undefined): { sparseJitter?: number } {
  if (options.sparseJitter === undefined) return {};
  if (options.jitter !== undefined) throw invalidParameter('sparseJitter (absolute, every term) and jitter (relative to δ²) both set the jitter: give one');
  if (pair?.pairJitter !== undefined) throw invalidParameter("sparseJitter (absolute, every term) and the distance_2b term's jitter both set its jitter: give one");
  return { sparseJitter: finiteNumber('sparseJitter', options.sparseJitter, { min: 0 }) };
}

function termsOf(options: Record<string, unknown>): { soap: Record<string, unknown>; where: string; pair?: Pick<PotentialFitData, 'pairCutoff' | 'pairTransition' | 'pairTheta' | 'pairDelta' | 'pairCount' | 'pairJitter'> } {
  if (options.terms === undefined) return { soap: options, where: '' };
  const terms = options.terms as unknown;
  if (!Array.isArray(terms) || terms.length === 0) throw invalidParameter(`terms must be a non-empty list of {type: 'soap' | 'distance_2b', ...}, got ${describe(terms)}`);
  for (const key of ['hypers', 'sparse', 'kernel']) {
    if (options[key] !== undefined) throw invalidParameter(`${key} is given next to terms: put it in the 'soap' term (terms: [{type: 'soap', hypers, sparse, kernel}, ...])`);
  }
  let soap: { term: Record<string, unknown>; where: string } | undefined;
  let pair: Record<string, unknown> | undefined;
  terms.forEach((term: unknown, k: number) => {
    if (!isObject(term)) throw invalidParameter(`terms[${k}] must be an object {type, ...}, got ${describe(term)}`);
    if (term.type === 'soap') {
      if (soap) throw outOfRange(`terms[${k}]: a second 'soap' term (one is supported)`);
      checkKeys(`terms[${k}] (soap)`, term, ['type', 'hypers', 'sparse', 'kernel']);
      soap = { term, where: `terms[${k}].` };
    } else if (term.type === 'distance_2b') {
      if (pair) throw outOfRange(`terms[${k}]: a second 'distance_2b' term (one covers every species pair)`);
      checkKeys(`terms[${k}] (distance_2b)`, term, ['type', 'cutoff', 'transition', 'theta', 'delta', 'sparse', 'jitter']);
      const at = `terms[${k}]`;
      const sparse = term.sparse ?? {};
      if (!isObject(sparse)) throw invalidParameter(`${at}.sparse must be an object {count}, got ${describe(sparse)}`);
      checkKeys(`${at}.sparse`, sparse, ['count']);
      const cutoff = finiteNumber(`${at}.cutoff`, term.cutoff, { positive: true });
      const transition = term.transition === undefined ? 0.5 : finiteNumber(`${at}.transition`, term.transition, { min: 0 });
      if (transition > cutoff) throw outOfRange(`${at}.transition = ${transition} (expected at most the cutoff, ${cutoff} Å)`);
      pair = {
        pairCutoff: cutoff,
        pairTransition: transition,
        pairTheta: term.theta === undefined ? 1 : finiteNumber(`${at}.theta`, term.theta, { positive: true }),
        pairDelta: term.delta === undefined ? 1 : finiteNumber(`${at}.delta`, term.delta, { positive: true }),
        pairCount: sparse.count === undefined ? 20 : finiteNumber(`${at}.sparse.count`, sparse.count, { integer: true, positive: true }),
        ...(term.jitter === undefined ? {} : { pairJitter: finiteNumber(`${at}.jitter`, term.jitter, { min: 0 }) }),
      };
    } else {
      throw outOfRange(`terms[${k}].type = ${describe(term.type)} (expected 'soap' or 'distance_2b')`);
    }
  });
  if (!soap) throw outOfRange(`terms has no 'soap' term (a model of 2-body terms alone is not supported; add {type: 'soap', hypers, sparse})`);
  return { soap: soap.term, where: soap.where, pair: pair as ReturnType<typeof termsOf>['pair'] };
}

function gprData(systems: System[], options: SparseGPRFitOptions): PotentialFitData {
  if (!isObject(options)) throw invalidParameter(`SparseGPR.fit options must be an object, got ${describe(options)}`);
  checkKeys('SparseGPR.fit', options, ['hypers', 'features', 'targets', 'sparse', 'kernel', 'terms', 'sigmas', 'frameSigmas', 'e0', 'jitter', 'sparseJitter', 'batchAtoms', 'signal']);
  const targets = checkTargets(options.targets);
  const { soap, where, pair } = termsOf(options as unknown as Record<string, unknown>);
  const sparse = soap.sparse as unknown;
  if (!isObject(sparse)) throw invalidParameter(`${where}sparse must be an object {count, method?, seed?}, got ${describe(sparse)}`);
  const given = sparse.method === 'indices';
  checkKeys(`${where}sparse`, sparse, given ? ['method', 'indices'] : ['count', 'method', 'seed']);
  let count = 0;
  const countSpecies: number[] = [];
  const countValues: number[] = [];
  const indicesSpecies: number[] = [];
  const indicesLengths: number[] = [];
  const indicesValues: number[] = [];
  if (given) {
    const indices = sparse.indices as unknown;
    if (!isObject(indices)) throw invalidParameter(`${where}sparse.indices must be an object {Z: [index, ...]}, got ${describe(indices)}`);
    for (const [z, list] of Object.entries(indices)) {
      if (!/^-?\d+$/.test(z)) throw invalidParameter(`${where}sparse.indices key "${z}" is not an atomic number`);
      if (!Array.isArray(list)) throw invalidParameter(`${where}sparse.indices[${z}] must be an array of indices, got ${describe(list)}`);
      indicesSpecies.push(Number(z));
      indicesLengths.push(list.length);
      list.forEach((v, k) => {
        const i = finiteNumber(`${where}sparse.indices[${z}][${k}]`, v, { integer: true, min: 0 });
        // the binding takes u32; a larger index is out of range for any training set anyway
        if (i > 0xffffffff) throw outOfRange(`${where}sparse.indices[${z}][${k}] = ${i} (larger than any training set)`);
        indicesValues.push(i);
      });
    }
  } else if (isObject(sparse.count)) {
    for (const [z, v] of Object.entries(sparse.count)) {
      if (!/^-?\d+$/.test(z)) throw invalidParameter(`${where}sparse.count key "${z}" is not an atomic number`);
      countSpecies.push(Number(z));
      countValues.push(finiteNumber(`${where}sparse.count[${z}]`, v, { integer: true, positive: true }));
    }
  } else {
    count = finiteNumber(`${where}sparse.count`, sparse.count, { integer: true, min: 0 });
    if (count === 0) throw outOfRange(`${where}sparse.count = 0 (expected at least 1 sparse environment per species)`);
  }
  const method = sparse.method ?? FIT_DEFAULTS.sparseMethod;
  if (method !== 'cur' && method !== 'leverage' && method !== 'leverage-mix' && method !== 'pivoted-cholesky' && method !== 'greedy-trace' && method !== 'fps' && method !== 'random' && method !== 'indices')
    throw outOfRange(`${where}sparse.method = ${describe(method)} (expected 'cur', 'leverage', 'leverage-mix', 'pivoted-cholesky', 'greedy-trace', 'fps', 'random' or 'indices')`);
  const kernel = (soap.kernel ?? {}) as unknown;
  if (!isObject(kernel)) throw invalidParameter(`${where}kernel must be an object {zeta, delta}, got ${describe(kernel)}`);
  checkKeys(`${where}kernel`, kernel, ['zeta', 'delta']);
  return {
    kind: 'sparse_gpr',
    features: featuresField(options.features),
    hypers: hypersText(soap.hypers),
    ...pair,
    ...readTargets(systems, targets),
    count,
    countSpecies,
    countValues,
    method,
    ...(given ? { indicesSpecies, indicesLengths, indicesValues } : {}),
    seed: sparse.seed === undefined ? undefined : finiteNumber(`${where}sparse.seed`, sparse.seed, { integer: true, min: 0 }),
    zeta: kernel.zeta === undefined ? FIT_DEFAULTS.zeta : finiteNumber(`${where}kernel.zeta`, kernel.zeta, { integer: true, positive: true }),
    delta: kernel.delta === undefined ? FIT_DEFAULTS.delta : finiteNumber(`${where}kernel.delta`, kernel.delta, { positive: true }),
    jitter: options.jitter === undefined ? FIT_DEFAULTS.jitter : finiteNumber('jitter', options.jitter, { min: 0 }),
    ...sparseJitterField(options as unknown as Record<string, unknown>, pair),
    ...sigmaFields(options.sigmas, targets, true),
    ...frameSigmaFields(options.frameSigmas, systems),
    ...e0Fields(options.e0),
    batchAtoms: batchField(options.batchAtoms),
  };
}

function linearData(systems: System[], options: LinearModelFitOptions): PotentialFitData {
  if (!isObject(options)) throw invalidParameter(`LinearModel.fit options must be an object, got ${describe(options)}`);
  checkKeys('LinearModel.fit', options, ['hypers', 'features', 'targets', 'regularizer', 'sigmas', 'frameSigmas', 'e0', 'batchAtoms', 'signal']);
  const targets = checkTargets(options.targets);
  return {
    kind: 'linear',
    features: featuresField(options.features),
    hypers: hypersText(options.hypers),
    ...readTargets(systems, targets),
    regularizer: finiteNumber('regularizer', options.regularizer, { min: 0 }),
    ...sigmaFields(options.sigmas, targets, false),
    ...frameSigmaFields(options.frameSigmas, systems),
    ...e0Fields(options.e0),
    batchAtoms: batchField(options.batchAtoms),
  };
}

/** Options of `calibrateVariance`. */
export interface CalibrateOptions {
  /** Key of the reference energy in `System.info`, eV (default 'energy'). */
  energy?: string;
  /** Cancels an asynchronous calibration. */
  signal?: AbortSignalLike;
  /**
   * false: only measure: the model is left as it is, `within1SigmaBefore`
   * and `within2SigmaBefore` are the coverage of its variance on `systems`
   * and `scale` the factor their errors would ask for (default true).
   */
  apply?: boolean;
}

/** What `calibrateVariance` fitted and how the errors are covered. */
export interface VarianceCalibration {
  /** The model's variance factor now (the product with any earlier one). */
  scale: number;
  /** Held-out only: the factor these structures asked for (`scale` is the model's earlier factor times it). */
  factor?: number;
  /** Structures that entered (those with a positive variance). */
  structures: number;
  /** Fraction of energy errors within 1σ of the calibrated variance (0.68 for Gaussian errors). */
  within1Sigma: number;
  /** Fraction within 2σ (0.95 for Gaussian errors). */
  within2Sigma: number;
  /** Fraction within 1σ before this calibration. */
  within1SigmaBefore: number;
  /** Fraction within 2σ before this calibration. */
  within2SigmaBefore: number;
  /** Noise per atom in the variance, eV²/atom (s·(v + noise·N)); 0 when none. */
  noise?: number;
  /** How the scale was fitted: 'held-out' (calibrateVariance) or 'leave-one-out'. */
  method?: 'held-out' | 'leave-one-out';
  /**
   * Leave-one-out only: what was left out in turn: 'frame' (each training
   * structure's energy alone) or 'composition' (all structures of one
   * composition at once; kept in the model file's meta).
   */
  groups?: 'frame' | 'composition';
  /** Leave-one-out only: how many groups were left out in turn. */
  groupCount?: number;
}

/** Options of `calibrateVarianceLeaveOneOut` and `leaveOneOut`. */
export interface LeaveOneOutOptions extends CalibrateOptions {
  /**
   * The energy noise of each training structure as the fit had it, eV
   * (total, not per atom; `undefined` entries: σ_E·√N from the model's
   * sigmas): the energies of `frameSigmas` when the fit had them.
   */
  sigmaEnergy?: (number | undefined)[];
  /**
   * The noise per atom c in the calibrated variance s·(v + c·N), kept in
   * the model: 'fit' (default): c and s by maximum likelihood of the
   * leave-one-out errors; 'sigma': c = σ_E², the fit's own energy noise
   * (the Bayesian posterior predictive variance), s fitted; 'none': c = 0.
   */
  noise?: 'fit' | 'sigma' | 'none';
  /**
   * What is left out in turn: 'frame' (each structure's energy row),
   * 'composition' (the energy rows of all structures with the same
   * species-count ratios at once, in closed form: the errors of a model
   * asked about a composition it was not fitted on) or 'auto':
   * 'composition' when the structures have at least 3 distinct
   * compositions, else 'frame' (`acdc fit`'s default; docs/MODELS.md,
   * "Variance calibration"). Default 'frame'.
   */
  groups?: 'auto' | 'frame' | 'composition';
}

/** Options of the force variance calibrations (linear model). */
export interface ForceCalibrateOptions {
  /** Key of the reference forces in `System.arrays`, eV/Å (default 'forces'). */
  forces?: string;
  /** Cancels an asynchronous calibration. */
  signal?: AbortSignalLike;
  /**
   * calibrateForceVariance only: false measures the coverage on `systems`
   * and leaves the model as it is (default true).
   */
  apply?: boolean;
  /**
   * calibrateForceVarianceLeaveOneOut only: the force noise of each
   * training structure as the fit had it, eV/Å (`undefined` entries: the
   * model's sigmas.forces): the forces of `frameSigmas` when the fit had them.
   */
  sigmaForces?: (number | undefined)[];
  /**
   * calibrateForceVarianceLeaveOneOut only: how s_F is fitted to the
   * left-out force errors (c_F is the maximum-likelihood one either way).
   * 'coverage' (default): the s_F whose fractions of errors within 1σ and
   * 2σ are nearest 0.683 and 0.954, in units of the target bands ±0.1 and
   * ±0.05 (force errors are heavier-tailed than a Gaussian, and the
   * maximum-likelihood s_F covers 0.72–0.79 of them within 1σ);
   * 'likelihood': s_F = mean(r²/(v + c_F)). docs/MODELS.md, "Force variance".
   */
  scaleRule?: 'coverage' | 'likelihood';
}

/** A calibration of the per-component force variance s_F·(v + c_F) and how the force errors are covered. */
export interface ForceVarianceCalibration {
  /** s_F. */
  scale: number;
  /** Held-out only: the factor these structures asked for (`scale` is the earlier s_F times it). */
  factor?: number;
  /** c_F, eV²/Å² per component. */
  noise: number;
  /** Force components that entered. */
  components: number;
  /** Fraction of force errors within 1σ of the calibrated variance (0.68 for Gaussian errors). */
  within1Sigma: number;
  /** Within 2σ (0.95). */
  within2Sigma: number;
  /** Within 1σ before this calibration. */
  within1SigmaBefore: number;
  /** Within 2σ before this calibration. */
  within2SigmaBefore: number;
  /** 'leave-one-out' (each training structure's force rows left out at once) or 'held-out'. */
  method: 'leave-one-out' | 'held-out';
  /** Leave-one-out only: the rule that fitted s_F (`scaleRule`). */
  scaleRule?: 'coverage' | 'likelihood';
  /** Leave-one-out only: the maximum-likelihood s_F at the same c_F (equal to `scale` under 'likelihood'). */
  likelihoodScale?: number;
}

/** Leave-one-out errors and variances of the training structures. */
export interface LeaveOneOut {
  /** Energy of the fit without the structure's energy row − reference, eV. */
  errors: Float64Array;
  /** Its predictive variance, eV² (no scale, no noise). */
  variances: Float64Array;
  /** Weight of the structure's energy row in its own prediction, in [0, 1). */
  leverage: Float64Array;
  /** Atoms per structure. */
  atoms: number[];
  /** The group each structure was left out with (0, 1, …; one per structure for 'frame'). */
  groups: number[];
  /** What was left out in turn: 'frame' or 'composition'. */
  scheme: 'frame' | 'composition';
}

function checkLeaveOneOutOptions(options: unknown, n: number): LeaveOneOutOptions {
  if (options === undefined) return {};
  if (!isObject(options)) throw invalidParameter(`calibrateVarianceLeaveOneOut options must be an object, got ${describe(options)}`);
  checkKeys('calibrateVarianceLeaveOneOut', options, ['energy', 'signal', 'sigmaEnergy', 'noise', 'groups']);
  if (options.groups !== undefined && !['auto', 'frame', 'composition'].includes(options.groups as string)) throw invalidParameter(`groups must be 'auto', 'frame' or 'composition', got ${describe(options.groups)}`);
  checkCalibrateOptions({ ...(options.energy !== undefined ? { energy: options.energy } : {}) });
  if (options.noise !== undefined && !['fit', 'sigma', 'none'].includes(options.noise as string)) throw invalidParameter(`noise must be 'fit', 'sigma' or 'none', got ${describe(options.noise)}`);
  const s = options.sigmaEnergy;
  if (s !== undefined) {
    if (!Array.isArray(s) || s.length !== n) throw invalidParameter(`sigmaEnergy must be an array of ${n} entries (one per structure), got ${describe(s)}`);
    s.forEach((v, k) => {
      if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v > 0)) throw invalidParameter(`sigmaEnergy[${k}] must be a positive number (eV) or undefined, got ${describe(v)}`);
    });
  }
  return options as LeaveOneOutOptions;
}

function checkCalibrateOptions(options: unknown): CalibrateOptions {
  if (options === undefined) return {};
  if (!isObject(options)) throw invalidParameter(`calibrateVariance options must be an object, got ${describe(options)}`);
  checkKeys('calibrateVariance', options, ['energy', 'signal', 'apply']);
  if (options.apply !== undefined && typeof options.apply !== 'boolean') throw invalidParameter(`apply must be a boolean, got ${describe(options.apply)}`);
  if (options.energy !== undefined && (typeof options.energy !== 'string' || options.energy === '')) throw invalidParameter(`energy must be a non-empty string, got ${describe(options.energy)}`);
  return options as CalibrateOptions;
}

function calibrationReferences(systems: System[], key = 'energy'): Float64Array {
  return readTargets(systems, { energy: key }).energy;
}

function checkForceCalibrateOptions(options: unknown, n: number): ForceCalibrateOptions {
  if (options === undefined) return {};
  if (!isObject(options)) throw invalidParameter(`force calibration options must be an object, got ${describe(options)}`);
  checkKeys('calibrateForceVariance', options, ['forces', 'signal', 'apply', 'sigmaForces', 'scaleRule']);
  if (options.scaleRule !== undefined && options.scaleRule !== 'coverage' && options.scaleRule !== 'likelihood') throw invalidParameter(`scaleRule must be 'coverage' or 'likelihood', got ${describe(options.scaleRule)}`);
  if (options.forces !== undefined && (typeof options.forces !== 'string' || options.forces === '')) throw invalidParameter(`forces must be a non-empty string, got ${describe(options.forces)}`);
  if (options.apply !== undefined && typeof options.apply !== 'boolean') throw invalidParameter(`apply must be a boolean, got ${describe(options.apply)}`);
  const s = options.sigmaForces;
  if (s !== undefined) {
    if (!Array.isArray(s) || s.length !== n) throw invalidParameter(`sigmaForces must be an array of ${n} entries (one per structure), got ${describe(s)}`);
    s.forEach((v, k) => {
      if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v > 0)) throw invalidParameter(`sigmaForces[${k}] must be a positive number (eV/Å) or undefined, got ${describe(v)}`);
    });
  }
  return options as ForceCalibrateOptions;
}

function forceReferences(systems: System[], key = 'forces'): Float64Array[] {
  return systems.map((s, k) => {
    const f = s.arrays[key];
    if (f === undefined) throw outOfRange(`systems[${k}].arrays.${key} is missing (forces = '${key}')`);
    const flat = flatNumbers(f);
    if (flat === undefined || flat.length !== 3 * s.size) throw outOfRange(`systems[${k}].arrays.${key} has ${describe(f)} (expected 3 × ${s.size} numbers, eV/Å)`);
    const bad = flat.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw outOfRange(`systems[${k}].arrays.${key}[${bad}] = ${flat[bad]} (expected a finite force, eV/Å)`);
    return Float64Array.from(flat);
  });
}

function checkPredictOptions(options: unknown): PredictOptions {
  if (options === undefined) return {};
  if (!isObject(options)) throw invalidParameter(`predict options must be an object, got ${describe(options)}`);
  checkKeys('predict', options, ['forces', 'stress', 'variance', 'maxMemory', 'signal']);
  for (const key of ['forces', 'stress', 'variance']) {
    if (options[key] !== undefined && typeof options[key] !== 'boolean') throw invalidParameter(`predict option ${key} must be a boolean, got ${describe(options[key])}`);
  }
  const m = options.maxMemory;
  if (m !== undefined && !((typeof m === 'number' && Number.isFinite(m) && m > 0) || typeof m === 'string')) {
    throw invalidParameter(`maxMemory must be a positive number of bytes or a size such as '4G', got ${describe(m)}`);
  }
  return options as PredictOptions;
}

/** maxMemory as the binding takes it (a size string; the core parses and checks it). */
function memoryOption(m: number | string | undefined): string | undefined {
  return m === undefined ? undefined : typeof m === 'number' ? String(Math.floor(m)) : m;
}

function toPrediction(p: PotentialPredictionData, options: PredictOptions): PotentialPrediction {
  const out: PotentialPrediction = { energy: p.energy };
  if (options.forces) out.forces = p.forces ?? [];
  if (options.stress) out.stress = p.stress ?? [];
  if (options.variance && p.variance) out.variance = p.variance;
  return out;
}

async function runFit(systems: System[], data: PotentialFitData, signal: AbortSignalLike | undefined): Promise<NativePotential> {
  const token = signal ? new native.CancelToken() : undefined;
  return runQueued(() => native.NativePotential.fit(systems.map((s) => s.data()), data, token), signal, () => token?.cancel());
}

function fromNative(n: NativePotential): SparseGPR | LinearModel {
  return n.kind === 'linear' ? new LinearModel(n) : new SparseGPR(n);
}

function parseBytes(bytes: Uint8Array, what: string): NativePotential {
  try {
    return native.NativePotential.fromBytes(bytes, what);
  } catch (e) {
    // a tensor model (acdc fit --target) is a valid file of another kind: say which loader reads it
    let kind: string | undefined;
    try {
      kind = native.modelFileKind(bytes, what);
    } catch {
      kind = undefined;
    }
    if (kind === 'sparse_tensor_gpr' || kind === 'tensor_linear') {
      throw invalidParameter(`${what}: holds a ${kind} tensor model, not an energy model (load it with ${kind === 'tensor_linear' ? 'TensorLinearModel' : 'SparseTensorGPR'}.load or loadTensorModel)`);
    }
    throw e;
  }
}

function expectKind<T extends Potential>(model: SparseGPR | LinearModel, kind: 'sparse_gpr' | 'linear', what: string): T {
  if (model.kind !== kind) {
    const other = model.kind === 'linear' ? 'LinearModel.load' : 'SparseGPR.load';
    throw invalidParameter(`${what}: holds a ${model.kind} model, not ${kind} (use ${other} or loadModel)`);
  }
  return model as unknown as T;
}

const natives = new WeakMap<object, NativePotential>();

function nativeOf(p: object): NativePotential {
  return natives.get(p)!;
}

/**
 * The native potential behind `model` when it is one of acdc's own
 * (SparseGPR, LinearModel) whose predict and predictSync are not
 * overridden, else null: what the native i-PI loop can evaluate without
 * calling back into JavaScript. @internal
 */
export function plainNativePotential(model: unknown): NativePotential | null {
  if (typeof model !== 'object' || model === null) return null;
  const n = natives.get(model);
  if (n === undefined) return null;
  const m = model as { predict: unknown; predictSync: unknown };
  return m.predict === Potential.prototype.predict && m.predictSync === Potential.prototype.predictSync ? n : null;
}

/** What SparseGPR and LinearModel share: predict, save, and the model's description. */
export abstract class Potential {
  readonly #native: NativePotential;

  /** @internal */
  constructor(n: NativePotential) {
    this.#native = n;
    natives.set(this, n);
  }

  /** 'sparse_gpr' or 'linear'. */
  get kind(): 'sparse_gpr' | 'linear' {
    return this.#native.kind as 'sparse_gpr' | 'linear';
  }

  /** The SoapPowerSpectrum hyper-parameters the model was fitted with. */
  get hypers(): SoapHypers {
    return JSON.parse(this.#native.hypers) as SoapHypers;
  }

  /** Centre (and neighbour) species the model knows, sorted atomic numbers. */
  get species(): number[] {
    return this.#native.species;
  }

  /** Reference energy per atom of each species, eV. */
  get e0(): Record<number, number> {
    const values = this.#native.e0;
    return Object.fromEntries(this.species.map((z, k) => [z, values[k]]));
  }

  /** The features the model was fitted on: 'power_spectrum' (ν = 2) or 'bispectrum' (ν = 3). */
  get features(): PotentialFeatures {
    return this.#native.features as PotentialFeatures;
  }

  /** Length of one atom's feature vector (joined power spectrum, or the bispectrum's features). */
  get featureCount(): number {
    return this.#native.nFeatures;
  }

  /** Fitted weights: α (SparseGPR, species blocks in the order of `species`, then with `terms` the distance_2b sparse distances of each species pair) or w (LinearModel, one feature vector per species). */
  get weights(): Float64Array {
    return this.#native.weights;
  }

  /** Facts about the fit: sigmas, targets, sparse selection, number of structures, and with `terms` the settings of each term (`terms`). */
  get fitInfo(): Record<string, unknown> {
    return JSON.parse(this.#native.meta) as Record<string, unknown>;
  }

  /**
   * The weight α of the prior against the energy data in the posterior (the
   * regulariser of the local prediction rigidity, `acdc rigidity`): (σ_E/δ)²
   * for a SparseGPR, λ·σ_E² for a LinearModel; undefined when the model does
   * not record its energy sigma.
   */
  get priorWeight(): number | undefined {
    return this.#native.priorWeight ?? undefined;
  }

  /** Factor of the predictive variance: 1, or what `calibrateVariance` fitted (kept in the model file). */
  get varianceScale(): number {
    return this.#native.varianceScale;
  }

  /**
   * Calibrates the predictive variance on held-out `systems` (not the
   * training set): fits the factor s of the energy variance v by maximum
   * likelihood of the errors r ~ N(0, s·v), s = mean(r²/v), multiplies the
   * model's `varianceScale` by it (saved with the model) and reports the
   * fraction of errors within 1σ and 2σ before and after.
   */
  async calibrateVariance(systems: Systems, options?: CalibrateOptions): Promise<VarianceCalibration> {
    const o = checkCalibrateOptions(options);
    const list = toList(systems);
    const reference = calibrationReferences(list, o.energy);
    const p = await this.predict(list, { variance: true, ...(o.signal ? { signal: o.signal } : {}) });
    return this.#applyCalibration(p, reference, o.apply !== false);
  }

  /** Calibrates the predictive variance synchronously. */
  calibrateVarianceSync(systems: Systems, options?: CalibrateOptions): VarianceCalibration {
    const o = checkCalibrateOptions(options);
    const list = toList(systems);
    const reference = calibrationReferences(list, o.energy);
    return this.#applyCalibration(this.predictSync(list, { variance: true }), reference, o.apply !== false);
  }

  /** Energy noise per atom in the predictive variance, eV²/atom (0 unless calibrated with it; kept in the model file). */
  get varianceNoise(): number {
    return this.#native.varianceNoise;
  }

  /**
   * Leave-one-out energy errors and variances of the structures the model
   * was fitted on (in the order of the fit), in closed form: what a fit
   * without each structure's energy row would predict (docs/MODELS.md,
   * "Variance calibration").
   */
  async leaveOneOut(systems: Systems, options?: LeaveOneOutOptions): Promise<LeaveOneOut> {
    const list = toList(systems);
    const o = checkLeaveOneOutOptions(options, list.length);
    const reference = calibrationReferences(list, o.energy);
    const signal = checkSignal(o.signal);
    throwIfAborted(signal);
    const data = list.map((s) => s.data());
    const token = signal ? new native.CancelToken() : undefined;
    const l = await runQueued(() => this.#native.leaveOneOut(data, reference, o.sigmaEnergy, o.groups ?? 'frame', token), signal, () => token?.cancel());
    return { errors: l.errors, variances: l.variances, leverage: l.leverage, atoms: l.atoms, groups: l.groups, scheme: l.scheme as LeaveOneOut['scheme'] };
  }

  /** `leaveOneOut`, synchronously. */
  leaveOneOutSync(systems: Systems, options?: LeaveOneOutOptions): LeaveOneOut {
    const list = toList(systems);
    const o = checkLeaveOneOutOptions(options, list.length);
    const reference = calibrationReferences(list, o.energy);
    const l = this.#native.leaveOneOutSync(list.map((s) => s.data()), reference, o.sigmaEnergy, o.groups ?? 'frame');
    return { errors: l.errors, variances: l.variances, leverage: l.leverage, atoms: l.atoms, groups: l.groups, scheme: l.scheme as LeaveOneOut['scheme'] };
  }

  /**
   * Calibrates the predictive variance on the model's own training
   * structures (in the order of the fit) by their closed-form
   * leave-one-out errors: s·(v + c·N), s and the noise per atom c fitted
   * by maximum likelihood (see `noise` for the other choices, and
   * `groups` to leave whole compositions out).
   * Replaces any earlier calibration; kept in the model file.
   */
  async calibrateVarianceLeaveOneOut(systems: Systems, options?: LeaveOneOutOptions): Promise<VarianceCalibration> {
    return this.#applyLeaveOneOut(await this.leaveOneOut(systems, options), options?.noise);
  }

  /** `calibrateVarianceLeaveOneOut`, synchronously. */
  calibrateVarianceLeaveOneOutSync(systems: Systems, options?: LeaveOneOutOptions): VarianceCalibration {
    return this.#applyLeaveOneOut(this.leaveOneOutSync(systems, options), options?.noise);
  }

  #applyLeaveOneOut(l: LeaveOneOut, noise: LeaveOneOutOptions['noise']): VarianceCalibration {
    const c = this.#native.calibrateEnergyVarianceLeaveOut(l.errors, l.variances, l.atoms, l.groups, l.scheme, noise ?? 'fit');
    return {
      scale: c.scale,
      structures: c.count,
      within1Sigma: c.within1,
      within2Sigma: c.within2,
      within1SigmaBefore: c.within1Uncalibrated,
      within2SigmaBefore: c.within2Uncalibrated,
      noise: c.noise,
      method: 'leave-one-out',
      groups: l.scheme,
      groupCount: c.groupCount,
    };
  }

  #applyCalibration(p: PotentialPrediction, reference: Float64Array, apply: boolean): VarianceCalibration {
    const c = this.#native.calibrateEnergyVarianceHeldOut(p.energy, reference, p.variance!, apply);
    return {
      scale: c.scale,
      factor: c.factor,
      structures: c.count,
      within1Sigma: c.within1,
      within2Sigma: c.within2,
      within1SigmaBefore: c.within1Uncalibrated,
      within2SigmaBefore: c.within2Uncalibrated,
      noise: c.noise,
      method: 'held-out',
    };
  }

  /** The force variance calibration s_F·(v + c_F): scale and noise (eV²/Å² per component); 1 and 0 before one (kept in the model file). */
  get forceVarianceCalibration(): { scale: number; noise: number } {
    const [scale, noise] = this.#native.forceVarianceCalibration;
    return { scale: scale!, noise: noise! };
  }

  /**
   * Predicted variance of every force component, eV²/Å² (3N per system, in
   * the order of the positions): s_F·(ψᵀM⁻¹ψ + p + c_F), ψ the force row of
   * the fit and p the sparse GPR's prior part k**_F − ψᵀK_MM⁻¹ψ (what the
   * sparse set leaves unexplained; 0 for the linear model; with a
   * distance_2b term, both terms' prior parts). docs/MODELS.md, "Force
   * variance".
   */
  async forceVariance(systems: Systems, options?: { signal?: AbortSignalLike }): Promise<Float64Array[]> {
    const list = toList(systems);
    const signal = checkSignal(options?.signal);
    throwIfAborted(signal);
    const data = list.map((s) => s.data());
    const token = signal ? new native.CancelToken() : undefined;
    return (await runQueued(() => this.#native.forceVariance(data, token), signal, () => token?.cancel())).variance;
  }

  /** `forceVariance`, synchronously. */
  forceVarianceSync(systems: Systems): Float64Array[] {
    return this.#native.forceVarianceSync(toList(systems).map((s) => s.data())).variance;
  }

  /**
   * Closed-form leave-one-frame-out force errors (eV/Å, prediction − reference)
   * and variances (eV²/Å², no scale, no noise) of the training structures
   * (in the order of the fit): what a fit without each structure's force
   * rows would predict for them, flat, with the structure of each component
   * (the sparse GPR's variances include the prior part). Not for a sparse
   * GPR with a distance_2b term.
   */
  forceLeaveOneOutSync(systems: Systems, options?: ForceCalibrateOptions): { errors: Float64Array; variances: Float64Array; frames: number[] } {
    const list = toList(systems);
    const o = checkForceCalibrateOptions(options, list.length);
    const l = this.#native.forceLeaveOutSync(list.map((s) => s.data()), forceReferences(list, o.forces), o.sigmaForces);
    return { errors: l.errors, variances: l.variances, frames: l.frames };
  }

  /** `forceLeaveOneOutSync` off the event loop. */
  async forceLeaveOneOut(systems: Systems, options?: ForceCalibrateOptions): Promise<{ errors: Float64Array; variances: Float64Array; frames: number[] }> {
    const list = toList(systems);
    const o = checkForceCalibrateOptions(options, list.length);
    const forces = forceReferences(list, o.forces);
    const signal = checkSignal(o.signal);
    throwIfAborted(signal);
    const data = list.map((s) => s.data());
    const token = signal ? new native.CancelToken() : undefined;
    const l = await runQueued(() => this.#native.forceLeaveOut(data, forces, o.sigmaForces, token), signal, () => token?.cancel());
    return { errors: l.errors, variances: l.variances, frames: l.frames };
  }

  /**
   * Calibrates the force variance on the model's own training structures
   * (in the order of the fit) by closed-form leave-one-frame-out: each
   * structure's force rows are left out at once (its energy and stress rows
   * stay), c_F fitted by maximum likelihood of the left-out force errors
   * and s_F by `options.scaleRule` (default 'coverage'). Linear model and
   * sparse GPR (with or without a distance_2b term); kept in the model file.
   */
  async calibrateForceVarianceLeaveOneOut(systems: Systems, options?: ForceCalibrateOptions): Promise<ForceVarianceCalibration> {
    const l = await this.forceLeaveOneOut(systems, options);
    return this.#applyForceLeaveOut(l.errors, l.variances, options?.scaleRule);
  }

  /** `calibrateForceVarianceLeaveOneOut`, synchronously. */
  calibrateForceVarianceLeaveOneOutSync(systems: Systems, options?: ForceCalibrateOptions): ForceVarianceCalibration {
    const l = this.forceLeaveOneOutSync(systems, options);
    return this.#applyForceLeaveOut(l.errors, l.variances, options?.scaleRule);
  }

  /**
   * One more factor of the force variance from held-out `systems` (or,
   * with `apply: false`, only the coverage of the current one there:
   * `within1SigmaBefore`, `within2SigmaBefore`). Linear model and sparse
   * GPR (with or without a distance_2b term).
   */
  async calibrateForceVariance(systems: Systems, options?: ForceCalibrateOptions): Promise<ForceVarianceCalibration> {
    const list = toList(systems);
    const o = checkForceCalibrateOptions(options, list.length);
    const forces = forceReferences(list, o.forces);
    const p = await this.predict(list, { forces: true, ...(o.signal ? { signal: o.signal } : {}) });
    const v = await this.forceVariance(list, o.signal ? { signal: o.signal } : undefined);
    return this.#applyForceCalibration(p.forces!, v, forces, o.apply !== false);
  }

  /** `calibrateForceVariance`, synchronously. */
  calibrateForceVarianceSync(systems: Systems, options?: ForceCalibrateOptions): ForceVarianceCalibration {
    const list = toList(systems);
    const o = checkForceCalibrateOptions(options, list.length);
    const forces = forceReferences(list, o.forces);
    return this.#applyForceCalibration(this.predictSync(list, { forces: true }).forces!, this.forceVarianceSync(list), forces, o.apply !== false);
  }

  #applyForceLeaveOut(errors: Float64Array, variances: Float64Array, scaleRule: 'coverage' | 'likelihood' = 'coverage'): ForceVarianceCalibration {
    const f = native.calibrateForceVarianceLeaveOut(errors, variances, scaleRule);
    const c = f.calibration;
    this.#native.setForceVarianceCalibration(c.scale, c.noise);
    return { scale: c.scale, noise: c.noise, components: c.count, within1Sigma: c.within1, within2Sigma: c.within2, within1SigmaBefore: c.within1Uncalibrated, within2SigmaBefore: c.within2Uncalibrated, method: 'leave-one-out', scaleRule, likelihoodScale: f.likelihoodScale };
  }

  #applyForceCalibration(predicted: Float64Array[], variance: Float64Array[], reference: Float64Array[], apply: boolean): ForceVarianceCalibration {
    const c = this.#native.calibrateForceVarianceHeldOut(predicted, reference, variance, apply);
    return { scale: c.scale, factor: c.factor, noise: c.noise, components: c.count, within1Sigma: c.within1, within2Sigma: c.within2, within1SigmaBefore: c.within1Uncalibrated, within2SigmaBefore: c.within2Uncalibrated, method: 'held-out' };
  }

  /** Predicts off the event loop: energies (eV), and forces (eV/Å), stress (eV/Å³) and variance (eV²) when asked. */
  async predict(systems: Systems, options?: PredictOptions): Promise<PotentialPrediction> {
    const o = checkPredictOptions(options);
    const signal = checkSignal(o.signal);
    throwIfAborted(signal);
    const data = toList(systems).map((s) => s.data());
    const token = signal ? new native.CancelToken() : undefined;
    const p = await runQueued(() => this.#native.predict(data, !!o.forces, !!o.stress, !!o.variance, token, memoryOption(o.maxMemory)), signal, () => token?.cancel());
    return toPrediction(p, o);
  }

  /** Predicts synchronously. */
  predictSync(systems: Systems, options?: PredictOptions): PotentialPrediction {
    const o = checkPredictOptions(options);
    const data = toList(systems).map((s) => s.data());
    return toPrediction(this.#native.predictSync(data, !!o.forces, !!o.stress, !!o.variance, memoryOption(o.maxMemory)), o);
  }

  /** The bytes of the `.acdc` model file. */
  toBuffer(): Uint8Array {
    return this.#native.toBytes();
  }

  /** Writes the model to `path` (a `.acdc` file; written to a temporary name, then renamed). */
  async save(path: string): Promise<void> {
    await writeModelFile(path, this.toBuffer());
  }

  /** Writes the model to `path` synchronously. */
  saveSync(path: string): void {
    writeModelFileSync(path, this.toBuffer());
  }
}

/**
 * Sparse Gaussian process regression in the GAP form: E = Σ_i e0[Z_i] + Σ_i Σ_m α_m δ²(x̂_i·x̂_m)^ζ
 * over `sparse.count` environments m per centre species, fitted to energies,
 * forces and stress (projected process, solved by streaming QR).
 *
 * @example
 * const frames = readXyzSync('train.xyz');
 * const model = await SparseGPR.fit(frames, { hypers, targets: { energy: 'energy', forces: 'forces' },
 *   sparse: { count: 200 }, kernel: { zeta: 4, delta: 1 }, sigmas: { energy: 0.002, forces: 0.05 } });
 * const p = model.predictSync(frames, { forces: true });
 */
export class SparseGPR extends Potential {
  /** Fits off the event loop; `options.signal` cancels it. */
  static async fit(systems: Systems, options: SparseGPRFitOptions): Promise<SparseGPR> {
    const list = toList(systems);
    const data = gprData(list, options);
    const signal = checkSignal(options.signal);
    return new SparseGPR(await runFit(list, data, signal));
  }

  /** Fits synchronously. */
  static fitSync(systems: Systems, options: SparseGPRFitOptions): SparseGPR {
    const list = toList(systems);
    return new SparseGPR(native.NativePotential.fitSync(list.map((s) => s.data()), gprData(list, options)));
  }

  /** Reads a `.acdc` file holding a SparseGPR. */
  static async load(path: string): Promise<SparseGPR> {
    return expectKind<SparseGPR>(fromNative(parseBytes(await readModelFile(path), path)), 'sparse_gpr', path);
  }

  /** Reads a `.acdc` file holding a SparseGPR, synchronously. */
  static loadSync(path: string): SparseGPR {
    return expectKind<SparseGPR>(fromNative(parseBytes(readModelFileSync(path), path)), 'sparse_gpr', path);
  }

  /** 'sparse_gpr'. */
  override get kind(): 'sparse_gpr' {
    return 'sparse_gpr';
  }

  /** Kernel exponent ζ. */
  get zeta(): number {
    return nativeOf(this).zeta;
  }

  /** Kernel scale δ, eV. */
  get delta(): number {
    return nativeOf(this).delta;
  }

  /** Sparse environments per species, in the order of `species`. */
  get sparseCounts(): number[] {
    return nativeOf(this).counts;
  }
}

/**
 * Ridge regression on the raw power spectrum: E = Σ_i (e0[Z_i] + w_{Z_i}·x_i), a
 * 3-body potential, fitted to energies, forces and stress.
 */
export class LinearModel extends Potential {
  /** Fits off the event loop; `options.signal` cancels it. */
  static async fit(systems: Systems, options: LinearModelFitOptions): Promise<LinearModel> {
    const list = toList(systems);
    const data = linearData(list, options);
    const signal = checkSignal(options.signal);
    return new LinearModel(await runFit(list, data, signal));
  }

  /** Fits synchronously. */
  static fitSync(systems: Systems, options: LinearModelFitOptions): LinearModel {
    const list = toList(systems);
    return new LinearModel(native.NativePotential.fitSync(list.map((s) => s.data()), linearData(list, options)));
  }

  /** Reads a `.acdc` file holding a LinearModel. */
  static async load(path: string): Promise<LinearModel> {
    return expectKind<LinearModel>(fromNative(parseBytes(await readModelFile(path), path)), 'linear', path);
  }

  /** Reads a `.acdc` file holding a LinearModel, synchronously. */
  static loadSync(path: string): LinearModel {
    return expectKind<LinearModel>(fromNative(parseBytes(readModelFileSync(path), path)), 'linear', path);
  }

  /** 'linear'. */
  override get kind(): 'linear' {
    return 'linear';
  }
}

/** Reads a `.acdc` model file, whichever kind it holds; `options.signal` aborts the read. */
export async function loadModel(path: string, options: { signal?: AbortSignalLike } = {}): Promise<SparseGPR | LinearModel> {
  const signal = checkSignal(options?.signal);
  throwIfAborted(signal);
  const bytes = await abortable(readModelFile(path), signal);
  throwIfAborted(signal);
  return fromNative(parseBytes(bytes, path));
}

/** Reads a `.acdc` model file synchronously, whichever kind it holds. */
export function loadModelSync(path: string): SparseGPR | LinearModel {
  return fromNative(parseBytes(readModelFileSync(path), path));
}

/** Reads a model from the bytes of a `.acdc` file (e.g. received over a network); `name` labels errors. */
export function modelFromBuffer(bytes: Uint8Array, name = 'model buffer'): SparseGPR | LinearModel {
  if (!(bytes instanceof Uint8Array)) throw invalidParameter(`model bytes must be a Uint8Array or Buffer, got ${describe(bytes)}`);
  return fromNative(parseBytes(bytes, name));
}
