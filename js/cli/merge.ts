// `acdc merge DIR/manifest.json --out features.npy`: the shards of a queue
// run as the single design matrix (and labels) `acdc featurize` writes.
import { mergeShards } from '../queue/merge';

export async function merge(manifest: string, o: { out: string; json?: boolean }, write: (text: string) => void): Promise<void> {
  const s = await mergeShards(manifest, o.out);
  if (o.json) write(JSON.stringify(s) + '\n');
  else write(`${s.shards} shards → ${s.out} [${s.rows} × ${s.columns}] (labels in ${s.labels})\n`);
}
