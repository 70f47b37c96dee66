// The `acdc fit` and `acdc predict` commands: options, defaults and the
// report each prints (text, or one JSON line with --json).
import { coded } from '../errors';
import { Command, InvalidArgumentError } from 'commander';
import { FEATURE_KINDS, FIT_DEFAULTS, FORCE_CALIBRATION, MODEL_KINDS, SPARSE_METHODS, fit, type FitOptions, type FitSummary } from './fit';
import { parseConfigTypeSigma, parseE0 } from './fit_checks';
import { predict, type PredictOptions, type PredictSummary } from './predict';
import { formatErrors } from './targets';
import { DEFAULT_TENSOR_SIGMA, TENSOR_TARGETS, fitTensor, tensorFitReport } from './fit_tensor';
import { isTensorModelFile, predictTensor, tensorPredictReport } from './predict_tensor';
import { addTermOptions } from './terms';
import { applyResources, longWorkOptions, nonNegativeNumber, seed, runLongWork, showProgress, type LongWorkCli } from './options';

interface Parsers {
  positiveNumber(value: string): number;
  positiveInteger(value: string): number;
  oneOf<T extends string>(allowed: readonly T[]): (value: string) => T;
}


function fraction(value: string): number {
  const x = Number(value);
  if (value.trim() === '' || !Number.isFinite(x) || x < 0 || x >= 1) throw new InvalidArgumentError(`expected a fraction ≥ 0 and < 1, got "${value}"`);
  return x;
}


