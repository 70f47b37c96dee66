// Helpers of test/ipi.test.ts: an analytic pair potential with exact forces
// and stress (a model any MD engine can be checked against), fcc structures,
// i-PI input files, and starting/stopping Python servers.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { System } from 'acdc-ml';

/**
 * Morse pair potential for copper (Girifalco & Weizer, Phys. Rev. 114, 687
 * (1959): D = 0.3429 eV, α = 1.3588 Å⁻¹, r₀ = 2.866 Å), shifted-force
 * truncated at r_c: φ_sf(r) = φ(r) − φ(r_c) − (r − r_c) φ'(r_c), so that
 * energy and force go to zero at r_c. Periodic images of every pair within
 * r_c are summed (any cell, any number of images). Units: eV, Å.
 */
export class MorseModel {
  readonly species = [29];
  calls = 0;
  constructor(
    readonly D = 0.3429,
    readonly alpha = 1.3588,
    readonly r0 = 2.866,
    readonly rc = 5.0,
  ) {}

  private phi(r: number): [number, number] {
    const e = Math.exp(-this.alpha * (r - this.r0));
    return [this.D * (e * e - 2 * e), this.D * (-2 * this.alpha * e * e + 2 * this.alpha * e)];
  }

  /** Energy (eV), forces (eV/Å), stress (1/V) ∂E/∂ε (eV/Å³, 9 numbers) of one system. */
  evaluate(s: System): { energy: number; forces: Float64Array; stress: Float64Array } {
    const n = s.size;
    const x = s.positions;
    const cell = s.cell;
    const periodic = s.pbc[0] || s.pbc[1] || s.pbc[2];
    const [phic, dphic] = this.phi(this.rc);
    const shifts: number[][] = [];
    let volume = 0;
    if (periodic) {
      const a = [cell[0], cell[1], cell[2]];
      const b = [cell[3], cell[4], cell[5]];
      const c = [cell[6], cell[7], cell[8]];
      const cross = (u: number[], v: number[]) => [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
      const norm = (u: number[]) => Math.hypot(u[0], u[1], u[2]);
      const bc = cross(b, c);
      volume = Math.abs(a[0] * bc[0] + a[1] * bc[1] + a[2] * bc[2]);
      const na = Math.ceil(this.rc / (volume / norm(bc)));
      const nb = Math.ceil(this.rc / (volume / norm(cross(c, a))));
      const nc = Math.ceil(this.rc / (volume / norm(cross(a, b))));
      for (let i = -na; i <= na; i++) {
        for (let j = -nb; j <= nb; j++) {
          for (let k = -nc; k <= nc; k++) {
            shifts.push([0, 1, 2].map((d) => i * a[d] + j * b[d] + k * c[d]));
          }
        }
      }
    } else {
      shifts.push([0, 0, 0]);
    }
    const rc2 = this.rc * this.rc;
    let energy = 0;
    const forces = new Float64Array(3 * n);
    const w = new Float64Array(9); // Σ φ' d⊗d / r over ordered pairs
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        for (const t of shifts) {
          const dx = x[3 * j] + t[0] - x[3 * i];
          const dy = x[3 * j + 1] + t[1] - x[3 * i + 1];
          const dz = x[3 * j + 2] + t[2] - x[3 * i + 2];
          const r2 = dx * dx + dy * dy + dz * dz;
          if (r2 >= rc2 || r2 === 0) continue;
          const r = Math.sqrt(r2);
          const [p, dp] = this.phi(r);
          energy += 0.5 * (p - phic - (r - this.rc) * dphic);
          const g = (dp - dphic) / r; // φ_sf'(r) / r
          forces[3 * i] += g * dx;
          forces[3 * i + 1] += g * dy;
          forces[3 * i + 2] += g * dz;
          const d = [dx, dy, dz];
          for (let u = 0; u < 3; u++) for (let v = 0; v < 3; v++) w[3 * u + v] += 0.5 * g * d[u] * d[v];
        }
      }
    }
    const stress = new Float64Array(9);
    if (periodic) for (let k = 0; k < 9; k++) stress[k] = w[k] / volume;
    return { energy, forces, stress };
  }

  predict(systems: System[], _options: { forces: true; stress: boolean }) {
    this.calls += 1;
    const out = systems.map((s) => this.evaluate(s));
    return { energy: Float64Array.from(out.map((o) => o.energy)), forces: out.map((o) => o.forces), stress: out.map((o) => o.stress) };
  }
}

