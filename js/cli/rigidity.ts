// `acdc rigidity`: local prediction rigidity (LPR; Chong et al., J. Chem.
// Theory Comput. 19, 8020 (2023), doi:10.1021/acs.jctc.3c00704) of every atom
// of a test set, for a model trained on a training set: how strongly the
// training data pin down that atom's contribution to the predicted energy.
//
// The atomic features are the model's: its SOAP power spectrum hypers, one
// block of columns per centre species of the model (the layout of a linear
// model's weights, E = Σ_i w_{Z_i}·x_i). The regulariser α is the model's: for
// a LinearModel its ridge parameter; for a SparseGPR the ratio (σ_E/δ)² that
// the Gaussian process puts between the data and its prior (its posterior
// precision is ∝ ΦᵀΦ + (σ_E/δ)² I); `--alpha` overrides either. The LPR
// itself is scikit-matter 0.4.1's `local_prediction_rigidity` (see
// `localPredictionRigidity`).
import { coded } from '../errors';
import * as fs from 'node:fs';
import { localPredictionRigidityAsync, pcaAsync } from '../analysis';
import type { SoapHypers } from '../calculators';
import { SoapPowerSpectrum } from '../calculators';
import { chemiscopeMapSettings, writeChemiscope, type ChemiscopeEnvironment, type ChemiscopeProperty } from '../chemiscope';
import { checkWritableTarget } from '../atomic';
import { System } from '../system';
import { writeXyz } from '../xyz';
import { loadModel, SparseGPR } from '../potentials';
import { calculatorFromFile, readSystems, soapFeatures } from './features';
import type { Stages } from './stages';

/** What `rigidity` needs of a model. */
export interface RigidityModel {
  /** Where it came from, for messages. */
  name: string;
  hypers: SoapHypers;
  /** Centre species of the model, sorted; undefined: those of the training and test structures. */
  species?: number[];
  /** Regulariser α of the LPR. */
  alpha: number;
  /** How α was chosen, for the summary. */
  alphaFrom: string;
}

export interface RigidityOptions {
  /** extxyz of the test structures with a per-atom `lpr` column. */
  out: string;
  /** Optional chemiscope file (.json / .json.gz) of the test structures with LPR as an atom property. */
  chemiscope?: string;
  /** The stage line (--progress). */
  stages?: Stages;
}

export interface RigiditySummary {
  model: string;
  train: string;
  test: string;
  out: string;
  chemiscope: string | null;
  alpha: number;
  alphaFrom: string;
  trainStructures: number;
  testStructures: number;
  testAtoms: number;
  columns: number;
  rankDiff: number;
  /** Smallest, median and largest finite LPR. */
  lpr: { min: number; median: number; max: number; infinite: number };
  seconds: number;
}

function checkSpecies(file: string, systems: System[], species: number[]): void {
  const known = new Set(species);
  systems.forEach((s, k) => {
    for (const t of s.types) {
      if (!known.has(t)) throw coded('ACDC_INVALID_SYSTEM', `${file}, frame ${k}: species ${t} is not one the model knows (${species.join(', ')})`);
    }
  });
}

/**
 * The model of `acdc rigidity` given as a hyper-parameter file (`.json`): a
 * linear model on that power spectrum with ridge parameter `alpha`.
 */
export function hypersModel(file: string, alpha: number | undefined): RigidityModel {
  if (alpha === undefined) throw coded('ACDC_INVALID_PARAMETER', `${file}: with hyper-parameters instead of a fitted model, give the regulariser with --alpha`);
  const calc = calculatorFromFile('<model>', file);
  if (!(calc instanceof SoapPowerSpectrum)) throw coded('ACDC_INVALID_PARAMETER', `${file}: LPR needs power-spectrum hyper-parameters (a basis with "type")`);
  return { name: file, hypers: calc.hypers, alpha, alphaFrom: '--alpha' };
}

