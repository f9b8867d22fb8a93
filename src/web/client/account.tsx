// The signed-in user's own data on this primary (issue 12): their adapters with training progress and
// consent records, export and delete, the audit log of their events, deleting everything, and the privacy
// statement. Everything is read with the user's key: the API answers only the caller's own data, and this
// panel is re-mounted when the key changes, so nothing of one user stays on screen for another.
import { useEffect, useRef, useState } from 'preact/hooks';
import { type Adapter, AdapterListSchema, type AuditEvent, AuditListSchema } from '../wire.ts';
import { type Loaded, authHeaders, errorText, getJson } from './net.ts';
import { renderMarkdown } from './markdown.ts';
import { Badge, Card, LoadState, formatMs } from './ui.tsx';

export function Account({ apiKey }: { apiKey: string | undefined }) {
  const [adapters, setAdapters] = useState<Loaded<Adapter[]>>({ state: 'loading' });
  const [audit, setAudit] = useState<Loaded<AuditEvent[]>>({ state: 'loading' });
  const [message, setMessage] = useState<string | undefined>();
  const refresh = () => {
    void getJson('/v1/adapters', AdapterListSchema, apiKey).then((l) => setAdapters(l.state === 'ok' ? { state: 'ok', data: l.data.data } : l));
    void getJson('/v1/audit', AuditListSchema, apiKey).then((l) => setAudit(l.state === 'ok' ? { state: 'ok', data: l.data.data } : l));
  };
  useEffect(refresh, [apiKey]);
  // Training progress moves: look again while a job runs.
  useEffect(() => {
    if (adapters.state !== 'ok' || !adapters.data.some((a) => a.state === 'training' || a.state === 'queued')) return;
    const timer = setTimeout(refresh, 2000);
    return () => clearTimeout(timer);
  }, [adapters]);

  const remove = async (a: Adapter) => {
    if (!confirm(`Delete adapter ${a.name ?? a.id}? Its weights, consent record and any kept text are deleted for good.`)) return;
    const res = await fetch(`/v1/adapters/${encodeURIComponent(a.id)}`, { method: 'DELETE', headers: authHeaders(apiKey) });
    setMessage(res.ok ? `Deleted ${a.name ?? a.id}.` : `Could not delete: ${await errorText(res)}`);
    refresh();
  };
  const exportAdapter = async (a: Adapter) => {
    const res = await fetch(`/v1/adapters/${encodeURIComponent(a.id)}/export`, { headers: authHeaders(apiKey) });
    if (!res.ok) return setMessage(`Could not export: ${await errorText(res)}`);
    const url = URL.createObjectURL(await res.blob());
    const link = document.createElement('a');
    link.href = url;
    link.download = `${(a.name ?? a.id).replace(/[^\w.-]/g, '_')}.gguf`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    refresh();
  };
  const deleteMe = async () => {
    if (!confirm('Delete everything this primary holds about you: adapters, consent records, kept text? This cannot be undone.')) return;
    const res = await fetch('/v1/users/me', { method: 'DELETE', headers: authHeaders(apiKey) });
    setMessage(res.ok ? 'Everything this primary held about you is deleted.' : `Could not delete: ${res.status === 404 ? 'not available on this node (DELETE /v1/users/me)' : await errorText(res)}`);
    refresh();
  };

  return (
    <>
      <Card title="Your adapters" id="adapters" actions={adapters.state === 'ok' ? <button type="button" class="danger ghost" onClick={() => void deleteMe()}>Delete all my data</button> : undefined}>
        {message && <p class="notice" role="status">{message}</p>}
        {adapters.state !== 'ok' ? <LoadState loaded={adapters} what="Adapters" /> : adapters.data.length === 0 ? <p class="muted">You have no adapter. Train one with <code>POST /v1/adapters</code> (your text and your consent).</p> : (
          <ul class="adapters">
            {adapters.data.map((a) => (
              <li class="adapter" data-adapter-id={a.id}>
                <div class="adapter-head">
                  <strong>{a.name ?? a.id}</strong> {a.kind && <Badge kind="kind">{a.kind}</Badge>} {a.state && <Badge kind={a.state}>{a.state}</Badge>}
                  <span class="grow" />
                  <button type="button" onClick={() => void exportAdapter(a)} aria-label={`Export ${a.name ?? a.id}`}>Export</button>
                  <button type="button" class="danger" onClick={() => void remove(a)} aria-label={`Delete ${a.name ?? a.id}`}>Delete</button>
                </div>
                {a.steps !== undefined && a.step !== undefined && (
                  <div class="progress-line">
                    <progress max={a.steps} value={a.step} aria-label={`training step ${a.step} of ${a.steps}`} />
                    <span class="small muted">step {a.step}/{a.steps}{a.loss !== undefined ? ` · loss ${a.loss.toFixed(3)}` : ''}{a.etaMs !== undefined && a.state === 'training' ? ` · ${formatMs(a.etaMs)} left` : ''}</span>
                  </div>
                )}
                {a.consent && (
                  <p class="small consent">Consent{a.consent.at !== undefined ? ` given ${new Date(a.consent.at).toLocaleString()}` : ''}: {a.consent.purpose ?? 'no purpose recorded'} · training text {a.consent.keepText ? 'kept' : 'deleted after training'}{a.consent.textHash ? <> · <span class="mono" title={a.consent.textHash}>{a.consent.textHash.slice(0, 19)}…</span></> : null}</p>
                )}
              </li>
            ))}
          </ul>
        )}
      </Card>
      <Card title="Audit log" id="audit">
        {audit.state !== 'ok' ? <LoadState loaded={audit} what="The audit log" /> : audit.data.length === 0 ? <p class="muted">No event yet.</p> : (
          <div class="table-wrap">
            <table>
              <thead><tr><th scope="col">when</th><th scope="col">event</th><th scope="col">details</th></tr></thead>
              <tbody>
                {audit.data.slice().reverse().map((e) => {
                  const { at, event, type, ...rest } = e;
                  return <tr><td>{at === undefined ? '—' : new Date(at).toLocaleString()}</td><td>{event ?? type ?? '—'}</td><td class="small mono">{Object.entries(rest).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' · ')}</td></tr>;
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
