// The core's calculator registry, as the package exports it: every entry has
// its TypeScript class (found by `calculatorName`, as the featurize engine
// finds it), builds from its default (or example) hyper-parameters, and says
// the truth about its output and gradients.
import { describe, expect, it } from 'vitest';
import * as acdc from 'acdc-ml';
import { calculatorRegistry, System, type CalculatorInfo } from 'acdc-ml';

type Built = { name: string; compute: (s: System, o?: object) => Promise<acdc.TensorMap>; computeSync: (s: System, o?: object) => acdc.TensorMap };
type Cls = { calculatorName?: string; fromJson(text: string): Built; fromJsonAsync(text: string): Promise<Built> };

const classes = new Map<string, Cls>();
for (const value of Object.values(acdc)) {
  const n = (value as Cls | undefined)?.calculatorName;
  if (typeof value === 'function' && typeof n === 'string') classes.set(n, value as unknown as Cls);
}

const registry = calculatorRegistry();
// hyper-parameters small enough for a test; the matrices and symmetry functions use their example
const small = JSON.stringify({
  cutoff: { radius: 3, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 2, radial: { type: 'Gto', max_radial: 2 } },
});
function hypersFor(e: CalculatorInfo): string {
  if (e.family === 'classic') return e.exampleHypers;
  const d = JSON.parse(e.defaultHypers!);
  const s = JSON.parse(small);
  // keep the entry's basis form (the radial spectrum's has no `type`)
  return JSON.stringify({ ...s, basis: d.basis.type === undefined ? { radial: s.basis.radial } : s.basis });
}
const water = new System({ types: [8, 1, 1], positions: [0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0], cell: [6, 0, 0, 0, 6, 0, 0, 0, 6], pbc: [true, true, true] });

describe('calculatorRegistry()', () => {
  it('lists each calculator once, each with its TypeScript class', () => {
    const names = registry.map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names.length).toBeGreaterThanOrEqual(9);
    expect([...classes.keys()].sort()).toEqual([...names].sort());
  });

  it('is consistent: design rows only for dense invariants; defaults for the SOAP family; an example for every entry', () => {
    for (const e of registry) {
      if (e.designRows !== null) expect(e.dense && e.output === 'invariant', e.name).toBe(true);
      if (e.output === 'equivariant') expect(e.dense, e.name).toBe(false);
      expect(e.family === 'soap' ? e.defaultHypers !== null : e.defaultHypers === null, e.name).toBe(true);
      expect(e.exampleHypers.length, e.name).toBeGreaterThan(0);
      if (e.defaultHypers !== null) expect(() => JSON.parse(e.defaultHypers!), e.name).not.toThrow();
    }
  });

  for (const e of registry) {
    it(`${e.name}: builds, computes its output kind and the gradients it lists, sync = async`, async () => {
      const calc = classes.get(e.name)!.fromJson(hypersFor(e));
      expect(calc.name).toBe(e.name);
      const options = { gradients: e.gradients };
      const tm = calc.computeSync(water, options);
      const async = await calc.compute(water, options);
      expect(async.keys.count).toBe(tm.keys.count);
      for (let k = 0; k < tm.keys.count; k++) expect(Array.from(async.block(k).values)).toEqual(Array.from(tm.block(k).values));
      const block = tm.block(0);
      expect(block.samples.names.includes('atom')).toBe(e.output !== 'per_structure');
      expect(block.components.length > 0).toBe(e.output === 'equivariant');
      expect(block.gradientsList().sort()).toEqual([...e.gradients].sort());
    });
  }

  it('the default hyper-parameters build (the first entry is the front ends’ default)', () => {
    for (const e of registry.filter((r) => r.defaultHypers !== null && r.output === 'invariant' && r.dense)) {
      expect(classes.get(e.name)!.fromJson(e.defaultHypers!).name).toBe(e.name);
    }
    expect(registry[0].defaultHypers).not.toBeNull();
  });
});
