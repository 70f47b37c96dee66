// The output pool against fresh memory and against the Rust core, for SOAP
// with position gradients (issue 27: "gradients without page faults").
//
//   node bench/output_pool.mjs [--input bench/.data/si512.xyz] [--reps 5] [--rounds 2]
//
// Three kinds of child process, one at a time, interleaved over --rounds,
// each making one warm-up call and --reps timed calls at 1 thread
// (ACDC_NUM_THREADS=1), the output dropped between calls:
//   rust       crates/acdc-core/examples/bench_core (cargo --release, built
//              under target/<triple>/release/examples; build it first)
//   node pool  new SoapPowerSpectrum(h).computeSync(systems, {gradients}),
//              with a full GC and two event-loop turns between calls, as in
//              bench/worker.mjs (the default: the pool is on)
//   node fresh the same with ACDC_OUTPUT_POOL=0 (every result in fresh pages)
// Reported per kind: the median wall time and CPU time (user + system) of a
// call, minor page faults of the whole process (/usr/bin/time %R: start-up,
// input and every call) and peak RSS (%M). Page faults and RSS do not depend
// on the machine's load; wall times on a shared machine do, CPU times less so.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HYPERS = {
  cutoff: { radius: 5.0, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 6, radial: { type: 'Gto', max_radial: 7 } },
};

function parseArgs(argv) {
  const a = { input: path.join(root, 'bench/.data/si512.xyz'), reps: 5, rounds: 2, child: false };
  for (let k = 0; k < argv.length; k++) {
    const x = argv[k];
    if (x === '--input') a.input = argv[++k];
    else if (x === '--reps') a.reps = Number(argv[++k]);
    else if (x === '--rounds') a.rounds = Number(argv[++k]);
    else if (x === '--child') a.child = true;
    else throw new Error(`unknown option ${x}`);
  }
  return a;
}

const median = (xs) => {
  const s = [...xs].sort((p, q) => p - q);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function child(args) {
  const require = createRequire(path.join(root, 'package.json'));
  const acdc = require('acdc-ml');
  const frames = acdc.readXyzSync(args.input);
  const calc = new acdc.SoapPowerSpectrum(HYPERS);
  const settle = async () => {
    for (let k = 0; k < 2; k++) {
      globalThis.gc();
      await new Promise((r) => setImmediate(r));
    }
  };
  const times = [];
  const cpu = [];
  const faults = [];
  // one call in a synchronous function, so that its result is unreachable
  // once it returns (an async function's registers would keep it across the
  // next await, and the pool could not reclaim it)
  const call = () => {
    const r0 = process.resourceUsage();
    const t0 = process.hrtime.bigint();
    const tm = calc.computeSync(frames, { gradients: ['positions'] });
    const t = Number(process.hrtime.bigint() - t0) / 1e9;
    const r1 = process.resourceUsage();
    if (tm.keys.count === 0) throw new Error('no blocks');
    return { t, r0, r1 };
  };
  for (let k = 0; k <= args.reps; k++) {
    await settle();
    const { t, r0, r1 } = call();
    if (k > 0) {
      times.push(t);
      cpu.push((r1.userCPUTime - r0.userCPUTime + r1.systemCPUTime - r0.systemCPUTime) / 1e6);
      faults.push(r1.minorPageFault - r0.minorPageFault);
    }
  }
  process.stdout.write(JSON.stringify({ times, cpu_times: cpu, call_faults: faults }) + '\n');
}

function timed(cmd, argv, env) {
  // /usr/bin/time: %M peak RSS in KiB, %R minor page faults
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %M %R', cmd, ...argv], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ACDC_NUM_THREADS: '1', ...env },
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  const line = r.stderr.trim().split('\n').filter((l) => l.startsWith('TIME ')).pop();
  const [, maxrss, minflt] = line.split(' ').map(Number);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  return { ...out, maxrss_mb: (maxrss * 1024) / 1e6, minflt };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.child) return child(args);
  const triple = `${process.arch === 'x64' ? 'x86_64' : process.arch}-unknown-linux-gnu`;
  const rust = path.join(root, 'target', triple, 'release', 'examples', 'bench_core');
  if (!existsSync(rust)) throw new Error(`build ${rust} first: cargo build --release --target ${triple} -p acdc-core --example bench_core`);
  const me = fileURLToPath(import.meta.url);
  const kinds = {
    rust: () => timed(rust, ['soap', args.input, '--gradients', '--warmup', '1', '--reps', String(args.reps)], {}),
    'node pool': () => timed(process.execPath, ['--expose-gc', me, '--child', '--input', args.input, '--reps', String(args.reps)], {}),
    'node fresh': () =>
      timed(process.execPath, ['--expose-gc', me, '--child', '--input', args.input, '--reps', String(args.reps)], { ACDC_OUTPUT_POOL: '0' }),
  };
  const results = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
  const names = Object.keys(kinds);
  for (let round = 0; round < args.rounds; round++) {
    for (let j = 0; j < names.length; j++) {
      const name = names[(j + round) % names.length];
      results[name].push(kinds[name]());
    }
  }
  const load = (await import('node:os')).loadavg()[0];
  const rows = names.map((name) => {
    const rs = results[name];
    const wall = median(rs.flatMap((r) => r.times));
    const cpuT = median(rs.flatMap((r) => r.cpu_times));
    const minflt = median(rs.map((r) => r.minflt));
    const rss = Math.max(...rs.map((r) => r.maxrss_mb));
    const callFaults = rs.some((r) => r.call_faults) ? median(rs.flatMap((r) => r.call_faults ?? [])) : null;
    return { name, wall, cpu: cpuT, minflt, callFaults, rss };
  });
  const base = rows.find((r) => r.name === 'rust');
  console.log(`input ${path.relative(root, args.input)}, 1 thread, ${args.rounds} round(s) × (1 warm-up + ${args.reps} calls); load average at the end ${load.toFixed(2)}`);
  console.log('| process | wall ms (median) | CPU ms (median) | CPU / rust | minor faults, process | minor faults per call | peak RSS MB |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${(r.wall * 1e3).toFixed(1)} | ${(r.cpu * 1e3).toFixed(1)} | ${(r.cpu / base.cpu).toFixed(2)} | ${r.minflt} | ${r.callFaults ?? '—'} | ${r.rss.toFixed(0)} |`,
    );
  }
}

await main();
