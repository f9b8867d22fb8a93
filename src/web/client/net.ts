// Talking to the node that served the page: JSON GETs validated with the page's schemas (../wire.ts), the
// live stream (server-sent events read through fetch, so that it can carry the caller's key, which an
// EventSource cannot), and authorised requests. Every answer is checked before the page shows it.
import * as z from 'zod';

/** Both services' error shape: OpenAI's and the coordinator's have error.message. */
const ErrorShape = z.object({ error: z.object({ message: z.string() }).loose() }).loose();

/** What a panel has: still loading, the data, no such route on this node, no key (or a wrong one), an error. */
export type Loaded<T> =
  | { state: 'loading' }
  | { state: 'ok'; data: T }
  | { state: 'missing'; route: string }
  | { state: 'unauthorized'; message: string }
  | { state: 'error'; message: string };

export const NET = {
  /** First wait before the live stream reconnects; doubles up to maxRetryMs. */
  retryMs: 1_000,
  maxRetryMs: 15_000,
} as const;

export function authHeaders(key: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return key ? { ...extra, authorization: `Bearer ${key}` } : extra;
}

/** The message of an error answer (OpenAI's and the coordinator's shapes both have error.message). */
export async function errorText(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  return errorInText(text) ?? (text.slice(0, 300) || `${res.status} ${res.statusText}`);
}

/** The message of an error body (JSON in either service's shape), or undefined. */
export function errorInText(text: string): string | undefined {
  try {
    const parsed = ErrorShape.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data.error.message : undefined;
  } catch {
    return undefined; // not JSON
  }
}

export async function getJson<T>(path: string, schema: z.ZodType<T>, key: string | undefined, signal?: AbortSignal): Promise<Loaded<T>> {
  let res: Response;
  try {
    res = await fetch(path, { headers: authHeaders(key), ...(signal ? { signal } : {}) });
  } catch (error) {
    return { state: 'error', message: `cannot reach the node: ${(error as Error).message}` };
  }
  if (res.status === 404) return { state: 'missing', route: path.split('?')[0]! };
  if (res.status === 401 || res.status === 403) return { state: 'unauthorized', message: await errorText(res) };
  if (!res.ok) return { state: 'error', message: await errorText(res) };
  const parsed = schema.safeParse(await res.json().catch(() => undefined));
  if (!parsed.success) return { state: 'error', message: `${path} answered a shape this page does not know` };
  return { state: 'ok', data: parsed.data };
}

/** Reads an event stream's `data:` payloads (the WHATWG format: frames end with a blank line). */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = frame.split('\n').filter((line) => line.startsWith('data:')).map((line) => line.slice(line.startsWith('data: ') ? 6 : 5));
        if (data.length > 0) yield data.join('\n');
      }
    }
  } finally {
    reader.releaseLock();
  }
}

export type LiveStatus = { state: 'connecting' } | { state: 'live'; at: number } | { state: 'retrying'; message: string; inMs: number } | { state: 'unauthorized'; message: string };

/**
 * Follows a live route: each valid snapshot goes to onData; reconnects with backoff when the stream ends or
 * fails; stops on a 401/403 (the page asks for a key) and when the returned function is called.
 */
export function follow<T>(path: string, schema: z.ZodType<T>, key: string | undefined, onData: (data: T) => void, onStatus: (status: LiveStatus) => void): () => void {
  const abort = new AbortController();
  let delay: number = NET.retryMs;
  const run = async () => {
    while (!abort.signal.aborted) {
      onStatus({ state: 'connecting' });
      let message: string;
      try {
        const res = await fetch(path, { headers: authHeaders(key, { accept: 'text/event-stream' }), signal: abort.signal });
        if (res.status === 401 || res.status === 403) {
          onStatus({ state: 'unauthorized', message: await errorText(res) });
          return;
        }
        if (!res.ok || !res.body) throw new Error(await errorText(res));
        for await (const data of sseData(res.body)) {
          const parsed = schema.safeParse(JSON.parse(data));
          if (!parsed.success) throw new Error(`the live stream sent a shape this page does not know`);
          delay = NET.retryMs;
          onData(parsed.data);
          onStatus({ state: 'live', at: Date.now() });
        }
        message = 'the stream ended';
      } catch (error) {
        if (abort.signal.aborted) return;
        message = (error as Error).message;
      }
      onStatus({ state: 'retrying', message, inMs: delay });
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, NET.maxRetryMs);
    }
  };
  void run();
  return () => abort.abort();
}
