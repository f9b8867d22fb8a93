/**
 * CoordinatorClient: the typed client nodes use to talk to the coordinator. Requests go through
 * node:http / node:https (not fetch) so an HTTPS coordinator with a self-signed certificate can be
 * trusted by passing its certificate (or CA) as `ca` / `caFile`. Responses are validated with the
 * protocol schemas; error answers become CoordinatorError (status, code, hint), network and TLS
 * failures CoordinatorUnreachableError.
 *
 * For the register + heartbeat loop, see join() (lease.ts).
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { API_PREFIX, ErrorBodySchema, HealthSchema, HeartbeatResponseSchema, LeaveResponseSchema, NodeListSchema, NodeViewSchema, RegisterResponseSchema } from '../protocol.ts';
import { AcceptResultSchema, ManifestListSchema } from '../protocol-directory.ts';
import type { Health, Heartbeat, HeartbeatResponse, Leave, LeaveResponse, NodeListQuery, NodeRegistration, NodeView, RegisterResponse } from '../protocol.ts';
import type { AcceptResult, Manifest } from '../protocol-directory.ts';
import { CoordinatorError, CoordinatorUnreachableError } from './client-errors.ts';
import { speaksTls } from './tls-probe.ts';
import { startLease } from './lease.ts';
import type { JoinOptions, NodeLease } from './lease.ts';

export { CoordinatorError, CoordinatorUnreachableError } from './client-errors.ts';

export interface CoordinatorClientOptions {
  /** Base URL, e.g. 'http://192.168.1.10:7700' or 'https://coord.lan:7700'. */
  url: string;
  /** The federation join token, when the coordinator requires one. */
  joinToken?: string;
  /** PEM certificate(s) to trust for HTTPS, e.g. the coordinator's self-signed cert. */
  ca?: string | Buffer;
  /** Path of a PEM file to trust (read once, here). */
  caFile?: string;
  /** Per-request timeout (default 5000 ms). */
  requestTimeoutMs?: number;
}

const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
/** The code of the error an http:// URL gets when the coordinator serves HTTPS (see speaksTls). */
export const HTTP_TO_TLS = 'SHAREDLLM_HTTP_TO_TLS';
/** TLS failures that no retry can fix (the hint says: pass --ca, or use https://). */
export const TLS_TRUST_ERRORS: ReadonlySet<string> = new Set([
  HTTP_TO_TLS,
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
]);

export class CoordinatorClient {
  readonly url: string;
  private readonly base: URL;
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly joinToken: string | undefined;
  private readonly timeoutMs: number;

