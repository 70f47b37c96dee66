// SymmetryFunctions against DScribe 2.1.2's ACSF (fixtures from
// scripts/reference/dscribe_fixtures.py), analytic gradients against central
// finite differences (and against DScribe's own numerical derivatives), and
// the invariances that hold.
//
// Tolerances: values |acdc − DScribe| ≤ 1e-10 × max(|DScribe value|, 1e-3 ×
// largest |value| of the case) entry by entry; gradients ≤ 1e-6 × max(1,
// largest |gradient|) against central differences with h = 1e-5 Å; DScribe's
// derivatives (central differences, h = 1e-4 Å) within 1e-6 × max(1, largest
// |derivative|), their own truncation error being ~h² = 1e-8.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { SymmetryFunctions, System, TensorMap, toArray, type SymmetryFunctionsHypers } from 'acdc-ml';

interface SystemJson {
  types: number[];
  positions: number[];
  cell: number[];
  pbc: [boolean, boolean, boolean];
}
interface AcsfCase {
  system: string;
  hypers: SymmetryFunctionsHypers;
  shape: number[];
  values: number[];
  derivatives?: { shape: number[]; values: number[] };
}
interface Fixture {
  versions: Record<string, string>;
  systems: Record<string, SystemJson>;
  cases: AcsfCase[];
}

const fixture = JSON.parse(gunzipSync(readFileSync(join(__dirname, 'fixtures', 'dscribe', 'acsf.json.gz'))).toString('utf8')) as Fixture;
const systemOf = (name: string) => new System(fixture.systems[name]);

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** Largest relative deviation, each entry relative to max(|reference|, floor). */
function maxRelative(got: ArrayLike<number>, want: ArrayLike<number>, floor: number): number {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(got[k] - want[k]) / Math.max(Math.abs(want[k]), floor));
  return worst;
}

function withPositions(s: System, positions: ArrayLike<number>, cell: ArrayLike<number> = s.cell): System {
  return new System({ types: Array.from(s.types), positions: Array.from(positions), cell: Array.from(cell), pbc: s.pbc });
}

/** ∂X/∂x for every (row, atom, xyz), dense [rows][atoms][3][features], from the gradient blocks. */
function denseGradient(tm: TensorMap, nAtoms: number): { data: Float64Array; rows: number; nf: number } {
  const X = toArray(tm, { layout: 'dscribe' });
  const [rows, nf] = X.shape;
  const data = new Float64Array(rows * nAtoms * 3 * nf);
  // rows of the design matrix are sorted by atom (one system)
  for (const block of tm.blocks()) {
    const g = block.gradient('positions')!;
    const atomOfSample = block.samples.column('atom');
    const sample = g.samples.column('sample');
    const atom = g.samples.column('atom');
    for (let r = 0; r < g.samples.count; r++) {
      const row = atomOfSample[sample[r]];
      for (let x = 0; x < 3; x++) data.set(g.values.subarray((r * 3 + x) * nf, (r * 3 + x + 1) * nf), ((row * nAtoms + atom[r]) * 3 + x) * nf);
    }
  }
  return { data, rows, nf };
}

describe('SymmetryFunctions vs DScribe 2.1.2', () => {
  it('records the versions that made the fixtures', () => {
    expect(fixture.versions.dscribe).toBe('2.1.2');
  });

  for (const [n, c] of fixture.cases.entries()) {
    it(`values: case ${n} (${c.system}, ${c.shape[1]} features, types ${c.hypers.types?.join(',')})`, async () => {
      const calc = new SymmetryFunctions(c.hypers);
      const system = systemOf(c.system);
      const tm = await calc.compute(system);
      const X = toArray(tm, { layout: 'dscribe' });
      expect(X.shape).toEqual(c.shape);
      const err = maxRelative(X.data, c.values, 1e-3 * maxAbs(c.values));
      expect(err).toBeLessThanOrEqual(1e-10);
      // sync and async agree bit for bit
      expect(toArray(calc.computeSync(system), { layout: 'dscribe' }).data).toEqual(X.data);
    });
  }

  for (const [n, c] of fixture.cases.entries()) {
    if (!c.derivatives) continue;
    it(`positions gradients match DScribe's numerical derivatives: case ${n} (${c.system})`, () => {
      const calc = new SymmetryFunctions(c.hypers);
      const system = systemOf(c.system);
      const tm = calc.computeSync(system, { gradients: ['positions'] });
      const g = denseGradient(tm, system.size);
      expect([g.rows, system.size, 3, g.nf]).toEqual(c.derivatives!.shape);
      const scale = Math.max(1, maxAbs(c.derivatives!.values));
      let worst = 0;
      for (let k = 0; k < g.data.length; k++) worst = Math.max(worst, Math.abs(g.data[k] - c.derivatives!.values[k]));
      expect(worst / scale).toBeLessThanOrEqual(1e-6);
    });
  }
});

