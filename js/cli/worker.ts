// `acdc worker --queue redis://HOST:PORT/DB`: computes the shards that
// `acdc featurize --queue` enqueues, until SIGINT or SIGTERM.
import { runWorker } from '../queue/worker';

export interface WorkerCli {
  queue: string;
  queueName?: string;
  concurrency: number;
  threads?: number;
  quiet?: boolean;
  root?: string[];
}

export async function worker(o: WorkerCli): Promise<void> {
  await runWorker({
    queue: o.queue,
    queueName: o.queueName,
    concurrency: o.concurrency,
    threads: o.threads,
    roots: o.root,
    log: o.quiet ? undefined : (line) => process.stderr.write(`acdc worker: ${line}\n`),
  });
}
