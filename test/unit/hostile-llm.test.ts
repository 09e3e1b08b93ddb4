/**
 * The LLM client through the real groq-sdk against a raw local HTTP server that answers the way
 * a misbehaving Groq-compatible server, or a proxy in front of one, can: bodies that never end or
 * are cut, bodies that are no chat completion, odd replies, absurd `retry-after`, usage and
 * `x-ratelimit-*` values, and error messages that echo the API key.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { LlmClient, plausibleUsage, type LlmClientOptions } from '../../activities/llm/client.js';
import { MAX_RETRY_AFTER_MS, retryAfterMsOf, type LlmFailureDetails } from '../../activities/llm/errors.js';
import { corrected, DAY_MS, MINUTE_MS, observationOf, Pacer, waitFor, type BudgetState } from '../../activities/llm/pacer.js';
import { loadConfig, type Config } from '../../common/config.js';
import { checkResultSchemas } from '../../common/types.js';
import { within } from '../helpers/async.js';

const KEY = 'gsk_test_SECRET_123456';
/** The start of the key: a message clipped in the middle of the key must not hold even this. */
const KEY_PREFIX = KEY.slice(0, 10);

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
/** One handler per request, in order; the last one answers every further request. */
let handlers: Handler[] = [];
let seen: number[] = [];
let logs: string[] = [];
let server: http.Server;
let base = '';

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(Date.now());
      const h = handlers[Math.min(seen.length - 1, handlers.length - 1)];
      if (h) h(req, res);
      else res.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  handlers = [];
  seen = [];
  logs = [];
});

function config(env: Record<string, string> = {}): Config {
  return loadConfig({ GROQ_API_KEY: KEY, GROQ_BASE_URL: base, LLM_TIMEOUT: '1', GROQ_PLAN: 'unlimited', LLM_MAX_RETRIES: '1', ...env });
}

function client(env: Record<string, string> = {}, opts: LlmClientOptions = {}): LlmClient {
  return new LlmClient(config(env), { log: (l) => logs.push(l), backoff: { baseMs: 20, capMs: 40 }, random: () => 0.5, ...opts });
}

const schema = checkResultSchemas.hallucination;
const GOOD = { score: 0.2, confidence: 0.9, reasoning: 'supported by the context' };
const call = (c: LlmClient) => c.json({ system: 'Judge. Reply in JSON.', user: 'the text', schema, schemaName: 'hallucination' });

/** The ApplicationFailure `p` ends with (anything else fails the test). */
async function failure(p: Promise<unknown>, ms = 6000): Promise<ApplicationFailure> {
  try {
    await within(p, ms);
  } catch (e) {
    if (!(e instanceof ApplicationFailure)) throw new Error(`expected an ApplicationFailure, got ${String(e)}`);
    return e;
  }
  throw new Error('expected the call to fail');
}

const detailsOf = (f: ApplicationFailure) => f.details?.[0] as LlmFailureDetails;

function noKey(f: ApplicationFailure) {
  for (const text of [f.message, JSON.stringify(f.details ?? []), ...logs]) expect(text).not.toContain(KEY_PREFIX);
}

const completion = (content: unknown, extra: Record<string, unknown> = {}) => ({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  model: 'openai/gpt-oss-20b',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 40, completion_tokens: 20, total_tokens: 60 },
  ...extra,
});