function e0(value: string) {
  try {
    return parseE0(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function configTypeSigma(value: string): string {
  try {
    parseConfigTypeSigma(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return value;
}

type FitCli = Omit<FitOptions, 'progress'> & LongWorkCli & { target?: (typeof TENSOR_TARGETS)[number]; targetKey?: string; sigmaTensor: number; charges: boolean };

function meV(x: number): string {
  return `${(1000 * x).toPrecision(3)} meV/atom`;
}

function fitReport(s: FitSummary): string {
  const what = [s.targets.energy && 'energy', s.targets.forces && 'forces', s.targets.stress && 'stress'].filter(Boolean).join(', ');
  const sparse = s.sparse ? `, sparse environments ${Object.entries(s.sparse).map(([z, n]) => `${n} (Z=${z})`).join(', ')}` : '';
  return (
    `${s.model === 'gpr' ? `sparse GPR (${s.terms === '2b,soap' ? 'distance_2b + SOAP' : 'SOAP'})` : 'linear model'}${s.features === 'bispectrum' ? ' on the bispectrum (ν = 3)' : ''}${s.requested === 'auto' && s.validation ? ' (chosen by --model auto: lowest validation loss)' : ''} fitted on ${s.split.training} structures (${s.atoms} atoms in the file, species ${s.species.join(',')}; ` +
    `targets ${what}${sparse}) → ${s.out} in ${s.seconds.toFixed(2)} s\n` +
    (s.split.validation.length
      ? `validation: ${s.split.validation.length} of ${s.frames} frames held out (--validation ${s.split.fraction}, --seed ${s.split.seed}); the model is fitted on the other ${s.split.training}\n`
      : `no validation split: the model is fitted on every frame and nothing checks it\n`) +
    s.notes.map((n) => `note: ${n}\n`).join('') +
    (s.frameSigmas ? `frames with their own sigmas (energy_sigma/force_sigma/virial_sigma or config_type): ${s.frameSigmas}\n` : '') +
    formatErrors('training errors', s.training) +
    (s.validation ? formatErrors('validation errors', s.validation) : '') +
    comparison(s) +
    (s.calibration
      ? `variance calibrated on the leave-one-${s.calibration.groups === 'composition' ? `composition-out errors of the ${s.calibration.structures} training frames (${s.calibration.groupCount} compositions)` : `out errors of the ${s.calibration.structures} training frames`}: s·(v + ${s.calibration.noise ? `${(1e6 * s.calibration.noise).toPrecision(3)} meV²·N` : '0'}), s = ${s.calibration.scale.toPrecision(3)}; ` +
        `their errors within 1σ ${(100 * s.calibration.within1Sigma).toFixed(0)} %, within 2σ ${(100 * s.calibration.within2Sigma).toFixed(0)} % (target 68 %, 95 %)\n` +
        (s.calibration.validation
          ? `validation frames (not used to calibrate): ${s.calibration.validation.structures} energy errors, within 1σ ${(100 * s.calibration.validation.within1Sigma).toFixed(0)} %, within 2σ ${(100 * s.calibration.validation.within2Sigma).toFixed(0)} %\n`
          : '')
      : '') +
    (s.forceCalibration
      ? `force variance calibrated on the leave-one-frame-out force errors of the training frames (${s.forceCalibration.components} components): s_F·(v + ${s.forceCalibration.noise ? `${(1e6 * s.forceCalibration.noise).toPrecision(3)} meV²/Å²` : '0'}), s_F = ${s.forceCalibration.scale.toPrecision(3)}; ` +
        `their errors within 1σ ${(100 * s.forceCalibration.within1Sigma).toFixed(0)} %, within 2σ ${(100 * s.forceCalibration.within2Sigma).toFixed(0)} %\n` +
        (s.forceCalibration.validation
          ? `validation force components (not used to calibrate): ${s.forceCalibration.validation.components}, within 1σ ${(100 * s.forceCalibration.validation.within1Sigma).toFixed(0)} %, within 2σ ${(100 * s.forceCalibration.validation.within2Sigma).toFixed(0)} %\n`
          : '')
      : '')
  );
}

function comparison(s: FitSummary): string {
  if (!s.validation) return '';
  const rows: string[] = [];
  const row = (label: string, e: { energy: { rmse: number } | null; forces: { rmse: number } | null } | null | undefined, mark: string) => {
    if (!e) return;
    rows.push(`  ${(label + mark).padEnd(31)}${(e.energy ? meV(e.energy.rmse) : '—').padStart(16)}${(e.forces ? `${e.forces.rmse.toExponential(3)} eV/Å` : '—').padStart(18)}`);
  };
  row(s.terms === '2b,soap' && s.chosen === 'gpr' ? 'sparse GPR, 2b + SOAP' : 'sparse GPR', s.candidates.gpr?.validation, s.chosen === 'gpr' ? ' (saved)' : '');
  row('sparse GPR, 2b + SOAP', s.candidates['gpr+2b']?.validation, s.chosen === 'gpr+2b' ? ' (saved)' : '');
  row('linear model', s.candidates.linear?.validation, s.model === 'linear' ? ' (saved)' : '');
  row('per-species-count baseline', s.countBaseline?.validation, '');
  return `validation RMSE:${''.padEnd(16)}${'energy'.padStart(16)}${'forces'.padStart(18)}\n${rows.join('\n')}\n`;
}

function predictReport(s: PredictSummary): string {
  return (
    `predicted ${s.frames} structures (${s.atoms} atoms) with ${s.model} in ${s.predictSeconds.toFixed(3)} s` +
    `${s.out ? ` → ${s.out}` : ''}\n` +
    formatErrors(`errors against the references in ${s.file}`, s.errors)
  );
}

/** Adds `fit` and `predict` to the program. */
export function registerFitCommands(prog: Command, usageErrors: (cmd: Command, name: string) => Command, p: Parsers, write: (text: string) => void): void {
  usageErrors(
    // --terms and --2b-*: js/cli/terms.ts; --threads, --max-memory, --json, --progress: js/cli/options.ts
    longWorkOptions(addTermOptions(prog.command('fit')))
      .description('fit a potential (sparse GPR on SOAP power spectra, GAP-style, or a linear model) to the energies, forces and stress of an extended XYZ file')
      .argument('<file>', 'training frames, extended XYZ (- for standard input; .gz is decompressed)')
      .requiredOption('-o, --out <file>', 'model file to write (.acdc)')
      .option('--model <kind>', 'auto (the sparse GPR, the sparse GPR with a distance_2b term unless --terms is given, and the linear model, fitted on the same frames; the lowest validation loss is saved), gpr (sparse Gaussian process regression) or linear (ridge regression on the power spectrum)', p.oneOf(MODEL_KINDS), 'auto')
      .option('--hypers <file.json>', 'SOAP power spectrum hyper-parameters (default: cutoff 5 Å, shifted cosine 1 Å, Gaussian σ 0.5 Å, max_radial 7, max_angular 6)')
      .option('--features <name>', 'features of the model, from the same --hypers: power_spectrum (ν = 2, the default) or bispectrum (ν = 3, body order 4; at most 30000 features per atom: use small max_radial and max_angular)', p.oneOf(FEATURE_KINDS))
      .option('--energy <key>', 'total energy in eV (comment-line key)', 'energy')
      .option('--forces <name>', 'forces in eV/Å (per-atom column; default: "forces" when every frame has it)')
      .option('--no-forces', 'do not fit forces')
      .option('--stress <key>', 'stress in eV/Å³, ASE sign, 3×3 or Voigt 6 (default: "stress" when every periodic frame has it)')
      .option('--no-stress', 'do not fit stress')
      .option('--sparse <n>', 'sparse environments per centre species (gpr)', p.positiveInteger, FIT_DEFAULTS.sparse)
      .option('--sparse-method <how>', 'how they are chosen: cur (greedy CUR), leverage (GAP\'s cur_points: leverage-score sampling), leverage-mix (the same mixed half and half with uniform sampling), pivoted-cholesky (greedy pivoted Cholesky of the kernel: largest residual variance first, deterministic), greedy-trace (the same, picking what lowers the total residual variance most), fps (farthest point sampling) or random (gpr)', p.oneOf(SPARSE_METHODS), FIT_DEFAULTS.sparseMethod)
      .option('--zeta <n>', 'kernel exponent ζ of k = δ²(x̂·x̂′)^ζ (gpr)', p.positiveInteger, FIT_DEFAULTS.zeta)
      .option('--delta <eV>', 'kernel scale δ in eV: the spread of atomic energies (gpr)', p.positiveNumber, FIT_DEFAULTS.delta)
      .option('--jitter <x>', 'added to the diagonal of K_MM, relative to δ² (gpr; GAP\'s sparse_jitter is absolute: jitter = sparse_jitter/δ², or give --sparse-jitter)', nonNegativeNumber, FIT_DEFAULTS.jitter)
      .option('--sparse-jitter <eV²>', "GAP's sparse_jitter: added to the diagonal of every term's K_MM in eV², absolute (gpr; sets the SOAP term's jitter to sparse_jitter/δ² and the 2b term's to sparse_jitter/δ_2b², instead of --jitter and --2b-jitter)", nonNegativeNumber)
      .option('--sigma-energy <eV>', 'energy noise per atom in eV (a structure of N atoms gets σ·√N)', p.positiveNumber, FIT_DEFAULTS.sigmaEnergy)
      .option('--sigma-forces <eV/Å>', 'force noise per component in eV/Å', p.positiveNumber, FIT_DEFAULTS.sigmaForces)
      .option('--sigma-stress <eV/Å³>', 'stress noise per component in eV/Å³', p.positiveNumber, FIT_DEFAULTS.sigmaStress)
      .option('--sigma-virial <eV>', 'virial noise per atom in eV, as GAP\'s default_sigma virial (a frame of N atoms and volume V gets stress noise σ·√N/V), instead of --sigma-stress', p.positiveNumber)
      .option('--config-type-sigma <groups>', 'sigmas per info config_type, GAP\'s format: type:energy:force:virial:hessian, groups joined by : or , (energy and virial per atom; hessian ignored)', configTypeSigma)
      .option('--regularizer <λ>', 'ridge parameter of the linear model', nonNegativeNumber, FIT_DEFAULTS.regularizer)
      .option('--e0 <how>', 'reference energy per species: average (mean energy per atom), fit (least squares on species counts) or Z:eV pairs, e.g. 29:-3.5,79:-3.2', e0, FIT_DEFAULTS.e0)
      .option('--validation <fraction>', 'whole frames held out to check the model, compare it with a linear model and a per-species-count baseline and check its variance calibration (0: none)', fraction, FIT_DEFAULTS.validation)
      .option('--seed <n>', 'seed of the validation split', seed, FIT_DEFAULTS.seed)
      .option('--calibrate-by <groups>', 'what the variance calibration leaves out in turn: auto (whole compositions when the training frames have at least 3 distinct species-count ratios, else single frames), frame or composition', p.oneOf(['auto', 'frame', 'composition'] as const), 'auto')
      .option('--force-calibration <when>', 'auto (calibrate the force variance of the linear model or of the sparse GPR (with or without a distance_2b term) on the leave-one-frame-out force errors of the training frames when forces are fitted: one more pass of features with gradients over them and a triangular solve per frame) or off (skip it: the model file then holds no force calibration, and the report says so)', p.oneOf(FORCE_CALIBRATION), 'auto')
      .option('--target <what>', 'fit a tensor instead of energies: dipole (3 numbers) or polarizability (9, symmetric), a SparseTensorGPR (--model gpr) or TensorLinearModel on λ-SOAP', p.oneOf(TENSOR_TARGETS))
      .option('--target-key <key>', 'comment-line key of the tensor (default: the --target name)')
      .option('--no-charges', 'dipole (--target dipole): no per-species partial charges, only the λ-SOAP atomic dipoles (needed for periodic frames)')
      .option('--sigma-tensor <value>', 'tensor noise per Cartesian component, in the target\'s unit (e·Å, Å³)', p.positiveNumber, DEFAULT_TENSOR_SIGMA)
      .action(async function (this: Command, file: string, o: FitCli) {
        if (o.sparseJitter !== undefined) {
          for (const [key, flag] of [['jitter', '--jitter'], ['2bJitter', '--2b-jitter']] as const) {
            if (this.getOptionValueSource(key) === 'cli') throw coded('ACDC_INVALID_PARAMETER', `--sparse-jitter (absolute, every term) and ${flag} (relative) both set a jitter: give one`);
          }
          if (o.target !== undefined) throw coded('ACDC_INVALID_PARAMETER', '--sparse-jitter applies to energy fits; a tensor model (--target) takes --jitter');
        }
        if (o.sigmaVirial !== undefined && this.getOptionValueSource('sigmaStress') === 'cli') {
          throw coded('ACDC_INVALID_PARAMETER', '--sigma-virial and --sigma-stress both set the stress noise: give one');
        }
        // the stage line is fit's own (js/cli/fit.ts); threads and budget apply before any native work
        applyResources(o);
        const progress = showProgress(o);
        if (o.target === undefined && this.getOptionValueSource('charges') === 'cli') throw coded('ACDC_INVALID_PARAMETER', '--no-charges applies to dipole models (--target dipole), not to energy fits');
        if (o.target !== undefined) {
          if (o.features !== undefined) throw coded('ACDC_INVALID_PARAMETER', '--features chooses the features of an energy model; a tensor model (--target) is fitted on λ-SOAP');
          const sparseMethod = this.getOptionValueSource('sparseMethod') === 'default' ? 'fps' : o.sparseMethod;
          // auto compares energy models; a tensor model is a SparseTensorGPR unless --model linear
          if (o.model === 'auto' && this.getOptionValueSource('model') === 'cli') throw coded('ACDC_INVALID_PARAMETER', '--model auto compares energy models; a tensor model (--target) is --model gpr or --model linear');
          const t = await fitTensor(file, { ...o, model: o.model === 'auto' ? 'gpr' : o.model, target: o.target, sparseMethod, sigma: o.sigmaTensor, progress });
          return write(o.json ? JSON.stringify(t) + '\n' : tensorFitReport(t));
        }
        const s = await fit(file, { ...o, progress });
        for (const w of s.warnings) process.stderr.write(`acdc fit: warning: ${w}\n`);
        write(o.json ? JSON.stringify(s) + '\n' : fitReport(s));
      })
      .exitOverride(),
    'fit',
  );
  usageErrors(
    longWorkOptions(prog.command('predict'))
      .description('energies, forces and stress of every frame of an extended XYZ file from a model written by acdc fit; errors against the references in the file')
      .argument('<model>', 'model file written by acdc fit')
      .argument('<file>', 'frames, extended XYZ (- for standard input; .gz is decompressed)')
      .option('-o, --out <file>', 'write the frames with the predictions (energy, forces, stress; the references as ref_energy, ref_forces, ref_stress) as extended XYZ')
      .option('--energy <key>', 'reference energy in eV (comment-line key)', 'energy')
      .option('--forces <name>', 'reference forces in eV/Å (per-atom column)', 'forces')
      .option('--stress <key>', 'reference stress in eV/Å³ (comment-line key)', 'stress')
      .action(async (model: string, file: string, o: PredictOptions & LongWorkCli) => {
        if (isTensorModelFile(model)) {
          const t = await runLongWork('predict', o, (stages) => predictTensor(model, file, o.out, stages));
          return write(o.json ? JSON.stringify(t) + '\n' : tensorPredictReport(t));
        }
        const s = await runLongWork('predict', o, (stages) => predict(model, file, { ...o, stages }));
        write(o.json ? JSON.stringify(s) + '\n' : predictReport(s));
      })
      .exitOverride(),
    'predict',
  );
}
