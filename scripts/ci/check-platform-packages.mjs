#!/usr/bin/env node
// Before publishing: every target in package.json "napi.targets" has its
// platform package under npm/<platform>/ (made by `napi create-npm-dirs`),
// named <name>-<platform>, at the root package's version, holding its .node
// binary (put there by `npm run artifacts` from the CI build, or copied by
// hand); and the root package itself ships no .node file.
//
//   node scripts/ci/check-platform-packages.mjs             all targets
//   node scripts/ci/check-platform-packages.mjs linux-x64-gnu  only these
//
// Exits 1 with one line per problem.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseTriple } from '@napi-rs/cli';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const napi = pkg.napi ?? {};
const packageName = napi.packageName ?? pkg.name;
const binaryName = napi.binaryName ?? 'index';
const only = process.argv.slice(2);

const problems = [];
const targets = (napi.targets ?? []).map(parseTriple);
if (targets.length === 0) problems.push('package.json napi.targets is empty');
for (const name of only) {
  if (!targets.some((t) => t.platformArchABI === name)) problems.push(`${name} is not one of napi.targets (${targets.map((t) => t.platformArchABI).join(', ')})`);
}

for (const target of targets) {
  const abi = target.platformArchABI;
  if (only.length > 0 && !only.includes(abi)) continue;
  const dir = join('npm', abi);
  const manifestPath = join(root, dir, 'package.json');
  if (!existsSync(manifestPath)) {
    problems.push(`${dir}/package.json is missing: run \`npx napi create-npm-dirs\``);
    continue;
  }
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const expectedName = `${packageName}-${abi}`;
  if (manifest.name !== expectedName) problems.push(`${dir}/package.json: name is ${manifest.name}, expected ${expectedName} (the name native/index.js requires)`);
  if (manifest.version !== pkg.version) problems.push(`${dir}/package.json: version is ${manifest.version}, expected ${pkg.version} (the root package's version)`);
  const binary = `${binaryName}.${abi}.node`;
  if (manifest.main !== binary) problems.push(`${dir}/package.json: main is ${manifest.main}, expected ${binary}`);
  if (!Array.isArray(manifest.files) || !manifest.files.includes(binary)) problems.push(`${dir}/package.json: files does not list ${binary}`);
  const binaryPath = join(root, dir, binary);
  if (!existsSync(binaryPath)) problems.push(`${dir}/${binary} is missing: download the CI artifacts into artifacts/ and run \`npm run artifacts\``);
  else if (statSync(binaryPath).size < 1024) problems.push(`${dir}/${binary} is only ${statSync(binaryPath).size} bytes`);
  else console.log(`ok ${expectedName}@${manifest.version}: ${binary} (${(statSync(binaryPath).size / 1e6).toFixed(2)} MB)`);
}

const files = pkg.files ?? [];
for (const f of files) {
  if (f.endsWith('.node') || f === 'native' || f === 'native/') problems.push(`package.json files includes ${f}: the root package must not ship a .node binary (it lives in the platform packages)`);
}

if (problems.length > 0) {
  for (const p of problems) console.error(`check-platform-packages: ${p}`);
  process.exit(1);
}
