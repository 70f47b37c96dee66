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

// Headers are sent often (every STATUS is answered): made once. They are
// only ever read (written to the socket), never changed.
const HEADERS = new Map<string, Buffer>();

/** The 12-byte header of `name` (upper case, padded with spaces). */
export function header(name: IpiMessage): Buffer {
  let h = HEADERS.get(name);
  if (h === undefined) {
    h = Buffer.from(name.toUpperCase().padEnd(HEADER_LENGTH, ' '), 'ascii');
    HEADERS.set(name, h);
  }
  return h;
}

// The server's headers as i-PI sends them (space-padded): a header equal to
// one of these is recognised without building a string.
const PADDED = (['STATUS', 'INIT', 'POSDATA', 'GETFORCE', 'EXIT'] as const).map((name) => [name, Buffer.from(name.padEnd(HEADER_LENGTH, ' '), 'ascii')] as const);

/**
 * The message a 12-byte header from the server names; throws an Error
 * quoting the bytes when it is not one the server may send.
 */
export function parseHeader(bytes: Buffer): 'STATUS' | 'INIT' | 'POSDATA' | 'GETFORCE' | 'EXIT' {
  if (bytes.length === HEADER_LENGTH) {
    for (const [name, padded] of PADDED) if (bytes.equals(padded)) return name;
  }
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

// Float64Array views read and write the host's byte order; the protocol is
// little-endian, so on a big-endian host the per-number Buffer methods are used.
const LITTLE_ENDIAN = new Uint8Array(Float64Array.of(1).buffer)[7] === 0x3f;

/**
 * `bytes` (a multiple of 8 long) as float64s: a view when the bytes are
 * 8-byte aligned, else a copy into `scratch` (grown when too short). A
 * typed-array loop instead of one `readDoubleLE` call per number: the
 * first steps run before V8 has optimised the loop, and a call per number
 * costs ~1 µs there (~8 ms for 1 000 atoms on the first POSDATA).
 */
function float64s(bytes: Buffer, scratch: { buffer: Float64Array | null }): Float64Array {
  const count = bytes.length / 8;
  if (bytes.byteOffset % 8 === 0) return new Float64Array(bytes.buffer, bytes.byteOffset, count);
  if (scratch.buffer === null || scratch.buffer.length < count) scratch.buffer = new Float64Array(count);
  new Uint8Array(scratch.buffer.buffer, 0, bytes.length).set(bytes);
  return scratch.buffer.length === count ? scratch.buffer : scratch.buffer.subarray(0, count);
}

const unalignedPositions: { buffer: Float64Array | null } = { buffer: null };

/** Decodes 3N float64 positions in Bohr to Å; throws naming the atom when one is not finite. */
export function decodePositions(bytes: Buffer, atoms: number): Float64Array {
  if (bytes.length !== 24 * atoms) throw coded('ACDC_PARSE', `i-PI protocol: ${atoms} positions take ${24 * atoms} bytes, got ${bytes.length}`);
  const positions = new Float64Array(3 * atoms);
  if (LITTLE_ENDIAN) {
    const raw = float64s(bytes, unalignedPositions);
    let finite = true;
    for (let k = 0; k < 3 * atoms; k++) {
      const v = raw[k];
      // v − v is 0 for a finite v and NaN for ±Infinity and NaN
      finite = finite && v - v === 0;
      positions[k] = v / IPI_UNITS.bohrPerAngstrom;
    }
    if (finite) return positions;
    // a number is not finite: the loop below names the first one
  }
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
  const a0 = cell[0], a1 = cell[1], a2 = cell[2], b0 = cell[3], b1 = cell[4], b2 = cell[5], c0 = cell[6], c1 = cell[7], c2 = cell[8];
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

/** Bytes of the FORCEREADY reply for `atoms` atoms and an extra string of `extraBytes` UTF-8 bytes. */
export function forceReadyLength(atoms: number, extraBytes: number): number {
  return HEADER_LENGTH + 8 + 4 + 24 * atoms + 72 + 4 + extraBytes;
}

/**
 * The complete FORCEREADY reply in one Buffer: header, float64 energy
 * (Hartree), int32 N, 3N float64 forces (Hartree/Bohr), 9 float64 virial
 * W = −V·σ (Hartree, row-major), int32 length and the UTF-8 extra string.
 * Throws (and nothing is sent) when a number is not finite. `reuse`, when
 * it has the reply's length, is written over and returned (the caller makes
 * sure the socket no longer holds it); otherwise a new Buffer is made.
 */
export function encodeForceReady(r: ForceResult, atoms: number, reuse?: Buffer | null): Buffer {
  if (!Number.isFinite(r.energy)) throw coded('ACDC_NUMERICAL', `the model returned a non-finite energy (${r.energy} eV)`);
  if (r.forces.length !== 3 * atoms) throw coded('ACDC_INVALID_PARAMETER', `the model returned ${r.forces.length} force components for ${atoms} atoms (expected ${3 * atoms})`);
  const extra = r.extra.length === 0 ? null : Buffer.from(r.extra, 'utf8');
  const length = forceReadyLength(atoms, extra === null ? 0 : extra.length);
  // a fresh ArrayBuffer of its own: offset 0, so the forces (at byte 24) are 8-byte aligned
  const out = reuse !== undefined && reuse !== null && reuse.length === length ? reuse : Buffer.from(new ArrayBuffer(length));
  let at = header('FORCEREADY').copy(out, 0);
  at = out.writeDoubleLE(r.energy * IPI_UNITS.hartreePerEv, at);
  at = out.writeInt32LE(atoms, at);
  const forces = r.forces;
  const stress = r.stress;
  if (stress !== null && stress.length !== 9) {
    checkForces(forces, atoms);
    throw coded('ACDC_INVALID_PARAMETER', `the model returned a stress of ${stress.length} numbers (expected 9)`);
  }
  const toForce = IPI_UNITS.forcePerEvPerAngstrom;
  const toEnergy = IPI_UNITS.hartreePerEv;
  if (LITTLE_ENDIAN && (out.byteOffset + at) % 8 === 0) {
    // one typed-array pass (see float64s); the checks name the first bad number
    const view = new Float64Array(out.buffer, out.byteOffset + at, 3 * atoms + 9);
    let finite = true;
    for (let k = 0; k < 3 * atoms; k++) {
      const f = forces[k];
      finite = finite && f - f === 0;
      view[k] = f * toForce;
    }
    if (!finite) checkForces(forces, atoms);
    for (let k = 0; k < 9; k++) {
      const s = stress === null ? 0 : stress[k];
      if (!Number.isFinite(s)) throw coded('ACDC_NUMERICAL', `the model returned a non-finite stress (component ${k}: ${s} eV/Å³)`);
      // W = -V σ, eV → Hartree; +0 turns -0 into 0
      view[3 * atoms + k] = -r.volume * s * toEnergy + 0;
    }
    at += 8 * (3 * atoms + 9);
  } else {
    for (let k = 0; k < 3 * atoms; k++) {
      const f = forces[k];
      if (!Number.isFinite(f)) checkForces(forces, atoms);
      at = out.writeDoubleLE(f * toForce, at);
    }
    for (let k = 0; k < 9; k++) {
      const s = stress === null ? 0 : stress[k];
      if (!Number.isFinite(s)) throw coded('ACDC_NUMERICAL', `the model returned a non-finite stress (component ${k}: ${s} eV/Å³)`);
      at = out.writeDoubleLE(-r.volume * s * toEnergy + 0, at);
    }
  }
  at = out.writeInt32LE(extra === null ? 0 : extra.length, at);
  if (extra !== null) extra.copy(out, at);
  return out;
}

/** Throws naming the first non-finite force component, if any. */
function checkForces(forces: ArrayLike<number>, atoms: number): void {
  for (let k = 0; k < 3 * atoms; k++) {
    const f = forces[k];
    if (!Number.isFinite(f)) throw coded('ACDC_NUMERICAL', `the model returned a non-finite force on atom ${Math.floor(k / 3)} (${'xyz'[k % 3]}: ${f} eV/Å)`);
  }
}
