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

module.exports = { det, stress9, modelArrays };
