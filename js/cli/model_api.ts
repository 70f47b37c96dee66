// The part of the models API (SparseGPR, LinearModel, loadModel) that
// `acdc fit` and `acdc predict` use.
import { LinearModel, SparseGPR, loadModel, type LinearModelFitOptions, type SparseGPRFitOptions } from '../potentials';
import type { System } from '../system';
import type { PredictedValues } from './targets';

/** A fitted model, as the CLI uses it. */
export interface CliModel {
  predict(systems: System[], options: { forces?: boolean; stress?: boolean; variance?: boolean }): Promise<PredictedValues & { variance?: Float64Array }>;
  save(path: string): Promise<void>;
  /** Species the model knows (atomic numbers). */
  readonly species: number[];
}

/** Options common to both fits. */
export type CommonFitOptions = Pick<SparseGPRFitOptions, 'targets' | 'sigmas' | 'e0'> & Pick<LinearModelFitOptions, 'hypers'>;

/** The models API. */
export function modelsApi(): {
  SparseGPR: { fit(systems: System[], options: SparseGPRFitOptions): Promise<CliModel> };
  LinearModel: { fit(systems: System[], options: LinearModelFitOptions): Promise<CliModel> };
  loadModel(path: string): Promise<CliModel>;
} {
  return { SparseGPR, LinearModel, loadModel };
}
