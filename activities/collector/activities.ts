/**
 * Activities of the data collector (LLM integration point 5). Everything that touches the world.
 * Interaction texts stay here: workflows only ever see ids and counts.
 */
import type { Config } from '../../common/config.js';
import { redact, secretsOf } from '../../common/secrets.js';
import { failure, raise } from '../../common/failures.js';
import { CHECKS, type Check } from '../../common/types.js';
import type { CycleResult, CycleSettings, JudgeMode } from '../../domain/collector/collection.js';
import { timestampWindow } from '../../domain/collector/record.js';
import { OFFLINE_JUDGE_VERSION } from '../../domain/judge/offline-judge.js';
import { COMBINED_PROMPT_VERSION, JUDGE_PROMPT_VERSION } from '../../domain/judge/prompts.js';
import type { ActivityDeps } from '../deps.js';
import { recordCollectionRun, type CollectionRunRecord } from '../storage/postgres/collection-runs.js';
import * as deployments from '../storage/postgres/deployments.js';
import { planCoverage as planPageCoverage, type CoveragePlan } from './coverage.js';
import { fetchPage, sampled as sampledId } from './fetch.js';
import { createSlots, scoreBatchOfInteractions, type ScoreBatchRequest } from './scoring.js';
import { interactionIdPage, windowCoverage, type InteractionWindow } from '../storage/clickhouse/backfill-queries.js';
import type { BackfillCoverage } from '../../domain/collector/backfill.js';

export type { FetchPageResult } from './fetch.js';
export { sampled } from './fetch.js';

/** One page of a backfill: the window, where the last page ended, and what the judge is. */
export interface BackfillPageRequest extends InteractionWindow {
  after: string | null;
  /** Ids read from ClickHouse for this page. */
  pageSize: number;
  /** Most ids this page hands to the judge (what is left of the backfill's limit). */
  maxTodo: number;
  checks: Check[];
  settings: CycleSettings;
}

export interface BackfillPage {
  /** Ids to score (sampled, missing at least one check), in id order. */
  ids: string[];
  /** Ids of the window read (up to `after`). */
  seen: number;
  notSampled: number;
  /** Ids stored by the cycle running now (it scores them). */
  inCycle: number;
  /** Ids with every check already stored for the judge and prompt versions. */
  alreadyScored: number;
  /** The last id read: the next page starts after it. */
  after: string | null;
  /** More of the window may follow `after`. */
  hasMore: boolean;
}

export interface JudgeCheckInput {
  deployment: string;
  interactionId: string;
  check: Check;
  judge: string;
  promptVersion: string;
}

export interface JudgeOutcome {
  status: 'ok' | 'skipped';
  promptTokens: number;
  completionTokens: number;
  latencyMs: number;
}

/** How long a cycle's lease on its deployment lasts without being renewed. */
export const CYCLE_LEASE_SECONDS = 600;
/** How often a running scoring batch renews (and checks) its cycle's lease. */
export const LEASE_RENEW_MS = 60_000;

export function judgeName(config: Config): string {
  return config.llm.enabled ? `groq:${config.groq.model}` : 'offline';
}

/** The judge mode and prompt version of each check for this configuration. */
export function promptVersionsFor(judge: string, mode: JudgeMode): Record<Check, string> {
  return Object.fromEntries(
    CHECKS.map((c) => [
      c,
      judge === 'offline' ? OFFLINE_JUDGE_VERSION : mode === 'combined' ? COMBINED_PROMPT_VERSION : JUDGE_PROMPT_VERSION[c],
    ]),
  ) as Record<Check, string>;
}

