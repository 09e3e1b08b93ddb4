/**
 * Usage accounting: the tokens of one reply (prompt, completion, cached and reasoning tokens,
 * from `usage`), the totals of one logical call, and the line and metrics recorded for every
 * HTTP request (without prompt or reply text, and redacted).
 */
import type Groq from 'groq-sdk';
import { redact } from '../../common/secrets.js';
import { recordLlmRequest } from '../metrics.js';

/** The tokens of a reply as Groq reports them in `usage` (cached ones are part of the prompt's, reasoning ones of the completion's). */
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
}

export interface Totals extends TokenUsage {
  calls: number;
}

export function usageOf(c: Groq.Chat.ChatCompletion | undefined): TokenUsage {
  const u = c?.usage;
  return {
    promptTokens: numberOr0(u?.prompt_tokens),
    completionTokens: numberOr0(u?.completion_tokens),
    cachedTokens: numberOr0(u?.prompt_tokens_details?.cached_tokens),
    reasoningTokens: numberOr0(u?.completion_tokens_details?.reasoning_tokens),
  };
}

function numberOr0(n: unknown): number {
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : 0;
}

/** One HTTP request as it is logged and counted. */
export interface RequestLog extends Partial<TokenUsage> {
  outcome: 'ok' | 'error';
  type?: string;
  model?: string;
  status?: number;
  latencyMs: number;
  waitMs?: number;
  next?: string;
}

/** The recorder of a client's requests: metrics, and one line to `log` (never failing the call). */
export function requestLogger(model: string, log: (line: string) => void, secrets: string[]): (f: RequestLog) => void {
  return (f) => {
    recordLlmRequest(model, f);
    const parts = ['llm_call', `outcome=${f.outcome}`, `model=${f.model ?? model}`, `latency_ms=${f.latencyMs}`];
    if (f.type) parts.push(`type=${f.type}`);
    if (f.status !== undefined) parts.push(`status=${f.status}`);
    if (f.promptTokens !== undefined) parts.push(`prompt_tokens=${f.promptTokens}`);
    if (f.completionTokens !== undefined) parts.push(`completion_tokens=${f.completionTokens}`);
    if (f.cachedTokens !== undefined) parts.push(`cached_tokens=${f.cachedTokens}`);
    if (f.reasoningTokens !== undefined) parts.push(`reasoning_tokens=${f.reasoningTokens}`);
    if (f.waitMs !== undefined) parts.push(`wait_ms=${f.waitMs}`);
    if (f.next) parts.push(`next=${f.next}`);
    try {
      log(redact(parts.join(' '), secrets));
    } catch {
      // logging must never fail a call
    }
  };
}
