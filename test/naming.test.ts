// Sync/async pairs are named the same way everywhere. Every exported function
// and every method of every exported class is classified in the tables below
// (a new export that is not fails the test), and the rules are checked by
// calling each form: a Promise form returns a promise (and reports bad input
// by rejecting it, never by throwing), a blocking form (`xSync`) returns its
// value (and throws). The documented API pins a few bare names as blocking
// (`cur(X, n): Int32Array`, `pca`, `gfre`, …): for those `xSync` is the same
// function and `xAsync` is the Promise form.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as acdc from 'acdc-ml';
import { LinearModel, SoapPowerSpectrum, System, TensorLinearModel, TensorMap } from 'acdc-ml';

type Fn = (...args: unknown[]) => unknown;
const api = acdc as unknown as Record<string, unknown>;

/** Exported functions that compute or do I/O: [Promise form, blocking form]. */
const FUNCTION_PAIRS: Array<[string, string]> = [
  ['readXyz', 'readXyzSync'],
  ['writeXyz', 'writeXyzSync'],
  ['readNpy', 'readNpySync'],
  ['writeNpy', 'writeNpySync'],
  ['loadModel', 'loadModelSync'],
  ['loadTensorModel', 'loadTensorModelSync'],
  ['writeChemiscope', 'writeChemiscopeSync'],
  ['fitAlchemicalCoupling', 'fitAlchemicalCouplingSync'],
  ['fitRadialContraction', 'fitRadialContractionSync'],
];

/** Bare names the documented API pins as blocking: x === xSync, xAsync is the Promise form. */
const BLOCKING_BARE = [
  'farthestPointSampling',
  'farthestPointSamplingWithScores',
  'cur',
  'curWithScores',
  'polynomialKernel',
  'structureKernel',
  'selectSamples',
  'gfre',
  'gfrd',
  'lfre',
  'localPredictionRigidity',
  'pca',
  'kernelPca',
];

/** Older names kept working: name → the function it is. */
const DEPRECATED_FUNCTIONS: Record<string, string> = { saveNpy: 'writeNpySync', loadNpy: 'readNpySync' };

/** Exported functions with no pair, and why. */
const UNPAIRED_FUNCTIONS: Record<string, string> = {
  parseXyz: 'text in memory to systems (documented blocking)',
  formatXyz: 'systems to text in memory (documented blocking)',
  iterXyz: 'an async iterator over a file (for await … of), streaming by design',
  toArray: 'a copy of values in memory',
  join: 'joins TensorMaps in memory',
  calculatorRegistry: 'a constant table',
  clebschGordan: 'a small table (documented blocking)',
  wignerD: 'a small matrix (documented blocking)',
  maxConcurrent: 'a number',
  abortError: 'builds an error',
  isAcdcError: 'a type guard',
  modelFromBuffer: 'bytes in memory',
  tensorModelFromBuffer: 'bytes in memory',
  modelFileKind: 'reads a header in memory',
  readTensorTargets: 'reads System.info in memory',
  chemiscopeInput: 'builds an object in memory',
  chemiscopeMapSettings: 'builds an object in memory',
  driveIpi: 'a socket loop until the server sends EXIT: only a Promise makes sense',
  ipiUnixPath: 'a path string',
};

/** Methods (instance, or static with `static `) that compute or do I/O: x returns a Promise, xSync blocks. */
const METHOD_PAIRS: Record<string, string[]> = {
  NeighborList: ['compute'],
  TensorMap: ['save', 'static load'],
  SphericalExpansion: ['compute'],
  SoapPowerSpectrum: ['compute'],
  SoapRadialSpectrum: ['compute'],
  EquivariantPowerSpectrum: ['compute'],
  SoapBispectrum: ['compute'],
  DensityCorrelations: ['compute'],
  SymmetryFunctions: ['compute'],
  CoulombMatrix: ['compute'],
  SineMatrix: ['compute'],
  EwaldSumMatrix: ['compute'],
  Potential: ['predict', 'calibrateVariance', 'leaveOneOut', 'calibrateVarianceLeaveOneOut', 'forceVariance', 'forceLeaveOneOut', 'calibrateForceVarianceLeaveOneOut', 'calibrateForceVariance', 'save'],
  SparseGPR: ['predict', 'calibrateVariance', 'leaveOneOut', 'calibrateVarianceLeaveOneOut', 'forceVariance', 'forceLeaveOneOut', 'calibrateForceVarianceLeaveOneOut', 'calibrateForceVariance', 'save', 'static fit', 'static load'],
  LinearModel: ['predict', 'calibrateVariance', 'leaveOneOut', 'calibrateVarianceLeaveOneOut', 'forceVariance', 'forceLeaveOneOut', 'calibrateForceVarianceLeaveOneOut', 'calibrateForceVariance', 'save', 'static fit', 'static load'],
  TensorModel: ['predict', 'save'],
  SparseTensorGPR: ['predict', 'save', 'static fit', 'static load'],
  TensorLinearModel: ['predict', 'save', 'static fit', 'static load'],
};

