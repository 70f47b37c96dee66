import { invalidParameter, outOfRange, parseError, withCode } from './errors';
import native from './native';
import { checkSignal, runQueued, throwIfAborted, type AbortSignalLike } from './schedule';
import { locateJsonPath, splitJsonPath } from './json_locate';
import type { ComputeOptionsData, LabelsData } from './native';
import { asSystem, describe, System, SystemInit } from './system';
import { Labels, TensorMap } from './tensor';

/** `cutoff.smoothing`: how the density goes to zero at the cutoff. */
export type Smoothing = { type: 'Step' } | { type: 'ShiftedCosine'; /** Å */ width: number };

/** `density.scaling`: s(r) = rate / (rate + (r/scale)^exponent). */
export interface Willatt2018Scaling {
  type: 'Willatt2018';
  /** Å */
  scale: number;
  rate: number;
  exponent: number;
}

/** featomic's `cutoff` section. */
export interface CutoffHypers {
  /** Cutoff radius in Å. */
  radius: number;
  smoothing: Smoothing;
}

/**
 * Alchemical compression of the neighbour types (Willatt, Musil and
 * Ceriotti, PCCP 20, 29661 (2018)): neighbour j of element a contributes to
 * pseudo-element channel b with weight `coupling[b][types.indexOf(a)]`.
 * Keys then carry `pseudo_type` (0…B−1) instead of `neighbor_type`.
 */
export interface AlchemicalHypers {
  /** The elements (atomic numbers) of the columns of `coupling`. */
  types: number[];
  /** B rows (pseudo-elements) × S columns (elements). */
  coupling: number[][];
}

/** featomic's `density` section: a Gaussian (or, for tabulated bases, a Dirac delta) on each atom. */
export type DensityHypers =
  | {
      type: 'Gaussian';
      /** Gaussian width σ in Å. */
      width: number;
      /** Weight of the centre's own Gaussian (default 1). */
      center_atom_weight?: number;
      scaling?: Willatt2018Scaling | null;
      alchemical?: AlchemicalHypers;
    }
  | {
      /** Point density; the radial integrals are in a `Tabulated` basis. */
      type: 'DiracDelta';
      center_atom_weight?: number;
      scaling?: Willatt2018Scaling | null;
      alchemical?: AlchemicalHypers;
    };

/** One node of a tabulated radial basis (featomic's `Tabulated`). */
export interface SplinePointHypers {
  /** Distance in Å. */
  position: number;
  /** Radial integral of every function of the channel at `position`. */
  values: number[];
  /** Their derivatives, Å⁻¹. */
  derivatives: number[];
}

/** The radial basis of one channel of an `Explicit` basis. */
export type ExplicitRadialHypers = GtoRadialHypers | { type: 'Tabulated'; points: SplinePointHypers[] };

/**
 * The expansion basis: featomic's TensorProduct (Gto), the ragged
 * Laplacian-eigenstate basis, or featomic's Explicit basis (a radial basis per
 * angular channel, keys "0", "1", …).
 */
export type BasisHypers =
  | {
      type: 'TensorProduct';
      /** Largest angular channel (inclusive). */
      max_angular: number;
      radial: GtoRadialHypers | GapRadialHypers;
      /** Spline accuracy (default 1e-8); null evaluates the radial integrals exactly. */
      spline_accuracy?: number | null;
    }
  | {
      type: 'LaplacianEigenstate';
      /** Largest radial index at l = 0 (inclusive); higher l get fewer functions. */
      max_radial: number;
      /** Largest angular channel (default: every channel with a function). */
      max_angular?: number;
      /** Basis radius in Å (default: the cutoff radius). */
      radius?: number;
      /** Accuracy of the tabulated radial integrals (default 1e-8). */
      spline_accuracy?: number | null;
    }
  | { type: 'Explicit'; by_angular: Record<string, ExplicitRadialHypers>; spline_accuracy?: number | null };

/** GTO radial basis with `max_radial + 1` functions. */
export interface GtoRadialHypers {
  type: 'Gto';
  /** Largest radial index (inclusive). */
  max_radial: number;
  /** Radius of the basis in Å (default: the cutoff radius). */
  radius?: number;
}

