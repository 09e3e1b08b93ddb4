/**
 * Classification of what groq-sdk throws, by Groq's documented errors
 * (https://console.groq.com/docs/errors): a wait for 429 and 498, a counted failure to retry
 * (5xx, 408/409/425/499, timeouts, connection errors, 422, `json_validate_failed`), a lower
 * response format for a 400 saying the format is unsupported, or a failure not to retry
 * (401/403, 404, 413, other 4xx). Messages carry the server's own words, clipped and redacted;
 * `retry-after` is read here too.
 */
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError, GroqError } from 'groq-sdk';
import { ApplicationFailure } from '@temporalio/common';
import type { ReasoningEffort, ServiceTier } from '../../common/env-schema.js';
import type { LlmErrorType } from '../../common/failures.js';
import { redact } from '../../common/secrets.js';
import type { Format } from './model-traits.js';
import { capacityTooSmall, type Pacer } from './pacer.js';
import type { TokenUsage } from './usage.js';

/** Attached as the single `details` entry of the LLM failures (no text content). */
export interface LlmFailureDetails extends Partial<TokenUsage> {
  model: string;
  status?: number;
  latencyMs: number;
  retryAfterMs?: number;
  calls?: number;
  /** For LlmRetriesExhausted: the type of the last counted failure. */
  lastType?: string;
  maxCompletionTokens?: number;
  reasoningEffort?: ReasoningEffort;
}

/** How much of a server's error message goes into a failure message. */
const SERVER_MESSAGE_LIMIT = 300;

/** How an HTTP failure is handled. */
export type Verdict =
  | { kind: 'fatal'; type: LlmErrorType; message: string; extra: Partial<LlmFailureDetails> }
  | { kind: 'passthrough'; failure: ApplicationFailure }
  | { kind: 'wait'; type: LlmErrorType; status: number; message: string; retryAfterMs?: number; dayLimit?: 'RPD' | 'TPD' }
  | { kind: 'format'; message: string; scope: 'model' | 'call' }
  | { kind: 'counted'; type: LlmErrorType; message: string; status?: number; retryAfterMs?: number };

/** What `classify` needs to know of the client. */
export interface ClassifyContext {
  model: string;
  /** LLM_TIMEOUT, in seconds. */
  timeoutSec: number;
  /** The base URL, redacted, for messages. */
  endpoint: string;
  secrets: string[];
  serviceTier?: ServiceTier;
  /** Its limits and plan name the capacity a 413 refused. */
  pacer: Pacer;
}

