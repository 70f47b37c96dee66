// GAP's radial basis as a native radial basis (`radial: {type: 'Gap'}`)
// through the public API: the normalised power spectrum equals quippy's SOAP
// kernel (fixture test/fixtures/gap/gap_basis.json.gz from
// scripts/reference/gap_basis_fixtures.py, quippy-ase 0.10.3) to ≤ 1e-10
// with exact radial integrals; SparseGPR and LinearModel fitted on it give
// forces and stress that are the derivatives of their energy (central
// differences, h = 1e-5, ≤ 1e-6 relative), save → load → predict bit for
// bit, `acdc fit --hypers` takes it, and bad hypers are refused naming the field.
// (The radial functions themselves against the numpy transcription, and the
// calculator's gradients, are tested in the core: basis::gap.)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { LinearModel, loadModel, SoapPowerSpectrum, SparseGPR, System, type SoapHypers } from 'acdc-ml';
import { checkFiniteDifferences, smallCase, smallTest, smallTrain } from './potential_helpers';

interface Fixture {
  systems: { types: number[]; positions: number[]; cell: number[]; pbc: [boolean, boolean, boolean] }[];
  cases: {
    settings: { cutoff: number; width: number; n_max: number; l_max: number; atom_sigma: number };
    kernels: Record<string, { centres: [number, number][]; kernel: number[] }>;
  }[];
}
const fixture = JSON.parse(gunzipSync(readFileSync(join(__dirname, 'fixtures', 'gap', 'gap_basis.json.gz'))).toString('utf8')) as Fixture;

function gapHypers(s: Fixture['cases'][number]['settings'], splineAccuracy: number | null = 1e-8): SoapHypers {
  return {
    cutoff: { radius: s.cutoff, smoothing: { type: 'ShiftedCosine', width: s.width } },
    density: { type: 'Gaussian', width: s.atom_sigma },
    basis: { type: 'TensorProduct', max_angular: s.l_max, radial: { type: 'Gap', max_radial: s.n_max - 1 }, spline_accuracy: splineAccuracy },
  };
}

