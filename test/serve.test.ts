// `acdc serve` through real HTTP requests on a free loopback port: the .npy
// bytes it answers are those `acdc featurize` writes (and the values those of
// the library), concurrent requests agree, bad and oversize inputs get a JSON
// error naming the field or limit, a full queue answers 503, a disconnected
// client frees its slot, and /healthz and /metrics answer.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Labels, LinearModel, SoapPowerSpectrum, formatXyz, loadModel, readXyzSync } from 'acdc-ml';
import { run } from './spawn_helpers';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const example = path.join(root, 'examples', 'molecules.xyz');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-serve-test-'));
const frames = readXyzSync(example);
const small = formatXyz(frames.slice(0, 8));
const smallFile = path.join(dir, 'small.xyz');
fs.writeFileSync(smallFile, small);

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

let port = 0;
function request(method: string, url: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: url, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}
const xyz = (body: string, query = '', accept = 'application/octet-stream') =>
  request('POST', `/v1/featurize${query}`, body, { 'content-type': 'text/plain', accept });
const json = (body: unknown, query = '') => request('POST', `/v1/featurize${query}`, JSON.stringify(body), { 'content-type': 'application/json' });
const error = (a: Answer) => JSON.parse(a.body.toString('utf8')) as { error: string; limit?: string };

let server: ChildProcess;
async function startServer(...args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', ...args], { env: { ...process.env, ACDC_NUM_THREADS: '2' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const p = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`acdc serve exited with ${code}`)));
  });
  return { child, port: p };
}

/** What `acdc featurize` writes for the same input and options. */
async function cliFeatures(file: string, ...options: string[]): Promise<{ npy: Buffer; labels: string }> {
  const out = path.join(dir, `cli-${options.join('_').replace(/[^a-z0-9_]/gi, '')}.npy`);
  const r = await run(process.execPath, [cli, 'featurize', file, '--out', out, ...options]);
  expect(r.status, r.stderr).toBe(0);
  return { npy: fs.readFileSync(out), labels: fs.readFileSync(`${out}.labels.json`, 'utf8') };
}

