// Longer fuzzing runs: `npm run fuzz -- --minutes N [--targets xyz,npy,mts,ops,acdc]`.
//
// Runs scripts/fuzz/worker.cjs in child processes with fresh seeds, round
// robin over the targets, until N minutes have passed (default 1). The corpus
// of reproducers (test/fixtures/fuzz, plus large ones generated here into a
// temporary directory: an .mts whose deflated keys.npy declares 2e8 entries,
// an .mts of 20 000 blocks, an extxyz comment line of 1e5 keys) runs first.
// A chunk that crashes or hangs (5 minutes) is reported with its seed, and
// the input it was on is copied to fuzz-crashes/ for a regression test.
// Exits non-zero if anything crashed.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const worker = path.join(here, 'worker.cjs');
const argv = process.argv.slice(2);
const option = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};
const minutes = Number(option('minutes', '1'));
const targets = option('targets', 'xyz,npy,mts,ops,acdc').split(',');
const cases = Number(option('cases', '2000'));

/** A one-entry ZIP archive (deflated), written by hand. */
function zipOne(name, data) {
  const deflated = zlib.deflateRawSync(data, { level: 9 });
  const crc = zlib.crc32(data);
  const nameBytes = Buffer.from(name);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(deflated.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(nameBytes.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(deflated.length, 20);
  central.writeUInt32LE(data.length, 24);
  central.writeUInt16LE(nameBytes.length, 28);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(46 + nameBytes.length, 12);
  end.writeUInt32LE(30 + nameBytes.length + deflated.length, 16);
  return Buffer.concat([local, nameBytes, deflated, central, nameBytes, end]);
}

function npyHeader(dict) {
  let h = dict;
  while ((12 + h.length + 1) % 64 !== 0) h += ' ';
  h += '\n';
  const head = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0, 0, 0, 0, 0]);
  head.writeUInt32LE(h.length, 8);
  return Buffer.concat([head, Buffer.from(h)]);
}

async function generatedCorpus(dir) {
  for (const f of fs.readdirSync(path.join(root, 'test', 'fixtures', 'fuzz'))) {
    fs.copyFileSync(path.join(root, 'test', 'fixtures', 'fuzz', f), path.join(dir, f));
  }
  const keys = Buffer.concat([npyHeader("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (200000000,), }"), Buffer.alloc(800_000_000)]);
  fs.writeFileSync(path.join(dir, 'huge_keys_deflated.mts'), zipOne('keys.npy', keys));
  const acdc = await import('acdc-ml');
  const n = 20000;
  const blocks = Array.from({ length: n }, (_, i) => new acdc.TensorBlock(new acdc.Labels(['system'], [i]), [], new acdc.Labels(['n'], [0]), Float64Array.of(i)));
  fs.writeFileSync(path.join(dir, 'many_blocks.mts'), new acdc.TensorMap(new acdc.Labels(['k'], Array.from({ length: n }, (_, i) => i)), blocks).toBuffer());
  const pairs = Array.from({ length: 100000 }, (_, k) => `k${k}=${k}`).join(' ');
  fs.writeFileSync(path.join(dir, 'many_keys.extxyz'), `1\n${pairs}\nH 0 0 0\n`);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-fuzz-'));
const corpus = path.join(tmp, 'corpus');
fs.mkdirSync(corpus);
await generatedCorpus(corpus);
const crashDir = path.join(root, 'fuzz-crashes');
const totals = {};
let crashed = 0;

function runChunk(target, seed, n) {
  const record = path.join(tmp, `${target}.input`);
  const start = Date.now();
  const r = spawnSync(process.execPath, [worker, '--target', target, '--seed', String(seed), '--cases', String(n), '--record', record, '--corpus', corpus], {
    encoding: 'utf8',
    timeout: 5 * 60_000,
  });
  const line = (r.stdout ?? '').trim().split('\n').pop();
  const counts = r.status === 0 && line ? JSON.parse(line) : undefined;
  const t = (totals[target] ??= { cases: 0, ok: 0, errors: 0, crashes: 0, hangs: 0, seconds: 0 });
  t.seconds += (Date.now() - start) / 1000;
  if (counts) {
    for (const k of ['cases', 'ok', 'errors', 'crashes']) t[k] += counts[k];
    // .acdc: mutants that loaded, that predicted differently, and of those the
    // ones whose edit touched a validated field (must stay 0)
    for (const k of ['loaded', 'different', 'tiny', 'silent']) if (counts[k] !== undefined) t[k] = (t[k] ?? 0) + counts[k];
    t.maxRssMiB = Math.max(t.maxRssMiB ?? 0, counts.maxRssMiB ?? 0);
    if (counts.silent > 0) crashed++;
    if (counts.crashes > 0) process.stderr.write(r.stderr);
  }
  if (!counts || counts.crashes > 0) {
    crashed++;
    const hang = r.error && r.error.code === 'ETIMEDOUT';
    if (hang) t.hangs++;
    else if (!counts) t.crashes++;
    fs.mkdirSync(crashDir, { recursive: true });
    const keep = path.join(crashDir, `${target}-seed${seed}`);
    if (fs.existsSync(record)) fs.copyFileSync(record, keep);
    console.error(`${target} seed ${seed}: ${hang ? 'hang' : `exit ${r.status} signal ${r.signal}`}; last input kept in ${keep}\n${(r.stderr ?? '').slice(-2000)}`);
  }
}

runChunk('corpus', 0, 0);
const deadline = Date.now() + minutes * 60_000;
let seed = Date.now() % 1_000_000_000;
while (Date.now() < deadline) {
  for (const target of targets) runChunk(target, seed++, target === 'ops' || target === 'acdc' ? Math.ceil(cases / 5) : cases);
}
console.log(JSON.stringify(totals, null, 2));
fs.rmSync(tmp, { recursive: true, force: true });
process.exit(crashed ? 1 : 0);
