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
import type { StackedGroup } from '../model/mixture/stacked.ts';
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
  /**
   * The node's own specialists now: id, the Batcher over its model, its tokenizer hash, and its index in
   * `stack` when it is also loaded there.
   */
  local: () => readonly { id: string; batcher: Batcher; tokenizerHash: string; stackIndex?: number }[];
  /** The specialists stacked in one model (--mixture-stack): the node's own mixtures step them in one graph. */
  stack?: StackedGroup;
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
    // A remote specialist with the id of a local one is left out: the local one answers faster. Local ones
    // in the stack are its members (lending, above, keeps their own Batchers: it steps one at a time).
    specialists: () => {
      const stack = o.stack;
      const stackIndex = new Map(stack ? o.local().flatMap((l) => (l.stackIndex === undefined ? [] : [[l.id, l.stackIndex] as const])) : []);
      const mine = local().map((s) => {
        const at = stackIndex.get(s.id);
        return stack && at !== undefined ? stack.member(at, s.id) : s;
      });
      return [...mine, ...(o.remote?.() ?? []).filter((r) => !mine.some((m) => m.id === r.id))];
    },
    k: o.k,
    ...(o.mode === undefined ? {} : { mode: o.mode }),
    store,
    log: (message) => o.logger.warn('mixture', { message }),
  });
  return { source, tokenizerHash: baseHash, local, routes: attributionRoutes(store), deleteUser: (userId: string) => store.deleteOwner(userOwner(userId)), close: () => store.close() };
}

/** The node's specialists stacked in one model for its mixtures, and each one's index in it. */
export interface NodeStack {
  group: StackedGroup;
  indexOf(path: string): number | undefined;
  dispose(): void;
}

/**
 * Stacks the node's specialists that share the base tokenizer (at least 2) in one model for the node's own
 * mixtures (one graph a token for all of them; memory: their weights once more). Undefined, with a warning
 * saying why, when they cannot be stacked: the mixture then steps them apart, as it would with --mixture-stack off.
 */
export async function stackNodeSpecialists(files: readonly { path: string; tokenizerHash: string; nCtx: number }[], o: { gpu: 'auto' | 'off'; threads?: number; logger: Logger }): Promise<NodeStack | undefined> {
  if (files.length < 2) return undefined;
  const [{ StackedModel, StackError }, { StackedGroup }, { OutOfMemoryError }] = await Promise.all([import('../model/stacked-model.ts'), import('../model/mixture/stacked.ts'), import('../model/errors.ts')]);
  try {
    const model = await StackedModel.load(files.map((f) => f.path), { gpu: o.gpu, ...(o.threads === undefined ? {} : { threads: o.threads }), nCtx: Math.min(...files.map((f) => f.nCtx)) });
    o.logger.info('mixture_stacked', { specialists: files.length, sharedTrunkLayers: model.shared.embeddings ? model.shared.layers : 0 });
    const group = new StackedGroup(model, getGgml(), files[0]!.tokenizerHash);
    return { group, indexOf: (path) => { const i = files.findIndex((f) => f.path === path); return i < 0 ? undefined : i; }, dispose: () => model.dispose() };
  } catch (e) {
    if (!(e instanceof StackError || e instanceof OutOfMemoryError)) throw e;
    o.logger.warn('mixture specialists not stacked', { reason: e.message, hint: 'the mixture steps them one model at a time' });
    return undefined;
  }
}
