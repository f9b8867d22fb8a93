// Verified workers: the primary checks that workers compute what they claim (TOPLOC-style).
//
// Every remote step carries a salt; each hop appends to its trace entry a fingerprint of the hidden states
// it produced (fingerprint.ts). For a sampled fraction of sequences (`rate`), the pipeline hands each
// remote chain's step to `observe`: we keep the chain's input hidden states, every hop's fingerprint and the
// chain's output. Once `flushTokens` tokens of a sequence are pending (or the sequence closes), we re-run
// them through each span of the chain as one batched prefill on a part of our own model file (loaded on
// first use, with its own KV cache per sequence, freed after `idleReleaseMs` unused), and compare each hop's
// fingerprint and the chain's output within `tolerance`. The work runs in the background, one span at a
// time between macrotasks, not on the decode path.
//
// Attribution: hops are checked in order and the first one off is blamed. Our recomputation feeds our own
// output of hop j into hop j+1, so a hop that alters its output and also fingerprints the altered output is
// caught at that hop. A hop that sends altered states with the fingerprint of honest ones shifts the blame to
// the next hop (or, as the last hop, is caught by the full comparison of the chain output): an input
// fingerprint per hop would close that gap (not done yet).
import { webcrypto } from 'node:crypto';
import type { ModelPart } from '../../model/model-part.ts';
import type { Logger } from '../../util/log.ts';
import { spanText } from '../../util/log.ts';
import type { SpanRef, StageTime } from '../protocol-dataplane.ts';
import { FP_WIDTH, blockSize, decodeFingerprint, fingerprintError, fingerprintRows, hiddenError, rowsOf } from './fingerprint.ts';

export interface VerifyConfig {
  /** Fraction of sequences verified (0..1). Decode cost measured in bench/verify.ts. */
  rate: number;
  /**
   * Largest honest difference allowed, in units of a token's RMS (fingerprint rows and the chain output).
   * Measured (bench/verify-kernels.ts and bench/verify.ts --workers-from, AMD EPYC; worker decode with one
   * ggml CPU variant, our re-run with another, same kernel path): the trained sharedllm-tiny (Q8_0, 6 layers)
   * differs by 1.5e-3..3.2e-3 between the AVX-512 (zen4) and AVX2 (haswell) kernels; random-weight test
   * models, far more chaotic, by up to 0.065 in the pipeline and 0.1 for 4 layers (Q4_0); F16 batched vs
   * decode ~1.5e-3 per layer; on one CPU, Q8_0/Q4_0 with the same shapes are bit-identical. 0.25 is 2.5x the
   * worst random-model figure and ~40x the trained model's (6e-3 over 1,000-step runs). bench/verify.ts: a
   * worker adding noise of 0.25 x RMS per coordinate is caught in every run (every step or 1 step in 10);
   * 0.1 x RMS is caught at a first hop (the next hop amplifies it) but mostly not at the last hop. A
   * federation of one CPU kind can afford a much tighter tolerance (Q8_0/Q4_0 re-runs are bit-identical).
   */
  tolerance: number;
  /**
   * Attribution: when hop j's output is off and the states it received were already off from ours by more
   * than this share of the tolerance, the hop before it is blamed (a change under the tolerance there,
   * amplified by hop j's layers), not hop j. Honest inputs differ far less (see `tolerance`).
   */
  upstreamShare: number;
  /** Verify a sequence once this many of its tokens are pending. */
  flushTokens: number;
  /**
   * Steps of at most this many tokens are merged into one prefill; a larger step is re-run alone, at its own
   * size. Why: ggml picks kernels by batch shape. Measured (bench/verify-kernels.ts): for Q8_0/Q4_0 a prefill
   * of up to 63 tokens gives bit-identical states to token-by-token decode, 64 or more switch attention to
   * another path (3e-2 x RMS apart on the trained sharedllm-tiny, 0.19 on random-weight models); so we re-run
   * a worker's large step with the same shape it had, and merge decode steps below that size.
   */
  batchTokens: number;
  /** Sampled sequences tracked at once (each holds a KV cache per verified span). */
  maxTracked: number;
  /** Free a span part no verification used for this long. */
  idleReleaseMs: number;
}

