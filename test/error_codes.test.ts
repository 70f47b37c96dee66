// Every error acdc throws carries a stable `code` (the README's table), with
// data where the core has it: the JSON path of a parameter, the line of a
// parse error, the OS's name and number of an I/O error. Each code is reached
// here through the public API, sync and async where both exist.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as acdc from 'acdc-ml';
import { ERROR_CODES, isAcdcError, NeighborList, SoapPowerSpectrum, System, TensorMap, parseXyz, readNpySync, readXyz, readXyzSync, writeXyzSync, type AcdcError } from 'acdc-ml';

const hypers = {
  cutoff: { radius: 3, smoothing: { type: 'ShiftedCosine' as const, width: 0.5 } },
  density: { type: 'Gaussian' as const, width: 0.3 },
  basis: { type: 'TensorProduct' as const, max_angular: 2, radial: { type: 'Gto' as const, max_radial: 2 } },
};
const water = new System({ types: [8, 1, 1], positions: [0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0] });

function thrown(f: () => unknown): AcdcError {
  try {
    f();
  } catch (e) {
    expect(isAcdcError(e), String(e)).toBe(true);
    return e as AcdcError;
  }
  throw new Error('did not throw');
}

async function rejected(p: Promise<unknown>): Promise<AcdcError> {
  try {
    await p;
  } catch (e) {
    expect(isAcdcError(e), String(e)).toBe(true);
    return e as AcdcError;
  }
  throw new Error('did not reject');
}

