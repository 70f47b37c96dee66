#!/usr/bin/env node
// `npm test`'s first step: the Rust core's tests, `cargo test -p acdc-core`,
// built in the release profile for the host's target triple: exactly the
// profile and target `npm run build:native` (napi build --release) used, so
// the dependencies `npm install` compiled are reused instead of compiled a
// second time in the `test` profile (on a 2-core machine that second build
// took most of `npm test`'s time). Release tests run without debug
// assertions; the core's numbers are checked by the tests' own assertions.
//   node scripts/test-core.mjs                       all of the core's tests
//   node scripts/test-core.mjs [cargo test arguments…] e.g. --lib neighbors
//
// With no arguments it runs two cargo commands that build nothing twice:
// - `cargo test -p acdc-core -p acdc-node --tests`: the library's unit tests
//   and the one integration-test binary (tests/integration/, which also
//   compiles the examples as modules). Naming acdc-node (whose own lib has
//   `test = false`: it links only into Node) makes cargo resolve features as
//   `napi build` did: `-p acdc-core` alone builds syn with fewer features, and
//   with it serde_derive, serde and the acdc-core library a second time.
//   `--tests` leaves out plain `cargo test`'s build of every example, each
//   linked with thin LTO (minutes on 2 cores).
// - `cargo test -p acdc-core -p acdc-node --doc`: the documentation tests
//   (`--doc` cannot be combined with `--tests` in one command; cargo warns
//   that acdc-node, a cdylib, has none).
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
const base = ['test', '--release', '--target', host];
const user = process.argv.slice(2);
const runs = user.length > 0 ? [[...base, '-p', 'acdc-core', ...user]] : [[...base, '-p', 'acdc-core', '-p', 'acdc-node', '--tests'], [...base, '-p', 'acdc-core', '-p', 'acdc-node', '--doc']];
for (const args of runs) {
  const r = spawnSync(cargo, args, { stdio: 'inherit' });
  if (r.error) {
    process.stderr.write(`acdc: could not run ${cargo}: ${r.error.message}\n`);
    process.exit(1);
  }
  if (r.status !== 0) process.exit(r.status ?? 1);
}
