// `acdc featurize`: streams an extxyz file through a calculator in batches and
// writes a design matrix (.npy, with a .labels.json sidecar) or a labelled
// TensorMap (.mts). Outputs appear whole or not at all.
import { rethrown, withCode } from '../errors';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SoapPowerSpectrum, SoapRadialSpectrum, SphericalExpansion, EquivariantPowerSpectrum, SoapBispectrum, type SoapHypers, type RadialSpectrumHypers, type GradientName } from '../calculators';
import native from '../native';
import { Labels, TensorBlock, TensorMap, type Dtype } from '../tensor';
import type { System } from '../system';
import { fromFrame } from '../xyz';
import type { AbortSignalLike } from '../schedule';
import { checkWritableTarget, commitSync, discard, temporaryPathFor, writeAtomicallySync } from '../atomic';
import { resolveInput, type ResolvedInput } from './input';
import { designRowsToNpy, fusedOutput, scanNative, usesDesignRows } from './design_rows';
import { CLASSIC_CALCULATORS, classicDense, isClassic, isMatrix, makeClassicCalculator, type ClassicCalculator } from './classic';
import { CoulombMatrix, EwaldSumMatrix, SineMatrix, SymmetryFunctions } from '../classic';

/** The calculators `acdc featurize` knows, by featomic name. */
export const CALCULATORS = ['soap_power_spectrum', 'soap_radial_spectrum', 'spherical_expansion', 'equivariant_power_spectrum', 'soap_bispectrum', ...CLASSIC_CALCULATORS] as const;
export type CalculatorName = (typeof CALCULATORS)[number];

/**
 * How per-atom rows become one row per structure:
 * - `sum`: Σ_i x_i over the atoms of the structure;
 * - `mean`: (Σ_i x_i) / N, N the number of atoms of the structure (zeros for a structure without atoms);
 * - `species-mean`: for each centre species a, (Σ_{i of species a} x_i) / N_a
 *   (metatensor's `mean_over_samples` on each block).
 */
export const PER_STRUCTURE = ['sum', 'mean', 'species-mean'] as const;
export type PerStructure = (typeof PER_STRUCTURE)[number];

/**
 * Hyper-parameters used when `--hypers` is not given: the common SOAP setting
 * (r_c 5 Å with a 0.5 Å shifted-cosine switch, σ 0.3 Å, 8 radial × 7 angular
 * channels).
 */
export const DEFAULT_SOAP_HYPERS = {
  cutoff: { radius: 5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 6, radial: { type: 'Gto', max_radial: 7 } },
} satisfies SoapHypers;

/**
 * Hyper-parameters of `soap_bispectrum` when `--hypers` is not given: the
 * SOAP cutoff and density with a smaller basis (4 radial × 4 angular
 * channels), since the ν = 3 invariants grow as (n_max · l_max)³.
 */
export const DEFAULT_BISPECTRUM_HYPERS: SoapHypers = {
  ...DEFAULT_SOAP_HYPERS,
  basis: { type: 'TensorProduct', max_angular: 3, radial: { type: 'Gto', max_radial: 3 } },
};

/** Most structures one batch may hold. */
export const MAX_BATCH = 1_000_000;

export interface FeaturizeOptions {
  calculator: CalculatorName;
  hypers?: string;
  perStructure?: PerStructure;
  gradients?: GradientName[];
  out: string;
  threads?: number;
  batch: number;
  /** Element type of `.npy` output; not allowed with `.mts`. */
  dtype?: Dtype;
  /** Species that fix the `.npy` columns; not allowed with `.mts`. */
  species?: number[];
  json?: boolean;
  progress?: boolean;
  /** Memory budget of each batch's computation (bytes or a size such as '4G'). */
  maxMemory?: string;
  /**
   * Most values (rows × columns) the output may hold (`acdc serve`'s
   * maxFeatures): with the SOAP spectra's .npy, checked before each batch is
   * computed, so an answer that would be too large is refused before the work.
   */
  maxValues?: number;
  /** Cancels the computation (between batches, and between centres within one). */
  signal?: AbortSignalLike;
  /**
   * The calculator of `calculator` and `hypers`, already built by
   * {@link makeCalculator} (reused across calls by queue workers). @internal
   */
  calculatorInstance?: Calc;
}

