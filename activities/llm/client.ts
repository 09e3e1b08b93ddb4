/**
 * The one LLM client every LLM integration point uses (judge and agents), on groq-sdk with its
 * own retries off. One logical call (`json`) may make several HTTP requests:
 *
 * 1. Pace: take one request and the estimated tokens from the shared budget (pacer.ts), waiting
 *    if needed (https://console.groq.com/docs/rate-limits).
 * 2. Request: temperature 0; for reasoning models `reasoning_effort` (LLM_REASONING_EFFORT) and
 *    `include_reasoning: false` (https://console.groq.com/docs/reasoning: reasoning tokens count
 *    inside `completion_tokens` and `max_completion_tokens`, so the completion budget is the
 *    answer budget plus a reasoning allowance by effort); `response_format` strict `json_schema`
 *    where the model supports it (https://console.groq.com/docs/structured-outputs), else
 *    `json_object`; `service_tier` when GROQ_SERVICE_TIER is set
 *    (https://console.groq.com/docs/flex-processing).
 *    LLM_TIMEOUT bounds each request whole, its body included, and a body is read up to
 *    MAX_REPLY_BYTES (errors.ts).
 * 3. Classify the answer (errors.ts, reply.ts; https://console.groq.com/docs/errors):
 *    - 429 and 498: wait `retry-after` (or a jittered backoff), pause every caller through the
 *      pacer, retry; never counted as failures; after LLM_MAX_WAIT in all: `LlmRateLimited`
 *      (retryable), or `LlmCapacity` when a daily limit (RPD/TPD) is what is spent.
 *      A `retry-after` that did not help does not shorten the next wait below the backoff.
 *    - 5xx, 408/409/425/499, timeouts, connection errors, 422, `json_validate_failed`, replies
 *      that do not parse or do not match the schema, bodies that are no chat completion:
 *      counted; retried here with exponential backoff and full jitter (or the `retry-after`, if
 *      longer) up to LLM_MAX_RETRIES counted failures, then `LlmRetriesExhausted`
 *      (non-retryable) naming the last reason; a `retry-after` beyond LLM_MAX_WAIT fails at
 *      once with the failure's own (retryable) type and that delay.
 *    - `finish_reason: length` (the budget was spent, often on reasoning): retried once with
 *      twice the budget, then `LlmReplyTruncated` (non-retryable) naming budget and effort.
 *    - 400 saying the response format is unsupported: this client falls back to `json_object`
 *      for its model, then to no response format (parse and validate only); not counted.
 *    - 401/403 `LlmAuthError`, 404 `LlmModelNotFound`, 413 `LlmCapacity` (the request is larger
 *      than the tokens-per-minute limit), 400 `context_length_exceeded` `LlmCapacity` (larger than
 *      the model's context window; `LlmReplyTruncated` when only the retry's doubled budget is),
 *      other 4xx `LlmBadRequest`: not retried.
 * 4. Usage (prompt, completion, cached and reasoning tokens), bounded by what the request allows
 *    (`plausibleUsage`), settles the budget and is returned.
 *
 * Every failure is an `ApplicationFailure` with a type from common/failures.ts and a message
 * without secrets (`redact`). One log line per HTTP request, without prompt/reply text or key
 * (usage.ts). What each model supports and its response formats: model-traits.ts.
 */
import Groq, { APIConnectionTimeoutError, APIError } from 'groq-sdk';
import type { ChatCompletionCreateParamsNonStreaming } from 'groq-sdk/resources/chat/completions';
import type { ApplicationFailure } from '@temporalio/common';
import type { z, ZodType } from 'zod';
import type { Config } from '../../common/config.js';
import { failure, type LlmErrorType } from '../../common/failures.js';
import { redact, secretsOf } from '../../common/secrets.js';
import type { Db } from '../storage/postgres/db.js';
import { classify, limitReplySize, statusOf, type ClassifyContext, type LlmFailureDetails } from './errors.js';
import { lower, lowest, modelTraits, REASONING_ALLOWANCE, responseFormatOf, type Format, type ModelTraits } from './model-traits.js';
import { abortableSleep, abortReason, capacityTooSmall, formatDuration, Pacer } from './pacer.js';
import { checkReply } from './reply.js';
import { schemaNameOf, strictJsonSchema } from './schema.js';
import { requestLogger, usageOf, type RequestLog, type TokenUsage, type Totals } from './usage.js';

