/**
 * collectionCycle: the data collector (LLM integration point 5) as a durable workflow; its
 * batches are scoreBatch children (score-batch.ts).
 * Deterministic code only: all I/O is in activities; texts never enter history (ids only).
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  ContinueAsNew,
  executeChild,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { CollectorActivities } from '../../activities/collector/activities.js';
import { raise, rootCause } from '../../common/failures.js';
import { SA } from '../../common/search-attributes.js';
import { formatZodError } from '../../common/types.js';
import {
  addBatch,
  carriedTotals,
  chunk,
  collectionCycleInputSchema,
  coverageNote,
  inParallel,
  SAMPLE_LIMIT,
  searchableVersions,
  type CollectionCycleInput,
  type CycleResult,
  type CycleTotals,
} from '../../domain/collector/collection.js';
import { fetchOptions, localOptions, scoreOptions, storeOptions } from '../options.js';
import { scoreBatch } from './score-batch.js';

const store = proxyActivities<CollectorActivities>(storeOptions);
const source = proxyActivities<CollectorActivities>(fetchOptions);
const local = proxyLocalActivities<CollectorActivities>(localOptions);

export const cycleStatusQuery = defineQuery<CycleTotals & { phase: string }>('status');

/**
 * Patch id: from this change on, a cycle takes a lease on its deployment and scores each page in
 * batch activities (texts read and scores written per batch); cycles recorded before it scored
 * through scoreBatch child workflows, one activity per check, and replay so.
 */
export const SCORE_IN_ACTIVITIES = 'score-in-batch-activities';

/**
 * Patch id: from this change on, a cycle refused by its deployment's lease (another cycle of it
 * runs) is recorded as skipped and completes with a skipped result naming that cycle; cycles
 * recorded before failed with CycleAlreadyRunning, and replay so.
 */
export const LEASE_REFUSAL_SKIPS = 'lease-refusal-completes-skipped';

/**
 * Patch id: from this change on, a page whose sample the LLM budget limited gets top-up passes
 * while the budget window lasts (the next slice of the same sample, planned on what this cycle's
 * calls cost); cycles recorded before judged one planned sample per page, and replay so.
 */
export const COVERAGE_TOP_UP = 'coverage-top-up';
/** Top-up passes of one page at most (each plans on fresher costs, so one or two usually do). */
const MAX_TOP_UPS = 3;

/** batchSize of cycles recorded before SCORE_IN_ACTIVITIES, when their input did not set one. */
const LEGACY_BATCH_SIZE = 50;

/**
 * One collection cycle for one deployment: page through the source from the stored cursor,
 * store interactions, score them in bounded batches, advance the cursor after each page.
 */
