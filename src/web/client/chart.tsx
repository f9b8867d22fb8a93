// Charts in the page with the catalogue's library: the shared Vega-Lite spec (../charts.ts) compiled and
// rendered to SVG by vega, loaded on first use (a chunk of its own: pages without a chart never fetch it).
import { useEffect, useRef, useState } from 'preact/hooks';
import { lossCurveSpec, lossPoints } from '../charts.ts';

export function LossChart(props: { title: string; metrics: readonly Record<string, unknown>[] }) {
  const box = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<string | undefined>();
  const points = lossPoints(props.metrics);
  const data = JSON.stringify(points);
  useEffect(() => {
    if (points.length === 0 || !box.current) return;
    let view: { finalize(): void } | undefined;
    let gone = false;
    void (async () => {
      try {
        const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
        if (gone || !box.current) return;
        const width = Math.max(240, Math.min(520, box.current.clientWidth - 80));
        const spec = vegaLite.compile(lossCurveSpec(props.title, points, width)).spec;
        const v = new vega.View(vega.parse(spec), { renderer: 'svg', container: box.current, hover: true });
        view = v;
        await v.runAsync();
      } catch (e) {
        setError((e as Error).message);
      }
    })();
    return () => {
      gone = true;
      view?.finalize();
    };
  }, [data, props.title]);
  if (points.length === 0) return <p class="muted small">No round has finished yet.</p>;
  return (
    <figure class="chart">
      <div ref={box} role="img" aria-label={`${props.title}: ${points.length} points`} />
      {error && <figcaption class="notice error">chart: {error}</figcaption>}
    </figure>
  );
}
