import { describe, expect, it } from 'vitest';
import { NeighborList, System } from 'acdc-ml';

describe('System', () => {
  it('accepts flat and nested positions and cells', () => {
    const a = new System({ types: [8, 1, 1], positions: [0, 0, 0, 1, 0, 0, 0, 1, 0] });
    const b = new System({ types: [8, 1, 1], positions: [[0, 0, 0], [1, 0, 0], [0, 1, 0]] });
    expect(a.positions).toEqual(b.positions);
    expect(a.types).toBeInstanceOf(Int32Array);
    expect(a.cell).toEqual(new Float64Array(9));
    expect(a.pbc).toEqual([false, false, false]);
    const c = new System({ types: [14], positions: [[0, 0, 0]], cell: [[3, 0, 0], [0, 3, 0], [0, 0, 3]] });
    expect(Array.from(c.cell)).toEqual([3, 0, 0, 0, 3, 0, 0, 0, 3]);
    expect(c.pbc).toEqual([true, true, true]);
    const d = new System({ types: [14], positions: [[0, 0, 0]], cell: [3, 0, 0, 0, 3, 0, 0, 0, 3], pbc: [true, false, true] });
    expect(d.pbc).toEqual([true, false, true]);
  });

  it('names the field and value of bad input', () => {
    expect(() => new System({ types: [1, 1, 1, 1], positions: new Array(9).fill(0) })).toThrow(
      'positions has 9 values but types has 4 atoms (expected 12)',
    );
    expect(() => new System({ types: [1], positions: [0, NaN, 0] })).toThrow(/positions\[0\]\[1\] is NaN/);
    expect(() => new System({ types: [1], positions: [0, Infinity, 0] })).toThrow(/positions\[0\]\[1\] is inf/);
    expect(() => new System({ types: [1.5], positions: [0, 0, 0] })).toThrow(/types\[0\] is 1.5/);
    expect(() => new System({ types: [1], positions: [[0, 0]] })).toThrow(/positions\[0\] must have 3 numbers/);
    expect(() => new System({ types: [1], positions: [0, 0, 0], cell: [1, 0, 0, 2, 0, 0, 0, 0, 1], pbc: true })).toThrow(/singular/);
    expect(() => new System({ types: [1], positions: [0, 0, 0], cell: [1, 0, 0, 0, 1, 0, 0, 0, 1], pbc: [1, 0, 1] as never })).toThrow(/pbc must be/);
    expect(() => new System({ types: [1], positions: [0, 0, 0], cell: [1, 0, 0, 0, 1, 0, 0, 0, NaN] })).toThrow(/cell\[2\]\[2\] is NaN/);
    expect(() => new System({ types: [1], positions: [0, 0, 0], cell: [1, 0, 0, 0, 1, 0, 0, 0] })).toThrow(/cell has 8 values/);
    expect(() => new System({ types: [1], positions: [0, 0, 0], colour: 'red' } as never)).toThrow(/unknown System field "colour"/);
  });
});

describe('NeighborList', () => {
  it('finds the pairs of a dimer, sync and async', async () => {
    const sys = new System({ types: [1, 1], positions: [[0, 0, 0], [0, 0, 1.5]] });
    const list = new NeighborList({ cutoff: 2, full: true });
    const pairs = list.computeSync(sys);
    expect(Array.from(pairs.i)).toEqual([0, 1]);
    expect(Array.from(pairs.j)).toEqual([1, 0]);
    expect(Array.from(pairs.distances)).toEqual([1.5, 1.5]);
    expect(Array.from(pairs.vectors)).toEqual([0, 0, 1.5, 0, 0, -1.5]);
    const again = await list.compute(sys);
    expect(again).toEqual(pairs);
    expect(new NeighborList({ cutoff: 2, full: false }).computeSync(sys).i.length).toBe(1);
  });

  it('rejects bad options', () => {
    expect(() => new NeighborList({ cutoff: -1 })).toThrow(/cutoff must be a positive number of Å, got -1/);
    expect(() => new NeighborList({ cutoff: 1, ful: true } as never)).toThrow(/unknown NeighborList option "ful"/);
  });
});
