// Gradients against finite differences, and the symmetries of docs/CONVENTIONS.md §7.
import { describe, expect, it } from 'vitest';
import { SoapPowerSpectrum, SoapRadialSpectrum, SphericalExpansion, System, TensorMap } from 'acdc-ml';

const hypers = (accuracy: number | null = null) => ({
  cutoff: { radius: 4.0, smoothing: { type: 'ShiftedCosine' as const, width: 0.5 } },
  density: { type: 'Gaussian' as const, width: 0.35, scaling: { type: 'Willatt2018' as const, scale: 1.5, rate: 1.0, exponent: 3 } },
  basis: { type: 'TensorProduct' as const, max_angular: 4, radial: { type: 'Gto' as const, max_radial: 4 }, spline_accuracy: accuracy },
});

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A periodic triclinic box with three species and some atoms outside the cell. */
function periodicSystem(): System {
  const r = rng(7);
  const cell = [5.1, 0.3, -0.2, 0.4, 4.8, 0.1, -0.3, 0.2, 5.3];
  const types = [1, 1, 6, 8, 8, 6, 1];
  const positions: number[] = [];
  for (let a = 0; a < types.length; a++) {
    const f = [r() * 1.2 - 0.1, r() * 1.2 - 0.1, r() * 1.2 - 0.1];
    for (let k = 0; k < 3; k++) positions.push(f[0] * cell[k] + f[1] * cell[3 + k] + f[2] * cell[6 + k]);
  }
  return new System({ types, positions, cell, pbc: true });
}

function molecule(): System {
  return new System({
    types: [6, 8, 1, 1, 7],
    positions: [0, 0, 0, 1.21, 0.05, -0.02, -0.55, 0.93, 0.1, -0.52, -0.96, 0.07, 0.3, 0.4, 2.1],
  });
}

function withPositions(s: System, positions: ArrayLike<number>, cell: ArrayLike<number> = s.cell): System {
  return new System({ types: s.types, positions: Array.from(positions), cell: Array.from(cell), pbc: s.pbc });
}

/** Value of one block entry addressed by key index, sample label and flat column. */
function valueAt(tm: TensorMap, key: Record<string, number>, system: number, atom: number, column: number): number {
  const block = tm.block(key);
  const row = block.samples.position({ system, atom });
  if (row < 0) return 0;
  const width = block.values.length / block.samples.count;
  return block.values[row * width + column];
}

describe('gradients equal finite differences', () => {
  for (const [name, make] of [['periodic', periodicSystem], ['molecule', molecule]] as const) {
    for (const Calc of [SoapPowerSpectrum, SphericalExpansion]) {
      it(`${Calc.name} positions and strain, ${name}`, () => {
        const system = make();
        const calc = new Calc(hypers());
        const tm = calc.computeSync(system, { gradients: ['positions', 'strain'] });
        const h = 1e-5;
        let worst = 0;
        let scale = 0;
        for (let b = 0; b < tm.keys.count; b++) {
          const key = tm.keys.entry(b);
          const block = tm.block(b);
          const width = block.values.length / block.samples.count;
          for (const v of block.values) scale = Math.max(scale, Math.abs(v));
          const grad = block.gradient('positions')!;
          // check a spread of gradient rows, every direction and column
          for (let g = 0; g < grad.samples.count; g += 3) {
            const [sample, , atom] = grad.samples.row(g);
            const [sys, centre] = block.samples.row(sample);
            for (let x = 0; x < 3; x++) {
              const plus = Float64Array.from(system.positions);
              const minus = Float64Array.from(system.positions);
              plus[3 * atom + x] += h;
              minus[3 * atom + x] -= h;
              const tp = calc.computeSync(withPositions(system, plus));
              const tmn = calc.computeSync(withPositions(system, minus));
              for (let c = 0; c < width; c += 7) {
                const fd = (valueAt(tp, key, sys, centre, c) - valueAt(tmn, key, sys, centre, c)) / (2 * h);
                worst = Math.max(worst, Math.abs(fd - grad.values[(g * 3 + x) * width + c]));
              }
            }
          }
          if (!system.pbc[0]) continue;
          const strain = block.gradient('strain')!;
          for (let a = 0; a < 3; a++) {
            for (let bb = 0; bb < 3; bb++) {
              const deform = (e: number) => {
                const eps = [0, 0, 0, 0, 0, 0, 0, 0, 0];
                eps[3 * a + bb] = e;
                const apply = (v: ArrayLike<number>) =>
                  Array.from({ length: v.length }, (_, k) => {
                    const row = Math.floor(k / 3);
                    const col = k % 3;
                    return v[k] + [0, 1, 2].reduce((acc, i) => acc + v[3 * row + i] * eps[3 * i + col], 0);
                  });
                return calc.computeSync(withPositions(system, apply(system.positions), apply(system.cell)));
              };
              const tp = deform(h);
              const tmn = deform(-h);
              for (let s = 0; s < block.samples.count; s++) {
                const [sys, centre] = block.samples.row(s);
                for (let c = 0; c < width; c += 5) {
                  const fd = (valueAt(tp, key, sys, centre, c) - valueAt(tmn, key, sys, centre, c)) / (2 * h);
                  worst = Math.max(worst, Math.abs(fd - strain.values[(s * 9 + 3 * a + bb) * width + c]));
                }
              }
            }
          }
        }
        expect(worst / scale).toBeLessThan(1e-6);
      });
    }
  }
});

