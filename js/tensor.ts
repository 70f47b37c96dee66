import { invalidParameter, outOfRange } from './errors';
import type { LabelsData, BlockData, TensorMapData } from './native';
import native from './native';
import { writeAtomically, writeAtomicallySync } from './atomic';
import { abortable, checkSignal, runQueued, throwIfAborted, type AbortSignalLike } from './schedule';
import { describe } from './system';

/** Element type of arrays handed out by {@link toArray} and written to `.npy`. */
export type Dtype = 'float64' | 'float32';

/** A dense row-major array: `data.length === shape.reduce((a, b) => a * b, 1)`. */
export interface DenseArray<T extends Float64Array | Float32Array = Float64Array | Float32Array> {
  data: T;
  shape: number[];
}

function names(arg: string | string[], what: string): string[] {
  const list = typeof arg === 'string' ? [arg] : arg;
  if (!Array.isArray(list) || list.length === 0 || !list.every((n) => typeof n === 'string')) {
    throw invalidParameter(`${what}: expected a dimension name or a non-empty array of names, got ${describe(arg)}`);
  }
  return list;
}

function checkDtype(dtype: unknown): Dtype {
  if (dtype === undefined || dtype === 'float64') return 'float64';
  if (dtype === 'float32') return 'float32';
  throw invalidParameter(`dtype must be "float64" or "float32", got ${describe(dtype)}`);
}

/**
 * Options of {@link toArray}. `layout: 'dscribe'` (TensorMaps only) stacks
 * every block's rows into one per-atom design matrix, rows sorted by their
 * sample labels (system, then atom), columns in the blocks' shared property
 * order: for SymmetryFunctions that is DScribe's ACSF column order, for the
 * matrices DScribe's flattened matrix.
 */
export interface ToArrayOptions {
  dtype?: Dtype;
  layout?: 'blocks' | 'dscribe';
}

/**
 * The values of a block as a dense row-major array of shape
 * `[samples, ...components, properties]`. With `dtype: 'float64'` (the
 * default) `data` is the block's own `values` (no copy); `'float32'` converts.
 * A TensorMap must have a single block, unless `layout: 'dscribe'` is given
 * (see {@link ToArrayOptions}).
 */
export function toArray(block: TensorBlock | TensorMap, options: { dtype: 'float32'; layout?: 'blocks' | 'dscribe' }): DenseArray<Float32Array>;
export function toArray(block: TensorBlock | TensorMap, options?: { dtype?: 'float64'; layout?: 'blocks' | 'dscribe' }): DenseArray<Float64Array>;
export function toArray(block: TensorBlock | TensorMap, options?: ToArrayOptions): DenseArray;
export function toArray(block: TensorBlock | TensorMap, options: ToArrayOptions = {}): DenseArray {
  const layout = options.layout ?? 'blocks';
  if (layout !== 'blocks' && layout !== 'dscribe') throw invalidParameter(`layout must be "blocks" or "dscribe", got ${describe(layout)}`);
  if (block instanceof TensorMap && layout === 'dscribe') return designMatrix(block, checkDtype(options.dtype));
  // a TensorMap with a single block (e.g. after moving every key) stands for that block
  if (block instanceof TensorMap) return block.toArray({ dtype: options.dtype } as { dtype?: 'float64' });
  if (!(block instanceof TensorBlock)) throw invalidParameter(`toArray expects a TensorBlock, got ${describe(block)}`);
  const dtype = checkDtype(options.dtype);
  return { data: dtype === 'float32' ? Float32Array.from(block.values) : block.values, shape: block.shape };
}

