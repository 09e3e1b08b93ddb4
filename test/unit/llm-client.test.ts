import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { LlmClient, retryAfterMsOf, type LlmCallResult } from '../../activities/llm/client.js';
import { LLM_FATAL_TYPES, nonRetryableTypes } from '../../common/failures.js';
import { llmRetryPolicy } from '../../workflows/options.js';
import { loadConfig, type Config } from '../../common/config.js';
import { renderJudgePrompt } from '../../domain/judge/prompts.js';
import { checkResultSchemas, type Check, type CheckResult } from '../../common/types.js';
import { startGroqStub, type GroqStub } from '../helpers/groq-stub.js';

const KEY = 'gsk_test_SECRET_123456';
let stub: GroqStub;
let logs: string[] = [];

function config(over: Partial<Config['llm']> = {}, env: Record<string, string> = {}): Config {
  const c = loadConfig({ GROQ_API_KEY: KEY, GROQ_BASE_URL: stub.baseURL, LLM_TIMEOUT: '5', ...env });
  return { ...c, llm: { ...c.llm, ...over } };
}

function client(over: Partial<Config['llm']> = {}, env: Record<string, string> = {}): LlmClient {
  return new LlmClient(config(over, env), { log: (l) => logs.push(l) });
}

const INPUT = {
  prompt: 'What is the capital of France? (private-user-text-7781)',
  response: 'Paris is the capital of France.',
  context: 'Paris is the capital and largest city of France.',
};

function judge<C extends Check = 'quality'>(c: LlmClient, check: C = 'quality' as C): Promise<LlmCallResult<CheckResult<C>>> {
  const { system, user } = renderJudgePrompt(check, INPUT);
  return c.json({ system, user, schema: checkResultSchemas[check] }) as Promise<LlmCallResult<CheckResult<C>>>;
}

/** Run `p`, expect an ApplicationFailure, return it. */
async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ApplicationFailure);
    return e as ApplicationFailure;
  }
  throw new Error('expected the call to fail');
}

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
  stub.clear();
  stub.setDefault(undefined);
  logs = [];
});

