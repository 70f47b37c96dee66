#!/usr/bin/env node
// Queue benchmark (not a test): `acdc featurize` in one process against
// `acdc featurize --queue` with 1 and 2 `acdc worker` processes, on a
// redis-server started here on a free loopback port. Every process runs
// the native pool on 1 thread, so 2 workers use 2 cores. Prints a table and
// the queue overhead per shard: (1 worker − single process) / shards.
//
//   node bench/queue.mjs [--copies 10] [--shard-frames 100] [--rounds 2]
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const k = args.indexOf(`--${name}`);
  return k >= 0 ? Number(args[k + 1]) : fallback;
};
const copies = arg('copies', 10);
const shardFrames = arg('shard-frames', 100);
const rounds = arg('rounds', 2);
// --no-half: skip the run with twice the shards (it only measures the cost
// of one more shard, and doubles the bytes written per round)
const half = !args.includes('--no-half');

if (spawnSync('redis-server', ['--version']).status !== 0) {
  console.error('bench/queue.mjs needs redis-server on PATH (Debian: apt-get install redis-server)');
  process.exit(1);
}
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-bench-queue-'));
// large runs write tens of GB here: removed on every exit, a failed one too
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const input = path.join(dir, 'input.xyz');
fs.writeFileSync(input, fs.readFileSync(path.join(root, 'examples', 'molecules.xyz'), 'utf8').repeat(copies));
const frames = 120 * copies;
const env = { ...process.env, ACDC_NUM_THREADS: '1' };
const options = ['--per-structure', 'mean'];

const port = await new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 300));
const url = `redis://127.0.0.1:${port}/0`;

// CPU seconds (user + system, all threads) of a process: from GNU time for
// the processes that exit by themselves, from /proc for the workers (read
// just before they are stopped)
const gnuTime = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
const cpu = { single: [], producer: [], workers1: [], workers2: [], merge: [] };
function procCpu(pid) {
  return procStat(pid).cpu;
}
// what a process has used so far, none of it timed: CPU seconds (user,
// system), page faults, bytes it asked to write (wchar) and bytes it sent to
// the disk (write_bytes), from /proc
function procStat(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // clock ticks (USER_HZ = 100)
    const st = { user: Number(f[11]) / 100, system: Number(f[12]) / 100, minflt: Number(f[7]), majflt: Number(f[9]) };
    const io = Object.fromEntries(
      fs
        .readFileSync(`/proc/${pid}/io`, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(': ')),
    );
    return { ...st, cpu: st.user + st.system, wchar: Number(io.wchar), writeBytes: Number(io.write_bytes) };
  } catch {
    return { user: NaN, system: NaN, minflt: NaN, majflt: NaN, cpu: NaN, wchar: NaN, writeBytes: NaN };
  }
}
const minus = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, a[k] - b[k]]));
// the kernel's reclaim counters: direct reclaim is done by (and charged to)
// the process that allocates a page when memory is short
const VMSTAT = ['allocstall_normal', 'allocstall_movable', 'pgscan_direct', 'pgsteal_direct', 'pgscan_kswapd', 'pgsteal_kswapd', 'nr_dirty', 'nr_writeback'];
function vmstat() {
  const all = Object.fromEntries(
    fs
      .readFileSync('/proc/vmstat', 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' ')),
  );
  return Object.fromEntries(VMSTAT.map((k) => [k, Number(all[k] ?? NaN)]));
}

function run(argv, cpuInto) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const cmd = gnuTime ? [gnuTime, ['-f', 'acdc-cpu %U %S', process.execPath, cli, ...argv]] : [process.execPath, [cli, ...argv]];
    const p = spawn(cmd[0], cmd[1], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => {
      const m = /acdc-cpu ([\d.]+) ([\d.]+)/.exec(err);
      if (m && cpuInto) cpuInto.push(Number(m[1]) + Number(m[2]));
      code === 0 ? resolve(Number(process.hrtime.bigint() - t0) / 1e9) : reject(new Error(`acdc ${argv[0]} exited ${code}: ${err}`));
    });
  });
}

