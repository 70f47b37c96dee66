// Splitting an extended XYZ input into shards of whole frames, in one
// streaming pass: frame boundaries (byte offsets and line numbers), the
// species present (read by the same parser as `acdc featurize`) and the
// sha256 of the input. A plain file is split by byte ranges (workers read
// their range of the original file); gzip-compressed input and standard
// input are written out as one plain shard input per shard, since a gzip
// stream cannot be entered in the middle.
import { coded } from '../errors';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import native from '../native';
import { temporaryPathFor, commitSync, discard } from '../atomic';

/** Where a shard's frames are: a byte range of a plain extended XYZ file. */
export interface ShardInput {
  /** Absolute path of the plain extended XYZ file holding the frames. */
  path: string;
  /** First byte of the shard's first frame. */
  start: number;
  /** One past the last byte of the shard's last frame. */
  end: number;
  /** Line (from 1) of the first frame's atom-count line in the original input. */
  firstLine: number;
  /**
   * sha256 (hex) of the shard's bytes (`start` to `end`) as split: the
   * worker checks it, so that an input edited in place after the split is
   * an error rather than features of other bytes.
   */
  sha256?: string;
}

/** One shard: a run of consecutive frames. */
export interface ShardPlan {
  index: number;
  /** Index (from 0) of the shard's first frame in the input. */
  firstFrame: number;
  frames: number;
  atoms: number;
  input: ShardInput;
}

export interface SplitResult {
  shards: ShardPlan[];
  frames: number;
  atoms: number;
  /** Atomic numbers found (sorted); null when the caller fixed the species. */
  species: number[] | null;
  /** sha256 (hex) of the input as read (decompressed bytes for gzip). */
  sha256: string;
  /** Bytes of the input as read (decompressed for gzip). */
  bytes: number;
  /** The first frame the parser rejected, if any (its shard will fail in the workers too). */
  malformed: { frame: number; message: string } | null;
}

export interface SplitOptions {
  /** Frames per shard. */
  shardFrames: number;
  /** Skip the species pass (the columns are fixed by the caller). */
  collectSpecies: boolean;
  /** Folder for plain shard inputs when the input is gzip or a stream. */
  inputsDir: string;
}

const GZIP = [0x1f, 0x8b];

/**
 * Calls `each` with every line of a byte stream (the newline is part of the
 * line), synchronously within each chunk: one await per chunk, not per line.
 */
async function eachLine(stream: AsyncIterable<Buffer>, each: (line: Buffer) => void): Promise<void> {
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of stream) {
    const buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    let from = 0;
    for (;;) {
      const nl = buf.indexOf(10, from);
      if (nl < 0) break;
      each(buf.subarray(from, nl + 1));
      from = nl + 1;
    }
    rest = Buffer.from(buf.subarray(from));
  }
  if (rest.length) each(rest);
}

/**
 * Species of a plain extended XYZ file, read natively on the thread pool
 * (while the split reads the file on the main thread); null when a frame
 * cannot be parsed (the split then finds the species frame by frame).
 */
async function nativeSpecies(file: string): Promise<Set<number> | null> {
  const species = new Set<number>();
  try {
    const reader = new native.XyzSystemReader(file);
    for (;;) {
      const batch = await reader.next(512);
      if (batch.length === 0) return species;
      for (const t of batch.types()) species.add(t);
    }
  } catch {
    return null;
  }
}

function text(line: Buffer): string {
  return line.toString('utf8').replace(/\r?\n$/, '');
}

/** Species of a run of frames; the first rejected frame is reported, its species are skipped. */
function speciesOf(frames: Buffer[], firstFrame: number, into: Set<number>): { frame: number; message: string } | null {
  if (frames.length === 0) return null;
  try {
    for (const f of native.parseXyz(Buffer.concat(frames).toString('utf8'))) for (const t of f.types) into.add(t);
    return null;
  } catch {
    let bad: { frame: number; message: string } | null = null;
    frames.forEach((f, k) => {
      try {
        for (const g of native.parseXyz(f.toString('utf8'))) for (const t of g.types) into.add(t);
      } catch (e) {
        bad ??= { frame: firstFrame + k, message: (e as Error).message };
      }
    });
    return bad;
  }
}

/**
 * Splits `file` (a plain or gzip extended XYZ file, or `-` for standard
 * input) into shards of `shardFrames` frames. Throws an Error naming the line
 * when the frame structure itself (an atom count) cannot be read.
 */
export async function splitInput(file: string, name: string, options: SplitOptions): Promise<SplitResult> {
  if (options.collectSpecies && file !== '-' && !isGzip(file)) {
    // a plain file: its species are read natively while it is split
    const [species, split] = await Promise.all([nativeSpecies(file), splitInput(file, name, { ...options, collectSpecies: false })]);
    if (species !== null) return { ...split, species: [...species].sort((a, b) => a - b) };
    // a frame the parser rejects: the species of the others, frame by frame
    return splitFrames(file, name, options);
  }
  return splitFrames(file, name, options);
}

/** Whether `file` starts with the gzip magic bytes. @internal */
export function isGzipFile(file: string): boolean {
  return isGzip(file);
}

function isGzip(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(2);
    const n = fs.readSync(fd, head, 0, 2, 0);
    return n === 2 && head[0] === GZIP[0] && head[1] === GZIP[1];
  } finally {
    fs.closeSync(fd);
  }
}

