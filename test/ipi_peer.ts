// The server side of the i-PI protocol, for the driver's tests: message
// encoders, a scripted peer (exact reads, writes split at chosen byte
// counts, every byte received kept), one-connection servers on a free
// loopback port or a unix socket, and a server that floods STATUS without
// ever reading a reply. Every byte a fake server sends is chosen by the test.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'vitest';
import { IPI_UNITS } from 'acdc-ml';

/** A 12-byte message header, space padded. */
export const HDR = (name: string) => Buffer.from(name.padEnd(12, ' '), 'ascii');

/** One little-endian int32. */
export const i32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
};

/** Little-endian float64 values. */
export const f64 = (values: number[]) => {
  const b = Buffer.alloc(8 * values.length);
  values.forEach((v, k) => b.writeDoubleLE(v, 8 * k));
  return b;
};

/**
 * POSDATA for a cell (rows = vectors, Å) and positions (Å), in Bohr as i-PI
 * sends them: h with the vectors as columns, and the inverse of h as if it
 * were upper triangular (i-PI's cells are; the driver never reads the inverse).
 */
export function posdata(cell: number[], positions: number[]): Buffer {
  const B = IPI_UNITS.bohrPerAngstrom;
  const h = [cell[0], cell[3], cell[6], cell[1], cell[4], cell[7], cell[2], cell[5], cell[8]].map((v) => v * B);
  const hinv = [1 / h[0], -h[1] / (h[0] * h[4]), (h[1] * h[5] - h[2] * h[4]) / (h[0] * h[4] * h[8]), 0, 1 / h[4], -h[5] / (h[4] * h[8]), 0, 0, 1 / h[8]];
  return Buffer.concat([HDR('POSDATA'), f64(h), f64(hinv), i32(positions.length / 3), f64(positions.map((v) => v * B))]);
}

/** A FORCEREADY reply, decoded: energy (Ha), forces (Ha/Bohr), virial (Ha), extra string. */
export interface ForceReady {
  energy: number;
  nat: number;
  forces: number[];
  virial: number[];
  extra: string;
}

/** The server side of one connection: exact reads; writes split at chosen byte counts; every byte received kept. */
export class Peer {
  private data = Buffer.alloc(0);
  /** Every chunk received, in order. */
  received: Buffer[] = [];
  private wake: (() => void) | null = null;
  closed = false;
  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.received.push(d);
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => {});
  }
  async read(n: number): Promise<Buffer> {
    while (this.data.length < n) {
      if (this.closed) throw new Error(`fake server: connection closed with ${this.data.length} of ${n} bytes`);
      await new Promise<void>((r) => (this.wake = r));
    }
    const out = this.data.subarray(0, n);
    this.data = this.data.subarray(n);
    return out;
  }
  /** Bytes received and not read. */
  get pending(): number {
    return this.data.length;
  }
  /** Writes `bytes` in pieces of the given sizes (cycled), a macrotask apart; stops if the socket is gone. */
  async send(bytes: Buffer, pieces: number[] = [bytes.length]): Promise<void> {
    let at = 0;
    for (let k = 0; at < bytes.length; k++) {
      const n = pieces[k % pieces.length];
      if (this.socket.destroyed) return;
      this.socket.write(bytes.subarray(at, at + n));
      at += n;
      await new Promise((r) => setTimeout(r, 1));
    }
  }
  async status(): Promise<string> {
    await this.send(HDR('STATUS'));
    return (await this.read(12)).toString('ascii');
  }
  /** A whole FORCEREADY reply, as bytes. */
  async forcereadyBytes(): Promise<Buffer> {
    const head = await this.read(12 + 8 + 4);
    expect(head.subarray(0, 12).toString('ascii')).toBe('FORCEREADY  ');
    const nat = head.readInt32LE(20);
    const body = await this.read(24 * nat + 72 + 4);
    const extra = await this.read(body.readInt32LE(body.length - 4));
    return Buffer.concat([head, body, extra]);
  }
  /** A whole FORCEREADY reply, decoded. */
  async forceready(): Promise<ForceReady> {
    const b = await this.forcereadyBytes();
    const nat = b.readInt32LE(20);
    const forces = Array.from({ length: 3 * nat }, (_, k) => b.readDoubleLE(24 + 8 * k));
    const at = 24 + 24 * nat;
    const virial = Array.from({ length: 9 }, (_, k) => b.readDoubleLE(at + 8 * k));
    const extra = b.subarray(at + 72 + 4).toString('utf8');
    return { energy: b.readDoubleLE(12), nat, forces, virial, extra };
  }
}

/** A TCP server on a free loopback port. */
export async function listen(onSocket: (s: net.Socket) => void): Promise<{ port: number; close: () => void }> {
  const server = net.createServer(onSocket);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

/** A unix-socket server in a fresh temporary folder (removed by `close`). */
export async function listenUnix(onSocket: (s: net.Socket) => void): Promise<{ path: string; close: () => void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-ipi-test-'));
  const where = path.join(dir, 'socket');
  const server = net.createServer(onSocket);
  await new Promise<void>((r) => server.listen(where, r));
  return { path: where, close: () => (server.close(), fs.rmSync(dir, { recursive: true, force: true })) };
}

/** A one-connection TCP server on a free loopback port running `script`; `peers` holds the connection's peer once it comes. */
export async function fakeServer(script: (peer: Peer) => Promise<void>): Promise<{ port: number; done: Promise<void>; peers: Peer[]; close: () => void }> {
  let finish!: (v: void) => void;
  let fail!: (e: unknown) => void;
  const done = new Promise<void>((res, rej) => ((finish = res), (fail = rej)));
  const peers: Peer[] = [];
  const srv = await listen((socket) => {
    const peer = new Peer(socket);
    peers.push(peer);
    script(peer).then(finish, fail);
  });
  return { ...srv, done, peers };
}

/** A loopback port free now (a server opened on it and closed again): nobody listens there. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * A server that sends INIT and then STATUS without end, never reading a
 * reply, until `cap` bytes are written or `stop()` is called: the driver
 * must stop reading and give up, not buffer without bound.
 */
export function statusFlood(cap: number): { onSocket: (socket: net.Socket) => void; written: () => number; stop: () => void } {
  let written = 0;
  let stopped = false;
  const onSocket = (socket: net.Socket) => {
    socket.on('error', () => {});
    socket.pause(); // never reads a reply
    const flood = Buffer.concat(Array.from({ length: 4096 }, () => HDR('STATUS')));
    const pump = () => {
      while (!stopped && written < cap) {
        written += flood.length;
        if (!socket.write(flood)) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    socket.write(Buffer.concat([HDR('INIT'), i32(0), i32(0)]));
    pump();
  };
  return { onSocket, written: () => written, stop: () => (stopped = true) };
}
