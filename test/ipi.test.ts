// The i-PI socket driver (driveIpi, `acdc drive`): the protocol against the
// real i-PI 3.3.1 and ASE 3.29.0 servers (started here, from the venv in
// ACDC_INTEROP_PYTHON), and against a scripted fake server for every way a
// conversation can go wrong.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { System, driveIpi, loadModel, readXyzSync, IPI_UNITS, type IpiModel } from 'acdc-ml';
import { ASE_BOHR, ASE_HARTREE, MorseModel, fccCopper, fromAseUnits, ffsocket, ipiScript, ipiXyz, nveInput, readIpiProperties, slope, startPython } from './ipi_helpers';
import { HDR, f64, fakeServer, freePort, i32, posdata, type ForceReady, type Peer } from './ipi_peer';
import { interopPython } from './prerequisites';
import { run } from './spawn_helpers';

const python = interopPython();
const withPython = describe;

const made: string[] = [];
function tmpdir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-ipi-'));
  made.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  // a server that crashed or was killed leaves its socket file behind
  for (const file of sockets) fs.rmSync(file, { force: true });
});

const sockets: string[] = [];
function socketName(tag: string): string {
  const name = `acdc_test_${tag}_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
  sockets.push(`/tmp/ipi_${name}`);
  return name;
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
    const target: { unix: string } | { port: number } = transport === 'unix' ? { unix: socketName('nve') } : { port: await freePort() };
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

  // (the same over a unix socket, with the fitted SOAP model and `acdc drive`, is further down)
  it('NVE over TCP: 1000 steps, drift ≤ 0.1 meV/atom/ps, forces in i-PI = model forces', async () => {
    const { dir, result, model } = await runNve('inet');
    checkRun(dir, model, result.steps);
  }, 120_000);
});

withPython('real i-PI 3.3.1 killed mid-run', () => {
  it('the driver rejects with a clear error instead of hanging', async () => {
    const dir = tmpdir();
    const { h, positions } = fccCopper(2, 3.61, undefined, 0.02);
    fs.writeFileSync(path.join(dir, 'init.xyz'), ipiXyz(h, positions));
    const name = socketName('kill');
    fs.writeFileSync(path.join(dir, 'input.xml'), nveInput({ socket: ffsocket({ unix: name }), steps: 100000, dt: 1, kelvin: 300, stride: 100000 }));
    const server = startPython(python!, [ipiScript(python!), 'input.xml'], dir);
    try {
      const run = driveIpi(new MorseModel(), {
        unix: name,
        timeout: 60,
        onStep: (s) => {
          if (s.step === 20) server.child.kill('SIGKILL');
        },
      });
      await expect(run).rejects.toThrow(new RegExp(`i-PI server at unix socket /tmp/ipi_${name} closed the connection`));
    } finally {
      server.child.kill('SIGKILL');
      fs.rmSync(`/tmp/ipi_${name}`, { force: true }); // a killed i-PI leaves its socket file
    }
  }, 60_000);
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
    const target: { unix: string } | { port: number } = transport === 'unix' ? { unix: socketName('ase') } : { port: await freePort() };
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

  // (over TCP with the fitted model and `acdc drive`: further down)
});

// ---------------------------------------------------------------------------
// The fitted model (examples/ipi/cu.acdc: SparseGPR on EMT copper, made by
// scripts/reference/ipi_fit_model.mjs) driven by the `acdc drive` command.

withPython('acdc drive with the EMT-fitted copper model', () => {
  const example = path.join(__dirname, '..', 'examples', 'ipi');
  const modelFile = path.join(example, 'cu.acdc');
  const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');

  /** Runs `acdc drive args…` until it exits; resolves to its exit code and output. */
  const driveCli = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [cli, 'drive', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });

  it('i-PI NVE (examples/ipi/init.xyz, 108 atoms, 300 K, 1 fs, 1000 steps, unix socket): drift ≤ 0.1 meV/atom/ps, forces = model.predict', async () => {
    const dir = tmpdir();
    fs.copyFileSync(path.join(example, 'init.xyz'), path.join(dir, 'init.xyz'));
    const name = socketName('emt');
    fs.writeFileSync(path.join(dir, 'input.xml'), nveInput({ socket: ffsocket({ unix: name }), steps: 1000, dt: 1, kelvin: 300, stride: 250, extra: 'energy_variance' }));
    const server = startPython(python!, [ipiScript(python!), 'input.xml'], dir);
    let r: Awaited<ReturnType<typeof driveCli>>;
    try {
      r = await driveCli([modelFile, '--unix', name, '--init', path.join(dir, 'init.xyz'), '--timeout', '60', '--variance', '--json']);
      expect(r.code, r.stderr + server.output().slice(-2000)).toBe(0);
      expect(await server.exited, server.output()).toBe(0);
    } finally {
      server.child.kill();
    }
    expect(JSON.parse(r.stdout)).toMatchObject({ steps: 1001 });
    const out = readIpiProperties(path.join(dir, 'md.out'));
    expect(out.step.length).toBe(1001);
    const drift = slope(out['time'], out['conserved']) / 108;
    expect(Math.abs(drift)).toBeLessThan(1e-4);
    expect(Math.max(...out['temperature'])).toBeGreaterThan(100);
    const model = await loadModel(modelFile);
    const frames = readXyzSync(path.join(dir, 'md.pos_0.extxyz'));
    const forces = readXyzSync(path.join(dir, 'md.frc_0.extxyz'));
    expect(frames.length).toBe(5);
    const units = fromAseUnits(IPI_UNITS.bohrPerAngstrom, IPI_UNITS.forcePerEvPerAngstrom);
    const systems = frames.map((f) => new System({ types: f.types, positions: f.positions.map((x) => x * units.length), cell: f.cell.map((x) => x * units.length), pbc: true }));
    const p = await model.predict(systems, { forces: true, stress: true, variance: true });
    // the energy variance, sent as {"energy_variance": v} in the extra string, as i-PI wrote it
    const xtr = fs.readFileSync(path.join(dir, 'md.xtr_0'), 'utf8');
    const variances = [...xtr.matchAll(/#EXTRAS\(energy_variance\)# Step:\s+(\d+)\s+([^\s#]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(variances.map((v) => v[0])).toEqual([0, 250, 500, 750, 1000]);
    for (let k = 0; k < frames.length; k++) expect(Math.abs(variances[k][1] - p.variance![k])).toBeLessThan(1e-7 * p.variance![k]); // 9 digits printed, positions to 8 decimals
    expect(p.variance![0]).toBeGreaterThan(0);
    for (let k = 0; k < frames.length; k++) {
      const g = (forces[k].arrays.forces as Float64Array).map((x) => x * units.force);
      let worst = 0;
      for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(p.forces![k][i] - g[i]));
      expect(worst).toBeLessThan(2e-7);
    }
    // i-PI's potential energy is the model's (9 significant digits printed)
    for (const k of [0, 250, 500, 750, 1000]) expect(Math.abs(out['potential'][k] - p.energy[k / 250])).toBeLessThan(2e-8 * Math.abs(p.energy[k / 250]) + 1e-8);
  }, 180_000);

  it("ASE's SocketIOCalculator (BFGS, TCP) driven by `acdc drive --exit-on-close`: energies, forces, stress = model.predict", async () => {
    const dir = tmpdir();
    const port = await freePort();
    const out = path.join(dir, 'ase.json');
    const server = startPython(python!, [path.join(__dirname, 'interop', 'ipi_ase_server.py'), 'inet', String(port), '6', out], dir);
    try {
      const r = await driveCli([modelFile, '--inet', `127.0.0.1:${port}`, '--exit-on-close', '--timeout', '60']);
      expect(r.code, r.stderr + server.output()).toBe(0);
      expect(r.stdout).toMatch(/^drove \d+ evaluations over 127.0.0.1:\d+ in /);
      expect(await server.exited, server.output()).toBe(0);
    } finally {
      server.child.kill();
    }
    const records = JSON.parse(fs.readFileSync(out, 'utf8')) as Array<{ positions: number[][]; cell: number[][]; energy: number; forces: number[][]; stress: number[][] }>;
    expect(records.length).toBeGreaterThanOrEqual(6);
    const model = await loadModel(modelFile);
    const length = 1 / (ASE_BOHR * IPI_UNITS.bohrPerAngstrom);
    const energy = IPI_UNITS.hartreePerEv * ASE_HARTREE;
    const force = (IPI_UNITS.forcePerEvPerAngstrom * ASE_HARTREE) / ASE_BOHR;
    const systems = records.map((r) => new System({ types: new Array(32).fill(29), positions: r.positions.flat().map((x) => x * length), cell: r.cell.flat().map((x) => x * length), pbc: true }));
    const p = await model.predict(systems, { forces: true, stress: true });
    records.forEach((r, k) => {
      expect(Math.abs(r.energy - p.energy[k] * energy)).toBeLessThan(1e-9 * Math.abs(r.energy) + 1e-9);
      const f = r.forces.flat();
      const fmax = Math.max(...Array.from(p.forces![k], Math.abs));
      for (let i = 0; i < f.length; i++) expect(Math.abs(f[i] - p.forces![k][i] * force)).toBeLessThan(1e-9 * fmax + 1e-12);
      const st = r.stress.flat();
      const smax = Math.max(...Array.from(p.stress![k], Math.abs));
      for (let i = 0; i < 9; i++) expect(Math.abs(st[i] - p.stress![k][i] * length ** 3 * energy)).toBeLessThan(1e-9 * smax + 1e-12);
    });
  }, 120_000);
});

// ---------------------------------------------------------------------------
// A scripted fake server: every byte it sends is chosen here.

const smallCell = [6, 0, 0, 0.5, 6.2, 0, -0.3, 0.4, 5.8];
const smallPositions = [0, 0, 0, 1.9, 1.7, 0.1, 0.2, 2.0, 1.8, 2.1, -0.1, 1.9];

describe('protocol against a scripted fake server', () => {
  const species = [29, 29, 29, 29];

  it('odd byte splits, consolidated and classic sequences, EXIT: replies decode to the model in atomic units', async () => {
    const model = new MorseModel();
    const seen: string[] = [];
    let replies: ForceReady[] = [];
    const srv = await fakeServer(async (peer) => {
      seen.push(await peer.status(), await peer.status());
      await peer.send(Buffer.concat([HDR('INIT'), i32(0), i32(1), Buffer.from(' ')]), [1, 2, 3]);
      seen.push(await peer.status());
      // consolidated: POSDATA + GETFORCE in one stream, split at odd offsets
      await peer.send(Buffer.concat([posdata(smallCell, smallPositions), HDR('GETFORCE')]), [1, 7, 13, 5, 29]);
      replies.push(await peer.forceready());
      seen.push(await peer.status());
      // classic: POSDATA, STATUS → HAVEDATA, GETFORCE
      const moved = smallPositions.map((v, k) => v + 0.01 * Math.sin(k));
      await peer.send(posdata(smallCell, moved), [3]);
      seen.push(await peer.status());
      await peer.send(HDR('GETFORCE'), [11, 1]);
      replies.push(await peer.forceready());
      seen.push(await peer.status());
      await peer.send(HDR('EXIT'), [5]);
    });
    try {
      const steps: number[] = [];
      const result = await driveIpi(model, { host: '127.0.0.1', port: srv.port, species, timeout: 10, onStep: (s) => steps.push(s.step) });
      await srv.done;
      expect(result.steps).toBe(2);
      expect(steps).toEqual([1, 2]);
    } finally {
      srv.close();
    }
    expect(seen).toEqual(['NEEDINIT    ', 'NEEDINIT    ', 'READY       ', 'READY       ', 'HAVEDATA    ', 'READY       ']);
    // the first reply against the model evaluated directly (Å, eV)
    const s = new System({ types: species, positions: smallPositions, cell: smallCell, pbc: true });
    const m = model.evaluate(s);
    const r = replies[0];
    expect(r.nat).toBe(4);
    expect(r.energy).toBeCloseTo(m.energy * 0.036749326, 14);
    for (let k = 0; k < 12; k++) expect(r.forces[k]).toBeCloseTo(m.forces[k] * 0.019446904, 14);
    const V = Math.abs(smallCell[0] * (smallCell[4] * smallCell[8] - smallCell[5] * smallCell[7]) - smallCell[1] * (smallCell[3] * smallCell[8] - smallCell[5] * smallCell[6]) + smallCell[2] * (smallCell[3] * smallCell[7] - smallCell[4] * smallCell[6]));
    for (let k = 0; k < 9; k++) expect(r.virial[k]).toBeCloseTo(-V * m.stress[k] * 0.036749326, 14);
    expect(r.extra).toBe('');
    expect(replies[1].energy).not.toBe(r.energy);
    replies = [];
  });

  it('the extra string carries the energy variance as JSON when asked', async () => {
    const base = new MorseModel();
    const model: IpiModel = {
      species: [29],
      predict: async (systems, o) => ({ ...base.predict(systems, o as never), variance: Float64Array.of(0.125) }),
    };
    let extra = '';
    const srv = await fakeServer(async (peer) => {
      await peer.send(Buffer.concat([HDR('INIT'), i32(0), i32(0), posdata(smallCell, smallPositions), HDR('GETFORCE')]));
      extra = (await peer.forceready()).extra;
      await peer.send(HDR('EXIT'));
    });
    try {
      await driveIpi(model, { host: '127.0.0.1', port: srv.port, timeout: 10, variance: true });
      await srv.done;
    } finally {
      srv.close();
    }
    expect(JSON.parse(extra)).toEqual({ energy_variance: 0.125 });
  });

  /** Runs a script against driveIpi and returns the rejection. */
  const failure = async (script: (peer: Peer) => Promise<void>, options: Partial<Parameters<typeof driveIpi>[1]> = {}, model: IpiModel = new MorseModel()) => {
    const srv = await fakeServer(script);
    try {
      const outcome = await driveIpi(model, { host: '127.0.0.1', port: srv.port, species, timeout: 5, ...options }).then(
        (r) => ({ resolved: r }),
        (e: Error) => ({ error: e }),
      );
      await srv.done.catch(() => {});
      return outcome;
    } finally {
      srv.close();
    }
  };

  it('EXIT in the middle of a step (after POSDATA, before GETFORCE) ends the run without a reply', async () => {
    let after = -1;
    const out = await failure(async (peer) => {
      await peer.send(Buffer.concat([HDR('INIT'), i32(0), i32(1), Buffer.from(' '), posdata(smallCell, smallPositions), HDR('GETFORCE')]));
      await peer.forceready();
      await peer.send(Buffer.concat([posdata(smallCell, smallPositions), HDR('EXIT')]));
      await new Promise((r) => setTimeout(r, 50));
      after = peer.pending;
    });
    expect(out).toEqual({ resolved: expect.objectContaining({ steps: 1 }) });
    expect(after).toBe(0);
  });

  it('a disconnect mid-step (after POSDATA) and mid-message reject with a clear error', async () => {
    const a = await failure(async (peer) => {
      await peer.send(Buffer.concat([HDR('INIT'), i32(0), i32(1), Buffer.from(' '), posdata(smallCell, smallPositions)]));
      peer.socket.destroy();
    });
    expect('error' in a && a.error.message).toMatch(/closed the connection before sending EXIT/);
    const b = await failure(async (peer) => {
      await peer.send(posdata(smallCell, smallPositions).subarray(0, 12 + 144 + 2));
      peer.socket.destroy();
    });
    expect('error' in b && b.error.message).toMatch(/closed the connection before sending EXIT \(while waiting for the POSDATA atom count\)/);
  });

  it('a server that closes after a step: an error, or the end of the run with exitOnClose (ASE)', async () => {
    const script = async (peer: Peer) => {
      await peer.send(Buffer.concat([posdata(smallCell, smallPositions), HDR('GETFORCE')]));
      await peer.forceready();
      peer.socket.end();
    };
    const a = await failure(script);
    expect('error' in a && a.error.message).toMatch(/closed the connection before sending EXIT/);
    const b = await failure(script, { exitOnClose: true });
    expect(b).toEqual({ resolved: expect.objectContaining({ steps: 1 }) });
    // a partial header is never a clean close
    const c = await failure(async (peer) => {
      await peer.send(Buffer.concat([posdata(smallCell, smallPositions), HDR('GETFORCE')]));
      await peer.forceready();
      await peer.send(Buffer.from('STAT'));
      peer.socket.end();
    }, { exitOnClose: true });
    expect('error' in c && c.error.message).toMatch(/closed the connection/);
  });

  it('garbage headers are rejected, quoting the bytes', async () => {
    const a = await failure((peer) => peer.send(Buffer.from('HELLO WORLD!')));
    expect('error' in a && a.error.message).toMatch(/malformed message from the server: header "HELLO WORLD!"/);
    const b = await failure((peer) => peer.send(Buffer.from([0xff, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])));
    expect('error' in b && b.error.message).toMatch(/header 0xff000102030405060708090a/);
    const c = await failure((peer) => peer.send(Buffer.from('status      '))); // lower case is not the protocol
    expect('error' in c && c.error.message).toMatch(/malformed message/);
    const d = await failure((peer) => peer.send(Buffer.concat([HDR('INIT'), i32(0), i32(-5)])));
    expect('error' in d && d.error.message).toMatch(/malformed INIT message: parameter string length -5/);
    const e = await failure((peer) => peer.send(Buffer.concat([HDR('POSDATA'), f64(new Array(18).fill(1)), i32(-1)])));
    expect('error' in e && e.error.message).toMatch(/malformed POSDATA message: -1 atoms/);
    const f = await failure((peer) => peer.send(HDR('GETFORCE')));
    expect('error' in f && f.error.message).toMatch(/GETFORCE before any POSDATA/);
  });

  it('the number of atoms changing, or differing from the species, is an error', async () => {
    const a = await failure(async (peer) => {
      await peer.send(Buffer.concat([posdata(smallCell, smallPositions), HDR('GETFORCE')]));
      await peer.forceready();
      await peer.send(posdata(smallCell, [...smallPositions, 1, 1, 1]));
    }, { species: undefined }); // the model's single species: any N at first
    expect('error' in a && a.error.message).toMatch(/number of atoms changed from 4 to 5 at evaluation 2/);
    const b = await failure((peer) => peer.send(posdata(smallCell, smallPositions)), { species: [29, 29, 29] });
    expect('error' in b && b.error.message).toMatch(/server sent 4 atoms but the species list has 3/);
  });

  it('NaN positions and a NaN cell are errors naming the atom', async () => {
    const p = [...smallPositions];
    p[7] = NaN;
    const a = await failure((peer) => peer.send(posdata(smallCell, p)));
    expect('error' in a && a.error.message).toMatch(/position of atom 2 \(y\) is NaN/);
    const c = [...smallCell];
    c[4] = Infinity;
    const b = await failure((peer) => peer.send(posdata(c, smallPositions)));
    expect('error' in b && b.error.message).toMatch(/POSDATA cell h\[1\]\[1\] is Infinity/);
  });

  it('a silent server times out; an abort rejects; neither hangs', async () => {
    const a = await failure(async () => {}, { timeout: 0.3 });
    expect('error' in a && a.error.message).toMatch(/no data from the server for 0.3 s while waiting for a message header/);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const b = await failure(async () => {}, { signal: controller.signal });
    expect('error' in b && b.error.name).toBe('AbortError');
    // an abort while the model computes (a model that never answers)
    const stuck: IpiModel = { species: [29], predict: () => new Promise(() => {}) };
    const later = new AbortController();
    const c = await failure(async (peer) => {
      await peer.send(Buffer.concat([posdata(smallCell, smallPositions), HDR('GETFORCE')]));
      setTimeout(() => later.abort(), 50);
    }, { signal: later.signal }, stuck);
    expect('error' in c && c.error.name).toBe('AbortError');
  });

  it('a model step longer than the timeout is not a timeout; a silent server after it still is', async () => {
    // the read timer is re-armed per wait: it must neither fire during the
    // model's step nor stay spent after it
    const base = new MorseModel();
    let calls = 0;
    const slow: IpiModel = {
      species: [29],
      predict: async (systems, o) => {
        if (calls++ === 0) await new Promise((r) => setTimeout(r, 600));
        return base.predict(systems, o as never);
      },
    };
    let replies = 0;
    const a = await failure(async (peer) => {
      for (let k = 0; k < 2; k++) {
        await peer.send(Buffer.concat([posdata(smallCell, smallPositions), HDR('GETFORCE')]));
        await peer.forceready();
        replies += 1;
      }
      // then nothing: the driver must give up after its timeout
    }, { timeout: 0.25, compute: 'async' }, slow);
    expect(replies).toBe(2);
    expect('error' in a && a.error.message).toMatch(/no data from the server for 0.25 s while waiting for a message header/);
  });

  it('a model that fails sends nothing (no half reply) and rejects with its error', async () => {
    let after = -1;
    const broken: IpiModel = {
      species: [29],
      predict: () => {
        throw new Error('model exploded');
      },
    };
    const nan: IpiModel = {
      species: [29],
      predict: () => ({ energy: [1], forces: [[0, 0, 0, 0, 0, 0, 0, 0, NaN, 0, 0, 0]], stress: [new Array(9).fill(0)] }),
    };
    const script = async (peer: Peer) => {
      await peer.send(Buffer.concat([posdata(smallCell, smallPositions), HDR('GETFORCE')]));
      await new Promise((r) => setTimeout(r, 50));
      after = peer.pending;
    };
    const a = await failure(script, {}, broken);
    expect('error' in a && a.error.message).toBe('model exploded');
    expect(after).toBe(0);
    after = -1;
    const b = await failure(script, {}, nan);
    expect('error' in b && b.error.message).toMatch(/non-finite force on atom 2 \(z: NaN eV\/Å\)/);
    expect(after).toBe(0);
  });

  it('steps after a change of cell or periodicity recompute on that step\'s System; the Systems the model got stay as they were', async () => {
    // a model that keeps every System it is given (the driver must not reuse them)
    const base = new MorseModel();
    const kept: System[] = [];
    const model: IpiModel = {
      species: [29],
      predict: (systems, o) => {
        kept.push(...systems);
        return base.predict(systems, o as never);
      },
    };
    const strained = [6.1, 0, 0, 0.7, 6.0, 0, -0.2, 0.5, 5.9];
    const moved = smallPositions.map((v, k) => v + 0.02 * Math.cos(k));
    // cell A, A again (positions moved), B, no cell (a molecule), B again, A, A
    const sent: Array<[number[], number[]]> = [
      [smallCell, smallPositions],
      [smallCell, moved],
      [strained, moved],
      [new Array(9).fill(0), moved],
      [strained, smallPositions],
      [smallCell, moved],
      [smallCell, smallPositions],
    ];
    const replies: ForceReady[] = [];
    const srv = await fakeServer(async (peer) => {
      for (const [cell, positions] of sent) {
        await peer.send(Buffer.concat([posdata(cell, positions), HDR('GETFORCE')]));
        replies.push(await peer.forceready());
      }
      await peer.send(HDR('EXIT'));
    });
    try {
      const result = await driveIpi(model, { host: '127.0.0.1', port: srv.port, species, timeout: 10 });
      await srv.done;
      expect(result.steps).toBe(sent.length);
    } finally {
      srv.close();
    }
    expect(kept).toHaveLength(sent.length);
    sent.forEach(([cell, positions], k) => {
      const periodic = cell.some((v) => v !== 0);
      const s = new System({ types: species, positions, cell: periodic ? cell : null, pbc: periodic });
      const got = kept[k];
      expect(got).toBeInstanceOf(System);
      expect(got.pbc).toEqual(s.pbc);
      // decoded from Bohr: equal to the sent Å to the last digits
      for (let i = 0; i < 12; i++) expect(got.positions[i]).toBeCloseTo(positions[i], 13);
      for (let i = 0; i < 9; i++) expect(got.cell[i]).toBeCloseTo(s.cell[i], 13);
      expect(Array.from(got.types)).toEqual(species);
      const m = base.evaluate(got);
      const r = replies[k];
      expect(r.energy).toBe(m.energy * IPI_UNITS.hartreePerEv);
      for (let i = 0; i < 12; i++) expect(r.forces[i]).toBe(m.forces[i] * IPI_UNITS.forcePerEvPerAngstrom);
      const V = periodic ? Math.abs(s.cell[0] * (s.cell[4] * s.cell[8] - s.cell[5] * s.cell[7]) - s.cell[1] * (s.cell[3] * s.cell[8] - s.cell[5] * s.cell[6]) + s.cell[2] * (s.cell[3] * s.cell[7] - s.cell[4] * s.cell[6])) : 0;
      for (let i = 0; i < 9; i++) expect(r.virial[i]).toBeCloseTo(periodic ? -V * m.stress[i] * IPI_UNITS.hartreePerEv : 0, 14);
      // and against the model evaluated on the System built from the Å numbers sent
      expect(r.energy).toBeCloseTo(base.evaluate(s).energy * IPI_UNITS.hartreePerEv, 12);
    });
    // no two steps share a System or its arrays, and the first is still step 1's
    expect(new Set(kept).size).toBe(kept.length);
    expect(new Set(kept.map((s) => s.positions)).size).toBe(kept.length);
    expect(new Set(kept.map((s) => s.types)).size).toBe(kept.length);
    for (let i = 0; i < 12; i++) expect(kept[0].positions[i]).toBeCloseTo(smallPositions[i], 13);
  });

  it('a cell that turns singular after valid steps is still an error naming the cell', async () => {
    // volume 1.1e-8 Å³ (> 0: periodic) but a and b parallel to 5e-11: invalid as a System
    const singular = [6, 0, 0, 6, 3e-10, 0, 0, 0, 6];
    // a model that answers anything (the Morse sum would take forever on this cell)
    const zero: IpiModel = { species: [29], predict: () => ({ energy: [0], forces: [new Float64Array(12)], stress: [new Float64Array(9)] }) };
    const a = await failure(async (peer) => {
      await peer.send(Buffer.concat([posdata(smallCell, smallPositions), HDR('GETFORCE')]));
      await peer.forceready();
      await peer.send(Buffer.concat([posdata(smallCell, smallPositions), HDR('GETFORCE')]));
      await peer.forceready();
      await peer.send(posdata(singular, smallPositions));
    }, {}, zero);
    expect('error' in a && a.error.message).toMatch(/cell is singular/);
  });

  it("compute 'sync', 'async' and 'auto' send the same replies; 'sync' calls predictSync, 'async' predict", async () => {
    const base = new MorseModel();
    const run = async (compute: 'sync' | 'async' | 'auto') => {
      const calls = { predict: 0, predictSync: 0 };
      const model: IpiModel = {
        species: [29],
        predict: async (systems, o) => {
          calls.predict += 1;
          return base.predict(systems, o as never);
        },
        predictSync: (systems, o) => {
          calls.predictSync += 1;
          return base.predict(systems, o as never);
        },
      };
      const replies: ForceReady[] = [];
      const srv = await fakeServer(async (peer) => {
        for (let k = 0; k < 4; k++) {
          await peer.send(Buffer.concat([posdata(smallCell, smallPositions.map((v, i) => v + 0.01 * k * Math.sin(i))), HDR('GETFORCE')]));
          replies.push(await peer.forceready());
        }
        await peer.send(HDR('EXIT'));
      });
      try {
        await driveIpi(model, { host: '127.0.0.1', port: srv.port, species, timeout: 10, compute });
        await srv.done;
      } finally {
        srv.close();
      }
      return { calls, replies };
    };
    const sync = await run('sync');
    const async_ = await run('async');
    const auto = await run('auto');
    expect(sync.calls).toEqual({ predict: 0, predictSync: 4 });
    expect(async_.calls).toEqual({ predict: 4, predictSync: 0 });
    expect(auto.calls.predict + auto.calls.predictSync).toBe(4);
    expect(auto.calls.predict).toBeGreaterThanOrEqual(1); // the first step
    expect(sync.replies).toEqual(async_.replies);
    expect(auto.replies).toEqual(async_.replies);
    await expect(driveIpi(new MorseModel(), { unix: 'a', compute: 'sync' })).rejects.toThrow(/compute 'sync' needs a model with predictSync/);
    await expect(driveIpi(new MorseModel(), { unix: 'a', compute: 'fast' as never })).rejects.toThrow(/compute must be 'auto', 'async' or 'sync', got "fast"/);
  });

  it('each step reports its own protocol time; they add up to the run\'s', async () => {
    const steps: number[] = [];
    const srv = await fakeServer(async (peer) => {
      for (let k = 0; k < 3; k++) {
        await peer.status();
        await peer.send(Buffer.concat([posdata(smallCell, smallPositions), HDR('GETFORCE')]));
        await peer.forceready();
      }
      await peer.send(HDR('EXIT'));
    });
    let result: Awaited<ReturnType<typeof driveIpi>> | undefined;
    try {
      result = await driveIpi(new MorseModel(), { host: '127.0.0.1', port: srv.port, species, timeout: 10, onStep: (s) => steps.push(s.protocolSeconds) });
      await srv.done;
    } finally {
      srv.close();
    }
    expect(steps).toHaveLength(3);
    for (const t of steps) expect(t).toBeGreaterThan(0);
    const sum = steps.reduce((a, b) => a + b, 0);
    // the run's total also holds what follows the last reply (EXIT)
    expect(result!.protocolSeconds).toBeGreaterThanOrEqual(sum);
    expect(result!.protocolSeconds).toBeLessThan(result!.seconds);
  });

  it('bad options are TypeErrors naming the option', async () => {
    const model = new MorseModel();
    await expect(driveIpi(model, {})).rejects.toThrow(/give unix \(a socket name\) or port/);
    await expect(driveIpi(model, { unix: 'a', port: 3 })).rejects.toThrow(/either unix or port, not both/);
    await expect(driveIpi(model, { port: 70000 })).rejects.toThrow(/port must be an integer from 1 to 65535, got 70000/);
    await expect(driveIpi(model, { unix: 'a', timeout: -1 })).rejects.toThrow(/timeout must be a positive number/);
    await expect(driveIpi({} as IpiModel, { unix: 'a' })).rejects.toThrow(/predict/);
    await expect(driveIpi({ predict: () => ({ energy: [] }) }, { unix: 'a' })).rejects.toThrow(/the model does not list its species: give species/);
  });

  it('nobody listening: connection refused after the retry window, with the address', async () => {
    const port = await freePort();
    await expect(driveIpi(new MorseModel(), { host: '127.0.0.1', port, timeout: 0.3 })).rejects.toThrow(new RegExp(`cannot connect to the i-PI server at 127.0.0.1:${port}: .*ECONNREFUSED.*retried for 0.3 s`));
  });
});

describe('acdc drive (command line)', () => {
  const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
  const acdc = (args: string[]) => run(process.execPath, [cli, ...args], { timeout: 30_000 });
  const oneLine = (text: string) => expect(text.trim().split('\n')).toHaveLength(1);

  it('neither or both of --unix/--inet, a bad port: usage errors (exit 2, one line)', async () => {
    const dir = tmpdir();
    const model = path.join(dir, 'm.acdc');
    fs.writeFileSync(model, 'x');
    for (const [args, message] of [
      [[model], /acdc drive: give --unix NAME or --inet HOST:PORT/],
      [[model, '--unix', 'a', '--inet', 'localhost:31415'], /acdc drive: give either --unix or --inet, not both/],
      [[model, '--inet', 'localhost:0'], /port from 1 to 65535, got "localhost:0"/],
      [[model, '--inet', 'localhost:99999'], /got "localhost:99999"/],
      [[model, '--inet', 'localhost'], /expected HOST:PORT/],
      [[model, '--unix', 'a', '--timeout', '-3'], /expected a positive number, got "-3"/],
    ] as const) {
      const r = await acdc(['drive', ...args]);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      oneLine(r.stderr);
      expect(r.stdout).toBe('');
    }
  });

  it('--compute: async and sync send the same replies as the model; a bad value is a usage error', async () => {
    const dir = tmpdir();
    const bad = await acdc(['drive', path.join(dir, 'm.acdc'), '--unix', 'a', '--compute', 'fast']);
    expect(bad.status, bad.stderr).toBe(2);
    expect(bad.stderr).toMatch(/expected one of auto, async, sync, got "fast"/);
    oneLine(bad.stderr);
    const modelFile = path.join(__dirname, '..', 'examples', 'ipi', 'cu.acdc');
    const model = await loadModel(modelFile);
    const expected = model.predictSync([new System({ types: [29, 29, 29, 29], positions: smallPositions, cell: smallCell, pbc: true })], { forces: true, stress: true });
    for (const compute of ['async', 'sync']) {
      let reply: ForceReady | undefined;
      const srv = await fakeServer(async (peer) => {
        for (let k = 0; k < 2; k++) {
          await peer.send(Buffer.concat([posdata(smallCell, smallPositions), HDR('GETFORCE')]));
          reply = await peer.forceready();
        }
        await peer.send(HDR('EXIT'));
      });
      try {
        const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, [cli, 'drive', modelFile, '--inet', `127.0.0.1:${srv.port}`, '--timeout', '10', '--compute', compute], { stdio: ['ignore', 'ignore', 'pipe'] });
          let stderr = '';
          child.stderr.on('data', (d) => (stderr += d));
          child.on('exit', (code) => resolve({ code, stderr }));
        });
        expect(r.code, r.stderr).toBe(0);
        await srv.done;
      } finally {
        srv.close();
      }
      expect(reply!.energy).toBeCloseTo(expected.energy[0] * IPI_UNITS.hartreePerEv, 12);
      for (let i = 0; i < 12; i++) expect(reply!.forces[i]).toBeCloseTo(expected.forces![0][i] * IPI_UNITS.forcePerEvPerAngstrom, 12);
    }
  });

  it('a missing model file or --init file: exit 1, one line naming the file', async () => {
    const dir = tmpdir();
    const missing = path.join(dir, 'nope.acdc');
    const r = await acdc(['drive', missing, '--unix', socketName('cli')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^acdc: cannot read model file ${missing}: ENOENT`));
    oneLine(r.stderr);
    const model = path.join(dir, 'm.acdc');
    fs.writeFileSync(model, 'x');
    const s = await acdc(['drive', model, '--unix', socketName('cli'), '--init', path.join(dir, 'nope.xyz')]);
    expect(s.status).toBe(1);
    expect(s.stderr).toMatch(/^acdc: .*nope\.xyz/);
    oneLine(s.stderr);
    // not a model file
    const t = await acdc(['drive', model, '--unix', socketName('cli')]);
    expect(t.status).toBe(1);
    expect(t.stderr).toMatch(/^acdc: /);
    oneLine(t.stderr);
  });

  it('--init with a different number of atoms than the server sends: exit 1, one line', async () => {
    const dir = tmpdir();
    const init = path.join(dir, 'two.xyz');
    fs.writeFileSync(init, '2\n\nCu 0 0 0\nCu 1.8 1.8 0\n');
    const srv = await fakeServer((peer) => peer.send(Buffer.concat([HDR('STATUS')])).then(() => peer.read(12)).then(() => peer.send(posdata(smallCell, smallPositions))));
    try {
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [cli, 'drive', path.join(__dirname, '..', 'examples', 'ipi', 'cu.acdc'), '--inet', `127.0.0.1:${srv.port}`, '--init', init, '--timeout', '10'], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (d) => (stderr += d));
        child.on('exit', (code) => resolve({ code, stderr }));
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^acdc: the server sent 4 atoms but the species list has 2/);
      oneLine(r.stderr);
    } finally {
      srv.close();
    }
  });
});
