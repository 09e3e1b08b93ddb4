/**
 * The LLM budget shared by workers through PostgreSQL (the suite's database): two pools and two
 * pacers stand for two workers drawing from one Groq limit.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { LlmClient } from '../../activities/llm/client.js';
import { Pacer, refilled } from '../../activities/llm/pacer.js';
import { PostgresBudgetStore } from '../../activities/storage/postgres/llm-budget.js';
import { createPool, migrate, type Db } from '../../activities/storage/postgres/db.js';
import { loadConfig, type Config } from '../../common/config.js';
import { checkResultSchemas } from '../../common/types.js';
import { renderJudgePrompt } from '../../domain/judge/prompts.js';
import { startGroqStub, type GroqStub } from '../helpers/groq-stub.js';
import { testEnv } from '../helpers/env.js';

let dbA: Db;
let dbB: Db;

beforeAll(async () => {
  dbA = createPool(testEnv().databaseUrl);
  dbB = createPool(testEnv().databaseUrl);
  await migrate(dbA);
});
afterAll(async () => {
  await Promise.allSettled([dbA?.end(), dbB?.end()]);
});

const cfg = (env: Record<string, string>): Config =>
  loadConfig({ GROQ_API_KEY: 'gsk_test_pacer_0123456789', GROQ_PLAN: 'unlimited', ...env });

/** Two workers' pacers on one budget. */
function twoWorkers(env: Record<string, string>, timeScale = 1) {
  const key = `test-${randomUUID()}`;
  const c = cfg(env);
  return {
    a: new Pacer(c, { db: dbA, key, timeScale }),
    b: new Pacer(c, { db: dbB, key, timeScale }),
  };
}

async function settled<T>(ps: Array<Promise<T>>) {
  const r = await Promise.allSettled(ps);
  return {
    ok: r.filter((x) => x.status === 'fulfilled').length,
    failed: r.filter((x): x is PromiseRejectedResult => x.status === 'rejected').map((x) => x.reason as ApplicationFailure),
  };
}

