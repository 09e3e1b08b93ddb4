/**
 * FOCUS rows that share what `cost_usage` used as its key (resource, SKU, charge period start,
 * service), on the real ClickHouse: several line items of one resource and hour (usage and its
 * credit, two usage items, tax rows without a resource), an export re-issued with rows corrected
 * and removed, a collection that dies half-way, two sources with the same rows, and a database
 * holding rows in the table's former layout. What the agents read for a source must be exactly
 * the rows of its latest completed collection.
 *
 * FOCUS defines no column that identifies a row (specification/columns/ of
 * FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec lists none), ChargeCategory Credit and Tax rows sit
 * beside the Usage rows they concern (columns/chargecategory.md: "Positive or negative charges"),
 * and its Ledger correction style writes a reversal "with opposite cost and quantity values,
 * while all other columns match the original"
 * (appendix/correction_handling_examples/correction_handling_examples_overview.md): rows equal
 * in every key column are normal. Its Replacement style re-delivers the scope whole, with rows
 * updated, added or omitted "relative to the previous snapshot", which is how a source is read.
 *
 * Each test has a month of its own, so the window it reads holds its rows only.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInfraActivities, focusCollectionVer } from '../../activities/infra/activities.js';
import { FOCUS_BATCH_ROWS } from '../../activities/infra/focus.js';
import { CLICKHOUSE_MIGRATIONS } from '../../activities/storage/clickhouse/migrations.js';
import { ClickHouseStore } from '../../activities/storage/clickhouse/store.js';
import { upsertInfraSource } from '../../activities/storage/postgres/agents.js';
import { createScratchDatabase } from '../../stack/postgres.js';
import { openStores, type Stores } from '../../client/runtime.js';
import { eventually } from '../helpers/async.js';
import { hourlyCostRow } from '../helpers/cost-rows.js';
import { testConfig, testEnv } from '../helpers/env.js';

const NAME = `optiinfra_focus_rows_${randomUUID().slice(0, 8)}`;
const HEADER =
  'BillingCurrency,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,BilledCost,EffectiveCost,ResourceId,ResourceType,ServiceName,RegionId,SkuId,ConsumedQuantity,ConsumedUnit,Tags';

interface Line {
  category?: 'Usage' | 'Credit' | 'Tax' | 'Purchase' | 'Adjustment';
  /** ChargePeriodStart (an hour). */
  start: string;
  cost: number;
  resource: string;
  sku?: string;
  service?: string;
}

const hourAfter = (iso: string) => new Date(Date.parse(iso) + 3_600_000).toISOString();
const csvOf = (lines: Line[]) =>
  `${[
    HEADER,
    ...lines.map((l) =>
      [
        'USD',
        l.category ?? 'Usage',
        l.start,
        hourAfter(l.start),
        l.cost,
        l.cost,
        l.resource,
        'VirtualMachine',
        l.service ?? 'Compute',
        'eu-1',
        l.sku ?? 'sku-1',
        l.category === 'Tax' ? '' : '1',
        'Hours',
        '"{""deployment"":""fleet""}"',
      ].join(','),
    ),
  ].join('\n')}\n`;

/** A month of its own for a test: the window and an hour in it. */
const month = (m: number) => {
  const from = new Date(Date.UTC(2025, m - 1, 1)).toISOString();
  const to = new Date(Date.UTC(2025, m, 1)).toISOString();
  return { from, to, hour: new Date(Date.UTC(2025, m - 1, 3, 10)).toISOString() };
};

const root = mkdtempSync(join(tmpdir(), 'hostile-focus-rows-'));
let stores: Stores;
let ch: ClickHouseStore;
let collect: ReturnType<typeof createInfraActivities>['collectInfraSource'];
const drops: Array<() => Promise<void>> = [];

/** A registered FOCUS source whose directory holds these files. */
async function source(id: string, files: Record<string, string>): Promise<string> {
  const dir = join(root, id);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  await upsertInfraSource(stores.db, id, { kind: 'focus', path: dir });
  return dir;
}

