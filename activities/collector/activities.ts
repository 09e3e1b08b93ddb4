/**
 * Activities of the data collector (LLM integration point 5). Everything that touches the world.
 * Interaction texts stay here: workflows only ever see ids and counts.
 */
import { createHash } from 'node:crypto';
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { isFailureType, LLM_COUNTED_TYPES, raise } from '../../common/failures.js';
import type { Config } from '../../common/config.js';
import { redact, secretsOf } from '../../common/config.js';
import type { BatchTotals, CycleResult, CycleSettings } from '../../domain/collector/collection.js';
import { OFFLINE_JUDGE_VERSION, offlineJudge } from '../../domain/judge/offline-judge.js';
import { JUDGE_PROMPT_VERSION, renderJudgePrompt } from '../../domain/judge/prompts.js';
import { truncateForJudge } from '../../domain/judge/truncate.js';
import { CHECKS, checkResultSchemas, primaryScore, type AnyCheckResult, type Check } from '../../common/types.js';
import { unixSeconds, type ClickHouseStore, type InteractionRow, type ScoreRow } from '../storage/clickhouse/store.js';
import { recordCollectionRun } from '../storage/postgres/collection-runs.js';
import type { ActivityDeps } from '../deps.js';
import * as deployments from '../storage/postgres/deployments.js';
import { createSource, sourceConfigSchema, SourceError } from './sources.js';


export interface FetchPageResult {
  fromCursor: string | null;
  nextCursor: string;
  hasMore: boolean;
  fetched: number;
  stored: number;
  bad: number;
  badSamples: Array<{ position: string; reason: string; id?: string }>;
  /** Ids chosen for scoring by deterministic sampling. */
  ids: string[];
  versions: string[];
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


/** Deterministic sampling (a hash of the id against the rate): the same interaction is always in or out. */
export function sampled(id: string, rate: number): boolean {
  if (rate >= 1) return true;
  const h = createHash('sha256').update(id).digest().readUInt32BE(0);
  return h / 0x1_0000_0000 < rate;
}

/** Text safe to store and show: control characters replaced by U+FFFD. */
export function printable(s: string): string {
  return s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '\ufffd');
}

export function judgeName(config: Config): string {
  return config.llm.enabled ? `groq:${config.groq.model}` : 'offline';
}

