import { rethrown } from '../errors';
import type { ResolvedInput } from './input';

/**
 * Batches of frames from a native XYZ reader, the next batch read while the
 * caller computes the current one. A failed read names the input as the user
 * gave it and how many frames were complete before it.
 * @internal
 */
export class ReadAhead<B extends { length: number }> {
  #pending: Promise<B>;

  constructor(
    private readonly read: () => Promise<B>,
    private readonly input: ResolvedInput,
  ) {
    this.#pending = this.#start();
  }

  #start(): Promise<B> {
    const p = this.read();
    // handled here, awaited in take(): a failed read-ahead must not become an
    // unhandled rejection while the previous batch is being computed
    p.catch(() => undefined);
    return p;
  }

  /** The next batch (empty at the end of the input); starts reading the one after it. `framesDone`: frames complete so far. */
  async take(framesDone: number): Promise<B> {
    let batch: B;
    try {
      batch = await this.#pending;
    } catch (e) {
      const { name, path } = this.input;
      const message = (e as Error).message;
      throw rethrown(e, `${message.startsWith(path) ? message.replace(path, name) : `${name}: ${message}`} (after ${framesDone} complete frames)`);
    }
    if (batch.length > 0) this.#pending = this.#start();
    return batch;
  }

  /** Waits for a pending read to settle (before the reader goes away), whatever its outcome. */
  async settle(): Promise<void> {
    await this.#pending.catch(() => undefined);
  }
}
