import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NeighborList, System } from 'acdc-ml';

interface Case {
  name: string;
  types: number[];
  positions: number[];
  cell: number[];
  pbc: boolean[];
  cutoff: number;
  pairs: { i: number[]; j: number[]; S: number[]; d: number[]; D: number[] };
}
const fixture = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'neighbors', 'ase_neighbors.json'), 'utf8')) as { cases: Case[] };

describe('NeighborList against ASE neighbor_list', () => {
  for (const c of fixture.cases) {
    it(c.name, async () => {
      const system = new System({ types: c.types, positions: c.positions, cell: c.cell, pbc: c.pbc as [boolean, boolean, boolean] });
      const pairs = await new NeighborList({ cutoff: c.cutoff, full: true }).compute(system);
      // our output is sorted by (i, j, S), as the fixture is
      expect(Array.from(pairs.i)).toEqual(c.pairs.i);
      expect(Array.from(pairs.j)).toEqual(c.pairs.j);
      expect(Array.from(pairs.shifts)).toEqual(c.pairs.S);
      for (let p = 0; p < c.pairs.d.length; p++) {
        expect(Math.abs(pairs.distances[p] - c.pairs.d[p])).toBeLessThan(1e-10);
        for (let k = 0; k < 3; k++) expect(Math.abs(pairs.vectors[3 * p + k] - c.pairs.D[3 * p + k])).toBeLessThan(1e-10);
      }
      // the half list holds one of each (i, j, S) / (j, i, -S) pair
      const half = new NeighborList({ cutoff: c.cutoff, full: false }).computeSync(system);
      expect(2 * half.i.length).toBe(pairs.i.length);
      for (let p = 0; p < half.i.length; p++) {
        const [i, j] = [half.i[p], half.j[p]];
        expect(i <= j).toBe(true);
      }
    });
  }
});