/** Methods whose bare name is blocking (a factory, as `new X(hypers)` is): xSync is x, xAsync the Promise form. */
const BLOCKING_BARE_METHODS = ['static fromJson'];

/** Older method names kept working, as the Promise form they now equal. */
const DEPRECATED_METHODS: Record<string, Record<string, string>> = { TensorMap: { saveAsync: 'save', 'static loadAsync': 'static load' } };

/** Methods and getters with no pair: in-memory work or metadata. */
const UNPAIRED_METHODS = new Set([
  'size', 'data', 'count', 'row', 'entry', 'position', 'column', 'toData', 'static fromData', 'shape', 'gradient', 'gradientsList', 'toArray',
  'blocks', 'length', 'select', 'keysToProperties', 'keysToSamples', 'sumOverSamples', 'meanOverSamples', 'toBuffer', 'static fromBuffer',
  'static join', 'block', 'name', 'nativeCalculator', 'keys', 'static calculatorName', 'kind', 'hypers', 'species', 'e0', 'features',
  'featureCount', 'weights', 'fitInfo', 'priorWeight', 'varianceScale', 'varianceNoise', 'forceVarianceCalibration', 'zeta', 'delta', 'sparseCounts', 'target', 'charges',
]);

function isClass(v: unknown): v is { prototype: object } & Fn {
  return typeof v === 'function' && /^class\b/.test(Function.prototype.toString.call(v));
}

/** Every member of a class, statics prefixed with `static `, inherited ones included. */
function members(cls: { prototype: object } & Fn): string[] {
  const out = new Set<string>();
  for (const n of Object.getOwnPropertyNames(cls)) if (!['length', 'name', 'prototype'].includes(n)) out.add(`static ${n}`);
  for (let p: object | null = cls.prototype; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const n of Object.getOwnPropertyNames(p)) if (n !== 'constructor') out.add(n);
  }
  let base = Object.getPrototypeOf(cls);
  while (isClass(base)) {
    for (const n of Object.getOwnPropertyNames(base)) if (!['length', 'name', 'prototype'].includes(n)) out.add(`static ${n}`);
    base = Object.getPrototypeOf(base);
  }
  return [...out];
}

/** Calls f with bad input: a Promise form must hand back a promise that rejects; a blocking form must throw. */
async function form(f: () => unknown): Promise<'promise' | 'throws' | 'returned'> {
  let r: unknown;
  try {
    r = f();
  } catch {
    return 'throws';
  }
  if (r && typeof (r as Promise<unknown>).then === 'function') {
    await expect(r as Promise<unknown>).rejects.toBeInstanceOf(Error);
    return 'promise';
  }
  return 'returned';
}

const hypers = {
  cutoff: { radius: 3, smoothing: { type: 'ShiftedCosine' as const, width: 0.5 } },
  density: { type: 'Gaussian' as const, width: 0.3 },
  basis: { type: 'TensorProduct' as const, max_angular: 1, radial: { type: 'Gto' as const, max_radial: 1 } },
};
const water = (k: number) =>
  new System({ types: [8, 1, 1], positions: [0, 0, 0, 0.96 + 0.02 * k, 0, 0, -0.24, 0.93 - 0.03 * k, 0.05 * k], info: { energy: -14 - 0.1 * k, dipole: [0.1 * k, 0.2, -0.1] } });
const frames = [0, 1, 2, 3].map(water);

