// `acdc map` and `acdc compare` end to end on the bundled examples: the
// numbers they write equal the API applied to `acdc featurize` output; the
// chemiscope file passes chemiscope's checks (with ACDC_INTEROP_PYTHON); the
// SVG opens in headless Chromium; bad input fails with one line, exit 1 (2
// for usage) and leaves no file.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { Labels, SoapPowerSpectrum, formatXyz, gfrd, gfre, pca, readNpySync, readXyzSync, writeXyzSync } from 'acdc-ml';
import { chromiumPath, interopPython } from './prerequisites';
import { checked, run } from './spawn_helpers';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const molecules = path.join(root, 'examples', 'molecules.xyz');
const silicon = path.join(root, 'examples', 'silicon-defect.xyz');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-cli-map-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function acdc(...args: string[]) {
  const r = await run(process.execPath, [cli, ...args], { env: { ...process.env, ACDC_NUM_THREADS: '2' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function readDoc(file: string): any {
  const raw = fs.readFileSync(file);
  return JSON.parse((file.endsWith('.gz') ? zlib.gunzipSync(raw) : raw).toString('utf8'));
}

/** Files of the folder that a failed command might have left. */
function leftovers(): string[] {
  return fs.readdirSync(dir).filter((f) => f.includes('.partial') || f.startsWith('bad'));
}

async function featurize(file: string, out: string, ...extra: string[]) {
  const r = await acdc('featurize', file, '--per-structure', 'mean', '--out', out, ...extra);
  expect(r.status, r.stderr).toBe(0);
  return readNpySync(out);
}

const SMALL = {
  cutoff: { radius: 4, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 3, radial: { type: 'Gto', max_radial: 3 } },
};
const RADIAL = { cutoff: SMALL.cutoff, density: SMALL.density, basis: { radial: { type: 'Gto', max_radial: 5 } } };

function writeHypers(name: string, hypers: object): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(hypers));
  return file;
}

/** The part of puppeteer-core's API used here. */
interface Page {
  on(event: 'console', f: (m: { type(): string; text(): string }) => void): void;
  on(event: 'pageerror', f: (e: unknown) => void): void;
  goto(url: string, options: { waitUntil: 'load' }): Promise<unknown>;
  screenshot(options: { type: 'png' }): Promise<Uint8Array>;
  $eval<T>(selector: string, f: (element: unknown) => T): Promise<T>;
}
interface Browser {
  newPage(): Promise<Page>;
  close(): Promise<void>;
}


describe('acdc map', () => {
  const out = path.join(dir, 'map.json.gz');
  const svg = path.join(dir, 'map.svg');

  it('per structure: the PCA coordinates are pca() of `featurize --per-structure mean`, with settings and properties', async () => {
    const r = await acdc('map', molecules, '--out', out, '--svg', svg, '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ structures: 120, rows: 120, target: 'structure', color: 'n_atoms', calculator: 'soap_power_spectrum' });

    const X = await featurize(molecules, path.join(dir, 'mean.npy'));
    const p = pca(X, 2);
    const doc = readDoc(out);
    expect(doc.structures).toHaveLength(120);
    expect(doc.meta.name).toBe('molecules.xyz');
    let err = 0;
    let scale = 0;
    for (let i = 0; i < 120; i++) {
      for (let c = 0; c < 2; c++) {
        err = Math.max(err, Math.abs(doc.properties[`pca[${c + 1}]`].values[i] - p.scores.data[2 * i + c]));
        scale = Math.max(scale, Math.abs(p.scores.data[2 * i + c]));
      }
    }
    expect(err).toBeLessThanOrEqual(1e-10 * scale);
    expect(s.explainedVariance[0]).toBeCloseTo(p.explainedVariance[0], 12);
    expect(doc.settings.map).toEqual({ joinPoints: false, x: { property: 'pca[1]' }, y: { property: 'pca[2]' }, color: { property: 'n_atoms' } });
    expect(doc.settings.target).toBe('structure');
    const frames = readXyzSync(molecules);
    expect(doc.properties.n_atoms.values).toEqual(frames.map((f) => f.size));
    expect(doc.properties.name.values).toEqual(frames.map((f) => f.info.name));
    expect(doc.properties['pca[1]'].target).toBe('structure');
    // the plot: a standalone SVG with both axis titles and a colour bar titled n_atoms
    const text = fs.readFileSync(svg, 'utf8');
    expect(text.startsWith('<svg')).toBe(true);
    expect(text).toContain('PC 1 (');
    expect(text).toContain('PC 2 (');
    expect(text).toContain('n_atoms');
    expect(text).toMatch(/<linearGradient/);
    expect(leftovers()).toEqual([]);
  });

  it('per atom: environments for every atom, colour by a per-atom property, string colours give a legend', async () => {
    const file = path.join(dir, 'atoms.json');
    const atomSvg = path.join(dir, 'atoms.svg');
    const r = await acdc('map', silicon, '--per-atom', '--out', file, '--svg', atomSvg, '--hypers', writeHypers('small.json', SMALL));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^map of 504 atoms/);
    const doc = readDoc(file);
    expect(doc.environments).toHaveLength(504);
    expect(doc.environments[0]).toEqual({ structure: 0, center: 0, cutoff: 4 });
    expect(doc.properties['pca[2]'].target).toBe('atom');
    expect(doc.properties['pca[2]'].values).toHaveLength(504);
    expect(doc.settings.target).toBe('atom');
    expect(doc.settings.map.color).toEqual({ property: 'atomic_number' });
    // categorical colour: a per-structure string in a per-structure map
    const r2 = await acdc('map', silicon, '--out', path.join(dir, 'si.json'), '--svg', path.join(dir, 'si.svg'), '--color', 'config_type', '--hypers', path.join(dir, 'small.json'));
    expect(r2.status, r2.stderr).toBe(0);
    const text = fs.readFileSync(path.join(dir, 'si.svg'), 'utf8');
    expect(text).toContain('config_type');
    expect(text).toContain('vacancy');
  });

  it('per atom with several species (more features than atoms): pca() of the atomic features, centre species as column blocks', async () => {
    const some = readXyzSync(molecules).slice(0, 20);
    const file = path.join(dir, 'some.xyz');
    writeXyzSync(file, some);
    const json = path.join(dir, 'some.json');
    const r = await acdc('map', file, '--per-atom', '--out', json, '--hypers', writeHypers('small.json', SMALL));
    expect(r.status, r.stderr).toBe(0);
    const species = [...new Set(some.flatMap((f) => Array.from(f.types)))].sort((a, b) => a - b);
    const keys: number[][] = [];
    for (const c of species) for (const a of species) for (const b of species) if (a <= b) keys.push([c, a, b]);
    const block = new SoapPowerSpectrum(SMALL as never).computeSync(some).keysToProperties(new Labels(['center_type', 'neighbor_1_type', 'neighbor_2_type'], keys)).block(0);
    // samples are grouped by centre species: put them back in (structure, atom) order
    const F = block.properties.count;
    const offsets = [0];
    some.forEach((f) => offsets.push(offsets[offsets.length - 1] + f.size));
    const X = new Float64Array(offsets[some.length] * F);
    const system = block.samples.column('system');
    const atom = block.samples.column('atom');
    for (let k = 0; k < block.samples.count; k++) X.set(block.values.subarray(k * F, (k + 1) * F), (offsets[system[k]] + atom[k]) * F);
    const rows = offsets[some.length];
    expect(F).toBeGreaterThan(rows);
    const p = pca({ data: X, shape: [rows, F] }, 2);
    const doc = readDoc(json);
    let err = 0;
    let scale = 0;
    for (let i = 0; i < rows; i++) {
      for (let c = 0; c < 2; c++) {
        err = Math.max(err, Math.abs(doc.properties[`pca[${c + 1}]`].values[i] - p.scores.data[2 * i + c]));
        scale = Math.max(scale, Math.abs(p.scores.data[2 * i + c]));
      }
    }
    expect(err).toBeLessThanOrEqual(1e-10 * scale);
  });

  it('its files pass the chemiscope viewer validator and create_input', async () => {
    const py = interopPython();
    const pkg = (await checked(py, ['-c', 'import chemiscope, os; print(os.path.dirname(chemiscope.__file__))'])).trim();
    for (const file of [out, path.join(dir, 'atoms.json')]) {
      const v = await run(process.execPath, [path.join(__dirname, 'interop', 'chemiscope_validate.mjs'), path.join(pkg, 'static', 'chemiscope-widget.mjs'), file]);
      expect(v.stdout + v.stderr).toMatch(/^valid: /);
      const check = JSON.parse(await checked(py, [path.join(__dirname, 'interop', 'chemiscope_check.py'), file]));
      expect(check.properties).toContain('pca[1]');
    }
  });

  it('the SVG opens in headless Chromium without errors and gives a screenshot', async () => {
    // puppeteer-core's own typings need the DOM library, which these tests do not compile against
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const puppeteer = require('puppeteer-core') as { launch(options: object): Promise<Browser> };
    if (!fs.existsSync(svg)) expect((await acdc('map', molecules, '--out', out, '--svg', svg)).status).toBe(0);
    const browser = await puppeteer.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(String(e)));
      // the SVG itself, and embedded in a page as users put it in a README or report
      const html = path.join(dir, 'page.html');
      fs.writeFileSync(html, `<!doctype html><html><body><h1>map</h1><img id="map" src="map.svg"></body></html>`);
      for (const url of [`file://${svg}`, `file://${html}`]) {
        await page.goto(url, { waitUntil: 'load' });
        const png = Buffer.from(await page.screenshot({ type: 'png' }));
        expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
        expect(png.length).toBeGreaterThan(5000);
      }
      // the <img> decoded the SVG at its own size
      const size = await page.$eval('#map', (img) => [(img as unknown as { naturalWidth: number }).naturalWidth, (img as unknown as { naturalHeight: number }).naturalHeight]);
      expect(size[0]).toBeGreaterThan(400);
      expect(size[1]).toBeGreaterThan(300);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 120_000);

  it('bad input: one line, exit 1 or 2, no file left', async () => {
    const two = path.join(dir, 'two.xyz');
    fs.writeFileSync(two, fs.readFileSync(path.join(root, 'examples', 'water.xyz'), 'utf8').split('\n').slice(0, 10).join('\n') + '\n');
    const same = path.join(dir, 'same.xyz');
    const frame = '2\npbc="F F F"\nH 0 0 0\nH 0.74 0 0\n';
    fs.writeFileSync(same, frame.repeat(4));
    const cases: Array<[string[], number, RegExp]> = [
      [['map', molecules, '--out', path.join(dir, 'bad1.json.gz'), '--color', 'energy'], 1, /^acdc: --color energy is not a property of the file; per-structure properties: config_type, name, n_atoms\n$/],
      [['map', silicon, '--out', path.join(dir, 'bad2.json'), '--per-atom', '--color', 'config_type'], 1, /--color config_type is a per-structure property, and this map has one point per atom/],
      [['map', molecules, '--out', path.join(dir, 'bad3.txt')], 1, /--out .*bad3\.txt: a chemiscope file must end in \.json or \.json\.gz/],
      [['map', molecules, '--out', path.join(dir, 'bad4.json'), '--svg', path.join(dir, 'bad4.png')], 1, /--svg .*: the plot file must end in \.svg/],
      [['map', two, '--out', path.join(dir, 'bad5.json')], 1, /2 structures: a map needs at least 3/],
      [['map', same, '--out', path.join(dir, 'bad6.json'), '--svg', path.join(dir, 'bad6.svg')], 1, /every structure has the same features \(zero variance\)/],
      [['map', path.join(dir, 'nope.xyz'), '--out', path.join(dir, 'bad7.json')], 1, /nope\.xyz: no such file/],
      [['map', molecules, '--out', path.join(dir, 'no-such-folder', 'x.json')], 1, /the folder .* does not exist/],
      [['map', molecules], 2, /^acdc map: required option '-o, --out <file>' not specified \(see acdc map --help\)\n$/],
    ];
    for (const [args, status, message] of cases) {
      const r = await acdc(...args);
      expect(r.status, args.join(' ')).toBe(status);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stdout).toBe('');
    }
    expect(leftovers()).toEqual([]);
  });
});

describe('acdc compare', () => {
  it('GFRE and GFRD both ways equal gfre()/gfrd() on `featurize --per-structure mean` of both hypers', async () => {
    const a = writeHypers('a.json', SMALL);
    const b = writeHypers('b.json', RADIAL);
    const r = await acdc('compare', molecules, '--a', a, '--b', b, '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.a).toEqual({ hypers: a, calculator: 'soap_power_spectrum', columns: expect.any(Number) });
    expect(s.b.calculator).toBe('soap_radial_spectrum');
    expect([s.trainRows, s.testRows]).toEqual([60, 60]);
    const A = await featurize(molecules, path.join(dir, 'a.npy'), '--hypers', a);
    const B = await featurize(molecules, path.join(dir, 'b.npy'), '--hypers', b, '--calculator', 'soap_radial_spectrum');
    expect(s.a.columns).toBe(A.shape[1]);
    // same numbers up to the rounding of the mean over atoms (acdc map sums atom rows, featurize sums blocks)
    const close = (x: number, y: number) => expect(Math.abs(x - y)).toBeLessThanOrEqual(1e-12 * Math.abs(y));
    close(s.gfre.aToB, gfre(A, B));
    close(s.gfre.bToA, gfre(B, A));
    close(s.gfrd.aToB, gfrd(A, B));
    close(s.gfrd.bToA, gfrd(B, A));
    // the power spectrum holds the radial spectrum far better than the reverse
    expect(s.gfre.aToB).toBeLessThan(s.gfre.bToA);

    const table = await acdc('compare', molecules, '--a', a, '--b', b);
    expect(table.status).toBe(0);
    expect(table.stdout).toContain('GFRE');
    expect(table.stdout).toContain(s.gfre.aToB.toFixed(4));
    expect(table.stdout).toContain(s.gfrd.bToA.toFixed(4));
  });

  it('bad input: constant features, too few structures, bad hypers, missing option', async () => {
    const a = path.join(dir, 'a.json');
    const same = path.join(dir, 'same.xyz');
    const three = path.join(dir, 'three.xyz');
    fs.writeFileSync(three, formatXyz(readXyzSync(molecules).slice(0, 3)));
    fs.writeFileSync(same, '2\npbc="F F F"\nH 0 0 0\nH 0.74 0 0\n'.repeat(6));
    const badHypers = writeHypers('bad-hypers.json', { ...SMALL, cutoff: { radius: -1, smoothing: SMALL.cutoff.smoothing } });
    const cases: Array<[string[], number, RegExp]> = [
      [['compare', same, '--a', a, '--b', a], 1, /^acdc: GFRE\(A → B\): .*variance/],
      [['compare', three, '--a', a, '--b', a], 1, /3 structures: compare needs at least 4/],
      [['compare', molecules, '--a', badHypers, '--b', a], 1, /--a .*bad-hypers\.json: .*radius/],
      [['compare', molecules, '--a', a], 2, /^acdc compare: required option '--b <hypers.json>' not specified/],
    ];
    for (const [args, status, message] of cases) {
      const r = await acdc(...args);
      expect(r.status, args.join(' ')).toBe(status);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });
});
