// `acdc serve`: the HTTP featurization service (js/serve), listening until
// SIGINT or SIGTERM.
import { buildServer, type ServedModel } from '../serve/app';
import { loadModel } from '../potentials';
import { loadTensorModel } from '../tensor_models';
import { isTensorModelFile } from './predict_tensor';
import { DEFAULT_LIMITS } from '../serve/limits';

export interface ServeCli {
  host: string;
  port: number;
  maxBody: number;
  maxAtoms: number;
  maxFeatures: number;
  maxMemory: string;
  concurrency: number;
  queueSize: number;
  threads?: number;
  log?: boolean;
  model?: string;
}

export { DEFAULT_LIMITS };

export async function serve(o: ServeCli, write: (text: string) => void): Promise<void> {
  if (o.threads !== undefined) process.env.ACDC_NUM_THREADS = String(o.threads);
  let model: ServedModel | undefined;
  if (o.model !== undefined) {
    try {
      model = isTensorModelFile(o.model) ? await loadTensorModel(o.model) : await loadModel(o.model);
    } catch (e) {
      throw new Error(`--model ${o.model}: ${(e as Error).message.replace(`${o.model}: `, '')}`);
    }
  }
  const app = buildServer({
    maxBodyBytes: o.maxBody,
    maxAtoms: o.maxAtoms,
    maxFeatures: o.maxFeatures,
    maxMemory: o.maxMemory,
    concurrency: o.concurrency,
    queue: o.queueSize,
    logger: o.log ?? false,
    model,
  });
  let address: string;
  try {
    address = await app.listen({ host: o.host, port: o.port });
  } catch (e) {
    throw new Error(`cannot listen on ${o.host}:${o.port}: ${(e as Error).message}`);
  }
  write(`acdc serve: listening on ${address} (POST /v1/featurize${model ? `, POST /v1/predict (${model.kind} model ${o.model})` : ''}, GET /healthz, GET /metrics)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await app.close();
}
