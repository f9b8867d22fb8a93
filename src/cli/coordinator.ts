// `sharedllm coordinator`: the federation's directory of nodes and specialists (HTTP(S) API, SQLite), plus a
// relay for nodes behind NAT.
import { join } from 'node:path';
import { homedir } from 'node:os';
import { type CommandSpec, FLAG_SHAPES, type Parsed } from './args.ts';
import type { RunningCoordinator } from '../federation/coordinator/coordinator.ts';
import type { Logger } from '../util/log.ts';
import { LOG_FLAGS, cliLogger, noticeLogger } from './logging.ts';
import { Shutdown } from './shutdown.ts';

export const spec: CommandSpec = {
  name: 'coordinator',
  summary: 'Run the federation coordinator: the directory of nodes and models, with a relay for nodes behind NAT.',
  usage: 'sharedllm coordinator [--host 0.0.0.0] [--port 8420] [--tls-cert F --tls-key F] [--data-dir D] [--join-token T]',
  flags: {
    host: { type: 'string', default: '0.0.0.0', help: 'interface to listen on (0.0.0.0: every interface; 127.0.0.1: this machine only)' },
    port: { ...FLAG_SHAPES.port, default: 8420, help: 'HTTP(S) port' },
    'tls-cert': { type: 'string', arg: 'F', help: 'PEM certificate: serve HTTPS (make a LAN pair with `sharedllm certs`)' },
    'tls-key': { type: 'string', arg: 'F', help: 'PEM private key for --tls-cert' },
    'data-dir': { type: 'string', arg: 'D', default: '~/.sharedllm/coordinator', help: 'where the database and the identity key live' },
    'join-token': { type: 'string', arg: 'T', help: 'require this token from every node (env SHAREDLLM_JOIN_TOKEN)' },
    'relay-port': { ...FLAG_SHAPES.port, default: 8421, help: 'data-plane relay port for workers behind NAT; 0 disables the relay' },
    ...LOG_FLAGS,
  },
  examples: ['sharedllm coordinator --host 0.0.0.0 --port 8420', 'sharedllm certs --out certs --host 192.168.1.10 && sharedllm coordinator --tls-cert certs/coordinator.crt --tls-key certs/coordinator.key'],
};

export function expandHome(p: string): string {
  return p.startsWith('~/') ? join(homedir(), p.slice(2)) : p;
}

export async function run({ flags: f }: Parsed): Promise<number> {
  const logger = cliLogger(f, 'coordinator');
  const notices = noticeLogger(f, 'coordinator');
  // A signal while starting stops at once; once serving, the first one closes the relay and the API in order
  // and a second one stops at once (shutdown.ts).
  const shutdown = new Shutdown({ name: 'sharedllm coordinator', write: (message) => notices.info('shutdown', { message }) });
  try {
    return await serve(f, logger, notices, shutdown);
  } finally {
    shutdown.dispose();
  }
}

async function serve(f: Parsed['flags'], logger: Logger, notices: Logger, shutdown: Shutdown): Promise<number> {
  const joinToken = (f['join-token'] as string | undefined) ?? process.env.SHAREDLLM_JOIN_TOKEN;
  const tlsCert = f['tls-cert'] as string | undefined;
  const tlsKey = f['tls-key'] as string | undefined;
  // The relay first, so that /health can announce its port to `--relay` workers.
  const relayPort = f['relay-port'] as number;
  // Imported here, not above: `sharedllm coordinator --help` (and `node --help`, which imports expandHome)
  // must not load the whole federation stack.
  const [{ startCoordinator }, { lanConfig }, { startRelayServer }, { addDashboardRoutes }, { coordinatorSnapshot }] = await Promise.all([
    import('../federation/coordinator/coordinator.ts'),
    import('../federation/config.ts'),
    import('../federation/transport/relay.ts'),
    import('../web/dashboard.ts'),
    import('../web/snapshots.ts'),
  ]);
  const { readFileSync } = await import('node:fs');
  const relay = relayPort > 0
    ? await startRelayServer({ host: f.host as string, port: relayPort, logger, ...(joinToken ? { joinToken } : {}), ...(tlsCert && tlsKey ? { tls: { cert: readFileSync(tlsCert), key: readFileSync(tlsKey) } } : {}) })
    : undefined;
  let coord: RunningCoordinator;
  try {
    coord = await startCoordinator({
      host: f.host as string, port: f.port as number, dataDir: expandHome(f['data-dir'] as string), config: lanConfig(), logger,
      ...(tlsCert ? { tlsCert } : {}), ...(tlsKey ? { tlsKey } : {}), ...(joinToken ? { joinToken } : {}), ...(relay ? { relayPort: relay.port } : {}),
      // The dashboard at GET / (src/web): the federation, live.
      extraRoutes: (router) => addDashboardRoutes(router, { home: 'coordinator', snapshot: coordinatorSnapshot(router) }),
    });
  } catch (error) {
    await relay?.close();
    throw error;
  }
  shutdown.serving();
  notices.info('listening', {
    message: `coordinator listening on ${coord.url}${relay ? `, relay on port ${relay.port}` : ''}${joinToken ? ' (join token required)' : ''}`,
    url: coord.url, relayPort: relay?.port, joinToken: Boolean(joinToken),
  });
  await shutdown.requested;
  return shutdown.run(async () => {
    await relay?.close();
    await coord.close();
  });
}
