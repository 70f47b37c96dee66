// Reading and writing the bytes of model files (`.acdc`), shared by every
// model class: the path is checked and named in every error, and a write goes
// to a temporary name that is renamed over the target only when complete.
import * as fs from 'node:fs';
import { checkWritableTarget, writeAtomically, writeAtomicallySync } from './atomic';
import { fromNodeIo, invalidParameter, rethrown } from './errors';
import { describe } from './system';

/** Writes a model file's bytes to `target` (checked first; a temporary name, then renamed). @internal */
export async function writeModelFile(target: string, bytes: Uint8Array): Promise<void> {
  checkWritableTarget(target, 'model');
  await writeAtomically(target, (tmp) => fs.promises.writeFile(tmp, bytes));
}

/** The synchronous form of {@link writeModelFile}. @internal */
export function writeModelFileSync(target: string, bytes: Uint8Array): void {
  checkWritableTarget(target, 'model');
  writeAtomicallySync(target, (tmp) => fs.writeFileSync(tmp, bytes));
}

/** The bytes of the model file at `path`; errors name the path. @internal */
export function readModelFileSync(path: string): Uint8Array {
  if (typeof path !== 'string' || path === '') throw invalidParameter(`model path must be a non-empty string, got ${describe(path)}`);
  try {
    return fs.readFileSync(path);
  } catch (e) {
    throw rethrown(fromNodeIo(e), `${path}: cannot read the model file: ${(e as Error).message}`);
  }
}

/** The asynchronous form of {@link readModelFileSync}. @internal */
export async function readModelFile(path: string): Promise<Uint8Array> {
  if (typeof path !== 'string' || path === '') throw invalidParameter(`model path must be a non-empty string, got ${describe(path)}`);
  try {
    return await fs.promises.readFile(path);
  } catch (e) {
    throw rethrown(fromNodeIo(e), `${path}: cannot read the model file: ${(e as Error).message}`);
  }
}
