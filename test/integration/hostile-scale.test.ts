/**
 * What users read after months in production, on the real servers: ClickHouse with millions of
 * score rows of one deployment, thousands of model versions and hundreds of deployments;
 * PostgreSQL with 100,000 gate decisions, 50,000 collection cycles, 10,000 agent runs and a
 * baseline per version. Every read path (`scores`, `report`, `cycles`, the gate's version
 * statistics, the cycle lag of `/metrics`, the PostgreSQL look-ups) is measured on that data:
 * rows returned, output size, Node heap growth, and rows PostgreSQL touches. Bounds, not times.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordScoresWritten, registry, watchCycleLag } from '../../activities/metrics.js';
import { SCORE_COLUMNS } from '../../activities/storage/clickhouse/migrations.js';
import { newestScoredInteractions } from '../../activities/storage/clickhouse/score-queries.js';
import { latestRecommendations } from '../../activities/storage/postgres/agents.js';
import { lastCycle, listCycles, recentTokensPerCheck } from '../../activities/storage/postgres/collection-runs.js';
import { baselinesOf, gateRecords, getDecision } from '../../activities/storage/postgres/gates.js';
import { openStores, type Stores } from '../../client/runtime.js';
import type { Check } from '../../common/types.js';
import { OFFLINE_JUDGE_VERSION } from '../../domain/judge/offline-judge.js';
import type { ReportData } from '../../domain/report/types.js';
import { createScratchDatabase } from '../../stack/postgres.js';
import { runCli } from '../helpers/cli.js';
import { testConfig, testEnv } from '../helpers/env.js';
import { rejectingGate } from '../helpers/report-sample.js';

/** `big`: VERSIONS model versions, one every STEP seconds up to now, PER interactions each, three checks each. */
const VERSIONS = 2000;
const PER = 400;
const INTERACTIONS = VERSIONS * PER;
const STEP = 10_800;
/** `wide`: WIDE versions serving side by side over the last 6 days, 60 interactions each. */
const WIDE = 1000;
/** Deployments `d1` … `dN` with a few versions each. */
const DEPLOYMENTS = 300;
const NOW = Math.floor(Date.now() / 1000);
const PV = Object.fromEntries((['quality', 'hallucination', 'toxicity'] as Check[]).map((c) => [c, OFFLINE_JUDGE_VERSION])) as Record<
  Check,
  string
>;

let stores: Stores;
let env: Record<string, string>;
let dir: string;
const drops: Array<() => Promise<void>> = [];

/** The value of `fn` and the largest Node heap growth seen while it ran (MB). */
async function measured<T>(fn: () => Promise<T>): Promise<{ value: T; heapMb: number }> {
  const before = process.memoryUsage().heapUsed;
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().heapUsed);
  }, 2);
  try {
    const value = await fn();
    peak = Math.max(peak, process.memoryUsage().heapUsed);
    return { value, heapMb: (peak - before) / 1e6 };
  } finally {
    clearInterval(timer);
  }
}

/** Rows a statement reads in PostgreSQL: rows every plan node produced or filtered out (EXPLAIN ANALYZE). */
async function rowsTouched(sql: string, params: unknown[]): Promise<{ rows: number; plan: string }> {
  const r = await stores.db.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, params);
  const plan = (r.rows[0] as Record<string, unknown>)['QUERY PLAN'] as Array<{ Plan: Record<string, unknown> }>;
  let rows = 0;
  const walk = (n: Record<string, unknown>) => {
    const loops = Number(n['Actual Loops'] ?? 1);
    rows += (Number(n['Actual Rows'] ?? 0) + Number(n['Rows Removed by Filter'] ?? 0)) * loops;
    for (const c of (n.Plans as Array<Record<string, unknown>> | undefined) ?? []) walk(c);
  };
  walk(plan[0]!.Plan);
  return { rows, plan: JSON.stringify(plan[0]!.Plan) };
}

/** The statement (SQL and parameters) a read function sends, and its result. */
async function statementOf<T>(fn: (db: Stores['db']) => Promise<T>): Promise<{ value: T; sql: string; params: unknown[] }> {
  let sql = '';
  let params: unknown[] = [];
  const spy = {
    query: (text: string, values?: unknown[]) => {
      sql = text;
      params = values ?? [];
      return stores.db.query(text, values);
    },
  } as unknown as Stores['db'];
  const value = await fn(spy);
  return { value, sql, params };
}

