// `acdc alchemical fit`: fits the pseudo-element coupling of density.alchemical
// to the structures of an extended XYZ file and writes the hyper-parameters.
import { coded, rethrown } from '../errors';
import * as fs from 'node:fs';
import { fitAlchemicalCoupling } from '../basis';
import type { SoapHypers } from '../calculators';
import { writeAtomically, checkWritableTarget } from '../atomic';
import { readXyz } from '../xyz';
import { DEFAULT_SOAP_HYPERS } from '../featurize';
import type { Stages } from './stages';

/** Options of `acdc alchemical fit`. */
export interface AlchemicalFitCli {
  pseudoTypes: number;
  hypers?: string;
  out: string;
  /** The stage line (--progress). */
  stages?: Stages;
}

/** What `acdc alchemical fit` did (`--json` prints it). */
export interface AlchemicalFitSummary {
  file: string;
  out: string;
  structures: number;
  pseudoTypes: number;
  /** The elements the coupling maps, sorted. */
  types: number[];
  seconds: number;
}

/** The text report of `acdc alchemical fit`. */
export function formatAlchemicalFit(s: AlchemicalFitSummary): string {
  return `${s.pseudoTypes} pseudo-elements for elements ${s.types.join(',')} from ${s.structures} structures → ${s.out}\n`;
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

/** Fits U (B × S) and writes the hyper-parameters to `o.out`. */
export async function alchemicalFit(file: string, o: AlchemicalFitCli): Promise<AlchemicalFitSummary> {
  const t0 = performance.now();
  checkWritableTarget(o.out);
  const hypers = o.hypers === undefined ? DEFAULT_SOAP_HYPERS : readHypers(o.hypers);
  o.stages?.start(`reading ${file}`);
  const systems = await readXyz(file);
  if (systems.length === 0) throw coded('ACDC_PARSE', `${file} contains no structure`);
  o.stages?.start(`alchemical coupling of ${systems.length} structures`);
  const fitted = await fitAlchemicalCoupling(systems, hypers, { pseudoTypes: o.pseudoTypes });
  await writeAtomically(o.out, (tmp) => fs.promises.writeFile(tmp, JSON.stringify(fitted, null, 2) + '\n'));
  const { types } = (fitted.density as { alchemical: { types: number[] } }).alchemical;
  return { file, out: o.out, structures: systems.length, pseudoTypes: o.pseudoTypes, types, seconds: (performance.now() - t0) / 1000 };
}
