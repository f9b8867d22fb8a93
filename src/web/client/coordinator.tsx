// The coordinator's page: the nodes of the federation (role, state, endpoints and the path a primary would
// take, memory, threads, backend), the layers each primary placed, the specialists of the directory and the
// training jobs, all from one live stream (GET /v1/dashboard/live), no reload.
import { useEffect, useState } from 'preact/hooks';
import { type CoordinatorSnapshot, CoordinatorSnapshotSchema, type NodeCard, type SpecialistCard, type TrainingJob, JOB_REF_PREFIX } from '../wire.ts';
import { LossChart } from './chart.tsx';
import { LayerBar, type Span } from './layers.tsx';
import { useKey } from './key.ts';
import { type LiveStatus, follow } from './net.ts';
import { Badge, Card, Header, KeyForm, Stat, formatAgo, formatBytes, formatDuration, shortId } from './ui.tsx';

/** RFC-0001: a primary prefers LAN, then WAN, then the relay. */
const PATH_ORDER = ['lan', 'wan', 'relay'] as const;

export function CoordinatorPage() {
  const [key, setKey] = useKey();
  const [snapshot, setSnapshot] = useState<CoordinatorSnapshot | undefined>();
  const [status, setStatus] = useState<LiveStatus>({ state: 'connecting' });
  useEffect(() => {
    setSnapshot(undefined);
    return follow('/v1/dashboard/live', CoordinatorSnapshotSchema, key, setSnapshot, setStatus);
  }, [key]);
  return (
    <>
      <Header page="coordinator" home="coordinator" status={status}>
        {(status.state === 'unauthorized' || key) && <KeyForm label="join token" current={key} onKey={setKey} />}
      </Header>
      <main id="main" tabIndex={-1} class="page">
        {status.state === 'unauthorized' && <p class="notice warn">This federation has a join token: sign in with it to see its nodes.</p>}
        {snapshot ? <Federation s={snapshot} /> : status.state !== 'unauthorized' && <p class="muted">Waiting for the coordinator…</p>}
      </main>
    </>
  );
}

/** Primaries first, then workers; by name within a role (the coordinator lists them by id). */
function byRoleThenName(a: NodeCard, b: NodeCard): number {
  return (a.role === 'primary' ? 0 : 1) - (b.role === 'primary' ? 0 : 1) || a.name.localeCompare(b.name);
}

function Federation({ s: raw }: { s: CoordinatorSnapshot }) {
  const s = { ...raw, nodes: [...raw.nodes].sort(byRoleThenName) };
  const current = s.nodes.filter((n) => n.state !== 'left' && n.state !== 'dead');
  const names = new Map(s.nodes.map((n) => [n.nodeId, n.name]));
  const order = s.nodes.map((n) => n.name);
  return (
    <>
      <div class="stats">
        <Stat label="nodes alive" value={`${s.nodes.filter((n) => n.state === 'alive').length} / ${s.nodes.length}`} />
        <Stat label="primaries" value={current.filter((n) => n.role === 'primary' && !n.models.some((m) => m.hash.startsWith(JOB_REF_PREFIX))).length} />
        <Stat label="workers" value={current.filter((n) => n.role === 'worker').length} />
        <Stat label="specialists" value={s.specialists.filter((x) => x.status === 'active').length} />
        <Stat label="coordinator up" value={formatDuration(s.uptimeMs)} />
      </div>
      <Card title="Nodes" id="nodes">
        {s.nodes.length === 0 ? <p class="muted">No node has joined yet. Start one with <code>sharedllm node --role worker …</code></p> : <NodeTable nodes={s.nodes} at={s.at} />}
      </Card>
      <Card title="Layers" id="layers">
        <Models nodes={current} names={names} order={order} />
      </Card>
      <Card title="Specialists" id="specialists">
        {s.specialists.length === 0 ? <p class="muted">The directory holds no specialist yet (<code>sharedllm specialist publish</code>).</p> : (
          <div class="grid">{s.specialists.map((x) => <Specialist x={x} names={names} />)}</div>
        )}
      </Card>
      <Card title="Training jobs" id="jobs">
        {s.jobs.length === 0 ? <p class="muted">No training job runs (<code>sharedllm diloco serve</code>).</p> : (
          <div class="grid wide">{s.jobs.map((job) => <Job job={job} />)}</div>
        )}
      </Card>
    </>
  );
}

