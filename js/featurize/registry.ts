// The calculator factory of the front ends: a name and hyper-parameters (a
// file, JSON text, or the registry's defaults) in, a calculator object out.
// Which calculators exist, what they output and what they default to comes
// from the core's registry (`calculatorRegistry()`); the TypeScript class of
// each is found by its static `calculatorName`, so that adding a calculator
// touches its Rust file, one registry line and its TS class, and nothing here.
import * as fs from 'node:fs';
import { invalidParameter, rethrown, coded } from '../errors';
import * as soap from '../calculators';
import * as classic from '../classic';
import { calculatorRegistry, CalculatorBase, type CalculatorInfo, type SoapHypers } from '../calculators';
import type { AbortSignalLike } from '../schedule';

/** A calculator name of the registry (checked when a calculator is built). */
export type CalculatorName = string;

/** A calculator the front ends can run. @internal */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Calc = CalculatorBase<any, any>;

/** The registry entries, in registry order. */
export const REGISTRY: readonly CalculatorInfo[] = calculatorRegistry();

/** Every calculator name, in registry order. */
export const CALCULATORS: readonly CalculatorName[] = REGISTRY.map((e) => e.name);

/** The calculator used when none is named: the registry's first. */
export const DEFAULT_CALCULATOR: CalculatorName = REGISTRY[0].name;

/** The registry entry of `name`; throws (ACDC_INVALID_PARAMETER) listing the valid names. */
export function calculatorInfo(name: string): CalculatorInfo {
  const info = REGISTRY.find((e) => e.name === name);
  if (info === undefined) {
    throw invalidParameter(`unknown calculator "${name}" (expected ${CALCULATORS.slice(0, -1).join(', ')} or ${CALCULATORS[CALCULATORS.length - 1]})`);
  }
  return info;
}

/** The calculators whose output fits one dense `.npy` design matrix. */
export const DENSE_CALCULATORS: readonly CalculatorName[] = REGISTRY.filter((e) => e.dense).map((e) => e.name);

/**
 * Hyper-parameters used when `--hypers` is not given: the common SOAP setting
 * (r_c 5 Å with a 0.5 Å shifted-cosine switch, σ 0.3 Å, 8 radial × 7 angular
 * channels), the registry's default of the first SOAP calculator.
 */
export const DEFAULT_SOAP_HYPERS = JSON.parse(REGISTRY.find((e) => e.family === 'soap' && e.defaultHypers !== null)!.defaultHypers!) as {
  cutoff: { radius: number; smoothing: { type: 'ShiftedCosine'; width: number } };
  density: { type: 'Gaussian'; width: number };
  basis: { type: 'TensorProduct'; max_angular: number; radial: { type: 'Gto'; max_radial: number } };
} satisfies SoapHypers;

/** Whether `name`'s output is one row per structure whatever `--per-structure` says (the matrices). */
export function isMatrix(name: string): boolean {
  return calculatorInfo(name).output === 'per_structure';
}

/** Whether `name` is a DScribe-style descriptor (its own hyper-parameters and design-matrix layout). */
export function isClassic(name: string): boolean {
  return calculatorInfo(name).family === 'classic';
}

type CalcClass = (typeof CalculatorBase<unknown>) & { calculatorName?: string; fromJson(text: string): Calc; fromJsonAsync(text: string, o: { signal?: AbortSignalLike }): Promise<Calc> };

let classes: Map<string, CalcClass> | undefined;

/** The TS class of calculator `name`: the exported subclass of CalculatorBase whose static `calculatorName` it is. */
function calculatorClass(name: string): CalcClass {
  if (classes === undefined) {
    classes = new Map();
    for (const value of [...Object.values(soap), ...Object.values(classic)]) {
      if (typeof value === 'function' && value.prototype instanceof CalculatorBase) {
        const n = (value as CalcClass).calculatorName;
        if (typeof n === 'string') classes.set(n, value as CalcClass);
      }
    }
  }
  const info = calculatorInfo(name);
  const cls = classes.get(info.name);
  if (cls === undefined) throw coded('ACDC_INTERNAL', `internal: calculator ${name} has no TypeScript class`);
  return cls;
}

/** The JSON text of a `--hypers` file, checked: present, a file, at most 64 MiB, valid JSON (its line and column named, its text never echoed). */
export function readHypersFile(hypersPath: string): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(hypersPath);
  } catch {
    throw coded('ACDC_IO', `--hypers ${hypersPath}: no such file`);
  }
  if (st.isDirectory()) throw coded('ACDC_IO', `--hypers ${hypersPath} is a folder, not a JSON file`);
  if (st.size > 64 << 20) throw coded('ACDC_INVALID_PARAMETER', `--hypers ${hypersPath} is ${st.size} bytes: too large for hyper-parameters`);
  const text = fs.readFileSync(hypersPath, 'utf8');
  try {
    JSON.parse(text);
  } catch (e) {
    // V8's message quotes the text; name the place instead of echoing the file
    const m = /position (\d+)/.exec((e as Error).message);
    let where = '';
    if (m) {
      const before = text.slice(0, Number(m[1]));
      where = ` at line ${before.split('\n').length}, column ${Number(m[1]) - before.lastIndexOf('\n')}`;
    }
    throw coded('ACDC_PARSE', `--hypers ${hypersPath} is not valid JSON${where}`);
  }
  return text;
}

/** The refusal of a calculator without default hyper-parameters when none are given. */
function needsHypers(info: CalculatorInfo): Error {
  return coded('ACDC_INVALID_PARAMETER', `--calculator ${info.name} needs --hypers (a JSON file such as ${info.exampleHypers})`);
}

/** The calculator named `name` with the hyper-parameters of `hypersPath` (else the registry's defaults). @internal */
export function makeCalculator(name: CalculatorName, hypersPath: string | undefined): Calc {
  const info = calculatorInfo(name);
  const cls = calculatorClass(name);
  if (hypersPath === undefined) {
    if (info.defaultHypers === null) throw needsHypers(info);
    return cls.fromJson(info.defaultHypers);
  }
  // the DScribe-style descriptors read their file as is (they have no
  // defaults a malformed file could be mistaken for)
  const text = info.family === 'classic' ? fs.readFileSync(hypersPath, 'utf8') : readHypersFile(hypersPath);
  try {
    return cls.fromJson(text);
  } catch (e) {
    throw rethrown(e, `--hypers ${hypersPath}: ${(e as Error).message.replace(/^invalid parameter: /, '')}`);
  }
}

/**
 * {@link makeCalculator} from JSON text (null: the defaults), built off the
 * event loop (`fromJsonAsync`): what `acdc serve` uses, so that a request
 * with a large basis does not stall the other clients. Errors are those of
 * the calculator, without a file name. @internal
 */
export async function makeCalculatorAsync(name: CalculatorName, text: string | null, signal?: AbortSignalLike): Promise<Calc> {
  const info = calculatorInfo(name);
  if (text === null) {
    if (info.defaultHypers === null) throw needsHypers(info);
    text = info.defaultHypers;
  }
  const o = signal ? { signal } : {};
  try {
    return await calculatorClass(name).fromJsonAsync(text, o);
  } catch (e) {
    if (signal?.aborted) throw e;
    // whatever the core's kind (a basis that cannot reach its spline accuracy
    // is numerical there), for the caller these are invalid hypers
    const path = (e as { path?: unknown }).path;
    throw coded('ACDC_INVALID_PARAMETER', `hypers: ${(e as Error).message.replace(/^invalid parameter: /, '')}`, typeof path === 'string' ? { path } : {});
  }
}
