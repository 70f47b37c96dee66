// `acdc featurize`: streams an extxyz file through a calculator in batches and
// writes a design matrix (.npy) or a labelled TensorMap (.mts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SoapPowerSpectrum, SoapRadialSpectrum, SphericalExpansion, type SoapHypers, type RadialSpectrumHypers, type GradientName } from '../calculators';
import native from '../native';
import { Labels, TensorMap, type Dtype } from '../tensor';
import type { System } from '../system';
import { fromFrame } from '../xyz';
import { CLASSIC_CALCULATORS, classicDense, isClassic, isMatrix, makeClassicCalculator, type ClassicCalculator } from './classic';

/** The calculators `acdc featurize` knows, by featomic name. */
export const CALCULATORS = ['soap_power_spectrum', 'soap_radial_spectrum', 'spherical_expansion', ...CLASSIC_CALCULATORS] as const;
export type CalculatorName = (typeof CALCULATORS)[number];

/**
 * Hyper-parameters used when `--hypers` is not given: the common SOAP setting
 * (r_c 5 Å with a 0.5 Å shifted-cosine switch, σ 0.3 Å, 8 radial × 7 angular
 * channels).
 */
export const DEFAULT_SOAP_HYPERS: SoapHypers = {
  cutoff: { radius: 5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 6, radial: { type: 'Gto', max_radial: 7 } },
};

export interface FeaturizeOptions {
  calculator: CalculatorName;
  hypers?: string;
  perStructure?: 'sum' | 'mean';
  gradients?: GradientName[];
  out: string;
  threads?: number;
  batch: number;
  dtype: Dtype;
  species?: number[];
  json?: boolean;
  progress?: boolean;
}

export interface FeaturizeSummary {
  file: string;
  out: string;
  format: 'npy' | 'mts';
  calculator: CalculatorName;
  perStructure: 'sum' | 'mean' | null;
  gradients: GradientName[];
  species: number[];
  frames: number;
  atoms: number;
  rows: number | null;
  columns: number | null;
  dtype: Dtype;
  seconds: number;
  structuresPerSecond: number;
}

type Calc = SoapPowerSpectrum | SoapRadialSpectrum | SphericalExpansion | ClassicCalculator;

function makeCalculator(name: CalculatorName, hypersPath: string | undefined): Calc {
  if (isClassic(name)) return makeClassicCalculator(name, hypersPath);
  let hypers: unknown;
  if (hypersPath === undefined) {
    hypers = name === 'soap_radial_spectrum' ? { ...DEFAULT_SOAP_HYPERS, basis: { radial: DEFAULT_SOAP_HYPERS.basis.radial } } : DEFAULT_SOAP_HYPERS;
  } else {
    const text = fs.readFileSync(hypersPath, 'utf8');
    try {
      hypers = JSON.parse(text);
    } catch (e) {
      throw new Error(`--hypers ${hypersPath} is not valid JSON: ${(e as Error).message}`);
    }
  }
  switch (name) {
    case 'soap_power_spectrum':
      return new SoapPowerSpectrum(hypers as SoapHypers);
    case 'soap_radial_spectrum':
      return new SoapRadialSpectrum(hypers as RadialSpectrumHypers);
    case 'spherical_expansion':
      return new SphericalExpansion(hypers as SoapHypers);
  }
}

/**
 * Every key a calculator can produce for these species, as the columns of a
 * design matrix: `center` is the centre species, `moved` the neighbour
 * species combinations (sorted, as the calculators order them).
 */
function neighborKeys(name: CalculatorName, species: number[]): Labels {
  if (name === 'soap_power_spectrum') {
    const rows: number[][] = [];
    for (const a of species) for (const b of species) if (a <= b) rows.push([a, b]);
    return new Labels(['neighbor_1_type', 'neighbor_2_type'], rows);
  }
  return new Labels(['neighbor_type'], species.map((s) => [s]));
}

/** Frame count and species of an extxyz file (a streaming pass). */
async function scan(file: string): Promise<{ frames: number; atoms: number; species: number[] }> {
  const reader = new native.XyzReader(file);
  const species = new Set<number>();
  let frames = 0;
  let atoms = 0;
  for (;;) {
    const batch = await reader.next(512);
    if (batch.length === 0) break;
    for (const f of batch) {
      frames += 1;
      atoms += f.types.length;
      for (const t of f.types) species.add(t);
    }
  }
  return { frames, atoms, species: [...species].sort((a, b) => a - b) };
}