function chosenPath(node: NodeCard): string | undefined {
  return PATH_ORDER.find((kind) => node.candidates.some((c) => c.kind === kind));
}

function NodeTable({ nodes, at }: { nodes: readonly NodeCard[]; at: number }) {
  return (
    <div class="table-wrap">
      <table class="nodes">
        <thead>
          <tr><th scope="col">node</th><th scope="col">role</th><th scope="col">state</th><th scope="col">endpoints</th><th scope="col">path</th><th scope="col">free memory</th><th scope="col">threads</th><th scope="col">backend</th><th scope="col">load</th><th scope="col">seen</th></tr>
        </thead>
        <tbody>
          {nodes.map((n) => (
            <tr data-node-id={n.nodeId} class={`state-${n.state}`}>
              <td data-label="node"><strong>{n.name}</strong><div class="mono muted small" title={n.nodeId}>{shortId(n.nodeId)}</div></td>
              <td data-label="role"><Badge kind={n.role}>{n.role}</Badge></td>
              <td data-label="state"><Badge kind={n.state}>{n.state}</Badge></td>
              <td data-label="endpoints">{n.candidates.length === 0 ? <span class="muted">none (dials out)</span> : n.candidates.map((c) => <div class="mono small"><span class="kind">{c.kind}</span> {c.addr}</div>)}</td>
              <td data-label="path">{chosenPath(n) ? <Badge kind={`path-${chosenPath(n)}`}>{chosenPath(n)!.toUpperCase()}</Badge> : <span class="muted">—</span>}</td>
              <td data-label="free memory">{formatBytes(n.freeMemoryBytes)}</td>
              <td data-label="threads">{n.threads}</td>
              <td data-label="backend">{n.backend}</td>
              <td data-label="load">{n.load === undefined ? '—' : <Meter value={n.load} />}</td>
              <td data-label="seen">{n.lastSeen === undefined ? '—' : formatAgo(n.lastSeen, at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Meter({ value }: { value: number }) {
  const pct = Math.round(Math.min(1, value) * 100);
  return <span class="meter" role="meter" aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct} title={`${pct}% busy`}><span style={{ width: `${pct}%` }} /></span>;
}

/** Per primary and model: its layers as a bar (spans when the node reports them), and the workers holding a copy. */
function Models({ nodes, names, order }: { nodes: readonly NodeCard[]; names: Map<string, string>; order: readonly string[] }) {
  // A DiLoCo server registers as a primary whose only model is its job's ref: it places no layers.
  const primaries = nodes.filter((n) => n.role === 'primary' && n.models.some((m) => !m.hash.startsWith(JOB_REF_PREFIX)));
  if (primaries.length === 0) return <p class="muted">No primary serves a model yet.</p>;
  const placing = new Set(primaries.flatMap((p) => (p.spans ?? []).map((s) => s.nodeId)));
  const reported = primaries.every((p) => p.spans !== undefined && p.spans.length > 0);
  const idle = nodes.filter((n) => n.role === 'worker' && n.state === 'alive' && !placing.has(n.nodeId)).map((n) => n.name);
  return (
    <div class="models">
      {primaries.flatMap((p) => p.models.filter((m) => !m.hash.startsWith(JOB_REF_PREFIX)).map((m) => {
        const spans: Span[] = (p.spans ?? []).filter((s) => s.model === m.hash).map((s) => ({ first: s.first, last: s.last, holder: names.get(s.nodeId) ?? shortId(s.nodeId) }));
        const copies = nodes.filter((n) => n.role === 'worker' && n.models.some((x) => x.hash === m.hash)).map((n) => n.name);
        return (
          <div class="model">
            <div class="model-head"><strong>{m.name}</strong> <span class="muted small">on {p.name} · {m.nLayers} layers · <span class="mono" title={m.hash}>{m.hash.slice(0, 19)}…</span></span></div>
            {spans.length > 0 ? <LayerBar layers={m.nLayers} spans={spans} order={order} label={`${m.name} on ${p.name}`} /> : (p.spans ?? []).length > 0 ? (
              // The primary placed its base model and not this one: a specialist it serves whole, by itself.
              <>
                <LayerBar layers={m.nLayers} spans={[{ first: 0, last: m.nLayers, holder: p.name }]} order={order} label={`${m.name} on ${p.name}`} />
                <p class="muted small">A specialist: served whole by {p.name}.</p>
              </>
            ) : (
              <>
                <LayerBar layers={m.nLayers} spans={[{ first: 0, last: m.nLayers, holder: 'placement not reported yet', unknown: true }]} order={order} label={`${m.name} on ${p.name}`} />
                <p class="muted small">Waiting for {p.name}'s placement (its heartbeats report it once it has planned its layers; its own page shows it too).</p>
              </>
            )}
            {copies.length > 0 && <p class="small">Local copies on: {copies.join(', ')}</p>}
          </div>
        );
      }))}
      {reported && idle.length > 0 && <p class="small muted idle">Holding no layers (room for more models, or for a failed worker's span): {idle.join(', ')}</p>}
    </div>
  );
}

const MANIFEST_FIELDS: [string, string][] = [['architecture', 'architecture'], ['nLayers', 'layers'], ['hiddenDim', 'hidden'], ['vocabSize', 'vocabulary'], ['quant', 'quantisation'], ['fileBytes', 'file']];

function Specialist({ x, names }: { x: SpecialistCard; names: Map<string, string> }) {
  const m = x.manifest ?? {};
  const text = (key: string) => (typeof m[key] === 'string' || typeof m[key] === 'number' ? m[key] : undefined);
  const domains = Array.isArray(m['domains']) ? m['domains'].filter((d): d is string => typeof d === 'string') : [];
  return (
    <article class="specialist" data-model-id={x.modelId}>
      <div class="specialist-head"><strong>{x.modelId}</strong> <Badge kind={x.status}>{x.status}</Badge> <span class="muted small">v{x.version}</span></div>
      {typeof m['description'] === 'string' && <p>{m['description']}</p>}
      {domains.length > 0 && <div class="tags">{domains.map((d) => <span class="tag">{d}</span>)}</div>}
      <dl class="facts">
        {MANIFEST_FIELDS.filter(([key]) => text(key) !== undefined).map(([key, label]) => (
          <><dt>{label}</dt><dd>{key === 'fileBytes' ? formatBytes(Number(text(key))) : String(text(key))}</dd></>
        ))}
        <dt>served by</dt><dd>{x.servedBy.length === 0 ? <span class="muted">no node yet</span> : x.servedBy.map((r) => names.get(r.nodeId) ?? shortId(r.nodeId)).join(', ')}</dd>
        <dt>from</dt><dd>{x.source === 'local' ? 'published here' : `gossip from ${shortId(x.source)}`}</dd>
      </dl>
    </article>
  );
}

function Job({ job }: { job: TrainingJob }) {
  const last = job.metrics.at(-1);
  const participants = last?.['participants'];
  return (
    <article class="job" data-job-id={job.id}>
      <div class="specialist-head"><strong>{job.name}</strong> <Badge kind={job.state}>{job.state}</Badge></div>
      <p class="small muted">
        served by {job.nodeName}{job.round !== undefined ? ` · round ${job.round}${job.rounds !== undefined ? ` of ${job.rounds}` : ''}` : ''}
        {typeof participants === 'number' ? ` · ${participants} participant${participants === 1 ? '' : 's'} in the last round` : ''}
      </p>
      {job.round === undefined ? (
        <p class="muted small">This server does not report its rounds to the coordinator (an older <code>sharedllm diloco serve</code>): its loss per round is in its <code>--out</code> folder's metrics.jsonl.</p>
      ) : <LossChart title={`job ${job.id.slice(0, 8)}: loss per round`} metrics={job.metrics} />}
    </article>
  );
}
