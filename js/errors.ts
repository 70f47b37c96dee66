// Stable error codes. Every error acdc throws carries `code`, one of
// ERROR_CODES, so that callers (and `acdc serve`) branch on the kind of
// failure, never on the wording of a message. The core's errors arrive from
// the binding with their code and data in front of the message (see
// crates/acdc-node/src/errors.rs); `fromNative` moves them onto the error,
// and `wrapBinding` applies it to every function, method and constructor of
// the binding, so no native error reaches a caller uncoded.
import * as os from 'node:os';

/** The codes of the errors acdc throws (the README has a table). */
export const ERROR_CODES = [
  /** A hyper-parameter, option or argument is not valid; `path` names it (`cutoff.radius`) when it is a parameter path. */
  'ACDC_INVALID_PARAMETER',
  /** A structure (types, positions, cell, pbc) is not valid. */
  'ACDC_INVALID_SYSTEM',
  /** A file or text could not be parsed; `line` (1-based) when known. */
  'ACDC_PARSE',
  /** Reading or writing a file failed; `osCode` (`'ENOENT'`) and `errno` when the OS reported the failure. */
  'ACDC_IO',
  /** A numerical failure: a singular matrix, no convergence. */
  'ACDC_NUMERICAL',
  /** The work would need more memory than the budget (`maxMemory`, ACDC_MAX_MEMORY) allows. */
  'ACDC_MEMORY',
  /** The operation was cancelled through its AbortSignal (as Node's own `AbortError`). */
  'ABORT_ERR',
  /** A bug in acdc (a panic in the core, a broken invariant): please report it. */
  'ACDC_INTERNAL',
] as const;

/** One of {@link ERROR_CODES}. */
export type AcdcErrorCode = (typeof ERROR_CODES)[number];

/** An error thrown by acdc: an `Error` (or `TypeError`, `RangeError`, `SyntaxError`) with a stable `code`. */
export interface AcdcError extends Error {
  code: AcdcErrorCode;
  /** ACDC_INVALID_PARAMETER: the JSON path of the parameter (`basis.radial.max_radial`), when the message names one. */
  path?: string;
  /** ACDC_PARSE: the 1-based line of the input. */
  line?: number;
  /** ACDC_IO: the OS's name of the failure (`'ENOENT'`, `'EACCES'`), as Node's fs errors have it in `code`. */
  osCode?: string;
  /** ACDC_IO: the OS's error number, negative as in Node's fs errors (`-2` for ENOENT on Linux). */
  errno?: number;
  /** ACDC_MEMORY: the option whose limit refused the work, when it is not the memory budget (`'maxValues'`). */
  limit?: string;
}

/** True when `e` is an error carrying one of acdc's codes. */
export function isAcdcError(e: unknown): e is AcdcError {
  return e instanceof Error && (ERROR_CODES as readonly string[]).includes((e as { code?: unknown }).code as string);
}

/** Sets `code` (and data fields) on `e` and returns it. @internal */
export function withCode<E extends Error>(e: E, code: AcdcErrorCode, data: { path?: string; line?: number; limit?: string } = {}): E & AcdcError {
  const coded = e as E & AcdcError;
  coded.code = code;
  if (data.path !== undefined) coded.path = data.path;
  if (data.line !== undefined) coded.line = data.line;
  if (data.limit !== undefined) coded.limit = data.limit;
  return coded;
}

/**
 * An `Error` with `code` (and data): what the front ends (js/cli, js/queue,
 * js/serve, js/drivers) and the featurize engine throw, never a bare `Error`.
 * @internal
 */
export function coded(code: AcdcErrorCode, message: string, data: { path?: string; line?: number; limit?: string } = {}): Error & AcdcError {
  return withCode(new Error(message), code, data);
}

/** A `TypeError` with code ACDC_INVALID_PARAMETER (and the parameter's `path`). @internal */
export function invalidParameter(message: string, path?: string): TypeError & AcdcError {
  return withCode(new TypeError(message), 'ACDC_INVALID_PARAMETER', { path });
}

