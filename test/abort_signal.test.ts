// Every async entry point takes `signal`: readNpy, writeNpy, loadModel,
// pcaAsync, gfreAsync, curAsync, kernelPcaAsync and writeChemiscope reject
// with the abort error when the signal is aborted before or during the call,
// leave no output file, and give the same result as before when it is not
// aborted.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { curAsync, cur, gfre, gfreAsync, kernelPca, kernelPcaAsync, loadModel, pca, pcaAsync, readNpy, writeChemiscope, writeNpy, System } from 'acdc-ml';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-abort-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const rows = 40;
const cols = 6;
const data = Float64Array.from({ length: rows * cols }, (_, k) => Math.sin(1.3 * k) + 0.1 * (k % 7));
const X = { data, shape: [rows, cols] };
const Y = { data: Float64Array.from({ length: rows * 2 }, (_, k) => Math.cos(0.7 * k)), shape: [rows, 2] };
const aborted = () => {
  const c = new AbortController();
  c.abort(new Error('stop here'));
  return c.signal;
};
/** A signal aborted right after the call started (within the same turn). */
const abortSoon = () => {
  const c = new AbortController();
  queueMicrotask(() => c.abort(new Error('stop here')));
  return c.signal;
};
const systems = [new System({ types: [8, 1, 1], positions: [0, 0, 0, 0.76, 0.59, 0, -0.76, 0.59, 0] })];

describe('AbortSignal on every async entry point', () => {
  it('not aborted: the same results as without a signal', async () => {
    const signal = new AbortController().signal;
    expect(Array.from((await pcaAsync(X, 2, { signal })).scores.data)).toEqual(Array.from(pca(X, 2).scores.data));
    expect(await gfreAsync(X, Y, { signal })).toBe(gfre(X, Y));
    expect(Array.from(await curAsync(X, 3, { signal }))).toEqual(Array.from(cur(X, 3)));
    expect(Array.from((await kernelPcaAsync(X, 2, { zeta: 2, signal })).scores.data)).toEqual(Array.from(kernelPca(X, 2, { zeta: 2 }).scores.data));
    const npy = path.join(dir, 'x.npy');
    await writeNpy(npy, X, { signal });
    expect(Array.from((await readNpy(npy, { signal })).data)).toEqual(Array.from(data));
    await writeChemiscope(path.join(dir, 'map.json'), systems, { signal });
    expect(fs.existsSync(path.join(dir, 'map.json'))).toBe(true);
    await expect(loadModel(path.join(__dirname, '..', 'examples', 'ipi', 'cu.acdc'), { signal })).resolves.toBeDefined();
  });

  it('aborted before the call or during it: rejects with the abort reason, no output file', async () => {
    const model = path.join(__dirname, '..', 'examples', 'ipi', 'cu.acdc');
    const npy = path.join(dir, 'x.npy');
    for (const signal of [aborted, abortSoon]) {
      await expect(pcaAsync(X, 2, { signal: signal() })).rejects.toThrow('stop here');
      await expect(gfreAsync(X, Y, { signal: signal() })).rejects.toThrow('stop here');
      await expect(curAsync(X, 3, { signal: signal() })).rejects.toThrow('stop here');
      await expect(kernelPcaAsync(X, 2, { zeta: 2, signal: signal() })).rejects.toThrow('stop here');
      await expect(readNpy(npy, { signal: signal() })).rejects.toThrow('stop here');
      await expect(loadModel(model, { signal: signal() })).rejects.toThrow('stop here');
      const out = path.join(dir, `aborted-${signal.name}.npy`);
      await expect(writeNpy(out, X, { signal: signal() })).rejects.toThrow('stop here');
      const map = path.join(dir, `aborted-${signal.name}.json.gz`);
      await expect(writeChemiscope(map, systems, { signal: signal() })).rejects.toThrow('stop here');
      expect(fs.readdirSync(dir).filter((f) => f.includes('aborted-'))).toEqual([]); // neither the file nor its .partial
    }
  });

  it('a signal that is not an AbortSignal is a TypeError', async () => {
    await expect(pcaAsync(X, 2, { signal: 3 as never })).rejects.toThrow(/signal must be an AbortSignal/);
    await expect(curAsync(X, 3, { signal: {} as never })).rejects.toThrow(/signal must be an AbortSignal/);
  });
});