export function createCollectorActivities(deps: ActivityDeps) {
  const { config, ch, db } = deps;
  const secrets = secretsOf(config);
  const clean = (s: string) => redact(s, secrets);
  const judge = judgeName(config);
  const scorer = { ch, llm: deps.llm, judgeName: judge, slots: createSlots(config.llm.concurrency), clean };

  async function cycleSettings(): Promise<CycleSettings> {
    const mode: JudgeMode = config.llm.judgeMode;
    return {
      judge,
      promptVersions: promptVersionsFor(judge, mode),
      // The offline judge calls no API: it needs no rate limit and runs on the main queue.
      judgeTaskQueue: judge === 'offline' ? config.temporal.taskQueue : config.temporal.llmTaskQueue,
      llmTimeoutSec: config.llm.timeoutSec,
      llmMaxRetries: config.llm.maxRetries,
      mode,
    };
  }

  /** Take the deployment's collection lease: a second cycle of the same deployment refuses to start. */
  async function claimCycle(input: { deployment: string; cycleId: string }): Promise<void> {
    await deployments.registeredDeployment(db, input.deployment);
    const c = await deployments.claimCycle(db, input.deployment, input.cycleId, CYCLE_LEASE_SECONDS);
    if (!c.claimed) {
      raise(
        'CycleAlreadyRunning',
        `cycle '${c.runningCycle}' of deployment '${input.deployment}' is running (lease until ${c.leaseUntil}): this cycle does not start, so no interaction is judged twice`,
        { details: [{ runningCycle: c.runningCycle, leaseUntil: c.leaseUntil }] },
      );
    }
  }

  /**
   * Confirm (re-claim) a running cycle's lease before it pays for judging or moves the cursor. A
   * lease that expired while the cycle stood still (its worker down longer than the lease) and that
   * no other cycle took is taken again; one another cycle holds now stops this cycle (`LeaseLost`,
   * non-retryable), naming the holder: that cycle takes the page from the cursor, so judging it
   * here would pay the LLM twice for it.
   */
  async function confirmLease(deployment: string, cycleId: string): Promise<void> {
    const c = await deployments.claimCycle(db, deployment, cycleId, CYCLE_LEASE_SECONDS);
    if (!c.claimed) throw leaseLost(deployment, cycleId, c);
  }

  function leaseLost(deployment: string, cycleId: string, c: { runningCycle: string; leaseUntil: string }) {
    return failure(
      'LeaseLost',
      `cycle '${cycleId}' lost the lease of deployment '${deployment}' (it stood still longer than ${CYCLE_LEASE_SECONDS} s, e.g. its worker was down): cycle '${c.runningCycle}' holds it (until ${c.leaseUntil}) and takes the rest from the cursor, so this cycle stops (its scores are kept)`,
      { details: [{ runningCycle: c.runningCycle, leaseUntil: c.leaseUntil }] },
    );
  }

  /** How much of a page the LLM's budget covers over the next `minutes` (coverage.ts). */
  async function planCoverage(input: Parameters<typeof planPageCoverage>[1]): Promise<CoveragePlan> {
    return planPageCoverage({ ch, db, llm: deps.llm }, input);
  }

  async function releaseCycle(input: { deployment: string; cycleId: string }): Promise<void> {
    await deployments.releaseCycle(db, input.deployment, input.cycleId);
  }

  /**
   * Score a batch of stored interactions (see scoring.ts). A batch of a cycle first confirms the
   * cycle's lease (a cycle that lost it pays for nothing more), then renews it while it runs; a
   * renewal that finds the lease taken by another cycle stops the batch: what was judged is
   * written, nothing more is judged.
   */
  async function scoreInteractions(input: ScoreBatchRequest & { cycleId?: string }) {
    const cycleId = input.cycleId;
    if (cycleId) await confirmLease(input.deployment, cycleId);
    const halt: { reason?: unknown } = {};
    const renew = cycleId
      ? setInterval(
          () =>
            void deployments
              .claimCycle(db, input.deployment, cycleId, CYCLE_LEASE_SECONDS)
              .then((c) => {
                if (!c.claimed) halt.reason ??= leaseLost(input.deployment, cycleId, c);
              })
              .catch(() => undefined),
          LEASE_RENEW_MS,
        )
      : undefined;
    try {
      return await scoreBatchOfInteractions(scorer, input, halt);
    } finally {
      clearInterval(renew);
    }
  }

  /**
   * One check of one interaction, for scoreBatch workflows started before scoring moved into
   * batches: the same scorer on a batch of one. A failed check is stored with its reason and
   * reported as the failure the old workflow expects.
   */
  async function judgeCheck(input: JudgeCheckInput): Promise<JudgeOutcome> {
    const t = await scoreBatchOfInteractions(scorer, {
      deployment: input.deployment,
      ids: [input.interactionId],
      checks: [input.check],
      settings: {
        ...(await cycleSettings()),
        judge: input.judge,
        promptVersions: { ...promptVersionsFor(input.judge, 'separate'), [input.check]: input.promptVersion },
      },
    });
    if (t.failed) raise('LlmRetriesExhausted', t.failureSamples[0]?.reason ?? 'the check could not be scored');
    return { status: t.skipped ? 'skipped' : 'ok', promptTokens: t.promptTokens, completionTokens: t.completionTokens, latencyMs: 0 };
  }

  /** For scoreBatch workflows started before: the failure is already stored by judgeCheck. */
  async function recordCheckFailure(_input: JudgeCheckInput & { reason: string }): Promise<void> {}

  async function advanceCursor(input: {
    deployment: string;
    from: string | null;
    to: string;
    cycleId: string;
  }): Promise<deployments.CursorAdvance> {
    // A cycle that lost its lease leaves the cursor to the cycle holding it (which takes this page).
    await confirmLease(input.deployment, input.cycleId);
    return deployments.advanceCursor(db, input.deployment, input.from, input.to, input.cycleId);
  }

  async function recordCycle(
    r: Omit<CycleResult, 'status'> & { scheduledAt?: string; startedAt?: string; status?: CollectionRunRecord['status']; error?: string },
  ): Promise<void> {
    await recordCollectionRun(db, { ...r, status: r.status ?? 'ok', error: r.error === undefined ? undefined : clean(r.error) });
  }

  /**
   * A page of a backfill: the window's ids after `after`, in id order, without the ids the
   * deployment's sample rate leaves out, those whose every check is already stored for this
   * judge and these prompt versions (so a limit counts the interactions that need the judge, and a
   * backfill started again goes past what an earlier one scored), and those stored by the cycle
   * that holds the deployment's lease now: that cycle scores them, and judging them here at the
   * same time would pay twice and write a second row each (baselines count rows without FINAL).
   * The page ends early when `maxTodo` ids are to score. Only ids come back: texts stay in ClickHouse.
   */
  async function backfillPage(input: BackfillPageRequest): Promise<BackfillPage> {
    const dep = await deployments.registeredDeployment(db, input.deployment);
    const window: InteractionWindow = { deployment: input.deployment, modelVersion: input.modelVersion, from: input.from, to: input.to };
    const rows = await interactionIdPage(ch, window, input.after, input.pageSize);
    // Read after the ids: a cycle that released its lease since has written its scores, which the
    // stored checks below (read after the lease) include.
    const cycle = await deployments.runningCycle(db, input.deployment);
    const chosen = rows.filter((r) => sampledId(r.id, dep.sample_rate) && r.cycle_id !== cycle).map((r) => r.id);
    const stored = await ch.storedChecks({
      deployment: input.deployment,
      ids: chosen,
      judge: input.settings.judge,
      promptVersions: input.settings.promptVersions,
    });
    const page: BackfillPage = {
      ids: [],
      seen: 0,
      notSampled: 0,
      inCycle: 0,
      alreadyScored: 0,
      after: input.after,
      hasMore: rows.length === input.pageSize,
    };
    for (const [i, { id, cycle_id }] of rows.entries()) {
      page.seen++;
      page.after = id;
      if (!sampledId(id, dep.sample_rate)) page.notSampled++;
      else if (cycle_id === cycle) page.inCycle++;
      else if (input.checks.every((c) => stored.get(id)?.has(c))) page.alreadyScored++;
      else page.ids.push(id);
      if (page.ids.length >= input.maxTodo) {
        page.hasMore ||= i < rows.length - 1;
        break;
      }
    }
    return page;
  }

  /** How much of a backfill's window the judge's scores cover (backfill-queries.ts). */
  async function backfillCoverage(input: InteractionWindow & { checks: Check[]; settings: CycleSettings }): Promise<BackfillCoverage> {
    return windowCoverage(
      ch,
      { deployment: input.deployment, modelVersion: input.modelVersion, from: input.from, to: input.to },
      { judge: input.settings.judge, promptVersions: input.settings.promptVersions, checks: input.checks },
    );
  }

  return {
    cycleSettings,
    claimCycle,
    releaseCycle,
    planCoverage,
    fetchPage: (input: { deployment: string; cycleId: string; limit: number }) =>
      fetchPage({ ch, db, clean, window: () => timestampWindow(Date.now(), config.records) }, input),
    scoreInteractions,
    judgeCheck,
    recordCheckFailure,
    advanceCursor,
    recordCycle,
    backfillPage,
    backfillCoverage,
  };
}

export type CollectorActivities = ReturnType<typeof createCollectorActivities>;