/**
 * GAP's SOAP radial basis (QUIP/GAP `soap`, its default equispaced
 * Gaussians): `max_radial + 1` Gaussians of width `density.width` (GAP's
 * `atom_sigma`, Å), orthonormalised as GAP does, so GAP's `n_max` is
 * `max_radial + 1`. With a Gaussian density, a normalised power spectrum on
 * this basis has exactly GAP's SOAP kernel. Not part of featomic's schema.
 */
export interface GapRadialHypers {
  type: 'Gap';
  /** Largest radial index (inclusive): GAP's n_max − 1; at most 23. */
  max_radial: number;
}

/** Hyper-parameters of SphericalExpansion and SoapPowerSpectrum (featomic 0.6 schema). */
export interface SoapHypers {
  cutoff: CutoffHypers;
  density: DensityHypers;
  basis: BasisHypers;
}

/** Hyper-parameters of SoapRadialSpectrum (featomic 0.6 schema). */
export interface RadialSpectrumHypers {
  cutoff: CutoffHypers;
  density: DensityHypers;
  /** A radial basis, or a full expansion basis of which the l = 0 channel is used. */
  basis:
    | {
        radial: GtoRadialHypers | GapRadialHypers;
        /** Spline accuracy (default 1e-8); null evaluates the radial integrals exactly. */
        spline_accuracy?: number | null;
      }
    | BasisHypers;
}

/** Gradients a calculator can compute. */
export type GradientName = 'positions' | 'strain';

/** A selection of labels: a Labels object, `{names, values}`, or a list of `{name: value}` rows. */
export type LabelsSelection = Labels | { names: string[]; values: ArrayLike<number> | ArrayLike<ArrayLike<number>> } | Record<string, number>[];

/** Options of `compute` / `computeSync`. */
export interface ComputeOptions {
  /** "positions" (∂/∂x, eV-free: per Å) and/or "strain" (∂/∂ε). */
  gradients?: GradientName[];
  /** Only compute blocks whose keys match one of these rows, e.g. `[{ center_type: 8 }]`. */
  selectedKeys?: LabelsSelection;
  /** Only compute these centres, e.g. `[{ system: 0, atom: 3 }]` or `[{ system: 1 }]`. */
  selectedSamples?: LabelsSelection;
  /**
   * Memory budget of this computation: bytes, or a size such as `'4G'`,
   * `'512M'` or `'25%'` (of the machine's memory). Work estimated to need
   * more (neighbour pairs, expansion coefficients, gradient rows, outputs)
   * is refused with an Error before anything is allocated. Default:
   * `ACDC_MAX_MEMORY`, else half of the memory available to the process.
   */
  maxMemory?: number | string;
  /**
   * Cancels an asynchronous `compute`: it stops between centres (within
   * tens of milliseconds) and rejects with the signal's reason (an
   * `AbortError`). Ignored by `computeSync`.
   */
  signal?: AbortSignalLike;
}

function toLabelsData(field: string, s: LabelsSelection): LabelsData {
  if (s instanceof Labels) return s.toData();
  if (Array.isArray(s)) {
    if (s.length === 0) throw invalidParameter(`${field} is empty (select at least one row, or leave it out)`);
    const names = Object.keys(s[0]);
    const rows = s.map((row, r) => {
      if (row === null || typeof row !== 'object') throw invalidParameter(`${field}[${r}] must be an object of integers, got ${describe(row)}`);
      const keys = Object.keys(row);
      if (keys.length !== names.length || !names.every((n) => n in row)) {
        throw invalidParameter(`${field}[${r}] has keys ${keys.join(', ')} but ${field}[0] has ${names.join(', ')}`);
      }
      return names.map((n) => row[n]);
    });
    return new Labels(names, rows).toData();
  }
  if (s !== null && typeof s === 'object' && 'names' in s && 'values' in s) return new Labels(s.names, s.values).toData();
  throw invalidParameter(`${field} must be Labels, {names, values} or an array of rows, got ${describe(s)}`);
}

const COMPUTE_OPTIONS = ['gradients', 'selectedKeys', 'selectedSamples', 'maxMemory', 'signal'];

