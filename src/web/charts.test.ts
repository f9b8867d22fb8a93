// One chart spec, two renderers: the loss-curve spec the page draws renders to SVG in Node too (vega's
// headless View, as the catalogue's plots are drawn).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import { lossCurveSpec, lossPoints } from './charts.ts';

test('the loss-curve spec of a training job renders to SVG in Node', async () => {
  const points = lossPoints([
    { round: 1, loss: 5.2, heldOutLoss: 5.4, participants: 3 },
    { round: 2, loss: 4.8, heldOutLoss: 5.0, participants: 3 },
    { round: 3, loss: 4.5, heldOutLoss: 4.9, participants: 2 },
  ]);
  assert.deepEqual(new Set(points.map((p) => p.series)), new Set(['loss', 'held-out loss']));
  assert.equal(points.length, 6, 'participants is not a loss');
  const view = new vega.View(vega.parse(vegaLite.compile(lossCurveSpec('job a', points)).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  assert.match(svg, /^<svg/);
  assert.match(svg, /held-out loss/);
});
