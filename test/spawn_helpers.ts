// Child processes for tests, awaited instead of run with spawnSync: a
// spawnSync blocks the vitest worker's event loop for the whole child's
// run, and a worker that cannot answer the runner's RPC for 60 s fails the
// run with "Timeout calling onTaskUpdate" even when every test passes
// (vitest 3's fixed RPC timeout), which a slow CLI call on a loaded
// machine reaches.
import { spawn } from 'node:child_process';

export interface Finished {
  /** Exit code, or null when a signal ended the child. */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `command args` to its end, collecting stdout and stderr as UTF-8; kills it after `timeout` ms. */
export function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number; input?: string } = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = options.timeout ? setTimeout(() => child.kill('SIGKILL'), options.timeout) : undefined;
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ status, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.end(options.input ?? '');
  });
}
