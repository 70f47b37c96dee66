// Sync/async pairs are named the same way everywhere: `xSync` blocks, `x` or
// `xAsync` returns a Promise. TensorMap's older `save`/`load` (sync) keep
// working next to `saveSync`/`loadSync`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SoapPowerSpectrum, System, TensorMap } from 'acdc-ml';

describe('sync/async names', () => {
  it('TensorMap: saveSync and loadSync write and read the same file as save, saveAsync, load and loadAsync', async () => {
    const soap = new SoapPowerSpectrum({
      cutoff: { radius: 3, smoothing: { type: 'Step' } },
      density: { type: 'Gaussian', width: 0.3 },
      basis: { type: 'TensorProduct', max_angular: 1, radial: { type: 'Gto', max_radial: 1 } },
    });
    const tm = soap.computeSync([new System({ types: [8, 1, 1], positions: [0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0] })], { gradients: ['positions'] });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-naming-'));
    try {
      const [a, b, c] = ['sync.mts', 'old.mts', 'async.mts'].map((f) => path.join(dir, f));
      tm.saveSync(a);
      tm.save(b);
      await tm.saveAsync(c);
      const bytes = fs.readFileSync(a);
      expect(fs.readFileSync(b).equals(bytes)).toBe(true);
      expect(fs.readFileSync(c).equals(bytes)).toBe(true);
      for (const back of [TensorMap.loadSync(a), TensorMap.load(a), await TensorMap.loadAsync(a)]) {
        expect(Buffer.from(back.toBuffer()).equals(Buffer.from(tm.toBuffer()))).toBe(true);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
