// `acdc predict`: energies, forces and stress of every frame of an extxyz file
// from a saved model; errors (MAE, RMSE) against the references the file
// holds; optionally the frames with the predictions, as extxyz that ASE reads
// (predictions under ASE's names `energy`, `forces`, `stress`; the file's own
// values, if any, kept as `ref_energy`, `ref_forces`, `ref_stress`).
import { coded, rethrown } from '../errors';
import * as fs from 'node:fs';
import { System } from '../system';
import { readXyz, writeXyz } from '../xyz';
import { checkWritableTarget } from '../atomic';
import { resolveInput } from '../featurize/input';
import { modelsApi, type CliModel } from './model_api';
import { errors, isFullyPeriodic, type Errors, type TargetNames } from './targets';
import type { Stages } from './stages';

export interface PredictOptions {
  out?: string;
  energy: string;
  forces: string;
  stress: string;
  json?: boolean;
  /** Memory budget (a size such as 4G); default ACDC_MAX_MEMORY, else half of the memory. */
  maxMemory?: string;
  /** The stage line (--progress). */
  stages?: Stages;
}

export interface PredictSummary {
  model: string;
  file: string;
  out: string | null;
  frames: number;
  atoms: number;
  /** Errors against the references present in the file (null entries: none present). */
  errors: Errors;
  seconds: number;
  /** Seconds of the prediction itself (energy, forces, stress), without reading or writing. */
  predictSeconds: number;
}

async function loadModel(file: string): Promise<CliModel> {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw coded('ACDC_IO', `${file}: no such model file`);
  }
  if (st.isDirectory()) throw coded('ACDC_IO', `${file} is a folder, not a model file`);
  try {
    return await modelsApi().loadModel(file);
  } catch (e) {
    const message = (e as Error).message;
    throw rethrown(e, message.includes(file) ? message : `${file}: ${message}`, 'ACDC_PARSE');
  }
}

/** The frame with predictions under ASE's names and its references renamed `ref_…`. */
function withPredictions(s: System, k: number, p: { energy: Float64Array; forces?: Float64Array[]; stress?: Float64Array[] }, names: TargetNames): System {
  const info = { ...s.info };
  const arrays = { ...s.arrays };
  const rename = (store: Record<string, unknown>, from: string | null, to: string) => {
    if (from !== null && store[from] !== undefined) {
      store[`ref_${to}`] = store[from];
      delete store[from];
    }
  };
  rename(info, names.energy, 'energy');
  rename(info, names.stress, 'stress');
  rename(arrays, names.forces, 'forces');
  for (const key of ['energy', 'stress']) delete info[key];
  delete arrays.forces;
  info.energy = p.energy[k];
  if (p.stress && p.stress[k]) info.stress = Array.from(p.stress[k]);
  if (p.forces) arrays.forces = p.forces[k];
  return new System({ types: s.types, positions: s.positions, cell: s.cell, pbc: s.pbc, info, arrays });
}

/** Predicts, compares with the references and writes `--out`. */
export async function predict(modelFile: string, file: string, o: PredictOptions): Promise<PredictSummary> {
  const t0 = process.hrtime.bigint();
  if (o.out !== undefined) checkWritableTarget(o.out, '--out');
  o.stages?.start(`loading ${modelFile}`);
  const model = await loadModel(modelFile);
  o.stages?.start(`reading ${file}`);
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
  const stress = frames.every(isFullyPeriodic);
  o.stages?.start(`predicting ${frames.length} structures`);
  const t1 = process.hrtime.bigint();
  let p;
  try {
    p = await model.predict(frames, { forces: true, stress, ...(o.maxMemory !== undefined ? { maxMemory: o.maxMemory } : {}) });
  } catch (e) {
    throw rethrown(e, `${input.name}: ${(e as Error).message}`, 'ACDC_PARSE');
  }
  const predictSeconds = Number(process.hrtime.bigint() - t1) / 1e9;
  const names: TargetNames = { energy: o.energy, forces: o.forces, stress: o.stress };
  const stats = errors(input.name, frames, p, names);
  if (o.out !== undefined) {
    o.stages?.start(`writing ${o.out}`);
    const out = frames.map((s, k) => withPredictions(s, k, p, names));
    await writeXyz(o.out, out);
  }
  return {
    model: modelFile,
    file: input.name,
    out: o.out ?? null,
    frames: frames.length,
    atoms: frames.reduce((n, s) => n + s.size, 0),
    errors: stats,
    seconds: Number(process.hrtime.bigint() - t0) / 1e9,
    predictSeconds,
  };
}
