// Analysis of dense row-major matrices: feature reconstruction measures
// (GFRE, GFRD, LFRE), local prediction rigidity and PCA.
import { invalidParameter } from './errors';
import native from './native';
import type { MatrixData, PcaData } from './native';
import { asMatrix, checkCount, checkIndices } from './models';
import { describe } from './system';
import { abortable, checkSignal, runQueued, splitSignal, throwIfAborted, type AbortSignalLike } from './schedule';
import type { DenseArray } from './tensor';

/**
 * Train / test rows for the reconstruction measures. Both given: used as
 * given (their order matters, as the cross-validation folds shuffle
 * positions). One given: the other is every remaining row, ascending.
 * Neither: scikit-matter's default split (a fixed pseudo-random half, the
 * same as `train_test_split(test_size=0.5, random_state=0x5F3759DF)`).
 */
export interface SplitOptions {
  /** Rows used to scale and fit. */
  trainIdx?: ArrayLike<number>;
  /** Rows on which the error is measured. */
  testIdx?: ArrayLike<number>;
}

/** Options of {@link lfre}. */
export interface LfreOptions extends SplitOptions {
  /** Number of nearest training points in each local fit (2 ≤ k ≤ training rows). */
  nLocalPoints: number;
}

/** Result of {@link localPredictionRigidity}. */
export interface RigidityResult {
  /** LPR of every atom (dimensionless), one array per test structure. */
  lpr: Float64Array[];
  /** Number of features minus the rank of the regularised covariance. */
  rankDiff: number;
}

/** Result of {@link pca}. */
export interface PcaResult {
  /** Projections of the centred samples, `rows × n`. */
  scores: DenseArray<Float64Array>;
  /** Principal directions as orthonormal rows, `n × cols`; each has its largest-magnitude entry positive. */
  components: DenseArray<Float64Array>;
  /** Variance along each component, `s² / (rows − 1)`, decreasing. */
  explainedVariance: Float64Array;
  /**
   * Total variance of the data: the sum over columns of each column's
   * unbiased variance (in squared feature units), so that
   * `explainedVariance[c] / totalVariance` is the fraction a component explains.
   */
  totalVariance: number;
  /** Column means that were subtracted. */
  mean: Float64Array;
}

function splitArgs(what: string, options: unknown, extra: string[] = []): { train?: number[]; test?: number[]; o: Record<string, unknown> } {
  if (options === undefined) return { o: {} };
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalidParameter(`${what} options must be an object, got ${describe(options)}`);
  }
  const allowed = [...extra, 'trainIdx', 'testIdx'];
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) throw invalidParameter(`unknown ${what} option "${key}" (expected ${allowed.join(', ')})`);
  }
  const o = options as Record<string, unknown>;
  return {
    train: o.trainIdx === undefined ? undefined : checkIndices('trainIdx', o.trainIdx),
    test: o.testIdx === undefined ? undefined : checkIndices('testIdx', o.testIdx),
    o,
  };
}

function measureArgs(what: string, X: DenseArray, Y: DenseArray, options?: SplitOptions): [MatrixData, MatrixData, number[] | undefined, number[] | undefined] {
  const { train, test } = splitArgs(what, options);
  return [asMatrix('X', X), asMatrix('Y', Y), train, test];
}

function lfreArgs(X: DenseArray, Y: DenseArray, options: LfreOptions): [MatrixData, MatrixData, number, number[] | undefined, number[] | undefined] {
  if (options === undefined) throw invalidParameter('lfre needs options {nLocalPoints, trainIdx?, testIdx?}');
  const { train, test, o } = splitArgs('lfre', options, ['nLocalPoints']);
  return [asMatrix('X', X), asMatrix('Y', Y), checkCount('nLocalPoints', o.nLocalPoints), train, test];
}

/**
 * Global feature reconstruction error of Y from X (Goscinski et al. 2021,
 * doi:10.1088/2632-2153/abdaf7; scikit-matter 0.4.1's
 * `global_reconstruction_error`): the test RMS error of the best linear
 * map X → Y, both scaled to unit total variance on the training rows.
 * 0 means Y is a linear function of X; about 1 means X tells nothing about Y.
 */
export function gfre(X: DenseArray, Y: DenseArray, options?: SplitOptions): number {
  return native.gfreSync(...measureArgs('gfre', X, Y, options));
}

/** {@link gfre} off the event loop (the inputs are copied first). */
export async function gfreAsync(X: DenseArray, Y: DenseArray, options?: SplitOptions & { signal?: AbortSignalLike }): Promise<number> {
  const { signal, rest } = splitSignal(options);
  throwIfAborted(signal);
  const args = measureArgs('gfre', X, Y, rest);
  return abortable(runQueued(() => native.gfre(...args)), signal);
}

/**
 * Global feature reconstruction distortion of X → Y: the test RMS distance
 * between the best linear map and the best orthogonal one (0 when Y is a
 * rotation of X). Works for any number of columns of Y; with fewer columns
 * than X the orthogonal map keeps only Y's directions (scikit-matter 0.4.1
 * fails there; see the README).
 */
