// `acdc alchemical fit`: fits the pseudo-element coupling of density.alchemical
// to the structures of an extended XYZ file and writes the hyper-parameters.
import { coded, rethrown } from '../errors';
import * as fs from 'node:fs';
import { fitAlchemicalCoupling } from '../basis';
import type { SoapHypers } from '../calculators';
import { writeAtomically, checkWritableTarget } from '../atomic';
import { readXyz } from '../xyz';
import { DEFAULT_SOAP_HYPERS } from '../featurize';

/** Options of `acdc alchemical fit`. */
export interface AlchemicalFitCli {
  pseudoTypes: number;
  hypers?: string;
  out: string;
}

/** Reads a hyper-parameter JSON file; errors name the file. */
export function readHypers(path: string): SoapHypers {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    throw rethrown(e, `--hypers ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, 'ACDC_IO');
  }
  try {
    return JSON.parse(text) as SoapHypers;
  } catch {
    throw coded('ACDC_PARSE', `--hypers ${path} is not valid JSON`);
  }
}

/** Fits U (B × S) and writes the hyper-parameters to `o.out`; returns a one-line summary. */
export async function alchemicalFit(file: string, o: AlchemicalFitCli): Promise<string> {
  checkWritableTarget(o.out);
  const hypers = o.hypers === undefined ? DEFAULT_SOAP_HYPERS : readHypers(o.hypers);
  const systems = await readXyz(file);
  if (systems.length === 0) throw coded('ACDC_PARSE', `${file} contains no structure`);
  const fitted = await fitAlchemicalCoupling(systems, hypers, { pseudoTypes: o.pseudoTypes });
  await writeAtomically(o.out, (tmp) => fs.promises.writeFile(tmp, JSON.stringify(fitted, null, 2) + '\n'));
  const { types } = (fitted.density as { alchemical: { types: number[] } }).alchemical;
  return `${o.pseudoTypes} pseudo-elements for elements ${types.join(',')} from ${systems.length} structures → ${o.out}\n`;
}