/** Rows of every block, sorted by sample labels; the blocks must share samples names and properties. */
function designMatrix(tm: TensorMap, dtype: Dtype): DenseArray {
  const blocks = tm.blocks();
  if (blocks.length === 0) return { data: dtype === 'float32' ? new Float32Array(0) : new Float64Array(0), shape: [0, 0] };
  const first = blocks[0];
  for (const [k, b] of blocks.entries()) {
    if (b.components.length !== 0) throw outOfRange(`layout "dscribe" needs blocks without components; block ${k} has ${b.components.length}`);
    const same = (x: Labels, y: Labels) => x.names.join() === y.names.join() && x.values.length === y.values.length && x.values.every((v, i) => v === y.values[i]);
    if (!same(b.properties, first.properties)) throw outOfRange(`layout "dscribe" needs blocks with the same properties; block ${k} differs from block 0`);
    if (b.samples.names.join() !== first.samples.names.join()) {
      throw outOfRange(`layout "dscribe" needs blocks with the same sample names; block ${k} has ${b.samples.names.join(', ')}`);
    }
  }
  const nf = first.properties.count;
  const rows: { block: TensorBlock; r: number; label: Int32Array }[] = [];
  for (const b of blocks) {
    const n = b.samples.names.length;
    for (let r = 0; r < b.samples.count; r++) rows.push({ block: b, r, label: b.samples.values.subarray(r * n, (r + 1) * n) });
  }
  rows.sort((x, y) => {
    for (let d = 0; d < x.label.length; d++) if (x.label[d] !== y.label[d]) return x.label[d] - y.label[d];
    return 0;
  });
  const data = dtype === 'float32' ? new Float32Array(rows.length * nf) : new Float64Array(rows.length * nf);
  rows.forEach((row, i) => data.set(row.block.values.subarray(row.r * nf, (row.r + 1) * nf), i * nf));
  return { data, shape: [rows.length, nf] };
}

/**
 * Named integer labels (metatensor's `Labels`): `count` rows of
 * `names.length` values, stored row-major in `values`.
 */
export class Labels {
  /** Dimension names. */
  readonly names: string[];
  /** Row-major values, `count × names.length`. */
  readonly values: Int32Array;

  constructor(names: string[], values: Int32Array | ArrayLike<number> | ArrayLike<ArrayLike<number>>) {
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) {
      throw invalidParameter(`Labels names must be an array of strings, got ${describe(names)}`);
    }
    this.names = [...names];
    if (values instanceof Int32Array) {
      this.values = values;
    } else if (Array.isArray(values) && values.length > 0 && typeof values[0] === 'object') {
      const rows = values as ArrayLike<ArrayLike<number>>;
      this.values = new Int32Array(rows.length * names.length);
      for (let r = 0; r < rows.length; r++) {
        if (rows[r].length !== names.length) {
          throw invalidParameter(`Labels row ${r} has ${rows[r].length} values but there are ${names.length} names`);
        }
        for (let k = 0; k < names.length; k++) this.values[r * names.length + k] = integer(`Labels row ${r}`, rows[r][k]);
      }
    } else {
      const flat = values as ArrayLike<number>;
      this.values = new Int32Array(flat.length);
      for (let k = 0; k < flat.length; k++) this.values[k] = integer('Labels values', flat[k]);
    }
    if (names.length === 0 ? this.values.length !== 0 : this.values.length % names.length !== 0) {
      throw invalidParameter(`Labels has ${this.values.length} values for ${names.length} names (not whole rows)`);
    }
  }

  /** Number of rows. */
  get count(): number {
    return this.names.length === 0 ? 0 : this.values.length / this.names.length;
  }

  /** Row `i` as an array of numbers. */
  row(i: number): number[] {
    const n = this.names.length;
    return Array.from(this.values.subarray(i * n, (i + 1) * n));
  }

  /** Row `i` as an object `{name: value}`. */
  entry(i: number): Record<string, number> {
    const out: Record<string, number> = {};
    this.names.forEach((name, k) => (out[name] = this.values[i * this.names.length + k]));
    return out;
  }

  /** Index of the first row matching every `{name: value}` given, or -1. */
  position(selection: Record<string, number>): number {
    const dims = Object.entries(selection).map(([name, value]) => {
      const d = this.names.indexOf(name);
      if (d < 0) throw outOfRange(`no dimension named "${name}" in labels (${this.names.join(', ')})`);
      return [d, value] as const;
    });
    const n = this.names.length;
    for (let r = 0; r < this.count; r++) {
      if (dims.every(([d, v]) => this.values[r * n + d] === v)) return r;
    }
    return -1;
  }

  /** The values of one dimension, one per row. */
  column(name: string): Int32Array {
    const d = this.names.indexOf(name);
    if (d < 0) throw outOfRange(`no dimension named "${name}" in labels (${this.names.join(', ')})`);
    const out = new Int32Array(this.count);
    for (let r = 0; r < this.count; r++) out[r] = this.values[r * this.names.length + d];
    return out;
  }

  /** @internal */
  static fromData(d: LabelsData): Labels {
    return new Labels(d.names, d.values);
  }

  /** @internal */
  toData(): LabelsData {
    return { names: this.names, values: this.values };
  }
}

