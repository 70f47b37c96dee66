// CoulombMatrix, SineMatrix and EwaldSumMatrix against DScribe 2.1.2
// (fixtures from scripts/reference/dscribe_fixtures.py), analytic gradients
// against central finite differences, invariances, selections and errors.
//
// Tolerances: values |acdc − DScribe| ≤ 1e-10 × max(|DScribe value|, 1e-3 ×
// largest |value|) entry by entry (padding must be exactly 0); `random`
// permutations bit for bit; gradients ≤ 1e-6 × max(1, largest |gradient|)
// against central differences with h = 1e-5 (Å, or strain).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CoulombMatrix, EwaldSumMatrix, SineMatrix, SymmetryFunctions, System, TensorMap, readNpySync, readXyzSync, toArray, type CoulombMatrixHypers, type EwaldSumMatrixHypers } from 'acdc-ml';
import { run } from './spawn_helpers';

interface SystemJson {
  types: number[];
  positions: number[];
  cell: number[];
  pbc: [boolean, boolean, boolean];
}
interface MatrixCase {
  systems: (string | string[])[];
  hypers: EwaldSumMatrixHypers;
  values?: number[];
  calls?: number[][];
}
interface Fixture {
  versions: Record<string, string>;
  systems: Record<string, SystemJson>;
  cases: MatrixCase[];
}

const load = (name: string) => JSON.parse(gunzipSync(readFileSync(join(__dirname, 'fixtures', 'dscribe', `${name}.json.gz`))).toString('utf8')) as Fixture;
const CLASSES = { coulomb_matrix: CoulombMatrix, sine_matrix: SineMatrix, ewald_sum_matrix: EwaldSumMatrix } as const;
type Name = keyof typeof CLASSES;
const make = (name: Name, hypers: EwaldSumMatrixHypers) => new CLASSES[name](hypers);

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

function maxRelative(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  const floor = 1e-3 * maxAbs(want);
  let worst = 0;
  for (let k = 0; k < want.length; k++) {
    if (want[k] === 0) expect(got[k]).toBe(0);
    worst = Math.max(worst, Math.abs(got[k] - want[k]) / Math.max(Math.abs(want[k]), floor));
  }
  return worst;
}

function withPositions(s: System, positions: ArrayLike<number>, cell: ArrayLike<number> = s.cell): System {
  return new System({ types: Array.from(s.types), positions: Array.from(positions), cell: Array.from(cell), pbc: s.pbc });
}

for (const name of Object.keys(CLASSES) as Name[]) {
  const fixture = load(name);
  const systemOf = (n: string) => new System(fixture.systems[n]);

  describe(`${name} vs DScribe ${fixture.versions.dscribe}`, () => {
    for (const [n, c] of fixture.cases.entries()) {
      if (c.values) {
        it(`values: case ${n} (${JSON.stringify(c.hypers)} on ${c.systems.join(', ')})`, async () => {
          const calc = make(name, c.hypers);
          const systems = (c.systems as string[]).map(systemOf);
          const tm = await calc.compute(systems);
          expect(tm.keys.names).toEqual(['_']);
          const X = tm.toArray();
          expect(X.shape).toEqual([1, c.values!.length]);
          expect(maxRelative(X.data, c.values!)).toBeLessThanOrEqual(1e-10);
        });
      } else {
        it(`random permutation is DScribe's over consecutive calls: case ${n} (${JSON.stringify(c.hypers)})`, () => {
          // The Coulomb matrix (C++ in DScribe) is reproduced bit for bit. The
          // sine and Ewald matrices (NumPy in DScribe) get the same
          // permutation, but NumPy sums their entries in another order, so
          // the entries agree to rounding (entries differ far more than 1e-10,
          // so this still pins the permutation).
          const same = (got: Float64Array, want: number[]) => {
            if (name === 'coulomb_matrix') expect(Array.from(got)).toEqual(want);
            else expect(maxRelative(got, want)).toBeLessThanOrEqual(1e-10);
          };
          const calc = make(name, c.hypers);
          c.calls!.forEach((want, call) => {
            const names = c.systems[call];
            const systems = (Array.isArray(names) ? names : [names]).map(systemOf);
            const X = calc.computeSync(systems).toArray();
            same(X.data, want);
          });
          // a new object starts the sequence again
          const first = c.systems[0] as string;
          same(make(name, c.hypers).computeSync(systemOf(first)).toArray().data, c.calls![0]);
          // the generator's state persists: the three calls on one system do not all agree
          expect(new Set(c.calls!.slice(0, 3).map((v) => JSON.stringify(v))).size).toBeGreaterThan(1);
        });
      }
    }
  });
}