describe('the Gap radial basis', () => {
  it("gives quippy's normalised SOAP kernel on Cu–Au cells (≤ 1e-10, exact radial integrals)", () => {
    const systems = fixture.systems.map((s) => new System({ types: s.types, positions: Float64Array.from(s.positions), cell: Float64Array.from(s.cell), pbc: s.pbc }));
    for (const c of fixture.cases) {
      const tm = new SoapPowerSpectrum(gapHypers(c.settings, null)).computeSync(systems);
      for (const z of [29, 79]) {
        const want = c.kernels[String(z)];
        const rows = want.centres.map(() => [] as number[]);
        for (const block of tm.blocks({ center_type: z })) {
          const np = block.properties.count;
          const here = want.centres.map(() => new Array<number>(np).fill(0));
          const names = block.samples.names;
          for (let r = 0; r < block.samples.count; r++) {
            const sys = block.samples.values[r * names.length + names.indexOf('system')];
            const atom = block.samples.values[r * names.length + names.indexOf('atom')];
            const at = want.centres.findIndex(([s, a]) => s === sys && a === atom);
            expect(at).toBeGreaterThanOrEqual(0);
            for (let p = 0; p < np; p++) here[at][p] = block.values[r * np + p];
          }
          here.forEach((h, i) => rows[i].push(...h));
        }
        const unit = rows.map((row) => {
          const norm = Math.sqrt(row.reduce((t, v) => t + v * v, 0));
          return row.map((v) => v / norm);
        });
        let worst = 0;
        const n = want.centres.length;
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < n; j++) {
            const k = unit[i].reduce((t, v, p) => t + v * unit[j][p], 0);
            worst = Math.max(worst, Math.abs(k - want.kernel[i * n + j]));
          }
        }
        console.log(`Gap basis n_max ${c.settings.n_max}, Z ${z}: largest |k_acdc − k_quippy| ${worst.toExponential(2)}`);
        expect(worst).toBeLessThanOrEqual(1e-10);
      }
    }
  });

  const hypers: SoapHypers = {
    ...smallCase.gpr.hypers,
    basis: { type: 'TensorProduct', max_angular: 3, radial: { type: 'Gap', max_radial: 4 }, spline_accuracy: null },
  };

  it('SparseGPR: forces and stress are derivatives of the energy; save → load → predict bit for bit', async () => {
    const model = SparseGPR.fitSync(smallTrain, { ...smallCase.gpr, hypers });
    for (const s of [smallTest[0], smallTest[3]]) checkFiniteDifferences(model, s, 1e-5, 1e-6);
    const dir = mkdtempSync(join(tmpdir(), 'acdc-gap-basis-'));
    const path = join(dir, 'gap.acdc');
    await model.save(path);
    const loaded = await loadModel(path);
    const opts = { forces: true, variance: true };
    expect(loaded.predictSync(smallTest, opts)).toEqual(model.predictSync(smallTest, opts));
    expect(await loaded.predict(smallTest, opts)).toEqual(model.predictSync(smallTest, opts));
    expect(JSON.stringify(loaded.hypers)).toContain('"Gap"');
    // the default splines: the same model to the spline accuracy
    const splined = SparseGPR.fitSync(smallTrain, { ...smallCase.gpr, hypers: { ...hypers, basis: { ...hypers.basis, spline_accuracy: 1e-8 } } as SoapHypers });
    const [a, b] = [model.predictSync(smallTest).energy, splined.predictSync(smallTest).energy];
    a.forEach((e, k) => expect(Math.abs(e - b[k]) / smallTest[k].size).toBeLessThan(1e-6));
  });

  it('LinearModel: forces and stress are derivatives of the energy', () => {
    const model = LinearModel.fitSync(smallTrain, { ...smallCase.linear, hypers });
    for (const s of [smallTest[0], smallTest[3]]) checkFiniteDifferences(model, s, 1e-5, 1e-6);
  });

  it('refuses bad hypers, naming the field', () => {
    const bad: [unknown, RegExp][] = [
      [{ ...hypers, density: { type: 'DiracDelta' } }, /density\.type is DiracDelta: the Gap radial basis needs density\.type Gaussian/],
      [{ ...hypers, basis: { ...hypers.basis, radial: { type: 'Gap', max_radial: 24 } } }, /basis\.radial\.max_radial is 24; the Gap basis supports at most 23/],
      [{ ...hypers, density: { type: 'Gaussian' } }, /density.*width/],
      [{ ...hypers, basis: { ...hypers.basis, radial: { type: 'Gap' } } }, /max_radial/],
      [{ ...hypers, basis: { ...hypers.basis, radial: { type: 'Gap', max_radial: 3, radius: 4 } } }, /radius/],
    ];
    for (const [h, message] of bad) expect(() => SparseGPR.fitSync(smallTrain, { ...smallCase.gpr, hypers: h as SoapHypers })).toThrow(message);
    // the error carries the path of the field
    const paths = bad.slice(0, 2).map(([h]) => {
      try {
        new SoapPowerSpectrum(h as SoapHypers);
      } catch (e) {
        return (e as { path?: string }).path;
      }
      return 'accepted';
    });
    expect(paths).toEqual(['density.type', 'basis.radial.max_radial']);
  });

  it('`acdc fit --hypers` fits a model on it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'acdc-gap-basis-cli-'));
    const file = join(dir, 'gap.json');
    writeFileSync(file, JSON.stringify({ ...hypers, basis: { type: 'TensorProduct', max_angular: 3, radial: { type: 'Gap', max_radial: 4 } } }));
    const root = join(__dirname, '..');
    const out = join(dir, 'm.acdc');
    const args = [join(root, 'dist', 'cli', 'main.js'), 'fit', join(root, 'examples', 'emt-cu-train.xyz'), '--out', out, '--model', 'gpr', '--hypers', file, '--sparse', '20', '--json'];
    const r = await new Promise<{ status: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, args, { env: { ...process.env, ACDC_NUM_THREADS: '2' } });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, stderr }));
    });
    expect(r.stderr).not.toMatch(/^acdc:/m);
    expect(r.status).toBe(0);
    const model = await loadModel(out);
    expect(JSON.stringify(model.hypers)).toContain('"Gap"');
  });
});
