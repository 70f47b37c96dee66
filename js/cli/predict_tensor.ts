// `acdc predict` with a tensor model (written by `acdc fit --target`): the
// dipole or polarizability of every frame, errors against the references the
// file holds under the model's key, and optionally the frames with the
// predictions as extxyz comment-line keys that ASE reads (`dipole`: 3
// numbers, which ASE's reader turns into the calculator's dipole moment;
// `polarizability`: 9 numbers, row-major, in `atoms.info`; the file's own
// values, if any, kept as `ref_<key>`).
import { coded, rethrown } from '../errors';
import * as fs from 'node:fs';
import { System } from '../system';
import { readXyz, writeXyz } from '../xyz';
import { checkWritableTarget } from '../atomic';
import { TENSOR_MODEL_KINDS, loadTensorModel, modelFileKind, readTensorTargets, type TensorModel } from '../tensor_models';
import { resolveInput } from '../featurize/input';
import { tensorErrors, type TensorErrors } from './fit_tensor';
import type { Stages } from './stages';

export interface TensorPredictSummary {
  model: string;
  target: string;
  key: string;
  file: string;
  out: string | null;
  frames: number;
  atoms: number;
  /** Errors against the references in the file (null: the file has none under the model's key). */
  errors: TensorErrors | null;
  seconds: number;
  predictSeconds: number;
}

/** Predicts tensors with the tensor model in `modelFile`, compares with the references and writes `out`. */
export async function predictTensor(modelFile: string, file: string, out: string | undefined, stages?: Stages): Promise<TensorPredictSummary> {
  const t0 = process.hrtime.bigint();
  if (out !== undefined) checkWritableTarget(out, '--out');
  stages?.start(`loading ${modelFile}`);
  let model: TensorModel;
  try {
    model = await loadTensorModel(modelFile);
  } catch (e) {
    const message = (e as Error).message;
    throw rethrown(e, message.includes(modelFile) ? message : `${modelFile}: ${message}`, 'ACDC_PARSE');
  }
  const key = typeof model.fitInfo.key === 'string' ? model.fitInfo.key : model.target;
  stages?.start(`reading ${file}`);
  const input = await resolveInput(file);
  let frames: System[];
  try {
    frames = await readXyz(input.path);
  } catch (e) {
    throw rethrown(e, `${input.name}: ${(e as Error).message}`, 'ACDC_PARSE');
  } finally {
    input.cleanup();
  }
  if (frames.length === 0) throw coded('ACDC_PARSE', `${input.name} holds no frames`);
  let reference: Float64Array[] | null = null;
  if (frames.every((s) => s.info[key] !== undefined)) {
    try {
      reference = readTensorTargets(frames, model.target, key);
    } catch (e) {
      throw rethrown(e, `${input.name}: ${(e as Error).message.replace(/^systems\[(\d+)\]\.info\./, 'frame $1: ')}`, 'ACDC_PARSE');
    }
  }
  stages?.start(`predicting ${frames.length} structures`);
  const t1 = process.hrtime.bigint();
  const p = await predictOrName(model, frames, input.name);
  const predictSeconds = Number(process.hrtime.bigint() - t1) / 1e9;
  const errors = reference === null ? null : tensorErrors(p, reference);
  if (out !== undefined) {
    stages?.start(`writing ${out}`);
    await write(out, frames, p, model.target, key);
  }
  return summary(predictSeconds);

  function summary(predictSeconds: number): TensorPredictSummary {
    return {
      model: modelFile,
      target: model.target,
      key,
      file: input.name,
      out: out ?? null,
      frames: frames.length,
      atoms: frames.reduce((n, s) => n + s.size, 0),
      errors,
      seconds: Number(process.hrtime.bigint() - t0) / 1e9,
      predictSeconds,
    };
  }
}

async function predictOrName(model: TensorModel, frames: System[], name: string): Promise<Float64Array[]> {
  try {
    return (await model.predict(frames)).tensors;
  } catch (e) {
    throw rethrown(e, `${name}: ${(e as Error).message}`, 'ACDC_PARSE');
  }
}

/** The frames with the predictions under the target's name and the references renamed `ref_<key>`. */
async function write(out: string, frames: System[], p: Float64Array[], target: string, key: string): Promise<void> {
  const withPredictions = frames.map((s, k) => {
    const info = { ...s.info };
    if (info[key] !== undefined) {
      info[`ref_${key}`] = info[key];
      delete info[key];
    }
    delete info[target];
    info[target] = Array.from(p[k]);
    return new System({ types: s.types, positions: s.positions, cell: s.cell, pbc: s.pbc, info, arrays: s.arrays });
  });
  await writeXyz(out, withPredictions);
}

/** The text report of `acdc predict` with a tensor model. */
export function tensorPredictReport(s: TensorPredictSummary): string {
  const errors = s.errors
    ? `errors against the references "${s.key}" in ${s.file} over ${s.errors.components} Cartesian components: MAE ${s.errors.mae.toPrecision(4)}, RMSE ${s.errors.rmse.toPrecision(4)}\n`
    : `no references "${s.key}" in ${s.file}\n`;
  return `predicted the ${s.target} of ${s.frames} structures (${s.atoms} atoms) with ${s.model} in ${s.predictSeconds.toFixed(3)} s${s.out ? ` → ${s.out}` : ''}\n` + errors;
}

/** Whether `path` is a readable `.acdc` file holding a tensor model (false for anything else: the energy path then reports the problem). */
export function isTensorModelFile(path: string): boolean {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(path);
  } catch {
    return false;
  }
  try {
    return (TENSOR_MODEL_KINDS as readonly string[]).includes(modelFileKind(bytes, path));
  } catch {
    return false;
  }
}
