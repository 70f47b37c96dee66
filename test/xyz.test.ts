import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatXyz, iterXyz, parseXyz, readXyz, readXyzSync, System, writeXyz, writeXyzSync } from 'acdc-ml';

const dir = join(__dirname, 'fixtures', 'xyz');
interface Expected {
  types: number[];
  positions: number[];
  cell: number[];
  pbc: boolean[];
  info: Record<string, { type: string; value: unknown }>;
  arrays: Record<string, { type: string; ncols: number; data: unknown[] }>;
}
const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as { files: Record<string, Expected[]> };

function check(frame: System, want: Expected) {
  expect(Array.from(frame.types)).toEqual(want.types);
  expect(Array.from(frame.positions)).toEqual(want.positions);
  expect(Array.from(frame.cell)).toEqual(want.cell);
  expect(frame.pbc).toEqual(want.pbc);
  // ASE keeps some keys (e.g. the stress of a calculator) out of .info; compare those we have
  for (const [key, { value }] of Object.entries(want.info)) expect(frame.info[key], key).toEqual(value);
  for (const [name, column] of Object.entries(want.arrays)) {
    const got = frame.arrays[name];
    expect(got, name).toBeDefined();
    expect(Array.from(got as ArrayLike<unknown>), name).toEqual(column.data);
    if (column.type === 'float') expect(got).toBeInstanceOf(Float64Array);
    if (column.type === 'int') expect(got).toBeInstanceOf(Int32Array);
  }
}

describe('extended XYZ', () => {
  it('reads files written by ASE exactly as ASE reads them', async () => {
    for (const [file, frames] of Object.entries(expected.files)) {
      const text = readFileSync(join(dir, file), 'utf8');
      const parsed = parseXyz(text);
      expect(parsed.length, file).toBe(frames.length);
      parsed.forEach((f, k) => check(f, frames[k]));
      const fromFile = await readXyz(join(dir, file));
      fromFile.forEach((f, k) => check(f, frames[k]));
      readXyzSync(join(dir, file)).forEach((f, k) => check(f, frames[k]));
    }
  });

  it('round-trips its own output', async () => {
    for (const file of Object.keys(expected.files)) {
      const frames = readXyzSync(join(dir, file));
      const again = parseXyz(formatXyz(frames));
      expect(again.length).toBe(frames.length);
      again.forEach((f, k) => {
        expect(f.types).toEqual(frames[k].types);
        expect(f.positions).toEqual(frames[k].positions);
        expect(f.cell).toEqual(frames[k].cell);
        expect(f.pbc).toEqual(frames[k].pbc);
        expect(f.arrays).toEqual(frames[k].arrays);
      });
      const tmp = join(mkdtempSync(join(tmpdir(), 'acdc-')), 'out.xyz');
      await writeXyz(tmp, frames);
      expect(readXyzSync(tmp).map((f) => Array.from(f.positions))).toEqual(frames.map((f) => Array.from(f.positions)));
      writeXyzSync(tmp, frames);
      expect(readFileSync(tmp, 'utf8')).toBe(formatXyz(frames));
    }
  });

  it('writes user systems with info and arrays', () => {
    const s = new System({
      types: [8, 1, 1],
      positions: [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]],
      info: { energy: -14.25, name: 'water molecule', converged: true, dipole: [0.1, 0.2, 0.3] },
      arrays: { forces: new Float64Array(9).fill(0.5), tags: new Int32Array([1, 2, 3]), label: ['O1', 'H1', 'H2'] },
    });
    const [back] = parseXyz(formatXyz(s));
    expect(back.info).toEqual(s.info);
    expect(back.arrays).toEqual(s.arrays);
  });

  it('streams large files frame by frame', async () => {
    const frame = new System({ types: [14, 14], positions: [0, 0, 0, 1.3, 1.3, 1.3], cell: [2.7, 2.7, 0, 0, 2.7, 2.7, 2.7, 0, 2.7] });
    const frames = Array.from({ length: 300 }, (_, k) => new System({ ...frame, positions: [0, 0, k * 1e-3, 1.3, 1.3, 1.3], info: { k } }));
    const tmp = join(mkdtempSync(join(tmpdir(), 'acdc-')), 'many.xyz');
    writeXyzSync(tmp, frames);
    let count = 0;
    for await (const f of iterXyz(tmp, { batch: 7 })) {
      expect(f.info.k).toBe(count);
      count++;
    }
    expect(count).toBe(300);
  });

  it('reports malformed input with the line number', () => {
    const good = '2\nLattice="3 0 0 0 3 0 0 0 3" Properties=species:S:1:pos:R:3\nH 0 0 0\nH 1 0 0\n';
    expect(parseXyz(good)).toHaveLength(1);
    const cases: [string, RegExp][] = [
      ['x\n\n', /line 1/],
      ['3\n\nH 0 0 0\nH 1 0 0\n', /line/],
      ['2\n\nH 0 0 0\nH 1 0\n', /line 4/],
      ['2\n\nH 0 0 0\nQq 1 0 0\n', /line 4/],
      ['2\n\nH 0 0 0\nH 1 zero 0\n', /line 4/],
      ['1\nLattice="1 0 0 0 1 0"\nH 0 0 0\n', /line 2/],
      ['1\nname="unterminated\nH 0 0 0\n', /line 2/],
      ['1\nProperties=species:S:1:pos:R:3:forces:R:3\nH 0 0 0\n', /line 3/],
      ['-1\n\n', /line 1/],
      ['1\nLattice="1 0 0 2 0 0 0 0 1"\nH 0 0 0\n', /line 2/],
      ['1\n\nH 0 0 nan\n', /line/],
    ];
    for (const [text, where] of cases) expect(() => parseXyz(text), JSON.stringify(text)).toThrow(where);
    const tmp = join(mkdtempSync(join(tmpdir(), 'acdc-')), 'bad.xyz');
    writeFileSync(tmp, good + cases[2][0]);
    expect(() => readXyzSync(tmp)).toThrow(/line 8/);
  });
});
