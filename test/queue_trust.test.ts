// The queue's files and jobs are not trusted (no Redis needed: the worker's
// shard function and the merge are called directly on a real split): a job
// naming files outside the worker's --root fails without reading them and
// without quoting them, an input edited in place after the split fails its
// shard, `acdc merge` refuses an edited manifest (dtype, dropped, repeated,
// reordered shards, paths outside the folder, a missing `failures`), and two
// producers cannot share an output folder.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.join(__dirname, '..');
// the queue modules are internal: loaded from the build as the CLI loads them
/* eslint-disable @typescript-eslint/no-require-imports */
const { splitInput } = require(path.join(root, 'dist', 'queue', 'split.js')) as typeof import('../js/queue/split');
const { processShard } = require(path.join(root, 'dist', 'queue', 'worker.js')) as typeof import('../js/queue/worker');
const { mergeShards } = require(path.join(root, 'dist', 'queue', 'merge.js')) as typeof import('../js/queue/merge');
const { lockFolder, LOCK_FILE } = require(path.join(root, 'dist', 'queue', 'producer.js')) as typeof import('../js/queue/producer');
/* eslint-enable @typescript-eslint/no-require-imports */
type ShardJob = import('../js/queue/shard').ShardJob;
type ShardRecord = import('../js/queue/shard').ShardRecord;
type Manifest = import('../js/queue/producer').Manifest;

const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-queue-trust-')));
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

const options = { calculator: 'soap_power_spectrum' as const, hypers: null, perStructure: 'mean' as const, dtype: 'float64' as const, species: [1, 6, 7, 8], batch: 8, maxMemory: null };

/** Splits `input` into shards of 3 frames, computes them with `processShard` and writes the manifest the producer would. */
async function run(input: string, outDir: string): Promise<{ manifest: string; jobs: ShardJob[]; records: ShardRecord[] }> {
  fs.mkdirSync(outDir, { recursive: true });
  const split = await splitInput(input, input, { shardFrames: 3, collectSpecies: false, inputsDir: path.join(outDir, 'inputs') });
  const jobs: ShardJob[] = split.shards.map((s) => ({ id: `0123456789abcdef-${s.index}`, index: s.index, inputName: 'input.xyz', input: s.input, firstFrame: s.firstFrame, frames: s.frames, outDir, options }));
  const records: ShardRecord[] = [];
  for (const job of jobs) records.push(await processShard(job, [base]));
  const columns = records[0].columns;
  const manifest: Manifest = {
    format: 'acdc-shards',
    formatVersion: 1,
    acdc: 'test',
    created: new Date().toISOString(),
    input: { name: input, path: input, bytes: split.bytes, sha256: split.sha256, gzip: false },
    calculator: 'soap_power_spectrum',
    hypers: null,
    options: { perStructure: 'mean', dtype: 'float64', species: options.species, batch: 8, maxMemory: null },
    shardFrames: 3,
    frames: split.frames,
    atoms: split.atoms,
    rows: records.reduce((n, r) => n + r.rows, 0),
    columns,
    columnLabels: null,
    complete: true,
    shards: records,
    failures: [],
  };
  const file = path.join(outDir, 'manifest.json');
  fs.writeFileSync(file, JSON.stringify(manifest, null, 1));
  return { manifest: file, jobs, records };
}

const molecules = fs.readFileSync(path.join(root, 'examples', 'molecules.xyz'), 'utf8');
const frames = molecules.split(/(?=^\d+\s*$)/m).filter((f) => f.trim() !== '');
const input = path.join(base, 'input.xyz');
let good: { manifest: string; jobs: ShardJob[]; records: ShardRecord[] };

beforeAll(async () => {
  fs.writeFileSync(input, frames.slice(0, 8).join(''));
  good = await run(input, path.join(base, 'out'));
}, 120_000);

