// Dumps what scripts/reference/gpr_numpy.py needs to redo a SparseGPR and a
// LinearModel fit in numpy (dev-only): acdc's SOAP power spectrum with
// position and strain gradients, joined per atom in this file (independently
// of the Rust joining), the targets, and the sparse environments of a
// SparseGPR fitted with the settings in test/fixtures/models/small_case.json.
//
// Run from the repository root after `npm run build`:
//   node scripts/reference/gpr_dump.js /tmp/gpr_dump.json
//   /tmp/venv-models/bin/python scripts/reference/gpr_numpy.py /tmp/gpr_dump.json
'use strict';
const fs = require('node:fs');
const acdc = require('acdc-ml');
const { modelArrays, speciesPairs, joinedPowerSpectrum } = require('./model_dump.js');

const out = process.argv[2] ?? '/tmp/gpr_dump.json';
const setup = JSON.parse(fs.readFileSync('test/fixtures/models/small_case.json', 'utf8'));
const train = acdc.readXyzSync('test/fixtures/models/train.xyz');
const test = acdc.readXyzSync('test/fixtures/models/test.xyz');
const trainFrames = setup.train.map((k) => train[k]);
const testFrames = setup.test.map((k) => test[k]);

const gpr = acdc.SparseGPR.fitSync(trainFrames, setup.gpr);
const species = gpr.species;
const pairs = speciesPairs(species);
const joined = (frames) => joinedPowerSpectrum(acdc, setup.gpr.hypers, species, frames);

// sparse environments: read back from the model file
const { header, read } = modelArrays(gpr);

const tr = joined(trainFrames);
const te = joined(testFrames);
fs.writeFileSync(out, JSON.stringify({
  species,
  pairs,
  blockSize: tr.blockSize,
  sparseCounts: header.sparse_counts,
  sparseFeatures: read('sparse_features'),
  train: tr.structures,
  test: te.structures,
  acdcVersion: require('acdc-ml/package.json').version,
}));
console.log(`wrote ${out}`);
