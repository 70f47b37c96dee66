// The concurrency cap of the service: at most `concurrency` requests compute
// at once, at most `queue` more wait (in order); beyond that a request is
// refused at once (503). A waiting request whose client went away leaves
// the queue.
import { coded } from '../errors';

/** Thrown by {@link Gate.enter} when the queue is full. */
export class QueueFull extends Error {
  constructor(readonly concurrency: number, readonly queue: number) {
    super(`the server is busy: ${concurrency} requests are running and ${queue} waiting (the most it queues)`);
  }
}

export class Gate {
  #running = 0;
  readonly #waiting: Array<{ go: () => void }> = [];
  constructor(
    readonly concurrency: number,
    readonly queue: number,
  ) {}

  get running(): number {
    return this.#running;
  }
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Waits for a slot; resolves with the function that frees it. */
  async enter(signal: AbortSignal): Promise<() => void> {
    if (this.#running < this.concurrency) {
      this.#running += 1;
      return this.#leave();
    }
    if (this.#waiting.length >= this.queue) throw new QueueFull(this.concurrency, this.queue);
    await new Promise<void>((resolve, reject) => {
      const entry = {
        go: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const k = this.#waiting.indexOf(entry);
        if (k >= 0) this.#waiting.splice(k, 1);
        reject(signal.reason instanceof Error ? signal.reason : coded('ABORT_ERR', 'aborted'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(entry);
    });
    return this.#leave();
  }

  #leave(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.#waiting.shift();
      if (next) next.go();
      else this.#running -= 1;
    };
  }
}
