#!/usr/bin/env node
// The acdc command line. Each command lives in its own file; this one parses
// arguments and turns every failure into one line on stderr and an exit code:
// 0 success, 1 the work failed (bad input, too large, I/O), 2 a usage error.
import * as os from 'node:os';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { CALCULATORS, MAX_BATCH, PER_STRUCTURE, featurize, type CalculatorName, type FeaturizeOptions, type PerStructure } from './featurize';
import { neighbors, type NeighborsOptions } from './neighbors';
import { registerFitCommands } from './fit_commands';

function version(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../../package.json') as { version: string }).version;
}

function positiveNumber(value: string): number {
  const x = Number(value);
  if (!Number.isFinite(x) || x <= 0) throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return x;
}

function positiveInteger(value: string): number {
  const x = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(x) || x <= 0) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return x;
}

function batchSize(value: string): number {
  const x = positiveInteger(value);
  if (x > MAX_BATCH) throw new InvalidArgumentError(`at most ${MAX_BATCH} structures per batch, got ${value}`);
  return x;
}

function threadCount(value: string): number {
  const x = positiveInteger(value);
  const cores = os.availableParallelism();
  if (x > cores) throw new InvalidArgumentError(`this machine runs ${cores} threads at once, got ${value} (more threads than cores only slow the work down)`);
  return x;
}

function oneOf<T extends string>(allowed: readonly T[]) {
  return (value: string): T => {
    if (!(allowed as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${allowed.join(', ')}, got "${value}"`);
    return value as T;
  };
}

function speciesList(value: string): number[] {
  const list = value.split(',').map((s) => s.trim());
  if (list.length === 0 || !list.every((s) => /^-?\d+$/.test(s) && Number.isSafeInteger(Number(s)))) {
    throw new InvalidArgumentError(`expected comma-separated atomic numbers, got "${value}"`);
  }
  return list.map(Number);
}

function gradientList(value: string): ('positions' | 'strain')[] {
  return value.split(',').map((g) => oneOf(['positions', 'strain'] as const)(g.trim()));
}

interface FeaturizeCli {
  calculator: CalculatorName;
  hypers?: string;
  perStructure?: PerStructure;
  gradients?: ('positions' | 'strain')[];
  out: string;
  threads?: number;
  batch: number;
  dtype?: 'float64' | 'float32';
  species?: number[];
  maxMemory?: string;
  json?: boolean;
  progress: boolean;
}

function write(text: string): void {
  process.stdout.write(text);
}

async function featurizeCommand(file: string, o: FeaturizeCli): Promise<void> {
  const options: FeaturizeOptions = { ...o, progress: o.progress && !o.json && process.stderr.isTTY === true };
  const s = await featurize(file, options);
  if (o.json) {
    write(JSON.stringify(s) + '\n');
    return;
  }
  const shape = s.format === 'npy' ? ` [${s.rows} × ${s.columns}] ${s.dtype} (labels in ${s.labels})` : '';
  write(
    `${s.calculator} of ${s.frames} structures (${s.atoms} atoms, species ${s.species.join(',')}) → ${s.out}${shape} ` +
      `in ${s.seconds.toFixed(2)} s (${s.structuresPerSecond.toFixed(1)} structures/s)\n`,
  );
}

/** One line on stderr for a usage error, with where to find help. */
function usageErrors(cmd: Command, name: string): Command {
  return cmd.configureOutput({
    outputError: (str, out) => {
      const message = str.trim().replace(/^error: /, '').split('\n')[0];
      out(`acdc${name ? ` ${name}` : ''}: ${message} (see acdc${name ? ` ${name}` : ''} --help)\n`);
    },
  });
}

/** The commander program: `acdc neighbors`, `acdc featurize`. */
export function program(): Command {
  const prog = usageErrors(new Command(), '');
  prog
    .name('acdc')
    .description('atom-centred density correlations: neighbour lists and SOAP features')
    .version(version(), '-V, --version', 'print the version of acdc')
    .exitOverride();
  usageErrors(
    prog
      .command('neighbors')
      .description('pair statistics of every frame of an extended XYZ file')
      .argument('<file>', 'extended XYZ file (- for standard input; .gz is decompressed)')
      .requiredOption('-c, --cutoff <Å>', 'cutoff radius in Å', positiveNumber)
      .option('--half', 'half list (each pair once)')
      .option('--json', 'print a one-line JSON summary')
      .action(async (file: string, o: NeighborsOptions) => {
        await neighbors(file, o, write);
      })
      .exitOverride(),
    'neighbors',
  );
  usageErrors(
    prog
      .command('featurize')
      .description('features of every frame of an extended XYZ file, streamed in batches, to .npy (design matrix + .labels.json) or .mts (metatensor TensorMap)')
      .argument('<file>', 'extended XYZ file (- for standard input; .gz is decompressed)')
      .requiredOption('-o, --out <file>', 'output: .npy (2-D array, rows = structures or atoms) or .mts (labelled TensorMap, gradients included)')
      .option('--calculator <name>', `one of ${CALCULATORS.join(', ')}`, oneOf(CALCULATORS), 'soap_power_spectrum')
      .option('--hypers <file.json>', 'featomic-style hyper-parameters (default: r_c 5 Å, shifted cosine 0.5 Å, σ 0.3 Å, max_radial 7, max_angular 6)')
      .option(
        '--per-structure <how>',
        'one row per structure: sum (Σ over atoms), mean (sum / number of atoms), species-mean (per centre species, sum / atoms of that species)',
        oneOf(PER_STRUCTURE),
      )
      .option('--gradients <list>', 'gradients to compute: positions, strain (comma-separated; .mts only)', gradientList)
      .option('--threads <n>', 'worker threads, at most the core count (default: ACDC_NUM_THREADS or the core count)', threadCount)
      .option('--batch <n>', 'structures per batch: memory is bounded by one batch', batchSize, 64)
      .option('--dtype <float64|float32>', 'element type of the .npy output (default float64)', oneOf(['float64', 'float32'] as const))
      .option('--species <list>', 'atomic numbers that fix the .npy columns (default: those found in the file, by a first pass)', speciesList)
      .option('--max-memory <size>', 'memory budget of one batch, e.g. 4G or 50% (default: ACDC_MAX_MEMORY, else half of the memory)')
      .option('--no-progress', 'no progress bar (it is drawn on stderr only when stderr is a terminal)')
      .option('--json', 'print a one-line JSON summary on stdout')
      .action(featurizeCommand)
      .exitOverride(),
    'featurize',
  );
  registerFitCommands(prog, usageErrors, { positiveNumber, positiveInteger, oneOf }, write);
  return prog;
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and --version end here too, with code 0; usage errors were printed
      return e.exitCode === 0 ? 0 : 2;
    }
    const message = e instanceof Error ? e.message : String(e);
    // one line: long messages (a quoted line of input) are cut
    const line = message.replace(/\s*\n\s*/g, ' ');
    process.stderr.write(`acdc: ${line.length > 2000 ? `${line.slice(0, 2000)}…` : line}\n`);
    return 1;
  }
}

if (require.main === module) {
  // A closed stdout (`acdc neighbors … | head -1`) ends the command quietly.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    process.stderr.write(`acdc: cannot write to standard output: ${e.message}\n`);
    process.exit(1);
  });
  const fatal = (e: unknown) => {
    process.stderr.write(`acdc: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}\n`);
    process.exit(1);
  };
  process.on('unhandledRejection', fatal);
  process.on('uncaughtException', fatal);
  main(process.argv).then((code) => {
    process.exitCode = code;
  }, fatal);
}
