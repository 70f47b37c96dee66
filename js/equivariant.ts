import { invalidParameter } from './errors';
import native from './native';
import { selectionData, type LabelsSelection } from './calculators';
import { describe } from './system';
import { TensorMap } from './tensor';

function degree(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalidParameter(`${field} must be a non-negative integer, got ${describe(v)}`);
  return v;
}

/**
 * Real Clebsch–Gordan coefficients Ĉ^{l1 l2 L}[m1, m2, μ] for the real
 * spherical harmonics of acdc and featomic (m < 0 ↔ sin, m > 0 ↔ cos,
 * (Y_1^{-1}, Y_1^0, Y_1^1) ∝ (y, z, x)), row-major with shape
 * (2l1+1, 2l2+1, 2L+1), index m + l on each axis.
 *
 * The values include featomic's coupling sign (−1)^(l1+l2+L) (featomic stores
 * the coefficients without it and applies it when coupling), so that
 * Σ Ĉ[m1,m2,μ] a[m1] b[m2] gives exactly featomic's products; for l ⊗ l → 0
 * this is (−1)^l/√(2l+1) δ(m1, m2). All zero unless |l1 − l2| ≤ L ≤ l1 + l2.
 * Degrees up to 24.
 */
export function clebschGordan(l1: number, l2: number, L: number): Float64Array {
  return native.clebschGordan(degree('l1', l1), degree('l2', l2), degree('L', L));
}

/**
 * Real Wigner matrix D^l(R) of a proper rotation R (9 numbers, row-major,
 * acting on column vectors r' = R r), such that Y_l(R r̂) = D^l(R) Y_l(r̂) for
 * the real harmonics of `clebschGordan`. Row-major (2l+1)², rows = new m.
 * Every λ block of an equivariant calculator transforms as X' = D^λ(R) X
 * when positions and cell are rotated by R.
 */
export function wignerD(l: number, rotation: ArrayLike<number>): Float64Array {
  if (rotation === null || typeof rotation !== 'object' || typeof rotation.length !== 'number' || rotation.length !== 9) {
    throw invalidParameter(`rotation must be 9 numbers (a row-major 3×3 matrix), got ${describe(rotation)}`);
  }
  return native.wignerDMatrix(degree('l', l), Float64Array.from(rotation));
}

/** Settings of `DensityCorrelations` (featomic's names). */
export interface DensityCorrelationsOptions {
  /** Number of Clebsch–Gordan products: the output has body order ν = n_correlations + 1. */
  n_correlations: number;
  /** Largest o3_lambda the coefficients cover; every product must fit (or use `angularCutoff`). */
  max_angular: number;
  /** Keep only keys with l_1 ≤ l_2 ≤ … ≤ l_ν (default true). */
  skip_redundant?: boolean;
}

/** Options of `DensityCorrelations.compute` / `computeSync`. */
export interface DensityCorrelationsComputeOptions {
  /** Largest o3_lambda kept by intermediate products (and the last one, without `selectedKeys`). */
  angularCutoff?: number;
  /** Keys of the final product to keep, on the dimensions named, e.g. `[{ o3_lambda: 0, o3_sigma: 1 }]`. */
  selectedKeys?: LabelsSelection;
}

/**
 * Density correlations of body order ν = n_correlations + 1 by iterated
 * Clebsch–Gordan products of a density with itself (featomic's
 * `clebsch_gordan.DensityCorrelations`). The input is any TensorMap with
 * o3_lambda and o3_sigma keys and one [o3_mu] component, usually a
 * spherical expansion with its neighbour types moved to properties. Other key
 * dimensions (e.g. center_type) are matched. Property names get numeric
 * suffixes (n_1 … n_ν, neighbor_1_type …); output keys are (o3_lambda,
 * o3_sigma, center_type, l_1, l_2, k_2, l_3, …). Gradients present in the
 * input are carried through by the product rule.
 *
 * @example
 * const dens = se.computeSync(system).keysToProperties('neighbor_type');
 * const nu3 = new DensityCorrelations({ n_correlations: 2, max_angular: 6 }).computeSync(dens, { angularCutoff: 3 });
 */
export class DensityCorrelations {
  readonly #native: InstanceType<typeof native.NativeDensityCorrelations>;
  /** The settings, as given. */
  readonly options: DensityCorrelationsOptions;

  constructor(options: DensityCorrelationsOptions) {
    if (options === null || typeof options !== 'object') throw invalidParameter(`DensityCorrelations options must be an object, got ${describe(options)}`);
    for (const key of Object.keys(options)) {
      if (!['n_correlations', 'max_angular', 'skip_redundant'].includes(key)) {
        throw invalidParameter(`unknown DensityCorrelations option "${key}" (expected n_correlations, max_angular, skip_redundant)`);
      }
    }
    const skip = options.skip_redundant ?? true;
    if (typeof skip !== 'boolean') throw invalidParameter(`skip_redundant must be a boolean, got ${describe(skip)}`);
    this.options = options;
    this.#native = new native.NativeDensityCorrelations(degree('n_correlations', options.n_correlations), degree('max_angular', options.max_angular), skip);
  }

  /** Computes off the event loop (the density is copied first). */
  async compute(density: TensorMap, options: DensityCorrelationsComputeOptions = {}): Promise<TensorMap> {
    const [cutoff, selected] = this.#arguments(density, options);
    return TensorMap.fromData(await this.#native.compute(density.toData(), cutoff, selected));
  }

  /** Computes on the calling thread. */
  computeSync(density: TensorMap, options: DensityCorrelationsComputeOptions = {}): TensorMap {
    const [cutoff, selected] = this.#arguments(density, options);
    return TensorMap.fromData(this.#native.computeSync(density.toData(), cutoff, selected));
  }

  #arguments(density: TensorMap, options: DensityCorrelationsComputeOptions) {
    if (!(density instanceof TensorMap)) throw invalidParameter(`density must be a TensorMap, got ${describe(density)}`);
    if (options === null || typeof options !== 'object') throw invalidParameter(`options must be an object, got ${describe(options)}`);
    for (const key of Object.keys(options)) {
      if (!['angularCutoff', 'selectedKeys'].includes(key)) throw invalidParameter(`unknown compute option "${key}" (expected angularCutoff, selectedKeys)`);
    }
    const cutoff = options.angularCutoff === undefined ? undefined : degree('angularCutoff', options.angularCutoff);
    const selected = options.selectedKeys === undefined ? undefined : selectionData('selectedKeys', options.selectedKeys);
    return [cutoff, selected] as const;
  }
}
