// Alchemical compression (density.alchemical): the pseudo-element expansion
// equals U applied to the species-resolved expansion (≤ 1e-10 relative,
// values and gradients), the pseudo-element power spectrum equals U ⊗ U
// applied to the species-resolved power spectrum, gradients equal finite
// differences, the feature count grows with B not S, and
// fitAlchemicalCoupling returns an orthonormal U.
import { describe, expect, it } from 'vitest';
import { fitAlchemicalCoupling, SoapPowerSpectrum, SphericalExpansion, type SoapHypers, type TensorMap } from 'acdc-ml';
import { gradientErrors, maxAbs, molecule, periodicSystem, rows } from './cg_helpers';

const TYPES = [1, 6, 8];
const U = [
  [0.8, -0.3, 0.5],
  [0.1, 0.9, -0.4],
];

function hypers(alchemical = true, basis: SoapHypers['basis'] = { type: 'TensorProduct', max_angular: 3, radial: { type: 'Gto', max_radial: 3 } }): SoapHypers {
  return {
    cutoff: { radius: 3.5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
    density: { type: 'Gaussian', width: 0.35, ...(alchemical ? { alchemical: { types: TYPES, coupling: U } } : {}) },
    basis,
  };
}

/** Dense map key → values of every (sample, component, property) entry, keyed by labels. */
function entries(tm: TensorMap, typeDim: string, gradient?: 'positions'): Map<string, number> {
  const out = new Map<string, number>();
  for (let b = 0; b < tm.keys.count; b++) {
    const key = tm.keys.entry(b);
    const rest = tm.keys.names.filter((n) => n !== typeDim).map((n) => key[n]);
    const block = tm.block(b);
    const props = rows(block.properties);
    const target = gradient ? block.gradient(gradient)! : block;
    const comps = target.components.map((c) => c.count).reduce((a, c) => a * c, 1);
    const np = props.length;
    for (let s = 0; s < target.samples.count; s++) {
      const sample = target.samples.row(s);
      const id = gradient ? [...block.samples.row(sample[0]), sample[2]] : Array.from(sample);
      for (let c = 0; c < comps; c++) {
        for (let p = 0; p < np; p++) out.set(`${rest}|${key[typeDim]}|${id}|${c}|${props[p]}`, target.values[(s * comps + c) * np + p]);
      }
    }
  }
  return out;
}

function expectedExpansion(species: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of species) {
    const [rest, type, ...tail] = k.split('|');
    const a = TYPES.indexOf(Number(type));
    U.forEach((row, b) => {
      const key = [rest, String(b), ...tail].join('|');
      out.set(key, (out.get(key) ?? 0) + row[a] * v);
    });
  }
  return out;
}

function compareMaps(got: Map<string, number>, want: Map<string, number>, tol: number) {
  const scale = Math.max(...Array.from(want.values(), Math.abs));
  let compared = 0;
  for (const [k, v] of want) {
    const g = got.get(k) ?? 0;
    expect(Math.abs(g - v), k).toBeLessThanOrEqual(tol * scale);
    compared++;
  }
  for (const [k, g] of got) if (!want.has(k)) expect(Math.abs(g), k).toBeLessThanOrEqual(tol * scale);
  return compared;
}

