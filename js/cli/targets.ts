// Targets of `acdc fit` and references of `acdc predict`, read from the frames
// of an extxyz file under ASE's names and conventions: total energy (eV) in
// the comment line, forces (eV/Å) as a per-atom column of 3, stress
// (eV/Å³, ASE's sign: positive under tension) as 9 numbers (3×3, row-major)
// or 6 (Voigt order xx yy zz yz xz xy). Also the error statistics (MAE and
// RMSE, computed in the Rust core) that both commands print.
import { coded } from '../errors';
import native from '../native';
import type { System } from '../system';

/** Where each target is found: the info key (energy, stress) or column name (forces). */
export interface TargetNames {
  energy: string;
  /** Forces column; null: not used. */
  forces: string | null;
  /** Stress info key; null: not used. */
  stress: string | null;
}

function isFullyPeriodic(s: System): boolean {
  return s.pbc[0] && s.pbc[1] && s.pbc[2];
}

/** The energy of a frame in eV, or undefined when absent; throws on a non-number or non-finite value. */
export function energyOf(file: string, s: System, k: number, key: string): number | undefined {
  const v = s.info[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number') throw coded('ACDC_INVALID_SYSTEM', `${file}: frame ${k}: energy "${key}" is ${JSON.stringify(v)}, not a number`);
  if (!Number.isFinite(v)) throw coded('ACDC_INVALID_SYSTEM', `${file}: frame ${k}: energy "${key}" is ${v}`);
  return v;
}

/** The forces of a frame (3N, eV/Å), or undefined when absent; throws on a bad column. */
export function forcesOf(file: string, s: System, k: number, key: string): Float64Array | undefined {
  const v = s.arrays[key];
  if (v === undefined) return undefined;
  if (!(v instanceof Float64Array) || v.length !== 3 * s.size) {
    throw coded('ACDC_INVALID_SYSTEM', `${file}: frame ${k}: forces "${key}" must be a column of 3 real numbers per atom`);
  }
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i])) throw coded('ACDC_INVALID_SYSTEM', `${file}: frame ${k}: forces "${key}" of atom ${Math.floor(i / 3)} is ${v[i]}`);
  }
  return v;
}

/** The stress of a frame as 9 numbers (eV/Å³, row-major), or undefined when absent; throws on a bad value. */
export function stressOf(file: string, s: System, k: number, key: string): Float64Array | undefined {
  const v = s.info[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || (v.length !== 9 && v.length !== 6) || !v.every((x) => typeof x === 'number')) {
    throw coded('ACDC_INVALID_SYSTEM', `${file}: frame ${k}: stress "${key}" must be 9 numbers (3×3) or 6 (Voigt xx yy zz yz xz xy)`);
  }
  const x = v as number[];
  for (const c of x) if (!Number.isFinite(c)) throw coded('ACDC_INVALID_SYSTEM', `${file}: frame ${k}: stress "${key}" holds ${c}`);
  if (x.length === 9) return Float64Array.from(x);
  const [xx, yy, zz, yz, xz, xy] = x;
  return Float64Array.from([xx, xy, xz, xy, yy, yz, xz, yz, zz]);
}

/**
 * Which targets a training file provides. The energy must be in every frame.
 * Forces and stress are used when `requested` names them explicitly (then
 * every frame, every periodic frame for stress, must have them), or when
 * left at their default name and every frame has them; `false` turns one off.
 */
export function trainingTargets(
  file: string,
  frames: System[],
  requested: { energy: string; forces: string | false | undefined; stress: string | false | undefined },
): TargetNames {
  if (frames.length === 0) throw coded('ACDC_PARSE', `${file} holds no frames`);
  frames.forEach((s, k) => {
    if (s.size === 0) throw coded('ACDC_INVALID_SYSTEM', `${file}: frame ${k} has no atoms`);
    if (energyOf(file, s, k, requested.energy) === undefined) {
      throw coded('ACDC_INVALID_SYSTEM', `${file}: frame ${k} has no energy "${requested.energy}" (name it with --energy)`);
    }
  });
  const pick = (
    kind: 'forces' | 'stress',
    value: string | false | undefined,
    get: (s: System, k: number, key: string) => unknown,
    needed: (s: System) => boolean,
  ): string | null => {
    if (value === false) return null;
    const key = value ?? kind;
    const missing = frames.findIndex((s, k) => needed(s) && get(s, k, key) === undefined);
    if (missing < 0) return frames.some(needed) ? key : null;
    if (value === undefined) return null; // default name absent: not fitted
    throw coded('ACDC_INVALID_SYSTEM', `${file}: frame ${missing} has no ${kind} "${key}" (fit without them with --no-${kind})`);
  };
  const forces = pick('forces', requested.forces, (s, k, key) => forcesOf(file, s, k, key), () => true);
  const stress = pick('stress', requested.stress, (s, k, key) => stressOf(file, s, k, key), isFullyPeriodic);
  return { energy: requested.energy, forces, stress };
}

