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
// K̃ is symmetric positive semi-definite, so its SVD is its eigendecomposition;
// the SVD of the native `pca` (on K̃, whose column means are already zero)
// provides it.
import { invalidParameter, outOfRange } from './errors';
import { pca, pcaAsync, type PcaResult } from './analysis';
import { polynomialKernel, polynomialKernelAsync } from './models';
import { describe } from './system';
import type { DenseArray } from './tensor';
import { abortable, splitSignal, throwIfAborted, type AbortSignalLike } from './schedule';

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

/** The doubly centred kernel, checked square and symmetric. */
function centred(K: DenseArray): DenseArray<Float64Array> {
  const { data, shape } = K;
  if (shape.length !== 2 || shape[0] !== shape[1]) throw outOfRange(`a precomputed kernel must be square, got shape [${shape.join(', ')}]`);
  const n = shape[0];
  if (data.length !== n * n) throw outOfRange(`the kernel has ${data.length} values, expected ${n}×${n}`);
  let scale = 0;
  for (let i = 0; i < n * n; i++) {
    if (!Number.isFinite(data[i])) throw outOfRange(`kernel[${Math.floor(i / n)}][${i % n}] is ${data[i]}`);
    scale = Math.max(scale, Math.abs(data[i]));
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      if (Math.abs(data[i * n + j] - data[j * n + i]) > 1e-10 * scale) {
        throw outOfRange(`the kernel is not symmetric: K[${i}][${j}] = ${data[i * n + j]} but K[${j}][${i}] = ${data[j * n + i]}`);
      }
    }
  }
  const rowMean = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += data[i * n + j];
    rowMean[i] = s / n;
    total += s;
  }
  total /= n * n;
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) out[i * n + j] = data[i * n + j] - rowMean[i] - rowMean[j] + total;
  }
  return { data: out, shape: [n, n] };
}

function fromPca(p: PcaResult, n: number, N: number): KernelPcaResult {
  const eigenvalues = new Float64Array(n);
  const scores = new Float64Array(N * n);
  const vectors = new Float64Array(N * n);
  for (let c = 0; c < n; c++) {
    // singular value s_c = √((N − 1) · variance); u_c · v_c = −1 would mean λ_c = −s_c
    const s = Math.sqrt(p.explainedVariance[c] * (N - 1));
    let dot = 0;
    for (let i = 0; i < N; i++) dot += p.scores.data[i * n + c] * p.components.data[c * N + i];
    const s0 = Math.sqrt(p.explainedVariance[0] * (N - 1));
    if (dot < 0 && s > 1e-12 * s0) {
      throw outOfRange(`the centred kernel is not positive semi-definite: it has the eigenvalue ${-s} among its ${n} largest in magnitude`);
    }
    // a negative eigenvalue at rounding level is zero (as scikit-learn clips it)
    eigenvalues[c] = dot < 0 ? 0 : s;
    const root = Math.sqrt(eigenvalues[c]);
    for (let i = 0; i < N; i++) {
      const v = p.components.data[c * N + i];
      vectors[i * n + c] = v;
      scores[i * n + c] = v * root;
    }
  }
  return { scores: { data: scores, shape: [N, n] }, eigenvalues, eigenvectors: { data: vectors, shape: [N, n] } };
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
  const Kc = centred(K);
  return fromPca(pca(Kc, n), n, Kc.shape[0]);
}

/** {@link kernelPca} with the kernel and the decomposition off the event loop. */
export async function kernelPcaAsync(X: DenseArray, n: number, options?: KernelPcaOptions & { signal?: AbortSignalLike }): Promise<KernelPcaResult> {
  const { signal, rest } = splitSignal(options);
  throwIfAborted(signal);
  const { precomputed, zeta } = args(X, rest);
  const K = precomputed ? X : await abortable(polynomialKernelAsync(X, X, { zeta }), signal);
  throwIfAborted(signal);
  const Kc = centred(K);
  return fromPca(await pcaAsync(Kc, n, signal ? { signal } : {}), n, Kc.shape[0]);
}