const spend = async (w: { from: string; to: string }) => (await ch.costTotals(w)).spendUsd;
const rowsOf = async (store: ClickHouseStore, table: string, where: string) =>
  Number((await store.query<{ n: string }>(`SELECT count() AS n FROM ${store.db}.${table} WHERE ${where}`))[0]!.n);
/** Expects `table` of `store` to come to hold `n` rows matching `where` (a mutation runs asynchronously). */
const rowsSettle = async (table: string, where: string, n: number, store = ch) =>
  expect(
    await eventually(
      () => rowsOf(store, table, where),
      (x) => x === n,
    ),
  ).toBe(n);

beforeAll(async () => {
  const pgDb = await createScratchDatabase(testEnv().databaseUrl, NAME);
  drops.push(pgDb.drop);
  const config = testConfig({ DATABASE_URL: pgDb.url, CLICKHOUSE_DATABASE: NAME });
  stores = await openStores(config);
  ch = stores.ch;
  drops.unshift(async () => void (await ch.client.command({ query: `DROP DATABASE IF EXISTS ${NAME}` })));
  collect = createInfraActivities({ config, ch, db: stores.db }).collectInfraSource;
}, 120_000);

afterAll(async () => {
  for (const drop of drops) await drop().catch(() => undefined);
  await stores?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('FOCUS rows sharing a key', () => {
  it('a usage row and its credit, in one hour of one resource and SKU: both counted', async () => {
    // Pins: a Credit row (negative cost) beside the Usage row it discounts, both kept and summed.
    // Failed before: FINAL kept one row of the key; the spend read was -50 (the credit alone) instead of 50.
    const w = month(1);
    await source('credit', {
      'export.csv': csvOf([
        { start: w.hour, cost: 100, resource: 'vm-1' },
        { category: 'Credit', start: w.hour, cost: -50, resource: 'vm-1' },
      ]),
    });
    expect(await collect({ id: 'credit' })).toMatchObject({ rows: 2, bad: 0 });
    expect(await spend(w)).toBe(50);
    expect((await ch.costOfResources({ ...w, ids: ['vm-1'] }))[0]).toMatchObject({ costUsd: 50, rowsInWindow: 2 });
    const daily = await ch.dailyCosts(w.from, w.to);
    expect(daily.map((d) => d.effective_cost)).toEqual([50]);
  });

  it('two usage line items with the same key, and tax rows without a resource: every one counted', async () => {
    // Pins: identical-key line items (AWS splits a resource's hour; Tax rows have an empty ResourceId
    // and share SKU, service and period) are all summed.
    // Failed before: one row of each key was kept (the last): spend 12 (10 + the $2 tax row) instead of 30.
    const w = month(2);
    await source('items', {
      'export.csv': csvOf([
        { start: w.hour, cost: 10, resource: 'vm-2' },
        { start: w.hour, cost: 10, resource: 'vm-2' },
        { category: 'Tax', start: w.hour, cost: 8, resource: '', sku: 'tax' },
        { category: 'Tax', start: w.hour, cost: 2, resource: '', sku: 'tax' },
      ]),
    });
    expect(await collect({ id: 'items' })).toMatchObject({ rows: 4, bad: 0 });
    expect(await spend(w)).toBe(30);
    expect((await ch.costOfResources({ ...w, ids: ['vm-2'] }))[0]).toMatchObject({ costUsd: 20, rowsInWindow: 2 });
    const byService = await ch.costByServiceDay({ ...w, limit: 5, trailingDays: 7 });
    expect(byService.map((d) => d.spendUsd)).toEqual([30]);
  });

  it('an export re-issued with one row removed and one corrected: the re-issued rows only', async () => {
    // Pins: a restatement replaces the source's rows whole; a row the provider removed is no longer read.
    // Failed before: the removed row stayed forever: spend 50 (25 + 20 + the removed 5) instead of 45, and vm-c still costed 5.
    const w = month(3);
    const lines = (a: number, withC: boolean) =>
      csvOf([
        { start: w.hour, cost: a, resource: 'vm-a' },
        { start: w.hour, cost: 20, resource: 'vm-b' },
        ...(withC ? [{ start: w.hour, cost: 5, resource: 'vm-c' }] : []),
      ]);
    await source('restated', { '2025-03.csv': lines(30, true) });
    await collect({ id: 'restated' });
    expect(await spend(w)).toBe(55);
    await source('restated', { '2025-03.csv': lines(25, false) });
    expect(await collect({ id: 'restated' })).toMatchObject({ rows: 2, bad: 0 });
    expect(await spend(w)).toBe(45);
    expect((await ch.costOfResources({ ...w, ids: ['vm-a', 'vm-b', 'vm-c'] })).map((r) => [r.resourceId, r.costUsd])).toEqual([
      ['vm-a', 25],
      ['vm-b', 20],
    ]);
    // The first collection's rows and record are deleted (a mutation: readers never waited for it).
    await rowsSettle('cost_usage', "source = 'restated'", 2);
    await rowsSettle('cost_snapshots', "source = 'restated'", 1);
  });

  it('a collection that dies half-way (an unclosed quote after a good file): the previous collection is what is read', async () => {
    // Pins: rows of a collection that did not complete are never read, even once some of its
    // batches were inserted; the previous complete collection stays the source's data.
    // Failed before: the 10,000 rows inserted before the broken file replaced their keys: spend
    // 22,000 (10,000 at $2 of the dead collection + 2,000 at $1) instead of 12,000.
    const w = month(4);
    const n = FOCUS_BATCH_ROWS + 2_000;
    const good = (cost: number) => csvOf(Array.from({ length: n }, (_, i) => ({ start: w.hour, cost, resource: `vm-${i}` })));
    await source('half', { 'a.csv': good(1) });
    expect(await collect({ id: 'half' })).toMatchObject({ rows: n, bad: 0 });
    expect(await spend(w)).toBe(n);
    await source('half', { 'a.csv': good(2), 'b.csv': `${HEADER}\nUSD,Usage,"${w.hour},broken\n` });
    const outcome = await collect({ id: 'half' });
    expect(outcome.error).toMatch(/cannot parse .*b\.csv/);
    expect(outcome.rows).toBe(FOCUS_BATCH_ROWS);
    expect(await spend(w)).toBe(n);
    expect((await ch.costTotals(w)).rowsInWindow).toBe(n);
    // Its rows are deleted; the previous collection's stay.
    await rowsSettle('cost_usage', "source = 'half'", n);
    // A collection whose worker died after inserting rows (never recorded as completed): not read either.
    const dead = focusCollectionVer();
    await ch.insertCostRows(
      [0, 1, 2].map((seq) =>
        hourlyCostRow({ start: Date.parse(w.hour) / 1000, cost: 1000, resource: 'vm-0', source: 'half', ver: dead, seq }),
      ),
    );
    expect(await spend(w)).toBe(n);
    // Repaired, the export is read whole; everything older is deleted.
    await source('half', { 'a.csv': good(2), 'b.csv': csvOf([{ start: w.hour, cost: 5, resource: 'vm-b' }]) });
    expect(await collect({ id: 'half' })).toMatchObject({ rows: n + 1, bad: 0 });
    expect(await spend(w)).toBe(2 * n + 5);
    await rowsSettle('cost_usage', "source = 'half'", n + 1);
  });

  it('two collections of one source at once, the newer completing first: the older one leaves no rows behind', async () => {
    // Pins: a collection that completes after a newer one of its source (a scheduled collection
    // beside an analysis collecting its own sources) deletes its own rows. Failed before: they
    // stayed (never read, but kept until the export changed again, which an unchanged export never does).
    const w = month(7);
    const row = (ver: number, cost: number, seq: number) =>
      hourlyCostRow({ start: Date.parse(w.hour) / 1000, cost, resource: 'vm-race', source: 'race', ver, seq });
    // The older collection's last batch lands after the newer one completed (and deleted what was older then).
    await ch.insertCostRows([row(2_000, 9, 0), row(2_000, 1, 1)]);
    await ch.completeCostSnapshot('race', 2_000, 2);
    await ch.insertCostRows([row(1_000, 4, 0)]);
    await ch.completeCostSnapshot('race', 1_000, 1);
    expect(await spend(w)).toBe(10);
    await rowsSettle('cost_usage', "source = 'race'", 2);
    expect((await ch.latestCostSnapshot('race'))?.ver).toBe(2_000);
  });

  it('two sources holding the same row: both counted', async () => {
    // Pins: the rows of one source never replace another's.
    // Failed before: the second source's row replaced the first's: spend 15 instead of 25.
    const w = month(5);
    await source('twin-a', { 'x.csv': csvOf([{ start: w.hour, cost: 10, resource: 'vm-shared' }]) });
    await source('twin-b', { 'x.csv': csvOf([{ start: w.hour, cost: 15, resource: 'vm-shared' }]) });
    await collect({ id: 'twin-a' });
    await collect({ id: 'twin-b' });
    expect(await spend(w)).toBe(25);
    // Re-issued and collected again, each replaces only its own rows.
    await source('twin-a', { 'x.csv': csvOf([{ start: w.hour, cost: 10, resource: 'vm-shared' }]) });
    expect(await collect({ id: 'twin-a' })).toMatchObject({ rows: 1 });
    expect(await spend(w)).toBe(25);
    await rowsSettle('cost_usage', "source IN ('twin-a', 'twin-b')", 2);
  });

  it('an export left as it was is not read again; a file rewritten, added or touched is', async () => {
    // Pins: a collection of an unchanged directory reads nothing, writes nothing and deletes
    // nothing (before this, every collection every few minutes re-inserted the whole export and
    // a mutation then deleted the previous copy); its bad rows are still reported.
    const w = month(6);
    const good = csvOf([{ start: w.hour, cost: 7, resource: 'vm-u' }]);
    const dir = await source('unchanged', { 'a.csv': `${good}USD,Usage,not-a-date\n` });
    const first = await collect({ id: 'unchanged' });
    expect(first).toMatchObject({ rows: 1, bad: 1 });
    expect(first).not.toHaveProperty('unchanged');
    for (let i = 0; i < 3; i++)
      expect(await collect({ id: 'unchanged' })).toEqual({ id: 'unchanged', kind: 'focus', rows: 0, bad: 1, unchanged: true });
    expect(await rowsOf(ch, 'cost_snapshots', "source = 'unchanged'")).toBe(1);
    expect(await rowsOf(ch, 'cost_usage', "source = 'unchanged'")).toBe(1);
    expect(await spend(w)).toBe(7);
    // A second file: read again, whole.
    writeFileSync(join(dir, 'b.csv'), csvOf([{ start: w.hour, cost: 3, resource: 'vm-v' }]));
    expect(await collect({ id: 'unchanged' })).toMatchObject({ rows: 2, bad: 1 });
    expect(await spend(w)).toBe(10);
    // The same bytes written again (a provider's export job re-run): its time changed, read again.
    const before = await ch.latestCostSnapshot('unchanged');
    await new Promise((r) => setTimeout(r, 20));
    writeFileSync(join(dir, 'b.csv'), csvOf([{ start: w.hour, cost: 3, resource: 'vm-v' }]));
    expect(await collect({ id: 'unchanged' })).toMatchObject({ rows: 2 });
    expect((await ch.latestCostSnapshot('unchanged'))!.ver).toBeGreaterThan(before!.ver);
    expect(await spend(w)).toBe(10);
  });

  it('a source unregistered: its rows and collections are deleted, the other source keeps its own', async () => {
    // Pins: `deleteCostRows` of a source removes what it collected, and only that.
    // Failed before: nothing deleted a source's cost rows (there was no deleteCostRows): its rows were read after it was gone (spend 25, not 15).
    const w = month(5);
    await ch.deleteCostRows({ sources: ['twin-a', 'never-collected'] });
    expect(
      await eventually(
        () => spend(w),
        (x) => x === 15,
      ),
    ).toBe(15);
    await rowsSettle('cost_snapshots', "source = 'twin-a'", 0);
    expect(await rowsOf(ch, 'cost_snapshots', "source = 'twin-b'")).toBe(1);
  });
});

describe('cost rows in the former layout', () => {
  it('survive the migration: each source its latest collection, then collections replace them', async () => {
    // Pins: a database written by the previous release (ReplacingMergeTree keyed by resource, SKU,
    // period and service) is migrated with its rows; each source's latest ver is read as its
    // completed snapshot, rows of its older collections are not.
    // Failed before: nothing migrated; the row only the older collection had (vm-gone, $7) was
    // still read: spend 40 (7 + 3 + 30) instead of 33.
    const db = `optiinfra_focus_old_${randomUUID().slice(0, 8)}`;
    const old = new ClickHouseStore(testEnv().clickhouseUrl, db);
    try {
      await old.migrate({ upTo: 3 });
      const w = month(6);
      const t = Date.parse(w.hour) / 1000;
      const row = (source: string, ver: number, resource: string, cost: number) =>
        `(toDateTime(${t}), toDateTime(${t + 3600}), ${cost}, ${cost}, '${resource}', 'VM', 'Compute', 'eu-1', 'sku-1', 1, 'Hours', '{}', '${source}', ${ver})`;
      const insert = (rows: string[]) =>
        old.client.command({
          query: `INSERT INTO ${db}.cost_usage (charge_period_start, charge_period_end, billed_cost, effective_cost, resource_id,
              resource_type, service_name, region_id, sku_id, consumed_quantity, consumed_unit, tags, source, ver) VALUES ${rows.join(', ')}`,
        });
      await insert([row('bill', 1, 'vm-kept', 2), row('bill', 1, 'vm-gone', 7)]);
      await insert([row('bill', 2, 'vm-kept', 3)]);
      await insert([row('other', 5, 'vm-o', 30)]);
      // What the previous release read (FINAL): the row only the older collection had is in it.
      expect(await old.query(`SELECT sum(effective_cost) AS usd FROM ${db}.cost_usage FINAL`)).toEqual([{ usd: 40 }]);
      expect(await old.migrate()).toEqual([4]);
      expect((await old.costTotals(w)).spendUsd).toBe(33);
      expect((await old.costOfResources({ ...w, ids: ['vm-kept', 'vm-gone', 'vm-o'] })).map((r) => [r.resourceId, r.costUsd])).toEqual([
        ['vm-kept', 3],
        ['vm-o', 30],
      ]);
      const snapshots = () =>
        old.query<{ source: string; ver: string; rows: string }>(`SELECT source, ver, rows FROM ${db}.cost_snapshots ORDER BY source`);
      expect(await snapshots()).toEqual([
        { source: 'bill', ver: '2', rows: '1' },
        { source: 'other', ver: '5', rows: '1' },
      ]);
      expect(await old.query(`SELECT name FROM system.tables WHERE database = '${db}' AND name LIKE 'cost_usage%' ORDER BY name`)).toEqual([
        { name: 'cost_usage' },
      ]);
      // Run again from its start (as after an interruption): nothing copied or recorded twice.
      await CLICKHOUSE_MIGRATIONS.find((m) => m.version === 4)!.apply({
        db,
        exec: async (query) => void (await old.client.command({ query })),
        select: (q) => old.query(q),
      });
      expect(await rowsOf(old, 'cost_usage', '1')).toBe(2);
      expect((await snapshots()).length).toBe(2);
      // A collection after the migration replaces the migrated rows of its source.
      const ver = focusCollectionVer();
      await old.client.insert({
        table: `${db}.cost_usage`,
        values: [
          {
            charge_period_start: t,
            charge_period_end: t + 3600,
            billed_cost: 4,
            effective_cost: 4,
            resource_id: 'vm-new',
            source: 'bill',
            ver,
            seq: 0,
          },
        ],
        format: 'JSONEachRow',
      });
      await old.completeCostSnapshot('bill', ver, 1);
      expect((await old.costTotals(w)).spendUsd).toBe(34);
      await rowsSettle('cost_usage', "source = 'bill'", 1, old);
    } finally {
      await old.client.command({ query: `DROP DATABASE IF EXISTS ${db}` }).catch(() => undefined);
      await old.close();
    }
  });
});
