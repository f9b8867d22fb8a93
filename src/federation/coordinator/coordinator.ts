/**
 * startCoordinator: wires the store (SQLite in the data dir), the coordinator's identity, the
 * membership state machine with its sweep timer, and the HTTP(S) server.
 *
 * Data directory layout: `coordinator.db` (+ WAL files) and `identity.key` (ed25519, mode 0600).
 * Restarting with the same data directory keeps nodes and manifests; nodes that were alive come back
 * suspect and have config.deadTimeoutMs to heartbeat before they are declared dead.
 */
import type { Router } from '../../http/index.ts';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import { validateConfig } from '../config.ts';
import type { FederationConfig } from '../config.ts';
import { systemClock } from '../../util/clock.ts';
import type { Clock } from '../../util/clock.ts';
import { loadOrCreateIdentity } from '../identity.ts';
import type { Identity } from '../identity.ts';
import { createJsonLogger } from '../../util/log.ts';
import type { Logger } from '../../util/log.ts';
import { Membership } from './membership.ts';
import { createCoordinatorServer } from './server.ts';
import { SQLITE_FILE, SqliteStore } from './sqlite-store.ts';
import type { CoordinatorStore } from './store.ts';
import { softwareVersion } from './version.ts';

export interface CoordinatorOptions {
  /** Interface to listen on, e.g. '0.0.0.0' for the LAN, '127.0.0.1' for this machine only. */
  host: string;
  /** TCP port; 0 picks a free one (read it back from `url`). */
  port: number;
  /** Holds the database and the identity key; created (0700) when missing. */
  dataDir: string;
  /** Paths of a PEM certificate and key: serve HTTPS. Both or neither. */
  tlsCert?: string;
  tlsKey?: string;
  /** When set, every /v1 request must carry `Authorization: Bearer <joinToken>`. */
  joinToken?: string;
  /** Port of a relay running beside the coordinator (announced in /health so `--relay` workers find it). */
  relayPort?: number;
  config: FederationConfig;
  /** Default: JSON lines on stderr at level info. */
  logger?: Logger;
  /** Default: the system clock. */
  clock?: Clock;
  /** Default: SqliteStore in dataDir. Pass a MemoryStore for a coordinator that forgets on exit. */
  store?: CoordinatorStore;
  /** Adds routes after the coordinator's own (the dashboard: `sharedllm coordinator` passes src/web's). */
  extraRoutes?: (router: Router) => void;
}

export interface RunningCoordinator {
  /** Base URL for clients, e.g. 'https://127.0.0.1:7700' (a wildcard host becomes loopback). */
  readonly url: string;
  readonly port: number;
  /** The coordinator's identity (public parts). */
  readonly identity: Pick<Identity, 'id' | 'publicKey'>;
  /** Stops the sweep timer and the server (dropping open connections) and closes the store. */
  close(): Promise<void>;
}

export class CoordinatorStartError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(`${message}. ${hint}`);
    this.name = 'CoordinatorStartError';
  }
}

export async function startCoordinator(options: CoordinatorOptions): Promise<RunningCoordinator> {
  const config = validateConfig({ ...options.config });
  const logger = options.logger ?? createJsonLogger({ base: { component: 'coordinator' } });
  const clock = options.clock ?? systemClock;
  if (options.joinToken !== undefined && options.joinToken.trim().length === 0) {
    throw new CoordinatorStartError('the join token is empty', 'pass a non-empty --join-token, or none to run without one');
  }
  const tls = readTls(options.tlsCert, options.tlsKey);

  const identity = loadOrCreateIdentity(options.dataDir);
  const store = options.store ?? new SqliteStore(join(options.dataDir, SQLITE_FILE));
  try {
    recordIdentity(store, identity, clock, logger);
    const membership = new Membership({ store, clock, config, logger });
    const restored = membership.restore();
    if (restored.length > 0) logger.info('nodes_restored', { count: restored.length, state: 'suspect' });

    const server = createCoordinatorServer({
      membership,
      store,
      identity,
      config,
      logger,
      version: softwareVersion(),
      startedAt: clock.now(),
      now: () => clock.now(),
      ...(options.joinToken === undefined ? {} : { joinToken: options.joinToken }),
      ...(tls === undefined ? {} : { tls }),
      ...(options.relayPort ? { relayPort: options.relayPort } : {}),
      ...(options.extraRoutes === undefined ? {} : { extraRoutes: options.extraRoutes }),
    });
    await listen(server, options.host, options.port);

    const sweep = setInterval(() => {
      try {
        membership.tick();
      } catch (error) {
        logger.error('sweep_failed', { error });
      }
    }, config.sweepIntervalMs);
    sweep.unref();

    const port = (server.address() as AddressInfo).port;
    const url = `${tls === undefined ? 'http' : 'https'}://${urlHost(options.host)}:${port}`;
    logger.info('coordinator_started', { url, dataDir: options.dataDir, coordinatorId: identity.id, tls: tls !== undefined, auth: options.joinToken !== undefined });

    let closing: Promise<void> | undefined;
    return {
      url,
      port,
      identity: { id: identity.id, publicKey: identity.publicKey },
      close: () => {
        closing ??= new Promise<void>((resolve) => {
          clearInterval(sweep);
          server.close(() => {
            store.close();
            logger.info('coordinator_stopped', { url });
            resolve();
          });
          server.closeAllConnections();
        });
        return closing;
      },
    };
  } catch (error) {
    store.close();
    throw error;
  }
}

function readTls(certPath: string | undefined, keyPath: string | undefined): { cert: Buffer; key: Buffer } | undefined {
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined) {
    throw new CoordinatorStartError('TLS needs both a certificate and a key', 'pass both --tls-cert and --tls-key (`sharedllm certs` makes a pair)');
  }
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new CoordinatorStartError(`cannot read the TLS ${what} ${path}: ${(error as Error).message}`, 'check the path and its permissions');
    }
  };
  return { cert: read(certPath, 'certificate'), key: read(keyPath, 'key') };
}

/** Keeps the store's copy of the identity in step with the key file. */
function recordIdentity(store: CoordinatorStore, identity: Identity, clock: Clock, logger: Logger): void {
  const stored = store.getIdentity();
  if (stored?.publicKey === identity.publicKey) return;
  if (stored !== undefined) logger.warn('identity_changed', { previous: stored.coordinatorId, current: identity.id, path: identity.path });
  store.putIdentity({ coordinatorId: identity.id, publicKey: identity.publicKey, createdAt: clock.now() });
}

function listen(server: import('node:http').Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const hint = error.code === 'EADDRINUSE' ? `port ${port} is taken: pick another --port, or stop the other process` : 'check --host and --port';
      reject(new CoordinatorStartError(`cannot listen on ${host}:${port}: ${error.message}`, hint));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** The host part of the URL clients should use: wildcard addresses become loopback. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return isIPv6(host) ? `[${host}]` : host;
}