/** A `TypeError` with code ACDC_INVALID_SYSTEM. @internal */
export function invalidSystem(message: string): TypeError & AcdcError {
  return withCode(new TypeError(message), 'ACDC_INVALID_SYSTEM');
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

/**
 * A Node fs error (`code: 'ENOENT'`, `errno: -2`, `syscall`, `path`) as an
 * ACDC_IO error: the OS's name moves to `osCode`. Other errors pass through.
 * @internal
 */
export function fromNodeIo(e: unknown): unknown {
  if (!(e instanceof Error)) return e;
  const io = e as NodeJS.ErrnoException & { osCode?: string };
  if (typeof io.code === 'string' && typeof io.syscall === 'string' && /^E[A-Z0-9]+$/.test(io.code)) {
    io.osCode = io.code;
    io.code = 'ACDC_IO';
  }
  return e;
}

// napi-rs's own status names: a native error without acdc's tag (an argument
// napi could not convert, a check in the binding) has one of these as `code`.
const NAPI_STATUS = new Set([
  'InvalidArg', 'ObjectExpected', 'StringExpected', 'NameExpected', 'FunctionExpected', 'NumberExpected', 'BooleanExpected',
  'ArrayExpected', 'GenericFailure', 'PendingException', 'Cancelled', 'EscapeCalledTwice', 'HandleScopeMismatch',
  'CallbackScopeMismatch', 'QueueFull', 'Closing', 'BigintExpected', 'DateExpected', 'ArrayBufferExpected',
  'DetachableArraybufferExpected', 'WouldDeadlock', 'NoExternalBuffersAllowed', 'Unknown',
]);

const TAG = '\u0001';

/** Moves the code and data the binding puts in front of a message onto the error. @internal */
export function fromNative(e: unknown): unknown {
  if (!(e instanceof Error)) return e;
  const raw = e.message;
  const err = e as Error & AcdcError & { osErrno?: number };
  if (raw.startsWith(TAG)) {
    const end = raw.indexOf(TAG, raw.indexOf(TAG, 1) + 1);
    const [code, data] = raw.slice(1, end).split(TAG);
    err.message = raw.slice(end + 1);
    if (typeof err.stack === 'string') err.stack = err.stack.replace(raw, err.message);
    err.code = (ERROR_CODES as readonly string[]).includes(code) ? (code as AcdcErrorCode) : 'ACDC_INTERNAL';
    const fields = data ? (JSON.parse(data) as { path?: string; line?: number; osErrno?: number }) : {};
    if (fields.path !== undefined) err.path = fields.path;
    if (fields.line !== undefined) err.line = fields.line;
    if (fields.osErrno !== undefined) {
      // Rust reports the OS's own number; Node's fs errors carry its negation (libuv)
      err.errno = -fields.osErrno;
      const name = process.platform === 'win32' ? undefined : ERRNO_NAMES.get(fields.osErrno);
      if (name !== undefined) err.osCode = name;
    }
    if (err.code === 'ABORT_ERR') err.name = 'AbortError';
  } else if (NAPI_STATUS.has((err as { code?: string }).code as string)) {
    const status = (err as { code?: string }).code;
    err.code = status === 'GenericFailure' || status === 'Unknown' ? 'ACDC_INTERNAL' : status === 'Cancelled' ? 'ABORT_ERR' : 'ACDC_INVALID_PARAMETER';
  }
  return e;
}

function isThenable(x: unknown): x is Promise<unknown> {
  return x !== null && typeof x === 'object' && typeof (x as { then?: unknown }).then === 'function';
}

function wrapFunction<F extends (...args: never[]) => unknown>(f: F): F {
  return function (this: unknown, ...args: never[]) {
    let r: unknown;
    try {
      r = f.apply(this, args);
    } catch (e) {
      throw fromNative(e);
    }
    return isThenable(r)
      ? r.then(undefined, (e: unknown) => {
          throw fromNative(e);
        })
      : r;
  } as unknown as F;
}

function wrapPrototype(proto: object): void {
  for (const name of Object.getOwnPropertyNames(proto)) {
    if (name === 'constructor') continue;
    const d = Object.getOwnPropertyDescriptor(proto, name)!;
    if (!d.configurable) continue;
    if (typeof d.value === 'function') Object.defineProperty(proto, name, { ...d, value: wrapFunction(d.value) });
    else if (d.get || d.set) Object.defineProperty(proto, name, { ...d, get: d.get && wrapFunction(d.get), set: d.set && wrapFunction(d.set) });
  }
}

function wrapClassOrFunction<F extends object>(f: F): F {
  if (typeof f !== 'function') return f;
  const original = f as unknown as ((...a: unknown[]) => unknown) & (new (...a: unknown[]) => object);
  const proto = (f as { prototype?: object }).prototype;
  if (proto) wrapPrototype(proto);
  // A new function rather than a Proxy: napi's static methods are
  // non-configurable, read-only properties, which a Proxy must return as they are.
  const wrapped = function (this: unknown, ...args: unknown[]): unknown {
    let r: unknown;
    try {
      if (new.target) return Reflect.construct(original, args, new.target === wrapped ? original : new.target);
      r = original.apply(this, args);
    } catch (e) {
      throw fromNative(e);
    }
    return isThenable(r)
      ? r.then(undefined, (e: unknown) => {
          throw fromNative(e);
        })
      : r;
  };
  // instances made by the binding (and by `new wrapped`) share the prototype: instanceof holds
  if (proto) wrapped.prototype = proto as never;
  Object.defineProperty(wrapped, 'name', { value: original.name });
  for (const key of Object.getOwnPropertyNames(original)) {
    if (['length', 'name', 'prototype', 'arguments', 'caller'].includes(key)) continue;
    const value = (original as unknown as Record<string, unknown>)[key];
    const own = typeof value === 'function' ? wrapFunction((...args: unknown[]) => (value as (...a: unknown[]) => unknown).apply(original, args)) : value;
    Object.defineProperty(wrapped, key, { value: own, enumerable: false });
  }
  return wrapped as unknown as F;
}

/**
 * The binding with every function, static function, constructor, method and
 * accessor rethrowing (or rejecting with) coded errors. @internal
 */
export function wrapBinding<T extends object>(binding: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(binding)) {
    if (typeof value === 'function') {
      out[name] = wrapClassOrFunction(value as object);
    } else {
      out[name] = value;
    }
  }
  return out as T;
}

