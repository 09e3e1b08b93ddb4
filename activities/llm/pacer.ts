/**
 * Pacing of every LLM call (judge and agents) by Groq's four limits together: requests and tokens
 * per minute and per day (https://console.groq.com/docs/rate-limits: limits apply per
 * organisation and model; whichever is reached first answers 429).
 *
 * - Four token buckets, refilled continuously: RPM and TPM over a minute, RPD and TPD over a day.
 *   A call takes one request and its estimated tokens (prompt characters / 4 + the completion
 *   budget: Groq admits a request by the tokens it could use) from every limited bucket at once,
 *   all or nothing; afterwards the difference to the reported usage is given back or taken
 *   (cached prompt tokens do not count toward the limits).
 * - The buckets live in PostgreSQL (activities/storage/postgres/llm-budget.ts), one row per model
 *   and endpoint, so every worker on the same DATABASE_URL draws from the same budget; without a
 *   database they live in this process.
 * - Replies correct the buckets downwards: `x-ratelimit-remaining-requests` is what is left of
 *   the RPD and `x-ratelimit-remaining-tokens` of the TPM (`x-ratelimit-limit-*` lowers the
 *   capacities); with nothing left, every caller waits for `x-ratelimit-reset-*`. A 429 or 498
 *   pauses every caller on every worker for the wait it asked for.
 * - A call that cannot get budget waits; a daily cap that does not refill within LLM_MAX_WAIT is
 *   an `LlmCapacity` failure naming the limit, the plan and the variable to set.
 * - No limits (GROQ_PLAN=unlimited, or all of GROQ_RPM/RPD/TPM/TPD 0): nothing is stored or read.
 */
import type { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../../common/config.js';
import type { GroqPlan, RateLimits } from '../../common/plan-limits.js';
import { failure } from '../../common/failures.js';
import type { Db } from '../storage/postgres/db.js';
import { PostgresBudgetStore } from '../storage/postgres/llm-budget.js';
import {
  BUCKETS,
  MemoryBudgetStore,
  needOf,
  observationOf,
  PERIOD_MS,
  refilled,
  type Bucket,
  type BudgetState,
  type BudgetStore,
} from './budget.js';

export * from './budget.js';

const LIMIT_NAMES: Record<Bucket, { short: string; long: string; env: string }> = {
  rpm: { short: 'RPM', long: 'requests-per-minute', env: 'GROQ_RPM' },
  rpd: { short: 'RPD', long: 'requests-per-day', env: 'GROQ_RPD' },
  tpm: { short: 'TPM', long: 'tokens-per-minute', env: 'GROQ_TPM' },
  tpd: { short: 'TPD', long: 'tokens-per-day', env: 'GROQ_TPD' },
};

export function limitName(b: Bucket): { short: string; long: string; env: string } {
  return LIMIT_NAMES[b];
}

/** A duration for messages: 850ms, 7.7s, 3m 5s, 2h 10m. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1).replace(/\.0$/, '') : Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.round(s - m * 60)}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${m - h * 60}m`;
}

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');

export interface PacerSnapshot {
  key: string;
  plan: GroqPlan;
  /** The limits in force (after header corrections); null: not limited. */
  limits: Record<Bucket, number | null>;
  /** What is left now; null: not limited. */
  remaining: Record<Bucket, number | null>;
  /** ISO time before which no call starts, if paused. */
  pausedUntil: string | null;
  at: string;
}

export interface PacerBudget {
  minutes: number;
  /** Requests that may start over the next `minutes`; null: not limited. */
  requests: number | null;
  /** Tokens that may be spent over the next `minutes`; null: not limited. */
  tokens: number | null;
  /** The limit that bounds each figure. */
  limitedBy: { requests: Bucket | null; tokens: Bucket | null };
}

export interface Reservation {
  tokens: number;
  /** Whether the budget was taken from a store (false: no limits configured). */
  paced: boolean;
}