const diag = [];
async function queued(workers, tag, frames = shardFrames, cpuInto = null, mergeCpu = null) {
  const logs = [];
  // when the first shard started and the last one finished, against the
  // producer's start and exit: the head and tail that no worker shortens
  let firstStart;
  let lastDone;
  const ws = Array.from({ length: workers }, () => spawn(process.execPath, [cli, 'worker', '--queue', url, '--threads', '1', '--root', dir], { env, stdio: ['ignore', 'ignore', 'pipe'] }));
  // workers connected and idle before the clock starts: each says so once ready
  await Promise.all(
    ws.map(
      (w, k) =>
        new Promise((resolve, reject) => {
          logs[k] = '';
          w.stderr.on('data', (d) => {
            logs[k] += d;
            const now = performance.now();
            if (/\) started/.test(String(d))) firstStart ??= now;
            if (/\) done/.test(String(d))) lastDone = now;
            if (/acdc worker: worker \S+ on redis/.test(logs[k])) resolve();
          });
          w.on('exit', (code) => reject(new Error(`acdc worker exited ${code}: ${logs[k]}`)));
        }),
    ),
  );
  await new Promise((r) => setTimeout(r, 200));
  const out = path.join(dir, `shards-${tag}`);
  fs.rmSync(out, { recursive: true, force: true });
  const before = ws.map((w) => procStat(w.pid));
  const vm0 = vmstat();
  const t0 = performance.now();
  const seconds = await run(['featurize', input, '--queue', url, '--out-dir', out, '--shard-frames', String(frames), ...options], cpuInto ? cpu.producer : null);
  const t1 = performance.now();
  const used = ws.map((w, k) => minus(procStat(w.pid), before[k]));
  const vm = minus(vmstat(), vm0);
  if (cpuInto) cpuInto.push(used.reduce((n, u) => n + u.cpu, 0));
  await Promise.all(ws.map((w) => new Promise((r) => (w.on('exit', r), w.kill('SIGTERM')))));
  // executions per shard, from the workers' own lines: a shard computed
  // twice (a duplicated job, or one taken back after its lock expired)
  // shows here, whatever the machine's load
  const started = new Map();
  let stalled = 0;
  const shardsOf = logs.map(() => 0);
  logs.forEach((log, k) => {
    for (const m of log.matchAll(/shard (\d+) \(frames [^)]*\) started/g)) {
      started.set(m[1], (started.get(m[1]) ?? 0) + 1);
      shardsOf[k]++;
    }
    stalled += [...log.matchAll(/ stalled: /g)].length;
  });
  const executions = [...started.values()];
  diag.push({ tag, workers, frames: 120 * copies, shards: Math.ceil((120 * copies) / frames), executions: executions.reduce((a, b) => a + b, 0), maxPerShard: Math.max(0, ...executions), stalled, shardsOf, used, vm, seconds, head: (firstStart - t0) / 1000, tail: (t1 - lastDone) / 1000 });
  const merged = path.join(dir, `merged-${tag}.npy`);
  await run(['merge', path.join(out, 'manifest.json'), '--out', merged], mergeCpu);
  // the shards are not needed once merged: removed now, so that each run
  // starts with as little of the bench's own output in memory as the next
  fs.rmSync(out, { recursive: true, force: true });
  return { seconds, merged };
}

