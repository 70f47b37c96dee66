#!/usr/bin/env node
// Queue CPU accounting (not a test; no Redis): the CPU seconds (user +
// system, all threads, this process) that a worker spends per shard —
// `processShard`, what `acdc worker` runs for each job — and `acdc merge`
// spends per frame, against `acdc featurize` of the same input in one
// process, all on 1 thread. On an idle machine with 2 cores, 2 workers can
// be at most 2 × (single-process CPU / worker CPU) times as fast as one
// process; this is that ratio, measured without the wall clock, which a
// shared machine makes meaningless. Page faults are reported too.
//
//   node bench/queue_cpu.mjs [--copies 100] [--shard-frames 1000] [--root DIR]
//
// --root: the acdc checkout to measure (default: this one), to compare two
// builds on the same machine at the same time.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const k = args.indexOf(`--${name}`);
  return k >= 0 ? args[k + 1] : fallback;
};
const root = path.resolve(arg('root', path.join(path.dirname(fileURLToPath(import.meta.url)), '..')));
const copies = Number(arg('copies', 100));
const shardFrames = Number(arg('shard-frames', 1000));
process.env.ACDC_NUM_THREADS = '1';
const { featurize } = require(path.join(root, 'dist', 'featurize', 'index.js'));
const { splitInput } = require(path.join(root, 'dist', 'queue', 'split.js'));
const { processShard } = require(path.join(root, 'dist', 'queue', 'worker.js'));
const { mergeShards } = require(path.join(root, 'dist', 'queue', 'merge.js'));

const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-bench-queue-cpu-')));
const input = path.join(dir, 'input.xyz');
fs.writeFileSync(input, fs.readFileSync(path.join(root, 'examples', 'molecules.xyz'), 'utf8').repeat(copies));
// bytes this process asked the kernel to write (all threads), none of it timed
const wchar = () => Number(/^wchar: (\d+)/m.exec(fs.readFileSync('/proc/self/io', 'utf8'))?.[1] ?? NaN);
const usage = () => {
  const r = process.resourceUsage();
  return { cpu: (r.userCPUTime + r.systemCPUTime) / 1e6, sys: r.systemCPUTime / 1e6, faults: r.minorPageFault + r.majorPageFault, written: wchar() };
};
const since = (a) => {
  const b = usage();
  return { cpu: b.cpu - a.cpu, sys: b.sys - a.sys, faults: b.faults - a.faults, written: b.written - a.written };
};
const load0 = os.loadavg();
const options = { calculator: 'soap_power_spectrum', hypers: null, perStructure: 'mean', dtype: 'float64', species: [1, 6, 7, 8], batch: 64, maxMemory: null };

// warm-up: the calculator built once, as a worker keeps it
await featurize(input, { ...options, hypers: undefined, perStructure: 'mean', maxMemory: undefined, out: path.join(dir, 'warm.npy'), progress: false, species: options.species });
let u = usage();
const single = path.join(dir, 'single.npy');
await featurize(input, { ...options, hypers: undefined, maxMemory: undefined, out: single, progress: false });
const one = since(u);

const split = await splitInput(input, input, { shardFrames, collectSpecies: false, inputsDir: path.join(dir, 'inputs') });
const outDir = path.join(dir, 'shards');
fs.mkdirSync(outDir);
const jobs = split.shards.map((s) => ({ id: `0123456789abcdef-${s.index}`, index: s.index, inputName: 'input.xyz', input: s.input, firstFrame: s.firstFrame, frames: s.frames, outDir, options }));
// the first shard builds the worker's calculator: not counted
const records = [await processShard(jobs[0], [dir])];
u = usage();
for (const job of jobs.slice(1)) records.push(await processShard(job, [dir]));
const worker = since(u);
const workerFrames = jobs.slice(1).reduce((n, j) => n + j.frames, 0);
const manifest = {
  format: 'acdc-shards', formatVersion: 1, acdc: 'bench', created: new Date().toISOString(),
  input: { name: input, path: input, bytes: split.bytes, sha256: split.sha256, gzip: false },
  calculator: options.calculator, hypers: null,
  options: { perStructure: 'mean', dtype: 'float64', species: options.species, batch: 64, maxMemory: null },
  shardFrames, frames: split.frames, atoms: split.atoms, rows: records.reduce((n, r) => n + r.rows, 0), columns: records[0].columns,
  columnLabels: null, complete: true, shards: records, failures: [],
};
fs.writeFileSync(path.join(outDir, 'manifest.json'), JSON.stringify(manifest));
const merged = path.join(dir, 'merged.npy');
u = usage();
await mergeShards(path.join(outDir, 'manifest.json'), merged);
const merge = since(u);
const same = fs.readFileSync(merged).equals(fs.readFileSync(single));
const onDisk = (f) => (fs.statSync(f).blocks * 512) / 1e6;
const disk = { single: onDisk(single), merged: onDisk(merged), length: fs.statSync(merged).size / 1e6 };
fs.rmSync(dir, { recursive: true, force: true });

const frames = split.frames;
const per = (x, n) => `${((x.cpu / n) * 1e6).toFixed(0)} µs (system ${((x.sys / n) * 1e6).toFixed(0)} µs, ${(x.faults / n).toFixed(1)} page faults)`;
console.log(`input: examples/molecules.xyz × ${copies} = ${frames} frames, soap_power_spectrum per-structure mean, shards of ${shardFrames} frames (${(records[1]?.bytes.file / 1e6).toFixed(0)} MB each), 1 thread; acdc at ${root}`);
console.log(`machine: ${os.cpus().length} cores, load average before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(`CPU per frame: acdc featurize (one process) ${per(one, frames)}`);
console.log(`CPU per frame: worker, processShard (${jobs.length - 1} shards) ${per(worker, workerFrames)}`);
console.log(`CPU per frame: acdc merge ${per(merge, frames)}`);
console.log(`worker / one process: ${((worker.cpu / workerFrames) / (one.cpu / frames)).toFixed(2)}× the CPU per frame; 2 workers on 2 idle cores: at most ${(2 * (one.cpu / frames) / (worker.cpu / workerFrames)).toFixed(2)}× one process, ${(2).toFixed(2)}× one worker`);
console.log(`bytes written: acdc featurize ${(one.written / 1e6).toFixed(0)} MB, workers ${(worker.written / 1e6).toFixed(0)} MB (shards 1 to ${jobs.length - 1}), acdc merge ${(merge.written / 1e6).toFixed(0)} MB; on disk (holes excluded) the single-process .npy ${disk.single.toFixed(0)} MB, the merged one ${disk.merged.toFixed(0)} MB, both ${disk.length.toFixed(0)} MB long`);
console.log(`merged output ${same ? 'byte-identical to' : 'DIFFERS from'} the single-process .npy`);
if (!same) process.exit(1);