/** Mean absolute and root-mean-square error of one quantity, and how many values entered them. */
export interface ErrorStats {
  mae: number;
  rmse: number;
  count: number;
}

/** Collects predicted and reference values (and divisors, atoms for an energy per atom); the statistics come from the core. */
class Accumulator {
  #predicted: number[] = [];
  #reference: number[] = [];
  #divisor: number[] = [];
  add(predicted: number, reference: number, divisor?: number): void {
    this.#predicted.push(predicted);
    this.#reference.push(reference);
    if (divisor !== undefined) this.#divisor.push(divisor);
  }
  stats(): ErrorStats | null {
    const e = native.errorStatistics(Float64Array.from(this.#predicted), Float64Array.from(this.#reference), this.#divisor.length ? Float64Array.from(this.#divisor) : undefined);
    return e ? { mae: e.mae, rmse: e.rmse, count: e.count } : null;
  }
}

/** Errors of a prediction against the references present in the frames. */
export interface Errors {
  /** Energy per atom, eV/atom: (E_pred − E_ref)/N per structure. */
  energy: ErrorStats | null;
  /** Force components, eV/Å. */
  forces: ErrorStats | null;
  /** Stress components (all 9 of the 3×3), eV/Å³. */
  stress: ErrorStats | null;
}

/** What a model predicted for a list of frames (the models API's result). */
export interface PredictedValues {
  energy: Float64Array;
  forces?: Float64Array[];
  stress?: Float64Array[];
}

/**
 * MAE and RMSE of `p` against the references of `frames` under `names`,
 * over the frames that hold each reference (null: no frame does).
 */
export function errors(file: string, frames: System[], p: PredictedValues, names: TargetNames): Errors {
  const e = new Accumulator();
  const f = new Accumulator();
  const st = new Accumulator();
  frames.forEach((s, k) => {
    const energy = energyOf(file, s, k, names.energy);
    if (energy !== undefined && s.size > 0) e.add(p.energy[k], energy, s.size);
    const forces = names.forces === null ? undefined : forcesOf(file, s, k, names.forces);
    if (forces !== undefined && p.forces) for (let i = 0; i < forces.length; i++) f.add(p.forces[k][i], forces[i]);
    const stress = names.stress === null ? undefined : stressOf(file, s, k, names.stress);
    if (stress !== undefined && p.stress && p.stress[k]) for (let i = 0; i < 9; i++) st.add(p.stress[k][i], stress[i]);
  });
  return { energy: e.stats(), forces: f.stats(), stress: st.stats() };
}

/** A few lines: the MAE and RMSE of each quantity with its unit. */
export function formatErrors(title: string, x: Errors): string {
  const rows: string[] = [];
  const fmt = (v: number) => v.toExponential(3).padStart(11);
  const row = (name: string, s: ErrorStats | null, unit: string) => {
    if (s) rows.push(`  ${name.padEnd(8)}${fmt(s.mae)}${fmt(s.rmse)}  ${unit} (${s.count} values)`);
  };
  row('energy', x.energy, 'eV/atom');
  row('forces', x.forces, 'eV/Å');
  row('stress', x.stress, 'eV/Å³');
  if (rows.length === 0) return `${title}: no reference energy, forces or stress in the file\n`;
  return `${title}:\n  ${''.padEnd(8)}${'MAE'.padStart(11)}${'RMSE'.padStart(11)}\n${rows.join('\n')}\n`;
}

export { isFullyPeriodic };
