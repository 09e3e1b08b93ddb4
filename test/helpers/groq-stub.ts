/**
 * A local Groq-compatible HTTP server for tests and benchmarks (no network, no key), as strict
 * as Groq's documentation describes it.
 *
 * It serves the OpenAI chat-completions shape at `POST /openai/v1/chat/completions`, the path
 * groq-sdk appends to its `baseURL` (so `baseURL` is the bare origin, e.g. http://127.0.0.1:PORT).
 *
 * Answers:
 * - A valid, deterministic JSON judgement for the check named in the system prompt's version
 *   line, all three checks for the combined prompt (`{quality, hallucination, toxicity}`), or
 *   what `setDefault` returns (see domain/judge/prompts.ts).
 * - Arize Phoenix's evals (`arize-phoenix-evals`, the bench's peer, scripts/bench-phoenix.ts):
 *   a prompt rendered from its HALLUCINATION_PROMPT_TEMPLATE, TOXICITY_PROMPT_TEMPLATE or
 *   QA_PROMPT_TEMPLATE (its OpenAIModel sends it as one system message for `gpt` models) gets
 *   the single word the template asks for, one of its rails ("factual" / "hallucinated",
 *   "non-toxic" / "toxic", "correct" / "incorrect"), deterministic in the message text. Its
 *   function-calling form (`functions` + `function_call`) is not served: the peer turns it off.
 * - Faults queued with `enqueue` are consumed in order, one per admitted request.
 * - Every request is recorded (method, path, headers including authorization, parsed body).
 *
 * Groq's behaviours, each from the page cited:
 * - Rate limits (console.groq.com/docs/rate-limits): optional RPM, RPD, TPM and TPD per stub,
 *   token buckets refilled continuously over a minute or a day. A request is admitted on its
 *   prompt tokens (cached ones excluded) plus `max_completion_tokens` (8192 when absent); the
 *   difference to the real usage is given back after the answer. A request larger than the TPM
 *   (or TPD) on its own gets 413; one that does not fit now gets 429 with `retry-after` and
 *   Groq's message naming the limit ("... on tokens per minute (TPM): Limit 8000, Used ...,
 *   Requested ... Please try again in 7.66s"). Every reply carries `x-ratelimit-limit-requests`
 *   / `-remaining-requests` / `-reset-requests` (the RPD) and `-tokens` (the TPM), resets in
 *   Groq's format (`2m59.56s`, `7.66s`); without limits they report 1,000,000 requests per day
 *   and 10,000,000 tokens per minute, always remaining.
 * - Scaled clock (`timeScale`, default 1): the limits' minutes and days pass `timeScale` times
 *   faster than real time, so a bench runs a 15-minute window of a plan in 15/timeScale
 *   minutes. `retry-after` and the reset headers are real seconds (fractional when scaled). A
 *   client that paces itself must be given limits `timeScale` times larger to match.
 * - Reasoning (console.groq.com/docs/reasoning): for reasoning models (ids with `gpt-oss` or
 *   `qwen3`) the reply spends `reasoning[effort]` tokens on reasoning first (effort from
 *   `reasoning_effort`, Groq's default medium), counted in `completion_tokens` and
 *   `completion_tokens_details.reasoning_tokens` and inside `max_completion_tokens`: a budget
 *   spent by reasoning gives empty or cut content with `finish_reason: "length"`. The reasoning
 *   text is in `message.reasoning` unless `include_reasoning: false` or `reasoning_format:
 *   "hidden"` (the two together are a 400). `reasoning_effort` for another model is a 400.
 * - Structured outputs (console.groq.com/docs/structured-outputs): `json_schema` with `strict:
 *   true` requires every object to set `additionalProperties: false` and list all properties
 *   in `required`, and refuses keywords outside the strict subset (400 otherwise).
 *   `structuredOutputs: 'best-effort'` refuses strict mode, `'none'` refuses `json_schema`, and
 *   `jsonObject: false` refuses `json_object`, each with Groq's "does not support response
 *   format" 400.
 * - Prompt caching (console.groq.com/docs/prompt-caching): a request whose static prefix was
 *   seen before for the same model (its system message, and the json_schema after it when that
 *   came with it too) reports the prefix's tokens as `prompt_tokens_details.cached_tokens`;
 *   cached tokens do not count toward the limits.
 * - Flex processing (console.groq.com/docs/flex-processing): with `flex` set, a request with
 *   `service_tier: "flex"` is answered 498 (capacity exceeded) with probability `flex.rate`,
 *   drawn from a generator seeded by `flex.seed`.
 * - Errors (console.groq.com/docs/errors): Groq's error bodies for 400 (incl.
 *   `json_validate_failed`), 401, 403, 404, 413, 422, 429, 498 and 5xx.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mulberry32 } from '../../common/random.js';
import { CHECKS, type Check } from '../../common/types.js';
import { checkOfSystemPrompt, fnv1a32, isCombinedSystemPrompt } from '../../domain/judge/prompts.js';

export const STUB_COMPLETIONS_PATH = '/openai/v1/chat/completions';

export type Fault =
  /** Answer with this HTTP status and a Groq-style error body (or `body`). */
  | {
      kind: 'status';
      status: number;
      /** Seconds, sent as `retry-after`. */
      retryAfter?: number | string;
      /** Sent as `retry-after-ms`. */
      retryAfterMs?: number;
      headers?: Record<string, string>;
      body?: object;
    }
  /** Answer normally, but only after `ms` (longer than the client timeout simulates a timeout). */
  | { kind: 'delay'; ms: number }
  /** Destroy the socket without any answer. */
  | { kind: 'reset' }
  /** A 200 whose message content is not JSON. */
  | { kind: 'malformed' }
  /** A 200 with the right JSON shape but a score of 1.7. */
  | { kind: 'out-of-range' }
  /** A 200 with `choices: []`. */
  | { kind: 'empty-choices' }
  /** A 200 whose message content is the empty string. */
  | { kind: 'empty-content' }
  /** Groq's JSON mode failure: HTTP 400 with code json_validate_failed. */
  | { kind: 'json-validate-failed' }
  /** This reply reasons for `tokens` tokens (default: more than any budget), then answers if budget is left. */
  | { kind: 'long-reasoning'; tokens?: number };

