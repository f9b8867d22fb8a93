// Training a new adapter on the user's own text (POST /v1/adapters, src/api/adapters/request.ts): the text
// typed or read from .txt files in the browser, the number of steps, and the consent, in the user's own
// words (its purpose) and with their choice about keeping the text. Nothing is sent before the user ticks the
// consent box; the server refuses a request without consent anyway (400 consent_required, nothing stored).
import { useState } from 'preact/hooks';
import type { AdapterRequest } from '../wire.ts';
import { authHeaders, errorText } from './net.ts';

export const TRAIN_FORM = {
  /** Steps offered by default: a first adapter in a minute or so on a small base. */
  defaultSteps: 40,
  /** The form's upper bound; the node's own limit (--adapter-max-steps) still applies. */
  maxSteps: 2000,
  /** Largest text the form reads from files (the node's limit applies too). */
  maxFileBytes: 4 * 1024 * 1024,
} as const;

export function TrainForm({ apiKey, onDone }: { apiKey: string; onDone: (message: string) => void }) {
  const [name, setName] = useState('');
  const [text, setText] = useState('');
  const [steps, setSteps] = useState<number>(TRAIN_FORM.defaultSteps);
  const [kind, setKind] = useState<'norm' | 'lora'>('norm');
  const [purpose, setPurpose] = useState('');
  const [keepText, setKeepText] = useState(false);
  const [agreed, setAgreed] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const [open, setOpen] = useState(false);

  const readFiles = async (files: FileList | null) => {
    if (!files) return;
    const parts: string[] = [];
    for (const file of Array.from(files)) {
      if (file.size > TRAIN_FORM.maxFileBytes) return setError(`${file.name} is larger than ${TRAIN_FORM.maxFileBytes / 1024 / 1024} MiB`);
      parts.push(await file.text());
    }
    setText((current) => [current, ...parts].filter((p) => p.trim() !== '').join('\n\n'));
  };

  const submit = async () => {
    setError(undefined);
    if (!agreed) return setError('Tick the consent box first: nothing is sent without it.');
    setBusy(true);
    const body: AdapterRequest = { name: name.trim(), kind, steps, text, consent: { purpose: purpose.trim(), keep_text: keepText } };
    try {
      const res = await fetch('/v1/adapters', { method: 'POST', headers: authHeaders(apiKey, { 'content-type': 'application/json' }), body: JSON.stringify(body) });
      if (!res.ok) return setError(await errorText(res));
      await res.body?.cancel();
      setName('');
      setText('');
      setAgreed(false);
      setOpen(false);
      onDone(`Training ${body.name}: it shows below with its progress.`);
    } catch (e) {
      setError(`cannot reach the node: ${(e as Error).message}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <details class="train" open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>Train a new adapter on your text</summary>
      <form class="train-form" onSubmit={(e) => { e.preventDefault(); void submit(); }}>
        <label for="adapter-name">Name <span class="muted small">(you chat with it as <code>&lt;base&gt;@name</code>)</span></label>
        <input id="adapter-name" required pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,63}" value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="my-letters" />
        <label for="adapter-text">Your text</label>
        <textarea id="adapter-text" rows={5} required value={text} onInput={(e) => setText(e.currentTarget.value)} placeholder="Paste some of your own writing, or add .txt files below" />
        <input id="adapter-files" type="file" accept=".txt,.md,text/plain" multiple aria-label="Add text files" onChange={(e) => void readFiles(e.currentTarget.files)} />
        <div class="train-row">
          <label for="adapter-steps">Steps</label>
          <input id="adapter-steps" type="number" min={1} max={TRAIN_FORM.maxSteps} value={steps} onInput={(e) => setSteps(Number(e.currentTarget.value))} />
          <label for="adapter-kind">Kind</label>
          <select id="adapter-kind" value={kind} onChange={(e) => setKind(e.currentTarget.value === 'lora' ? 'lora' : 'norm')}>
            <option value="norm">norm (small, fast)</option>
            <option value="lora">LoRA</option>
          </select>
        </div>
        <fieldset class="consent-box">
          <legend>Consent</legend>
          <label for="adapter-purpose">What the adapter is for (kept in the consent record)</label>
          <input id="adapter-purpose" required value={purpose} onInput={(e) => setPurpose(e.currentTarget.value)} placeholder="write replies in my style" />
          <label class="check"><input id="adapter-keep" type="checkbox" checked={keepText} onChange={(e) => setKeepText(e.currentTarget.checked)} /> Keep my text on this node after training (otherwise it is deleted when training ends)</label>
          <label class="check"><input id="adapter-consent" type="checkbox" checked={agreed} onChange={(e) => setAgreed(e.currentTarget.checked)} /> I agree that this node trains an adapter on this text for the purpose above; only I can use, export or delete it</label>
        </fieldset>
        {error && <p class="notice error" role="alert">{error}</p>}
        <button type="submit" disabled={busy || !agreed}>{busy ? 'Sending…' : 'Train'}</button>
      </form>
    </details>
  );
}