/**
 * Upper-triangular cell h (Å) with the lattice vectors as columns (i-PI's
 * convention) of a cubic fcc supercell of copper, `repeat` conventional
 * cells a side, deformed by `strain` (h → (1 + ε) h, ε a 3×3 row-major
 * matrix, kept upper-triangular).
 */
export function fccCopper(repeat: number, a = 3.61, strain: number[] = [0, 0, 0, 0, 0, 0, 0, 0, 0], rattle = 0, seed = 1): { h: number[]; positions: number[]; system: System } {
  const L = a * repeat;
  const h = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) h[3 * r + c] = ((r === c ? 1 : 0) + strain[3 * r + c]) * L;
  h[3] = h[6] = h[7] = 0;
  const basis = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]];
  let state = seed;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648 - 0.5;
  };
  const positions: number[] = [];
  for (let i = 0; i < repeat; i++) {
    for (let j = 0; j < repeat; j++) {
      for (let k = 0; k < repeat; k++) {
        for (const b of basis) {
          const s = [(i + b[0]) / repeat, (j + b[1]) / repeat, (k + b[2]) / repeat];
          for (let r = 0; r < 3; r++) positions.push(h[3 * r] * s[0] + h[3 * r + 1] * s[1] + h[3 * r + 2] * s[2] + 2 * rattle * random());
        }
      }
    }
  }
  const cell = [h[0], h[3], h[6], h[1], h[4], h[7], h[2], h[5], h[8]]; // rows = vectors = columns of h
  const system = new System({ types: new Array(positions.length / 3).fill(29), positions, cell, pbc: true });
  return { h, positions, system };
}

/** An xyz file in i-PI's format: `# CELL(H): h row-major` in Å. */
export function ipiXyz(h: number[], positions: number[]): string {
  const lines = [`${positions.length / 3}`, `# CELL(H): ${h.map((v) => v.toFixed(10)).join(' ')} positions{angstrom} cell{angstrom}`];
  for (let i = 0; i < positions.length / 3; i++) lines.push(`Cu ${positions.slice(3 * i, 3 * i + 3).map((v) => v.toFixed(10)).join(' ')}`);
  return lines.join('\n') + '\n';
}

/** The <ffsocket> element for a unix socket name or a TCP port. */
export function ffsocket(target: { unix: string } | { port: number }): string {
  return 'unix' in target
    ? `<ffsocket name="acdc" mode="unix" pbc="false"><address>${target.unix}</address><latency>1e-4</latency></ffsocket>`
    : `<ffsocket name="acdc" mode="inet" pbc="false"><address>127.0.0.1</address><port>${target.port}</port><latency>1e-4</latency></ffsocket>`;
}

/**
 * An i-PI NVE input: `steps` steps of `dt` fs from init.xyz at `kelvin`,
 * writing out (properties, every step), pos/frc (format="ase": extended xyz
 * with 8 decimals, in i-PI's "ase" units, i.e. converted from atomic units
 * with ASE's Bohr and Hartree — see {@link fromAseUnits} — every `stride` steps).
 */
