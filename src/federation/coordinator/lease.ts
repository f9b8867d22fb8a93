/**
 * A node's lease with the coordinator: register (signed), then heartbeat every interval the
 * coordinator asks for, in the background, until stopped.
 *
 * - 404 unknown_node (the coordinator lost us, declared us dead, or restarted empty): register again at
 *   once with incarnation + 1.
 * - Network errors and 5xx: retry with exponential backoff capped at retryMaxDelayMs; each delay is
 *   logged.
 * - Any other 4xx (stale incarnation, wrong join token, identity mismatch, invalid registration) is
 *   fatal: retrying cannot fix it. The lease stops and onFatal is called.
 */
import { lanConfig } from '../config.ts';
import type { FederationConfig } from '../config.ts';
import { PROTOCOL_VERSION } from '../protocol.ts';
import type { NodeRegistration, PlacedSpan, RegisterResponse, TrainingProgress, UnsignedNodeRegistration } from '../protocol.ts';
import type { CoordinatorClient } from './client.ts';
import { CoordinatorError } from './client-errors.ts';
import { signBody } from '../identity.ts';
import type { Identity } from '../identity.ts';
import { silentLogger } from '../../util/log.ts';
import type { Logger } from '../../util/log.ts';

/** What a node reports at each heartbeat; a primary adds its placement of layers (for the dashboard). */
export interface NodeStatus {
  freeMemoryBytes: number;
  load: number;
  spans?: PlacedSpan[];
  /** A DiLoCo server adds its job's progress (for the dashboard). */
  training?: TrainingProgress;
}

export interface JoinOptions {
  identity: Identity;
  /** What the node advertises; incarnation, publicKey, protocolVersion and signature are filled in. */
  registration: Omit<UnsignedNodeRegistration, 'incarnation' | 'publicKey' | 'protocolVersion'>;
  /** Sampled before each registration and heartbeat (default: the registration's memory, load 0). */
  status?: () => NodeStatus;
  /** First incarnation. Default Date.now(): larger than that of any earlier process of this node. */
  incarnation?: number;
  /** Retry timing (default lanConfig()); the heartbeat interval the coordinator sends back wins. */
  config?: Pick<FederationConfig, 'heartbeatIntervalMs' | 'retryBaseDelayMs' | 'retryMaxDelayMs'>;
  logger?: Logger;
  /** Called once when the lease stops on a fatal error. */
  onFatal?: (error: Error) => void;
}

export type LeaseState = 'registering' | 'registered' | 'stopped';

export interface NodeLease {
  readonly nodeId: string;
  /** Current incarnation; grows by one on each re-registration. */
  readonly incarnation: number;
  readonly state: LeaseState;
  /** Successful registrations so far (1 + re-registrations). */
  readonly registrations: number;
  /** Resolves on the first successful registration; rejects if the lease stops before one. */
  readonly registered: Promise<RegisterResponse>;
  /** Stops heartbeating, without telling the coordinator (it will notice by the timers). */
  stop(): Promise<void>;
  /** Stops heartbeating and announces the leave. Throws when the coordinator cannot be told. */
  leave(): Promise<void>;
}

export function startLease(client: CoordinatorClient, options: JoinOptions): NodeLease {
  return new Lease(client, options);
}

class Lease implements NodeLease {
  readonly nodeId: string;
  incarnation: number;
  state: LeaseState = 'registering';
  registrations = 0;
  readonly registered: Promise<RegisterResponse>;

  private readonly config: NonNullable<JoinOptions['config']>;
  private readonly logger: Logger;
  private heartbeatIntervalMs: number;
  private beat = 0;
  private stopped = false;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private resolveRegistered!: (response: RegisterResponse) => void;
  private rejectRegistered!: (error: Error) => void;
  private readonly loop: Promise<void>;