export interface FeaturizeSummary {
  file: string;
  out: string;
  /** The `.labels.json` sidecar of a `.npy` output, else null. */
  labels: string | null;
  format: 'npy' | 'mts';
  calculator: CalculatorName;
  perStructure: PerStructure | null;
  gradients: GradientName[];
  /** Species of the columns (.npy) or of the keys in the file (.mts). */
  species: number[];
  frames: number;
  atoms: number;
  rows: number | null;
  columns: number | null;
  dtype: Dtype;
  seconds: number;
  structuresPerSecond: number;
}

/** A calculator `acdc featurize` can run. @internal */
export type Calc = SoapPowerSpectrum | SoapRadialSpectrum | SphericalExpansion | EquivariantPowerSpectrum | SoapBispectrum | ClassicCalculator;

export function readHypersFile(hypersPath: string): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(hypersPath);
  } catch {
    throw new Error(`--hypers ${hypersPath}: no such file`);
  }
  if (st.isDirectory()) throw new Error(`--hypers ${hypersPath} is a folder, not a JSON file`);
  if (st.size > 64 << 20) throw new Error(`--hypers ${hypersPath} is ${st.size} bytes: too large for hyper-parameters`);
  const text = fs.readFileSync(hypersPath, 'utf8');
  try {
    JSON.parse(text);
  } catch (e) {
    // V8's message quotes the text; name the place instead of echoing the file
    const m = /position (\d+)/.exec((e as Error).message);
    let where = '';
    if (m) {
      const before = text.slice(0, Number(m[1]));
      where = ` at line ${before.split('\n').length}, column ${Number(m[1]) - before.lastIndexOf('\n')}`;
    }
    throw new Error(`--hypers ${hypersPath} is not valid JSON${where}`);
  }
  return text;
}

/** The calculator named `name` with the hyper-parameters of `hypersPath` (else the defaults). @internal */
export function makeCalculator(name: CalculatorName, hypersPath: string | undefined): Calc {
  if (isClassic(name)) return makeClassicCalculator(name, hypersPath);
  if (hypersPath === undefined) {
    switch (name) {
      case 'soap_power_spectrum':
        return new SoapPowerSpectrum(DEFAULT_SOAP_HYPERS);
      case 'soap_radial_spectrum':
        return new SoapRadialSpectrum({ ...DEFAULT_SOAP_HYPERS, basis: { radial: DEFAULT_SOAP_HYPERS.basis.radial } });
      case 'spherical_expansion':
        return new SphericalExpansion(DEFAULT_SOAP_HYPERS);
      case 'equivariant_power_spectrum':
        return new EquivariantPowerSpectrum(DEFAULT_SOAP_HYPERS);
      case 'soap_bispectrum':
        return new SoapBispectrum(DEFAULT_BISPECTRUM_HYPERS);
    }
  }
  const text = readHypersFile(hypersPath);
  try {
    switch (name) {
      case 'soap_power_spectrum':
        return SoapPowerSpectrum.fromJson(text);
      case 'soap_radial_spectrum':
        return SoapRadialSpectrum.fromJson(text);
      case 'spherical_expansion':
        return SphericalExpansion.fromJson(text);
      case 'equivariant_power_spectrum':
        return EquivariantPowerSpectrum.fromJson(text);
      case 'soap_bispectrum':
        return SoapBispectrum.fromJson(text);
    }
  } catch (e) {
    throw rethrown(e, `--hypers ${hypersPath}: ${(e as Error).message.replace(/^invalid parameter: /, '')}`);
  }
}

/**
 * {@link makeCalculator} from JSON text (null: the defaults), built off the
 * event loop (`fromJsonAsync`): what `acdc serve` uses, so that a request
 * with a large basis does not stall the other clients. Errors are those of
 * the calculator, without a file name. @internal
 */
