// `sharedllm specialist`: RFC-0006 specialist manifests: make one from a GGUF file and sign it with this
// machine's publisher key, publish it to a coordinator, list the directory, revoke one.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { type CommandSpec, type Parsed, UsageError } from './args.ts';
import type { CoordinatorClient } from '../federation/coordinator/client.ts';
import type { Identity } from '../federation/identity.ts';
import type { AcceptResult, Manifest, SpecialistView, UnsignedManifest, UnsignedRevocation } from '../federation/protocol-directory.ts';
import type { ZodType } from 'zod';

/**
 * The federation modules, imported when an action runs (not for --help, which must start instantly). The GGUF
 * reader and hashing (model-facts.ts) are imported only by the actions that read a model file.
 */
async function loadLibs() {
  const [zod, protocol, directoryProtocol, identity, client, clientErrors, entry, config] = await Promise.all([
    import('zod'),
    import('../federation/protocol.ts'),
    import('../federation/protocol-directory.ts'),
    import('../federation/identity.ts'),
    import('../federation/coordinator/client.ts'),
    import('../federation/coordinator/client-errors.ts'),
    import('../federation/directory/entry.ts'),
    import('../federation/config.ts'),
  ]);
  return { z: zod.z, ...protocol, ...directoryProtocol, ...identity, ...client, ...clientErrors, ...entry, ...config };
}
type Libs = Awaited<ReturnType<typeof loadLibs>>;

const modelFactsOf = async (path: string) => (await import('../federation/directory/model-facts.ts')).modelFacts(path);

export const ACTIONS = ['manifest', 'publish', 'list', 'revoke'] as const;
type Action = (typeof ACTIONS)[number];

/** The publisher key's file name inside --data-dir (mode 0600; it never leaves this machine). */
export const PUBLISHER_KEY_FILE = 'publisher.key';

export const spec: CommandSpec = {
  name: 'specialist',
  summary: 'Publish specialist models (RFC-0006 signed manifests): make, publish, list and revoke them.',
  usage: [
    'sharedllm specialist manifest --model F --id ID --domain TAG[,TAG] [--description S] [--version N] [--key F] --out M.json',
    '       sharedllm specialist publish --manifest M.json (--coordinator-url URL | --node-url URL) [--model F]',
    '       sharedllm specialist list (--coordinator-url URL | --node-url URL) [--json]',
    '       sharedllm specialist revoke --id ID (--coordinator-url URL | --node-url URL) [--key F]',
  ].join('\n'),
  positionals: ['action'],
  flags: {
    model: { type: 'string', arg: 'F', help: 'the GGUF file (manifest: read and hashed; publish: checked against the manifest)' },
    id: { type: 'string', arg: 'ID', help: "the specialist's model id, e.g. smollm2-135m-code ([A-Za-z0-9._:/-], 1-128)" },
    domain: { type: 'string', arg: 'TAG[,TAG]', help: 'domain tags, comma-separated, e.g. code,go' },
    description: { type: 'string', arg: 'S', help: 'one line shown in listings (at most 200 characters)' },
    version: { type: 'number', help: 'manifest: its version (default 1; publish a higher one to replace it); revoke: the version to revoke (default the one listed)' },
    key: { type: 'string', arg: 'F', help: `publisher key file (default <data-dir>/${PUBLISHER_KEY_FILE}; created on first use, mode 0600)` },
    'data-dir': { type: 'string', arg: 'D', default: '~/.sharedllm', help: 'where the publisher key lives' },
    out: { type: 'string', arg: 'F', help: 'manifest: where to write the signed manifest' },
    manifest: { type: 'string', arg: 'F', help: 'publish: the signed manifest to publish' },
    reason: { type: 'string', arg: 'S', help: 'revoke: one line saying why' },
    'coordinator-url': { type: 'string', arg: 'URL', help: 'the coordinator, e.g. http://192.168.1.10:8420' },
    'node-url': { type: 'string', arg: 'URL', help: "instead of the coordinator: a primary's API, e.g. http://127.0.0.1:8080 (works while the coordinator is down; gossip spreads what you publish)" },
    'api-key': { type: 'string', arg: 'K', help: "with --node-url: the primary's API key (env SHAREDLLM_API_KEY)" },
    'join-token': { type: 'string', arg: 'T', help: "the federation's join token, if it has one (env SHAREDLLM_JOIN_TOKEN)" },
    ca: { type: 'string', arg: 'F', help: 'trust this PEM certificate for an https coordinator' },
    json: { type: 'boolean', default: false, help: 'list: print JSON instead of a table' },
  },
  examples: [
    'sharedllm specialist manifest --model code.gguf --id smollm2-135m-code --domain code,go --description "Go and Python source" --out code.json',
    'sharedllm specialist publish --manifest code.json --coordinator-url http://192.168.1.10:8420',
    'sharedllm specialist list --coordinator-url http://192.168.1.10:8420',
    'sharedllm specialist publish --manifest code.json --node-url http://127.0.0.1:8080 --api-key $KEY',
  ],
};