  constructor(
    private readonly client: CoordinatorClient,
    private readonly options: JoinOptions,
  ) {
    this.nodeId = options.registration.nodeId;
    this.incarnation = options.incarnation ?? Date.now();
    this.config = options.config ?? lanConfig();
    this.logger = options.logger ?? silentLogger;
    this.heartbeatIntervalMs = this.config.heartbeatIntervalMs;
    this.registered = new Promise((resolve, reject) => {
      this.resolveRegistered = resolve;
      this.rejectRegistered = reject;
    });
    this.registered.catch(() => {}); // callers that never await it must not crash the process
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.wake?.();
    await this.loop;
  }

  async leave(): Promise<void> {
    await this.stop();
    await this.client.leave(signBody(this.options.identity, { nodeId: this.nodeId, incarnation: this.incarnation }));
    this.logger.info('lease_left', { nodeId: this.nodeId, incarnation: this.incarnation });
  }

  private async run(): Promise<void> {
    let needRegister = true;
    let failures = 0;
    while (!this.stopped) {
      try {
        if (needRegister) {
          await this.register();
          needRegister = false;
        } else {
          await this.heartbeat();
        }
        failures = 0;
        await this.sleep(this.heartbeatIntervalMs);
      } catch (error) {
        if (this.stopped) break;
        const err = error as Error;
        if (err instanceof CoordinatorError && err.code === 'unknown_node') {
          this.incarnation += 1;
          needRegister = true;
          this.state = 'registering';
          this.logger.warn('lease_reregister', { nodeId: this.nodeId, incarnation: this.incarnation, reason: err.message });
          continue;
        }
        if (err instanceof CoordinatorError && err.status >= 400 && err.status < 500 && err.status !== 429) {
          this.fail(err);
          break;
        }
        failures += 1;
        const delayMs = Math.min(this.config.retryBaseDelayMs * 2 ** (failures - 1), this.config.retryMaxDelayMs);
        this.logger.warn('lease_retry', { nodeId: this.nodeId, failures, delayMs, error: err.message });
        await this.sleep(delayMs);
      }
    }
    this.state = 'stopped';
    this.rejectRegistered(new Error(`lease of ${this.nodeId} stopped before registering`));
  }

  private async register(): Promise<void> {
    const status = this.sample();
    const body: Omit<NodeRegistration, 'signature'> = {
      ...this.options.registration,
      freeMemoryBytes: status.freeMemoryBytes,
      incarnation: this.incarnation,
      publicKey: this.options.identity.publicKey,
      protocolVersion: PROTOCOL_VERSION,
    };
    const response = await this.client.register(signBody(this.options.identity, body));
    this.heartbeatIntervalMs = response.heartbeatIntervalMs;
    this.registrations += 1;
    this.state = 'registered';
    this.logger.info('lease_registered', { nodeId: this.nodeId, incarnation: this.incarnation, coordinator: response.coordinator.id });
    this.resolveRegistered(response);
  }

  private async heartbeat(): Promise<void> {
    const status = this.sample();
    // Beats only increase (the coordinator refuses replays); wall-clock based so a restarted process continues upward.
    this.beat = Math.max(this.beat + 1, Date.now());
    const body = { nodeId: this.nodeId, incarnation: this.incarnation, freeMemoryBytes: status.freeMemoryBytes, load: status.load, beat: this.beat, ...(status.spans ? { spans: status.spans } : {}), ...(status.training ? { training: status.training } : {}) };
    await this.client.heartbeat(signBody(this.options.identity, body));
  }

  private sample(): NodeStatus {
    return this.options.status?.() ?? { freeMemoryBytes: this.options.registration.freeMemoryBytes, load: 0 };
  }

  private fail(error: Error): void {
    this.stopped = true;
    this.state = 'stopped';
    this.logger.error('lease_failed', { nodeId: this.nodeId, incarnation: this.incarnation, error: error.message });
    this.rejectRegistered(error);
    this.options.onFatal?.(error);
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    }).then(() => {
      this.wake = undefined;
      this.timer = undefined;
    });
  }
}
