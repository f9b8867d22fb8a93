import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeManifest, makeRegistration } from './coordinator/testing.ts';
import { canonicalJson, CandidateSchema, ErrorBodySchema, HeartbeatSchema, NodeIdSchema, NodeRegistrationSchema, NodeViewSchema, PROTOCOL_VERSION, signingPayload } from './protocol.ts';
import { DirectoryEntrySchema, ManifestSchema } from './protocol-directory.ts';

test('PROTOCOL_VERSION is a positive integer', () => {
  assert.ok(Number.isInteger(PROTOCOL_VERSION) && PROTOCOL_VERSION > 0);
});

test('a signed registration parses; unknown fields are stripped', () => {
  const registration = makeRegistration();
  assert.deepEqual(NodeRegistrationSchema.parse(registration), registration);
  const parsed = NodeRegistrationSchema.parse({ ...registration, addedInV2: true });
  assert.equal('addedInV2' in parsed, false);
});

test('registration validation names the bad fields', () => {
  const registration = makeRegistration();
  const bad = { ...registration, role: 'boss', threads: 0, backend: 'tpu' };
  const result = NodeRegistrationSchema.safeParse(bad);
  assert.equal(result.success, false);
  const paths = result.error!.issues.map((issue) => issue.path.join('.')).sort();
  assert.deepEqual(paths, ['backend', 'role', 'threads']);
});

test('candidate addresses are host:port with a valid port; IPv6 in brackets', () => {
  const ok = ['192.168.1.10:7700', 'worker-1.lan:80', '[::1]:7701', '[fe80::1]:65535', 'relay.example.com:443'];
  const bad = ['192.168.1.10', ':7700', 'host:0', 'host:65536', '::1:7700', 'host :80', 'http://host:80', 'host:80/x'];
  for (const addr of ok) assert.equal(CandidateSchema.safeParse({ kind: 'lan', addr, priority: 1 }).success, true, addr);
  for (const addr of bad) assert.equal(CandidateSchema.safeParse({ kind: 'lan', addr, priority: 1 }).success, false, addr);
  assert.equal(CandidateSchema.safeParse({ kind: 'bluetooth', addr: 'h:1', priority: 1 }).success, false);
});

test('node ids are URL-safe', () => {
  for (const id of ['a', 'worker-1', 'f3a9c2d4e5b6a7c8', 'n.o_d-e']) assert.equal(NodeIdSchema.safeParse(id).success, true, id);
  for (const id of ['', '-x', 'a/b', 'a b', 'x'.repeat(65), 'é']) assert.equal(NodeIdSchema.safeParse(id).success, false, id);
});

test('heartbeat: incarnation and memory are non-negative integers; beat and signature required', () => {
  const signed = { beat: 1, signature: `${'A'.repeat(86)}==` };
  assert.equal(HeartbeatSchema.safeParse({ nodeId: 'w1', incarnation: 1, freeMemoryBytes: 0, load: 0.3, ...signed }).success, true);
  assert.equal(HeartbeatSchema.safeParse({ nodeId: 'w1', incarnation: 1, freeMemoryBytes: 0, load: 0.3 }).success, false);
  assert.equal(HeartbeatSchema.safeParse({ nodeId: 'w1', incarnation: 1, freeMemoryBytes: 0, load: 0.3, ...signed, beat: 0 }).success, false);
  assert.equal(HeartbeatSchema.safeParse({ nodeId: 'w1', incarnation: -1, freeMemoryBytes: 0, load: 0, ...signed }).success, false);
  assert.equal(HeartbeatSchema.safeParse({ nodeId: 'w1', incarnation: 1.5, freeMemoryBytes: 0, load: 0, ...signed }).success, false);
  assert.equal(HeartbeatSchema.safeParse({ nodeId: 'w1', incarnation: 1, freeMemoryBytes: 0, load: -1, ...signed }).success, false);
});

test('node view = registration minus signature, plus lease fields', () => {
  const { signature: _signature, protocolVersion: _protocolVersion, ...registration } = makeRegistration();
  const view = { ...registration, state: 'suspect', load: 0.1, lastSeen: 1, stateChangedAt: 2, registeredAt: 0 };
  assert.deepEqual(NodeViewSchema.parse(view), view);
  assert.equal(NodeViewSchema.safeParse({ ...view, state: 'zombie' }).success, false);
});

test('manifests parse; error bodies keep open codes and an optional hint', () => {
  const manifest = makeManifest();
  assert.deepEqual(ManifestSchema.parse(manifest), manifest);
  assert.equal(ManifestSchema.safeParse({ ...manifest, quant: 'q4 k' }).success, false);
  assert.equal(ManifestSchema.safeParse({ ...manifest, description: 'two\nlines' }).success, false);
  assert.equal(ManifestSchema.safeParse({ ...manifest, domains: [] }).success, false);
  assert.equal(ManifestSchema.safeParse({ ...manifest, contentHash: 'sha256:abc' }).success, false);
  // The kind is part of the signed bytes: a manifest is never parsed as a revocation or a serving record.
  assert.equal(DirectoryEntrySchema.parse(manifest).kind, 'manifest');
  assert.equal(DirectoryEntrySchema.safeParse({ ...manifest, kind: 'other' }).success, false);
  assert.equal(ErrorBodySchema.safeParse({ error: { code: 'from_the_future', message: 'x' } }).success, true);
  assert.equal(ErrorBodySchema.safeParse({ error: { code: 'x', message: 'y', hint: 'z' } }).success, true);
  assert.equal(ErrorBodySchema.safeParse({ message: 'y' }).success, false);
});

test('canonicalJson sorts keys recursively, drops undefined, keeps array order', () => {
  assert.equal(canonicalJson({ b: 1, a: [3, { d: true, c: null }], u: undefined, s: 'é"' }), '{"a":[3,{"c":null,"d":true}],"b":1,"s":"é\\""}');
  assert.equal(canonicalJson([undefined, 1.5, -0]), '[null,1.5,0]');
  assert.throws(() => canonicalJson({ x: Number.NaN }), TypeError);
  assert.throws(() => canonicalJson({ x: 1n }), TypeError);
});

test('signingPayload leaves out the signature member only', () => {
  assert.equal(signingPayload({ signature: 'sig', z: 1, a: 2 }).toString('utf8'), '{"a":2,"z":1}');
});
