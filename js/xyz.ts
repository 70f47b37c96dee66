import { invalidParameter, outOfRange } from './errors';
import native from './native';
import { checkSignal, runQueued, type AbortSignalLike } from './schedule';
import { writeAtomically, writeAtomicallySync } from './atomic';
import type { FrameData, ColumnData, InfoFloat } from './native';
import { ArrayValue, describe, InfoValue, System, SystemInit } from './system';

/** @internal */
export function fromFrame(f: FrameData): System {
  const info = JSON.parse(f.infoJson) as Record<string, InfoValue>;
  // numbers JSON cannot carry (NaN, ±Infinity, -0) travel beside it
  for (const { key, index, value } of f.infoFloats) {
    if (index < 0) info[key] = value;
    else (info[key] as number[])[index] = value;
  }
  const arrays: Record<string, ArrayValue> = {};
  for (const c of f.arrays) {
    switch (c.kind) {
      case 'float':
        arrays[c.name] = c.floats as Float64Array;
        break;
      case 'int':
        arrays[c.name] = c.ints as Int32Array;
        break;
      case 'bool':
        arrays[c.name] = c.bools as boolean[];
        break;
      default:
        arrays[c.name] = c.strings as string[];
    }
  }
  return new System({ types: f.types, positions: f.positions, cell: f.cell, pbc: f.pbc, info, arrays });
}

function toFrame(s: System | SystemInit, k: number): FrameData {
  const system = s instanceof System ? s : new System(s);
  const n = system.size;
  const arrays: ColumnData[] = Object.entries(system.arrays).map(([name, v]) => {
    const ncols = n === 0 ? 1 : v.length / n;
    if (v instanceof Float64Array) return { name, kind: 'float', ncols, floats: v };
    if (v instanceof Int32Array) return { name, kind: 'int', ncols, ints: v };
    if (Array.isArray(v) && v.every((x) => typeof x === 'boolean')) return { name, kind: 'bool', ncols, bools: v as boolean[] };
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return { name, kind: 'string', ncols, strings: v as string[] };
    throw invalidParameter(`frames[${k}].arrays.${name} must be a Float64Array, Int32Array, string[] or boolean[], got ${describe(v)}`);
  });
  const infoFloats: InfoFloat[] = [];
  const info: Record<string, InfoValue> = {};
  for (const [key, value] of Object.entries(system.info)) {
    if (typeof value === 'number' && isSpecial(value)) {
      infoFloats.push({ key, index: -1, value });
      info[key] = 0;
    } else if (Array.isArray(value) && value.length > 0 && value.every((x) => typeof x === 'number')) {
      info[key] = value.map((x, index) => {
        if (!isSpecial(x as number)) return x;
        infoFloats.push({ key, index, value: x as number });
        return 0;
      });
    } else if (isJson(value)) {
      info[key] = value;
    } else {
      throw invalidParameter(
        `frames[${k}].info.${key} must be a number, string, boolean, null, array or object of them (NaN and infinities only as a number or in an array of numbers), got ${describe(value)}`,
      );
    }
  }
  return { ...system.data(), infoJson: JSON.stringify(info), arrays, infoFloats };
}

/** NaN, ±Infinity and -0: JSON cannot carry them (JSON.stringify(-0) is "0"). */
function isSpecial(x: number): boolean {
  return !Number.isFinite(x) || Object.is(x, -0);
}

function isJson(x: unknown): boolean {
  if (x === null) return true;
  if (typeof x === 'number') return Number.isFinite(x);
  if (typeof x === 'string' || typeof x === 'boolean') return true;
  if (Array.isArray(x)) return x.every(isJson);
  if (x !== null && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) return Object.values(x).every(isJson);
  return false;
}

function toFrames(frames: System | SystemInit | Array<System | SystemInit>): FrameData[] {
  const list = Array.isArray(frames) ? frames : [frames];
  return list.map(toFrame);
}

/**
 * Parses extended XYZ text (ASE-compatible: Lattice, Properties, pbc and
 * key=value pairs) into systems. Throws with the line number on malformed input.
 *
 * @example
 * const frames = parseXyz(fs.readFileSync('data.xyz', 'utf8'));
 */
export function parseXyz(text: string): System[] {
  if (typeof text !== 'string') throw invalidParameter(`parseXyz expects a string, got ${describe(text)}`);
  return native.parseXyz(text).map(fromFrame);
}

/** Formats systems as extended XYZ text that ASE reads back identically. */
export function formatXyz(frames: System | SystemInit | Array<System | SystemInit>): string {
  return native.formatXyz(toFrames(frames));
}

function checkPath(path: unknown): string {
  if (typeof path !== 'string' || path.length === 0) throw invalidParameter(`path must be a non-empty string, got ${describe(path)}`);
  return path;
}

/** Reads every frame of an extended XYZ file (blocking). */
export function readXyzSync(path: string): System[] {
  return native.readXyzSync(checkPath(path)).map(fromFrame);
}

/** Reads every frame of an extended XYZ file off the event loop. */
export async function readXyz(path: string, options: { signal?: AbortSignalLike } = {}): Promise<System[]> {
  const signal = checkSignal(options.signal);
  const p = checkPath(path);
  return (await runQueued(() => native.readXyz(p), signal)).map(fromFrame);
}

/** Writes frames to an extended XYZ file (blocking). */
export function writeXyzSync(path: string, frames: System | SystemInit | Array<System | SystemInit>): void {
  const data = toFrames(frames);
  writeAtomicallySync(checkPath(path), (tmp) => native.writeXyzSync(tmp, data));
}

/** Writes frames to an extended XYZ file off the event loop. */
export async function writeXyz(path: string, frames: System | SystemInit | Array<System | SystemInit>, options: { signal?: AbortSignalLike } = {}): Promise<void> {
  const signal = checkSignal(options.signal);
  const data = toFrames(frames);
  // an abort discards the temporary file: nothing is left at `path`
  await writeAtomically(checkPath(path), (tmp) => runQueued(() => native.writeXyz(tmp, data), signal));
}

/**
 * Streams the frames of an extended XYZ file, `batch` frames per read off the
 * event loop: memory stays bounded by the batch, whatever the file size.
 *
 * @example
 * for await (const frame of iterXyz('big.xyz')) { ... }
 */
export async function* iterXyz(path: string, options: { batch?: number; signal?: AbortSignalLike } = {}): AsyncGenerator<System, void, undefined> {
  const batch = options.batch ?? 64;
  // a huge batch is fine: frames are read as they come, nothing is reserved for it
  if (!Number.isSafeInteger(batch) || batch <= 0) throw outOfRange(`batch must be a positive integer, got ${describe(batch)}`);
  const signal = checkSignal(options.signal);
  const reader = new native.XyzReader(checkPath(path));
  for (;;) {
    const frames = await runQueued(() => reader.next(batch), signal);
    if (frames.length === 0) return;
    for (const f of frames) yield fromFrame(f);
  }
}