/** @internal Converts a selection of labels for the native binding. */
export function selectionData(field: string, s: LabelsSelection): LabelsData {
  return toLabelsData(field, s);
}

function toOptions(options: ComputeOptions | undefined, extra: readonly string[] = []): ComputeOptionsData | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object') throw invalidParameter(`options must be an object, got ${describe(options)}`);
  const allowed = [...COMPUTE_OPTIONS, ...extra];
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw invalidParameter(`unknown compute option "${key}" (expected ${allowed.join(', ')})`);
    }
  }
  const { gradients, selectedKeys, selectedSamples, maxMemory } = options;
  if (maxMemory !== undefined && !((typeof maxMemory === 'number' && Number.isFinite(maxMemory) && maxMemory > 0) || typeof maxMemory === 'string')) {
    throw invalidParameter(`maxMemory must be a positive number of bytes or a size such as '4G', got ${describe(maxMemory)}`);
  }
  if (gradients !== undefined && (!Array.isArray(gradients) || !gradients.every((g) => typeof g === 'string'))) {
    throw invalidParameter(`gradients must be an array of "positions" / "strain", got ${describe(gradients)}`);
  }
  const neighborsToProperties = (options as EquivariantComputeOptions).neighborsToProperties;
  if (neighborsToProperties !== undefined && typeof neighborsToProperties !== 'boolean') {
    throw invalidParameter(`neighborsToProperties must be a boolean, got ${describe(neighborsToProperties)}`);
  }
  return {
    gradients,
    selectedKeys: selectedKeys === undefined ? undefined : toLabelsData('selectedKeys', selectedKeys),
    selectedSamples: selectedSamples === undefined ? undefined : toLabelsData('selectedSamples', selectedSamples),
    maxMemory: maxMemory === undefined ? undefined : typeof maxMemory === 'number' ? String(Math.floor(maxMemory)) : maxMemory,
    neighborsToProperties,
  };
}

function toSystems(systems: System | SystemInit | Array<System | SystemInit>) {
  const list = Array.isArray(systems) ? systems : [systems];
  return list.map((s, k) => asSystem(s, `systems[${k}]`).data());
}

let pendingJsonText: string | undefined;
// Set by fromJsonAsync: the constructor records what it would build instead of building it.
let deferNative = false;
let deferredBuild: { name: string; text: string } | undefined;

/** Adds the line and column of the offending key (the error's `path`) in `text` to a hyper-parameter error. */
function withJsonLocation(e: unknown, text: string): unknown {
  if (!(e instanceof Error)) return e;
  const at = (e as { path?: unknown }).path;
  if (typeof at !== 'string') return e;
  const where = locateJsonPath(text, splitJsonPath(at));
  if (!where) return e;
  e.message += ` (line ${where.line}, column ${where.column})`;
  return e;
}

/**
 * JSON has no NaN or infinity: JSON.stringify would turn them into null and
 * the core would see a type error far from the cause. Name the key instead.
 */
function checkFiniteNumbers(name: string, value: unknown, path: string): void {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw withCode(outOfRange(`${name} hyper-parameters: ${path} must be a finite number, got ${value}`), 'ACDC_INVALID_PARAMETER', { path });
  } else if (Array.isArray(value)) {
    value.forEach((v, k) => checkFiniteNumbers(name, v, `${path}[${k}]`));
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) checkFiniteNumbers(name, v, path ? `${path}.${k}` : k);
  }
}

/** One calculator of the core's registry: the single list every layer reads. */
export interface CalculatorInfo {
  /** Stable name, as `calculator.name` gives it. */
  name: string;
  /** `soap`: featomic's hyper-parameters and the SOAP engine; `classic`: DScribe-style descriptors. */
  family: 'soap' | 'classic';
  /** Rows per atom (`invariant`), blocks that rotate (`equivariant`), or one row per structure (`per_structure`). */
  output: 'invariant' | 'equivariant' | 'per_structure';
  /** Gradients `compute` can give. */
  gradients: GradientName[];
  /** Whether the output fits one dense `.npy` design matrix (columns fixed by the species). */
  dense: boolean;
  /** The native design-row path of `.npy` output: neighbour-species pairs or single species as columns; null without one. */
  designRows: 'neighbor_pairs' | 'neighbor_singles' | null;
  /** Hyper-parameters used when none are given (JSON text); null: they must be given. */
  defaultHypers: string | null;
  /** A short example of hyper-parameters, for messages. */
  exampleHypers: string;
}

