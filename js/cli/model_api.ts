// The part of the models API (SparseGPR, LinearModel, loadModel) that
// `acdc fit` and `acdc predict` use.
import { LinearModel, SparseGPR, loadModel, type CalibrateOptions, type ForceCalibrateOptions, type ForceVarianceCalibration, type LeaveOneOut, type LeaveOneOutOptions, type LinearModelFitOptions, type SparseGPRFitOptions, type VarianceCalibration } from '../potentials';
import type { System } from '../system';
import type { PredictedValues } from './targets';

/** A fitted model, as the CLI uses it. */
export interface CliModel {
  predict(systems: System[], options: { forces?: boolean; stress?: boolean; variance?: boolean }): Promise<PredictedValues & { variance?: Float64Array }>;
  save(path: string): Promise<void>;
  /** Fits the variance scale on held-out systems (kept in the saved file). */
  calibrateVariance(systems: System[], options?: CalibrateOptions): Promise<VarianceCalibration>;
  /** Fits the variance scale on the closed-form leave-one-out errors of its training systems (kept in the saved file). */
  calibrateVarianceLeaveOneOut(systems: System[], options?: LeaveOneOutOptions): Promise<VarianceCalibration>;
  /** Calibrates the force variance on the closed-form leave-one-frame-out force errors of its training systems (linear model). */
  calibrateForceVarianceLeaveOneOut(systems: System[], options?: ForceCalibrateOptions): Promise<ForceVarianceCalibration>;
  /** The force variance's coverage (apply: false) or one more factor on held-out systems (linear model). */
  calibrateForceVariance(systems: System[], options?: ForceCalibrateOptions): Promise<ForceVarianceCalibration>;
  /** The closed-form leave-out errors and variances of its training systems (no calibration). */
  leaveOneOut(systems: System[], options?: LeaveOneOutOptions): Promise<LeaveOneOut>;
  /** Species the model knows (atomic numbers). */
  readonly species: number[];
  /** Length of one atom's feature vector. */
  readonly featureCount: number;
}

/** Options common to both fits. */
export type CommonFitOptions = Pick<SparseGPRFitOptions, 'targets' | 'sigmas' | 'frameSigmas' | 'e0'> & Pick<LinearModelFitOptions, 'hypers' | 'features'>;

/** The models API. */
export function modelsApi(): {
  SparseGPR: { fit(systems: System[], options: SparseGPRFitOptions): Promise<CliModel> };
  LinearModel: { fit(systems: System[], options: LinearModelFitOptions): Promise<CliModel> };
  loadModel(path: string): Promise<CliModel>;
} {
  return { SparseGPR, LinearModel, loadModel };
}
