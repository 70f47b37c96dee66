// Shared by test/gpr.test.ts and test/linear_model.test.ts: the EMT data,
// the small case that scripts/reference/gpr_numpy.py redoes in numpy, and
// finite-difference / symmetry checks of a fitted potential.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { readXyzSync, System, type Potential } from 'acdc-ml';

export const FIXTURES = join(__dirname, 'fixtures', 'models');
export const train = readXyzSync(join(FIXTURES, 'train.xyz'));
export const test = readXyzSync(join(FIXTURES, 'test.xyz'));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const smallCase: any = JSON.parse(readFileSync(join(FIXTURES, 'small_case.json'), 'utf8'));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const expected: any = JSON.parse(readFileSync(join(FIXTURES, 'small_case_expected.json'), 'utf8'));
/** The same case with per-structure sigmas (small_case.json frameSigmas). */
export const expectedFrameSigmas: any = JSON.parse(readFileSync(join(FIXTURES, 'small_case_frame_sigmas_expected.json'), 'utf8'));
export const smallTrain = smallCase.train.map((k: number) => train[k]) as System[];
export const smallTest = smallCase.test.map((k: number) => test[k]) as System[];

/** A copy of `s` with new positions / cell (flat, Å). */
export function moved(s: System, positions: ArrayLike<number>, cell: ArrayLike<number> = s.cell): System {
  return new System({ types: s.types, positions: Float64Array.from(positions), cell: Float64Array.from(cell), pbc: s.pbc });
}

const energy = (m: Potential, s: System) => m.predictSync(s).energy[0];

/**
 * Central differences with step h (Å for positions, dimensionless for strain):
 * forces = −dE/dr and stress = (1/V) dE/dε, compared relative to the largest
 * component of the frame's analytic forces / stress.
 */
export function checkFiniteDifferences(m: Potential, s: System, h: number, tolerance: number): { force: number; stress: number } {
  const periodic = s.pbc.every(Boolean);
  const p = m.predictSync(s, { forces: true, stress: periodic });
  const forces = p.forces![0];
  const fScale = Math.max(...Array.from(forces, Math.abs));
  let worstForce = 0;
  for (let k = 0; k < 3 * s.size; k++) {
    const plus = Float64Array.from(s.positions);
    const minus = Float64Array.from(s.positions);
    plus[k] += h;
    minus[k] -= h;
    const fd = -(energy(m, moved(s, plus)) - energy(m, moved(s, minus))) / (2 * h);
    worstForce = Math.max(worstForce, Math.abs(fd - forces[k]) / fScale);
  }
  expect(worstForce).toBeLessThan(tolerance);
  let worstStress = 0;
  if (periodic) {
    const stress = p.stress![0];
    const sScale = Math.max(...Array.from(stress, Math.abs));
    const volume = Math.abs(det(s.cell));
    for (let a = 0; a < 3; a++) {
      for (let b = 0; b < 3; b++) {
        const deform = (e: number) => {
          const apply = (v: ArrayLike<number>, o: number) => [0, 1, 2].map((r) => v[o + r] + (r === a ? e * v[o + b] : 0));
          const pos = Array.from({ length: s.size }, (_, i) => apply(s.positions, 3 * i)).flat();
          const cell = [0, 1, 2].map((r) => apply(s.cell, 3 * r)).flat();
          return moved(s, pos, cell);
        };
        const fd = (energy(m, deform(h)) - energy(m, deform(-h))) / (2 * h) / volume;
        worstStress = Math.max(worstStress, Math.abs(fd - stress[3 * a + b]) / sScale);
      }
    }
    expect(worstStress).toBeLessThan(tolerance);
  }
  return { force: worstForce, stress: worstStress };
}

export function det(c: ArrayLike<number>): number {
  return c[0] * (c[4] * c[8] - c[5] * c[7]) - c[1] * (c[3] * c[8] - c[5] * c[6]) + c[2] * (c[3] * c[7] - c[4] * c[6]);
}

/** A rotation matrix (row-major) about an axis through the origin. */
export function rotation(axis: [number, number, number], angle: number): number[] {
  const n = Math.hypot(...axis);
  const [x, y, z] = axis.map((v) => v / n);
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  const t = 1 - c;
  return [t * x * x + c, t * x * y - s * z, t * x * z + s * y, t * x * y + s * z, t * y * y + c, t * y * z - s * x, t * x * z - s * y, t * y * z + s * x, t * z * z + c];
}