/** Interactions and their quality, hallucination and toxicity scores (offline judge), `rows` interactions from numbers(). */
async function insertScored(rows: number, deployment: string, version: string, ts: string): Promise<void> {
  const db = stores.ch.db;
  // `n` is the interaction's number; deployment, version and ts are expressions of it.
  const at = (n: string, x: string) => x.replaceAll('{n}', n);
  await stores.ch.client.command({
    query: `INSERT INTO ${db}.interactions (deployment, id, model_version, ts, prompt, response, context, has_context, metadata, source, cycle_id, ver)
      SELECT ${at('number', deployment)}, concat('i', toString(number)), ${at('number', version)}, toDateTime(${at('number', ts)}),
             'p', 'r', '', 0, '{}', 's', 'c', 1 FROM system.numbers LIMIT ${rows}`,
  });
  const n = 'intDiv(number, 3)';
  await stores.ch.client.command({
    query: `INSERT INTO ${db}.scores (${SCORE_COLUMNS.join(', ')})
      SELECT ${at(n, deployment)}, ${at(n, version)}, concat('i', toString(${n})), toDateTime(${at(n, ts)}),
             arrayElement(['quality', 'hallucination', 'toxicity'], (number % 3) + 1), ${`'${OFFLINE_JUDGE_VERSION}'`}, 'offline', 'ok', '',
             (number % 97) / 97, 0.5, 0.6, 0.7, 0.8, 0.9, 0, 0, 0, '', 0, 10, 0, 0, 1, now(), 1
      FROM system.numbers LIMIT ${rows * 3}`,
  });
}

async function seedClickHouse(): Promise<void> {
  await insertScored(
    INTERACTIONS,
    `'big'`,
    `concat('v', toString(intDiv({n}, ${PER})))`,
    `${NOW} - (${VERSIONS} - intDiv({n}, ${PER})) * ${STEP} + ({n} % ${PER}) * 20`,
  );
  // Versions side by side: each has an interaction in each of 60 slots of the last 6 days.
  await insertScored(WIDE * 60, `'wide'`, `concat('w', toString({n} % ${WIDE}))`, `${NOW} - 6 * 86400 + intDiv({n}, ${WIDE}) * 8640`);
  // Many deployments, 5 versions each, scored up to a year ago (their lag grows).
  await insertScored(
    DEPLOYMENTS * 50,
    `concat('d', toString({n} % ${DEPLOYMENTS} + 1))`,
    `concat('v', toString(intDiv({n}, ${DEPLOYMENTS}) % 5))`,
    `${NOW} - 400 * 86400 + {n} * 1000`,
  );
}

