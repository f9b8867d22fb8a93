// One step through the pipeline: embeddings and the primary's own layers, then each stage in order (a run of
// remote stages is one traversal: worker hands to worker, the last returns to us), then the head. Returns the
// logits and where the time went. Failover around it lives in pipeline.ts; the remote chain in remote-steps.ts.
import type { SeqInput } from '../../model/batch.ts';
import type { ModelPart, StepResult } from '../../model/model-part.ts';
import type { StageTime } from '../protocol-dataplane.ts';
import type { Stage } from './pipeline.ts';
import type { RemoteStage, RemoteSteps } from './remote-steps.ts';
import type { StepTiming } from './step-timings.ts';
import type { Verifier } from './verify.ts';

export interface StepParts {
  front: ModelPart;
  head: ModelPart;
  stages: readonly Stage[];
  remote: RemoteSteps;
  /** Records a sampled fraction of remote chains' inputs and outputs for re-computation (verify.ts). */
  verifier?: Verifier | undefined;
}

export async function forwardStep(parts: StepParts, inputs: readonly SeqInput[], wantLogits: boolean): Promise<{ out: StepResult; timing: StepTiming }> {
  const t0 = performance.now();
  const { front, head, stages } = parts;
  const nEmbd = front.h.nEmbd;
  const groups = inputs.map((i) => ({ seq: i.seq, n: i.tokens!.length }));
  let hidden = front.step(inputs.map((i) => ({ seq: i.seq, tokens: i.tokens! }))).hidden!; // (n_embd, n_tokens)
  let remoteWallMs = 0;
  const remote: StageTime[] = [];
  for (let k = 0; k < stages.length; ) {
    const s = stages[k]!;
    if (s.kind === 'local') {
      hidden = s.part.step(split(groups, hidden, nEmbd)).hidden!;
      k++;
      continue;
    }
    let end = k;
    while (end < stages.length && stages[end]!.kind === 'remote') end++;
    const r0 = performance.now();
    const chain = stages.slice(k, end) as RemoteStage[];
    const salt = parts.verifier?.salt();
    const input = hidden;
    const r = await parts.remote.run(chain, groups, input, nEmbd, salt);
    remoteWallMs += performance.now() - r0;
    if (salt !== undefined && groups.every((g) => front.hasSequence(g.seq))) {
      // Positions of each group's tokens (the front already holds them): the verifier replays from these.
      const positions = groups.map((g) => ({ ...g, pos0: front.sequenceLength(g.seq) - g.n }));
      parts.verifier?.observe({ chain: chain.map((s) => ({ nodeId: s.nodeId, span: s.span })), groups: positions, nEmbd, salt, input, output: r.hidden, trace: r.trace });
    }
    remote.push(...r.trace);
    hidden = r.hidden;
    k = end;
  }
  const headIn = split(groups, hidden, nEmbd).map((x, i) => ({ ...x, logits: wantLogits ? (inputs[i]!.logits ?? 'last') : ('none' as const) }));
  const out = head.step(headIn);
  const totalMs = performance.now() - t0;
  return { out, timing: { totalMs, localMs: totalMs - remoteWallMs, remoteWallMs, remote, tokens: groups.reduce((a, g) => a + g.n, 0) } };
}

/** Cut a token-major hidden buffer into one input per group. */
function split(groups: { seq: number; n: number }[], hidden: Float32Array, nEmbd: number): { seq: number; hidden: Float32Array }[] {
  let off = 0;
  return groups.map((g) => {
    const h = hidden.subarray(off, off + g.n * nEmbd);
    off += g.n * nEmbd;
    return { seq: g.seq, hidden: h };
  });
}
