/**
 * The one LLM client every LLM integration point uses (judge checks and the agents).
 *
 * - groq-sdk with its own retries off: retries belong to Temporal's activity retry policy
 *   (`llmRetryPolicy` in workflows/options.ts), which sees every attempt in the workflow history.
 * - Every failure becomes an `ApplicationFailure` with a `type` from common/failures.ts, a message a
 *   user can act on and no secret in it (messages built from SDK errors go through `redact`).
 * - One log line per call, without any prompt/reply text and without the key.
 */
import Groq, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  GroqError,
} from 'groq-sdk';
import { ApplicationFailure } from '@temporalio/common';
import type { z, ZodType } from 'zod';
import { redact, secretsOf, type Config } from '../../common/config.js';
import { formatZodError } from '../../common/types.js';
import { failure, type LlmErrorType } from '../../common/failures.js';

export interface LlmCallResult<T> {
  value: T;
  model: string;
  promptTokens: number;
  completionTokens: number;
  latencyMs: number;
}

/** Attached as the single `details` entry of every LlmInvalidReply / HTTP failure (no text content). */
export interface LlmFailureDetails {
  model: string;
  status?: number;
  latencyMs: number;
  promptTokens?: number;
  completionTokens?: number;
  retryAfterMs?: number;
}

export interface LlmClientOptions {
  /** Receives one line per call. Default: console.log. */
  log?: (line: string) => void;
  /** Injected fetch (tests, proxies). Default: the global fetch. */
  fetch?: typeof fetch;
}

export interface LlmJsonOptions<S extends ZodType = ZodType> {
  system: string;
  user: string;
  /** Validates the parsed reply; its output type is the call's value type (unions of schemas work). */
  schema: S;
  maxTokens?: number;
}

const DEFAULT_MAX_TOKENS = 1024;
/** How much of a server's error message goes into a failure message. */
const SERVER_MESSAGE_LIMIT = 300;

export class LlmClient {
  readonly model: string;
  readonly timeoutSec: number;
  private readonly groq: Groq;
  private readonly secrets: string[];
  private readonly log: (line: string) => void;
  private readonly endpoint: string;

  constructor(cfg: Config, opts: LlmClientOptions = {}) {
    this.model = cfg.groq.model;
    this.timeoutSec = cfg.llm.timeoutSec;
    this.secrets = secretsOf(cfg);
    this.log = opts.log ?? ((line) => console.log(line));
    if (!cfg.groq.apiKey) {
      throw failure('LlmAuthError', 'GROQ_API_KEY is not set: set it to use the Groq judge, or LLM_ENABLED=false for the offline judge');
    }
    // An explicit baseURL always: otherwise groq-sdk reads GROQ_BASE_URL from the environment on
    // its own, behind the validated configuration's back.
    const baseURL = cfg.groq.baseURL ?? 'https://api.groq.com';
    this.endpoint = redact(baseURL, this.secrets);
    this.groq = new Groq({
      apiKey: cfg.groq.apiKey,
      baseURL,
      maxRetries: 0,
      timeout: Math.max(1, Math.round(cfg.llm.timeoutSec * 1000)),
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
    });
  }

  /**
   * One chat completion in JSON mode at temperature 0, parsed and validated with `schema`.
   * Throws `ApplicationFailure` (see the module comment for the types).
   */
  async json<S extends ZodType>(opts: LlmJsonOptions<S>): Promise<LlmCallResult<z.output<S>>> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    let completion: Groq.Chat.ChatCompletion;
    try {
      completion = await this.groq.chat.completions.create({
        model: this.model,
        messages: [
          { role: 'system', content: opts.system },
          { role: 'user', content: opts.user },
        ],
        response_format: { type: 'json_object' },
        temperature: 0,
        max_completion_tokens: opts.maxTokens ?? DEFAULT_MAX_TOKENS,
        stream: false,
      });
    } catch (err) {
      const failure = this.mapError(err, elapsed());
      this.logLine({ outcome: 'error', type: failure.type ?? 'LlmError', latencyMs: elapsed(), status: statusOf(err) });
      throw failure;
    }

    const latencyMs = elapsed();
    const model = typeof completion.model === 'string' && completion.model ? completion.model : this.model;
    const promptTokens = numberOr0(completion.usage?.prompt_tokens);
    const completionTokens = numberOr0(completion.usage?.completion_tokens);
    const usage = { model, latencyMs, promptTokens, completionTokens };

