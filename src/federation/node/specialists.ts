// Specialists served by a primary beside its base model (`sharedllm node --role primary --specialist F ...`).
// Each is loaded whole on the primary, with its own Batcher and Generator: specialists are small domain models,
// and a pipeline across workers stays the base model's.
//
// The id a specialist is served under comes from the directory: the model id of an active manifest whose
// content hash is the file's, else the file name without `.gguf`. It is looked up on every listing, so a
// manifest published (or gossiped here) after the node started renames the model at once; the file name stays
// an alias. For each held manifest the node signs a serving record (RFC-0006 2.3: it names this node and the
// file) and stores it in its replica, from where gossip carries it; on shutdown it stores a withdrawal. A
// primary that lends its specialists to other primaries' mixtures (`--mixture-listen`) puts that address in
// its records (`mixtureAddr`, set with lendAt()), and re-signs them when it changes.
import { basename } from 'node:path';
import { Batcher, localForward } from '../../model/batcher.ts';
import { Generator } from '../../model/generator.ts';
import { readHParams } from '../../model/hparams.ts';
import { loadModelPart, openModelFile } from '../../model/load.ts';
import type { ModelPart } from '../../model/model-part.ts';
import { Tokenizer } from '../../model/tokenizer.ts';
import { ModelError } from '../../model/errors.ts';
import type { Logger } from '../../util/log.ts';
import type { Directory } from '../directory/directory.ts';
import { servingKey } from '../directory/entry.ts';
import { tokenizerHash } from '../directory/model-facts.ts';
import { signBody } from '../identity.ts';
import type { Identity } from '../identity.ts';
import type { ServingRecord, UnsignedServingRecord } from '../protocol-directory.ts';
import { hashFile } from './model-hash.ts';

export interface LocalSpecialist {
  path: string;
  /** The file name without `.gguf`: the id when no manifest names the file. */
  stem: string;
  /** 'sha256:<hex>' of the whole file (a manifest's contentHash). */
  contentHash: string;
  tokenizerHash: string;
  /** Same tokenizer as the base model (same token ids): the mixture can combine the two. */
  sharesBaseTokenizer: boolean;
  generator: Generator;
  tokenizer: Tokenizer;
  nCtx: number;
  nLayer: number;
}

/** A specialist under one id: a manifest's model id (`manifest: true`) or its file stem. */
export interface ServedSpecialist {
  id: string;
  specialist: LocalSpecialist;
  manifest: boolean;
}

export interface SpecialistLoadOptions {
  /** The base model: its tokenizer hash is compared with each specialist's. */
  base: string;
  cacheDir: string;
  gpu?: 'auto' | 'off';
  threads?: number;
  /** Context per sequence (default: the specialist's training context, at most 4096). */
  nCtx?: number;
  nSeqMax: number;
  logger: Logger;
  onProgress?: (what: string, done: number, total: number) => void;
}

/** The file name without `.gguf`, as the API names a node's model. */
export function fileStem(path: string): string {
  return basename(path).replace(/\.gguf$/i, '');
}

/** The tokenizer hash of a GGUF file (RFC-0006 2.4). */
function tokenizerHashOf(path: string): string {
  const file = openModelFile(path);
  try {
    return tokenizerHash(file);
  } finally {
    file.dispose();
  }
}

export class SpecialistSet {
  /** Where this node lends its specialists to mixtures ('host:port'), carried by its serving records. */
  private mixtureAddr: string | undefined;

  private constructor(
    readonly all: readonly LocalSpecialist[],
    private readonly parts: readonly ModelPart[],
  ) {}

