// The external programs some tests talk to: a Python with numpy,
// metatensor-core, ASE, i-PI and chemiscope (the references), Debian's
// chromium and redis-server. `npm test` prepares them first (the `pretest`
// script, scripts/ci/test-prerequisites.sh); a test that needs one and does
// not find it fails naming what to install: it is never skipped.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..');

/** The Python of the interop tests: ACDC_INTEROP_PYTHON, else the venv the pretest step makes. */
export function interopPython(): string {
  const configured = process.env.ACDC_INTEROP_PYTHON;
  if (configured) return configured;
  const venv = path.join(ROOT, 'node_modules', '.cache', 'acdc-interop-venv', 'bin', 'python');
  if (fs.existsSync(venv)) return venv;
  throw new Error(
    'no Python for the interop tests: set ACDC_INTEROP_PYTHON, or run `bash scripts/ci/interop-python.sh node_modules/.cache/acdc-interop-venv` (npm test does)',
  );
}

/** Debian's chromium binary. */
export function chromiumPath(): string {
  for (const p of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (fs.existsSync(p)) return p;
  throw new Error('no chromium binary: run `bash scripts/ci/chromium.sh` (npm test does)');
}

/** Checks that redis-server runs. */
export function requireRedis(): void {
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    throw new Error('no redis-server on PATH: run `bash scripts/ci/redis.sh` (npm test does)');
  }
}
