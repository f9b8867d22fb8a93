// A throwaway member of a federation, for tests that talk to a worker's data plane directly: workers serve
// only connections that prove the key of a member the coordinator lists (and the join token, if any). The
// probe registers as a primary (with no model), runs `fn` with the HELLO auth to use, and leaves.
import { CoordinatorClient } from '../../src/federation/coordinator/client.ts';
import { createEphemeralIdentity } from '../../src/federation/identity.ts';
import type { PeerAuth } from '../../src/federation/transport/rpc.ts';

export async function asMember<T>(coordinatorUrl: string, opts: { joinToken?: string; caFile?: string }, fn: (auth: PeerAuth) => Promise<T>): Promise<T> {
  const identity = createEphemeralIdentity();
  const client = new CoordinatorClient({ url: coordinatorUrl, ...(opts.joinToken ? { joinToken: opts.joinToken } : {}), ...(opts.caFile ? { caFile: opts.caFile } : {}) });
  const lease = client.join({
    identity,
    registration: { nodeId: identity.id, role: 'primary', name: 'test-probe', candidates: [], freeMemoryBytes: 0, threads: 1, backend: 'cpu', models: [], version: '0.0.0-test' },
  });
  try {
    await lease.registered;
    return await fn({ identity, ...(opts.joinToken ? { token: opts.joinToken } : {}) });
  } finally {
    await lease.leave().catch(() => lease.stop());
    client.close();
  }
}
