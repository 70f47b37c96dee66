// Real Clebsch–Gordan coefficients, Wigner D matrices and DensityCorrelations,
// against featomic 0.6.7 (scripts/reference/featomic_cg_fixtures.py) and
// against symmetry: Y_l(R r) = D^l(R) Y_l(r) checked through the spherical
// expansion, gradients through central finite differences.
import { describe, expect, it } from 'vitest';
import { clebschGordan, DensityCorrelations, EquivariantPowerSpectrum, SphericalExpansion, System, wignerD, type SoapHypers } from 'acdc-ml';
import { compareWithFixture, fixtureSystems, gradientErrors, loadFixture, maxAbs, molecule, periodicSystem, rotation, rows, transformed } from './cg_helpers';

const hypers = (maxAngular: number, maxRadial: number): SoapHypers => ({
  cutoff: { radius: 3.5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: maxAngular, radial: { type: 'Gto', max_radial: maxRadial }, spline_accuracy: null },
});

describe('clebschGordan', () => {
  it("equals featomic's stored coefficients times (−1)^(l1+l2+L), l ≤ 3", () => {
    const fixture = loadFixture('cg');
    expect(fixture.versions.featomic).toBe('0.6.7');
    let worst = 0;
    for (const { l1, l2, L, values } of fixture.clebsch_gordan!) {
      const got = clebschGordan(l1, l2, L);
      expect(got.length).toBe((2 * l1 + 1) * (2 * l2 + 1) * (2 * L + 1));
      const sign = (l1 + l2 + L) % 2 === 0 ? 1 : -1;
      values.forEach((v, k) => (worst = Math.max(worst, Math.abs(got[k] - sign * v))));
    }
    expect(fixture.clebsch_gordan!.length).toBe(40); // l1, l2 ≤ 3 and |l1 − l2| ≤ L ≤ min(l1 + l2, 4)
    expect(worst).toBeLessThan(1e-14);
  });

  it('rejects bad degrees', () => {
    expect(() => clebschGordan(-1, 0, 1)).toThrow(/l1 must be a non-negative integer/);
    expect(() => clebschGordan(1, 0.5, 1)).toThrow(/l2/);
    expect(() => clebschGordan(30, 30, 0)).toThrow(/largest supported degree/);
    expect(Array.from(clebschGordan(1, 1, 3)).every((v) => v === 0)).toBe(true);
  });
});

describe('wignerD', () => {
  it('is Π R Πᵀ for l = 1 with the (y, z, x) order', () => {
    const R = rotation([1, 2, -0.5], 0.9);
    const D = wignerD(1, R);
    const perm = [1, 2, 0];
    for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) expect(Math.abs(D[3 * a + b] - R[3 * perm[a] + perm[b]])).toBeLessThan(1e-14);
  });

  it('rotates the spherical expansion: every block X → D^l(R) X (l ≤ 6)', () => {
    const se = new SphericalExpansion(hypers(6, 3));
    const system = periodicSystem();
    const R = rotation([-0.2, 0.5, 0.9], 1.3);
    const tm = se.computeSync(system);
    const rotated = se.computeSync(transformed(system, R));
    let worst = 0;
    let scale = 0;
    for (const block of tm.blocks()) scale = Math.max(scale, maxAbs(block.values));
    tm.blocks().forEach((block, b) => {
      const l = tm.keys.entry(b).o3_lambda;
      const D = wignerD(l, R);
      const n = 2 * l + 1;
      const p = block.properties.count;
      const other = rotated.block(b);
      for (let s = 0; s < block.samples.count; s++)
        for (let mu = 0; mu < n; mu++)
          for (let q = 0; q < p; q++) {
            let e = 0;
            for (let nu = 0; nu < n; nu++) e += D[mu * n + nu] * block.values[(s * n + nu) * p + q];
            worst = Math.max(worst, Math.abs(other.values[(s * n + mu) * p + q] - e) / scale);
          }
    });
    expect(worst).toBeLessThan(1e-12);
  });

  it('rejects matrices that are not proper rotations', () => {
    expect(() => wignerD(2, [1, 0, 0, 0, 1, 0, 0, 0, -1])).toThrow(/determinant/);
    expect(() => wignerD(2, [1, 0, 0])).toThrow(/9 numbers/);
    expect(() => wignerD(2, [2, 0, 0, 0, 1, 0, 0, 0, 1])).toThrow(/not orthogonal/);
  });
});

