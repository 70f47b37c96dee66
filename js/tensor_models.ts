// Tensor models on λ-SOAP: SparseTensorGPR (symmetry-adapted sparse GPR,
// Grisafi et al., PRL 120, 036002 (2018)) and TensorLinearModel (ridge
// regression on the λ-SOAP block), for dipoles (a vector, λ = 1) and
// polarizabilities (a symmetric 3×3 tensor, λ = 0 ⊕ λ = 2), read from
// System.info and predicted in Cartesian form. The model, the fit, the
// conventions and the file format are described in docs/MODELS.md.
import { invalidParameter, outOfRange } from './errors';

import { readModelFile, readModelFileSync, writeModelFile, writeModelFileSync } from './model_files';
import type { SoapHypers } from './calculators';
import native from './native';
import type { TensorFitData, TensorPredictionData } from './native';
import { checkSignal, runQueued, throwIfAborted, type AbortSignalLike } from './schedule';
import { asSystem, describe, System, SystemInit } from './system';

type NativeTensorModel = InstanceType<typeof native.NativeTensorModel>;
type Systems = System | SystemInit | Array<System | SystemInit>;

/** What a tensor model learns: `'dipole'` (3 numbers, e.g. e·Å) or `'polarizability'` (a symmetric 3×3 tensor, 9 numbers row-major, e.g. Å³). */
export type TensorTargetName = 'dipole' | 'polarizability';

/** Options of `SparseTensorGPR.fit`. */
export interface SparseTensorGPRFitOptions {
  /** λ-SOAP (EquivariantPowerSpectrum) hyper-parameters, featomic schema; `basis.max_angular` ≥ 1 (dipole) or ≥ 1 with λ = 2 reachable (polarizability). */
  hypers: SoapHypers;
  /** What to learn. */
  target: TensorTargetName;
  /** Key of the tensor in `System.info` (default: the target's name). */
  key?: string;
  /** Sparse environments per centre species (a number, or `{Z: count}`), chosen by FPS (default) or at random (`seed`, default 0) on the invariant features. */
  sparse: { count: number | Record<number, number>; method?: 'fps' | 'random'; seed?: number };
  /** Scalar factor (ŝ·ŝ′)^(ζ−1) of the kernel: ζ an integer ≥ 1 (default 2; 1 is the linear λ-SOAP kernel). */
  kernel?: { zeta?: number };
  /** Noise per Cartesian component, in the target's unit (e·Å, Å³). */
  sigma: number;
  /** Added to the diagonal of K_MM (the kernel is dimensionless; default 1e-8). */
  jitter?: number;
  /**
   * Dipoles: add one partial charge per species, μ = Σ_i q_{Z_i} (r_i − r̄) + Σ_i μ_i (r̄ the mean position), fitted
   * jointly with the λ-SOAP weights (no prior on the charges; the gauge Σ_Z N_Z q_Z = 0 over the training atoms).
   * Default true for a dipole; must be false (or left out) for a polarizability. Needs non-periodic frames.
   */
  charges?: boolean;
  /** Cancels an asynchronous fit. */
  signal?: AbortSignalLike;
}

/** Options of `TensorLinearModel.fit`. */
export interface TensorLinearModelFitOptions {
  /** λ-SOAP hyper-parameters, featomic schema. */
  hypers: SoapHypers;
  /** What to learn. */
  target: TensorTargetName;
  /** Key of the tensor in `System.info` (default: the target's name). */
  key?: string;
  /** Ridge parameter ≥ 0 on ‖w‖² (residuals are divided by `sigma`). */
  regularizer: number;
  /** Noise per Cartesian component (default 1). */
  sigma?: number;
  /**
   * Dipoles: add one partial charge per species, μ = Σ_i q_{Z_i} (r_i − r̄) + Σ_i μ_i (r̄ the mean position), fitted
   * jointly with the λ-SOAP weights (no prior on the charges; the gauge Σ_Z N_Z q_Z = 0 over the training atoms).
   * Default true for a dipole; must be false (or left out) for a polarizability. Needs non-periodic frames.
   */
  charges?: boolean;
  /** Cancels an asynchronous fit. */
  signal?: AbortSignalLike;
}

