// Selection of samples or features (farthest point sampling, CUR) and
// normalised polynomial kernels, on dense row-major matrices: the
// `{ data, shape: [rows, cols] }` arrays that `toArray` returns.
import { invalidParameter, outOfRange } from './errors';
import native from './native';
import type { MatrixData, SelectionData } from './native';
import { describe } from './system';
import { Labels, TensorMap, type DenseArray } from './tensor';
import { abortable, runQueued, splitSignal, throwIfAborted, type AbortSignalLike } from './schedule';

/** Which points a selection picks: the rows (`'samples'`) or the columns (`'features'`) of X. */
export type SelectionAxis = 'samples' | 'features';

/** Options of {@link farthestPointSampling}. */
export interface FpsOptions {
  /** Starting point(s): one index, or several (all preselected, in order, counted in `n`). Default 0. */
  initialize?: number | ArrayLike<number>;
  /** Select rows (default) or columns. */
  axis?: SelectionAxis;
}

/** Options of {@link cur}. */
export interface CurOptions {
  /** Number of singular vectors in the importance score (default 1). */
  k?: number;
  /** Recompute the importance after this many picks (default 1); 0: compute once and never orthogonalise. */
  recomputeEvery?: number;
  /** Select rows (default) or columns. */
  axis?: SelectionAxis;
}

/** Indices in selection order, with the score each had when it was picked. */
export interface SelectionResult {
  /** Indices along the selection axis, in selection order. */
  indices: Int32Array;
  /**
   * FPS: squared Euclidean distance (in squared feature units) to the closest
   * previously selected point; `Infinity` for the starting points' first.
   * CUR: the importance π (leverage score, between 0 and 1) when picked.
   */
  scores: Float64Array;
}

/** Options of {@link polynomialKernel} and {@link structureKernel}. */
export interface PolynomialKernelOptions {
  /** Exponent ζ, an integer ≥ 1. */
  zeta: number;
  /** Scale δ in the units of the target (e.g. eV); the kernel is δ²(x̂·x̂')^ζ. Default 1. */
  delta?: number;
}

