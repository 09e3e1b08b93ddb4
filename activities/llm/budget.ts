/**
 * The bucket arithmetic of the LLM pacer (activities/llm/pacer.ts), shared by its two stores:
 * in this process (below) and in PostgreSQL (activities/storage/postgres/llm-budget.ts). Also
 * the reading of Groq's `x-ratelimit-*` headers (https://console.groq.com/docs/rate-limits).
 */
import type { RateLimits } from '../../common/plan-limits.js';

export type Bucket = keyof RateLimits;
export const BUCKETS: readonly Bucket[] = ['rpm', 'rpd', 'tpm', 'tpd'];
export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;
export const PERIOD_MS: Record<Bucket, number> = { rpm: MINUTE_MS, rpd: DAY_MS, tpm: MINUTE_MS, tpd: DAY_MS };

/** The buckets of one key as stored: capacities (0: not limited), levels at `at`, a shared pause. */
export interface BudgetState {
  caps: RateLimits;
  levels: RateLimits;
  /** Epoch ms before which nobody may start a call (after a 429/498 or an exhausted header). */
  pausedUntil: number;
  /** Epoch ms of the store's clock the levels refer to. */
  at: number;
}

/** What one reply's `x-ratelimit-*` headers say (Groq: requests = RPD, tokens = TPM). */
export interface LimitObservation {
  requests?: { limit?: number; remaining?: number; resetMs?: number };
  tokens?: { limit?: number; remaining?: number; resetMs?: number };
}

/**
 * Where the buckets live. Every operation refills all four buckets to the store's clock first,
 * so the levels always refer to one instant.
 */
export interface BudgetStore {
  /**
   * Create the key's buckets full, or give existing ones the configured capacities (a starting
   * worker re-applies the configuration; the next reply's headers lower it again if Groq's
   * limits are lower).
   */
  init(key: string, caps: RateLimits): Promise<void>;
  /**
   * Take one request and `tokens` tokens from every limited bucket, all or nothing, unless
   * paused. Granted: the state after; not granted: the state now (nothing taken).
   */
  reserve(key: string, tokens: number): Promise<{ granted: boolean; state: BudgetState }>;
  /** Give tokens back (positive) or take more (negative) from the TPM and TPD buckets. */
  adjustTokens(key: string, delta: number): Promise<void>;
  /** Lower levels and capacities to what a reply's headers say. */
  correct(key: string, o: LimitObservation): Promise<void>;
  /** Nobody starts a call for `ms` from now (a longer pause already set stays). */
  pause(key: string, ms: number): Promise<void>;
  read(key: string): Promise<BudgetState>;
}

/** The levels of `s` at `now`: each bucket refilled at capacity per period, never above capacity. */
export function refilled(s: BudgetState, now: number, periods: Record<Bucket, number> = PERIOD_MS): RateLimits {
  const dt = Math.max(0, now - s.at);
  const out = { ...s.levels };
  for (const b of BUCKETS) {
    const cap = s.caps[b];
    out[b] = cap > 0 ? Math.min(cap, s.levels[b] + (cap * dt) / periods[b]) : 0;
  }
  return out;
}

/** Whether one request of `tokens` tokens fits the levels. */
export function fits(caps: RateLimits, levels: RateLimits, tokens: number): boolean {
  return BUCKETS.every((b) => caps[b] <= 0 || levels[b] >= needOf(b, tokens));
}

/** What one request of `tokens` tokens takes from bucket `b`. */
export function needOf(b: Bucket, tokens: number): number {
  return b === 'rpm' || b === 'rpd' ? 1 : tokens;
}

/**
 * The state after applying a reply's headers (shared by the in-memory and PostgreSQL stores):
 * a lower `limit` lowers the capacity, `remaining` caps the level, and nothing remaining with a
 * `reset` leaves the bucket in debt so that the next request fits only when Groq says it does.
 */
export function corrected(s: BudgetState, o: LimitObservation, now: number, periods: Record<Bucket, number> = PERIOD_MS): BudgetState {
  const levels = refilled(s, now, periods);
  const caps = { ...s.caps };
  const apply = (b: Bucket, h: LimitObservation['requests']) => {
    if (!h || caps[b] <= 0) return;
    // A limit below one request or token is no limit Groq has (a proxy's or a garbled header).
    if (h.limit !== undefined && h.limit >= 1) caps[b] = Math.min(caps[b], h.limit);
    if (h.remaining !== undefined && h.remaining <= 0 && h.resetMs !== undefined && h.resetMs > 0) {
      // Spent: the next request (or the first token) is there when Groq's reset says. A bucket
      // refills within its period, so a reset beyond it (86400 for the TPM, 1e14) counts as the
      // period: a debt no refill repays would stop every call for good.
      const first = b === 'rpd' || b === 'rpm' ? 1 : 0;
      const resetMs = Math.min(h.resetMs, periods[b]);
      levels[b] = Math.min(levels[b], first - (caps[b] * resetMs) / periods[b]);
    } else if (h.remaining !== undefined && h.remaining >= 0) {
      levels[b] = Math.min(levels[b], h.remaining);
    }
    levels[b] = Math.min(levels[b], caps[b]);
  };
  apply('rpd', o.requests);
  apply('tpm', o.tokens);
  return { caps, levels, pausedUntil: s.pausedUntil, at: now };
}

