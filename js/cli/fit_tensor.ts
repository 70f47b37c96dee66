// `acdc fit --target dipole|polarizability`: fits a SparseTensorGPR
// (symmetry-adapted GPR on λ-SOAP) or a TensorLinearModel on a Cartesian
// tensor read from the comment line of every frame of an extxyz file, and
// saves it as one .acdc model file (written atomically). Reports the
// training errors per Cartesian component.
import { coded, rethrown } from '../errors';
import * as fs from 'node:fs';
import type { SoapHypers } from '../calculators';
import type { System } from '../system';
import { readXyz } from '../xyz';
import { checkWritableTarget } from '../atomic';
import { SparseTensorGPR, TensorLinearModel, readTensorTargets, type TensorModel, type TensorTargetName } from '../tensor_models';
import { resolveInput } from '../featurize/input';
import { Stages } from './stages';
import native from '../native';

/** The tensor targets of `acdc fit --target`. */
export const TENSOR_TARGETS = ['dipole', 'polarizability'] as const;

/**
 * λ-SOAP hyper-parameters of `acdc fit --target` when `--hypers` is not given, for molecules: cutoff 4 Å switched off
 * over its last 0.5 Å, Gaussian density of width 0.3 Å, 4 GTO radial functions (max_radial 3), l = 0…3 (λ-SOAP then
 * reaches λ = 2 through several (l₁, l₂) pairs).
 */
export const DEFAULT_TENSOR_HYPERS: SoapHypers = {
  cutoff: { radius: 4, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 3, radial: { type: 'Gto', max_radial: 3 } },
};

/** Default noise per Cartesian component of a tensor target (e·Å or Å³). */
export const DEFAULT_TENSOR_SIGMA = 0.01;

export interface TensorFitOptions {
  out: string;
  hypers?: string;
  target: TensorTargetName;
  /** Comment-line key of the tensor (default: the target's name). */
  targetKey?: string;
  model: 'gpr' | 'linear';
  sparse: number;
  sparseMethod: string;
  zeta: number;
  sigma: number;
  regularizer: number;
  /** Dipole: the per-species charge term (default true; ignored for a polarizability). */
  charges?: boolean;
  progress: boolean;
}

/** Mean absolute and root-mean-square error over every Cartesian component. */
export interface TensorErrors {
  components: number;
  mae: number;
  rmse: number;
}

export interface TensorFitSummary {
  file: string;
  out: string;
  model: 'gpr' | 'linear';
  target: TensorTargetName;
  key: string;
  frames: number;
  atoms: number;
  species: number[];
  /** Fitted partial charges per species (e), keyed by atomic number; null without the charge term. */
  charges: Record<string, number> | null;
  /** Sparse environments per centre species (GPR). */
  sparse: Record<string, number> | null;
  hypers: SoapHypers;
  training: TensorErrors;
  seconds: number;
}

/** Errors of predicted tensors against references (flat, same layout); the statistics from the core. */
export function tensorErrors(predicted: Float64Array[], reference: Float64Array[]): TensorErrors {
  const flat = (list: Float64Array[]) => {
    const out = new Float64Array(list.reduce((n, a) => n + a.length, 0));
    let at = 0;
    for (const a of list) {
      out.set(a, at);
      at += a.length;
    }
    return out;
  };
  // the references in the layout of the predictions
  const e = native.errorStatistics(flat(predicted), flat(predicted.map((p, k) => reference[k].subarray(0, p.length))));
  return e ? { components: e.count, mae: e.mae, rmse: e.rmse } : { components: 0, mae: Number.NaN, rmse: Number.NaN };
}

