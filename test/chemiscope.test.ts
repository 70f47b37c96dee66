// chemiscope input files: the document acdc writes (structures, properties
// from extxyz info/arrays and given arrays, environments, settings, meta),
// checked field by field here; and, with ACDC_INTEROP_PYTHON (set by
// .ci/run; a venv with chemiscope 1.1.0 from scripts/ci/interop-python.sh),
// checked by chemiscope itself: the viewer's validator cut out of the
// package's static bundle (test/interop/chemiscope_validate.mjs) and the
// Python package's show_input + create_input (test/interop/chemiscope_check.py).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { System, chemiscopeInput, chemiscopeMapSettings, parseXyz, pca, writeChemiscope, writeChemiscopeSync } from 'acdc-ml';
import { interopPython } from './prerequisites';
import { checked, run } from './spawn_helpers';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-chemiscope-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const XYZ = `3
Lattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3:charge:R:1:label:S:1:forces:R:3 energy=-1.5 config_type=water pbc="T T T"
O 0 0 0 -0.8 a 0.1 0.2 0.3
H 0.96 0 0 0.4 b 0 0 0
H -0.24 0.93 0 0.4 c 0 0 1
2
Properties=species:S:1:pos:R:3:charge:R:1:label:S:1:forces:R:3 energy=2.25 config_type=h2 pbc="F F F"
H 0 0 0 0 d 0 0 0
H 0.74 0 0 0 e 1 2 3
`;
const systems = parseXyz(XYZ);

function readDoc(file: string): any {
  const raw = fs.readFileSync(file);
  return JSON.parse((file.endsWith('.gz') ? zlib.gunzipSync(raw) : raw).toString('utf8'));
}

function partials(): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.partial'));
}

