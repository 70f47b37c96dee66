// Input files for chemiscope (https://chemiscope.org; Fraux, Cersonsky and
// Ceriotti, J. Open Source Softw. 5, 2117 (2020), doi:10.21105/joss.02117),
// the interactive structure–property map viewer: a JSON document (plain
// `.json` or gzip-compressed `.json.gz`) with the structures, per-structure
// and per-atom properties, optional atom-centred environments and the
// viewer's settings, in the layout chemiscope 1.1's `create_input` writes.
import { invalidParameter, outOfRange } from './errors';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import native from './native';
import { writeAtomically, writeAtomicallySync } from './atomic';
import { asSystem, describe, type InfoValue, type System, type SystemInit } from './system';
import type { DenseArray } from './tensor';
import { abortable, splitSignal, throwIfAborted, type AbortSignalLike } from './schedule';

/** A property shown by chemiscope: one value per structure or per atom (environment). */
export interface ChemiscopeProperty {
  /** `'structure'`: one value per structure; `'atom'`: one per environment (every atom when no environments are given). */
  target: 'structure' | 'atom';
  /**
   * Numbers or strings, one per structure / atom. A 2-D `{data, shape: [n, k]}`
   * with k > 1 becomes k properties `name[1]` … `name[k]` (chemiscope's 1-based naming).
   */
  values: ArrayLike<number> | readonly string[] | DenseArray;
  /** Units shown on the axes, e.g. `'eV'`. */
  units?: string;
  /** Free text shown in the viewer. */
  description?: string;
}

/** Metadata of the data set shown by the viewer. */
export interface ChemiscopeMeta {
  /** Name of the data set (default: the output file's name up to its first dot). */
  name?: string;
  description?: string;
  authors?: string[];
  references?: string[];
}

/** One atom-centred environment: the atom `center` of structure `structure`, neighbours within `cutoff` Å. */
export interface ChemiscopeEnvironment {
  structure: number;
  center: number;
  /** Radius in Å of the neighbourhood highlighted around the centre. */
  cutoff: number;
}

/** Map settings of the viewer; use {@link chemiscopeMapSettings} for the common case. */
export type ChemiscopeSettings = Record<string, unknown>;

/** Options of {@link writeChemiscope} and {@link chemiscopeInput}. */
export interface ChemiscopeOptions {
  /**
   * Properties by name: a {@link ChemiscopeProperty}, or a bare array whose
   * target is guessed from its length (structures first).
   */
  properties?: Record<string, ChemiscopeProperty | ArrayLike<number> | readonly string[]>;
  /**
   * Also take properties from the systems: every `info` entry that is a number,
   * string or boolean in every structure (target structure), and every `arrays`
   * column (target atom; a column of width k > 1 becomes `name[1]` … `name[k]`).
   * Given `properties` win on a name clash. Default true.
   */
  fromSystems?: boolean;
  /**
   * Atom-centred environments: `{ cutoff }` for every atom of every structure,
   * or an explicit list. Needed for atom properties to be shown on the map.
   */
  environments?: { cutoff: number } | ChemiscopeEnvironment[];
  /** The viewer's settings (`map`, `structure`, `target`), stored as given. */
  settings?: ChemiscopeSettings;
  meta?: ChemiscopeMeta;
}

/** The chemiscope document; write it with {@link writeChemiscope}. */
export interface ChemiscopeInput {
  meta: { name: string; description?: string; authors?: string[]; references?: string[] };
  settings?: ChemiscopeSettings;
  structures: Array<{ size: number; names: string[]; x: number[]; y: number[]; z: number[]; cell?: number[] }>;
  environments?: ChemiscopeEnvironment[];
  properties: Record<string, { target: 'structure' | 'atom'; values: number[] | string[]; units?: string; description?: string }>;
}

/**
 * Settings that put properties `x` and `y` on the map axes and colour the
 * points by `color` (chemiscope's `quick_settings`). `target: 'atom'` shows
 * one point per environment.
 */
export function chemiscopeMapSettings(options: { x: string; y: string; color?: string; target?: 'structure' | 'atom' }): ChemiscopeSettings {
  const map: Record<string, unknown> = { joinPoints: false, x: { property: options.x }, y: { property: options.y } };
  if (options.color !== undefined) map.color = { property: options.color };
  return {
    map,
    structure: [{ keepOrientation: false, playbackDelay: 500, unitCell: false, supercell: [1, 1, 1] }],
    target: options.target ?? 'structure',
  };
}

