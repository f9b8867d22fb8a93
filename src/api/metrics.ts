/**
 * GET /metrics: the primary's counters in Prometheus' text format (version 0.0.4), for a scraper or a glance.
 *
 *   sharedllm_http_requests_total{route,status}     requests answered, by route pattern ('unmatched' for
 *                                                   paths no route serves) and HTTP status
 *   sharedllm_prompt_tokens_total                   prompt tokens prefilled (once per choice; embeddings too)
 *   sharedllm_completion_tokens_total               tokens generated
 *   sharedllm_requests_active / _queued / _max_concurrent   the generation slots (limiter.ts)
 *   sharedllm_time_to_first_token_seconds           histogram: slot granted -> first token (prefill)
 *   sharedllm_token_seconds                         histogram: time between tokens of one sequence (a decode
 *                                                   step, merged with the other sequences by the Batcher)
 * and, when the node serves GET /v1/federation (a primary of a federation), from that answer:
 *   sharedllm_pipeline_layers{node_id,where,first,last}   the layer plan (a gauge of layers per stage)
 *   sharedllm_failovers_total, sharedllm_failover_seconds_total   recoveries from failed workers
 *   sharedllm_decode_step_median_seconds{part}      total, local (primary) and hops (network) of a decode step
 *   sharedllm_worker_decode_compute_median_seconds{node_id}   per worker
 * (medians over the pipeline's last 256 decode steps, as /v1/federation reports them).
 */
import { z } from 'zod';
import type { RequestContext, RouteHandler, Router } from '../http/index.ts';
import type { ConcurrencyLimiter } from './limiter.ts';

/** Histogram bucket bounds in seconds: a token takes milliseconds on a LAN, seconds over a slow WAN. */
export const SECONDS_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

class Histogram {
  readonly counts: number[] = SECONDS_BUCKETS.map(() => 0);
  count = 0;
  sum = 0;

  observe(seconds: number): void {
    this.count++;
    this.sum += seconds;
    SECONDS_BUCKETS.forEach((bound, i) => {
      if (seconds <= bound) this.counts[i]!++;
    });
  }

  render(name: string, help: string): string[] {
    const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
    SECONDS_BUCKETS.forEach((bound, i) => lines.push(`${name}_bucket{le="${bound}"} ${this.counts[i]}`));
    lines.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`);
    return lines;
  }
}

/** What the API counts as it serves. */
export class ApiMetrics {
  readonly #requests = new Map<string, { route: string; status: number; count: number }>();
  promptTokens = 0;
  completionTokens = 0;
  readonly firstToken = new Histogram();
  readonly betweenTokens = new Histogram();

  request(route: string, status: number): void {
    const key = `${route} ${status}`;
    const entry = this.#requests.get(key) ?? { route, status, count: 0 };
    entry.count++;
    this.#requests.set(key, entry);
  }

  render(limiter: ConcurrencyLimiter, federation: Federation | undefined): string {
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: [labels: Record<string, string | number>, value: number][]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`${name}${labelText(labels)} ${value}`);
    };
    metric('sharedllm_http_requests_total', 'counter', 'HTTP requests answered, by route and status.', [...this.#requests.values()].map((r) => [{ route: r.route, status: r.status }, r.count]));
    metric('sharedllm_prompt_tokens_total', 'counter', 'Prompt tokens prefilled (once per choice; embeddings inputs too).', [[{}, this.promptTokens]]);
    metric('sharedllm_completion_tokens_total', 'counter', 'Tokens generated.', [[{}, this.completionTokens]]);
    metric('sharedllm_requests_active', 'gauge', 'Generations holding a slot.', [[{}, limiter.active]]);
    metric('sharedllm_requests_queued', 'gauge', 'Requests waiting for a generation slot.', [[{}, limiter.queued]]);
    metric('sharedllm_requests_max_concurrent', 'gauge', 'Generation slots.', [[{}, limiter.maxConcurrent]]);
    lines.push(...this.firstToken.render('sharedllm_time_to_first_token_seconds', 'From a generation slot granted to the first token (prefill).'));
    lines.push(...this.betweenTokens.render('sharedllm_token_seconds', 'Time between two tokens of one sequence (one decode step).'));
    if (federation !== undefined) {
      metric('sharedllm_pipeline_layers', 'gauge', 'Layers per stage of the pipeline plan.', federation.plan.map((p) => [{ node_id: p.nodeId, where: p.where, first: p.first, last: p.last }, p.last - p.first]));
      metric('sharedllm_failovers_total', 'counter', 'Recoveries from a failed worker.', [[{}, federation.recoveries.length]]);
      metric('sharedllm_failover_seconds_total', 'counter', 'Time spent recovering from failed workers.', [[{}, federation.recoveries.reduce((s, r) => s + r.ms, 0) / 1000]]);
      if (federation.decodeTimings !== undefined) {
        const t = federation.decodeTimings;
        metric('sharedllm_decode_steps_sampled', 'gauge', 'Decode steps behind the medians below.', [[{}, t.steps]]);
        metric('sharedllm_decode_step_median_seconds', 'gauge', 'Median decode step: total, on the primary, on the network.', [
          [{ part: 'total' }, t.totalMs / 1000],
          [{ part: 'local' }, t.localMs / 1000],
          [{ part: 'hops' }, t.hopsMs / 1000],
        ]);
        metric('sharedllm_worker_decode_compute_median_seconds', 'gauge', 'Median compute of a decode step, per worker.', Object.entries(t.workerMs).map(([id, ms]) => [{ node_id: id }, ms / 1000]));
      }
    }
    return `${lines.join('\n')}\n`;
  }
}

/** `{a="x",b="y"}` with Prometheus' escapes, or '' for no labels. */
function labelText(labels: Record<string, string | number>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** The part of GET /v1/federation's answer (src/cli/node.ts) the metrics read; other fields are ignored. */
const FederationSchema = z.object({
  plan: z.array(z.object({ nodeId: z.string(), first: z.number(), last: z.number(), where: z.string() })),
  recoveries: z.array(z.object({ nodeId: z.string(), ms: z.number() })),
  decodeTimings: z.object({ steps: z.number(), totalMs: z.number(), localMs: z.number(), hopsMs: z.number(), workerMs: z.record(z.string(), z.number()) }).optional(),
});
type Federation = z.infer<typeof FederationSchema>;

/** The route: renders the metrics, reading the federation through the router when the node serves it. */
export function metricsRoute(metrics: ApiMetrics, limiter: ConcurrencyLimiter, router: Router): RouteHandler {
  return async (ctx) => {
    const federation = await readFederation(router, ctx);
    return { body: new PlainText(metrics.render(limiter, federation), PROMETHEUS_TEXT) };
  };
}

async function readFederation(router: Router, ctx: RequestContext): Promise<Federation | undefined> {
  let handler: RouteHandler;
  try {
    handler = router.match('GET', '/v1/federation').handler;
  } catch {
    return undefined; // a node with no federation (tests, a lone model)
  }
  const parsed = FederationSchema.safeParse((await handler(ctx)).body);
  return parsed.success ? parsed.data : undefined;
}

/** Prometheus' text exposition format. */
export const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

/** A 200 text body the listener writes as it is (not as JSON); http.ts adapts it. */
export class PlainText {
  constructor(
    readonly text: string,
    readonly contentType: string,
  ) {}
}