export interface PacerOptions {
  /** PostgreSQL of the product: budgets shared by all workers. Absent: budgets in this process. */
  db?: Db;
  /** Another store (tests). */
  store?: BudgetStore;
  /** The budget's name; default: model and endpoint host. */
  key?: string;
  now?: () => number;
  /**
   * Minutes and days pass this many times faster (benchmarks against the Groq stub's scaled
   * clock; default 1).
   */
  timeScale?: number;
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Sleep `ms`, ending early with the signal's reason when it aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const t = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    const onAbort = () => {
      clearTimeout(t);
      reject(abortReason(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new Error(typeof r === 'string' ? r : 'the LLM call was cancelled');
}

/** Waits are re-checked at least this often (the buckets may have been corrected meanwhile). */
const MAX_SLEEP_MS = 15_000;

export class Pacer {
  readonly key: string;
  readonly plan: GroqPlan;
  readonly limits: RateLimits;
  /** False when no limit is configured: the pacer then does nothing at all. */
  readonly enabled: boolean;
  private readonly store: BudgetStore;
  private readonly periods: Record<Bucket, number>;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private ready: Promise<void> | undefined;
  /**
   * Tokens this process has reserved for calls not yet settled. Reservations count a call's whole
   * completion budget and settle for less, so a call short of budget while others are in flight
   * waits for them to settle instead of failing on a daily cap they will give back.
   */
  private inFlightTokens = 0;
  private readonly settled = new WeakSet<Reservation>();
  /**
   * Callers of this process waiting for budget, first come first: a settle that gives tokens back
   * wakes the first to look again. A waiter's sleep is computed from the levels when it looked,
   * and reservations count whole completion budgets, so without this a waiter sleeps through
   * most of the tokens given back meanwhile (measured with 8 callers on a scaled free plan: 88 %
   * of the TPM spent, 93 % with the wake-up; the rest is the reservation left in the bucket at
   * the end).
   */
  private readonly waiters = new Set<() => void>();
  /** How long a call waits for others in flight to settle (their own timeout bounds them). */
  private readonly settleWaitMs: number;

  constructor(cfg: Config, opts: PacerOptions = {}) {
    this.plan = cfg.groq.plan;
    this.limits = { ...cfg.groq.limits };
    this.enabled = BUCKETS.some((b) => this.limits[b] > 0);
    this.key = opts.key ?? budgetKey(cfg);
    this.settleWaitMs = 2 * cfg.llm.timeoutSec * 1000;
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.sleep = opts.sleep ?? abortableSleep;
    const scale = opts.timeScale && opts.timeScale > 0 ? opts.timeScale : 1;
    this.periods = { rpm: PERIOD_MS.rpm / scale, rpd: PERIOD_MS.rpd / scale, tpm: PERIOD_MS.tpm / scale, tpd: PERIOD_MS.tpd / scale };
    this.store = opts.store ?? (opts.db ? new PostgresBudgetStore(opts.db, this.periods) : new MemoryBudgetStore(this.now, this.periods));
  }

  private init(): Promise<void> {
    this.ready ??= this.store.init(this.key, this.limits).catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  /**
   * A failure for a request that can never fit (more tokens than a per-minute or per-day
   * capacity), else undefined.
   */
  tooLarge(tokens: number, caps: RateLimits = this.limits): ApplicationFailure | undefined {
    for (const b of ['tpm', 'tpd'] as const) {
      if (caps[b] > 0 && tokens > caps[b]) return capacityTooSmall(b, tokens, caps[b], this.plan);
    }
    return undefined;
  }

  /**
   * Take budget for one request of about `tokens` tokens, waiting as long as needed but not past
   * `deadline` (epoch ms). Throws `LlmCapacity` (request larger than a limit, or a daily cap
   * that does not refill in time) or `LlmRateLimited` (minute limits or pauses beyond the deadline).
   */
  async acquire(tokens: number, opts: { deadline: number; signal?: AbortSignal }): Promise<Reservation> {
    const need = Math.max(1, Math.ceil(tokens));
    if (!this.enabled) return { tokens: need, paced: false };
    const big = this.tooLarge(need);
    if (big) throw big;
    await this.init();
    const settleBy = Math.min(opts.deadline, this.now() + this.settleWaitMs);
    for (;;) {
      if (opts.signal?.aborted) throw abortReason(opts.signal);
      const { granted, state } = await this.store.reserve(this.key, need);
      if (granted) {
        this.inFlightTokens += need;
        return { tokens: need, paced: true };
      }
      const big2 = this.tooLarge(need, state.caps);
      if (big2) throw big2;
      const { waitMs, bucket } = waitFor(state, need, this.periods);
      const left = opts.deadline - this.now();
      if (waitMs > left) {
        const settleLeft = settleBy - this.now();
        if (settleLeft > 0 && this.fitsOnceSettled(state, need, left)) {
          await this.nap(Math.min(settleLeft, 200 + this.random() * 300), opts.signal);
          continue;
        }
        throw this.tooLong(bucket, waitMs, state);
      }
      const jitter = this.random() * Math.min(1000, waitMs * 0.1 + 50);
      await this.nap(Math.min(MAX_SLEEP_MS, waitMs + jitter), opts.signal);
    }
  }

  /** Sleep `ms`, or less when a settle of this process wakes this caller first. */
  private async nap(ms: number, signal?: AbortSignal): Promise<void> {
    const own = new AbortController();
    const onAbort = () => own.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let woken = false;
    const wake = () => {
      woken = true;
      own.abort();
    };
    this.waiters.add(wake);
    try {
      await this.sleep(ms, own.signal);
    } catch (e) {
      if (!woken || signal?.aborted) throw e;
    } finally {
      this.waiters.delete(wake);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Whether `need` would fit in time if every call this process has in flight gave back its whole reservation. */
  private fitsOnceSettled(state: BudgetState, need: number, left: number): boolean {
    if (this.inFlightTokens <= 0) return false;
    const levels = refilled(state, state.at, this.periods);
    levels.tpm += this.inFlightTokens;
    levels.tpd += this.inFlightTokens;
    return waitFor({ ...state, levels }, need, this.periods).waitMs <= left;
  }

  private tooLong(bucket: Bucket | 'pause', waitMs: number, state: BudgetState): ApplicationFailure {
    if (bucket === 'rpd' || bucket === 'tpd') {
      const n = LIMIT_NAMES[bucket];
      return failure(
        'LlmCapacity',
        `the ${n.long} limit (${n.short} ${fmtInt(state.caps[bucket])} for plan ${this.plan}) is spent: the next call fits in ${formatDuration(waitMs)}, later than LLM_MAX_WAIT allows. ` +
          `Set ${n.env} to your organisation's limit (console.groq.com/settings/limits) or GROQ_PLAN to your plan, sample fewer interactions, or raise LLM_MAX_WAIT`,
        { details: [{ limit: n.short, capacity: state.caps[bucket], waitMs, plan: this.plan }] },
      );
    }
    const what = bucket === 'pause' ? 'Groq asked every caller to wait' : `the ${LIMIT_NAMES[bucket].long} limit is spent`;
    return failure(
      'LlmRateLimited',
      `${what} (${formatDuration(waitMs)}), longer than LLM_MAX_WAIT allows; the call will be retried later`,
      { nextRetryDelay: Math.ceil(waitMs), details: [{ waitMs, limit: bucket === 'pause' ? undefined : LIMIT_NAMES[bucket].short }] },
    );
  }

  /** After a call: give back (or take) the difference between the estimate and the usage. */
  async settle(r: Reservation, usedTokens: number): Promise<void> {
    if (this.settled.has(r)) return;
    this.settled.add(r);
    if (r.paced) this.inFlightTokens = Math.max(0, this.inFlightTokens - r.tokens);
    if (!r.paced || !(this.limits.tpm > 0 || this.limits.tpd > 0)) return;
    // A usage that is no number settles nothing back: NaN in a bucket would never fit again.
    const used = Number.isFinite(usedTokens) ? Math.max(0, Math.round(usedTokens)) : r.tokens;
    const delta = r.tokens - used;
    if (delta !== 0) await this.store.adjustTokens(this.key, delta);
    if (delta > 0) {
      const first = this.waiters.values().next();
      if (!first.done) {
        this.waiters.delete(first.value);
        first.value();
      }
    }
  }

  /** Apply a reply's `x-ratelimit-*` headers. */
  async observe(headers: { get(name: string): string | null } | undefined): Promise<void> {
    if (!this.enabled) return;
    const o = observationOf(headers);
    if (!o) return;
    await this.init();
    await this.store.correct(this.key, o);
  }

  /** Every caller on every worker waits `ms` (after a 429 or 498). */
  async pause(ms: number): Promise<void> {
    if (!this.enabled || !(ms > 0)) return;
    await this.init();
    await this.store.pause(this.key, Math.ceil(ms));
  }

  async snapshot(): Promise<PacerSnapshot> {
    const nulls = { rpm: null, rpd: null, tpm: null, tpd: null };
    if (!this.enabled) {
      return {
        key: this.key,
        plan: this.plan,
        limits: { ...nulls },
        remaining: { ...nulls },
        pausedUntil: null,
        at: new Date(this.now()).toISOString(),
      };
    }
    await this.init();
    const s = await this.store.read(this.key);
    const levels = refilled(s, s.at, this.periods);
    const limits: Record<Bucket, number | null> = { ...nulls };
    const remaining: Record<Bucket, number | null> = { ...nulls };
    for (const b of BUCKETS) {
      if (s.caps[b] > 0) {
        limits[b] = s.caps[b];
        remaining[b] = Math.max(0, Math.floor(levels[b]));
      }
    }
    return {
      key: this.key,
      plan: this.plan,
      limits,
      remaining,
      pausedUntil: s.pausedUntil > s.at ? new Date(s.pausedUntil).toISOString() : null,
      at: new Date(s.at).toISOString(),
    };
  }

  /**
   * How many requests and tokens may be spent over the next `minutes` without spending the day's
   * budget early: the per-minute buckets' level plus their refill over the period, and the day's
   * remaining budget spread evenly over the rest of the UTC day; the smaller of the two.
   * `minutes` are of the wall clock (a cycle's window): on a scaled clock the limits' minutes
   * pass `timeScale` times as many.
   */
  async budgetFor(minutes: number): Promise<PacerBudget> {
    const m = Math.max(0, minutes);
    if (!this.enabled) return { minutes: m, requests: null, tokens: null, limitedBy: { requests: null, tokens: null } };
    await this.init();
    const s = await this.store.read(this.key);
    const levels = refilled(s, s.at, this.periods);
    const day = this.periods.rpd;
    const minute = this.periods.rpm;
    const sinceMidnight = s.at % day;
    const restOfDayMs = Math.max(minute, day - sinceMidnight);
    const share = Math.min(1, (m * PERIOD_MS.rpm) / restOfDayMs);
    /** Minutes of the limits in the wall clock's `m`. */
    const limitMinutes = (m * PERIOD_MS.rpm) / minute;
    const pick = (minute: Bucket, day: Bucket): [number | null, Bucket | null] => {
      const options: Array<[number, Bucket]> = [];
      if (s.caps[minute] > 0) options.push([Math.max(0, levels[minute]) + s.caps[minute] * limitMinutes, minute]);
      if (s.caps[day] > 0) options.push([Math.max(0, levels[day]) * share, day]);
      if (!options.length) return [null, null];
      const best = options.reduce((a, b) => (b[0] < a[0] ? b : a));
      return [Math.floor(best[0]), best[1]];
    };
    const [requests, rBy] = pick('rpm', 'rpd');
    const [tokens, tBy] = pick('tpm', 'tpd');
    return { minutes: m, requests, tokens, limitedBy: { requests: rBy, tokens: tBy } };
  }
}

/** The budget's name: one per model and endpoint (Groq limits per organisation and model). */
export function budgetKey(cfg: Config): string {
  let host = 'api.groq.com';
  try {
    if (cfg.groq.baseURL) host = new URL(cfg.groq.baseURL).host;
  } catch {
    // keep the default
  }
  return `${cfg.groq.model}@${host}`;
}

/** How long until `need` tokens and one request fit, and which limit (or the pause) decides. */
export function waitFor(
  s: BudgetState,
  need: number,
  periods: Record<Bucket, number> = PERIOD_MS,
): { waitMs: number; bucket: Bucket | 'pause' } {
  let waitMs = Math.max(0, s.pausedUntil - s.at);
  let bucket: Bucket | 'pause' = 'pause';
  const levels = refilled(s, s.at, periods);
  for (const b of BUCKETS) {
    const cap = s.caps[b];
    if (cap <= 0) continue;
    const short = needOf(b, need) - levels[b];
    if (short <= 0) continue;
    const w = (short * periods[b]) / cap;
    if (w > waitMs) {
      waitMs = w;
      bucket = b;
    }
  }
  return { waitMs: Math.max(1, Math.ceil(waitMs)), bucket };
}

/** `LlmCapacity` for a request larger than a token limit (what Groq answers with 413). */
export function capacityTooSmall(b: 'tpm' | 'tpd', tokens: number, capacity: number, plan: GroqPlan): ApplicationFailure {
  const n = LIMIT_NAMES[b];
  return failure(
    'LlmCapacity',
    `the request (≈${fmtInt(tokens)} tokens) is larger than the ${n.long} limit ${fmtInt(capacity)} of plan ${plan}: ` +
      `set ${n.env} / GROQ_PLAN to your organisation's limits, or lower the text budget (shorter texts, a smaller answer budget, or a lower LLM_REASONING_EFFORT)`,
    { details: [{ limit: n.short, capacity, requestedTokens: tokens, plan }] },
  );
}
