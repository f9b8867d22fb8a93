/**
 * Server-sent events as OpenAI streams them: one `data: <json>\n\n` frame per chunk, then `data: [DONE]\n\n`
 * (CHAT_SSE); the Responses API frames differ (its own SseStyle, responses-events.ts).
 *
 * A route returns `{ body: new SseBody(events) }` and the listener calls writeSse. The first event is
 * awaited BEFORE the status line is written, so a request that fails early (queue full, context overflow,
 * a dead pipeline on prefill) still gets a proper status and error body. An error after that can only be
 * reported inside the stream: a final `data: {"error": {...}}` frame and no [DONE] (the official clients
 * raise it as an APIError). If the client goes away, the event source is closed (its `finally` blocks run,
 * which frees the sequence) and nothing more is written.
 */
import type { ServerResponse } from 'node:http';
import { drained, SSE_HEADERS, sseFrame } from '../http/sse.ts';

/** How a stream is framed: chat and completions differ from the Responses API. */
export interface SseStyle {
  /** One event as a frame. */
  frame(event: unknown): string;
  /** Written after the last event ('' for nothing). */
  end: string;
  /** The frame that reports a failure after the stream started, from the OpenAI error body. */
  error(body: unknown): string;
}

export class SseBody {
  constructor(
    readonly events: AsyncIterable<unknown>,
    readonly style: SseStyle = CHAT_SSE,
  ) {}
}

// The event-stream headers, one frame and waiting for the socket are the shared HTTP layer's (src/http/sse.ts).
export { SSE_HEADERS, sseFrame };

export const SSE_DONE = sseFrame('[DONE]');

/** Chat and completions: `data:` frames only, `data: [DONE]` at the end, the error body as a frame. */
export const CHAT_SSE: SseStyle = { frame: sseFrame, end: SSE_DONE, error: sseFrame };

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
      if (!res.write(body.style.frame(next.value))) await drained(res);
      if (signal.aborted) throw signal.reason;
      next = await it.next();
    }
    if (!res.destroyed) res.end(body.style.end);
  } catch (error) {
    if (!res.destroyed && !res.writableEnded) res.end(body.style.error(errorFrame(error)));
  } finally {
    // Runs the event source's finally blocks when we stopped early (client gone, error while writing).
    await it.return?.(undefined);
  }
}
