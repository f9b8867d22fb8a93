/**
 * Server-sent events (the WHATWG event-stream format): headers, one frame per event, an error frame, the
 * end of a stream. Low-level helpers for code that drives a response itself, and SseStream, a route body
 * that streams an async iterable:
 *
 *   return { body: new SseStream(events, { done: '[DONE]' }) };   // OpenAI's final frame
 *
 * SseStream awaits the FIRST event before it writes the status line, so a request that fails early still
 * gets a proper status and error body (the listener's error path). A failure after that can only be told
 * inside the stream: a last `data: <error body>` frame in the service's error shape, and no `done` frame.
 * When the request's signal aborts (client gone, server shutting down) the stream ends at once with an
 * error frame carrying the abort reason, even while the source is still waiting for its next event; the
 * source is then closed (its `finally` blocks run) before writeTo returns, so a server that waits for its
 * requests knows their resources are freed. Sources should watch the request's signal too.
 */
import type { ServerResponse } from 'node:http';
import type { ResponseBody, ResponseContext } from './router.ts';

export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  // Ask reverse proxies (nginx) not to buffer the stream.
  'x-accel-buffering': 'no',
};

export interface SseEventOptions {
  /** The `event:` field (the listener's event type); none means the default 'message'. */
  event?: string;
  /** The `id:` field (what the browser sends back as Last-Event-ID when it reconnects). */
  id?: string;
}

/**
 * One event frame. Strings are sent as they are (a line break starts another `data:` line, as the format
 * requires); anything else as JSON on one line.
 */
export function sseFrame(data: unknown, options: SseEventOptions = {}): string {
  const text = typeof data === 'string' ? data : JSON.stringify(data);
  let frame = '';
  if (options.event !== undefined) frame += `event: ${singleLine(options.event, 'event')}\n`;
  if (options.id !== undefined) frame += `id: ${singleLine(options.id, 'id')}\n`;
  for (const line of text.split(/\r\n|\r|\n/)) frame += `data: ${line}\n`;
  return `${frame}\n`;
}

function singleLine(value: string, field: string): string {
  if (/[\r\n]/.test(value)) throw new TypeError(`SSE ${field} field must be one line, got ${JSON.stringify(value)}`);
  return value;
}

/** Writes the status line and the event-stream headers. */
export function openSse(res: ServerResponse, headers: Record<string, string> = {}): void {
  res.writeHead(200, { ...SSE_HEADERS, ...headers });
}

/** Writes one event; resolves when the socket can take more (or has closed: check res.destroyed). */
export async function writeSseEvent(res: ServerResponse, data: unknown, options: SseEventOptions = {}): Promise<void> {
  if (res.destroyed || res.writableEnded) return;
  if (!res.write(sseFrame(data, options))) await drained(res);
}

/** Ends the stream with an error frame (`data: <body>`), the way OpenAI's clients expect a late failure. */
export function writeSseError(res: ServerResponse, errorBody: unknown): void {
  if (!res.destroyed && !res.writableEnded) res.end(sseFrame(errorBody));
}

/** Ends the stream, after a last frame when `finalData` is given (e.g. '[DONE]'). */
export function closeSse(res: ServerResponse, finalData?: string): void {
  if (res.destroyed || res.writableEnded) return;
  if (finalData === undefined) res.end();
  else res.end(sseFrame(finalData));
}

export interface SseStreamOptions {
  /** Data of a last frame after the final event, e.g. '[DONE]' for OpenAI streams; none by default. */
  done?: string;
  /** Extra response headers. */
  headers?: Record<string, string>;
}

/** A route body that streams `events` as server-sent events (see the header comment). */
export class SseStream implements ResponseBody {
  constructor(
    readonly events: AsyncIterable<unknown>,
    readonly options: SseStreamOptions = {},
  ) {}

  async writeTo(res: ServerResponse, context: ResponseContext): Promise<void> {
    const it = this.events[Symbol.asyncIterator]();
    const { signal } = context;
    try {
      // Before the status line: a failure here propagates to the listener's ordinary error answer.
      let next = await untilAborted(it.next(), signal);
      openSse(res, this.options.headers);
      try {
        while (next.done !== true) {
          await writeSseEvent(res, next.value);
          if (res.destroyed) return;
          next = await untilAborted(it.next(), signal);
        }
        closeSse(res, this.options.done);
      } catch (error) {
        writeSseError(res, context.errorBody(error));
      }
    } finally {
      // Runs the source's finally blocks when we stopped early (client gone, abort, error while writing).
      await it.return?.(undefined);
    }
  }
}

/** `promise`, or a rejection with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {}); // settled later by the source; nobody waits for it
    return Promise.reject(signal.reason as unknown);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => {});
      reject(signal.reason as unknown);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Resolves when the socket can take more, or when it closed (then writing stops at the next check). */
export function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
