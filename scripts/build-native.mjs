#!/usr/bin/env node
// `npm run build:native`: builds the N-API addon with napi-rs's CLI (cargo,
// release profile). Checks first that a Rust toolchain is there, so that a
// source build without one ends with one line saying what to install rather
// than a stack trace from deep inside the build tool.
import { spawnSync } from 'node:child_process';

const cargo = process.env.CARGO || 'cargo';
const probe = spawnSync(cargo, ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) {
  process.stderr.write(
    'acdc: building from source needs a Rust toolchain, and `cargo` was not found on PATH: install it from https://rustup.rs ' +
      '(then open a new shell and run `npm install` again), or install acdc-ml on a platform with a prebuilt binary.\n',
  );
  process.exit(1);
}
const args = [
  'build', '--platform', '--release',
  '--manifest-path', 'crates/acdc-node/Cargo.toml',
  '--output-dir', 'native', '--js', 'index.js', '--dts', 'index.d.ts',
  ...process.argv.slice(2),
];
const r = spawnSync('napi', args, { stdio: 'inherit', shell: process.platform === 'win32' });
if (r.error) {
  process.stderr.write(`acdc: could not run napi (from @napi-rs/cli, a dev dependency: run \`npm install\` first): ${r.error.message}\n`);
  process.exit(1);
}
process.exit(r.status ?? 1);
