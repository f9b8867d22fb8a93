// Remote specialists over the real protocol on an in-memory network: a mixture at one primary drives a
// specialist another one serves; a malformed distribution bans that node; a cut link drops it mid-answer.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { getGgml } from '../../ggml/runtime.ts';
import { MixtureGenerator, type MixtureResult } from '../../model/mixture/generator.ts';
import { type TestSpecialists, loadTestSpecialists } from '../../model/mixture/testing.ts';
import { silentLogger } from '../../util/log.ts';
import { defineMethods } from '../dataplane.ts';
import { Bans } from '../node/bans.ts';
import { localTestDataPlane } from '../node/dataplane-config.ts';
import { MemoryNetwork } from '../transport/memory-network.ts';
import { MalformedDistributionError, decodeDistribution, encodeDistribution } from './distribution.ts';
import { RemoteMixturePeer } from './remote.ts';
import { MixtureService } from './serve.ts';

const ggml = getGgml({ gpu: 'off' });
let t: TestSpecialists;
before(async () => {
  t = await loadTestSpecialists(2);
});
after(async () => {
  await t.dispose();
});

async function drain(gen: MixtureGenerator, n: number, onToken?: (i: number) => void): Promise<MixtureResult> {
  const it = gen.stream(t.tokenizer.encode('The weather today is'), { maxTokens: n, temperature: 0 });
  let i = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
    if (r.value.attribution) onToken?.(i++);
  }
}

/** Primary B serves spec-2 at 'b:1'; primary A connects to it. */
async function lend(net: MemoryNetwork, methods?: Parameters<typeof defineMethods>[0]) {
  const service = new MixtureService({ specialists: () => [t.specialists[1]!], logger: silentLogger });
  const server = net.listen('b:1', { session: 'b', methods: defineMethods(methods ?? service.methods()) });
  const peer = await net.connect('b:1', { session: 'a' });
  const bans = new Bans(localTestDataPlane(), silentLogger);
  const remote = new RemoteMixturePeer(peer, 'node-b', bans, silentLogger);
  return { service, server, peer, bans, remote };
}

test('f16 and top-k distributions decode to the same log-probabilities (up to a constant)', () => {
  const logits = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 5);
  const full = encodeDistribution(logits);
  assert.equal(full.header.encoding, 'f16');
  const a = decodeDistribution(full.header, full.bytes, 1000);
  const top = encodeDistribution(logits, 100, 50);
  assert.equal(top.header.encoding, 'topk');
  const b = decodeDistribution(top.header, top.bytes, 1000);
  const best = logits.indexOf(Math.max(...logits));
  assert.equal(a[best], 0);
  // Differences between two tokens agree with the logits, within f16 (a) and exactly for the top k (b).
  assert.ok(Math.abs(a[3]! - a[best]! - (logits[3]! - logits[best]!)) < 0.02);
  const second = [...logits.keys()].filter((i) => i !== best).reduce((x, y) => (logits[y]! > logits[x]! ? y : x));
  assert.ok(Math.abs(b[second]! - b[best]! - (logits[second]! - logits[best]!)) < 1e-5);
  const tail = b.reduce((n, v) => n + (v === b[b.length - 1] ? 1 : 0), 0);
  assert.ok(tail >= 1000 - 50); // the tail tokens share one value
  assert.throws(() => decodeDistribution(full.header, full.bytes, 999), MalformedDistributionError);
  assert.throws(() => decodeDistribution(full.header, full.bytes.subarray(2), 1000), MalformedDistributionError);
  const nan = new Uint8Array(full.bytes);
  nan[0] = 0xff;
  nan[1] = 0x7f;
  assert.throws(() => decodeDistribution(full.header, nan, 1000), /got NaN/);
});

test('a mixture drives a remote specialist: same tokens as with the local one, shares sum to 1', async () => {
  const net = new MemoryNetwork();
  const { server, peer, remote, service } = await lend(net);
  try {
    const [remoteSpec] = await remote.specialists();
    assert.equal(remoteSpec!.id, 'spec-2');
    const local = await drain(new MixtureGenerator([t.specialists[0]!, t.specialists[1]!], t.tokenizer, ggml, { minWeight: 0 }), 8);
    const mixed = await drain(new MixtureGenerator([t.specialists[0]!, remoteSpec!], t.tokenizer, ggml, { minWeight: 0 }), 8);
    assert.deepEqual(mixed.tokens, local.tokens);
    for (const tok of mixed.trail.tokens) assert.ok(Math.abs(tok.attribution.reduce((a, s) => a + s.share, 0) - 1) < 1e-4);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(service.open, 0, 'the remote sequence was closed');
  } finally {
    peer.close();
    await server.close();
  }
});

test('a link cut mid-answer drops the remote specialist; the answer finishes from the rest', async () => {
  const net = new MemoryNetwork();
  const { server, peer, remote } = await lend(net);
  try {
    const [remoteSpec] = await remote.specialists();
    const result = await drain(new MixtureGenerator([t.specialists[0]!, remoteSpec!], t.tokenizer, ggml, { minWeight: 0 }), 8, (i) => {
      if (i === 2) net.cut('b:1');
    });
    assert.equal(result.tokens.length, 8);
    assert.equal(result.trail.dropped.length, 1);
    assert.equal(result.trail.dropped[0]!.model, 'spec-2');
    assert.equal(result.trail.tokens.at(-1)!.attribution.length, 1);
  } finally {
    peer.close();
    await server.close();
  }
});

test('a wrong-length distribution bans the node and drops its specialist', async () => {
  const net = new MemoryNetwork();
  const honest = new MixtureService({ specialists: () => [t.specialists[1]!], logger: silentLogger });
  const methods = honest.methods();
  const { server, peer, remote, bans } = await lend(net, {
    ...methods,
    mixture_step: async (req, ctx) => {
      const answer = await methods.mixture_step!(req, ctx);
      return { ...answer, payload: answer.payload!.subarray(2) }; // one value short
    },
  });
  try {
    const [remoteSpec] = await remote.specialists();
    const result = await drain(new MixtureGenerator([t.specialists[0]!, remoteSpec!], t.tokenizer, ggml, { minWeight: 0 }), 4);
    assert.equal(result.tokens.length, 4);
    assert.match(result.trail.dropped[0]?.reason ?? '', /malformed/);
    assert.ok(bans.has('node-b'));
    assert.equal(remote.usable, false);
  } finally {
    peer.close();
    await server.close();
  }
});
