/**
 * The parts of FOCUS snapshot collection that need no server: the reader keeps rows that share
 * every key column, a collection numbers its rows and records itself as completed only after its
 * last batch, and a collection that fails is never recorded (its rows are deleted). Collection
 * versions never repeat. The same on the real ClickHouse: test/integration/hostile-focus-rows.test.ts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createInfraActivities, focusCollectionVer } from '../../activities/infra/activities.js';
import { FOCUS_BATCH_ROWS, readFocusDirectory } from '../../activities/infra/focus.js';
import type { CostUsageRow } from '../../activities/storage/clickhouse/rows.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hostile-focus-rows-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const HEADER =
  'BillingCurrency,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,BilledCost,EffectiveCost,ResourceId,ResourceType,ServiceName,RegionId,SkuId,ConsumedQuantity,ConsumedUnit,Tags';
const line = (category: string, cost: number, resource = 'vm-1') =>
  `USD,${category},2025-06-03T10:00:00Z,2025-06-03T11:00:00Z,${cost},${cost},${resource},VM,Compute,eu-1,sku-1,1,Hours,{}`;

function dirWith(name: string, files: Record<string, string>): string {
  const dir = path.join(tmp, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  for (const [f, text] of Object.entries(files)) writeFileSync(path.join(dir, f), text);
  return dir;
}

type Call =
  | { op: 'insert'; rows: CostUsageRow[] }
  | { op: 'complete'; source: string; ver: number; rows: number }
  | { op: 'delete'; q: unknown };

/** The collection activities on a recording store (what they send it, in order) and one FOCUS source. */
function collecting(dir: string, failInsertAt?: number) {
  const calls: Call[] = [];
  const db = {
    async query(sql: string) {
      if (sql.startsWith('SELECT id, config, last_collected_to FROM infra_sources')) {
        return { rows: [{ id: 'bill', config: { kind: 'focus', path: dir }, last_collected_to: null }] };
      }
      throw new Error(`unexpected SQL ${sql}`);
    },
  };
  let inserts = 0;
  const ch = {
    async insertCostRows(rows: CostUsageRow[]) {
      if (++inserts === failInsertAt) throw new Error('connect ECONNREFUSED 127.0.0.1:8123');
      calls.push({ op: 'insert', rows });
    },
    async completeCostSnapshot(source: string, ver: number, rows: number) {
      calls.push({ op: 'complete', source, ver, rows });
    },
    async latestCostSnapshot() {
      return undefined;
    },
    async deleteCostRows(q: unknown) {
      calls.push({ op: 'delete', q });
    },
  };
  const config = { groq: {}, temporal: {}, databaseUrl: 'postgres://localhost/x', clickhouse: { url: 'http://localhost:8123' }, codec: {} };
  const acts = createInfraActivities({ config, ch, db } as unknown as Parameters<typeof createInfraActivities>[0]);
  return { collect: () => acts.collectInfraSource({ id: 'bill' }), calls };
}

describe('FOCUS rows sharing a key, without a server', () => {
  it('the reader keeps a usage row, its credit and a second identical line item', async () => {
    // Pins: parsing drops nothing that shares resource, SKU, period and service. Held before (the
    // rows were lost in ClickHouse, not here).
    const dir = dirWith('read', { 'a.csv': [HEADER, line('Usage', 100), line('Credit', -50), line('Usage', 100)].join('\n') });
    const r = await readFocusDirectory(dir);
    expect(r.rows.map((x) => x.effectiveCost)).toEqual([100, -50, 100]);
    expect(r.bad).toEqual([]);
  });

  it('a collection numbers every row under one version and records itself completed once, after its last batch', async () => {
    // Pins: rows of one collection are distinct (source, ver, seq) across batches and files; the
    // completion (which makes them what is read) comes after every insert, with the row count.
    // Failed before: rows had no number (seq undefined for all 12,001) and nothing recorded the
    // collection as completed: only insertCostRows was called.
    const n = FOCUS_BATCH_ROWS + 2_000;
    const many = Array.from({ length: n }, (_, i) => line('Usage', 1, `vm-${i}`));
    const dir = dirWith('whole', { 'a.csv': [HEADER, ...many].join('\n'), 'b.csv': [HEADER, line('Tax', 3, '')].join('\n') });
    const { collect, calls } = collecting(dir);
    expect(await collect()).toMatchObject({ id: 'bill', kind: 'focus', rows: n + 1, bad: 0 });
    expect(calls.map((c) => c.op)).toEqual(['insert', 'insert', 'complete']);
    const rows = calls.flatMap((c) => (c.op === 'insert' ? c.rows : []));
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: n + 1 }, (_, i) => i));
    expect(new Set(rows.map((r) => `${r.source}/${r.ver}`))).toEqual(new Set([`bill/${rows[0]!.ver}`]));
    expect(calls.at(-1)).toEqual({ op: 'complete', source: 'bill', ver: rows[0]!.ver, rows: n + 1 });
  });

  it('a collection that fails half-way is never recorded, and its rows are deleted', async () => {
    // Pins: a broken file after good ones (FocusError) and a store failing mid-way both leave
    // the collection unrecorded, so the previous one stays what is read.
    // Failed before: the rows inserted before the failure were read at once (no completion step).
    const good = Array.from({ length: FOCUS_BATCH_ROWS }, (_, i) => line('Usage', 2, `vm-${i}`));
    const broken = dirWith('broken', { 'a.csv': [HEADER, ...good].join('\n'), 'b.csv': `${HEADER}\nUSD,Usage,"2025-06-03,x\n` });
    const a = collecting(broken);
    const outcome = await a.collect();
    expect(outcome.error).toMatch(/cannot parse .*b\.csv/);
    expect(outcome.rows).toBe(FOCUS_BATCH_ROWS);
    const ver = (a.calls[0] as { rows: CostUsageRow[] }).rows[0]!.ver;
    expect(a.calls.map((c) => c.op)).toEqual(['insert', 'delete']);
    expect(a.calls[1]).toEqual({ op: 'delete', q: { sources: ['bill'], ver } });

    const storeDown = collecting(dirWith('store', { 'a.csv': [HEADER, ...good, ...good].join('\n') }), 2);
    await expect(storeDown.collect()).rejects.toThrow(/ECONNREFUSED/);
    expect(storeDown.calls.map((c) => c.op)).toEqual(['insert', 'delete']);
  });

  it('collection versions never repeat, rise with time, and are above the previous release versions', () => {
    // Pins: two collections of one source in the same millisecond get different versions, so their
    // rows never mix. Failed before: both were Date.now(), the same number.
    const now = Date.now();
    const vers = Array.from({ length: 2000 }, () => focusCollectionVer(now));
    expect(new Set(vers).size).toBe(vers.length);
    expect(vers.every((v, i) => i === 0 || v > vers[i - 1]!)).toBe(true);
    expect(vers.every(Number.isSafeInteger)).toBe(true);
    expect(vers[0]!).toBeGreaterThan(now);
    expect(focusCollectionVer(now + 1_000)).toBeGreaterThan(vers.at(-1)!);
  });
});
