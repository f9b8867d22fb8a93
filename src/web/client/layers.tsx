// A model's layers as one bar: a segment per span, coloured by who holds it, labelled [first, last).
import { colourOf } from './ui.tsx';

export interface Span {
  first: number;
  last: number;
  /** Who holds it (a node name or id). */
  holder: string;
  /** Extra text for the tooltip (address, role). */
  detail?: string;
  /** Drawn grey: who holds it is not known here. */
  unknown?: boolean;
}

export function LayerBar(props: { layers: number; spans: readonly Span[]; order?: readonly string[]; label: string }) {
  const total = Math.max(1, props.layers);
  return (
    <div class="layerbar-wrap">
      <div class="layerbar" role="img" aria-label={`${props.label}: ${props.spans.map((s) => `layers ${s.first} to ${s.last - 1} on ${s.holder}`).join('; ')}`}>
        {props.spans.map((s) => (
          <div class="seg" style={{ flexGrow: s.last - s.first, flexBasis: 0, background: s.unknown ? '#9aa3b5' : colourOf(s.holder, props.order) }} title={`${s.holder}: layers [${s.first}, ${s.last})${s.detail ? ` · ${s.detail}` : ''}`}>
            <span>{s.last - s.first === 1 ? `${s.first}` : `${s.first}–${s.last - 1}`}</span>
          </div>
        ))}
      </div>
      <div class="layerbar-legend">
        {[...new Set(props.spans.filter((s) => !s.unknown).map((s) => s.holder))].map((h) => (
          <span class="legend-item"><span class="swatch" style={{ background: colourOf(h, props.order) }} />{h}</span>
        ))}
        <span class="muted small">{total} layers</span>
      </div>
    </div>
  );
}
