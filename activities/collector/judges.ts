/**
 * Judging one interaction: the offline judge, or the LLM with one call for every check
 * (combined mode) or one call per check (separate mode). Returns one outcome per check; a
 * configuration problem of the LLM (bad key, unknown model) and a spent daily budget are thrown,
 * every other LLM failure becomes a failed outcome with its reason.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { z, ZodType } from 'zod';
import { isFailureType, LLM_FATAL_TYPES } from '../../common/failures.js';
import { checkResultSchemas, combinedResultSchema, type AnyCheckResult, type Check, type JudgeInput } from '../../common/types.js';
import type { JudgeMode } from '../../domain/collector/collection.js';
import { offlineVerdict, offlineVerdictInContext } from '../../domain/judge/offline-judge.js';
import { sentenceEncoder } from '../judge/sentence-encoder.js';
import { renderCombinedPrompt, renderJudgePrompt } from '../../domain/judge/prompts.js';

/** What the scorer needs of the LLM client (activities/llm/client.ts). */
export interface JudgeLlm {
  json<S extends ZodType>(opts: {
    system: string;
    user: string;
    schema: S;
    schemaName: string;
    maxTokens?: number;
    heartbeat?: () => void;
    signal?: AbortSignal;
  }): Promise<{
    value: z.output<S>;
    model: string;
    promptTokens: number;
    completionTokens: number;
    cachedTokens?: number;
    reasoningTokens?: number;
    latencyMs: number;
    calls?: number;
  }>;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  /** HTTP requests made. */
  calls: number;
  latencyMs: number;
}

export type CheckOutcome =
  | { check: Check; status: 'ok'; result: AnyCheckResult }
  | { check: Check; status: 'failed' | 'abstained'; reason: string };

export interface Judgement {
  outcomes: CheckOutcome[];
  /** Usage of the LLM for the whole interaction (all its checks). */
  usage: Usage;
}

/** Failures that stop the batch instead of being recorded per check. */
export const STOPPING_TYPES = [...LLM_FATAL_TYPES, 'LlmCapacity'] as const;

const noUsage = (): Usage => ({ promptTokens: 0, completionTokens: 0, cachedTokens: 0, reasoningTokens: 0, calls: 0, latencyMs: 0 });

function addUsage(u: Usage, r: Awaited<ReturnType<JudgeLlm['json']>>): void {
  u.promptTokens += r.promptTokens;
  u.completionTokens += r.completionTokens;
  u.cachedTokens += r.cachedTokens ?? 0;
  u.reasoningTokens += r.reasoningTokens ?? 0;
  u.calls += r.calls ?? 1;
  u.latencyMs = Math.max(u.latencyMs, r.latencyMs);
}

/** The reason stored with a failed check; a stopping failure is rethrown. */
function failedReason(e: unknown, clean: (s: string) => string): string {
  if (e instanceof ApplicationFailure) {
    if (isFailureType(e.type, STOPPING_TYPES)) throw e;
    return clean(`${e.type ?? 'Error'}: ${e.message}`);
  }
  throw e;
}

/** Answer budget (before reasoning) of one reply: a combined reply holds three judgements. */
export const ANSWER_TOKENS = { combined: 700, separate: 300 } as const;

export async function judgeInteraction(o: {
  judge: 'offline' | JudgeLlm;
  mode: JudgeMode;
  checks: readonly Check[];
  input: JudgeInput;
  clean: (s: string) => string;
  heartbeat?: () => void;
  signal?: AbortSignal;
}): Promise<Judgement> {
  const usage = noUsage();
  if (o.judge === 'offline') {
    // The sentence model is loaded (once per process) only when toxicity is judged.
    const encoder = o.checks.includes('toxicity') ? await sentenceEncoder() : undefined;
    const outcomes = await Promise.all(
      o.checks.map(async (check): Promise<CheckOutcome> => {
        const v = encoder ? await offlineVerdictInContext(check, o.input, encoder) : offlineVerdict(check, o.input);
        return 'abstained' in v ? { check, status: 'abstained', reason: v.abstained } : { check, status: 'ok', result: v.result };
      }),
    );
    return { outcomes, usage };
  }
  const llm = o.judge;
  if (o.mode === 'combined') {
    try {
      const r = await llm.json({
        ...renderCombinedPrompt(o.input),
        schema: combinedResultSchema,
        schemaName: 'judgement',
        maxTokens: ANSWER_TOKENS.combined,
        heartbeat: o.heartbeat,
        signal: o.signal,
      });
      addUsage(usage, r);
      return { outcomes: o.checks.map((check) => ({ check, status: 'ok', result: r.value[check] })), usage };
    } catch (e) {
      const reason = failedReason(e, o.clean);
      return { outcomes: o.checks.map((check) => ({ check, status: 'failed', reason })), usage };
    }
  }
  const outcomes = await Promise.all(
    o.checks.map(async (check): Promise<CheckOutcome> => {
      try {
        const r = await llm.json({
          ...renderJudgePrompt(check, o.input),
          schema: checkResultSchemas[check],
          schemaName: check,
          maxTokens: ANSWER_TOKENS.separate,
          heartbeat: o.heartbeat,
          signal: o.signal,
        });
        addUsage(usage, r);
        return { check, status: 'ok', result: r.value };
      } catch (e) {
        return { check, status: 'failed', reason: failedReason(e, o.clean) };
      }
    }),
  );
  return { outcomes, usage };
}
