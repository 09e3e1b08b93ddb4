/**
 * Classification of what groq-sdk throws, by Groq's documented errors
 * (https://console.groq.com/docs/errors): a wait for 429 and 498, a counted failure to retry
 * (5xx, 408/409/425/499, timeouts, connection errors, 422, `json_validate_failed`), a lower
 * response format for a 400 saying the format is unsupported, or a failure not to retry
 * (401/403, 404, 413, 400 context length exceeded, other 4xx). Messages carry the server's own
 * words, redacted, then clipped; `retry-after` is read here too, and the size of a reply bounded.
 */
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError, GroqError } from 'groq-sdk';
import { ApplicationFailure } from '@temporalio/common';
import type { ReasoningEffort, ServiceTier } from '../../common/env-schema.js';
import type { LlmErrorType } from '../../common/failures.js';
import { redact } from '../../common/secrets.js';
import type { Format } from './model-traits.js';
import { DAY_MS, parseGroqDuration } from './budget.js';
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

/**
 * The most bytes of one response body read: a chat completion within any completion budget is
 * far smaller, and a server streaming without end must not fill the worker's heap.
 */
export const MAX_REPLY_BYTES = 4 * 1024 * 1024;

/** A response body longer than MAX_REPLY_BYTES (raised while it is read, see `limitReplySize`). */
export class ReplyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the reply is larger than ${Math.round(limit / 1024 / 1024)} MB`);
    this.name = 'ReplyTooLarge';
  }
}

/** `fetch` whose response bodies end with ReplyTooLarge beyond `max` bytes (the connection is dropped). */
export function limitReplySize(f: typeof fetch, max: number = MAX_REPLY_BYTES): typeof fetch {
  return async (input, init) => {
    const res = await f(input, init);
    if (!res.body || [101, 204, 205, 304].includes(res.status)) return res;
    let read = 0;
    const limited = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, ctl) {
          read += chunk.byteLength;
          if (read > max) ctl.error(new ReplyTooLarge(max));
          else ctl.enqueue(chunk);
        },
      }),
    );
    return new Response(limited, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
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
  if (err instanceof ReplyTooLarge) {
    return counted(
      'LlmInvalidReply',
      `model ${model} returned an unusable reply: ${err.message} (a chat completion is far smaller); check GROQ_BASE_URL and any proxy in between`,
    );
  }
  if (err instanceof APIConnectionError) {
    const why = describeCause((err as { cause?: unknown }).cause, ctx.secrets);
    return counted(
      'LlmUnavailable',
      `could not reach Groq at ${ctx.endpoint}${why ? ` (${why})` : ''}; check GROQ_BASE_URL and the network`,
    );
  }
  if (err instanceof APIError) {
    const status = typeof err.status === 'number' ? err.status : undefined;
    const server = serverMessage(err, ctx.secrets);
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
    if (status === 400 && code === 'model_decommissioned') {
      // Groq retires models on a schedule (https://console.groq.com/docs/deprecations): every
      // request for it fails alike, a configuration problem like an unknown model.
      return fatal(
        'LlmModelNotFound',
        `Groq has decommissioned the model '${model}' (HTTP 400 model_decommissioned): set GROQ_MODEL to its replacement, see https://console.groq.com/docs/deprecations${said}`,
        extra,
      );
    }
    if (status === 400 && contextLengthExceeded(code, server)) {
      // The prompt plus the completion budget do not fit the model's context window: the same
      // request can never succeed (https://console.groq.com/docs/errors: 400 is not retried).
      return fatal(
        'LlmCapacity',
        `the request (≈${promptTokens.toLocaleString('en-US')} prompt tokens + a completion budget of ${maxCompletion.toLocaleString('en-US')}) does not fit the context window of model ${model} (HTTP 400 context_length_exceeded${said}): ` +
          'shorten the judged texts, give the call a smaller answer budget or a lower LLM_REASONING_EFFORT, or set GROQ_MODEL to a model with a larger context window',
        { ...extra, maxCompletionTokens: maxCompletion },
      );
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
  if (err instanceof GroqError) {
    return counted('LlmUnavailable', `Groq client error: ${truncate(redact(err.message, ctx.secrets), SERVER_MESSAGE_LIMIT)}`);
  }
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof TypeError && /terminated|other side closed|socket/i.test(`${msg} ${describeCause(err, ctx.secrets) ?? ''}`)) {
    // undici's error for a body cut off after the headers (connection reset mid-reply).
    return counted(
      'LlmUnavailable',
      `the connection to Groq at ${ctx.endpoint} was lost while reading the reply (${truncate(redact(msg, ctx.secrets), 160)}); check GROQ_BASE_URL and the network, and any proxy in between`,
    );
  }
  return counted('LlmUnavailable', `LLM call failed: ${truncate(redact(msg, ctx.secrets), SERVER_MESSAGE_LIMIT)}`);
}