describe('error codes', () => {
  it('are the documented ones', () => {
    expect([...ERROR_CODES]).toEqual(['ACDC_INVALID_PARAMETER', 'ACDC_INVALID_SYSTEM', 'ACDC_PARSE', 'ACDC_IO', 'ACDC_NUMERICAL', 'ACDC_MEMORY', 'ABORT_ERR', 'ACDC_INTERNAL']);
    const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
    for (const code of ERROR_CODES) expect(readme, code).toContain(`| \`${code}\` |`);
  });

  it('ACDC_INVALID_PARAMETER from the core, with the JSON path as data', () => {
    const e = thrown(() => new SoapPowerSpectrum({ ...hypers, cutoff: { radius: -1, smoothing: { type: 'Step' } } }));
    expect(e.code).toBe('ACDC_INVALID_PARAMETER');
    expect(e.path).toBe('cutoff.radius');
    expect(e.message).toMatch(/^invalid parameter: cutoff\.radius must be a positive finite number, got -1$/);
    // the message carries no tag of the binding
    expect(e.message).not.toMatch(/\u0001/);
    expect(e.stack).not.toMatch(/\u0001/);
    const nested = thrown(() => new SoapPowerSpectrum({ ...hypers, density: { type: 'Gaussian', widht: 0.3 } as never }));
    expect(nested.path).toBe('density.widht');
  });

  it('an unknown top-level hyper-parameter is its own path (cutof, not cutof.cutof)', () => {
    const e = thrown(() => new SoapPowerSpectrum({ ...hypers, cutof: 1 } as never));
    expect(e.code).toBe('ACDC_INVALID_PARAMETER');
    expect(e.path).toBe('cutof');
    expect(e.message).toMatch(/hyper-parameters: cutof: unknown field `cutof`/);
    expect(e.message).not.toMatch(/cutof\.cutof/);
    // fromJson locates the error's path in the user's text
    const text = '{\n  "cutoff": {"radius": 3, "smoothing": {"type": "Step"}},\n  "cutof": 1\n}';
    const located = thrown(() => SoapPowerSpectrum.fromJson(text));
    expect(located.path).toBe('cutof');
    expect(located.message).toMatch(/\(line 3, column 3\)$/);
  });

  it('every calculator of the registry reports an unknown top-level key as its own path, sync and async', async () => {
    const classes = Object.values(acdc).filter((v): v is typeof SoapPowerSpectrum => typeof v === 'function' && typeof (v as { calculatorName?: unknown }).calculatorName === 'string');
    const registry = acdc.calculatorRegistry();
    expect(classes.map((c) => c.calculatorName).sort()).toEqual(registry.map((e) => e.name).sort());
    for (const e of registry) {
      const cls = classes.find((c) => c.calculatorName === e.name)!;
      const typo = { ...JSON.parse(e.defaultHypers ?? e.exampleHypers), cutof: 1 };
      for (const error of [thrown(() => new cls(typo as never)), await rejected(cls.fromJsonAsync(JSON.stringify(typo)))]) {
        expect(error.code, e.name).toBe('ACDC_INVALID_PARAMETER');
        expect(error.path, `${e.name}: ${error.message}`).toBe('cutof');
        expect(error.message, e.name).not.toMatch(/cutof\.cutof/);
      }
    }
  });

  it('ACDC_INVALID_PARAMETER from the TypeScript layer', async () => {
    const soap = new SoapPowerSpectrum(hypers);
    const e = thrown(() => soap.computeSync([water], { bogus: 1 } as never));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.code).toBe('ACDC_INVALID_PARAMETER');
    expect((await rejected(soap.compute([water], { bogus: 1 } as never))).code).toBe('ACDC_INVALID_PARAMETER');
    const nan = thrown(() => new SoapPowerSpectrum({ ...hypers, density: { type: 'Gaussian', width: NaN } }));
    expect(nan).toBeInstanceOf(RangeError);
    expect([nan.code, nan.path]).toEqual(['ACDC_INVALID_PARAMETER', 'density.width']);
    expect(thrown(() => new NeighborList({ cutoff: -1 })).code).toBe('ACDC_INVALID_PARAMETER');
  });

  it('ACDC_INVALID_SYSTEM from the TypeScript layer and from the core', async () => {
    expect(thrown(() => new System({ types: [1], positions: [0, 0] })).code).toBe('ACDC_INVALID_SYSTEM');
    const soap = new SoapPowerSpectrum(hypers);
    const overlapping = new System({ types: [1, 1], positions: [0, 0, 0, 0, 0, 0] });
    const e = thrown(() => soap.computeSync([water, overlapping]));
    expect(e.code).toBe('ACDC_INVALID_SYSTEM');
    expect(e.message).toMatch(/same position/);
    expect((await rejected(soap.compute([overlapping]))).code).toBe('ACDC_INVALID_SYSTEM');
  });

  it('ACDC_PARSE with the line', () => {
    const e = thrown(() => parseXyz('1\n\nH 0 0 x\n'));
    expect(e.code).toBe('ACDC_PARSE');
    expect(e.line).toBe(3);
    const truncated = thrown(() => parseXyz('2\n\nH 0 0 0\n'));
    expect(truncated.code).toBe('ACDC_PARSE');
    expect(thrown(() => SoapPowerSpectrum.fromJson('{"cutoff": ')).code).toBe('ACDC_PARSE');
  });

  it('ACDC_IO with the OS code (ENOENT), sync and async', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-codes-'));
    try {
      const missing = path.join(dir, 'missing.xyz');
      for (const e of [thrown(() => readXyzSync(missing)), await rejected(readXyz(missing)), thrown(() => TensorMap.loadSync(path.join(dir, 'missing.mts')))]) {
        expect(e.code).toBe('ACDC_IO');
        expect(e.osCode).toBe('ENOENT');
        expect(e.errno).toBe(-os.constants.errno.ENOENT);
        expect(e.message).toMatch(/missing\.(xyz|mts)/);
      }
      const folder = thrown(() => writeXyzSync(path.join(dir, 'no', 'such', 'folder.xyz'), [water]));
      expect([folder.code, folder.osCode]).toEqual(['ACDC_IO', 'ENOENT']);
      fs.writeFileSync(path.join(dir, 'text.npy'), 'not numpy');
      // a file that is there but is not .npy: the core reads it as an I/O error without an OS code
      const notNpy = thrown(() => readNpySync(path.join(dir, 'text.npy')));
      expect(['ACDC_IO', 'ACDC_PARSE']).toContain(notNpy.code);
      expect(notNpy.osCode).toBeUndefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ACDC_MEMORY', async () => {
    const soap = new SoapPowerSpectrum(hypers);
    expect(thrown(() => soap.computeSync([water], { maxMemory: 1 })).code).toBe('ACDC_MEMORY');
    expect((await rejected(soap.compute([water], { maxMemory: 1 }))).code).toBe('ACDC_MEMORY');
  });

  it('ACDC_NUMERICAL', async () => {
    // isolated atoms without their own Gaussian: every feature vector is zero, the kernel cannot be normalised
    const frames = [0, 1, 2].map((k) => new System({ types: [1], positions: [0, 0, 0], info: { energy: k } }));
    const options = {
      hypers: { ...hypers, density: { type: 'Gaussian' as const, width: 0.3, center_atom_weight: 0 } },
      targets: { energy: 'energy' },
      sparse: { count: 1, method: 'cur' as const },
      kernel: { zeta: 2, delta: 1 },
      sigmas: { energy: 0.001 },
    };
    const e = thrown(() => acdc.SparseGPR.fitSync(frames, options));
    expect(e.code).toBe('ACDC_NUMERICAL');
    expect(e.message).toMatch(/zero feature vector/);
    expect((await rejected(acdc.SparseGPR.fit(frames, options))).code).toBe('ACDC_NUMERICAL');
  });

  it('ABORT_ERR, as Node names it, unless the caller gave a reason of its own', async () => {
    const soap = new SoapPowerSpectrum(hypers);
    const controller = new AbortController();
    controller.abort();
    const e = await rejected(soap.compute([water], { signal: controller.signal }));
    expect([e.name, e.code]).toEqual(['AbortError', 'ABORT_ERR']);
    expect(e.cause).toBe(controller.signal.reason);
    const own = new AbortController();
    const reason = new Error('stop');
    own.abort(reason);
    await expect(soap.compute([water], { signal: own.signal })).rejects.toBe(reason);
  });

  it('ACDC_INTERNAL: what the binding reports without a code is never passed on uncoded', () => {
    // A panic in the core is the only way to it, and a correct core has
    // none: the conversion is checked on the errors the binding makes.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { fromNative } = require(path.join(__dirname, '..', 'dist', 'errors.js')) as { fromNative: (e: unknown) => AcdcError };
    const panic = fromNative(Object.assign(new Error('\u0001ACDC_INTERNAL\u0001\u0001internal error in compute (please report this bug): boom'), { code: 'GenericFailure' }));
    expect([panic.code, panic.message]).toEqual(['ACDC_INTERNAL', 'internal error in compute (please report this bug): boom']);
    const untagged = fromNative(Object.assign(new Error('writer was poisoned by an earlier error'), { code: 'GenericFailure' }));
    expect(untagged.code).toBe('ACDC_INTERNAL');
    const conversion = fromNative(Object.assign(new Error('Failed to convert JavaScript value `String "x"` into rust type `f64`'), { code: 'NumberExpected' }));
    expect(conversion.code).toBe('ACDC_INVALID_PARAMETER');
  });
});
