// A weighted ridge regression of energies and forces on the SOAP power
// spectrum, for bench/basis_evidence.mjs: E = Σ_Z e0_Z n_Z + Σ_i w_{Z_i}·x_i,
// F = −∂E/∂r, with one weight vector per centre species over every key block
// of the power spectrum (so it also takes the pseudo-element keys of an
// alchemical density, which acdc's LinearModel does not accept yet).
//
// e0 is fitted first by least squares on the species counts; w then solves
//   min Σ_s ((E_s − Ê_s)/(n_s σ_E))² + Σ_{s,j,α} ((F − F̂)/σ_F)² + λ |w|²
// in its dual form w = Ãᵀ (ÃÃᵀ + λ I)⁻¹ ỹ (Ã: the rows divided by their σ),
// as there are fewer target rows than weights. λ = regularizer × mean(diag ÃÃᵀ);
// given a list, the regularizer with the smallest weighted error on every 4th
// training structure (fitted on the other three quarters) is used.

// column layout: one slot per (center_type, key block), assigned on the training tensor
// (shared: one slot per neighbour-pair block, the same weights for every centre species)
const slotKey = (tm, k, shared) => (shared ? tm.keys.row(k).slice(1) : tm.keys.row(k)).join(',');
function layout(tm, shared) {
  const slots = new Map();
  let offset = 0;
  for (let k = 0; k < tm.keys.count; k++) {
    const key = slotKey(tm, k, shared);
    if (slots.has(key)) continue;
    slots.set(key, offset);
    offset += tm.block(k).properties.count;
  }
  return { slots, size: offset, shared };
}

// design matrix Ã (rows × size), row-major, rows: energies per atom (/σ_E), then forces (/σ_F)
function design(tm, lay, frames, sigmas) {
  const nE = frames.length;
  const forceRow = [];
  let nF = 0;
  for (const s of frames) {
    forceRow.push(nE + nF);
    nF += 3 * s.size;
  }
  const rows = nE + nF;
  const P = lay.size;
  const A = new Float64Array(rows * P);
  for (let k = 0; k < tm.keys.count; k++) {
    const off = lay.slots.get(slotKey(tm, k, lay.shared));
    if (off === undefined) continue; // a block the training set never had: its weights are zero
    const block = tm.block(k);
    const bs = block.properties.count;
    const samples = block.samples;
    const v = block.values;
    for (let r = 0; r < samples.count; r++) {
      const [s] = samples.row(r);
      const scale = 1 / (frames[s].size * sigmas.energy);
      const dst = s * P + off;
      for (let p = 0; p < bs; p++) A[dst + p] += scale * v[r * bs + p];
    }
    const g = block.gradient('positions');
    if (!g) throw new Error('the power spectrum needs position gradients');
    const gv = g.values;
    for (let r = 0; r < g.samples.count; r++) {
      const [sample, s, j] = g.samples.row(r);
      void sample;
      for (let a = 0; a < 3; a++) {
        const dst = (forceRow[s] + 3 * j + a) * P + off;
        const src = (r * 3 + a) * bs;
        for (let p = 0; p < bs; p++) A[dst + p] -= gv[src + p] / sigmas.forces;
      }
    }
  }
  return { A, rows, P, nE };
}

function cholesky(K, n) {
  for (let j = 0; j < n; j++) {
    let d = K[j * n + j];
    for (let k = 0; k < j; k++) d -= K[j * n + k] ** 2;
    if (!(d > 0)) throw new Error(`matrix not positive definite at ${j}`);
    d = Math.sqrt(d);
    K[j * n + j] = d;
    for (let i = j + 1; i < n; i++) {
      let s = K[i * n + j];
      const ri = i * n, rj = j * n;
      for (let k = 0; k < j; k++) s -= K[ri + k] * K[rj + k];
      K[i * n + j] = s / d;
    }
  }
}
function cholSolve(L, n, b) {
  const y = Float64Array.from(b);
  for (let i = 0; i < n; i++) {
    let s = y[i];
    for (let k = 0; k < i; k++) s -= L[i * n + k] * y[k];
    y[i] = s / L[i * n + i];
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= L[k * n + i] * y[k];
    y[i] = s / L[i * n + i];
  }
  return y;
}

function speciesCounts(frames, species) {
  return frames.map((s) => species.map((z) => Array.from(s.types).filter((t) => t === z).length));
}