/** Whether a 400 says the request is longer than the model's context window (Groq's code, or OpenAI-style wording). */
function contextLengthExceeded(code: string | undefined, message: string | undefined): boolean {
  if (code === 'context_length_exceeded') return true;
  return !!message && /(context.length|context.window|maximum context|reduce the length of the messages)/i.test(message);
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

/**
 * The server's own error message from an APIError body (`{ error: { message } }` or `{ message }`),
 * redacted before it is clipped (a secret cut in two by the clip would no longer be found).
 */
function serverMessage(err: APIError, secrets: string[]): string | undefined {
  const body = err.error as Record<string, unknown> | undefined;
  let m: unknown;
  if (body && typeof body === 'object') {
    const inner = body.error;
    if (inner && typeof inner === 'object') m = (inner as Record<string, unknown>).message;
    else if (typeof inner === 'string') m = inner;
    if (m === undefined) m = body.message;
  }
  if (typeof m !== 'string' || !m.trim()) return undefined;
  return truncate(redact(m, secrets), SERVER_MESSAGE_LIMIT);
}

function serverCode(err: APIError): string | undefined {
  const body = err.error as Record<string, unknown> | undefined;
  const inner = body && typeof body === 'object' ? body.error : undefined;
  const code = inner && typeof inner === 'object' ? (inner as Record<string, unknown>).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

function describeCause(cause: unknown, secrets: string[]): string | undefined {
  if (!(cause instanceof Error)) return undefined;
  const inner = (cause as { cause?: unknown }).cause;
  const code = inner && typeof inner === 'object' ? (inner as { code?: unknown }).code : undefined;
  const text = inner instanceof Error ? inner.message : cause.message;
  return truncate(redact(typeof code === 'string' ? `${code}: ${text}` : text, secrets), 160);
}

/** The longest `retry-after` taken at its word: no Groq limit resets later than a day (https://console.groq.com/docs/rate-limits). */
export const MAX_RETRY_AFTER_MS = DAY_MS;

/**
 * The delay a 429/503 asks for, in ms: `retry-after-ms` first, then `retry-after` as seconds,
 * Groq's duration format (`2m59.56s`, as its `x-ratelimit-reset-*` headers) or an HTTP date.
 * Undefined when absent or unusable (negative, not a number, later than a day, a date without
 * a time of day): a jittered backoff applies then.
 */
export function retryAfterMsOf(headers: Headers | undefined, now: number = Date.now()): number | undefined {
  if (!headers || typeof headers.get !== 'function') return undefined;
  const usable = (n: number) => (Number.isFinite(n) && n >= 0 && n <= MAX_RETRY_AFTER_MS ? Math.ceil(n) : undefined);
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '') {
    const n = usable(Number(ms));
    if (n !== undefined) return n;
  }
  const ra = headers.get('retry-after');
  if (ra === null || ra.trim() === '') return undefined;
  const secs = Number(ra);
  if (Number.isFinite(secs)) return usable(secs * 1000);
  const duration = parseGroqDuration(ra);
  if (duration !== undefined) return usable(duration);
  // An HTTP date (RFC 9110 section 10.2.3) has a time of day; Date.parse alone reads '1 2' as a date in 2001.
  if (!/\d{1,2}:\d{2}:\d{2}/.test(ra)) return undefined;
  const at = Date.parse(ra);
  if (Number.isNaN(at)) return undefined;
  return usable(Math.max(0, at - now));
}
