// `acdc featurize` end to end on the bundled multi-frame example: the files it
// writes hold exactly what the API computes.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Labels, SoapPowerSpectrum, SoapRadialSpectrum, TensorMap, readNpySync, readXyzSync } from 'acdc-ml';
import { run } from './spawn_helpers';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const example = path.join(root, 'examples', 'molecules.xyz');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-cli-'));

async function acdc(...args: string[]) {
  const r = await run(process.execPath, [cli, ...args], { env: { ...process.env, ACDC_NUM_THREADS: '2' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const defaults = {
  cutoff: { radius: 5, smoothing: { type: 'ShiftedCosine' as const, width: 0.5 } },
  density: { type: 'Gaussian' as const, width: 0.3 },
  basis: { type: 'TensorProduct' as const, max_angular: 6, radial: { type: 'Gto' as const, max_radial: 7 } },
};
const frames = readXyzSync(example);
const species = [...new Set(frames.flatMap((f) => Array.from(f.types)))].sort((a, b) => a - b);

describe('acdc featurize', () => {
  it('per-structure species-mean to .npy in small batches equals the API design matrix', async () => {
    const out = path.join(dir, 'mean.npy');
    const r = await acdc('featurize', example, '--out', out, '--per-structure', 'species-mean', '--batch', '7', '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.frames).toBe(frames.length);
    expect(summary.species).toEqual(species);

    const tm = new SoapPowerSpectrum(defaults).computeSync(frames).meanOverSamples('atom');
    const pairs: number[][] = [];
    for (const c of species) for (const a of species) for (const b of species) if (a <= b) pairs.push([c, a, b]);
    const design = tm.keysToProperties(new Labels(['center_type', 'neighbor_1_type', 'neighbor_2_type'], pairs)).toArray();
    const got = readNpySync(out);
    expect(got.shape).toEqual(design.shape);
    expect(got.shape).toEqual([frames.length, summary.columns]);
    let err = 0;
    for (let i = 0; i < got.data.length; i++) err = Math.max(err, Math.abs(got.data[i] - design.data[i]));
    expect(err).toBeLessThan(1e-12);
  });

  it('per-atom radial spectrum in float32: one row per atom in file order', async () => {
    const out = path.join(dir, 'atoms.npy');
    const hypersFile = path.join(dir, 'radial.json');
    const hypers = { cutoff: defaults.cutoff, density: defaults.density, basis: { radial: { type: 'Gto', max_radial: 5 } } };
    fs.writeFileSync(hypersFile, JSON.stringify(hypers));
    const r = await acdc('featurize', example, '--calculator', 'soap_radial_spectrum', '--hypers', hypersFile, '--dtype', 'float32', '--batch', '50', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/structures\/s/);
    const got = readNpySync(out);
    expect(got.dtype).toBe('<f4');
    const atoms = frames.reduce((n, f) => n + f.size, 0);
    expect(got.shape[0]).toBe(atoms);
    const tm = new SoapRadialSpectrum(hypers as ConstructorParameters<typeof SoapRadialSpectrum>[0]).computeSync(frames);
    const cols = got.shape[1];
    expect(cols).toBe(species.length * 6);
    // atom 2 of frame 5: its centre block, neighbour species columns in order
    let row = 0;
    for (let f = 0; f < 5; f++) row += frames[f].size;
    row += 2;
    const center = frames[5].types[2];
    for (let s = 0; s < species.length; s++) {
      const k = tm.keys.position({ center_type: center, neighbor_type: species[s] });
      for (let n = 0; n < 6; n++) {
        let expected = 0;
        if (k >= 0) {
          const b = tm.block(k);
          const i = b.samples.position({ system: 5, atom: 2 });
          if (i >= 0) expected = b.values[i * 6 + n];
        }
        expect(got.data[row * cols + s * 6 + n]).toBe(Math.fround(expected));
      }
    }
  });

  it('.mts output keeps labels and gradients, renumbering systems across batches', async () => {
    const out = path.join(dir, 'soap.mts');
    const small = { ...defaults, basis: { type: 'TensorProduct' as const, max_angular: 3, radial: { type: 'Gto' as const, max_radial: 3 } } };
    const hypersFile = path.join(dir, 'small.json');
    fs.writeFileSync(hypersFile, JSON.stringify(small));
    const r = await acdc('featurize', example, '--hypers', hypersFile, '--out', out, '--gradients', 'positions', '--batch', '40', '--per-structure', 'sum');
    expect(r.status, r.stderr).toBe(0);
    const got = TensorMap.loadSync(out);
    const tm = new SoapPowerSpectrum(small).computeSync(frames, { gradients: ['positions'] }).sumOverSamples('atom');
    expect(got.keys).toEqual(tm.keys);
    for (let k = 0; k < tm.keys.count; k++) {
      expect(got.block(k).samples).toEqual(tm.block(k).samples);
      expect(got.block(k).gradient('positions')!.samples).toEqual(tm.block(k).gradient('positions')!.samples);
      const a = got.block(k).values;
      const b = tm.block(k).values;
      let err = 0;
      for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
      expect(err).toBeLessThan(1e-12);
      const ga = got.block(k).gradient('positions')!.values;
      const gb = tm.block(k).gradient('positions')!.values;
      err = 0;
      for (let i = 0; i < ga.length; i++) err = Math.max(err, Math.abs(ga[i] - gb[i]));
      expect(err).toBeLessThan(1e-12);
    }
    expect(got.block(0).samples.names).toEqual(['system']);
  });

  it('bad arguments give one clear line and a non-zero exit code', async () => {
    const cases: [string[], RegExp][] = [
      [['featurize', example, '--out', path.join(dir, 'x.csv')], /\.npy or \.mts/],
      [['featurize', example, '--out', path.join(dir, 'x.npy'), '--gradients', 'positions'], /needs an \.mts/],
      [['featurize', path.join(dir, 'missing.xyz'), '--out', path.join(dir, 'x.npy')], /missing\.xyz/],
      [['featurize', example, '--out', path.join(dir, 'x.npy'), '--calculator', 'bispectrum'], /expected one of/],
      [['featurize', example, '--out', path.join(dir, 'x.npy'), '--batch', '0'], /positive integer/],
      [['featurize', example, '--out', path.join(dir, 'x.npy'), '--species', '1,6'], /species 8 is not in --species 1,6/],
      [['featurize', example, '--out', path.join(dir, 'x.mts'), '--calculator', 'spherical_expansion', '--hypers', path.join(dir, 'nope.json')], /nope\.json/],
    ];
    for (const [args, message] of cases) {
      const r = await acdc(...args);
      expect(r.status, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });
});
