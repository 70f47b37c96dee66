// One fuzzing process: runs `--cases` seeded cases of one target through the
// public API of acdc-ml and prints one JSON line of counts. It is always run
// as a child process (by test/fuzz.test.ts and scripts/fuzz/run.mjs), so that
// an input crashing the process shows as a non-zero exit or a signal instead
// of killing the runner. A caught Rust panic ("internal error") counts as a
// crash too.
//
//   node scripts/fuzz/worker.cjs --target xyz|npy|mts|ops|corpus --seed S --cases N [--record FILE] [--corpus DIR]
//
// With --record, each input is written to FILE before it runs, so the input
// of a crash can be kept.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const acdc = require('acdc-ml');

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith('--') ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const target = args.target;
const cases = Number(args.cases ?? 1000);
const record = args.record;
const root = path.resolve(__dirname, '..', '..');
const corpusDir = args.corpus ?? path.join(root, 'test', 'fixtures', 'fuzz');

// SplitMix64 on BigInt: small and reproducible. The seed is mixed first:
// seed × γ as the start made seeds s and s + 1 the same stream shifted by one.
function mix(z) {
  z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
  z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
  return z ^ (z >> 31n);
}
let state = mix(BigInt.asUintN(64, BigInt(args.seed ?? 1) * 0x9e3779b97f4a7c15n));
function next() {
  state = BigInt.asUintN(64, state + 0x9e3779b97f4a7c15n);
  return mix(state);
}
const below = (n) => Number(next() % BigInt(n));
const chance = (p) => Number(next() >> 11n) / 2 ** 53 < p;
const pick = (list) => list[below(list.length)];

const HUGE = ['9223372036854775807', '18446744073709551616', '4294967296', '-1', '1e308', '99999999999'];

/** Bit flips, truncation, duplicated slices, inserted tokens, huge numbers. */
function mutate(bytes, tokens) {
  let b = Buffer.from(bytes);
  for (let m = 1 + below(2); m > 0; m--) {
    const len = b.length;
    const kind = below(6);
    if (len === 0) {
      b = Buffer.from('1');
    } else if (kind === 0) {
      b[below(len)] ^= 1 << below(8);
    } else if (kind === 1) {
      b = b.subarray(0, below(len));
    } else if (kind === 2) {
      const a = below(len);
      const piece = b.subarray(a, Math.min(len, a + below(64)));
      const at = below(len + 1);
      b = Buffer.concat([b.subarray(0, at), piece, b.subarray(at)]);
    } else if (kind === 3) {
      const at = below(len + 1);
      b = Buffer.concat([b.subarray(0, at), Buffer.from(pick(tokens), 'latin1'), b.subarray(at)]);
    } else if (kind === 4) {
      const at = below(len);
      const t = Buffer.from(pick(HUGE));
      b = Buffer.concat([b.subarray(0, at), t, b.subarray(Math.min(len, at + t.length))]);
    } else {
      b[below(len)] = below(256);
    }
  }
  return b;
}

function keep(bytes) {
  if (record) fs.writeFileSync(record, bytes);
}

const counts = { target, cases: 0, ok: 0, errors: 0, crashes: 0 };
/** Runs one case: a thrown Error is fine unless it reports a caught panic. */
function run(fn) {
  counts.cases++;
  try {
    fn();
    counts.ok++;
  } catch (e) {
    if (!(e instanceof Error)) throw new Error(`threw a non-Error: ${String(e)}`);
    if (/internal error/.test(e.message)) {
      counts.crashes++;
      process.stderr.write(`internal error: ${e.message.slice(0, 300)}\n`);
    } else if (e.message.length > 2000) {
      throw new Error(`message of ${e.message.length} characters: ${e.message.slice(0, 200)}`);
    } else {
      counts.errors++;
    }
  }
}