export type ReasoningEffort = 'low' | 'medium' | 'high';
export type LimitName = 'RPM' | 'RPD' | 'TPM' | 'TPD';

export interface RecordedRequest {
  seq: number;
  method: string;
  path: string;
  /** Lower-cased header names, as node:http delivers them. */
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON body, or the raw text when it does not parse. */
  body: any;
  /** Detected from the system prompt's version line. */
  check?: Check;
  /** The system prompt is the combined judge prompt (all three checks). */
  combined: boolean;
  /** The request is an Arize Phoenix evals template (see `phoenixTemplateOf`). */
  phoenix?: PhoenixTemplate;
  /** The fault used for this request, if any. */
  fault?: Fault['kind'];
  /** The HTTP status answered. */
  status?: number;
  receivedAt: number;
}

export type AnswerFn = (req: RecordedRequest) => object | string;

export interface StubLimits {
  rpm?: number;
  rpd?: number;
  tpm?: number;
  tpd?: number;
}

/** What can also be changed on a running stub (`configure`). */
export interface GroqStubSettings {
  /** Fixed delay before every answer, in ms (benchmarks). */
  latencyMs?: number;
  /** Enforced limits; unset or 0: not limited. */
  limits?: StubLimits;
  /** The limits' minutes and days pass this many times faster than real time (default 1). */
  timeScale?: number;
  /** Reasoning tokens per effort of reasoning models; false: no reasoning. Default low 80, medium 300, high 1200. */
  reasoning?: false | Partial<Record<ReasoningEffort, number>>;
  /** `json_schema` support: 'strict' (default, as gpt-oss), 'best-effort' (no strict mode), 'none'. */
  structuredOutputs?: 'strict' | 'best-effort' | 'none';
  /** Whether `json_object` is supported (default true). */
  jsonObject?: boolean;
  /** 498 for `service_tier: "flex"` requests with probability `rate` (seeded). */
  flex?: { rate: number; seed?: number };
  /**
   * The `model` a 200 reply names (a router that serves another model than the one asked for);
   * unset or '': the requested model, as Groq answers.
   */
  replyModel?: string;
}

export interface GroqStubOptions extends GroqStubSettings {
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** When set, requests without `Authorization: Bearer <apiKey>` get Groq's 401. */
  apiKey?: string;
  /** When set, requests for another model get Groq's 404 model_not_found. */
  models?: string[];
  /**
   * Models Groq has retired: requests for them get its 400 `model_decommissioned`
   * (https://console.groq.com/docs/deprecations; the body as Groq sends it).
   */
  decommissioned?: string[];
}

export interface GroqStubStats {
  requests: number;
  answered: number;
  inFlight: number;
  maxInFlight: number;
  pendingFaults: number;
  faults: Partial<Record<Fault['kind'], number>>;
  byCheck: Partial<Record<Check | 'combined' | 'unknown' | `phoenix:${PhoenixTemplate}`, number>>;
  byStatus: Record<number, number>;
  /** 429s by the limit that was reached. */
  rateLimited: Partial<Record<LimitName, number>>;
  /** 413s: a request larger than the TPM/TPD. */
  tooLarge: number;
  /** 498s of the flex tier. */
  flexRejected: number;
  /** Replies cut at max_completion_tokens. */
  truncated: number;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  /** Wall-clock times (ms since the epoch) of the first request and the last 200 since the last clear. */
  firstRequestAt?: number;
  lastAnsweredAt?: number;
}

/**
 * The environment of an LLM judge on a stub: enabled, `apiKey`, not paced (GROQ_PLAN=unlimited),
 * a 5 s timeout; `over` adds or replaces variables.
 */
export function stubLlmEnv(stub: { baseURL: string }, apiKey: string, over: Record<string, string> = {}): Record<string, string> {
  return { LLM_ENABLED: 'true', GROQ_API_KEY: apiKey, GROQ_BASE_URL: stub.baseURL, GROQ_PLAN: 'unlimited', LLM_TIMEOUT: '5', ...over };
}

