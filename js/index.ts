/**
 * acdc — atom-centred density correlations for Node.js.
 * Units: lengths in Å, energies in eV.
 */
export { System, type SystemInit, type InfoValue, type JsonValue, type ArrayValue, type NumberArray } from './system';
export { maxConcurrent, abortError, type AbortSignalLike } from './schedule';
export { ERROR_CODES, isAcdcError, type AcdcError, type AcdcErrorCode } from './errors';
export { NeighborList, type Pairs, type NeighborListOptions } from './neighbors';
export { parseXyz, formatXyz, readXyz, readXyzSync, writeXyz, writeXyzSync, iterXyz } from './xyz';
export {
  Labels,
  TensorBlock,
  TensorMap,
  toArray,
  type ToArrayOptions,
  join,
  readNpy,
  readNpySync,
  writeNpy,
  writeNpySync,
  saveNpy,
  loadNpy,
  type Dtype,
  type DenseArray,
  type NpyArray,
} from './tensor';
export {
  SphericalExpansion,
  SoapPowerSpectrum,
  SoapRadialSpectrum,
  EquivariantPowerSpectrum,
  SoapBispectrum,
  calculatorRegistry,
  type CalculatorInfo,
  type EquivariantComputeOptions,
  type EquivariantPowerSpectrumOptions,
  type SoapHypers,
  type RadialSpectrumHypers,
  type CutoffHypers,
  type DensityHypers,
  type GtoRadialHypers,
  type BasisHypers,
  type ExplicitRadialHypers,
  type SplinePointHypers,
  type AlchemicalHypers,
  type Smoothing,
  type Willatt2018Scaling,
  type ComputeOptions,
  type GradientName,
  type LabelsSelection,
} from './calculators';
export {
  clebschGordan,
  wignerD,
  DensityCorrelations,
  type DensityCorrelationsOptions,
  type DensityCorrelationsComputeOptions,
} from './equivariant';
export {
  farthestPointSampling,
  farthestPointSamplingAsync,
  farthestPointSamplingWithScores,
  farthestPointSamplingWithScoresAsync,
  cur,
  curAsync,
  curWithScores,
  curWithScoresAsync,
  polynomialKernel,
  polynomialKernelAsync,
  structureKernel,
  structureKernelAsync,
  selectSamples,
  selectSamplesAsync,
  type SelectSamplesOptions,
  type BlockSampleSelection,
  type SelectionAxis,
  type FpsOptions,
  type CurOptions,
  type SelectionResult,
  type PolynomialKernelOptions,
} from './models';
export {
  gfre,
  gfreAsync,
  gfrd,
  gfrdAsync,
  lfre,
  lfreAsync,
  localPredictionRigidity,
  localPredictionRigidityAsync,
  pca,
  pcaAsync,
  type SplitOptions,
  type LfreOptions,
  type RigidityResult,
  type PcaResult,
} from './analysis';
export {
  SymmetryFunctions,
  CoulombMatrix,
  SineMatrix,
  EwaldSumMatrix,
  type SymmetryFunctionsHypers,
  type CoulombMatrixHypers,
  type SineMatrixHypers,
  type EwaldSumMatrixHypers,
  type MatrixPermutation,
} from './classic';
export {
  Potential,
  SparseGPR,
  LinearModel,
  loadModel,
  loadModelSync,
  modelFromBuffer,
  type PotentialTargets,
  type PotentialSigmas,
  type PotentialPrediction,
  type PredictOptions,
  type SparseGPRFitOptions,
  type KernelTerm,
  type Distance2bTerm,
  type SoapTerm,
  type LinearModelFitOptions,
  type PotentialFeatures,
  type E0Option,
  type FrameSigma,
  type CalibrateOptions,
  type VarianceCalibration,
} from './potentials';
export {
  TensorModel,
  SparseTensorGPR,
  TensorLinearModel,
  loadTensorModel,
  loadTensorModelSync,
  tensorModelFromBuffer,
  modelFileKind,
  readTensorTargets,
  TENSOR_MODEL_KINDS,
  type TensorTargetName,
  type SparseTensorGPRFitOptions,
  type TensorLinearModelFitOptions,
  type TensorPredictOptions,
  type TensorPrediction,
} from './tensor_models';
export { FIT_DEFAULTS, DEFAULT_FIT_HYPERS } from './fit_defaults';
export { driveIpi, ipiUnixPath, type IpiModel, type IpiPrediction, type IpiStep, type DriveIpiOptions, type DriveIpiResult } from './drivers/ipi';
export { IPI_UNITS } from './drivers/ipi_units';
export {
  writeChemiscope,
  writeChemiscopeSync,
  chemiscopeInput,
  chemiscopeMapSettings,
  type ChemiscopeOptions,
  type ChemiscopeProperty,
  type ChemiscopeMeta,
  type ChemiscopeEnvironment,
  type ChemiscopeSettings,
  type ChemiscopeInput,
} from './chemiscope';
export { kernelPca, kernelPcaAsync, type KernelPcaOptions, type KernelPcaResult } from './kernel_pca';
export { fitAlchemicalCoupling, fitRadialContraction, type AlchemicalFitOptions, type RadialContractionOptions } from './basis';