type Flags = Parsed['flags'];

export async function run({ flags, positionals }: Parsed): Promise<number> {
  const action = positionals[0];
  if (action === undefined || !(ACTIONS as readonly string[]).includes(action)) {
    throw new UsageError(`which action? one of ${ACTIONS.join(', ')}${action === undefined ? '' : ` (got '${action}')`}`, 'specialist');
  }
  const actions: Record<Action, (flags: Flags, lib: Libs) => Promise<number>> = { manifest: makeManifest, publish, list, revoke };
  return actions[action as Action](flags, await loadLibs());
}

async function makeManifest(flags: Flags, lib: Libs): Promise<number> {
  const model = need(flags, 'model');
  const out = need(flags, 'out');
  const modelId = checked(lib, lib.SpecialistIdSchema, need(flags, 'id'), '--id');
  const domains = need(flags, 'domain').split(',').map((tag) => checked(lib, lib.DomainTagSchema, tag.trim(), '--domain'));
  const identity = publisherKey(flags, lib);
  const facts = await modelFactsOf(model);
  const body: UnsignedManifest = {
    kind: 'manifest',
    modelId,
    version: (flags.version as number | undefined) ?? 1,
    issuedAt: Date.now(),
    ...facts,
    domains,
    description: (flags.description as string | undefined) ?? '',
    publisherKey: identity.publicKey,
  };
  const manifest = checked(lib, lib.ManifestSchema, lib.signBody(identity, body), 'the manifest');
  writeFileSync(out, `${JSON.stringify(manifest, null, 2)}\n`);
  process.stdout.write(`wrote ${out}: ${manifest.modelId} v${manifest.version} (${manifest.architecture}, ${manifest.nLayers} layers, ${manifest.quant}), ${manifest.contentHash}, tokenizer ${manifest.tokenizerHash}\n`);
  return 0;
}

async function publish(flags: Flags, lib: Libs): Promise<number> {
  const path = need(flags, 'manifest');
  const manifest = readManifest(path, lib);
  const model = flags.model as string | undefined;
  if (model !== undefined) {
    const { contentHash } = await modelFactsOf(model);
    if (contentHash !== manifest.contentHash) {
      throw new Error(`${path} names ${manifest.contentHash}, but ${model} hashes to ${contentHash}: the manifest is for another file; make a new one with \`sharedllm specialist manifest\``);
    }
  }
  const result = await withEndpoint(flags, lib, (call) => call('POST', `${lib.API_PREFIX}/specialists`, manifest, lib.AcceptResultSchema));
  process.stdout.write(`${describeResult(result)}\n`);
  return 0;
}

async function list(flags: Flags, lib: Libs): Promise<number> {
  const { specialists } = await withEndpoint(flags, lib, (call) => call('GET', `${lib.API_PREFIX}/specialists`, undefined, lib.SpecialistListSchema));
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ specialists }, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(`${table(specialists)}\n`);
  return 0;
}

async function revoke(flags: Flags, lib: Libs): Promise<number> {
  const modelId = checked(lib, lib.SpecialistIdSchema, need(flags, 'id'), '--id');
  const identity = publisherKey(flags, lib);
  const result = await withEndpoint(flags, lib, async (call) => {
    const view = await call('GET', `${lib.API_PREFIX}/specialists/${encodeURIComponent(modelId)}`, undefined, lib.SpecialistViewSchema);
    if (view.publisherKey !== identity.publicKey) {
      throw new Error(`${modelId} is published by another key (${view.publisherKey.slice(0, 12)}…), not this publisher key (${identity.publicKey.slice(0, 12)}…): only its publisher can revoke it; pass --key with that key`);
    }
    const reason = flags.reason as string | undefined;
    const body: UnsignedRevocation = {
      kind: 'revocation',
      modelId,
      version: Math.max(view.version, (flags.version as number | undefined) ?? 0),
      issuedAt: Date.now(),
      ...(reason === undefined ? {} : { reason }),
      publisherKey: identity.publicKey,
    };
    return call('POST', `${lib.API_PREFIX}/specialists/revoke`, lib.signBody(identity, body), lib.AcceptResultSchema);
  });
  process.stdout.write(`${result.status === 'duplicate' ? `${modelId} was already revoked` : `revoked ${modelId} at version ${result.version}`}\n`);
  return 0;
}

