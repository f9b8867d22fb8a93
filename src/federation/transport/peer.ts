/**
 * One data-plane connection, either end: HELLO handshake, then requests and notifications both ways.
 *
 * - The connecting side ('client') sends HELLO with its session first; the accepting side ('server')
 *   answers HELLO with its own. With `auth` (hello-auth.ts) both ends prove their node identity (and the
 *   join token) in two more HELLOs; before that only HELLO and PING are answered, anything else closes
 *   the connection with an ERROR naming why. After that the connection is symmetric: both ends serve `methods`.
 * - Requests are matched to answers by frame id, so any number can be in flight and answers come back
 *   in any order. A request on an unknown method, with a header its schema refuses, or with a payload
 *   over the method's limit gets an ERROR frame; the connection stays usable.
 * - A malformed frame closes this connection only (after a best-effort ERROR 'bad_frame').
 * - Writes go through an outbox that waits for the socket's 'drain': big payloads are handed to the
 *   socket by reference (never copied) and later frames queue behind them instead of piling up in
 *   the socket's buffer.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { z } from 'zod';
import { silentLogger } from '../../util/log.ts';
import type { Logger } from '../../util/log.ts';
import { TransportErrorSchema } from '../protocol.ts';
import type { TransportError } from '../protocol.ts';
import { ConnectError, PeerClosedError, RemoteError, TimeoutError, handshakeError } from './errors.ts';
import { HandshakeRefusal } from './hello-auth.ts';
import type { PeerAuth, PeerIdentity } from './hello-auth.ts';
import { HelloExchange } from './hello-exchange.ts';
import type { HelloStep } from './hello-exchange.ts';
import { effectiveLimits, encodeFrame, FrameDecoder, FrameError, FrameKind, kindName } from './frame.ts';
import type { Frame, Limits } from './frame.ts';
import { toTransportError } from './methods.ts';
import { Outbox } from './outbox.ts';
import type { MethodSpec, Reply } from './methods.ts';

export interface PeerOptions {
  role: 'client' | 'server';
  /** Our session id, announced in HELLO. */
  session: string;
  methods?: Record<string, MethodSpec>;
  /** 'host:port' of the other end, or 'relay://host:port/nodeId'. */
  remote: string;
  logger?: Logger;
  limits?: Partial<Limits>;
  /** Bytes already read from the socket before the peer took it over (relay splices). */
  initial?: Buffer;
  /** Close if HELLO has not completed by then (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Stop reading while this many handlers run (default 1024); reading resumes below it. */
  maxInflight?: number;
  /** Prove our node identity and require the other end's (hello-auth.ts). */
  auth?: PeerAuth;
}

export interface RequestOptions {
  /** Default DEFAULT_REQUEST_TIMEOUT_MS. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
const EMPTY = new Uint8Array(0);
const MAX_ID = 0xffffffff;

interface Pending {
  method: string;
  ping: boolean;
  resolve: (answer: { header: unknown; payload: Uint8Array }) => void;
  reject: (error: Error) => void;
}

let peerCounter = 0;

export class Peer extends EventEmitter<{ close: [error: Error | undefined] }> {
  readonly id: string;
  remote: string;
  /** The other side's HELLO session (set once `ready` resolved). */
  session?: string;
  /** The other side's proven node identity (set once `ready` resolved, on connections with `auth`). */
  identity?: PeerIdentity;
  /** Resolves after the HELLO exchange; rejects (ConnectError/TimeoutError) if it fails. */
  readonly ready: Promise<void>;

  private readonly socket: Duplex;
  private readonly options: PeerOptions;
  private readonly methods: Record<string, MethodSpec>;
  private readonly logger: Logger;
  private readonly limits: Limits;
  private readonly decoder: FrameDecoder;
  private readonly pending = new Map<number, Pending>();
  private readonly inflight = new Set<AbortController>();
  private readonly outbox: Outbox;
  private nextId = 1;
  private handshaken = false;
  /** Where the HELLO exchange stands (hello-exchange.ts). */
  private readonly hello: HelloExchange;
  /** A verifyPeer callback runs: frames wait in the decoder until it answers. */
  private verifying = false;
  private closedWith: PeerClosedError | undefined;
  private settleReady!: (error?: Error) => void;
  private handshakeTimer: NodeJS.Timeout | undefined;