const same = (a, b) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
function sameFrames(a, b) {
  if (a.length !== b.length) return false;
  return a.every((f, k) => {
    const g = b[k];
    const arrays = (x, y) => x.length === y.length && Array.from(x).every((v, i) => same(v, y[i]));
    const json = (x, y) => {
      if (typeof x === 'number' && typeof y === 'number') return same(x, y);
      if (Array.isArray(x) && Array.isArray(y)) return x.length === y.length && x.every((v, i) => json(v, y[i]));
      if (x && y && typeof x === 'object' && typeof y === 'object') {
        const kx = Object.keys(x).sort();
        const ky = Object.keys(y).sort();
        return json(kx, ky) && kx.every((key) => json(x[key], y[key]));
      }
      return x === y;
    };
    return (
      arrays(f.types, g.types) &&
      arrays(f.positions, g.positions) &&
      arrays(f.cell, g.cell) &&
      json(f.pbc, g.pbc) &&
      json(f.info, g.info) &&
      Object.keys(f.arrays).length === Object.keys(g.arrays).length &&
      Object.keys(f.arrays).every((name) => g.arrays[name] && arrays(f.arrays[name], g.arrays[name]))
    );
  });
}

const XYZ_TOKENS = ['\n', ' ', '=', '"', "'", '{', '[', '\\', ':', ',', 'nan', '-0.0', 'inf', '_JSON ', '_JSON [', 'Properties=species:S:1:pos:R:3:x:R:9223372036854775807', 'Properties=species:R:1:pos:R:3', 'pbc=T', 'uid=', 'Z:I:1', 'VEC1 1 0 0\n', '\r', '1e999', 'null'];

function xyzSeeds() {
  const dir = path.join(root, 'test', 'fixtures', 'xyz');
  const seeds = fs.readdirSync(dir).filter((f) => f.endsWith('.extxyz')).map((f) => fs.readFileSync(path.join(dir, f)));
  // large reproducers (10^5 keys) run once from the corpus, not as mutation seeds
  for (const f of fs.readdirSync(corpusDir).filter((f) => f.endsWith('.extxyz'))) {
    const bytes = fs.readFileSync(path.join(corpusDir, f));
    if (bytes.length < 65536) seeds.push(bytes);
  }
  return seeds;
}

/** What parses must format back to an equal frame. */
function xyzCase(bytes) {
  keep(bytes);
  const text = bytes.toString('utf8');
  let frames;
  try {
    frames = acdc.parseXyz(text);
  } catch (e) {
    if (/internal error/.test(e.message)) throw e;
    counts.cases++;
    counts.errors++;
    return;
  }
  run(() => {
    let out;
    try {
      out = acdc.formatXyz(frames);
    } catch (e) {
      throw new Error(`internal error: parsed but cannot be formatted (${e.message})\n${JSON.stringify(text).slice(0, 2000)}`);
    }
    if (!sameFrames(acdc.parseXyz(out), frames)) throw new Error(`internal error: reads back differently:\n${out.slice(0, 2000)}`);
  });
}

function labels(names, rows) {
  return new acdc.Labels(names, rows.length ? rows : new Int32Array(0));
}

/** A random map valid by construction (see crates/acdc-core/tests/common). */
function randomTensor() {
  const keyNames = pick([['center_type'], ['center_type', 'neighbor_type'], ['o3_lambda', 'center_type', 'neighbor_type']]);
  const nBlocks = below(Math.min(5, 3 ** keyNames.length + 1));
  const keys = [];
  while (keys.length < nBlocks) {
    const k = keyNames.map(() => below(3));
    if (!keys.some((o) => o.every((v, i) => v === k[i]))) keys.push(k);
  }
  const nComponents = below(3);
  const withGradient = chance(0.5);
  const value = () => (chance(0.1) ? pick([0, -0, 5e-324, -1.7976931348623157e308]) : (Number(next() % 2000000n) - 1e6) / 997);
  const blocks = keys.map(() => {
    const nSamples = below(5);
    const samples = labels(['system', 'atom'], Array.from({ length: nSamples }, () => [below(3), below(4)]));
    const components = Array.from({ length: nComponents }, (_, c) => labels([['o3_mu', 'xyz_c'][c]], Array.from({ length: below(4) }, (_, i) => [i])));
    const nProps = below(4);
    const properties = labels(['n'], Array.from({ length: nProps }, () => [below(5)]));
    const perRow = components.reduce((a, c) => a * c.count, 1);
    const values = Float64Array.from({ length: nSamples * perRow * nProps }, value);
    const gradients = new Map();
    if (withGradient) {
      const rows = nSamples === 0 ? 0 : below(6);
      // sometimes a sample past the block's samples: must be an Error
      const bad = chance(0.05) ? 1 : 0;
      const gs = labels(['sample', 'system', 'atom'], Array.from({ length: rows }, () => [below(nSamples + bad), below(3), below(4)]));
      const gc = [labels(['xyz'], [[0], [1], [2]]), ...components];
      const gPerRow = gc.reduce((a, c) => a * c.count, 1);
      gradients.set('positions', new acdc.TensorBlock(gs, gc, properties, Float64Array.from({ length: rows * gPerRow * nProps }, value), new Map()));
    }
    return new acdc.TensorBlock(samples, components, properties, values, gradients);
  });
  return new acdc.TensorMap(labels(keyNames, keys), blocks);
}