/**
 * The calculators of the core, in registry order (the first is the default
 * of `acdc featurize` and `acdc serve`).
 *
 * @example
 * calculatorRegistry().filter((c) => c.dense).map((c) => c.name); // those `.npy` output takes
 */
export function calculatorRegistry(): CalculatorInfo[] {
  return native.calculatorRegistry().map((e) => ({
    name: e.name,
    family: e.family as CalculatorInfo['family'],
    output: e.output as CalculatorInfo['output'],
    gradients: e.gradients as GradientName[],
    dense: e.dense,
    designRows: (e.designRows ?? null) as CalculatorInfo['designRows'],
    defaultHypers: e.defaultHypers ?? null,
    exampleHypers: e.exampleHypers,
  }));
}

/** What every calculator shares: hyper-parameters in, TensorMap out. */
export abstract class CalculatorBase<H, O extends ComputeOptions = ComputeOptions> {
  #native: InstanceType<typeof native.NativeCalculator>;
  readonly #extraOptions: readonly string[];
  /** The hyper-parameters, as given. */
  readonly hypers: H;

  /** `extra`: calculator-specific compute options; `json`: what the native side parses, when not just the hypers. */
  protected constructor(name: string, hypers: H, extra: readonly string[] = [], json?: object) {
    if (hypers === null || typeof hypers !== 'object') throw invalidParameter(`${name} hyper-parameters must be an object, got ${describe(hypers)}`);
    checkFiniteNumbers(name, hypers, '');
    this.hypers = hypers;
    // JSON text given to fromJson goes to the core verbatim, so that its
    // errors give lines and columns of the user's own file.
    this.#extraOptions = extra;
    const text = json === undefined && pendingJsonText !== undefined ? pendingJsonText : JSON.stringify(json ?? hypers);
    pendingJsonText = undefined;
    if (deferNative) {
      deferredBuild = { name, text };
      this.#native = undefined as never; // set by fromJsonAsync before the object is handed out
    } else this.#native = new native.NativeCalculator(name, text);
  }

  /**
   * {@link fromJson} off the event loop: the tables of a large basis (high
   * `max_angular` / `max_radial`, tight `spline_accuracy`) take seconds to
   * build, on the native thread pool here. `options.signal` rejects the
   * promise (the build itself runs to its end, then is dropped).
   *
   * @example
   * const soap = await SoapPowerSpectrum.fromJsonAsync(fs.readFileSync('hypers.json', 'utf8'));
   */
  static async fromJsonAsync<T>(this: new (hypers: never) => T, text: string, options: { signal?: AbortSignalLike } = {}): Promise<T> {
    if (typeof text !== 'string') throw invalidParameter(`fromJsonAsync expects JSON text, got ${describe(text)}`);
    const signal = checkSignal(options?.signal);
    throwIfAborted(signal);
    let hypers: unknown;
    try {
      hypers = JSON.parse(text);
    } catch (e) {
      throw parseError(`hyper-parameters are not valid JSON: ${(e as Error).message}`);
    }
    let calc: T;
    let build: { name: string; text: string };
    pendingJsonText = text;
    deferNative = true;
    try {
      calc = new this(hypers as never);
      build = deferredBuild!;
    } catch (e) {
      throw withJsonLocation(e, text);
    } finally {
      pendingJsonText = undefined;
      deferNative = false;
      deferredBuild = undefined;
    }
    let built: InstanceType<typeof native.NativeCalculator>;
    try {
      built = await runQueued(() => native.buildCalculator(build.name, build.text), signal);
    } catch (e) {
      if (signal?.aborted) throw e;
      throw withJsonLocation(e, text);
    }
    (calc as unknown as CalculatorBase<unknown>).#native = built;
    return calc;
  }

