#!/usr/bin/env node
// `npm test`'s first step: the Rust core's tests, `cargo test -p acdc-core`,
// built in the release profile for the host's target triple: exactly the
// profile and target `npm run build:native` (napi build --release) used, so
// the dependencies `npm install` compiled are reused instead of compiled a
// second time in the `test` profile (on a 2-core machine that second build
// took most of `npm test`'s time). Release tests run without debug
// assertions; the core's numbers are checked by the tests' own assertions.
//   node scripts/test-core.mjs [cargo test arguments…]
import { spawnSync } from 'node:child_process';

const cargo = process.env.CARGO || 'cargo';
const rustc = process.env.RUSTC || 'rustc';
const info = spawnSync(rustc, ['-vV'], { encoding: 'utf8' });
if (info.error || info.status !== 0) {
  process.stderr.write('acdc: the core tests need a Rust toolchain, and `rustc` was not found on PATH: install it from https://rustup.rs\n');
  process.exit(1);
}
const host = /^host: (\S+)$/m.exec(info.stdout)?.[1];
if (!host) {
  process.stderr.write(`acdc: could not read the host target from \`rustc -vV\`:\n${info.stdout}`);
  process.exit(1);
}
const args = ['test', '--release', '--target', host, '-p', 'acdc-core', ...process.argv.slice(2)];
const r = spawnSync(cargo, args, { stdio: 'inherit' });
if (r.error) {
  process.stderr.write(`acdc: could not run ${cargo}: ${r.error.message}\n`);
  process.exit(1);
}
process.exit(r.status ?? 1);