describe('acdc serve', () => {
  beforeAll(async () => {
    const s = await startServer('--max-body', '200000', '--max-atoms', '2000', '--max-features', '100000', '--concurrency', '2', '--queue-size', '2');
    server = s.child;
    port = s.port;
  });
  afterAll(() => {
    server?.kill('SIGTERM');
  });

  it('POST extended XYZ → the .npy bytes acdc featurize writes; the values are the library design matrix', async () => {
    const a = await xyz(small, '?perStructure=species-mean');
    expect(a.status, a.body.toString()).toBe(200);
    expect(a.headers['content-type']).toBe('application/octet-stream');
    const want = await cliFeatures(smallFile, '--per-structure', 'species-mean');
    expect(a.body.equals(want.npy)).toBe(true);
    expect(a.headers['x-acdc-shape']).toBe(`8,${JSON.parse(want.labels).columns.values.length}`);
    expect(a.headers['x-acdc-dtype']).toBe('float64');
    expect(a.headers['x-acdc-row-names']).toBe(JSON.parse(want.labels).rows.names.join(','));
    expect(a.headers['x-acdc-column-names']).toBe(JSON.parse(want.labels).columns.names.join(','));
    expect(a.headers['x-acdc-column-names']).toBe('center_type,neighbor_1_type,neighbor_2_type,l,n_1,n_2');
    // the values, independently: the library's species-mean design matrix
    const systems = frames.slice(0, 8);
    const species = [...new Set(systems.flatMap((f) => Array.from(f.types)))].sort((x, y) => x - y);
    const pairs: number[][] = [];
    for (const c of species) for (const x of species) for (const y of species) if (x <= y) pairs.push([c, x, y]);
    const hypers = {
      cutoff: { radius: 5, smoothing: { type: 'ShiftedCosine' as const, width: 0.5 } },
      density: { type: 'Gaussian' as const, width: 0.3 },
      basis: { type: 'TensorProduct' as const, max_angular: 6, radial: { type: 'Gto' as const, max_radial: 7 } },
    };
    const design = new SoapPowerSpectrum(hypers)
      .computeSync(systems)
      .meanOverSamples('atom')
      .keysToProperties(new Labels(['center_type', 'neighbor_1_type', 'neighbor_2_type'], pairs))
      .toArray();
    const offset = 10 + a.body.readUInt16LE(8);
    const got = new Float64Array(new Uint8Array(a.body.subarray(offset)).buffer);
    expect(got.length).toBe(design.data.length);
    let err = 0;
    for (let i = 0; i < got.length; i++) err = Math.max(err, Math.abs(got[i] - design.data[i]));
    expect(err).toBeLessThan(1e-12);
  });

  it('multipart/mixed carries the .npy and its .labels.json; JSON carries values and labels; JSON structures give the same bytes', async () => {
    const want = await cliFeatures(smallFile, '--calculator', 'soap_radial_spectrum', '--dtype', 'float32');
    const m = await xyz(small, '?calculator=soap_radial_spectrum&dtype=float32', 'multipart/mixed');
    expect(m.status).toBe(200);
    const boundary = /boundary=(\S+)/.exec(String(m.headers['content-type']))![1];
    const parts = m.body.toString('latin1').split(`--${boundary}`);
    expect(parts).toHaveLength(4);
    const body = (part: string) => Buffer.from(part.slice(part.indexOf('\r\n\r\n') + 4, -2), 'latin1');
    expect(body(parts[1]).equals(want.npy)).toBe(true);
    const labels = JSON.parse(body(parts[2]).toString('utf8'));
    expect(labels.columns).toEqual(JSON.parse(want.labels).columns);
    expect(labels.rows).toEqual(JSON.parse(want.labels).rows);

    const j = await json({ structures: small, options: { calculator: 'soap_radial_spectrum', dtype: 'float32' } });
    expect(j.status).toBe(200);
    const parsed = JSON.parse(j.body.toString('utf8'));
    const atoms = frames.slice(0, 8).reduce((n, f) => n + f.size, 0);
    expect(parsed.shape).toEqual([atoms, labels.columns.values.length]);
    expect(parsed.rows).toEqual(labels.rows);
    const f32 = new Float32Array(new Uint8Array(want.npy.subarray(10 + want.npy.readUInt16LE(8))).buffer);
    expect(parsed.data).toEqual(Array.from(f32));

    const structures = frames.slice(0, 8).map((f) => ({ types: Array.from(f.types), positions: Array.from(f.positions), cell: Array.from(f.cell), pbc: f.pbc }));
    const s = await request('POST', '/v1/featurize', JSON.stringify({ structures, options: { calculator: 'soap_radial_spectrum', dtype: 'float32' } }), {
      'content-type': 'application/json',
      accept: 'application/octet-stream',
    });
    expect(s.status, s.body.toString()).toBe(200);
    expect(s.body.equals(want.npy)).toBe(true);
  });

  it('concurrent requests (more than the concurrency cap) all answer the same bytes', async () => {
    const want = await cliFeatures(smallFile, '--per-structure', 'mean');
    const answers = await Promise.all(Array.from({ length: 4 }, () => xyz(small, '?per_structure=mean')));
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.body.equals(want.npy)).toBe(true);
    }
    // answers of two sizes interleaved, 2 running and 2 waiting (the server reuses its answer
    // buffers): each is exactly its own bytes, nothing of another answer
    const three = formatXyz(frames.slice(0, 3));
    const threeFile = path.join(dir, 'three.xyz');
    fs.writeFileSync(threeFile, three);
    const wantThree = await cliFeatures(threeFile, '--per-structure', 'sum');
    const mixed = await Promise.all(Array.from({ length: 4 }, (_, k) => (k % 2 === 0 ? xyz(small, '?per_structure=mean') : xyz(three, '?perStructure=sum'))));
    for (const [k, a] of mixed.entries()) {
      expect(a.status).toBe(200);
      expect(a.body.equals(k % 2 === 0 ? want.npy : wantThree.npy)).toBe(true);
    }
  });

  it('per atom, species fixed, and a calculator without design rows (through a file): the bytes acdc featurize writes', async () => {
    const perAtom = await cliFeatures(smallFile, '--calculator', 'soap_radial_spectrum', '--species', '1,6,7,8,9');
    const a = await xyz(small, '?calculator=soap_radial_spectrum&species=9,8,7,6,1');
    expect(a.status, a.body.toString()).toBe(200);
    expect(a.body.equals(perAtom.npy)).toBe(true);
    const cmHypers = path.join(dir, 'cm.json');
    fs.writeFileSync(cmHypers, JSON.stringify({ n_atoms_max: 30 }));
    const sf = await cliFeatures(smallFile, '--calculator', 'coulomb_matrix', '--hypers', cmHypers);
    const b = await xyz(small, `?calculator=coulomb_matrix&hypers=${encodeURIComponent(JSON.stringify({ n_atoms_max: 30 }))}`);
    expect(b.status, b.body.toString()).toBe(200);
    expect(b.body.equals(sf.npy)).toBe(true);
    // a broken atom line in the second frame: 400 naming the body and the line
    const lines = small.split('\n');
    const second = Number(lines[0]) + 2;
    lines[second + 2] = 'H 0.0 zero 0.0';
    const c = await xyz(lines.join('\n'));
    expect(c.status).toBe(400);
    expect(error(c)).toMatchObject({ limit: 'body' });
    expect(error(c).error).toMatch(new RegExp(`^body: parse error at line ${second + 3}\\b`));
  });

  it('bad input: 400 with a JSON error naming the field; nothing crashes', async () => {
    const cases: Array<[Promise<Answer>, RegExp, string]> = [
      [xyz('garbage\n'), /^body: parse error at line 1: expected the number of atoms/, 'body'],
      [xyz('  \n'), /extended XYZ body is empty/, 'body'],
      [xyz(small, '?calculator=nope'), /^calculator must be one of .* got "nope"/, 'calculator'],
      [xyz(small, '?calculator=spherical_expansion'), /^calculator must be one of/, 'calculator'],
      [xyz(small, '?perStructure=max'), /^perStructure must be one of sum, mean, species-mean/, 'perStructure'],
      [xyz(small, '?species=1,x'), /^species must be atomic numbers/, 'species'],
      [xyz(small, '?species=1,6'), /species 8 is not in --species 1,6/, 'input'],
      [xyz(small, '?foo=1'), /^unknown query parameter "foo"/, 'foo'],
      [xyz(small, '?hypers=%7Bnot'), /^hypers is not valid JSON/, 'hypers'],
      [json({ structures: small, hypers: { cutoff: 5 } }), /^hypers: /, 'input'],
      [json({ structures: [{ types: [1], positions: [0, 0] }] }), /^structures\[0\]: /, 'structures[0]'],
      [json({ structures: [] }), /structures is empty/, 'structures'],
      [json({ structures: 3 }), /^structures must be/, 'structures'],
      [json({ structures: small, extra: 1 }), /^unknown field "extra"/, 'extra'],
      [json({ structures: small, options: { batch: 3 } }), /^unknown option "batch"/, 'options.batch'],
      [json([1, 2]), /^the body must be/, 'body'],
    ];
    for (const [p, message, limit] of cases) {
      const a = await p;
      expect(a.status, a.body.toString()).toBe(400);
      expect(error(a).error).toMatch(message);
      expect(error(a).limit).toBe(limit);
    }
    const broken = await request('POST', '/v1/featurize', '{"structures": [', { 'content-type': 'application/json' });
    expect(broken.status).toBe(400);
    expect(error(broken).error).toMatch(/JSON/);
    const media = await request('POST', '/v1/featurize', 'x', { 'content-type': 'image/png' });
    expect(media.status).toBe(415);
    expect((await request('GET', '/healthz')).status).toBe(200);
  });

  it('mangled bodies (seeded byte flips, truncations, odd JSON values): only 200/400/413/422 answers, and the server stays up', async () => {
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const base = formatXyz(frames.slice(0, 3));
    const odd = [NaN, null, -1, 0, 1e308, -1e308, 'H', 'Xx', [], {}, true, 2 ** 31, 1.5, '1'];
    for (let k = 0; k < 40; k++) {
      let a: Answer;
      if (k % 2 === 0) {
        const bytes = Buffer.from(base);
        for (let f = 0; f < 1 + Math.floor(random() * 6); f++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
        const cut = random() < 0.3 ? Math.floor(random() * bytes.length) : bytes.length;
        a = await request('POST', '/v1/featurize?perStructure=sum', bytes.subarray(0, cut), { 'content-type': 'text/plain', accept: 'application/octet-stream' });
      } else {
        const pick = () => odd[Math.floor(random() * odd.length)];
        const structure: Record<string, unknown> = { types: [1, 8], positions: [0, 0, 0, 0, 0, 1] };
        const field = ['types', 'positions', 'cell', 'pbc', 'info'][Math.floor(random() * 5)];
        structure[field] = random() < 0.5 ? pick() : [pick(), pick(), pick()];
        const body = JSON.stringify({ structures: [structure], options: random() < 0.2 ? { species: pick() } : {} }).replace('null', random() < 0.5 ? 'NaN' : 'null');
        a = await request('POST', '/v1/featurize?perStructure=sum', body, { 'content-type': 'application/json' });
      }
      expect([200, 400, 413, 422], a.body.toString().slice(0, 200)).toContain(a.status);
      if (a.status !== 200) expect(typeof error(a).error).toBe('string');
    }
    expect((await request('GET', '/healthz')).status).toBe(200);
  });

  it('limits: body size and atoms → 413, features and memory → 422, each naming its limit', async () => {
    const big = small.repeat(Math.ceil(200_001 / small.length));
    const a = await xyz(big);
    expect(a.status).toBe(413);
    expect(error(a)).toEqual({ error: 'the body is larger than maxBodyBytes = 200000 bytes', limit: 'maxBodyBytes' });
    // 2000 atoms is the limit: one structure of 2001 atoms (small body)
    const n = 2001;
    const many = `${n}\nPBC="F F F"\n${Array.from({ length: n }, (_, k) => `H ${(k % 13) * 3} ${Math.floor(k / 13) % 13 * 3} ${Math.floor(k / 169) * 3}`).join('\n')}\n`;
    const b = await xyz(many);
    expect(b.status).toBe(413);
    expect(error(b)).toEqual({ error: 'the request holds 2001 atoms, more than maxAtoms = 2000', limit: 'maxAtoms' });
    // per-atom power spectrum of 8 molecules: rows × columns above 100 000
    const c = await xyz(small);
    expect(c.status).toBe(422);
    expect(error(c).limit).toBe('maxFeatures');
    expect(error(c).error).toMatch(/more than maxFeatures = 100000$/);
    const tiny = await startServer('--max-memory', '1000');
    const saved = port;
    port = tiny.port;
    try {
      const d = await xyz(small, '?perStructure=sum');
      expect(d.status).toBe(422);
      expect(error(d).limit).toBe('maxMemory');
      expect(error(d).error).toMatch(/memory budget/);
    } finally {
      port = saved;
      tiny.child.kill('SIGTERM');
    }
  });

  it('a full queue answers 503; a client that disconnects frees its slot; metrics count requests and atoms', async () => {
    // --max-features above the 7200 × 17920 values of the disconnecting request
    // below, so that it is refused by nothing and is computing when its client goes
    const one = await startServer('--concurrency', '1', '--queue-size', '1', '--threads', '1', '--max-features', '200000000');
    const saved = port;
    port = one.port;
    try {
      // long enough (1800 molecules) to still be running 200 ms later with
      // the fused .npy path
      const copies = 15;
      const heavy = formatXyz(frames).repeat(copies);
      // the first runs, the second waits, the third is refused; each is sent once
      // the server holds the one before (a condition, not a delay: on a loaded
      // machine uploading and parsing a request can take longer than any fixed wait)
      const holds = async (state: { running: number; waiting: number }) => {
        let h: unknown;
        for (let k = 0; k < 6000; k++) {
          h = JSON.parse((await request('GET', '/healthz')).body.toString());
          if ((h as typeof state).running === state.running && (h as typeof state).waiting === state.waiting) break;
          await new Promise((r) => setTimeout(r, 10));
        }
        expect(h).toMatchObject(state);
      };
      const first = xyz(heavy, '?perStructure=sum');
      await holds({ running: 1, waiting: 0 });
      const second = xyz(heavy, '?perStructure=sum');
      await holds({ running: 1, waiting: 1 });
      const third = await xyz(heavy, '?perStructure=sum');
      expect(third.status).toBe(503);
      expect(error(third).limit).toBe('queue');
      expect(third.headers['retry-after']).toBe('1');
      expect((await first).status).toBe(200);
      expect((await second).status).toBe(200);
      // a client that goes away mid-request: the server stays up and serves the next one
      const gone = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/featurize?perStructure=sum', headers: { 'content-type': 'text/plain' } });
      gone.on('error', () => undefined);
      gone.end(heavy.repeat(4));
      // disconnect once the server is computing it (not on a timer: a fast
      // machine parses and answers a refusal within any fixed delay)
      for (let k = 0; k < 400; k++) {
        const h = JSON.parse((await request('GET', '/healthz')).body.toString());
        if (h.running === 1) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      gone.destroy();
      // the server notices, cancels the computation and counts it
      let cancelled = '';
      for (let k = 0; k < 200 && !cancelled.includes('acdc_requests_cancelled_total{route="/v1/featurize"} 1'); k++) {
        await new Promise((r) => setTimeout(r, 50));
        cancelled = (await request('GET', '/metrics')).body.toString();
      }
      expect(cancelled).toContain('acdc_requests_cancelled_total{route="/v1/featurize"} 1');
      const after = await xyz(small, '?perStructure=sum');
      expect(after.status).toBe(200);
      const health = JSON.parse((await request('GET', '/healthz')).body.toString());
      expect(health).toEqual({ status: 'ok', running: 0, waiting: 0 });
      const metrics = (await request('GET', '/metrics')).body.toString();
      expect(metrics).toMatch(/acdc_http_requests_total\{route="\/v1\/featurize",method="POST",status="503"\} 1/);
      expect(metrics).toMatch(/acdc_http_requests_total\{route="\/v1\/featurize",method="POST",status="200"\} 3/);
      const atoms = frames.reduce((n, f) => n + f.size, 0) * copies * 2 + frames.slice(0, 8).reduce((n, f) => n + f.size, 0);
      expect(metrics).toContain(`acdc_atoms_total{route="/v1/featurize"} ${atoms}`);
      expect(metrics).toMatch(/acdc_http_request_duration_seconds_count\{route="\/v1\/featurize"\} \d+/);
      expect(metrics).toMatch(/acdc_atoms_per_second\{route="\/v1\/featurize"\} \d/);
    } finally {
      port = saved;
      one.child.kill('SIGTERM');
    }
  });
});