/** Dense ∂X/∂R [systems=1][atoms][3][features] from the positions gradient block. */
function positionsGradient(tm: TensorMap, nAtoms: number): Float64Array {
  const block = tm.block(0);
  const g = block.gradient('positions')!;
  const nf = block.properties.count;
  const out = new Float64Array(nAtoms * 3 * nf);
  const atom = g.samples.column('atom');
  for (let r = 0; r < g.samples.count; r++) out.set(g.values.subarray(r * 3 * nf, (r + 1) * 3 * nf), atom[r] * 3 * nf);
  return out;
}

describe('matrix gradients vs central finite differences (h = 1e-5)', () => {
  const h = 1e-5;
  const dscribe = load('coulomb_matrix').systems;
  const cases: [Name, EwaldSumMatrixHypers, string][] = [
    ['coulomb_matrix', { n_atoms_max: 9, permutation: 'none' }, 'molecule'],
    ['coulomb_matrix', { n_atoms_max: 9, permutation: 'sorted_l2' }, 'molecule'],
    ['coulomb_matrix', { n_atoms_max: 9, permutation: 'eigenspectrum' }, 'molecule'],
    ['sine_matrix', { n_atoms_max: 4, permutation: 'none' }, 'crystal'],
    ['sine_matrix', { n_atoms_max: 4, permutation: 'eigenspectrum' }, 'crystal'],
    ['ewald_sum_matrix', { n_atoms_max: 4, permutation: 'none' }, 'crystal'],
    ['ewald_sum_matrix', { n_atoms_max: 4, permutation: 'sorted_l2', a: 0.9, r_cut: 6, g_cut: 5 }, 'crystal'],
  ];
  for (const [name, hypers, sys] of cases) {
    it(`${name} ${hypers.permutation} on ${sys}: positions and strain`, () => {
      const calc = make(name, hypers);
      const system = new System(dscribe[sys]);
      const tm = calc.computeSync(system, { gradients: ['positions', 'strain'] });
      const nf = tm.block(0).properties.count;
      const values = (s: System) => calc.computeSync(s).block(0).values;
      const g = positionsGradient(tm, system.size);
      let worst = 0;
      for (let a = 0; a < system.size; a++) {
        for (let x = 0; x < 3; x++) {
          const plus = Float64Array.from(system.positions);
          const minus = Float64Array.from(system.positions);
          plus[3 * a + x] += h;
          minus[3 * a + x] -= h;
          const [vp, vm] = [values(withPositions(system, plus)), values(withPositions(system, minus))];
          for (let f = 0; f < nf; f++) worst = Math.max(worst, Math.abs((vp[f] - vm[f]) / (2 * h) - g[(a * 3 + x) * nf + f]));
        }
      }
      expect(worst / Math.max(1, maxAbs(g))).toBeLessThanOrEqual(1e-6);

      const strain = tm.block(0).gradient('strain')!.values;
      worst = 0;
      for (let a = 0; a < 3; a++) {
        for (let b = 0; b < 3; b++) {
          const deform = (eps: number) => {
            const p = Float64Array.from(system.positions);
            const c = Float64Array.from(system.cell);
            for (let i = 0; i < system.size; i++) p[3 * i + b] += eps * system.positions[3 * i + a];
            for (let r = 0; r < 3; r++) c[3 * r + b] += eps * system.cell[3 * r + a];
            return values(withPositions(system, p, c));
          };
          const [vp, vm] = [deform(h), deform(-h)];
          for (let f = 0; f < nf; f++) worst = Math.max(worst, Math.abs((vp[f] - vm[f]) / (2 * h) - strain[(a * 3 + b) * nf + f]));
        }
      }
      expect(worst / Math.max(1, maxAbs(strain))).toBeLessThanOrEqual(1e-6);
    });
  }
});

