// Shared by `acdc map`, `compare`, `scan` and `rigidity`: read an extxyz
// file whole, and turn SOAP invariants into dense matrices with one row per
// atom (in file order) and one per structure (the mean over its atoms).
import { coded, rethrown } from '../errors';
import { SoapPowerSpectrum, SoapRadialSpectrum, type RadialSpectrumHypers, type SoapHypers } from '../calculators';
import { Labels } from '../tensor';
import type { System } from '../system';
import { readXyz } from '../xyz';
import { resolveInput } from '../featurize/input';
import { DEFAULT_SOAP_HYPERS, readHypersFile } from '../featurize';

/** The structures of an extxyz file (`-`, pipes and .gz as for `featurize`). */
export async function readSystems(file: string): Promise<System[]> {
  const input = await resolveInput(file);
  try {
    let systems: System[];
    try {
      systems = await readXyz(input.path);
    } catch (e) {
      const message = (e as Error).message;
      throw rethrown(e, message.startsWith(input.path) ? `${input.name}${message.slice(input.path.length)}` : `${input.name}: ${message}`, 'ACDC_PARSE');
    }
    if (systems.length === 0) throw coded('ACDC_PARSE', `${input.name} holds no frames`);
    return systems;
  } finally {
    input.cleanup();
  }
}

/** SOAP invariants of body order ν + 1: 2 = radial spectrum (ν = 1), 3 = power spectrum (ν = 2). */
export type BodyOrder = 2 | 3;
export type SoapCalculator = SoapPowerSpectrum | SoapRadialSpectrum;

/**
 * A calculator from a featomic-style hyper-parameter file, or the defaults
 * of `acdc featurize`. Hypers whose `basis` has no `type` (featomic's
 * `{"radial": {...}}`) are radial-spectrum hypers (body order 2).
 */
export function calculatorFromFile(option: string, file: string | undefined): SoapCalculator {
  if (file === undefined) return new SoapPowerSpectrum(DEFAULT_SOAP_HYPERS);
  let text: string;
  try {
    text = readHypersFile(file);
  } catch (e) {
    throw rethrown(e, (e as Error).message.replace(/^--hypers /, `${option} `), 'ACDC_INVALID_PARAMETER');
  }
  const hypers = JSON.parse(text) as { basis?: { type?: unknown } };
  try {
    return hypers?.basis && typeof hypers.basis === 'object' && hypers.basis.type === undefined
      ? SoapRadialSpectrum.fromJson(text)
      : SoapPowerSpectrum.fromJson(text);
  } catch (e) {
    throw rethrown(e, `${option} ${file}: ${(e as Error).message}`, 'ACDC_INVALID_PARAMETER');
  }
}

/** The default SOAP hypers with another cutoff radius (Å) and body order. */
export function defaultCalculator(cutoff: number, bodyOrder: BodyOrder): SoapCalculator {
  const defaults = DEFAULT_SOAP_HYPERS;
  const hypers: SoapHypers = { ...defaults, cutoff: { ...defaults.cutoff, radius: cutoff } };
  if (bodyOrder === 3) return new SoapPowerSpectrum(hypers);
  const radial: RadialSpectrumHypers = { cutoff: hypers.cutoff, density: hypers.density, basis: { radial: defaults.basis.radial } };
  return new SoapRadialSpectrum(radial);
}

/** Dense features of a set of structures. */
export interface Features {
  /**
   * One row per atom, structures in file order, atoms in order; `atoms × columns`.
   * The columns are one block per centre species (in `species` order): an
   * atom's invariants fill the block of its own species, the others are zero.
   */
  atoms: Float64Array;
  /**
   * One row per structure: the mean of its atoms' rows (zeros for a structure
   * without atoms), i.e. for each centre species the sum over its atoms
   * divided by the number of atoms, as `acdc featurize --per-structure mean`.
   */
  structures: Float64Array;
  columns: number;
  /** Centre species of the column blocks. */
  species: number[];
  /** First atom row of each structure, plus the total at the end. */
  offsets: number[];
}

/**
 * SOAP invariants of every atom with columns fixed by the species present
 * (`species`, default: those of the systems), so that two sets of
 * structures featurised with the same species share columns.
 */
export async function soapFeatures(calc: SoapCalculator, systems: System[], species?: number[]): Promise<Features> {
  const all = species ?? [...new Set(systems.flatMap((s) => Array.from(s.types)))].sort((a, b) => a - b);
  const moved =
    calc instanceof SoapPowerSpectrum
      ? new Labels(
          ['neighbor_1_type', 'neighbor_2_type'],
          all.flatMap((a) => all.filter((b) => a <= b).map((b) => [a, b])),
        )
      : new Labels(['neighbor_type'], all.map((s) => [s]));
  const tm = await calc.compute(systems);
  const block = tm.keysToProperties(moved).keysToSamples('center_type').block(0);
  const width = block.properties.count;
  const columns = width * all.length;
  const offsets = [0];
  for (const s of systems) offsets.push(offsets[offsets.length - 1] + s.size);
  const nAtoms = offsets[systems.length];
  const atoms = new Float64Array(nAtoms * columns);
  const system = block.samples.column('system');
  const atom = block.samples.column('atom');
  const center = block.samples.column('center_type');
  for (let r = 0; r < block.samples.count; r++) {
    const c = all.indexOf(center[r]);
    if (c < 0) throw coded('ACDC_INVALID_SYSTEM', `structure ${system[r]}: atom ${atom[r]} has species ${center[r]}, which is not among ${all.join(', ')}`);
    atoms.set(block.values.subarray(r * width, (r + 1) * width), (offsets[system[r]] + atom[r]) * columns + c * width);
  }
  const structures = new Float64Array(systems.length * columns);
  systems.forEach((s, k) => {
    if (s.size === 0) return;
    const row = structures.subarray(k * columns, (k + 1) * columns);
    for (let a = offsets[k]; a < offsets[k + 1]; a++) {
      for (let c = 0; c < columns; c++) row[c] += atoms[a * columns + c];
    }
    for (let c = 0; c < columns; c++) row[c] /= s.size;
  });
  return { atoms, structures, columns, species: all, offsets };
}
