/**
 * Scoring a batch of interactions in one activity: the texts of the batch in one ClickHouse
 * read, the checks already stored in one more (a retried or re-run batch judges nothing twice),
 * the judge calls in parallel (bounded per worker), and the score rows written in blocks as they
 * come in, so a batch killed half-way keeps what it wrote and its retry calls the LLM only for
 * the rest. The activity heartbeats its progress.
 */
import { setMaxListeners } from 'node:events';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { raise } from '../../common/failures.js';
import pLimit, { type LimitFunction } from 'p-limit';
import { primaryScore, type Check } from '../../common/types.js';
import { emptyBatchTotals, SAMPLE_LIMIT, type BatchTotals, type CycleSettings } from '../../domain/collector/collection.js';
import { truncateForJudge } from '../../domain/judge/truncate.js';
import { recordJudgeUsage, recordScoresWritten } from '../metrics.js';
import type { InteractionRow, ScoreRow } from '../storage/clickhouse/rows.js';
import type { ClickHouseStore } from '../storage/clickhouse/store.js';
import { sampled } from './fetch.js';
import { judgeInteraction, type CheckOutcome, type JudgeLlm, type Usage } from './judges.js';

export interface ScoreBatchRequest {
  deployment: string;
  ids: string[];
  checks: Check[];
  settings: CycleSettings;
  /**
   * Budget-aware coverage (coverage.ts): only ids under this sampling threshold are judged, the
   * others are counted as left unscored for the budget. Absent: all of them.
   */
  coverageRate?: number;
  /**
   * A top-up pass of the same page (the budget turned out to cover more): ids under this
   * threshold were judged by an earlier pass and are left out here, neither judged nor counted.
   */
  coveredRate?: number;
}

/** Rows written per ClickHouse insert while a batch is scored (and at its end). */
const FLUSH_ROWS = 500;
/** A block is written at least this often, and the activity heartbeats as often. */
const FLUSH_MS = 1000;
/** How long a block's write waits out a ClickHouse outage before the activity fails (and is retried). */
const STORE_PATIENCE_MS = 5 * 60_000;

export interface ScorerDeps {
  ch: ClickHouseStore;
  /** The LLM client, or undefined when this worker runs the offline judge. */
  llm?: JudgeLlm;
  /** This worker's judge name ('offline' or 'groq:<model>'). */
  judgeName: string;
  /** Interactions judged at once on this worker, across all its batches. */
  slots: LimitFunction;
  clean: (s: string) => string;
}

export function createSlots(concurrency: number): LimitFunction {
  return pLimit(Math.max(1, concurrency));
}

function scoreRow(
  i: InteractionRow,
  judge: string,
  promptVersion: string,
  o: CheckOutcome,
  usage: Usage,
  attempt: number,
  first: boolean,
): ScoreRow {
  const now = Date.now();
  const r = o.status === 'ok' ? (o.result as Record<string, unknown>) : {};
  const n = (k: string) => (typeof r[k] === 'number' ? (r[k] as number) : null);
  return {
    deployment: i.deployment,
    model_version: i.model_version,
    interaction_id: i.id,
    interaction_ts: i.ts,
    check_name: o.check,
    prompt_version: promptVersion,
    judge,
    status: o.status,
    reason: o.status === 'ok' ? '' : o.reason.slice(0, 1000),
    score: o.status === 'ok' ? primaryScore(o.check, o.result) : null,
    coherence: n('coherence'),
    relevance: n('relevance'),
    accuracy: n('accuracy'),
    completeness: n('completeness'),
    confidence: n('confidence'),
    hate_speech: n('hate_speech'),
    violence: n('violence'),
    profanity: n('profanity'),
    reasoning: typeof r.reasoning === 'string' ? r.reasoning.slice(0, 2000) : '',
    truncated: 0,
    latency_ms: Math.min(usage.latencyMs, 4_294_967_295),
    // One call may judge several checks: its tokens are on the first check's row, so sums are right.
    prompt_tokens: first ? usage.promptTokens : 0,
    completion_tokens: first ? usage.completionTokens : 0,
    // Requests the interaction's judgement took (retries included), or the activity attempt offline.
    attempts: Math.min(usage.calls || attempt, 65_535),
    scored_at: Math.floor(now / 1000),
    ver: now,
  };
}

/** Score one batch; see the module comment. Throws only what stops the cycle (and store outages). */
export interface ScoreBatchTotals extends BatchTotals {
  /** Interactions not judged because the LLM's daily budget ran out (budgetNote says which limit). */
  unscoredForBudget: number;
  budgetNote?: string;
}

