// The analysis commands of the CLI, registered on the program by main.ts:
// `acdc map`, `acdc compare`, `acdc scan`, `acdc rigidity`. Each command's
// work lives in its own file; this one declares the options and prints.
import { Command, InvalidArgumentError, Option } from 'commander';
import { map, type MapOptions } from './map';
import { compare, formatCompare, type CompareOptions } from './compare';
import { fileModel, hypersModel, rigidity, type RigidityModel, type RigidityOptions } from './rigidity';
import { SCAN_MODELS, formatScan, scan, type ScanModel, type ScanOptions } from './scan';
import { requireExtra } from './extras';
import { deprecated, longWorkOptions, nonNegativeNumber, positiveNumber, seed, runLongWork, type LongWorkCli } from './options';

type UsageErrors = (cmd: Command, name: string) => Command;
type Write = (text: string) => void;

/** `3,4.5,6` → [3, 4.5, 6] (positive numbers). */
export function numberList(value: string): number[] {
  const list = value.split(',').map((s) => s.trim());
  const xs = list.map(Number);
  if (list.some((s) => s === '') || !xs.every((x) => Number.isFinite(x) && x > 0)) {
    throw new InvalidArgumentError(`expected comma-separated positive numbers, got "${value}"`);
  }
  return xs;
}

function integerList(value: string): number[] {
  const list = value.split(',').map((s) => s.trim());
  if (!list.every((s) => /^\d+$/.test(s))) throw new InvalidArgumentError(`expected comma-separated integers, got "${value}"`);
  return list.map(Number);
}