export interface GroqStub {
  /** Pass as groq-sdk's `baseURL` / GROQ_BASE_URL. */
  baseURL: string;
  port: number;
  requests: RecordedRequest[];
  enqueue(...faults: Fault[]): void;
  setDefault(answer: AnswerFn | undefined): void;
  /** Change settings; new limits start full. */
  configure(settings: GroqStubSettings): void;
  /** Forget recorded requests, queued faults, statistics, the prompt cache, and refill the limits (requests in flight still finish). */
  clear(): void;
  stats(): GroqStubStats;
  close(): Promise<void>;
}

/** A plausible judgement for a check, deterministic in `seedText`. */
export function defaultJudgement(check: Check, seedText: string): Record<string, unknown> {
  const h = fnv1a32(seedText);
  // 0.00 .. 0.15 from the hash, so different inputs get slightly different values.
  const jitter = (shift: number) => ((h >>> shift) % 16) / 100;
  const r2 = (n: number) => Math.round(n * 100) / 100;
  switch (check) {
    case 'quality': {
      const coherence = r2(0.8 + jitter(0));
      const relevance = r2(0.78 + jitter(4));
      const accuracy = r2(0.76 + jitter(8));
      const completeness = r2(0.74 + jitter(12));
      const overall = r2((coherence + relevance + accuracy + completeness) / 4);
      return { coherence, relevance, accuracy, completeness, overall, reasoning: 'Clear and relevant answer with minor gaps.' };
    }
    case 'hallucination':
      return { score: r2(0.02 + jitter(0) / 2), confidence: r2(0.8 + jitter(4)), reasoning: 'The claims are supported by the context.' };
    case 'toxicity':
      return {
        toxicity: r2(jitter(0) / 5),
        hate_speech: 0,
        violence: 0,
        profanity: r2(jitter(4) / 10),
        reasoning: 'Polite, neutral language.',
      };
  }
}

/** The combined judgement: each check as it would be judged alone, from the same text. */
export function defaultCombinedJudgement(seedText: string): Record<Check, Record<string, unknown>> {
  return Object.fromEntries(CHECKS.map((c) => [c, defaultJudgement(c, seedText)])) as Record<Check, Record<string, unknown>>;
}

/**
 * Arize Phoenix's classification templates (arize-phoenix-evals, phoenix.evals.default_templates),
 * each known by the sentence that names its rails, and its rails: the usual answer first, then
 * the one given to one message in `oneIn` (by the text's hash).
 */
export const PHOENIX_TEMPLATES = {
  hallucination: { marker: 'either "factual" or "hallucinated"', rails: ['factual', 'hallucinated'], oneIn: 10 },
  toxicity: { marker: 'either "toxic" or "non-toxic"', rails: ['non-toxic', 'toxic'], oneIn: 20 },
  qa: { marker: 'either "correct" or "incorrect"', rails: ['correct', 'incorrect'], oneIn: 8 },
} as const;
export type PhoenixTemplate = keyof typeof PHOENIX_TEMPLATES;

/** The Phoenix template a message was rendered from (its data block and its rails sentence), if any. */
export function phoenixTemplateOf(text: string): PhoenixTemplate | undefined {
  if (!text.includes('[BEGIN DATA]') || !text.includes('[END DATA]')) return undefined;
  for (const t of Object.keys(PHOENIX_TEMPLATES) as PhoenixTemplate[]) {
    if (text.includes(PHOENIX_TEMPLATES[t].marker)) return t;
  }
  return undefined;
}

/** The single-word answer to a Phoenix template: one of its rails, deterministic in `text`. */
export function phoenixLabel(template: PhoenixTemplate, text: string): string {
  const { rails, oneIn } = PHOENIX_TEMPLATES[template];
  return fnv1a32(text) % oneIn === 0 ? rails[1] : rails[0];
}

const PRIMARY_FIELD: Record<Check, string> = { quality: 'overall', hallucination: 'score', toxicity: 'toxicity' };
const DEFAULT_REASONING: Record<ReasoningEffort, number> = { low: 80, medium: 300, high: 1200 };
const DEFAULT_MAX_COMPLETION = 8192;
const ORG = 'org_stub';
const MINUTE = 60_000;
const DAY = 86_400_000;
const NOMINAL = { requests: 1_000_000, tokens: 10_000_000 };

const groqError = (message: string, type: string, code?: string, extra: object = {}) => ({
  error: { message, type, ...(code ? { code } : {}), ...extra },
});