describe('matrix invariances, selections and errors', () => {
  const systems = load('coulomb_matrix').systems;
  const molecule = new System(systems.molecule);
  const crystal = new System(systems.crystal);

  function rotate(s: System): System {
    const [c, t] = [Math.cos(1.1), Math.sin(1.1)];
    const R = [c, -t, 0, t * 0.6, c * 0.6, -0.8, t * 0.8, c * 0.8, 0.6];
    const apply = (v: ArrayLike<number>) => {
      const out = new Float64Array(v.length);
      for (let i = 0; i < v.length / 3; i++) for (let k = 0; k < 3; k++) out[3 * i + k] = R[3 * k] * v[3 * i] + R[3 * k + 1] * v[3 * i + 1] + R[3 * k + 2] * v[3 * i + 2];
      return out;
    };
    return withPositions(s, apply(s.positions), apply(s.cell));
  }

  function reversed(s: System): System {
    const order = Array.from({ length: s.size }, (_, i) => s.size - 1 - i);
    return new System({
      types: order.map((i) => s.types[i]),
      positions: order.flatMap((i) => Array.from(s.positions.subarray(3 * i, 3 * i + 3))),
      cell: Array.from(s.cell),
      pbc: s.pbc,
    });
  }

  for (const [name, system] of [['coulomb_matrix', molecule], ['sine_matrix', crystal], ['ewald_sum_matrix', crystal]] as [Name, System][]) {
    it(`${name}: rotation invariant; sorted_l2 and eigenspectrum permutation invariant`, () => {
      for (const permutation of ['none', 'sorted_l2', 'eigenspectrum'] as const) {
        const calc = make(name, { n_atoms_max: 9, permutation });
        const X = calc.computeSync(system).toArray().data;
        expect(maxRelative(calc.computeSync(rotate(system)).toArray().data, X)).toBeLessThan(1e-10);
        if (permutation !== 'none') expect(maxRelative(calc.computeSync(reversed(system)).toArray().data, X)).toBeLessThan(1e-10);
      }
    });
  }

  it('selectedSamples picks systems; sync and async agree', async () => {
    const calc = new CoulombMatrix({ n_atoms_max: 9, permutation: 'sorted_l2' });
    const all = await calc.compute([molecule, crystal, molecule]);
    expect(all.block(0).samples.names).toEqual(['system']);
    expect(all.block(0).values).toEqual(calc.computeSync([molecule, crystal, molecule]).block(0).values);
    const one = calc.computeSync([molecule, crystal, molecule], { selectedSamples: [{ system: 1 }] });
    expect(Array.from(one.block(0).samples.values)).toEqual([1]);
    expect(one.block(0).values).toEqual(all.block(0).values.subarray(81, 162));
    expect(() => calc.computeSync([molecule], { selectedSamples: [{ system: 3 }] })).toThrow(/system 3 does not exist/);
    expect(() => calc.computeSync([molecule], { selectedSamples: [{ atom: 0 }] })).toThrow(/samples are "system" only/);
  });

  it('rejects bad input with the field named', () => {
    expect(() => new CoulombMatrix({ n_atoms_max: 9, sigma: 1 })).toThrow(/sigma = 1 is only used with permutation "random"/);
    expect(() => new CoulombMatrix({ n_atoms_max: 9, permutation: 'random' })).toThrow(/needs sigma/);
    expect(() => new CoulombMatrix({ n_atoms_max: 9, permutation: 'random', sigma: NaN })).toThrow(/sigma must be a finite number, got NaN/);
    expect(() => new CoulombMatrix({ n_atoms_max: [9] } as unknown as CoulombMatrixHypers)).toThrow(/n_atoms_max/);
    expect(() => new CoulombMatrix({ n_atoms_max: 9, permutation: 'sorted' as 'none' })).toThrow(/unknown variant `sorted`/);
    expect(() => new EwaldSumMatrix({ n_atoms_max: 9, r_cut: 5 })).toThrow(/give both r_cut and g_cut/);
    expect(() => new EwaldSumMatrix({ n_atoms_max: 9, accuracy: Infinity })).toThrow(/accuracy must be a finite number, got Infinity/);
    expect(() => new CoulombMatrix({ n_atoms_max: 4 }).computeSync([crystal, molecule])).toThrow(/systems\[1\] has 8 atoms, more than n_atoms_max = 4/);
    expect(() => new SineMatrix({ n_atoms_max: 9 }).computeSync(molecule)).toThrow(/singular/);
  });
});

