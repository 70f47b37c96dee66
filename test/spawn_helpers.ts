// Child processes for tests, awaited instead of run with spawnSync: a
// spawnSync blocks the vitest worker's event loop for the whole child's
// run, and a worker that cannot answer the runner's RPC for 60 s fails the
// run with "Timeout calling onTaskUpdate" even when every test passes
// (vitest 3's fixed RPC timeout), which a slow CLI call on a loaded
// machine reaches. Test files run every child that can take more than a
// moment (the CLI, node scripts, Python, bash pipelines) through `run` or
// `checked`.
import { spawn } from 'node:child_process';

export interface Finished {
  /** Exit code, or null when a signal ended the child. */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Kills the child with SIGKILL after this many ms (the result then has `signal: 'SIGKILL'`). */
  timeout?: number;
  /** Written to the child's stdin, which is then closed (closed empty when absent). */
  input?: string | Buffer;
  /** Also copies the child's stdout and stderr to this process's as they arrive (a long setup script's progress). */
  echo?: boolean;
}

/** Runs `command args` to its end, collecting stdout and stderr as UTF-8; kills it after `timeout` ms. */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => {
      out.push(d);
      if (options.echo) process.stdout.write(d);
    });
    child.stderr.on('data', (d: Buffer) => {
      err.push(d);
      if (options.echo) process.stderr.write(d);
    });
    const timer = options.timeout ? setTimeout(() => child.kill('SIGKILL'), options.timeout) : undefined;
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    // a child that exits before reading its stdin makes the write fail with EPIPE: that is the child's business, not an error of the run
    child.stdin.on('error', () => {});
    child.on('close', (status, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ status, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.end(options.input ?? '');
  });
}

/**
 * Like `run`, but resolves to stdout only and rejects unless the child exits
 * with status 0, the way execFileSync throws: the error names the command,
 * the status or signal, and the child's stderr.
 */
export async function checked(command: string, args: string[], options: RunOptions = {}): Promise<string> {
  const r = await run(command, args, options);
  if (r.status !== 0) {
    const how = r.signal ? `was killed by ${r.signal}` : `exited with status ${r.status}`;
    throw new Error(`Command failed: ${[command, ...args].join(' ')} ${how}\n${r.stderr}`);
  }
  return r.stdout;
}
