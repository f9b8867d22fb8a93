// `sharedllm certs`: a self-signed certificate and key for a LAN coordinator.
import { type CommandSpec, type Parsed } from './args.ts';
import { createSelfSignedCert } from '../federation/coordinator/certs.ts';

export const spec: CommandSpec = {
  name: 'certs',
  summary: "Make a self-signed TLS certificate and key for a LAN coordinator (nodes trust it with --ca).",
  usage: 'sharedllm certs --out D --host <name-or-ip> [--host ...] [--days N] [--force]',
  flags: {
    out: { type: 'string', arg: 'D', required: true, help: 'directory to write coordinator.crt and coordinator.key into' },
    host: { type: 'string', arg: 'H', multiple: true, help: 'name or IP address nodes use to reach the coordinator (repeatable)' },
    days: { type: 'number', integer: true, min: 1, max: 36500, unit: 'days', default: 825, help: 'validity in days' },
    force: { type: 'boolean', default: false, help: 'overwrite existing files' },
  },
  examples: ['sharedllm certs --out certs --host 192.168.1.10'],
};

export async function run({ flags: f }: Parsed): Promise<number> {
  const hosts = (f.host as string[] | undefined) ?? [];
  const cert = await createSelfSignedCert({ hosts, outDir: f.out as string, days: f.days as number, overwrite: Boolean(f.force) });
  process.stdout.write(`certificate ${cert.certPath}\nkey         ${cert.keyPath}\nnames       ${cert.subjectAltNames.join(', ')}\nsha256      ${cert.fingerprint256}\nvalid to    ${cert.validTo}\n`);
  process.stderr.write(`Start the coordinator with --tls-cert ${cert.certPath} --tls-key ${cert.keyPath}; nodes trust it with --ca ${cert.certPath}.\n`);
  return 0;
}