export interface LlmCallResult<T> {
  value: T;
  model: string;
  /** Tokens of every request this call made (failed ones too: they are billed). */
  promptTokens: number;
  /** Includes the reasoning tokens. */
  completionTokens: number;
  /** Prompt tokens served from Groq's prompt cache. */
  cachedTokens: number;
  reasoningTokens: number;
  latencyMs: number;
  /** HTTP requests this call made. */
  calls: number;
}

export interface LlmClientOptions {
  /** Receives one line per HTTP request. Default: console.log. */
  log?: (line: string) => void;
  /** Injected fetch (tests, proxies). Default: the global fetch. */
  fetch?: typeof fetch;
  /** The pacer; default: one over `db` (budgets shared by all workers), else in this process. */
  pacer?: Pacer;
  db?: Db;
  /** Backoff of counted failures: full jitter over base × 2^(n-1), at most cap (ms). */
  backoff?: { baseMs?: number; capMs?: number };
  /** How often `heartbeat` is called during a call (ms; default 5000). */
  heartbeatMs?: number;
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface LlmJsonOptions<S extends ZodType = ZodType> {
  system: string;
  user: string;
  /** Validates the parsed reply; its output type is the call's value type (unions of schemas work). */
  schema: S;
  /** Name of the schema in `response_format.json_schema` (default 'reply'). */
  schemaName?: string;
  /** Answer budget in tokens, before the reasoning allowance (default 1024). */
  maxTokens?: number;
  /** Called at least every few seconds while the call waits or runs (activity heartbeats). */
  heartbeat?: () => void;
  signal?: AbortSignal;
}

export const DEFAULT_ANSWER_TOKENS = 1024;

/** Tokens of the chat template around the two messages. */
const TEMPLATE_TOKENS = 16;
/** Waits of 429/498 without `retry-after`: full jitter over 1 s × 2^n, at most 60 s. */
const RATE_BACKOFF = { baseMs: 1000, capMs: 60_000 };

export class LlmClient {
  readonly model: string;
  readonly timeoutSec: number;
  readonly pacer: Pacer;
  /** LLM_TIMEOUT in ms: the most one HTTP request may take, its body included. */
  private readonly timeoutMs: number;
  private readonly cfg: Config;
  private readonly groq: Groq;
  private readonly secrets: string[];
  private readonly logLine: (f: RequestLog) => void;
  private readonly classifyContext: ClassifyContext;
  private readonly traits: ModelTraits;
  /** The response format this client uses for its model (lowered when Groq refuses one). */
  private format: Format;
  private readonly backoff: { baseMs: number; capMs: number };
  private readonly heartbeatMs: number;
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(cfg: Config, opts: LlmClientOptions = {}) {
    this.cfg = cfg;
    this.model = cfg.groq.model;
    this.timeoutSec = cfg.llm.timeoutSec;
    this.timeoutMs = Math.max(1, Math.round(cfg.llm.timeoutSec * 1000));
    this.secrets = secretsOf(cfg);
    this.logLine = requestLogger(this.model, opts.log ?? ((line) => console.log(line)), this.secrets);
    if (!cfg.groq.apiKey) {
      throw failure('LlmAuthError', 'GROQ_API_KEY is not set: set it to use the Groq judge, or LLM_ENABLED=false for the offline judge');
    }
    // An explicit baseURL always: otherwise groq-sdk reads GROQ_BASE_URL from the environment on
    // its own, behind the validated configuration's back.
    const baseURL = cfg.groq.baseURL ?? 'https://api.groq.com';
    const endpoint = redact(baseURL, this.secrets);
    this.groq = new Groq({
      apiKey: cfg.groq.apiKey,
      baseURL,
      maxRetries: 0,
      timeout: this.timeoutMs,
      fetch: limitReplySize(opts.fetch ?? ((input, init) => fetch(input, init))),
    });
    this.traits = modelTraits(this.model);
    this.format = this.traits.format;
    this.pacer = opts.pacer ?? new Pacer(cfg, { db: opts.db });
    this.classifyContext = {
      model: this.model,
      timeoutSec: this.timeoutSec,
      endpoint,
      secrets: this.secrets,
      serviceTier: cfg.groq.serviceTier,
      pacer: this.pacer,
    };
    this.backoff = { baseMs: opts.backoff?.baseMs ?? 1000, capMs: opts.backoff?.capMs ?? 30_000 };
    this.heartbeatMs = opts.heartbeatMs ?? 5000;
    this.random = opts.random ?? Math.random;
    this.sleep = opts.sleep ?? abortableSleep;
  }

