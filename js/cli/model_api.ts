// The part of the models API (SparseGPR, LinearModel, loadModel) that
// `acdc fit` and `acdc predict` use.
import * as acdc from '../index';
import type { SoapHypers } from '../calculators';
import type { System } from '../system';
import type { PredictedValues } from './targets';

/** A fitted model, as the CLI uses it. */
export interface CliModel {
  predict(systems: System[], options: { forces?: boolean; stress?: boolean; variance?: boolean }): Promise<PredictedValues & { variance?: Float64Array }>;
  save(path: string): Promise<void>;
}

/** Options common to both fits. */
export interface CommonFitOptions {
  hypers: SoapHypers;
  targets: { energy: string; forces?: string; stress?: string };
  sigmas: { energy: number; forces?: number; stress?: number };
  e0?: 'average' | 'fit';
}

interface ModelsApi {
  SparseGPR?: {
    fit(
      systems: System[],
      options: CommonFitOptions & { sparse: { count: number; method: 'cur' | 'fps' | 'random' }; kernel: { zeta: number; delta: number } },
    ): Promise<CliModel>;
  };
  LinearModel?: { fit(systems: System[], options: CommonFitOptions & { regularizer: number }): Promise<CliModel> };
  loadModel?: (path: string) => Promise<CliModel>;
}

/** The models API of this build; a clear error if it lacks one. */
export function modelsApi(): Required<ModelsApi> {
  const api = acdc as unknown as ModelsApi;
  if (!api.SparseGPR || !api.LinearModel || !api.loadModel) throw new Error('this build of acdc has no models API (SparseGPR, LinearModel, loadModel)');
  return api as Required<ModelsApi>;
}