function sameTensor(a, b) {
  const arr = (x, y) => x.length === y.length && Array.from(x).every((v, i) => Object.is(v, y[i]));
  const lab = (x, y) => x.names.join() === y.names.join() && arr(x.values, y.values);
  const blk = (x, y) =>
    lab(x.samples, y.samples) &&
    x.components.length === y.components.length &&
    x.components.every((c, i) => lab(c, y.components[i])) &&
    lab(x.properties, y.properties) &&
    arr(x.values, y.values) &&
    x.gradientsList().sort().join() === y.gradientsList().sort().join() &&
    x.gradientsList().every((p) => blk(x.gradient(p), y.gradient(p)));
  return lab(a.keys, b.keys) && a.length === b.length && a.blocks().every((x, i) => blk(x, b.blocks()[i]));
}

// ---- .acdc model files ----

/** Fields whose edits load and change predictions by design: numbers no load check can judge. */
const FREE_FIELDS = ['weights', 'e0', 'hypers', 'meta', 'r_factor', 'acdc_version', 'format', 'padding'];
const ACDC_HYPERS = {
  cutoff: { radius: 3.0, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.4 },
  basis: { type: 'TensorProduct', max_angular: 2, radial: { type: 'Gto', max_radial: 2 } },
};
const ACDC_FRAMES = Array.from({ length: 4 }, (_, k) => {
  const d = 0.05 * k;
  return new acdc.System({
    types: [1, 8, 1, k % 2 ? 1 : 8],
    positions: [0, 0, 0, 1.1 + d, 0.2, 0, 0.1, 1.3 - d, 0.3, 1.2, 1.0, 1.1 + d],
    info: { energy: -10 + 0.1 * k },
  });
});

let acdcSeedCache;
function acdcSeeds() {
  if (acdcSeedCache) return acdcSeedCache;
  const common = { hypers: ACDC_HYPERS, targets: { energy: 'energy' }, sigmas: { energy: 0.01 } };
  const gpr = acdc.SparseGPR.fitSync(ACDC_FRAMES, { ...common, sparse: { count: 3, method: 'fps' }, kernel: { zeta: 2, delta: 0.5 } });
  const linear = acdc.LinearModel.fitSync(ACDC_FRAMES, { ...common, regularizer: 1e-6 });
  acdcSeedCache = [gpr, linear].map((m) => ({ bytes: Buffer.from(m.toBuffer()), prediction: m.predictSync(ACDC_FRAMES, { forces: true, variance: m.kind === 'sparse_gpr' }) }));
  return acdcSeedCache;
}

/**
 * 'same' (bit for bit), 'tiny' (within 1e-9 of the largest magnitude of its
 * kind: below what the load checks can resolve, e.g. a flipped low mantissa
 * bit of a sparse feature, which moves K_MM by less than its rounding) or
 * 'different'.
 */
function compareNumbers(a, b) {
  let worst = 'same';
  const cmp = (x, y) => {
    if (x.length !== y.length) return (worst = 'different');
    const scale = Math.max(1, ...Array.from(y, Math.abs));
    for (let i = 0; i < x.length; i++) {
      if (Object.is(x[i], y[i])) continue;
      if (Math.abs(x[i] - y[i]) <= 1e-9 * scale) worst = worst === 'same' ? 'tiny' : worst;
      else worst = 'different';
    }
  };
  cmp(a.energy, b.energy);
  a.forces.forEach((f, k) => cmp(f, b.forces[k]));
  if (a.variance && b.variance) cmp(a.variance, b.variance);
  return worst;
}

