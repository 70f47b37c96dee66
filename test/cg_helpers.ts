// Shared helpers of the Clebsch–Gordan tests: featomic fixtures, systems,
// finite differences and rotations.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { expect } from 'vitest';
import { System, type SoapHypers, type TensorBlock, type TensorMap } from 'acdc-ml';

export interface LabelsJson {
  names: string[];
  values: number[][];
}
export interface BlockJson {
  samples: LabelsJson;
  components: LabelsJson[];
  properties: LabelsJson;
  values: number[];
  shape: number[];
}
export interface Calculation {
  kind: 'equivariant_power_spectrum' | 'density_correlations';
  variant: 'exact' | 'splined';
  hypers: SoapHypers;
  options: {
    neighbors_to_properties?: boolean;
    neighbor_types?: number[] | null;
    n_correlations?: number;
    max_angular?: number;
    angular_cutoff?: number | null;
  };
  keys: LabelsJson;
  blocks: BlockJson[];
}
export interface Fixture {
  versions: Record<string, string>;
  case: string;
  systems: { types: number[]; positions: number[]; cell: number[]; pbc: [boolean, boolean, boolean] }[];
  calculations: Calculation[];
  clebsch_gordan?: { l1: number; l2: number; L: number; values: number[] }[];
}

export function loadFixture(name: string): Fixture {
  const file = join(__dirname, 'fixtures', 'featomic_cg', `${name}.json.gz`);
  return JSON.parse(gunzipSync(readFileSync(file)).toString('utf8')) as Fixture;
}

export function fixtureSystems(f: Fixture): System[] {
  return f.systems.map((s) => new System({ types: s.types, positions: s.positions, cell: s.cell, pbc: s.pbc }));
}

export function rows(l: { names: string[]; values: Int32Array; count: number }): number[][] {
  return Array.from({ length: l.count }, (_, r) => Array.from(l.values.subarray(r * l.names.length, (r + 1) * l.names.length)));
}

/**
 * Compares a TensorMap with featomic's block by block, matching keys by value
 * (the key order may differ): identical key sets and labels, and
 * |acdc − featomic| ≤ tol × (largest |value| of the block). As in
 * featomic.test.ts, the block scale is floored at 1e-5 × the largest value of
 * the whole calculation: some blocks are (nearly) cancelling sums, e.g.
 * pseudotensors of nearly mirror-symmetric environments, whose values are
 * rounding noise or a small remainder of much larger terms.
 * Returns the largest relative error seen.
 */
export function compareWithFixture(tm: TensorMap, calc: Calculation, tol: number): number {
  expect(tm.keys.names).toEqual(calc.keys.names);
  const got = rows(tm.keys).map((r) => JSON.stringify(r));
  const want = calc.keys.values.map((r) => JSON.stringify(r));
  expect([...got].sort()).toEqual([...want].sort());
  const overall = Math.max(...calc.blocks.map((b) => maxAbs(b.values)));
  let worstRelative = 0;
  calc.blocks.forEach((w, b) => {
    const block: TensorBlock = tm.block(got.indexOf(want[b]));
    const where = `key ${want[b]}`;
    expect(block.samples.names, where).toEqual(w.samples.names);
    expect(rows(block.samples), where).toEqual(w.samples.values);
    expect(block.components.map((c) => c.names), where).toEqual(w.components.map((c) => c.names));
    block.components.forEach((c, k) => expect(rows(c), where).toEqual(w.components[k].values));
    expect(block.properties.names, where).toEqual(w.properties.names);
    expect(rows(block.properties), where).toEqual(w.properties.values);
    const scale = Math.max(maxAbs(w.values), 1e-5 * overall);
    let worst = 0;
    for (let k = 0; k < w.values.length; k++) worst = Math.max(worst, Math.abs(block.values[k] - w.values[k]));
    expect(worst, `${where}: worst error ${worst}, scale ${scale}`).toBeLessThanOrEqual(tol * scale);
    worstRelative = Math.max(worstRelative, worst / scale);
  });
  return worstRelative;
}

export function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let k = 0; k < values.length; k++) m = Math.max(m, Math.abs(values[k]));
  return m;
}

/** Rows of a TensorMap by "key|system|atom". */
export function rowMap(tm: TensorMap): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  tm.blocks().forEach((block, b) => {
    const width = block.values.length / Math.max(block.samples.count, 1);
    for (let s = 0; s < block.samples.count; s++) {
      const [sys, atom] = block.samples.row(s);
      out.set(`${tm.keys.row(b)}|${sys}|${atom}`, block.values.subarray(s * width, (s + 1) * width));
    }
  });
  return out;
}

export function withPositions(s: System, positions: ArrayLike<number>, cell: ArrayLike<number> = s.cell): System {
  return new System({ types: s.types, positions: Array.from(positions), cell: Array.from(cell), pbc: s.pbc });
}

/** Positions and cell after the strain x → (1 + ε) x. */
function strained(s: System, eps: number[]): System {
  const apply = (v: ArrayLike<number>) =>
    Array.from({ length: v.length }, (_, k) => {
      const row = Math.floor(k / 3);
      const col = k % 3;
      return v[k] + [0, 1, 2].reduce((acc, i) => acc + v[3 * row + i] * eps[3 * i + col], 0);
    });
  return withPositions(s, apply(s.positions), apply(s.cell));
}

