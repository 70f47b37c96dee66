// What the *_dump.js scripts (dev-only) share: the cell volume, the 3 × 3
// stress of a frame, and the arrays of a model file read back from its own
// layout (a JSON header with an array table, then aligned little-endian
// f64 data), independently of acdc's reader.
'use strict';

/** Determinant of a row-major 3 × 3 cell (Å³ when the rows are the cell vectors in Å). */
function det(c) {
  return c[0] * (c[4] * c[8] - c[5] * c[7]) - c[1] * (c[3] * c[8] - c[5] * c[6]) + c[2] * (c[3] * c[7] - c[4] * c[6]);
}

/** A frame's stress (eV/Å³) as 9 row-major numbers, from 9 numbers, a 3 × 3 array or Voigt xx yy zz yz xz xy. */
function stress9(v) {
  const f = v.flat ? v.flat(2) : Array.from(v);
  if (f.length === 9) return f;
  const [xx, yy, zz, yz, xz, xy] = f;
  return [xx, xy, xz, xy, yy, yz, xz, yz, zz];
}

/** The header of a model's file bytes (`model.toBuffer()`) and `read(name)`, one named array as numbers. */
function modelArrays(model) {
  const bytes = model.toBuffer();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(16, true));
  const header = JSON.parse(Buffer.from(bytes.subarray(24, 24 + headerLength)).toString('utf8'));
  const dataStart = Math.ceil((24 + headerLength) / 8) * 8;
  const read = (name) => {
    const entry = header.arrays.find((a) => a.name === name);
    if (!entry) throw new Error(`the model file has no array named ${name}`);
    const n = entry.shape.reduce((a, b) => a * b, 1);
    return Array.from({ length: n }, (_, k) => view.getFloat64(dataStart + entry.offset + 8 * k, true));
  };
  return { header, read };
}

/** A frame's types, volume (Å³, 0 when not periodic) and targets: energy (eV), forces (eV/Å), stress (eV/Å³ or null). */
function frameTargets(s) {
  return {
    types: Array.from(s.types),
    volume: s.pbc.every(Boolean) ? Math.abs(det(s.cell)) : 0,
    energy: s.info.energy,
    forces: Array.from(s.arrays.forces),
    stress: s.info.stress === undefined ? null : stress9(s.info.stress),
  };
}

/** The species pairs (a ≤ b) of a model's species, in the order of the joined features. */
function speciesPairs(species) {
  const pairs = [];
  for (let a = 0; a < species.length; a++) for (let b = a; b < species.length; b++) pairs.push([species[a], species[b]]);
  return pairs;
}

/**
 * acdc's SOAP power spectrum of `frames` (hypers `hypers`) joined per atom in
 * this file, independently of the Rust joining: one row per atom with the
 * blocks of the species pairs `speciesPairs(species)` side by side, the
 * position gradients per (i, j) and the strain gradients per atom (periodic
 * frames), with each frame's targets (eV, eV/Å, eV/Å³) and volume (Å³).
 */
function joinedPowerSpectrum(acdc, hypers, species, frames) {
  const pairs = speciesPairs(species);
  const soap = new acdc.SoapPowerSpectrum(hypers);
  const structures = frames.map((s) => ({
    ...frameTargets(s),
    features: [],
    positions: new Map(),
    strain: [],
  }));
  let blockSize = 0;
  frames.forEach((s, k) => {
    const periodic = s.pbc.every(Boolean);
    const tm = soap.computeSync(s, { gradients: periodic ? ['positions', 'strain'] : ['positions'] });
    const st = structures[k];
    for (let b = 0; b < tm.keys.count; b++) {
      const [, n1, n2] = tm.keys.row(b);
      const block = tm.block(b);
      blockSize = block.properties.count;
      const p = pairs.findIndex(([x, y]) => x === n1 && y === n2);
      if (p < 0) throw new Error(`pair ${n1} ${n2} not in ${species}`);
      const P = pairs.length * blockSize;
      const rowOf = (i) => {
        if (!st.features[i]) st.features[i] = new Array(P).fill(0);
        return st.features[i];
      };
      for (let r = 0; r < block.samples.count; r++) {
        const atom = block.samples.row(r)[1];
        const row = rowOf(atom);
        for (let q = 0; q < blockSize; q++) row[p * blockSize + q] = block.values[r * blockSize + q];
      }
      const g = block.gradient('positions');
      for (let r = 0; r < g.samples.count; r++) {
        const [sample, , j] = g.samples.row(r);
        const i = block.samples.row(sample)[1];
        const key = `${i},${j}`;
        if (!st.positions.has(key)) st.positions.set(key, { i, j, values: new Array(3 * P).fill(0) });
        const v = st.positions.get(key).values;
        for (let x = 0; x < 3; x++) for (let q = 0; q < blockSize; q++) v[x * P + p * blockSize + q] = g.values[(r * 3 + x) * blockSize + q];
      }
      const sg = block.gradient('strain');
      if (sg) {
        for (let r = 0; r < sg.samples.count; r++) {
          const i = block.samples.row(sg.samples.row(r)[0])[1];
          if (!st.strain[i]) st.strain[i] = new Array(9 * P).fill(0);
          for (let ab = 0; ab < 9; ab++) for (let q = 0; q < blockSize; q++) st.strain[i][ab * P + p * blockSize + q] = sg.values[(r * 9 + ab) * blockSize + q];
        }
      }
    }
  });
  return { structures: structures.map((s) => ({ ...s, positions: Array.from(s.positions.values()) })), blockSize };
}

module.exports = { det, stress9, frameTargets, modelArrays, speciesPairs, joinedPowerSpectrum };