  /**
   * Builds the calculator from JSON text (e.g. the contents of a hypers.json
   * file). Errors name the JSON path of the offending key and, for text over
   * several lines, its line and column.
   *
   * @example
   * const soap = SoapPowerSpectrum.fromJson(fs.readFileSync('hypers.json', 'utf8'));
   */
  static fromJson<T>(this: new (hypers: never) => T, text: string): T {
    if (typeof text !== 'string') throw invalidParameter(`fromJson expects JSON text, got ${describe(text)}`);
    let hypers: unknown;
    try {
      hypers = JSON.parse(text);
    } catch (e) {
      throw parseError(`hyper-parameters are not valid JSON: ${(e as Error).message}`);
    }
    pendingJsonText = text;
    try {
      return new this(hypers as never);
    } catch (e) {
      throw withJsonLocation(e, text);
    } finally {
      pendingJsonText = undefined;
    }
  }

  /**
   * {@link fromJson} under the name every blocking form has (`xSync`); the
   * bare name stays blocking, as `new X(hypers)` is, and
   * {@link fromJsonAsync} is the Promise form.
   */
  static fromJsonSync<T>(this: new (hypers: never) => T, text: string): T {
    return (this as unknown as { fromJson(text: string): T }).fromJson(text);
  }

  /** Stable name, e.g. "soap_power_spectrum". */
  get name(): string {
    return this.#native.name;
  }

  /** The native calculator (for the fused `.npy` path of `acdc featurize`). @internal */
  nativeCalculator(): InstanceType<typeof native.NativeCalculator> {
    return this.#native;
  }

