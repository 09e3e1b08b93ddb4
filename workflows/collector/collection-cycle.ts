/**
 * collectionCycle and scoreBatch: the data collector as durable workflows.
 * Deterministic code only: all I/O is in activities; texts never enter history (ids only).
 */
import {
  ActivityFailure,
  ApplicationFailure,
  ChildWorkflowFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  executeChild,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { CollectorActivities } from '../../activities/collector/activities.js';
import {
  addBatch,
  chunk,
  collectionCycleInputSchema,
  emptyTotals,
  SAMPLE_LIMIT,
  type BatchTotals,
  type CollectionCycleInput,
  type CycleResult,
  type CycleSettings,
  type CycleTotals,
} from '../../domain/collector/collection.js';
import { LLM_FATAL_ERROR_TYPES } from '../../common/llm-policy.js';
import { SA } from '../../common/search-attributes.js';
import { formatZodError, type Check } from '../../common/types.js';

const store = proxyActivities<CollectorActivities>({
  // Short: a worker that dies mid-activity is noticed quickly and the activity retried elsewhere.
  startToCloseTimeout: '30 seconds',
  // Store and source outages are waited out with backoff; a cycle does not give up on them.
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1 minute' },
});
const local = proxyLocalActivities<CollectorActivities>({ startToCloseTimeout: '10s' });

export const cycleStatusQuery = defineQuery<CycleTotals & { phase: string }>('status');

function failureText(e: unknown): { type?: string; message: string } {
  let cur: unknown = e;
  while (cur instanceof ActivityFailure || cur instanceof ChildWorkflowFailure) cur = cur.cause;
  if (cur instanceof ApplicationFailure) return { type: cur.type ?? undefined, message: cur.message };
  return { message: cur instanceof Error ? cur.message : String(cur) };
}

export interface ScoreBatchInput {
  deployment: string;
  ids: string[];
  checks: Check[];
  settings: CycleSettings;
}

/** Score a bounded batch: one activity per interaction and check; failures are recorded, not thrown. */
export async function scoreBatch(input: ScoreBatchInput): Promise<BatchTotals> {
  const { settings } = input;
  const judge = proxyActivities<CollectorActivities>({
    taskQueue: settings.judgeTaskQueue,
    startToCloseTimeout: `${settings.llmTimeoutSec + 10}s`,
    // 429s are waited out (retry-after) within this budget; counted LLM failures end the check
    // after LLM_MAX_RETRIES + 1 calls (see judgeCheck).
    scheduleToCloseTimeout: '2 hours',
    heartbeatTimeout: `${settings.llmTimeoutSec + 10}s`,
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      nonRetryableErrorTypes: [
        'LlmAuthError',
        'LlmModelNotFound',
        'LlmBadRequest',
        'LlmRetriesExhausted',
        'InteractionMissing',
        'JudgeUnavailable',
      ],
    },
  });
  const totals: BatchTotals = { scored: 0, failed: 0, skipped: 0, promptTokens: 0, completionTokens: 0, failureSamples: [] };
  let fatal: { type?: string; message: string } | undefined;
  await Promise.all(
    input.ids.flatMap((interactionId) =>
      input.checks.map(async (check) => {
        const key = {
          deployment: input.deployment,
          interactionId,
          check,
          judge: settings.judge,
          promptVersion: settings.promptVersions[check],
        };
        try {
          const r = await judge.judgeCheck(key);
          if (r.status === 'ok') totals.scored++;
          else totals.skipped++;
          totals.promptTokens += r.promptTokens;
          totals.completionTokens += r.completionTokens;
        } catch (e) {
          const f = failureText(e);
          if (f.type && (LLM_FATAL_ERROR_TYPES as readonly string[]).includes(f.type)) {
            fatal ??= f;
            return;
          }
          await store.recordCheckFailure({ ...key, reason: `${f.type ?? 'Error'}: ${f.message}` });
          totals.failed++;
          if (totals.failureSamples.length < SAMPLE_LIMIT) totals.failureSamples.push({ id: interactionId, check, reason: f.message });
        }
      }),
    ),
  );
  if (fatal) {
    // A configuration problem (bad key, unknown model): stop the cycle; the cursor stays put.
    throw ApplicationFailure.create({ type: fatal.type, nonRetryable: true, message: fatal.message });
  }
  return totals;
}

