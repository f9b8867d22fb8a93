/**
 * The mixture as a model of the catalog (models.ts):
 *
 *   `mixture`              every specialist this primary can drive that shares the base model's tokenizer;
 *                          the router keeps the top `k` (--mixture-k, default 3) for each prompt
 *   `mixture:<id>,<id>`    exactly these specialists (all of them mixed, none dropped by the router)
 *
 * An unknown specialist is a 404 naming it; specialists whose tokenizer differs from the base's (whose
 * tokenizer encodes the prompt) or from each other's are a 400 naming the mismatch. A finished
 * completion's trails go to the attribution store under the caller (attributions.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Ggml } from '../ggml/runtime.ts';
import { MixtureGenerator, type MixtureMode, type Specialist, TokenizerMismatchError } from '../model/mixture/index.ts';
import type { MixtureTrail } from '../model/mixture/trail.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { type OwnerOf, ownerFromBearer } from './attributions.ts';
import type { AttributionStore } from './attributions-store.ts';
import { ApiError, invalidRequest } from './errors.ts';
import type { ModelSource, ServedModel } from './models.ts';

export const MIXTURE_MODEL_ID = 'mixture';

export interface MixtureSourceOptions {
  /** The base model's tokenizer (it encodes the prompt) and its hash (model-facts.ts tokenizerHash). */
  tokenizer: Tokenizer;
  tokenizerHash: string;
  ggml: Ggml;
  /** The specialists this primary can drive now: its own, and remote ones found in the directory. */
  specialists: () => readonly Specialist[];
  /** Specialists `mixture` keeps per prompt. Default 3. */
  k?: number;
  mode?: MixtureMode;
  fixedShare?: number;
  /** Where trails are kept; without one they are not stored. */
  store?: AttributionStore;
  ownerOf?: OwnerOf;
  log?: (message: string) => void;
}

export function mixtureSource(o: MixtureSourceOptions): ModelSource {
  const compatible = (): Specialist[] => o.specialists().filter((s) => s.tokenizerHash === o.tokenizerHash);

  function served(name: string, specialists: readonly Specialist[], k: number, req: IncomingMessage, minWeight?: number): ServedModel {
    let generator: MixtureGenerator;
    try {
      generator = new MixtureGenerator(specialists, o.tokenizer, o.ggml, {
        k,
        ...(minWeight === undefined ? {} : { minWeight }),
        ...(o.mode === undefined ? {} : { mode: o.mode }),
        ...(o.fixedShare === undefined ? {} : { fixedShare: o.fixedShare }),
        ...(o.log === undefined ? {} : { log: o.log }),
      });
    } catch (e) {
      if (e instanceof TokenizerMismatchError) throw invalidRequest(e.message, 'model', undefined, 'tokenizer_mismatch');
      throw e;
    }
    const owner = (o.ownerOf ?? ownerFromBearer)(req);
    const store = o.store;
    return {
      id: name,
      generator,
      tokenizer: o.tokenizer,
      nCtx: generator.nCtx,
      ...(store === undefined
        ? {}
        : {
            recordTrails: (completionId: string, trails: readonly MixtureTrail[]) => {
              try {
                store.put({ id: completionId, owner, model: name, created: Math.floor(Date.now() / 1000), trails: [...trails] });
              } catch (e) {
                o.log?.(`mixture: could not store the trail of ${completionId}: ${e instanceof Error ? e.message : String(e)}`);
              }
            },
          }),
    };
  }

  return {
    list(req) {
      return compatible().length > 0 ? [served(MIXTURE_MODEL_ID, compatible(), o.k ?? 3, req)] : [];
    },
    resolve(name, req) {
      if (name === MIXTURE_MODEL_ID) {
        const all = compatible();
        return all.length > 0 ? served(name, all, o.k ?? 3, req) : undefined;
      }
      if (!name.startsWith(`${MIXTURE_MODEL_ID}:`)) return undefined;
      const ids = [...new Set(name.slice(MIXTURE_MODEL_ID.length + 1).split(',').map((s) => s.trim()).filter((s) => s !== ''))];
      if (ids.length === 0) throw invalidRequest(`'${name}' names no specialist`, 'model', "write mixture:<id>,<id> with the ids of GET /v1/models, or plain 'mixture'");
      const known = o.specialists();
      const chosen = ids.map((id) => {
        const s = known.find((x) => x.id === id);
        if (s === undefined) {
          throw new ApiError(404, `the specialist '${id}' named in '${name}' does not exist on this server`, {
            code: 'model_not_found',
            param: 'model',
            hint: `specialists here: ${known.map((x) => `'${x.id}'`).join(', ') || 'none'}`,
          });
        }
        return s;
      });
      const odd = chosen.find((s) => s.tokenizerHash !== o.tokenizerHash);
      if (odd !== undefined) {
        throw invalidRequest(`specialist '${odd.id}' has another tokenizer than this node's base model`, 'model', `base tokenizer ${o.tokenizerHash}, '${odd.id}' has ${odd.tokenizerHash}: mix specialists of one base`, 'tokenizer_mismatch');
      }
      return served(name, chosen, chosen.length, req, 0); // named: every one stays, however unlikely
    },
  };
}