export async function makeCalculatorAsync(name: CalculatorName, text: string | null, signal?: AbortSignalLike): Promise<Calc> {
  if (text === null) {
    if (isClassic(name)) return makeClassicCalculator(name, undefined); // throws: needs hypers
    text = JSON.stringify(name === 'soap_bispectrum' ? DEFAULT_BISPECTRUM_HYPERS : name === 'soap_radial_spectrum' ? { ...DEFAULT_SOAP_HYPERS, basis: { radial: DEFAULT_SOAP_HYPERS.basis.radial } } : DEFAULT_SOAP_HYPERS);
  }
  const o = signal ? { signal } : {};
  try {
    switch (name) {
      case 'soap_power_spectrum':
        return await SoapPowerSpectrum.fromJsonAsync(text, o);
      case 'soap_radial_spectrum':
        return await SoapRadialSpectrum.fromJsonAsync(text, o);
      case 'spherical_expansion':
        return await SphericalExpansion.fromJsonAsync(text, o);
      case 'equivariant_power_spectrum':
        return await EquivariantPowerSpectrum.fromJsonAsync(text, o);
      case 'soap_bispectrum':
        return await SoapBispectrum.fromJsonAsync(text, o);
      case 'symmetry_functions':
        return await SymmetryFunctions.fromJsonAsync(text, o);
      case 'coulomb_matrix':
        return await CoulombMatrix.fromJsonAsync(text, o);
      case 'sine_matrix':
        return await SineMatrix.fromJsonAsync(text, o);
      case 'ewald_sum_matrix':
        return await EwaldSumMatrix.fromJsonAsync(text, o);
    }
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new Error(`hypers: ${(e as Error).message.replace(/^invalid parameter: /, '')}`);
  }
}

/**
 * Every key a calculator can produce for these species, as the columns of a
 * design matrix: the neighbour species combinations (sorted, as the
 * calculators order them), or for a power spectrum with
 * `density.alchemical` the pseudo-element pairs b₁ ≤ b₂ (numbered from 0 by
 * the rows of the coupling), whatever the species.
 */
function neighborKeys(name: CalculatorName, species: number[], calc: Calc): Labels {
  if (name === 'soap_power_spectrum') {
    const alchemical = ((calc as SoapPowerSpectrum).hypers.density as { alchemical?: { coupling: number[][] } }).alchemical;
    if (alchemical !== undefined) {
      const rows: number[][] = [];
      const b = alchemical.coupling.length;
      for (let b1 = 0; b1 < b; b1++) for (let b2 = b1; b2 < b; b2++) rows.push([b1, b2]);
      return new Labels(['pseudo_1_type', 'pseudo_2_type'], rows);
    }
    const rows: number[][] = [];
    for (const a of species) for (const b of species) if (a <= b) rows.push([a, b]);
    return new Labels(['neighbor_1_type', 'neighbor_2_type'], rows);
  }
  return new Labels(['neighbor_type'], species.map((s) => [s]));
}

