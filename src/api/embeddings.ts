/**
 * POST /v1/embeddings: one vector per input, from the chat model itself.
 *
 * The vector is the MEAN over the input's tokens of the model's final hidden states, taken after the final
 * norm (the norm the head applies before the output matrix), scaled to unit length (as OpenAI's and
 * llama-server's are, so a dot product is the cosine similarity). It is computed by the same pipeline as
 * generation: one step with `logits: 'pooled'` (src/model/batch.ts), on a sequence opened for it and closed
 * right after. A generative model's pooled states are a usable but not a tuned embedding: for retrieval
 * quality, serve a dedicated embedding model.
 *
 *   request:  { model, input: string | string[] | number[] | number[][], encoding_format?: 'float' |
 *             'base64', dimensions?: n_embd (no other size) }
 *   answer:   { object: 'list', data: [{ object: 'embedding', index, embedding }], model,
 *             usage: { prompt_tokens, total_tokens } }
 * `base64` is the little-endian float32 bytes of each vector, base64-encoded (what the openai client asks
 * for by default). Text is encoded as the completions route does (BOS when the model wants it, no special
 * tokens parsed). The inputs of one request run one after the other in one generation slot.
 */
import { z } from 'zod';
import type { RouteHandler } from '../http/index.ts';
import { invalidRequest } from './errors.ts';
import { type ApiEngine, type ApiService, engineFor } from './generation.ts';
import { requestSignal } from './http.ts';
import { refuseOverlongPrompt } from './prompt-size.ts';
import { parseBody } from './schemas.ts';

/** OpenAI's cap on the inputs of one request. */
export const MAX_EMBEDDING_INPUTS = 2048;

const TokenIds = z.array(z.number().int().min(0));

export const EmbeddingRequestSchema = z.object({
  model: z.string({ error: 'model is required (GET /v1/models lists them)' }).max(256),
  input: z.union([z.string(), z.array(z.string()).max(MAX_EMBEDDING_INPUTS), TokenIds, z.array(TokenIds).max(MAX_EMBEDDING_INPUTS)], {
    error: `input must be a string, an array of strings, an array of token ids or an array of such arrays (at most ${MAX_EMBEDDING_INPUTS})`,
  }),
  encoding_format: z.enum(['float', 'base64'], { error: "encoding_format must be 'float' or 'base64'" }).nullish(),
  dimensions: z.number().int().min(1).nullish(),
});

export function embeddingsRoute(service: ApiService): RouteHandler {
  return async (ctx) => {
    const body = parseBody(EmbeddingRequestSchema, await ctx.json());
    const engine = engineFor(service, body.model, ctx.req);
    const inputs = inputTokens(engine, body.input);
    const signal = requestSignal(ctx.req);
    const vectors: Float32Array[] = [];
    const release = await engine.limiter.acquire(signal);
    try {
      for (const ids of inputs) {
        if (signal.aborted) throw signal.reason;
        const vector = unitLength(await pooledHiddenStates(engine, ids));
        // The Forward does not report the hidden size: the first vector tells it.
        if (body.dimensions != null && body.dimensions !== vector.length) {
          throw invalidRequest(`this model's embeddings have ${vector.length} dimensions, not ${body.dimensions}`, 'dimensions', `send dimensions: ${vector.length} or leave it out`);
        }
        vectors.push(vector);
      }
    } finally {
      release();
    }
    const promptTokens = inputs.reduce((sum, ids) => sum + ids.length, 0);
    engine.metrics.promptTokens += promptTokens;
    return {
      body: {
        object: 'list',
        data: vectors.map((v, index) => ({ object: 'embedding', index, embedding: body.encoding_format === 'base64' ? base64Of(v) : [...v] })),
        model: engine.modelId,
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
      },
    };
  };
}

/** Each input as token ids, checked against the vocabulary and the context. */
function inputTokens(engine: ApiEngine, input: z.infer<typeof EmbeddingRequestSchema>['input']): number[][] {
  const { tokenizer, nCtx } = engine;
  const items: (string | number[])[] = typeof input === 'string' ? [input] : input.length > 0 && typeof input[0] === 'number' ? [input as number[]] : (input as (string | number[])[]);
  if (items.length === 0) throw invalidRequest('input is empty', 'input', 'send at least one string');
  return items.map((item, i) => {
    const param = typeof input === 'string' ? 'input' : `input[${i}]`;
    if (typeof item === 'string') refuseOverlongPrompt(tokenizer, item, nCtx, param);
    const ids = typeof item === 'string' ? tokenizer.encode(item, { addBos: tokenizer.addBosDefault }) : item;
    if (ids.length === 0 || (typeof item === 'string' && item === '')) throw invalidRequest('an input is empty', param, 'send some text');
    if (ids.length > nCtx) {
      throw invalidRequest(`this model's context holds ${nCtx} tokens, but the input is ${ids.length} tokens`, param, 'split the text into shorter pieces', 'context_length_exceeded');
    }
    const bad = ids.findIndex((id) => id >= tokenizer.vocabSize);
    if (bad >= 0) throw invalidRequest(`token id ${ids[bad]} is outside the vocabulary (0 .. ${tokenizer.vocabSize - 1})`, param, "send ids from this model's tokenizer");
    return ids;
  });
}

/** One step over the input on a sequence of its own, returning the mean of the final normed hidden states. */
async function pooledHiddenStates(engine: ApiEngine, ids: readonly number[]): Promise<Float32Array> {
  const { batcher } = engine.generator;
  if (batcher === undefined) {
    throw invalidRequest(`the model '${engine.modelId}' combines several models and has no embeddings of its own`, 'model', 'ask one of the models it combines (GET /v1/models lists them)');
  }
  const seq = await batcher.forward.openSequence();
  try {
    const rows = await batcher.submit({ seq, tokens: Int32Array.from(ids), logits: 'pooled' });
    const row = rows[0];
    if (row === undefined) throw new Error('the pipeline returned no pooled row for an embeddings step');
    return row;
  } finally {
    await batcher.forward.closeSequence(seq);
  }
}

function unitLength(v: Float32Array): Float32Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  const norm = Math.sqrt(sum);
  return norm > 0 ? Float32Array.from(v, (x) => x / norm) : v;
}

/** Little-endian float32 bytes, base64 (what OpenAI sends for encoding_format 'base64'). */
function base64Of(v: Float32Array): string {
  const bytes = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => bytes.writeFloatLE(x, i * 4));
  return bytes.toString('base64');
}
