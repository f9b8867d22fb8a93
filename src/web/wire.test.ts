// Training jobs as the coordinator page lists them: the alive nodes' `diloco-job:<id>` model refs, with the
// progress of the node's heartbeats when it reports that job's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jobRef } from '../federation/diloco/job-ref.ts';
import { type NodeCard, trainingJobsOf } from './wire.ts';

const node = (name: string, state: string, models: NodeCard['models'], training?: NodeCard['training']): NodeCard => ({
  nodeId: `id-${name}`, name, role: 'primary', state, candidates: [], freeMemoryBytes: 1, threads: 1, backend: 'cpu', models, ...(training ? { training } : {}),
});

test('training jobs are the alive nodes\' diloco-job refs, with the progress their heartbeats report', () => {
  const ref = jobRef('job-a', 'tiny', 6);
  const metrics = [{ round: 0, innerLoss: 5 }, { round: 1, innerLoss: 4.5 }];
  const jobs = trainingJobsOf([
    node('base', 'alive', [{ hash: 'sha256:aa', name: 'tiny', nLayers: 6 }]),
    node('server-a', 'alive', [ref], { jobId: 'job-a', round: 2, rounds: 10, metrics }),
    node('server-b', 'alive', [jobRef('job-b', 'tiny', 6)]),
    node('server-c', 'dead', [jobRef('job-c', 'tiny', 6)]),
  ]);
  assert.deepEqual(jobs, [
    { id: 'job-a', name: ref.name, nodeId: 'id-server-a', nodeName: 'server-a', state: 'alive', round: 2, rounds: 10, metrics },
    { id: 'job-b', name: jobRef('job-b', 'tiny', 6).name, nodeId: 'id-server-b', nodeName: 'server-b', state: 'alive', metrics: [] },
  ]);
});