/** Flattened (key, sample label, values) rows, for comparisons across symmetry operations. */
function rowsOf(tm: TensorMap, atomMap: (atom: number) => number = (a) => a): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  tm.blocks().forEach((block, b) => {
    const width = block.values.length / Math.max(block.samples.count, 1);
    for (let s = 0; s < block.samples.count; s++) {
      const [sys, atom] = block.samples.row(s);
      out.set(`${tm.keys.row(b)}|${sys}|${atomMap(atom)}`, block.values.subarray(s * width, (s + 1) * width));
    }
  });
  return out;
}

function expectSameRows(a: Map<string, Float64Array>, b: Map<string, Float64Array>, tol: number) {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  let scale = 0;
  let worst = 0;
  for (const [k, va] of a) {
    const vb = b.get(k)!;
    for (let i = 0; i < va.length; i++) {
      scale = Math.max(scale, Math.abs(va[i]));
      worst = Math.max(worst, Math.abs(va[i] - vb[i]));
    }
  }
  expect(worst).toBeLessThanOrEqual(tol * scale);
}

function rotation(seed: number): number[] {
  // random unit quaternion → rotation matrix
  const r = rng(seed);
  let q = [r() - 0.5, r() - 0.5, r() - 0.5, r() - 0.5];
  const n = Math.hypot(...q);
  q = q.map((x) => x / n);
  const [w, x, y, z] = q;
  return [
    1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
    2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
    2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
  ];
}

/** Applies v → v·Rᵀ to each 3-vector of a flat array. */
function rotate(v: ArrayLike<number>, R: number[]): number[] {
  const out: number[] = [];
  for (let k = 0; k < v.length; k += 3) {
    for (let i = 0; i < 3; i++) out.push(R[3 * i] * v[k] + R[3 * i + 1] * v[k + 1] + R[3 * i + 2] * v[k + 2]);
  }
  return out;
}

