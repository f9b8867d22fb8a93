// The playground: a chat over the node's OpenAI API (POST /v1/chat/completions, streamed), with a model
// picker from GET /v1/models: the base, its specialists, the mixture and the caller's own adapters. A
// mixture answer (issue 13) carries, per token, each specialist's share of that token's probability: the
// token is coloured by its top specialist and shows the shares on hover and in the legend.
import { useEffect, useRef, useState } from 'preact/hooks';
import { type Attribution, ChatChunkSchema, ModelListSchema } from '../wire.ts';
import { type Loaded, authHeaders, errorInText, errorText, getJson, sseData } from './net.ts';
import { LoadState, colourOf } from './ui.tsx';

export const CHAT = {
  /** Most tokens per answer. */
  maxTokens: 128,
  temperature: 0.7,
} as const;

interface Piece {
  text: string;
  attribution?: Attribution;
}

interface Message {
  role: 'user' | 'assistant';
  pieces: Piece[];
  error?: string;
}

type Kind = 'base' | 'specialist' | 'mixture' | 'adapter';

export function kindOf(id: string, base: string | undefined): Kind {
  if (id === 'mixture' || id.startsWith('mixture:')) return 'mixture';
  if (id.includes('@')) return 'adapter';
  return id === base ? 'base' : 'specialist';
}

const GROUPS: [Kind, string][] = [['base', 'Base model'], ['specialist', 'Specialists'], ['mixture', 'Mixture'], ['adapter', 'Your adapters']];

export function Chat({ apiKey, baseModel }: { apiKey: string | undefined; baseModel: string | undefined }) {
  const [models, setModels] = useState<Loaded<string[]>>({ state: 'loading' });
  const [model, setModel] = useState<string>('');
  const [messages, setMessages] = useState<Message[]>([]);
  const [draft, setDraft] = useState('');
  const [busy, setBusy] = useState<AbortController | undefined>();
  const log = useRef<HTMLDivElement>(null);

  // Read again when the picker gets focus: an adapter that finished training since shows up.
  const [asked, setAsked] = useState(0);
  useEffect(() => {
    void getJson('/v1/models', ModelListSchema, apiKey).then((loaded) => {
      if (loaded.state !== 'ok') return setModels(loaded);
      const ids = loaded.data.data.map((m) => m.id);
      setModels({ state: 'ok', data: ids });
      setModel((current) => (ids.includes(current) ? current : (ids.find((id) => id === baseModel) ?? ids[0] ?? '')));
    });
  }, [apiKey, baseModel, asked]);
  useEffect(() => log.current?.scrollTo({ top: log.current.scrollHeight }), [messages]);

  const send = async () => {
    const text = draft.trim();
    if (!text || busy || !model) return;
    const history: Message[] = [...messages, { role: 'user', pieces: [{ text }] }];
    const answer: Message = { role: 'assistant', pieces: [] };
    setMessages([...history, answer]);
    setDraft('');
    const abort = new AbortController();
    setBusy(abort);
    const update = () => setMessages([...history, { ...answer, pieces: [...answer.pieces] }]);
    try {
      const res = await fetch('/v1/chat/completions', {
        method: 'POST',
        headers: authHeaders(apiKey, { 'content-type': 'application/json' }),
        body: JSON.stringify({
          model, stream: true, max_tokens: CHAT.maxTokens, temperature: CHAT.temperature,
          messages: history.map((m) => ({ role: m.role, content: m.pieces.map((p) => p.text).join('') })),
        }),
        signal: abort.signal,
      });
      if (!res.ok || !res.body) throw new Error(await errorText(res));
      for await (const data of sseData(res.body)) {
        if (data === '[DONE]') break;
        const chunk = ChatChunkSchema.safeParse(JSON.parse(data));
        if (!chunk.success) {
          // The API's late failure: `data: {error}` as the last frame.
          throw new Error(errorMessage(data));
        }
        const content = chunk.data.choices[0]?.delta?.content ?? '';
        if (content === '') continue;
        const attribution = chunk.data.sharedllm?.attribution;
        answer.pieces.push(attribution ? { text: content, attribution } : { text: content });
        update();
      }
    } catch (error) {
      if (!abort.signal.aborted) answer.error = (error as Error).message;
      else answer.error = 'stopped';
      update();
    } finally {
      setBusy(undefined);
    }
  };

  const specialists = models.state === 'ok' ? models.data.filter((id) => kindOf(id, baseModel) === 'specialist') : [];
  return (
    <div class="chat">
      <div class="chat-bar">
        <label for="model">Model</label>
        {models.state === 'ok' ? (
          <select id="model" value={model} onChange={(e) => setModel(e.currentTarget.value)} onFocus={() => setAsked((n) => n + 1)}>
            {GROUPS.map(([kind, label]) => {
              const ids = models.data.filter((id) => kindOf(id, baseModel) === kind);
              return ids.length === 0 ? null : <optgroup label={label}>{ids.map((id) => <option value={id}>{id}</option>)}</optgroup>;
            })}
          </select>
        ) : <LoadState loaded={models} what="the models" />}
        {messages.length > 0 && <button type="button" class="ghost" onClick={() => setMessages([])} disabled={busy !== undefined}>New chat</button>}
      </div>
      <div class="chat-log" ref={log} aria-live="polite" aria-label="conversation">
        {messages.length === 0 && <p class="muted chat-empty">Ask something. The answer streams token by token through the federation's pipeline{model && kindOf(model, baseModel) === 'mixture' ? '; each token is coloured by the specialist it came from' : ''}.</p>}
        {messages.map((m) => <Bubble m={m} order={specialists} />)}
      </div>
      <form class="chat-input" onSubmit={(e) => { e.preventDefault(); void send(); }}>
        <label class="sr-only" for="prompt">Message</label>
        <textarea id="prompt" rows={2} placeholder="Message (Enter sends, Shift+Enter for a new line)" value={draft}
          onInput={(e) => setDraft(e.currentTarget.value)}
          onKeyDown={(e) => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); void send(); } }} />
        {busy ? <button type="button" class="stop" onClick={() => busy.abort()}>Stop</button> : <button type="submit" disabled={!draft.trim() || !model}>Send</button>}
      </form>
    </div>
  );
}

