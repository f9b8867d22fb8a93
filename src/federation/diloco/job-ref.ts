// How a DiLoCo job is published at the coordinator, with no change to the coordinator or its protocol: the
// `diloco serve` node registers with role 'primary' (so no primary ever plans layers onto it: primaries use
// workers only) and lists, among its models, one ModelRef whose hash is `diloco-job:<job id>`. Participants
// list the alive primaries and pick the nodes that carry such a ref (the one with --job ID, if given).
// The job's details (round, settings, weights manifest) are asked of the server itself (diloco_job).
import type { ModelRef, NodeView } from '../protocol.ts';
import { JOB_REF_SCHEME } from '../protocol-diloco.ts';

/** The ModelRef a `diloco serve` node registers for its job. */
export function jobRef(jobId: string, modelName: string, nLayers: number): ModelRef {
  return { hash: `${JOB_REF_SCHEME}:${jobId}`, name: `diloco job ${jobId.slice(0, 8)} (${modelName})`.slice(0, 200), nLayers: Math.max(1, nLayers) };
}

export interface PublishedJob {
  jobId: string;
  view: NodeView;
}

/** The jobs the coordinator's node list publishes (alive nodes only). */
export function publishedJobs(views: readonly NodeView[]): PublishedJob[] {
  const prefix = `${JOB_REF_SCHEME}:`;
  return views
    .filter((v) => v.state === 'alive')
    .flatMap((view) => view.models.filter((m) => m.hash.startsWith(prefix)).map((m) => ({ jobId: m.hash.slice(prefix.length), view })));
}