describe('chemiscopeInput', () => {
  it('writes structures as chemiscope does (symbols, x/y/z in Å, cell only for 3 non-zero vectors)', () => {
    const doc = chemiscopeInput(systems);
    expect(doc.structures).toEqual([
      { size: 3, names: ['O', 'H', 'H'], x: [0, 0.96, -0.24], y: [0, 0, 0.93], z: [0, 0, 0], cell: [5, 0, 0, 0, 5, 0, 0, 0, 5] },
      { size: 2, names: ['H', 'H'], x: [0, 0.74], y: [0, 0], z: [0, 0] },
    ]);
    expect(doc.meta).toEqual({ name: '<unknown>' });
    expect(Object.keys(doc)).toEqual(['meta', 'structures', 'properties']);
  });

  it('takes structure properties from info and atom properties from arrays (k columns → name[1..k])', () => {
    const p = chemiscopeInput(systems).properties;
    expect(p.energy).toEqual({ target: 'structure', values: [-1.5, 2.25] });
    expect(p.config_type).toEqual({ target: 'structure', values: ['water', 'h2'] });
    expect(p.charge).toEqual({ target: 'atom', values: [-0.8, 0.4, 0.4, 0, 0] });
    expect(p.label).toEqual({ target: 'atom', values: ['a', 'b', 'c', 'd', 'e'] });
    expect(p['forces[1]']).toEqual({ target: 'atom', values: [0.1, 0, 0, 0, 1], description: 'forces [component 1]' });
    expect(p['forces[3]'].values).toEqual([0.3, 0, 1, 0, 3]);
    expect(p.forces).toBeUndefined();
    // pbc and Lattice are not properties
    expect(Object.keys(p).sort()).toEqual(['charge', 'config_type', 'energy', 'forces[1]', 'forces[2]', 'forces[3]', 'label']);
    expect(Object.keys(chemiscopeInput(systems, { fromSystems: false }).properties)).toEqual([]);
  });

  it('adds given properties (2-D → components, short form by length), environments and settings', () => {
    const X = { data: new Float64Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] };
    const doc = chemiscopeInput(systems, {
      properties: {
        pca: { target: 'structure', values: X, units: 'a.u.', description: 'PCA' },
        n: [3, 2],
        q: new Float64Array([1, 2, 3, 4, 5]),
      },
      environments: { cutoff: 3.5 },
      settings: chemiscopeMapSettings({ x: 'pca[1]', y: 'pca[2]', color: 'energy', target: 'atom' }),
      meta: { name: 'demo', description: 'test', authors: ['me'], references: ['doi'] },
    });
    expect(Object.keys(doc)).toEqual(['meta', 'settings', 'structures', 'environments', 'properties']);
    expect(doc.properties['pca[2]']).toEqual({ target: 'structure', values: [2, 5], units: 'a.u.', description: 'PCA [component 2]' });
    expect(doc.properties.n).toEqual({ target: 'structure', values: [3, 2] });
    expect(doc.properties.q).toEqual({ target: 'atom', values: [1, 2, 3, 4, 5] });
    expect(doc.environments).toHaveLength(5);
    expect(doc.environments![3]).toEqual({ structure: 1, center: 0, cutoff: 3.5 });
    expect(doc.settings).toEqual({
      map: { joinPoints: false, x: { property: 'pca[1]' }, y: { property: 'pca[2]' }, color: { property: 'energy' } },
      structure: [{ keepOrientation: false, playbackDelay: 500, unitCell: false, supercell: [1, 1, 1] }],
      target: 'atom',
    });
    expect(doc.meta).toEqual({ name: 'demo', description: 'test', authors: ['me'], references: ['doi'] });
  });

  it('with an explicit list of environments, per-atom columns of the systems are taken at the centres', () => {
    const doc = chemiscopeInput(systems, { environments: [{ structure: 1, center: 1, cutoff: 2 }, { structure: 0, center: 0, cutoff: 3 }] });
    expect(doc.properties.charge.values).toEqual([0, -0.8]);
    expect(doc.properties.label.values).toEqual(['e', 'a']);
    expect(doc.properties['forces[2]'].values).toEqual([2, 0.2]);
    expect(doc.properties.energy.values).toEqual([-1.5, 2.25]);
  });

  it('rejects bad input with a message naming the field', () => {
    expect(() => chemiscopeInput(systems, { properties: { e: { target: 'structure', values: [1, 2, 3] } } })).toThrow(
      /properties\.e \(target structure\) has 3 values, but there are 2 structures/,
    );
    expect(() =>
      chemiscopeInput(systems, { properties: { e: { target: 'atom', values: [1, 2] } }, environments: [{ structure: 0, center: 0, cutoff: 2 }], fromSystems: false }),
    ).toThrow(
      /properties\.e \(target atom\) has 2 values, but there are 1 environments/,
    );
    expect(() => chemiscopeInput(systems, { properties: { e: [1, 2, 3, 4] } })).toThrow(/properties\.e has 4 values: expected 2 .* or 5/);
    expect(() => chemiscopeInput(systems, { properties: { e: [1, NaN] } })).toThrow(/properties\.e\.values\[1\] is NaN/);
    expect(() => chemiscopeInput(systems, { properties: { e: [1, 'a'] as any } })).toThrow(/properties\.e\.values\[1\] is "a"/);
    expect(() => chemiscopeInput(systems, { environments: [{ structure: 1, center: 2, cutoff: 3 }] })).toThrow(/environments\[0\]\.center is 2, but structure 1 has 2 atoms/);
    expect(() => chemiscopeInput(systems, { environments: { cutoff: -1 } })).toThrow(/environments\.cutoff must be a positive number/);
    expect(() => chemiscopeInput(systems, { settings: chemiscopeMapSettings({ x: 'energy', y: 'nope' }) })).toThrow(/settings\.map\.y names the property "nope"/);
    expect(() => chemiscopeInput(systems, { settings: chemiscopeMapSettings({ x: 'energy', y: 'energy', target: 'atom' }) })).toThrow(/needs environments/);
    expect(() => chemiscopeInput(systems, { meta: { name: 3 as any } })).toThrow(/meta\.name must be a string/);
    expect(() => chemiscopeInput(systems, { colour: 1 } as any)).toThrow(/unknown chemiscope option "colour"/);
  });
});

