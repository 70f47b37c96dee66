import { invalidParameter } from './errors';
// How asynchronous work shares the process. Every async entry point runs its
// native work on one of libuv's worker threads (4 by default, shared with
// fs, dns and zlib), and the heavy part then on acdc's own rayon pool. So
// that file I/O stays responsive however many computations are requested at
// once, at most `maxConcurrent()` native tasks are in flight; the others
// wait, in order, in a queue here (cheap: no thread is held while waiting).
// An AbortSignal removes a waiting task from the queue, or cancels a running
// computation between centres.

/**
 * The part of an `AbortSignal` acdc uses (structural, so that the types need
 * no DOM or Node typings; a real `AbortSignal` fits).
 */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * Native tasks allowed in flight at once: `ACDC_MAX_CONCURRENT`, else
 * libuv's pool size (`UV_THREADPOOL_SIZE`, default 4) minus 2, at least 1.
 */
export function maxConcurrent(): number {
  const explicit = Number(process.env.ACDC_MAX_CONCURRENT);
  if (Number.isInteger(explicit) && explicit > 0) return explicit;
  const pool = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  return Math.max(1, pool - 2);
}

let running = 0;
const waiting: Array<() => void> = [];

/** The error an aborted operation rejects with: the signal's reason, else an AbortError. */
export function abortError(signal: AbortSignalLike): Error {
  const reason = signal.reason;
  // a reason of the caller's own is theirs to recognise; the default one
  // (a DOMException whose `code` is the legacy number 20) becomes Node's
  // AbortError, code ABORT_ERR, as Node's own APIs do
  const isDefault = reason instanceof Error && reason.name === 'AbortError' && typeof (reason as { code?: unknown }).code !== 'string';
  if (reason instanceof Error && !isDefault) return reason;
  const error = new Error(reason === undefined || isDefault ? 'The operation was aborted' : String(reason), isDefault ? { cause: reason } : undefined);
  error.name = 'AbortError';
  (error as Error & { code?: string }).code = 'ABORT_ERR';
  return error;
}

/** Throws the abort error when `signal` is already aborted. @internal */
export function throwIfAborted(signal: AbortSignalLike | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/**
 * `work`, unless `signal` aborts first: then the promise rejects with the
 * abort error at once and the work's result (read-only work: nothing to
 * undo) is dropped when it comes. @internal
 */
export function abortable<T>(work: Promise<T>, signal: AbortSignalLike | undefined): Promise<T> {
  if (signal === undefined) return work;
  work.catch(() => undefined);
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** Splits `signal` off an options object (checked), so that the rest can be checked as before. @internal */
export function splitSignal<T extends object>(options: T | undefined): { signal: AbortSignalLike | undefined; rest: T | undefined } {
  if (options === undefined || options === null || typeof options !== 'object' || !('signal' in options)) return { signal: undefined, rest: options };
  const { signal, ...rest } = options as T & { signal?: unknown };
  return { signal: checkSignal(signal), rest: rest as T };
}

/** Checks that `signal` looks like an AbortSignal. @internal */
export function checkSignal(signal: unknown): AbortSignalLike | undefined {
  if (signal === undefined) return undefined;
  const s = signal as AbortSignalLike;
  if (s === null || typeof s !== 'object' || typeof s.aborted !== 'boolean' || typeof s.addEventListener !== 'function') {
    throw invalidParameter('signal must be an AbortSignal');
  }
  return s;
}

/**
 * Runs `start()` (which begins native work and returns its promise) once a
 * slot is free. `onAbort` is called if the signal aborts while the task
 * runs (e.g. to cancel the native computation); the promise then rejects
 * with the abort error. @internal
 */
export async function runQueued<T>(start: () => Promise<T>, signal?: AbortSignalLike, onAbort?: () => void): Promise<T> {
  throwIfAborted(signal);
  if (running >= maxConcurrent()) {
    await new Promise<void>((resolve, reject) => {
      const go = () => {
        signal?.removeEventListener('abort', abort);
        resolve();
      };
      const abort = () => {
        const k = waiting.indexOf(go);
        if (k >= 0) waiting.splice(k, 1);
        reject(abortError(signal!));
      };
      waiting.push(go);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }
  running += 1;
  const abort = () => onAbort?.();
  signal?.addEventListener('abort', abort, { once: true });
  try {
    const result = await start();
    throwIfAborted(signal);
    return result;
  } catch (e) {
    if (signal?.aborted) throw abortError(signal);
    throw e;
  } finally {
    signal?.removeEventListener('abort', abort);
    running -= 1;
    waiting.shift()?.();
  }
}
