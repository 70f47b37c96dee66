// `acdc featurize` for the DScribe-style descriptors: symmetry functions and
// the Coulomb, sine and Ewald sum matrices. They need hyper-parameters (there
// is no sensible default for them) and their own design-matrix layout.
import * as fs from 'node:fs';
import { CoulombMatrix, EwaldSumMatrix, SineMatrix, SymmetryFunctions } from '../classic';
import { Labels, TensorMap } from '../tensor';

/** The DScribe-style calculators `acdc featurize` knows. */
export const CLASSIC_CALCULATORS = ['symmetry_functions', 'coulomb_matrix', 'sine_matrix', 'ewald_sum_matrix'] as const;
export type ClassicName = (typeof CLASSIC_CALCULATORS)[number];
export type ClassicCalculator = SymmetryFunctions | CoulombMatrix | SineMatrix | EwaldSumMatrix;

/** Whether `name` is one of {@link CLASSIC_CALCULATORS}. */
export function isClassic(name: string): name is ClassicName {
  return (CLASSIC_CALCULATORS as readonly string[]).includes(name);
}

/** Whether `name` is one of the matrices, which give one row per structure whatever `--per-structure` says. */
export function isMatrix(name: string): boolean {
  return isClassic(name) && name !== 'symmetry_functions';
}

/** The calculator from the `--hypers` JSON file, which is required. */
export function makeClassicCalculator(name: ClassicName, hypersPath: string | undefined): ClassicCalculator {
  if (hypersPath === undefined) {
    const example = name === 'symmetry_functions' ? '{"cutoff": 5, "g2": [[1, 0]], "types": [1, 8]}' : '{"n_atoms_max": 30}';
    throw new Error(`--calculator ${name} needs --hypers (a JSON file such as ${example})`);
  }
  const text = fs.readFileSync(hypersPath, 'utf8');
  try {
    switch (name) {
      case 'symmetry_functions':
        return SymmetryFunctions.fromJson(text);
      case 'coulomb_matrix':
        return CoulombMatrix.fromJson(text);
      case 'sine_matrix':
        return SineMatrix.fromJson(text);
      case 'ewald_sum_matrix':
        return EwaldSumMatrix.fromJson(text);
    }
  } catch (e) {
    throw new Error(`--hypers ${hypersPath}: ${(e as Error).message.replace(/^invalid parameter: /, '')}`);
  }
}

/**
 * One batch as a single block whose samples carry `system` (and `atom`):
 * per atom, the symmetry functions of every centre species stacked (columns
 * in DScribe's order); per structure, the sum or mean over atoms with the
 * centre species moved to the columns (all of `species`, zeros where absent);
 * the matrices are per structure already.
 */
export function classicDense(name: ClassicName, tm: TensorMap, species: number[], perStructure: boolean): TensorMap {
  if (isMatrix(name)) return tm;
  // the columns follow the species the features are split over: they must be
  // the file's in every batch
  for (const block of tm.blocks()) {
    const p = block.properties;
    const split = Array.from({ length: p.count }, (_, r) => p.row(r)).filter((row) => row[0] === 1).map((row) => row[1]);
    if (split.join() !== species.join()) {
      throw new Error(`symmetry_functions: a batch has the species ${split.join(',')} but the file has ${species.join(',')}: give "types": [${species.join(', ')}] in --hypers`);
    }
  }
  if (perStructure) return tm.keysToProperties(new Labels(['center_type'], species.map((s) => [s])));
  return tm.keysToSamples('center_type');
}