/**
 * Largest |analytic − central finite difference| of every position (and,
 * for periodic systems, strain) gradient entry, relative to the largest
 * |value| of the tensor. `compute(system)` must return the tensor without
 * gradients; `tm` is the one with them.
 */
export function gradientErrors(system: System, tm: TensorMap, compute: (s: System) => TensorMap, h = 1e-5): { positions: number; strain: number } {
  let scale = 0;
  for (const block of tm.blocks()) scale = Math.max(scale, maxAbs(block.values));
  let positions = 0;
  let checked = 0;
  for (let atom = 0; atom < system.types.length; atom++) {
    for (let x = 0; x < 3; x++) {
      const plus = Float64Array.from(system.positions);
      const minus = Float64Array.from(system.positions);
      plus[3 * atom + x] += h;
      minus[3 * atom + x] -= h;
      const [p, m] = [rowMap(compute(withPositions(system, plus))), rowMap(compute(withPositions(system, minus)))];
      tm.blocks().forEach((block, b) => {
        const grad = block.gradient('positions')!;
        const width = block.values.length / Math.max(block.samples.count, 1);
        const seen = new Set<number>();
        for (let g = 0; g < grad.samples.count; g++) {
          const [sample, , a] = grad.samples.row(g);
          const [sys, centre] = block.samples.row(sample);
          const key = `${tm.keys.row(b)}|${sys}|${centre}`;
          if (a === atom) seen.add(sample);
          const fd = (c: number) => ((p.get(key)?.[c] ?? 0) - (m.get(key)?.[c] ?? 0)) / (2 * h);
          if (a !== atom) continue;
          for (let c = 0; c < width; c++) {
            positions = Math.max(positions, Math.abs(fd(c) - grad.values[(g * 3 + x) * width + c]));
            checked++;
          }
        }
        // samples without a gradient row for this atom must not depend on it
        for (let s = 0; s < block.samples.count; s++) {
          if (seen.has(s)) continue;
          const [sys, centre] = block.samples.row(s);
          const key = `${tm.keys.row(b)}|${sys}|${centre}`;
          for (let c = 0; c < width; c++) positions = Math.max(positions, Math.abs(((p.get(key)?.[c] ?? 0) - (m.get(key)?.[c] ?? 0)) / (2 * h)));
        }
      });
    }
  }
  expect(checked).toBeGreaterThan(0);
  let strain = 0;
  if (system.pbc[0]) {
    for (let ab = 0; ab < 9; ab++) {
      const eps = new Array(9).fill(0);
      eps[ab] = h;
      const p = rowMap(compute(strained(system, eps)));
      eps[ab] = -h;
      const m = rowMap(compute(strained(system, eps)));
      tm.blocks().forEach((block, b) => {
        const grad = block.gradient('strain')!;
        const width = block.values.length / Math.max(block.samples.count, 1);
        for (let s = 0; s < block.samples.count; s++) {
          const [sys, centre] = block.samples.row(s);
          const key = `${tm.keys.row(b)}|${sys}|${centre}`;
          for (let c = 0; c < width; c++) {
            const fd = ((p.get(key)?.[c] ?? 0) - (m.get(key)?.[c] ?? 0)) / (2 * h);
            strain = Math.max(strain, Math.abs(fd - grad.values[(s * 9 + ab) * width + c]));
          }
        }
      });
    }
  }
  return { positions: positions / scale, strain: strain / scale };
}

/** Rotation matrix (row-major) about `axis` by `angle` radians. */
export function rotation(axis: [number, number, number], angle: number): number[] {
  const n = Math.hypot(...axis);
  const [x, y, z] = axis.map((v) => v / n);
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  const t = 1 - c;
  return [t * x * x + c, t * x * y - s * z, t * x * z + s * y, t * x * y + s * z, t * y * y + c, t * y * z - s * x, t * x * z - s * y, t * y * z + s * x, t * z * z + c];
}

/** Positions and cell rows mapped by r → M r. */
export function transformed(s: System, m: number[]): System {
  const apply = (v: ArrayLike<number>) =>
    Array.from({ length: v.length }, (_, k) => {
      const row = Math.floor(k / 3);
      const i = k % 3;
      return m[3 * i] * v[3 * row] + m[3 * i + 1] * v[3 * row + 1] + m[3 * i + 2] * v[3 * row + 2];
    });
  return withPositions(s, apply(s.positions), apply(s.cell));
}

/** Deterministic pseudo-random numbers in [0, 1). */
export function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A periodic triclinic box with three species. */
export function periodicSystem(): System {
  const r = rng(11);
  const cell = [4.6, 0.3, -0.2, 0.4, 4.4, 0.1, -0.3, 0.2, 4.9];
  const types = [1, 6, 8, 8, 1];
  const positions: number[] = [];
  for (let a = 0; a < types.length; a++) {
    const f = [r(), r(), r()];
    for (let k = 0; k < 3; k++) positions.push(f[0] * cell[k] + f[1] * cell[3 + k] + f[2] * cell[6 + k]);
  }
  return new System({ types, positions, cell, pbc: true });
}

/** A molecule with three species. */
export function molecule(): System {
  return new System({ types: [6, 8, 1, 1, 1], positions: [0, 0, 0, 1.21, 0.05, -0.02, -0.55, 0.93, 0.1, -0.52, -0.96, 0.07, 0.3, 0.4, 1.9] });
}
