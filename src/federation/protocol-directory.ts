/**
 * The RFC-0006 specialist directory's part of the control-plane contract (docs/rfcs/0006-specialist-manifest.md;
 * merge rules in federation/directory): manifests, revocations, serving records, gossip digests and the
 * coordinator's /v1/specialists views. Split out of protocol.ts, whose PROTOCOL_VERSION and compatibility rules
 * cover these schemas too.
 */
import { z } from 'zod';
import { HostPortSchema, NodeIdSchema, PublicKeySchema, SignatureSchema } from './protocol.ts';

// ---------------------------------------------------------------------------------------------------
// RFC-0006 specialist directory (docs/rfcs/0006-specialist-manifest.md; rules in federation/directory)
// POST /v1/specialists, GET /v1/specialists[/:modelId], POST /v1/specialists/revoke,
// POST /v1/specialists/serving, POST /v1/directory/exchange; /v1/manifests is kept as an alias.
//
// Every directory entry is a body signed by one key over exactly its schema's fields (signingPayload of the
// parsed entry): a manifest and its revocation by the publisher, a serving record by the node that serves.
// Each carries a `kind` literal inside the signed bytes, so that no signed body can be replayed as another
// kind. Version 3 replaced the placeholder manifest of version 2 (keyed by content hash, no version).

/** Stable name of a specialist, e.g. 'smollm2-135m-code'; the directory key of its manifest. */
export const SpecialistIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/, 'model id: [A-Za-z0-9._:/-], 1-128 chars');
/** Strict sha256 reference: 'sha256:' and 64 lowercase hex characters. */
export const Sha256RefSchema = z.string().regex(/^sha256:[0-9a-f]{64}$/, "hash must be 'sha256:' and 64 lowercase hex characters");
/** Domain tag: lowercase, e.g. 'code', 'es', 'kernel-docs'. */
export const DomainTagSchema = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,31}$/, 'domain tag: [a-z0-9._-], 1-32 chars, lowercase');
/** Monotonic version chosen by the signer; a higher one replaces a lower one. */
export const EntryVersionSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const EpochMs = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
/** One line of printable text (no control characters, so a listing cannot be forged by a newline). */
const OneLine = (max: number) => z.string().max(max).regex(/^[^\p{Cc}]*$/u, 'one line without control characters');

export const MANIFEST_LIMITS = {
  /** Domain tags per manifest. */
  maxDomains: 16,
  /** Characters of the one-line description. */
  maxDescription: 200,
} as const;

export const ManifestSchema = z.object({
  kind: z.literal('manifest'),
  modelId: SpecialistIdSchema,
  /** Replaces any lower version of the same modelId from the same publisher. */
  version: EntryVersionSchema,
  /** Epoch ms when the publisher signed it (informative; ordering uses `version`). */
  issuedAt: EpochMs,
  /** general.architecture of the GGUF, e.g. 'llama'. */
  architecture: z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/),
  vocabSize: z.number().int().positive().max(16_777_216),
  hiddenDim: z.number().int().positive().max(1_048_576),
  nLayers: z.number().int().positive().max(65_536),
  /** Quantisation tag, e.g. 'f16', 'q8_0', 'q4_k': the type holding most of the file's tensor bytes. */
  quant: z.string().regex(/^[A-Za-z0-9_]{1,32}$/),
  /** Size of the GGUF file in bytes. */
  fileBytes: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  /** sha256 of the whole GGUF file. */
  contentHash: Sha256RefSchema,
  /** sha256 of the canonical encoding of the file's tokenizer.ggml.* metadata (equal: same vocabulary). */
  tokenizerHash: Sha256RefSchema,
  domains: z.array(DomainTagSchema).min(1).max(MANIFEST_LIMITS.maxDomains),
  description: OneLine(MANIFEST_LIMITS.maxDescription),
  publisherKey: PublicKeySchema,
  /** ed25519 by publisherKey over signingPayload(this schema's fields minus `signature`). */
  signature: SignatureSchema,
});
export type Manifest = z.infer<typeof ManifestSchema>;
export type UnsignedManifest = Omit<Manifest, 'signature'>;

/**
 * Removes a specialist everywhere: signed by the publisher that holds the model id. It stays in the
 * directory as a tombstone at `version`; a manifest of that id is accepted again only with a higher version.
 */
export const RevocationSchema = z.object({
  kind: z.literal('revocation'),
  modelId: SpecialistIdSchema,
  /** At least the revoked manifest's version. */
  version: EntryVersionSchema,
  issuedAt: EpochMs,
  reason: OneLine(MANIFEST_LIMITS.maxDescription).optional(),
  publisherKey: PublicKeySchema,
  signature: SignatureSchema,
});
export type Revocation = z.infer<typeof RevocationSchema>;
export type UnsignedRevocation = Omit<Revocation, 'signature'>;

/**
 * A node's statement that it serves a specialist (the publisher cannot sign for the nodes that serve its
 * model, so each node signs its own small record). nodeId must be fingerprint(nodeKey): the record is
 * self-certifying and needs no coordinator. A newer version from the node replaces the older; `serving:
 * false` withdraws it. `mixtureAddr` (optional, RFC-0006 2.3) is where the node lends its specialists to other
 * primaries' mixtures (its `--mixture-listen`); a record without it lends nothing.
 */