/** Options of `predict`. */
export interface TensorPredictOptions {
  /** Also return each atom's contribution (they sum to the structure's tensor). */
  perAtom?: boolean;
  /** Cancels an asynchronous prediction. */
  signal?: AbortSignalLike;
}

/** Predicted Cartesian tensors. */
export interface TensorPrediction {
  /** One per structure: 3 numbers (vector) or 9 (3×3 row-major, symmetric). */
  tensors: Float64Array[];
  /** Per structure, n_atoms × 3 or n_atoms × 9 atomic contributions (with `perAtom`). */
  atoms?: Float64Array[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function checkKeys(what: string, o: object, allowed: readonly string[]): void {
  for (const key of Object.keys(o)) {
    if (!allowed.includes(key)) throw invalidParameter(`unknown ${what} option "${key}" (expected ${allowed.join(', ')})`);
  }
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

function checkTarget(t: unknown): TensorTargetName {
  if (t !== 'dipole' && t !== 'polarizability') throw outOfRange(`target = ${describe(t)} (expected 'dipole' or 'polarizability')`);
  return t;
}

function checkKey(key: unknown, target: TensorTargetName): string {
  if (key === undefined) return target;
  if (typeof key !== 'string' || key === '') throw invalidParameter(`key must be a non-empty string, got ${describe(key)}`);
  return key;
}

/**
 * The Cartesian tensor of every system, from `System.info[key]`: 3 numbers for a dipole, 9 (flat or 3×3 nested) for a
 * polarizability. Throws naming the system, the key and what is wrong.
 */
export function readTensorTargets(systems: System[], target: TensorTargetName, key: string): Float64Array[] {
  const size = target === 'dipole' ? 3 : 9;
  const unit = target === 'dipole' ? 'a vector' : 'a 3×3 tensor, row-major';
  return systems.map((s, k) => {
    const v = s.info[key];
    if (v === undefined) throw outOfRange(`systems[${k}].info.${key} is missing (the ${target} target)`);
    const flat = flatNumbers(v);
    if (flat === undefined || flat.length !== size) throw outOfRange(`systems[${k}].info.${key} = ${describe(v)} (expected ${size} numbers: ${unit})`);
    const bad = flat.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw outOfRange(`systems[${k}].info.${key}[${bad}] = ${flat[bad]} (expected a finite number)`);
    return Float64Array.from(flat);
  });
}

function checkCharges(charges: unknown, target: TensorTargetName): boolean {
  if (charges === undefined) return target === 'dipole';
  if (typeof charges !== 'boolean') throw invalidParameter(`charges must be a boolean, got ${describe(charges)}`);
  if (charges && target !== 'dipole') throw outOfRange(`charges = true: the charge term is for dipoles, not a ${target} (leave charges out or give false)`);
  return charges;
}

function hypersText(hypers: unknown): string {
  if (!isObject(hypers)) throw invalidParameter(`hypers must be λ-SOAP hyper-parameters (an object), got ${describe(hypers)}`);
  return JSON.stringify(hypers);
}

function gprData(systems: System[], options: SparseTensorGPRFitOptions): TensorFitData {
  if (!isObject(options)) throw invalidParameter(`SparseTensorGPR.fit options must be an object, got ${describe(options)}`);
  checkKeys('SparseTensorGPR.fit', options, ['hypers', 'target', 'key', 'sparse', 'kernel', 'sigma', 'jitter', 'charges', 'signal']);
  const target = checkTarget(options.target);
  const key = checkKey(options.key, target);
  const sparse = options.sparse as unknown;
  if (!isObject(sparse)) throw invalidParameter(`sparse must be an object {count, method?, seed?}, got ${describe(sparse)}`);
  checkKeys('sparse', sparse, ['count', 'method', 'seed']);
  let count = 0;
  const countSpecies: number[] = [];
  const countValues: number[] = [];
  if (isObject(sparse.count)) {
    for (const [z, v] of Object.entries(sparse.count)) {
      if (!/^-?\d+$/.test(z)) throw invalidParameter(`sparse.count key "${z}" is not an atomic number`);
      countSpecies.push(Number(z));
      countValues.push(finiteNumber(`sparse.count[${z}]`, v, { integer: true, positive: true }));
    }
  } else {
    count = finiteNumber('sparse.count', sparse.count, { integer: true, positive: true });
  }
  const method = sparse.method ?? 'fps';
  if (method !== 'fps' && method !== 'random') throw outOfRange(`sparse.method = ${describe(method)} (expected 'fps' or 'random')`);
  const kernel = (options.kernel ?? {}) as unknown;
  if (!isObject(kernel)) throw invalidParameter(`kernel must be an object {zeta}, got ${describe(kernel)}`);
  checkKeys('kernel', kernel, ['zeta']);
  const hypers = hypersText(options.hypers);
  const sigma = finiteNumber('sigma', options.sigma, { positive: true });
  return {
    kind: 'sparse_tensor_gpr',
    target,
    hypers,
    values: readTensorTargets(systems, target, key),
    key,
    sigma,
    count,
    countSpecies,
    countValues,
    method,
    seed: sparse.seed === undefined ? undefined : finiteNumber('sparse.seed', sparse.seed, { integer: true, min: 0 }),
    zeta: kernel.zeta === undefined ? 2 : finiteNumber('kernel.zeta', kernel.zeta, { integer: true, positive: true }),
    jitter: options.jitter === undefined ? undefined : finiteNumber('jitter', options.jitter, { min: 0 }),
    charges: checkCharges(options.charges, target),
  };
}

function linearData(systems: System[], options: TensorLinearModelFitOptions): TensorFitData {
  if (!isObject(options)) throw invalidParameter(`TensorLinearModel.fit options must be an object, got ${describe(options)}`);
  checkKeys('TensorLinearModel.fit', options, ['hypers', 'target', 'key', 'regularizer', 'sigma', 'charges', 'signal']);
  const target = checkTarget(options.target);
  const key = checkKey(options.key, target);
  const hypers = hypersText(options.hypers);
  return {
    kind: 'tensor_linear',
    target,
    hypers,
    values: readTensorTargets(systems, target, key),
    key,
    sigma: options.sigma === undefined ? 1 : finiteNumber('sigma', options.sigma, { positive: true }),
    regularizer: finiteNumber('regularizer', options.regularizer, { min: 0 }),
    charges: checkCharges(options.charges, target),
  };
}

function checkPredictOptions(options: unknown): TensorPredictOptions {
  if (options === undefined) return {};
  if (!isObject(options)) throw invalidParameter(`predict options must be an object, got ${describe(options)}`);
  checkKeys('predict', options, ['perAtom', 'signal']);
  if (options.perAtom !== undefined && typeof options.perAtom !== 'boolean') throw invalidParameter(`predict option perAtom must be a boolean, got ${describe(options.perAtom)}`);
  return options as TensorPredictOptions;
}

function toPrediction(p: TensorPredictionData, o: TensorPredictOptions): TensorPrediction {
  return o.perAtom ? { tensors: p.tensors, atoms: p.atoms ?? [] } : { tensors: p.tensors };
}

async function runFit(systems: System[], data: TensorFitData, signal: AbortSignalLike | undefined): Promise<NativeTensorModel> {
  const token = signal ? new native.CancelToken() : undefined;
  return runQueued(() => native.NativeTensorModel.fit(systems.map((s) => s.data()), data, token), signal, () => token?.cancel());
}

/** Model kinds of tensor `.acdc` files. */
export const TENSOR_MODEL_KINDS = ['sparse_tensor_gpr', 'tensor_linear'] as const;

/** The `kind` recorded in a `.acdc` file's header (after checking its magic bytes and checksum); `what` labels errors. */
export function modelFileKind(bytes: Uint8Array, what = 'model buffer'): string {
  return native.modelFileKind(bytes, what);
}

function fromNative(n: NativeTensorModel): SparseTensorGPR | TensorLinearModel {
  return n.kind === 'tensor_linear' ? new TensorLinearModel(n) : new SparseTensorGPR(n);
}

function parse(bytes: Uint8Array, what: string, want?: (typeof TENSOR_MODEL_KINDS)[number]): SparseTensorGPR | TensorLinearModel {
  const kind = modelFileKind(bytes, what);
  if (!(TENSOR_MODEL_KINDS as readonly string[]).includes(kind)) {
    throw invalidParameter(`${what}: holds a ${kind} energy model, not a tensor model (load it with SparseGPR.load / LinearModel.load / loadModel)`);
  }
  if (want !== undefined && kind !== want) {
    throw invalidParameter(`${what}: holds a ${kind} model, not ${want} (use ${kind === 'tensor_linear' ? 'TensorLinearModel' : 'SparseTensorGPR'}.load or loadTensorModel)`);
  }
  return fromNative(native.NativeTensorModel.fromBytes(bytes, what));
}

const natives = new WeakMap<object, NativeTensorModel>();

/** What SparseTensorGPR and TensorLinearModel share: predict, save, and the model's description. */
export abstract class TensorModel {
  readonly #native: NativeTensorModel;

  /** @internal */
  constructor(n: NativeTensorModel) {
    this.#native = n;
    natives.set(this, n);
  }

  /** 'sparse_tensor_gpr' or 'tensor_linear'. */
  get kind(): 'sparse_tensor_gpr' | 'tensor_linear' {
    return this.#native.kind as 'sparse_tensor_gpr' | 'tensor_linear';
  }

  /** 'dipole' or 'polarizability'. */
  get target(): TensorTargetName {
    return this.#native.target as TensorTargetName;
  }

  /** The λ-SOAP hyper-parameters the model was fitted with. */
  get hypers(): SoapHypers {
    return JSON.parse(this.#native.hypers) as SoapHypers;
  }

  /** Species the model knows, sorted atomic numbers. */
  get species(): number[] {
    return this.#native.species;
  }

  /**
   * The fitted partial charges of the dipole charge term, in e, one per species in the order of `species` (in the gauge
   * Σ_Z N_Z q_Z = 0 over the training atoms); null for a model without the charge term.
   */
  get charges(): number[] | null {
    return this.#native.charges ?? null;
  }

  /** Facts about the fit: sigma, target, charges (whether the charge term is on), sparse selection, number of structures. */
  get fitInfo(): Record<string, unknown> {
    return JSON.parse(this.#native.meta) as Record<string, unknown>;
  }

  /** Predicts off the event loop: one Cartesian tensor per structure (3 or 9 numbers), and atomic contributions with `perAtom`. */
  async predict(systems: Systems, options?: TensorPredictOptions): Promise<TensorPrediction> {
    const o = checkPredictOptions(options);
    const signal = checkSignal(o.signal);
    throwIfAborted(signal);
    const data = toList(systems).map((s) => s.data());
    const token = signal ? new native.CancelToken() : undefined;
    const p = await runQueued(() => this.#native.predict(data, !!o.perAtom, token), signal, () => token?.cancel());
    return toPrediction(p, o);
  }

  /** Predicts synchronously. */
  predictSync(systems: Systems, options?: TensorPredictOptions): TensorPrediction {
    const o = checkPredictOptions(options);
    return toPrediction(this.#native.predictSync(toList(systems).map((s) => s.data()), !!o.perAtom), o);
  }

  /** The bytes of the `.acdc` model file. */
  toBuffer(): Uint8Array {
    return this.#native.toBytes();
  }

  /** Writes the model to `path` (written to a temporary name, then renamed). */
  async save(path: string): Promise<void> {
    await writeModelFile(path, this.toBuffer());
  }

  /** Writes the model to `path` synchronously. */
  saveSync(path: string): void {
    writeModelFileSync(path, this.toBuffer());
  }
}

/**
 * Symmetry-adapted sparse GPR on λ-SOAP (Grisafi, Wilkins, Csányi, Ceriotti, PRL 120, 036002 (2018)): a dipole
 * (λ = 1) or a polarizability (λ = 0 ⊕ λ = 2) as a sum of atomic contributions, with the kernel
 * K_{μμ′}(i, j) = [P̂(i)P̂(j)ᵀ]_{μμ′} (ŝ(i)·ŝ(j))^(ζ−1); predictions rotate with the structure. Dipoles also get
 * per-species partial charges, μ = Σ_i q_{Z_i} (r_i − r̄) + Σ_i μ_i (Veit et al., J. Chem. Phys. 153, 024113 (2020);
 * `charges: false` turns them off).
 *
 * @example
 * const frames = readXyzSync('molecules.xyz');   // info: dipole="x y z"
 * const model = SparseTensorGPR.fitSync(frames, { hypers, target: 'dipole', sparse: { count: 50 }, sigma: 0.01 });
 * const { tensors } = model.predictSync(frames);   // Float64Array(3) per frame
 */
export class SparseTensorGPR extends TensorModel {
  /** Fits off the event loop; `options.signal` cancels it. */
  static async fit(systems: Systems, options: SparseTensorGPRFitOptions): Promise<SparseTensorGPR> {
    const list = toList(systems);
    const data = gprData(list, options);
    return new SparseTensorGPR(await runFit(list, data, checkSignal(options.signal)));
  }

  /** Fits synchronously. */
  static fitSync(systems: Systems, options: SparseTensorGPRFitOptions): SparseTensorGPR {
    const list = toList(systems);
    return new SparseTensorGPR(native.NativeTensorModel.fitSync(list.map((s) => s.data()), gprData(list, options)));
  }

  /** Reads a `.acdc` file holding a SparseTensorGPR. */
  static async load(path: string): Promise<SparseTensorGPR> {
    return parse(await readModelFile(path), path, 'sparse_tensor_gpr') as SparseTensorGPR;
  }

  /** Reads a `.acdc` file holding a SparseTensorGPR, synchronously. */
  static loadSync(path: string): SparseTensorGPR {
    return parse(readModelFileSync(path), path, 'sparse_tensor_gpr') as SparseTensorGPR;
  }

  /** 'sparse_tensor_gpr'. */
  override get kind(): 'sparse_tensor_gpr' {
    return 'sparse_tensor_gpr';
  }

  /** Kernel exponent ζ. */
  get zeta(): number {
    return natives.get(this)!.zeta;
  }

  /** Sparse environments per species, in the order of `species`. */
  get sparseCounts(): number[] {
    return natives.get(this)!.counts;
  }
}

/**
 * Linear regression on the raw λ-SOAP block: y_μ = Σ_i Σ_q P_μq(i) w^{Z_i}_q (+ a constant per atom for the trace;
 * + Σ_i q_{Z_i} (r_i − r̄) for a dipole unless `charges: false`).
 */
export class TensorLinearModel extends TensorModel {
  /** Fits off the event loop; `options.signal` cancels it. */
  static async fit(systems: Systems, options: TensorLinearModelFitOptions): Promise<TensorLinearModel> {
    const list = toList(systems);
    const data = linearData(list, options);
    return new TensorLinearModel(await runFit(list, data, checkSignal(options.signal)));
  }

  /** Fits synchronously. */
  static fitSync(systems: Systems, options: TensorLinearModelFitOptions): TensorLinearModel {
    const list = toList(systems);
    return new TensorLinearModel(native.NativeTensorModel.fitSync(list.map((s) => s.data()), linearData(list, options)));
  }

  /** Reads a `.acdc` file holding a TensorLinearModel. */
  static async load(path: string): Promise<TensorLinearModel> {
    return parse(await readModelFile(path), path, 'tensor_linear') as TensorLinearModel;
  }

  /** Reads a `.acdc` file holding a TensorLinearModel, synchronously. */
  static loadSync(path: string): TensorLinearModel {
    return parse(readModelFileSync(path), path, 'tensor_linear') as TensorLinearModel;
  }

  /** 'tensor_linear'. */
  override get kind(): 'tensor_linear' {
    return 'tensor_linear';
  }
}

/** Reads a tensor `.acdc` file, whichever tensor kind it holds. */
export async function loadTensorModel(path: string): Promise<SparseTensorGPR | TensorLinearModel> {
  return parse(await readModelFile(path), path);
}

/** Reads a tensor `.acdc` file synchronously. */
export function loadTensorModelSync(path: string): SparseTensorGPR | TensorLinearModel {
  return parse(readModelFileSync(path), path);
}

/** Reads a tensor model from the bytes of a `.acdc` file; `name` labels errors. */
export function tensorModelFromBuffer(bytes: Uint8Array, name = 'model buffer'): SparseTensorGPR | TensorLinearModel {
  if (!(bytes instanceof Uint8Array)) throw invalidParameter(`model bytes must be a Uint8Array or Buffer, got ${describe(bytes)}`);
  return parse(bytes, name);
}