  /** Loads each file whole (flags were checked by the CLI: files exist, no file twice). */
  static async load(paths: readonly string[], o: SpecialistLoadOptions): Promise<SpecialistSet> {
    const baseTokenizer = paths.length === 0 ? '' : tokenizerHashOf(o.base);
    const loaded: LocalSpecialist[] = [];
    const parts: ModelPart[] = [];
    const set = new SpecialistSet(loaded, parts);
    try {
      for (const path of paths) {
        const stem = fileStem(path);
        const contentHash = `sha256:${hashFile(path, o.cacheDir, (d, t) => o.onProgress?.(`hashing ${stem}`, d, t))}`;
        const twin = loaded.find((s) => s.contentHash === contentHash);
        if (twin !== undefined) throw new SpecialistError('the same specialist twice', 'files with different contents', `${path} and ${twin.path} are both ${contentHash}`, 'pass each specialist once');
        const file = openModelFile(path);
        const h = readHParams(file.metadata, path);
        const hash = tokenizerHash(file);
        file.dispose();
        const nCtx = Math.min(o.nCtx ?? 4096, h.nCtxTrain > 0 ? h.nCtxTrain : 4096);
        const { part } = await loadModelPart(path, {
          gpu: o.gpu ?? 'auto', ...(o.threads ? { threads: o.threads } : {}), nCtx, nSeqMax: o.nSeqMax,
          onProgress: (d, t) => o.onProgress?.(`loading ${stem}`, d, t),
        });
        parts.push(part);
        const tokenizer = await Tokenizer.load(path);
        const specialist: LocalSpecialist = {
          path, stem, contentHash, tokenizerHash: hash, sharesBaseTokenizer: hash === baseTokenizer,
          generator: new Generator(new Batcher(localForward(part), 512, 1), tokenizer), tokenizer, nCtx, nLayer: h.nLayer,
        };
        loaded.push(specialist);
        if (!specialist.sharesBaseTokenizer) {
          o.logger.warn('specialist tokenizer differs from the base', { specialist: stem, hint: 'it is served on its own; a mixture cannot combine it with the base model token by token' });
        }
        o.logger.info('specialist_loaded', { specialist: stem, contentHash, layers: h.nLayer, nCtx, sharesBaseTokenizer: specialist.sharesBaseTokenizer });
      }
    } catch (error) {
      await set.dispose();
      throw error;
    }
    return set;
  }

  /** The ids each specialist is served under now: its manifests' model ids, else its file stem. */
  served(directory: Directory): ServedSpecialist[] {
    const manifests = directory.manifests();
    return this.all.flatMap((specialist): ServedSpecialist[] => {
      const ids = manifests.filter((m) => m.contentHash === specialist.contentHash).map((m) => m.modelId);
      return ids.length > 0 ? ids.map((id) => ({ id, specialist, manifest: true })) : [{ id: specialist.stem, specialist, manifest: false }];
    });
  }

  /** The specialist a request names: a served id or a file stem (the alias that always works). */
  resolve(directory: Directory, name: string): LocalSpecialist | undefined {
    return this.served(directory).find((s) => s.id === name)?.specialist ?? this.all.find((s) => s.stem === name);
  }

  /** Sets (or clears) the address the serving records advertise for lending; the next announce re-signs them. */
  lendAt(addr: string | undefined): void {
    this.mixtureAddr = addr;
  }

  /**
   * Signs and stores a serving record for every held manifest of a local file that lacks ours (RFC-0006
   * 2.3); gossip spreads them. Returns how many it stored.
   */
  announce(directory: Directory, identity: Identity, logger: Logger): number {
    let stored = 0;
    for (const { id, specialist, manifest } of this.served(directory)) {
      if (!manifest) continue;
      const held = directory.replica.get(servingKey(id, identity.id))?.entry;
      if (held?.kind === 'serving' && held.serving && held.contentHash === specialist.contentHash && held.mixtureAddr === this.mixtureAddr) continue;
      const outcome = directory.accept(servingRecord(identity, id, specialist.contentHash, true, held?.version, this.mixtureAddr), 'local');
      if (outcome.status === 'stored') stored += 1;
      else if (outcome.status === 'refused') logger.warn('could not announce a specialist', { specialist: id, code: outcome.code, reason: outcome.reason });
    }
    if (stored > 0) logger.info('specialist_serving_announced', { records: stored });
    return stored;
  }

  /** Withdrawals of this node's serving records (stored in the replica; returned for a last push). */
  withdraw(directory: Directory, identity: Identity): ServingRecord[] {
    const out: ServingRecord[] = [];
    for (const { id, specialist, manifest } of this.served(directory)) {
      if (!manifest) continue;
      const held = directory.replica.get(servingKey(id, identity.id))?.entry;
      if (held?.kind !== 'serving' || !held.serving) continue;
      const record = servingRecord(identity, id, specialist.contentHash, false, held.version);
      if (directory.accept(record, 'local').status === 'stored') out.push(record);
    }
    return out;
  }

  async dispose(): Promise<void> {
    for (const specialist of this.all) await specialist.tokenizer.dispose();
    for (const part of this.parts) part.dispose();
  }
}

/** A serving record signed by this node; its version is the clock, above any it signed before. */
function servingRecord(identity: Identity, modelId: string, contentHash: string, serving: boolean, previous = 0, mixtureAddr?: string): ServingRecord {
  const now = Date.now();
  const body: UnsignedServingRecord = {
    kind: 'serving', modelId, contentHash, nodeId: identity.id, nodeKey: identity.publicKey, serving,
    ...(serving && mixtureAddr !== undefined ? { mixtureAddr } : {}),
    version: Math.max(now, previous + 1), issuedAt: now,
  };
  return signBody(identity, body);
}

export class SpecialistError extends ModelError {}