  /** The reasoning allowance of this client's model and effort (0 for models that do not reason). */
  get reasoningAllowance(): number {
    return this.traits.reasoning === 'none' ? 0 : REASONING_ALLOWANCE[this.cfg.llm.reasoningEffort];
  }

  /**
   * The tokens a call would reserve now (prompt, schema, chat template and its completion budget
   * before any header correction): what must fit the limits when it starts.
   */
  reservation(opts: { promptChars: number; schema: ZodType; maxTokens?: number }): number {
    const strict = strictJsonSchema(opts.schema);
    const format = lowest(this.format, 'error' in strict ? 'object' : undefined);
    const schemaChars = responseFormatOf(format, 'x', strict).schemaChars ?? 0;
    const promptTokens = Math.ceil((opts.promptChars + schemaChars) / 4) + TEMPLATE_TOKENS;
    const budget = Math.max(1, Math.floor(opts.maxTokens ?? DEFAULT_ANSWER_TOKENS)) + this.reasoningAllowance;
    const tpm = this.pacer.limits.tpm;
    return promptTokens + (tpm > 0 ? Math.min(budget, Math.max(0, tpm - promptTokens)) : budget);
  }

  /**
   * One logical JSON call: parsed and validated with `schema`. Throws `ApplicationFailure` (see
   * the module comment for the types).
   */
  async json<S extends ZodType>(opts: LlmJsonOptions<S>): Promise<LlmCallResult<z.output<S>>> {
    const beat = () => {
      try {
        opts.heartbeat?.();
      } catch {
        // a heartbeat must never fail a call
      }
    };
    beat();
    const timer = opts.heartbeat ? setInterval(beat, this.heartbeatMs) : undefined;
    timer?.unref?.();
    try {
      // A signal of this call's own, following the caller's: listeners of the SDK and of the
      // waits go on it, not on a signal many concurrent calls share.
      return await this.run(opts.signal ? { ...opts, signal: AbortSignal.any([opts.signal]) } : opts);
    } finally {
      if (timer) clearInterval(timer);
    }
  }

  private async run<S extends ZodType>(opts: LlmJsonOptions<S>): Promise<LlmCallResult<z.output<S>>> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const deadline = Date.now() + this.cfg.llm.maxWaitSec * 1000;
    const totals: Totals = { promptTokens: 0, completionTokens: 0, cachedTokens: 0, reasoningTokens: 0, calls: 0 };
    const effort = this.cfg.llm.reasoningEffort;
    const answer = Math.max(1, Math.floor(opts.maxTokens ?? DEFAULT_ANSWER_TOKENS));
    const allowance = this.reasoningAllowance;
    const schemaName = schemaNameOf(opts.schemaName);
    const strict = strictJsonSchema(opts.schema);
    let callFormat: Format | undefined = 'error' in strict ? 'object' : undefined;
    let budgetFactor = 1;
    let counted = 0;
    let rateWaits = 0;
    let last: { type: LlmErrorType; message: string; status?: number } | undefined;

    const details = (extra: Partial<LlmFailureDetails> = {}): LlmFailureDetails => ({
      model: this.model,
      latencyMs: elapsed(),
      ...totals,
      reasoningEffort: effort,
      ...extra,
    });
    const fail = (type: LlmErrorType, message: string, extra: Partial<LlmFailureDetails> = {}, nextRetryDelay?: number) =>
      failure(type, redact(message, this.secrets), { details: [details(extra)], nextRetryDelay });

