// `acdc merge DIR/manifest.json --out features.npy`: joins the shards of a
// queue run into the design matrix and `.labels.json` sidecar that a single
// `acdc featurize` of the same input writes, byte for byte: the rows are
// copied shard after shard through the same .npy writer, and the row labels
// renumbered from each shard's first frame.
import { coded, rethrown } from '../errors';
import * as fs from 'node:fs';
import * as path from 'node:path';
import native from '../native';
import { checkWritableTarget, commitSync, discard, temporaryPathFor, writeAtomicallySync } from '../atomic';
import type { Manifest } from './producer';
import { checksumOf, crc32Hex, shardBase, type ShardRecord } from './shard';

export interface MergeSummary {
  out: string;
  labels: string;
  shards: number;
  rows: number;
  columns: number;
}

interface Sidecar {
  description: string;
  calculator: string;
  perStructure: string | null;
  dtype: string;
  rows: { names: string[]; values: number[][] };
  columns: { names: string[]; values: number[][] };
}

/** Rows, columns, element size and data offset of an .npy file written by acdc. @internal */
export function npyLayout(buf: Buffer, file: string): { rows: number; columns: number; itemsize: 4 | 8; offset: number } {
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw coded('ACDC_PARSE', `${file} is not an .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const offset = (major === 1 ? 10 : 12) + hlen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, offset);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shape = /'shape':\s*\(\s*(\d+),\s*(\d+)\s*\)/.exec(header);
  if (!shape || (descr !== '<f8' && descr !== '<f4') || /'fortran_order':\s*True/.test(header)) throw coded('ACDC_PARSE', `${file}: expected a 2-D little-endian float .npy file in C order`);
  return { rows: Number(shape[1]), columns: Number(shape[2]), itemsize: descr === '<f8' ? 8 : 4, offset };
}

/** Throws naming the first field of the manifest that is missing or of the wrong type. */
function checkManifestShape(m: Manifest, file: string): void {
  const bad = (field: string, expected: string) => coded('ACDC_PARSE', `${file}: ${field} is missing or not ${expected} (not a manifest written by acdc featurize --queue)`);
  const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!Array.isArray(m.shards)) throw bad('shards', 'a list');
  if (!Array.isArray(m.failures)) throw bad('failures', 'a list');
  if (typeof m.complete !== 'boolean') throw bad('complete', 'true or false');
  if (!count(m.frames)) throw bad('frames', 'a count');
  if (!Number.isSafeInteger(m.shardFrames) || m.shardFrames < 1) throw bad('shardFrames', 'a positive count');
  if (m.options === null || typeof m.options !== 'object') throw bad('options', 'an object');
  if (m.options.dtype !== 'float64' && m.options.dtype !== 'float32') throw bad('options.dtype', 'float64 or float32');
  if (m.input === null || typeof m.input !== 'object') throw bad('input', 'an object');
  for (const [k, f] of m.failures.entries()) {
    if (f === null || typeof f !== 'object' || typeof f.error !== 'string' || !count(f.index) || !count(f.firstFrame) || !count(f.frames)) throw bad(`failures[${k}]`, 'a shard failure');
  }
  if (m.complete && m.failures.length === 0 && !count(m.columns)) throw bad('columns', 'a count');
  for (const [k, s] of m.shards.entries()) {
    if (s === null || typeof s !== 'object' || typeof s.file !== 'string' || typeof s.labels !== 'string' || !count(s.rows) || !count(s.frames) || !count(s.firstFrame) || !count(s.atoms) || checksumOf(s) === null) {
      throw bad(`shards[${k}]`, 'a shard record');
    }
  }
}

/** Merges the shards listed in `manifestPath` into `out` (.npy) and `out.labels.json`. */
export async function mergeShards(manifestPath: string, out: string): Promise<MergeSummary> {
  if (path.extname(out).toLowerCase() !== '.npy') throw coded('ACDC_INVALID_PARAMETER', `--out must end in .npy, got "${out}"`);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as Manifest;
  } catch (e) {
    throw rethrown(e, `${manifestPath}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not a readable manifest (${(e as Error).message})`}`, 'ACDC_IO');
  }
  if (manifest === null || typeof manifest !== 'object' || manifest.format !== 'acdc-shards') throw coded('ACDC_PARSE', `${manifestPath} is not an acdc shard manifest (format is ${JSON.stringify((manifest as Partial<Manifest> | null)?.format)?.slice(0, 40)})`);
  checkManifestShape(manifest, manifestPath);
  if (!manifest.complete || manifest.failures.length > 0) {
    const f = manifest.failures[0];
    throw coded('ACDC_INVALID_PARAMETER', `${manifestPath}: ${manifest.failures.length} shards failed${f ? ` (shard ${f.index}, frames ${f.firstFrame}–${f.firstFrame + f.frames - 1}: ${f.error.split('\n')[0]})` : ''}: run the queue again before merging`);
  }
  checkWritableTarget(out, '--out');
  const dir = path.dirname(path.resolve(manifestPath));
  // the manifest is checked against itself and against each shard's own
  // record: shards in order 0, 1, 2, … (none dropped, repeated or moved),
  // contiguous frames and input bytes, the files named as the worker names
  // them (inside the folder), the same run, rows, columns and dtype
  const shards = manifest.shards;
  const expectedShards = Math.ceil(manifest.frames / manifest.shardFrames);
  if (shards.length !== expectedShards) throw coded('ACDC_PARSE', `${manifestPath}: ${shards.length} shards listed, a run of ${manifest.frames} frames in shards of ${manifest.shardFrames} has ${expectedShards} (a shard was dropped or repeated)`);
  let expectFrame = 0;
  let runKey: string | undefined;
  let lastEnd: number | undefined;
  for (const [k, s] of shards.entries()) {
    if (s.index !== k) throw coded('ACDC_PARSE', `${manifestPath}: entry ${k} of shards is shard ${s.index} (shards must be listed once each, in order)`);
    const base = shardBase(k);
    if (s.file !== `${base}.npy` || s.labels !== `${base}.npy.labels.json`) throw coded('ACDC_PARSE', `${manifestPath}: shard ${k} names files ${JSON.stringify(s.file).slice(0, 80)} and ${JSON.stringify(s.labels).slice(0, 80)}, expected ${base}.npy and ${base}.npy.labels.json in the manifest's folder`);
    if (s.firstFrame !== expectFrame) throw coded('ACDC_PARSE', `${manifestPath}: shard ${k} starts at frame ${s.firstFrame}, expected ${expectFrame} (a shard is missing)`);
    if (s.frames !== Math.min(manifest.shardFrames, manifest.frames - expectFrame)) throw coded('ACDC_PARSE', `${manifestPath}: shard ${k} holds ${s.frames} frames, expected ${Math.min(manifest.shardFrames, manifest.frames - expectFrame)}`);
    expectFrame += s.frames;
    const key = /^([0-9a-f]{16})-(\d+)$/.exec(String(s.id));
    if (!key || Number(key[2]) !== k || (runKey !== undefined && key[1] !== runKey)) throw coded('ACDC_PARSE', `${manifestPath}: shard ${k} has id ${JSON.stringify(s.id).slice(0, 60)}, not one of this run's (${runKey ?? '<run>'}-${k})`);
    runKey = key[1];
    if (s.columns !== manifest.columns) throw coded('ACDC_PARSE', `${manifestPath}: shard ${k} has ${s.columns} columns, the manifest ${manifest.columns}`);
    const rowsExpected = manifest.options.perStructure !== null ? s.frames : s.atoms;
    if (s.rows !== rowsExpected) throw coded('ACDC_PARSE', `${manifestPath}: shard ${k} has ${s.rows} rows, expected ${rowsExpected} (${manifest.options.perStructure !== null ? 'one per frame' : 'one per atom'})`);
    // the shard's own record, written by its worker
    let record: ShardRecord;
    try {
      record = JSON.parse(fs.readFileSync(path.join(dir, `${base}.json`), 'utf8')) as ShardRecord;
    } catch (e) {
      throw rethrown(e, `${manifestPath}: the record ${path.join(dir, `${base}.json`)} of shard ${k} is ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unreadable'}`, 'ACDC_IO');
    }
    for (const field of ['id', 'index', 'file', 'labels', 'firstFrame', 'frames', 'atoms', 'rows', 'columns', 'crc32', 'sha256', 'input'] as const) {
      if (JSON.stringify(record[field]) !== JSON.stringify(s[field])) throw coded('ACDC_PARSE', `${manifestPath}: shard ${k}'s ${field} differs from its record ${base}.json (the manifest was edited)`);
    }
    if (s.input !== undefined) {
      if (lastEnd !== undefined && !manifest.input.gzip && s.input.start !== lastEnd) throw coded('ACDC_PARSE', `${manifestPath}: shard ${k} starts at byte ${s.input.start} of the input, the previous one ends at ${lastEnd}`);
      lastEnd = s.input.end;
    }
  }
  if (expectFrame !== manifest.frames) throw coded('ACDC_PARSE', `${manifestPath}: the shards hold ${expectFrame} frames, the input ${manifest.frames}`);
  const changed = (file: string, kind: string) => coded('ACDC_IO', `${file} does not match its ${kind} in ${manifestPath} (the file changed after the run)`);
  // every file is checked before anything is written at `out`: shards of
  // earlier versions (sha256) in a pass of their own; the CRC-32 of the
  // others is computed on the bytes as they are copied, and a mismatch
  // discards the temporary output
  for (const s of shards) {
    const checksum = checksumOf(s)!;
    if (checksum.kind === 'crc32') {
      for (const file of [s.file, s.labels]) if (!fs.existsSync(path.join(dir, file))) throw coded('ACDC_IO', `${manifestPath}: shard file ${path.join(dir, file)} is missing`);
      continue;
    }
    for (const [file, sum] of [
      [s.file, checksum.expected.file],
      [s.labels, checksum.expected.labels],
    ]) {
      let actual: string;
      try {
        actual = await checksum.of(path.join(dir, file));
      } catch {
        throw coded('ACDC_IO', `${manifestPath}: shard file ${path.join(dir, file)} is missing`);
      }
      if (actual !== sum) throw changed(path.join(dir, file), checksum.kind);
    }
  }
  const dtype = manifest.options.dtype;
  const columns = manifest.columns!;
  const tmp = temporaryPathFor(out);
  const rowValues: number[][] = [];
  let head: Sidecar | undefined;
  let rows = 0;
  try {
    const writer = new native.NpyRowWriter(tmp, columns, dtype);
    for (const s of shards) {
      const file = path.join(dir, s.file);
      // streamed in blocks of rows (about 16 MiB): a shard may be larger than memory
      const crc = s.crc32 !== undefined ? s.crc32 : null;
      const fd = fs.openSync(file, 'r');
      try {
        const head = Buffer.alloc(65536);
        const headBytes = head.subarray(0, fs.readSync(fd, head, 0, head.length, 0));
        const layout = npyLayout(headBytes, file);
        if (layout.columns !== columns || layout.rows !== s.rows) throw coded('ACDC_PARSE', `${file} holds ${layout.rows} × ${layout.columns} values, its record ${s.rows} × ${columns}`);
        if (layout.itemsize !== (dtype === 'float64' ? 8 : 4)) throw coded('ACDC_PARSE', `${file} holds float${8 * layout.itemsize} values, the manifest says ${dtype}`);
        const rowBytes = columns * layout.itemsize;
        // bytes beyond the rows (appended after the run) are a change too
        if (crc !== null && fs.fstatSync(fd).size !== layout.offset + layout.rows * rowBytes) throw changed(file, 'crc32');
        let sum = crc !== null ? native.crc32(headBytes.subarray(0, layout.offset)) : 0;
        const chunk = Math.max(1, Math.floor((16 << 20) / Math.max(1, rowBytes)));
        // one block buffer per shard, reused (append writes it out before returning)
        const block = Buffer.allocUnsafeSlow(Math.min(layout.rows, chunk) * rowBytes);
        for (let r = 0; r < layout.rows; r += chunk) {
          const n = Math.min(chunk, layout.rows - r);
          const bytes = block.subarray(0, n * rowBytes);
          const got = fs.readSync(fd, bytes, 0, bytes.length, layout.offset + r * rowBytes);
          if (got !== bytes.length) throw coded('ACDC_IO', `${file} is truncated (rows ${r}–${r + n - 1} missing)`);
          if (crc !== null) sum = native.crc32(bytes, sum);
          const values = layout.itemsize === 8 ? new Float64Array(bytes.buffer, bytes.byteOffset, n * columns) : Float64Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, n * columns));
          writer.append(values);
        }
        if (crc !== null && crc32Hex(sum) !== crc.file) throw changed(file, 'crc32');
        rows += layout.rows;
      } finally {
        fs.closeSync(fd);
      }
      const labelsBytes = fs.readFileSync(path.join(dir, s.labels));
      if (crc !== null && crc32Hex(native.crc32(labelsBytes)) !== crc.labels) throw changed(path.join(dir, s.labels), 'crc32');
      const sidecar = JSON.parse(labelsBytes.toString('utf8')) as Sidecar;
      if (sidecar.dtype !== dtype) throw coded('ACDC_PARSE', `${path.join(dir, s.labels)} says dtype ${sidecar.dtype}, the manifest ${dtype}`);
      if (sidecar.rows.values.length !== s.rows) throw coded('ACDC_PARSE', `${path.join(dir, s.labels)} labels ${sidecar.rows.values.length} rows, the shard holds ${s.rows}`);
      head ??= sidecar;
      for (const v of sidecar.rows.values) {
        v[0] += s.firstFrame;
        rowValues.push(v);
      }
    }
    writer.finish();
    const merged: Sidecar = {
      description: `labels of ${path.basename(out)}: one entry of rows.values per row, one of columns.values per column`,
      calculator: head!.calculator,
      perStructure: head!.perStructure,
      dtype: head!.dtype,
      rows: { names: head!.rows.names, values: rowValues },
      columns: head!.columns,
    };
    writeAtomicallySync(`${out}.labels.json`, (t) => fs.writeFileSync(t, JSON.stringify(merged)));
    commitSync(tmp, out);
  } catch (e) {
    discard(tmp);
    throw e;
  }
  return { out, labels: `${out}.labels.json`, shards: shards.length, rows, columns };
}
