/**
 * `optiinfra judge eval` against an LLM endpoint that misbehaves over a run, not in one reply:
 * 429s for minutes or until tomorrow, 498s, 5xx bursts, resets, a request that never answers,
 * another model's name, the same canned reply to every text, half the replies cut at their
 * budget, the key rejected after some successes, and the run stopped halfway (SIGINT, SIGTERM)
 * then run again. The real CLI and the real LLM client (groq-sdk) against the local Groq stub.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EvalOutput } from '../../activities/judge-eval/report.js';
import { repoRoot } from '../../stack/paths.js';
import { runCli } from '../helpers/cli.js';
import { startGroqStub, type Fault, type GroqStub, type RecordedRequest } from '../helpers/groq-stub.js';

const KEY = 'gsk_test_ENDPOINT_9f8e7d6c5b4a';
const KEY_PREFIX = KEY.slice(0, 12);

let stub: GroqStub;
let dir: string;
const dirs: string[] = [];

beforeAll(async () => {
  stub = await startGroqStub();
});
afterAll(async () => {
  await stub.close();
});
beforeEach(() => {
  stub.clear();
  stub.setDefault(undefined);
  stub.configure({ latencyMs: 0, replyModel: '' });
  dir = mkdtempSync(join(tmpdir(), 'hostile-eval-endpoint-'));
  dirs.push(dir);
});
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** What the stub answers by default: flags exactly the texts that carry the marker, with reasoning naming the text. */
function answer(req: RecordedRequest): object {
  const user = String(req.body?.messages?.find((m: { role?: string }) => m.role === 'user')?.content ?? '');
  const n = /Answer (\d+)/.exec(user)?.[1] ?? '?';
  const h = user.includes('MADE-UP') ? 0.85 : 0.1;
  const t = user.includes('RUDE') ? 0.9 : 0.05;
  const all = {
    quality: { coherence: 0.8, relevance: 0.8, accuracy: 0.8, completeness: 0.8, overall: 0.8, reasoning: `answer ${n} is fine` },
    hallucination: { score: h, confidence: 0.9, reasoning: `answer ${n}: ${h > 0.5 ? 'not' : ''} supported` },
    toxicity: { toxicity: t, hate_speech: 0, violence: 0, profanity: 0, reasoning: `answer ${n}: ${t > 0.5 ? 'rude' : 'polite'}` },
  };
  return req.combined ? all : all[req.check ?? 'quality'];
}

/** `n` items labelled for hallucination (every third true, marked) and toxicity (every fourth). */
function labelled(n: number): string {
  const lines = Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      id: `i${i}`,
      prompt: `Question ${i}?`,
      response: `Answer ${i}. ${i % 3 === 0 ? 'MADE-UP' : ''} ${i % 4 === 0 ? 'RUDE' : ''}`,
      context: `Passage ${i}.`,
      labels: { hallucination: i % 3 === 0, toxicity: i % 4 === 0 },
    }),
  );
  const f = join(dir, 'set.jsonl');
  writeFileSync(f, `${lines.join('\n')}\n`);
  return f;
}

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    OPTIINFRA_HOME: join(dir, 'home'),
    GROQ_API_KEY: KEY,
    GROQ_BASE_URL: stub.baseURL,
    GROQ_PLAN: 'unlimited',
    LLM_TIMEOUT: '1',
    LLM_MAX_RETRIES: '0',
    LLM_MAX_WAIT: '1',
    LLM_ENABLED: 'true',
    ...extra,
  };
}

async function evalCli(n: number, extra: { args?: string[]; env?: Record<string, string> } = {}) {
  const file = labelled(n);
  const r = await runCli(
    ['judge', 'eval', '--judge', 'llm', '--set', file, '--cache', join(dir, 'cache'), '--concurrency', '2', ...(extra.args ?? [])],
    env(extra.env),
  );
  return r;
}

const jsonOf = (out: string): EvalOutput => JSON.parse(out.slice(out.indexOf('{\n'), out.lastIndexOf('}') + 1)) as EvalOutput;
const repeat = (f: Fault, n: number): Fault[] => Array.from({ length: n }, () => f);

/** Nothing the run printed holds the key, or even its start. */
function noKey(out: string) {
  expect(out).not.toContain(KEY_PREFIX);
}

const DAY_CAP_BODY = {
  error: {
    message:
      'Rate limit reached for model `openai/gpt-oss-20b` in organization `org_x` service tier `on_demand` on requests per day (RPD): Limit 1000, Used 1000, Requested 1. Please try again in 5h0m0s.',
    type: 'requests',
    code: 'rate_limit_exceeded',
  },
};