    for (;;) {
      if (opts.signal?.aborted) throw abortReason(opts.signal);
      const format = lowest(this.format, callFormat);
      const responseFormat = responseFormatOf(format, schemaName, strict);
      const promptTokens = Math.ceil((opts.system.length + opts.user.length + (responseFormat.schemaChars ?? 0)) / 4) + TEMPLATE_TOKENS;
      const tpm = this.pacer.limits.tpm;
      let maxCompletion = Math.floor((answer + allowance) * budgetFactor);
      if (tpm > 0) {
        if (promptTokens + answer > tpm) throw capacityTooSmall('tpm', promptTokens + answer + allowance, tpm, this.pacer.plan);
        maxCompletion = Math.min(maxCompletion, tpm - promptTokens);
      }
      const reservation = await this.pacer.acquire(promptTokens + maxCompletion, { deadline, signal: opts.signal });

      const params: ChatCompletionCreateParamsNonStreaming = {
        model: this.model,
        messages: [
          { role: 'system', content: opts.system },
          { role: 'user', content: opts.user },
        ],
        temperature: 0,
        max_completion_tokens: maxCompletion,
        stream: false,
        ...(responseFormat.param ? { response_format: responseFormat.param } : {}),
        ...(this.traits.reasoning === 'effort' ? { reasoning_effort: effort, include_reasoning: false } : {}),
        ...(this.traits.reasoning === 'hidden' ? { reasoning_format: 'hidden' as const } : {}),
        ...(this.cfg.groq.serviceTier ? { service_tier: this.cfg.groq.serviceTier } : {}),
      };

      totals.calls++;
      const t0 = performance.now();
      let completion: unknown;
      let headers: Headers;
      // LLM_TIMEOUT bounds the whole request, body included: the SDK's own timeout ends when the
      // headers arrive, so a reply whose body never finishes would otherwise wait forever.
      const timeout = new AbortController();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        timeout.abort();
      }, this.timeoutMs);
      try {
        const { data, response } = await this.groq.chat.completions
          // A signal per request: the SDK never removes its listener, and a call may send many.
          .create(params, { signal: opts.signal ? AbortSignal.any([opts.signal, timeout.signal]) : timeout.signal })
          .withResponse();
        clearTimeout(timer);
        completion = data;
        headers = response.headers;
      } catch (thrown) {
        clearTimeout(timer);
        const err = timedOut && !opts.signal?.aborted ? new APIConnectionTimeoutError() : thrown;
        const latencyMs = Math.round(performance.now() - t0);
        if (opts.signal?.aborted) {
          await this.bookkeeping(() => this.pacer.settle(reservation, 0));
          throw abortReason(opts.signal);
        }
        if (err instanceof APIError) {
          // Groq answered without generating: its headers still count, the tokens come back.
          await this.bookkeeping(() => this.pacer.observe(err.headers as Headers | undefined));
          await this.bookkeeping(() => this.pacer.settle(reservation, 0));
        } else {
          // No answer (connection lost, timeout): the tokens may have been spent; keep them taken.
          await this.bookkeeping(() => this.pacer.settle(reservation, reservation.tokens));
        }
        const v = classify(err, this.classifyContext, format, maxCompletion, promptTokens);
        const status = statusOf(err);
        if (v.kind === 'passthrough') throw v.failure;
        if (v.kind === 'fatal') {
          if (v.type === 'LlmCapacity' && status === 400 && budgetFactor > 1) {
            // Only the doubled budget of the retry after a cut reply is too large for the context
            // window: the reply stays cut, a failure of this call and not of every call's size.
            this.logLine({ outcome: 'error', type: 'LlmReplyTruncated', latencyMs, status, next: 'fail' });
            throw fail(
              'LlmReplyTruncated',
              `model ${this.model} was cut off at its completion limit, and the retry's larger budget of ${maxCompletion} tokens does not fit its context window: ${v.message}`,
              { ...v.extra, maxCompletionTokens: maxCompletion },
            );
          }
          this.logLine({ outcome: 'error', type: v.type, latencyMs, status, next: 'fail' });
          throw fail(v.type, v.message, v.extra);
        }
        if (v.kind === 'format') {
          this.logLine({ outcome: 'error', type: 'LlmBadRequest', latencyMs, status, next: 'switch_format' });
          if (v.scope === 'model') this.format = lower(format);
          else callFormat = lower(format);
          continue;
        }
        if (v.kind === 'wait') {
          const backoffMs = fullJitter(this.random, RATE_BACKOFF.baseMs, RATE_BACKOFF.capMs, rateWaits++);
          // The server's retry-after, but once it has not helped, never less than the backoff: a
          // server answering 429 with `retry-after: 0` again and again is not hammered.
          const waitMs =
            v.retryAfterMs !== undefined
              ? Math.max(v.retryAfterMs + this.random() * clamp(v.retryAfterMs * 0.1, 100, 2000), rateWaits > 1 ? backoffMs : 0)
              : backoffMs;
          if (Date.now() + waitMs > deadline) {
            this.logLine({ outcome: 'error', type: v.dayLimit ? 'LlmCapacity' : v.type, latencyMs, status, next: 'fail' });
            if (v.dayLimit) {
              const env = v.dayLimit === 'RPD' ? 'GROQ_RPD' : 'GROQ_TPD';
              throw fail(
                'LlmCapacity',
                `Groq's ${v.dayLimit === 'RPD' ? 'requests' : 'tokens'}-per-day limit (${v.dayLimit}) for model ${this.model} is reached and frees up in ${formatDuration(waitMs)}, later than LLM_MAX_WAIT allows: ` +
                  `set ${env} / GROQ_PLAN (now ${this.pacer.plan}) to your organisation's limits so calls are spread over the day, or raise LLM_MAX_WAIT. ${v.message}`,
                { status, retryAfterMs: v.retryAfterMs },
              );
            }
            throw fail(
              'LlmRateLimited',
              `${v.message}; waiting ${formatDuration(waitMs)} more would pass LLM_MAX_WAIT (${this.cfg.llm.maxWaitSec}s): the call will be retried later`,
              { status, retryAfterMs: v.retryAfterMs },
              Math.ceil(waitMs),
            );
          }
          this.logLine({ outcome: 'error', type: v.type, latencyMs, status, waitMs: Math.round(waitMs), next: 'wait' });
          await this.bookkeeping(() => this.pacer.pause(waitMs));
          await this.sleep(waitMs, opts.signal);
          continue;
        }
        counted++;
        last = { type: v.type, message: v.message, status: v.status };
        if (counted > this.cfg.llm.maxRetries) {
          this.logLine({ outcome: 'error', type: v.type, latencyMs, status, next: 'fail' });
          throw this.exhausted(counted, last, fail);
        }
        const backoffMs = fullJitter(this.random, this.backoff.baseMs, this.backoff.capMs, counted - 1);
        const delay = Math.max(v.retryAfterMs ?? 0, backoffMs);
        if (delay > backoffMs && Date.now() + delay > deadline) {
          // The server asked for a wait (retry-after on a 5xx) longer than LLM_MAX_WAIT: fail now,
          // retryable, with that delay, rather than sleep past the call's deadline.
          this.logLine({ outcome: 'error', type: v.type, latencyMs, status, next: 'fail' });
          throw fail(
            v.type,
            `${v.message}; Groq asked to retry in ${formatDuration(delay)}, later than LLM_MAX_WAIT (${this.cfg.llm.maxWaitSec}s) allows: the call will be retried later`,
            { status, retryAfterMs: v.retryAfterMs },
            Math.ceil(delay),
          );
        }
        this.logLine({ outcome: 'error', type: v.type, latencyMs, status, next: 'retry' });
        await this.sleep(delay, opts.signal);
        continue;
      }