/** Header (parsed) and data section of a model file, or undefined when the layout is broken. */
function acdcParts(bytes) {
  if (bytes.length < 28) return undefined;
  const headerLen = Number(bytes.readBigUInt64LE(16));
  if (headerLen > bytes.length - 28) return undefined;
  let header;
  try {
    header = JSON.parse(bytes.subarray(24, 24 + headerLen).toString('utf8'));
  } catch {
    return undefined;
  }
  const dataStart = Math.ceil((24 + headerLen) / 8) * 8;
  return { header, data: bytes.subarray(Math.min(dataStart, bytes.length - 4), bytes.length - 4) };
}

function acdcBuild(prefix16, header, data) {
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  let out = Buffer.concat([prefix16, len, h]);
  out = Buffer.concat([out, Buffer.alloc((8 - (out.length % 8)) % 8), data]);
  return withCrc(out);
}

function withCrc(body) {
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(zlib.crc32(body));
  return Buffer.concat([body, crc]);
}

/** The header fields and arrays whose content differs between two model files. */
function acdcDiff(a, b) {
  const pa = acdcParts(a);
  const pb = acdcParts(b);
  if (!pa || !pb) return ['layout'];
  const out = [];
  const keys = new Set([...Object.keys(pa.header), ...Object.keys(pb.header)]);
  for (const k of keys) if (JSON.stringify(pa.header[k]) !== JSON.stringify(pb.header[k])) out.push(k);
  if (!out.includes('arrays') && Array.isArray(pa.header.arrays)) {
    for (const e of pa.header.arrays) {
      const len = e.shape.reduce((x, y) => x * y, 1) * 8;
      if (!pa.data.subarray(e.offset, e.offset + len).equals(pb.data.subarray(e.offset, e.offset + len))) out.push(e.name);
    }
    if (pa.data.length !== pb.data.length) out.push('data length');
  }
  if (out.length === 0) out.push('padding');
  return out;
}

/** The mutant with the original's free header fields and free arrays put back (undefined when the layout broke). */
function withoutFreeEdits(original, mutant) {
  const po = acdcParts(original);
  const pm = acdcParts(mutant);
  if (!po || !pm || !Array.isArray(po.header.arrays)) return undefined;
  const header = { ...pm.header };
  for (const k of FREE_FIELDS) if (k in po.header) header[k] = po.header[k];
  const data = Buffer.from(pm.data);
  for (const e of po.header.arrays) {
    if (!FREE_FIELDS.includes(e.name)) continue;
    const len = e.shape.reduce((x, y) => x * y, 1) * 8;
    if (e.offset + len <= data.length) po.data.copy(data, e.offset, e.offset, e.offset + len);
  }
  return acdcBuild(mutant.subarray(0, 16), header, data);
}

const HEADER_VALUES = [0, -1, 1, 2, 2.5, 3, 1e10, 1e308, -0, 0.5, 0.6, 1e-6, 2 ** 40, 2 ** 58, 2 ** 64, null, 'x', [], [0], [1, 8], [8, 1], [1, 1], {}, true, 3.0000000001];

