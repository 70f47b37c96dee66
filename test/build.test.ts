// Building from source without a Rust toolchain ends with one line that says
// what to install, not a stack trace.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.join(__dirname, '..');

describe('npm run build:native', () => {
  it('without cargo on PATH: one line naming the Rust toolchain, exit 1', () => {
    const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d && !fs.existsSync(path.join(d, 'cargo')) && !/\.cargo|\.rustup/.test(d));
    const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-native.mjs')], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, PATH: dirs.join(path.delimiter), CARGO: '' },
    });
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^acdc: building from source needs a Rust toolchain.*cargo.*rustup/);
  });
});
