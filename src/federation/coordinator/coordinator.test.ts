import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { localTestConfig } from '../config.ts';
import { createSelfSignedCert } from './certs.ts';
import { CoordinatorClient, CoordinatorUnreachableError } from './client.ts';
import { CoordinatorStartError, startCoordinator } from './coordinator.ts';
import { silentLogger } from '../../util/log.ts';
import { createEphemeralIdentity } from '../identity.ts';
import { makeHeartbeat, makeManifest, makeRegistration, tempDir, waitFor } from './testing.ts';

// Timers slow enough that nothing expires between two requests of a test on a loaded machine.
const config = { ...localTestConfig(), suspectTimeoutMs: 60_000, deadTimeoutMs: 60_000 };
const base = { host: '127.0.0.1', port: 0, config, logger: silentLogger };

test('restarting with the same data dir keeps nodes (now suspect), manifests and the identity', async () => {
  const dir = tempDir();
  try {
    const first = await startCoordinator({ ...base, dataDir: dir.path });
    const client = new CoordinatorClient({ url: first.url });
    const key = createEphemeralIdentity();
    await client.register(makeRegistration({ nodeId: 'keep-w1', incarnation: 4 }, key));
    const manifest = makeManifest();
    await client.publishManifest(manifest);
    client.close();
    await first.close();

    const second = await startCoordinator({ ...base, dataDir: dir.path });
    const again = new CoordinatorClient({ url: second.url });
    try {
      assert.deepEqual(second.identity, first.identity);
      const node = await again.getNode('keep-w1');
      assert.equal(node.state, 'suspect');
      assert.equal(node.incarnation, 4);
      assert.deepEqual(await again.listManifests(), [manifest]);
      // the node checks in again and is alive
      const beat = await again.heartbeat(makeHeartbeat(key, { nodeId: 'keep-w1', incarnation: 4, freeMemoryBytes: 1, load: 0 }));
      assert.equal(beat.state, 'alive');
    } finally {
      again.close();
      await second.close();
    }
  } finally {
    dir.cleanup();
  }
});

test('the sweep timer applies the membership timers: a silent node goes suspect, then dead', async () => {
  const dir = tempDir();
  const coordinator = await startCoordinator({ ...base, config: localTestConfig(), dataDir: dir.path });
  const client = new CoordinatorClient({ url: coordinator.url });
  try {
    await client.register(makeRegistration({ nodeId: 'silent-w1' }));
    const seen = new Set<string>();
    await waitFor('the node to be declared dead', async () => {
      const state = (await client.getNode('silent-w1')).state;
      seen.add(state);
      return state === 'dead';
    });
    assert.ok(seen.has('dead'));
    assert.equal((await client.health()).nodes.dead, 1);
  } finally {
    client.close();
    await coordinator.close();
    dir.cleanup();
  }
});

test('start errors teach: half a TLS pair, a busy port, an empty token', async () => {
  const dir = tempDir();
  try {
    await assert.rejects(startCoordinator({ ...base, dataDir: dir.path, tlsCert: '/x.crt' }), CoordinatorStartError);
    await assert.rejects(startCoordinator({ ...base, dataDir: dir.path, joinToken: ' ' }), /join token is empty/);
    const running = await startCoordinator({ ...base, dataDir: dir.path });
    try {
      await assert.rejects(startCoordinator({ ...base, port: running.port, dataDir: join(dir.path, 'other') }), /port .* is taken/);
    } finally {
      await running.close();
    }
  } finally {
    dir.cleanup();
  }
});

let opensslMissing: string | false = false;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  opensslMissing = 'openssl is not installed';
}

test('TLS with a generated cert: a client trusting the cert file works, one that does not fails with a hint', { skip: opensslMissing }, async () => {
  const dir = tempDir();
  try {
    const cert = await createSelfSignedCert({ hosts: ['127.0.0.1'], outDir: join(dir.path, 'tls') });
    const coordinator = await startCoordinator({ ...base, dataDir: join(dir.path, 'data'), tlsCert: cert.certPath, tlsKey: cert.keyPath, joinToken: 't0ken' });
    assert.match(coordinator.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const trusting = new CoordinatorClient({ url: coordinator.url, caFile: cert.certPath, joinToken: 't0ken' });
    const untrusting = new CoordinatorClient({ url: coordinator.url, joinToken: 't0ken' });
    try {
      assert.equal((await trusting.health()).status, 'ok');
      await trusting.register(makeRegistration({ nodeId: 'tls-w1' }));
      assert.deepEqual((await trusting.listNodes()).map((node) => node.nodeId), ['tls-w1']);
      await assert.rejects(untrusting.health(), (error: unknown) => {
        assert.ok(error instanceof CoordinatorUnreachableError);
        assert.match(error.hint, /not trusted.*--ca/);
        return true;
      });
    } finally {
      trusting.close();
      untrusting.close();
      await coordinator.close();
    }
  } finally {
    dir.cleanup();
  }
});
