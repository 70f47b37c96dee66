// Fit time, peak memory and prediction time of SparseGPR on EMT Cu frames
// (dev-only; no GAP here: the side-by-side with gap_fit/quip lives in the bench).
//   /tmp/venv-models/bin/python scripts/reference/emt_bench_data.py /tmp/cu50x32.xyz
//   ACDC_NUM_THREADS=1 node bench/potentials_timing.cjs /tmp/cu50x32.xyz cur 200
// Prints one JSON line: fit_s, predict_us_per_atom (energy + forces + stress), maxrss_MB.
'use strict';
const acdc = require('acdc-ml');

const [file, method = 'cur', count = '200'] = process.argv.slice(2);
const frames = acdc.readXyzSync(file);
// GAP-like SOAP: cutoff 5 Å, n_max 8, l_max 6, atom_sigma 0.5
const hypers = {
  cutoff: { radius: 5.0, smoothing: { type: 'ShiftedCosine', width: 1.0 } },
  density: { type: 'Gaussian', width: 0.5 },
  basis: { type: 'TensorProduct', max_angular: 6, radial: { type: 'Gto', max_radial: 7 } },
};
const t0 = process.hrtime.bigint();
const model = acdc.SparseGPR.fitSync(frames, {
  hypers,
  targets: { energy: 'energy', forces: 'forces', stress: 'stress' },
  sparse: { count: Number(count), method },
  kernel: { zeta: 4, delta: 0.5 },
  sigmas: { energy: 0.001, forces: 0.03, stress: 0.002 },
});
const fit = Number(process.hrtime.bigint() - t0) / 1e9;
const atoms = frames.reduce((n, s) => n + s.size, 0);
model.predictSync(frames.slice(0, 2), { forces: true, stress: true });
const t1 = process.hrtime.bigint();
const reps = 3;
for (let r = 0; r < reps; r++) model.predictSync(frames, { forces: true, stress: true });
const predict = Number(process.hrtime.bigint() - t1) / 1e9 / reps;
console.log(JSON.stringify({
  frames: frames.length,
  atoms,
  method,
  count: Number(count),
  fit_s: +fit.toFixed(2),
  predict_us_per_atom: +((1e6 * predict) / atoms).toFixed(1),
  maxrss_MB: Math.round(process.resourceUsage().maxRSS / 1024),
  threads: process.env.ACDC_NUM_THREADS ?? 'default',
}));