describe('acdc featurize with the DScribe-style calculators', () => {
  const root = join(__dirname, '..');
  const dir = mkdtempSync(join(tmpdir(), 'acdc-classic-'));
  const acdc = (...args: string[]) =>
    run(process.execPath, [join(root, 'dist', 'cli', 'main.js'), ...args], { env: { ...process.env, ACDC_NUM_THREADS: '2' } });
  const example = join(root, 'examples', 'molecules.xyz');
  const frames = readXyzSync(example);
  const species = [...new Set(frames.flatMap((f) => Array.from(f.types)))].sort((a, b) => a - b);
  const write = (name: string, hypers: object) => {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify(hypers));
    return file;
  };
  const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

  it('coulomb_matrix: one row per structure, as the API gives', async () => {
    const nMax = Math.max(...frames.map((f) => f.size));
    const hypers = { n_atoms_max: nMax, permutation: 'eigenspectrum' as const };
    const out = join(dir, 'cm.npy');
    const r = await acdc('featurize', example, '--calculator', 'coulomb_matrix', '--hypers', write('cm.json', hypers), '--batch', '7', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    const got = readNpySync(out);
    const want = new CoulombMatrix(hypers).computeSync(frames).toArray();
    expect(got.shape).toEqual(want.shape);
    expect(maxDiff(got.data, want.data)).toBe(0);
  });

  it('symmetry_functions: one row per atom in file order, DScribe columns', async () => {
    const hypers = { cutoff: 4, g2: [[1, 0]] as [number, number][], g4: [[0.1, 1, -1]] as [number, number, number][] };
    const out = join(dir, 'acsf.npy');
    const r = await acdc('featurize', example, '--calculator', 'symmetry_functions', '--hypers', write('acsf.json', { ...hypers, types: species }), '--batch', '9', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    const got = readNpySync(out);
    const want = toArray(new SymmetryFunctions({ ...hypers, types: species }).computeSync(frames), { layout: 'dscribe' });
    expect(got.shape).toEqual(want.shape);
    expect(maxDiff(got.data, want.data)).toBe(0);
    // without types, a batch lacking a species would change the columns
    const bad = await acdc('featurize', example, '--calculator', 'symmetry_functions', '--hypers', write('acsf2.json', hypers), '--batch', '1', '--out', join(dir, 'x.npy'));
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/give "types"/);
  });

  it('needs --hypers', async () => {
    const r = await acdc('featurize', example, '--calculator', 'sine_matrix', '--out', join(dir, 'sm.npy'));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--calculator sine_matrix needs --hypers/);
  });
});