describe('acdc worker: jobs are confined to --root', () => {
  it('a job naming /etc/passwd or an output folder outside the roots fails naming the path, without reading it', async () => {
    const job = good.jobs[0];
    const outside = { ...job, input: { ...job.input, path: '/etc/passwd', start: 0, end: 100 } };
    await expect(processShard(outside, [base])).rejects.toThrow(/^shard 0: the input \/etc\/passwd is outside the folders this worker may read \(--root /);
    const elsewhere = { ...job, outDir: path.join(os.tmpdir(), 'acdc-not-a-root') };
    await expect(processShard(elsewhere, [base])).rejects.toThrow(/the output folder .* is outside the folders this worker may write/);
    // a symbolic link inside the root pointing out of it is outside too
    const link = path.join(base, 'link.xyz');
    fs.symlinkSync('/etc/passwd', link);
    await expect(processShard({ ...outside, input: { ...outside.input, path: link } }, [base])).rejects.toThrow(/is outside the folders this worker may read/);
  });

  it('an input whose content is not extended XYZ: the error does not quote it', async () => {
    const secret = path.join(base, 'secret.txt');
    fs.writeFileSync(secret, 'root:x:0:0:TOPSECRET:/root:/bin/bash\n'.repeat(4));
    const job: ShardJob = { ...good.jobs[0], id: 'fedcba9876543210-0', outDir: path.join(base, 'out-secret'), input: { path: secret, start: 0, end: fs.statSync(secret).size, firstLine: 1 } };
    fs.mkdirSync(job.outDir);
    const error = await processShard(job, [base]).then(
      () => null,
      (e: Error) => e,
    );
    expect(error).not.toBeNull();
    expect(error!.message).not.toMatch(/TOPSECRET|root:x/);
  });

  it('the input edited in place (same size) after the split: the shard fails, naming the bytes', async () => {
    const edited = path.join(base, 'edited.xyz');
    fs.writeFileSync(edited, frames.slice(0, 8).join(''));
    const outDir = path.join(base, 'out-edited');
    fs.mkdirSync(outDir);
    const split = await splitInput(edited, edited, { shardFrames: 3, collectSpecies: false, inputsDir: path.join(outDir, 'inputs') });
    const text = fs.readFileSync(edited, 'utf8');
    // one digit of a coordinate in the second shard changed, same length
    const at = split.shards[1].input.start + text.slice(split.shards[1].input.start).search(/\d\.\d/);
    fs.writeFileSync(edited, text.slice(0, at) + (text[at] === '1' ? '2' : '1') + text.slice(at + 1));
    const job = (k: number): ShardJob => ({ id: `aaaaaaaaaaaaaaaa-${k}`, index: k, inputName: 'edited.xyz', input: split.shards[k].input, firstFrame: split.shards[k].firstFrame, frames: split.shards[k].frames, outDir, options });
    await expect(processShard(job(0), [base])).resolves.toMatchObject({ index: 0 });
    await expect(processShard(job(1), [base])).rejects.toThrow(/^edited\.xyz: bytes \d+–\d+ of .* \(shard 1, frames 3–5\) changed since the input was split \(sha256 differs\)/);
  });
});

describe('acdc worker: shards computed in memory', () => {
  it('the files and records of in-memory shards are those of the file path (same bytes, same checksums); a malformed frame names its line in the input', async () => {
    const outDir = path.join(base, 'out-files');
    fs.mkdirSync(outDir);
    // ACDC_FEATURIZE_TENSORS=1 sends the worker through temporary files (and the tensor path)
    process.env.ACDC_FEATURIZE_TENSORS = '1';
    let files: ShardRecord[];
    try {
      files = [];
      for (const job of good.jobs) files.push(await processShard({ ...job, outDir }, [base]));
    } finally {
      delete process.env.ACDC_FEATURIZE_TENSORS;
    }
    for (const [k, r] of good.records.entries()) {
      expect({ ...files[k], worker: '' }).toEqual({ ...r, worker: '' });
      expect(fs.readFileSync(path.join(outDir, r.file)).equals(fs.readFileSync(path.join(good.jobs[k].outDir, r.file)))).toBe(true);
      expect(fs.readFileSync(path.join(outDir, r.labels)).equals(fs.readFileSync(path.join(good.jobs[k].outDir, r.labels)))).toBe(true);
    }
    // the fifth frame (second shard) broken: the line is that of the input, not of the shard
    const broken = path.join(base, 'broken.xyz');
    const lines = frames.slice(0, 8).join('').split('\n');
    const fifth = frames.slice(0, 4).join('').split('\n').length - 1;
    lines[fifth + 2] = 'H 0.0 zero 0.0';
    fs.writeFileSync(broken, lines.join('\n'));
    const brokenOut = path.join(base, 'out-broken');
    fs.mkdirSync(brokenOut);
    const split = await splitInput(broken, broken, { shardFrames: 3, collectSpecies: false, inputsDir: path.join(brokenOut, 'inputs') });
    const job: ShardJob = { id: 'bbbbbbbbbbbbbbbb-1', index: 1, inputName: 'broken.xyz', input: split.shards[1].input, firstFrame: split.shards[1].firstFrame, frames: split.shards[1].frames, outDir: brokenOut, options };
    // an answer over the memory budget is not refused as an in-memory answer: the
    // shard goes through files, whose own budget checks then apply
    const tight = await processShard({ ...good.jobs[0], id: 'cccccccccccccccc-0', outDir: brokenOut, options: { ...options, maxMemory: '64K' } }, [base]).then(
      () => null,
      (e: Error & { code?: string }) => e,
    );
    expect(tight?.message).toMatch(/memory budget|budget of/);
    expect(tight?.message).not.toMatch(/in-memory/);
    const inMemory = await processShard(job, [base]).then(() => null, (e: Error) => e.message);
    expect(inMemory).toMatch(new RegExp(`^broken\\.xyz: parse error at line ${fifth + 3}\\b.*after 3 complete frames`));
    // the same message through the file path
    process.env.ACDC_FEATURIZE_TENSORS = '1';
    try {
      await expect(processShard(job, [base])).rejects.toThrow(inMemory!);
    } finally {
      delete process.env.ACDC_FEATURIZE_TENSORS;
    }
  });
});

describe('acdc merge: the manifest is checked against the shards', () => {
  const edit = (change: (m: Manifest) => void): string => {
    const m = JSON.parse(fs.readFileSync(good.manifest, 'utf8')) as Manifest;
    change(m);
    const file = path.join(path.dirname(good.manifest), 'edited.json');
    fs.writeFileSync(file, JSON.stringify(m));
    return file;
  };
  const out = path.join(base, 'merged.npy');

  it('the untouched run merges', async () => {
    await expect(mergeShards(good.manifest, out)).resolves.toMatchObject({ shards: 3, rows: 8 });
  });

  it.each([
    ['dtype edited', (m: Manifest) => (m.options.dtype = 'float32'), /float64 values, the manifest says float32|shard 0's .* differs|says dtype float64/],
    ['a shard dropped', (m: Manifest) => m.shards.splice(1, 1), /2 shards listed, a run of 8 frames in shards of 3 has 3/],
    ['a shard repeated', (m: Manifest) => (m.shards[2] = m.shards[1]), /entry 2 of shards is shard 1/],
    ['shards reordered', (m: Manifest) => m.shards.reverse(), /entry 0 of shards is shard 2/],
    ['a file outside the folder', (m: Manifest) => (m.shards[0].file = '../outside.npy'), /shard 0 names files "\.\.\/outside\.npy"/],
    ['frame ranges edited consistently', (m: Manifest) => ((m.shards[0].frames = 2), (m.shards[1].firstFrame = 2)), /shard 0 holds 2 frames, expected 3/],
    ['rows edited', (m: Manifest) => (m.shards[1].rows = 4), /shard 1 has 4 rows, expected 3/],
    ['a shard checksum edited', (m: Manifest) => (m.shards[1].crc32!.file = '0'.repeat(8)), /shard 1's crc32 differs from its record shard-00001\.json/],
    ['the input range of a shard edited', (m: Manifest) => (m.shards[1].input!.sha256 = '0'.repeat(64)), /shard 1's input differs from its record/],
    ['failures removed', (m: Manifest) => delete (m as Partial<Manifest>).failures, /failures is missing or not a list \(not a manifest written by acdc featurize --queue\)/],
    ['shards not a list', (m: Manifest) => ((m as unknown as { shards: unknown }).shards = {}), /shards is missing or not a list/],
  ])('%s: refused, nothing written', async (_name, change, message) => {
    const target = path.join(base, `refused-${Math.random().toString(36).slice(2)}.npy`);
    await expect(mergeShards(edit(change), target)).rejects.toThrow(message);
    expect(fs.existsSync(target)).toBe(false);
  });
});

describe('acdc merge: shard checksums (CRC-32, computed by the worker as it writes)', () => {
  /** A copy of the good run's folder, to damage. */
  const copy = (): string => {
    const dir = path.join(base, `copy-${Math.random().toString(36).slice(2)}`);
    fs.cpSync(path.dirname(good.manifest), dir, { recursive: true });
    return dir;
  };

  it("every record holds zlib's CRC-32 of its files as they are on disk", () => {
    const out = path.dirname(good.manifest);
    for (const r of good.records) {
      // zlib's crc32 (Node's own): an implementation independent of the writer's
      expect(r.crc32).toEqual({
        file: zlib.crc32(fs.readFileSync(path.join(out, r.file))).toString(16).padStart(8, '0'),
        labels: zlib.crc32(fs.readFileSync(path.join(out, r.labels))).toString(16).padStart(8, '0'),
      });
      expect(r.sha256).toBeUndefined();
    }
  });

  it.each([
    ['a flipped bit in the middle of the values', (f: string) => {
      const b = fs.readFileSync(f);
      b[Math.floor(b.length / 2) + 1] ^= 0x10;
      fs.writeFileSync(f, b);
    }],
    ['bytes appended', (f: string) => fs.appendFileSync(f, Buffer.alloc(8))],
    ['a padding byte of the header changed (the layout still reads the same)', (f: string) => {
      const b = fs.readFileSync(f);
      const at = b.indexOf(' \n');
      b[at] = '\t'.charCodeAt(0);
      fs.writeFileSync(f, b);
    }],
    ['the header edited (rows)', (f: string) => {
      const b = fs.readFileSync(f);
      // the row count is right-aligned in a field of 20 characters
      const at = b.indexOf('3, ', b.indexOf("'shape': ("));
      expect(at).toBeGreaterThan(0);
      b[at] = '2'.charCodeAt(0);
      fs.writeFileSync(f, b);
    }],
  ])('%s: the merge names the file, writes nothing', async (name, damage) => {
    const dir = copy();
    const file = path.join(dir, good.records[1].file);
    damage(file);
    const target = path.join(base, `damaged-${Math.random().toString(36).slice(2)}.npy`);
    // a header that disagrees with the record is named as such, before any checksum
    const message = name.startsWith('the header') ? `${file} holds 2 × ${good.records[1].columns} values, its record 3 × ${good.records[1].columns}` : `${file} does not match its crc32 in ${path.join(dir, 'manifest.json')} (the file changed after the run)`;
    await expect(mergeShards(path.join(dir, 'manifest.json'), target)).rejects.toThrow(message);
    expect(fs.existsSync(target)).toBe(false);
    expect(fs.existsSync(`${target}.labels.json`)).toBe(false);
    expect(fs.readdirSync(base).filter((f) => f.startsWith(path.basename(target)))).toEqual([]);
  });

  it('a changed sidecar is refused too', async () => {
    const dir = copy();
    const file = path.join(dir, good.records[2].labels);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"system"', '"systen"'));
    const target = path.join(base, 'damaged-labels.npy');
    await expect(mergeShards(path.join(dir, 'manifest.json'), target)).rejects.toThrow(`${file} does not match its crc32`);
    expect(fs.existsSync(target)).toBe(false);
  });

  it('a run of an earlier version (sha256 records) still merges, byte for byte, and is still checked', async () => {
    const dir = copy();
    const sha = (f: string) => createHash('sha256').update(fs.readFileSync(path.join(dir, f))).digest('hex');
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
    manifest.shards = manifest.shards.map((r) => {
      const old: ShardRecord = { ...r, sha256: { file: sha(r.file), labels: sha(r.labels) } };
      delete old.crc32;
      fs.writeFileSync(path.join(dir, `shard-0000${r.index}.json`), JSON.stringify(old));
      return old;
    });
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
    const fresh = path.join(base, 'merged-crc.npy');
    const old = path.join(base, 'merged-sha.npy');
    await mergeShards(good.manifest, fresh);
    await mergeShards(path.join(dir, 'manifest.json'), old);
    expect(fs.readFileSync(old).equals(fs.readFileSync(fresh))).toBe(true);
    const file = path.join(dir, manifest.shards[0].file);
    fs.appendFileSync(file, 'x');
    await expect(mergeShards(path.join(dir, 'manifest.json'), path.join(base, 'merged-sha-2.npy'))).rejects.toThrow(`${file} does not match its sha256`);
  });
});

describe('acdc featurize --queue: one producer per output folder', () => {
  it('a second lock on the folder is refused naming the first; a stale lock of a dead process is taken over', async () => {
    const dir = path.join(base, 'locked');
    fs.mkdirSync(dir);
    const release = lockFolder(dir, dir);
    expect(() => lockFolder(dir, dir)).toThrow(new RegExp(`--out-dir .* is in use by another acdc featurize --queue \\(process ${process.pid} on `));
    release();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    // a lock left by a process that has exited
    const dead = spawn(process.execPath, ['-e', '0']);
    const pid = dead.pid!;
    await new Promise((r) => dead.on('exit', r));
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ host: os.hostname(), pid, started: 'then' }));
    const again = lockFolder(dir, dir);
    again();
  });
});