function checkOptions(what: string, options: unknown, allowed: string[]): Record<string, unknown> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalidParameter(`${what} options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) throw invalidParameter(`unknown ${what} option "${key}" (expected ${allowed.join(', ')})`);
  }
  return options as Record<string, unknown>;
}

/** A non-negative integer argument, or a RangeError naming it. */
export function checkCount(name: string, value: unknown, min = 0): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 0xffffffff) {
    throw outOfRange(`${name} must be an integer ≥ ${min}, got ${describe(value)}`);
  }
  return value;
}

/** A list of non-negative integer indices, or an error naming the argument and the bad entry. */
export function checkIndices(name: string, value: unknown): number[] {
  if (value === null || typeof value !== 'object' || typeof (value as ArrayLike<number>).length !== 'number') {
    throw invalidParameter(`${name} must be an array of indices, got ${describe(value)}`);
  }
  const list = Array.from(value as ArrayLike<unknown>);
  list.forEach((v, k) => checkCount(`${name}[${k}]`, v));
  return list as number[];
}

/** Checks a dense matrix and hands it to the binding as float64. */
export function asMatrix(name: string, value: unknown): MatrixData {
  if (value === null || typeof value !== 'object' || !('data' in value) || !('shape' in value)) {
    throw invalidParameter(`${name} must be a dense array {data, shape: [rows, cols]}, got ${describe(value)}`);
  }
  const { data, shape } = value as DenseArray;
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw invalidParameter(`${name}.shape must be [rows, cols] (two integers), got ${Array.isArray(shape) ? JSON.stringify(shape) : describe(shape)}`);
  }
  if (!(data instanceof Float64Array) && !(data instanceof Float32Array)) {
    throw invalidParameter(`${name}.data must be a Float64Array or Float32Array, got ${describe(data)}`);
  }
  if (data.length !== shape[0] * shape[1]) {
    throw outOfRange(`${name}: shape [${shape.join(', ')}] needs ${shape[0] * shape[1]} values, got ${data.length}`);
  }
  return { data: data instanceof Float64Array ? data : Float64Array.from(data), shape: [shape[0], shape[1]] };
}

function checkAxis(axis: unknown): SelectionAxis {
  if (axis === undefined) return 'samples';
  if (axis !== 'samples' && axis !== 'features') throw invalidParameter(`axis must be "samples" or "features", got ${describe(axis)}`);
  return axis;
}

function fpsArgs(X: DenseArray, n: number, options?: FpsOptions): [MatrixData, number, number[], string] {
  const o = checkOptions('farthestPointSampling', options, ['initialize', 'axis']);
  const init = o.initialize === undefined ? [0] : typeof o.initialize === 'number' ? [checkCount('initialize', o.initialize)] : checkIndices('initialize', o.initialize);
  return [asMatrix('X', X), checkCount('n', n, 1), init, checkAxis(o.axis)];
}

function curArgs(X: DenseArray, n: number, options?: CurOptions): [MatrixData, number, number, number, string] {
  const o = checkOptions('cur', options, ['k', 'recomputeEvery', 'axis']);
  return [
    asMatrix('X', X),
    checkCount('n', n, 1),
    checkCount('k', o.k ?? 1, 1),
    checkCount('recomputeEvery', o.recomputeEvery ?? 1),
    checkAxis(o.axis),
  ];
}

function toSelection(s: SelectionData): SelectionResult {
  return { indices: s.indices, scores: s.scores };
}

/**
 * Farthest point sampling (scikit-matter 0.4.1's `FPS`): starting from
 * `initialize`, repeatedly picks the point with the largest squared distance
 * to the points already picked (lowest index on ties). Returns `n` indices,
 * the starting points included.
 *
 * @example
 * const idx = farthestPointSampling(toArray(block), 10);
 */
export function farthestPointSampling(X: DenseArray, n: number, options?: FpsOptions): Int32Array {
  return native.fpsSync(...fpsArgs(X, n, options)).indices;
}

/** {@link farthestPointSampling} off the event loop (X is copied first). */
export async function farthestPointSamplingAsync(X: DenseArray, n: number, options?: FpsOptions): Promise<Int32Array> {
  return (await native.fps(...fpsArgs(X, n, options))).indices;
}

/** {@link farthestPointSampling} with the squared distance of each point when it was picked. */
export function farthestPointSamplingWithScores(X: DenseArray, n: number, options?: FpsOptions): SelectionResult {
  return toSelection(native.fpsSync(...fpsArgs(X, n, options)));
}

/** {@link farthestPointSamplingWithScores} off the event loop. */
export async function farthestPointSamplingWithScoresAsync(X: DenseArray, n: number, options?: FpsOptions): Promise<SelectionResult> {
  return toSelection(await native.fps(...fpsArgs(X, n, options)));
}

/**
 * Iterative CUR selection (scikit-matter 0.4.1's `CUR`): picks the point
 * with the largest leverage on the top-`k` singular vectors, orthogonalises
 * the remaining points against it, and repeats (lowest index on ties).
 *
 * @example
 * const columns = cur(X, 20, { axis: 'features' });
 */
export function cur(X: DenseArray, n: number, options?: CurOptions): Int32Array {
  return native.curSync(...curArgs(X, n, options)).indices;
}

/** {@link cur} off the event loop (X is copied first). */
export async function curAsync(X: DenseArray, n: number, options?: CurOptions & { signal?: AbortSignalLike }): Promise<Int32Array> {
  const { signal, rest } = splitSignal(options);
  throwIfAborted(signal);
  const args = curArgs(X, n, rest);
  return (await abortable(runQueued(() => native.cur(...args)), signal)).indices;
}

/** {@link cur} with the importance π of each point when it was picked. */
export function curWithScores(X: DenseArray, n: number, options?: CurOptions): SelectionResult {
  return toSelection(native.curSync(...curArgs(X, n, options)));
}

/** {@link curWithScores} off the event loop. */
export async function curWithScoresAsync(X: DenseArray, n: number, options?: CurOptions): Promise<SelectionResult> {
  return toSelection(await native.cur(...curArgs(X, n, options)));
}

function kernelOptions(options: PolynomialKernelOptions): [number, number] {
  const o = checkOptions('kernel', options, ['zeta', 'delta']);
  if (options === undefined) throw invalidParameter('kernel options {zeta, delta?} are required');
  const delta = o.delta ?? 1;
  if (typeof delta !== 'number') throw invalidParameter(`delta must be a number, got ${describe(delta)}`);
  return [checkCount('zeta', o.zeta, 1), delta];
}

function asDense(m: MatrixData): DenseArray<Float64Array> {
  return { data: m.data, shape: m.shape };
}

/**
 * Normalised polynomial kernel `δ² (x̂·x̂')^ζ` between every row of A and
 * every row of B (per-atom features): an `A.rows × B.rows` array.
 */
export function polynomialKernel(A: DenseArray, B: DenseArray, options: PolynomialKernelOptions): DenseArray<Float64Array> {
  return asDense(native.polynomialKernelSync(asMatrix('A', A), asMatrix('B', B), ...kernelOptions(options)));
}

/** {@link polynomialKernel} off the event loop. */
export async function polynomialKernelAsync(A: DenseArray, B: DenseArray, options: PolynomialKernelOptions): Promise<DenseArray<Float64Array>> {
  return asDense(await native.polynomialKernel(asMatrix('A', A), asMatrix('B', B), ...kernelOptions(options)));
}

/**
 * Kernel between structures: the sum of {@link polynomialKernel} over their
 * atoms. Row r of A belongs to structure `structuresA[r]` (0-based), and
 * likewise for B; the result is `(max(structuresA) + 1) × (max(structuresB) + 1)`.
 */
export function structureKernel(
  A: DenseArray,
  structuresA: ArrayLike<number>,
  B: DenseArray,
  structuresB: ArrayLike<number>,
  options: PolynomialKernelOptions,
): DenseArray<Float64Array> {
  return asDense(
    native.structureKernelSync(asMatrix('A', A), checkIndices('structuresA', structuresA), asMatrix('B', B), checkIndices('structuresB', structuresB), ...kernelOptions(options)),
  );
}

/** {@link structureKernel} off the event loop. */
export async function structureKernelAsync(
  A: DenseArray,
  structuresA: ArrayLike<number>,
  B: DenseArray,
  structuresB: ArrayLike<number>,
  options: PolynomialKernelOptions,
): Promise<DenseArray<Float64Array>> {
  return asDense(
    await native.structureKernel(asMatrix('A', A), checkIndices('structuresA', structuresA), asMatrix('B', B), checkIndices('structuresB', structuresB), ...kernelOptions(options)),
  );
}

/** Options of {@link selectSamples}. */
export interface SelectSamplesOptions {
  /** `'fps'` (default: farthest point sampling from the block's first sample) or `'cur'`. */
  method?: 'fps' | 'cur';
}

/** The samples {@link selectSamples} picked in one block. */
export interface BlockSampleSelection {
  /** The block's key, e.g. `{ center_type: 6 }`. */
  key: Record<string, number>;
  /** Row indices into the block, in selection order. */
  indices: Int32Array;
  /** The selected rows' sample labels (e.g. system, atom), in selection order. */
  samples: Labels;
}

function blockMatrices(tm: TensorMap, n: number, options: SelectSamplesOptions | undefined): { method: 'fps' | 'cur'; n: number; blocks: { key: Record<string, number>; X: DenseArray<Float64Array>; samples: Labels }[] } {
  if (!(tm instanceof TensorMap)) throw invalidParameter(`selectSamples expects a TensorMap, got ${describe(tm)}`);
  const o = checkOptions('selectSamples', options, ['method']);
  const method = o.method ?? 'fps';
  if (method !== 'fps' && method !== 'cur') throw invalidParameter(`method must be "fps" or "cur", got ${describe(method)}`);
  checkCount('n', n, 1);
  const blocks = tm.blocks().map((block, b) => {
    const [rows] = block.shape;
    const cols = rows === 0 ? 0 : block.values.length / rows;
    return { key: tm.keys.entry(b), X: { data: block.values, shape: [rows, cols] }, samples: block.samples };
  });
  return { method, n, blocks };
}

function pickRows(samples: Labels, indices: Int32Array): Labels {
  const width = samples.names.length;
  const values = new Int32Array(indices.length * width);
  indices.forEach((r, k) => values.set(samples.values.subarray(r * width, (r + 1) * width), k * width));
  return new Labels(samples.names, values);
}

/**
 * Selects up to `n` samples in every block of a TensorMap, by farthest point
 * sampling (default) or CUR on the block's values (components, if any, are
 * flattened into the features). Blocks with at most `n` samples keep them all,
 * in order, as GAP does with its per-species sparse points. For a selection
 * per centre species, first move the neighbour types to properties.
 *
 * @example
 * const perSpecies = tm.keysToProperties(['neighbor_1_type', 'neighbor_2_type']);
 * for (const { key, samples } of selectSamples(perSpecies, 50)) console.log(key, samples.count);
 */
export function selectSamples(tm: TensorMap, n: number, options?: SelectSamplesOptions): BlockSampleSelection[] {
  const { method, blocks } = blockMatrices(tm, n, options);
  return blocks.map(({ key, X, samples }) => {
    const rows = X.shape[0];
    const indices = rows <= n ? Int32Array.from({ length: rows }, (_, i) => i) : method === 'fps' ? farthestPointSampling(X, n) : cur(X, n);
    return { key, indices, samples: pickRows(samples, indices) };
  });
}

/** {@link selectSamples} off the event loop (one block at a time). */
export async function selectSamplesAsync(tm: TensorMap, n: number, options?: SelectSamplesOptions): Promise<BlockSampleSelection[]> {
  const { method, blocks } = blockMatrices(tm, n, options);
  const out: BlockSampleSelection[] = [];
  for (const { key, X, samples } of blocks) {
    const rows = X.shape[0];
    const indices = rows <= n ? Int32Array.from({ length: rows }, (_, i) => i) : method === 'fps' ? await farthestPointSamplingAsync(X, n) : await curAsync(X, n);
    out.push({ key, indices, samples: pickRows(samples, indices) });
  }
  return out;
}

// The blocking forms under the name every other blocking form has (`xSync`).
// The bare names stay blocking, as the documented API has always had them
// (\`cur(X, n): Int32Array\`); the Promise forms are the \`xAsync\` functions.
/** The blocking form of {@link farthestPointSamplingAsync}: the same function as {@link farthestPointSampling}. */
export const farthestPointSamplingSync: typeof farthestPointSampling = farthestPointSampling;
/** The blocking form of {@link farthestPointSamplingWithScoresAsync}: the same function as {@link farthestPointSamplingWithScores}. */
export const farthestPointSamplingWithScoresSync: typeof farthestPointSamplingWithScores = farthestPointSamplingWithScores;
/** The blocking form of {@link curAsync}: the same function as {@link cur}. */
export const curSync: typeof cur = cur;
/** The blocking form of {@link curWithScoresAsync}: the same function as {@link curWithScores}. */
export const curWithScoresSync: typeof curWithScores = curWithScores;
/** The blocking form of {@link polynomialKernelAsync}: the same function as {@link polynomialKernel}. */
export const polynomialKernelSync: typeof polynomialKernel = polynomialKernel;
/** The blocking form of {@link structureKernelAsync}: the same function as {@link structureKernel}. */
export const structureKernelSync: typeof structureKernel = structureKernel;
/** The blocking form of {@link selectSamplesAsync}: the same function as {@link selectSamples}. */
export const selectSamplesSync: typeof selectSamples = selectSamples;