const HYPERS: SymmetryFunctionsHypers = {
  cutoff: 3.8,
  g2: [[0.5, 0.0], [1.0, 1.5]],
  g3: [1.0, 2.3],
  g4: [[0.1, 1.0, 1.0], [0.2, 2.0, -1.0], [0.05, 2.5, 1.0]],
  g5: [[0.1, 1.0, 1.0], [0.3, 4.0, -1.0], [0.02, 1.5, -1.0]],
  ani: [[0.3, 2.0, 1.2, 0.4], [0.1, 1.5, 2.0, 2.5], [0.2, 1.0, 0.9, 3.14159]],
  types: [1, 6, 7, 8, 14],
};

describe('SymmetryFunctions gradients vs central finite differences (h = 1e-5)', () => {
  const h = 1e-5;
  for (const name of ['molecule', 'crystal', 'slab']) {
    it(`positions: ${name}`, () => {
      const calc = new SymmetryFunctions(HYPERS);
      const system = systemOf(name);
      const g = denseGradient(calc.computeSync(system, { gradients: ['positions'] }), system.size);
      const scale = Math.max(1, maxAbs(g.data));
      let worst = 0;
      for (let a = 0; a < system.size; a++) {
        for (let x = 0; x < 3; x++) {
          const plus = Float64Array.from(system.positions);
          const minus = Float64Array.from(system.positions);
          plus[3 * a + x] += h;
          minus[3 * a + x] -= h;
          const xp = toArray(calc.computeSync(withPositions(system, plus)), { layout: 'dscribe' }).data;
          const xm = toArray(calc.computeSync(withPositions(system, minus)), { layout: 'dscribe' }).data;
          for (let row = 0; row < g.rows; row++) {
            for (let f = 0; f < g.nf; f++) {
              const fd = (xp[row * g.nf + f] - xm[row * g.nf + f]) / (2 * h);
              worst = Math.max(worst, Math.abs(fd - g.data[((row * system.size + a) * 3 + x) * g.nf + f]));
            }
          }
        }
      }
      expect(worst / scale).toBeLessThanOrEqual(1e-6);
    });

    it(`strain: ${name}`, () => {
      const calc = new SymmetryFunctions(HYPERS);
      const system = systemOf(name);
      const tm = calc.computeSync(system, { gradients: ['strain'] });
      let worst = 0;
      let scale = 1;
      for (let a = 0; a < 3; a++) {
        for (let b = 0; b < 3; b++) {
          const deform = (eps: number) => {
            const p = Float64Array.from(system.positions);
            const c = Float64Array.from(system.cell);
            for (let i = 0; i < system.size; i++) p[3 * i + b] += eps * system.positions[3 * i + a];
            for (let r = 0; r < 3; r++) c[3 * r + b] += eps * system.cell[3 * r + a];
            return calc.computeSync(withPositions(system, p, c));
          };
          const tp = deform(h);
          const tmn = deform(-h);
          tm.blocks().forEach((block, k) => {
            const g = block.gradient('strain')!;
            const nf = block.properties.count;
            scale = Math.max(scale, maxAbs(g.values));
            for (let s = 0; s < block.samples.count; s++) {
              for (let f = 0; f < nf; f++) {
                const fd = (tp.block(k).values[s * nf + f] - tmn.block(k).values[s * nf + f]) / (2 * h);
                worst = Math.max(worst, Math.abs(fd - g.values[(s * 9 + a * 3 + b) * nf + f]));
              }
            }
          });
        }
      }
      expect(worst / scale).toBeLessThanOrEqual(1e-6);
    });
  }
});

