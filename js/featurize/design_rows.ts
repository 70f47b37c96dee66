// The fused `.npy` path of `acdc featurize` for the calculators with design
// rows in the registry (the SOAP power and radial spectra): frames are read straight into native structures and each batch's
// design-matrix rows (reduced per structure, or per atom, and placed in the
// final columns) are computed and appended to the file off the event loop,
// without a JS TensorMap in between. The file, the sidecar and every error
// message are those of the tensor path in index.ts.
import { rethrown, coded } from '../errors';
import * as fs from 'node:fs';
import * as path from 'node:path';
import native from '../native';
import { Labels, type Dtype } from '../tensor';
import { runQueued } from '../schedule';
import { commitSync, discard, temporaryPathFor, writeAtomicallySync } from '../atomic';
import type { ResolvedInput } from './input';
import type { FeaturizeOptions, FeaturizeSummary, LabelsSidecar } from './types';
import { frameError } from './frame_error';
import { ReadAhead } from './read_ahead';
import { calculatorInfo, type Calc } from './registry';

/**
 * Whether `acdc featurize` takes the fused path: `.npy` output of a SOAP
 * power or radial spectrum with at least one species, unless
 * `ACDC_FEATURIZE_TENSORS=1` asks for the tensor path (kept to compare the
 * two).
 */
export function usesDesignRows(format: 'npy' | 'mts', calculator: string, species: number[]): boolean {
  return fusedOutput(format, calculator) && species.length > 0;
}

/** Whether `.npy` output of `calculator` goes through the fused path (given any species). */
export function fusedOutput(format: 'npy' | 'mts', calculator: string): boolean {
  return format === 'npy' && calculatorInfo(calculator).designRows !== null && process.env.ACDC_FEATURIZE_TENSORS !== '1';
}

/**
 * Frame count, atom count and species of an extended XYZ file, read natively
 * (no JS frames): the first pass of the fused path. Errors read as those of
 * the tensor path's scan.
 */
export async function scanNative(input: ResolvedInput): Promise<{ frames: number; atoms: number; species: number[] }> {
  const reader = new native.XyzSystemReader(input.path);
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
    frames += batch.length;
    const types = batch.types();
    atoms += types.length;
    for (const t of types) species.add(t);
  }
  return { frames, atoms, species: [...species].sort((a, b) => a - b) };
}

interface ProgressLike {
  update(done: number, force?: boolean): void;
  end(): void;
}

/** A source of native batches: the next one (empty at the end) given the frames done so far. */
export interface BatchSource {
  take(framesDone: number): Promise<InstanceType<typeof native.SystemBatch>>;
  settle(): Promise<void>;
}

/**
 * Appends every batch of `batches` to `writer` (the shared loop of the file
 * and in-memory `.npy` paths): species checked against the columns, the
 * answer's size against `maxValues` before each batch is computed, errors
 * named by frame and line of `input`. Returns the row labels, frame and atom
 * counts.
 */