describe('LlmClient against the Groq stub', () => {
  it('parses a valid reply and reports model, usage and latency', async () => {
    const r = await judge(client(), 'quality');
    expect(checkResultSchemas.quality.safeParse(r.value).success).toBe(true);
    expect(r.value.overall).toBeGreaterThan(0.5);
    expect(r.value.overall).toBeLessThanOrEqual(1);
    expect(r.model).toBe('openai/gpt-oss-20b');
    expect(r.promptTokens).toBeGreaterThan(50);
    expect(r.completionTokens).toBeGreaterThan(5);
    expect(r.latencyMs).toBeGreaterThanOrEqual(0);

    expect(stub.requests).toHaveLength(1);
    const req = stub.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/openai/v1/chat/completions');
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.headers['x-stainless-retry-count']).toBe('0');
    expect(req.check).toBe('quality');
    expect(req.body.model).toBe('openai/gpt-oss-20b');
    expect(req.body.temperature).toBe(0);
    expect(req.body.response_format).toEqual({ type: 'json_object' });
    expect(req.body.stream).toBe(false);
    expect(req.body.messages.map((m: { role: string }) => m.role)).toEqual(['system', 'user']);
    expect(req.body.messages[0].content).not.toContain('private-user-text-7781');
    expect(req.body.messages[1].content).toContain('private-user-text-7781');

    // One log line, with numbers but no text content and no key.
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/^llm_call outcome=ok model=openai\/gpt-oss-20b latency_ms=\d+ prompt_tokens=\d+ completion_tokens=\d+$/);
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

  it('works with any zod schema and a custom stub answer', async () => {
    stub.setDefault(() => ({ summary: 'costs rose 12%', actions: ['scale down'] }));
    const schema = z.object({ summary: z.string(), actions: z.array(z.string()) });
    const r = await client().json({ system: 'You are an analyst. Reply in JSON.', user: '{"cost": 12}', schema, maxTokens: 300 });
    expect(r.value).toEqual({ summary: 'costs rose 12%', actions: ['scale down'] });
    expect(stub.requests[0]!.body.max_completion_tokens).toBe(300);
  });

  it('maps 429 with retry-after to a retryable LlmRateLimited with nextRetryDelay', async () => {
    stub.enqueue({ kind: 'status', status: 429, retryAfter: 7 });
    const f = await failure(judge(client()));
    expect(f.type).toBe('LlmRateLimited');
    expect(f.nonRetryable).toBe(false);
    expect(f.nextRetryDelay).toBe(7000);
    expect(f.message).toMatch(/HTTP 429/);
    expect(f.message).toMatch(/7s/);
    expect(f.message).toContain('LLM_REQUESTS_PER_SECOND');
    expect(stub.requests).toHaveLength(1);
    expectNoSecret(f);
    expect(logs).toEqual([expect.stringMatching(/^llm_call outcome=error .*type=LlmRateLimited status=429/)]);
  });

  it('honours retry-after-ms and an HTTP-date retry-after', async () => {
    stub.enqueue({ kind: 'status', status: 429, retryAfterMs: 1500, retryAfter: 9 });
    const f1 = await failure(judge(client()));
    expect(f1.nextRetryDelay).toBe(1500);

    const at = new Date(Date.now() + 20_000).toUTCString();
    stub.enqueue({ kind: 'status', status: 429, retryAfter: at });
    const f2 = await failure(judge(client()));
    expect(f2.type).toBe('LlmRateLimited');
    expect(Number(f2.nextRetryDelay)).toBeGreaterThan(17_000);
    expect(Number(f2.nextRetryDelay)).toBeLessThanOrEqual(20_000);
    expect(stub.requests).toHaveLength(2);
  });

  it('leaves the retry delay to the policy when a 429 has no retry-after', async () => {
    stub.enqueue({ kind: 'status', status: 429 });
    const f = await failure(judge(client()));
    expect(f.type).toBe('LlmRateLimited');
    expect(f.nonRetryable).toBe(false);
    expect(f.nextRetryDelay ?? undefined).toBeUndefined();
  });

  it('maps 500 and 503 to retryable LlmServerError', async () => {
    stub.enqueue({ kind: 'status', status: 500 }, { kind: 'status', status: 503, retryAfter: 2 });
    const f500 = await failure(judge(client()));
    expect(f500.type).toBe('LlmServerError');
    expect(f500.nonRetryable).toBe(false);
    expect(f500.message).toMatch(/HTTP 500/);
    const f503 = await failure(judge(client()));
    expect(f503.type).toBe('LlmServerError');
    expect(f503.nextRetryDelay).toBe(2000);
    expect(stub.requests).toHaveLength(2);
  });

  it('maps 401 to a non-retryable LlmAuthError that names GROQ_API_KEY and hides the key', async () => {
    // A server that echoes the key back must not get it into our message either.
    stub.enqueue({
      kind: 'status',
      status: 401,
      body: { error: { message: `Invalid API Key: ${KEY}`, type: 'invalid_request_error', code: 'invalid_api_key' } },
    });
    const f = await failure(judge(client()));
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
      const f = await failure(judge(c));
      expect(f.type).toBe('LlmAuthError');
      expectNoSecret(f);
    } finally {
      await strict.close();
    }
    stub.enqueue({ kind: 'status', status: 403 });
    const f403 = await failure(judge(client()));
    expect(f403.type).toBe('LlmAuthError');
    expect(f403.nonRetryable).toBe(true);
  });

  it('maps 404 to a non-retryable LlmModelNotFound naming GROQ_MODEL', async () => {
    const strict = await startGroqStub({ models: ['llama-3.1-8b-instant'] });
    try {
      const c = new LlmClient(loadConfig({ GROQ_API_KEY: KEY, GROQ_BASE_URL: strict.baseURL, GROQ_MODEL: 'no-such-model' }), {
        log: (l) => logs.push(l),
      });
      const f = await failure(judge(c));
      expect(f.type).toBe('LlmModelNotFound');
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toContain('GROQ_MODEL');
      expect(f.message).toContain('no-such-model');
      expect(strict.requests).toHaveLength(1);
    } finally {
      await strict.close();
    }
  });

  it('maps 400 and 422 to a non-retryable LlmBadRequest', async () => {
    stub.enqueue({ kind: 'status', status: 400 }, { kind: 'status', status: 422 });
    for (const status of [400, 422]) {
      const f = await failure(judge(client()));
      expect(f.type).toBe('LlmBadRequest');
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toContain(`HTTP ${status}`);
    }
    expect(nonRetryableTypes()).toContain('LlmBadRequest');
  });

  it("treats Groq's json_validate_failed 400 as a retryable LlmInvalidReply", async () => {
    stub.enqueue({ kind: 'json-validate-failed' });
    const f = await failure(judge(client()));
    expect(f.type).toBe('LlmInvalidReply');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).not.toContain('"overall": 0.8');
  });

  it('maps a client-side timeout to a retryable LlmTimeout after exactly one request', async () => {
    stub.enqueue({ kind: 'delay', ms: 1500 });
    const started = Date.now();
    const f = await failure(judge(client({ timeoutSec: 0.3 })));
    expect(Date.now() - started).toBeLessThan(1400);
    expect(f.type).toBe('LlmTimeout');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toContain('LLM_TIMEOUT');
    expect(stub.requests).toHaveLength(1);
  });

  it('answers normally after a delay shorter than the timeout', async () => {
    stub.enqueue({ kind: 'delay', ms: 100 });
    const r = await judge(client({ timeoutSec: 2 }));
    expect(r.latencyMs).toBeGreaterThanOrEqual(90);
  });

  it('maps a reset connection to a retryable LlmUnavailable', async () => {
    stub.enqueue({ kind: 'reset' });
    const f = await failure(judge(client()));
    expect(f.type).toBe('LlmUnavailable');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toContain('GROQ_BASE_URL');
    expect(stub.requests).toHaveLength(1);
    expectNoSecret(f);
  });

  it('maps an unreachable server to a retryable LlmUnavailable', async () => {
    const gone = await startGroqStub();
    const url = gone.baseURL;
    await gone.close();
    const c = new LlmClient(loadConfig({ GROQ_API_KEY: KEY, GROQ_BASE_URL: url }), { log: (l) => logs.push(l) });
    const f = await failure(judge(c));
    expect(f.type).toBe('LlmUnavailable');
    expect(f.nonRetryable).toBe(false);
    expectNoSecret(f);
  });

  it('maps a non-JSON reply to a retryable LlmInvalidReply without the reply text', async () => {
    stub.enqueue({ kind: 'malformed' });
    const f = await failure(judge(client()));
    expect(f.type).toBe('LlmInvalidReply');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toMatch(/not valid JSON/);
    expect(f.message).not.toContain('Here is my verdict');
    // Tokens of the failed attempt are still reported for cost accounting.
    const d = f.details?.[0] as { promptTokens: number; completionTokens: number; model: string };
    expect(d.promptTokens).toBeGreaterThan(0);
    expect(d.model).toBe('openai/gpt-oss-20b');
    expect(stub.requests).toHaveLength(1);
  });

  it('maps an out-of-range score to a retryable LlmInvalidReply naming the field', async () => {
    stub.enqueue({ kind: 'out-of-range' });
    const f = await failure(judge(client(), 'quality'));
    expect(f.type).toBe('LlmInvalidReply');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toMatch(/schema/);
    expect(f.message).toMatch(/overall/);
    expect(f.message).toMatch(/<=\s?1/);
    expect(stub.requests).toHaveLength(1);

    stub.enqueue({ kind: 'out-of-range' });
    const h = await failure(judge(client(), 'hallucination'));
    expect(h.type).toBe('LlmInvalidReply');
    expect(h.message).toMatch(/score/);
  });

  it('maps empty choices and empty content to a retryable LlmInvalidReply', async () => {
    stub.enqueue({ kind: 'empty-choices' }, { kind: 'empty-content' });
    const f1 = await failure(judge(client()));
    expect(f1.type).toBe('LlmInvalidReply');
    expect(f1.nonRetryable).toBe(false);
    expect(f1.message).toMatch(/no choices/);
    const f2 = await failure(judge(client()));
    expect(f2.type).toBe('LlmInvalidReply');
    expect(f2.message).toMatch(/empty/);
    expect(stub.requests).toHaveLength(2);
  });

  it('consumes faults in order, one per request, then answers normally', async () => {
    stub.enqueue({ kind: 'status', status: 500 }, { kind: 'malformed' });
    const c = client();
    expect((await failure(judge(c))).type).toBe('LlmServerError');
    expect((await failure(judge(c))).type).toBe('LlmInvalidReply');
    const ok = await judge(c);
    expect(ok.value.overall).toBeGreaterThan(0);
    expect(stub.requests.map((r) => r.fault)).toEqual(['status', 'malformed', undefined]);
    expect(stub.stats()).toMatchObject({ requests: 3, answered: 1, pendingFaults: 0 });
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

describe('llmRetryPolicy', () => {
  it('turns LLM_MAX_RETRIES into a Temporal retry policy', () => {
    expect(llmRetryPolicy(3)).toEqual({
      maximumAttempts: 4,
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '60s',
      nonRetryableErrorTypes: nonRetryableTypes(),
    });
    for (const t of ['LlmAuthError', 'LlmModelNotFound', 'LlmBadRequest', 'LlmRetriesExhausted']) expect(nonRetryableTypes()).toContain(t);
    for (const t of ['LlmRateLimited', 'LlmServerError', 'LlmUnavailable', 'LlmTimeout', 'LlmInvalidReply']) expect(nonRetryableTypes()).not.toContain(t);
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
