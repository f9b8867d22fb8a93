/**
 * Server-sent events as OpenAI streams them: one `data: <json>\n\n` frame per chunk, then `data: [DONE]\n\n`.
 *
 * A route returns `{ body: new SseBody(events) }` and the listener calls writeSse. The first event is
 * awaited BEFORE the status line is written, so a request that fails early (queue full, context overflow,
 * a dead pipeline on prefill) still gets a proper status and error body. An error after that can only be
 * reported inside the stream: a final `data: {"error": {...}}` frame and no [DONE] (the official clients
 * raise it as an APIError). If the client goes away, the event source is closed (its `finally` blocks run,
 * which frees the sequence) and nothing more is written.
 */
import type { ServerResponse } from 'node:http';

export class SseBody {
  constructor(readonly events: AsyncIterable<unknown>) {}
}

export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  // Ask reverse proxies (nginx) not to buffer the stream.
  'x-accel-buffering': 'no',
};

export function sseFrame(data: unknown): string {
  return `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

export const SSE_DONE = sseFrame('[DONE]');

/**
 * Streams `body` to `res`. Rejects only if the FIRST event fails (nothing written yet: the caller sends a
 * normal error response). Later failures are written as an error frame built by `errorFrame`.
 */
export async function writeSse(res: ServerResponse, body: SseBody, signal: AbortSignal, errorFrame: (error: unknown) => unknown): Promise<void> {
  const it = body.events[Symbol.asyncIterator]();
  let next = await it.next();
  try {
    res.writeHead(200, SSE_HEADERS);
    while (next.done !== true) {
      if (!res.write(sseFrame(next.value))) await drained(res);
      if (signal.aborted) throw signal.reason;
      next = await it.next();
    }
    if (!res.destroyed) res.end(SSE_DONE);
  } catch (error) {
    if (!res.destroyed && !res.writableEnded) res.end(sseFrame(errorFrame(error)));
  } finally {
    // Runs the event source's finally blocks when we stopped early (client gone, error while writing).
    await it.return?.(undefined);
  }
}

/** Resolves when the socket can take more, or when it closed (then writing stops at the next check). */
function drained(res: ServerResponse): Promise<void> {
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
