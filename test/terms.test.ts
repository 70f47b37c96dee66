// Sums of kernels (GAP's distance_2b + soap): SparseGPR.fit({terms}) against
// a numpy transcription (scripts/reference/terms_numpy.py on the dump of
// scripts/reference/terms_dump.js; fixture test/fixtures/models/terms_expected.json),
// finite differences, symmetry, the model file, bad input, and
// `acdc fit --terms 2b,soap` end to end.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { SparseGPR, loadModelSync, modelFromBuffer } from 'acdc-ml';
import { FIXTURES, checkFiniteDifferences, checkSymmetries, relativeError, smallTest, smallTrain } from './potential_helpers';
import { run } from './spawn_helpers';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const termsCase: any = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'terms_case.json'), 'utf8'));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const expected: any = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'terms_expected.json'), 'utf8'));
const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');

// terms_case.json uses the same frames as small_case.json
const model = SparseGPR.fitSync(smallTrain, termsCase.gpr);

describe('SparseGPR with a distance_2b term', () => {
  it('equals the numpy transcription (≤ 1e-8 relative)', () => {
    expect(smallTrain.map((s) => s.info.energy)).toHaveLength(termsCase.train.length);
    const p = model.predictSync(smallTest, { forces: true, variance: true });
    expect(relativeError(model.weights, expected.weights)).toBeLessThan(1e-8);
    expect(relativeError(p.energy, expected.energy)).toBeLessThan(1e-8);
    expect(relativeError(p.variance!, expected.variance)).toBeLessThan(1e-8);
    let periodic = 0;
    smallTest.forEach((s, k) => {
      expect(relativeError(p.forces![k], expected.forces[k])).toBeLessThan(1e-8);
      if (expected.stress[k] !== null) {
        expect(relativeError(model.predictSync(s, { stress: true }).stress![0], expected.stress[k])).toBeLessThan(1e-8);
        periodic++;
      }
    });
    expect(periodic).toBeGreaterThan(2);
    const terms = model.fitInfo.terms as Array<Record<string, unknown>>;
    expect(terms.map((t) => t.type)).toEqual(['soap', 'distance_2b']);
    expect(terms[1].sparse_counts).toEqual(expected.pair_sparse.map((x: number[]) => x.length));
  });

  it('has forces and stress equal to finite differences (≤ 1e-6 relative)', () => {
    for (const s of [smallTest[0], smallTest[3]]) checkFiniteDifferences(model, s, 1e-5, 1e-6);
  });

  it('is invariant under rotations and permutations', () => {
    checkSymmetries(model, smallTest[1]);
  });

  it('round-trips through the model file (version 2) bit for bit', () => {
    const bytes = model.toBuffer();
    expect(new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true)).toBe(2);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-terms-'));
    model.saveSync(path.join(dir, 'm.acdc'));
    const back = loadModelSync(path.join(dir, 'm.acdc'));
    const o = { forces: true, stress: true, variance: true };
    const periodic = smallTest.filter((s) => s.pbc.every(Boolean));
    expect(back.predictSync(periodic, o)).toEqual(model.predictSync(periodic, o));
    const corrupt = Uint8Array.from(bytes);
    corrupt[bytes.length - 100] ^= 1;
    expect(() => modelFromBuffer(corrupt, 'c.acdc')).toThrow(/c\.acdc: checksum mismatch/);
  });

  it('validates the 2-body term of a model file (header edited, checksum recomputed)', () => {
    const bytes = Buffer.from(model.toBuffer());
    const headerLength = Number(bytes.readBigUInt64LE(16));
    const edit = (f: (header: string) => string, version = 2) => {
      const header = f(bytes.subarray(24, 24 + headerLength).toString('latin1'));
      expect(header.length).toBe(headerLength);
      const out = Buffer.concat([bytes.subarray(0, 24), Buffer.from(header, 'latin1'), bytes.subarray(24 + headerLength)]);
      out.writeUInt32LE(version, 8);
      out.writeUInt32LE(zlib.crc32(out.subarray(0, out.length - 4)), out.length - 4);
      return out;
    };
    // the last occurrence: the header's `terms` (after `meta`, which repeats the settings)
    const last = (h: string, a: string, b: string) => h.slice(0, h.lastIndexOf(a)) + b + h.slice(h.lastIndexOf(a) + a.length);
    expect(() => modelFromBuffer(edit((h) => h), 'same.acdc')).not.toThrow();
    expect(() => modelFromBuffer(edit((h) => last(h, '"theta":0.5', '"theta":-5 ')), 't.acdc')).toThrow(/t\.acdc: .*distance_2b\.theta = -5/);
    expect(() => modelFromBuffer(edit((h) => last(h, '"type":"distance_2b"', '"type":"distance_3b"')), 't.acdc')).toThrow(/terms\[0\]\.type = "distance_3b"/);
    expect(() => modelFromBuffer(edit((h) => h, 1), 'v1.acdc')).toThrow(/v1\.acdc: format version 1 cannot hold "terms"/);
  });

  it('differs from the SOAP-only model and matches it when the 2-body δ is tiny', () => {
    const soap = termsCase.gpr.terms[1];
    const { terms: _terms, ...rest } = termsCase.gpr;
    const plain = SparseGPR.fitSync(smallTrain, { ...rest, hypers: soap.hypers, sparse: soap.sparse, kernel: soap.kernel });
    const tiny = SparseGPR.fitSync(smallTrain, { ...rest, terms: [{ ...termsCase.gpr.terms[0], delta: 1e-9 }, soap] });
    const a = plain.predictSync(smallTest).energy;
    expect(relativeError(tiny.predictSync(smallTest).energy, a)).toBeLessThan(1e-9);
    expect(relativeError(model.predictSync(smallTest).energy, a)).toBeGreaterThan(1e-6);
  });

  it("takes the 2-body term's own jitter (relative to its δ²): omitted or equal to the fit's, the same model bit for bit; another value, another model, recorded", () => {
    const soap = termsCase.gpr.terms[1];
    const pair = termsCase.gpr.terms[0];
    const { terms: _terms, ...rest } = termsCase.gpr;
    const jitter = rest.jitter ?? 1e-8;
    const same = SparseGPR.fitSync(smallTrain, { ...rest, terms: [{ ...pair, jitter }, soap] });
    expect(Array.from(same.weights)).toEqual(Array.from(model.weights));
    const other = SparseGPR.fitSync(smallTrain, { ...rest, terms: [{ ...pair, jitter: 1e-3 }, soap] });
    expect(Array.from(other.weights)).not.toEqual(Array.from(model.weights));
    const terms = other.fitInfo.terms as Array<Record<string, unknown>>;
    expect(terms.map((t) => t.jitter)).toEqual([jitter, 1e-3]);
    expect((model.fitInfo.terms as Array<Record<string, unknown>>).map((t) => t.jitter)).toEqual([jitter, jitter]);
  });

  it("sparseJitter is GAP's absolute sparse_jitter: the same model as each term's relative jitter given apart; refused next to a relative one", () => {
    const soap = termsCase.gpr.terms[1];
    const pair = termsCase.gpr.terms[0];
    const { terms: _terms, ...rest } = termsCase.gpr;
    const d = soap.kernel?.delta ?? 0.2;
    const absolute = SparseGPR.fitSync(smallTrain, { ...rest, sparseJitter: 1e-8, terms: [pair, soap] });
    const apart = SparseGPR.fitSync(smallTrain, { ...rest, jitter: 1e-8 / (d * d), terms: [{ ...pair, jitter: 1e-8 / (pair.delta * pair.delta) }, soap] });
    expect(Array.from(absolute.weights)).toEqual(Array.from(apart.weights));
    expect((absolute.fitInfo.terms as Array<Record<string, unknown>>).map((t) => t.jitter)).toEqual([1e-8 / (d * d), 1e-8 / (pair.delta * pair.delta)]);
    const fit = (extra: object, terms = [pair, soap]) => () => SparseGPR.fitSync(smallTrain, { ...rest, ...extra, terms } as never);
    expect(fit({ sparseJitter: 1e-8, jitter: 1e-8 })).toThrow(/^sparseJitter \(absolute, every term\) and jitter \(relative to δ²\) both set the jitter: give one$/);
    expect(fit({ sparseJitter: 1e-8 }, [{ ...pair, jitter: 1e-8 }, soap])).toThrow(/distance_2b term's jitter both set its jitter/);
    expect(fit({ sparseJitter: -1 })).toThrow(/sparseJitter = -1/);
  });

  it('rejects bad terms with a message naming the field', () => {
    const soap = termsCase.gpr.terms[1];
    const pair = termsCase.gpr.terms[0];
    const { terms: _terms, ...rest } = termsCase.gpr;
    const fit = (terms: unknown, extra: object = {}) => () => SparseGPR.fitSync(smallTrain, { ...rest, ...extra, terms } as never);
    expect(fit([{ type: '3b' }, soap])).toThrow(/terms\[0\]\.type = "3b" \(expected 'soap' or 'distance_2b'\)/);
    expect(fit([{ ...pair, theta: -1 }, soap])).toThrow(/terms\[0\]\.theta = -1 \(expected a positive number\)/);
    expect(fit([{ ...pair, cutoff: 0 }, soap])).toThrow(/terms\[0\]\.cutoff = 0/);
    expect(fit([{ ...pair, transition: 5 }, soap])).toThrow(/terms\[0\]\.transition = 5/);
    expect(fit([{ ...pair, sparse: { count: 0 } }, soap])).toThrow(/terms\[0\]\.sparse\.count = 0/);
    expect(fit([{ ...pair, sigma: 1 }, soap])).toThrow(/unknown terms\[0\] \(distance_2b\) option "sigma"/);
    expect(fit([{ ...pair, jitter: -1 }, soap])).toThrow(/terms\[0\]\.jitter = -1/);
    expect(fit([pair])).toThrow(/terms has no 'soap' term/);
    expect(fit([pair, soap, soap])).toThrow(/terms\[2\]: a second 'soap' term/);
    expect(fit([])).toThrow(/terms must be a non-empty list/);
    expect(fit([pair, soap], { hypers: soap.hypers })).toThrow(/hypers is given next to terms/);
    expect(fit([pair, { ...soap, sparse: { count: 0 } }])).toThrow(/terms\[1\]\.sparse\.count = 0/);
  });
});