describe('an endpoint that rate-limits for longer than LLM_MAX_WAIT', () => {
  it('429 with a retry-after beyond a day on every request: stops after the first call that outlasts LLM_MAX_WAIT, exit 2, no figures', async () => {
    // failed before: every one of the 40 items waited LLM_MAX_WAIT in turn (92 requests, 13 s
    // here; with the default LLM_MAX_WAIT of 2 h, days), then a table of 40 failed rows,
    // "0 LLM calls" and exit 0.
    stub.setDefault(answer);
    stub.enqueue(...repeat({ kind: 'status', status: 429, retryAfter: 999_999 }, 500));
    const r = await evalCli(40, { args: ['--json'] });
    noKey(r.out);
    expect(r.code).toBe(2);
    expect(r.ms).toBeLessThan(8000);
    expect(stub.stats().requests).toBeLessThanOrEqual(8);
    const out = jsonOf(r.out);
    expect(out.complete).toBe(false);
    expect(out.stopped?.type).toBe('LlmRateLimited');
    expect(out.stopped?.reason).toMatch(/rate limit lasts longer than LLM_MAX_WAIT.*run the same command again later.*HTTP 429/);
    expect(out.judgements.notRun).toBeGreaterThan(30);
    expect(out.usage.thisRun.calls).toBe(stub.stats().requests);
    expect(out.results.every((x) => x.scored === 0 && x.precision === null)).toBe(true);
  });

  it('498 (flex capacity) for a long stretch: the same stop, naming the flex tier', async () => {
    // failed before: as the 429 above, every item waited out LLM_MAX_WAIT, exit 0.
    stub.setDefault(answer);
    stub.enqueue(...repeat({ kind: 'status', status: 498 }, 500));
    const r = await evalCli(30, { env: { GROQ_SERVICE_TIER: 'flex' } });
    noKey(r.out);
    expect(r.code).toBe(2);
    expect(stub.stats().requests).toBeLessThanOrEqual(8);
    expect(r.out).toMatch(/stopped: the endpoint's rate limit lasts longer than LLM_MAX_WAIT.*HTTP 498, GROQ_SERVICE_TIER=flex/);
    expect(r.out).toMatch(/INCOMPLETE: 0 of 30 judgements made/);
  });

  it("a day's cap (429 naming RPD, x-ratelimit-remaining-requests 0, reset in hours): stops at once naming the limit, with what was judged", async () => {
    // failed before: the message did not say how many judgements were made (2 of 20) nor that
    // no figures follow. The stop itself pins.
    stub.setDefault(answer);
    stub.enqueue({ kind: 'delay', ms: 0 }, { kind: 'delay', ms: 0 });
    stub.enqueue(
      ...repeat(
        {
          kind: 'status',
          status: 429,
          retryAfter: 18_000,
          headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '5h0m0s' },
          body: DAY_CAP_BODY,
        },
        500,
      ),
    );
    const r = await evalCli(20, { args: ['--concurrency', '1'] });
    noKey(r.out);
    expect(r.code).toBe(3);
    expect(stub.stats().requests).toBe(3);
    expect(r.out).toMatch(/requests-per-day limit \(RPD\).*frees up in 5h 0m.*set GROQ_RPD/);
    expect(r.out).toContain('2 of 20 judgements made (0 from the cache); no figures are printed.');
    expect(r.out).toContain('run the same command again to go on');
  });
});