function sendJson(status: number, body: unknown, headers: Record<string, string> = {}): Handler {
  return (_q, res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
}
const answer = (content: unknown, extra: Record<string, unknown> = {}) =>
  sendJson(200, completion(typeof content === 'string' ? content : JSON.stringify(content), extra));

describe('replies that never end or break off', () => {
  it('a 200 whose body never finishes after its headers is a counted LlmTimeout within LLM_TIMEOUT, per request', async () => {
    handlers = [
      (_q, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"choices":[');
      },
    ];
    const started = Date.now();
    const f = await failure(call(client({ LLM_TIMEOUT: '1', LLM_MAX_RETRIES: '1' })));
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(2000); // two requests of 1 s each
    expect(took).toBeLessThan(3500);
    expect(f.type).toBe('LlmRetriesExhausted');
    expect(detailsOf(f)).toMatchObject({ lastType: 'LlmTimeout', calls: 2 });
    expect(f.message).toContain('did not answer within 1s (LLM_TIMEOUT)');
    expect(seen).toHaveLength(2);
    expect(logs.map((l) => /type=(\w+)/.exec(l)?.[1])).toEqual(['LlmTimeout', 'LlmTimeout']);
  });

  it('an error status whose body never finishes is an LlmTimeout too, not a wait forever', async () => {
    handlers = [
      (_q, res) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.write('{"error":');
      },
    ];
    const started = Date.now();
    const f = await failure(call(client({ LLM_TIMEOUT: '1', LLM_MAX_RETRIES: '0' })));
    expect(Date.now() - started).toBeLessThan(2500);
    expect(detailsOf(f)).toMatchObject({ lastType: 'LlmTimeout', calls: 1 });
  });

  it('a caller that cancels during a body that never finishes gets its own reason, not a timeout', async () => {
    handlers = [
      (_q, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{');
      },
    ];
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('activity cancelled')), 200);
    const c = client({ LLM_TIMEOUT: '5' });
    await expect(within(c.json({ system: 's', user: 'u', schema, signal: ac.signal }), 2000)).rejects.toThrow('activity cancelled');
  });

  it('a connection reset in the middle of the body is a counted LlmUnavailable naming the lost connection', async () => {
    const cut: Handler = (_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
      res.write('{"choices":[{"message":');
      setTimeout(() => res.socket?.destroy(), 20);
    };
    handlers = [cut, answer(GOOD)];
    const r = await within(call(client({ LLM_MAX_RETRIES: '1' })), 4000);
    expect(r.value).toEqual(GOOD);
    expect(r.calls).toBe(2);

    handlers = [cut];
    seen = [];
    const f = await failure(call(client({ LLM_MAX_RETRIES: '0' })));
    expect(detailsOf(f).lastType).toBe('LlmUnavailable');
    expect(f.message).toMatch(/the connection to Groq at http:\/\/127\.0\.0\.1:\d+ was lost while reading the reply/);
    expect(f.message).toContain('GROQ_BASE_URL');
  });
});