/** Frame count and species of an extxyz file (a streaming pass). */
async function scan(input: ResolvedInput): Promise<{ frames: number; atoms: number; species: number[] }> {
  const reader = new native.XyzReader(input.path);
  const species = new Set<number>();
  let frames = 0;
  let atoms = 0;
  for (;;) {
    let batch;
    try {
      batch = await reader.next(512);
    } catch (e) {
      throw rethrown(e, `${input.name}: ${(e as Error).message}`);
    }
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
 * Rewrites a core error about `system k` / `systems[k]` of a batch into the
 * frame's index in the file (and the line of its atom-count header).
 */
export function frameError(e: unknown, input: ResolvedInput, firstFrame: number, lines: number[]): Error {
  const message = e instanceof Error ? e.message : String(e);
  const m = /systems\[(\d+)\]: |\bof system (\d+)\b/.exec(message);
  if (!m) return rethrown(e, `${input.name}, frames ${firstFrame}–${firstFrame + lines.length - 1}: ${message}`);
  const k = Number(m[1] ?? m[2]);
  const cleaned = m[1] !== undefined ? message.replace(m[0], '') : message.replace(m[0], '');
  return rethrown(e, `${input.name}, frame ${firstFrame + k} (line ${lines[k]}): ${cleaned}`);
}

/**
 * The permutation of key dimensions under which every observed key order
 * is lexicographic: the order in which calculators emit their keys, so that
 * a map joined over batches keeps the order of a single `compute()`.
 */
function keyOrder(observed: Labels[], names: string[]): number[] {
  const permutations = (xs: number[]): number[][] =>
    xs.length <= 1 ? [xs] : xs.flatMap((x, k) => permutations([...xs.slice(0, k), ...xs.slice(k + 1)]).map((p) => [x, ...p]));
  const compare = (perm: number[], a: ArrayLike<number>, b: ArrayLike<number>) => {
    for (const d of perm) if (a[d] !== b[d]) return a[d] - b[d];
    return 0;
  };
  const identity = names.map((_, d) => d);
  for (const perm of permutations(identity)) {
    const sorted = observed.every((keys) => {
      for (let r = 1; r < keys.count; r++) if (compare(perm, keys.row(r - 1), keys.row(r)) > 0) return false;
      return true;
    });
    if (sorted) return perm;
  }
  return identity;
}

function reorderKeys(tm: TensorMap, perm: number[]): TensorMap {
  const rows = Array.from({ length: tm.keys.count }, (_, r) => ({ key: Array.from(tm.keys.row(r)), block: tm.block(r) }));
  rows.sort((a, b) => {
    for (const d of perm) if (a.key[d] !== b.key[d]) return a.key[d] - b.key[d];
    return 0;
  });
  return new TensorMap(
    new Labels(
      tm.keys.names,
      rows.map((r) => r.key),
    ),
    rows.map((r) => r.block),
  );
}

/** Bytes held by a TensorMap's values, gradients and labels. */
function tensorBytes(tm: TensorMap): number {
  let bytes = tm.keys.values.byteLength;
  const block = (b: TensorBlock) => b.values.byteLength + b.samples.values.byteLength + b.properties.values.byteLength;
  for (const b of tm.blocks()) {
    bytes += block(b);
    for (const name of b.gradientsList()) bytes += block(b.gradient(name)!);
  }
  return bytes;
}

/** Divides the values (and gradients) of per-structure rows by each structure's atom count. */
function divideByAtomCount(tm: TensorMap, systems: System[]): TensorMap {
  for (const block of tm.blocks()) {
    const system = block.samples.column('system');
    const props = block.shape.slice(1).reduce((a, b) => a * b, 1);
    const values = block.values;
    for (let r = 0; r < system.length; r++) {
      const n = systems[system[r]].size;
      const scale = n > 0 ? 1 / n : 0;
      for (let p = r * props; p < (r + 1) * props; p++) values[p] *= scale;
    }
    for (const name of block.gradientsList()) {
      const g: TensorBlock | undefined = block.gradient(name);
      if (!g) continue;
      const sample = g.samples.column('sample');
      const gprops = g.shape.slice(1).reduce((a, b) => a * b, 1);
      const gv = g.values;
      for (let r = 0; r < sample.length; r++) {
        const n = systems[system[sample[r]]].size;
        const scale = n > 0 ? 1 / n : 0;
        for (let p = r * gprops; p < (r + 1) * gprops; p++) gv[p] *= scale;
      }
    }
  }
  return tm;
}

/** Row labels and column labels of a design matrix, for the `.labels.json` sidecar. */
export interface LabelsSidecar {
  description: string;
  calculator: CalculatorName;
  perStructure: PerStructure | null;
  dtype: Dtype;
  rows: { names: string[]; values: number[][] };
  columns: { names: string[]; values: number[][] };
}

/**
 * Featurizes every frame of `file` (a path, `-` for standard input, a pipe,
 * or a gzip file). `.npy` output is a 2-D design matrix (rows: structures
 * with `perStructure`, else atoms in file order; columns: every key
 * combination × property for the species of the file, zeros where a
 * combination is absent) written as the batches complete, plus
 * `<out>.labels.json` naming rows and columns. `.mts` output is the
 * labelled TensorMap (gradients included), collected in memory. Both are
 * written to a temporary file and renamed when complete.
 */
export async function featurize(file: string, options: FeaturizeOptions): Promise<FeaturizeSummary> {
  const start = process.hrtime.bigint();
  const ext = path.extname(options.out).toLowerCase();
  if (ext !== '.npy' && ext !== '.mts') throw new Error(`--out must end in .npy or .mts, got "${options.out}"`);
  const format = ext === '.npy' ? 'npy' : 'mts';
  const gradients = options.gradients ?? [];
  if (format === 'npy' && gradients.length > 0) throw new Error('--gradients needs an .mts output (.npy holds one dense array, without gradients)');
  if (format === 'mts' && options.dtype !== undefined) throw new Error('--dtype applies to .npy output only (.mts files hold float64)');
  if (format === 'mts' && options.species !== undefined) throw new Error('--species fixes the columns of .npy output only (.mts files hold the keys of every species present)');
  if (format === 'npy' && (options.calculator === 'spherical_expansion' || options.calculator === 'equivariant_power_spectrum')) {
    throw new Error(`${options.calculator} is equivariant (its blocks have different shapes): write it to an .mts file`);
  }
  if (format === 'npy' && options.calculator === 'soap_bispectrum') throw new Error('soap_bispectrum is written to .mts files only (use --out <file>.mts)');
  if (!Number.isInteger(options.batch) || options.batch < 1 || options.batch > MAX_BATCH) {
    throw new Error(`--batch must be an integer between 1 and ${MAX_BATCH}, got ${options.batch}`);
  }
  const dtype: Dtype = options.dtype ?? 'float64';
  if (options.threads !== undefined) process.env.ACDC_NUM_THREADS = String(options.threads);
  checkWritableTarget(options.out, '--out');
  const calc = options.calculatorInstance ?? makeCalculator(options.calculator, options.hypers);
  const input = await resolveInput(file);
  try {
    return await run(input, calc, format, gradients, dtype, options, start);
  } finally {
    input.cleanup();
  }
}

async function run(
  input: ResolvedInput,
  calc: Calc,
  format: 'npy' | 'mts',
  gradients: GradientName[],
  dtype: Dtype,
  options: FeaturizeOptions,
  start: bigint,
): Promise<FeaturizeSummary> {
  // The species fix the columns of the design matrix across batches; the
  // frame count drives the progress bar and finds empty input early.
  let total: number | undefined;
  let species = options.species;
  if (species === undefined || options.progress) {
    const s = await (fusedOutput(format, options.calculator) ? scanNative(input) : scan(input));
    total = s.frames;
    if (s.frames === 0) throw new Error(`${input.name} holds no frames`);
    species ??= s.species;
  }
  species = [...new Set(species)].sort((a, b) => a - b);
  const allowed = new Set(species);
  {
    // k species give k(k + 1)/2 neighbour pairs per centre species: refuse
    // before the keys are built (each about 100 bytes as JS arrays)
    const k = species.length;
    const keys = k * (options.calculator === 'soap_power_spectrum' ? (k * (k + 1)) / 2 : k);
    const budget = native.memoryBudget(options.maxMemory);
    if (keys * 100 > budget) {
      throw withCode(new Error(`--species: ${k} species give ${keys.toExponential(3)} key combinations, more than the memory budget of ${Math.round(budget / 2 ** 20)} MiB allows (--max-memory or ACDC_MAX_MEMORY)`), 'ACDC_MEMORY');
    }
  }
  const moved = neighborKeys(options.calculator, species, calc);
  const allKeys = new Labels(['center_type', ...moved.names], species.flatMap((c) => Array.from({ length: moved.count }, (_, r) => [c, ...moved.row(r)])));
  const computeOptions = gradients.length ? { gradients } : {};

  const progress = options.progress && total !== undefined ? new Progress(total) : undefined;
  // .npy of the SOAP spectra: rows computed, reduced and placed natively
  if (usesDesignRows(format, options.calculator, species)) return designRowsToNpy(input, calc, dtype, options, species, progress, start);
  let writer: InstanceType<typeof native.NpyRowWriter> | undefined;
  let tmp: string | undefined;
  let columns: number | null = null;
  let columnLabels: Labels | undefined;
  const rowLabels: number[][] = [];
  const parts: TensorMap[] = [];
  const observedKeys: Labels[] = [];
  const systemCounts: number[] = [];
  let frames = 0;
  let atoms = 0;
  let line = 1;
  let mtsBytes = 0;
  const budget = native.memoryBudget(options.maxMemory);

  const reader = new native.XyzReader(input.path);
  const read = () => {
    const p = reader.next(options.batch);
    // handled here, awaited below: a failed read-ahead must not become an
    // unhandled rejection while the previous batch is being computed
    p.catch(() => undefined);
    return p;
  };
  let next = read();
  try {
    for (;;) {
      let batch;
      try {
        batch = await next;
      } catch (e) {
        const message = (e as Error).message;
        throw rethrown(e, `${message.startsWith(input.path) ? message.replace(input.path, input.name) : `${input.name}: ${message}`} (after ${frames} complete frames)`);
      }
      if (batch.length === 0) break;
      // read the next batch while this one is computed
      next = read();
      const lines: number[] = [];
      for (const [k, f] of batch.entries()) {
        lines.push(line);
        line += f.types.length + 2;
        for (const t of f.types) {
          if (!allowed.has(t)) {
            throw new Error(`${input.name}, frame ${frames + k} (line ${lines[k]}): species ${t} is not in --species ${species.join(',')}`);
          }
        }
      }
      let systems: System[];
      let tm: TensorMap;
      try {
        systems = batch.map(fromFrame);
        // .mts output stays in memory until the end, and is joined (copied)
        // once: each batch may use what the budget leaves after twice that
        const left = format === 'mts' ? budget - 2 * mtsBytes : budget;
        tm = await calc.compute(systems, { ...computeOptions, maxMemory: String(Math.max(1, Math.floor(left))), ...(options.signal ? { signal: options.signal } : {}) });
      } catch (e) {
        throw frameError(e, input, frames, lines);
      }
      // the matrices have one row per structure already
      const matrix = isMatrix(options.calculator);
      const perStructure = !!options.perStructure || matrix;
      if (!matrix) {
        if (options.perStructure === 'sum' || options.perStructure === 'mean') tm = tm.sumOverSamples('atom');
        else if (options.perStructure === 'species-mean') tm = tm.meanOverSamples('atom');
        if (options.perStructure === 'mean') tm = divideByAtomCount(tm, systems);
      }

      if (format === 'mts') {
        // .mts output is collected in memory: keep it within the budget
        mtsBytes += tensorBytes(tm);
        if (2 * mtsBytes > budget) {
          throw new Error(
            `${input.name}: the .mts output of the first ${frames + systems.length} frames needs ${((2 * mtsBytes) / 2 ** 30).toFixed(2)} GiB to be joined and saved, ` +
              `more than the memory budget of ${(budget / 2 ** 30).toFixed(2)} GiB (--max-memory or ACDC_MAX_MEMORY): write .npy, or split the input`,
          );
        }
        parts.push(tm);
        observedKeys.push(tm.keys);
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
        columnLabels ??= block.properties;
        if (writer === undefined) {
          tmp = temporaryPathFor(options.out);
          writer = new native.NpyRowWriter(tmp, columns, dtype);
        }
        writer.append(orderedRows(block.samples, block.values, columns, perStructure ? systems.length : rowsAtoms, systems, perStructure));
        systems.forEach((s, k) => {
          if (perStructure) rowLabels.push([frames + k]);
          else for (let a = 0; a < s.size; a++) rowLabels.push([frames + k, a]);
        });
      }
      frames += systems.length;
      atoms += systems.reduce((n, s) => n + s.size, 0);
      progress?.update(frames);
    }
    if (frames === 0) throw new Error(`${input.name} holds no frames`);
  } catch (e) {
    if (tmp !== undefined) discard(tmp);
    throw e;
  } finally {
    // let a pending read settle before the reader goes away
    await next.catch(() => undefined);
    if (progress) {
      progress.update(frames, true);
      progress.end();
    }
  }

  let rows: number | null = null;
  let labelsPath: string | null = null;
  let outSpecies = species;
  if (format === 'npy') {
    try {
      rows = writer!.finish();
      labelsPath = `${options.out}.labels.json`;
      const sidecar: LabelsSidecar = {
        description: `labels of ${path.basename(options.out)}: one entry of rows.values per row, one of columns.values per column`,
        calculator: options.calculator,
        perStructure: options.perStructure ?? null,
        dtype,
        rows: { names: options.perStructure || isMatrix(options.calculator) ? ['system'] : ['system', 'atom'], values: rowLabels },
        columns: { names: columnLabels!.names, values: Array.from({ length: columnLabels!.count }, (_, r) => Array.from(columnLabels!.row(r))) },
      };
      writeAtomicallySync(labelsPath, (t) => fs.writeFileSync(t, JSON.stringify(sidecar)));
      commitSync(tmp!, options.out);
    } catch (e) {
      discard(tmp!);
      throw e;
    }
  } else {
    const joined = TensorMap.join(parts, { systemCounts });
    const ordered = reorderKeys(joined, keyOrder(observedKeys, joined.keys.names));
    await ordered.saveAsync(options.out);
    const d = ordered.keys.names.indexOf('center_type');
    outSpecies = d < 0 ? species : [...new Set(Array.from(ordered.keys.column('center_type')))].sort((a, b) => a - b);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return {
    file: input.name,
    out: options.out,
    labels: labelsPath,
    format,
    calculator: options.calculator,
    perStructure: options.perStructure ?? null,
    gradients,
    species: outSpecies,
    frames,
    atoms,
    rows,
    columns,
    dtype: format === 'mts' ? 'float64' : dtype,
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