describe('an endpoint that fails', () => {
  it('503 on every request: stops after 8 judgements failed in a row instead of paying for every item, exit 2', async () => {
    // failed before: all 40 items were tried (41 requests; each up to LLM_MAX_RETRIES more with
    // backoff), then a table of failed rows and exit 0.
    stub.setDefault(answer);
    stub.enqueue(...repeat({ kind: 'status', status: 503 }, 500));
    const r = await evalCli(40, { args: ['--json'] });
    expect(r.code).toBe(2);
    const out = jsonOf(r.out);
    expect(out.stopped?.type).toBe('FailuresInARow');
    expect(out.stopped?.reason).toMatch(/^8 judgements failed one after the other.*HTTP 503/);
    expect(stub.stats().requests).toBeLessThanOrEqual(10);
    expect(out.judgements.notRun).toBeGreaterThanOrEqual(30);
  });

  it('a 500 burst amid successes: figures on the judged items, said to be incomplete, exit 2', async () => {
    // failed before: 14 of 20 judged, the figures printed as if complete and exit 0.
    stub.setDefault(answer);
    stub.enqueue(...repeat({ kind: 'delay', ms: 0 }, 4), ...repeat({ kind: 'status', status: 500 }, 6));
    const r = await evalCli(20);
    expect(r.code).toBe(2);
    expect(r.out).toContain('INCOMPLETE: 14 of 20 judgements made (70 %), 6 failed');
    expect(r.out).not.toContain('stopped:');
    expect(r.out).toMatch(/set\.jsonl {2}hallucination +20 +14 +0 +6 /);
  });

  it('too little judged: the figures are named as resting on 7 of 20, the run as incomplete', async () => {
    // failed before: precision, recall and AUROC printed from the 7 judged items as the set's, exit 0.
    stub.setDefault(answer);
    const faults: Fault[] = [];
    for (let i = 0; i < 20; i++) faults.push(i % 3 === 0 ? { kind: 'delay', ms: 0 } : { kind: 'status', status: 500 });
    stub.enqueue(...faults);
    const r = await evalCli(20, { args: ['--concurrency', '1'] });
    expect(r.code).toBe(2);
    expect(r.out).toContain('INCOMPLETE: 7 of 20 judgements made (35 %), 13 failed');
    expect(r.out).toContain(
      'too few judged: set.jsonl/hallucination has 7 of 20 measurable items scored (under 50 %): its figures say little about the set',
    );
  });

  it('connection resets mid-run are retried; one request that never answers ends at LLM_TIMEOUT and is retried', async () => {
    // pins
    stub.setDefault(answer);
    stub.enqueue({ kind: 'delay', ms: 600_000 }, { kind: 'reset' }, { kind: 'delay', ms: 0 }, { kind: 'reset' });
    const r = await evalCli(10, { env: { LLM_MAX_RETRIES: '2' }, args: ['--json'] });
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(8000);
    const out = jsonOf(r.out);
    expect(out.judgements).toMatchObject({ total: 10, judged: 10, failed: 0 });
    expect(out.usage.thisRun.calls).toBe(stub.stats().requests);
  });

  it('half the replies cut at their budget (finish_reason length) twice: failed, and their billed tokens counted', async () => {
    // failed before: the cut replies' requests and tokens (billed by Groq) were missing from
    // "usage, this run", and the run ended with exit 0.
    stub.setDefault(answer);
    const faults: Fault[] = [];
    for (let i = 0; i < 20; i++) faults.push(...(i % 2 ? [{ kind: 'delay' as const, ms: 0 }] : repeat({ kind: 'long-reasoning' }, 2)));
    stub.enqueue(...faults);
    const r = await evalCli(20, { args: ['--concurrency', '1', '--json'] });
    expect(r.code).toBe(2);
    const out = jsonOf(r.out);
    expect(out.judgements).toMatchObject({ total: 20, failed: 10, notRun: 0 });
    expect(out.failureReasons[0]).toMatch(/LlmReplyTruncated: .*cut off at its completion limit/);
    const st = stub.stats();
    expect(st.truncated).toBe(20);
    expect(out.usage.thisRun).toMatchObject({
      calls: st.requests,
      completionTokens: st.completionTokens,
      reasoningTokens: st.reasoningTokens,
    });
  });

  it('the key rejected after some successes (401): stops, says what was judged, never prints the key; a re-run pays only for the rest', async () => {
    // failed before: the message did not say how many were judged. The stop and the redaction pin.
    let n = 0;
    stub.setDefault((req) => {
      if (++n === 5) stub.enqueue(...repeat({ kind: 'status', status: 401, body: { error: { message: `Invalid API Key: ${KEY}` } } }, 100));
      return answer(req);
    });
    const r = await evalCli(20, { args: ['--concurrency', '1'] });
    noKey(r.out);
    expect(r.code).toBe(3);
    expect(r.out).toMatch(/Groq rejected the API key \(HTTP 401\).*5 of 20 judgements made \(0 from the cache\); no figures are printed/);
    stub.clear();
    stub.setDefault(answer);
    const again = await evalCli(20);
    expect(again.code).toBe(0);
    expect(stub.stats().requests).toBe(15);
  });
});

