#!/usr/bin/env node
// acdc benchmarks side by side with featomic, DScribe and vesin: `npm run bench`.
//
//   npm run bench [-- --quick] [-- --only soap,nl,napi,cg,classic,sph] [-- --rounds N --reps N]
//
// 1. bench/.venv: a Python venv with the pinned peers (made once, then reused).
// 2. bench/.data: the standard inputs, written by bench/make_inputs.py (ASE).
// 3. the Rust example crates/acdc-core/examples/bench_core.rs (cargo, release).
// 4. every case: each library in its own child process per (case, threads),
//    libraries interleaved round by round, one warm-up call per process, then
//    timed calls; medians, ratios acdc/peer and peak memory (ru_maxrss).
// 5. the table on stdout, everything in bench/results.json.
//
// See bench/README.md for what is timed in each library.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH, '..');
const VENV = path.join(BENCH, '.venv');
const DATA = path.join(BENCH, '.data');
const PY = path.join(VENV, 'bin', 'python');
const PEERS = ['featomic==0.6.7', 'dscribe==2.1.2', 'vesin==0.6.2', 'ase'];
PEERS.push('quippy-ase==0.10.3'); // QUIP/GAP: its SOAP descriptor (third SOAP peer); gap_fit and quip for bench/gap.mjs
PEERS.push('sphericart==2.0.4'); // the `sph` group: real spherical harmonics per point

// ---------------------------------------------------------------------------
// options

function parseArgs(argv) {
  const o = { quick: false, only: null, match: null, rounds: null, reps: null, setup: true, out: path.join(BENCH, 'results.json') };
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    const value = () => {
      if (k + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++k];
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--only') o.only = new Set(value().split(','));
    else if (a === '--match') o.match = value();
    else if (a === '--rounds') o.rounds = Number(value());
    else if (a === '--reps') o.reps = Number(value());
    else if (a === '--no-setup') o.setup = false;
    else if (a === '--out') o.out = path.resolve(value());
    else if (a === '--help' || a === '-h') {
      console.log(`usage: npm run bench [-- options]
  --quick          1 round of 5 timed calls per library, no 2-thread runs except the
                   512-atom scaling case, no DScribe gradients on the molecules (~3 min)
  --only GROUPS    comma-separated: soap, nl, napi, cg, classic, sph (default: all)
  --match TEXT     only the cases whose id contains TEXT (e.g. 'water64 +grad t1')
  --rounds N       rounds of interleaved processes per case (default 2)
  --reps N         timed calls per process, after one warm-up call (default 3)
  --no-setup       skip the venv, inputs and cargo steps (they must exist)
  --out FILE       results file (default bench/results.json)`);
      process.exit(0);
    } else throw new Error(`unknown option ${a} (try --help)`);
  }
  o.rounds ??= o.quick ? 1 : 2;
  o.reps ??= o.quick ? 5 : 3;
  return o;
}

// ---------------------------------------------------------------------------
// setup

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: ROOT, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}`);
}

function capture(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw r.error;
  return r;
}

function setupVenv() {
  const check = () =>
    fs.existsSync(PY) &&
    capture(PY, ['-c', 'import featomic, dscribe, vesin, ase; from importlib.metadata import version as v; ' +
      'assert (v("featomic"), v("dscribe"), v("vesin")) == ("0.6.7", "2.1.2", "0.6.2")']).status === 0 &&
    capture(PY, ['-c', 'import quippy; from importlib.metadata import version as v; assert v("quippy-ase") == "0.10.3"']).status === 0 &&
    capture(PY, ['-c', 'import sphericart; from importlib.metadata import version as v; assert v("sphericart") == "2.0.4"']).status === 0;
  if (check()) return;
  const python = process.env.PYTHON ?? 'python3';
  if (!fs.existsSync(PY)) {
    console.log(`creating ${path.relative(ROOT, VENV)} with ${python}`);
    run(python, ['-m', 'venv', VENV]);
  }
  console.log(`installing ${PEERS.join(' ')} into ${path.relative(ROOT, VENV)}`);
  run(PY, ['-m', 'pip', 'install', '--quiet', ...PEERS]);
  if (!check()) throw new Error('the benchmark venv still lacks featomic 0.6.7 / dscribe 2.1.2 / vesin 0.6.2 / quippy-ase 0.10.3 / sphericart 2.0.4');
}

function hostTriple() {
  const r = capture('rustc', ['-vV']);
  const m = /^host: (\S+)$/m.exec(r.stdout ?? '');
  if (!m) throw new Error('rustc -vV did not name the host triple');
  return m[1];
}

// same --target as `napi build --platform`, so the two builds share target/<triple>/release
function buildRustExample() {
  const triple = hostTriple();
  run('cargo', ['build', '--quiet', '--release', '--target', triple, '-p', 'acdc-core', '--example', 'bench_core']);
  return path.join(ROOT, 'target', triple, 'release', 'examples', 'bench_core');
}

function checkNodePackage() {
  try {
    createRequire(path.join(ROOT, 'package.json'))('acdc-ml');
  } catch (e) {
    throw new Error(`require('acdc-ml') fails from the repository root (${e.message}); run \`npm run build\` first`);
  }
}

