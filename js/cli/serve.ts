// `acdc serve`: the HTTP featurization service (js/serve), listening until
// SIGINT or SIGTERM.
import { rethrown } from '../errors';
import { buildServer, closeServer, type ServedModel } from '../serve/app';
import { loadModel } from '../potentials';
import { loadTensorModel } from '../tensor_models';
import { isTensorModelFile } from './predict_tensor';
import { DEFAULT_LIMITS } from '../serve/limits';

export interface ServeCli {
  host: string;
  port: number;
  /**
   * A unix domain socket path to listen on instead of host:port: for clients
   * on the same machine (a reverse proxy, a local pipeline), without the
   * TCP/IP stack between them (the client reads a large answer for less CPU).
   */
  socket?: string;
  maxBody: number;
  maxAtoms: number;
  maxFeatures: number;
  maxMemory: string;
  concurrency: number;
  queueSize: number;
  threads?: number;
  log?: boolean;
  model?: string;
  /** Seconds. */
  requestTimeout?: number;
  /** Seconds. */
  idleTimeout?: number;
  allowHost?: string[];
  corsOrigin?: string[];
}

export { DEFAULT_LIMITS };

export async function serve(o: ServeCli, write: (text: string) => void): Promise<void> {
  if (o.threads !== undefined) process.env.ACDC_NUM_THREADS = String(o.threads);
  // POST /v1/predict computes under the process-wide budget, which the core
  // reads once from ACDC_MAX_MEMORY: set it before any native work, so that
  // --max-memory bounds predictions as it bounds featurization
  process.env.ACDC_MAX_MEMORY = o.maxMemory;
  let model: ServedModel | undefined;
  if (o.model !== undefined) {
    try {
      model = isTensorModelFile(o.model) ? await loadTensorModel(o.model) : await loadModel(o.model);
    } catch (e) {
      throw rethrown(e, `--model-file ${o.model}: ${(e as Error).message.replace(`${o.model}: `, '')}`, 'ACDC_INVALID_PARAMETER');
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
    ...(o.requestTimeout !== undefined ? { requestTimeoutMs: Math.round(o.requestTimeout * 1000) } : {}),
    ...(o.idleTimeout !== undefined ? { idleTimeoutMs: Math.round(o.idleTimeout * 1000) } : {}),
    allowHosts: o.allowHost ?? [],
    corsOrigins: o.corsOrigin ?? [],
  });
  let address: string;
  const where = o.socket ?? `${o.host}:${o.port}`;
  try {
    address = await app.listen(o.socket !== undefined ? { path: o.socket } : { host: o.host, port: o.port });
  } catch (e) {
    const inUse = o.socket !== undefined && (e as NodeJS.ErrnoException).code === 'EADDRINUSE' ? ' (a file is there already: remove it if no server uses it)' : '';
    throw rethrown(e, `cannot listen on ${where}: ${(e as Error).message}${inUse}`, 'ACDC_IO');
  }
  if (o.socket !== undefined) address = `unix:${o.socket}`;
  write(`acdc serve: listening on ${address} (POST /v1/featurize${model ? `, POST /v1/predict (${model.kind} model ${o.model})` : ''}, GET /healthz, GET /metrics)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  // uploads in progress and idle connections are closed at once; requests
  // being computed get 10 s to finish
  await closeServer(app, 10_000);
}
