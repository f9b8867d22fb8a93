/**
 * The live server fuzz.test.ts attacks, in its own process so that "the process has not crashed" means
 * something. Prints `PORT <n>` and `RELAY <n>` on stdout once listening; serves echo/sink/fail (see
 * fuzz-corpus.ts) and `stats` (counts of what its logger saw), and runs a relay server (join token
 * FUZZ_RELAY_TOKEN). Run: node --import tsx src/federation/transport/fuzz-server.ts
 */
import { z } from 'zod';
import type { Logger } from '../../util/log.ts';
import { FUZZ_ECHO_MAX_PAYLOAD, FUZZ_RELAY_TOKEN } from './fuzz-corpus.ts';
import { startRelayServer } from './relay-server.ts';
import { listen, method } from './rpc.ts';

const events = new Map<string, number>();
const count = (event: string) => events.set(event, (events.get(event) ?? 0) + 1);
const logger: Logger = { debug: count, info: count, warn: count, error: count };
let notifications = 0;

const server = await listen({
  host: '127.0.0.1',
  port: 0,
  session: 'fuzz-server',
  logger,
  handshakeTimeoutMs: 2_000,
  methods: {
    echo: method(z.object({ n: z.number().int() }), ({ header, payload }) => ({ header: { n: header.n }, payload }), FUZZ_ECHO_MAX_PAYLOAD),
    sink: { schema: z.object({ text: z.string() }), handler: () => void (notifications += 1) },
    fail: method(z.object({ coded: z.boolean() }), ({ header }) => {
      if (header.coded) throw Object.assign(new Error('coded failure'), { code: 'fuzz_failure', hint: 'expected' });
      throw new Error('uncoded failure');
    }),
    stats: {
      schema: z.object({}),
      handler: () => ({ header: { events: Object.fromEntries(events), notifications, peers: server.peers().length, memoryRss: process.memoryUsage().rss, relay: relay.stats() } }),
    },
  },
});
const relay = await startRelayServer({ host: '127.0.0.1', port: 0, joinToken: FUZZ_RELAY_TOKEN, logger, dialTimeoutMs: 2_000, handshakeTimeoutMs: 2_000 });
process.stdout.write(`PORT ${server.port}\nRELAY ${relay.port}\n`);
process.on('SIGTERM', () => {
  void Promise.all([server.close(), relay.close()]).then(() => process.exit(0));
});