describe('sync/async names', () => {
  it('every exported function is classified, and every pair is named xSync / x (or x / xAsync where the bare name is pinned blocking)', () => {
    const functions = Object.keys(api).filter((k) => typeof api[k] === 'function' && !isClass(api[k]));
    const classified = new Set([
      ...FUNCTION_PAIRS.flat(),
      ...BLOCKING_BARE.flatMap((n) => [n, `${n}Sync`, `${n}Async`]),
      ...Object.keys(DEPRECATED_FUNCTIONS),
      ...Object.keys(UNPAIRED_FUNCTIONS),
    ]);
    expect(functions.filter((n) => !classified.has(n)), 'exported functions not in the tables').toEqual([]);
    expect([...classified].filter((n) => !functions.includes(n)), 'table entries not exported').toEqual([]);
    // the naming rule itself, independent of the tables
    for (const n of functions.filter((n) => n.endsWith('Sync'))) {
      const base = n.slice(0, -4);
      expect(typeof api[base], `${n} has no ${base}`).toBe('function');
      if (BLOCKING_BARE.includes(base)) expect(typeof api[`${base}Async`], `${n} has no ${base}Async`).toBe('function');
    }
    for (const n of functions.filter((n) => n.endsWith('Async'))) {
      expect(BLOCKING_BARE, `${n}: an Async suffix only where the bare name is pinned blocking`).toContain(n.slice(0, -5));
    }
    for (const n of BLOCKING_BARE) expect(api[`${n}Sync`], `${n}Sync is ${n}`).toBe(api[n]);
    for (const [old, now] of Object.entries(DEPRECATED_FUNCTIONS)) expect(api[old], `${old} is ${now}`).toBe(api[now]);
  });

  it('the Promise forms return promises that reject on bad input; the blocking forms throw', async () => {
    for (const [a, s] of FUNCTION_PAIRS) {
      expect(await form(() => (api[a] as Fn)(undefined, undefined, undefined)), `${a}(bad)`).toBe('promise');
      expect(await form(() => (api[s] as Fn)(undefined, undefined, undefined)), `${s}(bad)`).toBe('throws');
    }
    for (const n of BLOCKING_BARE) {
      expect(await form(() => (api[`${n}Async`] as Fn)(undefined, undefined, undefined)), `${n}Async(bad)`).toBe('promise');
      expect(await form(() => (api[n] as Fn)(undefined, undefined, undefined)), `${n}(bad)`).toBe('throws');
    }
  });

  it('fitRadialContraction / fitAlchemicalCoupling: the Sync forms return the hyper-parameters the Promise forms resolve to', async () => {
    expect(acdc.fitRadialContractionSync(frames, hypers, { maxRadial: 0 })).toEqual(await acdc.fitRadialContraction(frames, hypers, { maxRadial: 0 }));
    expect(acdc.fitAlchemicalCouplingSync(frames, hypers, { pseudoTypes: 1 })).toEqual(await acdc.fitAlchemicalCoupling(frames, hypers, { pseudoTypes: 1 }));
    expect(() => acdc.fitAlchemicalCouplingSync(frames, hypers, { pseudoTypes: 3 })).toThrow(/pseudoTypes must be an integer between 1 and the number of elements in the systems \(2\), got 3/);
    await expect(acdc.fitAlchemicalCoupling(frames, hypers, { pseudoTypes: 3 })).rejects.toThrow(/\(2\), got 3/);
  });

  it('every method of every exported class is classified; every xSync method has a Promise form x and the reverse', () => {
    const classes = Object.keys(api).filter((k) => isClass(api[k]));
    for (const c of classes) {
      const all = members(api[c] as { prototype: object } & Fn);
      const pairs = METHOD_PAIRS[c] ?? [];
      const deprecated = Object.keys(DEPRECATED_METHODS[c] ?? {});
      const bare = BLOCKING_BARE_METHODS.filter((m) => all.includes(m));
      const known = new Set([...pairs, ...pairs.map((m) => `${m}Sync`), ...bare.flatMap((m) => [m, `${m}Sync`, `${m}Async`]), ...deprecated, ...UNPAIRED_METHODS]);
      expect(all.filter((m) => !known.has(m)), `${c}: members not in the tables`).toEqual([]);
      for (const m of pairs) {
        expect(all, `${c}.${m}`).toContain(m);
        expect(all, `${c}.${m}Sync`).toContain(`${m}Sync`);
      }
      for (const m of all.filter((m) => m.endsWith('Sync'))) expect([...pairs, ...bare], `${c}.${m} has a Promise form`).toContain(m.slice(0, -4));
      for (const m of all.filter((m) => m.endsWith('Async'))) expect([...deprecated, ...bare.map((b) => `${b}Async`)], `${c}.${m}: Async only where the bare name blocks, or deprecated`).toContain(m);
      for (const m of bare) {
        const cls = api[c] as unknown as Record<string, unknown>;
        const name = m.replace('static ', '');
        expect(all, `${c}.${m}Sync and ${m}Async`).toEqual(expect.arrayContaining([`${m}Sync`, `${m}Async`]));
        expect(typeof cls[`${name}Sync`]).toBe('function');
      }
    }
    expect(Object.keys(METHOD_PAIRS).filter((c) => !classes.includes(c)), 'table classes not exported').toEqual([]);
  });

  it('compute on every calculator, NeighborList and DensityCorrelations: a rejected promise / a throw on bad input', async () => {
    const built: Array<[string, { compute: Fn; computeSync: Fn }]> = [
      ['NeighborList', new acdc.NeighborList({ cutoff: 3 }) as never],
      ['DensityCorrelations', new acdc.DensityCorrelations({ n_correlations: 1, max_angular: 2 }) as never],
    ];
    for (const e of acdc.calculatorRegistry()) {
      const cls = Object.values(api).find((v) => (v as { calculatorName?: string }).calculatorName === e.name) as { fromJson(text: string): never };
      const text = e.family === 'classic' ? e.exampleHypers : JSON.stringify(e.name === 'soap_radial_spectrum' ? { ...hypers, basis: { radial: hypers.basis.radial } } : hypers);
      built.push([e.name, cls.fromJson(text)]);
    }
    expect(built.length).toBeGreaterThanOrEqual(11);
    for (const [name, calc] of built) {
      expect(await form(() => calc.compute(undefined)), `${name}.compute(bad)`).toBe('promise');
      expect(await form(() => calc.computeSync(undefined)), `${name}.computeSync(bad)`).toBe('throws');
    }
  });

  it('methods: the Promise forms resolve to what the blocking forms return, and reject on bad input', async () => {
    const soap = new SoapPowerSpectrum(hypers);
    const tm = soap.computeSync(frames);
    const linear = LinearModel.fitSync(frames, { hypers, targets: { energy: 'energy' }, regularizer: 1e-3 } as never);
    const tensor = TensorLinearModel.fitSync(frames, { hypers, target: 'dipole', regularizer: 1e-3 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-naming-'));
    try {
      const same = (a: unknown, b: unknown) => expect(JSON.stringify(a, (_k, v) => (ArrayBuffer.isView(v) ? Array.from(v as Float64Array) : v))).toBe(JSON.stringify(b, (_k, v) => (ArrayBuffer.isView(v) ? Array.from(v as Float64Array) : v)));
      // fromJson (blocking, as the constructor) / fromJsonSync / fromJsonAsync (a Promise)
      const text = JSON.stringify(hypers);
      for (const built of [SoapPowerSpectrum.fromJson(text), SoapPowerSpectrum.fromJsonSync(text), await SoapPowerSpectrum.fromJsonAsync(text)]) {
        expect(Buffer.from(built.computeSync(frames).toBuffer()).equals(Buffer.from(tm.toBuffer()))).toBe(true);
      }
      expect(await form(() => SoapPowerSpectrum.fromJsonAsync('{"cutoff": '))).toBe('promise');
      expect(await form(() => SoapPowerSpectrum.fromJsonSync('{"cutoff": '))).toBe('throws');
      // compute
      const p = soap.compute(frames);
      expect(p).toBeInstanceOf(Promise);
      expect(Buffer.from((await p).toBuffer()).equals(Buffer.from(tm.toBuffer()))).toBe(true);
      // TensorMap: save / load are Promises now, as model.save / SparseGPR.load; the Sync forms block
      const [a, b, c] = ['a.mts', 'b.mts', 'c.mts'].map((f) => path.join(dir, f));
      const saved = tm.save(a);
      expect(saved).toBeInstanceOf(Promise);
      expect(await saved).toBeUndefined();
      expect(tm.saveSync(b)).toBeUndefined();
      await tm.saveAsync(c);
      const bytes = fs.readFileSync(b);
      expect(fs.readFileSync(a).equals(bytes)).toBe(true);
      expect(fs.readFileSync(c).equals(bytes)).toBe(true);
      const loading = TensorMap.load(a);
      expect(loading).toBeInstanceOf(Promise);
      for (const back of [await loading, TensorMap.loadSync(a), await TensorMap.loadAsync(a)]) {
        expect(Buffer.from(back.toBuffer()).equals(Buffer.from(tm.toBuffer()))).toBe(true);
      }
      expect(await form(() => tm.save(''))).toBe('promise');
      expect(await form(() => TensorMap.load(path.join(dir, 'missing.mts')))).toBe('promise');
      expect(await form(() => tm.saveSync(''))).toBe('throws');
      expect(await form(() => TensorMap.loadSync(path.join(dir, 'missing.mts')))).toBe('throws');
      // models: predict, save, load, fit, calibrateVariance
      for (const [model, cls] of [[linear, LinearModel], [tensor, TensorLinearModel]] as const) {
        same(await model.predict(frames), model.predictSync(frames));
        expect(await form(() => model.predict(undefined as never))).toBe('promise');
        expect(await form(() => model.predictSync(undefined as never))).toBe('throws');
        const file = path.join(dir, `${model.kind}.acdc`);
        const s = model.save(file);
        expect(s).toBeInstanceOf(Promise);
        await s;
        expect(await form(() => model.save(''))).toBe('promise');
        expect(await form(() => model.saveSync(''))).toBe('throws');
        expect(await form(() => (cls.load as Fn)(path.join(dir, 'missing.acdc')))).toBe('promise');
        expect(await form(() => (cls.loadSync as Fn)(path.join(dir, 'missing.acdc')))).toBe('throws');
        expect(await form(() => (cls.fit as Fn)(frames, {}))).toBe('promise');
        expect(await form(() => (cls.fitSync as Fn)(frames, {}))).toBe('throws');
      }
      expect(await form(() => linear.calibrateVariance(undefined as never))).toBe('promise');
      expect(await form(() => linear.calibrateVarianceSync(undefined as never))).toBe('throws');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
