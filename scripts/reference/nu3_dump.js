// Dumps what scripts/reference/nu3_numpy.py needs to redo a ν = 3
// (features: 'bispectrum') SparseGPR and LinearModel fit in numpy
// (dev-only): acdc's SoapBispectrum (checked against featomic elsewhere) with
// position and strain gradients, placed per atom in this file by property
// label (independently of the Rust joining, including the rule that drops
// the copies of the 1 ↔ 2 swap: l_1 = l_2 and (a_2, n_2) < (a_1, n_1)),
// the targets, and the sparse environments of a SparseGPR fitted with the
// settings in test/fixtures/models/nu3_case.json.
//
// Run from the repository root after `npm run build`:
//   node scripts/reference/nu3_dump.js /tmp/nu3_dump.json
//   /tmp/venv-nu3/bin/python scripts/reference/nu3_numpy.py /tmp/nu3_dump.json
'use strict';
const fs = require('node:fs');
const acdc = require('acdc-ml');
const { frameTargets, modelArrays } = require('./model_dump.js');

const out = process.argv[2] ?? '/tmp/nu3_dump.json';
const setup = JSON.parse(fs.readFileSync('test/fixtures/models/nu3_case.json', 'utf8'));
const train = acdc.readXyzSync('test/fixtures/models/train.xyz');
const test = acdc.readXyzSync('test/fixtures/models/test.xyz');
const trainFrames = setup.train.map((k) => train[k]);
const testFrames = setup.test.map((k) => test[k]);

const gpr = acdc.SparseGPR.fitSync(trainFrames, setup.gpr);
const species = gpr.species;
const calculator = new acdc.SoapBispectrum(setup.gpr.hypers);

function dims(properties) {
  const at = (name) => {
    const k = properties.names.indexOf(name);
    if (k < 0) throw new Error(`no ${name} in ${properties.names}`);
    return k;
  };
  return ['l_1', 'l_2', 'neighbor_1_type', 'n_1', 'neighbor_2_type', 'n_2'].map(at);
}
function kept(row, d) {
  if (row[d[0]] !== row[d[1]]) return true;
  return row[d[2]] < row[d[4]] || (row[d[2]] === row[d[4]] && row[d[3]] <= row[d[5]]);
}
function rowOf(labels, r) {
  return Array.from(labels.values.subarray(r * labels.names.length, (r + 1) * labels.names.length));
}

// the layout: every property of a structure holding all species (isolated atoms), in the calculator's order
const probe = new acdc.System({ types: species, positions: species.flatMap((_, k) => [1e4 * k, 0, 0]), cell: new Array(9).fill(0), pbc: [false, false, false] });
const layout = new Map();
{
  const block = calculator.computeSync(probe).block(0);
  const d = dims(block.properties);
  for (let r = 0; r < block.properties.count; r++) {
    const row = rowOf(block.properties, r);
    if (kept(row, d)) layout.set(row.join(','), layout.size);
  }
}
const P = layout.size;

function joined(frames) {
  return frames.map((s) => {
    const periodic = s.pbc.every(Boolean);
    const tm = calculator.computeSync(s, { gradients: periodic ? ['positions', 'strain'] : ['positions'] });
    const st = {
      ...frameTargets(s),
      features: Array.from({ length: s.size }, () => new Array(P).fill(0)),
      positions: new Map(),
      strain: periodic ? Array.from({ length: s.size }, () => new Array(9 * P).fill(0)) : [],
    };
    for (let b = 0; b < tm.keys.count; b++) {
      const block = tm.block(b);
      const d = dims(block.properties);
      const width = block.properties.count;
      const column = [];
      for (let q = 0; q < width; q++) {
        const row = rowOf(block.properties, q);
        column.push(kept(row, d) ? layout.get(row.join(',')) : -1);
        if (column[q] === undefined) throw new Error(`property ${row} is not in the layout`);
      }
      for (let r = 0; r < block.samples.count; r++) {
        const atom = block.samples.row(r)[1];
        for (let q = 0; q < width; q++) if (column[q] >= 0) st.features[atom][column[q]] = block.values[r * width + q];
      }
      const g = block.gradient('positions');
      for (let r = 0; r < g.samples.count; r++) {
        const [sample, , j] = g.samples.row(r);
        const i = block.samples.row(sample)[1];
        const key = `${i},${j}`;
        if (!st.positions.has(key)) st.positions.set(key, { i, j, values: new Array(3 * P).fill(0) });
        const v = st.positions.get(key).values;
        for (let x = 0; x < 3; x++) for (let q = 0; q < width; q++) if (column[q] >= 0) v[x * P + column[q]] = g.values[(r * 3 + x) * width + q];
      }
      const sg = block.gradient('strain');
      if (sg) {
        for (let r = 0; r < sg.samples.count; r++) {
          const i = block.samples.row(sg.samples.row(r)[0])[1];
          for (let ab = 0; ab < 9; ab++) for (let q = 0; q < width; q++) if (column[q] >= 0) st.strain[i][ab * P + column[q]] = sg.values[(r * 9 + ab) * width + q];
        }
      }
    }
    return { ...st, features: st.features.flat(), strain: st.strain.flat(), positions: Array.from(st.positions.values()) };
  });
}


// sparse environments: read back from the model file
const { header, read } = modelArrays(gpr);
if (header.features !== 'bispectrum' || header.n_features !== P) throw new Error(`the model file says ${header.features} with ${header.n_features} features, this layout has ${P}`);

fs.writeFileSync(out, JSON.stringify({
  species,
  nFeatures: P,
  sparseCounts: header.sparse_counts,
  sparseFeatures: read('sparse_features'),
  train: joined(trainFrames),
  test: joined(testFrames),
  acdcVersion: require('acdc-ml/package.json').version,
}));
console.log(`wrote ${out} (${P} features per atom)`);
