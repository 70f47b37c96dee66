// Classic descriptors with DScribe's conventions: atom-centred symmetry
// functions and the Coulomb, sine and Ewald sum matrices.
import { CalculatorBase } from './calculators';

/**
 * Hyper-parameters of {@link SymmetryFunctions}, named as DScribe's `ACSF`
 * names them (`r_cut` → `cutoff`, `g2_params` → `g2`, `species` → `types`).
 */
export interface SymmetryFunctionsHypers {
  /** Cutoff radius r_c in Å (neighbours with r ≤ r_c count). */
  cutoff: number;
  /** G2 functions, one row `[η (Å⁻²), R_s (Å)]` each. */
  g2?: [number, number][];
  /** G3 functions, one `κ` (Å⁻¹) each. */
  g3?: number[];
  /** G4 functions (r_jk ≤ r_c required), one row `[η (Å⁻²), ζ, λ]` each. */
  g4?: [number, number, number][];
  /** G5 functions, one row `[η (Å⁻²), ζ, λ]` each. */
  g5?: [number, number, number][];
  /**
   * ANI-style angular functions (Smith et al. 2017, TorchANI's form; an
   * extension, not in DScribe), one row `[η (Å⁻²), ζ, R_s (Å), θ_s (rad)]`
   * each: Σ_{j<k} 2^(1−ζ) (1 + cos(θ′ − θ_s))^ζ exp(−η((r_ij + r_ik)/2 − R_s)²)
   * f_c(r_ij) f_c(r_ik) with θ′ = arccos(0.95 cos θ_ijk). Property `function` 6.
   */
  ani?: [number, number, number, number][];
  /**
   * Atomic numbers the features are split over (sorted, duplicates
   * removed). Default: the species of the systems computed together. Give it
   * to get the same columns whatever the batch; an atom of another species is
   * an error.
   */
  types?: number[];
}

/** How the matrix rows and columns are ordered (DScribe's `permutation`). */
export type MatrixPermutation = 'none' | 'sorted_l2' | 'eigenspectrum' | 'random';

/** Hyper-parameters of {@link CoulombMatrix} and {@link SineMatrix}, as DScribe names them. */
export interface CoulombMatrixHypers {
  /** Size the matrix is padded to; a system with more atoms is an error. */
  n_atoms_max: number;
  /** Default `sorted_l2` (decreasing row norm, ties in atom order). */
  permutation?: MatrixPermutation;
  /** Width of the normal noise added to the row norms; required by `random`, refused otherwise. */
  sigma?: number;
  /** Seed of the `random` generator (0 … 2³² − 1, default 0). Its state persists across calls of one object. */
  seed?: number;
}

/** Hyper-parameters of {@link SineMatrix}. */
export type SineMatrixHypers = CoulombMatrixHypers;

/** Hyper-parameters of {@link EwaldSumMatrix}: DScribe's constructor and `create` arguments together. */
export interface EwaldSumMatrixHypers extends CoulombMatrixHypers {
  /** Accuracy that sets the default cutoffs (default 1e-5). */
  accuracy?: number;
  /** Relative cost of real- and reciprocal-space terms in the default `a` (default 1). */
  w?: number;
  /** Real-space cutoff in Å (give it together with `g_cut`). */
  r_cut?: number;
  /** Reciprocal-space cutoff in Å⁻¹ (give it together with `r_cut`). */
  g_cut?: number;
  /** Screening parameter in Å⁻¹ (default √π (N w / V²)^(1/6)). */
  a?: number;
}

