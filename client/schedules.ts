/** One Temporal Schedule per deployment starting a collection cycle every interval. */
import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { Config } from '../common/config.js';
import { collectionCycleInputSchema } from '../common/collection.js';
import { SA } from '../common/search-attributes.js';

export const scheduleId = (deployment: string) => `collect/${deployment}`;

/**
 * Create the deployment's schedule, or update it when it exists (idempotent). Returns true when created.
 * Overlap SKIP: never two cycles of one deployment at once (they share a cursor). Catch-up window
 * one hour: after an outage one cycle runs and picks up everything since the cursor.
 * Scheduled runs get ids `collect/<deployment>-<scheduled time>`.
 */
export async function ensureSchedule(
  client: Client,
  config: Config,
  o: { deployment: string; every: string; paused?: boolean },
): Promise<boolean> {
  const input = collectionCycleInputSchema.parse({ deployment: o.deployment });
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'collectionCycle',
    taskQueue: config.temporal.taskQueue,
    workflowId: scheduleId(o.deployment),
    args: [{ deployment: input.deployment }],
    typedSearchAttributes: [
      { key: SA.deployment, value: o.deployment },
      { key: SA.kind, value: 'collect' },
    ],
    staticSummary: `Scheduled collection cycle for ${o.deployment}`,
  };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour', pauseOnFailure: false };
  const spec = { intervals: [{ every: o.every }] };
  const paused = !!o.paused;
  try {
    await client.schedule.getHandle(scheduleId(o.deployment)).update((prev) => ({
      ...prev,
      spec,
      action,
      policies,
      state: { ...prev.state, paused },
    }));
    return false;
  } catch (e) {
    if (!(e instanceof ScheduleNotFoundError)) throw e;
  }
  await client.schedule.create({
    scheduleId: scheduleId(o.deployment),
    spec,
    action,
    policies,
    state: { paused, note: paused ? 'created paused' : undefined },
  });
  return true;
}

export const REVIEW_SCHEDULE_ID = 'optimization-review';

/** The optimisation review on a schedule (e.g. daily). Returns true when created. */
export async function ensureReviewSchedule(
  client: Client,
  config: Config,
  o: { every: string; agents?: string[]; days?: number },
): Promise<boolean> {
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'optimizationReview',
    taskQueue: config.temporal.taskQueue,
    workflowId: 'review/scheduled',
    args: [{ agents: o.agents, days: o.days }],
    typedSearchAttributes: [{ key: SA.kind, value: 'review' }],
    staticSummary: 'Scheduled optimisation review',
  };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour', pauseOnFailure: false };
  const spec = { intervals: [{ every: o.every }] };
  try {
    await client.schedule.getHandle(REVIEW_SCHEDULE_ID).update((prev) => ({ ...prev, spec, action, policies }));
    return false;
  } catch (e) {
    if (!(e instanceof ScheduleNotFoundError)) throw e;
  }
  await client.schedule.create({ scheduleId: REVIEW_SCHEDULE_ID, spec, action, policies });
  return true;
}