describe('LLM budget shared through PostgreSQL', () => {
  it('never grants more than the limit to two workers racing for it (one atomic reservation each)', async () => {
    // 10 requests per minute, on a clock so slow that nothing refills during the test.
    const { a, b } = twoWorkers({ GROQ_RPM: '10' }, 0.0001);
    const deadline = Date.now() + 400;
    const calls = Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).acquire(100, { deadline }));
    const r = await settled(calls);
    expect(r.ok).toBe(10);
    expect(r.failed).toHaveLength(30);
    for (const f of r.failed) {
      expect(f).toBeInstanceOf(ApplicationFailure);
      expect(f.type).toBe('LlmRateLimited');
    }
    expect((await b.snapshot()).remaining.rpm).toBe(0);
  });

  it('a pause asked for by one worker holds the other', async () => {
    const { a, b } = twoWorkers({ GROQ_PLAN: 'developer' });
    await a.acquire(100, { deadline: Date.now() + 10_000 });
    await a.pause(1200);
    const t0 = Date.now();
    await b.acquire(100, { deadline: Date.now() + 10_000 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1100);
  });

  it("one worker's reply headers correct the budget of both", async () => {
    const { a, b } = twoWorkers({ GROQ_PLAN: 'developer' });
    await a.acquire(100, { deadline: Date.now() + 10_000 });
    expect((await b.snapshot()).limits.tpm).toBe(250_000); // both running, with the plan's figures
    await a.observe(
      new Headers({ 'x-ratelimit-limit-tokens': '8000', 'x-ratelimit-remaining-tokens': '100', 'x-ratelimit-reset-tokens': '59s' }),
    );
    const s = await b.snapshot();
    expect(s.limits.tpm).toBe(8000);
    expect(s.remaining.tpm).toBeLessThanOrEqual(110);
    // 1,000 tokens need about 900 refilled at 8,000 a minute: ~6.8 s, beyond a 1 s deadline.
    const f = await b.acquire(1000, { deadline: Date.now() + 1000 }).catch((e: unknown) => e as ApplicationFailure);
    expect(f).toBeInstanceOf(ApplicationFailure);
    expect((f as ApplicationFailure).type).toBe('LlmRateLimited');
    expect(Number((f as ApplicationFailure).nextRetryDelay)).toBeGreaterThan(5000);
  });

  it('what one worker gives back, the other can spend at once', async () => {
    const { a, b } = twoWorkers({ GROQ_TPM: '8000' }, 0.0001);
    const r = await a.acquire(5000, { deadline: Date.now() + 5000 });
    await expect(b.acquire(5000, { deadline: Date.now() + 200 })).rejects.toMatchObject({ type: 'LlmRateLimited' });
    await a.settle(r, 1000);
    await b.acquire(5000, { deadline: Date.now() + 200 });
    expect((await a.snapshot()).remaining.tpm).toBe(2000);
  });

  it("a reply's headers applied while another call settles do not undo what that call gave back", async () => {
    const key = `test-${randomUUID()}`;
    // The clock barely moves: levels change only by what the test does.
    const slow = { rpm: 6e8, rpd: 8.64e11, tpm: 6e8, tpd: 8.64e11 };
    const store = new PostgresBudgetStore(dbA, slow);
    await store.init(key, { rpm: 0, rpd: 1000, tpm: 8000, tpd: 200_000 });
    expect((await store.reserve(key, 5000)).granted).toBe(true);
    // The other call's settle lands between the correction's read and its write.
    const read = store.read.bind(store);
    store.read = async (k: string) => {
      const s = await read(k);
      await store.adjustTokens(k, 4000);
      return s;
    };
    // Headers that lower nothing: the request budget has room, the TPM more than the level.
    await store.correct(key, {
      requests: { limit: 1000, remaining: 999, resetMs: 86 },
      tokens: { limit: 8000, remaining: 7900, resetMs: 750 },
    });
    store.read = read;
    const levels = refilled(await store.read(key), Date.now(), slow);
    expect(levels.tpm).toBeCloseTo(7000, 0);
    expect(levels.tpd).toBeCloseTo(199_000, 0);
    // Headers that do lower a bucket still do.
    await store.correct(key, { tokens: { limit: 8000, remaining: 300, resetMs: 750 } });
    expect(refilled(await store.read(key), Date.now(), slow).tpm).toBeCloseTo(300, 0);
  });

  it("a daily cap spent by one worker is the other's LlmCapacity, naming the limit and what to set", async () => {
    const { a, b } = twoWorkers({ GROQ_PLAN: 'free', GROQ_TPD: '10000' });
    await a.acquire(7000, { deadline: Date.now() + 5000 });
    const f = await b.acquire(5000, { deadline: Date.now() + 3_600_000 }).catch((e: unknown) => e as ApplicationFailure);
    expect(f).toBeInstanceOf(ApplicationFailure);
    expect((f as ApplicationFailure).type).toBe('LlmCapacity');
    expect((f as ApplicationFailure).message).toContain('tokens-per-day limit (TPD 10,000 for plan free)');
    expect((f as ApplicationFailure).message).toContain('GROQ_TPD');
    // The 3,000 tokens left are spread over the rest of the UTC day: 15 minutes get their share.
    const restOfDayMinutes = (86_400_000 - (Date.now() % 86_400_000)) / 60_000;
    const plan = await b.budgetFor(15);
    expect(plan.tokens).toBeLessThanOrEqual(Math.ceil(3000 * Math.min(1, 15 / Math.max(1, restOfDayMinutes - 1))));
    expect(plan.limitedBy.tokens).toBe('tpd');
  });

  describe('two LLM clients against a stub enforcing the same limit', () => {
    let stub: GroqStub;
    beforeAll(async () => {
      stub = await startGroqStub();
    });
    afterAll(async () => {
      await stub?.close();
    });

    const judgeMany = (clients: LlmClient[], n: number) => {
      const { system, user } = renderJudgePrompt('quality', { prompt: 'What is 2+2?', response: '4' });
      return Promise.all(
        Array.from({ length: n }, (_, i) =>
          clients[i % clients.length]!.json({ system, user, schema: checkResultSchemas.quality, schemaName: 'quality' }),
        ),
      );
    };

    it('paced together, the stub (almost) never answers 429; paced apart, the two overrun it', async () => {
      // 6 requests per minute on a clock 20 times faster: 2 per second. (60 times faster made
      // the event loop's delays on a loaded machine, magnified as much, look like early requests.)
      const env = { GROQ_BASE_URL: stub.baseURL, GROQ_RPM: '6', LLM_MAX_RETRIES: '0' };
      stub.configure({ limits: { rpm: 6 }, timeScale: 20 });
      stub.clear();
      const { a, b } = twoWorkers(env, 20);
      const quiet = { log: () => undefined, random: () => 0.05 };
      const shared = [new LlmClient(cfg(env), { ...quiet, pacer: a }), new LlmClient(cfg(env), { ...quiet, pacer: b })];
      const t0 = Date.now();
      const results = await judgeMany(shared, 18);
      expect(results).toHaveLength(18);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(5400); // 6 at once, then 12 at 2 per second
      expect(stub.stats().answered).toBe(18);
      // Only network jitter, magnified 20 times by the scaled clock, can make one arrive early.
      expect(stub.stats().rateLimited.RPM ?? 0).toBeLessThanOrEqual(2);

      stub.configure({ limits: { rpm: 6 } });
      stub.clear();
      const apart = [
        new LlmClient(cfg(env), { ...quiet, pacer: new Pacer(cfg(env), { timeScale: 20 }) }),
        new LlmClient(cfg(env), { ...quiet, pacer: new Pacer(cfg(env), { timeScale: 20 }) }),
      ];
      await judgeMany(apart, 18);
      expect(stub.stats().answered).toBe(18); // the 429s were waited out, never counted
      expect(stub.stats().rateLimited.RPM).toBeGreaterThanOrEqual(4);
    });
  });
});
