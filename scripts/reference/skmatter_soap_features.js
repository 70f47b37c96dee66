// Dev-only: writes the SOAP feature matrices that scripts/reference/skmatter_fixtures.py
// uses for its realistic cases (run this first, from the repository root, after
// `npm run build`):
//
//     node scripts/reference/skmatter_soap_features.js
//
// Carbon-centred environments of examples/molecules.xyz (first 120 carbon atoms):
//   soap_ps.npy      power spectrum, neighbour-type pairs moved to properties (120 × 270)
//   soap_rs.npy      radial spectrum, neighbour types moved to properties (120 × 20)
//   soap_systems.npy the structure of each row (120 × 1)
// Stored as float32 to keep the fixtures small; both acdc and Python read the
// same (rounded) values and work in float64.
const { join } = require('node:path');
const { SoapPowerSpectrum, SoapRadialSpectrum, readXyzSync, writeNpySync } = require('acdc-ml');

const ROWS = 120;
const out = join(__dirname, '..', '..', 'test', 'fixtures', 'skmatter');
const frames = readXyzSync(join(__dirname, '..', '..', 'examples', 'molecules.xyz'));
const cutoff = { radius: 3.5, smoothing: { type: 'ShiftedCosine', width: 0.5 } };
const density = { type: 'Gaussian', width: 0.4 };
const ps = new SoapPowerSpectrum({ cutoff, density, basis: { type: 'TensorProduct', max_angular: 2, radial: { type: 'Gto', max_radial: 2 } } })
  .computeSync(frames)
  .select({ center_type: 6 })
  .keysToProperties(['neighbor_1_type', 'neighbor_2_type']);
const rs = new SoapRadialSpectrum({ cutoff, density, basis: { radial: { type: 'Gto', max_radial: 4 } } })
  .computeSync(frames)
  .select({ center_type: 6 })
  .keysToProperties(['neighbor_type']);

function firstRows(a, rows) {
  const cols = a.shape[1];
  return { data: a.data.slice(0, rows * cols), shape: [rows, cols] };
}
const samples = ps.blocks()[0].samples;
const rsSamples = rs.blocks()[0].samples;
for (let i = 0; i < ROWS; i++) {
  if (samples.row(i).join() !== rsSamples.row(i).join()) throw new Error(`row ${i}: power and radial spectrum samples differ`);
}
writeNpySync(join(out, 'soap_ps.npy'), firstRows(ps.toArray(), ROWS), { dtype: 'float32' });
writeNpySync(join(out, 'soap_rs.npy'), firstRows(rs.toArray(), ROWS), { dtype: 'float32' });
const systems = samples.column('system').slice(0, ROWS);
writeNpySync(join(out, 'soap_systems.npy'), { data: Float64Array.from(systems), shape: [ROWS, 1] }, { dtype: 'float32' });
console.log(`wrote ${ROWS} rows: power spectrum ${ps.toArray().shape[1]} columns, radial spectrum ${rs.toArray().shape[1]}`);
