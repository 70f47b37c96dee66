#!/usr/bin/env node
// The acdc command line: `acdc neighbors FILE --cutoff 5`.
import { Command, InvalidArgumentError } from 'commander';
import { NeighborList } from '../neighbors';
import { iterXyz } from '../xyz';
import { CALCULATORS, featurize, type CalculatorName, type FeaturizeOptions } from './featurize';

function positiveNumber(value: string): number {
  const x = Number(value);
  if (!Number.isFinite(x) || x <= 0) throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return x;
}

interface NeighborsOptions {
  cutoff: number;
  half?: boolean;
  json?: boolean;
}

/** Pair statistics of every frame of an extxyz file. */
async function neighbors(file: string, options: NeighborsOptions): Promise<void> {
  const list = new NeighborList({ cutoff: options.cutoff, full: !options.half });
  const total = { frames: 0, atoms: 0, pairs: 0, minDistance: Infinity };
  const rows: string[] = [];
  for await (const system of iterXyz(file)) {
    const pairs = await list.compute(system);
    let min = Infinity;
    for (const d of pairs.distances) min = Math.min(min, d);
    total.frames += 1;
    total.atoms += system.size;
    total.pairs += pairs.distances.length;
    total.minDistance = Math.min(total.minDistance, min);
    const perAtom = system.size ? pairs.distances.length / system.size : 0;
    rows.push(
      `${String(total.frames - 1).padStart(6)} ${String(system.size).padStart(7)} ${String(pairs.distances.length).padStart(9)} ` +
        `${perAtom.toFixed(2).padStart(11)} ${Number.isFinite(min) ? min.toFixed(4).padStart(10) : '         -'}`,
    );
  }
  const summary = {
    file,
    cutoff: options.cutoff,
    full: !options.half,
    frames: total.frames,
    atoms: total.atoms,
    pairs: total.pairs,
    neighborsPerAtom: total.atoms ? total.pairs / total.atoms : 0,
    minDistance: Number.isFinite(total.minDistance) ? total.minDistance : null,
  };
  if (options.json) {
    process.stdout.write(JSON.stringify(summary) + '\n');
    return;
  }
  process.stdout.write(`neighbour list of ${file}: cutoff ${options.cutoff} Å, ${summary.full ? 'full' : 'half'} list\n`);
  process.stdout.write(' frame   atoms     pairs  pairs/atom  min d (Å)\n');
  process.stdout.write(rows.join('\n') + '\n');
  process.stdout.write(
    `total: ${summary.frames} frames, ${summary.atoms} atoms, ${summary.pairs} pairs, ` +
      `${summary.neighborsPerAtom.toFixed(2)} pairs/atom, min distance ${summary.minDistance?.toFixed(4) ?? '-'} Å\n`,
  );
}

function positiveInteger(value: string): number {
  const x = Number(value);
  if (!Number.isInteger(x) || x <= 0) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return x;
}

function oneOf<T extends string>(allowed: readonly T[]) {
  return (value: string): T => {
    if (!(allowed as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${allowed.join(', ')}, got "${value}"`);
    return value as T;
  };
}

function speciesList(value: string): number[] {
  const list = value.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || !list.every((x) => Number.isInteger(x))) throw new InvalidArgumentError(`expected comma-separated atomic numbers, got "${value}"`);
  return list;
}

function gradientList(value: string): ('positions' | 'strain')[] {
  return value.split(',').map((g) => oneOf(['positions', 'strain'] as const)(g.trim()));
}

interface FeaturizeCli {
  calculator: CalculatorName;
  hypers?: string;
  perStructure?: 'sum' | 'mean';
  gradients?: ('positions' | 'strain')[];
  out: string;
  threads?: number;
  batch: number;
  dtype: 'float64' | 'float32';
  species?: number[];
  json?: boolean;
  progress: boolean;
}

async function featurizeCommand(file: string, o: FeaturizeCli): Promise<void> {
  const options: FeaturizeOptions = { ...o, progress: o.progress && !o.json && process.stderr.isTTY === true };
  const s = await featurize(file, options);
  if (o.json) {
    process.stdout.write(JSON.stringify(s) + '\n');
    return;
  }
  const shape = s.format === 'npy' ? ` [${s.rows} × ${s.columns}] ${s.dtype}` : '';
  process.stdout.write(
    `${s.calculator} of ${s.frames} structures (${s.atoms} atoms, species ${s.species.join(',')}) → ${s.out}${shape} ` +
      `in ${s.seconds.toFixed(2)} s (${s.structuresPerSecond.toFixed(1)} structures/s)\n`,
  );
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command();
  program.name('acdc').description('atom-centred density correlations: neighbour lists and SOAP features').showHelpAfterError();
  program
    .command('neighbors')
    .description('pair statistics of every frame of an extended XYZ file')
    .argument('<file>', 'extended XYZ file')
    .requiredOption('-c, --cutoff <Å>', 'cutoff radius in Å', positiveNumber)
    .option('--half', 'half list (each pair once)')
    .option('--json', 'print a one-line JSON summary')
    .action(neighbors);
  program
    .command('featurize')
    .description('features of every frame of an extended XYZ file, streamed in batches, to .npy (design matrix) or .mts (metatensor TensorMap)')
    .argument('<file>', 'extended XYZ file')
    .requiredOption('-o, --out <file>', 'output: .npy (2-D array, rows = structures or atoms) or .mts (labelled TensorMap, gradients included)')
    .option('--calculator <name>', `one of ${CALCULATORS.join(', ')}`, oneOf(CALCULATORS), 'soap_power_spectrum')
    .option('--hypers <file.json>', 'featomic-style hyper-parameters (default: r_c 5 Å, shifted cosine 0.5 Å, σ 0.3 Å, max_radial 7, max_angular 6)')
    .option('--per-structure <sum|mean>', 'reduce per-atom features to one row per structure', oneOf(['sum', 'mean'] as const))
    .option('--gradients <list>', 'gradients to compute: positions, strain (comma-separated; .mts only)', gradientList)
    .option('--threads <n>', 'worker threads (default: ACDC_NUM_THREADS or the core count)', positiveInteger)
    .option('--batch <n>', 'structures per batch: memory is bounded by one batch', positiveInteger, 64)
    .option('--dtype <float64|float32>', 'element type of the .npy output', oneOf(['float64', 'float32'] as const), 'float64')
    .option('--species <list>', 'atomic numbers that fix the columns (default: those found in the file, by a first pass)', speciesList)
    .option('--no-progress', 'no progress bar (it is drawn on stderr only when stderr is a terminal)')
    .option('--json', 'print a one-line JSON summary on stdout')
    .action(featurizeCommand);
  await program.parseAsync(argv);
}

if (require.main === module) {
  main(process.argv).catch((e: unknown) => {
    process.stderr.write(`acdc: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