describe('replies too large to be a chat completion', () => {
  it('a body beyond 4 MB is a counted LlmInvalidReply, read no further, also when it never ends', async () => {
    handlers = [answer({ ...GOOD, reasoning: 'x'.repeat(5 * 1024 * 1024) })];
    const f = await failure(call(client({ LLM_MAX_RETRIES: '0', LLM_TIMEOUT: '10' })));
    expect(detailsOf(f).lastType).toBe('LlmInvalidReply');
    expect(f.message).toContain('the reply is larger than 4 MB');

    // A server streaming without end: stopped at the limit, long before LLM_TIMEOUT.
    const chunk = Buffer.alloc(64 * 1024, 'x');
    handlers = [
      (_q, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"choices":[{"message":{"content":"');
        const more = () => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', more);
        };
        res.on('error', () => undefined);
        more();
      },
    ];
    const started = Date.now();
    const g = await failure(call(client({ LLM_MAX_RETRIES: '0', LLM_TIMEOUT: '10' })));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(g.message).toContain('the reply is larger than 4 MB');
  });
});

describe('200s that are no chat completion', () => {
  const cases: Array<[string, Handler, RegExp]> = [
    [
      'an empty JSON body',
      (_q, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '0' });
        res.end();
      },
      /the answer has no body/,
    ],
    ['a JSON null', sendJson(200, 'null'), /the answer has no body/],
    [
      '204 No Content',
      (_q, res) => {
        res.writeHead(204);
        res.end();
      },
      /the answer has no body/,
    ],
    ['a JSON number', sendJson(200, '42'), /the answer is a JSON number, not a chat completion/],
    ['a JSON array', sendJson(200, '[]'), /the answer is a JSON array, not a chat completion/],
    [
      "a proxy's HTML page",
      (_q, res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html><body>Please log in</body></html>');
      },
      /the answer is 39 characters of text, not a JSON chat completion \(a proxy's page in front of Groq\? check GROQ_BASE_URL\)/,
    ],
    [
      'an SSE stream nobody asked for',
      (_q, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(`data: ${JSON.stringify(completion(JSON.stringify(GOOD)))}\n\ndata: [DONE]\n\n`);
      },
      /characters of an event stream, not a JSON chat completion/,
    ],
    [
      'an error object with status 200',
      sendJson(200, { error: { message: 'upstream overloaded' } }),
      /the answer is an error with HTTP 200: upstream overloaded/,
    ],
  ];
  for (const [name, h, why] of cases) {
    it(`${name}: a counted LlmInvalidReply saying what came back, never a TypeError`, async () => {
      handlers = [h];
      const f = await failure(call(client({ LLM_MAX_RETRIES: '1' })));
      expect(f.type).toBe('LlmRetriesExhausted');
      expect(detailsOf(f)).toMatchObject({ lastType: 'LlmInvalidReply', calls: 2 });
      expect(f.message).toMatch(why);
      expect(seen).toHaveLength(2);
    });
  }

  it('answers after one such reply when the next is good', async () => {
    handlers = [sendJson(200, 'null'), answer(GOOD)];
    const r = await within(call(client({ LLM_MAX_RETRIES: '1' })), 4000);
    expect(r.value).toEqual(GOOD);
    expect(r.calls).toBe(2);
  });

  it('an error object at 200 that echoes the key keeps it out of the message', async () => {
    handlers = [sendJson(200, { error: { message: `${'e'.repeat(290)} ${KEY}` } })];
    const f = await failure(call(client({ LLM_MAX_RETRIES: '0' })));
    noKey(f);
  });
});

describe('odd reply content', () => {
  it('takes a JSON object wrapped in one Markdown fence whatever the response format, and nothing else', async () => {
    handlers = [answer(`\`\`\`json\n${JSON.stringify(GOOD)}\n\`\`\``)];
    const r = await within(call(client({ LLM_MAX_RETRIES: '0' })), 4000);
    expect(r.value).toEqual(GOOD);
    expect(r.calls).toBe(1);

    // Prose around the JSON: an example in an explanation is no verdict.
    handlers = [answer(`I cannot judge this. For example: ${JSON.stringify(GOOD)}`)];
    seen = [];
    const f = await failure(call(client({ LLM_MAX_RETRIES: '0' })));
    expect(detailsOf(f).lastType).toBe('LlmInvalidReply');
    expect(f.message).toMatch(/not valid JSON \(\d+ characters; Unexpected token 'I'\)/);
    // The model's words are not quoted into the message.
    expect(f.message).not.toContain('I cannot');
  });

  // Each is refused (counted), never coerced, clamped or defaulted into a stored score.
  const refused: Array<[string, string, RegExp]> = [
    ['a score as a string', '{"score":"0.9","confidence":0.9,"reasoning":"x"}', /score: Invalid input: expected number, received string/],
    [
      'a score as a percentage',
      '{"score":"90%","confidence":0.9,"reasoning":"x"}',
      /score: Invalid input: expected number, received string/,
    ],
    ['a score above 1', '{"score":1.5,"confidence":0.9,"reasoning":"x"}', /score: Too big/],
    ['a negative score', '{"score":-0.1,"confidence":0.9,"reasoning":"x"}', /score: Too small/],
    ['a missing score', '{"confidence":0.9,"reasoning":"x"}', /score: Invalid input: expected number, received undefined/],
    ['a null score', '{"score":null,"confidence":0.9,"reasoning":"x"}', /score: Invalid input: expected number, received null/],
    ['NaN', '{"score":NaN,"confidence":0.9,"reasoning":"x"}', /not valid JSON/],
    ['Infinity', '{"score":Infinity,"confidence":0.9,"reasoning":"x"}', /not valid JSON/],
    ['a trailing comma', '{"score":0.1,"confidence":0.9,"reasoning":"x",}', /not valid JSON/],
    ['a comment', '{"score":0.1, // sure\n"confidence":0.9,"reasoning":"x"}', /not valid JSON/],
    ['an array at the root', '[0.1,0.9]', /does not match the expected schema/],
  ];
  for (const [name, content, why] of refused) {
    it(`refuses ${name}`, async () => {
      handlers = [answer(content)];
      const f = await failure(call(client({ LLM_MAX_RETRIES: '0' })));
      expect(f.type).toBe('LlmRetriesExhausted');
      expect(detailsOf(f).lastType).toBe('LlmInvalidReply');
      expect(f.message).toMatch(why);
    });
  }

  it('ignores extra keys, deep nesting in them, finish_reason content_filter or null around a valid reply', async () => {
    const deep = `${'['.repeat(50_000)}${']'.repeat(50_000)}`;
    for (const [content, extra] of [
      [`{"score":0.2,"confidence":0.9,"reasoning":"supported by the context","extra":{"a":1},"deep":${deep}}`, {}],
      [
        JSON.stringify(GOOD),
        { choices: [{ index: 0, message: { role: 'assistant', content: JSON.stringify(GOOD) }, finish_reason: 'content_filter' }] },
      ],
      [
        JSON.stringify(GOOD),
        { choices: [{ index: 0, message: { role: 'assistant', content: JSON.stringify(GOOD) }, finish_reason: null }] },
      ],
    ] as const) {
      handlers = [answer(content, extra)];
      const r = await within(call(client({ LLM_MAX_RETRIES: '0' })), 4000);
      expect(r.value).toEqual(GOOD);
    }
  });

  it('counts content null with tool_calls, and a 2 MB reasoning, as invalid replies', async () => {
    handlers = [
      sendJson(200, {
        ...completion(null),
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: null,
              tool_calls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '{}' } }],
            },
            finish_reason: 'tool_calls',
          },
        ],
      }),
    ];
    const f = await failure(call(client({ LLM_MAX_RETRIES: '0' })));
    expect(f.message).toMatch(/the reply content is empty \(finish_reason=tool_calls\)/);

    handlers = [answer({ ...GOOD, reasoning: 'x'.repeat(2_000_000) })];
    const big = await failure(call(client({ LLM_MAX_RETRIES: '0' })));
    expect(big.message).toMatch(/reasoning: Too big/);
    expect(big.message.length).toBeLessThan(1000);
  });
});