  constructor(socket: Duplex, options: PeerOptions) {
    super();
    this.socket = socket;
    this.outbox = new Outbox(socket);
    this.options = options;
    this.id = `${options.role === 'client' ? 'c' : 's'}${++peerCounter}-${randomBytes(3).toString('hex')}`;
    this.remote = options.remote;
    this.methods = options.methods ?? {};
    this.logger = options.logger ?? silentLogger;
    this.limits = effectiveLimits(options.limits);
    this.decoder = new FrameDecoder({ limits: options.limits, payloadLimit: (kind, method) => this.payloadLimit(kind, method) });
    this.ready = new Promise<void>((resolve, reject) => {
      this.settleReady = (error) => (error === undefined ? resolve() : reject(error));
    });
    this.ready.catch(() => {}); // observed by connect(); a server-side failure is only logged

    const handshakeMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.handshakeTimer = setTimeout(() => this.fail(new TimeoutError(`HELLO with ${this.remote}`, handshakeMs)), handshakeMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.flush());
    socket.on('error', (error: Error) => this.shutdown(error.message, error));
    socket.on('end', () => this.shutdown('the other side ended the connection'));
    socket.on('close', () => this.shutdown('connection closed'));
    this.hello = new HelloExchange(options.role, options.session, options.auth);
    if (options.role === 'client') this.writeNow({ kind: FrameKind.HELLO, id: 0, method: '', header: this.hello.hello(), payload: EMPTY });
    if (options.initial !== undefined && options.initial.length > 0) {
      const initial = options.initial;
      queueMicrotask(() => this.onData(initial));
    }
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Bytes written but not yet on the wire (socket buffer + outbox): callers may wait for drained(). */
  get bufferedBytes(): number {
    return this.socket.writableLength + this.outbox.bytes;
  }

  /** Resolves when everything queued so far has been handed to the kernel (or the peer closed). */
  async drained(): Promise<void> {
    while (!this.closed && this.bufferedBytes > 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.socket.off('drain', done);
          this.off('close', done);
          resolve();
        };
        this.socket.once('drain', done);
        this.once('close', done);
      });
    }
  }

  request(method: string, header: unknown, payload: Uint8Array = EMPTY, opts: RequestOptions = {}): Promise<{ header: unknown; payload: Uint8Array }> {
    return this.call(FrameKind.REQUEST, method, header, payload, opts);
  }

  /**
   * One-way message: no answer, no error report (errors on the other side are only logged there).
   * Throws PeerClosedError on a closed peer, FrameError for a header or payload over the limits.
   */
  notify(method: string, header: unknown, payload: Uint8Array = EMPTY): void {
    if (this.closedWith !== undefined) throw this.closedWith;
    this.send({ kind: FrameKind.NOTIFY, id: 0, method, header, payload });
  }

  /** PING/PONG round trip in ms (the queue ahead of the PING counts: measure on an idle connection). */
  async rtt(opts: RequestOptions = {}): Promise<number> {
    const started = performance.now();
    await this.call(FrameKind.PING, '', undefined, EMPTY, { timeoutMs: 5_000, ...opts });
    return performance.now() - started;
  }

  close(): void {
    this.shutdown('closed locally');
  }

  // -------------------------------------------------------------------------------------------------
  // Outgoing

  private call(kind: FrameKind, method: string, header: unknown, payload: Uint8Array, opts: RequestOptions): Promise<{ header: unknown; payload: Uint8Array }> {
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith);
    if (opts.signal?.aborted === true) return Promise.reject(opts.signal.reason as Error);
    const id = this.allocateId();
    const frame: Frame = { kind, id, method, header, payload };
    let pieces: Buffer[];
    try {
      pieces = encodeFrame(frame);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const timeoutMs = opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const what = kind === FrameKind.PING ? `PING to ${this.remote}` : `request ${method} to ${this.remote}`;
      const timer = setTimeout(() => settle(new TimeoutError(what, timeoutMs)), timeoutMs);
      const onAbort = () => settle((opts.signal?.reason as Error | undefined) ?? new Error('aborted'));
      const settle = (error: Error | undefined, answer?: { header: unknown; payload: Uint8Array }) => {
        if (this.pending.get(id) !== entry) return;
        this.pending.delete(id);
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (error === undefined) resolve(answer!);
        else reject(error);
      };
      const entry: Pending = { method, ping: kind === FrameKind.PING, resolve: (answer) => settle(undefined, answer), reject: (error) => settle(error) };
      this.pending.set(id, entry);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.enqueue(pieces);
    });
  }

  private allocateId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = id >= MAX_ID ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  /** Encode and queue. Throws FrameError for a frame over the protocol limits (nothing is queued then). */
  private send(frame: Frame): void {
    this.enqueue(encodeFrame(frame));
  }

  private enqueue(pieces: Buffer[]): void {
    this.outbox.push(pieces);
    this.flush();
  }

  /** Hand queued frames to the socket (only after HELLO, never after close). */
  private flush(): void {
    this.outbox.flush(() => this.handshaken && this.closedWith === undefined);
  }

  /** Handshake frames and last words bypass the outbox. */
  private writeNow(frame: Frame): void {
    if (this.socket.writable) for (const piece of encodeFrame(frame)) this.socket.write(piece);
  }

  private sendError(id: number, error: TransportError): void {
    this.send({ kind: FrameKind.ERROR, id, method: '', header: error, payload: EMPTY });
  }

  // -------------------------------------------------------------------------------------------------
  // Incoming

  private payloadLimit(kind: FrameKind, method: string): number {
    if (!this.handshaken) return 0; // nothing before HELLO carries a payload
    if (kind === FrameKind.REQUEST || kind === FrameKind.NOTIFY) {
      const spec = Object.hasOwn(this.methods, method) ? this.methods[method] : undefined;
      if (spec === undefined) return 0; // answered unknown_method: do not buffer what nobody will read
      return Math.min(spec.maxPayloadBytes ?? Infinity, this.limits.maxPayloadBytes);
    }
    return this.limits.maxPayloadBytes;
  }

  private onData(chunk: Buffer): void {
    if (this.closedWith !== undefined) return;
    this.decoder.write(chunk);
    this.pump();
  }

  private pump(): void {
    // One frame at a time: a frame is acted on (HELLO raises the payload limit, a request is admitted)
    // before the next is decoded, and frames ahead of a malformed one are still served.
    while (this.closedWith === undefined && !this.verifying) {
      let frame: Frame | undefined;
      try {
        frame = this.decoder.read();
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
        this.logger.warn('transport_bad_frame', { peer: this.id, remote: this.remote, code: error.code, error: error.message });
        this.writeNow({ kind: FrameKind.ERROR, id: 0, method: '', header: { code: 'bad_frame', message: error.message.slice(0, 4000) }, payload: EMPTY });
        this.shutdown(`malformed frame (${error.code})`, error);
        return;
      }
      if (frame === undefined) return;
      if (this.handshaken) this.onFrame(frame);
      else this.onHandshakeFrame(frame);
    }
  }

  private onHandshakeFrame(frame: Frame): void {
    if (frame.kind === FrameKind.ERROR) {
      const parsed = TransportErrorSchema.safeParse(frame.header);
      const error = parsed.success ? parsed.data : { code: 'bad_frame', message: 'malformed ERROR header' };
      this.fail(new ConnectError(this.remote, error.code, error.message, error.hint ?? 'the other side refused the connection'));
      return;
    }
    if (frame.kind === FrameKind.PING && this.hello.expecting !== 'hello') {
      this.writeNow({ kind: FrameKind.PONG, id: frame.id, method: '', header: undefined, payload: EMPTY });
      return;
    }
    if (frame.kind !== FrameKind.HELLO) {
      const what = frame.method === '' ? kindName(frame.kind) : `${kindName(frame.kind)} '${frame.method}'`;
      if (this.options.auth !== undefined) this.refuse(new HandshakeRefusal('unauthenticated', `${what} before the authenticated HELLO completed`, 'say HELLO with a node identity first (PeerOptions.auth)'));
      else this.protocolViolation(`expected HELLO first, got ${kindName(frame.kind)}`);
      return;
    }
    try {
      this.apply(this.hello.receive(frame.header));
    } catch (error) {
      if (!(error instanceof HandshakeRefusal)) throw error;
      this.refuse(error);
    }
  }

  /** Do what the HELLO exchange says: send, ask verifyPeer (frames wait meanwhile), finish. */
  private apply(step: HelloStep): void {
    this.session = this.hello.session;
    if (step.send !== undefined) this.writeNow({ kind: FrameKind.HELLO, id: 0, method: '', header: step.send, payload: EMPTY });
    if (step.verify !== undefined) {
      const { identity, after } = step.verify;
      const verify = this.options.auth?.verifyPeer;
      this.verifying = true;
      Promise.resolve()
        .then(() => verify?.(identity))
        .then(
          () => {
            this.verifying = false;
            if (this.closedWith !== undefined) return;
            this.hello.verified(identity);
            this.identity = identity;
            this.apply(after());
            this.pump();
          },
          (error: unknown) => {
            this.verifying = false;
            const record = error as { code?: unknown; hint?: unknown; message?: unknown };
            const code = typeof record.code === 'string' ? record.code : 'not_member';
            const hint = typeof record.hint === 'string' ? record.hint : 'register the node with the coordinator of this federation';
            this.refuse(new HandshakeRefusal(code, `${identity.nodeId} may not connect: ${String(record.message ?? error)}`.slice(0, 4000), hint));
          },
        );
    }
    if (step.done === true) this.complete();
  }

  private complete(): void {
    this.handshaken = true;
    clearTimeout(this.handshakeTimer);
    this.settleReady();
    this.flush();
  }

  /** Refuse the handshake: an ERROR naming why to the other side, a ConnectError for our `ready`. */
  private refuse(refusal: HandshakeRefusal): void {
    this.logger.warn('transport_hello_refused', { peer: this.id, remote: this.remote, code: refusal.code, message: refusal.message });
    this.writeNow({ kind: FrameKind.ERROR, id: 0, method: '', header: { code: refusal.code, message: refusal.message.slice(0, 4000), hint: refusal.hint }, payload: EMPTY });
    this.fail(new ConnectError(this.remote, refusal.code, refusal.message, refusal.hint));
  }

  private onFrame(frame: Frame): void {
    switch (frame.kind) {
      case FrameKind.REQUEST:
        void this.serve(frame);
        return;
      case FrameKind.NOTIFY:
        void this.serveNotification(frame);
        return;
      case FrameKind.PING:
        this.send({ kind: FrameKind.PONG, id: frame.id, method: '', header: undefined, payload: EMPTY });
        return;
      case FrameKind.RESPONSE:
      case FrameKind.PONG: {
        const entry = this.pending.get(frame.id);
        if (entry === undefined || entry.ping !== (frame.kind === FrameKind.PONG)) {
          this.logger.debug('transport_late_answer', { peer: this.id, id: frame.id, kind: kindName(frame.kind) });
          return;
        }
        entry.resolve({ header: frame.header, payload: frame.payload });
        return;
      }
      case FrameKind.ERROR: {
        const parsed = TransportErrorSchema.safeParse(frame.header);
        const error = parsed.success ? parsed.data : { code: 'internal', message: 'the peer sent a malformed ERROR header', hint: undefined };
        const entry = this.pending.get(frame.id);
        if (entry === undefined) {
          this.logger.warn('transport_remote_error', { peer: this.id, remote: this.remote, id: frame.id, ...error });
          return;
        }
        entry.reject(new RemoteError(error.code, error.message, error.hint, entry.method, this.remote));
        return;
      }
      default:
        this.protocolViolation(`unexpected ${kindName(frame.kind)} after HELLO`);
    }
  }

  /** Checks shared by requests and notifications; returns the parsed header or an error to answer. */
  private admit(frame: Frame): { spec: MethodSpec; header: unknown } | TransportError {
    const spec = Object.hasOwn(this.methods, frame.method) ? this.methods[frame.method] : undefined;
    if (spec === undefined) {
      const known = Object.keys(this.methods).slice(0, 50).join(', ');
      return { code: 'unknown_method', message: `no method '${frame.method}' here`, hint: `this peer serves: ${known || 'nothing'}` };
    }
    if (frame.skippedPayloadBytes !== undefined) {
      const limit = Math.min(spec.maxPayloadBytes ?? Infinity, this.limits.maxPayloadBytes);
      return { code: 'too_large', message: `payload of ${frame.skippedPayloadBytes} bytes for '${frame.method}', limit ${limit}`, hint: 'send less per request' };
    }
    const parsed = spec.schema.safeParse(frame.header);
    if (!parsed.success) return { code: 'bad_request', message: `bad header for '${frame.method}': ${z.prettifyError(parsed.error).slice(0, 2000)}`, hint: 'check the header against protocol.ts' };
    return { spec, header: parsed.data };
  }

  private async serve(frame: Frame): Promise<void> {
    const admitted = this.admit(frame);
    if (!('spec' in admitted)) {
      this.sendError(frame.id, admitted);
      return;
    }
    const controller = this.startHandler();
    try {
      const reply = await admitted.spec.handler({ method: frame.method, header: admitted.header, payload: frame.payload, peer: this, signal: controller.signal });
      if (this.closedWith !== undefined) return;
      try {
        this.send({ kind: FrameKind.RESPONSE, id: frame.id, method: '', header: reply?.header, payload: reply?.payload ?? EMPTY });
      } catch (error) {
        this.logger.error('transport_unencodable_reply', { peer: this.id, method: frame.method, error });
        this.sendError(frame.id, { code: 'internal', message: `the reply could not be sent: ${(error as Error).message}`.slice(0, 4000) });
      }
    } catch (error) {
      if (this.closedWith !== undefined) return;
      const wire = toTransportError(error);
      if (wire.code === 'internal') this.logger.error('transport_handler_error', { peer: this.id, method: frame.method, error });
      this.sendError(frame.id, wire);
    } finally {
      this.endHandler(controller);
    }
  }

  private async serveNotification(frame: Frame): Promise<void> {
    const admitted = this.admit(frame);
    if (!('spec' in admitted)) {
      this.logger.warn('transport_notification_refused', { peer: this.id, remote: this.remote, method: frame.method, ...admitted });
      return;
    }
    const controller = this.startHandler();
    try {
      await admitted.spec.handler({ method: frame.method, header: admitted.header, payload: frame.payload, peer: this, signal: controller.signal });
    } catch (error) {
      this.logger.error('transport_notification_error', { peer: this.id, method: frame.method, error });
    } finally {
      this.endHandler(controller);
    }
  }

  private startHandler(): AbortController {
    const controller = new AbortController();
    this.inflight.add(controller);
    if (this.inflight.size >= (this.options.maxInflight ?? 1024)) this.socket.pause();
    return controller;
  }

  private endHandler(controller: AbortController): void {
    this.inflight.delete(controller);
    if (this.closedWith === undefined && this.socket.isPaused() && this.inflight.size < (this.options.maxInflight ?? 1024)) this.socket.resume();
  }

  // -------------------------------------------------------------------------------------------------
  // Closing

  private protocolViolation(message: string): void {
    this.logger.warn('transport_protocol_violation', { peer: this.id, remote: this.remote, message });
    this.writeNow({ kind: FrameKind.ERROR, id: 0, method: '', header: { code: 'bad_frame', message }, payload: EMPTY });
    this.shutdown(message);
  }

  /** Fail the handshake (or the connection) with a specific error for `ready`. */
  private fail(error: Error): void {
    this.settleReady(error);
    this.shutdown(error.message, error);
  }

  /** Idempotent: reject everything pending, abort handlers, close the socket, emit 'close' once. */
  private shutdown(reason: string, cause?: Error): void {
    if (this.closedWith !== undefined) return;
    const closed = new PeerClosedError(this.remote, reason);
    this.closedWith = closed;
    clearTimeout(this.handshakeTimer);
    this.settleReady(this.handshaken ? closed : handshakeError(this.remote, reason, cause));
    for (const entry of [...this.pending.values()]) entry.reject(closed);
    for (const controller of this.inflight) controller.abort(closed);
    this.outbox.clear();
    // end() lets queued last words (an ERROR frame) out; destroy() follows if the other side lingers.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 250).unref();
    this.logger.debug('transport_peer_closed', { peer: this.id, remote: this.remote, session: this.session, reason });
    this.emit('close', cause);
  }
}
