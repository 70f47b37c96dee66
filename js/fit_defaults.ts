// The one table of fit defaults: `SparseGPR.fit`, `LinearModel.fit` and
// `acdc fit` all read their defaults from here, so the API and the CLI
// cannot disagree. docs/MODELS.md maps GAP's gap_fit options onto these.
import type { SoapHypers } from './calculators';

/**
 * Power spectrum hyper-parameters of `acdc fit` when `--hypers` is not given,
 * a common setting for metals (close to GAP's `soap cutoff=5 n_max=8
 * l_max=6 atom_sigma=0.5 cutoff_transition_width=1`): cutoff 5 Å switched
 * off smoothly over its last 1 Å (shifted cosine), Gaussian atomic density
 * of width σ = 0.5 Å, 8 GTO radial functions (max_radial 7: indices 0…7)
 * and angular channels l = 0…6. GAP's own radial basis at the same size
 * (`radial: {type: 'Gap', max_radial: 7}`) is available but is not the
 * default: it was not better on all of Cu–Au, Pt–Ni and silicon
 * (docs/MODELS.md, "GAP's radial basis, native").
 */
export const DEFAULT_FIT_HYPERS: SoapHypers = {
  cutoff: { radius: 5, smoothing: { type: 'ShiftedCosine', width: 1 } },
  density: { type: 'Gaussian', width: 0.5 },
  basis: { type: 'TensorProduct', max_angular: 6, radial: { type: 'Gto', max_radial: 7 } },
};

/** Defaults of the potential fits (API and CLI). */
export const FIT_DEFAULTS = {
  /** Sparse environments per centre species (GAP's n_sparse per descriptor). */
  sparse: 300,
  /**
   * Leverage-score sampling, GAP's cur_points (seeded): on held-out Cu–Au and
   * Pt–Ni more accurate than the greedy CUR, which takes the most extreme
   * environments first (docs/MODELS.md, "Multi-species accuracy against GAP").
   */
  sparseMethod: 'leverage' as const,
  /** Kernel exponent ζ (GAP's zeta). */
  zeta: 4,
  /** Kernel scale δ, eV (GAP's delta; the spread of atomic energies). */
  delta: 0.2,
  /** Added to the diagonal of K_MM, relative to δ² (GAP's sparse_jitter is absolute). */
  jitter: 1e-8,
  /** Energy noise per atom, eV (GAP's default_sigma energy). */
  sigmaEnergy: 0.002,
  /** Force noise per component, eV/Å. */
  sigmaForces: 0.05,
  /** Stress noise per component, eV/Å³ (GAP's per-atom virial sigma σ_v is σ_v·√N/V in these units). */
  sigmaStress: 0.001,
  /** Ridge parameter λ of the linear model. */
  regularizer: 1e-6,
  /** Reference energies. */
  e0: 'average' as const,
  /** Fraction of whole frames `acdc fit` holds out for validation. */
  validation: 0.1,
  /** Seed of the validation split (numpy's RandomState(seed).permutation). */
  seed: 0,
};