describe('DensityCorrelations against featomic', () => {
  for (const name of ['molecule', 'periodic']) {
    const fixture = loadFixture(name);
    for (const calc of fixture.calculations.filter((c) => c.kind === 'density_correlations')) {
      const { n_correlations: n, max_angular: maxAngular, angular_cutoff: cutoff } = calc.options;
      it(`${name}, n_correlations ${n}, angularCutoff ${cutoff}`, async () => {
        const density = new SphericalExpansion(calc.hypers).computeSync(fixtureSystems(fixture)).keysToProperties('neighbor_type');
        const dc = new DensityCorrelations({ n_correlations: n!, max_angular: maxAngular! });
        const tm = await dc.compute(density, cutoff === null || cutoff === undefined ? {} : { angularCutoff: cutoff });
        expect(compareWithFixture(tm, calc, 1e-10)).toBeLessThan(1e-10);
      });
    }
  }

  it('n_correlations 1 then keysToProperties(l_1, l_2) is EquivariantPowerSpectrum with neighbours in properties', () => {
    const system = periodicSystem();
    const h = hypers(2, 2);
    const density = new SphericalExpansion(h).computeSync(system).keysToProperties('neighbor_type');
    const dc = new DensityCorrelations({ n_correlations: 1, max_angular: 4 }).computeSync(density).keysToProperties(['l_1', 'l_2']);
    const ls = new EquivariantPowerSpectrum(h).computeSync(system, { neighborsToProperties: true });
    expect(rows(dc.keys).map(String).sort()).toEqual(rows(ls.keys).map(String).sort());
    for (let b = 0; b < ls.keys.count; b++) {
      const x = ls.block(b);
      const y = dc.block(ls.keys.entry(b));
      expect(rows(y.properties)).toEqual(rows(x.properties));
      expect(rows(y.samples)).toEqual(rows(x.samples));
      for (let k = 0; k < x.values.length; k++) expect(Math.abs(x.values[k] - y.values[k])).toBeLessThan(1e-14 * Math.max(maxAbs(x.values), 1e-300));
    }
  });

  it('key counts of skip_redundant true / false are featomic\'s (H2CO, l_max 2, n_correlations 2: 186 / 423)', () => {
    // formaldehyde (ase.build.molecule('H2CO')); featomic 0.6.7 gives 186 and 423 keys, 216 properties
    const h2co = new System({ types: [8, 6, 1, 1], positions: [0, 0, 0.683501, 0, 0, -0.536614, 0, 0.93439, -1.124164, 0, -0.93439, -1.124164] });
    const density = new SphericalExpansion(hypers(2, 1)).computeSync(h2co).keysToProperties('neighbor_type');
    const skip = new DensityCorrelations({ n_correlations: 2, max_angular: 6 }).computeSync(density);
    const all = new DensityCorrelations({ n_correlations: 2, max_angular: 6, skip_redundant: false }).computeSync(density);
    expect(skip.keys.count).toBe(186);
    expect(all.keys.count).toBe(423);
    expect(skip.block(0).properties.count).toBe(216);
  });

  it('selects keys, and rejects settings featomic rejects', () => {
    const density = new SphericalExpansion(hypers(2, 1)).computeSync(molecule()).keysToProperties('neighbor_type');
    const tm = new DensityCorrelations({ n_correlations: 2, max_angular: 6 }).computeSync(density, { selectedKeys: [{ o3_lambda: 0, o3_sigma: 1 }] });
    expect(rows(tm.keys).every(([l, s]) => l === 0 && s === 1)).toBe(true);
    expect(tm.keys.names).toEqual(['o3_lambda', 'o3_sigma', 'center_type', 'l_1', 'l_2', 'k_2', 'l_3']);
    expect(() => new DensityCorrelations({ n_correlations: 1, max_angular: 3 }).computeSync(density)).toThrow(/max_angular is 3 but the products need o3_lambda up to 4/);
    expect(() => new DensityCorrelations({ n_correlations: 0, max_angular: 3 })).toThrow(/n_correlations/);
    // @ts-expect-error: not an option
    expect(() => new DensityCorrelations({ n_correlations: 1, max_angular: 3, cutoff: 2 })).toThrow(/unknown DensityCorrelations option "cutoff"/);
    expect(() => new DensityCorrelations({ n_correlations: 1, max_angular: 4 }).computeSync(density, { angularCutoff: -1 })).toThrow(/angularCutoff/);
  });

  it('carries gradients through (central finite differences, relative error ≤ 1e-6)', () => {
    for (const system of [periodicSystem(), molecule()]) {
      const se = new SphericalExpansion(hypers(1, 1));
      const dc = new DensityCorrelations({ n_correlations: 2, max_angular: 2 });
      const run = (s: typeof system, gradients: ('positions' | 'strain')[] = []) =>
        dc.computeSync(se.computeSync(s, { gradients }).keysToProperties('neighbor_type'), { angularCutoff: 2 });
      const gradients: ('positions' | 'strain')[] = system.pbc[0] ? ['positions', 'strain'] : ['positions'];
      const err = gradientErrors(system, run(system, gradients), (s) => run(s));
      expect(err.positions).toBeLessThan(1e-6);
      expect(err.strain).toBeLessThan(1e-6);
    }
  });
});
