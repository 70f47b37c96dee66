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
import { ASE_BOHR, ASE_HARTREE, MorseModel, fccCopper, fromAseUnits, ffsocket, ipiScript, ipiXyz, nveInput, readIpiProperties, slope, startPython } from './ipi_helpers';

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

withPython('real i-PI 3.3.1: virial and pressure of a strained, sheared cell', () => {
  it("i-PI's virial_md = −σ of the model and pressure_md = −tr σ/3 + tr kstress/3 (sign and all six components)", async () => {
    const dir = tmpdir();
    const strain = [0.02, 0.03, -0.02, 0, -0.01, 0.015, 0, 0, 0.01];
    const { h, positions } = fccCopper(2, 3.7, strain, 0.05, 3);
    fs.writeFileSync(path.join(dir, 'init.xyz'), ipiXyz(h, positions));
    const name = socketName('strain');
    fs.writeFileSync(path.join(dir, 'input.xml'), nveInput({ socket: ffsocket({ unix: name }), steps: 5, dt: 1, kelvin: 300, stride: 1 }));
    const server = startPython(python!, [ipiScript(python!), 'input.xml'], dir);
    const model = new MorseModel();
    try {
      const result = await driveIpi(model, { unix: name, timeout: 60 }); // species: the model's single species
      expect(result.steps).toBe(6);
      expect(await server.exited, server.output()).toBe(0);
    } finally {
      server.child.kill();
    }
    const out = readIpiProperties(path.join(dir, 'md.out'));
    const frames = readXyzSync(path.join(dir, 'md.pos_0.extxyz'));
    const units = fromAseUnits(IPI_UNITS.bohrPerAngstrom, IPI_UNITS.forcePerEvPerAngstrom);
    expect(frames.length).toBe(6);
    const voigt = [0, 4, 8, 1, 2, 5]; // i-PI's order xx yy zz xy xz yz in a row-major 3×3
    // i-PI prints ev/ang3 with its own UnitMap["pressure"]["ev/ang3"] = 0.0054456877,
    // which is not 0.036749326 / 1.8897261³ (it is 1.44e-7 larger): the printed
    // value is −σ times this ratio.
    const ratio = IPI_UNITS.hartreePerEv / IPI_UNITS.bohrPerAngstrom ** 3 / 0.0054456877;
    expect(Math.abs(ratio - 1)).toBeLessThan(2e-7);
    for (let k = 0; k < 6; k++) {
      const s = new System({ types: frames[k].types, positions: frames[k].positions.map((x) => x * units.length), cell: frames[k].cell.map((x) => x * units.length), pbc: true });
      const sigma = model.evaluate(s).stress;
      // 9 significant digits printed: 2e-9 relative to the largest component
      const scale = Math.max(...Array.from(sigma, Math.abs));
      expect(scale).toBeGreaterThan(1e-3);
      for (let c = 0; c < 6; c++) expect(Math.abs(out[`virial_md(${c})`][k] + ratio * sigma[voigt[c]])).toBeLessThan(2e-8 * scale);
      // the off-diagonal stress is really there
      expect(Math.abs(sigma[1])).toBeGreaterThan(1e-4);
      const kin = (out['kstress_md(0)'][k] + out['kstress_md(1)'][k] + out['kstress_md(2)'][k]) / 3;
      expect(Math.abs(out['pressure_md'][k] - (-(ratio * (sigma[0] + sigma[4] + sigma[8])) / 3 + kin))).toBeLessThan(2e-8 * scale);
    }
  }, 60_000);
});

withPython("ASE 3.29.0's SocketIOCalculator as the server", () => {
  // ASE converts with its own (CODATA 2014) Bohr and Hartree, the driver with
  // i-PI's: what ASE gets is the model at positions scaled by
  // 1/(Bohr_ase · 1.8897261), with energies times 0.036749326 · Hartree_ase
  // and forces times 0.019446904 · Hartree_ase / Bohr_ase. Checked to 1e-9
  // relative, so every unit conversion and the virial's sign are pinned.
  const runAse = async (transport: 'unix' | 'inet') => {
    const dir = tmpdir();
    const target = transport === 'unix' ? { unix: socketName('ase') } : { port: await freePort() };
    const out = path.join(dir, 'ase.json');
    const script = path.join(__dirname, 'interop', 'ipi_ase_server.py');
    const server = startPython(python!, [script, transport, 'unix' in target ? target.unix : String(target.port), '8', out], dir);
    const model = new MorseModel();
    try {
      const result = await driveIpi(model, { ...('unix' in target ? { unix: target.unix } : { host: '127.0.0.1', port: target.port }), species: new Array(32).fill(29), timeout: 60, exitOnClose: true }).catch((e: Error) => {
        throw new Error(`${e.message}\nASE said:\n${server.output().slice(-3000)}`);
      });
      expect(await server.exited, server.output()).toBe(0);
      expect(result.steps).toBeGreaterThanOrEqual(8);
    } finally {
      server.child.kill();
    }
    return { records: JSON.parse(fs.readFileSync(out, 'utf8')) as Array<{ positions: number[][]; cell: number[][]; energy: number; forces: number[][]; stress: number[][] }>, model };
  };

  const check = (records: Awaited<ReturnType<typeof runAse>>['records'], model: MorseModel) => {
    expect(records.length).toBeGreaterThanOrEqual(8);
    const length = 1 / (ASE_BOHR * IPI_UNITS.bohrPerAngstrom);
    const energy = IPI_UNITS.hartreePerEv * ASE_HARTREE;
    const force = (IPI_UNITS.forcePerEvPerAngstrom * ASE_HARTREE) / ASE_BOHR;
    for (const r of records) {
      const s = new System({ types: new Array(32).fill(29), positions: r.positions.flat().map((x) => x * length), cell: r.cell.flat().map((x) => x * length), pbc: true });
      const m = model.evaluate(s);
      expect(Math.abs(r.energy - m.energy * energy)).toBeLessThan(1e-9 * Math.abs(r.energy));
      const f = r.forces.flat();
      const fmax = Math.max(...Array.from(m.forces, Math.abs));
      for (let i = 0; i < f.length; i++) expect(Math.abs(f[i] - m.forces[i] * force)).toBeLessThan(1e-9 * fmax);
      // ASE: stress = −virial / V_ase, virial = Hartree_ase · W, W = −V·σ·0.036749326
      const ratio = (length ** 3 * energy); // V_model / V_ase · 0.036749326 · Hartree_ase
      const st = r.stress.flat();
      const smax = Math.max(...Array.from(m.stress, Math.abs));
      for (let i = 0; i < 9; i++) expect(Math.abs(st[i] - m.stress[i] * ratio)).toBeLessThan(1e-9 * smax);
    }
    // the optimisation moved the atoms: these are 8 different structures
    expect(records[records.length - 1].energy).toBeLessThan(records[0].energy);
  };

  it('BFGS over a unix socket: energies, forces and stress equal the model', async () => {
    const { records, model } = await runAse('unix');
    check(records, model);
  }, 60_000);

  it('BFGS over TCP: the same', async () => {
    const { records, model } = await runAse('inet');
    check(records, model);
  }, 60_000);
});
