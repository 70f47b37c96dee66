// The options and results of the featurize engine, apart from the engine so
// that its parts (index.ts, design_rows.ts) share them without importing
// each other.
import type { GradientName } from '../calculators';
import type { Dtype } from '../tensor';
import type { AbortSignalLike } from '../schedule';
import type { Calc, CalculatorName } from './registry';

/**
 * How per-atom rows become one row per structure:
 * - `sum`: Σ_i x_i over the atoms of the structure;
 * - `mean`: (Σ_i x_i) / N, N the number of atoms of the structure (zeros for a structure without atoms);
 * - `species-mean`: for each centre species a, (Σ_{i of species a} x_i) / N_a
 *   (metatensor's `mean_over_samples` on each block).
 */
export const PER_STRUCTURE = ['sum', 'mean', 'species-mean'] as const;
export type PerStructure = (typeof PER_STRUCTURE)[number];

/** Most structures one batch may hold. */
export const MAX_BATCH = 1_000_000;

export interface FeaturizeOptions {
  calculator: CalculatorName;
  hypers?: string;
  perStructure?: PerStructure;
  gradients?: GradientName[];
  out: string;
  threads?: number;
  batch: number;
  /** Element type of `.npy` output; not allowed with `.mts`. */
  dtype?: Dtype;
  /** Species that fix the `.npy` columns; not allowed with `.mts`. */
  species?: number[];
  json?: boolean;
  progress?: boolean;
  /** Memory budget of each batch's computation (bytes or a size such as '4G'). */
  maxMemory?: string;
  /**
   * Most values (rows × columns) the output may hold (`acdc serve`'s
   * maxFeatures): with the SOAP spectra's .npy, checked before each batch is
   * computed, so an answer that would be too large is refused before the work.
   */
  maxValues?: number;
  /** Cancels the computation (between batches, and between centres within one). */
  signal?: AbortSignalLike;
  /**
   * The calculator of `calculator` and `hypers`, already built by
   * {@link makeCalculator} (reused across calls by queue workers). @internal
   */
  calculatorInstance?: Calc;
}

export interface FeaturizeSummary {
  file: string;
  out: string;
  /** The `.labels.json` sidecar of a `.npy` output, else null. */
  labels: string | null;
  format: 'npy' | 'mts';
  calculator: CalculatorName;
  perStructure: PerStructure | null;
  gradients: GradientName[];
  /** Species of the columns (.npy) or of the keys in the file (.mts). */
  species: number[];
  frames: number;
  atoms: number;
  rows: number | null;
  columns: number | null;
  dtype: Dtype;
  seconds: number;
  structuresPerSecond: number;
}

/** Row labels and column labels of a design matrix, for the `.labels.json` sidecar. */
export interface LabelsSidecar {
  description: string;
  calculator: CalculatorName;
  perStructure: PerStructure | null;
  dtype: Dtype;
  rows: { names: string[]; values: number[][] };
  columns: { names: string[]; values: number[][] };
}

