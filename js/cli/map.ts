// `acdc map`: a two-dimensional map of a data set. SOAP power spectrum of
// every atom → one row per structure (mean over its atoms) or per atom →
// principal component analysis → a chemiscope input file with the first two
// principal components on the axes, and optionally an SVG scatter plot.
import { coded } from '../errors';
import * as fs from 'node:fs';
import { pcaAsync } from '../analysis';
import { chemiscopeInput, chemiscopeMapSettings, writeChemiscope, type ChemiscopeProperty } from '../chemiscope';
import { checkWritableTarget, writeAtomically } from '../atomic';
import { scatterSvg } from '../plot';
import { calculatorFromFile, readSystems, soapFeatures } from './features';
import type { Stages } from './stages';

export interface MapOptions {
  out: string;
  hypers?: string;
  perAtom?: boolean;
  /** Property that colours the points (default: n_atoms, or atomic_number with --per-atom). */
  color?: string;
  svg?: string;
  /** The stage line (--progress). */
  stages?: Stages;
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

/** Runs `acdc map`; writes nothing unless every step succeeded. */
export async function map(file: string, options: MapOptions): Promise<MapSummary> {
  const t0 = performance.now();
  if (!options.out.endsWith('.json') && !options.out.endsWith('.json.gz')) {
    throw coded('ACDC_INVALID_PARAMETER', `--out ${options.out}: a chemiscope file must end in .json or .json.gz`);
  }
  checkWritableTarget(options.out, '--out');
  if (options.svg !== undefined) {
    if (!options.svg.endsWith('.svg')) throw coded('ACDC_INVALID_PARAMETER', `--svg ${options.svg}: the plot file must end in .svg`);
    checkWritableTarget(options.svg, '--svg');
  }
  const calc = calculatorFromFile('--hypers', options.hypers);
  options.stages?.start(`reading ${file}`);
  const systems = await readSystems(file);
  const target = options.perAtom ? 'atom' : 'structure';
  options.stages?.start(`${calc.name} of ${systems.length} structures`);
  const f = await soapFeatures(calc, systems);
  const nAtoms = f.offsets[systems.length];
  const rows = options.perAtom ? nAtoms : systems.length;
  const X = { data: options.perAtom ? f.atoms : f.structures, shape: [rows, f.columns] };
  if (rows < 3) throw coded('ACDC_INVALID_PARAMETER', `${file}: ${rows} ${options.perAtom ? 'atoms' : 'structures'}: a map needs at least 3`);

  // PCA in the core: the full SVD for small matrices, subspace iteration for
  // many atoms (O(N·F) a sweep, so 10⁵ atoms map in seconds)
  options.stages?.start(`PCA of ${rows} × ${f.columns}`);
  const p = await pcaAsync(X, 2);
  const total = p.totalVariance;
  let scale = 0;
  for (const v of X.data) scale = Math.max(scale, Math.abs(v));
  // the total variance tells a data set of identical points
  if (!(total > 1e-24 * Math.max(scale * scale, 1e-300))) {
    throw coded('ACDC_NUMERICAL', `${file}: every ${options.perAtom ? 'atom' : 'structure'} has the same features (zero variance): there is nothing to map`);
  }

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
    throw coded('ACDC_INVALID_PARAMETER', `--color ${color} ${why}; ${names.length > 0 ? `per-${target} properties: ${names.join(', ')}` : `the file has no per-${target} property`}`);
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
  options.stages?.start(`writing ${options.out}`);
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