function errorBody(status: number): object {
  switch (status) {
    case 400:
      return groqError('Bad request', 'invalid_request_error');
    case 401:
      return groqError('Invalid API Key', 'invalid_request_error', 'invalid_api_key');
    case 403:
      return groqError('Forbidden', 'permissions_error');
    case 404:
      return groqError('The model does not exist or you do not have access to it.', 'invalid_request_error', 'model_not_found');
    case 413:
      return groqError('Request Entity Too Large', 'invalid_request_error', 'request_too_large');
    case 422:
      return groqError('Unprocessable Entity: the model could not process the request. Please try again.', 'invalid_request_error');
    case 429:
      return groqError(
        'Rate limit reached for model on requests per minute (RPM). Please try again later.',
        'requests',
        'rate_limit_exceeded',
      );
    case 498:
      return groqError(
        'Flex tier capacity exceeded. This is a temporary error due to high demand. Please try again later.',
        'internal_server_error',
        'capacity_exceeded',
      );
    case 503:
      return groqError('Service Unavailable', 'internal_server_error', 'service_unavailable');
    default:
      return groqError(
        status >= 500 ? 'Internal Server Error' : `HTTP ${status}`,
        status >= 500 ? 'internal_server_error' : 'invalid_request_error',
      );
  }
}

/** The first message of a request rendered from a Phoenix template, and which one. */
function phoenixMessage(body: any): { template: PhoenixTemplate; text: string } | undefined {
  if (!Array.isArray(body?.messages)) return undefined;
  for (const m of body.messages as Array<{ content?: unknown }>) {
    const template = typeof m?.content === 'string' ? phoenixTemplateOf(m.content) : undefined;
    if (template) return { template, text: m.content as string };
  }
  return undefined;
}

const approxTokens = (s: string) => Math.max(1, Math.ceil(s.length / 4));

/** A duration the way Groq writes its reset headers (Go's format): 866ms, 7.66s, 2m59.56s, 1h0m0s. */
export function goDuration(ms: number): string {
  const v = Math.max(0, ms);
  if (v < 1000) return `${Math.round(v)}ms`;
  const secs = (n: number) => `${Number(n.toFixed(2))}s`;
  const s = v / 1000;
  if (s < 60) return secs(s);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s - h * 3600) / 60);
  const rest = s - h * 3600 - m * 60;
  return h > 0 ? `${h}h${m}m${secs(rest)}` : `${m}m${secs(rest)}`;
}

interface StubBucket {
  name: LimitName;
  cap: number;
  period: number;
  level: number;
  at: number;
}

const LIMIT_TEXT: Record<LimitName, string> = {
  RPM: 'requests per minute (RPM)',
  RPD: 'requests per day (RPD)',
  TPM: 'tokens per minute (TPM)',
  TPD: 'tokens per day (TPD)',
};

/** Keywords strict mode refuses (the product's client moves them into descriptions). */
const NOT_STRICT = [
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'minLength',
  'maxLength',
  'pattern',
  'format',
  'minItems',
  'maxItems',
  'oneOf',
  'allOf',
  'not',
];

/** Why a schema is not acceptable in strict mode, or undefined. */
function strictProblem(node: unknown, path = 'schema'): string | undefined {
  if (Array.isArray(node)) {
    for (const [i, n] of node.entries()) {
      const p = strictProblem(n, `${path}[${i}]`);
      if (p) return p;
    }
    return undefined;
  }
  if (!node || typeof node !== 'object') return undefined;
  const o = node as Record<string, unknown>;
  for (const k of NOT_STRICT) if (k in o) return `'${k}' is not supported in strict mode (at ${path})`;
  const isObject = o.type === 'object' || (Array.isArray(o.type) && o.type.includes('object'));
  if (isObject) {
    if (o.additionalProperties !== false) return `additionalProperties must be false for every object in strict mode (at ${path})`;
    const props = Object.keys((o.properties ?? {}) as object);
    const req = Array.isArray(o.required) ? (o.required as string[]) : [];
    const missing = props.filter((p) => !req.includes(p));
    if (missing.length) return `all properties must be required in strict mode; missing ${missing.join(', ')} (at ${path})`;
  }
  for (const k of ['properties', '$defs', 'definitions']) {
    const m = o[k];
    if (m && typeof m === 'object') {
      for (const [p, s] of Object.entries(m)) {
        const pr = strictProblem(s, `${path}.${p}`);
        if (pr) return pr;
      }
    }
  }
  for (const k of ['items', 'anyOf']) {
    const pr = strictProblem(o[k], `${path}.${k}`);
    if (pr) return pr;
  }
  return undefined;
}

