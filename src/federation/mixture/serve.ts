// The serving side of protocol-mixture.ts: a primary lends its specialists to other primaries' mixtures.
// Sequences belong to the connection that opened them (another connection naming them gets "unknown
// sequence") and are closed when it closes. A mixture_step runs the steps of all its sequences at once, so
// the Batcher of each specialist merges them into one graph.
import type { Peer } from '../transport/rpc.ts';
import type { Specialist, SpecialistSequence } from '../../model/mixture/specialist.ts';
import type { Logger } from '../../util/log.ts';
import { concatTyped } from '../../util/typed-arrays.ts';
import type { Handlers } from '../dataplane.ts';
import { type DistributionHeader, MIXTURE_LIMITS } from '../protocol-mixture.ts';
import { encodeDistribution } from './distribution.ts';

export class MixtureServeError extends Error {
  constructor(readonly code: string, message: string, readonly hint: string) {
    super(message);
    this.name = 'MixtureServeError';
  }
}

interface Held {
  owner: Peer;
  specialist: Specialist;
  seq: SpecialistSequence;
}

export interface MixtureServiceOptions {
  /** The specialists lent: this primary's own (local) ones. */
  specialists: () => readonly Specialist[];
  logger: Logger;
  /** Largest vocabulary sent whole (default MIXTURE_LIMITS.fullVocabMax). */
  fullVocabMax?: number;
}

export class MixtureService {
  private readonly held = new Map<number, Held>();
  private nextSeq = 1;
  private readonly watched = new WeakSet<Peer>();

  constructor(private readonly o: MixtureServiceOptions) {}

  /** The data-plane handlers (for defineMethods). */
  methods(): Handlers {
    return {
      mixture_list: () => ({
        header: { specialists: this.o.specialists().map((s) => ({ id: s.id, tokenizerHash: s.tokenizerHash, nVocab: s.nVocab, nCtx: s.nCtx })) },
      }),
      mixture_open: async (req, ctx) => {
        const specialist = this.o.specialists().find((s) => s.id === req.modelId);
        if (specialist === undefined) throw new MixtureServeError('unknown_specialist', `no specialist '${req.modelId}' here`, 'ask mixture_list for the ids');
        if (ctx.payload.byteLength !== 4 * req.nTokens) throw new MixtureServeError('bad_request', `prompt payload of ${ctx.payload.byteLength} bytes for ${req.nTokens} tokens`, 'send the prompt as int32 little-endian');
        const aligned = ctx.payload.byteOffset % 4 === 0 ? ctx.payload : new Uint8Array(ctx.payload); // a copy (Buffer.slice would be a view)
        const prompt = Array.from(new Int32Array(aligned.buffer, aligned.byteOffset, req.nTokens));
        const bad = prompt.findIndex((t) => t < 0 || t >= specialist.nVocab);
        if (bad >= 0) throw new MixtureServeError('bad_request', `prompt token ${prompt[bad]} at ${bad} is outside the vocabulary (${specialist.nVocab})`, 'mix only specialists of one tokenizer');
        const seq = await specialist.start(prompt, ctx.signal);
        const id = this.nextSeq++;
        this.hold(id, { owner: ctx.peer, specialist, seq });
        const { header, bytes } = encodeDistribution(seq.logits, this.o.fullVocabMax);
        return { header: { seq: id, promptLogLikelihood: Math.min(0, seq.promptLogLikelihood), dist: header }, payload: bytes };
      },
      mixture_step: async (req, ctx) => {
        const rows = await Promise.all(req.steps.map(({ seq, token }) => {
          const h = this.owned(seq, ctx.peer);
          if (token >= h.specialist.nVocab) throw new MixtureServeError('bad_request', `token ${token} is outside the vocabulary (${h.specialist.nVocab})`, 'mix only specialists of one tokenizer');
          return h.seq.next(token);
        }));
        const dists: DistributionHeader[] = [];
        const parts: Uint8Array[] = [];
        for (const row of rows) {
          const { header, bytes } = encodeDistribution(row, this.o.fullVocabMax);
          dists.push(header);
          parts.push(bytes);
        }
        return { header: { dists }, payload: concatTyped(Uint8Array, parts) };
      },
      mixture_close: async (req, ctx) => {
        for (const seq of req.seqs) {
          const h = this.held.get(seq);
          if (h?.owner !== ctx.peer) continue; // someone else's, or gone already: nothing to do
          await this.release(seq);
        }
        return { header: { ok: true } };
      },
    };
  }

  /** Sequences open now (all connections). */
  get open(): number {
    return this.held.size;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.held.keys()].map((seq) => this.release(seq)));
  }

  private hold(id: number, h: Held): void {
    if (this.held.size >= MIXTURE_LIMITS.maxStepSeqs * 16) {
      void h.seq.close();
      throw new MixtureServeError('busy', `${this.held.size} mixture sequences open here`, 'retry later');
    }
    this.held.set(id, h);
    if (!this.watched.has(h.owner)) {
      this.watched.add(h.owner);
      h.owner.once('close', () => {
        for (const [seq, x] of this.held) if (x.owner === h.owner) void this.release(seq);
      });
    }
  }

  private owned(seq: number, peer: Peer): Held {
    const h = this.held.get(seq);
    if (h === undefined || h.owner !== peer) throw new MixtureServeError('unknown_sequence', `no mixture sequence ${seq} on this connection`, 'open it with mixture_open on this connection');
    return h;
  }

  private async release(seq: number): Promise<void> {
    const h = this.held.get(seq);
    if (h === undefined) return;
    this.held.delete(seq);
    try {
      await h.seq.close();
    } catch (e) {
      this.o.logger.warn('mixture_close_failed', { seq, error: e instanceof Error ? e.message : String(e) });
    }
  }
}
