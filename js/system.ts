import { invalidSystem } from './errors';
import native from './native';
import type { SystemData } from './native';

/** Any JSON value (extended XYZ stores it as `_JSON …`); numbers may also be NaN, ±Infinity or -0. */
export type JsonValue = number | string | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A value from the extxyz comment line (or set by the user): numbers, strings, booleans, arrays, nested JSON. */
export type InfoValue = JsonValue;

/** A per-atom column, flat row-major ([atom][column]). */
export type ArrayValue = Float64Array | Int32Array | string[] | boolean[];

/** Anything that looks like an array of numbers (Array, typed array). */
export type NumberArray = ArrayLike<number>;

/** What `new System(...)` accepts. Lengths in Å. */
export interface SystemInit {
  /**
   * Species of each atom: any 32-bit integer (usually the atomic number) or an
   * element symbol (`'O'`, `'H'`, as written in the periodic table; `'X'` is 0).
   */
  types: NumberArray | ArrayLike<number | string>;
  /** Cartesian positions in Å: flat (length 3N) or N×3 nested. */
  positions: NumberArray | ArrayLike<NumberArray>;
  /** Cell in Å: 9 numbers or 3×3, rows are the lattice vectors a, b, c. Omit for a molecule. */
  cell?: NumberArray | ArrayLike<NumberArray> | null;
  /**
   * Periodicity along a, b, c: one boolean for all three or three booleans.
   * Default: periodic along every non-zero cell vector (false everywhere without a cell).
   */
  pbc?: boolean | readonly boolean[];
  /** Per-structure values (energy, strings, ...), kept as given. */
  info?: Record<string, InfoValue>;
  /** Extra per-atom columns, flat row-major. */
  arrays?: Record<string, ArrayValue>;
}

function isNested(x: unknown): x is ArrayLike<NumberArray> {
  return Array.isArray(x) && x.length > 0 && typeof x[0] === 'object' && x[0] !== null;
}

function flatten(field: string, value: unknown, rowLength: number): Float64Array {
  if (value === null || value === undefined || typeof value !== 'object' || typeof (value as ArrayLike<number>).length !== 'number') {
    throw invalidSystem(`${field} must be an array of numbers, got ${describe(value)}`);
  }
  if (isNested(value)) {
    const out = new Float64Array(value.length * rowLength);
    for (let r = 0; r < value.length; r++) {
      const row = value[r];
      if (row === null || typeof row !== 'object' || row.length !== rowLength) {
        throw invalidSystem(`${field}[${r}] must have ${rowLength} numbers, got ${describe(row)}`);
      }
      for (let k = 0; k < rowLength; k++) out[r * rowLength + k] = number(`${field}[${r}][${k}]`, row[k]);
    }
    return out;
  }
  // a Float64Array holds numbers only: one bulk copy instead of a checked
  // call per number (which costs ~1 µs each before V8 optimises the loop)
  if (value instanceof Float64Array) return new Float64Array(value);
  const flat = value as NumberArray;
  const out = new Float64Array(flat.length);
  for (let k = 0; k < flat.length; k++) out[k] = number(`${field}[${k}]`, flat[k]);
  return out;
}

function number(field: string, v: unknown): number {
  if (typeof v !== 'number') throw invalidSystem(`${field} is ${describe(v)} (expected a number)`);
  return v;
}