/** Fits e0 and w on `tm` (the power spectrum of `frames` with position gradients). */
export function fitRidge(tm, frames, species, { sigmas, regularizer, shared = false }) {
  // e0: least squares of the energies on the species counts (normal equations, S × S)
  const S = species.length;
  const counts = speciesCounts(frames, species);
  const M = new Float64Array(S * S);
  const b = new Float64Array(S);
  frames.forEach((s, k) => {
    for (let a = 0; a < S; a++) {
      b[a] += counts[k][a] * s.info.energy;
      for (let c = 0; c < S; c++) M[a * S + c] += counts[k][a] * counts[k][c];
    }
  });
  for (let a = 0; a < S; a++) M[a * S + a] += 1e-10;
  cholesky(M, S);
  const e0 = cholSolve(M, S, b);
  const lay = layout(tm, shared);
  const { A, rows, P, nE } = design(tm, lay, frames, sigmas);
  const y = new Float64Array(rows);
  frames.forEach((s, k) => {
    let e = s.info.energy;
    for (let a = 0; a < S; a++) e -= e0[a] * counts[k][a];
    y[k] = e / (s.size * sigmas.energy);
  });
  let r = nE;
  for (const s of frames) for (const f of s.arrays.forces) y[r++] = f / sigmas.forces;
  const K = new Float64Array(rows * rows);
  for (let i = 0; i < rows; i++) {
    const ri = i * P;
    for (let j = 0; j <= i; j++) {
      const rj = j * P;
      let d = 0;
      for (let p = 0; p < P; p++) d += A[ri + p] * A[rj + p];
      K[i * rows + j] = d;
    }
  }
  for (let i = 0; i < rows; i++) for (let j = 0; j < i; j++) K[j * rows + i] = K[i * rows + j];
  let trace = 0;
  for (let i = 0; i < rows; i++) trace += K[i * rows + i];
  const mean = trace / rows;
  // regularizer: a number, or a list to choose from by the error on every 4th training structure
  let chosen = regularizer;
  let scores = null;
  if (Array.isArray(regularizer)) {
    const fold = [[], []];
    let row = nE;
    frames.forEach((s, k) => {
      const f = k % 4 === 3 ? 1 : 0;
      fold[f].push(k);
      for (let i = 0; i < 3 * s.size; i++) fold[f].push(row++);
    });
    const [tr, va] = fold;
    const n = tr.length;
    scores = [];
    for (const reg of regularizer) {
      const Ks = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) Ks[i * n + j] = K[tr[i] * rows + tr[j]];
      for (let i = 0; i < n; i++) Ks[i * n + i] += reg * mean;
      cholesky(Ks, n);
      const a = cholSolve(Ks, n, tr.map((i) => y[i]));
      let err = 0;
      for (const v of va) {
        let d = 0;
        for (let i = 0; i < n; i++) d += K[v * rows + tr[i]] * a[i];
        err += (d - y[v]) ** 2;
      }
      scores.push(err);
    }
    chosen = regularizer[scores.indexOf(Math.min(...scores))];
  }
  const lambda = chosen * mean;
  for (let i = 0; i < rows; i++) K[i * rows + i] += lambda;
  cholesky(K, rows);
  const alpha = cholSolve(K, rows, y);
  const w = new Float64Array(P);
  for (let i = 0; i < rows; i++) {
    const a = alpha[i];
    const ri = i * P;
    for (let p = 0; p < P; p++) w[p] += a * A[ri + p];
  }
  return { e0, w, lay, species, sigmas, regularizer: chosen, scores };
}

/** Energies (eV) and forces (eV/Å) of `frames` from their power spectrum `tm` (with position gradients). */
export function predictRidge(model, tm, frames) {
  const { A, P, nE } = design(tm, model.lay, frames, model.sigmas);
  const counts = speciesCounts(frames, model.species);
  const energy = [];
  const forces = [];
  let r = nE;
  frames.forEach((s, k) => {
    let e = 0;
    for (let p = 0; p < P; p++) e += A[k * P + p] * model.w[p];
    e *= s.size * model.sigmas.energy;
    for (let a = 0; a < model.species.length; a++) e += model.e0[a] * counts[k][a];
    energy.push(e);
    const f = new Float64Array(3 * s.size);
    for (let i = 0; i < f.length; i++, r++) {
      let d = 0;
      for (let p = 0; p < P; p++) d += A[r * P + p] * model.w[p];
      f[i] = d * model.sigmas.forces;
    }
    forces.push(f);
  });
  return { energy, forces };
}
