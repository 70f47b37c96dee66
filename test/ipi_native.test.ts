// The native i-PI loop (driveIpi `loop: 'native'`, a thread of the binding
// owning the socket) against the JavaScript loop: the same bytes back for
// the same conversation, the same errors for malformed and hostile
// messages, EXIT and aborts settle the Promise, nothing crashes the process.
import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { driveIpi, loadModelSync, IPI_UNITS, type DriveIpiOptions, type IpiModel } from 'acdc-ml';
import { HDR, f64, fakeServer, freePort, i32, listenUnix, posdata, statusFlood, type Peer } from './ipi_peer';
import { run } from './spawn_helpers';

const model = loadModelSync(path.join(__dirname, '..', 'examples', 'ipi', 'cu.acdc'));

const cell = [6, 0, 0, 0.5, 6.2, 0, -0.3, 0.4, 5.8];
const positions = [0, 0, 0, 1.9, 1.7, 0.1, 0.2, 2.0, 1.8, 2.1, -0.1, 1.9];
const moved = positions.map((v, k) => v + 0.013 * Math.sin(3 * k));

type Outcome = { resolved: { steps: number; loop: string } } | { error: { message: string; code: unknown; name: string } };

/** Runs `script` as the server of one connection against driveIpi with `loop`. */
async function converse(loop: 'native' | 'js', script: (peer: Peer) => Promise<void>, options: Partial<DriveIpiOptions> = {}, m: IpiModel = model): Promise<{ outcome: Outcome; received: Buffer }> {
  const srv = await fakeServer(script);
  try {
    const outcome: Outcome = await driveIpi(m, { host: '127.0.0.1', port: srv.port, species: [29, 29, 29, 29], timeout: 5, loop, ...options }).then(
      (r) => ({ resolved: { steps: r.steps, loop: r.loop } }),
      (e: Error & { code?: unknown }) => ({ error: { message: e.message, code: e.code, name: e.name } }),
    );
    await srv.done.catch(() => {});
    // what the driver wrote after the script ended (nothing, when all is well)
    await new Promise((r) => setTimeout(r, 20));
    return { outcome, received: Buffer.concat(srv.peers.flatMap((p) => p.received)) };
  } finally {
    srv.close();
  }
}

/** The same script against both loops. */
async function both(script: (peer: Peer) => Promise<void>, options: Partial<DriveIpiOptions> = {}) {
  const native = await converse('native', script, options);
  const js = await converse('js', script, options);
  return { native, js };
}