// byte comparison in 16 MiB pieces: outputs of large runs exceed what one
// Buffer can hold (2 GiB)
function sameBytes(a, b) {
  if (fs.statSync(a).size !== fs.statSync(b).size) return false;
  const [fa, fb] = [fs.openSync(a, 'r'), fs.openSync(b, 'r')];
  const [ba, bb] = [Buffer.alloc(1 << 24), Buffer.alloc(1 << 24)];
  try {
    for (;;) {
      const n = fs.readSync(fa, ba, 0, ba.length, null);
      const m = fs.readSync(fb, bb, 0, bb.length, null);
      if (n !== m) return false;
      if (n === 0) return true;
      if (!ba.subarray(0, n).equals(bb.subarray(0, n))) return false;
    }
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
}
const times = { single: [], one: [], half: [], two: [] };
const single = path.join(dir, 'single.npy');
// each merged output is compared and removed at once: a round of 30 000
// frames writes 4.3 GB per run, and runs that found the page cache full of
// the earlier runs' files paid for its reclaim (2 workers, last in a round,
// most of all). `sync` before each timed run writes the earlier runs' dirty
// pages out, so that no run pays for another's writeback.
const settle = () => spawnSync('sync');
// bytes on disk (holes excluded) of the single-process and merged outputs
const allocated = { single: 0, merged: 0 };
const check = (m) => {
  if (!sameBytes(m, single)) throw new Error(`${m} differs from the single-process output`);
  allocated.single = fs.statSync(single).blocks * 512;
  allocated.merged = fs.statSync(m).blocks * 512;
  fs.rmSync(m, { force: true });
};
for (let r = 0; r < rounds; r++) {
  settle();
  times.single.push(await run(['featurize', input, '--out', single, '--threads', '1', ...options], cpu.single));
  // 1 and 2 workers in turn first, so that neither always runs after the other
  for (const workers of r % 2 === 0 ? [1, 2] : [2, 1]) {
    settle();
    if (workers === 1) {
      const one = await queued(1, `1-${r}`, shardFrames, cpu.workers1, cpu.merge);
      times.one.push(one.seconds);
      check(one.merged);
    } else {
      const two = await queued(2, `2-${r}`, shardFrames, cpu.workers2);
      times.two.push(two.seconds);
      check(two.merged);
    }
  }
  if (half) {
    // twice the shards of half the size: the slope is the cost of one more shard
    settle();
    times.half.push((await queued(1, `h-${r}`, shardFrames / 2)).seconds);
    fs.rmSync(path.join(dir, `merged-h-${r}.npy`), { force: true });
  }
  fs.rmSync(single, { force: true });
}
redis.kill('SIGTERM');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const shards = Math.ceil(frames / shardFrames);
const [s, q1, qh, q2] = [median(times.single), median(times.one), half ? median(times.half) : NaN, median(times.two)];
console.log(`input: examples/molecules.xyz × ${copies} = ${frames} frames, soap_power_spectrum --per-structure mean, ${shards} shards of ${shardFrames} frames`);
console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model}), load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log('| run | median s (of ' + rounds + ') | frames/s |');
console.log('|---|---|---|');
console.log(`| acdc featurize, 1 process, 1 thread | ${s.toFixed(2)} | ${(frames / s).toFixed(0)} |`);
console.log(`| --queue, 1 worker × 1 thread | ${q1.toFixed(2)} | ${(frames / q1).toFixed(0)} |`);
if (half) console.log(`| --queue, 1 worker × 1 thread, ${2 * shards} shards of ${shardFrames / 2} | ${qh.toFixed(2)} | ${(frames / qh).toFixed(0)} |`);
console.log(`| --queue, 2 workers × 1 thread | ${q2.toFixed(2)} | ${(frames / q2).toFixed(0)} |`);
console.log(`speed-up 2 workers / 1 worker: ${(q1 / q2).toFixed(2)}×`);
console.log(`queue overhead: ${(q1 - s).toFixed(2)} s in all for ${shards} shards (producer start, split, Redis, merge-ready records)${half ? `; per extra shard ${(((qh - q1) / shards) * 1000).toFixed(0)} ms` : ''}`);
if (gnuTime) {
  const ms = (xs) => (median(xs) * 1000).toFixed(0);
  console.log(`CPU seconds (user + system, medians): single process ${ms(cpu.single)} ms; producer ${ms(cpu.producer)} ms; 1 worker ${ms(cpu.workers1)} ms; 2 workers together ${ms(cpu.workers2)} ms (workers: from the producer's start to its end); acdc merge ${ms(cpu.merge)} ms`);
  const perFrame = (xs) => ((median(xs) / frames) * 1e6).toFixed(0);
  console.log(`CPU µs per frame: single process ${perFrame(cpu.single)}; 1 worker ${perFrame(cpu.workers1)} (${(median(cpu.workers1) / median(cpu.single)).toFixed(2)}× the single process); 2 workers ${perFrame(cpu.workers2)} (${(median(cpu.workers2) / median(cpu.single)).toFixed(2)}×); producer ${perFrame(cpu.producer)}; merge ${perFrame(cpu.merge)}`);
  // a worker runs its compute thread and the .npy writer thread side by side:
  // one worker alone may use more than one core, which 2 workers then lack
  const coresOne = median(cpu.workers1) / q1;
  console.log(`cores one worker keeps busy: ${coresOne.toFixed(2)} (its CPU seconds / the run's wall seconds); 2 workers on ${os.cpus().length} cores can then be at most ${(Math.min(2, os.cpus().length) / Math.max(1, coresOne)).toFixed(2)}× one worker, with the producer and Redis taking ${((median(cpu.producer) / q2) * 100).toFixed(0)} % of a core meanwhile`);
}
// per run, none of it timed: executions per shard, stalled jobs, each
// worker's CPU per frame it computed (user + system), page faults and bytes
console.log('per run (none of it depends on the machine\'s load, except the wall seconds):');
console.log('| run | workers | shards | executions (max per shard) | stalled | shards per worker | worker CPU µs/frame (user + system) | worker CPU µs/frame, all workers | minor faults/frame | MB asked to write / sent to disk | reclaim: pages scanned by kswapd / directly, allocation stalls | wall s (producer start → first shard started, last shard done → producer exit) |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const d of diag) {
  const cpuAll = d.used.reduce((n, u) => n + u.cpu, 0);
  const per = d.used.map((u, k) => `${((u.cpu / ((d.shardsOf[k] / d.shards) * d.frames)) * 1e6).toFixed(0)} (${((u.user / ((d.shardsOf[k] / d.shards) * d.frames)) * 1e6).toFixed(0)} + ${((u.system / ((d.shardsOf[k] / d.shards) * d.frames)) * 1e6).toFixed(0)})`).join(', ');
  const faults = d.used.reduce((n, u) => n + u.minflt, 0) / d.frames;
  const mb = (k) => (d.used.reduce((n, u) => n + u[k], 0) / 1e6).toFixed(0);
  console.log(`| ${d.tag} | ${d.workers} | ${d.shards} | ${d.executions} (${d.maxPerShard}) | ${d.stalled} | ${d.shardsOf.join(' / ')} | ${per} | ${((cpuAll / d.frames) * 1e6).toFixed(0)} | ${faults.toFixed(1)} | ${mb('wchar')} / ${mb('writeBytes')} | ${d.vm.pgscan_kswapd} / ${d.vm.pgscan_direct}, ${d.vm.allocstall_normal + d.vm.allocstall_movable} | ${d.seconds.toFixed(2)} (${d.head.toFixed(2)}, ${d.tail.toFixed(2)}) |`);
}
console.log(`merged outputs: byte-identical to the single-process .npy (${(fs.statSync(path.join(dir, 'input.xyz')).size / 1e6).toFixed(0)} MB input; output ${(allocated.single / 1e9).toFixed(2)} GB on disk for the single process, ${(allocated.merged / 1e9).toFixed(2)} GB for acdc merge's, holes excluded)`);
fs.rmSync(dir, { recursive: true, force: true });