    const invalid = (what: string): ApplicationFailure => {
      this.logLine({ outcome: 'error', type: 'LlmInvalidReply', ...usage });
      return failure('LlmInvalidReply', redact(`model ${model} returned an unusable reply: ${what}`, this.secrets), {
        details: [usage satisfies LlmFailureDetails],
      });
    };

    const choices = (completion as { choices?: unknown }).choices;
    if (!Array.isArray(choices) || choices.length === 0) throw invalid('the reply has no choices');
    const choice = choices[0] as Groq.Chat.ChatCompletion.Choice | undefined;
    const content = choice?.message?.content;
    const finish = choice?.finish_reason;
    const finishNote =
      finish === 'length'
        ? ` (finish_reason=length: the reply hit the ${opts.maxTokens ?? DEFAULT_MAX_TOKENS}-token limit)`
        : finish
          ? ` (finish_reason=${String(finish)})`
          : '';
    if (typeof content !== 'string' || content.trim() === '') throw invalid(`the reply content is empty${finishNote}`);

    let parsed: unknown;
    try {
      parsed = JSON.parse(content);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw invalid(`the reply is not valid JSON (${content.length} characters; ${truncate(why, 120)})${finishNote}`);
    }

    const checked = opts.schema.safeParse(parsed);
    if (!checked.success) {
      throw invalid(`the reply does not match the expected schema: ${truncate(formatZodError(checked.error), 500)}`);
    }

