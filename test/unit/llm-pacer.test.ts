/**
 * The LLM pacer on its in-process store with a virtual clock (waits pass instantly), the reading
 * of Groq's rate-limit headers, and the configuration of plans and limits. The sharing between
 * workers through PostgreSQL is in test/integration/llm-pacer.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { MemoryBudgetStore, observationOf, Pacer, parseGroqDuration, type BudgetStore } from '../../activities/llm/pacer.js';
import { ConfigError, loadConfig, type Config } from '../../common/config.js';
import { PLAN_LIMITS } from '../../common/plan-limits.js';
import { failureOf } from '../helpers/async.js';

const T0 = Date.parse('2026-03-02T12:00:00Z'); // noon UTC: half the day left

/** A pacer on a virtual clock: sleeping advances the clock. */
function virtual(env: Record<string, string>, opts: { store?: BudgetStore } = {}) {
  let now = T0;
  const slept: number[] = [];
  const cfg = loadConfig({ GROQ_API_KEY: 'gsk_x', ...env });
  const pacer = new Pacer(cfg, {
    now: () => now,
    random: () => 0,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
    store: opts.store ?? new MemoryBudgetStore(() => now),
  });
  return {
    pacer,
    cfg,
    slept,
    get now() {
      return now;
    },
    advance(ms: number) {
      now += ms;
    },
    deadline: (ms = 2 * 3600_000) => now + ms,
  };
}

/** A store that fails the test when touched. */
const untouchable: BudgetStore = new Proxy({} as BudgetStore, {
  get: () => () => {
    throw new Error('the store must not be used');
  },
});

