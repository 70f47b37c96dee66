// Inputs that used to crash the process, exhaust memory, lose bits or be
// refused: each is now a plain Error or an exact round trip. Inputs that
// crashed the process run in a child process, so that old code fails the test
// without killing the runner.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatXyz, Labels, parseXyz, readNpySync, System, TensorBlock, TensorMap } from 'acdc-ml';
import { run } from './spawn_helpers';

const corpus = join(__dirname, 'fixtures', 'fuzz');

/** Runs `code` (CommonJS, `acdc` in scope) in a fresh node process. */
async function isolated(code: string): Promise<{ status: number | null; signal: string | null; stdout: string; stderr: string }> {
  const r = await run(process.execPath, ['-e', `const acdc = require('acdc-ml');\n${code}`], { timeout: 60_000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Seeded doubles: random bit patterns (subnormals, ±0, huge exponents) and ordinary values. */
function doubles(seed: number, n: number, finite: boolean): Float64Array {
  const out = new Float64Array(n);
  const bits = new BigUint64Array(out.buffer);
  let s = BigInt(seed);
  for (let i = 0; i < n; i++) {
    s = BigInt.asUintN(64, s + 0x9e3779b97f4a7c15n);
    let z = s;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    z ^= z >> 31n;
    bits[i] = i % 4 === 3 ? z & 0x800fffffffffffffn : z; // every fourth one subnormal
    if (i % 50 === 0) out[i] = [0, -0, 5e-324, -Number.MAX_VALUE][(i / 50) % 4];
    if (finite && !Number.isFinite(out[i])) out[i] = -out[i] === out[i] ? 0 : 1.5;
    if (finite && Number.isNaN(out[i])) out[i] = 2.5;
  }
  return out;
}

const same = (a: unknown, b: unknown) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));

describe('extended XYZ: special and random floats', () => {
  it('NaN, ±inf and -0 in info survive parse and format, written as ASE writes them', () => {
    const text = readFileSync(join(corpus, 'special_floats.extxyz'), 'utf8');
    const [frame] = parseXyz(text);
    expect(frame.info.e).toBeNaN();
    expect(frame.info.f).toBe(Infinity);
    expect(Object.is(frame.info.g, -0)).toBe(true);
    expect(frame.info.h).toEqual([NaN, -Infinity]);
    expect(Object.is((frame.info.k as number[])[0], -0)).toBe(true);
    const out = formatXyz(frame);
    expect(out).toContain(' e=nan f=inf g=-0.0 ');
    const [back] = parseXyz(out);
    for (const key of ['e', 'f', 'g']) expect(same(back.info[key], frame.info[key]), key).toBe(true);
    expect((back.info.h as number[]).every((x, i) => same(x, (frame.info.h as number[])[i]))).toBe(true);
    expect(Object.is((back.info.k as number[])[0], -0)).toBe(true);
    // set from JavaScript too
    const s = new System({ types: [1], positions: [0, 0, 0], info: { a: NaN, b: -0, c: [1, -Infinity, -0] } });
    const [r] = parseXyz(formatXyz(s));
    expect(r.info.a).toBeNaN();
    expect(Object.is(r.info.b, -0)).toBe(true);
    expect(r.info.c).toEqual([1, -Infinity, -0]);
    expect(Object.is((r.info.c as number[])[2], -0)).toBe(true);
  });

  it('reads the files ASE wrote to what ASE reads from them', () => {
    const ase = JSON.parse(readFileSync(join(corpus, 'ase_special.json'), 'utf8')) as {
      files: Record<string, { natoms: number; info: Record<string, string | string[]> }>;
    };
    const float = (r: string) => ({ nan: NaN, inf: Infinity, '-inf': -Infinity })[r] ?? Number(r);
    for (const [name, want] of Object.entries(ase.files)) {
      const [frame] = parseXyz(readFileSync(join(corpus, name), 'utf8'));
      expect(frame.size, name).toBe(want.natoms);
      expect(Object.keys(frame.info).sort(), name).toEqual(Object.keys(want.info).sort());
      for (const [key, value] of Object.entries(want.info)) {
        const expected = Array.isArray(value) ? value.map(float) : float(value);
        const got = frame.info[key];
        if (Array.isArray(expected)) expect((got as number[]).every((x, i) => same(x, expected[i])), `${name} ${key}`).toBe(true);
        else expect(same(got, expected), `${name} ${key}: ${String(got)}`).toBe(true);
      }
    }
  });

  it('every double written and read back is bit-identical (10^5 values: info, positions, cell, arrays)', () => {
    const frames: System[] = [];
    const n = 5;
    let total = 0;
    for (let k = 0; total < 100_000; k++) {
      const finite = doubles(k, 3 * n + 3, true);
      const any = doubles(10_000 + k, 2 * n + 6, false);
      frames.push(
        new System({
          types: [1, 6, 7, 8, 14],
          positions: finite.subarray(0, 3 * n),
          cell: [Math.abs(finite[3 * n]) + 1, 0, 0, 0, Math.abs(finite[3 * n + 1]) + 1, 0, 0, 0, Math.abs(finite[3 * n + 2]) + 1],
          pbc: false,
          info: { energy: any[0], stress: Array.from(any.subarray(1, 6)) },
          arrays: { forces: Float64Array.from(any.subarray(6, 6 + 2 * n)) },
        }),
      );
      total += 3 * n + 3 + 2 * n + 6;
    }
    const back = parseXyz(formatXyz(frames));
    let compared = 0;
    frames.forEach((f, k) => {
      const g = back[k];
      const pairs: Array<[ArrayLike<unknown>, ArrayLike<unknown>]> = [
        [f.positions, g.positions],
        [f.cell, g.cell],
        [[f.info.energy], [g.info.energy]],
        [f.info.stress as number[], g.info.stress as number[]],
        [f.arrays.forces as Float64Array, g.arrays.forces as Float64Array],
      ];
      for (const [a, b] of pairs) {
        expect(b.length).toBe(a.length);
        for (let i = 0; i < a.length; i++) {
          if (!same(a[i], b[i])) throw new Error(`frame ${k}: ${String(a[i])} read back as ${String(b[i])}`);
          compared++;
        }
      }
    });
    expect(compared).toBeGreaterThanOrEqual(100_000);
  });

  it('an empty frame as ASE writes it is read, and written the same way', () => {
    const text = readFileSync(join(corpus, 'empty_frame.extxyz'), 'utf8');
    const frames = parseXyz(text);
    expect(frames).toHaveLength(1);
    expect(frames[0].size).toBe(0);
    expect(formatXyz(frames)).toBe(text);
  });

  it('a Properties column count that overflows is an Error', () => {
    const text = readFileSync(join(corpus, 'properties_overflow.extxyz'), 'utf8');
    expect(() => parseXyz(text)).toThrow(/at most/);
  });

  it('messages quote at most about 100 characters of a long line', () => {
    const long = 'x'.repeat(1 << 20);
    for (const text of [`${long}\n`, `1\nProperties=species:S:1:pos:R:3\nH ${long} 0 0\n`]) {
      let message = '';
      try {
        parseXyz(text);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message.length).toBeGreaterThan(0);
      expect(message.length).toBeLessThan(400);
    }
  });

  it('iterXyz with a huge batch reads what is there instead of reserving the batch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'acdc-robust-'));
    const file = join(dir, 'two.extxyz');
    writeFileSync(file, '1\n\nH 0 0 0\n1\n\nHe 0 0 1\n');
    const r = await isolated(`(async () => { let n = 0; for await (const f of acdc.iterXyz(${JSON.stringify(file)}, { batch: 1e9 })) n += f.size; console.log(n); })()`);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('2');
  });
});