function errorMessage(data: string): string {
  return errorInText(data) ?? data.slice(0, 300);
}

function Bubble({ m, order }: { m: Message; order: readonly string[] }) {
  const attributed = m.pieces.some((p) => p.attribution);
  return (
    <div class={`bubble ${m.role}`} data-role={m.role}>
      <div class="bubble-text">
        {m.pieces.length === 0 && !m.error && <span class="typing" aria-label="waiting for the first token">…</span>}
        {m.pieces.map((p) => (p.attribution ? <Token p={p} order={order} /> : p.text))}
      </div>
      {attributed && <Legend pieces={m.pieces} order={order} />}
      {m.error && <div class={m.error === 'stopped' ? 'muted small' : 'notice error'} role={m.error === 'stopped' ? undefined : 'alert'}>{m.error}</div>}
    </div>
  );
}

function top(attribution: Attribution): { model: string; share: number } | undefined {
  return attribution.reduce<{ model: string; share: number } | undefined>((best, a) => (best === undefined || a.share > best.share ? a : best), undefined);
}

function Token({ p, order }: { p: Piece & { attribution?: Attribution }; order: readonly string[] }) {
  const best = top(p.attribution ?? []);
  const shares = [...(p.attribution ?? [])].sort((a, b) => b.share - a.share).map((a) => `${a.model} ${(a.share * 100).toFixed(0)}%`).join(' · ');
  const colour = best ? colourOf(best.model, order) : 'transparent';
  // The shares show on hover in a tooltip of the page's own (CSS, .tok:hover .shares), not in `title`: it shows
  // at once, in screenshots too, and only one tooltip appears.
  return (
    <span class="tok" data-top={best?.model} data-shares={shares} style={{ background: `${colour}40`, borderBottomColor: colour }}>
      {p.text}<span class="shares" aria-hidden="true">{shares}</span>
    </span>
  );
}

/** Tokens per top specialist and each one's mean share over the answer. */
function Legend({ pieces, order }: { pieces: readonly Piece[]; order: readonly string[] }) {
  const count = new Map<string, number>();
  const share = new Map<string, number>();
  let n = 0;
  for (const p of pieces) {
    if (!p.attribution) continue;
    n++;
    const best = top(p.attribution);
    if (best) count.set(best.model, (count.get(best.model) ?? 0) + 1);
    for (const a of p.attribution) share.set(a.model, (share.get(a.model) ?? 0) + a.share);
  }
  return (
    <div class="attr-legend" aria-label="attribution">
      {[...share.keys()].sort((a, b) => (share.get(b) ?? 0) - (share.get(a) ?? 0)).map((model) => (
        <span class="legend-item" title={`${model}: top specialist of ${count.get(model) ?? 0} of ${n} tokens, mean share ${(((share.get(model) ?? 0) / n) * 100).toFixed(0)}%`}>
          <span class="swatch" style={{ background: colourOf(model, order) }} />{model} <span class="muted">{count.get(model) ?? 0} tok · {(((share.get(model) ?? 0) / n) * 100).toFixed(0)}%</span>
        </span>
      ))}
    </div>
  );
}