function integer(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw invalidParameter(`${field} contains ${describe(v)} (expected an integer)`);
  return v;
}

/**
 * Set while {@link TensorBlock.fromData} wraps a block the binding returned:
 * the core builds its gradients through `TensorBlock::add_gradient`, which
 * enforces what {@link checkGradient} checks, and checking again here walked
 * every gradient sample row and compared the property labels element by
 * element on the JS thread (≈ 15 M instructions a water64 + gradients call,
 * in baseline-compiled code: serial work that kept two threads from 2×).
 */
let fromBinding = false;

/** What every gradient block must satisfy (the operations and `.mts` files rely on it). */
function checkGradient(block: TensorBlock, parameter: string, g: TensorBlock): void {
  const where = `gradient "${parameter}"`;
  if (parameter.length === 0 || parameter.includes('/')) throw outOfRange(`${where}: the parameter name must be non-empty, without '/'`);
  if (g.gradientsList().length > 0) throw outOfRange(`${where}: a gradient block cannot have gradients itself`);
  if (g.samples.names[0] !== 'sample') throw outOfRange(`${where}: the first sample dimension must be "sample", got ${JSON.stringify(g.samples.names)}`);
  const n = block.samples.count;
  const width = g.samples.names.length;
  for (let r = 0; r < g.samples.count; r++) {
    const s = g.samples.values[r * width];
    if (s < 0 || s >= n) throw outOfRange(`${where}: sample ${s} points past the block's ${n} samples`);
  }
  const offset = g.components.length - block.components.length;
  const sameLabels = (a: Labels, b: Labels) =>
    a.names.length === b.names.length && a.names.every((x, i) => x === b.names[i]) && a.values.length === b.values.length && a.values.every((x, i) => x === b.values[i]);
  if (offset < 0 || !block.components.every((c, i) => sameLabels(c, g.components[offset + i]))) {
    throw outOfRange(`${where}: its components must end with the block's components`);
  }
  if (!sameLabels(g.properties, block.properties)) throw outOfRange(`${where}: its properties must be the block's properties`);
}

/** A block of values: samples × components… × properties, row-major. */
export class TensorBlock {
  /** One row per sample (first dimension). */
  readonly samples: Labels;
  /** One Labels per component (middle dimensions). */
  readonly components: Labels[];
  /** One row per property (last dimension). */
  readonly properties: Labels;
  /** Row-major values. */
  readonly values: Float64Array;
  readonly #gradients: Map<string, TensorBlock>;

  constructor(samples: Labels, components: Labels[], properties: Labels, values: Float64Array, gradients: Map<string, TensorBlock> = new Map()) {
    this.samples = samples;
    this.components = components;
    this.properties = properties;
    this.values = values;
    this.#gradients = gradients;
    const expected = this.shape.reduce((a, b) => a * b, 1);
    if (values.length !== expected) {
      throw outOfRange(`block values have ${values.length} entries but the labels give shape [${this.shape}] (${expected})`);
    }
    if (!fromBinding) for (const [parameter, g] of gradients) checkGradient(this, parameter, g);
  }

