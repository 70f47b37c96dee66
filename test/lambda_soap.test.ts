// λ-SOAP (EquivariantPowerSpectrum) and the SOAP bispectrum: featomic 0.6.7
// fixtures (scripts/reference/featomic_cg_fixtures.py), rotations and
// inversion, the λ = 0 relation to the power spectrum, gradients against
// central finite differences, and a pair of environments that the power
// spectrum cannot tell apart but the bispectrum can.
import { describe, expect, it } from 'vitest';
import { EquivariantPowerSpectrum, SoapBispectrum, SoapPowerSpectrum, System, wignerD, type SoapHypers } from 'acdc-ml';
import { compareWithFixture, fixtureSystems, gradientErrors, loadFixture, maxAbs, molecule, periodicSystem, rotation, rows, transformed } from './cg_helpers';

/** Relative tolerances against featomic, per block (exact and splined radial integrals). */
const TOLERANCE = { exact: 1e-10, splined: 1e-7 };

const hypers = (maxAngular: number, maxRadial: number): SoapHypers => ({
  cutoff: { radius: 3.5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: maxAngular, radial: { type: 'Gto', max_radial: maxRadial }, spline_accuracy: null },
});

describe('EquivariantPowerSpectrum against featomic', () => {
  for (const name of ['molecule', 'periodic']) {
    const fixture = loadFixture(name);
    const systems = fixtureSystems(fixture);
    for (const calc of fixture.calculations.filter((c) => c.kind === 'equivariant_power_spectrum')) {
      const { neighbors_to_properties: n2p, neighbor_types: types } = calc.options;
      it(`${name}, ${calc.variant}, neighborsToProperties ${n2p}${types ? `, neighborTypes ${types}` : ''}`, async () => {
        const lsoap = new EquivariantPowerSpectrum(calc.hypers, types ? { neighborTypes: types } : {});
        const tm = await lsoap.compute(systems, { neighborsToProperties: n2p });
        const worst = compareWithFixture(tm, calc, TOLERANCE[calc.variant]);
        expect(worst).toBeLessThan(TOLERANCE[calc.variant]);
      });
    }
  }
});

describe('SoapBispectrum against featomic', () => {
  for (const name of ['molecule', 'periodic']) {
    it(`equals the o3_lambda = 0 blocks of DensityCorrelations(n_correlations = 2), ${name}`, () => {
      const fixture = loadFixture(name);
      const calc = fixture.calculations.find((c) => c.kind === 'density_correlations' && c.options.n_correlations === 2)!;
      const tm = new SoapBispectrum(calc.hypers).computeSync(fixtureSystems(fixture));
      const names = calc.keys.names;
      let compared = 0;
      calc.keys.values.forEach((key, b) => {
        const k = Object.fromEntries(names.map((n, i) => [n, key[i]]));
        if (k.o3_lambda !== 0 || k.o3_sigma !== 1) return;
        const want = calc.blocks[b];
        const block = tm.block({ center_type: k.center_type });
        const props = rows(block.properties);
        const width = props.length;
        want.properties.values.forEach((p, q) => {
          const col = props.findIndex((r) => r[0] === k.l_1 && r[1] === k.l_2 && r[2] === k.k_2 && r[3] === k.l_3 && r.slice(4).every((v, i) => v === p[i]));
          expect(col).toBeGreaterThanOrEqual(0);
          want.samples.values.forEach(([sys, atom], s) => {
            const row = block.samples.position({ system: sys, atom });
            const got = block.values[row * width + col];
            expect(Math.abs(got - want.values[s * want.properties.values.length + q])).toBeLessThanOrEqual(1e-10 * maxAbs(want.values));
            compared++;
          });
        });
      });
      expect(compared).toBeGreaterThan(100);
    });
  }
});