function scanModel(value: string): ScanModel {
  if (!(SCAN_MODELS as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${SCAN_MODELS.join(', ')}, got "${value}"`);
  return value as ScanModel;
}



/** A model for `acdc rigidity`: a fitted model (.acdc) or hyper-parameters (.json). */
async function loadRigidityModel(file: string, alpha: number | undefined): Promise<RigidityModel> {
  if (file.endsWith('.json')) return hypersModel(file, alpha);
  return fileModel(file, alpha);
}


/** What commander hands to scan's action (old spellings included). */
type ScanCli = Omit<ScanOptions, 'target' | 'regularizer'> & LongWorkCli & { targetKey: string; relativeRegularizer: number; target?: string; regularizer?: number };

export function registerAnalysisCommands(prog: Command, usageErrors: UsageErrors, write: Write): void {
  usageErrors(
    longWorkOptions(prog.command('map'))
      .description('2-D map of a data set: SOAP power spectrum → PCA → chemiscope input file (and an SVG scatter plot)')
      .argument('<file>', 'extended XYZ file (- for standard input; .gz is decompressed)')
      .requiredOption('-o, --out <file>', 'chemiscope input file: .json or .json.gz')
      .option('--hypers <file.json>', 'featomic-style SOAP hyper-parameters (default: those of acdc featurize)')
      .option('--per-atom', 'one point per atom (atomic features; chemiscope environments) instead of one per structure (mean over its atoms)')
      .option('--color <property>', 'property that colours the points: an extxyz info key (per structure) or column (per atom); default n_atoms, or atomic_number with --per-atom')
      .option('--svg <file.svg>', 'also draw the map as an SVG scatter plot')
      .action(async (file: string, o: MapOptions & LongWorkCli) => {
        if (o.svg !== undefined) requireExtra('svg', 'map --svg');
        const s = await runLongWork('map', o, (stages) => map(file, { ...o, stages }));
        if (o.json) return write(JSON.stringify(s) + '\n');
        const pct = s.explainedFraction.map((x) => `${(100 * x).toFixed(1)} %`).join(', ');
        write(
          `map of ${s.rows} ${s.target === 'atom' ? 'atoms' : 'structures'} (${s.columns} features, PC 1–2 explain ${pct} of the variance, colour ${s.color}) → ${s.out}` +
            `${s.svg ? ` and ${s.svg}` : ''} in ${s.seconds.toFixed(2)} s\n`,
        );
      })
      .exitOverride(),
    'map',
  );
  usageErrors(
    longWorkOptions(prog.command('compare'))
      .description('compare two SOAP representations of the same structures: GFRE and GFRD in both directions')
      .argument('<file>', 'extended XYZ file (- for standard input; .gz is decompressed)')
      .requiredOption('--a <hypers.json>', 'hyper-parameters of representation A (a basis without "type" means the radial spectrum)')
      .requiredOption('--b <hypers.json>', 'hyper-parameters of representation B')
      .action(async (file: string, o: CompareOptions & LongWorkCli) => {
        const s = await runLongWork('compare', o, (stages) => compare(file, { ...o, stages }));
        write(o.json ? JSON.stringify(s) + '\n' : formatCompare(s));
      })
      .exitOverride(),
    'compare',
  );
  usageErrors(
    longWorkOptions(prog.command('scan'))
      .description('learning curves (test error vs training size) for each cutoff and body order: which range and body order a target needs')
      .argument('<file>', 'extended XYZ file with the target in every comment line (- for standard input; .gz is decompressed)')
      .requiredOption('--cutoffs <list>', 'cutoff radii in Å, comma-separated, e.g. 3,4,5,6', numberList)
      .option('--body-order <list>', '2 (radial spectrum), 3 (power spectrum), comma-separated', integerList, [2, 3])
      .option('--model <kind>', 'linear (ridge regression on the per-structure mean features) or gpr (Gaussian process mean, kernel (x̂·x̂\')²)', scanModel, 'linear')
      .option('--target-key <key>', 'comment-line key of the per-structure property to fit (per atom)', 'energy')
      .option('--relative-regularizer <λ>', 'ridge / noise regulariser relative to the mean kernel diagonal (acdc fit\'s --regularizer is absolute)', positiveNumber, 1e-6)
      // the old spellings: --regularizer is absolute in acdc fit, --target a tensor kind there
      .addOption(new Option('--regularizer <λ>', 'deprecated: --relative-regularizer').argParser(positiveNumber).hideHelp())
      .addOption(new Option('--target <key>', 'deprecated: --target-key').hideHelp())
      .option('--seed <n>', 'seed of the shuffle that splits test and training structures', seed, 0)
      .option('--svg <file.svg>', 'also plot the curves as SVG')
      .action(async function (this: Command, file: string, o: ScanCli) {
        if (o.regularizer !== undefined) {
          if (this.getOptionValueSource('relativeRegularizer') === 'cli') this.error('error: give --relative-regularizer once (--regularizer is its deprecated spelling in scan)', { exitCode: 2 });
          deprecated('scan', '--regularizer', '--relative-regularizer', 'scan\'s value is relative to the mean kernel diagonal, acdc fit\'s --regularizer is absolute');
        }
        if (o.target !== undefined) {
          if (this.getOptionValueSource('targetKey') === 'cli') this.error('error: give --target-key once (--target is its deprecated spelling in scan)', { exitCode: 2 });
          deprecated('scan', '--target', '--target-key', 'acdc fit\'s --target names a tensor kind');
        }
        if (o.svg !== undefined) requireExtra('svg', 'scan --svg');
        const options: ScanOptions = { ...o, target: o.target ?? o.targetKey, regularizer: o.regularizer ?? o.relativeRegularizer };
        const s = await runLongWork('scan', o, (stages) => scan(file, { ...options, stages }));
        write(o.json ? JSON.stringify(s) + '\n' : formatScan(s));
      })
      .exitOverride(),
    'scan',
  );
  usageErrors(
    longWorkOptions(prog.command('rigidity'))
      .description('local prediction rigidity of every atom of a test set for a model trained on a training set: extxyz with a per-atom lpr column (and a chemiscope file)')
      .argument('<model>', 'the model: a fitted model file (SparseGPR or LinearModel, .acdc), or the hyper-parameters of a linear model on the SOAP power spectrum (.json, with --alpha)')
      .argument('<train>', 'extended XYZ file of the training structures')
      .argument('<test>', 'extended XYZ file of the structures whose atoms get an LPR')
      .requiredOption('-o, --out <file.xyz>', 'the test structures with a per-atom column lpr')
      .option('--chemiscope <file>', 'also a chemiscope file (.json or .json.gz) with log10 LPR as an atom property')
      .option('--alpha <α>', "the regulariser (default: the model's)", nonNegativeNumber)
      .action(async (model: string, train: string, test: string, o: RigidityOptions & LongWorkCli & { alpha?: number }) => {
        const s = await runLongWork('rigidity', o, async (stages) => {
          stages.start(`loading ${model}`);
          const m: RigidityModel = await loadRigidityModel(model, o.alpha);
          return rigidity(m, train, test, { ...o, stages });
        });
        if (o.json) return write(JSON.stringify(s) + '\n');
        write(
          `LPR of ${s.testAtoms} atoms of ${s.test} (${s.testStructures} structures; α = ${s.alpha} from ${s.alphaFrom}, ${s.columns} features, rank deficit ${s.rankDiff}): ` +
            `min ${s.lpr.min.toPrecision(4)}, median ${s.lpr.median.toPrecision(4)}, max ${s.lpr.max.toPrecision(4)}${s.lpr.infinite ? `, ${s.lpr.infinite} infinite` : ''} → ${s.out}${s.chemiscope ? ` and ${s.chemiscope}` : ''}\n`,
        );
      })
      .exitOverride(),
    'rigidity',
  );
}
