/** Temporal Schedules: collection per deployment, infrastructure collection, the optimisation review. */
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { ConfigError, type Config } from '../common/config.js';
import { durationMs } from '../common/types.js';
import { collectionCycleInputSchema } from '../domain/collector/collection.js';
import { SA } from '../common/search-attributes.js';

/** Shortest schedule interval: a cycle, a review or a collection per minute at most. */
export const MIN_SCHEDULE_INTERVAL = '1m';

export const scheduleId = (deployment: string) => `collect/${deployment}`;
export const REVIEW_SCHEDULE_ID = 'optimization-review';
export const INFRA_SCHEDULE_ID = 'collect-infra';

/**
 * Create a schedule, or update it when it exists (idempotent). Returns true when created.
 * Overlap SKIP: never two runs at once (a collection cycle's runs share a cursor). Catch-up window
 * one hour: after an outage one run catches up (a cycle takes everything since its cursor).
 * Scheduled runs get ids `<workflowId>-<scheduled time>`.
 */
async function ensureWorkflowSchedule(
  client: Client,
  config: Config,
  o: {
    id: string;
    workflowType: string;
    workflowId: string;
    args: unknown[];
    every: string;
    paused?: boolean;
    searchAttributes: Array<{ key: typeof SA.deployment | typeof SA.kind; value: string }>;
    summary: string;
  },
): Promise<boolean> {
  const action = {
    type: 'startWorkflow' as const,
    workflowType: o.workflowType,
    taskQueue: config.temporal.taskQueue,
    workflowId: o.workflowId,
    args: o.args,
    typedSearchAttributes: o.searchAttributes,
    staticSummary: o.summary,
  };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour', pauseOnFailure: false };
  const ms = durationMs(o.every);
  if (!(ms >= durationMs(MIN_SCHEDULE_INTERVAL))) {
    throw new ConfigError(`schedule interval '${o.every}' is too short or not a duration: at least ${MIN_SCHEDULE_INTERVAL} (e.g. 15m)`);
  }
  const spec = { intervals: [{ every: o.every }] };
  const paused = !!o.paused;
  const update = () =>
    client.schedule.getHandle(o.id).update((prev) => ({ ...prev, spec, action, policies, state: { ...prev.state, paused } }));
  try {
    await update();
    return false;
  } catch (e) {
    if (!(e instanceof ScheduleNotFoundError)) throw e;
  }
  try {
    await client.schedule.create({
      scheduleId: o.id,
      spec,
      action,
      policies,
      state: { paused, note: paused ? 'created paused' : undefined },
    });
    return true;
  } catch (e) {
    // Created by another caller since the update above (two creates at once): update that one.
    if (!(e instanceof ScheduleAlreadyRunning)) throw e;
    await update();
    return false;
  }
}

/** One collection cycle of a deployment every interval. */
export async function ensureSchedule(
  client: Client,
  config: Config,
  o: { deployment: string; every: string; paused?: boolean; maxConcurrentBatches?: number },
): Promise<boolean> {
  // A cycle may spend the LLM budget of its own interval (then the next one starts).
  const budgetMinutes = Math.min(1440, Math.max(1, Math.round(durationMs(o.every) / 60_000)));
  const input = collectionCycleInputSchema.parse({ deployment: o.deployment, budgetMinutes, maxConcurrentBatches: o.maxConcurrentBatches });
  return ensureWorkflowSchedule(client, config, {
    id: scheduleId(o.deployment),
    workflowType: 'collectionCycle',
    workflowId: scheduleId(o.deployment),
    args: [
      {
        deployment: input.deployment,
        budgetMinutes,
        ...(o.maxConcurrentBatches ? { maxConcurrentBatches: input.maxConcurrentBatches } : {}),
      },
    ],
    every: o.every,
    paused: o.paused,
    searchAttributes: [
      { key: SA.deployment, value: o.deployment },
      { key: SA.kind, value: 'collect' },
    ],
    summary: `Scheduled collection cycle for ${o.deployment}`,
  });
}

/** The optimisation review on a schedule (e.g. daily). */
export function ensureReviewSchedule(
  client: Client,
  config: Config,
  o: { every: string; agents?: string[]; days?: number },
): Promise<boolean> {
  return ensureWorkflowSchedule(client, config, {
    id: REVIEW_SCHEDULE_ID,
    workflowType: 'optimizationReview',
    workflowId: 'review/scheduled',
    args: [{ agents: o.agents, days: o.days }],
    every: o.every,
    searchAttributes: [{ key: SA.kind, value: 'review' }],
    summary: 'Scheduled optimisation review',
  });
}

/** Infrastructure collection (FOCUS exports, metrics) on a schedule (e.g. every 5 minutes). */
export function ensureInfraSchedule(client: Client, config: Config, o: { every: string }): Promise<boolean> {
  return ensureWorkflowSchedule(client, config, {
    id: INFRA_SCHEDULE_ID,
    workflowType: 'collectInfra',
    workflowId: 'collect-infra/scheduled',
    args: [],
    every: o.every,
    searchAttributes: [{ key: SA.kind, value: 'collect-infra' }],
    summary: 'Scheduled infrastructure collection',
  });
}
