// The i-PI socket protocol, without the socket: message headers, unit
// conversion, decoding POSDATA and encoding FORCEREADY. The socket loop is in
// ./ipi.ts.
//
// The wire format (i-PI 3.3.1, `ipi/interfaces/sockets.py`; Ceriotti, More,
// Manolopoulos, Comput. Phys. Commun. 185, 1019 (2014),
// doi:10.1016/j.cpc.2013.10.027; Kapil et al., Comput. Phys. Commun. 236, 214
// (2019), doi:10.1016/j.cpc.2018.09.020):
// - every message starts with a 12-byte ASCII header, the upper-case name
//   padded with spaces (`"STATUS      "`);
// - numbers are raw little-endian values: counts int32, data float64;
// - everything is in atomic units (Bohr, Hartree, Hartree/Bohr);
// - the cell matrix h has the lattice vectors as its COLUMNS and is sent
//   row-major, followed by h⁻¹ the same way;
// - the virial sent back is W = Σ_pairs f_ij ⊗ r_ij = −V·σ, with σ the stress
//   (1/V) ∂E/∂ε, in Hartree (not divided by the volume).

/** Length of every message header, in bytes. */
export const HEADER_LENGTH = 12;

import { coded } from '../errors';
import { IPI_UNITS } from './ipi_units';

export { IPI_UNITS };

/** Names of the messages of the protocol. */
export type IpiMessage = 'STATUS' | 'READY' | 'NEEDINIT' | 'HAVEDATA' | 'INIT' | 'POSDATA' | 'GETFORCE' | 'FORCEREADY' | 'EXIT';

const SERVER_MESSAGES: ReadonlySet<string> = new Set(['STATUS', 'INIT', 'POSDATA', 'GETFORCE', 'EXIT']);

/** The 12-byte header of `name` (upper case, padded with spaces). */
export function header(name: IpiMessage): Buffer {
  return Buffer.from(name.toUpperCase().padEnd(HEADER_LENGTH, ' '), 'ascii');
}

/**
 * The message a 12-byte header from the server names; throws an Error
 * quoting the bytes when it is not one the server may send.
 */
export function parseHeader(bytes: Buffer): 'STATUS' | 'INIT' | 'POSDATA' | 'GETFORCE' | 'EXIT' {
  const text = bytes.toString('latin1');
  const name = text.replace(/[ \0]+$/, '');
  if (!SERVER_MESSAGES.has(name) || !/^[A-Z]+ *$/.test(text.replace(/\0+$/, ''))) {
    const shown = /^[\x20-\x7e]*$/.test(text) ? JSON.stringify(text) : `0x${bytes.toString('hex')}`;
    throw coded('ACDC_PARSE', `i-PI protocol: malformed message from the server: header ${shown} is not one of STATUS, INIT, POSDATA, GETFORCE, EXIT`);
  }
  return name as 'STATUS' | 'INIT' | 'POSDATA' | 'GETFORCE' | 'EXIT';
}

/** Most atoms a POSDATA message may announce (24 bytes each: at most 2 GiB of positions). */
export const MAX_ATOMS = Math.floor(0x7fffffff / 24);

/** Longest INIT parameter string accepted, in bytes. */
export const MAX_INIT_LENGTH = 1 << 24;

/**
 * A POSDATA message in acdc's units: the cell in Å with the lattice vectors
 * as ROWS (as `System.cell`), positions in Å, flat 3N.
 */
export interface Posdata {
  /** Cell in Å, 9 numbers row-major, rows are the lattice vectors a, b, c. */
  cell: Float64Array;
  /** Cartesian positions in Å, flat, length 3N. */
  positions: Float64Array;
  /** Number of atoms N. */
  atoms: number;
}

/**
 * Decodes the cell part of POSDATA (h and h⁻¹, 144 bytes), with h in Bohr,
 * lattice vectors as columns, row-major. Returns the cell in Å with the
 * vectors as rows (hᵀ / 1.8897261). Throws when a number is not finite.
 */
export function decodeCell(bytes: Buffer): Float64Array {
  if (bytes.length !== 144) throw coded('ACDC_PARSE', `i-PI protocol: the cell part of POSDATA has 144 bytes, got ${bytes.length}`);
  const cell = new Float64Array(9);
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 3; c++) {
      const v = bytes.readDoubleLE(8 * (3 * r + c));
      if (!Number.isFinite(v)) throw coded('ACDC_PARSE', `i-PI protocol: POSDATA cell h[${r}][${c}] is ${v}, not a finite number`);
      // h[r][c] is component r of lattice vector c: System.cell[c][r]
      cell[3 * c + r] = v / IPI_UNITS.bohrPerAngstrom;
    }
  }
  return cell;
}