export function defaultVerifyConfig(): VerifyConfig {
  return {
    rate: 0.02, // bench/verify.ts: decode cost at 2% stays well under the 3% target
    tolerance: 0.25,
    flushTokens: 32, // a mismatch is found within ~32 decode steps of the first bad one
    batchTokens: 32,
    upstreamShare: 0.25,
    maxTracked: 4,
    idleReleaseMs: 60_000,
  };
}

export interface ChainHop {
  nodeId: string;
  span: SpanRef;
}

/** One traversal of a remote chain, as `PipelineForward.remote` saw it. */
export interface StepObservation {
  chain: readonly ChainHop[];
  /** Groups of the step, in payload order; `pos0`: the group's first position in its sequence. */
  groups: readonly { seq: number; n: number; pos0: number }[];
  nEmbd: number;
  salt: number;
  input: Float32Array;
  output: Float32Array;
  trace: readonly StageTime[];
}

export interface Incident {
  at: string;
  nodeId: string;
  seq: number;
  /** Tokens [from, to) of the sequence that were checked. */
  from: number;
  to: number;
  error: number;
  tolerance: number;
  evidence: string;
}

export interface VerificationStats {
  /** Hop-steps (one hop's fingerprint for one step of one sequence) checked. */
  checked: number;
  /** Tokens re-computed (per chain). */
  tokens: number;
  sequences: number;
  mismatches: number;
  /** Steps that could not be checked (a hop sent no fingerprint, or the trace does not list the chain). */
  unverifiable: number;
  /** Largest difference seen in checks that passed (x RMS): the honest noise, to compare with the tolerance. */
  maxPassedError: number;
  lastIncident?: Incident;
}

interface Segment {
  pos0: number;
  n: number;
  salt: number;
  block: number;
  input: Float32Array;
  output: Float32Array;
  /** Each hop's claimed fingerprint rows for this sequence's tokens of the step. */
  fps: Float32Array[];
  /** Each hop's fingerprint of the states it received (absent from workers that do not send it). */
  fpsIn: (Float32Array | undefined)[];
}

interface Track {
  seq: number;
  chain: readonly ChainHop[];
  nEmbd: number;
  recorded: number;
  pending: Segment[];
  /** Per hop: the part and its sequence id holding our KV cache (opened on first verification). */
  caches: ({ part: ModelPart; id: number } | undefined)[];
  busy: boolean;
  retired: boolean;
  failed: boolean;
}

interface HeldPart {
  part: Promise<ModelPart>;
  timer?: NodeJS.Timeout;
}

const spanKey = (s: SpanRef) => `${s.modelHash}:${s.first}:${s.last}`;
const chainKey = (c: readonly ChainHop[]) => c.map((h) => `${h.nodeId}@${h.span.first}-${h.span.last}`).join('>');

export class Verifier {
  /** Set by the pipeline: ban the node, re-plan its span, replay. */
  onMismatch: (nodeId: string, evidence: string) => void = () => undefined;
  /** A sequence's adapter norm gains (set by the pipeline): our re-run applies them as the workers did. */
  gainsOf: (seq: number) => ReadonlyMap<string, Float32Array> | undefined = () => undefined;
  readonly config: VerifyConfig;
  private readonly statsNow: VerificationStats = { checked: 0, tokens: 0, sequences: 0, mismatches: 0, unverifiable: 0, maxPassedError: 0 };
  private readonly sampled = new Map<number, boolean>();
  private readonly tracks = new Map<string, Track>();
  private readonly queue: Track[] = [];
  private readonly parts = new Map<string, HeldPart>();
  private pumping: Promise<void> | undefined;
  private disposed = false;

