// Test files start child processes awaited (test/spawn_helpers.ts), never
// with spawnSync / execFileSync / execSync: a synchronous child blocks the
// vitest worker's event loop, and a worker that cannot answer the runner's
// RPC for 60 s fails the whole run ("Timeout calling onTaskUpdate") even
// when every test passes. Read from the sources, so that a new synchronous
// call fails here rather than on a loaded machine.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

// prerequisites.ts runs `redis-server --version` once while queue.test.ts is
// collected (milliseconds, before any test runs); spawn_helpers.ts names the
// sync functions in its comments only, and this file in its comments and example
const ALLOWED = new Set(['prerequisites.ts', 'spawn_helpers.ts', path.basename(__filename)]);

/** `file:line` of each synchronous child-process call in `text`. */
function syncCalls(file: string, text: string): string[] {
  return [...text.matchAll(/\b(?:spawnSync|execFileSync|execSync)\b/g)].map((m) => `${file}:${text.slice(0, m.index).split('\n').length}`);
}

describe('test files start child processes awaited', () => {
  const files = fs.readdirSync(__dirname).filter((f) => /\.m?[tj]s$/.test(f) && !ALLOWED.has(f));

  it('the scan finds the test files and a synchronous call', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(files).toContain('cli.test.ts');
    expect(syncCalls('x.ts', "import { spawn } from 'node:child_process';\nconst r = spawnSync('a', []);\nexecFileSync('b');")).toEqual(['x.ts:2', 'x.ts:3']);
  });

  it('no test file uses spawnSync, execFileSync or execSync', () => {
    const found = files.flatMap((f) => syncCalls(f, fs.readFileSync(path.join(__dirname, f), 'utf8')));
    expect(found).toEqual([]);
  });
});
