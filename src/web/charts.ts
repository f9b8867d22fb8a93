/**
 * Chart specs shared by Node and the page: the same Vega-Lite spec renders to SVG in Node (vega's headless
 * View, as experiments/bets/_plots.ts draws the catalogue) and in the browser (client/chart.tsx). Pure data
 * in, a spec out: no DOM, no Node.
 */
import type { TopLevelSpec } from 'vega-lite';

export interface LossPoint {
  round: number;
  /** Which curve: 'train loss', 'held-out loss', ... */
  series: string;
  value: number;
}

/** A training job's loss per round, one line per series (issue 14's metrics lines). */
export function lossCurveSpec(title: string, points: readonly LossPoint[], width = 420, height = 180): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width,
    height,
    background: 'transparent',
    data: { values: points.map((p) => ({ ...p })) },
    mark: { type: 'line', point: true, tooltip: true },
    encoding: {
      x: { field: 'round', type: 'quantitative', title: 'round', axis: { tickMinStep: 1 } },
      y: { field: 'value', type: 'quantitative', title: 'loss', scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom' } },
    },
    config: { font: 'system-ui, sans-serif', axis: { labelColor: '#667', titleColor: '#445' }, title: { color: '#223' } },
  };
}

/** 'heldOutLoss' -> 'held-out loss', 'train_loss' -> 'train loss'. */
export function seriesName(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/_/g, ' ').toLowerCase().replace(/^held out\b/, 'held-out');
}

/** The points of a job's metrics lines: every numeric field whose name says loss (or perplexity). */
export function lossPoints(metrics: readonly Record<string, unknown>[]): LossPoint[] {
  const points: LossPoint[] = [];
  for (const line of metrics) {
    const round = line['round'];
    if (typeof round !== 'number') continue;
    for (const [key, value] of Object.entries(line)) {
      if (typeof value === 'number' && Number.isFinite(value) && /loss/i.test(key)) points.push({ round, series: seriesName(key), value });
    }
  }
  return points;
}
