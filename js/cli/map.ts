// `acdc map`: a two-dimensional map of a data set. SOAP power spectrum of
// every atom → one row per structure (mean over its atoms) or per atom →
// principal component analysis → a chemiscope input file with the first two
// principal components on the axes, and optionally an SVG scatter plot.
import * as fs from 'node:fs';
import { pcaAsync } from '../analysis';
import { kernelPcaAsync } from '../kernel_pca';
import { polynomialKernelAsync } from '../models';
import { chemiscopeInput, chemiscopeMapSettings, writeChemiscope, type ChemiscopeProperty } from '../chemiscope';
import { checkWritableTarget, writeAtomically } from '../atomic';
import { scatterSvg } from '../plot';
import { calculatorFromFile, readSystems, soapFeatures } from './features';

export interface MapOptions {
  out: string;
  hypers?: string;
  perAtom?: boolean;
  /** Property that colours the points (default: n_atoms, or atomic_number with --per-atom). */
  color?: string;
  svg?: string;
}

export interface MapSummary {
  file: string;
  out: string;
  svg: string | null;
  calculator: string;
  target: 'structure' | 'atom';
  structures: number;
  atoms: number;
  /** Rows and columns of the matrix given to PCA. */
  rows: number;
  columns: number;
  color: string;
  /** Variance along the two principal components (in squared feature units), and its fraction of the total. */
  explainedVariance: number[];
  explainedFraction: number[];
  seconds: number;
}

/**
 * The first two principal components of the rows of X (N × F), as `pca`
 * gives them (scores, variances, signs: each component's largest-magnitude
 * entry positive). With more columns than rows, they come from the
 * eigenvectors of the centred Gram matrix (N × N) instead of the SVD of X:
 * the same numbers, for N²F work instead of an SVD of a wide matrix. The
 * Gram matrix is |x_i||x_j| times the normalised linear kernel.
 */
export async function principalComponents(X: Float64Array, N: number, F: number): Promise<{ scores: { data: Float64Array; shape: number[] }; explainedVariance: Float64Array }> {
  if (F <= N) return pcaAsync({ data: X, shape: [N, F] }, 2);
  const norms = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (let f = 0; f < F; f++) s += X[i * F + f] ** 2;
    norms[i] = Math.sqrt(s);
  }
  // rows of zeros (atoms without neighbours) have no direction: the kernel needs non-zero rows
  const safe = Float64Array.from(X);
  for (let i = 0; i < N; i++) if (norms[i] === 0) safe[i * F] = 1;
  const K = (await polynomialKernelAsync({ data: safe, shape: [N, F] }, { data: safe, shape: [N, F] }, { zeta: 1 })).data;
  for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) K[i * N + j] *= norms[i] * norms[j];
  const k = await kernelPcaAsync({ data: K, shape: [N, N] }, 2, { precomputed: true });
  const scores = k.scores.data;
  for (let c = 0; c < 2; c++) {
    // the component in feature space, Xᵀu (up to a positive factor; centring does not change it since Σu = 0), for its sign
    let best = 0;
    for (let f = 0; f < F; f++) {
      let v = 0;
      for (let i = 0; i < N; i++) v += X[i * F + f] * k.eigenvectors.data[i * 2 + c];
      if (Math.abs(v) > Math.abs(best)) best = v;
    }
    if (best < 0) for (let i = 0; i < N; i++) scores[i * 2 + c] = -scores[i * 2 + c];
  }
  return { scores: k.scores, explainedVariance: Float64Array.from(k.eigenvalues, (l) => l / (N - 1)) };
}

