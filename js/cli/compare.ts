// `acdc compare`: how much of one representation the other holds. Both
// hyper-parameter sets featurise the same structures (per-structure mean of
// the atomic SOAP invariants); the global feature reconstruction error
// (GFRE) and distortion (GFRD) of Goscinski et al., Mach. Learn.: Sci.
// Technol. 2, 025028 (2021), doi:10.1088/2632-2153/abdaf7, are measured in
// both directions.
//
// Split and standardisation (those of `gfre`/`gfrd`, i.e. scikit-matter
// 0.4.1's defaults): half of the structures, drawn with a fixed seed, are
// the training set and the other half the test set. Each feature matrix is
// centred by its training-set column means and divided by one number, the
// square root of its total training-set variance, so that both have unit
// total variance on the training set. The linear map is a 2-fold
// cross-validated ridge regression fit on the training set; the errors are
// test-set RMS values in these scaled units (0: the target is a linear
// function of the source; about 1: the source tells nothing about it).
import { coded, rethrown } from '../errors';
import { gfreAsync, gfrdAsync } from '../analysis';
import { calculatorFromFile, readSystems, soapFeatures } from './features';
import type { Stages } from './stages';

export interface CompareOptions {
  a: string;
  b: string;
  /** The stage line (--progress). */
  stages?: Stages;
}

export interface CompareSummary {
  file: string;
  structures: number;
  trainRows: number;
  testRows: number;
  a: { hypers: string; calculator: string; columns: number };
  b: { hypers: string; calculator: string; columns: number };
  /** GFRE(A → B): error of reconstructing B from A; GFRE(B → A) the reverse. */
  gfre: { aToB: number; bToA: number };
  /** GFRD of the same maps: how far the best linear map is from an orthogonal one. */
  gfrd: { aToB: number; bToA: number };
  seconds: number;
}

/** Runs `acdc compare`. */
export async function compare(file: string, options: CompareOptions): Promise<CompareSummary> {
  const t0 = performance.now();
  const calcA = calculatorFromFile('--a', options.a);
  const calcB = calculatorFromFile('--b', options.b);
  options.stages?.start(`reading ${file}`);
  const systems = await readSystems(file);
  if (systems.length < 4) throw coded('ACDC_INVALID_PARAMETER', `${file}: ${systems.length} structures: compare needs at least 4 (half to fit, half to test)`);
  options.stages?.start(`features A (${calcA.name}) and B (${calcB.name}) of ${systems.length} structures`);
  const fa = await soapFeatures(calcA, systems);
  const fb = await soapFeatures(calcB, systems);
  const A = { data: fa.structures, shape: [systems.length, fa.columns] };
  const B = { data: fb.structures, shape: [systems.length, fb.columns] };
  // all four run at once on the native pool; a failure is reported for the
  // first of them in this order, whichever finished first
  const names = ['GFRE(A → B)', 'GFRE(B → A)', 'GFRD(A → B)', 'GFRD(B → A)'];
  options.stages?.start('GFRE and GFRD');
  const settled = await Promise.allSettled([gfreAsync(A, B), gfreAsync(B, A), gfrdAsync(A, B), gfrdAsync(B, A)]);
  const [ab, ba, dab, dba] = settled.map((r, i) => {
    if (r.status === 'rejected') throw rethrown(r.reason, `${names[i]}: ${(r.reason as Error).message}`, 'ACDC_INVALID_PARAMETER');
    return r.value;
  });
  return {
    file,
    structures: systems.length,
    trainRows: Math.floor(systems.length / 2),
    testRows: Math.ceil(systems.length / 2),
    a: { hypers: options.a, calculator: calcA.name, columns: fa.columns },
    b: { hypers: options.b, calculator: calcB.name, columns: fb.columns },
    gfre: { aToB: ab, bToA: ba },
    gfrd: { aToB: dab, bToA: dba },
    seconds: (performance.now() - t0) / 1000,
  };
}

/** The table `acdc compare` prints. */
export function formatCompare(s: CompareSummary): string {
  const f = (x: number) => x.toFixed(4);
  return [
    `${s.file}: ${s.structures} structures (per-structure mean features; ${s.trainRows} to fit, ${s.testRows} to test)`,
    `  A = ${s.a.hypers} (${s.a.calculator}, ${s.a.columns} features)`,
    `  B = ${s.b.hypers} (${s.b.calculator}, ${s.b.columns} features)`,
    '',
    '            A → B    B → A',
    `  GFRE    ${f(s.gfre.aToB).padStart(7)}  ${f(s.gfre.bToA).padStart(7)}`,
    `  GFRD    ${f(s.gfrd.aToB).padStart(7)}  ${f(s.gfrd.bToA).padStart(7)}`,
    '',
    '  GFRE: test RMS error of the best linear reconstruction (0 = fully contained, ~1 = unrelated);',
    '  GFRD: distortion of that map from an orthogonal one (0 = a rotation).',
    '',
  ].join('\n');
}