async function appendAll(
  writer: InstanceType<typeof native.DesignRowWriter>,
  batches: BatchSource,
  input: Pick<ResolvedInput, 'name'>,
  species: number[],
  options: Pick<FeaturizeOptions, 'perStructure' | 'maxValues' | 'signal'>,
  maxMemory: string,
  progress: ProgressLike | undefined,
): Promise<{ rowLabels: number[][]; frames: number; atoms: number }> {
  const allowed = new Set(species);
  const perStructure = options.perStructure !== undefined;
  const rowLabels: number[][] = [];
  let frames = 0;
  let atoms = 0;
  let line = 1;
  try {
    for (;;) {
      const batch = await batches.take(frames);
      const count = batch.length;
      if (count === 0) break;
      const sizes = batch.sizes();
      const types = batch.types();
      const lines: number[] = [];
      let t = 0;
      for (let k = 0; k < count; k++) {
        lines.push(line);
        line += sizes[k] + 2;
        for (const end = t + sizes[k]; t < end; t++) {
          if (!allowed.has(types[t])) {
            throw coded('ACDC_INVALID_SYSTEM', `${input.name}, frame ${frames + k} (line ${lines[k]}): species ${types[t]} is not in --species ${species.join(',')}`);
          }
        }
      }
      if (options.maxValues !== undefined) {
        let rows = rowLabels.length;
        for (let k = 0; k < count; k++) rows += perStructure ? 1 : sizes[k];
        if (rows * writer.columns > options.maxValues) {
          throw coded('ACDC_MEMORY', `refused before computing: the output would hold at least ${rows} × ${writer.columns} = ${rows * writer.columns} values, more than maxValues = ${options.maxValues}`, { limit: 'maxValues' });
        }
      }
      try {
        const signal = options.signal;
        const token = signal ? new native.CancelToken() : undefined;
        await runQueued(() => writer.append(batch, maxMemory, token), signal, () => token?.cancel());
      } catch (e) {
        throw frameError(e, input as ResolvedInput, frames, lines);
      }
      for (let k = 0; k < count; k++) {
        if (perStructure) rowLabels.push([frames + k]);
        else for (let a = 0; a < sizes[k]; a++) rowLabels.push([frames + k, a]);
        atoms += sizes[k];
      }
      frames += count;
      progress?.update(frames);
    }
    if (frames === 0) throw coded('ACDC_PARSE', `${input.name} holds no frames`);
  } finally {
    // let a pending read settle before the reader goes away
    await batches.settle();
    if (progress) {
      progress.update(frames, true);
      progress.end();
    }
  }
  return { rowLabels, frames, atoms };
}

/** The `.labels.json` sidecar of a design matrix written by the fused path (`out`: the `.npy` it describes). */
function sidecarOf(out: string, calculator: string, perStructure: FeaturizeOptions['perStructure'], dtype: Dtype, rowLabels: number[][], columns: Labels): LabelsSidecar {
  return {
    description: `labels of ${path.basename(out)}: one entry of rows.values per row, one of columns.values per column`,
    calculator,
    perStructure: perStructure ?? null,
    dtype,
    rows: { names: perStructure !== undefined ? ['system'] : ['system', 'atom'], values: rowLabels },
    columns: { names: columns.names, values: rowsOf(columns) },
  };
}

/** The rows of `labels` as arrays (tens of thousands of columns: one pass over the flat values). */
function rowsOf(labels: Labels): number[][] {
  const n = labels.names.length;
  const flat = labels.values;
  const out = new Array<number[]>(labels.count);
  for (let r = 0; r < out.length; r++) {
    const row = new Array<number>(n);
    for (let k = 0; k < n; k++) row[k] = flat[r * n + k];
    out[r] = row;
  }
  return out;
}

/**
 * Featurizes `input` to the `.npy` file `options.out` (and its
 * `.labels.json` sidecar) through native design rows. `species` (sorted,
 * distinct) fixes the columns.
 */
export async function designRowsToNpy(
  input: ResolvedInput,
  calc: Calc,
  dtype: Dtype,
  options: FeaturizeOptions,
  species: number[],
  progress: ProgressLike | undefined,
  start: bigint,
): Promise<FeaturizeSummary> {
  const reader = new native.XyzSystemReader(input.path);
  const done = await designRowsToFile(new ReadAhead(() => reader.next(options.batch), input), input, calc, dtype, options, species, progress, false);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return {
    file: input.name,
    out: options.out,
    labels: done.labels,
    format: 'npy',
    calculator: options.calculator,
    perStructure: options.perStructure ?? null,
    gradients: [],
    species,
    frames: done.frames,
    atoms: done.atoms,
    rows: done.rows,
    columns: done.columns,
    dtype,
    seconds,
    structuresPerSecond: done.frames / seconds,
  };
}

/** What {@link designRowsToFile} wrote. @internal */
export interface WrittenDesignRows {
  /** The sidecar's path, and its text as written. */
  labels: string;
  labelsText: string;
  frames: number;
  atoms: number;
  rows: number;
  columns: number;
  /** CRC-32 of the `.npy` file as written (computed while writing), when asked for; else null. */
  crc32: number | null;
}

/**
 * The batches of `batches` featurized to the `.npy` file `options.out` (a
 * temporary name in its folder, renamed once complete) and its sidecar;
 * with `checksum`, the writer also computes the file's CRC-32 as it writes
 * it, so that nobody reads the file back to checksum it. @internal
 */