/** Decodes 3N float64 positions in Bohr to Å; throws naming the atom when one is not finite. */
export function decodePositions(bytes: Buffer, atoms: number): Float64Array {
  if (bytes.length !== 24 * atoms) throw coded('ACDC_PARSE', `i-PI protocol: ${atoms} positions take ${24 * atoms} bytes, got ${bytes.length}`);
  const positions = new Float64Array(3 * atoms);
  for (let k = 0; k < 3 * atoms; k++) {
    const v = bytes.readDoubleLE(8 * k);
    if (!Number.isFinite(v)) {
      throw coded('ACDC_PARSE', `i-PI protocol: POSDATA position of atom ${Math.floor(k / 3)} (${'xyz'[k % 3]}) is ${v}, not a finite number`);
    }
    positions[k] = v / IPI_UNITS.bohrPerAngstrom;
  }
  return positions;
}

/** Volume of a cell (rows = vectors, Å) in Å³: |det|. */
export function cellVolume(cell: ArrayLike<number>): number {
  const [a0, a1, a2, b0, b1, b2, c0, c1, c2] = Array.from(cell);
  return Math.abs(a0 * (b1 * c2 - b2 * c1) - a1 * (b0 * c2 - b2 * c0) + a2 * (b0 * c1 - b1 * c0));
}

/** What the model returns for one structure, in acdc's units. */
export interface ForceResult {
  /** Energy in eV. */
  energy: number;
  /** Forces in eV/Å, flat 3N. */
  forces: ArrayLike<number>;
  /**
   * Stress σ = (1/V) ∂E/∂ε in eV/Å³ (9 numbers row-major, ASE's sign:
   * positive under tension); null for a structure without a cell, then the
   * virial sent is zero.
   */
  stress: ArrayLike<number> | null;
  /** Volume in Å³ (used with `stress`). */
  volume: number;
  /** The extra string (usually JSON); '' for none. */
  extra: string;
}

/**
 * The complete FORCEREADY reply in one Buffer: header, float64 energy
 * (Hartree), int32 N, 3N float64 forces (Hartree/Bohr), 9 float64 virial
 * W = −V·σ (Hartree, row-major), int32 length and the UTF-8 extra string.
 * Throws (and nothing is sent) when a number is not finite.
 */
export function encodeForceReady(r: ForceResult, atoms: number): Buffer {
  if (!Number.isFinite(r.energy)) throw coded('ACDC_NUMERICAL', `the model returned a non-finite energy (${r.energy} eV)`);
  if (r.forces.length !== 3 * atoms) throw coded('ACDC_INVALID_PARAMETER', `the model returned ${r.forces.length} force components for ${atoms} atoms (expected ${3 * atoms})`);
  const extra = Buffer.from(r.extra, 'utf8');
  const out = Buffer.alloc(HEADER_LENGTH + 8 + 4 + 24 * atoms + 72 + 4 + extra.length);
  let at = header('FORCEREADY').copy(out, 0);
  at = out.writeDoubleLE(r.energy * IPI_UNITS.hartreePerEv, at);
  at = out.writeInt32LE(atoms, at);
  for (let k = 0; k < 3 * atoms; k++) {
    const f = r.forces[k];
    if (!Number.isFinite(f)) throw coded('ACDC_NUMERICAL', `the model returned a non-finite force on atom ${Math.floor(k / 3)} (${'xyz'[k % 3]}: ${f} eV/Å)`);
    at = out.writeDoubleLE(f * IPI_UNITS.forcePerEvPerAngstrom, at);
  }
  if (r.stress !== null && r.stress.length !== 9) throw coded('ACDC_INVALID_PARAMETER', `the model returned a stress of ${r.stress.length} numbers (expected 9)`);
  for (let k = 0; k < 9; k++) {
    const s = r.stress === null ? 0 : r.stress[k];
    if (!Number.isFinite(s)) throw coded('ACDC_NUMERICAL', `the model returned a non-finite stress (component ${k}: ${s} eV/Å³)`);
    // W = -V σ, eV → Hartree; +0 turns -0 into 0
    at = out.writeDoubleLE(-r.volume * s * IPI_UNITS.hartreePerEv + 0, at);
  }
  at = out.writeInt32LE(extra.length, at);
  extra.copy(out, at);
  return out;
}
