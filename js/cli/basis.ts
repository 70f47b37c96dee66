// `acdc basis fit`: fits a contracted radial basis (leading principal
// components per l of the expansion coefficients) to the structures of an
// extended XYZ file and writes featomic-style Explicit hyper-parameters.
import { coded } from '../errors';
import * as fs from 'node:fs';
import { fitRadialContraction } from '../basis';
import { checkWritableTarget, writeAtomically } from '../atomic';
import { readXyz } from '../xyz';
import { readHypers } from './alchemical';
import { DEFAULT_SOAP_HYPERS } from '../featurize';
import type { Stages } from './stages';

/** Options of `acdc basis fit`. */
export interface BasisFitCli {
  maxRadial: number;
  hypers?: string;
  out: string;
  /** The stage line (--progress). */
  stages?: Stages;
}

/** What `acdc basis fit` did (`--json` prints it). */
export interface BasisFitSummary {
  file: string;
  out: string;
  structures: number;
  maxRadial: number;
  /** Angular channels of the contracted basis. */
  angularChannels: number;
  seconds: number;
}

/** The text report of `acdc basis fit`. */
export function formatBasisFit(s: BasisFitSummary): string {
  return `contracted radial basis (at most ${s.maxRadial + 1} functions for each of ${s.angularChannels} angular channels) from ${s.structures} structures → ${s.out}\n`;
}

/** Fits the contraction and writes the hyper-parameters to `o.out`. */
export async function basisFit(file: string, o: BasisFitCli): Promise<BasisFitSummary> {
  const t0 = performance.now();
  checkWritableTarget(o.out);
  const hypers = o.hypers === undefined ? DEFAULT_SOAP_HYPERS : readHypers(o.hypers);
  o.stages?.start(`reading ${file}`);
  const systems = await readXyz(file);
  if (systems.length === 0) throw coded('ACDC_PARSE', `${file} contains no structure`);
  o.stages?.start(`radial contraction of ${systems.length} structures`);
  const fitted = await fitRadialContraction(systems, hypers, { maxRadial: o.maxRadial });
  await writeAtomically(o.out, (tmp) => fs.promises.writeFile(tmp, JSON.stringify(fitted) + '\n'));
  const channels = Object.keys((fitted.basis as { by_angular: object }).by_angular).length;
  return { file, out: o.out, structures: systems.length, maxRadial: o.maxRadial, angularChannels: channels, seconds: (performance.now() - t0) / 1000 };
}
