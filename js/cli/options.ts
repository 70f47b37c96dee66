// The options the CLI's commands share, defined once, so that a flag means
// one thing, with one help text, on every command that has it:
//
//   --threads <n>        threads of the native pool (ACDC_NUM_THREADS)
//   --max-memory <size>  memory budget of the computation (ACDC_MAX_MEMORY)
//   --json               one JSON line on stdout instead of the text report
//   --progress / --no-progress   progress on stderr (default: on a terminal)
//
// Every command whose work is long takes all four (`longWorkOptions`), and
// its action runs through `runLongWork`, which applies --threads and
// --max-memory before any native work and draws the stage line. The
// value parsers that several commands use live here too: a bad value is a
// usage error (exit 2) named by commander, before any work starts.
import * as os from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import native from '../native';
import { Stages } from './stages';

/** Help texts of the shared options: one wording for every command. */
export const HELP = {
  threads: 'threads of the native pool, at most the core count (default: ACDC_NUM_THREADS, else the core count)',
  maxMemory: 'memory budget of one computation, e.g. 4G, 512M or 50% (of the memory); larger work is refused before it starts (default: ACDC_MAX_MEMORY, else half of the memory)',
  json: 'print a one-line JSON summary on stdout instead of the text report',
  progress: 'show progress on stderr even when it is not a terminal',
  noProgress: 'never show progress (default: shown when stderr is a terminal and --json is not given)',
} as const;

/** The options `longWorkOptions` adds, as commander hands them to the action. */
export interface LongWorkCli {
  threads?: number;
  maxMemory?: string;
  json?: boolean;
  /** true: --progress, false: --no-progress, undefined: neither. */
  progress?: boolean;
}

export function positiveNumber(value: string): number {
  const x = Number(value);
  if (value.trim() === '' || !Number.isFinite(x) || x <= 0) throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return x;
}

export function nonNegativeNumber(value: string): number {
  const x = Number(value);
  if (value.trim() === '' || !Number.isFinite(x) || x < 0) throw new InvalidArgumentError(`expected a number ≥ 0, got "${value}"`);
  return x;
}

/** A seed of a pseudo-random split: what a 32-bit generator takes. */
export function seed(value: string): number {
  const x = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isInteger(x) || x > 0xffffffff) throw new InvalidArgumentError(`expected an integer from 0 to 4294967295, got "${value}"`);
  return x;
}

export function positiveInteger(value: string): number {
  const x = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(x) || x <= 0) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return x;
}

export function oneOf<T extends string>(allowed: readonly T[]) {
  return (value: string): T => {
    if (!(allowed as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${allowed.join(', ')}, got "${value}"`);
    return value as T;
  };
}

/** --threads: more threads than cores only slow the work down, so that is refused. */
export function threadCount(value: string): number {
  const x = positiveInteger(value);
  const cores = os.availableParallelism();
  if (x > cores) throw new InvalidArgumentError(`this machine runs ${cores} threads at once, got ${value} (more threads than cores only slow the work down)`);
  return x;
}

/** --max-memory: checked by the core's own size parser, the one ACDC_MAX_MEMORY goes through. */
export function memorySize(value: string): string {
  try {
    native.memoryBudget(value);
  } catch {
    throw new InvalidArgumentError(`expected a size such as 4G, 512M, 1000000 (bytes) or 50% (of the memory), got "${value}"`);
  }
  return value;
}

export function threadsOption(): Option {
  return new Option('--threads <n>', HELP.threads).argParser(threadCount);
}

export function maxMemoryOption(defaultValue?: string): Option {
  const o = new Option('--max-memory <size>', HELP.maxMemory).argParser(memorySize);
  return defaultValue === undefined ? o : o.default(defaultValue);
}

export function jsonOption(): Option {
  return new Option('--json', HELP.json);
}

/** --threads, --max-memory, --json, --progress and --no-progress. */
export function longWorkOptions(cmd: Command): Command {
  return cmd
    .addOption(threadsOption())
    .addOption(maxMemoryOption())
    .addOption(jsonOption())
    .addOption(new Option('--progress', HELP.progress))
    .addOption(new Option('--no-progress', HELP.noProgress));
}

/** Whether to draw progress: as asked, else on a terminal unless --json. */
export function showProgress(o: LongWorkCli): boolean {
  return o.progress ?? (process.stderr.isTTY === true && !o.json);
}

/**
 * Applies --threads and --max-memory to this process. The native pool and
 * the process-wide memory budget are both read once, at the first native
 * computation, so this runs before any.
 */
export function applyResources(o: LongWorkCli): void {
  if (o.threads !== undefined) process.env.ACDC_NUM_THREADS = String(o.threads);
  if (o.maxMemory !== undefined) process.env.ACDC_MAX_MEMORY = o.maxMemory;
}

/** Runs a command's work under the shared options: resources applied, stage line drawn, cleared on failure. */
export async function runLongWork<T>(name: string, o: LongWorkCli, work: (stages: Stages) => Promise<T>): Promise<T> {
  applyResources(o);
  const stages = new Stages(`acdc ${name}`, showProgress(o));
  try {
    const result = await work(stages);
    stages.end();
    return result;
  } catch (e) {
    stages.abort();
    throw e;
  }
}

/**
 * Prints a one-line deprecation note on stderr (stdout stays the command's
 * output, so `--json` consumers are not disturbed).
 */
export function deprecated(command: string, old: string, now: string, why: string): void {
  process.stderr.write(`acdc ${command}: note: ${old} is deprecated, use ${now} (${why})\n`);
}