describe('SymmetryFunctions labels, invariances, selections and errors', () => {
  it('keys, samples and properties', () => {
    const tm = new SymmetryFunctions({ cutoff: 3, g2: [[1, 0]], g3: [2], g5: [[0.1, 1, 1]], types: [8, 1, 6] }).computeSync(systemOf('crystal'));
    expect(tm.keys.names).toEqual(['center_type']);
    expect(Array.from(tm.keys.values)).toEqual([1, 6, 8]);
    const block = tm.block({ center_type: 1 });
    expect(block.samples.names).toEqual(['system', 'atom']);
    expect(block.properties.names).toEqual(['function', 'neighbor_1_type', 'neighbor_2_type', 'index']);
    expect(block.properties.count).toBe(3 * 3 + 6);
    expect(block.properties.row(0)).toEqual([1, 1, -1, 0]);
    expect(block.properties.row(2)).toEqual([3, 1, -1, 0]);
    expect(block.properties.row(9)).toEqual([5, 1, 1, 0]);
    expect(block.properties.row(14)).toEqual([5, 8, 8, 0]);
  });

  it('is invariant under rotation, translation and permutation of atoms', () => {
    const calc = new SymmetryFunctions(HYPERS);
    const mol = systemOf('molecule');
    const X = toArray(calc.computeSync(mol), { layout: 'dscribe' }).data;
    const [c, s] = [Math.cos(0.7), Math.sin(0.7)];
    const R = [c, -s, 0, s * 0.6, c * 0.6, -0.8, s * 0.8, c * 0.8, 0.6]; // orthogonal
    const rotated = new Float64Array(mol.positions.length);
    for (let i = 0; i < mol.size; i++) {
      for (let k = 0; k < 3; k++) {
        rotated[3 * i + k] = 1.3 + R[3 * k] * mol.positions[3 * i] + R[3 * k + 1] * mol.positions[3 * i + 1] + R[3 * k + 2] * mol.positions[3 * i + 2];
      }
    }
    const Xr = toArray(calc.computeSync(withPositions(mol, rotated)), { layout: 'dscribe' }).data;
    expect(maxRelative(Xr, X, 1e-3 * maxAbs(X))).toBeLessThan(1e-12);
    // reversed atom order: row i of the permuted system is row n-1-i
    const n = mol.size;
    const order = Array.from({ length: n }, (_, i) => n - 1 - i);
    const permuted = new System({
      types: order.map((i) => mol.types[i]),
      positions: order.flatMap((i) => Array.from(mol.positions.subarray(3 * i, 3 * i + 3))),
    });
    const Xp = toArray(calc.computeSync(permuted), { layout: 'dscribe' });
    const nf = Xp.shape[1];
    for (let i = 0; i < n; i++) {
      const got = Xp.data.subarray(order[i] * nf, (order[i] + 1) * nf);
      expect(maxRelative(got, X.subarray(i * nf, (i + 1) * nf), 1e-3 * maxAbs(X))).toBeLessThan(1e-12);
    }
  });

  it('a periodic crystal equals the same atoms in a supercell', () => {
    const calc = new SymmetryFunctions(HYPERS);
    const crystal = systemOf('crystal');
    const X = toArray(calc.computeSync(crystal), { layout: 'dscribe' });
    const cell = crystal.cell;
    const positions: number[] = [];
    const types: number[] = [];
    for (const shift of [[0, 0, 0], [1, 0, 0], [0, 1, 1]]) {
      for (let i = 0; i < crystal.size; i++) {
        types.push(crystal.types[i]);
        for (let k = 0; k < 3; k++) positions.push(crystal.positions[3 * i + k] + shift[0] * cell[k] + shift[1] * cell[3 + k] + shift[2] * cell[6 + k]);
      }
    }
    const supercell = [2 * cell[0], 2 * cell[1], 2 * cell[2], cell[3], cell[4], cell[5], cell[6], cell[7], cell[8]].map((v) => v);
    // a 2×1×1 supercell holds two copies: the original and the one shifted by a
    const big = new System({ types: types.slice(0, 2 * crystal.size), positions: positions.slice(0, 6 * crystal.size), cell: supercell, pbc: true });
    const Xb = toArray(calc.computeSync(big), { layout: 'dscribe' });
    const nf = X.shape[1];
    expect(maxRelative(Xb.data.subarray(0, crystal.size * nf), X.data, 1e-3 * maxAbs(X.data))).toBeLessThan(1e-12);
    expect(maxRelative(Xb.data.subarray(crystal.size * nf), X.data, 1e-3 * maxAbs(X.data))).toBeLessThan(1e-12);
  });

  it('honours selectedKeys and selectedSamples', () => {
    const calc = new SymmetryFunctions(HYPERS);
    const systems = [systemOf('molecule'), systemOf('crystal')];
    const full = calc.computeSync(systems);
    const onlyH = calc.computeSync(systems, { selectedKeys: [{ center_type: 1 }] });
    expect(Array.from(onlyH.keys.values)).toEqual([1]);
    expect(onlyH.block(0).values).toEqual(full.block({ center_type: 1 }).values);
    const some = calc.computeSync(systems, { selectedSamples: [{ system: 1, atom: 2 }] });
    expect(Array.from(some.keys.values)).toEqual([6]);
    const row = full.block({ center_type: 6 }).samples.position({ system: 1, atom: 2 });
    const nf = some.block(0).properties.count;
    expect(some.block(0).values).toEqual(full.block({ center_type: 6 }).values.subarray(row * nf, (row + 1) * nf));
  });

  it('ANI-style angular functions equal a brute-force sum over neighbour pairs', () => {
    const ani: [number, number, number, number][] = [[0.3, 2.0, 1.2, 0.4], [0.1, 1.5, 2.0, 2.5], [0.2, 1.0, 0.9, 3.14159]];
    const rc = 4.2;
    const types = [1, 6, 7, 8];
    const mol = systemOf('molecule');
    const tm = new SymmetryFunctions({ cutoff: rc, g5: [[0.1, 1, 1]], ani, types }).computeSync(mol);
    const X = toArray(tm, { layout: 'dscribe' });
    const nf = X.shape[1];
    const props = tm.block(0).properties;
    const fc = (r: number) => (r <= rc ? 0.5 * (Math.cos((Math.PI * r) / rc) + 1) : 0);
    const p = (i: number) => Array.from(mol.positions.subarray(3 * i, 3 * i + 3));
    const dist = (u: number[], v: number[]) => Math.hypot(u[0] - v[0], u[1] - v[1], u[2] - v[2]);
    let worst = 0;
    let checked = 0;
    for (let i = 0; i < mol.size; i++) {
      const want = new Float64Array(nf);
      for (let j = 0; j < mol.size; j++) {
        for (let k = 0; k < j; k++) {
          if (j === i || k === i) continue;
          const [a, b] = [dist(p(i), p(j)), dist(p(i), p(k))];
          if (a > rc || b > rc) continue;
          const vj = p(j).map((x, c) => x - p(i)[c]);
          const vk = p(k).map((x, c) => x - p(i)[c]);
          const cos = (vj[0] * vk[0] + vj[1] * vk[1] + vj[2] * vk[2]) / (a * b);
          const theta = Math.acos(0.95 * cos);
          const [t1, t2] = [mol.types[j], mol.types[k]].sort((x, y) => x - y);
          ani.forEach(([eta, zeta, rs, ts], m) => {
            const term = 2 * ((1 + Math.cos(theta - ts)) / 2) ** zeta * Math.exp(-eta * ((a + b) / 2 - rs) ** 2) * fc(a) * fc(b);
            const col = props.position({ function: 6, neighbor_1_type: t1, neighbor_2_type: t2, index: m });
            want[col] += term;
          });
        }
      }
      for (let f = 0; f < nf; f++) {
        if (props.row(f)[0] !== 6) continue;
        worst = Math.max(worst, Math.abs(X.data[i * nf + f] - want[f]) / Math.max(Math.abs(want[f]), 1e-3));
        if (want[f] !== 0) checked += 1;
      }
    }
    expect(checked).toBeGreaterThan(20);
    expect(worst).toBeLessThan(1e-12);
  });

  // Without G5 rows the values kernel keeps only the neighbour pairs with
  // r_jk ≤ r_c (the others add 0 to G4): its G4 columns against DScribe's,
  // from the fixture cases with their G5 rows left out, same tolerance.
  for (const [n, c] of fixture.cases.entries()) {
    it(`G4 without G5 rows (the kernel over pairs within r_c) vs DScribe: case ${n} (${c.system})`, () => {
      const n2 = c.hypers.g2?.length ?? 0;
      const n3 = c.hypers.g3?.length ?? 0;
      const n4 = c.hypers.g4?.length ?? 0;
      const n5 = c.hypers.g5?.length ?? 0;
      expect(n4).toBeGreaterThan(0);
      const nRad = 1 + n2 + n3;
      const [rows, nf] = c.shape;
      const nt = [1, 2, 3, 4, 5, 6].find((t) => t * nRad + ((t * (t + 1)) / 2) * (n4 + n5) === nf)!;
      expect(nt).toBeDefined();
      const { g5: _dropped, ...hypers } = c.hypers;
      const X = toArray(new SymmetryFunctions(hypers).computeSync(systemOf(c.system)), { layout: 'dscribe' });
      const nfG4 = nt * nRad + ((nt * (nt + 1)) / 2) * n4;
      expect(X.shape).toEqual([rows, nfG4]);
      const got: number[] = [];
      const want: number[] = [];
      for (let r = 0; r < rows; r++) {
        for (let p = 0; p < (nt * (nt + 1)) / 2; p++) {
          for (let m = 0; m < n4; m++) {
            got.push(X.data[r * nfG4 + nt * nRad + p * n4 + m]);
            want.push(c.values[r * nf + nt * nRad + p * (n4 + n5) + m]);
          }
        }
      }
      expect(maxAbs(want)).toBeGreaterThan(0);
      expect(maxRelative(got, want, 1e-3 * maxAbs(c.values))).toBeLessThanOrEqual(1e-10);
    });
  }

  it('stays finite for non-integer ζ with collinear periodic images (where DScribe gives NaN)', () => {
    const calc = new SymmetryFunctions({ cutoff: 5.5, g4: [[0.05, 1.5, 1]], g5: [[0.02, 2.5, -1], [0.04, 0.5, 1]] });
    const tm = calc.computeSync(systemOf('crystal'), { gradients: ['positions', 'strain'] });
    for (const block of tm.blocks()) {
      expect(block.values.every(Number.isFinite)).toBe(true);
      expect(block.gradient('positions')!.values.every(Number.isFinite)).toBe(true);
      expect(block.gradient('strain')!.values.every(Number.isFinite)).toBe(true);
    }
  });

  it('rejects bad hyper-parameters with the field named', () => {
    expect(() => new SymmetryFunctions({ cutoff: 3, g2: [[1, 0, 2] as unknown as [number, number]] })).toThrow(/g2\[0\]/);
    expect(() => new SymmetryFunctions({ cutoff: 3, g4: [[1, NaN, 1]] })).toThrow(/g4\[0\]\[1\] must be a finite number, got NaN/);
    expect(() => new SymmetryFunctions({ cutoff: Infinity })).toThrow(/cutoff must be a finite number, got Infinity/);
    expect(() => new SymmetryFunctions({ cutoff: 0 })).toThrow(/cutoff must be a positive/);
    expect(() => new SymmetryFunctions({ cutoff: 3, g6: [] } as unknown as SymmetryFunctionsHypers)).toThrow(/unknown field `g6`/);
    const calc = new SymmetryFunctions({ cutoff: 3, types: [1, 6] });
    expect(() => calc.computeSync(systemOf('molecule'))).toThrow(/atom \d+ has type \d+, which is not in types \[1, 6\]/);
  });
});
