/**
 * The LLM's request and token buckets (table llm_budget), shared by every worker on the same
 * database: one row per model and endpoint holding four buckets (requests and tokens per minute
 * and per day), their capacities (0: not limited) and a pause every caller honours.
 *
 * Levels refill continuously at capacity per period from `updated_at`; every statement first
 * refills all four buckets to the database's clock, so workers on different machines agree.
 * A reservation is one UPDATE whose WHERE clause checks every bucket: PostgreSQL locks the row
 * and re-checks the condition against the latest version when callers race, so no two workers
 * can spend the same budget.
 */
import type { RateLimits } from '../../../common/plan-limits.js';
import {
  BUCKETS,
  corrected,
  PERIOD_MS,
  refilled,
  type Bucket,
  type BudgetState,
  type BudgetStore,
  type LimitObservation,
} from '../../llm/budget.js';
import type { Db } from './db.js';

const ELAPSED_MS = `GREATEST(0, EXTRACT(EPOCH FROM (n.t - b.updated_at)) * 1000)`;

const NOW = `(SELECT clock_timestamp() AS t) AS n`;
const COLUMNS = `b.rpm_cap, b.rpd_cap, b.tpm_cap, b.tpd_cap, b.rpm, b.rpd, b.tpm, b.tpd, b.paused_until, b.updated_at`;

interface Row {
  rpm_cap: number;
  rpd_cap: number;
  tpm_cap: number;
  tpd_cap: number;
  rpm: number;
  rpd: number;
  tpm: number;
  tpd: number;
  paused_until: Date | string;
  updated_at: Date;
  t?: Date;
}

function ms(v: Date | string | number): number {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number') return v;
  if (v === '-infinity') return -Infinity;
  if (v === 'infinity') return Infinity;
  return new Date(v).getTime();
}

function stateOf(r: Row): BudgetState {
  const caps = { rpm: Number(r.rpm_cap), rpd: Number(r.rpd_cap), tpm: Number(r.tpm_cap), tpd: Number(r.tpd_cap) };
  const levels = { rpm: Number(r.rpm), rpd: Number(r.rpd), tpm: Number(r.tpm), tpd: Number(r.tpd) };
  return { caps, levels, pausedUntil: ms(r.paused_until), at: ms(r.updated_at) };
}

export class PostgresBudgetStore implements BudgetStore {
  constructor(
    private readonly db: Db,
    /** Bucket periods in ms (shorter than a minute and a day only for benchmarks on a scaled clock). */
    private readonly periods: Record<Bucket, number> = PERIOD_MS,
  ) {}

  /** The level of bucket `c` refilled to the statement's clock `n.t` (0 when not limited). */
  private level(c: Bucket): string {
    const period = Number(this.periods[c]);
    return `(CASE WHEN b.${c}_cap > 0 THEN LEAST(b.${c}_cap, b.${c} + b.${c}_cap * ${ELAPSED_MS} / ${period}) ELSE 0 END)`;
  }

  async init(key: string, caps: RateLimits): Promise<void> {
    // New: full buckets. Existing: the new capacities; a bucket that was not limited starts full.
    const keep = (c: Bucket) =>
      `${c} = CASE WHEN llm_budget.${c}_cap <= 0 THEN EXCLUDED.${c} ELSE LEAST(llm_budget.${c}, EXCLUDED.${c}_cap) END`;
    await this.db.query(
      `INSERT INTO llm_budget AS llm_budget (key, rpm_cap, rpd_cap, tpm_cap, tpd_cap, rpm, rpd, tpm, tpd, updated_at)
       VALUES ($1, $2, $3, $4, $5, $2, $3, $4, $5, clock_timestamp())
       ON CONFLICT (key) DO UPDATE SET
         ${BUCKETS.map(keep).join(', ')},
         ${BUCKETS.map((c) => `${c}_cap = EXCLUDED.${c}_cap`).join(', ')}`,
      [key, caps.rpm, caps.rpd, caps.tpm, caps.tpd],
    );
  }