describe('writeChemiscope', () => {
  it('writes .json (indented) and .json.gz (gzip) that read back to the same document, named after the file', async () => {
    const a = path.join(dir, 'set.json');
    const b = path.join(dir, 'set.v2.json.gz');
    await writeChemiscope(a, systems, { properties: { n: [1, 2] } });
    writeChemiscopeSync(b, systems, { properties: { n: [1, 2] } });
    expect(fs.readFileSync(a, 'utf8')).toContain('\n  "meta"');
    expect([...fs.readFileSync(b).subarray(0, 2)]).toEqual([0x1f, 0x8b]);
    const da = readDoc(a);
    const db = readDoc(b);
    expect(da.meta.name).toBe('set');
    expect(db.meta.name).toBe('set');
    expect(da).toEqual(db);
    expect(partials()).toEqual([]);
  });

  it('refuses other extensions and leaves no file after a failure', async () => {
    await expect(writeChemiscope(path.join(dir, 'x.txt'), systems)).rejects.toThrow(/must end in \.json or \.json\.gz/);
    const target = path.join(dir, 'bad.json.gz');
    await expect(writeChemiscope(target, systems, { properties: { e: [1, 2, 3, 4] } })).rejects.toThrow(/properties\.e/);
    expect(fs.existsSync(target)).toBe(false);
    expect(partials()).toEqual([]);
  });
});

const py = interopPython();

describe("chemiscope's own checks (ACDC_INTEROP_PYTHON with chemiscope 1.1.0)", () => {
  async function bundle(): Promise<string> {
    const pkg = (await checked(py!, ['-c', 'import chemiscope, os; print(os.path.dirname(chemiscope.__file__))'])).trim();
    const file = path.join(pkg, 'static', 'chemiscope-widget.mjs');
    expect(fs.existsSync(file), `${file} (the viewer bundle) is missing`).toBe(true);
    return file;
  }

  async function validate(file: string): Promise<{ status: number | null; out: string }> {
    const r = await run(process.execPath, [path.join(__dirname, 'interop', 'chemiscope_validate.mjs'), await bundle(), file]);
    return { status: r.status, out: r.stdout + r.stderr };
  }

  it('a map document with every kind of property passes the viewer validator and create_input', async () => {
    const atoms = systems.flatMap((s) => Array.from({ length: s.size }, () => s));
    expect(atoms).toHaveLength(5);
    const X = { data: new Float64Array([0.1, 0.2, 0.3, 0.5, 0.1, 0.9, 0.4, 0.4, 0.2, 0.6, 0.8, 0.1]), shape: [4, 3] };
    const p = pca(X, 2);
    const file = path.join(dir, 'map.json.gz');
    await writeChemiscope(file, [...systems, ...systems.map((s) => new System({ types: s.types, positions: s.positions }))], {
      properties: { pca: { target: 'structure', values: p.scores, description: 'PCA of X' } },
      environments: { cutoff: 3.5 },
      settings: chemiscopeMapSettings({ x: 'pca[1]', y: 'pca[2]', color: 'pca[1]' }),
      meta: { name: 'test map', authors: ['acdc'] },
      fromSystems: false,
    });
    const v = await validate(file);
    expect(v.out).toMatch(/^valid: /);
    expect(v.status).toBe(0);
    const check = JSON.parse(await checked(py!, [path.join(__dirname, 'interop', 'chemiscope_check.py'), file]));
    expect(check.chemiscope).toBe('1.1.0');
    expect(check.structures).toBe(4);
    expect(check.environments).toBe(10);
    expect(check.properties).toEqual(['pca[1]', 'pca[2]']);
  });

  it('properties from extxyz info and arrays (numbers, strings, 3 columns) pass both checks, as .json', async () => {
    const file = path.join(dir, 'props.json');
    await writeChemiscope(file, systems, { settings: chemiscopeMapSettings({ x: 'energy', y: 'energy', color: 'config_type' }) });
    expect((await validate(file)).out).toMatch(/^valid: /);
    const check = JSON.parse(await checked(py!, [path.join(__dirname, 'interop', 'chemiscope_check.py'), file]));
    expect(check.properties).toEqual(['charge', 'config_type', 'energy', 'forces[1]', 'forces[2]', 'forces[3]', 'label']);
  });

  it('the validator is live: it rejects a document with a wrong-length property', async () => {
    const file = path.join(dir, 'broken.json');
    const doc = chemiscopeInput(systems, { properties: { n: [1, 2] } });
    (doc.properties.n.values as number[]).push(3);
    fs.writeFileSync(file, JSON.stringify(doc));
    const v = await validate(file);
    expect(v.status).not.toBe(0);
    expect(v.out).toContain("wrong size for 'properties['n'].values': expected 2, got 3");
    const r = await run(py!, [path.join(__dirname, 'interop', 'chemiscope_check.py'), file]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/wrong size for the property 'n'/);
  });
});