  /** Computes off the event loop (the inputs are copied first). */
  async compute(systems: System | SystemInit | Array<System | SystemInit>, options?: O): Promise<TensorMap> {
    const signal = checkSignal(options?.signal);
    throwIfAborted(signal);
    const data = toSystems(systems);
    const nativeOptions = toOptions(options, this.#extraOptions);
    const token = signal ? new native.CancelToken() : undefined;
    const result = await runQueued(() => this.#native.compute(data, nativeOptions, token), signal, () => token?.cancel());
    return TensorMap.fromData(result);
  }

  /** Computes on the calling thread (for scripts). */
  computeSync(systems: System | SystemInit | Array<System | SystemInit>, options?: O): TensorMap {
    return TensorMap.fromData(this.#native.computeSync(toSystems(systems), toOptions(options, this.#extraOptions)));
  }

  /** The keys the calculator produces for these systems. */
  keys(systems: System | SystemInit | Array<System | SystemInit>): Labels {
    return Labels.fromData(this.#native.keys(toSystems(systems)));
  }
}

/**
 * Spherical expansion ⟨a n l m|ρ_i⟩ of the neighbour density (featomic's
 * `SphericalExpansion`). Keys: o3_lambda, o3_sigma, center_type, neighbor_type.
 *
 * @example
 * const se = new SphericalExpansion({
 *   cutoff: { radius: 5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
 *   density: { type: 'Gaussian', width: 0.3 },
 *   basis: { type: 'TensorProduct', max_angular: 4, radial: { type: 'Gto', max_radial: 6 } },
 * });
 * const tm = se.computeSync(system);
 */
export class SphericalExpansion extends CalculatorBase<SoapHypers> {
  /** The core's name of this calculator (its registry entry). */
  static readonly calculatorName = 'spherical_expansion';

  constructor(hypers: SoapHypers) {
    super(SphericalExpansion.calculatorName, hypers);
  }
}

/**
 * SOAP power spectrum (featomic's `SoapPowerSpectrum`). Keys: center_type,
 * neighbor_1_type, neighbor_2_type; properties: l, n_1, n_2.
 *
 * @example
 * const soap = new SoapPowerSpectrum({
 *   cutoff: { radius: 5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
 *   density: { type: 'Gaussian', width: 0.3 },
 *   basis: { type: 'TensorProduct', max_angular: 6, radial: { type: 'Gto', max_radial: 7 } },
 * });
 * const tm = await soap.compute(systems, { gradients: ['positions'] });
 */
export class SoapPowerSpectrum extends CalculatorBase<SoapHypers> {
  /** The core's name of this calculator (its registry entry). */
  static readonly calculatorName = 'soap_power_spectrum';

  constructor(hypers: SoapHypers) {
    super(SoapPowerSpectrum.calculatorName, hypers);
  }
}

/**
 * SOAP radial spectrum: the l = 0 expansion (featomic's `SoapRadialSpectrum`).
 * Keys: center_type, neighbor_type; properties: n.
 */
export class SoapRadialSpectrum extends CalculatorBase<RadialSpectrumHypers> {
  /** The core's name of this calculator (its registry entry). */
  static readonly calculatorName = 'soap_radial_spectrum';

  constructor(hypers: RadialSpectrumHypers) {
    super(SoapRadialSpectrum.calculatorName, hypers);
  }
}

/** Options of `EquivariantPowerSpectrum.compute` / `computeSync`. */
export interface EquivariantComputeOptions extends ComputeOptions {
  /**
   * Move the neighbour types from the keys into the properties: keys
   * (o3_lambda, o3_sigma, center_type), properties (l_1, l_2,
   * neighbor_1_type, n_1, neighbor_2_type, n_2). Default false: keys
   * (o3_lambda, o3_sigma, center_type, neighbor_1_type, neighbor_2_type),
   * properties (l_1, l_2, n_1, n_2).
   */
  neighborsToProperties?: boolean;
}

/** Constructor options of `EquivariantPowerSpectrum`. */
export interface EquivariantPowerSpectrumOptions {
  /**
   * Neighbour types of the property axis with `neighborsToProperties`
   * (atomic numbers; zeros for absent ones), so every block and every batch
   * has the same properties. Default: the types each centre type sees.
   */
  neighborTypes?: number[];
}

/**
 * λ-SOAP, the equivariant power spectrum (featomic's
 * `clebsch_gordan.EquivariantPowerSpectrum`): Clebsch–Gordan products of two
 * spherical expansions, Σ Ĉ^{l1 l2 λ}_{m1 m2 μ} ⟨a n1 l1 m1|ρ⟩⟨b n2 l2 m2|ρ⟩,
 * l1 ≤ l2, o3_sigma = (−1)^(l1+l2+λ); components [o3_mu]. Each block rotates
 * with the real Wigner matrix D^λ. Position and strain gradients are analytic.
 */
export class EquivariantPowerSpectrum extends CalculatorBase<SoapHypers, EquivariantComputeOptions> {
  /** The core's name of this calculator (its registry entry). */
  static readonly calculatorName = 'equivariant_power_spectrum';

  /** The neighbour types given to the constructor, if any. */
  readonly neighborTypes?: number[];

  constructor(hypers: SoapHypers, options: EquivariantPowerSpectrumOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalidParameter(`options must be an object, got ${describe(options)}`);
    const { neighborTypes } = options;
    if (neighborTypes !== undefined && (!Array.isArray(neighborTypes) || !neighborTypes.every((t) => Number.isInteger(t)))) {
      throw invalidParameter(`neighborTypes must be an array of integers, got ${describe(neighborTypes)}`);
    }
    const json = neighborTypes === undefined || hypers === null || typeof hypers !== 'object' ? undefined : { ...hypers, neighbor_types: neighborTypes };
    super(EquivariantPowerSpectrum.calculatorName, hypers, ['neighborsToProperties'], json);
    this.neighborTypes = neighborTypes;
  }
}

/**
 * SOAP bispectrum: the ν = 3 rotational invariants (o3_lambda = 0,
 * o3_sigma = +1 blocks of `DensityCorrelations` with n_correlations = 2 on the
 * spherical expansion). Keys: center_type; properties: l_1, l_2, k_2, l_3,
 * neighbor_1_type, n_1, neighbor_2_type, n_2, neighbor_3_type, n_3 (every
 * neighbour type of the systems, l_1 ≤ l_2 ≤ l_3, k_2 = l_3).
 */
export class SoapBispectrum extends CalculatorBase<SoapHypers> {
  /** The core's name of this calculator (its registry entry). */
  static readonly calculatorName = 'soap_bispectrum';

  constructor(hypers: SoapHypers) {
    super(SoapBispectrum.calculatorName, hypers);
  }
}