let symbols: string[] | undefined;
function symbol(z: number): string {
  symbols ??= native.elementSymbols();
  return z >= 0 && z < symbols.length ? symbols[z] : 'X';
}

function structureJson(s: System): ChemiscopeInput['structures'][number] {
  const n = s.size;
  const x = new Array<number>(n);
  const y = new Array<number>(n);
  const z = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    x[i] = s.positions[3 * i];
    y[i] = s.positions[3 * i + 1];
    z[i] = s.positions[3 * i + 2];
  }
  const out: ChemiscopeInput['structures'][number] = { size: n, names: Array.from(s.types, symbol), x, y, z };
  // as chemiscope's ASE reader: the cell only when all three vectors are non-zero
  const c = s.cell;
  const nonzero = (r: number) => c[3 * r] !== 0 || c[3 * r + 1] !== 0 || c[3 * r + 2] !== 0;
  if (nonzero(0) && nonzero(1) && nonzero(2)) out.cell = Array.from(c);
  return out;
}

type Values = number[] | string[];

function isDense(v: unknown): v is DenseArray {
  return v !== null && typeof v === 'object' && 'shape' in v && 'data' in v;
}

/** Values as a JSON list of one type; a 2-D array as its columns. */
function columns(name: string, values: unknown): Values[] {
  if (isDense(values)) {
    const { data, shape } = values;
    if (!Array.isArray(shape) || shape.length < 1 || shape.length > 2) {
      throw invalidParameter(`properties.${name}.values must be 1-D or 2-D, got shape ${JSON.stringify(shape)}`);
    }
    const rows = shape[0];
    const k = shape.length === 2 ? shape[1] : 1;
    if (data.length !== rows * k) throw invalidParameter(`properties.${name}.values has ${data.length} numbers, expected ${rows}×${k}`);
    const cols: number[][] = [];
    for (let c = 0; c < k; c++) {
      const col = new Array<number>(rows);
      for (let r = 0; r < rows; r++) col[r] = checkNumber(name, data[r * k + c], r);
      cols.push(col);
    }
    return cols;
  }
  if (values === null || typeof values !== 'object' || typeof (values as ArrayLike<unknown>).length !== 'number') {
    throw invalidParameter(`properties.${name}.values must be an array of numbers or strings, got ${describe(values)}`);
  }
  const arr = Array.from(values as ArrayLike<unknown>);
  if (arr.length > 0 && typeof arr[0] === 'string') {
    arr.forEach((v, r) => {
      if (typeof v !== 'string') throw invalidParameter(`properties.${name}.values[${r}] is ${describe(v)}: all values must be strings, or all numbers`);
    });
    return [arr as string[]];
  }
  return [arr.map((v, r) => (typeof v === 'boolean' ? Number(v) : checkNumber(name, v, r)))];
}

function checkNumber(name: string, v: unknown, r: number): number {
  if (typeof v !== 'number') throw invalidParameter(`properties.${name}.values[${r}] is ${describe(v)}: all values must be numbers, or all strings`);
  if (!Number.isFinite(v)) throw outOfRange(`properties.${name}.values[${r}] is ${v}: chemiscope files hold finite numbers only`);
  return v;
}

