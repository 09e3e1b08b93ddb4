/**
 * Retry policy and error type names for LLM activities. Pure and workflow-safe: no groq-sdk,
 * no Node APIs, only a type import from @temporalio/common.
 */
import type { RetryPolicy } from '@temporalio/common';

/**
 * Configuration problems: retrying cannot help, and every other call in the same cycle would
 * fail the same way, so the caller stops the whole cycle and tells the user what to fix.
 */
export const LLM_FATAL_ERROR_TYPES = ['LlmAuthError', 'LlmModelNotFound'] as const;

/** Every LLM failure type that Temporal must not retry. */
export const LLM_NON_RETRYABLE_TYPES = ['LlmAuthError', 'LlmModelNotFound', 'LlmBadRequest'] as const;

/** Failure types that are worth retrying (transient server, network or model-output problems). */
export const LLM_RETRYABLE_TYPES = [
  'LlmRateLimited',
  'LlmServerError',
  'LlmUnavailable',
  'LlmTimeout',
  'LlmInvalidReply',
] as const;

export type LlmErrorType =
  | (typeof LLM_NON_RETRYABLE_TYPES)[number]
  | (typeof LLM_RETRYABLE_TYPES)[number];

export function isLlmFatalErrorType(type: string | undefined | null): boolean {
  return !!type && (LLM_FATAL_ERROR_TYPES as readonly string[]).includes(type);
}

/**
 * The activity retry policy for LLM calls: `LLM_MAX_RETRIES` retries after the first attempt,
 * exponential backoff from 1 s up to 60 s. A 429's `retry-after` overrides the backoff through
 * the failure's `nextRetryDelay`.
 */
export function llmRetryPolicy(maxRetries: number): RetryPolicy {
  const retries = Number.isFinite(maxRetries) ? Math.max(0, Math.floor(maxRetries)) : 0;
  return {
    maximumAttempts: retries + 1,
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '60s',
    nonRetryableErrorTypes: [...LLM_NON_RETRYABLE_TYPES],
  };
}