export function createCollectorActivities(deps: ActivityDeps) {
  const { config, ch, db } = deps;
  const secrets = secretsOf(config);
  const clean = (s: string) => redact(s, secrets);

  async function cycleSettings(): Promise<CycleSettings> {
    const judge = judgeName(config);
    return {
      judge,
      promptVersions: Object.fromEntries(
        CHECKS.map((c) => [c, judge === 'offline' ? OFFLINE_JUDGE_VERSION : JUDGE_PROMPT_VERSION[c]]),
      ) as Record<Check, string>,
      // The offline judge calls no API: it needs no rate limit and runs on the main queue.
      judgeTaskQueue: judge === 'offline' ? config.temporal.taskQueue : config.temporal.llmTaskQueue,
      llmTimeoutSec: config.llm.timeoutSec,
      llmMaxRetries: config.llm.maxRetries,
    };
  }

  async function fetchPage(input: { deployment: string; cycleId: string; limit: number }): Promise<FetchPageResult> {
    const dep = await deployments.getDeployment(db, input.deployment);
    if (!dep) {
      raise('UnknownDeployment', `deployment '${input.deployment}' is not registered: add it with 'optiinfra deployment add ${input.deployment} --source-url URL' (or --source-path FILE)`);
    }
    const parsed = sourceConfigSchema.safeParse(dep.source);
    if (!parsed.success) {
      raise('InvalidSourceConfig', `deployment '${input.deployment}' has an invalid source configuration: ${parsed.error.message}`);
    }
    const cursor = await deployments.getCursor(db, input.deployment);
    let page;
    try {
      page = await createSource(parsed.data, input.deployment).fetch(cursor, input.limit);
    } catch (e) {
      if (e instanceof SourceError) {
        raise('SourceUnavailable', clean(e.message));
      }
      throw e;
    }
    const ver = Date.now();
    const rows: InteractionRow[] = page.records.map((r) => ({
      deployment: r.deployment,
      id: r.id,
      model_version: r.model_version,
      ts: unixSeconds(r.timestamp),
      prompt: r.prompt,
      response: r.response,
      context: r.context ?? '',
      has_context: r.context === undefined ? 0 : 1,
      metadata: JSON.stringify(r.metadata ?? {}),
      source: parsed.data.type,
      cycle_id: input.cycleId,
      ver,
    }));
    await ch.insertInteractions(rows);
    if (page.bad.length) {
      log.warn('bad records skipped', { deployment: input.deployment, count: page.bad.length });
    }
    return {
      fromCursor: cursor,
      nextCursor: page.nextCursor,
      hasMore: page.hasMore,
      fetched: page.records.length + page.bad.length,
      stored: rows.length,
      bad: page.bad.length,
      // Samples are stored as JSON in PostgreSQL: no control characters (jsonb refuses \u0000).
      badSamples: page.bad.slice(0, 20).map((b) => ({
        position: printable(b.position),
        reason: printable(clean(b.reason)),
        ...(b.id === undefined ? {} : { id: printable(b.id) }),
      })),
      ids: page.records.filter((r) => sampled(r.id, dep.sample_rate)).map((r) => r.id),
      versions: [...new Set(page.records.map((r) => r.model_version))],
    };
  }

  function scoreRow(
    i: InteractionRow,
    input: JudgeCheckInput,
    fields: Partial<ScoreRow> & Pick<ScoreRow, 'status'>,
  ): ScoreRow {
    const now = Date.now();
    return {
      deployment: i.deployment,
      model_version: i.model_version,
      interaction_id: i.id,
      interaction_ts: i.ts,
      check_name: input.check,
      prompt_version: input.promptVersion,
      judge: input.judge,
      reason: '',
      score: null,
      coherence: null,
      relevance: null,
      accuracy: null,
      completeness: null,
      confidence: null,
      hate_speech: null,
      violence: null,
      profanity: null,
      reasoning: '',
      truncated: 0,
      latency_ms: 0,
      prompt_tokens: 0,
      completion_tokens: 0,
      attempts: Context.current().info.attempt,
      scored_at: Math.floor(now / 1000),
      ver: now,
      ...fields,
    };
  }

  async function loadInteraction(deployment: string, id: string): Promise<InteractionRow> {
    const row = await ch.getInteraction(deployment, id);
    if (!row) {
      raise('InteractionMissing', `interaction '${id}' of deployment '${deployment}' is not in ClickHouse`);
    }
    return row;
  }

  /** One judge check of one interaction: read the text, judge it, store one score row. */
  async function judgeCheck(input: JudgeCheckInput): Promise<JudgeOutcome> {
    const ctx = Context.current();
    const key = { ...input };
    if ((await ch.scoreStatus(key)) === 'ok') return { status: 'skipped', promptTokens: 0, completionTokens: 0, latencyMs: 0 };
    const row = await loadInteraction(input.deployment, input.interactionId);
    const { input: texts, truncated } = truncateForJudge({
      prompt: row.prompt,
      response: row.response,
      context: row.has_context ? row.context : undefined,
    });

    let result: AnyCheckResult;
    let promptTokens = 0;
    let completionTokens = 0;
    const started = Date.now();
    if (input.judge === 'offline') {
      result = offlineJudge(input.check, texts);
    } else if (deps.llm && input.judge === judgeName(config)) {
      const prior = (ctx.info.heartbeatDetails as { llmFailures?: number } | undefined)?.llmFailures ?? 0;
      try {
        const { system, user } = renderJudgePrompt(input.check, texts);
        const r = await deps.llm.json({ system, user, schema: checkResultSchemas[input.check] });
        result = r.value as AnyCheckResult;
        promptTokens = r.promptTokens;
        completionTokens = r.completionTokens;
      } catch (e) {
        if (e instanceof ApplicationFailure && isFailureType(e.type, LLM_COUNTED_TYPES)) {
          const llmFailures = prior + 1;
          ctx.heartbeat({ llmFailures });
          if (llmFailures > config.llm.maxRetries) {
            raise('LlmRetriesExhausted', `${e.message} (gave up after ${llmFailures} failed LLM calls; LLM_MAX_RETRIES=${config.llm.maxRetries})`);
          }
        }
        throw e;
      }
    } else {
      raise('JudgeUnavailable', `this worker cannot run judge '${input.judge}' (it is configured for '${judgeName(config)}'): give all workers the same GROQ_API_KEY / LLM_ENABLED / GROQ_MODEL`);
    }
    const latencyMs = Date.now() - started;
    const r = result as Record<string, unknown>;
    const n = (k: string) => (typeof r[k] === 'number' ? (r[k] as number) : null);
    await ch.insertScores([
      scoreRow(row, input, {
        status: 'ok',
        score: primaryScore(input.check, result),
        coherence: n('coherence'),
        relevance: n('relevance'),
        accuracy: n('accuracy'),
        completeness: n('completeness'),
        confidence: n('confidence'),
        hate_speech: n('hate_speech'),
        violence: n('violence'),
        profanity: n('profanity'),
        reasoning: typeof r.reasoning === 'string' ? r.reasoning.slice(0, 2000) : '',
        truncated: truncated ? 1 : 0,
        latency_ms: latencyMs,
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
      }),
    ]);
    return { status: 'ok', promptTokens, completionTokens, latencyMs };
  }

  /** Record a check that could not be scored, with its reason (never overwrites a good score). */
  async function recordCheckFailure(input: JudgeCheckInput & { reason: string }): Promise<void> {
    if ((await ch.scoreStatus(input)) === 'ok') return;
    const row = await loadInteraction(input.deployment, input.interactionId).catch(() => undefined);
    if (!row) return; // nothing to attach the failure to; the cycle reports it
    await ch.insertScores([scoreRow(row, input, { status: 'failed', reason: clean(input.reason).slice(0, 1000) })]);
  }

  async function advanceCursor(input: {
    deployment: string;
    from: string | null;
    to: string;
    cycleId: string;
  }): Promise<deployments.CursorAdvance> {
    return deployments.advanceCursor(db, input.deployment, input.from, input.to, input.cycleId);
  }

  async function recordCycle(r: CycleResult & { scheduledAt?: string }): Promise<void> {
    await recordCollectionRun(db, r);
  }

  return { cycleSettings, fetchPage, judgeCheck, recordCheckFailure, advanceCursor, recordCycle };
}

export type CollectorActivities = ReturnType<typeof createCollectorActivities>;
export type { BatchTotals };
