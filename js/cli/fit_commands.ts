// The `acdc fit` and `acdc predict` commands: options, defaults and the
// report each prints (text, or one JSON line with --json).
import { Command, InvalidArgumentError } from 'commander';
import { E0_METHODS, FIT_DEFAULTS, MODEL_KINDS, SPARSE_METHODS, fit, type FitOptions, type FitSummary } from './fit';
import { predict, type PredictOptions, type PredictSummary } from './predict';
import { formatErrors } from './targets';
import { addTermOptions } from './terms';

interface Parsers {
  positiveNumber(value: string): number;
  positiveInteger(value: string): number;
  oneOf<T extends string>(allowed: readonly T[]): (value: string) => T;
}

function nonNegativeNumber(value: string): number {
  const x = Number(value);
  if (value.trim() === '' || !Number.isFinite(x) || x < 0) throw new InvalidArgumentError(`expected a number ≥ 0, got "${value}"`);
  return x;
}

type FitCli = Omit<FitOptions, 'progress'> & { progress?: boolean };

function fitReport(s: FitSummary): string {
  const what = [s.targets.energy && 'energy', s.targets.forces && 'forces', s.targets.stress && 'stress'].filter(Boolean).join(', ');
  const sparse = s.sparse ? `, sparse environments ${Object.entries(s.sparse).map(([z, n]) => `${n} (Z=${z})`).join(', ')}` : '';
  return (
    `${s.model === 'gpr' ? 'sparse GPR' : 'linear model'} fitted on ${s.frames} structures (${s.atoms} atoms, species ${s.species.join(',')}; ` +
    `targets ${what}${sparse}) → ${s.out} in ${s.seconds.toFixed(2)} s\n` +
    formatErrors('training errors', s.training)
  );
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
    addTermOptions(prog.command('fit')) // --terms and --2b-*: js/cli/terms.ts
      .description('fit a potential (sparse GPR on SOAP power spectra, GAP-style, or a linear model) to the energies, forces and stress of an extended XYZ file')
      .argument('<file>', 'training frames, extended XYZ (- for standard input; .gz is decompressed)')
      .requiredOption('-o, --out <file>', 'model file to write (.acdc)')
      .option('--model <kind>', `gpr (sparse Gaussian process regression) or linear (ridge regression on the power spectrum)`, p.oneOf(MODEL_KINDS), 'gpr')
      .option('--hypers <file.json>', 'SOAP power spectrum hyper-parameters (default: cutoff 5 Å, shifted cosine 1 Å, Gaussian σ 0.5 Å, max_radial 7, max_angular 6)')
      .option('--energy <key>', 'total energy in eV (comment-line key)', 'energy')
      .option('--forces <name>', 'forces in eV/Å (per-atom column; default: "forces" when every frame has it)')
      .option('--no-forces', 'do not fit forces')
      .option('--stress <key>', 'stress in eV/Å³, ASE sign, 3×3 or Voigt 6 (default: "stress" when every periodic frame has it)')
      .option('--no-stress', 'do not fit stress')
      .option('--sparse <n>', 'sparse environments per centre species (gpr)', p.positiveInteger, FIT_DEFAULTS.sparse)
      .option('--sparse-method <how>', 'how they are chosen: cur (as GAP\'s cur_points), fps (farthest point sampling) or random (gpr)', p.oneOf(SPARSE_METHODS), FIT_DEFAULTS.sparseMethod)
      .option('--zeta <n>', 'kernel exponent ζ of k = δ²(x̂·x̂′)^ζ (gpr)', p.positiveInteger, FIT_DEFAULTS.zeta)
      .option('--delta <eV>', 'kernel scale δ in eV: the spread of atomic energies (gpr)', p.positiveNumber, FIT_DEFAULTS.delta)
      .option('--sigma-energy <eV>', 'energy noise per atom in eV (a structure of N atoms gets σ·√N)', p.positiveNumber, FIT_DEFAULTS.sigmaEnergy)
      .option('--sigma-forces <eV/Å>', 'force noise per component in eV/Å', p.positiveNumber, FIT_DEFAULTS.sigmaForces)
      .option('--sigma-stress <eV/Å³>', 'stress noise per component in eV/Å³', p.positiveNumber, FIT_DEFAULTS.sigmaStress)
      .option('--regularizer <λ>', 'ridge parameter of the linear model', nonNegativeNumber, FIT_DEFAULTS.regularizer)
      .option('--e0 <how>', 'reference energy per species: average (mean energy per atom) or fit (least squares on species counts)', p.oneOf(E0_METHODS), FIT_DEFAULTS.e0)
      .option('--progress', 'show the stage line on stderr even when it is not a terminal')
      .option('--no-progress', 'never show the stage line (default: shown when stderr is a terminal)')
      .option('--json', 'print a one-line JSON summary on stdout')
      .action(async (file: string, o: FitCli) => {
        const progress = o.progress ?? (process.stderr.isTTY === true && !o.json);
        const s = await fit(file, { ...o, progress });
        write(o.json ? JSON.stringify(s) + '\n' : fitReport(s));
      })
      .exitOverride(),
    'fit',
  );
  usageErrors(
    prog
      .command('predict')
      .description('energies, forces and stress of every frame of an extended XYZ file from a model written by acdc fit; errors against the references in the file')
      .argument('<model>', 'model file written by acdc fit')
      .argument('<file>', 'frames, extended XYZ (- for standard input; .gz is decompressed)')
      .option('-o, --out <file>', 'write the frames with the predictions (energy, forces, stress; the references as ref_energy, ref_forces, ref_stress) as extended XYZ')
      .option('--energy <key>', 'reference energy in eV (comment-line key)', 'energy')
      .option('--forces <name>', 'reference forces in eV/Å (per-atom column)', 'forces')
      .option('--stress <key>', 'reference stress in eV/Å³ (comment-line key)', 'stress')
      .option('--json', 'print a one-line JSON summary on stdout')
      .action(async (model: string, file: string, o: PredictOptions) => {
        const s = await predict(model, file, o);
        write(o.json ? JSON.stringify(s) + '\n' : predictReport(s));
      })
      .exitOverride(),
    'predict',
  );
}
