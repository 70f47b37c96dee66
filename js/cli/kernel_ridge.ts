// Kernel ridge regression on a precomputed kernel, for the learning curves of
// `acdc scan`: α = (K_tt + λ I)⁻¹ (y_t − ȳ_t), ŷ = ȳ_t + K_·t α, solved by a
// Cholesky factorisation (λ > 0 makes K_tt + λ I positive definite).
// With the linear kernel of centred features this is ridge regression with an
// intercept; with the normalised polynomial kernel it is the posterior mean
// of Gaussian process regression with noise variance λ and a constant mean.
import { coded } from '../errors';

/** Solves (A + λI) x = b in place for a symmetric positive semi-definite n × n A (row-major). */
export function choleskySolve(A: Float64Array, n: number, lambda: number, b: Float64Array): Float64Array {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * n + j] + (i === j ? lambda : 0);
      for (let k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
      if (i === j) {
        if (!(s > 0)) throw coded('ACDC_NUMERICAL', `the regularised kernel is not positive definite (pivot ${i}: ${s}); raise --regularizer`);
        L[i * n + i] = Math.sqrt(s);
      } else {
        L[i * n + j] = s / L[j * n + j];
      }
    }
  }
  const x = Float64Array.from(b);
  for (let i = 0; i < n; i++) {
    let s = x[i];
    for (let k = 0; k < i; k++) s -= L[i * n + k] * x[k];
    x[i] = s / L[i * n + i];
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = x[i];
    for (let k = i + 1; k < n; k++) s -= L[k * n + i] * x[k];
    x[i] = s / L[i * n + i];
  }
  return x;
}

/**
 * Fits on the rows `train` of the full kernel `K` (N × N, row-major) and
 * predicts the rows `test`. `relative` λ is multiplied by the mean diagonal
 * of K_tt, so that it does not depend on the scale of the kernel.
 */
export function kernelRidgePredict(K: Float64Array, N: number, y: ArrayLike<number>, train: number[], test: number[], relative: number): Float64Array {
  const n = train.length;
  const Ktt = new Float64Array(n * n);
  let trace = 0;
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) Ktt[a * n + b] = K[train[a] * N + train[b]];
    trace += Ktt[a * n + a];
  }
  let mean = 0;
  for (const t of train) mean += y[t];
  mean /= n;
  const alpha = choleskySolve(Ktt, n, (relative * trace) / n, Float64Array.from(train, (t) => y[t] - mean));
  return Float64Array.from(test, (s) => {
    let p = mean;
    for (let a = 0; a < n; a++) p += K[s * N + train[a]] * alpha[a];
    return p;
  });
}

/** The linear kernel X Xᵀ of the rows of X (N × F), row-major. */
export function gram(X: Float64Array, N: number, F: number): Float64Array {
  const G = new Float64Array(N * N);
  for (let i = 0; i < N; i++) {
    const xi = X.subarray(i * F, (i + 1) * F);
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let f = 0; f < F; f++) s += xi[f] * X[j * F + f];
      G[i * N + j] = s;
      G[j * N + i] = s;
    }
  }
  return G;
}

/** The linear kernel of the features centred by the mean of the rows `train`, from their Gram matrix G. */
export function centredGram(G: Float64Array, N: number, train: number[]): Float64Array {
  const m = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (const t of train) s += G[i * N + t];
    m[i] = s / train.length;
  }
  let M = 0;
  for (const t of train) M += m[t];
  M /= train.length;
  const out = new Float64Array(N * N);
  for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) out[i * N + j] = G[i * N + j] - m[i] - m[j] + M;
  return out;
}
