// `acdc fit`: fits a sparse GPR (GAP-style) or linear potential on the
// energies, forces and stress of an extxyz file and saves it as one .acdc
// model file, written atomically. Prints a fit report: training errors,
// sparse environments, time.
import * as fs from 'node:fs';
import type { SoapHypers } from '../calculators';
import type { System } from '../system';
import { readXyz } from '../xyz';
import { checkWritableTarget } from '../atomic';
import { resolveInput } from './input';
import { modelsApi, type CliModel, type CommonFitOptions } from './model_api';
import { Stages } from './stages';
import { checkTermOptions, withTerms, type TermCliOptions } from './terms';
import { errors, isFullyPeriodic, trainingTargets, type Errors, type TargetNames } from './targets';

/**
 * Power spectrum hyper-parameters of `acdc fit` when `--hypers` is not given,
 * a common setting for metals (close to GAP's `soap cutoff=5 n_max=8
 * l_max=6 atom_sigma=0.5 cutoff_transition_width=1`): cutoff 5 Å switched
 * off smoothly over its last 1 Å (shifted cosine), Gaussian atomic density
 * of width σ = 0.5 Å, 8 GTO radial functions (max_radial 7: indices 0…7)
 * and angular channels l = 0…6.
 */
export const DEFAULT_FIT_HYPERS: SoapHypers = {
  cutoff: { radius: 5, smoothing: { type: 'ShiftedCosine', width: 1 } },
  density: { type: 'Gaussian', width: 0.5 },
  basis: { type: 'TensorProduct', max_angular: 6, radial: { type: 'Gto', max_radial: 7 } },
};

/** Defaults of the fit options (units in the option help). */
export const FIT_DEFAULTS = {
  sparse: 300,
  // CUR, as GAP's cur_points (greedy CUR by power iteration: ~1.5× the
  // selection cost of FPS on 2000 atoms, bench/README.md)
  sparseMethod: 'cur' as const,
  zeta: 4,
  delta: 0.2,
  sigmaEnergy: 0.002,
  sigmaForces: 0.05,
  sigmaStress: 0.001,
  regularizer: 1e-6,
  e0: 'average' as const,
};

export const MODEL_KINDS = ['gpr', 'linear'] as const;
export const SPARSE_METHODS = ['cur', 'fps', 'random'] as const;
export const E0_METHODS = ['average', 'fit'] as const;

export interface FitOptions extends TermCliOptions {
  out: string;
  hypers?: string;
  energy: string;
  /** Forces column; false: --no-forces; undefined: "forces" when every frame has it. */
  forces?: string | false;
  /** Stress key; false: --no-stress; undefined: "stress" when every periodic frame has it. */
  stress?: string | false;
  model: (typeof MODEL_KINDS)[number];
  sparse: number;
  sparseMethod: (typeof SPARSE_METHODS)[number];
  zeta: number;
  delta: number;
  sigmaEnergy: number;
  sigmaForces: number;
  sigmaStress: number;
  regularizer: number;
  e0: (typeof E0_METHODS)[number];
  progress: boolean;
  json?: boolean;
}

export interface FitSummary {
  file: string;
  out: string;
  model: 'gpr' | 'linear';
  frames: number;
  atoms: number;
  species: number[];
  targets: TargetNames;
  /** Sparse environments per centre species (GPR): min(--sparse, atoms of that species). */
  sparse: Record<string, number> | null;
  hypers: SoapHypers;
  /** Training errors of the saved model on the training frames. */
  training: Errors;
  seconds: number;
}

/** Reads and checks `--hypers`: a JSON object of power spectrum hyper-parameters. */
function readHypers(file: string | undefined): SoapHypers {
  if (file === undefined) return DEFAULT_FIT_HYPERS;
  let text: string;
  try {
    if (fs.statSync(file).isDirectory()) throw new Error(`--hypers ${file} is a folder, not a JSON file`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`--hypers ${file}: no such file`);
    throw e;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`--hypers ${file} is not valid JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`--hypers ${file} must hold a JSON object of SOAP hyper-parameters`);
  return value as SoapHypers;
}

async function readFrames(file: string): Promise<{ frames: System[]; name: string }> {
  const input = await resolveInput(file);
  try {
    return { frames: await readXyz(input.path), name: input.name };
  } catch (e) {
    throw new Error(`${input.name}: ${(e as Error).message}`);
  } finally {
    input.cleanup();
  }
}

/** Fits, reports training errors and writes the model; the summary of what was done. */
export async function fit(file: string, o: FitOptions): Promise<FitSummary> {
  const t0 = process.hrtime.bigint();
  checkWritableTarget(o.out, '--out');
  checkTermOptions(o, o.model);
  const hypers = readHypers(o.hypers);
  const stages = new Stages('acdc fit', o.progress);
  try {
    stages.start(`reading ${file}`);
    const { frames, name } = await readFrames(file);
    const targets = trainingTargets(name, frames, { energy: o.energy, forces: o.forces, stress: o.stress });
    const species = [...new Set(frames.flatMap((s) => [...s.types]))].sort((a, b) => a - b);
    const common: CommonFitOptions = {
      hypers,
      targets: { energy: targets.energy, ...(targets.forces ? { forces: targets.forces } : {}), ...(targets.stress ? { stress: targets.stress } : {}) },
      sigmas: {
        energy: o.sigmaEnergy,
        ...(targets.forces ? { forces: o.sigmaForces } : {}),
        ...(targets.stress ? { stress: o.sigmaStress } : {}),
      },
      e0: o.e0,
    };
    const api = modelsApi();
    stages.start(`fitting (${o.model === 'gpr' ? 'descriptors, sparse selection, kernels, solve' : 'descriptors, solve'})`);
    let model: CliModel;
    try {
      model =
        o.model === 'gpr'
          ? await api.SparseGPR.fit(frames, withTerms(o, { ...common, sparse: { count: o.sparse, method: o.sparseMethod }, kernel: { zeta: o.zeta, delta: o.delta } }))
          : await api.LinearModel.fit(frames, { ...common, regularizer: o.regularizer });
    } catch (e) {
      throw new Error(`${name}: ${(e as Error).message}`);
    }
    stages.start('training errors');
    const stress = targets.stress !== null && frames.every(isFullyPeriodic);
    const p = await model.predict(frames, { forces: targets.forces !== null, stress });
    const training = errors(name, frames, p, targets);
    stages.start(`writing ${o.out}`);
    await model.save(o.out); // written to a temporary name, then renamed
    stages.end();
    let sparse: Record<string, number> | null = null;
    if (o.model === 'gpr') {
      sparse = {};
      for (const z of species) sparse[z] = Math.min(o.sparse, frames.reduce((n, s) => n + s.types.filter((t) => t === z).length, 0));
    }
    return {
      file: name,
      out: o.out,
      model: o.model,
      frames: frames.length,
      atoms: frames.reduce((n, s) => n + s.size, 0),
      species,
      targets,
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
