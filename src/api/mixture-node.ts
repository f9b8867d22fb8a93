/**
 * The mixture on a primary node: its specialists (loaded with --specialist, and remote ones when the node
 * drives some) as mixture specialists, the attribution store in the node's data dir, and the routes.
 * `sharedllm node` builds this once and hands `source` and `routes` to the API server.
 */
import { join } from 'node:path';
import type { Router } from '../http/index.ts';
import { getGgml } from '../ggml/runtime.ts';
import type { Batcher } from '../model/batcher.ts';
import { openModelFile } from '../model/load.ts';
import { LocalSpecialist, type MixtureMode, type Specialist } from '../model/mixture/index.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { tokenizerHash } from '../federation/directory/model-facts.ts';
import type { Logger } from '../util/log.ts';
import { attributionRoutes, userOwner } from './attributions.ts';
import { ATTRIBUTION_STORE_CONFIG, SqliteAttributionStore } from './attributions-store.ts';
import { mixtureSource } from './mixture.ts';
import type { ModelSource } from './models.ts';

export interface NodeMixtureOptions {
  /** The base model's file (its tokenizer decides which specialists `mixture` may combine). */
  baseModel: string;
  tokenizer: Tokenizer;
  dataDir: string;
  /** The node's own specialists now: id, the Batcher over its model, its tokenizer hash. */
  local: () => readonly { id: string; batcher: Batcher; tokenizerHash: string }[];
  /** Specialists served by other primaries (src/federation/mixture/remote.ts). */
  remote?: () => readonly Specialist[];
  k: number;
  mode?: MixtureMode;
  retentionSeconds?: number;
  logger: Logger;
}

export interface NodeMixture {
  source: ModelSource;
  /** The base model's tokenizer hash: the specialists `mixture` may combine (local or lent) share it. */
  tokenizerHash: string;
  /** The node's own specialists, as the mixture drives them (and lends them: federation/mixture/link.ts). */
  local: () => Specialist[];
  routes: (router: Router) => void;
  /** Deletes a user's stored trails (with the user: DELETE /v1/users/me); returns how many. */
  deleteUser(userId: string): number;
  close(): void;
}

export function nodeMixture(o: NodeMixtureOptions): NodeMixture {
  const file = openModelFile(o.baseModel);
  let baseHash: string;
  try {
    baseHash = tokenizerHash(file);
  } finally {
    file.dispose();
  }
  const ggml = getGgml();
  const store = SqliteAttributionStore.open(join(o.dataDir, ATTRIBUTION_STORE_CONFIG.file), o.retentionSeconds ?? ATTRIBUTION_STORE_CONFIG.retentionSeconds);
  // One LocalSpecialist per Batcher (a specialist listed under two ids keeps the first).
  const wrapped = new Map<Batcher, LocalSpecialist>();
  const local = (): Specialist[] => {
    const out: Specialist[] = [];
    for (const s of o.local()) {
      let w = wrapped.get(s.batcher);
      if (w === undefined || w.id !== s.id) {
        if (w !== undefined && out.includes(w)) continue;
        w = new LocalSpecialist(s.id, s.batcher, ggml, s.tokenizerHash);
        wrapped.set(s.batcher, w);
      }
      if (!out.includes(w)) out.push(w);
    }
    return out;
  };
  const source = mixtureSource({
    tokenizer: o.tokenizer,
    tokenizerHash: baseHash,
    ggml,
    // A remote specialist with the id of a local one is left out: the local one answers faster.
    specialists: () => {
      const mine = local();
      return [...mine, ...(o.remote?.() ?? []).filter((r) => !mine.some((m) => m.id === r.id))];
    },
    k: o.k,
    ...(o.mode === undefined ? {} : { mode: o.mode }),
    store,
    log: (message) => o.logger.warn('mixture', { message }),
  });
  return { source, tokenizerHash: baseHash, local, routes: attributionRoutes(store), deleteUser: (userId: string) => store.deleteOwner(userOwner(userId)), close: () => store.close() };
}
