/**
 * The adapters' routes on a primary's API. Every one needs a user key (`sharedllm users add NAME`): the
 * admin key and anonymous callers own no adapters (403 user_key_required). Another user's adapter is a 404,
 * the same answer as a missing one, so that existence does not leak.
 *
 * POST   /v1/adapters               { name, kind?: norm|lora, rank?, steps?, seed?, text | files,
 *                                     consent: { purpose, keep_text? } } -> 202 the adapter (queued)
 *                                     no consent: 400 consent_required, nothing stored
 * GET    /v1/adapters               { object: 'list', data: [adapter] } (the caller's)
 * GET    /v1/adapters/:id           the adapter: state, step, steps, loss, eta_seconds, consent record
 * DELETE /v1/adapters/:id           { id, object: 'adapter.deleted', deleted: true }; 404 the second time
 * GET    /v1/adapters/:id/export    ?format=adapter (a norm adapter's default: SharedLLM's adapter GGUF)
 *                                   | lora (a lora adapter's default: llama.cpp's LoRA GGUF)
 *                                   | merged (the base with the adapter applied: a full GGUF)
 * GET    /v1/users/me               { id, name, created_at, adapters }
 * DELETE /v1/users/me               deletes the user's adapters, texts, audit trail and key
 * GET    /v1/audit                  ?after=<seq>&limit=<n>: the caller's own events, oldest first
 */
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { ResponseBody, RouteHandler, Router } from '../../http/index.ts';
import type { Logger } from '../../util/log.ts';
import { ApiError, invalidRequest } from '../errors.ts';
import { type UserCaller, callerOf } from '../users.ts';
import { deleteAdapter, deleteUser } from './deletion.ts';
import type { AdapterEngine } from './engine.ts';
import { type AdapterFiles, wipe } from './files.ts';
import type { TrainingJobs } from './jobs.ts';
import { type RequestLimits, parseAdapterRequest, requireConsent, trainingText } from './request.ts';
import { type AdapterModels, baseMismatchError } from './source.ts';
import { type AdapterRecord, type PrimaryStore, StoreError } from './store.ts';

export interface AdapterRoutesConfig extends RequestLimits {
  /** Most audit events one GET /v1/audit returns. */
  maxAuditPage: number;
}

export interface AdapterServices {
  store: PrimaryStore;
  files: AdapterFiles;
  engine: AdapterEngine;
  jobs: TrainingJobs;
  models: AdapterModels;
  config: AdapterRoutesConfig;
  logger: Logger;
  /** Other personal data to delete with the user (mixture trails). */
  onUserDeleted?: (userId: string) => void;
}

export const EXPORT_FORMATS = ['adapter', 'lora', 'merged'] as const;
type ExportFormat = (typeof EXPORT_FORMATS)[number];

export function addAdapterRoutes(router: Router, s: AdapterServices): void {
  router.add('POST', '/v1/adapters', createRoute(s));
  router.add('GET', '/v1/adapters', (ctx) => {
    const user = requireUser(ctx.req);
    return { body: { object: 'list', data: s.store.adaptersOf(user.userId).map((a) => view(s, a)) } };
  });
  router.add('GET', '/v1/adapters/:id', (ctx) => ({ body: view(s, ownAdapter(s, ctx.req, ctx.params.id)) }));
  router.add('DELETE', '/v1/adapters/:id', async (ctx) => {
    const adapter = ownAdapter(s, ctx.req, ctx.params.id);
    await deleteAdapter(s.store, s.files, adapter.id, hooks(s));
    s.logger.info('adapter_deleted', { adapter: adapter.id });
    return { body: { id: adapter.id, object: 'adapter.deleted', deleted: true } };
  });
  router.add('GET', '/v1/adapters/:id/export', exportRoute(s));
  router.add('GET', '/v1/users/me', (ctx) => {
    const user = requireUser(ctx.req);
    const record = s.store.userByName(user.name);
    return { body: { id: user.userId, object: 'user', name: user.name, created_at: record?.createdAt ?? null, adapters: s.store.adaptersOf(user.userId).length } };
  });
  router.add('DELETE', '/v1/users/me', async (ctx) => {
    const user = requireUser(ctx.req);
    await deleteUser(s.store, s.files, user.userId, hooks(s));
    s.onUserDeleted?.(user.userId);
    s.logger.info('user_deleted', { user: user.userId });
    return { body: { id: user.userId, object: 'user.deleted', deleted: true } };
  });
  router.add('GET', '/v1/audit', (ctx) => {
    const user = requireUser(ctx.req);
    const after = queryInt(ctx.query.after, 'after', 0, Number.MAX_SAFE_INTEGER, 0);
    const limit = queryInt(ctx.query.limit, 'limit', 1, s.config.maxAuditPage, s.config.maxAuditPage);
    const events = s.store.auditOf(user.userId, after, limit);
    return {
      body: {
        object: 'list',
        data: events.map((e) => ({ seq: e.seq, at: new Date(e.at).toISOString(), event: e.event, adapter_id: e.adapterId, ...e.detail })),
        has_more: events.length === limit,
      },
    };
  });
}

