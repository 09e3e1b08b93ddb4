/**
 * The LLM client through the real groq-sdk against the local Groq-compatible stub
 * (test/helpers/groq-stub.ts), which behaves as Groq's documentation describes.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { DEFAULT_ANSWER_TOKENS, LlmClient, type LlmCallResult, type LlmClientOptions } from '../../activities/llm/client.js';
import { REASONING_ALLOWANCE } from '../../activities/llm/model-traits.js';
import { retryAfterMsOf, type LlmFailureDetails } from '../../activities/llm/errors.js';
import { Pacer } from '../../activities/llm/pacer.js';
import { schemaNameOf, strictJsonSchema } from '../../activities/llm/schema.js';
import { LLM_FATAL_TYPES, nonRetryableTypes } from '../../common/failures.js';
import { llmRetryPolicy } from '../../workflows/options.js';
import { loadConfig, type Config } from '../../common/config.js';
import { renderCombinedPrompt, renderJudgePrompt } from '../../domain/judge/prompts.js';
import { checkResultSchemas, combinedResultSchema, type Check, type CheckResult } from '../../common/types.js';
import { startGroqStub, type GroqStub } from '../helpers/groq-stub.js';
import { failureOf } from '../helpers/async.js';

const KEY = 'gsk_test_SECRET_123456';
let stub: GroqStub;
let logs: string[] = [];

/** A config on the stub; no pacing unless the test asks for a plan. */
function config(env: Record<string, string> = {}): Config {
  return loadConfig({ GROQ_API_KEY: KEY, GROQ_BASE_URL: stub.baseURL, LLM_TIMEOUT: '5', GROQ_PLAN: 'unlimited', ...env });
}

/** Fast backoff so retries do not slow the tests; the jitter is fixed at half the range. */
const FAST: LlmClientOptions = { backoff: { baseMs: 20, capMs: 100 }, random: () => 0.5 };

function client(env: Record<string, string> = {}, opts: LlmClientOptions = {}, llm: Partial<Config['llm']> = {}): LlmClient {
  const c = config(env);
  return new LlmClient({ ...c, llm: { ...c.llm, ...llm } }, { log: (l) => logs.push(l), ...FAST, ...opts });
}

const INPUT = {
  prompt: 'What is the capital of France? (private-user-text-7781)',
  response: 'Paris is the capital of France.',
  context: 'Paris is the capital and largest city of France.',
};

function judge<C extends Check = 'quality'>(
  c: LlmClient,
  check: C = 'quality' as C,
  extra: { heartbeat?: () => void; signal?: AbortSignal; maxTokens?: number } = {},
): Promise<LlmCallResult<CheckResult<C>>> {
  const { system, user } = renderJudgePrompt(check, INPUT);
  return c.json({ system, user, schema: checkResultSchemas[check], schemaName: check, ...extra }) as Promise<LlmCallResult<CheckResult<C>>>;
}

const detailsOf = (f: ApplicationFailure) => f.details?.[0] as LlmFailureDetails;

/** The failure carries no secret anywhere we can see. */
function expectNoSecret(f: ApplicationFailure) {
  expect(f.message).not.toContain(KEY);
  expect(JSON.stringify(f.details ?? [])).not.toContain(KEY);
  expect(String(f.stack ?? '')).not.toContain(KEY);
  for (const l of logs) expect(l).not.toContain(KEY);
}

beforeAll(async () => {
  stub = await startGroqStub();
});
afterAll(async () => {
  await stub.close();
});
beforeEach(() => {
  stub.configure({ limits: {}, reasoning: {}, structuredOutputs: 'strict', jsonObject: true, flex: undefined, timeScale: 1, latencyMs: 0 });
  stub.clear();
  stub.setDefault(undefined);
  logs = [];
});

