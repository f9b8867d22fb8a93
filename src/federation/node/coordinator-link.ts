// What a node needs before it joins: a coordinator whose TLS certificate it trusts, and TLS settings for the
// coordinator's relay (the coordinator CLI serves its relay with the same certificate when it serves HTTPS).
import { readFileSync } from 'node:fs';
import { type CoordinatorClient, CoordinatorUnreachableError, TLS_TRUST_ERRORS } from '../coordinator/client.ts';
import type { ClientTls } from '../transport/rpc.ts';


/**
 * Ask the coordinator once before joining. The lease retries network errors forever (the coordinator may
 * start later), so an untrusted certificate would otherwise leave the node waiting silently: throw it
 * instead, with the client's hint (--ca). Any other failure is left to the lease's retries.
 */
export async function checkCoordinatorTrust(client: CoordinatorClient): Promise<void> {
  try {
    await client.health();
  } catch (e) {
    const code = ((e as Error).cause as NodeJS.ErrnoException | undefined)?.code ?? '';
    if (e instanceof CoordinatorUnreachableError && TLS_TRUST_ERRORS.has(code)) throw e;
  }
}

/** TLS for connections to the coordinator's relay: on when the coordinator is https, trusting `caFile`. */
export function relayTls(coordinatorUrl: string, caFile: string | undefined): ClientTls | undefined {
  if (!coordinatorUrl.startsWith('https:')) return undefined;
  return caFile ? { ca: readFileSync(caFile) } : {};
}

/**
 * The worker's data-plane TLS pair when the federation uses TLS (an https coordinator): a self-signed
 * certificate for its advertised hosts, made once (openssl, like `sharedllm certs`) and kept in its data
 * dir. Peers trust exactly this certificate: it travels in the node's signed registration.
 */
export async function dataPlaneTls(coordinatorUrl: string, dataDir: string, hosts: string[]): Promise<{ cert: string; key: string } | undefined> {
  if (!coordinatorUrl.startsWith('https:')) return undefined;
  const { existsSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { createSelfSignedCert } = await import('../coordinator/certs.ts');
  const certPath = join(dataDir, 'data-plane.crt');
  const keyPath = join(dataDir, 'data-plane.key');
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    await createSelfSignedCert({ hosts: hosts.length > 0 ? hosts : ['localhost'], outDir: dataDir, name: 'data-plane', overwrite: true });
  }
  return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
}