/**
 * A new `Error` with `message` (the old one in context) that keeps the code
 * and data of `cause`, so that rewording an error never loses its kind;
 * `fallback`: the code when `cause` carries none of acdc's.
 * @internal
 */
export function rethrown(cause: unknown, message: string, fallback?: AcdcErrorCode): Error {
  const e = new Error(message, { cause });
  if (cause instanceof Error) {
    const from = cause as Partial<AcdcError>;
    const to = e as Error & Partial<AcdcError>;
    for (const k of ['code', 'path', 'line', 'osCode', 'errno', 'limit'] as const) if (from[k] !== undefined) (to as unknown as Record<string, unknown>)[k] = from[k];
    if (from.name === 'AbortError') e.name = 'AbortError';
  }
  if (fallback !== undefined && !isAcdcError(e)) {
    // a cause without one of acdc's codes (a Node fs or socket error, whose
    // `code` is the OS's name): the fallback, keeping the OS's name
    const to = e as Error & Partial<AcdcError>;
    const os = (to as { code?: unknown }).code;
    if (typeof os === 'string' && fallback === 'ACDC_IO') to.osCode = os;
    to.code = fallback;
  }
  return e;
}

/** A `RangeError` with code ACDC_INVALID_PARAMETER. @internal */
export function outOfRange(message: string, path?: string): RangeError & AcdcError {
  return withCode(new RangeError(message), 'ACDC_INVALID_PARAMETER', { path });
}

/** A `SyntaxError` with code ACDC_PARSE. @internal */
export function parseError(message: string, line?: number): SyntaxError & AcdcError {
  return withCode(new SyntaxError(message), 'ACDC_PARSE', { line });
}

/** An `Error` with code ACDC_IO (and the OS's name of the failure, when there is one). @internal */
export function ioError(message: string, osCode?: string): Error & AcdcError {
  const e = withCode(new Error(message), 'ACDC_IO');
  if (osCode !== undefined) e.osCode = osCode;
  return e;
}