export const ServingRecordSchema = z.object({
  kind: z.literal('serving'),
  modelId: SpecialistIdSchema,
  /** The manifest's content hash: the node serves exactly this file. */
  contentHash: Sha256RefSchema,
  nodeId: NodeIdSchema,
  nodeKey: PublicKeySchema,
  serving: z.boolean(),
  /** The data-plane address ('host:port') where the node answers mixture_* for its specialists; signed. */
  mixtureAddr: HostPortSchema.optional(),
  version: EntryVersionSchema,
  issuedAt: EpochMs,
  signature: SignatureSchema,
});
export type ServingRecord = z.infer<typeof ServingRecordSchema>;
export type UnsignedServingRecord = Omit<ServingRecord, 'signature'>;

export const DirectoryEntrySchema = z.discriminatedUnion('kind', [ManifestSchema, RevocationSchema, ServingRecordSchema]);
export type DirectoryEntry = z.infer<typeof DirectoryEntrySchema>;
export const DIRECTORY_ENTRY_KINDS = ['manifest', 'revocation', 'serving'] as const;

/** One entry in an anti-entropy digest: enough to tell who holds the newer copy. */
export const DigestItemSchema = z.object({
  /** modelId for manifests and revocations, 'modelId@nodeId' for serving records. */
  key: z.string().min(1).max(200),
  kind: z.enum(DIRECTORY_ENTRY_KINDS),
  version: EntryVersionSchema,
  /** First 16 hex of sha256(canonicalJson(entry)): breaks ties between two entries of one version. */
  hash: z.string().regex(/^[0-9a-f]{16}$/),
});
export type DigestItem = z.infer<typeof DigestItemSchema>;

/** Bounds of one gossip message (the directory's own caps are lower; see directory/config.ts). */
export const GOSSIP_LIMITS = {
  maxDigestItems: 20_000,
  maxEntries: 512,
  /** Largest JSON body of one data-plane `directory_exchange` (a full digest is ~100 B an item; 512 entries of
   *  at most 16 KiB each). Above a frame header's 64 KiB, which is why the body travels as the payload. */
  maxPayloadBytes: 12 * 1024 * 1024,
} as const;

/**
 * Anti-entropy, transport-agnostic (HTTP POST /v1/directory/exchange today; a data-plane method later):
 * the caller sends its digest and/or pushes entries; the answer holds the entries the caller lacks or holds
 * older, and the keys the responder wants pushed. Entries travel as unknown and are validated one by one,
 * so one bad entry is refused alone.
 */
export const GossipRequestSchema = z.object({
  from: NodeIdSchema,
  digest: z.array(DigestItemSchema).max(GOSSIP_LIMITS.maxDigestItems).optional(),
  push: z.array(z.unknown()).max(GOSSIP_LIMITS.maxEntries).optional(),
});
export type GossipRequest = z.infer<typeof GossipRequestSchema>;

export const GossipResponseSchema = z.object({
  entries: z.array(z.unknown()).max(GOSSIP_LIMITS.maxEntries),
  want: z.array(z.string().min(1).max(200)).max(GOSSIP_LIMITS.maxEntries),
});
export type GossipResponse = z.infer<typeof GossipResponseSchema>;

/**
 * The data-plane method `directory_exchange` (protocol-dataplane.ts), served by every node: the frame's
 * header is this (empty) object and its payload the UTF-8 JSON of a GossipRequest; the answer's header is
 * this object again and its payload the JSON of a GossipResponse. The body is validated from the payload on
 * both sides (GossipRequestSchema, GossipResponseSchema). The caller's `from` is ignored: the responder
 * uses the node id proven in the connection's HELLO.
 */
export const DirectoryExchangeHeaderSchema = z.object({});

/** GET /v1/specialists: one node's view of a specialist. */
export const SpecialistViewSchema = z.object({
  modelId: SpecialistIdSchema,
  version: EntryVersionSchema,
  status: z.enum(['active', 'revoked']),
  publisherKey: PublicKeySchema,
  /** Present while active. */
  manifest: ManifestSchema.optional(),
  /** Present once revoked. */
  revocation: RevocationSchema.optional(),
  /** Nodes that currently serve it (serving records with serving: true). */
  servedBy: z.array(ServingRecordSchema),
  /** Where this node got the entry: 'local' (published here) or the id of the peer it came from. */
  source: z.string().max(200),
  /** Epoch ms when this node stored this version. */
  receivedAt: EpochMs,
});
export type SpecialistView = z.infer<typeof SpecialistViewSchema>;
export const SpecialistListSchema = z.object({ specialists: z.array(SpecialistViewSchema) });
export type SpecialistList = z.infer<typeof SpecialistListSchema>;

/** POST answers: what the directory did with the entry. */
export const AcceptResultSchema = z.object({
  status: z.enum(['stored', 'duplicate']),
  key: z.string(),
  version: EntryVersionSchema,
  /** The version it replaced, when it replaced one. */
  replaced: EntryVersionSchema.optional(),
});
export type AcceptResult = z.infer<typeof AcceptResultSchema>;

/** GET /v1/manifests (alias kept from version 2): the active manifests. */
export const ManifestListSchema = z.object({ manifests: z.array(ManifestSchema) });
export type ManifestList = z.infer<typeof ManifestListSchema>;