function hooks(s: AdapterServices) {
  return { cancelJob: (id: string) => s.jobs.cancel(id), evict: (id: string) => s.models.evict(id) };
}

function createRoute(s: AdapterServices): RouteHandler {
  // Base64 files are 4/3 of their text; the JSON around them is small.
  const maxBytes = Math.ceil((s.config.maxTextBytes * 4) / 3) + 64 * 1024;
  return async (ctx) => {
    const user = requireUser(ctx.req);
    const body = await ctx.json({ maxBytes, label: 'adapter request' });
    requireConsent(body);
    const request = parseAdapterRequest(body, s.config);
    const text = trainingText(request, s.config);
    const tokens = s.engine.countTokens(text);
    if (tokens < s.engine.minTextTokens) {
      throw invalidRequest(`the training text is ${tokens} tokens, fewer than one training batch (${s.engine.minTextTokens} tokens)`, request.text === undefined ? 'files' : 'text', 'send more of your writing', 'text_too_short');
    }
    if (s.store.adapterByName(user.userId, request.name) !== undefined) {
      throw new ApiError(409, `you have an adapter named '${request.name}' already`, { code: 'adapter_exists', param: 'name', hint: 'pick another name, or delete that adapter first' });
    }
    let adapter: AdapterRecord;
    try {
      adapter = s.store.addAdapter({
        userId: user.userId,
        name: request.name,
        kind: request.kind,
        rank: request.kind === 'lora' ? (request.rank ?? s.config.defaultRank) : null,
        steps: request.steps ?? s.config.defaultSteps,
        seed: request.seed ?? 0,
        baseHash: s.engine.baseHash,
        textTokens: tokens,
        consent: { purpose: request.consent.purpose, keepText: request.consent.keep_text, textSha256: createHash('sha256').update(text, 'utf8').digest('hex'), givenAt: Date.now() },
      });
    } catch (error) {
      if (error instanceof StoreError) throw new ApiError(409, error.message, { code: 'adapter_exists', param: 'name' });
      throw error;
    }
    try {
      s.files.writeText(adapter.id, text);
    } catch (error) {
      s.files.deleteAll(adapter.id);
      s.store.deleteAdapter(adapter.id);
      throw error;
    }
    s.store.audit(user.userId, 'consent_given', adapter.id, { name: adapter.name, kind: adapter.kind, keep_text: adapter.consent.keepText, text_tokens: tokens });
    s.jobs.enqueue(adapter.id);
    s.logger.info('adapter_queued', { adapter: adapter.id, kind: adapter.kind, steps: adapter.steps, tokens });
    return { status: 202, body: view(s, s.store.adapter(adapter.id) ?? adapter) };
  };
}