export async function scoreBatchOfInteractions(
  deps: ScorerDeps,
  req: ScoreBatchRequest,
  /** Set from outside (the cycle lost its lease) to stop the batch: nothing more is judged, what was judged is written, then it is thrown. */
  halt: { reason?: unknown } = {},
): Promise<ScoreBatchTotals> {
  const ctx = Context.current();
  // Every judge call of the batch listens to the activity's cancellation.
  setMaxListeners(0, ctx.cancellationSignal);
  const { settings } = req;
  const totals = emptyBatchTotals();
  const judge = settings.judge === 'offline' ? 'offline' : deps.llm;
  if (settings.judge !== deps.judgeName || !judge) {
    raise(
      'JudgeUnavailable',
      `this worker cannot run judge '${settings.judge}' (it is configured for '${deps.judgeName}'): give all workers the same GROQ_API_KEY / LLM_ENABLED / GROQ_MODEL`,
    );
  }

  const rate = req.coverageRate;
  const covered = req.coveredRate;
  const left = covered === undefined ? req.ids : req.ids.filter((id) => !sampled(id, covered));
  const ids = rate === undefined ? left : left.filter((id) => sampled(id, rate));
  const uncovered = left.length - ids.length;
  if (!ids.length) return { ...totals, unscoredForBudget: uncovered };
  const stored = await deps.ch.storedChecks({
    deployment: req.deployment,
    ids,
    judge: settings.judge,
    promptVersions: settings.promptVersions,
  });
  const rows = await deps.ch.interactionsByIds(req.deployment, ids);
  const found = new Set(rows.map((r) => r.id));
  for (const id of ids) {
    if (found.has(id)) continue;
    totals.failed += req.checks.length;
    if (totals.failureSamples.length < SAMPLE_LIMIT) {
      totals.failureSamples.push({ id, check: req.checks[0]!, reason: 'InteractionMissing: the interaction is not in ClickHouse' });
    }
  }

  let pending: ScoreRow[] = [];
  let writing: Promise<void> = Promise.resolve();
  /** Set by a failure that stops the batch: what is queued is not judged any more. */
  const stop: { budget?: string; fatal?: unknown } = {};
  const progress = () => ({
    done: totals.scored + totals.failed + totals.skipped + totals.abstained,
    of: req.ids.length * req.checks.length,
  });
  /** What a write is waiting out, shown with the progress (Web UI: the activity's heartbeat details). */
  let waiting: string | undefined;
  const heartbeat = () => ctx.heartbeat(waiting ? { ...progress(), waiting } : progress());
  /** Write what is pending (in order, one block at a time, outages waited out), then report progress. */
  const flush = (): Promise<void> => {
    const block = pending;
    pending = [];
    writing = writing.then(async () => {
      if (block.length) {
        await insertPatiently(deps.ch, block, (why) => {
          waiting = why && deps.clean(why);
          heartbeat();
        });
        recordScoresWritten(block);
      }
      heartbeat();
    });
    return writing;
  };
  const timer = setInterval(() => void flush().catch(() => undefined), FLUSH_MS);
  let unscored = uncovered;
  try {
    await Promise.all(
      rows.map((row) =>
        deps.slots(async () => {
          if (stop.budget || stop.fatal || halt.reason || ctx.cancellationSignal.aborted) {
            unscored++;
            return;
          }
          const done = stored.get(row.id);
          const todo = req.checks.filter((c) => !done?.has(c));
          totals.skipped += req.checks.length - todo.length;
          if (!todo.length) return;
          const { input, truncated } = truncateForJudge({
            prompt: row.prompt,
            response: row.response,
            context: row.has_context ? row.context : undefined,
          });
          let j: Awaited<ReturnType<typeof judgeInteraction>>;
          try {
            j = await judgeInteraction({
              judge,
              mode: settings.mode ?? 'separate',
              checks: todo,
              input,
              clean: deps.clean,
              heartbeat,
              signal: ctx.cancellationSignal,
            });
          } catch (e) {
            if (e instanceof ApplicationFailure && e.type === 'LlmCapacity') stop.budget ??= e.message;
            else stop.fatal ??= e;
            unscored++;
            return;
          }
          if (ctx.cancellationSignal.aborted) {
            // A call cut short by the cancellation is not a failure of the check: it is judged again on retry.
            unscored++;
            return;
          }
          totals.promptTokens += j.usage.promptTokens;
          totals.completionTokens += j.usage.completionTokens;
          totals.cachedTokens += j.usage.cachedTokens;
          totals.reasoningTokens += j.usage.reasoningTokens;
          totals.llmCalls += j.usage.calls;
          recordJudgeUsage(req.deployment, settings.judge, j.usage);
          j.outcomes.forEach((o, k) => {
            const r = scoreRow(row, settings.judge, settings.promptVersions[o.check], o, j.usage, ctx.info.attempt, k === 0);
            r.truncated = truncated ? 1 : 0;
            pending.push(r);
            if (o.status === 'ok') totals.scored++;
            else if (o.status === 'abstained') totals.abstained++;
            else {
              totals.failed++;
              if (totals.failureSamples.length < SAMPLE_LIMIT) totals.failureSamples.push({ id: row.id, check: o.check, reason: o.reason });
            }
          });
          if (pending.length >= FLUSH_ROWS) await flush();
        }),
      ),
    );
  } finally {
    clearInterval(timer);
    // What was judged is written even when the batch stops.
    await flush();
  }
  if (halt.reason) throw halt.reason;
  if (stop.fatal) throw stop.fatal;
  // Cancelled (the worker shuts down, or the cycle was cancelled): what was judged is written; the rest waits for the retry.
  if (ctx.cancellationSignal.aborted) await ctx.cancelled;
  return { ...totals, unscoredForBudget: unscored, budgetNote: stop.budget };
}

/** A block of score rows written, ClickHouse outages waited out (for a while) with backoff. */
async function insertPatiently(ch: ClickHouseStore, rows: ScoreRow[], waitingOn: (why: string | undefined) => void): Promise<void> {
  const deadline = Date.now() + STORE_PATIENCE_MS;
  for (let wait = 1000; ; wait = Math.min(wait * 2, 15_000)) {
    try {
      await ch.insertScores(rows);
      return waitingOn(undefined);
    } catch (e) {
      if (Date.now() + wait > deadline) throw e;
      waitingOn(
        `writing ${rows.length} score rows to ClickHouse failed (${e instanceof Error ? e.message : String(e)}); trying again in ${wait / 1000} s`,
      );
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
