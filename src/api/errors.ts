/**
 * Errors of the OpenAI-compatible API, in OpenAI's shape: `{ error: { message, type, param, code } }`.
 *
 * There is one error type for the whole HTTP layer: src/http's HttpError (routes throw it, one listener
 * turns it into a response). ApiError extends it with the fields OpenAI clients read (`type`, `param`,
 * `code`), so errors from the shared Router and body reader (plain HttpErrors) and errors from this API
 * (ApiErrors) go through the same path: `toErrorBody` below (http.ts's ErrorMapper).
 *
 * Types by status follow llama.cpp's server (an OpenAI-compatible server clients already know):
 * 400 invalid_request_error, 401 authentication_error, 403 permission_error, 404 not_found_error,
 * 429 rate_limit_error, 500 server_error, 503 unavailable_error.
 */
import { HttpError } from '../http/index.ts';
import type { HttpLayerCode } from '../http/index.ts';
import { ChatPromptError } from '../model/chat-prompt.ts';
import { ContextLimitError, ModelError, OutOfMemoryError } from '../model/errors.ts';
import { MixtureUnavailableError, TokenizerMismatchError } from '../model/mixture/specialist.ts';
import { SamplerError } from '../model/sampler.ts';

export interface OpenAiErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
  };
}

export interface ApiErrorOptions {
  /** The request field at fault, e.g. 'messages[0].content' (OpenAI's `param`). */
  param?: string;
  /** Machine-readable code, e.g. 'context_length_exceeded', 'invalid_api_key', 'model_not_found'. */
  code?: string;
  /** What the client can do about it; appended to the message. */
  hint?: string;
  /** Extra response headers (retry-after, www-authenticate). */
  headers?: Record<string, string>;
  /** Overrides the type derived from the status. */
  type?: string;
}

/** An HttpError carrying OpenAI's error fields. Throw it from any API route. */
export class ApiError extends HttpError {
  readonly type: string;
  readonly param: string | null;
  readonly apiCode: string | null;

  constructor(status: number, message: string, options: ApiErrorOptions = {}) {
    super(status, protocolCode(status), message, options.hint, options.headers ?? {});
    this.name = 'ApiError';
    this.type = options.type ?? errorTypeFor(status);
    this.param = options.param ?? null;
    this.apiCode = options.code ?? null;
  }
}

/** A 400 for a request the client must change. */
export function invalidRequest(message: string, param?: string, hint?: string, code?: string): ApiError {
  return new ApiError(400, message, { ...(param === undefined ? {} : { param }), ...(hint === undefined ? {} : { hint }), ...(code === undefined ? {} : { code }) });
}

const TYPES_BY_STATUS: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  405: 'invalid_request_error',
  413: 'invalid_request_error',
  415: 'invalid_request_error',
  429: 'rate_limit_error',
  500: 'server_error',
  503: 'unavailable_error',
};

export function errorTypeFor(status: number): string {
  return TYPES_BY_STATUS[status] ?? (status >= 500 ? 'server_error' : 'invalid_request_error');
}

/** The HTTP layer's nearest code, so an ApiError is a well-formed HttpError too. */
function protocolCode(status: number): HttpLayerCode {
  switch (status) {
    case 400:
      return 'bad_request';
    case 401:
      return 'unauthorized';
    case 404:
      return 'not_found';
    case 405:
      return 'method_not_allowed';
    case 413:
      return 'payload_too_large';
    case 415:
      return 'unsupported_media_type';
    default:
      return status < 500 ? 'bad_request' : 'internal';
  }
}

/**
 * Turns anything thrown while serving a request into an HttpError: HttpErrors stay as they are; the model
 * layer's errors that a request can cause become 400 (or 503 when memory for a sequence is short);
 * anything else is a 500 (a bug or an I/O failure, logged with its stack by the handler).
 */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof ContextLimitError) {
    return new ApiError(400, error.message, { code: 'context_length_exceeded', param: 'messages' });
  }
  if (error instanceof SamplerError || error instanceof ChatPromptError) return new ApiError(400, error.message);
  if (error instanceof TokenizerMismatchError) return new ApiError(400, error.message, { code: 'tokenizer_mismatch', param: 'model' });
  if (error instanceof MixtureUnavailableError) return new ApiError(503, error.message, { code: 'mixture_unavailable', headers: { 'retry-after': '1' } });
  if (error instanceof OutOfMemoryError) {
    return new ApiError(503, error.message, { hint: 'the node is out of memory for another sequence; retry later', headers: { 'retry-after': '1' } });
  }
  if (error instanceof ModelError) return new ApiError(500, error.message);
  return new ApiError(500, 'internal error in the API server', { hint: 'see the node log for details' });
}

/** The response body for an error, in OpenAI's shape. */
export function toErrorBody(error: HttpError): OpenAiErrorBody {
  const message = error.hint === undefined || error.message.includes(error.hint) ? error.message : `${error.message}; ${error.hint}`;
  if (error instanceof ApiError) {
    return { error: { message, type: error.type, param: error.param, code: error.apiCode } };
  }
  return { error: { message, type: errorTypeFor(error.status), param: null, code: error.code } };
}