/** Properties found in the systems' info (structure) and arrays (atom). */
function systemProperties(systems: System[]): Map<string, ChemiscopeProperty> {
  const out = new Map<string, ChemiscopeProperty>();
  if (systems.length === 0) return out;
  const scalar = (v: InfoValue | undefined) => (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'string' || typeof v === 'boolean';
  for (const key of Object.keys(systems[0].info)) {
    const values = systems.map((s) => s.info[key]);
    if (!values.every(scalar)) continue;
    const kind = typeof values[0] === 'string' ? 'string' : 'number';
    if (!values.every((v) => (typeof v === 'string' ? 'string' : 'number') === kind)) continue;
    out.set(key, { target: 'structure', values: values.map((v) => (typeof v === 'boolean' ? Number(v) : v)) as number[] | string[] });
  }
  for (const key of Object.keys(systems[0].arrays)) {
    if (!systems.every((s) => key in s.arrays)) continue;
    const widths = systems.map((s) => (s.size === 0 ? 0 : s.arrays[key].length / s.size));
    const width = widths.find((w) => w > 0) ?? 1;
    if (!widths.every((w, i) => w === width || systems[i].size === 0)) continue;
    const first = systems[0].arrays[key];
    const strings = Array.isArray(first) && first.length > 0 && typeof first[0] === 'string';
    if (!systems.every((s) => (Array.isArray(s.arrays[key]) && typeof s.arrays[key][0] === 'string') === strings || s.size === 0)) continue;
    if (strings && width !== 1) continue;
    const total = systems.reduce((a, s) => a + s.size, 0);
    if (strings) {
      out.set(key, { target: 'atom', values: systems.flatMap((s) => s.arrays[key] as string[]) });
    } else {
      const data = new Float64Array(total * width);
      let o = 0;
      for (const s of systems) {
        const col = s.arrays[key];
        for (let i = 0; i < col.length; i++) data[o++] = Number(col[i]);
      }
      if (!data.every(Number.isFinite)) continue;
      out.set(key, { target: 'atom', values: width === 1 ? data : { data, shape: [total, width] } });
    }
  }
  return out;
}

function checkMeta(meta: unknown): ChemiscopeMeta {
  if (meta === undefined) return {};
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) throw invalidParameter(`meta must be an object, got ${describe(meta)}`);
  const m = meta as Record<string, unknown>;
  for (const key of Object.keys(m)) {
    if (!['name', 'description', 'authors', 'references'].includes(key)) {
      throw invalidParameter(`unknown meta field "${key}" (expected name, description, authors, references)`);
    }
  }
  for (const key of ['name', 'description'] as const) {
    if (m[key] !== undefined && typeof m[key] !== 'string') throw invalidParameter(`meta.${key} must be a string, got ${describe(m[key])}`);
  }
  if (m.name === '') throw invalidParameter('meta.name must not be empty');
  for (const key of ['authors', 'references'] as const) {
    if (m[key] !== undefined && !(Array.isArray(m[key]) && (m[key] as unknown[]).every((a) => typeof a === 'string'))) {
      throw invalidParameter(`meta.${key} must be an array of strings, got ${describe(m[key])}`);
    }
  }
  return m as ChemiscopeMeta;
}

function environmentList(env: ChemiscopeOptions['environments'], systems: System[]): ChemiscopeEnvironment[] | undefined {
  if (env === undefined) return undefined;
  const checkCutoff = (field: string, c: unknown) => {
    if (typeof c !== 'number' || !Number.isFinite(c) || c <= 0) throw outOfRange(`${field} must be a positive number of Å, got ${describe(c)}`);
    return c;
  };
  if (!Array.isArray(env)) {
    if (env === null || typeof env !== 'object') throw invalidParameter(`environments must be {cutoff} or an array of {structure, center, cutoff}, got ${describe(env)}`);
    const cutoff = checkCutoff('environments.cutoff', (env as { cutoff?: unknown }).cutoff);
    return systems.flatMap((s, structure) => Array.from({ length: s.size }, (_, center) => ({ structure, center, cutoff })));
  }
  return env.map((e, k) => {
    if (e === null || typeof e !== 'object') throw invalidParameter(`environments[${k}] must be {structure, center, cutoff}, got ${describe(e)}`);
    const { structure, center } = e;
    if (!Number.isInteger(structure) || structure < 0 || structure >= systems.length) {
      throw outOfRange(`environments[${k}].structure is ${describe(structure)}, not one of the ${systems.length} structures`);
    }
    if (!Number.isInteger(center) || center < 0 || center >= systems[structure].size) {
      throw outOfRange(`environments[${k}].center is ${describe(center)}, but structure ${structure} has ${systems[structure].size} atoms`);
    }
    return { structure, center, cutoff: checkCutoff(`environments[${k}].cutoff`, e.cutoff) };
  });
}

/**
 * Builds the chemiscope document (without writing it). Every property's
 * length is checked against the structures (target structure) or the
 * environments (target atom; every atom when there are none); an error names
 * the property and both lengths.
 */
