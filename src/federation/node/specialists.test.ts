// A primary's specialists: the id each is served under follows the directory (a manifest naming the file
// renames it at once, the file name stays an alias), serving records are signed once per manifest and
// withdrawn on request. One small random-weight model, loaded whole.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cachedModel } from '../../model/testing/cached-model.ts';
import { silentLogger } from '../../util/log.ts';
import { testDirectoryConfig } from '../directory/config.ts';
import { Directory } from '../directory/directory.ts';
import { MemoryReplica } from '../directory/memory-replica.ts';
import { makeManifest } from '../directory/testing.ts';
import { createEphemeralIdentity } from '../identity.ts';
import { defaultCacheDir } from './model-hash.ts';
import { SpecialistSet, fileStem } from './specialists.ts';

test('specialists: served under their manifest ids, else their file name; serving records announced once and withdrawn', async () => {
  const base = cachedModel({ shape: 'smollm2', nLayer: 2, type: 'Q8_0', seed: 5 });
  const file = cachedModel({ shape: 'smollm2', nLayer: 2, type: 'Q8_0', seed: 6 });
  const set = await SpecialistSet.load([file], { base, cacheDir: defaultCacheDir(), nSeqMax: 1, nCtx: 64, gpu: 'off', threads: 1, logger: silentLogger });
  const directory = new Directory(new MemoryReplica(), testDirectoryConfig());
  const node = createEphemeralIdentity();
  try {
    const [specialist] = set.all;
    assert.ok(specialist!.sharesBaseTokenizer, 'same vocabulary as the base');
    assert.deepEqual(set.served(directory).map((s) => s.id), [fileStem(file)]);
    assert.equal(set.announce(directory, node, silentLogger), 0, 'no manifest, no serving record');

    directory.accept(makeManifest({ modelId: 'other-file', contentHash: `sha256:${'11'.repeat(32)}` }), 'peer');
    directory.accept(makeManifest({ modelId: 'tiny-code', contentHash: specialist!.contentHash }), 'peer');
    assert.deepEqual(set.served(directory).map((s) => s.id), ['tiny-code']);
    assert.equal(set.resolve(directory, 'tiny-code'), specialist);
    assert.equal(set.resolve(directory, fileStem(file)), specialist, 'the file name stays an alias');
    assert.equal(set.resolve(directory, 'other-file'), undefined);

    assert.equal(set.announce(directory, node, silentLogger), 1);
    assert.equal(set.announce(directory, node, silentLogger), 0, 'once per manifest');
    assert.deepEqual(directory.view('tiny-code')!.servedBy.map((r) => r.nodeId), [node.id]);
    assert.equal(directory.view('tiny-code')!.servedBy[0]!.mixtureAddr, undefined, 'a node that does not lend advertises no address');
    // Lending (--mixture-listen): the record is signed again with the address, once.
    set.lendAt('10.0.0.7:7800');
    assert.equal(set.announce(directory, node, silentLogger), 1);
    assert.equal(set.announce(directory, node, silentLogger), 0);
    assert.equal(directory.view('tiny-code')!.servedBy[0]!.mixtureAddr, '10.0.0.7:7800');
    const withdrawn = set.withdraw(directory, node);
    assert.equal(withdrawn.length, 1);
    assert.equal(withdrawn[0]!.serving, false);
    assert.deepEqual(directory.view('tiny-code')!.servedBy, []);
  } finally {
    await set.dispose();
  }
});
