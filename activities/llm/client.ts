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
 * 3. Classify the answer (https://console.groq.com/docs/errors):
 *    - 429 and 498: wait `retry-after` (or a jittered backoff), pause every caller through the
 *      pacer, retry; never counted as failures; after LLM_MAX_WAIT in all: `LlmRateLimited`
 *      (retryable), or `LlmCapacity` when a daily limit (RPD/TPD) is what is spent.
 *    - 5xx, 408/409/425/499, timeouts, connection errors, 422, `json_validate_failed`, replies
 *      that do not parse or do not match the schema: counted; retried here with exponential
 *      backoff and full jitter up to LLM_MAX_RETRIES counted failures, then
 *      `LlmRetriesExhausted` (non-retryable) naming the last reason.
 *    - `finish_reason: length` (the budget was spent, often on reasoning): retried once with
 *      twice the budget, then `LlmReplyTruncated` (non-retryable) naming budget and effort.
 *    - 400 saying the response format is unsupported: this client falls back to `json_object`
 *      for its model, then to no response format (parse and validate only); not counted.
 *    - 401/403 `LlmAuthError`, 404 `LlmModelNotFound`, 413 `LlmCapacity` (the request is larger
 *      than the tokens-per-minute limit), other 4xx `LlmBadRequest`: not retried.
 * 4. Usage (prompt, completion, cached and reasoning tokens) settles the budget and is returned.
 *
 * Every failure is an `ApplicationFailure` with a type from common/failures.ts and a message
 * without secrets (`redact`). One log line per HTTP request, without prompt/reply text or key.
 */
import Groq, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError, GroqError } from 'groq-sdk';
import type { ChatCompletionCreateParamsNonStreaming } from 'groq-sdk/resources/chat/completions';
import { ApplicationFailure } from '@temporalio/common';
import type { z, ZodType } from 'zod';
import { redact, secretsOf, type Config, type ReasoningEffort } from '../../common/config.js';
import { formatZodError } from '../../common/types.js';
import { failure, type LlmErrorType } from '../../common/failures.js';
import { recordLlmRequest } from '../metrics.js';
import type { Db } from '../storage/postgres/db.js';
import { abortableSleep, abortReason, capacityTooSmall, formatDuration, Pacer } from './pacer.js';
import { schemaNameOf, strictJsonSchema } from './schema.js';

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

