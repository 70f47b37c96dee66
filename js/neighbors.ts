import { invalidParameter, outOfRange } from './errors';
import native from './native';
import { checkSignal, runQueued, type AbortSignalLike } from './schedule';
import { asSystem, describe, System, SystemInit } from './system';

/** Neighbour pairs as flat typed arrays, sorted by i, then j, then shift. */
export interface Pairs {
  /** First atom (centre) of each pair. */
  i: Uint32Array;
  /** Second atom (neighbour) of each pair. */
  j: Uint32Array;
  /** Integer cell shift S of the neighbour image, 3 per pair. */
  shifts: Int32Array;
  /** Distances in Å. */
  distances: Float64Array;
  /** Pair vectors x_j − x_i + S·H in Å, 3 per pair. */
  vectors: Float64Array;
}

/** Options of a neighbour list. */
export interface NeighborListOptions {
  /** Cutoff radius in Å; pairs closer than this are listed. */
  cutoff: number;
  /** Both (i, j, S) and (j, i, −S) when true (default), one of them otherwise. */
  full?: boolean;
}

/**
 * Periodic neighbour list (cell lists; any cell, any cutoff, mixed pbc).
 *
 * @example
 * const pairs = new NeighborList({ cutoff: 5 }).computeSync(system);
 * console.log(pairs.distances.length, 'pairs');
 */
export class NeighborList {
  /** Cutoff radius in Å. */
  readonly cutoff: number;
  /** Whether the list is full. */
  readonly full: boolean;

  constructor(options: NeighborListOptions) {
    if (options === null || typeof options !== 'object') {
      throw invalidParameter(`NeighborList expects {cutoff, full?}, got ${describe(options)}`);
    }
    for (const key of Object.keys(options)) {
      if (key !== 'cutoff' && key !== 'full') throw invalidParameter(`unknown NeighborList option "${key}" (expected cutoff, full)`);
    }
    const { cutoff, full = true } = options;
    if (typeof cutoff !== 'number' || !Number.isFinite(cutoff) || cutoff <= 0) {
      throw outOfRange(`cutoff must be a positive number of Å, got ${describe(cutoff)}`);
    }
    if (typeof full !== 'boolean') throw invalidParameter(`full must be a boolean, got ${describe(full)}`);
    this.cutoff = cutoff;
    this.full = full;
  }

  /** Computes the pairs of one system, blocking until done. */
  computeSync(system: System | SystemInit): Pairs {
    return native.computeNeighbors(asSystem(system).data(), this.cutoff, this.full);
  }

  /** Computes the pairs of one system off the event loop. */
  async compute(system: System | SystemInit, options: { signal?: AbortSignalLike } = {}): Promise<Pairs> {
    const signal = checkSignal(options.signal);
    const data = asSystem(system).data();
    return runQueued(() => native.computeNeighborsAsync(data, this.cutoff, this.full), signal);
  }
}
