// Pseudo-elements (density.alchemical) in SparseGPR and LinearModel, on the
// EMT Cu / Cu–Au fixture (scripts/reference/emt_models.py):
// - an orthogonal coupling U (B = S) is an isometry of the joined power
//   spectrum (Σ_b p^(b1 b2) p'^(b1 b2) = Σ_a p^(a1 a2) p'^(a1 a2)), so a GPR (which
//   sees dot products only) and a ridge model (invariant under an isometry of
//   its features) must predict what the species-resolved models predict:
//   energies, forces and stress ≤ 1e-8 relative to the largest component;
// - with B = 1 < S (a real compression), B = 2 (non-orthogonal) and B = 3 > S
//   forces = −dE/dr and stress = (1/V) dE/dε by central differences (h = 1e-5,
//   ≤ 1e-6 relative, exact radial integrals);
// - save → load → predict bit for bit; the model file records the pseudo-element
//   indices as neighbor_species;
// - a training species missing from density.alchemical.types is named;
// - SparseGPR and LinearModel with couplings of B = 1, 2 and 3 pseudo-elements
//   (non-orthogonal; B = 3 > S over-complete) equal a numpy transcription that
//   forms the pseudo-element density, power spectrum and gradients itself from
//   the ordinary expansion (scripts/reference/alchemical_numpy.py): weights,
//   energies, forces, stress and variances ≤ 1e-8 relative.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LinearModel, loadModelSync, SparseGPR, type Potential, type System } from 'acdc-ml';
import { checkAgainstNumpy, checkFiniteDifferences, FIXTURES, smallCase, smallTest, smallTrain } from './potential_helpers';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const alchemicalCase: any = JSON.parse(readFileSync(join(FIXTURES, 'alchemical_case.json'), 'utf8'));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const alchemicalExpected: any = JSON.parse(readFileSync(join(FIXTURES, 'alchemical_expected.json'), 'utf8'));
const dir = mkdtempSync(join(tmpdir(), 'acdc-alch-'));
const exact = (h: any) => ({ ...h, basis: { ...h.basis, spline_accuracy: null } });
const withCoupling = (h: any, coupling: number[][]) => ({ ...h, density: { ...h.density, alchemical: { types: [29, 79], coupling } } });
const angle = 0.37;
const rotation = [
  [Math.cos(angle), -Math.sin(angle)],
  [Math.sin(angle), Math.cos(angle)],
];

function worstRelative(a: Potential, b: Potential, frames: System[]): number {
  let worst = 0;
  for (const s of frames) {
    const periodic = s.pbc.every(Boolean);
    const pa = a.predictSync(s, { forces: true, stress: periodic });
    const pb = b.predictSync(s, { forces: true, stress: periodic });
    const rel = (x: ArrayLike<number>, y: ArrayLike<number>) => {
      const scale = Math.max(...Array.from(y, Math.abs));
      return Math.max(...Array.from(x, (v, k) => Math.abs(v - y[k]))) / scale;
    };
    worst = Math.max(worst, rel(pa.energy, pb.energy), rel(pa.forces![0], pb.forces![0]));
    if (periodic) worst = Math.max(worst, rel(pa.stress![0], pb.stress![0]));
  }
  return worst;
}

