/**
 * The worker: one process, two task queues.
 * - `<TEMPORAL_TASK_QUEUE>`: all workflows and the store/source activities;
 * - `<TEMPORAL_TASK_QUEUE>-llm`: the judge activities, capped server-side at
 *   LLM_REQUESTS_PER_SECOND (maxTaskQueueActivitiesPerSecond) and LLM_CONCURRENCY at a time,
 *   so all workers together stay within the account's rate limit.
 */
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createCollectorActivities } from '../activities/collector/activities.js';
import { createGateActivities } from '../activities/gate/activities.js';
import { createNotifyActivities } from '../activities/gate/notify.js';
import type { ActivityDeps } from '../activities/deps.js';
import { createAgentActivities } from '../activities/agents/index.js';
import type { Config } from '../common/config.js';
import { dataConverterFor } from './codec.js';

export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

export const SHUTDOWN_GRACE = '10 seconds';
export const SHUTDOWN_FORCE = '30 seconds';

export interface WorkerSet {
  workers: Worker[];
  run(): Promise<void>;
  shutdown(): void;
}

export type WorkerDeps = ActivityDeps;

export function createActivities(deps: WorkerDeps) {
  return { ...createCollectorActivities(deps), ...createGateActivities(deps), ...createNotifyActivities(deps), ...createAgentActivities(deps) };
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
    ...(extra.workflowBundle ? {} : { workflowsPath }),
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
  return {
    workers,
    run: async () => void (await Promise.all(workers.map((w) => w.run()))),
    shutdown: () => workers.forEach((w) => w.getState() === 'RUNNING' && w.shutdown()),
  };
}
