/**
 * What a data-plane connection serves: methods (a zod schema for the request header, a handler, an
 * optional payload limit), and how a handler's exception becomes an ERROR frame's header.
 */
import type { z } from 'zod';
import type { TransportError } from '../protocol.ts';
import type { Peer } from './peer.ts';

export interface Request {
  method: string;
  /** The header as the method's schema parsed it. */
  header: unknown; // parsed by the method schema: build specs with `method(schema, handler)` for a typed header
  payload: Uint8Array;
  peer: Peer;
  /** Aborted when the connection closes while the handler runs. */
  signal: AbortSignal;
}
export type Reply = { header: unknown; payload?: Uint8Array };
export type Handler = (req: Request) => Promise<Reply | void> | Reply | void;

export interface MethodSpec {
  /** Validates the request header; a failure is answered ERROR 'bad_request'. */
  schema: z.ZodType;
  handler: Handler;
  /** Largest payload accepted (default: the connection's maxPayloadBytes). Over it: ERROR 'too_large'. */
  maxPayloadBytes?: number;
}

/** A handler's exception as an ERROR header: its string `code` (else 'internal'), message, hint. */
export function toTransportError(error: unknown): TransportError {
  if (error instanceof Error) {
    const record = error as Error & { code?: unknown; hint?: unknown };
    const code = typeof record.code === 'string' && record.code.length > 0 && record.code.length <= 64 ? record.code : 'internal';
    const hint = typeof record.hint === 'string' ? record.hint.slice(0, 4000) : undefined;
    return hint === undefined ? { code, message: error.message.slice(0, 4000) } : { code, message: error.message.slice(0, 4000), hint };
  }
  return { code: 'internal', message: String(error).slice(0, 4000) };
}

/** A method whose handler sees the header as `schema` parsed it (typed), with an optional payload limit. */
export function method<S extends z.ZodType>(
  schema: S,
  handler: (req: Omit<Request, 'header'> & { header: z.output<S> }) => Promise<Reply | void> | Reply | void,
  maxPayloadBytes?: number,
): MethodSpec {
  return {
    schema,
    // The transport runs the handler only after `schema` accepted the header (peer.ts admit()).
    handler: (req) => handler(req as Omit<Request, 'header'> & { header: z.output<S> }),
    ...(maxPayloadBytes === undefined ? {} : { maxPayloadBytes }),
  };
}
