// The calling side of protocol-mixture.ts: specialists served by another primary, driven step by step. Each
// remote primary is one connection; the steps of every sequence on it that are asked for in the same tick
// travel in one mixture_step (batched across sequences), and the mixture asks all its specialists at once,
// so remote specialists cost one round trip per step, overlapped. A distribution that breaks the contract
// (wrong length, NaN, ...) or a step that times out bans the node (Bans, like a bad worker): its
// specialists drop out of the mixtures using them and are not offered to new ones while banned.
import { call } from '../dataplane.ts';
import type { Bans } from '../node/bans.ts';
import { type Peer, TimeoutError } from '../transport/rpc.ts';
import type { Specialist, SpecialistSequence } from '../../model/mixture/specialist.ts';
import type { Logger } from '../../util/log.ts';
import { MIXTURE_LIMITS, type MixtureSpecialistInfo, distributionBytes } from '../protocol-mixture.ts';
import { MalformedDistributionError, decodeDistribution } from './distribution.ts';

export const REMOTE_MIXTURE_CONFIG = {
  /** A prefill on the remote primary (the whole prompt, scored). */
  openTimeoutMs: 60_000,
  /** One step of every sequence batched in it. */
  stepTimeoutMs: 10_000,
  listTimeoutMs: 5_000,
} as const;
export type RemoteMixtureConfig = { -readonly [K in keyof typeof REMOTE_MIXTURE_CONFIG]: number };

interface PendingStep {
  seq: number;
  token: number;
  nVocab: number;
  resolve: (row: Float32Array) => void;
  reject: (e: unknown) => void;
}

/** One remote primary lending specialists over one connection. */
export class RemoteMixturePeer {
  private pending: PendingStep[] = [];
  private scheduled = false;

  constructor(
    readonly peer: Peer,
    /** The remote primary's proven node id (what a ban names). */
    readonly nodeId: string,
    private readonly bans: Bans,
    private readonly logger: Logger,
    private readonly config: RemoteMixtureConfig = { ...REMOTE_MIXTURE_CONFIG },
  ) {}

  get usable(): boolean {
    return !this.peer.closed && !this.bans.has(this.nodeId);
  }

  /** The specialists it serves now. */
  async specialists(): Promise<RemoteSpecialist[]> {
    const { header } = await call(this.peer, 'mixture_list', {}, { timeoutMs: this.config.listTimeoutMs });
    return header.specialists.map((info) => new RemoteSpecialist(this, info));
  }

  async open(info: MixtureSpecialistInfo, prompt: readonly number[]): Promise<{ seq: number; promptLogLikelihood: number; logits: Float32Array }> {
    const payload = new Uint8Array(Int32Array.from(prompt).buffer);
    const { header, payload: bytes } = await call(this.peer, 'mixture_open', { modelId: info.id, nTokens: prompt.length }, { payload, timeoutMs: this.config.openTimeoutMs });
    const logits = this.checked(() => decodeDistribution(header.dist, bytes, info.nVocab));
    return { seq: header.seq, promptLogLikelihood: header.promptLogLikelihood, logits };
  }

  /** The distribution after `token`; steps asked for in the same tick share one mixture_step. */
  step(seq: number, token: number, nVocab: number): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      this.pending.push({ seq, token, nVocab, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  close(seq: number): void {
    if (this.peer.closed) return;
    call(this.peer, 'mixture_close', { seqs: [seq] }, { timeoutMs: this.config.stepTimeoutMs }).catch((e: unknown) =>
      this.logger.debug('mixture_close_failed', { nodeId: this.nodeId, seq, error: e instanceof Error ? e.message : String(e) }),
    );
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, MIXTURE_LIMITS.maxStepSeqs);
      try {
        const { header, payload } = await call(this.peer, 'mixture_step', { steps: batch.map(({ seq, token }) => ({ seq, token })) }, { timeoutMs: this.config.stepTimeoutMs });
        if (header.dists.length !== batch.length) throw this.ban(new MalformedDistributionError(`${batch.length} distributions`, String(header.dists.length)));
        let offset = 0;
        const rows = header.dists.map((h, i) => {
          const n = distributionBytes(h);
          const row = this.checked(() => decodeDistribution(h, payload.subarray(offset, offset + n), batch[i]!.nVocab));
          offset += n;
          return row;
        });
        if (offset !== payload.byteLength) throw this.ban(new MalformedDistributionError(`${offset} payload bytes`, String(payload.byteLength)));
        batch.forEach((p, i) => p.resolve(rows[i]!));
      } catch (e) {
        if (e instanceof TimeoutError) this.ban(e);
        for (const p of batch) p.reject(e);
      }
    }
  }

  /** Runs a decode; a malformed distribution bans the node before it is thrown. */
  private checked<T>(decode: () => T): T {
    try {
      return decode();
    } catch (e) {
      if (e instanceof MalformedDistributionError) throw this.ban(e);
      throw e;
    }
  }

  private ban<E extends Error>(e: E): E {
    this.bans.ban(this.nodeId, `mixture: ${e.message}`);
    return e;
  }
}

/** A specialist on another primary. */
export class RemoteSpecialist implements Specialist {
  readonly id: string;
  readonly tokenizerHash: string;
  readonly nVocab: number;
  readonly nCtx: number;

  constructor(readonly remote: RemoteMixturePeer, private readonly info: MixtureSpecialistInfo) {
    this.id = info.id;
    this.tokenizerHash = info.tokenizerHash;
    this.nVocab = info.nVocab;
    this.nCtx = info.nCtx;
  }

  async start(prompt: readonly number[]): Promise<SpecialistSequence> {
    const { seq, promptLogLikelihood, logits } = await this.remote.open(this.info, prompt);
    let closed = false;
    return {
      promptLogLikelihood,
      logits,
      next: (token) => this.remote.step(seq, token, this.nVocab),
      close: async () => {
        if (closed) return;
        closed = true;
        this.remote.close(seq);
      },
    };
  }
}
