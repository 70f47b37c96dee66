// The i-PI driver against servers that misbehave at the socket level: one
// that floods STATUS and never reads the replies (the driver must stop
// reading and give up with a clear error, not buffer without bound), and one
// that pipelines garbage after GETFORCE (the reply already started must reach
// the server whole).
import { describe, expect, it } from 'vitest';
import { driveIpi, type IpiModel } from 'acdc-ml';
import { HDR, i32, listen, listenUnix, statusFlood } from './ipi_peer';

/** POSDATA for `n` atoms on a line, 3 Bohr apart, in a large cubic cell. */
function posdata(n: number): Buffer {
  const L = 1e4;
  const b = Buffer.alloc(12 + 144 + 4 + 24 * n);
  HDR('POSDATA').copy(b, 0);
  for (let k = 0; k < 9; k++) {
    b.writeDoubleLE(k % 4 === 0 ? L : 0, 12 + 8 * k);
    b.writeDoubleLE(k % 4 === 0 ? 1 / L : 0, 12 + 72 + 8 * k);
  }
  b.writeInt32LE(n, 156);
  for (let i = 0; i < n; i++) b.writeDoubleLE(3 * i, 160 + 24 * i);
  return b;
}

/** A model that answers zeros at once (the test is about the socket, not the numbers). */
const zeros: IpiModel = {
  species: [29],
  predict: (systems) => ({
    energy: [0],
    forces: [new Float64Array(3 * systems[0].size)],
    stress: [new Float64Array(9)],
  }),
};

describe('i-PI driver backpressure and whole replies', () => {
  it('a server that floods STATUS and never reads: the driver stops reading and fails naming the server', async () => {
    const flood = statusFlood(64 << 20);
    const srv = await listenUnix(flood.onSocket);
    try {
      const error = await driveIpi(zeros, { unix: srv.path, timeout: 2 }).then(
        () => null,
        (e: Error) => e,
      );
      flood.stop();
      expect(error?.message).toMatch(/i-PI server at unix socket \S+ does not read the replies: \d+ bytes unread for 2 s/);
      // what the server could push is bounded by the driver's high-water
      // marks (1 MiB each way) and the sockets' kernel buffers (well under
      // 1 MiB each for unix sockets): far below the cap
      expect(flood.written()).toBeLessThan(8 << 20);
    } finally {
      flood.stop();
      srv.close();
    }
  }, 60_000);

  it('GETFORCE pipelined with garbage: the FORCEREADY already started reaches a slow reader whole', async () => {
    const n = 20_000;
    const replyBytes = 12 + 8 + 4 + 24 * n + 72 + 4;
    let received = 0;
    let ended!: () => void;
    const closed = new Promise<void>((r) => (ended = r));
    const srv = await listen((socket) => {
      socket.on('error', () => ended());
      socket.pause();
      socket.write(Buffer.concat([HDR('INIT'), i32(0), i32(0), posdata(n), HDR('GETFORCE'), Buffer.from('GARBAGE!!!!!')]));
      // read only after the driver met the garbage
      setTimeout(() => {
        socket.on('data', (d: Buffer) => (received += d.length));
        socket.resume();
      }, 500);
      socket.on('close', () => ended());
    });
    try {
      const error = await driveIpi(zeros, { host: '127.0.0.1', port: srv.port, timeout: 10 }).then(
        () => null,
        (e: Error) => e,
      );
      expect(error?.message).toMatch(/malformed message from the server: header "GARBAGE!!!!!"/);
      await closed;
      expect(received).toBe(replyBytes);
    } finally {
      srv.close();
    }
  }, 60_000);

  it('replies the server has not read yet are delivered intact while later steps are computed (no reply Buffer reused in flight)', async () => {
    // 2 000 atoms: 48 kB replies, so a few fill the unix socket's kernel
    // buffer and the rest wait in the driver while it answers the next steps
    const n = 2000;
    const steps = 12;
    const factor = 0.019446904; // Hartree/Bohr per eV/Å, to 8 digits
    // forces = positions (eV/Å = Å), so each reply names the step it answers
    const echo: IpiModel = {
      species: [29],
      predict: (systems) => ({ energy: [0], forces: [Float64Array.from(systems[0].positions)], stress: [new Float64Array(9)] }),
    };
    const message = (step: number) => {
      const b = posdata(n);
      for (let i = 0; i < 3 * n; i++) b.writeDoubleLE(1000 * step + i + 1, 160 + 8 * i);
      return Buffer.concat([b, HDR('GETFORCE')]);
    };
    let data = Buffer.alloc(0);
    const replyBytes = 12 + 8 + 4 + 24 * n + 72 + 4;
    const srv = await listenUnix((socket) => {
      socket.on('error', () => {});
      socket.pause();
      socket.write(Buffer.concat([HDR('INIT'), i32(0), i32(0), ...Array.from({ length: steps }, (_, k) => message(k))]));
      // read only once every request was sent and some replies wait in the driver
      setTimeout(() => {
        socket.on('data', (d: Buffer) => {
          data = Buffer.concat([data, d]);
          if (data.length === steps * replyBytes) socket.write(HDR('EXIT'));
        });
        socket.resume();
      }, 500);
    });
    try {
      const result = await driveIpi(echo, { unix: srv.path, timeout: 10 });
      expect(result.steps).toBe(steps);
    } finally {
      srv.close();
    }
    expect(data.length).toBe(steps * replyBytes);
    for (let k = 0; k < steps; k++) {
      const at = k * replyBytes;
      expect(data.subarray(at, at + 12).toString('ascii')).toBe('FORCEREADY  ');
      expect(data.readInt32LE(at + 20)).toBe(n);
      for (const i of [0, 1, 3 * n - 1]) {
        // Bohr → Å → Hartree/Bohr: (1000 k + i + 1) Bohr times the force factor
        expect(data.readDoubleLE(at + 24 + 8 * i) / (1000 * k + i + 1) / 0.52917721 / factor).toBeCloseTo(1, 6);
      }
    }
  }, 60_000);
});