describe('odd usage', () => {
  it('keeps usage within what the request allows: a server reporting 1e308 tokens neither stores them nor puts the budget in debt', async () => {
    const pacer = new Pacer(config({ GROQ_PLAN: 'developer', GROQ_TPM: '100000', GROQ_RPM: '1000', GROQ_RPD: '0', GROQ_TPD: '0' }));
    handlers = [
      answer(GOOD, { usage: { prompt_tokens: 1e308, completion_tokens: 1e12, prompt_tokens_details: { cached_tokens: 1e308 } } }),
      answer(GOOD),
    ];
    const c = client({}, { pacer });
    const r = await within(call(c), 4000);
    expect(r.value).toEqual(GOOD);
    expect(Number.isFinite(r.promptTokens)).toBe(true);
    expect(r.promptTokens).toBeLessThan(5000);
    expect(r.completionTokens).toBeLessThanOrEqual(1024 + 512);
    expect(r.cachedTokens).toBeLessThanOrEqual(r.promptTokens);
    const snap = await pacer.snapshot();
    expect(snap.remaining.tpm).toBeGreaterThan(90_000);
    // The next call starts at once.
    const t0 = Date.now();
    await within(call(c), 4000);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('counts usage that is negative, NaN, a string or missing as 0', async () => {
    for (const usage of [{ prompt_tokens: -5, completion_tokens: 'NaN' }, undefined, null, 'lots']) {
      handlers = [answer(GOOD, { usage })];
      const r = await within(call(client()), 4000);
      expect([r.promptTokens, r.completionTokens, r.cachedTokens, r.reasoningTokens]).toEqual([0, 0, 0, 0]);
    }
  });

  it('a reply without usage keeps its reservation in the budget (a proxy that strips usage does not make the budget under-count)', async () => {
    const env = { GROQ_PLAN: 'developer', GROQ_TPM: '100000', GROQ_RPM: '1000', GROQ_RPD: '0', GROQ_TPD: '0' };
    const remainingAfter = async (extra: Record<string, unknown>) => {
      const pacer = new Pacer(config(env));
      handlers = [answer(GOOD, extra)];
      await within(call(client({}, { pacer })), 4000);
      return (await pacer.snapshot()).remaining.tpm ?? Number.NaN;
    };
    const withUsage = await remainingAfter({});
    const without = await remainingAfter({ usage: undefined });
    // 60 tokens used are taken from the budget; without usage the whole estimate stays taken.
    expect(withUsage).toBeGreaterThan(100_000 - 100);
    expect(without).toBeLessThan(withUsage - 500);
  });

  it('plausibleUsage bounds each count by the request', () => {
    expect(plausibleUsage({ promptTokens: 1e308, completionTokens: 9e9, cachedTokens: 1e308, reasoningTokens: 9e9 }, 1536, 1000)).toEqual({
      promptTokens: 3048,
      completionTokens: 1536,
      cachedTokens: 3048,
      reasoningTokens: 1536,
    });
    const real = { promptTokens: 300, completionTokens: 120, cachedTokens: 200, reasoningTokens: 80 };
    expect(plausibleUsage(real, 1536, 1000)).toEqual(real);
  });

  it('a settlement that is no number leaves the budget usable', async () => {
    const pacer = new Pacer(config({ GROQ_PLAN: 'developer', GROQ_TPM: '10000', GROQ_RPM: '1000', GROQ_RPD: '0', GROQ_TPD: '0' }));
    const r = await pacer.acquire(1000, { deadline: Date.now() + 1000 });
    await pacer.settle(r, Number.NaN);
    const snap = await pacer.snapshot();
    expect(snap.remaining.tpm).toBeGreaterThanOrEqual(8900);
    await within(pacer.acquire(1000, { deadline: Date.now() + 500 }), 1000);
  });
});

describe('status codes Groq does not document, and 400 context length', () => {
  it('418 is a non-retried LlmBadRequest; 502 with an HTML page and 529 are counted server errors without the page', async () => {
    handlers = [sendJson(418, { error: { message: "I'm a teapot" } })];
    const t = await failure(call(client()));
    expect(t.type).toBe('LlmBadRequest');
    expect(t.nonRetryable).toBe(true);
    expect(seen).toHaveLength(1);

    handlers = [
      (_q, res) => {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<html><body><h1>502 Bad Gateway</h1>nginx</body></html>');
      },
      sendJson(529, { error: { message: 'overloaded' } }),
    ];
    seen = [];
    const f = await failure(call(client({ LLM_MAX_RETRIES: '1' })));
    expect(detailsOf(f)).toMatchObject({ lastType: 'LlmServerError', status: 529, calls: 2 });
    expect(logs.filter((l) => /status=502 next=retry/.test(l))).toHaveLength(1);
    expect(f.message).not.toContain('<html');
  });

  it("Groq's 400 context_length_exceeded is a non-retried LlmCapacity naming the model's context window and what to change", async () => {
    handlers = [
      sendJson(400, {
        error: {
          message: 'Please reduce the length of the messages or completion.',
          type: 'invalid_request_error',
          param: 'messages',
          code: 'context_length_exceeded',
        },
      }),
    ];
    const f = await failure(call(client({ LLM_MAX_RETRIES: '3' })));
    expect(f.type).toBe('LlmCapacity');
    expect(f.nonRetryable).toBe(true);
    expect(seen).toHaveLength(1);
    expect(f.message).toMatch(
      /^the request \(≈\d+ prompt tokens \+ a completion budget of 1,536\) does not fit the context window of model openai\/gpt-oss-20b \(HTTP 400 context_length_exceeded: Please reduce the length of the messages or completion\.\)/,
    );
    expect(f.message).toContain('shorten the judged texts');
    expect(f.message).toContain('GROQ_MODEL');
    expect(detailsOf(f)).toMatchObject({ status: 400, maxCompletionTokens: 1536 });

    // OpenAI-style wording without Groq's code.
    handlers = [
      sendJson(400, { error: { message: "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens." } }),
    ];
    expect((await failure(call(client()))).type).toBe('LlmCapacity');
  });

  it('a context overflow caused only by the doubled budget of the retry after a cut reply fails that call as LlmReplyTruncated', async () => {
    const cut = sendJson(200, {
      ...completion(''),
      choices: [{ index: 0, message: { role: 'assistant', content: '' }, finish_reason: 'length' }],
    });
    handlers = [
      cut,
      sendJson(400, { error: { message: 'Please reduce the length of the messages or completion.', code: 'context_length_exceeded' } }),
    ];
    const f = await failure(call(client()));
    expect(f.type).toBe('LlmReplyTruncated');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/retry's larger budget of 3,?072 tokens does not fit its context window/);
    expect(seen).toHaveLength(2);
  });
});

describe('retry-after and rate-limit headers', () => {
  it('reads Groq durations, refuses absurd or malformed values', () => {
    const h = (o: Record<string, string>) => new Headers(o);
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(retryAfterMsOf(h({ 'retry-after': '2m59.56s' }))).toBe(179_560);
    expect(retryAfterMsOf(h({ 'retry-after': '1h2m' }))).toBe(3_720_000);
    expect(retryAfterMsOf(h({ 'retry-after': '86400' }))).toBe(MAX_RETRY_AFTER_MS);
    expect(retryAfterMsOf(h({ 'retry-after': 'Wed, 01 Jan 2025 00:00:30 GMT' }), now)).toBe(30_000);
    for (const v of ['86401', '1e308', 'Infinity', '-1', '', '  ', 'soon', '1 2', 'Fri, 31 Dec 9999 23:59:59 GMT']) {
      expect(retryAfterMsOf(h({ 'retry-after': v }), now), v).toBeUndefined();
    }
    expect(retryAfterMsOf(h({ 'retry-after-ms': '1e308', 'retry-after': '3' }))).toBe(3000);
    expect(retryAfterMsOf(h({ 'retry-after-ms': '-5' }))).toBeUndefined();
  });

  it('a 429 with retry-after 1e308 backs off instead of failing with an infinite delay', async () => {
    handlers = [sendJson(429, {}, { 'retry-after': '1e308' }), sendJson(429, {}, { 'retry-after-ms': '1e308' }), answer(GOOD)];
    const r = await within(call(client({ LLM_MAX_WAIT: '60' }, { random: () => 0.1 })), 6000);
    expect(r.value).toEqual(GOOD);
    expect(logs.slice(0, 2).map((l) => /wait_ms=(\d+)/.exec(l)?.[1])).toEqual(['100', '200']);
  });

  it('a 503 whose retry-after passes LLM_MAX_WAIT fails at once, retryable with that delay, instead of sleeping a day', async () => {
    handlers = [sendJson(503, { error: { message: 'maintenance' } }, { 'retry-after': '86400' })];
    const started = Date.now();
    const f = await failure(call(client({ LLM_MAX_WAIT: '60', LLM_MAX_RETRIES: '3' })));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(f.type).toBe('LlmServerError');
    expect(f.nonRetryable).toBe(false);
    expect(Number(f.nextRetryDelay)).toBeGreaterThanOrEqual(86_400_000);
    expect(f.message).toMatch(
      /Groq server error \(HTTP 503\).*: maintenance; Groq asked to retry in 24h 0m, later than LLM_MAX_WAIT \(60s\) allows/,
    );
    expect(seen).toHaveLength(1);
  });

  it('a 503 with retry-after 1e308 retries after the usual backoff', async () => {
    handlers = [sendJson(503, {}, { 'retry-after': '1e308' }), answer(GOOD)];
    const r = await within(call(client()), 3000);
    expect(r.calls).toBe(2);
    expect(seen[1]! - seen[0]!).toBeLessThan(500);
  });

  it('429 with retry-after 0 again and again: the waits grow with the backoff, the server is not hammered', async () => {
    handlers = [...Array.from({ length: 4 }, () => sendJson(429, {}, { 'retry-after': '0' })), answer(GOOD)];
    const waits: number[] = [];
    const c = client({ LLM_MAX_WAIT: '600' }, { sleep: async (ms) => void waits.push(ms) });
    const r = await within(call(c), 4000);
    expect(r.calls).toBe(5);
    // retry-after 0 plus its jitter first (0.5 × 100 ms), then at least the backoff of 1 s × 2^n × 0.5.
    expect(waits).toEqual([50, 1000, 2000, 4000]);
  });

  it('a reset beyond its bucket counts as the period: a TPM never owes more than a minute, an RPD a day', () => {
    const caps = { rpm: 0, rpd: 1000, tpm: 60_000, tpd: 0 };
    const s: BudgetState = { caps, levels: { ...caps }, pausedUntil: Number.NEGATIVE_INFINITY, at: 0 };
    for (const reset of ['86400', '99999999999', '1000h']) {
      const o = observationOf(
        new Headers({
          'x-ratelimit-remaining-tokens': '0',
          'x-ratelimit-reset-tokens': reset,
          'x-ratelimit-remaining-requests': '0',
          'x-ratelimit-reset-requests': reset,
        }),
      )!;
      const after = corrected(s, o, 0);
      expect(waitFor(after, 1000).waitMs, reset).toBeLessThanOrEqual(DAY_MS);
      expect(after.levels.tpm).toBeGreaterThanOrEqual(-caps.tpm);
      expect(after.levels.rpd).toBeGreaterThanOrEqual(1 - caps.rpd);
    }
    const tokensOnly = corrected(
      s,
      observationOf(new Headers({ 'x-ratelimit-remaining-tokens': '0', 'x-ratelimit-reset-tokens': '86400' }))!,
      0,
    );
    expect(waitFor(tokensOnly, 1000).waitMs).toBeLessThanOrEqual(MINUTE_MS + 1000);
  });

  it('a limit header below one request or token is ignored; malformed ones change nothing', () => {
    const caps = { rpm: 0, rpd: 1000, tpm: 60_000, tpd: 0 };
    const s: BudgetState = { caps, levels: { ...caps }, pausedUntil: Number.NEGATIVE_INFINITY, at: 0 };
    for (const v of ['0.001', '0', '-5', 'abc', '', '1e-300']) {
      const o = observationOf(
        new Headers({ 'x-ratelimit-limit-tokens': v, 'x-ratelimit-limit-requests': v, 'x-ratelimit-remaining-tokens': 'NaN' }),
      );
      const after = o ? corrected(s, o, 0) : s;
      expect(after.caps, v).toEqual(caps);
      expect(after.levels, v).toEqual(caps);
    }
  });
});

describe('the API key in what a server sends back', () => {
  it('a key echoed at the clipping point of a server message does not leak even in part', async () => {
    for (const [status, pad] of [
      [401, 290],
      [500, 285],
      [400, 295],
      [429, 292],
    ] as const) {
      handlers = [sendJson(status, { error: { message: `${'x'.repeat(pad)}${KEY}` } })];
      logs = [];
      const f = await failure(call(client({ LLM_MAX_RETRIES: '0', LLM_MAX_WAIT: '1' }, { random: () => 1 })), 8000);
      noKey(f);
    }
  });
});

describe('schemas other than the judge', () => {
  it('a fenced reply to a json_object call is taken too', async () => {
    handlers = [answer('```\n{"a":"b"}\n```')];
    const c = client({ GROQ_MODEL: 'llama-3.1-8b-instant' });
    const r = await within(c.json({ system: 's', user: 'u', schema: z.object({ a: z.string() }) }), 3000);
    expect(r.value).toEqual({ a: 'b' });
  });
});

// Replies of reasoning models served without a reasoning parser: the reasoning comes first in
// the content, in `<think>…</think>` (Groq's `reasoning_format: raw`,
// https://console.groq.com/docs/reasoning; vLLM without `--reasoning-parser`; the judge and
// `judge eval` take any OpenAI-compatible base URL).
// Pins, and how it failed before: every such reply was "not valid JSON (Unexpected token '<')",
// so each call was retried and every check of every interaction failed.
describe('a reasoning block before the answer', () => {
  const thinking = 'The user wants {"score": 1}? No: the claim "X is Y" is in the context. </thinking> so score 0.2';
  const cut = (content: string) =>
    sendJson(200, completion(content, { choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'length' }] }));
  for (const [name, reply] of [
    ['JSON after it', `<think>\n${thinking}\n</think>\n\n${JSON.stringify(GOOD)}`],
    ['a fenced answer after it', `<think>${thinking}</think>\n\`\`\`json\n${JSON.stringify(GOOD)}\n\`\`\``],
    ['blanks and another case', `\n  <THINK>${thinking}</Think>${JSON.stringify(GOOD)}`],
    ['2 MB of reasoning (read in linear time)', `<think>${'<think> '.repeat(250_000)}</think>${JSON.stringify(GOOD)}`],
  ] as const) {
    it(`is skipped: ${name}`, async () => {
      handlers = [answer(reply)];
      const r = await within(call(client({ LLM_MAX_RETRIES: '0' })), 4000);
      expect(r.value).toEqual(GOOD);
    });
  }

  it('reasoning with no answer after it is an invalid reply saying so; cut at the limit inside it, a truncated one', async () => {
    handlers = [answer(`<think>${thinking}</think>  \n`)];
    expect((await failure(call(client({ LLM_MAX_RETRIES: '0' })))).message).toMatch(/holds only the model's reasoning/);
    // Retried once with a larger budget, then said so.
    handlers = [cut(`<think>${thinking}`)];
    expect((await failure(call(client({ LLM_MAX_RETRIES: '0' })))).message).toMatch(/was cut off at its completion limit/);
  });

  it('a <think> that is not at the start is part of the answer (no verdict is taken from after it)', async () => {
    handlers = [answer(`Here is my verdict <think>x</think> ${JSON.stringify(GOOD)}`)];
    expect((await failure(call(client({ LLM_MAX_RETRIES: '0' })))).message).toMatch(/not valid JSON/);
  });
});