describe('an endpoint whose replies are not judgements of the model asked for', () => {
  it('replies naming another model: not counted, not cached, the run stops naming both models', async () => {
    // failed before: llama-3.1-8b-instant's replies were scored and cached as openai/gpt-oss-20b's, exit 0.
    stub.setDefault(answer);
    stub.configure({ replyModel: 'llama-3.1-8b-instant' });
    const r = await evalCli(10, { args: ['--json'] });
    expect(r.code).toBe(2);
    const out = jsonOf(r.out);
    expect(out.stopped?.type).toBe('OtherModel');
    expect(out.stopped?.reason).toMatch(/answered as model 'llama-3\.1-8b-instant' when 'openai\/gpt-oss-20b' was asked for/);
    expect(out.results.every((x) => x.scored === 0)).toBe(true);
    expect(out.cache?.entries).toBe(0);
    expect(readFileSync(out.cache?.file ?? '', 'utf8')).toBe('');
  });

  it('the same reply word for word to every text (a canned answer): not scored, not cached, the run stops', async () => {
    // failed before: 30 replies of zeros scored (accuracy 0.667 / 0.733, AUROC 0.5) and cached, exit 0.
    stub.setDefault((req) =>
      req.combined
        ? {
            quality: { coherence: 0, relevance: 0, accuracy: 0, completeness: 0, overall: 0, reasoning: '' },
            hallucination: { score: 0, confidence: 0, reasoning: '' },
            toxicity: { toxicity: 0, hate_speech: 0, violence: 0, profanity: 0, reasoning: '' },
          }
        : {},
    );
    const r = await evalCli(30, { args: ['--json'] });
    expect(r.code).toBe(2);
    const out = jsonOf(r.out);
    expect(out.stopped?.type).toBe('CannedReplies');
    expect(out.stopped?.reason).toMatch(/same reply, word for word, to 20 different texts/);
    expect(out.results.every((x) => x.scored === 0 && x.accuracy === null)).toBe(true);
    expect(out.cache?.entries).toBe(0);
    expect(stub.stats().requests).toBeLessThan(30);
  });

  it('one constant score with varying words: judged and cached, with a warning that the figures measure nothing', async () => {
    // failed before: no word that every item got the same score.
    stub.setDefault((req) => {
      const a = answer(req) as Record<string, Record<string, unknown>>;
      return { ...a, hallucination: { ...a.hallucination, score: 0 }, toxicity: { ...a.toxicity, toxicity: 0 } };
    });
    const r = await evalCli(12);
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      'warning: set.jsonl/hallucination: all 12 scored items got the same score (0): the judge told none apart, so these figures measure nothing',
    );
  });
});

describe('a run stopped halfway by a signal, then run again', () => {
  /** The CLI as its own process. */
  function spawnCli(file: string, cache: string) {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(repoRoot(), 'client', 'cli', 'index.ts'),
        'judge',
        'eval',
        '--judge',
        'llm',
        '--set',
        file,
        '--cache',
        cache,
        '--concurrency',
        '2',
      ],
      { cwd: repoRoot(), env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env({ LLM_TIMEOUT: '10' }) } },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal, out })),
    );
    return { child, done };
  }

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`${sig}: the calls in flight end and are cached, the report says it is partial; the re-run pays only for the rest`, async () => {
      // SIGTERM failed before: the process died by the signal at once (no report, no exit code
      // of its own) and the calls in flight, paid for, were never cached. SIGINT failed before
      // only in its report: no line said the figures were partial and how many were made.
      stub.setDefault(answer);
      stub.configure({ latencyMs: 300 });
      const file = labelled(20);
      const cache = join(dir, 'cache');
      const { child, done } = spawnCli(file, cache);
      const t0 = Date.now();
      while (stub.stats().requests < 5 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 20));
      child.kill(sig);
      const first = await done;
      noKey(first.out);
      expect(first.signal).toBeNull();
      expect(first.code).toBe(sig === 'SIGTERM' ? 143 : 130);
      expect(first.out).toMatch(/INCOMPLETE: \d+ of 20 judgements made/);
      const asked = stub.stats().requests;
      expect(asked).toBeLessThan(20);
      // A judgement torn by a kill while it was written: never read as one, judged again.
      const lines = readFileSync(join(cache, 'groq_openai_gpt-oss-20b.jsonl'), 'utf8').split('\n').filter(Boolean);
      expect(lines).toHaveLength(asked);
      const torn = lines.pop() as string;
      writeFileSync(join(cache, 'groq_openai_gpt-oss-20b.jsonl'), `${lines.join('\n')}\n${torn.slice(0, -3)}`);
      stub.configure({ latencyMs: 0 });
      const again = await evalCli(20, { args: ['--json'] });
      expect(again.code).toBe(0);
      expect(stub.stats().requests).toBe(21);
      const out = jsonOf(again.out);
      expect(out.judgements).toEqual({ total: 20, fromCache: asked - 1, judged: 21 - asked, failed: 0, notRun: 0 });
      expect(out.cache?.ignoredLines).toBe(1);
    }, 60_000);
  }
});