export function gfrd(X: DenseArray, Y: DenseArray, options?: SplitOptions): number {
  return native.gfrdSync(...measureArgs('gfrd', X, Y, options));
}

/** {@link gfrd} off the event loop. */
export async function gfrdAsync(X: DenseArray, Y: DenseArray, options?: SplitOptions): Promise<number> {
  return native.gfrd(...measureArgs('gfrd', X, Y, options));
}

/**
 * Local feature reconstruction error of Y from X: as {@link gfre}, but each
 * test point is reconstructed by a linear map fit on its `nLocalPoints`
 * nearest training points.
 */
export function lfre(X: DenseArray, Y: DenseArray, options: LfreOptions): number {
  return native.lfreSync(...lfreArgs(X, Y, options));
}

/** {@link lfre} off the event loop. */
export async function lfreAsync(X: DenseArray, Y: DenseArray, options: LfreOptions): Promise<number> {
  return native.lfre(...lfreArgs(X, Y, options));
}

function structureList(name: string, value: unknown): MatrixData[] {
  if (!Array.isArray(value)) throw invalidParameter(`${name} must be an array of dense arrays (one per structure), got ${describe(value)}`);
  return value.map((m, k) => asMatrix(`${name}[${k}]`, m));
}

function rigidityArgs(train: DenseArray[], test: DenseArray[], alpha: number): [MatrixData[], MatrixData[], number] {
  if (typeof alpha !== 'number') throw invalidParameter(`alpha must be a number, got ${describe(alpha)}`);
  return [structureList('train', train), structureList('test', test), alpha];
}

/**
 * Local prediction rigidity (Chong et al. 2023, doi:10.1021/acs.jctc.3c00704;
 * scikit-matter 0.4.1's `local_prediction_rigidity`) of every atom of the
 * `test` structures, for a linear model trained on the `train` structures
 * (per-structure arrays of atomic features, `atoms × features`) whose
 * structure prediction is the mean of atomic contributions, with
 * regulariser `alpha`.
 */
export function localPredictionRigidity(train: DenseArray[], test: DenseArray[], alpha: number): RigidityResult {
  return native.localPredictionRigiditySync(...rigidityArgs(train, test, alpha));
}

/** {@link localPredictionRigidity} off the event loop. */
export async function localPredictionRigidityAsync(train: DenseArray[], test: DenseArray[], alpha: number): Promise<RigidityResult> {
  return native.localPredictionRigidity(...rigidityArgs(train, test, alpha));
}

function toPca(p: PcaData): PcaResult {
  return {
    scores: { data: p.scores.data, shape: p.scores.shape },
    components: { data: p.components.data, shape: p.components.shape },
    explainedVariance: p.explainedVariance,
    totalVariance: p.totalVariance,
    mean: p.mean,
  };
}

/**
 * The first `n` principal components of the rows of X, from the SVD of the
 * centred matrix. Signs are fixed: each component's largest-magnitude entry
 * is positive. When few components of a large matrix are asked for (N·F·min(N, F)
 * above 2·10⁸), they come from block subspace iteration run until every
 * singular triplet's residual is below 1e-12 of the largest singular value:
 * the SVD's numbers to that accuracy, in O(N·F) memory and time a sweep.
 */
export function pca(X: DenseArray, n: number): PcaResult {
  return toPca(native.pcaSync(asMatrix('X', X), checkCount('n', n, 1)));
}

/** {@link pca} off the event loop. */
export async function pcaAsync(X: DenseArray, n: number, options: { signal?: AbortSignalLike } = {}): Promise<PcaResult> {
  const signal = checkSignal(options?.signal);
  throwIfAborted(signal);
  const m = asMatrix('X', X);
  const k = checkCount('n', n, 1);
  return toPca(await abortable(runQueued(() => native.pca(m, k)), signal));
}

// The blocking forms under the name every other blocking form has (`xSync`).
// The bare names stay blocking, as the documented API has always had them
// (\`cur(X, n): Int32Array\`); the Promise forms are the \`xAsync\` functions.
/** The blocking form of {@link gfreAsync}: the same function as {@link gfre}. */
export const gfreSync: typeof gfre = gfre;
/** The blocking form of {@link gfrdAsync}: the same function as {@link gfrd}. */
export const gfrdSync: typeof gfrd = gfrd;
/** The blocking form of {@link lfreAsync}: the same function as {@link lfre}. */
export const lfreSync: typeof lfre = lfre;
/** The blocking form of {@link localPredictionRigidityAsync}: the same function as {@link localPredictionRigidity}. */
export const localPredictionRigiditySync: typeof localPredictionRigidity = localPredictionRigidity;
/** The blocking form of {@link pcaAsync}: the same function as {@link pca}. */
export const pcaSync: typeof pca = pca;