describe('LlmClient: requests as Groq expects them', () => {
  it('parses a valid reply and reports model, usage, reasoning, cache and calls', async () => {
    const r = await judge(client(), 'quality');
    expect(checkResultSchemas.quality.safeParse(r.value).success).toBe(true);
    expect(r.value.overall).toBeGreaterThan(0.5);
    expect(r.value.overall).toBeLessThanOrEqual(1);
    expect(r.model).toBe('openai/gpt-oss-20b');
    expect(r.promptTokens).toBeGreaterThan(50);
    expect(r.reasoningTokens).toBe(80); // the stub's low-effort reasoning
    expect(r.completionTokens).toBeGreaterThan(r.reasoningTokens);
    expect(r.cachedTokens).toBe(0);
    expect(r.calls).toBe(1);
    expect(r.latencyMs).toBeGreaterThanOrEqual(0);

    expect(stub.requests).toHaveLength(1);
    const req = stub.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/openai/v1/chat/completions');
    expect(req.status).toBe(200);
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.headers['x-stainless-retry-count']).toBe('0');
    expect(req.check).toBe('quality');
    expect(req.body.model).toBe('openai/gpt-oss-20b');
    expect(req.body.temperature).toBe(0);
    expect(req.body.stream).toBe(false);
    // Reasoning under control: low effort by default, reasoning text not returned, and the
    // completion budget sized for reasoning + the answer.
    expect(req.body.reasoning_effort).toBe('low');
    expect(req.body.include_reasoning).toBe(false);
    expect(req.body.reasoning_format).toBeUndefined();
    expect(req.body.max_completion_tokens).toBe(DEFAULT_ANSWER_TOKENS + REASONING_ALLOWANCE.low);
    expect(req.body.service_tier).toBeUndefined();
    // Strict structured outputs, named after the schema.
    expect(req.body.response_format).toMatchObject({ type: 'json_schema', json_schema: { name: 'quality', strict: true } });
    const schema = req.body.response_format.json_schema.schema;
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['coherence', 'relevance', 'accuracy', 'completeness', 'overall', 'reasoning']);
    expect(JSON.stringify(schema)).not.toMatch(/"(minimum|maximum|maxLength)"/);
    expect(schema.properties.overall.description).toBe('(at least 0, at most 1)');
    expect(req.body.messages.map((m: { role: string }) => m.role)).toEqual(['system', 'user']);
    expect(req.body.messages[0].content).not.toContain('private-user-text-7781');
    expect(req.body.messages[1].content).toContain('private-user-text-7781');

    // One log line, with numbers but no text content and no key.
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(
      /^llm_call outcome=ok model=openai\/gpt-oss-20b latency_ms=\d+ prompt_tokens=\d+ completion_tokens=\d+ cached_tokens=0 reasoning_tokens=80$/,
    );
    expect(logs[0]).not.toContain('private-user-text-7781');
    expect(logs[0]).not.toContain(KEY);
  });

  it('answers each check with a schema-valid judgement', async () => {
    const c = client();
    const h = await judge(c, 'hallucination');
    expect(h.value.score).toBeLessThan(0.2);
    expect(typeof h.value.reasoning).toBe('string');
    const t = await judge(c, 'toxicity');
    expect(t.value.toxicity).toBeLessThan(0.2);
    expect(stub.stats().byCheck).toMatchObject({ hallucination: 1, toxicity: 1 });
  });

  it('answers the combined judge prompt with all three checks, deterministically from the input', async () => {
    const c = client();
    const call = () => c.json({ ...renderCombinedPrompt(INPUT), schema: combinedResultSchema, schemaName: 'judgement', maxTokens: 700 });
    const a = await call();
    const b = await call();
    expect(Object.keys(a.value).sort()).toEqual(['hallucination', 'quality', 'toxicity']);
    expect(a.value).toEqual(b.value);
    expect(a.value.quality.overall).toBeGreaterThan(0.5);
    expect(stub.stats().byCheck).toMatchObject({ combined: 2 });
    const req = stub.requests[0]!;
    expect(req.combined).toBe(true);
    expect(req.body.max_completion_tokens).toBe(700 + REASONING_ALLOWANCE.low);
    const schema = req.body.response_format.json_schema.schema;
    for (const check of ['quality', 'hallucination', 'toxicity']) {
      expect(schema.properties[check].additionalProperties).toBe(false);
      expect(schema.properties[check].required).toContain('reasoning');
    }
  });

  it('reports the cached prompt prefix: the static rubric of a second call is cached', async () => {
    const c = client();
    const first = await judge(c, 'quality');
    const second = await c.json({
      ...renderJudgePrompt('quality', { ...INPUT, response: 'Lyon is the capital of France.' }),
      schema: checkResultSchemas.quality,
      schemaName: 'quality',
    });
    expect(first.cachedTokens).toBe(0);
    expect(second.cachedTokens).toBeGreaterThan(100);
    expect(second.cachedTokens).toBeLessThan(second.promptTokens);
    expect(logs[1]).toMatch(/cached_tokens=[1-9]\d+/);
    expect(stub.stats().cachedTokens).toBe(second.cachedTokens);
  });

  it('caches the response format with the system message, as gpt-oss reads it there; another schema keeps only the system message cached', async () => {
    const c = client();
    const { system } = renderJudgePrompt('quality', INPUT);
    const ask = (response: string, schema: z.ZodType) =>
      c.json({ system, user: renderJudgePrompt('quality', { ...INPUT, response }).user, schema, schemaName: 'quality' });
    await ask('Paris.', checkResultSchemas.quality);
    const same = await ask('Lyon.', checkResultSchemas.quality);
    const other = await ask('Nice.', checkResultSchemas.quality.extend({ note: z.string().optional() }));
    const schemaTokens = Math.ceil(JSON.stringify(stub.requests[1]!.body.response_format.json_schema.schema).length / 4);
    const systemTokens = 4 + Math.ceil(system.length / 4);
    expect(same.cachedTokens).toBe(systemTokens + schemaTokens);
    expect(other.cachedTokens).toBe(systemTokens);
  });

  it('works with any zod schema and a custom stub answer; the answer budget gets the reasoning allowance on top', async () => {
    stub.setDefault(() => ({ summary: 'costs rose 12%', actions: ['scale down'] }));
    const schema = z.object({ summary: z.string(), actions: z.array(z.string()) });
    const r = await client().json({ system: 'You are an analyst. Reply in JSON.', user: '{"cost": 12}', schema, maxTokens: 300 });
    expect(r.value).toEqual({ summary: 'costs rose 12%', actions: ['scale down'] });
    expect(stub.requests[0]!.body.max_completion_tokens).toBe(300 + REASONING_ALLOWANCE.low);
    expect(stub.requests[0]!.body.response_format.json_schema.name).toBe('reply');
  });

  it('sends LLM_REASONING_EFFORT and sizes the budget by it', async () => {
    const r = await judge(client({ LLM_REASONING_EFFORT: 'medium' }));
    const body = stub.requests[0]!.body;
    expect(body.reasoning_effort).toBe('medium');
    expect(body.max_completion_tokens).toBe(DEFAULT_ANSWER_TOKENS + REASONING_ALLOWANCE.medium);
    expect(r.reasoningTokens).toBe(300);
  });

  it('sends GROQ_SERVICE_TIER', async () => {
    await judge(client({ GROQ_SERVICE_TIER: 'flex' }));
    expect(stub.requests[0]!.body.service_tier).toBe('flex');
  });

  it('sends no reasoning parameters to a model that does not reason, and json_object to one without json_schema', async () => {
    const r = await judge(client({ GROQ_MODEL: 'llama-3.1-8b-instant' }));
    const body = stub.requests[0]!.body;
    expect(body.reasoning_effort).toBeUndefined();
    expect(body.include_reasoning).toBeUndefined();
    expect(body.response_format).toEqual({ type: 'json_object' });
    expect(body.max_completion_tokens).toBe(DEFAULT_ANSWER_TOKENS);
    expect(r.reasoningTokens).toBe(0);
  });

  it('keeps the reasoning text out of the reply (the stub returns it only when asked)', async () => {
    // What Groq does without include_reasoning: false ...
    const res = await fetch(`${stub.baseURL}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: JSON.stringify({
        model: 'openai/gpt-oss-20b',
        messages: [{ role: 'user', content: 'Reply in JSON.' }],
        response_format: { type: 'json_object' },
      }),
    });
    const shown = (await res.json()) as { choices: Array<{ message: { reasoning?: string } }> };
    expect(shown.choices[0]!.message.reasoning).toBeTruthy();
    // ... and what the client asks for.
    await judge(client());
    expect(stub.requests[1]!.body.include_reasoning).toBe(false);
  });
});

describe('LlmClient: structured outputs', () => {
  it('falls back to json_object when Groq says json_schema is unsupported, and stays there (not counted)', async () => {
    stub.configure({ structuredOutputs: 'none' });
    const c = client({ LLM_MAX_RETRIES: '0' });
    const r = await judge(c);
    expect(r.value.overall).toBeGreaterThan(0);
    expect(r.calls).toBe(2);
    expect(stub.requests.map((q) => q.status)).toEqual([400, 200]);
    expect(stub.requests[0]!.body.response_format.type).toBe('json_schema');
    expect(stub.requests[1]!.body.response_format).toEqual({ type: 'json_object' });
    expect(logs[0]).toMatch(/status=400 next=switch_format/);
    await judge(c, 'toxicity');
    expect(stub.requests[2]!.body.response_format).toEqual({ type: 'json_object' });
    expect(stub.requests).toHaveLength(3);
  });

  it('falls back to best-effort when strict mode is refused, then parse-and-validate when json_object is refused too', async () => {
    stub.configure({ structuredOutputs: 'none', jsonObject: false });
    const r = await judge(client({ LLM_MAX_RETRIES: '0' }));
    expect(r.value.overall).toBeGreaterThan(0);
    expect(stub.requests.map((q) => q.status)).toEqual([400, 400, 200]);
    expect(stub.requests[2]!.body.response_format).toBeUndefined();
  });

  it('parses a fenced reply when no response format is used', async () => {
    stub.configure({ structuredOutputs: 'none', jsonObject: false });
    stub.setDefault(() => '```json\n{"answer": "fine"}\n```');
    const r = await client().json({ system: 'Reply in JSON.', user: 'x', schema: z.object({ answer: z.string() }) });
    expect(r.value).toEqual({ answer: 'fine' });
  });

  it('uses json_object for a schema strict mode cannot express (a union at the root)', async () => {
    stub.setDefault(() => ({ b: 2 }));
    const schema = z.union([z.object({ a: z.string() }), z.object({ b: z.number() })]);
    const r = await client().json({ system: 'Reply in JSON.', user: 'x', schema });
    expect(r.value).toEqual({ b: 2 });
    expect(stub.requests[0]!.body.response_format).toEqual({ type: 'json_object' });
  });

  it('retries a json_validate_failed 400 within the budget', async () => {
    stub.enqueue({ kind: 'json-validate-failed' });
    const r = await judge(client({ LLM_MAX_RETRIES: '1' }));
    expect(r.calls).toBe(2);
    expect(logs[0]).toMatch(/type=LlmInvalidReply status=400 next=retry/);
  });

  it('gives up on json_validate_failed after LLM_MAX_RETRIES, without the failed generation in the message', async () => {
    stub.enqueue({ kind: 'json-validate-failed' }, { kind: 'json-validate-failed' });
    const f = await failureOf(judge(client({ LLM_MAX_RETRIES: '1' })));
    expect(f.type).toBe('LlmRetriesExhausted');
    expect(f.nonRetryable).toBe(true);
    expect(detailsOf(f).lastType).toBe('LlmInvalidReply');
    expect(f.message).toMatch(/json_validate_failed/);
    expect(f.message).not.toContain('"overall": 0.8');
    expect(stub.requests).toHaveLength(2);
  });
});

describe('LlmClient: replies cut at the token limit', () => {
  it('retries a cut reply once with twice the budget, never unchanged', async () => {
    stub.configure({ reasoning: { low: 2000 } }); // more than the 1,536 first budget
    const r = await judge(client({ LLM_MAX_RETRIES: '0' }));
    expect(r.value.overall).toBeGreaterThan(0);
    expect(r.calls).toBe(2);
    const budgets = stub.requests.map((q) => q.body.max_completion_tokens);
    expect(budgets).toEqual([1536, 3072]);
    expect(r.reasoningTokens).toBe(1536 + 2000);
    expect(logs[0]).toMatch(/type=LlmReplyTruncated .*next=retry_larger/);
  });

  it('records a reply cut twice as LlmReplyTruncated naming the budget, the effort and what to set', async () => {
    stub.configure({ reasoning: { medium: 10_000 } });
    const f = await failureOf(judge(client({ LLM_REASONING_EFFORT: 'medium' })));
    expect(f.type).toBe('LlmReplyTruncated');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain(`answer budget ${DEFAULT_ANSWER_TOKENS}`);
    expect(f.message).toContain(`reasoning allowance ${REASONING_ALLOWANCE.medium}`);
    expect(f.message).toContain('LLM_REASONING_EFFORT=medium');
    expect(f.message).toContain('set LLM_REASONING_EFFORT=low');
    expect(f.message).toMatch(/6144 tokens/);
    expect(detailsOf(f)).toMatchObject({ calls: 2, maxCompletionTokens: 6144, reasoningEffort: 'medium' });
    expect(stub.requests.map((q) => q.body.max_completion_tokens)).toEqual([3072, 6144]);
    expect(stub.stats().truncated).toBe(2);
  });

  it('a long reasoning of one reply is cut and retried like any', async () => {
    stub.enqueue({ kind: 'long-reasoning' });
    const r = await judge(client());
    expect(r.calls).toBe(2);
    expect(stub.requests[0]!.body.max_completion_tokens).toBeLessThan(stub.requests[1]!.body.max_completion_tokens);
  });
});

describe('LlmClient: 429 and 498 wait, never counted', () => {
  it('waits out a 429 for its retry-after, then answers (LLM_MAX_RETRIES=0: not counted)', async () => {
    stub.enqueue({ kind: 'status', status: 429, retryAfter: 1 });
    const beats: number[] = [];
    const r = await judge(client({ LLM_MAX_RETRIES: '0' }, { heartbeatMs: 100 }), 'quality', { heartbeat: () => beats.push(Date.now()) });
    expect(r.calls).toBe(2);
    const gap = stub.requests[1]!.receivedAt - stub.requests[0]!.receivedAt;
    expect(gap).toBeGreaterThanOrEqual(1000);
    expect(gap).toBeLessThan(1600);
    expect(logs[0]).toMatch(/^llm_call outcome=error .*type=LlmRateLimited status=429 wait_ms=1\d{3} next=wait$/);
    expect(beats.length).toBeGreaterThanOrEqual(8); // heartbeats while waiting
  });

  it('honours retry-after-ms', async () => {
    stub.enqueue({ kind: 'status', status: 429, retryAfterMs: 300, retryAfter: 9 });
    await judge(client());
    const gap = stub.requests[1]!.receivedAt - stub.requests[0]!.receivedAt;
    expect(gap).toBeGreaterThanOrEqual(300);
    expect(gap).toBeLessThan(2000);
  });

  it('backs off with jitter when a 429 has no retry-after', async () => {
    stub.enqueue({ kind: 'status', status: 429 }, { kind: 'status', status: 429 });
    const r = await judge(client({ LLM_MAX_RETRIES: '0' }, { random: () => 0.1 }));
    expect(r.calls).toBe(3);
    // full jitter over 1 s, then 2 s: 100 ms and 200 ms with random() = 0.1
    expect(logs.slice(0, 2).map((l) => /wait_ms=(\d+)/.exec(l)?.[1])).toEqual(['100', '200']);
  });

  it('throws a retryable LlmRateLimited with the delay when the wait would pass LLM_MAX_WAIT', async () => {
    stub.enqueue({ kind: 'status', status: 429, retryAfter: 30 });
    const started = Date.now();
    const f = await failureOf(judge(client({ LLM_MAX_WAIT: '2' })));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(f.type).toBe('LlmRateLimited');
    expect(f.nonRetryable).toBe(false);
    expect(Number(f.nextRetryDelay)).toBeGreaterThanOrEqual(30_000);
    expect(f.message).toContain('LLM_MAX_WAIT');
    expect(f.message).toMatch(/HTTP 429/);
    expectNoSecret(f);
  });

  it("turns a spent daily limit (Groq's TPD 429) into LlmCapacity naming the limit and what to set", async () => {
    stub.enqueue({
      kind: 'status',
      status: 429,
      retryAfter: 3 * 3600,
      body: {
        error: {
          message:
            'Rate limit reached for model `openai/gpt-oss-20b` in organization `org_x` service tier `on_demand` on tokens per day (TPD): Limit 200000, Used 199500, Requested 1800. Please try again in 3h0m0s.',
          type: 'tokens',
          code: 'rate_limit_exceeded',
        },
      },
    });
    const f = await failureOf(judge(client({ GROQ_PLAN: 'free' })));
    expect(f.type).toBe('LlmCapacity');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('tokens-per-day limit (TPD)');
    expect(f.message).toContain('GROQ_TPD');
    expect(f.message).toContain('GROQ_PLAN');
    expect(f.message).toContain('free');
  });

  it('waits out 498 (flex capacity) without counting it', async () => {
    stub.configure({ flex: { rate: 0.5, seed: 7 } });
    const c = client({ GROQ_SERVICE_TIER: 'flex', LLM_MAX_RETRIES: '0' }, { random: () => 0.05 });
    for (let i = 0; i < 6; i++) await judge(c);
    const s = stub.stats();
    expect(s.flexRejected).toBeGreaterThan(0);
    expect(s.answered).toBe(6);
    expect(s.byStatus[498]).toBe(s.flexRejected);
    expect(logs.filter((l) => l.includes('status=498'))).toHaveLength(s.flexRejected);
  });

  it('a 429 pauses every caller of the pacer', async () => {
    const pacer = new Pacer(config({ GROQ_PLAN: 'developer' }));
    const a = client({}, { pacer });
    const b = client({}, { pacer });
    stub.enqueue({ kind: 'status', status: 429, retryAfter: 1 });
    const first = judge(a);
    await new Promise((r) => setTimeout(r, 150)); // a's 429 has come back
    expect((await pacer.snapshot()).pausedUntil).not.toBeNull();
    const t0 = Date.now();
    await judge(b);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
    await first;
    expect(stub.requests.map((q) => q.status)).toEqual([429, 200, 200]);
  });

  it('stops waiting when the signal aborts', async () => {
    stub.enqueue({ kind: 'status', status: 429, retryAfter: 20 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('activity cancelled')), 200);
    const started = Date.now();
    await expect(judge(client(), 'quality', { signal: ac.signal })).rejects.toThrow('activity cancelled');
    expect(Date.now() - started).toBeLessThan(1500);
  });
});

describe('LlmClient: counted failures retried in process', () => {
  it('retries 500 and 503 (retry-after honoured) and answers', async () => {
    stub.enqueue({ kind: 'status', status: 500 }, { kind: 'status', status: 503, retryAfter: 1 });
    const r = await judge(client({ LLM_MAX_RETRIES: '2' }));
    expect(r.calls).toBe(3);
    expect(stub.requests[2]!.receivedAt - stub.requests[1]!.receivedAt).toBeGreaterThanOrEqual(1000);
    expect(logs.slice(0, 2).every((l) => /type=LlmServerError .*next=retry/.test(l))).toBe(true);
  });

  it('gives up after LLM_MAX_RETRIES counted failures with a non-retryable LlmRetriesExhausted naming the last reason', async () => {
    stub.enqueue({ kind: 'status', status: 500 }, { kind: 'status', status: 503 });
    const f = await failureOf(judge(client({ LLM_MAX_RETRIES: '1' })));
    expect(f.type).toBe('LlmRetriesExhausted');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/gave up after 2 failed LLM calls \(LLM_MAX_RETRIES=1\)/);
    expect(f.message).toMatch(/LlmServerError: Groq server error \(HTTP 503\)/);
    expect(detailsOf(f)).toMatchObject({ lastType: 'LlmServerError', status: 503, calls: 2 });
    expect(stub.requests).toHaveLength(2);
    expect(nonRetryableTypes()).toContain('LlmRetriesExhausted');
  });

  it('a call that sends many requests leaves no listener behind on its signal (no MaxListenersExceededWarning)', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const statuses = Array.from({ length: 14 }, () => ({ kind: 'status' as const, status: 500 }));
      stub.enqueue(...statuses);
      const r = await judge(client({ LLM_MAX_RETRIES: '20' }), 'quality', { signal: new AbortController().signal });
      expect(r.calls).toBe(15);
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  });

  it('retries 422 (a model glitch) and answers', async () => {
    stub.enqueue({ kind: 'status', status: 422 });
    const r = await judge(client({ LLM_MAX_RETRIES: '1' }));
    expect(r.calls).toBe(2);
    expect(logs[0]).toMatch(/type=LlmInvalidReply status=422 next=retry/);
  });

  it('maps a client-side timeout to a counted LlmTimeout after exactly one request each', async () => {
    stub.enqueue({ kind: 'delay', ms: 1500 });
    const started = Date.now();
    const f = await failureOf(judge(client({ LLM_MAX_RETRIES: '0' }, {}, { timeoutSec: 0.3 })));
    expect(Date.now() - started).toBeLessThan(1400);
    expect(f.type).toBe('LlmRetriesExhausted');
    expect(detailsOf(f).lastType).toBe('LlmTimeout');
    expect(f.message).toContain('LLM_TIMEOUT');
    expect(stub.requests).toHaveLength(1);
  });

  it('answers normally after a delay shorter than the timeout', async () => {
    stub.enqueue({ kind: 'delay', ms: 100 });
    const r = await judge(client({ LLM_TIMEOUT: '2' }));
    expect(r.latencyMs).toBeGreaterThanOrEqual(90);
  });

  it('retries a reset connection, and names GROQ_BASE_URL when it keeps failing', async () => {
    stub.enqueue({ kind: 'reset' });
    expect((await judge(client({ LLM_MAX_RETRIES: '1' }))).calls).toBe(2);
    stub.enqueue({ kind: 'reset' });
    const f = await failureOf(judge(client({ LLM_MAX_RETRIES: '0' })));
    expect(detailsOf(f).lastType).toBe('LlmUnavailable');
    expect(f.message).toContain('GROQ_BASE_URL');
    expectNoSecret(f);
  });

  it('maps an unreachable server to LlmUnavailable (counted)', async () => {
    const gone = await startGroqStub();
    const url = gone.baseURL;
    await gone.close();
    const c = new LlmClient(loadConfig({ GROQ_API_KEY: KEY, GROQ_BASE_URL: url, LLM_MAX_RETRIES: '1', GROQ_PLAN: 'unlimited' }), {
      log: (l) => logs.push(l),
      ...FAST,
    });
    const f = await failureOf(judge(c));
    expect(f.type).toBe('LlmRetriesExhausted');
    expect(detailsOf(f)).toMatchObject({ lastType: 'LlmUnavailable', calls: 2 });
    expectNoSecret(f);
  });

  it('counts a non-JSON reply, without the reply text, and reports its tokens', async () => {
    stub.enqueue({ kind: 'malformed' });
    const f = await failureOf(judge(client({ LLM_MAX_RETRIES: '0' })));
    expect(f.type).toBe('LlmRetriesExhausted');
    expect(detailsOf(f).lastType).toBe('LlmInvalidReply');
    expect(f.message).toMatch(/not valid JSON/);
    expect(f.message).not.toContain('Here is my verdict');
    // Tokens of the failed attempt are still reported for cost accounting.
    const d = detailsOf(f);
    expect(d.promptTokens).toBeGreaterThan(0);
    expect(d.completionTokens).toBeGreaterThan(0);
    expect(d.model).toBe('openai/gpt-oss-20b');
    expect(stub.requests).toHaveLength(1);
  });

  it('counts an out-of-range score, naming the field', async () => {
    stub.enqueue({ kind: 'out-of-range' });
    const f = await failureOf(judge(client({ LLM_MAX_RETRIES: '0' }), 'quality'));
    expect(detailsOf(f).lastType).toBe('LlmInvalidReply');
    expect(f.message).toMatch(/schema/);
    expect(f.message).toMatch(/overall/);
    expect(f.message).toMatch(/<=\s?1/);

    stub.enqueue({ kind: 'out-of-range' });
    const h = await failureOf(judge(client({ LLM_MAX_RETRIES: '0' }), 'hallucination'));
    expect(h.message).toMatch(/score/);
  });

  it('counts empty choices and empty content', async () => {
    stub.enqueue({ kind: 'empty-choices' }, { kind: 'empty-content' });
    const f1 = await failureOf(judge(client({ LLM_MAX_RETRIES: '0' })));
    expect(f1.message).toMatch(/no choices/);
    const f2 = await failureOf(judge(client({ LLM_MAX_RETRIES: '0' })));
    expect(f2.message).toMatch(/empty/);
    expect(stub.requests).toHaveLength(2);
  });

  it('consumes faults in order, one per request, then answers normally', async () => {
    stub.enqueue({ kind: 'status', status: 500 }, { kind: 'malformed' });
    const c = client({ LLM_MAX_RETRIES: '3' });
    const ok = await judge(c);
    expect(ok.value.overall).toBeGreaterThan(0);
    expect(ok.calls).toBe(3);
    expect(stub.requests.map((r) => r.fault)).toEqual(['status', 'malformed', undefined]);
    expect(stub.stats()).toMatchObject({ requests: 3, answered: 1, pendingFaults: 0 });
  });
});

describe('LlmClient: failures that are not retried', () => {
  it('maps 401 to a non-retryable LlmAuthError that names GROQ_API_KEY and hides the key', async () => {
    // A server that echoes the key back must not get it into our message either.
    stub.enqueue({
      kind: 'status',
      status: 401,
      body: { error: { message: `Invalid API Key: ${KEY}`, type: 'invalid_request_error', code: 'invalid_api_key' } },
    });
    const f = await failureOf(judge(client()));
    expect(f.type).toBe('LlmAuthError');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('GROQ_API_KEY');
    expect(f.message).toContain('HTTP 401');
    expect(f.message).toContain('LLM_ENABLED=false');
    expect(f.message).toContain('[REDACTED]');
    expectNoSecret(f);
    expect(stub.requests).toHaveLength(1);
    expect(LLM_FATAL_TYPES).toContain(f.type);
  });

  it('maps a real key mismatch (403 too) to LlmAuthError', async () => {
    const strict = await startGroqStub({ apiKey: 'gsk_the_right_one' });
    try {
      const c = new LlmClient(loadConfig({ GROQ_API_KEY: KEY, GROQ_BASE_URL: strict.baseURL }), { log: (l) => logs.push(l) });
      const f = await failureOf(judge(c));
      expect(f.type).toBe('LlmAuthError');
      expectNoSecret(f);
    } finally {
      await strict.close();
    }
    stub.enqueue({ kind: 'status', status: 403 });
    const f403 = await failureOf(judge(client()));
    expect(f403.type).toBe('LlmAuthError');
    expect(f403.nonRetryable).toBe(true);
  });

  // Pins: a retired model stops the caller like an unknown one. Failed before: it was an
  // LlmBadRequest, which the collector records per check, so every interaction of a cycle was
  // stored as a failed check and the cursor moved on.
  it("maps Groq's 400 model_decommissioned to a non-retryable LlmModelNotFound naming GROQ_MODEL and the deprecations page", async () => {
    const retired = await startGroqStub({ decommissioned: ['llama3-70b-8192'] });
    try {
      const c = new LlmClient(loadConfig({ GROQ_API_KEY: KEY, GROQ_BASE_URL: retired.baseURL, GROQ_MODEL: 'llama3-70b-8192' }), {
        log: (l) => logs.push(l),
      });
      const f = await failureOf(judge(c));
      expect(f.type).toBe('LlmModelNotFound');
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toMatch(/decommissioned the model 'llama3-70b-8192' .*set GROQ_MODEL to its replacement/);
      expect(f.message).toContain('https://console.groq.com/docs/deprecations');
      expect(retired.requests).toHaveLength(1);
    } finally {
      await retired.close();
    }
  });

  it('maps 404 to a non-retryable LlmModelNotFound naming GROQ_MODEL', async () => {
    const strict = await startGroqStub({ models: ['llama-3.1-8b-instant'] });
    try {
      const c = new LlmClient(loadConfig({ GROQ_API_KEY: KEY, GROQ_BASE_URL: strict.baseURL, GROQ_MODEL: 'no-such-model' }), {
        log: (l) => logs.push(l),
      });
      const f = await failureOf(judge(c));
      expect(f.type).toBe('LlmModelNotFound');
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toContain('GROQ_MODEL');
      expect(f.message).toContain('no-such-model');
      expect(strict.requests).toHaveLength(1);
    } finally {
      await strict.close();
    }
  });

  it('maps another 400 to a non-retryable LlmBadRequest after one request', async () => {
    stub.enqueue({ kind: 'status', status: 400 });
    const f = await failureOf(judge(client()));
    expect(f.type).toBe('LlmBadRequest');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('HTTP 400');
    expect(stub.requests).toHaveLength(1);
    expect(nonRetryableTypes()).toContain('LlmBadRequest');
  });

  it("maps Groq's 413 (request larger than the TPM) to LlmCapacity naming the limit, the plan and what to set", async () => {
    stub.configure({ limits: { tpm: 2000 } });
    const f = await failureOf(judge(client({ GROQ_PLAN: 'unlimited' })));
    expect(stub.requests.map((q) => q.status)).toEqual([413]);
    expect(f.type).toBe('LlmCapacity');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/the request \(≈[\d,]+ tokens\) is larger than the tokens-per-minute limit 2,000 of plan unlimited/);
    expect(f.message).toContain('GROQ_TPM / GROQ_PLAN');
    expect(f.message).toContain('lower the text budget');
  });

  it('refuses before sending a request larger than the configured TPM', async () => {
    const f = await failureOf(
      client({ GROQ_PLAN: 'free' }).json({ system: 'Reply in JSON.', user: 'x'.repeat(40_000), schema: z.object({ a: z.string() }) }),
    );
    expect(f.type).toBe('LlmCapacity');
    expect(f.message).toContain('tokens-per-minute limit 8,000 of plan free');
    expect(stub.requests).toHaveLength(0);
  });

  it('refuses to start without an API key', () => {
    const cfg = loadConfig({ GROQ_BASE_URL: stub.baseURL });
    let err: unknown;
    try {
      new LlmClient(cfg);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe('LlmAuthError');
    expect((err as ApplicationFailure).message).toContain('GROQ_API_KEY');
  });
});

describe('LlmClient: pacing against a stub that enforces limits', () => {
  it('reads x-ratelimit-* headers: a low remaining TPM makes the next call wait instead of meeting a 429', async () => {
    // The stub: 6,000 tokens per minute on a clock 20x faster (6,000 per 3 s). The client's plan
    // says 250,000: the first reply's headers bring it down to the truth.
    stub.configure({ limits: { tpm: 6000 }, timeScale: 20 });
    const pacer = new Pacer(config({ GROQ_PLAN: 'developer' }), { timeScale: 20 });
    const c = client({ GROQ_PLAN: 'developer' }, { pacer });
    for (let i = 0; i < 8; i++) await judge(c);
    const snap = await pacer.snapshot();
    expect(snap.limits.tpm).toBe(6000);
    expect(stub.stats().answered).toBe(8);
    expect(stub.stats().rateLimited.TPM ?? 0).toBeLessThanOrEqual(1);
  });

  it('paces requests per minute: the stub (almost) never answers 429, where an unpaced client meets many', async () => {
    stub.configure({ limits: { rpm: 4 }, timeScale: 30 }); // 4 per 2 s
    const pacer = new Pacer(config({ GROQ_PLAN: 'unlimited', GROQ_RPM: '4' }), { timeScale: 30 });
    const paced = client({ GROQ_PLAN: 'unlimited', GROQ_RPM: '4', LLM_MAX_RETRIES: '0' }, { pacer });
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 10 }, () => judge(paced)));
    // 4 at once, then one every 0.5 s: the tenth starts after about 3 s.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2800);
    expect(stub.stats().answered).toBe(10);
    // Only the network's jitter, magnified 30 times by the scaled clock, can make one arrive early.
    expect(stub.stats().rateLimited.RPM ?? 0).toBeLessThanOrEqual(1);

    stub.configure({ limits: { rpm: 4 } });
    stub.clear();
    const unpaced = client({ GROQ_PLAN: 'unlimited', LLM_MAX_RETRIES: '0' }, { random: () => 0.02 });
    await Promise.all(Array.from({ length: 10 }, () => judge(unpaced)));
    expect(stub.stats().answered).toBe(10); // every 429 waited out, none counted
    expect(stub.stats().rateLimited.RPM).toBeGreaterThanOrEqual(6);
  });
});

describe('strict JSON Schema from zod', () => {
  it('requires every property, forbids others, and restates bounds in descriptions', () => {
    const r = strictJsonSchema(checkResultSchemas.toxicity);
    if (!('schema' in r)) throw new Error(r.error);
    const s = r.schema as {
      required: string[];
      additionalProperties: boolean;
      properties: Record<string, { description?: string }>;
      $schema?: string;
    };
    expect(s.$schema).toBeUndefined();
    expect(s.additionalProperties).toBe(false);
    expect(s.required).toEqual(['toxicity', 'hate_speech', 'violence', 'profanity', 'reasoning']);
    expect(s.properties.reasoning!.description).toBe('(at most 4000 characters)');
  });

  it('handles arrays of objects and integers', () => {
    const r = strictJsonSchema(
      z.object({ items: z.array(z.object({ n: z.number().int().min(0), t: z.string().min(1).optional() })).max(5) }),
    );
    if (!('schema' in r)) throw new Error(r.error);
    const items = (r.schema as any).properties.items;
    expect(items.description).toBe('(at most 5 items)');
    expect(items.items).toMatchObject({ additionalProperties: false, required: ['n', 't'] });
    expect(items.items.properties.n).toEqual({ type: 'integer', description: '(at least 0)' });
    expect(items.items.properties.t.description).toBe('(not empty)');
  });

  it('refuses what strict mode cannot express', () => {
    expect(strictJsonSchema(z.union([z.object({ a: z.string() }), z.object({ b: z.number() })]))).toEqual({
      error: 'the root is not an object',
    });
    expect('error' in strictJsonSchema(z.object({ m: z.record(z.string(), z.number()) }))).toBe(true);
    expect('error' in strictJsonSchema(z.object({ d: z.date() }))).toBe(true);
  });

  it('makes names Groq accepts', () => {
    expect(schemaNameOf('judgement')).toBe('judgement');
    expect(schemaNameOf('agent narrative/v1')).toBe('agent_narrative_v1');
    expect(schemaNameOf(undefined)).toBe('reply');
  });
});

describe('llmRetryPolicy', () => {
  it('turns LLM_MAX_RETRIES into a Temporal retry policy', () => {
    expect(llmRetryPolicy(3)).toEqual({
      maximumAttempts: 4,
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '60s',
      nonRetryableErrorTypes: nonRetryableTypes(),
    });
    for (const t of ['LlmAuthError', 'LlmModelNotFound', 'LlmBadRequest', 'LlmRetriesExhausted', 'LlmReplyTruncated', 'LlmCapacity']) {
      expect(nonRetryableTypes()).toContain(t);
    }
    for (const t of ['LlmRateLimited', 'LlmServerError', 'LlmUnavailable', 'LlmTimeout', 'LlmInvalidReply'])
      expect(nonRetryableTypes()).not.toContain(t);
    expect(llmRetryPolicy(0).maximumAttempts).toBe(1);
  });
});

describe('retryAfterMsOf', () => {
  const h = (o: Record<string, string>) => new Headers(o);
  it('reads seconds, milliseconds and HTTP dates', () => {
    expect(retryAfterMsOf(h({ 'retry-after': '3' }))).toBe(3000);
    expect(retryAfterMsOf(h({ 'retry-after': '0.5' }))).toBe(500);
    expect(retryAfterMsOf(h({ 'retry-after-ms': '250', 'retry-after': '3' }))).toBe(250);
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(retryAfterMsOf(h({ 'retry-after': 'Wed, 01 Jan 2025 00:00:30 GMT' }), now)).toBe(30_000);
    expect(retryAfterMsOf(h({ 'retry-after': 'Tue, 31 Dec 2024 23:59:00 GMT' }), now)).toBe(0);
  });
  it('ignores absent or unusable values', () => {
    expect(retryAfterMsOf(h({}))).toBeUndefined();
    expect(retryAfterMsOf(h({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(retryAfterMsOf(h({ 'retry-after': '-4' }))).toBeUndefined();
    expect(retryAfterMsOf(undefined)).toBeUndefined();
  });
});