/**
 * One collection cycle for one deployment: page through the source from the stored cursor,
 * store interactions, score them in bounded child batches, advance the cursor after each page.
 */
export async function collectionCycle(rawInput: CollectionCycleInput): Promise<CycleResult> {
  const parsed = collectionCycleInputSchema.safeParse(rawInput);
  if (!parsed.success) {
    throw ApplicationFailure.create({ type: 'InvalidInput', nonRetryable: true, message: formatZodError(parsed.error) });
  }
  const input = parsed.data;
  const info = workflowInfo();
  const cycleId = info.workflowId;
  const totals: CycleTotals = (input.carry as CycleTotals | undefined) ?? emptyTotals();
  let phase = 'starting';
  setHandler(cycleStatusQuery, () => ({ ...totals, phase }));

  const settings = await local.cycleSettings();
  upsertSearchAttributes([
    { key: SA.deployment, value: input.deployment },
    { key: SA.kind, value: 'collect' },
  ]);
  const scheduled = info.searchAttributes?.TemporalScheduledStartTime?.[0];
  const scheduledAt = scheduled instanceof Date ? scheduled.toISOString() : typeof scheduled === 'string' ? scheduled : undefined;

  let cursor: string | null = null;
  let pagesThisRun = 0;
  for (;;) {
    phase = `fetching page ${totals.pages + 1}`;
    const page = await store.fetchPage({ deployment: input.deployment, cycleId, limit: input.pageSize });
    cursor = page.fromCursor;
    totals.pages++;
    pagesThisRun++;
    totals.fetched += page.fetched;
    totals.stored += page.stored;
    totals.bad += page.bad;
    totals.sampled += page.ids.length;
    totals.badSamples = [...totals.badSamples, ...page.badSamples].slice(0, SAMPLE_LIMIT);
    const newVersions = page.versions.filter((v) => !totals.versions.includes(v));
    if (newVersions.length) {
      totals.versions = [...totals.versions, ...newVersions];
      upsertSearchAttributes([{ key: SA.modelVersion, value: totals.versions }]);
    }

    const batches = chunk(page.ids, input.batchSize);
    for (let i = 0; i < batches.length; i += input.maxConcurrentBatches) {
      phase = `scoring page ${totals.pages}`;
      setCurrentDetails(
        `Scoring page ${totals.pages}: ${totals.scored + totals.skipped} checks done, ${totals.failed} failed, ${totals.stored} interactions stored`,
      );
      const results = await Promise.all(
        batches.slice(i, i + input.maxConcurrentBatches).map((ids, j) =>
          executeChild(scoreBatch, {
            workflowId: `${cycleId}/page-${totals.pages}/batch-${i + j + 1}`,
            args: [{ deployment: input.deployment, ids, checks: input.checks, settings }],
            typedSearchAttributes: [
              { key: SA.deployment, value: input.deployment },
              { key: SA.kind, value: 'score-batch' },
            ],
          }),
        ),
      );
      for (const r of results) addBatch(totals, r);
    }

    if (page.nextCursor !== page.fromCursor) {
      const moved = await store.advanceCursor({
        deployment: input.deployment,
        from: page.fromCursor,
        to: page.nextCursor,
        cycleId,
      });
      if (moved === 'conflict') {
        throw ApplicationFailure.create({
          type: 'CursorConflict',
          nonRetryable: true,
          message: `the cursor of '${input.deployment}' was moved by another cycle; this cycle stops (its scores are kept)`,
        });
      }
      cursor = page.nextCursor;
    }
    if (!page.hasMore || totals.fetched >= input.maxInteractions) break;
    if (workflowInfo().continueAsNewSuggested || pagesThisRun >= input.pagesPerRun) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof collectionCycle>({ ...rawInput, carry: totals });
    }
  }

  phase = 'done';
  const result: CycleResult = { ...totals, cycleId, deployment: input.deployment, judge: settings.judge, cursor };
  await store.recordCycle({ ...result, scheduledAt });
  setCurrentDetails(
    `Done: ${totals.stored} interactions stored, ${totals.scored} checks scored, ${totals.failed} failed, ${totals.bad} bad records`,
  );
  return result;
}