  constructor(private readonly opts: { config?: Partial<VerifyConfig>; load: (span: SpanRef) => Promise<ModelPart>; logger: Logger; random?: () => number }) {
    this.config = { ...defaultVerifyConfig(), ...opts.config };
  }

  get stats(): VerificationStats {
    return { ...this.statsNow };
  }

  /** A fresh salt for a step (unpredictable to workers). */
  salt(): number {
    return webcrypto.getRandomValues(new Uint32Array(1))[0]!;
  }

  observe(step: StepObservation): void {
    if (this.disposed) return;
    let off = 0;
    let rowOff = 0;
    const block = blockSize(step.groups.reduce((a, g) => a + g.n, 0));
    const entry = (j: number) => (step.trace[j]?.nodeId === step.chain[j]!.nodeId ? step.trace[j] : undefined);
    const fps = step.chain.map((_, j) => (entry(j)?.fp === undefined ? undefined : decodeFingerprint(entry(j)!.fp!)));
    const fpsIn = step.chain.map((_, j) => (entry(j)?.fpIn === undefined ? undefined : decodeFingerprint(entry(j)!.fpIn!)));
    for (const g of step.groups) {
      const rows = rowsOf(g.n, block);
      const start = off;
      const rowStart = rowOff;
      off += g.n * step.nEmbd;
      rowOff += rows;
      if (!this.isSampled(g.seq, g.pos0)) continue;
      const key = `${g.seq}|${chainKey(step.chain)}`;
      let t = this.tracks.get(key);
      if (t && g.pos0 !== t.recorded) {
        // A replay after a recovery starts the sequence over (pos0 = 0): verify what we have, then start anew.
        this.retire(t);
        t = undefined;
      }
      if (!t) {
        if (g.pos0 !== 0) continue; // we did not see the start of this sequence on this chain
        t = { seq: g.seq, chain: step.chain, nEmbd: step.nEmbd, recorded: 0, pending: [], caches: [], busy: false, retired: false, failed: false };
        this.tracks.set(key, t);
      }
      const mine = fps.map((f) => f?.subarray(rowStart * FP_WIDTH, (rowStart + rows) * FP_WIDTH));
      const mineIn = fpsIn.map((f) => (f?.length === fps[0]?.length ? f?.subarray(rowStart * FP_WIDTH, (rowStart + rows) * FP_WIDTH) : undefined));
      if (mine.some((f) => f === undefined || f.length !== rows * FP_WIDTH)) {
        // No fingerprint from some hop: this step cannot be checked, nor (its caches unknown) anything after it.
        this.statsNow.unverifiable++;
        this.retire(t);
        continue;
      }
      t.pending.push({
        pos0: g.pos0, n: g.n, salt: step.salt, block,
        input: step.input.slice(start, start + g.n * step.nEmbd),
        output: step.output.slice(start, start + g.n * step.nEmbd),
        fps: mine as Float32Array[],
        fpsIn: mineIn,
      });
      t.recorded += g.n;
      if (t.pending.reduce((a, s) => a + s.n, 0) >= this.config.flushTokens) this.enqueue(t);
    }
  }

  /** The sequence ended: verify what is pending, then free its caches. */
  sequenceClosed(seq: number): void {
    this.sampled.delete(seq);
    for (const t of this.tracks.values()) if (t.seq === seq) this.retire(t);
  }

