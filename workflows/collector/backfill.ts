/**
 * backfill: scores the stored interactions of a deployment's time window that the current judge
 * and prompt versions have not scored (a new judge or prompt version, or cycles the LLM's budget
 * left partly unscored), so their baselines need not wait for new traffic.
 * Deterministic code only: ids are paged from ClickHouse by an activity (texts never enter
 * history) and scored by the cycle's `scoreInteractions` activity, without a cycle lease: a
 * backfill runs beside the deployment's scheduled cycles. Checks already stored are never judged
 * again (scoring.ts reads them first), so a backfill started again, or a page retried, pays for
 * nothing twice and continues where scores are missing.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { CollectorActivities } from '../../activities/collector/activities.js';
import { FAILURES, raise, rootCause, type FailureType } from '../../common/failures.js';
import { SA } from '../../common/search-attributes.js';
import { formatZodError, parseUtcDate } from '../../common/types.js';
import {
  backfillInputSchema,
  backfillProgressLine,
  coverageText,
  emptyBackfillTotals,
  type BackfillInput,
  type BackfillResult,
  type BackfillStatus,
} from '../../domain/collector/backfill.js';
import { addBatch, chunk, inParallel } from '../../domain/collector/collection.js';
import { backfillReadOptions, localOptions, scoreOptions } from '../options.js';

const read = proxyActivities<CollectorActivities>(backfillReadOptions);
const local = proxyLocalActivities<CollectorActivities>(localOptions);

export const backfillStatusQuery = defineQuery<BackfillStatus>('status');

const isFailure = (t: string | undefined): t is FailureType => !!t && Object.hasOwn(FAILURES, t);

/**
 * Page the window's interaction ids in id order (keyset cursor), hand each page's unscored ids to
 * scoring activities in parallel batches, continue as new every `pagesPerRun` pages carrying the
 * cursor and totals, and end with the window's coverage by this judge.
 */
export async function backfill(rawInput: BackfillInput): Promise<BackfillResult> {
  const parsed = backfillInputSchema.safeParse(rawInput);
  if (!parsed.success) raise('InvalidInput', formatZodError(parsed.error));
  const input = parsed.data;
  // The window ends when the backfill starts unless the caller said otherwise; fixed for the
  // continued runs (workflow time is recorded in history, so a replay agrees).
  const to = input.to ?? new Date(Date.now()).toISOString();
  if (parseUtcDate(input.from) >= parseUtcDate(to))
    raise('InvalidInput', `to: the window's end (${to}) must be after from (${input.from})`);
  const carry = input.carry;
  const totals = { ...emptyBackfillTotals(), ...carry?.totals };
  let after = carry?.after ?? null;
  let phase = 'starting';
  setHandler(backfillStatusQuery, () => ({ ...totals, phase, after }));

  upsertSearchAttributes([
    { key: SA.deployment, value: input.deployment },
    { key: SA.kind, value: 'backfill' },
    ...(input.modelVersion ? [{ key: SA.modelVersion, value: [input.modelVersion] }] : []),
  ]);
  // One judge for the whole backfill: the first run's, carried (workers configured otherwise later
  // refuse its batches with JudgeUnavailable rather than mixing judges in one set of totals).
  const settings = carry?.settings ?? (await local.cycleSettings());
  const startedAt = carry?.startedAt ?? Date.now();
  const judge = proxyActivities<CollectorActivities>(scoreOptions(settings));
  const window = { deployment: input.deployment, modelVersion: input.modelVersion, from: input.from, to };
  const what = `backfill of '${input.deployment}'${input.modelVersion ? ` (version ${input.modelVersion})` : ''} by ${settings.judge}`;
  /** Stop with the failure's type and message, saying what was done and how to go on. */
  const stop = (type: FailureType, message: string): never =>
    raise(
      type,
      `${what} stopped: ${message}. ${totals.scored} checks were scored before it stopped; start it again later: it continues where scores are missing`,
      { details: [{ ...totals, after }] },
    );

  let pagesThisRun = 0;
  let complete = false;
  for (;;) {
    if (totals.selected >= input.limit) break;
    phase = `reading page ${totals.pages + 1}`;
    const page = await read.backfillPage({
      ...window,
      after,
      pageSize: input.pageSize,
      maxTodo: input.limit - totals.selected,
      checks: input.checks,
      settings,
    });
    totals.pages++;
    pagesThisRun++;
    totals.seen += page.seen;
    totals.notSampled += page.notSampled;
    totals.inCycle += page.inCycle;
    totals.alreadyScored += page.alreadyScored;
    totals.selected += page.ids.length;
    after = page.after;

    if (page.ids.length) {
      phase = `scoring page ${totals.pages}`;
      setCurrentDetails(
        `Backfill by ${settings.judge}, ${window.from} → ${to}: scoring page ${totals.pages}. ${backfillProgressLine(totals)}`,
      );
      let results: Awaited<ReturnType<typeof judge.scoreInteractions>>[];
      try {
        results = await inParallel(chunk(page.ids, input.batchSize), input.maxConcurrentBatches, (ids) =>
          judge.scoreInteractions({ deployment: input.deployment, ids, checks: input.checks, settings }),
        );
      } catch (e) {
        // A configuration problem of the LLM (bad key, unknown model) or a judge the workers do
        // not run: every other batch would fail the same way.
        const c = rootCause(e);
        if (isFailure(c.type)) stop(c.type, c.message);
        throw e;
      }
      let budget: string | undefined;
      for (const r of results) {
        addBatch(totals, r);
        totals.unscoredForBudget += r.unscoredForBudget;
        budget ??= r.budgetNote;
      }
      // The LLM's capacity is spent (a day's token cap): what was judged is stored; the rest waits.
      if (budget) stop('LlmCapacity', budget);
    }
    setCurrentDetails(`Backfill by ${settings.judge}, ${window.from} → ${to}: ${backfillProgressLine(totals)}`);

    if (!page.hasMore) {
      complete = true;
      break;
    }
    if (workflowInfo().continueAsNewSuggested || pagesThisRun >= input.pagesPerRun) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof backfill>({ ...rawInput, to, carry: { after, settings, startedAt, totals } });
    }
  }

  phase = 'measuring coverage';
  const coverage = await read.backfillCoverage({ ...window, checks: input.checks, settings });
  phase = 'done';
  const note = complete
    ? ''
    : `limit of ${input.limit} interactions reached at id ${after}: start the backfill again to score the rest of the window`;
  setCurrentDetails(`Done: ${backfillProgressLine(totals)}; coverage of the window ${coverageText(coverage)}${note ? `; ${note}` : ''}`);
  return {
    ...totals,
    deployment: input.deployment,
    ...(input.modelVersion ? { modelVersion: input.modelVersion } : {}),
    from: input.from,
    to,
    judge: settings.judge,
    promptVersions: settings.promptVersions,
    complete,
    after,
    coverage,
    startedAt: new Date(startedAt).toISOString(),
    note,
  };
}
