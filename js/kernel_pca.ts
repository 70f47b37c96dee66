// Kernel principal component analysis (Schölkopf, Smola and Müller, Neural
// Comput. 10, 1299 (1998), doi:10.1162/089976698300017467) on the normalised
// polynomial kernel k(x, x') = (x̂·x̂')^ζ of the SOAP models, or on any
// precomputed kernel matrix.
//
// With K the N × N kernel and 1 the N × N matrix of 1/N, the centred kernel
// is K̃ = K − 1K − K1 + 1K1 (the kernel of the features centred in the
// feature space of k). Its eigenpairs K̃ v_c = λ_c v_c (λ decreasing, |v_c| = 1)
// give the scores t_ic = v_ic √λ_c of sample i on component c, which is
// scikit-learn's `KernelPCA(kernel="precomputed").fit_transform(K)`. Signs
// follow scikit-learn's rule: the largest-magnitude entry of each v_c is
// positive.
//
// The centring, the checks (square, symmetric, positive semi-definite) and
// the decomposition run in the core (acdc_core::analysis::kernel_pca); this
// module checks the options and builds the kernel from features.
import { invalidParameter } from './errors';
import native from './native';
import type { KernelPcaData } from './native';
import { asMatrix, checkCount, polynomialKernel, polynomialKernelAsync } from './models';
import { describe } from './system';
import type { DenseArray } from './tensor';
import { abortable, runQueued, splitSignal, throwIfAborted, type AbortSignalLike } from './schedule';

/** Options of {@link kernelPca}. */
export interface KernelPcaOptions {
  /**
   * Exponent ζ (an integer ≥ 1) of the normalised polynomial kernel computed
   * from the rows of the input. Default 1. Not allowed with `precomputed`.
   */
  zeta?: number;
  /** The input is already a symmetric N × N kernel matrix (e.g. from {@link structureKernel}). */
  precomputed?: boolean;
}

/** Result of {@link kernelPca}. */
export interface KernelPcaResult {
  /** Projections of the samples, `N × n`: eigenvector times √eigenvalue. */
  scores: DenseArray<Float64Array>;
  /** The n largest eigenvalues of the centred kernel, decreasing (kernel units). */
  eigenvalues: Float64Array;
  /** The unit eigenvectors as columns, `N × n`. */
  eigenvectors: DenseArray<Float64Array>;
}

function args(X: DenseArray, options: KernelPcaOptions | undefined): { precomputed: boolean; zeta: number } {
  if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options))) {
    throw invalidParameter(`kernelPca options must be an object, got ${describe(options)}`);
  }
  const o = options ?? {};
  for (const key of Object.keys(o)) {
    if (key !== 'zeta' && key !== 'precomputed') throw invalidParameter(`unknown kernelPca option "${key}" (expected zeta, precomputed)`);
  }
  if (o.precomputed !== undefined && typeof o.precomputed !== 'boolean') throw invalidParameter(`precomputed must be a boolean, got ${describe(o.precomputed)}`);
  if (o.precomputed && o.zeta !== undefined) throw invalidParameter('zeta applies to features; a precomputed kernel is used as given');
  if (X === null || typeof X !== 'object' || !Array.isArray(X.shape)) throw invalidParameter(`X must be a dense array {data, shape}, got ${describe(X)}`);
  return { precomputed: o.precomputed === true, zeta: o.zeta ?? 1 };
}

function toResult(r: KernelPcaData): KernelPcaResult {
  return { scores: { data: r.scores.data, shape: r.scores.shape }, eigenvalues: r.eigenvalues, eigenvectors: { data: r.eigenvectors.data, shape: r.eigenvectors.shape } };
}

/**
 * The first `n` kernel principal components of the rows of `X` under the
 * normalised polynomial kernel (x̂·x̂')^ζ, or of a precomputed kernel matrix
 * (`{ precomputed: true }`). Equals scikit-learn's
 * `KernelPCA(n, kernel="precomputed")` on the same kernel.
 *
 * @example
 * const { scores, eigenvalues } = kernelPca(features, 2, { zeta: 2 });
 */
export function kernelPca(X: DenseArray, n: number, options?: KernelPcaOptions): KernelPcaResult {
  const { precomputed, zeta } = args(X, options);
  const K = precomputed ? X : polynomialKernel(X, X, { zeta });
  return toResult(native.kernelPcaSync(asMatrix('kernel', K), checkCount('n', n, 1)));
}

/** {@link kernelPca} with the kernel and the decomposition off the event loop. */
export async function kernelPcaAsync(X: DenseArray, n: number, options?: KernelPcaOptions & { signal?: AbortSignalLike }): Promise<KernelPcaResult> {
  const { signal, rest } = splitSignal(options);
  throwIfAborted(signal);
  const { precomputed, zeta } = args(X, rest);
  const K = precomputed ? X : await abortable(polynomialKernelAsync(X, X, { zeta }), signal);
  throwIfAborted(signal);
  const m = asMatrix('kernel', K);
  const k = checkCount('n', n, 1);
  return toResult(await abortable(runQueued(() => native.kernelPca(m, k)), signal));
}

// The blocking forms under the name every other blocking form has (`xSync`).
// The bare names stay blocking, as the documented API has always had them
// (\`cur(X, n): Int32Array\`); the Promise forms are the \`xAsync\` functions.
/** The blocking form of {@link kernelPcaAsync}: the same function as {@link kernelPca}. */
export const kernelPcaSync: typeof kernelPca = kernelPca;