function exportRoute(s: AdapterServices): RouteHandler {
  return async (ctx) => {
    const adapter = ownAdapter(s, ctx.req, ctx.params.id);
    const format = exportFormat(ctx.query.format, adapter);
    if (adapter.state !== 'ready' || !s.files.hasAdapter(adapter.id)) {
      throw new ApiError(409, `the adapter '${adapter.name}' is ${adapter.state}, not ready`, { code: 'adapter_not_ready', hint: `wait until GET /v1/adapters/${adapter.id} says ready` });
    }
    if (format === 'lora' && adapter.kind !== 'lora') {
      throw invalidRequest(`a ${adapter.kind} adapter has no LoRA form`, 'format', 'ask for format=adapter or format=merged', 'unsupported_format');
    }
    const source = s.files.adapterPath(adapter.id);
    let path = source;
    if (format !== 'adapter') {
      path = s.files.exportPath(adapter.id, '.gguf');
      try {
        await (format === 'merged' ? s.engine.exportMerged(source, path) : s.engine.exportLora(source, path));
      } catch (error) {
        wipe(path);
        throw baseMismatchError(error, 'format');
      }
    }
    s.store.audit(adapter.userId, 'adapter_exported', adapter.id, { name: adapter.name, format });
    const fileName = format === 'merged' ? `${s.models.modelId(adapter.name).replace('@', '-')}.gguf` : `${adapter.name}${format === 'lora' ? '.lora' : ''}.gguf`;
    return { body: fileBody(path, fileName, path === source ? undefined : () => wipe(path)) };
  };
}

/** A file sent as an attachment; `done` runs once it is sent or the client left (a derived file is deleted). */
function fileBody(path: string, fileName: string, done?: () => void): ResponseBody {
  return {
    async writeTo(res) {
      try {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': statSync(path).size,
          'content-disposition': `attachment; filename="${fileName.replace(/[^A-Za-z0-9._-]/g, '_')}"`,
          'cache-control': 'no-store',
        });
        await pipeline(createReadStream(path), res);
      } finally {
        done?.();
      }
    },
  };
}

function exportFormat(raw: string | undefined, adapter: AdapterRecord): ExportFormat {
  if (raw === undefined) return adapter.kind === 'lora' ? 'lora' : 'adapter';
  const parsed = z.enum(EXPORT_FORMATS).safeParse(raw);
  if (!parsed.success) throw invalidRequest(`unknown export format '${raw}'`, 'format', `use one of ${EXPORT_FORMATS.join(', ')}`);
  return parsed.data;
}

/** The caller as a user, or 403 for the admin key and anonymous callers. */
export function requireUser(req: IncomingMessage): UserCaller {
  const caller = callerOf(req);
  if (caller.kind === 'user') return caller;
  throw new ApiError(403, `adapters, consent and audit belong to users, and this request comes from ${caller.kind === 'admin' ? 'the admin key' : 'no user'}`, {
    code: 'user_key_required',
    hint: 'send a user key as Authorization: Bearer <key> (the node operator makes one with `sharedllm users add NAME`)',
  });
}

/** The caller's adapter with this id; 404 for a missing one and for another user's alike. */
function ownAdapter(s: AdapterServices, req: IncomingMessage, id: string | undefined): AdapterRecord {
  const user = requireUser(req);
  const adapter = id === undefined ? undefined : s.store.adapter(id);
  if (adapter === undefined || adapter.userId !== user.userId) {
    throw new ApiError(404, `no adapter '${id ?? ''}'`, { code: 'adapter_not_found', hint: 'GET /v1/adapters lists yours' });
  }
  return adapter;
}

function queryInt(raw: string | undefined, name: string, min: number, max: number, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw invalidRequest(`${name} must be an integer from ${min} to ${max}, got '${raw}'`, name);
  return n;
}

/** An adapter as the API shows it (the consent record included; never the text). */
function view(s: AdapterServices, a: AdapterRecord) {
  const now = Date.now();
  const eta = a.state === 'training' && a.startedAt !== null && a.step > 0 ? Math.round(((now - a.startedAt) / a.step) * (a.steps - a.step)) / 1000 : null;
  return {
    id: a.id,
    object: 'adapter',
    name: a.name,
    model: s.models.modelId(a.name),
    kind: a.kind,
    ...(a.rank === null ? {} : { rank: a.rank }),
    state: a.state,
    step: a.step,
    steps: a.steps,
    loss: a.loss,
    eta_seconds: eta,
    queue_position: s.jobs.position(a.id) ?? null,
    error: a.error,
    base: a.baseHash,
    created_at: iso(a.createdAt),
    started_at: iso(a.startedAt),
    finished_at: iso(a.finishedAt),
    text_kept: a.consent.keepText && s.files.hasText(a.id),
    consent: { purpose: a.consent.purpose, keep_text: a.consent.keepText, text_sha256: a.consent.textSha256, given_at: iso(a.consent.givenAt) },
  };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
