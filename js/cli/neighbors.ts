// `acdc neighbors`: pair statistics of every frame of an extended XYZ file.
import { coded, rethrown } from '../errors';
import { NeighborList } from '../neighbors';
import { iterXyz } from '../xyz';
import { resolveInput } from '../featurize/input';
import type { Stages } from './stages';

export interface NeighborsOptions {
  cutoff: number;
  half?: boolean;
  json?: boolean;
  /** The stage line (--progress). */
  stages?: Stages;
}

export interface NeighborsSummary {
  file: string;
  cutoff: number;
  full: boolean;
  frames: number;
  atoms: number;
  pairs: number;
  neighborsPerAtom: number;
  minDistance: number | null;
}

/** Pair statistics per frame (one line each) and in total. */
export async function neighbors(file: string, options: NeighborsOptions, write: (text: string) => void): Promise<NeighborsSummary> {
  const list = new NeighborList({ cutoff: options.cutoff, full: !options.half });
  const input = await resolveInput(file);
  const total = { frames: 0, atoms: 0, pairs: 0, minDistance: Infinity };
  const rows: string[] = [];
  options.stages?.start(`pairs within ${options.cutoff} Å of every frame of ${input.name}`);
  try {
    for await (const system of iterXyz(input.path)) {
      let pairs;
      try {
        pairs = await list.compute(system);
      } catch (e) {
        throw rethrown(e, `${input.name}, frame ${total.frames}: ${(e as Error).message}`, 'ACDC_PARSE');
      }
      let min = Infinity;
      for (const d of pairs.distances) min = Math.min(min, d);
      total.frames += 1;
      total.atoms += system.size;
      total.pairs += pairs.distances.length;
      total.minDistance = Math.min(total.minDistance, min);
      const perAtom = system.size ? pairs.distances.length / system.size : 0;
      rows.push(
        `${String(total.frames - 1).padStart(6)} ${String(system.size).padStart(7)} ${String(pairs.distances.length).padStart(9)} ` +
          `${perAtom.toFixed(2).padStart(11)} ${Number.isFinite(min) ? min.toFixed(4).padStart(10) : '         -'}`,
      );
    }
  } catch (e) {
    const message = (e as Error).message;
    throw rethrown(e, message.startsWith(input.name) ? message : `${input.name}: ${message}`, 'ACDC_PARSE');
  } finally {
    input.cleanup();
  }
  if (total.frames === 0) throw coded('ACDC_PARSE', `${input.name} holds no frames`);
  options.stages?.end();
  const summary: NeighborsSummary = {
    file: input.name,
    cutoff: options.cutoff,
    full: !options.half,
    frames: total.frames,
    atoms: total.atoms,
    pairs: total.pairs,
    neighborsPerAtom: total.atoms ? total.pairs / total.atoms : 0,
    minDistance: Number.isFinite(total.minDistance) ? total.minDistance : null,
  };
  if (options.json) {
    write(JSON.stringify(summary) + '\n');
    return summary;
  }
  write(`neighbour list of ${input.name}: cutoff ${options.cutoff} Å, ${summary.full ? 'full' : 'half'} list\n`);
  write(' frame   atoms     pairs  pairs/atom  min d (Å)\n');
  write(rows.join('\n') + '\n');
  write(
    `total: ${summary.frames} frames, ${summary.atoms} atoms, ${summary.pairs} pairs, ` +
      `${summary.neighborsPerAtom.toFixed(2)} pairs/atom, min distance ${summary.minDistance?.toFixed(4) ?? '-'} Å\n`,
  );
  return summary;
}