  constructor(options: CoordinatorClientOptions) {
    this.base = new URL(options.url);
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') {
      throw new TypeError(`coordinator URL must be http:// or https://, got ${options.url}`);
    }
    this.url = this.base.origin;
    this.joinToken = options.joinToken;
    this.timeoutMs = options.requestTimeoutMs ?? 5_000;
    const ca = options.ca ?? (options.caFile === undefined ? undefined : readFileSync(options.caFile));
    this.agent =
      this.base.protocol === 'https:'
        ? new HttpsAgent({ keepAlive: true, ...(ca === undefined ? {} : { ca }) })
        : new HttpAgent({ keepAlive: true });
  }

  health(): Promise<Health> {
    return this.call('GET', '/health', undefined, HealthSchema);
  }

  register(registration: NodeRegistration): Promise<RegisterResponse> {
    return this.call('POST', `${API_PREFIX}/nodes/register`, registration, RegisterResponseSchema);
  }

  heartbeat(beat: Heartbeat): Promise<HeartbeatResponse> {
    return this.call('POST', `${API_PREFIX}/nodes/${encodeURIComponent(beat.nodeId)}/heartbeat`, beat, HeartbeatResponseSchema);
  }

  leave(message: Leave): Promise<LeaveResponse> {
    return this.call('POST', `${API_PREFIX}/nodes/${encodeURIComponent(message.nodeId)}/leave`, message, LeaveResponseSchema);
  }

  async listNodes(query: NodeListQuery = {}): Promise<NodeView[]> {
    const params = new URLSearchParams();
    if (query.role !== undefined) params.set('role', query.role);
    if (query.state !== undefined) params.set('state', query.state);
    const suffix = params.toString() === '' ? '' : `?${params.toString()}`;
    return (await this.call('GET', `${API_PREFIX}/nodes${suffix}`, undefined, NodeListSchema)).nodes;
  }

  getNode(nodeId: string): Promise<NodeView> {
    return this.call('GET', `${API_PREFIX}/nodes/${encodeURIComponent(nodeId)}`, undefined, NodeViewSchema);
  }

  async listManifests(): Promise<Manifest[]> {
    return (await this.call('GET', `${API_PREFIX}/manifests`, undefined, ManifestListSchema)).manifests;
  }

  /** RFC-0006: POST /v1/specialists; the answer says whether it was stored, a duplicate, or what it replaced. */
  publishManifest(manifest: Manifest): Promise<AcceptResult> {
    return this.call('POST', `${API_PREFIX}/specialists`, manifest, AcceptResultSchema);
  }

  /** Registers and keeps the lease alive in the background; see lease.ts. */
  join(options: JoinOptions): NodeLease {
    return startLease(this, options);
  }

  /** Drops kept-alive connections. Stop any lease first. */
  close(): void {
    this.agent.destroy();
  }

  /** One request: sends JSON, returns the validated response body or throws. */
  async call<T>(method: 'GET' | 'POST', path: string, body: unknown, schema: z.ZodType<T>): Promise<T> {
    const { status, text } = await this.send(method, path, body);
    let json: unknown;
    try {
      json = text.length === 0 ? undefined : JSON.parse(text);
    } catch {
      throw new CoordinatorError(status, 'invalid_response', `${method} ${path}: answer is not JSON (HTTP ${status})`, 'is this URL a SharedLLM coordinator?');
    }
    if (status < 200 || status >= 300) {
      const error = ErrorBodySchema.safeParse(json);
      if (error.success) throw new CoordinatorError(status, error.data.error.code, error.data.error.message, error.data.error.hint);
      throw new CoordinatorError(status, 'invalid_response', `${method} ${path}: HTTP ${status} without an error body`, 'is this URL a SharedLLM coordinator?');
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new CoordinatorError(
        status,
        'invalid_response',
        `${method} ${path}: unexpected answer: ${z.prettifyError(parsed.error)}`,
        'the coordinator may run another SharedLLM version',
      );
    }
    return parsed.data;
  }

  private send(method: string, path: string, body: unknown): Promise<{ status: number; text: string }> {
    const target = new URL(path, this.base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    const headers: Record<string, string | number> = { accept: 'application/json' };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = payload.length;
    }
    if (this.joinToken !== undefined) headers['authorization'] = `Bearer ${this.joinToken}`;
    const request = target.protocol === 'https:' ? httpsRequest : httpRequest;

    return new Promise((resolve, reject) => {
      const req = request(target, { method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) req.destroy(new Error(`answer larger than ${MAX_RESPONSE_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (error) => reject(this.unreachable(error)));
      });
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (error) => void this.unreachableOrTls(error).then(reject));
      req.end(payload);
    });
  }

  /**
   * A reset connection on an http:// URL may be a TLS server dropping plain HTTP: ask it for a handshake, and
   * if it answers, say so (code HTTP_TO_TLS, which callers treat as fatal) instead of "check the network".
   */
  private async unreachableOrTls(error: Error): Promise<CoordinatorUnreachableError> {
    const code = (error as NodeJS.ErrnoException).code;
    if (this.base.protocol === 'http:' && code === 'ECONNRESET' && (await speaksTls(this.base, this.timeoutMs))) {
      const cause = Object.assign(new Error('the connection was reset, and the server answers a TLS handshake'), { code: HTTP_TO_TLS });
      return new CoordinatorUnreachableError(this.url, cause, `the coordinator speaks HTTPS: use https://${this.base.host} and --ca <its certificate>`);
    }
    return this.unreachable(error);
  }

  private unreachable(error: Error): CoordinatorUnreachableError {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    const hint = TLS_TRUST_ERRORS.has(code)
      ? `the coordinator's TLS certificate is not trusted (${code}): pass its certificate file to trust (--ca <cert.pem>), and use the host name or IP the certificate was made for`
      : code === 'ECONNREFUSED'
        ? 'is the coordinator running, and is the port right?'
        : 'check the URL and the network';
    return new CoordinatorUnreachableError(this.url, error, hint);
  }
}