describe('Pacer', () => {
  it('costs nothing without limits: no store, no wait, no figures', async () => {
    const v = virtual({ GROQ_PLAN: 'unlimited' }, { store: untouchable });
    expect(v.pacer.enabled).toBe(false);
    for (let i = 0; i < 100; i++) await v.pacer.acquire(1_000_000, { deadline: v.deadline() });
    await v.pacer.observe(new Headers({ 'x-ratelimit-remaining-tokens': '0' }));
    await v.pacer.pause(10_000);
    await v.pacer.settle({ tokens: 10, paced: false }, 5);
    expect(v.slept).toEqual([]);
    expect(await v.pacer.budgetFor(15)).toEqual({ minutes: 15, requests: null, tokens: null, limitedBy: { requests: null, tokens: null } });
    expect((await v.pacer.snapshot()).limits).toEqual({ rpm: null, rpd: null, tpm: null, tpd: null });
  });

  it('limits of 0 switch single limits off, and all of them off', () => {
    expect(new Pacer(loadConfig({ GROQ_PLAN: 'free', GROQ_RPM: '0', GROQ_RPD: '0', GROQ_TPM: '0', GROQ_TPD: '0' })).enabled).toBe(false);
    const p = new Pacer(loadConfig({ GROQ_PLAN: 'free', GROQ_TPD: '0' }));
    expect(p.enabled).toBe(true);
    expect(p.limits).toEqual({ rpm: 30, rpd: 1000, tpm: 8000, tpd: 0 });
  });

  it('paces requests per minute: a burst of the capacity, then one every 60/RPM seconds', async () => {
    const v = virtual({ GROQ_PLAN: 'unlimited', GROQ_RPM: '3' });
    for (let i = 0; i < 3; i++) await v.pacer.acquire(100, { deadline: v.deadline() });
    expect(v.slept).toEqual([]);
    await v.pacer.acquire(100, { deadline: v.deadline() });
    expect(v.now - T0).toBe(20_000);
    await v.pacer.acquire(100, { deadline: v.deadline() });
    expect(v.now - T0).toBe(40_000);
  });

  it('a call waiting for tokens starts as soon as a call of this process gives back enough, not when its sleep ends', async () => {
    // A real clock: 8,000 tokens a minute refill 4,000 in 30 s, so the waiter would sleep 15 s
    // (its longest sleep) before looking again.
    const pacer = new Pacer(loadConfig({ GROQ_API_KEY: 'gsk_x', GROQ_TPM: '8000' }));
    const first = await pacer.acquire(7000, { deadline: Date.now() + 60_000 });
    const t0 = Date.now();
    const second = pacer.acquire(5000, { deadline: Date.now() + 60_000 });
    await new Promise((r) => setTimeout(r, 100));
    await pacer.settle(first, 1000);
    await second;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect((await pacer.snapshot()).remaining.tpm).toBeLessThan(2100);
  });

  it('paces tokens per minute by the estimate, and gives back what the call did not use', async () => {
    const v = virtual({ GROQ_PLAN: 'unlimited', GROQ_TPM: '8000' });
    const r = await v.pacer.acquire(5000, { deadline: v.deadline() });
    // Without settling, 5,000 more need 2,000 refilled: 15 s at 8,000 per minute.
    await v.pacer.settle(r, 1000); // the call used 1,000: 4,000 come back
    await v.pacer.acquire(6000, { deadline: v.deadline() });
    expect(v.slept).toEqual([]);
    const r2 = await v.pacer.acquire(1000, { deadline: v.deadline() }); // 1,000 left: fits
    expect(v.slept).toEqual([]);
    await v.pacer.settle(r2, 3000); // used more than estimated: 2,000 more are taken
    await v.pacer.acquire(1000, { deadline: v.deadline() });
    // -2,000 → 1,000 needs 3,000 refilled: 22.5 s
    expect(v.now - T0).toBe(22_500);
  });

  it('refuses at once a request larger than the TPM, naming the limit, the plan and what to set', async () => {
    const v = virtual({ GROQ_PLAN: 'free' });
    const f = await failureOf(v.pacer.acquire(9000, { deadline: v.deadline() }));
    expect(f.type).toBe('LlmCapacity');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('the request (≈9,000 tokens) is larger than the tokens-per-minute limit 8,000 of plan free');
    expect(f.message).toContain('GROQ_TPM / GROQ_PLAN');
    expect(v.slept).toEqual([]);
  });

  it('a daily cap that does not refill within the maximum wait is LlmCapacity naming RPD or TPD', async () => {
    const v = virtual({ GROQ_PLAN: 'free', GROQ_TPD: '10000' });
    await v.pacer.settle(await v.pacer.acquire(7000, { deadline: v.deadline() }), 7000);
    const f = await failureOf(v.pacer.acquire(6000, { deadline: v.deadline() }));
    expect(f.type).toBe('LlmCapacity');
    expect(f.message).toMatch(/the tokens-per-day limit \(TPD 10,000 for plan free\) is spent: the next call fits in 7h 12m/);
    expect(f.message).toContain('GROQ_TPD');
    expect(f.message).toContain('GROQ_PLAN');
    expect(f.message).toContain('LLM_MAX_WAIT');

    const r = virtual({ GROQ_PLAN: 'free', GROQ_RPD: '2' });
    await r.pacer.acquire(10, { deadline: r.deadline() });
    await r.pacer.acquire(10, { deadline: r.deadline() });
    const g = await failureOf(r.pacer.acquire(10, { deadline: r.deadline() }));
    expect(g.type).toBe('LlmCapacity');
    expect(g.message).toContain('requests-per-day limit (RPD 2 for plan free)');
    expect(g.message).toContain('GROQ_RPD');
  });

  it('a call short of the daily cap waits for calls in flight to settle, and fails once they have used it', async () => {
    const v = virtual({ GROQ_PLAN: 'unlimited', GROQ_TPD: '10000' });
    // Two calls in flight reserve their whole completion budget...
    const a = await v.pacer.acquire(4000, { deadline: v.deadline() });
    const b = await v.pacer.acquire(4000, { deadline: v.deadline() });
    // ...a third does not fit now, but will once they settle for what they used.
    const third = v.pacer.acquire(4000, { deadline: v.deadline() });
    await v.pacer.settle(a, 1000);
    await expect(third).resolves.toMatchObject({ tokens: 4000, paced: true });
    expect(v.now - T0).toBeLessThan(1000);
    // With b and the third in flight, a fourth waits for them; they spend all they took: capacity.
    const fourth = failureOf(v.pacer.acquire(4000, { deadline: v.deadline() }));
    await v.pacer.settle(b, 4000);
    expect((await fourth).type).toBe('LlmCapacity');
    // It waited no longer than two LLM timeouts for the call still in flight.
    expect(v.now - T0).toBeLessThanOrEqual(2 * v.cfg.llm.timeoutSec * 1000 + 1000);
  });

  it('waits for a daily refill that fits within the maximum wait', async () => {
    const v = virtual({ GROQ_PLAN: 'unlimited', GROQ_RPD: '1440' }); // one per minute
    for (let i = 0; i < 1440; i++) await v.pacer.acquire(1, { deadline: v.deadline() });
    await v.pacer.acquire(1, { deadline: v.deadline() });
    expect(v.now - T0).toBe(60_000);
  });

  it('a minute limit spent beyond the deadline is a retryable LlmRateLimited with the wait', async () => {
    const v = virtual({ GROQ_PLAN: 'unlimited', GROQ_RPM: '1' });
    await v.pacer.acquire(1, { deadline: v.deadline() });
    const f = await failureOf(v.pacer.acquire(1, { deadline: v.deadline(10_000) }));
    expect(f.type).toBe('LlmRateLimited');
    expect(f.nonRetryable).toBe(false);
    expect(f.nextRetryDelay).toBe(60_000);
  });

  it('a pause (after a 429 or 498) holds every caller', async () => {
    const v = virtual({ GROQ_PLAN: 'developer' });
    await v.pacer.pause(7_000);
    expect((await v.pacer.snapshot()).pausedUntil).toBe(new Date(T0 + 7_000).toISOString());
    await v.pacer.acquire(100, { deadline: v.deadline() });
    expect(v.now - T0).toBe(7_000);
  });

  it('corrects itself from x-ratelimit-* headers: lower limits, what remains, and the reset of an exhausted limit', async () => {
    const v = virtual({ GROQ_PLAN: 'developer' }); // 250K TPM, 500K RPD configured
    await v.pacer.observe(
      new Headers({
        'x-ratelimit-limit-requests': '1000',
        'x-ratelimit-remaining-requests': '998',
        'x-ratelimit-reset-requests': '2m52.8s',
        'x-ratelimit-limit-tokens': '8000',
        'x-ratelimit-remaining-tokens': '1500',
        'x-ratelimit-reset-tokens': '48.75s',
      }),
    );
    const snap = await v.pacer.snapshot();
    expect(snap.limits).toEqual({ rpm: 1000, rpd: 1000, tpm: 8000, tpd: null });
    expect(snap.remaining).toMatchObject({ rpd: 998, tpm: 1500 });
    // 2,000 tokens need 500 more: 3.75 s at 8,000 per minute.
    await v.pacer.acquire(2000, { deadline: v.deadline() });
    expect(v.now - T0).toBe(3_750);

    // Nothing left: the next request waits for Groq's reset.
    await v.pacer.observe(new Headers({ 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1m26.4s' }));
    const t = v.now;
    await v.pacer.acquire(10, { deadline: v.deadline() });
    expect(v.now - t).toBe(86_400);
  });

  it('budgetFor spreads the rest of the day evenly and is bounded by the minute limits', async () => {
    const v = virtual({ GROQ_PLAN: 'free' });
    // Noon: 720 minutes left; 15 minutes get 15/720 of the day's 1,000 requests and 200,000 tokens.
    expect(await v.pacer.budgetFor(15)).toEqual({
      minutes: 15,
      requests: 20,
      tokens: 4166,
      limitedBy: { requests: 'rpd', tokens: 'tpd' },
    });
    const dev = virtual({ GROQ_PLAN: 'developer' });
    // No daily token cap: the TPM bounds tokens (level + 15 minutes of refill).
    expect(await dev.pacer.budgetFor(15)).toMatchObject({
      requests: 10_416,
      tokens: 16 * 250_000,
      limitedBy: { requests: 'rpd', tokens: 'tpm' },
    });
    const tight = virtual({ GROQ_PLAN: 'unlimited', GROQ_RPM: '2', GROQ_RPD: '100000' });
    expect(await tight.pacer.budgetFor(15)).toMatchObject({ requests: 32, limitedBy: { requests: 'rpm', tokens: null }, tokens: null });
    // On a clock 10 times as fast, 1.5 minutes of the wall clock are 15 of the limits'.
    const fast = new Pacer(loadConfig({ GROQ_API_KEY: 'gsk_x', GROQ_PLAN: 'unlimited', GROQ_TPM: '8000' }), { timeScale: 10 });
    expect(await fast.budgetFor(1.5)).toMatchObject({ tokens: 16 * 8000, limitedBy: { tokens: 'tpm' } });
  });

  it('snapshot reports limits and what remains', async () => {
    const v = virtual({ GROQ_PLAN: 'free' });
    await v.pacer.acquire(1000, { deadline: v.deadline() });
    const s = await v.pacer.snapshot();
    expect(s).toMatchObject({
      plan: 'free',
      limits: { rpm: 30, rpd: 1000, tpm: 8000, tpd: 200_000 },
      remaining: { rpm: 29, rpd: 999, tpm: 7000, tpd: 199_000 },
      pausedUntil: null,
    });
    expect(s.key).toBe('openai/gpt-oss-20b@api.groq.com');
  });

  it('stops waiting when the signal aborts', async () => {
    const cfg = loadConfig({ GROQ_PLAN: 'unlimited', GROQ_RPM: '1' });
    const pacer = new Pacer(cfg);
    await pacer.acquire(1, { deadline: Date.now() + 120_000 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('cancelled')), 50);
    await expect(pacer.acquire(1, { deadline: Date.now() + 120_000, signal: ac.signal })).rejects.toThrow('cancelled');
  });
});

describe("Groq's rate-limit headers", () => {
  it('reads durations as Groq writes them', () => {
    expect(parseGroqDuration('2m59.56s')).toBeCloseTo(179_560);
    expect(parseGroqDuration('7.66s')).toBeCloseTo(7_660);
    expect(parseGroqDuration('866ms')).toBe(866);
    expect(parseGroqDuration('1h0m0s')).toBe(3_600_000);
    expect(parseGroqDuration('12')).toBe(12_000);
    expect(parseGroqDuration('soon')).toBeUndefined();
    expect(parseGroqDuration('')).toBeUndefined();
    expect(parseGroqDuration(null)).toBeUndefined();
  });

  it('reads the requests (RPD) and tokens (TPM) headers', () => {
    expect(
      observationOf(
        new Headers({
          'x-ratelimit-limit-requests': '14400',
          'x-ratelimit-remaining-requests': '14370',
          'x-ratelimit-reset-requests': '2m59.56s',
          'x-ratelimit-limit-tokens': '18000',
          'x-ratelimit-remaining-tokens': '17997',
          'x-ratelimit-reset-tokens': '7.66s',
        }),
      ),
    ).toEqual({
      requests: { limit: 14400, remaining: 14370, resetMs: expect.closeTo(179_560) },
      tokens: { limit: 18000, remaining: 17997, resetMs: expect.closeTo(7_660) },
    });
    expect(observationOf(new Headers({}))).toBeUndefined();
    expect(observationOf(undefined)).toBeUndefined();
  });
});

describe('configuration of plans and limits', () => {
  const base = (env: Record<string, string> = {}): Config => loadConfig(env);

  it('defaults: developer plan, low reasoning effort, combined judging, two hours of waiting', () => {
    const c = base();
    expect(c.groq.plan).toBe('developer');
    expect(c.groq.limits).toEqual(PLAN_LIMITS.developer);
    expect(c.groq.serviceTier).toBeUndefined();
    expect(c.llm).toMatchObject({ reasoningEffort: 'low', judgeMode: 'combined', maxWaitSec: 7200 });
  });

  it('presets per plan, each limit overridable (K/M suffixes too)', () => {
    expect(base({ GROQ_PLAN: 'free' }).groq.limits).toEqual({ rpm: 30, rpd: 1000, tpm: 8000, tpd: 200_000 });
    expect(base({ GROQ_PLAN: 'FREE', GROQ_TPM: '12K', GROQ_TPD: '1.5M' }).groq.limits).toEqual({
      rpm: 30,
      rpd: 1000,
      tpm: 12_000,
      tpd: 1_500_000,
    });
    expect(base({ GROQ_PLAN: 'unlimited', GROQ_RPM: '60' }).groq.limits).toEqual({ rpm: 60, rpd: 0, tpm: 0, tpd: 0 });
  });

  it('reads the other new variables', () => {
    const c = base({ LLM_REASONING_EFFORT: 'high', GROQ_SERVICE_TIER: 'flex', LLM_JUDGE_MODE: 'separate', LLM_MAX_WAIT: '600' });
    expect(c.llm).toMatchObject({ reasoningEffort: 'high', judgeMode: 'separate', maxWaitSec: 600 });
    expect(c.groq.serviceTier).toBe('flex');
  });

  it.each([
    [{ GROQ_PLAN: 'pro' }, /GROQ_PLAN must be one of free, developer, unlimited \(got 'pro'\)/],
    [{ GROQ_TPM: '-5' }, /GROQ_TPM must be a whole number of at least 0/],
    [{ GROQ_RPD: 'lots' }, /GROQ_RPD must be a whole number/],
    [{ GROQ_RPM: '2.5' }, /GROQ_RPM must be a whole number/],
    [{ LLM_REASONING_EFFORT: 'max' }, /LLM_REASONING_EFFORT must be one of low, medium, high \(got 'max'\)/],
    [{ GROQ_SERVICE_TIER: 'performance' }, /GROQ_SERVICE_TIER must be one of on_demand, flex, auto/],
    [{ LLM_JUDGE_MODE: 'both' }, /LLM_JUDGE_MODE must be one of combined, separate/],
    [{ LLM_MAX_WAIT: '0' }, /LLM_MAX_WAIT must be a number between 1 and/],
  ])('rejects %o naming the variable and the allowed values', (env, msg) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(msg);
  });
});
