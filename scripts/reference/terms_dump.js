// Dumps what scripts/reference/terms_numpy.py needs to redo a sum-of-kernels
// SparseGPR fit (distance_2b + SOAP) in numpy (dev-only): the frames
// (positions, cell, types, targets), acdc's SOAP power spectrum with position
// and strain gradients joined per atom here, and the SOAP sparse
// environments of the model fitted with the settings in
// test/fixtures/models/terms_case.json. The 2-body part (pairs, distances,
// sparse distances, kernel) is recomputed from the positions in numpy.
//
// Run from the repository root after `npm run build`:
//   node scripts/reference/terms_dump.js /tmp/terms_dump.json
//   /tmp/venv-terms/bin/python scripts/reference/terms_numpy.py /tmp/terms_dump.json
'use strict';
const fs = require('node:fs');
const acdc = require('acdc-ml');
const { det, stress9, modelArrays } = require('./model_dump.js');

const out = process.argv[2] ?? '/tmp/terms_dump.json';
const setup = JSON.parse(fs.readFileSync('test/fixtures/models/terms_case.json', 'utf8'));
const train = acdc.readXyzSync('test/fixtures/models/train.xyz');
const test = acdc.readXyzSync('test/fixtures/models/test.xyz');
const trainFrames = setup.train.map((k) => train[k]);
const testFrames = setup.test.map((k) => test[k]);
const soapTerm = setup.gpr.terms.find((t) => t.type === 'soap');

const gpr = acdc.SparseGPR.fitSync(trainFrames, setup.gpr);
setup.gpr = { hypers: soapTerm.hypers }; // what joined() reads
const species = gpr.species;
const pairs = [];
for (let a = 0; a < species.length; a++) for (let b = a; b < species.length; b++) pairs.push([species[a], species[b]]);

function joined(frames) {
  const soap = new acdc.SoapPowerSpectrum(setup.gpr.hypers);
  const structures = frames.map((s) => ({
    types: Array.from(s.types),
    volume: s.pbc.every(Boolean) ? Math.abs(det(s.cell)) : 0,
    energy: s.info.energy,
    forces: Array.from(s.arrays.forces),
    stress: s.info.stress === undefined ? null : stress9(s.info.stress),
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


// SOAP sparse environments: read back from the model file
const { header, read } = modelArrays(gpr);

const frame = (s) => ({ xyz: Array.from(s.positions), cell: Array.from(s.cell), pbc: s.pbc });
const tr = joined(trainFrames);
const te = joined(testFrames);
fs.writeFileSync(out, JSON.stringify({
  species,
  pairs,
  blockSize: tr.blockSize,
  sparseCounts: header.sparse_counts,
  sparseFeatures: read('sparse_features'),
  // for information only: numpy chooses its own sparse distances
  acdcPairSparse: read('distance_2b_sparse'),
  train: tr.structures.map((s, k) => ({ ...s, ...frame(trainFrames[k]) })),
  test: te.structures.map((s, k) => ({ ...s, ...frame(testFrames[k]) })),
  acdcVersion: require('acdc-ml/package.json').version,
}));
console.log(`wrote ${out}`);
