/**
 * Budget-aware coverage: before a page is scored by the LLM judge, how much of it the LLM's
 * budget (requests and tokens per minute and per day, shared by every worker: activities/llm/
 * pacer.ts) can cover over the cycle's window. When it cannot cover all of it, the page is scored
 * on a deterministic sample (the same hash of the id as the deployment's sample rate) instead of
 * running into 429s or spending the day's budget in the first hour; the cycle says so.
 */
import type { CycleSettings } from '../../domain/collector/collection.js';
import { checkResultSchemas, combinedResultSchema, type Check } from '../../common/types.js';
import { renderCombinedPrompt, renderJudgePrompt } from '../../domain/judge/prompts.js';
import type { LlmClient } from '../llm/client.js';
import type { ClickHouseStore } from '../storage/clickhouse/store.js';
import { recentTokensPerCheck } from '../storage/postgres/collection-runs.js';
import type { Db } from '../storage/postgres/db.js';
import { getDeployment } from '../storage/postgres/deployments.js';
import { sampled } from './fetch.js';
import { ANSWER_TOKENS } from './judges.js';

export interface CoveragePlan {
  /** Absolute sampling threshold for this page (the deployment's sample rate × the share the budget covers). */
  rate: number;
  /** Why the rate is below the deployment's sample rate, or '' when it is not. */
  limitedBy: string;
  /** How many of the ids (those not covered yet) the rate adds, about. */
  adds: number;
}

/** Judged checks of the running cycle from which its own cost per check is trusted. */
const MIN_OBSERVED_CHECKS = 30;

const LIMIT_WORDS = {
  rpm: 'requests-per-minute limit',
  rpd: 'daily request budget',
  tpm: 'tokens-per-minute limit',
  tpd: 'daily token budget',
} as const;

/** Characters of the judge's own prompt around an interaction's texts (rubric, markers), per call. */
const EMPTY = { prompt: '', response: '' };
const PROMPT_CHARS = {
  combined: (() => {
    const p = renderCombinedPrompt(EMPTY);
    return p.system.length + p.user.length;
  })(),
  separate: (() => {
    const p = renderJudgePrompt('quality', EMPTY);
    return p.system.length + p.user.length;
  })(),
} as const;

/** The reply schema of a call in each mode (separate checks share one shape). */
const RESULT_SCHEMA = { combined: combinedResultSchema, separate: checkResultSchemas.quality } as const;

export async function planCoverage(
  deps: { ch: ClickHouseStore; db: Db; llm?: LlmClient },
  input: {
    deployment: string;
    ids: string[];
    checks: Check[];
    settings: CycleSettings;
    /** What is left of the cycle's budget window. */
    minutes: number;
    /** Tokens (counted toward the limits) and checks judged so far by this cycle. */
    observed?: { tokens: number; checks: number };
    /** A top-up of the page: ids under this threshold were judged already; the plan is for the rest. */
    coveredRate?: number;
  },
): Promise<CoveragePlan> {
  const dep = await getDeployment(deps.db, input.deployment);
  const sampleRate = dep?.sample_rate ?? 1;
  const covered = Math.min(input.coveredRate ?? 0, sampleRate);
  const ids = covered > 0 ? input.ids.filter((id) => !sampled(id, covered)) : input.ids;
  const all = { rate: sampleRate, limitedBy: '', adds: ids.length };
  const llm = deps.llm;
  if (input.settings.judge === 'offline' || !llm?.pacer.enabled || !ids.length) return all;
  const budget = await llm.pacer.budgetFor(input.minutes);
  const mode = input.settings.mode ?? 'separate';
  const callsPerInteraction = mode === 'combined' ? 1 : input.checks.length;
  // What a call reserves (prompt and completion budget: what must fit when it starts), and what an
  // interaction costs once settled (what recent cycles spent; else its reservation).
  const t = await deps.ch.textChars(input.deployment, ids);
  const text = t.interactions ? t.chars / t.interactions : 0;
  const reservation = llm.reservation({
    promptChars: PROMPT_CHARS[mode] + text,
    schema: RESULT_SCHEMA[mode],
    maxTokens: ANSWER_TOKENS[mode],
  });
  // What a check costs once settled: this cycle's own calls when there are enough of them, else
  // recent cycles', else the few calls this cycle made, else (nothing judged yet) its reservation.
  const o = input.observed;
  const own = o && o.checks > 0 && o.tokens > 0 ? o.tokens / o.checks : undefined;
  const perCheck =
    own !== undefined && o!.checks >= MIN_OBSERVED_CHECKS
      ? own
      : ((await recentTokensPerCheck(deps.db, input.deployment, input.settings.judge)) ?? own);
  const perInteraction = perCheck === undefined ? callsPerInteraction * reservation : perCheck * input.checks.length;
  const byTokens = budget.tokens === null ? Infinity : Math.max(0, budget.tokens - reservation) / perInteraction;
  const byRequests = budget.requests === null ? Infinity : budget.requests / callsPerInteraction;
  const affordable = Math.max(0, Math.floor(Math.min(byTokens, byRequests)));
  if (affordable >= ids.length) return all;
  const bucket = byTokens <= byRequests ? budget.limitedBy.tokens : budget.limitedBy.requests;
  // The ids left have their hashes spread evenly between the covered threshold and the sample rate.
  return {
    rate: covered + ((sampleRate - covered) * affordable) / ids.length,
    limitedBy: bucket ? LIMIT_WORDS[bucket] : 'LLM budget',
    adds: affordable,
  };
}
