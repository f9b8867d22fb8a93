/**
 * Which models a primary's API serves, and which of them a request may use.
 *
 * The node's own model is always there. Other features add models through a ModelSource: specialists
 * loaded beside the base (`--specialist`), a user's adapters (`<base>@<adapter>`, visible to their owner
 * only), the mixture (`mixture`, `mixture:<id>,<id>`). A source sees the request, so it can answer per
 * caller; a model a caller may not see is reported exactly like one that does not exist (404, never 403).
 */
import type { IncomingMessage } from 'node:http';
import type { TextGenerator } from '../model/generator.ts';
import type { MixtureTrail } from '../model/mixture/trail.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { ApiError } from './errors.ts';

export interface ServedModel {
  /** The id in `/v1/models` and in requests' `model`. */
  readonly id: string;
  readonly generator: TextGenerator;
  readonly tokenizer: Tokenizer;
  /** Context length per sequence, in tokens (prompt and reply together). */
  readonly nCtx: number;
  /** OpenAI's `owned_by` (default 'sharedllm'). */
  readonly ownedBy?: string;
  /** A mixture's: keeps a finished completion's trails, one per choice (src/api/attributions.ts). */
  readonly recordTrails?: (completionId: string, trails: readonly MixtureTrail[]) => void;
}

/** Models added to the node's own. */
export interface ModelSource {
  /** The models this request's caller may see (GET /v1/models). */
  list(req: IncomingMessage): readonly ServedModel[];
  /**
   * The model named, if this source serves it to this caller; undefined when it does not know the name.
   * May throw an ApiError for a name it knows but cannot serve as asked (e.g. a mixture of mismatched
   * tokenizers: 400).
   */
  resolve(name: string, req: IncomingMessage): ServedModel | undefined;
}

/** The node's model first, then each source's, in the order added. */
export class ModelCatalog {
  private readonly sources: ModelSource[] = [];

  constructor(readonly base: ServedModel) {}

  add(source: ModelSource): void {
    this.sources.push(source);
  }

  list(req: IncomingMessage): ServedModel[] {
    const seen = new Set<string>([this.base.id]);
    const out: ServedModel[] = [this.base];
    for (const source of this.sources) {
      for (const model of source.list(req)) {
        if (seen.has(model.id)) continue;
        seen.add(model.id);
        out.push(model);
      }
    }
    return out;
  }

  /** The model a request names, or 404 model_not_found listing what this caller may use. */
  resolve(name: string, req: IncomingMessage): ServedModel {
    if (name === this.base.id) return this.base;
    for (const source of this.sources) {
      const model = source.resolve(name, req);
      if (model !== undefined) return model;
    }
    const ids = this.list(req).map((m) => `'${m.id}'`);
    throw new ApiError(404, `the model '${name}' does not exist on this server`, {
      code: 'model_not_found',
      param: 'model',
      hint: `this node serves ${ids.join(', ')} (GET /v1/models lists them)`,
    });
  }
}

/** A fixed list of models, the same for every caller (e.g. specialists loaded at start). */
export function staticModels(models: readonly ServedModel[]): ModelSource {
  const byId = new Map(models.map((m) => [m.id, m]));
  return { list: () => [...byId.values()], resolve: (name) => byId.get(name) };
}