describe('EquivariantPowerSpectrum symmetries', () => {
  const calc = new EquivariantPowerSpectrum(hypers(3, 2));
  for (const [name, make] of [['periodic', periodicSystem], ['molecule', molecule]] as const) {
    it(`rotating positions and cell by R rotates every block by D^λ(R) (λ ≤ 6), ${name}`, () => {
      const system = make();
      const R = rotation([0.3, -0.7, 0.45], 2.2);
      const tm = calc.computeSync(system);
      const rotated = calc.computeSync(transformed(system, R));
      expect(rotated.keys).toEqual(tm.keys);
      // errors relative to the largest value of the tensor: some blocks are
      // pure rounding noise (pseudotensors of nearly symmetric environments)
      const scale = Math.max(...tm.blocks().map((block) => maxAbs(block.values)));
      let worst = 0;
      let maxLambda = 0;
      tm.blocks().forEach((block, b) => {
        const lambda = tm.keys.entry(b).o3_lambda;
        maxLambda = Math.max(maxLambda, lambda);
        const D = wignerD(lambda, R);
        const n = 2 * lambda + 1;
        const p = block.properties.count;
        const other = rotated.block(b);
        expect(other.samples).toEqual(block.samples);
        for (let s = 0; s < block.samples.count; s++) {
          for (let mu = 0; mu < n; mu++) {
            for (let q = 0; q < p; q++) {
              let expected = 0;
              for (let nu = 0; nu < n; nu++) expected += D[mu * n + nu] * block.values[(s * n + nu) * p + q];
              worst = Math.max(worst, Math.abs(other.values[(s * n + mu) * p + q] - expected) / scale);
            }
          }
        }
      });
      expect(maxLambda).toBe(6);
      expect(worst).toBeLessThan(1e-12);
    });

    it(`inversion multiplies every block by o3_sigma·(−1)^λ, ${name}`, () => {
      const system = make();
      const tm = calc.computeSync(system, { neighborsToProperties: true });
      const inverted = calc.computeSync(transformed(system, [-1, 0, 0, 0, -1, 0, 0, 0, -1]), { neighborsToProperties: true });
      const scale = Math.max(...tm.blocks().map((block) => maxAbs(block.values)));
      let worst = 0;
      let odd = 0;
      tm.blocks().forEach((block, b) => {
        const { o3_lambda: lambda, o3_sigma: sigma } = tm.keys.entry(b);
        const sign = sigma * (lambda % 2 === 0 ? 1 : -1);
        if (sign < 0) odd++;
        const other = inverted.block(b);
        for (let k = 0; k < block.values.length; k++) worst = Math.max(worst, Math.abs(other.values[k] - sign * block.values[k]) / scale);
      });
      expect(odd).toBeGreaterThan(0);
      expect(worst).toBeLessThan(1e-12);
    });
  }

  it('λ = 0 blocks are the SOAP power spectrum, ×√2 between distinct neighbour types', () => {
    const system = periodicSystem();
    const h = hypers(3, 2);
    const ps = new SoapPowerSpectrum(h).computeSync(system);
    const ls = new EquivariantPowerSpectrum(h).computeSync(system);
    let compared = 0;
    ps.blocks().forEach((p, b) => {
      const key = ps.keys.entry(b);
      const factor = key.neighbor_1_type === key.neighbor_2_type ? 1 : Math.SQRT2;
      for (const [a, c] of [[key.neighbor_1_type, key.neighbor_2_type], [key.neighbor_2_type, key.neighbor_1_type]]) {
        const l = ls.block({ o3_lambda: 0, o3_sigma: 1, center_type: key.center_type, neighbor_1_type: a, neighbor_2_type: c });
        const swapped = a !== key.neighbor_1_type;
        const lp = rows(l.properties);
        rows(p.properties).forEach(([ll, n1, n2], q) => {
          const col = lp.findIndex(([l1, l2, m1, m2]) => l1 === ll && l2 === ll && m1 === (swapped ? n2 : n1) && m2 === (swapped ? n1 : n2));
          for (let s = 0; s < p.samples.count; s++) {
            const row = l.samples.position({ system: p.samples.row(s)[0], atom: p.samples.row(s)[1] });
            const want = p.values[s * p.properties.count + q];
            const got = factor * l.values[row * l.properties.count + col];
            expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-14 * maxAbs(p.values));
            compared++;
          }
        });
      }
    });
    expect(compared).toBeGreaterThan(500);
  });
});

describe('gradients equal central finite differences (relative error ≤ 1e-6)', () => {
  for (const [name, make] of [['periodic', periodicSystem], ['molecule', molecule]] as const) {
    for (const n2p of [false, true]) {
      it(`EquivariantPowerSpectrum, ${name}, neighborsToProperties ${n2p}`, () => {
        const system = make();
        const calc = new EquivariantPowerSpectrum(hypers(2, 2), n2p ? { neighborTypes: [1, 6, 8] } : {});
        const gradients = system.pbc[0] ? (['positions', 'strain'] as const) : (['positions'] as const);
        const tm = calc.computeSync(system, { gradients: [...gradients], neighborsToProperties: n2p });
        const err = gradientErrors(system, tm, (s) => calc.computeSync(s, { neighborsToProperties: n2p }));
        expect(err.positions).toBeLessThan(1e-6);
        expect(err.strain).toBeLessThan(1e-6);
      });
    }
    it(`SoapBispectrum, ${name}`, () => {
      const system = make();
      const calc = new SoapBispectrum(hypers(2, 1));
      const gradients = system.pbc[0] ? (['positions', 'strain'] as const) : (['positions'] as const);
      const tm = calc.computeSync(system, { gradients: [...gradients] });
      const err = gradientErrors(system, tm, (s) => calc.computeSync(s));
      expect(err.positions).toBeLessThan(1e-6);
      expect(err.strain).toBeLessThan(1e-6);
    });
  }
});

