// Output files appear whole or not at all: every writer of acdc writes to a
// temporary name in the target's own folder (so the final rename stays on one
// filesystem and is atomic on POSIX) and renames it over the target only once
// the write has succeeded. A failed or interrupted write removes its
// temporary file, so nothing that looks like a valid output is left behind.
import { fromNodeIo, ioError, rethrown } from './errors';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/** Temporary files still being written, removed if the process exits early. */
const pending = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const p of pending) {
      try {
        fs.unlinkSync(p);
      } catch {
        // already gone
      }
    }
  });
}

/**
 * A temporary path next to `target`: hidden, and not ending in the target's
 * extension, so that no tool mistakes it for a finished file.
 * @internal
 */
export function temporaryPathFor(target: string): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  const tmp = path.join(dir, `.${base}.${process.pid}-${randomBytes(4).toString('hex')}.partial`);
  pending.add(tmp);
  installExitHook();
  return tmp;
}

function removeQuietly(tmp: string): void {
  pending.delete(tmp);
  try {
    fs.unlinkSync(tmp);
  } catch {
    // never created, or already removed
  }
}

/**
 * Checks that `target` can be written before any work starts: its folder
 * exists and it is not itself a folder. Throws an Error naming the path.
 * @internal
 */
export function checkWritableTarget(target: string, what = 'output'): void {
  const dir = path.dirname(path.resolve(target));
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw ioError(`${what} ${target}: the folder ${dir} does not exist`, 'ENOENT');
  }
  if (!st.isDirectory()) throw ioError(`${what} ${target}: ${dir} is not a folder`, 'ENOTDIR');
  try {
    if (fs.statSync(target).isDirectory()) throw ioError(`${what} ${target} is a folder`, 'EISDIR');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** Commits the temporary file: renames it over the target. @internal */
export function commitSync(tmp: string, target: string): void {
  try {
    fs.renameSync(tmp, target);
  } catch (e) {
    removeQuietly(tmp);
    throw rethrown(fromNodeIo(e), `${target}: could not move the finished file into place: ${(e as Error).message}`);
  }
  pending.delete(tmp);
}

/** Discards the temporary file. @internal */
export function discard(tmp: string): void {
  removeQuietly(tmp);
}

/**
 * Runs `write(tmp)` and renames `tmp` over `target` on success; on failure
 * removes `tmp` and rethrows. @internal
 */
export function writeAtomicallySync<T>(target: string, write: (tmp: string) => T): T {
  const tmp = temporaryPathFor(target);
  let result: T;
  try {
    result = write(tmp);
  } catch (e) {
    removeQuietly(tmp);
    // an fs error of the write keeps Node's fields, with code ACDC_IO
    throw fromNodeIo(e);
  }
  commitSync(tmp, target);
  return result;
}

/** The asynchronous form of {@link writeAtomicallySync}. @internal */
export async function writeAtomically<T>(target: string, write: (tmp: string) => Promise<T>): Promise<T> {
  const tmp = temporaryPathFor(target);
  let result: T;
  try {
    result = await write(tmp);
  } catch (e) {
    removeQuietly(tmp);
    // an fs error of the write keeps Node's fields, with code ACDC_IO
    throw fromNodeIo(e);
  }
  try {
    await fs.promises.rename(tmp, target);
  } catch (e) {
    removeQuietly(tmp);
    throw rethrown(fromNodeIo(e), `${target}: could not move the finished file into place: ${(e as Error).message}`);
  }
  pending.delete(tmp);
  return result;
}

