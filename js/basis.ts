/**
 * Data-driven compression of the SOAP basis: pseudo-elements (alchemical
 * compression, Willatt, Musil and Ceriotti, PCCP 20, 29661 (2018)) and
 * contracted radial bases (Goscinski, Musil, Pozdnyakov, Nigam and Ceriotti,
 * J. Chem. Phys. 155, 104106 (2021)).
 */
import { invalidParameter } from './errors';
import native from './native';
import { SphericalExpansion, type SoapHypers, type ExplicitRadialHypers } from './calculators';
import { System, type SystemInit } from './system';

/** Options of {@link fitAlchemicalCoupling}. */
export interface AlchemicalFitOptions {
  /** Number B of pseudo-elements (1 ≤ B ≤ number of elements in the systems). */
  pseudoTypes: number;
}

/**
 * Symmetric eigen-decomposition by cyclic Jacobi rotations (small matrices).
 * Returns eigenvalues (descending) and eigenvectors as rows.
 */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const m = Float64Array.from(a);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p * n + q] ** 2;
    if (off < 1e-30 * Math.max(1e-300, m.reduce((s, x) => s + x * x, 0))) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q];
        if (apq === 0) continue;
        const theta = (m[q * n + q] - m[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const mkp = m[k * n + p];
          const mkq = m[k * n + q];
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p * n + k];
          const mqk = m[q * n + k];
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => m[j * n + j] - m[i * n + i]);
  const values = Float64Array.from(order, (i) => m[i * n + i]);
  const vectors = new Float64Array(n * n);
  order.forEach((col, row) => {
    // sign convention: the largest-magnitude entry of each vector is positive
    let big = 0;
    for (let k = 0; k < n; k++) if (Math.abs(v[k * n + col]) > Math.abs(big)) big = v[k * n + col];
    const sign = big < 0 ? -1 : 1;
    for (let k = 0; k < n; k++) vectors[row * n + k] = sign * v[k * n + col];
  });
  return { values, vectors };
}

function withoutAlchemical(hypers: SoapHypers): SoapHypers {
  const density = { ...hypers.density } as Record<string, unknown>;
  delete density.alchemical;
  return { ...hypers, density: density as SoapHypers['density'] };
}

/**
 * Fits the pseudo-element coupling U (B × S) of `density.alchemical` to the
 * given structures and returns the hyper-parameters with it.
 *
 * Recipe: compute the species-resolved spherical expansion of every centre
 * with `hypers` (without alchemical compression); every coefficient
 * (centre, l, m, n) gives a vector x over the S elements present in the
 * systems (sorted by atomic number; 0 where the element is absent). The
 * uncentred covariance C = (1/N) Σ x xᵀ (S × S) is diagonalised and the B
 * eigenvectors of largest eigenvalue are the rows of U (orthonormal; each
 * row's largest-magnitude entry positive). U is therefore the rank-B linear
 * map of the element channels that best preserves the density coefficients
 * in the least-squares sense.
 *
 * Errors (rejected promise): pseudoTypes not an integer in 1…S.
 */
export async function fitAlchemicalCoupling(
  systems: System | SystemInit | Array<System | SystemInit>,
  hypers: SoapHypers,
  options: AlchemicalFitOptions,
): Promise<SoapHypers> {
  const base = withoutAlchemical(hypers);
  const tm = await new SphericalExpansion(base).compute(systems);
  const types = Array.from(new Set(Array.from({ length: tm.keys.count }, (_, b) => tm.keys.entry(b).neighbor_type))).sort((a, b) => a - b);
  const S = types.length;
  const B = options?.pseudoTypes;
  if (!Number.isInteger(B) || B < 1 || B > S) {
    throw invalidParameter(`pseudoTypes must be an integer between 1 and the number of elements in the systems (${S}), got ${String(B)}`);
  }
  // one row per (centre, l, m, n): rows[`${system},${atom},${l}`] = [m][n][element]
  const rows = new Map<string, Float64Array>();
  for (let b = 0; b < tm.keys.count; b++) {
    const { o3_lambda: l, neighbor_type: t } = tm.keys.entry(b);
    const block = tm.block(b);
    const width = block.values.length / Math.max(block.samples.count, 1);
    const a = types.indexOf(t);
    for (let s = 0; s < block.samples.count; s++) {
      const [system, atom] = block.samples.row(s);
      const key = `${system},${atom},${l}`;
      let row = rows.get(key);
      if (row === undefined) {
        row = new Float64Array(width * S);
        rows.set(key, row);
      }
      for (let k = 0; k < width; k++) row[k * S + a] = block.values[s * width + k];
    }
  }
  const C = new Float64Array(S * S);
  let count = 0;
  for (const row of rows.values()) {
    for (let k = 0; k < row.length; k += S) {
      for (let i = 0; i < S; i++) {
        const x = row[k + i];
        if (x === 0) continue;
        for (let j = 0; j < S; j++) C[i * S + j] += x * row[k + j];
      }
      count++;
    }
  }
  for (let i = 0; i < C.length; i++) C[i] /= Math.max(count, 1);
  const { vectors } = symmetricEigen(C, S);
  const coupling = Array.from({ length: B }, (_, b) => Array.from(vectors.subarray(b * S, (b + 1) * S)));
  return { ...hypers, density: { ...hypers.density, alchemical: { types, coupling } } };
}

