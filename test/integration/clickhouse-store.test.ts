/**
 * The ClickHouse store on the 18.16 server: versioned migrations (concurrent start, an upgrade
 * interrupted half-way, data kept), and baselines equal to a computation from the rows
 * themselves — counts, means, deviations and flags exactly as before, quantiles of the quality
 * dimensions identical to ClickHouse's `quantiles` while it is exact (up to 8,192 values) and
 * still exact above.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { SCORE_COLUMNS } from '../../activities/storage/clickhouse/migrations.js';
import type { InteractionRow, ScoreRow } from '../../activities/storage/clickhouse/rows.js';
import { ClickHouseStore } from '../../activities/storage/clickhouse/store.js';
import type { Check } from '../../common/types.js';
import type { VersionAggregates } from '../../domain/gate/baseline.js';
import { PV, interaction, rng, scoresFor } from '../helpers/chdb-scenario.js';
import { testEnv } from '../helpers/env.js';

const stores: ClickHouseStore[] = [];
const open = (db = `optiinfra_store_${randomUUID().slice(0, 8)}`) => {
  const s = new ClickHouseStore(testEnv().clickhouseUrl, db);
  stores.push(s);
  return s;
};

afterAll(async () => {
  for (const s of stores) {
    await s.client.command({ query: `DROP DATABASE IF EXISTS ${s.db}` }).catch(() => undefined);
    await s.close();
  }
});

const LEVELS = [0.1, 0.25, 0.5, 0.75, 0.9];
/** Linear interpolation between the nearest ranks at p·(n−1), as ClickHouse's `quantile` on few values. */
function quantile(sorted: number[], p: number): number {
  const n = sorted.length;
  const index = Math.max(0, Math.min(n - 1, p * (n - 1)));
  const k = Math.floor(index);
  if (k + 1 >= n) return sorted[k]!;
  const f = index - k;
  return (1 - f) * sorted[k]! + f * sorted[k + 1]!;
}

/** The baseline of one version computed from its rows. */
function reference(
  interactions: InteractionRow[],
  scores: ScoreRow[],
  q: { version: string; judge: string; lastN?: number; from?: number; to?: number },
) {
  let window = interactions.filter(
    (i) => i.model_version === q.version && (q.from === undefined || i.ts >= q.from) && (q.to === undefined || i.ts < q.to),
  );
  if (q.lastN) window = [...window].sort((a, b) => b.ts - a.ts || (a.id < b.id ? 1 : -1)).slice(0, q.lastN);
  const ids = new Set(window.map((i) => i.id));
  const rows = scores.filter(
    (s) => s.model_version === q.version && s.judge === q.judge && s.prompt_version === PV[s.check_name] && ids.has(s.interaction_id),
  );
  const checks: Partial<Record<Check, { n: number; mean: number; sd: number; flagged: number; abstained?: number }>> = {};
  const dims: Record<string, { mean: number; sd: number; p: number[] }> = {};
  const stats = (xs: number[]) => {
    const n = xs.length;
    const mean = xs.reduce((a, b) => a + b, 0) / n;
    const sd = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
    return { n, mean, sd };
  };
  let first = Infinity;
  let last = -Infinity;
  for (const c of ['quality', 'hallucination', 'toxicity'] as Check[]) {
    const ok = rows.filter((r) => r.check_name === c && r.status === 'ok');
    const abstained = rows.filter((r) => r.check_name === c && r.status === 'abstained').length;
    if (!ok.length && !abstained) continue;
    const s = stats(ok.map((r) => r.score ?? 0));
    checks[c] = {
      n: s.n,
      mean: s.n ? s.mean : 0,
      sd: s.sd,
      flagged: ok.filter((r) => (r.score ?? 0) >= 0.5).length,
      ...(abstained ? { abstained } : {}),
    };
    for (const r of ok) {
      first = Math.min(first, r.interaction_ts);
      last = Math.max(last, r.interaction_ts);
    }
    if (c === 'quality' && ok.length) {
      for (const d of ['score', 'coherence', 'relevance', 'accuracy', 'completeness'] as const) {
        const xs = ok.map((r) => r[d] ?? 0);
        const sorted = [...xs].sort((a, b) => a - b);
        const m = stats(xs);
        dims[d === 'score' ? 'overall' : d] = { mean: m.mean, sd: m.sd, p: LEVELS.map((p) => quantile(sorted, p)) };
      }
    }
  }
  return { checks, dims, first, last };
}