describe('System', () => {
  it('accepts element symbols as types, and names an unknown symbol', () => {
    const water = new System({ types: ['O', 'H', 'H'], positions: [0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0] });
    expect(Array.from(water.types)).toEqual([8, 1, 1]);
    expect(Array.from(new System({ types: ['X', 'Og', 6], positions: new Float64Array(9) }).types)).toEqual([0, 118, 6]);
    expect(() => new System({ types: ['O', 'Xx'], positions: new Float64Array(6) })).toThrow(/types\[1\] is "Xx", which is not an element symbol/);
    expect(() => new System({ types: ['o'], positions: new Float64Array(3) })).toThrow(/types\[0\] is "o"/);
  });
});

describe('TensorMap files and blocks', () => {
  it('an .npy header nested 16 000 deep inside an .mts is an Error, not a stack overflow', async () => {
    const file = join(corpus, 'deep_keys.mts');
    const r = await isolated(`try { acdc.TensorMap.fromBuffer(require('fs').readFileSync(${JSON.stringify(file)})); console.log('loaded'); } catch (e) { console.log(e.message); }`);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/keys\.npy.*nested deeper than 16 levels/);
  });

  it('keys declaring more blocks than the archive holds are an Error before anything is allocated', () => {
    for (const name of ['huge_keys_truncated.mts', 'many_keys_no_blocks.mts']) {
      const bytes = readFileSync(join(corpus, name));
      expect(() => TensorMap.fromBuffer(bytes), name).toThrow(/keys\.npy/);
    }
  });

  it('.npy dimensions of 2^32 and more do not wrap', () => {
    expect(readNpySync(join(corpus, 'big_dimension_no_data.npy')).shape).toEqual([4294967296, 0]);
    expect(() => readNpySync(join(corpus, 'huge_shape.npy'))).toThrow(/overflows|truncated data/);
    expect(() => readNpySync(join(corpus, 'wrapping_shape.npy'))).toThrow(/truncated data: shape \[4294967297\] needs 34359738376 bytes/);
  });

  it('a gradient whose samples point past the block is refused at construction', () => {
    const props = new Labels(['n'], [[0]]);
    const samples = new Labels(['system', 'atom'], [[0, 0]]);
    const grad = new TensorBlock(new Labels(['sample', 'atom'], [[1, 0]]), [new Labels(['xyz'], [[0], [1], [2]])], props, new Float64Array(3));
    expect(() => new TensorBlock(samples, [], props, new Float64Array(1), new Map([['positions', grad]]))).toThrow(/sample 1 points past the block's 1 samples/);
  });

  it('toBuffer refuses label names that would not read back', () => {
    const block = new TensorBlock(new Labels(["it's"], [[0]]), [], new Labels(['n'], [[0]]), Float64Array.of(1));
    const t = new TensorMap(new Labels(['k'], [[0]]), [block]);
    expect(() => t.toBuffer()).toThrow(/it's/);
  });
});
