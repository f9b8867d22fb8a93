/**
 * POST /v1/adapters, read at the edge: consent first (nothing is looked at, let alone stored, without it),
 * then the request's shape (zod), then the text itself: the user's `text`, or `files` (each a UTF-8
 * `content` or a `content_base64`), joined by blank lines. Refused with a 400 that says what to do:
 *
 *   consent_required  no consent object, or one without a purpose
 *   empty_text        nothing but white space
 *   binary_text       not UTF-8 (a file), NUL bytes, or mostly control characters: not prose
 *   text_too_large    above config.maxTextBytes (413)
 *   text_too_short    fewer tokens than one training batch (the engine's minTextTokens)
 */
import { z } from 'zod';
import { ApiError, invalidRequest } from '../errors.ts';
import { parseBody } from '../schemas.ts';
import { ADAPTER_KINDS } from './store.ts';

export interface RequestLimits {
  /** Largest training text in bytes (UTF-8), files joined. */
  maxTextBytes: number;
  /** Most training steps a user may ask for. */
  maxSteps: number;
  /** Steps when the request names none. */
  defaultSteps: number;
  /** Highest LoRA rank. */
  maxRank: number;
  /** LoRA rank when the request names none. */
  defaultRank: number;
  /** Most files in one request. */
  maxFiles: number;
}

/** An adapter's name: what follows '@' in its model id. */
export const ADAPTER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const ConsentSchema = z.object({
  /** The purpose shown to the user when they agreed, kept in the consent record. */
  purpose: z.string().trim().min(1).max(500),
  /** Whether the text may be kept after training (default: no, it is deleted when training ends). */
  keep_text: z.boolean().default(false),
});

const FileSchema = z
  .object({
    name: z.string().max(255).optional(),
    content: z.string().optional(),
    content_base64: z.string().optional(),
  })
  .refine((f) => (f.content === undefined) !== (f.content_base64 === undefined), { message: 'each file needs exactly one of content or content_base64' });

export function adapterRequestSchema(limits: RequestLimits) {
  return z
    .object({
      name: z.string().regex(ADAPTER_NAME, 'letters, digits, and . _ - (at most 64, starting with a letter or digit)'),
      kind: z.enum(ADAPTER_KINDS).default('norm'),
      rank: z.number().int().min(1).max(limits.maxRank).optional(),
      steps: z.number().int().min(1).max(limits.maxSteps).optional(),
      seed: z.number().int().min(0).max(0xffffffff).optional(),
      text: z.string().optional(),
      files: z.array(FileSchema).min(1).max(limits.maxFiles).optional(),
      consent: ConsentSchema,
    })
    .refine((r) => (r.text === undefined) !== (r.files === undefined), { message: 'send the training text as `text` or as `files`, one of the two', path: ['text'] });
}

export type AdapterRequest = z.infer<ReturnType<typeof adapterRequestSchema>>;

/** 400 consent_required unless the body carries a consent object with a purpose. Checked before anything else. */
export function requireConsent(body: unknown): void {
  if (!z.object({ consent: ConsentSchema }).safeParse(body).success) {
    throw new ApiError(400, 'training an adapter on your text needs your consent', {
      code: 'consent_required',
      param: 'consent',
      hint: "send consent: { purpose: '<what the adapter is for, as shown to you>', keep_text: false } (keep_text: true keeps the text after training); nothing was stored",
    });
  }
}

/** Parses the request (after requireConsent). */
export function parseAdapterRequest(body: unknown, limits: RequestLimits): AdapterRequest {
  return parseBody(adapterRequestSchema(limits), body);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The training text of a request, checked: not empty, not binary, not too large. */
export function trainingText(request: AdapterRequest, limits: RequestLimits): string {
  const parts: string[] = [];
  if (request.text !== undefined) parts.push(request.text);
  for (const [i, file] of (request.files ?? []).entries()) {
    const param = `files[${i}]`;
    if (file.content !== undefined) {
      parts.push(file.content);
      continue;
    }
    const bytes = Buffer.from(file.content_base64 ?? '', 'base64');
    if (bytes.length > limits.maxTextBytes) throw tooLarge(bytes.length, limits, param);
    try {
      parts.push(strictUtf8.decode(bytes));
    } catch {
      throw invalidRequest(`${file.name ?? param} is not UTF-8 text`, `${param}.content_base64`, 'send plain text files (UTF-8): not PDFs, images or archives', 'binary_text');
    }
  }
  const text = parts.join('\n\n');
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.maxTextBytes) throw tooLarge(bytes, limits, request.text === undefined ? 'files' : 'text');
  const param = request.text === undefined ? 'files' : 'text';
  if (text.trim() === '') throw invalidRequest('the training text is empty', param, 'send some of your own writing', 'empty_text');
  if (looksBinary(text)) throw invalidRequest('the training text looks binary, not like prose', param, 'send plain text (UTF-8), without NUL or control characters', 'binary_text');
  return text;
}

/** At most this share of control characters (other than tab, newline, carriage return) in prose. */
const MAX_CONTROL_SHARE = 0.01;

/** NUL, U+FFFD (a decoder's replacement for bad bytes), or many control characters. */
export function looksBinary(text: string): boolean {
  if (text.includes('\u0000') || text.includes('\uFFFD')) return true;
  let control = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f) control++;
  }
  return control > text.length * MAX_CONTROL_SHARE;
}

function tooLarge(bytes: number, limits: RequestLimits, param: string): ApiError {
  return new ApiError(413, `the training text is ${bytes} bytes, above this node's limit of ${limits.maxTextBytes} bytes`, {
    code: 'text_too_large',
    param,
    hint: 'send a shorter text (a few hundred KB of your writing is plenty for an adapter)',
  });
}
