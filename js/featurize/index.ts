// The featurize engine (the library behind `acdc featurize`, the queue
// workers and `acdc serve`): streams an extxyz file through a calculator in
// batches and writes a design matrix (.npy, with a .labels.json sidecar) or a
// labelled TensorMap (.mts). Outputs appear whole or not at all. Which
// calculators exist and how each is written comes from the core's registry
// (./registry.ts); nothing here names a calculator.
import { rethrown, withCode, coded } from '../errors';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GradientName, SoapHypers } from '../calculators';
import native from '../native';
import { Labels, TensorBlock, TensorMap, type Dtype } from '../tensor';
import type { System } from '../system';
import { fromFrame } from '../xyz';
import type { AbortSignalLike } from '../schedule';
import { checkWritableTarget, commitSync, discard, temporaryPathFor, writeAtomicallySync } from '../atomic';
import { resolveInput, type ResolvedInput } from './input';
import { designRowsToNpy, fusedOutput, scanNative, usesDesignRows } from './design_rows';
import { classicDense } from './classic';
import { calculatorInfo, isClassic, isMatrix, makeCalculator, type Calc, type CalculatorName } from './registry';
import { MAX_BATCH, type FeaturizeOptions, type FeaturizeSummary, type LabelsSidecar } from './types';
import { frameError } from './frame_error';
import { ReadAhead } from './read_ahead';

export { MAX_BATCH, PER_STRUCTURE, type FeaturizeOptions, type FeaturizeSummary, type LabelsSidecar, type PerStructure } from './types';
export { frameError } from './frame_error';

export {
  CALCULATORS,
  DENSE_CALCULATORS,
  DEFAULT_CALCULATOR,
  DEFAULT_SOAP_HYPERS,
  REGISTRY,
  calculatorInfo,
  isClassic,
  isMatrix,
  makeCalculator,
  makeCalculatorAsync,
  readHypersFile,
  type Calc,
  type CalculatorName,
} from './registry';

/**
 * Every key a calculator can produce for these species, as the columns of a
 * design matrix: the neighbour species combinations (sorted, as the
 * calculators order them), or for a power spectrum with
 * `density.alchemical` the pseudo-element pairs b₁ ≤ b₂ (numbered from 0 by
 * the rows of the coupling), whatever the species.
 */
function neighborKeys(name: CalculatorName, species: number[], calc: Calc): Labels {
  if (calculatorInfo(name).designRows === 'neighbor_pairs') {
    const alchemical = ((calc.hypers as SoapHypers).density as { alchemical?: { coupling: number[][] } }).alchemical;
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
  if (ext !== '.npy' && ext !== '.mts') throw coded('ACDC_INVALID_PARAMETER', `--out must end in .npy or .mts, got "${options.out}"`);
  const format = ext === '.npy' ? 'npy' : 'mts';
  const gradients = options.gradients ?? [];
  if (format === 'npy' && gradients.length > 0) throw coded('ACDC_INVALID_PARAMETER', '--gradients needs an .mts output (.npy holds one dense array, without gradients)');
  if (format === 'mts' && options.dtype !== undefined) throw coded('ACDC_INVALID_PARAMETER', '--dtype applies to .npy output only (.mts files hold float64)');
  if (format === 'mts' && options.species !== undefined) throw coded('ACDC_INVALID_PARAMETER', '--species fixes the columns of .npy output only (.mts files hold the keys of every species present)');
  const info = calculatorInfo(options.calculator);
  if (format === 'npy' && info.output === 'equivariant') {
    throw coded('ACDC_INVALID_PARAMETER', `${options.calculator} is equivariant (its blocks have different shapes): write it to an .mts file`);
  }
  if (format === 'npy' && !info.dense) throw coded('ACDC_INVALID_PARAMETER', `${options.calculator} is written to .mts files only (use --out <file>.mts)`);
  if (!Number.isInteger(options.batch) || options.batch < 1 || options.batch > MAX_BATCH) {
    throw coded('ACDC_INVALID_PARAMETER', `--batch must be an integer between 1 and ${MAX_BATCH}, got ${options.batch}`);
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

/**
 * Refuses a species list whose key combinations (k species give k(k + 1)/2
 * neighbour pairs per centre species) would not fit the memory budget,
 * before the keys are built (each about 100 bytes as JS arrays).
 * @internal
 */
export function checkKeyBudget(calculator: CalculatorName, species: number[], maxMemory: string | undefined): void {
  const k = species.length;
  const keys = k * (calculatorInfo(calculator).designRows === 'neighbor_pairs' ? (k * (k + 1)) / 2 : k);
  const budget = native.memoryBudget(maxMemory);
  if (keys * 100 > budget) {
    throw withCode(new Error(`--species: ${k} species give ${keys.toExponential(3)} key combinations, more than the memory budget of ${Math.round(budget / 2 ** 20)} MiB allows (--max-memory or ACDC_MAX_MEMORY)`), 'ACDC_MEMORY');
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
    if (s.frames === 0) throw coded('ACDC_PARSE', `${input.name} holds no frames`);
    species ??= s.species;
  }
  species = [...new Set(species)].sort((a, b) => a - b);
  const allowed = new Set(species);
  checkKeyBudget(options.calculator, species, options.maxMemory);
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
  const batches = new ReadAhead(() => reader.next(options.batch), input);
  try {
    for (;;) {
      const batch = await batches.take(frames);
      if (batch.length === 0) break;
      const lines: number[] = [];
      for (const [k, f] of batch.entries()) {
        lines.push(line);
        line += f.types.length + 2;
        for (const t of f.types) {
          if (!allowed.has(t)) {
            throw coded('ACDC_INVALID_SYSTEM', `${input.name}, frame ${frames + k} (line ${lines[k]}): species ${t} is not in --species ${species.join(',')}`);
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
          throw coded('ACDC_MEMORY', 
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
    if (frames === 0) throw coded('ACDC_PARSE', `${input.name} holds no frames`);
  } catch (e) {
    if (tmp !== undefined) discard(tmp);
    throw e;
  } finally {
    // let a pending read settle before the reader goes away
    await batches.settle();
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
    await ordered.save(options.out);
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
