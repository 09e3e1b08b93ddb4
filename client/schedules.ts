/** Temporal Schedules: collection per deployment, infrastructure collection, the optimisation review. */
import { createHash } from 'node:crypto';
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

/** What `schedule create` did: created, or updated with the changes in words (empty: nothing changed). */
export interface ScheduleOutcome {
  created: boolean;
  changes: string[];
}

const HOUR_MS = 3_600_000;

/**
 * Overlap SKIP: never two runs at once (a collection cycle's runs share a cursor). Catch-up window
 * one hour, or one interval when that is longer: after an outage of the Temporal server one run
 * catches up (the others of the outage are skipped while it runs, and a cycle takes everything
 * since its cursor anyway), and a daily schedule whose run fell into the outage still runs.
 */
export function schedulePolicies(everyMs: number) {
  return { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: Math.max(HOUR_MS, everyMs), pauseOnFailure: false };
}

/**
 * Where in its interval a deployment's collection runs: a fixed offset from a hash of the
 * deployment's name, in whole seconds below the interval. Interval schedules without an offset
 * all fire at the same epoch-aligned instants (every 15 minutes on :00, :15, ...), so a fleet of
 * deployments on one interval started every cycle in the same second, all reading their sources,
 * ClickHouse and the LLM budget at once. A hash rather than a random delay keeps a deployment's
 * times predictable and the same on every `schedule create` (Jenkins' `H` does the same).
 */
export function spreadOffsetMs(deployment: string, everyMs: number): number {
  const seconds = Math.floor(everyMs / 1000);
  if (seconds < 2) return 0;
  const h = createHash('sha256').update(deployment).digest().readUInt32BE(0);
  return Math.floor((h / 2 ** 32) * seconds) * 1000;
}

/** 90000 → "90s", 3600000 → "1h", 86400000 → "1d". */
export function formatInterval(ms: number): string {
  for (const [unit, n] of [
    ['d', 86_400_000],
    ['h', HOUR_MS],
    ['m', 60_000],
  ] as const) {
    if (ms >= n && ms % n === 0) return `${ms / n}${unit}`;
  }
  return `${Math.round(ms / 1000)}s`;
}

/** An offset into an interval: 0 → "+0s", 58438000 → "+16h13m58s". */
export function formatOffset(ms: number): string {
  let rest = Math.round(ms / 1000);
  let text = '';
  for (const [unit, n] of [
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (rest >= n) text += `${Math.floor(rest / n)}${unit}`;
    rest %= n;
  }
  return `+${text}${rest || !text ? `${rest}s` : ''}`;
}

const ARG_LABELS: Record<string, string> = {
  budgetMinutes: 'LLM budget per cycle (minutes)',
  maxConcurrentBatches: 'max concurrent batches',
};

/** A schedule as far as `schedule create` sets it: interval, paused, the first workflow argument, catch-up window. */
export interface ScheduleSettings {
  everyMs?: number;
  paused?: boolean;
  arg?: unknown;
  catchupWindowMs?: number;
  /** Where in each interval the runs fall (0 or absent: on the interval's epoch-aligned instants). */
  offsetMs?: number;
}

/** The differences between a schedule as it was and as it is updated to, in words (e.g. "every 15m → 30m"). */
export function scheduleChanges(prev: ScheduleSettings, next: ScheduleSettings): string[] {
  const out: string[] = [];
  const fmt = (v: unknown) => (v === undefined ? 'default' : JSON.stringify(v));
  if (prev.everyMs !== next.everyMs) {
    out.push(
      `every ${prev.everyMs === undefined ? '?' : formatInterval(prev.everyMs)} → ${next.everyMs === undefined ? '?' : formatInterval(next.everyMs)}`,
    );
  }
  // A new interval moves the offset with it; said only when the interval stays.
  if (prev.everyMs === next.everyMs && (prev.offsetMs ?? 0) !== (next.offsetMs ?? 0)) {
    out.push(`runs at ${formatOffset(prev.offsetMs ?? 0)} → ${formatOffset(next.offsetMs ?? 0)} into each interval`);
  }
  if (!!prev.paused !== !!next.paused) out.push(next.paused ? 'running → paused' : 'paused → running (unpaused)');
  const a = (prev.arg && typeof prev.arg === 'object' ? prev.arg : {}) as Record<string, unknown>;
  const b = (next.arg && typeof next.arg === 'object' ? next.arg : {}) as Record<string, unknown>;
  for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])]) {
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) out.push(`${ARG_LABELS[k] ?? k} ${fmt(a[k])} → ${fmt(b[k])}`);
  }
  if (prev.catchupWindowMs !== undefined && prev.catchupWindowMs !== next.catchupWindowMs) {
    out.push(`catch-up window ${formatInterval(prev.catchupWindowMs)} → ${formatInterval(next.catchupWindowMs ?? 0)}`);
  }
  return out;
}

