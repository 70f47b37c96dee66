// Shared assertions for the TensorMap tests.
import { expect } from 'vitest';
import type { TensorMap } from 'acdc-ml';

/** Keys, labels, values and every gradient of `a` and `b` are identical. */
export function expectSameTensor(a: TensorMap, b: TensorMap): void {
  expect(a.keys).toEqual(b.keys);
  for (let k = 0; k < a.keys.count; k++) {
    const x = a.block(k);
    const y = b.block(k);
    expect(x.samples).toEqual(y.samples);
    expect(x.components).toEqual(y.components);
    expect(x.properties).toEqual(y.properties);
    expect(x.values).toEqual(y.values);
    expect(x.gradientsList().sort()).toEqual(y.gradientsList().sort());
    for (const p of x.gradientsList()) {
      expect(x.gradient(p)!.samples).toEqual(y.gradient(p)!.samples);
      expect(x.gradient(p)!.components).toEqual(y.gradient(p)!.components);
      expect(x.gradient(p)!.values).toEqual(y.gradient(p)!.values);
    }
  }
}
