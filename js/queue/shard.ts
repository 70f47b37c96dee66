// What travels in a queue job and what a finished shard leaves on disk. A
// shard is complete when its record `shard-NNNNN.json` exists and the
// checksums it holds match the shard's `.npy` and `.labels.json` files; the
// record is written (atomically) last, so a shard interrupted at any point
// is simply computed again.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import native from '../native';
import type { CalculatorName, PerStructure } from '../featurize';
import type { Dtype } from '../tensor';
import type { ShardInput } from './split';

/** The featurization options shared by every shard of a run. */
export interface ShardOptions {
  calculator: CalculatorName;
  /** Text of the hyper-parameters JSON file, or null for the calculator's defaults. */
  hypers: string | null;
  perStructure: PerStructure | null;
  dtype: Dtype;
  /** Atomic numbers fixing the columns (found in the whole input, or given). */
  species: number[];
  batch: number;
  maxMemory: string | null;
}

/** The data of one BullMQ job: one shard. */
export interface ShardJob {
  /** Deterministic shard id: `<run key>-<index>`. */
  id: string;
  index: number;
  /** The input as the user named it (for messages). */
  inputName: string;
  input: ShardInput;
  firstFrame: number;
  frames: number;
  /** Absolute path of the output folder. */
  outDir: string;
  options: ShardOptions;
}

/** A finished shard, as recorded in `shard-NNNNN.json` and in the manifest. */
export interface ShardRecord {
  id: string;
  index: number;
  /** File names, relative to the output folder. */
  file: string;
  labels: string;
  firstFrame: number;
  frames: number;
  atoms: number;
  rows: number;
  columns: number;
  /**
   * CRC-32 (IEEE, as zlib's `crc32`; 8 hex digits) of the `.npy` and
   * `.labels.json` files, computed by the worker as it wrote them. A check
   * against corruption (a changed bit, a torn or truncated write), not
   * against someone who can write to the folder: they could rewrite the
   * record and the manifest as well, whatever the hash.
   */
  crc32?: { file: string; labels: string };
  /** sha256 (hex) of the files: records of earlier versions, still verified. */
  sha256?: { file: string; labels: string };
  bytes: { file: number; labels: number };
  /** Host and process id of the worker that computed it. */
  worker: string;
  /** The input bytes the shard was computed from, and their sha256 (checked by the worker). */
  input?: { start: number; end: number; sha256: string };
}

/** Base name of shard `index`'s files. */
export function shardBase(index: number): string {
  return `shard-${String(index).padStart(5, '0')}`;
}

/** sha256 (hex) of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A CRC-32 as 8 hex digits. */
export function crc32Hex(crc: number): string {
  return (crc >>> 0).toString(16).padStart(8, '0');
}

/** CRC-32 (8 hex digits) of a file, streamed. */
export async function crc32File(file: string): Promise<string> {
  let crc = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) crc = native.crc32(chunk as Buffer, crc);
  return crc32Hex(crc);
}

/** The checksum of `record`'s kind (CRC-32, or sha256 for earlier records) of a file. @internal */
export function checksumOf(record: Pick<ShardRecord, 'crc32' | 'sha256'>): { kind: 'crc32' | 'sha256'; expected: { file: string; labels: string }; of: (file: string) => Promise<string> } | null {
  if (record.crc32 !== undefined && record.crc32 !== null && typeof record.crc32 === 'object') return { kind: 'crc32', expected: record.crc32, of: crc32File };
  if (record.sha256 !== undefined && record.sha256 !== null && typeof record.sha256 === 'object') return { kind: 'sha256', expected: record.sha256, of: sha256File };
  return null;
}

/**
 * The record of shard `job` if it is complete and its files match their
 * checksums, else null.
 */
export async function verifiedShard(outDir: string, id: string, index: number): Promise<ShardRecord | null> {
  let record: ShardRecord;
  try {
    record = JSON.parse(fs.readFileSync(path.join(outDir, `${shardBase(index)}.json`), 'utf8')) as ShardRecord;
  } catch {
    return null;
  }
  if (record === null || typeof record !== 'object' || record.id !== id) return null;
  const checksum = checksumOf(record);
  if (checksum === null) return null;
  try {
    const [f, l] = await Promise.all([checksum.of(path.join(outDir, record.file)), checksum.of(path.join(outDir, record.labels))]);
    if (f !== checksum.expected.file || l !== checksum.expected.labels) return null;
  } catch {
    return null;
  }
  return record;
}

/**
 * The record of shard `index` if it is that of job `id` and its files exist
 * with the sizes it states, else null: the producer's check of a completed
 * job (the checksums are verified by `acdc merge`, before it writes anything).
 */
export async function recordedShard(outDir: string, id: string, index: number): Promise<ShardRecord | null> {
  let record: ShardRecord;
  try {
    record = JSON.parse(await fs.promises.readFile(path.join(outDir, `${shardBase(index)}.json`), 'utf8')) as ShardRecord;
  } catch {
    return null;
  }
  if (record === null || typeof record !== 'object' || record.id !== id || typeof record.file !== 'string' || typeof record.labels !== 'string' || record.bytes === null || typeof record.bytes !== 'object') return null;
  try {
    const [f, l] = await Promise.all([fs.promises.stat(path.join(outDir, record.file)), fs.promises.stat(path.join(outDir, record.labels))]);
    if (f.size !== record.bytes.file || l.size !== record.bytes.labels) return null;
  } catch {
    return null;
  }
  return record;
}
