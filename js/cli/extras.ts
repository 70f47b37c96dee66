// The CLI's optional extras. `npm i acdc-ml` installs the library and the
// core commands only; the queue (`featurize --queue`, `worker`), the HTTP
// service (`serve`) and the SVG plots (`map --svg`, `scan --svg`) need
// packages the user adds. They are optional peer dependencies in
// package.json: npm does not install them, and the ranges below come from
// there so that the install command a user is told to run matches what was
// tested. Each command checks its extra before any work starts, so a missing
// package costs nothing but one line on stderr and exit code 2.
import * as path from 'node:path';

/** The feature a command needs, and the packages that provide it. */
export const EXTRAS = {
  queue: ['bullmq', 'ioredis'],
  serve: ['fastify', 'prom-client'],
  svg: ['vega', 'vega-lite'],
} as const;

export type Extra = keyof typeof EXTRAS;

/**
 * A command was run without the optional packages it needs. `code` is
 * `ACDC_MISSING_DEPENDENCY`, `packages` the missing names, and `exitCode` 2
 * (a usage error: the install, not the input, has to change).
 */
export class MissingExtraError extends Error {
  readonly code = 'ACDC_MISSING_DEPENDENCY';
  readonly exitCode = 2;
  constructor(
    message: string,
    readonly packages: string[],
  ) {
    super(message);
    this.name = 'MissingExtraError';
  }
}

function peerRanges(): Record<string, string> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return ((require('../../package.json') as { peerDependencies?: Record<string, string> }).peerDependencies ?? {});
}

function installed(name: string): boolean {
  try {
    // resolved from this file, as the command's own require/import will be
    require.resolve(name, { paths: [path.join(__dirname, '..')] });
    return true;
  } catch {
    return false;
  }
}

/**
 * Throws {@link MissingExtraError} naming `npm install …` when a package of
 * `extra` cannot be resolved; `what` names the command in the message
 * (`serve`, `map --svg`: the line reads `acdc: serve needs …`).
 */
export function requireExtra(extra: Extra, what: string): void {
  const names: readonly string[] = EXTRAS[extra];
  if (names.every(installed)) return;
  const ranges = peerRanges();
  const spec = names.map((n) => (ranges[n] ? `${n}@${ranges[n]}` : n)).join(' ');
  throw new MissingExtraError(`${what} needs ${names.join(' and ')}, which are not installed: npm install ${spec}`, names.filter((n) => !installed(n)));
}