  async reserve(key: string, tokens: number): Promise<{ granted: boolean; state: BudgetState }> {
    const need = (c: Bucket) => (c === 'rpm' || c === 'rpd' ? '1' : '$2::float8');
    const r = await this.db.query<Row>(
      `UPDATE llm_budget AS b SET
         ${BUCKETS.map((c) => `${c} = ${this.level(c)} - CASE WHEN b.${c}_cap > 0 THEN ${need(c)} ELSE 0 END`).join(',\n         ')},
         updated_at = n.t
       FROM ${NOW}
       WHERE b.key = $1 AND b.paused_until <= n.t
         AND ${BUCKETS.map((c) => `(b.${c}_cap <= 0 OR ${this.level(c)} >= ${need(c)})`).join('\n         AND ')}
       RETURNING ${COLUMNS}`,
      [key, tokens],
    );
    if (r.rows[0]) return { granted: true, state: stateOf(r.rows[0]) };
    return { granted: false, state: await this.read(key) };
  }

  async adjustTokens(key: string, delta: number): Promise<void> {
    const set = (c: Bucket) =>
      c === 'tpm' || c === 'tpd'
        ? `${c} = CASE WHEN b.${c}_cap > 0 THEN LEAST(b.${c}_cap, ${this.level(c)} + $2::float8) ELSE 0 END`
        : `${c} = ${this.level(c)}`;
    await this.db.query(`UPDATE llm_budget AS b SET ${BUCKETS.map(set).join(', ')}, updated_at = n.t FROM ${NOW} WHERE b.key = $1`, [
      key,
      delta,
    ]);
  }

  async correct(key: string, o: LimitObservation): Promise<void> {
    // Read, compute with the same rule as the in-memory store, and write only downwards: levels
    // and capacities take the smaller of the stored (refilled) and the computed value, so a
    // concurrent reservation is never undone. A bucket the reply's headers do not lower is left
    // as it is (NULL): writing back the level read here would undo a settle that gave tokens
    // back in between, and the budget would leak a call's reservation each time.
    const s = await this.read(key);
    const c = corrected(s, o, s.at, this.periods);
    const before = refilled(s, s.at, this.periods);
    const lower = (b: Bucket) =>
      `${b} = CASE WHEN b.${b}_cap > 0 THEN LEAST(${this.level(b)}, COALESCE($${2 + BUCKETS.indexOf(b)}::float8, 'Infinity')) ELSE 0 END`;
    const cap = (b: Bucket) => `${b}_cap = LEAST(b.${b}_cap, $${6 + BUCKETS.indexOf(b)}::float8)`;
    await this.db.query(
      `UPDATE llm_budget AS b SET ${BUCKETS.map(lower).join(', ')}, ${BUCKETS.map(cap).join(', ')}, updated_at = n.t
       FROM ${NOW} WHERE b.key = $1`,
      [key, ...BUCKETS.map((b) => (s.caps[b] > 0 && c.levels[b] < before[b] ? c.levels[b] : null)), ...BUCKETS.map((b) => c.caps[b])],
    );
  }

  async pause(key: string, pauseMs: number): Promise<void> {
    await this.db.query(
      `UPDATE llm_budget SET paused_until = GREATEST(paused_until, clock_timestamp() + $2::float8 * interval '1 millisecond') WHERE key = $1`,
      [key, pauseMs],
    );
  }

  async read(key: string): Promise<BudgetState> {
    const r = await this.db.query<Row>(`SELECT ${COLUMNS}, n.t FROM llm_budget AS b, ${NOW} WHERE b.key = $1`, [key]);
    const row = r.rows[0];
    if (!row) throw new Error(`no LLM budget row '${key}' (the pacer initialises it before use)`);
    // Levels as of the database's clock now (refilled), so waits are measured on one clock.
    const s = stateOf(row);
    const now = row.t ? ms(row.t) : s.at;
    const dt = Math.max(0, now - s.at);
    const levels = { ...s.levels };
    for (const b of BUCKETS) levels[b] = s.caps[b] > 0 ? Math.min(s.caps[b], s.levels[b] + (s.caps[b] * dt) / this.periods[b]) : 0;
    return { caps: s.caps, levels, pausedUntil: s.pausedUntil, at: now };
  }
}
