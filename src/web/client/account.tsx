// The signed-in user's own data on this primary (issue 12): their adapters with training progress and
// consent records, export and delete, the audit log of their events, deleting everything, and the privacy
// statement. Everything is read with the user's key: the API answers only the caller's own data, and this
// panel is re-mounted when the key changes, so nothing of one user stays on screen for another.
import { useEffect, useRef, useState } from 'preact/hooks';
import { type Adapter, AdapterListSchema, type AuditEvent, AuditListSchema, type Me, MeSchema } from '../wire.ts';
import { type Loaded, authHeaders, errorText, getJson } from './net.ts';
import { renderMarkdown } from './markdown.ts';
import { TrainForm } from './train-form.tsx';
import { Badge, Card, LoadState, formatMs } from './ui.tsx';

export const ACCOUNT = {
  /** How often the list is read again while an adapter is queued or training. */
  progressPollMs: 1_500,
} as const;

const RUNNING = new Set(['queued', 'training']);

export function Account({ apiKey }: { apiKey: string }) {
  const [me, setMe] = useState<Loaded<Me>>({ state: 'loading' });
  const [adapters, setAdapters] = useState<Loaded<Adapter[]>>({ state: 'loading' });
  const [audit, setAudit] = useState<Loaded<AuditEvent[]>>({ state: 'loading' });
  const [message, setMessage] = useState<string | undefined>();
  const [gone, setGone] = useState(false);
  const refresh = () => {
    void getJson('/v1/users/me', MeSchema, apiKey).then(setMe);
    void getJson('/v1/adapters', AdapterListSchema, apiKey).then((l) => setAdapters(l.state === 'ok' ? { state: 'ok', data: l.data.data } : l));
    void getJson('/v1/audit', AuditListSchema, apiKey).then((l) => setAudit(l.state === 'ok' ? { state: 'ok', data: l.data.data } : l));
  };
  useEffect(refresh, [apiKey]);
  // Training progress moves: look again while a job is queued or runs.
  useEffect(() => {
    if (adapters.state !== 'ok' || !adapters.data.some((a) => RUNNING.has(a.state))) return;
    const timer = setTimeout(refresh, ACCOUNT.progressPollMs);
    return () => clearTimeout(timer);
  }, [adapters]);

  const remove = async (a: Adapter) => {
    if (!confirm(`Delete adapter ${a.name}? Its weights, consent record and any kept text are deleted for good.`)) return;
    const res = await fetch(`/v1/adapters/${encodeURIComponent(a.id)}`, { method: 'DELETE', headers: authHeaders(apiKey) });
    setMessage(res.ok ? `Deleted ${a.name}.` : `Could not delete: ${await errorText(res)}`);
    refresh();
  };
  const exportAdapter = async (a: Adapter, format: 'adapter' | 'lora' | 'merged') => {
    const res = await fetch(`/v1/adapters/${encodeURIComponent(a.id)}/export?format=${format}`, { headers: authHeaders(apiKey) });
    if (!res.ok) return setMessage(`Could not export: ${await errorText(res)}`);
    const named = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1];
    const url = URL.createObjectURL(await res.blob());
    const link = document.createElement('a');
    link.href = url;
    link.download = named ?? `${a.name.replace(/[^\w.-]/g, '_')}.gguf`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    refresh();
  };
  const deleteMe = async () => {
    if (!confirm('Delete everything this primary holds about you: adapters, consent records, kept text, the audit log, and your key? This cannot be undone.')) return;
    const res = await fetch('/v1/users/me', { method: 'DELETE', headers: authHeaders(apiKey) });
    if (!res.ok) return setMessage(`Could not delete: ${await errorText(res)}`);
    setGone(true);
  };

  if (gone) {
    return <Card title="Your data" id="adapters"><p class="notice" role="status">Everything this primary held about you is deleted, your key with it. Sign out: the key works no more.</p></Card>;
  }
  if (me.state !== 'ok' && me.state !== 'loading') {
    // An admin key or a key of no user: adapters belong to users (403 user_key_required says how to get one).
    return <Card title="Your data" id="adapters"><LoadState loaded={me} what="Your adapters and audit log" /></Card>;
  }
  return (
    <>
      <Card title={me.state === 'ok' ? `Your adapters · ${me.data.name}` : 'Your adapters'} id="adapters"
        actions={me.state === 'ok' ? <button type="button" class="danger ghost" onClick={() => void deleteMe()}>Delete all my data</button> : undefined}>
        {message && <p class="notice" role="status">{message}</p>}
        <TrainForm apiKey={apiKey} onDone={(m) => { setMessage(m); refresh(); }} />
        {adapters.state !== 'ok' ? <LoadState loaded={adapters} what="Adapters" /> : adapters.data.length === 0 ? <p class="muted">You have no adapter yet.</p> : (
          <ul class="adapters">
            {adapters.data.map((a) => <AdapterItem a={a} onExport={(f) => void exportAdapter(a, f)} onDelete={() => void remove(a)} />)}
          </ul>
        )}
      </Card>
      <Card title="Audit log" id="audit">
        {audit.state !== 'ok' ? <LoadState loaded={audit} what="The audit log" /> : audit.data.length === 0 ? <p class="muted">No event yet.</p> : (
          <div class="table-wrap">
            <table>
              <thead><tr><th scope="col">when</th><th scope="col">event</th><th scope="col">adapter</th><th scope="col">details</th></tr></thead>
              <tbody>
                {audit.data.slice().reverse().map((e) => {
                  const { seq, at, event, adapter_id, name, ...rest } = e;
                  return (
                    <tr data-seq={seq}>
                      <td>{new Date(at).toLocaleString()}</td>
                      <td>{event}</td>
                      <td title={adapter_id ?? undefined}>{typeof name === 'string' ? name : adapter_id ?? '—'}</td>
                      <td class="small mono">{Object.entries(rest).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' · ')}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </Card>
      <Privacy />
    </>
  );
}

function AdapterItem({ a, onExport, onDelete }: { a: Adapter; onExport: (format: 'adapter' | 'lora' | 'merged') => void; onDelete: () => void }) {
  const ready = a.state === 'ready';
  return (
    <li class="adapter" data-adapter-id={a.id} data-state={a.state}>
      <div class="adapter-head">
        <strong>{a.name}</strong> <Badge kind="kind">{a.kind}{a.rank !== undefined ? ` r${a.rank}` : ''}</Badge> <Badge kind={a.state}>{a.state}</Badge>
        <span class="grow" />
        <button type="button" disabled={!ready} onClick={() => onExport(a.kind === 'lora' ? 'lora' : 'adapter')} aria-label={`Export ${a.name}`}>Export</button>
        <button type="button" disabled={!ready} class="ghost" onClick={() => onExport('merged')} aria-label={`Export ${a.name} merged into the base`}>Merged GGUF</button>
        <button type="button" class="danger" onClick={onDelete} aria-label={`Delete ${a.name}`}>Delete</button>
      </div>
      <p class="small muted">chat with it as <code>{a.model}</code></p>
      <div class="progress-line">
        <progress max={a.steps} value={a.step} aria-label={`training step ${a.step} of ${a.steps}`} />
        <span class="small muted">
          step {a.step}/{a.steps}{a.loss !== null ? ` · loss ${a.loss.toFixed(3)}` : ''}
          {a.queue_position !== null ? ` · ${a.queue_position === 0 ? 'next' : `${a.queue_position} ahead`} in the queue` : ''}
          {a.eta_seconds !== null ? ` · ${formatMs(a.eta_seconds * 1000)} left` : ''}
        </span>
      </div>
      {a.error && <p class="notice error small">{a.error}</p>}
      <p class="small consent">
        Consent{a.consent.given_at ? ` given ${new Date(a.consent.given_at).toLocaleString()}` : ''}: {a.consent.purpose} · training text {a.text_kept ? 'kept' : a.consent.keep_text ? 'kept (until you delete it)' : 'deleted after training'}
        {' · '}<span class="mono" title={`SHA-256 of the text: ${a.consent.text_sha256}`}>sha256 {a.consent.text_sha256.slice(0, 12)}…</span>
      </p>
    </li>
  );
}

function Privacy() {
  const box = useRef<HTMLDivElement>(null);
  const [state, setState] = useState<'loading' | 'ok' | 'missing'>('loading');
  useEffect(() => {
    void fetch('/ui/privacy.md').then(async (res) => {
      if (!res.ok) return setState('missing');
      box.current?.replaceChildren(renderMarkdown(await res.text(), { base: '/ui/', served: () => false }));
      setState('ok');
    }, () => setState('missing'));
  }, []);
  return (
    <Card title="Privacy" id="privacy">
      {state === 'missing' && <p class="muted">This install has no privacy statement (docs/privacy.md).</p>}
      <details open={false} hidden={state !== 'ok'}>
        <summary>Who sees what, what is kept, how to export and delete</summary>
        <div class="markdown" ref={box} />
      </details>
    </Card>
  );
}