describe('acdc fit --terms', () => {
  const data = path.join(FIXTURES, 'train.xyz');
  const acdc = (args: string[]) => run(process.execPath, [cli, ...args], { env: { ...process.env, ACDC_NUM_THREADS: '2' } });
  const hypersFile = (dir: string) => {
    const file = path.join(dir, 'hypers.json');
    fs.writeFileSync(file, JSON.stringify(termsCase.gpr.terms[1].hypers));
    return file;
  };

  it('fits 2b + soap and records both terms', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-terms-cli-'));
    const out = path.join(dir, 'm.acdc');
    const r = await acdc(['fit', data, '-o', out, '--hypers', hypersFile(dir), '--sparse', '10', '--model', 'gpr', '--terms', '2b,soap', '--2b-theta', '0.5', '--2b-sparse', '8', '--2b-delta', '0.5', '--2b-jitter', '1e-6', '--no-progress']);
    expect(r.status, r.stderr).toBe(0);
    const m = loadModelSync(out);
    const terms = m.fitInfo.terms as Array<Record<string, unknown>>;
    expect(terms[1]).toMatchObject({ type: 'distance_2b', cutoff: 4, transition: 0.5, theta: 0.5, delta: 0.5, jitter: 1e-6 });
    expect(terms[0]).toMatchObject({ type: 'soap', jitter: 1e-8 });
  });

  it("--sparse-jitter is GAP's absolute sparse_jitter: each term gets it over its own δ², the same model as the relative jitters given apart", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-terms-cli-'));
    const common = ['--hypers', hypersFile(dir), '--sparse', '10', '--model', 'gpr', '--terms', '2b,soap', '--delta', '0.2', '--2b-delta', '0.5', '--validation', '0', '--no-progress'];
    const a = path.join(dir, 'a.acdc');
    const b = path.join(dir, 'b.acdc');
    const ra = await acdc(['fit', data, '-o', a, ...common, '--sparse-jitter', '1e-8']);
    expect(ra.status, ra.stderr).toBe(0);
    const rb = await acdc(['fit', data, '-o', b, ...common, '--jitter', String(1e-8 / (0.2 * 0.2)), '--2b-jitter', String(1e-8 / (0.5 * 0.5))]);
    expect(rb.status, rb.stderr).toBe(0);
    const ma = loadModelSync(a);
    const terms = ma.fitInfo.terms as Array<Record<string, unknown>>;
    expect(terms.map((t) => t.jitter)).toEqual([1e-8 / (0.2 * 0.2), 1e-8 / (0.5 * 0.5)]);
    expect(Array.from(ma.weights)).toEqual(Array.from(loadModelSync(b).weights));
  });

  it('bad input: exit code, one line, no file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-terms-cli-'));
    const out = path.join(dir, 'm.acdc');
    const cases: Array<[string[], RegExp]> = [
      [['--terms', '3b,soap'], /unknown term "3b"/],
      [['--terms', '2b'], /has no soap term/],
      [['--terms', '2b,soap', '--2b-theta', '-1'], /--2b-theta.*expected a positive number/],
      [['--terms', '2b,soap', '--2b-sparse', '0'], /--2b-sparse.*expected a positive integer/],
      [['--2b-delta', '1'], /--2b-delta is given but --terms \(soap\) has no 2b term/],
      [['--2b-jitter', '1e-6'], /--2b-jitter is given but --terms \(soap\) has no 2b term/],
      [['--terms', '2b,soap', '--2b-jitter', '-1'], /--2b-jitter.*expected a number ≥ 0/],
      [['--sparse-jitter', '1e-8', '--jitter', '1e-8'], /--sparse-jitter \(absolute, every term\) and --jitter \(relative\) both set a jitter: give one/],
      [['--terms', '2b,soap', '--sparse-jitter', '1e-8', '--2b-jitter', '1e-8'], /and --2b-jitter \(relative\) both set a jitter/],
      [['--sparse-jitter', '-1'], /--sparse-jitter.*-1/],
      [['--terms', '2b,soap', '--model', 'linear'], /--terms 2b,soap needs --model gpr/],
      [['--terms', '2b,soap', '--2b-transition', '9'], /transition = 9/],
    ];
    for (const [args, message] of cases) {
      const r = await acdc(['fit', data, '-o', out, '--hypers', hypersFile(dir), '--sparse', '5', '--no-progress', ...args]);
      expect(r.status, args.join(' ')).not.toBe(0);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^acdc( \w+)?: /);
      expect(lines[0], args.join(' ')).toMatch(message);
      expect(fs.existsSync(out)).toBe(false);
      expect(fs.readdirSync(dir).filter((f) => f !== 'hypers.json')).toEqual([]);
    }
  });
});