async function splitFrames(file: string, name: string, options: SplitOptions): Promise<SplitResult> {
  let source: Readable;
  let plain: string | null = null;
  if (file === '-') {
    source = process.stdin;
  } else {
    const fd = fs.openSync(file, 'r');
    const head = Buffer.alloc(2);
    const n = fs.readSync(fd, head, 0, 2, 0);
    fs.closeSync(fd);
    const gz = n === 2 && head[0] === GZIP[0] && head[1] === GZIP[1];
    source = gz ? fs.createReadStream(file).pipe(createGunzip()) : fs.createReadStream(file, { highWaterMark: 1 << 20 });
    if (!gz) plain = path.resolve(file);
  }
  const hash = createHash('sha256');
  async function* hashed(): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      hash.update(b);
      yield b;
    }
  }

  const shards: ShardPlan[] = [];
  const species = new Set<number>();
  let malformed: SplitResult['malformed'] = null;
  let offset = 0;
  let lineNo = 0;
  let frames = 0;
  let atoms = 0;
  // the frame being read
  let state = 'count' as 'count' | 'comment' | 'atoms' | 'vec' | 'blank';
  let left = 0;
  let frameStart = 0;
  let frameLine = 0;
  let frameAtoms = 0;
  let frameBytes: Buffer[] = [];
  // the shard being filled
  let shard: ShardPlan | null = null;
  let pendingSpecies: Buffer[] = [];
  let pendingBytes = 0;
  let pendingFirst = 0;
  let out: { fd: number; tmp: string; target: string; written: number } | null = null;
  let shardHash = createHash('sha256');

  const flushSpecies = () => {
    if (!options.collectSpecies) return;
    const bad = speciesOf(pendingSpecies, pendingFirst, species);
    malformed ??= bad;
    pendingSpecies = [];
    pendingBytes = 0;
    pendingFirst = frames;
  };
  const closeShard = () => {
    if (!shard) return;
    shard.input.sha256 = shardHash.digest('hex');
    shardHash = createHash('sha256');
    if (out) {
      fs.closeSync(out.fd);
      commitSync(out.tmp, out.target);
      shard.input.end = out.written;
      out = null;
    }
    shards.push(shard);
    shard = null;
  };
  const endFrame = (end: number) => {
    if (!shard) {
      const index = shards.length;
      shard = { index, firstFrame: frames, frames: 0, atoms: 0, input: { path: plain ?? '', start: frameStart, end, firstLine: frameLine } };
      if (!plain) {
        const target = path.join(options.inputsDir, `shard-${String(index).padStart(5, '0')}.xyz`);
        const tmp = temporaryPathFor(target);
        out = { fd: fs.openSync(tmp, 'w'), tmp, target, written: 0 };
        shard.input = { path: path.resolve(target), start: 0, end: 0, firstLine: frameLine };
      }
    }
    const bytes = Buffer.concat(frameBytes);
    frameBytes = [];
    shardHash.update(bytes);
    if (out) {
      fs.writeSync(out.fd, bytes);
      out.written += bytes.length;
    } else {
      shard.input.end = end;
    }
    if (options.collectSpecies) {
      pendingSpecies.push(bytes);
      pendingBytes += bytes.length;
    }
    shard.frames += 1;
    shard.atoms += frameAtoms;
    frames += 1;
    atoms += frameAtoms;
    if (pendingBytes > 8 << 20) flushSpecies();
    if (shard.frames === options.shardFrames) {
      flushSpecies();
      closeShard();
    }
  };

  try {
    await eachLine(hashed(), (line) => {
      lineNo += 1;
      const at = offset;
      offset += line.length;
      if (state === 'vec') {
        if (text(line).trimStart().startsWith('VEC')) {
          frameBytes.push(line);
          return;
        }
        endFrame(at);
        state = 'count';
      }
      switch (state) {
        case 'count': {
          const t = text(line).trim();
          if (t === '') {
            state = 'blank';
            frameLine = lineNo;
            return;
          }
          if (!/^[+-]?\d+$/.test(t) || Number(t) < 0 || !Number.isSafeInteger(Number(t))) {
            throw coded('ACDC_PARSE', `${name}, line ${lineNo}: expected the number of atoms of a frame, found '${t.slice(0, 40)}': the input cannot be split into frames`);
          }
          frameStart = at;
          frameLine = lineNo;
          frameAtoms = Number(t);
          frameBytes = [line];
          state = 'comment';
          break;
        }
        case 'comment':
          frameBytes.push(line);
          left = frameAtoms;
          state = left > 0 ? 'atoms' : 'vec';
          break;
        case 'atoms':
          frameBytes.push(line);
          left -= 1;
          if (left === 0) state = 'vec';
          break;
        case 'blank':
          if (text(line).trim() !== '') {
            throw coded('ACDC_PARSE', `${name}, line ${frameLine}: blank line where the number of atoms of a frame was expected (more content follows at line ${lineNo})`);
          }
          break;
      }
    });
    if (state === 'vec') endFrame(offset);
    else if (state === 'comment' || state === 'atoms') {
      throw coded('ACDC_PARSE', `${name}, line ${lineNo}: truncated frame: the input ends inside the frame that starts at line ${frameLine}`);
    }
    flushSpecies();
    closeShard();
  } catch (e) {
    if (out) {
      fs.closeSync((out as { fd: number }).fd);
      discard((out as { tmp: string }).tmp);
    }
    throw e;
  }
  return {
    shards,
    frames,
    atoms,
    species: options.collectSpecies ? [...species].sort((a, b) => a - b) : null,
    sha256: hash.digest('hex'),
    bytes: offset,
    malformed,
  };
}
