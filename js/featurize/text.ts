// The featurize engine on extended XYZ text held in memory (a request body
// of `acdc serve`): parsed once into native structures, featurized into the
// bytes of the `.npy` file `acdc featurize --out x.npy` would write, and its
// sidecar, without temporary files. For calculators outside the fused path
// (no design rows) the text goes through a temporary file and `featurize`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { coded, rethrown } from '../errors';
import native from '../native';
import type { Dtype } from '../tensor';
import { throwIfAborted, type AbortSignalLike } from '../schedule';
import { designRowsToMemory, usesDesignRows, type BatchSource } from './design_rows';
import { ReadAhead } from './read_ahead';
import { calculatorInfo, makeCalculator, type Calc, type CalculatorName } from './registry';
import { MAX_BATCH, type LabelsSidecar, type PerStructure } from './types';
import { checkKeyBudget, featurize } from './index';

type SystemBatch = InstanceType<typeof native.SystemBatch>;

/**
 * Extended XYZ text parsed into native batches of structures (species,
 * positions, cell, pbc; info and extra columns dropped). It can be
 * featurized once (the batches are consumed).
 */
export interface ParsedXyz {
  /** The text it was parsed from (kept for calculators outside the fused path). */
  readonly text: string;
  /** What the text is called in error messages ("body"). */
  readonly name: string;
  readonly frames: number;
  readonly atoms: number;
  /** Species present, sorted. */
  readonly species: number[];
  /** @internal */
  readonly batches: SystemBatch[];
}

/**
 * Parses extended XYZ `text` off the event loop into batches of `batch`
 * structures (64 by default). A parse error names `name` (default "input")
 * and its line. Empty text (no frame) is an ACDC_PARSE error.
 */
export async function parseXyzText(text: string, options: { name?: string; batch?: number; signal?: AbortSignalLike } = {}): Promise<ParsedXyz> {
  const name = options.name ?? 'input';
  const batch = options.batch ?? 64;
  if (!Number.isInteger(batch) || batch < 1 || batch > MAX_BATCH) throw coded('ACDC_INVALID_PARAMETER', `batch must be an integer between 1 and ${MAX_BATCH}, got ${batch}`);
  const reader = native.XyzSystemReader.fromText(text, name);
  const source = new ReadAhead(() => reader.next(batch), { path: name, name, cleanup: () => undefined });
  const batches: SystemBatch[] = [];
  const species = new Set<number>();
  let frames = 0;
  let atoms = 0;
  try {
    for (;;) {
      throwIfAborted(options.signal);
      const b = await source.take(frames);
      batches.push(b);
      if (b.length === 0) break;
      frames += b.length;
      const types = b.types();
      atoms += types.length;
      for (const t of types) species.add(t);
    }
  } finally {
    await source.settle();
  }
  if (frames === 0) throw coded('ACDC_PARSE', `${name} holds no frames`);
  return { text, name, frames, atoms, species: [...species].sort((a, b) => a - b), batches };
}

/** Options of {@link featurizeText}: those of `featurize` for a `.npy` output, without the file. */
export interface FeaturizeTextOptions {
  calculator: CalculatorName;
  /** Hyper-parameters: a JSON file's path (as `featurize`), ignored when `calculatorInstance` is given. */
  hypers?: string;
  perStructure?: PerStructure;
  /** Structures computed at once (default 64). */
  batch?: number;
  /** Element type of the `.npy` (default float64). */
  dtype?: Dtype;
  /** Species that fix the columns (default: those present). */
  species?: number[];
  /** Memory budget of each batch's computation and of the answer (bytes or a size such as '4G'). */
  maxMemory?: string;
  /** Most values (rows × columns) the answer may hold, checked before each batch is computed. */
  maxValues?: number;
  signal?: AbortSignalLike;
  /** The text's name in error messages (default "input"). */
  name?: string;
  /** The file name the sidecar's description names (default "features.npy"). */
  outName?: string;
  /**
   * Gives the buffer (at least `bytes` long) the `.npy` bytes are copied
   * into, instead of a new buffer per call: a server that reuses its answer
   * buffers spares V8 a garbage collection every few answers of megabytes.
   * The answer's `npy` is then a view of that buffer.
   */
  allocate?: (bytes: number) => Buffer;
  /** A calculator of `calculator` already built (reused across calls). @internal */
  calculatorInstance?: Calc;
}

