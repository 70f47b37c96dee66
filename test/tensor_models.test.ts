// SparseTensorGPR and TensorLinearModel: equal to a numpy transcription of
// the equations (scripts/reference/tensor_gpr_numpy.py, fixture
// test/fixtures/tensors/small_case_expected.json) to 1e-8 relative, dipoles
// with and without the per-species charge term (and its fitted charges);
// predictions rotate with the structure (proper and improper rotations) to
// 1e-10, do not depend on the atom order (1e-12) nor on a translation
// (1e-12); file round trip; bad
// input; cancellation; the CLI end to end (fit, predict, ASE reads the
// output, one-line errors and no file).
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LinearModel, SparseGPR, SparseTensorGPR, System, TensorLinearModel, loadModelSync, loadTensorModelSync, readXyzSync } from 'acdc-ml';
import { interopPython } from './prerequisites';
import { run } from './spawn_helpers';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const data = path.join(root, 'examples', 'molecule-tensors.xyz');
const setup = JSON.parse(fs.readFileSync(path.join(root, 'test', 'fixtures', 'tensors', 'small_case.json'), 'utf8'));
const expected = JSON.parse(fs.readFileSync(path.join(root, 'test', 'fixtures', 'tensors', 'small_case_expected.json'), 'utf8'));
const frames = readXyzSync(data);
const train = (setup.train as number[]).map((k) => frames[k]);
const test = (setup.test as number[]).map((k) => frames[k]);

function folder(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-tensor-'));
}