function expectMatches(got: VersionAggregates, ref: ReturnType<typeof reference>) {
  expect(Object.keys(got.checks).sort()).toEqual(Object.keys(ref.checks).sort());
  for (const [c, r] of Object.entries(ref.checks)) {
    const g = got.checks[c as Check]!;
    expect(g.n).toBe(r.n);
    expect(g.flagged).toBe(r.flagged);
    expect(g.abstained).toBe(r.abstained);
    expect(g.mean).toBeCloseTo(r.mean, 12);
    expect(g.sd).toBeCloseTo(r.sd, 7);
  }
  expect(Object.keys(got.qualityDimensions).sort()).toEqual(Object.keys(ref.dims).sort());
  for (const [d, r] of Object.entries(ref.dims)) {
    const g = got.qualityDimensions[d as keyof VersionAggregates['qualityDimensions']]!;
    expect(g.mean).toBeCloseTo(r.mean, 12);
    expect(g.sd).toBeCloseTo(r.sd, 7);
    // Exact: the same order statistics, the same interpolation.
    expect([g.p10, g.p25, g.p50, g.p75, g.p90]).toEqual(r.p);
  }
  if (ref.first !== Infinity) {
    expect(got.firstTs).toBe(new Date(ref.first * 1000).toISOString());
    expect(got.lastTs).toBe(new Date(ref.last * 1000).toISOString());
  }
}

describe('ClickHouse migrations', () => {
  it('three workers starting at once on an empty database: one applies every migration, once', async () => {
    const db = `optiinfra_store_${randomUUID().slice(0, 8)}`;
    const [a, b, c] = [open(db), open(db), open(db)];
    const applied = await Promise.all([a.migrate(), b.migrate(), c.migrate()]);
    expect(applied.map((x) => x.length).sort()).toEqual([0, 0, ClickHouseStore.schemaVersion]);
    expect(await a.appliedMigrations()).toEqual([1, 2, 3, 4]);
    const rows = await a.query<{ n: string }>(`SELECT count() AS n FROM ${db}.schema_migrations WHERE event = 'applied'`);
    expect(Number(rows[0]!.n)).toBe(4);
    const key = await a.query<{ q: string }>(
      `SELECT create_table_query AS q FROM system.tables WHERE database = '${db}' AND name = 'scores'`,
    );
    expect(key[0]!.q).toMatch(/ORDER BY \(deployment, model_version, judge, check_name, prompt_version, interaction_id\)/);
    expect(await a.migrate()).toEqual([]);
  });

  it('an upgrade interrupted after the swap finishes on the next start: rows written meanwhile are kept, once', async () => {
    const st = open();
    const db = st.db;
    await st.migrate({ upTo: 1 });
    const r = rng(7);
    const ints = Array.from({ length: 50 }, (_, i) => interaction('dep-u', `u-${i}`, 'v1', 1_700_000_000 + i * 3600));
    const rows = scoresFor(ints, r);
    await st.insertScores(rows);
    // Migration 2 stopped after the copy and the swap; a worker then wrote one more row to the old table.
    const cols = SCORE_COLUMNS.join(', ');
    const ddl = (
      await st.query<{ q: string }>(`SELECT create_table_query AS q FROM system.tables WHERE database = '${db}' AND name = 'scores'`)
    )[0]!.q;
    await st.client.command({
      query: ddl
        .replace(`${db}.scores`, `${db}.scores_next`)
        .replace(/ORDER BY \([^)]*\)/, 'ORDER BY (deployment, model_version, judge, check_name, prompt_version, interaction_id)'),
    });
    await st.client.command({ query: `INSERT INTO ${db}.scores_next (${cols}) SELECT ${cols} FROM ${db}.scores` });
    await st.client.command({ query: `RENAME TABLE ${db}.scores TO ${db}.scores_before_m2, ${db}.scores_next TO ${db}.scores` });
    const late = { ...rows[0]!, interaction_id: 'u-late', scored_at: Math.floor(Date.now() / 1000) };
    await st.client.insert({ table: `${db}.scores_before_m2`, values: [late], format: 'JSONEachRow' });

    expect(await st.migrate()).toEqual([2, 3, 4]);
    expect(await st.countScores('dep-u', { final: false })).toBe(rows.length + 1);
    const tables = await st.query<{ name: string }>(`SELECT name FROM system.tables WHERE database = '${db}' ORDER BY name`);
    expect(tables.map((t) => t.name)).toEqual(
      [
        'interactions',
        'cost_snapshots',
        'cost_usage',
        'metric_samples',
        'schema_migrations',
        'score_daily',
        'score_daily_mv',
        'scores',
      ].sort(),
    );
    // The per-day aggregates hold the copied rows, once.
    const agg = await st.versionAggregates({ deployment: 'dep-u', version: 'v1', judge: 'offline', promptVersions: PV });
    const byRows = await st.versionAggregates({
      deployment: 'dep-u',
      version: 'v1',
      judge: 'offline',
      promptVersions: PV,
      from: '2000-01-01T00:00:00Z',
    });
    expect(agg.checks.quality!.n).toBe(byRows.checks.quality!.n);
    expect(agg.checks.quality!.mean).toBeCloseTo(byRows.checks.quality!.mean, 12);
  });
});

