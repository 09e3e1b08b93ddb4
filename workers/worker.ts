/**
 * The worker: one process, two task queues.
 * - `<TEMPORAL_TASK_QUEUE>`: all workflows and the store/source activities;
 * - `<TEMPORAL_TASK_QUEUE>-llm`: the judge activities, capped server-side at
 *   LLM_REQUESTS_PER_SECOND (maxTaskQueueActivitiesPerSecond) and LLM_CONCURRENCY at a time,
 *   so all workers together stay within the account's rate limit.
 */
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  DefaultLogger,
  type NativeConnection,
  Runtime,
  Worker,
  type LogLevel,
  type LogMetadata,
  type WorkerOptions,
} from '@temporalio/worker';
import { createCollectorActivities } from '../activities/collector/activities.js';
import { createGateActivities } from '../activities/gate/activities.js';
import { createNotifyActivities } from '../activities/gate/notify.js';
import type { ActivityDeps } from '../activities/deps.js';
import { serveMetrics, watchCycleLag, watchLlmBudget, type MetricsServer } from '../activities/metrics.js';
import { newestScoredInteractions } from '../activities/storage/clickhouse/score-queries.js';
import { watchWorkerDrift } from '../activities/storage/postgres/workers.js';
import { createAgentActivities } from '../activities/agents/index.js';
import type { Config } from '../common/config.js';
import { dataConverterFor } from './codec.js';

export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
const productRoot = fileURLToPath(new URL('..', import.meta.url));

/**
 * The workflow bundler compiles TypeScript except under node_modules; installed as a package, the
 * product's own workflows are under node_modules and must be compiled all the same.
 */
export const bundlerOptions: NonNullable<WorkerOptions['bundlerOptions']> = {
  webpackConfigHook: (config) => {
    for (const rule of config.module?.rules ?? []) {
      if (rule && typeof rule === 'object' && String(rule.test) === String(/\.ts$/)) {
        rule.exclude = (path: string) => (path.startsWith(productRoot) ? path.slice(productRoot.length) : path).includes('node_modules');
      }
    }
    return config;
  },
};

export const SHUTDOWN_GRACE = '10 seconds';
export const SHUTDOWN_FORCE = '30 seconds';

export interface WorkerSet {
  workers: Worker[];
  /** The Prometheus endpoint (OPTIINFRA_METRICS_PORT), closed when the workers stop. */
  metrics?: MetricsServer;
  run(): Promise<void>;
  shutdown(): void;
}

export type WorkerDeps = ActivityDeps;

export function createActivities(deps: WorkerDeps) {
  return {
    ...createCollectorActivities(deps),
    ...createGateActivities(deps),
    ...createNotifyActivities(deps),
    ...createAgentActivities(deps),
  };
}

export async function createWorkers(
  config: Config,
  connection: NativeConnection,
  deps: WorkerDeps,
  extra: Partial<WorkerOptions> = {},
): Promise<WorkerSet> {
  const activities = createActivities(deps);
  // A prebuilt workflow bundle (OPTIINFRA_WORKFLOW_BUNDLE, from bundleWorkflowCode) skips the
  // bundling step at start-up; otherwise the workflows are bundled from source.
  const prebuilt = process.env.OPTIINFRA_WORKFLOW_BUNDLE;
  if (prebuilt && !extra.workflowBundle) extra = { ...extra, workflowBundle: { codePath: prebuilt } };
  // Payload encryption when OPTIINFRA_ENCRYPTION_KEYS is set (same codec as the client's).
  const dataConverter = dataConverterFor(config);
  const base = {
    connection,
    namespace: config.temporal.namespace,
    ...(dataConverter ? { dataConverter } : {}),
    // On SIGTERM/SIGINT: running activities get SHUTDOWN_GRACE to finish (scoring batches write
    // what they judged and stop), then are cancelled; the worker is gone after SHUTDOWN_FORCE at
    // the latest, whatever an activity does. Unfinished work is retried by another worker.
    shutdownGraceTime: SHUTDOWN_GRACE,
    shutdownForceTime: SHUTDOWN_FORCE,
  };
  const main = await Worker.create({
    ...base,
    taskQueue: config.temporal.taskQueue,
    ...(extra.workflowBundle ? {} : { workflowsPath, bundlerOptions }),
    activities,
    maxConcurrentActivityTaskExecutions: 50,
    ...extra,
  });
  const llm = await Worker.create({
    ...base,
    taskQueue: config.temporal.llmTaskQueue,
    // Every activity that calls the LLM, and nothing else.
    activities: {
      scoreInteractions: activities.scoreInteractions,
      judgeCheck: activities.judgeCheck,
      explainWithLlm: activities.explainWithLlm,
      narrateWithLlm: activities.narrateWithLlm,
      answerWithLlm: activities.answerWithLlm,
    },
    maxTaskQueueActivitiesPerSecond: config.llm.requestsPerSecond,
    maxConcurrentActivityTaskExecutions: config.llm.concurrency,
  });
  const workers = [main, llm];
  // Metrics read when scraped: the cycle lag from ClickHouse, the LLM budget's headroom.
  watchCycleLag(() => newestScoredInteractions(deps.ch));
  if (deps.llm) watchLlmBudget(deps.llm.model, deps.llm.pacer);
  const metrics = config.metrics ? await serveMetrics({ ...config.metrics, temporalSdkUrl: temporalSdkMetricsUrl }) : undefined;
  return {
    workers,
    metrics,
    run: async () => {
      // Recorded in PostgreSQL while running, with a warning for each setting in which another
      // worker of the task queue differs (a warning only: the worker runs all the same).
      const drift = watchWorkerDrift(deps.db, config, main.options.identity);
      try {
        await Promise.all(workers.map((w) => w.run()));
      } finally {
        await drift.stop();
        await metrics?.close();
      }
    },
    shutdown: () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    },
  };
}

let temporalSdkMetricsUrl: string | undefined;

/**
 * The SDK's logger at `level`, without the notice that a worker has no workflows to poll for:
 * the LLM queue's worker runs activities only, by design, and says so at every start.
 */
export class WorkerLogger extends DefaultLogger {
  override log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (message.startsWith('No workflows registered')) return;
    super.log(level, message, meta);
  }
}

/**
 * Install the Temporal SDK's runtime for a worker process: its logger (WorkerLogger) and, with
 * OPTIINFRA_METRICS_PORT set, its Prometheus exporter on a free loopback port, whose metrics the
 * worker's endpoint serves after the product's (one scrape target per worker). Must run before any
 * NativeConnection or Worker of the process is created; returns the SDK's metrics URL, if any.
 */
export async function installTelemetry(config: Config): Promise<string | undefined> {
  if (!config.metrics) {
    Runtime.install({ logger: new WorkerLogger('INFO') });
    return undefined;
  }
  const port = await freeLoopbackPort();
  Runtime.install({
    logger: new WorkerLogger('INFO'),
    telemetryOptions: {
      metrics: {
        prometheus: { bindAddress: `127.0.0.1:${port}`, countersTotalSuffix: true, unitSuffix: true, useSecondsForDurations: true },
      },
    },
  });
  temporalSdkMetricsUrl = `http://127.0.0.1:${port}/metrics`;
  return temporalSdkMetricsUrl;
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