describe('acdc serve --model-file: POST /v1/predict', () => {
  const train = readXyzSync(path.join(root, 'test', 'fixtures', 'models', 'train.xyz'));
  const testFile = path.join(root, 'test', 'fixtures', 'models', 'test.xyz');
  const modelPath = path.join(dir, 'cu.acdc');
  let child: ChildProcess | undefined;
  let saved = 0;

  beforeAll(async () => {
    const model = LinearModel.fitSync(train, {
      hypers: {
        cutoff: { radius: 4, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
        density: { type: 'Gaussian', width: 0.4 },
        basis: { type: 'TensorProduct', max_angular: 2, radial: { type: 'Gto', max_radial: 2 } },
      },
      regularizer: 1e-6,
    });
    await model.save(modelPath);
    const s = await startServer('--model-file', modelPath, '--max-atoms', '100000');
    child = s.child;
    saved = port;
    port = s.port;
  });
  afterAll(() => {
    port = saved;
    child?.kill('SIGTERM');
  });

  it('energies, forces and stress are those of the loaded model in process (same doubles)', async () => {
    const model = await loadModel(modelPath);
    // stress needs periodic structures: those of the test set
    const systems = readXyzSync(testFile).filter((s) => s.pbc.every(Boolean));
    expect(systems.length).toBeGreaterThan(2);
    const want = model.predictSync(systems, { forces: true, stress: true, variance: false });
    const a = await request('POST', '/v1/predict?forces=true&stress=1', formatXyz(systems), { 'content-type': 'text/plain' });
    expect(a.status, a.body.toString()).toBe(200);
    const got = JSON.parse(a.body.toString('utf8'));
    expect(got.units).toEqual({ energy: 'eV', forces: 'eV/Å', stress: 'eV/Å³', variance: 'eV²' });
    expect(got.energy).toEqual(Array.from(want.energy));
    expect(got.forces).toEqual(want.forces!.map((f) => Array.from(f)));
    expect(got.stress).toEqual(want.stress!.map((f) => Array.from(f)));
    expect(got.variance).toBeUndefined();
    // JSON structures, energies only
    const structures = systems.slice(0, 2).map((s) => ({ types: Array.from(s.types), positions: Array.from(s.positions), cell: Array.from(s.cell), pbc: s.pbc }));
    const j = await request('POST', '/v1/predict', JSON.stringify({ structures }), { 'content-type': 'application/json' });
    expect(j.status, j.body.toString()).toBe(200);
    expect(JSON.parse(j.body.toString()).energy).toEqual(Array.from(want.energy.subarray(0, 2)));
    const metrics = (await request('GET', '/metrics')).body.toString();
    expect(metrics).toMatch(/acdc_http_requests_total\{route="\/v1\/predict",method="POST",status="200"\} 2/);
  });

  it('bad requests: 400 naming the field; stress of a non-periodic structure is refused', async () => {
    const cases: Array<[Answer, string]> = [
      [await request('POST', '/v1/predict?forces=maybe', 'x', { 'content-type': 'text/plain' }), 'forces'],
      [await request('POST', '/v1/predict?bogus=1', 'x', { 'content-type': 'text/plain' }), 'bogus'],
      [await request('POST', '/v1/predict', 'garbage\n', { 'content-type': 'text/plain' }), 'body'],
      [await request('POST', '/v1/predict', JSON.stringify({ structures: [] }), { 'content-type': 'application/json' }), 'structures'],
      [
        await request('POST', '/v1/predict?stress=true', JSON.stringify({ structures: [{ types: [29, 29], positions: [0, 0, 0, 2.5, 0, 0] }] }), { 'content-type': 'application/json' }),
        'structures',
      ],
    ];
    for (const [a, limit] of cases) {
      expect(a.status, a.body.toString()).toBe(400);
      expect(error(a).limit).toBe(limit);
    }
    expect(error(cases[4][0]).error).toMatch(/stress/);
  });

  it('an extended XYZ body is parsed in memory: atoms counted first (413), a parse error is one 400 naming the body and line, no temporary file', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-serve-tmpdir-'));
    const systems = readXyzSync(testFile);
    const limit = systems[0].size + 1;
    // TMPDIR: wherever the server would put a temporary file
    const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--model-file', modelPath, '--max-atoms', String(limit)], { env: { ...process.env, ACDC_NUM_THREADS: '2', TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
    const other = port;
    try {
      port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d) => {
          out += d;
          const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.on('exit', (code) => reject(new Error(`acdc serve exited with ${code}`)));
      });
      const model = await loadModel(modelPath);
      const ok = await request('POST', '/v1/predict?forces=true', formatXyz(systems.slice(0, 1)), { 'content-type': 'text/plain' });
      expect(ok.status, ok.body.toString()).toBe(200);
      const want = model.predictSync(systems.slice(0, 1), { forces: true });
      expect(JSON.parse(ok.body.toString()).energy).toEqual(Array.from(want.energy));
      expect(JSON.parse(ok.body.toString()).forces).toEqual(want.forces!.map((f) => Array.from(f)));
      const atoms = systems[0].size + systems[1].size;
      const big = await request('POST', '/v1/predict', formatXyz(systems.slice(0, 2)), { 'content-type': 'text/plain' });
      expect(big.status).toBe(413);
      expect(error(big)).toEqual({ error: `the request holds ${atoms} atoms, more than maxAtoms = ${limit}`, limit: 'maxAtoms' });
      // the second atom line of the first frame is broken (line 4 of the body)
      const lines = formatXyz(systems.slice(0, 1)).split('\n');
      lines[3] = 'Cu 0.0 zero 0.0';
      const bad = await request('POST', '/v1/predict', lines.join('\n'), { 'content-type': 'text/plain' });
      expect(bad.status).toBe(400);
      expect(error(bad).limit).toBe('body');
      expect(error(bad).error).toMatch(/^body: .*\bline 4\b/);
      expect(error(bad).error.split('\n')).toHaveLength(1);
      expect(fs.readdirSync(tmp)).toEqual([]);
    } finally {
      port = other;
      child.kill('SIGTERM');
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('without --model-file, /v1/predict is 404 naming the option', async () => {
    const plain = await startServer();
    const other = port;
    port = plain.port;
    try {
      const a = await request('POST', '/v1/predict', 'x', { 'content-type': 'text/plain' });
      expect(a.status).toBe(404);
      expect(error(a)).toEqual({ error: 'no model is loaded: start the server with acdc serve --model-file <model.acdc>', limit: 'model' });
    } finally {
      port = other;
      plain.child.kill('SIGTERM');
    }
  });

  it('a missing or corrupt model file: acdc serve exits 1 with one line', async () => {
    const r = await run(process.execPath, [cli, 'serve', '--port', '0', '--model-file', path.join(dir, 'nope.acdc')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^acdc: --model-file .*nope\.acdc: .*\n$/);
    fs.writeFileSync(path.join(dir, 'bad.acdc'), 'not a model');
    const b = await run(process.execPath, [cli, 'serve', '--port', '0', '--model-file', path.join(dir, 'bad.acdc')]);
    expect(b.status).toBe(1);
    expect(b.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('acdc serve --socket (a unix domain socket)', () => {
  const viaSocket = (socketPath: string, method: string, url: string, body?: string, headers: Record<string, string> = {}) =>
    new Promise<Answer>((resolve, reject) => {
      const req = http.request({ socketPath, method, path: url, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end(body);
    });

  it('answers the same .npy bytes as acdc featurize, a bad body is a 400, and the socket file is removed on SIGTERM', async () => {
    const socketPath = path.join(dir, 'acdc.sock');
    const child = spawn(process.execPath, [cli, 'serve', '--socket', socketPath], { env: { ...process.env, ACDC_NUM_THREADS: '2' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d) => {
          out += d;
          if (out.includes(`listening on unix:${socketPath} (`)) resolve();
        });
        child.on('exit', (code) => reject(new Error(`acdc serve exited with ${code}`)));
      });
      const a = await viaSocket(socketPath, 'POST', '/v1/featurize?perStructure=mean', small, { 'content-type': 'text/plain', accept: 'application/octet-stream' });
      expect(a.status, a.body.toString()).toBe(200);
      expect(a.body.equals((await cliFeatures(smallFile, '--per-structure', 'mean')).npy)).toBe(true);
      const bad = await viaSocket(socketPath, 'POST', '/v1/featurize', '2\n\nSi 0 0 0\n', { 'content-type': 'text/plain' });
      expect(bad.status).toBe(400);
      expect(error(bad).limit).toBe('body');
      // a name that is not this machine's is refused here too
      const foreign = await viaSocket(socketPath, 'GET', '/healthz', undefined, { host: 'evil.example' });
      expect(foreign.status).toBe(403);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(fs.existsSync(socketPath)).toBe(false);
  });

  it('--socket with --port is a usage error; a path already taken is one acdc: line', async () => {
    const both = await run(process.execPath, [cli, 'serve', '--socket', path.join(dir, 'x.sock'), '--port', '8081']);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/--socket replaces --host and --port/);
    const taken = path.join(dir, 'taken.sock');
    fs.writeFileSync(taken, '');
    const r = await run(process.execPath, [cli, 'serve', '--socket', taken]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^acdc: cannot listen on .*taken\.sock: .*remove it if no server uses it\)\n$/);
  });
});