/** Short description of a value for error messages. */
export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} of length ${(v as unknown as ArrayLike<number>).length}`;
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

function toTypes(value: unknown): Int32Array {
  if (value instanceof Int32Array) return new Int32Array(value);
  if (value === null || typeof value !== 'object' || typeof (value as ArrayLike<number>).length !== 'number') {
    throw invalidSystem(`types must be an array of integers, got ${describe(value)}`);
  }
  const arr = value as ArrayLike<unknown>;
  const out = new Int32Array(arr.length);
  let symbols: string[] | undefined;
  for (let k = 0; k < arr.length; k++) {
    let t = arr[k];
    if (typeof t === 'string') {
      symbols ??= native.elementSymbols();
      const z = symbols.indexOf(t);
      if (z < 0) throw invalidSystem(`types[${k}] is ${describe(t)}, which is not an element symbol (e.g. 'H', 'He', 'Li')`);
      t = z;
    }
    if (typeof t !== 'number' || !Number.isInteger(t) || t < -2147483648 || t > 2147483647) {
      throw invalidSystem(`types[${k}] is ${describe(t)} (expected a 32-bit integer or an element symbol)`);
    }
    out[k] = t;
  }
  return out;
}

function toPbc(value: unknown, cell: Float64Array): [boolean, boolean, boolean] {
  if (value === undefined || value === null) {
    const nonzero = (r: number) => cell[3 * r] !== 0 || cell[3 * r + 1] !== 0 || cell[3 * r + 2] !== 0;
    return [nonzero(0), nonzero(1), nonzero(2)];
  }
  if (typeof value === 'boolean') return [value, value, value];
  if (!Array.isArray(value) || value.length !== 3 || !value.every((b) => typeof b === 'boolean')) {
    throw invalidSystem(`pbc must be a boolean or 3 booleans, got ${Array.isArray(value) ? JSON.stringify(value) : describe(value)}`);
  }
  return [value[0], value[1], value[2]];
}

/**
 * An atomic structure: species, positions (Å), cell (Å, rows are lattice
 * vectors, ASE convention) and periodicity. Validated on construction: a bad
 * field throws an `Error` that names it.
 *
 * @example
 * const water = new System({ types: [8, 1, 1], positions: [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]] });
 * const si = new System({ types: [14, 14], positions: [0, 0, 0, 1.36, 1.36, 1.36],
 *                         cell: [[0, 2.72, 2.72], [2.72, 0, 2.72], [2.72, 2.72, 0]], pbc: true });
 */
export class System {
  /** Species of each atom. */
  readonly types: Int32Array;
  /** Positions in Å, flat, length 3N. */
  readonly positions: Float64Array;
  /** Cell in Å, 9 numbers, rows are the lattice vectors; zeros when there is none. */
  readonly cell: Float64Array;
  /** Periodicity along a, b, c. */
  readonly pbc: [boolean, boolean, boolean];
  /** Per-structure values (extxyz comment-line key=value pairs). */
  readonly info: Record<string, InfoValue>;
  /** Extra per-atom columns (extxyz Properties beyond species and pos), flat row-major. */
  readonly arrays: Record<string, ArrayValue>;

  constructor(init: SystemInit) {
    if (init === null || typeof init !== 'object') {
      throw invalidSystem(`System expects an object {types, positions, cell?, pbc?}, got ${describe(init)}`);
    }
    const known = new Set(['types', 'positions', 'cell', 'pbc', 'info', 'arrays']);
    for (const key of Object.keys(init)) {
      if (!known.has(key)) throw invalidSystem(`unknown System field "${key}" (expected types, positions, cell, pbc, info, arrays)`);
    }
    this.types = toTypes(init.types);
    this.positions = flatten('positions', init.positions, 3);
    this.cell = init.cell === undefined || init.cell === null ? new Float64Array(9) : flatten('cell', init.cell, 3);
    this.pbc = toPbc(init.pbc, this.cell);
    this.info = { ...(init.info ?? {}) };
    this.arrays = { ...(init.arrays ?? {}) };
    native.validateSystem(this.data());
    for (const [name, column] of Object.entries(this.arrays)) {
      if (column.length % Math.max(this.size, 1) !== 0 || (this.size === 0 && column.length !== 0)) {
        throw invalidSystem(`arrays.${name} has ${column.length} values, not a multiple of the ${this.size} atoms`);
      }
    }
  }

  /** Number of atoms. */
  get size(): number {
    return this.types.length;
  }

  /** The flat data handed to the native binding. @internal */
  data(): SystemData {
    return { types: this.types, positions: this.positions, cell: this.cell, pbc: this.pbc };
  }
}

/**
 * A System of arrays taken as they are: no copy and no native validation.
 * Only for a loop that builds one System per step from numbers it has
 * checked itself (all finite), after a System with the same number of atoms,
 * cell and periodicity was built with `new System` (validation depends on
 * nothing else): the i-PI driver's steps. Not exported from the package.
 * @internal
 */
export function checkedSystem(types: Int32Array, positions: Float64Array, cell: Float64Array, pbc: [boolean, boolean, boolean]): System {
  const s = Object.create(System.prototype) as { -readonly [K in keyof System]: System[K] };
  s.types = types;
  s.positions = positions;
  s.cell = cell;
  s.pbc = pbc;
  s.info = {};
  s.arrays = {};
  return s as System;
}

/** Accepts a System or its init object. */
export function asSystem(s: System | SystemInit, field = 'system'): System {
  if (s instanceof System) return s;
  if (s === null || typeof s !== 'object') throw invalidSystem(`${field} must be a System, got ${describe(s)}`);
  return new System(s);
}
