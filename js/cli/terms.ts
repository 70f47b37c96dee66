// `acdc fit --terms 2b,soap`: a sum of kernels as in GAP's
// `gap={distance_2b ... : soap ...}`. The options, their defaults and the
// translation into `SparseGPR.fit({terms})` live here so that `fit.ts`
// only forwards them.
import { coded } from '../errors';
import { Command, InvalidArgumentError } from 'commander';
import type { SparseGPRFitOptions } from '../potentials';

/** Defaults of the 2-body term (GAP's distance_2b: cutoff_transition_width 0.5, theta_uniform 1, delta 1, n_sparse 20); the cutoff defaults to the SOAP cutoff. */
export const TERM_DEFAULTS = { terms: 'soap', transition: 0.5, theta: 1, delta: 1, sparse: 20 } as const;

/** The term options as commander parses them. */
export interface TermCliOptions {
  terms?: string;
  '2bCutoff'?: number;
  '2bTransition'?: number;
  '2bTheta'?: number;
  '2bDelta'?: number;
  '2bSparse'?: number;
  '2bJitter'?: number;
}

const TERM_NAMES: Record<string, 'soap' | '2b'> = { soap: 'soap', '2b': '2b', distance_2b: '2b' };

function termList(value: string): string {
  const names = value.split(',').map((s) => s.trim());
  const seen = new Set<string>();
  for (const name of names) {
    const term = TERM_NAMES[name];
    if (term === undefined) throw new InvalidArgumentError(`unknown term "${name}" (expected a comma-separated list of soap and 2b, e.g. 2b,soap)`);
    if (seen.has(term)) throw new InvalidArgumentError(`term "${name}" is given twice`);
    seen.add(term);
  }
  if (!seen.has('soap')) throw new InvalidArgumentError(`"${value}" has no soap term (a 2-body model alone is not supported; use 2b,soap)`);
  return [...seen].join(',');
}

function positive(value: string): number {
  const x = Number(value);
  if (value.trim() === '' || !Number.isFinite(x) || x <= 0) throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return x;
}

function nonNegative(value: string): number {
  const x = Number(value);
  if (value.trim() === '' || !Number.isFinite(x) || x < 0) throw new InvalidArgumentError(`expected a number ≥ 0, got "${value}"`);
  return x;
}

function positiveInteger(value: string): number {
  const x = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(x) || x <= 0) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return x;
}

/** Adds `--terms` and the `--2b-*` options to `acdc fit`. */
export function addTermOptions(cmd: Command): Command {
  return cmd
    .option('--terms <list>', 'kernel terms of the gpr, summed as in GAP: soap, or 2b,soap (2b: GAP\'s distance_2b, a pair-distance kernel per species pair)', termList, TERM_DEFAULTS.terms)
    .option('--2b-cutoff <Å>', '2b: cutoff radius in Å (default: the SOAP cutoff)', positive)
    .option('--2b-transition <Å>', `2b: width of the cosine switch-off below the cutoff in Å, GAP's cutoff_transition_width (default ${TERM_DEFAULTS.transition})`, nonNegative)
    .option('--2b-theta <Å>', `2b: length scale θ of the squared-exponential kernel in Å, GAP's theta_uniform (default ${TERM_DEFAULTS.theta})`, positive)
    .option('--2b-delta <eV>', `2b: kernel scale δ in eV, GAP's delta (default ${TERM_DEFAULTS.delta})`, positive)
    .option('--2b-sparse <n>', `2b: sparse distances per species pair, uniform over the training distances, GAP's n_sparse with sparse_method=uniform (default ${TERM_DEFAULTS.sparse})`, positiveInteger)
    .option('--2b-jitter <x>', "2b: added to the diagonal of the 2b term's K_MM, relative to its δ² (default: --jitter); GAP's sparse_jitter is absolute and shared: --2b-jitter sparse_jitter/δ_2b² next to --jitter sparse_jitter/δ²", nonNegative);
}

function twoBody(o: TermCliOptions): boolean {
  return (o.terms ?? TERM_DEFAULTS.terms).split(',').includes('2b');
}

/** Checks the term options against each other and the model kind before any work; throws one-line errors. */
export function checkTermOptions(o: TermCliOptions, model: string): void {
  const given = (['2bCutoff', '2bTransition', '2bTheta', '2bDelta', '2bSparse', '2bJitter'] as const).filter((k) => o[k] !== undefined);
  if (twoBody(o)) {
    if (model === 'linear') throw coded('ACDC_INVALID_PARAMETER', `--terms ${o.terms} needs --model gpr or auto (the linear model has one term)`);
  } else if (given.length > 0) {
    const flag = '--' + given[0].replace(/^2b/, '2b-').replace(/[A-Z]/g, (c) => c.toLowerCase());
    throw coded('ACDC_INVALID_PARAMETER', `${flag} is given but --terms (${o.terms ?? TERM_DEFAULTS.terms}) has no 2b term (use --terms 2b,soap)`);
  }
}

/** The SparseGPR options with the SOAP settings moved into a soap term next to a distance_2b term when `--terms` asks for one. */
export function withTerms(o: TermCliOptions, options: SparseGPRFitOptions): SparseGPRFitOptions {
  if (!twoBody(o)) return options;
  const { hypers, sparse, kernel, ...rest } = options;
  const soapCutoff = (hypers as { cutoff?: { radius?: unknown } } | undefined)?.cutoff?.radius;
  const cutoff = o['2bCutoff'] ?? (typeof soapCutoff === 'number' ? soapCutoff : undefined);
  if (cutoff === undefined) throw coded('ACDC_INVALID_PARAMETER', '--2b-cutoff is required when the SOAP hyper-parameters have no cutoff.radius');
  const transition = o['2bTransition'] ?? Math.min(TERM_DEFAULTS.transition, cutoff);
  return {
    ...rest,
    terms: [
      { type: 'distance_2b', cutoff, transition, theta: o['2bTheta'] ?? TERM_DEFAULTS.theta, delta: o['2bDelta'] ?? TERM_DEFAULTS.delta, sparse: { count: o['2bSparse'] ?? TERM_DEFAULTS.sparse }, ...(o['2bJitter'] !== undefined ? { jitter: o['2bJitter'] } : {}) },
      { type: 'soap', hypers: hypers!, sparse: sparse!, ...(kernel ? { kernel } : {}) },
    ],
  };
}
