/**
 * Typed access to the data plane (the table in protocol-dataplane.ts), for both ends of a connection:
 *
 *   // serving side: handlers get parsed, typed headers and must return the method's response type
 *   const methods = defineMethods({
 *     open_seq: (req, ctx) => ({ header: { ok: true } }),
 *     step: (msg, ctx) => void run(msg, ctx.payload),
 *   });
 *
 *   // calling side: the answer is validated against the response schema before the caller sees it
 *   const { header } = await call(peer, 'load_span', { ...span, nCtx }, { timeoutMs: 60_000 });
 *   notify(peer, 'step', message, hidden);
 *
 * A peer that answers with a header its schema refuses gets a DataPlaneContractError (code
 * 'bad_response'): the caller treats it like any other failure of that peer (fail over, ban).
 */
import { z } from 'zod';
import type { Peer, RequestOptions } from './transport/rpc.ts';
import type { MethodSpec } from './transport/methods.ts';
import {
  DATAPLANE, type DataPlaneMethod, type NotifyMethod, type ParsedRequestOf, type RequestMethod, type RequestOf, type ResponseOf,
} from './protocol-dataplane.ts';

/** What a handler gets besides the header. */
export interface MethodContext {
  payload: Uint8Array;
  /** The connection the request came on (its `session` and identity are the caller's). */
  peer: Peer;
  /** Aborted when the connection closes while the handler runs. */
  signal: AbortSignal;
}

/** A handler's answer: the response header (typed by the table) and an optional binary payload. */
export type Answer<M extends RequestMethod> = { header: z.input<NonNullable<(typeof DATAPLANE)[M]['response']>> & ResponseOf<M>; payload?: Uint8Array };

export type HandlerOf<M extends DataPlaneMethod> = M extends RequestMethod
  ? (request: ParsedRequestOf<M>, ctx: MethodContext) => Answer<M> | Promise<Answer<M>>
  : (request: ParsedRequestOf<M>, ctx: MethodContext) => void | Promise<void>;

export type Handlers = { [M in DataPlaneMethod]?: HandlerOf<M> };

/** The transport's method table for the handlers given: schema and payload limit come from DATAPLANE. */
export function defineMethods(handlers: Handlers): Record<string, MethodSpec> {
  const out: Record<string, MethodSpec> = {};
  for (const name of Object.keys(handlers) as DataPlaneMethod[]) {
    const handler = handlers[name] as ((request: unknown, ctx: MethodContext) => unknown) | undefined;
    if (handler === undefined) continue;
    const contract: { request: z.ZodType; maxPayloadBytes?: number } = DATAPLANE[name];
    out[name] = {
      schema: contract.request,
      ...(contract.maxPayloadBytes === undefined ? {} : { maxPayloadBytes: contract.maxPayloadBytes }),
      handler: async ({ header, payload, peer, signal }) => {
        const answer = await handler(header, { payload, peer, signal });
        return answer === undefined ? undefined : (answer as { header: unknown; payload?: Uint8Array });
      },
    };
  }
  return out;
}

/** An answer that does not match the contract: the peer is broken or lying. */
export class DataPlaneContractError extends Error {
  readonly code = 'bad_response';
  readonly hint: string;
  constructor(readonly method: string, readonly remote: string, readonly expected: string, readonly actual: string) {
    super(`${remote} answered '${method}' with a header that breaks the data-plane contract: expected ${expected}, got ${actual}`);
    this.name = 'DataPlaneContractError';
    this.hint = 'the peer runs an incompatible or faulty SharedLLM; it is treated as failed';
  }
}

/** Send a request and validate the answer's header against the method's response schema. */
export async function call<M extends RequestMethod>(
  peer: Peer,
  method: M,
  request: RequestOf<M>,
  opts: RequestOptions & { payload?: Uint8Array } = {},
): Promise<{ header: ResponseOf<M>; payload: Uint8Array }> {
  const { payload, ...requestOptions } = opts;
  const answer = await peer.request(method, request, payload, requestOptions);
  const schema: z.ZodType = DATAPLANE[method].response;
  const parsed = schema.safeParse(answer.header);
  if (!parsed.success) throw new DataPlaneContractError(method, peer.remote, 'a header matching protocol-dataplane.ts', z.prettifyError(parsed.error).slice(0, 1000));
  return { header: parsed.data as ResponseOf<M>, payload: answer.payload };
}

/** Send a one-way message (throws PeerClosedError on a closed peer, FrameError over the limits). */
export function notify<M extends NotifyMethod>(peer: Peer, method: M, message: RequestOf<M>, payload?: Uint8Array): void {
  peer.notify(method, message, payload);
}