      // An answer: account for it, then look at it.
      const latencyMs = Math.round(performance.now() - t0);
      const answered = completion && typeof completion === 'object' ? (completion as Groq.Chat.ChatCompletion) : undefined;
      const model = typeof answered?.model === 'string' && answered.model ? answered.model : this.model;
      const usage = plausibleUsage(usageOf(answered), maxCompletion, promptBytes(opts, responseFormat.schemaChars));
      totals.promptTokens += usage.promptTokens;
      totals.completionTokens += usage.completionTokens;
      totals.cachedTokens += usage.cachedTokens;
      totals.reasoningTokens += usage.reasoningTokens;
      await this.bookkeeping(() => this.pacer.observe(headers));
      // A reply without usage (a proxy that strips it) keeps its reservation: giving it all back
      // would let the budget under-count what Groq counted.
      const used = answered?.usage ? usage.promptTokens - usage.cachedTokens + usage.completionTokens : reservation.tokens;
      await this.bookkeeping(() => this.pacer.settle(reservation, used));

      const checked = checkReply(completion, opts.schema, format, maxCompletion, this.secrets);
      if (checked.ok) {
        this.logLine({ outcome: 'ok', model, latencyMs, ...usage });
        return {
          value: checked.value as z.output<S>,
          model,
          ...totals,
          latencyMs: elapsed(),
        };
      }
      if (checked.truncated) {
        const grown = this.grownBudget(answer, allowance, budgetFactor, promptTokens);
        if (grown !== undefined) {
          this.logLine({ outcome: 'error', type: 'LlmReplyTruncated', model, latencyMs, ...usage, next: 'retry_larger' });
          budgetFactor = grown;
          continue;
        }
        this.logLine({ outcome: 'error', type: 'LlmReplyTruncated', model, latencyMs, ...usage, next: 'fail' });
        const lowerIt = effort !== 'low' ? `set LLM_REASONING_EFFORT=low (now ${effort})` : 'keep LLM_REASONING_EFFORT=low';
        throw fail(
          'LlmReplyTruncated',
          `model ${model} was cut off at its completion limit of ${maxCompletion} tokens (answer budget ${answer} + reasoning allowance ${allowance} for LLM_REASONING_EFFORT=${effort}` +
            `${budgetFactor > 1 ? `, ×${Math.round(budgetFactor * 10) / 10} on the retry` : ''}; ${usage.reasoningTokens} of ${usage.completionTokens} completion tokens were reasoning) before finishing its reply: ` +
            `${lowerIt}, shorten the judged texts, or give the call a larger answer budget${tpm > 0 ? ` (GROQ_TPM=${tpm} bounds it)` : ''}`,
          { maxCompletionTokens: maxCompletion },
        );
      }
      counted++;
      last = { type: 'LlmInvalidReply', message: `model ${model} returned an unusable reply: ${checked.why}` };
      if (counted > this.cfg.llm.maxRetries) {
        this.logLine({ outcome: 'error', type: 'LlmInvalidReply', model, latencyMs, ...usage, next: 'fail' });
        throw this.exhausted(counted, last, fail);
      }
      this.logLine({ outcome: 'error', type: 'LlmInvalidReply', model, latencyMs, ...usage, next: 'retry' });
      await this.sleep(fullJitter(this.random, this.backoff.baseMs, this.backoff.capMs, counted - 1), opts.signal);
    }
  }

  /**
   * Budget bookkeeping after a request: a store that fails now must not throw away a reply that
   * is already paid for (the next reservation meets the store's failure, if it lasts).
   */
  private async bookkeeping(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch {
      // see above
    }
  }

  private exhausted(
    counted: number,
    last: { type: LlmErrorType; message: string; status?: number },
    fail: (type: LlmErrorType, message: string, extra?: Partial<LlmFailureDetails>) => ApplicationFailure,
  ): ApplicationFailure {
    return fail(
      'LlmRetriesExhausted',
      `gave up after ${counted} failed LLM call${counted === 1 ? '' : 's'} (LLM_MAX_RETRIES=${this.cfg.llm.maxRetries}); the last: ${last.type}: ${last.message}`,
      { lastType: last.type, ...(last.status !== undefined ? { status: last.status } : {}) },
    );
  }

  /** The budget factor of the retry after a cut reply, if a retry can get a larger budget. */
  private grownBudget(answer: number, allowance: number, factor: number, promptTokens: number): number | undefined {
    if (factor > 1) return undefined;
    const tpm = this.pacer.limits.tpm;
    const now = (answer + allowance) * factor;
    const next = tpm > 0 ? Math.min((answer + allowance) * 2, tpm - promptTokens) : (answer + allowance) * 2;
    return next > now ? next / (answer + allowance) : undefined;
  }
}