async function acdc(args: string[]) {
  const r = await run(process.execPath, [cli, ...args], { env: { ...process.env, ACDC_NUM_THREADS: '2' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectOneLineError(r: Awaited<ReturnType<typeof acdc>>, message: RegExp, what: string) {
  expect(r.status, `${what}: ${r.stderr}`).not.toBe(0);
  const lines = r.stderr.trim().split('\n');
  expect(lines, `${what}: ${r.stderr}`).toHaveLength(1);
  expect(lines[0], what).toMatch(/^acdc( \w+)?: /);
  expect(lines[0], what).toMatch(message);
}

/** max_k |a_k − b_k| / max_k |b_k| over every component of every structure. */
function relative(a: ArrayLike<number>[], b: ArrayLike<number>[]): number {
  let diff = 0;
  let scale = 0;
  b.forEach((row, k) => {
    for (let c = 0; c < row.length; c++) {
      diff = Math.max(diff, Math.abs(a[k][c] - row[c]));
      scale = Math.max(scale, Math.abs(row[c]));
    }
  });
  return diff / scale;
}

/** A random rotation matrix (Gram–Schmidt of fixed-seed vectors), times −1 when improper. */
function rotation(seed: number, improper: boolean): number[][] {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648), s / 2147483648 - 0.5);
  const u = [rnd(), rnd(), rnd()];
  const nu = Math.hypot(...u);
  const a = u.map((x) => x / nu);
  const v = [rnd(), rnd(), rnd()];
  const d = v[0] * a[0] + v[1] * a[1] + v[2] * a[2];
  const w = v.map((x, i) => x - d * a[i]);
  const nw = Math.hypot(...w);
  const b = w.map((x) => x / nw);
  const c = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  const r = [a, b, c];
  return improper ? r.map((row) => row.map((x) => -x)) : r;
}

function rotated(s: System, r: number[][]): System {
  const p = s.positions;
  const positions = Array.from({ length: s.size }, (_, i) => [0, 1, 2].map((a) => r[a][0] * p[3 * i] + r[a][1] * p[3 * i + 1] + r[a][2] * p[3 * i + 2]));
  return new System({ types: s.types, positions });
}

function rotateTensor(t: ArrayLike<number>, r: number[][]): number[] {
  if (t.length === 3) return [0, 1, 2].map((a) => r[a][0] * t[0] + r[a][1] * t[1] + r[a][2] * t[2]);
  const out = new Array(9).fill(0);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) out[3 * i + j] += r[i][a] * t[3 * a + b] * r[j][b];
  return out;
}

const models = {
  gpr_dipole: () => SparseTensorGPR.fitSync(train, { hypers: setup.hypers, target: 'dipole', ...setup.gpr }),
  gpr_dipole_no_charges: () => SparseTensorGPR.fitSync(train, { hypers: setup.hypers, target: 'dipole', ...setup.gpr, charges: false }),
  gpr_polarizability: () => SparseTensorGPR.fitSync(train, { hypers: setup.hypers, target: 'polarizability', ...setup.gpr }),
  linear_dipole: () => TensorLinearModel.fitSync(train, { hypers: setup.linear_hypers, target: 'dipole', ...setup.linear }),
  linear_dipole_no_charges: () => TensorLinearModel.fitSync(train, { hypers: setup.linear_hypers, target: 'dipole', ...setup.linear, charges: false }),
  linear_polarizability: () => TensorLinearModel.fitSync(train, { hypers: setup.linear_hypers, target: 'polarizability', ...setup.linear }),
};

describe('SparseTensorGPR and TensorLinearModel', () => {
  for (const [name, make] of Object.entries(models)) {
    it(`${name}: equals the numpy transcription (≤ 1e-8 relative), rotates with the structure, ignores atom order`, () => {
      const model = make();
      const p = model.predictSync(test, { perAtom: true });
      expect(relative(p.tensors, expected[name])).toBeLessThanOrEqual(1e-8);
      if (expected[`${name}_charges`] !== undefined) {
        // the default of a dipole model: per-species charges, equal to numpy's (same gauge Σ_Z N_Z q_Z = 0)
        expect(model.charges).not.toBeNull();
        expect(relative([model.charges!], [expected[`${name}_charges`]])).toBeLessThanOrEqual(1e-8);
        expect(model.fitInfo.charges).toBe(true);
      } else {
        expect(model.charges).toBeNull();
      }
      // atomic contributions sum to the structure's tensor
      p.tensors.forEach((t, k) => {
        const size = t.length;
        const sum = Array.from(t, (_, c) => {
          let x = 0;
          for (let i = 0; i < test[k].size; i++) x += p.atoms![k][i * size + c];
          return x;
        });
        expect(relative([sum], [t])).toBeLessThanOrEqual(1e-12);
      });
      for (const [seed, improper] of [[1, false], [2, true], [3, false], [4, true]] as const) {
        const r = rotation(seed * 7919, improper);
        const got = model.predictSync(test.map((s) => rotated(s, r))).tensors;
        expect(relative(got, p.tensors.map((t) => rotateTensor(t, r))), `rotation ${seed} improper ${improper}`).toBeLessThanOrEqual(1e-10);
      }
      const permuted = test.map((s) => {
        // reversed, then the first two swapped: a permutation that is not an involution for n ≥ 3
        const order = Array.from({ length: s.size }, (_, i) => s.size - 1 - i);
        [order[0], order[1]] = [order[1], order[0]];
        return new System({ types: order.map((i) => s.types[i]), positions: order.map((i) => Array.from(s.positions.subarray(3 * i, 3 * i + 3))) });
      });
      expect(relative(model.predictSync(permuted).tensors, p.tensors)).toBeLessThanOrEqual(1e-12);
      const moved = test.map((s) => new System({ types: s.types, positions: Array.from(s.positions, (x, i) => x + [5.3, -11.2, 0.7][i % 3]) }));
      expect(relative(model.predictSync(moved).tensors, p.tensors), 'translated').toBeLessThanOrEqual(1e-12);
    });
  }

  it('save → load → predict is bit for bit; the loaders refuse the other kinds', async () => {
    const dir = folder();
    const gpr = models.gpr_polarizability();
    const file = path.join(dir, 'pol.acdc');
    await gpr.save(file);
    const back = SparseTensorGPR.loadSync(file);
    expect(back.target).toBe('polarizability');
    expect(back.predictSync(test).tensors).toEqual(gpr.predictSync(test).tensors);
    expect(Buffer.from(back.toBuffer()).equals(Buffer.from(gpr.toBuffer()))).toBe(true);
    expect(() => TensorLinearModel.loadSync(file)).toThrow(/holds a sparse_tensor_gpr model, not tensor_linear/);
    expect(() => SparseGPR.loadSync(file)).toThrow(/holds a sparse_tensor_gpr tensor model, not an energy model/);
    expect(() => loadModelSync(file)).toThrow(/tensor model/);
    const energy = LinearModel.fitSync(readXyzSync(path.join(root, 'examples', 'emt-cu.xyz')).slice(0, 2), { hypers: setup.linear_hypers, regularizer: 1e-3 });
    const energyFile = path.join(dir, 'cu.acdc');
    energy.saveSync(energyFile);
    expect(() => SparseTensorGPR.loadSync(energyFile)).toThrow(/holds a linear energy model, not a tensor model/);
    expect(() => loadTensorModelSync(energyFile)).toThrow(/not a tensor model/);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length >> 1] ^= 1;
    fs.writeFileSync(path.join(dir, 'bad.acdc'), bytes);
    expect(() => loadTensorModelSync(path.join(dir, 'bad.acdc'))).toThrow(/checksum/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('async fit and predict equal the Sync forms; an aborted signal rejects', async () => {
    const a = await SparseTensorGPR.fit(train, { hypers: setup.hypers, target: 'dipole', ...setup.gpr });
    const b = models.gpr_dipole();
    expect((await a.predict(test)).tensors).toEqual(b.predictSync(test).tensors);
    const controller = new AbortController();
    controller.abort();
    await expect(SparseTensorGPR.fit(train, { hypers: setup.hypers, target: 'dipole', ...setup.gpr, signal: controller.signal })).rejects.toThrow(/abort/i);
    await expect(a.predict(test, { signal: controller.signal })).rejects.toThrow(/abort/i);
  });

  it('bad input is named', () => {
    const base = { hypers: setup.hypers, target: 'dipole' as const, ...setup.gpr };
    const edit = (k: number, info: Record<string, number[]>) => train.map((s, j) => (j === k ? new System({ types: s.types, positions: s.positions, info }) : s));
    expect(() => SparseTensorGPR.fitSync(edit(2, {}), base)).toThrow(/systems\[2\]\.info\.dipole is missing/);
    expect(() => SparseTensorGPR.fitSync(edit(3, { dipole: [1, 2] }), base)).toThrow(/systems\[3\]\.info\.dipole = .* \(expected 3 numbers/);
    expect(() => SparseTensorGPR.fitSync(edit(4, { dipole: [1, NaN, 2] }), base)).toThrow(/systems\[4\]\.info\.dipole\[1\] = NaN/);
    expect(() => SparseTensorGPR.fitSync(train, { ...base, target: 'quadrupole' as 'dipole' })).toThrow(/target = .*quadrupole/);
    expect(() => SparseTensorGPR.fitSync(train, { ...base, key: 'mu' })).toThrow(/systems\[0\]\.info\.mu is missing/);
    expect(() => SparseTensorGPR.fitSync(train, { ...base, sigma: 0 })).toThrow(/sigma = 0/);
    expect(() => SparseTensorGPR.fitSync(train, { ...base, sparse: { count: 1000 } })).toThrow(/sparse\.count = 1000/);
    const pol = train.map((s) => new System({ types: s.types, positions: s.positions, info: { polarizability: [1, 0.5, 0, 0, 1, 0, 0, 0, 1] } }));
    expect(() => SparseTensorGPR.fitSync(pol, { ...base, target: 'polarizability' })).toThrow(/systems\[0\]: polarizability is not symmetric/);
    const model = models.gpr_dipole();
    expect(() => model.predictSync(new System({ types: [16, 1], positions: [[0, 0, 0], [1.3, 0, 0]] }))).toThrow(/contains 16, a species the model was not trained on/);
    // the charge term: dipoles only, booleans only, no periodic frames
    expect(() => SparseTensorGPR.fitSync(pol, { ...base, target: 'polarizability', charges: true })).toThrow(/charges = true: the charge term is for dipoles, not a polarizability/);
    expect(() => TensorLinearModel.fitSync(train, { hypers: setup.linear_hypers, target: 'dipole', ...setup.linear, charges: 1 as unknown as boolean })).toThrow(/charges must be a boolean, got 1/);
    const box = { cell: [[30, 0, 0], [0, 30, 0], [0, 0, 30]], pbc: [true, true, true] as [boolean, boolean, boolean] };
    const periodic = train.map((s, j) => (j === 5 ? new System({ types: s.types, positions: s.positions, info: s.info, ...box }) : s));
    expect(() => SparseTensorGPR.fitSync(periodic, base)).toThrow(/systems\[5\] is periodic .*charges: false \(acdc fit --no-charges\)$/);
    expect(SparseTensorGPR.fitSync(periodic, { ...base, charges: false }).charges).toBeNull();
    expect(() => model.predictSync(periodic.slice(4, 6))).toThrow(/systems\[1\] is periodic/);
  });
});

describe('acdc fit --target / acdc predict with a tensor model', () => {
  const dir = folder();
  const hypers = path.join(dir, 'hypers.json');
  fs.writeFileSync(hypers, JSON.stringify(setup.hypers));
  const trainFile = path.join(dir, 'train.xyz');
  const testFile = path.join(dir, 'test.xyz');
  fs.writeFileSync(trainFile, fs.readFileSync(data, 'utf8').split(/(?=^\d+\n)/m).slice(0, 40).join(''));
  fs.writeFileSync(testFile, fs.readFileSync(data, 'utf8').split(/(?=^\d+\n)/m).slice(300, 316).join(''));

  it('fits, predicts, and writes what ASE reads; the numbers are the API’s', async () => {
    for (const target of ['dipole', 'polarizability'] as const) {
      const model = path.join(dir, `${target}.acdc`);
      const r = await acdc(['fit', trainFile, '-o', model, '--target', target, '--hypers', hypers, '--sparse', '8', '--zeta', '2', '--json']);
      expect(r.status, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout);
      expect(s.target).toBe(target);
      // dipoles get per-species charges by default (and report them)
      expect(s.charges === null).toBe(target !== 'dipole');
      if (target === 'dipole') expect(Object.keys(s.charges)).toEqual(s.species.map(String));
      expect(s.training.rmse).toBeLessThan(0.05);
      const out = path.join(dir, `${target}-pred.xyz`);
      const q = await acdc(['predict', model, testFile, '-o', out, '--json']);
      expect(q.status, q.stderr).toBe(0);
      const summary = JSON.parse(q.stdout);
      expect(summary.errors.components).toBe(16 * (target === 'dipole' ? 3 : 9));
      const api = SparseTensorGPR.loadSync(model).predictSync(readXyzSync(testFile)).tensors;
      const written = readXyzSync(out);
      written.forEach((f, k) => {
        expect(f.info[`ref_${target}`]).toBeDefined();
        const v = f.info[target] as number[];
        for (let c = 0; c < v.length; c++) expect(Math.abs(v[c] - api[k][c])).toBeLessThanOrEqual(1e-14 * Math.max(1, Math.abs(api[k][c])));
      });
      const py = interopPython();
      const script = [
        'import json, sys',
        'from ase.io import read',
        'frames = read(sys.argv[1], ":")',
        'key = sys.argv[2]',
        'print(json.dumps([(a.get_dipole_moment().tolist() if key == "dipole" else a.info[key].tolist()) for a in frames]))',
      ].join('\n');
      const a = await run(py, ['-c', script, out, target]);
      expect(a.status, a.stderr).toBe(0);
      const ase = JSON.parse(a.stdout) as number[][];
      ase.forEach((v, k) => expect(v).toEqual(written[k].info[target]));
    }
  });

  it('bad input: one line, a non-zero exit code and no file', async () => {
    const out = path.join(dir, 'never.acdc');
    const bad = path.join(dir, 'bad.xyz');
    const text = fs.readFileSync(trainFile, 'utf8');
    const cases: Array<[string, string, RegExp]> = [
      ['missing key', text.replace(/ dipole="[^"]*"/, ''), /frame 0: dipole is missing/],
      ['wrong shape', text.replace(/ dipole="([-\d.e]+) ([-\d.e]+) ([-\d.e]+)"/, ' dipole="$1 $2"'), /frame 0: dipole = .*expected 3 numbers/],
      ['NaN', text.replace(/ dipole="([-\d.e]+) /, ' dipole="nan '), /dipole\[0\] = NaN/],
    ];
    for (const [what, content, message] of cases) {
      fs.writeFileSync(bad, content);
      expectOneLineError(await acdc(['fit', bad, '-o', out, '--target', 'dipole', '--hypers', hypers, '--sparse', '8']), message, what);
      expect(fs.existsSync(out), what).toBe(false);
    }
    expectOneLineError(await acdc(['fit', trainFile, '-o', out, '--target', 'quadrupole']), /quadrupole/, 'unknown target');
    expect(fs.existsSync(out)).toBe(false);
    expectOneLineError(await acdc(['fit', trainFile, '-o', out, '--target', 'dipole', '--target-key', 'mu', '--hypers', hypers]), /frame 0: mu is missing/, 'absent key');
    expect(fs.existsSync(out)).toBe(false);
    // a tensor model is not an energy model, and the other way round
    const model = path.join(dir, 'dipole.acdc');
    if (!fs.existsSync(model)) expect((await acdc(['fit', trainFile, '-o', model, '--target', 'dipole', '--hypers', hypers, '--sparse', '8'])).status).toBe(0);
    expect(() => SparseGPR.loadSync(model)).toThrow(/tensor model/);
    // --no-charges: the λ-SOAP term alone
    const plain = path.join(dir, 'dipole-plain.acdc');
    const r = await acdc(['fit', trainFile, '-o', plain, '--target', 'dipole', '--hypers', hypers, '--sparse', '8', '--no-charges', '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).charges).toBeNull();
    expect(SparseTensorGPR.loadSync(plain).charges).toBeNull();
    expect(SparseTensorGPR.loadSync(model).charges).toHaveLength(4);
    const pred = path.join(dir, 'never.xyz');
    const noC = path.join(dir, 'sulfur.xyz');
    fs.writeFileSync(noC, '2\nProperties=species:S:1:pos:R:3\nS 0 0 0\nH 1.3 0 0\n');
    expectOneLineError(await acdc(['predict', model, noC, '-o', pred]), /species the model was not trained on/, 'unknown species');
    expect(fs.existsSync(pred)).toBe(false);
    // the charge term needs molecules: a periodic frame is refused, naming the option
    const periodic = path.join(dir, 'periodic.xyz');
    fs.writeFileSync(periodic, '3\nLattice="20 0 0 0 20 0 0 0 20" Properties=species:S:1:pos:R:3 pbc="T T T"\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n');
    expectOneLineError(await acdc(['predict', model, periodic, '-o', pred]), /systems\[0\] is periodic.*refit the model with charges: false \(acdc fit --no-charges\)$/, 'periodic frame');
    expect(fs.existsSync(pred)).toBe(false);
  });
});

describe('acdc serve --model with a tensor model: POST /v1/predict', () => {
  it('returns the tensors of the loaded model (same doubles); forces are refused', async () => {
    const dir = folder();
    const file = path.join(dir, 'pol.acdc');
    const model = models.gpr_polarizability();
    await model.save(file);
    const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--model-file', file], { env: { ...process.env, ACDC_NUM_THREADS: '2' }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d) => {
          out += d;
          const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.on('exit', (code) => reject(new Error(`acdc serve exited with ${code}`)));
      });
      const post = (url: string, body: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: url, headers: { 'content-type': 'application/json' } }, (res) => {
            let text = '';
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode!, body: text }));
          });
          req.on('error', reject);
          req.end(body);
        });
      const structures = test.slice(0, 4).map((s) => ({ types: Array.from(s.types), positions: Array.from(s.positions) }));
      const a = await post('/v1/predict', JSON.stringify({ structures }));
      expect(a.status, a.body).toBe(200);
      const answer = JSON.parse(a.body);
      expect(answer.target).toBe('polarizability');
      expect(answer.polarizability).toEqual(model.predictSync(test.slice(0, 4)).tensors.map((t) => Array.from(t)));
      const b = await post('/v1/predict?forces=true', JSON.stringify({ structures }));
      expect(b.status).toBe(400);
      expect(JSON.parse(b.body).error).toMatch(/forces: the model is a sparse_tensor_gpr polarizability model/);
    } finally {
      child.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