describe('symmetries (docs/CONVENTIONS.md §7)', () => {
  const calcs = [new SoapPowerSpectrum(hypers(1e-8)), new SoapRadialSpectrum({ ...hypers(1e-8), basis: { radial: { type: 'Gto', max_radial: 4 } } })];

  it('rotation of positions and cell leaves invariants unchanged', () => {
    for (const make of [periodicSystem, molecule]) {
      const s = make();
      const R = rotation(3);
      const rotated = withPositions(s, rotate(s.positions, R), rotate(s.cell, R));
      for (const calc of calcs) expectSameRows(rowsOf(calc.computeSync(s)), rowsOf(calc.computeSync(rotated)), 1e-12);
    }
  });

  it('translation, wrapping and other periodic images change nothing', () => {
    const s = periodicSystem();
    const shifted = withPositions(s, Array.from(s.positions, (v, k) => v + [0.37, -1.2, 2.9][k % 3]));
    // move each atom by an integer combination of lattice vectors
    const wrapped = withPositions(
      s,
      Array.from(s.positions, (v, k) => {
        const atom = Math.floor(k / 3);
        const n = [(atom % 3) - 1, 2 - (atom % 2), -(atom % 4)];
        return v + n[0] * s.cell[k % 3] + n[1] * s.cell[3 + (k % 3)] + n[2] * s.cell[6 + (k % 3)];
      }),
    );
    for (const calc of calcs) {
      const ref = rowsOf(calc.computeSync(s));
      expectSameRows(ref, rowsOf(calc.computeSync(shifted)), 1e-12);
      expectSameRows(ref, rowsOf(calc.computeSync(wrapped)), 1e-12);
    }
  });

  it('permuting atoms permutes the rows', () => {
    const s = periodicSystem();
    const perm = [3, 0, 6, 1, 5, 2, 4]; // new atom k is old atom perm[k]
    const types = perm.map((p) => s.types[p]);
    const positions = perm.flatMap((p) => Array.from(s.positions.subarray(3 * p, 3 * p + 3)));
    const permuted = new System({ types, positions, cell: s.cell, pbc: s.pbc });
    for (const calc of calcs) {
      expectSameRows(rowsOf(calc.computeSync(s)), rowsOf(calc.computeSync(permuted), (k) => perm[k]), 1e-12);
    }
  });

  it('a supercell has the same per-atom features', () => {
    const s = periodicSystem();
    const n = s.size;
    const positions = [...s.positions, ...Array.from(s.positions, (v, k) => v + s.cell[k % 3])];
    const cell = [2 * s.cell[0], 2 * s.cell[1], 2 * s.cell[2], ...Array.from(s.cell.subarray(3))];
    const big = new System({ types: [...s.types, ...s.types], positions, cell, pbc: true });
    for (const calc of calcs) {
      const small = rowsOf(calc.computeSync(s));
      expectSameRows(small, rowsOf(calc.computeSync(big), (a) => a % n), 1e-11);
    }
  });

  it('selections compute subsets with the same numbers', async () => {
    const s = [periodicSystem(), molecule()];
    const calc = calcs[0];
    const all = rowsOf(await calc.compute(s));
    const some = rowsOf(await calc.compute(s, { selectedSamples: [{ system: 1, atom: 2 }, { system: 0, atom: 4 }] }));
    expect(some.size).toBeGreaterThan(0);
    for (const [k, v] of some) {
      const [, sys, atom] = k.split('|');
      expect([`${sys}|${atom}`]).toContain(['1|2', '0|4'].find((x) => x === `${sys}|${atom}`));
      expect(v).toEqual(all.get(k));
    }
    const oxygen = await calc.compute(s, { selectedKeys: [{ center_type: 8 }] });
    expect(Array.from(oxygen.keys.column('center_type')).every((t) => t === 8)).toBe(true);
    for (const [k, v] of rowsOf(oxygen)) expect(v).toEqual(all.get(k));
  });
});

describe('keys', () => {
  it('keys() lists exactly the blocks compute() produces', () => {
    const systems = [periodicSystem(), molecule()];
    const h = hypers(1e-8);
    for (const calc of [new SoapPowerSpectrum(h), new SphericalExpansion(h), new SoapRadialSpectrum({ ...h, basis: { radial: h.basis.radial } })]) {
      const keys = calc.keys(systems);
      const tm = calc.computeSync(systems);
      expect(keys.names).toEqual(tm.keys.names);
      expect(Array.from(keys.values)).toEqual(Array.from(tm.keys.values));
    }
  });
});