describe('baselines', () => {
  const st = open();
  const dep = 'dep-b';
  const r = rng(11);
  const T = 1_735_689_600; // 2025-01-01
  const small = Array.from({ length: 2500 }, (_, i) => interaction(dep, `s-${i}`, 'small', T + i * 600 + (i % 5)));
  const big = Array.from({ length: 9500 }, (_, i) => interaction(dep, `b-${i}`, 'big', T + i * 300));
  // Interactions stored but never scored (sampled out) still count in a last-N window.
  const unscored = Array.from({ length: 300 }, (_, i) => interaction(dep, `n-${i}`, 'small', T + 2500 * 600 + i * 60));
  const scores = [...scoresFor(small, r), ...scoresFor(big, r), ...scoresFor(small.slice(0, 400), r, 'other-judge')];
  const all = [...small, ...big, ...unscored];

  it('equal a computation from the rows, whole version and windows, on the per-day aggregates and on the rows', async () => {
    await st.migrate();
    await st.insertIsolatingBad('interactions', all);
    // In several inserts, as the collector writes them.
    for (let i = 0; i < scores.length; i += 5000) await st.insertScores(scores.slice(i, i + 5000));
    const va = (x: { version: string; judge?: string; lastN?: number; from?: number; to?: number }) =>
      st.versionAggregates({
        deployment: dep,
        version: x.version,
        judge: x.judge ?? 'offline',
        promptVersions: PV,
        lastN: x.lastN,
        from: x.from === undefined ? undefined : new Date(x.from * 1000).toISOString(),
        to: x.to === undefined ? undefined : new Date(x.to * 1000).toISOString(),
      });
    const cases = [
      { version: 'small' },
      { version: 'big' },
      { version: 'small', judge: 'other-judge' },
      { version: 'small', lastN: 1000 },
      { version: 'small', lastN: 200 },
      { version: 'big', lastN: 1000 },
      { version: 'small', from: T + 3600, to: T + 86_400 * 5 },
      { version: 'big', lastN: 500, to: T + 86_400 },
      { version: 'missing' },
    ];
    for (const c of cases) {
      const got = await va(c);
      const ref = reference(all, scores, { judge: 'offline', ...c });
      expectMatches(got, ref);
    }
    expect((await va({ version: 'big' })).checks.quality!.n).toBeGreaterThan(8192);
  });

  it('give the quantiles ClickHouse gave before, where its `quantiles` is exact', async () => {
    const got = await st.versionAggregates({ deployment: dep, version: 'small', judge: 'offline', promptVersions: PV });
    const before = await st.query<Record<string, number[]>>(
      `SELECT ${['score', 'coherence', 'relevance', 'accuracy', 'completeness']
        .map((d) => `quantiles(0.1, 0.25, 0.5, 0.75, 0.9)(assumeNotNull(${d})) AS ${d}`)
        .join(', ')}
       FROM ${st.db}.scores FINAL
       WHERE deployment = '${dep}' AND model_version = 'small' AND judge = 'offline' AND check_name = 'quality'
         AND prompt_version = '${PV.quality}' AND status = 'ok'`,
    );
    for (const d of ['score', 'coherence', 'relevance', 'accuracy', 'completeness'] as const) {
      const g = got.qualityDimensions[d === 'score' ? 'overall' : d]!;
      expect([g.p10, g.p25, g.p50, g.p75, g.p90]).toEqual(before[0]![d]!.map(Number));
    }
  });

  it('the score summary of a deployment interpolates its median and p90 the same way', async () => {
    const agg = await st.aggregateScores(dep, 'small');
    const before = await st.query<{ check_name: string; judge: string; p50: number; p90: number }>(
      `SELECT check_name, judge, quantileIf(0.5)(assumeNotNull(score), status = 'ok') AS p50, quantileIf(0.9)(assumeNotNull(score), status = 'ok') AS p90
       FROM ${st.db}.scores FINAL WHERE deployment = '${dep}' AND model_version = 'small' GROUP BY check_name, judge`,
    );
    for (const b of before) {
      const a = agg.find((x) => x.check_name === b.check_name && x.judge === b.judge)!;
      expect([a.p50, a.p90]).toEqual([Number(b.p50), Number(b.p90)]);
    }
  });
});