describe('pseudo-elements in models', () => {
  it('SparseGPR: an orthogonal coupling predicts what the species-resolved model predicts (≤ 1e-8)', () => {
    const plain = SparseGPR.fitSync(smallTrain, smallCase.gpr);
    const alch = SparseGPR.fitSync(smallTrain, { ...smallCase.gpr, hypers: withCoupling(smallCase.gpr.hypers, rotation) });
    const worst = worstRelative(alch, plain, smallTest);
    console.log(`SparseGPR, rotated pseudo-elements vs species: ${worst.toExponential(2)} relative`);
    expect(worst).toBeLessThan(1e-8);
  });

  it('LinearModel: an orthogonal coupling predicts what the species-resolved model predicts (≤ 1e-8)', () => {
    const plain = LinearModel.fitSync(smallTrain, smallCase.linear);
    const alch = LinearModel.fitSync(smallTrain, { ...smallCase.linear, hypers: withCoupling(smallCase.linear.hypers, rotation) });
    const worst = worstRelative(alch, plain, smallTest);
    console.log(`LinearModel, rotated pseudo-elements vs species: ${worst.toExponential(2)} relative`);
    expect(worst).toBeLessThan(1e-8);
  });

  it('one pseudo-element: forces and stress are the derivatives of the energy; the file round trip is exact', () => {
    const hypers = exact(withCoupling(smallCase.gpr.hypers, [[1.0, 0.6]]));
    for (const model of [SparseGPR.fitSync(smallTrain, { ...smallCase.gpr, hypers }), LinearModel.fitSync(smallTrain, { ...smallCase.linear, hypers })]) {
      for (const s of [smallTest[0], smallTest[4]]) {
        const worst = checkFiniteDifferences(model, s, 1e-5, 1e-6);
        console.log(`${model.kind}, B = 1, finite differences (${s.size} atoms): force ${worst.force.toExponential(2)}, stress ${worst.stress.toExponential(2)}`);
      }
      const path = join(dir, `${model.kind}.acdc`);
      model.saveSync(path);
      const back = loadModelSync(path);
      const a = model.predictSync(smallTest, { forces: true });
      const b = back.predictSync(smallTest, { forces: true });
      expect(Array.from(b.energy)).toEqual(Array.from(a.energy));
      expect(Array.from(b.forces![1])).toEqual(Array.from(a.forces![1]));
    }
  });

  it('two and three pseudo-elements (cross pairs b1 ≠ b2, B > S): forces and stress are the derivatives of the energy', () => {
    for (const coupling of [alchemicalCase.couplings.B2, alchemicalCase.couplings.B3] as number[][][]) {
      const hypers = exact(withCoupling(smallCase.gpr.hypers, coupling));
      for (const model of [SparseGPR.fitSync(smallTrain, { ...smallCase.gpr, hypers }), LinearModel.fitSync(smallTrain, { ...smallCase.linear, hypers })]) {
        const worst = checkFiniteDifferences(model, smallTest[3], 1e-5, 1e-6);
        console.log(`${model.kind}, B = ${coupling.length}, finite differences (${smallTest[3].size} atoms): force ${worst.force.toExponential(2)}, stress ${worst.stress.toExponential(2)}`);
      }
    }
  });

  it('names a training species that density.alchemical.types does not list', () => {
    const hypers = { ...smallCase.gpr.hypers, density: { ...smallCase.gpr.hypers.density, alchemical: { types: [29, 28], coupling: [[1, 0.5]] } } };
    expect(() => SparseGPR.fitSync(smallTrain, { ...smallCase.gpr, hypers })).toThrow(/training systems contain atomic type 79, which density\.alchemical\.types \(\[29, 28\]\) does not list/);
    expect(() => LinearModel.fitSync(smallTrain, { ...smallCase.linear, hypers })).toThrow(/atomic type 79/);
  });

  it('equals the numpy transcription for B = 1, 2, 3 pseudo-elements (≤ 1e-8 relative)', () => {
    expect(alchemicalExpected.versions.numpy).toBe('2.4.6');
    // numpy's own power spectrum with U = I is acdc's ordinary one: the convention is pinned independently
    expect(alchemicalExpected.identity_check).toBeLessThan(1e-12);
    for (const [name, coupling] of Object.entries(alchemicalCase.couplings) as Array<[string, number[][]]>) {
      const reference = alchemicalExpected.cases[name];
      expect(reference.coupling).toEqual(coupling);
      const gpr = SparseGPR.fitSync(smallTrain, { ...smallCase.gpr, hypers: withCoupling(smallCase.gpr.hypers, coupling) });
      checkAgainstNumpy(gpr, 'gpr', reference);
      const linear = LinearModel.fitSync(smallTrain, { ...smallCase.linear, hypers: withCoupling(smallCase.linear.hypers, coupling) });
      expect(linear.weights.length).toBe(2 * ((coupling.length * (coupling.length + 1)) / 2) * 64);
      checkAgainstNumpy(linear, 'linear', reference);
    }
  });
});