/** Options of {@link fitRadialContraction}. */
export interface RadialContractionOptions {
  /** Largest radial index of the contracted basis: maxRadial + 1 functions per l (fewer where the basis has fewer). */
  maxRadial: number;
  /**
   * Radial functions per neighbour type (mixing types and n). Not supported:
   * such functions cannot be written as one Explicit basis; must be false or absent.
   */
  byType?: boolean;
}

/**
 * Fits a contracted radial basis to the given structures and returns
 * hyper-parameters of featomic's Explicit form (Tabulated channels,
 * DiracDelta density) that compute the contracted features directly.
 *
 * Recipe, for every angular channel l of `hypers`' basis (which must be
 * splined: any basis but `spline_accuracy: null`): with c_(i a l m n) the
 * species-resolved expansion coefficients of every centre i, the n × n
 * covariance C_l = Σ_(i,a,m) c c ᵀ is diagonalised and its leading
 * k = min(maxRadial + 1, size_l) eigenvectors (rows of U_l, orthonormal, each
 * row's largest entry positive) define the contracted radial functions
 * R'_(l p) = Σ_n U_(l p n) R_(l n). Their radial integrals are tabulated on
 * the nodes of the original splines (values and derivatives both multiplied
 * by U_l): the cubic Hermite spline is linear in its node data, so the
 * contracted features equal U_l applied to the full features up to rounding,
 * at the cost of the contracted size. The density's centre weight and
 * scaling are kept.
 *
 * Errors (rejected promise): maxRadial not a non-negative integer, byType
 * true, density.alchemical present, exact radial integrals.
 */
export async function fitRadialContraction(
  systems: System | SystemInit | Array<System | SystemInit>,
  hypers: SoapHypers,
  options: RadialContractionOptions,
): Promise<SoapHypers> {
  const maxRadial = options?.maxRadial;
  if (!Number.isInteger(maxRadial) || maxRadial < 0) throw invalidParameter(`maxRadial must be a non-negative integer, got ${String(maxRadial)}`);
  if (options.byType) throw invalidParameter('byType: true is not supported (per-type radial functions cannot be written as one Explicit basis)');
  if ((hypers.density as { alchemical?: unknown }).alchemical !== undefined) {
    throw invalidParameter('density.alchemical: fit the radial contraction on the species-resolved hyper-parameters, then add alchemical');
  }
  const tables = native.radialTablesSync(JSON.stringify(hypers));
  const tm = await new SphericalExpansion(hypers).compute(systems);
  const covariance = new Map<number, Float64Array>();
  for (const t of tables) covariance.set(t.l, new Float64Array(t.size * t.size));
  for (let b = 0; b < tm.keys.count; b++) {
    const l = tm.keys.entry(b).o3_lambda;
    const block = tm.block(b);
    const n = block.properties.count;
    const C = covariance.get(l);
    if (C === undefined || C.length !== n * n) continue;
    for (let r = 0; r < block.values.length; r += n) {
      for (let i = 0; i < n; i++) {
        const x = block.values[r + i];
        if (x === 0) continue;
        for (let j = 0; j < n; j++) C[i * n + j] += x * block.values[r + j];
      }
    }
  }
  const byAngular: Record<string, ExplicitRadialHypers> = {};
  for (const t of tables) {
    const n = t.size;
    const k = Math.min(maxRadial + 1, n);
    const { vectors } = symmetricEigen(covariance.get(t.l) as Float64Array, n);
    const project = (data: Float64Array, node: number) =>
      Array.from({ length: k }, (_, p) => {
        let s = 0;
        for (let q = 0; q < n; q++) s += vectors[p * n + q] * data[node * n + q];
        return s;
      });
    const points = Array.from(t.positions, (position, node) => ({ position, values: project(t.values, node), derivatives: project(t.derivatives, node) }));
    byAngular[String(t.l)] = { type: 'Tabulated', points };
  }
  const density = hypers.density as { center_atom_weight?: number; scaling?: unknown };
  return {
    cutoff: hypers.cutoff,
    density: { type: 'DiracDelta', center_atom_weight: density.center_atom_weight ?? 1, scaling: (density.scaling ?? null) as null },
    basis: { type: 'Explicit', by_angular: byAngular, spline_accuracy: null },
  };
}