export function nveInput(o: { socket: string; steps: number; dt: number; kelvin: number; stride: number; extra?: string }): string {
  return `<simulation verbosity="low" safe_stride="1000">
  <output prefix="md">
    <properties stride="1" filename="out">[ step, time{picosecond}, conserved{electronvolt}, temperature{kelvin}, potential{electronvolt}, pressure_md{ev/ang3}, virial_md{ev/ang3}, kstress_md{ev/ang3}, volume{angstrom3} ]</properties>
    <trajectory filename="pos" stride="${o.stride}" format="ase" cell_units="ase">positions{ase}</trajectory>
    <trajectory filename="frc" stride="${o.stride}" format="ase" cell_units="ase">forces{ase}</trajectory>
${o.extra === undefined ? '' : `    <trajectory filename="xtr" stride="${o.stride}" extra_type="${o.extra}">extras</trajectory>\n`}    <checkpoint stride="100000"/>
  </output>
  <total_steps>${o.steps}</total_steps>
  <prng><seed>31415</seed></prng>
  ${o.socket}
  <system>
    <initialize nbeads="1">
      <file mode="xyz">init.xyz</file>
      <velocities mode="thermal" units="kelvin">${o.kelvin}</velocities>
    </initialize>
    <forces><force forcefield="acdc"/></forces>
    <ensemble><temperature units="kelvin">${o.kelvin}</temperature></ensemble>
    <motion mode="dynamics">
      <dynamics mode="nve">
        <timestep units="femtosecond">${o.dt}</timestep>
      </dynamics>
    </motion>
  </system>
</simulation>
`;
}

/** Rows of an i-PI property file, by column name (`conserved`, `virial_md(0)`…). */
export function readIpiProperties(file: string): Record<string, number[]> {
  const text = fs.readFileSync(file, 'utf8');
  const names: string[] = [];
  const columns: Record<string, number[]> = {};
  for (const line of text.split('\n')) {
    const m = /^#\s*(?:column|cols\.)\s+(\d+)(?:-(\d+))?\s+-->\s+([A-Za-z_]+)/.exec(line);
    if (m) {
      const first = Number(m[1]);
      const last = m[2] === undefined ? first : Number(m[2]);
      for (let k = first; k <= last; k++) names[k - 1] = last === first ? m[3] : `${m[3]}(${k - first})`;
      continue;
    }
    if (line.startsWith('#') || line.trim() === '') continue;
    line
      .trim()
      .split(/\s+/)
      .forEach((v, k) => (columns[names[k]] ??= []).push(Number(v)));
  }
  return columns;
}

/** A running Python process with its output collected. */
export interface PythonServer {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts `python args…` in `cwd`; the caller kills it (kill()) when done. */
export function startPython(python: string, args: string[], cwd: string): PythonServer {
  const child = spawn(python, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OMP_NUM_THREADS: '1', PYTHONUNBUFFERED: '1' } });
  let text = '';
  child.stdout!.on('data', (d) => (text += d));
  child.stderr!.on('data', (d) => (text += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => text, exited };
}

/** Path of i-PI's `i-pi` script next to the venv's python. */
export function ipiScript(python: string): string {
  return path.join(path.dirname(python), 'i-pi');
}

/** Least-squares slope of y against x. */
export function slope(x: number[], y: number[]): number {
  const n = x.length;
  const mx = x.reduce((s, v) => s + v, 0) / n;
  const my = y.reduce((s, v) => s + v, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let k = 0; k < n; k++) {
    sxy += (x[k] - mx) * (y[k] - my);
    sxx += (x[k] - mx) ** 2;
  }
  return sxy / sxx;
}

/**
 * ASE 3.29.0's `ase.units.Bohr` (Å) and `ase.units.Hartree` (eV) (CODATA
 * 2014), which i-PI uses for its "ase" output units.
 */
export const ASE_BOHR = 0.5291772105638411;
export const ASE_HARTREE = 27.211386024367243;

/**
 * Factors from i-PI's "ase" output units back to the Å and eV/Å of i-PI's own
 * constants (the units the driver converted with): positions q_au·Bohr_ase →
 * q_au/1.8897261; forces F_au·Hartree_ase/Bohr_ase → F_au/0.019446904.
 */
export function fromAseUnits(bohrPerAngstrom: number, forcePerEvPerAngstrom: number): { length: number; force: number } {
  return { length: 1 / (ASE_BOHR * bohrPerAngstrom), force: ASE_BOHR / ASE_HARTREE / forcePerEvPerAngstrom };
}
