// One meaning per flag: --threads, --max-memory, --json and --progress are
// defined once (js/cli/options.ts) and every command whose work is long takes
// them, with the same help text. End to end, on each command: the flags work
// (the budget refuses work above it, --threads sizes the native pool, --json
// prints one JSON line, --progress the stage lines), a bad value is a usage
// error (exit 2, one line `acdc <command>: …`) and no run that fails leaves an
// output file. And the renamed flags: `serve --model-file` (was --model, a
// model kind elsewhere), `scan --relative-regularizer` and `scan --target-key`
// (were --regularizer, absolute in fit, and --target, a tensor kind in fit).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from './spawn_helpers';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { HELP } = require(path.join(root, 'dist', 'cli', 'options.js')) as { HELP: Record<string, string> };
const molecules = path.join(root, 'examples', 'molecules.xyz');
const cuTrain = path.join(root, 'examples', 'emt-cu-train.xyz');
const cuTest = path.join(root, 'examples', 'emt-cu-test.xyz');

const inputs = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-cli-options-'));
const small = path.join(inputs, 'small.json');
const smaller = path.join(inputs, 'smaller.json');
const model = path.join(inputs, 'linear.acdc');
const soap = (max: number) => ({
  cutoff: { radius: 3, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.4 },
  basis: { type: 'TensorProduct', max_angular: max, radial: { type: 'Gto', max_radial: max } },
});
fs.writeFileSync(small, JSON.stringify(soap(2)));
fs.writeFileSync(smaller, JSON.stringify(soap(1)));

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function acdc(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd, env: { ...process.env, ACDC_NUM_THREADS: '2', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** The long commands, each with arguments that make it do its work into the current folder. */
const COMMANDS: Record<string, string[]> = {
  featurize: ['featurize', molecules, '--out', 'x.npy', '--hypers', small],
  neighbors: ['neighbors', molecules, '--cutoff', '3'],
  fit: ['fit', cuTrain, '--out', 'm.acdc', '--model', 'linear', '--hypers', small, '--validation', '0'],
  predict: ['predict', model, cuTest, '--out', 'p.xyz'],
  map: ['map', molecules, '--out', 'map.json', '--hypers', small],
  compare: ['compare', molecules, '--a', small, '--b', smaller],
  scan: ['scan', cuTrain, '--cutoffs', '3', '--body-order', '2'],
  rigidity: ['rigidity', small, cuTrain, cuTest, '--alpha', '1e-3', '--out', 'lpr.xyz'],
  'basis fit': ['basis', 'fit', molecules, '--max-radial', '1', '--hypers', small, '--out', 'b.json'],
  'alchemical fit': ['alchemical', 'fit', molecules, '--pseudo-types', '2', '--hypers', small, '--out', 'a.json'],
};

function folder(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-cli-options-run-'));
}

function expectUsageError(r: Run, name: string, flag: RegExp, what: string) {
  expect(r.status, `${what}: ${r.stderr}`).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines, `${what}: ${r.stderr}`).toHaveLength(1);
  expect(lines[0], what).toMatch(new RegExp(`^acdc ${name}: `));
  expect(lines[0], what).toMatch(flag);
  expect(r.stdout, what).toBe('');
}

const squash = (s: string) => s.replace(/\s+/g, ' ');

beforeAll(async () => {
  const r = await acdc(['fit', cuTrain, '--out', model, '--model', 'linear', '--hypers', small, '--validation', '0', '--json'], inputs);
  expect(r.status, r.stderr).toBe(0);
}, 120_000);

describe('shared options on every long command', () => {
  it('every long command lists --threads, --max-memory, --json, --progress and --no-progress with the one help text', async () => {
    for (const [name, args] of Object.entries(COMMANDS)) {
      const sub = name.split(' ');
      const r = await run(process.execPath, [cli, ...sub, '--help']);
      expect(r.status, name).toBe(0);
      const help = squash(r.stdout);
      expect(args.slice(0, sub.length)).toEqual(sub);
      for (const [flag, text] of [['--threads <n>', HELP.threads], ['--max-memory <size>', HELP.maxMemory], ['--json', HELP.json], ['--progress', HELP.progress], ['--no-progress', HELP.noProgress]]) {
        expect(help, `${name} ${flag}`).toContain(squash(`${flag} ${text}`));
      }
    }
  });

  it('a bad --threads or --max-memory is a usage error on each command: exit 2, one line, no output', async () => {
    const bad: Array<[string[], RegExp]> = [
      [['--threads', '0'], /--threads <n>.*expected a positive integer, got "0"/],
      [['--threads', String(os.availableParallelism() + 1)], /--threads <n>.*this machine runs \d+ threads at once/],
      [['--max-memory', '4Q'], /--max-memory <size>.*expected a size such as 4G/],
    ];
    for (const [name, args] of Object.entries(COMMANDS)) {
      for (const [extra, message] of bad) {
        const dir = folder();
        expectUsageError(await acdc([...args, ...extra], dir), name, message, `${name} ${extra.join(' ')}`);
        expect(fs.readdirSync(dir), `${name} ${extra.join(' ')}`).toEqual([]);
      }
    }
  }, 300_000);

  it('drive, serve, worker and merge take the subset that fits them, with the same help and the same checks', async () => {
    const subsets: Record<string, [string[], string[]]> = {
      drive: [['drive', model, '--unix', 'acdc-options-test'], ['threads', 'maxMemory', 'json']],
      serve: [['serve', '--port', '0'], ['threads', 'maxMemory']],
      worker: [['worker', '--queue', 'redis://127.0.0.1:1/0'], ['threads']],
      merge: [['merge', path.join(inputs, 'none.json'), '--out', 'x.npy'], ['json']],
    };
    const flags: Record<string, [string, string[], RegExp]> = {
      threads: ['--threads <n>', ['--threads', '0'], /--threads <n>.*expected a positive integer, got "0"/],
      maxMemory: ['--max-memory <size>', ['--max-memory', '4Q'], /--max-memory <size>.*expected a size such as 4G/],
      json: ['--json', [], /./],
    };
    for (const [name, [args, has]] of Object.entries(subsets)) {
      const help = squash((await run(process.execPath, [cli, name, '--help'])).stdout);
      for (const [key, [flag, bad, message]] of Object.entries(flags)) {
        const text = key === 'maxMemory' ? HELP.maxMemory : HELP[key];
        if (!has.includes(key)) {
          expect(help, `${name} has no ${flag}`).not.toContain(`${flag} `);
          continue;
        }
        expect(help, `${name} ${flag}`).toContain(squash(`${flag} ${text}`));
        if (bad.length === 0) continue;
        const dir = folder();
        expectUsageError(await acdc([...args, ...bad], dir), name, message, `${name} ${bad.join(' ')}`);
        expect(fs.readdirSync(dir)).toEqual([]);
      }
    }
  }, 120_000);

  it('--max-memory applies to the work of each command: below its need, one-line refusal (exit 1) and no output file', async () => {
    for (const [name, args] of Object.entries(COMMANDS)) {
      const dir = folder();
      const r = await acdc([...args, '--max-memory', '1000'], dir);
      expect(r.status, `${name}: ${r.stderr}`).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines, `${name}: ${r.stderr}`).toHaveLength(1);
      expect(lines[0], name).toMatch(/^acdc: .*more than the (memory )?budget of (1000 B|0\.00 GiB|0 MiB)/);
      expect(fs.readdirSync(dir), name).toEqual([]);
    }
  }, 300_000);

  it('--threads N --max-memory 50% --json --progress: one JSON line on stdout, the stage lines on stderr; --no-progress: none', async () => {
    for (const [name, args] of Object.entries(COMMANDS)) {
      const dir = folder();
      const r = await acdc([...args, '--threads', '1', '--max-memory', '50%', '--json', '--progress'], dir);
      expect(r.status, `${name}: ${r.stderr}`).toBe(0);
      const out = r.stdout.split('\n');
      expect(out, `${name}: ${r.stdout}`).toHaveLength(2);
      expect(out[1]).toBe('');
      expect(typeof JSON.parse(out[0]), name).toBe('object');
      if (name === 'featurize') expect(r.stderr, name).toMatch(/\d+\/\d+ structures/);
      else {
        const stages = r.stderr.split('\n').filter((l) => / done in [\d.]+ s$/.test(l));
        expect(stages.length, `${name}: ${r.stderr}`).toBeGreaterThan(0);
        for (const l of stages) expect(l, name).toMatch(new RegExp(`^acdc ${name}: `));
      }
      const quiet = await acdc([...args, '--json', '--no-progress'], folder());
      expect(quiet.status, `${name}: ${quiet.stderr}`).toBe(0);
      expect(quiet.stderr, name).not.toMatch(/done in|structures\/s|\r/);
      expect(JSON.parse(quiet.stdout.trim()), name).toBeTypeOf('object');
    }
  }, 600_000);

  it.runIf(process.platform === 'linux')('--threads sizes the native pool: one thread fewer with --threads 1 than with ACDC_NUM_THREADS=2', async () => {
    const preload = path.join(inputs, 'threads.cjs');
    fs.writeFileSync(
      preload,
      "process.on('exit', () => { const fs = require('fs'); fs.writeFileSync(process.env.ACDC_TEST_THREADS, /Threads:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]); });\n",
    );
    for (const name of ['map', 'basis fit', 'scan']) {
      const count = async (extra: string[]) => {
        const file = path.join(folder(), 'threads');
        const r = await acdc([...COMMANDS[name], ...extra, '--json'], folder(), { NODE_OPTIONS: `--require ${preload}`, ACDC_TEST_THREADS: file });
        expect(r.status, `${name}: ${r.stderr}`).toBe(0);
        return Number(fs.readFileSync(file, 'utf8'));
      };
      expect((await count([])) - (await count(['--threads', '1'])), name).toBe(1);
    }
  }, 300_000);
});

