// Numerics live in the Rust core: no linear algebra in the TypeScript layer.
// Every .ts file under js/ is scanned for the marks a solver or decomposition
// leaves (names such as cholesky or jacobi, a Jacobi rotation, a
// triangular-solve or covariance update of a row-major matrix, a row-major
// matrix product); each pattern is first shown to catch the code that moved
// into the core (kernel ridge's Cholesky, the Jacobi eigensolver of
// js/basis.ts, the covariance loops of the basis fits, the double centring of
// kernel PCA), so the check cannot pass by matching nothing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.join(__dirname, '..', 'js');

// a row-major index [i * n + j], where i and j may be indexed themselves (train[a])
const IDX = String.raw`\[\s*\w+(?:\[\w+\])?\s*\*\s*\w+\s*\+\s*\w+(?:\[\w+\])?\s*\]`;

const FORBIDDEN: [string, RegExp][] = [
  [
    'a solver or decomposition by name',
    /\b(?:function|const|let|var)\s+(?:(?:cholesky|jacobi|eigen(?!values|vectors)|svd|gram|solve|invert|inverse|determinant|orthonormali[sz]e|centred|centered)\w*|\w*(?:Cholesky|Jacobi|Eigen|Svd|SVD|Gram|Solve|Invert|Inverse|Determinant|Orthonormali[sz]e|Centred|Centered)\w*)\s*[=(<]/,
  ],
  ['a Jacobi or Givens rotation', /Math\.sqrt\(\s*(\w+)\s*\*\s*\1\s*\+\s*1\s*\)/],
  ['an update of a row-major matrix entry by a product', new RegExp(String.raw`\w+${IDX}\s*[-+]=\s*[^;]*\*`)],
  ['a row-major matrix product or triangular solve', new RegExp(String.raw`[-+]=\s*\w+${IDX}\s*\*\s*\w+\[`)],
  ['a doubly centred matrix', new RegExp(String.raw`\w+${IDX}\s*-\s*\w+\[\w+\]\s*-\s*\w+\[\w+\]\s*\+`)],
];

// the code that moved into the core (acdc_core::analysis), as it was in js/
const MOVED = [
  'export function choleskySolve(A: Float64Array, n: number, lambda: number, b: Float64Array): Float64Array {',
  'for (let k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];',
  'export function symmetricEigen(a: Float64Array, n: number) {',
  'const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));',
  'for (let j = 0; j < S; j++) C[i * S + j] += x * row[k + j];',
  'for (let j = 0; j < n; j++) out[i * n + j] = data[i * n + j] - rowMean[i] - rowMean[j] + total;',
  'export function centredGram(G: Float64Array, N: number, train: number[]): Float64Array {',
  'for (let a = 0; a < n; a++) p += K[s * N + train[a]] * alpha[a];',
];

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Code lines, without // comments (the docs may describe the mathematics). */
function codeLines(text: string): string[] {
  return text.split('\n').map((l) => (/^\s*(\/\/|\*|\/\*)/.test(l) ? '' : l.replace(/\s\/\/.*$/, '')));
}

describe('numerics only in the core', () => {
  it('the patterns catch the linear algebra that moved to Rust', () => {
    for (const line of MOVED) {
      expect(FORBIDDEN.some(([, re]) => re.test(line)), line).toBe(true);
    }
    // and do not fire on ordinary array code
    for (const line of ['row[c] += atoms[a * columns + c];', 'const eigenvalues = r.eigenvalues;', 'out[r * rowLength + k] = number(field, row[k]);']) {
      expect(FORBIDDEN.filter(([, re]) => re.test(line)).map(([w]) => w), line).toEqual([]);
    }
  });

  it('no file under js/ does linear algebra', () => {
    const files = tsFiles(root);
    expect(files.length).toBeGreaterThan(30);
    const found: string[] = [];
    for (const file of files) {
      codeLines(fs.readFileSync(file, 'utf8')).forEach((line, k) => {
        for (const [what, re] of FORBIDDEN) if (re.test(line)) found.push(`${path.relative(root, file)}:${k + 1}: ${what}: ${line.trim()}`);
      });
    }
    expect(found).toEqual([]);
  });
});
