// Timing a streamed completion from the client's side of the OpenAI API: when each SSE chunk arrived.
// Bets measure what a user sees (time to first token, gaps between tokens), not what the server reports.
import { z } from 'zod';

const Chunk = z.object({ choices: z.array(z.object({ text: z.string().optional(), finish_reason: z.string().nullish() }).loose()) }).loose();
const Usage = z.object({ usage: z.object({ completion_tokens: z.number() }).nullish() }).loose();

export interface StreamTiming {
  /** Request sent -> first token chunk (prefill of the prompt plus one decode step). */
  ttftMs: number;
  /** performance.now() of each token chunk. */
  arrivals: number[];
  /** Gaps between consecutive token chunks (ms). */
  gapsMs: number[];
  /** Completion tokens as the server counted them (usage), else the chunks seen. */
  tokens: number;
  totalMs: number;
}

export interface CompletionBody {
  model: string;
  prompt: string | number[];
  max_tokens: number;
}

/** POST /v1/completions with stream: true, greedy; resolves once the stream ends. */
export async function timedCompletion(baseUrl: string, body: CompletionBody, onToken?: (n: number) => void): Promise<StreamTiming> {
  const t0 = performance.now();
  const res = await fetch(`${baseUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, temperature: 0, stream: true, stream_options: { include_usage: true } }),
  });
  if (!res.ok || res.body === null) throw new Error(`completion failed: HTTP ${res.status} ${await res.text()}`);
  const arrivals: number[] = [];
  let usageTokens: number | undefined;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const part of res.body) {
    buffer += decoder.decode(part, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end).trim();
      buffer = buffer.slice(end + 2);
      if (!frame.startsWith('data: ')) continue;
      const data = frame.slice(6);
      if (data === '[DONE]') continue;
      const json: unknown = JSON.parse(data);
      if (typeof json === 'object' && json !== null && 'error' in json) throw new Error(`stream ended with an error: ${data}`);
      const usage = Usage.parse(json).usage;
      if (usage) usageTokens = usage.completion_tokens;
      const chunk = Chunk.parse(json);
      // The last chunk only carries finish_reason (no token): it is not an arrival.
      const choice = chunk.choices[0];
      if (choice !== undefined && !(choice.finish_reason && !choice.text)) {
        arrivals.push(performance.now());
        onToken?.(arrivals.length);
      }
    }
  }
  if (arrivals.length === 0) throw new Error('the stream carried no token');
  const gapsMs = arrivals.slice(1).map((t, i) => t - arrivals[i]!);
  return { ttftMs: arrivals[0]! - t0, arrivals, gapsMs, tokens: usageTokens ?? arrivals.length, totalMs: performance.now() - t0 };
}