/**
 * The model of `acdc rigidity` from a `.acdc` file (SparseGPR or
 * LinearModel): its hypers and species, and α = (σ_E/δ)² for a SparseGPR
 * (the weight of the prior against the energy data in its posterior), or for
 * a LinearModel λ·σ_E² (λ its ridge parameter), computed by the core
 * (`priorWeight`); `alpha` overrides.
 */
export async function fileModel(file: string, alpha: number | undefined): Promise<RigidityModel> {
  const model = await loadModel(file);
  const sigma = (model.fitInfo as { sigmas?: { energy?: number } }).sigmas?.energy;
  let a = alpha;
  let from = '--alpha';
  if (a === undefined && model.priorWeight !== undefined) {
    a = model.priorWeight;
    from = model instanceof SparseGPR ? `the model: (σ_E/δ)² = (${sigma}/${model.delta})²` : `the model: λ·σ_E² with σ_E = ${sigma}`;
  }
  if (a === undefined) throw coded('ACDC_INVALID_PARAMETER', `${file}: the ${model.kind} model does not record its energy sigma (fitInfo.sigmas.energy), so its regulariser is unknown: give --alpha`);
  return { name: file, hypers: model.hypers, species: model.species, alpha: a, alphaFrom: from };
}

/** Runs `acdc rigidity` for a model described by `model`. */
export async function rigidity(model: RigidityModel, trainFile: string, testFile: string, options: RigidityOptions): Promise<RigiditySummary> {
  const t0 = performance.now();
  if (!options.out.endsWith('.xyz')) throw coded('ACDC_INVALID_PARAMETER', `--out ${options.out}: the output is extended XYZ and must end in .xyz`);
  checkWritableTarget(options.out, '--out');
  if (options.chemiscope !== undefined) {
    if (!options.chemiscope.endsWith('.json') && !options.chemiscope.endsWith('.json.gz')) {
      throw coded('ACDC_INVALID_PARAMETER', `--chemiscope ${options.chemiscope}: a chemiscope file must end in .json or .json.gz`);
    }
    checkWritableTarget(options.chemiscope, '--chemiscope');
  }
  if (!(Number.isFinite(model.alpha) && model.alpha >= 0)) throw coded('ACDC_INVALID_PARAMETER', `${model.name}: the regulariser α = ${model.alpha} is not a number ≥ 0 (give --alpha)`);
  const calc = new SoapPowerSpectrum(model.hypers);
  options.stages?.start(`reading ${trainFile} and ${testFile}`);
  const train = await readSystems(trainFile);
  const test = await readSystems(testFile);
  const species = model.species ?? [...new Set([...train, ...test].flatMap((s) => Array.from(s.types)))].sort((a, b) => a - b);
  checkSpecies(trainFile, train, species);
  checkSpecies(testFile, test, species);
  // the LPR inverts an F × F covariance (F features per atom): refuse what cannot fit
  // (l, n_1, n_2) per neighbour pair, one block per pair and per centre species
  const perPair = new SoapPowerSpectrum(model.hypers).computeSync([new System({ types: [species[0]], positions: [0, 0, 0] })]).block(0).properties.count;
  const perAtom = (perPair * species.length * (species.length + 1)) / 2;
  const F = perAtom * species.length;
  if (32 * F * F > 2 ** 31) {
    throw coded('ACDC_MEMORY', 
      `${model.name}: ${F} features per atom (${perAtom} per centre species × ${species.length} species): the LPR needs a ${F}×${F} covariance and its pseudo-inverse, ` +
        `about ${((32 * F * F) / 2 ** 30).toFixed(1)} GiB; use hyper-parameters with fewer features (at most ${Math.floor(Math.sqrt(2 ** 31 / 32))} in all)`,
    );
  }
  options.stages?.start(`${calc.name} of ${train.length} + ${test.length} structures`);
  const ft = await soapFeatures(calc, train, species);
  const fs_ = await soapFeatures(calc, test, species);
  const perStructure = (f: typeof ft, systems: System[], file: string) =>
    systems.map((s, k) => {
      if (s.size === 0) throw coded('ACDC_INVALID_SYSTEM', `${file}, frame ${k} has no atoms`);
      return { data: f.atoms.subarray(f.offsets[k] * f.columns, f.offsets[k + 1] * f.columns), shape: [s.size, f.columns] };
    });
  options.stages?.start('local prediction rigidity');
  const { lpr, rankDiff } = await localPredictionRigidityAsync(perStructure(ft, train, trainFile), perStructure(fs_, test, testFile), model.alpha);

  const withLpr = test.map(
    (s, k) => new System({ types: s.types, positions: s.positions, cell: s.cell, pbc: s.pbc, info: s.info, arrays: { ...s.arrays, lpr: Float64Array.from(lpr[k]) } }),
  );
  const all = lpr.flatMap((a) => Array.from(a));
  const finite = all.filter(Number.isFinite).sort((a, b) => a - b);

  let chemiscopeWrite: (() => Promise<void>) | undefined;
  if (options.chemiscope !== undefined) {
    // atoms of infinite LPR (no features: nothing constrains them, nothing
    // they contribute) are left out of the environments: chemiscope holds finite numbers
    const environments: ChemiscopeEnvironment[] = [];
    const cutoff = model.hypers.cutoff.radius;
    test.forEach((s, k) => lpr[k].forEach((v, a) => Number.isFinite(v) && environments.push({ structure: k, center: a, cutoff })));
    if (environments.length === 0) throw coded('ACDC_NUMERICAL', `${testFile}: every atom has an infinite LPR: nothing to show in chemiscope`);
    const properties: Record<string, ChemiscopeProperty> = {
      log10_lpr: { target: 'atom', values: environments.map((e) => Math.log10(lpr[e.structure][e.center])), description: 'log10 of the local prediction rigidity' },
    };
    let x = 'log10_lpr';
    let y = 'log10_lpr';
    if (environments.length >= 3) {
      const X = new Float64Array(environments.length * fs_.columns);
      environments.forEach((e, r) => X.set(fs_.atoms.subarray((fs_.offsets[e.structure] + e.center) * fs_.columns, (fs_.offsets[e.structure] + e.center + 1) * fs_.columns), r * fs_.columns));
      try {
        const p = await pcaAsync({ data: X, shape: [environments.length, fs_.columns] }, 2);
        properties.pca = { target: 'atom', values: p.scores, description: 'principal components of the atomic features' };
        [x, y] = ['pca[1]', 'pca[2]'];
      } catch {
        // fewer feature directions than 2: the map shows LPR against itself
      }
    }
    const file = options.chemiscope;
    chemiscopeWrite = () =>
      writeChemiscope(file, withLpr, {
        properties,
        environments,
        settings: chemiscopeMapSettings({ x, y, color: 'log10_lpr', target: 'atom' }),
        meta: { name: testFile.split('/').pop()!, description: `local prediction rigidity of ${testFile} for ${model.name} trained on ${trainFile} (α = ${model.alpha})` },
      });
  }
  options.stages?.start(`writing ${options.out}`);
  await writeXyz(options.out, withLpr);
  if (chemiscopeWrite) {
    try {
      await chemiscopeWrite();
    } catch (e) {
      fs.rmSync(options.out, { force: true });
      throw e;
    }
  }
  return {
    model: model.name,
    train: trainFile,
    test: testFile,
    out: options.out,
    chemiscope: options.chemiscope ?? null,
    alpha: model.alpha,
    alphaFrom: model.alphaFrom,
    trainStructures: train.length,
    testStructures: test.length,
    testAtoms: all.length,
    columns: fs_.columns,
    rankDiff,
    lpr: {
      min: finite.length ? finite[0] : NaN,
      median: finite.length ? finite[Math.floor(finite.length / 2)] : NaN,
      max: finite.length ? finite[finite.length - 1] : NaN,
      infinite: all.length - finite.length,
    },
    seconds: (performance.now() - t0) / 1000,
  };
}
