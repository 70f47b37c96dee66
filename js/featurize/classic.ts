// The design-matrix layout of the DScribe-style descriptors (registry family
// `classic`): symmetry functions stack the centre species, the matrices are
// one row per structure already.
import { coded } from '../errors';
import { Labels, TensorMap } from '../tensor';
import { isMatrix } from './registry';

/**
 * One batch as a single block whose samples carry `system` (and `atom`):
 * per atom, the symmetry functions of every centre species stacked (columns
 * in DScribe's order); per structure, the sum or mean over atoms with the
 * centre species moved to the columns (all of `species`, zeros where absent);
 * the matrices are per structure already.
 */
export function classicDense(name: string, tm: TensorMap, species: number[], perStructure: boolean): TensorMap {
  if (isMatrix(name)) return tm;
  // the columns follow the species the features are split over: they must be
  // the file's in every batch
  for (const block of tm.blocks()) {
    const p = block.properties;
    const split = Array.from({ length: p.count }, (_, r) => p.row(r)).filter((row) => row[0] === 1).map((row) => row[1]);
    if (split.join() !== species.join()) {
      throw coded('ACDC_INVALID_SYSTEM', `${name}: a batch has the species ${split.join(',')} but the file has ${species.join(',')}: give "types": [${species.join(', ')}] in --hypers`);
    }
  }
  if (perStructure) return tm.keysToProperties(new Labels(['center_type'], species.map((s) => [s])));
  return tm.keysToSamples('center_type');
}
