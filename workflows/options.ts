/**
 * Every activity's options in one place: timeouts, retry policies and task queues. Workflows
 * import their activity proxies from here and set none of their own. Non-retryable failure
 * types come from the table in common/failures.ts.
 */
import type { ActivityOptions, LocalActivityOptions, RetryPolicy } from '@temporalio/common';
import { nonRetryableTypes } from '../common/failures.js';
import type { CycleSettings } from '../domain/collector/collection.js';

/** Store and source activities: outages are waited out with backoff; a cycle does not give up on them. */
export const storeOptions: ActivityOptions = {
  // Short: a worker that dies mid-activity is noticed quickly and the activity retried elsewhere.
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: nonRetryableTypes() },
};

/**
 * Fetching a page from a deployment's source: a source that keeps failing (down, or answering
 * what cannot be read as a page) fails the cycle after about three minutes, with the reason
 * recorded, instead of holding the deployment's collection; the next scheduled cycle tries again.
 */
export const fetchOptions: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 8,
    nonRetryableErrorTypes: nonRetryableTypes(),
  },
};

/**
 * A backfill's reads (a page of ids, the window's coverage): a scan of a deployment's interactions
 * in a window may take longer than a store call; ClickHouse outages are waited out like a cycle's.
 */
export const backfillReadOptions: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: nonRetryableTypes() },
};

/** Settings read once at a workflow's start (local: nothing to wait for). */
export const localOptions: LocalActivityOptions = { startToCloseTimeout: '10s' };

/** Gate reads and writes (baselines, statistics, decision records). */
export const gateOptions: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: nonRetryableTypes() },
};

/** Ten attempts over about ten minutes (a rollback, a notification). */
const tenAttempts: RetryPolicy = {
  initialInterval: '2s',
  backoffCoefficient: 2,
  maximumInterval: '2 minutes',
  maximumAttempts: 10,
  nonRetryableErrorTypes: nonRetryableTypes(),
};

/**
 * The rollback: the activity heartbeats while the deployer works, so a dead worker is noticed in
 * seconds; an attempt may last as long as the longest deployer timeout (1 h).
 */
export const rollbackOptions: ActivityOptions = {
  startToCloseTimeout: '65 minutes',
  heartbeatTimeout: '15 seconds',
  retry: tenAttempts,
};

/**
 * A notification: retried for about ten minutes (jittered delays, chosen by the activity), then
 * reported as failed (the gate does not wait for it); never longer than 15 minutes in all.
 */
export const notifyOptions: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: '15 minutes',
  retry: tenAttempts,
};

/** Four attempts within about a minute: sources that stay down fail the agent run (with the reason) instead of stalling a review. */
const agentRetry: RetryPolicy = {
  initialInterval: '2s',
  backoffCoefficient: 2,
  maximumInterval: '30s',
  maximumAttempts: 4,
  nonRetryableErrorTypes: nonRetryableTypes(),
};

/** The agents' other activities (listing sources, recording a run): short reads and writes. */
export const agentOptions: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  retry: agentRetry,
};

/**
 * An agent's analysis (`analyseCost` and the others, and the `gather…` activities of workflows
 * recorded before them): it collects the agent's sources first (as `collectInfra`, up to 30
 * minutes for a large FOCUS export or a Prometheus far behind), then reads the window in pages,
 * so an attempt may take long on a large estate. It heartbeats its progress (each batch or chunk
 * collected, each page read, with page, pages, sources and samples in the details), so a dead
 * worker or a hung read is noticed within two minutes, and a long analysis is told apart from a
 * stuck one by its heartbeat details.
 */
export const analysisOptions: ActivityOptions = {
  startToCloseTimeout: '45 minutes',
  heartbeatTimeout: '2 minutes',
  retry: agentRetry,
};

/**
 * The activity retry policy for LLM calls: `LLM_MAX_RETRIES` retries after the first attempt,
 * exponential backoff from 1 s up to 60 s. A 429's `retry-after` overrides the backoff through
 * the failure's `nextRetryDelay`.
 */
export function llmRetryPolicy(maxRetries: number): RetryPolicy {
  const retries = Number.isFinite(maxRetries) ? Math.max(0, Math.floor(maxRetries)) : 0;
  return {
    maximumAttempts: retries + 1,
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '60s',
    nonRetryableErrorTypes: nonRetryableTypes(),
  };
}

/** Narratives and explanations: on the rate-limited LLM queue, retried LLM_MAX_RETRIES times, then the template is used. */
export function llmOptions(settings: CycleSettings): ActivityOptions {
  return {
    taskQueue: settings.judgeTaskQueue,
    startToCloseTimeout: `${settings.llmTimeoutSec + 30}s`,
    retry: llmRetryPolicy(settings.llmMaxRetries),
  };
}

/**
 * Batch scoring: on the judge's queue (rate-limited for the LLM). Waits for the LLM's budget
 * happen inside the activity, which heartbeats; a worker that dies is noticed within the
 * heartbeat timeout and the batch retried elsewhere (it judges only what was not written yet).
 */
export function scoreOptions(settings: CycleSettings): ActivityOptions {
  return {
    taskQueue: settings.judgeTaskQueue,
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: '20 seconds',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: nonRetryableTypes() },
  };
}

/**
 * Judge checks of scoreBatch workflows recorded before batch scoring: on the judge's queue. 429s are waited out (retry-after) within two hours;
 * counted LLM failures end the check after LLM_MAX_RETRIES + 1 calls (the activity counts them
 * in its heartbeat details and then fails with LlmRetriesExhausted).
 */
export function judgeOptions(settings: CycleSettings): ActivityOptions {
  return {
    taskQueue: settings.judgeTaskQueue,
    startToCloseTimeout: `${settings.llmTimeoutSec + 10}s`,
    scheduleToCloseTimeout: '2 hours',
    heartbeatTimeout: `${settings.llmTimeoutSec + 10}s`,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: nonRetryableTypes() },
  };
}