// ---------------------------------------------------------------------------
// cases

function inputsOf(manifest) {
  const input = (name) => ({ name, file: path.join(DATA, manifest[name].file), atoms: manifest[name].atoms, frames: manifest[name].frames });
  return {
    si512: input('si512'),
    water64: input('water64'),
    g2x1000: input('g2x1000'),
    si1k: input('si_nl_1k'),
    si10k: input('si_nl_10k'),
    si100k: input('si_nl_100k'),
    sph: { name: 'sph_points', file: path.join(DATA, 'sph_points.bin'), atoms: SPH_POINTS, frames: 1 },
  };
}

// The `sph` group: random points for the spherical harmonics kernels, the
// same file for both libraries. Directions uniform on the sphere (normalised
// Gaussian triples), lengths uniform in [0.5, 5] Å (the SOAP pair
// distances); a fixed-seed xorshift so every run uses the same points.
const SPH_POINTS = 8192;
function writeSphPoints(file) {
  let state = 0x9e3779b97f4a7c15n;
  const mask = (1n << 64n) - 1n;
  const uniform = () => {
    state ^= (state << 13n) & mask;
    state ^= state >> 7n;
    state ^= (state << 17n) & mask;
    return Number(state >> 11n) / 2 ** 53;
  };
  const gauss = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  const xyz = new Float64Array(3 * SPH_POINTS);
  for (let p = 0; p < SPH_POINTS; p++) {
    const v = [gauss(), gauss(), gauss()];
    const norm = Math.hypot(...v);
    const r = 0.5 + 4.5 * uniform();
    for (let k = 0; k < 3; k++) xyz[3 * p + k] = (v[k] / norm) * r;
  }
  fs.writeFileSync(file, new Uint8Array(xyz.buffer));
}

// Where each library of the `sph` group leaves its values (N × 49, f64).
const sphDump = (lib) => path.join(DATA, `sph_values_${lib}.bin`);

