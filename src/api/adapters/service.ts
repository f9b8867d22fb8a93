/**
 * Per-user adapters on a primary, put together: the store (users, adapters with consent, audit), the
 * files, the training jobs, the model source and the routes. `sharedllm node --role primary` starts one:
 *
 *   const adapters = openAdapters({ dataDir, engine, base, logger });
 *   createApiServer({ ..., users: adapters.users, models: [adapters.models], extraRoutes: (r) => adapters.routes(r) });
 *   ...
 *   await adapters.close();
 *
 * On open, temp files a restart left are removed, folders whose row is gone are deleted, and jobs a restart
 * interrupted resume (or are marked failed, visibly).
 */
import type { Router } from '../../http/index.ts';
import type { Logger } from '../../util/log.ts';
import type { ServedModel } from '../models.ts';
import type { UserDirectory } from '../users.ts';
import type { AdapterEngine } from './engine.ts';
import { AdapterFiles } from './files.ts';
import { type JobsConfig, TrainingJobs } from './jobs.ts';
import { type AdapterRoutesConfig, addAdapterRoutes } from './routes.ts';
import { AdapterModels } from './source.ts';
import { PrimaryStore } from './store.ts';

/** Limits of the adapters' API, one comment each. */
export const ADAPTER_DEFAULTS: AdapterRoutesConfig & JobsConfig = {
  /** Largest training text (UTF-8 bytes, files joined): a few books' worth; adapters need far less. */
  maxTextBytes: 4 << 20,
  /** Most training steps a request may ask for. */
  maxSteps: 5000,
  /** Steps when a request names none. */
  defaultSteps: 200,
  /** Highest LoRA rank a request may ask for. */
  maxRank: 64,
  /** LoRA rank when a request names none. */
  defaultRank: 4,
  /** Most files in one request. */
  maxFiles: 64,
  /** Most audit events per GET /v1/audit page. */
  maxAuditPage: 1000,
  /** Training jobs at once: one, since training shares the primary's CPU with serving. */
  maxRunning: 1,
};

export interface AdaptersOptions {
  /** The node's data dir: primary.db and adapters/ go there. */
  dataDir: string;
  engine: AdapterEngine;
  /** The node's own model (adapters are served as `<base.id>@<name>` with its generator). */
  base: ServedModel;
  logger: Logger;
  config?: Partial<typeof ADAPTER_DEFAULTS>;
  /** Called when a user deletes themselves (DELETE /v1/users/me): other personal data goes too (mixture trails). */
  onUserDeleted?: (userId: string) => void;
}

export interface Adapters {
  readonly store: PrimaryStore;
  readonly files: AdapterFiles;
  readonly users: UserDirectory;
  readonly models: AdapterModels;
  readonly jobs: TrainingJobs;
  routes(router: Router): void;
  /** Stops training (an interrupted job resumes on the next start) and closes the store. */
  close(): Promise<void>;
}

export function openAdapters(options: AdaptersOptions): Adapters {
  const config = { ...ADAPTER_DEFAULTS, ...options.config };
  const store = new PrimaryStore(options.dataDir);
  const files = new AdapterFiles(options.dataDir);
  files.removeLeftovers();
  for (const id of files.ids()) if (store.adapter(id) === undefined) files.deleteAll(id);
  const jobs = new TrainingJobs(store, files, options.engine, config, options.logger);
  const models = new AdapterModels(options.base, store, files, options.engine);
  jobs.resumeInterrupted();
  return {
    store,
    files,
    users: store,
    models,
    jobs,
    routes: (router) => addAdapterRoutes(router, { store, files, engine: options.engine, jobs, models, config, logger: options.logger, ...(options.onUserDeleted ? { onUserDeleted: options.onUserDeleted } : {}) }),
    async close() {
      await jobs.close();
      store.close();
    },
  };
}
