// Verified workers end to end, in one process: a primary's pipeline over two workers on loopback (and a spare).
// Honest workers are never flagged (decode, batched steps, a long prompt); a worker that alters its output on
// every step, or on 1 step in 10, is flagged, banned and replaced, the incident is logged and counted, and the
// next answer equals the honest one.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Forward } from '../../model/batcher.ts';
import { cachedModel } from '../../model/testing/cached-model.ts';
import { SHAPES } from '../../model/testing/make-model.ts';
import { type LogFields, type Logger, silentLogger } from '../../util/log.ts';
import { mulberry32 } from '../../util/random.ts';
import { type VerifyCluster, startVerifyCluster } from './testing/verify-cluster.ts';

const model = cachedModel({ shape: { ...SHAPES.smollm2, tiedEmbeddings: false }, nLayer: 4, type: 'Q8_0', seed: 1 });
const SPANS: [number, number][] = [[1, 2], [2, 4]];
const PROMPT = [1, 15043, 3186, 29892, 920, 526];
const N = 24;

/** Warnings and errors, kept for assertions. */
function recordingLogger(): Logger & { events: { event: string; fields: LogFields }[] } {
  const events: { event: string; fields: LogFields }[] = [];
  const keep = (event: string, fields: LogFields = {}) => void events.push({ event, fields });
  return { ...silentLogger, warn: keep, error: keep, events };
}

let reference: number[];

before(async () => {
  const c = await startVerifyCluster({ model, spans: SPANS, verify: { rate: 0 }, nCtx: 160 });
  reference = await c.generate(PROMPT, N);
  await c.close();
});

async function withCluster<T>(opts: { flushTokens?: number; logger?: Logger }, fn: (c: VerifyCluster) => Promise<T>): Promise<T> {
  const c = await startVerifyCluster({ model, spans: SPANS, verify: { rate: 1, flushTokens: opts.flushTokens ?? 8 }, nCtx: 160, ...(opts.logger ? { logger: opts.logger } : {}) });
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

test('honest workers are never flagged: decode, two sequences per step, a 70-token prompt (another kernel path)', async () => {
  await withCluster({}, async (c) => {
    assert.deepEqual(await c.generate(PROMPT, N), reference, 'verification changes no output');
    const rnd = mulberry32(3);
    const long = Array.from({ length: 70 }, () => 1 + Math.floor(rnd() * 800));
    await c.generateBatch([PROMPT, [5, 6, 7]], 20);
    await c.generate(long, 10);
    await c.verifier.idle();
    const s = c.pipeline.verification!;
    console.log(`honest: ${s.checked} hop-steps checked, ${s.tokens} tokens re-run, largest difference ${s.maxPassedError.toExponential(2)} x RMS (tolerance ${c.verifier.config.tolerance})`);
    assert.equal(s.mismatches, 0);
    assert.equal(s.sequences, 4);
    assert.equal(s.unverifiable, 0);
    assert.equal(s.tokens, PROMPT.length + N - 1 + (PROMPT.length + 19) + (3 + 19) + (70 + 9));
    assert.ok(s.maxPassedError < c.verifier.config.tolerance / 5, `honest difference ${s.maxPassedError} within a fifth of the tolerance`);
    assert.equal(c.pipeline.banned.size, 0);
  });
});

for (const [label, liar, on] of [
  ['every step, first hop', 0, () => true],
  ['1 step in 10, last hop', 1, (s: number) => s % 10 === 0],
] as const) {
  test(`a worker that lies on ${label} is flagged, banned and replaced; the next answer is the honest one`, async () => {
    const logger = recordingLogger();
    await withCluster({ logger }, async (c) => {
      const w = c.workers[liar]!;
      w.lie = { on, size: 0.5 };
      for (let k = 0; k < 3 && c.pipeline.verification!.mismatches === 0; k++) {
        await c.generate(PROMPT, N);
        await c.verifier.idle();
      }
      const s = c.pipeline.verification!;
      assert.equal(s.mismatches, 1, 'flagged once');
      assert.equal(s.lastIncident?.nodeId, w.nodeId);
      assert.ok(c.pipeline.banned.has(w.nodeId), 'banned');
      assert.ok(!c.pipeline.stages.some((st) => st.kind === 'remote' && st.nodeId === w.nodeId), 'its span re-planned');
      assert.equal(c.pipeline.recoveries.at(-1)?.nodeId, w.nodeId);
      assert.ok(logger.events.some((e) => e.event === 'verification_failed' && e.fields.nodeId === w.nodeId && typeof e.fields.seq === 'number'), 'the affected answer is marked in the log');
      assert.deepEqual(await c.generate(PROMPT, N), reference, 'the replacement computes honestly');
      await c.verifier.idle();
      assert.equal(c.pipeline.verification!.mismatches, 1);
    });
  });
}

test('a worker whose fingerprint does not describe what it sent is flagged (last hop, compared whole)', async () => {
  await withCluster({}, async (c) => {
    // Alter the states after they are fingerprinted: the last hop's output reaches the primary whole.
    const w = c.workers[1]!;
    const deliver = c.pipeline.onStepResult.bind(c.pipeline);
    c.pipeline.onStepResult = (stepId, payload, trace) => {
      const f = new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength));
      if (c.pipeline.verification!.mismatches === 0) f[3]! += 100; // until caught (then a new worker serves)
      deliver(stepId, new Uint8Array(f.buffer), trace);
    };
    await c.generate(PROMPT, 10);
    await c.verifier.idle();
    assert.equal(c.pipeline.verification!.lastIncident?.nodeId, w.nodeId);
    assert.match(c.pipeline.verification!.lastIncident!.evidence, /fingerprint of what it sent/);
    assert.equal(c.pipeline.verification!.mismatches, 1);
  });
});

