#!/usr/bin/env node
// The acdc command line. Each command lives in its own file; this one parses
// arguments and turns every failure into one line on stderr and an exit code:
// 0 success, 1 the work failed (bad input, too large, I/O), 2 a usage error.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CALCULATORS, DEFAULT_CALCULATOR, MAX_BATCH, PER_STRUCTURE, featurize, type CalculatorName, type FeaturizeOptions, type PerStructure } from '../featurize';
import { neighbors, type NeighborsOptions } from './neighbors';
import { drive, formatDrive, inetAddress, type DriveOptions } from './drive';
// the queue and service commands load BullMQ and Fastify only when they run
import type { QueueCli } from './queue';
import type { WorkerCli } from './worker';
import type { ServeCli } from './serve';
import { DEFAULT_LIMITS } from '../serve/limits';
import { registerAnalysisCommands } from './analysis_commands';
import { alchemicalFit, formatAlchemicalFit, type AlchemicalFitCli } from './alchemical';
import { basisFit, formatBasisFit, type BasisFitCli } from './basis';
import { registerFitCommands } from './fit_commands';
import { MissingExtraError, requireExtra } from './extras';
import { applyResources, deprecated, jsonOption, longWorkOptions, maxMemoryOption, oneOf, positiveInteger, positiveNumber, runLongWork, showProgress, threadsOption, type LongWorkCli } from './options';

function version(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../../package.json') as { version: string }).version;
}



function positiveSeconds(value: string): number {
  const x = Number(value);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(value) || !(x > 0) || x > 86_400) throw new InvalidArgumentError(`expected a number of seconds, more than 0 and at most 86400, got "${value}"`);
  return x;
}

function nonNegativeInteger(value: string): number {
  const x = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(x)) throw new InvalidArgumentError(`expected a non-negative integer, got "${value}"`);
  return x;
}