/** Buckets in this process (no database, or tests with an injected clock). */
export class MemoryBudgetStore implements BudgetStore {
  private readonly rows = new Map<string, BudgetState>();
  constructor(
    private readonly now: () => number = Date.now,
    private readonly periods: Record<Bucket, number> = PERIOD_MS,
  ) {}

  private row(key: string): BudgetState {
    const r = this.rows.get(key);
    if (!r) throw new Error(`no LLM budget for '${key}'`);
    return r;
  }

  async init(key: string, caps: RateLimits): Promise<void> {
    const now = this.now();
    const old = this.rows.get(key);
    if (!old) {
      this.rows.set(key, { caps: { ...caps }, levels: { ...caps }, pausedUntil: -Infinity, at: now });
      return;
    }
    const levels = refilled(old, now, this.periods);
    for (const b of BUCKETS) levels[b] = old.caps[b] <= 0 ? caps[b] : Math.min(levels[b], caps[b]);
    this.rows.set(key, { caps: { ...caps }, levels, pausedUntil: old.pausedUntil, at: now });
  }

  async reserve(key: string, tokens: number): Promise<{ granted: boolean; state: BudgetState }> {
    const now = this.now();
    const r = this.row(key);
    const levels = refilled(r, now, this.periods);
    const granted = r.pausedUntil <= now && fits(r.caps, levels, tokens);
    if (granted) for (const b of BUCKETS) if (r.caps[b] > 0) levels[b] -= needOf(b, tokens);
    const state = { caps: r.caps, levels, pausedUntil: r.pausedUntil, at: now };
    this.rows.set(key, state);
    return { granted, state: { ...state, levels: { ...levels } } };
  }

  async adjustTokens(key: string, delta: number): Promise<void> {
    const now = this.now();
    const r = this.row(key);
    const levels = refilled(r, now, this.periods);
    for (const b of ['tpm', 'tpd'] as const) if (r.caps[b] > 0) levels[b] = Math.min(r.caps[b], levels[b] + delta);
    this.rows.set(key, { ...r, levels, at: now });
  }

  async correct(key: string, o: LimitObservation): Promise<void> {
    this.rows.set(key, corrected(this.row(key), o, this.now(), this.periods));
  }

  async pause(key: string, ms: number): Promise<void> {
    const r = this.row(key);
    this.rows.set(key, { ...r, pausedUntil: Math.max(r.pausedUntil, this.now() + ms) });
  }

  async read(key: string): Promise<BudgetState> {
    const r = this.row(key);
    return { ...r, caps: { ...r.caps }, levels: { ...r.levels } };
  }
}

/**
 * Groq's reset durations (`2m59.56s`, `7.66s`, `1h0m0s`, `866ms`) in ms; plain numbers are
 * seconds. Undefined when unparsable.
 */
export function parseGroqDuration(v: string | null | undefined): number | undefined {
  if (v === null || v === undefined) return undefined;
  const t = v.trim();
  if (t === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  const re = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/gy;
  let ms = 0;
  let matched = 0;
  for (let m = re.exec(t); m !== null; m = re.exec(t)) {
    const n = Number(m[1]);
    const unit = m[2];
    ms +=
      unit === 'h'
        ? n * 3_600_000
        : unit === 'm'
          ? n * 60_000
          : unit === 's'
            ? n * 1000
            : unit === 'ms'
              ? n
              : unit === 'ns'
                ? n / 1e6
                : n / 1000;
    matched = re.lastIndex;
  }
  return matched === t.length && matched > 0 ? ms : undefined;
}

/** The rate-limit headers of one reply (any object with `get`). */
export function observationOf(headers: { get(name: string): string | null } | undefined): LimitObservation | undefined {
  if (!headers || typeof headers.get !== 'function') return undefined;
  const num = (name: string) => {
    const v = headers.get(name);
    if (v === null || v.trim() === '') return undefined;
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  };
  const part = (kind: 'requests' | 'tokens') => {
    const p = {
      limit: num(`x-ratelimit-limit-${kind}`),
      remaining: num(`x-ratelimit-remaining-${kind}`),
      resetMs: parseGroqDuration(headers.get(`x-ratelimit-reset-${kind}`)),
    };
    return p.limit === undefined && p.remaining === undefined && p.resetMs === undefined ? undefined : p;
  };
  const requests = part('requests');
  const tokens = part('tokens');
  return requests || tokens ? { ...(requests ? { requests } : {}), ...(tokens ? { tokens } : {}) } : undefined;
}
