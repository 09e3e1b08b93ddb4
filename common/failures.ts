/**
 * Every failure type the product raises, in one table: its name (the `type` of the Temporal
 * `ApplicationFailure`, shown in the Web UI) and whether retrying can help. Activity retry
 * policies (workflows/options.ts) derive their non-retryable lists from this table, so no error
 * name is typed twice. Pure and workflow-safe.
 */
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, type Duration } from '@temporalio/common';

export const FAILURES = {
  // Bad input or configuration: the caller must change something.
  InvalidInput: { retryable: false },
  UnknownDeployment: { retryable: false },
  InvalidSourceConfig: { retryable: false },
  UnknownSource: { retryable: false },
  CursorConflict: { retryable: false },
  CycleAlreadyRunning: { retryable: false },
  /** The cycle's lease on its deployment expired and another cycle holds it now: this one stops. */
  LeaseLost: { retryable: false },
  InteractionMissing: { retryable: false },
  JudgeUnavailable: { retryable: false },
  NoData: { retryable: false },
  // Outside services that may come back.
  SourceUnavailable: { retryable: true },
  DeployerUnavailable: { retryable: true },
  DeployerRejected: { retryable: false },
  NotifyUnavailable: { retryable: true },
  NotifyRejected: { retryable: false },
  // The LLM (see activities/llm/client.ts for the mapping from HTTP answers).
  LlmDisabled: { retryable: false },
  LlmAuthError: { retryable: false },
  LlmModelNotFound: { retryable: false },
  LlmBadRequest: { retryable: false },
  LlmRetriesExhausted: { retryable: false },
  /** The reply was cut at the completion-token limit even with the larger budget of the retry. */
  LlmReplyTruncated: { retryable: false },
  /** A request larger than the tokens-per-minute limit (413), or a daily cap spent for longer than LLM_MAX_WAIT. */
  LlmCapacity: { retryable: false },
  LlmRateLimited: { retryable: true },
  LlmServerError: { retryable: true },
  LlmUnavailable: { retryable: true },
  LlmTimeout: { retryable: true },
  LlmInvalidReply: { retryable: true },
} as const satisfies Record<string, { retryable: boolean }>;

export type FailureType = keyof typeof FAILURES;

/** Configuration problems of the LLM: every other call would fail the same way, so a cycle stops. */
export const LLM_FATAL_TYPES = ['LlmAuthError', 'LlmModelNotFound'] as const satisfies readonly FailureType[];

/** LLM failures that count against LLM_MAX_RETRIES (429 waits and store outages do not). */
export const LLM_COUNTED_TYPES = [
  'LlmServerError',
  'LlmUnavailable',
  'LlmTimeout',
  'LlmInvalidReply',
] as const satisfies readonly FailureType[];

export type LlmErrorType = Extract<FailureType, `Llm${string}`>;

/** The failure types a retry cannot help, optionally only among `among`. */
export function nonRetryableTypes(among?: readonly FailureType[]): FailureType[] {
  return (Object.keys(FAILURES) as FailureType[]).filter((t) => !FAILURES[t].retryable && (!among || among.includes(t)));
}

export function isFailureType<T extends FailureType>(type: string | null | undefined, of: readonly T[]): type is T {
  return !!type && (of as readonly string[]).includes(type);
}

export interface FailureOptions {
  /** Structured, text-free details (shown in the UI; never interaction texts or secrets). */
  details?: unknown[];
  /** Honour a server's retry-after. */
  nextRetryDelay?: Duration;
  cause?: Error;
}

/** An ApplicationFailure of a known type; non-retryable exactly when the table says so. */
export function failure(type: FailureType, message: string, opts: FailureOptions = {}): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message,
    nonRetryable: !FAILURES[type].retryable,
    ...(opts.details ? { details: opts.details } : {}),
    ...(opts.nextRetryDelay !== undefined ? { nextRetryDelay: opts.nextRetryDelay } : {}),
    ...(opts.cause ? { cause: opts.cause } : {}),
  });
}

/** Throw `failure(type, message, opts)`. */
export function raise(type: FailureType, message: string, opts?: FailureOptions): never {
  throw failure(type, message, opts);
}

/** The innermost cause of a failure seen by a workflow (through activity and child-workflow wrappers). */
export function rootCause(e: unknown): { type?: string; message: string; details?: unknown[] } {
  let cur: unknown = e;
  while ((cur instanceof ActivityFailure || cur instanceof ChildWorkflowFailure) && cur.cause) cur = cur.cause;
  if (cur instanceof ApplicationFailure) {
    return { type: cur.type ?? undefined, message: cur.message, ...(cur.details?.length ? { details: [...cur.details] } : {}) };
  }
  return { message: cur instanceof Error ? cur.message : String(cur) };
}