/** How to handle what groq-sdk threw. */
export function classify(err: unknown, ctx: ClassifyContext, format: Format, maxCompletion: number, promptTokens: number): Verdict {
  const model = ctx.model;
  const fatal = (type: LlmErrorType, message: string, extra: Partial<LlmFailureDetails> = {}): Verdict => ({
    kind: 'fatal',
    type,
    message,
    extra,
  });
  const counted = (type: LlmErrorType, message: string, status?: number, retryAfterMs?: number): Verdict => ({
    kind: 'counted',
    type,
    message: redact(message, ctx.secrets),
    ...(status !== undefined ? { status } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });

  if (err instanceof ApplicationFailure) return { kind: 'passthrough', failure: err };
  // Subclass first: a timeout is also an APIConnectionError.
  if (err instanceof APIConnectionTimeoutError) {
    return counted('LlmTimeout', `Groq did not answer within ${ctx.timeoutSec}s (LLM_TIMEOUT); raise LLM_TIMEOUT if this keeps happening`);
  }
  if (err instanceof APIUserAbortError) return counted('LlmUnavailable', 'the Groq request was aborted before it finished');
  if (err instanceof APIConnectionError) {
    const why = describeCause((err as { cause?: unknown }).cause);
    return counted(
      'LlmUnavailable',
      `could not reach Groq at ${ctx.endpoint}${why ? ` (${why})` : ''}; check GROQ_BASE_URL and the network`,
    );
  }
  if (err instanceof APIError) {
    const status = typeof err.status === 'number' ? err.status : undefined;
    const server = serverMessage(err);
    const said = server ? `: ${server}` : '';
    const code = serverCode(err);
    const retryAfterMs = retryAfterMsOf(err.headers as Headers | undefined);
    const extra: Partial<LlmFailureDetails> = { status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };

    if (status === 429) {
      const limit = /\((RPM|RPD|TPM|TPD)\)/.exec(server ?? '')?.[1];
      return {
        kind: 'wait',
        type: 'LlmRateLimited',
        status,
        message: redact(`Groq rate limit reached for model ${model} (HTTP 429${limit ? `, ${limit}` : ''})${said}`, ctx.secrets),
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
        ...(limit === 'RPD' || limit === 'TPD' ? { dayLimit: limit } : {}),
      };
    }
    if (status === 498) {
      return {
        kind: 'wait',
        type: 'LlmRateLimited',
        status,
        message: redact(
          `Groq's flex tier has no capacity for model ${model} now (HTTP 498, GROQ_SERVICE_TIER=${ctx.serviceTier ?? 'unset'})${said}`,
          ctx.secrets,
        ),
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      };
    }
    if (status === 401 || status === 403) {
      return fatal(
        'LlmAuthError',
        `Groq rejected the API key (HTTP ${status}): set a valid GROQ_API_KEY or LLM_ENABLED=false${said}`,
        extra,
      );
    }
    if (status === 404) {
      return fatal(
        'LlmModelNotFound',
        `Groq does not know the model '${model}' (HTTP 404): set GROQ_MODEL to a model your account can use (and check GROQ_BASE_URL)${said}`,
        extra,
      );
    }
    if (status === 413) {
      const limit = Number(/Limit (\d+)/.exec(server ?? '')?.[1] ?? Number.NaN);
      const requested = Number(/Requested (\d+)/.exec(server ?? '')?.[1] ?? Number.NaN);
      const cap = Number.isFinite(limit) ? limit : ctx.pacer.limits.tpm;
      const tokens = Number.isFinite(requested) ? requested : promptTokens + maxCompletion;
      const f = capacityTooSmall('tpm', tokens, cap, ctx.pacer.plan);
      return fatal('LlmCapacity', `${f.message} (HTTP 413${said})`, { ...extra, maxCompletionTokens: maxCompletion });
    }
    if (status === 400 && code === 'json_validate_failed') {
      // The model's own output failed Groq's JSON check: a bad reply, worth another attempt.
      return counted(
        'LlmInvalidReply',
        `model ${model} returned an unusable reply: Groq rejected the model output as invalid JSON (HTTP 400 json_validate_failed)`,
        status,
      );
    }
    if (status === 400 && format !== 'plain' && formatUnsupported(server)) {
      return { kind: 'format', message: server ?? '', scope: 'model' };
    }
    if (status === 400 && (format === 'strict' || format === 'schema') && /schema/i.test(server ?? '')) {
      return { kind: 'format', message: server ?? '', scope: 'call' };
    }
    if (status === 422) {
      return counted('LlmInvalidReply', `Groq could not process the request (HTTP 422), a model glitch${said}`, status, retryAfterMs);
    }
    if (status === 408) return counted('LlmTimeout', `Groq timed out the request (HTTP 408)${said}`, status, retryAfterMs);
    if (status === 409 || status === 425 || status === 499) {
      return counted('LlmServerError', `Groq asked to try again (HTTP ${status})${said}`, status, retryAfterMs);
    }
    if (status !== undefined && status >= 500) {
      return counted('LlmServerError', `Groq server error (HTTP ${status}) for model ${model}${said}`, status, retryAfterMs);
    }
    if (status !== undefined && status >= 400) {
      return fatal(
        'LlmBadRequest',
        `Groq rejected the request (HTTP ${status}) for model ${model}${said}. Check GROQ_MODEL and the prompt size`,
        extra,
      );
    }
    return counted('LlmServerError', `unexpected answer from Groq (HTTP ${status ?? 'none'})${said}`, status);
  }
  if (err instanceof GroqError) return counted('LlmUnavailable', `Groq client error: ${truncate(err.message, SERVER_MESSAGE_LIMIT)}`);
  const msg = err instanceof Error ? err.message : String(err);
  return counted('LlmUnavailable', `LLM call failed: ${truncate(msg, SERVER_MESSAGE_LIMIT)}`);
}

/** Whether a 400's message says the response format is not supported (for this model). */
function formatUnsupported(message: string | undefined): boolean {
  if (!message) return false;
  return (
    /(response.?format|json_schema|json_object|json mode|structured output)/i.test(message) &&
    /(not supported|unsupported|does not support|not available)/i.test(message)
  );
}

export function statusOf(err: unknown): number | undefined {
  return err instanceof APIError && typeof err.status === 'number' ? err.status : undefined;
}

export function truncate(s: string, max: number): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length <= max ? one : `${one.slice(0, max)}…`;
}

/** The server's own error message from an APIError body (`{ error: { message } }` or `{ message }`). */
function serverMessage(err: APIError): string | undefined {
  const body = err.error as Record<string, unknown> | undefined;
  let m: unknown;
  if (body && typeof body === 'object') {
    const inner = body.error;
    if (inner && typeof inner === 'object') m = (inner as Record<string, unknown>).message;
    else if (typeof inner === 'string') m = inner;
    if (m === undefined) m = body.message;
  }
  if (typeof m !== 'string' || !m.trim()) return undefined;
  return truncate(m, SERVER_MESSAGE_LIMIT);
}

function serverCode(err: APIError): string | undefined {
  const body = err.error as Record<string, unknown> | undefined;
  const inner = body && typeof body === 'object' ? body.error : undefined;
  const code = inner && typeof inner === 'object' ? (inner as Record<string, unknown>).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

function describeCause(cause: unknown): string | undefined {
  if (!(cause instanceof Error)) return undefined;
  const inner = (cause as { cause?: unknown }).cause;
  const code = inner && typeof inner === 'object' ? (inner as { code?: unknown }).code : undefined;
  const text = inner instanceof Error ? inner.message : cause.message;
  return truncate(typeof code === 'string' ? `${code}: ${text}` : text, 160);
}

/**
 * The delay a 429/503 asks for, in ms: `retry-after-ms` first, then `retry-after` as seconds or
 * an HTTP date. Undefined when absent or unusable (a jittered backoff applies then).
 */
export function retryAfterMsOf(headers: Headers | undefined, now: number = Date.now()): number | undefined {
  if (!headers || typeof headers.get !== 'function') return undefined;
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '') {
    const n = Number(ms);
    if (Number.isFinite(n) && n >= 0) return Math.ceil(n);
  }
  const ra = headers.get('retry-after');
  if (ra === null || ra.trim() === '') return undefined;
  const secs = Number(ra);
  if (Number.isFinite(secs)) return secs >= 0 ? Math.ceil(secs * 1000) : undefined;
  const at = Date.parse(ra);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
