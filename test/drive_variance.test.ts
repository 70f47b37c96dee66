// `acdc drive --variance` sends the calibrated energy variance: a model whose
// variance was calibrated (its factor kept in the .acdc file) serves s·v in
// the i-PI extra string, over a one-step scripted server.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LinearModel, System, loadModelSync, readXyzSync } from 'acdc-ml';
import { HDR, i32, listen, posdata } from './ipi_peer';
import { smallCase, smallTrain } from './potential_helpers';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');

const cell = [6, 0, 0, 0, 6.2, 0, 0, 0, 5.8];
const positions = [0, 0, 0, 1.9, 1.7, 0.1, 0.2, 2.0, 1.8, 2.1, -0.1, 1.9];

/** One step: INIT, POSDATA, GETFORCE, read the reply's extra string, EXIT. */
async function serveOneStep(): Promise<{ port: number; extra: Promise<string>; close: () => void }> {
  let resolve!: (s: string) => void;
  let reject!: (e: unknown) => void;
  const extra = new Promise<string>((res, rej) => ((resolve = res), (reject = rej)));
  const srv = await listen((socket) => {
    let data = Buffer.alloc(0);
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      // FORCEREADY, energy, nat, 3·nat forces, 9 virial, length, extra
      if (data.length < 24) return;
      const nat = data.readInt32LE(20);
      const at = 24 + 24 * nat + 72;
      if (data.length < at + 4) return;
      const len = data.readInt32LE(at);
      if (data.length < at + 4 + len) return;
      resolve(data.subarray(at + 4, at + 4 + len).toString('utf8'));
      socket.write(HDR('EXIT'));
    });
    socket.write(Buffer.concat([HDR('INIT'), i32(0), i32(0), posdata(cell, positions), HDR('GETFORCE')]));
  });
  return { ...srv, extra };
}

/** Runs `acdc drive file --variance` for one step; the energy variance it sent. */
async function driveVariance(dir: string, file: string): Promise<number> {
  const init = path.join(dir, 'init.xyz');
  fs.writeFileSync(init, '4\n\n' + [0, 1, 2, 3].map((k) => `Cu ${positions.slice(3 * k, 3 * k + 3).join(' ')}`).join('\n') + '\n');
  const srv = await serveOneStep();
  try {
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [cli, 'drive', file, '--inet', `127.0.0.1:${srv.port}`, '--init', init, '--variance', '--timeout', '20'], { stdio: ['ignore', 'ignore', 'inherit'] });
      child.on('exit', resolve);
    });
    expect(code).toBe(0);
    return JSON.parse(await srv.extra).energy_variance as number;
  } finally {
    srv.close();
  }
}

describe('acdc drive --variance with a calibrated model', () => {
  it('sends s·(v + σ_E²·N) for a model calibrated by leave-one-out (acdc fit\'s calibration)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-drive-loo-'));
    const model = LinearModel.fitSync(smallTrain, smallCase.linear);
    const system = new System({ types: [29, 29, 29, 29], positions, cell, pbc: true });
    const raw = model.predictSync(system, { variance: true }).variance![0];
    // the fit's σ_E² as the noise, so that the noise term is surely there
    const c = model.calibrateVarianceLeaveOneOutSync(smallTrain, { noise: 'sigma' });
    expect(c.noise).toBe(smallCase.linear.sigmas.energy ** 2);
    const file = path.join(dir, 'loo.acdc');
    model.saveSync(file);
    const sent = await driveVariance(dir, file);
    const want = c.scale * (raw + c.noise! * 4);
    // positions go through Bohr and back: equal to rounding
    expect(Math.abs(sent - want)).toBeLessThanOrEqual(1e-9 * want);
    // the noise term is not negligible here: without it the value differs
    expect(Math.abs(sent - c.scale * raw)).toBeGreaterThan(1e-6 * want);
  }, 60_000);

  it('sends s·v, the variance predict returns for the calibrated model', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-drive-variance-'));
    const model = loadModelSync(path.join(root, 'examples', 'ipi', 'cu.acdc'));
    const system = new System({ types: [29, 29, 29, 29], positions, cell, pbc: true });
    const raw = model.predictSync(system, { variance: true }).variance![0];
    const c = model.calibrateVarianceSync(readXyzSync(path.join(root, 'examples', 'emt-cu-test.xyz')));
    expect(c.scale).not.toBe(1);
    const file = path.join(dir, 'calibrated.acdc');
    model.saveSync(file);
    const sent = await driveVariance(dir, file);
    const want = loadModelSync(file).predictSync(system, { variance: true }).variance![0];
    // positions go through Bohr and back: equal to rounding
    expect(Math.abs(sent - want)).toBeLessThanOrEqual(1e-9 * Math.abs(want));
    expect(Math.abs(sent - c.scale * raw)).toBeLessThanOrEqual(1e-9 * Math.abs(sent));
  }, 60_000);
});