/** One mutant of a model file and how to tell what it edited. */
function acdcMutant(original) {
  const parts = acdcParts(original);
  const kind = below(4);
  let bytes;
  if (kind === 0 || !parts) {
    // random bytes anywhere, CRC recomputed
    const m = mutate(original, ['"', '{', '}', '[', ']', ',', '0', '1e308', '-1', 'NaN', 'null']);
    bytes = m.length >= 4 ? withCrc(m.subarray(0, m.length - 4)) : m;
  } else if (kind === 1) {
    // one header field set to a hostile or a plausible value
    const h = JSON.parse(JSON.stringify(parts.header));
    const key = pick(['zeta', 'delta', 'jitter', 'regularizer', 'block_size', 'n_features', 'species', 'neighbor_species', 'sparse_counts', 'kind', 'e0', 'hypers']);
    if (key === 'hypers') h.hypers.basis.radial.max_radial = pick([1, 3, 30]);
    else if (key === 'e0') h.e0[pick(Object.keys(h.e0))] = pick(HEADER_VALUES);
    else if (key === 'sparse_counts' && chance(0.5)) h.sparse_counts[below(h.sparse_counts.length)] = pick(HEADER_VALUES);
    else h[key] = pick(HEADER_VALUES);
    bytes = acdcBuild(original.subarray(0, 16), h, parts.data);
  } else if (kind === 2) {
    // an array entry of the table edited
    const h = JSON.parse(JSON.stringify(parts.header));
    const e = pick(h.arrays);
    const f = pick(['offset', 'shape', 'dtype', 'name']);
    e[f] = f === 'shape' ? pick([[0], [0, 0], [2 ** 40], [1, 2 ** 40], e.shape.map((d) => d + 1)]) : f === 'offset' ? pick([0, 8, e.offset + 8, 2 ** 53]) : pick(['<f4', 'weights', 'x']);
    bytes = acdcBuild(original.subarray(0, 16), h, parts.data);
  } else {
    // one float of the data set to a hostile or a nearby value
    const data = Buffer.from(parts.data);
    const at = 8 * below(data.length / 8);
    const v = data.readDoubleLE(at);
    data.writeDoubleLE(pick([NaN, Infinity, -Infinity, 1e308, 0, -v, v * (1 + 1e-3), v + 1]), at);
    bytes = acdcBuild(original.subarray(0, 16), parts.header, data);
  }
  return { bytes, edited: acdcDiff };
}