describe('alchemical compression', () => {
  for (const [name, make] of [['periodic', periodicSystem], ['molecule', molecule]] as const) {
    it(`SphericalExpansion with U = U · species-resolved expansion, values and gradients (${name})`, () => {
      const system = make();
      const species = new SphericalExpansion(hypers(false)).computeSync(system, { gradients: ['positions'] });
      const pseudo = new SphericalExpansion(hypers()).computeSync(system, { gradients: ['positions'] });
      expect(pseudo.keys.names).toEqual(['o3_lambda', 'o3_sigma', 'center_type', 'pseudo_type']);
      expect(new Set(Array.from({ length: pseudo.keys.count }, (_, b) => pseudo.keys.entry(b).pseudo_type))).toEqual(new Set([0, 1]));
      expect(compareMaps(entries(pseudo, 'pseudo_type'), expectedExpansion(entries(species, 'neighbor_type')), 1e-10)).toBeGreaterThan(500);
      compareMaps(entries(pseudo, 'pseudo_type', 'positions'), expectedExpansion(entries(species, 'neighbor_type', 'positions')), 1e-10);
    });

    it(`SoapPowerSpectrum with U = U ⊗ U · species-resolved power spectrum (${name})`, () => {
      const system = make();
      const species = new SoapPowerSpectrum(hypers(false)).computeSync(system);
      const pseudo = new SoapPowerSpectrum(hypers()).computeSync(system);
      expect(pseudo.keys.names).toEqual(['center_type', 'pseudo_1_type', 'pseudo_2_type']);
      // raw[c][a1][a2][l,n1,n2] = Σ_m c_a1 c_a2 (−1)^l/√(2l+1), without the √2 of distinct pairs
      const raw = new Map<string, number>();
      for (let b = 0; b < species.keys.count; b++) {
        const { center_type: c, neighbor_1_type: t1, neighbor_2_type: t2 } = species.keys.entry(b);
        const block = species.block(b);
        const props = rows(block.properties);
        const cross = t1 === t2 ? 1 : Math.SQRT2;
        for (let s = 0; s < block.samples.count; s++) {
          const id = block.samples.row(s).join(',');
          props.forEach(([l, n1, n2], p) => {
            const v = block.values[s * props.length + p] / cross;
            raw.set(`${c}|${id}|${TYPES.indexOf(t1)}|${TYPES.indexOf(t2)}|${l},${n1},${n2}`, v);
            raw.set(`${c}|${id}|${TYPES.indexOf(t2)}|${TYPES.indexOf(t1)}|${l},${n2},${n1}`, v);
          });
        }
      }
      let compared = 0;
      const scale = maxAbs(Float64Array.from(raw.values()));
      for (let b = 0; b < pseudo.keys.count; b++) {
        const { center_type: c, pseudo_1_type: b1, pseudo_2_type: b2 } = pseudo.keys.entry(b);
        const block = pseudo.block(b);
        const props = rows(block.properties);
        const cross = b1 === b2 ? 1 : Math.SQRT2;
        for (let s = 0; s < block.samples.count; s++) {
          const id = block.samples.row(s).join(',');
          props.forEach(([l, n1, n2], p) => {
            let want = 0;
            for (let a1 = 0; a1 < 3; a1++) for (let a2 = 0; a2 < 3; a2++) want += U[b1][a1] * U[b2][a2] * (raw.get(`${c}|${id}|${a1}|${a2}|${l},${n1},${n2}`) ?? 0);
            expect(Math.abs(block.values[s * props.length + p] - cross * want)).toBeLessThanOrEqual(1e-10 * scale);
            compared++;
          });
        }
      }
      expect(compared).toBeGreaterThan(300);
    });

    it(`gradients equal finite differences, also with a ragged basis (${name})`, () => {
      const system = make();
      const grads = system.pbc[0] ? (['positions', 'strain'] as const) : (['positions'] as const);
      for (const h of [hypers(), hypers(true, { type: 'LaplacianEigenstate', max_radial: 2, max_angular: 3 })]) {
        for (const calc of [new SoapPowerSpectrum(h), new SphericalExpansion(h)]) {
          const tm = calc.computeSync(system, { gradients: [...grads] });
          const err = gradientErrors(system, tm, (s) => calc.computeSync(s));
          expect(err.positions).toBeLessThan(1e-6);
          expect(err.strain).toBeLessThan(1e-6);
        }
      }
    });
  }

  it('the feature count grows with B, not S', () => {
    const system = periodicSystem();
    const species = new SoapPowerSpectrum(hypers(false)).computeSync(system);
    const one = new SoapPowerSpectrum({ ...hypers(), density: { type: 'Gaussian', width: 0.35, alchemical: { types: TYPES, coupling: [U[0]] } } }).computeSync(system);
    const two = new SoapPowerSpectrum(hypers()).computeSync(system);
    // (l, n_1, n_2) per block: 4 · 4 · 4; blocks per centre type: up to S(S+1)/2 = 6
    // neighbour pairs species-resolved, exactly B(B+1)/2 = 1 and 3 with U
    for (const tm of [species, one, two]) for (let b = 0; b < tm.keys.count; b++) expect(tm.block(b).properties.count).toBe(64);
    expect(species.keys.count).toBeGreaterThan(9);
    expect(one.keys.count).toBe(3 * 1);
    expect(two.keys.count).toBe(3 * 3);
  });

  it('selectedKeys use the pseudo-element names', () => {
    const system = periodicSystem();
    const all = new SoapPowerSpectrum(hypers()).computeSync(system);
    const some = new SoapPowerSpectrum(hypers()).computeSync(system, { selectedKeys: [{ pseudo_1_type: 0, pseudo_2_type: 1 }] });
    expect(some.keys.count).toBe(3);
    for (let b = 0; b < some.keys.count; b++) expect(Array.from(some.block(b).values)).toEqual(Array.from(all.block(some.keys.entry(b)).values));
  });

  it('errors name the field and value', () => {
    const make = (alchemical: object) => () => new SoapPowerSpectrum({ ...hypers(), density: { type: 'Gaussian', width: 0.35, alchemical } } as SoapHypers);
    expect(make({ types: [1, 6], coupling: [[1, 0, 0]] })).toThrow(/coupling\[0\] has 3 entries, expected 2/);
    expect(make({ types: [1, 1], coupling: [[1, 0]] })).toThrow(/lists 1 twice/);
    expect(make({ types: [1], coupling: [] })).toThrow(/at least one row/);
    const missing = new SoapPowerSpectrum({ ...hypers(), density: { type: 'Gaussian', width: 0.35, alchemical: { types: [1, 6], coupling: [[1, 1]] } } });
    expect(() => missing.computeSync(periodicSystem())).toThrow(/atomic type 8, which density.alchemical.types/);
  });

  it('fitAlchemicalCoupling: orthonormal U; with B = S the coefficient norms are kept', async () => {
    const systems = [periodicSystem(), molecule()];
    const fitted = await fitAlchemicalCoupling(systems, hypers(false), { pseudoTypes: 2 });
    const alchemical = (fitted.density as { alchemical: { types: number[]; coupling: number[][] } }).alchemical;
    expect(alchemical.types).toEqual(TYPES);
    expect(alchemical.coupling.length).toBe(2);
    for (const r of alchemical.coupling) for (const s of alchemical.coupling) {
      const dot = r.reduce((a, x, i) => a + x * s[i], 0);
      expect(Math.abs(dot - (r === s ? 1 : 0))).toBeLessThan(1e-12);
    }
    const full = await fitAlchemicalCoupling(systems, hypers(false), { pseudoTypes: 3 });
    const a = new SphericalExpansion(hypers(false)).computeSync(systems);
    const b = new SphericalExpansion(full).computeSync(systems);
    const norm = (tm: TensorMap) => {
      let s = 0;
      for (let k = 0; k < tm.keys.count; k++) for (const v of tm.block(k).values) s += v * v;
      return s;
    };
    expect(Math.abs(norm(a) - norm(b))).toBeLessThan(1e-12 * norm(a));
    await expect(fitAlchemicalCoupling(systems, hypers(false), { pseudoTypes: 4 })).rejects.toThrow(/pseudoTypes must be an integer between 1 and .* \(3\), got 4/);
  });
});
