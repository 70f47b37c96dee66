// acdc against featomic 0.6.7 (fixtures from scripts/reference/featomic_fixtures.py).
// Tolerance: |acdc − featomic| ≤ tol × (largest |value| of the block), block by
// block, for values and every gradient; labels must be identical. Blocks that
// featomic gives as exact zeros (odd l for a centre seeing only its own
// periodic images, where ±S images cancel) are held to tol × 1e-5 × the
// largest value of the whole calculation instead.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { SoapPowerSpectrum, SoapRadialSpectrum, SphericalExpansion, System, TensorBlock, TensorMap } from 'acdc-ml';

interface LabelsJson {
  names: string[];
  values: number[][];
}
interface BlockJson {
  samples: LabelsJson;
  components: LabelsJson[];
  properties?: LabelsJson;
  values: number[];
  shape: number[];
  gradients?: Record<string, BlockJson>;
}
interface Calculation {
  calculator: 'spherical_expansion' | 'soap_power_spectrum' | 'soap_radial_spectrum';
  variant: 'exact' | 'splined';
  hypers: never;
  gradients: ('positions' | 'strain')[];
  keys: LabelsJson;
  blocks: BlockJson[];
}
interface Fixture {
  case: string;
  systems: { types: number[]; positions: number[]; cell: number[]; pbc: [boolean, boolean, boolean] }[];
  calculations: Calculation[];
}

const dir = join(__dirname, 'fixtures', 'featomic');
const fixtures: Fixture[] = readdirSync(dir)
  .filter((f) => f.endsWith('.json.gz'))
  .sort()
  .map((f) => JSON.parse(gunzipSync(readFileSync(join(dir, f))).toString('utf8')) as Fixture);

/** Tolerance relative to each block's largest value. */
export const TOLERANCE = { exact: 1e-10, splined: 1e-7 };

function labelsRows(l: { names: string[]; values: Int32Array; count: number }): number[][] {
  return Array.from({ length: l.count }, (_, r) => Array.from(l.values.subarray(r * l.names.length, (r + 1) * l.names.length)));
}

function compareBlock(got: TensorBlock, want: BlockJson, tol: number, where: string, floor: number, properties = want.properties as LabelsJson) {
  expect(got.samples.names, where).toEqual(want.samples.names);
  expect(labelsRows(got.samples), where).toEqual(want.samples.values);
  expect(got.components.map((c) => c.names), where).toEqual(want.components.map((c) => c.names));
  got.components.forEach((c, k) => expect(labelsRows(c), where).toEqual(want.components[k].values));
  expect(got.properties.names, where).toEqual(properties.names);
  expect(labelsRows(got.properties), where).toEqual(properties.values);
  expect(got.shape, where).toEqual(want.shape);
  const scale = Math.max(maxAbs(want.values), floor);
  let worst = 0;
  let at = -1;
  for (let k = 0; k < want.values.length; k++) {
    const e = Math.abs(got.values[k] - want.values[k]);
    if (e > worst) [worst, at] = [e, k];
  }
  expect(worst, `${where}: worst error ${worst} at ${at} (got ${got.values[at]}, featomic ${want.values[at]}, scale ${scale})`).toBeLessThanOrEqual(tol * scale);
}

function maxAbs(values: number[]): number {
  return values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

function compare(tm: TensorMap, calc: Calculation, tol: number, where: string) {
  const floor = 1e-5 * Math.max(...calc.blocks.map((b) => maxAbs(b.values)));
  expect(tm.keys.names).toEqual(calc.keys.names);
  expect(labelsRows(tm.keys), where).toEqual(calc.keys.values);
  calc.blocks.forEach((want, b) => {
    const got = tm.block(b);
    const key = JSON.stringify(calc.keys.values[b]);
    compareBlock(got, want, tol, `${where} key ${key}`, floor);
    for (const [parameter, wantGradient] of Object.entries(want.gradients ?? {})) {
      const g = got.gradient(parameter);
      expect(g, `${where} key ${key} ${parameter}`).toBeDefined();
      // gradient blocks share their parent's properties
      const gradientFloor = 1e-5 * Math.max(...calc.blocks.map((b) => maxAbs(b.gradients?.[parameter]?.values ?? [])));
      compareBlock(g as TensorBlock, wantGradient, tol, `${where} key ${key} ∂/∂${parameter}`, gradientFloor, want.properties);
    }
  });
}

const classes = {
  spherical_expansion: SphericalExpansion,
  soap_power_spectrum: SoapPowerSpectrum,
  soap_radial_spectrum: SoapRadialSpectrum,
} as const;

describe('featomic 0.6.7 fixtures', () => {
  for (const fixture of fixtures) {
    describe(fixture.case, () => {
      const systems = fixture.systems.map((s) => new System(s));
      fixture.calculations.forEach((calc, c) => {
        it(`${calc.calculator} ${calc.variant} #${c}`, async () => {
          const Calc = classes[calc.calculator];
          const calculator = new Calc(calc.hypers);
          const tm = await calculator.compute(systems, { gradients: calc.gradients });
          compare(tm, calc, TOLERANCE[calc.variant], `${fixture.case} ${calc.calculator} ${calc.variant}`);
        });
      });
    });
  }
});