const targets = {
  xyz() {
    const seeds = xyzSeeds();
    for (let c = 0; c < cases; c++) {
      let b = pick(seeds);
      if (chance(0.3)) {
        const other = pick(seeds);
        b = Buffer.concat([b, other.subarray(below(other.length + 1))]);
      }
      xyzCase(mutate(b, XYZ_TOKENS));
    }
  },
  npy() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-fuzz-'));
    const file = path.join(dir, 'case.npy');
    const seeds = [];
    for (const dtype of ['float64', 'float32']) {
      acdc.writeNpySync(file, { data: Float64Array.from([1, 2, 3, 4, 5, 6]), shape: [2, 3] }, { dtype });
      seeds.push(fs.readFileSync(file));
    }
    const tokens = ['[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[', '((((((((((((((((', "'", ',', ')', ']', '}', 'True', '4294967296, 4294967296', "'>f8'"];
    for (let c = 0; c < cases; c++) {
      let b = mutate(pick(seeds), tokens);
      if (chance(0.05)) {
        const depth = 1 + below(20000);
        const head = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0, 0, 0, 0, 0]);
        head.writeUInt32LE(depth, 8);
        b = Buffer.concat([head, Buffer.alloc(depth, pick(['[', '(', '{']))]);
      }
      keep(b);
      fs.writeFileSync(file, b);
      run(() => acdc.readNpySync(file));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  },
  mts() {
    for (let c = 0; c < cases; c++) {
      let t;
      try {
        t = randomTensor();
      } catch {
        continue;
      }
      const b = mutate(t.toBuffer(), ['PK', '[[[[[[[[', "'", '4294967296']);
      keep(b);
      run(() => {
        const loaded = acdc.TensorMap.fromBuffer(b);
        // whatever loads must save and load back to the same map
        if (!sameTensor(acdc.TensorMap.fromBuffer(loaded.toBuffer()), loaded)) throw new Error('internal error: loaded map does not round-trip');
      });
    }
  },
  ops() {
    for (let c = 0; c < cases; c++) {
      let t;
      try {
        t = randomTensor();
        acdc.TensorMap.fromBuffer(t.toBuffer());
      } catch (e) {
        // only an invalid gradient sample may be refused, with a plain Error
        if (/internal error/.test(e.message) || !/points past/.test(e.message)) throw e;
        counts.cases++;
        counts.errors++;
        continue;
      }
      const names = t.keys.names;
      const moved = names.filter(() => chance(0.5));
      const ops = [
        () => t.keysToProperties(moved.length ? moved : names[0]),
        () => t.keysToSamples(moved.length ? moved : names[0]),
        () => t.sumOverSamples(pick(['atom', 'system', ['system', 'atom'], 'nope'])),
        () => t.meanOverSamples(pick(['atom', 'system'])),
        () => acdc.TensorMap.join([t, randomTensor()]),
      ];
      for (const op of ops) {
        run(() => {
          const r = op();
          if (!sameTensor(acdc.TensorMap.fromBuffer(r.toBuffer()), r)) throw new Error('internal error: result does not round-trip through .mts');
        });
      }
    }
  },
  /**
   * `.acdc` model files: random byte mutations and targeted edits of header
   * fields and array values, each with the CRC recomputed (as anyone can).
   * What loads must predict the original's numbers (to 1e-9, see
   * compareNumbers) unless the edit touched a field that no load check can
   * judge (weights, e0, hypers, meta: see docs/MODELS.md); counts.silent
   * counts those that did not.
   */
  acdc() {
    const models = acdcSeeds();
    counts.loaded = 0;
    counts.different = 0;
    counts.tiny = 0;
    counts.silent = 0;
    counts.silentFields = {};
    for (let c = 0; c < cases; c++) {
      const seed = pick(models);
      const { bytes, edited } = acdcMutant(seed.bytes);
      keep(bytes);
      run(() => {
        const m = acdc.modelFromBuffer(bytes, 'mutant.acdc');
        counts.loaded++;
        let p;
        try {
          p = m.predictSync(ACDC_FRAMES, { forces: true, variance: m.kind === 'sparse_gpr' });
        } catch (e) {
          // an ordinary error at predict (e.g. a species the edit removed) is fine
          if (/internal error/.test(e.message)) throw e;
          return;
        }
        const verdict = compareNumbers(p, seed.prediction);
        if (verdict === 'tiny') counts.tiny++;
        if (verdict === 'different') {
          counts.different++;
          const touched = edited(seed.bytes, bytes);
          const free = touched.every((f) => FREE_FIELDS.includes(f));
          counts.differentFields ??= {};
          for (const f of touched) counts.differentFields[f] = (counts.differentFields[f] ?? 0) + 1;
          // an edit of a free field (say r_factor, which moves the variance)
          // next to one below the checks' resolution elsewhere: judge the
          // mutant with its free fields put back
          const rest = free ? undefined : withoutFreeEdits(seed.bytes, bytes);
          let silent = !free;
          if (rest) {
            try {
              const q = acdc.modelFromBuffer(rest, 'mutant.acdc').predictSync(ACDC_FRAMES, { forces: true, variance: m.kind === 'sparse_gpr' });
              silent = compareNumbers(q, seed.prediction) === 'different';
            } catch (e) {
              if (/internal error/.test(e.message)) throw e;
              silent = false;
            }
          }
          if (silent) {
            counts.silent++;
            for (const f of touched) counts.silentFields[f] = (counts.silentFields[f] ?? 0) + 1;
            process.stderr.write(`silently different prediction after an edit of ${touched.join(', ')}\n`);
          }
        }
      });
    }
  },
  /** Every file of the corpus directory, through the parser its extension names. */
  corpus() {
    for (const name of fs.readdirSync(corpusDir).sort()) {
      const file = path.join(corpusDir, name);
      if (name.endsWith('.extxyz')) xyzCase(fs.readFileSync(file));
      else if (name.endsWith('.npy')) run(() => acdc.readNpySync(file));
      else if (name.endsWith('.mts')) run(() => acdc.TensorMap.fromBuffer(fs.readFileSync(file)));
      else if (name.endsWith('.acdc')) run(() => acdc.modelFromBuffer(fs.readFileSync(file), name).predictSync(ACDC_FRAMES, { forces: true }));
    }
  },
};

if (!targets[target]) {
  process.stderr.write(`unknown target ${target} (expected ${Object.keys(targets).join(', ')})\n`);
  process.exit(2);
}
targets[target]();
// the peak memory of this process: a huge allocation would show here (or kill it)
counts.maxRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
process.stdout.write(JSON.stringify(counts) + '\n');