export async function collectionCycle(rawInput: CollectionCycleInput): Promise<CycleResult> {
  const parsed = collectionCycleInputSchema.safeParse(rawInput);
  if (!parsed.success) {
    raise('InvalidInput', formatZodError(parsed.error));
  }
  const input = parsed.data;
  const info = workflowInfo();
  const cycleId = info.workflowId;
  const totals = carriedTotals(input.carry);
  let phase = 'starting';
  setHandler(cycleStatusQuery, () => ({ ...totals, phase }));

  const settings = await local.cycleSettings();
  upsertSearchAttributes([
    { key: SA.deployment, value: input.deployment },
    { key: SA.kind, value: 'collect' },
  ]);
  const scheduled = info.searchAttributes?.TemporalScheduledStartTime?.[0];
  const scheduledAt = scheduled instanceof Date ? scheduled.toISOString() : typeof scheduled === 'string' ? scheduled : undefined;
  // When the cycle began its work (its first workflow task, carried across continue-as-new): a
  // cycle started late by a worker or server outage shows it against scheduledAt.
  const startedAtMs = input.startedAt ?? Date.now();
  const startedAt = new Date(startedAtMs).toISOString();
  const batched = patched(SCORE_IN_ACTIVITIES);
  const judge = proxyActivities<CollectorActivities>(scoreOptions(settings));
  const lease = { deployment: input.deployment, cycleId };
  let cursor: string | null = null;
  let pagesThisRun = 0;
  // The budget window is the cycle's, not each page's: later pages get what is left of it.
  const windowEndsAt = input.windowEndsAt ?? Date.now() + input.budgetMinutes * 60_000;
  /** The limit that left interactions unscored, in words (for the coverage note). */
  let limitedBy = totals.coverageNote ? totals.coverageNote.replace(/^.*limited by the /, '') : 'LLM budget';
  try {
    if (batched) await store.claimCycle(lease);
    for (;;) {
      phase = `fetching page ${totals.pages + 1}`;
      // Never more than maxInteractions in all, even when it is below the page size.
      const limit = Math.max(1, Math.min(input.pageSize, input.maxInteractions - totals.fetched));
      const page = await source.fetchPage({ deployment: input.deployment, cycleId, limit });
      cursor = page.fromCursor;
      totals.pages++;
      pagesThisRun++;
      totals.fetched += page.fetched;
      totals.stored += page.stored;
      totals.bad += page.bad;
      totals.conflicts += page.conflicts ?? 0;
      totals.sampled += page.ids.length;
      totals.badSamples = [...totals.badSamples, ...page.badSamples].slice(0, SAMPLE_LIMIT);
      const newVersions = page.versions.filter((v) => !totals.versions.includes(v));
      if (newVersions.length) {
        const listed = searchableVersions(totals.versions);
        totals.versions = [...totals.versions, ...newVersions];
        const listing = searchableVersions(totals.versions);
        if (listing.length !== listed.length) upsertSearchAttributes([{ key: SA.modelVersion, value: listing }]);
      }

      phase = `scoring page ${totals.pages}`;
      setCurrentDetails(
        `Scoring page ${totals.pages}: ${totals.scored + totals.skipped} checks done, ${totals.failed} failed, ${totals.stored} interactions stored`,
      );
      if (batched) {
        // The LLM's budget decides how much of the page is judged (all of it, when it can), over
        // what is left of the window, at what this cycle's judged checks cost so far (tokens that
        // count toward the limits); a top-up plans the ids not covered by `coveredRate`.
        const planPage = (minutes: number, coveredRate?: number) =>
          store.planCoverage({
            deployment: input.deployment,
            ids: page.ids,
            checks: input.checks,
            settings,
            minutes,
            observed: {
              tokens: totals.promptTokens - totals.cachedTokens + totals.completionTokens,
              checks: totals.scored + totals.failed,
            },
            coveredRate,
          });
        const plan =
          settings.judge === 'offline' || !page.ids.length
            ? undefined
            : await planPage(Math.min(input.budgetMinutes, Math.max(0, (windowEndsAt - Date.now()) / 60_000)));
        if (plan?.limitedBy) limitedBy = plan.limitedBy;
        let coverageRate = plan?.limitedBy ? plan.rate : undefined;
        /** What this page left unscored for the budget so far (a top-up pass replaces it). */
        let pageUnscored = 0;
        const pass = async (coveredRate?: number) => {
          const results = await inParallel(chunk(page.ids, input.batchSize), input.maxConcurrentBatches, (ids) =>
            judge.scoreInteractions({
              deployment: input.deployment,
              ids,
              checks: input.checks,
              settings,
              cycleId,
              coverageRate,
              coveredRate,
            }),
          );
          totals.unscoredForBudget -= pageUnscored;
          pageUnscored = 0;
          for (const r of results) {
            addBatch(totals, r);
            pageUnscored += r.unscoredForBudget;
            if (r.budgetNote) limitedBy = `LLM's capacity: ${r.budgetNote.split(':')[0]}`;
          }
          totals.unscoredForBudget += pageUnscored;
          return results.some((r) => r.budgetNote);
        };
        let stopped = await pass();
        // The plan was made on an estimate of what an interaction costs; with the window not over
        // and the page's sample judged, what this cycle's calls really cost decides whether more
        // of the page fits: the next slice of the same deterministic sample is judged.
        if (coverageRate !== undefined && patched(COVERAGE_TOP_UP)) {
          for (let more = 0; more < MAX_TOP_UPS && !stopped && pageUnscored > 0; more++) {
            const minutes = Math.max(0, (windowEndsAt - Date.now()) / 60_000);
            if (minutes <= 0) break;
            const covered: number = coverageRate;
            const next = await planPage(minutes, covered);
            if (next.adds < 1 || next.rate <= covered) break;
            coverageRate = next.rate;
            stopped = await pass(covered);
          }
        }
        totals.coverageNote = coverageNote(totals.sampled, totals.unscoredForBudget, limitedBy);
      } else {
        await legacyScorePage(chunk(page.ids, rawInput.batchSize ?? LEGACY_BATCH_SIZE));
      }

      if (page.nextCursor !== page.fromCursor) {
        const moved = await store.advanceCursor({
          deployment: input.deployment,
          from: page.fromCursor,
          to: page.nextCursor,
          cycleId,
        });
        if (moved === 'conflict') {
          raise('CursorConflict', `the cursor of '${input.deployment}' was moved by another cycle; this cycle stops (its scores are kept)`);
        }
        cursor = page.nextCursor;
      }
      if (!page.hasMore || totals.fetched >= input.maxInteractions) break;
      if (workflowInfo().continueAsNewSuggested || pagesThisRun >= input.pagesPerRun) {
        await condition(allHandlersFinished);
        await continueAsNew<typeof collectionCycle>({ ...rawInput, carry: totals, windowEndsAt, startedAt: startedAtMs });
      }
    }
  } catch (e) {
    if (batched && !(e instanceof ContinueAsNew)) {
      // What the cycle did before it stopped, and why, is recorded; the lease is given back.
      // A cycle refused by the lease is skipped, not failed: nothing went wrong, another cycle of
      // the deployment runs (named in the record).
      const error = rootCause(e);
      const refused = error.type === 'CycleAlreadyRunning';
      await store.recordCycle({
        ...totals,
        cycleId,
        deployment: input.deployment,
        judge: settings.judge,
        cursor,
        scheduledAt,
        startedAt,
        status: refused ? 'skipped' : 'failed',
        error: `${error.type ?? 'Error'}: ${error.message}`,
      });
      if (!refused) await store.releaseCycle(lease);
      else if (patched(LEASE_REFUSAL_SKIPS)) {
        phase = 'skipped';
        const holder = (error.details?.[0] as { runningCycle?: unknown } | undefined)?.runningCycle;
        setCurrentDetails(`Skipped: ${error.message}`);
        return {
          ...totals,
          cycleId,
          deployment: input.deployment,
          judge: settings.judge,
          cursor,
          status: 'skipped',
          ...(typeof holder === 'string' ? { heldBy: holder } : {}),
          note: error.message,
          ...(scheduledAt ? { scheduledAt } : {}),
          startedAt,
        };
      }
    }
    throw e;
  }

  phase = 'done';
  const result: CycleResult = {
    ...totals,
    cycleId,
    deployment: input.deployment,
    judge: settings.judge,
    cursor,
    ...(scheduledAt ? { scheduledAt } : {}),
    startedAt,
  };
  await store.recordCycle(result);
  if (batched) await store.releaseCycle(lease);
  setCurrentDetails(
    `Done: ${totals.stored} interactions stored, ${totals.scored} checks scored, ${totals.failed} failed, ${totals.bad} bad records`,
  );
  return result;

  /** Pages of cycles recorded before SCORE_IN_ACTIVITIES: scoreBatch children, in waves. */
  async function legacyScorePage(batches: string[][]): Promise<void> {
    for (let i = 0; i < batches.length; i += input.maxConcurrentBatches) {
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
  }
}
