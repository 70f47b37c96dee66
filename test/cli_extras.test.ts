// The light install: `npm i acdc-ml` brings commander and the binary only.
// The queue, the server and the SVG plots need optional peer packages; a
// command that needs one that is missing prints one line naming the install
// command and exits 2, before any work. Checked on a copy of the built
// package in a folder whose node_modules holds commander alone (the pack
// test, scripts/ci/pack-test.sh, checks the same on the published tarballs).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './spawn_helpers';

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};
let work: string;
let installed: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-extras-'));
  installed = path.join(work, 'node_modules', 'acdc-ml');
  fs.mkdirSync(path.join(installed, 'native'), { recursive: true });
  fs.cpSync(path.join(root, 'dist'), path.join(installed, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(root, 'package.json'), path.join(installed, 'package.json'));
  for (const f of fs.readdirSync(path.join(root, 'native'))) {
    // the binary by link (tens of MB), the loader by copy
    if (f.endsWith('.node')) fs.symlinkSync(path.join(root, 'native', f), path.join(installed, 'native', f));
    else fs.copyFileSync(path.join(root, 'native', f), path.join(installed, 'native', f));
  }
  fs.symlinkSync(path.join(root, 'node_modules', 'commander'), path.join(work, 'node_modules', 'commander'), 'dir');
  fs.copyFileSync(path.join(root, 'examples', 'water.xyz'), path.join(work, 'water.xyz'));
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

async function acdc(args: string[]) {
  const r = await run(process.execPath, [path.join(installed, 'dist', 'cli', 'main.js'), ...args], { cwd: work, env: { ...process.env, ACDC_NUM_THREADS: '1' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('optional extras', () => {
  it('are optional peer dependencies, not dependencies', () => {
    expect(Object.keys(pkg.dependencies)).toEqual(['commander']);
    for (const name of ['bullmq', 'ioredis', 'fastify', 'prom-client', 'vega', 'vega-lite']) {
      expect(pkg.peerDependencies[name], name).toBeDefined();
      expect(pkg.peerDependenciesMeta[name]?.optional, name).toBe(true);
    }
  });

  it('the copy cannot see the repository node_modules (else this test proves nothing)', async () => {
    const r = await run(process.execPath, ['-e', "for (const n of ['fastify','bullmq','vega']) { try { require.resolve(n); console.log(n); } catch {} }"], { cwd: installed });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
  });

  it('the library and the core commands work without them', async () => {
    const lib = await run(
      process.execPath,
      ['-e', "const a = require('acdc-ml'); const n = new a.NeighborList({ cutoff: 2 }).computeSync(new a.System({ types: [8, 1, 1], positions: [0,0,0, 0.96,0,0, -0.24,0.93,0] })); console.log(n.distances.length, Object.keys(require.cache).filter((k) => !k.includes('/node_modules/acdc-ml/') && !k.endsWith('.node')).length)"],
      { cwd: work },
    );
    expect(lib.stderr).toBe('');
    // 6 pairs; and require('acdc-ml') loaded its own files only, not even commander (the
    // binary is a link into the checkout)
    expect(lib.stdout.trim()).toBe('6 0');
    const r = await acdc(['neighbors', 'water.xyz', '--cutoff', '3', '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).frames).toBeGreaterThan(0);
  });

  const cases: { args: string[]; what: string; packages: string[]; out?: string }[] = [
    { args: ['serve', '--port', '0'], what: 'serve', packages: ['fastify', 'prom-client'] },
    { args: ['worker', '--queue', 'redis://127.0.0.1:1/0'], what: 'worker', packages: ['bullmq', 'ioredis'] },
    { args: ['featurize', 'water.xyz', '--queue', 'redis://127.0.0.1:1/0', '--out-dir', 'shards'], what: 'featurize --queue', packages: ['bullmq', 'ioredis'], out: 'shards' },
    { args: ['map', 'water.xyz', '--out', 'map.json', '--svg', 'map.svg'], what: 'map --svg', packages: ['vega', 'vega-lite'], out: 'map.json' },
    { args: ['scan', 'water.xyz', '--cutoffs', '3', '--svg', 'scan.svg'], what: 'scan --svg', packages: ['vega', 'vega-lite'], out: 'scan.svg' },
  ];
  for (const c of cases) {
    it(`acdc ${c.what} without ${c.packages.join(', ')}: one line with the install command, exit 2, nothing written`, async () => {
      const r = await acdc(c.args);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      const install = c.packages.map((n) => `${n}@${pkg.peerDependencies[n]}`).join(' ');
      expect(r.stderr).toBe(`acdc: ${c.what} needs ${c.packages.join(' and ')}, which are not installed: npm install ${install}\n`);
      if (c.out) expect(fs.existsSync(path.join(work, c.out))).toBe(false);
    });
  }

  it('acdc merge needs no extra (it reads and writes files only)', async () => {
    const r = await acdc(['merge', 'missing/manifest.json', '--out', 'merged.npy']);
    expect(r.status).toBe(1);
    expect(r.stderr).not.toMatch(/npm install/);
    expect(r.stderr).toMatch(/^acdc: .*manifest\.json/);
  });
});
