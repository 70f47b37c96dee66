// `acdc drive`: serves a saved model's energies, forces and virials to an MD
// engine over the i-PI socket protocol (i-PI, ASE's SocketIOCalculator,
// LAMMPS `fix ipi`, ...) until the engine sends EXIT.
import { coded, rethrown } from '../errors';
import * as fs from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { driveIpi, type IpiModel } from '../drivers/ipi';
import { readXyzSync } from '../xyz';

export interface DriveOptions {
  /** i-PI's unix socket name (the socket is /tmp/ipi_NAME). */
  unix?: string;
  /** TCP address. */
  inet?: { host: string; port: number };
  /** Structure file (xyz/extxyz) whose first frame gives the species, in the server's atom order. */
  init?: string;
  /** Seconds to wait for each message from the server. */
  timeout?: number;
  variance?: boolean;
  exitOnClose?: boolean;
  /** How the model is called (`DriveIpiOptions.compute`); default 'auto'. */
  compute?: 'auto' | 'async' | 'sync';
  /** Which loop speaks the protocol (`DriveIpiOptions.loop`); default 'auto'. */
  loop?: 'auto' | 'native' | 'js';
  json?: boolean;
}

export interface DriveSummary {
  model: string;
  address: string;
  steps: number;
  seconds: number;
  modelSeconds: number;
  protocolSeconds: number;
  /** The loop that ran: 'native' or 'js'. */
  loop: 'native' | 'js';
}

/** Parses `HOST:PORT` (IPv6 as `[::1]:PORT`); the port must be 1–65535. */
export function inetAddress(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`expected HOST:PORT with a port from 1 to 65535, got "${value}"`);
  }
  const host = m[1] ?? m[2];
  return { host: host === '' ? 'localhost' : host, port };
}

type ModelLoader = (path: string) => Promise<IpiModel> | IpiModel;

/** The model loader of this build (`loadModel` of the models module). */
function modelLoader(): ModelLoader {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const api = require('../index') as { loadModel?: ModelLoader };
  if (typeof api.loadModel !== 'function') throw coded('ACDC_INTERNAL', 'this build of acdc cannot load model files (no loadModel)');
  return api.loadModel;
}

/**
 * Loads the model and species and drives the server until EXIT. Ctrl-C
 * (SIGINT/SIGTERM) aborts cleanly.
 */
export async function drive(modelPath: string, o: DriveOptions): Promise<DriveSummary> {
  if ((o.unix === undefined) === (o.inet === undefined)) {
    throw coded('ACDC_INVALID_PARAMETER', o.unix === undefined ? 'give --unix NAME or --inet HOST:PORT' : 'give either --unix or --inet, not both');
  }
  try {
    fs.accessSync(modelPath, fs.constants.R_OK);
  } catch (e) {
    throw rethrown(e, `cannot read model file ${modelPath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'ACDC_IO');
  }
  let species: Int32Array | undefined;
  if (o.init !== undefined) {
    const frames = readXyzSync(o.init);
    if (frames.length === 0) throw coded('ACDC_PARSE', `--init ${o.init} holds no structure`);
    species = frames[0].types;
  }
  const model = await modelLoader()(modelPath);
  const controller = new AbortController();
  const stop = () => controller.abort(coded('ABORT_ERR', 'interrupted'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const address = o.unix !== undefined ? `unix:${o.unix}` : `${o.inet!.host}:${o.inet!.port}`;
    const r = await driveIpi(model, {
      ...(o.unix !== undefined ? { unix: o.unix } : { host: o.inet!.host, port: o.inet!.port }),
      ...(species !== undefined ? { species } : {}),
      ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
      variance: o.variance === true,
      exitOnClose: o.exitOnClose === true,
      ...(o.compute !== undefined ? { compute: o.compute } : {}),
      ...(o.loop !== undefined ? { loop: o.loop } : {}),
      signal: controller.signal,
    });
    return { model: modelPath, address, steps: r.steps, seconds: r.seconds, modelSeconds: r.modelSeconds, protocolSeconds: r.protocolSeconds, loop: r.loop };
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** The line `acdc drive` prints at the end. */
export function formatDrive(s: DriveSummary): string {
  return `drove ${s.steps} evaluations over ${s.address} in ${s.seconds.toFixed(2)} s (${s.modelSeconds.toFixed(2)} s in the model)\n`;
}