async function seedPostgres(): Promise<void> {
  const q = (sql: string) => stores.db.query(sql);
  const source = `'{"kind":"http","url":"http://logs.internal/x"}'`;
  await q(`INSERT INTO deployments (id, source) VALUES ('big', ${source}), ('wide', ${source}), ('empty', ${source})`);
  await q(`INSERT INTO deployments (id, source) SELECT 'd' || g, ${source} FROM generate_series(1, ${DEPLOYMENTS}) g`);
  // 50,000 cycles every 15 minutes, half of them of `big`, one in ten skipped; none called the LLM.
  await q(`INSERT INTO collection_runs (cycle_id, deployment, scheduled_at, started_at, finished_at, status, pages, fetched, stored, bad,
             sampled, scored, failed, skipped, judge, model_versions, coverage_note, llm_calls)
    SELECT 'collect/c' || g, CASE WHEN g % 2 = 0 THEN 'big' ELSE 'd' || (g % ${DEPLOYMENTS} + 1) END,
           now() - g * interval '15 min', now() - g * interval '15 min', now() - g * interval '15 min' + interval '1 min',
           CASE WHEN g % 10 = 0 THEN 'skipped' ELSE 'ok' END, 1, 10, 10, 0, 10, 30, 0, 0, 'offline', ARRAY['v1'], 'all scored', 0
    FROM generate_series(1, 50000) g`);
  // 100,000 gate decisions over a year; a third of them of `big`.
  await q(`INSERT INTO gate_decisions (gate_id, run_id, deployment, baseline_version, candidate_version, decision, effective_decision,
             reason, evidence, rollback, input, started_at, decided_at)
    SELECT 'gate/' || g, 'r', CASE WHEN g % 3 = 0 THEN 'big' ELSE 'd' || (g % ${DEPLOYMENTS} + 1) END, 'v' || (g % ${VERSIONS}),
           'v' || ((g + 1) % ${VERSIONS}), 'APPROVE', 'APPROVE', 'within tolerance', NULL,
           '{"status":"not-needed","deployer":"dry-run"}', '{}', now() - g * interval '5 min', now() - g * interval '5 min'
    FROM generate_series(1, 100000) g`);
  // The newest gate of `big` kept its looks; its baseline is an old version's.
  const { evidence } = rejectingGate();
  evidence.baseline = { ...evidence.baseline, version: 'v5', baselineId: 'big/v5/offline' };
  await stores.db.query(
    `UPDATE gate_decisions SET evidence = $1, decision = 'REJECT', effective_decision = 'REJECT' WHERE gate_id = 'gate/3'`,
    [JSON.stringify(evidence)],
  );
  // A baseline per version of `big`, computed as each version came.
  await q(`INSERT INTO baselines (id, deployment, model_version, judge, prompt_versions, window_spec, samples, stats, dimensions, workflow_id, computed_at)
    SELECT 'big/v' || g || '/offline', 'big', 'v' || g, 'offline', '${JSON.stringify(PV)}', '{}', ${PER},
      '{"quality":{"n":400,"mean":0.5,"sd":0.29},"hallucination_rate":{"n":400,"mean":0.5,"sd":0.5},"toxicity_rate":{"n":400,"mean":0.5,"sd":0.5}}',
      '{"overall":{"mean":0.5,"sd":0.29,"p10":0.1,"p25":0.25,"p50":0.5,"p75":0.75,"p90":0.9}}', 'w', now() - (${VERSIONS} - g) * interval '3 hours'
    FROM generate_series(0, ${VERSIONS - 1}) g`);
  // 10,000 agent runs (hourly, four agents, one in seven failed), five recommendations each.
  await q(`INSERT INTO agent_runs (id, agent, status, window_from, window_to, finished_at)
    SELECT 'run' || g, (ARRAY['cost', 'resource', 'application', 'capacity'])[g % 4 + 1], CASE WHEN g % 7 = 0 THEN 'failed' ELSE 'ok' END,
           now(), now(), now() - g * interval '1 hour'
    FROM generate_series(1, 10000) g`);
  await q(`INSERT INTO recommendations (run_id, idx, agent, kind, subject, severity, title, recommendation, evidence, confidence,
             monthly_saving_usd, annual_saving_usd)
    SELECT 'run' || g, i, (ARRAY['cost', 'resource', 'application', 'capacity'])[g % 4 + 1], 'k', 'gpu-' || i, 'medium',
           'idle GPU ' || i, 'stop it', '{}', 0.8, i * 10, i * 120
    FROM generate_series(1, 10000) g, generate_series(0, 4) i`);
  await q('ANALYZE');
}

beforeAll(async () => {
  const name = `optiinfra_scale_${randomUUID().slice(0, 8)}`;
  const db = await createScratchDatabase(testEnv().databaseUrl, name);
  dir = mkdtempSync(join(tmpdir(), 'optiinfra-scale-'));
  env = { CLICKHOUSE_URL: testEnv().clickhouseUrl, CLICKHOUSE_DATABASE: name, DATABASE_URL: db.url, OPTIINFRA_HOME: dir };
  stores = await openStores(testConfig({ DATABASE_URL: db.url, CLICKHOUSE_DATABASE: name }));
  drops.push(db.drop, async () => void (await stores.ch.client.command({ query: `DROP DATABASE IF EXISTS ${name}` })));
  await Promise.all([seedClickHouse(), seedPostgres()]);
}, 300_000);

