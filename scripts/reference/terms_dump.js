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
const { modelArrays, speciesPairs, joinedPowerSpectrum } = require('./model_dump.js');

const out = process.argv[2] ?? '/tmp/terms_dump.json';
const setup = JSON.parse(fs.readFileSync('test/fixtures/models/terms_case.json', 'utf8'));
const train = acdc.readXyzSync('test/fixtures/models/train.xyz');
const test = acdc.readXyzSync('test/fixtures/models/test.xyz');
const trainFrames = setup.train.map((k) => train[k]);
const testFrames = setup.test.map((k) => test[k]);
const soapTerm = setup.gpr.terms.find((t) => t.type === 'soap');

const gpr = acdc.SparseGPR.fitSync(trainFrames, setup.gpr);
const species = gpr.species;
const pairs = speciesPairs(species);
const joined = (frames) => joinedPowerSpectrum(acdc, soapTerm.hypers, species, frames);

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