    this.logLine({ outcome: 'ok', ...usage });
    return { value: checked.data as z.output<S>, ...usage };
  }

  /** Map anything groq-sdk throws to an ApplicationFailure. */
  private mapError(err: unknown, latencyMs: number): ApplicationFailure {
    const model = this.model;
    const base = { model, latencyMs };
    const fail = (type: LlmErrorType, message: string, extra: Partial<LlmFailureDetails> = {}, nextRetryDelay?: number) =>
      failure(type, redact(message, this.secrets), { details: [{ ...base, ...extra } satisfies LlmFailureDetails], nextRetryDelay });

    if (err instanceof ApplicationFailure) return err;

    // Subclass first: a timeout is also an APIConnectionError.
    if (err instanceof APIConnectionTimeoutError) {
      return fail(
        'LlmTimeout',
        `Groq did not answer within ${this.timeoutSec}s (LLM_TIMEOUT); the call will be retried. Raise LLM_TIMEOUT if this keeps happening`,
      );
    }
    if (err instanceof APIUserAbortError) {
      return fail('LlmUnavailable', 'the Groq request was aborted before it finished');
    }
    if (err instanceof APIConnectionError) {
      const cause = (err as { cause?: unknown }).cause;
      const why = describeCause(cause);
      return fail(
        'LlmUnavailable',
        `could not reach Groq at ${this.endpoint}${why ? ` (${why})` : ''}; the call will be retried. Check GROQ_BASE_URL and the network`,
      );
    }
    if (err instanceof APIError) {
      const status = typeof err.status === 'number' ? err.status : undefined;
      const server = serverMessage(err);
      const said = server ? `: ${server}` : '';
      const code = serverCode(err);
      const headers = err.headers as Headers | undefined;
      const retryAfterMs = retryAfterMsOf(headers);
      const extra: Partial<LlmFailureDetails> = { status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };

      if (status === 429) {
        const when =
          retryAfterMs !== undefined
            ? `retrying after ${formatSeconds(retryAfterMs)} as the server asked`
            : 'retrying with backoff';
        return fail(
          'LlmRateLimited',
          `Groq rate limit reached for model ${model} (HTTP 429), ${when}. Lower LLM_REQUESTS_PER_SECOND to the account's limit if this persists${said}`,
          extra,
          retryAfterMs,
        );
      }
      if (status === 401 || status === 403) {
        return fail(
          'LlmAuthError',
          `Groq rejected the API key (HTTP ${status}): set a valid GROQ_API_KEY or LLM_ENABLED=false${said}`,
          extra,
        );
      }
      if (status === 404) {
        return fail(
          'LlmModelNotFound',
          `Groq does not know the model '${model}' (HTTP 404): set GROQ_MODEL to a model your account can use (and check GROQ_BASE_URL)${said}`,
          extra,
        );
      }
      if (status === 400 && code === 'json_validate_failed') {
        // Groq's JSON mode answers 400 when the model's own output was not valid JSON: a bad
        // reply, not a bad request, so it is worth another attempt.
        return fail(
          'LlmInvalidReply',
          `model ${model} returned an unusable reply: Groq's JSON mode rejected the model output as invalid JSON (HTTP 400 json_validate_failed)`,
          extra,
        );
      }
      if (status === 408) {
        return fail('LlmTimeout', `Groq timed out the request (HTTP 408); the call will be retried${said}`, extra, retryAfterMs);
      }
      if (status === 409 || status === 425) {
        return fail('LlmServerError', `Groq asked to try again later (HTTP ${status})${said}`, extra, retryAfterMs);
      }
      if (status === 498) {
        return fail('LlmUnavailable', `Groq has no capacity for this request now (HTTP 498); the call will be retried${said}`, extra, retryAfterMs);
      }
      if (status !== undefined && status >= 500) {
        return fail(
          'LlmServerError',
          `Groq server error (HTTP ${status}) for model ${model}; the call will be retried${said}`,
          extra,
          retryAfterMs,
        );
      }
      if (status !== undefined && status >= 400) {
        return fail(
          'LlmBadRequest',
          `Groq rejected the request (HTTP ${status}) for model ${model}${said}. Check GROQ_MODEL and the prompt size`,
          extra,
        );
      }
      return fail('LlmServerError', `unexpected answer from Groq (HTTP ${status ?? 'none'})${said}`, extra);
    }
    if (err instanceof GroqError) {
      return fail('LlmUnavailable', `Groq client error: ${truncate(err.message, SERVER_MESSAGE_LIMIT)}`);
    }
    const msg = err instanceof Error ? err.message : String(err);
    return fail('LlmUnavailable', `LLM call failed: ${truncate(msg, SERVER_MESSAGE_LIMIT)}`);
  }

  private logLine(f: {
    outcome: 'ok' | 'error';
    type?: string;
    model?: string;
    status?: number;
    latencyMs: number;
    promptTokens?: number;
    completionTokens?: number;
  }): void {
    const parts = [
      'llm_call',
      `outcome=${f.outcome}`,
      `model=${f.model ?? this.model}`,
      `latency_ms=${f.latencyMs}`,
    ];
    if (f.type) parts.push(`type=${f.type}`);
    if (f.status !== undefined) parts.push(`status=${f.status}`);
    if (f.promptTokens !== undefined) parts.push(`prompt_tokens=${f.promptTokens}`);
    if (f.completionTokens !== undefined) parts.push(`completion_tokens=${f.completionTokens}`);
    try {
      this.log(redact(parts.join(' '), this.secrets));
    } catch {
      // logging must never fail a call
    }
  }
}

function numberOr0(n: unknown): number {
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : 0;
}

function statusOf(err: unknown): number | undefined {
  return err instanceof APIError && typeof err.status === 'number' ? err.status : undefined;
}

function truncate(s: string, max: number): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length <= max ? one : `${one.slice(0, max)}…`;
}

function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)}s`;
}

/** The server's own error message from an APIError body (`{ error: { message } }` or `{ message }`). */
function serverMessage(err: APIError): string | undefined {
  const body = err.error as Record<string, unknown> | undefined;
  let m: unknown;
  if (body && typeof body === 'object') {
    const inner = body['error'];
    if (inner && typeof inner === 'object') m = (inner as Record<string, unknown>)['message'];
    else if (typeof inner === 'string') m = inner;
    if (m === undefined) m = body['message'];
  }
  if (typeof m !== 'string' || !m.trim()) return undefined;
  return truncate(m, SERVER_MESSAGE_LIMIT);
}

function serverCode(err: APIError): string | undefined {
  const body = err.error as Record<string, unknown> | undefined;
  const inner = body && typeof body === 'object' ? body['error'] : undefined;
  const code = inner && typeof inner === 'object' ? (inner as Record<string, unknown>)['code'] : undefined;
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
 * an HTTP date. Undefined when absent or unusable (the retry policy's backoff applies then).
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