/** Attached as the single `details` entry of the LLM failures (no text content). */
export interface LlmFailureDetails {
  model: string;
  status?: number;
  latencyMs: number;
  promptTokens?: number;
  completionTokens?: number;
  cachedTokens?: number;
  reasoningTokens?: number;
  retryAfterMs?: number;
  calls?: number;
  /** For LlmRetriesExhausted: the type of the last counted failure. */
  lastType?: string;
  maxCompletionTokens?: number;
  reasoningEffort?: ReasoningEffort;
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

/**
 * Completion tokens added to the answer budget for the model's reasoning, by effort. Reasoning
 * of a rubric judgement at low effort is typically a few hundred tokens; the allowances leave
 * room for long inputs, and a reply cut at the limit is retried once with twice the budget.
 */
export const REASONING_ALLOWANCE: Record<ReasoningEffort, number> = { low: 512, medium: 2048, high: 6144 };

/** How much of a server's error message goes into a failure message. */
const SERVER_MESSAGE_LIMIT = 300;
/** Tokens of the chat template around the two messages. */
const TEMPLATE_TOKENS = 16;
/** Waits of 429/498 without `retry-after`: full jitter over 1 s × 2^n, at most 60 s. */
const RATE_BACKOFF = { baseMs: 1000, capMs: 60_000 };

type Format = 'strict' | 'schema' | 'object' | 'plain';

interface ModelTraits {
  /** 'effort': reasoning_effort + include_reasoning; 'hidden': reasoning_format hidden; 'none'. */
  reasoning: 'effort' | 'hidden' | 'none';
  format: Format;
}

/**
 * What a model supports, from Groq's reasoning and structured-outputs pages: gpt-oss reasons
 * with `reasoning_effort` and has strict `json_schema`; Qwen 3 reasons (hidden with
 * `reasoning_format`); Kimi K2 and Llama 4 have best-effort `json_schema`; older Llama, Gemma and
 * Mixtral models only `json_object`. Other models try strict `json_schema` and fall back when
 * Groq says it is unsupported.
 */
export function modelTraits(model: string): ModelTraits {
  const m = model.toLowerCase();
  if (m.startsWith('openai/gpt-oss')) return { reasoning: 'effort', format: 'strict' };
  if (m.startsWith('qwen/qwen3')) return { reasoning: 'hidden', format: 'object' };
  if (m.startsWith('moonshotai/kimi-k2') || m.startsWith('meta-llama/llama-4')) return { reasoning: 'none', format: 'schema' };
  if (/^(llama-3|llama3|gemma|mixtral|allam)/.test(m)) return { reasoning: 'none', format: 'object' };
  return { reasoning: 'none', format: 'strict' };
}

interface Totals {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  calls: number;
}

/** How an HTTP failure is handled. */
type Verdict =
  | { kind: 'fatal'; type: LlmErrorType; message: string; extra: Partial<LlmFailureDetails> }
  | { kind: 'passthrough'; failure: ApplicationFailure }
  | { kind: 'wait'; type: LlmErrorType; status: number; message: string; retryAfterMs?: number; dayLimit?: 'RPD' | 'TPD' }
  | { kind: 'format'; message: string; scope: 'model' | 'call' }
  | { kind: 'counted'; type: LlmErrorType; message: string; status?: number; retryAfterMs?: number };

export class LlmClient {
  readonly model: string;
  readonly timeoutSec: number;
  readonly pacer: Pacer;
  private readonly cfg: Config;
  private readonly groq: Groq;
  private readonly secrets: string[];
  private readonly log: (line: string) => void;
  private readonly endpoint: string;
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
    this.traits = modelTraits(this.model);
    this.format = this.traits.format;
    this.pacer = opts.pacer ?? new Pacer(cfg, { db: opts.db });
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
      const responseFormat = this.responseFormat(format, schemaName, strict);
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
      let completion: Groq.Chat.ChatCompletion;
      let headers: Headers;
      try {
        const { data, response } = await this.groq.chat.completions
          .create(params, opts.signal ? { signal: opts.signal } : undefined)
          .withResponse();
        completion = data;
        headers = response.headers;
      } catch (err) {
        const latencyMs = Math.round(performance.now() - t0);
        if (opts.signal?.aborted) {
          await this.bookkeeping(() => this.pacer.settle(reservation, 0));
          throw abortReason(opts.signal);
        }
        if (err instanceof APIError) {
          // Groq answered without generating: its headers still count, the tokens come back.
          await this.bookkeeping(() => this.pacer.observe(err.headers as Headers | undefined));
          await this.bookkeeping(() => this.pacer.settle(reservation, 0));
        }
        const v = this.classify(err, format, maxCompletion, promptTokens);
        const status = statusOf(err);
        if (v.kind === 'passthrough') throw v.failure;
        if (v.kind === 'fatal') {
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
          const waitMs = v.retryAfterMs !== undefined ? v.retryAfterMs + this.random() * clamp(v.retryAfterMs * 0.1, 100, 2000) : backoffMs;
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
        this.logLine({ outcome: 'error', type: v.type, latencyMs, status, next: 'retry' });
        const delay = Math.max(v.retryAfterMs ?? 0, fullJitter(this.random, this.backoff.baseMs, this.backoff.capMs, counted - 1));
        await this.sleep(delay, opts.signal);
        continue;
      }

      // An answer: account for it, then look at it.
      const latencyMs = Math.round(performance.now() - t0);
      const model = typeof completion.model === 'string' && completion.model ? completion.model : this.model;
      const usage = usageOf(completion);
      totals.promptTokens += usage.promptTokens;
      totals.completionTokens += usage.completionTokens;
      totals.cachedTokens += usage.cachedTokens;
      totals.reasoningTokens += usage.reasoningTokens;
      await this.bookkeeping(() => this.pacer.observe(headers));
      await this.bookkeeping(() => this.pacer.settle(reservation, usage.promptTokens - usage.cachedTokens + usage.completionTokens));

      const checked = this.check(completion, opts.schema, format, maxCompletion);
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

  private responseFormat(
    format: Format,
    name: string,
    strict: ReturnType<typeof strictJsonSchema>,
  ): { param?: ChatCompletionCreateParamsNonStreaming['response_format']; schemaChars?: number } {
    if ((format === 'strict' || format === 'schema') && 'schema' in strict) {
      return {
        param: { type: 'json_schema', json_schema: { name, schema: strict.schema, strict: format === 'strict' } },
        schemaChars: JSON.stringify(strict.schema).length,
      };
    }
    if (format === 'plain') return {};
    return { param: { type: 'json_object' } };
  }

  /** Parse and validate one answer. */
  private check(
    completion: Groq.Chat.ChatCompletion,
    schema: ZodType,
    format: Format,
    maxCompletion: number,
  ): { ok: true; value: unknown } | { ok: false; truncated: boolean; why: string } {
    const choices = (completion as { choices?: unknown }).choices;
    if (!Array.isArray(choices) || choices.length === 0) return { ok: false, truncated: false, why: 'the reply has no choices' };
    const choice = choices[0] as Groq.Chat.ChatCompletion.Choice | undefined;
    const content = choice?.message?.content;
    const finish = choice?.finish_reason;
    const cut = finish === 'length';
    const finishNote = cut
      ? ` (finish_reason=length: the reply hit the ${maxCompletion}-token limit)`
      : finish && finish !== 'stop'
        ? ` (finish_reason=${String(finish)})`
        : '';
    if (typeof content !== 'string' || content.trim() === '') {
      return { ok: false, truncated: cut, why: `the reply content is empty${finishNote}` };
    }
    const text = format === 'plain' ? unfence(content) : content;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      return {
        ok: false,
        truncated: cut,
        why: `the reply is not valid JSON (${content.length} characters; ${truncate(why, 120)})${finishNote}`,
      };
    }
    const checked = schema.safeParse(parsed);
    if (!checked.success) {
      return {
        ok: false,
        truncated: cut,
        why: `the reply does not match the expected schema: ${truncate(formatZodError(checked.error), 500)}${finishNote}`,
      };
    }
    return { ok: true, value: checked.data };
  }