describe('completeness beyond ν = 2', () => {
  // Four neighbours on a circle around the centre, at angles 2πk/8 for
  // k ∈ {0, 1, 2, 5} and k ∈ {0, 1, 3, 4}: both sets have the angular
  // distances {1, 1, 2, 3, 3, 4}·45°, so (same radius, same species) the
  // pair-angle distribution, hence the power spectrum of the centre, is
  // identical; but three consecutive neighbours exist only in the first, so
  // the environments are not related by any rotation or reflection
  // (a homometric pair; cf. S. N. Pozdnyakov et al., Phys. Rev. Lett. 125,
  // 166001 (2020), doi:10.1103/PhysRevLett.125.166001).
  const ring = (ks: number[]) =>
    new System({ types: [6, 1, 1, 1, 1], positions: [0, 0, 0, ...ks.flatMap((k) => [1.6 * Math.cos((Math.PI * k) / 4), 1.6 * Math.sin((Math.PI * k) / 4), 0])] });
  const h: SoapHypers = { ...hypers(4, 4), cutoff: { radius: 2.5, smoothing: { type: 'ShiftedCosine', width: 0.5 } } };

  it('the power spectrum of the centre is the same, the bispectrum differs', () => {
    const [a, b] = [ring([0, 1, 2, 5]), ring([0, 1, 3, 4])];
    const centre = (tm: ReturnType<SoapPowerSpectrum['computeSync']>) =>
      tm.blocks().flatMap((block, k) => (tm.keys.entry(k).center_type === 6 ? [block.values.subarray(0, block.values.length / block.samples.count)] : []));
    const ps = new SoapPowerSpectrum(h);
    const bs = new SoapBispectrum(h);
    const relDiff = (x: Float64Array[], y: Float64Array[]) => {
      let d = 0;
      let scale = 0;
      x.forEach((v, i) => v.forEach((e, k) => ((d = Math.max(d, Math.abs(e - y[i][k]))), (scale = Math.max(scale, Math.abs(e))))));
      return d / scale;
    };
    const psDiff = relDiff(centre(ps.computeSync(a)), centre(ps.computeSync(b)));
    const bsDiff = relDiff(centre(bs.computeSync(a)), centre(bs.computeSync(b)));
    expect(psDiff).toBeLessThan(1e-12);
    expect(bsDiff).toBeGreaterThan(1e-4);
  });
});

describe('errors', () => {
  it('name the offending field and value', () => {
    // @ts-expect-error: neighborTypes must be integers
    expect(() => new EquivariantPowerSpectrum(hypers(2, 1), { neighborTypes: ['H'] })).toThrow(/neighborTypes must be an array of integers/);
    expect(() => new EquivariantPowerSpectrum(hypers(2, 1), { neighborTypes: [1, 1] })).toThrow(/neighborTypes must be distinct atomic types, got \[1, 1\]/);
    const calc = new EquivariantPowerSpectrum(hypers(2, 1));
    // @ts-expect-error: not a boolean
    expect(() => calc.computeSync(molecule(), { neighborsToProperties: 'yes' })).toThrow(/neighborsToProperties must be a boolean, got/);
    expect(() => calc.computeSync(molecule(), { selectedKeys: [{ l_1: 0 }] })).toThrow(/selectedKeys has a dimension named "l_1"/);
    // @ts-expect-error: only equivariant calculators take neighborsToProperties
    expect(() => new SoapPowerSpectrum(hypers(2, 1)).computeSync(molecule(), { neighborsToProperties: true })).toThrow(/unknown compute option "neighborsToProperties"/);
    expect(() => new SoapBispectrum({ ...hypers(2, 1), density: { type: 'Gaussian', width: -1 } })).toThrow(/width/);
  });

  it('selections: keys and samples are subsets of the full computation', () => {
    const system = periodicSystem();
    const calc = new EquivariantPowerSpectrum(hypers(2, 1));
    const full = calc.computeSync(system);
    const some = calc.computeSync(system, { selectedKeys: [{ o3_lambda: 2, center_type: 8 }], selectedSamples: [{ atom: 2 }] });
    expect(some.keys.count).toBeGreaterThan(0);
    for (let b = 0; b < some.keys.count; b++) {
      const key = some.keys.entry(b);
      expect(key.o3_lambda).toBe(2);
      expect(key.center_type).toBe(8);
      const x = some.block(b);
      const y = full.block(key);
      expect(rows(x.samples)).toEqual([[0, 2]]);
      const row = y.samples.position({ system: 0, atom: 2 });
      const width = x.values.length;
      expect(Array.from(x.values)).toEqual(Array.from(y.values.subarray(row * width, (row + 1) * width)));
    }
  });
});
