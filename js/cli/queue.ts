// `acdc featurize FILE --queue redis://… --out-dir DIR`: the featurize
// command's options, handed to the queue producer.
import { coded } from '../errors';
import { featurizeOnQueue } from '../queue/producer';
import type { CalculatorName, PerStructure } from '../featurize';

export interface QueueCli {
  queue: string;
  queueName?: string;
  outDir?: string;
  out?: string;
  shardFrames: number;
  attempts: number;
  calculator: CalculatorName;
  hypers?: string;
  perStructure?: PerStructure;
  gradients?: string[];
  threads?: number;
  batch: number;
  dtype?: 'float64' | 'float32';
  species?: number[];
  maxMemory?: string;
  json?: boolean;
  progress: boolean;
}

export async function featurizeQueued(file: string, o: QueueCli, write: (text: string) => void): Promise<void> {
  // (main.ts has refused --out, --gradients and --threads, and a missing --out-dir)
  if (o.outDir === undefined) throw coded('ACDC_INVALID_PARAMETER', '--queue needs --out-dir <folder> for the shards and their manifest');
  const s = await featurizeOnQueue(file, {
    queue: o.queue,
    queueName: o.queueName,
    outDir: o.outDir,
    shardFrames: o.shardFrames,
    attempts: o.attempts,
    calculator: o.calculator,
    hypers: o.hypers,
    perStructure: o.perStructure,
    dtype: o.dtype,
    species: o.species,
    batch: o.batch,
    maxMemory: o.maxMemory,
    progress: o.progress, // resolved by main.ts (js/cli/options.ts showProgress)
  });
  if (o.json) write(JSON.stringify(s) + '\n');
  else write(`${s.frames} structures (${s.atoms} atoms) in ${s.shards} shards → ${s.manifest} in ${s.seconds.toFixed(2)} s (join with: acdc merge ${s.manifest} --out features.npy)\n`);
}