/**
 * Atom-centred symmetry functions G1–G5 (Behler 2011) with DScribe 2.1.2's
 * definitions: cosine cutoff, G4/G5 summed over unordered neighbour pairs
 * with the 2^(1−ζ) factor, r_jk ≤ r_c for G4 only, periodic images included.
 *
 * Keys: center_type. Samples: system, atom. Properties: function (1…5),
 * neighbor_1_type, neighbor_2_type (−1 for G1–G3; for G4/G5 the pair with
 * neighbor_1_type ≤ neighbor_2_type), index (the parameter row). The
 * properties are in DScribe's column order, so
 * `toArray(tm, { layout: 'dscribe' })` is DScribe's `ACSF.create` matrix.
 * Gradients: positions and strain (analytic). Optional ANI-style angular
 * functions (`ani`, function 6) follow G5 in each species-pair group.
 *
 * @example
 * const acsf = new SymmetryFunctions({ cutoff: 4, g2: [[0.5, 0], [1, 1.5]], g3: [1, 2], g4: [[0.1, 1, 1]], g5: [[0.1, 1, -1]], types: [1, 6, 8] });
 * const X = toArray(acsf.computeSync(system), { layout: 'dscribe' }); // (atoms, features)
 */
export class SymmetryFunctions extends CalculatorBase<SymmetryFunctionsHypers> {
  /** The core's name of this calculator (its registry entry). */
  static readonly calculatorName = 'symmetry_functions';

  constructor(hypers: SymmetryFunctionsHypers) {
    super(SymmetryFunctions.calculatorName, hypers);
  }
}

/**
 * Coulomb matrix (Rupp et al. 2012) with DScribe 2.1.2's conventions:
 * M_ii = ½ Z_i^2.4, M_ij = Z_i Z_j / |R_i − R_j| with R in Å (no bohr), the
 * cell ignored; permuted, zero-padded to `n_atoms_max` and flattened
 * row-major. `random` reproduces DScribe bit for bit for the same seed (C++
 * mt19937 and libstdc++'s normal distribution), the generator's state
 * persisting across calls of one object.
 *
 * Keys: `_` (one block). Samples: system. Properties: index (a · n_atoms_max + b,
 * or the eigenvalue rank). Gradients: positions and strain (analytic; for
 * the sorted variants at fixed order, exact away from ties).
 *
 * @example
 * const cm = new CoulombMatrix({ n_atoms_max: 8, permutation: 'sorted_l2' });
 * const X = cm.computeSync(systems).toArray(); // (systems, 64)
 */
export class CoulombMatrix extends CalculatorBase<CoulombMatrixHypers> {
  /** The core's name of this calculator (its registry entry). */
  static readonly calculatorName = 'coulomb_matrix';

  constructor(hypers: CoulombMatrixHypers) {
    super(CoulombMatrix.calculatorName, hypers);
  }
}

/**
 * Sine matrix (Faber et al. 2015) with DScribe 2.1.2's conventions: M_ij =
 * Z_i Z_j / ‖sin²(π (R_j − R_i) B⁻¹) B‖, periodic along a, b and c whatever
 * `pbc`, so the cell must have three lattice vectors. Labels and permutations
 * as {@link CoulombMatrix}; `random` follows NumPy's legacy `RandomState`,
 * bit for bit, as DScribe does for this matrix.
 */
export class SineMatrix extends CalculatorBase<SineMatrixHypers> {
  /** The core's name of this calculator (its registry entry). */
  static readonly calculatorName = 'sine_matrix';

  constructor(hypers: SineMatrixHypers) {
    super(SineMatrix.calculatorName, hypers);
  }
}

/**
 * Ewald sum matrix (Faber et al. 2015) with DScribe 2.1.2's conventions:
 * point charges Z_i, energies in e²/Å (no 1/(4πε₀)), real + reciprocal +
 * constant terms, diagonals of the sums halved so that the upper triangle
 * sums to the electrostatic energy. Labels and permutations as
 * {@link SineMatrix}.
 */
export class EwaldSumMatrix extends CalculatorBase<EwaldSumMatrixHypers> {
  /** The core's name of this calculator (its registry entry). */
  static readonly calculatorName = 'ewald_sum_matrix';

  constructor(hypers: EwaldSumMatrixHypers) {
    super(EwaldSumMatrix.calculatorName, hypers);
  }
}