describe('the native i-PI loop', () => {
  it("sends the same bytes as the JavaScript loop: NEEDINIT/READY/HAVEDATA, replies (periodic, moved, open cell), variance; EXIT resolves", async () => {
    const script = async (peer: Peer) => {
      await peer.status();
      await peer.send(Buffer.concat([HDR('INIT'), i32(0), i32(3), Buffer.from('abc')]), [5, 3, 7]);
      await peer.status();
      // consolidated, split at odd offsets
      await peer.send(Buffer.concat([posdata(cell, positions), HDR('GETFORCE')]), [1, 7, 13, 5, 29]);
      await peer.forcereadyBytes();
      await peer.status();
      // classic: POSDATA, STATUS → HAVEDATA, GETFORCE
      await peer.send(posdata(cell, moved), [3]);
      await peer.status();
      await peer.status();
      await peer.send(HDR('GETFORCE'), [11, 1]);
      await peer.forcereadyBytes();
      // no cell (non-periodic: zero virial)
      await peer.send(Buffer.concat([posdata(new Array(9).fill(0), moved), HDR('GETFORCE')]));
      await peer.forcereadyBytes();
      await peer.send(HDR('EXIT'), [5]);
    };
    for (const variance of [false, true]) {
      const { native, js } = await both(script, { variance });
      expect(native.outcome).toEqual({ resolved: { steps: 3, loop: 'native' } });
      expect(js.outcome).toEqual({ resolved: { steps: 3, loop: 'js' } });
      expect(native.received.length).toBeGreaterThan(3 * (12 + 8 + 4 + 24 * 4 + 72 + 4));
      expect(native.received.equals(js.received)).toBe(true);
      if (variance) expect(native.received.toString('latin1')).toMatch(/\{"energy_variance":[0-9.e+-]+\}/);
    }
  });

  it('replies equal the model evaluated directly (Å, eV → Bohr, Hartree)', async () => {
    let reply: Buffer = Buffer.alloc(0);
    const { outcome } = await converse('native', async (peer) => {
      await peer.send(Buffer.concat([posdata(cell, positions), HDR('GETFORCE')]));
      reply = await peer.forcereadyBytes();
      await peer.send(HDR('EXIT'));
    });
    expect(outcome).toEqual({ resolved: { steps: 1, loop: 'native' } });
    const { System } = await import('acdc-ml');
    // the positions as the driver decodes them (Bohr → Å)
    const B = IPI_UNITS.bohrPerAngstrom;
    const s = new System({ types: [29, 29, 29, 29], positions: positions.map((v) => (v * B) / B), cell: cell.map((v) => (v * B) / B), pbc: true });
    const p = model.predictSync([s], { forces: true, stress: true });
    expect(reply.readDoubleLE(12)).toBe(p.energy[0] * IPI_UNITS.hartreePerEv);
    for (let k = 0; k < 12; k++) expect(reply.readDoubleLE(24 + 8 * k)).toBe(p.forces![0][k] * IPI_UNITS.forcePerEvPerAngstrom);
  });

  it('malformed and hostile messages: the same errors (code and message) as the JavaScript loop, no crash, no huge allocation', async () => {
    const cases: [string, (peer: Peer) => Promise<void>, Partial<DriveIpiOptions>?][] = [
      ['garbage header', (peer) => peer.send(Buffer.from('HELLO WORLD!'))],
      ['binary header', (peer) => peer.send(Buffer.from([0xff, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]))],
      ['lower case', (peer) => peer.send(Buffer.from('status      '))],
      ['NUL-padded EXIT then garbage', (peer) => peer.send(Buffer.from('EXIT \0 \0\0\0\0\0'))],
      ['negative INIT length', (peer) => peer.send(Buffer.concat([HDR('INIT'), i32(0), i32(-5)]))],
      ['huge INIT length', (peer) => peer.send(Buffer.concat([HDR('INIT'), i32(0), i32(0x7fffffff)]))],
      ['INIT string cut short', async (peer) => {
        await peer.send(Buffer.concat([HDR('INIT'), i32(0), i32(1 << 20), Buffer.alloc(1000)]));
        peer.socket.destroy();
      }],
      ['negative atom count', (peer) => peer.send(Buffer.concat([HDR('POSDATA'), f64(new Array(18).fill(1)), i32(-1)]))],
      ['atom count past the limit', (peer) => peer.send(Buffer.concat([HDR('POSDATA'), f64(new Array(18).fill(1)), i32(0x7fffffff)]))],
      ['50 M atoms announced, then a close', async (peer) => {
        await peer.send(Buffer.concat([HDR('POSDATA'), f64(new Array(18).fill(1)), i32(50_000_000), Buffer.alloc(4096)]));
        peer.socket.destroy();
      }, { species: undefined }],
      ['GETFORCE first', (peer) => peer.send(HDR('GETFORCE'))],
      ['NaN position', (peer) => peer.send(posdata(cell, positions.map((v, k) => (k === 7 ? NaN : v))))],
      ['infinite cell', (peer) => peer.send(posdata(cell.map((v, k) => (k === 4 ? Infinity : v)), positions))],
      ['species mismatch', (peer) => peer.send(posdata(cell, positions)), { species: [29, 29, 29] }],
      ['atoms change', async (peer) => {
        await peer.send(Buffer.concat([posdata(cell, positions), HDR('GETFORCE')]));
        await peer.forcereadyBytes();
        await peer.send(posdata(cell, [...positions, 1, 1, 1]));
      }, { species: undefined }],
      ['disconnect mid-step', async (peer) => {
        await peer.send(posdata(cell, positions));
        peer.socket.destroy();
      }],
      ['disconnect mid-message', async (peer) => {
        await peer.send(posdata(cell, positions).subarray(0, 12 + 144 + 2));
        peer.socket.destroy();
      }],
      ['close after a step', async (peer) => {
        await peer.send(Buffer.concat([posdata(cell, positions), HDR('GETFORCE')]));
        await peer.forcereadyBytes();
        peer.socket.end();
      }],
      ['close after a step, exitOnClose', async (peer) => {
        await peer.send(Buffer.concat([posdata(cell, positions), HDR('GETFORCE')]));
        await peer.forcereadyBytes();
        peer.socket.end();
      }, { exitOnClose: true }],
      ['half a header, then a close, exitOnClose', async (peer) => {
        await peer.send(Buffer.concat([posdata(cell, positions), HDR('GETFORCE')]));
        await peer.forcereadyBytes();
        await peer.send(Buffer.from('STAT'));
        peer.socket.end();
      }, { exitOnClose: true }],
      ['EXIT in the middle of a step', async (peer) => {
        await peer.send(Buffer.concat([posdata(cell, positions), HDR('EXIT')]));
      }],
      ['silent server', async () => {}, { timeout: 0.3 }],
    ];
    for (const [name, script, options] of cases) {
      const { native, js } = await both(script, options ?? {});
      // the servers listen on different ports; the loop is named; the JS
      // loop names the header it waited for only when the close came while
      // it waited (not while the model ran), the native loop always does
      const same = (o: Outcome) =>
        JSON.parse(
          JSON.stringify(o)
            .replace(/127\.0\.0\.1:\d+/g, 'ADDRESS')
            .replace(/"loop":"(native|js)"/, '"loop":"either"')
            .replace(' (while waiting for a message header)', ''),
        ) as Outcome;
      expect({ name, ...same(native.outcome) }).toEqual({ name, ...same(js.outcome) });
      expect(native.received.equals(js.received)).toBe(true);
    }
  }, 60_000);

  it('a server that floods STATUS and never reads: the native loop stops reading and fails naming the server', async () => {
    const flood = statusFlood(64 << 20);
    const srv = await listenUnix(flood.onSocket);
    try {
      const error = await driveIpi(model, { unix: srv.path, timeout: 2, species: [29], loop: 'native' }).then(
        () => null,
        (e: Error) => e,
      );
      flood.stop();
      expect(error?.message).toMatch(/i-PI server at unix socket \S+ does not read the replies: a 12-byte reply could not be written for 2 s/);
      // the native loop reads no further while a write waits: what the server
      // pushed is bounded by the kernel's socket buffers
      expect(flood.written()).toBeLessThan(8 << 20);
    } finally {
      flood.stop();
      srv.close();
    }
  }, 60_000);

  it('a singular cell after valid steps is an error naming the cell', async () => {
    const singular = [6, 0, 0, 6, 3e-10, 0, 0, 0, 6];
    const { outcome } = await converse('native', async (peer) => {
      await peer.send(Buffer.concat([posdata(cell, positions), HDR('GETFORCE')]));
      await peer.forcereadyBytes();
      await peer.send(posdata(singular, positions));
    });
    expect('error' in outcome && outcome.error.message).toMatch(/cell is singular/);
  });

  it('an abort while waiting for the server rejects with an AbortError; so does one before the start', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const t = Date.now();
    const { outcome } = await converse('native', async () => {}, { signal: controller.signal, timeout: 30 });
    expect('error' in outcome && outcome.error.name).toBe('AbortError');
    expect(Date.now() - t).toBeLessThan(10_000);
    const before = await driveIpi(model, { host: '127.0.0.1', port: 1, species: [29], loop: 'native', signal: AbortSignal.abort() }).catch((e: Error) => e);
    expect(before instanceof Error && before.name).toBe('AbortError');
  });

  it('nobody listening: connection refused after the retry window, naming the address', async () => {
    const port = await freePort();
    await expect(driveIpi(model, { host: '127.0.0.1', port, species: [29], timeout: 0.3, loop: 'native' })).rejects.toThrow(
      new RegExp(`cannot connect to the i-PI server at 127.0.0.1:${port}: .*ECONNREFUSED.*retried for 0.3 s`),
    );
  });

  it("'auto' picks the native loop for acdc's models without onStep, the JavaScript one otherwise; 'native' needs one of acdc's models", async () => {
    const script = async (peer: Peer) => {
      await peer.send(Buffer.concat([posdata(cell, positions), HDR('GETFORCE')]));
      await peer.forcereadyBytes();
      await peer.send(HDR('EXIT'));
    };
    const run = (options: Partial<DriveIpiOptions>, m: IpiModel = model) => converse(undefined as never, script, { loop: undefined, ...options }, m);
    expect((await run({})).outcome).toEqual({ resolved: { steps: 1, loop: 'native' } });
    expect((await run({ onStep: () => {} })).outcome).toEqual({ resolved: { steps: 1, loop: 'js' } });
    expect((await run({ compute: 'sync' })).outcome).toEqual({ resolved: { steps: 1, loop: 'js' } });
    // a model object that wraps acdc's: the JavaScript loop calls its predict
    const wrapped: IpiModel = { species: [29], predict: (s, o) => model.predict(s, o) };
    expect((await run({}, wrapped)).outcome).toEqual({ resolved: { steps: 1, loop: 'js' } });
    await expect(driveIpi(wrapped, { unix: 'x', loop: 'native' })).rejects.toThrow(/loop 'native' needs one of acdc's models/);
    await expect(driveIpi(model, { unix: 'x', loop: 'native', onStep: () => {} })).rejects.toThrow(/does not call onStep/);
    await expect(driveIpi(model, { unix: 'x', loop: 'native', compute: 'async' })).rejects.toThrow(/applies to loop 'js' only/);
    await expect(driveIpi(model, { unix: 'x', loop: 'fast' as never })).rejects.toThrow(/loop must be 'auto', 'native' or 'js', got "fast"/);
  });

  it('acdc drive --loop: native and js send the same bytes (--json names the loop); a bad value is a usage error', async () => {
    const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
    const modelFile = path.join(__dirname, '..', 'examples', 'ipi', 'cu.acdc');
    const bad = await run(process.execPath, [cli, 'drive', modelFile, '--unix', 'a', '--loop', 'fast'], { timeout: 30_000 });
    expect(bad.status, bad.stderr).toBe(2);
    expect(bad.stderr).toMatch(/expected one of auto, native, js, got "fast"/);
    const received: Buffer[] = [];
    for (const loop of ['native', 'js']) {
      const srv = await fakeServer(async (peer) => {
        await peer.status();
        await peer.send(Buffer.concat([posdata(cell, positions), HDR('GETFORCE')]));
        await peer.forcereadyBytes();
        await peer.send(HDR('EXIT'));
      });
      try {
        const r = await run(process.execPath, [cli, 'drive', modelFile, '--inet', `127.0.0.1:${srv.port}`, '--timeout', '10', '--loop', loop, '--json'], { timeout: 30_000 });
        expect(r.status, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout)).toMatchObject({ steps: 1, loop });
        await srv.done;
        received.push(Buffer.concat(srv.peers.flatMap((p) => p.received)));
      } finally {
        srv.close();
      }
    }
    expect(received[0].length).toBe(12 + 12 + 8 + 4 + 24 * 4 + 72 + 4);
    expect(received[0].equals(received[1])).toBe(true);
  });
});
