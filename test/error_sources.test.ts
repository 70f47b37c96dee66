// Every error the front ends (js/cli, js/queue, js/serve, js/drivers) and the
// featurize engine (js/featurize) throw carries one of the documented codes:
// read from the sources, so that a new bare `new Error(` fails here rather
// than reaching a user (or the server's status table) without a code.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from 'acdc-ml';

const root = path.join(__dirname, '..');
const DIRS = ['js/cli', 'js/queue', 'js/serve', 'js/drivers', 'js/featurize'];

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

/** `file:line` of each error constructed without a code (`withCode(new Error(…), …)` is coded). */
function uncoded(file: string, text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/new (?:Error|TypeError|RangeError|SyntaxError)\(/g)) {
    if (text.slice(Math.max(0, m.index - 9), m.index) === 'withCode(') continue;
    out.push(`${file}:${text.slice(0, m.index).split('\n').length}`);
  }
  return out;
}

// the library's own files too, less the three that build the coded errors
// themselves (errors.ts; native.ts, which codes the binding's errors;
// schedule.ts, which codes the AbortError)
const BUILDERS = new Set(['errors.ts', 'native.ts', 'schedule.ts']);
const LIBRARY = fs.readdirSync(path.join(root, 'js')).filter((f) => f.endsWith('.ts') && !BUILDERS.has(f)).map((f) => path.join(root, 'js', f));

describe('errors of the front ends carry codes', () => {
  const files = [...DIRS.flatMap((d) => walk(path.join(root, d))), ...LIBRARY];

  it('the scan finds the files and a bare error', () => {
    expect(files.length).toBeGreaterThan(30);
    expect(uncoded('x.ts', "throw new Error('a');\nthrow withCode(new Error('b'), 'ACDC_IO');\nthrow new TypeError('c');")).toEqual(['x.ts:1', 'x.ts:3']);
  });

  it('no error is constructed without a code', () => {
    const bare = files.flatMap((f) => uncoded(path.relative(root, f), fs.readFileSync(f, 'utf8')));
    expect(bare).toEqual([]);
  });

  it('the codes written there are documented ones', () => {
    const used = new Set<string>();
    for (const f of files) {
      const text = fs.readFileSync(f, 'utf8');
      for (const m of text.matchAll(/'(ACDC_[A-Z_]+|ABORT_ERR)'/g)) used.add(m[1]);
    }
    expect(used.size).toBeGreaterThan(4);
    // the library's codes, and the front ends' one (documented next to the table)
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    for (const code of used) expect((ERROR_CODES as readonly string[]).includes(code) || readme.includes(`\`${code}\``), code).toBe(true);
  });
});
