// `acdc serve` against hostile and careless clients, over real sockets: Host
// and Origin checks (DNS rebinding, cross-origin pages), hypers nested
// deeply, answers refused before the work when too large, a calculator with a
// large basis built off the event loop (/healthz keeps answering), a large
// JSON answer streamed, slow clients closed after the request timeout, a
// stalled upload that does not keep SIGTERM from ending the server, and
// /v1/predict under --max-memory.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LinearModel, formatXyz, readXyzSync } from 'acdc-ml';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-serve-hard-'));
const water = '3\nPBC="F F F"\nO 0 0 0\nH 0.76 0.59 0\nH -0.76 0.59 0\n';
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

async function startServer(...args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', ...args], { env: { ...process.env, ACDC_NUM_THREADS: '2' }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on http:\/\/(?:127\.0\.0\.1|\[::1\]|localhost):(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`acdc serve exited with ${code}`)));
  });
  return { child, port };
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}
function request(port: number, method: string, url: string, body?: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: url, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const error = (a: Answer) => JSON.parse(a.body.toString('utf8')) as { error: string; limit?: string };

/** Polls /healthz every 10 ms until `done` settles; the longest answer time in ms. */
async function worstHealthz(port: number, done: Promise<unknown>): Promise<number> {
  let finished = false;
  void done.finally(() => (finished = true)).catch(() => {});
  let worst = 0;
  while (!finished) {
    const t = performance.now();
    const a = await request(port, 'GET', '/healthz');
    expect(a.status).toBe(200);
    worst = Math.max(worst, performance.now() - t);
    await new Promise((r) => setTimeout(r, 10));
  }
  return worst;
}

describe('acdc serve: Host and Origin', () => {
  it('a Host that is not the bound address is refused (403) unless --allow-host names it; cross-origin pages need --cors-origin', async () => {
    const { child, port } = await startServer('--allow-host', 'acdc.internal', '--cors-origin', 'https://app.example.org');
    try {
      const ok = await request(port, 'GET', '/healthz', undefined, { host: `localhost:${port}` });
      expect(ok.status).toBe(200);
      // DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1
      const rebound = await request(port, 'POST', '/v1/featurize', water, { host: `evil.example:${port}`, 'content-type': 'text/plain' });
      expect(rebound.status).toBe(403);
      expect(error(rebound)).toMatchObject({ limit: 'host' });
      expect(error(rebound).error).toMatch(/^Host "evil\.example:\d+" is not a name of this server .*--allow-host/);
      expect((await request(port, 'GET', '/healthz', undefined, { host: 'ACDC.internal' })).status).toBe(200);
      // a simple cross-origin POST (text/plain needs no preflight) from another origin
      const cross = await request(port, 'POST', '/v1/featurize?perStructure=sum', water, { 'content-type': 'text/plain', origin: 'https://evil.example' });
      expect(cross.status).toBe(403);
      expect(error(cross)).toMatchObject({ limit: 'origin' });
      const same = await request(port, 'GET', '/healthz', undefined, { origin: `http://127.0.0.1:${port}` });
      expect(same.status).toBe(200);
      const allowed = await request(port, 'POST', '/v1/featurize?perStructure=sum', water, { 'content-type': 'text/plain', origin: 'https://app.example.org' });
      expect(allowed.status).toBe(200);
      expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example.org');
      const preflight = await request(port, 'OPTIONS', '/v1/featurize', undefined, { origin: 'https://app.example.org', 'access-control-request-method': 'POST' });
      expect(preflight.status).toBe(204);
      expect(preflight.headers['access-control-allow-methods']).toMatch(/POST/);
      const badPreflight = await request(port, 'OPTIONS', '/v1/featurize', undefined, { origin: 'https://evil.example', 'access-control-request-method': 'POST' });
      expect(badPreflight.status).toBe(403);
    } finally {
      child.kill('SIGTERM');
    }
  });
});

describe('acdc serve: requests that would freeze or outgrow the server', () => {
  let port = 0;
  let child: ChildProcess;

  it('starts', async () => {
    ({ child, port } = await startServer('--max-memory', '1G'));
  });
  afterAll(() => child?.kill('SIGTERM'));

  it('hypers nested 100 000 deep: 400 naming hypers (not 500), in JSON and in the query', async () => {
    const deep = '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000);
    const a = await request(port, 'POST', '/v1/featurize', `{"structures": ${JSON.stringify(water)}, "hypers": ${deep}}`, { 'content-type': 'application/json' });
    expect(a.status).toBe(400);
    expect(error(a)).toEqual({ error: 'hypers is nested more than 32 levels deep', limit: 'hypers' });
    const b = await request(port, 'POST', `/v1/featurize?hypers=${encodeURIComponent('['.repeat(200) + ']'.repeat(200))}`, water, { 'content-type': 'text/plain' });
    expect(b.status).toBe(400);
    expect(error(b).limit).toBe('hypers');
  });

  it('3000 species for one water molecule: 422 maxFeatures before any work, and the server stays small', async () => {
    const species = Array.from({ length: 3000 }, (_, k) => k + 1);
    const t = performance.now();
    const a = await request(port, 'POST', '/v1/featurize', JSON.stringify({ structures: water, options: { species, perStructure: 'mean' } }), { 'content-type': 'application/json' });
    const ms = performance.now() - t;
    expect(a.status).toBe(422);
    expect(error(a).limit).toBe('maxFeatures');
    expect(error(a).error).toMatch(/^the answer would hold 1 × \d+ = \d+ values, more than maxFeatures = 50000000$/);
    expect(ms).toBeLessThan(60_000); // liveness only: the computation it replaces took minutes and 4.5 GB
    expect((await request(port, 'GET', '/healthz')).status).toBe(200);
  });

  it('the refusal before the work agrees with the size after it (same columns as the answer)', async () => {
    const frames = readXyzSync(path.join(root, 'examples', 'molecules.xyz')).slice(0, 4);
    const body = formatXyz(frames);
    const a = await request(port, 'POST', '/v1/featurize?perStructure=sum', body, { 'content-type': 'text/plain', accept: 'application/octet-stream' });
    expect(a.status).toBe(200);
    const [rows, columns] = String(a.headers['x-acdc-shape']).split(',').map(Number);
    const { child: tight, port: tightPort } = await startServer('--max-features', String(rows * columns - 1));
    try {
      const b = await request(tightPort, 'POST', '/v1/featurize?perStructure=sum', body, { 'content-type': 'text/plain' });
      expect(b.status).toBe(422);
      expect(error(b).error).toBe(`the answer would hold ${rows} × ${columns} = ${rows * columns} values, more than maxFeatures = ${rows * columns - 1}`);
    } finally {
      tight.kill('SIGTERM');
    }
  });

  it('a calculator with a large basis and tight spline accuracy is built off the event loop: /healthz answers meanwhile', async () => {
    const hypers = {
      cutoff: { radius: 5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
      density: { type: 'Gaussian', width: 0.3 },
      basis: { type: 'TensorProduct', max_angular: 30, radial: { type: 'Gto', max_radial: 23 }, spline_accuracy: 1e-12 },
    };
    const work = request(port, 'POST', '/v1/featurize?perStructure=sum', JSON.stringify({ structures: water, hypers }), { 'content-type': 'application/json' });
    const worst = await worstHealthz(port, work);
    const a = await work;
    // this basis cannot reach 1e-12: a 400 naming the hypers after seconds of work
    expect(a.status).toBe(400);
    expect(error(a).error).toMatch(/^hypers: .*spline_accuracy/);
    console.log(`/healthz worst latency while the calculator was built: ${worst.toFixed(1)} ms`);
    expect(worst).toBeLessThan(2000); // liveness bound only (the build takes seconds)
  });

  it('a large per-atom JSON answer is streamed: the values are those of the .npy, and /healthz answers meanwhile', async () => {
    // 60 H atoms in a 6 Å cube (periodic) × 100 frames: 6 000 rows × 168 columns
    const frame = (seed: number) => {
      const lines = Array.from({ length: 60 }, (_, k) => `H ${((k * 7 + seed) % 60) / 10} ${((k * 13 + seed) % 60) / 10} ${((k * 31 + seed) % 60) / 10}`);
      return `60\nLattice="6 0 0 0 6 0 0 0 6" pbc="T T T"\n${lines.join('\n')}\n`;
    };
    const body = Array.from({ length: 100 }, (_, k) => frame(k)).join('');
    const npy = await request(port, 'POST', '/v1/featurize', body, { 'content-type': 'text/plain', accept: 'application/octet-stream' });
    expect(npy.status).toBe(200);
    const work = request(port, 'POST', '/v1/featurize', body, { 'content-type': 'text/plain' });
    const worst = await worstHealthz(port, work);
    const a = await work;
    expect(a.status).toBe(200);
    const answer = JSON.parse(a.body.toString('utf8')) as { shape: number[]; data: number[] };
    const [rows, columns] = answer.shape;
    expect(rows * columns).toBe(answer.data.length);
    const header = npy.body.readUInt16LE(8);
    const values = new Float64Array(new Uint8Array(npy.body.subarray(10 + header)).buffer);
    expect(values.length).toBe(answer.data.length);
    for (let k = 0; k < values.length; k++) if (values[k] !== answer.data[k]) throw new Error(`value ${k}: JSON ${answer.data[k]} vs .npy ${values[k]}`);
    console.log(`/healthz worst latency during a ${rows}×${columns} JSON answer: ${worst.toFixed(1)} ms`);
    expect(worst).toBeLessThan(5000);
  });
});

describe('acdc serve: slow clients and shutdown', () => {
  it('1000 clients that send their body slowly are closed after --request-timeout; /healthz still answers', async () => {
    const { child, port } = await startServer('--request-timeout', '1');
    try {
      const clients = 1000;
      let closed = 0;
      const sockets: net.Socket[] = [];
      await Promise.all(
        Array.from(
          { length: clients },
          () =>
            new Promise<void>((resolve) => {
              const s = net.connect(port, '127.0.0.1', () => {
                s.write(`POST /v1/featurize HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n3\n`);
                resolve();
              });
              s.on('error', () => {});
              s.on('close', () => (closed += 1));
              sockets.push(s);
            }),
        ),
      );
      // one byte every 200 ms: never idle, never done
      const drip = setInterval(() => {
        for (const s of sockets) if (!s.destroyed) s.write('H');
      }, 200);
      try {
        const t0 = performance.now();
        while (closed < clients && performance.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 100));
        const waited = (performance.now() - t0) / 1000;
        console.log(`slow clients closed: ${closed}/${clients} (${((100 * closed) / clients).toFixed(1)} %) within ${waited.toFixed(1)} s of a 1 s request timeout`);
        expect(closed).toBe(clients);
        expect((await request(port, 'GET', '/healthz')).status).toBe(200);
      } finally {
        clearInterval(drip);
        for (const s of sockets) s.destroy();
      }
    } finally {
      child.kill('SIGTERM');
    }
  }, 60_000);

  it('SIGTERM during a stalled upload ends the server promptly (exit 0)', async () => {
    const { child, port } = await startServer();
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(`POST /v1/featurize HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n3\nPBC`);
    await new Promise((r) => setTimeout(r, 300));
    const t = performance.now();
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    const code = await exited;
    const seconds = (performance.now() - t) / 1000;
    s.destroy();
    expect(code).toBe(0);
    expect(seconds).toBeLessThan(8); // the request timeout (30 s) is not waited for
  }, 30_000);
});

describe('acdc serve --model-file: /v1/predict honours --max-memory', () => {
  it('a prediction over the budget is 422 maxMemory, like /v1/featurize', async () => {
    const train = readXyzSync(path.join(root, 'test', 'fixtures', 'models', 'train.xyz'));
    const modelPath = path.join(dir, 'cu.acdc');
    const model = LinearModel.fitSync(train, {
      hypers: {
        cutoff: { radius: 4, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
        density: { type: 'Gaussian', width: 0.4 },
        basis: { type: 'TensorProduct', max_angular: 2, radial: { type: 'Gto', max_radial: 2 } },
      },
      regularizer: 1e-6,
    });
    await model.save(modelPath);
    const body = formatXyz(train.slice(0, 2));
    const { child, port } = await startServer('--model-file', modelPath, '--max-memory', '2000');
    try {
      const a = await request(port, 'POST', '/v1/predict?forces=true', body, { 'content-type': 'text/plain' });
      expect(a.status, a.body.toString()).toBe(422);
      expect(error(a).limit).toBe('maxMemory');
      expect(error(a).error).toMatch(/memory budget/);
      const b = await request(port, 'POST', '/v1/featurize?perStructure=sum', body, { 'content-type': 'text/plain' });
      expect(b.status).toBe(422);
      expect(error(b).limit).toBe('maxMemory');
    } finally {
      child.kill('SIGTERM');
    }
  });
});
