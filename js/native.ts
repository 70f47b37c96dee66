// The N-API binding built by napi-rs from crates/acdc-node.
//
// native/index.js is napi's generated loader. It tries, in order, a binary
// built in this checkout (native/acdc.<platform>.node, what `npm run
// build:native` writes) and then the prebuilt platform package
// (acdc-ml-<platform>, an optional dependency of the published package). When
// neither loads it throws a generic "Cannot find native binding"; this module
// rethrows that with the platform, the package it looked for and the fix,
// keeping napi's error (and its chain of load errors) as `cause`.
import type * as Binding from '../native/index';
import { wrapBinding } from './errors';

/** Prebuilt binaries published for acdc, by `platform-arch[-abi]` suffix. */
export const PREBUILT_PLATFORMS: readonly string[] = [
  'linux-x64-gnu',
  'linux-x64-musl',
  'linux-arm64-gnu',
  'linux-arm64-musl',
  'darwin-x64',
  'darwin-arm64',
  'win32-x64-msvc',
];

/** 'glibc', 'musl' or undefined off Linux, the way napi's loader decides it. */
function linuxLibc(): 'glibc' | 'musl' | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
    if (report?.header?.glibcVersionRuntime) return 'glibc';
  } catch {
    // fall through to the filesystem check
  }
  try {
    return require('node:fs').readFileSync('/usr/bin/ldd', 'utf8').includes('musl') ? 'musl' : 'glibc';
  } catch {
    return 'musl';
  }
}

/** The suffix napi's loader uses for this process, e.g. 'linux-x64-gnu', 'darwin-arm64', 'win32-x64-msvc'. */
export function platformSuffix(platform: string = process.platform, arch: string = process.arch, libc = linuxLibc()): string {
  if (platform === 'linux') return `${platform}-${arch}-${libc === 'musl' ? 'musl' : 'gnu'}`;
  if (platform === 'win32') return `${platform}-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function causeMessages(error: unknown): string[] {
  const messages: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 8; depth++) {
    const message = current instanceof Error ? current.message : String(current);
    // keep the first line: require() appends a long "Require stack"
    messages.push(message.split('\n')[0]!);
    current = current instanceof Error ? current.cause : undefined;
  }
  return messages;
}

/** The error thrown when no binary fits: what was looked for, and how to fix it. */
export function missingBindingError(cause: unknown): Error {
  const libc = linuxLibc();
  const suffix = platformSuffix(process.platform, process.arch, libc);
  const pkg = `acdc-ml-${suffix}`;
  const where = `${process.platform}/${process.arch}${libc ? ` (${libc})` : ''}, Node ${process.versions.node}`;
  const prebuilt = PREBUILT_PLATFORMS.includes(suffix);
  let installed = false;
  try {
    require.resolve(`${pkg}/package.json`);
    installed = true;
  } catch {
    // not installed
  }
  const lines = [
    `acdc: no native binary for ${where}: looked for native/acdc.${suffix}.node in the acdc-ml package and for the package ${pkg}.`,
    installed
      ? `${pkg} is installed but its binary failed to load (see the load errors below: a C library older than the one it was built against, or a damaged install). Fix: reinstall it (\`npm install ${pkg}\`), or build from source as below.`
      : prebuilt
      ? `${pkg} is published for this platform and is an optional dependency of acdc-ml: it was not installed (optional dependencies were omitted, e.g. --omit=optional or --no-optional, or a lock file made on another platform). Fix: \`npm install ${pkg}\` (same version as acdc-ml), or delete node_modules and package-lock.json and run \`npm install\` again.`
      : `There is no prebuilt binary for ${suffix} (prebuilt: ${PREBUILT_PLATFORMS.join(', ')}).`,
    'Or build from source: install Rust (cargo, from rustup), clone the acdc git repository and run `npm install` there (its "prepare" script runs `npm run build`), or `npm run build:native` to rebuild the binary alone.',
    `Load errors (napi's loader, in order): ${causeMessages(cause).slice(1).reverse().join(' | ') || causeMessages(cause).join(' | ')}`,
  ];
  const error = new Error(lines.join('\n'), { cause });
  (error as Error & { code?: string }).code = 'ACDC_NATIVE_BINDING_NOT_FOUND';
  return error;
}

function load(): typeof Binding {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../native/index') as typeof Binding;
  } catch (error) {
    // A missing loader (native/index.js) means the TypeScript was built
    // without the native step; anything else comes from napi's loader.
    throw missingBindingError(error);
  }
}

// every error from the binding gets its stable code (js/errors.ts)
const native: typeof Binding = wrapBinding(load());

export default native;
export type * from '../native/index';
