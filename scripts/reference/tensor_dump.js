// Dumps what scripts/reference/tensor_gpr_numpy.py needs to redo a
// SparseTensorGPR and a TensorLinearModel fit in numpy (dev-only): the λ-SOAP
// blocks (o3_sigma = +1, λ = 0, 1, 2) of every atom of the frames named in
// test/fixtures/tensors/small_case.json, from acdc's EquivariantPowerSpectrum
// (checked against featomic separately), with the species, the positions (for
// the dipole charge term) and the targets.
// Everything else (normalisation, sparse selection, kernels, solve, the
// Cartesian ↔ spherical maps) is redone in numpy.
//
// Run from the repository root after `npm run build`:
//   node scripts/reference/tensor_dump.js /tmp/tensor_dump.json
//   /tmp/venv-tensor/bin/python scripts/reference/tensor_gpr_numpy.py /tmp/tensor_dump.json
'use strict';
const fs = require('node:fs');
const acdc = require('acdc-ml');

const out = process.argv[2] ?? '/tmp/tensor_dump.json';
const setup = JSON.parse(fs.readFileSync('test/fixtures/tensors/small_case.json', 'utf8'));
const frames = acdc.readXyzSync('examples/molecule-tensors.xyz');
const train = setup.train.map((k) => frames[k]);
const test = setup.test.map((k) => frames[k]);
const species = [...new Set(train.flatMap((s) => Array.from(s.types)))].sort((a, b) => a - b);
function dump(list, hypers) {
  const calc = new acdc.EquivariantPowerSpectrum(hypers, { neighborTypes: species });
  return list.map((s) => {
    const tm = calc.computeSync(s, {
      neighborsToProperties: true,
      selectedKeys: { names: ['o3_lambda', 'o3_sigma'], values: [[0, 1], [1, 1], [2, 1]] },
    });
    const atoms = Array.from(s.types).map((t) => ({ type: t, blocks: {} }));
    for (let b = 0; b < tm.keys.count; b++) {
      const [lambda] = tm.keys.row(b);
      const block = tm.block(b);
      const q = block.properties.count;
      const per = (2 * lambda + 1) * q;
      for (const a of atoms) a.blocks[lambda] = a.blocks[lambda] ?? new Array(per).fill(0);
      for (let r = 0; r < block.samples.count; r++) {
        const atom = block.samples.row(r)[1];
        atoms[atom].blocks[lambda] = Array.from(block.values.subarray(r * per, (r + 1) * per));
      }
      for (const a of atoms) a.q = { ...(a.q ?? {}), [lambda]: q };
    }
    return { types: Array.from(s.types), positions: Array.from(s.positions), dipole: Array.from(s.info.dipole), polarizability: Array.from(s.info.polarizability), atoms };
  });
}

fs.writeFileSync(
  out,
  JSON.stringify({
    setup,
    species,
    train: dump(train, setup.hypers),
    test: dump(test, setup.hypers),
    // the linear model has species × features parameters: a smaller basis keeps its solve quick
    train_linear: dump(train, setup.linear_hypers),
    test_linear: dump(test, setup.linear_hypers),
  }),
);
console.log(`wrote ${out}`);
