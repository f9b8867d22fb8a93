/**
 * Users' adapters as models: `<base-id>@<adapter-name>` for each ready adapter of the caller, served with the
 * base's generator plus the adapter's per-request options (its norm gains: the batched step applies each
 * sequence's own gains, so users on different adapters share one step). A name that is not the caller's
 * own is unknown here, exactly like a name that does not exist (the catalog's 404).
 *
 * The gains are read from the adapter file once and cached in memory by adapter id; deletion evicts them
 * (evict). Each request served with an adapter adds an `adapter_used` event to its owner's audit log: the
 * time and the token counts, never the text.
 */
import type { IncomingMessage } from 'node:http';
import type { GenerateOptions, GeneratedPiece, GenerationResult, TextGenerator } from '../../model/generator.ts';
import { ApiError } from '../errors.ts';
import type { ModelSource, ServedModel } from '../models.ts';
import { callerOf } from '../users.ts';
import { AdapterBaseMismatch, type AdapterEngine, type AdapterOptions } from './engine.ts';
import type { AdapterFiles } from './files.ts';
import type { AdapterRecord, PrimaryStore } from './store.ts';

export class AdapterModels implements ModelSource {
  private readonly cache = new Map<string, AdapterOptions>();

  constructor(
    private readonly base: ServedModel,
    private readonly store: PrimaryStore,
    private readonly files: AdapterFiles,
    private readonly engine: AdapterEngine,
  ) {}

  /** The model id of an adapter. */
  modelId(name: string): string {
    return `${this.base.id}@${name}`;
  }

  list(req: IncomingMessage): readonly ServedModel[] {
    const caller = callerOf(req);
    if (caller.kind !== 'user') return [];
    return this.store
      .adaptersOf(caller.userId)
      .filter((a) => a.state === 'ready' && a.kind === 'norm' && a.baseHash === this.engine.baseHash)
      .map((a) => this.served(a, undefined));
  }

  resolve(name: string, req: IncomingMessage): ServedModel | undefined {
    const caller = callerOf(req);
    const prefix = `${this.base.id}@`;
    if (caller.kind !== 'user' || !name.startsWith(prefix)) return undefined;
    const adapter = this.store.adapterByName(caller.userId, name.slice(prefix.length));
    if (adapter === undefined) return undefined;
    if (adapter.state !== 'ready') {
      throw new ApiError(409, `the adapter '${adapter.name}' is ${adapter.state}${adapter.error === null ? '' : ` (${adapter.error})`}`, {
        code: 'adapter_not_ready',
        param: 'model',
        hint: adapter.state === 'failed' ? 'delete it and train it again' : `wait until GET /v1/adapters/${adapter.id} says ready`,
      });
    }
    return this.served(adapter, this.options(adapter));
  }

  /** Forget an adapter's cached gains (it was deleted). */
  evict(id: string): void {
    this.cache.delete(id);
  }

  private options(adapter: AdapterRecord): AdapterOptions {
    // Adapters deleted behind this process's back (`sharedllm users remove` on a running node) leave the cache.
    for (const id of this.cache.keys()) if (this.store.adapter(id) === undefined) this.cache.delete(id);
    const cached = this.cache.get(adapter.id);
    if (cached !== undefined) return cached;
    let options: AdapterOptions | undefined;
    try {
      options = this.engine.load(this.files.adapterPath(adapter.id));
    } catch (error) {
      throw baseMismatchError(error, 'model');
    }
    if (options === undefined) {
      throw new ApiError(400, `the adapter '${adapter.name}' is a ${adapter.kind} adapter, which this node does not serve per request`, {
        code: 'adapter_not_servable',
        param: 'model',
        hint: `export it (GET /v1/adapters/${adapter.id}/export) and load it in llama.cpp, or train a norm adapter`,
      });
    }
    this.cache.set(adapter.id, options);
    return options;
  }

  private served(adapter: AdapterRecord, options: AdapterOptions | undefined): ServedModel {
    const generator: TextGenerator = {
      stream: (prompt, opts) => this.stream(adapter, options ?? {}, prompt, opts),
    };
    return { id: this.modelId(adapter.name), generator, tokenizer: this.base.tokenizer, nCtx: this.base.nCtx, ownedBy: 'you' };
  }

  private async *stream(adapter: AdapterRecord, extra: AdapterOptions, prompt: readonly number[], opts: GenerateOptions = {}): AsyncGenerator<GeneratedPiece, GenerationResult> {
    const inner = this.base.generator.stream(prompt, { ...opts, ...extra });
    let completionTokens = 0;
    let finish = 'aborted';
    try {
      for (;;) {
        const next = await inner.next();
        if (next.done === true) {
          completionTokens = next.value.tokens.length;
          finish = next.value.finishReason;
          return next.value;
        }
        completionTokens++;
        yield next.value;
      }
    } catch (error) {
      finish = 'error';
      throw error;
    } finally {
      // A stream its consumer left early: close the base's generation (it frees the sequence).
      if (finish === 'aborted' || finish === 'error') await inner.return(undefined as never);
      this.store.audit(adapter.userId, 'adapter_used', adapter.id, { name: adapter.name, prompt_tokens: prompt.length, completion_tokens: completionTokens, finish_reason: finish });
    }
  }
}

/** An AdapterBaseMismatch as the API's 409 (naming both hashes); any other error as it is. */
export function baseMismatchError(error: unknown, param: string): unknown {
  if (!(error instanceof AdapterBaseMismatch)) return error;
  return new ApiError(409, error.message, { code: 'adapter_base_mismatch', param, hint: `the adapter's base is ${error.actual}, this node's is ${error.expected}: train it again on this base` });
}
