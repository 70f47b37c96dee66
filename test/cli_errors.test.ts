// The CLI under real use and misuse: every failure is one line on stderr
// starting with "acdc", a non-zero exit code and no output file (not even a
// partial one); piped, gzip and empty input; errors that point at the right
// frame whatever the batch size; a closed stdout.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { SoapPowerSpectrum, SphericalExpansion, System, TensorMap, formatXyz, readNpySync, readXyzSync } from 'acdc-ml';
import { run } from './spawn_helpers';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const molecules = path.join(root, 'examples', 'molecules.xyz');
const water = path.join(root, 'examples', 'water.xyz');
const frames = readXyzSync(molecules);

async function acdc(args: string[], options: { input?: string | Buffer; env?: Record<string, string>; cwd?: string } = {}) {
  const r = await run(process.execPath, [cli, ...args], {
    input: options.input,
    cwd: options.cwd,
    env: { ...process.env, ACDC_NUM_THREADS: '2', ...options.env },
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** A fresh folder per case, so that leftovers (partial or temporary files) are visible. */
function folder(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-cli-errors-'));
}

/** One line, starting with "acdc", no stack trace. */
function expectOneLineError(r: Awaited<ReturnType<typeof acdc>>, message: RegExp, what: string) {
  expect(r.signal, what).toBeNull();
  expect(r.status, what).not.toBe(0);
  const lines = r.stderr.trim().split('\n');
  expect(lines, `${what}: ${r.stderr}`).toHaveLength(1);
  expect(lines[0], what).toMatch(/^acdc( \w+)?: /);
  expect(lines[0], what).toMatch(message);
  expect(r.stderr, what).not.toMatch(/node:internal|\n\s+at /);
}

const small = {
  cutoff: { radius: 4, smoothing: { type: 'ShiftedCosine' as const, width: 0.5 } },
  density: { type: 'Gaussian' as const, width: 0.3 },
  basis: { type: 'TensorProduct' as const, max_angular: 2, radial: { type: 'Gto' as const, max_radial: 2 } },
};

describe('acdc featurize: failures leave nothing behind', () => {
  it('a cutoff of 500 Å on a 2-atom cell is a one-line error, from the CLI and the API, with no output', async () => {
    const dir = folder();
    const si = new System({ types: [14, 14], positions: [0, 0, 0, 1.35, 1.35, 1.35], cell: [0, 2.7, 2.7, 2.7, 0, 2.7, 2.7, 2.7, 0] });
    const input = path.join(dir, 'si.xyz');
    fs.writeFileSync(input, formatXyz([si]));
    const hypers = path.join(dir, 'h.json');
    fs.writeFileSync(hypers, JSON.stringify({ ...small, cutoff: { radius: 500, smoothing: { type: 'ShiftedCosine', width: 0.5 } } }));
    for (const args of [['--gradients', 'positions', '--out', 'x.mts'], ['--out', 'x.npy']]) {
      const r = await acdc(['featurize', input, '--hypers', hypers, ...args], { cwd: dir });
      expectOneLineError(r, /si\.xyz.*500 Å.*neighbours per atom/, args.join(' '));
      expect(fs.readdirSync(dir).sort()).toEqual(['h.json', 'si.xyz']);
    }
    const calc = new SoapPowerSpectrum({ ...small, cutoff: { radius: 500, smoothing: { type: 'ShiftedCosine', width: 0.5 } } });
    expect(() => calc.computeSync([si], { gradients: ['positions'] })).toThrow(/neighbours per atom/);
  });

  it('work above the memory budget is refused before it starts (--max-memory, maxMemory, ACDC_MAX_MEMORY)', async () => {
    const dir = folder();
    const r = await acdc(['featurize', molecules, '--out', 'x.mts', '--gradients', 'positions', '--max-memory', '1M'], { cwd: dir });
    expectOneLineError(r, /too large: .*budget of 1\.0 MiB/, '--max-memory');
    expect(fs.readdirSync(dir)).toEqual([]);
    const env = await acdc(['featurize', molecules, '--out', 'x.npy'], { cwd: dir, env: { ACDC_MAX_MEMORY: '64K' } });
    expectOneLineError(env, /budget of 64\.0 KiB/, 'ACDC_MAX_MEMORY');
    const bad = await acdc(['featurize', molecules, '--out', 'x.npy'], { cwd: dir, env: { ACDC_MAX_MEMORY: 'lots' } });
    expectOneLineError(bad, /ACDC_MAX_MEMORY must be a size/, 'bad ACDC_MAX_MEMORY');
    expect(fs.readdirSync(dir)).toEqual([]);
    const calc = new SoapPowerSpectrum(small);
    await expect(calc.compute(frames.slice(0, 10), { gradients: ['positions'], maxMemory: 10_000 })).rejects.toThrow(/too large/);
    expect(() => calc.computeSync(frames.slice(0, 10), { maxMemory: 'x' })).toThrow(/maxMemory must be a size/);
    expect(calc.computeSync(frames.slice(0, 10), { maxMemory: '1G' }).keys.count).toBeGreaterThan(0);
  });

  it('a file truncated mid-frame: one line naming the file, exit 1, no output (any batch size)', async () => {
    const dir = folder();
    const text = fs.readFileSync(molecules, 'utf8');
    const trunc = path.join(dir, 'trunc.xyz');
    fs.writeFileSync(trunc, text.slice(0, Math.floor(text.length / 2)));
    for (const batch of ['5', '64']) {
      for (const out of ['x.npy', 'x.mts']) {
        const extra = out.endsWith('.npy') ? ['--species', '1,6,7,8'] : [];
        const r = await acdc(['featurize', trunc, '--out', out, '--batch', batch, ...extra], { cwd: dir });
        expectOneLineError(r, /trunc\.xyz.*line \d+/, `batch ${batch} ${out}`);
        expect(fs.readdirSync(dir), `batch ${batch} ${out}`).toEqual(['trunc.xyz']);
      }
    }
  });

  it('an error in frame 15 names frame 15 of the file and its line, whatever the batch size; nothing is written', async () => {
    const dir = folder();
    const bad = frames.slice(0, 30).map((f) => new System({ types: f.types, positions: f.positions, cell: f.cell, pbc: f.pbc }));
    const p = Array.from(bad[15].positions);
    p[3] = p[0];
    p[4] = p[1];
    p[5] = p[2];
    bad[15] = new System({ types: bad[15].types, positions: p });
    const input = path.join(dir, 'dup.xyz');
    fs.writeFileSync(input, formatXyz(bad));
    let line = 1;
    for (let f = 0; f < 15; f++) line += bad[f].size + 2;
    for (const batch of ['1', '4', '7', '64']) {
      const r = await acdc(['featurize', input, '--out', 'x.npy', '--batch', batch], { cwd: dir });
      expectOneLineError(r, new RegExp(`dup\\.xyz, frame 15 \\(line ${line}\\): .*same position`), `batch ${batch}`);
      expect(fs.readdirSync(dir)).toEqual(['dup.xyz']);
    }
  });

  it('the API writers leave no file when they fail, and no temporary file when they succeed', async () => {
    const dir = folder();
    const { writeNpySync, writeXyz, readNpySync: read } = await import('acdc-ml');
    const target = path.join(dir, 'a.npy');
    writeNpySync(target, { data: new Float64Array([1, 2, 3, 4]), shape: [2, 2] });
    expect(fs.readdirSync(dir)).toEqual(['a.npy']);
    // a failing write does not touch the previous file
    expect(() => writeNpySync(target, { data: new Float64Array([1, 2, 3]), shape: [2, 2] })).toThrow(/shape/);
    expect(Array.from(read(target).data)).toEqual([1, 2, 3, 4]);
    await expect(writeXyz(path.join(dir, 'no', 'such', 'folder.xyz'), frames.slice(0, 2))).rejects.toThrow(/folder\.xyz|no such/i);
    const tm = new SoapPowerSpectrum(small).computeSync(frames.slice(0, 3));
    tm.saveSync(path.join(dir, 'b.mts'));
    await tm.saveAsync(path.join(dir, 'c.mts'));
    expect(fs.readdirSync(dir).sort()).toEqual(['a.npy', 'b.mts', 'c.mts']);
    expect(TensorMap.loadSync(path.join(dir, 'c.mts')).keys).toEqual(tm.keys);
  });
});

describe('acdc featurize: input', () => {
  it('standard input (- and /dev/stdin) and gzip give the same bytes as the file', async () => {
    const dir = folder();
    const ref = await acdc(['featurize', water, '--out', 'ref.npy'], { cwd: dir });
    expect(ref.status, ref.stderr).toBe(0);
    const text = fs.readFileSync(water);
    const dash = await acdc(['featurize', '-', '--out', 'dash.npy'], { cwd: dir, input: text });
    expect(dash.status, dash.stderr).toBe(0);
    const dev = await acdc(['featurize', '/dev/stdin', '--out', 'dev.npy'], { cwd: dir, input: text });
    expect(dev.status, dev.stderr).toBe(0);
    fs.writeFileSync(path.join(dir, 'w.xyz.gz'), zlib.gzipSync(text));
    const gz = await acdc(['featurize', 'w.xyz.gz', '--out', 'gz.npy'], { cwd: dir });
    expect(gz.status, gz.stderr).toBe(0);
    const bytes = fs.readFileSync(path.join(dir, 'ref.npy'));
    for (const f of ['dash.npy', 'dev.npy', 'gz.npy']) expect(fs.readFileSync(path.join(dir, f)).equals(bytes), f).toBe(true);
    expect(readNpySync(path.join(dir, 'ref.npy')).shape[0]).toBe(12);
  });

  it('empty input, other compression and folders are one-line errors', async () => {
    const dir = folder();
    fs.writeFileSync(path.join(dir, 'empty.xyz'), '');
    fs.writeFileSync(path.join(dir, 'x.xyz.xz'), Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2]));
    fs.writeFileSync(path.join(dir, 'x.xyz.bz2'), Buffer.from('BZh91AY&SY'));
    const cases: [string[], RegExp, string | undefined][] = [
      [['featurize', 'empty.xyz', '--out', 'o.npy'], /empty\.xyz is empty/, undefined],
      [['featurize', '-', '--out', 'o.npy'], /standard input is empty/, ''],
      [['featurize', 'x.xyz.xz', '--out', 'o.npy'], /xz-compressed.*xz -d/, undefined],
      [['featurize', 'x.xyz.bz2', '--out', 'o.npy'], /bzip2-compressed/, undefined],
      [['featurize', dir, '--out', 'o.npy'], /is a folder/, undefined],
      [['featurize', '/dev/zero', '--out', 'o.npy'], /\/dev\/zero is not a text file/, undefined],
      [['neighbors', 'empty.xyz', '--cutoff', '3'], /empty\.xyz is empty/, undefined],
      [['featurize', molecules, '--out', path.join(dir, 'nowhere', 'o.npy')], /nowhere.*does not exist/, undefined],
    ];
    for (const [args, message, input] of cases) {
      expectOneLineError(await acdc(args, { cwd: dir, input }), message, args.join(' '));
    }
    expect(fs.readdirSync(dir).sort()).toEqual(['empty.xyz', 'x.xyz.bz2', 'x.xyz.xz']);
  });
});

describe('acdc featurize: options and outputs', () => {
  it('--per-structure: sum, mean = sum / atoms, species-mean; with a .labels.json naming rows and columns', async () => {
    const dir = folder();
    for (const how of ['sum', 'mean', 'species-mean']) {
      const r = await acdc(['featurize', molecules, '--out', `${how}.npy`, '--per-structure', how, '--batch', '13'], { cwd: dir });
      expect(r.status, r.stderr).toBe(0);
    }
    const sum = readNpySync(path.join(dir, 'sum.npy'));
    const mean = readNpySync(path.join(dir, 'mean.npy'));
    const speciesMean = readNpySync(path.join(dir, 'species-mean.npy'));
    const cols = sum.shape[1];
    let err = 0;
    let differs = 0;
    for (let s = 0; s < frames.length; s++) {
      for (let c = 0; c < cols; c++) {
        const expected = sum.data[s * cols + c] / frames[s].size;
        err = Math.max(err, Math.abs(mean.data[s * cols + c] - expected));
        differs = Math.max(differs, Math.abs(speciesMean.data[s * cols + c] - expected));
      }
    }
    expect(err).toBeLessThan(1e-12);
    expect(differs).toBeGreaterThan(1e-3);
    const labels = JSON.parse(fs.readFileSync(path.join(dir, 'mean.npy.labels.json'), 'utf8'));
    expect(labels.rows.names).toEqual(['system']);
    expect(labels.rows.values).toHaveLength(frames.length);
    expect(labels.columns.names).toEqual(['center_type', 'neighbor_1_type', 'neighbor_2_type', 'l', 'n_1', 'n_2']);
    expect(labels.columns.values).toHaveLength(cols);
    expect(labels.columns.values[0]).toEqual([1, 1, 1, 0, 0, 0]);
  });

  it('per-atom .npy rows are (system, atom) in file order; columns have no centre-species dimension', async () => {
    const dir = folder();
    const r = await acdc(['featurize', water, '--out', 'a.npy', '--json'], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    const labels = JSON.parse(fs.readFileSync(path.join(dir, 'a.npy.labels.json'), 'utf8'));
    expect(labels.rows.names).toEqual(['system', 'atom']);
    expect(labels.rows.values.slice(0, 4)).toEqual([[0, 0], [0, 1], [0, 2], [1, 0]]);
    expect(labels.columns.names).toEqual(['neighbor_1_type', 'neighbor_2_type', 'l', 'n_1', 'n_2']);
  });

  it('.mts output: blocks in the order of compute(), a summary that describes the file, options it ignores are refused', async () => {
    const dir = folder();
    const hypers = path.join(dir, 'h.json');
    fs.writeFileSync(hypers, JSON.stringify(small));
    const r = await acdc(['featurize', molecules, '--calculator', 'spherical_expansion', '--hypers', hypers, '--out', 'se.mts', '--batch', '7', '--json'], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.dtype).toBe('float64');
    expect(summary.species).toEqual([1, 6, 7, 8]);
    expect(summary.labels).toBeNull();
    const got = TensorMap.loadSync(path.join(dir, 'se.mts'));
    const direct = new SphericalExpansion(small).computeSync(frames);
    expect(got.keys).toEqual(direct.keys);
    for (const args of [['--dtype', 'float32'], ['--species', '1,6,7,8']]) {
      expectOneLineError(await acdc(['featurize', molecules, '--out', 'x.mts', ...args], { cwd: dir }), /\.npy output only/, args.join(' '));
    }
  });

  it('hyper-parameter files: JSON path, line and column; missing or folder paths named; contents never echoed', async () => {
    const dir = folder();
    fs.writeFileSync(
      path.join(dir, 'typo.json'),
      '{\n  "cutoff": {"radius": 5, "smoothing": {"type": "Step"}},\n  "density": {"type": "Gaussian", "widht": 0.3},\n' +
        '  "basis": {"type": "TensorProduct", "max_angular": 2, "radial": {"type": "Gto", "max_radial": 2}}\n}\n',
    );
    fs.writeFileSync(path.join(dir, 'secret.json'), 'my secret api key 1234');
    const cases: [string, RegExp][] = [
      ['typo.json', /--hypers typo\.json: .*density\.widht: unknown field.*\(line 3, column 35\)/],
      ['secret.json', /--hypers secret\.json is not valid JSON/],
      ['missing.json', /--hypers missing\.json: no such file/],
      [dir, /is a folder/],
    ];
    for (const [file, message] of cases) {
      const r = await acdc(['featurize', molecules, '--out', 'x.npy', '--hypers', file], { cwd: dir });
      expectOneLineError(r, message, file);
      expect(r.stderr).not.toMatch(/secret api key/);
    }
  });

  it('usage errors: one line with where to find help, exit code 2; --version', async () => {
    const cases: [string[], RegExp][] = [
      [['featurize', molecules, '--out', 'x.npy', '--bogus'], /acdc featurize: unknown option '--bogus' \(see acdc featurize --help\)/],
      [['featurize', molecules], /required option '-o, --out <file>'/],
      [['featurize', molecules, '--out', 'x.npy', '--threads', '1000'], /--threads.*1000/],
      [['featurize', molecules, '--out', 'x.npy', '--batch', '1e9'], /--batch/],
      [['featurize', molecules, '--out', 'x.npy', '--per-structure', 'average'], /expected one of sum, mean, species-mean/],
      [['neighbors', molecules], /required option '-c, --cutoff/],
      [['frobnicate'], /unknown command 'frobnicate'/],
    ];
    for (const [args, message] of cases) {
      const r = await acdc(args, { cwd: folder() });
      expectOneLineError(r, message, args.join(' '));
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/--help\)$/m);
    }
    const v = await acdc(['--version']);
    expect(v.status).toBe(0);
    expect(v.stdout.trim()).toBe(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
  });
});

describe('acdc neighbors', () => {
  it('prints per-frame statistics and a JSON summary', async () => {
    const r = await acdc(['neighbors', water, '--cutoff', '3', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.frames).toBe(4);
    expect(s.atoms).toBe(12);
  });

  it('a closed stdout (| head -1) ends the command quietly', async () => {
    const big = path.join(folder(), 'many.xyz');
    fs.writeFileSync(big, formatXyz(Array.from({ length: 40 }, () => frames).flat()));
    for (let k = 0; k < 5; k++) {
      const r = await run('bash', ['-c', `set -o pipefail; "${process.execPath}" "${cli}" neighbors "${big}" --cutoff 4 | head -1`]);
      expect(r.stdout.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    }
  });
});