test('rate: only the sampled fraction of sequences is re-run', async () => {
  const c = await startVerifyCluster({ model, spans: SPANS, verify: { rate: 0.5 }, nCtx: 160, random: mulberry32(9) });
  try {
    for (let k = 0; k < 6; k++) await c.generate(PROMPT, 3);
    await c.verifier.idle();
    const s = c.pipeline.verification!;
    assert.ok(s.sequences > 0 && s.sequences < 6, `${s.sequences} of 6 sampled`);
    assert.equal(s.tokens, s.sequences * (PROMPT.length + 2));
  } finally {
    await c.close();
  }
});

test('a worker that sends no fingerprint (an older version) is not flagged: its steps count as unverifiable', async () => {
  await withCluster({}, async (c) => {
    const deliver = c.pipeline.onStepResult.bind(c.pipeline);
    c.pipeline.onStepResult = (result, payload, from) => deliver({ ...result, trace: (result.trace ?? []).map(({ nodeId, computeMs }) => ({ nodeId, computeMs })) }, payload, from);
    assert.deepEqual(await c.generate(PROMPT, 5), reference.slice(0, 5));
    await c.verifier.idle();
    const s = c.pipeline.verification!;
    assert.equal(s.mismatches, 0);
    assert.ok(s.unverifiable > 0);
    assert.equal(c.pipeline.banned.size, 0);
  });
});

test('a change under the tolerance at hop 0, amplified by hop 1, is blamed on hop 0 (by hop 1\'s input fingerprint)', async () => {
  await withCluster({}, async (c) => {
    c.workers[0]!.lie = { on: () => true, size: 0.1 };
    for (let k = 0; k < 3 && c.pipeline.verification!.mismatches === 0; k++) {
      await c.generate(PROMPT, N);
      await c.verifier.idle();
    }
    const s = c.pipeline.verification!;
    console.log(`sub-tolerance liar at hop 0: ${s.mismatches} incident(s): ${s.lastIncident?.evidence ?? 'none'}`);
    assert.ok(!c.pipeline.banned.has(c.workers[1]!.nodeId), 'the honest hop after it is not banned');
    if (s.mismatches > 0) assert.equal(s.lastIncident?.nodeId, c.workers[0]!.nodeId);
  });
});

test('a sequence with a norm adapter is verified with the same gains: honest workers are not flagged', async () => {
  const { loadModelPart } = await import('../../model/load.ts');
  const { localForward } = await import('../../model/batcher.ts');
  const { part: full } = await loadModelPart(model, { gpu: 'off', threads: 1, nCtx: 160 });
  const gains = new Map([...full.norms].map(([name, g], i) => [name, g.map((v) => v * (i % 2 === 0 ? 1.4 : 0.7))]));
  const greedy = async (fwd: Forward): Promise<number[]> => {
    const seq = await fwd.openSequence({ normOverrides: gains });
    const out: number[] = [];
    try {
      let tokens = Int32Array.from(PROMPT);
      for (let i = 0; i < 16; i++) {
        const l = (await fwd.step([{ seq, tokens }])).logits[0]![0]!;
        let best = 0;
        for (let v = 1; v < l.length; v++) if (l[v]! > l[best]!) best = v;
        out.push(best);
        tokens = Int32Array.of(best);
      }
    } finally {
      await fwd.closeSequence(seq);
    }
    return out;
  };
  try {
    const expected = await greedy(localForward(full));
    await withCluster({}, async (c) => {
      assert.deepEqual(await greedy(c.pipeline), expected);
      await c.verifier.idle();
      const s = c.pipeline.verification!;
      assert.ok(s.tokens > 0, 'the adapted sequence was re-run');
      assert.equal(s.mismatches, 0);
      assert.equal(c.pipeline.banned.size, 0);
    });
  } finally {
    full.dispose();
  }
});