function readHypers(file: string | undefined): SoapHypers {
  if (file === undefined) return DEFAULT_TENSOR_HYPERS;
  let text: string;
  try {
    if (fs.statSync(file).isDirectory()) throw coded('ACDC_IO', `--hypers ${file} is a folder, not a JSON file`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw rethrown(e, `--hypers ${file}: no such file`, 'ACDC_IO');
    throw e;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw coded('ACDC_PARSE', `--hypers ${file} is not valid JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw coded('ACDC_INVALID_PARAMETER', `--hypers ${file} must hold a JSON object of λ-SOAP hyper-parameters`);
  return value as SoapHypers;
}

/** Fits a tensor model, reports training errors and writes it; the summary of what was done. */
export async function fitTensor(file: string, o: TensorFitOptions): Promise<TensorFitSummary> {
  const t0 = process.hrtime.bigint();
  if (!(TENSOR_TARGETS as readonly string[]).includes(o.target)) throw coded('ACDC_INVALID_PARAMETER', `--target ${o.target}: expected dipole or polarizability`);
  if (o.sparseMethod !== 'fps' && o.sparseMethod !== 'random') throw coded('ACDC_INVALID_PARAMETER', `--sparse-method ${o.sparseMethod}: a tensor model selects by fps or random`);
  checkWritableTarget(o.out, '--out');
  const hypers = readHypers(o.hypers);
  const key = o.targetKey ?? o.target;
  const stages = new Stages('acdc fit', o.progress);
  try {
    stages.start(`reading ${file}`);
    const input = await resolveInput(file);
    let frames: System[];
    try {
      frames = await readXyz(input.path);
    } catch (e) {
      throw rethrown(e, `${input.name}: ${(e as Error).message}`, 'ACDC_PARSE');
    } finally {
      input.cleanup();
    }
    const name = input.name;
    if (frames.length === 0) throw coded('ACDC_PARSE', `${name} holds no frames`);
    let reference: Float64Array[];
    try {
      reference = readTensorTargets(frames, o.target, key);
    } catch (e) {
      throw rethrown(e, `${name}: ${(e as Error).message.replace(/^systems\[(\d+)\]\.info\./, 'frame $1: ')}`, 'ACDC_PARSE');
    }
    const species = [...new Set(frames.flatMap((s) => [...s.types]))].sort((a, b) => a - b);
    const atomsOf = (z: number) => frames.reduce((n, s) => n + s.types.filter((t) => t === z).length, 0);
    let sparse: Record<string, number> | null = null;
    stages.start(`fitting (${o.model === 'gpr' ? 'λ-SOAP, sparse selection, kernels, solve' : 'λ-SOAP, solve'})`);
    let model: TensorModel;
    const charges = o.target === 'dipole' && o.charges !== false;
    try {
      if (o.model === 'gpr') {
        sparse = Object.fromEntries(species.map((z) => [z, Math.min(o.sparse, atomsOf(z))]));
        model = await SparseTensorGPR.fit(frames, {
          hypers,
          target: o.target,
          key,
          sparse: { count: sparse, method: o.sparseMethod as 'fps' | 'random' },
          kernel: { zeta: o.zeta },
          sigma: o.sigma,
          charges,
        });
      } else {
        model = await TensorLinearModel.fit(frames, { hypers, target: o.target, key, regularizer: o.regularizer, sigma: o.sigma, charges });
      }
    } catch (e) {
      throw rethrown(e, `${name}: ${(e as Error).message}`, 'ACDC_PARSE');
    }
    stages.start('training errors');
    const p = await model.predict(frames);
    const training = tensorErrors(p.tensors, reference);
    stages.start(`writing ${o.out}`);
    await model.save(o.out);
    stages.end();
    return {
      file: name,
      out: o.out,
      model: o.model,
      target: o.target,
      key,
      frames: frames.length,
      atoms: frames.reduce((n, s) => n + s.size, 0),
      species,
      charges: model.charges === null ? null : Object.fromEntries(model.species.map((z, k) => [z, model.charges![k]])),
      sparse,
      hypers,
      training,
      seconds: Number(process.hrtime.bigint() - t0) / 1e9,
    };
  } catch (e) {
    stages.abort();
    throw e;
  }
}

/** The text report of `acdc fit --target`. */
export function tensorFitReport(s: TensorFitSummary): string {
  const sparse = s.sparse ? `, sparse environments ${Object.entries(s.sparse).map(([z, n]) => `${n} (Z=${z})`).join(', ')}` : '';
  const charges = s.charges ? `partial charges (e): ${Object.entries(s.charges).map(([z, q]) => `${q.toFixed(4)} (Z=${z})`).join(', ')}\n` : '';
  return (
    `${s.model === 'gpr' ? 'SparseTensorGPR' : 'TensorLinearModel'} (${s.target}, key "${s.key}") fitted on ${s.frames} structures ` +
    `(${s.atoms} atoms, species ${s.species.join(',')}${sparse}) → ${s.out} in ${s.seconds.toFixed(2)} s\n` +
    `training errors over ${s.training.components} Cartesian components: MAE ${s.training.mae.toPrecision(4)}, RMSE ${s.training.rmse.toPrecision(4)}\n` +
    charges
  );
}
