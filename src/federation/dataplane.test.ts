import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { call, DataPlaneContractError, defineMethods, notify } from './dataplane.ts';
import { DATAPLANE, DATAPLANE_METHODS } from './protocol-dataplane.ts';
import { connect, listen, RemoteError } from './transport/rpc.ts';
import type { MethodSpec } from './transport/methods.ts';

const span = { modelHash: 'a'.repeat(64), first: 0, last: 2 };
const servers: { close(): Promise<void> }[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

async function pair(methods: Record<string, MethodSpec>) {
  const server = await listen({ host: '127.0.0.1', port: 0, session: 'worker', methods });
  servers.push(server);
  const peer = await connect(`127.0.0.1:${server.port}`, { session: 'primary' });
  return peer;
}

test('every method of the table has a request schema; request methods a response schema', () => {
  assert.ok(DATAPLANE_METHODS.length >= 11);
  for (const m of DATAPLANE_METHODS) assert.ok(DATAPLANE[m].request, m);
  for (const m of ['info', 'load_span', 'open_seq', 'close_seq', 'truncate_seq', 'free_span', 'span_manifest', 'span_tensor'] as const) assert.ok(DATAPLANE[m].response, m);
  for (const m of ['step', 'step_result', 'step_error'] as const) assert.equal('response' in DATAPLANE[m], false, `${m} is a notification`);
});

test('call validates the answer: a contract-breaking header is a DataPlaneContractError', async () => {
  // A lying worker: hand-written specs that bypass defineMethods' types.
  const peer = await pair({
    load_span: { schema: DATAPLANE.load_span.request, handler: () => ({ header: { source: 'stream', bytes: -1, loadMs: 'soon' } }) },
    open_seq: { schema: DATAPLANE.open_seq.request, handler: () => ({ header: { ok: true } }) },
  });
  try {
    await assert.rejects(call(peer, 'load_span', { ...span, nCtx: 64 }), (e: unknown) => e instanceof DataPlaneContractError && e.code === 'bad_response' && /loadMs/.test(e.message));
    assert.deepEqual((await call(peer, 'open_seq', { ...span, seq: 1 })).header, { ok: true });
  } finally {
    peer.close();
  }
});

test('defineMethods: handlers get parsed headers (defaults applied); bad requests are refused before the handler', async () => {
  const seen: unknown[] = [];
  const stepped: number[] = [];
  const peer = await pair(
    defineMethods({
      load_span: (h) => {
        seen.push(h.nSeqMax);
        return { header: { source: 'local', bytes: 10, loadMs: 1 } };
      },
      step: (h, { payload }) => void stepped.push(h.stepId, payload.byteLength),
    }),
  );
  try {
    const r = await call(peer, 'load_span', { ...span, nCtx: 64 });
    assert.equal(r.header.source, 'local');
    assert.deepEqual(seen, [8], 'nSeqMax defaults to 8');
    await assert.rejects(call(peer, 'load_span', { ...span, nCtx: 1 }), (e: unknown) => e instanceof RemoteError && e.code === 'bad_request');
    await assert.rejects(call(peer, 'info', {}), (e: unknown) => e instanceof RemoteError && e.code === 'unknown_method');
    notify(peer, 'step', { session: 's', stepId: 7, span, groups: [{ seq: 1, n: 1 }], nEmbd: 4, route: [] }, new Uint8Array(16));
    await call(peer, 'load_span', { ...span, nCtx: 64 }); // ordered after the notification on the same connection
    assert.deepEqual(stepped, [7, 16]);
  } finally {
    peer.close();
  }
});
