// The primary's pipeline, live: which node holds which layers, where a decoded token's time goes (the
// primary's compute, each worker's, the hops between), failovers, bans and the verification of workers.
import type { FederationView, PrimarySnapshot } from '../wire.ts';
import { LayerBar } from './layers.tsx';
import { Badge, Card, Stat, colourOf, formatAgo, formatMs, shortId } from './ui.tsx';

export function Pipeline({ s }: { s: PrimarySnapshot }) {
  const f = s.federation;
  return (
    <Card title="Pipeline" id="pipeline">
      {s.health && (
        <div class="stats compact">
          <Stat label="generating" value={`${s.health.active} / ${s.health.maxConcurrent}`} />
          <Stat label="queued" value={s.health.queued} />
          {f && <Stat label="failovers" value={f.recoveries.length} />}
          {f?.verification && <Stat label="checks / mismatches" value={`${f.verification.checked} / ${f.verification.mismatches}`} />}
        </div>
      )}
      {f === null ? <p class="muted">This primary serves its model alone (no federation): no pipeline to show.</p> : <Federation f={f} />}
    </Card>
  );
}

function holder(p: FederationView['plan'][number], i: number): string {
  return i === 0 ? 'primary' : `${shortId(p.nodeId)} (${p.where})`;
}

function Federation({ f }: { f: FederationView }) {
  const names = f.plan.map(holder);
  const t = f.decodeTimings;
  return (
    <>
      <h3>Layers of {f.model}</h3>
      <LayerBar layers={f.layers} order={names} label={`layers of ${f.model}`} spans={f.plan.map((p, i) => ({ first: p.first, last: p.last, holder: names[i]!, detail: p.where }))} />
      <h3>Time per decoded token</h3>
      {t === undefined || t.steps === 0 ? <p class="muted small">No token decoded yet: send a message.</p> : <Timings t={t} plan={f.plan} names={names} />}
      <h3>Failovers and bans</h3>
      {f.recoveries.length === 0 && f.bans.length === 0 ? <p class="muted small">None: every worker answered.</p> : (
        <ul class="events">
          {f.recoveries.map((r) => <li><Badge kind="failover">failover</Badge> {shortId(r.nodeId)} → {r.replacement} in {formatMs(r.ms)}{r.reason ? <span class="muted small"> · {r.reason}</span> : null}</li>)}
          {f.bans.map((b) => <li><Badge kind="ban">banned</Badge> {shortId(b.nodeId)} until {formatAgo(b.until).replace(' ago', '')} from now · {b.strikes} strike{b.strikes === 1 ? '' : 's'}</li>)}
        </ul>
      )}
      <h3>Verification of workers</h3>
      {f.verification === null ? <p class="muted small">Off (<code>--verify-rate 0</code>).</p> : (
        <dl class="facts">
          <dt>hop-steps checked</dt><dd>{f.verification.checked}</dd>
          <dt>tokens recomputed</dt><dd>{f.verification.tokens}</dd>
          <dt>mismatches</dt><dd>{f.verification.mismatches}</dd>
          <dt>unverifiable</dt><dd>{f.verification.unverifiable}</dd>
          <dt>largest honest error</dt><dd>{f.verification.maxPassedError.toFixed(4)} × RMS</dd>
        </dl>
      )}
    </>
  );
}

function Timings({ t, plan, names }: { t: NonNullable<FederationView['decodeTimings']>; plan: FederationView['plan']; names: string[] }) {
  const parts = [
    { label: 'primary compute', ms: t.localMs, colour: colourOf(names[0]!, names) },
    ...plan.slice(1).map((p, i) => ({ label: `${names[i + 1]} compute`, ms: t.workerMs[p.nodeId] ?? 0, colour: colourOf(names[i + 1]!, names) })),
    { label: 'hops (network, framing, queues)', ms: Math.max(0, t.hopsMs), colour: '#9aa3b5' },
  ];
  // What the parts leave of the whole step (sampling, scheduling; medians need not add up exactly).
  const rest = t.totalMs - parts.reduce((a, p) => a + p.ms, 0);
  if (rest > 0) parts.push({ label: 'rest of the step (sampling, scheduling)', ms: rest, colour: '#d5dae5' });
  const total = Math.max(t.totalMs, parts.reduce((a, p) => a + p.ms, 0), 1e-6);
  return (
    <>
      <div class="stackbar" role="img" aria-label={parts.map((p) => `${p.label} ${formatMs(p.ms)}`).join(', ')}>
        {parts.map((p) => <div style={{ flexGrow: p.ms / total, flexBasis: 0, background: p.colour }} title={`${p.label}: ${formatMs(p.ms)}`} />)}
      </div>
      <ul class="timings">
        {parts.map((p) => <li><span class="swatch" style={{ background: p.colour }} />{p.label}<span class="num">{formatMs(p.ms)}</span></li>)}
        <li class="total">whole step (median of {t.steps})<span class="num">{formatMs(t.totalMs)}</span></li>
      </ul>
    </>
  );
}
