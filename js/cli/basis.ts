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

/** Options of `acdc basis fit`. */
export interface BasisFitCli {
  maxRadial: number;
  hypers?: string;
  out: string;
}

/** Fits the contraction and writes the hyper-parameters to `o.out`; returns a one-line summary. */
export async function basisFit(file: string, o: BasisFitCli): Promise<string> {
  checkWritableTarget(o.out);
  const hypers = o.hypers === undefined ? DEFAULT_SOAP_HYPERS : readHypers(o.hypers);
  const systems = await readXyz(file);
  if (systems.length === 0) throw coded('ACDC_PARSE', `${file} contains no structure`);
  const fitted = await fitRadialContraction(systems, hypers, { maxRadial: o.maxRadial });
  await writeAtomically(o.out, (tmp) => fs.promises.writeFile(tmp, JSON.stringify(fitted) + '\n'));
  const channels = Object.keys((fitted.basis as { by_angular: object }).by_angular).length;
  return `contracted radial basis (at most ${o.maxRadial + 1} functions for each of ${channels} angular channels) from ${systems.length} structures → ${o.out}\n`;
}
