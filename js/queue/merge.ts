// `acdc merge DIR/manifest.json --out features.npy`: joins the shards of a
// queue run into the design matrix and `.labels.json` sidecar that a single
// `acdc featurize` of the same input writes, byte for byte: the rows are
// copied shard after shard through the same .npy writer, and the row labels
// renumbered from each shard's first frame.
import * as fs from 'node:fs';
import * as path from 'node:path';
import native from '../native';
import { checkWritableTarget, commitSync, discard, temporaryPathFor, writeAtomicallySync } from '../atomic';
import type { Manifest } from './producer';
import { sha256File } from './shard';

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
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file} is not an .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const offset = (major === 1 ? 10 : 12) + hlen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, offset);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shape = /'shape':\s*\(\s*(\d+),\s*(\d+)\s*\)/.exec(header);
  if (!shape || (descr !== '<f8' && descr !== '<f4') || /'fortran_order':\s*True/.test(header)) throw new Error(`${file}: expected a 2-D little-endian float .npy file in C order`);
  return { rows: Number(shape[1]), columns: Number(shape[2]), itemsize: descr === '<f8' ? 8 : 4, offset };
}

/** Merges the shards listed in `manifestPath` into `out` (.npy) and `out.labels.json`. */
export async function mergeShards(manifestPath: string, out: string): Promise<MergeSummary> {
  if (path.extname(out).toLowerCase() !== '.npy') throw new Error(`--out must end in .npy, got "${out}"`);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as Manifest;
  } catch (e) {
    throw new Error(`${manifestPath}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not a readable manifest (${(e as Error).message})`}`);
  }
  if (manifest.format !== 'acdc-shards') throw new Error(`${manifestPath} is not an acdc shard manifest (format is ${JSON.stringify(manifest.format)})`);
  if (!manifest.complete || manifest.failures.length > 0) {
    const f = manifest.failures[0];
    throw new Error(`${manifestPath}: ${manifest.failures.length} shards failed${f ? ` (shard ${f.index}, frames ${f.firstFrame}–${f.firstFrame + f.frames - 1}: ${f.error.split('\n')[0]})` : ''}: run the queue again before merging`);
  }
  checkWritableTarget(out, '--out');
  const dir = path.dirname(path.resolve(manifestPath));
  const shards = [...manifest.shards].sort((a, b) => a.index - b.index);
  let expectFrame = 0;
  for (const s of shards) {
    if (s.firstFrame !== expectFrame) throw new Error(`${manifestPath}: shard ${s.index} starts at frame ${s.firstFrame}, expected ${expectFrame} (a shard is missing)`);
    expectFrame += s.frames;
  }
  if (expectFrame !== manifest.frames) throw new Error(`${manifestPath}: the shards hold ${expectFrame} frames, the input ${manifest.frames}`);
  // every shard is checked before anything is written
  for (const s of shards) {
    for (const [file, sha] of [
      [s.file, s.sha256.file],
      [s.labels, s.sha256.labels],
    ]) {
      let actual: string;
      try {
        actual = await sha256File(path.join(dir, file));
      } catch {
        throw new Error(`${manifestPath}: shard file ${path.join(dir, file)} is missing`);
      }
      if (actual !== sha) throw new Error(`${path.join(dir, file)} does not match its sha256 in ${manifestPath} (the file changed after the run)`);
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
      const fd = fs.openSync(file, 'r');
      try {
        const head = Buffer.alloc(65536);
        const layout = npyLayout(head.subarray(0, fs.readSync(fd, head, 0, head.length, 0)), file);
        if (layout.columns !== columns || layout.rows !== s.rows) throw new Error(`${file} holds ${layout.rows} × ${layout.columns} values, its record ${s.rows} × ${columns}`);
        const rowBytes = columns * layout.itemsize;
        const chunk = Math.max(1, Math.floor((16 << 20) / Math.max(1, rowBytes)));
        for (let r = 0; r < layout.rows; r += chunk) {
          const n = Math.min(chunk, layout.rows - r);
          const bytes = Buffer.alloc(n * rowBytes);
          const got = fs.readSync(fd, bytes, 0, bytes.length, layout.offset + r * rowBytes);
          if (got !== bytes.length) throw new Error(`${file} is truncated (rows ${r}–${r + n - 1} missing)`);
          const values = layout.itemsize === 8 ? new Float64Array(bytes.buffer, bytes.byteOffset, n * columns) : Float64Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, n * columns));
          writer.append(values);
        }
        rows += layout.rows;
      } finally {
        fs.closeSync(fd);
      }
      const sidecar = JSON.parse(fs.readFileSync(path.join(dir, s.labels), 'utf8')) as Sidecar;
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