function makeCases(inputs, o) {
  const cases = [];
  const threadsList = o.quick ? [1] : [1, 2];
  for (const gradients of [false, true]) {
    for (const input of [inputs.si512, inputs.water64, inputs.g2x1000]) {
      for (const threads of input === inputs.si512 ? [1, 2] : threadsList) {
        const libs = ['acdc', 'featomic', 'dscribe'];
        const opts = {};
        if (gradients && input === inputs.g2x1000) {
          // featomic takes ~8 s a call here: 5 timed calls in one process,
          // no warm-up (nothing to warm up that a call this long would notice)
          opts.featomic = { warmup: 0, reps: Math.max(5, o.reps), rounds: 1 };
          // DScribe ~110 s a call at 1 thread (dense derivatives, 14 species):
          // one timed call, no warm-up, 100 molecules at a time; skipped by
          // --quick and at 2 threads
          if (o.quick || threads > 1) libs.pop();
          else opts.dscribe = { warmup: 0, reps: 1, rounds: 1, chunk: 100 };
        }
        // QUIP/GAP (quippy-ase): seconds a call, 1 thread only; one process,
        // no warm-up; the molecules computed once per distinct molecule
        // (--distinct), gradients on them skipped by --quick (~3 min)
        if (threads === 1 && !(o.quick && gradients && input === inputs.g2x1000)) {
          libs.push('quippy');
          opts.quippy = { warmup: 0, reps: gradients || input === inputs.g2x1000 ? 1 : 3, rounds: 1, distinct: input === inputs.g2x1000 };
        }
        cases.push({ group: 'soap', id: `soap ${input.name}${gradients ? ' +grad' : ''} t${threads}`, input, gradients, threads, libs, opts });
      }
    }
  }
  for (const input of [inputs.si1k, inputs.si10k, inputs.si100k]) {
    cases.push({ group: 'nl', id: `nl ${input.name} t1`, input, gradients: false, threads: 1, libs: ['acdc', 'vesin'], opts: {} });
  }
  if (!o.quick) {
    for (const input of [inputs.si10k, inputs.si100k]) {
      cases.push({ group: 'nl', id: `nl ${input.name} t2`, input, gradients: false, threads: 2, libs: ['acdc'], opts: {} });
    }
  }
  for (const gradients of [false, true]) {
    for (const input of [inputs.si512, inputs.si1k, inputs.g2x1000]) {
      cases.push({ group: 'napi', id: `napi ${input.name}${gradients ? ' +grad' : ''} t1`, input, gradients, threads: 1, libs: ['acdc', 'rust'], opts: {} });
    }
  }
  for (const input of [inputs.si10k, inputs.si100k]) {
    cases.push({ group: 'napi', kind: 'nl', id: `napi nl ${input.name} t1`, input, gradients: false, threads: 1, libs: ['acdc', 'rust'], opts: {} });
  }
  // Clebsch-Gordan calculators vs featomic.clebsch_gordan (numpy backend)
  for (const kind of ['lsoap', 'nu3']) {
    for (const input of [inputs.si512, inputs.water64]) {
      cases.push({ group: 'cg', kind, id: `cg ${kind} ${input.name} t1`, input, gradients: false, threads: 1, libs: ['acdc', 'featomic'], opts: {} });
      if (!o.quick) cases.push({ group: 'cg', kind, id: `cg ${kind} ${input.name} t2`, input, gradients: false, threads: 2, libs: ['acdc'], opts: {} });
    }
  }
  // classic descriptors vs DScribe
  for (const gradients of [false, true]) {
    for (const input of [inputs.si512, inputs.water64]) {
      // DScribe's numerical derivatives: seconds a call, one process, no warm-up
      const opts = gradients ? { dscribe: { warmup: 0, reps: 1, rounds: 1 } } : {};
      cases.push({ group: 'classic', kind: 'acsf', id: `acsf ${input.name}${gradients ? ' +grad' : ''} t1`, input, gradients, threads: 1, libs: ['acdc', 'dscribe'], opts });
    }
  }
  cases.push({ group: 'classic', kind: 'cm', id: `cm ${inputs.g2x1000.name} t1`, input: inputs.g2x1000, gradients: false, threads: 1, libs: ['acdc', 'dscribe'], opts: {} });
  // the spherical harmonics kernel of the SOAP values path (Rust core,
  // examples/bench_core.rs) against sphericart, one thread, l_max 6
  cases.push({ group: 'sph', kind: 'sph', id: `sph l6 ${SPH_POINTS} points t1`, input: inputs.sph, gradients: false, threads: 1, libs: ['rust', 'sphericart'], opts: {} });
  return cases.filter((c) => (o.only === null || o.only.has(c.group)) && (o.match === null || c.id.includes(o.match)));
}

// ---------------------------------------------------------------------------
// one measurement = one child process

function threadEnv(threads) {
  const t = String(threads);
  return {
    ...process.env,
    ACDC_NUM_THREADS: t,
    RAYON_NUM_THREADS: t,
    OMP_NUM_THREADS: t,
    MKL_NUM_THREADS: t,
    OPENBLAS_NUM_THREADS: t,
  };
}

// Warm-up lasts at least this long (when a case has any warm-up): on a
// shared VM an idle second vCPU takes tens of milliseconds of load before it
// runs at full speed, which a single warm-up call of a few ms does not give.
const WARMUP_SECONDS = 0.3;