/** Runs `acdc map`; writes nothing unless every step succeeded. */
export async function map(file: string, options: MapOptions): Promise<MapSummary> {
  const t0 = performance.now();
  if (!options.out.endsWith('.json') && !options.out.endsWith('.json.gz')) {
    throw new Error(`--out ${options.out}: a chemiscope file must end in .json or .json.gz`);
  }
  checkWritableTarget(options.out, '--out');
  if (options.svg !== undefined) {
    if (!options.svg.endsWith('.svg')) throw new Error(`--svg ${options.svg}: the plot file must end in .svg`);
    checkWritableTarget(options.svg, '--svg');
  }
  const calc = calculatorFromFile('--hypers', options.hypers);
  const systems = await readSystems(file);
  const target = options.perAtom ? 'atom' : 'structure';
  const f = await soapFeatures(calc, systems);
  const nAtoms = f.offsets[systems.length];
  const rows = options.perAtom ? nAtoms : systems.length;
  const X = { data: options.perAtom ? f.atoms : f.structures, shape: [rows, f.columns] };
  if (rows < 3) throw new Error(`${file}: ${rows} ${options.perAtom ? 'atoms' : 'structures'}: a map needs at least 3`);

  // the total variance, to tell a data set of identical points
  let total = 0;
  for (let c = 0; c < f.columns; c++) {
    let mean = 0;
    for (let r = 0; r < rows; r++) mean += X.data[r * f.columns + c];
    mean /= rows;
    for (let r = 0; r < rows; r++) total += (X.data[r * f.columns + c] - mean) ** 2;
  }
  total /= rows - 1;
  let scale = 0;
  for (const v of X.data) scale = Math.max(scale, Math.abs(v));
  if (!(total > 1e-24 * Math.max(scale * scale, 1e-300))) {
    throw new Error(`${file}: every ${options.perAtom ? 'atom' : 'structure'} has the same features (zero variance): there is nothing to map`);
  }
  const p = await principalComponents(X.data, rows, f.columns);

  const properties: Record<string, ChemiscopeProperty> = {
    n_atoms: { target: 'structure', values: systems.map((s) => s.size), description: 'number of atoms' },
    pca: { target, values: p.scores, description: `principal components of the ${options.perAtom ? 'atomic' : 'per-structure mean'} SOAP ${calc.name}` },
  };
  if (options.perAtom) {
    properties.atomic_number = { target: 'atom', values: Float64Array.from(systems.flatMap((s) => Array.from(s.types))), description: 'atomic number' };
  }
  const cutoff = (calc.hypers as { cutoff: { radius: number } }).cutoff.radius;
  const base = { properties, environments: options.perAtom ? { cutoff } : undefined };
  // the colour: any property of the map's target
  const available = chemiscopeInput(systems, base).properties;
  const color = options.color ?? (options.perAtom ? 'atomic_number' : 'n_atoms');
  const colorProperty = available[color];
  if (colorProperty === undefined || colorProperty.target !== target) {
    const names = Object.entries(available)
      .filter(([name, q]) => q.target === target && !name.startsWith('pca['))
      .map(([name]) => name);
    const why = colorProperty ? `is a per-${colorProperty.target} property, and this map has one point per ${target}` : 'is not a property of the file';
    throw new Error(`--color ${color} ${why}; ${names.length > 0 ? `per-${target} properties: ${names.join(', ')}` : `the file has no per-${target} property`}`);
  }

  const svg =
    options.svg === undefined
      ? undefined
      : await scatterSvg(
          Float64Array.from({ length: rows }, (_, r) => p.scores.data[2 * r]),
          Float64Array.from({ length: rows }, (_, r) => p.scores.data[2 * r + 1]),
          {
            title: `${file.split('/').pop()}: PCA of the ${options.perAtom ? 'atomic' : 'per-structure mean'} SOAP features`,
            xTitle: `PC 1 (${((100 * p.explainedVariance[0]) / total).toFixed(1)} % of the variance)`,
            yTitle: `PC 2 (${((100 * p.explainedVariance[1]) / total).toFixed(1)} % of the variance)`,
            color: { title: color, values: colorProperty.values },
          },
        );
  await writeChemiscope(options.out, systems, {
    ...base,
    settings: chemiscopeMapSettings({ x: 'pca[1]', y: 'pca[2]', color, target }),
    meta: { name: file.split('/').pop()!, description: `acdc map: PCA of SOAP features (${calc.name}) of ${file}` },
  });
  if (options.svg !== undefined && svg !== undefined) {
    await writeAtomically(options.svg, (tmp) => fs.promises.writeFile(tmp, svg));
  }
  return {
    file,
    out: options.out,
    svg: options.svg ?? null,
    calculator: calc.name,
    target,
    structures: systems.length,
    atoms: nAtoms,
    rows,
    columns: f.columns,
    color,
    explainedVariance: Array.from(p.explainedVariance),
    explainedFraction: Array.from(p.explainedVariance, (v) => v / total),
    seconds: (performance.now() - t0) / 1000,
  };
}
