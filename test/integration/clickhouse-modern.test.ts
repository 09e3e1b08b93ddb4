/**
 * The product's ClickHouse schema and queries on a current ClickHouse release (chdb, in-process
 * ClickHouse from PyPI, behind a ClickHouse HTTP endpoint) and on the 18.16 server of the test
 * stack: the real ClickHouseStore runs one scenario calling every method on both, every
 * statement it sends must succeed on the current release (but the inserts of a row the server
 * refuses, which both refuse), and both must return the same results. chdb's time zone is not
 * UTC, so results that would follow the server's time zone differ.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClickHouseStore, type StatementTrace } from '../../activities/storage/clickhouse/store.js';
import { ensureChdb, startChdbServer, type ChdbServer } from '../helpers/chdb.js';
import { differences, runScenario, storeMethods } from '../helpers/chdb-scenario.js';
import { testEnv } from '../helpers/env.js';

const TIME_ZONE = 'Asia/Kolkata';

describe('ClickHouse store on a current release (chdb) and on 18.16', () => {
  let skip: string | undefined;
  let server: ChdbServer | undefined;
  const db = `optiinfra_modern_${randomUUID().slice(0, 8)}`;
  const traces = { legacy: [] as StatementTrace[], modern: [] as StatementTrace[] };
  let legacy: ClickHouseStore;
  let modern: ClickHouseStore;

  beforeAll(async () => {
    const py = ensureChdb();
    if ('skip' in py) {
      skip = py.skip;
      console.log(`[clickhouse-modern] skipped: ${skip}`);
      return;
    }
    server = await startChdbServer({
      python: py.python,
      home: join(testEnv().home, `chdb-${randomUUID().slice(0, 8)}`),
      timeZone: TIME_ZONE,
    });
    console.log(`[clickhouse-modern] chdb runs ClickHouse ${server.version} (time zone ${TIME_ZONE})`);
    legacy = new ClickHouseStore(testEnv().clickhouseUrl, db, { onStatement: (s) => traces.legacy.push(s) });
    modern = new ClickHouseStore(server.url, db, { onStatement: (s) => traces.modern.push(s) });
  }, 900_000);

  afterAll(async () => {
    await legacy?.client.command({ query: `DROP DATABASE IF EXISTS ${db}` }).catch(() => undefined);
    await legacy?.close();
    await modern?.close();
    await server?.stop();
  });

  it('runs every statement of the store on both and gets the same results', async (ctx) => {
    if (skip) return ctx.skip();
    expect(Number(server!.version.split('.')[0])).toBeGreaterThanOrEqual(24);

    const a = await runScenario(legacy);
    const b = await runScenario(modern);

    // Every public method of the store ran.
    for (const m of storeMethods()) expect(a.called, `method ${m} not exercised`).toContain(m);

    // The same statements went to both servers (lock tokens and how often a waiter polled aside).
    const norm = (t: StatementTrace[]) =>
      [...new Set(t.map((s) => s.sql.replace(/'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'/g, "'<token>'")))].sort();
    expect(norm(traces.modern)).toEqual(norm(traces.legacy));
    expect(norm(traces.modern).length).toBeGreaterThan(40);

    // All succeeded on the current release, except the inserts carrying the row both refuse.
    const ran = server!.statements();
    const failed = ran.filter((s) => !s.ok);
    for (const f of failed)
      expect(f.statement, f.error).toMatch(new RegExp(`^INSERT INTO ${db}\\.interactions FORMAT JSONEachRow[\\s\\S]*"poison"`));
    expect(a.results.refusedIds).toEqual(['poison']);
    expect(ran.filter((s) => s.ok).length).toBeGreaterThan(100);

    // Same results.
    const diff = differences(a.results, b.results);
    expect(diff, diff.slice(0, 20).join('\n')).toEqual([]);

    // The facts behind them.
    expect((await modern.query<{ tz: string }>('SELECT timezone() AS tz'))[0]!.tz).toBe(TIME_ZONE);
    expect(a.results.applied).toEqual([1, 2, 3, 4]);
    expect(a.results.migrateConcurrent).toEqual([0, 3]);
    // The first schema's FOCUS rows: the source's later collection, read after the upgrade.
    expect(a.results.migratedCosts).toMatchObject({ spendUsd: 3, rowsInWindow: 1 });
    expect(a.results.latestCostSnapshot).toEqual({ ver: 1, rows: expect.any(Number), bad: 2, fingerprint: 'f1' });
    const whole = a.results.versionWhole as { checks: { quality: { n: number } } };
    expect(whole.checks.quality.n).toBeGreaterThan(150);
    // Scores of v9 share interaction ids with v1 and are kept beside them.
    expect((a.results.versionV9 as { checks: { quality?: { n: number } } }).checks.quality?.n).toBeGreaterThan(30);
    expect((a.results.versionV0 as { checks: { quality?: { n: number } } }).checks.quality?.n).toBeGreaterThan(20);
    expect((a.results.metricSamples as unknown[]).length).toBe(300);
    expect((a.results.dailyCosts as Array<{ charge_period_start: number }>).every((d) => d.charge_period_start % 86_400 === 0)).toBe(true);
  });

  it('the current release refuses what the store avoids: blocks over 100 partitions, and follows its own time zone', async (ctx) => {
    if (skip) return ctx.skip();
    const rows = Array.from({ length: 150 }, (_, d) => ({
      ts: 1_600_000_000 + d * 86_400,
      source: 's',
      metric: 'm',
      labels: '{}',
      value: d,
      ver: 1,
    }));
    await expect(modern.client.insert({ table: `${db}.metric_samples`, values: rows, format: 'JSONEachRow' })).rejects.toThrow(
      /Too many partitions/,
    );
    const day = await modern.query<{ local: string; utc: string }>(
      "SELECT toUnixTimestamp(toStartOfDay(toDateTime(1700000000))) AS local, toUnixTimestamp(toStartOfDay(toDateTime(1700000000), 'UTC')) AS utc",
    );
    expect(Number(day[0]!.local)).not.toBe(Number(day[0]!.utc));
  });
});