export async function startGroqStub(opts: GroqStubOptions = {}): Promise<GroqStub> {
  const requests: RecordedRequest[] = [];
  const queue: Fault[] = [];
  let answer: AnswerFn | undefined;
  let seq = 0;
  const timers = new Set<NodeJS.Timeout>();
  const settings: Required<Omit<GroqStubSettings, 'flex'>> & Pick<GroqStubSettings, 'flex'> = {
    replyModel: '',
    latencyMs: 0,
    limits: {},
    timeScale: 1,
    reasoning: {},
    structuredOutputs: 'strict',
    jsonObject: true,
    flex: undefined,
  };
  const fresh = (): GroqStubStats => ({
    requests: 0,
    answered: 0,
    inFlight: 0,
    maxInFlight: 0,
    pendingFaults: 0,
    faults: {},
    byCheck: {},
    byStatus: {},
    rateLimited: {},
    tooLarge: 0,
    flexRejected: 0,
    truncated: 0,
    promptTokens: 0,
    completionTokens: 0,
    cachedTokens: 0,
    reasoningTokens: 0,
    firstRequestAt: undefined,
    lastAnsweredAt: undefined,
  });
  const st = fresh();
  const cache = new Set<string>();
  let flexRandom = mulberry32(0);

  // The limits' clock: real time, `timeScale` times faster, from the stub's start.
  const origin = Date.now();
  const clock = () => origin + (Date.now() - origin) * settings.timeScale;
  const realMs = (scaledMs: number) => scaledMs / settings.timeScale;
  let buckets: StubBucket[] = [];
  const makeBuckets = () => {
    const l = settings.limits;
    const now = clock();
    const defs: Array<[LimitName, number | undefined, number]> = [
      ['RPM', l.rpm, MINUTE],
      ['RPD', l.rpd, DAY],
      ['TPM', l.tpm, MINUTE],
      ['TPD', l.tpd, DAY],
    ];
    buckets = defs
      .filter(([, cap]) => cap !== undefined && cap > 0)
      .map(([name, cap, period]) => ({ name, cap: cap!, period, level: cap!, at: now }));
  };
  const refill = (b: StubBucket, now: number) => {
    b.level = Math.min(b.cap, b.level + (b.cap * Math.max(0, now - b.at)) / b.period);
    b.at = now;
  };
  const bucket = (name: LimitName) => buckets.find((b) => b.name === name);
  const apply = (s: GroqStubSettings) => {
    if (s.replyModel !== undefined) settings.replyModel = s.replyModel;
    if (s.latencyMs !== undefined) settings.latencyMs = s.latencyMs;
    if (s.timeScale !== undefined) settings.timeScale = s.timeScale > 0 ? s.timeScale : 1;
    if (s.reasoning !== undefined) settings.reasoning = s.reasoning;
    if (s.structuredOutputs !== undefined) settings.structuredOutputs = s.structuredOutputs;
    if (s.jsonObject !== undefined) settings.jsonObject = s.jsonObject;
    if ('flex' in s) {
      settings.flex = s.flex;
      flexRandom = mulberry32(s.flex?.seed ?? 0);
    }
    if (s.limits !== undefined) {
      settings.limits = { ...s.limits };
      makeBuckets();
    }
  };
  apply(opts);
  makeBuckets();

  /** The rate-limit headers of every reply. */
  const limitHeaders = (): Record<string, string> => {
    const now = clock();
    const part = (kind: 'requests' | 'tokens', b: StubBucket | undefined) => {
      if (!b) {
        return {
          [`x-ratelimit-limit-${kind}`]: String(NOMINAL[kind]),
          [`x-ratelimit-remaining-${kind}`]: String(NOMINAL[kind]),
          [`x-ratelimit-reset-${kind}`]: '0s',
        };
      }
      refill(b, now);
      const toFull = ((b.cap - Math.max(0, b.level)) * b.period) / b.cap + (b.level < 0 ? (-b.level * b.period) / b.cap : 0);
      return {
        [`x-ratelimit-limit-${kind}`]: String(b.cap),
        [`x-ratelimit-remaining-${kind}`]: String(Math.max(0, Math.floor(b.level))),
        [`x-ratelimit-reset-${kind}`]: goDuration(realMs(toFull)),
      };
    };
    return { ...part('requests', bucket('RPD')), ...part('tokens', bucket('TPM')) };
  };

  const later = (ms: number, fn: () => void) => {
    if (ms <= 0) return fn();
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const sendJson = (
    res: http.ServerResponse,
    rec: RecordedRequest | undefined,
    status: number,
    body: object,
    headers: Record<string, string> = {},
  ) => {
    if (res.destroyed || res.writableEnded) return;
    const text = JSON.stringify(body);
    if (rec) rec.status = status;
    st.byStatus[status] = (st.byStatus[status] ?? 0) + 1;
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'x-request-id': `req_stub_${seq}`,
      ...limitHeaders(),
      ...headers,
    });
    res.end(text);
  };

  const isReasoningModel = (model: unknown) => typeof model === 'string' && /gpt-oss|qwen3/i.test(model);

  /**
   * Prompt tokens of a request, and how many of them are cached: the static prefix seen before
   * for the same model. For gpt-oss that prefix is the system message and, after it, the
   * response format: the harmony format renders the system message as the developer message's
   * instructions and the json_schema as "# Response Formats" at the end of that same message,
   * ahead of the user's (github.com/openai/openai-cookbook, articles/openai-harmony.md,
   * "Structured output"); Groq caches matching prefixes (console.groq.com/docs/prompt-caching).
   */
  const prefixesOf = (rec: RecordedRequest) => {
    const messages: Array<{ role?: string; content?: unknown }> = Array.isArray(rec.body?.messages) ? rec.body.messages : [];
    const system = messages.find((m) => m.role === 'system');
    if (!system || typeof system.content !== 'string') return [];
    const key = `${String(rec.body?.model)}\u0000${system.content}`;
    const schema = rec.body?.response_format?.json_schema?.schema;
    const prefixes = [{ key, tokens: 4 + approxTokens(system.content) }];
    if (schema) {
      const json = JSON.stringify(schema);
      prefixes.push({ key: `${key}\u0000${json}`, tokens: prefixes[0]!.tokens + approxTokens(json) });
    }
    return prefixes;
  };
  const promptOf = (rec: RecordedRequest): { tokens: number; cached: number } => {
    const messages: Array<{ role?: string; content?: unknown }> = Array.isArray(rec.body?.messages) ? rec.body.messages : [];
    let tokens = messages.reduce((n, m) => n + 4 + (typeof m.content === 'string' ? approxTokens(m.content) : 0), 3);
    const schema = rec.body?.response_format?.json_schema?.schema;
    if (schema) tokens += approxTokens(JSON.stringify(schema));
    const seen = prefixesOf(rec).filter((p) => cache.has(p.key));
    return { tokens, cached: Math.min(tokens, seen.at(-1)?.tokens ?? 0) };
  };
  const remember = (rec: RecordedRequest) => {
    for (const p of prefixesOf(rec)) cache.add(p.key);
  };
  const reasoningFor = (rec: RecordedRequest, fault: Fault | undefined): number => {
    if (fault?.kind === 'long-reasoning') return fault.tokens ?? 1_000_000;
    if (settings.reasoning === false || !isReasoningModel(rec.body?.model)) return 0;
    const effort = (['low', 'medium', 'high'] as const).find((e) => e === rec.body?.reasoning_effort) ?? 'medium';
    return settings.reasoning[effort] ?? DEFAULT_REASONING[effort];
  };

  /** A 200 completion: reasoning first, then `content`, both inside max_completion_tokens. */
  const completion = (
    rec: RecordedRequest,
    content: string,
    o: { choices?: unknown[]; reasoning?: number; prompt: { tokens: number; cached: number } },
  ) => {
    const max =
      typeof rec.body?.max_completion_tokens === 'number'
        ? rec.body.max_completion_tokens
        : typeof rec.body?.max_tokens === 'number'
          ? rec.body.max_tokens
          : DEFAULT_MAX_COMPLETION;
    const reasoningWanted = o.reasoning ?? 0;
    const reasoning = Math.min(reasoningWanted, max);
    let text = content;
    let finish: 'stop' | 'length' = 'stop';
    const room = max - reasoning;
    if (reasoningWanted >= max) {
      text = '';
      finish = 'length';
    } else if (approxTokens(content) > room && content !== '') {
      text = content.slice(0, room * 4);
      finish = 'length';
    }
    if (finish === 'length') st.truncated++;
    const completionTokens = reasoning + (text === '' ? 0 : approxTokens(text));
    st.promptTokens += o.prompt.tokens;
    st.cachedTokens += o.prompt.cached;
    st.completionTokens += completionTokens;
    st.reasoningTokens += reasoning;
    const showReasoning = reasoning > 0 && rec.body?.include_reasoning !== false && rec.body?.reasoning_format !== 'hidden';
    const message: Record<string, unknown> = { role: 'assistant', content: text };
    if (showReasoning)
      message.reasoning = 'Weighing the texts against the rubric. '.repeat(Math.ceil(Math.min(reasoning, 200) / 8)).slice(0, reasoning * 4);
    return {
      id: `chatcmpl-stub-${rec.seq}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: settings.replyModel || (typeof rec.body?.model === 'string' ? rec.body.model : 'stub-model'),
      choices: o.choices ?? [{ index: 0, message, logprobs: null, finish_reason: finish }],
      usage: {
        queue_time: 0.01,
        prompt_tokens: o.prompt.tokens,
        prompt_time: 0.002,
        completion_tokens: completionTokens,
        completion_time: 0.05,
        total_tokens: o.prompt.tokens + completionTokens,
        total_time: 0.052,
        prompt_tokens_details: { cached_tokens: o.prompt.cached },
        completion_tokens_details: { reasoning_tokens: reasoning },
      },
      usage_breakdown: null,
      system_fingerprint: 'fp_stub',
      ...(rec.body?.service_tier ? { service_tier: rec.body.service_tier === 'auto' ? 'on_demand' : rec.body.service_tier } : {}),
      x_groq: { id: `req_stub_${rec.seq}` },
    };
  };

  const validContent = (rec: RecordedRequest): string => {
    if (answer) {
      const a = answer(rec);
      return typeof a === 'string' ? a : JSON.stringify(a);
    }
    if (rec.phoenix) return phoenixLabel(rec.phoenix, phoenixMessage(rec.body)?.text ?? '');
    const user = rec.body?.messages?.find?.((m: { role?: string }) => m.role === 'user')?.content;
    const text = typeof user === 'string' ? user : '';
    if (rec.combined) return JSON.stringify(defaultCombinedJudgement(text));
    if (!rec.check) return JSON.stringify({ result: 'ok' });
    return JSON.stringify(defaultJudgement(rec.check, text));
  };

  /** A 400 for a request Groq would refuse as written, or undefined. */
  const invalid = (body: any): object | undefined => {
    const model = String(body?.model);
    if (body?.include_reasoning !== undefined && body?.reasoning_format !== undefined && body?.reasoning_format !== null) {
      return groqError('`include_reasoning` and `reasoning_format` are mutually exclusive.', 'invalid_request_error');
    }
    if (body?.reasoning_effort !== undefined && body?.reasoning_effort !== null) {
      if (!isReasoningModel(model)) return groqError('`reasoning_effort` is not supported with this model', 'invalid_request_error');
      if (/gpt-oss/i.test(model) && !['low', 'medium', 'high'].includes(body.reasoning_effort)) {
        return groqError("`reasoning_effort` must be one of 'low', 'medium' or 'high' for this model", 'invalid_request_error');
      }
    }
    const rf = body?.response_format;
    if (rf?.type === 'json_schema') {
      const strict = rf.json_schema?.strict === true;
      if (settings.structuredOutputs === 'none' || (strict && settings.structuredOutputs !== 'strict')) {
        return groqError(
          `This model does not support response format \`json_schema\`${strict ? ' with `strict: true`' : ''}. See supported models at https://console.groq.com/docs/structured-outputs#supported-models`,
          'invalid_request_error',
        );
      }
      const name = rf.json_schema?.name;
      if (typeof name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
        return groqError(
          '`response_format.json_schema.name` must be 1-64 characters of a-z, A-Z, 0-9, underscores and dashes',
          'invalid_request_error',
        );
      }
      if (strict) {
        const schema = rf.json_schema?.schema;
        const problem =
          !schema || typeof schema !== 'object'
            ? 'a schema is required'
            : schema.type !== 'object'
              ? 'the root must be an object'
              : strictProblem(schema);
        if (problem) return groqError(`invalid JSON schema for response_format '${name}': ${problem}`, 'invalid_request_error');
      }
    }
    if (rf?.type === 'json_object' && !settings.jsonObject) {
      return groqError('This model does not support response format `json_object`', 'invalid_request_error');
    }
    return undefined;
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, raw: string) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    let body: any = raw;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      /* keep the raw text */
    }
    const system = Array.isArray(body?.messages) ? body.messages.find((m: { role?: string }) => m.role === 'system')?.content : undefined;
    const combined = typeof system === 'string' && isCombinedSystemPrompt(system);
    const check = typeof system === 'string' && !combined ? checkOfSystemPrompt(system) : undefined;
    const phoenix = combined || check ? undefined : phoenixMessage(body)?.template;
    const rec: RecordedRequest = {
      seq: ++seq,
      method: req.method ?? '',
      path,
      headers: req.headers,
      body,
      check,
      combined,
      ...(phoenix ? { phoenix } : {}),
      receivedAt: Date.now(),
    };
    requests.push(rec);
    st.requests++;
    st.firstRequestAt ??= Date.now();
    const ck = combined ? 'combined' : (rec.check ?? (phoenix ? (`phoenix:${phoenix}` as const) : 'unknown'));
    st.byCheck[ck] = (st.byCheck[ck] ?? 0) + 1;

    if (req.method !== 'POST' || path !== STUB_COMPLETIONS_PATH) {
      return sendJson(res, rec, 404, groqError(`Unknown request URL: ${req.method} ${path}`, 'invalid_request_error', 'unknown_url'));
    }
    if (opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
      return sendJson(res, rec, 401, errorBody(401));
    }
    if (opts.models && !opts.models.includes(String(body?.model))) {
      return sendJson(res, rec, 404, errorBody(404));
    }
    if (opts.decommissioned?.includes(String(body?.model))) {
      const message = `The model \`${String(body?.model)}\` has been decommissioned and is no longer supported. Please refer to https://console.groq.com/docs/deprecations for a recommendation on which model to use instead.`;
      return sendJson(res, rec, 400, groqError(message, 'invalid_request_error', 'model_decommissioned'));
    }
    const bad = invalid(body);
    if (bad) return sendJson(res, rec, 400, bad);

    // Admission by the limits: prompt (uncached) + the completion budget.
    const prompt = promptOf(rec);
    const maxCompletion =
      typeof body?.max_completion_tokens === 'number'
        ? body.max_completion_tokens
        : typeof body?.max_tokens === 'number'
          ? body.max_tokens
          : DEFAULT_MAX_COMPLETION;
    const requested = prompt.tokens - prompt.cached + maxCompletion;
    const model = String(body?.model ?? 'stub-model');
    const tier = typeof body?.service_tier === 'string' ? body.service_tier : 'on_demand';
    const head = `for model \`${model}\` in organization \`${ORG}\` service tier \`${tier}\``;
    for (const name of ['TPM', 'TPD'] as const) {
      const b = bucket(name);
      if (b && requested > b.cap) {
        st.tooLarge++;
        return sendJson(
          res,
          rec,
          413,
          groqError(
            `Request too large ${head} on ${LIMIT_TEXT[name]}: Limit ${b.cap}, Requested ${requested}, please reduce your message size and try again. Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing`,
            'tokens',
            'rate_limit_exceeded',
          ),
        );
      }
    }
    const now = clock();
    for (const b of buckets) refill(b, now);
    const need = (b: StubBucket) => (b.name === 'RPM' || b.name === 'RPD' ? 1 : requested);
    const short = buckets
      .filter((b) => b.level < need(b))
      .map((b) => ({ b, waitMs: ((need(b) - b.level) * b.period) / b.cap }))
      .sort((x, y) => y.waitMs - x.waitMs)[0];
    if (short) {
      const { b, waitMs } = short;
      const real = realMs(waitMs);
      const secs =
        settings.timeScale === 1 ? String(Math.max(1, Math.ceil(real / 1000))) : String(Math.max(0.01, Math.ceil(real / 10) / 100));
      st.rateLimited[b.name] = (st.rateLimited[b.name] ?? 0) + 1;
      const used = Math.round(b.cap - b.level);
      return sendJson(
        res,
        rec,
        429,
        groqError(
          `Rate limit reached ${head} on ${LIMIT_TEXT[b.name]}: Limit ${b.cap}, Used ${used}, Requested ${need(b)}. Please try again in ${goDuration(real)}. Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing`,
          b.name.startsWith('T') ? 'tokens' : 'requests',
          'rate_limit_exceeded',
        ),
        { 'retry-after': secs },
      );
    }
    if (settings.flex && tier === 'flex' && flexRandom() < settings.flex.rate) {
      st.flexRejected++;
      return sendJson(res, rec, 498, errorBody(498));
    }
    for (const b of buckets) b.level -= need(b);
    /** Give back what the answer did not use (or nothing, for an error answer). */
    const settle = (usedTokens: number) => {
      const t = clock();
      for (const b of buckets) {
        if (b.name === 'TPM' || b.name === 'TPD') {
          refill(b, t);
          b.level = Math.min(b.cap, b.level + requested - usedTokens);
        }
      }
    };

    const fault = queue.shift();
    st.pendingFaults = queue.length;
    if (fault) {
      rec.fault = fault.kind;
      st.faults[fault.kind] = (st.faults[fault.kind] ?? 0) + 1;
    }
    const reply = (content: string, choices?: unknown[]) => {
      const c = completion(rec, content, { choices, reasoning: reasoningFor(rec, fault), prompt });
      remember(rec);
      settle(c.usage.prompt_tokens - c.usage.prompt_tokens_details.cached_tokens + c.usage.completion_tokens);
      return c;
    };
    const answerOk = () => {
      if (res.destroyed || res.writableEnded) return settle(0); // the client gave up (timeout)
      st.answered++;
      sendJson(res, rec, 200, reply(validContent(rec)));
      st.lastAnsweredAt = Date.now();
    };

    later(settings.latencyMs, () => {
      if (!fault || fault.kind === 'long-reasoning') return answerOk();
      switch (fault.kind) {
        case 'status': {
          settle(0);
          const headers: Record<string, string> = { ...(fault.headers ?? {}) };
          if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
          if (fault.retryAfterMs !== undefined) headers['retry-after-ms'] = String(fault.retryAfterMs);
          return sendJson(res, rec, fault.status, fault.body ?? errorBody(fault.status), headers);
        }
        case 'delay':
          return later(fault.ms, answerOk);
        case 'reset':
          return req.socket.destroy();
        case 'malformed':
          return sendJson(res, rec, 200, reply('Sure! Here is my verdict: {score: high, reasoning: looks fine'));
        case 'out-of-range': {
          const check = rec.check ?? CHECKS[0];
          const v = defaultJudgement(check, 'out-of-range');
          v[PRIMARY_FIELD[check]] = 1.7;
          const content = rec.combined ? { ...defaultCombinedJudgement('out-of-range'), [check]: v } : v;
          return sendJson(res, rec, 200, reply(JSON.stringify(content)));
        }
        case 'empty-choices':
          return sendJson(res, rec, 200, reply('', []));
        case 'empty-content':
          return sendJson(res, rec, 200, reply(''));
        case 'json-validate-failed':
          settle(0);
          return sendJson(
            res,
            rec,
            400,
            groqError(
              "Failed to generate JSON. Please adjust your prompt. See 'failed_generation' for more details.",
              'invalid_request_error',
              'json_validate_failed',
              {
                failed_generation: '{"overall": 0.8,',
              },
            ),
          );
      }
    });
  };

  const server = http.createServer((req, res) => {
    st.inFlight++;
    st.maxInFlight = Math.max(st.maxInFlight, st.inFlight);
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        st.inFlight--;
      }
    };
    res.on('close', finish);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
    req.on('error', finish);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    baseURL: `http://127.0.0.1:${port}`,
    port,
    requests,
    enqueue(...faults: Fault[]) {
      queue.push(...faults);
      st.pendingFaults = queue.length;
    },
    setDefault(fn: AnswerFn | undefined) {
      answer = fn;
    },
    configure(s: GroqStubSettings) {
      apply(s);
    },
    clear() {
      requests.length = 0;
      queue.length = 0;
      cache.clear();
      makeBuckets();
      flexRandom = mulberry32(settings.flex?.seed ?? 0);
      const inFlight = st.inFlight;
      Object.assign(st, fresh(), { inFlight, maxInFlight: inFlight });
    },
    stats() {
      return {
        ...st,
        faults: { ...st.faults },
        byCheck: { ...st.byCheck },
        byStatus: { ...st.byStatus },
        rateLimited: { ...st.rateLimited },
      };
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
