// Kernel ridge regression learning curves for `acdc scan`, computed in the
// core (acdc_core::analysis::kernel_ridge, off the event loop): for each
// training size s, α = (K_tt + λ I)⁻¹ (y_t − ȳ_t) on the first s rows of the
// pool, ŷ = ȳ_t + K_·t α on the test rows, and the test RMSE. With the
// linear kernel of the features centred by each training set's mean this is
// ridge regression with an intercept; with the normalised polynomial kernel
// it is the posterior mean of Gaussian process regression with noise
// variance λ and a constant mean. λ is `regularizer` times the mean diagonal
// of K_tt, so that it does not depend on the scale of the kernel.
import native from '../native';
import { runQueued } from '../schedule';

/** The inputs of one learning curve. */
export interface LearningCurveInput {
  /** 'linear': `data` is the N × F feature matrix; 'precomputed': `data` is an N × N kernel. */
  kernel: 'linear' | 'precomputed';
  /** Row-major values of the features or the kernel. */
  data: Float64Array;
  /** Rows (N) and columns (F or N). */
  shape: [number, number];
  /** Target of every row. */
  y: ArrayLike<number>;
  /** Training pool: the training set of size s is its first s rows. */
  pool: number[];
  /** Test rows. */
  test: number[];
  /** Training sizes. */
  sizes: number[];
  /** Regulariser relative to the mean diagonal of the training kernel (> 0). */
  regularizer: number;
}

function args(c: LearningCurveInput) {
  const options = { kernel: c.kernel, y: Float64Array.from(c.y), pool: c.pool, test: c.test, sizes: c.sizes, regularizer: c.regularizer };
  return [{ data: c.data, shape: c.shape }, options] as const;
}

/** Test RMSE (units of y) for every training size, off the event loop. */
export async function learningCurve(c: LearningCurveInput): Promise<Float64Array> {
  const [m, o] = args(c);
  return runQueued(() => native.kernelRidgeLearningCurve(m, o));
}

/** {@link learningCurve} on the calling thread. */
export function learningCurveSync(c: LearningCurveInput): Float64Array {
  const [m, o] = args(c);
  return native.kernelRidgeLearningCurveSync(m, o);
}
