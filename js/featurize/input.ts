// Input files for the CLI: a path, `-` for standard input, a pipe or FIFO
// (/dev/stdin, <(...)), or a gzip-compressed file (.xyz.gz). The readers
// need a regular, seekable file (featurize reads it twice: species, then
// features), so anything else is first streamed into a temporary file,
// decompressing gzip on the way; the file is removed when the process exits.
import { coded, rethrown } from '../errors';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';

/** A readable extxyz file and what to call it in messages. */
export interface ResolvedInput {
  /** A regular file the native readers can open. */
  path: string;
  /** The name the user gave (`-` is shown as "standard input"). */
  name: string;
  /** Removes a temporary copy (no-op for a regular file given as is). */
  cleanup(): void;
}

const GZIP = [0x1f, 0x8b];
const OTHER_COMPRESSION: Array<[string, number[], string]> = [
  ['bzip2', [0x42, 0x5a, 0x68], 'bunzip2'],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'xz -d'],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd], 'zstd -d'],
  ['zip', [0x50, 0x4b, 0x03, 0x04], 'unzip'],
];

function startsWith(head: Buffer, magic: number[]): boolean {
  return head.length >= magic.length && magic.every((b, k) => head[k] === b);
}

/** Rejects compressed formats other than gzip with the command that decompresses them, and binary data. */
function checkCompression(name: string, head: Buffer): boolean {
  if (startsWith(head, GZIP)) return true;
  for (const [format, magic, tool] of OTHER_COMPRESSION) {
    if (startsWith(head, magic)) {
      throw coded('ACDC_PARSE', `${name} is ${format}-compressed: only plain and gzip-compressed extended XYZ are read; decompress it first (${tool})`);
    }
  }
  // extended XYZ is text: a NUL byte means binary data (e.g. /dev/zero), which
  // would otherwise be read (or copied) without end
  if (head.includes(0)) throw coded('ACDC_PARSE', `${name} is not a text file (it holds NUL bytes): expected extended XYZ`);
  return false;
}

const temporaries = new Set<string>();
let hooked = false;
function temporaryFile(): string {
  const p = path.join(os.tmpdir(), `acdc-input-${process.pid}-${randomBytes(4).toString('hex')}.xyz`);
  temporaries.add(p);
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const t of temporaries) {
        try {
          fs.unlinkSync(t);
        } catch {
          // already gone
        }
      }
    });
  }
  return p;
}

function remover(p: string): () => void {
  return () => {
    temporaries.delete(p);
    try {
      fs.unlinkSync(p);
    } catch {
      // already gone
    }
  };
}

/** Reads the first bytes of a stream and gives them back with the rest. */
async function peek(stream: Readable, n: number): Promise<{ head: Buffer; rest: Readable }> {
  const chunks: Buffer[] = [];
  let length = 0;
  const iterator = stream[Symbol.asyncIterator]();
  while (length < n) {
    const { value, done } = await iterator.next();
    if (done) break;
    const chunk = Buffer.isBuffer(value) ? value : Buffer.from(value as Uint8Array);
    chunks.push(chunk);
    length += chunk.length;
  }
  const head = Buffer.concat(chunks);
  async function* all(): AsyncGenerator<Buffer> {
    if (head.length) yield head;
    for (;;) {
      const { value, done } = await iterator.next();
      if (done) return;
      yield Buffer.isBuffer(value) ? value : Buffer.from(value as Uint8Array);
    }
  }
  return { head, rest: Readable.from(all()) };
}

/**
 * Makes `file` readable by the native extxyz readers: checks that it exists
 * and is not a folder, spools standard input, pipes and gzip into a
 * temporary file, and refuses other compressed formats and empty input.
 */
export async function resolveInput(file: string): Promise<ResolvedInput> {
  const name = file === '-' ? 'standard input' : file;
  let stream: Readable | undefined;
  // /dev/stdin cannot be opened when standard input is a socket (as some
  // process managers and spawn() make it): read the stream itself
  if (file === '-' || file === '/dev/stdin' || file === '/dev/fd/0' || file === '/proc/self/fd/0') {
    stream = process.stdin;
  } else {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      throw coded('ACDC_IO', `${file}: no such file`);
    }
    if (st.isDirectory()) throw coded('ACDC_IO', `${file} is a folder, not an extended XYZ file`);
    if (st.isFile()) {
      const fd = fs.openSync(file, 'r');
      const head = Buffer.alloc(4096);
      let read = 0;
      try {
        read = fs.readSync(fd, head, 0, head.length, 0);
      } finally {
        fs.closeSync(fd);
      }
      if (read === 0) throw coded('ACDC_PARSE', `${file} is empty: no frames to read`);
      if (!checkCompression(file, head.subarray(0, read))) return { path: file, name, cleanup: () => undefined };
    }
    stream = fs.createReadStream(file);
  }
  const { head, rest } = await peek(stream, 4096);
  if (head.length === 0) throw coded('ACDC_PARSE', `${name} is empty: no frames to read`);
  const gzip = checkCompression(name, head);
  const tmp = temporaryFile();
  try {
    if (gzip) await pipeline(rest, createGunzip(), fs.createWriteStream(tmp));
    else await pipeline(rest, fs.createWriteStream(tmp));
  } catch (e) {
    remover(tmp)();
    throw rethrown(e, `${name}: ${gzip ? 'could not decompress (gzip): ' : 'could not read: '}${(e as Error).message}`, 'ACDC_IO');
  }
  if (fs.statSync(tmp).size === 0) {
    remover(tmp)();
    throw coded('ACDC_PARSE', `${name} is empty${gzip ? ' once decompressed' : ''}: no frames to read`);
  }
  return { path: tmp, name, cleanup: remover(tmp) };
}
