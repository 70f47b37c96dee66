#!/usr/bin/env node
// The acdc command line: `acdc neighbors FILE --cutoff 5`.
import { Command, InvalidArgumentError } from 'commander';
import { NeighborList } from '../neighbors';
import { iterXyz } from '../xyz';

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
  await program.parseAsync(argv);
}

if (require.main === module) {
  main(process.argv).catch((e: unknown) => {
    process.stderr.write(`acdc: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