  /** Resolves once no verification is queued or running (tests, benchmarks, shutdown). */
  async idle(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  dispose(): void {
    this.disposed = true;
    this.queue.length = 0;
    for (const h of this.parts.values()) {
      clearTimeout(h.timer);
      h.part.then((p) => p.dispose()).catch(() => undefined);
    }
    this.parts.clear();
  }

  private isSampled(seq: number, pos0: number): boolean {
    let s = this.sampled.get(seq);
    if (s === undefined) {
      const live = [...this.sampled.values()].filter(Boolean).length;
      s = pos0 === 0 && live < this.config.maxTracked && (this.opts.random ?? Math.random)() < this.config.rate;
      this.sampled.set(seq, s);
      if (s) this.statsNow.sequences++;
    }
    return s;
  }

  private retire(t: Track): void {
    t.retired = true;
    const key = `${t.seq}|${chainKey(t.chain)}`;
    if (this.tracks.get(key) === t) this.tracks.delete(key);
    this.enqueue(t);
  }

  private enqueue(t: Track): void {
    if (!this.queue.includes(t)) this.queue.push(t);
    this.kick();
  }

  private kick(): void {
    if (this.pumping || this.disposed) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      if (this.queue.length > 0) this.kick(); // queued while the last pass was finishing
    });
  }

  private async pump(): Promise<void> {
    // Start after the current step's callbacks: verification never runs inside a decode step.
    await new Promise((r) => setImmediate(r));
    for (let t = this.queue.shift(); t && !this.disposed; t = this.queue.shift()) {
      try {
        if (!t.failed && t.pending.length > 0) await this.verify(t);
      } catch (e) {
        this.opts.logger.warn('verification_skipped', { reason: 'could not re-run the span; this sequence is not checked', seq: t.seq, error: (e as Error).message });
        t.failed = true;
      }
      if (t.retired || t.failed) this.release(t);
    }
  }

  /** Re-run a track's pending tokens through each span of its chain, in runs of batched steps, and compare. */
  private async verify(t: Track): Promise<void> {
    const pending = t.pending.splice(0);
    while (pending.length > 0 && !t.failed) {
      const run = [pending.shift()!];
      let n = run[0]!.n;
      while (n <= this.config.batchTokens && pending.length > 0 && n + pending[0]!.n <= this.config.batchTokens) {
        n += pending[0]!.n;
        run.push(pending.shift()!);
      }
      await this.verifyRun(t, run);
    }
  }

  /** One prefill per span of the chain over these steps' tokens; compare each hop's claims. */
  private async verifyRun(t: Track, segs: Segment[]): Promise<void> {
    const n = segs.reduce((a, s) => a + s.n, 0);
    const { nEmbd } = t;
    let x: Float32Array = new Float32Array(n * nEmbd);
    let o = 0;
    for (const s of segs) {
      x.set(s.input, o * nEmbd);
      o += s.n;
    }
    for (let j = 0; j < t.chain.length; j++) {
      const hop = t.chain[j]!;
      const part = await this.part(hop.span);
      const { id } = (t.caches[j] ??= this.openCache(part, t.seq));
      const out = part.step([{ seq: id, hidden: x }]).hidden!;
      this.touch(hop.span);
      let worst = 0;
      let bad: { seg: Segment; error: number; what: string; hop: number } | undefined;
      o = 0;
      for (const s of segs) {
        const ours = (v: Float32Array) => fingerprintRows(v.subarray(o * nEmbd, (o + s.n) * nEmbd), nEmbd, [s.n], s.salt, s.block);
        // What this hop says it received, against what it should have received (our input to it).
        const inError = s.fpsIn[j] ? fingerprintError(s.fpsIn[j]!, ours(x), nEmbd) : 0;
        const mine = out.subarray(o * nEmbd, (o + s.n) * nEmbd);
        let error = fingerprintError(s.fps[j]!, ours(out), nEmbd);
        let what = 'fingerprint';
        o += s.n;
        if (!(inError <= this.config.tolerance)) {
          // It received states far from what the hop before should have sent (hop 0: from what we sent).
          if (j > 0) bad ??= { seg: s, error: inError, what: `output (as hop ${j} received it)`, hop: j - 1 };
          else bad ??= { seg: s, error: inError, what: 'fingerprint of what it received', hop: 0 };
          continue;
        }
        if (j === t.chain.length - 1 && error <= this.config.tolerance) {
          // The last hop's output reached us whole: compare all of it, and its fingerprint must describe it.
          error = Math.max(hiddenError(s.output, mine, nEmbd), 0);
          what = 'output';
          const claimedVsSent = fingerprintError(s.fps[j]!, fingerprintRows(s.output, nEmbd, [s.n], s.salt, s.block), nEmbd);
          if (claimedVsSent > 1e-6) [error, what] = [Number.POSITIVE_INFINITY, 'fingerprint of what it sent'];
        }
        if (error <= this.config.tolerance) worst = Math.max(worst, error, inError);
        else if (j > 0 && inError > this.config.tolerance * this.config.upstreamShare) {
          // Off here, and the input was already off: a change under the tolerance upstream, amplified here.
          bad ??= { seg: s, error: inError, what: `output (as hop ${j} received it; hop ${j}'s own output then off by ${error.toPrecision(3)})`, hop: j - 1 };
        } else bad ??= { seg: s, error, what, hop: j };
      }
      this.statsNow.checked += segs.length;
      this.statsNow.maxPassedError = Math.max(this.statsNow.maxPassedError, worst);
      if (bad) {
        this.mismatch(t, bad.hop, bad.seg, bad.error, bad.what);
        return;
      }
      x = out;
      await new Promise((r) => setImmediate(r));
    }
    this.statsNow.tokens += n;
  }

  private mismatch(t: Track, j: number, seg: Segment, error: number, what: string): void {
    t.failed = true;
    const hop = t.chain[j]!;
    const evidence = `hop ${j} (${hop.nodeId}, layers ${spanText(hop.span.first, hop.span.last)}) ${what} off by ${error.toPrecision(3)} x RMS at tokens ${spanText(seg.pos0, seg.pos0 + seg.n)} of sequence ${t.seq} (tolerance ${this.config.tolerance})`;
    this.statsNow.mismatches++;
    this.statsNow.lastIncident = { at: new Date().toISOString(), nodeId: hop.nodeId, seq: t.seq, from: seg.pos0, to: seg.pos0 + seg.n, error, tolerance: this.config.tolerance, evidence };
    // What other sequences recorded on this worker is moot now: it is banned and its span re-planned.
    for (const other of this.tracks.values()) {
      if (other !== t && other.chain.some((h) => h.nodeId === hop.nodeId)) {
        other.failed = true;
        this.retire(other);
      }
    }
    this.opts.logger.warn('verification_failed', { answer: 'the answer of this sequence may be wrong', nodeId: hop.nodeId, seq: t.seq, evidence });
    this.onMismatch(hop.nodeId, evidence);
  }

  private openCache(part: ModelPart, seq: number): { part: ModelPart; id: number } {
    const id = part.openSequence();
    const gains = this.gainsOf(seq);
    if (gains) part.setNormOverrides(id, gains);
    return { part, id };
  }

  private release(t: Track): void {
    t.pending.length = 0;
    for (const c of t.caches) c?.part.closeSequence(c.id);
    t.caches = [];
  }

  private part(span: SpanRef): Promise<ModelPart> {
    const k = spanKey(span);
    let h = this.parts.get(k);
    if (!h) {
      h = { part: this.opts.load(span) };
      h.part.catch(() => this.parts.delete(k));
      this.parts.set(k, h);
    }
    return h.part;
  }

  /** A part no verification used for `idleReleaseMs` is freed (its sequences' caches with it). */
  private touch(span: SpanRef): void {
    const k = spanKey(span);
    const h = this.parts.get(k);
    if (!h) return;
    clearTimeout(h.timer);
    h.timer = setTimeout(() => {
      if ([...this.tracks.values()].some((t) => t.chain.some((c) => spanKey(c.span) === k) && t.caches.length > 0)) return this.touch(span);
      this.parts.delete(k);
      void h.part.then((p) => p.dispose());
    }, this.config.idleReleaseMs);
    h.timer.unref();
  }
}