/** UTF-8 bytes of a call's prompt and schema: no tokenizer makes more tokens than bytes. */
function promptBytes(opts: { system: string; user: string }, schemaChars: number | undefined): number {
  return Buffer.byteLength(opts.system) + Buffer.byteLength(opts.user) + (schemaChars ?? 0);
}

/** Tokens of a chat template and of what a server adds to the prompt (formats, reasoning settings), at most. */
const PROMPT_OVERHEAD_TOKENS = 2048;

/**
 * A reply's usage within what the request makes possible: completion tokens within
 * `max_completion_tokens` (https://console.groq.com/docs/reasoning: reasoning included), prompt
 * tokens within the prompt's bytes and a template's overhead, cached and reasoning tokens within
 * those. A server reporting more (1e308) would otherwise put the shared budget into a debt no
 * refill repays, and the stored usage and cost with it.
 */
export function plausibleUsage(u: TokenUsage, maxCompletion: number, promptBytes: number): TokenUsage {
  const promptTokens = Math.min(u.promptTokens, promptBytes + PROMPT_OVERHEAD_TOKENS);
  const completionTokens = Math.min(u.completionTokens, maxCompletion);
  return {
    promptTokens,
    completionTokens,
    cachedTokens: Math.min(u.cachedTokens, promptTokens),
    reasoningTokens: Math.min(u.reasoningTokens, completionTokens),
  };
}

/** Full jitter: a uniform wait between 0 and min(cap, base × 2^n). */
export function fullJitter(random: () => number, baseMs: number, capMs: number, n: number): number {
  return random() * Math.min(capMs, baseMs * 2 ** Math.max(0, n));
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}
