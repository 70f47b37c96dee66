// The layers of the TypeScript package, read from the sources (no build
// needed): imports run downwards only and form no cycle, and a calculator's
// name is written in few source files (the registry is the list). See
// docs/ARCHITECTURE.md for the drawing.
//
//   0 binding    js/native.ts, js/errors.ts           (the N-API addon and its errors)
//   1 library    js/*.ts, js/featurize/**             (calculators, models, the featurize engine)
//   2 drivers    js/drivers/**                        (i-PI client: a library API with a socket)
//   3 entry      js/index.ts, js/index.mts            (the package's public surface)
//   4 services   js/queue/**, js/serve/**             (the BullMQ queue, the HTTP server)
//   5 commands   js/cli/**                            (the CLI, which starts the services)
//
// A module may import its own layer and those below it, never in a cycle.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.join(__dirname, '..');
const js = path.join(root, 'js');

function walk(dir: string, exts: string[]): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, exts));
    else if (exts.some((x) => e.name.endsWith(x))) out.push(p);
  }
  return out;
}

function layer(file: string): number {
  const rel = path.relative(js, file).split(path.sep).join('/');
  if (rel === 'native.ts' || rel === 'errors.ts') return 0;
  if (rel === 'index.ts' || rel === 'index.mts') return 3;
  const top = rel.split('/')[0];
  if (top === 'drivers') return 2;
  if (top === 'queue' || top === 'serve') return 4;
  if (top === 'cli') return 5;
  return 1;
}

/** Local imports (static `import`/`export … from`, and `import()`/`require()` of a relative path), resolved to files. */
function imports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const specs = new Set<string>();
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^'";]*?from\s+['"]([^'"]+)['"]/gm)) specs.add(m[1]);
  for (const m of text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) specs.add(m[1]);
  for (const m of text.matchAll(/(?:import|require)\(\s*['"](\.[^'"]+)['"]\s*\)/g)) specs.add(m[1]);
  const out: string[] = [];
  for (const spec of specs) {
    if (!spec.startsWith('.')) continue;
    const base = path.resolve(path.dirname(file), spec.replace(/\.(m?js)$/, ''));
    const found = [`${base}.ts`, `${base}.mts`, path.join(base, 'index.ts')].find((p) => fs.existsSync(p));
    // package.json and the generated binding are outside js/
    if (found && found.startsWith(js + path.sep)) out.push(found);
  }
  return out;
}

const files = walk(js, ['.ts', '.mts']);
const graph = new Map(files.map((f) => [f, imports(f)]));
const rel = (f: string) => path.relative(root, f);

/** Cycles of the import graph, each as a list of files (Tarjan's strongly connected components). */
function cycles(g: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (g.get(v) ?? []).includes(v)) out.push(scc);
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) visit(v);
  return out;
}

describe('layers of js/', () => {
  it('the graph is read (imports are found)', () => {
    // guards the parser: the CLI entry imports the featurize engine
    expect(graph.get(path.join(js, 'cli', 'main.ts'))).toContain(path.join(js, 'featurize', 'index.ts'));
    expect(files.length).toBeGreaterThan(50);
  });

  it('no import runs upwards', () => {
    const upward: string[] = [];
    for (const [from, tos] of graph) {
      for (const to of tos) if (layer(to) > layer(from)) upward.push(`${rel(from)} (layer ${layer(from)}) imports ${rel(to)} (layer ${layer(to)})`);
    }
    expect(upward).toEqual([]);
  });

  it('there is no import cycle', () => {
    expect(cycles(graph).map((c) => c.map(rel).sort())).toEqual([]);
  });

  it('the cycle finder finds a cycle', () => {
    expect(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]])).map((c) => c.sort())).toEqual([['a', 'b', 'c']]);
  });
});

/** Rust files that are test-only modules: declared `#[cfg(test)] mod x;` by their parent. */
function testModuleFiles(): Set<string> {
  const out = new Set<string>();
  for (const f of walk(path.join(root, 'crates'), ['.rs'])) {
    const dir = path.dirname(f);
    for (const m of fs.readFileSync(f, 'utf8').matchAll(/#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;/g)) {
      out.add(path.join(dir, `${m[1]}.rs`));
      out.add(path.join(dir, m[1], 'mod.rs'));
    }
  }
  return out;
}

/** Source files outside tests and examples, with Rust's `#[cfg(test)] mod …` sections and test-only module files cut off. */
function sources(): Map<string, string> {
  const out = new Map<string, string>();
  const testOnly = testModuleFiles();
  for (const dir of ['crates', 'js']) {
    for (const f of walk(path.join(root, dir), ['.rs', '.ts', '.mts'])) {
      const r = path.relative(root, f).split(path.sep);
      if (r.includes('tests') || r.includes('examples') || r.includes('target') || testOnly.has(f)) continue;
      let text = fs.readFileSync(f, 'utf8');
      if (f.endsWith('.rs')) {
        const cut = text.search(/#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{/);
        if (cut >= 0) text = text.slice(0, cut);
      }
      out.set(rel(f), text);
    }
  }
  return out;
}

describe('the calculator registry is the one list', () => {
  const text = fs.readFileSync(path.join(root, 'crates/acdc-core/src/calculators/mod.rs'), 'utf8');
  const registry = text.slice(text.indexOf('pub static REGISTRY'), text.indexOf('];', text.indexOf('pub static REGISTRY')));
  const names = [...registry.matchAll(/name: "(\w+)"/g)].map((m) => m[1]);
  // entries that take the name from the calculator's own constant (`name: X::NAME`)
  for (const m of registry.matchAll(/name: (\w+)::NAME/g)) {
    const decl = new RegExp(`pub const NAME: &'static str = "(\\w+)";`);
    const file = walk(path.join(root, 'crates/acdc-core/src/calculators'), ['.rs']).map((f) => fs.readFileSync(f, 'utf8')).find((t) => t.includes(`impl ${m[1]} {`) && decl.test(t));
    names.push(decl.exec(file!)![1]);
  }

  it('holds every calculator', () => {
    expect(names.length).toBeGreaterThanOrEqual(9);
  });

  it("each calculator's name is written in at most 3 source files (its own, the registry, its TS class)", () => {
    const src = sources();
    const counts: Record<string, string[]> = {};
    for (const name of names) counts[name] = [...src].filter(([, t]) => new RegExp(`\\b${name}\\b`).test(t)).map(([f]) => f);
    const over = Object.entries(counts).filter(([, f]) => f.length > 3);
    expect(over, JSON.stringify(counts, null, 1)).toEqual([]);
  });
});
