/**
 * src/http: the one HTTP layer of SharedLLM (no framework). Every listener uses it: the coordinator
 * (federation/coordinator/server.ts), the OpenAI-compatible API of a primary (api/server.ts), and the
 * dashboards to come (static files and SSE). What it holds:
 *   router.ts    routes with ':param' and a trailing '*', 404/405
 *   listener.ts  the request listener with ONE error path, mapped per service (ErrorMapper), a per-request
 *                AbortSignal, request tracking for orderly shutdown; plain or TLS server
 *   errors.ts    HttpError (what routes throw), RouteNotFoundError, ClientGoneError, ErrorMapper
 *   body.ts      body reading with limits (413), strict UTF-8 JSON (400 invalid_json), Content-Type (415)
 *   bearer.ts    `Authorization: Bearer` check in constant time
 *   sse.ts       server-sent events: headers, event and error frames, close; SseStream as a route body
 *   static.ts    static files: safe path resolution, content types, ETag / Cache-Control
 *
 * Where it sits in the layers. DESIGN.md draws http/ beside api/ and cli/, above federation/, because it
 * serves them. But the coordinator's listener lives in federation/coordinator/, and an import from there
 * into a layer above it would point upward. So this layer is deliberately LOW-LEVEL and generic: it
 * imports only node's modules and src/util/ (checked by layering.test.ts), knows nothing of the
 * coordinator's protocol or of OpenAI's error shape (each service passes its ErrorMapper, its bearer
 * wording, its headers), and may therefore be imported by any layer from federation/ up, like util/.
 * Read the layer order as: util -> http (generic transport) ... federation -> api/cli/web.
 */
export { bearerToken, checkBearer, tokensEqual } from './bearer.ts';
export type { BearerWording, WithHeaders } from './bearer.ts';
export { checkJsonContentType, parseJson, readBody, readJson } from './body.ts';
export type { BodyLimit, JsonBodyRules } from './body.ts';
export { ClientGoneError, HTTP_LAYER_CODES, HttpError, RouteNotFoundError } from './errors.ts';
export type { ErrorMapper, HttpLayerCode } from './errors.ts';
export { createListener, createServer, requestSignal, sendJson } from './listener.ts';
export type { ListenerOptions, RequestListener } from './listener.ts';
export { isResponseBody, Router } from './router.ts';
export type { HttpMethod, RequestContext, ResponseBody, ResponseContext, RouteHandler, RouteMatch, RouteResult } from './router.ts';
export { closeSse, openSse, SSE_HEADERS, sseFrame, SseStream, writeSseError, writeSseEvent } from './sse.ts';
export type { SseEventOptions, SseStreamOptions } from './sse.ts';
export { CONTENT_TYPES, contentTypeFor, FileBody, safeSegments, staticFiles } from './static.ts';
export type { StaticFilesOptions } from './static.ts';
