// Dumps what scripts/reference/alchemical_numpy.py needs to redo SparseGPR
// and LinearModel fits with pseudo-elements (density.alchemical) in numpy
// (dev-only). numpy gets the ordinary species-resolved spherical expansion
// (no pseudo-elements; the expansion is checked against featomic elsewhere)
// with position and strain gradients, densified here to
// c[atom][species][(l, m)][n], and forms the pseudo-element density, the
// power spectrum and its gradients itself. Also dumped: acdc's ordinary
// power spectrum (values only, for numpy's check of its own power spectrum
// with U = I), the targets, and for each coupling of
// test/fixtures/models/alchemical_case.json the sparse environments of the
// SparseGPR fitted with the settings of test/fixtures/models/small_case.json.
//
// Run from the repository root after `npm run build`:
//   node scripts/reference/alchemical_dump.js /tmp/alchemical_dump.json
//   /tmp/venv-models/bin/python scripts/reference/alchemical_numpy.py /tmp/alchemical_dump.json
'use strict';
const fs = require('node:fs');
const acdc = require('acdc-ml');
const { det, stress9, modelArrays } = require('./model_dump.js');

const out = process.argv[2] ?? '/tmp/alchemical_dump.json';
const setup = JSON.parse(fs.readFileSync('test/fixtures/models/small_case.json', 'utf8'));
const cases = JSON.parse(fs.readFileSync('test/fixtures/models/alchemical_case.json', 'utf8'));
const train = acdc.readXyzSync('test/fixtures/models/train.xyz');
const test = acdc.readXyzSync('test/fixtures/models/test.xyz');
const trainFrames = setup.train.map((k) => train[k]);
const testFrames = setup.test.map((k) => test[k]);
const hypers = setup.gpr.hypers;
if (JSON.stringify(hypers) !== JSON.stringify(setup.linear.hypers)) throw new Error('small_case.json: gpr and linear hypers differ');
const species = cases.types;
const L = hypers.basis.max_angular;
const N = hypers.basis.radial.max_radial + 1;
const LM = (L + 1) ** 2;
const S = species.length;
const W = S * LM * N; // one atom's densified expansion


function frameDump(s) {
  const periodic = s.pbc.every(Boolean);
  const n = s.size;
  const tm = new acdc.SphericalExpansion(hypers).computeSync(s, { gradients: periodic ? ['positions', 'strain'] : ['positions'] });
  const expansion = new Array(n * W).fill(0);
  const strain = periodic ? new Array(n * 9 * W).fill(0) : null;
  const positions = new Map();
  for (let k = 0; k < tm.keys.count; k++) {
    const { o3_lambda: l, neighbor_type: z } = tm.keys.entry(k);
    const a = species.indexOf(z);
    if (a < 0) throw new Error(`neighbour type ${z} not in ${species}`);
    const block = tm.block(k);
    const nm = 2 * l + 1;
    if (block.properties.count !== N) throw new Error(`block l=${l} has ${block.properties.count} radial functions, expected ${N}`);
    // offset of (species a, l, m = 0, n = 0) within one atom's W numbers
    const base = (a * LM + l * l) * N;
    for (let r = 0; r < block.samples.count; r++) {
      const i = block.samples.row(r)[1];
      for (let q = 0; q < nm * N; q++) expansion[i * W + base + q] = block.values[r * nm * N + q];
    }
    const g = block.gradient('positions');
    for (let r = 0; r < g.samples.count; r++) {
      const [sample, , j] = g.samples.row(r);
      const i = block.samples.row(sample)[1];
      const key = `${i},${j}`;
      if (!positions.has(key)) positions.set(key, { i, j, values: new Array(3 * W).fill(0) });
      const v = positions.get(key).values;
      for (let x = 0; x < 3; x++) for (let q = 0; q < nm * N; q++) v[x * W + base + q] = g.values[(r * 3 + x) * nm * N + q];
    }
    const sg = block.gradient('strain');
    if (sg) {
      for (let r = 0; r < sg.samples.count; r++) {
        const i = block.samples.row(sg.samples.row(r)[0])[1];
        for (let c = 0; c < 9; c++) for (let q = 0; q < nm * N; q++) strain[(i * 9 + c) * W + base + q] = sg.values[(r * 9 + c) * nm * N + q];
      }
    }
  }
  // acdc's ordinary power spectrum, joined per atom over the species pairs a1 ≤ a2
  const pairs = [];
  for (let a = 0; a < S; a++) for (let b = a; b < S; b++) pairs.push([species[a], species[b]]);
  const ps = new acdc.SoapPowerSpectrum(hypers).computeSync(s);
  const blockSize = (L + 1) * N * N;
  const P = pairs.length * blockSize;
  const power = new Array(n * P).fill(0);
  for (let k = 0; k < ps.keys.count; k++) {
    const [, n1, n2] = ps.keys.row(k);
    const p = pairs.findIndex(([x, y]) => x === n1 && y === n2);
    const block = ps.block(k);
    if (block.properties.count !== blockSize) throw new Error('power spectrum block size');
    for (let r = 0; r < block.samples.count; r++) {
      const i = block.samples.row(r)[1];
      for (let q = 0; q < blockSize; q++) power[i * P + p * blockSize + q] = block.values[r * blockSize + q];
    }
  }
  return {
    types: Array.from(s.types),
    volume: periodic ? Math.abs(det(s.cell)) : 0,
    energy: s.info.energy,
    forces: Array.from(s.arrays.forces),
    stress: s.info.stress === undefined ? null : stress9(s.info.stress),
    expansion,
    positions: Array.from(positions.values()),
    strain,
    power,
  };
}

// the sparse environments of a fitted SparseGPR: read back from the model file (the array table of its JSON header)
function sparseOf(model) {
  const { header, read } = modelArrays(model);
  return { counts: header.sparse_counts, features: read('sparse_features') };
}

const sparse = {};
for (const [name, coupling] of Object.entries(cases.couplings)) {
  const h = { ...hypers, density: { ...hypers.density, alchemical: { types: species, coupling } } };
  sparse[name] = sparseOf(acdc.SparseGPR.fitSync(trainFrames, { ...setup.gpr, hypers: h }));
}

fs.writeFileSync(out, JSON.stringify({
  species,
  maxAngular: L,
  nRadial: N,
  sparse,
  train: trainFrames.map(frameDump),
  test: testFrames.map(frameDump),
  acdcVersion: require('acdc-ml/package.json').version,
}));
console.log(`wrote ${out}`);
