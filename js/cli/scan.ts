// `acdc scan`: learning curves over cutoff radius and body order, the
// "range and body order" analysis of a representation. For every cutoff r_c
// and body order (2: radial spectrum, ν = 1; 3: power spectrum, ν = 2, both
// with the default SOAP hypers of `acdc featurize` and that cutoff), the
// per-structure mean features are used to fit the target per atom on
// growing training sets, and the test RMSE is reported.
//
// Split: the structures are shuffled with a fixed seed (--seed); the first
// quarter (at least one) is the test set, the rest the training pool. The
// training sets are the first 1/8, 1/4, 1/2 and all of the pool (nested).
// Models (both kernel ridge regression on per-structure features, see
// kernel_ridge.ts): `linear`, ridge regression with an intercept on the
// features centred by their training mean; `gpr`, the posterior mean of a
// Gaussian process with the normalised polynomial kernel (x̂·x̂')² and a
// constant mean. The regulariser is relative to the mean diagonal of the
// training kernel.
import { coded } from '../errors';
import * as fs from 'node:fs';
import { polynomialKernelAsync } from '../models';
import { checkWritableTarget, writeAtomically } from '../atomic';
import { linesSvg, type LinePoint } from '../plot';
import { defaultCalculator, readSystems, soapFeatures, type BodyOrder } from './features';
import { learningCurve } from './kernel_ridge';
import type { Stages } from './stages';

export const SCAN_MODELS = ['linear', 'gpr'] as const;
export type ScanModel = (typeof SCAN_MODELS)[number];

export interface ScanOptions {
  cutoffs: number[];
  bodyOrder: number[];
  model: ScanModel;
  /** extxyz info key of the target (per structure; fitted per atom). */
  target: string;
  regularizer: number;
  seed: number;
  svg?: string;
  /** The stage line (--progress). */
  stages?: Stages;
}

export interface ScanCurve {
  cutoff: number;
  bodyOrder: BodyOrder;
  calculator: string;
  columns: number;
  /** Test RMSE of the target per atom, one per training size. */
  rmse: number[];
}

export interface ScanSummary {
  file: string;
  target: string;
  model: ScanModel;
  regularizer: number;
  structures: number;
  testSize: number;
  trainSizes: number[];
  /** The split: test structures, and the training pool in order (the training set of size n is its first n). */
  split: { test: number[]; train: number[] };
  /** Standard deviation of the test targets per atom: the RMSE of predicting their mean. */
  testStd: number;
  curves: ScanCurve[];
  svg: string | null;
  seconds: number;
}