/** Reads and checks a signed manifest file: size, JSON, schema, signature. */
function readManifest(path: string, lib: Libs): Manifest {
  if (!existsSync(path)) throw new Error(`manifest file not found: ${path}`);
  const limit = lib.lanConfig().maxManifestBytes;
  const size = statSync(path).size;
  if (size > limit) throw new Error(`${path} is ${size} bytes; a coordinator accepts manifests of at most ${limit} bytes (config.maxManifestBytes)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`${path} is not JSON (${(error as Error).message})`);
  }
  const parsed = lib.parseEntry(raw);
  if (!parsed.ok) throw new Error(`${path}: ${parsed.reason.replace(/\s*\n\s*/g, '; ')}`);
  if (parsed.entry.kind !== 'manifest') throw new Error(`${path} is a ${parsed.entry.kind}, not a manifest`);
  return parsed.entry;
}

function publisherKey(flags: Flags, lib: Libs): Identity {
  const keyFlag = flags.key as string | undefined;
  const path = keyFlag === undefined ? undefined : expandHome(keyFlag);
  const dir = path === undefined ? expandHome(flags['data-dir'] as string) : dirname(path);
  const file = path === undefined ? PUBLISHER_KEY_FILE : basename(path);
  const created = !existsSync(join(dir, file));
  const identity = lib.loadOrCreateIdentity(dir, file);
  if (created) process.stderr.write(`created publisher key ${dir}/${file} (keep it: it is the only key that can update or revoke what you publish)\n`);
  return identity;
}

/** One request to the directory's HTTP routes (the coordinator's and a primary's share their paths). */
type DirectoryCall = <T>(method: 'GET' | 'POST', path: string, body: unknown, schema: ZodType<T>) => Promise<T>;

/** The coordinator (--coordinator-url) or a primary's API (--node-url), exactly one of them. */
async function withEndpoint<T>(flags: Flags, lib: Libs, use: (call: DirectoryCall) => Promise<T>): Promise<T> {
  const nodeUrl = flags['node-url'] as string | undefined;
  if (nodeUrl !== undefined && flags['coordinator-url'] !== undefined) throw new UsageError('give --coordinator-url or --node-url, not both', 'specialist');
  if (nodeUrl === undefined) return withClient(flags, lib, (client) => use((method, path, body, schema) => client.call(method, path, body, schema)));
  const apiKey = (flags['api-key'] as string | undefined) ?? process.env.SHAREDLLM_API_KEY;
  return use(async (method, path, body, schema) => {
    const url = new URL(path, nodeUrl);
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      throw new Error(`cannot reach the node at ${nodeUrl} (${((error as Error).cause as Error | undefined)?.message ?? (error as Error).message}): is it running, and is this its API address?`);
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new Error(`${method} ${url.href}: HTTP ${response.status}, not JSON: is this a SharedLLM primary's API?`);
    }
    if (!response.ok) {
      const message = lib.z.object({ error: lib.z.object({ message: lib.z.string() }) }).safeParse(json);
      throw new Error(`the node refused (HTTP ${response.status}): ${message.success ? message.data.error.message : text.slice(0, 500)}${response.status === 401 ? ' (pass --api-key)' : ''}`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new Error(`${method} ${url.href}: unexpected answer: ${lib.z.prettifyError(parsed.error)}`);
    return parsed.data;
  });
}

async function withClient<T>(flags: Flags, lib: Libs, use: (client: CoordinatorClient) => Promise<T>): Promise<T> {
  const url = need(flags, 'coordinator-url');
  const joinToken = (flags['join-token'] as string | undefined) ?? process.env.SHAREDLLM_JOIN_TOKEN;
  const caFile = flags.ca as string | undefined;
  const client = new lib.CoordinatorClient({ url, ...(joinToken === undefined ? {} : { joinToken }), ...(caFile === undefined ? {} : { caFile }) });
  try {
    return await use(client);
  } catch (error) {
    if (error instanceof lib.CoordinatorError) throw new Error(`the coordinator refused (${error.code}): ${error.message.replace(/\s*\n\s*/g, '; ')}`);
    throw error;
  } finally {
    client.close();
  }
}

function describeResult(result: AcceptResult): string {
  if (result.status === 'duplicate') return `${result.key} v${result.version} was already published`;
  return `published ${result.key} v${result.version}${result.replaced === undefined ? '' : ` (replaced v${result.replaced})`}`;
}

function table(specialists: readonly SpecialistView[]): string {
  if (specialists.length === 0) return 'no specialists';
  const header = ['MODEL ID', 'VERSION', 'STATUS', 'DOMAINS', 'QUANT', 'LAYERS', 'SERVED BY', 'SOURCE', 'DESCRIPTION'];
  const rows = specialists.map((view) => [
    view.modelId,
    String(view.version),
    view.status,
    view.manifest?.domains.join(',') ?? '-',
    view.manifest?.quant ?? '-',
    view.manifest === undefined ? '-' : String(view.manifest.nLayers),
    String(view.servedBy.length),
    view.source,
    view.manifest?.description ?? view.revocation?.reason ?? '',
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  return [header, ...rows].map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}

function need(flags: Flags, name: string): string {
  const value = flags[name];
  if (typeof value !== 'string' || value.length === 0) throw new UsageError(`missing --${name} (${spec.flags[name]?.help ?? ''})`, 'specialist');
  return value;
}

function checked<T>(lib: Libs, schema: ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new UsageError(`${what} is not valid: ${lib.z.prettifyError(result.error).replace(/\s*\n\s*/g, '; ')}`, 'specialist');
  return result.data;
}

function expandHome(path: string): string {
  return path.startsWith('~/') ? join(homedir(), path.slice(2)) : path;
}
