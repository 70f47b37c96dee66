// Static SVG plots for the CLI (`acdc map --svg`, `acdc scan --svg`), drawn
// with Vega-Lite (Satyanarayan et al., IEEE TVCG 23, 341 (2017),
// doi:10.1109/TVCG.2016.2599030): a Vega-Lite spec is compiled to Vega and
// rendered headlessly to SVG text in Node (no browser, no canvas).
// vega and vega-lite are ES modules, loaded on first use.

// The few entry points used here, typed locally: vega's own typings need the
// DOM library, which this Node package does not compile against.
interface VegaView {
  toSVG(): Promise<string>;
  finalize(): void;
}
interface VegaModule {
  parse(spec: unknown): unknown;
  View: new (runtime: unknown, options: { renderer: 'none' }) => VegaView;
}
interface VegaLiteModule {
  compile(spec: unknown): { spec: unknown };
}

// a specifier in a variable keeps tsc from resolving (and type-checking) the modules
const importModule = (name: string): Promise<unknown> => import(name);
let modules: Promise<[VegaModule, VegaLiteModule]> | undefined;
function load(): Promise<[VegaModule, VegaLiteModule]> {
  modules ??= Promise.all([importModule('vega'), importModule('vega-lite')]) as Promise<[VegaModule, VegaLiteModule]>;
  return modules;
}

/** Renders a Vega-Lite spec (an object) to an SVG document. */
export async function renderVegaLite(spec: Record<string, unknown>): Promise<string> {
  const [vega, vl] = await load();
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Options of {@link scatterSvg}. */
export interface ScatterOptions {
  title?: string;
  xTitle: string;
  yTitle: string;
  /** Colour of each point: numbers (continuous scale with a colour bar) or strings (categories with a legend). */
  color?: { title: string; values: ArrayLike<number> | readonly string[] };
  width?: number;
  height?: number;
}

/** A scatter plot of (x[i], y[i]) as SVG text; axes titled, colour bar or legend when coloured. */
export async function scatterSvg(x: ArrayLike<number>, y: ArrayLike<number>, options: ScatterOptions): Promise<string> {
  const values = Array.from({ length: x.length }, (_, i) => {
    const row: Record<string, number | string> = { x: x[i], y: y[i] };
    if (options.color) row.c = options.color.values[i];
    return row;
  });
  const categorical = options.color !== undefined && options.color.values.length > 0 && typeof options.color.values[0] === 'string';
  const encoding: Record<string, unknown> = {
    x: { field: 'x', type: 'quantitative', title: options.xTitle, scale: { zero: false } },
    y: { field: 'y', type: 'quantitative', title: options.yTitle, scale: { zero: false } },
  };
  if (options.color) {
    encoding.color = categorical
      ? { field: 'c', type: 'nominal', title: options.color.title }
      : { field: 'c', type: 'quantitative', title: options.color.title, scale: { scheme: 'viridis' } };
  }
  return renderVegaLite({
    ...(options.title ? { title: options.title } : {}),
    width: options.width ?? 480,
    height: options.height ?? 360,
    background: 'white',
    data: { values },
    mark: { type: 'circle', size: 40, opacity: 0.85 },
    encoding,
  });
}

/** One point of a line of {@link linesSvg}. */
export interface LinePoint {
  /** The line it belongs to (legend entry). */
  series: string;
  x: number;
  y: number;
}

/** Lines with point markers, one per series, as SVG text (log axes optional). */
export async function linesSvg(
  points: LinePoint[],
  options: { title?: string; xTitle: string; yTitle: string; seriesTitle: string; logX?: boolean; logY?: boolean; width?: number; height?: number },
): Promise<string> {
  return renderVegaLite({
    ...(options.title ? { title: options.title } : {}),
    width: options.width ?? 480,
    height: options.height ?? 360,
    background: 'white',
    data: { values: points },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: options.xTitle, scale: options.logX ? { type: 'log' } : { zero: false } },
      y: { field: 'y', type: 'quantitative', title: options.yTitle, scale: options.logY ? { type: 'log' } : { zero: false } },
      color: { field: 'series', type: 'nominal', title: options.seriesTitle, legend: { labelLimit: 0 } },
    },
  });
}