/** A seeded shuffle (mulberry32 generator, Fisher–Yates). */
export function shuffled(n: number, seed: number): number[] {
  let a = seed >>> 0;
  const random = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** Runs `acdc scan`. */
export async function scan(file: string, options: ScanOptions): Promise<ScanSummary> {
  const t0 = performance.now();
  for (const b of options.bodyOrder) {
    if (b !== 2 && b !== 3) throw coded('ACDC_INVALID_PARAMETER', `--body-order ${b}: expected 2 (radial spectrum) or 3 (power spectrum)`);
  }
  if (!(options.regularizer > 0)) throw coded('ACDC_INVALID_PARAMETER', `--relative-regularizer must be positive, got ${options.regularizer}`);
  if (options.svg !== undefined) {
    if (!options.svg.endsWith('.svg')) throw coded('ACDC_INVALID_PARAMETER', `--svg ${options.svg}: the plot file must end in .svg`);
    checkWritableTarget(options.svg, '--svg');
  }
  options.stages?.start(`reading ${file}`);
  const systems = await readSystems(file);
  const y = systems.map((s, k) => {
    const v = s.info[options.target];
    if (v === undefined) throw coded('ACDC_INVALID_SYSTEM', `${file}, frame ${k}: no "${options.target}" in the comment line (--target-key names the per-structure property to fit)`);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw coded('ACDC_INVALID_SYSTEM', `${file}, frame ${k}: ${options.target} is ${JSON.stringify(v)}, not a finite number`);
    if (s.size === 0) throw coded('ACDC_INVALID_SYSTEM', `${file}, frame ${k} has no atoms`);
    return v / s.size;
  });
  const N = systems.length;
  if (N < 10) throw coded('ACDC_INVALID_PARAMETER', `${file}: ${N} structures: a learning curve needs at least 10`);
  const order = shuffled(N, options.seed);
  const testSize = Math.max(1, Math.floor(N / 4));
  const test = order.slice(0, testSize);
  const pool = order.slice(testSize);
  const trainSizes = [...new Set([8, 4, 2, 1].map((d) => Math.max(2, Math.ceil(pool.length / d))))];
  let mean = 0;
  for (const t of test) mean += y[t];
  mean /= testSize;
  const testStd = Math.sqrt(test.reduce((a, t) => a + (y[t] - mean) ** 2, 0) / testSize);

  const curves: ScanCurve[] = [];
  for (const cutoff of options.cutoffs) {
    for (const bodyOrder of options.bodyOrder as BodyOrder[]) {
      const calc = defaultCalculator(cutoff, bodyOrder);
      options.stages?.start(`learning curve: cutoff ${cutoff} Å, body order ${bodyOrder}`);
      const f = await soapFeatures(calc, systems);
      const X = f.structures;
      const input = { pool, test, sizes: trainSizes, y, regularizer: options.regularizer };
      const rmse = Array.from(
        options.model === 'gpr'
          ? await learningCurve({ ...input, kernel: 'precomputed', data: (await polynomialKernelAsync({ data: X, shape: [N, f.columns] }, { data: X, shape: [N, f.columns] }, { zeta: 2 })).data as Float64Array, shape: [N, N] })
          : await learningCurve({ ...input, kernel: 'linear', data: X, shape: [N, f.columns] }),
      );
      curves.push({ cutoff, bodyOrder, calculator: calc.name, columns: f.columns, rmse });
    }
  }
  const svg = options.svg;
  if (svg !== undefined) {
    const points: LinePoint[] = curves.flatMap((c) => c.rmse.map((r, k) => ({ series: `r_c = ${c.cutoff} Å, body order ${c.bodyOrder}`, x: trainSizes[k], y: r })));
    const text = await linesSvg(points, {
      title: `${file.split('/').pop()}: learning curves (${options.model})`,
      xTitle: 'training structures',
      yTitle: `test RMSE of ${options.target} per atom`,
      seriesTitle: 'representation',
      logX: true,
      logY: curves.every((c) => c.rmse.every((r) => r > 0)),
    });
    await writeAtomically(svg, (tmp) => fs.promises.writeFile(tmp, text));
  }
  return {
    file,
    target: options.target,
    model: options.model,
    regularizer: options.regularizer,
    structures: N,
    testSize,
    trainSizes,
    split: { test, train: pool },
    testStd,
    curves,
    svg: svg ?? null,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** The table `acdc scan` prints. */
export function formatScan(s: ScanSummary): string {
  const head = ['cutoff/Å', 'body order', 'features', ...s.trainSizes.map((n) => `n=${n}`)];
  const rows = s.curves.map((c) => [c.cutoff.toString(), c.bodyOrder.toString(), c.columns.toString(), ...c.rmse.map((r) => r.toPrecision(4))]);
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
  const line = (cells: string[]) => '  ' + cells.map((c, k) => c.padStart(widths[k])).join('  ');
  return [
    `${s.file}: test RMSE of ${s.target} per atom (${s.model} model, ${s.testSize} test structures; predicting their mean gives ${s.testStd.toPrecision(4)})`,
    line(head),
    ...rows.map(line),
    ...(s.svg ? [`  curves → ${s.svg}`] : []),
    '',
  ].join('\n');
}
