import type { LabelsData, BlockData, TensorMapData } from './native';
import { describe } from './system';

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
      throw new TypeError(`Labels names must be an array of strings, got ${describe(names)}`);
    }
    this.names = [...names];
    if (values instanceof Int32Array) {
      this.values = values;
    } else if (Array.isArray(values) && values.length > 0 && typeof values[0] === 'object') {
      const rows = values as ArrayLike<ArrayLike<number>>;
      this.values = new Int32Array(rows.length * names.length);
      for (let r = 0; r < rows.length; r++) {
        if (rows[r].length !== names.length) {
          throw new TypeError(`Labels row ${r} has ${rows[r].length} values but there are ${names.length} names`);
        }
        for (let k = 0; k < names.length; k++) this.values[r * names.length + k] = integer(`Labels row ${r}`, rows[r][k]);
      }
    } else {
      const flat = values as ArrayLike<number>;
      this.values = new Int32Array(flat.length);
      for (let k = 0; k < flat.length; k++) this.values[k] = integer('Labels values', flat[k]);
    }
    if (names.length === 0 ? this.values.length !== 0 : this.values.length % names.length !== 0) {
      throw new TypeError(`Labels has ${this.values.length} values for ${names.length} names (not whole rows)`);
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
      if (d < 0) throw new RangeError(`no dimension named "${name}" in labels (${this.names.join(', ')})`);
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
    if (d < 0) throw new RangeError(`no dimension named "${name}" in labels (${this.names.join(', ')})`);
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
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`${field} contains ${describe(v)} (expected an integer)`);
  return v;
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
      throw new RangeError(`block values have ${values.length} entries but the labels give shape [${this.shape}] (${expected})`);
    }
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

  /** @internal */
  static fromData(d: BlockData): TensorBlock {
    const gradients = new Map<string, TensorBlock>();
    for (const g of d.gradients) gradients.set(g.parameter, TensorBlock.fromData(g.block));
    return new TensorBlock(
      Labels.fromData(d.samples),
      d.components.map((c) => Labels.fromData(c)),
      Labels.fromData(d.properties),
      d.values,
      gradients,
    );
  }
}

/** Keys → blocks (metatensor's `TensorMap`). */
export class TensorMap {
  /** One row per block. */
  readonly keys: Labels;
  readonly #blocks: TensorBlock[];

  constructor(keys: Labels, blocks: TensorBlock[]) {
    if (keys.count !== blocks.length) throw new RangeError(`${keys.count} keys but ${blocks.length} blocks`);
    this.keys = keys;
    this.#blocks = blocks;
  }

  /** All blocks, in key order. */
  blocks(): TensorBlock[] {
    return [...this.#blocks];
  }

  /**
   * One block: by index, or by a key selection matching exactly one block,
   * e.g. `tm.block({ center_type: 8, neighbor_1_type: 1, neighbor_2_type: 8 })`.
   */
  block(selection: number | Record<string, number>): TensorBlock {
    if (typeof selection === 'number') {
      if (!Number.isInteger(selection) || selection < 0 || selection >= this.#blocks.length) {
        throw new RangeError(`block index ${selection} is out of range (${this.#blocks.length} blocks)`);
      }
      return this.#blocks[selection];
    }
    const matches: number[] = [];
    for (let k = 0; k < this.keys.count; k++) {
      const e = this.keys.entry(k);
      if (Object.entries(selection).every(([name, v]) => {
        if (!(name in e)) throw new RangeError(`no key dimension named "${name}" (keys are ${this.keys.names.join(', ')})`);
        return e[name] === v;
      })) matches.push(k);
    }
    if (matches.length !== 1) {
      throw new RangeError(`${matches.length} blocks match ${JSON.stringify(selection)} (expected exactly one)`);
    }
    return this.#blocks[matches[0]];
  }

  /** @internal */
  static fromData(d: TensorMapData): TensorMap {
    return new TensorMap(Labels.fromData(d.keys), d.blocks.map((b) => TensorBlock.fromData(b)));
  }
}
