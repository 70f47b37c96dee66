/**
 * Data-driven compression of the SOAP basis: pseudo-elements (alchemical
 * compression, Willatt, Musil and Ceriotti, PCCP 20, 29661 (2018)) and
 * contracted radial bases (Goscinski, Musil, Pozdnyakov, Nigam and Ceriotti,
 * J. Chem. Phys. 155, 104106 (2021)).
 */
//
// The fits run in the core (acdc_core::analysis::compression, off the event
// loop); this module checks the options and writes the hyper-parameters.
import { invalidParameter } from './errors';
import native from './native';
import { runQueued } from './schedule';
import { type SoapHypers, type ExplicitRadialHypers } from './calculators';
import { asSystem, System, type SystemInit } from './system';

function systemData(systems: System | SystemInit | Array<System | SystemInit>) {
  const list = Array.isArray(systems) ? systems : [systems];
  return list.map((s, k) => asSystem(s, `systems[${k}]`).data());
}

/** Options of {@link fitAlchemicalCoupling}. */
export interface AlchemicalFitOptions {
  /** Number B of pseudo-elements (1 ≤ B ≤ number of elements in the systems). */
  pseudoTypes: number;
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
  const data = systemData(systems);
  const json = JSON.stringify(withoutAlchemical(hypers));
  return withCoupling(hypers, options, await runQueued(() => native.alchemicalComponents(data, json)));
}

/** The blocking form of {@link fitAlchemicalCoupling}: the same hyper-parameters, returned directly. */
export function fitAlchemicalCouplingSync(
  systems: System | SystemInit | Array<System | SystemInit>,
  hypers: SoapHypers,
  options: AlchemicalFitOptions,
): SoapHypers {
  return withCoupling(hypers, options, native.alchemicalComponentsSync(systemData(systems), JSON.stringify(withoutAlchemical(hypers))));
}

function withCoupling(hypers: SoapHypers, options: AlchemicalFitOptions, components: { types: number[]; coupling: number[][] }): SoapHypers {
  const { types, coupling: all } = components;
  const S = types.length;
  const B = options?.pseudoTypes;
  if (!Number.isInteger(B) || B < 1 || B > S) {
    throw invalidParameter(`pseudoTypes must be an integer between 1 and the number of elements in the systems (${S}), got ${String(B)}`);
  }
  const coupling = all.slice(0, B);
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
  const maxRadial = checkContraction(hypers, options);
  const data = systemData(systems);
  const json = JSON.stringify(hypers);
  return explicitHypers(hypers, await runQueued(() => native.fitRadialContraction(data, json, maxRadial)));
}

/** The blocking form of {@link fitRadialContraction}: the same hyper-parameters, returned directly. */
export function fitRadialContractionSync(
  systems: System | SystemInit | Array<System | SystemInit>,
  hypers: SoapHypers,
  options: RadialContractionOptions,
): SoapHypers {
  const maxRadial = checkContraction(hypers, options);
  return explicitHypers(hypers, native.fitRadialContractionSync(systemData(systems), JSON.stringify(hypers), maxRadial));
}

function checkContraction(hypers: SoapHypers, options: RadialContractionOptions): number {
  const maxRadial = options?.maxRadial;
  if (!Number.isInteger(maxRadial) || maxRadial < 0 || maxRadial > 2 ** 31) throw invalidParameter(`maxRadial must be a non-negative integer, got ${String(maxRadial)}`);
  if (options.byType) throw invalidParameter('byType: true is not supported (per-type radial functions cannot be written as one Explicit basis)');
  if ((hypers.density as { alchemical?: unknown }).alchemical !== undefined) {
    throw invalidParameter('density.alchemical: fit the radial contraction on the species-resolved hyper-parameters, then add alchemical');
  }
  return maxRadial;
}

type RadialTables = ReturnType<typeof native.fitRadialContractionSync>;

function explicitHypers(hypers: SoapHypers, tables: RadialTables): SoapHypers {
  const byAngular: Record<string, ExplicitRadialHypers> = {};
  for (const t of tables) {
    const k = t.size;
    const row = (data: Float64Array, node: number) => Array.from(data.subarray(node * k, (node + 1) * k));
    const points = Array.from(t.positions, (position, node) => ({ position, values: row(t.values, node), derivatives: row(t.derivatives, node) }));
    byAngular[String(t.l)] = { type: 'Tabulated', points };
  }
  const density = hypers.density as { center_atom_weight?: number; scaling?: unknown };
  return {
    cutoff: hypers.cutoff,
    density: { type: 'DiracDelta', center_atom_weight: density.center_atom_weight ?? 1, scaling: (density.scaling ?? null) as null },
    basis: { type: 'Explicit', by_angular: byAngular, spline_accuracy: null },
  };
}