  /** `[samples, ...components, properties]`. */
  get shape(): number[] {
    return [this.samples.count, ...this.components.map((c) => c.count), this.properties.count];
  }

  /** The gradient block with respect to `parameter` ("positions", "strain"), if computed. */
  gradient(parameter: string): TensorBlock | undefined {
    return this.#gradients.get(parameter);
  }

  /** Names of the computed gradients. */
  gradientsList(): string[] {
    return [...this.#gradients.keys()];
  }

  /** The values as `{ data, shape }` (see {@link toArray}). */
  toArray(options: { dtype: 'float32' }): DenseArray<Float32Array>;
  toArray(options?: { dtype?: 'float64' }): DenseArray<Float64Array>;
  toArray(options: { dtype?: Dtype } = {}): DenseArray {
    return toArray(this, options);
  }

  /** @internal */
  toData(): BlockData {
    return {
      samples: this.samples.toData(),
      components: this.components.map((c) => c.toData()),
      properties: this.properties.toData(),
      values: this.values,
      gradients: [...this.#gradients].map(([parameter, g]) => ({ parameter, block: g.toData() })),
    };
  }

  /** @internal */
  static fromData(d: BlockData): TensorBlock {
    const gradients = new Map<string, TensorBlock>();
    for (const g of d.gradients) gradients.set(g.parameter, TensorBlock.fromData(g.block));
    const outer = fromBinding;
    fromBinding = true;
    try {
      return new TensorBlock(
        Labels.fromData(d.samples),
        d.components.map((c) => Labels.fromData(c)),
        Labels.fromData(d.properties),
        d.values,
        gradients,
      );
    } finally {
      fromBinding = outer;
    }
  }
}

/** Keys → blocks (metatensor's `TensorMap`). */
export class TensorMap {
  /** One row per block. */
  readonly keys: Labels;
  readonly #blocks: TensorBlock[];

  constructor(keys: Labels, blocks: TensorBlock[]) {
    if (keys.count !== blocks.length) throw outOfRange(`${keys.count} keys but ${blocks.length} blocks`);
    this.keys = keys;
    this.#blocks = blocks;
  }

  /**
   * All blocks in key order, or those whose key matches every `{name: value}`
   * of `selection` (e.g. `tm.blocks({ center_type: 8 })`).
   */
  blocks(selection?: Record<string, number>): TensorBlock[] {
    if (selection === undefined) return [...this.#blocks];
    return this.#matching(selection).map((k) => this.#blocks[k]);
  }

  /** Number of blocks. */
  get length(): number {
    return this.#blocks.length;
  }

  #matching(selection: Record<string, number>): number[] {
    if (selection === null || typeof selection !== 'object') {
      throw invalidParameter(`key selection must be an object {name: value}, got ${describe(selection)}`);
    }
    const dims = Object.entries(selection).map(([name, v]) => {
      const d = this.keys.names.indexOf(name);
      if (d < 0) throw outOfRange(`no key dimension named "${name}" (keys are ${this.keys.names.join(', ')})`);
      if (!Number.isInteger(v)) throw invalidParameter(`key selection ${name} must be an integer, got ${describe(v)}`);
      return [d, v] as const;
    });
    const n = this.keys.names.length;
    const out: number[] = [];
    for (let k = 0; k < this.keys.count; k++) {
      if (dims.every(([d, v]) => this.keys.values[k * n + d] === v)) out.push(k);
    }
    return out;
  }

  /** A TensorMap with only the blocks whose key matches `selection` (blocks are shared, not copied). */
  select(selection: Record<string, number>): TensorMap {
    const ks = this.#matching(selection);
    const n = this.keys.names.length;
    const values = new Int32Array(ks.length * n);
    ks.forEach((k, r) => values.set(this.keys.values.subarray(k * n, (k + 1) * n), r * n));
    return new TensorMap(new Labels(this.keys.names, values), ks.map((k) => this.#blocks[k]));
  }

  /**
   * Moves key dimensions into the properties, merging blocks that differ only
   * in them; combinations absent for a sample are zeros (gradients too).
   * Given names, each merged block gets the combinations present among its
   * own blocks (sorted, as metatensor does); given a `Labels` of
   * combinations, every block gets exactly those columns, which fixes the
   * layout across blocks and batches (e.g. batches with different species).
   *
   * @example tm.keysToProperties(['neighbor_1_type', 'neighbor_2_type'])
   */
  keysToProperties(keys: string | string[] | Labels): TensorMap {
    if (keys instanceof Labels) {
      return TensorMap.fromData(native.tensorKeysToProperties(this.toData(), keys.names, keys.values));
    }
    return TensorMap.fromData(native.tensorKeysToProperties(this.toData(), names(keys, 'keysToProperties'), undefined));
  }

  /**
   * Moves key dimensions into the samples (appended after the existing sample
   * dimensions, samples sorted); gradients follow.
   *
   * @example tm.keysToSamples('center_type')
   */
  keysToSamples(keys: string | string[]): TensorMap {
    return TensorMap.fromData(native.tensorKeysToSamples(this.toData(), names(keys, 'keysToSamples')));
  }

  /**
   * Sums over the sample dimensions `sampleNames`; the remaining sample
   * dimensions label the result. `sumOverSamples('atom')` turns per-atom
   * features into per-structure ones (samples `system`). Gradients follow.
   */
  sumOverSamples(sampleNames: string | string[]): TensorMap {
    return TensorMap.fromData(native.tensorReduceOverSamples(this.toData(), names(sampleNames, 'sumOverSamples'), false));
  }

  /** Like {@link sumOverSamples}, divided by the number of samples in each group. */
  meanOverSamples(sampleNames: string | string[]): TensorMap {
    return TensorMap.fromData(native.tensorReduceOverSamples(this.toData(), names(sampleNames, 'meanOverSamples'), true));
  }

  /**
   * Joins TensorMaps computed on consecutive batches of systems along the
   * samples: the `system` sample dimension of each tensor is shifted by the
   * number of systems before it (`systemCounts[i]`, by default one more than
   * the largest system index found in tensor i). Keys are the sorted union.
   */
  static join(tensors: TensorMap[], options: { systemCounts?: number[] } = {}): TensorMap {
    if (!Array.isArray(tensors) || tensors.length === 0 || !tensors.every((t) => t instanceof TensorMap)) {
      throw invalidParameter(`join expects a non-empty array of TensorMaps, got ${describe(tensors)}`);
    }
    const counts = options.systemCounts;
    if (counts !== undefined && (!Array.isArray(counts) || !counts.every((c) => Number.isInteger(c) && c >= 0))) {
      throw invalidParameter(`systemCounts must be an array of non-negative integers, got ${describe(counts)}`);
    }
    return TensorMap.fromData(native.tensorJoin(tensors.map((t) => t.toData()), counts));
  }

  /** The values of the only block as `{ data, shape }` (throws unless there is exactly one block). */
  toArray(options: { dtype: 'float32'; layout?: 'blocks' | 'dscribe' }): DenseArray<Float32Array>;
  toArray(options?: { dtype?: 'float64'; layout?: 'blocks' | 'dscribe' }): DenseArray<Float64Array>;
  toArray(options: ToArrayOptions = {}): DenseArray {
    if (options.layout === 'dscribe') return toArray(this, options);
    if (this.#blocks.length !== 1) {
      throw outOfRange(
        `toArray needs exactly one block, this TensorMap has ${this.#blocks.length}: move keys first (keysToProperties / keysToSamples), use toArray(tm.block(i)), or stack the blocks with { layout: 'dscribe' }`,
      );
    }
    return toArray(this.#blocks[0], { dtype: options.dtype });
  }

  /**
   * Saves to a metatensor `.mts` file (what `metatensor.load` reads in Python),
   * gradients included, off the event loop; {@link saveSync} blocks. The file
   * is written under a temporary name and renamed, so a failure leaves nothing.
   * (Before acdc 0.2 `save` blocked; it returns a Promise now, as `model.save`.)
   */
  async save(path: string, options: { signal?: AbortSignalLike } = {}): Promise<void> {
    const signal = checkSignal(options.signal);
    const data = this.toData();
    return writeAtomically(checkPath(path), (tmp) => runQueued(() => native.tensorSave(tmp, data), signal));
  }

  /** Saves to a `.mts` file, blocking: the synchronous form of {@link save}. */
  saveSync(path: string): void {
    const data = this.toData();
    writeAtomicallySync(checkPath(path), (tmp) => native.tensorSaveSync(tmp, data));
  }

  /** @deprecated the same as {@link save} (a Promise); kept for code written before `save` became asynchronous. */
  saveAsync(path: string, options: { signal?: AbortSignalLike } = {}): Promise<void> {
    return this.save(path, options);
  }

  /**
   * Reads a metatensor `.mts` file (e.g. written by `metatensor.save` in
   * Python) off the event loop; {@link TensorMap.loadSync} blocks.
   * (Before acdc 0.2 `load` blocked; it returns a Promise now, as `SparseGPR.load`.)
   */
  static async load(path: string, options: { signal?: AbortSignalLike } = {}): Promise<TensorMap> {
    const signal = checkSignal(options.signal);
    const p = checkPath(path);
    return TensorMap.fromData(await runQueued(() => native.tensorLoad(p), signal));
  }

  /** Reads a `.mts` file, blocking: the synchronous form of {@link TensorMap.load}. */
  static loadSync(path: string): TensorMap {
    return TensorMap.fromData(native.tensorLoadSync(checkPath(path)));
  }

  /** @deprecated the same as {@link TensorMap.load} (a Promise); kept for code written before `load` became asynchronous. */
  static loadAsync(path: string, options: { signal?: AbortSignalLike } = {}): Promise<TensorMap> {
    return TensorMap.load(path, options);
  }

  /** The bytes of a `.mts` file. */
  toBuffer(): Uint8Array {
    return native.tensorSaveBuffer(this.toData());
  }

  /** Reads the bytes of a `.mts` file. */
  static fromBuffer(buffer: Uint8Array): TensorMap {
    if (!(buffer instanceof Uint8Array)) throw invalidParameter(`fromBuffer expects a Buffer or Uint8Array, got ${describe(buffer)}`);
    return TensorMap.fromData(native.tensorLoadBuffer(buffer));
  }

  /** @internal */
  toData(): TensorMapData {
    return { keys: this.keys.toData(), blocks: this.#blocks.map((b) => b.toData()) };
  }

  /**
   * One block: by index, or by a key selection matching exactly one block,
   * e.g. `tm.block({ center_type: 8, neighbor_1_type: 1, neighbor_2_type: 8 })`.
   */
  block(selection: number | Record<string, number>): TensorBlock {
    if (typeof selection === 'number') {
      if (!Number.isInteger(selection) || selection < 0 || selection >= this.#blocks.length) {
        throw outOfRange(`block index ${selection} is out of range (${this.#blocks.length} blocks)`);
      }
      return this.#blocks[selection];
    }
    const matches: number[] = [];
    for (let k = 0; k < this.keys.count; k++) {
      const e = this.keys.entry(k);
      if (Object.entries(selection).every(([name, v]) => {
        if (!(name in e)) throw outOfRange(`no key dimension named "${name}" (keys are ${this.keys.names.join(', ')})`);
        return e[name] === v;
      })) matches.push(k);
    }
    if (matches.length !== 1) {
      throw outOfRange(`${matches.length} blocks match ${JSON.stringify(selection)} (expected exactly one)`);
    }
    return this.#blocks[matches[0]];
  }

  /** @internal */
  static fromData(d: TensorMapData): TensorMap {
    return new TensorMap(Labels.fromData(d.keys), d.blocks.map((b) => TensorBlock.fromData(b)));
  }
}

function checkPath(path: unknown): string {
  if (typeof path !== 'string' || path.length === 0) throw invalidParameter(`path must be a non-empty string, got ${describe(path)}`);
  return path;
}

/** Joins TensorMaps of consecutive batches along samples (see {@link TensorMap.join}). */
export function join(tensors: TensorMap[], options: { systemCounts?: number[] } = {}): TensorMap {
  return TensorMap.join(tensors, options);
}

function checkArray(array: DenseArray, what: string): void {
  if (array === null || typeof array !== 'object' || !(array.data instanceof Float64Array || array.data instanceof Float32Array)) {
    throw invalidParameter(`${what}: expected { data: Float64Array | Float32Array, shape: number[] }, got ${describe(array)}`);
  }
  if (!Array.isArray(array.shape) || !array.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw invalidParameter(`${what}: shape must be an array of non-negative integers, got ${describe(array.shape)}`);
  }
  const n = array.shape.reduce((a, b) => a * b, 1);
  if (n !== array.data.length) throw outOfRange(`${what}: data has ${array.data.length} values but shape [${array.shape}] needs ${n}`);
}

function asFloat64(data: Float64Array | Float32Array): Float64Array {
  return data instanceof Float64Array ? data : Float64Array.from(data);
}

/**
 * Writes a dense array to a NumPy `.npy` file (`numpy.load` reads it).
 * `dtype` defaults to the data's own type.
 */
export function writeNpySync(path: string, array: DenseArray, options: { dtype?: Dtype } = {}): void {
  checkArray(array, 'writeNpy');
  const dtype = checkDtype(options.dtype ?? (array.data instanceof Float32Array ? 'float32' : 'float64'));
  const data = asFloat64(array.data);
  writeAtomicallySync(checkPath(path), (tmp) => native.npyWriteSync(tmp, data, array.shape, dtype));
}

/**
 * Writes a `.npy` file off the event loop. `options.signal` aborts it: the
 * promise rejects with the abort error and no file is left (a write in
 * progress is finished into the temporary file, which is then removed).
 */
export async function writeNpy(path: string, array: DenseArray, options: { dtype?: Dtype; signal?: AbortSignalLike } = {}): Promise<void> {
  const signal = checkSignal(options?.signal);
  throwIfAborted(signal);
  checkArray(array, 'writeNpy');
  const dtype = checkDtype(options.dtype ?? (array.data instanceof Float32Array ? 'float32' : 'float64'));
  const data = asFloat64(array.data);
  return writeAtomically(checkPath(path), (tmp) => runQueued(() => native.npyWrite(tmp, data, array.shape, dtype), signal));
}

/** A `.npy` array read back: values converted to float64, and the dtype stored in the file. */
export interface NpyArray extends DenseArray<Float64Array> {
  /** numpy's type string in the file, e.g. `<f8`, `<f4`, `<i4`. */
  dtype: string;
}

/** Reads a numeric NumPy `.npy` file (float64, float32, int32, int64; C order). */
export function readNpySync(path: string): NpyArray {
  return native.npyReadSync(checkPath(path));
}

/** Reads a `.npy` file off the event loop; `options.signal` rejects the promise at once (the read's result is dropped). */
export async function readNpy(path: string, options: { signal?: AbortSignalLike } = {}): Promise<NpyArray> {
  const signal = checkSignal(options?.signal);
  throwIfAborted(signal);
  const p = checkPath(path);
  return abortable(runQueued(() => native.npyRead(p)), signal);
}

/**
 * numpy-style name of {@link writeNpySync} (blocking, as `numpy.save`).
 * @deprecated use {@link writeNpySync} or {@link writeNpy}: every other blocking form ends in `Sync`.
 */
export const saveNpy: typeof writeNpySync = writeNpySync;
/**
 * numpy-style name of {@link readNpySync} (blocking, as `numpy.load`).
 * @deprecated use {@link readNpySync} or {@link readNpy}: every other blocking form ends in `Sync`.
 */
export const loadNpy: typeof readNpySync = readNpySync;
