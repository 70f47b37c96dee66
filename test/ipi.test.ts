// The i-PI socket driver (driveIpi, `acdc drive`): the protocol against the
// real i-PI 3.3.1 and ASE 3.29.0 servers (started here, from the venv in
// ACDC_INTEROP_PYTHON), and against a scripted fake server for every way a
// conversation can go wrong.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { System, driveIpi, readXyzSync, IPI_UNITS, type IpiModel } from 'acdc-ml';
import { MorseModel, fccCopper, fromAseUnits, ffsocket, ipiScript, ipiXyz, nveInput, readIpiProperties, slope, startPython } from './ipi_helpers';

const python = process.env.ACDC_INTEROP_PYTHON;
const withPython = python ? describe : describe.skip;

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-ipi-'));
}

function socketName(tag: string): string {
  return `acdc_test_${tag}_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

describe('the Morse test model', () => {
  // The model every server is checked against must itself be right:
  // forces = −∂E/∂r and stress = (1/V) ∂E/∂ε by central differences.
  const model = new MorseModel();
  const { system } = fccCopper(2, 3.61, [0.01, 0.02, -0.015, 0, -0.01, 0.01, 0, 0, 0.005], 0.1);
  const base = model.evaluate(system);
  const energyAt = (positions: Float64Array, cell: Float64Array) => model.evaluate(new System({ types: system.types, positions, cell, pbc: true })).energy;

  it('forces are −∂E/∂r (central differences, h = 1e-5 Å, to 1e-7 eV/Å)', () => {
    for (const k of [0, 4, 17, 50, 94]) {
      const p = Float64Array.from(system.positions);
      p[k] += 1e-5;
      const ep = energyAt(p, system.cell);
      p[k] -= 2e-5;
      const em = energyAt(p, system.cell);
      expect(Math.abs(-(ep - em) / 2e-5 - base.forces[k])).toBeLessThan(1e-7);
    }
  });

  it('stress is (1/V) ∂E/∂ε (central differences, ε = 1e-6, to 1e-8 eV/Å³), non-trivial off the diagonal', () => {
    const volume = Math.abs(system.cell[0] * system.cell[4] * system.cell[8]);
    for (let a = 0; a < 3; a++) {
      for (let b = 0; b < 3; b++) {
        const strained = (e: number) => {
          const d = (x: Float64Array, rows: number) => {
            const out = Float64Array.from(x);
            for (let r = 0; r < rows; r++) out[3 * r + b] += e * x[3 * r + a];
            return out;
          };
          return energyAt(d(system.positions, system.size), d(system.cell, 3));
        };
        const fd = (strained(1e-6) - strained(-1e-6)) / 2e-6 / volume;
        expect(Math.abs(fd - base.stress[3 * a + b])).toBeLessThan(1e-8);
      }
    }
    expect(Math.abs(base.stress[1])).toBeGreaterThan(1e-4);
  });
});

withPython('real i-PI 3.3.1 as the server', () => {
  // 108-atom fcc copper, 300 K, 1 fs, 1000 steps of NVE, once over a unix
  // socket and once over TCP.
  const runNve = async (transport: 'unix' | 'inet') => {
    const dir = tmpdir();
    const { h, positions, system } = fccCopper(3, 3.61, undefined, 0.02);
    fs.writeFileSync(path.join(dir, 'init.xyz'), ipiXyz(h, positions));
    const target = transport === 'unix' ? { unix: socketName('nve') } : { port: await freePort() };
    fs.writeFileSync(path.join(dir, 'input.xml'), nveInput({ socket: ffsocket(target), steps: 1000, dt: 1, kelvin: 300, stride: 100 }));
    const server = startPython(python!, [ipiScript(python!), 'input.xml'], dir);
    const model = new MorseModel();
    try {
      const species = readXyzSync(path.join(dir, 'init.xyz'))[0];
      const result = await driveIpi(model, { ...('unix' in target ? { unix: target.unix } : { host: '127.0.0.1', port: target.port }), species, timeout: 60 }).catch((e: Error) => {
        throw new Error(`${e.message}\ni-PI said:\n${server.output().slice(-3000)}`);
      });
      const code = await server.exited;
      expect(code, server.output()).toBe(0);
      return { dir, result, model, system };
    } finally {
      server.child.kill();
    }
  };

  const checkRun = (dir: string, model: MorseModel, steps: number) => {
    const out = readIpiProperties(path.join(dir, 'md.out'));
    expect(out.step.length).toBe(1001);
    expect(steps).toBe(1001); // the initial evaluation, then one per step
    // conserved energy: a line fitted through all 1001 values
    const drift = slope(out['time'], out['conserved']) / 108; // eV/atom/ps
    expect(Math.abs(drift)).toBeLessThan(1e-4);
    // i-PI's temperature is that of real dynamics, not of a frozen system
    expect(Math.max(...out['temperature'])).toBeGreaterThan(100);
    // forces i-PI received equal the model's at the same positions (format="ase": 8 decimals)
    const frames = readXyzSync(path.join(dir, 'md.pos_0.extxyz'));
    const forces = readXyzSync(path.join(dir, 'md.frc_0.extxyz'));
    expect(frames.length).toBe(11);
    const units = fromAseUnits(IPI_UNITS.bohrPerAngstrom, IPI_UNITS.forcePerEvPerAngstrom);
    for (const k of [0, 5, 10]) {
      const p = frames[k].positions.map((x) => x * units.length);
      const cell = frames[k].cell.map((x) => x * units.length);
      const f = model.evaluate(new System({ types: frames[k].types, positions: p, cell, pbc: true })).forces;
      const g = (forces[k].arrays.forces as Float64Array).map((x) => x * units.force);
      let worst = 0;
      for (let i = 0; i < f.length; i++) worst = Math.max(worst, Math.abs(f[i] - g[i]));
      expect(worst).toBeLessThan(2e-7);
    }
    return drift;
  };

  it('NVE over a unix socket: 1000 steps, drift ≤ 0.1 meV/atom/ps, forces in i-PI = model forces', async () => {
    const { dir, result, model } = await runNve('unix');
    checkRun(dir, model, result.steps);
  }, 120_000);

  it('NVE over TCP: the same', async () => {
    const { dir, result, model } = await runNve('inet');
    checkRun(dir, model, result.steps);
  }, 120_000);
});