/** A one-line progress bar on stderr: structures/s and ETA. */
class Progress {
  readonly #total: number;
  readonly #start = process.hrtime.bigint();
  #last = 0;
  constructor(total: number) {
    this.#total = total;
  }
  update(done: number, force = false): void {
    const now = Date.now();
    if (!force && now - this.#last < 100) return;
    this.#last = now;
    const seconds = Number(process.hrtime.bigint() - this.#start) / 1e9;
    const rate = seconds > 0 ? done / seconds : 0;
    const frac = this.#total > 0 ? Math.min(1, done / this.#total) : 1;
    const width = 30;
    const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
    const eta = rate > 0 ? (this.#total - done) / rate : 0;
    process.stderr.write(
      `\r${bar} ${done}/${this.#total} structures  ${rate.toFixed(1)}/s  ETA ${formatSeconds(eta)}  elapsed ${formatSeconds(seconds)} `,
    );
  }
  end(): void {
    process.stderr.write('\n');
  }
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '-';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${Math.round(s - 60 * m).toString().padStart(2, '0')}s` : `${s.toFixed(1)}s`;
}

/**
 * Featurizes every frame of `file`. `.npy` output is a 2-D design matrix
 * (rows: structures with `perStructure`, else atoms in file order; columns:
 * every key combination × property for the species of the file, zeros where
 * a combination is absent), written as the batches complete. `.mts` output is
 * the labelled TensorMap (gradients included), collected in memory.
 */
export async function featurize(file: string, options: FeaturizeOptions): Promise<FeaturizeSummary> {
  const start = process.hrtime.bigint();
  const ext = path.extname(options.out).toLowerCase();
  if (ext !== '.npy' && ext !== '.mts') throw new Error(`--out must end in .npy or .mts, got "${options.out}"`);
  const format = ext === '.npy' ? 'npy' : 'mts';
  const gradients = options.gradients ?? [];
  if (format === 'npy' && gradients.length > 0) throw new Error('--gradients needs an .mts output (.npy holds one dense array, without gradients)');
  if (format === 'npy' && options.calculator === 'spherical_expansion') {
    throw new Error('spherical_expansion is equivariant (its blocks have different shapes): write it to an .mts file');
  }
  if (options.threads !== undefined) process.env.ACDC_NUM_THREADS = String(options.threads);
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
  const calc = makeCalculator(options.calculator, options.hypers);

  // The species fix the columns of the design matrix across batches; the
  // frame count drives the progress bar.
  let total: number | undefined;
  let species = options.species;
  if (species === undefined || options.progress) {
    const s = await scan(file);
    total = s.frames;
    species ??= s.species;
  }
  species = [...new Set(species)].sort((a, b) => a - b);
  const moved = neighborKeys(options.calculator, species);
  const allKeys = new Labels(['center_type', ...moved.names], species.flatMap((c) => Array.from({ length: moved.count }, (_, r) => [c, ...moved.row(r)])));

  const progress = options.progress && total !== undefined ? new Progress(total) : undefined;
  let writer: InstanceType<typeof native.NpyRowWriter> | undefined;
  let columns: number | null = null;
  const parts: TensorMap[] = [];
  const systemCounts: number[] = [];
  let frames = 0;
  let atoms = 0;

  const reader = new native.XyzReader(file);
  let next = reader.next(options.batch);
  try {
    for (;;) {
      const batch = await next;
      if (batch.length === 0) break;
      // read the next batch while this one is computed
      next = reader.next(options.batch);
      const systems = batch.map(fromFrame);
      let tm = await calc.compute(systems, gradients.length ? { gradients } : undefined);
      // the matrices have one row per structure already
      const perStructure = !!options.perStructure || isMatrix(options.calculator);
      if (options.perStructure === 'sum' && !isMatrix(options.calculator)) tm = tm.sumOverSamples('atom');
      else if (options.perStructure === 'mean' && !isMatrix(options.calculator)) tm = tm.meanOverSamples('atom');

      if (format === 'mts') {
        parts.push(tm);
        systemCounts.push(systems.length);
      } else {
        const rowsAtoms = systems.reduce((n, s) => n + s.size, 0);
        const dense = isClassic(options.calculator)
          ? classicDense(options.calculator, tm, species, perStructure)
          : options.perStructure
            ? tm.keysToProperties(allKeys)
            : tm.keysToProperties(moved).keysToSamples('center_type');
        const block = dense.block(0);
        columns ??= block.properties.count;
        writer ??= new native.NpyRowWriter(options.out, columns, options.dtype);
        writer.append(orderedRows(block.samples, block.values, columns, perStructure ? systems.length : rowsAtoms, systems, perStructure));
      }
      frames += systems.length;
      atoms += systems.reduce((n, s) => n + s.size, 0);
      progress?.update(frames);
    }
  } finally {
    // let a pending read settle before the reader goes away
    await next.catch(() => undefined);
  }
  progress?.update(frames, true);
  progress?.end();

  let rows: number | null = null;
  if (format === 'npy') {
    if (writer === undefined) {
      // no frames at all: an empty design matrix with no columns
      writer = new native.NpyRowWriter(options.out, 0, options.dtype);
      columns = 0;
    }
    rows = writer.finish();
  } else {
    if (parts.length === 0) throw new Error(`${file} holds no frames: nothing to save`);
    await TensorMap.join(parts, { systemCounts }).saveAsync(options.out);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return {
    file,
    out: options.out,
    format,
    calculator: options.calculator,
    perStructure: options.perStructure ?? null,
    gradients,
    species,
    frames,
    atoms,
    rows,
    columns,
    dtype: options.dtype,
    seconds,
    structuresPerSecond: frames / seconds,
  };
}

/**
 * Rows of the batch's design matrix in file order: one per structure (per
 * structure) or per atom (system, atom), zeros for a row the calculator
 * produced nothing for (a structure without atoms, an atom of a species
 * without keys).
 */
function orderedRows(samples: Labels, values: Float64Array, columns: number, n: number, systems: System[], perStructure: boolean): Float64Array {
  const out = new Float64Array(n * columns);
  const system = samples.column('system');
  const offsets: number[] = [];
  let acc = 0;
  for (const s of systems) {
    offsets.push(acc);
    acc += s.size;
  }
  const atom = perStructure ? undefined : samples.column('atom');
  for (let r = 0; r < samples.count; r++) {
    const row = perStructure ? system[r] : offsets[system[r]] + atom![r];
    out.set(values.subarray(r * columns, (r + 1) * columns), row * columns);
  }
  return out;
}
