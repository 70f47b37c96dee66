// Dev-only: the largest deviations of acdc from the scikit-matter / numpy fixtures
// (test/fixtures/skmatter), printed per quantity. Run from the repository root
// after `npm run build`: node scripts/reference/skmatter_report.js
const fs = require('fs'); const path = require('path');
const m = require('acdc-ml');
const D = 'test/fixtures/skmatter';
const load = (n) => JSON.parse(fs.readFileSync(path.join(D, n + '.json'), 'utf8'));
const dense = (a) => (a.npy ? m.readNpySync(path.join(D, a.npy)) : { data: Float64Array.from(a.data), shape: a.shape });
const num = (v) => (v === 'inf' ? Infinity : v);
const rel = (g, w) => Math.abs(g - w) / Math.abs(w);
const sel = load('selection'); const soap = load('soap');
let idxOk = 0, idxTot = 0, fpsD = 0;
for (const c of [...sel.fps, ...soap.fps]) {
  const s = m.farthestPointSamplingWithScores(dense(c.X), c.n, { initialize: c.initialize, axis: c.axis });
  idxTot++; if (JSON.stringify(Array.from(s.indices)) === JSON.stringify(c.indices)) idxOk++;
  const w = c.distances.map(num); const scale = Math.max(...w.filter(Number.isFinite).map(Math.abs));
  s.scores.forEach((v, i) => { if (Number.isFinite(w[i])) fpsD = Math.max(fpsD, Math.abs(v - w[i]) / scale); });
}
for (const c of [...sel.cur, ...soap.cur]) {
  const s = m.cur(dense(c.X), c.n, { k: c.k, recomputeEvery: c.recomputeEvery ?? 1, axis: c.axis });
  idxTot++; if (JSON.stringify(Array.from(s)) === JSON.stringify(c.indices)) idxOk++;
}
console.log(`FPS/CUR identical index lists: ${idxOk}/${idxTot}; FPS select distances max rel ${fpsD.toExponential(2)}`);
const r = load('reconstruction'); const X = dense(r.X), Y = dense(r.Y), Yw = dense(r.Ywide);
const worst = {};
const upd = (k, v) => (worst[k] = Math.max(worst[k] ?? 0, v));
for (const c of r.cases) {
  const sp = { ...(c.train ? { trainIdx: c.train } : {}), ...(c.test ? { testIdx: c.test } : {}) };
  upd('gfre', rel(m.gfre(X, Y, sp), c.gfre)); upd('gfre', rel(m.gfre(X, Yw, sp), c.gfre_wide));
  upd('gfrd (dY>=dX, skmatter)', rel(m.gfrd(X, Yw, sp), c.gfrd_wide));
  upd('gfrd (dY<dX)', rel(m.gfrd(X, Y, sp), c.gfrd_narrow)); upd('gfrd (dY<dX)', rel(m.gfrd(Yw, X, sp), c.gfrd_reverse));
  upd('lfre', rel(m.lfre(X, Y, { nLocalPoints: 8, ...sp }), c.lfre)); upd('lfre', rel(m.lfre(Y, X, { nLocalPoints: 10, ...sp }), c.lfre_reverse));
}
const ps = m.readNpySync(path.join(D, 'soap_ps.npy')), rs = m.readNpySync(path.join(D, 'soap_rs.npy'));
const mm = soap.measures; const sp = { trainIdx: mm.train, testIdx: mm.test };
upd('gfre soap', Math.max(rel(m.gfre(ps, rs, sp), mm.gfre_ps_rs), rel(m.gfre(rs, ps, sp), mm.gfre_rs_ps)));
upd('gfrd soap', Math.max(rel(m.gfrd(ps, rs, sp), mm.gfrd_ps_rs), rel(m.gfrd(rs, ps, sp), mm.gfrd_rs_ps)));
upd('lfre soap', rel(m.lfre(rs, ps, { nLocalPoints: 30, ...sp }), mm.lfre_rs_ps));
for (const c of load('rigidity').cases) {
  const o = m.localPredictionRigidity(c.train.map(dense), c.test.map(dense), c.alpha);
  o.lpr.forEach((a, s) => a.forEach((v, i) => upd('lpr', rel(v, c.lpr[s][i]))));
}
{
  const rr = soap.rigidity; const cols = rs.shape[1]; const st = []; let row = 0;
  for (const n of rr.structureCounts) { st.push({ data: rs.data.slice(row * cols, (row + n) * cols), shape: [n, cols] }); row += n; }
  const o = m.localPredictionRigidity(st.slice(0, rr.trainStructures), st.slice(rr.trainStructures), rr.alpha);
  o.lpr.forEach((a, s) => a.forEach((v, i) => upd('lpr soap', rel(v, rr.lpr[s][i]))));
}
const pcaCase = (c, X) => {
  const p = m.pca(X, c.n); const cols = X.shape[1]; const scale = Math.max(...c.scores.data.map(Math.abs));
  for (let k = 0; k < c.n; k++) {
    let dot = 0; for (let j = 0; j < cols; j++) dot += p.components.data[k * cols + j] * c.components.data[k * cols + j];
    const sg = Math.sign(dot);
    for (let j = 0; j < cols; j++) upd('pca components (abs)', Math.abs(p.components.data[k * cols + j] - sg * c.components.data[k * cols + j]));
    for (let i = 0; i < X.shape[0]; i++) upd('pca scores (rel to max)', Math.abs(p.scores.data[i * c.n + k] - sg * c.scores.data[i * c.n + k]) / scale);
    upd('pca variance', rel(p.explainedVariance[k], c.explainedVariance[k]));
  }
};
for (const c of load('pca').cases) pcaCase(c, dense(c.X));
pcaCase(soap.pca, ps);
const kern = load('kernels');
for (const c of kern.cases) {
  const K = m.polynomialKernel(dense(kern.A), dense(kern.B), { zeta: c.zeta, delta: c.delta });
  const S = m.structureKernel(dense(kern.A), kern.structuresA, dense(kern.B), kern.structuresB, { zeta: c.zeta, delta: c.delta });
  const sc = Math.max(...c.atoms.data.map(Math.abs)); K.data.forEach((v, i) => upd('kernel atoms (rel to max)', Math.abs(v - c.atoms.data[i]) / sc));
  const ss = Math.max(...c.structures.data.map(Math.abs)); S.data.forEach((v, i) => upd('kernel structures (rel to max)', Math.abs(v - c.structures.data[i]) / ss));
}
for (const [k, v] of Object.entries(worst)) console.log(k.padEnd(28), v.toExponential(2));