afterAll(async () => {
  for (const d of [...drops].reverse()) await d().catch(() => undefined);
  await stores?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('scores of a deployment with 2,000 model versions and 2.4 M score rows', () => {
  it('lists the 20 most recently scored versions and says how many there are', async () => {
    // Failed before: every version was listed, 6,000 rows, 606 KB printed (three rows more for
    // every new version, without end).
    const { value: r, heapMb } = await measured(() => runCli(['scores', '--deployment', 'big'], env));
    expect(r.code, r.out).toBe(0);
    const rows = r.out.split('\n').filter((l) => /^v\d+ /.test(l));
    expect(rows).toHaveLength(20 * 3);
    expect(new Set(rows.map((l) => l.split(' ')[0]))).toEqual(new Set(Array.from({ length: 20 }, (_, i) => `v${VERSIONS - 1 - i}`)));
    expect(r.out).toContain(`showing the 20 most recently scored of ${VERSIONS} model versions (--limit N for more, --version V for one)`);
    expect(r.out.length).toBeLessThan(20_000);
    expect(heapMb).toBeLessThan(64);
    // The counts are exact: each version has 400 interactions, each scored once per check.
    expect(rows.every((l) => /\s400\s+100\.0 %/.test(l))).toBe(true);
  });

  it('--json, --limit and --version stay bounded and exact', async () => {
    // Failed before: --json printed all 6,000 aggregates and 2,000 coverage entries.
    const json = await runCli(['scores', '--deployment', 'big', '--json'], env);
    expect(json.code, json.out).toBe(0);
    const parsed = JSON.parse(json.out) as { scores: unknown[]; interactions: Record<string, number>; versions: unknown };
    expect(parsed.scores).toHaveLength(60);
    expect(Object.keys(parsed.interactions)).toHaveLength(20);
    expect(parsed.versions).toEqual({ shown: 20, total: VERSIONS });
    expect(json.out.length).toBeLessThan(40_000);

    const more = await runCli(['scores', '--deployment', 'big', '--limit', '1000'], env);
    expect(more.out.split('\n').filter((l) => /^v\d+ /.test(l))).toHaveLength(3000);
    expect((await runCli(['scores', '--deployment', 'big', '--limit', '1001'], env)).code).toBe(3);

    const one = await runCli(['scores', '--deployment', 'big', '--version', 'v7'], env);
    expect(one.out.split('\n').filter((l) => /^v7 /.test(l))).toHaveLength(3);
    expect(one.out).not.toContain('showing the');
  });
});

describe('the HTML report of a deployment with thousands of model versions', () => {
  const report = async (deployment: string, days: number) => {
    const file = join(dir, `${deployment}-${days}.html`);
    const html = await measured(() => runCli(['report', '--deployment', deployment, '--days', String(days), '--html', file], env));
    expect(html.value.code, html.value.out).toBe(0);
    const json = await runCli(['report', '--deployment', deployment, '--days', String(days), '--json'], env);
    expect(json.code, json.out.slice(0, 500)).toBe(0);
    return {
      page: readFileSync(file, 'utf8'),
      bytes: statSync(file).size,
      heapMb: html.heapMb,
      data: JSON.parse(json.out) as ReportData,
      jsonBytes: json.out.length,
    };
  };

  it('a year of 2,000 versions: 10 versions charted, coverage of those, totals over all', async () => {
    // Failed before: 2,000 versions charted, a coverage bar per version: a page of 2.2 MB and
    // --json of 1.35 MB, growing with every version the deployment ever had.
    const r = await report('big', 366);
    const versions = new Set(r.data.trends.points.map((p) => p.model_version));
    expect(versions.size).toBe(10);
    expect(r.data.trends.versions).toBe(VERSIONS);
    expect(r.data.trends.points.length).toBeLessThanOrEqual(10 * 3 * 61);
    // The gate's baseline (v5, long out of the window) is listed in the coverage with the charted versions.
    expect(r.data.band?.version).toBe('v5');
    expect(r.data.coverage.versions.map((v) => v.version)).toContain('v5');
    expect(r.data.coverage.versions.length).toBeLessThanOrEqual(11);
    expect(r.data.coverage.totals).toEqual({ versions: VERSIONS, stored: INTERACTIONS, scored: INTERACTIONS });
    expect(r.page).toContain(
      `Showing 10 of the 2,000 model versions scored in the window: the baseline&#39;s and the most recently scored.`,
    );
    expect(r.page).toMatch(
      /Showing 1[01] of 2,000 model versions \(those charted and the most recently stored\)\. All versions: 800,000 of 800,000/,
    );
    expect(r.page).toContain('800,000 of 800,000 stored');
    expect(r.bytes).toBeLessThan(300_000);
    expect(r.jsonBytes).toBeLessThan(400_000);
    expect(r.heapMb).toBeLessThan(48);
  });

  it('1,000 versions serving side by side for a week: the page stays small', async () => {
    // Failed before: 1,000 versions charted (a line, 60 dots and a legend entry each, in each
    // chart): a page of 18.8 MB, --json of 26.5 MB, the heap grew by 124 MB.
    const r = await report('wide', 7);
    expect(new Set(r.data.trends.points.map((p) => p.model_version)).size).toBe(10);
    expect(r.data.trends.versions).toBe(WIDE);
    expect(r.bytes).toBeLessThan(300_000);
    expect(r.jsonBytes).toBeLessThan(400_000);
    expect(r.heapMb).toBeLessThan(48);
    expect((r.page.match(/<circle class="point"/g) ?? []).length).toBeLessThanOrEqual(10 * 3 * 61);
  });

  it('windows: days grouped on UTC midnights, an old deployment with nothing in the window, a reversed or future window', async () => {
    // Pins: buckets are UTC (no daylight-saving shift), an empty window draws empty charts.
    const trends = (from: number, to: number, maxVersions?: number) =>
      stores.ch.scoreTrends({
        deployment: 'big',
        judge: 'offline',
        promptVersions: PV,
        from: new Date(from * 1000).toISOString(),
        to: new Date(to * 1000).toISOString(),
        ...(maxVersions ? { maxVersions } : {}),
      });
    // 45 days of 360 versions: one bucket per UTC day, across any daylight-saving change.
    const days = await trends(NOW - 45 * 86_400, NOW + 1, 1000);
    expect(days.bucketSeconds).toBe(86_400);
    expect(new Set(days.points.map((p) => p.model_version)).size).toBe(360);
    expect(days.points.every((p) => p.t % 86_400 === 0)).toBe(true);
    const old = await report('d7', 7);
    expect(old.data.trends.points).toEqual([]);
    expect(old.page).toContain('No quality scores of this judge in the window.');
    expect(old.data.coverage.versions.length).toBe(5);
    const none = await runCli(['report', '--deployment', 'empty', '--json'], env);
    expect((JSON.parse(none.out) as ReportData).coverage).toMatchObject({ versions: [], totals: { versions: 0, stored: 0, scored: 0 } });

    expect(await trends(NOW, NOW - 86_400)).toEqual({ bucketSeconds: 1, points: [], versions: 0 });
    expect((await trends(NOW + 86_400, NOW + 10 * 86_400)).points).toEqual([]);
    const decade = await trends(NOW - 10 * 365 * 86_400, NOW + 1);
    expect(decade.versions).toBe(VERSIONS);
    expect(decade.points.length).toBeLessThanOrEqual(10 * 3 * 61);
    const times = decade.points.map((p) => p.t);
    expect((Math.max(...times) - Math.min(...times)) / decade.bucketSeconds).toBeLessThanOrEqual(61);
    const all = await trends(NOW - 10 * 365 * 86_400, NOW + 1, 5000);
    expect(new Set(all.points.map((p) => p.model_version)).size).toBe(VERSIONS);
    expect(all.bucketSeconds).toBe(604_800);
  });
});

describe("the gate's version statistics on 2.4 M score rows", () => {
  it('whole version, last N and window each come back as one small answer', async () => {
    // Pins: aggregated in ClickHouse (per-day aggregates for a whole version), nothing per row reaches Node.
    const q = { deployment: 'big', version: 'v1234', judge: 'offline', promptVersions: PV };
    const { value, heapMb } = await measured(async () => [
      await stores.ch.versionAggregates(q),
      await stores.ch.versionAggregates({ ...q, lastN: 100 }),
      await stores.ch.versionAggregates({ ...q, from: new Date((NOW - 400 * 86_400) * 1000).toISOString() }),
      await stores.ch.interactionsPerVersion('big', 'v1234'),
    ]);
    const [whole, last100, window, stored] = value as [
      Awaited<ReturnType<Stores['ch']['versionAggregates']>>,
      Awaited<ReturnType<Stores['ch']['versionAggregates']>>,
      Awaited<ReturnType<Stores['ch']['versionAggregates']>>,
      Record<string, number>,
    ];
    expect(whole.checks.quality?.n).toBe(PER);
    expect(last100.checks.quality?.n).toBe(100);
    expect(window.checks.quality?.n).toBe(PER);
    expect(stored).toEqual({ v1234: PER });
    expect(heapMb).toBeLessThan(32);
  });
});

describe('/metrics with hundreds of deployments and thousands of versions', () => {
  it('one cycle-lag series per deployment and no label per model version', async () => {
    // Pins: labels are deployment, judge, check, outcome; versions never become series.
    watchCycleLag(() => newestScoredInteractions(stores.ch));
    for (let v = 0; v < VERSIONS; v++) {
      recordScoresWritten([{ deployment: 'big', judge: 'offline', check_name: 'quality', status: 'ok', model_version: `v${v}` } as never]);
    }
    const text = await registry.metrics();
    const lag = text.split('\n').filter((l) => l.startsWith('optiinfra_cycle_lag_seconds{'));
    expect(lag).toHaveLength(DEPLOYMENTS + 2);
    expect(text).not.toMatch(/model_version=/);
    expect(text.split('\n').filter((l) => l.startsWith('optiinfra_checks_total{'))).toHaveLength(1);
    expect(text.length).toBeLessThan(200_000);
  });
});

describe('PostgreSQL after 100,000 gates, 50,000 cycles, 10,000 agent runs and 2,000 baselines', () => {
  it('cycles: the listing is limited, its --json too, and the look-ups read a few index rows', async () => {
    // Pins: `cycles` takes at most --limit 1000 rows from the (deployment, finished_at) index.
    const r = await runCli(['cycles', '--deployment', 'big', '--limit', '1000', '--json'], env);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.out) as unknown[]).length).toBe(1000);
    expect(r.out.length).toBeLessThan(600_000);
    expect((await runCli(['cycles', '--deployment', 'big', '--limit', '1001'], env)).code).toBe(3);
    expect(await listCycles(stores.db, 'big', 5)).toHaveLength(5);
    expect((await lastCycle(stores.db, 'big'))?.status).toBe('ok');
    const s = await statementOf((db) => lastCycle(db, 'big'));
    const last = await rowsTouched(s.sql, s.params);
    expect(last.rows, last.plan).toBeLessThan(20);
  });

  it("a cycle's token estimate reads an index, not every cycle of the deployment", async () => {
    // Failed before: with no recent cycle that called the LLM (offline judge, a new judge) the
    // estimate scanned the whole table: Seq Scan, 50,000 rows removed by its filter, once per cycle.
    const s = await statementOf((db) => recentTokensPerCheck(db, 'big', 'offline'));
    expect(s.value).toBeUndefined();
    const r = await rowsTouched(s.sql, s.params);
    expect(r.plan).not.toContain('Seq Scan');
    expect(r.rows, r.plan).toBeLessThan(20);
  });

  it('gate look-ups: by gate id, by deployment and time, the latest baseline', async () => {
    // Failed before (the baseline): the report read all 2,000 baselines of the deployment, with
    // their statistics, to use one. Pins: the gates' indexes.
    const latest = await statementOf((db) => baselinesOf(db, 'big', 1));
    expect(latest.value.map((b) => b.version)).toEqual([`v${VERSIONS - 1}`]);
    expect(await baselinesOf(stores.db, 'big')).toHaveLength(20);
    const b = await rowsTouched(latest.sql, latest.params);
    expect(b.plan).not.toContain('Seq Scan');
    expect(b.rows, b.plan).toBeLessThan(20);

    const since = new Date(Date.now() - 366 * 86_400_000).toISOString();
    expect(await gateRecords(stores.db, 'big', { since, limit: 50 })).toHaveLength(50);
    const records = await statementOf((db) => gateRecords(db, 'big', { since, limit: 50 }));
    const g = await rowsTouched(records.sql, records.params);
    expect(g.rows, g.plan).toBeLessThan(200);
    const decision = await statementOf((db) => getDecision(db, 'gate/77'));
    expect(decision.value?.decision).toBe('APPROVE');
    const one = await rowsTouched(decision.sql, decision.params);
    expect(one.rows, one.plan).toBeLessThan(5);
  });

  it("the latest recommendations read each agent's latest run, not every run", async () => {
    // Failed before: DISTINCT ON over every successful run: Seq Scan and sort of 8,572 agent runs,
    // growing by 24 a day per agent.
    const recs = await latestRecommendations(stores.db);
    expect(recs).toHaveLength(4 * 5);
    expect(new Set(recs.map((r) => r.run_id))).toEqual(new Set(['run1', 'run2', 'run3', 'run4']));
    expect((await latestRecommendations(stores.db, 'cost')).map((r) => r.run_id)).toEqual(Array(5).fill('run4'));
    expect(await latestRecommendations(stores.db, 'nobody')).toEqual([]);
    const s = await statementOf((db) => latestRecommendations(db));
    const r = await rowsTouched(s.sql, s.params);
    expect(r.plan).not.toContain('Seq Scan');
    expect(r.rows, r.plan).toBeLessThan(200);
  });
});
