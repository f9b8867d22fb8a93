/**
 * The relay server (RFC-0001): forwards data-plane traffic to nodes that cannot accept connections
 * (behind NAT). Run by the coordinator, and by any node started with --relay-server.
 *
 * Every connection to the relay starts with one frame that says what it is:
 *   HELLO         a hidden node's control connection: an ordinary Peer on which the node requests
 *                 `relay.register` {nodeId, token}; the relay later sends it `relay.dial` {ticket}.
 *   RELAY_OPEN    a client asking for a node {nodeId, token}: the relay parks the socket under a fresh
 *                 ticket and notifies the node's control connection `relay.dial` {ticket}.
 *   RELAY_ACCEPT  the hidden node's fresh outbound data connection for {ticket}: the relay answers the
 *                 parked client RELAY_READY and splices the two sockets with pipe(), byte for byte.
 * After RELAY_READY the client says HELLO end to end and the node serves it like any incoming
 * connection. The relay never decodes spliced traffic.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { z } from 'zod';
import { silentLogger } from '../../util/log.ts';
import type { Logger } from '../../util/log.ts';
import { RelayAcceptSchema, RelayOpenSchema, RelayRegisterSchema } from '../protocol.ts';
import type { RelayRegistered, TransportError } from '../protocol.ts';
import { formatHostPort } from './address.ts';
import { frameBytes, FrameDecoder, FrameError, FrameKind } from './frame.ts';
import type { Frame } from './frame.ts';
import { Peer } from './peer.ts';
import type { ServerTls } from './rpc.ts';
import { listenSockets, tuneSocket } from './socket.ts';

export interface RelayServerOptions {
  host: string;
  port: number;
  tls?: ServerTls;
  /** When set, `relay.register` and RELAY_OPEN must carry this token (the federation's join token). */
  joinToken?: string;
  logger?: Logger;
  /** How long a client waits for the hidden node's data connection (default 10 s). */
  dialTimeoutMs?: number;
  /** Parked clients per node at most (default 32); more are answered 'relay_busy'. */
  maxPendingPerNode?: number;
  /** The first frame, and a control connection's registration, must arrive within this (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Control connections are pinged this often; one that does not answer is dropped (default 15 s). */
  pingIntervalMs?: number;
  /** Session id the relay announces in HELLO (default 'relay'). */
  session?: string;
}

export interface RelayStats {
  /** Node ids registered now. */
  nodes: string[];
  /** Clients parked, waiting for their node's data connection. */
  pending: number;
  /** Splices open now, and since start. */
  activeSplices: number;
  totalSplices: number;
}

export interface RelayServer {
  port: number;
  host: string;
  stats(): RelayStats;
  close(): Promise<void>;
}

interface Parked {
  nodeId: string;
  client: Socket;
  /** Bytes the client sent after RELAY_OPEN (normally none: it waits for RELAY_READY). */
  leftover: Buffer;
  timer: NodeJS.Timeout;
}

/** Constant-time token comparison (hashing first makes the lengths equal). */
export function tokenMatches(expected: string | undefined, given: string | undefined): boolean {
  if (expected === undefined) return true;
  if (given === undefined) return false;
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(expected), digest(given));
}