export function chemiscopeInput(systems: Array<System | SystemInit>, options: ChemiscopeOptions = {}): ChemiscopeInput {
  if (!Array.isArray(systems)) throw invalidParameter(`systems must be an array of System, got ${describe(systems)}`);
  if (options === null || typeof options !== 'object') throw invalidParameter(`chemiscope options must be an object, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!['properties', 'fromSystems', 'environments', 'settings', 'meta'].includes(key)) {
      throw invalidParameter(`unknown chemiscope option "${key}" (expected properties, fromSystems, environments, settings, meta)`);
    }
  }
  const frames = systems.map((s, k) => asSystem(s, `systems[${k}]`));
  const meta = checkMeta(options.meta);
  const environments = environmentList(options.environments, frames);
  const nStructures = frames.length;
  const nAtoms = frames.reduce((a, s) => a + s.size, 0);
  const nEnvironments = environments?.length ?? nAtoms;

  const given = options.properties ?? {};
  if (given === null || typeof given !== 'object' || Array.isArray(given)) throw invalidParameter(`properties must be an object {name: values}, got ${describe(given)}`);
  const all = options.fromSystems === false ? new Map<string, ChemiscopeProperty>() : systemProperties(frames);
  if (environments !== undefined) {
    // per-atom columns of the systems: the values at the environments' centres
    const offsets: number[] = [];
    frames.reduce((o, s) => (offsets.push(o), o + s.size), 0);
    const rows = environments.map((e) => offsets[e.structure] + e.center);
    for (const [name, p] of all) {
      if (p.target !== 'atom') continue;
      if (Array.isArray(p.values)) {
        all.set(name, { ...p, values: rows.map((r) => (p.values as string[])[r]) });
      } else if (isDense(p.values)) {
        const { data, shape } = p.values;
        const k = shape[1];
        const out = new Float64Array(rows.length * k);
        rows.forEach((r, i) => out.set((data as Float64Array).subarray(r * k, (r + 1) * k), i * k));
        all.set(name, { ...p, values: { data: out, shape: [rows.length, k] } });
      } else {
        const v = p.values as Float64Array;
        all.set(name, { ...p, values: Float64Array.from(rows, (r) => v[r]) });
      }
    }
  }
  for (const [name, p] of Object.entries(given)) {
    if (p !== null && typeof p === 'object' && 'target' in p && 'values' in p) {
      all.set(name, p as ChemiscopeProperty);
    } else {
      const len = isDense(p) ? p.shape[0] : (p as ArrayLike<unknown>)?.length;
      const target = len === nStructures ? 'structure' : len === nEnvironments ? 'atom' : undefined;
      if (target === undefined) {
        throw outOfRange(`properties.${name} has ${describe(len)} values: expected ${nStructures} (one per structure) or ${nEnvironments} (one per atom/environment)`);
      }
      all.set(name, { target, values: p as ArrayLike<number> });
    }
  }

  const properties: ChemiscopeInput['properties'] = {};
  for (const [name, p] of all) {
    if (p.target !== 'structure' && p.target !== 'atom') throw invalidParameter(`properties.${name}.target must be "structure" or "atom", got ${describe(p.target)}`);
    for (const key of Object.keys(p)) {
      if (!['target', 'values', 'units', 'description'].includes(key)) throw invalidParameter(`unknown field "${key}" in properties.${name} (expected target, values, units, description)`);
    }
    for (const key of ['units', 'description'] as const) {
      if (p[key] !== undefined && typeof p[key] !== 'string') throw invalidParameter(`properties.${name}.${key} must be a string, got ${describe(p[key])}`);
    }
    const expected = p.target === 'structure' ? nStructures : nEnvironments;
    const cols = columns(name, p.values);
    cols.forEach((values, c) => {
      const key = cols.length === 1 ? name : `${name}[${c + 1}]`;
      if (values.length !== expected) {
        const what = p.target === 'structure' ? 'structures' : environments ? 'environments' : 'atoms';
        throw outOfRange(`properties.${name} (target ${p.target}) has ${values.length} values, but there are ${expected} ${what}`);
      }
      const entry: ChemiscopeInput['properties'][string] = { target: p.target, values };
      if (p.units !== undefined) entry.units = p.units;
      const description = cols.length === 1 ? p.description : `${p.description ?? name} [component ${c + 1}]`;
      if (description !== undefined) entry.description = description;
      properties[key] = entry;
    });
  }

  if (options.settings !== undefined) {
    const s = options.settings;
    if (s === null || typeof s !== 'object' || Array.isArray(s)) throw invalidParameter(`settings must be an object, got ${describe(s)}`);
    if (s.target === 'atom' && environments === undefined) throw invalidParameter('settings.target "atom" needs environments');
    const map = s.map as Record<string, { property?: unknown }> | undefined;
    if (map && typeof map === 'object') {
      for (const axis of ['x', 'y', 'z', 'color', 'size']) {
        const prop = map[axis]?.property;
        if (typeof prop === 'string' && prop !== '' && !(prop in properties)) {
          throw outOfRange(`settings.map.${axis} names the property "${prop}", which is not among the properties (${Object.keys(properties).join(', ') || 'none'})`);
        }
      }
    }
  }

  const doc: ChemiscopeInput = { meta: { name: meta.name ?? '<unknown>' }, structures: frames.map(structureJson), properties };
  if (meta.description !== undefined) doc.meta.description = meta.description;
  if (meta.authors !== undefined) doc.meta.authors = [...meta.authors];
  if (meta.references !== undefined) doc.meta.references = [...meta.references];
  // the key order of chemiscope's create_input
  const ordered: ChemiscopeInput = { meta: doc.meta } as ChemiscopeInput;
  if (options.settings !== undefined) ordered.settings = options.settings;
  ordered.structures = doc.structures;
  if (environments !== undefined) ordered.environments = environments;
  ordered.properties = properties;
  return ordered;
}

function checkPath(file: unknown): { gzip: boolean } {
  if (typeof file !== 'string' || file === '') throw invalidParameter(`path must be a file name ending in .json or .json.gz, got ${describe(file)}`);
  if (file.endsWith('.json.gz')) return { gzip: true };
  if (file.endsWith('.json')) return { gzip: false };
  throw invalidParameter(`chemiscope file ${file}: the name must end in .json or .json.gz`);
}

function finish(file: string, doc: ChemiscopeInput): ChemiscopeInput {
  // as chemiscope's write_input: an unnamed data set takes the file's name
  if (doc.meta.name === '<unknown>') doc.meta.name = path.basename(file).split('.')[0] || '<unknown>';
  return doc;
}

/**
 * Writes a chemiscope input file: `.json` (indented) or `.json.gz` (compact,
 * gzip level 9), chosen by the name. The file appears whole or not at all.
 * Positions and cells in Å, as in the systems.
 *
 * @example
 * const p = pca(features, 2);
 * await writeChemiscope('map.json.gz', systems, {
 *   properties: { pca: { target: 'structure', values: p.scores } },   // → pca[1], pca[2]
 *   settings: chemiscopeMapSettings({ x: 'pca[1]', y: 'pca[2]' }),
 * });
 */
export async function writeChemiscope(file: string, systems: Array<System | SystemInit>, options: ChemiscopeOptions & { signal?: AbortSignalLike } = {}): Promise<void> {
  const { signal, rest } = splitSignal(options);
  throwIfAborted(signal);
  const { gzip } = checkPath(file);
  const doc = finish(file, chemiscopeInput(systems, rest ?? {}));
  const bytes = gzip ? await abortable(promisify(zlib.gzip)(JSON.stringify(doc), { level: 9 }), signal) : Buffer.from(JSON.stringify(doc, null, 2));
  throwIfAborted(signal);
  // an abort during the write rejects it; writeAtomically then removes the temporary file
  await writeAtomically(file, (tmp) => fs.promises.writeFile(tmp, bytes, signal ? { signal: signal as AbortSignal } : {}));
}

/** The synchronous form of {@link writeChemiscope}. */
export function writeChemiscopeSync(file: string, systems: Array<System | SystemInit>, options: ChemiscopeOptions = {}): void {
  const { gzip } = checkPath(file);
  const doc = finish(file, chemiscopeInput(systems, options));
  const bytes = gzip ? zlib.gzipSync(JSON.stringify(doc), { level: 9 }) : Buffer.from(JSON.stringify(doc, null, 2));
  writeAtomicallySync(file, (tmp) => fs.writeFileSync(tmp, bytes));
}