describe('one meaning per flag', () => {
  it('serve: --model-file names the model file; --model <file> still works with a note, and both at once is a usage error', async () => {
    const missing = path.join(inputs, 'nope.acdc');
    const serve = (args: string[]) => run(process.execPath, [cli, 'serve', '--port', '0', ...args], { timeout: 60_000 });
    const a = await serve(['--model-file', missing]);
    expect(a.status).toBe(1);
    expect(a.stderr).toMatch(/^acdc: --model-file .*nope\.acdc: .*\n$/);
    const b = await serve(['--model', missing]);
    expect(b.status).toBe(1);
    const lines = b.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe('acdc serve: note: --model <file> is deprecated, use --model-file <file> (--model names a model kind in acdc fit and acdc scan)');
    expect(lines[1]).toMatch(/^acdc: --model-file .*nope\.acdc: /);
    const c = await serve(['--model', missing, '--model-file', missing]);
    expectUsageError({ status: c.status, stdout: c.stdout, stderr: c.stderr }, 'serve', /--model-file/, 'both');
    expect(squash((await run(process.execPath, [cli, 'serve', '--help'])).stdout)).not.toMatch(/--model </);
  });

  it('scan: --relative-regularizer and --target-key; the old spellings give the same curves with a note, and both at once is a usage error', async () => {
    const base = ['scan', cuTrain, '--cutoffs', '3', '--body-order', '2', '--json'];
    const now = await acdc([...base, '--relative-regularizer', '1e-4', '--target-key', 'energy'], inputs);
    expect(now.status, now.stderr).toBe(0);
    expect(now.stderr).toBe('');
    const old = await acdc([...base, '--regularizer', '1e-4', '--target', 'energy'], inputs);
    expect(old.status, old.stderr).toBe(0);
    expect(old.stderr.trim().split('\n')).toEqual([
      "acdc scan: note: --regularizer is deprecated, use --relative-regularizer (scan's value is relative to the mean kernel diagonal, acdc fit's --regularizer is absolute)",
      "acdc scan: note: --target is deprecated, use --target-key (acdc fit's --target names a tensor kind)",
    ]);
    const curves = (r: Run) => JSON.parse(r.stdout).curves;
    expect(curves(old)).toEqual(curves(now));
    // the relative value matters: another one gives other curves
    const other = await acdc([...base, '--relative-regularizer', '1e-1'], inputs);
    expect(curves(other)).not.toEqual(curves(now));
    expectUsageError(await acdc([...base, '--regularizer', '1e-4', '--relative-regularizer', '1e-4'], inputs), 'scan', /--relative-regularizer once/, 'both regularizers');
    expectUsageError(await acdc([...base, '--target', 'energy', '--target-key', 'energy'], inputs), 'scan', /--target-key once/, 'both keys');
    expectUsageError(await acdc([...base, '--relative-regularizer', '-1'], inputs), 'scan', /--relative-regularizer <λ>.*expected a positive number/, 'negative');
    const missing = await acdc([...base, '--target-key', 'charge'], inputs);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^acdc: .*no "charge" in the comment line \(--target-key names the per-structure property to fit\)\n$/);
  }, 300_000);
});