function measure(lib, c, { warmup, reps, chunk, distinct }, rustBinary) {
  const kind = c.kind ?? (c.group === 'nl' ? 'nl' : 'soap');
  const grad = c.gradients ? ['--gradients'] : [];
  const common = [...grad, '--warmup', String(warmup), '--warmup-seconds', String(WARMUP_SECONDS), '--reps', String(reps)];
  if (kind === 'sph') common.push('--dump', sphDump(lib));
  let cmd;
  let args;
  if (lib === 'acdc') {
    cmd = process.execPath;
    args = ['--expose-gc', path.join(BENCH, 'worker.mjs'), kind, c.input.file, ...common];
  } else if (lib === 'rust') {
    cmd = rustBinary;
    args = [kind, c.input.file, ...common];
  } else {
    cmd = PY;
    args = [path.join(BENCH, 'worker.py'), lib, kind, c.input.file, ...common, '--threads', String(c.threads)];
    if (chunk) args.push('--chunk', String(chunk));
    if (distinct) args.push('--distinct');
  }
  const r = capture(cmd, args, { env: threadEnv(c.threads) });
  const line = (r.stdout ?? '').trim().split('\n').pop();
  if (r.status !== 0 || !line) {
    return { error: `${lib} exited with ${r.status ?? r.signal}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}` };
  }
  try {
    return JSON.parse(line);
  } catch {
    return { error: `${lib} printed ${line.slice(0, 200)}` };
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function runCase(c, o, rustBinary) {
  const acc = Object.fromEntries(c.libs.map((lib) => [lib, { times: [], maxrss_kib: 0, rss_before_kib: null, info: null }]));
  const rounds = Math.max(o.rounds, 1);
  for (let round = 0; round < rounds; round++) {
    // rotate the order every round so no library always runs first
    const order = c.libs.map((_, k) => c.libs[(k + round) % c.libs.length]);
    for (const lib of order) {
      const a = acc[lib];
      if (a.skip || a.error) continue;
      const special = c.opts[lib] ?? {};
      if (special.rounds !== undefined && round >= special.rounds) continue;
      const r = measure(lib, c, { warmup: special.warmup ?? 1, reps: special.reps ?? o.reps, chunk: special.chunk, distinct: special.distinct }, rustBinary);
      if (r.skip) a.skip = r.skip;
      else if (r.error) a.error = r.error;
      else {
        a.times.push(...r.times);
        a.maxrss_kib = Math.max(a.maxrss_kib, r.maxrss_kib, r.children_maxrss_kib ?? 0);
        a.rss_before_kib ??= r.rss_before_kib;
        a.info = { ...(a.info ?? {}), ...(r.info ?? {}) };
      }
    }
  }
  for (const a of Object.values(acc)) {
    if (a.times.length) {
      a.median = median(a.times);
      a.min = Math.min(...a.times);
    }
  }
  return acc;
}

// ---------------------------------------------------------------------------
// report

function fmtTime(s) {
  if (s === undefined) return '—';
  if (s < 1e-3) return `${(s * 1e6).toFixed(0)} µs`;
  if (s < 1) return `${(s * 1e3).toFixed(s < 0.01 ? 2 : 1)} ms`;
  return `${s.toFixed(2)} s`;
}

function fmtRatio(x) {
  return x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(x < 0.1 ? 3 : 2);
}

function fmtMem(kib) {
  return kib ? `${(kib / 1024).toFixed(0)}` : '—';
}

function cell(r) {
  if (!r) return '—';
  if (r.skip) return 'n/a';
  if (r.error) return 'error';
  return `${fmtTime(r.median)}${r.times.length < 5 ? ` (${r.times.length}×)` : ''}`;
}

function table(headers, rows) {
  const lines = [`| ${headers.join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

function report(results) {
  const out = [];
  const byGroup = (g) => results.filter((r) => r.case.group === g);
  const soap = byGroup('soap');
  if (soap.length) {
    out.push('### SOAP power spectrum (median wall time of compute; ratio = acdc / peer)\n');
    out.push(
      table(
        ['input', 'atoms', 'gradients', 'threads', 'acdc', 'featomic', 'DScribe', 'QUIP', 'acdc/featomic', 'acdc/DScribe', 'acdc/QUIP', 'peak RSS MB acdc / featomic / DScribe / QUIP'],
        soap.map(({ case: c, res }) => [
          c.input.name,
          c.input.atoms,
          c.gradients ? 'positions' : '—',
          c.threads,
          cell(res.acdc),
          cell(res.featomic),
          cell(res.dscribe),
          cell(res.quippy),
          fmtRatio(res.acdc?.median / res.featomic?.median),
          fmtRatio(res.acdc?.median / res.dscribe?.median),
          fmtRatio(res.acdc?.median / res.quippy?.median),
          [res.acdc, res.featomic, res.dscribe, res.quippy].map((r) => fmtMem(r?.maxrss_kib)).join(' / '),
        ]),
      ),
    );
    const scaling = [];
    for (const input of [...new Set(soap.map((r) => r.case.input.name))]) {
      for (const gradients of [false, true]) {
        const t = (threads) => soap.find((r) => r.case.input.name === input && r.case.gradients === gradients && r.case.threads === threads);
        const one = t(1);
        const two = t(2);
        if (!one || !two) continue;
        const sp = (lib) => fmtRatio(one.res[lib]?.median / two.res[lib]?.median);
        scaling.push([input, gradients ? 'positions' : '—', sp('acdc'), sp('featomic'), sp('dscribe')]);
      }
    }
    if (scaling.length) {
      out.push('\n### Speed-up from 1 to 2 threads (time at 1 thread / time at 2 threads)\n');
      out.push(table(['input', 'gradients', 'acdc', 'featomic', 'DScribe (n_jobs)'], scaling));
    }
  }
  const nl = byGroup('nl');
  if (nl.length) {
    out.push('\n### Neighbour list, cutoff 5 Å, full list (ratio = acdc / vesin)\n');
    out.push(
      table(
        ['input', 'atoms', 'threads', 'pairs', 'acdc', 'vesin', 'acdc/vesin', 'acdc ns/pair', 'vesin ns/pair', 'peak RSS MB acdc / vesin'],
        nl.map(({ case: c, res }) => {
          const pairs = res.acdc?.info?.pairs ?? res.vesin?.info?.pairs;
          return [
            c.input.name,
            c.input.atoms,
            c.threads,
            pairs ?? '—',
            cell(res.acdc),
            cell(res.vesin),
            fmtRatio(res.acdc?.median / res.vesin?.median),
            pairs && res.acdc?.median ? ((res.acdc.median / pairs) * 1e9).toFixed(0) : '—',
            pairs && res.vesin?.median ? ((res.vesin.median / pairs) * 1e9).toFixed(0) : '—',
            [res.acdc, res.vesin].map((r) => fmtMem(r?.maxrss_kib)).join(' / '),
          ];
        }),
      ),
    );
  }
  const napi = byGroup('napi');
  if (napi.length) {
    out.push('\n### N-API overhead: the Node API vs the Rust core (examples/bench_core.rs), 1 thread\n');
    out.push(
      table(
        ['computation', 'input', 'atoms', 'gradients', 'Node API', 'Rust core', 'overhead', 'peak RSS MB Node / Rust'],
        napi.map(({ case: c, res }) => [
          c.kind === 'nl' ? 'neighbour list' : 'SOAP',
          c.input.name,
          c.input.atoms,
          c.gradients ? 'positions' : '—',
          cell(res.acdc),
          cell(res.rust),
          res.acdc?.median && res.rust?.median ? `${((res.acdc.median / res.rust.median - 1) * 100).toFixed(1)} %` : '—',
          [res.acdc, res.rust].map((r) => fmtMem(r?.maxrss_kib)).join(' / '),
        ]),
      ),
    );
  }
  const met = (ratio, target) => (Number.isFinite(ratio) ? (ratio <= target ? 'yes' : `no (${(ratio / target).toFixed(1)}× over)`) : '—');
  const values = (r) => r?.info?.values ?? '—';
  const cg = byGroup('cg');
  if (cg.length) {
    const one = cg.filter((r) => r.case.threads === 1);
    out.push('\n### λ-SOAP and ν = 3 vs featomic.clebsch_gordan, 1 thread (ratio = acdc / featomic; target ≤ 0.1)\n');
    out.push(
      table(
        ['input', 'atoms', 'what', 'acdc', 'featomic', 'acdc/featomic', 'target met?', 'values acdc / featomic', 'peak RSS MB acdc / featomic'],
        one.map(({ case: c, res }) => {
          const ratio = res.acdc?.median / res.featomic?.median;
          return [c.input.name, c.input.atoms, c.kind === 'lsoap' ? 'λ-SOAP (all λ)' : 'ν = 3 invariants', cell(res.acdc), cell(res.featomic), fmtRatio(ratio), met(ratio, 0.1),
            `${values(res.acdc)} / ${values(res.featomic)}`, [res.acdc, res.featomic].map((r) => fmtMem(r?.maxrss_kib)).join(' / ')];
        }),
      ),
    );
    const scaling = [];
    for (const { case: c, res } of one) {
      const two = cg.find((r) => r.case.threads === 2 && r.case.kind === c.kind && r.case.input === c.input);
      if (two) scaling.push([c.input.name, c.kind, cell(res.acdc), cell(two.res.acdc), fmtRatio(res.acdc?.median / two.res.acdc?.median)]);
    }
    if (scaling.length) {
      out.push('\n### acdc speed-up from 1 to 2 threads, Clebsch-Gordan calculators\n');
      out.push(table(['input', 'what', 'acdc 1 thread', 'acdc 2 threads', 'speed-up'], scaling));
    }
  }
  const sph = byGroup('sph');
  if (sph.length) {
    out.push('\n### Real spherical harmonics, l_max 6, per point vs sphericart, 1 thread (ratio = acdc / sphericart)\n');
    out.push(
      table(
        ['points', 'acdc (Rust kernel)', 'sphericart', 'acdc ns/point', 'sphericart ns/point', 'acdc/sphericart', 'max |Δ| of the values'],
        sph.map(({ case: c, res }) => {
          const perPoint = (r) => (r?.median ? ((r.median / c.input.atoms) * 1e9).toFixed(1) : '—');
          let diff = '—';
          try {
            const read = (lib) => new Float64Array(new Uint8Array(fs.readFileSync(sphDump(lib))).buffer);
            const [a, b] = [read('rust'), read('sphericart')];
            if (a.length === b.length && a.length > 0) diff = a.reduce((m, x, k) => Math.max(m, Math.abs(x - b[k])), 0).toExponential(1);
            else diff = `lengths ${a.length} / ${b.length}`;
          } catch (e) {
            diff = `not compared (${e.code ?? e.message})`;
          }
          return [c.input.atoms, cell(res.rust), cell(res.sphericart), perPoint(res.rust), perPoint(res.sphericart), fmtRatio(res.rust?.median / res.sphericart?.median), diff];
        }),
      ),
    );
  }
  const classic = byGroup('classic');
  if (classic.length) {
    out.push('\n### Classic descriptors vs DScribe, 1 thread (ratio = acdc / DScribe)\n');
    out.push(
      table(
        ['input', 'atoms', 'what', 'acdc', 'DScribe', 'acdc/DScribe', 'target', 'target met?', 'values acdc / DScribe', 'peak RSS MB acdc / DScribe'],
        classic.map(({ case: c, res }) => {
          const ratio = res.acdc?.median / res.dscribe?.median;
          const what = c.kind === 'cm' ? `Coulomb matrix (sorted_l2, n_atoms_max ${res.acdc?.info?.n_atoms_max ?? '?'})` : c.gradients ? 'ACSF values + gradients (DScribe numerical)' : 'ACSF values';
          const target = c.kind === 'acsf' && c.gradients ? 0.05 : 0.2;
          return [c.input.name, c.input.atoms, what, cell(res.acdc), cell(res.dscribe), fmtRatio(ratio), `≤ ${target}`, met(ratio, target),
            `${values(res.acdc)} / ${values(res.dscribe)}`, [res.acdc, res.dscribe].map((r) => fmtMem(r?.maxrss_kib)).join(' / ')];
        }),
      ),
    );
  }
  const notes = [];
  for (const { case: c, res } of results) {
    for (const [lib, r] of Object.entries(res)) {
      if (r.skip) notes.push(`- ${c.id}, ${lib}: ${r.skip}`);
      if (r.error) notes.push(`- ${c.id}, ${lib}: ${r.error}`);
      if (r.info?.chunk) notes.push(`- ${c.id}, ${lib}: ${r.times.length} timed call(s), molecules fed ${r.info.chunk} at a time`);
      if (r.info?.distinct) notes.push(`- ${c.id}, ${lib}: ${r.times.length} timed pass(es) over the ${r.info.distinct} distinct molecules, each time counted once per occurrence in the ${c.input.frames} frames`);
    }
  }
  if (notes.length) out.push('\nNotes:\n' + notes.join('\n'));
  return out.join('\n');
}

// ---------------------------------------------------------------------------

function main() {
  const o = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const load0 = os.loadavg();
  if (o.setup) {
    setupVenv();
    run(PY, [path.join(BENCH, 'make_inputs.py'), DATA]);
  }
  checkNodePackage();
  const manifest = JSON.parse(fs.readFileSync(path.join(DATA, 'manifest.json'), 'utf8'));
  const inputs = inputsOf(manifest);
  const cases = makeCases(inputs, o);
  if (cases.some((c) => c.group === 'sph')) writeSphPoints(inputs.sph.file);
  let rustBinary = null;
  if (cases.some((c) => c.libs.includes('rust'))) {
    if (o.setup) rustBinary = buildRustExample();
    else rustBinary = path.join(ROOT, 'target', hostTriple(), 'release', 'examples', 'bench_core');
  }
  console.log(`\n${cases.length} cases, ${o.rounds} round(s) × (1 warm-up + ${o.reps} timed calls) per library; ${os.cpus().length} CPUs, load ${load0.map((x) => x.toFixed(2)).join(' ')}\n`);
  const results = [];
  for (const c of cases) {
    const t0 = Date.now();
    const res = runCase(c, o, rustBinary);
    results.push({ case: c, res });
    const summary = Object.entries(res)
      .map(([lib, r]) => `${lib} ${r.skip ? 'n/a' : r.error ? 'error' : fmtTime(r.median)}`)
      .join(', ');
    console.log(`  ${c.id.padEnd(28)} ${summary}  [${((Date.now() - t0) / 1000).toFixed(0)} s]`);
  }
  const text = report(results);
  const elapsed = (Date.now() - started) / 1000;
  const load1 = os.loadavg();
  console.log('\n' + text);
  console.log(`\ntotal ${elapsed.toFixed(0)} s; load average ${load0[0].toFixed(2)} at start, ${load1[0].toFixed(2)} at end; results in ${path.relative(ROOT, o.out)}`);
  const versions = {};
  if (fs.existsSync(PY)) {
    const v = capture(PY, ['-c', 'import json, platform; from importlib.metadata import version as v; ' +
      'print(json.dumps({k: v(k) for k in ["featomic", "dscribe", "vesin", "ase", "numpy", "quippy-ase", "sphericart"]} | {"python": platform.python_version()}))']);
    if (v.status === 0) Object.assign(versions, JSON.parse(v.stdout));
  }
  versions.node = process.version;
  versions.acdc = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
  fs.writeFileSync(
    o.out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        command: `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`,
        machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memory_gib: os.totalmem() / 2 ** 30, loadavg_start: load0, loadavg_end: load1 },
        versions,
        options: { rounds: o.rounds, reps: o.reps, quick: o.quick },
        elapsed_s: elapsed,
        cases: results.map(({ case: c, res }) => ({
          id: c.id,
          group: c.group,
          input: c.input.name,
          atoms: c.input.atoms,
          frames: c.input.frames,
          gradients: c.gradients ? ['positions'] : [],
          threads: c.threads,
          results: res,
        })),
        table: text,
      },
      null,
      1,
    ) + '\n',
  );
}

main();