export async function designRowsToFile(
  batches: BatchSource,
  input: Pick<ResolvedInput, 'name'>,
  calc: Calc,
  dtype: Dtype,
  options: FeaturizeOptions,
  species: number[],
  progress: ProgressLike | undefined,
  checksum: boolean,
): Promise<WrittenDesignRows> {
  const budget = native.memoryBudget(options.maxMemory);
  const maxMemory = String(Math.max(1, Math.floor(budget)));
  const tmp = temporaryPathFor(options.out);
  let writer: InstanceType<typeof native.DesignRowWriter>;
  try {
    writer = new native.DesignRowWriter(tmp, calc.nativeCalculator(), Int32Array.from(species), options.perStructure ?? 'atom', dtype, maxMemory, checksum);
  } catch (e) {
    await batches.settle();
    throw e;
  }
  let done: Awaited<ReturnType<typeof appendAll>>;
  try {
    done = await appendAll(writer, batches, input, species, options, maxMemory, progress);
  } catch (e) {
    writer.close();
    discard(tmp);
    throw e;
  }
  const { rowLabels, frames, atoms } = done;

  let rows: number;
  const labelsPath = `${options.out}.labels.json`;
  const columns = Labels.fromData(writer.columnLabels());
  let labelsText: string;
  try {
    // the rows still being written are waited for off the event loop
    rows = await runQueued(() => writer.finishAsync());
    labelsText = JSON.stringify(sidecarOf(options.out, options.calculator, options.perStructure, dtype, rowLabels, columns));
    writeAtomicallySync(labelsPath, (t) => fs.writeFileSync(t, labelsText));
    commitSync(tmp, options.out);
  } catch (e) {
    writer.close();
    discard(tmp);
    throw e;
  }
  return { labels: labelsPath, labelsText, frames, atoms, rows, columns: columns.count, crc32: checksum ? (writer.crc32 ?? null) : null };
}

/**
 * The fused path into memory: the batches of `parsed` (already read, see
 * `parseXyzText`) featurized into the bytes of the `.npy` file that
 * {@link designRowsToNpy} would write, and its sidecar (described as the
 * labels of `outName`). `species` (sorted, distinct) fixes the columns;
 * `rows`: the rows the answer will hold (reserved at once).
 */
export async function designRowsToMemory(
  batches: BatchSource,
  name: string,
  rows: number,
  calc: Calc,
  dtype: Dtype,
  options: Omit<FeaturizeOptions, 'out'>,
  species: number[],
  outName: string,
  allocate?: (bytes: number) => Buffer,
): Promise<{ npy: Buffer; labels: LabelsSidecar; names: { rows: string[]; columns: string[] }; rows: number; columns: number; frames: number; atoms: number }> {
  const budget = native.memoryBudget(options.maxMemory);
  const maxMemory = String(Math.max(1, Math.floor(budget)));
  const writer = native.DesignRowWriter.inMemory(name, rows, calc.nativeCalculator(), Int32Array.from(species), options.perStructure ?? 'atom', dtype, maxMemory);
  try {
    const { rowLabels, frames, atoms } = await appendAll(writer, batches, { name }, species, options, maxMemory, undefined);
    const written = await runQueued(() => writer.finishAsync());
    const columns = Labels.fromData(writer.columnLabels());
    let npy: Buffer;
    if (allocate !== undefined) {
      const target = allocate(writer.npyLength);
      npy = target.subarray(0, writer.takeNpyInto(target));
    } else {
      // the binding hands over a Uint8Array (its types need no Node typings); a Buffer view, no copy
      const bytes = writer.takeNpy();
      npy = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    // the sidecar (an array per row and per column: tens of thousands) is
    // built when asked for; an .npy answer only needs the names
    let labels: LabelsSidecar | undefined;
    return {
      npy,
      get labels() {
        return (labels ??= sidecarOf(outName, options.calculator, options.perStructure, dtype, rowLabels, columns));
      },
      names: { rows: options.perStructure !== undefined ? ['system'] : ['system', 'atom'], columns: columns.names },
      rows: written,
      columns: columns.count,
      frames,
      atoms,
    };
  } catch (e) {
    writer.close();
    throw e;
  }
}