/** Applies R (row-major) to every 3-vector of `v`. */
export function rotate(R: number[], v: ArrayLike<number>): Float64Array {
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i += 3) {
    for (let r = 0; r < 3; r++) out[i + r] = R[3 * r] * v[i] + R[3 * r + 1] * v[i + 1] + R[3 * r + 2] * v[i + 2];
  }
  return out;
}

/** Energies invariant and forces covariant under a rotation of positions and cell; energies and forces follow a permutation of the atoms. */
export function checkSymmetries(m: Potential, s: System): void {
  const p = m.predictSync(s, { forces: true });
  const R = rotation([0.3, -0.5, 0.8], 0.7);
  const r = m.predictSync(moved(s, rotate(R, s.positions), rotate(R, s.cell)), { forces: true });
  expect(Math.abs(r.energy[0] - p.energy[0])).toBeLessThan(1e-10 * Math.max(1, Math.abs(p.energy[0])));
  const want = rotate(R, p.forces![0]);
  const scale = Math.max(...Array.from(want, Math.abs));
  for (let k = 0; k < want.length; k++) expect(Math.abs(r.forces![0][k] - want[k])).toBeLessThan(1e-10 * scale);
  const perm = Array.from({ length: s.size }, (_, i) => (i * 5 + 3) % s.size);
  expect(new Set(perm).size).toBe(s.size);
  const permuted = new System({
    types: perm.map((i) => s.types[i]),
    positions: perm.flatMap((i) => Array.from(s.positions.subarray(3 * i, 3 * i + 3))),
    cell: s.cell,
    pbc: s.pbc,
  });
  const q = m.predictSync(permuted, { forces: true });
  expect(Math.abs(q.energy[0] - p.energy[0])).toBeLessThan(1e-10 * Math.max(1, Math.abs(p.energy[0])));
  perm.forEach((i, k) => {
    for (let x = 0; x < 3; x++) expect(Math.abs(q.forces![0][3 * k + x] - p.forces![0][3 * i + x])).toBeLessThan(1e-10 * scale);
  });
}

/** Largest |a − b| / max|b| over a list of arrays. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const scale = Math.max(...Array.from(b, Math.abs));
  let worst = 0;
  for (let k = 0; k < b.length; k++) worst = Math.max(worst, Math.abs(a[k] - b[k]) / scale);
  expect(a.length).toBe(b.length);
  return worst;
}

/** Root mean square error of the predicted forces and the spread of the reference forces. */
export function forceErrors(m: Potential, frames: System[]): { rmse: number; std: number } {
  const p = m.predictSync(frames, { forces: true });
  let se = 0;
  let s2 = 0;
  let n = 0;
  frames.forEach((s, k) => {
    const f = s.arrays.forces as Float64Array;
    for (let i = 0; i < f.length; i++) {
      se += (p.forces![k][i] - f[i]) ** 2;
      s2 += f[i] ** 2;
      n++;
    }
  });
  return { rmse: Math.sqrt(se / n), std: Math.sqrt(s2 / n) };
}

/** The numpy transcription's numbers for one kind ('gpr' or 'linear'), checked to ≤ 1e-8 relative. */
export function checkAgainstNumpy(m: Potential, kind: 'gpr' | 'linear', reference: any = expected): void {
  const ref = reference[kind];
  expect(relativeError(m.weights, ref.weights)).toBeLessThan(1e-8);
  const p = m.predictSync(smallTest, { forces: true, variance: true });
  smallTest.forEach((s, k) => {
    expect(Math.abs(p.energy[k] - ref.energy[k]) / Math.abs(ref.energy[k])).toBeLessThan(1e-8);
    expect(Math.abs(p.variance![k] - ref.variance[k]) / Math.abs(ref.variance[k])).toBeLessThan(1e-8);
    expect(relativeError(p.forces![k], ref.forces[k])).toBeLessThan(1e-8);
    if (s.pbc.every(Boolean)) {
      const st = m.predictSync(s, { stress: true }).stress![0];
      expect(relativeError(st, ref.stress[k])).toBeLessThan(1e-8);
    } else {
      expect(ref.stress[k]).toBeNull();
    }
  });
}
