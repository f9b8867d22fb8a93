// A worker process for bench/verify.ts's cross-CPU run: serves the data plane on a loopback port (printed as
// `port N` on stdout) with the ggml CPU variant its node_modules offers (an AVX2-only copy, say), so that
// the primary re-computes its spans with other kernels. Usage: verify-worker.ts NODE_ID MODEL.gguf...
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { createEphemeralIdentity } from '../src/federation/identity.ts';
import type { MembershipCheck } from '../src/federation/node/membership.ts';
import { hashFile } from '../src/federation/node/model-hash.ts';
import { WorkerService } from '../src/federation/node/worker-service.ts';
import { listen } from '../src/federation/transport/rpc.ts';
import { getGgml } from '../src/ggml/runtime.ts';
import { silentLogger } from '../src/util/log.ts';

const [nodeId, ...models] = process.argv.slice(2);
if (!nodeId || models.length === 0) throw new Error('usage: verify-worker.ts NODE_ID MODEL.gguf...');
getGgml({ gpu: 'off', threads: 1 });
const variant = readFileSync('/proc/self/maps', 'utf8').match(/libggml-cpu-[a-z0-9_]+\.so/)?.[0] ?? 'unknown';
// A benchmark worker on loopback admits any authenticated caller as a primary of any model (no coordinator).
const anyone: MembershipCheck = {
  member: async (id, publicKey) => ({ nodeId: id, publicKey, role: 'primary', addrs: [], models: [...hashes] }),
  find: async () => undefined,
};
const cacheDir = mkdtempSync(join(tmpdir(), 'sharedllm-vw-'));
const hashes = models.map((m) => hashFile(m, cacheDir));
const service = new WorkerService({ nodeId, identity: createEphemeralIdentity(), membership: anyone, cacheDir, modelFiles: models, threads: 1, gpu: 'off', logger: silentLogger });
const server = await listen({ host: '127.0.0.1', port: 0, methods: service.methods(), session: nodeId, auth: service.auth() });
service.attach(server);
process.stdout.write(`port ${server.port} ${variant}\n`);
