// Every JavaScript code block of README.md runs as written (```js as a
// CommonJS script, ```mjs as an ES module), from a scratch folder that sees
// the package and the bundled examples the way a user's project does, so an
// example cannot rot.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from './spawn_helpers';

const root = path.join(__dirname, '..');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

interface Block {
  lang: 'js' | 'mjs';
  line: number;
  code: string;
}

function blocks(): Block[] {
  const out: Block[] = [];
  const re = /^```(js|mjs|javascript|ts|typescript|cjs)\s*\n([\s\S]*?)^```\s*$/gm;
  for (const m of readme.matchAll(re)) {
    const line = readme.slice(0, m.index).split('\n').length;
    if (m[1] === 'ts' || m[1] === 'typescript') throw new Error(`README.md line ${line}: TypeScript blocks are not run; write them as js or mjs`);
    out.push({ lang: m[1] === 'mjs' ? 'mjs' : 'js', line, code: m[2] });
  }
  return out;
}

describe('README.md code blocks', () => {
  const all = blocks();

  it('there are blocks to run', () => {
    expect(all.length).toBeGreaterThanOrEqual(4);
  });

  for (const block of all) {
    it(`the ${block.lang} block at line ${block.line} runs`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdc-readme-'));
      fs.symlinkSync(path.join(root, 'examples'), path.join(dir, 'examples'));
      fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
      const file = path.join(dir, `block${block.lang === 'mjs' ? '.mjs' : '.cjs'}`);
      fs.writeFileSync(file, block.code);
      const r = await run(process.execPath, [file], { cwd: dir, env: { ...process.env, ACDC_NUM_THREADS: '2' }, timeout: 120_000 });
      expect(r.stderr, `README.md line ${block.line}`).toBe('');
      expect(r.status, `README.md line ${block.line}: ${r.stderr}`).toBe(0);
      fs.rmSync(dir, { recursive: true, force: true });
    }, 150_000);
  }
});
