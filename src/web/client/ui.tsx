// Small pieces every page uses: the header with the page links, cards, badges, the key form, the notices
// for "not available on this node", and formatting. Text goes through JSX (escaped by Preact): no page sets
// HTML from the network except the catalogue's sanitised markdown (markdown.ts).
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { Loaded, LiveStatus } from './net.ts';

export type PageName = 'coordinator' | 'primary' | 'catalogue';

const LINKS: { page: PageName; href: string; label: string }[] = [
  { page: 'coordinator', href: '/', label: 'Federation' },
  { page: 'primary', href: '/', label: 'Playground' },
  { page: 'catalogue', href: '/catalogue', label: 'Catalogue' },
];

/** `home` is the page GET / serves on this node (the coordinator's or the primary's). */
export function Header(props: { page: PageName; home: 'coordinator' | 'primary'; status?: LiveStatus | undefined; children?: ComponentChildren }) {
  return (
    <header class="top">
      <a class="skip" href="#main">Skip to content</a>
      <a class="brand" href="/"><span class="logo" aria-hidden="true">◆</span> SharedLLM</a>
      <nav aria-label="pages">
        {LINKS.filter((l) => l.page === 'catalogue' || l.page === props.home).map((l) => (
          <a href={l.href} aria-current={l.page === props.page ? 'page' : undefined}>{l.label}</a>
        ))}
      </nav>
      <div class="top-right">
        {props.status && <LiveDot status={props.status} />}
        {props.children}
      </div>
    </header>
  );
}

function LiveDot({ status }: { status: LiveStatus }) {
  const text = status.state === 'live' ? 'live' : status.state === 'connecting' ? 'connecting' : status.state === 'retrying' ? 'reconnecting' : 'needs a key';
  const title = status.state === 'retrying' ? `${status.message}; again in ${Math.round(status.inMs / 1000)} s` : status.state === 'unauthorized' ? status.message : text;
  return <span class={`live live-${status.state}`} title={title} role="status"><span class="dot" aria-hidden="true" />{text}</span>;
}

export function Card(props: { title: ComponentChildren; id?: string; class?: string; actions?: ComponentChildren; children: ComponentChildren }) {
  const headingId = props.id ? `${props.id}-title` : undefined;
  return (
    <section class={`card ${props.class ?? ''}`} id={props.id} aria-labelledby={headingId}>
      <div class="card-head">
        <h2 id={headingId}>{props.title}</h2>
        {props.actions && <div class="card-actions">{props.actions}</div>}
      </div>
      {props.children}
    </section>
  );
}

export function Badge(props: { kind: string; children: ComponentChildren; title?: string }) {
  return <span class={`badge badge-${props.kind.replace(/[^a-z0-9-]/gi, '')}`} title={props.title}>{props.children}</span>;
}

export function Stat(props: { label: string; value: ComponentChildren }) {
  return <div class="stat"><div class="stat-value">{props.value}</div><div class="stat-label">{props.label}</div></div>;
}

/** A panel's route is missing on this node (a feature not in this build): say so, and which route. */
export function NotAvailable(props: { route: string; what: string }) {
  return <p class="notice muted">{props.what}: not available on this node (it does not serve <code>{props.route}</code>).</p>;
}

/** What a Loaded that is not 'ok' shows. */
export function LoadState(props: { loaded: Exclude<Loaded<unknown>, { state: 'ok' }>; what: string }) {
  const l = props.loaded;
  if (l.state === 'loading') return <p class="muted">Loading {props.what}…</p>;
  if (l.state === 'missing') return <NotAvailable route={l.route} what={props.what} />;
  if (l.state === 'unauthorized') return <p class="notice warn">Sign in with your API key to see {props.what} ({l.message}).</p>;
  return <p class="notice error" role="alert">{props.what}: {l.message}</p>;
}

/** Asks for a key (API key or join token); the key goes to sessionStorage only. */
export function KeyForm(props: { label: string; current: string | undefined; onKey: (key: string | undefined) => void }) {
  const [draft, setDraft] = useState('');
  if (props.current) {
    return (
      <div class="keyform">
        <span class="muted small">signed in</span>
        <button type="button" class="ghost" onClick={() => props.onKey(undefined)}>Sign out</button>
      </div>
    );
  }
  return (
    <form class="keyform" onSubmit={(e) => { e.preventDefault(); props.onKey(draft.trim() || undefined); setDraft(''); }}>
      <label class="sr-only" for="keyfield">{props.label}</label>
      <input id="keyfield" type="password" autocomplete="off" placeholder={props.label} value={draft} onInput={(e) => setDraft(e.currentTarget.value)} />
      <button type="submit">Sign in</button>
    </form>
  );
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n >= 100 || i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
}

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

export function formatAgo(epochMs: number, now: number = Date.now()): string {
  const s = Math.max(0, Math.round((now - epochMs) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A stable colour per name (nodes, specialists): the same name gets the same colour on every page. */
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#6b8e23'];
export function colourOf(name: string, order?: readonly string[]): string {
  const i = order?.indexOf(name) ?? -1;
  if (i >= 0) return PALETTE[i % PALETTE.length]!;
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length]!;
}

export function shortId(id: string): string {
  return id.length > 14 ? `${id.slice(0, 12)}…` : id;
}