  /** How to handle what groq-sdk threw. */
  private classify(err: unknown, format: Format, maxCompletion: number, promptTokens: number): Verdict {
    const model = this.model;
    const fatal = (type: LlmErrorType, message: string, extra: Partial<LlmFailureDetails> = {}): Verdict => ({
      kind: 'fatal',
      type,
      message,
      extra,
    });
    const counted = (type: LlmErrorType, message: string, status?: number, retryAfterMs?: number): Verdict => ({
      kind: 'counted',
      type,
      message: redact(message, this.secrets),
      ...(status !== undefined ? { status } : {}),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });

    if (err instanceof ApplicationFailure) return { kind: 'passthrough', failure: err };
    // Subclass first: a timeout is also an APIConnectionError.
    if (err instanceof APIConnectionTimeoutError) {
      return counted(
        'LlmTimeout',
        `Groq did not answer within ${this.timeoutSec}s (LLM_TIMEOUT); raise LLM_TIMEOUT if this keeps happening`,
      );
    }
    if (err instanceof APIUserAbortError) return counted('LlmUnavailable', 'the Groq request was aborted before it finished');
    if (err instanceof APIConnectionError) {
      const why = describeCause((err as { cause?: unknown }).cause);
      return counted(
        'LlmUnavailable',
        `could not reach Groq at ${this.endpoint}${why ? ` (${why})` : ''}; check GROQ_BASE_URL and the network`,
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
          message: redact(`Groq rate limit reached for model ${model} (HTTP 429${limit ? `, ${limit}` : ''})${said}`, this.secrets),
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
            `Groq's flex tier has no capacity for model ${model} now (HTTP 498, GROQ_SERVICE_TIER=${this.cfg.groq.serviceTier ?? 'unset'})${said}`,
            this.secrets,
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
        const cap = Number.isFinite(limit) ? limit : this.pacer.limits.tpm;
        const tokens = Number.isFinite(requested) ? requested : promptTokens + maxCompletion;
        const f = capacityTooSmall('tpm', tokens, cap, this.pacer.plan);
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

  private logLine(f: {
    outcome: 'ok' | 'error';
    type?: string;
    model?: string;
    status?: number;
    latencyMs: number;
    promptTokens?: number;
    completionTokens?: number;
    cachedTokens?: number;
    reasoningTokens?: number;
    waitMs?: number;
    next?: string;
  }): void {
    recordLlmRequest(this.model, f);
    const parts = ['llm_call', `outcome=${f.outcome}`, `model=${f.model ?? this.model}`, `latency_ms=${f.latencyMs}`];
    if (f.type) parts.push(`type=${f.type}`);
    if (f.status !== undefined) parts.push(`status=${f.status}`);
    if (f.promptTokens !== undefined) parts.push(`prompt_tokens=${f.promptTokens}`);
    if (f.completionTokens !== undefined) parts.push(`completion_tokens=${f.completionTokens}`);
    if (f.cachedTokens !== undefined) parts.push(`cached_tokens=${f.cachedTokens}`);
    if (f.reasoningTokens !== undefined) parts.push(`reasoning_tokens=${f.reasoningTokens}`);
    if (f.waitMs !== undefined) parts.push(`wait_ms=${f.waitMs}`);
    if (f.next) parts.push(`next=${f.next}`);
    try {
      this.log(redact(parts.join(' '), this.secrets));
    } catch {
      // logging must never fail a call
    }
  }
}

const ORDER: Format[] = ['strict', 'schema', 'object', 'plain'];

/** The lower (less demanding) of two formats. */
function lowest(a: Format, b: Format | undefined): Format {
  return b === undefined ? a : ORDER[Math.max(ORDER.indexOf(a), ORDER.indexOf(b))]!;
}

/** The next format down: json_schema → json_object → none. */
function lower(f: Format): Format {
  return f === 'strict' || f === 'schema' ? 'object' : 'plain';
}

/** Whether a 400's message says the response format is not supported (for this model). */
function formatUnsupported(message: string | undefined): boolean {
  if (!message) return false;
  return (
    /(response.?format|json_schema|json_object|json mode|structured output)/i.test(message) &&
    /(not supported|unsupported|does not support|not available)/i.test(message)
  );
}

function usageOf(c: Groq.Chat.ChatCompletion): {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
} {
  const u = c.usage;
  return {
    promptTokens: numberOr0(u?.prompt_tokens),
    completionTokens: numberOr0(u?.completion_tokens),
    cachedTokens: numberOr0(u?.prompt_tokens_details?.cached_tokens),
    reasoningTokens: numberOr0(u?.completion_tokens_details?.reasoning_tokens),
  };
}

/** Full jitter: a uniform wait between 0 and min(cap, base × 2^n). */
export function fullJitter(random: () => number, baseMs: number, capMs: number, n: number): number {
  return random() * Math.min(capMs, baseMs * 2 ** Math.max(0, n));
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}

/** A reply without response format may wrap its JSON in a Markdown fence. */
function unfence(s: string): string {
  const m = /```(?:json)?\s*([\s\S]*?)```/i.exec(s);
  return (m ? m[1]! : s).trim();
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