/** A design matrix in memory: the `.npy` bytes and the `.labels.json` sidecar `acdc featurize` would write. */
export interface FeaturizedNpy {
  /** The bytes of the `.npy` file (header, then rows × columns values, row-major). */
  npy: Buffer;
  /** The sidecar (its JSON text is that of the `.labels.json` file). */
  readonly labels: LabelsSidecar;
  /** The names of the row and column labels (`labels.rows.names`, `labels.columns.names`). */
  names: { rows: string[]; columns: string[] };
  rows: number;
  columns: number;
  frames: number;
  atoms: number;
  /** Species of the columns. */
  species: number[];
  dtype: Dtype;
  /** Seconds of the featurization (not of the parsing). */
  seconds: number;
}

/**
 * Featurizes extended XYZ `text` held in memory into the `.npy` bytes (and
 * sidecar) that `acdc featurize --out x.npy` writes for the same input and
 * options, without touching the disk for the SOAP power and radial spectra.
 */
export async function featurizeText(text: string, options: FeaturizeTextOptions): Promise<FeaturizedNpy> {
  const parsed = await parseXyzText(text, { name: options.name, batch: options.batch, signal: options.signal });
  return featurizeParsed(parsed, options);
}

/** {@link featurizeText} on text already parsed by {@link parseXyzText} (which it consumes). */
export async function featurizeParsed(parsed: ParsedXyz, options: FeaturizeTextOptions): Promise<FeaturizedNpy> {
  const start = process.hrtime.bigint();
  const info = calculatorInfo(options.calculator);
  if (info.output === 'equivariant') throw coded('ACDC_INVALID_PARAMETER', `${options.calculator} is equivariant (its blocks have different shapes): it has no .npy design matrix`);
  if (!info.dense) throw coded('ACDC_INVALID_PARAMETER', `${options.calculator} is written to .mts files only: it has no .npy design matrix`);
  const dtype: Dtype = options.dtype ?? 'float64';
  const batch = options.batch ?? 64;
  const species = [...new Set(options.species ?? parsed.species)].sort((a, b) => a - b);
  if (!usesDesignRows('npy', options.calculator, species)) return throughFile(parsed, options, dtype, batch, start);
  checkKeyBudget(options.calculator, species, options.maxMemory);
  const calc = options.calculatorInstance ?? makeCalculator(options.calculator, options.hypers);
  let next = 0;
  const batches: BatchSource = {
    // the final (empty) batch ends the loop
    take: async () => parsed.batches[Math.min(next++, parsed.batches.length - 1)],
    settle: async () => undefined,
  };
  const rows = options.perStructure !== undefined ? parsed.frames : parsed.atoms;
  const out = await designRowsToMemory(batches, parsed.name, rows, calc, dtype, { ...options, batch }, species, options.outName ?? 'features.npy', options.allocate);
  // (a spread would build the lazy sidecar)
  return Object.defineProperties({ npy: out.npy, names: out.names, rows: out.rows, columns: out.columns, frames: out.frames, atoms: out.atoms, species, dtype, seconds: Number(process.hrtime.bigint() - start) / 1e9 }, { labels: { get: () => out.labels, enumerable: true } }) as FeaturizedNpy;
}

/** The calculators without design rows: `featurize` on a temporary copy of the text, read back. */
async function throughFile(parsed: ParsedXyz, options: FeaturizeTextOptions, dtype: Dtype, batch: number, start: bigint): Promise<FeaturizedNpy> {
  const dir = path.join(os.tmpdir(), `acdc-text-${process.pid}-${randomBytes(6).toString('hex')}`);
  fs.mkdirSync(dir, { recursive: true });
  const input = path.join(dir, 'input.xyz');
  const out = path.join(dir, options.outName ?? 'features.npy');
  try {
    fs.writeFileSync(input, parsed.text);
    let summary;
    try {
      summary = await featurize(input, {
        calculator: options.calculator,
        hypers: options.hypers,
        calculatorInstance: options.calculatorInstance,
        perStructure: options.perStructure,
        out,
        batch,
        dtype,
        species: options.species,
        maxMemory: options.maxMemory,
        maxValues: options.maxValues,
        progress: false,
        signal: options.signal,
      });
    } catch (e) {
      throw rethrown(e, (e as Error).message.split(input).join(parsed.name));
    }
    // hundreds of MB for a large answer: read off the event loop
    const [npy, labelsText] = await Promise.all([fs.promises.readFile(out), fs.promises.readFile(`${out}.labels.json`, 'utf8')]);
    const labels = JSON.parse(labelsText) as LabelsSidecar;
    return { npy, labels, names: { rows: labels.rows.names, columns: labels.columns.names }, rows: summary.rows!, columns: summary.columns!, frames: summary.frames, atoms: summary.atoms, species: summary.species, dtype, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