/**
 * Create a schedule, or update it when it exists (idempotent), saying what the update changed.
 * Policies: schedulePolicies. Scheduled runs get ids `<workflowId>-<scheduled time>`.
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
    /** Offset of the runs within each interval (ms); none: the interval's epoch-aligned instants. */
    offsetMs?: number;
    paused?: boolean;
    searchAttributes: Array<{ key: typeof SA.deployment | typeof SA.kind; value: string }>;
    summary: string;
  },
): Promise<ScheduleOutcome> {
  const action = {
    type: 'startWorkflow' as const,
    workflowType: o.workflowType,
    taskQueue: config.temporal.taskQueue,
    workflowId: o.workflowId,
    args: o.args,
    typedSearchAttributes: o.searchAttributes,
    staticSummary: o.summary,
  };
  const ms = durationMs(o.every);
  if (!(ms >= durationMs(MIN_SCHEDULE_INTERVAL))) {
    throw new ConfigError(`schedule interval '${o.every}' is too short or not a duration: at least ${MIN_SCHEDULE_INTERVAL} (e.g. 15m)`);
  }
  const policies = schedulePolicies(ms);
  const spec = { intervals: [{ every: o.every, ...(o.offsetMs ? { offset: o.offsetMs } : {}) }] };
  const paused = !!o.paused;
  let changes: string[] = [];
  const update = async (): Promise<ScheduleOutcome> => {
    await client.schedule.getHandle(o.id).update((prev) => {
      const p = prev as Partial<typeof prev>;
      const every = p.spec?.intervals?.[0]?.every;
      const offset = p.spec?.intervals?.[0]?.offset;
      const prevArgs = p.action && 'args' in p.action ? (p.action.args as unknown[] | undefined) : undefined;
      const window = p.policies?.catchupWindow;
      changes = scheduleChanges(
        {
          everyMs: typeof every === 'number' ? every : every === undefined ? undefined : durationMs(String(every)),
          paused: p.state?.paused,
          arg: prevArgs?.[0],
          catchupWindowMs: typeof window === 'number' ? window : undefined,
          offsetMs: typeof offset === 'number' ? offset : offset === undefined ? undefined : durationMs(String(offset)),
        },
        { everyMs: ms, paused, arg: o.args[0], catchupWindowMs: policies.catchupWindow, offsetMs: o.offsetMs },
      );
      return { ...prev, spec, action, policies, state: { ...prev.state, paused } };
    });
    return { created: false, changes };
  };
  try {
    return await update();
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
    return { created: true, changes: [] };
  } catch (e) {
    // Created by another caller since the update above (two creates at once): update that one.
    if (!(e instanceof ScheduleAlreadyRunning)) throw e;
    return update();
  }
}

/** One collection cycle of a deployment every interval: true when created (upsertSchedule says what changed). */
export async function ensureSchedule(
  client: Client,
  config: Config,
  o: { deployment: string; every: string; paused?: boolean; maxConcurrentBatches?: number },
): Promise<boolean> {
  return (await upsertSchedule(client, config, o)).created;
}

/** The collection schedule of a deployment, created or updated to exactly these options. */
export async function upsertSchedule(
  client: Client,
  config: Config,
  o: { deployment: string; every: string; paused?: boolean; maxConcurrentBatches?: number },
): Promise<ScheduleOutcome> {
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
    offsetMs: spreadOffsetMs(o.deployment, durationMs(o.every)),
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
): Promise<ScheduleOutcome> {
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
export function ensureInfraSchedule(client: Client, config: Config, o: { every: string }): Promise<ScheduleOutcome> {
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

/**
 * Start a run of a schedule now, unless one of its runs still runs: a trigger would otherwise
 * start a second cycle of the deployment beside it (Temporal triggers allow all overlaps unless
 * told otherwise). Answers the id of the run that still runs when none was started.
 */
export async function triggerSchedule(client: Client, id: string): Promise<{ started: true } | { started: false; running: string }> {
  const h = client.schedule.getHandle(id);
  const running = (await h.describe()).info.runningActions[0]?.workflow.workflowId;
  if (running) return { started: false, running };
  // The schedule's own policy, in case a run started since the describe above.
  await h.trigger(ScheduleOverlapPolicy.SKIP);
  return { started: true };
}