function batchSize(value: string): number {
  const x = positiveInteger(value);
  if (x > MAX_BATCH) throw new InvalidArgumentError(`at most ${MAX_BATCH} structures per batch, got ${value}`);
  return x;
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

interface FeaturizeCli extends LongWorkCli {
  calculator: CalculatorName;
  hypers?: string;
  perStructure?: PerStructure;
  gradients?: ('positions' | 'strain')[];
  out?: string;
  batch: number;
  dtype?: 'float64' | 'float32';
  species?: number[];
}

function write(text: string): void {
  process.stdout.write(text);
}

async function featurizeCommand(file: string, o: FeaturizeCli & Partial<QueueCli>, cmd: Command): Promise<void> {
  if (o.queue !== undefined) {
    if (o.outDir === undefined) cmd.error('error: --queue needs --out-dir <folder> for the shards and their manifest');
    if (o.out !== undefined) cmd.error('error: --queue writes shards to --out-dir; join them with `acdc merge <dir>/manifest.json --out <file>.npy` (drop --out)');
    if (o.gradients !== undefined) cmd.error('error: --gradients needs an .mts output, which --queue does not write');
    if (o.threads !== undefined) cmd.error('error: --threads is an option of each `acdc worker`, not of the producer');
    requireExtra('queue', 'featurize --queue');
    return (require('./queue') as typeof import('./queue')).featurizeQueued(file, { ...(o as QueueCli), progress: showProgress(o) }, write);
  }
  // without --queue, --out is required (a usage error, as commander reports a missing required option)
  if (o.outDir !== undefined) cmd.error('error: --out-dir is for --queue runs; without --queue use --out <file>');
  if (o.out === undefined) cmd.error("error: required option '-o, --out <file>' not specified (or --queue <url> with --out-dir <folder>)");
  applyResources(o);
  const options: FeaturizeOptions = { ...o, out: o.out, progress: showProgress(o) };
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
    longWorkOptions(prog.command('neighbors'))
      .description('pair statistics of every frame of an extended XYZ file')
      .argument('<file>', 'extended XYZ file (- for standard input; .gz is decompressed)')
      .requiredOption('-c, --cutoff <Å>', 'cutoff radius in Å', positiveNumber)
      .option('--half', 'half list (each pair once)')
      .action(async (file: string, o: NeighborsOptions & LongWorkCli) => {
        await runLongWork('neighbors', o, (stages) => neighbors(file, { ...o, stages }, write));
      })
      .exitOverride(),
    'neighbors',
  );
  usageErrors(
    longWorkOptions(prog.command('featurize')) // --threads, --max-memory (of one batch), --json, --progress: js/cli/options.ts
      .description('features of every frame of an extended XYZ file, streamed in batches, to .npy (design matrix + .labels.json) or .mts (metatensor TensorMap)')
      .argument('<file>', 'extended XYZ file (- for standard input; .gz is decompressed)')
      .option('-o, --out <file>', 'output: .npy (2-D array, rows = structures or atoms) or .mts (labelled TensorMap, gradients included)')
      .option('--calculator <name>', `one of ${CALCULATORS.join(', ')}`, oneOf(CALCULATORS), DEFAULT_CALCULATOR)
      .option('--hypers <file.json>', 'featomic-style hyper-parameters (default: r_c 5 Å, shifted cosine 0.5 Å, σ 0.3 Å, max_radial 7, max_angular 6)')
      .option(
        '--per-structure <how>',
        'one row per structure: sum (Σ over atoms), mean (sum / number of atoms), species-mean (per centre species, sum / atoms of that species)',
        oneOf(PER_STRUCTURE),
      )
      .option('--gradients <list>', 'gradients to compute: positions, strain (comma-separated; .mts only)', gradientList)
      .option('--batch <n>', 'structures per batch: memory is bounded by one batch', batchSize, 64)
      .option('--dtype <float64|float32>', 'element type of the .npy output (default float64)', oneOf(['float64', 'float32'] as const))
      .option('--species <list>', 'atomic numbers that fix the .npy columns (default: those found in the file, by a first pass)', speciesList)
      .option('--queue <redis-url>', 'enqueue shards on a BullMQ queue at redis://HOST:PORT/DB for `acdc worker`s (needs --out-dir)')
      .option('--out-dir <folder>', 'with --queue: folder of the shards and their manifest.json (shared with the workers)')
      .option('--shard-frames <n>', 'with --queue: frames per shard', positiveInteger, 2000)
      .option('--attempts <n>', 'with --queue: attempts per shard before it is reported as failed', positiveInteger, 3)
      .option('--queue-name <name>', 'with --queue: the BullMQ queue name', 'acdc-featurize')
      .action(featurizeCommand)
      .exitOverride(),
    'featurize',
  );
  usageErrors(
    prog
      .command('drive')
      .description('serve a model\'s energies, forces and virials to an MD engine over the i-PI socket protocol (i-PI, ASE, LAMMPS fix ipi) until it sends EXIT')
      .argument('<model>', 'saved model file (.acdc)')
      .option('--unix <name>', 'unix socket name as in i-PI\'s <address>: connects to /tmp/ipi_NAME')
      .option('--inet <host:port>', 'TCP address of the server, e.g. localhost:31415', (v: string) => inetAddress(v))
      .option('--init <file>', 'structure (xyz/extxyz) the MD engine starts from: its first frame gives the species, in order (default: the model\'s single species)')
      .option('--timeout <s>', 'seconds to wait for each message from the server (default 600)', positiveNumber)
      .option('--variance', 'send the energy variance (eV²) in the extra string as {"energy_variance": …}')
      .option('--exit-on-close', 'end normally when the server closes the connection between steps (ASE\'s SocketIOCalculator sends no EXIT)')
      .option('--compute <mode>', 'how the model is called: auto (synchronously while steps take under 10 ms, else on a worker thread), async (always on a worker thread), sync (always synchronously)', oneOf(['auto', 'async', 'sync'] as const), 'auto')
      .option('--loop <loop>', "which loop speaks the protocol: native (a thread of acdc's native library owns the socket; no JavaScript per message), js (Node's socket; what --compute async/sync use), auto (native unless --compute is async or sync)", oneOf(['auto', 'native', 'js'] as const), 'auto')
      .addOption(threadsOption())
      .addOption(maxMemoryOption())
      .addOption(jsonOption())
      .action(async (model: string, o: DriveOptions & LongWorkCli, command: Command) => {
        if ((o.unix === undefined) === (o.inet === undefined)) {
          command.error(o.unix === undefined ? 'give --unix NAME or --inet HOST:PORT' : 'give either --unix or --inet, not both', { exitCode: 2 });
        }
        // no progress line: the MD engine drives the steps, for as long as it runs
        applyResources(o);
        const s = await drive(model, o);
        write(o.json ? JSON.stringify(s) + '\n' : formatDrive(s));
      })
      .exitOverride(),
    'drive',
  );
  usageErrors(
    prog
      .command('worker')
      .description('compute the shards enqueued by `acdc featurize --queue` (until SIGINT/SIGTERM)')
      .requiredOption('--queue <redis-url>', 'the queue at redis://HOST:PORT/DB')
      .option('--queue-name <name>', 'the BullMQ queue name', 'acdc-featurize')
      .option('--concurrency <n>', 'shards computed at once by this process', positiveInteger, 1)
      .addOption(threadsOption())
      .option('--root <folder>', 'a folder whose files the worker may read (inputs) and write (shards); repeatable; default: the current directory', (v: string, acc: string[] = []) => [...acc, v])
      .option('--quiet', 'no line per shard on stderr')
      .action(async (o: WorkerCli) => {
        requireExtra('queue', 'worker');
        return (require('./worker') as typeof import('./worker')).worker(o);
      })
      .exitOverride(),
    'worker',
  );
  usageErrors(
    prog
      .command('merge')
      .description('join the shards of a queue run into the .npy (+ .labels.json) a single `acdc featurize` writes')
      .argument('<manifest>', 'the manifest.json written by `acdc featurize --queue`')
      .requiredOption('-o, --out <file.npy>', 'the merged design matrix')
      .addOption(jsonOption())
      .action(async (manifest: string, o: { out: string; json?: boolean }) => (require('./merge') as typeof import('./merge')).merge(manifest, o, write))
      .exitOverride(),
    'merge',
  );
  usageErrors(
    prog
      .command('serve')
      .description('featurization over HTTP: POST /v1/featurize, POST /v1/predict (with --model), GET /healthz, GET /metrics')
      .option('--host <host>', 'address to listen on', '127.0.0.1')
      .option('--port <port>', 'TCP port (0: any free port)', (v: string) => (v === '0' ? 0 : positiveInteger(v)), 8080)
      .option('--socket <path>', 'listen on a unix domain socket instead of --host/--port (clients on this machine: no TCP/IP stack between them)')
      .option('--max-body <bytes>', 'largest request body in bytes (413)', positiveInteger, DEFAULT_LIMITS.maxBodyBytes)
      .option('--max-atoms <n>', 'most atoms per request (413)', positiveInteger, DEFAULT_LIMITS.maxAtoms)
      .option('--max-features <n>', 'most values (rows × columns) per answer (422)', positiveInteger, DEFAULT_LIMITS.maxFeatures)
      .addOption(maxMemoryOption(DEFAULT_LIMITS.maxMemory)) // one computation = one request (422 above it)
      .option('--concurrency <n>', 'requests computed at once', positiveInteger, DEFAULT_LIMITS.concurrency)
      .option('--queue-size <n>', 'requests waiting for a slot before 503', (v: string) => (v === '0' ? 0 : positiveInteger(v)), DEFAULT_LIMITS.queue)
      .addOption(threadsOption())
      .option('--model-file <model.acdc>', 'a fitted model (acdc fit / LinearModel / SparseGPR .save) for POST /v1/predict')
      // --model names a model kind in fit and scan; here it once took the file
      .addOption(new Option('--model <model.acdc>', 'deprecated: --model-file').hideHelp())
      .option('--request-timeout <s>', 'seconds a client may take to send a whole request (408); computing is not counted', positiveSeconds, DEFAULT_LIMITS.requestTimeoutMs / 1000)
      .option('--idle-timeout <s>', 'seconds an idle keep-alive connection stays open', positiveSeconds, DEFAULT_LIMITS.idleTimeoutMs / 1000)
      .option('--allow-host <name>', 'another host name clients may use in the Host header (repeatable; default: the bound address)', (v: string, acc: string[] = []) => [...acc, v])
      .option('--cors-origin <origin>', "a web origin (https://app.example.org, or '*') whose pages may call the server (repeatable; default: none)", (v: string, acc: string[] = []) => [...acc, v])
      .option('--log', 'log every request (JSON lines on stdout)')
      .action(async (o: ServeCli & { modelFile?: string }, command: Command) => {
        if (o.socket !== undefined && (command.getOptionValueSource('port') === 'cli' || command.getOptionValueSource('host') === 'cli')) {
          command.error('--socket replaces --host and --port: give one or the other', { exitCode: 2 });
        }
        if (o.socket === '') command.error('--socket <path> is empty', { exitCode: 2 });
        if (o.model !== undefined) {
          if (o.modelFile !== undefined) command.error('give the model file once, with --model-file (--model is its deprecated spelling)', { exitCode: 2 });
          deprecated('serve', '--model <file>', '--model-file <file>', '--model names a model kind in acdc fit and acdc scan');
        }
        requireExtra('serve', 'serve');
        return (require('./serve') as typeof import('./serve')).serve({ ...o, model: o.modelFile ?? o.model }, write);
      })
      .exitOverride(),
    'serve',
  );
  // map, compare, scan, rigidity (js/cli/analysis_commands.ts)
  registerAnalysisCommands(prog, usageErrors, write);
  const alchemical = usageErrors(prog.command('alchemical').description('alchemical compression of the neighbour types').exitOverride(), 'alchemical');
  usageErrors(
    longWorkOptions(alchemical.command('fit'))
      .description('fit the pseudo-element coupling U (density.alchemical) to the structures of an extended XYZ file; writes hyper-parameters JSON')
      .argument('<file>', 'extended XYZ file')
      .requiredOption('--pseudo-types <B>', 'number of pseudo-elements', positiveInteger)
      .requiredOption('-o, --out <file.json>', 'output hyper-parameters')
      .option('--hypers <file.json>', 'SOAP hyper-parameters to start from (default: those of acdc featurize)')
      .action(async (file: string, o: AlchemicalFitCli & LongWorkCli) => {
        const s = await runLongWork('alchemical fit', o, (stages) => alchemicalFit(file, { ...o, stages }));
        write(o.json ? JSON.stringify(s) + '\n' : formatAlchemicalFit(s));
      })
      .exitOverride(),
    'alchemical fit',
  );
  const basis = usageErrors(prog.command('basis').description('data-driven radial bases').exitOverride(), 'basis');
  usageErrors(
    longWorkOptions(basis.command('fit'))
      .description('fit a contracted radial basis (principal components per l of the expansion coefficients); writes Explicit hyper-parameters JSON')
      .argument('<file>', 'extended XYZ file')
      .requiredOption('--max-radial <n>', 'largest radial index of the contracted basis (n + 1 functions per l)', nonNegativeInteger)
      .requiredOption('-o, --out <file.json>', 'output hyper-parameters')
      .option('--hypers <file.json>', 'SOAP hyper-parameters of the full basis (default: those of acdc featurize)')
      .action(async (file: string, o: BasisFitCli & LongWorkCli) => {
        const s = await runLongWork('basis fit', o, (stages) => basisFit(file, { ...o, stages }));
        write(o.json ? JSON.stringify(s) + '\n' : formatBasisFit(s));
      })
      .exitOverride(),
    'basis fit',
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
    // a missing optional package (js/cli/extras.ts) is a usage error: exit 2
    const exitCode = e instanceof MissingExtraError ? 2 : 1;
    // one line: long messages (a quoted line of input) are cut
    const line = message.replace(/\s*\n\s*/g, ' ');
    process.stderr.write(`acdc: ${line.length > 2000 ? `${line.slice(0, 2000)}…` : line}\n`);
    return exitCode;
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
