// Building from source without a Rust toolchain ends with one line that says
// what to install, not a stack trace.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from './spawn_helpers';

const root = path.join(__dirname, '..');

describe('npm run build:native', () => {
  it('without cargo on PATH: one line naming the Rust toolchain, exit 1', async () => {
    const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d && !fs.existsSync(path.join(d, 'cargo')) && !/\.cargo|\.rustup/.test(d));
    const r = await run(process.execPath, [path.join(root, 'scripts', 'build-native.mjs')], {
      cwd: root,
      env: { ...process.env, PATH: dirs.join(path.delimiter), CARGO: '' },
    });
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^acdc: building from source needs a Rust toolchain.*cargo.*rustup/);
  });
});
