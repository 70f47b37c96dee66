// The limits of `acdc serve` and their defaults (no server code here, so that
// the CLI can show the defaults without loading Fastify).
import * as os from 'node:os';

/** Limits of the service; each refusal names the one it hit. */
export interface ServeLimits {
  /** Largest request body, in bytes (413 `maxBodyBytes`). */
  maxBodyBytes: number;
  /** Most atoms in one request (413 `maxAtoms`). */
  maxAtoms: number;
  /** Most values (rows × columns) in one answer (422 `maxFeatures`). */
  maxFeatures: number;
  /**
   * Memory budget of one request's computation, e.g. '2G' (422 `maxMemory`).
   * `/v1/predict` computes under the process-wide budget (`ACDC_MAX_MEMORY`),
   * which `acdc serve` sets from this value before loading anything.
   */
  maxMemory: string;
  /**
   * Requests computed at once (default: the cores). They share the native
   * pool, so more would only interleave them; fewer would leave cores idle
   * while other answers are on the wire.
   */
  concurrency: number;
  /** Requests waiting for a slot before 503. */
  queue: number;
  /**
   * Milliseconds a client may take to send a whole request, headers and body
   * (a slower one is closed with 408); the computation is not counted.
   */
  requestTimeoutMs: number;
  /** Milliseconds an idle keep-alive connection stays open. */
  idleTimeoutMs: number;
}

export const DEFAULT_LIMITS: ServeLimits = {
  maxBodyBytes: 16 << 20,
  maxAtoms: 200_000,
  maxFeatures: 50_000_000,
  maxMemory: '2G',
  concurrency: Math.max(1, os.availableParallelism?.() ?? os.cpus().length),
  queue: 16,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 5_000,
};