export async function startRelayServer(opts: RelayServerOptions): Promise<RelayServer> {
  const logger = opts.logger ?? silentLogger;
  const dialTimeoutMs = opts.dialTimeoutMs ?? 10_000;
  const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
  const maxPendingPerNode = opts.maxPendingPerNode ?? 32;
  const session = opts.session ?? 'relay';
  const controls = new Map<string, Peer>();
  const parked = new Map<string, Parked>();
  const sockets = new Set<Socket>();
  let activeSplices = 0;
  let totalSplices = 0;

  /** Last words on a socket we refuse: an ERROR frame, then close. */
  const refuse = (socket: Socket, error: TransportError) => {
    logger.info('relay_refused', { remote: socket.remoteAddress, ...error });
    socket.end(frameBytes({ kind: FrameKind.ERROR, id: 0, method: '', header: error, payload: new Uint8Array(0) }));
    setTimeout(() => socket.destroy(), 250).unref();
  };

  // -------------------------------------------------------------------------------------------------
  // Control connections (hidden nodes)

  const register = (peer: Peer, header: unknown): RelayRegistered => {
    const { nodeId, token } = RelayRegisterSchema.parse(header);
    if (!tokenMatches(opts.joinToken, token)) {
      throw Object.assign(new Error('wrong or missing join token'), { code: 'unauthorized', hint: 'pass the federation join token (--token) to the node' });
    }
    const previous = controls.get(nodeId);
    controls.set(nodeId, peer);
    if (previous !== undefined && previous !== peer) {
      // The newest registration wins: the usual reason is a node that reconnected before the relay
      // noticed its old connection was dead. See the RFC's security section.
      logger.info('relay_node_replaced', { nodeId, old: previous.id, new: peer.id });
      previous.close();
    }
    peer.once('close', () => {
      if (controls.get(nodeId) === peer) {
        controls.delete(nodeId);
        logger.info('relay_node_left', { nodeId });
      }
    });
    logger.info('relay_node_registered', { nodeId, remote: peer.remote });
    return { nodeId, relay: session };
  };

  const adoptControl = (socket: Socket, initial: Buffer) => {
    let registered = false;
    const peer = new Peer(socket, {
      role: 'server',
      session,
      remote: formatHostPort(socket.remoteAddress ?? 'unknown', socket.remotePort ?? 0),
      logger,
      initial,
      handshakeTimeoutMs,
      limits: { maxPayloadBytes: 0 },
      methods: {
        'relay.register': {
          schema: RelayRegisterSchema,
          handler: ({ header, peer: self }) => {
            const answer = register(self, header);
            registered = true;
            return { header: answer };
          },
        },
      },
    });
    const unregisteredTimer = setTimeout(() => {
      if (!registered) peer.close();
    }, handshakeTimeoutMs);
    unregisteredTimer.unref();
    const pinger = setInterval(() => {
      peer.rtt({ timeoutMs: Math.max(1_000, (opts.pingIntervalMs ?? 15_000) / 2) }).catch(() => peer.close());
    }, opts.pingIntervalMs ?? 15_000);
    pinger.unref();
    peer.once('close', () => {
      clearTimeout(unregisteredTimer);
      clearInterval(pinger);
    });
  };

  // -------------------------------------------------------------------------------------------------
  // Splicing

  const openRequested = (client: Socket, frame: Frame, leftover: Buffer) => {
    const parsed = RelayOpenSchema.safeParse(frame.header);
    if (!parsed.success) return refuse(client, { code: 'bad_request', message: `bad RELAY_OPEN: ${z.prettifyError(parsed.error)}` });
    const { nodeId, token } = parsed.data;
    if (!tokenMatches(opts.joinToken, token)) return refuse(client, { code: 'unauthorized', message: 'wrong or missing join token', hint: 'pass the federation join token' });
    const control = controls.get(nodeId);
    if (control === undefined || control.closed) return refuse(client, { code: 'unknown_node', message: `no node '${nodeId}' is registered at this relay`, hint: 'the node may be down or registered at another relay: ask the coordinator' });
    const waiting = [...parked.values()].filter((entry) => entry.nodeId === nodeId).length;
    if (waiting >= maxPendingPerNode) return refuse(client, { code: 'relay_busy', message: `${waiting} connections to '${nodeId}' are already waiting`, hint: 'retry later' });

    const ticket = randomBytes(16).toString('hex');
    client.pause(); // anything the client sends early stays in the kernel until the splice
    const timer = setTimeout(() => {
      parked.delete(ticket);
      refuse(client, { code: 'relay_timeout', message: `node '${nodeId}' did not open its data connection within ${dialTimeoutMs} ms`, hint: 'the node may be overloaded or its outbound connections blocked' });
    }, dialTimeoutMs);
    parked.set(ticket, { nodeId, client, leftover, timer });
    client.once('close', () => {
      const entry = parked.get(ticket);
      if (entry?.client === client) {
        clearTimeout(entry.timer);
        parked.delete(ticket);
      }
    });
    try {
      control.notify('relay.dial', { ticket });
    } catch {
      clearTimeout(timer);
      parked.delete(ticket);
      refuse(client, { code: 'unknown_node', message: `node '${nodeId}' just disconnected from the relay`, hint: 'retry in a moment' });
    }
  };

  const acceptRequested = (nodeSide: Socket, frame: Frame, leftover: Buffer) => {
    const parsed = RelayAcceptSchema.safeParse(frame.header);
    const entry = parsed.success ? parked.get(parsed.data.ticket) : undefined;
    if (!parsed.success || entry === undefined) return refuse(nodeSide, { code: 'bad_request', message: 'unknown or expired relay ticket' });
    parked.delete(parsed.data.ticket);
    clearTimeout(entry.timer);
    splice(entry, nodeSide, leftover);
  };

  const splice = (entry: Parked, nodeSide: Socket, nodeLeftover: Buffer) => {
    const { client } = entry;
    activeSplices += 1;
    totalSplices += 1;
    logger.debug('relay_splice', { nodeId: entry.nodeId, client: client.remoteAddress });
    let done = false;
    const teardown = () => {
      if (done) return;
      done = true;
      activeSplices -= 1;
      client.destroy();
      nodeSide.destroy();
    };
    for (const socket of [client, nodeSide]) {
      socket.on('error', teardown);
      socket.on('close', teardown);
    }
    client.write(frameBytes({ kind: FrameKind.RELAY_READY, id: 0, method: '', header: { nodeId: entry.nodeId }, payload: new Uint8Array(0) }));
    if (nodeLeftover.length > 0) client.write(nodeLeftover);
    if (entry.leftover.length > 0) nodeSide.write(entry.leftover);
    client.pipe(nodeSide);
    nodeSide.pipe(client);
    client.resume();
  };

  // -------------------------------------------------------------------------------------------------
  // First frame: what kind of connection is this?

  const onSocket = (socket: Socket) => {
    tuneSocket(socket);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', (error) => logger.debug('relay_socket_error', { remote: socket.remoteAddress, error: error.message }));
    const raw: Buffer[] = [];
    const decoder = new FrameDecoder({ payloadLimit: () => 0 });
    const timer = setTimeout(() => socket.destroy(), handshakeTimeoutMs);
    timer.unref();
    const onData = (chunk: Buffer) => {
      raw.push(chunk);
      let first: Frame | undefined;
      try {
        decoder.write(chunk);
        first = decoder.read();
      } catch (error) {
        socket.off('data', onData);
        clearTimeout(timer);
        if (error instanceof FrameError) return refuse(socket, { code: 'bad_frame', message: error.message.slice(0, 4000) });
        throw error;
      }
      if (first === undefined) return;
      socket.off('data', onData);
      clearTimeout(timer);
      if (first.kind === FrameKind.HELLO) return adoptControl(socket, Buffer.concat(raw)); // the Peer re-reads the HELLO
      if (first.skippedPayloadBytes !== undefined) return refuse(socket, { code: 'bad_frame', message: 'relay handshake frames carry no payload' });
      const rest = decoder.takeRemaining(); // bytes after the first frame, passed on verbatim
      if (first.kind === FrameKind.RELAY_OPEN) return openRequested(socket, first, rest);
      if (first.kind === FrameKind.RELAY_ACCEPT) return acceptRequested(socket, first, rest);
      refuse(socket, { code: 'bad_frame', message: `a relay connection starts with HELLO, RELAY_OPEN or RELAY_ACCEPT, not kind ${first.kind}` });
    };
    socket.on('data', onData);
  };

  const { server, port } = await listenSockets({ host: opts.host, port: opts.port, ...(opts.tls ? { tls: opts.tls } : {}), name: 'relay', logger, onSocket });
  logger.info('relay_listening', { host: opts.host, port, tls: opts.tls !== undefined, token: opts.joinToken !== undefined });

  return {
    port,
    host: opts.host,
    stats: () => ({ nodes: [...controls.keys()], pending: parked.size, activeSplices, totalSplices }),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const entry of parked.values()) clearTimeout(entry.timer);
      parked.clear();
      for (const peer of controls.values()) peer.close();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
