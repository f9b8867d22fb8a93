// Figures of the rollup as SVG, drawn in Node without a browser: a Vega-Lite spec per figure kind, compiled
// to Vega and rendered by vega's headless View.toSVG() (no canvas: text widths are estimated, which keeps
// the output the same on every machine). Curves carry a 95% CI band, bars an error bar, heatmaps a value
// per cell. No timestamps, fixed sizes, stable data order: the same figure gives the same bytes.
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { Figure } from './_schema.ts';

const WIDTH = 520;
const HEIGHT = 300;

type Spec = vegaLite.TopLevelSpec;

function curveSpec(f: Extract<Figure, { kind: 'curve' }>): Spec {
  const x = { field: 'x', type: 'quantitative' as const, title: f.xLabel, ...(f.logX ? { scale: { type: 'symlog' as const } } : {}) };
  const color = { field: 'series', type: 'nominal' as const, title: null, sort: null };
  return {
    title: f.title, width: WIDTH, height: HEIGHT,
    data: { values: f.points },
    layer: [
      { mark: { type: 'area', opacity: 0.18 }, encoding: { x, y: { field: 'lo', type: 'quantitative', title: f.yLabel }, y2: { field: 'hi' }, color } },
      { mark: { type: 'line', point: true }, encoding: { x, y: { field: 'mean', type: 'quantitative', title: f.yLabel }, color } },
    ],
  };
}

function barsSpec(f: Extract<Figure, { kind: 'bars' }>): Spec {
  const labels = [...new Set(f.bars.map((b) => b.label))];
  const groups = [...new Set(f.bars.map((b) => b.group))];
  const x = { field: 'label', type: 'nominal' as const, title: null, sort: labels, axis: { labelAngle: -30 } };
  const xOffset = { field: 'group', type: 'nominal' as const, sort: groups };
  const color = { field: 'group', type: 'nominal' as const, title: null, sort: groups };
  return {
    title: f.title, width: Math.max(WIDTH, labels.length * groups.length * 22), height: HEIGHT,
    data: { values: f.bars },
    layer: [
      { mark: 'bar', encoding: { x, xOffset, y: { field: 'mean', type: 'quantitative', title: f.yLabel }, color } },
      { mark: { type: 'rule', color: 'black' }, encoding: { x, xOffset, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } } },
    ],
  };
}

function heatmapSpec(f: Extract<Figure, { kind: 'heatmap' }>): Spec {
  const xs = [...new Set(f.cells.map((c) => c.x))];
  const ys = [...new Set(f.cells.map((c) => c.y))];
  const x = { field: 'x', type: 'ordinal' as const, title: f.xLabel, sort: xs, axis: { labelAngle: 0 } };
  const y = { field: 'y', type: 'ordinal' as const, title: f.yLabel, sort: ys };
  return {
    title: f.title, width: Math.max(240, xs.length * 90), height: Math.max(120, ys.length * 28),
    data: { values: f.cells },
    layer: [
      { mark: 'rect', encoding: { x, y, color: { field: 'value', type: 'quantitative', title: null, scale: { scheme: 'orangered' } } } },
      { mark: { type: 'text', fontSize: 11 }, encoding: { x, y, text: { field: 'value', type: 'quantitative', format: '.2f' } } },
    ],
  };
}

export function figureSpec(f: Figure): Spec {
  switch (f.kind) {
    case 'curve': return curveSpec(f);
    case 'bars': return barsSpec(f);
    case 'heatmap': return heatmapSpec(f);
  }
}

/**
 * vega numbers gradients (and clip paths) with process-wide counters, so the same figure rendered second
 * gets other ids: renumber them per document, in order of first appearance.
 */
function stableIds(svg: string): string {
  const ids = new Map<string, string>();
  return svg.replace(/\b(gradient|clip)_(\d+)\b/g, (whole: string, kind: string) => {
    let id = ids.get(whole);
    if (id === undefined) ids.set(whole, (id = `${kind}_${[...ids.keys()].filter((k) => k.startsWith(kind)).length}`));
    return id;
  });
}

/** One figure as an SVG document (ends with a newline). */
export async function renderSvg(f: Figure): Promise<string> {
  const spec = { ...figureSpec(f), config: { background: 'white', font: 'sans-serif' } } as Spec;
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    const svg = stableIds(await view.toSVG());
    return svg.endsWith('\n') ? svg : `${svg}\n`;
  } finally {
    view.finalize();
  }
}
